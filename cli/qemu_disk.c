/* qemu_disk.c — `orrery qemu --disk FILE[,ro]`: a raw image file as the image's blk0 (virtio-blk);
 * and the default disk both run and qemu attach without --disk. */
#define _GNU_SOURCE
#include "qemu.h"

#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int hl_default_disk(char *out, size_t n)
{
    const char *env = getenv("ORRERY_DISK");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        if (strcmp(env, "none") == 0)
            return 1;
        return access(out, F_OK) == 0 ? 0 : -1;
    }
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        return -1;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, n, "%s/%s", self, HL_DEFAULT_DISK);
    return access(out, F_OK) == 0 ? 0 : -1;
}

int hq_disk_lock(const hq_disk_t *d, char *err, size_t errlen)
{
    int fd = open(d->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", d->path, strerror(errno));
        return -1;
    }
    if (flock(fd, (d->ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, errlen, "%s: in use: another run has the image open", d->path);
        else
            snprintf(err, errlen, "%s: %s", d->path, strerror(e));
        return -1;
    }
    return fd;
}

/*
 * The checks are the hosted device's (`orrery run --disk`): FILE exists, is a regular file
 * and holds a whole number of 512-byte sectors, at least one. ",ro" makes QEMU open it
 * read-only (readonly=on); the device then offers VIRTIO_BLK_F_RO and the image refuses
 * writes with OS_EACCES. QEMU opens FILE itself; nothing here writes to it.
 */
int hq_disk_parse(const char *arg, hq_disk_t *d, char *err, size_t errlen)
{
    const char *comma = strrchr(arg, ',');
    size_t n = strlen(arg);
    struct stat sb;

    memset(d, 0, sizeof(*d));
    if (comma && strcmp(comma, ",ro") == 0) {
        d->ro = true;
        n = (size_t)(comma - arg);
    }
    if (n == 0) {
        snprintf(err, errlen, "--disk needs a file name (FILE or FILE,ro)");
        return -1;
    }
    if (n >= sizeof(d->path)) {
        snprintf(err, errlen, "--disk %.64s...: the name is too long", arg);
        return -1;
    }
    memcpy(d->path, arg, n);
    d->path[n] = '\0';
    if (strchr(d->path, ',')) {
        /* QEMU's -drive would split it; and FILE,rw or the like is more likely a typo. */
        snprintf(err, errlen, "--disk %s: a comma in the file name (only ',ro' may follow it)",
                 arg);
        return -1;
    }
    if (stat(d->path, &sb) != 0) {
        snprintf(err, errlen, "--disk %s: %s", d->path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "--disk %s: not a regular file", d->path);
        return -1;
    }
    if (sb.st_size == 0 || sb.st_size % 512 != 0) {
        snprintf(err, errlen,
                 "--disk %s: %lld bytes: a disk image is a whole number of 512-byte sectors, "
                 "at least one",
                 d->path, (long long)sb.st_size);
        return -1;
    }
    d->sectors = (unsigned long long)sb.st_size / 512;
    return 0;
}

void hq_drive_arg(const hq_disk_t *d, char *out, size_t n)
{
    snprintf(out, n, "file=%s,format=raw,if=none,id=blk0%s", d->path, d->ro ? ",readonly=on" : "");
}
