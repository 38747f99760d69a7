/* test_channel.c — channels: bounded queues, backpressure, peer closed, limits, handle transfer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kt.h"

#include <k/audit.h>

static char big[OS_MSG_MAX_DATA + 1];

static void queue_of_128_then_efull_then_writable(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    for (uint32_t i = 0; i < OS_CHAN_QUEUE_MAX; i++)
        assert_int_equal(0, os_send(ctx, a, i, &i, sizeof(i), NULL, 0));
    assert_int_equal(OS_EFULL, os_send(ctx, a, 999, NULL, 0, NULL, 0));
    assert_int_equal(OS_EFULL, os_send(ctx, a, 999, NULL, 0, NULL, 0));
    kt_run_all();
    assert_int_equal(OS_CHAN_QUEUE_MAX, kt_count("test", OS_EV_MESSAGE));
    assert_int_equal(1, kt_count("test", OS_EV_WRITABLE));
    /* In order, on b; WRITABLE on a once the queue drained to half. */
    for (uint32_t i = 0; i < OS_CHAN_QUEUE_MAX; i++) {
        const kt_event_t *e = kt_find("test", OS_EV_MESSAGE, i);
        assert_int_equal(i, e->ev.type);
        assert_int_equal(b, e->ev.handle);
        assert_memory_equal(&i, e->data, sizeof(i));
    }
    const kt_event_t *w = kt_find("test", OS_EV_WRITABLE, 0);
    assert_int_equal(a, w->ev.handle);
    const kt_event_t *half = kt_find("test", OS_EV_MESSAGE, OS_CHAN_QUEUE_MAX / 2 - 1);
    assert_true(w > half);
    assert_true(w < kt_find("test", OS_EV_MESSAGE, OS_CHAN_QUEUE_MAX - 1));
    assert_int_equal(0, os_send(ctx, a, 5, NULL, 0, NULL, 0));
    assert_int_equal(0, kt_teardown());
}

static void no_writable_without_efull(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(0, os_send(ctx, a, i, NULL, 0, NULL, 0));
    kt_run_all();
    assert_int_equal(100, kt_count("test", OS_EV_MESSAGE));
    assert_int_equal(0, kt_count("test", OS_EV_WRITABLE));
    assert_int_equal(0, kt_teardown());
}

static void held_channel_delivers_nothing_until_released(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, ro;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_handle_hold(ctx, b, true));
    for (uint32_t i = 0; i < OS_CHAN_QUEUE_MAX; i++)
        assert_int_equal(0, os_send(ctx, a, i, NULL, 0, NULL, 0));
    assert_int_equal(OS_EFULL, os_send(ctx, a, 999, NULL, 0, NULL, 0));
    kt_run_all();
    assert_int_equal(0, kt_count("test", OS_EV_MESSAGE)); /* held: all wait in the kernel */
    assert_int_equal(0, os_handle_hold(ctx, b, false));
    kt_run_all();
    assert_int_equal(OS_CHAN_QUEUE_MAX, kt_count("test", OS_EV_MESSAGE));
    assert_int_equal(OS_CHAN_QUEUE_MAX - 1,
                     kt_find("test", OS_EV_MESSAGE, OS_CHAN_QUEUE_MAX - 1)->ev.type);
    assert_int_equal(1, kt_count("test", OS_EV_WRITABLE));
    /* no READ right, or a stale handle */
    assert_int_equal(0, os_handle_replace(ctx, b, OS_RIGHT_WRITE, &ro));
    assert_int_equal(OS_EACCES, os_handle_hold(ctx, ro, true));
    assert_int_equal(OS_EBADH, os_handle_hold(ctx, b, true));
    assert_int_equal(0, kt_teardown());
}

/* A held channel still hears WRITABLE (its own send got EFULL), and nothing else. */
static void held_channel_still_gets_writable(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_handle_hold(ctx, b, true));
    assert_int_equal(0, os_handle_hold(ctx, a, true));
    assert_int_equal(0, os_send(ctx, a, 7777, NULL, 0, NULL, 0)); /* waits at b */
    for (uint32_t i = 0; i < OS_CHAN_QUEUE_MAX; i++)
        assert_int_equal(0, os_send(ctx, b, i, NULL, 0, NULL, 0));
    assert_int_equal(OS_EFULL, os_send(ctx, b, 999, NULL, 0, NULL, 0));
    assert_int_equal(0, os_handle_hold(ctx, a, false));
    kt_run_all();
    assert_int_equal(OS_CHAN_QUEUE_MAX, kt_count("test", OS_EV_MESSAGE)); /* all on a */
    assert_int_equal(1, kt_count("test", OS_EV_WRITABLE));
    assert_int_equal(b, kt_find("test", OS_EV_WRITABLE, 0)->ev.handle);
    assert_null(kt_find("test", OS_EV_MESSAGE, OS_CHAN_QUEUE_MAX)); /* b's message still waits */
    assert_int_equal(0, os_handle_hold(ctx, b, false));
    kt_run_all();
    assert_int_equal(OS_CHAN_QUEUE_MAX + 1, kt_count("test", OS_EV_MESSAGE));
    assert_int_equal(7777, kt_find("test", OS_EV_MESSAGE, OS_CHAN_QUEUE_MAX)->ev.type);
    assert_int_equal(0, kt_teardown());
}

/* A held sender waiting for WRITABLE hears it when the peer closes (its next send is EPEER); the
 * peer-closed event itself still waits behind the hold and the queued messages, in order. Before,
 * the close cleared the pending WRITABLE and the holder (httpd sending to a client that stopped
 * reading, then went away) waited for ever with the connection's handles. */
static void held_sender_hears_writable_when_the_peer_closes(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_handle_hold(ctx, b, true)); /* the receiver stops reading */
    assert_int_equal(0, os_send(ctx, b, 4242, NULL, 0, NULL, 0)); /* waits at a */
    assert_int_equal(0, os_handle_hold(ctx, a, true)); /* the sender holds its end too */
    for (uint32_t i = 0; i < OS_CHAN_QUEUE_MAX; i++)
        assert_int_equal(0, os_send(ctx, a, i, NULL, 0, NULL, 0));
    assert_int_equal(OS_EFULL, os_send(ctx, a, 999, NULL, 0, NULL, 0));
    kt_run_all();
    assert_int_equal(0, kt_nevents);
    assert_int_equal(0, os_handle_close(ctx, b)); /* the receiver goes away unread */
    kt_run_all();
    assert_int_equal(1, kt_nevents);
    assert_int_equal(OS_EV_WRITABLE, kt_events[0].ev.kind);
    assert_int_equal(a, kt_events[0].ev.handle);
    assert_int_equal(OS_EPEER, os_send(ctx, a, 1, NULL, 0, NULL, 0));
    assert_int_equal(0, os_handle_hold(ctx, a, false));
    kt_run_all();
    assert_int_equal(3, kt_nevents); /* then the message queued before the close, then the close */
    assert_int_equal(OS_EV_MESSAGE, kt_events[1].ev.kind);
    assert_int_equal(4242, kt_events[1].ev.type);
    assert_int_equal(OS_EV_PEER_CLOSED, kt_events[2].ev.kind);
    assert_int_equal(0, kt_teardown());
}

static void peer_closed_after_queued_messages(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(0, os_send(ctx, a, 10 + i, NULL, 0, NULL, 0));
    assert_int_equal(0, os_handle_close(ctx, a));
    assert_int_equal(OS_EPEER, os_send(ctx, b, 1, NULL, 0, NULL, 0));
    kt_run_all();
    assert_int_equal(4, kt_nevents);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(OS_EV_MESSAGE, kt_events[i].ev.kind);
        assert_int_equal(10 + i, kt_events[i].ev.type);
    }
    assert_int_equal(OS_EV_PEER_CLOSED, kt_events[3].ev.kind);
    assert_int_equal(b, kt_events[3].ev.handle);
    assert_int_equal(0, kt_teardown());
}

static void oversized_and_too_many_handles_are_e2big(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, hs[OS_MSG_MAX_HANDLES + 1];
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    for (int i = 0; i < OS_MSG_MAX_HANDLES + 1; i++)
        assert_int_equal(0, os_timer_create(ctx, &hs[i]));
    assert_int_equal(OS_E2BIG, os_send(ctx, a, 1, big, OS_MSG_MAX_DATA + 1, NULL, 0));
    assert_int_equal(OS_E2BIG, os_send(ctx, a, 1, NULL, 0, hs, OS_MSG_MAX_HANDLES + 1));
    /* Nothing moved; the limits themselves are fine. */
    assert_int_equal(0, os_send(ctx, a, 1, big, OS_MSG_MAX_DATA, hs, OS_MSG_MAX_HANDLES));
    assert_int_equal(OS_EBADH, os_timer_set(ctx, hs[0], 5));
    assert_int_equal(0, os_timer_set(ctx, hs[OS_MSG_MAX_HANDLES], 5));
    kt_run_all();
    const kt_event_t *e = kt_find("test", OS_EV_MESSAGE, 0);
    assert_non_null(e);
    assert_int_equal(OS_MSG_MAX_DATA, e->ev.len);
    assert_int_equal(OS_MSG_MAX_HANDLES, e->ev.nhandles);
    assert_int_equal(0, kt_teardown());
}

static void bad_carried_handles_move_nothing(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    os_handle_t bad[2] = {c, 0x7777};
    assert_int_equal(OS_EBADH, os_send(ctx, a, 1, NULL, 0, bad, 2));
    os_handle_t twice[2] = {c, c};
    assert_int_equal(OS_EINVAL, os_send(ctx, a, 1, NULL, 0, twice, 2));
    assert_int_equal(OS_EINVAL, os_send(ctx, a, 1, NULL, 0, &a, 1));
    assert_int_equal(OS_EINVAL, os_send(ctx, a, 1, NULL, 0, &b, 1));
    os_handle_t tm;
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_int_equal(OS_EINVAL, os_send(ctx, tm, 1, NULL, 0, NULL, 0));
    assert_int_equal(0, os_send(ctx, c, 1, "still mine", 10, NULL, 0));
    assert_int_equal(0, kt_teardown());
}

/* ---- handle transfer between two tasks -------------------------------------------------- */

static os_handle_t test_a, test_d;

static void transfer_start(os_ctx_t *ctx)
{
    os_handle_t a, b, c, task;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &test_d));
    os_spawn_args_t args = {.program = "peer", .handles = &b, .nhandles = 1};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    assert_int_equal(OS_EBADH, os_send(ctx, b, 1, NULL, 0, NULL, 0)); /* moved to the child */
    assert_int_equal(0, os_send(ctx, a, 7, "take", 4, &c, 1));
    assert_int_equal(OS_EBADH, os_send(ctx, c, 1, NULL, 0, NULL, 0)); /* moved away */
    test_a = a;
}

static void peer_replies_on_received(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_MESSAGE && ev->type == 7) {
        assert_int_equal(1, ev->nhandles);
        assert_int_equal(0, os_send(ctx, ev->handles[0], 8, "hi", 2, NULL, 0));
    }
}

static void handle_transfer_moves_the_handle(void **state)
{
    kt_on("test", transfer_start, NULL);
    kt_on("peer", NULL, peer_replies_on_received);
    assert_int_equal(0, kt_boot("test"));
    kt_run_all();
    const kt_event_t *e = kt_find("peer", OS_EV_MESSAGE, 0);
    assert_non_null(e);
    assert_int_equal(OS_HANDLE_NONE + 0, e->ev.status);
    e = kt_find("test", OS_EV_MESSAGE, 0);
    assert_non_null(e);
    assert_int_equal(8, e->ev.type);
    assert_int_equal(test_d, e->ev.handle);
    assert_memory_equal("hi", e->data, 2);
    assert_int_equal(0, kt_teardown());
}

/* ---- closing an endpoint with queued messages that carry handles ------------------------ */

static void closing_with_queued_handles_closes_them(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d, e, f, tm;
    k_stats_t st;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    assert_int_equal(0, os_channel_create(ctx, &e, &f));
    assert_int_equal(0, os_timer_create(ctx, &tm));
    assert_int_equal(0, os_timer_set(ctx, tm, 1000));
    /* e carries nothing yet; send e's peer f (with a message queued in it) and c, tm over a. */
    assert_int_equal(0, os_send(ctx, e, 3, NULL, 0, NULL, 0));
    os_handle_t carried[3] = {c, tm, f};
    assert_int_equal(0, os_send(ctx, a, 1, NULL, 0, carried, 3));
    k_get_stats(&st);
    assert_int_equal(6, st.channels);
    assert_int_equal(0, os_handle_close(ctx, b));
    k_get_stats(&st);
    assert_int_equal(3, st.channels); /* b went, and c and f with it: a, d, e remain */
    kt_run_all();
    /* a, d and e each see their peer closed. */
    assert_int_equal(3, kt_count("test", OS_EV_PEER_CLOSED));
    assert_int_equal(0, kt_count("test", OS_EV_MESSAGE));
    assert_int_equal(UINT64_MAX, k_next_deadline());
    assert_int_equal(0, kt_teardown());
}

/* ---- receiver's table full at delivery -------------------------------------------------- */

static void peer_fills_table(os_ctx_t *ctx)
{
    os_handle_t h;
    while (os_timer_create(ctx, &h) == 0)
        ;
}

static void full_table_at_delivery_closes_handles(void **state)
{
    kt_on("peer", peer_fills_table, NULL);
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d, task;
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    os_spawn_args_t args = {.program = "peer", .handles = &b, .nhandles = 1};
    assert_int_equal(0, os_spawn(ctx, &args, &task));
    kt_run_all(); /* peer starts and fills its table */
    assert_int_equal(0, os_send(ctx, a, 1, NULL, 0, &c, 1));
    kt_run_all();
    const kt_event_t *e = kt_find("peer", OS_EV_MESSAGE, 0);
    assert_non_null(e);
    assert_int_equal(OS_ENOSPC, e->ev.status);
    assert_int_equal(0, e->ev.nhandles);
    e = kt_find("test", OS_EV_PEER_CLOSED, 0);
    assert_non_null(e);
    assert_int_equal(d, e->ev.handle);
    assert_int_equal(0, kt_teardown());
}

static void chan_list_shows_pairs(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d;
    os_chan_info_t info[4];
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_channel_create(ctx, &c, &d));
    assert_int_equal(0, os_send(ctx, a, 1, NULL, 0, NULL, 0));
    assert_int_equal(0, os_send(ctx, a, 1, NULL, 0, NULL, 0));
    assert_int_equal(0, os_handle_close(ctx, d));
    assert_int_equal(2, os_chan_list(ctx, info, 4));
    assert_int_equal(info[0].id + 1, info[0].peer);
    assert_int_equal(1, info[0].owner);
    assert_int_equal(1, info[0].peer_owner);
    assert_int_equal(0, info[0].queued);
    assert_int_equal(2, info[0].peer_queued);
    assert_int_equal(0, info[1].peer);
    assert_int_equal(2, os_chan_list(ctx, info, 1));
    assert_int_equal(0, kt_teardown());
}

/* An endpoint in flight (carried in a queued message) has no owner: the list shows 0 for it
 * from either side of its pair. */
static void chan_list_shows_endpoints_in_flight(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a, b, c, d;
    os_chan_info_t info[4];
    assert_int_equal(0, os_channel_create(ctx, &a, &b)); /* the carrier */
    assert_int_equal(0, os_channel_create(ctx, &c, &d)); /* c stays, d travels */
    assert_int_equal(0, os_send(ctx, a, 1, NULL, 0, &d, 1));
    assert_int_equal(2, os_chan_list(ctx, info, 4));
    assert_int_equal(info[1].id + 1, info[1].peer);
    assert_int_equal(1, info[1].owner);
    assert_int_equal(0, info[1].peer_owner);
    assert_int_equal(1, info[0].peer_queued);

    os_handle_t e, f;
    assert_int_equal(0, os_channel_create(ctx, &e, &f));
    assert_int_equal(0, os_send(ctx, a, 2, NULL, 0, &e, 1)); /* the lower endpoint travels */
    assert_int_equal(3, os_chan_list(ctx, info, 4));
    assert_int_equal(0, info[2].owner);
    assert_int_equal(1, info[2].peer_owner);
    assert_int_equal(0, kt_teardown());
}

/* However many messages a burst moves, the kernel keeps at most its bound of spare buffers
 * afterwards (the audit checks the bound): four full queues, delivered. */
static void a_burst_leaves_spare_buffers_within_their_bound(void **state)
{
    os_ctx_t *ctx = kt_boot_test();
    os_handle_t a[4], b[4];
    char err[256];
    for (int c = 0; c < 4; c++) {
        assert_int_equal(0, os_channel_create(ctx, &a[c], &b[c]));
        for (uint32_t i = 0; i < OS_CHAN_QUEUE_MAX; i++)
            assert_int_equal(0, os_send(ctx, a[c], i, NULL, 0, NULL, 0));
    }
    kt_run_all();
    assert_int_equal(4 * OS_CHAN_QUEUE_MAX, kt_count("test", OS_EV_MESSAGE));
    if (k_audit(NULL, 0, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(0, kt_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(queue_of_128_then_efull_then_writable, kt_cleanup),
        cmocka_unit_test_teardown(no_writable_without_efull, kt_cleanup),
        cmocka_unit_test_teardown(held_channel_delivers_nothing_until_released, kt_cleanup),
        cmocka_unit_test_teardown(held_channel_still_gets_writable, kt_cleanup),
        cmocka_unit_test_teardown(held_sender_hears_writable_when_the_peer_closes, kt_cleanup),
        cmocka_unit_test_teardown(peer_closed_after_queued_messages, kt_cleanup),
        cmocka_unit_test_teardown(oversized_and_too_many_handles_are_e2big, kt_cleanup),
        cmocka_unit_test_teardown(bad_carried_handles_move_nothing, kt_cleanup),
        cmocka_unit_test_teardown(handle_transfer_moves_the_handle, kt_cleanup),
        cmocka_unit_test_teardown(closing_with_queued_handles_closes_them, kt_cleanup),
        cmocka_unit_test_teardown(full_table_at_delivery_closes_handles, kt_cleanup),
        cmocka_unit_test_teardown(chan_list_shows_pairs, kt_cleanup),
        cmocka_unit_test_teardown(chan_list_shows_endpoints_in_flight, kt_cleanup),
        cmocka_unit_test_teardown(a_burst_leaves_spare_buffers_within_their_bound, kt_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
