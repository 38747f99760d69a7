/* test_fs_server_sim.c — the fs server in the simulator, where device latency is virtual time:
 * a burst that fills the request queue (every channel held), and a device that fails every
 * write (the volume turns read-only and fsync says OS_EIO), the write-back timer, readdir over
 * a directory of many pages with a name removed, and an unlinked open file freed at its last
 * close. */
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
enum { DIRFILES = 150 }; /* names in d/: several blocks, more than one readdir page */
#define DIRNAME "file-with-a-rather-long-name-"
static const char hello[] = "hello, orrery\n";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_fs_server_simXXXXXX");
    assert_non_null(mkdtemp(dir));
    char cmd[768];
    snprintf(cmd, sizeof cmd,
             "mkdir %s/src && printf 'hello, orrery\\n' > %s/src/hello.txt && "
             "yes orrery | head -c 300000 > %s/src/big && mkdir %s/src/d && "
             "for i in $(seq -f %%03g 0 %d); do echo $i > %s/src/d/%s$i; done && "
             "mke2fs -q -F -t ext2 -b 1024 -d %s/src %s/disk.img 4M >/dev/null",
             dir, dir, dir, dir, DIRFILES - 1, dir, DIRNAME, dir, dir);
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

static void run_script(sim_disk_t *d)
{
    start(d);
    int status = sim_run(10000000);
    if (scripts[0].fail[0])
        fail_msg("%s\n%s", scripts[0].fail, console());
    if (!atomic_load(&scripts[0].done))
        fail_msg("the script stopped at step %d\n%s", atomic_load(&scripts[0].at), console());
    assert_int_equal(0, status);
}

static int step_count(void)
{
    int n = 0;
    while (scripts[0].steps[n].op != OP_END)
        n++;
    return n;
}

/* Each of d/'s names once, in pages (the cookie of each page's end starts the next); a name
 * removed is gone from the next listing and the others stay; a cookie never handed out is
 * OS_EINVAL, a block's start is a good one; a file is not a directory; a symlink's text
 * reads at an offset, a read past its end gives what is left. */
static void test_readdir_pages_and_remove(void **state)
{
    (void)state;
    sim_disk_t *d = boot();
    S(.op = OP_OPEN, .slot = 0, .path = "d", .flags = FS_O_READ);
    S(.op = OP_READDIR, .slot = 0);
    int all = step_count() - 1;
    S(.op = OP_READDIR, .slot = 0, .off = 13, .expect = OS_EINVAL);
    S(.op = OP_READDIR, .slot = 0, .off = 2048);
    S(.op = OP_OPEN, .slot = 1, .path = "hello.txt", .flags = FS_O_READ);
    S(.op = OP_READDIR, .slot = 1, .expect = OS_ENOTDIR);
    /* a symlink opened FS_O_NOFOLLOW reads as its target's text, from any offset */
    S(.op = OP_SYMLINK, .path = "ln", .path2 = "hello.txt");
    S(.op = OP_OPEN, .slot = 2, .path = "ln", .flags = FS_O_READ | FS_O_NOFOLLOW);
    S(.op = OP_READ, .slot = 2, .off = 3, .len = 8, .data = "lo.txt", .data_len = 6);
    S(.op = OP_READ, .slot = 2, .off = 0, .len = 4, .data = "hell", .data_len = 4);
    S(.op = OP_RMDIR, .path = "d", .expect = OS_ENOTEMPTY);
    S(.op = OP_UNLINK, .path = "d/" DIRNAME "007");
    S(.op = OP_UNLINK, .path = "d/" DIRNAME "007", .expect = OS_ENOENT);
    S(.op = OP_UNLINK, .path = "d", .expect = OS_EISDIR);
    S(.op = OP_READDIR, .slot = 0);
    int after = step_count() - 1;
    S(.op = OP_SHUTDOWN);
    run_script(d);
    seen_t *sn = scripts[0].seen;
    assert_int_equal(DIRFILES + 2, sn[all].nnames);
    assert_true(sn[all].pages >= 2);
    assert_int_equal(DIRFILES + 1, sn[after].nnames);
    /* names holds the last listing: every name but the one removed, each once */
    for (int i = 0; i < DIRFILES; i++) {
        char name[64];
        snprintf(name, sizeof name, "\n" DIRNAME "%03d\n", i);
        const char *at = strstr(scripts[0].names, name);
        if (i == 7 ? at != NULL : at == NULL || strstr(at + 1, name) != NULL)
            fail_msg("after unlink of %s007, readdir of d/ has %s %d times", DIRNAME, name + 1,
                     at ? 1 + (strstr(at + 1, name) != NULL) : 0);
    }
    assert_int_equal(0, sim_teardown());
    sim_disk_free(d);
}

/* A file unlinked while open reads on; its inode and blocks come back when its last channel
 * closes (the server frees it itself), not before. */
static void test_unlinked_file_freed_at_last_close(void **state)
{
    (void)state;
    static char data[20000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 23);
    sim_disk_t *d = boot();
    S(.op = OP_STATFS);
    int before = step_count() - 1;
    S(.op = OP_OPEN, .slot = 0, .path = "tmp", .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT,
      .mode = 0644);
    S(.op = OP_WRITEALL, .slot = 0, .data = data, .data_len = sizeof data);
    S(.op = OP_OPEN, .slot = 1, .path = "tmp", .flags = FS_O_READ);
    S(.op = OP_UNLINK, .path = "tmp");
    S(.op = OP_OPEN, .slot = 2, .path = "tmp", .flags = FS_O_READ, .expect = OS_ENOENT);
    S(.op = OP_CLOSE, .slot = 0);
    S(.op = OP_READALL, .slot = 1, .data = data, .data_len = sizeof data);
    S(.op = OP_STATFS);
    int open = step_count() - 1;
    S(.op = OP_CLOSE, .slot = 1);
    S(.op = OP_WAITFREE, .flag = before);
    S(.op = OP_STATFS);
    int closed = step_count() - 1;
    S(.op = OP_SHUTDOWN);
    run_script(d);
    seen_t *sn = scripts[0].seen;
    assert_int_equal(sn[before].info.free_inodes - 1, sn[open].info.free_inodes);
    assert_true(sn[open].info.free_blocks < sn[before].info.free_blocks);
    assert_int_equal(sn[before].info.free_inodes, sn[closed].info.free_inodes);
    assert_int_equal(sn[before].info.free_blocks, sn[closed].info.free_blocks);
    assert_int_equal(0, sim_teardown());
    sim_disk_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_fills_the_queue),
        cmocka_unit_test(test_failed_write_makes_the_volume_read_only),
        cmocka_unit_test(test_write_back_timer),
        cmocka_unit_test(test_readdir_pages_and_remove),
        cmocka_unit_test(test_unlinked_file_freed_at_last_close),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
