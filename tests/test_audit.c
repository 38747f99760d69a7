/* test_audit.c — the kernel's self-audits (core/audit.c) pass on a sane kernel, name corruption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kt.h"

#include <k/audit.h>

#include "../core/kpriv.h" /* to corrupt the kernel's bookkeeping on purpose */

/* Both audits pass on a sane kernel and name a corrupted queue count; the full audit alone
 * sees a free-slot count that disagrees with the table. */
static void audits_find_corruption(void **state)
{
    assert_int_equal(0, kt_boot("test"));
    kt_run_all();
    os_ctx_t *ctx = kt_ctx_of("test");
    os_handle_t a, b;
    char err[256];
    size_t n;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_send(ctx, a, 1, "x", 1, NULL, 0));
    assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));
    assert_int_equal(0, k_audit_quick(NULL, 0, &n, err, sizeof err));

    k_slot_t *slot;
    assert_int_equal(0, k_handle_get(ctx->task, b, &slot));
    k_chan_t *ch = (k_chan_t *)slot->obj;
    ch->count++; /* the queue holds 1, the count says 2 */
    assert_int_equal(-1, k_audit_quick(NULL, 0, &n, err, sizeof err));
    assert_int_equal(-1, k_audit(NULL, 0, &n, err, sizeof err));
    ch->count--;
    assert_int_equal(0, k_audit_quick(NULL, 0, &n, err, sizeof err));

    ctx->task->nfree--; /* a free slot gone missing */
    assert_int_equal(-1, k_audit(NULL, 0, &n, err, sizeof err));
    ctx->task->nfree++;
    assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));
    kt_run_all();
    assert_int_equal(0, kt_teardown());
}

/* A channel's queue whose last link is not the tail the list records is named by both. */
static void audits_find_a_broken_queue(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    char err[256];
    size_t n;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_send(ctx, a, 1, "x", 1, NULL, 0));
    assert_int_equal(0, os_send(ctx, a, 2, "y", 1, NULL, 0));
    k_slot_t *slot;
    assert_int_equal(0, k_handle_get(ctx->task, b, &slot));
    k_chan_t *ch = (k_chan_t *)slot->obj;
    k_link_t *last = ch->queue.last;
    ch->queue.last = ch->queue.first;
    assert_int_equal(-1, k_audit_quick(NULL, 0, &n, err, sizeof err));
    assert_non_null(strstr(err, "queue length and count disagree"));
    ch->queue.last = last;
    assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));
}

/* An object on a task's pending list that the task does not own is named. */
static void audits_find_a_foreign_pending_object(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    char err[256];
    size_t n;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    k_slot_t *slot;
    assert_int_equal(0, k_handle_get(ctx->task, b, &slot));
    k_obj_t *obj = slot->obj;
    k_task_t *owner = obj->owner;
    obj->owner = NULL; /* as if in flight, yet still pending on the task */
    obj->pending = true;
    k_list_push(&ctx->task->pending, &obj->plink);
    assert_int_equal(-1, k_audit_quick(NULL, 0, &n, err, sizeof err));
    assert_non_null(strstr(err, "pending list holds a foreign object"));
    k_list_remove(&ctx->task->pending, &obj->plink);
    obj->pending = false;
    obj->owner = owner;
    assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));
}

/* Each count the kernel keeps beside a list (tasks, ready tasks, channels, spare message
 * buffers), one off: both audits name it; put back, both pass. */
static void audits_find_each_count_off_its_list(void **state)
{
    static const struct {
        uint32_t *count;
        const char *msg;
    } counts[] = {
        {&K.ntasks, "task list and count disagree"},
        {&K.nready, "ready tasks and count disagree"},
        {&K.nchans, "channel list and count disagree"},
        {&K.nmsg_free, "spare message list and count disagree"},
    };
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    char err[256];
    size_t n;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    for (uint32_t i = 0; i < 4; i++) /* delivered, they leave spare buffers behind */
        assert_int_equal(0, os_send(ctx, a, i, NULL, 0, NULL, 0));
    kt_run_all();
    assert_true(K.nmsg_free > 0);
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        for (int d = -1; d <= 1; d += 2) {
            *counts[i].count += (uint32_t)d;
            err[0] = '\0';
            assert_int_equal(-1, k_audit_quick(NULL, 0, &n, err, sizeof err));
            if (!strstr(err, counts[i].msg))
                fail_msg("count %zu off by %d: got '%s', want '%s'", i, d, err, counts[i].msg);
            assert_int_equal(-1, k_audit(NULL, 0, &n, err, sizeof err));
            *counts[i].count -= (uint32_t)d;
            assert_int_equal(0, k_audit_quick(NULL, 0, &n, err, sizeof err));
            assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));
        }
    }
    /* A ready task the count does not know of: the test task queued by hand. */
    ctx->task->run = OS_TASK_READY;
    assert_int_equal(-1, k_audit_quick(NULL, 0, &n, err, sizeof err));
    assert_non_null(strstr(err, "ready tasks and count disagree"));
    ctx->task->run = OS_TASK_IDLE;
    assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));
}

/* An endpoint whose peer points elsewhere, and a spare-buffer count over its bound. */
static void audits_find_a_stray_peer_and_too_many_spares(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d;
    char err[256];
    size_t n;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    k_slot_t *sa, *sc;
    assert_int_equal(0, k_handle_get(ctx->task, a, &sa));
    assert_int_equal(0, k_handle_get(ctx->task, c, &sc));
    k_chan_t *ca = (k_chan_t *)sa->obj, *cc = (k_chan_t *)sc->obj;
    k_chan_t *peer = ca->peer;
    ca->peer = cc->peer; /* a's peer is d, which points back at c */
    assert_int_equal(-1, k_audit_quick(NULL, 0, &n, err, sizeof err));
    assert_non_null(strstr(err, "peer does not point back"));
    ca->peer = peer;
    assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));

    uint32_t spares = K.nmsg_free;
    K.nmsg_free = K_MSG_FREE_MAX + 1;
    assert_int_equal(-1, k_audit_quick(NULL, 0, &n, err, sizeof err));
    assert_non_null(strstr(err, "spare messages over their bound"));
    K.nmsg_free = spares;
    assert_int_equal(0, k_audit(NULL, 0, &n, err, sizeof err));
}

/* What the audits report of each task: its id, its name (cut to the field and terminated,
 * whatever the caller's buffer held), its used slots, pending objects and readiness. */
#define LONG_NAME "a-program-name-of-31-characters"
_Static_assert(sizeof LONG_NAME == OS_NAME_MAX, "the longest name a program may have");
static void start_nothing(os_ctx_t *ctx)
{
}
static void no_event(os_ctx_t *ctx, const os_event_t *ev)
{
}
static const os_program_t long_prog = {LONG_NAME, 0, start_nothing, no_event};

static void audits_report_each_task(void **state)
{
    const os_program_t *const progs[] = {&long_prog, NULL};
    k_config_t cfg = {.programs = progs, .init_program = LONG_NAME};
    assert_int_equal(0, kt_boot_cfg(&cfg));
    kt_run_all();
    k_audit_task_t out[2];
    char err[256];
    size_t n = 0;
    for (int full = 0; full < 2; full++) {
        memset(out, 0xff, sizeof out);
        assert_int_equal(0, full ? k_audit(out, 2, &n, err, sizeof err)
                                 : k_audit_quick(out, 2, &n, err, sizeof err));
        assert_int_equal(1, n);
        assert_int_equal(1, out[0].id);
        assert_int_equal('\0', out[0].name[sizeof out[0].name - 1]);
        assert_string_equal(LONG_NAME, out[0].name);
        assert_int_equal(0, out[0].pending);
        assert_false(out[0].ready);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(audits_find_corruption, kt_cleanup),
        cmocka_unit_test_teardown(audits_find_a_broken_queue, kt_cleanup),
        cmocka_unit_test_teardown(audits_find_a_foreign_pending_object, kt_cleanup),
        cmocka_unit_test_teardown(audits_find_each_count_off_its_list, kt_cleanup),
        cmocka_unit_test_teardown(audits_find_a_stray_peer_and_too_many_spares, kt_cleanup),
        cmocka_unit_test_teardown(audits_report_each_task, kt_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
