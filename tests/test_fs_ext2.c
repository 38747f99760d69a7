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

/* ---- Corrupted images: every damage gives an error naming the structure, never a crash. ---- */

static uint32_t rd32(const img_t *im, size_t off)
{
    const uint8_t *p = im->data + off;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(img_t *im, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        im->data[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void wr16(img_t *im, size_t off, uint16_t v)
{
    im->data[off] = (uint8_t)v;
    im->data[off + 1] = (uint8_t)(v >> 8);
}

static img_t dup_img(const img_t *im)
{
    img_t c = {.data = malloc(im->size), .size = im->size};
    assert_non_null(c.data);
    memcpy(c.data, im->data, im->size);
    return c;
}

/* Mount a copy after `damage`: the code returned, with fs holding the reason. */
static int mount_damaged(ext2_fs_t *fs, img_t *im)
{
    return ext2_mount(fs, mem_read, im, im->size);
}

static void expect_why(const ext2_fs_t *fs, const char *part)
{
    if (!strstr(ext2_why(fs), part))
        fail_msg("reason '%s' does not name '%s'", ext2_why(fs), part);
}

#define SB 1024

static void test_corrupt_super(void **state)
{
    (void)state;
    static ext2_fs_t fs;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            img_t im = dup_img(&g_img[b][r]);
            struct {
                size_t off;
                uint32_t val;
                int width, err;
                const char *why;
            } cases[] = {
                {SB + 56, 0xEF54, 2, OS_EINVAL, "magic"},
                {SB + 24, 3, 4, OS_EINVAL, "block size"},
                {SB + 0, rd32(&im, SB + 0) + 1, 4, OS_EINVAL, "inodes"},
                {SB + 4, 0x7fffffff, 4, OS_EINVAL, "exceed"},
                {SB + 4, 1, 4, OS_EINVAL, "blocks"},
                {SB + 32, 0, 4, OS_EINVAL, "blocks per group"},
                {SB + 40, 0, 4, OS_EINVAL, "inodes per group"},
                {SB + 20, 5, 4, OS_EINVAL, "first data block"},
                {SB + 76, 7, 4, OS_EINVAL, "revision"},
                {SB + 88, r ? 100 : 0, 2, r ? OS_EINVAL : 0, "inode size"},
                {SB + 84, r ? 1 : 0, 4, r ? OS_EINVAL : 0, "first inode"},
                {SB + 96, r ? 0x40 | 0x80 | 0x2 : 0, 4, r ? OS_ENOTSUP : 0, "extents, 64bit"},
                {SB + 96, r ? 0x4 | 0x2 : 0, 4, r ? OS_ENOTSUP : 0, "needs_recovery"},
                {SB + 96, r ? 0x80000002u : 0, 4, r ? OS_ENOTSUP : 0, "0x80000000"},
                {SB + 96, r ? 0x40 | 0x80000002u : 0, 4, r ? OS_ENOTSUP : 0,
                 "extents, 0x80000000"},
            };
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                memcpy(im.data, g_img[b][r].data, 8192);
                if (cases[i].width == 2)
                    wr16(&im, cases[i].off, (uint16_t)cases[i].val);
                else
                    wr32(&im, cases[i].off, cases[i].val);
                int rc = mount_damaged(&fs, &im);
                if (rc != cases[i].err)
                    fail_msg("case %zu: %s (%s)", i, os_errname(rc), ext2_why(&fs));
                if (rc)
                    expect_why(&fs, cases[i].why);
            }
            /* A device shorter than the volume. */
            memcpy(im.data, g_img[b][r].data, 8192);
            assert_int_equal(ext2_mount(&fs, mem_read, &im, im.size / 2), OS_EINVAL);
            expect_why(&fs, "exceed");
            assert_int_equal(ext2_mount(&fs, mem_read, &im, 1500), OS_EIO);
            expect_why(&fs, "superblock");
            /* ext3/4 features that only forbid writing: mounted, with a note naming them. */
            if (r) {
                wr32(&im, SB + 100, rd32(&im, SB + 100) | 0x400);
                wr32(&im, SB + 92, rd32(&im, SB + 92) | 0x4);
                assert_int_equal(mount_damaged(&fs, &im), 0);
                assert_non_null(strstr(fs.ro_note, "metadata_csum"));
                assert_non_null(strstr(fs.ro_note, "has_journal"));
                compare(&fs, "small");
            }
            mount_ok(&fs, &g_img[b][r]);
            assert_string_equal(fs.ro_note, "");
            free(im.data);
        }
}

/* Byte offset of group 0's descriptor, and of inode `ino`'s record. */
static size_t gd_off(const ext2_fs_t *fs, uint32_t g)
{
    return (size_t)(fs->first_data_block + 1) * fs->block_size + (size_t)g * 32;
}

static size_t inode_off(const ext2_fs_t *fs, const img_t *im, uint32_t ino)
{
    uint32_t g = (ino - 1) / fs->inodes_per_group, i = (ino - 1) % fs->inodes_per_group;
    return (size_t)rd32(im, gd_off(fs, g) + 8) * fs->block_size + (size_t)i * fs->inode_size;
}

static void test_corrupt_groups(void **state)
{
    (void)state;
    static ext2_fs_t fs;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            img_t im = dup_img(&g_img[b][r]);
            mount_ok(&fs, &im);
            size_t gd = gd_off(&fs, fs.groups - 1);
            wr32(&im, gd + 8, 0xffffff00);
            assert_int_equal(mount_damaged(&fs, &im), OS_EIO);
            expect_why(&fs, "inode table");
            memcpy(im.data, g_img[b][r].data, im.size);
            wr32(&im, gd + 0, 0);
            assert_int_equal(mount_damaged(&fs, &im), OS_EIO);
            expect_why(&fs, "bitmap");
            memcpy(im.data, g_img[b][r].data, im.size);
            wr16(&im, gd + 14, 0xffff);
            assert_int_equal(mount_damaged(&fs, &im), OS_EIO);
            expect_why(&fs, "free counts");
            free(im.data);
        }
}

static void test_corrupt_inodes(void **state)
{
    (void)state;
    static ext2_fs_t fs;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            img_t im = dup_img(&g_img[b][r]);
            mount_ok(&fs, &im);
            ext2_inode_t in;
            assert_int_equal(ext2_lookup(&fs, "small", true, &in), 0);
            size_t io = inode_off(&fs, &im, in.ino);
            char name[32];
            snprintf(name, sizeof name, "inode %u", in.ino);
            struct {
                size_t off;
                uint32_t val;
                int width;
                const char *why;
            } cases[] = {
                {0, 0xf1a4, 2, "mode"},
                {26, 0, 2, "0 links"},
                {32, 0x80000, 4, "extents"},
                {32, 0x10000000, 4, "inline data"},
                {108, 0xffffffff, 4, "beyond its block map"},
            };
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                memcpy(im.data + io, g_img[b][r].data + io, 128);
                if (cases[i].width == 2)
                    wr16(&im, io + cases[i].off, (uint16_t)cases[i].val);
                else
                    wr32(&im, io + cases[i].off, cases[i].val);
                ext2_inode_t x;
                int rc = ext2_lookup(&fs, "small", true, &x);
                if (rc != OS_EIO)
                    fail_msg("case %zu: %s (%s)", i, os_errname(rc), ext2_why(&fs));
                expect_why(&fs, name);
                expect_why(&fs, cases[i].why);
            }
            /* A data pointer outside the volume fails the read, naming the inode. */
            memcpy(im.data + io, g_img[b][r].data + io, 128);
            wr32(&im, io + 40, fs.blocks_count);
            assert_int_equal(ext2_lookup(&fs, "small", true, &in), 0);
            uint8_t buf[16];
            size_t got;
            assert_int_equal(ext2_read(&fs, &in, 0, buf, sizeof buf, &got), OS_EIO);
            expect_why(&fs, name);
            expect_why(&fs, "outside the volume");
            /* A directory larger than what it owns, or than the limit, is refused. */
            size_t ro = inode_off(&fs, &im, EXT2_ROOT_INO);
            wr32(&im, ro + 4, 64 * fs.block_size);
            assert_int_equal(mount_damaged(&fs, &im), OS_EIO);
            expect_why(&fs, "inode 2: directory size");
            wr32(&im, ro + 28, 0xffffffff);
            wr32(&im, ro + 4, 0x40000000);
            assert_int_equal(mount_damaged(&fs, &im), OS_EIO);
            expect_why(&fs, "limit");
            memcpy(im.data + ro, g_img[b][r].data + ro, 128);
            /* The root must be a directory. */
            wr16(&im, ro, 0x81a4);
            assert_int_equal(mount_damaged(&fs, &im), OS_EIO);
            expect_why(&fs, "root");
            /* Inode numbers out of range. */
            mount_ok(&fs, &g_img[b][r]);
            assert_int_equal(ext2_iget(&fs, 0, &in), OS_EINVAL);
            assert_int_equal(ext2_iget(&fs, fs.inodes_count + 1, &in), OS_EINVAL);
            free(im.data);
        }
}

static void test_corrupt_dirs(void **state)
{
    (void)state;
    static ext2_fs_t fs;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            img_t im = dup_img(&g_img[b][r]);
            mount_ok(&fs, &im);
            ext2_inode_t root;
            uint32_t pblk;
            assert_int_equal(ext2_iget(&fs, EXT2_ROOT_INO, &root), 0);
            assert_int_equal(ext2_bmap(&fs, &root, 0, &pblk), 0);
            size_t db = (size_t)pblk * fs.block_size; /* "." is the first entry: 12 bytes */
            struct {
                size_t off;
                uint32_t val;
                int width;
                const char *why;
            } cases[] = {
                {4, 0, 2, "rec_len 0"},   {4, 6, 2, "rec_len 6"},
                {4, 14, 2, "rec_len 14"}, {4, fs.block_size + 4, 2, "rec_len"},
                {6, 9, 1, "name_len"},    {0, fs.inodes_count + 1, 4, "names inode"},
                {8, '/', 1, "'/'"},
            };
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                memcpy(im.data + db, g_img[b][r].data + db, fs.block_size);
                fs.scratch_blk = 0; /* the library caches one directory block */
                if (cases[i].width == 1)
                    im.data[db + cases[i].off] = (uint8_t)cases[i].val;
                else if (cases[i].width == 2)
                    wr16(&im, db + cases[i].off, (uint16_t)cases[i].val);
                else
                    wr32(&im, db + cases[i].off, cases[i].val);
                ext2_inode_t x;
                int rc = ext2_lookup(&fs, "small", true, &x);
                if (rc != OS_EIO)
                    fail_msg("case %zu: %s (%s)", i, os_errname(rc), ext2_why(&fs));
                expect_why(&fs, "directory inode 2");
                expect_why(&fs, cases[i].why);
            }
            /* A hole in a directory. */
            memcpy(im.data + db, g_img[b][r].data + db, fs.block_size);
            size_t ro = inode_off(&fs, &im, EXT2_ROOT_INO);
            wr32(&im, ro + 40, 0);
            ext2_inode_t x;
            assert_int_equal(ext2_lookup(&fs, "small", true, &x), OS_EIO);
            expect_why(&fs, "hole");
            free(im.data);
        }
}

static void test_corrupt_indirect(void **state)
{
    (void)state;
    static ext2_fs_t fs;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            img_t im = dup_img(&g_img[b][r]);
            mount_ok(&fs, &im);
            ext2_inode_t in;
            assert_int_equal(ext2_lookup(&fs, "big", true, &in), 0);
            char name[32];
            snprintf(name, sizeof name, "inode %u", in.ino);
            uint64_t bs = fs.block_size, p = fs.ptrs;
            uint8_t buf[64];
            size_t got;
            /* Single indirect: its first pointer leaves the volume. */
            size_t ind = (size_t)in.block[12] * bs;
            wr32(&im, ind, 0xfffffff0);
            assert_int_equal(ext2_read(&fs, &in, 12 * bs, buf, sizeof buf, &got), OS_EIO);
            expect_why(&fs, name);
            expect_why(&fs, "block 12 maps to");
            /* Pointing an indirect block at itself cannot make a walk loop. */
            wr32(&im, ind, in.block[12]);
            assert_int_equal(ext2_read(&fs, &in, 12 * bs, buf, sizeof buf, &got), 0);
            /* Double indirect: the second level leaves the volume. */
            size_t dind = (size_t)in.block[13] * bs;
            size_t lvl2 = (size_t)rd32(&im, dind) * bs;
            wr32(&im, lvl2 + 4, fs.blocks_count + 7);
            assert_int_equal(ext2_read(&fs, &in, (12 + p + 1) * bs, buf, sizeof buf, &got), OS_EIO);
            expect_why(&fs, name);
            /* The inode's own indirect pointers are checked too. */
            in.block[14] = fs.blocks_count;
            uint32_t pb;
            assert_int_equal(ext2_bmap(&fs, &in, 12 + p + p * p, &pb), OS_EIO);
            assert_int_equal(ext2_bmap(&fs, &in, 12 + p + p * p + p * p * p, &pb), OS_EIO);
            expect_why(&fs, "past the block map");
            free(im.data);
        }
}

/* Walk everything reachable, reading some of every file: only must end without a crash. */
static void walk(ext2_fs_t *fs, const ext2_inode_t *dir, int depth, int *budget)
{
    ext2_dirent_t e;
    uint64_t pos = 0;
    uint8_t buf[2048];
    char link[EXT2_PATH_MAX + 1];
    while (*budget > 0 && ext2_dir_next(fs, dir, &pos, &e) == 1) {
        (*budget)--;
        if (strcmp(e.name, ".") == 0 || strcmp(e.name, "..") == 0)
            continue;
        ext2_inode_t in;
        if (ext2_iget(fs, e.ino, &in) < 0)
            continue;
        size_t got;
        switch (ext2_type(&in)) {
        case EXT2_T_DIR:
            if (depth < 4)
                walk(fs, &in, depth + 1, budget);
            break;
        case EXT2_T_LNK:
            (void)ext2_readlink(fs, &in, link, sizeof link);
            break;
        default:
            (void)ext2_read(fs, &in, 0, buf, sizeof buf, &got);
            if (in.size > sizeof buf)
                (void)ext2_read(fs, &in, in.size - sizeof buf / 2, buf, sizeof buf, &got);
            break;
        }
    }
}

static void test_random_damage(void **state)
{
    (void)state;
    static ext2_fs_t fs;
    uint32_t x = 12345;
    int mounted = 0;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            img_t *im = &g_img[b][r];
            mount_ok(&fs, im);
            /* Metadata lives early: superblock, descriptors, bitmaps, inode table, first dirs. */
            size_t span = (size_t)rd32(im, gd_off(&fs, 0) + 8) * fs.block_size +
                          (size_t)fs.inodes_per_group * fs.inode_size + 64 * fs.block_size;
            size_t itab = (size_t)rd32(im, gd_off(&fs, 0) + 8) * fs.block_size;
            if (span > im->size)
                span = im->size;
            for (int iter = 0; iter < 300; iter++) {
                size_t at[8];
                uint8_t old[8];
                for (int k = 0; k < 8; k++) {
                    x = x * 1103515245u + 12345u;
                    /* Half the flips hit the used inodes, where most damage shows. */
                    at[k] = k % 2 ? itab + (x >> 4) % (160 * fs.inode_size)
                                  : 1024 + (x >> 4) % (span - 1024);
                    old[k] = im->data[at[k]];
                    x = x * 1103515245u + 12345u;
                    im->data[at[k]] ^= (uint8_t)(1u << ((x >> 16) % 8));
                }
                if (ext2_mount(&fs, mem_read, im, im->size) == 0) {
                    mounted++;
                    ext2_inode_t root, in;
                    int budget = 2000;
                    if (ext2_iget(&fs, EXT2_ROOT_INO, &root) == 0)
                        walk(&fs, &root, 0, &budget);
                    (void)ext2_lookup(&fs, "sublink/up", true, &in);
                    (void)ext2_lookup(&fs, "loop1", true, &in);
                }
                for (int k = 7; k >= 0; k--)
                    im->data[at[k]] = old[k];
            }
        }
    print_message("%d of 1200 damaged images mounted\n", mounted);
    assert_true(mounted > 0);
}

/* A cache in front of the image: a miss marks the 1 KiB piece present and says OS_EBUSY. */
typedef struct {
    img_t *im;
    uint8_t *have; /* one flag per KiB */
    int misses;
} lazy_t;

static int lazy_read(void *arg, uint64_t off, void *buf, size_t len)
{
    lazy_t *lz = arg;
    bool missed = false;
    for (uint64_t k = off / 1024; k <= (off + len - 1) / 1024; k++)
        if (!lz->have[k]) {
            lz->have[k] = 1;
            missed = true;
        }
    if (missed) {
        lz->misses++;
        return OS_EBUSY;
    }
    return mem_read(lz->im, off, buf, len);
}

/* Every operation returns OS_EBUSY on a miss and succeeds when run again: a server fetches
 * blocks between runs. The results equal direct reads. */
static void test_busy_reads_restart(void **state)
{
    (void)state;
    static ext2_fs_t fs, ref;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 2; r++) {
            img_t *im = &g_img[b][r];
            lazy_t lz = {.im = im, .have = calloc(im->size / 1024 + 1, 1)};
            int rc, runs = 0;
            while ((rc = ext2_mount(&fs, lazy_read, &lz, im->size)) == OS_EBUSY)
                runs++;
            assert_int_equal(rc, 0);
            assert_true(runs > 0);
            mount_ok(&ref, im);
            static const char *paths[] = {"big", "sublink/up", "many/file-with-a-longish-name-119",
                                          "sparse"};
            for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
                ext2_inode_t in, want;
                while ((rc = ext2_lookup(&fs, paths[i], true, &in)) == OS_EBUSY)
                    assert_string_not_equal(ext2_why(&fs), "");
                assert_int_equal(rc, 0);
                assert_int_equal(ext2_lookup(&ref, paths[i], true, &want), 0);
                assert_int_equal(in.ino, want.ino);
                static uint8_t got[20000], exp[20000];
                uint64_t off = in.size > 70000 ? in.size - 70000 : 0;
                size_t n, m;
                while ((rc = ext2_read(&fs, &in, off, got, sizeof got, &n)) == OS_EBUSY)
                    ;
                assert_int_equal(rc, 0);
                assert_int_equal(ext2_read(&ref, &want, off, exp, sizeof exp, &m), 0);
                assert_int_equal(n, m);
                assert_memory_equal(got, exp, n);
            }
            assert_true(lz.misses > 10);
            free(lz.have);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_sparse),
        cmocka_unit_test(test_dirs),
        cmocka_unit_test(test_symlinks),
        cmocka_unit_test(test_corrupt_super),
        cmocka_unit_test(test_corrupt_groups),
        cmocka_unit_test(test_corrupt_inodes),
        cmocka_unit_test(test_corrupt_dirs),
        cmocka_unit_test(test_corrupt_indirect),
        cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_busy_reads_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
