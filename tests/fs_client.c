/* fs_client.c — scripted clients of the fs interface for test_fs_server.c: each runs its steps
 * one at a time, checks every answer and records what it saw. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <iface/init_client.h>

#include "fs_client.h"

script_t scripts[SCRIPTS];
atomic_int flags[FLAGS];

enum { TICK = 1000000 }; /* polling a flag: 1 ms */

typedef struct client {
    os_handle_t fs, timer;
    os_handle_t slot[SLOTS];
    script_t *sc;
    int at;       /* the step running */
    uint32_t req; /* its request id */
    uint64_t off; /* READALL, WRITEALL: how far; READDIR: the cookie */
    bool waiting; /* an answer is due */
    bool finished;
    bool slept; /* OP_SLEEP armed its timer */
    union {     /* answers decoded */
        fs_opened_t opened;
        fs_reply_t reply;
        fs_data_t data;
        fs_attr_t attr;
        fs_dirents_t dirents;
        fs_error_t error;
        fs_fsinfo_t info;
    } in;
    union { /* requests too big for the stack of a handler */
        fs_write_t write;
        fs_rename_t rename;
        fs_symlink_t symlink;
    } out;
} client_t;

static void failf(client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(client_t *c, const char *fmt, ...)
{
    if (c->sc->fail[0])
        return;
    int n = snprintf(c->sc->fail, sizeof c->sc->fail, "%s step %d: ", c->sc->program, c->at);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->sc->fail + n, sizeof c->sc->fail - (size_t)n, fmt, ap);
    va_end(ap);
}

static const step_t *cur(client_t *c)
{
    return &c->sc->steps[c->at];
}

static void next(os_ctx_t *ctx, client_t *c);

static void advance(os_ctx_t *ctx, client_t *c)
{
    c->waiting = false;
    c->at++;
    c->off = 0;
    next(ctx, c);
}

/* Check a status against the step's expectation, then move on. */
static void status_is(os_ctx_t *ctx, client_t *c, int status)
{
    const step_t *s = cur(c);
    c->sc->seen[c->at].status = status;
    if (s->expect == ANY ? false : s->expect == ANYERR ? status >= 0 : status != s->expect)
        failf(c, "status %d (%s), expected %d", status, os_errname(status), s->expect);
    advance(ctx, c);
}

static os_handle_t file(client_t *c)
{
    int k = cur(c)->slot;
    return k >= 0 && k < SLOTS ? c->slot[k] : OS_HANDLE_NONE;
}

static void send_read(os_ctx_t *ctx, client_t *c, uint64_t off, uint32_t len)
{
    fs_read_t m = {.req = ++c->req, .off = off, .len = len};
    fs_read_send(ctx, file(c), &m);
}

static void send_write_piece(os_ctx_t *ctx, client_t *c)
{
    const step_t *s = cur(c);
    fs_write_t *w = &c->out.write;
    size_t n = s->data_len - c->off < FS_WRITE_MAX ? s->data_len - c->off : FS_WRITE_MAX;
    memset(w, 0, sizeof *w);
    w->req = ++c->req;
    w->off = s->off + c->off;
    memcpy(w->data, (const uint8_t *)s->data + c->off, n);
    w->data_len = (uint32_t)n;
    fs_write_send(ctx, file(c), w);
}

/* Start the step at c->at. */
static void next(os_ctx_t *ctx, client_t *c)
{
    if (c->sc->fail[0] && cur(c)->op != OP_SHUTDOWN && cur(c)->op != OP_END) {
        /* a step failed: skip to the end, but still shut down so the test sees it at once */
        while (cur(c)->op != OP_SHUTDOWN && cur(c)->op != OP_END)
            c->at++;
    }
    const step_t *s = cur(c);
    atomic_store(&c->sc->at, c->at);
    c->waiting = true;
    uint32_t req = ++c->req;
    bool on_file = s->op == OP_READ || s->op == OP_BURST || s->op == OP_READALL ||
                   s->op == OP_WRITE || s->op == OP_WRITEALL || s->op == OP_STAT ||
                   s->op == OP_READDIR || s->op == OP_TRUNC || s->op == OP_FSYNC ||
                   (s->op == OP_GARBAGE && s->slot >= 0);
    if (on_file && file(c) == OS_HANDLE_NONE) {
        status_is(ctx, c, OS_EBADH); /* its open failed (corrupt images) */
        return;
    }
    switch (s->op) {
    case OP_END:
        c->waiting = false;
        c->finished = true;
        atomic_store(&c->sc->done, 1);
        return;
    case OP_OPEN: {
        fs_open_t m = {.req = req, .flags = s->flags, .mode = s->mode};
        snprintf(m.path, sizeof m.path, "%s", s->path);
        fs_open_send(ctx, c->fs, &m);
        return;
    }
    case OP_CLOSE:
        os_handle_close(ctx, c->slot[s->slot]);
        c->slot[s->slot] = OS_HANDLE_NONE;
        advance(ctx, c);
        return;
    case OP_READ:
        send_read(ctx, c, s->off, (uint32_t)s->len);
        return;
    case OP_READALL:
        send_read(ctx, c, 0, FS_DATA_MAX);
        return;
    case OP_WRITE: {
        fs_write_t *w = &c->out.write;
        memset(w, 0, sizeof *w);
        w->req = req;
        w->off = s->off;
        memcpy(w->data, s->data, s->data_len);
        w->data_len = (uint32_t)s->data_len;
        fs_write_send(ctx, file(c), w);
        return;
    }
    case OP_WRITEALL:
        send_write_piece(ctx, c);
        return;
    case OP_STAT: {
        fs_stat_t m = {req};
        fs_stat_send(ctx, file(c), &m);
        return;
    }
    case OP_READDIR: {
        fs_readdir_t m = {req, s->off};
        fs_readdir_send(ctx, file(c), &m);
        return;
    }
    case OP_TRUNC: {
        fs_truncate_t m = {req, s->len};
        fs_truncate_send(ctx, file(c), &m);
        return;
    }
    case OP_FSYNC: {
        fs_fsync_t m = {req};
        fs_fsync_send(ctx, file(c), &m);
        return;
    }
    case OP_SYNC: {
        fs_sync_t m = {req};
        fs_sync_send(ctx, c->fs, &m);
        return;
    }
    case OP_WAITFREE:
    case OP_STATFS: {
        fs_statfs_t m = {req};
        fs_statfs_send(ctx, c->fs, &m);
        return;
    }
    case OP_MKDIR: {
        fs_mkdir_t m = {.req = req, .mode = s->mode};
        snprintf(m.path, sizeof m.path, "%s", s->path);
        fs_mkdir_send(ctx, c->fs, &m);
        return;
    }
    case OP_RMDIR: {
        fs_rmdir_t m = {.req = req};
        snprintf(m.path, sizeof m.path, "%s", s->path);
        fs_rmdir_send(ctx, c->fs, &m);
        return;
    }
    case OP_UNLINK: {
        fs_unlink_t m = {.req = req};
        snprintf(m.path, sizeof m.path, "%s", s->path);
        fs_unlink_send(ctx, c->fs, &m);
        return;
    }
    case OP_RENAME: {
        fs_rename_t *m = &c->out.rename;
        memset(m, 0, sizeof *m);
        m->req = req;
        snprintf(m->from, sizeof m->from, "%s", s->path);
        snprintf(m->to, sizeof m->to, "%s", s->path2);
        fs_rename_send(ctx, c->fs, m);
        return;
    }
    case OP_SYMLINK: {
        fs_symlink_t *m = &c->out.symlink;
        memset(m, 0, sizeof *m);
        m->req = req;
        snprintf(m->target, sizeof m->target, "%s", s->path2);
        snprintf(m->path, sizeof m->path, "%s", s->path);
        fs_symlink_send(ctx, c->fs, m);
        return;
    }
    case OP_GARBAGE: {
        uint8_t junk[64];
        memset(junk, 0x5a, sizeof junk);
        os_send(ctx, s->slot < 0 ? c->fs : file(c), s->flags, junk,
                s->len < sizeof junk ? (size_t)s->len : sizeof junk, NULL, 0);
        return;
    }
    case OP_SETFLAG:
        atomic_store(&flags[s->flag], 1);
        advance(ctx, c);
        return;
    case OP_WAITFLAG:
        if (atomic_load(&flags[s->flag]))
            advance(ctx, c);
        else
            os_timer_set(ctx, c->timer, os_clock_now(ctx) + TICK);
        return;
    case OP_BURST:
        /* more than the server queues: it stops reading us until it catches up */
        for (uint64_t k = 0; k < s->len; k++)
            send_read(ctx, c, s->off, (uint32_t)s->data_len);
        return;
    case OP_SLEEP:
        if (c->slept) {
            c->slept = false;
            advance(ctx, c);
        } else {
            c->slept = true;
            os_timer_set(ctx, c->timer, os_clock_now(ctx) + s->len);
        }
        return;
    case OP_EXIT:
        atomic_store(&c->sc->done, 1);
        os_exit(ctx, 0);
    case OP_SHUTDOWN: {
        atomic_store(&c->sc->done, 1);
        init_shutdown_t q = {req, 0};
        init_shutdown_send(ctx, init_channel(ctx), &q);
        c->finished = true;
        return;
    }
    }
}

static void on_data(os_ctx_t *ctx, client_t *c, const fs_data_t *d)
{
    const step_t *s = cur(c);
    if (s->op == OP_BURST) {
        if (d->data_len != s->data_len)
            failf(c, "burst read gave %u bytes", d->data_len);
        if (++c->off == s->len)
            status_is(ctx, c, 0);
        return;
    }
    if (s->op == OP_READ) {
        if (s->expect == ANY) {
            status_is(ctx, c, 0);
            return;
        }
        if (s->expect < 0 || d->data_len != s->data_len ||
            memcmp(d->data, s->data, s->data_len) != 0)
            failf(c, "read %u bytes, expected %zu (or they differ)", d->data_len, s->data_len);
        status_is(ctx, c, 0);
        return;
    }
    if (s->op != OP_READALL) {
        failf(c, "a data answer to op %d", s->op);
        advance(ctx, c);
        return;
    }
    if (s->expect == ANY) {
        c->off += d->data_len;
        if (d->data_len == 0 || c->off > (64u << 20))
            status_is(ctx, c, 0);
        else
            send_read(ctx, c, c->off, FS_DATA_MAX);
        return;
    }
    if (c->off + d->data_len > s->data_len ||
        memcmp(d->data, (const uint8_t *)s->data + c->off, d->data_len) != 0) {
        failf(c, "content differs at %llu (+%u)", (unsigned long long)c->off, d->data_len);
        advance(ctx, c);
        return;
    }
    c->off += d->data_len;
    if (d->data_len == 0) {
        if (c->off != s->data_len)
            failf(c, "file ended at %llu, expected %zu", (unsigned long long)c->off, s->data_len);
        status_is(ctx, c, 0);
        return;
    }
    send_read(ctx, c, c->off, FS_DATA_MAX);
}

static void on_dirents(os_ctx_t *ctx, client_t *c, const fs_dirents_t *d)
{
    script_t *sc = c->sc;
    seen_t *sn = &sc->seen[c->at];
    if (d->count == 0) {
        status_is(ctx, c, 0);
        return;
    }
    if (sn->pages++ == 0 && !cur(c)->off) {
        sc->names_len = 0; /* names of the last listing that gave any */
        sc->names[0] = 0;
    }
    if (cur(c)->off) {
        status_is(ctx, c, 0); /* one page from a given cookie */
        return;
    }
    const uint8_t *p = d->data, *end = d->data + d->data_len;
    for (uint32_t k = 0; k < d->count; k++) {
        if (p + 6 > end || p + 6 + p[5] > end) {
            failf(c, "dirents record %u overruns the page", k);
            advance(ctx, c);
            return;
        }
        if (sc->names_len + p[5] + 2 < NAMES_MAX) {
            memcpy(sc->names + sc->names_len, p + 6, p[5]);
            sc->names_len += p[5];
            sc->names[sc->names_len++] = '\n';
            sc->names[sc->names_len] = 0;
        }
        sn->nnames++;
        p += 6 + p[5];
    }
    fs_readdir_t m = {++c->req, d->next};
    fs_readdir_send(ctx, file(c), &m);
}

static void on_fs(os_ctx_t *ctx, client_t *c, const os_event_t *ev)
{
    __typeof__(c->in) *m = &c->in;
    const step_t *s = cur(c);
    if (!c->waiting) {
        iface_discard(ctx, ev);
        failf(c, "an answer (type %u) nobody asked for", ev->type);
        return;
    }
    switch (ev->type) {
    case fs_msg_opened:
        if (fs_opened_decode(ev, &m->opened) < 0)
            break;
        if (s->op != OP_OPEN || s->slot < 0 || s->slot >= SLOTS) {
            os_handle_close(ctx, m->opened.chan);
            failf(c, "opened for op %d", s->op);
            advance(ctx, c);
            return;
        }
        c->slot[s->slot] = m->opened.chan;
        c->sc->seen[c->at].opened_size = m->opened.size;
        c->sc->seen[c->at].opened_type = m->opened.type;
        if (s->len && m->opened.size != s->len)
            failf(c, "opened size %llu, expected %llu", (unsigned long long)m->opened.size,
                  (unsigned long long)s->len);
        status_is(ctx, c, 0);
        return;
    case fs_msg_reply:
        if (fs_reply_decode(ev, &m->reply) < 0)
            break;
        if (s->op == OP_WRITEALL) {
            size_t n = s->data_len - c->off < FS_WRITE_MAX ? s->data_len - c->off : FS_WRITE_MAX;
            if (m->reply.status != (int)n) {
                status_is(ctx, c, m->reply.status);
                return;
            }
            c->off += n;
            if (c->off < s->data_len)
                send_write_piece(ctx, c);
            else
                status_is(ctx, c, (int)s->expect);
            return;
        }
        if (s->op == OP_OPEN && s->flag == 1 && m->reply.status == OS_ENOSPC) {
            os_timer_set(ctx, c->timer, os_clock_now(ctx) + TICK); /* a dead client's files */
            return;
        }
        status_is(ctx, c, m->reply.status);
        return;
    case fs_msg_data:
        if (fs_data_decode(ev, &m->data) < 0)
            break;
        on_data(ctx, c, &m->data);
        return;
    case fs_msg_attr:
        if (fs_attr_decode(ev, &m->attr) < 0)
            break;
        c->sc->seen[c->at].attr = m->attr;
        status_is(ctx, c, 0);
        return;
    case fs_msg_dirents:
        if (fs_dirents_decode(ev, &m->dirents) < 0)
            break;
        on_dirents(ctx, c, &m->dirents);
        return;
    case fs_msg_fsinfo:
        if (fs_fsinfo_decode(ev, &m->info) < 0)
            break;
        c->sc->seen[c->at].info = m->info;
        if (s->op == OP_WAITFREE && m->info.free_inodes != c->sc->seen[s->flag].info.free_inodes) {
            os_timer_set(ctx, c->timer, os_clock_now(ctx) + TICK); /* ask again */
            return;
        }
        status_is(ctx, c, 0);
        return;
    case fs_msg_error:
        if (fs_error_decode(ev, &m->error) < 0)
            break;
        if (s->op == OP_GARBAGE && m->error.type != s->flags)
            failf(c, "error for type %u, sent %u", m->error.type, s->flags);
        status_is(ctx, c, m->error.status);
        return;
    default:
        break;
    }
    iface_discard(ctx, ev);
    failf(c, "a malformed answer (type %u)", ev->type);
    advance(ctx, c);
}

static void fsc_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    for (int i = 0; i < SCRIPTS; i++)
        if (scripts[i].program && strcmp(scripts[i].program, os_task_name(ctx)) == 0)
            c->sc = &scripts[i];
    OS_ASSERT(ctx, c->sc != NULL);
    os_timer_create(ctx, &c->timer);
    init_connect_iface(ctx, 1, &fs_iface);
}

static void fsc_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    if (ev->kind == OS_EV_TIMER) {
        next(ctx, c); /* a flag being waited for */
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (!c->finished) {
            failf(c, "the fs server closed a channel");
            atomic_store(&c->sc->done, 1);
        }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        init_connected_t cn;
        init_reply_t r;
        if (init_connected_decode(ev, &cn) == 0) {
            c->fs = cn.chan;
            next(ctx, c);
        } else if (init_reply_decode(ev, &r) == 0 && r.status < 0) {
            failf(c, "init answered %s", os_errname(r.status));
            atomic_store(&c->sc->done, 1);
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    on_fs(ctx, c, ev);
}

#define FSC(n)                                                                                     \
    {                                                                                              \
        "fsc" #n, sizeof(client_t), fsc_start, fsc_event                                           \
    }
const os_program_t fsc_programs[SCRIPTS] = {FSC(0), FSC(1), FSC(2), FSC(3),
                                            FSC(4), FSC(5), FSC(6), FSC(7)};
