/* kernel.c — the kernel as a library: boot, the run loop, shutdown, teardown, clock, log. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hal/console.h>
#include <hal/entropy.h>

#include "kpriv.h"

k_kernel_t K;

int k_boot(const k_config_t *cfg)
{
    if (!cfg || !cfg->programs || !cfg->init_program)
        return OS_EINVAL;
    if (cfg->workers > K_WORKERS_MAX)
        return OS_EINVAL;
    if (K.booted)
        return OS_ESTATE;
    const k_sched_policy_t *policy = cfg->policy ? cfg->policy : &k_sched_fifo;

    memset(&K, 0, sizeof(K));
    K.programs = cfg->programs;
    K.workers = cfg->workers ? cfg->workers : 1;
    K.max_tasks = cfg->max_tasks ? cfg->max_tasks : 256;
    K.policy = policy;
    K.next_task_id = 1;
    K.next_obj_id = 1;
    k_device_number(); /* devices take the first object ids */
    int rc = policy->init(&K.sched, K.max_tasks, cfg->seed);
    if (rc)
        return rc;
    K.trace = cfg->trace;
    K.booted = true;
    k_device_trace_all(); /* the first records: which id is which device */

    os_spawn_args_t a = {
        .program = cfg->init_program,
        .arg = cfg->init_arg,
        .arg_len = cfg->init_arg_len,
        .privileged = true,
    };
    rc = k_spawn(NULL, &a, NULL);
    if (rc) {
        K.booted = false;
        K.trace = NULL;
        policy->fini(K.sched);
        K.sched = NULL;
    }
    return rc;
}

/* Call the handler; true if it left through os_exit, os_panic or a fault. */
static bool call_handler(k_task_t *t, bool start, const os_event_t *ev)
{
    if (setjmp(t->ctx.jb))
        return true;
    if (start) {
        if (t->prog->start)
            t->prog->start(&t->ctx);
    } else if (t->prog->on_event) {
        t->prog->on_event(&t->ctx, ev);
    }
    return false;
}

bool k_run_one(unsigned worker)
{
    os_event_t ev;
    k_task_t *t;
    bool start = false;

    if (worker >= K_WORKERS_MAX)
        return false;
    k_lock();
    for (;;) {
        t = K.booted ? K.policy->pop(K.sched, worker, k_can_run) : NULL;
        if (!t) {
            k_unlock();
            return false;
        }
        K.nready--;
        t->run = OS_TASK_RUNNING; /* events arriving now re-queue it after the handler */
        if (!t->started) {
            t->started = true;
            start = true;
            break;
        }
        if (k_take_event(t, &ev))
            break;
        t->run = OS_TASK_IDLE; /* its pending events went away (cancelled, moved) */
    }
    K.nrunning++;
    K.events++;
    /* A task's CPU time (top) is sampled, not measured on every event: two clock reads cost
     * as much as a whole same-worker round trip on hosts where a clock read is ~40 ns. One
     * event in K_CPU_SAMPLE, picked by a hash of the event count (so a task whose events
     * alternate in a short cycle is not always sampled on the same kind), is timed and
     * counts K_CPU_SAMPLE times. */
    bool timed = ((K.events * 0x9e3779b97f4a7c15ull) >> 61) == 0; /* 1 in 8 = K_CPU_SAMPLE */
    if (start)
        K_TRACE(.kind = HAL_TR_START, .task = t->id);
    k_unlock();

    K.cur[worker] = t;
    uint64_t began = timed ? hal_clock_now_ns() : 0;
    bool left = call_handler(t, start, &ev);
    uint64_t spent = timed ? (hal_clock_now_ns() - began) * K_CPU_SAMPLE : 0;
    K.cur[worker] = NULL;

    k_lock();
    t->cpu_ns += spent;
    K.nrunning--;
    if (t->cur_msg) {
        /* The delivered buffer becomes our next send's buffer. */
        if (!t->spare)
            t->spare = t->cur_msg;
        else
            k_msg_free(t->cur_msg);
        t->cur_msg = NULL;
    }
    k_devitem_t *item = t->cur_item;
    t->cur_item = NULL;
    if (left || t->dying) {
        k_task_destroy(t, left ? t->exit_status : t->kill_status);
    } else {
        t->run = OS_TASK_IDLE;
        if (!k_list_empty(&t->pending))
            k_sched_ready(t);
    }
    k_unlock();
    k_free(item);
    return true;
}

bool k_idle(void)
{
    k_lock();
    bool idle = K.nready == 0 && K.nrunning == 0;
    k_unlock();
    return idle;
}

bool k_shutdown_requested(int *status)
{
    if (!atomic_load(&K.shutdown))
        return false;
    if (status)
        *status = atomic_load(&K.shutdown_status);
    return true;
}

int os_shutdown(os_ctx_t *ctx, int status)
{
    if (!ctx->task->privileged)
        return OS_EACCES;
    if (k_replaying(ctx->task))
        return 0; /* replay: the replayer ends the run when the recording does */
    k_lock();
    atomic_store(&K.shutdown_status, status);
    atomic_store(&K.shutdown, 1);
    hal_shutdown(status);
    k_unlock();
    return 0;
}

long k_teardown(void)
{
    k_lock();
    if (K.booted) {
        K.tearing_down = true;
        while (!k_list_empty(&K.tasks))
            k_task_destroy(k_task_entry(K.tasks.first), OS_EXIT_KILLED);
        /* What is left is in flight, possibly in cycles (A's queue carries B, B's carries
         * A): empty every queue first, then destroy each object alone. */
        K_LIST_FOR(o, &K.objs, k_obj_t, alink)
        if (o->type == K_OBJ_CHAN)
            k_chan_drop_queue((k_chan_t *)o);
        while (!k_list_empty(&K.objs))
            k_obj_close(k_obj_entry(K.objs.first));
        k_msg_drain_free();
        k_free(K.heap);
        K.policy->fini(K.sched);
        if (K.trace && K.trace->flush)
            K.trace->flush(K.trace->self);
    }
    k_device_reset();
    memset(&K, 0, sizeof(K)); /* also releases the lock */
    k_fail_alloc_after(0);
    return k_live_allocs();
}

void k_get_stats(k_stats_t *out)
{
    k_lock();
    out->events = K.events;
    out->messages = K.messages;
    out->trace_records = atomic_load(&K.trace_seq);
    out->tasks = K.ntasks;
    out->channels = K.nchans;
    out->allocations = k_live_allocs();
    out->spare_messages = K.nmsg_free;
    k_unlock();
}

/* ---- os API: values flowing into a task, and the console log ----------------------------- */

uint64_t os_clock_now(os_ctx_t *ctx)
{
    uint64_t now;
    if (!k_replaying(ctx->task) || !k_replay_clock(&now))
        now = hal_clock_now_ns();
    K_TRACE(.kind = HAL_TR_CLOCK_READ, .task = ctx->task->id, .arg = now);
    return now;
}

void os_random(os_ctx_t *ctx, void *buf, size_t len)
{
    if (!buf || !len)
        return;
    if (!k_replaying(ctx->task) || !k_replay_random(buf, len))
        hal_entropy_fill(buf, len);
    K_TRACE(.kind = HAL_TR_RANDOM, .task = ctx->task->id, .data = buf, .len = (uint32_t)len);
}

void k_log_line(k_task_t *t, const char *what, const char *fmt, va_list ap)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "[%s] %s", t->prog->name, what);
    if (n >= 0 && (size_t)n < sizeof(line) - 1)
        vsnprintf(line + n, sizeof(line) - 1 - (size_t)n, fmt, ap);
    size_t len = strnlen(line, sizeof(line) - 2); /* cut long lines, keep room for '\n' */
    line[len++] = '\n';
    hal_console_write(line, len);
}

/* A NEVER or ALWAYS guessed wrong (kcheck.h): a kernel bug, so stop where it was found. */
_Noreturn void k_check_failed(const char *what, const char *expr, const char *file, int line)
{
    char msg[256];
    int n = snprintf(msg, sizeof(msg), "kernel: %s(%s) failed at %s:%d\n", what, expr, file, line);
    hal_console_write(msg, n < (int)sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    __builtin_trap();
}

void os_log(os_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    k_log_line(ctx->task, "", fmt, ap);
    va_end(ap);
}
