/* errno.h — Orrery's error codes: one X-macro list gives the codes, names and messages. */
#ifndef OS_ERRNO_H
#define OS_ERRNO_H

/* X(NAME, value, message). Every function of the os API returns 0 or one of these. */
#define OS_ERRNO_MAP(X)                                                       \
    X(EINVAL, -1, "invalid argument")                                         \
    X(EBADH, -2, "bad or stale handle")                                       \
    X(EACCES, -3, "permission denied")                                        \
    X(EFULL, -4, "queue full")                                                \
    X(EPEER, -5, "peer closed")                                               \
    X(E2BIG, -6, "message too large")                                         \
    X(ENOMEM, -7, "out of memory")                                            \
    X(ENOSPC, -8, "table full")                                               \
    X(ENOENT, -9, "no such entry")                                            \
    X(EEXIST, -10, "already exists")                                          \
    X(EPROTO, -11, "malformed message")                                       \
    X(ENOTSUP, -12, "not supported")                                          \
    X(EBUSY, -13, "busy")                                                     \
    X(EIO, -14, "input/output error")                                         \
    X(ETIMEDOUT, -15, "timed out")                                            \
    X(ESTATE, -16, "wrong state")                                             \
    X(ECONNREFUSED, -17, "connection refused")                                \
    X(ECONNRESET, -18, "connection reset")                                    \
    X(EUNREACH, -19, "unreachable")                                           \
    X(EADDRINUSE, -20, "address in use")                                    \
    X(ENOTDIR, -21, "not a directory")                                        \
    X(EISDIR, -22, "is a directory")                                          \
    X(ENOTEMPTY, -23, "directory not empty")                                  \
    X(EROFS, -24, "read-only file system")                                    \
    X(ENAMETOOLONG, -25, "name too long")                                     \
    X(EDISKFULL, -26, "no space left on device")

enum {
    OS_OK = 0,
#define OS_ERRNO_ENUM(name, value, msg) OS_##name = (value),
    OS_ERRNO_MAP(OS_ERRNO_ENUM)
#undef OS_ERRNO_ENUM
};

/* Message for an error code ("unknown error" for anything not in the list). */
const char *os_strerror(int err);
/* Symbolic name of an error code ("EFULL"), or "OK" for 0, "E?" if unknown. */
const char *os_errname(int err);

#endif
