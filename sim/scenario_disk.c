/* scenario_disk.c — the disk a scenario names (`disk IMAGE|zero|ext2`), made or read once per
 * sweep. */
#define _GNU_SOURCE
#include <sim/blk.h>
#include <sim/scenario.h>

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/*
 * `disk ext2 size=S`: the host's mke2fs makes the volume in a temporary file of ours, with
 * every choice it would draw at random fixed (UUID, directory hash seed, the time it stamps),
 * so the same e2fsprogs gives the same image byte for byte, every sweep. Blocks of 1 KiB (a
 * small disk's), the default revision-1 features of an ext2 volume.
 */
static int make_ext2(scn_disk_t *d, const char *dir, char *err, size_t errlen)
{
    /* `from=DIR`: the volume holds DIR's files (mke2fs -d), as the default disk holds disk/ */
    char from[2 * SCN_PATH_MAX + 2] = "";
    if (d->from[0] == '/' || dir == NULL || dir[0] == '\0')
        snprintf(from, sizeof from, "%s", d->from);
    else if (d->from[0])
        snprintf(from, sizeof from, "%s/%s", dir, d->from);
    char tmp[] = "/tmp/orrery-sim-disk-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "disk ext2: cannot create a temporary file: %s", strerror(errno));
        return -1;
    }
    int rc = -1;
    if (ftruncate(fd, (off_t)d->size) != 0) {
        snprintf(err, errlen, "disk ext2: %s: %s", tmp, strerror(errno));
        goto out;
    }
    char *argv[] = {"mke2fs",
                    "-q",
                    "-F",
                    "-t",
                    "ext2",
                    "-b",
                    "1024",
                    "-U",
                    "6f727265-7279-4f53-8000-000000000001",
                    "-E",
                    "hash_seed=6f727265-7279-4f53-8000-000000000002,root_owner=0:0",
                    tmp,
                    NULL,
                    NULL,
                    NULL};
    if (from[0]) {
        struct stat st;
        if (stat(from, &st) != 0) {
            snprintf(err, errlen, "disk ext2 from=%s: %s", from, strerror(errno));
            goto out;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "disk ext2 from=%s: not a folder", from);
            goto out;
        }
        argv[11] = "-d";
        argv[12] = from;
        argv[13] = tmp;
    }
    /* the environment, with PATH reaching the sbin folders and the time fixed */
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    const char *path = getenv("PATH");
    char *pathv = NULL;
    if (!env || asprintf(&pathv, "PATH=%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin") < 0) {
        free(env);
        snprintf(err, errlen, "disk ext2: out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PATH=", 5) != 0 && strncmp(environ[i], "E2FSPROGS_FAKE_TIME=", 20))
            env[k++] = environ[i];
    env[k++] = pathv;
    env[k++] = "E2FSPROGS_FAKE_TIME=1700000000";
    env[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    /* posix_spawnp searches the caller's PATH: name the sbin folders ourselves too */
    int sp = ENOENT;
    static const char *const where[] = {NULL, "/usr/sbin/mke2fs", "/sbin/mke2fs"};
    for (size_t i = 0; i < sizeof where / sizeof where[0] && sp == ENOENT; i++)
        sp = where[i] ? posix_spawn(&pid, where[i], &fa, NULL, argv, env)
                      : posix_spawnp(&pid, "mke2fs", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(pathv);
    free(env);
    if (sp != 0) {
        snprintf(err, errlen, "disk ext2: cannot run mke2fs (e2fsprogs): %s", strerror(sp));
        goto out;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(err, errlen,
                 "disk ext2 size=%llu: mke2fs failed (status %d; its message is above)",
                 (unsigned long long)d->size, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        goto out;
    }
    d->image = sim_disk_open(tmp, err, errlen);
    rc = d->image ? 0 : -1;
out:
    close(fd);
    unlink(tmp); /* ours: made by mkstemp above */
    return rc;
}

/* One disk: made or read into d->image. 0 (also without a disk), or -1 with err. */
static int load_disk(scn_disk_t *d, const char *dir, char *err, size_t errlen)
{
    if (d->kind == SCN_DISK_NONE || d->image)
        return 0;
    if (d->kind == SCN_DISK_ZERO) {
        d->image = sim_disk_new(d->size / 512);
        if (!d->image)
            snprintf(err, errlen, "disk zero: out of memory for %llu bytes",
                     (unsigned long long)d->size);
    } else if (d->kind == SCN_DISK_EXT2) {
        make_ext2(d, dir, err, errlen);
    } else {
        char path[2 * SCN_PATH_MAX + 2];
        if (d->path[0] == '/' || dir == NULL || dir[0] == '\0')
            snprintf(path, sizeof path, "%s", d->path);
        else
            snprintf(path, sizeof path, "%s/%s", dir, d->path);
        d->image = sim_disk_open(path, err, errlen);
    }
    return d->image ? 0 : -1;
}

int sim_scenario_load_disk(sim_scenario_t *sc, const char *dir, char *err, size_t errlen)
{
    for (size_t n = 0; n < sim_scenario_node_count(sc); n++) {
        scn_disk_t *d = sim_scenario_node_disk(sc, n);
        if (load_disk(d, dir, err, errlen) != 0) {
            if (sc->cluster) { /* `nodes` makes several disks on one line: name the node */
                char why[400];
                snprintf(why, sizeof why, "%s", err);
                snprintf(err, errlen, "node %s: %s", sim_scenario_node_name(sc, n), why);
            }
            return d->line;
        }
    }
    return 0;
}

/* Run a host tool (argv[0] from PATH, else the sbin folders) with stdout and stderr into fd;
 * its exit status, or -1 with err when it cannot run. */
static int run_tool(char *const argv[], int fd, char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    pid_t pid;
    char sbin[64], usbin[64];
    snprintf(sbin, sizeof sbin, "/sbin/%s", argv[0]);
    snprintf(usbin, sizeof usbin, "/usr/sbin/%s", argv[0]);
    int sp = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    if (sp == ENOENT)
        sp = posix_spawn(&pid, usbin, &fa, NULL, argv, environ);
    if (sp == ENOENT)
        sp = posix_spawn(&pid, sbin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (sp != 0) {
        snprintf(err, errlen, "cannot run %s (e2fsprogs): %s", argv[0], strerror(sp));
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int sim_disk_fsck(sim_disk_t *d, char *err, size_t errlen)
{
    char img[] = "/tmp/orrery-sim-fsck-XXXXXX", log[] = "/tmp/orrery-sim-fsck-log-XXXXXX";
    int ifd = mkstemp(img);
    int lfd = ifd >= 0 ? mkstemp(log) : -1;
    int rc = -1;
    if (ifd < 0 || lfd < 0) {
        snprintf(err, errlen, "e2fsck: cannot create a temporary file: %s", strerror(errno));
        goto out;
    }
    sim_disk_flush(d);
    const uint8_t *m = sim_disk_medium(d);
    size_t len = (size_t)sim_disk_sectors(d) * 512;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(ifd, m + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "e2fsck: %s: %s", img, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    char *argv[] = {"e2fsck", "-fn", img, NULL};
    int st = run_tool(argv, lfd, err, errlen);
    if (st < 0)
        goto out;
    if (st == 0) {
        rc = 0;
        goto out;
    }
    /* what it found: the first lines that are neither its banner, a pass nor a declined fix */
    char buf[4096], what[300] = "";
    ssize_t n = pread(lfd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    size_t wl = 0;
    for (char *line = strtok(buf, "\n"); line && wl < 200; line = strtok(NULL, "\n")) {
        if (strncmp(line, "Pass ", 5) == 0 || strncmp(line, "e2fsck ", 7) == 0 ||
            strncmp(line, "Fix? no", 7) == 0 || strstr(line, "-n option") || !line[0] ||
            strncmp(line, img, strlen(img)) == 0 || strncmp(line, "Warning:", 8) == 0)
            continue;
        char *fix = strstr(line, "  Fix? ");
        if (fix)
            *fix = '\0'; /* -n declines every fix: the question says nothing */
        wl += (size_t)snprintf(what + wl, sizeof what - wl, "%s%s", wl ? "; " : "", line);
    }
    snprintf(err, errlen, "e2fsck -fn on its disk after the run exited %d: %s", st,
             what[0] ? what : "(no message)");
out:
    if (ifd >= 0) {
        close(ifd);
        unlink(img); /* ours: made by mkstemp above */
    }
    if (lfd >= 0) {
        close(lfd);
        unlink(log); /* ours */
    }
    return rc;
}
