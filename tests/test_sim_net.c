/* test_sim_net.c — several nodes in one simulation: their own kernels and statics, the switch,
 * its seeded verdicts (loss, duplication, reordering, cuts), determinism, and the packet
 * simulator (latency tails, bandwidth, capacity, clogs, seeded chaos, the swizzle-clog). */
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

/* ---- the packet simulator ------------------------------------------------------------------ */

/*
 * node 0 runs `burst`: once its link is up it broadcasts PK.frames frames of PK.len bytes,
 * PK.per_tick at a time every tick_ns, then shuts its node down PK.linger_ns after the last.
 * Every other node runs `sink`, which takes frames and does nothing. The switch's taps
 * record when each frame was sent and each copy delivered (the test's statics are shared by
 * the nodes: they are not in the per-node state).
 */
enum { PK_MAX = 2048, PK_TICK_NS = 1000000 };

static struct {
    uint32_t frames, per_tick, len;
    uint64_t linger_ns;
    uint64_t sent_at[PK_MAX];
    uint32_t order[8 * PK_MAX]; /* seq of each copy, in the order delivered */
    uint64_t got_at[8 * PK_MAX];
    uint32_t got_to[8 * PK_MAX];
    uint32_t ngot;
} PK;

typedef struct burst {
    os_handle_t dev, timer;
    uint8_t mac[6];
    uint32_t next;
} burst_t;

static void burst_start(os_ctx_t *ctx)
{
    burst_t *b = os_state(ctx);
    assert_int_equal(0, os_device_open(ctx, "net0", &b->dev));
    assert_int_equal(0, os_timer_create(ctx, &b->timer));
}

static void burst_event(os_ctx_t *ctx, const os_event_t *ev)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    burst_t *b = os_state(ctx);
    if (ev->kind == OS_EV_DEVICE && ev->type == HAL_NET_LINK_UP) {
        memcpy(b->mac, ev->data, 6);
        os_timer_set(ctx, b->timer, os_clock_now(ctx) + PK_TICK_NS);
    } else if (ev->kind == OS_EV_TIMER && b->next < PK.frames) {
        for (uint32_t i = 0; i < PK.per_tick && b->next < PK.frames; i++) {
            uint8_t f[HAL_NET_MTU] = {0};
            memcpy(f, bcast, 6);
            memcpy(f + 6, b->mac, 6);
            f[12] = ETHERTYPE_TEST >> 8;
            f[13] = ETHERTYPE_TEST & 0xff;
            memcpy(f + 14, &b->next, sizeof b->next);
            b->next++;
            assert_int_equal(0, os_device_write(ctx, b->dev, HAL_NET_FRAME, f, PK.len));
        }
        os_timer_set(ctx, b->timer,
                     os_clock_now(ctx) + (b->next < PK.frames ? PK_TICK_NS : PK.linger_ns));
    } else if (ev->kind == OS_EV_TIMER) {
        init_shutdown_t s = {1, 0};
        init_shutdown_send(ctx, init_channel(ctx), &s);
    }
}

static void sink_start(os_ctx_t *ctx)
{
    os_handle_t dev;
    assert_int_equal(0, os_device_open(ctx, "net0", &dev));
}

static void sink_event(os_ctx_t *ctx, const os_event_t *ev)
{
    (void)ctx;
    (void)ev;
}

static const os_program_t burst = {"burst", sizeof(burst_t), burst_start, burst_event};
static const os_program_t sink = {"sink", 0, sink_start, sink_event};
static const os_program_t *const pk_image[] = {&orrery_init, &burst, &sink, NULL};

static uint32_t frame_seq(const void *frame)
{
    uint32_t seq;
    memcpy(&seq, (const uint8_t *)frame + 14, sizeof seq);
    return seq;
}

static void pk_sent(void *self, uint64_t t, uint32_t from, const void *frame, size_t len)
{
    (void)self;
    (void)from;
    (void)len;
    uint32_t seq = frame_seq(frame);
    if (seq < PK_MAX)
        PK.sent_at[seq] = t;
}

static void pk_got(void *self, uint64_t t, uint32_t from, uint32_t to, const void *frame,
                   size_t len)
{
    (void)self;
    (void)from;
    (void)len;
    if (PK.ngot < 8 * PK_MAX) {
        PK.order[PK.ngot] = frame_seq(frame);
        PK.got_to[PK.ngot] = to;
        PK.got_at[PK.ngot++] = t;
    }
}

/* Boot `nodes` nodes (burst on node 0, sinks elsewhere) with the taps; the test then shapes
 * the switch before pk_run. */
static void pk_boot(uint64_t seed, uint32_t nodes, uint32_t frames, uint32_t per_tick,
                    uint32_t len)
{
    static const char m0[] = "program burst reach=init\n", m1[] = "program sink\n";
    sim_config_t cfg[8];
    assert_true(nodes <= 8);
    memset(cfg, 0, sizeof cfg);
    memset(&PK, 0, sizeof PK);
    PK.frames = frames;
    PK.per_tick = per_tick;
    PK.len = len;
    PK.linger_ns = 100000000; /* 100 ms: every frame has arrived */
    for (uint32_t i = 0; i < nodes; i++) {
        cfg[i].programs = pk_image;
        cfg[i].seed = seed + i;
        cfg[i].net = true;
        cfg[i].init_arg = i == 0 ? m0 : m1;
        cfg[i].init_arg_len = strlen(i == 0 ? m0 : m1);
    }
    assert_int_equal(0, sim_boot_nodes(cfg, nodes));
    sim_net_config_t nc = {.tap = pk_sent};
    sim_net_configure(&nc);
    sim_net_set_deliver_tap(pk_got, NULL);
}

/* Every copy (one per other node for each broadcast) is delivered or in one drop counter. */
static void assert_copies_add_up(const sim_net_stats_t *s, uint32_t nodes)
{
    assert_int_equal(s->sent * (nodes - 1) + s->duplicated,
                     s->delivered + s->lost + s->cut + s->overflow + s->unknown + s->queue_full +
                         s->down);
}

static sim_net_stats_t pk_run(uint32_t nodes)
{
    sim_net_stats_t s;
    assert_int_equal(0, sim_run(10000000));
    sim_net_stats(&s);
    sim_faults_remove();
    assert_int_equal(0, sim_teardown());
    assert_int_equal(PK.frames, s.sent);
    assert_copies_add_up(&s, nodes);
    assert_int_equal(s.delivered, PK.ngot); /* the deliver tap saw every delivered copy */
    return s;
}

static uint32_t inversions(void)
{
    uint32_t n = 0;
    for (uint32_t i = 1; i < PK.ngot; i++)
        n += PK.order[i] < PK.order[i - 1];
    return n;
}

static void test_without_a_tail_frames_keep_their_order(void **state)
{
    (void)state;
    pk_boot(11, 2, 1000, 10, 60);
    sim_net_stats_t s = pk_run(2);
    assert_int_equal(1000, s.delivered);
    assert_int_equal(0, inversions());
    for (uint32_t i = 0; i < PK.ngot; i++) /* the default path: 50 us, nothing more */
        assert_int_equal(PK.sent_at[PK.order[i]] + 50000, PK.got_at[i]);
}

static void test_an_exponential_tail_reorders_with_its_mean(void **state)
{
    (void)state;
    const uint64_t mean = 1000000, lat = 200000;
    pk_boot(12, 2, 1000, 10, 60);
    /* the tail as every path's default, the rest on the path */
    sim_net_config_t nc = {.tap = pk_sent, .tail_mean_ns = mean};
    sim_net_configure(&nc);
    sim_net_link_t l = {.latency_ns = lat, .capacity = 2000};
    assert_int_equal(0, sim_net_set_link(SIM_NET_ANY, SIM_NET_ANY, &l));
    sim_net_stats_t s = pk_run(2);
    assert_int_equal(1000, s.delivered);
    assert_int_equal(0, s.reordered); /* net-reorder is a fault of its own, not the tail */
    assert_true(inversions() > 100);
    uint64_t sum = 0, max = 0;
    uint32_t above = 0;
    for (uint32_t i = 0; i < PK.ngot; i++) {
        uint64_t sent = PK.sent_at[PK.order[i]];
        assert_true(PK.got_at[i] >= sent + lat); /* the latency is the minimum */
        uint64_t tail = PK.got_at[i] - sent - lat;
        sum += tail;
        max = tail > max ? tail : max;
        above += tail > mean;
    }
    /* over 1000 draws: the mean within 10% (3 standard deviations of the sample mean), a
     * share of e^-1 = 37% above the mean, and a long tail; the seed fixes the draws */
    uint64_t avg = sum / PK.ngot;
    assert_true(avg > mean * 9 / 10 && avg < mean * 11 / 10);
    assert_true(above > 300 && above < 440);
    assert_true(max > 4 * mean);
}

/* Which frames a run with 10% loss delivered, with or without a tail on the path. */
static void lossy_run(uint64_t tail_ns, bool got[PK_MAX])
{
    pk_boot(17, 2, 500, 5, 60);
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = SIM_FAULT_NET_LOSS;
    f.net_loss_pct = 10;
    assert_int_equal(0, sim_faults_install(&f));
    sim_net_link_t l = {.tail_mean_ns = tail_ns, .capacity = 1000};
    assert_int_equal(0, sim_net_set_link(0, 1, &l));
    sim_net_stats_t s = pk_run(2);
    assert_true(s.lost > 20);
    memset(got, 0, PK_MAX * sizeof got[0]);
    for (uint32_t i = 0; i < PK.ngot; i++)
        got[PK.order[i]] = true;
}

static void test_a_tail_moves_no_other_draw(void **state)
{
    (void)state;
    /* the tail comes from the path's own stream: sim_rand's loss draws stay where they were */
    static bool plain[PK_MAX], tailed[PK_MAX];
    lossy_run(0, plain);
    lossy_run(2000000, tailed);
    assert_memory_equal(plain, tailed, sizeof plain);
    assert_true(inversions() > 0);
}

static void test_bandwidth_spaces_frames_exactly(void **state)
{
    (void)state;
    /* 1000-byte frames at 8 Mbit/s: one per millisecond; 20 sent at once leave one by one */
    pk_boot(13, 2, 20, 20, 1000);
    sim_net_link_t l = {.bandwidth_bps = 8000000};
    assert_int_equal(0, sim_net_set_link(0, 1, &l));
    sim_net_stats_t s = pk_run(2);
    assert_int_equal(20, s.delivered);
    for (uint32_t i = 0; i < 20; i++) {
        assert_int_equal(i, PK.order[i]);
        assert_int_equal(PK.sent_at[0] + (i + 1) * 1000000ull + 50000, PK.got_at[i]);
    }
}

static void test_capacity_bounds_frames_in_flight(void **state)
{
    (void)state;
    pk_boot(14, 2, 20, 20, 60);
    sim_net_link_t l = {.latency_ns = 1000000, .capacity = 5};
    assert_int_equal(0, sim_net_set_link(0, SIM_NET_ANY, &l));
    sim_net_stats_t s = pk_run(2);
    assert_int_equal(5, s.delivered);
    assert_int_equal(15, s.overflow);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(i, PK.order[i]);
}

static void test_a_clog_holds_frames_then_releases_them_in_order(void **state)
{
    (void)state;
    /* one frame a millisecond from 1 ms; the path clogs from 3.5 ms to 12 ms */
    pk_boot(15, 2, 20, 1, 60);
    assert_int_equal(0, sim_net_clog(0, 1, 3500000, 12000000));
    assert_int_equal(12000000, sim_net_last_heal());
    sim_net_stats_t s = pk_run(2);
    assert_int_equal(20, s.delivered);
    assert_int_equal(0, inversions());
    uint32_t held = 0;
    for (uint32_t i = 0; i < PK.ngot; i++) {
        uint64_t due = PK.sent_at[PK.order[i]] + 50000;
        if (due >= 3500000 && due < 12000000) {
            assert_int_equal(12000000, PK.got_at[i]); /* all at the unclog, in order */
            held++;
        } else {
            assert_int_equal(due, PK.got_at[i]);
        }
    }
    assert_int_equal(8, held); /* sent at 4..11 ms: due 4.05 .. 11.05 ms */
    assert_int_equal(held, s.clogged);
    assert_int_equal(OS_EINVAL, sim_net_clog(0, 0, 0, 1));
}

static void test_a_clogged_path_still_bounds_what_it_holds(void **state)
{
    (void)state;
    pk_boot(16, 2, 20, 1, 60);
    sim_net_link_t l = {.capacity = 4};
    assert_int_equal(0, sim_net_set_link(0, 1, &l));
    assert_int_equal(0, sim_net_clog(SIM_NET_ANY, 1, 0, 30000000));
    sim_net_stats_t s = pk_run(2);
    assert_int_equal(4, s.clogged);
    assert_int_equal(16, s.overflow);
    assert_int_equal(4, s.delivered);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(i, PK.order[i]);
        assert_int_equal(30000000, PK.got_at[i]);
    }
}

/* The schedule sim_net_chaos draws for seed on `nodes` idle nodes (the run is not run). */
static size_t chaos_plan(uint64_t seed, uint32_t nodes, const sim_net_chaos_t *c,
                         sim_net_fault_t *out, size_t max, uint64_t *heal,
                         sim_net_swizzle_t *z)
{
    pk_boot(seed, nodes, 0, 1, 60);
    assert_int_equal(0, sim_net_chaos(c));
    size_t n = sim_net_chaos_faults(c->until_ns ? UINT64_MAX : 2000000000, out, max);
    *heal = sim_net_last_heal();
    if (z)
        sim_net_swizzle_plan(z);
    sim_teardown();
    return n;
}

static void test_chaos_is_a_function_of_the_seed_and_heals_by_until(void **state)
{
    (void)state;
    enum { MAX = 4096 };
    static sim_net_fault_t a[MAX], b[MAX], c[MAX];
    const sim_net_chaos_t ch = {
        .partition_every_mean_ns = 20000000,
        .partition_heal_mean_ns = 10000000,
        .split = SIM_NET_SPLIT_ANY,
        .asymmetric_pct = 50,
        .clog_every_mean_ns = 50000000,
        .clog_mean_ns = 5000000,
        .swizzle_start_ns = 100000000,
        .swizzle_end_ns = 300000000,
        .until_ns = 1000000000,
    };
    uint64_t ha, hb, hc;
    size_t na = chaos_plan(21, 4, &ch, a, MAX, &ha, NULL);
    size_t nb = chaos_plan(21, 4, &ch, b, MAX, &hb, NULL);
    size_t nc = chaos_plan(22, 4, &ch, c, MAX, &hc, NULL);
    assert_true(na > 30 && na < MAX);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof a[0]);
    assert_int_equal(ha, hb);
    assert_true(nc != na || memcmp(a, c, na * sizeof a[0]) != 0);
    uint32_t kinds[3] = {0}, one_way = 0, isolated = 0;
    uint64_t last = 0, prev_end = 0;
    for (size_t i = 0; i < na; i++) {
        assert_true(a[i].start_ns < a[i].end_ns);
        assert_true(a[i].end_ns <= ch.until_ns); /* every fault heals by until */
        last = a[i].end_ns > last ? a[i].end_ns : last;
        kinds[a[i].kind]++;
        if (a[i].kind == SIM_NET_FAULT_PARTITION) {
            assert_true(a[i].start_ns > prev_end); /* one at a time, a gap between */
            prev_end = a[i].end_ns;
            assert_true(a[i].side != 0 && a[i].side != 0xf); /* two non-empty sides */
            one_way += a[i].one_way;
            int k = __builtin_popcountll(a[i].side);
            isolated += k == 1 || k == 3;
        }
    }
    assert_int_equal(last, ha);
    assert_true(kinds[SIM_NET_FAULT_PARTITION] > 10);
    assert_true(kinds[SIM_NET_FAULT_CLOG] > 20);
    assert_true(kinds[SIM_NET_FAULT_SWIZZLE] >= 1);
    assert_true(one_way > 0 && one_way < kinds[SIM_NET_FAULT_PARTITION]);
    assert_true(isolated > 0);
    /* without until they go on for the whole run: no heal time */
    sim_net_chaos_t forever = ch;
    forever.until_ns = 0;
    size_t nf = chaos_plan(21, 4, &forever, c, MAX, &hc, NULL);
    assert_int_equal(UINT64_MAX, hc);
    assert_true(nf > 0);
    /* the split kinds: isolate puts one node apart; halves and sized leave two sides */
    sim_net_chaos_t iso = ch;
    iso.split = SIM_NET_SPLIT_ISOLATE;
    iso.asymmetric_pct = 0;
    iso.clog_every_mean_ns = iso.swizzle_start_ns = iso.swizzle_end_ns = 0;
    nf = chaos_plan(23, 5, &iso, c, MAX, &hc, NULL);
    assert_true(nf > 10);
    for (size_t i = 0; i < nf; i++) {
        assert_int_equal(1, __builtin_popcountll(c[i].side));
        assert_false(c[i].one_way);
    }
    iso.split = (sim_net_split_t)4;
    pk_boot(23, 2, 0, 1, 60);
    assert_int_equal(OS_EINVAL, sim_net_chaos(&iso));
    sim_teardown();
}

static void test_swizzle_clogs_a_subset_and_unclogs_in_another_order(void **state)
{
    (void)state;
    const sim_net_chaos_t ch = {.swizzle_start_ns = 10000000, .swizzle_end_ns = 50000000};
    sim_net_fault_t f[SIM_NODES_MAX];
    sim_net_swizzle_t z;
    uint64_t heal;
    uint32_t big = 0; /* plans of three nodes or more */
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t n = chaos_plan(seed, 6, &ch, f, SIM_NODES_MAX, &heal, &z);
        assert_int_equal(z.count, n);
        assert_true(z.count >= 1 && z.count <= 6);
        big += z.count >= 3;
        for (uint32_t i = 0; i < z.count; i++) {
            assert_true(z.clog_ns[i] >= 10000000 && z.clog_ns[i] < 30000000);
            assert_true(z.unclog_ns[i] >= 30000000 && z.unclog_ns[i] < 50000000);
            assert_true(i == 0 || z.clog_ns[i] >= z.clog_ns[i - 1]);
            assert_true(i == 0 || z.unclog_ns[i] >= z.unclog_ns[i - 1]);
            assert_int_equal(z.clog_order[i], f[i].from);
            assert_int_equal(z.clog_ns[i], f[i].start_ns);
        }
        if (z.count >= 2)
            assert_memory_not_equal(z.clog_order, z.unclog_order, z.count * sizeof(uint32_t));
        assert_int_equal(z.unclog_ns[z.count - 1], heal);
    }
    assert_true(big > 0);
    /* traffic through it: node 0 broadcasts to five sinks; copies on clogged paths wait */
    pk_boot(3, 6, 60, 1, 60);
    assert_int_equal(0, sim_net_chaos(&ch));
    sim_net_swizzle_plan(&z);
    sim_net_stats_t s = pk_run(6);
    assert_true(s.clogged > 0);
    assert_int_equal(60 * 5, s.delivered);
    /* a copy to node `to` is delivered while neither end is clogged, or at an unclog */
    for (uint32_t i = 0; i < PK.ngot; i++) {
        uint64_t due = PK.sent_at[PK.order[i]] + 50000;
        assert_true(PK.got_at[i] >= due);
        if (PK.got_at[i] > due) {
            bool at_unclog = false;
            for (uint32_t k = 0; k < z.count; k++)
                at_unclog |= PK.got_at[i] == z.unclog_ns[k];
            assert_true(at_unclog);
        }
    }
}

/* Whether the listed partitions cut from -> to at t. */
static bool listed_cut(const sim_net_fault_t *f, size_t n, uint64_t t, uint32_t from, uint32_t to)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].kind != SIM_NET_FAULT_PARTITION || t < f[i].start_ns || t >= f[i].end_ns)
            continue;
        bool a = f[i].side >> from & 1, b = f[i].side >> to & 1;
        if ((a && !b) || (!f[i].one_way && b && !a))
            return true;
    }
    return false;
}

/* When a copy due at t on from -> to is delivered, by the listed clogs and swizzle. */
static uint64_t listed_unclog(const sim_net_fault_t *f, size_t n, uint64_t t, uint32_t from,
                              uint32_t to)
{
    for (bool more = true; more;) {
        more = false;
        for (size_t i = 0; i < n; i++) {
            bool on = (f[i].kind == SIM_NET_FAULT_CLOG && f[i].from == from && f[i].to == to) ||
                      (f[i].kind == SIM_NET_FAULT_SWIZZLE && (f[i].from == from || f[i].from == to));
            if (on && f[i].start_ns <= t && t < f[i].end_ns) {
                t = f[i].end_ns;
                more = true;
            }
        }
    }
    return t;
}

static void test_chaos_with_traffic_adds_up_and_is_quiet_after_until(void **state)
{
    (void)state;
    const sim_net_chaos_t ch = {
        .partition_every_mean_ns = 30000000,
        .partition_heal_mean_ns = 20000000,
        .asymmetric_pct = 30,
        .clog_every_mean_ns = 40000000,
        .clog_mean_ns = 10000000,
        .swizzle_start_ns = 50000000,
        .swizzle_end_ns = 150000000,
        .until_ns = 200000000,
    };
    sim_net_stats_t s[2];
    uint64_t hash[2];
    static sim_net_fault_t f[256];
    size_t nf = 0;
    for (int r = 0; r < 2; r++) {
        pk_boot(31, 4, 300, 1, 60); /* a broadcast a millisecond for 300 ms */
        assert_int_equal(0, sim_net_chaos(&ch));
        assert_true(sim_net_last_heal() <= ch.until_ns);
        nf = sim_net_chaos_faults(UINT64_MAX, f, 256);
        assert_true(nf < 256);
        s[r] = pk_run(4);
        hash[r] = 0xcbf29ce484222325ull;
        for (uint32_t i = 0; i < PK.ngot; i++)
            hash[r] = (hash[r] ^ (PK.got_at[i] * 131 + PK.order[i] * 7 + PK.got_to[i])) *
                      0x100000001b3ull;
    }
    assert_memory_equal(&s[0], &s[1], sizeof s[0]);
    assert_int_equal(hash[0], hash[1]);
    assert_true(s[0].cut > 0);
    assert_true(s[0].clogged > 0);
    /* after until every path is whole: each frame sent then reaches all three sinks */
    uint32_t late[PK_MAX] = {0};
    for (uint32_t i = 0; i < PK.ngot; i++)
        late[PK.order[i]]++;
    for (uint32_t q = 0; q < 300; q++)
        if (PK.sent_at[q] >= ch.until_ns)
            assert_int_equal(3, late[q]);
    /* the run did what the listed schedule says: copies sent across a partition were cut,
     * the others arrived on time or at the end of the clogs they met */
    uint64_t cut = 0;
    for (uint32_t q = 0; q < 300; q++)
        for (uint32_t to = 1; to < 4; to++)
            cut += listed_cut(f, nf, PK.sent_at[q], 0, to);
    assert_int_equal(s[0].cut, cut);
    for (uint32_t i = 0; i < PK.ngot; i++) {
        uint64_t sent = PK.sent_at[PK.order[i]];
        assert_false(listed_cut(f, nf, sent, 0, PK.got_to[i]));
        assert_int_equal(listed_unclog(f, nf, sent + 50000, 0, PK.got_to[i]), PK.got_at[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_exchange_frames),
        cmocka_unit_test(test_loss_and_duplication_are_counted_and_deterministic),
        cmocka_unit_test(test_a_partition_cuts_both_ways_then_heals),
        cmocka_unit_test(test_node_state_is_per_node),
        cmocka_unit_test(test_without_a_tail_frames_keep_their_order),
        cmocka_unit_test(test_an_exponential_tail_reorders_with_its_mean),
        cmocka_unit_test(test_a_tail_moves_no_other_draw),
        cmocka_unit_test(test_bandwidth_spaces_frames_exactly),
        cmocka_unit_test(test_capacity_bounds_frames_in_flight),
        cmocka_unit_test(test_a_clog_holds_frames_then_releases_them_in_order),
        cmocka_unit_test(test_a_clogged_path_still_bounds_what_it_holds),
        cmocka_unit_test(test_chaos_is_a_function_of_the_seed_and_heals_by_until),
        cmocka_unit_test(test_swizzle_clogs_a_subset_and_unclogs_in_another_order),
        cmocka_unit_test(test_chaos_with_traffic_adds_up_and_is_quiet_after_until),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
