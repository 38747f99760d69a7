/* replay.c — hooks through which `orrery replay` feeds a task its recorded inputs; off by default.
 */
#include <string.h>

#include <k/replay.h>

#include "kpriv.h"

/*
 * Like the fault hooks, these live outside K (k_boot clears K) and every call
 * site tests k_replaying(t): one predictable branch when no replayer is set.
 */
const k_replay_ops_t *k_replay;
uint32_t k_replay_task_id;
static uint32_t replay_recorded_id;
static uint32_t replay_harness_id;

void k_replay_set(const k_replay_ops_t *ops, uint32_t task_id, uint32_t recorded_id,
                  uint32_t harness_id)
{
    k_replay = ops;
    k_replay_task_id = k_replay ? task_id : 0;
    replay_recorded_id = recorded_id;
    replay_harness_id = harness_id;
}

uint32_t k_replay_recorded_id(void)
{
    return replay_recorded_id;
}

int k_replay_send_result(void)
{
    int rc = 0;
    if (k_replay->send_result && k_replay->send_result(k_replay->self, &rc))
        return rc;
    return 0;
}

bool k_replay_clock(uint64_t *now)
{
    return k_replay->clock && k_replay->clock(k_replay->self, now);
}

bool k_replay_random(void *buf, size_t len)
{
    return k_replay->random && k_replay->random(k_replay->self, buf, len);
}

bool k_replay_list(uint32_t which, void *out, size_t max_bytes, int *rc)
{
    return k_replay->list && k_replay->list(k_replay->self, which, out, max_bytes, rc);
}

static k_task_t *task_by_id(uint32_t id)
{
    K_LIST_FOR(t, &K.tasks, k_task_t, tlink)
    if (t->id == id)
        return t;
    return NULL;
}

static k_obj_t *obj_by_id(uint32_t id)
{
    K_LIST_FOR(o, &K.objs, k_obj_t, alink)
    if (o->id == id)
        return o;
    return NULL;
}

/* The replayed task spawns: check as k_spawn does, then hand the child's handles to the harness. */
int k_replay_spawn(k_task_t *parent, const os_spawn_args_t *a, os_handle_t *out)
{
    k_slot_t *carried[OS_SPAWN_MAX_HANDLES];
    uint32_t child = 0;

    if (!a || !a->program || !out)
        return OS_EINVAL;
    if (a->nhandles > OS_SPAWN_MAX_HANDLES || a->arg_len > OS_MSG_MAX_DATA)
        return OS_E2BIG;
    if ((a->nhandles && !a->handles) || (a->arg_len && !a->arg))
        return OS_EINVAL;
    if (!k_replay->spawn || !k_replay->spawn(k_replay->self, a->program, &child))
        return OS_ENOENT; /* the recording has no such spawn: the comparison reports it */
    k_taskref_t *ref = k_calloc(1, sizeof(*ref));
    if (!ref)
        return OS_ENOMEM;
    k_lock();
    k_task_t *harness = task_by_id(replay_harness_id);
    int rc = harness ? 0 : OS_ESTATE;
    for (size_t i = 0; i < a->nhandles && rc == 0; i++) {
        rc = k_handle_get(parent, a->handles[i], &carried[i]);
        if (rc == 0 && !(carried[i]->rights & OS_RIGHT_TRANSFER))
            rc = OS_EACCES;
        for (size_t j = 0; j < i && rc == 0; j++)
            if (carried[j] == carried[i])
                rc = OS_EINVAL;
    }
    if (rc == 0 && (!k_handle_room(parent, 1) || !k_handle_room(harness, a->nhandles)))
        rc = OS_ENOSPC;
    if (rc) {
        k_unlock();
        k_free(ref);
        return rc;
    }
    K_TRACE(.kind = HAL_TR_SPAWN, .task = child, .peer = parent->id, .arg = parent->id,
            .data = a->program, .len = (uint32_t)strlen(a->program),
            .nhandles = (uint32_t)a->nhandles);
    for (size_t i = 0; i < a->nhandles; i++) {
        k_obj_t *obj = carried[i]->obj;
        uint32_t rights = carried[i]->rights;
        k_handle_remove(parent, carried[i]);
        k_handle_install(harness, obj, rights);
    }
    k_obj_link(&ref->obj, K_OBJ_TASK);
    ref->task_id = child;
    ref->phantom = true;
    *out = k_handle_install(parent, &ref->obj, OS_RIGHT_READ | OS_RIGHT_MANAGE);
    k_unlock();
    return 0;
}

int k_replay_writable(uint32_t endpoint_id)
{
    k_lock();
    k_obj_t *o = obj_by_id(endpoint_id);
    if (o && o->type == K_OBJ_CHAN) {
        ((k_chan_t *)o)->writable_pending = true;
        k_pend(o);
    }
    k_unlock();
    return o && o->type == K_OBJ_CHAN ? 0 : OS_ENOENT;
}

int k_replay_task_exit(uint32_t taskref_id, int status)
{
    int rc = OS_ENOENT;
    k_lock();
    k_obj_t *o = obj_by_id(taskref_id);
    if (o && o->type == K_OBJ_TASK && ((k_taskref_t *)o)->phantom) {
        k_taskref_t *ref = (k_taskref_t *)o;
        ref->exited = true;
        ref->status = status;
        k_pend(o);
        rc = 0;
    }
    k_unlock();
    return rc;
}
