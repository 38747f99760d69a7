/* faults.h — the one fault-injection interface of the simulator: tasks, deliveries, timers, devices. */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <k/fault.h>

/*
 * Every fault is drawn from the run's seeded generator (sim_rand), so a seed
 * reproduces the same faults at the same points. The kernel-level faults go
 * through the kernel's hooks (k/fault.h); device faults are decided here and
 * applied by the simulated devices (net, blk) that later issues add: they ask
 * sim_fault_net_frame / sim_fault_blk_request for a verdict per frame or
 * request and obey it.
 */
#define SIM_FAULT_KINDS(X)                                                                         \
    X(KILL, "kill", 0)          /* kill an allowed task between two events */                       \
    X(DELAY, "delay", 1)        /* hold a message back (per-channel order kept) */                  \
    X(JITTER, "jitter", 2)      /* timers fire late by a seeded amount */                            \
    X(NET_LOSS, "net-loss", 3)  /* net: drop a frame */                                             \
    X(NET_DELAY, "net-delay", 4) /* net: deliver a frame late */                                    \
    X(NET_REORDER, "net-reorder", 5) /* net: let a frame overtake the ones before it */             \
    X(NET_PARTITION, "net-partition", 6) /* net: cut a link for a while */                          \
    X(BLK_EIO, "blk-eio", 7)    /* disk: fail a request with OS_EIO */                               \
    X(BLK_LATENCY, "blk-latency", 8) /* disk: complete late */                                      \
    X(BLK_TORN, "blk-torn", 9)  /* disk: a write reaches only its first sectors */                  \
    X(BLK_LOST, "blk-lost", 10) /* disk: a write is acknowledged but never stored */          \
    X(NET_DUP, "net-dup", 11)   /* net: deliver a frame twice */

enum {
#define SIM_FAULT_BIT(up, name, bit) SIM_FAULT_##up = 1u << (bit),
    SIM_FAULT_KINDS(SIM_FAULT_BIT)
#undef SIM_FAULT_BIT
    SIM_FAULT_TASKS = SIM_FAULT_KILL | SIM_FAULT_DELAY | SIM_FAULT_JITTER,
    SIM_FAULT_ALLOW_MAX = 8, /* programs an injected kill may hit */
};

typedef struct sim_faults {
    uint32_t enabled;                            /* SIM_FAULT_* bits */
    uint64_t duration_ns;                        /* kills fall in (0, duration) */
    uint32_t kills;                              /* injected kills per run, at most */
    char kill_allow[SIM_FAULT_ALLOW_MAX][32];    /* program names a kill may hit */
    size_t nkill_allow;
    uint32_t delay_pct;                          /* share of messages held back, % */
    uint64_t delay_max_ns;                       /* held back 1..max ns */
    uint64_t jitter_max_ns;                      /* timers late by 0..max ns */
    uint32_t net_loss_pct, net_reorder_pct;      /* per frame, % */
    uint32_t net_dup_pct;                        /* per frame, % */
    uint64_t net_delay_max_ns;
    uint32_t blk_eio_pct, blk_torn_pct, blk_lost_pct; /* per request, % */
    uint64_t blk_latency_max_ns;
} sim_faults_t;

/* Defaults for the rates (enabled = 0: nothing is injected until bits are set). */
void sim_faults_defaults(sim_faults_t *f);

/* "kill,delay,jitter", "all", "none" or "" -> bits. 0, or -1 with the bad word in err. */
int sim_faults_parse(const char *list, uint32_t *bits, char *err, size_t errlen);
/* Bits -> "kill,delay" (buf filled and returned; "none" for 0). */
const char *sim_faults_format(uint32_t bits, char *buf, size_t len);

/*
 * Arm the faults for the run that sim_boot just started: install the kernel
 * hooks and schedule the kills (sim_at). f is copied. sim_faults_remove undoes
 * it (call before sim_teardown).
 */
int sim_faults_install(const sim_faults_t *f);
void sim_faults_remove(void);

/* What was injected in this run. */
typedef struct sim_fault_stats {
    uint32_t kills, delayed, jittered;
    uint32_t net_dropped, net_delayed, net_reordered, net_duplicated;
    uint32_t blk_failed, blk_torn, blk_lost;
    char last_kill[96]; /* "echo (task 4) at 1.234567s" */
} sim_fault_stats_t;
void sim_faults_stats(sim_fault_stats_t *out);

/* ---- device faults: the verdicts simulated devices obey ------------------------------------ */

typedef enum sim_net_action {
    SIM_NET_DELIVER = 0, /* after delay_ns (0: the link's own latency only) */
    SIM_NET_DROP = 1,    /* lost, or the link is partitioned */
    SIM_NET_REORDER = 2, /* deliver ahead of frames queued before it */
} sim_net_action_t;

typedef struct sim_net_verdict {
    sim_net_action_t action;
    uint64_t delay_ns;
    bool dup; /* deliver a second copy as well (net-dup) */
} sim_net_verdict_t;

/* A frame of len bytes goes from node `from` to node `to` (device-defined ids). */
sim_net_verdict_t sim_fault_net_frame(uint32_t from, uint32_t to, size_t len);
/* Cut the link between a and b until virtual time until_ns (net-partition). */
void sim_fault_net_partition(uint32_t a, uint32_t b, uint64_t until_ns);

typedef struct sim_blk_verdict {
    int32_t status;       /* 0 or OS_EIO */
    uint64_t latency_ns;  /* extra completion latency */
    uint32_t sectors;     /* write: sectors that reach the medium (torn: fewer than asked) */
    bool lost;            /* write: acknowledged, never stored */
} sim_blk_verdict_t;

/* A request (HAL_BLK_READ/WRITE/FLUSH) for count sectors from `sector`. */
sim_blk_verdict_t sim_fault_blk_request(uint32_t op, uint64_t sector, uint32_t count);

#endif
