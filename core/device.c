/* device.c — platform devices: registration, bounded input queues (k_post), open and write. */
#include <string.h>

#include "kpriv.h"

/*
 * Registered before k_boot, cleared by k_teardown; input queues guarded by K.lock.
 * A device has two numbers: its place here (1..ndevices, what k_device_add returns and
 * k_post takes) and its object id, from the kernel's one counter like every object's
 * (k_device_number gives them out at boot, before any other object exists).
 */
static k_device_t devices[K_DEVICES_MAX];
static int ndevices;

int k_device_add(const hal_device_ops_t *ops)
{
    if (!ops || !ops->name || strnlen(ops->name, OS_NAME_MAX) >= OS_NAME_MAX)
        return OS_EINVAL;
    int rc;
    k_lock();
    rc = ndevices < K_DEVICES_MAX ? 0 : OS_ENOSPC;
    for (int i = 0; i < ndevices && rc == 0; i++)
        if (strcmp(devices[i].ops->name, ops->name) == 0)
            rc = OS_EEXIST;
    if (rc == 0) {
        k_device_t *d = &devices[ndevices++];
        memset(d, 0, sizeof(*d));
        d->obj.type = K_OBJ_DEVICE;
        d->ops = ops;
        rc = ndevices;
        if (K.booted) {
            d->obj.id = K.next_obj_id++; /* added late: the next id */
            K_TRACE(.kind = HAL_TR_DEVICE, .chan = d->obj.id, .type = (uint32_t)rc,
                    .data = ops->name, .len = (uint32_t)strlen(ops->name));
        }
    }
    k_unlock();
    return rc;
}

/* At boot, before any other object: give each registered device its object id. */
void k_device_number(void)
{
    for (int i = 0; i < ndevices; i++)
        devices[i].obj.id = K.next_obj_id++;
}

/* At boot, once tracing is on: one DEVICE record per device, so a trace names each device id
 * (`trace export --pcap` picks net0's frames by it). */
void k_device_trace_all(void)
{
    for (int i = 0; i < ndevices; i++)
        K_TRACE(.kind = HAL_TR_DEVICE, .chan = devices[i].obj.id, .type = (uint32_t)(i + 1),
                .data = devices[i].ops->name, .len = (uint32_t)strlen(devices[i].ops->name));
}

/* Lock held (teardown): drop queued input and forget every device. */
void k_device_reset(void)
{
    for (int i = 0; i < ndevices; i++) {
        k_device_t *d = &devices[i];
        k_link_t *l;
        while ((l = k_list_pop(&d->queue)))
            k_free(K_CONTAINER(l, k_devitem_t, link));
        memset(d, 0, sizeof(*d));
    }
    ndevices = 0;
}

int k_post(int dev, uint32_t code, const void *data, size_t len)
{
    if (dev < 1 || dev > K_DEVICES_MAX || (len && !data))
        return OS_EINVAL;
    if (len > OS_MSG_MAX_DATA)
        return OS_E2BIG;
    k_devitem_t *it = k_malloc(sizeof(*it) + len);
    if (!it)
        return OS_ENOMEM;
    it->code = code;
    it->len = (uint32_t)len;
    if (len)
        memcpy(it->data, data, len);
    k_lock();
    k_device_t *d = &devices[dev - 1];
    int rc = 0;
    if (dev > ndevices) {
        rc = OS_EINVAL;
    } else if (d->count >= OS_CHAN_QUEUE_MAX) {
        d->want_resume = true;
        rc = OS_EFULL;
    } else {
        k_list_push(&d->queue, &it->link);
        d->count++;
        k_pend(&d->obj);
    }
    K_TRACE(.kind = HAL_TR_DEV_POST, .chan = dev <= ndevices ? d->obj.id : 0, .type = code,
            .result = rc, .data = it->data, .len = (uint32_t)len);
    k_unlock();
    if (rc)
        k_free(it);
    return rc;
}

bool k_device_has_event(const k_device_t *d)
{
    return d->count > 0 || (d->ended && !d->end_told);
}

/* Lock held: the opener closed it (or ended). The next opener is told end of input again. */
void k_device_closed(k_device_t *d)
{
    d->obj.owner = NULL;
    d->end_told = false;
}

bool k_device_take(k_task_t *t, k_device_t *d, os_event_t *ev)
{
    k_link_t *l;
    if (k_list_empty(&d->queue) && d->ended && !d->end_told) {
        /* end of input, already given to an earlier opener: this one learns it too */
        d->end_told = true;
        ev->kind = OS_EV_DEVICE;
        ev->type = HAL_DEVICE_END;
        ev->data = NULL;
        ev->len = 0;
        K_TRACE(.kind = HAL_TR_DEV_EVENT, .task = t->id, .chan = d->obj.id,
                .type = HAL_DEVICE_END);
        return true;
    }
    if (!(l = k_list_pop(&d->queue)))
        return false;
    k_devitem_t *it = K_CONTAINER(l, k_devitem_t, link);
    if (it->code == HAL_DEVICE_END)
        d->ended = d->end_told = true;
    d->count--;
    ev->kind = OS_EV_DEVICE;
    ev->type = it->code;
    ev->data = it->data;
    ev->len = it->len;
    t->cur_item = it;
    K_TRACE(.kind = HAL_TR_DEV_EVENT, .task = t->id, .chan = d->obj.id, .type = it->code,
            .data = it->data, .len = it->len);
    if (d->want_resume && d->count <= OS_CHAN_QUEUE_MAX / 2) {
        d->want_resume = false;
        if (d->ops->resume)
            d->ops->resume(d->ops->self);
    }
    return true;
}

/* ---- os API ------------------------------------------------------------------------------ */

int os_device_open(os_ctx_t *ctx, const char *name, os_handle_t *out)
{
    k_task_t *t = ctx->task;
    char nm[OS_NAME_MAX];
    if (!name || !out)
        return OS_EINVAL;
    size_t n = strnlen(name, OS_NAME_MAX);
    if (n >= OS_NAME_MAX)
        return OS_ENOENT;
    memcpy(nm, name, n + 1);
    int rc = OS_ENOENT;
    os_handle_t h = OS_HANDLE_NONE;
    k_lock();
    for (int i = 0; i < ndevices; i++) {
        k_device_t *d = &devices[i];
        if (strcmp(d->ops->name, nm) != 0)
            continue;
        if (d->obj.owner)
            rc = OS_EBUSY;
        else if (!k_handle_room(t, 1))
            rc = OS_ENOSPC;
        else {
            h = k_handle_install(t, &d->obj, OS_RIGHT_READ | OS_RIGHT_WRITE);
            rc = 0;
        }
        break;
    }
    k_unlock();
    if (rc == 0)
        *out = h;
    return rc;
}

int os_device_write(os_ctx_t *ctx, os_handle_t dev, uint32_t code, const void *data, size_t len)
{
    k_task_t *t = ctx->task;
    k_slot_t *s;
    const hal_device_ops_t *ops = NULL;
    uint32_t id = 0;
    if (len && !data)
        return OS_EINVAL;
    k_lock();
    int rc = k_handle_get(t, dev, &s);
    if (rc == 0 && s->obj->type != K_OBJ_DEVICE)
        rc = OS_EINVAL;
    if (rc == 0 && !(s->rights & OS_RIGHT_WRITE))
        rc = OS_EACCES;
    if (rc == 0) {
        ops = ((k_device_t *)s->obj)->ops;
        id = s->obj->id;
    }
    k_unlock();
    /* Devices live until teardown and only we can close our handle: no lock needed now. */
    if (rc == 0)
        rc = ops->write ? ops->write(ops->self, code, data, len) : OS_ENOTSUP;
    K_TRACE(.kind = HAL_TR_DEV_WRITE, .task = t->id, .chan = id, .type = code, .result = rc,
            .data = data, .len = (uint32_t)len);
    return rc;
}
