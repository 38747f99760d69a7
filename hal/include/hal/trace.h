/* trace.h — HAL contract: the sink that receives every IPC event the kernel records. */
#ifndef HAL_TRACE_H
#define HAL_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* What happened. Values are stored in traces: append, never renumber. */
#define HAL_TRACE_KINDS(X)                                                              \
    X(SPAWN, 1)        /* task created: arg = parent task, data = program name */      \
    X(EXIT, 2)         /* task ended: result = exit status (negative: panic/kill) */   \
    X(CHAN_CREATE, 3)  /* chan = endpoint A id, peer = endpoint B id */                \
    X(SEND, 4)         /* task sent on chan: type, len, nhandles, data; result */      \
    X(DELIVER, 5)      /* task received a message from chan: type, len, data */        \
    X(CLOSE, 6)        /* task closed handle of object chan */                         \
    X(PEER_CLOSED, 7)  /* task was told chan's peer closed */                          \
    X(WRITABLE, 8)     /* task was told chan is writable again */                      \
    X(TIMER_SET, 9)    /* task armed timer chan for arg = deadline ns */               \
    X(TIMER_CANCEL, 10)/* task cancelled timer chan */                                 \
    X(TIMER_FIRE, 11)  /* task was told timer chan fired */                            \
    X(DEV_POST, 12)    /* platform posted device input: chan = device, type = code */  \
    X(DEV_EVENT, 13)   /* task received device input: chan = device, type, data */     \
    X(DEV_WRITE, 14)   /* task wrote to device chan: type, data; result */             \
    X(CLOCK_READ, 15)  /* task read the clock: arg = value returned */                 \
    X(RANDOM, 16)      /* task drew random bytes: data */                              \
    X(TASK_EXIT_EVENT, 17) /* supervisor was told task `peer` ended: result */         \
    X(START, 18)       /* task's start() ran */                                       \
    X(HANDLE, 19)      /* handle arg installed in task's table for object chan:      */ \
                       /* type = hal_trace_obj_t | rights << 8 (spawn, create, ...)  */ \
    X(LIST, 20)        /* task read a list, type = hal_trace_list_t:                 */ \
                       /* result = count returned, data = the entries filled        */ \
    X(DEVICE, 21)      /* device chan exists: type = its number (k_post's),          */ \
                       /* data = its name ("net0"); at boot, or when added after it */

typedef enum hal_trace_kind {
#define HAL_TRACE_KIND_ENUM(name, value) HAL_TR_##name = (value),
    HAL_TRACE_KINDS(HAL_TRACE_KIND_ENUM)
#undef HAL_TRACE_KIND_ENUM
} hal_trace_kind_t;

/* Object kinds (HANDLE and CLOSE records' type). Stored in traces: never renumber. */
typedef enum hal_trace_obj {
    HAL_TRACE_OBJ_CHAN = 1,   /* channel endpoint */
    HAL_TRACE_OBJ_TIMER = 2,  /* timer */
    HAL_TRACE_OBJ_TASK = 3,   /* a supervisor's task handle */
    HAL_TRACE_OBJ_DEVICE = 4, /* device */
} hal_trace_obj_t;

/* Which list a LIST record read (its type). Stored in traces: never renumber. */
typedef enum hal_trace_list {
    HAL_TRACE_LIST_TASKS = 1, /* os_task_list: os_task_info_t entries */
    HAL_TRACE_LIST_CHANS = 2, /* os_chan_list: os_chan_info_t entries */
} hal_trace_list_t;

/*
 * One record. Object ids (chan, peer for CHAN_CREATE) come from one kernel-wide
 * counter for every kind of object, devices included, so within one run an id
 * names one object. (Traces recorded before devices joined that counter may
 * reuse a device's id for a channel.)
 * Pointers are valid only during the record() call.
 */
typedef struct hal_trace_rec {
    uint64_t seq;      /* kernel-wide sequence number, from 1, no gaps */
    uint64_t time_ns;  /* kernel clock */
    uint64_t arg;      /* kind-specific (deadline, clock value, parent) */
    uint32_t kind;     /* hal_trace_kind_t */
    uint32_t task;     /* task id the event belongs to (0: the kernel/platform) */
    uint32_t chan;     /* object id: channel endpoint, timer, device */
    uint32_t peer;     /* peer endpoint id or other task id, 0 if none */
    uint32_t type;     /* message type or device code */
    int32_t result;    /* 0 or negative OS_E* code */
    uint32_t len;      /* bytes at data */
    uint32_t nhandles; /* handles carried by a message */
    uint32_t iface;    /* interface id the channel was tagged with (0: unknown) */
    const void *data;  /* payload, len bytes (NULL when len is 0) */
} hal_trace_rec_t;

/*
 * Trace sink ops. record() may be called from several workers at once and
 * with kernel locks held: it must be quick and must not call into the kernel.
 * Records from one task arrive in seq order; across workers they may
 * interleave, and the sink orders them by seq.
 */
typedef struct hal_trace_sink {
    void *self; /* the sink's own state */
    void (*record)(void *self, const hal_trace_rec_t *rec);
    void (*flush)(void *self); /* at shutdown: make everything durable; may be NULL */
} hal_trace_sink_t;

#endif
