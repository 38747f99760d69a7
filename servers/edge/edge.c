/* edge.c — a workload that drives one policy or limit to its edge, for the simulator's edge
 * scenarios (docs/simulation.md, "Policy edges"): exits with the statuses it is given, floods the
 * echo server's queue past its bound, fills its own handle table, opens more TCP connections
 * than a server keeps. */
#include <argwords.h>
#include <image.h>
#include <iface/echo.h>
#include <iface/init_client.h>
#include <iface/tcp.h>

#include <string.h>

/*
 * The arg, one of:
 *   exits=S0:S1:...[,after=MS]
 *                     exit with status Sk on the start after k restarts (the last one from
 *                     then on), at once or MS milliseconds after the start (1..3600000), so
 *                     that a scenario can order init's lines: its restart policy meets each
 *                     status in turn;
 *   flood=N           send N requests to echo (reach=echo), as fast as its queue takes them:
 *                     the first burst goes until OS_EFULL, then at most OS_CHAN_QUEUE_MAX are
 *                     outstanding (so echo's replies always fit ours); every refused request is
 *                     sent again on WRITABLE; every reply must come back once, in order, or it
 *                     panics. `[edge] flood: N requests answered in order, R refused ...`, exit 0;
 *   handles=free|hold fill the handle table with channels until the kernel refuses, check it
 *                     holds OS_HANDLES_MAX, ask init for echo while full (the handle it sends
 *                     cannot be installed: OS_ENOSPC), then `free` closes them all and
 *                     round-trips one echo request (exit 0), `hold` keeps them (the runner's
 *                     handle-leak check must fire);
 *   conns=N,addr=A.B.C.D,port=P[,after=MS][,pace=MS][,hold=MS]
 *                     open N TCP connections (1..EDGE_CONNS_MAX) to A.B.C.D:P (reach=tcp),
 *                     `after` ms after the start (default: at once; a server must be
 *                     listening), all at once or one every `pace` ms, keep them `hold` ms
 *                     after the last (default 2000), then say how each ended: `[edge] conns:
 *                     N to A:P: E established, R refused (why), F failed (why), U unanswered;
 *                     C closed by the server, S answered 503`, close them all and exit 0.
 */
enum {
    REQ_ECHO = 1, /* init connects */
    REQ_TCP = 2,
    EDGE_EXITS_MAX = 16,         /* statuses in exits= */
    EDGE_FLOOD_MAX = 1000000,    /* flood= */
    EDGE_TASKS_MAX = 256,        /* os_task_list entries read to find our own */
    EDGE_AFTER_MAX_MS = 3600000, /* after=, pace=, hold= */
    EDGE_CONNS_MAX = 120, /* below tcpip's control queue (OS_CHAN_QUEUE_MAX requests at once) */
    EDGE_HOLD_MS = 2000,  /* hold= by default */
};

typedef enum edge_mode { MODE_NONE, MODE_EXITS, MODE_FLOOD, MODE_HANDLES, MODE_CONNS } edge_mode_t;

/* What became of one connection. */
typedef enum conn_end {
    C_OPENING,     /* asked for, no answer yet */
    C_OPENED,      /* a channel, no handshake yet */
    C_UP,          /* established */
    C_REFUSED,     /* the local tcpip answered `reply` with an error */
    C_FAILED,      /* `error` on the connection (refused, reset, unreachable, timed out) */
    C_CLOSED_PEER, /* established, then the server ended it */
} conn_end_t;

typedef struct conn {
    conn_end_t end;
    os_handle_t chan;
    bool busy; /* the server's first bytes were a 503 */
} conn_t;

typedef struct edge_state {
    edge_mode_t mode;
    int exits[EDGE_EXITS_MAX];
    uint32_t nexits;
    uint64_t after_ms; /* exits: wait this long first (0: exit in start) */
    int status;        /* exits: the status of this start */
    os_handle_t timer;
    bool hold;            /* handles=hold */
    uint64_t count;       /* flood: requests to send */
    uint64_t sent, recv;  /* flood: accepted by the kernel, answered */
    uint64_t refused;     /* flood: sends refused with OS_EFULL */
    uint64_t first_burst; /* flood: accepted before the first OS_EFULL */
    bool blocked;         /* flood: waiting for WRITABLE */
    os_handle_t echo;
    uint32_t pairs; /* handles: channel pairs created */
    os_handle_t held[OS_HANDLES_MAX];
    bool full_connect; /* handles: the connect asked while the table was full */
    uint32_t addr;     /* conns: the server */
    uint16_t port;
    uint64_t hold_ms;
    uint64_t pace_ms; /* conns: between two connects (0: all at once) */
    uint64_t asked;   /* conns: connects sent */
    int refused_why;  /* conns: the status of the first `reply` refusal */
    int failed_why;   /* conns: the status of the first `error` before established */
    os_handle_t tcp;
    conn_t conns[EDGE_CONNS_MAX];
    tcp_data_t data;
    os_task_info_t tasks[EDGE_TASKS_MAX];
    echo_request_t req;
} edge_state_t;

static bool parse(edge_state_t *st, const char *s, size_t n)
{
    size_t i = 0;
    const char *k, *v;
    size_t kl, vl;
    int r;
    uint64_t u;
    while ((r = arg_item(s, n, &i, &k, &kl, &v, &vl)) != 0) {
        if (r < 0)
            return false;
        if (arg_is(k, kl, "after") && st->mode == MODE_EXITS && st->after_ms == 0 &&
            arg_u64(v, vl, 1, EDGE_AFTER_MAX_MS, &u)) {
            st->after_ms = u;
            continue;
        }
        if (st->mode == MODE_CONNS) {
            if (arg_is(k, kl, "addr") && arg_ipv4(v, vl, &st->addr))
                continue;
            if (arg_is(k, kl, "port") && arg_u64(v, vl, 1, 65535, &u)) {
                st->port = (uint16_t)u;
                continue;
            }
            if (arg_is(k, kl, "after") && arg_u64(v, vl, 1, EDGE_AFTER_MAX_MS, &u)) {
                st->after_ms = u;
                continue;
            }
            if (arg_is(k, kl, "pace") && arg_u64(v, vl, 1, EDGE_AFTER_MAX_MS, &u)) {
                st->pace_ms = u;
                continue;
            }
            if (arg_is(k, kl, "hold") && arg_u64(v, vl, 1, EDGE_AFTER_MAX_MS, &u)) {
                st->hold_ms = u;
                continue;
            }
            return false;
        }
        if (st->mode != MODE_NONE)
            return false;
        if (arg_is(k, kl, "exits")) {
            size_t b = 0;
            while (b <= vl && st->nexits < EDGE_EXITS_MAX) {
                size_t e = b;
                while (e < vl && v[e] != ':')
                    e++;
                if (!arg_u64(v + b, e - b, 0, OS_EXIT_USER_MAX, &u))
                    return false;
                st->exits[st->nexits++] = (int)u;
                b = e + 1;
            }
            if (b <= vl)
                return false; /* more than EDGE_EXITS_MAX statuses */
            st->mode = MODE_EXITS;
        } else if (arg_is(k, kl, "flood") && arg_u64(v, vl, 1, EDGE_FLOOD_MAX, &u)) {
            st->count = u;
            st->mode = MODE_FLOOD;
        } else if (arg_is(k, kl, "conns") && arg_u64(v, vl, 1, EDGE_CONNS_MAX, &u)) {
            st->count = u;
            st->hold_ms = EDGE_HOLD_MS;
            st->mode = MODE_CONNS;
        } else if (arg_is(k, kl, "handles") && (arg_is(v, vl, "free") || arg_is(v, vl, "hold"))) {
            st->hold = arg_is(v, vl, "hold");
            st->mode = MODE_HANDLES;
        } else {
            return false;
        }
    }
    return st->mode != MODE_NONE && (st->mode != MODE_CONNS || (st->addr && st->port));
}

/* Our own row of the task list (restarts, handles). */
static const os_task_info_t *self_info(os_ctx_t *ctx, edge_state_t *st)
{
    int n = os_task_list(ctx, st->tasks, EDGE_TASKS_MAX);
    for (int i = 0; i < n && i < EDGE_TASKS_MAX; i++)
        if (st->tasks[i].id == os_task_id(ctx))
            return &st->tasks[i];
    os_panic(ctx, "edge: not in the task list");
}

/* ---- flood ---------------------------------------------------------------------------------- */

static void pump(os_ctx_t *ctx, edge_state_t *st)
{
    while (!st->blocked && st->sent < st->count &&
           (st->refused == 0 || st->sent - st->recv < OS_CHAN_QUEUE_MAX)) {
        st->req.id = (uint32_t)(st->sent + 1);
        int rc = echo_request_send(ctx, st->echo, &st->req);
        if (rc == OS_EFULL) {
            if (st->refused++ == 0)
                st->first_burst = st->sent;
            st->blocked = true;
            return;
        }
        if (rc < 0)
            os_panic(ctx, "edge: flood: request %llu: %s", (unsigned long long)st->sent + 1,
                     os_strerror(rc));
        st->sent++;
    }
}

static void on_reply(os_ctx_t *ctx, edge_state_t *st, const os_event_t *ev)
{
    echo_reply_t m;
    if (echo_reply_decode(ev, &m) != 0)
        os_panic(ctx, "edge: flood: a message of type %u from echo is not a reply",
                 (unsigned)ev->type);
    if (m.id != st->recv + 1 || m.id > st->sent)
        os_panic(ctx, "edge: flood: reply %u came after reply %llu (%llu sent)", (unsigned)m.id,
                 (unsigned long long)st->recv, (unsigned long long)st->sent);
    st->recv++;
    if (st->recv == st->count) {
        if (st->refused == 0) {
            os_log(ctx, "flood: %llu requests answered, but echo's queue was never full",
                   (unsigned long long)st->count);
            os_exit(ctx, 1);
        }
        os_log(ctx,
               "flood: %llu requests answered in order, %llu refused with %s and sent again "
               "(the first after %llu)",
               (unsigned long long)st->count, (unsigned long long)st->refused,
               os_strerror(OS_EFULL), (unsigned long long)st->first_burst);
        os_exit(ctx, 0);
    }
    pump(ctx, st);
}

/* ---- handles -------------------------------------------------------------------------------- */

static void fill_handles(os_ctx_t *ctx, edge_state_t *st)
{
    int rc;
    os_handle_t a, b;
    while ((rc = os_channel_create(ctx, &a, &b)) == 0) {
        st->held[2 * st->pairs] = a;
        st->held[2 * st->pairs + 1] = b;
        st->pairs++;
    }
    /* the bootstrap channel makes the count odd: one slot is left, a timer takes it */
    os_handle_t t;
    int trc = os_timer_create(ctx, &t);
    if (trc == 0) {
        st->held[2 * st->pairs] = t;
        if ((trc = os_timer_create(ctx, &t)) == 0)
            os_handle_close(ctx, t);
    }
    uint32_t held = self_info(ctx, st)->handles;
    if (rc != OS_ENOSPC || trc != OS_ENOSPC || held != OS_HANDLES_MAX)
        os_panic(ctx, "edge: handles: %u held, channel_create %s, timer_create %s (want %d, %s)",
                 (unsigned)held, os_strerror(rc), os_strerror(trc), OS_HANDLES_MAX,
                 os_strerror(OS_ENOSPC));
    os_log(ctx, "handles: %u held (the limit); channel_create and timer_create: %s", (unsigned)held,
           os_strerror(rc));
    /* init's answer carries a channel our table has no room for */
    st->full_connect = true;
    init_connect_iface(ctx, REQ_ECHO, &echo_iface);
}

static void free_handles(os_ctx_t *ctx, edge_state_t *st)
{
    for (uint32_t i = 0; i < OS_HANDLES_MAX; i++)
        if (st->held[i] != OS_HANDLE_NONE)
            os_handle_close(ctx, st->held[i]);
    memset(st->held, 0, sizeof st->held);
    os_log(ctx, "handles: closed; %u held now", (unsigned)self_info(ctx, st)->handles);
    init_connect_iface(ctx, REQ_ECHO, &echo_iface);
}

/* ---- conns ---------------------------------------------------------------------------------- */

/* Ask for the next connection (all of them without `pace`); then wait `hold`. */
static void conns_open(os_ctx_t *ctx, edge_state_t *st)
{
    do {
        tcp_connect_t m = {.req = (uint32_t)st->asked + 1, .addr = st->addr, .port = st->port};
        int rc = tcp_connect_send(ctx, st->tcp, &m);
        if (rc < 0)
            os_panic(ctx, "edge: conns: connect %llu: %s", (unsigned long long)st->asked + 1,
                     os_strerror(rc));
        st->asked++;
    } while (st->pace_ms == 0 && st->asked < st->count);
    uint64_t wait = st->asked < st->count ? st->pace_ms : st->hold_ms;
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + wait * 1000000);
}

static void conns_report(os_ctx_t *ctx, edge_state_t *st)
{
    uint32_t n[C_CLOSED_PEER + 1] = {0}, busy = 0;
    for (uint64_t i = 0; i < st->count; i++) {
        conn_t *c = &st->conns[i];
        n[c->end]++;
        busy += c->busy;
        if (c->chan != OS_HANDLE_NONE)
            os_handle_close(ctx, c->chan);
    }
    os_log(ctx,
           "conns: %llu to %u.%u.%u.%u:%u: %u established, %u refused (%s), %u failed (%s), "
           "%u unanswered; %u closed by the server, %u answered 503",
           (unsigned long long)st->count, st->addr >> 24, st->addr >> 16 & 255, st->addr >> 8 & 255,
           st->addr & 255, (unsigned)st->port, n[C_UP] + n[C_CLOSED_PEER], n[C_REFUSED],
           n[C_REFUSED] ? os_strerror(st->refused_why) : "-", n[C_FAILED],
           n[C_FAILED] && st->failed_why ? os_strerror(st->failed_why) : "-",
           n[C_OPENING] + n[C_OPENED], n[C_CLOSED_PEER], busy);
    os_exit(ctx, 0);
}

static void on_tcp(os_ctx_t *ctx, edge_state_t *st, const os_event_t *ev)
{
    union {
        tcp_opened_t opened;
        tcp_reply_t reply;
    } m;
    if (tcp_opened_decode(ev, &m.opened) == 0 && m.opened.req >= 1 && m.opened.req <= st->count) {
        conn_t *c = &st->conns[m.opened.req - 1];
        c->chan = m.opened.chan;
        c->end = C_OPENED;
    } else if (tcp_reply_decode(ev, &m.reply) == 0 && m.reply.req >= 1 &&
               m.reply.req <= st->count) {
        st->conns[m.reply.req - 1].end = C_REFUSED;
        if (!st->refused_why)
            st->refused_why = m.reply.status;
    } else {
        iface_discard(ctx, ev);
    }
}

static void on_conn(os_ctx_t *ctx, edge_state_t *st, conn_t *c, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        os_handle_close(ctx, c->chan);
        c->chan = OS_HANDLE_NONE;
        if (c->end == C_UP)
            c->end = C_CLOSED_PEER;
        else if (c->end == C_OPENED)
            c->end = C_FAILED;
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    tcp_error_t e;
    if (ev->type == tcp_msg_established) {
        iface_discard(ctx, ev);
        c->end = C_UP;
    } else if (ev->type == tcp_msg_data && tcp_data_decode(ev, &st->data) == 0) {
        static const char busy[] = "HTTP/1.1 503 ";
        if (st->data.data_len >= sizeof busy - 1 &&
            memcmp(st->data.data, busy, sizeof busy - 1) == 0)
            c->busy = true;
    } else if (ev->type == tcp_msg_eof) {
        iface_discard(ctx, ev); /* the server's FIN */
        if (c->end == C_UP)
            c->end = C_CLOSED_PEER;
    } else if (ev->type == tcp_msg_error && tcp_error_decode(ev, &e) == 0 && e.type == 0) {
        if (c->end != C_UP && !st->failed_why)
            st->failed_why = e.status;
        c->end = c->end == C_UP ? C_CLOSED_PEER : C_FAILED;
    } else {
        iface_discard(ctx, ev);
    }
}

/* ---- events --------------------------------------------------------------------------------- */

static void on_init(os_ctx_t *ctx, edge_state_t *st, const os_event_t *ev)
{
    union {
        init_connected_t conn;
        init_reply_t reply;
    } m;
    if (ev->type == init_msg_connected && st->full_connect) {
        st->full_connect = false;
        iface_discard(ctx, ev);
        if (ev->status != OS_ENOSPC)
            os_panic(ctx, "edge: handles: a channel reached a full table: %s",
                     os_strerror(ev->status));
        os_log(ctx, "handles: init's channel to echo did not fit: %s", os_strerror(ev->status));
        if (!st->hold)
            free_handles(ctx, st);
        return;
    }
    if (init_connected_decode(ev, &m.conn) == 0 && st->mode == MODE_CONNS) {
        st->tcp = m.conn.chan;
        if (st->after_ms)
            os_timer_set(ctx, st->timer, os_clock_now(ctx) + st->after_ms * 1000000);
        else
            conns_open(ctx, st);
    } else if (init_connected_decode(ev, &m.conn) == 0) {
        st->echo = m.conn.chan;
        if (st->mode == MODE_FLOOD) {
            pump(ctx, st);
        } else {
            st->req.id = 1;
            strcpy(st->req.text, "after the limit");
            echo_request_send(ctx, st->echo, &st->req);
        }
    } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
        os_log(ctx, "connect %s: %s", st->mode == MODE_CONNS ? "tcp" : "echo",
               os_strerror(m.reply.status));
        os_exit(ctx, 1);
    } else {
        iface_discard(ctx, ev);
    }
}

static void edge_start(os_ctx_t *ctx)
{
    edge_state_t *st = os_state(ctx);
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    if (!parse(st, len ? arg : "", len)) {
        os_log(ctx,
               "bad arg '%.*s' (exits=S0:S1:...[,after=MS], flood=N, handles=free|hold or "
               "conns=N,addr=A.B.C.D,port=P[,after=MS][,pace=MS][,hold=MS])",
               (int)(len > 200 ? 200 : len), len ? (const char *)arg : "");
        os_exit(ctx, 2);
    }
    if (st->mode == MODE_EXITS) {
        uint32_t k = self_info(ctx, st)->restarts;
        st->status = st->exits[k < st->nexits ? k : st->nexits - 1];
        os_log(ctx, "exits: start %u, status %d", (unsigned)k, st->status);
        if (st->after_ms == 0 || os_timer_create(ctx, &st->timer) < 0)
            os_exit(ctx, st->status);
        os_timer_set(ctx, st->timer, os_clock_now(ctx) + st->after_ms * 1000000);
        return;
    }
    if (st->mode == MODE_HANDLES) {
        fill_handles(ctx, st);
    } else if (st->mode == MODE_CONNS) {
        if (os_timer_create(ctx, &st->timer) < 0)
            os_exit(ctx, 1);
        init_connect_iface(ctx, REQ_TCP, &tcp_iface);
    } else {
        init_connect_iface(ctx, REQ_ECHO, &echo_iface);
    }
}

static void edge_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    edge_state_t *st = os_state(ctx);
    if (st->mode == MODE_EXITS && ev->kind == OS_EV_TIMER)
        os_exit(ctx, st->status);
    if (st->mode == MODE_CONNS) {
        if (ev->kind == OS_EV_TIMER && ev->handle == st->timer) {
            if (st->asked == st->count)
                conns_report(ctx, st);
            conns_open(ctx, st);
        } else if (ev->handle == st->tcp && st->tcp != OS_HANDLE_NONE) {
            if (ev->kind == OS_EV_PEER_CLOSED) {
                os_log(ctx, "the tcpip server went away; exiting");
                os_exit(ctx, 1);
            }
            if (ev->kind == OS_EV_MESSAGE)
                on_tcp(ctx, st, ev);
        } else if (ev->handle != init_channel(ctx)) {
            for (uint64_t i = 0; i < st->count; i++)
                if (st->conns[i].chan != OS_HANDLE_NONE && st->conns[i].chan == ev->handle) {
                    on_conn(ctx, st, &st->conns[i], ev);
                    return;
                }
            return;
        }
        if (ev->handle != init_channel(ctx))
            return;
    }
    if (ev->handle == init_channel(ctx) && ev->kind == OS_EV_MESSAGE) {
        on_init(ctx, st, ev);
        return;
    }
    if (st->echo == OS_HANDLE_NONE || ev->handle != st->echo)
        return;
    if (ev->kind == OS_EV_PEER_CLOSED) {
        os_log(ctx, "echo went away; exiting");
        os_exit(ctx, 1);
    }
    if (ev->kind == OS_EV_WRITABLE) {
        st->blocked = false;
        pump(ctx, st);
    } else if (ev->kind == OS_EV_MESSAGE && st->mode == MODE_FLOOD) {
        on_reply(ctx, st, ev);
    } else if (ev->kind == OS_EV_MESSAGE) {
        echo_reply_t m;
        if (echo_reply_decode(ev, &m) != 0)
            os_panic(ctx, "edge: handles: echo answered with type %u", (unsigned)ev->type);
        os_log(ctx, "handles: echo answered '%s'", m.text);
        os_exit(ctx, 0);
    }
}

const os_program_t orrery_edge = {"edge", sizeof(edge_state_t), edge_start, edge_on_event};
