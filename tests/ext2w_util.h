/* ext2w_util.h — what the ext2 write-side tests share: disks in memory, mke2fs, e2fsck, debugfs. */
#ifndef EXT2W_UTIL_H
#define EXT2W_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <os/errno.h>

#include "../servers/fs/ext2.h"

/* Volume shapes: block size, revision, features. */
enum { NCONF = 5 };
extern const char *const conf_name[NCONF];

/* One write of a call, for undoing it. */
typedef struct {
    uint64_t off;
    size_t len;
    uint8_t *old;
} undo_t;

/* A disk in memory, with the fs mounted on it. */
typedef struct {
    uint8_t *data;
    size_t size;
    int conf;
    ext2_fs_t *fs;
    /* OS_EBUSY injection: the callback call that answers OS_EBUSY (-1: none), counted down. */
    long busy_in;
    /* The writes of the call in progress, when logging. */
    bool logging;
    undo_t *log;
    size_t nlog, caplog;
    /* Distinct blocks one call touched, most seen (the test's own count). */
    uint32_t call_blocks[EXT2_CALL_BLOCKS_MAX * 4];
    size_t ncall_blocks, max_call_blocks;
    unsigned long reads, writes;
    unsigned long data_whole, data_part; /* EXT2_W_DATA writes of whole blocks, of less */
} disk_t;

int suite_setup(void **state);
int suite_teardown(void **state);

/* The suite's temporary folder (mkdtemp; removed at the end). */
const char *suite_dir(void);
/* Deterministic bytes. */
void fill(uint8_t *p, size_t n, uint32_t seed);
/* Run a shell command; abort the test on failure. */
void sh(const char *fmt, ...);

/* A fresh volume of `mb` MiB in configuration c (mke2fs), extra mke2fs options. */
disk_t *disk_make_opts(int c, int mb, const char *extra);
disk_t *disk_make(int c, int mb);
/* Mount d read-write (the fs lives in d). */
ext2_fs_t *mount_rw(disk_t *d);
void disk_free(disk_t *d, ext2_fs_t *fs);
/* Save the image to a file under the suite's folder; the path. */
const char *disk_save(disk_t *d, const char *name);

int disk_read(void *arg, uint64_t off, void *buf, size_t len);
int disk_write(void *arg, uint64_t off, const void *buf, size_t len, int kind);
/* Start a call's count of distinct blocks (checked against EXT2_CALL_BLOCKS_MAX at writes). */
void disk_call_start(disk_t *d);

/* Library calls that must succeed (the reason printed if not). */
uint32_t mk(ext2_fs_t *fs, uint32_t dir, const char *name, uint16_t mode, const char *target);
void wr(ext2_fs_t *fs, uint32_t ino, uint64_t off, const void *buf, size_t len);
/* Truncate to size in as many steps as it takes (e2fsck between steps when d); the steps. */
int trunc_all(ext2_fs_t *fs, uint32_t ino, uint64_t size, disk_t *d);
/* Free an unlinked inode: truncate to 0 in steps, then release. */
int free_inode(ext2_fs_t *fs, uint32_t ino);
/* The file at path (symlinks followed) holds exactly want[0..n). */
void expect_file(ext2_fs_t *fs, const char *path, const uint8_t *want, size_t n);

/* Unmount (clean), save, run `e2fsck -fn`: it must find nothing. */
void fsck_ok(disk_t *d, const char *label);
/* debugfs reads the same bytes from path. */
void debugfs_cat(disk_t *d, const char *path, const uint8_t *want, size_t n);
/* debugfs's `stat` of path, into buf. */
void debugfs_stat(disk_t *d, const char *path, char *buf, size_t cap);

/* The call failed with `want`, ext2_why holds `says`, the image equals snap (if given). */
void refused(disk_t *d, int rc, int want, const char *says, const uint8_t *snap);

#endif
