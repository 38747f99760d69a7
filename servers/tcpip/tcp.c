/* tcp.c — the tcpip server's tcp interface: listeners and connections on lwIP's raw API, one
 * channel each, with backpressure both ways (servers/include/iface/tcp.h is the contract). */
#include "tcpip.h"

#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

static void conn_flush(os_ctx_t *ctx, tcpip_state_t *st, tcpip_conn_t *c);

static int map_err(err_t e, bool connecting)
{
    switch (e) {
    case ERR_RST:
        return connecting ? OS_ECONNREFUSED : OS_ECONNRESET;
    case ERR_ABRT: /* lwIP gave up: retransmissions or the handshake timed out */
    case ERR_TIMEOUT:
        return OS_ETIMEDOUT;
    case ERR_MEM:
    case ERR_BUF:
        return OS_ENOMEM;
    case ERR_RTE:
        return OS_EUNREACH;
    case ERR_USE:
        return OS_EADDRINUSE;
    default:
        return OS_ECONNRESET;
    }
}

static void reply(os_ctx_t *ctx, os_handle_t ch, uint32_t req, int status)
{
    tcp_reply_t r = {req, status};
    tcp_reply_send(ctx, ch, &r); /* a client that does not read loses its answer */
}

static void proto_error(os_ctx_t *ctx, os_handle_t ch, const os_event_t *ev, int status)
{
    iface_discard(ctx, ev);
    tcp_error_t e = {ev->type, status};
    tcp_error_send(ctx, ch, &e);
}

/* ---- pcbs ------------------------------------------------------------------------------- */

/* Our callbacks off a pcb: lwIP runs on without us (tcp_recv_null takes what still comes). */
static void pcb_detach(struct tcp_pcb *pcb)
{
    tcp_arg(pcb, NULL);
    if (pcb->state == LISTEN) {
        tcp_accept(pcb, NULL);
        return;
    }
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_poll(pcb, NULL, 0);
}

/* Close gracefully (FIN after what is queued); RST where lwIP cannot. */
static void pcb_close(struct tcp_pcb *pcb)
{
    pcb_detach(pcb);
    if (tcp_close(pcb) != ERR_OK)
        tcp_abort(pcb);
}

/*
 * Both FINs are out (ours may still wait for memory, TF_CLOSEPEND): let lwIP end the pcb.
 * Called from lwIP's callbacks too, so it never frees the pcb: tcp_close past ESTABLISHED and
 * CLOSE_WAIT only marks it closed; in those two (our FIN not sent yet) detaching is enough.
 */
static void pcb_finish(struct tcp_pcb *pcb)
{
    pcb_detach(pcb);
    if (pcb->state != ESTABLISHED && pcb->state != CLOSE_WAIT)
        tcp_close(pcb);
}

void tcp_forget_all(void)
{
    while (tcp_listen_pcbs.pcbs != NULL) {
        struct tcp_pcb *p = tcp_listen_pcbs.pcbs;
        pcb_detach(p);
        tcp_close(p); /* a listener always closes */
    }
    while (tcp_bound_pcbs != NULL) {
        struct tcp_pcb *p = tcp_bound_pcbs;
        pcb_detach(p);
        tcp_close(p); /* CLOSED: freed at once */
    }
    while (tcp_active_pcbs != NULL) {
        struct tcp_pcb *p = tcp_active_pcbs;
        pcb_detach(p);
        tcp_abort(p);
    }
    for (struct tcp_pcb *p = tcp_tw_pcbs; p != NULL; p = p->next)
        pcb_detach(p); /* lwIP ends them */
}

/* ---- connection slots ------------------------------------------------------------------- */

static tcpip_conn_t *conn_alloc(tcpip_state_t *st)
{
    for (int i = 0; i < TCPIP_CONNS_MAX; i++) {
        tcpip_conn_t *c = &st->conns[i];
        if (c->chan == OS_HANDLE_NONE) {
            memset(c, 0, sizeof *c - sizeof c->tx);
            c->listener = -1;
            return c;
        }
    }
    return NULL;
}

/* Release the slot: its channel closes (the client sees PEER_CLOSED); the pcb is gone. */
static void conn_free(os_ctx_t *ctx, tcpip_conn_t *c)
{
    if (c->rx != NULL)
        pbuf_free(c->rx);
    c->rx = NULL;
    os_handle_close(ctx, c->chan);
    c->chan = OS_HANDLE_NONE;
    c->pcb = NULL;
}

static tcpip_conn_t *conn_by_chan(tcpip_state_t *st, os_handle_t h)
{
    for (int i = 0; i < TCPIP_CONNS_MAX; i++)
        if (st->conns[i].chan != OS_HANDLE_NONE && st->conns[i].chan == h)
            return &st->conns[i];
    return NULL;
}

/* Write what lwIP's send buffer takes of tx; release the channel once all is written. */
static void conn_write_pending(os_ctx_t *ctx, tcpip_conn_t *c)
{
    if (c->pcb == NULL || c->tx_len == c->tx_off)
        return;
    uint32_t n = c->tx_len - c->tx_off;
    if (n > tcp_sndbuf(c->pcb))
        n = tcp_sndbuf(c->pcb);
    if (n > 0 && tcp_sndqueuelen(c->pcb) < TCP_SND_QUEUELEN &&
        tcp_write(c->pcb, c->tx + c->tx_off, (u16_t)n, TCP_WRITE_FLAG_COPY) == ERR_OK) {
        c->tx_off += n;
        tcp_output(c->pcb);
    }
    if (c->tx_off == c->tx_len) {
        c->tx_off = c->tx_len = 0;
        if (c->held) {
            os_handle_hold(ctx, c->chan, false); /* the client's next message comes */
            c->held = false;
        }
    }
}

/* Both directions ended: the peer's FIN told, ours sent. lwIP finishes alone. */
static bool conn_done(const tcpip_conn_t *c)
{
    return c->eof_sent && c->shut_tx && !c->connecting && c->tx_len == 0 && c->rx == NULL;
}

/*
 * Push what waits for the client, in stream order: the peer's data (the window opens only
 * for bytes queued to the client), then eof, then an error (and the channel closes). Stops at
 * OS_EFULL: the kernel sends WRITABLE and we go on from there.
 */
static void conn_flush(os_ctx_t *ctx, tcpip_state_t *st, tcpip_conn_t *c)
{
    while (c->rx != NULL) {
        u16_t n = c->rx->tot_len < TCP_DATA_MAX ? c->rx->tot_len : TCP_DATA_MAX;
        tcp_data_t *d = &st->msg.tcp_data;
        d->data_len = pbuf_copy_partial(c->rx, d->data, n, 0);
        int rc = tcp_data_send(ctx, c->chan, d);
        if (rc == OS_EFULL)
            return;
        if (rc < 0) { /* the client is gone: PEER_CLOSED follows and ends it */
            pbuf_free(c->rx);
            c->rx = NULL;
            break;
        }
        c->rx = pbuf_free_header(c->rx, n);
        if (c->pcb != NULL)
            tcp_recved(c->pcb, n);
    }
    if (c->fin_rx && !c->eof_sent) {
        tcp_eof_t e = {c->rx_bytes};
        if (tcp_eof_send(ctx, c->chan, &e) == OS_EFULL)
            return;
        c->eof_sent = true;
    }
    if (c->error != 0) {
        tcp_error_t e = {0, c->error};
        if (tcp_error_send(ctx, c->chan, &e) == OS_EFULL)
            return;
        conn_free(ctx, c);
        return;
    }
    if (c->pcb != NULL && conn_done(c)) {
        pcb_finish(c->pcb);
        conn_free(ctx, c);
    }
}

/* ---- lwIP's callbacks for a connection -------------------------------------------------- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    tcpip_conn_t *c = arg;
    (void)err;
    if (c == NULL) {
        if (p != NULL) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (p == NULL) {
        c->fin_rx = true;
    } else {
        c->rx_bytes += p->tot_len;
        if (c->rx != NULL)
            pbuf_cat(c->rx, p);
        else
            c->rx = p;
    }
    conn_flush(tcpip_ctx(), tcpip_st(), c);
    return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    (void)len;
    if (arg != NULL) {
        tcpip_conn_t *c = arg;
        conn_write_pending(tcpip_ctx(), c);
        if (c->tx_len == 0 && conn_done(c))
            conn_flush(tcpip_ctx(), tcpip_st(), c);
    }
    return ERR_OK;
}

/* Every 2 s (lwIP's slow timer is 500 ms): a write lwIP refused for want of memory, again. */
static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
    (void)pcb;
    if (arg != NULL)
        conn_write_pending(tcpip_ctx(), arg);
    return ERR_OK;
}

/* The pcb is already freed by lwIP. */
static void on_err(void *arg, err_t err)
{
    tcpip_conn_t *c = arg;
    if (c == NULL)
        return;
    c->pcb = NULL;
    c->error = map_err(err, c->connecting);
    c->tx_off = c->tx_len = 0;
    if (c->held) {
        os_handle_hold(tcpip_ctx(), c->chan, false);
        c->held = false;
    }
    conn_flush(tcpip_ctx(), tcpip_st(), c);
}

static void conn_attach(tcpip_conn_t *c, struct tcp_pcb *pcb)
{
    c->pcb = pcb;
    /* the client's messages are its segments already (up to 4092 bytes): no Nagle wait */
    tcp_nagle_disable(pcb);
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    tcp_poll(pcb, on_poll, 4);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    tcpip_conn_t *c = arg;
    (void)err; /* always ERR_OK in lwIP 2.1 */
    if (c == NULL)
        return ERR_OK;
    os_ctx_t *ctx = tcpip_ctx();
    c->connecting = false;
    tcp_established_t m = {
        .laddr = tcpip_host_order(ip_2_ip4(&pcb->local_ip)),
        .lport = pcb->local_port,
        .raddr = tcpip_host_order(ip_2_ip4(&pcb->remote_ip)),
        .rport = pcb->remote_port,
    };
    tcp_established_send(ctx, c->chan, &m); /* first on a fresh channel: only EPEER can fail */
    conn_write_pending(ctx, c);
    if (c->shut_tx)
        tcp_shutdown(pcb, 0, 1);
    return ERR_OK;
}

/* ---- listeners -------------------------------------------------------------------------- */

static tcpip_listener_t *listener_by_chan(tcpip_state_t *st, os_handle_t h)
{
    for (int i = 0; i < TCPIP_LISTENERS_MAX; i++)
        if (st->listeners[i].chan != OS_HANDLE_NONE && st->listeners[i].chan == h)
            return &st->listeners[i];
    return NULL;
}

/* The channel pair we own both ends of (just created): its lower endpoint id, 0 if unsure. */
static uint32_t own_pair(os_ctx_t *ctx, tcpip_state_t *st)
{
    int n = os_chan_list(ctx, st->chans, TCPIP_CHANS_SEEN);
    uint32_t me = os_task_id(ctx), pair = 0;
    int found = 0;
    for (int i = 0; i < n && i < TCPIP_CHANS_SEEN; i++) {
        if (st->chans[i].owner == me && st->chans[i].peer_owner == me) {
            pair = st->chans[i].id;
            found++;
        }
    }
    return n <= TCPIP_CHANS_SEEN && found == 1 ? pair : 0;
}

/* accepted messages still waiting in the listener's channel (the estimate when unsure) */
static uint32_t listener_waiting(os_ctx_t *ctx, tcpip_state_t *st, tcpip_listener_t *l)
{
    if (l->pair == 0)
        return l->waiting;
    int n = os_chan_list(ctx, st->chans, TCPIP_CHANS_SEEN);
    uint32_t me = os_task_id(ctx);
    for (int i = 0; i < n && i < TCPIP_CHANS_SEEN; i++) {
        const os_chan_info_t *ci = &st->chans[i];
        if (ci->id == l->pair)
            return ci->owner == me ? ci->peer_queued : ci->queued;
    }
    return l->waiting;
}

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err)
{
    tcpip_listener_t *l = arg;
    if (l == NULL || err != ERR_OK || newpcb == NULL)
        return ERR_VAL; /* lwIP resets the connection */
    os_ctx_t *ctx = tcpip_ctx();
    tcpip_state_t *st = tcpip_st();
    tcpip_conn_t *c = conn_alloc(st);
    if (c != NULL && l->waiting >= l->backlog)
        l->waiting = listener_waiting(ctx, st, l);
    os_handle_t mine, theirs;
    if (c == NULL || l->waiting >= l->backlog || os_channel_create(ctx, &mine, &theirs) < 0) {
        st->other_dropped++;
        return ERR_MEM; /* lwIP resets it */
    }
    os_channel_tag(ctx, mine, iface_id(&tcp_iface));
    tcp_accepted_t m = {
        .addr = tcpip_host_order(ip_2_ip4(&newpcb->remote_ip)),
        .port = newpcb->remote_port,
        .lport = newpcb->local_port,
        .chan = theirs,
    };
    if (tcp_accepted_send(ctx, l->chan, &m) < 0) {
        /* the listener's queue is full (128), or its client went: reset */
        os_handle_close(ctx, mine);
        os_handle_close(ctx, theirs);
        st->other_dropped++;
        return ERR_MEM;
    }
    l->waiting++;
    c->chan = mine;
    c->listener = (int)(l - st->listeners);
    conn_attach(c, newpcb);
    return ERR_OK;
}

static void on_listen(os_ctx_t *ctx, tcpip_state_t *st, os_handle_t ch, const tcp_listen_t *m)
{
    if (m->backlog > TCP_BACKLOG_MAX) {
        reply(ctx, ch, m->req, OS_EINVAL);
        return;
    }
    tcpip_listener_t *l = NULL;
    for (int i = 0; i < TCPIP_LISTENERS_MAX && l == NULL; i++)
        if (st->listeners[i].chan == OS_HANDLE_NONE)
            l = &st->listeners[i];
    if (l == NULL) {
        reply(ctx, ch, m->req, OS_ENOSPC);
        return;
    }
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL) {
        reply(ctx, ch, m->req, OS_ENOMEM);
        return;
    }
    ip_addr_t a;
    ip_addr_set_ip4_u32_val(a, lwip_htonl(m->addr));
    /*
     * A listener's port is free again while connections it accepted still close (FIN_WAIT,
     * TIME_WAIT): a restarted server listens at once. lwIP still refuses a second listener
     * on the same address and port (ERR_USE).
     */
    ip_set_option(pcb, SOF_REUSEADDR);
    err_t e = tcp_bind(pcb, &a, m->port);
    if (e != ERR_OK) {
        tcp_close(pcb);
        reply(ctx, ch, m->req, map_err(e, false));
        return;
    }
    uint8_t backlog = (uint8_t)(m->backlog ? m->backlog : TCPIP_BACKLOG_DEFAULT);
    struct tcp_pcb *lpcb = tcp_listen_with_backlog_and_err(pcb, backlog, &e);
    if (lpcb == NULL) {
        tcp_close(pcb);
        reply(ctx, ch, m->req, e == ERR_USE ? OS_EADDRINUSE : OS_ENOMEM);
        return;
    }
    os_handle_t mine, theirs;
    if (os_channel_create(ctx, &mine, &theirs) < 0) {
        tcp_close(lpcb);
        reply(ctx, ch, m->req, OS_ENOSPC);
        return;
    }
    os_channel_tag(ctx, mine, iface_id(&tcp_iface));
    l->pair = own_pair(ctx, st);
    tcp_listening_t r = {m->req, lpcb->local_port, theirs};
    if (tcp_listening_send(ctx, ch, &r) < 0) {
        os_handle_close(ctx, mine);
        os_handle_close(ctx, theirs);
        tcp_close(lpcb);
        return;
    }
    l->chan = mine;
    l->pcb = lpcb;
    l->backlog = backlog;
    l->waiting = 0;
    tcp_arg(lpcb, l);
    tcp_accept(lpcb, on_accept);
}

static void on_connect(os_ctx_t *ctx, tcpip_state_t *st, os_handle_t ch, const tcp_connect_t *m)
{
    if (m->addr == 0 || m->port == 0) {
        reply(ctx, ch, m->req, OS_EINVAL);
        return;
    }
    tcpip_conn_t *c = conn_alloc(st);
    if (c == NULL) {
        reply(ctx, ch, m->req, OS_ENOSPC);
        return;
    }
    struct netif *nif = netif_default;
    if (nif == NULL || ip4_addr_isany_val(*netif_ip4_addr(nif))) {
        reply(ctx, ch, m->req, OS_EUNREACH); /* no address yet */
        return;
    }
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL) {
        reply(ctx, ch, m->req, OS_ENOMEM);
        return;
    }
    os_handle_t mine, theirs;
    if (os_channel_create(ctx, &mine, &theirs) < 0) {
        tcp_close(pcb);
        reply(ctx, ch, m->req, OS_ENOSPC);
        return;
    }
    os_channel_tag(ctx, mine, iface_id(&tcp_iface));
    c->chan = mine;
    c->connecting = true;
    conn_attach(c, pcb);
    ip_addr_t a;
    ip_addr_set_ip4_u32_val(a, lwip_htonl(m->addr));
    err_t e = tcp_connect(pcb, &a, m->port, on_connected);
    tcp_opened_t r = {m->req, pcb->local_port, theirs};
    if (e != ERR_OK || tcp_opened_send(ctx, ch, &r) < 0) {
        pcb_detach(pcb);
        tcp_abort(pcb);
        c->pcb = NULL;
        os_handle_close(ctx, theirs);
        conn_free(ctx, c);
        if (e != ERR_OK)
            reply(ctx, ch, m->req, map_err(e, false));
        return;
    }
}

uint32_t tcp_pcb_held(const struct tcp_pcb *pcb)
{
    /* only our connections' arg is a conn (a SYN_RCVD pcb carries its listener's) */
    const tcpip_conn_t *c = pcb->recv == on_recv ? pcb->callback_arg : NULL;
    if (c == NULL)
        return 0;
    return c->tx_len - c->tx_off + (c->rx ? c->rx->tot_len : 0);
}

/* ---- the channels ------------------------------------------------------------------------ */

void tcp_on_control(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    union {
        tcp_listen_t listen;
        tcp_connect_t connect;
    } m;
    if (ev->type == tcp_msg_listen && tcp_listen_decode(ev, &m.listen) == 0)
        on_listen(ctx, st, ev->handle, &m.listen);
    else if (ev->type == tcp_msg_connect && tcp_connect_decode(ev, &m.connect) == 0)
        on_connect(ctx, st, ev->handle, &m.connect);
    else
        proto_error(ctx, ev->handle, ev, OS_EPROTO);
}

static void on_conn_message(os_ctx_t *ctx, tcpip_state_t *st, tcpip_conn_t *c, const os_event_t *ev)
{
    union {
        tcp_shutdown_t shut;
        tcp_reset_t reset;
    } m;
    if (c->listener >= 0) {
        /* the client took the accepted message: one fewer waits in the listener */
        tcpip_listener_t *l = &st->listeners[c->listener];
        if (l->chan != OS_HANDLE_NONE && l->waiting > 0 && l->pair == 0)
            l->waiting--;
        c->listener = -1;
    }
    if (ev->type == tcp_msg_data && ev->nhandles == 0) {
        tcp_data_t *d = &st->msg.tcp_data;
        if (tcp_data_decode(ev, d) < 0) {
            proto_error(ctx, c->chan, ev, OS_EPROTO);
            return;
        }
        if (c->shut_tx) {
            proto_error(ctx, c->chan, ev, OS_ESTATE);
            return;
        }
        if (c->pcb == NULL || d->data_len == 0)
            return; /* an error is on its way to the client */
        memcpy(c->tx, d->data, d->data_len);
        c->tx_off = 0;
        c->tx_len = d->data_len;
        conn_write_pending(ctx, c);
        if (c->tx_len != 0) {
            /* lwIP's send buffer is full: hold the channel until it has sent enough */
            os_handle_hold(ctx, c->chan, true);
            c->held = true;
        }
    } else if (ev->type == tcp_msg_shutdown && tcp_shutdown_decode(ev, &m.shut) == 0) {
        if (m.shut.how != 1) {
            proto_error(ctx, c->chan, ev, OS_EPROTO);
            return;
        }
        if (c->shut_tx) {
            proto_error(ctx, c->chan, ev, OS_ESTATE);
            return;
        }
        c->shut_tx = true;
        if (c->pcb != NULL && !c->connecting)
            tcp_shutdown(c->pcb, 0, 1); /* else when the handshake is done */
        conn_flush(ctx, st, c);
    } else if (ev->type == tcp_msg_reset && tcp_reset_decode(ev, &m.reset) == 0) {
        if (c->pcb != NULL) {
            pcb_detach(c->pcb);
            tcp_abort(c->pcb);
        }
        conn_free(ctx, c);
    } else {
        proto_error(ctx, c->chan, ev, OS_EPROTO);
    }
}

/* The client closed its end: after what it sent, close ours; unread data resets. */
static void on_conn_closed(os_ctx_t *ctx, tcpip_conn_t *c)
{
    if (c->pcb != NULL) {
        if (c->rx != NULL) {
            pbuf_free(c->rx);
            c->rx = NULL;
        }
        pcb_close(c->pcb); /* lwIP sends RST if data was left unread, FIN otherwise */
    }
    conn_free(ctx, c);
}

bool tcp_on_channel(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    tcpip_conn_t *c = conn_by_chan(st, ev->handle);
    if (c != NULL) {
        if (ev->kind == OS_EV_MESSAGE)
            on_conn_message(ctx, st, c, ev);
        else if (ev->kind == OS_EV_WRITABLE)
            conn_flush(ctx, st, c);
        else if (ev->kind == OS_EV_PEER_CLOSED)
            on_conn_closed(ctx, c);
        return true;
    }
    tcpip_listener_t *l = listener_by_chan(st, ev->handle);
    if (l == NULL)
        return false;
    if (ev->kind == OS_EV_MESSAGE) {
        proto_error(ctx, l->chan, ev, OS_EPROTO); /* nothing goes to a listener */
    } else if (ev->kind == OS_EV_PEER_CLOSED) {
        pcb_detach(l->pcb);
        tcp_close(l->pcb);
        os_handle_close(ctx, l->chan);
        l->chan = OS_HANDLE_NONE;
        l->pcb = NULL;
        for (int i = 0; i < TCPIP_CONNS_MAX; i++)
            if (st->conns[i].listener == (int)(l - st->listeners))
                st->conns[i].listener = -1;
    }
    return true;
}
