/* test_check.c — NEVER/ALWAYS (core/kcheck.h): plain conditions, and a loud stop when checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hal/host.h>

/* This file is a checked build of the macros whatever the build type. */
#define K_CHECKS 1
#include "../core/kcheck.h"

static int console_fd = -1;

static void pipe_console(const void *buf, size_t len)
{
    if (write(console_fd, buf, len) < 0)
        _exit(3);
}

static const hal_host_t pipe_platform = {
    .name = "test_check",
    .console_write = pipe_console,
};

static void guessed_right_is_the_condition(void **state)
{
    int zero = 0, seven = 7;
    assert_int_equal(0, NEVER(zero));
    assert_int_equal(1, ALWAYS(seven));
    /* The condition is evaluated once. */
    int n = 0;
    assert_int_equal(0, NEVER(n++ == 5));
    assert_int_equal(1, n);
    assert_int_equal(1, ALWAYS(n++ == 1));
    assert_int_equal(2, n);
}

/* Run `expr`'s check in a child; it must stop with SIGILL after one console line naming it. */
static void expect_stop(int which, const char *line)
{
    int fds[2];
    assert_int_equal(0, pipe(fds));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGILL, SIG_DFL); /* cmocka's handler would catch the stop */
        console_fd = fds[1];
        hal_host_set(&pipe_platform);
        volatile int one = 1;
        if (which == 0 && NEVER(one == 1))
            _exit(1); /* not reached when checked */
        if (which == 1 && !ALWAYS(one == 0))
            _exit(1);
        _exit(2);
    }
    close(fds[1]);
    char buf[512];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(pid, waitpid(pid, &status, 0));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(SIGILL, WTERMSIG(status));
    assert_non_null(strstr(buf, line));
    assert_non_null(strstr(buf, "test_check.c:"));
}

static void never_taken_stops(void **state)
{
    expect_stop(0, "kernel: NEVER(one == 1) failed at ");
}

static void always_missed_stops(void **state)
{
    expect_stop(1, "kernel: ALWAYS(one == 0) failed at ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(guessed_right_is_the_condition),
        cmocka_unit_test(never_taken_stops),
        cmocka_unit_test(always_missed_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
