/* ext2.h — a read-only ext2 reader as a pure library over a byte-reading callback (no os calls). */
#ifndef EXT2_H
#define EXT2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every structure read from the device is checked before it is used: a corrupt image gives
 * OS_EIO or OS_EINVAL and a one-line reason (ext2_why) naming the inode or block, never a
 * crash, an out-of-bounds access or an endless loop. The library allocates nothing: all its
 * state is the caller's ext2_fs_t. It is not thread-safe (one scratch block per ext2_fs_t).
 */

#define EXT2_ROOT_INO 2
#define EXT2_BLOCK_MAX 4096       /* largest block size mounted (1024, 2048, 4096 accepted) */
#define EXT2_NAME_MAX 255         /* longest directory entry name */
#define EXT2_PATH_MAX 1024        /* longest path given or built while following symlinks */
#define EXT2_SYMLINK_MAX 8        /* symlinks followed in one path lookup */
#define EXT2_DIR_MAX (128u << 20) /* largest directory read, in bytes */
#define EXT2_WHY_MAX 160          /* length of a reason string, with its NUL */
#define EXT2_N_BLOCKS 15          /* 12 direct, single, double, triple indirect */

/*
 * Read `len` bytes at byte offset `off` of the device into buf: 0 or a negative os code.
 * OS_EBUSY means "not available yet": the library stops and returns OS_EBUSY from the call
 * in progress, which the caller runs again, whole, once it has the bytes (every operation
 * only reads, so a re-run is safe). Any other error becomes OS_EIO.
 */
typedef int (*ext2_read_fn)(void *arg, uint64_t off, void *buf, size_t len);

/* File types, as in an inode's mode (mode >> 12). */
enum {
    EXT2_T_FIFO = 1,
    EXT2_T_CHR = 2,
    EXT2_T_DIR = 4,
    EXT2_T_BLK = 6,
    EXT2_T_REG = 8,
    EXT2_T_LNK = 10,
    EXT2_T_SOCK = 12,
};

/* An inode, decoded and checked. */
typedef struct ext2_inode {
    uint32_t ino;
    uint16_t mode; /* type (mode >> 12, EXT2_T_*) and permission bits */
    uint16_t links;
    uint32_t uid, gid;
    uint64_t size; /* bytes */
    uint32_t atime, mtime, ctime;
    uint32_t sectors;              /* i_blocks: 512-byte units allocated, metadata included */
    uint32_t flags;                /* i_flags */
    uint32_t file_acl;             /* extended attribute block, 0 if none */
    uint32_t block[EXT2_N_BLOCKS]; /* block map (or a fast symlink's target) */
} ext2_inode_t;

/* One directory entry. */
typedef struct ext2_dirent {
    uint32_t ino;
    uint8_t type; /* EXT2_T_* from the entry's file-type byte, 0 if the volume has none */
    uint8_t name_len;
    char name[EXT2_NAME_MAX + 1]; /* NUL-terminated */
} ext2_dirent_t;

/*
 * The write side. Write `len` bytes at byte offset `off` of the device; `kind` is EXT2_W_DATA
 * for a file's contents and EXT2_W_META for every other structure (bitmaps, indirect blocks,
 * inode table, directories, group descriptors, superblock), so a caller that writes back
 * later can put data first. 0, or a negative os code: OS_EBUSY as for reads (the caller
 * needs the block around these bytes first). A call that returns OS_EBUSY may already have
 * written: the caller undoes every write of that call, restores its ext2_fs_t as it was
 * before the call (a copy), and runs the call again once it has the bytes. Every write
 * call below touches at most EXT2_CALL_BLOCKS_MAX distinct blocks, so a cache of that many
 * blocks can always hold one call's working set.
 */
typedef int (*ext2_write_fn)(void *arg, uint64_t off, const void *buf, size_t len, int kind);

enum {
    EXT2_W_DATA = 0,
    EXT2_W_META = 1,
    EXT2_CALL_BLOCKS_MAX = 96, /* distinct blocks read or written by one write-side call */
    EXT2_FREE_STEP = 32,       /* data blocks freed by one ext2_truncate call at most */
    EXT2_DIR_GROW_MAX = 32,    /* blocks a directory may grow to by ext2_create/rename */
};

/* Counts for df. */
typedef struct ext2_statfs {
    uint32_t block_size;
    uint32_t blocks, free_blocks; /* free_blocks: what a non-root user may still allocate */
    uint32_t inodes, free_inodes;
} ext2_statfs_t;

/* A mounted volume: geometry from the checked superblock, plus the library's scratch. */
typedef struct ext2_fs {
    /* The device, from ext2_mount. */
    ext2_read_fn read;
    void *arg;
    uint64_t dev_size; /* bytes */

    /* Geometry, checked at mount. */
    uint32_t rev;        /* 0 or 1 */
    uint32_t block_size; /* 1024, 2048 or 4096 */
    uint32_t inode_size;
    uint32_t inodes_count, blocks_count;
    uint32_t inodes_per_group, blocks_per_group, groups;
    uint32_t first_data_block;
    uint32_t first_ino; /* first non-reserved inode */
    uint32_t feat_compat, feat_incompat, feat_ro_compat;
    uint32_t ptrs;      /* block numbers in one indirect block: block_size / 4 */
    uint32_t gdt_block; /* first block of the group descriptor table */

    /* The write side: NULL until ext2_mount_rw. */
    ext2_write_fn write;
    /* Seconds stamped into mtime/ctime/atime by the write side; the caller sets it. */
    uint32_t now;
    /* Allocation hints (any value is safe; a call may leave them changed after OS_EBUSY). */
    uint32_t hint_group_block, hint_group_inode;

    /* Why the volume could only be mounted read-only ("" if for no special reason). */
    char ro_note[EXT2_WHY_MAX];
    /* The reason for the last error, one line. */
    char why[EXT2_WHY_MAX];

    /* Scratch: one block of a directory, and its physical number (0: nothing held). */
    uint32_t scratch_blk;
    uint8_t scratch[EXT2_BLOCK_MAX];
    /* Path buffers for symlink expansion. */
    char path[2][EXT2_PATH_MAX + 1];

    /* The distinct blocks the write-side call in progress has read or written (track set). */
    bool track;
    uint32_t touched_n;
    uint32_t touched[EXT2_CALL_BLOCKS_MAX];
} ext2_fs_t;

/*
 * Read and check the superblock and every group descriptor of a device of `dev_size` bytes.
 * 0; OS_EINVAL (not ext2, or a check failed), OS_ENOTSUP (an incompatible feature the library
 * does not know: ext2_why names it), OS_EIO (the device read failed or the root is corrupt).
 * Features that only forbid writing leave the volume mounted with ro_note saying which.
 */
int ext2_mount(ext2_fs_t *fs, ext2_read_fn read, void *arg, uint64_t dev_size);

/* The reason for the last error returned on fs (never NULL). */
const char *ext2_why(const ext2_fs_t *fs);

/* Read and check inode `ino`. 0, OS_EINVAL (number out of range), OS_EIO (corrupt). */
int ext2_iget(ext2_fs_t *fs, uint32_t ino, ext2_inode_t *out);

/* The inode's file type, EXT2_T_*. */
static inline unsigned ext2_type(const ext2_inode_t *in)
{
    return in->mode >> 12;
}

/*
 * The physical block of logical block `lblk` of inode `in` (0 for a hole).
 * 0, OS_EIO (a pointer out of the volume, or lblk past the block map).
 */
int ext2_bmap(ext2_fs_t *fs, const ext2_inode_t *in, uint64_t lblk, uint32_t *pblk);

/*
 * Read up to `len` bytes at byte `off` of a regular file, directory or symlink; holes read as
 * zeros. *got is the bytes read: fewer than len only at end of file, 0 at or past it.
 */
int ext2_read(ext2_fs_t *fs, const ext2_inode_t *in, uint64_t off, void *buf, size_t len,
              size_t *got);

/*
 * Directory iteration: *pos starts at 0. Gives the next used entry and advances *pos:
 * 1 (an entry in *out), 0 (end), or a negative code (OS_EINVAL: not a directory; OS_EIO: a
 * corrupt entry or block). Every entry is checked (rec_len, name_len, alignment, bounds).
 */
int ext2_dir_next(ext2_fs_t *fs, const ext2_inode_t *dir, uint64_t *pos, ext2_dirent_t *out);

/* Look up one name in a directory. 0 and *ino, OS_ENOENT, OS_EINVAL, OS_EIO. */
int ext2_dir_lookup(ext2_fs_t *fs, const ext2_inode_t *dir, const char *name, size_t len,
                    uint32_t *ino);

/*
 * Resolve a path from the root ('/'-separated, leading '/' optional, empty parts skipped).
 * Symlinks inside the path are followed; the last one too if `follow`. At most
 * EXT2_SYMLINK_MAX symlinks. 0 and *out; OS_ENOENT (a name is missing), OS_EINVAL (not a
 * directory, name or path too long, too many symlinks), OS_EIO (corrupt).
 */
int ext2_lookup(ext2_fs_t *fs, const char *path, bool follow, ext2_inode_t *out);

/* A symlink's target into buf (NUL-terminated, at most cap-1 bytes). 0, OS_EINVAL, OS_EIO. */
int ext2_readlink(ext2_fs_t *fs, const ext2_inode_t *in, char *buf, size_t cap);

/* ---- the write side ------------------------------------------------------------------------
 *
 * Every call below takes an ext2_fs_t made writable by ext2_mount_rw and keeps the volume's
 * accounting right: block and inode bitmaps, the group descriptors' free and directory
 * counts, the superblock's free counts, i_blocks (sectors, indirect blocks included), links,
 * sizes and times. Names are one component (no '/', 1..255 bytes, not "." or ".."). Errors:
 * OS_EROFS (not mounted writable), OS_EINVAL (a bad name or argument), OS_ENAMETOOLONG,
 * OS_ENOENT, OS_EEXIST, OS_ENOTDIR, OS_EISDIR, OS_ENOTEMPTY, OS_EDISKFULL (no free block or
 * inode: nothing was changed), OS_ENOSPC (a directory at EXT2_DIR_GROW_MAX blocks, or 32000
 * links), OS_ENOTSUP (the call would need more than EXT2_CALL_BLOCKS_MAX blocks, as in a
 * huge directory made elsewhere: nothing was changed), OS_EIO (a corrupt structure met;
 * ext2_why says which), OS_EBUSY (see ext2_write_fn). Outputs mean something only on success.
 */

/*
 * Make a mounted volume writable: OS_EROFS (with ext2_why) if ro_note is set, the volume uses
 * flex_bg or an unknown compatible feature, has over 32 descriptor blocks, a group's bitmaps
 * or inode table out of place, or errors recorded; else marks the superblock not-clean
 * (s_state), counts the mount and stamps s_mtime.
 */
int ext2_mount_rw(ext2_fs_t *fs, ext2_write_fn write);

/* Mark the superblock clean again (s_state valid, s_wtime = now). The volume stays mounted. */
int ext2_unmount(ext2_fs_t *fs);

/* Counts for df, from the superblock. */
int ext2_statfs(ext2_fs_t *fs, ext2_statfs_t *out);

/*
 * Create `name` in directory `dir`: mode is the type and permission bits (EXT2_T_REG << 12,
 * EXT2_T_DIR << 12 for a directory with "." and "..", EXT2_T_LNK << 12 for a symlink whose
 * text is `target`, a fast symlink under 60 bytes). *ino is the new inode (may be NULL).
 */
int ext2_create(ext2_fs_t *fs, uint32_t dir, const char *name, size_t len, uint16_t mode,
                const char *target, uint32_t *ino);

/*
 * Remove `name` from directory `dir` and drop one link of its inode; `want_dir` says rmdir
 * (OS_ENOTDIR if it is not a directory, OS_ENOTEMPTY if it holds more than . and ..) or
 * unlink (OS_EISDIR on a directory). *ino is the inode; *gone says its links reached 0, and
 * then the caller frees it with ext2_truncate to 0 and ext2_release (now, or when its last
 * open file closes).
 */
int ext2_remove(ext2_fs_t *fs, uint32_t dir, const char *name, size_t len, bool want_dir,
                uint32_t *ino, bool *gone);

/*
 * Move `from_name` of `from_dir` to `to_name` of `to_dir`. An existing `to_name` is replaced
 * when the types agree (a directory only by an empty directory), and then *replaced is its
 * inode and *gone whether its links reached 0 (as for ext2_remove); *replaced is 0 otherwise.
 * OS_EINVAL to move a directory under itself. A moved directory's ".." and the link counts
 * of both parents follow.
 */
int ext2_rename(ext2_fs_t *fs, uint32_t from_dir, const char *from_name, size_t from_len,
                uint32_t to_dir, const char *to_name, size_t to_len, uint32_t *replaced,
                bool *gone);

/*
 * Write len bytes at byte off of regular file `ino` (linked or not), allocating blocks (and
 * indirect blocks up to the triple level) as needed; a gap before off stays a hole. len is at most
 * 4096. Grows the size; sets mtime and ctime. OS_EDISKFULL leaves the file as it was.
 */
int ext2_write(ext2_fs_t *fs, uint32_t ino, uint64_t off, const void *buf, size_t len);

/*
 * Set the size of regular file (or symlink, or removed directory, to 0 only) `ino`, linked
 * or not: growing leaves a hole; cutting
 * frees the blocks past the new end, at most EXT2_FREE_STEP data blocks per call: *more says
 * to call again (each call is complete and consistent on its own).
 */
int ext2_truncate(ext2_fs_t *fs, uint32_t ino, uint64_t size, bool *more);

/* Free inode `ino`, whose links are 0 and which holds no block any more (after truncate). */
int ext2_release(ext2_fs_t *fs, uint32_t ino);

#endif
