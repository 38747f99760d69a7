/* fuzz_fs.c — libFuzzer target of the fs server: an ext2 image on a blk0 stand-in, then fs
 * requests decoded from the input. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hal/codes.h>
#include <hal/device.h>
#include <hal/trace.h>
#include <iface/fs.h>
#include <iface/init_client.h>
#include <image.h>
#include <k/audit.h>
#include <k/kernel.h>
#include <sim/sim.h>

#include "fz_input.h"

/*
 * The input (docs/fuzzing.md, "fs"):
 *   u16 sectors (little-endian; taken as FS_SECTORS_MIN + n % (FS_SECTORS_MAX - MIN + 1)),
 *   then that many 512-byte sectors of the disk image (what the input lacks is zeros),
 *   then ops, one byte each and its operands (below), until the input ends or OPS_MAX ops
 *   have run (a sector count that cuts a large image short makes the rest of the image ops:
 *   tens of thousands of requests, a second of CPU, for one input).
 * The harness:
 *   boot     init, the fs server and a fake client `fuzz_fs_peer` (reach=fs) on sim, with a
 *            blk0 stand-in registered by the harness over the image in memory: requests are
 *            checked as the contract says (hal/codes.h; a bad one is OS_EINVAL, the 33rd in
 *            flight OS_EFULL), completed in order after each step unless the input holds them,
 *            and now and then (an op) failed with OS_EIO;
 *   feed     open/read/write/readdir/stat/truncate/fsync on file channels the peer keeps,
 *            mkdir/unlink/rmdir/rename/symlink/statfs/sync on the control channel (paths from a
 *            small vocabulary, so they meet the image's names), any fs message with its fields
 *            from the input, closes, time jumps;
 *   clean up close every channel, run the timers (write-back) for a while, tear down.
 * Invariants (abort() is the crash libFuzzer reports): the fs server did not panic or fault,
 * the kernel audit holds after every op, every step ends (HANG_STEPS rounds of completions at
 * most: a server that keeps asking for sectors forever is a hang; TIMER_SPIN_MAX timer events
 * at one virtual instant: a timer armed in the past over and over), sim_teardown reports no
 * leaked kernel allocation. Every input starts from a fresh boot, so every input reproduces
 * alone.
 */

enum {
    FS_SECTORS_MIN = 128,   /* 64 KiB */
    FS_SECTORS_MAX = 512,   /* 256 KiB */
    INFLIGHT_MAX = 32,      /* as every blk0 */
    FILES_MAX = 16,         /* file channels the peer keeps */
    HANG_STEPS = 20000,     /* rounds of completions one step may take */
    SETTLE_TIMERS = 50,     /* timer events after the client went away */
    TIMER_SPIN_MAX = 10000, /* timer events at one virtual instant: a hang */
    OPS_MAX = 256,          /* ops read from one input (the rest is not read) */
    REQ_FS = 1,
};

static bool verbose; /* FUZZ_VERBOSE: what each input reached */

static void check(bool ok, const char *what)
{
    if (!ok) {
        size_t len = 0;
        const char *out = sim_console_output(&len);
        fprintf(stderr, "fuzz_fs: invariant broken: %s\n", what);
        if (len)
            fprintf(stderr, "--- console ---\n%.*s\n---\n", (int)(len > 4000 ? 4000 : len),
                    out + (len > 4000 ? len - 4000 : 0));
        abort();
    }
}

/* ---- blk0: the image in memory ------------------------------------------------------------- */

static struct {
    uint8_t disk[FS_SECTORS_MAX * HAL_BLK_SECTOR];
    uint64_t sectors;
    int dev;
    struct pend {
        uint32_t code;
        hal_blk_req_t req;
    } q[INFLIGHT_MAX];
    int n;         /* in flight */
    bool hold;     /* the input holds completions back for one step */
    int fail_next; /* the next N completions fail with OS_EIO */
    uint64_t reads, writes, flushes, refused;
} B;

static int blk_write(void *self, uint32_t code, const void *buf, size_t len)
{
    (void)self;
    hal_blk_req_t r;
    if ((code != HAL_BLK_READ && code != HAL_BLK_WRITE && code != HAL_BLK_FLUSH) ||
        len < sizeof r) {
        B.refused++;
        return OS_EINVAL;
    }
    memcpy(&r, buf, sizeof r);
    if (code == HAL_BLK_FLUSH) {
        if (len != sizeof r) {
            B.refused++;
            return OS_EINVAL;
        }
    } else if (r.count < 1 || r.count > HAL_BLK_MAX_SECTORS || r.sector >= B.sectors ||
               r.count > B.sectors - r.sector ||
               len != sizeof r + (code == HAL_BLK_WRITE ? r.count * HAL_BLK_SECTOR : 0)) {
        B.refused++;
        return OS_EINVAL;
    }
    if (B.n == INFLIGHT_MAX)
        return OS_EFULL;
    if (code == HAL_BLK_WRITE) /* a write lands when accepted (as a write-through drive) */
        memcpy(B.disk + r.sector * HAL_BLK_SECTOR, (const uint8_t *)buf + sizeof r,
               (size_t)r.count * HAL_BLK_SECTOR);
    B.reads += code == HAL_BLK_READ;
    B.writes += code == HAL_BLK_WRITE;
    B.flushes += code == HAL_BLK_FLUSH;
    B.q[B.n++] = (struct pend){code, r};
    return 0;
}

static const hal_device_ops_t blk0_ops = {.name = "blk0", .write = blk_write};

/* Post the completions in flight, in order, as far as the task's queue takes them; true when
 * any was posted. */
static bool blk_complete(void)
{
    static uint8_t msg[sizeof(hal_blk_req_t) + HAL_BLK_MAX_SECTORS * HAL_BLK_SECTOR];
    int done = 0;
    while (done < B.n) {
        struct pend *p = &B.q[done];
        hal_blk_req_t r = p->req;
        size_t len = sizeof r;
        r.status = 0;
        if (B.fail_next > 0 && p->code != HAL_BLK_FLUSH) {
            r.status = OS_EIO;
        } else if (p->code == HAL_BLK_READ) {
            memcpy(msg + sizeof r, B.disk + r.sector * HAL_BLK_SECTOR,
                   (size_t)r.count * HAL_BLK_SECTOR);
            len += (size_t)r.count * HAL_BLK_SECTOR;
        }
        memcpy(msg, &r, sizeof r);
        if (k_post(B.dev, p->code, msg, len) != 0)
            break; /* the queue is full: the rest after the task drained it */
        if (r.status)
            B.fail_next--;
        done++;
    }
    memmove(B.q, B.q + done, (size_t)(B.n - done) * sizeof B.q[0]);
    B.n -= done;
    return done > 0;
}

/* ---- the fake client ------------------------------------------------------------------------ */

static struct {
    os_ctx_t *ctx;
    os_handle_t fs;
    os_handle_t files[FILES_MAX];
    int nfiles;
    int newest;
    uint64_t answers, errors, opened;
} P;

static void peer_start(os_ctx_t *ctx)
{
    P.ctx = ctx;
    P.fs = OS_HANDLE_NONE;
    init_connect_iface(ctx, REQ_FS, &fs_iface);
}

static int file_slot(os_handle_t h)
{
    for (int i = 0; i < P.nfiles; i++)
        if (P.files[i] == h)
            return i;
    return -1;
}

static void drop_file(int i)
{
    os_handle_close(P.ctx, P.files[i]);
    P.files[i] = P.files[--P.nfiles];
    if (P.newest >= P.nfiles)
        P.newest = P.nfiles - 1;
}

static void peer_event(os_ctx_t *ctx, const os_event_t *ev)
{
    int i = file_slot(ev->handle);
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (i >= 0)
            drop_file(i);
        else if (ev->handle == P.fs) {
            os_handle_close(ctx, P.fs);
            P.fs = OS_HANDLE_NONE;
        }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        init_connected_t c;
        if (init_connected_decode(ev, &c) == 0 && c.req == REQ_FS && P.fs == OS_HANDLE_NONE) {
            P.fs = c.chan;
            return;
        }
    }
    P.answers++;
    fs_opened_t o;
    if (ev->handle == P.fs && ev->type == fs_msg_opened && fs_opened_decode(ev, &o) == 0) {
        P.opened++;
        if (P.nfiles < FILES_MAX) {
            P.newest = P.nfiles;
            P.files[P.nfiles++] = o.chan;
        } else {
            os_handle_close(ctx, o.chan); /* full: the file closes */
        }
        return;
    }
    if (ev->type == fs_msg_error)
        P.errors++;
    for (size_t k = 0; k < ev->nhandles; k++)
        os_handle_close(ctx, ev->handles[k]); /* nothing else is meant to carry one */
}

static const os_program_t peer = {"fuzz_fs_peer", 0, peer_start, peer_event};

/* ---- the watch: panics ---------------------------------------------------------------------- */

static int panics;
static uint64_t fire_ns, fires; /* timer events at one virtual instant */
static void watch(void *self, const hal_trace_rec_t *r)
{
    (void)self;
    if (r->kind == HAL_TR_EXIT && (r->result == OS_EXIT_PANIC || r->result == OS_EXIT_FAULT))
        panics++;
    /* A timer that fires again and again without time passing never lets a step end (a timer
     * armed in the past, over and over): say so rather than wait for libFuzzer's -timeout. */
    if (r->kind == HAL_TR_TIMER_FIRE) {
        fires = r->time_ns == fire_ns ? fires + 1 : 1;
        fire_ns = r->time_ns;
        if (fires > TIMER_SPIN_MAX) {
            fprintf(stderr,
                    "fuzz_fs: invariant broken: hang: a timer fired %d times at %llu ns "
                    "(armed in the past over and over)\n",
                    TIMER_SPIN_MAX, (unsigned long long)fire_ns);
            abort();
        }
    }
}
static const hal_trace_sink_t sink = {.record = watch};

/* ---- steps ---------------------------------------------------------------------------------- */

/* Run until nothing is ready and no completion is owed (unless held); a step that never ends
 * is a hang. */
static void step(void)
{
    for (int i = 0; i < HANG_STEPS; i++) {
        sim_run_until_idle();
        if (B.hold || B.n == 0 || panics)
            return;
        if (!blk_complete() && B.n) {
            /* nothing could be posted: the task's queue is full and it is not draining it */
            sim_run_until_idle();
            if (!blk_complete())
                return;
        }
    }
    check(false, "hang: the fs server kept the device busy for 20000 rounds of completions");
}

/* Names that meet what the seeds' images hold (fuzz/make-fs-seeds.sh) and what ops create. */
static const char *const names[] = {"a",  "b",   "dir",  "file", "lost+found", "sub",  "x",  ".",
                                    "..", "big", "link", "deep", "empty",      "hole", "f1", "d2"};

static size_t make_path(fz_in_t *in, char *out, size_t cap)
{
    uint8_t n = fz_byte(in);
    size_t len = 0;
    if (n == 255) { /* raw bytes, up to 255 of them */
        size_t k = fz_byte(in);
        for (size_t i = 0; i < k && len + 1 < cap; i++) {
            uint8_t c = fz_byte(in);
            out[len++] = c ? (char)c : '/';
        }
        out[len] = 0;
        return len;
    }
    int parts = 1 + n % 4;
    for (int i = 0; i < parts; i++) {
        const char *s = names[fz_byte(in) % (sizeof names / sizeof names[0])];
        size_t sl = strlen(s);
        if (len + sl + 2 >= cap)
            break;
        out[len++] = '/';
        memcpy(out + len, s, sl);
        len += sl;
    }
    out[len] = 0;
    return len;
}

static os_handle_t pick_file(fz_in_t *in)
{
    if (P.nfiles == 0)
        return OS_HANDLE_NONE;
    uint8_t b = fz_byte(in);
    return P.files[b == 0 ? P.newest : b % P.nfiles];
}

static uint64_t small_u64(fz_in_t *in)
{
    uint8_t b = fz_byte(in);
    /* mostly near the start; now and then far (past the block map, a huge hole) */
    if (b < 200)
        return (uint64_t)b * 512 + fz_byte(in);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fz_byte(in);
    return v;
}

/* Any message of the fs interface, its fields from the input, on the control channel or a
 * file channel. */
static void send_structured(fz_in_t *in)
{
    const iface_msg_t *m = &fs_iface.msgs[fz_byte(in) % fs_iface.nmsgs];
    static uint8_t msg[8192], wire[OS_MSG_MAX_DATA];
    os_handle_t hs[OS_MSG_MAX_HANDLES], ours[OS_MSG_MAX_HANDLES];
    size_t nours;
    os_handle_t to = fz_byte(in) & 1 ? pick_file(in) : P.fs;
    if (to == OS_HANDLE_NONE)
        to = P.fs;
    fz_fill_message(P.ctx, m, in, msg, ours, &nours, NULL);
    size_t len = 0, nh = 0;
    if (iface_encode(m, msg, wire, sizeof wire, &len, hs, &nh) != 0 ||
        os_send(P.ctx, to, m->number, wire, len, hs, nh) != 0)
        for (size_t i = 0; i < nh; i++)
            os_handle_close(P.ctx, hs[i]);
    for (size_t i = 0; i < nours; i++)
        os_handle_close(P.ctx, ours[i]);
}

static uint32_t req_id;

static void op(fz_in_t *in)
{
    static union {
        fs_open_t open;
        fs_write_t write;
        fs_mkdir_t mkdir;
        fs_unlink_t unlink;
        fs_rmdir_t rmdir;
        fs_rename_t rename;
        fs_symlink_t symlink;
    } m;
    os_handle_t f;
    uint8_t o = fz_byte(in);
    memset(&m, 0, sizeof m);
    switch (o % 16) {
    case 0:
    case 1: { /* open: mostly plain flags, now and then any */
        static const uint32_t flags[] = {
            FS_O_READ,
            FS_O_READ | FS_O_WRITE,
            FS_O_WRITE | FS_O_CREAT,
            FS_O_READ | FS_O_WRITE | FS_O_CREAT | FS_O_EXCL,
            FS_O_WRITE | FS_O_TRUNC,
            FS_O_WRITE | FS_O_APPEND | FS_O_CREAT,
            FS_O_READ | FS_O_NOFOLLOW,
        };
        uint8_t fl = fz_byte(in);
        m.open.req = ++req_id;
        m.open.flags = fl < 224 ? flags[fl % 7] : fz_byte(in);
        m.open.mode = 0644;
        make_path(in, m.open.path, sizeof m.open.path);
        fs_open_send(P.ctx, P.fs, &m.open);
        break;
    }
    case 2: /* read */
        if ((f = pick_file(in)) != OS_HANDLE_NONE) {
            fs_read_t r = {++req_id, small_u64(in), (uint32_t)fz_byte(in) << 5};
            fs_read_send(P.ctx, f, &r);
        }
        break;
    case 3:
    case 4: /* write: a run of one byte value, up to FS_WRITE_MAX */
        if ((f = pick_file(in)) != OS_HANDLE_NONE) {
            m.write.req = ++req_id;
            m.write.off = small_u64(in);
            uint32_t len = (uint32_t)fz_byte(in) * 16;
            m.write.data_len = len > FS_WRITE_MAX ? FS_WRITE_MAX : len;
            memset(m.write.data, fz_byte(in), m.write.data_len);
            fs_write_send(P.ctx, f, &m.write);
        }
        break;
    case 5: /* readdir: from the start, or from a cookie */
        if ((f = pick_file(in)) != OS_HANDLE_NONE) {
            uint8_t c = fz_byte(in);
            fs_readdir_t r = {++req_id, c < 128 ? 0 : small_u64(in)};
            fs_readdir_send(P.ctx, f, &r);
        }
        break;
    case 6: /* mkdir */
        m.mkdir.req = ++req_id;
        m.mkdir.mode = 0755;
        make_path(in, m.mkdir.path, sizeof m.mkdir.path);
        fs_mkdir_send(P.ctx, P.fs, &m.mkdir);
        break;
    case 7: /* unlink */
        m.unlink.req = ++req_id;
        make_path(in, m.unlink.path, sizeof m.unlink.path);
        fs_unlink_send(P.ctx, P.fs, &m.unlink);
        break;
    case 8: /* rmdir */
        m.rmdir.req = ++req_id;
        make_path(in, m.rmdir.path, sizeof m.rmdir.path);
        fs_rmdir_send(P.ctx, P.fs, &m.rmdir);
        break;
    case 9: /* rename */
        m.rename.req = ++req_id;
        make_path(in, m.rename.from, sizeof m.rename.from);
        make_path(in, m.rename.to, sizeof m.rename.to);
        fs_rename_send(P.ctx, P.fs, &m.rename);
        break;
    case 10: /* truncate, or symlink */
        if (fz_byte(in) & 1) {
            if ((f = pick_file(in)) != OS_HANDLE_NONE) {
                fs_truncate_t t = {++req_id, small_u64(in)};
                fs_truncate_send(P.ctx, f, &t);
            }
        } else {
            m.symlink.req = ++req_id;
            make_path(in, m.symlink.target, sizeof m.symlink.target);
            make_path(in, m.symlink.path, sizeof m.symlink.path);
            fs_symlink_send(P.ctx, P.fs, &m.symlink);
        }
        break;
    case 11: { /* stat, fsync, statfs, sync */
        uint8_t w = fz_byte(in) % 4;
        f = pick_file(in);
        if (w == 0 && f != OS_HANDLE_NONE)
            fs_stat_send(P.ctx, f, &(fs_stat_t){++req_id});
        else if (w == 1 && f != OS_HANDLE_NONE)
            fs_fsync_send(P.ctx, f, &(fs_fsync_t){++req_id});
        else if (w == 2)
            fs_statfs_send(P.ctx, P.fs, &(fs_statfs_t){++req_id});
        else
            fs_sync_send(P.ctx, P.fs, &(fs_sync_t){++req_id});
        break;
    }
    case 12: /* close a file channel */
        if (P.nfiles) {
            int i = fz_byte(in) % P.nfiles;
            drop_file(i);
        }
        break;
    case 13: /* any fs message, fields from the input */
        send_structured(in);
        break;
    case 14: /* the device: hold completions for one step, or fail the next few */
        if (fz_byte(in) & 1)
            B.hold = true;
        else
            B.fail_next = 1 + fz_byte(in) % 4;
        break;
    case 15: /* time passes: the server's write-back */
        sim_advance(((uint64_t)fz_byte(in) + 1) * 100000000ull);
        break;
    }
}

/* ---- boot, input, teardown ------------------------------------------------------------------ */

static const os_program_t *programs[4];
static const char manifest[] = "program fs restart=never\n"
                               "program fuzz_fs_peer restart=never reach=fs\n";

static const os_program_t *find_program(const char *name)
{
    for (const os_program_t *const *p = orrery_programs; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    programs[0] = find_program("init");
    programs[1] = find_program("fs");
    programs[2] = &peer;
    programs[3] = NULL;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (!programs[0] || !programs[1]) {
        fprintf(stderr, "fuzz_fs: init or fs is not in the image\n");
        abort();
    }
    return 0;
}

static void boot(void)
{
    memset(&P, 0, sizeof P);
    P.fs = OS_HANDLE_NONE;
    P.newest = -1;
    sim_config_t cfg = {.programs = programs,
                        .init_arg = manifest,
                        .init_arg_len = sizeof manifest - 1,
                        .seed = 1,
                        .trace = &sink};
    check(sim_boot(&cfg) == 0, "boot");
    B.dev = k_device_add(&blk0_ops);
    check(B.dev > 0, "blk0 stand-in");
    hal_blk_info_t info = {B.sectors, 0, HAL_BLK_MAX_SECTORS};
    k_post(B.dev, HAL_BLK_INFO, &info, sizeof info);
    step();
}

static void audit(void)
{
    char err[160];
    check(k_audit_quick(NULL, 0, NULL, err, sizeof err) == 0, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint16_t s = (uint16_t)(fz_byte(&in) | fz_byte(&in) << 8);
    memset(&B, 0, sizeof B);
    B.sectors = FS_SECTORS_MIN + s % (FS_SECTORS_MAX - FS_SECTORS_MIN + 1);
    size_t img = (size_t)B.sectors * HAL_BLK_SECTOR, have = in.n < img ? in.n : img;
    memcpy(B.disk, in.p, have);
    in.p += have;
    in.n -= have;
    panics = 0;
    req_id = 0;
    fire_ns = fires = 0;
    boot();
    /* a volume the server refused leaves it without a client to serve: the input is spent */
    int ops = 0;
    while (in.n && panics == 0 && P.fs != OS_HANDLE_NONE && k_task_find("fs") != 0 &&
           ops++ < OPS_MAX) {
        op(&in);
        step();
        B.hold = false;
        audit();
    }
    check(panics == 0, "the fs server panicked or faulted");
    /* The client goes away; the server's timers (write-back) run at their deadlines. */
    B.hold = false;
    B.fail_next = 0;
    while (P.nfiles)
        drop_file(0);
    if (P.fs != OS_HANDLE_NONE) {
        os_handle_close(P.ctx, P.fs);
        P.fs = OS_HANDLE_NONE;
    }
    step();
    for (int i = 0; i < SETTLE_TIMERS && panics == 0; i++) {
        uint64_t d = k_next_deadline();
        if (d == UINT64_MAX)
            break;
        if (d > sim_now())
            sim_advance(d - sim_now());
        step();
    }
    check(panics == 0, "the fs server panicked or faulted after its client went away");
    char err[160];
    check(k_audit(NULL, 0, NULL, err, sizeof err) == 0, err);
    if (verbose)
        fprintf(stderr,
                "%s--- %llu sectors; blk0: %llu reads, %llu writes, %llu flushes, %llu refused; "
                "%llu answers (%llu opened, %llu errors)\n",
                sim_console_output(NULL), (unsigned long long)B.sectors,
                (unsigned long long)B.reads, (unsigned long long)B.writes,
                (unsigned long long)B.flushes, (unsigned long long)B.refused,
                (unsigned long long)P.answers, (unsigned long long)P.opened,
                (unsigned long long)P.errors);
    sim_console_clear();
    check(sim_teardown() == 0, "kernel memory leaked");
    return 0;
}
