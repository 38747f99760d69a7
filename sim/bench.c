/* bench.c — the simulator's benchmark programs and runs: periodic tickers, a ping-pong pair,
 * clusters of tcpip nodes idle or busy. */
#include <sim/bench.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <k/kernel.h>
#include <sim/net.h>
#include <sim/sim.h>

#include "sim_priv.h"

/* Parameters reach the programs through their spawn arg (init's comes from sim_config). */
typedef struct bench_arg {
    uint64_t period_ns; /* tickers */
    uint64_t end_ns;    /* ticker init: shut down then */
    uint32_t tickers;
    uint64_t msgs;   /* ping: messages to deliver (both ways) */
    uint32_t window; /* ping: messages in flight */
} bench_arg_t;

static bench_arg_t arg_of(os_ctx_t *ctx)
{
    const void *data;
    size_t len;
    bench_arg_t a;
    memset(&a, 0, sizeof a);
    os_spawn_arg(ctx, &data, &len);
    if (data && len == sizeof a)
        memcpy(&a, data, sizeof a);
    return a;
}

/* ---- tickers ---------------------------------------------------------------------------- */

typedef struct ticker_state {
    os_handle_t timer;
    uint64_t period, next, ticks;
} ticker_state_t;

static void ticker_start(os_ctx_t *ctx)
{
    ticker_state_t *st = os_state(ctx);
    bench_arg_t a = arg_of(ctx);
    st->period = a.period_ns ? a.period_ns : 1000000;
    if (os_timer_create(ctx, &st->timer) != 0)
        os_panic(ctx, "no timer");
    st->next = os_clock_now(ctx) + st->period;
    os_timer_set(ctx, st->timer, st->next);
}

static void ticker_event(os_ctx_t *ctx, const os_event_t *ev)
{
    ticker_state_t *st = os_state(ctx);
    if (ev->kind != OS_EV_TIMER)
        return;
    st->ticks++;
    st->next += st->period;
    os_timer_set(ctx, st->timer, st->next);
}

static const os_program_t ticker = {"sim_ticker", sizeof(ticker_state_t), ticker_start,
                                    ticker_event};

static void ticker_init_start(os_ctx_t *ctx)
{
    bench_arg_t a = arg_of(ctx);
    for (uint32_t i = 0; i < a.tickers; i++) {
        os_handle_t h;
        os_spawn_args_t sa = {.program = "sim_ticker", .arg = &a, .arg_len = sizeof a};
        if (os_spawn(ctx, &sa, &h) != 0)
            os_panic(ctx, "spawn ticker");
    }
    os_handle_t *end = os_state(ctx);
    if (os_timer_create(ctx, end) != 0)
        os_panic(ctx, "no timer");
    os_timer_set(ctx, *end, a.end_ns);
}

static void ticker_init_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_TIMER)
        os_shutdown(ctx, 0);
}

static const os_program_t ticker_init = {"sim_ticker_init", sizeof(os_handle_t), ticker_init_start,
                                         ticker_init_event};

/* ---- ping-pong --------------------------------------------------------------------------- */

typedef struct ping_state {
    os_handle_t chan;
    uint64_t want, received;
} ping_state_t;

static void ping_start(os_ctx_t *ctx)
{
    ping_state_t *st = os_state(ctx);
    bench_arg_t a = arg_of(ctx);
    os_handle_t mine, theirs, task;
    if (os_channel_create(ctx, &mine, &theirs) != 0)
        os_panic(ctx, "channel");
    os_spawn_args_t sa = {.program = "sim_pong", .handles = &theirs, .nhandles = 1};
    if (os_spawn(ctx, &sa, &task) != 0)
        os_panic(ctx, "spawn pong");
    st->chan = mine;
    st->want = a.msgs / 2; /* each round trip delivers two */
    uint32_t window = a.window ? a.window : 1;
    for (uint32_t i = 0; i < window; i++)
        os_send(ctx, mine, 1, &i, sizeof i, NULL, 0);
}

static void ping_event(os_ctx_t *ctx, const os_event_t *ev)
{
    ping_state_t *st = os_state(ctx);
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (++st->received >= st->want) {
        os_shutdown(ctx, 0);
        return;
    }
    os_send(ctx, st->chan, ev->type, ev->data, ev->len, NULL, 0);
}

static void pong_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_MESSAGE)
        os_send(ctx, ev->handle, ev->type, ev->data, ev->len, NULL, 0);
}

static const os_program_t ping = {"sim_ping", sizeof(ping_state_t), ping_start, ping_event};
static const os_program_t pong = {"sim_pong", 0, NULL, pong_event};

const os_program_t *const sim_bench_programs[] = {&ticker_init, &ticker, &ping, &pong, NULL};

/* ---- runs --------------------------------------------------------------------------------- */

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *init, const bench_arg_t *a, double *secs, k_stats_t *ks)
{
    sim_config_t cfg = {
        .programs = sim_bench_programs,
        .init_program = init,
        .init_arg = a,
        .init_arg_len = sizeof *a,
        .seed = 1,
    };
    double t0 = wall();
    int rc = sim_boot(&cfg);
    if (rc == 0) {
        sim_run(0);
        *secs = wall() - t0;
        k_get_stats(ks);
    }
    long leaks = sim_teardown();
    return rc ? rc : leaks ? OS_ESTATE : 0;
}

int sim_bench_timers(unsigned tickers, uint64_t period_ns, uint64_t virtual_ns,
                     sim_bench_result_t *r)
{
    bench_arg_t a = {.period_ns = period_ns, .end_ns = virtual_ns, .tickers = tickers};
    k_stats_t ks;
    double secs = 0;
    int rc = run("sim_ticker_init", &a, &secs, &ks);
    if (rc)
        return rc;
    r->virtual_s = (double)virtual_ns / 1e9;
    r->ticks_wall_s = secs;
    r->ticks = ks.events;
    r->time_compression = secs > 0 ? r->virtual_s / secs : 0;
    return 0;
}

int sim_bench_msgs(uint64_t msgs, unsigned window, sim_bench_result_t *r)
{
    bench_arg_t a = {.msgs = msgs, .window = window};
    k_stats_t ks;
    double secs = 0;
    int rc = run("sim_ping", &a, &secs, &ks);
    if (rc)
        return rc;
    r->msgs = ks.messages;
    r->msgs_wall_s = secs;
    r->msgs_per_s = secs > 0 ? (double)ks.messages / secs : 0;
    return 0;
}

/* ---- clusters ----------------------------------------------------------------------------- */

enum { MANIFEST_MAX = 512, CMD_MAX = 64 };

/* 10.0.0.(i+1): the bench's address of node i. */
static void node_addr(char *buf, size_t len, unsigned i)
{
    snprintf(buf, len, "10.0.0.%u", (i + 1) & 0xff); /* i < SIM_NODES_MAX */
}

static struct {
    unsigned nodes;
    uint64_t end_ns;
    uint64_t sent[SIM_NODES_MAX]; /* commands typed on node i: fetch next when even */
} B;

/* Type node `arg`'s next command now, and come back a period later. */
static void busy_tick(void *self, uint64_t arg)
{
    (void)self;
    unsigned i = (unsigned)arg;
    char next[16], line[CMD_MAX];
    node_addr(next, sizeof next, (i + 1) % B.nodes);
    if (B.sent[i]++ % 2 == 0)
        snprintf(line, sizeof line, "fetch http://%s:7/bench", next);
    else
        snprintf(line, sizeof line, "ping %s 1", next);
    uint64_t now = sim_now();
    sim_node_console_at(i, now, line);
    if (now + SIM_BENCH_BUSY_PERIOD_NS < B.end_ns)
        sim_at_node(i, now + SIM_BENCH_BUSY_PERIOD_NS, busy_tick, NULL, arg);
}

int sim_bench_cluster(const os_program_t *const *image, unsigned nodes, sim_bench_load_t load,
                      uint64_t virtual_ns, sim_bench_cluster_t *r)
{
    if (nodes < 2 || nodes > SIM_NODES_MAX || virtual_ns == 0)
        return OS_EINVAL;
    static char manifests[SIM_NODES_MAX][MANIFEST_MAX];
    static sim_config_t cfg[SIM_NODES_MAX];
    memset(cfg, 0, sizeof cfg);
    memset(&B, 0, sizeof B);
    B.nodes = nodes;
    B.end_ns = virtual_ns;
    for (unsigned i = 0; i < nodes; i++) {
        char addr[16];
        node_addr(addr, sizeof addr, i);
        int n = load == SIM_BENCH_IDLE
                    ? snprintf(manifests[i], MANIFEST_MAX, "program tcpip arg=addr=%s/24\n", addr)
                    : snprintf(manifests[i], MANIFEST_MAX,
                               "program console restart=always\n"
                               "program tcpip arg=addr=%s/24\n"
                               "program tcpecho reach=tcp,udp\n"
                               "program shell restart=always reach=console,init,net,tcp\n",
                               addr);
        cfg[i] = (sim_config_t){
            .programs = image,
            .init_arg = manifests[i],
            .init_arg_len = (size_t)n,
            .seed = 1 + i,
            .net = true,
            .event_cost_max_ns = 2000,
        };
    }
    double t0 = wall();
    int rc = sim_boot_nodes(cfg, nodes);
    if (rc != 0)
        return rc; /* it tore down what it had booted */
    if (load == SIM_BENCH_BUSY)
        for (unsigned i = 0; i < nodes; i++) /* after the shell's prompt, staggered */
            sim_at_node(i, 200000000ull + i * SIM_BENCH_BUSY_PERIOD_NS / nodes, busy_tick, NULL, i);
    while (sim_now() < virtual_ns && sim_step())
        ;
    memset(r, 0, sizeof *r);
    r->nodes = nodes;
    r->load = load;
    r->virtual_s = (double)sim_now() / 1e9;
    sim_net_stats_t ns;
    sim_net_stats(&ns);
    r->frames = ns.sent;
    for (unsigned i = 0; i < nodes; i++) {
        k_stats_t ks;
        sim_node_enter(i);
        k_get_stats(&ks);
        r->events += ks.events;
        r->messages += ks.messages;
    }
    long leaks = sim_teardown();
    r->wall_s = wall() - t0;
    if (leaks)
        return OS_ESTATE;
    if (r->wall_s > 0) {
        r->sim_per_wall = r->virtual_s / r->wall_s;
        r->frames_per_s = (double)r->frames / r->wall_s;
        r->events_per_s = (double)r->events / r->wall_s;
        r->seeds_per_hour = 3600.0 / r->wall_s;
    }
    return 0;
}
