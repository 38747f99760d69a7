/* fault.h — the kernel's fault-injection hooks, set by a platform such as sim/. */
#ifndef K_FAULT_H
#define K_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The kernel consults these hooks through thin wrappers in core/fault.c, one
 * predictable branch when none are set (the default, and always when hosted
 * or on bare metal). Every slot may be NULL. They are called with the kernel
 * lock held: they must be quick, must not call into the kernel, and must
 * decide from their own (seeded) state only, so a simulated run stays a
 * function of its seed.
 */
typedef struct k_fault_ops {
    void *self; /* the injector's own state */
    /*
     * A message of `type` from task `from` is being queued on endpoint `chan`
     * (owned by task `to`, 0 if in flight). Return extra nanoseconds before the
     * receiver may see it (0: at once). The kernel keeps each endpoint's queue
     * in send order: a message never overtakes one queued before it, so its
     * due time is at least its predecessor's.
     */
    uint64_t (*send_delay)(void *self, uint32_t from, uint32_t to, uint32_t chan, uint32_t type);
    /* Task `task` armed timer `timer` for deadline_ns: return extra ns (jitter; 0: none). */
    uint64_t (*timer_jitter)(void *self, uint32_t task, uint32_t timer, uint64_t deadline_ns);
} k_fault_ops_t;

/* Install (or with NULL remove) the hooks. Between runs only: not while tasks run. */
void k_fault_set(const k_fault_ops_t *ops);
const k_fault_ops_t *k_fault_get(void);

/*
 * Kill task `task_id` from the platform (an injected crash), between events:
 * its handles close and its supervisor sees OS_EV_TASK_EXIT with `status`
 * (use a negative status, e.g. -129 as os_task_kill gives). 0, OS_ENOENT, or
 * OS_ESTATE if it is already dying.
 */
int k_fault_kill(uint32_t task_id, int status);

#endif
