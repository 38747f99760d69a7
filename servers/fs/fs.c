/* fs.c — the fs server: mounts the ext2 volume on blk0 and serves the fs interface; the task,
 * its clients and open files, the request queue and the write-back timer. */
#include <stdio.h>
#include <string.h>

#include <image.h>
#include <iface/init_client.h>

#include "fs_priv.h"

enum { REQ_REGISTER = 1 };

/* ---- channels ------------------------------------------------------------------------ */

static int client_of(fs_state_t *st, os_handle_t h)
{
    for (int i = 0; i < FS_CLIENTS_MAX; i++)
        if (st->clients[i].chan != OS_HANDLE_NONE && st->clients[i].chan == h)
            return i;
    return -1;
}

static int file_of(fs_state_t *st, os_handle_t h)
{
    for (int i = 0; i < FS_FILES_MAX; i++)
        if (st->files[i].chan != OS_HANDLE_NONE && st->files[i].chan == h)
            return i;
    return -1;
}

/* Hold (or release) every channel a request can come from: the queue is full (or no more). */
static void hold_all(os_ctx_t *ctx, fs_state_t *st, bool hold)
{
    st->held = hold;
    for (int i = 0; i < FS_CLIENTS_MAX; i++)
        if (st->clients[i].chan != OS_HANDLE_NONE)
            os_handle_hold(ctx, st->clients[i].chan, hold);
    for (int i = 0; i < FS_FILES_MAX; i++)
        if (st->files[i].chan != OS_HANDLE_NONE)
            os_handle_hold(ctx, st->files[i].chan, hold);
}

void fs_hold_new(os_ctx_t *ctx, fs_state_t *st, os_handle_t h)
{
    if (st->held)
        os_handle_hold(ctx, h, true);
}

static void add_client(os_ctx_t *ctx, fs_state_t *st, const init_new_client_t *nc)
{
    for (int i = 0; i < FS_CLIENTS_MAX; i++) {
        fs_client_t *c = &st->clients[i];
        if (c->chan == OS_HANDLE_NONE) {
            c->chan = nc->chan;
            c->ro = strcmp(nc->name, "fs:ro") == 0;
            c->task = nc->client;
            fs_hold_new(ctx, st, c->chan);
            return;
        }
    }
    os_log(ctx, "more than %d clients; refusing task %u", FS_CLIENTS_MAX, nc->client);
    os_handle_close(ctx, nc->chan);
}

/* A file channel closed: forget it, its queued requests, and free an unlinked inode. */
static void close_file(os_ctx_t *ctx, fs_state_t *st, int f)
{
    fs_file_t *file = &st->files[f];
    os_handle_close(ctx, file->chan);
    uint32_t ino = file->ino;
    memset(file, 0, sizeof *file);
    file->chan = OS_HANDLE_NONE;
    for (uint32_t k = 0; k < st->qcount; k++) {
        fs_req_t *r = &st->queue[(st->qhead + k) % FS_QUEUE_MAX];
        if (r->file == f) {
            /* a change still happens (the client sent it); nobody hears the answer */
            r->file = -1;
            r->chan = OS_HANDLE_NONE;
        }
    }
    fs_orphan_closed(st, ino);
}

/* ---- the queue ----------------------------------------------------------------------- */

static fs_req_t *enqueue(os_ctx_t *ctx, fs_state_t *st)
{
    if (st->qcount == FS_QUEUE_MAX)
        return NULL;
    fs_req_t *r = &st->queue[(st->qhead + st->qcount) % FS_QUEUE_MAX];
    memset(r, 0, offsetof(fs_req_t, m));
    r->file = r->client = -1;
    r->chan = OS_HANDLE_NONE;
    st->qcount++;
    if (st->qcount == FS_QUEUE_MAX && !st->held) {
        if (!st->held_once)
            os_log(ctx,
                   "%d requests wait: no channel is read until they are answered (logged "
                   "once)",
                   FS_QUEUE_MAX);
        st->held_once = true;
        hold_all(ctx, st, true);
    }
    return r;
}

static void dequeue(os_ctx_t *ctx, fs_state_t *st)
{
    st->qhead = (st->qhead + 1) % FS_QUEUE_MAX;
    st->qcount--;
    st->wait = FS_WAIT_NONE;
    fs_request_done(st);
    if (st->held && st->qcount < FS_QUEUE_MAX)
        hold_all(ctx, st, false);
}

/* Requests the server makes itself: free unlinked inodes whose last channel closed. */
static void own_requests(os_ctx_t *ctx, fs_state_t *st)
{
    uint32_t ino;
    while (st->qcount < FS_QUEUE_MAX && (ino = fs_orphan_take(st)) != 0) {
        fs_req_t *r = enqueue(ctx, st);
        r->type = FS_REQ_RELEASE;
        r->ino = ino;
    }
}

void fs_drive(os_ctx_t *ctx, fs_state_t *st)
{
    if (st->driving) {
        st->redrive = true;
        return;
    }
    st->driving = true;
    do {
        st->redrive = false;
        own_requests(ctx, st);
        while (st->qcount > 0) {
            if (st->wait == FS_WAIT_FETCH && st->fetching > 0)
                break;
            if (st->wait == FS_WAIT_WB && st->wb_phase != 0)
                break;
            st->wait = FS_WAIT_NONE;
            fs_req_t *r = &st->queue[st->qhead];
            if (r->type == 0) {
                dequeue(ctx, st);
                continue;
            }
            st->fs.now =
                st->base_time + (uint32_t)((os_clock_now(ctx) - st->start_ns) / 1000000000u);
            int rc = fs_run(ctx, st, r);
            if (rc == 0) {
                dequeue(ctx, st);
                own_requests(ctx, st);
                continue;
            }
            if (rc == FS_AGAIN) {
                st->wait = FS_WAIT_WB;
                break;
            }
            /* OS_EBUSY: blocks to fetch, or slots to free */
            if (st->too_big || ++r->restarts > FS_RESTARTS_MAX) {
                os_log(ctx, "request %u: %s; failing it with EIO", r->type,
                       st->too_big ? "needs more blocks than the cache holds"
                                   : "no progress after many fetches");
                fs_answer(ctx, st, r, OS_EIO);
                dequeue(ctx, st);
                continue;
            }
            if (st->fetching > 0) {
                st->wait = FS_WAIT_FETCH;
            } else if (st->need_slots) {
                st->wait = FS_WAIT_WB;
                fs_writeback_start(ctx, st);
            } else {
                os_log(ctx, "request %u: busy with nothing to wait for; failing it", r->type);
                fs_answer(ctx, st, r, OS_EIO);
                dequeue(ctx, st);
                continue;
            }
            fs_pump(ctx, st);
            if ((st->wait == FS_WAIT_FETCH && st->fetching == 0) ||
                (st->wait == FS_WAIT_WB && st->wb_phase == 0))
                continue; /* refused at once, or nothing to write: no completion will come */
            break;
        }
        /* short of clean slots: write back before a miss has to wait for it */
        if (st->wb_phase == 0 && st->rw && fs_clean_slots(st) < FS_CACHE_SLOTS / 4 &&
            fs_dirty_count(st) > 0)
            fs_writeback_start(ctx, st);
    } while (st->redrive);
    st->driving = false;
}

/* ---- write-back timing --------------------------------------------------------------- */

void fs_changed(os_ctx_t *ctx, fs_state_t *st)
{
    uint64_t now = os_clock_now(ctx);
    if (!st->dirty_since) {
        st->dirty_since = true;
        st->first_dirty_ns = now;
    }
    uint64_t at = now + FS_IDLE_NS, cap = st->first_dirty_ns + FS_PERIOD_NS;
    if (at > cap)
        at = cap;
    if (st->timer != OS_HANDLE_NONE && os_timer_set(ctx, st->timer, at) == 0)
        st->timer_armed = true;
}

static void on_timer(os_ctx_t *ctx, fs_state_t *st)
{
    st->timer_armed = false;
    if (st->wb_phase == 0 && fs_dirty_count(st) > 0)
        fs_writeback_start(ctx, st);
    else if (fs_dirty_count(st) > 0)
        fs_changed(ctx, st);
}

void fs_write_failed(os_ctx_t *ctx, fs_state_t *st, uint64_t sector, int status)
{
    st->wb_status = OS_EIO;
    if (st->failed_write)
        return;
    st->failed_write = true;
    st->rw = false;
    snprintf(st->note, sizeof st->note,
             "read-only: a device write at sector %llu failed (%s); changes since the last "
             "sync are lost",
             (unsigned long long)sector, os_errname(status));
    os_log(ctx, "blk0: write at sector %llu failed (%s): the volume is read-only from now on",
           (unsigned long long)sector, os_errname(status));
}

/* ---- the task ------------------------------------------------------------------------ */

static void mount_with(os_ctx_t *ctx, fs_state_t *st, const hal_blk_info_t *info);

/* How often init has restarted us in this boot (0: the boot's first fs). */
static uint32_t own_restarts(os_ctx_t *ctx)
{
    os_task_info_t tasks[32]; /* ids in order: init's first programs come first */
    int n = os_task_list(ctx, tasks, 32);
    for (int i = 0; i < n && i < 32; i++) {
        if (tasks[i].id == os_task_id(ctx))
            return tasks[i].restarts;
    }
    return 0;
}

static void fs_start(os_ctx_t *ctx)
{
    fs_state_t *st = os_state(ctx);
    st->dev = st->timer = OS_HANDLE_NONE;
    for (int i = 0; i < FS_CLIENTS_MAX; i++)
        st->clients[i].chan = OS_HANDLE_NONE;
    for (int i = 0; i < FS_FILES_MAX; i++)
        st->files[i].chan = OS_HANDLE_NONE;
    if (os_device_open(ctx, "blk0", &st->dev) < 0) {
        os_log(ctx, "no blk0 device");
        os_exit(ctx, 0);
    }
    if (os_timer_create(ctx, &st->timer) < 0)
        st->timer = OS_HANDLE_NONE; /* then only syncs and a full cache write back */
    st->start_ns = os_clock_now(ctx);
    os_random(ctx, &st->epoch, sizeof st->epoch);
    /* The mount waits for HAL_BLK_INFO, which blk0 posts at start, to the boot's first fs.
     * A restarted fs asks for it again. */
    if (own_restarts(ctx) > 0 && os_device_write(ctx, st->dev, HAL_BLK_INFO, NULL, 0) != 0)
        os_log(ctx, "blk0 refused to repeat its size; not mounted");
}

static void on_device(os_ctx_t *ctx, fs_state_t *st, const os_event_t *ev)
{
    if (ev->type != HAL_BLK_INFO) {
        fs_blk_done(ctx, st, ev->type, ev->data, ev->len);
        return;
    }
    hal_blk_info_t info;
    if (ev->len < sizeof info || st->dev_size != 0)
        return;
    memcpy(&info, ev->data, sizeof info);
    mount_with(ctx, st, &info);
}

static void mount_with(os_ctx_t *ctx, fs_state_t *st, const hal_blk_info_t *i)
{
    hal_blk_info_t info = *i;
    st->dev_size = info.sectors * HAL_BLK_SECTOR;
    st->dev_ro = info.read_only != 0;
    fs_req_t *r = enqueue(ctx, st);
    if (r)
        r->type = FS_REQ_MOUNT;
    fs_drive(ctx, st);
}

static void on_init(os_ctx_t *ctx, fs_state_t *st, const os_event_t *ev)
{
    union {
        init_new_client_t nc;
        init_reply_t reply;
    } m;
    if (ev->type == init_msg_new_client && init_new_client_decode(ev, &m.nc) == 0)
        add_client(ctx, st, &m.nc);
    else if (ev->type == init_msg_reply && init_reply_decode(ev, &m.reply) == 0) {
        if (m.reply.status < 0)
            os_log(ctx, "register fs: %s", os_strerror(m.reply.status));
    } else {
        iface_discard(ctx, ev);
    }
}

void fs_register(os_ctx_t *ctx)
{
    init_register_iface(ctx, REQ_REGISTER, &fs_iface);
}

static void on_message(os_ctx_t *ctx, fs_state_t *st, const os_event_t *ev)
{
    int c = client_of(st, ev->handle), f = -1;
    if (c < 0 && (f = file_of(st, ev->handle)) < 0) {
        iface_discard(ctx, ev);
        return;
    }
    fs_req_t *r = enqueue(ctx, st);
    if (!r) {
        /* cannot happen: a full queue holds every channel */
        iface_discard(ctx, ev);
        fs_error_t e = {ev->type, OS_EBUSY};
        fs_error_send(ctx, ev->handle, &e);
        return;
    }
    r->chan = ev->handle;
    r->client = c;
    r->file = f;
    int rc = fs_decode(st, r, ev);
    if (rc < 0) {
        /* malformed, or not a message of this kind of channel: answered at once */
        st->qcount--;
        if (st->held && st->qcount < FS_QUEUE_MAX)
            hold_all(ctx, st, false);
        iface_discard(ctx, ev);
        fs_error_t e = {ev->type, OS_EPROTO};
        fs_error_send(ctx, ev->handle, &e);
        return;
    }
    fs_drive(ctx, st);
}

static void fs_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    fs_state_t *st = os_state(ctx);
    int i;
    switch (ev->kind) {
    case OS_EV_DEVICE:
        if (ev->handle == st->dev)
            on_device(ctx, st, ev);
        break;
    case OS_EV_TIMER:
        if (ev->handle == st->timer)
            on_timer(ctx, st);
        break;
    case OS_EV_MESSAGE:
        if (ev->handle == init_channel(ctx))
            on_init(ctx, st, ev);
        else
            on_message(ctx, st, ev);
        break;
    case OS_EV_PEER_CLOSED:
        if ((i = client_of(st, ev->handle)) >= 0) {
            os_handle_close(ctx, st->clients[i].chan);
            st->clients[i].chan = OS_HANDLE_NONE;
            for (uint32_t k = 0; k < st->qcount; k++) {
                fs_req_t *r = &st->queue[(st->qhead + k) % FS_QUEUE_MAX];
                if (r->client == i)
                    r->chan = OS_HANDLE_NONE; /* it still runs; nobody hears the answer */
            }
        } else if ((i = file_of(st, ev->handle)) >= 0) {
            close_file(ctx, st, i);
            fs_drive(ctx, st);
        }
        break;
    default:
        break;
    }
}

const os_program_t orrery_fs = {"fs", sizeof(fs_state_t), fs_start, fs_on_event};
