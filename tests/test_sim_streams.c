/* test_sim_streams.c — the cross-node TCP stream checker: synthetic records of two nodes (a
 * changed byte, a lost segment, an extra byte, a wrong eof, stalls after and before the heal,
 * an error, a node down, reused ports, a host peer), then real two-node runs through tcpecho
 * on a lossy, reordering network: clean, across a partition that heals, to a reader that never
 * reads (a stall), and with one delivered byte corrupted on its way into the checker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <iface/init_client.h>
#include <iface/tcp.h>
#include <image.h>
#include <sim/faults.h>
#include <sim/net.h>
#include <sim/sim.h>
#include <sim/streams.h>

#define SEC 1000000000ull
#define BOUND (10 * SEC)

enum {
    A_CLIENT = 0x0a000001, /* 10.0.0.1, node 0 */
    A_SERVER = 0x0a000002, /* 10.0.0.2, node 1 */
    TCPIP = 2,             /* the tcpip task's id on both nodes */
    APP = 3,               /* the application's */
};

/* Byte i of a stream: not periodic at any message size, so a lost segment shows. */
static uint8_t pattern(uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    return (uint8_t)(x >> 56 ^ x >> 29 ^ i);
}

/* ---- synthetic records ------------------------------------------------------------------ */

static sim_streams_t *S;
static uint64_t T; /* the records' virtual time */
static uint64_t seq[2];

static void rec(uint32_t node, hal_trace_rec_t r)
{
    r.seq = ++seq[node];
    r.time_ns = T;
    sim_streams_record(S, node, &r);
}

/* A tcp message of `number` from task on endpoint chan (SEND) or to it (DELIVER). */
static void msg(uint32_t node, uint32_t kind, uint32_t task, uint32_t chan, uint32_t number,
                const void *m)
{
    uint8_t buf[OS_MSG_MAX_DATA];
    size_t len = 0, nh = 0;
    os_handle_t hs[OS_MSG_MAX_HANDLES];
    assert_int_equal(
        0, iface_encode(iface_msg(&tcp_iface, number), m, buf, sizeof buf, &len, hs, &nh));
    rec(node, (hal_trace_rec_t){.kind = kind,
                                .task = task,
                                .chan = chan,
                                .type = number,
                                .len = (uint32_t)len,
                                .data = len ? buf : NULL,
                                .nhandles = (uint32_t)nh,
                                .iface = iface_id(&tcp_iface)});
}

/* One connection's endpoints: on each node tcpip's (srv) and the application's (app). */
typedef struct conn {
    uint32_t csrv, capp; /* node 0, the connecting side */
    uint32_t ssrv, sapp; /* node 1, the accepting side */
    uint16_t cport, sport;
    uint64_t wrote[2], read[2]; /* [0]: client -> server, [1]: server -> client */
} conn_t;

static uint32_t next_id[2]; /* object ids, per node (a rebooted node starts again) */

/* tcpip creates the channel pair and hands the client its end in `number`'s message. */
static void new_end(uint32_t node, uint32_t *srv, uint32_t *app, uint32_t number, const void *m)
{
    *srv = next_id[node]++;
    *app = next_id[node]++;
    rec(node,
        (hal_trace_rec_t){.kind = HAL_TR_CHAN_CREATE, .task = TCPIP, .chan = *srv, .peer = *app});
    msg(node, HAL_TR_SEND, TCPIP, 7, number, m); /* on the control or listener channel */
    rec(node, (hal_trace_rec_t){
                  .kind = HAL_TR_HANDLE, .task = APP, .chan = *app, .type = HAL_TRACE_OBJ_CHAN});
}

/* Connect node 0 (10.0.0.1:cport) to node 1 (10.0.0.2:sport); accepted unless host_peer. */
static void connect_ends(conn_t *c, uint16_t cport, uint16_t sport, bool host_peer)
{
    memset(c, 0, sizeof *c);
    c->cport = cport;
    c->sport = sport;
    tcp_opened_t o = {.req = 1, .port = cport, .chan = 1};
    new_end(0, &c->csrv, &c->capp, tcp_msg_opened, &o);
    tcp_established_t e = {A_CLIENT, cport, A_SERVER, sport};
    msg(0, HAL_TR_SEND, TCPIP, c->csrv, tcp_msg_established, &e);
    if (host_peer)
        return;
    tcp_accepted_t a = {A_CLIENT, cport, sport, 1};
    new_end(1, &c->ssrv, &c->sapp, tcp_msg_accepted, &a);
}

/* Direction d's writer writes n bytes of the pattern. */
static void write_bytes(conn_t *c, int d, size_t n)
{
    tcp_data_t m;
    for (size_t i = 0; i < n; i++)
        m.data[i] = pattern(c->wrote[d] + i);
    m.data_len = (uint32_t)n;
    msg(d ? 1 : 0, HAL_TR_SEND, APP, d ? c->sapp : c->capp, tcp_msg_data, &m);
    c->wrote[d] += n;
}

/* Direction d's reader receives n bytes of the pattern, from offset `at`, with byte `flip`
 * (relative; SIZE_MAX: none) changed. */
static void deliver_at(conn_t *c, int d, uint64_t at, size_t n, size_t flip)
{
    tcp_data_t m;
    for (size_t i = 0; i < n; i++)
        m.data[i] = (uint8_t)(pattern(at + i) ^ (i == flip ? 0x20 : 0));
    m.data_len = (uint32_t)n;
    msg(d ? 0 : 1, HAL_TR_DELIVER, APP, d ? c->capp : c->sapp, tcp_msg_data, &m);
    c->read[d] = at + n;
}

static void deliver(conn_t *c, int d, size_t n)
{
    deliver_at(c, d, c->read[d], n, SIZE_MAX);
}

static void shutdown_end(conn_t *c, int d)
{
    tcp_shutdown_t m = {1};
    msg(d ? 1 : 0, HAL_TR_SEND, APP, d ? c->sapp : c->capp, tcp_msg_shutdown, &m);
}

static void eof_at(conn_t *c, int d, uint64_t bytes)
{
    tcp_eof_t m = {bytes};
    msg(d ? 0 : 1, HAL_TR_DELIVER, APP, d ? c->capp : c->sapp, tcp_msg_eof, &m);
}

static void close_app(conn_t *c, int node)
{
    rec((uint32_t)node, (hal_trace_rec_t){.kind = HAL_TR_CLOSE,
                                          .task = APP,
                                          .chan = node ? c->sapp : c->capp,
                                          .type = HAL_TRACE_OBJ_CHAN,
                                          .iface = iface_id(&tcp_iface)});
}

static char err[512];

static bool check_within(uint64_t now, uint64_t heal, uint64_t bound)
{
    err[0] = 0;
    bool ok = sim_streams_check(S, now, heal, bound, err, sizeof err);
    if (!ok)
        printf("violation: %s\n", err);
    return ok;
}

static bool check(uint64_t now, uint64_t heal)
{
    return check_within(now, heal, BOUND);
}

static int setup(void **state)
{
    (void)state;
    S = sim_streams_new();
    T = SEC;
    seq[0] = seq[1] = 0;
    next_id[0] = next_id[1] = 100;
    return S ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sim_streams_free(S);
    S = NULL;
    return 0;
}

/* Both directions, chunked differently on each side, shut down, eof, closed: all checked. */
static void test_a_whole_exchange_passes(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    for (int i = 0; i < 10; i++)
        write_bytes(&c, 0, 1000);
    for (int i = 0; i < 4; i++)
        deliver(&c, 0, 2500);
    write_bytes(&c, 1, 4092);
    deliver(&c, 1, 92);
    deliver(&c, 1, 4000);
    shutdown_end(&c, 0);
    eof_at(&c, 0, 10000);
    shutdown_end(&c, 1);
    eof_at(&c, 1, 4092);
    close_app(&c, 0);
    close_app(&c, 1);
    assert_true(check(1000 * SEC, 0));
    sim_streams_stats_t st;
    sim_streams_stats(S, &st);
    assert_int_equal(1, st.connections);
    assert_int_equal(0, st.unpaired);
    assert_int_equal(14092, st.bytes);
}

static void test_a_changed_byte_is_caught(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 3000);
    deliver(&c, 0, 1000);
    deliver_at(&c, 0, 1000, 2000, 234);
    assert_false(check(2 * SEC, 0));
    assert_non_null(strstr(err, "byte 1234 delivered is"));
    assert_non_null(strstr(err, "10.0.0.1:49152 (node 0) -> 10.0.0.2:7 (node 1)"));
    /* it stays failed */
    assert_false(check(3 * SEC, 0));
}

static void test_a_lost_middle_segment_is_caught(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    for (int i = 0; i < 3; i++)
        write_bytes(&c, 0, 1460);
    deliver(&c, 0, 1460);
    deliver_at(&c, 0, 2920, 1460, SIZE_MAX); /* the second segment never came */
    assert_false(check(2 * SEC, 0));
    assert_non_null(strstr(err, "byte 1460 delivered is"));
}

static void test_an_extra_byte_is_caught(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 1, 100);
    deliver(&c, 1, 101);
    assert_false(check(2 * SEC, 0));
    assert_non_null(strstr(err, "101 bytes delivered at byte 0, only 100 written"));
    assert_non_null(strstr(err, "10.0.0.2:7 (node 1) -> 10.0.0.1:49152 (node 0)"));
}

static void test_an_eof_of_the_wrong_length_is_caught(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 1000);
    deliver(&c, 0, 1000);
    shutdown_end(&c, 0);
    eof_at(&c, 0, 999);
    assert_false(check(2 * SEC, 0));
    assert_non_null(strstr(err, "eof {999} but 1000 bytes were written"));
}

static void test_an_eof_before_everything_was_delivered_is_caught(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 1000);
    deliver(&c, 0, 500);
    shutdown_end(&c, 0);
    eof_at(&c, 0, 1000);
    assert_false(check(2 * SEC, 0));
    assert_non_null(strstr(err, "eof {1000} after 500 bytes delivered"));
}

static void test_data_after_the_shutdown_is_not_part_of_the_stream(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 1000);
    shutdown_end(&c, 0);
    write_bytes(&c, 0, 50); /* tcpip refuses it (OS_ESTATE) */
    deliver(&c, 0, 1000);
    eof_at(&c, 0, 1000);
    assert_true(check(2 * SEC, 0));
}

static void test_a_stall_after_the_heal_is_caught(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 3000);
    T = 2 * SEC;
    deliver(&c, 0, 1000);               /* progress at 2 s, then nothing */
    assert_true(check(11 * SEC, SEC));  /* 9 s since the last progress */
    assert_true(check(12 * SEC, SEC));  /* exactly the bound */
    assert_false(check(13 * SEC, SEC)); /* 11 s */
    assert_non_null(strstr(err, "stalled: bytes 1000..3000 written"));
}

static void test_a_stall_before_the_heal_is_fine(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 3000);                 /* at 1 s; a partition until 50 s */
    assert_true(check(30 * SEC, UINT64_MAX)); /* not healed for good (yet) */
    assert_true(check(30 * SEC, 50 * SEC));
    assert_true(check(60 * SEC, 50 * SEC));
    T = 55 * SEC;
    deliver(&c, 0, 3000);
    assert_true(check(500 * SEC, 50 * SEC));
    /* a shutdown whose eof never comes is a stall too */
    T = 100 * SEC;
    shutdown_end(&c, 0);
    assert_true(check(110 * SEC, 50 * SEC));
    assert_false(check(111 * SEC, 50 * SEC));
    assert_non_null(strstr(err, "the shutdown after 3000 bytes not delivered as eof"));
}

static void test_a_connection_ended_by_an_error_is_not_a_stall(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 3000);
    write_bytes(&c, 1, 3000);
    T = 3 * SEC;
    tcp_error_t e = {0, OS_ETIMEDOUT};
    msg(0, HAL_TR_SEND, TCPIP, c.csrv, tcp_msg_error, &e);
    assert_true(check(100 * SEC, 0));
}

static void test_a_reset_or_a_peer_closed_ends_it_too(void **state)
{
    (void)state;
    conn_t c, d;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 3000);
    tcp_reset_t r = {0};
    msg(1, HAL_TR_SEND, APP, c.sapp, tcp_msg_reset, &r);
    connect_ends(&d, 49153, 7, false);
    write_bytes(&d, 1, 3000);
    rec(1, (hal_trace_rec_t){.kind = HAL_TR_PEER_CLOSED,
                             .task = APP,
                             .chan = d.sapp,
                             .iface = iface_id(&tcp_iface)});
    assert_true(check(100 * SEC, 0));
}

static void test_node_down_ends_its_connections_and_ids_start_again(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 0, 3000);
    write_bytes(&c, 1, 3000);
    deliver(&c, 0, 1000);
    T = 2 * SEC;
    sim_streams_node_down(S, 0);
    assert_true(check(100 * SEC, 0));
    /* node 0 boots again: same ids, same port (its lwIP starts over); a new stream */
    next_id[0] = 100;
    T = 3 * SEC;
    conn_t d;
    connect_ends(&d, 49152, 7, false);
    write_bytes(&d, 0, 500);
    deliver(&d, 0, 500);
    assert_true(check(4 * SEC, 0));
    sim_streams_stats_t st;
    sim_streams_stats(S, &st);
    assert_int_equal(2, st.connections);
    assert_int_equal(1500, st.bytes);
    /* the new stream is compared with its own bytes, not the old one's */
    write_bytes(&d, 0, 10);
    deliver_at(&d, 0, 500, 10, 3);
    assert_false(check(5 * SEC, 0));
    assert_non_null(strstr(err, "byte 503 delivered is"));
}

static void test_the_task_holding_an_end_exits(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    write_bytes(&c, 1, 3000);
    /* the client's task exits (its handles close): what the server wrote is not a stall */
    rec(0, (hal_trace_rec_t){.kind = HAL_TR_EXIT, .task = APP, .result = -128});
    assert_true(check(100 * SEC, 0));
}

static void test_a_reused_four_tuple_is_a_new_pairing(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        conn_t c;
        connect_ends(&c, 49152, 7, false);
        write_bytes(&c, 0, 100);
        deliver(&c, 0, 100);
        shutdown_end(&c, 0);
        eof_at(&c, 0, 100);
        close_app(&c, 1);
        close_app(&c, 0);
    }
    assert_true(check(100 * SEC, 0));
    sim_streams_stats_t st;
    sim_streams_stats(S, &st);
    assert_int_equal(3, st.connections);
    assert_int_equal(300, st.bytes);
}

/* What is kept is what is in flight: the checked prefix goes, and all of it with the ends. */
static void test_only_what_is_in_flight_is_held(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 7, false);
    sim_streams_stats_t st;
    for (int i = 0; i < 1000; i++) { /* 4 MB through, at most 3 messages in flight */
        write_bytes(&c, 0, 4092);
        if (i >= 2)
            deliver(&c, 0, 4092);
        sim_streams_stats(S, &st);
        assert_true(st.held <= 3 * 4092);
    }
    assert_int_equal(2 * 4092, st.held);
    close_app(&c, 1); /* the reader is gone: nothing more to compare */
    sim_streams_stats(S, &st);
    assert_int_equal(0, st.held);
    close_app(&c, 0);
    assert_true(check(100 * SEC, 0));
    sim_streams_stats(S, &st);
    assert_int_equal(998 * 4092, st.bytes);
}

/* A connection from node 0 to itself (its own address) is paired and checked too. */
static void test_a_connection_to_itself_is_checked(void **state)
{
    (void)state;
    conn_t c;
    memset(&c, 0, sizeof c);
    tcp_opened_t o = {.req = 1, .port = 49152, .chan = 1};
    new_end(0, &c.csrv, &c.capp, tcp_msg_opened, &o);
    tcp_established_t e = {A_CLIENT, 49152, A_CLIENT, 12};
    msg(0, HAL_TR_SEND, TCPIP, c.csrv, tcp_msg_established, &e);
    tcp_accepted_t a = {A_CLIENT, 49152, 12, 1};
    new_end(0, &c.ssrv, &c.sapp, tcp_msg_accepted, &a);
    tcp_data_t m = {.data_len = 4, .data = "ping"};
    msg(0, HAL_TR_SEND, APP, c.capp, tcp_msg_data, &m);
    m.data[1] = 'o';
    msg(0, HAL_TR_DELIVER, APP, c.sapp, tcp_msg_data, &m);
    assert_false(check(2 * SEC, 0));
    assert_non_null(strstr(err, "10.0.0.1:49152 (node 0) -> 10.0.0.1:12 (node 0): byte 1 "));
    sim_streams_stats_t st;
    sim_streams_stats(S, &st);
    assert_int_equal(1, st.connections);
}

/* A connection to a host peer is checked for nothing, and holds a bounded amount. */
static void test_a_host_peer_is_not_checked(void **state)
{
    (void)state;
    conn_t c;
    connect_ends(&c, 49152, 80, true);
    for (int i = 0; i < 2000; i++)
        write_bytes(&c, 0, 4092); /* 8 MB: past what an unpaired end keeps */
    tcp_data_t m = {.data_len = 3, .data = {1, 2, 3}};
    msg(0, HAL_TR_DELIVER, APP, c.capp, tcp_msg_data, &m);
    assert_true(check(1000 * SEC, 0));
    close_app(&c, 0);
    sim_streams_stats_t st;
    sim_streams_stats(S, &st);
    assert_int_equal(0, st.connections);
    assert_int_equal(1, st.unpaired);
    assert_int_equal(0, st.bytes);
}

/* ---- real runs: node 0's source streams to tcpecho on node 1 and checks the echo ---------- */

enum { TOTAL = 256 << 10, REQ_CONNECT = 1, PORT_ECHO = 7, PORT_LAZY = 9 };
#define REAL_BOUND                                                                                 \
    (120 * SEC) /* the scenarios' default: past lwIP's longest retransmission wait                 \
                 */

static struct {
    uint64_t sent, received, mismatches;
    bool eof;
} R;

static struct {
    uint16_t port;        /* the source connects to 10.0.0.2:port (tcpecho's 7, lazy's 9) */
    uint64_t stop_ns;     /* end the run then (0: when node 0 shuts down) */
    uint64_t cut, end_ns; /* the switch's cut frames, the run's end */
} RUN = {.port = PORT_ECHO};

typedef struct source {
    os_handle_t ctl, conn;
    bool shut;
} source_t;

static void pump(os_ctx_t *ctx, source_t *s)
{
    tcp_data_t m;
    while (R.sent < TOTAL) {
        uint64_t n = TOTAL - R.sent < 3000 ? TOTAL - R.sent : 3000;
        for (uint64_t i = 0; i < n; i++)
            m.data[i] = pattern(R.sent + i);
        m.data_len = (uint32_t)n;
        if (tcp_data_send(ctx, s->conn, &m) != 0)
            return; /* OS_EFULL: OS_EV_WRITABLE follows */
        R.sent += n;
    }
    if (!s->shut) {
        tcp_shutdown_t sh = {1};
        s->shut = tcp_shutdown_send(ctx, s->conn, &sh) == 0;
    }
}

static void source_start(os_ctx_t *ctx)
{
    init_connect_iface(ctx, 1, &tcp_iface);
}

static void source_event(os_ctx_t *ctx, const os_event_t *ev)
{
    source_t *s = os_state(ctx);
    union {
        init_connected_t c;
        tcp_opened_t o;
        tcp_data_t d;
    } m;
    if (ev->kind == OS_EV_MESSAGE && ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.c) == 0) {
            s->ctl = m.c.chan;
            tcp_connect_t c = {REQ_CONNECT, A_SERVER, RUN.port};
            tcp_connect_send(ctx, s->ctl, &c);
        }
    } else if (ev->kind == OS_EV_MESSAGE && ev->handle == s->ctl) {
        if (tcp_opened_decode(ev, &m.o) == 0)
            s->conn = m.o.chan;
    } else if (s->conn == OS_HANDLE_NONE || ev->handle != s->conn) {
        return;
    } else if (ev->kind == OS_EV_WRITABLE) {
        pump(ctx, s);
    } else if (ev->type == tcp_msg_established) {
        pump(ctx, s);
    } else if (ev->type == tcp_msg_data && tcp_data_decode(ev, &m.d) == 0) {
        for (uint32_t i = 0; i < m.d.data_len; i++)
            R.mismatches += m.d.data[i] != pattern(R.received + i);
        R.received += m.d.data_len;
    } else if (ev->type == tcp_msg_eof || ev->type == tcp_msg_error) {
        R.eof = ev->type == tcp_msg_eof;
        os_handle_close(ctx, s->conn);
        init_shutdown_t sd = {9, R.eof && R.received == TOTAL ? 0 : 3};
        init_shutdown_send(ctx, init_channel(ctx), &sd);
    }
}

static const os_program_t source = {"source", sizeof(source_t), source_start, source_event};

/* lazy: listens on port 9 and holds the connection it accepts: it never reads a byte. */
typedef struct lazy {
    os_handle_t ctl, listener;
} lazy_t;

static void lazy_event(os_ctx_t *ctx, const os_event_t *ev)
{
    lazy_t *l = os_state(ctx);
    union {
        init_connected_t c;
        tcp_listening_t ok;
        tcp_accepted_t a;
    } m;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx) && init_connected_decode(ev, &m.c) == 0) {
        l->ctl = m.c.chan;
        tcp_listen_t listen = {1, 0, PORT_LAZY, 0};
        tcp_listen_send(ctx, l->ctl, &listen);
    } else if (ev->handle == l->ctl && tcp_listening_decode(ev, &m.ok) == 0) {
        l->listener = m.ok.chan;
    } else if (ev->handle == l->listener && tcp_accepted_decode(ev, &m.a) == 0) {
        os_handle_hold(ctx, m.a.chan, true);
    }
}

static const os_program_t lazy = {"lazy", sizeof(lazy_t), source_start, lazy_event};
static const os_program_t *const image[] = {&orrery_init, &orrery_tcpip, &orrery_tcpecho,
                                            &source,      &lazy,         NULL};

/* The records on their way into the checker: corrupt_at > 0 flips a byte of the
 * corrupt_at-th `data` the source received (the echo coming back). */
static struct {
    uint32_t corrupt_at, seen;
    uint32_t source; /* its task id (its SPAWN record) */
    bool corrupted;
} TAP;

static void tap_record(void *self, const hal_trace_rec_t *r)
{
    uint32_t node = (uint32_t)(uintptr_t)self;
    if (node == 0 && r->kind == HAL_TR_SPAWN && r->len == 6 && memcmp(r->data, "source", 6) == 0)
        TAP.source = r->task;
    if (node == 0 && r->task == TAP.source && r->kind == HAL_TR_DELIVER &&
        r->type == tcp_msg_data && r->iface == iface_id(&tcp_iface) &&
        ++TAP.seen == TAP.corrupt_at && r->len > 100) {
        uint8_t copy[OS_MSG_MAX_DATA];
        memcpy(copy, r->data, r->len);
        copy[100] ^= 0x01; /* payload byte 98 of that message (after the u16 length) */
        hal_trace_rec_t c = *r;
        c.data = copy;
        sim_streams_record(S, node, &c);
        TAP.corrupted = true;
        return;
    }
    sim_streams_record(S, node, r);
}

/* Boot the two nodes with the checker tapping both, run, checking as it goes. The verdict. */
static bool run_pair(uint64_t seed, uint32_t pct, uint64_t cut_from, uint64_t cut_to)
{
    static const char m0[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program source reach=tcp,init\n";
    static const char echo[] = "program tcpip arg=addr=10.0.0.2/24\n"
                               "program tcpecho reach=tcp,udp\n";
    static const char lazy1[] = "program tcpip arg=addr=10.0.0.2/24\n"
                                "program lazy reach=tcp,init\n";
    const char *m1 = RUN.port == PORT_LAZY ? lazy1 : echo;
    hal_trace_sink_t sinks[2];
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof cfg);
    memset(&R, 0, sizeof R);
    for (uint32_t i = 0; i < 2; i++) {
        if (TAP.corrupt_at)
            sinks[i] = (hal_trace_sink_t){.self = (void *)(uintptr_t)i, .record = tap_record};
        else
            sinks[i] = sim_streams_sink(S, i);
        cfg[i].programs = image;
        cfg[i].seed = seed * 2 + i;
        cfg[i].net = true;
        cfg[i].event_cost_max_ns = 2000;
        cfg[i].init_arg = i ? m1 : m0;
        cfg[i].init_arg_len = strlen(i ? m1 : m0);
        cfg[i].trace = &sinks[i];
    }
    assert_int_equal(0, sim_boot_nodes(cfg, 2));
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = SIM_FAULT_NET_LOSS | SIM_FAULT_NET_REORDER | SIM_FAULT_NET_DUP;
    f.net_loss_pct = f.net_dup_pct = f.net_reorder_pct = pct;
    assert_int_equal(0, sim_faults_install(&f));
    uint64_t heal = 0;
    if (cut_to > cut_from) {
        assert_int_equal(0, sim_net_partition(0, 1, cut_from, cut_to));
        heal = cut_to;
    }
    bool ok = true;
    uint64_t steps = 0;
    while (ok && (RUN.stop_ns == 0 || sim_now() < RUN.stop_ns) && sim_step() && steps++ < 50000000)
        if (steps % 1000 == 0)
            ok = check_within(sim_now(), heal, REAL_BOUND);
    ok = ok && check_within(sim_now(), heal, REAL_BOUND);
    int status = -1;
    sim_shutdown_status(&status);
    sim_net_stats_t ns;
    sim_net_stats(&ns);
    RUN.cut = ns.cut;
    RUN.end_ns = sim_now();
    sim_streams_stats_t st;
    sim_streams_stats(S, &st);
    printf("seed %llu: status %d at %.3f s, sent %llu received %llu, lost %llu reordered %llu "
           "dup %llu cut %llu; "
           "checker: %llu connection(s), %llu unpaired, %llu bytes\n",
           (unsigned long long)seed, status, (double)sim_now() / 1e9, (unsigned long long)R.sent,
           (unsigned long long)R.received, (unsigned long long)ns.lost,
           (unsigned long long)ns.reordered, (unsigned long long)ns.duplicated,
           (unsigned long long)ns.cut, (unsigned long long)st.connections,
           (unsigned long long)st.unpaired, (unsigned long long)st.bytes);
    sim_faults_remove();
    assert_int_equal(0, sim_teardown());
    return ok;
}

static void test_a_real_lossy_reordering_exchange_has_no_violation(void **state)
{
    (void)state;
    memset(&TAP, 0, sizeof TAP);
    for (uint64_t seed = 1; seed <= 2; seed++) {
        sim_streams_free(S);
        S = sim_streams_new();
        assert_true(run_pair(seed, 5, 0, 0));
        assert_int_equal(TOTAL, R.received);
        assert_int_equal(0, R.mismatches);
        assert_true(R.eof);
        sim_streams_stats_t st;
        sim_streams_stats(S, &st);
        assert_int_equal(1, st.connections);
        assert_int_equal(0, st.unpaired);
        assert_int_equal(2 * TOTAL, st.bytes); /* there and back */
        assert_int_equal(0, st.held);
    }
}

/* Cut apart for 20 s mid-stream, then healed: lwIP's retransmissions finish the stream. */
static void test_a_real_partition_that_heals_has_no_violation(void **state)
{
    (void)state;
    memset(&TAP, 0, sizeof TAP);
    assert_true(run_pair(4, 2, 2000000, 22000000000));
    assert_int_equal(TOTAL, R.received);
    assert_true(R.eof);
    sim_streams_stats_t st;
    sim_streams_stats(S, &st);
    assert_int_equal(1, st.connections);
    assert_int_equal(2 * TOTAL, st.bytes);
    assert_true(RUN.cut > 0 && RUN.end_ns > 22 * SEC);
}

/* A reader that never reads: the window closes, the source waits, nothing fails in the OS;
 * the checker calls it a stall once the bound has passed. */
static void test_a_real_reader_that_never_reads_is_a_stall(void **state)
{
    (void)state;
    memset(&TAP, 0, sizeof TAP);
    RUN.port = PORT_LAZY;
    RUN.stop_ns = 200 * SEC;
    bool ok = run_pair(5, 0, 0, 0);
    uint64_t stop = RUN.stop_ns;
    RUN.port = PORT_ECHO;
    RUN.stop_ns = 0;
    assert_false(ok);
    assert_non_null(strstr(err, "-> 10.0.0.2:9 (node 1): stalled: bytes 0.."));
    assert_true(R.sent > 0 && R.received == 0);
    assert_true(RUN.end_ns > REAL_BOUND && RUN.end_ns < stop); /* checked every 1000 steps */
}

static void test_a_byte_corrupted_on_its_way_into_the_checker_is_caught(void **state)
{
    (void)state;
    memset(&TAP, 0, sizeof TAP);
    TAP.corrupt_at = 20;
    assert_false(run_pair(3, 5, 0, 0));
    assert_true(TAP.corrupted);
    assert_non_null(strstr(err, "10.0.0.2:7 (node 1) -> 10.0.0.1:"));
    assert_non_null(strstr(err, " delivered is 0x"));
    assert_int_equal(0, R.mismatches); /* the OS itself delivered every byte right */
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_a_whole_exchange_passes),
        T_(test_a_changed_byte_is_caught),
        T_(test_a_lost_middle_segment_is_caught),
        T_(test_an_extra_byte_is_caught),
        T_(test_an_eof_of_the_wrong_length_is_caught),
        T_(test_an_eof_before_everything_was_delivered_is_caught),
        T_(test_data_after_the_shutdown_is_not_part_of_the_stream),
        T_(test_a_stall_after_the_heal_is_caught),
        T_(test_a_stall_before_the_heal_is_fine),
        T_(test_a_connection_ended_by_an_error_is_not_a_stall),
        T_(test_a_reset_or_a_peer_closed_ends_it_too),
        T_(test_node_down_ends_its_connections_and_ids_start_again),
        T_(test_the_task_holding_an_end_exits),
        T_(test_a_reused_four_tuple_is_a_new_pairing),
        T_(test_only_what_is_in_flight_is_held),
        T_(test_a_connection_to_itself_is_checked),
        T_(test_a_host_peer_is_not_checked),
        T_(test_a_real_lossy_reordering_exchange_has_no_violation),
        T_(test_a_real_partition_that_heals_has_no_violation),
        T_(test_a_real_reader_that_never_reads_is_a_stall),
        T_(test_a_byte_corrupted_on_its_way_into_the_checker_is_caught),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
