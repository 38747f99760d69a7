/* replay.h — the kernel's replay hooks: values for the task being replayed come from a recording.
 */
#ifndef K_REPLAY_H
#define K_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * While a replayer is attached (sim/replay*.c, `orrery replay`), the
 * kernel asks it, for the one task being replayed only, for every value that
 * flows into that task: clock reads, random bytes, each send's result, each
 * spawn's result, os_task_list/os_chan_list. Every call site tests one
 * predictable branch (k_replay == NULL) when no replayer is attached. Each
 * slot returns true with the recorded value, or false to let the kernel act
 * as usual (the recording has no more such values). Called with or without
 * the kernel lock: they must not call into the kernel.
 */
typedef struct k_replay_ops {
    void *self;
    bool (*clock)(void *self, uint64_t *now);
    bool (*random)(void *self, void *buf, size_t len);
    /* The recorded result of the next os_send: an error is returned without sending. */
    bool (*send_result)(void *self, int *rc);
    /* The next recorded spawn of `program`: *task_id is the child's recorded id. */
    bool (*spawn)(void *self, const char *program, uint32_t *task_id);
    /* which: a hal_trace_list_t (os_task_list, os_chan_list). Copy at most max_bytes into
     * out; *rc = count. */
    bool (*list)(void *self, uint32_t which, void *out, size_t max_bytes, int *rc);
} k_replay_ops_t;

/*
 * Attach (ops, the replayed task's id in this kernel, the id it had in the
 * recording, and the harness task that stands in for everyone else), or
 * detach with NULL. Between events only.
 *
 * A spawn by the replayed task starts no task: the handles it gives the child
 * move to the harness's table, and the replayed task gets a task handle
 * naming the recorded child id, on which k_replay_task_exit injects the exit.
 */
void k_replay_set(const k_replay_ops_t *ops, uint32_t task_id, uint32_t recorded_id,
                  uint32_t harness_id);

/* Inject inputs the harness cannot cause by itself (between events). 0 or OS_ENOENT. */
int k_replay_writable(uint32_t endpoint_id);             /* OS_EV_WRITABLE on an endpoint */
int k_replay_task_exit(uint32_t taskref_id, int status); /* OS_EV_TASK_EXIT on a task handle */

#endif
