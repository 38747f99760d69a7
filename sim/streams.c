/* streams.c — the cross-node TCP stream checker: the tcp interface's messages of every node,
 * both ends of each connection paired, every delivered byte compared with what was written. */
#include <sim/streams.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iface/tcp.h>
#include <sim/sim.h>

/*
 * What the records carry. The kernel gives the sink each message's whole payload (its
 * SEND and DELIVER records point at the message's data, len bytes, at most OS_MSG_MAX_DATA;
 * only the trace file format clamps payloads, at TRACE_FRAME_MAX_PAYLOAD, far above). Still,
 * a `data` record whose payload does not decode makes its connection unchecked rather than
 * a false failure.
 *
 * Which records tell what (records of one node come in seq order, each node's interleaved
 * with the others' as the run goes, so a frame's sender records before its receiver):
 * - tcpip creates a connection's channel pair (CHAN_CREATE: its end, the client's end), then
 *   sends `opened` (connect) or `accepted` (listener) carrying the client's end: the end is
 *   known by both endpoint ids from then on. `established` is sent on tcpip's end.
 * - The application's end: its successful SENDs of `data` are what it wrote (until its
 *   `shutdown`: later data is refused by tcpip), its DELIVERs of `data` and `eof` what it
 *   received. HANDLE records say which task holds it (for EXIT, which closes without records).
 * - The connection is over (no liveness) at an `error` {type 0}, a `reset`, a CLOSE of either
 *   endpoint, a PEER_CLOSED, the exit of the task holding an end or of tcpip, a node down.
 * - An end is finished (no records can come for it) when its application closed it, the task
 *   holding it exited, or its node went down; a connection is freed once both ends are.
 *
 * Pairing: `established` {laddr, lport, raddr, rport} of a connecting end always comes before
 * the `accepted` {addr, port, lport} of its other end (the listener accepts on the handshake's
 * last ACK, which the connecting side sends after its `established`), so an accepted end
 * takes the oldest waiting connecting end with addr:port = laddr:lport and lport = rport, and
 * raddr the accepting node's address when it was given (sim_streams_node_addr; on its own
 * node, a connection to itself, the ports decide). A connecting end waits
 * until it is paired, finished, or replaced by a newer end with the same 4-tuple on its node.
 */

enum {
    STREAMS_BUCKETS = 1024, /* endpoint hash buckets */
    STREAMS_NAME_MAX = 32,  /* a node's name, NUL included */
    STREAMS_ERR_MAX = 512,  /* the first violation */
};

/* The bytes one end's application wrote and the other's has not received yet. */
typedef struct sbuf {
    uint8_t *buf;
    size_t off, len, cap; /* the bytes are buf[off .. off + len) */
    uint64_t base;        /* stream offset of buf[off]: bytes delivered and checked */
    uint64_t written;     /* the stream's length so far */
    bool shut;            /* the writer shut down (or closed): written is its length */
    bool eof;             /* the reader got eof */
    uint64_t since_ns;    /* pending since, or last progress */
} sbuf_t;

typedef struct end end_t;
struct end {
    end_t *prev, *next;           /* every end */
    end_t *hnext_app, *hnext_srv; /* hash chains by app_ep, srv_ep */
    end_t *wprev, *wnext;         /* connecting ends waiting for their other end */
    bool waiting;
    end_t *peer;                   /* the other end, once paired */
    uint32_t node, app_ep, srv_ep; /* endpoint ids: the application's, tcpip's */
    uint32_t app_task, srv_task;
    bool accepting;        /* from `accepted` (else from `opened`) */
    bool tuple;            /* addresses known (established / accepted) */
    uint32_t laddr, raddr; /* laddr 0 for an accepted end (not in the message) */
    uint16_t lport, rport;
    bool over;         /* the connection ended: no liveness */
    bool finished;     /* no more records can come for this end */
    bool blind;        /* checked for nothing: its other end is not in the run */
    bool got_unpaired; /* received data before it was paired */
    sbuf_t out;        /* what its application writes */
};

struct sim_streams {
    end_t *ends;    /* every end, newest first */
    end_t *waiting; /* connecting ends not yet paired, oldest first */
    end_t *waiting_tail;
    end_t *by_app[STREAMS_BUCKETS], *by_srv[STREAMS_BUCKETS];
    struct {
        uint32_t cc_task, cc_a, cc_b; /* the last CHAN_CREATE */
        uint32_t addr;                /* sim_streams_node_addr's (0: not given) */
        char name[STREAMS_NAME_MAX];
    } nodes[SIM_NODES_MAX];
    struct streams_tap {
        sim_streams_t *s;
        uint32_t node;
    } taps[SIM_NODES_MAX]; /* sim_streams_sink's selves */
    uint32_t tcp_id;
    sim_streams_stats_t stats;
    bool failed;
    char err[STREAMS_ERR_MAX];
};

sim_streams_t *sim_streams_new(void)
{
    sim_streams_t *s = calloc(1, sizeof *s);
    if (s)
        s->tcp_id = iface_id(&tcp_iface);
    return s;
}

static void end_destroy(end_t *e)
{
    free(e->out.buf);
    free(e);
}

void sim_streams_free(sim_streams_t *s)
{
    if (!s)
        return;
    for (end_t *e = s->ends, *next; e; e = next) {
        next = e->next;
        end_destroy(e);
    }
    free(s);
}

void sim_streams_node_name(sim_streams_t *s, uint32_t node, const char *name)
{
    if (node < SIM_NODES_MAX)
        snprintf(s->nodes[node].name, sizeof s->nodes[node].name, "%s", name);
}

void sim_streams_node_addr(sim_streams_t *s, uint32_t node, uint32_t addr)
{
    if (node < SIM_NODES_MAX)
        s->nodes[node].addr = addr;
}

/* ---- failures ----------------------------------------------------------------------------- */

/* "10.0.0.1:49153 (node client)": an end's local address (an accepted end's is its peer's
 * remote one). */
static const char *end_label(const sim_streams_t *s, const end_t *e, char *buf, size_t len)
{
    uint32_t a = e->laddr;
    if (e->accepting)
        a = e->peer ? e->peer->raddr : s->nodes[e->node].addr;
    char node[STREAMS_NAME_MAX + 16];
    if (s->nodes[e->node].name[0])
        snprintf(node, sizeof node, "node %s", s->nodes[e->node].name);
    else
        snprintf(node, sizeof node, "node %" PRIu32, e->node);
    snprintf(buf, len, "%u.%u.%u.%u:%u (%s)", (unsigned)(a >> 24), (unsigned)(a >> 16 & 0xff),
             (unsigned)(a >> 8 & 0xff), (unsigned)(a & 0xff), (unsigned)e->lport, node);
    return buf;
}

/* The first violation, on the stream from w to r. */
__attribute__((format(printf, 4, 5))) static void fail(sim_streams_t *s, const end_t *w,
                                                       const end_t *r, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    char a[96], b[96], what[STREAMS_ERR_MAX - 212]; /* fits after the two labels */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(s->err, sizeof s->err, "tcp stream %s -> %s: %s", end_label(s, w, a, sizeof a),
             end_label(s, r, b, sizeof b), what);
}

/* ---- ends --------------------------------------------------------------------------------- */

static size_t bucket(uint32_t node, uint32_t ep)
{
    uint64_t k = ((uint64_t)node << 32 | ep) * 0x9e3779b97f4a7c15ull;
    return (size_t)(k >> 54) % STREAMS_BUCKETS;
}

static end_t *by_app(const sim_streams_t *s, uint32_t node, uint32_t ep)
{
    for (end_t *e = s->by_app[bucket(node, ep)]; e; e = e->hnext_app)
        if (e->node == node && e->app_ep == ep)
            return e;
    return NULL;
}

static end_t *by_srv(const sim_streams_t *s, uint32_t node, uint32_t ep)
{
    for (end_t *e = s->by_srv[bucket(node, ep)]; e; e = e->hnext_srv)
        if (e->node == node && e->srv_ep == ep)
            return e;
    return NULL;
}

static void unhash(sim_streams_t *s, end_t *e)
{
    end_t **p;
    for (p = &s->by_app[bucket(e->node, e->app_ep)]; *p && *p != e; p = &(*p)->hnext_app)
        ;
    if (*p)
        *p = e->hnext_app;
    for (p = &s->by_srv[bucket(e->node, e->srv_ep)]; *p && *p != e; p = &(*p)->hnext_srv)
        ;
    if (*p)
        *p = e->hnext_srv;
    e->hnext_app = e->hnext_srv = NULL;
}

static void unwait(sim_streams_t *s, end_t *e)
{
    if (!e->waiting)
        return;
    if (e->wprev)
        e->wprev->wnext = e->wnext;
    else
        s->waiting = e->wnext;
    if (e->wnext)
        e->wnext->wprev = e->wprev;
    else
        s->waiting_tail = e->wprev;
    e->wprev = e->wnext = NULL;
    e->waiting = false;
}

static void unlink_end(sim_streams_t *s, end_t *e)
{
    unhash(s, e);
    unwait(s, e);
    if (e->prev)
        e->prev->next = e->next;
    else
        s->ends = e->next;
    if (e->next)
        e->next->prev = e->prev;
    end_destroy(e);
}

/* Free what can no longer matter: a finished end, with its other end once that is finished. */
static void reap(sim_streams_t *s, end_t *e)
{
    if (!e->finished)
        return;
    end_t *p = e->peer;
    if (p && !p->finished) {
        unhash(s, e); /* its ids may be reused; its bytes stay for p to receive */
        return;
    }
    if (!p && e->tuple)
        s->stats.unpaired++;
    if (p)
        unlink_end(s, p);
    unlink_end(s, e);
}

static end_t *end_new(sim_streams_t *s, uint32_t node, uint32_t task, uint32_t srv_ep,
                      uint32_t app_ep)
{
    /* A stale end with one of these ids (never seen finished): the ids are the kernel's now. */
    end_t *old;
    while ((old = by_app(s, node, app_ep)) || (old = by_srv(s, node, srv_ep))) {
        unhash(s, old);
        old->over = old->finished = true;
        if (old->peer)
            old->peer->over = true;
        reap(s, old);
    }
    end_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->node = node;
    e->srv_task = task;
    e->srv_ep = srv_ep;
    e->app_ep = app_ep;
    e->next = s->ends;
    if (s->ends)
        s->ends->prev = e;
    s->ends = e;
    size_t b = bucket(node, app_ep);
    e->hnext_app = s->by_app[b];
    s->by_app[b] = e;
    b = bucket(node, srv_ep);
    e->hnext_srv = s->by_srv[b];
    s->by_srv[b] = e;
    return e;
}

static void make_blind(end_t *e)
{
    e->blind = true;
    free(e->out.buf);
    memset(&e->out, 0, sizeof e->out);
}

static void pair(sim_streams_t *s, end_t *c, end_t *a)
{
    unwait(s, c);
    c->peer = a;
    a->peer = c;
    if (c->blind || c->got_unpaired) {
        /* its other end seemed out of the run: what it holds is not the stream */
        make_blind(c);
        make_blind(a);
        s->stats.unpaired += 2;
        return;
    }
    s->stats.connections++;
}

/* A connecting end got its addresses: it replaces an older waiting end with the same. */
static void wait_for_peer(sim_streams_t *s, end_t *c)
{
    for (end_t *w = s->waiting, *next; w; w = next) {
        next = w->wnext;
        if (w->node == c->node && w->laddr == c->laddr && w->lport == c->lport &&
            w->raddr == c->raddr && w->rport == c->rport)
            unwait(s, w);
    }
    c->wprev = s->waiting_tail;
    c->wnext = NULL;
    if (s->waiting_tail)
        s->waiting_tail->wnext = c;
    else
        s->waiting = c;
    s->waiting_tail = c;
    c->waiting = true;
}

static void find_peer(sim_streams_t *s, end_t *a)
{
    uint32_t my_addr = s->nodes[a->node].addr;
    for (end_t *c = s->waiting; c; c = c->wnext) {
        /* on one node (a connection to itself, or over loopback) the ports decide */
        if (c->laddr == a->raddr && c->lport == a->rport && c->rport == a->lport &&
            (c->node == a->node || my_addr == 0 || my_addr == c->raddr)) {
            pair(s, c, a);
            return;
        }
    }
}

/* The connection is over for liveness (both directions). */
static void conn_over(end_t *e)
{
    e->over = true;
    if (e->peer)
        e->peer->over = true;
}

/* The writer is done writing: the stream's length is known. */
static void shut(end_t *e, uint64_t t)
{
    if (e->out.shut)
        return;
    e->out.shut = true;
    if (e->out.len == 0)
        e->out.since_ns = t; /* the eof is pending now */
}

static void finish(sim_streams_t *s, end_t *e, uint64_t t)
{
    shut(e, t);
    conn_over(e);
    e->finished = true;
    if (e->peer) { /* nothing more reaches this end's application: drop what it would get */
        sbuf_t *b = &e->peer->out;
        free(b->buf);
        b->buf = NULL;
        b->off = b->len = b->cap = 0;
    }
    reap(s, e);
}

/* ---- the stream ------------------------------------------------------------------------- */

static bool sbuf_room(sbuf_t *b, size_t n)
{
    if (b->off + b->len + n <= b->cap)
        return true;
    if (b->off > 0) {
        memmove(b->buf, b->buf + b->off, b->len); /* drop the checked prefix */
        b->off = 0;
        if (b->len + n <= b->cap)
            return true;
    }
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->buf, cap);
    if (!p)
        return false;
    b->buf = p;
    b->cap = cap;
    return true;
}

static void on_write(sim_streams_t *s, end_t *w, const uint8_t *p, size_t n, uint64_t t)
{
    if (w->blind || w->out.shut || n == 0)
        return;
    if (w->peer && w->peer->finished)
        return; /* nobody will receive it */
    if (!w->peer && w->out.len + n > SIM_STREAMS_UNPAIRED_MAX) {
        make_blind(w);
        return;
    }
    if (!sbuf_room(&w->out, n)) {
        make_blind(w); /* out of memory: check nothing rather than something wrong */
        return;
    }
    if (w->out.len == 0)
        w->out.since_ns = t;
    memcpy(w->out.buf + w->out.off + w->out.len, p, n);
    w->out.len += n;
    w->out.written += n;
}

static void on_deliver(sim_streams_t *s, end_t *r, const uint8_t *p, size_t n, uint64_t t)
{
    end_t *w = r->peer;
    if (!w) {
        r->got_unpaired = true;
        return;
    }
    if (r->blind || w->blind || n == 0)
        return;
    sbuf_t *b = &w->out;
    if (b->eof) {
        fail(s, w, r, "%zu bytes delivered at byte %" PRIu64 " after the eof", n, b->base);
        return;
    }
    size_t have = n < b->len ? n : b->len;
    const uint8_t *want = b->buf + b->off;
    for (size_t i = 0; i < have; i++) {
        if (p[i] != want[i]) {
            fail(s, w, r, "byte %" PRIu64 " delivered is 0x%02x, written was 0x%02x", b->base + i,
                 p[i], want[i]);
            return;
        }
    }
    if (n > b->len) {
        fail(s, w, r,
             "%zu bytes delivered at byte %" PRIu64 ", only %zu written and not yet "
             "delivered (stream written: %" PRIu64 " bytes)",
             n, b->base, b->len, b->written);
        return;
    }
    b->off += n;
    b->len -= n;
    b->base += n;
    b->since_ns = t;
    s->stats.bytes += n;
}

static void on_eof(sim_streams_t *s, end_t *r, uint64_t bytes, uint64_t t)
{
    end_t *w = r->peer;
    if (!w || r->blind || w->blind)
        return;
    sbuf_t *b = &w->out;
    if (b->eof)
        fail(s, w, r, "a second eof");
    else if (!b->shut)
        fail(s, w, r,
             "eof {%" PRIu64 "} but the writer has not shut down (%" PRIu64 " bytes written)",
             bytes, b->written);
    else if (bytes != b->written)
        fail(s, w, r, "eof {%" PRIu64 "} but %" PRIu64 " bytes were written before the shutdown",
             bytes, b->written);
    else if (b->base != bytes)
        fail(s, w, r, "eof {%" PRIu64 "} after %" PRIu64 " bytes delivered", bytes, b->base);
    b->eof = true;
    b->since_ns = t;
}

/* ---- records ------------------------------------------------------------------------------ */

/* Decode a tcp message's payload; false if it is not that message (or malformed). */
static bool decode(const hal_trace_rec_t *r, uint32_t number, void *out, size_t size)
{
    const iface_msg_t *m = iface_msg(&tcp_iface, number);
    os_handle_t handles[OS_MSG_MAX_HANDLES];
    if (!m || r->nhandles > OS_MSG_MAX_HANDLES || (r->len && !r->data))
        return false;
    for (size_t i = 0; i < OS_MSG_MAX_HANDLES; i++)
        handles[i] = 1; /* the records carry no handle values: any valid one decodes */
    return iface_decode(m, r->data, r->len, handles, r->nhandles, out, size) == 0;
}

/* tcpip sent `opened` or `accepted`: the channel pair it created just before is the new
 * connection's (its events run one at a time, so nothing of that task comes between). */
static void on_new_conn(sim_streams_t *s, uint32_t node, const hal_trace_rec_t *r)
{
    union {
        tcp_opened_t o;
        tcp_accepted_t a;
    } m;
    if (r->nhandles != 1 || s->nodes[node].cc_task != r->task || s->nodes[node].cc_b == 0)
        return;
    bool accepted = r->type == tcp_msg_accepted;
    if (!decode(r, r->type, &m, sizeof m))
        return;
    end_t *e = end_new(s, node, r->task, s->nodes[node].cc_a, s->nodes[node].cc_b);
    s->nodes[node].cc_b = 0;
    if (!e)
        return;
    e->accepting = accepted;
    if (!accepted) {
        e->lport = m.o.port;
        return;
    }
    e->tuple = true;
    e->raddr = m.a.addr;
    e->rport = m.a.port;
    e->lport = m.a.lport;
    find_peer(s, e);
}

static void on_send(sim_streams_t *s, uint32_t node, const hal_trace_rec_t *r)
{
    union {
        tcp_data_t d;
        tcp_established_t est;
        tcp_shutdown_t sh;
        tcp_error_t err;
    } m;
    if (r->type == tcp_msg_opened || r->type == tcp_msg_accepted) {
        on_new_conn(s, node, r);
        return;
    }
    end_t *e = by_app(s, node, r->chan);
    if (e) { /* the application's end */
        if (r->type == tcp_msg_data) {
            if (decode(r, tcp_msg_data, &m.d, sizeof m.d))
                on_write(s, e, m.d.data, m.d.data_len, r->time_ns);
        } else if (r->type == tcp_msg_shutdown) {
            if (decode(r, tcp_msg_shutdown, &m.sh, sizeof m.sh) && m.sh.how == 1)
                shut(e, r->time_ns);
        } else if (r->type == tcp_msg_reset) {
            conn_over(e);
        }
        return;
    }
    if (!(e = by_srv(s, node, r->chan)))
        return;
    if (r->type == tcp_msg_established && !e->accepting && !e->tuple &&
        decode(r, tcp_msg_established, &m.est, sizeof m.est)) {
        e->tuple = true;
        e->laddr = m.est.laddr;
        e->lport = m.est.lport;
        e->raddr = m.est.raddr;
        e->rport = m.est.rport;
        wait_for_peer(s, e);
    } else if (r->type == tcp_msg_error && decode(r, tcp_msg_error, &m.err, sizeof m.err) &&
               m.err.type == 0) {
        conn_over(e);
    }
}

static void on_received(sim_streams_t *s, uint32_t node, const hal_trace_rec_t *r)
{
    union {
        tcp_data_t d;
        tcp_eof_t eof;
    } m;
    end_t *e = by_app(s, node, r->chan);
    if (!e)
        return;
    if (r->type == tcp_msg_data) {
        if (decode(r, tcp_msg_data, &m.d, sizeof m.d))
            on_deliver(s, e, m.d.data, m.d.data_len, r->time_ns);
        else
            make_blind(e); /* cannot tell what it received */
    } else if (r->type == tcp_msg_eof && decode(r, tcp_msg_eof, &m.eof, sizeof m.eof)) {
        on_eof(s, e, m.eof.bytes, r->time_ns);
    }
}

static void on_task_exit(sim_streams_t *s, uint32_t node, uint32_t task, uint64_t t)
{
    /* finishing an end may free it and its other end: look again from the start each time */
    for (;;) {
        end_t *e = s->ends;
        while (e && (e->node != node || e->finished || e->app_task != task))
            e = e->next;
        if (!e)
            break;
        finish(s, e, t); /* its handles close with it */
    }
    for (end_t *e = s->ends; e; e = e->next)
        if (e->node == node && !e->finished && e->srv_task == task)
            conn_over(e); /* tcpip and its lwIP are gone */
}

void sim_streams_record(sim_streams_t *s, uint32_t node, const hal_trace_rec_t *r)
{
    if (node >= SIM_NODES_MAX)
        return;
    switch (r->kind) {
    case HAL_TR_CHAN_CREATE:
        s->nodes[node].cc_task = r->task;
        s->nodes[node].cc_a = r->chan;
        s->nodes[node].cc_b = r->peer;
        return;
    case HAL_TR_EXIT:
        on_task_exit(s, node, r->task, r->time_ns);
        return;
    case HAL_TR_HANDLE: /* no iface in these: which task holds an end now */
        if ((r->type & 0xff) == HAL_TRACE_OBJ_CHAN) {
            end_t *e = by_app(s, node, r->chan);
            if (e)
                e->app_task = r->task;
        }
        return;
    default:
        break;
    }
    if (r->iface != s->tcp_id)
        return;
    end_t *e;
    switch (r->kind) {
    case HAL_TR_SEND:
        if (r->result == 0)
            on_send(s, node, r);
        break;
    case HAL_TR_DELIVER:
        if (r->result == 0)
            on_received(s, node, r);
        break;
    case HAL_TR_CLOSE:
        if ((e = by_app(s, node, r->chan)) != NULL)
            finish(s, e, r->time_ns);
        else if ((e = by_srv(s, node, r->chan)) != NULL)
            conn_over(e);
        break;
    case HAL_TR_PEER_CLOSED:
        if ((e = by_app(s, node, r->chan)) != NULL)
            conn_over(e);
        break;
    default:
        break;
    }
}

void sim_streams_node_down(sim_streams_t *s, uint32_t node)
{
    if (node >= SIM_NODES_MAX)
        return;
    for (;;) {
        end_t *e = s->ends;
        while (e && (e->node != node || e->finished))
            e = e->next;
        if (!e)
            break;
        unhash(s, e); /* its kernel is gone: the ids start again */
        finish(s, e, 0);
    }
    s->nodes[node].cc_task = s->nodes[node].cc_a = s->nodes[node].cc_b = 0;
}

/* ---- liveness ----------------------------------------------------------------------------- */

bool sim_streams_check(sim_streams_t *s, uint64_t now_ns, uint64_t heal_ns, uint64_t bound_ns,
                       char *err, size_t errlen)
{
    if (!s->failed && heal_ns != UINT64_MAX) {
        for (end_t *w = s->ends; w && !s->failed; w = w->next) {
            end_t *r = w->peer;
            const sbuf_t *b = &w->out;
            if (!r || w->over || r->over || w->blind || r->blind)
                continue;
            bool pending = b->len > 0 || (b->shut && !b->eof);
            uint64_t from = b->since_ns > heal_ns ? b->since_ns : heal_ns;
            if (!pending || now_ns <= from || now_ns - from <= bound_ns)
                continue;
            if (b->len > 0)
                fail(s, w, r,
                     "stalled: bytes %" PRIu64 "..%" PRIu64 " written, none delivered "
                     "for %.3f s (last progress at %.3f s, the network healed at %.3f s)",
                     b->base, b->written, (double)(now_ns - from) / 1e9, (double)b->since_ns / 1e9,
                     (double)heal_ns / 1e9);
            else
                fail(s, w, r,
                     "stalled: the shutdown after %" PRIu64 " bytes not delivered as "
                     "eof for %.3f s (the network healed at %.3f s)",
                     b->written, (double)(now_ns - from) / 1e9, (double)heal_ns / 1e9);
        }
    }
    if (s->failed && err && errlen)
        snprintf(err, errlen, "%s", s->err);
    return !s->failed;
}

void sim_streams_stats(const sim_streams_t *s, sim_streams_stats_t *out)
{
    *out = s->stats;
    out->held = 0;
    for (const end_t *e = s->ends; e; e = e->next)
        out->held += e->out.len;
}

/* ---- as a trace sink ---------------------------------------------------------------------- */

static void tap_record(void *self, const hal_trace_rec_t *r)
{
    const struct streams_tap *t = self;
    sim_streams_record(t->s, t->node, r);
}

hal_trace_sink_t sim_streams_sink(sim_streams_t *s, uint32_t node)
{
    uint32_t i = node < SIM_NODES_MAX ? node : SIM_NODES_MAX - 1;
    s->taps[i] = (struct streams_tap){.s = s, .node = node};
    return (hal_trace_sink_t){.self = &s->taps[i], .record = tap_record};
}
