/* test_chan_tag.c — os_channel_tag: both endpoints carry the interface id into SEND/DELIVER/CLOSE/PEER_CLOSED records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kt.h"

static int cleanup(void **state)
{
    kt_teardown();
    return 0;
}

static void tag_errors(void **state)
{
    assert_int_equal(0, kt_boot("test"));
    kt_run_all();
    os_ctx_t *ctx = kt_ctx_of("test");
    os_handle_t a, b, tm;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_int_equal(OS_EBADH, os_channel_tag(ctx, 0, 7));
    assert_int_equal(OS_EBADH, os_channel_tag(ctx, a + 0x10000, 7)); /* stale generation */
    assert_int_equal(OS_EINVAL, os_channel_tag(ctx, tm, 7));        /* not a channel */
    assert_int_equal(OS_EINVAL, os_channel_tag(ctx, a, 0));         /* 0 means untagged */
    assert_int_equal(0, os_channel_tag(ctx, a, 7));
    assert_int_equal(0, os_channel_tag(ctx, b, 9)); /* retag: the pair follows */
}

static void tag_reaches_trace_records(void **state)
{
    hal_trace_rec_t rec;
    assert_int_equal(0, kt_boot("test"));
    kt_run_all();
    os_ctx_t *ctx = kt_ctx_of("test");
    os_handle_t a, b, c, d;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    assert_int_equal(0, os_channel_tag(ctx, b, 0x1234abcd)); /* tag one end: both carry it */
    assert_int_equal(0, os_send(ctx, a, 3, "x", 1, NULL, 0));
    assert_true(kt_trace_last(HAL_TR_SEND, &rec));
    assert_int_equal(0x1234abcd, rec.iface);
    kt_run_all();
    assert_true(kt_trace_last(HAL_TR_DELIVER, &rec));
    assert_int_equal(0x1234abcd, rec.iface);
    assert_int_equal(3, rec.type);
    /* An untagged channel stays 0. */
    assert_int_equal(0, os_send(ctx, c, 4, NULL, 0, NULL, 0));
    assert_true(kt_trace_last(HAL_TR_SEND, &rec));
    assert_int_equal(0, rec.iface);
    kt_run_all();
    /* Closing one end: CLOSE and the peer's PEER_CLOSED name the interface. */
    assert_int_equal(0, os_handle_close(ctx, a));
    assert_true(kt_trace_last(HAL_TR_CLOSE, &rec));
    assert_int_equal(0x1234abcd, rec.iface);
    kt_run_all();
    assert_true(kt_trace_last(HAL_TR_PEER_CLOSED, &rec));
    assert_int_equal(0x1234abcd, rec.iface);
    /* Installs are recorded: HANDLE names the handle value and the object kind. */
    assert_true(kt_trace_last(HAL_TR_HANDLE, &rec));
    assert_int_equal((uint32_t)d, (uint32_t)rec.arg);
    assert_int_equal(1, rec.type & 0xff);
    assert_int_equal(OS_RIGHTS_ALL, rec.type >> 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(tag_errors, cleanup),
        cmocka_unit_test_teardown(tag_reaches_trace_records, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
