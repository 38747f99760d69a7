/* test_tcp.c — the tcp and udp interfaces of the tcpip server, hosted on slirp (restricted:
 * only 127.0.0.1 and 10.0.2.x), with real host sockets as the peers through hostfwd: tcpecho
 * echoes 1 MiB with a half close, UDP, many connections; a client that does not read; a
 * listener nobody accepts from; malformed messages; a refused connect; a denied program. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hl/hosted.h>
#include <iface/init_client.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <iface/udp.h>
#include <image.h>

#include "../servers/tcpip/tcpip_limits.h" /* TCPIP_CONNS_MAX */

enum {
    GUARD_MS = 60000, /* hang guards only: a wait that long means the OS is stuck */
    TICK_NS = 10000000,
    BULK = 1 << 20,
    MANY = 300,
    SEQUENTIAL = 1000,
    LAZY_BYTES = 3 << 20, /* more than every buffer between the host and the lazy task */
    BACKLOG = 2,
    BACKLOG_TRIES = 5,
    PORT_LAZY = 8,
    PORT_PROBE = 9,
    PORT_BACKLOG = 10,
};

/* ---- what the tasks and the host thread saw (read by the test after hl_run returned) ---- */

static struct {
    atomic_int ready;      /* the stopper saw every expected listener */
    atomic_int host_done;  /* the host side finished */
    atomic_int go;         /* the host tells the lazy task to start reading its connection */
    atomic_int go_backlog; /* ... and to accept from its second listener */
    atomic_int ping_done;  /* the prober's ping was answered (or failed) */
    atomic_int accepted2;  /* the prober has the connection the host will reset */
    char host_fail[256];   /* the first thing the host side found wrong */
    /* host side */
    long bulk_echoed; /* bytes of BULK echoed back, identical */
    int bulk_eof;     /* the echo ended with EOF after our half close */
    int many_echoed, many_reset, seq_ok;
    long lazy_sent; /* bytes the host wrote to the lazy task before the window closed */
    int backlog_closed, backlog_hi;
    int probe_ok; /* the prober's "ok" after its garbage */
    /* stopper */
    uint32_t conns_tcp_other; /* TCP pcbs other than listeners at the end */
    uint32_t conns_listen;
    net_counters_t counters;
    net_info_t info;
    /* lazy task */
    uint64_t lazy_got;
    int lazy_bad; /* bytes not as sent */
    uint64_t lazy_eof_bytes;
    int lazy_efull, lazy_writable;
    uint64_t lazy_echo_sent;
    /* prober */
    int errors[32];
    uint32_t error_types[32];
    int nerrors;
    int conn_errors[8];
    uint32_t conn_error_types[8];
    int nconn_errors;
    int refused; /* the error{0, status} of the connect to a closed port */
    int refused_closed;
    int reset_error;         /* the error{0} on a connection the host reset */
    atomic_int reset_closed; /* read by the host thread */
    int denied;              /* the reply status of a connect without reach */
    uint32_t resolved;
    net_pong_t pong;   /* ping 10.0.2.2 */
    int net_failed[8]; /* failed{req} by req */
    int udp_errors[8];
    uint32_t udp_error_types[8];
    int nudp_errors;
} G;

static int expected_ports[4];
static int nexpected;
static int host_ports[4]; /* hostfwd host ports: tcp 7, udp 7, tcp 8, tcp 10 / 9 */

static void host_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void host_failed(const char *fmt, ...)
{
    if (G.host_fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(G.host_fail, sizeof G.host_fail, fmt, ap);
    va_end(ap);
}

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

static const os_program_t stopper = {"stopper", sizeof(stopper_t), stopper_start, stopper_event};

/* ---- lazy: a client that does not read, then does; and a listener nobody accepts from --- */

typedef struct lazy {
    os_handle_t tcp, timer, listener, backlog, conn;
    bool reading, accepting, shut;
    uint64_t echo_left;
    uint8_t buf[TCP_DATA_MAX];
} lazy_t;

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 13));
}

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

static const os_program_t lazy = {"lazy", sizeof(lazy_t), lazy_start, lazy_event};

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
            /* now 10.0.2.2's MAC is known (lwIP's ARP keeps one packet while it asks) */
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

static const os_program_t prober = {"prober", sizeof(prober_t), prober_start, prober_event};

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

static const os_program_t denied = {"denied", 0, denied_start, denied_event};

/* ---- selfcon: connects to its own listener through lwIP's loopback ----------------------- */

enum { PORT_SELF = 12 };

static struct {
    tcp_established_t est;
    int pong; /* the client side got "pong" */
    uint64_t eof_bytes;
    int ping;          /* the server side got "ping" */
    atomic_int closed; /* the host thread waits for it */
} S;

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

static const os_program_t selfcon = {"selfcon", sizeof(selfcon_t), selfcon_start, selfcon_event};

/* ---- udpsink: a UDP socket nobody reads until the server has dropped the excess ---------- */

enum { PORT_SINK = 5, DGRAMS = 200, DGRAMS_MAX = 5000, DGRAM_BURST = 16 };

static struct {
    atomic_int released; /* the server counted a drop: the socket is read now */
    atomic_int got;      /* datagrams read from it */
    atomic_int sent;     /* datagrams the host sent */
} U;

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

static const os_program_t udpsink = {"udpsink", sizeof(udpsink_t), udpsink_start, udpsink_event};

extern const os_program_t greeter; /* docs/networking.md's example */

static const os_program_t *const image[] = {
    &orrery_init, &orrery_tcpip, &orrery_tcpecho, &stopper, &lazy, &prober,
    &denied,      &greeter,      &selfcon,        &udpsink, NULL};

/* ---- the host side ------------------------------------------------------------------------ */

static int free_port(int type)
{
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    return ntohs(a.sin_port);
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static bool wait_ready(void)
{
    uint64_t end = now_ms() + GUARD_MS;
    while (!atomic_load(&G.ready)) {
        if (now_ms() > end) {
            host_failed("the listeners never appeared");
            return false;
        }
        usleep(1000);
    }
    return true;
}

static int tcp_to(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(s);
        return -1;
    }
    struct pollfd pf = {s, POLLOUT, 0};
    if (poll(&pf, 1, GUARD_MS) != 1) {
        close(s);
        return -1;
    }
    return s;
}

/* Send BULK bytes and read them back at once, then half close and read to EOF. */
static void host_bulk(int port)
{
    static uint8_t out[BULK], in[BULK];
    for (long i = 0; i < BULK; i++)
        out[i] = pattern((uint64_t)i);
    int s = tcp_to(port);
    if (s < 0) {
        host_failed("bulk: connect: %s", strerror(errno));
        return;
    }
    long sent = 0, got = 0;
    bool shut = false;
    uint64_t end = now_ms() + GUARD_MS;
    while (now_ms() < end) {
        struct pollfd pf = {s, (short)(POLLIN | (sent < BULK ? POLLOUT : 0)), 0};
        if (poll(&pf, 1, 1000) < 0)
            break;
        if (sent < BULK && (pf.revents & POLLOUT)) {
            ssize_t n = send(s, out + sent, (size_t)(BULK - sent), MSG_NOSIGNAL);
            if (n > 0)
                sent += n;
        }
        if (sent == BULK && !shut) {
            shutdown(s, SHUT_WR);
            shut = true;
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(s, in + got, (size_t)(BULK - got < 65536 ? BULK - got + 1 : 65536), 0);
            if (n == 0) {
                G.bulk_eof = 1;
                break;
            }
            if (n < 0 && errno != EAGAIN) {
                host_failed("bulk: recv after %ld bytes: %s", got, strerror(errno));
                break;
            }
            if (n > 0)
                got += n;
            if (got > BULK) {
                host_failed("bulk: more bytes than sent");
                break;
            }
        }
    }
    close(s);
    G.bulk_echoed = got == BULK && memcmp(out, in, BULK) == 0 ? got : -got;
}

/* MANY connections open at once: each sends a line and waits for its echo (or a reset)
 * before the next one opens, and stays open: the server's table fills, the rest are reset. */
static void host_many(int port)
{
    static int s[MANY];
    for (int i = 0; i < MANY; i++) {
        s[i] = tcp_to(port);
        if (s[i] < 0) {
            host_failed("many: connect %d: %s", i, strerror(errno));
            break;
        }
        char msg[32], back[64];
        int n = snprintf(msg, sizeof msg, "line %d\n", i);
        send(s[i], msg, (size_t)n, MSG_NOSIGNAL);
        struct pollfd pf = {s[i], POLLIN, 0};
        if (poll(&pf, 1, GUARD_MS) != 1) {
            host_failed("many: connection %d: no echo and no reset", i);
            break;
        }
        ssize_t r = recv(s[i], back, sizeof back, 0);
        if (r == n && memcmp(back, msg, (size_t)n) == 0) {
            G.many_echoed++;
        } else if (r <= 0) {
            G.many_reset++;
            close(s[i]);
            s[i] = -1;
        } else {
            host_failed("many: connection %d got %zd wrong bytes", i, r);
            break;
        }
    }
    for (int i = 0; i < MANY; i++)
        if (s[i] >= 0)
            close(s[i]);
}

/* One connection after the other: each echoes, each closes. */
static void host_sequential(int port)
{
    for (int i = 0; i < SEQUENTIAL; i++) {
        int s = tcp_to(port);
        if (s < 0)
            break;
        char back[8];
        send(s, "seq\n", 4, MSG_NOSIGNAL);
        struct pollfd pf = {s, POLLIN, 0};
        if (poll(&pf, 1, GUARD_MS) == 1 && recv(s, back, sizeof back, 0) == 4)
            G.seq_ok++;
        close(s);
    }
}

static void *host_echo_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        uint64_t t0 = now_ms();
        host_bulk(host_ports[0]);
        uint64_t t1 = now_ms();
        host_many(host_ports[0]);
        uint64_t t2 = now_ms();
        host_sequential(host_ports[0]);
        if (getenv("TEST_TCP_VERBOSE"))
            fprintf(stderr, "bulk %lu ms, many %lu ms, sequential %lu ms\n",
                    (unsigned long)(t1 - t0), (unsigned long)(t2 - t1),
                    (unsigned long)(now_ms() - t2));
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

/* Write LAZY_BYTES to the lazy task, which does not read: the write stalls (the window
 * closed); then the task reads, the rest goes through; then read its own 1 MiB back. */
static void host_lazy(int port)
{
    int s = tcp_to(port);
    int small = 65536; /* the host's own buffer must not swallow the test */
    if (s >= 0)
        setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (s < 0) {
        host_failed("lazy: connect: %s", strerror(errno));
        return;
    }
    static uint8_t buf[65536];
    long sent = 0;
    bool told = false;
    uint64_t end = now_ms() + GUARD_MS;
    while (sent < LAZY_BYTES && now_ms() < end) {
        long n = LAZY_BYTES - sent < (long)sizeof buf ? LAZY_BYTES - sent : (long)sizeof buf;
        for (long i = 0; i < n; i++)
            buf[i] = pattern((uint64_t)(sent + i));
        struct pollfd pf = {s, POLLOUT, 0};
        /* a stall of 300 ms with nothing taken: every buffer is full, the window is shut */
        if (poll(&pf, 1, told ? 1000 : 300) == 0 && !told) {
            G.lazy_sent = sent;
            atomic_store(&G.go, 1);
            told = true;
            continue;
        }
        ssize_t w = send(s, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            sent += w;
        else if (w < 0 && errno != EAGAIN) {
            host_failed("lazy: send: %s", strerror(errno));
            break;
        }
    }
    if (!told) {
        G.lazy_sent = sent;
        atomic_store(&G.go, 1);
    }
    shutdown(s, SHUT_WR);
    /* the task's own 1 MiB, then its FIN */
    long got = 0;
    bool bad = false;
    while (now_ms() < end) {
        struct pollfd pf = {s, POLLIN, 0};
        if (poll(&pf, 1, 1000) != 1)
            continue;
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern((uint64_t)(got + i)))
                bad = true;
        got += r;
    }
    close(s);
    if (bad || got != BULK)
        host_failed("lazy: got %ld bytes back%s", got, bad ? ", some wrong" : "");
}

/* BACKLOG_TRIES connections to a listener nobody accepts from (backlog 2): three are reset;
 * once the task accepts, the two that waited get "hi". */
static void host_backlog(int port)
{
    int s[BACKLOG_TRIES];
    int done[BACKLOG_TRIES] = {0};
    for (int i = 0; i < BACKLOG_TRIES; i++)
        s[i] = tcp_to(port);
    uint64_t end = now_ms() + GUARD_MS;
    int left = BACKLOG_TRIES;
    while (left > 0 && now_ms() < end) {
        struct pollfd pf[BACKLOG_TRIES];
        for (int i = 0; i < BACKLOG_TRIES; i++)
            pf[i] = (struct pollfd){done[i] ? -1 : s[i], POLLIN, 0};
        poll(pf, BACKLOG_TRIES, 1000);
        for (int i = 0; i < BACKLOG_TRIES; i++) {
            if (done[i] || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char b[8];
            ssize_t r = recv(s[i], b, sizeof b, 0);
            if (r == 2 && memcmp(b, "hi", 2) == 0)
                G.backlog_hi++;
            else if (r <= 0)
                G.backlog_closed++;
            done[i] = 1;
            close(s[i]);
            left--;
        }
        if (G.backlog_closed == BACKLOG_TRIES - BACKLOG)
            atomic_store(&G.go_backlog, 1); /* the rest waits: now let the task accept */
    }
}

static void *host_lazy_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        host_backlog(host_ports[3]);
        host_lazy(host_ports[2]);
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

static void *host_probe_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        int s = tcp_to(host_ports[0]);
        char b[16];
        long got = 0;
        uint64_t end = now_ms() + GUARD_MS;
        while (s >= 0 && now_ms() < end) {
            struct pollfd pf = {s, POLLIN, 0};
            if (poll(&pf, 1, 1000) != 1)
                continue;
            ssize_t r = recv(s, b + got, sizeof b - (size_t)got, 0);
            if (r <= 0)
                break;
            got += r;
        }
        G.probe_ok = got == 2 && memcmp(b, "ok", 2) == 0;
        if (s >= 0)
            close(s);
        /* the peer vanishing: a connection the host resets (SO_LINGER 0) once it is up */
        s = tcp_to(host_ports[0]);
        while (s >= 0 && !atomic_load(&G.accepted2) && now_ms() < end)
            usleep(1000);
        if (s >= 0) {
            struct linger lg = {1, 0};
            setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(s);
        }
        while (!atomic_load(&G.reset_closed) && now_ms() < end)
            usleep(1000);
        while (!atomic_load(&G.ping_done) && now_ms() < end)
            usleep(1000);
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

static pthread_t host_thread;
static void *(*host_main)(void *);

static void on_boot(void *self)
{
    (void)self;
    pthread_create(&host_thread, NULL, host_main, NULL);
}

/* Boot the image with this manifest and hostfwd rules; the host side runs `main`. */
static int run(const char *manifest, const char *fwd, void *(*main_fn)(void *),
               hl_run_stats_t *stats, char *out, size_t outlen)
{
    bool on;
    hl_net_config_t net;
    char err[256];
    if (hl_net_parse(fwd, &on, &net, err, sizeof err) != 0)
        fail_msg("--net %s: %s", fwd, err);
    net.restricted = true;
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = image;
    rc.init_program = "init";
    rc.init_arg = manifest;
    rc.init_arg_len = strlen(manifest);
    int in[2]; /* console input that never ends (ended input with no shell stops the OS) */
    assert_int_equal(0, pipe2(in, O_CLOEXEC));
    char path[] = "/tmp/test_tcp_outXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    rc.console_in = in[0];
    rc.console_out = fd;
    rc.workers = 2;
    rc.net = &net;
    rc.stats = stats;
    rc.on_boot = on_boot;
    rc.timeout_ms = 4 * GUARD_MS; /* a hang guard only: the stopper ends the run */
    host_main = main_fn;
    int status = hl_run(&rc);
    atomic_store(&G.ready, 1); /* a host thread still waiting gives up */
    pthread_join(host_thread, NULL);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    if (getenv("TEST_TCP_VERBOSE"))
        fprintf(stderr, "%s", out);
    close(in[0]);
    close(in[1]);
    return status;
}

static void reset_globals(void)
{
    memset(&G, 0, sizeof G);
}

static char console[1 << 16];

static void test_tcpecho_bulk_half_close_udp_and_many(void **state)
{
    (void)state;
    reset_globals();
    host_ports[0] = free_port(SOCK_STREAM);
    host_ports[1] = free_port(SOCK_DGRAM);
    expected_ports[0] = 7;
    nexpected = 1;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:7,hostfwd=udp:127.0.0.1:%d-:7",
             host_ports[0], host_ports[1]);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram tcpecho reach=tcp,udp\nprogram stopper "
                     "reach=net,init\n",
                     fwd, host_echo_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    if (getenv("TEST_TCP_VERBOSE"))
        fprintf(stderr,
                "rx %lu tx %lu rx_dropped %lu tx_dropped %lu other %lu; hosted rx_dropped %lu "
                "tx_full %lu; echoed %d reset %d\n",
                (unsigned long)G.counters.rx_frames, (unsigned long)G.counters.tx_frames,
                (unsigned long)G.counters.rx_dropped, (unsigned long)G.counters.tx_dropped,
                (unsigned long)G.counters.other_dropped, (unsigned long)stats.net_rx_dropped,
                (unsigned long)stats.net_tx_full, G.many_echoed, G.many_reset);
    assert_int_equal(0, status);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(BULK, G.bulk_echoed); /* every byte, in order */
    assert_int_equal(1, G.bulk_eof);       /* our FIN came back after the echo */
    /* UDP echo is tested in pytest/test_tcp.py: restricted slirp drops the guest's datagrams */
    assert_int_equal(TCPIP_CONNS_MAX, G.many_echoed); /* the server's table, full */
    assert_int_equal(MANY - TCPIP_CONNS_MAX, G.many_reset);
    assert_int_equal(G.many_reset, G.counters.other_dropped); /* each reset was counted */
    assert_int_equal(SEQUENTIAL, G.seq_ok);
    /* every connection's pcb is gone; the listener stays */
    assert_int_equal(0, G.conns_tcp_other);
    assert_int_equal(1, G.conns_listen);
    assert_int_equal(1, G.info.dhcp);
    assert_true(G.counters.rx_bytes > BULK && G.counters.tx_bytes > BULK);
    assert_non_null(strstr(console, "[tcpecho] tcp port 7"));
}

static void test_slow_reader_and_unaccepted_listener(void **state)
{
    (void)state;
    reset_globals();
    host_ports[2] = free_port(SOCK_STREAM);
    host_ports[3] = free_port(SOCK_STREAM);
    expected_ports[0] = PORT_LAZY;
    expected_ports[1] = PORT_BACKLOG;
    nexpected = 2;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=tcp:127.0.0.1:%d-:%d",
             host_ports[2], PORT_LAZY, host_ports[3], PORT_BACKLOG);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram lazy reach=tcp\nprogram stopper reach=net,init\n", fwd,
                     host_lazy_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    assert_int_equal(0, status);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    /* the listener nobody accepted from: backlog 2 waited, the rest were reset and counted */
    assert_int_equal(BACKLOG_TRIES - BACKLOG, G.backlog_closed);
    assert_int_equal(BACKLOG, G.backlog_hi);
    assert_int_equal(BACKLOG_TRIES - BACKLOG, G.counters.other_dropped);
    /* the reader that did not read: the host stalled before the end, nothing was lost */
    assert_true(G.lazy_sent < LAZY_BYTES);
    assert_int_equal(LAZY_BYTES, G.lazy_got);
    assert_int_equal(0, G.lazy_bad);
    assert_int_equal(LAZY_BYTES, G.lazy_eof_bytes);
    /* its own 1 MiB met a full send buffer: EFULL, then WRITABLE */
    assert_int_equal(BULK, G.lazy_echo_sent);
    assert_true(G.lazy_efull > 0);
    assert_true(G.lazy_writable > 0);
    assert_int_equal(0, G.conns_tcp_other);
}

static void test_malformed_refused_and_denied(void **state)
{
    (void)state;
    reset_globals();
    host_ports[0] = free_port(SOCK_STREAM);
    expected_ports[0] = PORT_PROBE;
    nexpected = 1;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:%d", host_ports[0], PORT_PROBE);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram prober reach=tcp,udp,net\nprogram denied "
                     "reach=udp\nprogram stopper reach=net,init\n",
                     fwd, host_probe_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    assert_int_equal(0, status);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    /* control channel: 4 malformed; listener channel: 4; then the answers to bad requests */
    int proto = 0, einval = 0, inuse = 0;
    for (int i = 0; i < G.nerrors; i++) {
        if (G.errors[i] == OS_EPROTO)
            proto++;
        else if (G.errors[i] == OS_EINVAL)
            einval++;
        else if (G.errors[i] == OS_EADDRINUSE && G.error_types[i] == 1005)
            inuse++;
        else
            fail_msg("error %d: type %u status %d", i, G.error_types[i], G.errors[i]);
    }
    assert_int_equal(8, proto);
    assert_int_equal(2, einval); /* connect to address 0, backlog 65 */
    assert_int_equal(1, inuse);  /* a second listener on port 9 */
    /* the connection channel: 4 malformed, shutdown how 2, data after shutdown */
    assert_int_equal(6, G.nconn_errors);
    for (int i = 0; i < 5; i++)
        assert_int_equal(OS_EPROTO, G.conn_errors[i]);
    assert_int_equal(tcp_msg_shutdown, G.conn_error_types[4]);
    assert_int_equal(OS_ESTATE, G.conn_errors[5]);
    assert_int_equal(tcp_msg_data, G.conn_error_types[5]);
    assert_int_equal(1, G.probe_ok); /* and the connection went on */
    /* a closed port on 10.0.2.2: refused, then the channel closed */
    assert_int_equal(OS_ECONNREFUSED, G.refused);
    assert_int_equal(1, G.refused_closed);
    /* a peer that resets: error ECONNRESET, then the channel closed */
    assert_int_equal(OS_ECONNRESET, G.reset_error);
    assert_int_equal(1, atomic_load(&G.reset_closed));
    /* udp: 4 malformed and a sendto to address 0 */
    assert_int_equal(5, G.nudp_errors);
    assert_int_equal(OS_EINVAL, G.udp_errors[4]);
    assert_int_equal(udp_msg_sendto, G.udp_error_types[4]);
    assert_int_equal(0x0a000202, G.resolved);
    assert_int_equal(OS_EINVAL, G.net_failed[2]); /* resolve "" */
    assert_int_equal(OS_EINVAL, G.net_failed[4]); /* ping of 1401 bytes */
    assert_int_equal(OS_EINVAL, G.net_failed[5]); /* ping of address 0 */
    /* slirp answers pings to its own address */
    if (G.net_failed[3] != 0)
        fail_msg("ping 10.0.2.2: %s", os_strerror(G.net_failed[3]));
    assert_int_equal(3, G.pong.req);
    assert_int_equal(0x0a000202, G.pong.addr);
    assert_int_equal(42, G.pong.seq);
    assert_int_equal(56, G.pong.size);
    assert_true(G.pong.ttl > 0);
    assert_true(G.pong.rtt_ns > 0);
    /* without reach=tcp */
    assert_int_equal(OS_EACCES, G.denied);
    assert_non_null(strstr(console, "denied: denied (task"));
    assert_non_null(strstr(console, "may not reach tcp"));
}

/* docs/networking.md's example program greets a host socket and closes. */
/*
 * Datagrams to the socket nobody reads until the server has dropped some for its full queue:
 * DGRAMS at once, then bursts of DGRAM_BURST with a pause (a busy machine may lose a burst in
 * slirp or the kernel's device queue before the server sees it, which proves nothing); then
 * wait until its client reads again.
 */
static void *host_udp_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)host_ports[0]),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        for (int i = 0; i < DGRAMS_MAX && !atomic_load(&U.released); i++) {
            sendto(s, "d", 1, 0, (struct sockaddr *)&a, sizeof a);
            atomic_fetch_add(&U.sent, 1);
            if (i >= DGRAMS && i % DGRAM_BURST == 0)
                usleep(5000);
        }
        close(s);
        uint64_t end = now_ms() + GUARD_MS;
        while ((!atomic_load(&U.released) || atomic_load(&U.got) < OS_CHAN_QUEUE_MAX) &&
               now_ms() < end)
            usleep(1000);
        if (!atomic_load(&U.released))
            host_failed("udp: no datagram was dropped, or the queue was not read");
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

/* the host only waits for selfcon's connection to end; the stopper then checks the pcbs */
static void *host_idle_main(void *arg)
{
    (void)arg;
    uint64_t end = now_ms() + GUARD_MS;
    while (wait_ready() && !atomic_load(&S.closed) && now_ms() < end)
        usleep(1000);
    atomic_store(&G.host_done, 1);
    return NULL;
}

static void *host_greeter_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        int s = tcp_to(host_ports[0]);
        char b[64];
        long got = 0;
        uint64_t end = now_ms() + GUARD_MS;
        while (s >= 0 && now_ms() < end && got < (long)sizeof b) {
            struct pollfd pf = {s, POLLIN, 0};
            if (poll(&pf, 1, 1000) != 1)
                continue;
            ssize_t r = recv(s, b + got, sizeof b - (size_t)got, 0);
            if (r <= 0) {
                G.bulk_eof = r == 0;
                break;
            }
            got += r;
        }
        G.probe_ok = got == 18 && memcmp(b, "hello from orrery\n", 18) == 0;
        if (s >= 0)
            close(s);
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

static void test_doc_greeter(void **state)
{
    (void)state;
    reset_globals();
    host_ports[0] = free_port(SOCK_STREAM);
    expected_ports[0] = 13;
    nexpected = 1;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:13", host_ports[0]);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram greeter reach=tcp\nprogram stopper reach=net,init\n",
                     fwd, host_greeter_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(1, G.probe_ok);
    assert_int_equal(1, G.bulk_eof); /* and the close came after the line */
    assert_non_null(strstr(console, "[greeter] listening on tcp port 13"));
}

/* Connect to our own address: established (addresses and ports), data both ways, both FINs. */
static void test_connect_to_ourselves(void **state)
{
    (void)state;
    reset_globals();
    memset(&S, 0, sizeof S);
    expected_ports[0] = PORT_SELF;
    nexpected = 1;
    hl_run_stats_t stats;
    int status =
        run("program tcpip\nprogram selfcon reach=net,tcp\nprogram stopper reach=net,init\n",
            "user", host_idle_main, &stats, console, sizeof console);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(0x0a00020f, S.est.laddr);
    assert_int_equal(0x0a00020f, S.est.raddr);
    assert_int_equal(PORT_SELF, S.est.rport);
    assert_true(S.est.lport != 0 && S.est.lport != PORT_SELF);
    assert_int_equal(1, S.ping);
    assert_int_equal(1, S.pong);
    assert_int_equal(4, S.eof_bytes);
    assert_int_equal(
        1, atomic_load(&S.closed)); /* after both FINs the server closed the client's channel */
    assert_int_equal(0, G.conns_tcp_other);
}

/* A UDP socket whose client does not read: 128 datagrams wait, the rest are dropped and
 * counted; nothing else is lost (frames the kernel had no room for are counted too). */
static void test_udp_full_queue_drops_and_counts(void **state)
{
    (void)state;
    reset_globals();
    memset(&U, 0, sizeof U);
    host_ports[0] = free_port(SOCK_DGRAM);
    nexpected = 0; /* no TCP listener to wait for: the stopper waits for the address only */
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=udp:127.0.0.1:%d-:%d", host_ports[0], PORT_SINK);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram udpsink reach=udp,net\nprogram stopper "
                     "reach=net,init\n",
                     fwd, host_udp_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s (got %d, rx %lu dropped %lu other %lu, kernel dropped %lu)\n%s",
                 G.host_fail, atomic_load(&U.got), (unsigned long)G.counters.rx_frames,
                 (unsigned long)G.counters.rx_dropped, (unsigned long)G.counters.other_dropped,
                 (unsigned long)stats.net_rx_dropped, console);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    /* the queue filled (128 waited), the rest was dropped and counted, nothing came twice;
     * datagrams may also be lost before the server (slirp, the kernel's device queue) */
    assert_true(atomic_load(&U.got) >= OS_CHAN_QUEUE_MAX);
    assert_true(G.counters.other_dropped > 0);
    assert_true(atomic_load(&U.got) + G.counters.other_dropped <= (uint64_t)atomic_load(&U.sent));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcpecho_bulk_half_close_udp_and_many),
        cmocka_unit_test(test_slow_reader_and_unaccepted_listener),
        cmocka_unit_test(test_malformed_refused_and_denied),
        cmocka_unit_test(test_doc_greeter),
        cmocka_unit_test(test_connect_to_ourselves),
        cmocka_unit_test(test_udp_full_queue_drops_and_counts),
    };
    if (getenv("TEST_TCP_ONLY"))
        cmocka_set_test_filter(getenv("TEST_TCP_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
