/* kernel.h — the kernel as a library: what a platform (hal-linux, sim, hal-baremetal) calls. */
#ifndef K_KERNEL_H
#define K_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/device.h>
#include <hal/trace.h>
#include <os/os.h>

/*
 * Scheduling policy: which ready task a worker runs next. The kernel calls
 * these with its scheduler lock held. A policy keeps its own queue.
 */
typedef struct k_task k_task_t;
typedef struct k_sched_policy {
    const char *name; /* "fifo", "seeded" */
    /* Make room for up to max_tasks; called once at boot. 0 or OS_ENOMEM. */
    int (*init)(void **self, size_t max_tasks, uint64_t seed);
    /* `task` became ready (it is not queued already). */
    void (*push)(void *self, k_task_t *task);
    /* Remove and return the task `worker` should run next, or NULL.
     * `can_run(task, worker)` says whether a task may run there (affinity). */
    k_task_t *(*pop)(void *self, unsigned worker, bool (*can_run)(k_task_t *, unsigned));
    /* Forget `task` if queued (it is being destroyed). */
    void (*remove)(void *self, k_task_t *task);
    void (*fini)(void *self);
} k_sched_policy_t;

extern const k_sched_policy_t k_sched_fifo;   /* hosted: first ready, first run */
extern const k_sched_policy_t k_sched_seeded; /* deterministic: a seeded pick among the ready */

enum {
    K_WORKERS_MAX = 64, /* workers one kernel runs (k_config.workers, k_run_one's worker) */
};

typedef struct k_config {
    const os_program_t *const *programs; /* the image: NULL-terminated */
    const char *init_program;            /* first task, privileged ("init") */
    const void *init_arg;                /* its spawn arg (the boot manifest) */
    size_t init_arg_len;
    unsigned workers;                    /* workers that will call k_run_one, 1..K_WORKERS_MAX */
    const k_sched_policy_t *policy;      /* NULL: k_sched_fifo */
    uint64_t seed;                       /* for the seeded policy */
    const hal_trace_sink_t *trace;       /* NULL: no tracing */
    size_t max_tasks;                    /* 0: 256 */
} k_config_t;

/*
 * Register a device before k_boot. Returns its device number (>= 1, in order of
 * registration; k_post takes it) or OS_EINVAL (no name, or one of OS_NAME_MAX or more),
 * OS_EEXIST (the name is taken), OS_ENOSPC (16 devices already). Its object id, shown in
 * traces, comes from the kernel's one object counter at boot (or at once, after boot).
 */
int k_device_add(const hal_device_ops_t *ops);

/* Create the kernel and its init task. 0 or a negative code (OS_ENOENT: no init). */
int k_boot(const k_config_t *cfg);

/*
 * Run one event of one ready task on `worker`. Returns true if it ran
 * something, false if nothing was ready for this worker. Several workers may
 * call it at once; a task runs on one worker at a time.
 */
bool k_run_one(unsigned worker);

/* Fire every timer whose deadline has passed (by hal_clock_now_ns), then
 * re-arm the HAL timer for the next one. Any thread. */
void k_timer_tick(void);

/*
 * The task running on `worker` faulted (a platform exception or signal
 * handler caught a page fault, a bad instruction...): print `what` with the
 * task's name, kill that task alone (its handles close, its supervisor gets
 * OS_EV_TASK_EXIT) and resume the worker's k_run_one, which returns true.
 * Does not return. Call it only when k_in_task(worker) is true; otherwise the
 * fault is the kernel's own and the platform must panic.
 */
_Noreturn void k_task_fault(unsigned worker, const char *what);
/* True while `worker` is inside a task's handler (start or on_event). */
bool k_in_task(unsigned worker);

/* Earliest armed timer deadline, or UINT64_MAX. */
uint64_t k_next_deadline(void);

/* True if no task is ready or running. */
bool k_idle(void);

/*
 * Device input from the platform, any thread: queue (code, data) for the task
 * that opened device `dev`. Copies data. OS_EFULL when its queue is full
 * (the device's resume op is called when it drains), OS_E2BIG, OS_EINVAL.
 * Input posted before any task opened the device waits in the queue.
 */
int k_post(int dev, uint32_t code, const void *data, size_t len);

/* True once a task called os_shutdown; *status receives its exit status. */
bool k_shutdown_requested(int *status);

/* Pin a task (by id) to one worker, or unpin with worker < 0. For benchmarks. */
int k_task_pin(uint32_t task_id, int worker);
/* Find a live task by program name; its id, or 0. */
uint32_t k_task_find(const char *name);

/*
 * Destroy every task and object and free all kernel memory; flushes the
 * trace sink. No worker may be running. Returns the number of kernel
 * allocations still live after teardown (0 unless there is a leak).
 */
long k_teardown(void);

/* Counters for tests and benchmarks. */
typedef struct k_stats {
    uint64_t events;        /* handler invocations */
    uint64_t messages;      /* messages delivered */
    uint64_t trace_records; /* records given to the sink */
    uint32_t tasks;         /* live tasks */
    uint32_t channels;      /* live endpoints */
    long allocations;       /* live kernel allocations */
    uint32_t spare_messages; /* of those, message buffers kept for reuse (at most 256) */
} k_stats_t;
void k_get_stats(k_stats_t *out);

/* Name of a trace kind ("SEND"), or "?". */
const char *k_trace_kind_name(uint32_t kind);

/* Fault injection for tests: make the Nth kernel allocation from now fail
 * (1 = the next one); 0 turns it off. */
void k_fail_alloc_after(long n);

#endif
