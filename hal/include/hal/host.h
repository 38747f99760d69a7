/* host.h — the host binary's HAL dispatch: one set of hal_* symbols, two platforms behind it. */
#ifndef HAL_HOST_H
#define HAL_HOST_H

#include <stddef.h>
#include <stdint.h>

/*
 * A host process can run the kernel on the real platform (libuv loop, worker
 * threads, wall clock) or on the deterministic one (sim/: one thread, virtual
 * clock, seeded choices). Both fill this table; hal_host.c forwards each
 * hal_* call of the contract (hal/include/hal) to the installed table. One
 * platform is installed per kernel lifetime (before k_boot, until k_teardown).
 */
typedef struct hal_host {
    const char *name; /* "linux", "sim" */
    uint64_t (*clock_now_ns)(void);
    void (*timer_arm)(uint64_t deadline_ns);
    void (*entropy_fill)(void *buf, size_t len);
    void (*console_write)(const void *buf, size_t len);
    void (*cpu_wake)(int worker);
    void (*cpu_yield)(void);
    void (*shutdown)(int status);
} hal_host_t;

/* Install the platform the hal_* calls go to (NULL: none; calls then abort). */
void hal_host_set(const hal_host_t *platform);
const hal_host_t *hal_host_get(void);

#endif
