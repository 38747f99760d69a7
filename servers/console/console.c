/* console.c — the console server: device input to one client, its output to the device. */
#include "console.h"

#include <image.h>
#include <iface/init_client.h>

#include <string.h>

void console_set_hold(os_ctx_t *ctx, console_state_t *st, bool hold)
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
void console_pump(os_ctx_t *ctx, console_state_t *st)
{
    bool ready = st->client != OS_HANDLE_NONE && !st->blocked;

    if (ready && st->pending.valid && st->credit > 0) {
        int err = send_item(ctx, st, &st->pending);
        if (sent(ctx, st, err)) {
            if (st->pending.type == console_msg_line) {
                st->lines++;
                edit_history_add(&st->ed, st->pending.text, st->pending.length);
            }
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
    if (st->term.on) {
        /* keystrokes are always taken (Ctrl-C must reach a running command) until the
           type-ahead is full */
        term_poke(ctx, st);
        console_set_hold(ctx, st, st->term.ahead_len == CONSOLE_AHEAD_MAX || st->eof);
        return;
    }
    console_set_hold(ctx, st, !ready || st->credit == 0 || st->pending.valid || st->eof);
}

void console_take_line(os_ctx_t *ctx, console_state_t *st, const char *text, size_t len)
{
    item_t *it = &st->pending;
    it->valid = true;
    it->type = console_msg_line;
    it->length = (uint32_t)len;
    memcpy(it->text, text, len);
    it->text[len] = 0;
    console_pump(ctx, st);
}

void console_take_eof(os_ctx_t *ctx, console_state_t *st)
{
    st->eof = true;
    console_pump(ctx, st);
}

static void on_device(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev)
{
    item_t *it = &st->pending;

    if (ev->type == HAL_CONSOLE_EOF) {
        st->eof = true;
        console_pump(ctx, st);
        return;
    }
    if (ev->type == HAL_CONSOLE_INFO) {
        term_on_info(ctx, st, ev);
        return;
    }
    if (ev->type == HAL_CONSOLE_KEYS) {
        term_on_keys(ctx, st, ev->data, ev->len);
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
    console_pump(ctx, st);
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
        console_pump(ctx, st);
    } else if (ev->type == console_msg_write && console_write_decode(ev, &m.write) == 0) {
        if (st->term.on) {
            term_write(ctx, st, m.write.data, m.write.data_len);
        } else {
            os_device_write(ctx, st->dev, HAL_CONSOLE_WRITE, m.write.data, m.write.data_len);
            term_track(&st->term, (const char *)m.write.data, m.write.data_len);
        }
    } else if (ev->type == console_msg_flush && console_flush_decode(ev, &m.flush) == 0) {
        /* writes reach the device synchronously, so everything before is out */
        console_flushed_t f = {m.flush.token};
        console_flushed_send(ctx, ev->handle, &f);
    } else if (!term_on_client(ctx, st, ev)) {
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
        term_new_client(ctx, st);
        console_pump(ctx, st);
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
    edit_init(&st->ed, 0);
    console_set_hold(ctx, st, true); /* no client yet: input waits in the device */
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
            console_pump(ctx, st);
        }
        break;
    case OS_EV_PEER_CLOSED:
        if (ev->handle == st->client) {
            os_handle_close(ctx, st->client);
            st->client = OS_HANDLE_NONE;
            console_pump(ctx, st);
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
