/* test_fs_server_sim.c — the fs server in the simulator, where device latency is virtual time:
 * a burst that fills the request queue (every channel held), and a device that fails every
 * write (the volume turns read-only and fsync says OS_EIO). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <image.h>
#include <sim/blk.h>
#include <sim/faults.h>
#include <sim/sim.h>

#include "fs_client.h"

static const os_program_t *const image[] = {&orrery_init, &orrery_fs, &fsc_programs[0], NULL};
static const char manifest[] = "program fs\nprogram fsc0 reach=fs,init\n";
static char dir[64], img[160];
static const char hello[] = "hello, orrery\n";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_fs_server_simXXXXXX");
    assert_non_null(mkdtemp(dir));
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "mkdir %s/src && printf 'hello, orrery\\n' > %s/src/hello.txt && "
             "yes orrery | head -c 300000 > %s/src/big && "
             "mke2fs -q -F -t ext2 -b 1024 -d %s/src %s/disk.img 4M >/dev/null",
             dir, dir, dir, dir, dir);
    assert_int_equal(0, system(cmd));
    snprintf(img, sizeof img, "%s/disk.img", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void add(step_t s)
{
    int n = 0;
    while (scripts[0].steps[n].op != OP_END)
        n++;
    assert_true(n + 1 < STEPS_MAX);
    scripts[0].steps[n] = s;
}
#define S(...) add((step_t){__VA_ARGS__})

static sim_disk_t *boot(void)
{
    memset(scripts, 0, sizeof scripts);
    for (int i = 0; i < FLAGS; i++)
        atomic_store(&flags[i], 0);
    scripts[0].program = "fsc0";
    char err[256];
    sim_disk_t *d = sim_disk_open(img, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    return d;
}

static void start(sim_disk_t *d)
{
    sim_config_t cfg = {.programs = image,
                        .init_arg = manifest,
                        .init_arg_len = sizeof manifest - 1,
                        .seed = 7,
                        .disk = d};
    assert_int_equal(0, sim_boot(&cfg));
}

static const char *console(void)
{
    size_t n;
    return sim_console_output(&n);
}

/* 120 reads sent at once while the first waits for the disk: the queue of 16 fills, the
 * server holds every channel, and every read is answered. */
static void test_burst_fills_the_queue(void **state)
{
    (void)state;
    sim_disk_t *d = boot();
    S(.op = OP_OPEN, .slot = 0, .path = "big", .flags = FS_O_READ);
    S(.op = OP_BURST, .slot = 0, .off = 250000, .len = 120, .data_len = 5);
    S(.op = OP_OPEN, .slot = 0, .path = "hello.txt", .flags = FS_O_READ);
    S(.op = OP_READ, .slot = 0, .len = 100, .data = hello, .data_len = strlen(hello));
    S(.op = OP_SHUTDOWN);
    start(d);
    int status = sim_run(10000000);
    if (scripts[0].fail[0])
        fail_msg("%s\n%s", scripts[0].fail, console());
    assert_int_equal(0, status);
    if (!strstr(console(), "[fs] 16 requests wait: no channel is read until they are answered"))
        fail_msg("the queue never filled:\n%s", console());
    assert_int_equal(0, sim_teardown());
    sim_disk_free(d);
}

/* Every device request fails from some point on: the write-back fails, the volume turns
 * read-only with a log line and a note, the fsync that waited says OS_EIO, later changes
 * OS_EROFS; what the cache holds still reads. */
static void test_failed_write_makes_the_volume_read_only(void **state)
{
    (void)state;
    sim_disk_t *d = boot();
    S(.op = OP_OPEN, .slot = 0, .path = "w", .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT,
      .mode = 0644);
    S(.op = OP_WRITE, .slot = 0, .data = "abc", .data_len = 3, .expect = 3);
    S(.op = OP_SETFLAG, .flag = 0);
    S(.op = OP_WAITFLAG, .flag = 1);
    S(.op = OP_FSYNC, .slot = 0, .expect = OS_EIO);
    S(.op = OP_STATFS);
    S(.op = OP_OPEN, .slot = 1, .path = "x", .flags = FS_O_WRITE | FS_O_CREAT, .expect = OS_EROFS);
    S(.op = OP_WRITE, .slot = 0, .data = "d", .data_len = 1, .expect = OS_EROFS);
    S(.op = OP_READ, .slot = 0, .len = 10, .data = "abc", .data_len = 3);
    S(.op = OP_SYNC, .expect = OS_EIO);
    S(.op = OP_SHUTDOWN);
    start(d);
    while (!atomic_load(&flags[0]) && sim_step())
        ;
    assert_true(atomic_load(&flags[0]));
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = SIM_FAULT_BLK_EIO;
    f.blk_eio_pct = 100;
    assert_int_equal(0, sim_faults_install(&f));
    atomic_store(&flags[1], 1);
    int status = sim_run(10000000);
    if (scripts[0].fail[0])
        fail_msg("%s\n%s", scripts[0].fail, console());
    assert_int_equal(0, status);
    fs_fsinfo_t *info = &scripts[0].seen[5].info;
    assert_int_equal(FS_INFO_RO, info->flags & FS_INFO_RO);
    if (!strstr(info->note, "read-only: a device write at sector"))
        fail_msg("note: %s", info->note);
    if (!strstr(console(), "failed (EIO): the volume is read-only from now on"))
        fail_msg("no log line:\n%s", console());
    sim_faults_remove();
    assert_int_equal(0, sim_teardown());
    sim_disk_free(d);
}

static uint64_t flushes(void)
{
    sim_blk_stats_t b;
    sim_blk_stats(&b);
    return b.flushes;
}

/* Without any sync: 100 ms after the last change the cache is written back and flushed; and
 * changes that never pause are written back 5 s after the first one. */
static void test_write_back_timer(void **state)
{
    (void)state;
    sim_disk_t *d = boot();
    S(.op = OP_OPEN, .slot = 0, .path = "w", .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT,
      .mode = 0644);
    S(.op = OP_SLEEP, .len = 1000000000ull);
    S(.op = OP_SETFLAG, .flag = 0);
    S(.op = OP_WRITE, .slot = 0, .data = "abc", .data_len = 3, .expect = 3);
    S(.op = OP_SLEEP, .len = 50000000ull); /* 50 ms: not yet */
    S(.op = OP_SETFLAG, .flag = 1);
    S(.op = OP_SLEEP, .len = 100000000ull); /* 150 ms: written back */
    S(.op = OP_SETFLAG, .flag = 2);
    for (int i = 0; i < 90; i++) { /* a write every 60 ms for 5.4 s */
        S(.op = OP_WRITE, .slot = 0, .off = (uint64_t)i, .data = "x", .data_len = 1, .expect = 1);
        S(.op = OP_SLEEP, .len = 60000000ull);
        if (i == 40)
            S(.op = OP_SETFLAG, .flag = 3);
    }
    S(.op = OP_SETFLAG, .flag = 4);
    S(.op = OP_WRITE, .slot = 0, .data = "y", .data_len = 1, .expect = 1);
    S(.op = OP_SLEEP, .len = 50000000ull);
    S(.op = OP_SETFLAG, .flag = 5);
    S(.op = OP_SHUTDOWN);
    start(d);
    uint64_t at[6];
    for (int k = 0; k < 6; k++) {
        while (!atomic_load(&flags[k]) && sim_step())
            ;
        assert_true(atomic_load(&flags[k]));
        at[k] = flushes();
    }
    assert_int_equal(0, sim_run(10000000));
    if (scripts[0].fail[0])
        fail_msg("%s\n%s", scripts[0].fail, console());
    assert_int_equal(at[0], at[1]); /* 50 ms after a change: nothing yet */
    assert_true(at[2] > at[1]);     /* 150 ms: written back and flushed */
    assert_int_equal(at[2], at[3]); /* 2.4 s of changes 60 ms apart: waiting */
    assert_true(at[4] > at[3]);     /* 5.4 s: the 5 s cap wrote them back */
    assert_int_equal(at[4], at[5]); /* the cap counts from the first change after that */
    assert_int_equal(0, sim_teardown());
    sim_disk_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_fills_the_queue),
        cmocka_unit_test(test_failed_write_makes_the_volume_read_only),
        cmocka_unit_test(test_write_back_timer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
