/* bench.h — simulator benchmarks: time compression with periodic timers, messages per second,
 * clusters of nodes running the image's tcpip. */
#ifndef SIM_BENCH_H
#define SIM_BENCH_H

#include <stdint.h>

#include <os/os.h>

/* The simulator's own programs (not in the image): "sim_ticker_init", "sim_ticker",
 * "sim_ping", "sim_pong". NULL-terminated. */
extern const os_program_t *const sim_bench_programs[];

typedef struct sim_bench_result {
    double time_compression; /* virtual seconds per wall second */
    double virtual_s, ticks_wall_s;
    uint64_t ticks;
    double msgs_per_s; /* messages delivered per wall second, one core */
    uint64_t msgs;
    double msgs_wall_s;
} sim_bench_result_t;

/*
 * Time compression: `tickers` tasks with periodic timers (period_ns) run for
 * virtual_ns of virtual time. Messages: one ping-pong pair bouncing `window`
 * messages in flight until `msgs` were delivered. 0 or a negative code.
 */
int sim_bench_timers(unsigned tickers, uint64_t period_ns, uint64_t virtual_ns,
                     sim_bench_result_t *r);
int sim_bench_msgs(uint64_t msgs, unsigned window, sim_bench_result_t *r);

/*
 * Clusters: `nodes` nodes (2..SIM_NODES_MAX) booted from `image` (it must hold init, tcpip,
 * and for the busy load console, shell and tcpecho), node i at 10.0.0.(i+1)/24 on the switch,
 * run for virtual_ns of virtual time from boot, seed 1.
 *   SIM_BENCH_IDLE: each node runs tcpip alone with its static address: what an idle cluster
 *     costs (its ARP announcement, lwIP's periodic timers, nothing else).
 *   SIM_BENCH_BUSY: each node also runs tcpecho and a shell whose console is fed one command
 *     every SIM_BENCH_BUSY_PERIOD_NS, alternating `fetch http://NEXT:7/bench` (a TCP
 *     connection to the next node's tcpecho: handshake, request echoed, close) and
 *     `ping NEXT 1` (NEXT: node i+1's address, the last node's is node 0's).
 * 0; OS_EINVAL (nodes, virtual_ns 0), sim_boot_nodes' errors (OS_ENOTSUP: the build has no
 * per-node state), OS_ESTATE if a kernel leaked at teardown.
 */
#define SIM_BENCH_BUSY_PERIOD_NS 10000000ull

typedef enum sim_bench_load {
    SIM_BENCH_IDLE = 0,
    SIM_BENCH_BUSY = 1,
} sim_bench_load_t;

typedef struct sim_bench_cluster {
    unsigned nodes;
    sim_bench_load_t load;
    double virtual_s;      /* virtual time run */
    double wall_s;         /* wall time of the run, boot and teardown included */
    uint64_t frames;       /* frames the nodes sent on the switch */
    uint64_t events;       /* kernel events of every node */
    uint64_t messages;     /* messages delivered on every node */
    double sim_per_wall;   /* virtual seconds per wall second */
    double frames_per_s;   /* frames per wall second */
    double events_per_s;   /* events per wall second */
    double seeds_per_hour; /* 3600 / wall_s: runs of this scenario (this long) per hour, one core */
} sim_bench_cluster_t;

int sim_bench_cluster(const os_program_t *const *image, unsigned nodes, sim_bench_load_t load,
                      uint64_t virtual_ns, sim_bench_cluster_t *r);

/* Published figures of other deterministic simulators, printed beside ours for reference
 * (not measured here): TigerBeetle's VOPR, "up to 700x" time acceleration; FoundationDB's
 * simulation, about 10:1 simulated to real time. */
#define SIM_BENCH_PUBLISHED_TIGERBEETLE_VOPR 700.0
#define SIM_BENCH_PUBLISHED_FOUNDATIONDB 10.0

#endif
