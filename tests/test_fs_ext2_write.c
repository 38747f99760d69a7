/* test_fs_ext2_write.c — the ext2 library's write side on mke2fs images, judged by e2fsck. */
#include "ext2w_util.h"

/* ---- the first subset: files, directories, remove, truncate ----------------------------- */

/* A file written in uneven pieces reads back through the library and through debugfs. */
static void test_create_write_read(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        ext2_statfs_t st0, st1;
        assert_int_equal(ext2_statfs(fs, &st0), 0);
        uint32_t dir = mk(fs, EXT2_ROOT_INO, "d", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t sub = mk(fs, dir, "sub", EXT2_T_DIR << 12 | 0700, NULL);
        uint32_t f = mk(fs, sub, "file", EXT2_T_REG << 12 | 0644, NULL);
        uint32_t e = mk(fs, EXT2_ROOT_INO, "empty", EXT2_T_REG << 12 | 0600, NULL);
        (void)e;
        size_t n = 70000;
        uint8_t *want = malloc(n);
        fill(want, n, 7);
        for (size_t at = 0; at < n;) {
            size_t k = (at * 7 + 1000) % 4097;
            if (k > n - at)
                k = n - at;
            wr(fs, f, at, want + at, k);
            at += k;
        }
        expect_file(fs, "/d/sub/file", want, n);
        ext2_inode_t in;
        assert_int_equal(ext2_lookup(fs, "/d/sub", false, &in), 0);
        assert_int_equal(in.links, 2);
        assert_int_equal(ext2_lookup(fs, "/d", false, &in), 0);
        assert_int_equal(in.links, 3);
        assert_int_equal(in.mtime, fs->now);
        /* Names already there, bad names, a file as the directory. */
        uint32_t ino;
        assert_int_equal(ext2_create(fs, dir, "sub", 3, EXT2_T_REG << 12, NULL, &ino), OS_EEXIST);
        assert_int_equal(ext2_create(fs, dir, "a/b", 3, EXT2_T_REG << 12, NULL, &ino), OS_EINVAL);
        assert_int_equal(ext2_create(fs, dir, "..", 2, EXT2_T_REG << 12, NULL, &ino), OS_EINVAL);
        assert_int_equal(ext2_create(fs, dir, "", 0, EXT2_T_REG << 12, NULL, &ino), OS_EINVAL);
        char longname[300];
        memset(longname, 'n', sizeof longname);
        assert_int_equal(ext2_create(fs, dir, longname, 256, EXT2_T_REG << 12, NULL, &ino),
                         OS_ENAMETOOLONG);
        assert_int_equal(ext2_create(fs, dir, longname, 255, EXT2_T_REG << 12, NULL, &ino), 0);
        assert_int_equal(ext2_create(fs, f, "x", 1, EXT2_T_REG << 12, NULL, &ino), OS_ENOTDIR);
        assert_int_equal(ext2_write(fs, dir, 0, "x", 1), OS_EISDIR);
        assert_int_equal(ext2_statfs(fs, &st1), 0);
        assert_true(st1.free_blocks < st0.free_blocks);
        assert_int_equal(st1.free_inodes, st0.free_inodes - 5);
        fsck_ok(d, "create_write_read");
        debugfs_cat(d, "/d/sub/file", want, n);
        free(want);
        disk_free(d, fs);
    }
}

/* unlink and rmdir give everything back: the free counts return to where they started. */
static void test_remove_and_free(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        ext2_statfs_t st0, st1;
        assert_int_equal(ext2_statfs(fs, &st0), 0);
        uint32_t dir = mk(fs, EXT2_ROOT_INO, "dir", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t f = mk(fs, dir, "big", EXT2_T_REG << 12 | 0644, NULL);
        uint8_t buf[4096];
        for (int i = 0; i < 200; i++) {
            fill(buf, sizeof buf, (uint32_t)i);
            wr(fs, f, (uint64_t)i * 4096, buf, sizeof buf);
        }
        uint32_t ino;
        bool gone;
        assert_int_equal(ext2_remove(fs, EXT2_ROOT_INO, "dir", 3, true, &ino, &gone), OS_ENOTEMPTY);
        assert_int_equal(ext2_remove(fs, EXT2_ROOT_INO, "dir", 3, false, &ino, &gone), OS_EISDIR);
        assert_int_equal(ext2_remove(fs, dir, "big", 3, true, &ino, &gone), OS_ENOTDIR);
        assert_int_equal(ext2_remove(fs, dir, "nope", 4, false, &ino, &gone), OS_ENOENT);
        assert_int_equal(ext2_remove(fs, dir, "big", 3, false, &ino, &gone), 0);
        assert_int_equal(ino, f);
        assert_true(gone);
        /* The caller frees it in steps, each leaving a clean volume. */
        int steps = free_inode(fs, ino);
        assert_true(steps >= (int)(800 / EXT2_FREE_STEP / (fs->block_size / 1024)));
        assert_int_equal(ext2_remove(fs, EXT2_ROOT_INO, "dir", 3, true, &ino, &gone), 0);
        assert_int_equal(ino, dir);
        assert_true(gone);
        free_inode(fs, ino);
        assert_int_equal(ext2_statfs(fs, &st1), 0);
        assert_int_equal(st1.free_blocks, st0.free_blocks);
        assert_int_equal(st1.free_inodes, st0.free_inodes);
        ext2_inode_t root;
        assert_int_equal(ext2_iget(fs, EXT2_ROOT_INO, &root), 0);
        assert_int_equal(root.links, 3); /* ".", its own "..", lost+found's ".." */
        fsck_ok(d, "remove_and_free");
        disk_free(d, fs);
    }
}

/* Truncation down and up: the tail of the last block is zeroed, a grown file reads zeros. */
static void test_truncate(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t f = mk(fs, EXT2_ROOT_INO, "t", EXT2_T_REG << 12 | 0644, NULL);
        size_t n = 300000;
        uint8_t *want = malloc(n + 100000);
        fill(want, n, 3);
        for (size_t at = 0; at < n; at += 4096)
            wr(fs, f, at, want + at, n - at < 4096 ? n - at : 4096);
        trunc_all(fs, f, 123457, d);
        expect_file(fs, "/t", want, 123457);
        fsck_ok(d, "truncate down");
        /* Up again: a hole, and the old bytes past 123457 do not come back. */
        trunc_all(fs, f, 250000, d);
        memset(want + 123457, 0, 250000 - 123457);
        expect_file(fs, "/t", want, 250000);
        fsck_ok(d, "truncate up");
        wr(fs, f, 249990, "0123456789abcdef", 16);
        memcpy(want + 249990, "0123456789abcdef", 16);
        expect_file(fs, "/t", want, 250006);
        trunc_all(fs, f, 0, d);
        expect_file(fs, "/t", want, 0);
        ext2_inode_t in;
        assert_int_equal(ext2_iget(fs, f, &in), 0);
        assert_int_equal(in.sectors, 0);
        for (int i = 0; i < EXT2_N_BLOCKS; i++)
            assert_int_equal(in.block[i], 0);
        fsck_ok(d, "truncate to 0");
        free(want);
        disk_free(d, fs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_write_read),
        cmocka_unit_test(test_remove_and_free),
        cmocka_unit_test(test_truncate),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
