/* fsbench.c — the program behind `orrery bench fs`: sequential write and read, small-file creates
 * and fsync latency through the fs interface, timed with the kernel clock, one result line. */
#include <image.h>
#include <iface/fs.h>
#include <iface/init_client.h>

#include <string.h>

/*
 * Spawn argument (manifest arg=): "mb=M,files=N,fsyncs=K" (each optional). It runs once:
 *   1. mkdir /fsbench (an existing one is an error: the image must be fresh);
 *   2. /fsbench/seq: M MiB written in FS_WRITE_MAX-byte writes, INFLIGHT at a time, then fsync;
 *      the clock runs from the open to the fsync's reply;
 *   3. the same file read back in FS_DATA_MAX-byte reads, INFLIGHT at a time, every byte checked;
 *   4. N files /fsbench/f<i>: open with CREAT|EXCL|WRITE, one 1024-byte write, close, one after
 *      the other, then a sync; the clock runs from the first open to the sync's reply;
 *   5. /fsbench/fsync: K times an FS_WRITE_MAX-byte write then an fsync, each fsync timed;
 * then logs "result ..." (the line `orrery bench fs` parses) and asks init to shut down with
 * status 0, or logs "failed: ..." and shuts down with status 1.
 */
enum {
    INFLIGHT = 8,
    MB_MAX = 4096,
    FILES_MAX = 100000,
    FSYNCS_MAX = 1000,
    SMALL_BYTES = 1024,
    REQ_FS = 1, /* init connect */
    REQ_SHUTDOWN = 2,
};

enum phase {
    PH_CONNECT,
    PH_MKDIR,
    PH_SEQ_OPEN,
    PH_SEQ_WRITE,
    PH_SEQ_FSYNC,
    PH_READ_OPEN,
    PH_READ,
    PH_CREATE_OPEN,
    PH_CREATE_WRITE,
    PH_CREATE_SYNC,
    PH_FSYNC_OPEN,
    PH_FSYNC_WRITE,
    PH_FSYNC_FSYNC,
    PH_DONE,
};

typedef struct fsbench_state {
    uint64_t bytes; /* of the sequential file */
    uint32_t files, fsyncs;
    os_handle_t fs, file;
    enum phase ph;
    uint32_t req;        /* the last request id sent */
    uint64_t sent, done; /* sequential phases: bytes asked for and answered */
    uint32_t inflight;   /* sequential phases: requests not yet answered */
    uint32_t i;          /* creates and fsyncs done */
    uint64_t logged;     /* sequential phases: progress lines so far (one per 64 MiB) */
    uint64_t t0, t_write, t_read, t_create, t_fsync0;
    uint64_t fsync_ns[FSYNCS_MAX];
    union {
        fs_write_t w;
        fs_open_t o;
        fs_mkdir_t mk;
    } msg;
} fsbench_state_t;

/* Byte i of the sequential file: not periodic at any write size. */
static uint8_t pattern(uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    return (uint8_t)(x >> 56 ^ x >> 29 ^ i);
}

/* A line per 64 MiB of a sequential phase, so a slow run (TCG) shows it is alive. */
static void progress(os_ctx_t *ctx, fsbench_state_t *st, const char *what, uint64_t bytes)
{
    if (bytes >> 26 > st->logged) {
        st->logged = bytes >> 26;
        os_log(ctx, "%s %llu MiB", what, (unsigned long long)(bytes >> 20));
    }
}

static void finish(os_ctx_t *ctx, fsbench_state_t *st, int status)
{
    init_shutdown_t s = {REQ_SHUTDOWN, status};
    st->ph = PH_DONE;
    if (init_shutdown_send(ctx, init_channel(ctx), &s) < 0)
        os_exit(ctx, status);
}

static void fail(os_ctx_t *ctx, fsbench_state_t *st, const char *what, int rc)
{
    os_log(ctx, "failed: %s: %s", what, os_strerror(rc));
    finish(ctx, st, 1);
}

/* Parse "key=N" pairs; unknown keys and bad numbers are refused. */
static int parse_arg(os_ctx_t *ctx, fsbench_state_t *st)
{
    const void *data;
    size_t len;
    uint64_t mb = 16;
    os_spawn_arg(ctx, &data, &len);
    st->files = 100;
    st->fsyncs = 50;
    const char *p = data, *end = p + len;
    while (p && p < end) {
        const char *k = p;
        while (p < end && *p != '=')
            p++;
        size_t klen = (size_t)(p - k);
        uint64_t v = 0;
        bool digits = false;
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits = true)
            v = v * 10 + (uint64_t)(*p - '0');
        if (!digits || (p < end && *p != ',') || v > FILES_MAX)
            return -1;
        if (klen == 2 && memcmp(k, "mb", 2) == 0 && v >= 1 && v <= MB_MAX)
            mb = v;
        else if (klen == 5 && memcmp(k, "files", 5) == 0 && v >= 1)
            st->files = (uint32_t)v;
        else if (klen == 6 && memcmp(k, "fsyncs", 6) == 0 && v >= 1 && v <= FSYNCS_MAX)
            st->fsyncs = (uint32_t)v;
        else
            return -1;
        if (p < end)
            p++;
    }
    st->bytes = mb << 20;
    return 0;
}

static void fsbench_start(os_ctx_t *ctx)
{
    fsbench_state_t *st = os_state(ctx);
    st->fs = st->file = OS_HANDLE_NONE;
    if (parse_arg(ctx, st) != 0) {
        os_log(ctx, "bad argument (mb=1..%d,files=1..%d,fsyncs=1..%d)", MB_MAX, FILES_MAX,
               FSYNCS_MAX);
        finish(ctx, st, 1);
        return;
    }
    st->ph = PH_CONNECT;
    init_connect_iface(ctx, REQ_FS, &fs_iface);
}

static int send_open(os_ctx_t *ctx, fsbench_state_t *st, const char *path, uint32_t flags)
{
    fs_open_t *o = &st->msg.o;
    memset(o, 0, sizeof *o);
    o->req = ++st->req;
    o->flags = flags;
    o->mode = 0644;
    strncpy(o->path, path, sizeof o->path - 1);
    return fs_open_send(ctx, st->fs, o);
}

static int send_write(os_ctx_t *ctx, fsbench_state_t *st, uint64_t off, uint32_t n, bool pat)
{
    fs_write_t *w = &st->msg.w;
    w->req = ++st->req;
    w->off = off;
    w->data_len = (uint16_t)n;
    for (uint32_t i = 0; i < n; i++)
        w->data[i] = pat ? pattern(off + i) : (uint8_t)i;
    return fs_write_send(ctx, st->file, w);
}

/* Keep INFLIGHT writes (or reads) going until all bytes are asked for. */
static int pump(os_ctx_t *ctx, fsbench_state_t *st)
{
    while (st->inflight < INFLIGHT && st->sent < st->bytes) {
        uint64_t left = st->bytes - st->sent;
        int rc;
        if (st->ph == PH_SEQ_WRITE) {
            uint32_t n = left < FS_WRITE_MAX ? (uint32_t)left : FS_WRITE_MAX;
            rc = send_write(ctx, st, st->sent, n, true);
            st->sent += n;
        } else {
            uint32_t n = left < FS_DATA_MAX ? (uint32_t)left : FS_DATA_MAX;
            fs_read_t r = {++st->req, st->sent, n};
            rc = fs_read_send(ctx, st->file, &r);
            st->sent += n;
        }
        if (rc < 0)
            return rc;
        st->inflight++;
    }
    return 0;
}

static void small_name(char *buf, uint32_t i)
{
    char d[12];
    int n = 0;
    do
        d[n++] = (char)('0' + i % 10);
    while ((i /= 10) && n < 11);
    memcpy(buf, "/fsbench/f", 10);
    for (int k = 0; k < n; k++)
        buf[10 + k] = d[n - 1 - k];
    buf[10 + n] = 0;
}

static void report(os_ctx_t *ctx, fsbench_state_t *st)
{
    uint64_t *v = st->fsync_ns;
    uint32_t n = st->fsyncs;
    for (uint32_t a = 1; a < n; a++) /* insertion sort: at most FSYNCS_MAX */
        for (uint32_t b = a; b > 0 && v[b - 1] > v[b]; b--) {
            uint64_t t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
        }
    uint32_t p99 = (n * 99 + 99) / 100;
    uint64_t med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    os_log(ctx,
           "result bytes=%llu write_ns=%llu read_ns=%llu files=%u create_ns=%llu fsyncs=%u "
           "fsync_median_ns=%llu fsync_p99_ns=%llu",
           (unsigned long long)st->bytes, (unsigned long long)st->t_write,
           (unsigned long long)st->t_read, (unsigned)st->files, (unsigned long long)st->t_create,
           (unsigned)n, (unsigned long long)med, (unsigned long long)v[(p99 ? p99 : 1) - 1]);
    finish(ctx, st, 0);
}

/* The next step after an answer on the control channel (opened, or reply). */
static void on_control(os_ctx_t *ctx, fsbench_state_t *st, const os_event_t *ev)
{
    union {
        fs_opened_t op;
        fs_reply_t r;
    } m;
    if (fs_opened_decode(ev, &m.op) == 0) {
        st->file = m.op.chan;
        if (st->ph == PH_SEQ_OPEN || st->ph == PH_READ_OPEN) {
            st->ph = st->ph == PH_SEQ_OPEN ? PH_SEQ_WRITE : PH_READ;
            st->sent = st->done = st->logged = 0;
            st->inflight = 0;
            int rc = pump(ctx, st);
            if (rc < 0)
                fail(ctx, st, "send", rc);
        } else if (st->ph == PH_CREATE_OPEN) {
            st->ph = PH_CREATE_WRITE;
            int rc = send_write(ctx, st, 0, SMALL_BYTES, false);
            if (rc < 0)
                fail(ctx, st, "write", rc);
        } else if (st->ph == PH_FSYNC_OPEN) {
            st->ph = PH_FSYNC_WRITE;
            st->i = 0;
            int rc = send_write(ctx, st, 0, FS_WRITE_MAX, false);
            if (rc < 0)
                fail(ctx, st, "write", rc);
        } else {
            fail(ctx, st, "unexpected opened", OS_EPROTO);
        }
        return;
    }
    if (fs_reply_decode(ev, &m.r) != 0) {
        iface_discard(ctx, ev);
        fail(ctx, st, "unexpected message on the control channel", OS_EPROTO);
        return;
    }
    if (m.r.status < 0) {
        static const char *const what[] = {
            [PH_MKDIR] = "mkdir /fsbench",
            [PH_SEQ_OPEN] = "open /fsbench/seq",
            [PH_READ_OPEN] = "open /fsbench/seq",
            [PH_CREATE_OPEN] = "create a small file",
            [PH_CREATE_SYNC] = "sync",
            [PH_FSYNC_OPEN] = "open /fsbench/fsync",
        };
        fail(ctx, st, st->ph < PH_DONE && what[st->ph] ? what[st->ph] : "request", m.r.status);
        return;
    }
    if (st->ph == PH_MKDIR) {
        st->ph = PH_SEQ_OPEN;
        st->t0 = os_clock_now(ctx);
        send_open(ctx, st, "/fsbench/seq", FS_O_READ | FS_O_WRITE | FS_O_CREAT | FS_O_EXCL);
    } else if (st->ph == PH_CREATE_SYNC) {
        st->t_create = os_clock_now(ctx) - st->t0;
        os_log(ctx, "created %u files in %llu ms", (unsigned)st->files,
               (unsigned long long)(st->t_create / 1000000));
        st->ph = PH_FSYNC_OPEN;
        send_open(ctx, st, "/fsbench/fsync", FS_O_WRITE | FS_O_CREAT | FS_O_EXCL);
    } else {
        fail(ctx, st, "unexpected reply", OS_EPROTO);
    }
}

/* An answer on the file channel. */
static void on_file(os_ctx_t *ctx, fsbench_state_t *st, const os_event_t *ev)
{
    union {
        fs_reply_t r;
        fs_data_t d;
    } m;
    int rc = 0;
    char name[24];
    if (st->ph == PH_READ) {
        if (fs_data_decode(ev, &m.d) != 0) {
            if (fs_reply_decode(ev, &m.r) == 0)
                fail(ctx, st, "read", m.r.status);
            else
                fail(ctx, st, "read: unexpected answer", OS_EPROTO);
            iface_discard(ctx, ev);
            return;
        }
        /* answers come in order on one channel: data is at st->done */
        for (uint32_t i = 0; i < m.d.data_len; i++)
            if (m.d.data[i] != pattern(st->done + i)) {
                os_log(ctx, "failed: /fsbench/seq differs at byte %llu",
                       (unsigned long long)(st->done + i));
                finish(ctx, st, 1);
                return;
            }
        if (m.d.data_len == 0 && st->done < st->bytes) {
            fail(ctx, st, "read: the file ended early", OS_EIO);
            return;
        }
        st->done += m.d.data_len;
        st->inflight--;
        progress(ctx, st, "read", st->done);
        if (st->done >= st->bytes) {
            st->t_read = os_clock_now(ctx) - st->t0;
            os_log(ctx, "read it back in %llu ms", (unsigned long long)(st->t_read / 1000000));
            os_handle_close(ctx, st->file);
            st->file = OS_HANDLE_NONE;
            st->ph = PH_CREATE_OPEN;
            st->i = 0;
            st->t0 = os_clock_now(ctx);
            small_name(name, 0);
            rc = send_open(ctx, st, name, FS_O_WRITE | FS_O_CREAT | FS_O_EXCL);
        } else {
            rc = pump(ctx, st);
        }
        if (rc < 0)
            fail(ctx, st, "send", rc);
        return;
    }
    if (fs_reply_decode(ev, &m.r) != 0) {
        iface_discard(ctx, ev);
        fail(ctx, st, "unexpected message on a file channel", OS_EPROTO);
        return;
    }
    if (m.r.status < 0) {
        fail(ctx, st, st->ph == PH_SEQ_FSYNC || st->ph == PH_FSYNC_FSYNC ? "fsync" : "write",
             m.r.status);
        return;
    }
    switch (st->ph) {
    case PH_SEQ_WRITE:
        st->inflight--;
        st->done += (uint64_t)m.r.status;
        progress(ctx, st, "written", st->done);
        if (st->sent == st->bytes && st->inflight == 0) {
            fs_fsync_t f = {++st->req};
            st->ph = PH_SEQ_FSYNC;
            rc = fs_fsync_send(ctx, st->file, &f);
        } else {
            rc = pump(ctx, st);
        }
        break;
    case PH_SEQ_FSYNC:
        st->t_write = os_clock_now(ctx) - st->t0;
        os_log(ctx, "wrote %llu MiB and fsynced in %llu ms", (unsigned long long)(st->bytes >> 20),
               (unsigned long long)(st->t_write / 1000000));
        os_handle_close(ctx, st->file);
        st->file = OS_HANDLE_NONE;
        st->ph = PH_READ_OPEN;
        st->t0 = os_clock_now(ctx);
        rc = send_open(ctx, st, "/fsbench/seq", FS_O_READ);
        break;
    case PH_CREATE_WRITE:
        os_handle_close(ctx, st->file);
        st->file = OS_HANDLE_NONE;
        if (++st->i < st->files) {
            st->ph = PH_CREATE_OPEN;
            small_name(name, st->i);
            rc = send_open(ctx, st, name, FS_O_WRITE | FS_O_CREAT | FS_O_EXCL);
        } else {
            fs_sync_t s = {++st->req};
            st->ph = PH_CREATE_SYNC;
            rc = fs_sync_send(ctx, st->fs, &s);
        }
        break;
    case PH_FSYNC_WRITE: {
        fs_fsync_t f = {++st->req};
        st->ph = PH_FSYNC_FSYNC;
        st->t_fsync0 = os_clock_now(ctx);
        rc = fs_fsync_send(ctx, st->file, &f);
        break;
    }
    case PH_FSYNC_FSYNC:
        st->fsync_ns[st->i] = os_clock_now(ctx) - st->t_fsync0;
        if (++st->i < st->fsyncs) {
            st->ph = PH_FSYNC_WRITE;
            rc = send_write(ctx, st, (uint64_t)st->i * FS_WRITE_MAX, FS_WRITE_MAX, false);
        } else {
            os_handle_close(ctx, st->file);
            st->file = OS_HANDLE_NONE;
            report(ctx, st);
        }
        break;
    default:
        fail(ctx, st, "unexpected reply", OS_EPROTO);
        return;
    }
    if (rc < 0)
        fail(ctx, st, "send", rc);
}

static void fsbench_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    fsbench_state_t *st = os_state(ctx);
    os_handle_t h = ev->handle;
    if (h == init_channel(ctx) && ev->kind == OS_EV_MESSAGE) {
        union {
            init_connected_t conn;
            init_reply_t reply;
        } m;
        if (init_connected_decode(ev, &m.conn) == 0 && st->ph == PH_CONNECT) {
            fs_mkdir_t *mk = &st->msg.mk;
            st->fs = m.conn.chan;
            memset(mk, 0, sizeof *mk);
            mk->req = ++st->req;
            mk->mode = 0755;
            strcpy(mk->path, "/fsbench");
            st->ph = PH_MKDIR;
            if (fs_mkdir_send(ctx, st->fs, mk) < 0)
                fail(ctx, st, "mkdir", OS_EIO);
        } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
            os_log(ctx, "failed: %s: %s", m.reply.req == REQ_FS ? "connect fs" : "shutdown",
                   os_strerror(m.reply.status));
            os_exit(ctx, 1);
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    if (st->ph == PH_DONE) {
        if (ev->kind == OS_EV_MESSAGE)
            iface_discard(ctx, ev);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED) {
        fail(ctx, st, "the fs server went away", OS_EPEER);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (h == st->fs)
        on_control(ctx, st, ev);
    else if (h == st->file)
        on_file(ctx, st, ev);
    else
        iface_discard(ctx, ev);
}

const os_program_t orrery_fsbench = {"fsbench", sizeof(fsbench_state_t), fsbench_start,
                                     fsbench_on_event};
