/* bench_fs.c — `orrery bench fs`: sequential write and read, small-file creates and fsync
 * latency through the fs server (hosted, under QEMU) and through fuse2fs on the same kind of
 * image, against the same operations on plain host files measured in the same run. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"
#include "qemu.h"

#include <iface/fs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    DEFAULT_MB = 16,
    MB_MAX = 4096, /* as fsbench's limit */
    DEFAULT_FILES = 200,
    FILES_MAX = 100000,
    FSYNCS = 50,           /* fsyncs timed per row */
    SMALL_BYTES = 1024,    /* each small file's bytes, as fsbench writes */
    STALL_TIMEOUT_S = 600, /* no output line from a child for this long: the row failed */
    REASON_MAX = 512,
};

/* One set of figures; -1: not measured. */
typedef struct fs_figures {
    double write_mib_s, read_mib_s, creates_s, fsync_med_us, fsync_p99_us;
} fs_figures_t;

static const fs_figures_t no_figures = {-1, -1, -1, -1, -1};

enum { ROW_HOSTED, ROW_MICROVM, ROW_FUSE, NROWS };
enum { ST_OFF, ST_MEASURED, ST_SKIPPED, ST_FAILED };

static const char *const row_names[NROWS] = {"hosted", "qemu-microvm", "fuse2fs"};
static const char *const st_names[] = {"off", "measured", "skipped", "failed"};

typedef struct fs_row {
    int state;
    char why[REASON_MAX];
    fs_figures_t f;
} fs_row_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void say(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, REASON_MAX, fmt, ap);
    va_end(ap);
}

/* Byte i of the sequential file: fsbench's pattern. */
/* src into dst[n], cut to fit, NUL-terminated. */
static void copy_str(char *dst, size_t n, const char *src)
{
    size_t k = strnlen(src, n - 1);
    memcpy(dst, src, k);
    dst[k] = '\0';
}

static uint8_t pattern(uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    return (uint8_t)(x >> 56 ^ x >> 29 ^ i);
}

static double mib_s(uint64_t bytes, uint64_t ns)
{
    return ns ? (double)bytes / (1024.0 * 1024.0) / ((double)ns / 1e9) : -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- what we made, removed on every path (and when a signal stops us) -------------------- */

static char tmpdir[4096];  /* ours: removed with everything in it */
static char mounted[4096]; /* a fuse2fs mount of ours, or "" */
static volatile pid_t live_child;
static char last_progress[512]; /* run_child: the last line with its `progress` text */

/* Unmount p: umount(8) as root, fusermount3/fusermount otherwise; 0 when the mount is gone. */
static int unmount(const char *p)
{
    static const char *const tools[][3] = {
        {"umount", NULL, NULL}, {"fusermount3", "-u", NULL}, {"fusermount", "-u", NULL}};
    for (size_t t = geteuid() == 0 ? 0 : 1; t < 3; t++) {
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 1);
            dup2(null, 2);
            if (tools[t][1])
                execlp(tools[t][0], tools[t][0], tools[t][1], p, (char *)NULL);
            else
                execlp(tools[t][0], tools[t][0], p, (char *)NULL);
            _exit(127);
        }
        int ws = 0;
        while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        if (pid > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
            return 0;
    }
    return -1;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char p[4096 + 256];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                remove_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static void cleanup(void)
{
    if (mounted[0] && unmount(mounted) == 0)
        mounted[0] = '\0';
    if (tmpdir[0] && !mounted[0]) {
        remove_tree(tmpdir);
        tmpdir[0] = '\0';
    }
}

static void on_fatal_signal(int sig)
{
    if (live_child > 0)
        kill(-live_child, SIGKILL);
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- the operations on host files (the baseline, and through a fuse2fs mount) ---------- */

/*
 * In directory dir (which must not hold "fsbench"): the operations fsbench does through the fs
 * interface, with the same sizes: bytes in FS_WRITE_MAX-byte writes then fsync; read back in
 * FS_DATA_MAX-byte reads, checked; files creates of SMALL_BYTES each then syncfs; FSYNCS times
 * an FS_WRITE_MAX-byte write then fsync. 0, or -1 with why.
 */
static int host_ops(const char *dir, uint64_t bytes, uint32_t files, fs_figures_t *f, char *why)
{
    char p[4096 + 64];
    static uint8_t buf[FS_WRITE_MAX > FS_DATA_MAX ? FS_WRITE_MAX : FS_DATA_MAX];
    static uint64_t lat[FSYNCS];
    int fd = -1, dfd = -1, rc = -1;

    snprintf(p, sizeof(p), "%s/fsbench", dir);
    if (mkdir(p, 0755) != 0) {
        say(why, "mkdir %s: %s", p, strerror(errno));
        return -1;
    }
    /* sequential write */
    uint64_t t0 = now_ns();
    snprintf(p, sizeof(p), "%s/fsbench/seq", dir);
    if ((fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
        goto sys_fail;
    for (uint64_t off = 0; off < bytes;) {
        size_t n = bytes - off < FS_WRITE_MAX ? (size_t)(bytes - off) : FS_WRITE_MAX;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        if (cli_write_all(fd, buf, n) != 0)
            goto sys_fail;
        off += n;
    }
    if (fsync(fd) != 0)
        goto sys_fail;
    f->write_mib_s = mib_s(bytes, now_ns() - t0);
    close(fd);
    /* sequential read, every byte checked */
    t0 = now_ns();
    if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
        goto sys_fail;
    for (uint64_t off = 0; off < bytes;) {
        size_t want = bytes - off < FS_DATA_MAX ? (size_t)(bytes - off) : FS_DATA_MAX;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            say(why, "%s: %s at byte %llu", p, n < 0 ? strerror(errno) : "ended early",
                (unsigned long long)off);
            goto out;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(off + (uint64_t)i)) {
                say(why, "%s differs at byte %llu", p, (unsigned long long)(off + (uint64_t)i));
                goto out;
            }
        off += (uint64_t)n;
    }
    f->read_mib_s = mib_s(bytes, now_ns() - t0);
    close(fd);
    fd = -1;
    /* small-file creates, then one syncfs */
    memset(buf, 0, SMALL_BYTES);
    for (uint32_t i = 0; i < SMALL_BYTES; i++)
        buf[i] = (uint8_t)i;
    t0 = now_ns();
    for (uint32_t i = 0; i < files; i++) {
        snprintf(p, sizeof(p), "%s/fsbench/f%u", dir, (unsigned)i);
        if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 ||
            cli_write_all(fd, buf, SMALL_BYTES) != 0)
            goto sys_fail;
        close(fd);
        fd = -1;
    }
    snprintf(p, sizeof(p), "%s/fsbench", dir);
    if ((dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || syncfs(dfd) != 0)
        goto sys_fail;
    f->creates_s = (double)files * 1e9 / (double)(now_ns() - t0);
    /* fsync latency */
    snprintf(p, sizeof(p), "%s/fsbench/fsync", dir);
    if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
        goto sys_fail;
    for (uint32_t i = 0; i < FS_WRITE_MAX; i++)
        buf[i] = (uint8_t)i;
    for (int i = 0; i < FSYNCS; i++) {
        if (pwrite(fd, buf, FS_WRITE_MAX, (off_t)i * FS_WRITE_MAX) != FS_WRITE_MAX)
            goto sys_fail;
        uint64_t t = now_ns();
        if (fsync(fd) != 0)
            goto sys_fail;
        lat[i] = now_ns() - t;
    }
    qsort(lat, FSYNCS, sizeof(lat[0]), cmp_u64);
    f->fsync_med_us = ((double)lat[FSYNCS / 2 - 1] + (double)lat[FSYNCS / 2]) / 2e3;
    f->fsync_p99_us = (double)lat[(FSYNCS * 99 + 99) / 100 - 1] / 1e3;
    rc = 0;
    goto out;
sys_fail:
    say(why, "%s: %s", p, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* ---- children: mke2fs, fuse2fs, orrery run / orrery qemu ------------------------------------ */

/*
 * Run argv with stdin a pipe we hold open (so `orrery run` does not see its console input end)
 * and stdout+stderr read line by line: each line with `progress` in it is echoed on stderr
 * (prefixed with the row), a line with `key` in it is copied to found (the first). Waits for the
 * exit; kills the child's group after STALL_TIMEOUT_S without a line. Returns the exit status
 * (128 + signal), or -1 with why. last gets its last line of output.
 */
static int run_child(char **argv, const char *row, const char *progress, const char *key,
                     char *found, size_t foundlen, char *last, size_t lastlen, char *why)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        say(why, "pipe: %s", strerror(errno));
        return -1;
    }
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old); /* no signal between fork and live_child */
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid > 0) {
        setpgid(pid, pid);
        live_child = pid;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        say(why, "fork: %s", strerror(errno));
        close(in[1]);
        close(out[0]);
        return -1;
    }
    char buf[8192];
    size_t len = 0;
    uint64_t last_line = now_ns();
    bool stalled = false;
    if (found && foundlen)
        found[0] = '\0';
    last_progress[0] = '\0';
    if (last && lastlen)
        last[0] = '\0';
    for (;;) {
        struct pollfd p = {out[0], POLLIN, 0};
        int pr = poll(&p, 1, 1000);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0) {
            if (now_ns() - last_line > (uint64_t)STALL_TIMEOUT_S * 1000000000u) {
                stalled = true;
                kill(-pid, SIGKILL);
                break;
            }
            continue;
        }
        ssize_t r = read(out[0], buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        char *nl, *start = buf;
        while ((nl = strchr(start, '\n')) || (len == sizeof(buf) - 1 && start == buf)) {
            if (nl)
                *nl = '\0';
            last_line = now_ns();
            if (progress && strstr(start, progress)) {
                fprintf(stderr, "orrery: bench fs: %s: %s\n", row, start);
                copy_str(last_progress, sizeof(last_progress), start);
            }
            if (key && found && !found[0] && strstr(start, key))
                copy_str(found, foundlen, start);
            if (last && *start)
                copy_str(last, lastlen, start);
            if (!nl) {
                start = buf + len;
                break;
            }
            start = nl + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
    }
    close(out[0]);
    close(in[1]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    kill(-pid, SIGKILL); /* whatever it left in its group (QEMU) */
    live_child = 0;
    if (stalled) {
        say(why, "no output for %d s; killed", STALL_TIMEOUT_S);
        return -1;
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* A fresh ext2 image at path, of mib MiB (4 KiB blocks, revision 1). 0, or -1 with why. */
static int make_image(const char *path, uint64_t mib, char *why)
{
    char size[32], last[256];
    snprintf(size, sizeof(size), "%lluM", (unsigned long long)mib);
    unlink(path); /* ours: in our temporary directory */
    char *argv[] = {"mke2fs", "-q",         "-F", "-t", "ext2",       "-b", "4096",
                    "-O",     "^dir_index", "-m", "0",  (char *)path, size, NULL};
    int st = run_child(argv, "mke2fs", NULL, NULL, NULL, 0, last, sizeof(last), why);
    if (st == 127) {
        say(why, "no mke2fs (e2fsprogs): %s", last);
        return -1;
    }
    if (st != 0) {
        if (st > 0)
            say(why, "mke2fs %s exited with status %d: %s", path, st, last);
        return -1;
    }
    return 0;
}

/* The image's size: the sequential file twice over, the small files, and room for metadata. */
static uint64_t image_mib(uint64_t mb, uint32_t files)
{
    return 2 * mb + ((uint64_t)files * 8 + 1023) / 1024 + 32;
}

/* "key=N" from a result line: 0, or -1. */
static int field(const char *line, const char *key, uint64_t *v)
{
    char k[40];
    snprintf(k, sizeof(k), " %s=", key);
    const char *p = strstr(line, k);
    if (!p)
        return -1;
    return sscanf(p + strlen(k), "%llu", (unsigned long long *)v) == 1 ? 0 : -1;
}

/* The figures from fsbench's "result ..." line. */
static int parse_result(const char *line, fs_figures_t *f, char *why)
{
    uint64_t bytes, w, r, files, c, med, p99;
    if (field(line, "bytes", &bytes) || field(line, "write_ns", &w) || field(line, "read_ns", &r) ||
        field(line, "files", &files) || field(line, "create_ns", &c) ||
        field(line, "fsync_median_ns", &med) || field(line, "fsync_p99_ns", &p99)) {
        say(why, "cannot read fsbench's result line: %s", line);
        return -1;
    }
    f->write_mib_s = mib_s(bytes, w);
    f->read_mib_s = mib_s(bytes, r);
    f->creates_s = c ? (double)files * 1e9 / (double)c : -1;
    f->fsync_med_us = (double)med / 1e3;
    f->fsync_p99_us = (double)p99 / 1e3;
    return 0;
}

/* The OS with the fs server and fsbench on a fresh image: argv is `orrery run` or `orrery qemu`
 * with --disk IMAGE --manifest M. */
static void run_os_row(fs_row_t *row, const char *name, char **argv, const char *image,
                       uint64_t mib)
{
    char result[1024], last[512];
    if (make_image(image, mib, row->why) != 0) {
        row->state = ST_FAILED;
        return;
    }
    int st = run_child(argv, name, "[fsbench]", "[fsbench] result ", result, sizeof(result), last,
                       sizeof(last), row->why);
    if (st < 0) {
        row->state = ST_FAILED;
    } else if (!result[0]) {
        /* fsbench says why it stopped; otherwise the run's last words */
        const char *w = strstr(last_progress, "[fsbench] failed: ");
        if (w)
            say(row->why, "fsbench %s (exit status %d)", w + strlen("[fsbench] "), st);
        else
            say(row->why, "no result from fsbench (exit status %d): %s", st,
                last[0] ? last : "(no output)");
        row->state = ST_FAILED;
    } else if (st != 0) {
        say(row->why, "exit status %d after the result: %s", st, last);
        row->state = ST_FAILED;
    } else {
        row->state = parse_result(result, &row->f, row->why) == 0 ? ST_MEASURED : ST_FAILED;
    }
}

static void run_fuse(fs_row_t *row, const char *image, const char *mnt, uint64_t mib,
                     uint64_t bytes, uint32_t files)
{
    char last[512];
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        say(row->why, "FUSE cannot work here: /dev/fuse: %s", strerror(errno));
        row->state = ST_SKIPPED;
        return;
    }
    if (make_image(image, mib, row->why) != 0) {
        row->state = ST_FAILED;
        return;
    }
    if (mkdir(mnt, 0755) != 0 && errno != EEXIST) {
        say(row->why, "mkdir %s: %s", mnt, strerror(errno));
        row->state = ST_FAILED;
        return;
    }
    /* fuse2fs mounts, then leaves a daemon serving it until the unmount */
    copy_str(mounted, sizeof(mounted), mnt);
    char *argv[] = {"fuse2fs", (char *)image, (char *)mnt, "-o", "rw", NULL};
    int st = run_child(argv, "fuse2fs", NULL, NULL, NULL, 0, last, sizeof(last), row->why);
    if (st != 0) {
        if (st == 127)
            say(row->why, "no fuse2fs (the fuse2fs package): %s", last);
        else if (st > 0)
            say(row->why, "fuse2fs could not mount (status %d): %s", st, last);
        row->state = st == 127 ? ST_SKIPPED : ST_FAILED;
        if (unmount(mnt) == 0 || st == 127)
            mounted[0] = '\0';
        return;
    }
    row->state = host_ops(mnt, bytes, files, &row->f, row->why) == 0 ? ST_MEASURED : ST_FAILED;
    if (unmount(mnt) == 0) {
        mounted[0] = '\0';
    } else {
        row->state = ST_FAILED;
        say(row->why, "could not unmount %s: unmount it by hand", mnt);
    }
}

/* ---- output -------------------------------------------------------------------------------- */

static double ratio(double row, double base)
{
    return row > 0 && base > 0 ? row / base : -1;
}

static void json_num(const char *key, double v, bool comma)
{
    printf("\"%s\": ", key);
    if (v < 0)
        fputs("null", stdout);
    else
        printf("%.3f", v);
    if (comma)
        fputs(", ", stdout);
}

static void json_figures(const fs_figures_t *f)
{
    json_num("seq_write_mib_s", f->write_mib_s, true);
    json_num("seq_read_mib_s", f->read_mib_s, true);
    json_num("creates_per_s", f->creates_s, true);
    json_num("fsync_median_us", f->fsync_med_us, true);
    json_num("fsync_p99_us", f->fsync_p99_us, false);
}

static void print_json(const fs_row_t *rows, const fs_figures_t *base, uint64_t mb, uint32_t files,
                       uint64_t mib)
{
    printf("{\"bench\": \"fs\", \"size_mib\": %llu, \"files\": %u, \"file_bytes\": %d, "
           "\"fsyncs\": %d, \"image_mib\": %llu, "
           "\"baseline\": {\"name\": \"host\", \"what\": \"the same operations on plain files in "
           "the host directory of the images\", ",
           (unsigned long long)mb, (unsigned)files, SMALL_BYTES, FSYNCS, (unsigned long long)mib);
    json_figures(base);
    fputs("}, \"rows\": [", stdout);
    bool first = true;
    for (int i = 0; i < NROWS; i++) {
        const fs_row_t *r = &rows[i];
        if (r->state == ST_OFF)
            continue;
        printf("%s{\"row\": \"%s\", \"status\": \"%s\"", first ? "" : ", ", row_names[i],
               st_names[r->state]);
        first = false;
        if (i == ROW_MICROVM)
            fputs(", \"accel\": \"tcg\"", stdout);
        if (r->state != ST_MEASURED) {
            fputs(", \"reason\": ", stdout);
            cli_json_str(r->why);
        } else {
            fputs(", ", stdout);
            json_figures(&r->f);
            fputs(", \"ratios\": {\"baseline\": \"host\", ", stdout);
            json_num("seq_write_over_baseline", ratio(r->f.write_mib_s, base->write_mib_s), true);
            json_num("seq_read_over_baseline", ratio(r->f.read_mib_s, base->read_mib_s), true);
            json_num("creates_over_baseline", ratio(r->f.creates_s, base->creates_s), true);
            json_num("fsync_median_over_baseline", ratio(r->f.fsync_med_us, base->fsync_med_us),
                     false);
            fputs("}", stdout);
        }
        fputs("}", stdout);
    }
    /* Every bench JSON names the baseline of each ratio (rows[].ratios.*). */
    fputs("], \"baselines\": {"
          "\"seq_write_over_baseline\": {\"baseline\": \"host\", \"ratio\": \"seq_write_mib_s / "
          "baseline.seq_write_mib_s\"}, "
          "\"seq_read_over_baseline\": {\"baseline\": \"host\", \"ratio\": \"seq_read_mib_s / "
          "baseline.seq_read_mib_s\"}, "
          "\"creates_over_baseline\": {\"baseline\": \"host\", \"ratio\": \"creates_per_s / "
          "baseline.creates_per_s\"}, "
          "\"fsync_median_over_baseline\": {\"baseline\": \"host\", \"ratio\": \"fsync_median_us / "
          "baseline.fsync_median_us\"}"
          "}}\n",
          stdout);
}

static void text_cell(const char *fmt, double v)
{
    if (v < 0)
        printf("%10s", "-");
    else
        printf(fmt, v);
}

static void text_line(const char *name, const fs_figures_t *f, const fs_figures_t *base)
{
    printf("%-13s", name);
    text_cell("%10.1f", f->write_mib_s);
    text_cell("%10.1f", f->read_mib_s);
    text_cell("%10.0f", f->creates_s);
    text_cell("%10.0f", f->fsync_med_us);
    text_cell("%10.0f", f->fsync_p99_us);
    if (base) {
        text_cell("%9.3fx", ratio(f->write_mib_s, base->write_mib_s));
        text_cell("%9.3fx", ratio(f->read_mib_s, base->read_mib_s));
        text_cell("%9.3fx", ratio(f->creates_s, base->creates_s));
        text_cell("%9.2fx", ratio(f->fsync_med_us, base->fsync_med_us));
    }
    putchar('\n');
}

static void print_text(const fs_row_t *rows, const fs_figures_t *base, uint64_t mb, uint32_t files,
                       uint64_t mib)
{
    printf("orrery bench fs: %llu MiB written and read back, %u files of %d bytes created, %d "
           "fsyncs; images of %llu MiB\n"
           "ratios against the baseline, host (the same operations on plain files in the host "
           "directory of the images):\nwrite x, read x, creates x = row / baseline; fsync x = "
           "row / baseline (slower)\n\n",
           (unsigned long long)mb, (unsigned)files, SMALL_BYTES, FSYNCS, (unsigned long long)mib);
    printf("%-13s%10s%10s%10s%10s%10s%10s%10s%10s%10s\n", "row", "wr MiB/s", "rd MiB/s",
           "creates/s", "fsync us", "p99 us", "write x", "read x", "creates x", "fsync x");
    text_line("host", base, NULL);
    for (int i = 0; i < NROWS; i++) {
        const fs_row_t *r = &rows[i];
        if (r->state == ST_OFF)
            continue;
        if (r->state != ST_MEASURED)
            printf("%-13s %s: %s\n", row_names[i], st_names[r->state], r->why);
        else
            text_line(row_names[i], &r->f, base);
    }
}

/* ---- the command --------------------------------------------------------------------------- */

static const char bench_fs_usage[] =
    "usage: orrery bench fs [--json] [--rows hosted,qemu-microvm,fuse2fs] [--size MB] [--files N]\n"
    "\n"
    "Measure the file system (the fs server on ext2 over blk0), on a fresh image made by\n"
    "`mke2fs -t ext2` for each row in a temporary directory (removed at the end):\n"
    "  write    MB MiB into one file in 4076-byte writes, then fsync (MiB/s)\n"
    "  read     the file back in 4084-byte reads, every byte checked (MiB/s)\n"
    "  creates  N files of 1024 bytes, one after the other, then a sync (files/s)\n"
    "  fsync    50 times: a 4076-byte write, then fsync, each fsync timed (median, p99)\n"
    "Rows:\n"
    "  hosted        `orrery run --disk IMAGE` with the program fsbench doing the operations\n"
    "                through the fs interface, timed with the kernel's clock\n"
    "  qemu-microvm  the same under `orrery qemu --machine microvm --accel tcg`\n"
    "  fuse2fs       the image mounted by fuse2fs (when FUSE works here), the operations done\n"
    "                by this process on the mount; it is unmounted before the end\n"
    "The baseline, measured first in the same run: the same operations by this process on plain\n"
    "files in the temporary directory; every row has ratios against it.\n"
    "\n"
    "  --json       print one JSON object instead of the table\n"
    "  --rows LIST  which rows (default all three, comma-separated)\n"
    "  --size MB    MiB of the sequential file, 1..4096 (default 16)\n"
    "  --files N    small files to create, 1..100000 (default 200)\n"
    "\n"
    "Progress goes to stderr. A row that cannot run here (no QEMU, no image, no fuse2fs or\n"
    "FUSE) is skipped with the reason; exit status 0 when every other row was measured, 1 when\n"
    "one failed (its reason is printed), 2 for usage errors.\n";

static int parse_rows(const char *s, fs_row_t *rows)
{
    char buf[256];
    if (strlen(s) >= sizeof(buf) || !*s)
        return cli_usage_error("bench fs", "bench fs: --rows wants a list of %s, %s, %s",
                               row_names[0], row_names[1], row_names[2]);
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        int i;
        for (i = 0; i < NROWS && strcmp(w, row_names[i]) != 0; i++)
            ;
        if (i == NROWS)
            return cli_usage_error("bench fs",
                                   "bench fs: --rows: unknown row '%s' (rows: %s, %s, %s)", w,
                                   row_names[0], row_names[1], row_names[2]);
        rows[i].state = ST_SKIPPED;
    }
    return 0;
}

int hl_cmd_bench_fs(int argc, char **argv)
{
    static fs_row_t rows[NROWS];
    bool json = false, rows_given = false;
    uint64_t mb = DEFAULT_MB, files = DEFAULT_FILES;
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},        {"json", no_argument, NULL, 'j'},
        {"rows", required_argument, NULL, 'r'},  {"size", required_argument, NULL, 's'},
        {"files", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0},
    };
    int c;
    memset(rows, 0, sizeof(rows));
    while ((c = cli_getopt(argc, argv, "bench fs", opts)) != -1) {
        if (c == 'h') {
            fputs(bench_fs_usage, stdout);
            return 0;
        } else if (c == 'j') {
            json = true;
        } else if (c == 'r') {
            memset(rows, 0, sizeof(rows));
            rows_given = true;
            if (parse_rows(optarg, rows) != 0)
                return 2;
        } else if (c == 's') {
            if (cli_opt_u64("bench fs", "--size", optarg, 1, MB_MAX, &mb) != 0)
                return 2;
        } else if (c == 'f') {
            if (cli_opt_u64("bench fs", "--files", optarg, 1, FILES_MAX, &files) != 0)
                return 2;
        } else {
            return 2;
        }
    }
    if (optind < argc)
        return cli_usage_error("bench fs", "bench fs: unexpected argument '%s'", argv[optind]);
    for (int i = 0; i < NROWS && !rows_given; i++)
        rows[i].state = ST_SKIPPED;

    struct sigaction sa = {.sa_handler = on_fatal_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    /* Our temporary directory: the images, the manifest, the baseline's files, the mount. */
    const char *tmp = getenv("TMPDIR");
    char dir[sizeof(tmpdir)];
    snprintf(dir, sizeof(dir), "%s/orrery-bench-fs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    bool made = mkdtemp(dir) != NULL;
    if (made)
        memcpy(tmpdir, dir, sizeof(tmpdir));
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (!made) {
        fprintf(stderr, "orrery: bench fs: a temporary directory in %s: %s\n",
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return 1;
    }

    uint64_t bytes = mb << 20, mib = image_mib(mb, (uint32_t)files);
    fs_figures_t base = no_figures;
    char why[REASON_MAX], image[sizeof(dir) + 16], manifest[sizeof(dir) + 16],
        mnt[sizeof(dir) + 16];
    snprintf(image, sizeof(image), "%s/fs.img", dir);
    snprintf(manifest, sizeof(manifest), "%s/manifest", dir);
    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    if (!json)
        fprintf(stderr, "orrery: bench fs: host files (the baseline)...\n");
    if (host_ops(dir, bytes, (uint32_t)files, &base, why) != 0) {
        fprintf(stderr, "orrery: bench fs: the host baseline: %s\n", why);
        cleanup();
        return 1;
    }

    /* The manifest: the fs server and fsbench, which shuts the OS down when it is done. */
    char text[512];
    snprintf(text, sizeof(text),
             "# orrery bench fs: the fs server on blk0 and the program that measures it\n"
             "program fs restart=never\n"
             "program fsbench restart=never reach=fs,init arg=mb=%llu,files=%llu,fsyncs=%d\n",
             (unsigned long long)mb, (unsigned long long)files, FSYNCS);
    int mfd = open(manifest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (mfd < 0 || cli_write_all(mfd, text, strlen(text)) != 0 || sl <= 0) {
        fprintf(stderr, "orrery: bench fs: writing the boot manifest %s: %s\n", manifest,
                strerror(errno));
        if (mfd >= 0)
            close(mfd);
        cleanup();
        return 1;
    }
    close(mfd);
    self[sl] = '\0';
    char disk[sizeof(image) + 8];
    snprintf(disk, sizeof(disk), "%s", image);

    for (int i = 0; i < NROWS; i++) {
        fs_row_t *r = &rows[i];
        if (r->state == ST_OFF)
            continue;
        r->f = no_figures;
        if (!json)
            fprintf(stderr, "orrery: bench fs: %s...\n", row_names[i]);
        if (i == ROW_HOSTED) {
            char *av[] = {self, "run", "--disk", disk, "--manifest", manifest, NULL};
            run_os_row(r, row_names[i], av, image, mib);
        } else if (i == ROW_MICROVM) {
            char qemu[4096], img[4096];
            if (hq_find_qemu(qemu, sizeof(qemu)) != 0) {
                say(r->why, "no QEMU: qemu-system-x86_64 is not on PATH, or $ORRERY_QEMU is not "
                            "executable");
                r->state = ST_SKIPPED;
                continue;
            }
            if (hq_find_image(img, sizeof(img)) != 0) {
                say(r->why, "no image: orrery.elf is not next to orrery, or $ORRERY_IMAGE is "
                            "missing");
                r->state = ST_SKIPPED;
                continue;
            }
            char *av[] = {self,     "qemu", "--machine",  "microvm", "--accel", "tcg",
                          "--disk", disk,   "--manifest", manifest,  NULL};
            run_os_row(r, row_names[i], av, image, mib);
        } else {
            run_fuse(r, image, mnt, mib, bytes, (uint32_t)files);
        }
    }
    cleanup();

    int status = 0;
    for (int i = 0; i < NROWS; i++) {
        if (rows[i].state == ST_FAILED) {
            fprintf(stderr, "orrery: bench fs: %s: %s\n", row_names[i], rows[i].why);
            status = 1;
        }
    }
    if (json)
        print_json(rows, &base, mb, (uint32_t)files, mib);
    else
        print_text(rows, &base, mb, (uint32_t)files, mib);
    return status;
}
