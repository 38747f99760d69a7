/* fs.h — the fs interface (draft): open a path to a per-file channel; read, stat, readdir. */
#ifndef IFACE_FS_H
#define IFACE_FS_H

#include <iface/iface.h>

/*
 * Two kinds of channel carry this interface (each is tagged with it, so traces decode all).
 * Every request carries a request id chosen by the client; its answer carries it back, and
 * any request may be answered `reply {req, status}` instead (status 0 only for write).
 *
 * The control channel (from init's connect):
 *   open {req, flags, path} -> opened {req, ino, type, size, chan}: a file channel for the
 *       path, resolved from the root ('/'-separated, symlinks followed, the last one too
 *       unless FS_O_NOFOLLOW). Directories open too (for readdir). Errors: OS_ENOENT (a name is
 *       missing), OS_EINVAL (a non-directory on the way, a name over 255 bytes, more than 8
 *       symlinks, unknown flags), OS_EACCES (FS_O_WRITE on a read-only volume: every volume
 *       for now), OS_EIO (a corrupt structure or a failed device read), OS_ENOSPC (the
 *       server's table of open files is full).
 *
 * A file channel, client -> server:
 *   read {req, off, len}  -> data {req, data}: up to min(len, FS_DATA_MAX) bytes at byte off;
 *       fewer only at end of file, none at or past it; holes read as zeros. OS_EINVAL on a
 *       directory.
 *   write {req, off, data} -> reply {req, status}: OS_EACCES while there is no write side.
 *   stat {req}             -> attr {req, ino, mode, links, uid, gid, size, mtime}.
 *   readdir {req, cookie}  -> dirents {req, next, count, data}: cookie 0 starts; `count`
 *       records packed in data, each {u32 ino, u8 type, u8 name_len, name} (little-endian,
 *       no padding, type FS_T_* or 0 if the volume does not record it); pass `next` back for
 *       the following page; count 0 is the end. OS_EINVAL on a non-directory.
 *   Closing the channel closes the file.
 * Server -> client, either channel: error {type, status}: a malformed or unexpected message of
 *   that type (OS_EPROTO); the channel goes on.
 */
enum {
    FS_PATH_MAX = 1024,    /* bytes of a path, as open's str limit */
    FS_DATA_MAX = 4084,    /* bytes in one data or write message */
    FS_DIRENTS_MAX = 4076, /* bytes of packed records in one dirents message */
    FS_O_READ = 1,
    FS_O_WRITE = 2,
    FS_O_NOFOLLOW = 4,
    /* File types, as mode >> 12. */
    FS_T_FIFO = 1,
    FS_T_CHR = 2,
    FS_T_DIR = 4,
    FS_T_BLK = 6,
    FS_T_REG = 8,
    FS_T_LNK = 10,
    FS_T_SOCK = 12,
};

#define FS_MESSAGES(MSG)                                                                           \
    MSG(fs, open, 1, (u32, req, 0), (u32, flags, 0), (str, path, 1024))                            \
    MSG(fs, opened, 2, (u32, req, 0), (u32, ino, 0), (u8, type, 0), (u64, size, 0),                \
        (handle, chan, 0))                                                                         \
    MSG(fs, reply, 3, (u32, req, 0), (i32, status, 0))                                             \
    MSG(fs, read, 4, (u32, req, 0), (u64, off, 0), (u32, len, 0))                                  \
    MSG(fs, data, 5, (u32, req, 0), (bytes, data, 4084))                                           \
    MSG(fs, write, 6, (u32, req, 0), (u64, off, 0), (bytes, data, 4076))                           \
    MSG(fs, stat, 7, (u32, req, 0))                                                                \
    MSG(fs, attr, 8, (u32, req, 0), (u32, ino, 0), (u16, mode, 0), (u16, links, 0), (u32, uid, 0), \
        (u32, gid, 0), (u64, size, 0), (u32, mtime, 0))                                            \
    MSG(fs, readdir, 9, (u32, req, 0), (u64, cookie, 0))                                           \
    MSG(fs, dirents, 10, (u32, req, 0), (u64, next, 0), (u16, count, 0), (bytes, data, 4076))      \
    MSG(fs, error, 11, (u32, type, 0), (i32, status, 0))

IFACE_DECLARE(fs, FS_MESSAGES)

#endif
