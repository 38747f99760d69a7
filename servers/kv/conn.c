/* conn.c — line-buffered TCP connections (lineconn.h), used by kv and kvclient: output kept
 * while tcpip's queue is full (sent on WRITABLE), input held while the owner has no room. */
#include <lineconn.h>

#include <iface/iface.h>

#include <string.h>

void lconn_init(lconn_t *c)
{
    memset(c, 0, offsetof(lconn_t, in));
    c->chan = OS_HANDLE_NONE;
}

int lconn_connect(os_ctx_t *ctx, lconn_t *c, os_handle_t tcp, uint32_t req, uint32_t addr,
                  uint16_t port)
{
    lconn_init(c);
    tcp_connect_t m = {.req = req, .addr = addr, .port = port};
    int rc = tcp_connect_send(ctx, tcp, &m);
    if (rc == 0) {
        c->state = LC_CONNECTING;
        c->req = req;
    }
    return rc;
}

bool lconn_control(os_ctx_t *ctx, lconn_t *c, const os_event_t *ev, bool *closed)
{
    (void)ctx;
    union {
        tcp_opened_t opened;
        tcp_reply_t reply;
    } m;
    *closed = false;
    if (c->state != LC_CONNECTING)
        return false;
    if (ev->type == tcp_msg_opened && tcp_opened_decode(ev, &m.opened) == 0 &&
        m.opened.req == c->req) {
        c->chan = m.opened.chan;
        c->state = LC_OPENING;
        return true;
    }
    if (ev->type == tcp_msg_reply && tcp_reply_decode(ev, &m.reply) == 0 && m.reply.req == c->req) {
        lconn_init(c);
        *closed = true;
        return true;
    }
    return false;
}

void lconn_accept(lconn_t *c, os_handle_t chan)
{
    lconn_init(c);
    c->chan = chan;
    c->state = LC_UP;
}

static void hold(os_ctx_t *ctx, lconn_t *c)
{
    bool want = c->paused || LC_IN_MAX - c->in_len < TCP_DATA_MAX;
    if (want != c->held) {
        os_handle_hold(ctx, c->chan, want);
        c->held = want;
    }
}

static void flush(os_ctx_t *ctx, lconn_t *c)
{
    size_t off = 0;
    while (!c->blocked && off < c->out_len) {
        size_t n = c->out_len - off;
        if (n > TCP_DATA_MAX)
            n = TCP_DATA_MAX;
        memcpy(c->msg.data, c->out + off, n);
        c->msg.data_len = (uint32_t)n;
        int rc = tcp_data_send(ctx, c->chan, &c->msg);
        if (rc == OS_EFULL) {
            c->blocked = true;
        } else if (rc < 0) {
            off = c->out_len; /* the channel is gone: PEER_CLOSED follows */
        } else {
            off += n;
        }
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
}

void lconn_close(os_ctx_t *ctx, lconn_t *c, bool graceful)
{
    if (c->chan != OS_HANDLE_NONE) {
        if (!graceful) {
            tcp_reset_t r = {0};
            tcp_reset_send(ctx, c->chan, &r);
        }
        os_handle_close(ctx, c->chan);
    }
    lconn_init(c);
}

lc_event_t lconn_event(os_ctx_t *ctx, lconn_t *c, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        lconn_close(ctx, c, true);
        return LC_CLOSED;
    }
    if (ev->kind == OS_EV_WRITABLE) {
        c->blocked = false;
        flush(ctx, c);
        return c->blocked ? LC_NOTHING : LC_WRITABLE;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return LC_NOTHING;
    union {
        tcp_established_t est;
        tcp_eof_t eof;
        tcp_error_t error;
    } m;
    if (ev->type == tcp_msg_data && tcp_data_decode(ev, &c->msg) == 0) {
        /* the buffer has room for a message whenever the channel is not held */
        size_t n = c->msg.data_len, room = LC_IN_MAX - c->in_len;
        if (n > room)
            n = room; /* cannot happen: held while less than a message fits */
        memcpy(c->in + c->in_len, c->msg.data, n);
        c->in_len += n;
        hold(ctx, c);
        return LC_DATA;
    }
    if (ev->type == tcp_msg_established && tcp_established_decode(ev, &m.est) == 0) {
        c->state = LC_UP;
        return LC_ESTABLISHED;
    }
    if (ev->type == tcp_msg_eof ||
        (ev->type == tcp_msg_error && tcp_error_decode(ev, &m.error) == 0 && m.error.type == 0)) {
        /* the peer is done (or the connection failed): we say no more either */
        lconn_close(ctx, c, ev->type == tcp_msg_eof);
        return LC_CLOSED;
    }
    iface_discard(ctx, ev);
    return LC_NOTHING;
}

int lconn_line(os_ctx_t *ctx, lconn_t *c, char *line, size_t max)
{
    if (c->state != LC_UP || c->paused)
        return -1;
    char *nl = memchr(c->in, '\n', c->in_len);
    if (!nl) {
        if (LC_IN_MAX - c->in_len < TCP_DATA_MAX) { /* a line this long: refuse it */
            c->in_len = 0;
            hold(ctx, c);
            return (int)max + 1;
        }
        return -1;
    }
    size_t n = (size_t)(nl - c->in);
    size_t used = n + 1;
    if (n > 0 && c->in[n - 1] == '\r')
        n--;
    int rc = (int)n;
    if (n > max)
        rc = (int)max + 1;
    else
        memcpy(line, c->in, n);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    hold(ctx, c);
    return rc;
}

size_t lconn_room(const lconn_t *c)
{
    return c->state == LC_UP ? LC_OUT_MAX - c->out_len : 0;
}

bool lconn_write(os_ctx_t *ctx, lconn_t *c, const char *p, size_t n)
{
    if (c->state != LC_UP || n > LC_OUT_MAX - c->out_len)
        return false;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    flush(ctx, c);
    return true;
}

void lconn_pause(os_ctx_t *ctx, lconn_t *c, bool pause)
{
    c->paused = pause;
    if (c->chan != OS_HANDLE_NONE)
        hold(ctx, c);
}
