/* bench_net_sim.c — the simulator's row of `orrery bench net`: two nodes in this process, a
 * measuring client on one and the real tcpecho on the other, in wall and virtual time. */
#include "bench_net.h"

#include <stdlib.h>
#include <string.h>

#include <iface/init_client.h>
#include <iface/tcp.h>
#include <image.h>
#include <sim/net.h>
#include <sim/sim.h>

enum { REQ_CONNECT = 1, REQ_SHUTDOWN = 9 };

static struct {
    uint64_t count, warm, bytes;
    uint64_t *virt, *wall; /* per timed round trip, ns */
    uint64_t bulk_virt_ns, bulk_wall_ns;
    int error; /* the connection's error status, or a mismatch (-1) */
    bool done;
} S;

enum { PH_CONNECT, PH_RTT, PH_BULK };

typedef struct sclient {
    os_handle_t ctl, conn;
    int phase;
    uint64_t seq, got; /* round trips: which one, and bytes of its echo back */
    uint64_t t0_virt, t0_wall;
    uint64_t sent, received; /* bulk */
} sclient_t;

static void sim_finish(os_ctx_t *ctx, int status)
{
    init_shutdown_t s = {REQ_SHUTDOWN, status};
    init_shutdown_send(ctx, init_channel(ctx), &s);
}

static void sim_ping(os_ctx_t *ctx, sclient_t *c)
{
    tcp_data_t m;
    for (int i = 0; i < MSG_BYTES; i++)
        m.data[i] = bench_net_pattern(c->seq * MSG_BYTES + (uint64_t)i);
    m.data_len = MSG_BYTES;
    c->got = 0;
    c->t0_virt = os_clock_now(ctx);
    c->t0_wall = bench_net_now_ns();
    if (tcp_data_send(ctx, c->conn, &m) != 0) {
        S.error = -2;
        sim_finish(ctx, 3);
    }
}

static void sim_pump(os_ctx_t *ctx, sclient_t *c)
{
    static tcp_data_t m;
    while (c->sent < S.bytes) {
        uint64_t n = S.bytes - c->sent < TCP_DATA_MAX ? S.bytes - c->sent : TCP_DATA_MAX;
        for (uint64_t i = 0; i < n; i++)
            m.data[i] = bench_net_pattern(c->sent + i);
        m.data_len = (uint32_t)n;
        int rc = tcp_data_send(ctx, c->conn, &m);
        if (rc == OS_EFULL)
            return; /* OS_EV_WRITABLE follows */
        if (rc != 0) {
            S.error = rc;
            sim_finish(ctx, 3);
            return;
        }
        c->sent += n;
    }
}

static void sim_data(os_ctx_t *ctx, sclient_t *c, const tcp_data_t *d)
{
    if (c->phase == PH_RTT) {
        for (uint32_t i = 0; i < d->data_len; i++)
            if (d->data[i] != bench_net_pattern(c->seq * MSG_BYTES + c->got + i))
                S.error = -1;
        c->got += d->data_len;
        if (S.error) {
            sim_finish(ctx, 3);
        } else if (c->got == MSG_BYTES) {
            if (c->seq >= S.warm) {
                S.virt[c->seq - S.warm] = os_clock_now(ctx) - c->t0_virt;
                S.wall[c->seq - S.warm] = bench_net_now_ns() - c->t0_wall;
            }
            if (++c->seq < S.warm + S.count) {
                sim_ping(ctx, c);
            } else {
                c->phase = PH_BULK;
                c->t0_virt = os_clock_now(ctx);
                c->t0_wall = bench_net_now_ns();
                sim_pump(ctx, c);
            }
        }
        return;
    }
    for (uint32_t i = 0; i < d->data_len; i++)
        if (d->data[i] != bench_net_pattern(c->received + i))
            S.error = -1;
    c->received += d->data_len;
    if (S.error) {
        sim_finish(ctx, 3);
    } else if (c->received == S.bytes) {
        S.bulk_virt_ns = os_clock_now(ctx) - c->t0_virt;
        S.bulk_wall_ns = bench_net_now_ns() - c->t0_wall;
        S.done = true;
        sim_finish(ctx, 0);
    }
}

static void sclient_start(os_ctx_t *ctx)
{
    init_connect_iface(ctx, REQ_CONNECT, &tcp_iface);
}

static void sclient_event(os_ctx_t *ctx, const os_event_t *ev)
{
    sclient_t *c = os_state(ctx);
    union {
        init_connected_t conn;
        tcp_opened_t o;
        tcp_data_t d;
        tcp_error_t err;
        tcp_established_t est;
        tcp_eof_t eof;
    } m;
    if (ev->kind == OS_EV_MESSAGE && ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.conn) == 0) {
            c->ctl = m.conn.chan;
            tcp_connect_t t = {REQ_CONNECT, 0x0a000002, 7}; /* 10.0.0.2:7 */
            tcp_connect_send(ctx, c->ctl, &t);
        }
        return;
    }
    if (ev->kind == OS_EV_MESSAGE && ev->handle == c->ctl) {
        if (tcp_opened_decode(ev, &m.o) == 0) {
            c->conn = m.o.chan;
        } else {
            S.error = -3;
            sim_finish(ctx, 4);
        }
        return;
    }
    if (c->conn == OS_HANDLE_NONE || ev->handle != c->conn)
        return;
    if (ev->kind == OS_EV_WRITABLE && c->phase == PH_BULK) {
        sim_pump(ctx, c);
    } else if (ev->kind == OS_EV_MESSAGE && tcp_established_decode(ev, &m.est) == 0) {
        c->phase = PH_RTT;
        sim_ping(ctx, c);
    } else if (ev->kind == OS_EV_MESSAGE && tcp_data_decode(ev, &m.d) == 0) {
        sim_data(ctx, c, &m.d);
    } else if (ev->kind == OS_EV_MESSAGE && tcp_error_decode(ev, &m.err) == 0) {
        S.error = m.err.status;
        sim_finish(ctx, 4);
    } else if ((ev->kind == OS_EV_MESSAGE && tcp_eof_decode(ev, &m.eof) == 0) ||
               ev->kind == OS_EV_PEER_CLOSED) {
        S.error = -4;
        sim_finish(ctx, 4);
    }
}

static const os_program_t sim_client = {"netbench-client", sizeof(sclient_t), sclient_start,
                                        sclient_event};
static const os_program_t *const sim_image[] = {&orrery_init, &orrery_tcpip, &orrery_tcpecho,
                                                &sim_client, NULL};

void bench_net_run_sim(row_t *row, uint64_t count, uint64_t bytes)
{
    static const char m0[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program netbench-client reach=tcp,init\n";
    static const char m1[] = "program tcpip arg=addr=10.0.0.2/24\n"
                             "program tcpecho reach=tcp,udp\n";
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof(cfg));
    memset(&S, 0, sizeof(S));
    S.count = count;
    S.warm = count / 10 < WARMUP_MAX ? count / 10 : WARMUP_MAX;
    S.bytes = bytes;
    S.virt = calloc(count, sizeof(uint64_t));
    S.wall = calloc(count, sizeof(uint64_t));
    row->f = row->virt = no_figures;
    if (!S.virt || !S.wall) {
        bench_net_say(row->why, "out of memory");
        row->state = ST_FAILED;
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = sim_image;
        cfg[i].seed = 1 + (uint64_t)i;
        cfg[i].net = true;
        cfg[i].event_cost_max_ns = 2000;
        cfg[i].init_arg = i == 0 ? m0 : m1;
        cfg[i].init_arg_len = strlen(i == 0 ? m0 : m1);
    }
    uint64_t t0 = bench_net_now_ns();
    int rc = sim_boot_nodes(cfg, 2);
    if (rc == OS_ENOTSUP) {
        bench_net_say(row->why,
                      "this build has no per-node state section (several simulated nodes)");
        row->state = ST_SKIPPED;
        goto out;
    }
    if (rc != 0) {
        bench_net_say(row->why, "booting two simulated nodes: %s", os_strerror(rc));
        row->state = ST_FAILED;
        goto out;
    }
    sim_net_config_t nc = {0};
    sim_net_configure(&nc);
    int status = sim_run(0);
    uint64_t end_virt = sim_now();
    row->wall_s = (double)(bench_net_now_ns() - t0) / 1e9;
    row->virt_s = (double)end_virt / 1e9;
    if (status != 0 || !S.done) {
        const char *out1 = sim_node_console_output(1, NULL);
        bench_net_say(row->why,
                      "the simulated run ended with status %d, connection error %d (%s)%s%.200s",
                      status, S.error,
                      S.error < -4 || S.error > 0 ? os_strerror(S.error)
                                                  : "mismatch, eof "
                                                    "or refused",
                      out1 && out1[0] ? "; node 1: " : "", out1 ? out1 : "");
        row->state = ST_FAILED;
    } else {
        bench_net_percentiles(S.virt, count, &row->virt);
        bench_net_percentiles(S.wall, count, &row->f);
        row->virt.bulk_mib_s = bench_net_mib_s(bytes, S.bulk_virt_ns);
        row->f.bulk_mib_s = bench_net_mib_s(bytes, S.bulk_wall_ns);
        row->state = ST_MEASURED;
    }
    sim_teardown();
out:
    free(S.virt);
    free(S.wall);
    S.virt = S.wall = NULL;
}
