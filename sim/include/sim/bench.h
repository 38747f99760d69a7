/* bench.h — simulator benchmarks: time compression with periodic timers, messages per second. */
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
    double msgs_per_s;       /* messages delivered per wall second, one core */
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

#endif
