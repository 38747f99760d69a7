/* handle.c — per-task handle tables (index + generation, rights), object lists, pending events. */
#include "kpriv.h"

/*
 * A handle is (generation << 8) | slot index. Generations start at 1, so a
 * valid handle is always >= 256 > 0, and freeing a slot bumps its generation:
 * a closed handle is OS_EBADH, never an alias of the slot's next object.
 */
static os_handle_t handle_value(uint32_t idx, uint32_t gen)
{
    return (os_handle_t)((gen << 8) | idx);
}

void k_table_init(k_task_t *t)
{
    t->nfree = OS_HANDLES_MAX;
    for (uint32_t i = 0; i < OS_HANDLES_MAX; i++) {
        t->freelist[i] = (uint16_t)(OS_HANDLES_MAX - 1 - i); /* slot 0 is handed out first */
        t->slots[i].gen = 1;
    }
}

int k_handle_get(k_task_t *t, os_handle_t h, k_slot_t **out)
{
    if (h <= 0)
        return OS_EBADH;
    k_slot_t *s = &t->slots[(uint32_t)h & 0xff];
    if (!s->obj || s->gen != ((uint32_t)h >> 8))
        return OS_EBADH;
    *out = s;
    return 0;
}

bool k_handle_room(const k_task_t *t, size_t n)
{
    return t->nfree >= n;
}

/* Does the object have an event for its owner (a message, a fire, an exit, device input)? */
static bool has_event(k_obj_t *obj)
{
    switch (obj->type) {
    case K_OBJ_CHAN:
        return k_chan_has_event((k_chan_t *)obj);
    case K_OBJ_TIMER:
        return ((k_timer_t *)obj)->fired;
    case K_OBJ_TASK:
        return ((k_taskref_t *)obj)->exited;
    case K_OBJ_DEVICE:
        return k_device_has_event((k_device_t *)obj);
    }
    (void)NEVER(true); /* an object of no known kind */
    return false;
}

os_handle_t k_handle_install(k_task_t *t, k_obj_t *obj, uint32_t rights)
{
    uint32_t idx = t->freelist[--t->nfree];
    k_slot_t *s = &t->slots[idx];
    s->obj = obj;
    s->rights = rights;
    obj->owner = t;
    obj->hval = handle_value(idx, s->gen);
    /* Replay maps recorded object ids to handle values through these records. */
    K_TRACE(.kind = HAL_TR_HANDLE, .task = t->id, .chan = obj->id,
            .type = obj->type | (rights << 8), .arg = (uint64_t)obj->hval);
    /* Events that arrived while it was in flight (or before a device was opened). */
    if (has_event(obj))
        k_pend(obj);
    return obj->hval;
}

/* Take the object out of t's table; it is then in flight or about to be destroyed. */
void k_handle_remove(k_task_t *t, k_slot_t *s)
{
    k_obj_t *obj = s->obj;
    k_unpend(obj);
    obj->held = false; /* a hold is the holder's: the next owner starts unheld */
    obj->owner = NULL;
    obj->hval = OS_HANDLE_NONE;
    s->obj = NULL;
    s->rights = 0;
    s->gen = s->gen >= K_HANDLE_GEN_MAX ? 1 : s->gen + 1;
    t->freelist[t->nfree++] = (uint16_t)(s - t->slots);
}

/* ---- the list of all objects (for os_chan_list and teardown) ---------------------------- */

void k_obj_link(k_obj_t *obj, uint8_t type)
{
    obj->type = type;
    obj->id = K.next_obj_id++;
    k_list_push(&K.objs, &obj->alink);
}

void k_obj_unlink(k_obj_t *obj)
{
    k_list_remove(&K.objs, &obj->alink);
}

/*
 * Destroy an object no table holds any more. Closing a channel closes the
 * handles its queued messages carry, which may be channels with queues of
 * their own: a work list instead of recursion keeps the stack flat.
 */
void k_obj_close(k_obj_t *obj)
{
    k_list_t work = {0};
    k_link_t *l;
    k_list_push_head(&work, &obj->dlink);
    while ((l = k_list_pop(&work))) {
        k_obj_t *o = K_CONTAINER(l, k_obj_t, dlink);
        k_unpend(o);
        switch (o->type) {
        case K_OBJ_CHAN:
            k_chan_destroy((k_chan_t *)o, &work);
            break;
        case K_OBJ_TIMER:
            k_timer_destroy((k_timer_t *)o);
            break;
        case K_OBJ_TASK:
            k_taskref_destroy((k_taskref_t *)o);
            break;
        case K_OBJ_DEVICE:
            k_device_closed((k_device_t *)o); /* devices live until teardown; input keeps waiting */
            break;
        default:
            (void)NEVER(true); /* an object of no known kind */
            break;
        }
    }
}

/* ---- pending events --------------------------------------------------------------------- */

/*
 * A held object delivers nothing, except a channel's WRITABLE: a task that stops reading a
 * channel because its own send there got OS_EFULL must still hear when it may send again.
 */
static bool may_pend(const k_obj_t *obj)
{
    return !obj->held || (obj->type == K_OBJ_CHAN && ((const k_chan_t *)obj)->writable_pending);
}

/* obj has an event for its holder: queue it on the owner (later, if in flight). */
void k_pend(k_obj_t *obj)
{
    k_task_t *t = obj->owner;
    if (!t || obj->pending || !may_pend(obj))
        return;
    obj->pending = true;
    k_list_push(&t->pending, &obj->plink);
    k_sched_ready(t);
}

void k_unpend(k_obj_t *obj)
{
    k_task_t *t = obj->owner;
    if (!obj->pending)
        return;
    obj->pending = false;
    k_list_remove(&t->pending, &obj->plink);
}

/* Take t's next event, round-robin over its objects. False if none is left. */
bool k_take_event(k_task_t *t, os_event_t *ev)
{
    while (!k_list_empty(&t->pending)) {
        k_obj_t *o = K_CONTAINER(t->pending.first, k_obj_t, plink);
        bool got = false, more = false;
        k_unpend(o);
        ev->handle = o->hval;
        ev->type = 0;
        ev->data = NULL;
        ev->len = 0;
        ev->nhandles = 0;
        ev->status = 0;
        switch (o->type) {
        case K_OBJ_CHAN:
            got = k_chan_take(t, (k_chan_t *)o, ev);
            more = k_chan_has_event((k_chan_t *)o);
            break;
        case K_OBJ_TIMER:
            got = k_timer_take(t, (k_timer_t *)o, ev);
            break;
        case K_OBJ_TASK:
            got = k_taskref_take(t, (k_taskref_t *)o, ev);
            break;
        case K_OBJ_DEVICE:
            got = k_device_take(t, (k_device_t *)o, ev);
            more = k_device_has_event((k_device_t *)o);
            break;
        default:
            (void)NEVER(true); /* an object of no known kind */
            break;
        }
        if (more)
            k_pend(o); /* to the tail: other objects get their turn */
        if (got)
            return true;
    }
    return false;
}

/* ---- os API ------------------------------------------------------------------------------ */

int os_handle_close(os_ctx_t *ctx, os_handle_t h)
{
    k_task_t *t = ctx->task;
    k_slot_t *s;
    k_lock();
    int rc = k_handle_get(t, h, &s);
    if (rc == 0) {
        k_obj_t *obj = s->obj;
        K_TRACE(.kind = HAL_TR_CLOSE, .task = t->id, .chan = obj->id, .type = obj->type,
                .iface = k_obj_iface(obj));
        k_handle_remove(t, s);
        k_obj_close(obj);
    }
    k_unlock();
    return rc;
}

int os_handle_hold(os_ctx_t *ctx, os_handle_t h, bool hold)
{
    k_slot_t *s;
    k_lock();
    int rc = k_handle_get(ctx->task, h, &s);
    if (rc == 0 && !(s->rights & OS_RIGHT_READ))
        rc = OS_EACCES;
    if (rc == 0) {
        k_obj_t *obj = s->obj;
        obj->held = hold;
        if (hold)
            k_unpend(obj);
        if (has_event(obj))
            k_pend(obj); /* held: only a WRITABLE (may_pend) */
    }
    k_unlock();
    return rc;
}

int os_handle_replace(os_ctx_t *ctx, os_handle_t h, uint32_t rights, os_handle_t *out)
{
    k_task_t *t = ctx->task;
    k_slot_t *s;
    os_handle_t nh = OS_HANDLE_NONE;
    if (!out)
        return OS_EINVAL;
    k_lock();
    int rc = k_handle_get(t, h, &s);
    if (rc == 0 && (rights & ~s->rights) != 0)
        rc = OS_EACCES;
    if (rc == 0) {
        /* Same slot, next generation: the old value goes stale. */
        uint32_t idx = (uint32_t)(s - t->slots);
        s->gen = s->gen >= K_HANDLE_GEN_MAX ? 1 : s->gen + 1;
        s->rights = rights;
        nh = handle_value(idx, s->gen);
        s->obj->hval = nh;
        K_TRACE(.kind = HAL_TR_HANDLE, .task = t->id, .chan = s->obj->id,
                .type = s->obj->type | (rights << 8), .arg = (uint64_t)nh);
    }
    k_unlock();
    if (rc == 0)
        *out = nh;
    return rc;
}
