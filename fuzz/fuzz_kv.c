/* fuzz_kv.c — libFuzzer target of kv (servers/kv): its clients, its followers or leader, and its
 * log file, all played by one fake peer. */
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

#include "kv_peer.h"

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
 * whole from the fsync'ed file (from the written one with the bug) and are its leader's (on a
 * connection the input held: at some fsync since the hold began); a leader's `OK` only once a
 * majority holds the entry: its own fsync'ed file plus the followers that acknowledged it (to
 * this life of kv, on any connection); and while every follower line was kv's own protocol, no
 * acknowledged write is lost across restarts and power losses (kv_peer.c, client_answer: the
 * read rule).
 * Persistent: the image boots once (seed 1) and reboots every REBOOT_EVERY inputs, after an
 * input that left it off its booted counts, and for every input of a reproducer run (files on
 * the command line, or FUZZ_FRESH=1).
 */

enum {
    STEP_RECORDS = 2000000, /* trace records in one step: more is a hang */
    TIMER_SPIN_MAX = 10000, /* timer events at one instant: a hang */
    REBOOT_EVERY = 1000,    /* inputs between reboots (teardown checks leaks) */
    FULL_EVERY = 16,        /* one input in 16 runs the full audit */
};

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
    os_spawn_args_t a = {
        .program = "kv", .handles = &far, .nhandles = 1, .arg = R.arg, .arg_len = strlen(R.arg)};
    if (os_spawn(P.ctx, &a, &P.task) != 0) {
        os_handle_close(P.ctx, near), os_handle_close(P.ctx, far);
        return;
    }
    os_task_handle_id(P.ctx, P.task, &P.kv_id);
    P.boot = near;
    for (int f = 0; f < FOLLOWERS; f++)
        M[f].claimed = 0, M[f].lied = false; /* a new life: its followers' old ACKs are not its */
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
        m->lied = false;
        m->len = 0;
    }
    if (R.leader) {
        for (int f = 0; f < R.npeers; f++)
            M[f].len = make_log(M[f].log, 0, (char)('0' + f));
    } else {
        M[FOLLOWERS].len = make_log(M[FOLLOWERS].log, LEADER_EPOCHS, 'L');
        leader_epoch = M[FOLLOWERS].len ? last_epoch(&M[FOLLOWERS]) + 1 : LEADER_EPOCHS;
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
        static const char *const bad[] = {
            "PUT\n",         "PUT k1\n",  "PUT k1 \n", "GET\n",     "GET a b\n", "PUT k\x01 v\n",
            "PUT k v\x7f\n", "FOO bar\n", "\n",        "\r\n",      "put k v\n", "GET  \n",
            "E 1 1 0\n",     "ACK x\n",   "LOG 1\n",   "SYNC now\n"};
        n = snprintf(line, sizeof line, "%s", bad[k % 16]);
        break;
    }
    case 10: /* replication verbs on the client port */
    {
        static const char *const repl[] = {"SYNC\n",  "ACK 1\n",   "NACK 1\n",        "LOG 0 0\n",
                                           "END 0\n", "FETCH 1\n", "E 1 1 0 k0 v0\n", "HELLO 1\n"};
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
        M[c->f].lied = true;
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
            size_t n = kv_format_entry(
                e, m->len > 1 ? m->log[m->len - 1].epoch + (k & 0x80 ? 1 : 0) : 0, line);
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
            if (P.c[i].held)
                hold_window(&P.c[i]);
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
    sim_config_t cfg = {
        .programs = programs, .init_program = "fuzz_kv_peer", .seed = 1, .trace = &sink};
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
    H.fresh_each = fz_fresh_each(*argc, *argv);
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    programs[0] = &kv_peer;
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
