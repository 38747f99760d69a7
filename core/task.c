/* task.c — tasks: spawn from the image, exit, panic, kill, faults, supervisors, introspection. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hal/console.h>

#include "kpriv.h"

static const os_program_t *find_program(const char *name)
{
    if (!name || !K.programs)
        return NULL;
    for (const os_program_t *const *p = K.programs; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

static void free_task_memory(k_task_t *t)
{
    k_free(t->state);
    k_free(t->arg);
    k_free(t);
}

/*
 * Create a task. parent NULL is the kernel booting init. Allocates first,
 * then validates the moved handles under the lock, then commits: a failure
 * leaves the parent's table untouched.
 */
int k_spawn(k_task_t *parent, const os_spawn_args_t *a, os_handle_t *out)
{
    os_handle_t hs[OS_SPAWN_MAX_HANDLES];
    k_slot_t *carried[OS_SPAWN_MAX_HANDLES];

    if (!a || !a->program || (parent && !out))
        return OS_EINVAL;
    const os_program_t *prog = find_program(a->program);
    if (!prog)
        return OS_ENOENT;
    /* init's arg is the boot manifest, given by the platform: it may be larger than a message */
    if (a->nhandles > OS_SPAWN_MAX_HANDLES ||
        a->arg_len > (parent ? OS_MSG_MAX_DATA : OS_BOOT_ARG_MAX))
        return OS_E2BIG;
    if ((a->nhandles && !a->handles) || (a->arg_len && !a->arg))
        return OS_EINVAL;
    if (a->privileged && parent && !parent->privileged)
        return OS_EACCES;
    for (size_t i = 0; i < a->nhandles; i++)
        hs[i] = a->handles[i];

    k_task_t *t = k_calloc(1, sizeof(*t));
    if (!t)
        return OS_ENOMEM;
    k_taskref_t *ref = NULL;
    if ((prog->state_size && !(t->state = k_calloc(1, prog->state_size))) ||
        (a->arg_len && !(t->arg = k_malloc(a->arg_len))) ||
        (parent && !(ref = k_calloc(1, sizeof(*ref))))) {
        free_task_memory(t);
        return OS_ENOMEM;
    }
    if (a->arg_len)
        memcpy(t->arg, a->arg, a->arg_len);
    t->arg_len = a->arg_len;
    t->ctx.task = t;
    t->prog = prog;
    t->privileged = a->privileged;
    t->restarts = a->restarts;
    t->run = OS_TASK_IDLE;
    t->pin = -1;
    k_table_init(t);

    k_lock();
    int rc = 0;
    for (size_t i = 0; i < a->nhandles && rc == 0; i++) {
        rc = k_handle_get(parent, hs[i], &carried[i]);
        if (rc == 0 && !(carried[i]->rights & OS_RIGHT_TRANSFER))
            rc = OS_EACCES;
        for (size_t j = 0; j < i && rc == 0; j++)
            if (carried[j] == carried[i])
                rc = OS_EINVAL;
    }
    if (rc == 0 && (K.ntasks >= K.max_tasks || (parent && !k_handle_room(parent, 1))))
        rc = OS_ENOSPC;
    if (rc) {
        k_unlock();
        k_free(ref);
        free_task_memory(t);
        return rc;
    }
    t->id = K.next_task_id++;
    k_list_push(&K.tasks, &t->tlink);
    K.ntasks++;
    K_TRACE(.kind = HAL_TR_SPAWN, .task = t->id, .peer = parent ? parent->id : 0,
            .arg = parent ? parent->id : 0, .data = prog->name, .len = (uint32_t)strlen(prog->name),
            .nhandles = (uint32_t)a->nhandles);
    for (size_t i = 0; i < a->nhandles; i++) {
        k_obj_t *obj = carried[i]->obj;
        uint32_t rights = carried[i]->rights;
        k_handle_remove(parent, carried[i]);
        t->initial[i] = k_handle_install(t, obj, rights);
    }
    t->ninitial = a->nhandles;
    os_handle_t h = OS_HANDLE_NONE;
    if (ref) {
        k_obj_link(&ref->obj, K_OBJ_TASK);
        ref->task = t;
        ref->task_id = t->id;
        t->ref = ref;
        h = k_handle_install(parent, &ref->obj, OS_RIGHT_READ | OS_RIGHT_MANAGE);
    }
    k_sched_ready(t); /* start() is its first event */
    k_unlock();
    if (out)
        *out = h;
    return 0;
}

/* Lock held; t is not running. Close everything it holds and tell its supervisor. */
void k_task_destroy(k_task_t *t, int status)
{
    K_TRACE(.kind = HAL_TR_EXIT, .task = t->id, .result = status);
    if (t->run == OS_TASK_READY) {
        K.policy->remove(K.sched, t);
        K.nready--;
    }
    t->run = OS_TASK_IDLE;
    t->dying = true; /* nothing queues it again while its handles close */
    /* In slot order, as ever; done once the table is empty (slots are handed out from 0 up,
       so a task with a few handles is not a walk of all 256). */
    for (uint32_t i = 0; i < OS_HANDLES_MAX && t->nfree < OS_HANDLES_MAX; i++) {
        k_slot_t *s = &t->slots[i];
        if (s->obj) {
            k_obj_t *obj = s->obj;
            k_handle_remove(t, s);
            k_obj_close(obj);
        }
    }
    if (t->spare)
        k_msg_free(t->spare);
    if (t->ref) {
        k_taskref_t *ref = t->ref;
        ref->task = NULL;
        ref->exited = true;
        ref->status = status;
        k_pend(&ref->obj);
    }
    k_list_remove(&K.tasks, &t->tlink);
    K.ntasks--;
    free_task_memory(t);
}

void k_taskref_destroy(k_taskref_t *ref)
{
    if (ref->task)
        ref->task->ref = NULL; /* it runs on unsupervised */
    k_obj_unlink(&ref->obj);
    k_free(ref);
}

bool k_taskref_take(k_task_t *t, k_taskref_t *ref, os_event_t *ev)
{
    if (!ref->exited)
        return false;
    ref->exited = false;
    ev->kind = OS_EV_TASK_EXIT;
    ev->status = ref->status;
    K_TRACE(.kind = HAL_TR_TASK_EXIT_EVENT, .task = t->id, .chan = ref->obj.id,
            .peer = ref->task_id, .result = ref->status);
    return true;
}

/* Leave the running handler: k_run_one destroys the task. */
_Noreturn void k_task_leave(k_task_t *t, int status)
{
    t->exit_status = status;
    longjmp(t->ctx.jb, 1);
}

_Noreturn void k_task_fault(unsigned worker, const char *what)
{
    k_task_t *t = worker < K_WORKERS_MAX ? K.cur[worker] : NULL;
    char line[160];
    /* The fault may have hit while the task filled an os_*_list buffer. */
    if (t && atomic_load_explicit(&K.list_holder, memory_order_relaxed) == t) {
        atomic_store_explicit(&K.list_holder, NULL, memory_order_relaxed);
        k_unlock();
    }
    int n = snprintf(line, sizeof(line), "[%s] fault: %s\n", t ? t->prog->name : "kernel",
                     what ? what : "?");
    hal_console_write(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
    k_task_leave(t, OS_EXIT_FAULT);
}

bool k_in_task(unsigned worker)
{
    return worker < K_WORKERS_MAX && K.cur[worker] != NULL;
}

/* ---- os API ------------------------------------------------------------------------------ */

void *os_state(os_ctx_t *ctx)
{
    return ctx->task->state;
}

uint32_t os_task_id(os_ctx_t *ctx)
{
    if (k_replaying(ctx->task))
        return k_replay_recorded_id();
    return ctx->task->id;
}

const char *os_task_name(os_ctx_t *ctx)
{
    return ctx->task->prog->name;
}

os_handle_t os_initial_handle(os_ctx_t *ctx, size_t index)
{
    k_task_t *t = ctx->task;
    return index < t->ninitial ? t->initial[index] : OS_HANDLE_NONE;
}

size_t os_initial_handle_count(os_ctx_t *ctx)
{
    return ctx->task->ninitial;
}

void os_spawn_arg(os_ctx_t *ctx, const void **data, size_t *len)
{
    if (data)
        *data = ctx->task->arg;
    if (len)
        *len = ctx->task->arg_len;
}

int os_spawn(os_ctx_t *ctx, const os_spawn_args_t *args, os_handle_t *task)
{
    if (k_replaying(ctx->task))
        return k_replay_spawn(ctx->task, args, task);
    return k_spawn(ctx->task, args, task);
}

int os_task_handle_id(os_ctx_t *ctx, os_handle_t task, uint32_t *id)
{
    k_slot_t *s;
    k_lock();
    int rc = k_handle_get(ctx->task, task, &s);
    if (rc == 0 && s->obj->type != K_OBJ_TASK)
        rc = OS_EINVAL;
    if (rc == 0)
        *id = ((k_taskref_t *)s->obj)->task_id;
    k_unlock();
    return rc;
}

int os_task_kill(os_ctx_t *ctx, os_handle_t task)
{
    k_task_t *t = ctx->task;
    k_slot_t *s;
    k_lock();
    int rc = k_handle_get(t, task, &s);
    if (rc == 0 && s->obj->type != K_OBJ_TASK)
        rc = OS_EINVAL;
    if (rc == 0 && !(s->rights & OS_RIGHT_MANAGE))
        rc = OS_EACCES;
    if (rc == 0) {
        k_task_t *victim = ((k_taskref_t *)s->obj)->task;
        if (!victim && ((k_taskref_t *)s->obj)->phantom && !((k_taskref_t *)s->obj)->exited) {
            rc = 0; /* replay: the recorded child; its TASK_EXIT is injected from the trace */
        } else if (!victim || victim->dying) {
            rc = OS_ESTATE; /* already ended */
        } else if (victim->run == OS_TASK_RUNNING) {
            victim->dying = true; /* k_run_one destroys it after this event */
            victim->kill_status = OS_EXIT_KILLED;
        } else {
            k_task_destroy(victim, OS_EXIT_KILLED);
        }
    }
    k_unlock();
    return rc;
}

_Noreturn void os_exit(os_ctx_t *ctx, int status)
{
    k_task_leave(ctx->task, status);
}

_Noreturn void os_panic(os_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    k_log_line(ctx->task, "panic: ", fmt, ap);
    va_end(ap);
    k_task_leave(ctx->task, OS_EXIT_PANIC);
}

int os_task_list(os_ctx_t *ctx, os_task_info_t *out, size_t max)
{
    if (k_replaying(ctx->task)) {
        int rc;
        if (k_replay_list(HAL_TRACE_LIST_TASKS, out, out ? max * sizeof(*out) : 0, &rc)) {
            K_TRACE(.kind = HAL_TR_LIST, .task = ctx->task->id, .type = HAL_TRACE_LIST_TASKS,
                    .result = rc, .data = out,
                    .len = out && rc > 0
                               ? (uint32_t)(((size_t)rc < max ? (size_t)rc : max) * sizeof(*out))
                               : 0);
            return rc;
        }
    }
    int n = 0;
    k_lock();
    atomic_store_explicit(&K.list_holder, ctx->task, memory_order_relaxed);
    K_LIST_FOR(t, &K.tasks, k_task_t, tlink)
    {
        if (!out || (size_t)n >= max) {
            n++;
            continue;
        }
        os_task_info_t *ti = &out[n++];
        memset(ti, 0, sizeof(*ti));
        ti->id = t->id;
        strncpy(ti->name, t->prog->name, OS_NAME_MAX - 1);
        ti->state = t->run;
        ti->handles = OS_HANDLES_MAX - t->nfree;
        ti->msgs_sent = t->sent;
        ti->msgs_received = t->received;
        ti->restarts = t->restarts;
        ti->cpu_ms = (uint32_t)(t->cpu_ns / 1000000u);
    }
    atomic_store_explicit(&K.list_holder, NULL, memory_order_relaxed);
    K_TRACE(.kind = HAL_TR_LIST, .task = ctx->task->id, .type = HAL_TRACE_LIST_TASKS, .result = n,
            .data = out,
            .len = out ? (uint32_t)(((size_t)n < max ? (size_t)n : max) * sizeof(*out)) : 0);
    k_unlock();
    return n;
}

const char *os_task_state_name(os_task_state_t state)
{
    switch (state) {
    case OS_TASK_READY:
        return "ready";
    case OS_TASK_RUNNING:
        return "running";
    case OS_TASK_IDLE:
        return "idle";
    }
    return "?";
}

uint32_t k_task_find(const char *name)
{
    uint32_t id = 0;
    if (!name)
        return 0;
    k_lock();
    K_LIST_FOR(t, &K.tasks, k_task_t, tlink)
    {
        if (strcmp(t->prog->name, name) == 0) {
            id = t->id;
            break;
        }
    }
    k_unlock();
    return id;
}
