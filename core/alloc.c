/* alloc.c — the kernel's allocator wrappers: live-allocation count and fault injection. */
#include <stdatomic.h>
#include <stdlib.h>

#include "kpriv.h"

/* Every kernel allocation goes through here, so k_teardown can report leaks
 * and tests can fail the Nth allocation (SQLite's FAULTSIM). */
static atomic_long live;
static atomic_long fail_after; /* > 0: the allocation that takes it to 0 fails */

static bool should_fail(void)
{
    long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&fail_after, &n, n - 1))
            return n == 1;
    }
    return false;
}

void *k_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *k_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void k_free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    free(p);
}

long k_live_allocs(void)
{
    return atomic_load_explicit(&live, memory_order_relaxed);
}

void k_fail_alloc_after(long n)
{
    atomic_store(&fail_after, n > 0 ? n : 0);
}
