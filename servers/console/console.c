/* console.c — the console server: device input to one client, its output to the device. */
#include <image.h>
#include <iface/console.h>
#include <iface/init_client.h>

#include <string.h>

enum {
    CONSOLE_CREDIT_MAX = 32, /* input items a client may ask for ahead (console.read) */
    CONSOLE_REQ_REGISTER = 1,
};

/*
 * Input is taken from the device only when the client has asked for it: the
 * device is held otherwise, so unread input stays in the kernel's queue and at
 * the platform, never here. A console that is killed or crashes loses nothing:
 * its successor opens the device and reads on where it stopped (and the kernel
 * tells it again if input had already ended).
 */

/* The one item taken from the device and not yet given to a client. */
typedef struct item {
    bool valid;
    uint32_t type;   /* console_msg_line, _overlong */
    uint32_t length; /* line: bytes in text; overlong: the dropped line's length */
    char text[CONSOLE_LINE_MAX + 1];
} item_t;

typedef struct console_state {
    os_handle_t dev;    /* the "console" device */
    os_handle_t client; /* the one client (the latest to connect), or NONE */
    bool blocked;       /* the client's queue was full: wait for WRITABLE */
    uint32_t credit;    /* input items the client asked for (console.read) and has not got */
    bool held;          /* the device is held: nobody wants input now */
    uint32_t lines;     /* lines forwarded */
    bool eof;           /* input ended: tell each client after the last item */
    bool eof_sent;      /* ... the current client was told */
    bool eof_reported;  /* ... init was told (input_ended) */
    item_t pending;     /* taken while a client asked, not delivered yet (its queue was full
                           or it went away): the next client gets it first */
} console_state_t;

static void set_hold(os_ctx_t *ctx, console_state_t *st, bool hold)
{
    if (st->held != hold && os_handle_hold(ctx, st->dev, hold) == 0)
        st->held = hold;
}

static int send_item(os_ctx_t *ctx, console_state_t *st, const item_t *it)
{
    switch (it->type) {
    case console_msg_line: {
        console_line_t m;
        memcpy(m.text, it->text, it->length);
        m.text[it->length] = 0;
        return console_line_send(ctx, st->client, &m);
    }
    default: {
        console_overlong_t m = {it->length};
        return console_overlong_send(ctx, st->client, &m);
    }
    }
}

/* Handle a send result: false if the client cannot take more now. */
static bool sent(os_ctx_t *ctx, console_state_t *st, int err)
{
    if (err == OS_EFULL) {
        st->blocked = true;
        return false;
    }
    if (err == OS_EPEER || err == OS_EBADH) {
        os_handle_close(ctx, st->client);
        st->client = OS_HANDLE_NONE;
        return false;
    }
    return true;
}

/* Give the client what it asked for, then take more from the device only if it wants more. */
static void pump(os_ctx_t *ctx, console_state_t *st)
{
    bool ready = st->client != OS_HANDLE_NONE && !st->blocked;

    if (ready && st->pending.valid && st->credit > 0) {
        int err = send_item(ctx, st, &st->pending);
        if (sent(ctx, st, err)) {
            if (st->pending.type == console_msg_line)
                st->lines++;
            st->pending.valid = false;
            st->credit--;
        }
        ready = st->client != OS_HANDLE_NONE && !st->blocked;
    }
    if (ready && st->eof && !st->pending.valid && !st->eof_sent) {
        console_eof_t m = {st->lines};
        if (sent(ctx, st, console_eof_send(ctx, st->client, &m)))
            st->eof_sent = true;
        ready = st->client != OS_HANDLE_NONE && !st->blocked;
    }
    if (st->eof && !st->eof_reported && (st->eof_sent || st->client == OS_HANDLE_NONE)) {
        /* after the client has everything: init decides whether anyone is left to act on it */
        init_input_ended_t m = {st->lines};
        if (init_input_ended_send(ctx, init_channel(ctx), &m) == 0)
            st->eof_reported = true;
    }
    set_hold(ctx, st, !ready || st->credit == 0 || st->pending.valid || st->eof);
}

static void on_device(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev)
{
    item_t *it = &st->pending;

    if (ev->type == HAL_CONSOLE_EOF) {
        st->eof = true;
        pump(ctx, st);
        return;
    }
    if (it->valid) {
        /* NEVER: the device is held while an item waits */
        os_log(ctx, "console input arrived while a line was still waiting; dropped");
        return;
    }
    switch (ev->type) {
    case HAL_CONSOLE_LINE:
        it->valid = true;
        it->length = (uint32_t)ev->len;
        if (ev->len > CONSOLE_LINE_MAX) {
            /* the device promises short lines; never trust it with our buffer */
            it->type = console_msg_overlong;
            break;
        }
        it->type = console_msg_line;
        memcpy(it->text, ev->data, ev->len);
        for (size_t i = 0; i < ev->len; i++) {
            if (it->text[i] == 0)
                it->text[i] = '?'; /* a str carries no NUL */
        }
        break;
    case HAL_CONSOLE_OVERLONG:
        it->valid = true;
        it->type = console_msg_overlong;
        it->length = 0;
        if (ev->len == sizeof(uint32_t))
            memcpy(&it->length, ev->data, sizeof it->length);
        break;
    default:
        break;
    }
    pump(ctx, st);
}

static void reject(os_ctx_t *ctx, os_handle_t ch, const os_event_t *ev)
{
    iface_discard(ctx, ev);
    console_error_t e = {ev->type, OS_EPROTO};
    console_error_send(ctx, ch, &e);
}

static void on_client_message(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev)
{
    union {
        console_write_t write;
        console_flush_t flush;
        console_read_t read;
    } m;

    if (ev->type == console_msg_read && console_read_decode(ev, &m.read) == 0) {
        uint32_t room = CONSOLE_CREDIT_MAX - st->credit; /* a sane bound on credit */
        st->credit += m.read.count < room ? m.read.count : room;
        pump(ctx, st);
    } else if (ev->type == console_msg_write && console_write_decode(ev, &m.write) == 0) {
        os_device_write(ctx, st->dev, HAL_CONSOLE_WRITE, m.write.data, m.write.data_len);
    } else if (ev->type == console_msg_flush && console_flush_decode(ev, &m.flush) == 0) {
        /* writes reach the device synchronously, so everything before is out */
        console_flushed_t f = {m.flush.token};
        console_flushed_send(ctx, ev->handle, &f);
    } else {
        reject(ctx, ev->handle, ev);
    }
}

static void on_init_message(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev)
{
    union {
        init_new_client_t nc;
        init_reply_t reply;
    } m;

    if (ev->type == init_msg_new_client && init_new_client_decode(ev, &m.nc) == 0) {
        /* one client at a time: the newest wins (a restarted shell reconnects) */
        if (st->client != OS_HANDLE_NONE)
            os_handle_close(ctx, st->client);
        st->client = m.nc.chan;
        st->blocked = false;
        st->credit = 0;       /* it asks for input when it is ready */
        st->eof_sent = false; /* a new client (a restarted shell) learns it too */
        pump(ctx, st);
    } else if (ev->type == init_msg_reply && init_reply_decode(ev, &m.reply) == 0) {
        if (m.reply.status < 0)
            os_log(ctx, "register console: %s", os_strerror(m.reply.status));
    } else {
        iface_discard(ctx, ev);
    }
}

static void console_start(os_ctx_t *ctx)
{
    console_state_t *st = os_state(ctx);
    int err = os_device_open(ctx, "console", &st->dev);
    if (err < 0)
        os_panic(ctx, "cannot open the console device: %s", os_strerror(err));
    set_hold(ctx, st, true); /* no client yet: input waits in the device */
    err = init_register_iface(ctx, CONSOLE_REQ_REGISTER, &console_iface);
    if (err < 0)
        os_log(ctx, "register console: %s", os_strerror(err));
}

static void console_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    console_state_t *st = os_state(ctx);

    switch (ev->kind) {
    case OS_EV_DEVICE:
        if (ev->handle == st->dev)
            on_device(ctx, st, ev);
        break;
    case OS_EV_MESSAGE:
        if (ev->handle == init_channel(ctx))
            on_init_message(ctx, st, ev);
        else if (ev->handle == st->client)
            on_client_message(ctx, st, ev);
        else
            iface_discard(ctx, ev);
        break;
    case OS_EV_WRITABLE:
        if (ev->handle == st->client) {
            st->blocked = false;
            pump(ctx, st);
        }
        break;
    case OS_EV_PEER_CLOSED:
        if (ev->handle == st->client) {
            os_handle_close(ctx, st->client);
            st->client = OS_HANDLE_NONE;
            pump(ctx, st);
        } else if (ev->handle != init_channel(ctx)) {
            os_handle_close(ctx, ev->handle);
        }
        break;
    default:
        break;
    }
}

const os_program_t orrery_console = {"console", sizeof(console_state_t), console_start,
                                     console_on_event};
