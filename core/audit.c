/* audit.c — the kernel's self-check: its lists, counts and handle tables agree (k_audit). */
#include <stdio.h>
#include <string.h>

#include <k/audit.h>

#include "kpriv.h"

static int fail(char *err, size_t errlen, const char *what, uint32_t a, uint32_t b)
{
    if (err && errlen)
        snprintf(err, errlen, "%s (%u, %u)", what, a, b);
    return -1;
}

/* Every used slot of t's table holds an object t owns whose handle names that slot (a full scan).
 */
static int audit_slots(k_task_t *t, uint32_t *used_out, char *err, size_t errlen)
{
    uint32_t used = 0;
    for (uint32_t i = 0; i < OS_HANDLES_MAX; i++) {
        k_slot_t *s = &t->slots[i];
        if (!s->obj)
            continue;
        used++;
        k_slot_t *back;
        if (s->obj->owner != t)
            return fail(err, errlen, "handle slot holds an object owned elsewhere: task, slot",
                        t->id, i);
        if (k_handle_get(t, s->obj->hval, &back) != 0 || back != s)
            return fail(err, errlen, "object's handle does not name its slot: task, slot", t->id,
                        i);
    }
    if (used + t->nfree != OS_HANDLES_MAX)
        return fail(err, errlen, "free-slot count is off: task, used", t->id, used);
    *used_out = used;
    return 0;
}

static int audit_task(k_task_t *t, bool full, k_audit_task_t *out, char *err, size_t errlen)
{
    uint32_t used = OS_HANDLES_MAX - t->nfree, pending = 0;
    if (t->nfree > OS_HANDLES_MAX)
        return fail(err, errlen, "free-slot count over the table: task, free", t->id, t->nfree);
    if (full && audit_slots(t, &used, err, errlen) != 0)
        return -1;
    K_LIST_FOR(o, &t->pending, k_obj_t, plink)
    {
        pending++;
        if (o->owner != t || !o->pending)
            return fail(err, errlen, "pending list holds a foreign object: task, object", t->id,
                        o->id);
        if (pending > OS_HANDLES_MAX + K_DEVICES_MAX)
            return fail(err, errlen, "pending list loops: task, length", t->id, pending);
    }
    if (out) {
        out->id = t->id;
        strncpy(out->name, t->prog->name, sizeof(out->name) - 1);
        out->name[sizeof(out->name) - 1] = '\0';
        out->handles = used;
        out->pending = pending;
        out->ready = t->run == OS_TASK_READY;
    }
    return 0;
}

/*
 * The tasks audit_objects can account handles to: the first AUDIT_TASKS of the task list
 * (with more, handles of the others are checked but not counted).
 */
enum { AUDIT_TASKS = 128 };
typedef struct audit_tasks {
    k_task_t *t[AUDIT_TASKS];
    uint32_t held[AUDIT_TASKS]; /* objects on K.objs whose handle the task holds */
    size_t n;
    bool all; /* every task is in t[] */
} audit_tasks_t;

/*
 * Walk K.objs once: every object a task holds sits in the slot its handle names; every
 * endpoint's peer points back and its queue matches its count; the channel count
 * matches. Then, per task, the objects it holds are at most its used slots, and the
 * slots not accounted for (devices, which K.objs does not list) number at most the
 * devices, each held by one task at most.
 */
static int audit_objects(audit_tasks_t *ts, char *err, size_t errlen)
{
    uint32_t chans = 0;
    size_t last = 0;
    K_LIST_FOR(o, &K.objs, k_obj_t, alink)
    {
        if (o->owner) {
            k_slot_t *back;
            if (k_handle_get(o->owner, o->hval, &back) != 0 || back->obj != o)
                return fail(err, errlen, "object's slot does not hold it: object, handle", o->id,
                            (uint32_t)o->hval);
            if (last >= ts->n || ts->t[last] != o->owner)
                for (last = 0; last < ts->n && ts->t[last] != o->owner; last++)
                    ;
            if (last < ts->n)
                ts->held[last]++;
            else if (ts->all)
                return fail(err, errlen,
                            "object held by a task not on the task list: object, "
                            "handle",
                            o->id, (uint32_t)o->hval);
        }
        if (o->type != K_OBJ_CHAN)
            continue;
        k_chan_t *ch = (k_chan_t *)o;
        chans++;
        if (ch->peer && ch->peer->peer != ch)
            return fail(err, errlen, "endpoint's peer does not point back: endpoint, peer", o->id,
                        ch->peer->obj.id);
        uint32_t q = 0;
        const k_link_t *last_m = NULL;
        for (const k_link_t *m = ch->queue.first; m && q <= OS_CHAN_QUEUE_MAX; m = m->next, q++)
            last_m = m;
        if (q != ch->count || last_m != ch->queue.last)
            return fail(err, errlen, "queue length and count disagree: endpoint, length", o->id, q);
        if (ch->count > OS_CHAN_QUEUE_MAX)
            return fail(err, errlen, "queue over its bound: endpoint, count", o->id, ch->count);
    }
    if (chans != K.nchans)
        return fail(err, errlen, "channel list and count disagree", chans, K.nchans);
    uint32_t unlisted = 0;
    for (size_t i = 0; i < ts->n; i++) {
        uint32_t used = OS_HANDLES_MAX - ts->t[i]->nfree;
        if (ts->held[i] > used)
            return fail(err, errlen, "task holds more objects than its used slots: task, used",
                        ts->t[i]->id, used);
        unlisted += used - ts->held[i];
    }
    if (ts->all && unlisted > K_DEVICES_MAX)
        return fail(err, errlen, "used slots hold objects no list knows: slots, devices", unlisted,
                    K_DEVICES_MAX);
    return 0;
}

/* The spare message buffers: the list is as long as its count says, and within its bound
 * (a burst of traffic must not leave the kernel holding its peak in buffers). */
static int audit_msg_free(char *err, size_t errlen)
{
    if (K.nmsg_free > K_MSG_FREE_MAX)
        return fail(err, errlen, "spare messages over their bound", K.nmsg_free, K_MSG_FREE_MAX);
    uint32_t n = 0;
    for (const k_link_t *l = K.msg_free.first; l && n <= K_MSG_FREE_MAX; l = l->next)
        n++;
    if (n != K.nmsg_free)
        return fail(err, errlen, "spare message list and count disagree", n, K.nmsg_free);
    return 0;
}

static int audit(bool full, k_audit_task_t *out, size_t max, size_t *ntasks, char *err,
                 size_t errlen)
{
    int rc = 0;
    size_t n = 0;
    uint32_t ready = 0;
    static audit_tasks_t ts; /* under the kernel lock */
    k_lock();
    ts.n = 0;
    ts.all = true;
    for (k_task_t *t = k_task_entry(K.tasks.first); t && rc == 0;
         t = k_task_entry(t->tlink.next), n++) {
        rc = audit_task(t, full, out && n < max ? &out[n] : NULL, err, errlen);
        ready += t->run == OS_TASK_READY;
        if (ts.n < AUDIT_TASKS) {
            ts.held[ts.n] = 0;
            ts.t[ts.n++] = t;
        } else
            ts.all = false;
    }
    if (rc == 0 && n != K.ntasks)
        rc = fail(err, errlen, "task list and count disagree", (uint32_t)n, K.ntasks);
    if (rc == 0 && ready != K.nready)
        rc = fail(err, errlen, "ready tasks and count disagree", ready, K.nready);
    if (rc == 0)
        rc = audit_objects(&ts, err, errlen);
    if (rc == 0)
        rc = audit_msg_free(err, errlen);
    k_unlock();
    if (ntasks)
        *ntasks = n;
    return rc;
}

int k_audit(k_audit_task_t *out, size_t max, size_t *ntasks, char *err, size_t errlen)
{
    return audit(true, out, max, ntasks, err, errlen);
}

int k_audit_quick(k_audit_task_t *out, size_t max, size_t *ntasks, char *err, size_t errlen)
{
    return audit(false, out, max, ntasks, err, errlen);
}
