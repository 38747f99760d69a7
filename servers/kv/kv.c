/* kv.c — the replicated key-value store's task: its arg, init's connects, the log file on the fs
 * server (read back at start; writes, truncations and fsyncs one at a time) and the event
 * dispatch (docs/kv.md; manifest: reach=tcp,fs). Replication and clients: repl.c. */
#include "kv.h"

#include <image.h>
#include <iface/init_client.h>

#include <stdio.h>
#include <string.h>

enum {
    REQ_FS = 1,
    REQ_TCP = 2,
    TICK_NS = 100 * 1000 * 1000, /* the timer: peers' deadlines and reconnects */
};

uint32_t kv_majority(const kv_state_t *st)
{
    return (uint32_t)(st->args.npeers + 1) / 2 + 1;
}

/* ---- the log file ------------------------------------------------------------------------- */

/* Drop entries past len (a follower's entries that the leader's log replaces). */
void kv_truncate(kv_state_t *st, uint32_t len)
{
    if (len >= st->len)
        return;
    st->len = len;
    if (st->written > len) {
        st->written = len;
        st->trunc_needed = true;
    }
    if (st->synced > len)
        st->synced = len;
    if (st->op_low > len)
        st->op_low = len;
    if (st->matched > len)
        st->matched = len;
}

void kv_append(kv_state_t *st, const kv_entry_t *e)
{
    st->log[++st->len] = *e;
    kv_chain(st->log, st->len, st->len);
}

/* Write records first..first+count-1: the header (first 0), entries, or zeros (zero). */
static void send_write(os_ctx_t *ctx, kv_state_t *st, uint32_t first, uint32_t count, bool zero)
{
    fs_write_t *w = &st->m.write;
    w->req = ++st->req;
    w->off = (uint64_t)first * KV_REC;
    w->data_len = count * KV_REC;
    if (zero) {
        memset(w->data, 0, w->data_len);
    } else if (first == 0) {
        kv_entry_t hdr = {.epoch = st->epoch};
        kv_rec_encode(&hdr, w->data);
    } else {
        for (uint32_t i = 0; i < count; i++)
            kv_rec_encode(&st->log[first + i], w->data + i * KV_REC);
    }
    fs_write_send(ctx, st->file, w);
}

/*
 * Start the next file request, if none is out: zeros to give the file its whole size (once:
 * from then on every write lands in blocks the file has, and a power cut never catches the fs
 * server allocating for it), a zeroed record where a shorter log now ends, the header (the
 * epoch), entries not yet written, then an fsync of all that.
 */
void kv_file_pump(os_ctx_t *ctx, kv_state_t *st)
{
    if (st->op != KF_NONE || st->file == OS_HANDLE_NONE || st->phase == KP_LOAD)
        return;
    st->op_low = UINT32_MAX;
    if (st->prealloc) {
        uint32_t n = KV_LOG_MAX + 1 - st->prealloc;
        if (n > KV_WRITE_RECS)
            n = KV_WRITE_RECS;
        st->op = KF_PREALLOC;
        st->op_to = st->prealloc + n;
        send_write(ctx, st, st->prealloc, n, true);
    } else if (st->trunc_needed) {
        st->op = KF_TRUNC;
        st->op_to = st->written;
        send_write(ctx, st, st->written + 1, 1, true);
    } else if (st->header_dirty) {
        st->op = KF_HEADER;
        st->op_epoch = st->epoch;
        st->header_dirty = false;
        send_write(ctx, st, 0, 1, false);
    } else if (st->written < st->len) {
        uint32_t n = st->len - st->written;
        if (n > KV_WRITE_RECS)
            n = KV_WRITE_RECS;
        st->op = KF_WRITE;
        st->op_to = st->written + n;
        send_write(ctx, st, st->written + 1, n, false);
    } else if (st->synced < st->written || st->header_synced != st->header_written ||
               st->prealloc_unsynced) {
        st->op = KF_FSYNC;
        st->op_to = st->written;
        st->op_epoch = st->header_written;
        st->prealloc_unsynced = false;
        fs_fsync_t m = {.req = ++st->req};
        fs_fsync_send(ctx, st->file, &m);
    }
}

static void read_more(os_ctx_t *ctx, kv_state_t *st)
{
    st->op = KF_READ;
    fs_read_t m = {
        .req = ++st->req, .off = (uint64_t)st->load_pos * KV_REC, .len = KV_READ_RECS * KV_REC};
    fs_read_send(ctx, st->file, &m);
}

/* Read the log file back from the start (at boot, and after a failed fetch). */
void kv_reload(os_ctx_t *ctx, kv_state_t *st)
{
    st->phase = KP_LOAD;
    memset(&st->ld, 0, sizeof st->ld);
    st->load_pos = 0;
    st->len = 0;
    if (st->op == KF_NONE)
        read_more(ctx, st);
    /* else: the answer to the op that is out starts the reading (on_file) */
}

static void loaded(os_ctx_t *ctx, kv_state_t *st, uint64_t file_size)
{
    st->len = st->ld.len;
    st->epoch = st->ld.epoch;
    st->written = st->len;
    /* what we read may be only in the server's cache (we restarted, the node did not):
     * nothing counts as durable before our own fsync */
    st->synced = 0;
    st->header_written = st->ld.header ? st->epoch : 0;
    st->header_synced = 0;
    st->header_dirty = !st->ld.header;
    st->trunc_needed = false;
    st->prealloc = 0;
    if (file_size < (uint64_t)(KV_LOG_MAX + 1) * KV_REC) {
        uint32_t from = (uint32_t)(file_size / KV_REC);
        st->prealloc = from > st->len + 1 ? from : st->len + 1;
    }
    os_log(ctx, "%s: log %s: %u entries, epoch %u", st->args.leader ? "leader" : "follower",
           st->args.log, (unsigned)st->len, (unsigned)st->epoch);
    kv_loaded(ctx, st);
    kv_file_pump(ctx, st);
}

static void on_file(os_ctx_t *ctx, kv_state_t *st, const os_event_t *ev)
{
    union {
        fs_reply_t reply;
        fs_data_t data;
        fs_error_t error;
    } m;
    kv_fsop_t op = st->op;
    st->op = KF_NONE;
    if (op == KF_READ && fs_data_decode(ev, &m.data) == 0) {
        if (st->phase != KP_LOAD) { /* a reload was asked while this was out */
            kv_reload(ctx, st);
            return;
        }
        kv_load_records(&st->ld, st->log, st->load_pos, m.data.data, m.data.data_len);
        st->load_pos += m.data.data_len / KV_REC;
        if (!st->ld.end) {
            read_more(ctx, st);
            return;
        }
        loaded(ctx, st, st->file_size);
        return;
    }
    if (fs_reply_decode(ev, &m.reply) == 0) {
        if (m.reply.status < 0) {
            os_log(ctx, "log %s: %s failed: %s; exiting", st->args.log,
                   op == KF_FSYNC  ? "fsync"
                   : op == KF_READ ? "read"
                                   : "write",
                   os_strerror(m.reply.status));
            os_exit(ctx, 1);
        }
        uint32_t low = st->op_low;
        switch (op) {
        case KF_PREALLOC:
            st->prealloc = st->op_to > KV_LOG_MAX ? 0 : st->op_to;
            st->prealloc_unsynced = true;
            break;
        case KF_TRUNC:
            if (st->written == st->op_to)
                st->trunc_needed = false;
            break;
        case KF_HEADER:
            st->header_written = st->op_epoch;
            break;
        case KF_WRITE:
            if (low == UINT32_MAX && st->written < st->op_to)
                st->written = st->op_to;
            break;
        case KF_FSYNC:
            st->synced = st->op_to < low ? st->op_to : low;
            if (st->synced > st->written)
                st->synced = st->written;
            st->header_synced = st->op_epoch;
            break;
        default:
            break;
        }
        if (st->phase == KP_LOAD) {
            kv_reload(ctx, st);
            return;
        }
        kv_durable(ctx, st);
        kv_file_pump(ctx, st);
        return;
    }
    if (fs_error_decode(ev, &m.error) == 0) {
        os_log(ctx, "the fs server refused message %u: %s; exiting", (unsigned)m.error.type,
               os_strerror(m.error.status));
        os_exit(ctx, 1);
    }
    iface_discard(ctx, ev);
}

static void on_fs(os_ctx_t *ctx, kv_state_t *st, const os_event_t *ev)
{
    union {
        fs_opened_t opened;
        fs_reply_t reply;
    } m;
    if (fs_opened_decode(ev, &m.opened) == 0) {
        st->file = m.opened.chan;
        st->file_size = m.opened.size;
        kv_reload(ctx, st);
    } else if (fs_reply_decode(ev, &m.reply) == 0) {
        os_log(ctx, "cannot open %s: %s; exiting", st->args.log, os_strerror(m.reply.status));
        os_exit(ctx, 1);
    } else {
        iface_discard(ctx, ev);
    }
}

/* ---- the task ----------------------------------------------------------------------------- */

static void kv_start(os_ctx_t *ctx)
{
    kv_state_t *st = os_state(ctx);
    st->fs = st->tcp = st->file = st->listener = st->timer = OS_HANDLE_NONE;
    st->leader_ci = -1;
    st->fetch_peer = -1;
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    char why[128];
    if (kv_parse_args(len ? arg : "", len, &st->args, why) < 0) {
        os_log(ctx, "bad arg: %s", why);
        os_exit(ctx, 2);
    }
    for (size_t i = 0; i < KV_CLIENTS_MAX; i++)
        lconn_init(&st->clients[i].c);
    for (size_t i = 0; i < st->args.npeers; i++) {
        lconn_init(&st->peers[i].c);
        st->peers[i].addr = st->args.peers[i];
        st->peers[i].backoff_ms = 100;
    }
    if (os_timer_create(ctx, &st->timer) < 0) {
        os_log(ctx, "no timer; exiting");
        os_exit(ctx, 1);
    }
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + TICK_NS);
    init_connect_iface(ctx, REQ_FS, &fs_iface);
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
}

static void open_log(os_ctx_t *ctx, kv_state_t *st)
{
    fs_open_t *o = &st->m.open;
    memset(o, 0, sizeof *o);
    *o = (fs_open_t){.req = ++st->req, .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT, .mode = 0644};
    snprintf(o->path, sizeof o->path, "%s", st->args.log);
    fs_open_send(ctx, st->fs, o);
}

static void on_init(os_ctx_t *ctx, kv_state_t *st, const os_event_t *ev)
{
    union {
        init_connected_t conn;
        init_reply_t reply;
    } m;
    if (init_connected_decode(ev, &m.conn) == 0) {
        if (m.conn.req == REQ_FS)
            st->fs = m.conn.chan;
        else
            st->tcp = m.conn.chan;
        if (st->fs != OS_HANDLE_NONE && st->tcp != OS_HANDLE_NONE)
            open_log(ctx, st); /* the log first: listening waits for it */
    } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
        os_log(ctx, "connect %s: %s; exiting", m.reply.req == REQ_FS ? "fs" : "tcp",
               os_strerror(m.reply.status));
        os_exit(ctx, 1);
    } else {
        iface_discard(ctx, ev);
    }
}

static void kv_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    kv_state_t *st = os_state(ctx);
    os_handle_t h = ev->handle;
    if (ev->kind == OS_EV_TIMER && h == st->timer) {
        os_timer_set(ctx, st->timer, os_clock_now(ctx) + TICK_NS);
        kv_tick(ctx, st);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED && (h == init_channel(ctx) || h == st->fs || h == st->tcp ||
                                          h == st->file || h == st->listener)) {
        os_log(ctx, "the %s server went away; exiting",
               h == st->fs || h == st->file ? "fs"
               : h == init_channel(ctx)     ? "init"
                                            : "tcpip");
        os_exit(ctx, 1);
    }
    if (ev->kind != OS_EV_MESSAGE && ev->kind != OS_EV_WRITABLE && ev->kind != OS_EV_PEER_CLOSED)
        return;
    if (h == init_channel(ctx)) {
        on_init(ctx, st, ev);
    } else if (h == st->fs) {
        on_fs(ctx, st, ev);
    } else if (h == st->file) {
        on_file(ctx, st, ev);
    } else if (h == st->tcp) {
        kv_tcp_control(ctx, st, ev);
    } else if (h == st->listener) {
        tcp_accepted_t m;
        if (tcp_accepted_decode(ev, &m) == 0)
            kv_accepted(ctx, st, m.chan);
        else
            iface_discard(ctx, ev);
    } else if (!kv_conn_event(ctx, st, ev) && ev->kind == OS_EV_MESSAGE) {
        iface_discard(ctx, ev);
    }
}

const os_program_t orrery_kv = {"kv", sizeof(kv_state_t), kv_start, kv_on_event};
