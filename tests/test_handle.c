/* test_handle.c — handle tables: generations, rights, the 256 limit, replace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kt.h"

static void stale_handle_after_close_is_ebadh(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, tm;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_true(a > 0 && b > 0 && a != b);
    assert_int_equal(0, os_handle_close(ctx, a));
    assert_int_equal(OS_EBADH, os_handle_close(ctx, a));
    assert_int_equal(OS_EBADH, os_send(ctx, a, 1, "x", 1, NULL, 0));
    /* The slot is reused, but the old value never names the new object. */
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_int_equal(a & 0xff, tm & 0xff);
    assert_true(tm != a);
    assert_int_equal(OS_EBADH, os_timer_set(ctx, a, 10));
    assert_int_equal(0, os_timer_set(ctx, tm, 10));
    assert_int_equal(0, kt_teardown());
}

static void bad_values_are_ebadh(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    assert_int_equal(OS_EBADH, os_handle_close(ctx, 0));
    assert_int_equal(OS_EBADH, os_handle_close(ctx, -5));
    assert_int_equal(OS_EBADH, os_handle_close(ctx, 0x12345));
    assert_int_equal(OS_EBADH, os_send(ctx, 1 << 8, 0, NULL, 0, NULL, 0));
    assert_int_equal(0, kt_teardown());
}

static void wrong_rights_on_send_is_eacces(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, ro;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_handle_replace(ctx, a, OS_RIGHT_READ, &ro));
    assert_int_equal(OS_EACCES, os_send(ctx, ro, 1, "x", 1, NULL, 0));
    assert_int_equal(0, kt_teardown());
}

static void wrong_rights_on_transfer_is_eacces(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d, c2;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    assert_int_equal(0, os_handle_replace(ctx, c, OS_RIGHT_READ | OS_RIGHT_WRITE, &c2));
    assert_int_equal(OS_EACCES, os_send(ctx, a, 1, NULL, 0, &c2, 1));
    /* Nothing moved: c2 still works. */
    assert_int_equal(0, os_send(ctx, c2, 1, "y", 1, NULL, 0));
    assert_int_equal(0, kt_teardown());
}

static void table_full_is_enospc_at_256(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t h, a, b;
    int n = 0, rc;
    while ((rc = os_timer_create(ctx, &h)) == 0)
        n++;
    assert_int_equal(OS_ENOSPC, rc);
    assert_int_equal(OS_HANDLES_MAX, n);
    assert_int_equal(0, os_handle_close(ctx, h));
    /* One slot left: a channel needs two. */
    assert_int_equal(OS_ENOSPC, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_timer_create(ctx, &h));
    assert_int_equal(0, kt_teardown());
}

static void replace_reduces_rights(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, w, w2;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_handle_replace(ctx, a, OS_RIGHT_WRITE, &w));
    assert_int_equal(OS_EBADH, os_send(ctx, a, 1, "x", 1, NULL, 0));
    assert_int_equal(0, os_send(ctx, w, 1, "x", 1, NULL, 0));
    /* Asking for a right it lacks: refused, and w stays valid. */
    assert_int_equal(OS_EACCES, os_handle_replace(ctx, w, OS_RIGHT_WRITE | OS_RIGHT_TRANSFER, &w2));
    assert_int_equal(0, os_send(ctx, w, 1, "x", 1, NULL, 0));
    /* Without TRANSFER it cannot be moved. */
    os_handle_t c, d;
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    assert_int_equal(OS_EACCES, os_send(ctx, c, 1, NULL, 0, &w, 1));
    kt_run_all();
    assert_int_equal(2, kt_count("test", OS_EV_MESSAGE));
    assert_int_equal(0, kt_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(stale_handle_after_close_is_ebadh, kt_cleanup),
        cmocka_unit_test_teardown(bad_values_are_ebadh, kt_cleanup),
        cmocka_unit_test_teardown(wrong_rights_on_send_is_eacces, kt_cleanup),
        cmocka_unit_test_teardown(wrong_rights_on_transfer_is_eacces, kt_cleanup),
        cmocka_unit_test_teardown(table_full_is_enospc_at_256, kt_cleanup),
        cmocka_unit_test_teardown(replace_reduces_rights, kt_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
