/* test_cli_opt.c — the command line helpers every orrery command shares (cli/opt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "opt.h"

static const struct option opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"seed", required_argument, NULL, 's'},
    {"quiet", no_argument, NULL, 'q'},
    {"trace", required_argument, NULL, 1000},
    {NULL, 0, NULL, 0},
};

/* Parse argv (a NULL-terminated list); the options seen as "c=val;" in out, operands after. */
static int parse(char **argv, char *out, size_t n)
{
    int argc = 0, c;
    out[0] = '\0';
    while (argv[argc])
        argc++;
    while ((c = cli_getopt(argc, argv, "test", opts)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
        snprintf(out + strlen(out), n - strlen(out), "%d=%s;", c, optarg ? optarg : "");
    }
    for (int i = optind; i < argc; i++)
        snprintf(out + strlen(out), n - strlen(out), "[%s]", argv[i]);
    return 0;
}

static void test_both_value_forms_and_operands(void **state)
{
    char out[256];
    char *a1[] = {"test", "--seed", "7", "file.db", "--trace=x.db", "-q", NULL};
    assert_int_equal(0, parse(a1, out, sizeof out));
    assert_string_equal("115=7;1000=x.db;113=;[file.db]", out);
    char *a2[] = {"test", "--seed=9", "-s", "10", NULL};
    assert_int_equal(0, parse(a2, out, sizeof out));
    assert_string_equal("115=9;115=10;", out);
    /* a second argv is read from its start */
    char *a3[] = {"test", "a", "--", "--seed", NULL};
    assert_int_equal(0, parse(a3, out, sizeof out));
    assert_string_equal("[a][--seed]", out);
}

static void test_unknown_and_missing_are_usage_errors(void **state)
{
    char out[256];
    char *a1[] = {"test", "--sed", "1", NULL};
    assert_int_equal(2, parse(a1, out, sizeof out));
    char *a2[] = {"test", "--seed", NULL};
    assert_int_equal(2, parse(a2, out, sizeof out));
    char *a3[] = {"test", "-x", NULL};
    assert_int_equal(2, parse(a3, out, sizeof out));
    char *a4[] = {"test", "--quiet=1", NULL};
    assert_int_equal(2, parse(a4, out, sizeof out));
}

static void test_numbers_in_range_only(void **state)
{
    uint64_t v = 0;
    assert_true(cli_parse_u64("0", 0, 10, &v));
    assert_int_equal(0, v);
    assert_true(cli_parse_u64("18446744073709551615", 0, UINT64_MAX, &v));
    assert_int_equal(UINT64_MAX, v);
    assert_false(cli_parse_u64("18446744073709551616", 0, UINT64_MAX, &v));
    assert_false(cli_parse_u64("+5", 0, 10, &v));
    assert_false(cli_parse_u64("-5", 0, 10, &v));
    assert_false(cli_parse_u64(" 5", 0, 10, &v));
    assert_false(cli_parse_u64("5x", 0, 10, &v));
    assert_false(cli_parse_u64("", 0, 10, &v));
    assert_false(cli_parse_u64("11", 0, 10, &v));
    assert_false(cli_parse_u64("0", 1, 10, &v));
    assert_int_equal(2, cli_opt_u64("test", "--workers", "65", 1, 64, &v));
    assert_int_equal(0, cli_opt_u64("test", "--workers", "64", 1, 64, &v));
    assert_int_equal(64, v);
}

static void test_read_file_whole_and_bounded(void **state)
{
    char path[] = "/tmp/orrery-opt-XXXXXX";
    int fd = mkstemp(path);
    size_t len = 99;
    char *buf;
    assert_true(fd >= 0);
    assert_int_equal(0, cli_write_all(fd, "line one\nline two", 17));
    close(fd);
    buf = cli_read_file(path, 17, &len);
    assert_non_null(buf);
    assert_int_equal(17, len);
    assert_string_equal("line one\nline two", buf); /* NUL-terminated */
    free(buf);
    assert_null(cli_read_file(path, 16, &len)); /* over the limit */
    unlink(path);
    assert_null(cli_read_file(path, 100, &len));   /* gone */
    assert_null(cli_read_file("/tmp", 100, &len)); /* a directory */
}

static void test_write_all_reports_errors(void **state)
{
    int p[2];
    assert_int_equal(0, pipe(p));
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    assert_true(cli_write_all(p[1], "x", 1) < 0); /* EPIPE, not a silent loss */
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_value_forms_and_operands),
        cmocka_unit_test(test_unknown_and_missing_are_usage_errors),
        cmocka_unit_test(test_numbers_in_range_only),
        cmocka_unit_test(test_read_file_whole_and_bounded),
        cmocka_unit_test(test_write_all_reports_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
