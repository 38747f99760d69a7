/* bench.c — the simulator's benchmark programs and runs: periodic tickers, a ping-pong pair. */
#include <sim/bench.h>

#include <string.h>
#include <time.h>

#include <k/kernel.h>
#include <sim/sim.h>

/* Parameters reach the programs through their spawn arg (init's comes from sim_config). */
typedef struct bench_arg {
    uint64_t period_ns;   /* tickers */
    uint64_t end_ns;      /* ticker init: shut down then */
    uint32_t tickers;
    uint64_t msgs;        /* ping: messages to deliver (both ways) */
    uint32_t window;      /* ping: messages in flight */
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

static const os_program_t ticker_init = {"sim_ticker_init", sizeof(os_handle_t),
                                         ticker_init_start, ticker_init_event};

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
