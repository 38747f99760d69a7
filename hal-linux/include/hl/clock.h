/* clock.h — the hosted kernel clock: a calibrated TSC, or CLOCK_MONOTONIC where it will not do. */
#ifndef HL_CLOCK_H
#define HL_CLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * hl_clock_now reads CLOCK_MONOTONIC's time (ns) from the TSC when the CPU
 * says its TSC is invariant (CPUID 0x80000007 EDX bit 8): rdtsc is a few ns
 * where clock_gettime costs tens (about 40 on the VMs we run on), and the
 * kernel stamps every trace record with the clock. The TSC rate is not known
 * in advance, so a clock starts on clock_gettime and switches to the TSC once
 * HL_CLOCK_CALIBRATE_NS of CLOCK_MONOTONIC have passed since its first read,
 * with the rate measured over that span. From then on one reader every
 * HL_CLOCK_RESYNC_NS compares it with CLOCK_MONOTONIC and slews (the next
 * span's rate aims at CLOCK_MONOTONIC's value at the span's end, within
 * HL_CLOCK_SLEW_PPM of the rate measured since the start), so the two agree
 * to within microseconds and never drift apart. The line never jumps back
 * (forward only after a long sleep left it behind by more than a span's
 * slewing makes up), and each thread's reads never go backwards (a
 * thread-local floor).
 *
 * Without an invariant TSC, or with ORRERY_HOSTED_CLOCK=monotonic in the
 * environment, it is clock_gettime(CLOCK_MONOTONIC) and nothing else.
 * Any thread may read a clock at any time; the state below is shared.
 */
enum {
    HL_CLOCK_CALIBRATE_NS = 10 * 1000 * 1000, /* the first span, on clock_gettime */
    HL_CLOCK_RESYNC_NS = 50 * 1000 * 1000,    /* slewing: one span */
    HL_CLOCK_SLEW_PPM = 500,                  /* the most a span's rate departs from the mean */
};

typedef enum hl_clock_mode {
    HL_CLOCK_MONOTONIC = 0, /* clock_gettime only: no invariant TSC, or asked for */
    HL_CLOCK_CALIBRATING,   /* clock_gettime until the first span has passed */
    HL_CLOCK_TSC,           /* rdtsc on the calibrated line */
} hl_clock_mode_t;

typedef struct hl_clock {
    _Atomic int mode;                     /* hl_clock_mode_t */
    atomic_uint seq;                      /* seqlock over the line: odd while a resync writes it */
    atomic_uint_fast64_t tsc0, ns0, mult; /* the line: ns0 + (tsc - tsc0) * mult / 2^32 */
    atomic_uint_fast64_t next_sync;       /* the tsc at which the next resync is due ... */
    atomic_uint_fast64_t mean;            /* ... and the slope past it: the mean rate */
    uint64_t first_tsc, first_ns;         /* the first read: the mean rate's origin (set once) */
    uint64_t span_ticks;                  /* ticks in HL_CLOCK_RESYNC_NS (set with the line) */
} hl_clock_t;

/* Prepare a clock; use_tsc false (or no invariant TSC) keeps it on clock_gettime for good. */
void hl_clock_init(hl_clock_t *c, bool use_tsc);
/* CLOCK_MONOTONIC's time in ns, from the TSC once calibrated. */
uint64_t hl_clock_now(hl_clock_t *c);
hl_clock_mode_t hl_clock_mode(const hl_clock_t *c);
/* Whether this CPU says its TSC runs at a constant rate in every state (and rdtsc exists). */
bool hl_clock_tsc_invariant(void);
/* The process's clock (hal_clock_now_ns): TSC unless ORRERY_HOSTED_CLOCK=monotonic. */
hl_clock_t *hl_clock_default(void);

#endif
