/* outpath.c — the one check every trace writer makes before it writes: never destroy what is not
 * ours. */
#define _GNU_SOURCE
#include <trace/outpath.h>
#include <trace/pcap.h>
#include <trace/recorder.h>
#include <trace/tools.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A trace is recorded into TARGET.partial and renamed over TARGET only when
 * it is finished and complete, so TARGET (an earlier trace, or nothing) never
 * holds half of a recording. SQLite keeps a database's state in siblings
 * (-wal, -shm, -journal) that it applies to whatever file later bears the
 * name, and a recording keeps its capture blocks in one more (-capture,
 * trace/capture_int.h): stale ones are dealt with here, before SQLite sees
 * the name.
 */
static const char *const siblings[] = {"-wal", "-shm", "-journal", "-capture"};
#define NSIBLINGS (sizeof(siblings) / sizeof(siblings[0]))

/* The SQLite siblings only matter for traces; an export is one plain file. */
static size_t nsiblings(const trace_out *out)
{
    return out->export ? 0 : NSIBLINGS;
}

static const char *noun(const trace_out *out)
{
    if (out->pcap)
        return "a pcap file";
    return out->export ? "an Orrery Perfetto export" : "an Orrery trace";
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISLNK(m))
        return "a symbolic link";
    return "not a regular file";
}

/*
 * The first `want` bytes of path into buf (*n: how many there were). 1 when read; 0 when it is
 * not a non-empty regular file (or is missing), -1 when it cannot be read; *why says which.
 */
static int read_head(const char *path, void *buf, size_t want, ssize_t *n, char *why, size_t whylen)
{
    struct stat sb;
    int fd;

    if (stat(path, &sb) != 0) {
        seterr(why, whylen, "%s", strerror(errno));
        return errno == ENOENT ? 0 : -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        seterr(why, whylen, "%s", file_kind(sb.st_mode));
        return 0;
    }
    if (sb.st_size == 0) {
        seterr(why, whylen, "an empty file");
        return 0;
    }
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        seterr(why, whylen, "cannot read it: %s", strerror(errno));
        return -1;
    }
    *n = pread(fd, buf, want, 0);
    close(fd);
    if (*n < 0) {
        seterr(why, whylen, "cannot read it: %s", strerror(errno));
        return -1;
    }
    return 1;
}

/* Is the file's database header an Orrery trace's? Older traces (no application id) are asked. */
int trace_file_is_trace(const char *path, char *why, size_t whylen)
{
    unsigned char h[100];
    ssize_t n;
    int rc = read_head(path, h, sizeof(h), &n, why, whylen);

    if (rc <= 0)
        return rc;
    if (n < (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
        seterr(why, whylen, "not a SQLite database");
        return 0;
    }
    uint32_t app = (uint32_t)h[68] << 24 | (uint32_t)h[69] << 16 | (uint32_t)h[70] << 8 | h[71];
    if (app == TRACE_APPLICATION_ID)
        return 1;
    if (app != 0) {
        seterr(why, whylen, "a SQLite database of another application (id 0x%08x)", app);
        return 0;
    }

    /* Written before the application id existed: its meta table says. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL) !=
            SQLITE_OK) {
        const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
        if (strstr(msg, "no such table")) {
            seterr(why, whylen, "a SQLite database of something else");
            ret = 0;
        } else {
            seterr(why, whylen, "cannot read it as SQLite: %s", msg);
        }
    } else {
        int step = sqlite3_step(st);
        const unsigned char *v = step == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (v && strcmp((const char *)v, "orrery-trace") == 0) {
            ret = 1;
        } else if (step == SQLITE_ROW || step == SQLITE_DONE) {
            seterr(why, whylen, "a SQLite database of something else");
            ret = 0;
        } else {
            seterr(why, whylen, "cannot read it as SQLite: %s", sqlite3_errmsg(db));
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

/* Does the file begin as `orrery trace export --perfetto` output does? As trace_file_is_trace. */
static int export_is_ours(const char *path, char *why, size_t whylen)
{
    char h[sizeof(TRACE_PERFETTO_HEAD)];
    size_t want = sizeof(h) - 1;
    ssize_t n;
    int rc = read_head(path, h, want, &n, why, whylen);

    if (rc <= 0)
        return rc;
    if (n != (ssize_t)want || memcmp(h, TRACE_PERFETTO_HEAD, want) != 0) {
        seterr(why, whylen, "a file of something else");
        return 0;
    }
    return 1;
}

/* A capture may replace any pcap file (tcpdump -w's too): a 24-byte header with a pcap magic. */
static int pcap_is_ours(const char *path, char *why, size_t whylen)
{
    unsigned char h[TRACE_PCAP_HEADER_LEN];
    ssize_t n;
    int rc = read_head(path, h, sizeof(h), &n, why, whylen);

    if (rc <= 0)
        return rc;
    uint32_t le =
        (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    uint32_t be =
        (uint32_t)h[3] | (uint32_t)h[2] << 8 | (uint32_t)h[1] << 16 | (uint32_t)h[0] << 24;
    bool magic = le == 0xa1b2c3d4 || le == TRACE_PCAP_MAGIC_NS || be == 0xa1b2c3d4 ||
                 be == TRACE_PCAP_MAGIC_NS;
    if (n < (ssize_t)sizeof(h) || !magic) {
        seterr(why, whylen, "%s",
               magic ? "shorter than a pcap header" : "a file of something else");
        return 0;
    }
    return 1;
}

static int is_ours(const trace_out *out, const char *path, char *why, size_t whylen)
{
    if (out->pcap)
        return pcap_is_ours(path, why, whylen);
    return out->export ? export_is_ours(path, why, whylen) : trace_file_is_trace(path, why, whylen);
}

/* Each sibling of base that exists must be a regular file; 0, or -1 naming the first that is not.
 */
static int siblings_regular(const trace_out *out, const char *base, char *bad, size_t badlen)
{
    char p[PATH_MAX + 32];
    struct stat sb;

    for (size_t i = 0; i < nsiblings(out); i++) {
        snprintf(p, sizeof(p), "%s%s", base, siblings[i]);
        if (lstat(p, &sb) == 0 && !S_ISREG(sb.st_mode)) {
            snprintf(bad, badlen, "%s (%s)", p, file_kind(sb.st_mode));
            return -1;
        }
    }
    return 0;
}

/* The first sibling of base that exists, or NULL. */
static const char *any_sibling(const trace_out *out, const char *base, char *p, size_t plen)
{
    struct stat sb;

    for (size_t i = 0; i < nsiblings(out); i++) {
        snprintf(p, plen, "%s%s", base, siblings[i]);
        if (lstat(p, &sb) == 0)
            return p;
    }
    return NULL;
}

static void remove_siblings(const trace_out *out, const char *base)
{
    char p[PATH_MAX + 32];
    struct stat sb;

    for (size_t i = 0; i < nsiblings(out); i++) {
        snprintf(p, sizeof(p), "%s%s", base, siblings[i]);
        if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode))
            unlink(p);
    }
}

/* An earlier recording's partial file: remove it if it is ours and nobody writes it. */
static int clear_partial(trace_out *out, const struct stat *sb, char *err, size_t errlen)
{
    char why[200], bad[PATH_MAX + 64];
    int fd, is;

    if (!S_ISREG(sb->st_mode)) {
        seterr(err, errlen,
               "trace %s: exists and is %s, not a recording of ours: refusing to touch it",
               out->partial, file_kind(sb->st_mode));
        return TRACE_OUT_REFUSED;
    }
    fd = open(out->partial, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "trace %s: %s", out->partial, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        seterr(err, errlen, "trace %s: another recording into %s is under way", out->partial,
               out->target);
        return TRACE_OUT_REFUSED;
    }
    is = sb->st_size == 0 ? 1 : is_ours(out, out->partial, why, sizeof(why));
    if (is != 1) {
        close(fd);
        seterr(err, errlen, "%s: exists and is not %s (%s): refusing to touch it", out->partial,
               noun(out), why);
        return TRACE_OUT_REFUSED;
    }
    if (siblings_regular(out, out->partial, bad, sizeof(bad)) != 0) {
        close(fd);
        seterr(err, errlen, "trace %s: %s is in the way: refusing to touch it", out->partial, bad);
        return TRACE_OUT_REFUSED;
    }
    remove_siblings(out, out->partial);
    unlink(out->partial);
    close(fd);
    out->replaced_partial = sb->st_size != 0;
    return 0;
}

static int prepare(const char *path, bool export, bool pcap, trace_out *out, char *err,
                   size_t errlen)
{
    char why[200], bad[PATH_MAX + 64];
    struct stat sb;
    int rc, fd;

    memset(out, 0, sizeof(*out));
    out->lock_fd = -1;
    out->export = export;
    out->pcap = pcap;
    if (!*path) {
        seterr(err, errlen, "trace: an empty file name");
        return TRACE_OUT_REFUSED;
    }
    if (strlen(path) >= sizeof(out->target)) {
        seterr(err, errlen, "trace %.64s...: the name is too long", path);
        return TRACE_OUT_REFUSED;
    }
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT) {
            seterr(err, errlen, "trace %s: %s", path, strerror(errno));
            return -1;
        }
        snprintf(out->target, sizeof(out->target), "%s", path);
    } else if (S_ISLNK(sb.st_mode)) {
        /* The link stays; its target is judged and replaced. */
        if (stat(path, &sb) != 0 || !realpath(path, out->target)) {
            seterr(err, errlen,
                   "trace %s: a symbolic link to %s: give the name of the file to write", path,
                   errno == ENOENT ? "a missing file" : strerror(errno));
            return TRACE_OUT_REFUSED;
        }
    } else {
        snprintf(out->target, sizeof(out->target), "%s", path);
    }
    snprintf(out->partial, sizeof(out->partial), "%s%s", out->target, TRACE_PARTIAL_SUFFIX);

    if (stat(out->target, &sb) == 0) {
        char what[PATH_MAX + 32] = "exists and";
        if (strcmp(out->target, path) != 0)
            snprintf(what, sizeof(what), "links to %s, which", out->target);
        rc = is_ours(out, out->target, why, sizeof(why));
        if (rc == 0) {
            seterr(err, errlen, "trace %s: %s is not %s (%s): refusing to replace it", path, what,
                   noun(out), why);
            return TRACE_OUT_REFUSED;
        }
        if (rc < 0) {
            seterr(err, errlen, "trace %s: %s may not be %s (%s): refusing to replace it", path,
                   what, noun(out), why);
            return TRACE_OUT_REFUSED;
        }
        if (siblings_regular(out, out->target, bad, sizeof(bad)) != 0) {
            seterr(err, errlen, "trace %s: %s is in the way: refusing to replace it", path, bad);
            return TRACE_OUT_REFUSED;
        }
        out->replaces = true;
        out->mode = sb.st_mode & 07777;
    } else if (any_sibling(out, out->target, bad, sizeof(bad))) {
        /* SQLite would apply a stale log or journal to the new trace. */
        seterr(err, errlen,
               "trace %s: %s exists without %s (left from another database?):"
               " refusing to write next to it",
               path, bad, out->target);
        return TRACE_OUT_REFUSED;
    }

    if (lstat(out->partial, &sb) == 0) {
        if ((rc = clear_partial(out, &sb, err, errlen)) != 0)
            return rc;
    } else if (any_sibling(out, out->partial, bad, sizeof(bad))) {
        seterr(err, errlen, "trace %s: %s exists without %s: refusing to write next to it", path,
               bad, out->partial);
        return TRACE_OUT_REFUSED;
    }
    fd = open(out->partial, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        seterr(err, errlen, "trace %s: cannot create %s: %s", path, out->partial,
               errno == EEXIST ? "it appeared meanwhile (another recording?)" : strerror(errno));
        return -1;
    }
    /* Held until the rename: a second recording into the same file is refused. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        seterr(err, errlen, "trace %s: cannot lock %s: %s", path, out->partial, strerror(errno));
        close(fd);
        unlink(out->partial);
        return -1;
    }
    out->lock_fd = fd;
    return 0;
}

int trace_out_prepare(const char *path, trace_out *out, char *err, size_t errlen)
{
    return prepare(path, false, false, out, err, errlen);
}

int trace_out_prepare_export(const char *path, trace_out *out, char *err, size_t errlen)
{
    int rc = prepare(path, true, false, out, err, errlen);

    /* The messages name a trace ("trace PATH: ..."); an export is not one. */
    if (rc != 0 && err && strncmp(err, "trace ", 6) == 0)
        memmove(err, err + 6, strlen(err + 6) + 1);
    return rc;
}

int trace_out_prepare_pcap(const char *path, trace_out *out, char *err, size_t errlen)
{
    int rc = prepare(path, true, true, out, err, errlen);

    if (rc != 0 && err && strncmp(err, "trace ", 6) == 0)
        memmove(err, err + 6, strlen(err + 6) + 1);
    return rc;
}

int trace_out_commit(trace_out *out, char *err, size_t errlen)
{
    int ret = 0;

    if (out->replaces) {
        /* The replaced trace's own log or journal must not be applied to the new one. */
        remove_siblings(out, out->target);
        if (out->lock_fd >= 0)
            (void)fchmod(out->lock_fd, out->mode);
    }
    if (rename(out->partial, out->target) != 0) {
        seterr(err, errlen, "trace %s: cannot rename %s to it: %s", out->target, out->partial,
               strerror(errno));
        ret = -1;
    }
    if (out->lock_fd >= 0)
        close(out->lock_fd);
    out->lock_fd = -1;
    return ret;
}

void trace_out_remove_own(const char *path)
{
    const trace_out any = {.lock_fd = -1}; /* a trace, not an export: every sibling */
    char partial[PATH_MAX + 16];
    struct stat sb;

    snprintf(partial, sizeof(partial), "%s" TRACE_PARTIAL_SUFFIX, path);
    remove_siblings(&any, path);
    remove_siblings(&any, partial);
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        unlink(path);
    if (lstat(partial, &sb) == 0 && S_ISREG(sb.st_mode))
        unlink(partial);
}

void trace_out_release(trace_out *out, bool remove)
{
    if (remove && out->partial[0]) {
        remove_siblings(out, out->partial);
        unlink(out->partial);
    }
    if (out->lock_fd >= 0)
        close(out->lock_fd);
    out->lock_fd = -1;
}
