/* test_fs_ext2.c — the ext2 library on images made by the host's mke2fs, whole and corrupted. */
#include <dirent.h>
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

#include <os/errno.h>

#include "../servers/fs/ext2.h"

/* The source tree every image is made from, and the images by (block size, revision). */
static char g_dir[64];
static char g_src[96];

typedef struct {
    uint8_t *data;
    size_t size;
} img_t;

static img_t g_img[2][2]; /* [bs == 4096][rev] */

static int mem_read(void *arg, uint64_t off, void *buf, size_t len)
{
    const img_t *im = arg;
    if (off > im->size || len > im->size - off)
        return OS_EIO;
    memcpy(buf, im->data + off, len);
    return 0;
}

static void sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        abort();
    }
}

/* Deterministic bytes for file contents. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void write_file(const char *rel, size_t n, uint32_t seed)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_src, rel);
    uint8_t *b = malloc(n ? n : 1);
    fill(b, n, seed);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    free(b);
}

/* Write `n` bytes at offset `off` of an existing (sparse) file. */
static void write_at(const char *rel, long off, size_t n, uint32_t seed)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_src, rel);
    uint8_t b[4096];
    fill(b, n, seed);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static img_t load(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    img_t im = {.size = (size_t)ftell(f)};
    fseek(f, 0, SEEK_SET);
    im.data = malloc(im.size);
    assert_non_null(im.data);
    assert_int_equal(fread(im.data, 1, im.size, f), im.size);
    fclose(f);
    return im;
}

static int setup(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/orrery-ext2-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_src, sizeof g_src, "%s/src", g_dir);
    sh("mkdir -p %s/dir/sub %s/many", g_src, g_src);
    write_file("empty", 0, 1);
    write_file("small", 100, 2);
    write_file("dir/sub/deep", 5000, 3);
    /* Double indirect with 4 KiB blocks starts past 1036 blocks (4144 KiB). */
    write_file("big", 5 * 1024 * 1024 + 123, 4);
    /* Sparse, over 64 MiB: with 1 KiB blocks its tail is under the triple indirect block. */
    sh("truncate -s 70M %s/sparse", g_src);
    write_at("sparse", 0, 1000, 5);
    write_at("sparse", 20L << 20, 4096, 6);
    write_at("sparse", (68L << 20) + 77, 3000, 7);
    for (int i = 0; i < 120; i++) {
        char n[64];
        snprintf(n, sizeof n, "many/file-with-a-longish-name-%03d", i);
        write_file(n, (size_t)i, 100 + (uint32_t)i);
    }
    sh("cd %s && ln -s small fast && ln -s dir/sub sublink && ln -s /dir/sub/deep abs"
       " && ln -s loop2 loop1 && ln -s loop1 loop2 && ln -s nowhere dangling"
       " && ln -s ../../small dir/sub/up"
       " && ln -s dir/sub/./././././././././././././././././././././././././././././././"
       "././././././././././deep slow",
       g_src);
    for (int big = 0; big < 2; big++) {
        for (int rev = 0; rev < 2; rev++) {
            char img[128];
            snprintf(img, sizeof img, "%s/img-%d-%d", g_dir, big, rev);
            sh("mke2fs -q -F -t ext2 -b %d -r %d -d %s %s 24M >/dev/null 2>&1", big ? 4096 : 1024,
               rev, g_src, img);
            g_img[big][rev] = load(img);
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++)
            free(g_img[b][r].data);
    /* Only the folder mkdtemp made for us. */
    if (strncmp(g_dir, "/tmp/orrery-ext2-", 17) == 0)
        sh("rm -rf %s", g_dir);
    return 0;
}

static void mount_ok(ext2_fs_t *fs, img_t *im)
{
    int rc = ext2_mount(fs, mem_read, im, im->size);
    if (rc != 0)
        fail_msg("mount: %s: %s", os_errname(rc), ext2_why(fs));
}

static ext2_fs_t g_fs;

/* Read a whole file through the library in odd-sized pieces and compare with the host copy. */
static void compare_as(ext2_fs_t *fs, const char *rel, const char *host_rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_src, host_rel);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    img_t host = load(path);
    ext2_inode_t in;
    int rc = ext2_lookup(fs, rel, true, &in);
    if (rc != 0)
        fail_msg("lookup %s: %s: %s", rel, os_errname(rc), ext2_why(fs));
    assert_int_equal(ext2_type(&in), EXT2_T_REG);
    assert_int_equal(in.size, (uint64_t)st.st_size);
    uint8_t *buf = malloc(host.size + 1);
    size_t at = 0, got;
    while (at < host.size) {
        assert_int_equal(ext2_read(fs, &in, at, buf + at, 3001, &got), 0);
        assert_true(got > 0);
        at += got;
    }
    assert_int_equal(at, host.size);
    assert_int_equal(ext2_read(fs, &in, at, buf, 10, &got), 0);
    assert_int_equal(got, 0);
    assert_memory_equal(buf, host.data, host.size);
    free(buf);
    free(host.data);
}

static void compare(ext2_fs_t *fs, const char *rel)
{
    compare_as(fs, rel, rel);
}

static void test_files(void **state)
{
    (void)state;
    static const char *files[] = {"empty", "small", "dir/sub/deep", "big",
                                  "many/file-with-a-longish-name-077"};
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            mount_ok(&g_fs, &g_img[b][r]);
            assert_int_equal(g_fs.block_size, b ? 4096u : 1024u);
            assert_int_equal(g_fs.rev, (uint32_t)r);
            for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
                compare(&g_fs, files[i]);
        }
}

/* The sparse file: holes are zeros, data sits where the host wrote it, also past 64 MiB. */
static void test_sparse(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            mount_ok(&g_fs, &g_img[b][r]);
            ext2_inode_t in;
            assert_int_equal(ext2_lookup(&g_fs, "/sparse", true, &in), 0);
            assert_int_equal(in.size, 70u << 20);
            uint8_t want[4096], got[4096], zero[4096] = {0};
            size_t n;
            fill(want, 1000, 5);
            assert_int_equal(ext2_read(&g_fs, &in, 0, got, 1000, &n), 0);
            assert_memory_equal(got, want, 1000);
            assert_int_equal(ext2_read(&g_fs, &in, 10 << 20, got, 4096, &n), 0);
            assert_int_equal(n, 4096);
            assert_memory_equal(got, zero, 4096);
            fill(want, 4096, 6);
            assert_int_equal(ext2_read(&g_fs, &in, 20 << 20, got, 4096, &n), 0);
            assert_memory_equal(got, want, 4096);
            fill(want, 3000, 7);
            assert_int_equal(ext2_read(&g_fs, &in, (68u << 20) + 77, got, 3000, &n), 0);
            assert_int_equal(n, 3000);
            assert_memory_equal(got, want, 3000);
            /* With 1 KiB blocks, 68 MiB is under the triple indirect block. */
            if (!b)
                assert_true((68u << 10) >= 12 + 256 + 256 * 256);
            assert_int_equal(ext2_read(&g_fs, &in, (70u << 20) - 5, got, 100, &n), 0);
            assert_int_equal(n, 5);
            assert_memory_equal(got, zero, 5);
            /* The sparse file holds few blocks: most of it is holes. */
            assert_true(in.sectors < 64);
        }
}

static void test_dirs(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            mount_ok(&g_fs, &g_img[b][r]);
            ext2_inode_t d;
            assert_int_equal(ext2_lookup(&g_fs, "many", true, &d), 0);
            assert_int_equal(ext2_type(&d), EXT2_T_DIR);
            assert_true(d.size > g_fs.block_size || b); /* spans blocks with 1 KiB blocks */
            bool seen[120] = {0};
            int count = 0, rc, dots = 0;
            uint64_t pos = 0;
            ext2_dirent_t e;
            while ((rc = ext2_dir_next(&g_fs, &d, &pos, &e)) == 1) {
                int i;
                if (strcmp(e.name, ".") == 0 || strcmp(e.name, "..") == 0) {
                    dots++;
                    continue;
                }
                assert_int_equal(sscanf(e.name, "file-with-a-longish-name-%d", &i), 1);
                assert_false(seen[i]);
                seen[i] = true;
                count++;
                assert_int_equal(e.type, r ? EXT2_T_REG : 0);
            }
            assert_int_equal(rc, 0);
            assert_int_equal(count, 120);
            assert_int_equal(dots, 2);
            /* Not a directory. */
            ext2_inode_t f;
            assert_int_equal(ext2_lookup(&g_fs, "small", true, &f), 0);
            pos = 0;
            assert_int_equal(ext2_dir_next(&g_fs, &f, &pos, &e), OS_EINVAL);
            assert_int_equal(ext2_lookup(&g_fs, "small/x", true, &f), OS_EINVAL);
            assert_int_equal(ext2_lookup(&g_fs, "nope", true, &f), OS_ENOENT);
            assert_non_null(strstr(ext2_why(&g_fs), "nope"));
            assert_int_equal(ext2_lookup(&g_fs, "/", true, &f), 0);
            assert_int_equal(f.ino, EXT2_ROOT_INO);
            assert_int_equal(ext2_lookup(&g_fs, "//dir//sub/../sub/deep", true, &f), 0);
            assert_int_equal(f.size, 5000);
            char name[300];
            memset(name, 'x', 256);
            name[256] = '\0';
            assert_int_equal(ext2_lookup(&g_fs, name, true, &f), OS_EINVAL);
        }
}

static void test_symlinks(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            mount_ok(&g_fs, &g_img[b][r]);
            ext2_inode_t in, target;
            char buf[EXT2_PATH_MAX + 1];
            assert_int_equal(ext2_lookup(&g_fs, "fast", false, &in), 0);
            assert_int_equal(ext2_type(&in), EXT2_T_LNK);
            assert_int_equal(ext2_readlink(&g_fs, &in, buf, sizeof buf), 0);
            assert_string_equal(buf, "small");
            assert_int_equal(ext2_lookup(&g_fs, "small", true, &target), 0);
            assert_int_equal(ext2_lookup(&g_fs, "fast", true, &in), 0);
            assert_int_equal(in.ino, target.ino);
            /* A slow symlink (target over 60 bytes, in a data block). */
            assert_int_equal(ext2_lookup(&g_fs, "slow", false, &in), 0);
            assert_true(in.size > 60);
            assert_int_equal(ext2_readlink(&g_fs, &in, buf, sizeof buf), 0);
            assert_non_null(strstr(buf, "/deep"));
            compare(&g_fs, "slow");
            compare_as(&g_fs, "abs", "dir/sub/deep");
            compare(&g_fs, "sublink/deep");
            compare(&g_fs, "sublink/up");
            compare(&g_fs, "dir/sub/up");
            assert_int_equal(ext2_lookup(&g_fs, "loop1", true, &in), OS_EINVAL);
            assert_non_null(strstr(ext2_why(&g_fs), "symlinks"));
            assert_int_equal(ext2_lookup(&g_fs, "loop1", false, &in), 0);
            assert_int_equal(ext2_lookup(&g_fs, "dangling", true, &in), OS_ENOENT);
            assert_int_equal(ext2_readlink(&g_fs, &target, buf, sizeof buf), OS_EINVAL);
            assert_int_equal(ext2_readlink(&g_fs, &in, buf, 3), OS_EINVAL);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_sparse),
        cmocka_unit_test(test_dirs),
        cmocka_unit_test(test_symlinks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
