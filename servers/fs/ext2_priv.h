/* ext2_priv.h — what the ext2 library's read side (ext2.c) and write side (ext2_w*.c) share. */
#ifndef EXT2_PRIV_H
#define EXT2_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ext2.h"

#define EXT2_MAGIC 0xEF53
#define SB_OFFSET 1024
#define SB_SIZE 1024
#define GD_SIZE 32
#define INODE_BASE 128 /* the part of an inode this library reads and writes */
#define EXT2_INDEX_FL 0x1000

/* Superblock fields (byte offsets) the write side reads or changes. */
#define SB_R_BLOCKS 8
#define SB_FREE_BLOCKS 12
#define SB_FREE_INODES 16
#define SB_MTIME 44
#define SB_WTIME 48
#define SB_MNT_COUNT 52
#define SB_STATE 58
#define SB_RO_COMPAT 100
#define SB_RESERVED_GDT 206

#define COMPAT_HAS_JOURNAL 0x4
#define COMPAT_RESIZE_INODE 0x10
#define INCOMPAT_FILETYPE 0x2
#define INCOMPAT_FLEX_BG 0x200
#define RO_COMPAT_SPARSE_SUPER 0x1
#define RO_COMPAT_LARGE_FILE 0x2

/* A group descriptor, as read and checked by ext2__group. */
typedef struct {
    uint32_t block_bitmap, inode_bitmap, inode_table;
    uint16_t free_blocks, free_inodes, used_dirs;
} ext2__gd_t;

static inline uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A block a pointer may name: past the superblock's block, inside the volume. */
static inline bool ext2__blk_ok(const ext2_fs_t *fs, uint32_t b)
{
    return b > fs->first_data_block && b < fs->blocks_count;
}

/* Set fs->why from a format and return err. */
int ext2__fail(ext2_fs_t *fs, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Read device bytes (bounds, OS_EBUSY and the per-call block count handled). */
int ext2__dev_read(ext2_fs_t *fs, uint64_t off, void *buf, size_t len, const char *what);

/*
 * Count the blocks of [off, off+len) among the distinct blocks of the write-side call in
 * progress (nothing outside one): OS_ENOTSUP once a call would pass EXT2_CALL_BLOCKS_MAX.
 */
int ext2__touch(ext2_fs_t *fs, uint64_t off, size_t len);

/* Group g's descriptor, checked (bitmaps and inode table inside the volume, free counts). */
int ext2__group(ext2_fs_t *fs, uint32_t g, ext2__gd_t *gd);

/* Decode and check a raw inode; `unlinked` accepts links == 0 (an inode being freed). */
int ext2__decode(ext2_fs_t *fs, uint32_t ino, const uint8_t *raw, bool unlinked, ext2_inode_t *out);

/* The byte offset of inode ino on the device. */
int ext2__inode_off(ext2_fs_t *fs, uint32_t ino, uint64_t *off);

/* The largest logical block count the block map can address. */
static inline uint64_t ext2__map_blocks(const ext2_fs_t *fs)
{
    uint64_t p = fs->ptrs;
    return 12 + p + p * p + p * p * p;
}

/* A fast symlink keeps its target in i_block: it owns no block but its xattr block. */
static inline bool ext2__fast_symlink(const ext2_fs_t *fs, const ext2_inode_t *in)
{
    uint32_t acl = in->file_acl ? fs->block_size / 512 : 0;
    return (in->mode >> 12) == EXT2_T_LNK && in->sectors == acl && in->size < 60;
}

/* Load physical directory block pblk into fs->scratch (kept while scratch_blk says so). */
int ext2__scratch_load(ext2_fs_t *fs, uint32_t pblk);

/* ---- the write side's own parts (ext2_write.c, ext2_wmap.c, ext2_wdir.c) ---- */

/* An inode being changed: decoded, its raw bytes (fields not decoded kept) and its place. */
typedef struct {
    ext2_inode_t in;
    uint8_t raw[INODE_BASE];
    uint64_t off;
} ext2__wino_t;

extern const uint8_t ext2__zeros[EXT2_BLOCK_MAX];

/* Start a write-side call (OS_EROFS unless writable; the block count starts at 0) and end it. */
int ext2__wbegin(ext2_fs_t *fs);
int ext2__wend(ext2_fs_t *fs, int rc);

/*
 * OS_ENOTSUP unless the call has room left for its writing part (which reads the descriptor
 * table and a few blocks more): checked before the first write, so a call that would pass
 * EXT2_CALL_BLOCKS_MAX stops before it changed anything.
 */
int ext2__room(ext2_fs_t *fs);

/* Write device bytes: inside the volume, never below the superblock, counted, scratch kept. */
int ext2__dev_write(ext2_fs_t *fs, uint64_t off, const void *buf, size_t len, int kind,
                    const char *what);

/* A superblock field of 2 or 4 bytes. */
int ext2__sb_get(ext2_fs_t *fs, uint32_t field, uint32_t size, uint32_t *v);
int ext2__sb_put(ext2_fs_t *fs, uint32_t field, uint32_t size, uint32_t v);

/* OS_EDISKFULL unless `blocks` blocks (past the reserve) and `inodes` inodes are free. */
int ext2__space(ext2_fs_t *fs, uint32_t blocks, uint32_t inodes);

/* A size over 2^31-1: sets large_file (revision 1) or OS_EINVAL (revision 0). */
int ext2__large_file(ext2_fs_t *fs, uint64_t size);

/* OS_EIO unless block b is inside the volume and none of its group's metadata (ino: whose). */
int ext2__blk_check(ext2_fs_t *fs, uint32_t ino, uint32_t b, const char *what);

/* Allocate a block near `goal` (bitmap, group and superblock counts); free one. */
int ext2__balloc(ext2_fs_t *fs, uint32_t goal, uint32_t *out);
int ext2__bfree(ext2_fs_t *fs, uint32_t b);

/* Allocate an inode (a directory in a group with few of them, a file near its parent). */
int ext2__ialloc(ext2_fs_t *fs, uint32_t parent, bool dir, uint32_t *ino);
int ext2__ifree(ext2_fs_t *fs, uint32_t ino, bool dir);

/* Load an inode to change it (`unlinked`: links 0 allowed); store it back. */
int ext2__wi_load(ext2_fs_t *fs, uint32_t ino, ext2__wino_t *wi, bool unlinked);
int ext2__wi_store(ext2_fs_t *fs, ext2__wino_t *wi);

/* Most logical blocks one ext2__map_ensure call maps (a 4096-byte write on 1 KiB blocks). */
#define EXT2__SPAN_MAX 5

/*
 * Map logical blocks first..last of wi (at most EXT2__SPAN_MAX), allocating the missing data
 * and indirect blocks (indirect ones zeroed) after checking there is room for all of them
 * (OS_EDISKFULL, nothing changed). pblk[i] is block first+i; fresh[i] says it is new (its
 * contents are the caller's to write). wi->in.block and sectors change in memory only.
 */
int ext2__map_ensure(ext2_fs_t *fs, ext2__wino_t *wi, uint64_t first, uint64_t last, uint32_t *pblk,
                     bool *fresh);

/* The blocks (data and indirect) mapping logical block lblk would allocate. */
int ext2__map_need(ext2_fs_t *fs, const ext2_inode_t *in, uint64_t lblk, uint32_t *need);

#endif
