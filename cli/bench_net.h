/* bench_net.h — what the parts of `orrery bench net` share: figures, rows, the stream pattern. */
#ifndef CLI_BENCH_NET_H
#define CLI_BENCH_NET_H

#include <stddef.h>
#include <stdint.h>

enum {
    MSG_BYTES = 64,  /* one round trip's message */
    WARMUP_MAX = 50, /* round trips before the timed ones (count / 10, at most this) */
    REASON_MAX = 512,
};

/* One set of figures; -1: not measured. */
typedef struct figures {
    double rtt_med_us, rtt_p99_us;
    double bulk_mib_s;
    double conns_per_s;
} figures_t;

static const figures_t no_figures = {-1, -1, -1, -1};

enum { ROW_HOSTED, ROW_Q35, ROW_MICROVM, ROW_SIM, NROWS };
enum { ST_OFF, ST_MEASURED, ST_SKIPPED, ST_FAILED };

typedef struct row {
    int state;
    char why[REASON_MAX];
    const char *accel; /* QEMU rows */
    figures_t f;       /* wall clock */
    figures_t virt;    /* sim: virtual time */
    double wall_s;     /* sim: the whole run, wall clock */
    double virt_s;     /* sim: the whole run, virtual */
} row_t;

/* Byte i of every stream: not periodic at any message size, so a lost, repeated or reordered
 * chunk is a mismatch. */
static inline uint8_t bench_net_pattern(uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    return (uint8_t)(x >> 56 ^ x >> 29 ^ i);
}

uint64_t bench_net_now_ns(void);
/* Median and 99th percentile (nearest rank) of n samples in ns, into f (microseconds). */
void bench_net_percentiles(uint64_t *v, size_t n, figures_t *f);
double bench_net_mib_s(uint64_t bytes, uint64_t ns);
void bench_net_say(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The simulator's row: two nodes in this process, a client on one, tcpecho on the other
 * (bench_net_sim.c). */
void bench_net_run_sim(row_t *row, uint64_t count, uint64_t bytes);

#endif
