/* kt.c — a tiny single-threaded test platform for kernel unit tests (manual clock, captured I/O).
 */
#include "kt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hal/host.h>

#include <k/replay.h>

#include "../core/kpriv.h" /* the kernel lock, to check the HAL's calling contract */

/* ---- the platform ----------------------------------------------------------------------- */

static uint64_t now_ns;
static uint64_t armed = UINT64_MAX;
static char console[65536];
static size_t console_len;
static int shutdowns, shutdown_status;
static int wakes, last_wake;
static uint64_t entropy_state = 1;

static uint64_t kt_clock(void)
{
    return now_ns;
}

static void kt_timer_arm(uint64_t deadline)
{
    armed = deadline;
}

static void kt_entropy(void *buf, size_t len)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        entropy_state = entropy_state * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(entropy_state >> 56);
    }
}

static void kt_console_write(const void *buf, size_t len)
{
    size_t room = sizeof(console) - 1 - console_len;
    if (len > room)
        len = room;
    memcpy(console + console_len, buf, len);
    console_len += len;
    console[console_len] = '\0';
}

static void kt_wake(int worker)
{
    /* hal/cpu.h: the kernel wakes a worker with its lock held. One thread runs here, so the
     * lock's state is exact: a wake without it is a kernel path that forgot to lock. */
    if (!atomic_load_explicit(&K.lock.held, memory_order_relaxed)) {
        fputs("kt: hal_cpu_wake called without the kernel lock held\n", stderr);
        abort();
    }
    wakes++;
    last_wake = worker;
}

static void kt_yield(void)
{
}

static void kt_shutdown(int status)
{
    shutdowns++;
    shutdown_status = status;
}

static const hal_host_t kt_platform = {
    .name = "kt",
    .clock_now_ns = kt_clock,
    .timer_arm = kt_timer_arm,
    .entropy_fill = kt_entropy,
    .console_write = kt_console_write,
    .cpu_wake = kt_wake,
    .cpu_yield = kt_yield,
    .shutdown = kt_shutdown,
};

/* ---- counting trace sink ---------------------------------------------------------------- */

enum { KT_KINDS = 64 };
static uint64_t trace_counts[KT_KINDS];
static uint64_t trace_total;
static bool trace_seq_ok = true;
static hal_trace_rec_t trace_last[KT_KINDS];

static void kt_record(void *self, const hal_trace_rec_t *rec)
{
    trace_total++;
    if (rec->seq != trace_total)
        trace_seq_ok = false;
    if (rec->kind < KT_KINDS) {
        trace_counts[rec->kind]++;
        trace_last[rec->kind] = *rec;
        trace_last[rec->kind].data = NULL;
    }
}

static const hal_trace_sink_t kt_sink = {
    .self = NULL,
    .record = kt_record,
    .flush = NULL,
};

const hal_trace_sink_t *kt_trace_sink(void)
{
    return &kt_sink;
}

uint64_t kt_trace_count(uint32_t kind)
{
    return kind < KT_KINDS ? trace_counts[kind] : 0;
}

uint64_t kt_trace_total(void)
{
    return trace_total;
}

bool kt_trace_seq_ok(void)
{
    return trace_seq_ok;
}

bool kt_trace_last(uint32_t kind, hal_trace_rec_t *out)
{
    if (kind >= KT_KINDS || !trace_counts[kind])
        return false;
    *out = trace_last[kind];
    return true;
}

/* ---- generic programs ------------------------------------------------------------------- */

enum { KT_PROGS = 4 };
static const char *const prog_names[KT_PROGS] = {"test", "peer", "child", "other"};
static kt_start_fn hook_start[KT_PROGS];
static kt_event_fn hook_event[KT_PROGS];
static os_ctx_t *last_ctx[KT_PROGS];

kt_event_t kt_events[KT_EVENTS_MAX];
size_t kt_nevents;

static int prog_index(const char *name)
{
    for (int i = 0; i < KT_PROGS; i++)
        if (strcmp(prog_names[i], name) == 0)
            return i;
    return -1;
}

static void kt_prog_start(os_ctx_t *ctx)
{
    int i = prog_index(os_task_name(ctx));
    last_ctx[i] = ctx;
    if (hook_start[i])
        hook_start[i](ctx);
}

static void kt_prog_event(os_ctx_t *ctx, const os_event_t *ev)
{
    int i = prog_index(os_task_name(ctx));
    if (kt_nevents < KT_EVENTS_MAX) {
        kt_event_t *e = &kt_events[kt_nevents++];
        e->task = os_task_id(ctx);
        strncpy(e->program, prog_names[i], OS_NAME_MAX - 1);
        e->ev = *ev;
        size_t n = ev->len < sizeof(e->data) ? ev->len : sizeof(e->data);
        if (n)
            memcpy(e->data, ev->data, n);
        e->ev.data = e->data;
    }
    if (hook_event[i])
        hook_event[i](ctx, ev);
}

#define KT_PROGRAM(var, nm)                                                                        \
    static const os_program_t var = {                                                              \
        .name = nm,                                                                                \
        .state_size = 64,                                                                          \
        .start = kt_prog_start,                                                                    \
        .on_event = kt_prog_event,                                                                 \
    }
KT_PROGRAM(prog_test, "test");
KT_PROGRAM(prog_peer, "peer");
KT_PROGRAM(prog_child, "child");
KT_PROGRAM(prog_other, "other");

const os_program_t *const kt_programs[] = {&prog_test, &prog_peer, &prog_child, &prog_other, NULL};

void kt_on(const char *program, kt_start_fn start, kt_event_fn event)
{
    int i = prog_index(program);
    if (i < 0)
        abort();
    hook_start[i] = start;
    hook_event[i] = event;
}

os_ctx_t *kt_ctx_of(const char *program)
{
    int i = prog_index(program);
    return i < 0 ? NULL : last_ctx[i];
}

size_t kt_count(const char *program, os_event_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < kt_nevents; i++)
        if (kt_events[i].ev.kind == kind && (!program || !strcmp(program, kt_events[i].program)))
            n++;
    return n;
}

const kt_event_t *kt_find(const char *program, os_event_kind_t kind, size_t n)
{
    for (size_t i = 0; i < kt_nevents; i++)
        if (kt_events[i].ev.kind == kind && (!program || !strcmp(program, kt_events[i].program)))
            if (n-- == 0)
                return &kt_events[i];
    return NULL;
}

/* ---- driving the kernel ----------------------------------------------------------------- */

static void kt_reset(void)
{
    now_ns = 0;
    armed = UINT64_MAX;
    console_len = 0;
    console[0] = '\0';
    shutdowns = shutdown_status = 0;
    wakes = 0;
    last_wake = -2;
    entropy_state = 1;
    memset(trace_counts, 0, sizeof(trace_counts));
    trace_total = 0;
    trace_seq_ok = true;
    kt_nevents = 0;
    memset(last_ctx, 0, sizeof(last_ctx));
}

int kt_boot_cfg(k_config_t *cfg)
{
    kt_reset();
    hal_host_set(&kt_platform);
    if (!cfg->programs)
        cfg->programs = kt_programs;
    if (!cfg->workers)
        cfg->workers = 1;
    return k_boot(cfg);
}

int kt_boot(const char *init)
{
    k_config_t cfg = {
        .programs = kt_programs,
        .init_program = init,
        .workers = 1,
        .trace = &kt_sink,
    };
    return kt_boot_cfg(&cfg);
}

size_t kt_run(size_t max)
{
    size_t n = 0;
    while (n < max && k_run_one(0))
        n++;
    return n;
}

void kt_advance(uint64_t ns)
{
    now_ns += ns;
    k_timer_tick();
}

uint64_t kt_now(void)
{
    return now_ns;
}

uint64_t kt_armed(void)
{
    return armed;
}

const char *kt_console(void)
{
    return console;
}

void kt_console_clear(void)
{
    console_len = 0;
    console[0] = '\0';
}

int kt_shutdown_calls(void)
{
    return shutdowns;
}

int kt_shutdown_status(void)
{
    return shutdown_status;
}

int kt_wake_calls(void)
{
    return wakes;
}

int kt_last_wake(void)
{
    return last_wake;
}

long kt_teardown(void)
{
    k_replay_set(NULL, 0, 0, 0); /* a test that attached a replayer and failed leaves none */
    long leaked = k_teardown();
    hal_host_set(NULL);
    for (int i = 0; i < KT_PROGS; i++) {
        hook_start[i] = NULL;
        hook_event[i] = NULL;
    }
    return leaked;
}
