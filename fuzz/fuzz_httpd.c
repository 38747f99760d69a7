/* fuzz_httpd.c — libFuzzer target of httpd: tcp connections and fs answers from a fake peer. */
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
#include "http_stream.h"

/*
 * The input (docs/httpd.md, "Fuzzing"): ops, one byte each and its operands (op()), until
 * the input ends. The harness:
 *   boot     init, httpd and a fake peer `fuzz_httpd_peer` on sim; the peer registers the tcp
 *            and fs interfaces, so httpd's connects reach it: it answers httpd's listen with a
 *            listener channel and plays the fs server over a small tree (/www with an index,
 *            a text file, a 70000-byte file, a directory with and without an index, a symlink
 *            out of the root);
 *   feed     accepted connections; request bytes split at any point into data messages, raw or
 *            from a vocabulary of requests (keep-alive, pipelined, HEAD, ranges, conditional,
 *            /status, traversal attempts, oversized heads); eof, reset, the peer's close; held
 *            connections (the peer stops reading: httpd's sends get OS_EFULL and wait for
 *            writable); time passing (the 408 deadline); fs answers turned bad by the input
 *            (errors, protocol errors, wrong ids, none, short data, closed channels); any tcp
 *            message with fields from the input;
 *   clean up release and close every connection, run httpd's timers; the node must be back
 *            where it booted, else it reboots (persistent mode, below).
 * Invariants (abort() is the crash libFuzzer reports): httpd did not panic or fault, the kernel
 * audit holds after every op, a step ends (no more than STEP_RECORDS trace records, no timer
 * firing TIMER_SPIN_MAX times at one instant), every response httpd writes is well-formed
 * HTTP/1.1 (a status line, header lines, a blank line; Content-Length once at most; a body of
 * exactly Content-Length bytes, none for HEAD, 1xx, 204 and 304; without Content-Length the body
 * runs to the close and `Connection: close` says so), no response is cut short unless the
 * peer or the fs misbehaved first, httpd holds no more than HANDLES_IDLE handles once every
 * connection is gone, and sim_teardown reports no leaked kernel allocation (at each reboot). The
 * image boots once and stays booted while each input leaves it as it booted (persistent mode,
 * below); a reproducer run (files, FUZZ_FRESH=1) boots afresh for every input.
 */

enum {
    CONNS_MAX = 24,         /* connections the peer keeps at once */
    FILES_MAX = 64,         /* fs file channels the peer keeps */
    REQ_TCP = 1,            /* the peer's register requests */
    REQ_FS = 2,             /* */
    STEP_RECORDS = 2000000, /* trace records in one step: more is a hang */
    TIMER_SPIN_MAX = 10000, /* timer events at one virtual instant: a hang */
    SETTLE_TIMERS = 200,    /* timer events after the peer closed everything */
    HANDLES_IDLE = 8,       /* httpd's handles with no connection: init, tcp, fs, ... */
};

static bool verbose; /* FUZZ_VERBOSE: what each input reached */
static fz_in_t *IN;  /* the input being read (the peer reads fs answers from it too) */

static void check(bool ok, const char *what)
{
    if (!ok) {
        size_t len = 0;
        const char *out = sim_console_output(&len);
        fprintf(stderr, "fuzz_httpd: invariant broken: %s\n", what);
        if (len)
            fprintf(stderr, "--- console ---\n%.*s\n---\n", (int)(len > 4000 ? 4000 : len),
                    out + (len > 4000 ? len - 4000 : 0));
        abort();
    }
}

/* ---- the fake fs: a small tree ----------------------------------------------------------------
 */

typedef struct node {
    const char *path; /* from the root, no leading '/' */
    uint8_t type;
    uint64_t size;
    const char *link; /* a symlink's text */
} node_t;

static const node_t tree[] = {
    {"", FS_T_DIR, 1024, NULL},
    {"www", FS_T_DIR, 1024, NULL},
    {"www/index.html", FS_T_REG, 613, NULL},
    {"www/a.txt", FS_T_REG, 5, NULL},
    {"www/big.bin", FS_T_REG, 70000, NULL},
    {"www/pic.png", FS_T_REG, 3000, NULL},
    {"www/sub", FS_T_DIR, 1024, NULL},
    {"www/sub/index.html", FS_T_REG, 40, NULL},
    {"www/empty", FS_T_DIR, 1024, NULL},
    {"www/empty.txt", FS_T_REG, 0, NULL},
    {"www/link", FS_T_LNK, 9, "../secret"},
    {"secret", FS_T_REG, 6, NULL},
};
enum { NODES = sizeof tree / sizeof tree[0] };

static uint8_t content(uint32_t ino, uint64_t off)
{
    return (uint8_t)('a' + (ino * 7 + off) % 26);
}

/* 'a'..'z' over and over, FS_DATA_MAX + 26 bytes: a file's bytes are a run of it (read) */
static uint8_t alphabet[FS_DATA_MAX + 26];

static void alphabet_init(void)
{
    for (size_t k = 0; k < sizeof alphabet; k++)
        alphabet[k] = (uint8_t)('a' + k % 26);
}

/* The node at path ('/'-separated, empty parts and "." skipped, ".." the parent), following a
 * symlink at the end unless nofollow; -1 if none. */
static int lookup(const char *path, bool nofollow)
{
    char norm[FS_PATH_MAX + 1];
    size_t n = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 0)
            break;
        if (len == 1 && p[0] == '.') {
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && norm[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
        } else {
            if (n + len + 2 > sizeof norm)
                return -1;
            if (n)
                norm[n++] = '/';
            memcpy(norm + n, p, len);
            n += len;
        }
        p = e;
    }
    norm[n] = 0;
    for (int i = 0; i < NODES; i++)
        if (strcmp(tree[i].path, norm) == 0) {
            if (tree[i].type == FS_T_LNK && !nofollow)
                return lookup("secret", true); /* the one symlink leads out of /www */
            return i;
        }
    return -1;
}

/* ---- the fake peer ------------------------------------------------------------------------- */

typedef struct conn {
    os_handle_t h;
    bool used, held, we_closed, eof_sent;
    hs_stream_t http; /* what we sent and what httpd answered */
} conn_t;

typedef struct file {
    os_handle_t h;
    int node;
} file_t;

static struct {
    os_ctx_t *ctx;
    os_handle_t tcp, fs, listener, listener_far;
    bool fs_gone;
    conn_t c[CONNS_MAX];
    file_t f[FILES_MAX];
    int nfiles;
    int newest;
    bool chaos;   /* fs answers read a byte of the input each: bad ones now and then */
    bool trouble; /* an fs answer went bad: a response may be cut short */
    uint64_t accepted, bytes_in, bytes_out, fs_requests;
} P;

static void fail(const char *what)
{
    check(false, what);
}

static hs_env_t HS = {.fail = fail}; /* the checks of every connection's stream, and tallies */

static void peer_start(os_ctx_t *ctx)
{
    P.ctx = ctx;
    P.tcp = P.fs = P.listener = P.listener_far = OS_HANDLE_NONE;
    init_register_iface(ctx, REQ_TCP, &tcp_iface);
    init_register_iface(ctx, REQ_FS, &fs_iface);
}

static int conn_of(os_handle_t h)
{
    for (int i = 0; i < CONNS_MAX; i++)
        if (P.c[i].used && P.c[i].h == h)
            return i;
    return -1;
}

static int file_of(os_handle_t h)
{
    for (int i = 0; i < P.nfiles; i++)
        if (P.f[i].h == h)
            return i;
    return -1;
}

static void drop_file(int i)
{
    os_handle_close(P.ctx, P.f[i].h);
    P.f[i] = P.f[--P.nfiles];
}

/* The connection ended (httpd closed it, or we did): what was under way must be whole. */
static void conn_end(int i, bool by_us)
{
    conn_t *c = &P.c[i];
    hs_ended(&HS, &c->http, false, by_us || c->we_closed || P.trouble);
    os_handle_close(P.ctx, c->h);
    memset(c, 0, sizeof *c);
}

static void on_tcp(os_ctx_t *ctx, int i, const os_event_t *ev)
{
    static tcp_data_t d;
    conn_t *c = &P.c[i];
    if (ev->type == tcp_msg_data && tcp_data_decode(ev, &d) == 0) {
        P.bytes_out += d.data_len;
        hs_received(&HS, &c->http, d.data, d.data_len);
    } else if (ev->type == tcp_msg_shutdown) {
        hs_ended(&HS, &c->http, true, c->we_closed || P.trouble);
    } else if (ev->type == tcp_msg_reset) {
        c->we_closed = true; /* httpd gave up on it: nothing under way is owed */
    } else {
        check(false, "httpd sent a message a tcp client never sends on a connection");
    }
    (void)ctx;
}

/* ---- the fake fs: answers ------------------------------------------------------------------- */

static const int32_t fs_errors[] = {OS_ENOENT, OS_EIO,    OS_EACCES, OS_ENOTDIR,
                                    OS_EISDIR, OS_ENOSPC, OS_EINVAL, OS_ENAMETOOLONG};

/* How to answer this request: 0 as the tree says, or a bad answer (only in chaos). */
static uint8_t verdict(void)
{
    if (!P.chaos)
        return 0;
    uint8_t b = fz_byte(IN);
    return b < 160 ? 0 : (uint8_t)(1 + b % 8);
}

/* A bad answer to request req on channel h (verdict v in 1..8); false when the proper answer
 * is still to follow. Every request gets an answer of some kind, as from a real fs server (an fs
 * that never answers stalls httpd's connection until the fs channel closes: not a case). */
static bool bad_answer(os_ctx_t *ctx, os_handle_t h, uint32_t type, uint32_t req, uint8_t v)
{
    P.trouble = true;
    switch (v) {
    case 1:
        fs_reply_send(ctx, h, &(fs_reply_t){req, fs_errors[fz_byte(IN) % 8]});
        return true;
    case 2: /* a stray protocol error first */
        fs_error_send(ctx, h, &(fs_error_t){type, OS_EPROTO});
        return false;
    case 3: /* an answer to some other request first */
        fs_reply_send(ctx, h, &(fs_reply_t){req + 1 + fz_byte(IN), 0});
        return false;
    case 4: /* an error that no fs request expects */
        fs_reply_send(ctx, h, &(fs_reply_t){req, OS_EPROTO});
        return true;
    case 5: /* a data answer of any length, to anything */
    {
        static fs_data_t d;
        d.req = req;
        d.data_len = (uint32_t)fz_byte(IN) * 16;
        memset(d.data, 'z', d.data_len);
        fs_data_send(ctx, h, &d);
        return true;
    }
    case 6: /* the channel closes */
        if (h == P.fs) {
            os_handle_close(ctx, P.fs);
            P.fs = OS_HANDLE_NONE;
            P.fs_gone = true;
        } else if (file_of(h) >= 0) {
            drop_file(file_of(h));
        }
        return true;
    case 7: /* attr to anything */
        fs_attr_send(
            ctx, h,
            &(fs_attr_t){req, 99, FS_T_REG << 12 | 0644, 1, 0, 0, (uint64_t)fz_byte(IN) << 20, 0});
        return true;
    default: /* an answer with a size that disagrees with the file */
        fs_reply_send(ctx, h, &(fs_reply_t){req, 7});
        return true;
    }
}

static void on_fs_ctl(os_ctx_t *ctx, const os_event_t *ev)
{
    static fs_open_t o;
    P.fs_requests++;
    if (ev->type != fs_msg_open || fs_open_decode(ev, &o) != 0) {
        uint32_t req = ev->len >= 4 ? ((const uint32_t *)ev->data)[0] : 0;
        fs_reply_send(ctx, P.fs, &(fs_reply_t){req, OS_EROFS});
        for (size_t k = 0; k < ev->nhandles; k++)
            os_handle_close(ctx, ev->handles[k]);
        return;
    }
    uint8_t v = verdict();
    if (v && bad_answer(ctx, P.fs, ev->type, o.req, v))
        return;
    int n = lookup(o.path, o.flags & FS_O_NOFOLLOW);
    if (n < 0) {
        fs_reply_send(ctx, P.fs, &(fs_reply_t){o.req, OS_ENOENT});
        return;
    }
    if (o.flags & ~(uint32_t)(FS_O_READ | FS_O_NOFOLLOW)) {
        fs_reply_send(ctx, P.fs, &(fs_reply_t){o.req, OS_EACCES});
        return;
    }
    os_handle_t a, b;
    if (P.nfiles == FILES_MAX || os_channel_create(ctx, &a, &b) != 0) {
        fs_reply_send(ctx, P.fs, &(fs_reply_t){o.req, OS_ENOSPC});
        return;
    }
    os_channel_tag(ctx, a, iface_id(&fs_iface));
    os_channel_tag(ctx, b, iface_id(&fs_iface));
    fs_opened_t r = {o.req, (uint32_t)(10 + n), tree[n].type, tree[n].size, b};
    if (fs_opened_send(ctx, P.fs, &r) != 0) {
        os_handle_close(ctx, a);
        os_handle_close(ctx, b);
        return;
    }
    P.f[P.nfiles++] = (file_t){a, n};
}

static void on_fs_file(os_ctx_t *ctx, int fi, const os_event_t *ev)
{
    static union {
        fs_read_t read;
        fs_readdir_t readdir;
        fs_data_t data;
        fs_dirents_t dirents;
    } m;
    os_handle_t h = P.f[fi].h;
    const node_t *nd = &tree[P.f[fi].node];
    uint32_t ino = (uint32_t)(10 + P.f[fi].node);
    uint32_t req = ev->len >= 4 ? ((const uint32_t *)ev->data)[0] : 0;
    P.fs_requests++;
    for (size_t k = 0; k < ev->nhandles; k++)
        os_handle_close(ctx, ev->handles[k]);
    uint8_t v = verdict();
    if (v && bad_answer(ctx, h, ev->type, req, v))
        return;
    if (ev->type == fs_msg_read && fs_read_decode(ev, &m.read) == 0) {
        if (nd->type == FS_T_DIR) {
            fs_reply_send(ctx, h, &(fs_reply_t){req, OS_EISDIR});
            return;
        }
        uint64_t off = m.read.off, len = m.read.len;
        fs_data_t *d = &m.data;
        d->req = req;
        d->data_len = 0;
        if (len > FS_DATA_MAX)
            len = FS_DATA_MAX;
        if (off < nd->size)
            d->data_len = (uint32_t)(len < nd->size - off ? len : nd->size - off);
        if (nd->link)
            memcpy(d->data, nd->link + off, d->data_len);
        else /* content(ino, off + k) for each k: the alphabet from content(ino, off) on */
            memcpy(d->data, alphabet + content(ino, off) - 'a', d->data_len);
        fs_data_send(ctx, h, d);
    } else if (ev->type == fs_msg_stat) {
        fs_attr_send(ctx, h,
                     &(fs_attr_t){req, ino, (uint16_t)(nd->type << 12 | 0644), 1, 0, 0, nd->size,
                                  1700000000u + ino});
    } else if (ev->type == fs_msg_readdir && fs_readdir_decode(ev, &m.readdir) == 0) {
        if (nd->type != FS_T_DIR) {
            fs_reply_send(ctx, h, &(fs_reply_t){req, OS_ENOTDIR});
            return;
        }
        uint64_t cookie = m.readdir.cookie;
        fs_dirents_t *d = &m.dirents;
        memset(d, 0, sizeof *d);
        d->req = req;
        size_t plen = strlen(nd->path);
        for (int k = 1; k < NODES; k++) {
            const char *p = tree[k].path;
            if ((uint64_t)k <= cookie || strncmp(p, nd->path, plen) != 0 ||
                (plen && p[plen] != '/'))
                continue;
            const char *name = p + plen + (plen ? 1 : 0);
            if (strchr(name, '/'))
                continue;
            size_t nl = strlen(name);
            if (d->data_len + 6 + nl > FS_DIRENTS_MAX)
                break;
            uint32_t kino = (uint32_t)(10 + k);
            memcpy(d->data + d->data_len, &kino, 4);
            d->data[d->data_len + 4] = tree[k].type;
            d->data[d->data_len + 5] = (uint8_t)nl;
            memcpy(d->data + d->data_len + 6, name, nl);
            d->data_len += (uint32_t)(6 + nl);
            d->count++;
            d->next = (uint64_t)k;
        }
        fs_dirents_send(ctx, h, d);
    } else {
        fs_reply_send(ctx, h, &(fs_reply_t){req, OS_EACCES});
    }
}

static void peer_event(os_ctx_t *ctx, const os_event_t *ev)
{
    int i;
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if ((i = conn_of(ev->handle)) >= 0) {
            conn_end(i, false);
        } else if ((i = file_of(ev->handle)) >= 0) {
            drop_file(i);
        } else if (ev->handle == P.listener) {
            os_handle_close(ctx, P.listener);
            P.listener = OS_HANDLE_NONE;
        } else if (ev->handle == P.tcp || ev->handle == P.fs) {
            os_handle_close(ctx, ev->handle);
            if (ev->handle == P.tcp)
                P.tcp = OS_HANDLE_NONE;
            else
                P.fs = OS_HANDLE_NONE;
        }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        init_new_client_t nc;
        if (ev->type == init_msg_new_client && init_new_client_decode(ev, &nc) == 0) {
            if (strcmp(nc.name, "tcp") == 0 && P.tcp == OS_HANDLE_NONE)
                P.tcp = nc.chan;
            else if (strncmp(nc.name, "fs", 2) == 0 && P.fs == OS_HANDLE_NONE && !P.fs_gone)
                P.fs = nc.chan;
            else
                os_handle_close(ctx, nc.chan);
        } else {
            for (size_t k = 0; k < ev->nhandles; k++)
                os_handle_close(ctx, ev->handles[k]);
        }
        return;
    }
    if ((i = conn_of(ev->handle)) >= 0) {
        on_tcp(ctx, i, ev);
        return;
    }
    if ((i = file_of(ev->handle)) >= 0) {
        on_fs_file(ctx, i, ev);
        return;
    }
    if (ev->handle == P.fs) {
        on_fs_ctl(ctx, ev);
        return;
    }
    if (ev->handle == P.tcp) {
        tcp_listen_t l;
        if (ev->type == tcp_msg_listen && tcp_listen_decode(ev, &l) == 0 &&
            P.listener == OS_HANDLE_NONE) {
            os_handle_t a, b;
            check(os_channel_create(ctx, &a, &b) == 0, "a listener channel");
            os_channel_tag(ctx, a, iface_id(&tcp_iface));
            os_channel_tag(ctx, b, iface_id(&tcp_iface));
            if (tcp_listening_send(ctx, P.tcp,
                                   &(tcp_listening_t){l.req, l.port ? l.port : 80, b}) == 0)
                P.listener = a;
            else
                os_handle_close(ctx, a), os_handle_close(ctx, b);
        } else {
            uint32_t req = ev->len >= 4 ? ((const uint32_t *)ev->data)[0] : 0;
            tcp_reply_send(ctx, P.tcp, &(tcp_reply_t){req, OS_EINVAL});
            for (size_t k = 0; k < ev->nhandles; k++)
                os_handle_close(ctx, ev->handles[k]);
        }
        return;
    }
    for (size_t k = 0; k < ev->nhandles; k++)
        os_handle_close(ctx, ev->handles[k]);
}

static const os_program_t peer = {"fuzz_httpd_peer", 0, peer_start, peer_event};

/* ---- the watch: panics and hangs ------------------------------------------------------------ */

static int panics;
static uint64_t fire_ns, fires, step_records;
static uint32_t debug_task; /* FUZZ_DEBUG_HANDLES: httpd's task id, its handles shown */
static void watch(void *self, const hal_trace_rec_t *r)
{
    (void)self;
    if (debug_task && r->task == debug_task &&
        (r->kind == HAL_TR_HANDLE || r->kind == HAL_TR_CLOSE || r->kind == HAL_TR_PEER_CLOSED ||
         r->kind == HAL_TR_SEND || r->kind == HAL_TR_DELIVER))
        fprintf(stderr, "trace: kind %u obj %u peer %u type %u iface %u result %d arg %llu\n",
                r->kind, r->chan, r->peer, r->type, r->iface, r->result,
                (unsigned long long)r->arg);
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

/* ---- ops ------------------------------------------------------------------------------------- */

/* Requests the vocabulary op sends, split where the input says. */
static const char *const requests[] = {
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /big.bin HTTP/1.1\r\nRange: bytes=100-4200\r\n\r\n",
    "GET /a.txt HTTP/1.1\r\nRange: bytes=-3\r\n\r\n",
    "GET /a.txt HTTP/1.1\r\nRange: bytes=9-\r\n\r\n",
    "GET /index.html HTTP/1.1\r\nIf-Modified-Since: Tue, 14 Nov 2023 22:13:41 GMT\r\n\r\n",
    "GET /status HTTP/1.1\r\n\r\n",
    "GET /sub HTTP/1.1\r\n\r\n",
    "GET /sub/ HTTP/1.0\r\n\r\n",
    "GET /empty/ HTTP/1.1\r\n\r\n",
    "GET /link HTTP/1.1\r\n\r\n",
    "GET /../secret HTTP/1.1\r\n\r\n",
    "GET /%2e%2e/secret HTTP/1.1\r\n\r\n",
    "GET /a%00b HTTP/1.1\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    "GET /a.txt HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /empty.txt HTTP/1.1\r\n\r\n",
    "GET /nope HTTP/1.1\r\n\r\n",
    "BREW /pot HTTP/1.1\r\n\r\n",
    "GET / HTTP/2.0\r\n\r\n",
    "garbage\r\n\r\n",
    "GET /pic.png HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n",
    "GET http://x/a.txt HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\nHost: bare-lf\n\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
};
enum { NREQUESTS = sizeof requests / sizeof requests[0] };

static int pick_conn(void)
{
    uint8_t b = fz_byte(IN);
    for (int k = 0; k < CONNS_MAX; k++) {
        int i = (b + k) % CONNS_MAX;
        if (P.c[i].used)
            return i;
    }
    return -1;
}

/* Send bytes on connection i as one data message; false if httpd's queue is full (it holds the
 * channel while a response goes out: a real tcpip keeps the bytes, we try again later). */
static bool send_data(int i, const uint8_t *p, size_t n)
{
    static tcp_data_t d;
    conn_t *c = &P.c[i];
    if (c->eof_sent || n == 0)
        return true;
    if (n > TCP_DATA_MAX)
        n = TCP_DATA_MAX;
    memcpy(d.data, p, n);
    d.data_len = (uint32_t)n;
    if (tcp_data_send(P.ctx, c->h, &d) != 0)
        return false;
    P.bytes_in += n;
    hs_sent(&c->http, p, n);
    return true;
}

static void accept_one(uint8_t b)
{
    if (P.listener == OS_HANDLE_NONE)
        return;
    int i = 0;
    while (i < CONNS_MAX && P.c[i].used)
        i++;
    if (i == CONNS_MAX)
        return;
    os_handle_t a, far;
    if (os_channel_create(P.ctx, &a, &far) != 0)
        return;
    os_channel_tag(P.ctx, a, iface_id(&tcp_iface));
    os_channel_tag(P.ctx, far, iface_id(&tcp_iface));
    tcp_accepted_t m = {0x0a000001, (uint16_t)(40000 + b), 80, far};
    if (tcp_accepted_send(P.ctx, P.listener, &m) != 0) {
        os_handle_close(P.ctx, a);
        os_handle_close(P.ctx, far);
        return;
    }
    memset(&P.c[i], 0, sizeof P.c[i]);
    P.c[i].used = true;
    P.c[i].h = a;
    P.accepted++;
}

static void close_conn(int i, bool reset)
{
    if (reset)
        tcp_error_send(P.ctx, P.c[i].h, &(tcp_error_t){0, OS_ECONNRESET});
    P.c[i].we_closed = true;
    conn_end(i, true);
}

static void op(void)
{
    uint8_t o = fz_byte(IN);
    int i;
    switch (o % 12) {
    case 0: /* a new connection */
        accept_one(fz_byte(IN));
        break;
    case 1:
    case 2: /* raw bytes on a connection */
        if ((i = pick_conn()) >= 0) {
            static uint8_t buf[TCP_DATA_MAX];
            size_t n = fz_byte(IN);
            if (n == 255)
                n = 255 + (size_t)fz_byte(IN) * 16;
            if (n > TCP_DATA_MAX)
                n = TCP_DATA_MAX;
            for (size_t k = 0; k < n; k++)
                buf[k] = fz_byte(IN);
            send_data(i, buf, n);
        }
        break;
    case 3:
    case 4:
    case 5: { /* a request of the vocabulary, in pieces of the input's sizes */
        if ((i = pick_conn()) < 0)
            break;
        const char *r = requests[fz_byte(IN) % NREQUESTS];
        size_t len = strlen(r), at = 0;
        while (at < len) {
            size_t piece = 1 + fz_byte(IN) % 64;
            if (piece > len - at || fz_byte(IN) & 1)
                piece = len - at;
            if (!send_data(i, (const uint8_t *)r + at, piece))
                break;
            at += piece;
            if (at < len && fz_byte(IN) & 1)
                step(); /* httpd sees this piece alone */
        }
        break;
    }
    case 6: /* the client's FIN */
        if ((i = pick_conn()) >= 0 && !P.c[i].eof_sent &&
            tcp_eof_send(P.ctx, P.c[i].h, &(tcp_eof_t){P.bytes_in}) == 0)
            P.c[i].eof_sent = true;
        break;
    case 7: /* a reset, or the connection just closes */
        if ((i = pick_conn()) >= 0)
            close_conn(i, fz_byte(IN) & 1);
        break;
    case 8: /* hold or release a connection: back-pressure on httpd's sends */
        if ((i = pick_conn()) >= 0) {
            P.c[i].held = !P.c[i].held;
            os_handle_hold(P.ctx, P.c[i].h, P.c[i].held);
        }
        break;
    case 9: /* time passes (the 408 deadline) */
        sim_advance(((uint64_t)fz_byte(IN) + 1) * 50000000ull);
        break;
    case 10: /* the fs answers from the input from now on (bad ones now and then) */
        P.chaos = !P.chaos;
        break;
    case 11: { /* any tcp message, fields from the input, on a connection or the listener */
        const iface_msg_t *m = &tcp_iface.msgs[fz_byte(IN) % tcp_iface.nmsgs];
        static uint8_t msg[8192], wire[OS_MSG_MAX_DATA];
        os_handle_t hs[OS_MSG_MAX_HANDLES], ours[OS_MSG_MAX_HANDLES];
        size_t nours = 0, len = 0, nh = 0;
        os_handle_t to = P.listener;
        if (fz_byte(IN) & 1 && (i = pick_conn()) >= 0)
            to = P.c[i].h;
        if (to == OS_HANDLE_NONE)
            break;
        P.trouble = true; /* a stray message may end a connection in the middle of a body */
        fz_fill_message(P.ctx, m, IN, msg, ours, &nours, NULL);
        if (iface_encode(m, msg, wire, sizeof wire, &len, hs, &nh) != 0 ||
            os_send(P.ctx, to, m->number, wire, len, hs, nh) != 0)
            for (size_t k = 0; k < nh; k++)
                os_handle_close(P.ctx, hs[k]);
        for (size_t k = 0; k < nours; k++)
            os_handle_close(P.ctx, ours[k]);
        break;
    }
    }
}

/* ---- boot, input, teardown ------------------------------------------------------------------ */

static const os_program_t *programs[4];
static const char manifest[] = "program fuzz_httpd_peer restart=never\n"
                               "program httpd restart=never reach=tcp,fs\n";

static const os_program_t *find_program(const char *name)
{
    for (const os_program_t *const *p = orrery_programs; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

/*
 * Persistent mode (docs/httpd.md, "Fuzzing"): the image boots once; after each input every
 * connection is released and closed and httpd's timers run, then the node must be back where
 * it booted: httpd and the peer alive, the listener and the tcp and fs channels open, no file
 * channel, kernel task and endpoint counts and httpd's handle count as at boot (the kernel's
 * allocation count is not compared: its message buffer cache grows; sim_teardown checks leaks
 * at every reboot).
 * Otherwise, every REBOOT_EVERY inputs, and for every input of a reproducer run (files,
 * FUZZ_FRESH=1), it boots afresh.
 */
enum { REBOOT_EVERY = 1000, FULL_EVERY = 16 };

static struct {
    bool booted, fresh_each;
    unsigned inputs;       /* since boot */
    k_stats_t base;        /* tasks and endpoints once booted */
    unsigned handles_base; /* httpd's handles once booted */
    unsigned long reboots, dirty, calls;
} H;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    programs[0] = find_program("init");
    programs[1] = &peer;
    programs[2] = find_program("httpd");
    programs[3] = NULL;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    HS.verbose = verbose;
    alphabet_init();
    if (!programs[0] || !programs[2]) {
        fprintf(stderr, "fuzz_httpd: init or httpd is not in the image\n");
        abort();
    }
    H.fresh_each = fz_fresh_each(*argc, *argv); /* a reproducer run boots for every input */
    return 0;
}

static void audit(bool full)
{
    char err[160];
    int rc = full ? k_audit(NULL, 0, NULL, err, sizeof err)
                  : k_audit_quick(NULL, 0, NULL, err, sizeof err);
    check(rc == 0, err);
}

/* httpd's handles, by the full audit (which also runs). */
static unsigned httpd_handles(void)
{
    k_audit_task_t tasks[8];
    size_t ntasks = 0;
    char err[160];
    check(k_audit(tasks, 8, &ntasks, err, sizeof err) == 0, err);
    for (size_t k = 0; k < ntasks && k < 8; k++)
        if (strcmp(tasks[k].name, "httpd") == 0)
            return tasks[k].handles;
    return 0;
}

static void boot(void)
{
    memset(&P, 0, sizeof P);
    sim_config_t cfg = {.programs = programs,
                        .init_arg = manifest,
                        .init_arg_len = sizeof manifest - 1,
                        .seed = 1,
                        .trace = &sink};
    check(sim_boot(&cfg) == 0, "boot");
    step();
    check(P.listener != OS_HANDLE_NONE, "httpd did not listen");
    if (getenv("FUZZ_DEBUG_HANDLES"))
        debug_task = k_task_find("httpd");
    if (verbose) {
        k_audit_task_t t[8];
        size_t nt = 0;
        char e[160];
        k_audit(t, 8, &nt, e, sizeof e);
        for (size_t k = 0; k < nt && k < 8; k++)
            fprintf(stderr, "boot: %s holds %u handles\n", t[k].name, t[k].handles);
    }
    H.handles_base = httpd_handles();
    k_get_stats(&H.base);
    H.booted = true;
    H.inputs = 0;
    H.reboots++;
}

static void reboot_clean(void)
{
    audit(true);
    check(sim_teardown() == 0, "kernel memory leaked");
    H.booted = false;
}

/* After the clean up: is the node where it booted? (handles: httpd's count, measured by the
 * caller's full audit) */
static bool not_back(const char *why)
{
    if (verbose)
        fprintf(stderr, "not back at boot: %s\n", why);
    return false;
}

static bool back_to_boot(unsigned handles)
{
    if (k_task_find("httpd") == 0)
        return not_back("httpd is gone");
    if (P.listener == OS_HANDLE_NONE || P.tcp == OS_HANDLE_NONE || P.fs == OS_HANDLE_NONE ||
        P.fs_gone)
        return not_back("the listener, tcp or fs channel closed");
    if (P.nfiles != 0 || handles != H.handles_base)
        return not_back("file channels or httpd's handles");
    for (int k = 0; k < CONNS_MAX; k++)
        if (P.c[k].used)
            return not_back("a connection");
    k_stats_t st;
    k_get_stats(&st);
    if (st.tasks != H.base.tasks || st.channels != H.base.channels)
        return not_back("kernel task or endpoint counts");
    return true;
}

/* A new input on the booted node: the peer's per-input state starts afresh, its channels to
 * init, tcp, fs and the listener stay (back_to_boot: no connection, no file channel). */
static void peer_next(void)
{
    /* the connection slots are all free, and zeroed when freed (conn_end): 400 KiB not cleared
     * again */
    P.newest = 0;
    P.chaos = P.trouble = false;
    P.accepted = P.bytes_in = P.bytes_out = P.fs_requests = 0;
    HS.responses = 0;
    memset(HS.statuses, 0, sizeof HS.statuses);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    IN = &in;
    panics = 0;
    fire_ns = fires = 0;
    if (!H.booted) {
        debug_task = 0;
        boot();
    } else {
        peer_next();
    }
    bool full = H.fresh_each || H.inputs % FULL_EVERY == FULL_EVERY - 1;
    while (in.n && panics == 0 && k_task_find("httpd") != 0) {
        op();
        step();
        audit(full);
    }
    check(panics == 0, "httpd panicked or faulted");
    /* The peer releases every connection (what httpd still owes arrives), then closes them. */
    for (int k = 0; k < CONNS_MAX; k++)
        if (P.c[k].used && P.c[k].held) {
            P.c[k].held = false;
            os_handle_hold(P.ctx, P.c[k].h, false);
        }
    P.chaos = false;
    step();
    for (int k = 0; k < CONNS_MAX; k++)
        if (P.c[k].used)
            close_conn(k, false);
    step();
    for (int k = 0; k < SETTLE_TIMERS && panics == 0; k++) {
        uint64_t d = k_next_deadline();
        if (d == UINT64_MAX)
            break;
        if (d > sim_now())
            sim_advance(d - sim_now());
        step();
    }
    check(panics == 0, "httpd panicked or faulted after its clients went away");
    /* the handles httpd keeps with no connection left: its channels to init, tcp, fs, ... */
    unsigned handles = httpd_handles();
    if (handles > HANDLES_IDLE) {
        char why[96];
        snprintf(why, sizeof why, "httpd holds %u handles with no connection left", handles);
        check(false, why);
    }
    if (verbose)
        fprintf(
            stderr,
            "%s--- %llu connections, %llu bytes in, %llu out, %llu responses (1xx %llu 2xx %llu "
            "3xx %llu 4xx %llu 5xx %llu), %llu fs requests%s\n",
            sim_console_output(NULL), (unsigned long long)P.accepted,
            (unsigned long long)P.bytes_in, (unsigned long long)P.bytes_out,
            (unsigned long long)HS.responses, (unsigned long long)HS.statuses[1],
            (unsigned long long)HS.statuses[2], (unsigned long long)HS.statuses[3],
            (unsigned long long)HS.statuses[4], (unsigned long long)HS.statuses[5],
            (unsigned long long)P.fs_requests, P.trouble ? " (fs or peer trouble)" : "");
    sim_console_clear();
    bool back = !H.fresh_each && back_to_boot(handles);
    if (!H.fresh_each && !back)
        H.dirty++;
    /* libFuzzer's first call (an empty input) is not counted for coverage: the node it booted
     * goes, so the boot's edges count with the first real input */
    if (!back || ++H.inputs >= REBOOT_EVERY || H.calls++ == 0)
        reboot_clean();
    if (verbose)
        fprintf(stderr, "%s (%lu boots, %lu of them because the node was not back)\n",
                back ? "persistent: back at boot" : "reboot", H.reboots, H.dirty);
    return 0;
}
