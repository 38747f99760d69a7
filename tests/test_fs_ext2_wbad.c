/* test_fs_ext2_wbad.c — the ext2 write side on corrupt volumes and past its block budget. */
#include "ext2w_util.h"

/* ---- corrupt structures: OS_EIO naming the culprit, nothing written over metadata ------ */

static uint32_t rd32(const disk_t *d, size_t off)
{
    const uint8_t *p = d->data + off;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(disk_t *d, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d->data[off + i] = (uint8_t)(v >> (8 * i));
}

static size_t gd_off(const ext2_fs_t *fs, uint32_t g)
{
    return (size_t)(fs->first_data_block + 1) * fs->block_size + (size_t)g * 32;
}

static size_t inode_at(disk_t *d, uint32_t ino)
{
    ext2_fs_t *fs = d->fs;
    uint32_t g = (ino - 1) / fs->inodes_per_group, idx = (ino - 1) % fs->inodes_per_group;
    return (size_t)rd32(d, gd_off(fs, g) + 8) * fs->block_size + (size_t)idx * fs->inode_size;
}

static void test_corrupt(void **state)
{
    (void)state;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t bs = fs->block_size;
        uint32_t f = mk(fs, EXT2_ROOT_INO, "f", EXT2_T_REG << 12 | 0644, NULL);
        uint32_t dir = mk(fs, EXT2_ROOT_INO, "dir", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t y = mk(fs, dir, "y", EXT2_T_DIR << 12 | 0755, NULL);
        uint8_t buf[4096];
        fill(buf, sizeof buf, 1);
        wr(fs, f, 12 * (uint64_t)bs, buf, 100); /* takes the single indirect block */
        uint8_t *snap = malloc(d->size);
        uint32_t itable = rd32(d, gd_off(fs, 0) + 8), bbitmap = rd32(d, gd_off(fs, 0));
        size_t fi = inode_at(d, f);
        uint32_t ind = rd32(d, fi + 40 + 12 * 4);
        /* An indirect entry naming the inode table: the write is refused before it starts. */
        wr32(d, (size_t)ind * bs + 4, itable);
        memcpy(snap, d->data, d->size);
        refused(d, ext2_write(fs, f, 13 * (uint64_t)bs, buf, 10), OS_EIO, "metadata", snap);
        assert_non_null(strstr(ext2_why(fs), "inode"));
        /* The single indirect block itself is the block bitmap: no pointer goes into it (its
         * bits read as pointers may also fail first). */
        uint32_t ind_was = rd32(d, fi + 40 + 12 * 4);
        wr32(d, (size_t)ind * bs + 4, 0);
        wr32(d, fi + 40 + 12 * 4, bbitmap);
        memcpy(snap, d->data, d->size);
        refused(d, ext2_write(fs, f, 20 * (uint64_t)bs, buf, 10), OS_EIO, "inode 12", snap);
        size_t zero_at = (size_t)bbitmap * bs + 8 * 4;
        if (rd32(d, zero_at) == 0)
            assert_non_null(strstr(ext2_why(fs), "metadata"));
        /* Past the volume. */
        wr32(d, fi + 40 + 12 * 4, fs->blocks_count + 5);
        memcpy(snap, d->data, d->size);
        refused(d, ext2_write(fs, f, 20 * (uint64_t)bs, buf, 10), OS_EIO, "outside", snap);
        bool more;
        refused(d, ext2_truncate(fs, f, 0, &more), OS_EIO, "outside", snap);
        wr32(d, fi + 40 + 12 * 4, ind_was);
        /* A directory entry with a bad rec_len. */
        ext2_inode_t din;
        assert_int_equal(ext2_iget(fs, dir, &din), 0);
        size_t e1 = (size_t)din.block[0] * bs + 12; /* ".." */
        uint8_t keep = d->data[e1 + 4];
        d->data[e1 + 4] = 3;
        memcpy(snap, d->data, d->size);
        uint32_t ino;
        fs->scratch_blk = 0;
        refused(d, ext2_create(fs, dir, "n", 1, EXT2_T_REG << 12, NULL, &ino), OS_EIO,
                "directory inode", snap);
        d->data[e1 + 4] = keep;
        fs->scratch_blk = 0;
        /* An entry naming a reserved inode (7: the resize inode) is never unlinked. */
        size_t ey = (size_t)din.block[0] * bs + 24; /* "y", after "." and ".." */
        assert_int_equal(rd32(d, ey), y);
        wr32(d, ey, 7);
        memcpy(snap, d->data, d->size);
        bool gone0;
        refused(d, ext2_remove(fs, dir, "y", 1, true, &ino, &gone0), OS_EIO, "reserved", snap);
        wr32(d, ey, y);
        fs->scratch_blk = 0;
        /* A group that counts free blocks its bitmap does not have. */
        size_t g0 = gd_off(fs, 0);
        uint16_t had = (uint16_t)(d->data[g0 + 12] | d->data[g0 + 13] << 8);
        for (uint32_t g = 0; g < fs->groups; g++) {
            size_t bm = (size_t)rd32(d, gd_off(fs, g)) * bs;
            memset(d->data + bm, 0xff, bs);
        }
        memcpy(snap, d->data, d->size);
        refused(d, ext2_write(fs, f, 40 * (uint64_t)bs, buf, 10), OS_EIO, "none in its bitmap",
                snap);
        (void)had;
        /* A ".." chain that loops: a move into it ends. */
        disk_t *d2 = disk_make(c, 16);
        ext2_fs_t *fs2 = mount_rw(d2);
        uint32_t a = mk(fs2, EXT2_ROOT_INO, "a", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t b = mk(fs2, a, "b", EXT2_T_DIR << 12 | 0755, NULL);
        mk(fs2, EXT2_ROOT_INO, "c", EXT2_T_DIR << 12 | 0755, NULL);
        ext2_inode_t bin;
        assert_int_equal(ext2_iget(fs2, b, &bin), 0);
        wr32(d2, (size_t)bin.block[0] * fs2->block_size + 12, b);
        fs2->scratch_blk = 0;
        uint32_t rep;
        bool gone;
        refused(d2, ext2_rename(fs2, EXT2_ROOT_INO, "c", 1, b, "c", 1, &rep, &gone), OS_EIO,
                "loops", NULL);
        /* A '.' whose rec_len points far past the block: the move of a directory stops. */
        ext2_inode_t ain;
        assert_int_equal(ext2_iget(fs2, a, &ain), 0);
        size_t dot = (size_t)ain.block[0] * fs2->block_size;
        d2->data[dot + 4] = 0xfc;
        d2->data[dot + 5] = 0xff;
        fs2->scratch_blk = 0;
        memcpy(snap, d2->data, d2->size);
        refused(d2, ext2_rename(fs2, EXT2_ROOT_INO, "a", 1, EXT2_ROOT_INO, "c2", 2, &rep, &gone), 0,
                "", NULL);
        uint32_t cino;
        assert_int_equal(ext2_dir_lookup(fs2, &ain, "b", 1, &cino), OS_EIO);
        ext2_inode_t root;
        assert_int_equal(ext2_iget(fs2, EXT2_ROOT_INO, &root), 0);
        assert_int_equal(ext2_dir_lookup(fs2, &root, "c", 1, &cino), 0);
        memcpy(snap, d2->data, d2->size);
        refused(d2, ext2_rename(fs2, EXT2_ROOT_INO, "c2", 2, cino, "a", 1, &rep, &gone), OS_EIO,
                "rec_len", snap);
        free(snap);
        disk_free(d2, fs2);
        disk_free(d, fs);
    }
}

/* A group whose bitmaps or inode table sit outside it (or on each other): not written. */
static void test_bad_layout(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        disk_t *d = disk_make(1, 16);
        ext2_fs_t *fs = calloc(1, sizeof *fs);
        d->fs = fs;
        assert_int_equal(ext2_mount(fs, disk_read, d, d->size), 0);
        size_t g1 = gd_off(fs, 1);
        uint32_t bb = rd32(d, g1), it = rd32(d, g1 + 8);
        if (k == 0)
            wr32(d, g1 + 8, rd32(d, gd_off(fs, 0) + 8) + 1); /* inode table in group 0 */
        else if (k == 1)
            wr32(d, g1 + 4, bb); /* both bitmaps on one block */
        else
            wr32(d, g1, it + 3); /* the block bitmap inside the inode table */
        assert_int_equal(ext2_mount(fs, disk_read, d, d->size), 0);
        uint8_t *snap = malloc(d->size);
        memcpy(snap, d->data, d->size);
        refused(d, ext2_mount_rw(fs, disk_write), OS_EROFS, "group 1", snap);
        free(snap);
        disk_free(d, fs);
    }
}

/* Random damage to a populated volume, then writing calls: errors, never a crash. */
static void test_random_damage(void **state)
{
    (void)state;
    uint32_t x = 4242;
    int mounted = 0, ok_calls = 0;
    for (int c = 0; c < NCONF; c += 2) {
        disk_t *d = disk_make(c, 8);
        ext2_fs_t *fs = mount_rw(d);
        uint32_t dir = mk(fs, EXT2_ROOT_INO, "d", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t f = mk(fs, dir, "f", EXT2_T_REG << 12 | 0644, NULL);
        uint8_t buf[4096];
        fill(buf, sizeof buf, 9);
        for (int i = 0; i < 40; i++)
            wr(fs, f, (uint64_t)i * 4096 * 3, buf, sizeof buf);
        mk(fs, dir, "s", EXT2_T_LNK << 12 | 0777, "f");
        mk(fs, EXT2_ROOT_INO, "e", EXT2_T_DIR << 12 | 0755, NULL);
        uint32_t sub = mk(fs, dir, "sub", EXT2_T_DIR << 12 | 0755, NULL);
        mk(fs, sub, "x", EXT2_T_REG << 12 | 0644, NULL);
        assert_int_equal(ext2_unmount(fs), 0);
        uint8_t *pristine = malloc(d->size);
        memcpy(pristine, d->data, d->size);
        size_t itab = (size_t)rd32(d, gd_off(fs, 0) + 8) * fs->block_size;
        size_t span = itab + (size_t)fs->inodes_per_group * fs->inode_size + 200 * 1024;
        if (span > d->size)
            span = d->size;
        for (int iter = 0; iter < 200; iter++) {
            memcpy(d->data, pristine, d->size);
            for (int k = 0; k < 6; k++) {
                x = x * 1103515245u + 12345u;
                size_t at = k % 2 ? itab + (x >> 4) % (40 * fs->inode_size)
                                  : 1024 + (x >> 4) % (span - 1024);
                x = x * 1103515245u + 12345u;
                d->data[at] ^= (uint8_t)(1u << ((x >> 16) % 8));
            }
            if (ext2_mount(fs, disk_read, d, d->size) != 0 || ext2_mount_rw(fs, disk_write) != 0)
                continue;
            mounted++;
            uint32_t ino, rep;
            bool gone, more;
            int rc[9];
            rc[0] = ext2_create(fs, dir, "new", 3, EXT2_T_REG << 12, NULL, &ino);
            rc[1] = ext2_write(fs, f, 5000, buf, 3000);
            rc[2] = ext2_write(fs, f, 300000, buf, 4096);
            rc[3] = ext2_truncate(fs, f, 7000, &more);
            rc[4] = ext2_rename(fs, dir, "s", 1, EXT2_ROOT_INO, "s2", 2, &rep, &gone);
            rc[5] = ext2_create(fs, EXT2_ROOT_INO, "dd", 2, EXT2_T_DIR << 12, NULL, &ino);
            rc[6] = ext2_remove(fs, EXT2_ROOT_INO, "e", 1, true, &ino, &gone);
            rc[7] = gone ? ext2_release(fs, ino) : 0;
            rc[8] = ext2_rename(fs, dir, "sub", 3, EXT2_ROOT_INO, "sub", 3, &rep, &gone);
            for (int k = 0; k < 9; k++) {
                assert_true(rc[k] <= 0 && rc[k] != OS_EBUSY);
                ok_calls += rc[k] == 0;
            }
            assert_true(d->max_call_blocks <= EXT2_CALL_BLOCKS_MAX);
        }
        free(pristine);
        disk_free(d, NULL);
    }
    print_message("%d damaged volumes mounted writable, %d calls succeeded\n", mounted, ok_calls);
    assert_true(mounted > 100);
}

/* A directory mke2fs made too large for one call: refused before anything changes. */
static void test_directory_budget(void **state)
{
    (void)state;
    /* The source tree lives in the suite's own temporary folder. */
    char src[160], opt[200];
    snprintf(src, sizeof src, "%s/src", suite_dir());
    sh("mkdir -p %s/big && cd %s/big && for i in $(seq 1 2600); do : > "
       "file-with-a-name-of-some-length-$i; done",
       src, src);
    snprintf(opt, sizeof opt, "-d %s", src);
    disk_t *d = disk_make_opts(0, 16, opt);
    ext2_fs_t *fs = mount_rw(d);
    ext2_inode_t big;
    assert_int_equal(ext2_lookup(fs, "/big", false, &big), 0);
    assert_true(big.size / fs->block_size > EXT2_CALL_BLOCKS_MAX);
    uint8_t *snap = malloc(d->size);
    memcpy(snap, d->data, d->size);
    uint32_t ino;
    bool gone;
    refused(d, ext2_create(fs, big.ino, "x", 1, EXT2_T_REG << 12, NULL, &ino), OS_ENOTSUP, "blocks",
            snap);
    refused(
        d, ext2_remove(fs, big.ino, "file-with-a-name-of-some-length-2600", 36, false, &ino, &gone),
        OS_ENOTSUP, "blocks", snap);
    /* A name early in it is found before the budget runs out. */
    assert_int_equal(
        ext2_remove(fs, big.ino, "file-with-a-name-of-some-length-1", 33, false, &ino, &gone), 0);
    free_inode(fs, ino);
    fsck_ok(d, "budget");
    free(snap);
    disk_free(d, fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_bad_layout),
        cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_directory_budget),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
