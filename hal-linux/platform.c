/* platform.c — the hosted platform: hal_* ops for the host dispatch, the libuv loop, and hl_run. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <hal/host.h>
#include <hl/clock.h>
#include <k/kernel.h>

/* Loop-thread state; the atomics are touched from any thread. */
static struct {
    uint64_t boot_ns; /* the clock at boot (CLOCK_MONOTONIC's time) */
    hl_clock_t *clock; /* hl_clock_default: a calibrated TSC, or clock_gettime */
    uv_loop_t loop;
    uv_async_t poke; /* any thread -> loop: deadline changed or stop requested */
    int tfd;         /* timerfd (CLOCK_MONOTONIC, absolute): the kernel's one timer, ns precise */
    uv_poll_t tpoll; /* watches tfd on the loop */
    uv_timer_t timeout; /* cfg->timeout_ms */
    uv_signal_t sigint, sigterm, sigwinch;
    bool signals;
    bool live;         /* atomic: poke may be sent */
    uint64_t deadline; /* atomic: latest hal_timer_arm, UINT64_MAX = none */
    int stop;          /* atomic: 1 once a stop was requested */
    int status;        /* the run's exit status (set by the first stop) */
    int signal;        /* signal that stopped the run */
    bool timed_out;
} P;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- hal ops ---------------------------------------------------------------------------- */

static uint64_t lx_clock_now_ns(void)
{
    uint64_t now = hl_clock_now(P.clock);
    /* Another CPU's TSC a hair behind the loop thread's at boot: 0, not 2^64 - 1. */
    return now > P.boot_ns ? now - P.boot_ns : 0;
}

static void poke_loop(void)
{
    if (__atomic_load_n(&P.live, __ATOMIC_ACQUIRE))
        uv_async_send(&P.poke);
}

/*
 * Set the timerfd to the deadline (any thread: the kernel serializes its calls).
 * The deadline is on the kernel clock, which agrees with CLOCK_MONOTONIC only
 * to within microseconds (hl/clock.h): the timerfd gets the time left by the
 * kernel clock, from CLOCK_MONOTONIC's now (on_tfd ticks the kernel, which arms
 * it again if it fired a hair early).
 */
static void set_tfd(uint64_t deadline_ns)
{
    struct itimerspec its = {0};
    if (deadline_ns != UINT64_MAX) {
        uint64_t now = lx_clock_now_ns();
        /* > 0: a zero it_value would disarm */
        uint64_t at = mono_ns() + (deadline_ns > now ? deadline_ns - now : 0);
        its.it_value.tv_sec = (time_t)(at / 1000000000u);
        its.it_value.tv_nsec = (long)(at % 1000000000u);
    }
    timerfd_settime(P.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void lx_timer_arm(uint64_t deadline_ns)
{
    __atomic_store_n(&P.deadline, deadline_ns, __ATOMIC_RELEASE);
    set_tfd(deadline_ns);
}

static void lx_entropy_fill(void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0)
            continue; /* EINTR; getrandom cannot otherwise fail once the pool is ready */
        p += n;
        len -= (size_t)n;
    }
}

static void lx_cpu_yield(void)
{
    sched_yield();
}

static void lx_shutdown(int status)
{
    hl_request_stop(status);
}

static const hal_host_t linux_platform = {
    .name = "linux",
    .clock_now_ns = lx_clock_now_ns,
    .timer_arm = lx_timer_arm,
    .entropy_fill = lx_entropy_fill,
    .console_write = hl_console_write,
    .cpu_wake = hl_workers_wake,
    .cpu_yield = lx_cpu_yield,
    .shutdown = lx_shutdown,
};

void hl_request_stop(int status)
{
    int expect = 0;
    if (__atomic_compare_exchange_n(&P.stop, &expect, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        P.status = status;
        __atomic_store_n(&P.stop, 2, __ATOMIC_RELEASE); /* status published */
    }
    hl_workers_request_stop();
    poke_loop();
}

/* ---- the loop --------------------------------------------------------------------------- */

/* The timerfd expired (loop thread): fire what is due; the kernel re-arms through hal_timer_arm. */
static void on_tfd(uv_poll_t *w, int status, int events)
{
    uint64_t expirations;
    ssize_t n = read(P.tfd, &expirations, sizeof expirations);
    (void)n; /* EAGAIN when a re-arm raced the wake-up: harmless */
    uint64_t d = __atomic_load_n(&P.deadline, __ATOMIC_ACQUIRE);
    /*
     * A hair early by the clocks' disagreement (set_tfd) the tick fires nothing
     * and re-arms the timerfd for the rest of the wait, under the kernel lock
     * that orders every hal_timer_arm.
     */
    if (d != UINT64_MAX && !__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE))
        k_timer_tick();
}

static void on_poke(uv_async_t *a)
{
    if (__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE)) {
        uv_stop(&P.loop);
        return;
    }
}

static void on_timeout(uv_timer_t *t)
{
    P.timed_out = true;
    hl_request_stop(-1);
}

static void on_signal(uv_signal_t *s, int signum)
{
    if (__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE))
        return;
    P.signal = signum;
    char msg[80];
    /* On a terminal the line follows the echoed ^C: start it on a line of its own. */
    int n =
        snprintf(msg, sizeof(msg), "%sorrery: %s received, shutting down\n", isatty(2) ? "\n" : "",
                 signum == SIGINT    ? "SIGINT"
                 : signum == SIGTERM ? "SIGTERM"
                                     : "signal");
    ssize_t w = write(2, msg, (size_t)n);
    (void)w;
    hl_request_stop(0);
}

/* The terminal was resized: the console server redraws its line for the new width. */
static void on_winch(uv_signal_t *s, int signum)
{
    hl_console_resized();
}

static void close_all(void)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&P.poke,   (uv_handle_t *)&P.tpoll,
                         (uv_handle_t *)&P.timeout, (uv_handle_t *)&P.sigint,
                         (uv_handle_t *)&P.sigterm, (uv_handle_t *)&P.sigwinch};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (hs[i]->loop == &P.loop && !uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
    uv_run(&P.loop, UV_RUN_DEFAULT);
    uv_loop_close(&P.loop);
    close(P.tfd);
}

/* ---- hl_run ----------------------------------------------------------------------------- */

unsigned hl_ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (unsigned)n;
}

unsigned hl_workers_for_cores(unsigned ncores)
{
    if (ncores < 1)
        return 1;
    return ncores > K_WORKERS_MAX ? K_WORKERS_MAX : ncores;
}

unsigned hl_default_workers(void)
{
    return hl_workers_for_cores(hl_ncpus());
}

void hl_run_config_init(hl_run_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->init_program = "init";
    cfg->console_in = 0;
    cfg->console_out = 1;
    cfg->spin_us = 50;
}

int hl_run(const hl_run_config_t *cfg)
{
    unsigned workers = cfg->workers ? cfg->workers : hl_default_workers();
    memset(&P, 0, sizeof(P));
    P.deadline = UINT64_MAX;
    P.clock = hl_clock_default();
    P.boot_ns = hl_clock_now(P.clock);
    if (cfg->stats)
        memset(cfg->stats, 0, sizeof(*cfg->stats));

    int rc = uv_loop_init(&P.loop);
    if (rc != 0) {
        fprintf(stderr, "orrery: libuv: %s\n", uv_strerror(rc));
        return OS_EIO;
    }
    uv_async_init(&P.loop, &P.poke, on_poke);
    P.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (P.tfd < 0) {
        fprintf(stderr, "orrery: timerfd: %s\n", strerror(errno));
        uv_loop_close(&P.loop);
        return OS_EIO;
    }
    uv_poll_init(&P.loop, &P.tpoll, P.tfd);
    uv_poll_start(&P.tpoll, UV_READABLE, on_tfd);
    uv_timer_init(&P.loop, &P.timeout);
    if (cfg->handle_signals) {
        uv_signal_init(&P.loop, &P.sigint);
        uv_signal_init(&P.loop, &P.sigterm);
        uv_signal_start(&P.sigint, on_signal, SIGINT);
        uv_signal_start(&P.sigterm, on_signal, SIGTERM);
        uv_signal_init(&P.loop, &P.sigwinch);
        uv_signal_start(&P.sigwinch, on_winch, SIGWINCH);
    }
    __atomic_store_n(&P.live, true, __ATOMIC_RELEASE);

    hal_host_set(&linux_platform);
    rc = hl_console_add(cfg->console_in, cfg->console_out);
    if (rc == 0 && cfg->net)
        rc = hl_net_add(cfg->net);
    if (rc == 0 && cfg->disk)
        rc = hl_blk_add(cfg->disk);
    if (rc == 0) {
        k_config_t kc = {
            .programs = cfg->programs,
            .init_program = cfg->init_program ? cfg->init_program : "init",
            .init_arg = cfg->init_arg,
            .init_arg_len = cfg->init_arg_len,
            .workers = workers,
            .policy = &k_sched_fifo,
            .trace = cfg->trace,
        };
        rc = k_boot(&kc);
    }
    if (rc != 0) {
        fprintf(stderr, "orrery: boot failed: %s\n", os_strerror(rc));
        long leaks = k_teardown();
        if (cfg->stats)
            cfg->stats->leaks = leaks;
        __atomic_store_n(&P.live, false, __ATOMIC_RELEASE);
        close_all();
        hal_host_set(NULL);
        return rc;
    }
    if (cfg->net) {
        char err[256] = "";
        rc = hl_net_start(&P.loop, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "orrery: %s\n", err);
            hl_net_stop();
            k_teardown();
            __atomic_store_n(&P.live, false, __ATOMIC_RELEASE);
            close_all();
            hal_host_set(NULL);
            return rc;
        }
    }
    if (cfg->disk) {
        char err[256] = "";
        rc = hl_blk_start(&P.loop, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "orrery: %s\n", err);
            hl_blk_stop();
            if (cfg->net)
                hl_net_stop();
            k_teardown();
            __atomic_store_n(&P.live, false, __ATOMIC_RELEASE);
            close_all();
            hal_host_set(NULL);
            return rc;
        }
    }
    if (cfg->on_boot)
        cfg->on_boot(cfg->self);
    if (cfg->timeout_ms)
        uv_timer_start(&P.timeout, on_timeout, cfg->timeout_ms, 0);

    hl_console_terminal(); /* before any task prints: the first prompt finds it raw */
    rc = hl_workers_start(workers, cfg->spin_us, cfg->pin_cpus);
    if (rc == 0)
        rc = hl_console_start();
    if (rc != 0) {
        fprintf(stderr, "orrery: cannot start threads: %s\n", strerror(-rc));
        hl_request_stop(1);
    }
    if (!__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE))
        uv_run(&P.loop, UV_RUN_DEFAULT);

    /* Stop order: workers (after their current event), then the reader, then the kernel. */
    hl_workers_request_stop();
    hl_workers_join();
    hl_console_stop();
    if (cfg->net)
        hl_net_stop();
    if (cfg->disk)
        hl_blk_stop(); /* after the workers: no request can arrive while it drains */
    k_stats_t ks;
    k_get_stats(&ks);
    long leaks = k_teardown();
    __atomic_store_n(&P.live, false, __ATOMIC_RELEASE);
    close_all();
    hal_host_set(NULL);

    while (__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE) != 2)
        ; /* NEVER spins: the stopper published the status before the loop saw it */
    if (cfg->stats) {
        cfg->stats->leaks = leaks;
        cfg->stats->events = ks.events;
        cfg->stats->messages = ks.messages;
        cfg->stats->wakes = hl_workers_syscall_wakes();
        cfg->stats->console_waits = hl_console_full_waits();
        cfg->stats->net_rx_dropped = cfg->net ? hl_net_rx_dropped() : 0;
        cfg->stats->net_tx_full = cfg->net ? hl_net_tx_full() : 0;
        if (cfg->disk) {
            uint64_t bc[6];
            hl_blk_counts(bc);
            cfg->stats->blk_reads = bc[0];
            cfg->stats->blk_writes = bc[1];
            cfg->stats->blk_flushes = bc[2];
            cfg->stats->blk_bytes = bc[3];
            cfg->stats->blk_full = bc[4];
            cfg->stats->blk_post_waits = bc[5];
        }
        cfg->stats->timed_out = P.timed_out;
        cfg->stats->signal = P.signal;
    }
    return P.status;
}
