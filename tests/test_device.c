/* test_device.c — devices: input queued before open, EFULL and resume, writes, exclusive open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kt.h"

static int resumes, writes, write_rc;
static uint32_t last_code;
static char last_buf[64];

static int dev_write(void *self, uint32_t code, const void *buf, size_t len)
{
    writes++;
    last_code = code;
    memcpy(last_buf, buf, len < sizeof(last_buf) ? len : sizeof(last_buf));
    return write_rc;
}

static void dev_resume(void *self)
{
    resumes++;
}

static const hal_device_ops_t dev_ops = {
    .name = "dev",
    .write = dev_write,
    .resume = dev_resume,
};

static int cleanup(void **state)
{
    kt_teardown();
    resumes = writes = write_rc = 0;
    return 0;
}

static void post_before_open_waits(void **state)
{
    int dev = k_device_add(&dev_ops);
    assert_int_equal(1, dev);
    assert_int_equal(OS_EEXIST, k_device_add(&dev_ops));
    assert_int_equal(0, k_post(dev, 1, "one", 3));
    assert_int_equal(0, kt_boot("test"));
    assert_int_equal(0, k_post(dev, 2, "two", 3));
    kt_run_all();
    assert_int_equal(0, kt_count("test", OS_EV_DEVICE));
    os_ctx_t *ctx = kt_ctx_of("test");
    os_handle_t h;
    assert_int_equal(0, os_device_open(ctx, "dev", &h));
    kt_run_all();
    assert_int_equal(2, kt_count("test", OS_EV_DEVICE));
    const kt_event_t *e = kt_find("test", OS_EV_DEVICE, 0);
    assert_int_equal(h, e->ev.handle);
    assert_int_equal(1, e->ev.type);
    assert_memory_equal("one", e->data, 3);
    e = kt_find("test", OS_EV_DEVICE, 1);
    assert_int_equal(2, e->ev.type);
    assert_memory_equal("two", e->data, 3);
    assert_int_equal(0, kt_teardown());
}

static void full_queue_then_resume(void **state)
{
    int dev = k_device_add(&dev_ops);
    assert_int_equal(0, kt_boot("test"));
    for (uint32_t i = 0; i < OS_CHAN_QUEUE_MAX; i++)
        assert_int_equal(0, k_post(dev, i, NULL, 0));
    assert_int_equal(OS_EFULL, k_post(dev, 999, NULL, 0));
    kt_run_all();
    os_handle_t h;
    assert_int_equal(0, os_device_open(kt_ctx_of("test"), "dev", &h));
    assert_int_equal(0, resumes);
    kt_run_all();
    assert_int_equal(1, resumes);
    assert_int_equal(OS_CHAN_QUEUE_MAX, kt_count("test", OS_EV_DEVICE));
    assert_int_equal(0, k_post(dev, 1000, NULL, 0));
    kt_run_all();
    assert_int_equal(1000, kt_find("test", OS_EV_DEVICE, OS_CHAN_QUEUE_MAX)->ev.type);
    assert_int_equal(1, resumes);
    assert_int_equal(0, kt_teardown());
}

static void bad_posts(void **state)
{
    static char big[OS_MSG_MAX_DATA + 1];
    int dev = k_device_add(&dev_ops);
    assert_int_equal(0, kt_boot("test"));
    assert_int_equal(OS_EINVAL, k_post(0, 1, NULL, 0));
    assert_int_equal(OS_EINVAL, k_post(dev + 1, 1, NULL, 0));
    assert_int_equal(OS_EINVAL, k_post(dev, 1, NULL, 4));
    assert_int_equal(OS_E2BIG, k_post(dev, 1, big, sizeof(big)));
    assert_int_equal(0, kt_teardown());
}

static void write_calls_the_device(void **state)
{
    k_device_add(&dev_ops);
    assert_int_equal(0, kt_boot("test"));
    kt_run_all();
    os_ctx_t *ctx = kt_ctx_of("test");
    os_handle_t h, h2, a, b;
    assert_int_equal(OS_ENOENT, os_device_open(ctx, "nosuch", &h));
    assert_int_equal(0, os_device_open(ctx, "dev", &h));
    assert_int_equal(OS_EBUSY, os_device_open(ctx, "dev", &h2));
    assert_int_equal(0, os_device_write(ctx, h, 16, "hey", 3));
    assert_int_equal(1, writes);
    assert_int_equal(16, last_code);
    assert_memory_equal("hey", last_buf, 3);
    write_rc = OS_EIO;
    assert_int_equal(OS_EIO, os_device_write(ctx, h, 16, "x", 1));
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(OS_EINVAL, os_device_write(ctx, a, 16, "x", 1));
    /* Not transferable. */
    assert_int_equal(OS_EACCES, os_send(ctx, a, 1, NULL, 0, &h, 1));
    assert_int_equal(0, os_handle_close(ctx, h));
    assert_int_equal(OS_EBADH, os_device_write(ctx, h, 16, "x", 1));
    assert_int_equal(0, os_device_open(ctx, "dev", &h2));
    assert_int_equal(0, kt_teardown());
}

static const hal_device_ops_t other_ops = {.name = "other"};
static const hal_device_ops_t late_ops = {.name = "late"};

/*
 * Devices take their object ids from the kernel's one counter (the first ones, at boot),
 * so a trace's object id names one object: no channel or timer shares a device's id.
 */
static void device_ids_are_object_ids(void **state)
{
    assert_int_equal(1, k_device_add(&dev_ops));
    assert_int_equal(2, k_device_add(&other_ops));
    os_ctx_t *ctx = kt_boot_test();
    hal_trace_rec_t r;
    os_handle_t d1, d2, a, b, tm;
    /* The trace names each device at boot: one DEVICE record each (object id, number, name). */
    assert_int_equal(2, kt_trace_count(HAL_TR_DEVICE));
    assert_true(kt_trace_last(HAL_TR_DEVICE, &r));
    assert_int_equal(2, r.chan);
    assert_int_equal(2, r.type);
    assert_int_equal(strlen("other"), r.len);
    assert_int_equal(0, r.task);
    assert_int_equal(0, os_device_open(ctx, "dev", &d1));
    assert_true(kt_trace_last(HAL_TR_HANDLE, &r));
    uint32_t id1 = r.chan;
    assert_int_equal(0, os_device_open(ctx, "other", &d2));
    assert_true(kt_trace_last(HAL_TR_HANDLE, &r));
    uint32_t id2 = r.chan;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_true(kt_trace_last(HAL_TR_CHAN_CREATE, &r));
    uint32_t ca = r.chan, cb = r.peer;
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_true(kt_trace_last(HAL_TR_HANDLE, &r));
    uint32_t t1 = r.chan;
    assert_int_equal(1, id1);
    assert_int_equal(2, id2);
    assert_int_equal(3, ca);
    assert_int_equal(4, cb);
    assert_int_equal(5, t1);
    /* Input and writes name the device by that id too. */
    assert_int_equal(0, k_post(2, 7, "x", 1));
    assert_true(kt_trace_last(HAL_TR_DEV_POST, &r));
    assert_int_equal(id2, r.chan);
    kt_run_all();
    assert_true(kt_trace_last(HAL_TR_DEV_EVENT, &r));
    assert_int_equal(id2, r.chan);
    assert_int_equal(0, os_device_write(ctx, d1, 1, "y", 1));
    assert_true(kt_trace_last(HAL_TR_DEV_WRITE, &r));
    assert_int_equal(id1, r.chan);
    /* A device added after boot takes the next id, not one an object already has. */
    assert_int_equal(3, k_device_add(&late_ops));
    assert_int_equal(3, kt_trace_count(HAL_TR_DEVICE));
    assert_true(kt_trace_last(HAL_TR_DEVICE, &r));
    assert_int_equal(6, r.chan);
    assert_int_equal(3, r.type);
    assert_int_equal(strlen("late"), r.len);
    os_handle_t d3;
    assert_int_equal(0, os_device_open(ctx, "late", &d3));
    assert_true(kt_trace_last(HAL_TR_HANDLE, &r));
    assert_int_equal(6, r.chan);
    /* os_chan_list shows only the channel, under its own ids. */
    os_chan_info_t ci[4];
    assert_int_equal(1, os_chan_list(ctx, ci, 4));
    assert_int_equal(ca, ci[0].id);
    assert_int_equal(cb, ci[0].peer);
    assert_int_equal(0, kt_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(post_before_open_waits, cleanup),
        cmocka_unit_test_teardown(full_queue_then_resume, cleanup),
        cmocka_unit_test_teardown(bad_posts, cleanup),
        cmocka_unit_test_teardown(write_calls_the_device, cleanup),
        cmocka_unit_test_teardown(device_ids_are_object_ids, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
