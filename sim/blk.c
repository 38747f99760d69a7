/* blk.c — the simulator's disks: blk0 on an in-memory disk with a volatile cache, under the seed.
 */
#include <sim/blk.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hal/blk.h>
#include <hal/device.h>
#include <k/kernel.h>
#include <sim/faults.h>
#include <sim/sim.h>

#include "sim_priv.h"

enum {
    BLK_LATENCY_NS = 100000, /* 100 us, plus up to as much again: completions overtake */
    EARLY_ONE_IN = 4,        /* after a completion, one cached sector lands early 1 in 4 */
    SECTOR = HAL_BLK_SECTOR,
};

struct sim_disk {
    uint64_t sectors;
    uint8_t *medium;
    /* the write cache: dirty sectors in no order; where[s] = 1 + its entry, or 0 */
    uint32_t *where;
    uint64_t *csec;
    uint8_t *cdata;
    size_t dirty;
};

typedef enum { SLOT_FREE, SLOT_PENDING, SLOT_WAITING } slot_state_t;

typedef struct slot {
    slot_state_t state;
    bool done; /* its effect (read, store, flush) happened; only the post is left */
    uint32_t code;
    uint32_t store; /* write: sectors that reach the cache (torn: fewer; lost: 0) */
    uint8_t msg[sizeof(hal_blk_req_t) + HAL_BLK_MAX_SECTORS * SECTOR];
} slot_t;

typedef struct bnode {
    size_t node;
    sim_disk_t *disk;
    int dev;
    uint32_t gen; /* completions of an older generation died with a power cut */
    uint32_t inflight;
    hal_device_ops_t ops;
    slot_t slots[SIM_BLK_INFLIGHT_MAX];
} bnode_t;

static struct {
    bnode_t *n[SIM_NODES_MAX];
    sim_blk_stats_t st;
} B;

/* ---- the disk ---------------------------------------------------------------------------- */

static sim_disk_t *disk_alloc(uint64_t sectors)
{
    if (sectors == 0 || sectors > SIM_DISK_MAX_BYTES / SECTOR)
        return NULL;
    sim_disk_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->sectors = sectors;
    d->medium = calloc(sectors, SECTOR);
    d->where = calloc(sectors, sizeof d->where[0]);
    d->csec = malloc(SIM_DISK_CACHE_SECTORS * sizeof d->csec[0]);
    d->cdata = malloc((size_t)SIM_DISK_CACHE_SECTORS * SECTOR);
    if (!d->medium || !d->where || !d->csec || !d->cdata) {
        sim_disk_free(d);
        return NULL;
    }
    return d;
}

sim_disk_t *sim_disk_new(uint64_t sectors)
{
    return disk_alloc(sectors);
}

sim_disk_t *sim_disk_copy(const sim_disk_t *d)
{
    sim_disk_t *c = disk_alloc(d->sectors);
    if (!c)
        return NULL;
    memcpy(c->medium, d->medium, (size_t)d->sectors * SECTOR);
    for (size_t e = 0; e < d->dirty; e++) /* the cache as landed: no draw, no count */
        memcpy(c->medium + d->csec[e] * SECTOR, d->cdata + e * SECTOR, SECTOR);
    return c;
}

void sim_disk_free(sim_disk_t *d)
{
    if (!d)
        return;
    free(d->medium);
    free(d->where);
    free(d->csec);
    free(d->cdata);
    free(d);
}

uint64_t sim_disk_sectors(const sim_disk_t *d)
{
    return d->sectors;
}

const uint8_t *sim_disk_medium(const sim_disk_t *d)
{
    return d->medium;
}

size_t sim_disk_dirty(const sim_disk_t *d)
{
    return d->dirty;
}

/* Drop cache entry e, landing it on the medium first if `land`. */
static void cache_drop(sim_disk_t *d, size_t e, bool land)
{
    uint64_t s = d->csec[e];
    if (land)
        memcpy(d->medium + s * SECTOR, d->cdata + e * SECTOR, SECTOR);
    d->where[s] = 0;
    size_t last = --d->dirty;
    if (e != last) {
        d->csec[e] = d->csec[last];
        memcpy(d->cdata + e * SECTOR, d->cdata + last * SECTOR, SECTOR);
        d->where[d->csec[e]] = (uint32_t)e + 1;
    }
}

static void cache_put(sim_disk_t *d, uint64_t s, const uint8_t *data)
{
    size_t e;
    if (d->where[s]) {
        e = d->where[s] - 1;
    } else {
        if (d->dirty == SIM_DISK_CACHE_SECTORS) {
            cache_drop(d, sim_rand() % d->dirty, true); /* full: one goes to the medium */
            B.st.early++;
        }
        e = d->dirty++;
        d->csec[e] = s;
        d->where[s] = (uint32_t)e + 1;
    }
    memcpy(d->cdata + e * SECTOR, data, SECTOR);
}

void sim_disk_flush(sim_disk_t *d)
{
    while (d->dirty)
        cache_drop(d, d->dirty - 1, true);
}

/* The power went: each cached sector reaches the medium or not, as the seed says. */
static void cache_cut(sim_disk_t *d)
{
    while (d->dirty) {
        bool keep = sim_rand() & 1;
        if (keep)
            B.st.cut_kept_sectors++;
        else
            B.st.cut_lost_sectors++;
        cache_drop(d, d->dirty - 1, keep);
    }
}

static void disk_read(const sim_disk_t *d, uint64_t s, uint32_t count, uint8_t *out)
{
    for (uint32_t i = 0; i < count; i++, s++) {
        const uint8_t *src =
            d->where[s] ? d->cdata + (size_t)(d->where[s] - 1) * SECTOR : d->medium + s * SECTOR;
        memcpy(out + (size_t)i * SECTOR, src, SECTOR);
    }
}

sim_disk_t *sim_disk_open(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0 || size % SECTOR != 0 || size > SIM_DISK_MAX_BYTES) {
        snprintf(err, errlen,
                 "%s: size %llu is not a non-zero multiple of 512 of at most %llu bytes", path,
                 (unsigned long long)size, (unsigned long long)SIM_DISK_MAX_BYTES);
        fclose(f);
        return NULL;
    }
    sim_disk_t *d = disk_alloc(size / SECTOR);
    if (!d) {
        snprintf(err, errlen, "%s: out of memory for %llu bytes", path, (unsigned long long)size);
        fclose(f);
        return NULL;
    }
    if (fread(d->medium, 1, size, f) != size) {
        snprintf(err, errlen, "%s: short read", path);
        sim_disk_free(d);
        fclose(f);
        return NULL;
    }
    fclose(f);
    return d;
}

int sim_disk_save(sim_disk_t *d, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: exists and is not a regular file; not overwritten", path);
        return -1;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create a temporary file beside it: %s", path,
                 strerror(errno));
        free(tmp);
        return -1;
    }
    sim_disk_flush(d);
    size_t size = (size_t)(d->sectors * SECTOR), off = 0;
    int rc = 0;
    while (off < size) {
        ssize_t w = write(fd, d->medium + off, size - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    if (rc != 0)
        snprintf(err, errlen, "%s: writing %s: %s", path, tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0) {
        snprintf(err, errlen, "%s: closing %s: %s", path, tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: renaming %s over it: %s", path, tmp, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        unlink(tmp); /* ours: made by mkstemp above */
    free(tmp);
    return rc;
}

/* ---- blk0 ------------------------------------------------------------------------------ */

static void complete(void *self, uint64_t arg);

static int schedule(bnode_t *b, size_t i, uint64_t at)
{
    return sim_at_node(b->node, at, complete, b, (uint64_t)b->gen << 32 | i);
}

static void slot_free(bnode_t *b, slot_t *s)
{
    s->state = SLOT_FREE;
    b->inflight--;
}

/* A request's time has come: do it (once), then post its completion to the node. */
static void complete(void *self, uint64_t arg)
{
    bnode_t *b = self;
    if ((uint32_t)(arg >> 32) != b->gen)
        return; /* issued before a power cut: died with it */
    slot_t *s = &b->slots[(uint32_t)arg];
    hal_blk_req_t *r = (hal_blk_req_t *)s->msg;
    size_t len = sizeof *r;
    if (!s->done) {
        s->done = true;
        if (r->status == 0 && s->code == HAL_BLK_READ)
            disk_read(b->disk, r->sector, r->count, s->msg + sizeof *r);
        if (r->status == 0 && s->code == HAL_BLK_WRITE)
            for (uint32_t k = 0; k < s->store; k++)
                cache_put(b->disk, r->sector + k, s->msg + sizeof *r + (size_t)k * SECTOR);
        if (r->status == 0 && s->code == HAL_BLK_FLUSH)
            sim_disk_flush(b->disk);
        if (b->disk->dirty && sim_rand() % EARLY_ONE_IN == 0) {
            cache_drop(b->disk, sim_rand() % b->disk->dirty, true);
            B.st.early++;
        }
    }
    if (!sim_node_alive(b->node)) {
        slot_free(b, s); /* the node shut down (the drive did the work): nobody reads it */
        return;
    }
    if (r->status == 0 && s->code == HAL_BLK_READ)
        len += (size_t)r->count * SECTOR;
    if (sim_node_post(b->node, b->dev, s->code, s->msg, len) == OS_EFULL) {
        s->state = SLOT_WAITING; /* posted again when the queue has room (blk_resume) */
        return;
    }
    slot_free(b, s);
}

static int blk_write(void *self, uint32_t code, const void *buf, size_t len)
{
    bnode_t *b = self;
    hal_blk_req_t r;
    if (code == HAL_BLK_INFO && len == 0) {
        sim_blk_started(b->node); /* the size again, for a restarted server */
        return 0;
    }
    if (len < sizeof r || (code != HAL_BLK_READ && code != HAL_BLK_WRITE && code != HAL_BLK_FLUSH))
        goto invalid;
    memcpy(&r, buf, sizeof r);
    if (code == HAL_BLK_FLUSH) {
        if (len != sizeof r || r.sector != 0 || r.count != 0)
            goto invalid;
    } else {
        size_t want = sizeof r + (code == HAL_BLK_WRITE ? (size_t)r.count * SECTOR : 0);
        if (r.count < 1 || r.count > HAL_BLK_MAX_SECTORS || len != want ||
            r.sector >= b->disk->sectors || r.count > b->disk->sectors - r.sector)
            goto invalid;
    }
    if (b->inflight == SIM_BLK_INFLIGHT_MAX) {
        B.st.invalid++;
        return OS_EFULL;
    }
    size_t i = 0;
    while (b->slots[i].state != SLOT_FREE)
        i++;
    slot_t *s = &b->slots[i];
    sim_blk_verdict_t v = sim_fault_blk_request(code, r.sector, r.count);
    r.status = v.status;
    s->code = code;
    s->done = false;
    s->store = code == HAL_BLK_WRITE ? v.sectors : 0;
    memcpy(s->msg, &r, sizeof r);
    if (code == HAL_BLK_WRITE)
        memcpy(s->msg + sizeof r, (const uint8_t *)buf + sizeof r, (size_t)r.count * SECTOR);
    B.st.reads += code == HAL_BLK_READ;
    B.st.writes += code == HAL_BLK_WRITE;
    B.st.flushes += code == HAL_BLK_FLUSH;
    B.st.eio += v.status == OS_EIO;
    B.st.lost += code == HAL_BLK_WRITE && v.status == 0 && v.lost;
    B.st.torn += code == HAL_BLK_WRITE && v.status == 0 && !v.lost && v.sectors < r.count;
    uint64_t at = sim_now() + BLK_LATENCY_NS + sim_rand() % BLK_LATENCY_NS + v.latency_ns;
    int rc = schedule(b, i, at);
    if (rc < 0)
        return rc;
    s->state = SLOT_PENDING;
    b->inflight++;
    return 0;
invalid:
    B.st.invalid++;
    return OS_EINVAL;
}

static void blk_resume(void *self)
{
    bnode_t *b = self;
    for (size_t i = 0; i < SIM_BLK_INFLIGHT_MAX; i++) {
        if (b->slots[i].state == SLOT_WAITING && schedule(b, i, sim_now()) == 0)
            b->slots[i].state = SLOT_PENDING;
    }
}

int sim_blk_attach(size_t node, sim_disk_t *disk)
{
    if (node >= SIM_NODES_MAX || !disk)
        return OS_EINVAL;
    for (size_t j = 0; j < SIM_NODES_MAX; j++)
        if (j != node && B.n[j] && B.n[j]->disk == disk)
            return OS_EBUSY; /* one drive, one node: two caches over one medium would lie */
    bnode_t *b = B.n[node];
    if (!b && !(b = B.n[node] = calloc(1, sizeof *b)))
        return OS_ENOMEM;
    b->node = node;
    b->disk = disk;
    b->ops = (hal_device_ops_t){"blk0", b, blk_write, blk_resume};
    int dev = k_device_add(&b->ops);
    if (dev < 0)
        return dev;
    b->dev = dev;
    return 0;
}

void sim_blk_started(size_t node)
{
    bnode_t *b = B.n[node];
    hal_blk_info_t info = {b->disk->sectors, 0, HAL_BLK_MAX_SECTORS};
    sim_node_post(node, b->dev, HAL_BLK_INFO, &info, sizeof info); /* queued until opened */
}

void sim_blk_power_cut(size_t node)
{
    bnode_t *b = node < SIM_NODES_MAX ? B.n[node] : NULL;
    B.st.power_cuts++;
    if (!b)
        return;
    /* writes in flight may have reached the drive: their sectors join the cache's fate */
    for (size_t i = 0; i < SIM_BLK_INFLIGHT_MAX; i++) {
        slot_t *s = &b->slots[i];
        if (s->state == SLOT_FREE)
            continue;
        const hal_blk_req_t *r = (const hal_blk_req_t *)s->msg;
        if (!s->done && s->code == HAL_BLK_WRITE && r->status == 0)
            for (uint32_t k = 0; k < s->store; k++)
                cache_put(b->disk, r->sector + k, s->msg + sizeof *r + (size_t)k * SECTOR);
        s->state = SLOT_FREE;
        B.st.dropped++;
    }
    b->inflight = 0;
    b->gen++;
    cache_cut(b->disk);
}

void sim_blk_reset(void)
{
    for (size_t i = 0; i < SIM_NODES_MAX; i++)
        free(B.n[i]);
    memset(&B, 0, sizeof B);
}

void sim_blk_stats(sim_blk_stats_t *out)
{
    *out = B.st;
}

/* ---- power cuts -------------------------------------------------------------------------- */

int sim_node_power_cut(size_t node, bool reboot)
{
    if (node >= sim_node_count())
        return OS_EINVAL;
    return sim_node_reboot(node, reboot ? SIM_REBOOT_NOW : SIM_REBOOT_OFF);
}

static void cut_action(void *self, uint64_t arg)
{
    (void)self;
    sim_node_power_cut((size_t)(arg >> 1), arg & 1);
}

int sim_node_power_cut_at(size_t node, uint64_t t_ns, bool reboot)
{
    if (node >= sim_node_count())
        return OS_EINVAL;
    return sim_at_node(node, t_ns, cut_action, NULL, (uint64_t)node << 1 | reboot);
}
