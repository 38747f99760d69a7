/* clock.c — the hosted kernel clock: CLOCK_MONOTONIC read from a calibrated, slewed TSC. */
#include <hl/clock.h>

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

/* The line's slope is in ns per tick, as a 32.32 fixed-point number. */
#define HL_CLOCK_SHIFT 32

static uint64_t mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * A TSC reading and CLOCK_MONOTONIC's time taken together: the TSC halfway
 * between the two rdtscs around clock_gettime, from the tightest of a few
 * tries (a preemption between the reads would skew the calibration).
 */
static void pair(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;

    for (int i = 0; i < 4; i++) {
        uint64_t a = __rdtsc(), n = mono(), b = __rdtsc();
        if (b >= a && b - a < best) {
            best = b - a;
            *tsc = a + (b - a) / 2;
            *ns = n;
        }
    }
    if (best == UINT64_MAX) { /* the TSC went back each time: the caller sees no rate */
        *tsc = 0;
        *ns = mono();
    }
}

bool hl_clock_tsc_invariant(void)
{
    unsigned a, b, c, d;

    /* Leaf 1 EDX bit 4: rdtsc exists; 0x80000007 EDX bit 8: the TSC is invariant. */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(d & (1u << 4)))
        return false;
    if (!__get_cpuid(0x80000007u, &a, &b, &c, &d))
        return false;
    return (d & (1u << 8)) != 0;
}

void hl_clock_init(hl_clock_t *c, bool use_tsc)
{
    memset(c, 0, sizeof(*c));
    pair(&c->first_tsc, &c->first_ns);
    atomic_store_explicit(
        &c->mode, use_tsc && hl_clock_tsc_invariant() ? HL_CLOCK_CALIBRATING : HL_CLOCK_MONOTONIC,
        memory_order_release);
}

hl_clock_mode_t hl_clock_mode(const hl_clock_t *c)
{
    return (hl_clock_mode_t)atomic_load_explicit(&c->mode, memory_order_acquire);
}

/* ns per tick (32.32) over [(t0, n0), (t1, n1)]; 0 if no tick passed. */
static uint64_t rate(uint64_t t0, uint64_t n0, uint64_t t1, uint64_t n1)
{
    if (t1 <= t0 || n1 <= n0)
        return 0;
    return (uint64_t)(((unsigned __int128)(n1 - n0) << HL_CLOCK_SHIFT) / (t1 - t0));
}

static uint64_t ticks_for(uint64_t ns, uint64_t mult)
{
    return (uint64_t)(((unsigned __int128)ns << HL_CLOCK_SHIFT) / mult);
}

static uint64_t scale(uint64_t ticks, uint64_t mult)
{
    return (uint64_t)(((unsigned __int128)ticks * mult) >> HL_CLOCK_SHIFT);
}

/*
 * The clock at TSC t: the span's slope up to the span's end (due), the mean
 * rate past it. A slewed slope is meant for one span: a clock nobody read for
 * an hour must not run 500 ppm fast all that time before its next resync.
 */
static uint64_t on_line(uint64_t t, uint64_t t0, uint64_t n0, uint64_t mult, uint64_t due,
                        uint64_t mean)
{
    /* A TSC a hair behind the line's origin (another CPU's) reads as the origin. */
    if (t <= t0)
        return n0;
    if (t <= due)
        return n0 + scale(t - t0, mult);
    return n0 + scale(due - t0, mult) + scale(t - due, mean);
}

/*
 * Calibrating: clock_gettime, and once HL_CLOCK_CALIBRATE_NS have passed,
 * the line through a fresh (TSC, CLOCK_MONOTONIC) pair with the rate since
 * the first one.
 */
static uint64_t calibrate(hl_clock_t *c)
{
    uint64_t t, n = mono(), mult;
    unsigned even = 0;

    if (n - c->first_ns < HL_CLOCK_CALIBRATE_NS)
        return n;
    pair(&t, &n);
    mult = rate(c->first_tsc, c->first_ns, t, n);
    if (!mult) {
        /* The TSC stood still or went back: it is not a clock here. */
        atomic_store_explicit(&c->mode, HL_CLOCK_MONOTONIC, memory_order_release);
        return n;
    }
    if (!atomic_compare_exchange_strong_explicit(&c->seq, &even, 1, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return n; /* another thread is switching it */
    c->span_ticks = ticks_for(HL_CLOCK_RESYNC_NS, mult);
    atomic_store_explicit(&c->tsc0, t, memory_order_relaxed);
    atomic_store_explicit(&c->ns0, n, memory_order_relaxed);
    atomic_store_explicit(&c->mult, mult, memory_order_relaxed);
    atomic_store_explicit(&c->mean, mult, memory_order_relaxed);
    atomic_store_explicit(&c->next_sync, t + c->span_ticks, memory_order_relaxed);
    atomic_store_explicit(&c->seq, 2, memory_order_release);
    atomic_store_explicit(&c->mode, HL_CLOCK_TSC, memory_order_release);
    return n;
}

/*
 * A span ended: start a new line where the old one is now, aiming at
 * CLOCK_MONOTONIC's value one span ahead, with the slope held within
 * HL_CLOCK_SLEW_PPM of the mean rate since the first read. One thread does
 * it (it owns the seqlock); the others keep reading the old line meanwhile.
 */
static void resync(hl_clock_t *c, unsigned seen)
{
    if (!atomic_compare_exchange_strong_explicit(&c->seq, &seen, seen + 1, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return;
    uint64_t t, n;
    pair(&t, &n);
    uint64_t cur = on_line(t, atomic_load_explicit(&c->tsc0, memory_order_relaxed),
                           atomic_load_explicit(&c->ns0, memory_order_relaxed),
                           atomic_load_explicit(&c->mult, memory_order_relaxed),
                           atomic_load_explicit(&c->next_sync, memory_order_relaxed),
                           atomic_load_explicit(&c->mean, memory_order_relaxed));
    uint64_t mean = rate(c->first_tsc, c->first_ns, t, n);
    uint64_t lo, hi, want, target = n + HL_CLOCK_RESYNC_NS;

    if (!mean)
        mean = atomic_load_explicit(&c->mean, memory_order_relaxed);
    /* Behind by more than slewing makes up in a span (a long sleep): jump forward, never back. */
    if (n > cur + HL_CLOCK_RESYNC_NS / 1000000u * HL_CLOCK_SLEW_PPM)
        cur = n;
    lo = mean - mean / 1000000u * HL_CLOCK_SLEW_PPM;
    hi = mean + mean / 1000000u * HL_CLOCK_SLEW_PPM;
    c->span_ticks = ticks_for(HL_CLOCK_RESYNC_NS, mean);
    want = target > cur ? rate(0, cur, c->span_ticks, target) : lo;
    want = want < lo ? lo : want > hi ? hi : want;
    atomic_store_explicit(&c->tsc0, t, memory_order_relaxed);
    atomic_store_explicit(&c->ns0, cur, memory_order_relaxed);
    atomic_store_explicit(&c->mult, want, memory_order_relaxed);
    atomic_store_explicit(&c->mean, mean, memory_order_relaxed);
    atomic_store_explicit(&c->next_sync, t + c->span_ticks, memory_order_relaxed);
    atomic_store_explicit(&c->seq, seen + 2, memory_order_release);
}

static uint64_t tsc_read(hl_clock_t *c)
{
    for (;;) {
        unsigned s = atomic_load_explicit(&c->seq, memory_order_acquire);
        if (s & 1) {
            __builtin_ia32_pause();
            continue;
        }
        uint64_t t0 = atomic_load_explicit(&c->tsc0, memory_order_relaxed);
        uint64_t n0 = atomic_load_explicit(&c->ns0, memory_order_relaxed);
        uint64_t mult = atomic_load_explicit(&c->mult, memory_order_relaxed);
        uint64_t due = atomic_load_explicit(&c->next_sync, memory_order_relaxed);
        uint64_t mean = atomic_load_explicit(&c->mean, memory_order_relaxed);
        uint64_t t = __rdtsc();
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&c->seq, memory_order_relaxed) != s)
            continue;
        if (__builtin_expect(t >= due, 0))
            resync(c, s);
        return on_line(t, t0, n0, mult, due, mean);
    }
}

/* The last value this thread read from a clock: no thread sees its clock go back. */
static _Thread_local struct {
    const hl_clock_t *c;
    uint64_t last;
} floor_;

uint64_t hl_clock_now(hl_clock_t *c)
{
    uint64_t v;

    switch (atomic_load_explicit(&c->mode, memory_order_acquire)) {
    case HL_CLOCK_TSC:
        v = tsc_read(c);
        break;
    case HL_CLOCK_CALIBRATING:
        v = calibrate(c);
        break;
    default:
        return mono();
    }
    if (floor_.c == c && v < floor_.last)
        return floor_.last;
    floor_.c = c;
    floor_.last = v;
    return v;
}

static hl_clock_t default_clock;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    const char *env = getenv("ORRERY_HOSTED_CLOCK");

    hl_clock_init(&default_clock, !(env && strcmp(env, "monotonic") == 0));
}

hl_clock_t *hl_clock_default(void)
{
    pthread_once(&default_once, default_init);
    return &default_clock;
}
