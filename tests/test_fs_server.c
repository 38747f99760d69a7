/* test_fs_server.c — the fs server hosted on an image made by the host's mke2fs: every message
 * of the fs interface from scripted clients (fs_client.c), read-only clients and disks, many
 * clients, a client that dies with files open, corrupt images; e2fsck and debugfs judge the
 * image after the run. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hl/hosted.h>
#include <image.h>

#include "fs_client.h"

enum {
    BIG = 300 * 1024 + 123, /* past 268 KiB: double indirect blocks on 1 KiB blocks */
    SPARSE = 70 << 20,      /* over 64 MiB, mostly holes */
    DIRFILES = 150,         /* names in d/: more than one readdir page */
    WDATA = 20000,
    HUGE = 3 << 20, /* more than the server's 1 MiB cache: write-back must make room */
    MANYDATA = 60000,
    GUARD_MS = 120000, /* a hang guard only */
};

static const os_program_t *const image[] = {&orrery_init,
                                            &orrery_fs,
                                            &fsc_programs[0],
                                            &fsc_programs[1],
                                            &fsc_programs[2],
                                            &fsc_programs[3],
                                            &fsc_programs[4],
                                            &fsc_programs[5],
                                            &fsc_programs[6],
                                            &fsc_programs[7],
                                            NULL};

static char dir[64], src[128], img[160];
static uint8_t *big, *sparse, *wdata, *many[4], *huge;
static const char hello[] = "hello, orrery\n";
static char console[1 << 16];

/* ---- host helpers ---------------------------------------------------------------------- */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("'%s' exited with %d", cmd, rc);
}

static void put(const char *name, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", src, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal((ssize_t)len, write(fd, data, len));
    close(fd);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7 + (i >> 11) + seed * 13 + 1);
}

/* The tree mke2fs -d copies into every image. */
static void make_tree(void)
{
    snprintf(src, sizeof src, "%s/src", dir);
    sh("mkdir -p %s/d %s/sub/deep %s/empty", src, src, src);
    put("hello.txt", hello, strlen(hello));
    big = malloc(BIG);
    fill(big, BIG, 1);
    put("big.bin", big, BIG);
    sparse = calloc(1, SPARSE);
    fill(sparse, 5000, 2);
    fill(sparse + (33 << 20) + 100, 3000, 3);
    fill(sparse + SPARSE - 10, 10, 4);
    char path[256];
    snprintf(path, sizeof path, "%s/sparse.bin", src);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(5000, pwrite(fd, sparse, 5000, 0));
    assert_int_equal(3000, pwrite(fd, sparse + (33 << 20) + 100, 3000, (33 << 20) + 100));
    assert_int_equal(10, pwrite(fd, sparse + SPARSE - 10, 10, SPARSE - 10));
    close(fd);
    for (int i = 0; i < DIRFILES; i++) {
        snprintf(path, sizeof path, "d/file-with-a-rather-long-name-%03d", i);
        put(path, path, strlen(path));
    }
    put("sub/deep/f.txt", "deep\n", 5);
    sh("ln -s hello.txt %s/link && ln -s sub %s/dlink", src, src);
    wdata = malloc(WDATA);
    fill(wdata, WDATA, 5);
    huge = malloc(HUGE);
    fill(huge, HUGE, 6);
    for (int i = 0; i < 4; i++) {
        many[i] = malloc(MANYDATA);
        fill(many[i], MANYDATA, 10 + (unsigned)i);
    }
}

/* A fresh 1 KiB-block image of the tree. */
static void make_image(void)
{
    snprintf(img, sizeof img, "%s/disk.img", dir);
    sh("rm -f %s && mke2fs -q -F -t ext2 -b 1024 -d %s %s 16M >/dev/null", img, src, img);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_fs_serverXXXXXX");
    assert_non_null(mkdtemp(dir));
    make_tree();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sh("rm -rf %s", dir);
    free(big);
    free(sparse);
    free(wdata);
    free(huge);
    for (int i = 0; i < 4; i++)
        free(many[i]);
    return 0;
}

static void reset_scripts(void)
{
    memset(scripts, 0, sizeof scripts);
    for (int i = 0; i < FLAGS; i++)
        atomic_store(&flags[i], 0);
    for (int i = 0; i < SCRIPTS; i++)
        scripts[i].program = fsc_programs[i].name;
}

/* Boot init, fs and the clients of the manifest on the image `spec`; the status of the run. */
static int run(const char *manifest, const char *spec)
{
    hl_blk_config_t disk = {.fd = -1};
    char err[256];
    if (spec && hl_blk_open(spec, &disk, err, sizeof err) != 0)
        fail_msg("%s", err);
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = image;
    rc.init_program = "init";
    rc.init_arg = manifest;
    rc.init_arg_len = strlen(manifest);
    int in[2]; /* console input that never ends */
    assert_int_equal(0, pipe2(in, O_CLOEXEC));
    char path[] = "/tmp/test_fs_server_outXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    rc.console_in = in[0];
    rc.console_out = fd;
    rc.workers = 2;
    rc.disk = spec ? &disk : NULL;
    rc.timeout_ms =
        getenv("TEST_FS_GUARD_MS") ? strtoull(getenv("TEST_FS_GUARD_MS"), NULL, 10) : GUARD_MS;
    int status = hl_run(&rc);
    hl_blk_close(&disk);
    ssize_t n = pread(fd, console, sizeof console - 1, 0);
    console[n > 0 ? n : 0] = 0;
    close(fd);
    close(in[0]);
    close(in[1]);
    if (getenv("TEST_FS_VERBOSE"))
        fprintf(stderr, "%s", console);
    return status;
}

static void check_scripts(int status)
{
    for (int i = 0; i < SCRIPTS; i++)
        if (scripts[i].fail[0])
            fail_msg("%s\n%s", scripts[i].fail, console);
    if (status != 0) {
        for (int i = 0; i < SCRIPTS; i++)
            if (scripts[i].steps[0].op != OP_END)
                fprintf(stderr, "%s: at step %d (op %d)\n", scripts[i].program,
                        atomic_load(&scripts[i].at),
                        scripts[i].steps[atomic_load(&scripts[i].at)].op);
        fail_msg("the run ended with %d\n%s", status, console);
    }
    if (strstr(console, "[init] fs "))
        fail_msg("the fs server ended:\n%s", console);
}

/* Append a step to script i. */
static void add(int i, step_t s)
{
    script_t *sc = &scripts[i];
    int n = 0;
    while (sc->steps[n].op != OP_END)
        n++;
    assert_true(n + 1 < STEPS_MAX);
    sc->steps[n] = s;
}

static int last(int i)
{
    int n = 0;
    while (scripts[i].steps[n].op != OP_END)
        n++;
    return n - 1;
}

#define S(i, ...) add(i, (step_t){__VA_ARGS__})

/* The host's e2fsck finds the image clean. */
static void fsck_clean(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "e2fsck -fn %s >%s/fsck.out 2>&1", img, dir);
    if (system(cmd) != 0) {
        char out[4096] = "";
        snprintf(cmd, sizeof cmd, "%s/fsck.out", dir);
        FILE *f = fopen(cmd, "r");
        if (f) {
            size_t n = fread(out, 1, sizeof out - 1, f);
            out[n] = 0;
            fclose(f);
        }
        fail_msg("e2fsck -fn failed:\n%s\nconsole:\n%s", out, console);
    }
}

/* debugfs -R 'cat PATH' gives exactly these bytes. */
static void debugfs_is(const char *path, const void *data, size_t len)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "debugfs -R 'cat %s' %s 2>/dev/null", path, img);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    uint8_t *got = malloc(len + 1);
    size_t n = fread(got, 1, len + 1, p);
    pclose(p);
    if (n != len || memcmp(got, data, len) != 0)
        fail_msg("debugfs cat %s: %zu bytes, expected %zu (or they differ)", path, n, len);
    free(got);
}

/* debugfs's answer to `request` holds `needle`. */
static void debugfs_has(const char *request, const char *needle)
{
    char cmd[512], out[8192];
    snprintf(cmd, sizeof cmd, "debugfs -R '%s' %s 2>/dev/null", request, img);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    if (!strstr(out, needle))
        fail_msg("debugfs %s: no '%s' in:\n%s", request, needle, out);
}

/* ---- the read side ----------------------------------------------------------------------- */

static void test_read_side(void **state)
{
    (void)state;
    make_image();
    reset_scripts();
    char longname[400];
    memset(longname, 'x', 300);
    longname[300] = 0;
    S(0, .op = OP_OPEN, .slot = 0, .path = "hello.txt", .flags = FS_O_READ,
      .len = sizeof hello - 1);
    S(0, .op = OP_READALL, .slot = 0, .data = hello, .data_len = strlen(hello));
    S(0, .op = OP_READ, .slot = 0, .off = 7, .len = 6, .data = "orrery", .data_len = 6);
    S(0, .op = OP_READ, .slot = 0, .off = 1000, .len = 10, .data = "", .data_len = 0);
    S(0, .op = OP_STAT, .slot = 0);
    int stat_hello = last(0);
    S(0, .op = OP_OPEN, .slot = 1, .path = "big.bin", .flags = FS_O_READ, .len = BIG);
    S(0, .op = OP_READALL, .slot = 1, .data = big, .data_len = BIG);
    S(0, .op = OP_OPEN, .slot = 2, .path = "/sparse.bin", .flags = FS_O_READ, .len = SPARSE);
    S(0, .op = OP_READALL, .slot = 2, .data = sparse, .data_len = SPARSE);
    S(0, .op = OP_CLOSE, .slot = 0);
    S(0, .op = OP_CLOSE, .slot = 1);
    S(0, .op = OP_CLOSE, .slot = 2);
    S(0, .op = OP_OPEN, .slot = 6, .path = "empty", .flags = FS_O_READ);
    S(0, .op = OP_READDIR, .slot = 6);
    int readdir_empty = last(0);
    S(0, .op = OP_OPEN, .slot = 0, .path = "d", .flags = FS_O_READ);
    S(0, .op = OP_READDIR, .slot = 0);
    int readdir_d = last(0);
    S(0, .op = OP_READDIR, .slot = 0, .off = 13,
      .expect = OS_EINVAL); /* a cookie never handed out */
    S(0, .op = OP_READ, .slot = 0, .len = 10, .expect = OS_EISDIR);
    S(0, .op = OP_OPEN, .slot = 1, .path = "hello.txt", .flags = FS_O_READ);
    S(0, .op = OP_READDIR, .slot = 1, .expect = OS_ENOTDIR);
    S(0, .op = OP_OPEN, .slot = 2, .path = "link", .flags = FS_O_READ);
    S(0, .op = OP_READALL, .slot = 2, .data = hello, .data_len = strlen(hello));
    S(0, .op = OP_OPEN, .slot = 3, .path = "link", .flags = FS_O_READ | FS_O_NOFOLLOW);
    S(0, .op = OP_READALL, .slot = 3, .data = "hello.txt", .data_len = 9);
    S(0, .op = OP_OPEN, .slot = 4, .path = "dlink/deep/f.txt", .flags = FS_O_READ);
    S(0, .op = OP_READALL, .slot = 4, .data = "deep\n", .data_len = 5);
    S(0, .op = OP_OPEN, .slot = 5, .path = "sub/../sub/./deep//f.txt", .flags = FS_O_READ);
    S(0, .op = OP_READALL, .slot = 5, .data = "deep\n", .data_len = 5);
    S(0, .op = OP_OPEN, .slot = 7, .path = "nosuch", .flags = FS_O_READ, .expect = OS_ENOENT);
    S(0, .op = OP_OPEN, .slot = 7, .path = "hello.txt/x", .flags = FS_O_READ, .expect = OS_ENOTDIR);
    S(0, .op = OP_OPEN, .slot = 7, .path = "nosuchdir/x", .flags = FS_O_READ, .expect = OS_ENOENT);
    S(0, .op = OP_OPEN, .slot = 7, .path = longname, .flags = FS_O_READ, .expect = OS_ENAMETOOLONG);
    S(0, .op = OP_OPEN, .slot = 7, .path = "hello.txt", .flags = 0x1000, .expect = OS_EINVAL);
    S(0, .op = OP_OPEN, .slot = 7, .path = "hello.txt", .flags = FS_O_TRUNC, .expect = OS_EINVAL);
    S(0, .op = OP_STATFS);
    int statfs = last(0);
    S(0, .op = OP_GARBAGE, .slot = -1, .flags = 999, .len = 8, .expect = OS_EPROTO);
    S(0, .op = OP_GARBAGE, .slot = -1, .flags = fs_msg_open, .len = 3, .expect = OS_EPROTO);
    S(0, .op = OP_GARBAGE, .slot = -1, .flags = fs_msg_read, .len = 16, .expect = OS_EPROTO);
    S(0, .op = OP_GARBAGE, .slot = 1, .flags = fs_msg_mkdir, .len = 12, .expect = OS_EPROTO);
    for (uint32_t type = 1; type <= 22; type++) { /* every type, short, on both channels */
        S(0, .op = OP_GARBAGE, .slot = -1, .flags = type, .len = 3, .expect = OS_EPROTO);
        S(0, .op = OP_GARBAGE, .slot = 1, .flags = type, .len = 3, .expect = OS_EPROTO);
    }
    S(0, .op = OP_READ, .slot = 1, .len = 5, .data = "hello",
      .data_len = 5); /* the channel goes on */
    S(0, .op = OP_WAITFLAG, .flag = 1);
    S(0, .op = OP_SHUTDOWN);
    /* a read-only client */
    S(1, .op = OP_OPEN, .slot = 0, .path = "hello.txt", .flags = FS_O_READ);
    S(1, .op = OP_READALL, .slot = 0, .data = hello, .data_len = strlen(hello));
    S(1, .op = OP_OPEN, .slot = 1, .path = "hello.txt", .flags = FS_O_READ | FS_O_WRITE,
      .expect = OS_EACCES);
    S(1, .op = OP_OPEN, .slot = 1, .path = "new", .flags = FS_O_CREAT | FS_O_WRITE,
      .expect = OS_EACCES);
    S(1, .op = OP_MKDIR, .path = "nd", .expect = OS_EACCES);
    S(1, .op = OP_UNLINK, .path = "hello.txt", .expect = OS_EACCES);
    S(1, .op = OP_RMDIR, .path = "empty", .expect = OS_EACCES);
    S(1, .op = OP_RENAME, .path = "hello.txt", .path2 = "x", .expect = OS_EACCES);
    S(1, .op = OP_SYMLINK, .path = "sl", .path2 = "x", .expect = OS_EACCES);
    S(1, .op = OP_STATFS);
    int statfs_ro = last(1);
    S(1, .op = OP_SETFLAG, .flag = 1);

    int status = run("program fs\nprogram fsc0 reach=fs,init\nprogram fsc1 reach=fs:ro\n", img);
    check_scripts(status);
    seen_t *sn = scripts[0].seen;
    assert_int_equal(strlen(hello), sn[stat_hello].attr.size);
    assert_int_equal(FS_T_REG, sn[stat_hello].attr.mode >> 12);
    assert_int_equal(1, sn[stat_hello].attr.links);
    assert_int_equal(DIRFILES + 2, sn[readdir_d].nnames);
    assert_true(sn[readdir_d].pages >= 2);
    assert_int_equal(2, sn[readdir_empty].nnames);
    if (strncmp(scripts[0].names, ".\n..\n", 5) != 0)
        fail_msg("readdir of d/: %.60s", scripts[0].names);
    for (int i = 0; i < DIRFILES; i++) {
        char name[64];
        snprintf(name, sizeof name, "\nfile-with-a-rather-long-name-%03d\n", i);
        if (!strstr(scripts[0].names, name))
            fail_msg("readdir of d/ missed %s", name + 1);
    }
    assert_int_equal(1024, sn[statfs].info.block_size);
    assert_int_equal(16384, sn[statfs].info.blocks);
    assert_int_equal(0, sn[statfs].info.flags & FS_INFO_CLIENT_RO);
    assert_int_equal(FS_INFO_CLIENT_RO, scripts[1].seen[statfs_ro].info.flags & FS_INFO_CLIENT_RO);
    fsck_clean();
}

/* The whole image file, to compare before and after a run. */
static uint8_t *slurp(size_t *len)
{
    int fd = open(img, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(0, fstat(fd, &sb));
    uint8_t *b = malloc((size_t)sb.st_size);
    assert_int_equal(sb.st_size, pread(fd, b, (size_t)sb.st_size, 0));
    close(fd);
    *len = (size_t)sb.st_size;
    return b;
}

/* Bytes at an offset of the image. */
static void poke(uint64_t off, const void *b, size_t n)
{
    int fd = open(img, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal((ssize_t)n, pwrite(fd, b, n, (off_t)off));
    close(fd);
}

/* A number from debugfs's answer to `request`, after `key` (e.g. "located at block "). */
static unsigned long debugfs_num(const char *request, const char *key, int base)
{
    char cmd[512], out[4096];
    snprintf(cmd, sizeof cmd, "debugfs -R '%s' %s 2>/dev/null", request, img);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    char *at = key ? strstr(out, key) : out;
    if (!at)
        fail_msg("debugfs %s: no '%s' in %s", request, key, out);
    return strtoul(at + (key ? strlen(key) : 0), NULL, base);
}

/* No blk0: the server says so once and ends cleanly (init then has nothing left to run). */
static void test_no_disk(void **state)
{
    (void)state;
    reset_scripts();
    int status = run("program fs\n", NULL);
    assert_int_equal(OS_EXIT_NOTHING_LEFT, status);
    assert_non_null(strstr(console, "[fs] no blk0 device\n"));
    assert_non_null(strstr(console, "[init] fs (task 2) exited\n"));
}

/* A read-only disk: the volume is read-only, every change OS_EROFS, the file untouched. */
static void test_read_only_disk(void **state)
{
    (void)state;
    make_image();
    size_t n0, n1;
    uint8_t *before = slurp(&n0);
    reset_scripts();
    S(0, .op = OP_OPEN, .slot = 0, .path = "hello.txt", .flags = FS_O_READ);
    S(0, .op = OP_READALL, .slot = 0, .data = hello, .data_len = strlen(hello));
    S(0, .op = OP_OPEN, .slot = 1, .path = "hello.txt", .flags = FS_O_READ | FS_O_WRITE,
      .expect = OS_EROFS);
    S(0, .op = OP_OPEN, .slot = 1, .path = "new", .flags = FS_O_WRITE | FS_O_CREAT,
      .expect = OS_EROFS);
    S(0, .op = OP_MKDIR, .path = "nd", .expect = OS_EROFS);
    S(0, .op = OP_UNLINK, .path = "hello.txt", .expect = OS_EROFS);
    S(0, .op = OP_RMDIR, .path = "empty", .expect = OS_EROFS);
    S(0, .op = OP_RENAME, .path = "hello.txt", .path2 = "x", .expect = OS_EROFS);
    S(0, .op = OP_SYMLINK, .path = "sl", .path2 = "x", .expect = OS_EROFS);
    S(0, .op = OP_SYNC);
    S(0, .op = OP_STATFS);
    int sf = last(0);
    S(0, .op = OP_SHUTDOWN);
    char spec[200];
    snprintf(spec, sizeof spec, "%s,ro", img);
    check_scripts(run("program fs\nprogram fsc0 reach=fs,init\n", spec));
    fs_fsinfo_t *info = &scripts[0].seen[sf].info;
    assert_int_equal(FS_INFO_RO, info->flags);
    assert_string_equal("read-only: the disk is read-only", info->note);
    uint8_t *after = slurp(&n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

/* The open-file table: 64 channels, the 65th OS_ENOSPC; a client that dies with files open
 * leaves none of them behind. */
static void test_open_table_and_a_dying_client(void **state)
{
    (void)state;
    make_image();
    reset_scripts();
    for (int i = 0; i < 60; i++)
        S(1, .op = OP_OPEN, .slot = i, .path = i % 2 ? "big.bin" : "d", .flags = FS_O_READ);
    S(1, .op = OP_SETFLAG, .flag = 0);
    S(1, .op = OP_EXIT);
    S(0, .op = OP_WAITFLAG, .flag = 0);
    for (int i = 0; i < 64; i++)
        S(0, .op = OP_OPEN, .slot = i, .path = "hello.txt", .flags = FS_O_READ, .flag = 1);
    S(0, .op = OP_OPEN, .slot = 64, .path = "hello.txt", .flags = FS_O_READ, .expect = OS_ENOSPC);
    S(0, .op = OP_CLOSE, .slot = 3);
    S(0, .op = OP_OPEN, .slot = 64, .path = "hello.txt", .flags = FS_O_READ, .flag = 1);
    S(0, .op = OP_READALL, .slot = 64, .data = hello, .data_len = strlen(hello));
    S(0, .op = OP_SHUTDOWN);
    check_scripts(
        run("program fs\nprogram fsc0 reach=fs,init\nprogram fsc1 reach=fs restart=never\n", img));
}

/* Corrupt images give errors and log lines naming the structure, never a crash. */
static void corrupt_script(void)
{
    reset_scripts();
    S(0, .op = OP_STATFS, .expect = ANY);
    S(0, .op = OP_OPEN, .slot = 0, .path = "hello.txt", .flags = FS_O_READ, .expect = ANY);
    S(0, .op = OP_READALL, .slot = 0, .expect = ANY);
    S(0, .op = OP_STAT, .slot = 0, .expect = ANY);
    S(0, .op = OP_OPEN, .slot = 1, .path = "d", .flags = FS_O_READ, .expect = ANY);
    S(0, .op = OP_READDIR, .slot = 1, .expect = ANY);
    S(0, .op = OP_OPEN, .slot = 2, .path = "d/file-with-a-rather-long-name-100", .flags = FS_O_READ,
      .expect = ANY);
    S(0, .op = OP_OPEN, .slot = 3, .path = "big.bin", .flags = FS_O_READ, .expect = ANY);
    S(0, .op = OP_READALL, .slot = 3, .expect = ANY);
    S(0, .op = OP_OPEN, .slot = 4, .path = "dlink/deep/f.txt", .flags = FS_O_READ, .expect = ANY);
    S(0, .op = OP_OPEN, .slot = 5, .path = "new", .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT,
      .expect = ANY);
    S(0, .op = OP_STATFS, .expect = ANY);
    S(0, .op = OP_SHUTDOWN);
}

static void corrupt_run(const char *want_log)
{
    check_scripts(run("program fs\nprogram fsc0 reach=fs,init\n", img));
    if (want_log && !strstr(console, want_log))
        fail_msg("no '%s' in:\n%s", want_log, console);
}

static void test_corrupt_images(void **state)
{
    (void)state;
    /* the superblock's magic: not mounted; statfs says why, the rest is OS_EIO */
    make_image();
    poke(1024 + 56, "\x00\x00", 2);
    corrupt_script();
    corrupt_run("cannot mount blk0: superblock: bad magic 0x0000 (not ext2)");
    assert_int_equal(OS_EIO, scripts[0].seen[1].status);
    assert_non_null(strstr(scripts[0].seen[0].info.note, "not mounted: superblock: bad magic"));
    /* group 0's inode table pointer (the descriptors are in block 2 on 1 KiB blocks) */
    make_image();
    poke(2048 + 8, "\xf0\xff\xff\xff", 4);
    corrupt_script();
    corrupt_run("group 0: inode table at block 4294967280 outside the volume");
    /* hello.txt's inode: a mode with no known type */
    make_image();
    unsigned long ino = debugfs_num("stat /hello.txt", "Inode: ", 10);
    unsigned long blk = debugfs_num("imap /hello.txt", "located at block ", 10);
    unsigned long off = debugfs_num("imap /hello.txt", "offset ", 16);
    poke(blk * 1024 + off, "\xff\xff", 2);
    corrupt_script();
    char want[80];
    snprintf(want, sizeof want, "inode %lu: bad mode 0177777", ino);
    corrupt_run(want);
    assert_int_equal(OS_EIO, scripts[0].seen[1].status);
    /* d's first directory block: an entry with rec_len 0 */
    make_image();
    unsigned long dblk = debugfs_num("blocks /d", NULL, 10);
    poke(dblk * 1024 + 12 + 4, "\x00\x00", 2);
    corrupt_script();
    corrupt_run("has rec_len 0");
    assert_int_equal(OS_EIO, scripts[0].seen[5].status);
    /* random bytes over the metadata, a few seeds */
    for (unsigned seed = 1; seed <= 6; seed++) {
        make_image();
        srand(seed);
        for (int k = 0; k < 40; k++) {
            uint8_t b = (uint8_t)rand();
            poke((uint64_t)(rand() % (200 * 1024)), &b, 1);
        }
        corrupt_script();
        corrupt_run(NULL);
    }
}

/* Every change, its errors, then sync: e2fsck finds the image clean and debugfs reads the
 * bytes the clients wrote. */
static void test_write_side(void **state)
{
    (void)state;
    make_image();
    reset_scripts();
    const uint32_t RW = FS_O_READ | FS_O_WRITE;
    S(0, .op = OP_OPEN, .slot = 0, .path = "new.txt", .flags = RW | FS_O_CREAT | FS_O_EXCL,
      .mode = 0640);
    S(0, .op = OP_WRITEALL, .slot = 0, .data = wdata, .data_len = WDATA);
    S(0, .op = OP_READALL, .slot = 0, .data = wdata, .data_len = WDATA);
    S(0, .op = OP_OPEN, .slot = 1, .path = "new.txt", .flags = RW | FS_O_CREAT | FS_O_EXCL,
      .expect = OS_EEXIST);
    S(0, .op = OP_TRUNC, .slot = 0, .len = 5000);
    S(0, .op = OP_STAT, .slot = 0);
    int st_trunc = last(0);
    S(0, .op = OP_WRITE, .slot = 0, .off = 100000, .data = "tail", .data_len = 4, .expect = 4);
    S(0, .op = OP_STAT, .slot = 0);
    int st_tail = last(0);
    S(0, .op = OP_READ, .slot = 0, .off = 99998, .len = 100, .data = "\0\0tail", .data_len = 6);
    S(0, .op = OP_FSYNC, .slot = 0);
    /* a channel opened read-only may not write; an append channel writes at the end */
    S(0, .op = OP_OPEN, .slot = 1, .path = "hello.txt", .flags = FS_O_READ);
    S(0, .op = OP_WRITE, .slot = 1, .data = "x", .data_len = 1, .expect = OS_EACCES);
    S(0, .op = OP_TRUNC, .slot = 1, .len = 0, .expect = OS_EACCES);
    S(0, .op = OP_OPEN, .slot = 2, .path = "app.txt", .flags = RW | FS_O_CREAT | FS_O_APPEND,
      .mode = 0600);
    S(0, .op = OP_WRITE, .slot = 2, .off = 7, .data = "ab", .data_len = 2, .expect = 2);
    S(0, .op = OP_WRITE, .slot = 2, .off = 0, .data = "cd", .data_len = 2, .expect = 2);
    S(0, .op = OP_OPEN, .slot = 3, .path = "big.bin", .flags = RW | FS_O_TRUNC, .len = 0);
    /* directories */
    S(0, .op = OP_MKDIR, .path = "nd", .mode = 0755);
    S(0, .op = OP_MKDIR, .path = "nd", .mode = 0755, .expect = OS_EEXIST);
    S(0, .op = OP_MKDIR, .path = "nosuch/x", .mode = 0755, .expect = OS_ENOENT);
    S(0, .op = OP_MKDIR, .path = "hello.txt/x", .mode = 0755, .expect = OS_ENOTDIR);
    S(0, .op = OP_OPEN, .slot = 4, .path = "nd/f", .flags = RW | FS_O_CREAT, .mode = 0644);
    S(0, .op = OP_WRITE, .slot = 4, .data = "in nd", .data_len = 5, .expect = 5);
    S(0, .op = OP_CLOSE, .slot = 4);
    S(0, .op = OP_RMDIR, .path = "nd", .expect = OS_ENOTEMPTY);
    S(0, .op = OP_UNLINK, .path = "nd/f");
    S(0, .op = OP_UNLINK, .path = "nd/f", .expect = OS_ENOENT);
    S(0, .op = OP_RMDIR, .path = "nd");
    S(0, .op = OP_UNLINK, .path = "sub", .expect = OS_EISDIR);
    S(0, .op = OP_RMDIR, .path = "hello.txt", .expect = OS_ENOTDIR);
    S(0, .op = OP_RMDIR, .path = "/", .expect = OS_EBUSY);
    S(0, .op = OP_OPEN, .slot = 4, .path = "sub", .flags = RW, .expect = OS_EISDIR);
    /* rename, symlink */
    S(0, .op = OP_RENAME, .path = "hello.txt", .path2 = "sub/hello2.txt");
    S(0, .op = OP_OPEN, .slot = 4, .path = "hello.txt", .flags = FS_O_READ, .expect = OS_ENOENT);
    S(0, .op = OP_OPEN, .slot = 4, .path = "sub/hello2.txt", .flags = FS_O_READ);
    S(0, .op = OP_READALL, .slot = 4, .data = hello, .data_len = strlen(hello));
    S(0, .op = OP_RENAME, .path = "sub", .path2 = "sub/deep/x", .expect = OS_EINVAL);
    S(0, .op = OP_RENAME, .path = "empty", .path2 = "renamed");
    S(0, .op = OP_SYMLINK, .path = "sl", .path2 = "sub/hello2.txt");
    S(0, .op = OP_SYMLINK, .path = "sl", .path2 = "x", .expect = OS_EEXIST);
    S(0, .op = OP_OPEN, .slot = 5, .path = "sl", .flags = FS_O_READ);
    S(0, .op = OP_READALL, .slot = 5, .data = hello, .data_len = strlen(hello));
    /* an unlinked file stays readable through its channel until it closes */
    S(0, .op = OP_OPEN, .slot = 6, .path = "gone.txt", .flags = RW | FS_O_CREAT, .mode = 0644);
    S(0, .op = OP_WRITEALL, .slot = 6, .data = big, .data_len = 70000);
    S(0, .op = OP_STATFS);
    int sf_before = last(0);
    S(0, .op = OP_UNLINK, .path = "gone.txt");
    S(0, .op = OP_READALL, .slot = 6, .data = big, .data_len = 70000);
    S(0, .op = OP_WRITE, .slot = 6, .data = "x", .data_len = 1, .expect = OS_ENOENT);
    S(0, .op = OP_CLOSE, .slot = 6);
    /* a rename that replaces a file some channel has open: it reads on, freed at close */
    S(0, .op = OP_OPEN, .slot = 6, .path = "sub/deep/f.txt", .flags = FS_O_READ);
    S(0, .op = OP_OPEN, .slot = 7, .path = "mv.txt", .flags = RW | FS_O_CREAT, .mode = 0600);
    S(0, .op = OP_WRITE, .slot = 7, .data = "moved", .data_len = 5, .expect = 5);
    S(0, .op = OP_CLOSE, .slot = 7);
    S(0, .op = OP_RENAME, .path = "mv.txt", .path2 = "sub/deep/f.txt");
    S(0, .op = OP_READALL, .slot = 6, .data = "deep\n", .data_len = 5);
    S(0, .op = OP_STAT, .slot = 6);
    int st_replaced = last(0);
    S(0, .op = OP_CLOSE, .slot = 6);
    S(0, .op = OP_STATFS);
    int sf_after = last(0);
    S(0, .op = OP_SYNC);
    S(0, .op = OP_SHUTDOWN);
    check_scripts(run("program fs\nprogram fsc0 reach=fs,init\n", img));
    seen_t *sn = scripts[0].seen;
    assert_int_equal(5000, sn[st_trunc].attr.size);
    assert_int_equal(100004, sn[st_tail].attr.size);
    assert_int_equal(FS_T_REG << 12 | 0640, sn[st_tail].attr.mode);
    assert_true(sn[sf_after].info.free_blocks > sn[sf_before].info.free_blocks);
    assert_int_equal(0, sn[st_replaced].attr.links);
    fsck_clean();
    uint8_t *want = calloc(1, 100004);
    memcpy(want, wdata, 5000);
    memcpy(want + 100000, "tail", 4);
    debugfs_is("/new.txt", want, 100004);
    free(want);
    debugfs_is("/app.txt", "abcd", 4);
    debugfs_is("/big.bin", "", 0);
    debugfs_is("/sub/hello2.txt", hello, strlen(hello));
    debugfs_is("/sub/deep/f.txt", "moved", 5);
    debugfs_has("stat /sl", "Fast link dest: \"sub/hello2.txt\"");
    debugfs_has("stat /new.txt", "Mode:  0640");
}

/* Several clients at once, each writing and reading back its own file. */
static void test_many_clients(void **state)
{
    (void)state;
    make_image();
    reset_scripts();
    char names[4][16];
    for (int i = 0; i < 4; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        int k = i + 1;
        S(k, .op = OP_OPEN, .slot = 0, .path = names[i],
          .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT, .mode = 0644);
        S(k, .op = OP_WRITEALL, .slot = 0, .data = many[i], .data_len = MANYDATA);
        S(k, .op = OP_READALL, .slot = 0, .data = many[i], .data_len = MANYDATA);
        S(k, .op = OP_OPEN, .slot = 1, .path = "big.bin", .flags = FS_O_READ);
        S(k, .op = OP_READALL, .slot = 1, .data = big, .data_len = BIG);
        S(k, .op = OP_FSYNC, .slot = 0);
        S(k, .op = OP_SETFLAG, .flag = i);
        S(0, .op = OP_WAITFLAG, .flag = i);
    }
    S(0, .op = OP_SYNC);
    S(0, .op = OP_SHUTDOWN);
    check_scripts(run("program fs\nprogram fsc0 reach=fs,init\nprogram fsc1 reach=fs\n"
                      "program fsc2 reach=fs\nprogram fsc3 reach=fs\nprogram fsc4 reach=fs\n",
                      img));
    fsck_clean();
    for (int i = 0; i < 4; i++) {
        char path[20];
        snprintf(path, sizeof path, "/m%d", i);
        debugfs_is(path, many[i], MANYDATA);
    }
}

/* A file three times the cache: dirty blocks are written back to make room, and it reads back;
 * a burst of 120 requests (more than the server queues, within a channel's 128) is answered
 * whole. */
static void test_bigger_than_the_cache(void **state)
{
    (void)state;
    make_image();
    reset_scripts();
    S(0, .op = OP_OPEN, .slot = 0, .path = "huge", .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT,
      .mode = 0644);
    S(0, .op = OP_WRITEALL, .slot = 0, .data = huge, .data_len = HUGE);
    S(0, .op = OP_READALL, .slot = 0, .data = huge, .data_len = HUGE);
    S(0, .op = OP_BURST, .slot = 0, .len = 120, .data_len = 100);
    S(0, .op = OP_STAT, .slot = 0);
    S(0, .op = OP_TRUNC, .slot = 0, .len = 10);
    S(0, .op = OP_OPEN, .slot = 1, .path = "huge2", .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT,
      .mode = 0644);
    S(0, .op = OP_WRITEALL, .slot = 1, .data = huge, .data_len = HUGE);
    S(0, .op = OP_SYNC);
    S(0, .op = OP_SHUTDOWN);
    check_scripts(run("program fs\nprogram fsc0 reach=fs,init\n", img));
    fsck_clean();
    debugfs_is("/huge", huge, 10);
    debugfs_is("/huge2", huge, HUGE);
}

/* A client that dies holding an unlinked file: its blocks and inode are freed. */
static void test_dying_client_frees_unlinked(void **state)
{
    (void)state;
    make_image();
    reset_scripts();
    S(0, .op = OP_STATFS);
    int before = last(0);
    S(0, .op = OP_SETFLAG, .flag = 1);
    S(0, .op = OP_WAITFLAG, .flag = 0);
    S(0, .op = OP_WAITFREE, .flag = before);
    S(0, .op = OP_SYNC);
    S(0, .op = OP_SHUTDOWN);
    S(1, .op = OP_WAITFLAG, .flag = 1);
    S(1, .op = OP_OPEN, .slot = 0, .path = "tmp", .flags = FS_O_READ | FS_O_WRITE | FS_O_CREAT,
      .mode = 0644);
    S(1, .op = OP_WRITEALL, .slot = 0, .data = big, .data_len = BIG);
    S(1, .op = OP_OPEN, .slot = 1, .path = "tmp", .flags = FS_O_READ);
    S(1, .op = OP_UNLINK, .path = "tmp");
    S(1, .op = OP_READALL, .slot = 1, .data = big, .data_len = BIG);
    S(1, .op = OP_SETFLAG, .flag = 0);
    S(1, .op = OP_EXIT);
    check_scripts(
        run("program fs\nprogram fsc0 reach=fs,init\nprogram fsc1 reach=fs restart=never\n", img));
    fsck_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_side),
        cmocka_unit_test(test_no_disk),
        cmocka_unit_test(test_read_only_disk),
        cmocka_unit_test(test_open_table_and_a_dying_client),
        cmocka_unit_test(test_corrupt_images),
        cmocka_unit_test(test_write_side),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_bigger_than_the_cache),
        cmocka_unit_test(test_dying_client_frees_unlinked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
