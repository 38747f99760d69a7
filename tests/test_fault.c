/* test_fault.c — fault sweep: fail the Nth kernel allocation, expect clean errors and no leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kt.h"

#include <k/fault.h>

static int cleanup(void **state)
{
    k_fail_alloc_after(0);
    kt_teardown();
    return 0;
}

static bool ok_or_enomem(int rc)
{
    return rc == 0 || rc == OS_ENOMEM;
}

/* Spawn a child with a channel, send it messages carrying a handle and a timer; the child
 * replies. Every call either works or says OS_ENOMEM; nothing leaks. Returns the failures. */
static int failures;

static void child_replies(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_MESSAGE) {
        int rc = os_send(ctx, ev->handle, ev->type + 1, "pong", 4, NULL, 0);
        assert_true(ok_or_enomem(rc) || rc == OS_EPEER);
        failures += rc != 0;
    }
}

static void scenario(os_ctx_t *ctx)
{
    os_handle_t a = 0, b = 0, c = 0, d = 0, tm = 0, task = 0;
    int rc = os_channel_create(ctx, &a, &b);
    assert_true(ok_or_enomem(rc));
    failures += rc != 0;
    if (rc)
        return;
    os_spawn_args_t args = {
        .program = "child", .handles = &b, .nhandles = 1, .arg = "x", .arg_len = 1};
    rc = os_spawn(ctx, &args, &task);
    assert_true(ok_or_enomem(rc));
    failures += rc != 0;
    if (rc)
        return; /* b is still ours; teardown closes it */
    rc = os_channel_create(ctx, &c, &d);
    assert_true(ok_or_enomem(rc));
    failures += rc != 0;
    rc = os_timer_create(ctx, &tm);
    assert_true(ok_or_enomem(rc));
    failures += rc != 0;
    for (uint32_t i = 0; i < 4; i++) {
        os_handle_t carry = i == 0 ? c : (i == 1 ? tm : 0);
        rc = os_send(ctx, a, 10 * i, "ping", 4, carry > 0 ? &carry : NULL, carry > 0);
        if (rc == OS_EBADH) /* carried handle never existed (its create failed) */
            rc = os_send(ctx, a, 10 * i, "ping", 4, NULL, 0);
        assert_true(ok_or_enomem(rc));
        failures += rc != 0;
    }
}

static void sweep_allocation_failures(void **state)
{
    kt_on("test", scenario, NULL);
    kt_on("child", NULL, child_replies);
    int clean_runs = 0;
    for (long n = 1; n <= 40; n++) {
        failures = 0;
        assert_int_equal(0, kt_boot("test"));
        kt_run(1); /* start() of test */
        k_fail_alloc_after(n);
        kt_run_all();
        k_fail_alloc_after(0);
        assert_int_equal(0, kt_teardown());
        if (failures == 0)
            clean_runs++;
    }
    /* Past the scenario's last allocation, runs are clean. */
    assert_true(clean_runs > 0);
    assert_true(clean_runs < 40);
}

static void sweep_boot_failures(void **state)
{
    int booted = 0;
    for (long n = 1; n <= 10; n++) {
        k_config_t cfg = {.init_program = "test"};
        k_fail_alloc_after(n);
        int rc = kt_boot_cfg(&cfg);
        k_fail_alloc_after(0);
        assert_true(ok_or_enomem(rc));
        if (rc == 0) {
            booted++;
            kt_run_all();
        }
        assert_int_equal(0, kt_teardown());
    }
    assert_true(booted > 0);
}

/* The platform kills a task while its handler runs (a hosted worker can): the task ends after
 * the handler, and its supervisor sees the status the kill gave. */
static void child_killed_while_running(os_ctx_t *ctx)
{
    assert_int_equal(0, k_fault_kill(os_task_id(ctx), -77));
    assert_int_equal(OS_ESTATE, k_fault_kill(os_task_id(ctx), -78)); /* already dying */
}

static void kill_while_running_gives_its_status(void **state)
{
    kt_on("child", child_killed_while_running, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    const kt_event_t *e = kt_find("test", OS_EV_TASK_EXIT, 0);
    assert_non_null(e);
    assert_int_equal(-77, e->ev.status);
    assert_int_equal(0, k_task_find("child"));
    assert_int_equal(0, kt_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(sweep_allocation_failures, cleanup),
        cmocka_unit_test_teardown(sweep_boot_failures, cleanup),
        cmocka_unit_test_teardown(kill_while_running_gives_its_status, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
