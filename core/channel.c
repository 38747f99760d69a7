/* channel.c — channels: endpoint pairs with bounded message queues, handles moved in messages. */
#include <string.h>

#include "kpriv.h"

/* ---- message buffers ---------------------------------------------------------------------
 * The send path allocates nothing in the steady state: a delivered message
 * becomes the receiver's spare buffer for its next send (k_run_one), and
 * other buffers go back to a free list.
 */

k_msg_t *k_msg_alloc(void)
{
    k_lock();
    k_msg_t *m = k_msg_entry(k_list_pop(&K.msg_free));
    if (m)
        K.nmsg_free--;
    k_unlock();
    return m ? m : k_malloc(sizeof(k_msg_t));
}

/* Lock held. The message's carried objects must be gone already. */
void k_msg_free(k_msg_t *m)
{
    if (K.nmsg_free < K_MSG_FREE_MAX && !K.tearing_down) {
        k_list_push_head(&K.msg_free, &m->link);
        K.nmsg_free++;
    } else {
        k_free(m);
    }
}

void k_msg_drain_free(void)
{
    k_link_t *l;
    while ((l = k_list_pop(&K.msg_free)))
        k_free(k_msg_entry(l));
    K.nmsg_free = 0;
}

/* ---- endpoints ---------------------------------------------------------------------------- */

bool k_chan_has_event(const k_chan_t *ch)
{
    if (ch->count > 0)
        return ch->writable_pending || k_msg_due(k_chan_head(ch));
    return ch->writable_pending || (ch->peer_closed && !ch->peer_closed_told);
}

/* Lock held: free queued messages without closing what they carry (teardown only). */
void k_chan_drop_queue(k_chan_t *ch)
{
    k_link_t *l;
    while ((l = k_list_pop(&ch->queue))) {
        k_msg_t *m = k_msg_entry(l);
        m->nh = 0;
        k_msg_free(m);
    }
    ch->count = 0;
}

/* Lock held; no table holds ch. Carried handles go on the work list to be closed. */
void k_chan_destroy(k_chan_t *ch, k_list_t *work)
{
    k_chan_t *peer = ch->peer;
    if (peer) {
        peer->peer = NULL;
        peer->peer_closed = true;
        /* A sender that holds its end and waits for room hears WRITABLE now (its next send is
         * OS_EPEER): the peer-closed event waits behind the hold, so it would never hear of the
         * close. Unheld, it reads what was queued, then PEER_CLOSED, as before. */
        peer->writable_pending =
            peer->obj.held && (peer->want_writable || peer->writable_pending);
        peer->want_writable = false;
        k_pend(&peer->obj);
    }
    k_link_t *l;
    while ((l = k_list_pop(&ch->queue))) {
        k_msg_t *m = k_msg_entry(l);
        for (uint32_t i = 0; i < m->nh; i++)
            k_list_push_head(work, &m->objs[i]->dlink);
        m->nh = 0;
        k_msg_free(m);
    }
    if (__builtin_expect(ch->delayed, 0))
        k_fault_chan_gone(ch);
    k_obj_unlink(&ch->obj);
    K.nchans--;
    k_free(ch);
}

/* Lock held: the next event of endpoint ch for its holder t. */
bool k_chan_take(k_task_t *t, k_chan_t *ch, os_event_t *ev)
{
    if (ch->writable_pending) {
        ch->writable_pending = false;
        ev->kind = OS_EV_WRITABLE;
        K_TRACE(.kind = HAL_TR_WRITABLE, .task = t->id, .chan = ch->obj.id,
                .peer = ch->peer ? ch->peer->obj.id : 0, .iface = ch->iface);
        return true;
    }
    if (ch->obj.held)
        return false; /* held: only WRITABLE comes through */
    if (ch->count > 0) {
        if (!k_msg_due(k_chan_head(ch)))
            return false; /* held back by an injected delay: fault.c pends us when due */
        k_msg_t *m = k_msg_entry(k_list_pop(&ch->queue));
        ch->count--;
        ev->kind = OS_EV_MESSAGE;
        ev->type = m->type;
        ev->data = m->data;
        ev->len = m->len;
        if (m->nh) {
            if (k_handle_room(t, m->nh)) {
                for (uint32_t i = 0; i < m->nh; i++)
                    ev->handles[i] = k_handle_install(t, m->objs[i], m->rights[i]);
                ev->nhandles = m->nh;
            } else {
                for (uint32_t i = 0; i < m->nh; i++)
                    k_obj_close(m->objs[i]);
                ev->status = OS_ENOSPC;
            }
            m->nh = 0;
        }
        t->cur_msg = m;
        t->received++;
        K.messages++;
        K_TRACE(.kind = HAL_TR_DELIVER, .task = t->id, .chan = ch->obj.id,
                .peer = ch->peer ? ch->peer->obj.id : 0, .type = m->type, .result = ev->status,
                .data = m->data, .len = m->len, .nhandles = (uint32_t)ev->nhandles,
                .iface = ch->iface);
        /* Backpressure: the sender that saw OS_EFULL hears once we drained to half. */
        k_chan_t *peer = ch->peer;
        if (peer && peer->want_writable && ch->count <= OS_CHAN_QUEUE_MAX / 2) {
            peer->want_writable = false;
            peer->writable_pending = true;
            k_pend(&peer->obj);
        }
        return true;
    }
    if (ch->peer_closed && !ch->peer_closed_told) {
        ch->peer_closed_told = true;
        ev->kind = OS_EV_PEER_CLOSED;
        K_TRACE(.kind = HAL_TR_PEER_CLOSED, .task = t->id, .chan = ch->obj.id, .iface = ch->iface);
        return true;
    }
    return false;
}

/* ---- os API ------------------------------------------------------------------------------ */

int os_channel_create(os_ctx_t *ctx, os_handle_t *a, os_handle_t *b)
{
    k_task_t *t = ctx->task;
    if (!a || !b)
        return OS_EINVAL;
    k_chan_t *ea = k_calloc(1, sizeof(*ea));
    k_chan_t *eb = ea ? k_calloc(1, sizeof(*eb)) : NULL;
    if (!eb) {
        k_free(ea);
        return OS_ENOMEM;
    }
    k_lock();
    if (!k_handle_room(t, 2)) {
        k_unlock();
        k_free(ea);
        k_free(eb);
        return OS_ENOSPC;
    }
    k_obj_link(&ea->obj, K_OBJ_CHAN);
    k_obj_link(&eb->obj, K_OBJ_CHAN);
    ea->peer = eb;
    eb->peer = ea;
    K.nchans += 2;
    os_handle_t ha = k_handle_install(t, &ea->obj, OS_RIGHTS_ALL);
    os_handle_t hb = k_handle_install(t, &eb->obj, OS_RIGHTS_ALL);
    K_TRACE(.kind = HAL_TR_CHAN_CREATE, .task = t->id, .chan = ea->obj.id, .peer = eb->obj.id);
    k_unlock();
    *a = ha;
    *b = hb;
    return 0;
}

/* Lock held. Decode: every check before any state changes. */
static int send_check(k_task_t *t, os_handle_t h, const os_handle_t *hs, size_t nh, k_slot_t **chs,
                      k_slot_t **carried)
{
    int rc = k_handle_get(t, h, chs);
    if (rc)
        return rc;
    k_slot_t *cs = *chs;
    if (cs->obj->type != K_OBJ_CHAN)
        return OS_EINVAL;
    if (!(cs->rights & OS_RIGHT_WRITE))
        return OS_EACCES;
    k_chan_t *ch = (k_chan_t *)cs->obj;
    for (size_t i = 0; i < nh; i++) {
        rc = k_handle_get(t, hs[i], &carried[i]);
        if (rc)
            return rc;
        if (!(carried[i]->rights & OS_RIGHT_TRANSFER))
            return OS_EACCES;
        /* Sending h, or its peer (it would queue inside its own queue, unreachable). */
        if (carried[i] == cs || (ch->peer && carried[i]->obj == &ch->peer->obj))
            return OS_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (carried[j] == carried[i])
                return OS_EINVAL;
    }
    if (!ch->peer)
        return OS_EPEER;
    if (ch->peer->count >= OS_CHAN_QUEUE_MAX) {
        ch->want_writable = true;
        return OS_EFULL;
    }
    return 0;
}

int os_send(os_ctx_t *ctx, os_handle_t h, uint32_t type, const void *data, size_t len,
            const os_handle_t *handles, size_t nhandles)
{
    k_task_t *t = ctx->task;
    os_handle_t hs[OS_MSG_MAX_HANDLES];
    k_slot_t *carried[OS_MSG_MAX_HANDLES];
    k_slot_t *cs = NULL;
    int rc = 0;
    /* Replay: the recorded result of this send (0 if none); an error is given without sending. */
    int forced = k_replaying(t) ? k_replay_send_result() : 0;

    if (len > OS_MSG_MAX_DATA || nhandles > OS_MSG_MAX_HANDLES)
        rc = OS_E2BIG;
    else if ((len && !data) || (nhandles && !handles))
        rc = OS_EINVAL;
    if (rc) {
        K_TRACE(.kind = HAL_TR_SEND, .task = t->id, .type = type, .result = rc);
        return rc;
    }
    /* Copy the caller's memory before taking the lock: a bad pointer faults here. */
    k_msg_t *m = t->spare;
    t->spare = NULL;
    if (!m && !(m = k_msg_alloc())) {
        K_TRACE(.kind = HAL_TR_SEND, .task = t->id, .type = type, .result = OS_ENOMEM);
        return OS_ENOMEM;
    }
    if (len)
        memcpy(m->data, data, len);
    for (size_t i = 0; i < nhandles; i++)
        hs[i] = handles[i];

    k_lock();
    rc = send_check(t, h, hs, nhandles, &cs, carried);
    if (rc == 0 && __builtin_expect(forced != 0, 0))
        rc = forced;
    if (rc) {
        K_TRACE(.kind = HAL_TR_SEND, .task = t->id, .chan = cs ? cs->obj->id : 0, .type = type,
                .result = rc, .data = m->data, .len = (uint32_t)len, .nhandles = (uint32_t)nhandles,
                .iface = k_obj_iface(cs ? cs->obj : NULL));
        k_unlock();
        t->spare = m;
        return rc;
    }
    /* Perform. */
    k_chan_t *ch = (k_chan_t *)cs->obj;
    k_chan_t *peer = ch->peer;
    m->due = 0;
    m->type = type;
    m->len = (uint32_t)len;
    m->nh = (uint32_t)nhandles;
    for (size_t i = 0; i < nhandles; i++) {
        m->objs[i] = carried[i]->obj;
        m->rights[i] = carried[i]->rights;
        k_handle_remove(t, carried[i]);
    }
    k_list_push(&peer->queue, &m->link);
    peer->count++;
    t->sent++;
    K_TRACE(.kind = HAL_TR_SEND, .task = t->id, .chan = ch->obj.id, .peer = peer->obj.id,
            .type = type, .data = m->data, .len = (uint32_t)len, .nhandles = (uint32_t)nhandles,
            .iface = ch->iface);
    if (__builtin_expect(k_faults != NULL, 0))
        k_fault_on_send(t, peer, m);
    if (m->due == 0)
        k_pend(&peer->obj);
    k_unlock();
    return 0;
}

int os_channel_tag(os_ctx_t *ctx, os_handle_t h, uint32_t iface_id)
{
    k_slot_t *s;
    k_lock();
    int rc = k_handle_get(ctx->task, h, &s);
    if (rc == 0 && (s->obj->type != K_OBJ_CHAN || iface_id == 0))
        rc = OS_EINVAL;
    if (rc == 0) {
        k_chan_t *ch = (k_chan_t *)s->obj;
        ch->iface = iface_id;
        if (ch->peer)
            ch->peer->iface = iface_id;
    }
    k_unlock();
    return rc;
}

int os_chan_list(os_ctx_t *ctx, os_chan_info_t *out, size_t max)
{
    if (k_replaying(ctx->task)) {
        int rc;
        if (k_replay_list(HAL_TRACE_LIST_CHANS, out, out ? max * sizeof(*out) : 0, &rc)) {
            K_TRACE(.kind = HAL_TR_LIST, .task = ctx->task->id, .type = HAL_TRACE_LIST_CHANS,
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
    K_LIST_FOR(o, &K.objs, k_obj_t, alink)
    {
        if (o->type != K_OBJ_CHAN)
            continue;
        k_chan_t *ch = (k_chan_t *)o;
        if (ch->peer && ch->peer->obj.id < o->id)
            continue; /* listed with its lower-numbered peer */
        if (out && (size_t)n < max) {
            os_chan_info_t *ci = &out[n];
            ci->id = o->id;
            ci->peer = ch->peer ? ch->peer->obj.id : 0;
            ci->owner = o->owner ? o->owner->id : 0;
            ci->peer_owner = ch->peer && ch->peer->obj.owner ? ch->peer->obj.owner->id : 0;
            ci->queued = ch->count;
            ci->peer_queued = ch->peer ? ch->peer->count : 0;
        }
        n++;
    }
    atomic_store_explicit(&K.list_holder, NULL, memory_order_relaxed);
    K_TRACE(.kind = HAL_TR_LIST, .task = ctx->task->id, .type = HAL_TRACE_LIST_CHANS, .result = n,
            .data = out,
            .len = out ? (uint32_t)(((size_t)n < max ? (size_t)n : max) * sizeof(*out)) : 0);
    k_unlock();
    return n;
}
