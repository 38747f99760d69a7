/* record_fs.c — records the golden fs trace: one simulated node whose fs server serves an ext2
 * image on blk0 to a client that reads, lists, creates, renames and removes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iface/fs.h>
#include <iface/init_client.h>
#include <image.h>
#include <sim/blk.h>
#include <sim/sim.h>
#include <trace/recorder.h>

/*
 * usage: record_fs IMAGE OUT.db   (tests/traces/record.sh makes IMAGE and runs it; docs/replay.md)
 *
 * The node runs the fs server on blk0 (a simulated disk loaded from IMAGE; the file is not
 * changed) and `client`, which sends one request at a time and waits for its answer:
 * open /hello.txt, read it, stat it, close; list / page by page; read /dir/sub/deep.txt; open
 * a missing name; mkdir /new; create /new/f, write, fsync, close; rename it to /new/g; read it
 * back; unlink it; rmdir /new; statfs; sync. Every answer is recorded, errors included (a
 * read-only server answers the changes with an error, and the trace still replays). The run is
 * deterministic (seed 1, no faults), so the same build and image record the same trace. Exit 0
 * when every step was answered and nothing leaked, 1 otherwise.
 */
enum { REQ_FS = 1 };

static const char hello[] = "written through the fs server\n";

static struct {
    bool done, failed;
    int answered;
    uint64_t done_ns;
} R;

typedef struct client {
    os_handle_t fs, file;
    int step;
    uint32_t req;
    uint64_t cookie; /* readdir's next */
} client_t;

static void fail(const char *what)
{
    fprintf(stderr, "record_fs: %s\n", what);
    R.failed = true;
}

/* The steps, in order; a step that needs a file channel is skipped when the open failed. */
enum step {
    S_OPEN_HELLO,
    S_READ_HELLO,
    S_STAT_HELLO,
    S_CLOSE_HELLO,
    S_OPEN_ROOT,
    S_READDIR, /* repeated until a page of 0 */
    S_CLOSE_ROOT,
    S_OPEN_DEEP,
    S_READ_DEEP,
    S_CLOSE_DEEP,
    S_OPEN_MISSING,
    S_MKDIR,
    S_CREATE,
    S_WRITE,
    S_FSYNC,
    S_CLOSE_NEW,
    S_RENAME,
    S_OPEN_G,
    S_READ_G,
    S_CLOSE_G,
    S_UNLINK,
    S_RMDIR,
    S_STATFS,
    S_SYNC,
    S_DONE,
};

static bool needs_file(int s)
{
    switch (s) {
    case S_READ_HELLO:
    case S_STAT_HELLO:
    case S_READDIR:
    case S_READ_DEEP:
    case S_WRITE:
    case S_FSYNC:
    case S_READ_G:
        return true;
    default:
        return false;
    }
}

static void open_path(os_ctx_t *ctx, client_t *c, const char *path, uint32_t flags)
{
    static fs_open_t o;
    memset(&o, 0, sizeof o);
    o.req = ++c->req;
    o.flags = flags;
    o.mode = 0644;
    strcpy(o.path, path);
    fs_open_send(ctx, c->fs, &o);
}

/* Send the request of the current step (closes need no answer: go on at once). */
static void next(os_ctx_t *ctx, client_t *c)
{
    static union {
        fs_mkdir_t mk;
        fs_write_t w;
        fs_rename_t rn;
        fs_unlink_t ul;
        fs_rmdir_t rd;
    } m;
    for (;;) {
        int s = c->step;
        if (needs_file(s) && c->file == OS_HANDLE_NONE) {
            c->step++;
            continue;
        }
        memset(&m, 0, sizeof m);
        switch (s) {
        case S_OPEN_HELLO:
            open_path(ctx, c, "/hello.txt", FS_O_READ);
            return;
        case S_READ_HELLO:
        case S_READ_DEEP:
        case S_READ_G:
            fs_read_send(ctx, c->file, &(fs_read_t){++c->req, 0, FS_DATA_MAX});
            return;
        case S_STAT_HELLO:
            fs_stat_send(ctx, c->file, &(fs_stat_t){++c->req});
            return;
        case S_CLOSE_HELLO:
        case S_CLOSE_ROOT:
        case S_CLOSE_DEEP:
        case S_CLOSE_NEW:
        case S_CLOSE_G:
            if (c->file != OS_HANDLE_NONE)
                os_handle_close(ctx, c->file);
            c->file = OS_HANDLE_NONE;
            c->step++;
            continue;
        case S_OPEN_ROOT:
            c->cookie = 0;
            open_path(ctx, c, "/", FS_O_READ);
            return;
        case S_READDIR:
            fs_readdir_send(ctx, c->file, &(fs_readdir_t){++c->req, c->cookie});
            return;
        case S_OPEN_DEEP:
            open_path(ctx, c, "/dir/sub/deep.txt", FS_O_READ);
            return;
        case S_OPEN_MISSING:
            open_path(ctx, c, "/missing", FS_O_READ);
            return;
        case S_MKDIR:
            m.mk.req = ++c->req;
            m.mk.mode = 0755;
            strcpy(m.mk.path, "/new");
            fs_mkdir_send(ctx, c->fs, &m.mk);
            return;
        case S_CREATE:
            open_path(ctx, c, "/new/f", FS_O_WRITE | FS_O_CREAT | FS_O_EXCL);
            return;
        case S_WRITE:
            m.w.req = ++c->req;
            m.w.off = 0;
            m.w.data_len = sizeof hello - 1;
            memcpy(m.w.data, hello, sizeof hello - 1);
            fs_write_send(ctx, c->file, &m.w);
            return;
        case S_FSYNC:
            fs_fsync_send(ctx, c->file, &(fs_fsync_t){++c->req});
            return;
        case S_RENAME:
            m.rn.req = ++c->req;
            strcpy(m.rn.from, "/new/f");
            strcpy(m.rn.to, "/new/g");
            fs_rename_send(ctx, c->fs, &m.rn);
            return;
        case S_OPEN_G:
            open_path(ctx, c, "/new/g", FS_O_READ);
            return;
        case S_UNLINK:
            m.ul.req = ++c->req;
            strcpy(m.ul.path, "/new/g");
            fs_unlink_send(ctx, c->fs, &m.ul);
            return;
        case S_RMDIR:
            m.rd.req = ++c->req;
            strcpy(m.rd.path, "/new");
            fs_rmdir_send(ctx, c->fs, &m.rd);
            return;
        case S_STATFS:
            fs_statfs_send(ctx, c->fs, &(fs_statfs_t){++c->req});
            return;
        case S_SYNC:
            fs_sync_send(ctx, c->fs, &(fs_sync_t){++c->req});
            return;
        default:
            R.done = true;
            R.done_ns = sim_now();
            return;
        }
    }
}

static void client_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    c->fs = c->file = OS_HANDLE_NONE;
    init_connect_iface(ctx, REQ_FS, &fs_iface);
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    if (ev->kind == OS_EV_PEER_CLOSED) {
        if (!R.done)
            fail("the fs server closed a channel");
        return;
    }
    if (ev->kind != OS_EV_MESSAGE || R.done)
        return;
    if (ev->handle == init_channel(ctx)) {
        init_connected_t cn;
        if (init_connected_decode(ev, &cn) == 0 && cn.req == REQ_FS) {
            c->fs = cn.chan;
            next(ctx, c);
        } else {
            fail("init refused the connect to fs");
        }
        return;
    }
    R.answered++;
    union {
        fs_opened_t o;
        fs_dirents_t d;
    } m;
    if (ev->type == fs_msg_opened && fs_opened_decode(ev, &m.o) == 0) {
        c->file = m.o.chan;
    } else if (ev->type == fs_msg_dirents && fs_dirents_decode(ev, &m.d) == 0) {
        if (m.d.count > 0) {
            c->cookie = m.d.next;
            next(ctx, c); /* the next page */
            return;
        }
    } else if (ev->type == fs_msg_error) {
        fail("the fs server called a request malformed");
    }
    for (size_t k = 0; k < ev->nhandles; k++)
        if (ev->type != fs_msg_opened)
            os_handle_close(ctx, ev->handles[k]);
    c->step++;
    next(ctx, c);
}

static const os_program_t client = {"client", sizeof(client_t), client_start, client_event};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: record_fs IMAGE OUT.db\n");
        return 2;
    }
    static const char manifest[] = "program fs\n"
                                   "program client reach=fs\n";
    static const os_program_t *image[64];
    size_t n = 0;
    for (const os_program_t *const *p = orrery_programs; *p && n < 62; p++)
        image[n++] = *p;
    image[n++] = &client;
    image[n] = NULL;

    char err[256];
    sim_disk_t *disk = sim_disk_open(argv[1], err, sizeof err);
    if (!disk) {
        fprintf(stderr, "record_fs: %s\n", err);
        return 2;
    }
    trace_recorder *rec;
    trace_run_info info = {.platform = "sim",
                           .seed = 1,
                           .manifest = manifest,
                           .workers = 1,
                           .command = "tests/traces/record_fs IMAGE (tests/traces/record.sh)"};
    if (trace_recorder_open(argv[2], &info, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "record_fs: %s\n", err);
        sim_disk_free(disk);
        return 2;
    }
    sim_config_t cfg = {.programs = image,
                        .seed = 1,
                        .init_arg = manifest,
                        .init_arg_len = sizeof manifest - 1,
                        .disk = disk,
                        .trace = trace_recorder_sink(rec)};
    if (sim_boot(&cfg) != 0) {
        fprintf(stderr, "record_fs: the node did not boot\n");
        return 1;
    }
    /* until the client is done, then 100 ms more (the server's last completions) */
    for (uint64_t steps = 0; steps < 10000000 && !R.failed; steps++) {
        if (R.done && sim_now() > R.done_ns + 100000000ull)
            break;
        if (!sim_step())
            break;
    }
    fputs(sim_console_output(NULL), stderr);
    long leaks = sim_teardown();
    int rc = trace_recorder_close(rec, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "record_fs: %s\n", err);
    sim_disk_free(disk);
    bool ok = R.done && !R.failed && leaks == 0 && rc == 0;
    printf("record_fs: %d answers, %s\n", R.answered, ok ? "recorded" : "FAILED");
    return ok ? 0 : 1;
}
