/* kv_peer.c — fuzz_kv's fake peer (kv_peer.h): it plays init, the fs server (kv's log file) and
 * tcpip for kv, and kv's followers or leader; every line kv writes is checked here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iface/fs.h>
#include <iface/init_client.h>
#include <iface/tcp.h>
#include <sim/sim.h>

#include "kv_peer.h"

bool verbose;
fz_in_t *IN;

void check(bool ok, const char *what)
{
    if (!ok) {
        size_t len = 0;
        const char *out = sim_console_output(&len);
        fprintf(stderr, "fuzz_kv: invariant broken: %s\n", what);
        if (len)
            fprintf(stderr, "--- console ---\n%.*s\n---\n", (int)(len > 4000 ? 4000 : len),
                    out + (len > 4000 ? len - 4000 : 0));
        abort();
    }
}

/* ---- state (kv_peer.h says what each is) ----------------------------------------------- */

kv_fake_t P;
kv_role_t R;
kv_file_t F;
model_t M[FOLLOWERS + 1];
uint32_t leader_epoch;
int leader_conn = -1;
kv_writes_t W;
kv_entry_t sent[KV_LOG_MAX + 1];
uint32_t sent_hi;

/* ---- lines to kv ------------------------------------------------------------------------- */

static void flush(conn_t *c)
{
    static tcp_data_t d;
    size_t off = 0;
    while (!c->blocked && off < c->out_len) {
        size_t n = c->out_len - off < TCP_DATA_MAX ? c->out_len - off : TCP_DATA_MAX;
        memcpy(d.data, c->out + off, n);
        d.data_len = (uint32_t)n;
        int rc = tcp_data_send(P.ctx, c->h, &d);
        if (rc == OS_EFULL)
            c->blocked = true;
        else if (rc < 0)
            off = c->out_len;
        else
            off += n;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
}

/* Queue bytes for kv on c; false when they do not fit (then nothing is queued). */
bool say(conn_t *c, const char *p, size_t n)
{
    if (c->out_len + n > OUT_MAX)
        return false;
    if (verbose)
        fprintf(stderr, "conn %d -> kv: %.*s%s", (int)(c - P.c), (int)(n > 100 ? 100 : n), p,
                n && p[n - 1] == '\n' ? "" : "\n");
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    flush(c);
    return true;
}

void sayf(conn_t *c, const char *fmt, ...)
{
    char buf[KV_LINE_MAX + 16];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && !say(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1))
        c->raw = true;
}

void say_entry(conn_t *c, const kv_entry_t *log, uint32_t i)
{
    char line[KV_LINE_MAX];
    size_t n = kv_format_entry(&log[i], i > 1 ? log[i - 1].epoch : 0, line);
    if (!say(c, line, n))
        c->raw = true;
}

/* ---- the models --------------------------------------------------------------------------- */

/* An entry of the leader's log into a follower's model: kv's own rule (repl.c follow_entry). */
static void model_entry(model_t *m, const kv_entry_t *e, uint32_t prev_epoch)
{
    uint32_t i = e->index;
    if (m->bad)
        return;
    if (i > m->len + 1) {
        m->bad = true;
        m->nack = m->len + 1;
        return;
    }
    if (i > 1 && m->log[i - 1].epoch != prev_epoch) {
        if (m->len > i - 2)
            m->len = i - 2;
        if (m->matched > m->len)
            m->matched = m->len;
        if (m->claimed > m->len)
            m->claimed = m->len; /* it no longer holds what it acknowledged past here */
        m->bad = true;
        m->nack = i - 1;
        return;
    }
    if (i > m->len || m->log[i].epoch != e->epoch) {
        m->len = i - 1;
        if (m->claimed > m->len)
            m->claimed = m->len;
        m->log[i] = *e;
        m->len = i;
    }
    m->matched = i;
}

uint32_t last_epoch(const model_t *m)
{
    return m->len ? m->log[m->len].epoch : 0;
}

/* ---- checks on what kv wrote ------------------------------------------------------------- */

/* Records 1..n of a file image read back whole and chained (kv's own loader). */
static uint32_t loaded_len(const uint8_t *img, size_t size, kv_entry_t *into)
{
    kv_loader_t ld = {0};
    kv_load_records(&ld, into, 0, img, size - size % KV_REC);
    return ld.len;
}

static kv_entry_t scratch[KV_LOG_MAX + 1];

static bool entry_is(const kv_entry_t *e, uint8_t key, uint32_t seq)
{
    char k[8], v[16];
    int kl = snprintf(k, sizeof k, "k%u", key), vl = snprintf(v, sizeof v, "v%u", (unsigned)seq);
    return e->key_len == kl && memcmp(e->key, k, (size_t)kl) == 0 && e->value_len == vl &&
           memcmp(e->value, v, (size_t)vl) == 0;
}

/* The leader answered OK to write seq of key: a majority must hold its entry. */
static void check_ok(uint8_t key, uint32_t seq)
{
    uint32_t maj = (uint32_t)(R.npeers + 1) / 2 + 1;
    uint32_t synced = loaded_len(F.synced, F.synced_size, scratch);
    for (uint32_t i = 1; i <= KV_LOG_MAX; i++) {
        bool mine = i <= synced && entry_is(&scratch[i], key, seq);
        if (!mine && (i > sent_hi || !entry_is(&sent[i], key, seq)))
            continue;
        uint32_t count = mine;
        for (int f = 0; f < R.npeers; f++)
            count += M[f].lied || M[f].claimed >= i;
        if (count >= maj)
            return;
    }
    check(false, "leader: OK for a write that no majority holds (its fsync'ed log, the ACKs)");
}

static bool printable(const char *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (p[k] < 0x20 || p[k] > 0x7e)
            return false;
    return true;
}

static bool same_entry(const kv_entry_t *a, const kv_entry_t *b)
{
    return a->epoch == b->epoch && a->key_len == b->key_len &&
           memcmp(a->key, b->key, a->key_len) == 0 && a->value_len == b->value_len &&
           memcmp(a->value, b->value, a->value_len) == 0;
}

/* Follower role: its durable entries (fsync'ed; written, with the bug) read back into scratch:
 * how many, and in *leaders how many of them from the first are the fake leader's (its epochs
 * are its own, LEADER_EPOCHS, so no entry of the follower's own log passes for one of its). */
static uint32_t durable_now(uint32_t *leaders)
{
    uint32_t got =
        R.bug ? loaded_len(F.data, F.size, scratch) : loaded_len(F.synced, F.synced_size, scratch);
    const model_t *m = &M[FOLLOWERS];
    uint32_t k = 0;
    while (k < got && k < m->len && same_entry(&scratch[k + 1], &m->log[k + 1]))
        k++;
    *leaders = k;
    return got;
}

void hold_window(conn_t *c)
{
    if (!R.leader && !c->windowed) {
        c->windowed = true;
        c->win_len = durable_now(&c->win_leaders);
    }
}

/* The durable log changed (an fsync; a write, with the bug): the windows of held connections
 * keep the most of it there was. */
static void durable_changed(void)
{
    uint32_t len = 0, leaders = 0;
    bool done = false;
    for (int i = 0; i < CONNS_MAX; i++) {
        conn_t *c = &P.c[i];
        if (!c->used || !c->windowed)
            continue;
        if (!done)
            len = durable_now(&leaders), done = true;
        if (len > c->win_len)
            c->win_len = len;
        if (leaders > c->win_leaders)
            c->win_leaders = leaders;
    }
}

/* A client's answer on the leader: it must fit the request at the head of the queue. */
static void client_answer(conn_t *c, const char *s, size_t n)
{
    bool ok = n == 2 && memcmp(s, "OK", 2) == 0;
    bool nf = n == 8 && memcmp(s, "NOTFOUND", 8) == 0;
    bool value = n >= 7 && n <= 6 + KV_VALUE_MAX && memcmp(s, "VALUE ", 6) == 0;
    bool err = n >= 5 && memcmp(s, "ERR ", 4) == 0;
    check(ok || nf || value || err, "leader: a client answer that is not OK, VALUE, NOTFOUND, ERR");
    check(printable(s, n), "leader: a control byte in a client answer");
    if (c->raw)
        return;
    check(c->nreq > 0, "leader: an answer to no request");
    req_t r = c->req[0];
    memmove(c->req, c->req + 1, (size_t)--c->nreq * sizeof c->req[0]);
    if (verbose)
        fprintf(stderr, "  (answers %s k%u, write %u)\n",
                r.verb == KV_V_PUT   ? "PUT"
                : r.verb == KV_V_GET ? "GET"
                                     : "a bad line",
                r.key, (unsigned)r.seq);
    if (r.verb == KV_V_PUT) {
        check(ok || err, "leader: a PUT answered with neither OK nor ERR");
        if (ok) {
            P.oks++;
            check_ok(r.key, r.seq);
            W.acked_at[r.seq] = ++W.now;
        } else {
            W.refused[r.seq] = true;
        }
    } else if (r.verb == KV_V_GET) {
        check(value || nf || err, "leader: a GET answered with neither VALUE, NOTFOUND nor ERR");
        if (!P.honest || r.key >= KEYS)
            return;
        /* Values name their writes. A read may return any write not overwritten before it was
         * sent: not one whose key got a write sent after its OK and acknowledged before the
         * GET went out (a lost write); NOTFOUND only while no write of the key had been
         * acknowledged when it went out. Writes of several connections race, so the order is
         * that of the peer's sends and reads, not of the write numbers. */
        unsigned seq = 0;
        if (value) {
            char v[KV_VALUE_MAX + 1], tail;
            snprintf(v, sizeof v, "%.*s", (int)(n - 6), s + 6);
            check(sscanf(v, "v%u%c", &seq, &tail) == 1 && seq < WRITES_MAX &&
                      W.sent_key[seq] == (uint32_t)r.key + 1u && !W.refused[seq],
                  "leader: GET returned a value never written to that key");
        }
        if (!value && !nf)
            return;
        for (uint32_t w = 1; w <= W.seq && w < WRITES_MAX; w++) {
            if (W.sent_key[w] != (uint32_t)r.key + 1u || !W.acked_at[w] || W.acked_at[w] > r.at)
                continue; /* another key, or not acknowledged before the GET went out */
            if (nf)
                check(false, "leader: NOTFOUND for a key with an acknowledged write");
            else if (W.acked_at[seq] && W.sent_at[w] > W.acked_at[seq])
                check(false, "leader: GET returned a value overwritten by an acknowledged write "
                             "before it was asked (a lost write)");
        }
    } else {
        check(err, "leader: a malformed request answered without ERR");
    }
}

/* The fake leader sends its log from index next, then SYNC. */
static void leader_batch(conn_t *c, uint32_t next)
{
    model_t *m = &M[FOLLOWERS];
    if (next < 1)
        next = 1;
    for (uint32_t i = next; i <= m->len && i < next + KV_BATCH; i++)
        say_entry(c, m->log, i);
    sayf(c, "SYNC\n");
}

/* A line kv wrote on connection c (without its '\n'). */
static void kv_line(int ci, const char *s, size_t n)
{
    conn_t *c = &P.c[ci];
    static kv_line_t l;
    P.lines++;
    check(n <= KV_LINE_MAX - 1, "a line longer than 511 bytes");
    if (verbose)
        fprintf(stderr, "kv -> conn %d: %.*s\n", ci, (int)(n > 100 ? 100 : n), s);
    if (c->kind == C_CLIENT && R.leader) {
        client_answer(c, s, n);
        return;
    }
    bool err = n >= 5 && memcmp(s, "ERR ", 4) == 0;
    kv_parse_line(s, n, &l);
    if (c->kind == C_FOLLOWER) {
        check(l.verb == KV_V_HELLO || l.verb == KV_V_FETCH || l.verb == KV_V_E ||
                  l.verb == KV_V_SYNC,
              "leader: a line to a follower that is not HELLO, FETCH, E, SYNC");
        model_t *m = &M[c->f];
        if (l.verb == KV_V_E) {
            sent[l.e.index] = l.e;
            if (l.e.index > sent_hi)
                sent_hi = l.e.index;
        }
        if (!m->auto_answer)
            return;
        switch (l.verb) {
        case KV_V_HELLO:
            /* kv's follower starts matching afresh (repl.c follower_line), but what it
             * acknowledged stays in its log, and kv may count an ACK sent before this HELLO
             * (read before the LOG answer) for an OK the peer reads after it: claimed stays */
            m->bad = false;
            m->matched = 0;
            sayf(c, "LOG %u %u\n", (unsigned)m->len, (unsigned)last_epoch(m));
            break;
        case KV_V_FETCH:
            for (uint32_t i = l.a ? l.a : 1; i <= m->len; i++)
                say_entry(c, m->log, i);
            sayf(c, "END %u\n", (unsigned)m->len);
            break;
        case KV_V_E:
            model_entry(m, &l.e, l.c);
            break;
        default: /* SYNC */
            if (m->bad) {
                m->bad = false;
                sayf(c, "NACK %u\n", (unsigned)m->nack);
            } else {
                if (m->matched > m->claimed)
                    m->claimed = m->matched;
                sayf(c, "ACK %u\n", (unsigned)m->matched);
            }
        }
        return;
    }
    /* a follower's connection: a client, or the fake leader */
    check(err || l.verb == KV_V_LOG || l.verb == KV_V_E || l.verb == KV_V_END ||
              l.verb == KV_V_ACK || l.verb == KV_V_NACK,
          "follower: a line that is not LOG, E, END, ACK, NACK, ERR");
    if (l.verb == KV_V_ACK) {
        P.acks++;
        /* ACK n: entries 1..n are durable (written, with the bug), and they are the leader's;
         * on a connection the input held, at some moment since the hold began (kv wrote the
         * line then; later lines of the leader's may have changed its log since) */
        uint32_t leaders, got = durable_now(&leaders);
        if (c->windowed) {
            got = got > c->win_len ? got : c->win_len;
            leaders = leaders > c->win_leaders ? leaders : c->win_leaders;
        }
        check(got >= l.a, "follower: ACK n before entries 1..n were in its fsync'ed log");
        if (ci == leader_conn && !c->raw && P.honest && l.a <= M[FOLLOWERS].len)
            check(leaders >= l.a,
                  "follower: ACK n, but its entries 1..n on disk are not the leader's");
    }
    if (ci != leader_conn || c->raw)
        return;
    if (l.verb == KV_V_LOG)
        leader_batch(c, l.a < M[FOLLOWERS].len ? l.a : M[FOLLOWERS].len);
    else if (l.verb == KV_V_NACK)
        leader_batch(c, l.a);
    else if (l.verb == KV_V_ACK && l.a < M[FOLLOWERS].len)
        leader_batch(c, l.a + 1);
}

static void kv_bytes(int ci, const uint8_t *d, size_t n)
{
    conn_t *c = &P.c[ci];
    for (size_t k = 0; k < n; k++) {
        if (d[k] == '\n') {
            kv_line(ci, c->in, c->in_len);
            if (!P.c[ci].used)
                return;
            c->in_len = 0;
            continue;
        }
        check(c->in_len < KV_LINE_MAX, "a line longer than 511 bytes");
        c->in[c->in_len++] = (char)d[k];
    }
}

/* ---- the fake peer: init, fs, tcpip --------------------------------------------------------- */

int new_conn(os_handle_t h, ckind_t kind)
{
    for (int i = 0; i < CONNS_MAX; i++)
        if (!P.c[i].used) {
            memset(&P.c[i], 0, sizeof P.c[i]);
            P.c[i].used = true;
            P.c[i].h = h;
            P.c[i].kind = kind;
            return i;
        }
    return -1;
}

void drop_conn(int i)
{
    if (!P.c[i].used)
        return;
    os_handle_close(P.ctx, P.c[i].h);
    P.c[i].used = false;
    if (i == leader_conn)
        leader_conn = -1;
}

static int conn_of(os_handle_t h)
{
    for (int i = 0; i < CONNS_MAX; i++)
        if (P.c[i].used && P.c[i].h == h)
            return i;
    return -1;
}

bool tagged_pair(const iface_t *ifc, os_handle_t *near, os_handle_t *far)
{
    if (os_channel_create(P.ctx, near, far) != 0)
        return false;
    os_channel_tag(P.ctx, *near, iface_id(ifc));
    os_channel_tag(P.ctx, *far, iface_id(ifc));
    return true;
}

static void fs_answer(const os_event_t *ev)
{
    static union {
        fs_read_t read;
        fs_write_t write;
        fs_data_t data;
    } m;
    uint32_t req = ev->len >= 4 ? ((const uint32_t *)ev->data)[0] : 0;
    if (P.fs_fail) {
        P.fs_fail = false;
        fs_reply_send(P.ctx, P.file, &(fs_reply_t){req, OS_EIO});
        return;
    }
    if (ev->type == fs_msg_read && fs_read_decode(ev, &m.read) == 0) {
        uint64_t off = m.read.off, len = m.read.len > FS_DATA_MAX ? FS_DATA_MAX : m.read.len;
        fs_data_t *d = &m.data;
        d->req = req;
        d->data_len = 0;
        if (off < F.size) {
            d->data_len = (uint32_t)(F.size - off < len ? F.size - off : len);
            memcpy(d->data, F.data + off, d->data_len);
        }
        fs_data_send(P.ctx, P.file, d);
    } else if (ev->type == fs_msg_write && fs_write_decode(ev, &m.write) == 0) {
        uint64_t off = m.write.off, end = off + m.write.data_len;
        if (end > FILE_MAX) {
            fs_reply_send(P.ctx, P.file, &(fs_reply_t){req, OS_ENOSPC});
            return;
        }
        if (off > F.size)
            memset(F.data + F.size, 0, off - F.size);
        memcpy(F.data + off, m.write.data, m.write.data_len);
        if (end > F.size)
            F.size = end;
        if (end > F.used)
            F.used = end;
        if (F.lo > off)
            F.lo = off;
        if (F.hi < end)
            F.hi = end;
        if (R.bug)
            durable_changed();
        fs_reply_send(P.ctx, P.file, &(fs_reply_t){req, (int32_t)m.write.data_len});
    } else if (ev->type == fs_msg_fsync) {
        if (F.hi > F.lo)
            memcpy(F.synced + F.lo, F.data + F.lo, F.hi - F.lo);
        F.synced_size = F.size;
        F.lo = FILE_MAX;
        F.hi = 0;
        durable_changed();
        fs_reply_send(P.ctx, P.file, &(fs_reply_t){req, 0});
    } else {
        fs_error_send(P.ctx, P.file, &(fs_error_t){ev->type, OS_EPROTO});
    }
}

void fs_release(void)
{
    for (int i = 0; i < P.fs_q; i++)
        if (P.file != OS_HANDLE_NONE)
            fs_answer(&P.fs_q_ev[i]);
    P.fs_q = 0;
}

/* Answer kv's connect: a connection to a fake follower at once, or refused (unknown address). */
void answer_connect(const pending_connect_t *pc, int how)
{
    int f = (int)(pc->addr - FOLLOWER_ADDR);
    if (f < 0 || f >= R.npeers || how == 1) {
        tcp_reply_send(P.ctx, P.tcp, &(tcp_reply_t){pc->req, OS_ECONNREFUSED});
        return;
    }
    os_handle_t near, far;
    if (!tagged_pair(&tcp_iface, &near, &far))
        return;
    if (tcp_opened_send(P.ctx, P.tcp, &(tcp_opened_t){pc->req, 40000, far}) != 0) {
        os_handle_close(P.ctx, near);
        os_handle_close(P.ctx, far);
        return;
    }
    int ci = new_conn(near, C_FOLLOWER);
    if (ci < 0) {
        os_handle_close(P.ctx, near);
        return;
    }
    P.c[ci].f = f;
    if (how == 2)
        tcp_error_send(P.ctx, near, &(tcp_error_t){0, OS_ECONNREFUSED});
    else
        tcp_established_send(P.ctx, near,
                             &(tcp_established_t){0x0a00000a, 40000, pc->addr, pc->port});
}

static void on_tcp_ctl(const os_event_t *ev)
{
    union {
        tcp_listen_t l;
        tcp_connect_t c;
    } m;
    if (ev->type == tcp_msg_listen && tcp_listen_decode(ev, &m.l) == 0 &&
        P.listener == OS_HANDLE_NONE) {
        os_handle_t near, far;
        if (!tagged_pair(&tcp_iface, &near, &far))
            return;
        if (tcp_listening_send(P.ctx, P.tcp, &(tcp_listening_t){m.l.req, m.l.port, far}) == 0)
            P.listener = near;
        else
            os_handle_close(P.ctx, near), os_handle_close(P.ctx, far);
    } else if (ev->type == tcp_msg_connect && tcp_connect_decode(ev, &m.c) == 0) {
        pending_connect_t pc = {m.c.req, m.c.addr, m.c.port};
        if (!P.net_trouble)
            answer_connect(&pc, 0);
        else if (P.npc < 8)
            P.pc[P.npc++] = pc;
    } else {
        uint32_t req = ev->len >= 4 ? ((const uint32_t *)ev->data)[0] : 0;
        tcp_reply_send(P.ctx, P.tcp, &(tcp_reply_t){req, OS_EINVAL});
    }
}

static void peer_event(os_ctx_t *ctx, const os_event_t *ev)
{
    int i;
    if (ev->kind == OS_EV_TASK_EXIT && ev->handle == P.task) {
        P.kv_exited = true;
        P.kv_status = ev->status;
        os_handle_close(ctx, P.task);
        P.task = OS_HANDLE_NONE;
        return;
    }
    if (ev->kind == OS_EV_WRITABLE) {
        if ((i = conn_of(ev->handle)) >= 0) {
            P.c[i].blocked = false;
            flush(&P.c[i]);
        }
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED) {
        os_handle_t h = ev->handle;
        if ((i = conn_of(h)) >= 0) {
            drop_conn(i);
            return;
        }
        if (h == P.file)
            P.fs_q = 0;
        os_handle_t *mine[] = {&P.boot, &P.fs, &P.tcp, &P.file, &P.listener};
        for (size_t k = 0; k < sizeof mine / sizeof mine[0]; k++)
            if (*mine[k] == h) {
                os_handle_close(ctx, h);
                *mine[k] = OS_HANDLE_NONE;
            }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    for (size_t k = 0; k < ev->nhandles; k++)
        os_handle_close(ctx, ev->handles[k]); /* kv sends us none */
    os_handle_t h = ev->handle;
    if (h == P.boot) {
        init_connect_t c;
        os_handle_t near, far;
        if (init_connect_decode(ev, &c) != 0)
            return;
        bool fs = strcmp(c.name, "fs") == 0;
        if (!(fs || strcmp(c.name, "tcp") == 0) ||
            !tagged_pair(fs ? &fs_iface : &tcp_iface, &near, &far)) {
            init_reply_send(ctx, h, &(init_reply_t){c.req, OS_ENOENT, 0});
            return;
        }
        if (init_connected_send(ctx, h, &(init_connected_t){c.req, far}) != 0) {
            os_handle_close(ctx, near), os_handle_close(ctx, far);
            return;
        }
        *(fs ? &P.fs : &P.tcp) = near;
    } else if (h == P.fs) {
        static fs_open_t o;
        os_handle_t near, far;
        if (fs_open_decode(ev, &o) != 0 || !tagged_pair(&fs_iface, &near, &far)) {
            fs_reply_send(ctx, h, &(fs_reply_t){o.req, OS_EINVAL});
            return;
        }
        if (fs_opened_send(ctx, h, &(fs_opened_t){o.req, 12, FS_T_REG, F.size, far}) != 0) {
            os_handle_close(ctx, near), os_handle_close(ctx, far);
            return;
        }
        P.file = near;
    } else if (h == P.file) {
        if (P.fs_slow && P.fs_q < 4) {
            os_event_t *q = &P.fs_q_ev[P.fs_q];
            *q = *ev;
            memcpy(P.fs_q_data[P.fs_q], ev->data, ev->len);
            q->data = P.fs_q_data[P.fs_q++];
            q->nhandles = 0;
        } else {
            fs_answer(ev);
        }
    } else if (h == P.tcp) {
        on_tcp_ctl(ev);
    } else if ((i = conn_of(h)) >= 0) {
        static tcp_data_t d;
        if (ev->type == tcp_msg_data && tcp_data_decode(ev, &d) == 0)
            kv_bytes(i, d.data, d.data_len);
        else if (ev->type == tcp_msg_reset || ev->type == tcp_msg_shutdown)
            drop_conn(i); /* kv ended it */
        else
            check(false, "kv sent a message a tcp client never sends on a connection");
    }
}

static void peer_start(os_ctx_t *ctx)
{
    P.ctx = ctx;
}

const os_program_t kv_peer = {"fuzz_kv_peer", 0, peer_start, peer_event};
