/* fault.h — the kernel's fault-injection hooks (set by a platform such as sim/) and its self-audit. */
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
#define K_FAULT_OPS_VERSION 1
typedef struct k_fault_ops {
    int version; /* K_FAULT_OPS_VERSION */
    void *self;  /* the injector's own state */
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

/* One task as the audit sees it. */
typedef struct k_audit_task {
    uint32_t id;
    char name[32];
    uint32_t handles;   /* slots in use */
    uint32_t pending;   /* objects with events waiting */
    bool ready;         /* in the scheduler's queue */
} k_audit_task_t;

/*
 * Check the kernel's own bookkeeping (no worker may be running): every used
 * handle slot points at an object held by that task, free-slot counts match,
 * every channel endpoint's peer points back, the live channel count matches
 * the object list, queued message counts match the queues, ready tasks are
 * counted. Fills up to max tasks into out (may be NULL) and *ntasks. Returns
 * 0, or -1 with the first inconsistency described in err.
 */
int k_audit(k_audit_task_t *out, size_t max, size_t *ntasks, char *err, size_t errlen);

/*
 * k_audit in time proportional to the tasks and live objects, not to the handle tables
 * (OS_HANDLES_MAX slots per task): it walks the object list instead of every slot, so
 * it checks every listed object against the slot its handle names, but it cannot see
 * a used slot that no object claims beyond the devices' count (K_DEVICES_MAX), e.g. a
 * slot freed without being cleared. Meant for checks after every operation (fuzzers),
 * with a full k_audit now and then; handles in out[] are the used-slot counts.
 */
int k_audit_quick(k_audit_task_t *out, size_t max, size_t *ntasks, char *err, size_t errlen);

#endif
