/* net.h — the simulator's switch: net0 of every node on one Ethernet, frames under the seed. */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stddef.h>
#include <stdint.h>

/*
 * Each node booted with sim_config.net has a net0 device (hal/net.h) plugged into one
 * switch. A frame a node writes goes to the node whose MAC it names, or to every other node
 * for a broadcast or multicast address; a frame for a MAC no node has is dropped and
 * counted. Each copy travels its own path (from, to): it arrives after the path's latency
 * plus what the fault verdict adds (sim_fault_net_frame: net-loss, net-delay, net-reorder,
 * net-dup, net-partition), in order on its path unless reordered, and is lost when the path
 * holds path_frames_max frames already, when the path is cut, or when the receiving node's
 * queue is full. Every choice comes from the run's seed, so a seed gives the same frames at
 * the same virtual times. Frames are Ethernet without FCS, 1..HAL_NET_MTU bytes; a write of
 * another size is refused (OS_EINVAL, OS_E2BIG), one under 14 bytes is dropped and counted.
 */
typedef struct sim_net_config {
    uint64_t latency_ns;      /* one-way delay of every path (0: 50 us) */
    uint32_t path_frames_max; /* frames in flight on one path before drops (0: 256) */
    /* every frame a node sends, at the time it is sent (for --pcap); may be NULL */
    void (*tap)(void *self, uint64_t t_ns, uint32_t from, const void *frame, size_t len);
    void *tap_self;
} sim_net_config_t;

/* Set the switch's parameters for the run that sim_boot_nodes started (reset at teardown). */
void sim_net_configure(const sim_net_config_t *cfg);

/*
 * Cut the path from node `from` to node `to` between virtual times start_ns and end_ns
 * (UINT64_MAX: it never heals): frames sent on it then are lost. sim_net_partition cuts
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
    uint64_t down;        /* the receiving node had shut down */
} sim_net_stats_t;
void sim_net_stats(sim_net_stats_t *out);

#endif
