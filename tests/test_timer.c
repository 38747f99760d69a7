/* test_timer.c — one-shot timers: ordering, cancel, re-arm, past deadlines, the HAL timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kt.h"

#include <k/audit.h>

static void fire_in_deadline_order(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(0, os_timer_create(ctx, &t[i]));
    assert_int_equal(0, os_timer_set(ctx, t[0], 300));
    assert_int_equal(0, os_timer_set(ctx, t[1], 100));
    assert_int_equal(0, os_timer_set(ctx, t[2], 200));
    assert_int_equal(100, kt_armed());
    assert_int_equal(100, k_next_deadline());
    kt_advance(99);
    kt_run_all();
    assert_int_equal(0, kt_count("test", OS_EV_TIMER));
    kt_advance(1);
    kt_run_all();
    assert_int_equal(1, kt_count("test", OS_EV_TIMER));
    assert_int_equal(200, kt_armed());
    kt_advance(1000);
    kt_run_all();
    assert_int_equal(3, kt_count("test", OS_EV_TIMER));
    assert_int_equal(t[1], kt_find("test", OS_EV_TIMER, 0)->ev.handle);
    assert_int_equal(t[2], kt_find("test", OS_EV_TIMER, 1)->ev.handle);
    assert_int_equal(t[0], kt_find("test", OS_EV_TIMER, 2)->ev.handle);
    assert_int_equal(UINT64_MAX, kt_armed());
    assert_int_equal(0, kt_teardown());
}

static void equal_deadlines_fire_in_arm_order(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t t[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(0, os_timer_create(ctx, &t[i]));
        assert_int_equal(0, os_timer_set(ctx, t[i], 50));
    }
    kt_advance(50);
    kt_run_all();
    for (int i = 0; i < 5; i++)
        assert_int_equal(t[i], kt_find("test", OS_EV_TIMER, (size_t)i)->ev.handle);
    assert_int_equal(0, kt_teardown());
}

static void cancel_disarms_and_drops_a_queued_fire(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    assert_int_equal(0, os_timer_create(ctx, &a));
    assert_int_equal(0, os_timer_create(ctx, &b));
    assert_int_equal(0, os_timer_set(ctx, a, 100));
    assert_int_equal(0, os_timer_set(ctx, b, 100));
    assert_int_equal(0, os_timer_cancel(ctx, a));
    kt_advance(100); /* b fires, its event is queued */
    assert_int_equal(0, os_timer_cancel(ctx, b));
    kt_run_all();
    assert_int_equal(0, kt_count("test", OS_EV_TIMER));
    assert_int_equal(0, os_timer_cancel(ctx, a)); /* cancelling a disarmed timer is fine */
    assert_int_equal(0, kt_teardown());
}

static void rearm_replaces_the_deadline(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a;
    assert_int_equal(0, os_timer_create(ctx, &a));
    assert_int_equal(0, os_timer_set(ctx, a, 100));
    assert_int_equal(0, os_timer_set(ctx, a, 300));
    kt_advance(150);
    kt_run_all();
    assert_int_equal(0, kt_count("test", OS_EV_TIMER));
    kt_advance(150);
    kt_run_all();
    assert_int_equal(1, kt_count("test", OS_EV_TIMER));
    /* One-shot: it does not fire again, but it can be set again. */
    kt_advance(1000);
    kt_run_all();
    assert_int_equal(1, kt_count("test", OS_EV_TIMER));
    assert_int_equal(0, os_timer_set(ctx, a, kt_now() + 10));
    kt_advance(10);
    kt_run_all();
    assert_int_equal(2, kt_count("test", OS_EV_TIMER));
    assert_int_equal(0, kt_teardown());
}

static void past_deadline_fires_at_once(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a;
    kt_advance(1000);
    assert_int_equal(0, os_timer_create(ctx, &a));
    assert_int_equal(0, os_timer_set(ctx, a, 500));
    kt_run_all();
    assert_int_equal(1, kt_count("test", OS_EV_TIMER));
    assert_int_equal(0, os_timer_set(ctx, a, kt_now()));
    kt_run_all();
    assert_int_equal(2, kt_count("test", OS_EV_TIMER));
    assert_int_equal(0, kt_teardown());
}

static void wrong_handle_kinds_and_closed_timers(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, tm, ro;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(OS_EINVAL, os_timer_set(ctx, a, 5));
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_int_equal(0, os_handle_replace(ctx, tm, OS_RIGHT_READ, &ro));
    assert_int_equal(OS_EACCES, os_timer_set(ctx, ro, 5));
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_int_equal(0, os_timer_set(ctx, tm, 5));
    assert_int_equal(0, os_handle_close(ctx, tm));
    assert_int_equal(UINT64_MAX, k_next_deadline());
    kt_advance(10);
    kt_run_all();
    assert_int_equal(0, kt_count("test", OS_EV_TIMER));
    assert_int_equal(0, kt_teardown());
}

static void many_timers_keep_heap_order(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t t[200];
    for (int i = 0; i < 200; i++) {
        assert_int_equal(0, os_timer_create(ctx, &t[i]));
        assert_int_equal(0, os_timer_set(ctx, t[i], (uint64_t)((i * 7919) % 200) + 1));
    }
    for (int i = 0; i < 200; i += 3)
        assert_int_equal(0, os_timer_cancel(ctx, t[i]));
    uint64_t last = 0;
    for (int step = 0; step < 201; step++) {
        kt_advance(1);
        uint64_t d = k_next_deadline();
        assert_true(d == UINT64_MAX || d > kt_now());
        assert_true(d >= last);
        last = d == UINT64_MAX ? last : d;
    }
    kt_run_all();
    assert_int_equal(200 - 67, kt_count("test", OS_EV_TIMER));
    assert_int_equal(0, kt_teardown());
}

/* Re-arming drops a fire not yet delivered for good: holding and releasing the timer does
 * not bring it back, nor does moving the timer to another table; only the new deadline
 * fires. */
static void rearm_drops_an_undelivered_fire_for_good(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d;
    assert_int_equal(0, os_timer_create(ctx, &a));
    assert_int_equal(0, os_timer_create(ctx, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    assert_int_equal(0, os_timer_set(ctx, a, 100));
    assert_int_equal(0, os_timer_set(ctx, b, 100));
    kt_advance(100); /* both fire; neither is delivered yet */
    assert_int_equal(0, os_timer_set(ctx, a, 500));
    assert_int_equal(0, os_timer_set(ctx, b, 500));
    assert_int_equal(0, os_handle_hold(ctx, a, true));
    assert_int_equal(0, os_handle_hold(ctx, a, false));
    assert_int_equal(0, os_send(ctx, c, 1, NULL, 0, &b, 1)); /* b travels to d's side */
    kt_run_all();
    assert_int_equal(0, kt_count("test", OS_EV_TIMER));
    assert_int_equal(1, kt_count("test", OS_EV_MESSAGE));
    os_handle_t moved = kt_find("test", OS_EV_MESSAGE, 0)->ev.handles[0];
    kt_advance(400);
    kt_run_all();
    assert_int_equal(2, kt_count("test", OS_EV_TIMER));
    assert_int_equal(a, kt_find("test", OS_EV_TIMER, 0)->ev.handle);
    assert_int_equal(moved, kt_find("test", OS_EV_TIMER, 1)->ev.handle);
    assert_int_equal(0, kt_teardown());
}

/* Creating a timer allocates it, and room for it in the kernel's heap: the first create
 * makes the heap with room for 64, which doubles when full, so only the 1st, 65th and 129th
 * creates grow it (and only they fail when that growth finds no memory). A failed create leaves nothing behind, and
 * os_timer_set never needs memory. */
enum { HEAP_FIRST = 64 };
static void create_grows_the_heap_only_when_full(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t t[2 * HEAP_FIRST + 2];
    char err[256];
    int failed = 0;
    for (int i = 0; i < 2 * HEAP_FIRST + 2; i++) {
        k_stats_t before, after;
        k_get_stats(&before);
        k_fail_alloc_after(2); /* the timer's own allocation passes, a heap's fails */
        int rc = os_timer_create(ctx, &t[i]);
        k_fail_alloc_after(0);
        if (i == 0 || i == HEAP_FIRST || i == 2 * HEAP_FIRST) {
            assert_int_equal(OS_ENOMEM, rc);
            k_get_stats(&after);
            assert_int_equal(before.allocations, after.allocations);
            if (k_audit(NULL, 0, NULL, err, sizeof err) != 0)
                fail_msg("after a failed create: %s", err);
            failed++;
            rc = os_timer_create(ctx, &t[i]);
        }
        if (rc != 0)
            fail_msg("create %d: %s", i, os_strerror(rc));
    }
    assert_int_equal(3, failed);
    k_fail_alloc_after(1); /* setting needs no memory */
    for (int i = 0; i < 2 * HEAP_FIRST + 2; i++)
        assert_int_equal(0, os_timer_set(ctx, t[i], (uint64_t)(2 * HEAP_FIRST + 2 - i)));
    k_fail_alloc_after(0);
    kt_advance(2 * HEAP_FIRST + 2);
    kt_run_all();
    assert_int_equal(2 * HEAP_FIRST + 2, kt_count("test", OS_EV_TIMER));
    assert_int_equal(t[2 * HEAP_FIRST + 1], kt_find("test", OS_EV_TIMER, 0)->ev.handle);
    assert_int_equal(0, kt_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(fire_in_deadline_order, kt_cleanup),
        cmocka_unit_test_teardown(equal_deadlines_fire_in_arm_order, kt_cleanup),
        cmocka_unit_test_teardown(cancel_disarms_and_drops_a_queued_fire, kt_cleanup),
        cmocka_unit_test_teardown(rearm_replaces_the_deadline, kt_cleanup),
        cmocka_unit_test_teardown(past_deadline_fires_at_once, kt_cleanup),
        cmocka_unit_test_teardown(wrong_handle_kinds_and_closed_timers, kt_cleanup),
        cmocka_unit_test_teardown(many_timers_keep_heap_order, kt_cleanup),
        cmocka_unit_test_teardown(rearm_drops_an_undelivered_fire_for_good, kt_cleanup),
        cmocka_unit_test_teardown(create_grows_the_heap_only_when_full, kt_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
