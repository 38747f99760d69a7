/* fuzz_kv.c — libFuzzer target of kv (servers/kv): its clients, its followers or leader, and its
 * log file, all played by one fake peer. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hal/trace.h>
#include <iface/fs.h>
#include <iface/init_client.h>
#include <iface/tcp.h>
#include <image.h>
#include <k/audit.h>
#include <k/kernel.h>
#include <sim/sim.h>

#include "fz_input.h"
#include "kv.h"

/*
 * The input (docs/fuzzing.md, "kv"): a prelude, then ops (op()) until the input ends.
 *   prelude  the role (a leader of 0, 1 or 2 followers, a follower, a follower with
 *            bug=ack-before-fsync), kv's log file (entries made by kv_rec_encode, then one
 *            corruption: a flipped byte, a torn tail, a stale or unchained record past the end,
 *            a torn header; given its whole size or not), and the logs of the fake followers
 *            (leader) or of the fake leader (follower);
 *   boot     once: sim boots the fake peer `fuzz_kv_peer` as its first task. Per input the peer
 *            spawns a fresh kv with the role's arg and a bootstrap channel to itself: it plays
 *            init (kv's connects to fs and tcp), the fs server (the log file, in memory, with
 *            what was fsync'ed kept apart) and tcpip (the listener, accepted connections, kv's
 *            connects to its followers);
 *   feed     client lines from a vocabulary (PUT, GET, malformed, oversized, replication verbs
 *            on the client port) split at any point, raw bytes; fake followers that answer as
 *            kv's own followers do (LOG, E, END, ACK, NACK) unless the input turns them off or
 *            makes them say anything; a fake leader for a follower (HELLO, batches of E lines
 *            with right or wrong prev epochs, SYNC, FETCH, a new epoch that rewrites its log);
 *            connects answered, refused or left hanging; closes, resets, held connections
 *            (backpressure); a slow fs (answers held) and a failing one; time passing; kv killed
 *            and restarted on its file, or restarted after a power loss (the file as last
 *            fsync'ed);
 *   clean up release everything, let timers run, kill kv, close every channel; the task and
 *            endpoint counts must be back at their booted values, else the image reboots.
 * Invariants (abort() is the crash libFuzzer reports): kv never panics or faults, the kernel
 * audit holds after every op, a step ends; every line kv writes is at most 511 bytes and one its
 * protocol allows on that connection (OK, VALUE, NOTFOUND, ERR to a client; HELLO, FETCH, E,
 * SYNC to a follower; LOG, E, END, ACK, NACK, ERR to a leader); each client request gets the kind
 * of answer it may get, in order; a follower's `ACK n` comes only once entries 1..n read back
 * whole from the fsync'ed file (from the written one with the bug); a leader's `OK` only once a
 * majority holds the entry: its own fsync'ed file plus the followers that acknowledged it; and
 * while every follower line was kv's own protocol, a GET never returns a value older than the
 * last acknowledged write of its key, across restarts and power losses.
 * Persistent: the image boots once (seed 1) and reboots every REBOOT_EVERY inputs, after an
 * input that left it off its booted counts, and for every input of a reproducer run (files on
 * the command line, or FUZZ_FRESH=1).
 */

enum {
    CONNS_MAX = 16,                         /* connections the peer keeps */
    REQS_MAX = 32,                          /* client requests awaiting their answer */
    OUT_MAX = 16384,                        /* bytes queued to kv per connection */
    IN_MAX = 8192,                          /* bytes of kv's output kept while a line ends */
    FILE_MAX = (KV_LOG_MAX + 1) * KV_REC,   /* the log file's whole size */
    KEYS = 8,                               /* client keys k0..k7 */
    FOLLOWERS = 2,                          /* fake followers (leader role) */
    FOLLOWER_ADDR = 0x0a00000b,             /* 10.0.0.11, 10.0.0.12 */
    STEP_RECORDS = 2000000,                 /* trace records in one step: more is a hang */
    TIMER_SPIN_MAX = 10000,                 /* timer events at one instant: a hang */
    REBOOT_EVERY = 1000,                    /* inputs between reboots (teardown checks leaks) */
    FULL_EVERY = 16,                        /* one input in 16 runs the full audit */
};

static bool verbose;
static fz_in_t *IN;

static void check(bool ok, const char *what)
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

/* ---- state -------------------------------------------------------------------------------- */

typedef enum ckind { C_CLIENT, C_FOLLOWER, C_LEADER } ckind_t;

/* A client request whose answer is due: what kind of answer it may get. */
typedef struct req {
    kv_verb_t verb; /* KV_V_PUT, KV_V_GET, or KV_V_BAD: only ERR */
    uint8_t key;    /* k0..k7 (KEYS: another key) */
    uint32_t seq;   /* PUT: the write's number (its value is "v<seq>") */
    uint32_t at;    /* GET: when it was queued to kv (W.now) */
} req_t;

typedef struct conn {
    bool used, held, raw; /* raw: bytes off the vocabulary went in: answers are not paired */
    ckind_t kind;
    int f; /* C_FOLLOWER: which fake follower */
    os_handle_t h;
    bool blocked; /* our send got OS_EFULL: wait for WRITABLE */
    size_t out_len, in_len;
    char out[OUT_MAX];
    char in[IN_MAX];
    req_t req[REQS_MAX];
    int nreq;
} conn_t;

/* A fake follower (leader role), or the fake leader (follower role): a log of entries. */
typedef struct model {
    bool auto_answer; /* answers as kv's own follower does */
    uint32_t len;
    bool bad; /* a batch did not fit: NACK at its SYNC */
    uint32_t nack, matched;
    uint32_t claimed; /* the highest ACK it sent since its last LOG */
    kv_entry_t log[KV_LOG_MAX + 1];
} model_t;

typedef struct pending_connect {
    uint32_t req, addr;
    uint16_t port;
} pending_connect_t;

static struct {
    os_ctx_t *ctx;
    os_handle_t boot, fs, tcp, file, listener, task;
    uint32_t kv_id;
    int kv_status;
    bool kv_exited;
    conn_t c[CONNS_MAX];
    pending_connect_t pc[8];
    int npc;
    bool net_trouble; /* connects wait for an op instead of being answered at once */
    bool fs_slow;     /* file requests wait for an op */
    bool fs_fail;     /* the next file request fails */
    os_event_t fs_q_ev[4];
    uint8_t fs_q_data[4][OS_MSG_MAX_DATA];
    int fs_q;
    bool honest; /* every replication line kv got was its protocol's own */
    uint64_t lines, oks, acks;
} P;

static struct {
    bool leader, bug;
    int npeers;
    char arg[128];
} R;

/* the log file: as written (the fs server's cache) and as fsync'ed */
static struct {
    uint8_t data[FILE_MAX], synced[FILE_MAX];
    size_t size, synced_size, lo, hi; /* dirty range since the last fsync */
    size_t used;                      /* bytes past it are zero in both */
} F;

static model_t M[FOLLOWERS + 1]; /* followers 0, 1; [FOLLOWERS]: the fake leader */
static uint32_t leader_epoch;     /* the fake leader's */
static int leader_conn = -1;      /* the connection it speaks on */

/* what the clients' writes became (leader role) */
enum { WRITES_MAX = 4096 };
static struct {
    uint32_t seq;                  /* writes sent */
    uint32_t now;                  /* a clock of the peer's sends and of the answers it reads */
    uint32_t sent_key[WRITES_MAX]; /* seq -> key + 1 (0: not a client write) */
    uint32_t sent_at[WRITES_MAX];  /* when the PUT was queued to kv */
    uint32_t acked_at[WRITES_MAX]; /* when its OK was read (0: not, or not yet) */
    bool refused[WRITES_MAX];      /* its answer was ERR: it never took effect */
} W;
static kv_entry_t sent[KV_LOG_MAX + 1]; /* the entries kv sent its followers, by index */
static uint32_t sent_hi;                /* sent[1..sent_hi] may be in use */

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
static bool say(conn_t *c, const char *p, size_t n)
{
    if (c->out_len + n > OUT_MAX)
        return false;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    flush(c);
    return true;
}

static void sayf(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sayf(conn_t *c, const char *fmt, ...)
{
    char buf[KV_LINE_MAX + 16];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && !say(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1))
        c->raw = true;
}

static void say_entry(conn_t *c, const kv_entry_t *log, uint32_t i)
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
        m->bad = true;
        m->nack = i - 1;
        return;
    }
    if (i > m->len || m->log[i].epoch != e->epoch) {
        m->len = i - 1;
        m->log[i] = *e;
        m->len = i;
    }
    m->matched = i;
}

static uint32_t last_epoch(const model_t *m)
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
            count += M[f].claimed >= i;
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
            m->bad = false;
            m->matched = 0;
            m->claimed = 0;
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
        /* ACK n: entries 1..n are durable (written, with the bug) */
        uint32_t got = R.bug ? loaded_len(F.data, F.size, scratch)
                             : loaded_len(F.synced, F.synced_size, scratch);
        check(got >= l.a, "follower: ACK n before entries 1..n were in its fsync'ed log");
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

static int new_conn(os_handle_t h, ckind_t kind)
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

static void drop_conn(int i)
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

static bool tagged_pair(const iface_t *ifc, os_handle_t *near, os_handle_t *far)
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
        fs_reply_send(P.ctx, P.file, &(fs_reply_t){req, (int32_t)m.write.data_len});
    } else if (ev->type == fs_msg_fsync) {
        if (F.hi > F.lo)
            memcpy(F.synced + F.lo, F.data + F.lo, F.hi - F.lo);
        F.synced_size = F.size;
        F.lo = FILE_MAX;
        F.hi = 0;
        fs_reply_send(P.ctx, P.file, &(fs_reply_t){req, 0});
    } else {
        fs_error_send(P.ctx, P.file, &(fs_error_t){ev->type, OS_EPROTO});
    }
}

static void fs_release(void)
{
    for (int i = 0; i < P.fs_q; i++)
        if (P.file != OS_HANDLE_NONE)
            fs_answer(&P.fs_q_ev[i]);
    P.fs_q = 0;
}

/* Answer kv's connect: a connection to a fake follower at once, or refused (unknown address). */
static void answer_connect(const pending_connect_t *pc, int how)
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
        tcp_established_send(P.ctx, near, &(tcp_established_t){0x0a00000a, 40000, pc->addr, pc->port});
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
        if (!(fs || strcmp(c.name, "tcp") == 0) || !tagged_pair(fs ? &fs_iface : &tcp_iface,
                                                              &near, &far)) {
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

static const os_program_t peer = {"fuzz_kv_peer", 0, peer_start, peer_event};

/* ---- the watch: panics and hangs ---------------------------------------------------------- */

static int panics;
static uint64_t fire_ns, fires, step_records;
static void watch(void *self, const hal_trace_rec_t *r)
{
    (void)self;
    if (r->kind == HAL_TR_EXIT && (r->result == OS_EXIT_PANIC || r->result == OS_EXIT_FAULT))
        panics++;
    if (r->kind == HAL_TR_TIMER_FIRE) {
        fires = r->time_ns == fire_ns ? fires + 1 : 1;
        fire_ns = r->time_ns;
        check(fires <= TIMER_SPIN_MAX, "hang: a timer fired 10000 times at one instant");
    }
    check(++step_records <= STEP_RECORDS, "hang: a step ran 2000000 trace records");
}
static const hal_trace_sink_t sink = {.record = watch};

static void step(void)
{
    step_records = 0;
    sim_run_until_idle();
}

/* ---- kv: start, stop -------------------------------------------------------------------- */

static void spawn_kv(void)
{
    os_handle_t near, far;
    P.kv_exited = false;
    P.kv_id = 0;
    if (!tagged_pair(&init_iface, &near, &far))
        return;
    os_spawn_args_t a = {.program = "kv", .handles = &far, .nhandles = 1, .arg = R.arg,
                         .arg_len = strlen(R.arg)};
    if (os_spawn(P.ctx, &a, &P.task) != 0) {
        os_handle_close(P.ctx, near), os_handle_close(P.ctx, far);
        return;
    }
    os_task_handle_id(P.ctx, P.task, &P.kv_id);
    P.boot = near;
    for (int f = 0; f < FOLLOWERS; f++)
        M[f].claimed = 0; /* a new life: its followers' old ACKs are not its */
    memset(sent, 0, (sent_hi + 1) * sizeof sent[0]);
    sent_hi = 0;
}

/* Close every channel the peer keeps for kv (kv gone, or going). */
static void close_all(void)
{
    for (int i = 0; i < CONNS_MAX; i++)
        drop_conn(i);
    os_handle_t *mine[] = {&P.boot, &P.fs, &P.tcp, &P.file, &P.listener};
    for (size_t k = 0; k < sizeof mine / sizeof mine[0]; k++)
        if (*mine[k] != OS_HANDLE_NONE) {
            os_handle_close(P.ctx, *mine[k]);
            *mine[k] = OS_HANDLE_NONE;
        }
    P.fs_q = 0;
    P.npc = 0;
}

static void kill_kv(void)
{
    if (P.task != OS_HANDLE_NONE) {
        os_task_kill(P.ctx, P.task);
        step();
    }
    close_all();
    step();
}

/* ---- the prelude ------------------------------------------------------------------------ */

static void make_entry(kv_entry_t *e, uint32_t epoch, const char *key, unsigned n)
{
    memset(e, 0, sizeof *e);
    e->epoch = epoch;
    e->key_len = (uint8_t)snprintf(e->key, sizeof e->key, "%s", key);
    if (e->key_len) /* else the no-op a leader appends when it starts an epoch */
        e->value_len = (uint16_t)snprintf(e->value, sizeof e->value, "w%u", n);
}

/* A log of up to 15 entries whose epochs rise by the input's steps. */
static uint32_t make_log(kv_entry_t *log, uint32_t epoch, char who)
{
    uint8_t b = fz_byte(IN);
    uint32_t len = b % 16;
    for (uint32_t i = 1; i <= len; i++) {
        epoch += fz_byte(IN) % 3 == 2;
        char key[4] = {'o', who, (char)('0' + i % 4), 0};
        if (fz_byte(IN) % 4 == 0)
            make_entry(&log[i], epoch, "", 0); /* a no-op */
        else
            make_entry(&log[i], epoch, key, i);
    }
    kv_chain(log, 1, len);
    return len;
}

/* kv's log file: the header and entries, one corruption, its size. */
static void make_file(void)
{
    static kv_entry_t log[KV_LOG_MAX + 1];
    uint32_t hdr_epoch = fz_byte(IN) % 4;
    uint32_t len = make_log(log, hdr_epoch > 0 ? hdr_epoch - 1 : 0, 'l');
    memset(F.data, 0, F.used);
    memset(F.synced, 0, F.used);
    kv_entry_t hdr = {.epoch = hdr_epoch};
    kv_rec_encode(&hdr, F.data);
    for (uint32_t i = 1; i <= len; i++)
        kv_rec_encode(&log[i], F.data + (size_t)i * KV_REC);
    size_t end = (size_t)(len + 1) * KV_REC;
    uint8_t how = fz_byte(IN), a = fz_byte(IN), b = fz_byte(IN);
    switch (how % 8) {
    case 0: /* a byte flipped somewhere in the records */
        F.data[((size_t)a * 256 + b) % end] ^= (uint8_t)(1 + a % 255);
        break;
    case 1: /* a torn tail: the file ends inside a record */
        end -= 1 + b % (KV_REC - 1);
        break;
    case 2: { /* a stale record past the end: the next index, not chained */
        kv_entry_t e;
        make_entry(&e, a % 8, "ox0", 99);
        e.index = len + 1;
        e.prev = b;
        kv_rec_encode(&e, F.data + end);
        end += KV_REC;
        break;
    }
    case 3: { /* a record at the next place with a lower epoch, chained */
        kv_entry_t e;
        make_entry(&e, 0, "ox1", 98);
        e.index = len + 1;
        e.prev = len ? log[len].crc : 0;
        kv_rec_encode(&e, F.data + end);
        end += KV_REC;
        break;
    }
    case 4: /* a torn header */
        memset(F.data + 4, 0xff, 8);
        break;
    case 5: /* a record with another index */
        if (len) {
            log[1 + a % len].index += 1 + b % 3;
            kv_rec_encode(&log[1 + a % len], F.data + (size_t)(1 + a % len) * KV_REC);
        }
        break;
    default: /* whole */
        break;
    }
    /* its whole size mostly: kv gives a shorter file that size with zeros, 187 writes at most */
    switch (how >> 5 & 3) {
    case 0:
        F.size = end;
        break;
    case 1:
        F.size = 0; /* no file yet */
        memset(F.data, 0, end);
        break;
    default:
        F.size = FILE_MAX;
    }
    F.used = end + KV_REC;
    memcpy(F.synced, F.data, F.used);
    F.synced_size = F.size;
    F.lo = FILE_MAX;
    F.hi = 0;
}

static void prelude(void)
{
    uint8_t b = fz_byte(IN);
    int role = b % 5;
    R.leader = role < 3;
    R.npeers = R.leader ? role : 0;
    R.bug = role == 4;
    if (R.leader)
        snprintf(R.arg, sizeof R.arg, "role=leader,port=7000%s",
                 R.npeers == 0   ? ""
                 : R.npeers == 1 ? ",peers=10.0.0.11"
                                 : ",peers=10.0.0.11+10.0.0.12");
    else
        snprintf(R.arg, sizeof R.arg, "role=follower,port=7000%s",
                 R.bug ? ",bug=ack-before-fsync" : "");
    make_file();
    for (int f = 0; f <= FOLLOWERS; f++) {
        model_t *m = &M[f];
        m->auto_answer = true;
        m->bad = false;
        m->matched = m->claimed = 0;
        m->len = 0;
    }
    if (R.leader) {
        for (int f = 0; f < R.npeers; f++)
            M[f].len = make_log(M[f].log, 0, (char)('0' + f));
    } else {
        M[FOLLOWERS].len = make_log(M[FOLLOWERS].log, 1, 'L');
        leader_epoch = last_epoch(&M[FOLLOWERS]) + 1;
    }
}

/* ---- ops -------------------------------------------------------------------------------- */

static int pick_conn(ckind_t kind, bool any)
{
    uint8_t b = fz_byte(IN);
    for (int k = 0; k < CONNS_MAX; k++) {
        int i = (b + k) % CONNS_MAX;
        if (P.c[i].used && (any || P.c[i].kind == kind))
            return i;
    }
    return -1;
}

static int accept_conn(ckind_t kind)
{
    os_handle_t near, far;
    if (P.listener == OS_HANDLE_NONE || !tagged_pair(&tcp_iface, &near, &far))
        return -1;
    int ci = new_conn(near, kind);
    if (ci < 0 || tcp_accepted_send(P.ctx, P.listener,
                                    &(tcp_accepted_t){0x0a000014, 50000, 7000, far}) != 0) {
        if (ci >= 0)
            P.c[ci].used = false;
        os_handle_close(P.ctx, near), os_handle_close(P.ctx, far);
        return -1;
    }
    return ci;
}

/* A client request of the vocabulary; its expected answer is queued when it is modelled. */
static void client_request(int ci)
{
    conn_t *c = &P.c[ci];
    char line[KV_LINE_MAX * 2];
    uint8_t b = fz_byte(IN), k = fz_byte(IN) % KEYS;
    req_t r = {.verb = KV_V_BAD, .key = k};
    int n;
    switch (b % 16) {
    case 0:
    case 1:
    case 2:
    case 3:
        r.verb = KV_V_PUT;
        r.seq = ++W.seq;
        if (r.seq >= WRITES_MAX) {
            n = snprintf(line, sizeof line, "GET k%u\n", k);
            r.verb = KV_V_GET;
            break;
        }
        W.sent_key[r.seq] = (uint32_t)k + 1u;
        W.sent_at[r.seq] = ++W.now;
        n = snprintf(line, sizeof line, "PUT k%u v%u\n", k, (unsigned)r.seq);
        break;
    case 4:
    case 5:
    case 6:
        r.verb = KV_V_GET;
        n = snprintf(line, sizeof line, "GET k%u\r\n", k);
        break;
    case 7:
        r.verb = KV_V_GET;
        r.key = KEYS;
        n = snprintf(line, sizeof line, "GET o%c%u\n", "l01"[k % 3], k % 4);
        break;
    case 8: { /* a key or value at or past the limits */
        int kl = KV_KEY_MAX - 1 + k % 3, vl = KV_VALUE_MAX - 1 + fz_byte(IN) % 3;
        n = snprintf(line, sizeof line, "PUT %.*s %.*s\n", kl,
                     "KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK", vl,
                     "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"
                     "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"
                     "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"
                     "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV");
        r.verb = KV_V_BAD; /* OK or ERR: not paired */
        c->raw = true;
        break;
    }
    case 9: { /* malformed */
        static const char *const bad[] = {"PUT\n", "PUT k1\n", "PUT k1 \n", "GET\n",
                                          "GET a b\n", "PUT k\x01 v\n", "PUT k v\x7f\n",
                                          "FOO bar\n", "\n", "\r\n", "put k v\n", "GET  \n",
                                          "E 1 1 0\n", "ACK x\n", "LOG 1\n", "SYNC now\n"};
        n = snprintf(line, sizeof line, "%s", bad[k % 16]);
        break;
    }
    case 10: /* replication verbs on the client port */
    {
        static const char *const repl[] = {"SYNC\n", "ACK 1\n", "NACK 1\n", "LOG 0 0\n",
                                           "END 0\n", "FETCH 1\n", "E 1 1 0 k0 v0\n",
                                           "HELLO 1\n"};
        n = snprintf(line, sizeof line, "%s", repl[k]);
        if (!R.leader)
            c->raw = true; /* HELLO makes it the leader's; the rest are answered as such */
        break;
    }
    case 11: /* a line past 511 bytes */
        n = (int)(KV_LINE_MAX + k * 60);
        memset(line, 'x', (size_t)n - 1);
        line[n - 1] = '\n';
        break;
    default: /* GET then PUT of the same key, pipelined */
        r.verb = KV_V_GET;
        n = snprintf(line, sizeof line, "GET k%u\n", k);
        break;
    }
    if (!c->raw && R.leader) {
        r.at = ++W.now;
        if (c->nreq == REQS_MAX)
            c->raw = true;
        else
            c->req[c->nreq++] = r;
    }
    /* in pieces: kv sees each alone now and then */
    size_t at = 0, len = (size_t)n;
    while (at < len) {
        size_t piece = 1 + fz_byte(IN) % 64;
        if (piece > len - at || fz_byte(IN) & 1)
            piece = len - at;
        if (!say(c, line + at, piece)) {
            c->raw = true;
            break;
        }
        at += piece;
        if (at < len && fz_byte(IN) & 1)
            step();
    }
}

/* Words on c that are not kv's protocol's own: no lost-write check from now on, and a follower
 * may have acknowledged anything. */
static void lie(conn_t *c)
{
    P.honest = false;
    if (c->kind == C_FOLLOWER)
        M[c->f].claimed = KV_LOG_MAX;
}

/* A replication line from the input on connection c (a follower's or the leader's words). */
static void repl_line(conn_t *c)
{
    uint8_t b = fz_byte(IN);
    uint32_t x = fz_byte(IN), y = fz_byte(IN) % 4;
    lie(c);
    switch (b % 10) {
    case 0:
        sayf(c, "LOG %u %u\n", (unsigned)x % 24, (unsigned)y);
        break;
    case 1:
        sayf(c, "ACK %u\n", (unsigned)x % 24);
        break;
    case 2:
        sayf(c, "NACK %u\n", (unsigned)x % 24);
        break;
    case 3:
        sayf(c, "E %u %u %u o%u w%u\n", (unsigned)y, (unsigned)x % 24, (unsigned)y, x % 4,
             (unsigned)x);
        break;
    case 4:
        sayf(c, "END %u\n", (unsigned)x % 24);
        break;
    case 5:
        sayf(c, "E %u %u %u\n", (unsigned)y, x % 2 ? 0u : 4000000000u, (unsigned)y);
        break;
    case 6:
        sayf(c, "ACK 99999999999\n");
        break;
    case 7:
        sayf(c, "HELLO %u\n", (unsigned)y);
        break;
    case 8:
        sayf(c, "FETCH %u\n", (unsigned)x % 24);
        break;
    default:
        sayf(c, "%s\n", x % 2 ? "LOG 1 2 3" : "WHAT");
    }
}

/* The fake leader of a follower: connect, append, a new epoch, fetch. */
static void leader_op(void)
{
    model_t *m = &M[FOLLOWERS];
    uint8_t b = fz_byte(IN);
    conn_t *c = leader_conn >= 0 ? &P.c[leader_conn] : NULL;
    switch (b % 6) {
    case 0: /* (re)connect: the newest connection is the leader's */
        if ((leader_conn = accept_conn(C_LEADER)) >= 0)
            sayf(&P.c[leader_conn], "HELLO %u\n", (unsigned)leader_epoch);
        break;
    case 1:
    case 2: { /* a write: one entry and SYNC (its prev epoch wrong now and then) */
        if (m->len == KV_LOG_MAX)
            break;
        kv_entry_t *e = &m->log[++m->len];
        uint8_t k = fz_byte(IN);
        make_entry(e, leader_epoch, (char[]){'o', 'L', (char)('0' + k % 4), 0}, m->len);
        kv_chain(m->log, m->len, m->len);
        if (c && !c->raw) {
            char line[KV_LINE_MAX];
            size_t n = kv_format_entry(e,
                                       m->len > 1 ? m->log[m->len - 1].epoch + (k & 0x80 ? 1 : 0)
                                                  : 0,
                                       line);
            if (!say(c, line, n))
                c->raw = true;
            sayf(c, "SYNC\n");
        }
        break;
    }
    case 3: { /* a new leader: its log cut short, a no-op of a new epoch, and HELLO */
        uint32_t keep = m->len ? fz_byte(IN) % (m->len + 1) : 0;
        m->len = keep;
        leader_epoch++;
        if (m->len < KV_LOG_MAX) {
            make_entry(&m->log[++m->len], leader_epoch, "", 0);
            kv_chain(m->log, m->len, m->len);
        }
        if ((leader_conn = accept_conn(C_LEADER)) >= 0)
            sayf(&P.c[leader_conn], "HELLO %u\n", (unsigned)leader_epoch);
        break;
    }
    case 4:
        if (c)
            sayf(c, "FETCH %u\n", (unsigned)fz_byte(IN) % 8);
        break;
    default:
        if (c)
            repl_line(c);
    }
}

static void op(void)
{
    uint8_t o = fz_byte(IN);
    int i;
    switch (o % 16) {
    case 0:
        accept_conn(C_CLIENT);
        break;
    case 1:
    case 2:
    case 3:
        if ((i = pick_conn(C_CLIENT, false)) >= 0)
            client_request(i);
        else
            accept_conn(C_CLIENT);
        break;
    case 4: /* raw bytes on any connection */
        if ((i = pick_conn(C_CLIENT, true)) >= 0) {
            char buf[600];
            size_t n = fz_byte(IN);
            if (n == 255)
                n = 255 + (size_t)fz_byte(IN);
            for (size_t k = 0; k < n; k++)
                buf[k] = (char)fz_byte(IN);
            P.c[i].raw = true;
            lie(&P.c[i]);
            say(&P.c[i], buf, n);
        }
        break;
    case 5: /* a follower says something of the input's */
        if ((i = pick_conn(C_FOLLOWER, false)) >= 0)
            repl_line(&P.c[i]);
        break;
    case 6: /* a follower stops or starts answering */
        if (R.npeers) {
            model_t *m = &M[fz_byte(IN) % R.npeers];
            m->auto_answer = !m->auto_answer;
        }
        break;
    case 7: { /* kv's connects: answered at once, or by this op */
        uint8_t b = fz_byte(IN);
        if (b & 1) {
            P.net_trouble = !P.net_trouble;
        } else if (P.npc) {
            pending_connect_t pc = P.pc[0];
            memmove(P.pc, P.pc + 1, (size_t)--P.npc * sizeof P.pc[0]);
            answer_connect(&pc, (b >> 1) % 3);
        }
        break;
    }
    case 8:
        sim_advance(((uint64_t)fz_byte(IN) + 1) * 50000000ull);
        break;
    case 9: /* the other end goes away */
        if ((i = pick_conn(C_CLIENT, true)) >= 0) {
            uint8_t b = fz_byte(IN);
            if (b % 3 == 0)
                tcp_eof_send(P.ctx, P.c[i].h, &(tcp_eof_t){0});
            else if (b % 3 == 1)
                tcp_error_send(P.ctx, P.c[i].h, &(tcp_error_t){0, OS_ECONNRESET});
            else
                drop_conn(i);
        }
        break;
    case 10: /* hold or release: backpressure on kv's sends */
        if ((i = pick_conn(C_CLIENT, true)) >= 0) {
            P.c[i].held = !P.c[i].held;
            os_handle_hold(P.ctx, P.c[i].h, P.c[i].held);
        }
        break;
    case 11: { /* the fs: slow (answers wait), or the next answer an error */
        uint8_t b = fz_byte(IN);
        if (b >= 240) {
            P.fs_fail = true;
        } else {
            P.fs_slow = !P.fs_slow;
            if (!P.fs_slow)
                fs_release();
        }
        break;
    }
    case 12: { /* kv dies and init restarts it; or the node loses power and boots again */
        bool power = fz_byte(IN) & 1;
        kill_kv();
        if (power) {
            memcpy(F.data, F.synced, FILE_MAX);
            F.size = F.synced_size;
            F.lo = FILE_MAX;
            F.hi = 0;
        }
        P.fs_slow = P.fs_fail = false;
        spawn_kv();
        break;
    }
    case 13:
        if (!R.leader)
            leader_op();
        else if ((i = pick_conn(C_CLIENT, true)) >= 0) { /* any tcp message */
            const iface_msg_t *m = &tcp_iface.msgs[fz_byte(IN) % tcp_iface.nmsgs];
            static uint8_t msg[8192], wire[OS_MSG_MAX_DATA];
            os_handle_t hs[OS_MSG_MAX_HANDLES], ours[OS_MSG_MAX_HANDLES];
            size_t nours = 0, len = 0, nh = 0;
            lie(&P.c[i]);
            P.c[i].raw = true;
            fz_fill_message(P.ctx, m, IN, msg, ours, &nours, NULL);
            if (iface_encode(m, msg, wire, sizeof wire, &len, hs, &nh) != 0 ||
                os_send(P.ctx, P.c[i].h, m->number, wire, len, hs, nh) != 0)
                for (size_t k = 0; k < nh; k++)
                    os_handle_close(P.ctx, hs[k]);
            for (size_t k = 0; k < nours; k++)
                os_handle_close(P.ctx, ours[k]);
        }
        break;
    case 14: /* kv's timers run: its deadlines and reconnects */
        for (int k = fz_byte(IN) % 8; k >= 0; k--) {
            uint64_t d = k_next_deadline();
            if (d == UINT64_MAX)
                break;
            if (d > sim_now())
                sim_advance(d - sim_now());
            step();
        }
        break;
    default: /* a write on every client connection at once */
        for (int k = 0; k < CONNS_MAX; k++)
            if (P.c[k].used && P.c[k].kind == C_CLIENT && !P.c[k].raw) {
                client_request(k);
            }
        break;
    }
}

/* ---- boot, input, teardown ------------------------------------------------------------ */

static const os_program_t *programs[3];

static struct {
    bool booted, fresh_each;
    unsigned inputs;
    k_stats_t base;
} H;

static void audit(bool full)
{
    char err[160];
    int rc = full ? k_audit(NULL, 0, NULL, err, sizeof err)
                  : k_audit_quick(NULL, 0, NULL, err, sizeof err);
    check(rc == 0, err);
}

static void boot(void)
{
    memset(&P, 0, sizeof P);
    sim_config_t cfg = {.programs = programs, .init_program = "fuzz_kv_peer", .seed = 1,
                        .trace = &sink};
    check(sim_boot(&cfg) == 0, "boot");
    step();
    check(P.ctx != NULL, "the peer did not start");
    P.boot = P.fs = P.tcp = P.file = P.listener = P.task = OS_HANDLE_NONE;
    k_get_stats(&H.base);
    H.booted = true;
    H.inputs = 0;
}

static void reboot_clean(void)
{
    audit(true);
    sim_console_clear();
    check(sim_teardown() == 0, "kernel memory leaked");
    H.booted = false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (int i = 1; i < *argc; i++) {
        const char *a = (*argv)[i];
        FILE *f;
        if (a[0] != '-' && (f = fopen(a, "rb")) != NULL) {
            if (fgetc(f) != EOF || !ferror(f)) /* a directory opens, but reading it fails */
                H.fresh_each = true;
            fclose(f);
        }
    }
    if (getenv("FUZZ_FRESH"))
        H.fresh_each = true;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    programs[0] = &peer;
    for (const os_program_t *const *p = orrery_programs; *p; p++)
        if (strcmp((*p)->name, "kv") == 0)
            programs[1] = *p;
    if (!programs[1]) {
        fprintf(stderr, "fuzz_kv: kv is not in the image\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    IN = &in;
    if (!H.booted)
        boot();
    bool full = H.fresh_each || H.inputs % FULL_EVERY == FULL_EVERY - 1;
    panics = 0;
    fire_ns = fires = 0;
    P.honest = true;
    P.net_trouble = P.fs_slow = P.fs_fail = false;
    P.lines = P.oks = P.acks = 0;
    leader_conn = -1;
    memset(&W, 0, sizeof W);
    prelude();
    spawn_kv();
    step();
    check(P.task != OS_HANDLE_NONE || P.kv_exited, "kv did not start");
    while (in.n && panics == 0) {
        op();
        step();
        audit(full);
    }
    check(panics == 0, "kv panicked or faulted");
    /* Let what is under way finish: holds released, the fs answering, timers run. */
    for (int k = 0; k < CONNS_MAX; k++)
        if (P.c[k].used && P.c[k].held) {
            P.c[k].held = false;
            os_handle_hold(P.ctx, P.c[k].h, false);
        }
    P.fs_slow = false;
    fs_release();
    step();
    sim_advance(5000000000ull);
    step();
    check(panics == 0, "kv panicked or faulted");
    if (verbose)
        fprintf(stderr, "%s--- %s: %llu lines from kv, %llu OK, %llu ACK, kv %s (%d)%s\n",
                sim_console_output(NULL), R.arg, (unsigned long long)P.lines,
                (unsigned long long)P.oks, (unsigned long long)P.acks,
                P.kv_exited ? "exited" : "running", P.kv_status, P.honest ? "" : ", dishonest");
    kill_kv();
    check(panics == 0, "kv panicked or faulted as it was killed");
    audit(full);
    sim_console_clear();
    k_stats_t st;
    k_get_stats(&st);
    bool clean = st.tasks == H.base.tasks && st.channels == H.base.channels;
    if (!clean || H.fresh_each || ++H.inputs >= REBOOT_EVERY)
        reboot_clean();
    return 0;
}
