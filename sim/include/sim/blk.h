/* blk.h — the simulator's disks: blk0 of a node on an in-memory disk, its cache and power cuts. */
#ifndef SIM_BLK_H
#define SIM_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A sim_disk_t is a disk in memory: its durable medium (what survives a power cut) and a
 * volatile write cache. It belongs to the caller, outlives the nodes it is attached to
 * (sim_config_t.disk) and so survives their power cuts and reboots.
 *
 * A node booted with a disk has a blk0 device (hal/blk.h); a disk serves one node of a run
 * (sim_boot_nodes fails with OS_EBUSY when two name the same disk). It posts HAL_BLK_INFO at boot.
 * A request is checked when it is written (OS_EINVAL: an unknown code, a length that does
 * not match the count, a count outside 1..HAL_BLK_MAX_SECTORS, sectors past the end, a
 * FLUSH with a sector or count; OS_EFULL: SIM_BLK_INFLIGHT_MAX requests are in flight), then
 * completes after a seeded latency (plus blk-latency), in any order. A read sees the latest
 * completed writes; a completed write sits in the cache, reaching the medium at the next
 * FLUSH's completion, or earlier when the seed lands it (a drive's cache may write back
 * early), or when the cache holds SIM_DISK_CACHE_SECTORS sectors. Faults (sim/faults.h):
 * blk-eio completes with OS_EIO (nothing read or stored), blk-torn stores only the first k
 * sectors of a write, blk-lost acknowledges a write and stores nothing.
 */
enum {
    SIM_BLK_INFLIGHT_MAX = 32,     /* requests in flight on one blk0 */
    SIM_DISK_CACHE_SECTORS = 1024, /* dirty sectors the write cache holds */
};
#define SIM_DISK_MAX_BYTES (1ull << 30) /* 1 GiB: the disk lives in memory */

typedef struct sim_disk sim_disk_t;

/* A zeroed disk of `sectors` 512-byte sectors (1..SIM_DISK_MAX_BYTES/512); NULL: bad size or
 * out of memory. */
sim_disk_t *sim_disk_new(uint64_t sectors);
/*
 * A disk holding the image file at path, read whole into memory. Its size must be a
 * non-zero multiple of 512, at most SIM_DISK_MAX_BYTES. NULL with a one-line reason in err.
 */
sim_disk_t *sim_disk_open(const char *path, char *err, size_t errlen);
/*
 * Write the disk to path as a clean power-off leaves it (the cache first reaches the
 * medium): into a new temporary file beside it, then renamed over it, so a crash leaves the
 * old file or the new one. path must not exist or be a regular file. 0, or -1 with a
 * one-line reason in err.
 */
int sim_disk_save(sim_disk_t *d, const char *path, char *err, size_t errlen);
void sim_disk_free(sim_disk_t *d);
/* A new disk holding d as a clean power-off would leave it (its cache landed); NULL: out of
 * memory. A sweep starts each seed on a copy of one image. */
sim_disk_t *sim_disk_copy(const sim_disk_t *d);
uint64_t sim_disk_sectors(const sim_disk_t *d);
/* The durable medium (sectors * 512 bytes): what a power cut now would leave, before the
 * seed decides the fate of the cache. */
const uint8_t *sim_disk_medium(const sim_disk_t *d);
/* Dirty sectors in the cache now. */
size_t sim_disk_dirty(const sim_disk_t *d);
/* Land every cached write on the medium (as a FLUSH does). */
void sim_disk_flush(sim_disk_t *d);

/*
 * Cut node's power now: its kernel is torn down at once (every task dies, completions in
 * flight are dropped) and each sector of its disk's cache and of its writes in flight
 * reaches the medium or not as the seed says (so a write can be torn at any sector). With
 * reboot, the node then boots again with its config on the same disk (its console output
 * goes on; its script goes on where it stopped); without, it stays down (as shut down, with
 * status -1). Call it between steps, never from a task; sim_node_power_cut_at schedules it
 * at virtual time t_ns. 0, OS_EINVAL (no such node), or the reboot's error.
 */
int sim_node_power_cut(size_t node, bool reboot);
int sim_node_power_cut_at(size_t node, uint64_t t_ns, bool reboot);

/*
 * A node crash: sim_node_power_cut at t_ns without reboot and, when down_ns is not
 * UINT64_MAX, the node boots again down_ns later on the same disk (a node without a disk
 * boots from nothing). While down, frames to it are lost (counted as down). A down node is
 * not shut down: the run goes on while node 0 is down, and sim_node_shutdown_status says
 * false; with down_ns UINT64_MAX it is shut down with status -1, as a power cut without
 * reboot. A crash that finds the node down already keeps it down until the later of the two
 * ends (no second power cut). Both times are scheduled at once (sim_at): errors now, not later.
 * 0, OS_EINVAL (no such node), OS_ENOMEM.
 */
int sim_node_crash_at(size_t node, uint64_t t_ns, uint64_t down_ns);

/*
 * Pause node between start_ns and end_ns: none of its events run, its timers do not fire
 * (they fire late, at end_ns at the earliest, as in a stopped VM), its console input waits,
 * and frames to it wait in its device queue (counted as paused; dropped and counted as
 * queue_full when it is full). Its devices go on: disk requests complete into the queue,
 * timed console lines are queued. Overlapping pauses end at the latest end.
 * 0, OS_EINVAL (no such node, end_ns <= start_ns), OS_ENOMEM.
 */
int sim_node_pause(size_t node, uint64_t start_ns, uint64_t end_ns);

typedef struct sim_blk_stats {
    uint64_t reads, writes, flushes; /* requests accepted */
    uint64_t invalid;                /* refused with OS_EINVAL or OS_EFULL */
    uint64_t eio;                    /* blk-eio */
    uint64_t torn;                   /* blk-torn */
    uint64_t lost;                   /* blk-lost */
    uint64_t early;                  /* cached sectors landed before a FLUSH */
    uint64_t power_cuts;             /* of any node, with a disk or not */
    uint64_t cut_lost_sectors;       /* unflushed sectors a power cut lost */
    uint64_t cut_kept_sectors;       /* unflushed sectors that reached the medium anyway */
    uint64_t dropped;                /* completions dropped by a power cut */
} sim_blk_stats_t;
/* Counters of the run (every node), reset at sim_teardown. */
void sim_blk_stats(sim_blk_stats_t *out);

#endif
