/* test_sim_blk.c — the simulated blk0: requests, the write cache, faults, power cuts and
 * reboots, determinism, and disk images saved and loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <hal/blk.h>
#include <iface/init_client.h>
#include <image.h>
#include <k/fault.h>
#include <k/kernel.h>
#include <sim/blk.h>
#include <sim/faults.h>
#include <sim/sim.h>

/*
 * `disker` opens blk0. On its first boot it writes sectors 0..15 (one request each), waits
 * for them, flushes, then writes 16..31 (two sectors a request) and does not flush them.
 * MODE_RW then reads 0..31 back and shuts down; MODE_CUT stops there (the test cuts the
 * power), and on the next boot reads 0..31 and shuts down. MODE_ERR tries bad requests and
 * fills the queue. What it sees goes into the statics below (not in the node's state).
 */
enum { MODE_RW, MODE_CUT, MODE_ERR };
enum { NSEC = 32, DISK_SECTORS = 64, SEC = HAL_BLK_SECTOR };

static struct {
    int mode;
    int boots;
    bool writes_done; /* the unflushed writes of the first boot all completed */
    uint8_t seen[NSEC][SEC];
    int32_t read_status[NSEC];
    uint32_t reads_back;
    uint32_t eio;
    uint64_t order; /* FNV-1a over (code, id, status) of each completion, in order */
    uint64_t info_sectors;
    int bad[8];
    int full;
} T;

typedef struct disker {
    os_handle_t dev;
    uint32_t pending;
    int phase; /* 0 writes, 1 flush, 2 unflushed writes, 3 idle, 4 reads */
} disker_t;

static void fill(uint8_t *buf, uint64_t sector)
{
    for (size_t i = 0; i < SEC; i++)
        buf[i] = (uint8_t)(sector * 31 + i + 1);
    memcpy(buf, &sector, sizeof sector);
}

static bool is_pattern(const uint8_t *buf, uint64_t sector)
{
    uint8_t want[SEC];
    fill(want, sector);
    return memcmp(buf, want, SEC) == 0;
}

static bool is_zero(const uint8_t *buf)
{
    for (size_t i = 0; i < SEC; i++)
        if (buf[i])
            return false;
    return true;
}

static int submit(os_ctx_t *ctx, uint32_t code, uint64_t id, uint64_t sector, uint32_t count)
{
    disker_t *d = os_state(ctx);
    static uint8_t m[sizeof(hal_blk_req_t) + HAL_BLK_MAX_SECTORS * SEC];
    hal_blk_req_t r = {id, sector, count, 0};
    memcpy(m, &r, sizeof r);
    size_t len = sizeof r;
    if (code == HAL_BLK_WRITE) {
        for (uint32_t k = 0; k < count && k < HAL_BLK_MAX_SECTORS; k++)
            fill(m + sizeof r + (size_t)k * SEC, sector + k);
        len += (size_t)count * SEC;
    }
    int rc = os_device_write(ctx, d->dev, code, m, len);
    if (rc == 0)
        d->pending++;
    return rc;
}

static void shutdown_node(os_ctx_t *ctx)
{
    init_shutdown_t s = {1, 0};
    init_shutdown_send(ctx, init_channel(ctx), &s);
}

static void start_reads(os_ctx_t *ctx)
{
    disker_t *d = os_state(ctx);
    d->phase = 4;
    for (uint32_t s = 0; s < NSEC; s++)
        assert_int_equal(0, submit(ctx, HAL_BLK_READ, s, s, 1));
}

static void try_bad(os_ctx_t *ctx)
{
    disker_t *d = os_state(ctx);
    hal_blk_req_t r = {0, 0, 1, 0};
    uint8_t big[sizeof r + 8 * SEC] = {0};
    int i = 0;
    T.bad[i++] = os_device_write(ctx, d->dev, 9, &r, sizeof r);     /* unknown code */
    T.bad[i++] = os_device_write(ctx, d->dev, HAL_BLK_READ, &r, 8); /* short */
    r.count = 0;
    memcpy(big, &r, sizeof r);
    T.bad[i++] = os_device_write(ctx, d->dev, HAL_BLK_READ, big, sizeof r);
    r.count = 8;
    memcpy(big, &r, sizeof r);
    T.bad[i++] = os_device_write(ctx, d->dev, HAL_BLK_WRITE, big, sizeof big);
    r.count = 2;
    r.sector = DISK_SECTORS - 1; /* runs past the end */
    memcpy(big, &r, sizeof r);
    T.bad[i++] = os_device_write(ctx, d->dev, HAL_BLK_READ, big, sizeof r);
    r.count = 1;
    r.sector = 0;
    memcpy(big, &r, sizeof r); /* a write whose length does not match its count */
    T.bad[i++] = os_device_write(ctx, d->dev, HAL_BLK_WRITE, big, sizeof r + 2 * SEC);
    memcpy(big, &r, sizeof r); /* a flush with a count */
    T.bad[i++] = os_device_write(ctx, d->dev, HAL_BLK_FLUSH, big, sizeof r);
    /* the last sector is fine; then the queue fills */
    assert_int_equal(0, submit(ctx, HAL_BLK_READ, 0, DISK_SECTORS - 1, 1));
    for (uint32_t n = 1; n < SIM_BLK_INFLIGHT_MAX; n++)
        assert_int_equal(0, submit(ctx, HAL_BLK_READ, n, 0, 1));
    T.full = submit(ctx, HAL_BLK_READ, 99, 0, 1);
}

static void disker_start(os_ctx_t *ctx)
{
    disker_t *d = os_state(ctx);
    T.boots++;
    assert_int_equal(0, os_device_open(ctx, "blk0", &d->dev));
}

static void disker_event(os_ctx_t *ctx, const os_event_t *ev)
{
    disker_t *d = os_state(ctx);
    if (ev->kind != OS_EV_DEVICE)
        return;
    if (ev->type == HAL_BLK_INFO) {
        hal_blk_info_t info;
        assert_int_equal(sizeof info, ev->len);
        memcpy(&info, ev->data, sizeof info);
        T.info_sectors = info.sectors;
        assert_int_equal(HAL_BLK_MAX_SECTORS, info.max_sectors);
        if (T.mode == MODE_ERR)
            try_bad(ctx);
        else if (T.boots > 1)
            start_reads(ctx);
        else
            for (uint32_t s = 0; s < 16; s++)
                assert_int_equal(0, submit(ctx, HAL_BLK_WRITE, s, s, 1));
        return;
    }
    hal_blk_req_t r;
    assert_true(ev->len >= sizeof r);
    memcpy(&r, ev->data, sizeof r);
    uint64_t words[3] = {ev->type, r.id, (uint64_t)(int64_t)r.status};
    for (size_t i = 0; i < sizeof words; i++)
        T.order = (T.order ^ ((const uint8_t *)words)[i]) * 0x100000001b3ull;
    T.eio += r.status == OS_EIO;
    d->pending--;
    if (ev->type == HAL_BLK_READ && d->phase == 4) {
        assert_true(r.id < NSEC);
        T.read_status[r.id] = r.status;
        if (r.status == 0) {
            assert_int_equal(sizeof r + SEC, ev->len);
            memcpy(T.seen[r.id], (const uint8_t *)ev->data + sizeof r, SEC);
        }
        T.reads_back++;
    }
    if (d->pending)
        return;
    if (T.mode == MODE_ERR) {
        shutdown_node(ctx);
    } else if (d->phase == 0) {
        d->phase = 1;
        assert_int_equal(0, submit(ctx, HAL_BLK_FLUSH, 100, 0, 0));
    } else if (d->phase == 1) {
        d->phase = 2;
        for (uint32_t k = 0; k < 8; k++)
            assert_int_equal(0, submit(ctx, HAL_BLK_WRITE, 16 + 2 * k, 16 + 2 * k, 2));
    } else if (d->phase == 2) {
        T.writes_done = true;
        d->phase = 3;
        if (T.mode == MODE_RW)
            start_reads(ctx);
    } else if (d->phase == 4) {
        shutdown_node(ctx);
    }
}

static const os_program_t disker = {"disker", sizeof(disker_t), disker_start, disker_event};
static const os_program_t *const image[] = {&orrery_init, &disker, NULL};
static const char manifest[] = "program disker reach=init\n";

typedef struct outcome {
    int status;
    long leaks;
    sim_blk_stats_t st;
    sim_fault_stats_t fst;
} outcome_t;

static void boot(sim_disk_t *disk, int mode, uint64_t seed, uint32_t faults, uint32_t pct)
{
    memset(&T, 0, sizeof T);
    T.mode = mode;
    T.order = 0xcbf29ce484222325ull;
    sim_config_t cfg = {0};
    cfg.programs = image;
    cfg.seed = seed;
    cfg.init_arg = manifest;
    cfg.init_arg_len = strlen(manifest);
    cfg.disk = disk;
    assert_int_equal(0, sim_boot(&cfg));
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = faults;
    f.blk_eio_pct = f.blk_torn_pct = f.blk_lost_pct = pct;
    assert_int_equal(0, sim_faults_install(&f));
}

static outcome_t finish(int status)
{
    outcome_t o = {0};
    o.status = status;
    sim_blk_stats(&o.st);
    sim_faults_stats(&o.fst);
    sim_faults_remove();
    o.leaks = sim_teardown();
    return o;
}

static outcome_t run(sim_disk_t *disk, int mode, uint64_t seed, uint32_t faults, uint32_t pct)
{
    boot(disk, mode, seed, faults, pct);
    return finish(sim_run(1000000));
}

/* MODE_CUT: run until the unflushed writes completed, cut the power, reboot, run to the end. */
static outcome_t run_cut(sim_disk_t *disk, uint64_t seed, size_t *dirty_at_cut)
{
    /* delayed deliveries: the kernel's fault hooks must outlive the reboot */
    boot(disk, MODE_CUT, seed, SIM_FAULT_DELAY, 0);
    for (int n = 0; !T.writes_done && n < 1000000; n++)
        assert_true(sim_step());
    assert_true(T.writes_done);
    *dirty_at_cut = sim_disk_dirty(disk);
    const k_fault_ops_t *hooks = k_fault_get();
    assert_non_null(hooks);
    assert_int_equal(0, sim_node_power_cut(0, true));
    assert_ptr_equal(hooks, k_fault_get());
    return finish(sim_run(1000000));
}

static void test_write_flush_read(void **state)
{
    (void)state;
    sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
    assert_non_null(disk);
    outcome_t o = run(disk, MODE_RW, 1, 0, 0);
    assert_int_equal(0, o.status);
    assert_int_equal(0, o.leaks);
    assert_int_equal(DISK_SECTORS, T.info_sectors);
    assert_int_equal(NSEC, T.reads_back);
    for (uint64_t s = 0; s < NSEC; s++) {
        assert_int_equal(0, T.read_status[s]);
        assert_true(is_pattern(T.seen[s], s)); /* reads see the cache */
    }
    const uint8_t *m = sim_disk_medium(disk);
    for (uint64_t s = 0; s < 16; s++)
        assert_true(is_pattern(m + s * SEC, s)); /* flushed: on the medium */
    for (uint64_t s = NSEC; s < DISK_SECTORS; s++)
        assert_true(is_zero(m + s * SEC));
    assert_int_equal(NSEC, o.st.reads);
    assert_int_equal(24, o.st.writes);
    assert_int_equal(1, o.st.flushes);
    assert_int_equal(0, o.st.eio + o.st.torn + o.st.lost + o.st.invalid + o.st.power_cuts);
    /* what the flush did not cover is in the cache, or landed early (whole) */
    size_t landed = 0;
    for (uint64_t s = 16; s < NSEC; s++) {
        assert_true(is_pattern(m + s * SEC, s) || is_zero(m + s * SEC));
        landed += is_pattern(m + s * SEC, s);
    }
    assert_int_equal(16, sim_disk_dirty(disk) + landed);
    assert_true(o.st.early > 0);
    sim_disk_flush(disk);
    assert_int_equal(0, sim_disk_dirty(disk));
    for (uint64_t s = 0; s < NSEC; s++)
        assert_true(is_pattern(m + s * SEC, s));
    sim_disk_free(disk);
}

static void test_bad_requests_are_refused_at_once(void **state)
{
    (void)state;
    sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
    outcome_t o = run(disk, MODE_ERR, 2, 0, 0);
    assert_int_equal(0, o.status);
    assert_int_equal(0, o.leaks);
    for (int i = 0; i < 7; i++)
        assert_int_equal(OS_EINVAL, T.bad[i]);
    assert_int_equal(OS_EFULL, T.full);
    assert_int_equal(8, o.st.invalid);
    assert_int_equal(SIM_BLK_INFLIGHT_MAX, o.st.reads);
    assert_int_equal(0, o.st.writes);
    sim_disk_free(disk);
}

static void test_power_cut_keeps_flushed_writes_and_reboots(void **state)
{
    (void)state;
    uint64_t kept = 0, lost = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
        size_t dirty = 0;
        outcome_t o = run_cut(disk, seed, &dirty);
        assert_int_equal(0, o.status);
        assert_int_equal(0, o.leaks);
        assert_int_equal(2, T.boots); /* the node booted again on the same disk */
        assert_int_equal(1, o.st.power_cuts);
        assert_int_equal(dirty, o.st.cut_kept_sectors + o.st.cut_lost_sectors);
        assert_int_equal(0, sim_disk_dirty(disk));
        const uint8_t *m = sim_disk_medium(disk);
        assert_int_equal(NSEC, T.reads_back);
        uint64_t here_lost = 0;
        for (uint64_t s = 0; s < NSEC; s++) {
            assert_int_equal(0, T.read_status[s]);
            /* the reboot reads what reached the medium */
            assert_memory_equal(m + s * SEC, T.seen[s], SEC);
            if (s < 16)
                assert_true(is_pattern(T.seen[s], s)); /* flushed: survived */
            else if (is_zero(T.seen[s]))
                here_lost++;
            else
                assert_true(is_pattern(T.seen[s], s)); /* whole or never written */
        }
        assert_int_equal(o.st.cut_lost_sectors, here_lost);
        kept += o.st.cut_kept_sectors;
        lost += o.st.cut_lost_sectors;
        sim_disk_free(disk);
    }
    /* the seed decides: across these seeds some unflushed sectors survived, some did not */
    assert_true(kept > 0);
    assert_true(lost > 0);
}

static void test_power_cut_in_flight_drops_completions(void **state)
{
    (void)state;
    sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
    boot(disk, MODE_CUT, 3, 0, 0);
    /* the first writes go out at once and take 100..200 us: cut in the middle, for good */
    assert_int_equal(0, sim_node_power_cut_at(0, 150000, false));
    int status = sim_run(1000000);
    outcome_t o = finish(status);
    assert_int_equal(-1, o.status); /* down, not booted again */
    assert_int_equal(0, o.leaks);
    assert_int_equal(1, T.boots);
    assert_int_equal(1, o.st.power_cuts);
    assert_true(o.st.dropped > 0);
    assert_false(T.writes_done);
    /* every sector is written whole or not at all; nothing was flushed */
    const uint8_t *m = sim_disk_medium(disk);
    for (uint64_t s = 0; s < 16; s++)
        assert_true(is_zero(m + s * SEC) || is_pattern(m + s * SEC, s));
    assert_int_equal(OS_EINVAL, sim_node_power_cut(5, false));
    sim_disk_free(disk);
}

/* Node 0 waits 50 ms and shuts the run down; node 1 has the disk. */
typedef struct waiter {
    os_handle_t timer;
} waiter_t;

static void waiter_start(os_ctx_t *ctx)
{
    waiter_t *w = os_state(ctx);
    assert_int_equal(0, os_timer_create(ctx, &w->timer));
    os_timer_set(ctx, w->timer, os_clock_now(ctx) + 50000000);
}

static void waiter_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_TIMER)
        shutdown_node(ctx);
}

static const os_program_t waiter = {"waiter", sizeof(waiter_t), waiter_start, waiter_event};
static const os_program_t *const image2[] = {&orrery_init, &disker, &waiter, NULL};

static void test_power_cut_of_one_node_among_several(void **state)
{
    (void)state;
    static const char m0[] = "program waiter reach=init\n";
    sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
    memset(&T, 0, sizeof T);
    T.mode = MODE_CUT;
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof cfg);
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = image2;
        cfg[i].seed = 21 + (uint64_t)i;
        cfg[i].init_arg = i == 0 ? m0 : manifest;
        cfg[i].init_arg_len = strlen(cfg[i].init_arg);
    }
    cfg[0].disk = cfg[1].disk = disk; /* one disk, two nodes: refused */
    assert_int_equal(OS_EBUSY, sim_boot_nodes(cfg, 2));
    cfg[0].disk = NULL;
    assert_int_equal(0, sim_boot_nodes(cfg, 2));
    for (int n = 0; !T.writes_done && n < 1000000; n++)
        assert_true(sim_step());
    assert_true(T.writes_done);
    assert_int_equal(0, sim_node_power_cut(1, true));
    int status = sim_run(1000000);
    int st1 = -2;
    assert_true(sim_node_shutdown_status(1, &st1));
    sim_blk_stats_t st;
    sim_blk_stats(&st);
    long leaks = sim_teardown();
    assert_int_equal(0, status); /* node 0 ran on, untouched */
    assert_int_equal(0, st1);    /* node 1 booted again, read its disk and shut down */
    assert_int_equal(0, leaks);
    assert_int_equal(2, T.boots);
    assert_int_equal(1, st.power_cuts);
    assert_int_equal(NSEC, T.reads_back);
    const uint8_t *m = sim_disk_medium(disk);
    for (uint64_t s = 0; s < NSEC; s++) {
        assert_memory_equal(m + s * SEC, T.seen[s], SEC);
        if (s < 16)
            assert_true(is_pattern(T.seen[s], s));
    }
    sim_disk_free(disk);
}

static void test_faults_are_counted(void **state)
{
    (void)state;
    uint32_t faults =
        SIM_FAULT_BLK_EIO | SIM_FAULT_BLK_TORN | SIM_FAULT_BLK_LOST | SIM_FAULT_BLK_LATENCY;
    sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
    outcome_t o = run(disk, MODE_RW, 5, faults, 25);
    assert_int_equal(0, o.status);
    assert_int_equal(0, o.leaks);
    assert_true(o.st.eio > 0);
    assert_true(o.st.torn > 0);
    assert_true(o.st.lost > 0);
    assert_int_equal(o.fst.blk_failed, o.st.eio);
    assert_int_equal(o.fst.blk_torn, o.st.torn);
    assert_int_equal(o.fst.blk_lost, o.st.lost);
    assert_int_equal(o.st.eio, T.eio); /* each one completed with OS_EIO */
    /* a read that succeeded sees its sector whole, or not written (lost, torn, failed) */
    for (uint64_t s = 0; s < NSEC; s++)
        if (T.read_status[s] == 0)
            assert_true(is_pattern(T.seen[s], s) || is_zero(T.seen[s]));
        else
            assert_int_equal(OS_EIO, T.read_status[s]);
    sim_disk_free(disk);
}

typedef struct det {
    uint64_t order, end_ns;
    uint8_t medium[DISK_SECTORS * SEC];
    sim_blk_stats_t st;
} det_t;

static void det_run(uint64_t seed, det_t *out)
{
    uint32_t faults =
        SIM_FAULT_BLK_EIO | SIM_FAULT_BLK_TORN | SIM_FAULT_BLK_LOST | SIM_FAULT_BLK_LATENCY;
    sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
    boot(disk, MODE_CUT, seed, faults, 10);
    assert_int_equal(0, sim_node_power_cut_at(0, 400000, true));
    int status = sim_run(1000000);
    out->end_ns = sim_now();
    outcome_t o = finish(status);
    assert_int_equal(0, o.status);
    assert_int_equal(0, o.leaks);
    out->order = T.order;
    out->st = o.st;
    memcpy(out->medium, sim_disk_medium(disk), sizeof out->medium);
    sim_disk_free(disk);
}

static void test_same_seed_same_disk_and_order(void **state)
{
    (void)state;
    static det_t a, b, c;
    det_run(11, &a);
    det_run(11, &b);
    assert_int_equal(a.order, b.order);
    assert_int_equal(a.end_ns, b.end_ns);
    assert_memory_equal(a.medium, b.medium, sizeof a.medium);
    assert_memory_equal(&a.st, &b.st, sizeof a.st);
    det_run(12, &c);
    assert_true(c.order != a.order);
}

static void test_save_and_reload(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_sim_blk.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/disk.img", dir);

    sim_disk_t *disk = sim_disk_new(DISK_SECTORS);
    outcome_t o = run(disk, MODE_RW, 1, 0, 0);
    assert_int_equal(0, o.status);
    assert_int_equal(0, sim_disk_save(disk, path, err, sizeof err));
    assert_int_equal(0, sim_disk_dirty(disk)); /* a clean power-off: the cache went first */
    sim_disk_t *again = sim_disk_open(path, err, sizeof err);
    assert_non_null(again);
    assert_int_equal(DISK_SECTORS, sim_disk_sectors(again));
    assert_memory_equal(sim_disk_medium(disk), sim_disk_medium(again), DISK_SECTORS * SEC);
    /* the reloaded disk boots: the node reads what the first run wrote */
    o = run_cut(again, 4, &(size_t){0});
    assert_int_equal(0, o.status);
    for (uint64_t s = 0; s < NSEC; s++)
        assert_true(is_pattern(T.seen[s], s));
    /* saved again over our own file */
    assert_int_equal(0, sim_disk_save(again, path, err, sizeof err));

    /* bad images and targets: one-line reasons, nothing overwritten */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/odd.img", dir);
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    assert_int_equal(100, fwrite(sim_disk_medium(disk), 1, 100, f));
    fclose(f);
    assert_null(sim_disk_open(bad, err, sizeof err));
    assert_non_null(strstr(err, "not a non-zero multiple of 512"));
    snprintf(bad, sizeof bad, "%s/missing.img", dir);
    assert_null(sim_disk_open(bad, err, sizeof err));
    assert_non_null(strstr(err, "missing.img"));
    assert_null(sim_disk_open(dir, err, sizeof err));
    assert_int_equal(-1, sim_disk_save(disk, dir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
    struct stat st;
    assert_int_equal(0, stat(dir, &st));
    assert_true(S_ISDIR(st.st_mode));
    assert_null(sim_disk_new(0));

    sim_disk_free(disk);
    sim_disk_free(again);
    snprintf(bad, sizeof bad, "%s/odd.img", dir);
    unlink(bad);
    unlink(path);
    assert_int_equal(0, rmdir(dir)); /* no temporary file left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_flush_read),
        cmocka_unit_test(test_bad_requests_are_refused_at_once),
        cmocka_unit_test(test_power_cut_keeps_flushed_writes_and_reboots),
        cmocka_unit_test(test_power_cut_in_flight_drops_completions),
        cmocka_unit_test(test_power_cut_of_one_node_among_several),
        cmocka_unit_test(test_faults_are_counted),
        cmocka_unit_test(test_same_seed_same_disk_and_order),
        cmocka_unit_test(test_save_and_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
