/* tcpstream.c — a TCP stream client for the echo service (docs/kv.md, "The stream client"):
 * sends a seeded pseudo-random byte stream in writes of random sizes, checks every byte that
 * comes back, panics on a difference; a connection that fails is tried again from the start of
 * the stream (manifest: reach=tcp). */
#include <argwords.h>
#include <image.h>
#include <iface/init_client.h>
#include <iface/tcp.h>

#include <stdio.h>
#include <string.h>

/*
 * The arg: addr=A.B.C.D[,port=N][,bytes=N][,tries=N]: the echo server (port 7 by default), the
 * stream's length (1 MiB by default, at most 1 GiB) and how many connections may fail before
 * tcpstream gives up (default 20). The stream is xorshift64* seeded by os_random (the
 * simulator's seed): byte i of a try is the same on the way out and on the check. The end:
 * `tcpstream: N bytes echoed and checked (T tries)` and exit 0, or `tcpstream: gave up after
 * N tries` and exit 1. A byte that differs: `tcpstream: byte N differs: sent 0xAA, got 0xBB`
 * and a panic.
 */
enum {
    REQ_TCP = 1,
    REQ_CONN = 2, /* + try */
    TICK_NS = 100 * 1000 * 1000,
    IDLE_NS = 120ull * 1000 * 1000 * 1000, /* no progress for this long: the try failed (past
                                            * lwIP's longest retransmission backoff) */
};

typedef struct stream {
    uint64_t rng;
    uint64_t word;
    int left; /* bytes of word not yet used */
} stream_t;

typedef struct tcpstream_state {
    uint32_t addr;
    uint16_t port;
    uint64_t bytes;
    uint32_t tries_max, tries;
    uint64_t seed;
    os_handle_t tcp, chan, timer;
    bool up, blocked, shut, opening;
    uint64_t sent, checked, progress_at, retry_at;
    uint64_t size_rng;
    stream_t out, in;
    uint32_t pending; /* bytes of out_msg not yet sent (OS_EFULL) */
    tcp_data_t out_msg, in_msg;
} tcpstream_state_t;

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint8_t next_byte(stream_t *s)
{
    if (s->left == 0) {
        s->word = xs(&s->rng);
        s->left = 8;
    }
    uint8_t b = (uint8_t)s->word;
    s->word >>= 8;
    s->left--;
    return b;
}

static bool parse_args(tcpstream_state_t *st, const char *s, size_t n)
{
    st->port = 7;
    st->bytes = 1 << 20;
    st->tries_max = 20;
    size_t i = 0;
    const char *k, *v;
    size_t kl, vl;
    int r;
    while ((r = arg_item(s, n, &i, &k, &kl, &v, &vl)) != 0) {
        uint64_t u;
        if (r < 0)
            return false;
        if (arg_is(k, kl, "addr") && arg_ipv4(v, vl, &st->addr)) {
        } else if (arg_is(k, kl, "port") && arg_u64(v, vl, 1, 65535, &u)) {
            st->port = (uint16_t)u;
        } else if (arg_is(k, kl, "bytes") && arg_u64(v, vl, 1, 1ull << 30, &u)) {
            st->bytes = u;
        } else if (arg_is(k, kl, "tries") && arg_u64(v, vl, 1, 1000, &u)) {
            st->tries_max = (uint32_t)u;
        } else {
            return false;
        }
    }
    return st->addr != 0;
}

/* A new try: the stream from its first byte on a new connection. */
static void start_try(os_ctx_t *ctx, tcpstream_state_t *st)
{
    if (st->tries == st->tries_max) {
        os_log(ctx, "tcpstream: gave up after %u tries", (unsigned)st->tries);
        os_exit(ctx, 1);
    }
    st->tries++;
    st->up = st->blocked = st->shut = false;
    st->opening = true;
    st->sent = st->checked = st->pending = 0;
    st->out = st->in = (stream_t){.rng = st->seed};
    st->size_rng = st->seed ^ 0x9e3779b97f4a7c15ull;
    st->progress_at = os_clock_now(ctx);
    tcp_connect_t m = {.req = REQ_CONN + st->tries, .addr = st->addr, .port = st->port};
    tcp_connect_send(ctx, st->tcp, &m);
}

static void fail_try(os_ctx_t *ctx, tcpstream_state_t *st, const char *why)
{
    os_log(ctx, "tcpstream: try %u: %s after %llu bytes checked", (unsigned)st->tries, why,
           (unsigned long long)st->checked);
    if (st->chan != OS_HANDLE_NONE) {
        tcp_reset_t r = {0};
        tcp_reset_send(ctx, st->chan, &r);
        os_handle_close(ctx, st->chan);
    }
    st->chan = OS_HANDLE_NONE;
    st->up = st->opening = false;
    st->retry_at = os_clock_now(ctx) + 500ull * 1000 * 1000;
}

/* Send while the channel takes it. */
static void pump(os_ctx_t *ctx, tcpstream_state_t *st)
{
    while (st->up && !st->blocked) {
        if (st->pending == 0) {
            if (st->sent == st->bytes) {
                if (!st->shut) {
                    tcp_shutdown_t s = {1};
                    if (tcp_shutdown_send(ctx, st->chan, &s) == OS_EFULL) {
                        st->blocked = true;
                        return;
                    }
                    st->shut = true;
                }
                return;
            }
            uint64_t n = 1 + xs(&st->size_rng) % TCP_DATA_MAX;
            if (n > st->bytes - st->sent)
                n = st->bytes - st->sent;
            for (uint64_t i = 0; i < n; i++)
                st->out_msg.data[i] = next_byte(&st->out);
            st->out_msg.data_len = (uint32_t)n;
            st->pending = (uint32_t)n;
        }
        int rc = tcp_data_send(ctx, st->chan, &st->out_msg);
        if (rc == OS_EFULL) {
            st->blocked = true;
            return;
        }
        if (rc < 0)
            return; /* the channel is gone: its error or PEER_CLOSED follows */
        st->sent += st->pending;
        st->pending = 0;
    }
}

static void on_data(os_ctx_t *ctx, tcpstream_state_t *st, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t want = next_byte(&st->in);
        if (p[i] != want || st->checked >= st->sent)
            os_panic(ctx, "tcpstream: byte %llu differs: sent 0x%02x, got 0x%02x%s",
                     (unsigned long long)st->checked, want, p[i],
                     st->checked >= st->sent ? " (never sent)" : "");
        st->checked++;
    }
    st->progress_at = os_clock_now(ctx);
}

static void tcpstream_start(os_ctx_t *ctx)
{
    tcpstream_state_t *st = os_state(ctx);
    st->tcp = st->chan = st->timer = OS_HANDLE_NONE;
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    if (!parse_args(st, len ? arg : "", len)) {
        os_log(ctx, "bad arg '%.*s' (addr=A.B.C.D[,port=N][,bytes=N][,tries=N])",
               (int)(len > 200 ? 200 : len), len ? (const char *)arg : "");
        os_exit(ctx, 2);
    }
    os_random(ctx, &st->seed, sizeof st->seed);
    st->seed |= 1;
    if (os_timer_create(ctx, &st->timer) < 0)
        os_exit(ctx, 1);
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
}

static void on_conn(os_ctx_t *ctx, tcpstream_state_t *st, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (st->checked == st->bytes && st->shut) {
            os_log(ctx, "tcpstream: %llu bytes echoed and checked (%u tries)",
                   (unsigned long long)st->bytes, (unsigned)st->tries);
            os_exit(ctx, 0);
        }
        os_handle_close(ctx, st->chan);
        st->chan = OS_HANDLE_NONE;
        fail_try(ctx, st, "the connection closed");
        return;
    }
    if (ev->kind == OS_EV_WRITABLE) {
        st->blocked = false;
        pump(ctx, st);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    union {
        tcp_error_t error;
        tcp_eof_t eof;
    } m;
    if (ev->type == tcp_msg_data && tcp_data_decode(ev, &st->in_msg) == 0) {
        on_data(ctx, st, st->in_msg.data, st->in_msg.data_len);
    } else if (ev->type == tcp_msg_established) {
        st->up = true;
        st->opening = false;
        pump(ctx, st);
    } else if (ev->type == tcp_msg_eof && tcp_eof_decode(ev, &m.eof) == 0) {
        if (st->checked != st->bytes) {
            fail_try(ctx, st, "the echo ended early");
            return;
        }
        /* all back: the server closes the channel after our FIN and its own */
    } else if (ev->type == tcp_msg_error && tcp_error_decode(ev, &m.error) == 0 &&
               m.error.type == 0) {
        fail_try(ctx, st, os_strerror(m.error.status));
    } else {
        iface_discard(ctx, ev);
    }
}

static void tcpstream_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    tcpstream_state_t *st = os_state(ctx);
    os_handle_t h = ev->handle;
    if (ev->kind == OS_EV_TIMER && h == st->timer) {
        uint64_t now = os_clock_now(ctx);
        if (st->chan == OS_HANDLE_NONE && !st->opening && st->tcp != OS_HANDLE_NONE &&
            now >= st->retry_at)
            start_try(ctx, st);
        else if ((st->chan != OS_HANDLE_NONE || st->opening) && now - st->progress_at >= IDLE_NS)
            fail_try(ctx, st, "no progress in 120 s");
        os_timer_set(ctx, st->timer, now + TICK_NS);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED && (h == init_channel(ctx) || h == st->tcp)) {
        os_log(ctx, "tcpstream: the tcpip server went away; exiting");
        os_exit(ctx, 1);
    }
    if (h == init_channel(ctx) && ev->kind == OS_EV_MESSAGE) {
        union {
            init_connected_t conn;
            init_reply_t reply;
        } m;
        if (init_connected_decode(ev, &m.conn) == 0) {
            st->tcp = m.conn.chan;
            start_try(ctx, st);
            os_timer_set(ctx, st->timer, os_clock_now(ctx) + TICK_NS);
        } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
            os_log(ctx, "tcpstream: connect tcp: %s; exiting", os_strerror(m.reply.status));
            os_exit(ctx, 1);
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    if (h == st->tcp && ev->kind == OS_EV_MESSAGE) {
        union {
            tcp_opened_t opened;
            tcp_reply_t reply;
        } m;
        if (tcp_opened_decode(ev, &m.opened) == 0) {
            if (st->opening && m.opened.req == REQ_CONN + st->tries && st->chan == OS_HANDLE_NONE)
                st->chan = m.opened.chan;
            else
                os_handle_close(ctx, m.opened.chan); /* a try given up on */
        } else if (tcp_reply_decode(ev, &m.reply) == 0) {
            if (st->opening && m.reply.req == REQ_CONN + st->tries)
                fail_try(ctx, st, os_strerror(m.reply.status));
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    if (st->chan != OS_HANDLE_NONE && h == st->chan) {
        on_conn(ctx, st, ev);
        return;
    }
    if (ev->kind == OS_EV_MESSAGE)
        iface_discard(ctx, ev);
}

const os_program_t orrery_tcpstream = {"tcpstream", sizeof(tcpstream_state_t), tcpstream_start,
                                       tcpstream_on_event};
