/* record_tcpip.c — records the golden tcpip trace: two simulated nodes, node 0's tcpip serves TCP,
 * UDP and ping. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iface/init_client.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <iface/udp.h>
#include <image.h>
#include <sim/sim.h>
#include <trace/recorder.h>

/*
 * usage: record_tcpip OUT.db   (tests/traces/record.sh runs it; docs/replay.md)
 *
 * Node 0 (10.0.0.2) runs tcpip and tcpecho (TCP and UDP echo on port 7) and is recorded.
 * Node 1 (10.0.0.1) runs tcpip and `client`: it pings 10.0.0.2, sends one UDP datagram to
 * port 7 and reads its echo, then connects to port 7, sends CLIENT_BYTES in several
 * messages, half-closes, and reads the echo to the end of the stream. The run is
 * deterministic (seed 1, two nodes on the simulator's switch without faults), so the same
 * build records the same trace. Exit 0 when the client saw every byte back, 1 otherwise.
 */
enum {
    CLIENT_BYTES = 6000,
    REQ_NET = 1,
    REQ_TCP,
    REQ_UDP,
    REQ_PING = 10,
    REQ_BIND,
    REQ_CONNECT,
};

static struct {
    bool pong, udp_echo, eof, failed;
    uint64_t sent, received;
    uint64_t done_ns;
} R;

typedef struct client {
    os_handle_t net, tcp, udp, sock, conn;
    bool shut;
} client_t;

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 31 + (i >> 8));
}

static void fail(const char *what)
{
    fprintf(stderr, "record_tcpip: %s\n", what);
    R.failed = true;
}

#define FAIL(what)                                                                                 \
    do {                                                                                           \
        fail(what);                                                                                \
        return;                                                                                    \
    } while (0)

static void pump(os_ctx_t *ctx, client_t *c)
{
    tcp_data_t m;
    while (R.sent < CLIENT_BYTES) {
        uint64_t n = CLIENT_BYTES - R.sent < 3000 ? CLIENT_BYTES - R.sent : 3000;
        for (uint64_t i = 0; i < n; i++)
            m.data[i] = pattern(R.sent + i);
        m.data_len = (uint32_t)n;
        if (tcp_data_send(ctx, c->conn, &m) != 0)
            return; /* OS_EFULL: WRITABLE follows */
        R.sent += n;
    }
    if (!c->shut && tcp_shutdown_send(ctx, c->conn, &(tcp_shutdown_t){1}) == 0)
        c->shut = true;
}

static void client_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    c->net = c->tcp = c->udp = c->sock = c->conn = OS_HANDLE_NONE;
    init_connect_iface(ctx, REQ_NET, &net_iface);
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
    init_connect_iface(ctx, REQ_UDP, &udp_iface);
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    union {
        init_connected_t ic;
        net_pong_t pong;
        udp_bound_t bound;
        udp_recvfrom_t rf;
        tcp_opened_t op;
        tcp_data_t d;
    } m;
    if (ev->kind == OS_EV_MESSAGE && ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.ic) != 0)
            FAIL("init refused a connect");
        os_handle_t *slot = m.ic.req == REQ_NET ? &c->net : m.ic.req == REQ_TCP ? &c->tcp : &c->udp;
        *slot = m.ic.chan;
        if (c->net != OS_HANDLE_NONE && c->tcp != OS_HANDLE_NONE &&
            c->udp != OS_HANDLE_NONE) /* all three: the ping goes first */
            net_ping_send(ctx, c->net, &(net_ping_t){REQ_PING, 0x0a000002, 1, 56, 1000});
        return;
    }
    if (ev->kind != OS_EV_MESSAGE && ev->kind != OS_EV_WRITABLE)
        return;
    if (ev->handle == c->net) {
        if (net_pong_decode(ev, &m.pong) != 0)
            FAIL("the ping got no pong");
        R.pong = true;
        udp_bind_send(ctx, c->udp, &(udp_bind_t){REQ_BIND, 0, 0});
    } else if (ev->handle == c->udp) {
        if (udp_bound_decode(ev, &m.bound) != 0)
            FAIL("udp bind failed");
        c->sock = m.bound.chan;
        udp_sendto_t s = {.addr = 0x0a000002, .port = 7, .data_len = 11};
        memcpy(s.data, "hello, udp!", 11);
        udp_sendto_send(ctx, c->sock, &s);
    } else if (ev->handle == c->sock) {
        if (udp_recvfrom_decode(ev, &m.rf) != 0 || m.rf.data_len != 11 ||
            memcmp(m.rf.data, "hello, udp!", 11) != 0)
            FAIL("the datagram did not come back");
        R.udp_echo = true;
        tcp_connect_send(ctx, c->tcp, &(tcp_connect_t){REQ_CONNECT, 0x0a000002, 7});
    } else if (ev->handle == c->tcp) {
        if (tcp_opened_decode(ev, &m.op) != 0)
            FAIL("tcp connect refused");
        c->conn = m.op.chan;
    } else if (ev->handle == c->conn) {
        if (ev->kind == OS_EV_WRITABLE || ev->type == tcp_msg_established) {
            pump(ctx, c);
        } else if (tcp_data_decode(ev, &m.d) == 0) {
            for (uint32_t i = 0; i < m.d.data_len; i++)
                if (m.d.data[i] != pattern(R.received + i))
                    FAIL("the echo differs");
            R.received += m.d.data_len;
        } else if (ev->type == tcp_msg_eof) {
            R.eof = true;
            R.done_ns = os_clock_now(ctx);
            os_handle_close(ctx, c->conn); /* the connection closes after our FIN */
            c->conn = OS_HANDLE_NONE;
        } else {
            fail("the connection failed");
        }
    }
}

static const os_program_t client = {"client", sizeof(client_t), client_start, client_event};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: record_tcpip OUT.db\n");
        return 2;
    }
    static const char m0[] = "program tcpip arg=addr=10.0.0.2/24,gw=10.0.0.1\n"
                             "program tcpecho reach=tcp,udp\n";
    static const char m1[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program client reach=net,tcp,udp\n";
    static const os_program_t *image[64];
    size_t n = 0;
    for (const os_program_t *const *p = orrery_programs; *p && n < 62; p++)
        image[n++] = *p;
    image[n++] = &client;
    image[n] = NULL;

    char err[256];
    trace_recorder *rec;
    trace_run_info info = {.platform = "sim",
                           .seed = 1,
                           .manifest = m0,
                           .workers = 1,
                           .command = "tests/traces/record_tcpip (node 0 of two)"};
    if (trace_recorder_open(argv[1], &info, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "record_tcpip: %s\n", err);
        return 2;
    }
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof cfg);
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = image;
        cfg[i].seed = 1 + (uint64_t)i;
        cfg[i].net = true;
        cfg[i].init_arg = i == 0 ? m0 : m1;
        cfg[i].init_arg_len = strlen(i == 0 ? m0 : m1);
    }
    cfg[0].trace = trace_recorder_sink(rec);
    if (sim_boot_nodes(cfg, 2) != 0) {
        fprintf(stderr, "record_tcpip: the two nodes did not boot\n");
        return 1;
    }
    /* until the client has it all back, then 200 ms more for the last FIN and ACKs */
    for (uint64_t steps = 0; steps < 10000000 && !R.failed; steps++) {
        if (R.eof && sim_now() > R.done_ns + 200000000ull)
            break;
        if (!sim_step())
            break;
    }
    fputs(sim_node_console_output(0, NULL), stderr);
    fputs(sim_node_console_output(1, NULL), stderr);
    long leaks = sim_teardown();
    int rc = trace_recorder_close(rec, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "record_tcpip: %s\n", err);
    bool ok = R.pong && R.udp_echo && R.eof && R.received == CLIENT_BYTES && !R.failed &&
              leaks == 0 && rc == 0;
    printf("record_tcpip: ping %s, udp echo %s, tcp %llu bytes out and %llu back, %s\n",
           R.pong ? "answered" : "lost", R.udp_echo ? "back" : "lost", (unsigned long long)R.sent,
           (unsigned long long)R.received, ok ? "recorded" : "FAILED");
    return ok ? 0 : 1;
}
