/* kpriv.h — kernel-private objects and state shared by the core sources; guarded by K.lock. */
#ifndef K_PRIV_H
#define K_PRIV_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/clock.h>
#include <hal/cpu.h>
#include <hal/device.h>
#include <hal/trace.h>
#include <k/kernel.h>
#include <os/os.h>

#include "kcheck.h"
#include "klist.h"
#include "lock.h"

enum {
    K_DEVICES_MAX = 16,
    K_MSG_FREE_MAX = 256, /* message buffers kept for reuse */
    K_HANDLE_GEN_MAX = 0x7fffff,
    K_CPU_SAMPLE = 8, /* one event in 8 is timed for a task's CPU time (k_run_one) */
};

/* Object kinds; the values are the ones traces store (hal/trace.h). */
enum k_obj_type {
    K_OBJ_CHAN = HAL_TRACE_OBJ_CHAN,
    K_OBJ_TIMER = HAL_TRACE_OBJ_TIMER,
    K_OBJ_TASK = HAL_TRACE_OBJ_TASK,
    K_OBJ_DEVICE = HAL_TRACE_OBJ_DEVICE,
};

/*
 * Every object has exactly one holder: a slot of one task's handle table
 * (owner != NULL), or a queued message carrying it (owner == NULL, "in
 * flight"). An object with events waiting sits on its owner's pending list.
 */
typedef struct k_obj k_obj_t;
struct k_obj {
    uint8_t type;     /* enum k_obj_type */
    bool pending;     /* linked on owner's pending list */
    bool held;        /* os_handle_hold: its events wait in the kernel, off the pending list */
    uint32_t id;      /* object id, shown in traces and os_chan_list */
    k_task_t *owner;  /* holding task, NULL while in flight */
    os_handle_t hval; /* owner's handle for it */
    k_link_t plink;   /* owner's pending list (k_task_t.pending) while `pending` */
    k_link_t alink;   /* K.objs: every chan, timer, task ref, by id (devices are not on it) */
    k_link_t dlink;   /* k_obj_close's work list */
};

typedef struct k_msg {
    k_link_t link; /* the receiving endpoint's queue, or K.msg_free */
    uint64_t due;  /* injected delay: not deliverable before this clock time (0: at once) */
    uint32_t type;
    uint32_t len;
    uint32_t nh; /* carried objects, owned by the message */
    k_obj_t *objs[OS_MSG_MAX_HANDLES];
    uint32_t rights[OS_MSG_MAX_HANDLES];
    uint8_t data[OS_MSG_MAX_DATA];
} k_msg_t;

typedef struct k_chan {
    k_obj_t obj;
    struct k_chan *peer; /* NULL once the peer closed */
    k_list_t queue;      /* k_msg_t: messages for our holder */
    uint32_t count;      /* on queue */
    uint32_t iface;      /* interface id (os_channel_tag), 0 if untagged; traced */
    bool peer_closed;    /* tell PEER_CLOSED after the queue drains */
    bool peer_closed_told;
    bool want_writable;    /* a send from us got OS_EFULL */
    bool writable_pending; /* tell WRITABLE */
    /* fault injection (fault.c): messages held back by send_delay */
    bool delayed;      /* on K.delayed: a queued message is not due yet */
    uint64_t last_due; /* due time of the last delayed message queued */
    k_link_t dllink;   /* K.delayed */
} k_chan_t;

typedef struct k_timer {
    k_obj_t obj;
    uint64_t deadline;
    uint64_t order;   /* arm order: ties fire first armed, first fired */
    int32_t heap_idx; /* in K.heap, -1 when disarmed */
    bool fired;       /* tell TIMER */
} k_timer_t;

/* The supervisor's handle on a task it spawned. */
typedef struct k_taskref {
    k_obj_t obj;
    k_task_t *task; /* NULL once it ended */
    uint32_t task_id;
    int status;
    bool exited;  /* tell TASK_EXIT */
    bool phantom; /* replay: a recorded spawn, no task behind it (replay.c) */
} k_taskref_t;

typedef struct k_devitem {
    k_link_t link; /* the device's input queue */
    uint32_t code;
    uint32_t len;
    uint8_t data[];
} k_devitem_t;

typedef struct k_device {
    k_obj_t obj; /* owner: the task that opened it */
    const hal_device_ops_t *ops;
    k_list_t queue;   /* k_devitem_t: input for the opener */
    uint32_t count;   /* on queue */
    bool want_resume; /* k_post got OS_EFULL */
    bool ended;       /* HAL_DEVICE_END was delivered: input is over for good */
    bool end_told;    /* ... to the current opener (cleared when it closes the device) */
} k_device_t;

typedef struct k_slot {
    k_obj_t *obj; /* NULL: free */
    uint32_t rights;
    uint32_t gen; /* 1..K_HANDLE_GEN_MAX, bumped at each free */
} k_slot_t;

struct os_ctx {
    k_task_t *task;
    jmp_buf jb; /* os_exit/os_panic/k_task_fault jump back into k_run_one */
};

struct k_task {
    os_ctx_t ctx;
    /* fixed at spawn */
    uint32_t id;
    const os_program_t *prog;
    void *state;
    void *arg;
    size_t arg_len;
    os_handle_t initial[OS_SPAWN_MAX_HANDLES];
    size_t ninitial;
    bool privileged;
    uint32_t restarts;
    /* guarded by K.lock */
    os_task_state_t run; /* READY (in the policy's queue), RUNNING, IDLE */
    bool started;        /* start() was called */
    bool dying;          /* killed while running: destroy after the handler */
    int kill_status;     /* the status a kill while running gives it (with dying) */
    int pin;             /* worker, or -1 */
    k_taskref_t *ref;    /* supervisor's handle, or NULL */
    k_list_t pending;    /* k_obj_t.plink: objects with events waiting */
    uint64_t sent, received;
    uint64_t cpu_ns; /* time in its handlers, by the platform's clock (sampled: K_CPU_SAMPLE) */
    k_link_t tlink; /* K.tasks, by id */
    /* the running worker's, or the task's while idle */
    k_msg_t *cur_msg;      /* message being delivered */
    k_devitem_t *cur_item; /* device input being delivered */
    k_msg_t *spare;        /* buffer for our next send */
    int exit_status;       /* os_exit/os_panic/fault: the status the handler left with */
    /* handle table */
    uint32_t nfree;
    uint16_t freelist[OS_HANDLES_MAX];
    k_slot_t slots[OS_HANDLES_MAX];
};

typedef struct k_kernel {
    k_spin_t lock;
    bool booted;
    bool tearing_down;
    const os_program_t *const *programs;
    unsigned workers;
    size_t max_tasks;
    const k_sched_policy_t *policy;
    void *sched;
    const hal_trace_sink_t *trace;
    /* tasks */
    k_list_t tasks; /* k_task_t.tlink, by id */
    uint32_t ntasks;
    uint32_t next_task_id;
    uint32_t nready, nrunning;
    /* objects */
    k_list_t objs;        /* k_obj_t.alink, by id */
    uint32_t next_obj_id; /* every object's id, devices' included (at boot) */
    uint32_t nchans;
    /* timers: min-heap of armed timers */
    k_timer_t **heap;
    uint32_t heap_len, heap_cap;
    uint32_t ntimers;
    uint64_t timer_order;
    /* fault injection: endpoints holding messages that are not due yet */
    k_list_t delayed; /* k_chan_t.dllink */
    /* message buffers for reuse */
    k_list_t msg_free; /* k_msg_t.link, used as a stack */
    uint32_t nmsg_free;
    /* per worker: the task whose handler runs there (touched only by that worker) */
    k_task_t *cur[K_WORKERS_MAX];
    /* counters */
    uint64_t events, messages;
    atomic_uint_fast64_t trace_seq;
    atomic_int shutdown; /* 1 once os_shutdown was called */
    atomic_int shutdown_status;
    _Atomic(k_task_t *) list_holder; /* task filling os_*_list under the lock (faults) */
} k_kernel_t;

extern k_kernel_t K;

static inline void k_lock(void)
{
    k_spin_lock(&K.lock);
}

static inline void k_unlock(void)
{
    k_spin_unlock(&K.lock);
}

/* alloc.c */
void *k_malloc(size_t n);
void *k_calloc(size_t n, size_t size);
void k_free(void *p);
long k_live_allocs(void);

/* handle.c */
int k_handle_get(k_task_t *t, os_handle_t h, k_slot_t **out);
bool k_handle_room(const k_task_t *t, size_t n);
os_handle_t k_handle_install(k_task_t *t, k_obj_t *obj, uint32_t rights);
void k_handle_remove(k_task_t *t, k_slot_t *slot);
void k_table_init(k_task_t *t);
void k_obj_link(k_obj_t *obj, uint8_t type);
void k_obj_unlink(k_obj_t *obj);
void k_obj_close(k_obj_t *obj);
void k_pend(k_obj_t *obj);
void k_unpend(k_obj_t *obj);
bool k_take_event(k_task_t *t, os_event_t *ev);

/* channel.c */
k_msg_t *k_msg_alloc(void);
void k_msg_free(k_msg_t *m);
void k_msg_drain_free(void);
void k_chan_destroy(k_chan_t *ch, k_list_t *work);
void k_chan_drop_queue(k_chan_t *ch);
bool k_chan_has_event(const k_chan_t *ch);
bool k_chan_take(k_task_t *t, k_chan_t *ch, os_event_t *ev);

/* timer.c */
void k_timer_destroy(k_timer_t *tm);
bool k_timer_take(k_task_t *t, k_timer_t *tm, os_event_t *ev);

/* task.c */
int k_spawn(k_task_t *parent, const os_spawn_args_t *a, os_handle_t *out);
void k_task_destroy(k_task_t *t, int status);
void k_taskref_destroy(k_taskref_t *ref);
bool k_taskref_take(k_task_t *t, k_taskref_t *ref, os_event_t *ev);
/* "[name] <what><formatted>\n" on the console (os_log, os_panic). */
void k_log_line(k_task_t *t, const char *what, const char *fmt, va_list ap);
_Noreturn void k_task_leave(k_task_t *t, int status);

/* sched.c */
void k_sched_ready(k_task_t *t);
bool k_can_run(k_task_t *t, unsigned worker);

/* device.c */
bool k_device_has_event(const k_device_t *d);
bool k_device_take(k_task_t *t, k_device_t *d, os_event_t *ev);
void k_device_closed(k_device_t *d);
void k_device_reset(void);
void k_device_number(void);
void k_device_trace_all(void); /* one DEVICE record per device (boot, tracing on) */

/* Entry of a list of kernel objects (NULL at the end). */
static inline k_task_t *k_task_entry(k_link_t *l)
{
    return K_ENTRY(l, k_task_t, tlink);
}
static inline k_obj_t *k_obj_entry(k_link_t *l)
{
    return K_ENTRY(l, k_obj_t, alink);
}
static inline k_msg_t *k_msg_entry(k_link_t *l)
{
    return K_ENTRY(l, k_msg_t, link);
}
/* The first message queued on an endpoint, or NULL. */
static inline k_msg_t *k_chan_head(const k_chan_t *ch)
{
    return k_msg_entry(ch->queue.first);
}

/* fault.c: hooks, NULL unless a platform installed them (k/fault.h) */
extern const struct k_fault_ops *k_faults;
void k_fault_on_send(k_task_t *from, k_chan_t *peer, k_msg_t *m);
uint64_t k_fault_jitter(k_task_t *t, k_timer_t *tm, uint64_t deadline);
void k_fault_tick(uint64_t now);
uint64_t k_fault_next_due(void);
void k_fault_chan_gone(k_chan_t *ch);

/* A queued message the receiver may see now (injected delays aside, always). */
static inline bool k_msg_due(const k_msg_t *m)
{
    return m->due == 0 || m->due <= hal_clock_now_ns();
}

/* timer.c: the earliest armed deadline or delayed message (lock held) */
uint64_t k_timer_earliest(void);

/* replay.c: hooks for the task being replayed, NULL unless a replayer installed them (k/replay.h)
 */
extern const struct k_replay_ops *k_replay;
extern uint32_t k_replay_task_id;
static inline bool k_replaying(const k_task_t *t)
{
    return __builtin_expect(k_replay != NULL, 0) && t->id == k_replay_task_id;
}
int k_replay_send_result(void);
bool k_replay_clock(uint64_t *now);
bool k_replay_random(void *buf, size_t len);
bool k_replay_list(uint32_t which, void *out, size_t max_bytes, int *rc);
uint32_t k_replay_recorded_id(void);
int k_replay_spawn(k_task_t *parent, const os_spawn_args_t *a, os_handle_t *out);

/* trace.c */
void k_trace_emit(hal_trace_rec_t *rec);
/*
 * A trace point: K_TRACE(.kind = HAL_TR_SEND, .task = t->id, .chan = ..., ...), the fields
 * of a hal_trace_rec_t by name (those not named are 0; seq and time are stamped by
 * k_trace_emit, data is dropped when len is 0). One predictable branch when no sink is set:
 * the record is built only when there is one.
 */
#define K_TRACE(...)                                                                               \
    do {                                                                                           \
        if (__builtin_expect(K.trace != NULL, 0))                                                  \
            k_trace_emit(&(hal_trace_rec_t){__VA_ARGS__});                                         \
    } while (0)

/* The interface tag of a channel object, for records about one (0 for other objects). */
static inline uint32_t k_obj_iface(const k_obj_t *obj)
{
    return obj && obj->type == K_OBJ_CHAN ? ((const k_chan_t *)obj)->iface : 0;
}

#endif
