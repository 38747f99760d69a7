/* qemu.c — `orrery qemu`: boot the bare-metal image (build/orrery.elf) under QEMU on this terminal.
 */
#define _GNU_SOURCE
#include "qemu.h"

#include <hl/commands.h>
#include <image.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static const char qemu_usage[] =
    "usage: orrery qemu [--machine q35|microvm] [--accel kvm|tcg|auto] [--manifest FILE]\n"
    "                   [--gdb] [--append ARGS] [--verbose] [--trace FILE.db]\n"
    "\n"
    "Boot the bare-metal image (orrery.elf next to this binary, or $ORRERY_IMAGE) under\n"
    "qemu-system-x86_64 (or $ORRERY_QEMU), serial console on this terminal.\n"
    "\n"
    "  --machine M      q35 (virtio-pci, default) or microvm (virtio-mmio, fastest boot)\n"
    "  --accel A        kvm, tcg, or auto (default: kvm when /dev/kvm works)\n"
    "  --manifest FILE  boot manifest instead of the built-in one (checked first;\n"
    "                   passed to the image as fw_cfg file opt/orrery/manifest)\n"
    "  --gdb            start QEMU's gdb stub on :1234, stopped; prints how to attach\n"
    "  --append ARGS    extra kernel command line words (verbose, rngtest)\n"
    "  --verbose        print the QEMU command line\n"
    "  --trace FILE.db  record every IPC event into a SQLite trace: the image streams\n"
    "                   binary frames on its second serial port (COM2), imported as they\n"
    "                   arrive (docs/trace-format.md; read it with 'orrery trace', replay a\n"
    "                   server with 'orrery replay'); written to FILE.db.partial, renamed\n"
    "                   once complete; an existing FILE.db must be an Orrery trace (else\n"
    "                   refused, exit 2)\n"
    "\n"
    "Input from a pipe works as with 'orrery run': lines are sent once the OS is ready,\n"
    "and the end of input reaches the shell as end of file. The exit status is the OS's\n"
    "(shutdown N); 2 for usage errors or a missing QEMU or image.\n";

int hq_find_image(char *out, size_t n)
{
    const char *env = getenv("ORRERY_IMAGE");
    char self[4096];
    ssize_t len;

    if (env && *env) {
        snprintf(out, n, "%s", env);
    } else {
        len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len <= 0) {
            fprintf(stderr, "orrery: qemu: cannot find this binary: %s\n", strerror(errno));
            return -1;
        }
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(out, n, "%s/orrery.elf", self);
    }
    if (access(out, R_OK) != 0) {
        fprintf(stderr,
                "orrery: qemu: no bare-metal image at %s (build it: scripts/build, or set "
                "ORRERY_IMAGE)\n",
                out);
        return -1;
    }
    return 0;
}

int hq_find_qemu(char *out, size_t n)
{
    const char *env = getenv("ORRERY_QEMU");
    const char *path = getenv("PATH");

    if (env && *env) {
        snprintf(out, n, "%s", env);
        if (access(out, X_OK) == 0)
            return 0;
        fprintf(stderr, "orrery: qemu: ORRERY_QEMU=%s is not executable\n", env);
        return -1;
    }
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        snprintf(out, n, "%.*s/qemu-system-x86_64", (int)len, p);
        if (len && access(out, X_OK) == 0)
            return 0;
        p += len + (end ? 1 : 0);
    }
    fprintf(stderr, "orrery: qemu: qemu-system-x86_64 not found in PATH (install the "
                    "qemu-system-x86 package, or set ORRERY_QEMU)\n");
    return -1;
}

bool hq_kvm_usable(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    bool ok;

    if (fd < 0)
        return false;
    ok = ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
    close(fd);
    return ok;
}

int hq_build_argv(const hq_opts_t *o, char **argv, int max)
{
    static char pool[8][4200];
    int n = 0, p = 0;
#define ARG(s) (n < max - 1 ? (argv[n++] = (char *)(s)) : NULL)

    ARG(o->qemu);
    if (strcmp(o->machine, "microvm") == 0) {
        /* No option ROMs, modern (version 2) virtio-mmio transports. */
        ARG("-machine");
        ARG("microvm,x-option-roms=off");
        ARG("-global");
        ARG("virtio-mmio.force-legacy=false");
    } else {
        ARG("-machine");
        ARG("q35");
        /* Keep SeaBIOS off the serial line (it would print and read keys there). */
        ARG("-fw_cfg");
        ARG("name=etc/sercon-port,string=0");
    }
    ARG("-accel");
    ARG(o->accel);
    if (strcmp(o->accel, "kvm") == 0) {
        ARG("-cpu");
        ARG("host");
    }
    ARG("-m");
    ARG("128M");
    ARG("-nodefaults");
    ARG("-no-user-config");
    ARG("-display");
    ARG("none");
    ARG("-no-reboot");
    ARG("-serial");
    ARG("stdio");
    ARG("-device");
    ARG("isa-debug-exit,iobase=0xf4,iosize=0x04");
    ARG("-device");
    ARG(strcmp(o->machine, "microvm") == 0 ? "virtio-rng-device" : "virtio-rng-pci");
    if (o->trace_fd > 0) {
        /* COM2 as an explicit isa-serial: microvm only creates COM1 from -serial. */
        snprintf(pool[p], sizeof(pool[p]), "file,id=trace,path=/dev/fd/%d", o->trace_fd);
        ARG("-chardev");
        ARG(pool[p++]);
        ARG("-device");
        ARG("isa-serial,chardev=trace,iobase=0x2f8,irq=3");
        ARG("-fw_cfg");
        ARG("name=opt/orrery/trace,string=com2");
    }
    if (o->manifest_path) {
        snprintf(pool[p], sizeof(pool[p]), "name=opt/orrery/manifest,file=%s", o->manifest_path);
        ARG("-fw_cfg");
        ARG(pool[p++]);
    }
    if (o->gdb) {
        ARG("-s");
        ARG("-S");
    }
    ARG("-kernel");
    ARG(o->image);
    snprintf(pool[p], sizeof(pool[p]), "%s%s%s", o->tty ? "tty" : "",
             o->tty && o->append ? " " : "", o->append ? o->append : "");
    if (pool[p][0]) {
        ARG("-append");
        ARG(pool[p++]);
    }
    argv[n] = NULL;
#undef ARG
    return n;
}

int hq_os_status(int ws, const char **why)
{
    int code;

    *why = NULL;
    if (WIFSIGNALED(ws)) {
        *why = "QEMU was killed by a signal";
        return -1;
    }
    code = WEXITSTATUS(ws);
    if (code >= 3 && (code & 1))
        return (code - 3) / 2;
    *why = code == 0 ? "the machine stopped without an exit status (triple fault, or QEMU quit)"
                     : "QEMU failed";
    return -1;
}

static pid_t child;
static volatile sig_atomic_t stop_asked; /* SIGINT or SIGTERM: shut the OS down cleanly */
static bool relaying;
static int trace_wfd = -1; /* --trace: the pipe's write end, for QEMU alone */
static pid_t parent_pid;

/*
 * In the forked child, before exec. QEMU dies with us (SIGKILL of orrery must
 * not leave a machine running) and inherits the trace pipe's write end.
 */
static void child_setup(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid)
        _exit(127); /* we died before the prctl */
    if (trace_wfd >= 0)
        fcntl(trace_wfd, F_SETFD, 0);
}

/* In the parent after fork: QEMU holds the only write end, so its exit ends the import. */
static void parent_after_fork(void)
{
    if (trace_wfd >= 0) {
        close(trace_wfd);
        trace_wfd = -1;
    }
}

/* Fork and exec QEMU with stdin/stdout/stderr on these fds (-1: inherited). 0, or -1 after
 * printing why. In the child, an exec failure exits 127. */
static int start_qemu(char **argv, int in_fd, int out_fd, int err_fd)
{
    parent_pid = getpid();
    child = fork();
    if (child < 0) {
        perror("orrery: qemu: fork");
        return -1;
    }
    if (child == 0) {
        child_setup();
        if (in_fd >= 0)
            dup2(in_fd, 0);
        if (out_fd >= 0)
            dup2(out_fd, 1);
        if (err_fd >= 0)
            dup2(err_fd, 2);
        execv(argv[0], argv);
        fprintf(stderr, "orrery: qemu: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    parent_after_fork();
    return 0;
}

/*
 * Hosted, SIGINT and SIGTERM are a clean exit. Relaying, we send the OS end of
 * input (the shell shuts down with status 0) and give it 10 s; on a terminal,
 * QEMU got the signal too (same process group) and we only make sure it ends.
 */
static void on_signal(int sig)
{
    char msg[80];
    int n;

    if (stop_asked)
        return;
    /* The hosted wording; on a terminal the line follows the echoed ^C. */
    n = snprintf(msg, sizeof(msg), "%sorrery: %s received, shutting down\n", isatty(2) ? "\n" : "",
                 sig == SIGINT    ? "SIGINT"
                 : sig == SIGTERM ? "SIGTERM"
                                  : "signal");
    if (write(2, msg, (size_t)n) < 0) {
        /* nothing to do about it */
    }
    stop_asked = 1;
    if (!relaying && child > 0)
        kill(child, SIGTERM);
}

/* Write all of buf to fd; false on error. */
static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        len -= (size_t)w;
    }
    return true;
}

/*
 * Not a terminal: relay both ways. QEMU's serial input has no end of file,
 * and bytes that arrive while the firmware runs may be lost, so we hold our
 * input until the OS prints its boot line, then pass it on, and send ^D
 * (which the image posts as end of input) when our stdin ends.
 */
/* QEMU's stderr, minus the one warning our own -fw_cfg etc/sercon-port always causes. */
static void pass_stderr(int fd, char *acc, size_t *alen)
{
    ssize_t r = read(fd, acc + *alen, 4095 - *alen);
    char *nl;

    if (r <= 0) {
        if (*alen)
            write_all(2, acc, *alen);
        *alen = 0;
        return;
    }
    *alen += (size_t)r;
    acc[*alen] = '\0';
    while ((nl = strchr(acc, '\n')) != NULL || *alen == 4095) {
        size_t n = nl ? (size_t)(nl - acc) + 1 : *alen;
        if (!memmem(acc, n, "externally provided fw_cfg item names", 37))
            write_all(2, acc, n);
        memmove(acc, acc + n, *alen - n + 1);
        *alen -= n;
    }
}

static int relay(char **argv)
{
    int in[2], out[2], err[2], ws = 0;
    char errbuf[4096];
    size_t errlen = 0;
    bool err_open = true;
    char buf[65536], tail[16] = "";
    const char *marker = "[boot] ready";
    bool ready = false, in_open = true, eof_sent = false;
    char *pending = NULL;
    size_t plen = 0, pcap = 0, poff = 0;
    time_t start = time(NULL), stop_deadline = 0;

    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        perror("orrery: qemu: pipe");
        return 2;
    }
    if (start_qemu(argv, in[0], out[1], err[1]) != 0)
        return 2;
    close(in[0]);
    close(out[1]);
    close(err[1]);
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        struct pollfd fds[4] = {{out[0], POLLIN, 0}, {-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0}};
        int nfds = 1;
        if (in_open && plen < (1u << 24)) {
            fds[1].fd = 0;
            fds[1].events = POLLIN;
        }
        if (ready && (poff < plen || (!in_open && !eof_sent))) {
            fds[2].fd = in[1];
            fds[2].events = POLLOUT;
        }
        if (err_open) {
            fds[3].fd = err[0];
            fds[3].events = POLLIN;
        }
        nfds = 4;
        if (stop_asked == 1) {
            stop_asked = 2;
            stop_deadline = time(NULL) + 10;
            if (ready) {
                poff = plen = 0; /* pending input is dropped: end it now */
                in_open = false;
                eof_sent = true;
                write_all(in[1], "\x04", 1);
            } else {
                kill(child, SIGTERM); /* still booting: nothing to shut down cleanly */
            }
        }
        if (stop_deadline && time(NULL) > stop_deadline) {
            kill(child, SIGKILL);
            stop_deadline = 0;
        }
        if (poll(fds, (nfds_t)nfds, ready && !stop_deadline ? -1 : 1000) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!ready && time(NULL) - start > 60)
            ready = true; /* no boot line (an old image?): send the input anyway */
        if (fds[3].revents) {
            size_t before = errlen;
            pass_stderr(err[0], errbuf, &errlen);
            if (fds[3].revents & (POLLHUP | POLLERR) && !(fds[3].revents & POLLIN) &&
                before == errlen)
                err_open = false;
        }
        if (fds[0].revents) {
            ssize_t r = read(out[0], buf, sizeof(buf));
            if (r <= 0)
                break; /* QEMU closed its side: it is exiting */
            write_all(1, buf, (size_t)r);
            if (!ready) {
                /* Look for the marker, also across read boundaries. */
                char scan[sizeof(buf) + sizeof(tail)];
                size_t tl = strlen(tail);
                memcpy(scan, tail, tl);
                memcpy(scan + tl, buf, (size_t)r);
                scan[tl + (size_t)r] = '\0';
                if (memmem(scan, tl + (size_t)r, marker, strlen(marker)))
                    ready = true;
                size_t keep = tl + (size_t)r < sizeof(tail) - 1 ? tl + (size_t)r : sizeof(tail) - 1;
                memcpy(tail, scan + tl + (size_t)r - keep, keep);
                tail[keep] = '\0';
            }
        }
        if (fds[1].revents) {
            if (plen + sizeof(buf) > pcap) {
                pcap = (plen + sizeof(buf)) * 2;
                pending = realloc(pending, pcap);
                if (!pending) {
                    perror("orrery: qemu");
                    break;
                }
            }
            ssize_t r = read(0, pending + plen, sizeof(buf));
            if (r > 0)
                plen += (size_t)r;
            else if (r == 0 || errno != EINTR)
                in_open = false;
        }
        if (fds[2].revents & POLLOUT) {
            if (poff < plen) {
                ssize_t w = write(in[1], pending + poff, plen - poff);
                if (w > 0)
                    poff += (size_t)w;
                if (poff == plen)
                    poff = plen = 0;
            } else if (!in_open && !eof_sent) {
                write_all(in[1], "\x04", 1);
                eof_sent = true;
            }
        } else if (fds[2].revents & (POLLERR | POLLHUP)) {
            poff = plen = 0;
            in_open = false;
            eof_sent = true;
        }
    }
    free(pending);
    close(in[1]);
    close(out[0]);
    while (err_open) {
        size_t before = errlen;
        struct pollfd p = {err[0], POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0)
            break;
        pass_stderr(err[0], errbuf, &errlen);
        if (!(p.revents & POLLIN) || (before == errlen && errlen == 0 && !(p.revents & POLLIN)))
            break;
        if (p.revents & POLLHUP && !(p.revents & POLLIN))
            break;
    }
    close(err[0]);
    while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
        ;
    return ws;
}

/* A terminal: QEMU takes it over directly; only its stderr passes through our filter. */
static int direct(char **argv)
{
    int err[2], ws = 0;
    char errbuf[4096];
    size_t errlen = 0;

    if (pipe2(err, O_CLOEXEC) != 0) {
        perror("orrery: qemu: pipe");
        return 2;
    }
    if (start_qemu(argv, -1, -1, err[1]) != 0)
        return 2;
    close(err[1]);
    for (;;) {
        struct pollfd p = {err[0], POLLIN, 0};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!(p.revents & POLLIN))
            break; /* QEMU closed its stderr: it has exited */
        pass_stderr(err[0], errbuf, &errlen);
    }
    close(err[0]);
    while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
        ;
    return ws;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(buf = malloc((size_t)n + 1))) {
        fclose(f);
        return NULL;
    }
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

int hl_cmd_qemu(int argc, char **argv)
{
    static char image[4096], qemu[4096];
    hq_opts_t o = {.machine = "q35", .accel = "auto"};
    bool verbose = false;
    const char *trace_path = NULL;
    char *manifest_text = NULL;
    size_t manifest_len = 0;
    hq_trace_t trace = {0};
    char *qargv[64];
    const char *why;
    int ws, status;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *names[] = {"--machine", "--accel", "--manifest", "--append", "--trace"};
        const char *val = NULL;
        int which = -1;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(qemu_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--gdb") == 0) {
            o.gdb = true;
            continue;
        }
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = true;
            continue;
        }
        for (int k = 0; k < 5; k++) {
            size_t nl = strlen(names[k]);
            if (strncmp(a, names[k], nl) == 0 && (a[nl] == '\0' || a[nl] == '=')) {
                which = k;
                if (a[nl] == '=')
                    val = a + nl + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return hl_usage_error("qemu", "qemu: %s needs a value", names[k]);
            }
        }
        if (which < 0)
            return hl_usage_error("qemu", "qemu: unknown option '%s'", a);
        if (which == 0) {
            if (strcmp(val, "q35") != 0 && strcmp(val, "microvm") != 0)
                return hl_usage_error("qemu", "qemu: --machine wants q35 or microvm, not '%s'",
                                      val);
            o.machine = val;
        } else if (which == 1) {
            if (strcmp(val, "kvm") != 0 && strcmp(val, "tcg") != 0 && strcmp(val, "auto") != 0)
                return hl_usage_error("qemu", "qemu: --accel wants kvm, tcg or auto, not '%s'",
                                      val);
            o.accel = val;
        } else if (which == 2) {
            o.manifest_path = val;
        } else if (which == 4) {
            if (!*val)
                return hl_usage_error("qemu", "qemu: --trace needs a file name");
            trace_path = val;
        } else {
            o.append = val;
        }
    }
    if (hq_find_qemu(qemu, sizeof(qemu)) != 0 || hq_find_image(image, sizeof(image)) != 0)
        return 2;
    o.qemu = qemu;
    o.image = image;
    if (strcmp(o.accel, "auto") == 0) {
        o.accel = hq_kvm_usable() ? "kvm" : "tcg";
    } else if (strcmp(o.accel, "kvm") == 0 && !hq_kvm_usable()) {
        fprintf(stderr, "orrery: qemu: --accel kvm: /dev/kvm is not usable here (try --accel "
                        "tcg or auto)\n");
        return 2;
    }
    if (o.manifest_path) {
        size_t len = 0;
        char err[256] = "";
        char *text = slurp(o.manifest_path, &len);
        int line;
        if (!text) {
            fprintf(stderr, "orrery: %s: cannot read manifest: %s\n", o.manifest_path,
                    strerror(errno));
            return 2;
        }
        line = orrery_manifest_check(text, len, err, sizeof(err));
        manifest_text = text; /* kept for the trace's run row */
        manifest_len = len;
        if (line != 0) {
            fprintf(stderr, "orrery: %s:%d: %s\n", o.manifest_path, line,
                    err[0] ? err : "invalid manifest");
            free(text);
            return 2;
        }
        if (len > 65536) {
            fprintf(stderr, "orrery: %s: manifest larger than 64 KiB\n", o.manifest_path);
            free(text);
            return 2;
        }
    }
    o.tty = isatty(0) && isatty(1);
    if (trace_path) {
        const char *mt = manifest_text ? manifest_text : orrery_default_manifest;
        if (hq_trace_start(&trace, trace_path, &o, mt, manifest_text ? manifest_len : 0,
                           &trace_wfd) != 0) {
            free(manifest_text);
            return 2;
        }
        o.trace_fd = trace_wfd;
    }
    free(manifest_text);
    hq_build_argv(&o, qargv, 64);
    if (verbose) {
        for (int i = 0; qargv[i]; i++)
            fprintf(stderr, "%s%s", i ? " " : "", qargv[i]);
        fputc('\n', stderr);
    }
    if (o.gdb)
        fprintf(stderr,
                "orrery: qemu: waiting for gdb on localhost:1234; attach with symbols:\n"
                "  gdb %s -ex 'target remote :1234' -ex 'hbreak bm_main' -ex continue\n",
                image);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    relaying = !o.tty;
    ws = o.tty ? direct(qargv) : relay(qargv);
    status = hq_os_status(ws, &why);
    parent_after_fork(); /* if QEMU never started, our write end is the last one */
    if (trace_path && hq_trace_end(&trace, trace_path, status) != 0 && status >= 0)
        return 2;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
        return 2;
    if (status < 0 && stop_asked)
        return 0; /* stopped on request before the OS could say its status */
    if (status < 0) {
        fprintf(stderr, "orrery: qemu: %s (exit code %d)\n", why,
                WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
        return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 1 : 2;
    }
    return status;
}
