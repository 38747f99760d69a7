/* fsstress.c — a seeded file-system workload over the fs interface that says, line by line, what
 * must survive a power cut, keeps the same facts in a ledger on the volume and, started on a
 * volume that has a ledger (after a reboot), checks them itself (manifest: reach=fs,init). */
#include <image.h>
#include <iface/fs.h>
#include <iface/init_client.h>

#include <stdio.h>
#include <string.h>

/*
 * The workload: NDIRS directories of NFILES files (/d1/f0 .. /d3/f3), each op one of write,
 * append, fsync, rename, truncate, unlink or sync, drawn from a generator seeded by
 * os_random (so by the simulator's seed). fsstress keeps a copy of every file, so it knows
 * what each holds. The facts it states, on the console and in /fsstress.ledger:
 *
 *   fsynced PATH len N crc32 0xC   the fsync of PATH answered 0: PATH holds those N bytes
 *                                  (CRC-32, as zlib's) on the disk, whatever happens next
 *                                  (said with "(sync)" of every file after a sync too);
 *   superseded PATH (why)          PATH is about to change (write, truncate, rename, unlink):
 *                                  the previous fact about it no longer binds. Said, and the
 *                                  ledger's record of it fsynced, BEFORE the change is sent,
 *                                  so a fact without a later `superseded` was never touched.
 *
 * A checker (pytest/test_sim_fs.py) requires every fact not superseded after a power cut.
 * Started with a ledger on the volume, fsstress reads it, checks each fact the same way,
 * logs `verified N file(s), M failed` and shuts the OS down with status 0 (all held) or 1.
 * An error from the server is logged (`error PATH OP: message`); the file is left alone from
 * then on (its contents are unknown), and nothing about it is claimed again. Arg `ops=N`: stop
 * after N ops, sync and shut down with 0 (a clean run); without it, run until the power goes.
 */
enum {
    NDIRS = 3,
    NFILES = 4, /* NDIRS and NFILES below 10: path_of writes one digit each */
    NF = NDIRS * NFILES,
    FILE_MAX = 20 * 1024,   /* past 12 KiB: indirect blocks on a 1 KiB-block volume */
    REC = 64,               /* a ledger record */
    REC_MAGIC = 0x4c535346, /* "FSSL" */
    RECS_PER_READ = FS_DATA_MAX / REC,
    ACTS_MAX = 16,
    PATH_LEN = 16, /* "/dD/fF" and its NUL, in a ledger record too */
    REQ_FS = 1,
    REQ_SHUTDOWN = 2,
    K_FSYNCED = 1,
    K_SUPERSEDED = 2,
};

typedef enum act_kind {
    A_MKDIR = 1, /* path; OS_EEXIST is fine */
    A_OPEN,      /* path, flags: the file channel */
    A_WRITE,     /* file fi's bytes [off, off + len) from its copy, in FS_WRITE_MAX pieces */
    A_TRUNC,     /* size */
    A_FSYNC,     /* the file channel */
    A_CLOSE,     /* the file channel (no answer) */
    A_UNLINK,    /* path */
    A_RENAME,    /* path -> path2 */
    A_SYNC,
    A_CLAIM,  /* log `fsynced` for fi, then write its record (no request of its own) */
    A_LWRITE, /* write the record in `rec` at the ledger's end */
    A_LFSYNC, /* fsync the ledger */
    A_READ,   /* verify: read [off, off + len) of the file channel, crc as we go */
    A_LREAD,  /* verify: read the ledger from off */
} act_kind_t;

typedef struct act {
    act_kind_t kind;
    int fi;
    uint32_t flags;
    uint64_t off, len;
    char path[PATH_LEN], path2[PATH_LEN];
    uint8_t rec[REC];
} act_t;

typedef struct shadow {
    bool exists;
    bool broken;  /* an op on it failed: contents unknown, left alone */
    bool claimed; /* a `fsynced` fact binds */
    uint32_t len;
    uint8_t data[FILE_MAX];
} shadow_t;

typedef struct expect {
    bool required;
    uint32_t len, crc;
} expect_t;

typedef enum phase {
    P_CONNECT = 0, /* waiting for init's connect to fs */
    P_PROBE,       /* opening /fsstress.ledger to read: there means verify */
    P_CREATE,      /* creating it: a fresh volume, stress it */
    P_STRESS,
    P_VERIFY,
} phase_t;

typedef struct fsstress_state {
    os_handle_t fs, ledger, file;
    phase_t phase;
    uint32_t req;
    uint64_t rng;
    uint32_t crc_table[256];
    bool limited; /* arg ops=N */
    uint64_t ops_max, ops, fsyncs, errors;
    uint64_t lrecs;       /* records in the ledger */
    bool done;            /* no more ops */
    bool stopping;        /* shutdown asked */
    uint32_t sync_claims; /* files a sync made durable, to claim (a bit per file) */
    /* the op in progress: a list of actions, run one request at a time */
    act_t acts[ACTS_MAX];
    size_t nacts, cur;
    uint64_t sent; /* A_WRITE / A_READ: bytes of the current piece */
    uint32_t crc;  /* A_READ: running CRC */
    int verify_fi; /* verify: the file being checked */
    uint32_t verified, failed;
    bool ledger_end;      /* verify: met the first record that is not whole */
    uint32_t ledger_hole; /* verify: a whole record past that one (its seq), or 0 */
    expect_t expect[NF];
    shadow_t files[NF];
    union {
        fs_write_t write;
        fs_open_t open;
        fs_rename_t rename;
    } m;
} fsstress_state_t;

static uint64_t rnd(fsstress_state_t *st)
{
    uint64_t x = st->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint32_t crc_update(const fsstress_state_t *st, uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = st->crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void path_of(int fi, char *out)
{
    /* NDIRS and NFILES below 10: one digit each */
    out[0] = '/', out[1] = 'd', out[2] = (char)('1' + fi / NFILES), out[3] = '/', out[4] = 'f';
    out[5] = (char)('0' + fi % NFILES);
    memset(out + 6, 0, PATH_LEN - 6);
}

static act_t *add(fsstress_state_t *st, act_kind_t kind, int fi)
{
    act_t *a = &st->acts[st->nacts++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->fi = fi;
    if (fi >= 0)
        path_of(fi, a->path);
    return a;
}

/* A ledger record: magic, seq, kind, path, len, crc, then a CRC of the record itself. */
static void add_record(fsstress_state_t *st, int kind, int fi, uint32_t len, uint32_t crc)
{
    act_t *a = add(st, A_LWRITE, fi);
    uint32_t w[4] = {REC_MAGIC, (uint32_t)st->lrecs + 1, (uint32_t)kind, len};
    memcpy(a->rec, w, sizeof w);
    memcpy(a->rec + 16, &crc, 4);
    memcpy(a->rec + 20, a->path, PATH_LEN);
    uint32_t self = crc_update(st, 0, a->rec, REC - 4);
    memcpy(a->rec + REC - 4, &self, 4);
    a->off = st->lrecs++ * REC;
    add(st, A_LFSYNC, -1);
}

/* Before fi changes: the fact about it stops binding, on the console and durably. */
static void supersede(os_ctx_t *ctx, fsstress_state_t *st, int fi, const char *why)
{
    shadow_t *f = &st->files[fi];
    if (!f->claimed)
        return;
    char p[PATH_LEN];
    path_of(fi, p);
    os_log(ctx, "superseded %s (%s)", p, why);
    f->claimed = false;
    add_record(st, K_SUPERSEDED, fi, 0, 0);
}

/* ---- the ops ------------------------------------------------------------------------------ */

/* Fill [off, off + len) of fi's copy with fresh bytes, growing it (a hole reads as zeros). */
static void scribble(fsstress_state_t *st, shadow_t *f, uint32_t off, uint32_t len)
{
    if (off > f->len)
        memset(f->data + f->len, 0, off - f->len);
    for (uint32_t i = 0; i < len; i++)
        f->data[off + i] = (uint8_t)(rnd(st) >> 24);
    if (off + len > f->len)
        f->len = off + len;
}

static int pick_healthy(fsstress_state_t *st)
{
    for (int tries = 0; tries < 2 * NF; tries++) {
        int fi = (int)(rnd(st) % NF);
        if (!st->files[fi].broken)
            return fi;
    }
    return -1;
}

/* Plan the next op into acts. false: nothing left to do. A ledger record is numbered when it
 * is planned, so nothing may be planned before a `return plan_op` (it would be dropped). */
static bool plan_op(os_ctx_t *ctx, fsstress_state_t *st)
{
    OS_ASSERT(ctx, st->nacts == 0 || st->cur == st->nacts);
    st->nacts = st->cur = 0;
    int fi = pick_healthy(st);
    if (fi < 0)
        return false;
    shadow_t *f = &st->files[fi];
    unsigned dice = (unsigned)(rnd(st) % 100);
    if (!f->exists || dice < 25 || (dice < 45 && f->len == 0)) {
        /* write somewhere in (or just past) the file */
        supersede(ctx, st, fi, "write");
        uint32_t off = f->len ? (uint32_t)(rnd(st) % (f->len + 512)) : 0;
        uint32_t len = 1 + (uint32_t)(rnd(st) % 6000);
        if (off + len > FILE_MAX)
            len = off < FILE_MAX ? FILE_MAX - off : 0;
        if (len == 0)
            off = 0, len = 1 + (uint32_t)(rnd(st) % 100);
        act_t *a = add(st, A_OPEN, fi);
        a->flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT;
        a = add(st, A_WRITE, fi);
        a->off = off;
        a->len = len;
        add(st, A_CLOSE, fi);
        f->exists = true;
        scribble(st, f, off, len);
    } else if (dice < 45) {
        uint32_t len = 1 + (uint32_t)(rnd(st) % 3000);
        if (f->len + len > FILE_MAX)
            len = FILE_MAX - f->len;
        if (len == 0)
            return plan_op(ctx, st); /* before any record is planned: a re-plan drops them */
        supersede(ctx, st, fi, "append");
        act_t *a = add(st, A_OPEN, fi);
        a->flags = FS_O_WRITE | FS_O_APPEND;
        a = add(st, A_WRITE, fi);
        a->off = f->len;
        a->len = len;
        add(st, A_CLOSE, fi);
        scribble(st, f, f->len, len);
    } else if (dice < 70) {
        add(st, A_OPEN, fi)->flags = FS_O_READ;
        add(st, A_FSYNC, fi);
        add(st, A_CLOSE, fi);
        add(st, A_CLAIM, fi);
    } else if (dice < 78) {
        int to = pick_healthy(st);
        if (to < 0 || to == fi)
            return plan_op(ctx, st);
        supersede(ctx, st, fi, "renamed away");
        supersede(ctx, st, to, "renamed over");
        act_t *a = add(st, A_RENAME, fi);
        path_of(to, a->path2);
        shadow_t *t = &st->files[to];
        t->exists = true;
        t->len = f->len;
        memcpy(t->data, f->data, f->len);
        f->exists = false;
        f->len = 0;
    } else if (dice < 88) {
        supersede(ctx, st, fi, "truncate");
        uint32_t size = (uint32_t)(rnd(st) % (f->len + 4096));
        if (size > FILE_MAX)
            size = FILE_MAX;
        add(st, A_OPEN, fi)->flags = FS_O_WRITE;
        add(st, A_TRUNC, fi)->len = size;
        add(st, A_CLOSE, fi);
        if (size > f->len)
            memset(f->data + f->len, 0, size - f->len);
        f->len = size;
    } else if (dice < 95) {
        supersede(ctx, st, fi, "unlink");
        add(st, A_UNLINK, fi);
        f->exists = false;
        f->len = 0;
    } else {
        add(st, A_SYNC, -1);
    }
    return true;
}

/* ---- running actions ---------------------------------------------------------------------- */

static void next_op(os_ctx_t *ctx, fsstress_state_t *st);
static void run(os_ctx_t *ctx, fsstress_state_t *st);

/* Shut the OS down with status (once): the run ends when fsstress does. */
static void stop(os_ctx_t *ctx, fsstress_state_t *st, int status)
{
    if (st->stopping)
        return;
    st->stopping = true;
    st->done = true;
    st->nacts = st->cur = 0;
    init_shutdown_t m = {REQ_SHUTDOWN, status};
    if (init_shutdown_send(ctx, init_channel(ctx), &m) < 0)
        os_exit(ctx, status);
}

static void send_write(os_ctx_t *ctx, fsstress_state_t *st, os_handle_t ch, uint64_t off,
                       const uint8_t *data, size_t len)
{
    fs_write_t *w = &st->m.write;
    w->req = ++st->req;
    w->off = off;
    w->data_len = (uint32_t)len;
    memcpy(w->data, data, len);
    fs_write_send(ctx, ch, w);
}

/* Send the current action's request (or do it, if it has none). */
static void run(os_ctx_t *ctx, fsstress_state_t *st)
{
    while (st->cur < st->nacts) {
        act_t *a = &st->acts[st->cur];
        uint32_t req = ++st->req;
        switch (a->kind) {
        case A_MKDIR: {
            fs_mkdir_t m = {.req = req, .mode = 0755};
            snprintf(m.path, sizeof m.path, "%s", a->path);
            fs_mkdir_send(ctx, st->fs, &m);
            return;
        }
        case A_OPEN:
            memset(&st->m.open, 0, sizeof st->m.open);
            st->m.open = (fs_open_t){.req = req, .flags = a->flags, .mode = 0644};
            snprintf(st->m.open.path, sizeof st->m.open.path, "%s", a->path);
            fs_open_send(ctx, st->fs, &st->m.open);
            return;
        case A_WRITE:
        case A_LWRITE: {
            bool led = a->kind == A_LWRITE;
            st->sent = a->len < FS_WRITE_MAX ? a->len : FS_WRITE_MAX;
            if (led)
                st->sent = REC;
            st->req--; /* send_write numbers it */
            send_write(ctx, st, led ? st->ledger : st->file, a->off,
                       led ? a->rec : st->files[a->fi].data + a->off, (size_t)st->sent);
            return;
        }
        case A_TRUNC: {
            fs_truncate_t m = {.req = req, .size = a->len};
            fs_truncate_send(ctx, st->file, &m);
            return;
        }
        case A_FSYNC:
        case A_LFSYNC: {
            fs_fsync_t m = {.req = req};
            fs_fsync_send(ctx, a->kind == A_FSYNC ? st->file : st->ledger, &m);
            return;
        }
        case A_CLOSE:
            if (st->file != OS_HANDLE_NONE)
                os_handle_close(ctx, st->file);
            st->file = OS_HANDLE_NONE;
            st->cur++;
            continue;
        case A_UNLINK: {
            fs_unlink_t m = {.req = req};
            snprintf(m.path, sizeof m.path, "%s", a->path);
            fs_unlink_send(ctx, st->fs, &m);
            return;
        }
        case A_RENAME:
            memset(&st->m.rename, 0, sizeof st->m.rename);
            st->m.rename.req = req;
            snprintf(st->m.rename.from, sizeof st->m.rename.from, "%s", a->path);
            snprintf(st->m.rename.to, sizeof st->m.rename.to, "%s", a->path2);
            fs_rename_send(ctx, st->fs, &st->m.rename);
            return;
        case A_SYNC: {
            fs_sync_t m = {.req = req};
            fs_sync_send(ctx, st->fs, &m);
            return;
        }
        case A_CLAIM: {
            shadow_t *f = &st->files[a->fi];
            uint32_t crc = crc_update(st, 0, f->data, f->len);
            os_log(ctx, "fsynced %s len %u crc32 0x%08x%s", a->path, (unsigned)f->len,
                   (unsigned)crc, a->flags ? " (sync)" : "");
            f->claimed = true;
            st->fsyncs++;
            /* the record goes after the actions still planned (none follow a claim) */
            st->cur++;
            add_record(st, K_FSYNCED, a->fi, f->len, crc);
            continue;
        }
        case A_READ: {
            uint64_t left = a->len - a->off;
            fs_read_t m = {
                .req = req, .off = a->off, .len = left < FS_DATA_MAX ? left : FS_DATA_MAX};
            fs_read_send(ctx, st->file, &m);
            return;
        }
        case A_LREAD: {
            fs_read_t m = {.req = req, .off = a->off, .len = RECS_PER_READ * REC};
            fs_read_send(ctx, st->ledger, &m);
            return;
        }
        }
    }
    next_op(ctx, st);
}

/* An op failed at its current action: say so, and leave the file alone from now on. */
static void failed(os_ctx_t *ctx, fsstress_state_t *st, const char *op, int status)
{
    act_t *a = &st->acts[st->cur];
    st->errors++;
    os_log(ctx, "error %s %s: %s", a->fi >= 0 ? a->path : "/", op, os_strerror(status));
    if (a->kind == A_LWRITE || a->kind == A_LFSYNC) {
        /* Without the ledger a change could happen that it does not record, and a check
         * after a reboot would then want the old contents: change nothing more. */
        os_log(ctx, "the ledger cannot be written: stopping after %llu ops",
               (unsigned long long)st->ops);
        st->nacts = st->cur = 0;
        if (st->limited)
            stop(ctx, st, 0); /* the errors were reported: what a faulty disk should give */
        else
            st->done = true;
        return;
    }
    if (a->fi >= 0) {
        st->files[a->fi].broken = true;
        st->files[a->fi].claimed = false;
    }
    if (a->kind == A_RENAME) /* either side may now be anything */
        for (int k = 0; k < NF; k++) {
            char p[PATH_LEN];
            path_of(k, p);
            if (strcmp(p, a->path2) == 0)
                st->files[k].broken = true;
        }
    if (st->file != OS_HANDLE_NONE)
        os_handle_close(ctx, st->file);
    st->file = OS_HANDLE_NONE;
    st->nacts = st->cur = 0;
    next_op(ctx, st);
}

/* ---- verifying after a reboot ------------------------------------------------------------ */

static void verify_next(os_ctx_t *ctx, fsstress_state_t *st)
{
    while (++st->verify_fi < NF && !st->expect[st->verify_fi].required)
        ;
    st->nacts = st->cur = 0;
    if (st->verify_fi == NF) {
        os_log(ctx, "verified %u file(s), %u failed", (unsigned)st->verified, (unsigned)st->failed);
        stop(ctx, st, st->failed ? 1 : 0);
        return;
    }
    add(st, A_OPEN, st->verify_fi)->flags = FS_O_READ;
    st->crc = 0;
    run(ctx, st);
}

static void verify_result(os_ctx_t *ctx, fsstress_state_t *st, int fi, uint64_t len, uint32_t crc,
                          const char *why)
{
    char p[PATH_LEN];
    path_of(fi, p);
    const expect_t *e = &st->expect[fi];
    if (!why && (len != e->len || crc != e->crc))
        why = "contents differ";
    if (why) {
        st->failed++;
        os_log(ctx, "verify FAILED %s: %s (len %llu crc32 0x%08x, want len %u crc32 0x%08x)", p,
               why, (unsigned long long)len, (unsigned)crc, (unsigned)e->len, (unsigned)e->crc);
    } else {
        st->verified++;
        os_log(ctx, "verify ok %s len %u crc32 0x%08x", p, (unsigned)e->len, (unsigned)e->crc);
    }
    if (st->file != OS_HANDLE_NONE)
        os_handle_close(ctx, st->file);
    st->file = OS_HANDLE_NONE;
    verify_next(ctx, st);
}

/*
 * Records of the ledger, in order, a page at a time; true while pages are full (read on). The
 * first record that is not whole ends what binds (the cut may have taken the one in flight);
 * a whole record after it means one that was fsync'ed is gone: a failure (ledger_hole).
 */
static bool ledger_records(fsstress_state_t *st, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + REC <= n; i += REC) {
        const uint8_t *r = p + i;
        uint32_t w[4], crc, self;
        memcpy(w, r, sizeof w);
        memcpy(&crc, r + 16, 4);
        memcpy(&self, r + REC - 4, 4);
        bool whole = w[0] == REC_MAGIC && crc_update(st, 0, r, REC - 4) == self;
        if (!st->ledger_end && whole && w[1] == st->lrecs + 1) {
            st->lrecs++;
            for (int fi = 0; fi < NF; fi++) {
                char path[PATH_LEN];
                path_of(fi, path);
                if (memcmp(path, r + 20, PATH_LEN) == 0)
                    st->expect[fi] = (expect_t){w[2] == K_FSYNCED, w[3], crc};
            }
        } else if (!st->ledger_end) {
            st->ledger_end = true;
        } else if (whole && !st->ledger_hole) {
            st->ledger_hole = w[1]; /* record lrecs + 1 is gone, this later one is there */
        }
    }
    return n == RECS_PER_READ * REC;
}

/* ---- events ------------------------------------------------------------------------------- */

static void next_op(os_ctx_t *ctx, fsstress_state_t *st)
{
    if (st->done)
        return;
    if (st->sync_claims) {
        /* a sync answered 0: every file is on the disk as we know it; claim one at a time */
        int fi = __builtin_ctz(st->sync_claims);
        st->sync_claims &= st->sync_claims - 1;
        st->nacts = st->cur = 0;
        add(st, A_CLAIM, fi)->flags = 1;
        run(ctx, st);
        return;
    }
    if (st->limited && st->ops == st->ops_max) {
        st->ops++; /* once */
        st->nacts = st->cur = 0;
        add(st, A_SYNC, -1);
        run(ctx, st);
        return;
    }
    if (st->limited && st->ops > st->ops_max) {
        os_log(ctx, "done: %llu ops, %llu fsyncs, %llu errors", (unsigned long long)st->ops_max,
               (unsigned long long)st->fsyncs, (unsigned long long)st->errors);
        stop(ctx, st, 0);
        return;
    }
    st->ops++;
    if (!plan_op(ctx, st)) {
        os_log(ctx, "every file failed: stopping after %llu ops", (unsigned long long)st->ops);
        if (st->limited)
            stop(ctx, st, 0); /* the errors were reported: what a faulty disk should give */
        else
            st->done = true;
        return;
    }
    run(ctx, st);
}

static void start_stress(os_ctx_t *ctx, fsstress_state_t *st)
{
    st->nacts = st->cur = 0;
    for (int d = 0; d < NDIRS; d++)
        snprintf(add(st, A_MKDIR, -1)->path, PATH_LEN, "/d%d", d + 1);
    run(ctx, st);
}

static void fsstress_start(os_ctx_t *ctx)
{
    fsstress_state_t *st = os_state(ctx);
    st->fs = st->ledger = st->file = OS_HANDLE_NONE;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        st->crc_table[i] = c;
    }
    os_random(ctx, &st->rng, sizeof st->rng);
    st->rng |= 1;
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    char a[32] = "";
    if (len > 0 && len < sizeof a) /* no arg: data may be NULL */
        memcpy(a, arg, len);
    if (len > 0) {
        /* ops=N: N ops, then sync and shut down */
        bool ok = len > 4 && len < sizeof a && memcmp(a, "ops=", 4) == 0;
        uint64_t n = 0;
        for (size_t i = 4; ok && i < len; i++) {
            ok = a[i] >= '0' && a[i] <= '9' && n < 100000000;
            n = n * 10 + (uint64_t)(a[i] - '0');
        }
        if (!ok) {
            os_log(ctx, "bad arg '%s' (ops=N with N at most 999999999, or none)", a);
            os_exit(ctx, 2);
        }
        st->limited = true;
        st->ops_max = n;
    }
    init_connect_iface(ctx, REQ_FS, &fs_iface);
}

static const char *const act_names[] = {
    [A_MKDIR] = "mkdir", [A_OPEN] = "open",   [A_WRITE] = "write",   [A_TRUNC] = "truncate",
    [A_FSYNC] = "fsync", [A_CLOSE] = "close", [A_UNLINK] = "unlink", [A_RENAME] = "rename",
    [A_SYNC] = "sync",   [A_CLAIM] = "claim", [A_LWRITE] = "write",  [A_LFSYNC] = "fsync",
    [A_READ] = "read",   [A_LREAD] = "read",
};

static void open_ledger(os_ctx_t *ctx, fsstress_state_t *st, uint32_t flags)
{
    fs_open_t *o = &st->m.open;
    memset(o, 0, sizeof *o);
    *o = (fs_open_t){.req = ++st->req, .flags = flags, .mode = 0644};
    snprintf(o->path, sizeof o->path, "/fsstress.ledger");
    fs_open_send(ctx, st->fs, o);
}

/* Opening the ledger at start: there (verify), missing (create it, stress), or an error. */
static void on_ledger_open(os_ctx_t *ctx, fsstress_state_t *st, const fs_opened_t *opened,
                           int status)
{
    if (opened && st->phase == P_PROBE) {
        st->ledger = opened->chan;
        st->phase = P_VERIFY;
        os_log(ctx, "a ledger of %llu bytes: checking what it says survived",
               (unsigned long long)opened->size);
        st->nacts = st->cur = 0;
        add(st, A_LREAD, -1);
        run(ctx, st);
    } else if (opened) {
        st->ledger = opened->chan;
        st->phase = P_STRESS;
        start_stress(ctx, st);
    } else if (st->phase == P_PROBE && status == OS_ENOENT) {
        st->phase = P_CREATE;
        open_ledger(ctx, st, FS_O_READ | FS_O_WRITE | FS_O_CREAT | FS_O_EXCL);
    } else {
        os_log(ctx, "cannot open /fsstress.ledger: %s", os_strerror(status));
        stop(ctx, st, 1);
    }
}

/* The control channel's answers (open, mkdir, unlink, rename, sync). */
static void on_fs(os_ctx_t *ctx, fsstress_state_t *st, const os_event_t *ev)
{
    union {
        fs_opened_t opened;
        fs_reply_t reply;
        fs_error_t error;
    } m;
    bool starting = st->phase == P_PROBE || st->phase == P_CREATE;
    act_t *a = st->cur < st->nacts ? &st->acts[st->cur] : NULL;
    if (fs_opened_decode(ev, &m.opened) == 0) {
        if (starting) {
            on_ledger_open(ctx, st, &m.opened, 0);
            return;
        }
        if (!a || a->kind != A_OPEN) { /* not ours to keep */
            os_handle_close(ctx, m.opened.chan);
            return;
        }
        st->file = m.opened.chan;
        st->cur++;
        if (st->phase == P_VERIFY) {
            act_t *r = add(st, A_READ, a->fi);
            r->len = m.opened.size;
            if (m.opened.size == 0) {
                verify_result(ctx, st, a->fi, 0, 0, NULL);
                return;
            }
        }
        run(ctx, st);
    } else if (fs_reply_decode(ev, &m.reply) == 0) {
        if (starting) {
            on_ledger_open(ctx, st, NULL, m.reply.status);
            return;
        }
        if (!a)
            return;
        if (st->phase == P_VERIFY) {
            verify_result(ctx, st, a->fi, 0, 0, os_strerror(m.reply.status));
            return;
        }
        if (m.reply.status == 0 || (a->kind == A_MKDIR && m.reply.status == OS_EEXIST)) {
            if (a->kind == A_SYNC)
                for (int fi = 0; fi < NF; fi++)
                    if (st->files[fi].exists && !st->files[fi].broken && !st->files[fi].claimed)
                        st->sync_claims |= 1u << fi;
            st->cur++;
            run(ctx, st);
        } else {
            failed(ctx, st, act_names[a->kind], m.reply.status);
        }
    } else if (fs_error_decode(ev, &m.error) == 0) {
        os_log(ctx, "the server refused message %u: %s", (unsigned)m.error.type,
               os_strerror(m.error.status));
        stop(ctx, st, 1);
    } else {
        iface_discard(ctx, ev);
    }
}

/* A file channel's answers (write, truncate, fsync, read), the ledger's included. */
static void on_file(os_ctx_t *ctx, fsstress_state_t *st, const os_event_t *ev)
{
    union {
        fs_reply_t reply;
        fs_data_t data;
        fs_error_t error;
    } m;
    if (st->cur >= st->nacts) {
        iface_discard(ctx, ev);
        return;
    }
    act_t *a = &st->acts[st->cur];
    if (fs_data_decode(ev, &m.data) == 0 && (a->kind == A_READ || a->kind == A_LREAD)) {
        if (a->kind == A_LREAD) {
            if (ledger_records(st, m.data.data, m.data.data_len)) {
                a->off += m.data.data_len;
                run(ctx, st);
                return;
            }
            os_log(ctx, "ledger: %llu record(s) to check", (unsigned long long)st->lrecs);
            if (st->ledger_hole) {
                st->failed++;
                os_log(ctx,
                       "verify FAILED /fsstress.ledger: record %llu is not whole, but record "
                       "%u, written after its fsync, is",
                       (unsigned long long)st->lrecs + 1, (unsigned)st->ledger_hole);
            }
            st->verify_fi = -1;
            verify_next(ctx, st);
            return;
        }
        st->crc = crc_update(st, st->crc, m.data.data, m.data.data_len);
        a->off += m.data.data_len;
        if (m.data.data_len == 0 || a->off >= a->len) {
            verify_result(ctx, st, a->fi, a->off, st->crc, NULL);
            return;
        }
        run(ctx, st);
    } else if (fs_reply_decode(ev, &m.reply) == 0) {
        const char *op = act_names[a->kind];
        if (st->phase == P_VERIFY && a->kind == A_READ) {
            verify_result(ctx, st, a->fi, a->off, st->crc, os_strerror(m.reply.status));
            return;
        }
        if (st->phase == P_VERIFY && a->kind == A_LREAD) {
            os_log(ctx, "ledger: read: %s", os_strerror(m.reply.status));
            stop(ctx, st, 1);
            return;
        }
        bool is_write = a->kind == A_WRITE || a->kind == A_LWRITE;
        if (m.reply.status < 0 || (is_write && (uint64_t)m.reply.status != st->sent)) {
            failed(ctx, st, op, m.reply.status < 0 ? m.reply.status : OS_EIO);
            return;
        }
        if (a->kind == A_WRITE && st->sent < a->len) {
            a->off += st->sent;
            a->len -= st->sent;
            run(ctx, st); /* the next piece */
            return;
        }
        st->cur++;
        run(ctx, st);
    } else if (fs_error_decode(ev, &m.error) == 0) {
        os_log(ctx, "the server refused message %u: %s", (unsigned)m.error.type,
               os_strerror(m.error.status));
        stop(ctx, st, 1);
    } else {
        iface_discard(ctx, ev);
    }
}

static void fsstress_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    fsstress_state_t *st = os_state(ctx);
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (ev->handle == st->fs || ev->handle == st->ledger || ev->handle == st->file) {
            os_log(ctx, "the fs server went away; stopping");
            stop(ctx, st, 1);
            return;
        }
        os_handle_close(ctx, ev->handle);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        union {
            init_connected_t conn;
            init_reply_t reply;
        } m;
        if (init_connected_decode(ev, &m.conn) == 0 && m.conn.req == REQ_FS) {
            st->fs = m.conn.chan;
            /* a ledger on the volume: we ran before a power cut; check what it says */
            st->phase = P_PROBE;
            open_ledger(ctx, st, FS_O_READ);
        } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
            os_log(ctx, "%s: %s", m.reply.req == REQ_FS ? "connect fs" : "shutdown",
                   os_strerror(m.reply.status));
            os_exit(ctx, 1);
        } else {
            iface_discard(ctx, ev);
        }
    } else if (ev->handle == st->fs) {
        on_fs(ctx, st, ev);
    } else {
        on_file(ctx, st, ev);
    }
}

const os_program_t orrery_fsstress = {"fsstress", sizeof(fsstress_state_t), fsstress_start,
                                      fsstress_on_event};
