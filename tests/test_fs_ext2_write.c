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
        assert_int_equal(ext2_write(fs, f, 5, "x", 0), 0);
        assert_int_equal(ext2_write(fs, f, 0, want, 4097), OS_EINVAL);
        assert_int_equal(ext2_write(fs, f, UINT64_MAX - 2, "xyz", 3), OS_EINVAL);
        assert_non_null(strstr(ext2_why(fs), "block map"));
        assert_int_equal(ext2_statfs(fs, &st1), 0);
        assert_true(st1.free_blocks < st0.free_blocks);
        assert_int_equal(st1.free_inodes, st0.free_inodes - 5);
        fsck_ok(d, "create_write_read");
        debugfs_cat(d, "/d/sub/file", want, n);
        free(want);
        disk_free(d, fs);
    }
}

/* A new data block is written whole, in one call, so a cache need not read it first. */
static void test_fresh_blocks_whole(void **state)
{
    (void)state;
    disk_t *d = disk_make(1, 8);
    ext2_fs_t *fs = mount_rw(d);
    uint32_t f = mk(fs, EXT2_ROOT_INO, "f", EXT2_T_REG << 12 | 0644, NULL);
    wr(fs, f, 100, "ten bytes!", 10);
    assert_int_equal(d->data_whole, 1);
    assert_int_equal(d->data_part, 0);
    wr(fs, f, 200, "ten bytes!", 10);
    assert_int_equal(d->data_whole, 1);
    assert_int_equal(d->data_part, 1);
    uint8_t want[210] = {0};
    memcpy(want + 100, "ten bytes!", 10);
    memcpy(want + 200, "ten bytes!", 10);
    expect_file(fs, "/f", want, sizeof want);
    fsck_ok(d, "fresh blocks");
    disk_free(d, fs);
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
        /* Released twice: refused, nothing changed. */
        uint8_t *snap = malloc(d->size);
        memcpy(snap, d->data, d->size);
        refused(d, ext2_release(fs, ino), OS_EIO, "already free", snap);
        /* The resize inode (7) and the other reserved ones are never written. */
        bool more;
        refused(d, ext2_write(fs, 7, 0, "x", 1), OS_EINVAL, "reserved", snap);
        refused(d, ext2_truncate(fs, 7, 0, &more), OS_EINVAL, "reserved", snap);
        free(snap);
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

/* A directory past twelve blocks (single indirect with 1 KiB blocks), emptied again. */
static void test_many_names(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t dir = mk(fs, EXT2_ROOT_INO, "many", EXT2_T_DIR << 12 | 0755, NULL);
        int n = d->fs->block_size == 1024 ? 400 : d->fs->block_size == 2048 ? 700 : 1100;
        char name[80];
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "a-rather-long-file-name-to-fill-blocks-%04d", i);
            uint32_t ino = mk(fs, dir, name, (i % 10 ? EXT2_T_REG : EXT2_T_DIR) << 12 | 0644, NULL);
            if (i % 10 == 1)
                wr(fs, ino, 0, name, strlen(name));
        }
        ext2_inode_t in;
        assert_int_equal(ext2_iget(fs, dir, &in), 0);
        assert_true(in.size > 12 * fs->block_size);
        assert_int_equal(in.links, 2 + n / 10);
        fsck_ok(d, "many names");
        /* Every other one goes; the rest are still found. */
        for (int i = 0; i < n; i += 2) {
            uint32_t ino;
            bool gone;
            snprintf(name, sizeof name, "a-rather-long-file-name-to-fill-blocks-%04d", i);
            disk_call_start(d);
            assert_int_equal(ext2_remove(fs, dir, name, strlen(name), i % 10 == 0, &ino, &gone), 0);
            assert_true(gone);
            free_inode(fs, ino);
        }
        for (int i = 0; i < n; i++) {
            uint32_t ino;
            snprintf(name, sizeof name, "a-rather-long-file-name-to-fill-blocks-%04d", i);
            assert_int_equal(ext2_dir_lookup(fs, &in, name, strlen(name), &ino),
                             i % 2 ? 0 : OS_ENOENT);
        }
        /* Names come back into the freed room: the directory does not grow. */
        for (int i = 0; i < n; i += 2) {
            snprintf(name, sizeof name, "B%d", i);
            mk(fs, dir, name, EXT2_T_REG << 12 | 0644, NULL);
        }
        ext2_inode_t after;
        assert_int_equal(ext2_iget(fs, dir, &after), 0);
        assert_int_equal(after.size, in.size);
        assert_int_equal(after.links, 2); /* every subdirectory had an even number */
        fsck_ok(d, "many names removed");
        disk_free(d, fs);
    }
}

/* A directory stops growing at EXT2_DIR_GROW_MAX blocks; a freed slot takes a name again. */
static void test_directory_full(void **state)
{
    (void)state;
    disk_t *d = disk_make(1, 16);
    ext2_fs_t *fs = mount_rw(d);
    uint32_t dir = mk(fs, EXT2_ROOT_INO, "d", EXT2_T_DIR << 12 | 0755, NULL);
    uint8_t *snap = malloc(d->size);
    char name[256];
    int made = 0, rc;
    uint32_t ino;
    for (;;) {
        memset(name, 'n', 250);
        snprintf(name + 240, 16, "%010d", made);
        memcpy(snap, d->data, d->size);
        rc = ext2_create(fs, dir, name, strlen(name), EXT2_T_REG << 12 | 0644, NULL, &ino);
        if (rc != 0)
            break;
        made++;
    }
    refused(d, rc, OS_ENOSPC, "32 blocks", snap);
    ext2_inode_t in;
    assert_int_equal(ext2_iget(fs, dir, &in), 0);
    assert_int_equal(in.size, (uint64_t)EXT2_DIR_GROW_MAX * fs->block_size);
    assert_int_equal(made, EXT2_DIR_GROW_MAX * 3); /* entries of 260 bytes, 3 a block */
    bool gone;
    snprintf(name + 240, 16, "%010d", 7);
    assert_int_equal(ext2_remove(fs, dir, name, strlen(name), false, &ino, &gone), 0);
    free_inode(fs, ino);
    mk(fs, dir, "short", EXT2_T_REG << 12 | 0644, NULL);
    fsck_ok(d, "directory full");
    free(snap);
    disk_free(d, fs);
}

/* Sparse data under the double and triple indirect blocks, cut back in steps. */
static void test_deep_maps(void **state)
{
    (void)state;
    static const int confs[] = {0, 1, 4};
    for (size_t k = 0; k < sizeof confs / sizeof confs[0]; k++) {
        disk_t *d = disk_make(confs[k], 16);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t f = mk(fs, EXT2_ROOT_INO, "sparse", EXT2_T_REG << 12 | 0644, NULL);
        uint64_t p = fs->ptrs, bs = fs->block_size;
        uint64_t at[] = {0,
                         11 * bs + 100,
                         (12 + p) * bs - 10, /* crosses into the double indirect range */
                         (12 + p + 3 * p + 5) * bs,
                         (12 + p + p * p) * bs - 2000, /* crosses into the triple range */
                         (12 + p + p * p + p * p + 7 * p + 3) * bs + 1,
                         (uint64_t)1 << 30}; /* 1 GiB: large_file is already set */
        size_t n = sizeof at / sizeof at[0];
        uint8_t buf[4096];
        for (size_t i = 0; i < n; i++) {
            fill(buf, sizeof buf, (uint32_t)i + 50);
            wr(fs, f, at[i], buf, sizeof buf);
        }
        ext2_inode_t in;
        assert_int_equal(ext2_iget(fs, f, &in), 0);
        uint64_t end = 0;
        for (size_t i = 0; i < n; i++)
            end = at[i] + 4096 > end ? at[i] + 4096 : end;
        assert_int_equal(in.size, end);
        assert_true(in.block[13] != 0 && in.block[14] != 0);
        /* Data blocks, and the indirect blocks over them, count in i_blocks. */
        assert_true(in.sectors < 200);
        for (size_t i = 0; i < n; i++) {
            uint8_t got[4096], zero[100] = {0};
            size_t m;
            fill(buf, sizeof buf, (uint32_t)i + 50);
            assert_int_equal(ext2_read(fs, &in, at[i], got, sizeof got, &m), 0);
            assert_memory_equal(got, buf, sizeof got);
            if (at[i] >= 100000) {
                assert_int_equal(ext2_read(fs, &in, at[i] - 100, got, 100, &m), 0);
                assert_memory_equal(got, zero, 100);
            }
        }
        fsck_ok(d, "deep maps");
        char st[8192];
        debugfs_stat(d, "/sparse", st, sizeof st);
        assert_non_null(strstr(st, "(TIND)"));
        /* Cut to inside the double indirect range, then to 0: each step is clean. */
        trunc_all(fs, f, at[3] + 10, d);
        assert_int_equal(ext2_iget(fs, f, &in), 0);
        assert_int_equal(in.block[14], 0);
        assert_true(in.block[13] != 0);
        fsck_ok(d, "deep maps cut");
        trunc_all(fs, f, 0, d);
        fsck_ok(d, "deep maps emptied");
        disk_free(d, fs);
    }
}

/* One byte under each of many indirect blocks: a step stops on its block budget too. */
static void test_sparse_cut(void **state)
{
    (void)state;
    disk_t *d = disk_make(1, 16);
    ext2_fs_t *fs = mount_rw(d);
    ext2_statfs_t st0, st1;
    assert_int_equal(ext2_statfs(fs, &st0), 0);
    uint32_t f = mk(fs, EXT2_ROOT_INO, "holes", EXT2_T_REG << 12 | 0644, NULL);
    uint64_t p = fs->ptrs, bs = fs->block_size;
    for (uint64_t i = 0; i < 150; i++)
        wr(fs, f, (12 + p + i * p + i % 7) * bs + i, "x", 1);
    ext2_inode_t in;
    assert_int_equal(ext2_iget(fs, f, &in), 0);
    /* 150 data blocks, 150 single indirect blocks, one double indirect block. */
    assert_int_equal(in.sectors, (150 + 150 + 1) * (bs / 512));
    int steps = trunc_all(fs, f, (12 + p + 20 * p) * bs, d);
    assert_true(steps >= 5);
    assert_int_equal(ext2_iget(fs, f, &in), 0);
    assert_int_equal(in.sectors, (20 + 20 + 1) * (bs / 512));
    fsck_ok(d, "sparse cut");
    steps = trunc_all(fs, f, 0, d);
    assert_int_equal(ext2_iget(fs, f, &in), 0);
    assert_int_equal(in.sectors, 0);
    assert_int_equal(ext2_statfs(fs, &st1), 0);
    assert_int_equal(st1.free_blocks, st0.free_blocks);
    fsck_ok(d, "sparse emptied");
    disk_free(d, fs);
}

/* Sizes past 2 GiB: large_file set on revision 1, refused on revision 0; past 4 GiB. */
static void test_large_files(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t f = mk(fs, EXT2_ROOT_INO, "large", EXT2_T_REG << 12 | 0644, NULL);
        uint64_t big = (uint64_t)5 << 30;
        bool more;
        if (fs->rev == 0) {
            assert_int_equal(ext2_write(fs, f, 0x7fffffff, "x", 1), OS_EINVAL);
            assert_int_equal(ext2_truncate(fs, f, 0x80000000u, &more), OS_EINVAL);
            wr(fs, f, 0x7ffffffe, "x", 1);
            fsck_ok(d, "just under 2 GiB");
            disk_free(d, fs);
            continue;
        }
        bool had = fs->feat_ro_compat & 2;
        assert_int_equal(had, c != 4);
        wr(fs, f, big, "tail", 4);
        assert_true(fs->feat_ro_compat & 2);
        ext2_inode_t in;
        assert_int_equal(ext2_iget(fs, f, &in), 0);
        assert_int_equal(in.size, big + 4);
        fsck_ok(d, "over 4 GiB");
        char st[4096];
        debugfs_stat(d, "/large", st, sizeof st);
        assert_non_null(strstr(st, "Size: 5368709124"));
        trunc_all(fs, f, 3000000000u, d);
        fsck_ok(d, "cut to 3 GB");
        disk_free(d, fs);
    }
}

/* Fast symlinks (under 60 bytes, in i_block) and slow ones (a block), freed again. */
static void test_symlinks(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t dir = mk(fs, EXT2_ROOT_INO, "dir", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t f = mk(fs, dir, "target", EXT2_T_REG << 12 | 0644, NULL);
        wr(fs, f, 0, "hello", 5);
        char slow[400], fast60[61];
        snprintf(slow, sizeof slow, "%s",
                 "/dir/./././././././././././././././././././././."
                 "/././././././././././././././././././././target");
        memset(fast60, 'x', 60);
        fast60[59] = '\0'; /* 59 bytes: the longest fast one */
        uint32_t a = mk(fs, EXT2_ROOT_INO, "fast", EXT2_T_LNK << 12 | 0777, "dir/target");
        uint32_t b = mk(fs, EXT2_ROOT_INO, "slow", EXT2_T_LNK << 12 | 0777, slow);
        uint32_t e = mk(fs, EXT2_ROOT_INO, "edge", EXT2_T_LNK << 12 | 0777, fast60);
        ext2_inode_t in;
        char buf[EXT2_PATH_MAX + 1];
        assert_int_equal(ext2_iget(fs, a, &in), 0);
        assert_int_equal(in.sectors, 0);
        assert_int_equal(ext2_iget(fs, e, &in), 0);
        assert_int_equal(in.sectors, 0);
        assert_int_equal(ext2_readlink(fs, &in, buf, sizeof buf), 0);
        assert_string_equal(buf, fast60);
        assert_int_equal(ext2_iget(fs, b, &in), 0);
        assert_int_equal(in.sectors, fs->block_size / 512);
        assert_int_equal(ext2_readlink(fs, &in, buf, sizeof buf), 0);
        assert_string_equal(buf, slow);
        expect_file(fs, "/fast", (const uint8_t *)"hello", 5);
        expect_file(fs, "/slow", (const uint8_t *)"hello", 5);
        uint32_t ino;
        assert_int_equal(ext2_create(fs, dir, "l", 1, EXT2_T_LNK << 12, "", &ino), OS_EINVAL);
        /* Too long: over the path limit, or no room for the NUL in a 1 KiB block. */
        char too[EXT2_PATH_MAX + 2];
        memset(too, 'y', sizeof too);
        too[fs->block_size == 1024 ? 1024 : EXT2_PATH_MAX + 1] = '\0';
        assert_int_equal(ext2_create(fs, dir, "l", 1, EXT2_T_LNK << 12, too, &ino),
                         OS_ENAMETOOLONG);
        too[fs->block_size == 1024 ? 1023 : EXT2_PATH_MAX] = '\0';
        assert_int_equal(ext2_create(fs, dir, "l", 1, EXT2_T_LNK << 12, too, &ino), 0);
        bool more;
        assert_int_equal(ext2_truncate(fs, a, 5, &more), OS_EINVAL);
        assert_int_equal(ext2_write(fs, a, 0, "x", 1), OS_EINVAL);
        fsck_ok(d, "symlinks");
        char st[4096];
        debugfs_stat(d, "/fast", st, sizeof st);
        assert_non_null(strstr(st, "Fast link dest: \"dir/target\""));
        /* Removed and freed, fast and slow. */
        static const char *names[] = {"fast", "slow", "edge"};
        for (int i = 0; i < 3; i++) {
            bool gone;
            assert_int_equal(
                ext2_remove(fs, EXT2_ROOT_INO, names[i], strlen(names[i]), false, &ino, &gone), 0);
            assert_true(gone);
            free_inode(fs, ino);
        }
        fsck_ok(d, "symlinks removed");
        disk_free(d, fs);
    }
}

static int ren(ext2_fs_t *fs, uint32_t from, const char *a, uint32_t to, const char *b,
               uint32_t *replaced, bool *gone)
{
    disk_call_start(fs->arg);
    return ext2_rename(fs, from, a, strlen(a), to, b, strlen(b), replaced, gone);
}

static uint32_t ino_of(ext2_fs_t *fs, const char *path)
{
    ext2_inode_t in;
    int rc = ext2_lookup(fs, path, false, &in);
    if (rc != 0)
        fail_msg("lookup %s: %s: %s", path, os_errname(rc), ext2_why(fs));
    return in.ino;
}

static uint16_t links_of(ext2_fs_t *fs, uint32_t ino)
{
    ext2_inode_t in;
    assert_int_equal(ext2_iget(fs, ino, &in), 0);
    return in.links;
}

/* Renames in one directory and between two, replacing files and empty directories. */
static void test_rename(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t x = mk(fs, EXT2_ROOT_INO, "x", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t y = mk(fs, x, "y", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t z = mk(fs, EXT2_ROOT_INO, "z", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t a = mk(fs, x, "a", EXT2_T_REG << 12 | 0644, NULL);
        uint32_t b = mk(fs, z, "b", EXT2_T_REG << 12 | 0644, NULL);
        uint32_t e = mk(fs, z, "empty", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t full = mk(fs, z, "full", EXT2_T_DIR << 12 | 0755, NULL);
        mk(fs, full, "inside", EXT2_T_REG << 12 | 0644, NULL);
        wr(fs, a, 0, "AAAA", 4);
        wr(fs, b, 0, "BBBBBBBB", 8);
        uint32_t rep;
        bool gone;
        /* In one directory, then over a file in another: the replaced file is the caller's. */
        assert_int_equal(ren(fs, x, "a", x, "a2", &rep, &gone), 0);
        assert_int_equal(rep, 0);
        assert_int_equal(ren(fs, x, "a2", z, "b", &rep, &gone), 0);
        assert_int_equal(rep, b);
        assert_true(gone);
        free_inode(fs, b);
        expect_file(fs, "/z/b", (const uint8_t *)"AAAA", 4);
        assert_int_equal(ino_of(fs, "/z/b"), a);
        /* The same file under both names: nothing happens. */
        assert_int_equal(ren(fs, z, "b", z, "b", &rep, &gone), 0);
        /* Type clashes, a non-empty directory, missing names, a directory under itself. */
        assert_int_equal(ren(fs, z, "b", z, "empty", &rep, &gone), OS_EISDIR);
        assert_int_equal(ren(fs, z, "empty", z, "b", &rep, &gone), OS_ENOTDIR);
        assert_int_equal(ren(fs, x, "y", z, "full", &rep, &gone), OS_ENOTEMPTY);
        assert_int_equal(ren(fs, x, "nope", z, "q", &rep, &gone), OS_ENOENT);
        assert_int_equal(ren(fs, EXT2_ROOT_INO, "x", y, "x", &rep, &gone), OS_EINVAL);
        assert_int_equal(ren(fs, EXT2_ROOT_INO, "x", x, "x", &rep, &gone), OS_EINVAL);
        assert_int_equal(ren(fs, EXT2_ROOT_INO, "x", EXT2_ROOT_INO, "..", &rep, &gone), OS_EINVAL);
        fsck_ok(d, "rename errors");
        /* A directory to another parent: its ".." and both parents' links follow. */
        uint16_t lx = links_of(fs, x), lz = links_of(fs, z);
        assert_int_equal(ren(fs, x, "y", z, "y", &rep, &gone), 0);
        assert_int_equal(links_of(fs, x), lx - 1);
        assert_int_equal(links_of(fs, z), lz + 1);
        assert_int_equal(ino_of(fs, "/z/y/.."), z);
        fsck_ok(d, "directory moved");
        /* Over an empty directory elsewhere: the parent loses the replaced one's "..". */
        mk(fs, y, "f", EXT2_T_REG << 12 | 0644, NULL);
        lz = links_of(fs, z);
        lx = links_of(fs, x);
        assert_int_equal(ren(fs, z, "y", z, "empty", &rep, &gone), 0);
        assert_int_equal(rep, e);
        assert_true(gone);
        free_inode(fs, e);
        assert_int_equal(links_of(fs, z), lz - 1);
        assert_int_equal(ren(fs, z, "empty", x, "back", &rep, &gone), 0);
        assert_int_equal(links_of(fs, x), lx + 1);
        assert_int_equal(ino_of(fs, "/x/back/.."), x);
        assert_int_equal(ino_of(fs, "/x/back/f"), ino_of(fs, "/x/back/f"));
        /* A deep move up: /x/back/deeper to the root. */
        uint32_t deeper = mk(fs, y, "deeper", EXT2_T_DIR << 12 | 0755, NULL);
        assert_int_equal(ren(fs, y, "deeper", EXT2_ROOT_INO, "top", &rep, &gone), 0);
        assert_int_equal(ino_of(fs, "/top"), deeper);
        assert_int_equal(ino_of(fs, "/top/.."), EXT2_ROOT_INO);
        assert_int_equal(ren(fs, EXT2_ROOT_INO, "x", deeper, "x", &rep, &gone), 0);
        assert_int_equal(ino_of(fs, "/top/x/back/f"), ino_of(fs, "/top/x/back/f"));
        assert_int_equal(ren(fs, EXT2_ROOT_INO, "top", y, "t", &rep, &gone), OS_EINVAL);
        fsck_ok(d, "directories moved");
        disk_free(d, fs);
    }
}

/* Fill the volume: OS_EDISKFULL changes nothing, files stay whole, e2fsck stays happy. */
static void test_disk_full(void **state)
{
    (void)state;
    static const int confs[] = {0, 3, 4};
    for (size_t k = 0; k < sizeof confs / sizeof confs[0]; k++) {
        disk_t *d = disk_make(confs[k], 4);
        ext2_fs_t *fs = mount_rw(d);
        uint8_t *snap = malloc(d->size), buf[4096];
        uint32_t files[64];
        uint64_t sizes[64] = {0};
        uint8_t *model[64] = {0};
        int nf = 0, fulls = 0;
        char name[32];
        ext2_statfs_t st;
        for (int round = 0; fulls < 8; round++) {
            assert_true(round < 100000);
            if (round % 64 == 0 && nf < 64) {
                snprintf(name, sizeof name, "f%d", nf);
                disk_call_start(d);
                int rc = ext2_create(fs, EXT2_ROOT_INO, name, strlen(name), EXT2_T_REG << 12 | 0644,
                                     NULL, &files[nf]);
                if (rc == 0)
                    nf++;
                else
                    assert_int_equal(rc, OS_EDISKFULL);
            }
            int i = round % nf;
            /* Unaligned 4 KiB pieces: some need five blocks and an indirect one. */
            uint64_t off = sizes[i] + (uint64_t)(round % 3) * 1000;
            fill(buf, sizeof buf, (uint32_t)(i * 7919 + off));
            assert_int_equal(ext2_statfs(fs, &st), 0);
            bool near = st.free_blocks < 40;
            if (near)
                memcpy(snap, d->data, d->size);
            disk_call_start(d);
            int rc = ext2_write(fs, files[i], off, buf, sizeof buf);
            if (rc == OS_EDISKFULL) {
                assert_true(near);
                assert_memory_equal(snap, d->data, d->size);
                fulls++;
                continue;
            }
            assert_int_equal(rc, 0);
            /* The gap the offset left is a hole: zeros. */
            model[i] = realloc(model[i], off + sizeof buf);
            memset(model[i] + sizes[i], 0, off - sizes[i]);
            memcpy(model[i] + off, buf, sizeof buf);
            sizes[i] = off + sizeof buf;
        }
        assert_int_equal(ext2_statfs(fs, &st), 0);
        assert_true(st.free_blocks < 5);
        /* A directory needs a block: refused, nothing changed. */
        memcpy(snap, d->data, d->size);
        uint32_t ino;
        disk_call_start(d);
        int rc = ext2_create(fs, EXT2_ROOT_INO, "dir", 3, EXT2_T_DIR << 12 | 0755, NULL, &ino);
        if (st.free_blocks == 0) {
            assert_int_equal(rc, OS_EDISKFULL);
            assert_memory_equal(snap, d->data, d->size);
        }
        fsck_ok(d, "disk full");
        for (int i = 0; i < nf; i++) {
            snprintf(name, sizeof name, "/f%d", i);
            expect_file(fs, name, model[i], sizes[i]);
        }
        /* Freeing one file makes room again. */
        uint32_t gone_ino;
        bool gone;
        assert_int_equal(ext2_remove(fs, EXT2_ROOT_INO, "f0", 2, false, &gone_ino, &gone), 0);
        free_inode(fs, gone_ino);
        wr(fs, files[1], sizes[1], "more", 4);
        fsck_ok(d, "disk full, then room");
        for (int i = 0; i < nf; i++)
            free(model[i]);
        free(snap);
        disk_free(d, fs);
    }
}

/* Inodes run out: OS_EDISKFULL, nothing changed. */
static void test_inodes_full(void **state)
{
    (void)state;
    disk_t *d = disk_make_opts(1, 4, "-N 64");
    ext2_fs_t *fs = mount_rw(d);
    uint8_t *snap = malloc(d->size);
    int made = 0;
    for (;;) {
        char name[32];
        uint32_t ino;
        snprintf(name, sizeof name, "n%d", made);
        memcpy(snap, d->data, d->size);
        int rc = ext2_create(fs, EXT2_ROOT_INO, name, strlen(name),
                             (made % 3 ? EXT2_T_REG : EXT2_T_DIR) << 12 | 0644, NULL, &ino);
        if (rc == OS_EDISKFULL)
            break;
        assert_int_equal(rc, 0);
        made++;
    }
    assert_memory_equal(snap, d->data, d->size);
    assert_true(made > 20 && made < 64);
    ext2_statfs_t st;
    assert_int_equal(ext2_statfs(fs, &st), 0);
    assert_int_equal(st.free_inodes, 0);
    fsck_ok(d, "inodes full");
    free(snap);
    disk_free(d, fs);
}

/* What is not writable says so: not mounted writable, ext3 features, flex_bg, errors. */
static void test_read_only(void **state)
{
    (void)state;
    disk_t *d = disk_make(1, 8);
    ext2_fs_t *fs = calloc(1, sizeof *fs);
    assert_int_equal(ext2_mount(fs, disk_read, d, d->size), 0);
    uint32_t ino;
    bool more, gone;
    uint8_t *snap = malloc(d->size);
    memcpy(snap, d->data, d->size);
    assert_int_equal(ext2_create(fs, 2, "a", 1, EXT2_T_REG << 12, NULL, &ino), OS_EROFS);
    assert_int_equal(ext2_write(fs, 2, 0, "a", 1), OS_EROFS);
    assert_int_equal(ext2_truncate(fs, 2, 0, &more), OS_EROFS);
    assert_int_equal(ext2_remove(fs, 2, "a", 1, false, &ino, &gone), OS_EROFS);
    assert_int_equal(ext2_release(fs, 12), OS_EROFS);
    assert_int_equal(ext2_unmount(fs), OS_EROFS);
    ext2_statfs_t st;
    assert_int_equal(ext2_statfs(fs, &st), 0);
    assert_true(st.free_blocks > 0 && st.free_blocks < st.blocks);
    assert_memory_equal(snap, d->data, d->size);
    /* Errors recorded in the superblock (s_state 2). */
    d->data[1024 + 58] = 2;
    assert_int_equal(ext2_mount(fs, disk_read, d, d->size), 0);
    assert_int_equal(ext2_mount_rw(fs, disk_write), OS_EROFS);
    assert_non_null(strstr(ext2_why(fs), "errors"));
    free(fs);
    free(snap);
    disk_free(d, NULL);
    static const char *opts[] = {"-j", "-O flex_bg", "-O metadata_csum"};
    static const char *says[] = {"has_journal", "flex_bg", "metadata_csum"};
    for (int i = 0; i < 3; i++) {
        d = disk_make_opts(1, 8, opts[i]);
        fs = calloc(1, sizeof *fs);
        assert_int_equal(ext2_mount(fs, disk_read, d, d->size), 0);
        assert_int_equal(ext2_mount_rw(fs, disk_write), OS_EROFS);
        if (!strstr(ext2_why(fs), says[i]))
            fail_msg("%s: %s", opts[i], ext2_why(fs));
        free(fs);
        disk_free(d, NULL);
    }
}

/* Directories spread over the groups; a file's inode and blocks stay near its directory. */
static void test_placement(void **state)
{
    (void)state;
    disk_t *d = disk_make(1, 16);
    ext2_fs_t *fs = mount_rw(d);
    uint32_t groups_seen = 0, ipg = fs->inodes_per_group;
    uint32_t dirs[4];
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "d%d", i);
        dirs[i] = mk(fs, EXT2_ROOT_INO, name, EXT2_T_DIR << 12 | 0755, NULL);
        groups_seen |= 1u << ((dirs[i] - 1) / ipg);
    }
    assert_int_equal(__builtin_popcount(groups_seen), 4);
    for (int i = 0; i < 4; i++) {
        uint32_t f = mk(fs, dirs[i], "f", EXT2_T_REG << 12 | 0644, NULL);
        assert_int_equal((f - 1) / ipg, (dirs[i] - 1) / ipg);
        wr(fs, f, 0, "data", 4);
        ext2_inode_t in;
        assert_int_equal(ext2_iget(fs, f, &in), 0);
        assert_int_equal((in.block[0] - fs->first_data_block) / fs->blocks_per_group,
                         (f - 1) / ipg);
    }
    fsck_ok(d, "placement");
    disk_free(d, fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_write_read),
        cmocka_unit_test(test_fresh_blocks_whole),
        cmocka_unit_test(test_remove_and_free),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_many_names),
        cmocka_unit_test(test_directory_full),
        cmocka_unit_test(test_deep_maps),
        cmocka_unit_test(test_sparse_cut),
        cmocka_unit_test(test_large_files),
        cmocka_unit_test(test_symlinks),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_inodes_full),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_placement),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
