/* runner.h — run one seed of a scenario on the sim platform and check the built-in invariants. */
#ifndef SIM_RUNNER_H
#define SIM_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>
#include <sim/blk.h>
#include <sim/net.h>
#include <sim/scenario.h>

/* One trace record as the determinism check remembers it. */
typedef struct sim_rec_sum {
    uint64_t seq;
    uint32_t kind;
    uint32_t task;
    uint64_t hash; /* running hash up to and including this record */
} sim_rec_sum_t;

typedef struct sim_run_opts {
    uint32_t faults;             /* SIM_FAULT_* bits enabled for this run */
    const hal_trace_sink_t *tee; /* also give every record of node 0 to this sink (NULL: none) */
    /* also give every record of every node here, with its node index (NULL: none); the
     * node names are given first (node_names, nnodes) */
    void (*tee_node)(void *self, uint32_t node, const hal_trace_rec_t *r);
    void (*node_names)(void *self, const char *const *names, size_t nnodes);
    /* and each node's boot manifest as it booted (substituted), after the names (NULL: none) */
    void (*node_manifest)(void *self, uint32_t node, const char *text, size_t len);
    void *tee_node_self;
    bool keep_records; /* fill result.recs (for --check-determinism) */
    bool keep_output;  /* fill result.output */
    /* also stream the console output here as it is written (NULL: no) */
    void (*console_out)(void *self, const void *buf, size_t len);
    void *console_out_self;
    /* every frame on the switch, as it is sent, at virtual time (--pcap; NULL: none) */
    void (*frame_tap)(void *self, uint64_t t_ns, uint32_t from, const void *frame, size_t len);
    void *frame_tap_self;
    /* write the disk here when the run ends (sim_disk_save; NULL: no); a failure fails it */
    const char *save_disk;
    /* every copy of a frame as it is delivered, with its receiver (per-node pcaps; NULL: none) */
    sim_net_deliver_tap_fn deliver_tap;
    void *deliver_tap_self;
    /* every node's disk as the run left it (its cache landed), before it is freed (NULL: none) */
    void (*node_disk)(void *self, uint32_t node, sim_disk_t *disk);
    void *node_disk_self;
} sim_run_opts_t;

enum { SIM_RUN_NODES_MAX = 32 }; /* nodes of one run: SCN_NODES_MAX, and 1 + SCN_PEERS_MAX */

typedef struct sim_result {
    bool ok;
    char failure[512]; /* the first broken invariant or expectation */
    uint64_t hash;     /* over every trace record and the console output */
    uint64_t records, events, messages;
    uint64_t vtime_ns; /* virtual time at the end */
    int status;        /* shutdown status, -1 if none */
    long leaks;        /* k_teardown's live allocations */
    sim_fault_stats_t injected;
    sim_net_stats_t net;           /* the switch's counters (zero without a network) */
    bool disk;                     /* the scenario's node had a disk */
    sim_blk_stats_t blk;           /* the disk's counters (zero without one) */
    size_t ncuts;                  /* power cuts drawn (the scenario's `power-cut` lines) */
    uint64_t cut_ns[SCN_CUTS_MAX]; /* when each was due, drawn from the seed */
    sim_rec_sum_t *recs;           /* keep_records: one per record (free with sim_result_free) */
    size_t nrecs;
    char *output; /* keep_output: the console output, NUL-terminated */
    size_t output_len;
    /* keep_output: the console output of node n >= 1 (node 0's is output above) */
    char *node_output[SIM_RUN_NODES_MAX];
    size_t node_output_len[SIM_RUN_NODES_MAX];
    size_t nnodes;                      /* nodes of the run */
    size_t ncrashes;                    /* node crashes drawn (`crash` lines, per node) */
    uint64_t crash_ns[SCN_CRASHES_MAX]; /* when each `crash` line struck, drawn from the seed */
    uint64_t net_last_heal_ns;          /* sim_net_last_heal at the end (0: no network fault) */
} sim_result_t;

/*
 * Read the manifests the scenario names (paths relative to dir; NULL or "" for the current
 * folder) and check each with the manifest parser against the image. 0, or the scenario line
 * of the first failure with a message in err (naming the file, and the manifest's own line
 * for a bad manifest).
 */
int sim_scenario_load(sim_scenario_t *sc, const char *dir, char *err, size_t errlen);

/* Run `seed` of sc. Returns 0 (see r->ok for the verdict) or a negative code if it
 * could not run at all (boot failed, out of memory). */
int sim_run_scenario(const sim_scenario_t *sc, uint64_t seed, const sim_run_opts_t *o,
                     sim_result_t *r);
void sim_result_free(sim_result_t *r);

/*
 * Compare two runs' record lists: the index of the first record that differs
 * (by running hash), or -1 if they agree (and have the same length).
 */
long sim_first_difference(const sim_result_t *a, const sim_result_t *b);

struct manifest_program;
/*
 * The restart-policy invariant's model of init: whether a program that init already restarted
 * `restarts` times and that ended with `status` is owed a restart (restart=always: any status;
 * on-failure: a non-zero one, kills included; never: none; and only below max-restarts). The
 * runner replays it on the exits init was told of, in their order.
 */
bool sim_restart_owed(const struct manifest_program *p, uint32_t restarts, int status);

/* The runner's queue-bound invariant (chanq.c): one node's channel endpoints replayed from its
 * trace. A send is refused with OS_EFULL exactly when the receiving endpoint holds
 * OS_CHAN_QUEUE_MAX messages, no endpoint ever holds more, and no message is handed out of an
 * empty queue. */
typedef struct sim_chanq sim_chanq_t;
sim_chanq_t *sim_chanq_new(void);
void sim_chanq_free(sim_chanq_t *q);
/* Forget every endpoint: the node booted a new kernel (endpoint ids start again). */
void sim_chanq_reset(sim_chanq_t *q);
/* Follow one record; false, with the first broken rule in why, when it breaks one. */
bool sim_chanq_record(sim_chanq_t *q, const hal_trace_rec_t *r, char *why, size_t len);
/* Sends refused at a full queue so far, and the most messages one endpoint held. */
void sim_chanq_stats(const sim_chanq_t *q, uint64_t *refused, uint32_t *deepest);

#endif
