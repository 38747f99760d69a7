/* lock.h — the kernel spinlock: <stdatomic.h> test-and-test-and-set, yielding after a while. */
#ifndef K_LOCK_H
#define K_LOCK_H

#include <stdatomic.h>

#include <hal/cpu.h>

/*
 * Core cannot use pthreads: hosted workers, the simulator's single thread and
 * bare-metal CPUs all take the same lock. Sections are short (never a task's
 * handler, never a device write), so spinning is cheap; after K_SPIN_RELAX
 * rounds we give the processor away in case the holder was preempted.
 */
enum { K_SPIN_RELAX = 128 };

typedef struct k_spin {
    atomic_int held;
} k_spin_t;

static inline void k_spin_lock(k_spin_t *l)
{
    unsigned spins = 0;
    for (;;) {
        if (!atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
            if (++spins < K_SPIN_RELAX) {
                hal_cpu_relax();
            } else {
                spins = 0;
                hal_cpu_yield();
            }
        }
    }
}

static inline void k_spin_unlock(k_spin_t *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif
