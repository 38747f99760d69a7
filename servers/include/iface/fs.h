/* fs.h — the fs interface: open a path to a per-file channel; read, write, stat, readdir. */
#ifndef IFACE_FS_H
#define IFACE_FS_H

#include <iface/iface.h>

/*
 * Two kinds of channel carry this interface (each is tagged with it, so traces decode all).
 * Every request carries a request id chosen by the client; its answer carries it back, and
 * any request may be answered `reply {req, status}` instead: status 0 for success where the
 * request has no answer of its own, else a negative OS_E* code.
 *
 * A client reaches the server through init's connect "fs". The manifest grants it read-write
 * (`reach=fs`) or read-only (`reach=fs:ro`): init names the client "fs:ro" in new_client and
 * the server refuses every change from it with OS_EACCES. A read-only volume (the disk is
 * read-only, or it carries a feature the server only reads) refuses changes with OS_EROFS.
 *
 * Paths are '/'-separated from the root, a leading '/' optional, empty parts and "." skipped,
 * ".." the parent; at most FS_PATH_MAX bytes, names at most FS_NAME_MAX. Symlinks on the way
 * are followed (at most 8 in one lookup); the last name too unless FS_O_NOFOLLOW.
 *
 * The control channel:
 *   open {req, flags, mode, path} -> opened {req, ino, type, size, chan}: a file channel.
 *       flags: FS_O_READ, FS_O_WRITE (a channel that may write, truncate), FS_O_NOFOLLOW,
 *       FS_O_CREAT (create a regular file with permission bits `mode` & 07777 if the name is
 *       missing), FS_O_EXCL (with CREAT: OS_EEXIST if it exists), FS_O_TRUNC (with WRITE:
 *       size 0), FS_O_APPEND (with WRITE: every write goes at the end of the file).
 *       Directories open for reading only (OS_EISDIR with FS_O_WRITE); a symlink opened with
 *       FS_O_NOFOLLOW reads as its target text.
 *       Errors: OS_ENOENT, OS_ENOTDIR (a non-directory on the way), OS_ENAMETOOLONG,
 *       OS_EINVAL (unknown flags, too many symlinks, an empty name to create), OS_EEXIST,
 *       OS_EISDIR, OS_EACCES, OS_EROFS, OS_EIO (a corrupt structure or a failed device
 *       request: the server logs which), OS_EDISKFULL, OS_ENOSPC (the server's table of open
 *       files is full).
 *   mkdir {req, mode, path}          -> reply: OS_EEXIST, OS_ENOENT (no parent), ...
 *   unlink {req, path}               -> reply: a name that is not a directory (the last
 *       symlink itself, never followed); OS_EISDIR on a directory. An open file stays
 *       readable through its channels until the last one closes, then its blocks are freed.
 *   rmdir {req, path}                -> reply: OS_ENOTEMPTY, OS_ENOTDIR, OS_EBUSY (the root).
 *   rename {req, from, to}           -> reply: moves a name, replacing `to` when it is a file
 *       (or an empty directory, when `from` is one); OS_EINVAL to move a directory into
 *       itself; OS_EISDIR / OS_ENOTDIR on a type mismatch with an existing `to`.
 *   symlink {req, target, path}      -> reply: a symlink at path whose text is target.
 *   statfs {req}                     -> fsinfo.
 *   sync {req}                       -> reply once everything changed before it is on the
 *       disk and the device has flushed.
 *
 * A file channel, client -> server:
 *   read {req, off, len}   -> data {req, data}: up to min(len, FS_DATA_MAX) bytes at byte
 *       off; fewer only at end of file, none at or past it; holes read as zeros. OS_EISDIR on
 *       a directory.
 *   write {req, off, data} -> reply {req, status}: status is the bytes written (all of data,
 *       or an error: OS_EACCES if the channel was not opened FS_O_WRITE, OS_EDISKFULL,
 *       OS_EINVAL past the largest size the block map can address). A hole is left where off
 *       is past the end.
 *   truncate {req, size}   -> reply: the file's size becomes size (cut, or grown with a hole).
 *   fsync {req}            -> reply once the file's data and every structure that reaches it
 *       (its inode, block map, and the directory entries on its path) are on the disk and the
 *       device has flushed.
 *   stat {req}             -> attr {req, ino, mode, links, uid, gid, size, mtime}.
 *   readdir {req, cookie}  -> dirents {req, next, count, data}: cookie 0 starts; `count`
 *       records packed in data, each {u32 ino, u8 type, u8 name_len, name} (little-endian,
 *       no padding, type FS_T_* or 0 if the volume does not record it); pass `next` back for
 *       the following page; count 0 is the end. OS_ENOTDIR on a non-directory.
 *   Closing the channel closes the file (changes stay in the server's cache until a sync,
 *   an fsync, the periodic write-back or the shutdown writes them).
 * Server -> client, either channel: error {type, status}: a malformed or unexpected message of
 *   that type (OS_EPROTO); the channel goes on.
 */
enum {
    FS_PATH_MAX = 1024,    /* bytes of a path, as open's str limit */
    FS_NAME_MAX = 255,     /* bytes of one name in a path */
    FS_DATA_MAX = 4084,    /* bytes in one data message */
    FS_WRITE_MAX = 4076,   /* bytes in one write message */
    FS_DIRENTS_MAX = 4076, /* bytes of packed records in one dirents message */
    FS_NOTE_MAX = 159,     /* bytes of fsinfo's note */
    FS_O_READ = 1,
    FS_O_WRITE = 2,
    FS_O_NOFOLLOW = 4,
    FS_O_CREAT = 8,
    FS_O_EXCL = 16,
    FS_O_TRUNC = 32,
    FS_O_APPEND = 64,
    /* File types, as mode >> 12. */
    FS_T_FIFO = 1,
    FS_T_CHR = 2,
    FS_T_DIR = 4,
    FS_T_BLK = 6,
    FS_T_REG = 8,
    FS_T_LNK = 10,
    FS_T_SOCK = 12,
    /* fsinfo flags */
    FS_INFO_RO = 1,        /* the volume is mounted read-only (note says why) */
    FS_INFO_CLIENT_RO = 2, /* this client may only read (reach=fs:ro) */
};

#define FS_MESSAGES(MSG)                                                                           \
    MSG(fs, open, 1, (u32, req, 0), (u32, flags, 0), (u32, mode, 0), (str, path, 1024))            \
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
    MSG(fs, error, 11, (u32, type, 0), (i32, status, 0))                                           \
    MSG(fs, mkdir, 12, (u32, req, 0), (u32, mode, 0), (str, path, 1024))                           \
    MSG(fs, unlink, 13, (u32, req, 0), (str, path, 1024))                                          \
    MSG(fs, rmdir, 14, (u32, req, 0), (str, path, 1024))                                           \
    MSG(fs, rename, 15, (u32, req, 0), (str, from, 1024), (str, to, 1024))                         \
    MSG(fs, symlink, 16, (u32, req, 0), (str, target, 1024), (str, path, 1024))                    \
    MSG(fs, statfs, 17, (u32, req, 0))                                                             \
    MSG(fs, fsinfo, 18, (u32, req, 0), (u32, block_size, 0), (u64, blocks, 0),                     \
        (u64, free_blocks, 0), (u32, inodes, 0), (u32, free_inodes, 0), (u32, flags, 0),           \
        (str, note, 159))                                                                          \
    MSG(fs, sync, 19, (u32, req, 0))                                                               \
    MSG(fs, truncate, 20, (u32, req, 0), (u64, size, 0))                                           \
    MSG(fs, fsync, 21, (u32, req, 0))

IFACE_DECLARE(fs, FS_MESSAGES)

#endif
