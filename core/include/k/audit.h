/* audit.h — the kernel's self-check of its own bookkeeping, for simulators, fuzzers and tests. */
#ifndef K_AUDIT_H
#define K_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One task as the audit sees it. */
typedef struct k_audit_task {
    uint32_t id;
    char name[32];
    uint32_t handles; /* slots in use */
    uint32_t pending; /* objects with events waiting */
    bool ready;       /* in the scheduler's queue */
} k_audit_task_t;

/*
 * Check the kernel's own bookkeeping (no worker may be running): every used
 * handle slot points at an object held by that task, free-slot counts match,
 * every channel endpoint's peer points back, the live channel count matches
 * the object list, queued message counts match the queues, ready tasks are
 * counted, the spare message buffers match their count and bound. Fills up to max tasks into out (may be NULL) and *ntasks. Returns
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
