/* qemu_net.c — `orrery qemu --net` and `--pcap`: QEMU's user network for the image's net0, and a
 * capture of its frames. */
#define _GNU_SOURCE
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * --net takes the hosted syntax (hl_net_parse, hal-linux/net_opt.c) and hands the rules to
 * QEMU's own slirp as `-netdev user,id=net0,hostfwd=...`, rewritten in QEMU's spelling
 * (`localhost` becomes 127.0.0.1, the guest address is always written out). Nothing is
 * restricted: the guest reaches what the host reaches, as with `orrery run --net user`.
 *
 * --pcap FILE: QEMU's filter-dump writes every frame of net0, both ways, as a pcap file.
 * FILE is never a file we did not write: one that exists must start with a pcap magic
 * number, else it is refused and left alone (the rule of trace/outpath.c). The capture
 * goes to FILE.partial, created here (O_EXCL) and locked while QEMU writes it; QEMU opens
 * it as /dev/fd/N of the descriptor it inherits, so it writes the very file we created,
 * whatever happens to the name meanwhile. It is renamed over FILE when QEMU is done.
 */

void hq_netdev_arg(const hl_net_config_t *net, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "user,id=net0");

    for (unsigned i = 0; i < net->nfwd && len < n; i++) {
        const hl_hostfwd_t *f = &net->fwd[i];
        char host[16] = "";
        uint32_t g = f->guest_addr;
        if (f->host_addr)
            snprintf(host, sizeof(host), "%u.%u.%u.%u", f->host_addr >> 24,
                     (f->host_addr >> 16) & 255, (f->host_addr >> 8) & 255, f->host_addr & 255);
        len += (size_t)snprintf(out + len, n - len, ",hostfwd=%s:%s:%u-%u.%u.%u.%u:%u",
                                f->udp ? "udp" : "tcp", host, f->host_port, g >> 24,
                                (g >> 16) & 255, (g >> 8) & 255, g & 255, f->guest_port);
    }
}

static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

/* 1: a regular file beginning with a pcap magic number (micro- or nanosecond, either byte
 * order); 0: not one (why says what it is); -1: cannot tell (why says why). */
static int is_pcap(const char *path, char *why, size_t whylen)
{
    static const uint32_t magics[] = {0xa1b2c3d4u, 0xd4c3b2a1u, 0xa1b23c4du, 0x4d3cb2a1u};
    struct stat sb;
    uint32_t m = 0;
    ssize_t r;
    int fd;

    if (stat(path, &sb) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(why, whylen, "%s", kind(sb.st_mode));
        return 0;
    }
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "cannot read it: %s", strerror(errno));
        return -1;
    }
    r = pread(fd, &m, sizeof(m), 0);
    close(fd);
    if (r < 0) {
        snprintf(why, whylen, "cannot read it: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; r == (ssize_t)sizeof(m) && i < sizeof(magics) / sizeof(magics[0]); i++)
        if (m == magics[i])
            return 1;
    snprintf(why, whylen, "%s", r == 0 ? "an empty file" : "no pcap magic number");
    return 0;
}

int hq_pcap_prepare(hq_pcap_t *p, const char *path, char *err, size_t errlen)
{
    char why[200];
    struct stat sb;
    int rc, fd;

    memset(p, 0, sizeof(*p));
    p->fd = -1;
    if (!*path)
        return refuse(err, errlen, "--pcap needs a file name");
    if (strlen(path) + sizeof(".partial") > sizeof(p->target))
        return refuse(err, errlen, "--pcap %.64s...: the name is too long", path);
    snprintf(p->target, sizeof(p->target), "%s", path);
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT)
            return refuse(err, errlen, "--pcap %s: %s", path, strerror(errno));
    } else if (S_ISLNK(sb.st_mode)) {
        /* The link stays; its target is judged and replaced. */
        if (!realpath(path, p->target))
            return refuse(err, errlen,
                          "--pcap %s: a symbolic link to %s: give the name of the file to write",
                          path, errno == ENOENT ? "a missing file" : strerror(errno));
    }
    if (stat(p->target, &sb) == 0) {
        rc = is_pcap(p->target, why, sizeof(why));
        if (rc != 1)
            return refuse(err, errlen,
                          "--pcap %s: exists and %s a pcap file (%s): refusing to "
                          "replace it",
                          path, rc == 0 ? "is not" : "may not be", why);
        p->replaces = true;
        p->mode = sb.st_mode & 07777;
    }
    snprintf(p->partial, sizeof(p->partial), "%s.partial", p->target);
    if (lstat(p->partial, &sb) == 0) {
        /* An earlier capture's leftover: ours if it is a pcap (or empty) nobody writes. */
        if (!S_ISREG(sb.st_mode))
            return refuse(err, errlen, "--pcap %s: %s exists and is %s: refusing to touch it", path,
                          p->partial, kind(sb.st_mode));
        fd = open(p->partial, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return refuse(err, errlen, "--pcap %s: %s: %s", path, p->partial, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            return refuse(err, errlen, "--pcap %s: another capture into %s is under way", path,
                          p->partial);
        }
        rc = sb.st_size == 0 ? 1 : is_pcap(p->partial, why, sizeof(why));
        if (rc != 1) {
            close(fd);
            return refuse(err, errlen,
                          "--pcap %s: %s exists and is not a pcap file (%s): "
                          "refusing to touch it",
                          path, p->partial, why);
        }
        unlink(p->partial);
        close(fd);
    }
    fd = open(p->partial, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return refuse(err, errlen, "--pcap %s: cannot create %s: %s", path, p->partial,
                      errno == EEXIST ? "it appeared meanwhile (another capture?)"
                                      : strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno;
        close(fd);
        unlink(p->partial);
        return refuse(err, errlen, "--pcap %s: cannot lock %s: %s", path, p->partial, strerror(rc));
    }
    p->fd = fd;
    return 0;
}

int hq_pcap_finish(hq_pcap_t *p, char *err, size_t errlen)
{
    struct stat sb;
    int ret = 0;

    if (p->fd < 0)
        return 0;
    if (fstat(p->fd, &sb) == 0 && sb.st_size == 0) {
        unlink(p->partial); /* QEMU never started the capture: nothing to keep */
    } else {
        if (p->replaces)
            (void)fchmod(p->fd, p->mode);
        if (rename(p->partial, p->target) != 0)
            ret = refuse(err, errlen, "--pcap %s: cannot rename %s to it: %s", p->target,
                         p->partial, strerror(errno));
    }
    close(p->fd);
    p->fd = -1;
    return ret;
}

void hq_pcap_release(hq_pcap_t *p)
{
    if (p->fd < 0)
        return;
    unlink(p->partial);
    close(p->fd);
    p->fd = -1;
}

void hq_print_http_urls(const hl_net_config_t *net, FILE *out)
{
    for (unsigned i = 0; net && i < net->nfwd; i++) {
        const hl_hostfwd_t *f = &net->fwd[i];
        if (f->udp || f->guest_port != 80)
            continue;
        uint32_t a = f->host_addr ? f->host_addr : 0x7f000001u; /* any address: loopback too */
        fprintf(out, "orrery: httpd: http://%u.%u.%u.%u:%u/\n", (unsigned)(a >> 24),
                (unsigned)(a >> 16 & 255), (unsigned)(a >> 8 & 255), (unsigned)(a & 255),
                (unsigned)f->host_port);
    }
}
