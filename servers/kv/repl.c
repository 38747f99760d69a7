/* repl.c — the kv store's replication and clients: the leader's recovery (collect the logs of a
 * majority, adopt the best, persist it under a new epoch), its batches to the followers and its
 * commit rule; a follower's answers; PUT and GET (docs/kv.md). */
#include "kv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
    REQ_LISTEN = 3,
    REQ_PEER = 16,                     /* + peer index + KV_PEERS_MAX * attempt */
    ANSWER_NS = 3000ull * 1000 * 1000, /* a follower's answer is due within this */
    BACKOFF_MAX_MS = 2000,
};

static uint64_t ms(uint64_t n)
{
    return n * 1000 * 1000;
}

static void sayf(os_ctx_t *ctx, lconn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A formatted line to c (dropped, as a whole, when its output is full). */
static void sayf(os_ctx_t *ctx, lconn_t *c, const char *fmt, ...)
{
    char buf[KV_LINE_MAX + 16];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        lconn_write(ctx, c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static kv_logpos_t own_pos(const kv_state_t *st)
{
    return (kv_logpos_t){st->len, st->len ? st->log[st->len].epoch : 0};
}

static void listen_now(os_ctx_t *ctx, kv_state_t *st)
{
    st->listen_sent = true;
    tcp_listen_t l = {REQ_LISTEN, 0, st->args.port, KV_CLIENTS_MAX};
    tcp_listen_send(ctx, st->tcp, &l);
}

/* ---- leader: peers ------------------------------------------------------------------------ */

static void peer_down(os_ctx_t *ctx, kv_state_t *st, kv_peer_t *p, const char *why)
{
    char a[16];
    snprintf(a, sizeof a, "%u.%u.%u.%u", p->addr >> 24, p->addr >> 16 & 255, p->addr >> 8 & 255,
             p->addr & 255);
    if (p->logged || p->c.state == LC_UP)
        os_log(ctx, "follower %s: %s; connecting again", a, why);
    lconn_close(ctx, &p->c, false);
    p->logged = p->inflight = false;
    p->deadline = 0;
    p->retry_at = os_clock_now(ctx) + ms(p->backoff_ms);
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
    if (st->phase == KP_FETCH && st->fetch_peer == (int)(p - st->peers)) {
        os_log(ctx, "recovery: the log being fetched is gone; starting over");
        st->fetch_peer = -1;
        kv_reload(ctx, st); /* our own log again, then a new majority */
    }
}

static void peer_connect(os_ctx_t *ctx, kv_state_t *st, kv_peer_t *p)
{
    size_t i = (size_t)(p - st->peers);
    uint32_t req = REQ_PEER + (uint32_t)i + KV_PEERS_MAX * (++p->attempt % 100000);
    if (lconn_connect(ctx, &p->c, st->tcp, req, p->addr, st->args.port) < 0)
        p->retry_at = os_clock_now(ctx) + ms(p->backoff_ms);
    else
        p->deadline = os_clock_now(ctx) + ANSWER_NS;
}

/* Send p the entries from p->next (a batch, then SYNC) if none is out. */
static void send_batch(os_ctx_t *ctx, kv_state_t *st, kv_peer_t *p)
{
    if (!p->logged || p->inflight || st->phase < KP_CATCHUP || p->next > st->len)
        return;
    uint32_t last = p->next + KV_BATCH - 1;
    if (last > st->len)
        last = st->len;
    if (lconn_room(&p->c) < (size_t)(last - p->next + 2) * KV_LINE_MAX)
        last = p->next; /* one at least; the rest when output drains */
    if (lconn_room(&p->c) < 2 * KV_LINE_MAX)
        return; /* on WRITABLE */
    for (uint32_t i = p->next; i <= last; i++) {
        size_t n = kv_format_entry(&st->log[i], i > 1 ? st->log[i - 1].epoch : 0, st->text);
        lconn_write(ctx, &p->c, st->text, n);
    }
    lconn_write(ctx, &p->c, "SYNC\n", 5);
    p->inflight = true;
    p->deadline = os_clock_now(ctx) + ANSWER_NS;
}

/* Advance commit to the highest entry of this epoch that a majority holds durably. */
static void update_commit(os_ctx_t *ctx, kv_state_t *st)
{
    if (st->phase < KP_CATCHUP)
        return;
    uint32_t maj = kv_majority(st);
    for (uint32_t n = st->len; n > st->commit; n--) {
        if (st->log[n].epoch != st->epoch)
            break; /* an older epoch's entry commits with the first of ours after it */
        uint32_t count = st->synced >= n;
        for (size_t i = 0; i < st->args.npeers; i++)
            count += st->peers[i].match >= n;
        if (count >= maj) {
            st->commit = n;
            break;
        }
    }
    if (st->phase == KP_CATCHUP && st->commit >= st->nop_index) {
        st->phase = KP_SERVE;
        os_log(ctx, "leader: serving: epoch %u, %u entries committed", (unsigned)st->epoch,
               (unsigned)st->commit);
    }
    for (size_t i = 0; i < KV_CLIENTS_MAX; i++) {
        kv_client_t *c = &st->clients[i];
        if (c->c.state == LC_UP && c->wait_index && c->wait_index <= st->commit) {
            c->wait_index = 0;
            lconn_write(ctx, &c->c, "OK\n", 3);
            lconn_pause(ctx, &c->c, false);
        }
    }
}

static void persist(os_ctx_t *ctx, kv_state_t *st);

/* A majority of logs is known: adopt the best (fetching it if a follower has it). */
static void try_recover(os_ctx_t *ctx, kv_state_t *st)
{
    if (st->phase != KP_COLLECT)
        return;
    kv_logpos_t cand[KV_PEERS_MAX + 1];
    int who[KV_PEERS_MAX + 1];
    size_t n = 0;
    cand[n] = own_pos(st);
    who[n++] = -1;
    for (size_t i = 0; i < st->args.npeers; i++)
        if (st->peers[i].logged) {
            cand[n] = st->peers[i].pos;
            who[n++] = (int)i;
        }
    if (n < kv_majority(st))
        return;
    size_t best = kv_log_choose(cand, n);
    uint32_t top = st->epoch;
    for (size_t i = 0; i < n; i++)
        if (cand[i].last_epoch > top)
            top = cand[i].last_epoch;
    st->epoch = top; /* the new one is past every epoch seen */
    if (who[best] >= 0) {
        kv_peer_t *p = &st->peers[who[best]];
        os_log(ctx,
               "recovery: fetching the log of a follower (%u entries, last epoch %u; ours "
               "%u, %u)",
               (unsigned)p->pos.len, (unsigned)p->pos.last_epoch, (unsigned)cand[0].len,
               (unsigned)cand[0].last_epoch);
        st->phase = KP_FETCH;
        st->fetch_peer = who[best];
        st->first_change = UINT32_MAX;
        sayf(ctx, &p->c, "FETCH 1\n");
        p->deadline = os_clock_now(ctx) + ANSWER_NS;
        return;
    }
    st->first_change = UINT32_MAX;
    persist(ctx, st); /* our own */
}

/* The adopted log is in memory: a new epoch, its no-op, and everything to the disk. */
static void persist(os_ctx_t *ctx, kv_state_t *st)
{
    if (st->first_change != UINT32_MAX) {
        kv_chain(st->log, st->first_change, st->len);
        if (st->written >= st->first_change) {
            st->written = st->first_change - 1;
            st->trunc_needed = true;
            if (st->synced > st->written)
                st->synced = st->written;
        }
    }
    st->epoch++;
    st->header_dirty = true;
    st->commit = 0;
    if (st->len == KV_LOG_MAX) {
        os_log(ctx, "recovery: the log is full (%d entries): no room for a new epoch; exiting",
               KV_LOG_MAX);
        os_exit(ctx, 1);
    }
    kv_entry_t nop = {.epoch = st->epoch};
    kv_append(st, &nop);
    st->nop_index = st->len;
    st->phase = KP_PERSIST;
    os_log(ctx, "recovery: adopted %u entries; epoch %u", (unsigned)st->len - 1,
           (unsigned)st->epoch);
    kv_file_pump(ctx, st);
}

static void start_replication(os_ctx_t *ctx, kv_state_t *st)
{
    st->phase = KP_CATCHUP;
    for (size_t i = 0; i < st->args.npeers; i++) {
        kv_peer_t *p = &st->peers[i];
        if (p->logged) {
            uint32_t common = p->pos.len < st->len ? p->pos.len : st->len;
            p->next = common ? common : 1;
            p->match = 0;
            send_batch(ctx, st, p);
        }
    }
    update_commit(ctx, st);
}

/* A line from follower p. */
static void peer_line(os_ctx_t *ctx, kv_state_t *st, kv_peer_t *p, const kv_line_t *l)
{
    switch (l->verb) {
    case KV_V_LOG:
        p->logged = true;
        p->pos = (kv_logpos_t){l->a, l->b};
        p->deadline = 0;
        p->backoff_ms = 100;
        p->inflight = false;
        p->match = 0;
        if (st->phase == KP_COLLECT) {
            try_recover(ctx, st);
        } else if (st->phase >= KP_CATCHUP) {
            uint32_t common = p->pos.len < st->len ? p->pos.len : st->len;
            p->next = common ? common : 1;
            send_batch(ctx, st, p);
        }
        return;
    case KV_V_E:
        if (st->phase == KP_FETCH && st->fetch_peer == (int)(p - st->peers)) {
            uint32_t i = l->e.index;
            if (i > st->len + 1) {
                peer_down(ctx, st, p, "its log has a gap");
                return;
            }
            if (i > st->len || st->log[i].epoch != l->e.epoch) {
                if (i < st->first_change)
                    st->first_change = i;
                st->log[i] = l->e;
                if (i > st->len)
                    st->len = i;
            }
            p->deadline = os_clock_now(ctx) + ANSWER_NS;
        }
        return;
    case KV_V_END:
        if (st->phase == KP_FETCH && st->fetch_peer == (int)(p - st->peers)) {
            if (l->a < st->len) {
                if (l->a + 1 < st->first_change)
                    st->first_change = l->a + 1;
                st->len = l->a;
            }
            p->deadline = 0;
            st->fetch_peer = -1;
            persist(ctx, st);
        }
        return;
    case KV_V_ACK:
    case KV_V_NACK:
        if (!p->inflight)
            return;
        p->inflight = false;
        p->deadline = 0;
        if (l->verb == KV_V_ACK && l->a <= st->len) {
            if (l->a > p->match)
                p->match = l->a;
            p->next = l->a + 1;
            update_commit(ctx, st);
        } else if (l->verb == KV_V_NACK) {
            p->next = l->a ? l->a : 1;
        }
        send_batch(ctx, st, p);
        return;
    default:
        peer_down(ctx, st, p, "a line it should not send");
    }
}

/* ---- clients and the follower's side ---------------------------------------------------- */

static void get(os_ctx_t *ctx, kv_state_t *st, kv_client_t *c, const kv_entry_t *k)
{
    for (uint32_t i = st->commit; i >= 1; i--) {
        const kv_entry_t *e = &st->log[i];
        if (e->key_len == k->key_len && memcmp(e->key, k->key, k->key_len) == 0) {
            sayf(ctx, &c->c, "VALUE %.*s\n", (int)e->value_len, e->value);
            return;
        }
    }
    lconn_write(ctx, &c->c, "NOTFOUND\n", 9);
}

static void put(os_ctx_t *ctx, kv_state_t *st, kv_client_t *c, kv_entry_t *e)
{
    if (st->len == KV_LOG_MAX) {
        sayf(ctx, &c->c, "ERR log full (%d entries)\n", KV_LOG_MAX);
        return;
    }
    e->epoch = st->epoch;
    kv_append(st, e);
    c->wait_index = st->len;
    lconn_pause(ctx, &c->c, true); /* its next line after the answer */
    kv_file_pump(ctx, st);
    for (size_t i = 0; i < st->args.npeers; i++)
        send_batch(ctx, st, &st->peers[i]);
    update_commit(ctx, st); /* a cluster of one */
}

/* Follower: the answer to a SYNC, once what it covers is durable (written, with the bug). */
static void check_ack(os_ctx_t *ctx, kv_state_t *st)
{
    if (!st->ack_pending || st->leader_ci < 0)
        return;
    uint32_t durable = st->args.bugs & KV_BUG_ACK_BEFORE_FSYNC ? st->written : st->synced;
    if (durable >= st->ack_index && st->header_synced == st->header_written) {
        st->ack_pending = false;
        sayf(ctx, &st->clients[st->leader_ci].c, "ACK %u\n", (unsigned)st->ack_index);
    }
}

/* Follower: send the fetched entries while there is room. */
static void fetch_pump(os_ctx_t *ctx, kv_state_t *st)
{
    if (!st->fetching || st->leader_ci < 0)
        return;
    lconn_t *c = &st->clients[st->leader_ci].c;
    while (st->fetch_next <= st->len && lconn_room(c) >= 2 * KV_LINE_MAX) {
        uint32_t i = st->fetch_next++;
        size_t n = kv_format_entry(&st->log[i], i > 1 ? st->log[i - 1].epoch : 0, st->text);
        lconn_write(ctx, c, st->text, n);
    }
    if (st->fetch_next > st->len && lconn_room(c) >= KV_LINE_MAX) {
        sayf(ctx, c, "END %u\n", (unsigned)st->len);
        st->fetching = false;
    }
}

/* Follower: an entry of the leader's log. */
static void follow_entry(kv_state_t *st, const kv_entry_t *e, uint32_t prev_epoch)
{
    uint32_t i = e->index;
    if (st->bad)
        return;
    if (i > st->len + 1) {
        st->bad = true;
        st->nack = st->len + 1;
        return;
    }
    if (i > 1 && st->log[i - 1].epoch != prev_epoch) {
        kv_truncate(st, i - 2); /* entry i-1 is not the leader's */
        st->bad = true;
        st->nack = i - 1;
        return;
    }
    if (i > st->len || st->log[i].epoch != e->epoch) {
        kv_truncate(st, i - 1);
        kv_append(st, e);
    }
    st->matched = i;
}

static void follower_line(os_ctx_t *ctx, kv_state_t *st, int ci, const kv_line_t *l)
{
    kv_client_t *c = &st->clients[ci];
    if (l->verb == KV_V_HELLO) {
        if (st->leader_ci >= 0 && st->leader_ci != ci)
            lconn_close(ctx, &st->clients[st->leader_ci].c, false); /* the leader's old one */
        st->leader_ci = ci;
        st->matched = 0;
        st->bad = st->ack_pending = st->fetching = false;
        sayf(ctx, &c->c, "LOG %u %u\n", (unsigned)st->len,
             (unsigned)(st->len ? st->log[st->len].epoch : 0));
        return;
    }
    if (ci != st->leader_ci) {
        lconn_write(ctx, &c->c, "ERR not the leader\n", 19);
        return;
    }
    switch (l->verb) {
    case KV_V_FETCH:
        st->fetching = true;
        st->fetch_next = l->a ? l->a : 1;
        fetch_pump(ctx, st);
        break;
    case KV_V_E:
        follow_entry(st, &l->e, l->c);
        kv_file_pump(ctx, st);
        break;
    case KV_V_SYNC:
        if (st->bad) {
            st->bad = false;
            sayf(ctx, &c->c, "NACK %u\n", (unsigned)st->nack);
        } else {
            st->ack_pending = true;
            st->ack_index = st->matched;
            check_ack(ctx, st);
        }
        break;
    default:
        lconn_write(ctx, &c->c, "ERR not the leader\n", 19);
    }
}

static void client_line(os_ctx_t *ctx, kv_state_t *st, int ci, int n)
{
    kv_client_t *c = &st->clients[ci];
    kv_line_t *l = &st->line;
    if (n > KV_LINE_MAX - 1) {
        sayf(ctx, &c->c, "ERR line longer than %d bytes\n", KV_LINE_MAX - 1);
        return;
    }
    kv_parse_line(st->text, (size_t)n, l);
    if (!st->args.leader) {
        if (l->verb == KV_V_BAD)
            sayf(ctx, &c->c, "ERR %s\n", l->why);
        else
            follower_line(ctx, st, ci, l);
        return;
    }
    if (l->verb == KV_V_BAD) {
        sayf(ctx, &c->c, "ERR %s\n", l->why);
    } else if (l->verb != KV_V_PUT && l->verb != KV_V_GET) {
        lconn_write(ctx, &c->c, "ERR the leader takes PUT and GET\n", 33);
    } else if (st->phase != KP_SERVE) {
        lconn_write(ctx, &c->c, "ERR recovering\n", 15);
    } else if (l->verb == KV_V_GET) {
        get(ctx, st, c, &l->e);
    } else {
        put(ctx, st, c, &l->e);
    }
}

/* ---- what kv.c calls -------------------------------------------------------------------- */

void kv_loaded(os_ctx_t *ctx, kv_state_t *st)
{
    if (!st->listen_sent)
        listen_now(ctx, st);
    if (!st->args.leader) {
        st->phase = KP_SERVE;
        return;
    }
    st->phase = KP_COLLECT;
    for (size_t i = 0; i < st->args.npeers; i++)
        if (st->peers[i].c.state == LC_FREE)
            peer_connect(ctx, st, &st->peers[i]);
    try_recover(ctx, st);
}

void kv_durable(os_ctx_t *ctx, kv_state_t *st)
{
    if (!st->args.leader) {
        check_ack(ctx, st);
        return;
    }
    if (st->phase == KP_PERSIST && st->header_synced == st->epoch)
        start_replication(ctx, st);
    else
        update_commit(ctx, st);
}

void kv_tick(os_ctx_t *ctx, kv_state_t *st)
{
    uint64_t now = os_clock_now(ctx);
    if (!st->args.leader || st->tcp == OS_HANDLE_NONE || st->phase < KP_COLLECT)
        return;
    for (size_t i = 0; i < st->args.npeers; i++) {
        kv_peer_t *p = &st->peers[i];
        if (p->c.state == LC_FREE && now >= p->retry_at)
            peer_connect(ctx, st, p);
        else if (p->c.state != LC_FREE && p->deadline && now >= p->deadline)
            peer_down(ctx, st, p, "no answer in 3 s");
    }
}

void kv_tcp_control(os_ctx_t *ctx, kv_state_t *st, const os_event_t *ev)
{
    union {
        tcp_listening_t ok;
        tcp_reply_t reply;
    } m;
    for (size_t i = 0; i < st->args.npeers; i++) {
        kv_peer_t *p = &st->peers[i];
        bool closed;
        if (lconn_control(ctx, &p->c, ev, &closed)) {
            if (closed)
                peer_down(ctx, st, p, "connect refused");
            return;
        }
    }
    if (tcp_listening_decode(ev, &m.ok) == 0) {
        st->listener = m.ok.chan;
        os_log(ctx, "%s on tcp port %u", st->args.leader ? "leader" : "follower",
               (unsigned)m.ok.port);
    } else if (tcp_reply_decode(ev, &m.reply) == 0 && m.reply.req == REQ_LISTEN) {
        os_log(ctx, "listen on tcp port %u: %s; exiting", (unsigned)st->args.port,
               os_strerror(m.reply.status));
        os_exit(ctx, 1);
    } else if (ev->type != tcp_msg_reply && ev->type != tcp_msg_opened) {
        iface_discard(ctx, ev);
    } else if (ev->type == tcp_msg_opened) {
        tcp_opened_t o; /* a connect we gave up on: close what it opened */
        if (tcp_opened_decode(ev, &o) == 0)
            os_handle_close(ctx, o.chan);
    }
}

void kv_accepted(os_ctx_t *ctx, kv_state_t *st, os_handle_t chan)
{
    for (size_t i = 0; i < KV_CLIENTS_MAX; i++) {
        kv_client_t *c = &st->clients[i];
        if (c->c.state == LC_FREE) {
            lconn_accept(&c->c, chan);
            c->wait_index = 0;
            return;
        }
    }
    os_handle_close(ctx, chan); /* full */
}

static void client_lines(os_ctx_t *ctx, kv_state_t *st, int ci)
{
    kv_client_t *c = &st->clients[ci];
    int n;
    while (c->c.state == LC_UP && (n = lconn_line(ctx, &c->c, st->text, KV_LINE_MAX - 1)) >= 0)
        client_line(ctx, st, ci, n);
}

bool kv_conn_event(os_ctx_t *ctx, kv_state_t *st, const os_event_t *ev)
{
    for (size_t i = 0; i < st->args.npeers; i++) {
        kv_peer_t *p = &st->peers[i];
        if (p->c.state == LC_FREE || p->c.chan != ev->handle)
            continue;
        switch (lconn_event(ctx, &p->c, ev)) {
        case LC_ESTABLISHED:
            sayf(ctx, &p->c, "HELLO %u\n", (unsigned)st->epoch);
            p->deadline = os_clock_now(ctx) + ANSWER_NS;
            break;
        case LC_WRITABLE:
            send_batch(ctx, st, p);
            break;
        case LC_CLOSED:
            p->c.state = LC_FREE; /* freed by lconn_event */
            peer_down(ctx, st, p, "the connection ended");
            break;
        case LC_DATA: {
            int n;
            while (p->c.state == LC_UP &&
                   (n = lconn_line(ctx, &p->c, st->text, KV_LINE_MAX - 1)) >= 0) {
                if (n > KV_LINE_MAX - 1) {
                    peer_down(ctx, st, p, "a line too long");
                    break;
                }
                kv_parse_line(st->text, (size_t)n, &st->line);
                if (st->line.verb == KV_V_BAD) {
                    peer_down(ctx, st, p, st->line.why);
                    break;
                }
                peer_line(ctx, st, p, &st->line);
            }
            break;
        }
        default:
            break;
        }
        return true;
    }
    for (int i = 0; i < KV_CLIENTS_MAX; i++) {
        kv_client_t *c = &st->clients[i];
        if (c->c.state == LC_FREE || c->c.chan != ev->handle)
            continue;
        switch (lconn_event(ctx, &c->c, ev)) {
        case LC_CLOSED:
            c->wait_index = 0;
            if (st->leader_ci == i) {
                st->leader_ci = -1;
                st->fetching = st->ack_pending = false;
            }
            break;
        case LC_WRITABLE:
            if (st->leader_ci == i)
                fetch_pump(ctx, st);
            client_lines(ctx, st, i);
            break;
        case LC_DATA:
            client_lines(ctx, st, i);
            break;
        default:
            break;
        }
        return true;
    }
    return false;
}
