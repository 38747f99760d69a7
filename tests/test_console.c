/* test_console.c — the console server: device codes, input pulled by its client, nothing dropped
 * (also when the console is killed), end of input, garbage, output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hal/console.h>
#include <iface/console.h>
#include <iface/init_client.h>
#include <image.h>
#include <k/kernel.h>
#include <sim/sim.h>

/* The console server copies the HAL's codes (servers see no <hal/...>): they must agree. */
_Static_assert((int)CONSOLE_LINE_MAX == (int)HAL_CONSOLE_LINE_MAX, "interface line limit");

static struct {
    char lines[256][32];
    int nlines;
    uint32_t overlong;
    int eof;
    uint32_t eof_lines;
    int errors;
    int flushed;
    bool garbage; /* reader: send garbage once connected */
    os_handle_t chan;
    int kill_after;       /* reader: ask init to kill the console after this many lines (0: no) */
    bool kill_at_eof;     /* reader: ask init to kill the console at the first eof */
    int kills;            /* kill requests sent */
    int reconnects;       /* connects after the console went away */
    const char *manifest; /* NULL: console plus a reader that may shut down */
} G;

/* Ask init to kill the console (the reader may: 'init' is in its reach), as the shell's
 * `kill console` does. */
static void kill_console(os_ctx_t *ctx)
{
    init_kill_t k = {100 + (uint32_t)G.kills, k_task_find("console")};
    assert_true(k.task != 0);
    assert_int_equal(0, init_kill_send(ctx, init_channel(ctx), &k));
    G.kills++;
}

/* Pull the next input item, as the shell does. */
static void read_one(os_ctx_t *ctx)
{
    console_read_t r = {1};
    assert_int_equal(0, console_read_send(ctx, G.chan, &r));
}

/* Connects to the console one second after it starts. */
static void reader_start(os_ctx_t *ctx)
{
    os_handle_t t;
    assert_int_equal(0, os_timer_create(ctx, &t));
    assert_int_equal(0, os_timer_set(ctx, t, os_clock_now(ctx) + 1000000000));
}

static void garbage(os_ctx_t *ctx, os_handle_t ch)
{
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    for (uint32_t type = 0; type <= 8; type++) {
        os_send(ctx, ch, type, junk, 1, NULL, 0);
        os_send(ctx, ch, type, junk, sizeof junk, NULL, 0);
    }
    console_write_t w;
    w.data_len = 6;
    memcpy(w.data, "hello\n", 6);
    assert_int_equal(0, console_write_send(ctx, ch, &w));
    console_flush_t f = {5};
    assert_int_equal(0, console_flush_send(ctx, ch, &f));
}

static void reader_event(os_ctx_t *ctx, const os_event_t *ev)
{
    union {
        init_connected_t c;
        console_line_t line;
        console_overlong_t ol;
        console_eof_t eof;
        console_error_t err;
        console_flushed_t fl;
    } m;
    if (ev->kind == OS_EV_TIMER) {
        assert_int_equal(0, init_connect_iface(ctx, 1, &console_iface));
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED && ev->handle == G.chan) {
        /* the console ended: connect again (init answers once a new one registers) */
        os_handle_close(ctx, G.chan);
        G.chan = OS_HANDLE_NONE;
        G.reconnects++;
        assert_int_equal(0, init_connect_iface(ctx, 2, &console_iface));
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &m.c) == 0) {
        G.chan = m.c.chan;
        if (G.garbage)
            garbage(ctx, m.c.chan);
        read_one(ctx);
    } else if (console_line_decode(ev, &m.line) == 0 && G.nlines < 256) {
        snprintf(G.lines[G.nlines++], 32, "%.31s", m.line.text);
        if (G.kill_after && G.nlines == G.kill_after && G.kills == 0)
            kill_console(ctx); /* with the next lines in flight */
        read_one(ctx);
    } else if (console_overlong_decode(ev, &m.ol) == 0) {
        G.overlong = m.ol.length;
        read_one(ctx);
    } else if (console_eof_decode(ev, &m.eof) == 0) {
        G.eof++;
        G.eof_lines = m.eof.lines;
        if (G.kill_at_eof && G.kills == 0)
            kill_console(ctx);
    } else if (console_error_decode(ev, &m.err) == 0) {
        assert_int_equal(OS_EPROTO, m.err.status);
        G.errors++;
    } else if (console_flushed_decode(ev, &m.fl) == 0) {
        assert_int_equal(5, m.fl.token);
        G.flushed++;
    }
}

static const os_program_t reader = {"reader", 0, reader_start, reader_event};
static const os_program_t *const image[] = {&orrery_init, &orrery_console, &reader, NULL};

static void boot(const char *input)
{
    /* the reader may shut down, so the OS does not end at end of input (docs/manifest.md) */
    const char *manifest =
        G.manifest ? G.manifest
                   : "program console restart=always\nprogram reader reach=console,init\n";
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = image;
    cfg.init_arg = manifest;
    cfg.init_arg_len = strlen(manifest);
    cfg.seed = 11;
    cfg.console_input = input;
    cfg.console_eof = true;
    assert_int_equal(0, sim_boot(&cfg));
}

static int setup(void **state)
{
    memset(&G, 0, sizeof G);
    return 0;
}

static void test_input_waits_for_a_client(void **state)
{
    char input[3000];
    snprintf(input, sizeof input, "first\nsecond\n%02000d\nthird", 0);
    boot(input);
    sim_run(100000);
    assert_true(sim_now() >= 1000000000); /* the reader connected late */
    assert_int_equal(3, G.nlines);
    assert_string_equal("first", G.lines[0]);
    assert_string_equal("second", G.lines[1]);
    assert_string_equal("third", G.lines[2]);
    assert_int_equal(2000, G.overlong);
    assert_int_equal(1, G.eof);
    assert_int_equal(3, G.eof_lines);
    assert_null(strstr(sim_console_output(NULL), "register console")); /* registered quietly */
    assert_int_equal(0, sim_teardown());
}

static void test_input_is_never_dropped_and_eof_is_kept(void **state)
{
    /* more than the kernel's device queue (128): the console holds the device while its client
     * has not asked, input waits at the platform, and every line arrives in order */
    enum { N = 250 };
    char *input = calloc(N, 8);
    for (int i = 0; i < N; i++)
        sprintf(input + strlen(input), "l%d\n", i);
    boot(input);
    sim_run(1000000);
    assert_int_equal(N, G.nlines);
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "l%d", i);
        assert_string_equal(want, G.lines[i]);
    }
    assert_int_equal(1, G.eof);
    assert_int_equal(N, G.eof_lines);
    assert_null(strstr(sim_console_output(NULL), "dropped"));
    assert_int_equal(0, sim_teardown());
    free(input);
}

static void test_garbage_is_answered_and_output_still_works(void **state)
{
    G.garbage = true;
    boot(NULL);
    sim_run(100000);
    /* types 4 (write) and 5 (flush) with 1 byte are short; with 64 bytes 0xff, write's length
     * 0xffff is past its limit and flush is too long: every one of the 18 is malformed */
    assert_int_equal(18, G.errors);
    assert_int_equal(1, G.flushed);
    assert_non_null(strstr(sim_console_output(NULL), "hello\n"));
    assert_int_equal(0, sim_teardown());
}

static char *numbered_lines(int n)
{
    char *input = calloc((size_t)n, 8);
    for (int i = 0; i < n; i++)
        sprintf(input + strlen(input), "l%d\n", i);
    return input;
}

static void test_killing_the_console_loses_no_input(void **state)
{
    /* the console is killed with lines in the kernel's queue and at the platform: its successor
     * reads on from the device, and every line arrives once, in order */
    enum { N = 200 };
    char *input = numbered_lines(N);
    G.kill_after = 50;
    boot(input);
    sim_run(1000000);
    assert_int_equal(1, G.kills);
    assert_int_equal(1, G.reconnects);
    assert_non_null(strstr(sim_console_output(NULL), "console (task 2) killed; restarting"));
    assert_int_equal(N, G.nlines);
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "l%d", i);
        assert_string_equal(want, G.lines[i]);
    }
    assert_int_equal(1, G.eof);
    assert_int_equal(0, sim_teardown());
    free(input);
}

static void test_a_restarted_console_learns_input_ended(void **state)
{
    /* end of input was delivered, then the console died: the kernel tells its successor */
    G.kill_at_eof = true;
    boot("a\nb\n");
    sim_run(1000000);
    assert_int_equal(1, G.reconnects);
    assert_int_equal(2, G.nlines);
    assert_int_equal(2, G.eof);
    assert_int_equal(0, sim_teardown());
}

static void test_input_end_with_a_reader_that_may_not_shut_down(void **state)
{
    G.manifest = "program console\nprogram reader reach=console\n";
    boot("a\nb\n");
    int status;
    sim_run(1000000);
    assert_true(sim_shutdown_status(&status));
    assert_int_equal(OS_EXIT_INPUT_ENDED, status);
    assert_int_equal(2, G.nlines); /* the reader got every line first */
    assert_non_null(strstr(sim_console_output(NULL),
                           "[init] console input ended and no task can act on it (reader may not "
                           "shut down: no 'init' in its reach (manifest line 2)); shutting down "
                           "with status 120\n"));
    assert_int_equal(0, sim_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_input_waits_for_a_client, setup),
        cmocka_unit_test_setup(test_input_is_never_dropped_and_eof_is_kept, setup),
        cmocka_unit_test_setup(test_garbage_is_answered_and_output_still_works, setup),
        cmocka_unit_test_setup(test_killing_the_console_loses_no_input, setup),
        cmocka_unit_test_setup(test_a_restarted_console_learns_input_ended, setup),
        cmocka_unit_test_setup(test_input_end_with_a_reader_that_may_not_shut_down, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
