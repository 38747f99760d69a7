/* test_sim_nodes.c — node faults in a multi-node simulation: a crash with its reboot (or
 * none), of node 1 and of node 0, and a pause (no events, late timers, frames that wait). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hal/net.h>
#include <iface/init_client.h>
#include <image.h>
#include <k/kernel.h>
#include <sim/blk.h>
#include <sim/net.h>
#include <sim/sim.h>

/*
 * node 0 runs `pinger`: once its link is up it broadcasts NPING numbered frames, one per
 * millisecond (at 1, 2, ... ms after its boot), and shuts its node down 50 ms after the
 * last. node 1 runs `ponger`: it answers each frame to its sender and ticks a timer every
 * millisecond. What they see goes into the statics below (a test's statics are not in the
 * per-node state: both nodes write them).
 */
enum { NPING = 200, MS = 1000000, ETHERTYPE_TEST = 0x88b5, LOG_MAX = 4096 };

static struct {
    uint32_t answered[NPING]; /* per ping: answers node 0 got */
    uint32_t pinger_starts, ponger_starts;
    uint64_t ticks[LOG_MAX]; /* when node 1's timer fired */
    uint32_t nticks;
    uint64_t handled[LOG_MAX]; /* when node 1 handled a frame */
    uint32_t nhandled;
} L;

static void frame_out(os_ctx_t *ctx, os_handle_t dev, const uint8_t dst[6], const uint8_t src[6],
                      uint32_t seq)
{
    uint8_t f[60] = {0};
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = ETHERTYPE_TEST >> 8;
    f[13] = ETHERTYPE_TEST & 0xff;
    memcpy(f + 14, &seq, sizeof seq);
    assert_int_equal(0, os_device_write(ctx, dev, HAL_NET_FRAME, f, sizeof f));
}

typedef struct pinger {
    os_handle_t dev, timer;
    uint8_t mac[6];
    uint32_t next;
} pinger_t;

static void pinger_start(os_ctx_t *ctx)
{
    pinger_t *p = os_state(ctx);
    L.pinger_starts++;
    assert_int_equal(0, os_device_open(ctx, "net0", &p->dev));
    assert_int_equal(0, os_timer_create(ctx, &p->timer));
}

static void pinger_event(os_ctx_t *ctx, const os_event_t *ev)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    pinger_t *p = os_state(ctx);
    if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_LINK_UP) {
        memcpy(p->mac, ev->data, 6);
        os_timer_set(ctx, p->timer, os_clock_now(ctx) + MS);
    } else if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_FRAME) {
        uint32_t seq;
        memcpy(&seq, (const uint8_t *)ev->data + 14, sizeof seq);
        assert_true(seq < NPING);
        L.answered[seq]++;
    } else if (ev->kind == OS_EV_TIMER && p->next < NPING) {
        frame_out(ctx, p->dev, bcast, p->mac, p->next++);
        os_timer_set(ctx, p->timer, os_clock_now(ctx) + (p->next < NPING ? MS : 50 * MS));
    } else if (ev->kind == OS_EV_TIMER) {
        init_shutdown_t s = {1, 0};
        init_shutdown_send(ctx, init_channel(ctx), &s);
    }
}

typedef struct ponger {
    os_handle_t dev, timer;
    uint8_t mac[6];
} ponger_t;

static void ponger_start(os_ctx_t *ctx)
{
    ponger_t *p = os_state(ctx);
    L.ponger_starts++;
    assert_int_equal(0, os_device_open(ctx, "net0", &p->dev));
    assert_int_equal(0, os_timer_create(ctx, &p->timer));
    os_timer_set(ctx, p->timer, os_clock_now(ctx) + MS);
}

static void ponger_event(os_ctx_t *ctx, const os_event_t *ev)
{
    ponger_t *p = os_state(ctx);
    uint64_t now = os_clock_now(ctx);
    if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_LINK_UP) {
        memcpy(p->mac, ev->data, 6);
    } else if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_FRAME) {
        const uint8_t *f = ev->data;
        uint32_t seq;
        memcpy(&seq, f + 14, sizeof seq);
        if (L.nhandled < LOG_MAX)
            L.handled[L.nhandled++] = now;
        frame_out(ctx, p->dev, f + 6, p->mac, seq);
    } else if (ev->kind == OS_EV_TIMER) {
        if (L.nticks < LOG_MAX)
            L.ticks[L.nticks++] = now;
        os_timer_set(ctx, p->timer, now + MS);
    }
}

static const os_program_t pinger = {"pinger", sizeof(pinger_t), pinger_start, pinger_event};
static const os_program_t ponger = {"ponger", sizeof(ponger_t), ponger_start, ponger_event};
static const os_program_t *const image[] = {&orrery_init, &pinger, &ponger, NULL};

static void boot_two(uint64_t seed)
{
    static const char m0[] = "program pinger reach=init\n", m1[] = "program ponger\n";
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof cfg);
    memset(&L, 0, sizeof L);
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = image;
        cfg[i].seed = seed + (uint64_t)i;
        cfg[i].net = true;
        cfg[i].init_arg = i == 0 ? m0 : m1;
        cfg[i].init_arg_len = strlen(i == 0 ? m0 : m1);
    }
    assert_int_equal(0, sim_boot_nodes(cfg, 2));
}

typedef struct outcome {
    int status;
    uint32_t answered;
    sim_net_stats_t net;
    unsigned boots[2];
    bool down1;
    int status1;
} outcome_t;

static outcome_t finish(void)
{
    outcome_t o = {0};
    o.status = sim_run(10000000);
    sim_net_stats(&o.net);
    o.boots[0] = sim_node_boots(0);
    o.boots[1] = sim_node_boots(1);
    o.down1 = sim_node_shutdown_status(1, &o.status1);
    assert_int_equal(0, sim_teardown()); /* the kernels the crashes tore down included */
    for (int i = 0; i < NPING; i++)
        o.answered += L.answered[i] > 0;
    /* every copy is delivered or counted in one drop counter; waiting ones once more */
    assert_int_equal(o.net.sent + o.net.duplicated,
                     o.net.delivered + o.net.lost + o.net.cut + o.net.overflow + o.net.unknown +
                         o.net.queue_full + o.net.down);
    return o;
}

/* No entry of log[0..n) falls in [from, to). */
static void assert_none_in(const uint64_t *log, uint32_t n, uint64_t from, uint64_t to)
{
    for (uint32_t i = 0; i < n; i++)
        assert_false(log[i] >= from && log[i] < to);
}

static bool logged_at(const uint64_t *log, uint32_t n, uint64_t t)
{
    for (uint32_t i = 0; i < n; i++)
        if (log[i] == t)
            return true;
    return false;
}

static void test_a_crashed_node_reboots_and_the_others_go_on(void **state)
{
    (void)state;
    boot_two(1);
    assert_int_equal(0, sim_node_crash_at(1, 50 * MS + MS / 2, 30 * MS));
    outcome_t o = finish();
    assert_int_equal(0, o.status); /* node 0 ran through */
    assert_int_equal(1, L.pinger_starts);
    assert_int_equal(2, L.ponger_starts); /* node 1's tasks started again */
    assert_int_equal(1, o.boots[0]);
    assert_int_equal(2, o.boots[1]);
    assert_false(o.down1);
    /* pings 50..79 (sent at 51..80 ms) reached a node that was down */
    assert_int_equal(30, o.net.down);
    assert_int_equal(NPING - 30, o.answered);
    assert_int_equal(2 * (NPING - 30), o.net.delivered); /* the pings and their answers */
    assert_none_in(L.ticks, L.nticks, 50 * MS + MS / 2, 80 * MS + MS / 2);
    assert_none_in(L.handled, L.nhandled, 50 * MS + MS / 2, 80 * MS + MS / 2);
    /* after the reboot its timer ticks again from its new start */
    assert_true(logged_at(L.ticks, L.nticks, 81 * MS + MS / 2));
}

static void test_a_crash_without_reboot_stops_the_node(void **state)
{
    (void)state;
    boot_two(2);
    assert_int_equal(0, sim_node_crash_at(1, 100 * MS + MS / 2, UINT64_MAX));
    outcome_t o = finish();
    assert_int_equal(0, o.status);
    assert_true(o.down1);
    assert_int_equal(-1, o.status1);
    assert_int_equal(1, o.boots[1]);
    assert_int_equal(100, o.answered);
    assert_int_equal(100, o.net.down);
    assert_int_equal(OS_EINVAL, sim_node_crash_at(2, 0, 0));
}

static void test_the_run_goes_on_while_node_0_is_down(void **state)
{
    (void)state;
    boot_two(3);
    assert_int_equal(0, sim_node_crash_at(0, 20 * MS + MS / 2, 10 * MS));
    /* a second crash inside the first one's window: the node stays down to the later end */
    assert_int_equal(0, sim_node_crash_at(0, 25 * MS, 10 * MS));
    outcome_t o = finish();
    assert_int_equal(0, o.status);
    assert_int_equal(2, o.boots[0]);
    assert_int_equal(2, L.pinger_starts);
    assert_int_equal(NPING, o.answered); /* the pinger's second life sent all of them */
    /* 20 pings before the crash, NPING after the reboot, each answered */
    assert_int_equal(2 * (20 + NPING), o.net.sent);
    assert_int_equal(0, o.net.down);
}

static void test_a_paused_node_runs_nothing_and_its_frames_wait(void **state)
{
    (void)state;
    boot_two(4);
    assert_int_equal(0, sim_node_pause(1, 20 * MS + MS / 2, 40 * MS + MS / 4));
    outcome_t o = finish();
    assert_int_equal(0, o.status);
    assert_int_equal(NPING, o.answered); /* nothing lost: they waited */
    assert_int_equal(20, o.net.paused);  /* pings 20..39 arrived during the pause */
    assert_int_equal(2 * NPING, o.net.delivered);
    assert_none_in(L.ticks, L.nticks, 20 * MS + MS / 2, 40 * MS + MS / 4);
    assert_none_in(L.handled, L.nhandled, 20 * MS + MS / 2, 40 * MS + MS / 4);
    /* the tick due at 21 ms fired late, at the pause's end; the frames went on then too */
    assert_true(logged_at(L.ticks, L.nticks, 40 * MS + MS / 4));
    assert_true(logged_at(L.handled, L.nhandled, 40 * MS + MS / 4));
    assert_int_equal(1, L.ponger_starts);
    assert_int_equal(OS_EINVAL, sim_node_pause(1, 5, 5));
}

static void test_a_long_pause_fills_the_queue(void **state)
{
    (void)state;
    boot_two(5);
    assert_int_equal(0, sim_node_pause(1, 10 * MS + MS / 2, 190 * MS + MS / 2));
    outcome_t o = finish();
    assert_int_equal(0, o.status);
    /* 180 pings arrived while it was paused; its device queue took OS_CHAN_QUEUE_MAX */
    assert_int_equal(OS_CHAN_QUEUE_MAX, o.net.paused);
    assert_int_equal(180 - OS_CHAN_QUEUE_MAX, o.net.queue_full);
    assert_int_equal(NPING - (180 - OS_CHAN_QUEUE_MAX), o.answered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_crashed_node_reboots_and_the_others_go_on),
        cmocka_unit_test(test_a_crash_without_reboot_stops_the_node),
        cmocka_unit_test(test_the_run_goes_on_while_node_0_is_down),
        cmocka_unit_test(test_a_paused_node_runs_nothing_and_its_frames_wait),
        cmocka_unit_test(test_a_long_pause_fills_the_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
