/* test_hal_linux.c — the hosted platform: line splitting, console via the kernel, timers, wakes. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <hal/console.h>
#include <hl/clock.h>
#include <hl/hosted.h>
#include <k/kernel.h>

/* ---- hl_lines on its own ----------------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

typedef struct writer {
    int fd;
    const char *data;
    size_t len;
} writer_t;

/* Feed a pipe from another thread, in odd-sized pieces, then close it. */
static void *writer_main(void *arg)
{
    writer_t *w = arg;
    size_t off = 0, piece = 1;
    while (off < w->len) {
        size_t n = w->len - off < piece ? w->len - off : piece;
        write_all(w->fd, w->data + off, n);
        off += n;
        piece = piece * 3 % 1000 + 1;
    }
    close(w->fd);
    return NULL;
}

static char *overlong_input(size_t n)
{
    char *big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "a\nbb\r\n\n");
    size_t off = strlen(big);
    memset(big + off, 'x', n);
    off += n;
    strcpy(big + off, "\nlast");
    return big;
}

static void check_lines(int fd, int cancel_fd)
{
    static hl_lines_t r;
    char line[16];
    size_t len;
    hl_lines_init(&r, fd, cancel_fd);
    assert_int_equal(1, hl_lines_next(&r, line, sizeof(line), &len));
    assert_int_equal(1, len);
    assert_memory_equal("a", line, 1);
    assert_int_equal(1, hl_lines_next(&r, line, sizeof(line), &len));
    assert_int_equal(2, len); /* "\r\n" counts as the end of line */
    assert_memory_equal("bb", line, 2);
    assert_int_equal(1, hl_lines_next(&r, line, sizeof(line), &len));
    assert_int_equal(0, len);
    assert_int_equal(1, hl_lines_next(&r, line, sizeof(line), &len));
    assert_int_equal(20000, len); /* real length, truncated content */
    assert_memory_equal("xxxxxxxxxxxxxxxx", line, sizeof(line));
    assert_int_equal(1, hl_lines_next(&r, line, sizeof(line), &len));
    assert_int_equal(4, len); /* last line without '\n' */
    assert_memory_equal("last", line, 4);
    assert_int_equal(0, hl_lines_next(&r, line, sizeof(line), &len));
    assert_int_equal(0, hl_lines_next(&r, line, sizeof(line), &len));
}

static void lines_from_pipe(void **state)
{
    char *big = overlong_input(20000);
    int p[2];
    assert_int_equal(0, pipe(p));
    writer_t w = {p[1], big, strlen(big)};
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, writer_main, &w));
    check_lines(p[0], -1);
    pthread_join(t, NULL);
    close(p[0]);
    free(big);
}

static void lines_from_file(void **state)
{
    char *big = overlong_input(20000);
    FILE *f = tmpfile();
    assert_non_null(f);
    write_all(fileno(f), big, strlen(big));
    assert_int_equal(0, lseek(fileno(f), 0, SEEK_SET));
    int cancel[2];
    assert_int_equal(0, pipe(cancel));
    check_lines(fileno(f), cancel[0]); /* poll on a regular file too */
    fclose(f);
    close(cancel[0]);
    close(cancel[1]);
    free(big);
}

static void lines_cancelled(void **state)
{
    static hl_lines_t r;
    int in[2], cancel[2];
    assert_int_equal(0, pipe(in));
    assert_int_equal(0, pipe(cancel));
    hl_lines_init(&r, in[0], cancel[0]);
    write_all(cancel[1], "x", 1);
    char line[8];
    size_t len;
    assert_int_equal(-1, hl_lines_next(&r, line, sizeof(line), &len));
    for (int i = 0; i < 2; i++) {
        close(in[i]);
        close(cancel[i]);
    }
}

/* ---- the console device through the kernel ------------------------------------------------ */

enum { MANY_LINES = 300, MAX_SEEN = MANY_LINES + 8 };

static struct {
    int codes[MAX_SEEN];
    uint32_t values[MAX_SEEN]; /* line number parsed from the text, or overlong length */
    int n;
} seen;

typedef struct con_reader {
    os_handle_t dev;
    os_handle_t timer;
    int polls;
} con_reader_t;

/* Opens the console only once the reader found the input queue full (or after 10 s). */
static void con_start(os_ctx_t *ctx)
{
    con_reader_t *s = os_state(ctx);
    OS_ASSERT(ctx, os_timer_create(ctx, &s->timer) == 0);
    OS_ASSERT(ctx, os_timer_set(ctx, s->timer, os_clock_now(ctx) + 1000000) == 0);
}

static void con_event(os_ctx_t *ctx, const os_event_t *ev)
{
    con_reader_t *s = os_state(ctx);
    if (ev->kind == OS_EV_TIMER) {
        if (hl_console_full_waits() == 0 && ++s->polls < 10000) {
            OS_ASSERT(ctx, os_timer_set(ctx, s->timer, os_clock_now(ctx) + 1000000) == 0);
            return;
        }
        OS_ASSERT(ctx, os_device_open(ctx, "console", &s->dev) == 0);
        static const char hello[] = "console says hello\n";
        OS_ASSERT(ctx, os_device_write(ctx, s->dev, HAL_CONSOLE_WRITE, hello, strlen(hello)) == 0);
        return;
    }
    if (ev->kind != OS_EV_DEVICE || seen.n >= MAX_SEEN)
        return;
    uint32_t v = 0;
    if (ev->type == HAL_CONSOLE_LINE) {
        char buf[32] = "";
        memcpy(buf, ev->data, ev->len < sizeof(buf) - 1 ? ev->len : sizeof(buf) - 1);
        v = (uint32_t)strtoul(buf + 4, NULL, 10); /* "line123" */
    } else if (ev->type == HAL_CONSOLE_OVERLONG) {
        memcpy(&v, ev->data, sizeof(v));
    }
    seen.codes[seen.n] = (int)ev->type;
    seen.values[seen.n] = v;
    seen.n++;
    if (ev->type == HAL_CONSOLE_EOF)
        os_shutdown(ctx, 5);
}

static const os_program_t con_prog = {"con-test", sizeof(con_reader_t), con_start, con_event};
static const os_program_t *const con_programs[] = {&con_prog, NULL};

static void console_lines_through_kernel(void **state)
{
    /* MANY_LINES lines, an overlong one in the middle, then EOF. */
    size_t cap = MANY_LINES * 16 + 5000;
    char *in = malloc(cap);
    size_t off = 0;
    for (int i = 0; i < MANY_LINES; i++) {
        off += (size_t)sprintf(in + off, "line%d\n", i);
        if (i == 100) {
            memset(in + off, 'y', 3000);
            off += 3000;
            in[off++] = '\n';
        }
    }
    int ip[2], op[2];
    assert_int_equal(0, pipe(ip));
    assert_int_equal(0, pipe(op));
    writer_t w = {ip[1], in, off};
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, writer_main, &w));

    memset(&seen, 0, sizeof(seen));
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    hl_run_stats_t stats;
    rc.programs = con_programs;
    rc.init_program = "con-test";
    rc.workers = 2;
    rc.console_in = ip[0];
    rc.console_out = op[1];
    rc.timeout_ms = 30000;
    rc.stats = &stats;
    assert_int_equal(5, hl_run(&rc));
    pthread_join(t, NULL);
    assert_int_equal(0, stats.leaks);
    assert_true(stats.console_waits > 0); /* the OS_EFULL / resume path ran */

    assert_int_equal(MANY_LINES + 2, seen.n);
    int k = 0;
    for (int i = 0; i < MANY_LINES; i++) {
        assert_int_equal(HAL_CONSOLE_LINE, seen.codes[k]);
        assert_int_equal(i, seen.values[k]);
        k++;
        if (i == 100) {
            assert_int_equal(HAL_CONSOLE_OVERLONG, seen.codes[k]);
            assert_int_equal(3000, seen.values[k]);
            k++;
        }
    }
    assert_int_equal(HAL_CONSOLE_EOF, seen.codes[k]);

    close(op[1]);
    char out[256] = "";
    ssize_t n = read(op[0], out, sizeof(out) - 1);
    assert_true(n > 0);
    assert_non_null(strstr(out, "console says hello\n"));
    close(op[0]);
    close(ip[0]);
    free(in);
}

/* ---- timers ------------------------------------------------------------------------------ */

static struct {
    uint64_t deadline[3];
    uint64_t fired_at[3];
    int order[3];
    int n;
} tm;

typedef struct timer_task {
    os_handle_t t[3];
} timer_task_t;

static void timers_start(os_ctx_t *ctx)
{
    timer_task_t *s = os_state(ctx);
    uint64_t now = os_clock_now(ctx);
    /* Armed out of order: 15 ms, 2 ms, 7 ms; the 2 ms one replaces an earlier 40 ms arm. */
    const uint64_t ms[3] = {15, 2, 7};
    for (int i = 0; i < 3; i++) {
        OS_ASSERT(ctx, os_timer_create(ctx, &s->t[i]) == 0);
        if (i == 1)
            OS_ASSERT(ctx, os_timer_set(ctx, s->t[i], now + 40000000) == 0);
        tm.deadline[i] = now + ms[i] * 1000000;
        OS_ASSERT(ctx, os_timer_set(ctx, s->t[i], tm.deadline[i]) == 0);
    }
}

static void timers_event(os_ctx_t *ctx, const os_event_t *ev)
{
    timer_task_t *s = os_state(ctx);
    if (ev->kind != OS_EV_TIMER)
        return;
    for (int i = 0; i < 3; i++) {
        if (s->t[i] == ev->handle && tm.n < 3) {
            tm.fired_at[tm.n] = os_clock_now(ctx);
            tm.order[tm.n++] = i;
        }
    }
    if (tm.n == 3)
        os_shutdown(ctx, 0);
}

static const os_program_t timers_prog = {"timers", sizeof(timer_task_t), timers_start,
                                         timers_event};
static const os_program_t *const timer_programs[] = {&timers_prog, NULL};

static void timers_fire_in_order(void **state)
{
    memset(&tm, 0, sizeof(tm));
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    hl_run_stats_t stats;
    rc.programs = timer_programs;
    rc.init_program = "timers";
    rc.workers = 2;
    rc.console_in = -1;
    rc.console_out = 2;
    rc.timeout_ms = 30000;
    rc.stats = &stats;
    assert_int_equal(0, hl_run(&rc));
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(3, tm.n);
    const int expect[3] = {1, 2, 0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(expect[i], tm.order[i]);
        assert_true(tm.fired_at[i] >= tm.deadline[tm.order[i]]); /* never early */
    }
}

/* ---- wake-ups across workers ---------------------------------------------------------------- */

enum { WAKE_ROUNDS = 5000, WAKE_WORKERS = 4 };

static long wake_pongs;

typedef struct wake_side {
    os_handle_t chan;
    uint32_t n;
} wake_side_t;

static void wake_start(os_ctx_t *ctx)
{
    wake_side_t *s = os_state(ctx);
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    int worker;
    memcpy(&worker, arg, sizeof(worker));
    k_task_pin(os_task_id(ctx), worker);
    s->chan = os_initial_handle(ctx, 0);
    if (worker == 0) /* the pinger starts */
        OS_ASSERT(ctx, os_send(ctx, s->chan, 1, NULL, 0, NULL, 0) == 0);
}

static void wake_event(os_ctx_t *ctx, const os_event_t *ev)
{
    wake_side_t *s = os_state(ctx);
    if (ev->kind == OS_EV_PEER_CLOSED)
        os_exit(ctx, 0);
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->type == 2 && ++s->n == WAKE_ROUNDS) {
        __atomic_store_n(&wake_pongs, (long)s->n, __ATOMIC_RELAXED);
        os_exit(ctx, 0);
    }
    OS_ASSERT(ctx, os_send(ctx, s->chan, ev->type == 1 ? 2 : 1, NULL, 0, NULL, 0) == 0);
}

static void wake_init_start(os_ctx_t *ctx)
{
    os_handle_t a, b, t;
    OS_ASSERT(ctx, os_channel_create(ctx, &a, &b) == 0);
    int w0 = 0, w1 = WAKE_WORKERS - 1;
    os_spawn_args_t sa = {
        .program = "wake-side", .handles = &a, .nhandles = 1, .arg = &w0, .arg_len = sizeof(w0)};
    OS_ASSERT(ctx, os_spawn(ctx, &sa, &t) == 0);
    sa.handles = &b;
    sa.arg = &w1;
    OS_ASSERT(ctx, os_spawn(ctx, &sa, &t) == 0);
}

static void wake_init_event(os_ctx_t *ctx, const os_event_t *ev)
{
    int *exited = os_state(ctx);
    if (ev->kind == OS_EV_TASK_EXIT && ++*exited == 2)
        os_shutdown(ctx, 0);
}

static const os_program_t wake_side = {"wake-side", sizeof(wake_side_t), wake_start, wake_event};
static const os_program_t wake_init = {"wake-init", sizeof(int), wake_init_start, wake_init_event};
static const os_program_t *const wake_programs[] = {&wake_init, &wake_side, NULL};

static void wake_across_workers(void **state)
{
    /* spin 0: every idle worker really sleeps, so each round trip needs real wake-ups. */
    for (unsigned spin = 0; spin <= 20; spin += 20) {
        wake_pongs = 0;
        hl_run_config_t rc;
        hl_run_config_init(&rc);
        hl_run_stats_t stats;
        rc.programs = wake_programs;
        rc.init_program = "wake-init";
        rc.workers = WAKE_WORKERS;
        rc.console_in = -1;
        rc.console_out = 2;
        rc.spin_us = spin;
        rc.timeout_ms = 60000;
        rc.stats = &stats;
        assert_int_equal(0, hl_run(&rc));
        assert_false(stats.timed_out);
        assert_int_equal(0, stats.leaks);
        assert_int_equal(WAKE_ROUNDS, wake_pongs);
        if (spin == 0)
            assert_true(stats.wakes > 0);
    }
}

/* ---- stopping ------------------------------------------------------------------------------ */

static void idle_start(os_ctx_t *ctx)
{
}

static void idle_event(os_ctx_t *ctx, const os_event_t *ev)
{
}

static const os_program_t idle_prog = {"idle", 0, idle_start, idle_event};
static const os_program_t *const idle_programs[] = {&idle_prog, NULL};

static void timeout_ends_run(void **state)
{
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    hl_run_stats_t stats;
    rc.programs = idle_programs;
    rc.init_program = "idle";
    rc.workers = 2;
    rc.console_in = -1;
    rc.console_out = 2;
    rc.timeout_ms = 30;
    rc.stats = &stats;
    assert_int_equal(-1, hl_run(&rc));
    assert_true(stats.timed_out);
    assert_int_equal(0, stats.leaks);
}

/* Raised from inside a task: by then the loop's signal watchers are installed. */
static void sig_start(os_ctx_t *ctx)
{
    kill(getpid(), SIGTERM);
}

static const os_program_t sig_prog = {"sig", 0, sig_start, idle_event};
static const os_program_t *const sig_programs[] = {&sig_prog, NULL};

static void sigterm_ends_run(void **state)
{
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    hl_run_stats_t stats;
    rc.programs = sig_programs;
    rc.init_program = "sig";
    rc.workers = 2;
    rc.console_in = -1;
    rc.console_out = 2;
    rc.handle_signals = true;
    rc.timeout_ms = 30000;
    rc.stats = &stats;
    assert_int_equal(0, hl_run(&rc));
    assert_int_equal(SIGTERM, stats.signal);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
}

static void missing_init_fails_boot(void **state)
{
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = idle_programs;
    rc.init_program = "no-such-program";
    rc.console_in = -1;
    rc.console_out = 2;
    assert_int_equal(OS_ENOENT, hl_run(&rc));
}

static void quick_start(os_ctx_t *ctx)
{
    os_shutdown(ctx, 9);
}

static const os_program_t quick_prog = {"quick", 0, quick_start, NULL};
static const os_program_t *const quick_programs[] = {&quick_prog, NULL};

/* The default worker count boots on any host: one per core, capped at the kernel's limit. */
static void default_workers_fit_the_kernel(void **state)
{
    assert_int_equal(1, hl_workers_for_cores(0));
    assert_int_equal(1, hl_workers_for_cores(1));
    assert_int_equal(2, hl_workers_for_cores(2));
    assert_int_equal(K_WORKERS_MAX, hl_workers_for_cores(K_WORKERS_MAX));
    assert_int_equal(K_WORKERS_MAX, hl_workers_for_cores(96)); /* a 96-core host */
    assert_int_equal(K_WORKERS_MAX, hl_workers_for_cores(4096));
    assert_true(hl_default_workers() >= 1 && hl_default_workers() <= K_WORKERS_MAX);

    /* what a 96-core host gets by default really boots */
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = quick_programs;
    rc.init_program = "quick";
    rc.console_in = -1;
    rc.console_out = 2;
    rc.workers = hl_workers_for_cores(96);
    assert_int_equal(9, hl_run(&rc));
    rc.workers = K_WORKERS_MAX + 1; /* one more does not */
    assert_int_equal(OS_EINVAL, hl_run(&rc));
}

/* ---- a terminal: raw mode, its size, log lines around the edited row ------------------- */

static struct {
    uint32_t flags, cols;
    int infos;
    int tty;            /* the terminal's fd */
    tcflag_t run_lflag; /* its local modes while the OS runs */
} term_seen;

static void term_start(os_ctx_t *ctx)
{
    os_handle_t *dev = os_state(ctx);
    assert_int_equal(0, os_device_open(ctx, "console", dev));
}

static void term_event(os_ctx_t *ctx, const os_event_t *ev)
{
    os_handle_t *dev = os_state(ctx);
    if (ev->kind != OS_EV_DEVICE || ev->type != HAL_CONSOLE_INFO)
        return;
    hal_console_info_t info;
    assert_int_equal(sizeof info, ev->len);
    memcpy(&info, ev->data, sizeof info);
    term_seen.flags = info.flags;
    term_seen.cols = info.cols;
    if (term_seen.infos++ == 0) {
        struct termios now;
        assert_int_equal(0, tcgetattr(term_seen.tty, &now));
        term_seen.run_lflag = now.c_lflag;
        /* the console server's part: the row it shows, then someone logs */
        assert_int_equal(0, os_device_write(ctx, *dev, HAL_CONSOLE_ROW, "\rprompt> abc", 12));
        os_log(ctx, "a log line");
        assert_int_equal(0, os_device_write(ctx, *dev, HAL_CONSOLE_INFO, NULL, 0)); /* again */
        return;
    }
    assert_int_equal(0, os_device_write(ctx, *dev, HAL_CONSOLE_ROW, NULL, 0));
    os_log(ctx, "no row now");
    os_shutdown(ctx, 7);
}

static const os_program_t term_prog = {"term-test", sizeof(os_handle_t), term_start, term_event};
static const os_program_t *const term_programs[] = {&term_prog, NULL};

static void terminal_goes_raw_and_comes_back(void **state)
{
    int master, slave;
    struct winsize ws = {.ws_row = 20, .ws_col = 50};
    assert_int_equal(0, openpty(&master, &slave, NULL, NULL, &ws));
    struct termios before, during;
    assert_int_equal(0, tcgetattr(slave, &before));

    memset(&term_seen, 0, sizeof(term_seen));
    term_seen.tty = slave;
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = term_programs;
    rc.init_program = "term-test";
    rc.workers = 1;
    rc.console_in = slave;
    rc.console_out = slave;
    rc.timeout_ms = 30000;
    assert_int_equal(7, hl_run(&rc));

    assert_int_equal(2, term_seen.infos);
    assert_int_equal(HAL_CONSOLE_TERMINAL, term_seen.flags);
    assert_int_equal(50, term_seen.cols);
    assert_int_equal(0, term_seen.run_lflag & (ICANON | ECHO | ISIG)); /* raw while it ran */
    assert_int_not_equal(0, before.c_lflag & ICANON);
    assert_int_equal(0, tcgetattr(slave, &during)); /* after the run: as it was */
    assert_int_equal(before.c_iflag, during.c_iflag);
    assert_int_equal(before.c_oflag, during.c_oflag);
    assert_int_equal(before.c_cflag, during.c_cflag);
    assert_int_equal(before.c_lflag, during.c_lflag);
    assert_memory_equal(before.c_cc, during.c_cc, sizeof before.c_cc);

    char out[4096];
    fcntl(master, F_SETFL, O_NONBLOCK);
    ssize_t n = read(master, out, sizeof(out) - 1);
    assert_true(n > 0);
    out[n] = 0;
    /* the log line clears the row, then draws it again; without a row it is just printed */
    assert_non_null(strstr(out, "\r\x1b[K[term-test] a log line\r\n\rprompt> abc"));
    assert_non_null(strstr(out, "prompt> abc[term-test] no row now\r\n"));
    close(master);
    close(slave);
}

/* ---- the kernel clock (hl/clock.h) ------------------------------------------------------- */

/* How far a clock read may sit outside the CLOCK_MONOTONIC reads around it. */
#define CLOCK_AGREE_NS (250u * 1000u)

static uint64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One read of c, bracketed by CLOCK_MONOTONIC: it must fall between them, give or take `tol`. */
static uint64_t read_agrees(hl_clock_t *c, uint64_t tol)
{
    uint64_t before = mono_now(), v = hl_clock_now(c), after = mono_now();
    assert_true(v + tol >= before);
    assert_true(v <= after + tol);
    return v;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/*
 * Read c in a loop for at least `ms` of CLOCK_MONOTONIC: it never goes back
 * and stays with CLOCK_MONOTONIC within tol; sleeping between reads too.
 */
static void clock_tracks_monotonic(hl_clock_t *c, unsigned ms, uint64_t tol)
{
    uint64_t start = mono_now(), last = 0;
    unsigned i = 0;

    while (mono_now() - start < (uint64_t)ms * 1000000u) {
        uint64_t v = read_agrees(c, tol);
        assert_true(v >= last);
        last = v;
        if (++i % 4096 == 0)
            sleep_ms(1);
    }
}

static void clock_tsc_calibrates_and_agrees(void **state)
{
    (void)state;
    hl_clock_t c;

    if (!hl_clock_tsc_invariant())
        skip(); /* this CPU's TSC is no clock: clock_fallback covers what runs here */
    hl_clock_init(&c, true);
    assert_int_equal(HL_CLOCK_CALIBRATING, hl_clock_mode(&c));
    /* Past the calibration span: the clock reads the TSC from then on. */
    clock_tracks_monotonic(&c, HL_CLOCK_CALIBRATE_NS / 1000000 + 5, CLOCK_AGREE_NS);
    /* The switch happens on a read past the span (a preempted loop may have made none yet). */
    uint64_t last = read_agrees(&c, CLOCK_AGREE_NS);
    assert_int_equal(HL_CLOCK_TSC, hl_clock_mode(&c));
    assert_true(read_agrees(&c, CLOCK_AGREE_NS) >= last);
    /* Across a sleep and several resync spans it keeps agreeing: the slewing holds it. */
    uint64_t a = read_agrees(&c, CLOCK_AGREE_NS);
    sleep_ms(3 * HL_CLOCK_RESYNC_NS / 1000000);
    uint64_t b = read_agrees(&c, CLOCK_AGREE_NS);
    assert_true(b > a);
    clock_tracks_monotonic(&c, 2 * HL_CLOCK_RESYNC_NS / 1000000, CLOCK_AGREE_NS);
    assert_int_equal(HL_CLOCK_TSC, hl_clock_mode(&c));
}

/* Several threads reading one clock while it calibrates and resyncs: each sees it go forward. */
static void *clock_reader(void *arg)
{
    clock_tracks_monotonic(arg, HL_CLOCK_CALIBRATE_NS / 1000000 + HL_CLOCK_RESYNC_NS / 1000000 + 20,
                           CLOCK_AGREE_NS);
    return NULL;
}

static void clock_threads_agree(void **state)
{
    (void)state;
    hl_clock_t c;
    pthread_t t[3];

    hl_clock_init(&c, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(0, pthread_create(&t[i], NULL, clock_reader, &c));
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
}

static void clock_fallback(void **state)
{
    (void)state;
    hl_clock_t c;

    hl_clock_init(&c, false);
    assert_int_equal(HL_CLOCK_MONOTONIC, hl_clock_mode(&c));
    /* It is CLOCK_MONOTONIC itself: every read lies between the two around it. */
    clock_tracks_monotonic(&c, HL_CLOCK_CALIBRATE_NS / 1000000 + 5, 0);
    assert_int_equal(HL_CLOCK_MONOTONIC, hl_clock_mode(&c));
}

/* ORRERY_HOSTED_CLOCK=monotonic keeps the process's clock on clock_gettime. */
static void clock_default_obeys_environment(void **state)
{
    (void)state;
    hl_clock_t *c = hl_clock_default();

    if (getenv("ORRERY_HOSTED_CLOCK") && strcmp(getenv("ORRERY_HOSTED_CLOCK"), "monotonic") == 0)
        assert_int_equal(HL_CLOCK_MONOTONIC, hl_clock_mode(c));
    else
        assert_int_equal(hl_clock_tsc_invariant() ? 1 : 0, hl_clock_mode(c) != HL_CLOCK_MONOTONIC);
    read_agrees(c, CLOCK_AGREE_NS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_from_pipe),         cmocka_unit_test(lines_from_file),
        cmocka_unit_test(lines_cancelled),         cmocka_unit_test(console_lines_through_kernel),
        cmocka_unit_test(timers_fire_in_order),    cmocka_unit_test(wake_across_workers),
        cmocka_unit_test(timeout_ends_run),        cmocka_unit_test(sigterm_ends_run),
        cmocka_unit_test(missing_init_fails_boot), cmocka_unit_test(default_workers_fit_the_kernel),
        cmocka_unit_test(terminal_goes_raw_and_comes_back),
        cmocka_unit_test(clock_tsc_calibrates_and_agrees),
        cmocka_unit_test(clock_threads_agree),
        cmocka_unit_test(clock_fallback),
        cmocka_unit_test(clock_default_obeys_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
