/* capture.c — capture blocks (raw recorder chunks in the trace file) expanded into events rows. */
#define _GNU_SOURCE /* fallocate */
#include "capture_int.h"

#include <trace/decode.h>

#include <hal/trace.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Format 1, what chunks held before records were encoded (format 2, written
 * now: recorder_int.h), is tr_entry as it lies in memory: a fixed
 * little-endian layout on every host Orrery runs on (x86-64, AArch64). A
 * format 2 block is expanded into the same layout before its records are
 * read, so everything past the scan reads tr_entry. Changing either layout
 * means a new TR_CAPTURE_FORMAT.
 */
_Static_assert(sizeof(tr_entry) == 72, "capture block format 1: 72-byte entries");
_Static_assert(offsetof(tr_entry, gseq) == 24 && offsetof(tr_entry, kind) == 32 &&
                   offsetof(tr_entry, result) == 52 && offsetof(tr_entry, node) == 68,
               "capture block format 1 layout");

const char *const tr_capture_sql =
    "CREATE TABLE IF NOT EXISTS capture(id INTEGER PRIMARY KEY, slot INTEGER NOT NULL,"
    " first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL,"
    " format INTEGER NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL, bad TEXT);"
    "CREATE TABLE IF NOT EXISTS iface_seen(node INTEGER NOT NULL, chan INTEGER NOT NULL,"
    " iface INTEGER NOT NULL, msg INTEGER NOT NULL, PRIMARY KEY(node, chan, iface, msg))"
    " WITHOUT ROWID;";

int tr_capture_path(sqlite3 *db, char *buf, size_t len)
{
    const char *main = sqlite3_db_filename(db, "main");

    if (!main || !main[0] || (size_t)snprintf(buf, len, "%s%s", main, TR_CAPTURE_SUFFIX) >= len)
        return -1;
    return 0;
}

/* The id a capture file's header must carry: meta.capture_id, or 0 when there is none. */
static uint64_t capture_id(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    uint64_t id = 0;

    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'capture_id'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        id = strtoull((const char *)sqlite3_column_text(st, 0), NULL, 16);
    sqlite3_finalize(st);
    return id;
}

int tr_capture_create(sqlite3 *db, char *err, size_t errlen)
{
    unsigned char head[TR_CAPTURE_HEADER] = {0};
    char path[PATH_MAX + 32], hex[32], sql[96];
    uint64_t id = 0;
    int fd;

    if (tr_capture_path(db, path, sizeof(path)) != 0) {
        snprintf(err, errlen, "the capture file's name is too long");
        return -1;
    }
    /* Tells one recording's capture file from another's (a stale one, a file copied in). */
    while (id == 0)
        sqlite3_randomness(sizeof(id), &id);
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id);
    snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES('capture_id', '%s')", hex);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    /* Never over anything: the recording's siblings were cleared (outpath.c), so it is new. */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    memcpy(head, TR_CAPTURE_MAGIC, sizeof(TR_CAPTURE_MAGIC));
    memcpy(head + 16, &id, sizeof(id));
    if (pwrite(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head)) {
        snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

/*
 * Open db's capture file for expansion: the descriptor, or -1 with why (it is
 * missing, unreadable, or another recording's).
 */
static int capture_open(sqlite3 *db, char *why, size_t whylen)
{
    unsigned char head[TR_CAPTURE_HEADER];
    char path[PATH_MAX + 32];
    uint64_t id = capture_id(db), got;
    struct stat sb;
    int fd;

    if (tr_capture_path(db, path, sizeof(path)) != 0) {
        snprintf(why, whylen, "the capture file's name is too long");
        return -1;
    }
    fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS))
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%.300s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
        memcmp(head, TR_CAPTURE_MAGIC, sizeof(TR_CAPTURE_MAGIC)) != 0) {
        snprintf(why, whylen, "%.300s is not a capture file", path);
        close(fd);
        return -1;
    }
    memcpy(&got, head + 16, sizeof(got));
    if (got != id) {
        snprintf(why, whylen,
                 "%.300s is another recording's capture file (id %016llx, not %016llx)", path,
                 (unsigned long long)got, (unsigned long long)id);
        close(fd);
        return -1;
    }
    return fd;
}

/* Format 1: tr_entry after tr_entry, each with its payload padded to 8. */
static int scan_v1(const unsigned char *p, size_t size, uint64_t *count, uint64_t *first,
                   uint64_t *last, char *why, size_t whylen)
{
    uint64_t n = 0, lo = UINT64_MAX, hi = 0;
    size_t off = 0;

    while (off < size) {
        tr_entry e;
        if (size - off < sizeof(e)) {
            snprintf(why, whylen, "a %zu-byte entry header cut at byte %zu of %zu", sizeof(e), off,
                     size);
            return -1;
        }
        memcpy(&e, p + off, sizeof(e));
        if (e.len > TR_CAPTURE_PAYLOAD_MAX || tr_entry_size(e.len) > size - off) {
            snprintf(why, whylen, "entry %llu at byte %zu claims a %u-byte payload past the end",
                     (unsigned long long)n, off, e.len);
            return -1;
        }
        if (e.gseq < lo)
            lo = e.gseq;
        if (e.gseq > hi)
            hi = e.gseq;
        off += tr_entry_size(e.len);
        n++;
    }
    *count = n;
    *first = n ? lo : 0;
    *last = hi;
    return 0;
}

int tr_capture_scan(int format, const unsigned char *p, size_t size, uint64_t *count,
                    uint64_t *first, uint64_t *last, size_t *expanded, char *why, size_t whylen)
{
    uint64_t n = 0, lo = UINT64_MAX, hi = 0;
    size_t off = 0, out = 0;

    if (format == 1) {
        *expanded = size;
        return scan_v1(p, size, count, first, last, why, whylen);
    }
    if (format != TR_CAPTURE_FORMAT) {
        snprintf(why, whylen, "block format %d (this orrery reads 1 and %d)", format,
                 TR_CAPTURE_FORMAT);
        return -1;
    }
    while (off < size) {
        char what[200];
        tr_entry e;
        const unsigned char *payload;
        size_t used = tr_entry_decode(p + off, size - off, &e, &payload, what, sizeof(what));
        if (!used) {
            snprintf(why, whylen, "entry %llu at byte %zu of %zu: %s", (unsigned long long)n, off,
                     size, what);
            return -1;
        }
        if (e.gseq < lo)
            lo = e.gseq;
        if (e.gseq > hi)
            hi = e.gseq;
        off += used;
        out += tr_entry_size(e.len);
        n++;
    }
    *count = n;
    *first = n ? lo : 0;
    *last = hi;
    *expanded = out;
    return 0;
}

/* A format 2 block that scanned clean, as format 1 entries at out (its expanded size). */
static void expand_v2(const unsigned char *p, size_t size, unsigned char *out)
{
    for (size_t off = 0; off < size;) {
        tr_entry e;
        const unsigned char *payload;
        size_t used = tr_entry_decode(p + off, size - off, &e, &payload, NULL, 0);
        size_t pad = tr_entry_size(e.len) - sizeof(e) - e.len;

        memcpy(out, &e, sizeof(e));
        memcpy(out + sizeof(e), payload, e.len);
        memset(out + sizeof(e) + e.len, 0, pad);
        out += tr_entry_size(e.len);
        off += used;
    }
}

/* ---- expansion -------------------------------------------------------------------------- */

#define TR_EVENT_COLS 15

typedef struct tr_block {
    unsigned char *p;
    size_t cap; /* bytes at p: kept from step to step (fresh pages fault) */
    sqlite3_int64 id;
    uint64_t offset, size; /* where it lies in the capture file */
} tr_block;

typedef struct tr_key {
    uint64_t seq;
    const tr_entry *e;
} tr_key;

/* A (node, chan, iface, msg) a step saw: one iface_seen row, in an open-addressed set. */
typedef struct tr_iface_use {
    uint32_t node, chan, iface;
    uint8_t msg, used;
} tr_iface_use;

struct tr_expander {
    sqlite3 *db;
    sqlite3_stmt *ins_event, *ins_events, *ins_spawn, *ins_exit, *ins_chan, *sel, *del, *mark;
    sqlite3_stmt *ins_seen; /* NULL: a file from before iface_seen (finish scans events) */
    tr_iface_use *seen;     /* the step's distinct interface uses, capseen a power of 2 */
    size_t nseen, capseen;
    tr_iface_use last; /* the last one noted: most records repeat it */
    tr_key *keys;
    size_t nkeys, capkeys;
    tr_block *bufs; /* the blocks of the step being expanded */
    size_t nbufs, capbufs;
    unsigned char *raw; /* a format 2 block as read, before it is expanded into bufs */
    size_t rawcap;
    int fd;           /* the capture file, once opened; -1 before or if it cannot be */
    bool fd_tried;    /* opened (or failed to) */
    char fd_why[400]; /* why it could not be */
};

static void bind_event(sqlite3_stmt *st, int base, const tr_entry *e)
{
    sqlite3_bind_int64(st, base + 1, (sqlite3_int64)e->gseq);
    sqlite3_bind_int64(st, base + 2, (sqlite3_int64)e->time_ns);
    sqlite3_bind_int64(st, base + 3, e->task);
    sqlite3_bind_int64(st, base + 4, e->kind);
    sqlite3_bind_int64(st, base + 5, e->chan);
    sqlite3_bind_int64(st, base + 6, e->peer);
    sqlite3_bind_int64(st, base + 7, e->iface);
    sqlite3_bind_int64(st, base + 8, e->type);
    sqlite3_bind_int64(st, base + 9, e->result);
    sqlite3_bind_int64(st, base + 10, e->len);
    sqlite3_bind_int64(st, base + 11, e->nhandles);
    sqlite3_bind_int64(st, base + 12, (sqlite3_int64)e->arg);
    if (e->len)
        sqlite3_bind_blob(st, base + 13, e + 1, (int)e->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, base + 13);
    sqlite3_bind_int64(st, base + 14, e->node);
    sqlite3_bind_int64(st, base + 15, (sqlite3_int64)e->seq);
}

/* The tasks and channels rows a SPAWN, EXIT or CHAN_CREATE record makes. */
static int write_side(tr_expander *x, const tr_entry *e)
{
    sqlite3_stmt *st;
    int rc;

    switch (e->kind) {
    case HAL_TR_SPAWN:
        st = x->ins_spawn;
        sqlite3_bind_int64(st, 1, e->task);
        if (e->len)
            sqlite3_bind_text(st, 2, (const char *)(e + 1),
                              (int)strnlen((const char *)(e + 1), e->len), SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)e->arg);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)e->gseq);
        sqlite3_bind_int64(st, 5, e->node);
        break;
    case HAL_TR_EXIT:
        st = x->ins_exit;
        sqlite3_bind_int64(st, 1, e->task);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)e->gseq);
        sqlite3_bind_int64(st, 3, e->result);
        sqlite3_bind_int64(st, 4, e->node);
        break;
    case HAL_TR_CHAN_CREATE:
        st = x->ins_chan;
        for (int side = 0; side < 2; side++) {
            sqlite3_bind_int64(st, 1, side ? e->peer : e->chan);
            sqlite3_bind_int64(st, 2, side ? e->chan : e->peer);
            sqlite3_bind_int64(st, 3, e->task);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)e->gseq);
            sqlite3_bind_int64(st, 5, e->iface);
            sqlite3_bind_int64(st, 6, e->node);
            rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                return -1;
        }
        return 0;
    default:
        return 0;
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static size_t iface_hash(const tr_iface_use *u)
{
    uint64_t h =
        ((uint64_t)u->node << 40) ^ ((uint64_t)u->chan << 8) ^ ((uint64_t)u->iface << 20) ^ u->msg;
    return (size_t)((h * 0x9E3779B97F4A7C15ull) >> 32);
}

static bool iface_same(const tr_iface_use *a, const tr_iface_use *b)
{
    return a->node == b->node && a->chan == b->chan && a->iface == b->iface && a->msg == b->msg;
}

/*
 * Note the interface a record names, for iface_seen: what finish needs of the
 * events (each channel's interface, the interfaces to name) without scanning
 * them, kept as the events are expanded (a cut recording's too).
 */
static int note_iface(tr_expander *x, const tr_entry *e)
{
    tr_iface_use u = {e->node, e->chan, e->iface,
                      e->kind == HAL_TR_SEND || e->kind == HAL_TR_DELIVER, 1};

    if (!x->ins_seen || e->iface == 0 || (x->last.used && iface_same(&u, &x->last)))
        return 0;
    x->last = u;
    if (2 * (x->nseen + 1) > x->capseen) {
        size_t n = x->capseen ? 2 * x->capseen : 64;
        tr_iface_use *t = calloc(n, sizeof(*t));
        if (!t)
            return -1;
        for (size_t i = 0; i < x->capseen; i++)
            if (x->seen[i].used)
                for (size_t j = iface_hash(&x->seen[i]) & (n - 1);; j = (j + 1) & (n - 1))
                    if (!t[j].used) {
                        t[j] = x->seen[i];
                        break;
                    }
        free(x->seen);
        x->seen = t;
        x->capseen = n;
    }
    for (size_t j = iface_hash(&u) & (x->capseen - 1);; j = (j + 1) & (x->capseen - 1)) {
        if (!x->seen[j].used) {
            x->seen[j] = u;
            x->nseen++;
            return 0;
        }
        if (iface_same(&x->seen[j], &u))
            return 0;
    }
}

/* The step's interface uses into iface_seen (in its transaction). */
static int write_seen(tr_expander *x)
{
    int rc = SQLITE_DONE;

    for (size_t i = 0; i < x->capseen && x->nseen; i++) {
        const tr_iface_use *u = &x->seen[i];
        if (!u->used)
            continue;
        sqlite3_bind_int64(x->ins_seen, 1, u->node);
        sqlite3_bind_int64(x->ins_seen, 2, u->chan);
        sqlite3_bind_int64(x->ins_seen, 3, u->iface);
        sqlite3_bind_int64(x->ins_seen, 4, u->msg);
        rc = sqlite3_step(x->ins_seen);
        sqlite3_reset(x->ins_seen);
        if (rc != SQLITE_DONE)
            break;
    }
    if (x->capseen)
        memset(x->seen, 0, x->capseen * sizeof(*x->seen));
    x->nseen = 0;
    x->last.used = 0;
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Insert event i of the sorted step: TR_ROWS rows per statement where a full group starts. */
static int write_event(tr_expander *x, size_t i, size_t n)
{
    sqlite3_stmt *st;
    int rc;

    if (i % TR_ROWS == 0 && n - i >= TR_ROWS) {
        st = x->ins_events;
        for (int k = 0; k < TR_ROWS; k++)
            bind_event(st, k * TR_EVENT_COLS, x->keys[i + (size_t)k].e);
    } else if (i % TR_ROWS == 0 || n - (i - i % TR_ROWS) < TR_ROWS) {
        st = x->ins_event;
        bind_event(st, 0, x->keys[i].e);
    } else {
        return 0; /* inserted with its group */
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_CONSTRAINT ? 0 : -1;
}

static int cmp_key(const void *a, const void *b)
{
    uint64_t x = ((const tr_key *)a)->seq, y = ((const tr_key *)b)->seq;
    return x < y ? -1 : x > y;
}

void tr_expander_free(tr_expander *x)
{
    if (!x)
        return;
    sqlite3_stmt *sts[] = {x->ins_event, x->ins_events, x->ins_spawn, x->ins_exit, x->ins_chan,
                           x->sel,       x->del,        x->mark,      x->ins_seen};
    for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++)
        sqlite3_finalize(sts[i]);
    for (size_t i = 0; i < x->capbufs; i++)
        free(x->bufs[i].p);
    if (x->fd >= 0)
        close(x->fd);
    free(x->bufs);
    free(x->raw);
    free(x->keys);
    free(x->seen);
    free(x);
}

tr_expander *tr_expander_new(sqlite3 *db)
{
    tr_expander *x = calloc(1, sizeof(*x));
    char multi[64 + TR_ROWS * 40];
    size_t off;

    if (!x)
        return NULL;
    x->db = db;
    x->fd = -1;
    off = (size_t)snprintf(multi, sizeof(multi), "INSERT OR IGNORE INTO events VALUES");
    for (int k = 0; k < TR_ROWS && off < sizeof(multi); k++)
        off += (size_t)snprintf(multi + off, sizeof(multi) - off,
                                "%s(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", k ? "," : "");
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO events VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &x->ins_event, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, multi, -1, &x->ins_events, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO tasks(id, name, parent, spawned_seq, node)"
                           " VALUES(?1,?2,?3,?4,?5) ON CONFLICT(node, id) DO UPDATE SET"
                           " name=excluded.name, parent=excluded.parent,"
                           " spawned_seq=excluded.spawned_seq",
                           -1, &x->ins_spawn, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO tasks(id, exit_seq, exit_status, node) VALUES(?1,?2,?3,?4)"
                           " ON CONFLICT(node, id) DO UPDATE SET exit_seq=excluded.exit_seq,"
                           " exit_status=excluded.exit_status",
                           -1, &x->ins_exit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO channels(endpoint, peer, creator, created_seq,"
                           " iface, node) VALUES(?,?,?,?,?,?)",
                           -1, &x->ins_chan, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(
            db,
            "SELECT id, slot, first_seq, last_seq, count, format, offset, size FROM capture"
            " WHERE bad IS NULL AND id > ?1 ORDER BY id",
            -1, &x->sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "DELETE FROM capture WHERE id = ?1", -1, &x->del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE capture SET bad = ?2 WHERE id = ?1", -1, &x->mark, NULL) !=
            SQLITE_OK) {
        tr_expander_free(x);
        return NULL;
    }
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO iface_seen VALUES(?,?,?,?)", -1, &x->ins_seen,
                           NULL) != SQLITE_OK)
        x->ins_seen = NULL;
    return x;
}

static int add_key(tr_expander *x, const tr_entry *e)
{
    if (x->nkeys == x->capkeys) {
        size_t n = x->capkeys ? 2 * x->capkeys : 16384;
        tr_key *k = realloc(x->keys, n * sizeof(*k));
        if (!k)
            return -1;
        x->keys = k;
        x->capkeys = n;
    }
    x->keys[x->nkeys].seq = e->gseq;
    x->keys[x->nkeys].e = e;
    x->nkeys++;
    return 0;
}

/* *p (cap bytes) holds at least size bytes, at least a chunk's: false if it cannot. */
static bool buf_room(unsigned char **p, size_t *cap, size_t size)
{
    if (*cap < size || !*p) {
        size_t n = size > TR_CHUNK ? size : TR_CHUNK;
        unsigned char *q = realloc(*p, n);
        if (!q)
            return false;
        *p = q;
        *cap = n;
    }
    return true;
}

/* The step's next block, with room for size bytes (memory kept from earlier steps). */
static tr_block *step_block(tr_expander *x, size_t size)
{
    tr_block *b;

    if (x->nbufs == x->capbufs) {
        size_t nb = x->capbufs ? 2 * x->capbufs : 16;
        if (!(b = realloc(x->bufs, nb * sizeof(*b))))
            return NULL;
        memset(b + x->capbufs, 0, (nb - x->capbufs) * sizeof(*b));
        x->bufs = b;
        x->capbufs = nb;
    }
    b = &x->bufs[x->nbufs];
    return buf_room(&b->p, &b->cap, size) ? b : NULL;
}

static void step_reset(tr_expander *x)
{
    x->nbufs = 0; /* their memory serves the next step */
    x->nkeys = 0;
    if (x->capseen)
        memset(x->seen, 0, x->capseen * sizeof(*x->seen));
    x->nseen = 0;
    x->last.used = 0;
}

/* size bytes at offset of the capture file: 0, or -1 with why (the file ends inside the block). */
static int read_block(int fd, unsigned char *p, size_t size, uint64_t offset, char *why,
                      size_t whylen)
{
    size_t done = 0;

    while (done < size) {
        ssize_t r = pread(fd, p + done, size - done, (off_t)(offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(why, whylen, "%s reading bytes %llu..%llu of the capture file",
                     r < 0 ? strerror(errno) : "the file ends", (unsigned long long)(offset + done),
                     (unsigned long long)(offset + size));
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, const char *a)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a);
}

/*
 * One step: the next blocks (in the order they were captured, at least
 * limit records unless fewer are left) become events rows in seq
 * order, and leave the capture table in the same transaction, so that a
 * block is always either captured or expanded, never both or neither. Slots
 * overlap in seq: sorting the step's records merges them (each slot's are
 * already in order), and rows are keyed by seq, so a record of a later step
 * with a smaller seq still lands in its place. A block that does not parse is
 * marked bad (kept, its reason in capture.bad) and its records counted.
 * Returns 1 if it expanded something, 0 if nothing was left, -1 on an error.
 */
static int expand_step(tr_expander *x, size_t limit, tr_expand_result *res, char *err,
                       size_t errlen)
{
    sqlite3_int64 after = 0;
    int rc;
    size_t i, n;
    bool sorted = true;
    uint64_t blocks = 0;

    step_reset(x);
    if (sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto sqlfail;
    for (;;) {
        char why[480] = "";
        sqlite3_int64 bad_id = 0, bad_slot = 0;
        uint64_t count = 0, first = 0, last = 0;

        sqlite3_bind_int64(x->sel, 1, after);
        while (x->nkeys < limit && (rc = sqlite3_step(x->sel)) == SQLITE_ROW) {
            sqlite3_int64 id = sqlite3_column_int64(x->sel, 0);
            int format = sqlite3_column_int(x->sel, 5);
            sqlite3_int64 offset = sqlite3_column_int64(x->sel, 6);
            sqlite3_int64 ssize = sqlite3_column_int64(x->sel, 7);
            size_t size = (size_t)ssize;
            tr_block *b = NULL;
            uint64_t c2 = 0, f2 = 0, l2 = 0;
            size_t expanded = 0;

            after = id;
            count = (uint64_t)sqlite3_column_int64(x->sel, 4);
            first = (uint64_t)sqlite3_column_int64(x->sel, 2);
            last = (uint64_t)sqlite3_column_int64(x->sel, 3);
            if (!x->fd_tried) {
                x->fd_tried = true;
                x->fd = capture_open(x->db, x->fd_why, sizeof(x->fd_why));
            }
            if (format != 1 && format != TR_CAPTURE_FORMAT)
                snprintf(why, sizeof(why), "block format %d (this orrery reads 1 and %d)", format,
                         TR_CAPTURE_FORMAT);
            else if (x->fd < 0)
                snprintf(why, sizeof(why), "%s", x->fd_why);
            else if (offset < TR_CAPTURE_HEADER || ssize < 0 ||
                     ssize > (sqlite3_int64)TR_CAPTURE_BLOCK_MAX)
                snprintf(why, sizeof(why), "its row says %lld bytes at offset %lld",
                         (long long)ssize, (long long)offset);
            else if (format == 1 && !(b = step_block(x, size)))
                goto oom;
            else if (format != 1 && !buf_room(&x->raw, &x->rawcap, size))
                goto oom;
            else if (read_block(x->fd, b ? b->p : x->raw, size, (uint64_t)offset, why,
                                sizeof(why)) != 0)
                ;
            else if (tr_capture_scan(format, b ? b->p : x->raw, size, &c2, &f2, &l2, &expanded, why,
                                     sizeof(why)) != 0)
                ;
            else if (c2 != count || (count && (f2 != first || l2 != last)))
                snprintf(why, sizeof(why),
                         "it holds %llu records, seqs %llu..%llu; its row says %llu, %llu..%llu",
                         (unsigned long long)c2, (unsigned long long)f2, (unsigned long long)l2,
                         (unsigned long long)count, (unsigned long long)first,
                         (unsigned long long)last);
            if (why[0]) { /* its memory (if any) stays free for the next block */
                bad_id = id;
                bad_slot = sqlite3_column_int64(x->sel, 1);
                break;
            }
            if (!b) { /* format 2: its entries as the expander reads them */
                if (!(b = step_block(x, expanded)))
                    goto oom;
                expand_v2(x->raw, size, b->p);
            }
            b->id = id;
            b->offset = (uint64_t)offset;
            b->size = size;
            x->nbufs++;
            for (size_t off = 0; off < expanded;) {
                const tr_entry *e = (const tr_entry *)(b->p + off);
                if (add_key(x, e) != 0)
                    goto oom;
                off += tr_entry_size(e->len);
            }
        }
        sqlite3_reset(x->sel);
        if (!why[0])
            break;
        /* Kept, with its reason, for whoever looks; its records are counted, never guessed at. */
        sqlite3_bind_int64(x->mark, 1, bad_id);
        sqlite3_bind_text(x->mark, 2, why, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(x->mark);
        sqlite3_reset(x->mark);
        if (rc != SQLITE_DONE)
            goto sqlfail;
        res->bad_blocks++;
        res->bad_records += count;
        if (!res->first_bad[0])
            snprintf(res->first_bad, sizeof(res->first_bad),
                     "capture block %lld (slot %lld, seqs %llu..%llu, %llu records): %s",
                     (long long)bad_id, (long long)bad_slot, (unsigned long long)first,
                     (unsigned long long)last, (unsigned long long)count, why);
    }
    for (i = 0; i < x->nbufs; i++) {
        sqlite3_bind_int64(x->del, 1, x->bufs[i].id);
        rc = sqlite3_step(x->del);
        sqlite3_reset(x->del);
        if (rc != SQLITE_DONE)
            goto sqlfail;
    }
    blocks = x->nbufs;
    n = x->nkeys;
    for (i = 1; i < n && sorted; i++)
        sorted = x->keys[i - 1].seq < x->keys[i].seq;
    if (!sorted)
        qsort(x->keys, n, sizeof(*x->keys), cmp_key);
    for (i = 0; i < n; i++) {
        if (write_event(x, i, n) != 0 || write_side(x, x->keys[i].e) != 0)
            goto sqlfail;
        if (note_iface(x, x->keys[i].e) != 0)
            goto oom;
    }
    if (write_seen(x) != 0 || sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto sqlfail;
    /*
     * Expanded for good: the file's blocks give their disk space back (a long
     * recording's capture file stays about as large as what waits). Where
     * holes cannot be punched, the space comes back when the file goes.
     */
    for (i = 0; i < x->nbufs && x->fd >= 0; i++)
        (void)fallocate(x->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)x->bufs[i].offset,
                        (off_t)x->bufs[i].size);
    res->records += n;
    res->blocks += blocks;
    step_reset(x);
    return blocks || n ? 1 : 0;
oom:
    sqlite3_reset(x->sel);
    sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
    seterr(err, errlen, "expanding the capture table: %s", "out of memory");
    step_reset(x);
    return -1;
sqlfail:
    seterr(err, errlen, "expanding the capture table: %s", sqlite3_errmsg(x->db));
    sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
    step_reset(x);
    return -1;
}

int tr_expand_all(tr_expander *x, tr_expand_result *res, char *err, size_t errlen)
{
    int rc;

    while ((rc = expand_step(x, TR_EXPAND_ROWS, res, err, errlen)) == 1)
        ;
    return rc;
}

int tr_expand_some(tr_expander *x, size_t limit, tr_expand_result *res, char *err, size_t errlen)
{
    return expand_step(x, limit, res, err, errlen);
}

/* ---- the finishing steps close (and repair) take ---------------------------------------- */

/* Name the interfaces the events mention, from the decoder's registry. */
static int fill_interfaces(sqlite3 *db, bool seen)
{
    sqlite3_stmt *sel = NULL, *ins = NULL;
    int rc = SQLITE_OK;

    if (sqlite3_prepare_v2(db,
                           seen ? "SELECT DISTINCT iface FROM iface_seen"
                                : "SELECT DISTINCT iface FROM events WHERE iface <> 0",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO interfaces VALUES(?, ?)", -1, &ins, NULL) !=
            SQLITE_OK) {
        rc = SQLITE_ERROR;
        goto out;
    }
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        uint32_t id = (uint32_t)sqlite3_column_int64(sel, 0);
        const char *name = trace_iface_name(id);
        if (!name)
            continue;
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_text(ins, 2, name, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            rc = SQLITE_ERROR;
            break;
        }
        sqlite3_reset(ins);
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    return rc == SQLITE_OK ? 0 : -1;
}

/* The file keeps iface_seen (written since the recorder made it, every expansion step). */
static bool has_seen(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    bool yes = sqlite3_prepare_v2(db,
                                  "SELECT 1 FROM sqlite_master WHERE type = 'table' AND"
                                  " name = 'iface_seen'",
                                  -1, &st, NULL) == SQLITE_OK &&
               sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return yes;
}

int tr_finish_tables(sqlite3 *db, bool nodes, bool *capture_done, char *err, size_t errlen)
{
    char *msg = NULL;
    bool seen = has_seen(db);
    /*
     * The indexes exist from the start in a file this recorder made (kept up
     * as the events are expanded): these build them only in an older file.
     * Each channel's interface comes from iface_seen, or from a scan of the
     * events in a file without it.
     */
    char sql[400];
    snprintf(sql, sizeof(sql),
             "CREATE INDEX IF NOT EXISTS events_task ON events(task);"
             "UPDATE channels SET iface = m.iface FROM (SELECT node, chan, max(iface) AS iface"
             " FROM %s GROUP BY node, chan) AS m WHERE channels.node = m.node AND"
             " channels.endpoint = m.chan AND channels.iface = 0;",
             seen ? "iface_seen WHERE msg = 1" : "events WHERE iface <> 0 AND kind IN (4, 5)");
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc == SQLITE_OK && nodes)
        rc = sqlite3_exec(db, "CREATE INDEX IF NOT EXISTS events_node ON events(node, task)", NULL,
                          NULL, &msg);
    /* Every block expanded (none kept as bad): the table has done its work. */
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        int left = -1;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM capture", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            left = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (left == 0)
            rc = sqlite3_exec(db, "DROP TABLE capture", NULL, NULL, &msg);
        *capture_done = left == 0 && rc == SQLITE_OK;
    }
    if (rc == SQLITE_OK && fill_interfaces(db, seen) != 0)
        rc = SQLITE_ERROR;
    /* Its work is done (a block kept as bad is never expanded: nothing more to note). */
    if (rc == SQLITE_OK && seen)
        rc = sqlite3_exec(db, "DROP TABLE iface_seen", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        seterr(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* ---- a file left with captured blocks ----------------------------------------------------- */

int trace_capture_pending(const char *path, uint64_t *blocks)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = 0;

    *blocks = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM capture WHERE bad IS NULL AND EXISTS (SELECT 1"
                           " FROM meta WHERE key = 'format' AND value = 'orrery-trace')",
                           -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *blocks = (uint64_t)sqlite3_column_int64(st, 0);
        else
            ret = -1;
    } /* no capture table: written before it existed, or nothing pending */
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

int trace_capture_repair(const char *path, trace_repair_result *out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    tr_expander *x = NULL;
    tr_expand_result res = {0};
    sqlite3_stmt *st = NULL;
    char msg[400] = "";
    int nodes = 0, ret = -1;
    bool capture_done = false;
    char capture[PATH_MAX + 32] = "";

    memset(out, 0, sizeof(*out));
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "trace %s: cannot open it for writing: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM capture", -1, &st, NULL) != SQLITE_OK) {
        ret = 0; /* no capture table: nothing to do */
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!(x = tr_expander_new(db))) {
        snprintf(err, errlen, "trace %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    if (tr_expand_all(x, &res, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "trace %s: %s", path, msg);
        goto out;
    }
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM nodes", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        nodes = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    /* The run row: records of bad blocks are not in events; a repaired file is never complete. */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        tr_finish_tables(db, nodes > 0, &capture_done, msg, sizeof(msg)) != 0 ||
        sqlite3_prepare_v2(db,
                           "UPDATE run SET dropped = dropped + ?1, complete = 0 WHERE id = 1"
                           " AND ?1 > 0",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "trace %s: %s", path, msg[0] ? msg : sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)res.bad_records);
    if (sqlite3_step(st) != SQLITE_DONE ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "trace %s: %s", path, sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    /* Every block is in events rows: the capture file has done its work (if it is this one's). */
    if (capture_done && tr_capture_path(db, capture, sizeof(capture)) == 0) {
        char why[8];
        int fd = capture_open(db, why, sizeof(why));
        if (fd >= 0) {
            close(fd);
            unlink(capture);
        }
    }
    out->records = res.records;
    out->blocks = res.blocks;
    out->bad_blocks = res.bad_blocks;
    out->bad_records = res.bad_records;
    snprintf(out->first_bad, sizeof(out->first_bad), "%s", res.first_bad);
    ret = 0;
out:
    sqlite3_finalize(st);
    tr_expander_free(x);
    sqlite3_close(db);
    return ret;
}
