/* workers.c — worker threads: run ready tasks with k_run_one, spin briefly, sleep on a futex. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <k/kernel.h>

/*
 * Each worker has one futex word:
 *   AWAKE   running or polling, nothing new since it last looked;
 *   PENDING work may have become ready since it last called k_run_one;
 *   ASLEEP  blocked (or about to block) in futex_wait.
 * A waker swaps in PENDING and only makes a syscall when it swapped out
 * ASLEEP, so waking a busy worker is one atomic operation (or none when it
 * is already PENDING). The worker clears PENDING before each k_run_one, so a
 * wake that lands during the call is seen by the next check: no lost wake-up.
 */
enum { AWAKE = 0, PENDING = 1, ASLEEP = 2 };

typedef struct worker {
    _Alignas(64) int word; /* futex word, atomic */
    unsigned index;
    pthread_t thread;
    bool started;
} worker_t;

static struct {
    worker_t *w;
    unsigned n;
    unsigned spin_us;
    bool pin;               /* worker i on CPU i % cores */
    int stop;               /* atomic */
    unsigned rr;            /* atomic: where wake(-1) starts looking */
    uint64_t syscall_wakes; /* atomic */
} W;

static long futex(int *uaddr, int op, int val)
{
    return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool stopping(void)
{
    return __atomic_load_n(&W.stop, __ATOMIC_ACQUIRE) != 0;
}

/* Spin up to spin_us for a wake; true if one came (or we must stop). */
static bool spin_for_wake(worker_t *w)
{
    if (W.spin_us == 0)
        return false;
    uint64_t until = 0;
    for (unsigned i = 0;; i++) {
        if (__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) != AWAKE || stopping())
            return true;
        __builtin_ia32_pause();
        if ((i & 63) == 63) {
            uint64_t now = mono_ns();
            if (!until)
                until = now + (uint64_t)W.spin_us * 1000u;
            else if (now >= until)
                return false;
        }
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    if (W.pin)
        hl_pin_self(w->index); /* best effort: a restricted cpuset may refuse */
    hl_fault_thread_enter(w->index, false);
    while (!stopping()) {
        __atomic_store_n(&w->word, AWAKE, __ATOMIC_SEQ_CST);
        if (k_run_one(w->index))
            continue;
        if (spin_for_wake(w))
            continue;
        int expect = AWAKE;
        if (!__atomic_compare_exchange_n(&w->word, &expect, ASLEEP, false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST))
            continue; /* a wake arrived meanwhile */
        if (stopping())
            continue;
        while (__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) == ASLEEP && !stopping())
            futex(&w->word, FUTEX_WAIT_PRIVATE, ASLEEP);
    }
    hl_fault_thread_leave();
    return NULL;
}

/* Swap PENDING into w; make the syscall only if it slept. True if it slept. */
static bool poke(worker_t *w)
{
    if (__atomic_load_n(&w->word, __ATOMIC_RELAXED) == PENDING)
        return false;
    if (__atomic_exchange_n(&w->word, PENDING, __ATOMIC_SEQ_CST) != ASLEEP)
        return false;
    __atomic_add_fetch(&W.syscall_wakes, 1, __ATOMIC_RELAXED);
    futex(&w->word, FUTEX_WAKE_PRIVATE, 1);
    return true;
}

void hl_workers_wake(int worker)
{
    unsigned n = __atomic_load_n(&W.n, __ATOMIC_ACQUIRE);
    if (n == 0)
        return;
    if (worker >= 0) {
        poke(&W.w[(unsigned)worker % n]);
        return;
    }
    /* Any worker: prefer waking one sleeper; otherwise flag every awake worker
     * so that whichever finishes first polls again. */
    unsigned start = __atomic_fetch_add(&W.rr, 1, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < n; k++) {
        worker_t *w = &W.w[(start + k) % n];
        if (__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) == ASLEEP && poke(w))
            return;
    }
    for (unsigned k = 0; k < n; k++)
        if (poke(&W.w[(start + k) % n]))
            return;
}

int hl_pin_self(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % hl_ncpus(), &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int hl_workers_start(unsigned n, unsigned spin_us, bool pin)
{
    memset(&W, 0, sizeof(W));
    W.w = aligned_alloc(64, sizeof(worker_t) * n);
    if (!W.w)
        return -ENOMEM;
    memset(W.w, 0, sizeof(worker_t) * n);
    W.spin_us = spin_us;
    W.pin = pin;
    for (unsigned i = 0; i < n; i++)
        W.w[i].index = i;
    /* Publish n before any thread can call hl_workers_wake. */
    __atomic_store_n(&W.n, n, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < n; i++) {
        int rc = pthread_create(&W.w[i].thread, NULL, worker_main, &W.w[i]);
        if (rc != 0) {
            hl_workers_request_stop();
            hl_workers_join();
            return -rc;
        }
        W.w[i].started = true;
    }
    return 0;
}

void hl_workers_request_stop(void)
{
    __atomic_store_n(&W.stop, 1, __ATOMIC_RELEASE);
    unsigned n = __atomic_load_n(&W.n, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++) {
        __atomic_store_n(&W.w[i].word, PENDING, __ATOMIC_SEQ_CST);
        futex(&W.w[i].word, FUTEX_WAKE_PRIVATE, INT_MAX);
    }
}

void hl_workers_join(void)
{
    unsigned n = __atomic_load_n(&W.n, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (W.w[i].started)
            pthread_join(W.w[i].thread, NULL);
    __atomic_store_n(&W.n, 0, __ATOMIC_RELEASE);
    free(W.w);
    W.w = NULL;
}

uint64_t hl_workers_syscall_wakes(void)
{
    return __atomic_load_n(&W.syscall_wakes, __ATOMIC_RELAXED);
}
