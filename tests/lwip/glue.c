/* glue.c — the hooks Orrery's arch/cc.h and lwipopts.h declare, defined for lwIP's unit suite. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "arch/cc.h"

/* A failed lwIP assertion fails the check test it happens in (check forks a process per
 * test, so abort ends only that test and check reports it with its name). */
void orrery_lwip_assert(const char *msg, const char *file, int line)
{
    fprintf(stderr, "lwip_unit: lwIP assertion failed: %s at %s:%d\n", msg, file, line);
    abort();
}

/* A fixed xorshift sequence: the suite's expectations do not depend on the values, and a fixed
 * seed keeps a failing run reproducible. sys_now() comes from the suite's arch/sys_arch.c. */
uint32_t orrery_lwip_rand(void)
{
    static uint32_t x = 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}
