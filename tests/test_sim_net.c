/* test_sim_net.c — several nodes in one simulation: their own kernels and statics, the switch,
 * its seeded verdicts (loss, duplication, reordering, cuts) and determinism. */
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
#include <sim/faults.h>
#include <sim/net.h>
#include <sim/sim.h>

#include "sim_pair.h"

/*
 * node 0 runs `talker`: once its link is up it broadcasts NPING numbered frames, one per
 * millisecond; node 1 runs `answerer`, which sends each one back to the sender's MAC.
 * The talker logs what came back and shuts its node down 50 ms after the last ping.
 */
enum { NPING = 200, ETHERTYPE_TEST = 0x88b5 /* local experimental */ };

static uint32_t answered[NPING]; /* per ping: copies that came back (duplicates count) */

typedef struct talker {
    os_handle_t dev, timer;
    uint8_t mac[6];
    uint32_t next;
    bool up;
} talker_t;

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

static void talker_start(os_ctx_t *ctx)
{
    talker_t *t = os_state(ctx);
    assert_int_equal(0, os_device_open(ctx, "net0", &t->dev));
    assert_int_equal(0, os_timer_create(ctx, &t->timer));
}

static void talker_event(os_ctx_t *ctx, const os_event_t *ev)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    talker_t *t = os_state(ctx);
    if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_LINK_UP) {
        assert_int_equal(6, ev->len);
        memcpy(t->mac, ev->data, 6);
        t->up = true;
        os_timer_set(ctx, t->timer, os_clock_now(ctx) + 1000000);
    } else if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_FRAME) {
        const uint8_t *f = ev->data;
        uint32_t seq;
        assert_int_equal(60, ev->len);
        assert_memory_equal(t->mac, f, 6); /* unicast to us */
        memcpy(&seq, f + 14, sizeof seq);
        assert_true(seq < NPING);
        answered[seq]++;
    } else if (ev->kind == OS_EV_TIMER) {
        if (t->next < NPING) {
            frame_out(ctx, t->dev, bcast, t->mac, t->next++);
            os_timer_set(ctx, t->timer, os_clock_now(ctx) + 1000000);
        } else {
            init_shutdown_t s = {1, 0};
            init_shutdown_send(ctx, init_channel(ctx), &s);
        }
        if (t->next == NPING)
            os_timer_set(ctx, t->timer, os_clock_now(ctx) + 50000000);
    }
}

typedef struct answerer {
    os_handle_t dev;
    uint8_t mac[6];
} answerer_t;

static uint32_t answerer_ids[4], nanswerers; /* task ids the answerers had, in start order */

static void answerer_start(os_ctx_t *ctx)
{
    answerer_t *a = os_state(ctx);
    if (nanswerers < 4)
        answerer_ids[nanswerers++] = os_task_id(ctx);
    int rc = os_device_open(ctx, "net0", &a->dev);
    if (rc == OS_ENOENT)
        os_exit(ctx, 0); /* a node without net0 */
    assert_int_equal(0, rc);
}

static void answerer_event(os_ctx_t *ctx, const os_event_t *ev)
{
    answerer_t *a = os_state(ctx);
    if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_LINK_UP) {
        memcpy(a->mac, ev->data, 6);
    } else if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_FRAME) {
        const uint8_t *f = ev->data;
        uint32_t seq;
        memcpy(&seq, f + 14, sizeof seq);
        frame_out(ctx, a->dev, f + 6, a->mac, seq);
    }
}

static const os_program_t talker = {"talker", sizeof(talker_t), talker_start, talker_event};
static const os_program_t answerer = {"answerer", sizeof(answerer_t), answerer_start,
                                      answerer_event};
static const os_program_t *const image[] = {&orrery_init, &talker, &answerer, NULL};

typedef struct outcome {
    int status;
    uint32_t answered, duplicates;
    sim_net_stats_t net;
    uint64_t tapped, hash, end_ns;
    long leaks;
} outcome_t;

/* One run of the two nodes with the given seed, faults and cut. */
static outcome_t run(uint64_t seed, uint32_t faults, uint32_t pct, uint64_t cut_from,
                     uint64_t cut_to)
{
    static const char m0[] = "program talker reach=init\n";
    static const char m1[] = "program answerer\n";
    memset(answered, 0, sizeof answered);
    assert_int_equal(
        0, sim_pair_boot(image, m0, seed, m1, seed + 1, 0, faults, pct, cut_from, cut_to));

    outcome_t o = {0};
    o.status = sim_run(10000000);
    o.end_ns = sim_now();
    sim_net_stats(&o.net);
    sim_faults_remove();
    o.leaks = sim_teardown();
    for (int i = 0; i < NPING; i++) {
        o.answered += answered[i] > 0;
        o.duplicates += answered[i] > 1 ? answered[i] - 1 : 0;
    }
    o.tapped = sim_pair_seen.frames;
    o.hash = sim_pair_seen.hash;
    return o;
}

static void test_two_nodes_exchange_frames(void **state)
{
    (void)state;
    outcome_t o = run(1, 0, 0, 0, 0);
    assert_int_equal(0, o.status);
    assert_int_equal(0, o.leaks);
    assert_int_equal(NPING, o.answered);
    assert_int_equal(0, o.duplicates);
    assert_int_equal(2 * NPING, o.net.sent);
    assert_int_equal(2 * NPING, o.net.delivered);
    assert_int_equal(2 * NPING, o.tapped);
    assert_int_equal(0, o.net.lost + o.net.cut + o.net.overflow + o.net.unknown + o.net.queue_full +
                            o.net.down);
}

static void test_loss_and_duplication_are_counted_and_deterministic(void **state)
{
    (void)state;
    uint32_t faults = SIM_FAULT_NET_LOSS | SIM_FAULT_NET_DUP | SIM_FAULT_NET_REORDER;
    outcome_t a = run(7, faults, 10, 0, 0);
    assert_int_equal(0, a.status);
    assert_int_equal(0, a.leaks);
    assert_true(a.net.lost > 0);
    assert_true(a.net.duplicated > 0);
    assert_true(a.net.reordered > 0);
    /* every copy is accounted for: delivered, or lost on the way */
    assert_int_equal(a.net.sent + a.net.duplicated, a.net.delivered + a.net.lost);
    assert_true(a.answered < NPING);
    assert_true(a.duplicates > 0);
    /* the same seed: the same frames at the same virtual times */
    outcome_t b = run(7, faults, 10, 0, 0);
    assert_int_equal(a.hash, b.hash);
    assert_int_equal(a.end_ns, b.end_ns);
    assert_memory_equal(&a.net, &b.net, sizeof a.net);
    /* another seed: other choices */
    outcome_t c = run(8, faults, 10, 0, 0);
    assert_true(c.hash != a.hash);
}

static void test_a_partition_cuts_both_ways_then_heals(void **state)
{
    (void)state;
    /* pings go out at 1..200 ms; the cut covers 50..100 ms */
    outcome_t o = run(3, 0, 0, 50000000, 100000000);
    assert_int_equal(0, o.status);
    assert_true(o.net.cut >= 45);
    assert_true(o.answered >= NPING - 52 && o.answered <= NPING - 48);
    assert_int_equal(o.net.sent, o.net.delivered + o.net.cut);
}

static void test_node_state_is_per_node(void **state)
{
    (void)state;
    /* Each node's kernel numbers its own tasks from 1 (init): every answerer is task 2. */
    static const char m[] = "program answerer\n";
    sim_config_t cfg[3];
    memset(cfg, 0, sizeof cfg);
    for (int i = 0; i < 3; i++) {
        cfg[i].programs = image;
        cfg[i].seed = 5;
        cfg[i].init_arg = m;
        cfg[i].init_arg_len = strlen(m);
        cfg[i].net = i != 2;
    }
    nanswerers = 0;
    assert_int_equal(0, sim_boot_nodes(cfg, 3));
    assert_int_equal(3, sim_node_count());
    sim_run_until_idle();
    assert_int_equal(3, nanswerers);
    for (int i = 0; i < 3; i++)
        assert_int_equal(2, answerer_ids[i]);
    /* after the run, the process's own kernel state is back: no kernel is booted */
    assert_int_equal(0, sim_teardown());
    for (int i = 0; i < 3; i++)
        assert_int_equal(0, sim_node_leaks((size_t)i));
    assert_int_equal(OS_EINVAL, sim_boot_nodes(cfg, 0));
    assert_int_equal(OS_EINVAL, sim_boot_nodes(cfg, SIM_NODES_MAX + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_exchange_frames),
        cmocka_unit_test(test_loss_and_duplication_are_counted_and_deterministic),
        cmocka_unit_test(test_a_partition_cuts_both_ways_then_heals),
        cmocka_unit_test(test_node_state_is_per_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
