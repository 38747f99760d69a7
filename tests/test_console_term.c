/* test_console_term.c — the console server and the shell at a terminal, on the simulator: the
 * device says it is one (HAL_CONSOLE_INFO) and posts keystrokes; lines are edited, completed,
 * cancelled, output escaped, Ctrl-C stops top, Ctrl-D shuts down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hal/console.h>
#include <image.h>
#include <k/kernel.h>
#include <sim/sim.h>

enum { CONSOLE_DEV = 1 }; /* sim_boot registers the console first (device ids start at 1) */

static int setup(void **state)
{
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = orrery_programs;
    cfg.init_arg = orrery_default_manifest;
    cfg.init_arg_len = strlen(orrery_default_manifest);
    cfg.seed = 7;
    assert_int_equal(0, sim_boot(&cfg));
    hal_console_info_t info = {.flags = HAL_CONSOLE_TERMINAL, .cols = 60, .rows = 20};
    assert_int_equal(0, k_post(CONSOLE_DEV, HAL_CONSOLE_INFO, &info, sizeof info));
    sim_run_until_idle();
    return 0;
}

static int teardown(void **state)
{
    assert_int_equal(0, sim_teardown());
    return 0;
}

/* Type keys, let the system run, return the output they caused. */
static const char *type(const char *keys)
{
    static char out[65536];
    size_t before;
    sim_console_output(&before);
    assert_int_equal(0, k_post(CONSOLE_DEV, HAL_CONSOLE_KEYS, keys, strlen(keys)));
    for (int i = 0; i < 20; i++) {
        sim_run_until_idle();
        sim_advance(10000000); /* 10 ms of virtual time: the echo server's answer */
    }
    size_t len;
    const char *all = sim_console_output(&len);
    /* nothing in these tests writes a NUL: one at the terminal is a length gone wrong */
    if (memchr(all + before, '\0', len - before))
        fail_msg("a NUL byte written to the terminal after: %s", all + before);
    snprintf(out, sizeof out, "%s", all + before);
    return out;
}

static void test_edited_line_runs(void **state)
{
    const char *o = type("echo wrld\x1b[D\x1b[D\x1b[Do\r");
    assert_non_null(strstr(o, "\r\nworld\n"));
    assert_non_null(strstr(o, "orrery> echo world"));
}

static void test_output_is_escaped(void **state)
{
    const char *o = type("echo -e a\\e[1mb\\x07c\xc3\xa9\r");
    assert_non_null(strstr(o, "a\\x1b[1mb\\x07c\xc3\xa9\n"));
    assert_null(strchr(o + strlen("\r\x1b[K"), '\a'));
}

static void test_tab_and_history(void **state)
{
    type("echo first\r");
    const char *o = type("\x1b[A\r");
    assert_non_null(strstr(o, "first\n"));
    o = type("kill ec\t");
    assert_non_null(strstr(o, "kill echo "));
    o = type("\x15"
             "history\r");
    assert_non_null(strstr(o, "    1  echo first\n    2  history\n"));
}

static void test_ctrl_c_cancels_then_stops_top(void **state)
{
    const char *o = type("half\x03");
    assert_non_null(strstr(o, "orrery> half\x1b[K\r\x1b[12C^C\r\n"));
    assert_non_null(strstr(o, "\r\norrery> "));
    o = type("a\x03" "b\x03" "c\x03" "echo three cancelled\r");
    assert_non_null(strstr(o, "\nthree cancelled\n"));
    o = type("top -s name\r");
    assert_non_null(strstr(o, "sorted by name (q quits"));
    assert_non_null(strstr(o, "\x1b[H\x1b[2Jtop: ")); /* the terminal-control call passes */
    sim_advance(2000000000);
    sim_run_until_idle();
    o = type("\x03");
    assert_non_null(strstr(o, "orrery> "));
    o = type("echo alive\r");
    assert_non_null(strstr(o, "\nalive\n"));
}

static void test_ctrl_d_shuts_down(void **state)
{
    type("\x04");
    int status = -1;
    assert_true(sim_shutdown_status(&status));
    assert_int_equal(0, status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_edited_line_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_is_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tab_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_cancels_then_stops_top, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_d_shuts_down, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
