/* test_manifest.c — the boot manifest parser: valid manifests, and each error with its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <image.h>
#include <manifest.h>

static int parse(const char *text, manifest_t *m, char *err, size_t errlen)
{
    return manifest_parse(text, strlen(text), orrery_programs, "init", m, err, errlen);
}

static void test_default_manifest_is_valid(void **state)
{
    manifest_t m;
    char err[128];
    assert_int_equal(0, parse(orrery_default_manifest, &m, err, sizeof err));
    assert_int_equal(6, m.count);
    assert_string_equal("console", m.programs[0].name);
    assert_string_equal("tcpip", m.programs[4].name);
    assert_string_equal("quiet", m.programs[4].arg);
    assert_string_equal("httpd", m.programs[5].name);
    assert_true(manifest_may_reach(&m.programs[5], "tcp"));
    assert_true(manifest_may_reach(&m.programs[5], "fs"));
    assert_true(manifest_reach_ro(&m.programs[5], "fs"));
    assert_false(manifest_may_reach(&m.programs[5], "init"));
    assert_string_equal("shell", m.programs[1].name);
    assert_string_equal("echo", m.programs[2].name);
    assert_string_equal("fs", m.programs[3].name);
    assert_int_equal(MANIFEST_RESTART_ON_FAILURE, m.programs[3].restart);
    assert_int_equal(MANIFEST_RESTART_ALWAYS, m.programs[0].restart);
    assert_int_equal(10, m.programs[1].max_restarts);
    assert_int_equal(4, m.programs[1].nreach);
    assert_true(manifest_may_reach(&m.programs[1], "fs"));
    assert_false(manifest_may_reach(&m.programs[2], "fs"));
    assert_true(manifest_may_reach(&m.programs[1], "init"));
    assert_false(manifest_may_reach(&m.programs[2], "init"));
    assert_true(manifest_may_reach(&m.programs[1], "echo"));
    assert_false(manifest_may_reach(&m.programs[1], "tcp"));
    assert_false(manifest_may_reach(&m.programs[2], "console"));
    assert_int_equal(0, orrery_manifest_check(orrery_default_manifest,
                                              strlen(orrery_default_manifest), err, sizeof err));
}

static void test_fields_defaults_comments_and_crlf(void **state)
{
    manifest_t m;
    char err[128];
    const char *text = "# a comment\r\n"
                       "\n"
                       "   \t\n"
                       "program echo   # trailing comment\r\n"
                       "program shell restart=never max-restarts=0 reach=\r\n"
                       "program console restart=on-failure max-restarts=1000000 reach=a,b-c,d_e";
    assert_int_equal(0, parse(text, &m, err, sizeof err));
    assert_int_equal(3, m.count);
    assert_int_equal(4, m.programs[0].line);
    assert_int_equal(MANIFEST_RESTART_ON_FAILURE, m.programs[0].restart);
    assert_int_equal(MANIFEST_DEFAULT_MAX_RESTARTS, m.programs[0].max_restarts);
    assert_int_equal(0, m.programs[0].nreach);
    assert_int_equal(MANIFEST_RESTART_NEVER, m.programs[1].restart);
    assert_int_equal(0, m.programs[1].max_restarts);
    assert_int_equal(0, m.programs[1].nreach);
    assert_int_equal(6, m.programs[2].line);
    assert_int_equal(1000000, m.programs[2].max_restarts);
    assert_int_equal(3, m.programs[2].nreach);
    assert_string_equal("b-c", m.programs[2].reach[1]);
    assert_ptr_equal(&m.programs[1], manifest_find(&m, "shell"));
    assert_null(manifest_find(&m, "init"));
    assert_string_equal("always", manifest_restart_name(MANIFEST_RESTART_ALWAYS));
}

/* arg=TEXT is kept as the program's spawn argument: up to 255 bytes, empty allowed. */
static void test_arg_option(void **state)
{
    manifest_t m;
    char err[128];
    char text[600];
    char long_arg[MANIFEST_ARG_MAX + 1];
    memset(long_arg, 'a', MANIFEST_ARG_MAX);
    long_arg[MANIFEST_ARG_MAX] = 0;
    snprintf(text, sizeof text,
             "program tcpip arg=addr=10.0.0.2/24,gw=10.0.0.1 restart=never\n"
             "program echo\nprogram shell arg=\nprogram console arg=%s\n",
             long_arg);
    assert_int_equal(0, parse(text, &m, err, sizeof err));
    assert_string_equal("addr=10.0.0.2/24,gw=10.0.0.1", m.programs[0].arg);
    assert_int_equal(strlen("addr=10.0.0.2/24,gw=10.0.0.1"), m.programs[0].arg_len);
    assert_int_equal(MANIFEST_RESTART_NEVER, m.programs[0].restart);
    assert_int_equal(0, m.programs[1].arg_len);
    assert_int_equal(0, m.programs[2].arg_len);
    assert_int_equal(MANIFEST_ARG_MAX, m.programs[3].arg_len);
    assert_string_equal(long_arg, m.programs[3].arg);

    /* one byte more is refused, naming the line */
    snprintf(text, sizeof text, "program echo\nprogram tcpip arg=%sb\n", long_arg);
    assert_int_equal(2, parse(text, &m, err, sizeof err));
    assert_string_equal("arg is 256 bytes, over the limit of 255", err);
}

/* reach=fs:ro reaches fs, read-only; reach=fs reaches it read-write; a ':' never connects. */
static void test_fs_read_only_reach(void **state)
{
    (void)state;
    manifest_t m;
    char err[128];
    assert_int_equal(0, parse("program echo reach=console,fs:ro\nprogram shell reach=fs\n", &m, err,
                              sizeof err));
    assert_true(manifest_may_reach(&m.programs[0], "fs"));
    assert_true(manifest_reach_ro(&m.programs[0], "fs"));
    assert_false(manifest_reach_ro(&m.programs[0], "console"));
    assert_false(manifest_may_reach(&m.programs[0], "fs:ro"));
    assert_true(manifest_may_reach(&m.programs[1], "fs"));
    assert_false(manifest_reach_ro(&m.programs[1], "fs"));
    assert_false(manifest_may_reach(&m.programs[1], "f"));
}

static void test_empty_manifest(void **state)
{
    manifest_t m;
    char err[128];
    assert_int_equal(0, parse("", &m, err, sizeof err));
    assert_int_equal(0, m.count);
}

/* Each bad manifest: the line it fails on and a piece of the message. */
static const struct bad {
    const char *text;
    int line;
    const char *msg;
} bad[] = {
    {"program echo\nprogram nosuch\n", 2, "unknown program 'nosuch'"},
    {"# x\n\nprogram echo colour=red\n", 3, "unknown key 'colour'"},
    {"program echo restart=sometimes\n", 1, "bad value 'sometimes' for restart"},
    {"program echo max-restarts=lots\n", 1, "bad value 'lots' for max-restarts"},
    {"program echo max-restarts=-1\n", 1, "bad value '-1' for max-restarts"},
    {"program echo max-restarts=99999999999\n", 1, "bad value"},
    {"program echo max-restarts=\n", 1, "bad value"},
    {"program echo\nprogram shell\nprogram echo\n", 3, "duplicate program 'echo'"},
    {"program echo\nprogramme shell\n", 2, "unknown directive 'programme'"},
    {"program\n", 1, "program needs a name"},
    {"program init\n", 1, "started by the kernel"},
    {"program echo restart\n", 1, "expected key=value"},
    {"program echo reach=console,,echo\n", 1, "bad interface name"},
    {"program echo reach=a,a\n", 1, "listed twice"},
    {"program echo reach=a,b,c,d,e,f,g,h,i\n", 1, "more than 8"},
    {"program ec/ho\n", 1, "bad program name"},
    {"program echo reach=echo:ro\n", 1, "bad interface 'echo:ro' in reach (only 'fs:ro'"},
    {"program echo reach=fs:rw\n", 1, "bad interface 'fs:rw' in reach"},
    {"program echo reach=fs:\n", 1, "bad interface 'fs:' in reach"},
    {"program echo reach=fs,fs:ro\n", 1, "reach lists both 'fs' and 'fs:ro'"},
    {"program echo reach=fs:ro,fs:ro\n", 1, "listed twice"},
    {"program echo\nprogram tcpip arg=a arg= x\n", 2, "expected key=value, got 'x'"},
    /* 17 words: one past what a line may hold (the directive, a name, 8 reach and 6 more) */
    {"program echo a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1 k=1 l=1 m=1 n=1 o=1\n", 1,
     "too many words on one line"},
};

static void test_each_error_names_its_line(void **state)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        manifest_t m;
        char err[128];
        int line = parse(bad[i].text, &m, err, sizeof err);
        if (line != bad[i].line || !strstr(err, bad[i].msg))
            fail_msg("case %zu: got line %d '%s', want line %d '%s'", i, line, err, bad[i].line,
                     bad[i].msg);
        /* the CLI's check agrees */
        assert_int_equal(bad[i].line,
                         orrery_manifest_check(bad[i].text, strlen(bad[i].text), err, sizeof err));
    }
}

static void test_limits(void **state)
{
    manifest_t m;
    char err[128];
    char text[4096] = "";
    /* 17 programs: without an image check, any name */
    for (int i = 0; i < MANIFEST_PROGRAMS_MAX + 1; i++) {
        char line[40];
        snprintf(line, sizeof line, "program p%d\n", i);
        strcat(text, line);
    }
    assert_int_equal(17, manifest_parse(text, strlen(text), NULL, NULL, &m, err, sizeof err));
    assert_non_null(strstr(err, "more than 16"));

    char longline[700];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "program ", 8);
    assert_int_equal(1, manifest_parse(longline, sizeof longline, NULL, NULL, &m, err, sizeof err));
    assert_non_null(strstr(err, "longer than"));

    assert_int_equal(
        2, manifest_parse("program a\nprog\0ram b\n", 21, NULL, NULL, &m, err, sizeof err));
    assert_non_null(strstr(err, "NUL"));

    char name[64];
    snprintf(name, sizeof name, "program %040d\n", 1);
    assert_int_equal(1, manifest_parse(name, strlen(name), NULL, NULL, &m, err, sizeof err));
    assert_non_null(strstr(err, "bad program name"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_manifest_is_valid),
        cmocka_unit_test(test_fields_defaults_comments_and_crlf),
        cmocka_unit_test(test_empty_manifest),
        cmocka_unit_test(test_fs_read_only_reach),
        cmocka_unit_test(test_arg_option),
        cmocka_unit_test(test_each_error_names_its_line),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
