/* kvclient.c — the kv store's checking client (docs/kv.md): writes keys through the leader at a
 * steady rate, remembers every acknowledged write, and at the check time reads every key back;
 * an acknowledged write that is gone is a panic (manifest: reach=tcp). */
#include <argwords.h>
#include <image.h>
#include <iface/init_client.h>
#include <iface/tcp.h>
#include <lineconn.h>

#include <stdio.h>
#include <string.h>

/*
 * The arg: leader=A.B.C.D,port=N,keys=N,every=T,check=T (T: 20ms, 1.5s). Each write is
 * `PUT kI S:FILLER` with S a sequence number of this run (1, 2, ...), so a value names its
 * write. After `check=T` of virtual time (since kvclient started) no more writes go out; each key
 * ever written is read back: the value must come from the last acknowledged write of the key or
 * from a later one whose answer never came (its outcome is unknown), and a key with an
 * acknowledged write must be found. The answer `ERR recovering` (the leader is not serving yet),
 * a reset and silence are retried. The verdict is one line: `kvcheck: N acked, N verified,
 * 0 lost`, or `kvcheck: LOST key=K acked value=V got=G` and a panic.
 */
enum {
    KEYS_MAX = 256,
    REQ_TCP = 1,
    REQ_CONN = 2,                      /* + attempt */
    TICK_NS = 100 * 1000 * 1000,       /* the timer when nothing is due sooner */
    ANSWER_NS = 5000ull * 1000 * 1000, /* no answer by then: connect again */
    BACKOFF_MAX_MS = 2000,
    VALUE_MAX = 256,
    LINE_MAX = 512,
    FILLER_MAX = 40,
};

typedef struct key {
    uint32_t acked_seq; /* 0: no write of it acknowledged */
    uint32_t max_seq;   /* the last write sent */
    char acked[VALUE_MAX + 1];
} key_t_;

typedef enum phase { P_WRITE = 0, P_CHECK, P_DONE } phase_t;

typedef struct kvclient_state {
    uint32_t leader;
    uint16_t port;
    uint32_t nkeys;
    uint64_t every_ns, check_ns, start;
    os_handle_t tcp, timer;
    lconn_t c;
    uint32_t attempt, backoff_ms;
    uint64_t retry_at, next_at, deadline;
    phase_t phase;
    bool busy;       /* a request is out */
    uint32_t op_key; /* its key */
    uint32_t op_seq; /* PUT: its seq; 0: a GET */
    char op_value[VALUE_MAX + 1];
    uint32_t seq, check_key;
    uint64_t acked, errors, reconnects, verified, acked_keys;
    uint64_t rng;
    key_t_ keys[KEYS_MAX];
    char line[LINE_MAX];
} kvclient_state_t;

static uint64_t rnd(kvclient_state_t *st)
{
    uint64_t x = st->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* 20ms, 3s */
static bool parse_time(const char *p, size_t n, uint64_t *ns)
{
    uint64_t v;
    if (n > 2 && p[n - 2] == 'm' && p[n - 1] == 's' && arg_u64(p, n - 2, 1, 1000000000, &v)) {
        *ns = v * 1000 * 1000;
        return true;
    }
    if (n > 1 && p[n - 1] == 's' && arg_u64(p, n - 1, 1, 1000000, &v)) {
        *ns = v * 1000 * 1000 * 1000;
        return true;
    }
    return false;
}

static bool parse_args(kvclient_state_t *st, const char *s, size_t n)
{
    st->port = 7000;
    st->nkeys = 16;
    st->every_ns = 20ull * 1000 * 1000;
    st->check_ns = 30ull * 1000 * 1000 * 1000;
    size_t i = 0;
    const char *k, *v;
    size_t kl, vl;
    int r;
    while ((r = arg_item(s, n, &i, &k, &kl, &v, &vl)) != 0) {
        uint64_t u;
        if (r < 0)
            return false;
        if (arg_is(k, kl, "leader") && arg_ipv4(v, vl, &st->leader)) {
        } else if (arg_is(k, kl, "port") && arg_u64(v, vl, 1, 65535, &u)) {
            st->port = (uint16_t)u;
        } else if (arg_is(k, kl, "keys") && arg_u64(v, vl, 1, KEYS_MAX, &u)) {
            st->nkeys = (uint32_t)u;
        } else if (arg_is(k, kl, "every") && parse_time(v, vl, &st->every_ns)) {
        } else if (arg_is(k, kl, "check") && parse_time(v, vl, &st->check_ns)) {
        } else {
            return false;
        }
    }
    return st->leader != 0;
}

static void connect_leader(os_ctx_t *ctx, kvclient_state_t *st)
{
    uint32_t req = REQ_CONN + (++st->attempt % 1000000);
    if (lconn_connect(ctx, &st->c, st->tcp, req, st->leader, st->port) < 0) {
        st->retry_at = os_clock_now(ctx) + st->backoff_ms * 1000000ull;
        return;
    }
    st->deadline = os_clock_now(ctx) + ANSWER_NS;
}

/* The connection is gone (or given up on): a request out has an unknown outcome. */
static void lost(os_ctx_t *ctx, kvclient_state_t *st, const char *why)
{
    if (st->c.state != LC_FREE)
        lconn_close(ctx, &st->c, false);
    st->busy = false;
    st->deadline = 0;
    st->reconnects++;
    if (st->reconnects <= 20 || st->reconnects % 100 == 0)
        os_log(ctx, "%s; connecting again (%llu)", why, (unsigned long long)st->reconnects);
    st->retry_at = os_clock_now(ctx) + st->backoff_ms * 1000000ull;
    st->backoff_ms = st->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : st->backoff_ms * 2;
}

static void send_line(os_ctx_t *ctx, kvclient_state_t *st, int n)
{
    if (n <= 0 || n >= LINE_MAX || !lconn_write(ctx, &st->c, st->line, (size_t)n)) {
        lost(ctx, st, "cannot send");
        return;
    }
    st->busy = true;
    st->deadline = os_clock_now(ctx) + ANSWER_NS;
}

static void next_check(os_ctx_t *ctx, kvclient_state_t *st)
{
    while (st->check_key < st->nkeys && st->keys[st->check_key].max_seq == 0)
        st->check_key++;
    if (st->check_key == st->nkeys) {
        st->phase = P_DONE;
        os_log(ctx, "%llu writes acknowledged, %llu refused, %llu reconnects",
               (unsigned long long)st->acked, (unsigned long long)st->errors,
               (unsigned long long)st->reconnects);
        os_log(ctx, "kvcheck: %llu acked, %llu verified, 0 lost",
               (unsigned long long)st->acked_keys, (unsigned long long)st->verified);
        lconn_close(ctx, &st->c, true);
        os_timer_cancel(ctx, st->timer);
        return;
    }
    st->op_key = st->check_key;
    st->op_seq = 0;
    send_line(ctx, st, snprintf(st->line, sizeof st->line, "GET k%u\n", (unsigned)st->op_key));
}

/* Send what is due, if nothing is out. */
static void step(os_ctx_t *ctx, kvclient_state_t *st)
{
    uint64_t now = os_clock_now(ctx);
    if (st->phase == P_DONE)
        return;
    if (st->c.state == LC_FREE) {
        if (now >= st->retry_at)
            connect_leader(ctx, st);
        return;
    }
    if (st->c.state != LC_UP || st->busy || now < st->next_at)
        return;
    if (st->phase == P_WRITE && now - st->start >= st->check_ns) {
        st->phase = P_CHECK;
        os_log(ctx, "writing stopped after %llu acknowledged writes; reading every key back",
               (unsigned long long)st->acked);
    }
    if (st->phase == P_CHECK) {
        next_check(ctx, st);
        return;
    }
    uint32_t k = (uint32_t)(rnd(st) % st->nkeys);
    st->op_key = k;
    st->op_seq = ++st->seq;
    int n = snprintf(st->op_value, sizeof st->op_value, "%u:", (unsigned)st->op_seq);
    uint32_t fill = 1 + (uint32_t)(rnd(st) % FILLER_MAX);
    for (uint32_t i = 0; i < fill; i++)
        st->op_value[n++] = (char)('a' + rnd(st) % 26);
    st->op_value[n] = 0;
    st->keys[k].max_seq = st->op_seq;
    send_line(ctx, st,
              snprintf(st->line, sizeof st->line, "PUT k%u %s\n", (unsigned)k, st->op_value));
}

static void verdict_lost(os_ctx_t *ctx, kvclient_state_t *st, const key_t_ *k, const char *got)
{
    os_log(ctx, "kvcheck: LOST key=k%u acked value=%s got=%s", (unsigned)st->op_key, k->acked, got);
    os_panic(ctx, "kvcheck: an acknowledged write was lost");
}

static void on_answer(os_ctx_t *ctx, kvclient_state_t *st, const char *s, size_t n)
{
    st->busy = false;
    st->deadline = 0;
    st->backoff_ms = 100;
    key_t_ *k = &st->keys[st->op_key];
    bool err = n >= 4 && memcmp(s, "ERR ", 4) == 0;
    if (st->op_seq) { /* a PUT */
        if (n == 2 && memcmp(s, "OK", 2) == 0) {
            k->acked_seq = st->op_seq;
            memcpy(k->acked, st->op_value, sizeof k->acked);
            st->acked++;
        } else {
            st->errors++;
            if (st->errors <= 10 || !err)
                os_log(ctx, "PUT k%u: %.*s", (unsigned)st->op_key, (int)n, s);
        }
        /* half to one and a half times `every`: the writes do not keep one phase */
        st->next_at = os_clock_now(ctx) + st->every_ns / 2 + rnd(st) % (st->every_ns + 1);
        step(ctx, st);
        return;
    }
    /* a GET of the check */
    if (err) {
        st->next_at = os_clock_now(ctx) + 100ull * 1000 * 1000; /* recovering: ask again */
        return;
    }
    char got[VALUE_MAX + 16];
    snprintf(got, sizeof got, "%.*s", (int)n, s);
    if (n == 8 && memcmp(s, "NOTFOUND", 8) == 0) {
        if (k->acked_seq)
            verdict_lost(ctx, st, k, got);
    } else if (n > 6 && memcmp(s, "VALUE ", 6) == 0) {
        const char *v = s + 6, *colon = memchr(v, ':', n - 6);
        uint64_t seq = 0;
        if (!colon || !arg_u64(v, (size_t)(colon - v), 0, UINT64_MAX, &seq) || seq < k->acked_seq ||
            seq > k->max_seq ||
            (seq == k->acked_seq && (strlen(k->acked) != n - 6 || memcmp(k->acked, v, n - 6))))
            verdict_lost(ctx, st, k, got);
    } else {
        os_log(ctx, "GET k%u: unexpected answer '%s'", (unsigned)st->op_key, got);
        st->next_at = os_clock_now(ctx) + 100ull * 1000 * 1000;
        return;
    }
    if (k->acked_seq) {
        st->acked_keys++;
        st->verified++;
    }
    st->check_key++;
    step(ctx, st);
}

/* The timer at the next moment something is due: a retry, a deadline, the next request. */
static void arm(os_ctx_t *ctx, kvclient_state_t *st)
{
    if (st->phase == P_DONE)
        return;
    uint64_t now = os_clock_now(ctx), at = now + TICK_NS;
    if (st->c.state == LC_FREE)
        at = st->retry_at;
    else if (st->deadline)
        at = st->deadline;
    if (st->c.state == LC_UP && !st->busy && st->next_at < at)
        at = st->next_at;
    if (st->phase == P_WRITE && now < st->start + st->check_ns && st->start + st->check_ns < at)
        at = st->start + st->check_ns;
    os_timer_set(ctx, st->timer, at > now ? at : now);
}

static void kvclient_start(os_ctx_t *ctx)
{
    kvclient_state_t *st = os_state(ctx);
    st->tcp = st->timer = OS_HANDLE_NONE;
    lconn_init(&st->c);
    st->backoff_ms = 100;
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    if (!parse_args(st, len ? arg : "", len)) {
        os_log(ctx, "bad arg '%.*s' (leader=A.B.C.D,port=N,keys=1..%d,every=T,check=T)",
               (int)(len > 200 ? 200 : len), len ? (const char *)arg : "", KEYS_MAX);
        os_exit(ctx, 2);
    }
    os_random(ctx, &st->rng, sizeof st->rng);
    st->rng |= 1;
    st->start = os_clock_now(ctx);
    if (os_timer_create(ctx, &st->timer) < 0)
        os_exit(ctx, 1);
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
}

static void kvclient_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    kvclient_state_t *st = os_state(ctx);
    os_handle_t h = ev->handle;
    if (ev->kind == OS_EV_TIMER && h == st->timer) {
        uint64_t now = os_clock_now(ctx);
        if (st->deadline && now >= st->deadline)
            lost(ctx, st, st->c.state == LC_UP ? "no answer in 5 s" : "no connection in 5 s");
        step(ctx, st);
        arm(ctx, st);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED && (h == init_channel(ctx) || h == st->tcp)) {
        os_log(ctx, "the tcpip server went away; exiting");
        os_exit(ctx, 1);
    }
    if (h == init_channel(ctx) && ev->kind == OS_EV_MESSAGE) {
        union {
            init_connected_t conn;
            init_reply_t reply;
        } m;
        if (init_connected_decode(ev, &m.conn) == 0) {
            st->tcp = m.conn.chan;
            os_timer_set(ctx, st->timer, os_clock_now(ctx));
        } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
            os_log(ctx, "connect tcp: %s; exiting", os_strerror(m.reply.status));
            os_exit(ctx, 1);
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    if (h == st->tcp && ev->kind == OS_EV_MESSAGE) {
        bool closed;
        if (lconn_control(ctx, &st->c, ev, &closed)) {
            if (closed)
                lost(ctx, st, "connect refused");
        } else if (ev->type == tcp_msg_opened) {
            tcp_opened_t o; /* a connect we gave up on */
            if (tcp_opened_decode(ev, &o) == 0)
                os_handle_close(ctx, o.chan);
        }
        return;
    }
    if (st->c.state == LC_FREE || h != st->c.chan) {
        if (ev->kind == OS_EV_MESSAGE)
            iface_discard(ctx, ev);
        return;
    }
    switch (lconn_event(ctx, &st->c, ev)) {
    case LC_ESTABLISHED:
        st->deadline = 0;
        step(ctx, st);
        break;
    case LC_CLOSED:
        lost(ctx, st, "the connection ended");
        break;
    case LC_DATA: {
        int n;
        while (st->c.state == LC_UP && (n = lconn_line(ctx, &st->c, st->line, LINE_MAX - 1)) >= 0)
            if (st->busy)
                on_answer(ctx, st, st->line, (size_t)n < LINE_MAX ? (size_t)n : LINE_MAX - 1);
        break;
    }
    default:
        break;
    }
    arm(ctx, st);
}

const os_program_t orrery_kvclient = {"kvclient", sizeof(kvclient_state_t), kvclient_start,
                                      kvclient_on_event};
