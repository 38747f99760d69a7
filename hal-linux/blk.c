/* blk.c — the hosted "blk0" device: 512-byte sectors of an image file, served by I/O threads. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include <hal/blk.h>
#include <hal/device.h>
#include <k/kernel.h>

/*
 * Thread model. ops->write runs on a worker and must not block on the disk: it checks the
 * request, copies it into one of HL_BLK_INFLIGHT slots and queues it for HL_BLK_THREADS I/O
 * threads (pread/pwrite/fdatasync may take as long as the host likes). A finished slot goes to
 * the done list and the loop is poked with a uv_async; the loop posts completions with k_post.
 * When k_post says OS_EFULL the completion stays first in the done list and the loop stops
 * posting until the kernel calls ops->resume, which only pokes the loop again: no completion
 * is ever dropped. A slot is free again once its completion is in the kernel's queue, so a task
 * that got OS_EFULL from a write may write again after any completion reaches it.
 * k_post is never called with B.lock held (resume may run under kernel locks).
 */

typedef struct blk_slot {
    struct blk_slot *next;
    uint32_t code;
    bool waited; /* its completion found the kernel's queue full once (counted once) */
    size_t len;  /* completion length: the header, plus the sectors of a successful read */
    union {
        hal_blk_req_t req;
        uint8_t raw[sizeof(hal_blk_req_t) + HAL_BLK_MAX_SECTORS * HAL_BLK_SECTOR];
    } u;
} blk_slot_t;

typedef struct blk_list {
    blk_slot_t *head, *tail;
} blk_list_t;

static struct {
    int dev;
    hl_blk_config_t cfg;
    bool started;

    pthread_mutex_t lock; /* guards the lists, inflight, stopping */
    pthread_cond_t work;  /* queued has slots, or stopping */
    blk_slot_t slots[HL_BLK_INFLIGHT];
    blk_list_t free, queued, done;
    unsigned inflight; /* slots not on the free list */
    bool info_due;     /* a task asked for HAL_BLK_INFO again */
    bool stopping;
    pthread_t threads[HL_BLK_THREADS];
    unsigned nthreads;
    uv_async_t done_async;

    /* counters (atomic) */
    uint64_t reads, writes, flushes, bytes, full, post_waits;
} B = {.lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER};

static void list_push(blk_list_t *l, blk_slot_t *s)
{
    s->next = NULL;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
}

static void list_push_front(blk_list_t *l, blk_slot_t *s)
{
    s->next = l->head;
    l->head = s;
    if (!l->tail)
        l->tail = s;
}

static blk_slot_t *list_pop(blk_list_t *l)
{
    blk_slot_t *s = l->head;
    if (s) {
        l->head = s->next;
        if (!l->head)
            l->tail = NULL;
    }
    return s;
}

static void count(uint64_t *c, uint64_t n)
{
    __atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

/* ---- the device ops (worker threads) ---------------------------------------------------- */

/* Everything that can be known without the disk is checked here: a refused request queues
 * nothing and the task learns it at once. */
static int blk_check(uint32_t code, const void *buf, size_t len, hal_blk_req_t *req)
{
    if (code != HAL_BLK_READ && code != HAL_BLK_WRITE && code != HAL_BLK_FLUSH)
        return OS_EINVAL;
    if (!buf || len < sizeof(*req))
        return OS_EINVAL;
    memcpy(req, buf, sizeof(*req));
    if (code == HAL_BLK_FLUSH)
        return len == sizeof(*req) ? 0 : OS_EINVAL; /* sector and count are not looked at */
    if (req->count == 0 || req->count > HAL_BLK_MAX_SECTORS)
        return OS_EINVAL;
    size_t want = sizeof(*req) + (code == HAL_BLK_WRITE ? (size_t)req->count * HAL_BLK_SECTOR : 0);
    if (len != want)
        return OS_EINVAL;
    if (req->sector >= B.cfg.sectors || req->count > B.cfg.sectors - req->sector)
        return OS_EINVAL;
    return 0;
}

static int blk_dev_write(void *self, uint32_t code, const void *buf, size_t len)
{
    if (code == HAL_BLK_INFO) {
        if (len != 0)
            return OS_EINVAL;
        /* posted from the loop thread, like every completion */
        pthread_mutex_lock(&B.lock);
        B.info_due = true;
        pthread_mutex_unlock(&B.lock);
        uv_async_send(&B.done_async);
        return 0;
    }
    hal_blk_req_t req;
    int rc = blk_check(code, buf, len, &req);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&B.lock);
    blk_slot_t *s = list_pop(&B.free);
    if (!s) {
        pthread_mutex_unlock(&B.lock);
        count(&B.full, 1);
        return OS_EFULL;
    }
    B.inflight++;
    s->code = code;
    s->waited = false;
    memcpy(s->u.raw, buf, len);
    s->u.req.status = 0;
    list_push(&B.queued, s);
    pthread_cond_signal(&B.work);
    pthread_mutex_unlock(&B.lock);
    return 0;
}

/* Called under kernel locks: only poke the loop. Workers are joined before hl_blk_stop closes
 * the async, so it is alive whenever a worker can call this. */
static void blk_dev_resume(void *self)
{
    uv_async_send(&B.done_async);
}

static const hal_device_ops_t blk_ops = {
    .name = "blk0",
    .self = NULL,
    .write = blk_dev_write,
    .resume = blk_dev_resume,
};

/* ---- the I/O threads -------------------------------------------------------------------- */

/* Whole transfers only: a short count that is not an error (the file shrank under us) is EIO. */
static int blk_io(bool wr, uint8_t *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = wr ? pwrite(B.cfg.fd, p, n, off) : pread(B.cfg.fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return OS_EIO;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static void blk_serve(blk_slot_t *s)
{
    hal_blk_req_t *r = &s->u.req;
    uint8_t *data = s->u.raw + sizeof(*r);
    size_t n = (size_t)r->count * HAL_BLK_SECTOR;
    off_t off = (off_t)(r->sector * HAL_BLK_SECTOR);
    s->len = sizeof(*r);
    switch (s->code) {
    case HAL_BLK_READ:
        count(&B.reads, 1);
        r->status = blk_io(false, data, n, off);
        if (r->status == 0) {
            s->len += n;
            count(&B.bytes, n);
        }
        break;
    case HAL_BLK_WRITE:
        count(&B.writes, 1);
        if (B.cfg.read_only) {
            r->status = OS_EACCES;
            break;
        }
        r->status = blk_io(true, data, n, off);
        if (r->status == 0)
            count(&B.bytes, n);
        break;
    default: /* HAL_BLK_FLUSH: every write whose completion was posted has returned */
        count(&B.flushes, 1);
        r->status = B.cfg.read_only || fdatasync(B.cfg.fd) == 0 ? 0 : OS_EIO;
        break;
    }
}

static void *blk_thread(void *arg)
{
    pthread_mutex_lock(&B.lock);
    for (;;) {
        blk_slot_t *s = list_pop(&B.queued);
        if (!s) {
            if (B.stopping)
                break; /* only once the queue is empty: accepted requests are served */
            pthread_cond_wait(&B.work, &B.lock);
            continue;
        }
        pthread_mutex_unlock(&B.lock);
        blk_serve(s);
        pthread_mutex_lock(&B.lock);
        list_push(&B.done, s);
        uv_async_send(&B.done_async);
    }
    pthread_mutex_unlock(&B.lock);
    return NULL;
}

/* ---- completions (loop thread) ---------------------------------------------------------- */

static void on_done(uv_async_t *a)
{
    pthread_mutex_lock(&B.lock);
    bool info = B.info_due;
    pthread_mutex_unlock(&B.lock);
    if (info) {
        hal_blk_info_t in = {B.cfg.sectors, B.cfg.read_only ? 1 : 0, HAL_BLK_MAX_SECTORS};
        if (k_post(B.dev, HAL_BLK_INFO, &in, sizeof(in)) == OS_EFULL)
            return; /* resume pokes us again */
        pthread_mutex_lock(&B.lock);
        B.info_due = false;
        pthread_mutex_unlock(&B.lock);
    }
    for (;;) {
        pthread_mutex_lock(&B.lock);
        blk_slot_t *s = list_pop(&B.done);
        pthread_mutex_unlock(&B.lock);
        if (!s)
            return;
        int rc = k_post(B.dev, s->code, s->u.raw, s->len);
        pthread_mutex_lock(&B.lock);
        if (rc == OS_EFULL) {
            /* Kept first; resume (or the next completion) pokes us again. Every completion
             * behind it waits too: each is counted once. */
            list_push_front(&B.done, s);
            for (blk_slot_t *w = B.done.head; w; w = w->next)
                if (!w->waited) {
                    w->waited = true;
                    count(&B.post_waits, 1);
                }
            pthread_mutex_unlock(&B.lock);
            return;
        }
        /* 0; anything else would be a bug in the checks above, and retrying cannot help. */
        list_push(&B.free, s);
        B.inflight--;
        pthread_mutex_unlock(&B.lock);
    }
}

/* ---- life cycle ------------------------------------------------------------------------- */

int hl_blk_add(const hl_blk_config_t *cfg)
{
    B.cfg = *cfg;
    B.started = false;
    B.stopping = false;
    B.nthreads = 0;
    B.inflight = 0;
    B.info_due = false;
    B.free = B.queued = B.done = (blk_list_t){0};
    for (unsigned i = 0; i < HL_BLK_INFLIGHT; i++)
        list_push(&B.free, &B.slots[i]);
    uint64_t *cs[] = {&B.reads, &B.writes, &B.flushes, &B.bytes, &B.full, &B.post_waits};
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
        __atomic_store_n(cs[i], 0, __ATOMIC_RELAXED);
    int dev = k_device_add(&blk_ops);
    if (dev < 0)
        return dev;
    B.dev = dev;
    return 0;
}

int hl_blk_start(uv_loop_t *loop, char *err, size_t errlen)
{
    uv_async_init(loop, &B.done_async, on_done);
    B.started = true;
    for (unsigned i = 0; i < HL_BLK_THREADS; i++) {
        int rc = pthread_create(&B.threads[i], NULL, blk_thread, NULL);
        if (rc != 0) {
            snprintf(err, errlen, "blk0: cannot start I/O threads: %s", strerror(rc));
            return OS_EIO;
        }
        B.nthreads++;
    }
    hal_blk_info_t info = {
        .sectors = B.cfg.sectors,
        .read_only = B.cfg.read_only ? 1 : 0,
        .max_sectors = HAL_BLK_MAX_SECTORS,
    };
    /* The queue is empty before any task ran: this cannot meet OS_EFULL. */
    k_post(B.dev, HAL_BLK_INFO, &info, sizeof(info));
    return 0;
}

void hl_blk_stop(void)
{
    pthread_mutex_lock(&B.lock);
    B.stopping = true;
    pthread_cond_broadcast(&B.work);
    pthread_mutex_unlock(&B.lock);
    for (unsigned i = 0; i < B.nthreads; i++)
        pthread_join(B.threads[i], NULL);
    B.nthreads = 0;
    if (B.started && !uv_is_closing((uv_handle_t *)&B.done_async))
        uv_close((uv_handle_t *)&B.done_async, NULL);
    B.started = false;
}

void hl_blk_counts(uint64_t out[6])
{
    uint64_t *cs[] = {&B.reads, &B.writes, &B.flushes, &B.bytes, &B.full, &B.post_waits};
    for (size_t i = 0; i < 6; i++)
        out[i] = __atomic_load_n(cs[i], __ATOMIC_RELAXED);
}

/* ---- opening the image (before the run) ------------------------------------------------- */

int hl_blk_open(const char *spec, hl_blk_config_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    size_t n = strlen(spec);
    bool ro = false;
    if (n >= 3 && strcmp(spec + n - 3, ",ro") == 0) {
        ro = true;
        n -= 3;
    }
    if (n == 0) {
        snprintf(err, errlen, "needs an image file name (FILE or FILE,ro)");
        return -1;
    }
    if (n >= sizeof(out->path)) {
        snprintf(err, errlen, "the file name is too long (%zu bytes)", n);
        return -1;
    }
    memcpy(out->path, spec, n);
    out->path[n] = '\0';
    const char *path = out->path;

    /* O_NONBLOCK: a FIFO must not hang the open; it is refused below like any non-file. */
    int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = open(path, flags | (ro ? O_RDONLY : O_RDWR));
    if (fd < 0 && !ro && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        fd = open(path, flags | O_RDONLY); /* not writable by us: served read-only */
        ro = true;
    }
    if (fd < 0) {
        if (errno == EISDIR)
            snprintf(err, errlen, "%s: is a directory, not an image file", path);
        else
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s, not an image file (blk0 takes a regular file)", path,
                 S_ISDIR(st.st_mode)   ? "is a directory"
                 : S_ISBLK(st.st_mode) ? "is a block device"
                 : S_ISCHR(st.st_mode) ? "is a character device"
                                       : "is not a regular file");
        close(fd);
        return -1;
    }
    if (st.st_size == 0 || st.st_size % HAL_BLK_SECTOR != 0) {
        snprintf(err, errlen, "%s: size %lld is not a non-zero multiple of %d (the sector size)",
                 path, (long long)st.st_size, HAL_BLK_SECTOR);
        close(fd);
        return -1;
    }
    /* A writer excludes everyone; readers only exclude writers. */
    if (flock(fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errlen, "%s: in use: another run has the image open%s", path,
                     ro ? " for writing" : "");
        else
            snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    out->fd = fd;
    out->sectors = (uint64_t)st.st_size / HAL_BLK_SECTOR;
    out->read_only = ro;
    return 0;
}

void hl_blk_close(hl_blk_config_t *cfg)
{
    if (cfg->fd >= 0)
        close(cfg->fd);
    cfg->fd = -1;
}
