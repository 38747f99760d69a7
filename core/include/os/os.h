/* os.h — the API every Orrery server is written against: handles, channels, timers, tasks. */
#ifndef OS_OS_H
#define OS_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/codes.h> /* the device codes tasks see: HAL_DEVICE_END, HAL_CONSOLE_* */
#include <os/errno.h>

/* ---- limits --------------------------------------------------------------------------- */

enum {
    OS_MSG_MAX_DATA = 4096,   /* bytes of data in one message */
    OS_MSG_MAX_HANDLES = 4,   /* handles moved by one message */
    OS_HANDLES_MAX = 256,     /* handles one task may hold */
    OS_CHAN_QUEUE_MAX = 128,  /* messages queued on one endpoint */
    OS_NAME_MAX = 32,         /* program and device names, with the NUL */
    OS_SPAWN_MAX_HANDLES = 8, /* initial handles given at spawn */
    OS_BOOT_ARG_MAX = 65536,  /* bytes of init's spawn arg: the boot manifest, the largest
                                 one every platform carries (hosted file, QEMU fw_cfg) */
};

/* ---- handles -------------------------------------------------------------------------- */

/*
 * A handle names an object in the calling task's table: slot index plus a
 * generation, so a closed handle never aliases a later object (OS_EBADH).
 * Valid handles are > 0.
 */
typedef int32_t os_handle_t;
#define OS_HANDLE_NONE ((os_handle_t)0)

/* Rights, checked each time a handle is used. */
enum {
    OS_RIGHT_READ = 1u << 0,     /* receive events from the object */
    OS_RIGHT_WRITE = 1u << 1,    /* send on a channel, set a timer, write a device */
    OS_RIGHT_TRANSFER = 1u << 2, /* move the handle to another task in a message */
    OS_RIGHT_MANAGE = 1u << 3,   /* kill a task */
    OS_RIGHTS_ALL = 0xf,
};

/* ---- tasks and events ----------------------------------------------------------------- */

typedef struct os_ctx os_ctx_t; /* the running task, passed to every handler */

typedef enum os_event_kind {
    OS_EV_MESSAGE = 1,     /* a message arrived on channel `handle` */
    OS_EV_PEER_CLOSED = 2, /* channel `handle`'s peer closed (after all its messages) */
    OS_EV_WRITABLE = 3,    /* channel `handle` can take messages again after OS_EFULL */
    OS_EV_TIMER = 4,       /* timer `handle` reached its deadline */
    OS_EV_TASK_EXIT = 5,   /* task `handle` (spawned by us) ended with `status` */
    OS_EV_DEVICE = 6,      /* device `handle` posted input `type` with data */
} os_event_kind_t;

/* One event. Pointers stay valid until on_event returns. */
typedef struct os_event {
    os_event_kind_t kind;
    os_handle_t handle;                        /* channel, timer, task or device */
    uint32_t type;                             /* MESSAGE: message type; DEVICE: code */
    const void *data;                          /* MESSAGE, DEVICE: payload */
    size_t len;                                /* bytes at data */
    os_handle_t handles[OS_MSG_MAX_HANDLES];   /* MESSAGE: handles now ours */
    size_t nhandles;
    int status; /* TASK_EXIT: exit status (<0: panicked or killed);
                   MESSAGE: OS_ENOSPC if our table was full and the
                   message's handles were closed instead */
} os_event_t;

/*
 * A program of the image. The kernel allocates state_size zeroed bytes for
 * each task of it (os_state), calls start once, then on_event once per event.
 * Handlers run to completion and never block.
 */
typedef struct os_program {
    const char *name;
    size_t state_size;
    void (*start)(os_ctx_t *ctx);
    void (*on_event)(os_ctx_t *ctx, const os_event_t *ev);
} os_program_t;

void *os_state(os_ctx_t *ctx);
uint32_t os_task_id(os_ctx_t *ctx);
const char *os_task_name(os_ctx_t *ctx);

/* Initial handles given at spawn, in order; OS_HANDLE_NONE past the end. */
os_handle_t os_initial_handle(os_ctx_t *ctx, size_t index);
size_t os_initial_handle_count(os_ctx_t *ctx);
/* Bytes given at spawn (init receives the boot manifest). */
void os_spawn_arg(os_ctx_t *ctx, const void **data, size_t *len);

/* ---- channels --------------------------------------------------------------------------- */

/* A pair of connected endpoints, both with all rights. OS_ENOSPC, OS_ENOMEM. */
int os_channel_create(os_ctx_t *ctx, os_handle_t *a, os_handle_t *b);

/*
 * Queue a message on the peer of channel h. Never blocks. The handles are
 * moved: on success they are gone from our table, on failure they stay.
 * OS_EBADH (h or a carried handle), OS_EACCES (no WRITE on h, no TRANSFER on
 * a carried handle), OS_E2BIG (len or nhandles over the limit), OS_EINVAL
 * (h itself carried, a handle twice, not a channel), OS_EPEER, OS_EFULL (then
 * an OS_EV_WRITABLE event follows when the peer's queue drains).
 */
int os_send(os_ctx_t *ctx, os_handle_t h, uint32_t type, const void *data, size_t len,
            const os_handle_t *handles, size_t nhandles);

/*
 * Tag channel h and its peer with an interface id (iface/iface.h), so traces name
 * the messages on it. OS_EBADH, OS_EINVAL (not a channel, or iface_id 0).
 */
int os_channel_tag(os_ctx_t *ctx, os_handle_t h, uint32_t iface_id);

/* Close any handle. A channel's peer sees OS_EV_PEER_CLOSED; queued handles close. */
int os_handle_close(os_ctx_t *ctx, os_handle_t h);

/*
 * Hold (true) or release (false) the events of h: while held, nothing from it
 * is delivered; messages and device input wait in the kernel's bounded queue,
 * so a held channel's senders get OS_EFULL and a held device stops reading
 * its source — backpressure end to end. A channel's OS_EV_WRITABLE still comes
 * through (a task that stopped reading because its send there got OS_EFULL must
 * hear when it may send again). A moved handle arrives released.
 * OS_EBADH, OS_EACCES (no READ).
 */
int os_handle_hold(os_ctx_t *ctx, os_handle_t h, bool hold);

/* Replace h by a new handle to the same object with fewer rights. OS_EACCES if
 * `rights` asks for a right h lacks. h is invalid afterwards. */
int os_handle_replace(os_ctx_t *ctx, os_handle_t h, uint32_t rights, os_handle_t *out);

/* ---- timers ----------------------------------------------------------------------------- */

int os_timer_create(os_ctx_t *ctx, os_handle_t *out);
/* Arm (or re-arm) one-shot at deadline_ns of the kernel clock; a past deadline fires at once. */
int os_timer_set(os_ctx_t *ctx, os_handle_t timer, uint64_t deadline_ns);
/* Disarm; a fire already queued is dropped. */
int os_timer_cancel(os_ctx_t *ctx, os_handle_t timer);

/* Nanoseconds of the kernel clock (recorded in traces). */
uint64_t os_clock_now(os_ctx_t *ctx);
/* Random bytes (recorded in traces; seeded in deterministic mode). */
void os_random(os_ctx_t *ctx, void *buf, size_t len);

/* ---- tasks ---------------------------------------------------------------------------- */

typedef struct os_spawn_args {
    const char *program;         /* name in the image */
    const os_handle_t *handles;  /* moved to the child, its initial handles */
    size_t nhandles;             /* <= OS_SPAWN_MAX_HANDLES */
    const void *arg;             /* copied; the child reads it with os_spawn_arg */
    size_t arg_len;              /* <= OS_MSG_MAX_DATA (init's, from the kernel: OS_BOOT_ARG_MAX) */
    uint32_t restarts;           /* shown by `ps`: how often the supervisor restarted it */
    bool privileged;             /* may spawn privileged tasks and shut down; needs a privileged caller */
} os_spawn_args_t;

/*
 * Start a task. *task receives a handle (READ|MANAGE) on which OS_EV_TASK_EXIT
 * arrives. OS_ENOENT (no such program), OS_EACCES (privileged from an
 * unprivileged caller), OS_E2BIG, OS_EBADH, OS_ENOMEM, OS_ENOSPC.
 */
int os_spawn(os_ctx_t *ctx, const os_spawn_args_t *args, os_handle_t *task);
/* The id (as in os_task_list) of the task behind a task handle; it stays valid after the
 * task ended. OS_EBADH, OS_EINVAL (not a task handle). */
int os_task_handle_id(os_ctx_t *ctx, os_handle_t task, uint32_t *id);
/* Kill a task we hold a MANAGE handle to. Its handles close; we get OS_EV_TASK_EXIT. */
int os_task_kill(os_ctx_t *ctx, os_handle_t task);

/* Exit statuses the kernel gives a task it ends (OS_EV_TASK_EXIT.status). */
enum {
    OS_EXIT_PANIC = -128,  /* os_panic, OS_ASSERT */
    OS_EXIT_KILLED = -129, /* os_task_kill, or alive at teardown */
    OS_EXIT_FAULT = -130,  /* the platform caught a bad access or instruction */
};

/*
 * Statuses the whole OS ends with (os_shutdown; the exit status of `orrery run` and of
 * `orrery qemu`). Every platform reports 0..OS_EXIT_STATUS_MAX exactly (QEMU's
 * isa-debug-exit gives 2 * (status + 1) + 1, an 8-bit exit code). A user may ask for
 * 0..OS_EXIT_USER_MAX (the shell's `shutdown N` refuses others); the statuses above it
 * are the OS's own, so a status always says who ended the run and why.
 */
enum {
    OS_EXIT_USER_MAX = 119,     /* `shutdown N`: 0..119 */
    OS_EXIT_INPUT_ENDED = 120,  /* console input ended and no task can act on it */
    OS_EXIT_NOTHING_LEFT = 121, /* every program init supervises ended for good */
    OS_EXIT_BAD_MANIFEST = 122, /* init could not use the boot manifest */
    OS_EXIT_KERNEL_PANIC = 125, /* bare metal: the kernel faulted or panicked */
    OS_EXIT_STATUS_MAX = 126,   /* largest reportable; larger or negative become this */
};

/* End the calling task now (does not return). */
_Noreturn void os_exit(os_ctx_t *ctx, int status);
/* Kill the calling task with a message on the console (does not return). */
_Noreturn void os_panic(os_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define OS_ASSERT(ctx, cond)                                                                    \
    do {                                                                                        \
        if (!(cond))                                                                            \
            os_panic((ctx), "assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__);         \
    } while (0)

/* Stop the whole OS with this exit status (privileged tasks only: OS_EACCES). */
int os_shutdown(os_ctx_t *ctx, int status);

/* A log line on the console, prefixed with the task's name. */
void os_log(os_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- devices ---------------------------------------------------------------------------- */

/* Open a platform device by name ("console"). One task at a time: OS_EBUSY. */
int os_device_open(os_ctx_t *ctx, const char *name, os_handle_t *out);
/* Write to a device (for the console: HAL_CONSOLE_WRITE and the bytes). */
int os_device_write(os_ctx_t *ctx, os_handle_t dev, uint32_t code, const void *data, size_t len);

/* ---- introspection (for ps and ipc) --------------------------------------------------- */

typedef enum os_task_state {
    OS_TASK_READY = 1,   /* has events waiting */
    OS_TASK_RUNNING = 2, /* a worker runs its handler now */
    OS_TASK_IDLE = 3,    /* waiting for an event */
} os_task_state_t;

typedef struct os_task_info {
    uint32_t id;
    char name[OS_NAME_MAX];
    os_task_state_t state;
    uint32_t handles;      /* handles held */
    uint32_t cpu_ms;       /* time spent in its handlers, ms, wrapping at 2^32 (take
                              differences modulo 2^32); simulated: virtual time, so 0 */
    uint64_t msgs_sent;
    uint64_t msgs_received;
    uint32_t restarts;
} os_task_info_t;

typedef struct os_chan_info {
    uint32_t id;           /* endpoint id (the pair is id, peer) */
    uint32_t peer;         /* 0 if the peer closed */
    uint32_t owner;        /* task holding this endpoint, 0 if in flight */
    uint32_t peer_owner;
    uint32_t queued;       /* messages waiting on this endpoint */
    uint32_t peer_queued;
} os_chan_info_t;

/* Fill up to max entries, ordered by id; return how many exist (may be > max). */
int os_task_list(os_ctx_t *ctx, os_task_info_t *out, size_t max);
/* Each channel once (the lower endpoint id first). */
int os_chan_list(os_ctx_t *ctx, os_chan_info_t *out, size_t max);
const char *os_task_state_name(os_task_state_t state);

#endif
