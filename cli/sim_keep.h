/* sim_keep.h — what `orrery sim` keeps of a seed (cli/sim_keep.c): a failing seed's trace,
 * console output, frames and disks (--keep-failing), every seed's disks (--save-disks). */
#ifndef HL_SIM_KEEP_H
#define HL_SIM_KEEP_H

#include <stddef.h>
#include <stdint.h>

#include <sim/blk.h>
#include <sim/runner.h>
#include <sim/scenario.h>
#include <trace/pcap.h>
#include <trace/recorder.h>

/* What a cluster file's failing seed keeps besides its trace: per node, the frames it sent and
 * received (DIR/NAME-seed-N.NODE.pcap) and its disk (.NODE.img). */
typedef struct hl_sim_keep {
    trace_recorder *rec;
    const sim_scenario_t *sc;
    trace_pcap *pcap[SIM_RUN_NODES_MAX];
    const char *dir;
    uint64_t seed;
} hl_sim_keep_t;

/* DIR/NAME-seed-N followed by ext. */
void hl_sim_keep_path(char *buf, size_t len, const char *dir, const sim_scenario_t *sc,
                      uint64_t seed, const char *ext);
/* Write buf to path under a fresh name, then rename it over path (a regular file or none).
 * 0, or -1 after a message on stderr. */
int hl_sim_save_file(const char *path, const char *buf, size_t len);
/* sim_run_opts.node_disk: write node's disk to k->dir/NAME-seed-N.NODE.img. */
void hl_sim_keep_disk(void *self, uint32_t node, sim_disk_t *disk);
/* Run the seed again with a recording sink and write its trace and output into dir (a
 * cluster file: one trace of every node, per node its output, frames and disk). */
void hl_sim_keep_failing(const char *dir, const sim_scenario_t *sc, uint64_t seed, uint32_t faults,
                         const char *command);
/* A seed that killed the simulator: run it again in a child, writing its records and console
 * output unbuffered as they come, so both hold everything up to the crash. */
void hl_sim_keep_crashed(const char *dir, const sim_scenario_t *sc, uint64_t seed, uint32_t faults);

#endif
