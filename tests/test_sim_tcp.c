/* test_sim_tcp.c — two simulated nodes, each running the tcpip server (its own lwIP), move
 * 1 MiB over TCP through the switch to the echo service (tcpecho) and back: byte-exact under loss,
 * reordering and duplication, the same on a second run, across a partition that heals, and ending
 * in an error when it does not. */
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

#include "sim_pair.h"

enum {
    TOTAL = 1 << 20, /* bytes the source sends */
    REQ_CONNECT = 1,
};

/* The pattern: byte i of the stream. Not periodic at any message size. */
static uint8_t pattern(uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    return (uint8_t)(x >> 56 ^ x >> 29 ^ i);
}

/* What the source saw, read after the run. */
static struct {
    uint64_t sent, received;
    uint64_t mismatch_at; /* UINT64_MAX: every byte matched */
    uint64_t eof_bytes;
    int error; /* the connection's error{0, status}, or 0 */
    bool established, eof, done;
    uint64_t done_ns;
} R;

/* ---- source: connects to 10.0.0.2:7, sends TOTAL bytes, half-closes, checks the echo ---- */

typedef struct source {
    os_handle_t ctl, conn;
    bool write_shut;
} source_t;

static void finish(os_ctx_t *ctx, int status)
{
    init_shutdown_t s = {9, status};
    init_shutdown_send(ctx, init_channel(ctx), &s);
}

static void pump(os_ctx_t *ctx, source_t *s)
{
    tcp_data_t m;
    while (R.sent < TOTAL) {
        uint64_t n = TOTAL - R.sent < TCP_DATA_MAX ? TOTAL - R.sent : TCP_DATA_MAX;
        for (uint64_t i = 0; i < n; i++)
            m.data[i] = pattern(R.sent + i);
        m.data_len = (uint32_t)n;
        int rc = tcp_data_send(ctx, s->conn, &m);
        if (rc == OS_EFULL)
            return; /* OS_EV_WRITABLE follows */
        assert_int_equal(0, rc);
        R.sent += n;
    }
    if (!s->write_shut) {
        tcp_shutdown_t sh = {1};
        if (tcp_shutdown_send(ctx, s->conn, &sh) == 0)
            s->write_shut = true;
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
        tcp_eof_t e;
        tcp_error_t err;
        tcp_established_t est;
    } m;
    if (ev->kind == OS_EV_MESSAGE && ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.c) == 0) {
            s->ctl = m.c.chan;
            tcp_connect_t c = {REQ_CONNECT, 0x0a000002, 7};
            assert_int_equal(0, tcp_connect_send(ctx, s->ctl, &c));
        }
        return;
    }
    if (ev->kind == OS_EV_MESSAGE && ev->handle == s->ctl) {
        assert_int_equal(0, tcp_opened_decode(ev, &m.o));
        s->conn = m.o.chan;
        return;
    }
    if (ev->handle != s->conn || s->conn == OS_HANDLE_NONE)
        return;
    if (ev->kind == OS_EV_WRITABLE) {
        pump(ctx, s);
    } else if (ev->kind == OS_EV_MESSAGE && tcp_established_decode(ev, &m.est) == 0) {
        R.established = true;
        pump(ctx, s);
    } else if (ev->kind == OS_EV_MESSAGE && tcp_data_decode(ev, &m.d) == 0) {
        for (uint32_t i = 0; i < m.d.data_len; i++)
            if (m.d.data[i] != pattern(R.received + i) && R.mismatch_at == UINT64_MAX)
                R.mismatch_at = R.received + i;
        R.received += m.d.data_len;
    } else if (ev->kind == OS_EV_MESSAGE && tcp_eof_decode(ev, &m.e) == 0) {
        R.eof = true;
        R.eof_bytes = m.e.bytes;
        R.done = R.received == TOTAL;
        R.done_ns = os_clock_now(ctx);
        finish(ctx, R.done ? 0 : 3);
    } else if (ev->kind == OS_EV_MESSAGE && tcp_error_decode(ev, &m.err) == 0) {
        R.error = m.err.status;
        finish(ctx, 4);
    }
}

static const os_program_t source = {"source", sizeof(source_t), source_start, source_event};
static const os_program_t *const image[] = {&orrery_init, &orrery_tcpip, &orrery_tcpecho, &source,
                                            NULL};

typedef struct outcome {
    int status;
    uint64_t hash, frames, end_ns;
    sim_net_stats_t net;
    long leaks;
    char out0[4096], out1[4096];
} outcome_t;

static outcome_t *run(uint64_t seed, uint32_t faults, uint32_t pct, uint64_t cut_from,
                      uint64_t cut_to)
{
    static const char m0[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program source reach=tcp,init\n";
    static const char m1[] = "program tcpip arg=addr=10.0.0.2/24\n"
                             "program tcpecho reach=tcp,udp\n";
    static outcome_t o;
    memset(&o, 0, sizeof o);
    memset(&R, 0, sizeof R);
    R.mismatch_at = UINT64_MAX;
    assert_int_equal(0, sim_pair_boot(image, m0, seed * 2, m1, seed * 2 + 1, 2000, faults, pct,
                                      cut_from, cut_to));
    o.status = sim_run(50000000);
    o.end_ns = sim_now();
    sim_net_stats(&o.net);
    snprintf(o.out0, sizeof o.out0, "%s", sim_node_console_output(0, NULL));
    snprintf(o.out1, sizeof o.out1, "%s", sim_node_console_output(1, NULL));
    sim_faults_remove();
    o.leaks = sim_teardown();
    o.hash = sim_pair_seen.hash;
    o.frames = sim_pair_seen.frames;
    return &o;
}

static void show(const char *what, const outcome_t *o)
{
    printf("%s: status %d, %llu frames, lost %llu dup %llu reordered %llu cut %llu, "
           "%.3f s virtual, sent %llu received %llu, error %d\n",
           what, o->status, (unsigned long long)o->frames, (unsigned long long)o->net.lost,
           (unsigned long long)o->net.duplicated, (unsigned long long)o->net.reordered,
           (unsigned long long)o->net.cut, (double)o->end_ns / 1e9, (unsigned long long)R.sent,
           (unsigned long long)R.received, R.error);
}

static void test_one_mib_echo_clean(void **state)
{
    (void)state;
    outcome_t *o = run(1, 0, 0, 0, 0);
    show("clean", o);
    assert_true(R.established);
    assert_int_equal(0, o->status);
    assert_int_equal(TOTAL, R.sent);
    assert_int_equal(TOTAL, R.received);
    assert_int_equal(UINT64_MAX, R.mismatch_at);
    assert_int_equal(TOTAL, R.eof_bytes);
    assert_int_equal(0, o->leaks);
}

static void test_one_mib_echo_with_loss_reorder_dup_is_exact_and_deterministic(void **state)
{
    (void)state;
    uint32_t faults = SIM_FAULT_NET_LOSS | SIM_FAULT_NET_REORDER | SIM_FAULT_NET_DUP;
    outcome_t *o = run(5, faults, 5, 0, 0);
    show("5% loss/reorder/dup", o);
    assert_int_equal(0, o->status);
    assert_true(o->net.lost > 0 && o->net.duplicated > 0 && o->net.reordered > 0);
    assert_int_equal(TOTAL, R.received);
    assert_int_equal(UINT64_MAX, R.mismatch_at);
    assert_int_equal(0, o->leaks);
    uint64_t hash = o->hash, end = o->end_ns, frames = o->frames;
    o = run(5, faults, 5, 0, 0);
    assert_int_equal(hash, o->hash);
    assert_int_equal(end, o->end_ns);
    assert_int_equal(frames, o->frames);
}

static void test_a_partition_that_heals_mid_transfer(void **state)
{
    (void)state;
    /* the clean transfer takes about 18 ms of virtual time: cut 5..1005 ms */
    outcome_t *o = run(2, 0, 0, 5000000, 1005000000);
    show("healed partition", o);
    assert_int_equal(0, o->status);
    assert_true(o->net.cut > 0);
    assert_int_equal(TOTAL, R.received);
    assert_int_equal(UINT64_MAX, R.mismatch_at);
    assert_true(o->end_ns > 1005000000);
    assert_int_equal(0, o->leaks);
}

static void test_a_partition_that_never_heals_ends_in_a_timeout(void **state)
{
    (void)state;
    outcome_t *o = run(3, 0, 0, 5000000, UINT64_MAX);
    show("lasting partition", o);
    assert_int_equal(4, o->status);
    assert_int_equal(OS_ETIMEDOUT, R.error);
    assert_true(R.received < TOTAL);
    assert_int_equal(0, o->leaks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_mib_echo_clean),
        cmocka_unit_test(test_one_mib_echo_with_loss_reorder_dup_is_exact_and_deterministic),
        cmocka_unit_test(test_a_partition_that_heals_mid_transfer),
        cmocka_unit_test(test_a_partition_that_never_heals_ends_in_a_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
