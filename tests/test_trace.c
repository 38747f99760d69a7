/* test_trace.c — trace points: every kind fires at its call site, seq numbers have no gaps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kt.h"

static int dev_write(void *self, uint32_t code, const void *buf, size_t len)
{
    return 0;
}

static const hal_device_ops_t dev_ops = {
    .name = "console",
    .write = dev_write,
};

static void child_exits(os_ctx_t *ctx)
{
    os_exit(ctx, 0);
}

static void every_kind_fires(void **state)
{
    kt_on("child", child_exits, NULL);
    int dev = k_device_add(&dev_ops);
    assert_int_equal(0, kt_boot("test"));
    kt_run_all();
    os_ctx_t *ctx = kt_ctx_of("test");
    os_handle_t a, b, c, d, tm, tm2, con, task;
    uint8_t rnd[4];
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    for (int i = 0; i < OS_CHAN_QUEUE_MAX; i++)
        assert_int_equal(0, os_send(ctx, a, 1, "m", 1, NULL, 0));
    assert_int_equal(OS_EFULL, os_send(ctx, a, 1, "m", 1, NULL, 0));
    assert_int_equal(0, os_send(ctx, c, 2, NULL, 0, NULL, 0));
    assert_int_equal(0, os_handle_close(ctx, c));
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_int_equal(0, os_timer_create(ctx, &tm2));
    assert_int_equal(0, os_timer_set(ctx, tm, 10));
    assert_int_equal(0, os_timer_set(ctx, tm2, 10));
    assert_int_equal(0, os_timer_cancel(ctx, tm2));
    assert_int_equal(0, os_device_open(ctx, "console", &con));
    assert_int_equal(0, k_post(dev, 1, "line", 4));
    assert_int_equal(0, os_device_write(ctx, con, 16, "out", 3));
    assert_int_equal(5, os_clock_now(ctx) + 5);
    os_random(ctx, rnd, sizeof(rnd));
    assert_true(os_task_list(ctx, NULL, 0) >= 1); /* LIST */
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_advance(10);
    kt_run_all();
#define CHECK_KIND(name, value)                                                                    \
    if (kt_trace_count(value) == 0)                                                                \
        fail_msg("no trace record of kind %s", #name);
    HAL_TRACE_KINDS(CHECK_KIND)
#undef CHECK_KIND
    assert_true(kt_trace_seq_ok());
    k_stats_t st;
    k_get_stats(&st);
    assert_int_equal(kt_trace_total(), st.trace_records);
    hal_trace_rec_t rec;
    assert_true(kt_trace_last(HAL_TR_SEND, &rec));
    assert_int_equal(0, rec.result);
    assert_true(kt_trace_count(HAL_TR_SEND) == OS_CHAN_QUEUE_MAX + 2);
    assert_true(kt_trace_last(HAL_TR_TIMER_SET, &rec));
    assert_int_equal(10, rec.arg);
    assert_true(kt_trace_last(HAL_TR_SPAWN, &rec));
    assert_int_equal(1, rec.arg); /* parent */
    assert_true(kt_trace_last(HAL_TR_TASK_EXIT_EVENT, &rec));
    assert_int_equal(2, rec.peer); /* the child is task 2 */
    uint64_t total = kt_trace_total();
    assert_int_equal(0, kt_teardown());
    assert_true(kt_trace_seq_ok()); /* teardown's EXIT records keep numbering */
    assert_true(kt_trace_total() > total);
}

static void no_sink_records_nothing(void **state)
{
    k_config_t cfg = {.init_program = "test"};
    assert_int_equal(0, kt_boot_cfg(&cfg));
    kt_run_all();
    os_ctx_t *ctx = kt_ctx_of("test");
    os_handle_t a, b;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_send(ctx, a, 1, NULL, 0, NULL, 0));
    kt_run_all();
    k_stats_t st;
    k_get_stats(&st);
    assert_int_equal(0, st.trace_records);
    assert_int_equal(0, kt_trace_total());
    assert_int_equal(2, st.events);
    assert_int_equal(1, st.messages);
    assert_int_equal(0, kt_teardown());
}

static void kind_names(void **state)
{
    assert_string_equal("SEND", k_trace_kind_name(HAL_TR_SEND));
    assert_string_equal("TASK_EXIT_EVENT", k_trace_kind_name(HAL_TR_TASK_EXIT_EVENT));
    assert_string_equal("START", k_trace_kind_name(HAL_TR_START));
    assert_string_equal("?", k_trace_kind_name(0));
    assert_string_equal("?", k_trace_kind_name(1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(every_kind_fires, kt_cleanup),
        cmocka_unit_test_teardown(no_sink_records_nothing, kt_cleanup),
        cmocka_unit_test(kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
