/* test_tcpecho_sim.c — the echo service (tcpecho) on node 1 of two simulated nodes, as a client
 * on node 0 sees it: a TCP connection to port 7 echoes, then UDP datagrams to port 7 come back
 * byte for byte from port 7; and what tcpecho says and does when the manifest gives it only tcp,
 * or neither tcp nor udp, or when another task holds port 7 (docs/net.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <iface/init_client.h>
#include <iface/tcp.h>
#include <iface/udp.h>
#include <image.h>

#include "sim_pair.h"

enum { REQ_TCP = 1, REQ_UDP = 2, REQ_CONNECT = 3, REQ_BIND = 4, DGRAMS = 3 };

static const char *const dgram[DGRAMS] = {"one", "a second datagram", "3"};

static struct {
    bool tcp_echoed;
    int dgrams_back; /* datagrams echoed in order, each the one sent, from 10.0.0.2:7 */
    bool wrong;
} R;

typedef struct client {
    os_handle_t tcp, udp, conn, sock;
    int sent;
} client_t;

static void client_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    c->tcp = c->udp = c->conn = c->sock = OS_HANDLE_NONE;
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
    init_connect_iface(ctx, REQ_UDP, &udp_iface);
}

static void send_dgram(os_ctx_t *ctx, client_t *c)
{
    static udp_sendto_t s;
    s.addr = 0x0a000002;
    s.port = 7;
    s.data_len = (uint32_t)strlen(dgram[c->sent]);
    memcpy(s.data, dgram[c->sent], s.data_len);
    if (udp_sendto_send(ctx, c->sock, &s) != 0)
        R.wrong = true;
    c->sent++;
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    static union {
        init_connected_t ic;
        tcp_opened_t op;
        tcp_data_t d;
        udp_bound_t b;
        udp_recvfrom_t r;
    } m;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.ic) != 0) {
            R.wrong = true;
        } else if (m.ic.req == REQ_TCP) {
            c->tcp = m.ic.chan;
            tcp_connect_send(ctx, c->tcp, &(tcp_connect_t){REQ_CONNECT, 0x0a000002, 7});
        } else {
            c->udp = m.ic.chan;
            udp_bind_send(ctx, c->udp, &(udp_bind_t){REQ_BIND, 0, 0});
        }
    } else if (ev->handle == c->tcp) {
        if (tcp_opened_decode(ev, &m.op) == 0)
            c->conn = m.op.chan;
        else
            R.wrong = true;
    } else if (ev->handle == c->udp) {
        if (udp_bound_decode(ev, &m.b) == 0)
            c->sock = m.b.chan;
        else
            R.wrong = true;
    } else if (ev->handle == c->conn) {
        if (ev->type == tcp_msg_established) {
            m.d.data_len = 4;
            memcpy(m.d.data, "ping", 4);
            tcp_data_send(ctx, c->conn, &m.d);
        } else if (tcp_data_decode(ev, &m.d) == 0) {
            R.tcp_echoed = m.d.data_len == 4 && memcmp(m.d.data, "ping", 4) == 0;
            /* the path is known both ways now: the datagrams, one at a time */
            if (c->sock != OS_HANDLE_NONE && c->sent == 0)
                send_dgram(ctx, c);
        }
    } else if (ev->handle == c->sock) {
        if (udp_recvfrom_decode(ev, &m.r) != 0 || m.r.addr != 0x0a000002 || m.r.port != 7 ||
            c->sent == 0 || m.r.data_len != strlen(dgram[c->sent - 1]) ||
            memcmp(m.r.data, dgram[c->sent - 1], m.r.data_len) != 0) {
            R.wrong = true;
            return;
        }
        R.dgrams_back++;
        if (c->sent < DGRAMS)
            send_dgram(ctx, c);
    }
}

static const os_program_t client = {"client", sizeof(client_t), client_start, client_event};

/* hog: takes tcp and udp port 7 (started before tcpecho, its bind comes first); holds them. */
typedef struct hog {
    os_handle_t tcp, udp, listener, sock;
} hog_t;

static void hog_start(os_ctx_t *ctx)
{
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
    init_connect_iface(ctx, REQ_UDP, &udp_iface);
}

static void hog_event(os_ctx_t *ctx, const os_event_t *ev)
{
    hog_t *h = os_state(ctx);
    static union {
        init_connected_t ic;
        tcp_listening_t l;
        udp_bound_t b;
    } m;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx) && init_connected_decode(ev, &m.ic) == 0) {
        if (m.ic.req == REQ_TCP) {
            h->tcp = m.ic.chan;
            tcp_listen_send(ctx, h->tcp, &(tcp_listen_t){REQ_TCP, 0, 7, 1});
        } else {
            h->udp = m.ic.chan;
            udp_bind_send(ctx, h->udp, &(udp_bind_t){REQ_UDP, 0, 7});
        }
    } else if (tcp_listening_decode(ev, &m.l) == 0) {
        h->listener = m.l.chan;
        os_log(ctx, "has tcp port 7");
    } else if (udp_bound_decode(ev, &m.b) == 0) {
        h->sock = m.b.chan;
        os_log(ctx, "has udp port 7");
    }
}

static const os_program_t hog = {"hog", sizeof(hog_t), hog_start, hog_event};

static const os_program_t *const image[] = {&orrery_init, &orrery_tcpip, &orrery_tcpecho, &client,
                                            &hog, NULL};

static char out1[4096];

/* Node 0: the client; node 1: tcpecho with manifest line `echo_line`. Runs 3 s of virtual
 * time (the exchange takes milliseconds); node 1's console into out1. */
static void run(const char *echo_line)
{
    static const char m0[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program client reach=tcp,udp\n";
    char m1[256];
    snprintf(m1, sizeof m1, "program tcpip arg=addr=10.0.0.2/24\n%s\n", echo_line);
    memset(&R, 0, sizeof R);
    assert_int_equal(0, sim_pair_boot(image, m0, 1, m1, 2, 2000, 0, 0, 0, 0));
    while (sim_now() < 3000000000ull && sim_step())
        ;
    snprintf(out1, sizeof out1, "%s", sim_node_console_output(1, NULL));
    sim_faults_remove();
    assert_int_equal(0, sim_teardown());
}

static void test_tcp_and_udp_echo(void **state)
{
    (void)state;
    run("program tcpecho reach=tcp,udp");
    assert_non_null(strstr(out1, "[tcpecho] tcp port 7\n"));
    assert_non_null(strstr(out1, "[tcpecho] udp port 7\n"));
    assert_true(R.tcp_echoed);
    assert_false(R.wrong);
    assert_int_equal(DGRAMS, R.dgrams_back);
}

static void test_tcp_only_says_why_udp_is_missing_and_serves_tcp(void **state)
{
    (void)state;
    run("program tcpecho reach=tcp");
    assert_non_null(strstr(out1, "[tcpecho] connect udp: "));
    assert_null(strstr(out1, "[tcpecho] connect tcp: "));
    assert_null(strstr(out1, "exiting"));
    assert_non_null(strstr(out1, "[tcpecho] tcp port 7\n"));
    assert_true(R.tcp_echoed);
}

static void test_neither_tcp_nor_udp_exits(void **state)
{
    (void)state;
    run("program tcpecho reach=init");
    assert_non_null(strstr(out1, "[tcpecho] connect tcp: "));
    assert_non_null(strstr(out1, "[tcpecho] connect udp: "));
    assert_non_null(strstr(out1, "[tcpecho] neither tcp nor udp; exiting\n"));
    assert_false(R.tcp_echoed);
}

static void test_udp_only_and_its_port_taken_it_exits(void **state)
{
    (void)state;
    run("program hog reach=tcp,udp\nprogram tcpecho reach=udp");
    assert_non_null(strstr(out1, "[hog] has udp port 7\n")); /* hog was first, as started */
    assert_non_null(strstr(out1, "[tcpecho] connect tcp: "));
    assert_non_null(strstr(out1, "[tcpecho] bind udp port 7: "));
    assert_non_null(strstr(out1, "[tcpecho] neither tcp nor udp; exiting\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_and_udp_echo),
        cmocka_unit_test(test_tcp_only_says_why_udp_is_missing_and_serves_tcp),
        cmocka_unit_test(test_neither_tcp_nor_udp_exits),
        cmocka_unit_test(test_udp_only_and_its_port_taken_it_exits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
