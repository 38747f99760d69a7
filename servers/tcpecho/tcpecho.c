/* tcpecho.c — the TCP and UDP echo service on port 7: every byte back, with backpressure; a
 * client of the tcpip server's tcp and udp interfaces (manifest: reach=tcp,udp). */
#include <image.h>
#include <iface/init_client.h>
#include <iface/tcp.h>
#include <iface/udp.h>

#include <string.h>

enum {
    TCPECHO_PORT = 7,
    TCPECHO_CONNS_MAX = 128,
    TCPECHO_BACKLOG = TCP_BACKLOG_MAX,
    REQ_TCP = 1, /* init connects, and the listen/bind requests */
    REQ_UDP = 2,
};

/* One echoed connection. chan NONE: a free slot. */
typedef struct echo_conn {
    os_handle_t chan;
    bool held;         /* our send got OS_EFULL: we stopped reading until WRITABLE */
    bool eof;          /* the peer's FIN: shut down once all is echoed */
    bool shut_pending; /* the shutdown itself got OS_EFULL */
    uint32_t len;      /* pending: the data message the client's full queue refused */
    uint8_t data[OS_MSG_MAX_DATA];
} echo_conn_t;

typedef struct tcpecho_state {
    os_handle_t tcp, udp;         /* control channels */
    os_handle_t listener, socket; /* port 7 */
    bool tcp_failed, udp_failed;
    uint64_t udp_dropped; /* datagrams our reply could not be queued for */
    echo_conn_t conns[TCPECHO_CONNS_MAX];
    udp_recvfrom_t dgram;
} tcpecho_state_t;

static void tcpecho_start(os_ctx_t *ctx)
{
    tcpecho_state_t *st = os_state(ctx);
    st->tcp = st->udp = st->listener = st->socket = OS_HANDLE_NONE;
    for (int i = 0; i < TCPECHO_CONNS_MAX; i++)
        st->conns[i].chan = OS_HANDLE_NONE;
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
    init_connect_iface(ctx, REQ_UDP, &udp_iface);
}

/* Neither interface could be had: nothing to serve. */
static void check_failed(os_ctx_t *ctx, tcpecho_state_t *st)
{
    if (st->tcp_failed && st->udp_failed) {
        os_log(ctx, "neither tcp nor udp; exiting");
        os_exit(ctx, 1);
    }
}

static void on_init(os_ctx_t *ctx, tcpecho_state_t *st, const os_event_t *ev)
{
    union {
        init_connected_t conn;
        init_reply_t reply;
    } m;
    if (init_connected_decode(ev, &m.conn) == 0) {
        if (m.conn.req == REQ_TCP) {
            st->tcp = m.conn.chan;
            tcp_listen_t l = {REQ_TCP, 0, TCPECHO_PORT, TCPECHO_BACKLOG};
            tcp_listen_send(ctx, st->tcp, &l);
        } else {
            st->udp = m.conn.chan;
            udp_bind_t b = {REQ_UDP, 0, TCPECHO_PORT};
            udp_bind_send(ctx, st->udp, &b);
        }
    } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
        bool tcp = m.reply.req == REQ_TCP;
        os_log(ctx, "connect %s: %s", tcp ? "tcp" : "udp", os_strerror(m.reply.status));
        if (tcp)
            st->tcp_failed = true;
        else
            st->udp_failed = true;
        check_failed(ctx, st);
    } else {
        iface_discard(ctx, ev);
    }
}

static void on_tcp_control(os_ctx_t *ctx, tcpecho_state_t *st, const os_event_t *ev)
{
    union {
        tcp_listening_t ok;
        tcp_reply_t reply;
    } m;
    if (tcp_listening_decode(ev, &m.ok) == 0) {
        st->listener = m.ok.chan;
        os_log(ctx, "tcp port %u", (unsigned)m.ok.port);
    } else if (tcp_reply_decode(ev, &m.reply) == 0) {
        os_log(ctx, "listen on tcp port %d: %s", TCPECHO_PORT, os_strerror(m.reply.status));
        st->tcp_failed = true;
        check_failed(ctx, st);
    } else {
        iface_discard(ctx, ev);
    }
}

static void on_udp_control(os_ctx_t *ctx, tcpecho_state_t *st, const os_event_t *ev)
{
    union {
        udp_bound_t ok;
        udp_reply_t reply;
    } m;
    if (udp_bound_decode(ev, &m.ok) == 0) {
        st->socket = m.ok.chan;
        os_log(ctx, "udp port %u", (unsigned)m.ok.port);
    } else if (udp_reply_decode(ev, &m.reply) == 0) {
        os_log(ctx, "bind udp port %d: %s", TCPECHO_PORT, os_strerror(m.reply.status));
        st->udp_failed = true;
        check_failed(ctx, st);
    } else {
        iface_discard(ctx, ev);
    }
}

static void on_accepted(os_ctx_t *ctx, tcpecho_state_t *st, const os_event_t *ev)
{
    tcp_accepted_t m;
    if (tcp_accepted_decode(ev, &m) < 0) {
        iface_discard(ctx, ev);
        return;
    }
    for (int i = 0; i < TCPECHO_CONNS_MAX; i++) {
        echo_conn_t *c = &st->conns[i];
        if (c->chan == OS_HANDLE_NONE) {
            memset(c, 0, sizeof *c - sizeof c->data);
            c->chan = m.chan;
            return;
        }
    }
    os_handle_close(ctx, m.chan); /* full: the server closes the connection */
}

/* After the peer's FIN and all its bytes echoed: our FIN. */
static void shut(os_ctx_t *ctx, echo_conn_t *c)
{
    tcp_shutdown_t s = {1};
    c->shut_pending = tcp_shutdown_send(ctx, c->chan, &s) == OS_EFULL;
}

/* Send what waits; true when nothing waits any more. */
static bool flush(os_ctx_t *ctx, echo_conn_t *c)
{
    if (c->len > 0) {
        int rc = os_send(ctx, c->chan, tcp_msg_data, c->data, c->len, NULL, 0);
        if (rc == OS_EFULL)
            return false;
        c->len = 0;
    }
    if (c->shut_pending)
        shut(ctx, c);
    return !c->shut_pending;
}

static void on_conn(os_ctx_t *ctx, echo_conn_t *c, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        os_handle_close(ctx, c->chan);
        c->chan = OS_HANDLE_NONE;
        return;
    }
    if (ev->kind == OS_EV_WRITABLE) {
        if (flush(ctx, c) && c->held) {
            os_handle_hold(ctx, c->chan, false);
            c->held = false;
        }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->type == tcp_msg_data && ev->nhandles == 0) {
        /* the wire form of data is the same both ways: echo the message as it came */
        int rc = os_send(ctx, c->chan, tcp_msg_data, ev->data, ev->len, NULL, 0);
        if (rc == OS_EFULL && ev->len <= sizeof c->data) {
            memcpy(c->data, ev->data, ev->len);
            c->len = (uint32_t)ev->len;
            os_handle_hold(ctx, c->chan, true); /* read no more until we can send */
            c->held = true;
        }
    } else if (ev->type == tcp_msg_eof) {
        c->eof = true;
        shut(ctx, c);
    } else {
        iface_discard(ctx, ev); /* error: the server closes the channel next */
    }
}

static void on_datagram(os_ctx_t *ctx, tcpecho_state_t *st, const os_event_t *ev)
{
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (udp_recvfrom_decode(ev, &st->dgram) < 0) {
        iface_discard(ctx, ev);
        return;
    }
    /* sendto has the layout of recvfrom */
    if (os_send(ctx, st->socket, udp_msg_sendto, ev->data, ev->len, NULL, 0) < 0)
        st->udp_dropped++;
}

static void tcpecho_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    tcpecho_state_t *st = os_state(ctx);
    os_handle_t h = ev->handle;
    if (h == init_channel(ctx) && ev->kind == OS_EV_MESSAGE) {
        on_init(ctx, st, ev);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED && (h == st->tcp || h == st->udp || h == st->listener ||
                                          h == st->socket || h == init_channel(ctx))) {
        os_log(ctx, "the tcpip server went away; exiting");
        os_exit(ctx, 1);
    }
    if (h == st->tcp && ev->kind == OS_EV_MESSAGE) {
        on_tcp_control(ctx, st, ev);
    } else if (h == st->udp && ev->kind == OS_EV_MESSAGE) {
        on_udp_control(ctx, st, ev);
    } else if (h == st->listener && ev->kind == OS_EV_MESSAGE) {
        on_accepted(ctx, st, ev);
    } else if (h == st->socket) {
        on_datagram(ctx, st, ev);
    } else {
        for (int i = 0; i < TCPECHO_CONNS_MAX; i++) {
            if (st->conns[i].chan != OS_HANDLE_NONE && st->conns[i].chan == h) {
                on_conn(ctx, &st->conns[i], ev);
                return;
            }
        }
        if (ev->kind == OS_EV_MESSAGE)
            iface_discard(ctx, ev);
    }
}

const os_program_t orrery_tcpecho = {"tcpecho", sizeof(tcpecho_state_t), tcpecho_start,
                                     tcpecho_on_event};
