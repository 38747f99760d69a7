/* net.h — the simulator's switch: net0 of every node on one Ethernet, frames under the seed. */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sim/sim.h>

/*
 * Each node booted with sim_config.net has a net0 device (hal/net.h) plugged into one
 * switch. A frame a node writes goes to the node whose MAC it names, or to every other node
 * for a broadcast or multicast address; a frame for a MAC no node has is dropped and
 * counted. Each copy travels its own path (from, to): it arrives after the path's latency
 * plus what the fault verdict adds (sim_fault_net_frame: net-loss, net-delay, net-reorder,
 * net-dup, net-partition) and what the path's link adds (sim_net_set_link: a latency tail,
 * bandwidth), in order on its path unless reordered, waits while the path is clogged, and is
 * lost when the path holds its capacity (path_frames_max) already, when the path is cut, or
 * when the receiving node's queue is full or it is down. Every choice comes from the run's seed, so a seed gives the same frames at
 * the same virtual times. Frames are Ethernet without FCS, 1..HAL_NET_MTU bytes; a write of
 * another size is refused (OS_EINVAL, OS_E2BIG), one under 14 bytes is dropped and counted.
 */
typedef struct sim_net_config {
    uint64_t latency_ns;      /* one-way delay of every path (0: 50 us) */
    uint32_t path_frames_max; /* frames in flight on one path before drops (0: 256) */
    uint64_t tail_mean_ns;    /* every path's latency tail (sim_net_link_t; 0: none) */
    uint64_t bandwidth_bps;   /* every path's bandwidth (sim_net_link_t; 0: unlimited) */
    /* every frame a node sends, at the time it is sent (for --pcap); may be NULL */
    void (*tap)(void *self, uint64_t t_ns, uint32_t from, const void *frame, size_t len);
    void *tap_self;
} sim_net_config_t;

/* Set the switch's parameters for the run that sim_boot_nodes started (reset at teardown). */
void sim_net_configure(const sim_net_config_t *cfg);

/*
 * Cut the path from node `from` to node `to` between virtual times start_ns and end_ns
 * (UINT64_MAX: it never heals): frames sent on it then are lost (either may be SIM_NET_ANY;
 * sim_net_partition takes nodes only). sim_net_partition cuts
 * both directions. At most SIM_NET_CUTS_MAX cuts a run; OS_ENOSPC past it, OS_EINVAL for a
 * node that does not exist or an empty interval.
 */
enum { SIM_NET_CUTS_MAX = 64 };
int sim_net_cut(uint32_t from, uint32_t to, uint64_t start_ns, uint64_t end_ns);
int sim_net_partition(uint32_t a, uint32_t b, uint64_t start_ns, uint64_t end_ns);

typedef struct sim_net_stats {
    uint64_t sent;        /* frames written by nodes */
    uint64_t delivered;   /* copies posted to a node's net0 */
    uint64_t lost;        /* net-loss */
    uint64_t cut;         /* sent on a cut path */
    uint64_t duplicated;  /* net-dup: extra copies */
    uint64_t reordered;   /* net-reorder */
    uint64_t overflow;    /* the path was full */
    uint64_t unknown;     /* no node has the destination MAC, or a runt frame */
    uint64_t queue_full;  /* the receiving node's queue was full */
    uint64_t down;        /* the receiving node had shut down (or was down: crashed) */
    uint64_t clogged;     /* copies that waited on a clogged path (then delivered or dropped) */
    uint64_t paused;      /* copies that reached a paused node and waited in its queue */
} sim_net_stats_t;
void sim_net_stats(sim_net_stats_t *out);

/*
 * The packet simulator (docs/simulation.md, "The packet simulator"). Everything below is
 * drawn from the run's seed; frames are never lost silently: each copy is delivered or
 * counted in one of sim_net_stats' drop counters.
 */

/* Any node, in sim_net_set_link / sim_net_clog / sim_net_cut. */
#define SIM_NET_ANY UINT32_MAX

/*
 * One path's character (from -> to). Zero fields take the switch's defaults (sim_net_config:
 * latency_ns, tail_mean_ns, bandwidth_bps, path_frames_max). A copy of a frame
 * leaves when the path has sent the frames before it (bandwidth), then arrives latency_ns
 * later, plus net-delay's draw, plus an exponential draw of mean tail_mean_ns (from the
 * path's own stream of the seed). Without a tail, frames arrive in the order they were sent
 * (a frame that would overtake waits for the one before); with one, each arrives at its own
 * time, so frames reorder. net-reorder and net-dup act as before (on top).
 */
typedef struct sim_net_link {
    uint64_t latency_ns;    /* the one-way minimum delay (0: sim_net_config.latency_ns) */
    uint64_t tail_mean_ns;  /* plus an exponential tail of this mean per frame, which
                               reorders frames on the path (0: sim_net_config's; none: FIFO) */
    uint64_t bandwidth_bps; /* bits per second: a frame occupies the path len*8/bw, later
                               frames queue behind it (0: sim_net_config's; none: unlimited) */
    uint32_t capacity;      /* frames in flight on the path before drops (0: path_frames_max) */
} sim_net_link_t;

/* Set the paths from -> to (either may be SIM_NET_ANY; a later call replaces an earlier one's
 * settings on the paths it names). For the run sim_boot_nodes started (reset at teardown).
 * OS_EINVAL for no such node, from == to, or l NULL. */
int sim_net_set_link(uint32_t from, uint32_t to, const sim_net_link_t *l);

/* Clog the path from -> to between start_ns and end_ns: it delivers nothing then; frames
 * wait on it (its capacity still bounds them: more are dropped as overflow) and go on in
 * order when it unclogs. SIM_NET_ANY allowed. OS_ENOSPC past SIM_NET_CUTS_MAX clogs,
 * OS_EINVAL as sim_net_cut. Each copy that waited counts once in sim_net_stats.clogged and
 * then once more where it ended (delivered or a drop). */
int sim_net_clog(uint32_t from, uint32_t to, uint64_t start_ns, uint64_t end_ns);

/* Seeded random network faults, each ending by until_ns (so every partition and clog has
 * healed then). A zero mean turns that kind off. */
typedef enum sim_net_split {
    SIM_NET_SPLIT_ANY = 0,     /* each time, one of the three below, drawn */
    SIM_NET_SPLIT_ISOLATE = 1, /* one node against the rest */
    SIM_NET_SPLIT_HALVES = 2,  /* each node on a side drawn for it (both sides non-empty) */
    SIM_NET_SPLIT_SIZED = 3,   /* a size k drawn in 1..n-1, then k nodes drawn against the rest */
} sim_net_split_t;

/*
 * Partitions come one at a time: after an exponential gap (from the time sim_net_chaos is
 * called, then from the end of the previous one), one lasts an exponential length; each
 * draws its split and, with asymmetric_pct, whether it cuts one direction only (and which).
 * Clogs: each path has its own run of gaps and lengths. Every draw comes from a stream of
 * the seed of its own (partitions; each path's clogs; the swizzle), never sim_rand: turning
 * chaos on changes no other fault, and its schedule does not depend on the traffic.
 * Calling sim_net_chaos again replaces the earlier schedule (explicit cuts and clogs stay).
 */
typedef struct sim_net_chaos {
    uint64_t partition_every_mean_ns; /* exponential gaps between partitions */
    uint64_t partition_heal_mean_ns;  /* and their exponential lengths */
    sim_net_split_t split;
    uint32_t asymmetric_pct; /* share of partitions that cut one direction only */
    uint64_t clog_every_mean_ns;      /* per path: exponential gaps between clogs */
    uint64_t clog_mean_ns;            /* and their exponential lengths */
    uint64_t swizzle_start_ns, swizzle_end_ns; /* FoundationDB's swizzle-clog (0, 0: none):
                               a random subset of nodes, their paths clogged one by one at
                               random times from start, unclogged in another random order by end */
    uint64_t until_ns;                /* no fault lasts past this (0: they go on for the whole
                                         run, and sim_net_last_heal says UINT64_MAX) */
} sim_net_chaos_t;
/* 0, or OS_EINVAL (split, asymmetric_pct > 100, swizzle_end_ns <= swizzle_start_ns). */
int sim_net_chaos(const sim_net_chaos_t *c);

/* The virtual time at which the last partition, cut or clog scheduled so far ends (0: none;
 * UINT64_MAX: one never heals). The runner's liveness check counts from it. */
uint64_t sim_net_last_heal(void);

/* The faults sim_net_chaos scheduled that start before before_ns (the schedule is drawn
 * again from the seed: the same whenever it is asked): partitions in time order, then each
 * path's clogs (paths in order, clogs in time order), then the swizzled nodes in the order
 * they are clogged. Fills out[0..max) and returns how many there are. */
typedef enum sim_net_fault_kind {
    SIM_NET_FAULT_PARTITION = 0, /* side: one side's nodes (bit i: node i) */
    SIM_NET_FAULT_CLOG = 1,      /* the path from -> to */
    SIM_NET_FAULT_SWIZZLE = 2,   /* node `from`: every path to and from it */
} sim_net_fault_kind_t;
typedef struct sim_net_fault {
    sim_net_fault_kind_t kind;
    uint64_t start_ns, end_ns;
    uint64_t side;     /* partition: the nodes on one side */
    bool one_way;      /* partition: only side -> the others is cut (else both ways) */
    uint32_t from, to; /* clog: the path; swizzle: from is the node (to SIM_NET_ANY) */
} sim_net_fault_t;
size_t sim_net_chaos_faults(uint64_t before_ns, sim_net_fault_t *out, size_t max);

/* The swizzle-clog sim_net_chaos drew (count 0: none). A node is clogged from its clog time
 * to its unclog time; a path while either of its nodes is. */
typedef struct sim_net_swizzle {
    uint32_t count;                       /* nodes swizzled */
    uint32_t clog_order[SIM_NODES_MAX];   /* the node clogged first, second, ... */
    uint64_t clog_ns[SIM_NODES_MAX];      /* at these times (ascending) */
    uint32_t unclog_order[SIM_NODES_MAX]; /* the node unclogged first, ... (another order) */
    uint64_t unclog_ns[SIM_NODES_MAX];    /* at these times (ascending, all after the clogs) */
} sim_net_swizzle_t;
void sim_net_swizzle_plan(sim_net_swizzle_t *out);

/* Every copy of a frame as it is delivered to node `to` (per-node pcaps; NULL: none). For
 * the run sim_boot_nodes started (reset at teardown). */
typedef void (*sim_net_deliver_tap_fn)(void *self, uint64_t t_ns, uint32_t from, uint32_t to,
                                       const void *frame, size_t len);
void sim_net_set_deliver_tap(sim_net_deliver_tap_fn fn, void *self);

#endif
