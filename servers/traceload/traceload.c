/* traceload.c — a program that makes trace records as fast as the kernel can: an IPC ping-pong
 * over a channel whose two ends it holds (the workload of `orrery bench qtrace`). */
#include <argwords.h>
#include <image.h>
#include <iface/init_client.h>

#include <string.h>

/*
 * Spawn argument (manifest arg=): "msgs=N,bytes=B" (each optional; N round trips, 1..10^9,
 * default 100000; B payload bytes per message, 0..OS_MSG_MAX_DATA, default 32). It creates a
 * channel, sends a PING on one end; each delivery on either end is answered on that end, so
 * every round trip is two sends and two deliveries: 4 trace records, and nothing else (no
 * clock reads, no timers). After N round trips it logs
 *   result msgs=N records=R ns=T
 * (R = 4 N, T the kernel clock from the first send to the last delivery) and asks init to
 * shut down with status 0 (status 1 on a bad argument or a failed send).
 */
enum {
    MSGS_DEFAULT = 100000,
    MSGS_MAX = 1000000000,
    BYTES_DEFAULT = 32,
    RECORDS_PER_ROUND_TRIP = 4, /* SEND, DELIVER each way */
    MSG_PING = 1,
    MSG_PONG = 2,
    REQ_SHUTDOWN = 1,
};

typedef struct traceload_state {
    uint64_t msgs, bytes; /* from the argument */
    uint64_t done;        /* round trips completed */
    os_handle_t a, b;     /* the two ends of the channel */
    uint64_t t0;          /* kernel clock at the first send */
    bool finished;
    uint8_t payload[OS_MSG_MAX_DATA];
} traceload_state_t;

static void finish(os_ctx_t *ctx, traceload_state_t *st, int status)
{
    init_shutdown_t s = {REQ_SHUTDOWN, status};

    st->finished = true;
    if (init_shutdown_send(ctx, init_channel(ctx), &s) < 0)
        os_exit(ctx, status);
}

static int parse_arg(os_ctx_t *ctx, traceload_state_t *st)
{
    const void *data;
    const char *key, *val;
    size_t len, klen, vlen, i = 0;
    int r;

    st->msgs = MSGS_DEFAULT;
    st->bytes = BYTES_DEFAULT;
    os_spawn_arg(ctx, &data, &len);
    while ((r = arg_item(data, len, &i, &key, &klen, &val, &vlen)) != 0) {
        if (r < 0)
            return -1;
        if (arg_is(key, klen, "msgs")) {
            if (!arg_u64(val, vlen, 1, MSGS_MAX, &st->msgs))
                return -1;
        } else if (arg_is(key, klen, "bytes")) {
            if (!arg_u64(val, vlen, 0, OS_MSG_MAX_DATA, &st->bytes))
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static void traceload_start(os_ctx_t *ctx)
{
    traceload_state_t *st = os_state(ctx);
    int rc;

    if (parse_arg(ctx, st) != 0) {
        os_log(ctx, "bad argument (msgs=1..%d,bytes=0..%d)", MSGS_MAX, OS_MSG_MAX_DATA);
        finish(ctx, st, 1);
        return;
    }
    for (size_t k = 0; k < st->bytes; k++)
        st->payload[k] = (uint8_t)k;
    rc = os_channel_create(ctx, &st->a, &st->b);
    if (rc == 0) {
        st->t0 = os_clock_now(ctx);
        rc = os_send(ctx, st->a, MSG_PING, st->payload, st->bytes, NULL, 0);
    }
    if (rc != 0) {
        os_log(ctx, "failed: %s", os_strerror(rc));
        finish(ctx, st, 1);
    }
}

static void traceload_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    traceload_state_t *st = os_state(ctx);
    int rc;

    if (ev->kind != OS_EV_MESSAGE || st->finished)
        return; /* init's reply to the shutdown, or nothing of ours */
    if (ev->handle == st->b && ev->type == MSG_PING) {
        rc = os_send(ctx, st->b, MSG_PONG, st->payload, st->bytes, NULL, 0);
    } else if (ev->handle == st->a && ev->type == MSG_PONG) {
        if (++st->done == st->msgs) {
            uint64_t ns = os_clock_now(ctx) - st->t0;
            os_log(ctx, "result msgs=%llu records=%llu ns=%llu", (unsigned long long)st->msgs,
                   (unsigned long long)(st->msgs * RECORDS_PER_ROUND_TRIP), (unsigned long long)ns);
            finish(ctx, st, 0);
            return;
        }
        rc = os_send(ctx, st->a, MSG_PING, st->payload, st->bytes, NULL, 0);
    } else {
        return;
    }
    if (rc != 0) {
        os_log(ctx, "failed: send: %s", os_strerror(rc));
        finish(ctx, st, 1);
    }
}

const os_program_t orrery_traceload = {"traceload", sizeof(traceload_state_t), traceload_start,
                                       traceload_on_event};
