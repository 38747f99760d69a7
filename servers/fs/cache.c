/* cache.c — the fs server's block cache over blk0: fetch on a miss, undo a failed call, write back
 * data before metadata, then flush. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fs_priv.h"

/* blk0 request ids: the slot in the high bits, what it was in the low ones. */
enum { ID_READ = 1, ID_WRITE = 2, ID_FLUSH = 3, ID_SHIFT = 4, ID_EPOCH_SHIFT = 48 };

/* A request id: the task's epoch (random at start) in the top 16 bits, so a completion meant
 * for an fs task that died (init restarts fs; blk0 still posts what the dead one asked for)
 * is told apart and dropped; then the slot and the kind. */
static uint64_t req_id(const fs_state_t *st, uint64_t slot, unsigned kind)
{
    return ((uint64_t)st->epoch << ID_EPOCH_SHIFT) | (slot << ID_SHIFT) | kind;
}

static fs_mask_t bit(unsigned s)
{
    return (fs_mask_t)(1u << s);
}

static unsigned popcount(fs_mask_t m)
{
    unsigned n = 0;
    for (; m; m &= (fs_mask_t)(m - 1))
        n++;
    return n;
}

/* Sectors of `unit` that exist on the device (a last unit may be short). */
static fs_mask_t on_device(const fs_state_t *st, uint64_t unit)
{
    uint64_t first = unit * FS_UNIT_SECTORS, total = st->dev_size / HAL_BLK_SECTOR;
    if (first >= total)
        return 0;
    uint64_t n = total - first;
    return n >= FS_UNIT_SECTORS ? FS_MASK_ALL : (fs_mask_t)((1u << n) - 1);
}

static int find(fs_state_t *st, uint64_t unit)
{
    for (int i = 0; i < FS_CACHE_SLOTS; i++)
        if (st->slots[i].used && st->slots[i].unit == unit)
            return i;
    return -1;
}

/* A slot that may hold a new unit: a free one, else the least recently used clean one that
 * nothing holds (no I/O, not pinned by the running step). -1: none. */
static int victim(const fs_state_t *st)
{
    int best = -1;
    for (int i = 0; i < FS_CACHE_SLOTS; i++) {
        const fs_slot_t *s = &st->slots[i];
        if (!s->used)
            return i;
        if (s->dirty || s->want || s->reading || s->writing || s->pin == st->gen ||
            (st->in_call && s->undo_gen == st->call))
            continue;
        if (best < 0 || s->lru < st->slots[best].lru)
            best = i;
    }
    return best;
}

uint32_t fs_clean_slots(const fs_state_t *st)
{
    uint32_t n = 0;
    for (int i = 0; i < FS_CACHE_SLOTS; i++) {
        const fs_slot_t *s = &st->slots[i];
        if (!s->used || !(s->dirty || s->want || s->reading || s->writing))
            n++;
    }
    return n;
}

uint32_t fs_dirty_count(const fs_state_t *st)
{
    uint32_t n = 0;
    for (int i = 0; i < FS_CACHE_SLOTS; i++)
        n += popcount(st->slots[i].dirty);
    return n;
}

/* Give slot i to `unit`, empty: the sectors past the device's end read as zeros. */
static void take(fs_state_t *st, int i, uint64_t unit)
{
    fs_slot_t *s = &st->slots[i];
    fs_mask_t dev = on_device(st, unit);
    memset(s, 0, offsetof(fs_slot_t, data));
    s->used = true;
    s->unit = unit;
    s->valid = (fs_mask_t)~dev;
    for (unsigned k = 0; k < FS_UNIT_SECTORS; k++)
        if (!(dev & bit(k)))
            memset(s->data + k * HAL_BLK_SECTOR, 0, HAL_BLK_SECTOR);
}

/* No slot could take a unit: a write-back frees some, unless every slot is the step's own. */
static void no_slot(fs_state_t *st)
{
    for (int i = 0; i < FS_CACHE_SLOTS; i++) {
        const fs_slot_t *s = &st->slots[i];
        if (s->dirty && s->pin != st->gen) {
            st->need_slots = true;
            return;
        }
    }
    if (st->wb_phase != 0) {
        st->need_slots = true; /* writes in flight free slots when they complete */
        return;
    }
    st->too_big = true;
}

/* Ask for the missing sectors of `unit` (and read ahead a few units after it). */
static void miss(fs_state_t *st, uint64_t unit)
{
    for (uint64_t u = unit; u <= unit + FS_READAHEAD; u++) {
        fs_mask_t dev = on_device(st, u);
        if (!dev)
            return;
        int i = find(st, u);
        if (i < 0) {
            i = victim(st);
            if (i < 0) {
                if (u == unit)
                    no_slot(st);
                return;
            }
            /* read ahead only into free or clean slots the step does not hold */
            take(st, i, u);
        } else if (u != unit) {
            continue; /* cached already: read ahead no further than the gap */
        }
        fs_slot_t *s = &st->slots[i];
        fs_mask_t need = (fs_mask_t)(~s->valid & ~s->reading & ~s->want & dev);
        s->want |= need;
        st->fetching += popcount(need);
        if (u == unit)
            s->pin = st->gen;
        s->lru = ++st->tick;
    }
}

/* Sectors [a, b) of a unit as a mask. */
static fs_mask_t range_mask(unsigned a, unsigned b)
{
    fs_mask_t m = 0;
    for (unsigned k = a; k < b; k++)
        m |= bit(k);
    return m;
}

int fs_cache_read(void *arg, uint64_t off, void *buf, size_t len)
{
    fs_state_t *st = arg;
    uint8_t *dst = buf;
    while (len > 0) {
        uint64_t unit = off / FS_UNIT;
        size_t in = (size_t)(off % FS_UNIT), n = FS_UNIT - in;
        if (n > len)
            n = len;
        fs_mask_t need = range_mask((unsigned)(in / HAL_BLK_SECTOR),
                                    (unsigned)((in + n + HAL_BLK_SECTOR - 1) / HAL_BLK_SECTOR));
        int i = find(st, unit);
        if (i >= 0 && st->slots[i].bad)
            return OS_EIO;
        if (i < 0 || (st->slots[i].valid & need) != need) {
            miss(st, unit);
            return OS_EBUSY;
        }
        fs_slot_t *s = &st->slots[i];
        memcpy(dst, s->data + in, n);
        s->pin = st->gen;
        s->lru = ++st->tick;
        dst += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* Keep slot i as it is before the running call first changes it. */
static int save_undo(fs_state_t *st, int i, bool fresh)
{
    fs_slot_t *s = &st->slots[i];
    if (!fresh && s->undo_gen == st->call)
        return 0;
    if (st->nundo == FS_UNDO_MAX) {
        st->undo_over = true;
        return OS_EIO;
    }
    fs_undo_t *u = &st->undo[st->nundo++];
    u->slot = i;
    u->was_used = !fresh;
    u->unit = s->unit;
    u->valid = s->valid;
    u->dirty = s->dirty;
    u->meta = s->meta;
    if (!fresh)
        memcpy(u->data, s->data, FS_UNIT);
    s->undo_gen = st->call;
    return 0;
}

int fs_cache_write(void *arg, uint64_t off, const void *buf, size_t len, int kind)
{
    fs_state_t *st = arg;
    const uint8_t *src = buf;
    if (!st->in_call || off > st->dev_size || len > st->dev_size - off)
        return OS_EIO;
    while (len > 0) {
        uint64_t unit = off / FS_UNIT;
        size_t in = (size_t)(off % FS_UNIT), n = FS_UNIT - in;
        if (n > len)
            n = len;
        unsigned a = (unsigned)(in / HAL_BLK_SECTOR);
        unsigned b = (unsigned)((in + n + HAL_BLK_SECTOR - 1) / HAL_BLK_SECTOR);
        fs_mask_t touch = range_mask(a, b), partial = 0;
        if (in % HAL_BLK_SECTOR)
            partial |= bit(a);
        if ((in + n) % HAL_BLK_SECTOR)
            partial |= bit(b - 1);
        int i = find(st, unit);
        bool fresh = false;
        if (i >= 0 && st->slots[i].bad)
            return OS_EIO;
        if (i >= 0 && (partial & ~st->slots[i].valid)) {
            miss(st, unit); /* a partial sector needs the device's bytes around it */
            return OS_EBUSY;
        }
        if (i < 0) {
            if (partial) {
                miss(st, unit);
                return OS_EBUSY;
            }
            /* whole sectors: no read needed */
            i = victim(st);
            if (i < 0) {
                no_slot(st);
                return OS_EBUSY;
            }
            fresh = true;
        }
        if (save_undo(st, i, fresh) < 0)
            return OS_EIO;
        if (fresh)
            take(st, i, unit), st->slots[i].undo_gen = st->call;
        fs_slot_t *s = &st->slots[i];
        memcpy(s->data + in, src, n);
        s->valid |= touch;
        s->dirty |= touch;
        if (kind == EXT2_W_META)
            s->meta |= touch;
        else
            s->meta &= (fs_mask_t)~touch;
        s->pin = st->gen;
        s->lru = ++st->tick;
        src += n;
        off += n;
        len -= n;
    }
    return 0;
}

void fs_call_begin(fs_state_t *st)
{
    st->saved = st->fs;
    st->call++;
    st->nundo = 0;
    st->undo_over = false;
    st->in_call = true;
}

int fs_call_end(fs_state_t *st, int rc)
{
    st->in_call = false;
    if (rc == 0 && !st->undo_over) {
        st->nundo = 0;
        return 0;
    }
    /* Undo in reverse, so a slot changed twice ends as it was first. */
    for (uint32_t k = st->nundo; k-- > 0;) {
        fs_undo_t *u = &st->undo[k];
        fs_slot_t *s = &st->slots[u->slot];
        if (!u->was_used) {
            /* taken by this call; a miss of the call may have asked to fill it since */
            s->valid = (fs_mask_t)~on_device(st, s->unit);
            s->dirty = s->meta = 0;
            s->used = (s->want | s->reading) != 0;
            continue;
        }
        s->unit = u->unit;
        s->valid = u->valid;
        s->dirty = u->dirty;
        s->meta = u->meta;
        memcpy(s->data, u->data, FS_UNIT);
    }
    st->nundo = 0;
    char why[EXT2_WHY_MAX];
    memcpy(why, st->fs.why, sizeof why);
    st->fs = st->saved;
    memcpy(st->fs.why, why, sizeof why);
    if (st->undo_over && rc != OS_EBUSY) {
        snprintf(st->fs.why, sizeof st->fs.why, "one call changed more than %d cache blocks",
                 FS_UNDO_MAX);
        return OS_EIO;
    }
    return rc;
}

void fs_step(fs_state_t *st)
{
    st->gen++;
    st->need_slots = false;
    st->too_big = false;
}

void fs_request_done(fs_state_t *st)
{
    for (int i = 0; i < FS_CACHE_SLOTS; i++) {
        fs_slot_t *s = &st->slots[i];
        if (s->bad) {
            s->bad = false;
            if (!s->dirty && !s->writing && !s->reading)
                s->used = false;
        }
    }
    fs_step(st);
}

/* The first run of set bits of m, at most HAL_BLK_MAX_SECTORS long: *at and the count. */
static unsigned first_run(fs_mask_t m, unsigned *at)
{
    unsigned k = 0;
    while (k < FS_UNIT_SECTORS && !(m & bit(k)))
        k++;
    *at = k;
    unsigned n = 0;
    while (k + n < FS_UNIT_SECTORS && (m & bit(k + n)) && n < HAL_BLK_MAX_SECTORS)
        n++;
    return n;
}

/* Submit one request; OS_EFULL when the device is full. */
static int submit(os_ctx_t *ctx, fs_state_t *st, uint32_t code, int slot, unsigned at, unsigned n)
{
    uint8_t *msg = st->io; /* os_device_write copies it */
    hal_blk_req_t r = {.id = req_id(st, (uint64_t)slot, code == HAL_BLK_READ ? ID_READ : ID_WRITE),
                       .sector = st->slots[slot].unit * FS_UNIT_SECTORS + at,
                       .count = n};
    size_t len = sizeof r;
    memcpy(msg, &r, sizeof r);
    int rc;
    if (code == HAL_BLK_WRITE) {
        /* header and sectors in one message: the slot's bytes follow the header */
        memcpy(msg + len, st->slots[slot].data + at * HAL_BLK_SECTOR, n * HAL_BLK_SECTOR);
        len += n * HAL_BLK_SECTOR;
    }
    rc = os_device_write(ctx, st->dev, code, msg, len);
    if (rc == 0)
        st->inflight++;
    return rc;
}

static bool wb_left(const fs_state_t *st, int phase)
{
    for (int i = 0; i < FS_CACHE_SLOTS; i++)
        if (phase == 1 ? st->slots[i].wb_data : st->slots[i].wb_meta)
            return true;
    return false;
}

void fs_writeback_start(os_ctx_t *ctx, fs_state_t *st)
{
    if (st->wb_phase != 0)
        return;
    st->wb_seq++;
    st->dirty_since = false; /* changes from now on wait for the next one */
    for (int i = 0; i < FS_CACHE_SLOTS; i++) {
        fs_slot_t *s = &st->slots[i];
        s->wb_data = (fs_mask_t)(s->dirty & ~s->meta);
        s->wb_meta = (fs_mask_t)(s->dirty & s->meta);
    }
    st->wb_phase = 1;
    fs_pump(ctx, st);
}

static void wb_finish(os_ctx_t *ctx, fs_state_t *st)
{
    st->wb_phase = 0;
    st->wb_done = st->wb_seq;
    if (fs_dirty_count(st) > 0)
        fs_changed(ctx, st); /* changed while it ran: the timer comes back for those */
}

void fs_pump(os_ctx_t *ctx, fs_state_t *st)
{
    /* Fetches first: a request waits for them. */
    for (int i = 0; i < FS_CACHE_SLOTS && st->inflight < FS_INFLIGHT_MAX; i++) {
        fs_slot_t *s = &st->slots[i];
        while (s->want && st->inflight < FS_INFLIGHT_MAX) {
            unsigned at, n = first_run(s->want, &at);
            int rc = submit(ctx, st, HAL_BLK_READ, i, at, n);
            if (rc == OS_EFULL)
                return;
            fs_mask_t m = (fs_mask_t)(range_mask(at, at + n));
            s->want &= (fs_mask_t)~m;
            if (rc < 0) {
                s->bad = true; /* refused: the request sees OS_EIO */
                st->fetching -= n;
            } else {
                s->reading |= m;
            }
        }
    }
    while (st->wb_phase == 1 || st->wb_phase == 2) {
        if (st->failed_write) {
            for (int i = 0; i < FS_CACHE_SLOTS; i++)
                st->slots[i].wb_data = st->slots[i].wb_meta = 0;
        }
        for (int i = 0; i < FS_CACHE_SLOTS && st->inflight < FS_INFLIGHT_MAX; i++) {
            fs_slot_t *s = &st->slots[i];
            fs_mask_t *w = st->wb_phase == 1 ? &s->wb_data : &s->wb_meta;
            while (*w && st->inflight < FS_INFLIGHT_MAX) {
                unsigned at, n = first_run(*w, &at);
                fs_mask_t m = range_mask(at, at + n);
                if (!(s->dirty & m)) { /* written since: nothing left to do for these */
                    *w &= (fs_mask_t)~m;
                    continue;
                }
                int rc = submit(ctx, st, HAL_BLK_WRITE, i, at, n);
                if (rc == OS_EFULL)
                    return;
                *w &= (fs_mask_t)~m;
                if (rc < 0) {
                    fs_write_failed(ctx, st, s->unit * FS_UNIT_SECTORS + at, rc);
                    continue;
                }
                s->dirty &= (fs_mask_t)~m;
                s->writing++;
                st->wb_writes++;
            }
        }
        if (wb_left(st, st->wb_phase) || st->wb_writes > 0)
            return; /* completions bring us back */
        if (st->wb_phase == 1) {
            st->wb_phase = 2;
            continue;
        }
        if (st->failed_write) {
            wb_finish(ctx, st);
            return;
        }
        if (st->inflight >= FS_INFLIGHT_MAX)
            return;
        hal_blk_req_t r = {.id = req_id(st, 0, ID_FLUSH)};
        int rc = os_device_write(ctx, st->dev, HAL_BLK_FLUSH, &r, sizeof r);
        if (rc == OS_EFULL)
            return;
        if (rc < 0) {
            fs_write_failed(ctx, st, 0, rc);
            wb_finish(ctx, st);
            return;
        }
        st->inflight++;
        st->wb_phase = 3;
    }
}

/* The slot a completion names, checked against the request it echoes; NULL if none. */
static fs_slot_t *done_slot(fs_state_t *st, const hal_blk_req_t *r, fs_mask_t *m)
{
    uint64_t slot = (r->id & ((1ull << ID_EPOCH_SHIFT) - 1)) >> ID_SHIFT;
    if (slot >= FS_CACHE_SLOTS || r->count == 0 || r->count > HAL_BLK_MAX_SECTORS)
        return NULL;
    fs_slot_t *s = &st->slots[slot];
    uint64_t first = s->unit * FS_UNIT_SECTORS;
    if (!s->used || r->sector < first || r->sector + r->count > first + FS_UNIT_SECTORS)
        return NULL;
    unsigned at = (unsigned)(r->sector - first);
    *m = range_mask(at, at + r->count);
    return s;
}

static void read_done(os_ctx_t *ctx, fs_state_t *st, const hal_blk_req_t *r, const void *data,
                      size_t len)
{
    fs_mask_t m;
    fs_slot_t *s = done_slot(st, r, &m);
    if (!s)
        return;
    s->reading &= (fs_mask_t)~m;
    st->fetching -= st->fetching >= r->count ? r->count : st->fetching;
    if (r->status == 0 && len == sizeof *r + (size_t)r->count * HAL_BLK_SECTOR) {
        const uint8_t *d = (const uint8_t *)data + sizeof *r;
        unsigned at = (unsigned)(r->sector - s->unit * FS_UNIT_SECTORS);
        for (unsigned k = at; k < at + r->count; k++) {
            if (s->valid & bit(k))
                continue; /* ours is newer */
            memcpy(s->data + k * HAL_BLK_SECTOR, d + (k - at) * HAL_BLK_SECTOR, HAL_BLK_SECTOR);
            s->valid |= bit(k);
        }
        return;
    }
    s->bad = true;
    os_log(ctx, "blk0: read of sectors %llu+%u failed (%s)", (unsigned long long)r->sector,
           r->count, os_errname(r->status < 0 ? r->status : OS_EIO));
}

static void write_done(os_ctx_t *ctx, fs_state_t *st, const hal_blk_req_t *r)
{
    fs_mask_t m;
    fs_slot_t *s = done_slot(st, r, &m);
    if (s && s->writing > 0)
        s->writing--;
    if (st->wb_writes > 0)
        st->wb_writes--;
    if (r->status < 0)
        fs_write_failed(ctx, st, r->sector, r->status);
}

void fs_blk_done(os_ctx_t *ctx, fs_state_t *st, uint32_t code, const void *data, size_t len)
{
    hal_blk_req_t r;
    if (len < sizeof r)
        return;
    memcpy(&r, data, sizeof r);
    if ((uint16_t)(r.id >> ID_EPOCH_SHIFT) != st->epoch)
        return; /* asked for by an fs task before us */
    if (st->inflight > 0)
        st->inflight--;
    unsigned kind = (unsigned)(r.id & ((1u << ID_SHIFT) - 1));
    if (code == HAL_BLK_FLUSH && kind == ID_FLUSH && st->wb_phase == 3) {
        if (r.status < 0)
            fs_write_failed(ctx, st, 0, r.status);
        wb_finish(ctx, st);
    } else if (code == HAL_BLK_READ && kind == ID_READ) {
        read_done(ctx, st, &r, data, len);
    } else if (code == HAL_BLK_WRITE && kind == ID_WRITE) {
        write_done(ctx, st, &r);
    }
    fs_pump(ctx, st);
    fs_drive(ctx, st);
}
