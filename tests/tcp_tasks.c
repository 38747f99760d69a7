/* tcp_tasks.c — the programs test_tcp.c runs inside the OS: the stopper, a client that does not
 * read, a prober of malformed messages, a denied program, a task that connects to itself, and a
 * UDP socket nobody reads. */
#include <stdbool.h>
#include <string.h>

#include <iface/init_client.h>
#include <iface/udp.h>

#include "../servers/tcpip/tcpip_limits.h" /* TCPIP_CONNS_MAX */
#include "tcp_test.h"

/* ---- the stopper: wait for listeners, then for the host, check pcbs, shut down --------- */

typedef struct stopper {
    os_handle_t net, timer;
    bool ready, have_addr;
    uint32_t seen_other, seen_listen, seen_ports;
} stopper_t;

static void stopper_start(os_ctx_t *ctx)
{
    stopper_t *s = os_state(ctx);
    os_timer_create(ctx, &s->timer);
    init_connect_iface(ctx, 1, &net_iface);
}

static void stopper_tick(os_ctx_t *ctx, stopper_t *s)
{
    os_timer_set(ctx, s->timer, os_clock_now(ctx) + TICK_NS);
}

static void stopper_event(os_ctx_t *ctx, const os_event_t *ev)
{
    stopper_t *s = os_state(ctx);
    union {
        init_connected_t c;
        net_conn_t conn;
        net_conns_end_t end;
        net_info_t info;
        net_counters_t counters;
    } m;
    if (ev->kind == OS_EV_TIMER) {
        if (!s->have_addr) {
            net_status_t q = {4}; /* first an address: slirp's SYNs need our ARP answer */
            net_status_send(ctx, s->net, &q);
        } else if (!s->ready || atomic_load(&G.host_done)) {
            s->seen_other = s->seen_listen = s->seen_ports = 0;
            net_conns_t q = {1};
            net_conns_send(ctx, s->net, &q);
        } else {
            stopper_tick(ctx, s);
        }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.c) == 0) {
            s->net = m.c.chan;
            stopper_tick(ctx, s);
        }
        return;
    }
    if (net_conn_decode(ev, &m.conn) == 0) {
        if (m.conn.proto == 6 && m.conn.state == 1) {
            s->seen_listen++;
            for (int i = 0; i < nexpected; i++)
                if (m.conn.lport == expected_ports[i])
                    s->seen_ports++;
        } else if (m.conn.proto == 6 && m.conn.state != 10) {
            s->seen_other++; /* TIME_WAIT ends by itself; anything else is a live pcb */
        }
    } else if (net_conns_end_decode(ev, &m.end) == 0) {
        if (!s->ready) {
            if ((int)s->seen_ports == nexpected) {
                s->ready = true;
                atomic_store(&G.ready, 1);
            }
            stopper_tick(ctx, s);
        } else if (s->seen_other != 0) {
            stopper_tick(ctx, s); /* connections still closing: look again */
        } else {
            G.conns_tcp_other = s->seen_other;
            G.conns_listen = s->seen_listen;
            net_status_t q = {2};
            net_status_send(ctx, s->net, &q);
        }
    } else if (net_info_decode(ev, &m.info) == 0) {
        if (m.info.req == 4)
            s->have_addr = m.info.addr != 0;
        else
            G.info = m.info;
    } else if (net_counters_decode(ev, &m.counters) == 0) {
        if (m.counters.req == 4) {
            stopper_tick(ctx, s);
            return;
        }
        G.counters = m.counters;
        init_shutdown_t q = {3, 0};
        init_shutdown_send(ctx, init_channel(ctx), &q);
    } else {
        iface_discard(ctx, ev);
    }
}

const os_program_t stopper = {"stopper", sizeof(stopper_t), stopper_start, stopper_event};

/* ---- lazy: a client that does not read, then does; and a listener nobody accepts from --- */

typedef struct lazy {
    os_handle_t tcp, timer, listener, backlog, conn;
    bool reading, accepting, shut;
    uint64_t echo_left;
    uint8_t buf[TCP_DATA_MAX];
} lazy_t;

static void lazy_start(os_ctx_t *ctx)
{
    lazy_t *l = os_state(ctx);
    l->listener = l->backlog = l->conn = OS_HANDLE_NONE;
    os_timer_create(ctx, &l->timer);
    os_timer_set(ctx, l->timer, os_clock_now(ctx) + TICK_NS);
    init_connect_iface(ctx, 1, &tcp_iface);
}

/* Send our own 1 MiB to the host as fast as the kernel takes it. */
static void lazy_echo(os_ctx_t *ctx, lazy_t *l)
{
    while (l->echo_left > 0) {
        uint32_t n = l->echo_left < TCP_DATA_MAX ? (uint32_t)l->echo_left : TCP_DATA_MAX;
        uint8_t msg[2 + TCP_DATA_MAX];
        msg[0] = (uint8_t)n;
        msg[1] = (uint8_t)(n >> 8);
        uint64_t at = BULK - l->echo_left;
        for (uint32_t i = 0; i < n; i++)
            msg[2 + i] = pattern(at + i);
        int rc = os_send(ctx, l->conn, tcp_msg_data, msg, 2 + n, NULL, 0);
        if (rc == OS_EFULL) {
            G.lazy_efull++;
            return; /* WRITABLE follows */
        }
        if (rc < 0)
            return;
        l->echo_left -= n;
        G.lazy_echo_sent += n;
    }
    if (!l->shut) {
        tcp_shutdown_t s = {1};
        if (tcp_shutdown_send(ctx, l->conn, &s) == 0)
            l->shut = true;
    }
}

static void lazy_event(os_ctx_t *ctx, const os_event_t *ev)
{
    lazy_t *l = os_state(ctx);
    union {
        init_connected_t c;
        tcp_listening_t ok;
        tcp_accepted_t acc;
        tcp_data_t data;
        tcp_eof_t eof;
    } m;
    if (ev->kind == OS_EV_TIMER) {
        if (!l->accepting && l->backlog != OS_HANDLE_NONE && atomic_load(&G.go_backlog)) {
            l->accepting = true;
            os_handle_hold(ctx, l->backlog, false);
        }
        if (!l->reading && l->conn != OS_HANDLE_NONE && atomic_load(&G.go)) {
            l->reading = true;
            os_handle_hold(ctx, l->conn, false);
        }
        if (!l->reading)
            os_timer_set(ctx, l->timer, os_clock_now(ctx) + TICK_NS);
        return;
    }
    if (ev->kind == OS_EV_WRITABLE && ev->handle == l->conn) {
        G.lazy_writable++;
        lazy_echo(ctx, l);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (ev->handle == l->conn) {
            os_handle_close(ctx, l->conn);
            l->conn = OS_HANDLE_NONE;
        }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.c) == 0) {
            l->tcp = m.c.chan;
            tcp_listen_t a = {1, 0, PORT_LAZY, 1};
            tcp_listen_send(ctx, l->tcp, &a);
            tcp_listen_t b = {2, 0, PORT_BACKLOG, BACKLOG};
            tcp_listen_send(ctx, l->tcp, &b);
        }
        return;
    }
    if (ev->handle == l->tcp) {
        if (tcp_listening_decode(ev, &m.ok) == 0) {
            if (m.ok.req == 1) {
                l->listener = m.ok.chan;
            } else {
                l->backlog = m.ok.chan;
                os_handle_hold(ctx, l->backlog, true); /* nobody accepts, until go */
            }
        }
        return;
    }
    if (ev->handle == l->listener && tcp_accepted_decode(ev, &m.acc) == 0) {
        l->conn = m.acc.chan;
        os_handle_hold(ctx, l->conn, true); /* we do not read: the window must close */
        return;
    }
    if (ev->handle == l->backlog && tcp_accepted_decode(ev, &m.acc) == 0) {
        tcp_data_t hi = {.data_len = 2, .data = {'h', 'i'}};
        tcp_data_send(ctx, m.acc.chan, &hi);
        os_handle_close(ctx, m.acc.chan); /* after the data: a graceful close */
        return;
    }
    if (ev->handle == l->conn) {
        if (tcp_data_decode(ev, &m.data) == 0) {
            for (uint32_t i = 0; i < m.data.data_len; i++)
                if (m.data.data[i] != pattern(G.lazy_got + i))
                    G.lazy_bad++;
            G.lazy_got += m.data.data_len;
        } else if (tcp_eof_decode(ev, &m.eof) == 0) {
            G.lazy_eof_bytes = m.eof.bytes;
            l->echo_left = BULK;
            lazy_echo(ctx, l);
        }
        return;
    }
    iface_discard(ctx, ev);
}

const os_program_t lazy = {"lazy", sizeof(lazy_t), lazy_start, lazy_event};

/* ---- prober: malformed messages everywhere, a refused connect, udp, net ------------------ */

typedef struct prober {
    os_handle_t tcp, udp, net, listener, refused, sock, conn, conn2, timer;
    bool started;
} prober_t;

/* net first: the rest starts once DHCP gave an address */
static void prober_start(os_ctx_t *ctx)
{
    prober_t *p = os_state(ctx);
    p->listener = p->refused = p->sock = p->conn = p->conn2 = OS_HANDLE_NONE;
    os_timer_create(ctx, &p->timer);
    init_connect_iface(ctx, 3, &net_iface);
}

/* short, long, unknown, a server's message, and one carrying a stray handle */
static void garbage(os_ctx_t *ctx, os_handle_t ch, uint32_t good_type, uint32_t server_type)
{
    uint8_t junk[16];
    os_handle_t a, b;
    memset(junk, 0xee, sizeof junk);
    os_send(ctx, ch, good_type, junk, 1, NULL, 0);
    os_send(ctx, ch, 99, NULL, 0, NULL, 0);
    os_send(ctx, ch, server_type, junk, 9, NULL, 0);
    os_channel_create(ctx, &a, &b);
    os_send(ctx, ch, good_type, junk, 3, &b, 1);
    os_handle_close(ctx, a);
}

static void record(int *st, uint32_t *types, int *n, int max, uint32_t type, int status)
{
    if (*n < max) {
        types[*n] = type;
        st[(*n)++] = status;
    }
}

static void prober_event(os_ctx_t *ctx, const os_event_t *ev)
{
    prober_t *p = os_state(ctx);
    union {
        init_connected_t c;
        tcp_listening_t ok;
        tcp_opened_t op;
        tcp_accepted_t acc;
        tcp_error_t err;
        udp_bound_t bound;
        udp_error_t uerr;
        net_resolved_t res;
    } m;
    if (ev->kind == OS_EV_TIMER) {
        net_status_t q = {1};
        net_status_send(ctx, p->net, &q);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (ev->handle == p->refused)
            G.refused_closed = 1;
        if (ev->handle == p->conn2)
            atomic_store(&G.reset_closed, 1);
        os_handle_close(ctx, ev->handle);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.c) == 0) {
            if (m.c.req == 1) {
                p->tcp = m.c.chan;
                garbage(ctx, p->tcp, tcp_msg_listen, tcp_msg_listening);
                tcp_listen_t l = {1, 0, PORT_PROBE, 0};
                tcp_listen_send(ctx, p->tcp, &l);
                tcp_connect_t c = {2, 0x0a000202, 1}; /* a closed port: slirp resets */
                tcp_connect_send(ctx, p->tcp, &c);
                tcp_connect_t z = {3, 0, 80}; /* address 0 */
                tcp_connect_send(ctx, p->tcp, &z);
                tcp_listen_t big = {4, 0, 11, TCP_BACKLOG_MAX + 1};
                tcp_listen_send(ctx, p->tcp, &big);
            } else if (m.c.req == 2) {
                p->udp = m.c.chan;
                udp_bind_t b = {1, 0, 0};
                udp_bind_send(ctx, p->udp, &b);
            } else {
                p->net = m.c.chan;
                net_status_t q = {1};
                net_status_send(ctx, p->net, &q);
            }
        }
        return;
    }
    if (ev->handle == p->tcp) {
        tcp_reply_t r;
        if (tcp_listening_decode(ev, &m.ok) == 0) {
            p->listener = m.ok.chan;
            garbage(ctx, p->listener, tcp_msg_accepted, tcp_msg_accepted);
            tcp_listen_t again = {5, 0, PORT_PROBE, 0}; /* the same port twice */
            tcp_listen_send(ctx, p->tcp, &again);
        } else if (tcp_opened_decode(ev, &m.op) == 0) {
            p->refused = m.op.chan;
        } else if (tcp_reply_decode(ev, &r) == 0) {
            record(G.errors, G.error_types, &G.nerrors, 32, 1000 + r.req, r.status);
        } else if (tcp_error_decode(ev, &m.err) == 0) {
            record(G.errors, G.error_types, &G.nerrors, 32, m.err.type, m.err.status);
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    if (ev->handle == p->listener) {
        if (tcp_accepted_decode(ev, &m.acc) == 0 && p->conn != OS_HANDLE_NONE) {
            p->conn2 = m.acc.chan; /* the host resets this one */
            atomic_store(&G.accepted2, 1);
        } else if (tcp_accepted_decode(ev, &m.acc) == 0) {
            p->conn = m.acc.chan;
            garbage(ctx, p->conn, tcp_msg_shutdown, tcp_msg_eof);
            tcp_shutdown_t bad = {2};
            tcp_shutdown_send(ctx, p->conn, &bad);
            tcp_data_t ok = {.data_len = 2, .data = {'o', 'k'}};
            tcp_data_send(ctx, p->conn, &ok);
            tcp_shutdown_t s = {1};
            tcp_shutdown_send(ctx, p->conn, &s);
            tcp_data_send(ctx, p->conn, &ok); /* after shutdown: ESTATE */
        } else if (tcp_error_decode(ev, &m.err) == 0) {
            record(G.errors, G.error_types, &G.nerrors, 32, m.err.type, m.err.status);
        }
        return;
    }
    if (ev->handle == p->refused) {
        if (tcp_error_decode(ev, &m.err) == 0 && m.err.type == 0) {
            G.refused = m.err.status;
            /* 10.0.2.2 answered (a refusal): a ping to it now has a known MAC */
            net_ping_t ping = {.req = 3, .addr = 0x0a000202, .seq = 42, .size = 56};
            net_ping_send(ctx, p->net, &ping);
        }
        return;
    }
    if (ev->handle == p->conn2) {
        if (tcp_error_decode(ev, &m.err) == 0 && m.err.type == 0)
            G.reset_error = m.err.status;
        return;
    }
    if (ev->handle == p->conn) {
        if (tcp_error_decode(ev, &m.err) == 0)
            record(G.conn_errors, G.conn_error_types, &G.nconn_errors, 8, m.err.type, m.err.status);
        else
            iface_discard(ctx, ev);
        return;
    }
    if (ev->handle == p->udp) {
        if (udp_bound_decode(ev, &m.bound) == 0) {
            p->sock = m.bound.chan;
            garbage(ctx, p->sock, udp_msg_sendto, udp_msg_recvfrom);
            udp_sendto_t z = {.addr = 0, .port = 7, .data_len = 1, .data = {'x'}};
            udp_sendto_send(ctx, p->sock, &z);
        }
        return;
    }
    if (ev->handle == p->sock) {
        if (udp_error_decode(ev, &m.uerr) == 0)
            record(G.udp_errors, G.udp_error_types, &G.nudp_errors, 8, m.uerr.type, m.uerr.status);
        return;
    }
    if (ev->handle == p->net) {
        net_info_t info;
        if (net_resolved_decode(ev, &m.res) == 0) {
            G.resolved = m.res.addr;
        } else if (net_info_decode(ev, &info) == 0 && !p->started) {
            if (info.addr == 0) {
                os_timer_set(ctx, p->timer, os_clock_now(ctx) + TICK_NS);
                return;
            }
            p->started = true;
            init_connect_iface(ctx, 1, &tcp_iface);
            init_connect_iface(ctx, 2, &udp_iface);
            net_resolve_t r = {1, "10.0.2.2"};
            net_resolve_send(ctx, p->net, &r);
            net_resolve_t empty = {2, ""};
            net_resolve_send(ctx, p->net, &empty);
            net_ping_t big = {.req = 4, .addr = 0x0a000202, .seq = 1, .size = NET_PING_MAX + 1};
            net_ping_send(ctx, p->net, &big);
            net_ping_t none = {.req = 5, .addr = 0, .seq = 1, .size = 8};
            net_ping_send(ctx, p->net, &none);
        } else {
            net_failed_t f;
            if (net_pong_decode(ev, &G.pong) == 0)
                atomic_store(&G.ping_done, 1);
            else if (net_failed_decode(ev, &f) == 0 && f.req < 8)
                G.net_failed[f.req] = f.status;
            if (G.net_failed[3] != 0)
                atomic_store(&G.ping_done, 1);
        }
        return;
    }
    iface_discard(ctx, ev);
}

const os_program_t prober = {"prober", sizeof(prober_t), prober_start, prober_event};

/* ---- denied: connects to tcp without reach=tcp ------------------------------------------- */

static void denied_start(os_ctx_t *ctx)
{
    init_connect_iface(ctx, 1, &tcp_iface);
}

static void denied_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_reply_t r;
    if (ev->kind == OS_EV_MESSAGE && init_reply_decode(ev, &r) == 0)
        G.denied = r.status;
    else if (ev->kind == OS_EV_MESSAGE)
        iface_discard(ctx, ev);
}

const os_program_t denied = {"denied", 0, denied_start, denied_event};

/* ---- selfcon: connects to its own listener through lwIP's loopback ----------------------- */

selfcon_seen_t S;

typedef struct selfcon {
    os_handle_t tcp, net, timer, listener, client, server;
} selfcon_t;

static void selfcon_start(os_ctx_t *ctx)
{
    selfcon_t *c = os_state(ctx);
    c->listener = c->client = c->server = OS_HANDLE_NONE;
    os_timer_create(ctx, &c->timer);
    init_connect_iface(ctx, 1, &net_iface);
}

static void selfcon_event(os_ctx_t *ctx, const os_event_t *ev)
{
    selfcon_t *c = os_state(ctx);
    union {
        init_connected_t conn;
        net_info_t info;
        tcp_listening_t ok;
        tcp_opened_t op;
        tcp_accepted_t acc;
        tcp_data_t data;
        tcp_eof_t eof;
    } m;
    if (ev->kind == OS_EV_TIMER) {
        net_status_t q = {1};
        net_status_send(ctx, c->net, &q);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (ev->handle == c->client)
            atomic_store(&S.closed, 1);
        os_handle_close(ctx, ev->handle);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx) && init_connected_decode(ev, &m.conn) == 0) {
        if (m.conn.req == 1) {
            c->net = m.conn.chan;
            net_status_t q = {1};
            net_status_send(ctx, c->net, &q);
        } else {
            c->tcp = m.conn.chan;
            tcp_listen_t l = {1, 0, PORT_SELF, 0};
            tcp_listen_send(ctx, c->tcp, &l);
        }
    } else if (ev->handle == c->net && net_info_decode(ev, &m.info) == 0) {
        if (m.info.addr == 0)
            os_timer_set(ctx, c->timer, os_clock_now(ctx) + TICK_NS);
        else
            init_connect_iface(ctx, 2, &tcp_iface);
    } else if (ev->handle == c->tcp && tcp_listening_decode(ev, &m.ok) == 0) {
        c->listener = m.ok.chan;
        tcp_connect_t q = {2, 0x0a00020f, PORT_SELF}; /* ourselves */
        tcp_connect_send(ctx, c->tcp, &q);
    } else if (ev->handle == c->tcp && tcp_opened_decode(ev, &m.op) == 0) {
        c->client = m.op.chan;
    } else if (ev->handle == c->client && tcp_established_decode(ev, &S.est) == 0) {
        tcp_data_t d = {.data_len = 4, .data = {'p', 'i', 'n', 'g'}};
        tcp_data_send(ctx, c->client, &d);
        tcp_shutdown_t sh = {1};
        tcp_shutdown_send(ctx, c->client, &sh);
    } else if (ev->handle == c->listener && tcp_accepted_decode(ev, &m.acc) == 0) {
        c->server = m.acc.chan;
    } else if (ev->handle == c->server && tcp_data_decode(ev, &m.data) == 0) {
        S.ping = m.data.data_len == 4 && memcmp(m.data.data, "ping", 4) == 0;
        tcp_data_t d = {.data_len = 4, .data = {'p', 'o', 'n', 'g'}};
        tcp_data_send(ctx, c->server, &d);
        os_handle_close(ctx, c->server); /* our FIN after the pong */
        c->server = OS_HANDLE_NONE;
    } else if (ev->handle == c->client && tcp_data_decode(ev, &m.data) == 0) {
        S.pong = m.data.data_len == 4 && memcmp(m.data.data, "pong", 4) == 0;
    } else if (ev->handle == c->client && tcp_eof_decode(ev, &m.eof) == 0) {
        S.eof_bytes = m.eof.bytes;
    } else {
        iface_discard(ctx, ev);
    }
}

const os_program_t selfcon = {"selfcon", sizeof(selfcon_t), selfcon_start, selfcon_event};

/* ---- udpsink: a UDP socket nobody reads until the server has dropped the excess ---------- */

udpsink_seen_t U;

typedef struct udpsink {
    os_handle_t udp, net, sink, timer;
} udpsink_t;

static void udpsink_start(os_ctx_t *ctx)
{
    udpsink_t *u = os_state(ctx);
    u->sink = OS_HANDLE_NONE;
    os_timer_create(ctx, &u->timer);
    init_connect_iface(ctx, 1, &udp_iface);
    init_connect_iface(ctx, 2, &net_iface);
}

static void udpsink_event(os_ctx_t *ctx, const os_event_t *ev)
{
    udpsink_t *u = os_state(ctx);
    union {
        init_connected_t conn;
        udp_bound_t bound;
        udp_recvfrom_t dgram;
        net_counters_t counters;
    } m;
    if (ev->kind == OS_EV_TIMER) {
        net_status_t q = {1};
        net_status_send(ctx, u->net, &q);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx) && init_connected_decode(ev, &m.conn) == 0) {
        if (m.conn.req == 1) {
            u->udp = m.conn.chan;
            udp_bind_t a = {1, 0, PORT_SINK};
            udp_bind_send(ctx, u->udp, &a);
        } else {
            u->net = m.conn.chan;
            os_timer_set(ctx, u->timer, os_clock_now(ctx) + TICK_NS);
        }
    } else if (ev->handle == u->udp && udp_bound_decode(ev, &m.bound) == 0) {
        u->sink = m.bound.chan;
        os_handle_hold(ctx, u->sink, true); /* nobody reads: its queue fills */
    } else if (ev->handle == u->net && net_counters_decode(ev, &m.counters) == 0) {
        if (m.counters.other_dropped > 0) {
            os_handle_hold(ctx, u->sink, false); /* now read what waited */
            atomic_store(&U.released, 1);
        } else {
            os_timer_set(ctx, u->timer, os_clock_now(ctx) + TICK_NS);
        }
    } else if (ev->handle == u->sink && udp_recvfrom_decode(ev, &m.dgram) == 0) {
        atomic_fetch_add(&U.got, 1);
    } else {
        iface_discard(ctx, ev); /* net.info and the rest */
    }
}

const os_program_t udpsink = {"udpsink", sizeof(udpsink_t), udpsink_start, udpsink_event};
