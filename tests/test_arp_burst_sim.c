/* test_arp_burst_sim.c — connections opened all at once to a peer whose MAC is not known yet:
 * every SYN waits for the ARP answer and goes out with it, none waits for TCP's retransmission.
 * Two nodes in the simulator: node 0 (10.0.0.2) runs tcpip and tcpecho; node 1 (10.0.0.1)
 * runs tcpip and `burst`, which sends BURST connects in one go, 200 ms after boot, and notes
 * the virtual time each one is established (net/include/lwipopts.h, ARP_QUEUEING). */
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
#include <image.h>
#include <sim/sim.h>

#include "sim_pair.h"

enum { REQ_TCP = 1, REQ_CONNECT = 10, BURST = 16, ECHO_PORT = 7 };

static struct {
    uint64_t sent_ns;        /* when the connects went out */
    uint64_t est_ns[BURST];  /* when each was established (0: not yet) */
    os_handle_t conn[BURST]; /* the connection channels, by request */
    int established;
    bool failed;
} R;

typedef struct burst {
    os_handle_t tcp, timer;
} burst_t;

static void burst_start(os_ctx_t *ctx)
{
    burst_t *b = os_state(ctx);
    b->tcp = OS_HANDLE_NONE;
    if (os_timer_create(ctx, &b->timer) != 0)
        R.failed = true;
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
}

static void burst_event(os_ctx_t *ctx, const os_event_t *ev)
{
    burst_t *b = os_state(ctx);
    static union {
        init_connected_t ic;
        tcp_opened_t op;
        tcp_established_t est;
    } m;
    if (ev->kind == OS_EV_TIMER && ev->handle == b->timer) {
        /* the addresses are set and tcpecho listens by now; nothing has asked for a MAC yet */
        R.sent_ns = os_clock_now(ctx);
        for (uint32_t i = 0; i < BURST; i++)
            if (tcp_connect_send(ctx, b->tcp,
                                 &(tcp_connect_t){REQ_CONNECT + i, 0x0a000002, ECHO_PORT}) != 0)
                R.failed = true;
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.ic) != 0) {
            R.failed = true;
            return;
        }
        b->tcp = m.ic.chan;
        os_timer_set(ctx, b->timer, os_clock_now(ctx) + 200000000ull);
    } else if (ev->handle == b->tcp) {
        if (tcp_opened_decode(ev, &m.op) != 0 || m.op.req < REQ_CONNECT ||
            m.op.req >= REQ_CONNECT + BURST) {
            iface_discard(ctx, ev);
            R.failed = true;
            return;
        }
        R.conn[m.op.req - REQ_CONNECT] = m.op.chan;
    } else {
        for (int i = 0; i < BURST; i++) {
            if (ev->handle != R.conn[i])
                continue;
            if (tcp_established_decode(ev, &m.est) == 0 && R.est_ns[i] == 0) {
                R.est_ns[i] = os_clock_now(ctx);
                R.established++;
            } else {
                iface_discard(ctx, ev);
            }
            return;
        }
        iface_discard(ctx, ev);
    }
}

static const os_program_t burst = {"burst", sizeof(burst_t), burst_start, burst_event};

static void test_a_burst_of_connects_waits_for_one_arp_answer(void **state)
{
    (void)state;
    memset(&R, 0, sizeof R);
    for (int i = 0; i < BURST; i++)
        R.conn[i] = OS_HANDLE_NONE;
    static const char m0[] = "program tcpip arg=addr=10.0.0.2/24\n"
                             "program tcpecho reach=tcp\n";
    static const char m1[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program burst reach=tcp\n";
    static const os_program_t *image[64];
    size_t n = 0;
    for (const os_program_t *const *p = orrery_programs; *p && n < 62; p++)
        image[n++] = *p;
    image[n++] = &burst;
    image[n] = NULL;
    assert_int_equal(sim_pair_boot(image, m0, 1, m1, 2, 0, 0, 0, 0, 0), 0);
    /* ten virtual seconds at most: lwIP retransmits a lost SYN after 3 s, then 6 */
    for (uint64_t steps = 0; steps < 20000000 && !R.failed && R.established < BURST; steps++) {
        if (sim_now() > 10000000000ull || !sim_step())
            break;
    }
    uint64_t last = 0;
    for (int i = 0; i < BURST; i++)
        if (R.est_ns[i] > last)
            last = R.est_ns[i];
    if (R.established != BURST || R.failed || last - R.sent_ns > 1000000000ull) {
        fputs(sim_node_console_output(0, NULL), stderr);
        fputs(sim_node_console_output(1, NULL), stderr);
        for (int i = 0; i < BURST; i++)
            fprintf(stderr, "connect %d: established %.3f s after the burst\n", i,
                    R.est_ns[i] ? (double)(R.est_ns[i] - R.sent_ns) / 1e9 : -1.0);
    }
    long leaks = sim_teardown();
    assert_false(R.failed);
    assert_int_equal(R.established, BURST);
    /* one ARP exchange and one handshake each: well under TCP's first retransmission */
    assert_true(last - R.sent_ns < 1000000000ull);
    assert_int_equal(leaks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_burst_of_connects_waits_for_one_arp_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
