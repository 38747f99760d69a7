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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(audits_find_corruption, kt_cleanup),
        cmocka_unit_test_teardown(audits_find_a_broken_queue, kt_cleanup),
        cmocka_unit_test_teardown(audits_find_a_foreign_pending_object, kt_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
