/* test_task.c — tasks: spawn, exit, panic, kill, faults, privileges, supervisors, introspection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kt.h"

#include <k/replay.h>

#include "../core/kpriv.h" /* a task handle's object id, which k_replay_task_exit takes */

static void spawn_unknown_is_enoent(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t h = 0;
    os_spawn_args_t a = {.program = "nosuch"};
    assert_int_equal(OS_ENOENT, os_spawn(ctx, &a, &h));
    a.program = "child";
    a.arg_len = OS_MSG_MAX_DATA + 1;
    a.arg = "x";
    assert_int_equal(OS_E2BIG, os_spawn(ctx, &a, &h));
    assert_int_equal(0, kt_teardown());
    k_config_t cfg = {.init_program = "nosuch"};
    assert_int_equal(OS_ENOENT, kt_boot_cfg(&cfg));
    assert_int_equal(0, kt_teardown());
}

/* ---- panic kills only that task ----------------------------------------------------------- */

static void child_panics(os_ctx_t *ctx)
{
    os_panic(ctx, "boom %d", 42);
}

static void panic_kills_only_that_task(void **state)
{
    kt_on("child", child_panics, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, task;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    os_spawn_args_t args = {.program = "child", .handles = &b, .nhandles = 1};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    assert_non_null(strstr(kt_console(), "[child] panic: boom 42\n"));
    const kt_event_t *e = kt_find("test", OS_EV_PEER_CLOSED, 0);
    assert_non_null(e);
    assert_int_equal(a, e->ev.handle);
    e = kt_find("test", OS_EV_TASK_EXIT, 0);
    assert_non_null(e);
    assert_int_equal(task, e->ev.handle);
    assert_true(e->ev.status < 0);
    k_stats_t st;
    k_get_stats(&st);
    assert_int_equal(1, st.tasks);
    assert_int_equal(OS_ESTATE, os_task_kill(ctx, task));
    assert_int_equal(0, os_handle_close(ctx, task));
    assert_int_equal(0, kt_teardown());
}

static void child_asserts(os_ctx_t *ctx)
{
    OS_ASSERT(ctx, 1 + 1 == 3);
}

static void assert_panics(void **state)
{
    kt_on("child", child_asserts, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    assert_non_null(strstr(kt_console(), "[child] panic: assertion failed: 1 + 1 == 3"));
    assert_int_equal(1, kt_count("test", OS_EV_TASK_EXIT));
    assert_int_equal(0, kt_teardown());
}

static void child_exits(os_ctx_t *ctx)
{
    os_exit(ctx, 7);
}

static void exit_status_reaches_supervisor(void **state)
{
    kt_on("child", child_exits, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    const kt_event_t *e = kt_find("test", OS_EV_TASK_EXIT, 0);
    assert_non_null(e);
    assert_int_equal(7, e->ev.status);
    hal_trace_rec_t rec;
    assert_true(kt_trace_last(HAL_TR_EXIT, &rec));
    assert_int_equal(7, rec.result);
    assert_int_equal(0, kt_teardown());
}

static void child_faults(os_ctx_t *ctx)
{
    assert_true(k_in_task(0));
    k_task_fault(0, "page fault at 0x0");
}

static void fault_kills_only_that_task(void **state)
{
    kt_on("child", child_faults, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    assert_false(k_in_task(0));
    assert_true(k_run_one(0)); /* the fault resumes k_run_one, which returns true */
    assert_false(k_in_task(0));
    kt_run_all();
    assert_non_null(strstr(kt_console(), "[child] fault: page fault at 0x0\n"));
    const kt_event_t *e = kt_find("test", OS_EV_TASK_EXIT, 0);
    assert_non_null(e);
    assert_true(e->ev.status < 0);
    assert_int_equal(0, kt_teardown());
}

/* ---- privileges -------------------------------------------------------------------------- */

static void child_tries_privileged(os_ctx_t *ctx)
{
    os_handle_t h;
    os_spawn_args_t a = {.program = "other", .privileged = true};
    assert_int_equal(OS_EACCES, os_spawn(ctx, &a, &h));
    assert_int_equal(OS_EACCES, os_shutdown(ctx, 1));
    a.privileged = false;
    assert_int_equal(0, os_spawn(ctx, &a, &h));
}

static void privileges_are_checked(void **state)
{
    kt_on("child", child_tries_privileged, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    assert_non_null(kt_ctx_of("other"));
    assert_int_equal(0, kt_shutdown_calls());
    int status = 0;
    assert_false(k_shutdown_requested(&status));
    assert_int_equal(0, os_shutdown(ctx, 3));
    assert_true(k_shutdown_requested(&status));
    assert_int_equal(3, status);
    assert_int_equal(3, kt_shutdown_status());
    assert_int_equal(0, kt_teardown());
}

/* ---- a task's objects go with it -------------------------------------------------------- */

/* Fills its table with channel ends, closes all but the ones in slots 100 and 255, exits. */
static void child_exits_with_holes(os_ctx_t *ctx)
{
    os_handle_t h[OS_HANDLES_MAX], a, b;
    int n = 0;
    while (n + 1 < OS_HANDLES_MAX && os_channel_create(ctx, &a, &b) == 0) {
        h[n++] = a;
        h[n++] = b;
    }
    assert_int_equal(OS_HANDLES_MAX - 1, h[n - 1] & 0xff); /* full */
    for (int i = 0; i < n - 1; i++)
        if ((h[i] & 0xff) != 100)
            assert_int_equal(0, os_handle_close(ctx, h[i]));
    os_exit(ctx, 0);
}

static uint32_t endpoints(void)
{
    k_stats_t st;
    k_get_stats(&st);
    return st.channels;
}

/* The exit closes every object the task held, past the holes in its table (destroying a task
 * stops walking the slots once the table is empty, not at the first free slot). */
static void exit_closes_objects_past_holes(void **state)
{
    kt_on("child", child_exits_with_holes, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task;
    os_spawn_args_t args = {.program = "child"};
    uint32_t before = endpoints();
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    assert_int_equal(1, kt_count("test", OS_EV_TASK_EXIT));
    assert_int_equal(before, endpoints());
    assert_int_equal(0, kt_teardown());
}

/* ---- kill -------------------------------------------------------------------------------- */

static void kill_ends_the_task(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task, ro, a, b;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    assert_int_equal(2, k_task_find("child"));
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(OS_EINVAL, os_task_kill(ctx, a));
    assert_int_equal(0, os_handle_replace(ctx, task, OS_RIGHT_READ, &ro));
    assert_int_equal(OS_EACCES, os_task_kill(ctx, ro));
    os_handle_t task2;
    assert_int_equal(0, os_spawn(ctx, &args, &task2));
    assert_int_equal(0, os_task_kill(ctx, task2)); /* before it even started */
    kt_run_all();
    assert_int_equal(2, k_task_find("child")); /* the first one lives */
    const kt_event_t *e = kt_find("test", OS_EV_TASK_EXIT, 0);
    assert_non_null(e);
    assert_int_equal(task2, e->ev.handle);
    assert_int_equal(OS_EXIT_KILLED, e->ev.status);
    assert_int_equal(OS_ESTATE, os_task_kill(ctx, task2));
    assert_int_equal(0, kt_teardown());
}

static void task_handle_gives_the_task_id(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task, a, b;
    uint32_t id = 0;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all();
    assert_int_equal(0, os_task_handle_id(ctx, task, &id));
    assert_int_equal(k_task_find("child"), id);
    assert_int_equal(0, os_task_kill(ctx, task));
    kt_run_all();
    id = 0;
    assert_int_equal(0, os_task_handle_id(ctx, task, &id)); /* still names the ended task */
    assert_int_equal(2, id);
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(OS_EINVAL, os_task_handle_id(ctx, a, &id));
    assert_int_equal(0, os_handle_close(ctx, task));
    assert_int_equal(OS_EBADH, os_task_handle_id(ctx, task, &id));
    assert_int_equal(0, kt_teardown());
}

static void supervisor_gone_child_lives_on(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t task;
    os_spawn_args_t args = {.program = "child"};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    assert_int_equal(0, os_handle_close(ctx, task));
    kt_run_all();
    assert_int_equal(2, k_task_find("child"));
    assert_int_equal(0, kt_teardown());
}

/* ---- arguments, state, introspection, log ------------------------------------------------- */

static void child_checks_args(os_ctx_t *ctx)
{
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    assert_int_equal(5, len);
    assert_memory_equal("hello", arg, 5);
    assert_int_equal(2, os_initial_handle_count(ctx));
    assert_true(os_initial_handle(ctx, 0) > 0);
    assert_true(os_initial_handle(ctx, 1) > 0);
    assert_int_equal(OS_HANDLE_NONE, os_initial_handle(ctx, 2));
    uint8_t *st = os_state(ctx);
    for (int i = 0; i < 64; i++)
        assert_int_equal(0, st[i]);
    assert_int_equal(0, os_send(ctx, os_initial_handle(ctx, 0), 1, NULL, 0, NULL, 0));
    os_log(ctx, "hello %d", 42);
}

static void spawn_passes_arg_and_handles(void **state)
{
    kt_on("child", child_checks_args, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d, task;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    char arg[8] = "hello";
    os_handle_t hs[2] = {b, d};
    os_spawn_args_t args = {
        .program = "child", .handles = hs, .nhandles = 2, .arg = arg, .arg_len = 5, .restarts = 3};
    os_handle_t dup[2] = {b, b};
    args.handles = dup;
    assert_int_equal(OS_EINVAL, os_spawn(ctx, &args, &task));
    args.handles = hs;
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    memset(arg, 0, sizeof(arg)); /* copied at spawn */
    assert_int_equal(OS_EBADH, os_handle_close(ctx, b));
    kt_run_all();
    assert_int_equal(1, kt_count("test", OS_EV_MESSAGE));
    assert_string_equal("[child] hello 42\n", kt_console());

    os_task_info_t ti[4];
    assert_int_equal(2, os_task_list(ctx, ti, 4));
    assert_int_equal(1, ti[0].id);
    assert_string_equal("test", ti[0].name);
    assert_int_equal(3, ti[0].handles); /* a, c and the task handle */
    assert_int_equal(2, ti[1].id);
    assert_string_equal("child", ti[1].name);
    assert_int_equal(OS_TASK_IDLE, ti[1].state);
    assert_int_equal(2, ti[1].handles);
    assert_int_equal(1, ti[1].msgs_sent);
    assert_int_equal(1, ti[0].msgs_received);
    assert_int_equal(3, ti[1].restarts);
    assert_int_equal(2, os_task_list(ctx, NULL, 0));
    assert_string_equal("idle", os_task_state_name(OS_TASK_IDLE));
    assert_string_equal("ready", os_task_state_name(OS_TASK_READY));
    assert_string_equal("running", os_task_state_name(OS_TASK_RUNNING));
    assert_int_equal(0, kt_teardown());
}

static void os_log_formats_a_line(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_log(ctx, "x=%s", "y");
    assert_string_equal("[test] x=y\n", kt_console());
    kt_console_clear();
    char longer[1000];
    memset(longer, 'z', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    os_log(ctx, "%s", longer);
    size_t n = strlen(kt_console());
    assert_true(n < 600);
    assert_int_equal('\n', kt_console()[n - 1]);
    assert_int_equal(0, kt_teardown());
}

/* ---- replay: a replayed task's spawns start nothing ----------------------------------------- */

enum { RECORDED_CHILD = 77 };
static int replay_spawns;
static bool replay_spawn(void *self, const char *program, uint32_t *task_id)
{
    replay_spawns++;
    *task_id = RECORDED_CHILD;
    return strcmp(program, "child") == 0;
}
static const k_replay_ops_t replay_ops = {.spawn = replay_spawn};

/* Under a replayer, the replayed task's spawn checks its handles as os_spawn does (a handle
 * given twice is EINVAL, nothing moved), hands them to the harness and returns a task handle
 * on which the replayer injects the recorded exit. */
static void replayed_spawn_moves_handles_to_the_harness(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t harness, a, b, c, d, e, f, child;
    os_spawn_args_t hs = {.program = "peer"};
    assert_int_equal(0, os_spawn(ctx, &hs, &harness));
    kt_run_all();
    uint32_t harness_id = os_task_id(kt_ctx_of("peer")), self = os_task_id(ctx);
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    assert_int_equal(0, os_channel_create(ctx, &e, &f));
    replay_spawns = 0;
    k_replay_set(&replay_ops, self, self, harness_id);

    os_handle_t twice[2] = {b, b};
    os_spawn_args_t dup = {.program = "child", .handles = twice, .nhandles = 2};
    assert_int_equal(OS_EINVAL, os_spawn(ctx, &dup, &child));
    os_handle_t three[3] = {b, d, f};
    os_spawn_args_t ok = {.program = "child", .handles = three, .nhandles = 3};
    assert_int_equal(0, os_spawn(ctx, &ok, &child));
    assert_int_equal(2, replay_spawns);
    assert_int_equal(OS_EBADH, os_handle_close(ctx, b)); /* moved to the harness */
    assert_int_equal(0, os_send(ctx, a, 1, NULL, 0, NULL, 0));
    assert_int_equal(0, os_send(ctx, c, 2, NULL, 0, NULL, 0));
    assert_int_equal(0, os_send(ctx, e, 3, NULL, 0, NULL, 0));
    kt_run_all();
    assert_int_equal(3, kt_count("peer", OS_EV_MESSAGE));
    assert_int_equal(0, kt_count("child", OS_EV_MESSAGE)); /* no child ever started */

    k_slot_t *slot;
    assert_int_equal(0, k_handle_get(ctx->task, child, &slot));
    assert_int_equal(OS_ENOENT, k_replay_task_exit(slot->obj->id + 1000, 3));
    assert_int_equal(0, k_replay_task_exit(slot->obj->id, 3));
    kt_run_all();
    const kt_event_t *ev = kt_find("test", OS_EV_TASK_EXIT, 0);
    assert_non_null(ev);
    assert_int_equal(child, ev->ev.handle);
    assert_int_equal(3, ev->ev.status);
    k_replay_set(NULL, 0, 0, 0);
    assert_int_equal(0, kt_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(replayed_spawn_moves_handles_to_the_harness, kt_cleanup),
        cmocka_unit_test_teardown(spawn_unknown_is_enoent, kt_cleanup),
        cmocka_unit_test_teardown(panic_kills_only_that_task, kt_cleanup),
        cmocka_unit_test_teardown(assert_panics, kt_cleanup),
        cmocka_unit_test_teardown(exit_status_reaches_supervisor, kt_cleanup),
        cmocka_unit_test_teardown(fault_kills_only_that_task, kt_cleanup),
        cmocka_unit_test_teardown(privileges_are_checked, kt_cleanup),
        cmocka_unit_test_teardown(exit_closes_objects_past_holes, kt_cleanup),
        cmocka_unit_test_teardown(kill_ends_the_task, kt_cleanup),
        cmocka_unit_test_teardown(task_handle_gives_the_task_id, kt_cleanup),
        cmocka_unit_test_teardown(supervisor_gone_child_lives_on, kt_cleanup),
        cmocka_unit_test_teardown(spawn_passes_arg_and_handles, kt_cleanup),
        cmocka_unit_test_teardown(os_log_formats_a_line, kt_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
