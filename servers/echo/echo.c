/* echo.c — the echo server: answers each request with its own text (tests and benchmarks). */
#include <image.h>
#include <iface/echo.h>
#include <iface/init_client.h>

#include <string.h>

enum {
    ECHO_CLIENTS_MAX = 64,
    ECHO_REQ_REGISTER = 1,
};

typedef struct echo_state {
    os_handle_t clients[ECHO_CLIENTS_MAX]; /* NONE: free */
    uint64_t served;
    uint64_t rejected; /* malformed messages */
    uint64_t lost;     /* replies a client's full queue refused */
} echo_state_t;

static int client_index(echo_state_t *st, os_handle_t h)
{
    for (int i = 0; i < ECHO_CLIENTS_MAX; i++) {
        if (st->clients[i] != OS_HANDLE_NONE && st->clients[i] == h)
            return i;
    }
    return -1;
}

static void add_client(os_ctx_t *ctx, echo_state_t *st, os_handle_t chan)
{
    for (int i = 0; i < ECHO_CLIENTS_MAX; i++) {
        if (st->clients[i] == OS_HANDLE_NONE) {
            st->clients[i] = chan;
            return;
        }
    }
    os_log(ctx, "too many clients; refusing one");
    os_handle_close(ctx, chan);
}

static void on_request(os_ctx_t *ctx, echo_state_t *st, const os_event_t *ev)
{
    /* request and reply share their layout; decode straight into the reply */
    union {
        echo_request_t req;
        echo_reply_t rep;
    } m;
    int err = ev->type == echo_msg_request ? echo_request_decode(ev, &m.req) : OS_EPROTO;

    if (err < 0) {
        st->rejected++;
        iface_discard(ctx, ev);
        echo_error_t e = {ev->type, OS_EPROTO};
        echo_error_send(ctx, ev->handle, &e);
        return;
    }
    echo_reply_t *r = &m.rep;
    _Static_assert(sizeof(echo_request_t) == sizeof(echo_reply_t), "request and reply differ");
    err = echo_reply_send(ctx, ev->handle, r);
    if (err == 0)
        st->served++;
    else
        st->lost++; /* the client does not read its replies: its problem, not ours */
}

static void on_init_message(os_ctx_t *ctx, echo_state_t *st, const os_event_t *ev)
{
    union {
        init_new_client_t nc;
        init_reply_t reply;
    } m;

    if (ev->type == init_msg_new_client && init_new_client_decode(ev, &m.nc) == 0)
        add_client(ctx, st, m.nc.chan);
    else if (ev->type == init_msg_reply && init_reply_decode(ev, &m.reply) == 0) {
        if (m.reply.status < 0)
            os_log(ctx, "register echo: %s", os_strerror(m.reply.status));
    } else
        iface_discard(ctx, ev);
}

static void echo_start(os_ctx_t *ctx)
{
    int err = init_register_iface(ctx, ECHO_REQ_REGISTER, &echo_iface);
    if (err < 0)
        os_log(ctx, "register echo: %s", os_strerror(err));
}

static void echo_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    echo_state_t *st = os_state(ctx);
    int i;

    switch (ev->kind) {
    case OS_EV_MESSAGE:
        if (ev->handle == init_channel(ctx))
            on_init_message(ctx, st, ev);
        else if (client_index(st, ev->handle) >= 0)
            on_request(ctx, st, ev);
        else
            iface_discard(ctx, ev);
        break;
    case OS_EV_PEER_CLOSED:
        if ((i = client_index(st, ev->handle)) >= 0) {
            os_handle_close(ctx, st->clients[i]);
            st->clients[i] = OS_HANDLE_NONE;
        }
        break;
    default:
        break;
    }
}

const os_program_t orrery_echo = {"echo", sizeof(echo_state_t), echo_start, echo_on_event};
