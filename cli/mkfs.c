/* mkfs.c — `orrery mkfs DIR IMAGE`: an ext2 disk image holding DIR's files, made by mke2fs -d. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char mkfs_usage[] =
    "usage: orrery mkfs DIR IMAGE [--size N[K|M|G]] [--block-size 1024|4096] [--rev 0|1]\n"
    "                   [--label L]\n"
    "\n"
    "Make IMAGE, a new ext2 disk image holding the files, directories and symlinks of DIR\n"
    "(mke2fs -t ext2 -d DIR, from e2fsprogs), to boot with 'orrery run --disk IMAGE' or\n"
    "'orrery qemu --disk IMAGE'. IMAGE must not exist: it is written under a temporary name\n"
    "next to it and renamed into place once complete. Check it with 'e2fsck -fn IMAGE'.\n"
    "\n"
    "  --size N[K|M|G]      the image's size in bytes (a whole number of KiB, %d KiB to\n"
    "                       %d GiB); default: DIR's content with a quarter more, one MiB of\n"
    "                       room, rounded up to a MiB\n"
    "  --block-size B       1024 (default) or 4096 bytes per block\n"
    "  --rev R              ext2 revision: 1 (default; 256-byte inodes, features) or 0\n"
    "                       (the original layout: 128-byte inodes, no features)\n"
    "  --label L            the volume label, at most %d bytes\n"
    "  --help               this text\n"
    "\n"
    "mke2fs is looked for in $ORRERY_MKE2FS, then $PATH, /usr/sbin and /sbin. Exit status:\n"
    "0 made; 2 a usage error, a missing DIR or mke2fs, an existing IMAGE; 1 mke2fs failed.\n";

enum {
    MKFS_SIZE_MIN_KIB = 64,
    MKFS_SIZE_MAX_GIB = 1024,
    MKFS_LABEL_MAX = 16, /* ext2's s_volume_name */
    MKFS_DEPTH_MAX = 64, /* directories deep: past it DIR is refused (a loop of bind mounts) */
};

/* What DIR holds, for the default size and the inode count. */
typedef struct tally {
    uint64_t blocks; /* data and block-map blocks */
    uint64_t inodes; /* files, directories, symlinks */
} tally_t;

/* Blocks a file of `bytes` takes with its block map (ext2's indirect blocks: a bound). */
static uint64_t file_blocks(uint64_t bytes, uint64_t bs)
{
    uint64_t data = (bytes + bs - 1) / bs, per = bs / 4;
    return data + (data > 12 ? (data + per - 1) / per + 2 : 0);
}

static int walk(const char *dir, uint64_t bs, int depth, tally_t *t)
{
    DIR *d;
    struct dirent *e;
    uint64_t names = 0;
    int rc = 0;

    if (depth > MKFS_DEPTH_MAX) {
        fprintf(stderr, "orrery: mkfs: %s: more than %d directories deep\n", dir, MKFS_DEPTH_MAX);
        return -1;
    }
    if (!(d = opendir(dir))) {
        fprintf(stderr, "orrery: mkfs: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while (rc == 0 && (e = readdir(d))) {
        char path[PATH_MAX];
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        names += 8 + (strlen(e->d_name) + 3) / 4 * 4;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            fprintf(stderr, "orrery: mkfs: %s/%s: path too long\n", dir, e->d_name);
            rc = -1;
            break;
        }
        if (lstat(path, &sb) != 0) {
            fprintf(stderr, "orrery: mkfs: %s: %s\n", path, strerror(errno));
            rc = -1;
            break;
        }
        t->inodes++;
        if (S_ISDIR(sb.st_mode))
            rc = walk(path, bs, depth + 1, t);
        else if (S_ISREG(sb.st_mode))
            t->blocks += file_blocks((uint64_t)sb.st_size, bs);
        else if (S_ISLNK(sb.st_mode) && sb.st_size >= 60)
            t->blocks++; /* a short target lives in the inode */
    }
    closedir(d);
    t->blocks += (names + 24 + bs - 1) / bs; /* this directory's entries, "." and ".." */
    return rc;
}

/* mke2fs: $ORRERY_MKE2FS, else on $PATH, else in the sbin folders $PATH often lacks. */
static int find_mke2fs(char *out, size_t n)
{
    const char *env = getenv("ORRERY_MKE2FS");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        if (access(out, X_OK) == 0)
            return 0;
        fprintf(stderr, "orrery: mkfs: ORRERY_MKE2FS=%s is not executable\n", env);
        return -1;
    }
    const char *path = getenv("PATH");
    char dirs[8192];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin", path ? path : "");
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/mke2fs", dir);
        if (access(out, X_OK) == 0)
            return 0;
    }
    fprintf(stderr, "orrery: mkfs: mke2fs not found (on $PATH, /usr/sbin, /sbin): install "
                    "e2fsprogs (scripts/setup does)\n");
    return -1;
}

/* "64M", "1G", "1048576": bytes, a whole number of KiB within the limits. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    uint64_t mult = 1;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (*end) {
        if (end[1])
            return -1;
        switch (*end) {
        case 'K':
        case 'k':
            mult = 1024;
            break;
        case 'M':
        case 'm':
            mult = 1024 * 1024;
            break;
        case 'G':
        case 'g':
            mult = 1024ull * 1024 * 1024;
            break;
        default:
            return -1;
        }
    }
    if (v > ((uint64_t)MKFS_SIZE_MAX_GIB << 30) / mult)
        return -1;
    v *= mult;
    if (v % 1024 || v < MKFS_SIZE_MIN_KIB * 1024ull || v > (uint64_t)MKFS_SIZE_MAX_GIB << 30)
        return -1;
    *out = v;
    return 0;
}

/* Run argv, its output captured into msg (the last line, for one-line errors): its status. */
static int run_capture(char *const argv[], char *msg, size_t n)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t r;
    while ((r = read(p[0], buf + len, sizeof buf - 1 - len)) > 0 || (r < 0 && errno == EINTR))
        len += r > 0 ? (size_t)r : 0;
    close(p[0]);
    buf[len] = 0;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = 0;
    char *last = strrchr(buf, '\n');
    snprintf(msg, n, "%.*s", (int)(n - 1), last ? last + 1 : buf);
    int ws;
    while (waitpid(pid, &ws, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

int hl_cmd_mkfs(int argc, char **argv)
{
    enum { OPT_SIZE = 1000, OPT_BS, OPT_REV, OPT_LABEL };
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"size", required_argument, NULL, OPT_SIZE},
        {"block-size", required_argument, NULL, OPT_BS},
        {"rev", required_argument, NULL, OPT_REV},
        {"label", required_argument, NULL, OPT_LABEL},
        {NULL, 0, NULL, 0},
    };
    uint64_t size = 0, bs = 1024, rev = 1;
    const char *label = NULL;
    int c;

    while ((c = cli_getopt(argc, argv, "mkfs", opts)) != -1) {
        switch (c) {
        case 'h':
            printf(mkfs_usage, MKFS_SIZE_MIN_KIB, MKFS_SIZE_MAX_GIB, MKFS_LABEL_MAX);
            return 0;
        case OPT_SIZE:
            if (parse_size(optarg, &size) != 0)
                return cli_usage_error("mkfs",
                                       "mkfs: --size wants N[K|M|G], a whole number of KiB from "
                                       "%d KiB to %d GiB, not '%s'",
                                       MKFS_SIZE_MIN_KIB, MKFS_SIZE_MAX_GIB, optarg);
            break;
        case OPT_BS:
            if (strcmp(optarg, "1024") != 0 && strcmp(optarg, "4096") != 0)
                return cli_usage_error("mkfs", "mkfs: --block-size wants 1024 or 4096, not '%s'",
                                       optarg);
            bs = (uint64_t)atoi(optarg);
            break;
        case OPT_REV:
            if (strcmp(optarg, "0") != 0 && strcmp(optarg, "1") != 0)
                return cli_usage_error("mkfs", "mkfs: --rev wants 0 or 1, not '%s'", optarg);
            rev = (uint64_t)atoi(optarg);
            break;
        case OPT_LABEL:
            if (strlen(optarg) > MKFS_LABEL_MAX)
                return cli_usage_error("mkfs", "mkfs: --label: at most %d bytes, not %zu",
                                       MKFS_LABEL_MAX, strlen(optarg));
            label = optarg;
            break;
        default:
            return 2;
        }
    }
    if (argc - optind < 2)
        return cli_usage_error("mkfs", "mkfs: needs DIR and IMAGE");
    if (argc - optind > 2)
        return cli_usage_error("mkfs", "mkfs: unexpected argument '%s'", argv[optind + 2]);
    const char *dir = argv[optind], *image = argv[optind + 1];
    struct stat sb;

    if (!*dir || !*image)
        return cli_usage_error("mkfs", "mkfs: DIR and IMAGE must not be empty");
    if (stat(dir, &sb) != 0) {
        fprintf(stderr, "orrery: mkfs: %s: %s\n", dir, strerror(errno));
        return 2;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "orrery: mkfs: %s: not a directory\n", dir);
        return 2;
    }
    if (lstat(image, &sb) == 0) {
        fprintf(stderr,
                "orrery: mkfs: %s: already exists; refusing to replace it (choose a new name)\n",
                image);
        return 2;
    }
    if (errno != ENOENT) {
        fprintf(stderr, "orrery: mkfs: %s: %s\n", image, strerror(errno));
        return 2;
    }
    char mke2fs[4096];
    if (find_mke2fs(mke2fs, sizeof mke2fs) != 0)
        return 2;

    tally_t t = {0, 0};
    if (walk(dir, bs, 0, &t) != 0)
        return 2;
    /* inodes: DIR's, the reserved ones, and room for as many again */
    uint64_t inodes = (t.inodes + 16) * 2 + 64;
    if (size == 0) {
        uint64_t inode_bytes = inodes * (rev ? 256 : 128);
        uint64_t need = t.blocks * bs + t.blocks * bs / 4 + inode_bytes + (1u << 20);
        size = (need + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    }

    /* A name of our own next to IMAGE: the rename into place stays on one file system. */
    char tmp[PATH_MAX];
    const char *slash = strrchr(image, '/');
    int dlen = slash ? (int)(slash - image + 1) : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.%s.mkfs-XXXXXX", dlen, image, image + dlen) >=
        (int)sizeof tmp) {
        fprintf(stderr, "orrery: mkfs: %s: the name is too long\n", image);
        return 2;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "orrery: mkfs: %s: cannot make a file next to it: %s\n", image,
                strerror(errno));
        return 2;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || ftruncate(fd, (off_t)size) != 0) {
        fprintf(stderr, "orrery: mkfs: %s: %s\n", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return 1;
    }
    close(fd);

    char bs_s[16], rev_s[8], inodes_s[24], msg[1024];
    snprintf(bs_s, sizeof bs_s, "%llu", (unsigned long long)bs);
    snprintf(rev_s, sizeof rev_s, "%llu", (unsigned long long)rev);
    snprintf(inodes_s, sizeof inodes_s, "%llu", (unsigned long long)inodes);
    char *args[20];
    int a = 0;
    args[a++] = mke2fs;
    args[a++] = "-q";
    args[a++] = "-F";
    args[a++] = "-t";
    args[a++] = "ext2";
    args[a++] = "-b";
    args[a++] = bs_s;
    args[a++] = "-r";
    args[a++] = rev_s;
    args[a++] = "-N";
    args[a++] = inodes_s;
    if (label) {
        args[a++] = "-L";
        args[a++] = (char *)label;
    }
    args[a++] = "-d";
    args[a++] = (char *)dir;
    args[a++] = tmp;
    args[a] = NULL;
    int st = run_capture(args, msg, sizeof msg);
    if (st != 0) {
        unlink(tmp); /* ours: made by mkstemp above */
        if (st < 0)
            fprintf(stderr, "orrery: mkfs: running %s: %s\n", mke2fs, strerror(errno));
        else
            fprintf(stderr, "orrery: mkfs: mke2fs failed (status %d): %s\n", st,
                    msg[0] ? msg : "no message");
        return 1;
    }
    /* Never over a path that appeared meanwhile: the rename refuses an existing IMAGE. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, image, RENAME_NOREPLACE) != 0) {
        int e = errno;
        unlink(tmp);
        fprintf(stderr, "orrery: mkfs: %s: %s\n", image,
                e == EEXIST ? "appeared while the image was made; not replaced" : strerror(e));
        return e == EEXIST ? 2 : 1;
    }
    printf("orrery: mkfs: %s: ext2 revision %llu, %llu-byte blocks, %llu KiB, %llu inodes, %llu "
           "entries from %s\n",
           image, (unsigned long long)rev, (unsigned long long)bs,
           (unsigned long long)(size / 1024), (unsigned long long)inodes,
           (unsigned long long)t.inodes, dir);
    return 0;
}
