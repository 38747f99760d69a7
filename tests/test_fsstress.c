/* test_fsstress.c — fsstress against a model fs server on the simulator: what it logs as fsync'ed
 * is what the model holds durably, a power cut and reboot make it check its ledger, and a file
 * that lost its bytes fails that check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <iface/fs.h>
#include <iface/init_client.h>
#include <image.h>
#include <sim/blk.h>
#include <sim/sim.h>

/*
 * The model: the fs interface over files in memory, each with its volatile contents (what
 * reads see) and its durable ones (as of its last fsync, or the ledger's). A power cut keeps
 * the durable side only: the harshest disk the protocol allows, where nothing that was not
 * fsync'ed survives (changes since, renames and unlinks included, are all lost). Its store is
 * this file's statics, which survive the node's reboot (a test's statics are not node state).
 */
enum { MFILES = 64, MDATA = 64 * 1024, MCHANS = 32 };

typedef struct mfile {
    char path[32];
    bool present, dpresent; /* volatile / durable */
    uint32_t len, dlen;
    uint8_t data[MDATA], ddata[MDATA];
} mfile_t;

typedef struct mchan {
    os_handle_t chan;
    int f;
    bool write, append;
} mchan_t;

static struct {
    mfile_t files[MFILES];
    char dirs[8][16];
    int ndirs;
    mchan_t chans[MCHANS];
    os_handle_t ctl[4];
    int nctl;
    uint64_t fsyncs, syncs, ops;
} M;

static int mfind(const char *path)
{
    for (int i = 0; i < MFILES; i++)
        if (M.files[i].present && strcmp(M.files[i].path, path) == 0)
            return i;
    return -1;
}

static bool parent_exists(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == path)
        return true;
    for (int i = 0; i < M.ndirs; i++)
        if (strlen(M.dirs[i]) == (size_t)(slash - path) && !memcmp(M.dirs[i], path, slash - path))
            return true;
    return false;
}

static int mcreate(const char *path)
{
    for (int i = 0; i < MFILES; i++)
        if (!M.files[i].present && !M.files[i].dpresent) {
            snprintf(M.files[i].path, sizeof M.files[i].path, "%s", path);
            M.files[i].present = true;
            M.files[i].len = 0;
            return i;
        }
    fail_msg("model full");
    return -1;
}

static void reply(os_ctx_t *ctx, os_handle_t ch, uint32_t req, int32_t status)
{
    fs_reply_t r = {req, status};
    assert_int_equal(0, fs_reply_send(ctx, ch, &r));
}

static void model_start(os_ctx_t *ctx)
{
    /* a boot after a power cut: only what was fsync'ed is there */
    for (int i = 0; i < MFILES; i++) {
        mfile_t *f = &M.files[i];
        f->present = f->dpresent;
        f->len = f->dlen;
        memcpy(f->data, f->ddata, f->dlen);
    }
    memset(M.chans, 0, sizeof M.chans);
    M.nctl = 0;
    assert_int_equal(0, init_register_iface(ctx, 1, &fs_iface));
}

static void on_ctl(os_ctx_t *ctx, os_handle_t ch, const os_event_t *ev)
{
    union {
        fs_open_t open;
        fs_mkdir_t mkdir;
        fs_unlink_t unlink;
        fs_rename_t rename;
        fs_sync_t sync;
    } m;
    M.ops++;
    if (fs_open_decode(ev, &m.open) == 0) {
        int f = mfind(m.open.path);
        if (f < 0 && !(m.open.flags & FS_O_CREAT))
            return reply(ctx, ch, m.open.req, OS_ENOENT);
        if (f >= 0 && (m.open.flags & FS_O_CREAT) && (m.open.flags & FS_O_EXCL))
            return reply(ctx, ch, m.open.req, OS_EEXIST);
        if (f < 0 && !parent_exists(m.open.path))
            return reply(ctx, ch, m.open.req, OS_ENOENT);
        if (f < 0)
            f = mcreate(m.open.path);
        if ((m.open.flags & FS_O_TRUNC) && (m.open.flags & FS_O_WRITE))
            M.files[f].len = 0;
        int c = 0;
        while (M.chans[c].chan)
            c++;
        assert_true(c < MCHANS);
        os_handle_t mine, theirs;
        assert_int_equal(0, os_channel_create(ctx, &mine, &theirs));
        M.chans[c] =
            (mchan_t){mine, f, (m.open.flags & FS_O_WRITE) != 0, (m.open.flags & FS_O_APPEND) != 0};
        fs_opened_t o = {.req = m.open.req,
                         .ino = (uint32_t)f + 11,
                         .type = FS_T_REG,
                         .size = M.files[f].len,
                         .chan = theirs};
        assert_int_equal(0, fs_opened_send(ctx, ch, &o));
    } else if (fs_mkdir_decode(ev, &m.mkdir) == 0) {
        for (int i = 0; i < M.ndirs; i++)
            if (strcmp(M.dirs[i], m.mkdir.path) == 0)
                return reply(ctx, ch, m.mkdir.req, OS_EEXIST);
        snprintf(M.dirs[M.ndirs++], sizeof M.dirs[0], "%.15s", m.mkdir.path);
        reply(ctx, ch, m.mkdir.req, 0);
    } else if (fs_unlink_decode(ev, &m.unlink) == 0) {
        int f = mfind(m.unlink.path);
        if (f < 0)
            return reply(ctx, ch, m.unlink.req, OS_ENOENT);
        M.files[f].present = false;
        reply(ctx, ch, m.unlink.req, 0);
    } else if (fs_rename_decode(ev, &m.rename) == 0) {
        int f = mfind(m.rename.from), t = mfind(m.rename.to);
        if (f < 0)
            return reply(ctx, ch, m.rename.req, OS_ENOENT);
        if (t >= 0)
            M.files[t].present = false;
        /* the name moves; the durable side stays where it was (a cut loses the rename) */
        t = mcreate(m.rename.to);
        M.files[t].len = M.files[f].len;
        memcpy(M.files[t].data, M.files[f].data, M.files[f].len);
        M.files[f].present = false;
        reply(ctx, ch, m.rename.req, 0);
    } else if (fs_sync_decode(ev, &m.sync) == 0) {
        /* everything, names included, reaches the disk */
        for (int i = 0; i < MFILES; i++) {
            mfile_t *f = &M.files[i];
            f->dpresent = f->present;
            f->dlen = f->len;
            memcpy(f->ddata, f->data, f->len);
        }
        M.syncs++;
        reply(ctx, ch, m.sync.req, 0);
    } else {
        fail_msg("model: unexpected control message %u", (unsigned)ev->type);
    }
}

static void on_file(os_ctx_t *ctx, mchan_t *c, const os_event_t *ev)
{
    static fs_write_t w;
    union {
        fs_read_t read;
        fs_truncate_t trunc;
        fs_fsync_t fsync;
    } m;
    static fs_data_t d;
    mfile_t *f = &M.files[c->f];
    M.ops++;
    if (fs_write_decode(ev, &w) == 0) {
        if (!c->write)
            return reply(ctx, c->chan, w.req, OS_EACCES);
        uint64_t off = c->append ? f->len : w.off;
        assert_true(off + w.data_len <= MDATA);
        if (off > f->len)
            memset(f->data + f->len, 0, off - f->len);
        memcpy(f->data + off, w.data, w.data_len);
        if (off + w.data_len > f->len)
            f->len = (uint32_t)(off + w.data_len);
        reply(ctx, c->chan, w.req, (int32_t)w.data_len);
    } else if (fs_read_decode(ev, &m.read) == 0) {
        d.req = m.read.req;
        uint64_t n = m.read.off >= f->len ? 0 : f->len - m.read.off;
        if (n > m.read.len)
            n = m.read.len;
        if (n > FS_DATA_MAX)
            n = FS_DATA_MAX;
        memcpy(d.data, f->data + m.read.off, n);
        d.data_len = (uint32_t)n;
        assert_int_equal(0, fs_data_send(ctx, c->chan, &d));
    } else if (fs_truncate_decode(ev, &m.trunc) == 0) {
        if (!c->write)
            return reply(ctx, c->chan, m.trunc.req, OS_EACCES);
        assert_true(m.trunc.size <= MDATA);
        if (m.trunc.size > f->len)
            memset(f->data + f->len, 0, m.trunc.size - f->len);
        f->len = (uint32_t)m.trunc.size;
        reply(ctx, c->chan, m.trunc.req, 0);
    } else if (fs_fsync_decode(ev, &m.fsync) == 0) {
        /* this file's bytes and its name reach the disk */
        for (int i = 0; i < MFILES; i++)
            if (i != c->f && M.files[i].dpresent && !strcmp(M.files[i].path, f->path))
                M.files[i].dpresent = false;
        f->dpresent = true;
        f->dlen = f->len;
        memcpy(f->ddata, f->data, f->len);
        M.fsyncs++;
        reply(ctx, c->chan, m.fsync.req, 0);
    } else {
        fail_msg("model: unexpected file message %u", (unsigned)ev->type);
    }
}

static void model_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_new_client_t nc;
    if (ev->kind == OS_EV_PEER_CLOSED) {
        for (int c = 0; c < MCHANS; c++)
            if (M.chans[c].chan == ev->handle)
                M.chans[c].chan = 0;
        os_handle_close(ctx, ev->handle);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_new_client_decode(ev, &nc) == 0)
            M.ctl[M.nctl++] = nc.chan;
        return;
    }
    for (int i = 0; i < M.nctl; i++)
        if (M.ctl[i] == ev->handle)
            return on_ctl(ctx, ev->handle, ev);
    for (int c = 0; c < MCHANS; c++)
        if (M.chans[c].chan && M.chans[c].chan == ev->handle)
            return on_file(ctx, &M.chans[c], ev);
    fail_msg("model: a message on an unknown handle");
}

static const os_program_t model = {"fs", 0, model_start, model_event};
static const os_program_t *const image[] = {&orrery_init, &model, &orrery_fsstress, NULL};

/* ---- checks ------------------------------------------------------------------------------- */

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

/* The facts of the output that bind (fs-check's rule), each checked against the model's
 * durable side. Returns how many. */
static int check_facts(const char *out)
{
    struct {
        char path[32];
        unsigned len, crc;
        bool on;
    } facts[64];
    int nf = 0, n = 0;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char path[32];
        unsigned len, crc;
        int k;
        if (sscanf(l, "[fsstress] fsynced %31s len %u crc32 0x%x", path, &len, &crc) == 3) {
            for (k = 0; k < nf && strcmp(facts[k].path, path); k++)
                ;
            if (k == nf)
                nf++;
            assert_true(nf < 64);
            snprintf(facts[k].path, sizeof facts[k].path, "%s", path);
            facts[k].len = len;
            facts[k].crc = crc;
            facts[k].on = true;
        } else if (sscanf(l, "[fsstress] superseded %31s", path) == 1) {
            for (k = 0; k < nf; k++)
                if (!strcmp(facts[k].path, path))
                    facts[k].on = false;
        }
    }
    for (int k = 0; k < nf; k++) {
        if (!facts[k].on)
            continue;
        n++;
        int f = -1;
        for (int i = 0; i < MFILES; i++)
            if (M.files[i].dpresent && !strcmp(M.files[i].path, facts[k].path))
                f = i;
        assert_true(f >= 0);
        assert_int_equal(facts[k].len, M.files[f].dlen);
        assert_int_equal(facts[k].crc, crc32_of(M.files[f].ddata, M.files[f].dlen));
    }
    return n;
}

static void boot(uint64_t seed, const char *manifest)
{
    memset(&M, 0, sizeof M);
    sim_config_t cfg = {.programs = image,
                        .init_arg = manifest,
                        .init_arg_len = strlen(manifest),
                        .seed = seed,
                        .event_cost_max_ns = 2000};
    assert_int_equal(0, sim_boot(&cfg));
}

static const char stress[] = "program fs restart=never\n"
                             "program fsstress restart=never reach=fs,init\n";

/* Step until at least `fsyncs` fsyncs were answered (the workload never ends by itself). */
static void run_until(uint64_t fsyncs)
{
    for (int i = 0; i < 5000000 && M.fsyncs < fsyncs; i++)
        assert_true(sim_step());
    assert_true(M.fsyncs >= fsyncs);
}

static void test_facts_are_what_the_disk_holds_then_a_reboot_verifies_them(void **state)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        boot(seed, stress);
        run_until(40 + seed * 17);
        size_t len;
        int facts = check_facts(sim_console_output(&len));
        assert_true(facts > 0);
        assert_null(strstr(sim_console_output(&len), "error"));
        assert_int_equal(0, sim_node_power_cut(0, true));
        int status = sim_run(5000000);
        const char *out = sim_console_output(&len);
        char want[64];
        snprintf(want, sizeof want, "[fsstress] verified %d file(s), 0 failed", facts);
        if (!strstr(out, want))
            fail_msg("seed %llu: no '%s' in:\n%s", (unsigned long long)seed, want,
                     out + (len > 2000 ? len - 2000 : 0));
        assert_int_equal(0, status);
        assert_int_equal(0, sim_teardown());
    }
}

static void test_a_file_that_lost_its_bytes_fails_the_check(void **state)
{
    boot(3, stress);
    run_until(60);
    size_t len;
    assert_true(check_facts(sim_console_output(&len)) > 0);
    /* the last fact that binds: spoil its durable bytes */
    const char *out = sim_console_output(&len);
    const char *last = NULL;
    for (const char *p = strstr(out, "fsynced /"); p; p = strstr(p + 1, "fsynced /"))
        last = p;
    char path[32];
    assert_int_equal(1, sscanf(last, "fsynced %31s", path));
    int f = -1;
    for (int i = 0; i < MFILES; i++)
        if (M.files[i].dpresent && !strcmp(M.files[i].path, path))
            f = i;
    assert_true(f >= 0);
    M.files[f].dlen = M.files[f].dlen ? M.files[f].dlen - 1 : 7;
    assert_int_equal(0, sim_node_power_cut(0, true));
    int status = sim_run(5000000);
    out = sim_console_output(&len);
    char want[64];
    snprintf(want, sizeof want, "[fsstress] verify FAILED %s", path);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, " 1 failed"));
    assert_int_equal(1, status);
    assert_int_equal(0, sim_teardown());
}

static void test_a_hole_in_the_ledger_fails_the_check(void **state)
{
    boot(4, stress);
    run_until(50);
    /* a record in the middle of the ledger lost: the facts after it must not be trusted */
    int f = -1;
    for (int i = 0; i < MFILES; i++)
        if (M.files[i].dpresent && !strcmp(M.files[i].path, "/fsstress.ledger"))
            f = i;
    assert_true(f >= 0 && M.files[f].dlen >= 64 * 10);
    memset(M.files[f].ddata + 64 * 5, 0, 64);
    assert_int_equal(0, sim_node_power_cut(0, true));
    int status = sim_run(5000000);
    size_t len;
    const char *out = sim_console_output(&len);
    assert_non_null(strstr(out, "[fsstress] ledger: 5 record(s) to check"));
    assert_non_null(strstr(out, "[fsstress] verify FAILED /fsstress.ledger: record 6 is not "
                                "whole, but record 7, written after its fsync, is"));
    assert_int_equal(1, status);
    assert_int_equal(0, sim_teardown());
}

static void test_ops_n_syncs_and_shuts_down(void **state)
{
    boot(5, "program fs restart=never\n"
            "program fsstress restart=never reach=fs,init arg=ops=150\n");
    int status = sim_run(5000000);
    size_t len;
    const char *out = sim_console_output(&len);
    assert_non_null(strstr(out, "[fsstress] done: 150 ops, "));
    assert_non_null(strstr(out, ", 0 errors"));
    assert_int_equal(0, status);
    /* after the final sync every file is claimed ("(sync)"), each as the model holds it */
    assert_true(M.syncs > 0);
    assert_non_null(strstr(out, " (sync)\n"));
    int files = 0;
    for (int i = 0; i < MFILES; i++)
        files += M.files[i].present && M.files[i].path[1] == 'd';
    assert_true(files > 0);
    assert_int_equal(files, check_facts(out));
    assert_int_equal(0, sim_teardown());
}

static void test_bad_arg_is_refused(void **state)
{
    boot(1, "program fs restart=never\n"
            "program fsstress restart=never reach=fs,init arg=ops=x\n");
    sim_run(100000);
    size_t len;
    assert_non_null(strstr(sim_console_output(&len), "[fsstress] bad arg 'ops=x'"));
    sim_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facts_are_what_the_disk_holds_then_a_reboot_verifies_them),
        cmocka_unit_test(test_a_file_that_lost_its_bytes_fails_the_check),
        cmocka_unit_test(test_a_hole_in_the_ledger_fails_the_check),
        cmocka_unit_test(test_ops_n_syncs_and_shuts_down),
        cmocka_unit_test(test_bad_arg_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
