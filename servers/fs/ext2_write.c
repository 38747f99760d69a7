/* ext2_write.c — the ext2 write side: device writes, accounting, allocation, mount, statfs. */
#include <stdio.h>
#include <string.h>

#include <os/errno.h>

#include "ext2.h"
#include "ext2_priv.h"

const uint8_t ext2__zeros[EXT2_BLOCK_MAX];

int ext2__wbegin(ext2_fs_t *fs)
{
    fs->why[0] = '\0';
    if (!fs->write)
        return ext2__fail(fs, OS_EROFS, "the volume is mounted read-only");
    fs->track = true;
    fs->touched_n = 0;
    return 0;
}

int ext2__wend(ext2_fs_t *fs, int rc)
{
    fs->track = false;
    return rc;
}

int ext2__dev_write(ext2_fs_t *fs, uint64_t off, const void *buf, size_t len, int kind,
                    const char *what)
{
    uint64_t vol = (uint64_t)fs->blocks_count * fs->block_size;
    /* Nothing below the superblock (the boot sectors) is ever ours to write. */
    if (off < SB_OFFSET || off > vol || len > vol - off)
        return ext2__fail(fs, OS_EIO, "%s: write of bytes %llu+%zu outside the volume", what,
                          (unsigned long long)off, len);
    int rc = ext2__touch(fs, off, len);
    if (rc < 0)
        return rc;
    /* The scratch copy of a directory block must never go stale. */
    uint64_t sb = (uint64_t)fs->scratch_blk * fs->block_size;
    if (fs->scratch_blk && off < sb + fs->block_size && off + len > sb &&
        !(buf == fs->scratch && off == sb))
        fs->scratch_blk = 0;
    rc = fs->write(fs->arg, off, buf, len, kind);
    if (rc == OS_EBUSY)
        return ext2__fail(fs, OS_EBUSY, "%s: bytes %llu+%zu not cached yet", what,
                          (unsigned long long)off, len);
    if (rc < 0)
        return ext2__fail(fs, OS_EIO, "%s: device write at byte %llu failed (%s)", what,
                          (unsigned long long)off, os_errname(rc));
    return 0;
}

int ext2__room(ext2_fs_t *fs)
{
    uint32_t gdt = (fs->groups * GD_SIZE + fs->block_size - 1) / fs->block_size;
    if (fs->touched_n + gdt + 16 > EXT2_CALL_BLOCKS_MAX)
        return ext2__fail(fs, OS_ENOTSUP,
                          "the operation needs more than %u blocks at once (a directory too "
                          "large to change?)",
                          EXT2_CALL_BLOCKS_MAX);
    return 0;
}

/* ---- superblock and group counts -------------------------------------------------------- */

int ext2__sb_get(ext2_fs_t *fs, uint32_t field, uint32_t size, uint32_t *v)
{
    uint8_t b[4];
    int rc = ext2__dev_read(fs, SB_OFFSET + field, b, size, "superblock");
    if (rc < 0)
        return rc;
    *v = size == 2 ? le16(b) : le32(b);
    return 0;
}

int ext2__sb_put(ext2_fs_t *fs, uint32_t field, uint32_t size, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    return ext2__dev_write(fs, SB_OFFSET + field, b, size, EXT2_W_META, "superblock");
}

/* Add to the superblock's free block and inode counts, checked against the totals. */
static int sb_adjust(ext2_fs_t *fs, int dblocks, int dinodes)
{
    uint8_t b[8];
    int rc = ext2__dev_read(fs, SB_OFFSET + SB_FREE_BLOCKS, b, sizeof b, "superblock");
    if (rc < 0)
        return rc;
    int64_t fb = (int64_t)le32(b) + dblocks, fi = (int64_t)le32(b + 4) + dinodes;
    if (fb < 0 || fb > fs->blocks_count || fi < 0 || fi > fs->inodes_count)
        return ext2__fail(fs, OS_EIO, "superblock: free counts %u/%u out of step with the bitmaps",
                          le32(b), le32(b + 4));
    put32(b, (uint32_t)fb);
    put32(b + 4, (uint32_t)fi);
    return ext2__dev_write(fs, SB_OFFSET + SB_FREE_BLOCKS, b, sizeof b, EXT2_W_META, "superblock");
}

/* Add to group g's free block, free inode and directory counts, checked. */
static int gd_adjust(ext2_fs_t *fs, uint32_t g, int dblocks, int dinodes, int ddirs)
{
    uint64_t off = (uint64_t)fs->gdt_block * fs->block_size + (uint64_t)g * GD_SIZE + 12;
    uint8_t b[6];
    int rc = ext2__dev_read(fs, off, b, sizeof b, "group descriptor");
    if (rc < 0)
        return rc;
    int32_t fb = le16(b) + dblocks, fi = le16(b + 2) + dinodes, nd = le16(b + 4) + ddirs;
    if (fb < 0 || (uint32_t)fb > fs->blocks_per_group || fi < 0 ||
        (uint32_t)fi > fs->inodes_per_group || nd < 0 || (uint32_t)nd > fs->inodes_per_group)
        return ext2__fail(fs, OS_EIO, "group %u: counts %u/%u/%u out of step with its bitmaps", g,
                          le16(b), le16(b + 2), le16(b + 4));
    put16(b, (uint32_t)fb);
    put16(b + 2, (uint32_t)fi);
    put16(b + 4, (uint32_t)nd);
    return ext2__dev_write(fs, off, b, sizeof b, EXT2_W_META, "group descriptor");
}

int ext2__space(ext2_fs_t *fs, uint32_t blocks, uint32_t inodes)
{
    uint8_t b[12];
    int rc = ext2__dev_read(fs, SB_OFFSET + SB_R_BLOCKS, b, sizeof b, "superblock");
    if (rc < 0)
        return rc;
    uint64_t reserved = le32(b), free_b = le32(b + 4), free_i = le32(b + 8);
    if (free_b < reserved + blocks)
        return ext2__fail(fs, OS_EDISKFULL, "%u blocks needed, %llu free (%llu of them reserved)",
                          blocks, (unsigned long long)free_b, (unsigned long long)reserved);
    if (free_i < inodes)
        return ext2__fail(fs, OS_EDISKFULL, "no free inode");
    return 0;
}

int ext2__large_file(ext2_fs_t *fs, uint64_t size)
{
    if (size <= 0x7fffffffu || (fs->feat_ro_compat & RO_COMPAT_LARGE_FILE))
        return 0;
    if (fs->rev == 0)
        return ext2__fail(fs, OS_EINVAL, "a size of %llu bytes needs large_file (revision 1)",
                          (unsigned long long)size);
    uint32_t v;
    int rc = ext2__sb_get(fs, SB_RO_COMPAT, 4, &v);
    if (rc == 0)
        rc = ext2__sb_put(fs, SB_RO_COMPAT, 4, v | RO_COMPAT_LARGE_FILE);
    if (rc == 0)
        fs->feat_ro_compat |= RO_COMPAT_LARGE_FILE;
    return rc;
}

/* ---- what a block may be ---------------------------------------------------------------- */

static bool is_power(uint32_t n, uint32_t base)
{
    while (n > 1 && n % base == 0)
        n /= base;
    return n == 1;
}

static uint32_t group_blocks(const ext2_fs_t *fs, uint32_t g)
{
    uint32_t left = fs->blocks_count - fs->first_data_block - g * fs->blocks_per_group;
    return left < fs->blocks_per_group ? left : fs->blocks_per_group;
}

/* Whether group g carries a copy of the superblock and descriptor table. */
static bool group_has_super(const ext2_fs_t *fs, uint32_t g)
{
    if (g <= 1 || !(fs->feat_ro_compat & RO_COMPAT_SPARSE_SUPER))
        return true;
    return is_power(g, 3) || is_power(g, 5) || is_power(g, 7);
}

int ext2__blk_check(ext2_fs_t *fs, uint32_t ino, uint32_t b, const char *what)
{
    char who[24] = "";
    if (ino)
        snprintf(who, sizeof who, "inode %u: ", ino);
    if (!ext2__blk_ok(fs, b))
        return ext2__fail(fs, OS_EIO, "%s%s: block %u outside the volume", who, what, b);
    uint32_t g = (b - fs->first_data_block) / fs->blocks_per_group;
    uint32_t rel = (b - fs->first_data_block) % fs->blocks_per_group;
    ext2__gd_t gd;
    int rc = ext2__group(fs, g, &gd);
    if (rc < 0)
        return rc;
    uint32_t it_blocks =
        (uint32_t)(((uint64_t)fs->inodes_per_group * fs->inode_size + fs->block_size - 1) /
                   fs->block_size);
    bool meta = b == gd.block_bitmap || b == gd.inode_bitmap ||
                (b >= gd.inode_table && b - gd.inode_table < it_blocks);
    if (!meta && group_has_super(fs, g)) {
        uint32_t resv = 0;
        if ((fs->feat_compat & COMPAT_RESIZE_INODE) &&
            (rc = ext2__sb_get(fs, SB_RESERVED_GDT, 2, &resv)) < 0)
            return rc;
        uint32_t gdt = (fs->groups * GD_SIZE + fs->block_size - 1) / fs->block_size;
        meta = rel < 1 + gdt + resv;
    }
    if (meta)
        return ext2__fail(fs, OS_EIO, "%s%s: block %u holds group %u's metadata", who, what, b, g);
    return 0;
}

/*
 * Without flex_bg a group's bitmaps and inode table lie inside the group, past its copy of
 * the superblock and descriptors, apart from each other: the write side relies on that to
 * tell metadata from data, so a volume where it does not hold is not written.
 */
static int layout_check(ext2_fs_t *fs)
{
    uint32_t resv = 0,
             it_blocks =
                 (uint32_t)(((uint64_t)fs->inodes_per_group * fs->inode_size + fs->block_size - 1) /
                            fs->block_size);
    uint32_t gdt = (fs->groups * GD_SIZE + fs->block_size - 1) / fs->block_size;
    int rc;
    if ((fs->feat_compat & COMPAT_RESIZE_INODE) &&
        (rc = ext2__sb_get(fs, SB_RESERVED_GDT, 2, &resv)) < 0)
        return rc;
    for (uint32_t g = 0; g < fs->groups; g++) {
        ext2__gd_t gd;
        if ((rc = ext2__group(fs, g, &gd)) < 0)
            return rc;
        uint32_t first = fs->first_data_block + g * fs->blocks_per_group;
        uint32_t lo = first + (group_has_super(fs, g) ? 1 + gdt + resv : 0);
        uint32_t end = first + group_blocks(fs, g);
        bool bad =
            gd.block_bitmap < lo || gd.block_bitmap >= end || gd.inode_bitmap < lo ||
            gd.inode_bitmap >= end || gd.inode_table < lo || gd.inode_table + it_blocks > end ||
            gd.block_bitmap == gd.inode_bitmap ||
            (gd.block_bitmap >= gd.inode_table && gd.block_bitmap < gd.inode_table + it_blocks) ||
            (gd.inode_bitmap >= gd.inode_table && gd.inode_bitmap < gd.inode_table + it_blocks);
        if (bad)
            return ext2__fail(fs, OS_EROFS,
                              "read-only: group %u's bitmaps or inode table (%u, %u, %u) are "
                              "not where ext2 puts them (run e2fsck)",
                              g, gd.block_bitmap, gd.inode_bitmap, gd.inode_table);
    }
    return 0;
}

/* ---- bitmaps ---------------------------------------------------------------------------- */

/* Find a clear bit in [from, nbits) of bitmap block bm, then (wrap) in [0, from). */
static int bit_find(ext2_fs_t *fs, uint32_t bm, uint32_t from, uint32_t nbits, bool wrap,
                    uint32_t *bit)
{
    uint8_t chunk[64];
    for (int pass = 0; pass < (wrap ? 2 : 1); pass++) {
        uint32_t lo = pass ? 0 : from, hi = pass ? from : nbits;
        for (uint32_t at = lo; at < hi;) {
            uint32_t byte = at / 8, n = (hi + 7) / 8 - byte;
            if (n > sizeof chunk)
                n = sizeof chunk;
            int rc = ext2__dev_read(fs, (uint64_t)bm * fs->block_size + byte, chunk, n, "bitmap");
            if (rc < 0)
                return rc;
            for (uint32_t i = at; i < hi && i < (byte + n) * 8; i++, at++)
                if (!(chunk[i / 8 - byte] & (1u << (i % 8)))) {
                    *bit = i;
                    return 1;
                }
        }
    }
    return 0;
}

/* Set (or clear) one bit; *was says whether it was set. */
static int bit_put(ext2_fs_t *fs, uint32_t bm, uint32_t bit, bool set, bool *was)
{
    uint64_t off = (uint64_t)bm * fs->block_size + bit / 8;
    uint8_t v;
    int rc = ext2__dev_read(fs, off, &v, 1, "bitmap");
    if (rc < 0)
        return rc;
    *was = (v >> (bit % 8)) & 1;
    v = (uint8_t)(set ? v | (1u << (bit % 8)) : v & ~(1u << (bit % 8)));
    return ext2__dev_write(fs, off, &v, 1, EXT2_W_META, "bitmap");
}

int ext2__balloc(ext2_fs_t *fs, uint32_t goal, uint32_t *out)
{
    if (goal < fs->first_data_block || goal >= fs->blocks_count)
        goal = fs->first_data_block + fs->hint_group_block % fs->groups * fs->blocks_per_group;
    uint32_t g0 = (goal - fs->first_data_block) / fs->blocks_per_group;
    for (uint32_t i = 0; i < fs->groups; i++) {
        uint32_t g = (g0 + i) % fs->groups;
        ext2__gd_t gd;
        int rc = ext2__group(fs, g, &gd);
        if (rc < 0)
            return rc;
        if (gd.free_blocks == 0)
            continue;
        uint32_t first = fs->first_data_block + g * fs->blocks_per_group, bit;
        uint32_t from = i == 0 ? goal - first : 0;
        rc = bit_find(fs, gd.block_bitmap, from, group_blocks(fs, g), true, &bit);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return ext2__fail(fs, OS_EIO, "group %u: %u free blocks counted, none in its bitmap", g,
                              gd.free_blocks);
        uint32_t b = first + bit;
        bool was;
        if ((rc = ext2__blk_check(fs, 0, b, "free block")) < 0 ||
            (rc = bit_put(fs, gd.block_bitmap, bit, true, &was)) < 0 ||
            (rc = gd_adjust(fs, g, -1, 0, 0)) < 0 || (rc = sb_adjust(fs, -1, 0)) < 0)
            return rc;
        fs->hint_group_block = g;
        *out = b;
        return 0;
    }
    return ext2__fail(fs, OS_EDISKFULL, "no free block in any group");
}

int ext2__bfree(ext2_fs_t *fs, uint32_t b)
{
    int rc = ext2__blk_check(fs, 0, b, "freeing");
    if (rc < 0)
        return rc;
    uint32_t g = (b - fs->first_data_block) / fs->blocks_per_group;
    ext2__gd_t gd;
    bool was;
    if ((rc = ext2__group(fs, g, &gd)) < 0 ||
        (rc = bit_put(fs, gd.block_bitmap, (b - fs->first_data_block) % fs->blocks_per_group, false,
                      &was)) < 0)
        return rc;
    if (!was)
        return ext2__fail(fs, OS_EIO, "block %u freed but already free in its bitmap", b);
    if ((rc = gd_adjust(fs, g, 1, 0, 0)) < 0)
        return rc;
    return sb_adjust(fs, 1, 0);
}

int ext2__ialloc(ext2_fs_t *fs, uint32_t parent, bool dir, uint32_t *ino)
{
    uint32_t pg = (parent - 1) / fs->inodes_per_group, best = UINT32_MAX;
    ext2__gd_t gd, bgd = {0};
    int rc;
    /* Directories spread over the groups; files stay near their parent. */
    for (uint32_t i = 0; i < fs->groups; i++) {
        uint32_t g = dir ? (fs->hint_group_inode + i) % fs->groups : (pg + i) % fs->groups;
        if ((rc = ext2__group(fs, g, &gd)) < 0)
            return rc;
        if (gd.free_inodes == 0)
            continue;
        if (!dir) {
            best = g;
            bgd = gd;
            break;
        }
        /* A group with free blocks first, then the fewest directories, then the most room. */
        bool room = gd.free_blocks > 0, broom = bgd.free_blocks > 0;
        if (best == UINT32_MAX || (room && !broom) ||
            (room == broom &&
             (gd.used_dirs < bgd.used_dirs ||
              (gd.used_dirs == bgd.used_dirs && gd.free_blocks > bgd.free_blocks)))) {
            best = g;
            bgd = gd;
        }
    }
    if (best == UINT32_MAX)
        return ext2__fail(fs, OS_EDISKFULL, "no free inode in any group");
    uint32_t first = best * fs->inodes_per_group + 1, bit;
    uint32_t from = fs->first_ino > first ? fs->first_ino - first : 0;
    if ((rc = bit_find(fs, bgd.inode_bitmap, from, fs->inodes_per_group, false, &bit)) < 0)
        return rc;
    if (rc == 0)
        return ext2__fail(fs, OS_EIO, "group %u: %u free inodes counted, none in its bitmap", best,
                          bgd.free_inodes);
    bool was;
    if ((rc = bit_put(fs, bgd.inode_bitmap, bit, true, &was)) < 0 ||
        (rc = gd_adjust(fs, best, 0, -1, dir ? 1 : 0)) < 0 || (rc = sb_adjust(fs, 0, -1)) < 0)
        return rc;
    if (dir)
        fs->hint_group_inode = best + 1;
    *ino = first + bit;
    return 0;
}

int ext2__ifree(ext2_fs_t *fs, uint32_t ino, bool dir)
{
    uint32_t g = (ino - 1) / fs->inodes_per_group;
    ext2__gd_t gd;
    bool was;
    int rc;
    if ((rc = ext2__group(fs, g, &gd)) < 0 ||
        (rc = bit_put(fs, gd.inode_bitmap, (ino - 1) % fs->inodes_per_group, false, &was)) < 0)
        return rc;
    if (!was)
        return ext2__fail(fs, OS_EIO, "inode %u freed but already free in its bitmap", ino);
    if ((rc = gd_adjust(fs, g, 0, 1, dir ? -1 : 0)) < 0)
        return rc;
    return sb_adjust(fs, 0, 1);
}

/* ---- inodes ----------------------------------------------------------------------------- */

int ext2__wi_load(ext2_fs_t *fs, uint32_t ino, ext2__wino_t *wi, bool unlinked)
{
    int rc = ext2__inode_off(fs, ino, &wi->off);
    if (rc < 0)
        return rc;
    if ((rc = ext2__dev_read(fs, wi->off, wi->raw, sizeof wi->raw, "inode")) < 0)
        return rc;
    return ext2__decode(fs, ino, wi->raw, unlinked, &wi->in);
}

int ext2__wi_store(ext2_fs_t *fs, ext2__wino_t *wi)
{
    const ext2_inode_t *in = &wi->in;
    uint8_t *r = wi->raw;
    put16(r + 0, in->mode);
    put32(r + 4, (uint32_t)in->size);
    put32(r + 8, in->atime);
    put32(r + 12, in->ctime);
    put32(r + 16, in->mtime);
    put16(r + 26, in->links);
    put32(r + 28, in->sectors);
    put32(r + 32, in->flags);
    for (int i = 0; i < EXT2_N_BLOCKS; i++)
        put32(r + 40 + 4 * i, in->block[i]);
    put32(r + 104, in->file_acl);
    if (ext2_type(in) == EXT2_T_REG)
        put32(r + 108, (uint32_t)(in->size >> 32));
    return ext2__dev_write(fs, wi->off, r, sizeof wi->raw, EXT2_W_META, "inode");
}

/* ---- mount, unmount, statfs ------------------------------------------------------------- */

/* Compatible features whose meaning the write side keeps (others may move metadata). */
#define COMPAT_WRITABLE (0x1 | 0x2 | 0x8 | COMPAT_RESIZE_INODE | 0x20)
/* The descriptor blocks one call may read while it looks for a group with room. */
#define GDT_BLOCKS_MAX 32

int ext2_mount_rw(ext2_fs_t *fs, ext2_write_fn write)
{
    fs->why[0] = '\0';
    if (fs->ro_note[0])
        return ext2__fail(fs, OS_EROFS, "%s", fs->ro_note);
    if (fs->feat_incompat & INCOMPAT_FLEX_BG)
        return ext2__fail(fs, OS_EROFS, "read-only: flex_bg volumes are not written");
    if (fs->feat_compat & ~(uint32_t)COMPAT_WRITABLE)
        return ext2__fail(fs, OS_EROFS, "read-only: unknown compatible features 0x%x",
                          fs->feat_compat & ~(uint32_t)COMPAT_WRITABLE);
    uint32_t gdt = (fs->groups * GD_SIZE + fs->block_size - 1) / fs->block_size;
    if (gdt > GDT_BLOCKS_MAX)
        return ext2__fail(fs, OS_EROFS, "read-only: %u groups (the write side takes at most %u)",
                          fs->groups, GDT_BLOCKS_MAX * fs->block_size / GD_SIZE);
    uint32_t state, count;
    int rc = layout_check(fs);
    if (rc < 0 || (rc = ext2__sb_get(fs, SB_STATE, 2, &state)) < 0)
        return rc;
    if (state & 2)
        return ext2__fail(fs, OS_EROFS, "read-only: the volume has errors recorded (run e2fsck)");
    fs->write = write;
    fs->hint_group_block = fs->hint_group_inode = 0;
    if ((rc = ext2__sb_get(fs, SB_MNT_COUNT, 2, &count)) < 0 ||
        (rc = ext2__sb_put(fs, SB_STATE, 2, state & ~1u)) < 0 ||
        (rc = ext2__sb_put(fs, SB_MNT_COUNT, 2, (count + 1) & 0xffff)) < 0 ||
        (rc = ext2__sb_put(fs, SB_MTIME, 4, fs->now)) < 0) {
        fs->write = NULL;
        return rc;
    }
    return 0;
}

int ext2_unmount(ext2_fs_t *fs)
{
    int rc = ext2__wbegin(fs);
    uint32_t state;
    if (rc == 0 && (rc = ext2__sb_get(fs, SB_STATE, 2, &state)) == 0 &&
        (rc = ext2__sb_put(fs, SB_STATE, 2, state | 1u)) == 0)
        rc = ext2__sb_put(fs, SB_WTIME, 4, fs->now);
    return ext2__wend(fs, rc);
}

int ext2_statfs(ext2_fs_t *fs, ext2_statfs_t *out)
{
    uint8_t b[20];
    fs->why[0] = '\0';
    int rc = ext2__dev_read(fs, SB_OFFSET, b, sizeof b, "superblock");
    if (rc < 0)
        return rc;
    uint32_t resv = le32(b + 8), free_b = le32(b + 12);
    *out = (ext2_statfs_t){.block_size = fs->block_size,
                           .blocks = fs->blocks_count,
                           .free_blocks = free_b > resv ? free_b - resv : 0,
                           .inodes = fs->inodes_count,
                           .free_inodes = le32(b + 16)};
    return 0;
}
