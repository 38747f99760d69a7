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
    if (load_disk(&sc->disk, dir, err, errlen) != 0)
        return sc->disk.line;
    for (size_t i = 0; i < sc->npeers; i++)
        if (load_disk(&sc->peers[i].disk, dir, err, errlen) != 0)
            return sc->peers[i].disk.line;
    return 0;
}
