/* qemu.c — `orrery qemu`: boot the bare-metal image (build/orrery.elf) under QEMU on this terminal.
 */
#define _GNU_SOURCE
#include "qemu.h"

#include "commands.h"
#include "opt.h"
#include <hl/hosted.h>
#include <image.h>

#include <errno.h>
#include <fcntl.h>
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
#include <termios.h>
#include <time.h>
#include <unistd.h>

static const char qemu_usage[] =
    "usage: orrery qemu [--machine q35|microvm] [--accel kvm|tcg|auto] [--manifest FILE]\n"
    "                   [--gdb] [--append ARGS] [--verbose] [--trace FILE.db]\n"
    "                   [--trace-channel virtio|serial]\n"
    "                   [--boot-timeout SECONDS] [--probe]\n"
    "                   [--net none|user[,hostfwd=...]...] [--pcap FILE]\n"
    "                   [--disk FILE[,ro]|none]\n"
    "\n"
    "Boot the bare-metal image (orrery.elf next to this binary, or $ORRERY_IMAGE) under\n"
    "qemu-system-x86_64 (or $ORRERY_QEMU), serial console on this terminal. When stdin\n"
    "and stdout are a terminal the image is told so ('tty cols=N rows=N'): the console\n"
    "edits lines, Ctrl-C reaches the OS, Ctrl-D leaves (docs/shell.md); else the serial\n"
    "line carries piped lines.\n"
    "\n"
    "  --machine M      q35 (virtio-pci, default) or microvm (virtio-mmio, fastest boot)\n"
    "  --accel A        kvm, tcg, or auto (default): KVM when QEMU can run the image with\n"
    "                   it -- with -cpu host, else QEMU's default CPU model -- else TCG.\n"
    "                   Probed once: QEMU starts the image with each candidate in turn;\n"
    "                   a fallback from a KVM that opens but fails is said on stderr\n"
    "  --probe          print the accelerator and CPU model that would be used and why\n"
    "                   each better one was rejected, then exit (0; 2 if --accel kvm\n"
    "                   cannot run)\n"
    "  --manifest FILE  boot manifest instead of the built-in one (checked first;\n"
    "                   passed to the image as fw_cfg file opt/orrery/manifest)\n"
    "  --net none       no network device (the default; the image then has no net0)\n"
    "  --net user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...\n"
    "                   net0 on QEMU's user network (virtio-net-pci on q35,\n"
    "                   virtio-net-device on microvm): 10.0.2.0/24, DHCP from 10.0.2.15,\n"
    "                   gateway 10.0.2.2, DNS 10.0.2.3; each hostfwd forwards a host port\n"
    "                   to the guest (the syntax of 'orrery run --net', checked the same\n"
    "                   way; at most 16 rules; HOSTADDR empty: every interface, write\n"
    "                   127.0.0.1 to keep it local). docs/networking.md; a TCP hostfwd\n"
    "                   to guest port 80 reaches httpd and its URL is printed on stderr\n"
    "                   (docs/httpd.md)\n"
    "  --pcap FILE      with --net user: every frame of net0, both ways, as a pcap file\n"
    "                   (QEMU's filter-dump; read it with tcpdump -r), written to\n"
    "                   FILE.partial and renamed when QEMU ends; an existing FILE must be\n"
    "                   a pcap file (else refused, exit 2)\n"
    "  --disk FILE[,ro] the raw image FILE as blk0 (virtio-blk-pci on q35, virtio-blk-device\n"
    "                   on microvm); FILE must exist, be a regular file and hold a whole\n"
    "                   number of 512-byte sectors (not 0); ,ro: read-only (writes fail\n"
    "                   with OS_EACCES). docs/storage.md\n"
    "                   Without --disk: disk.img next to this binary (build/disk.img, the\n"
    "                   default disk made from disk/ by the build; what the OS writes stays\n"
    "                   in it), unless another run has it open (then no disk);\n"
    "                   --disk none: no disk. $ORRERY_DISK=FILE|none replaces the default.\n"
    "                   The disk used is said on stderr at the start.\n"
    "                   docs/storage-shell.md\n"
    "  --gdb            start QEMU's gdb stub on :1234, stopped; prints how to attach\n"
    "                   (no boot deadline unless --boot-timeout is given)\n"
    "  --append ARGS    extra kernel command line words (verbose, rngtest, blktest,\n"
    "                   costs)\n"
    "  --boot-timeout S stop QEMU and fail (exit 2) when the image has not printed its\n"
    "                   boot line within S seconds (default 60, enough for TCG on a\n"
    "                   loaded 2-core machine; 0: no deadline)\n"
    "  --verbose        print the accelerator chosen and the QEMU command line\n"
    "  --trace FILE.db  record every IPC event into a SQLite trace: the image streams\n"
    "                   binary frames on a virtio-console port in large buffers, imported\n"
    "                   as they arrive (docs/trace-format.md; read it with 'orrery trace',\n"
    "                   replay a server with 'orrery replay'); written to FILE.db.partial,\n"
    "                   renamed once complete; an existing FILE.db must be an Orrery trace\n"
    "                   (else refused, exit 2)\n"
    "  --trace-channel C  virtio (default: virtio-serial-pci on q35, virtio-serial-device\n"
    "                   on microvm, a port the image fills 128 KiB at a time) or serial\n"
    "                   (the second serial port, COM2, a byte at a time: ~100 times\n"
    "                   slower under TCG); the same frames either way\n"
    "\n"
    "Input from a pipe works as with 'orrery run': lines are sent once the OS is ready,\n"
    "and the end of input reaches the shell as end of file. The exit status is the OS's\n"
    "(shutdown N); 2 for usage errors, a missing QEMU or image, a QEMU failure or no\n"
    "boot line in time.\n";

/* Whether the space-separated list s holds word. */
static bool has_word(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(s, word); p; p = strstr(p + 1, word)) {
        if ((p == s || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    }
    return false;
}

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
    if (o->cpu) {
        ARG("-cpu");
        ARG(o->cpu);
    }
    ARG("-m");
    ARG("128M");
    ARG("-nodefaults");
    ARG("-no-user-config");
    ARG("-display");
    ARG("none");
    ARG("-no-reboot");
    if (o->console_log_fd > 0) {
        /* The console on stdio as -serial stdio has it, plus a copy of its output for us. */
        /* signal=off: Ctrl-C is a key for the OS (it cancels a line or stops a command),
           not the end of QEMU */
        snprintf(pool[p], sizeof(pool[p]), "stdio,id=console,logfile=/dev/fd/%d%s",
                 o->console_log_fd, o->tty ? ",signal=off" : "");
        ARG("-chardev");
        ARG(pool[p++]);
        ARG("-serial");
        ARG("chardev:console");
    } else {
        ARG("-serial");
        ARG("stdio");
    }
    ARG("-device");
    ARG("isa-debug-exit,iobase=0xf4,iosize=0x04");
    ARG("-device");
    ARG(strcmp(o->machine, "microvm") == 0 ? "virtio-rng-device" : "virtio-rng-pci");
    if (o->net) {
        hq_netdev_arg(o->net, pool[p], sizeof(pool[p]));
        ARG("-netdev");
        ARG(pool[p++]);
        ARG("-device");
        /* No option ROM on q35: the image boots by -kernel, iPXE would only slow SeaBIOS. */
        ARG(strcmp(o->machine, "microvm") == 0 ? "virtio-net-device,netdev=net0"
                                               : "virtio-net-pci,netdev=net0,romfile=");
        if (o->pcap_fd > 0) {
            snprintf(pool[p], sizeof(pool[p]), "filter-dump,id=dump0,netdev=net0,file=/dev/fd/%d",
                     o->pcap_fd);
            ARG("-object");
            ARG(pool[p++]);
        }
    }
    if (o->disk) {
        hq_drive_arg(o->disk, pool[p], sizeof(pool[p]));
        ARG("-drive");
        ARG(pool[p++]);
        ARG("-device");
        ARG(strcmp(o->machine, "microvm") == 0 ? "virtio-blk-device,drive=blk0"
                                               : "virtio-blk-pci,drive=blk0");
    }
    if (o->trace_fd > 0) {
        snprintf(pool[p], sizeof(pool[p]), "file,id=trace,path=/dev/fd/%d", o->trace_fd);
        ARG("-chardev");
        ARG(pool[p++]);
        if (o->trace_serial) {
            /* COM2 as an explicit isa-serial: microvm only creates COM1 from -serial. */
            ARG("-device");
            ARG("isa-serial,chardev=trace,iobase=0x2f8,irq=3");
            ARG("-fw_cfg");
            ARG("name=opt/orrery/trace,string=com2");
        } else {
            /* A serial port, not a console: QEMU throttles it when the pipe is full (a
               console drops); nr=1 because port 0 is reserved for a console. */
            ARG("-device");
            ARG(strcmp(o->machine, "microvm") == 0 ? "virtio-serial-device" : "virtio-serial-pci");
            ARG("-device");
            ARG("virtserialport,chardev=trace,nr=1,name=org.orrery.trace");
            ARG("-fw_cfg");
            ARG("name=opt/orrery/trace,string=virtio");
        }
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
    char tty[48] = "";
    if (o->tty)
        snprintf(tty, sizeof(tty), "tty cols=%u rows=%u", o->cols, o->rows);
    snprintf(pool[p], sizeof(pool[p]), "%s%s%s", tty, o->tty && o->append ? " " : "",
             o->append ? o->append : "");
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
static int log_wfd = -1;   /* on a terminal: the console copy's write end, for QEMU alone */
static int pcap_fd = -1;   /* --pcap: FILE.partial, which QEMU opens as /dev/fd/N */
static pid_t parent_pid;
static double boot_deadline; /* monotonic seconds; 0: no deadline (--boot-timeout 0) */
static bool boot_timed_out;  /* no boot line before boot_deadline: QEMU was stopped */

/*
 * In the forked child, before exec. QEMU dies with us (SIGKILL of orrery must
 * not leave a machine running) and inherits the pipes' write ends.
 */
static void child_setup(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid)
        _exit(127); /* we died before the prctl */
    if (trace_wfd >= 0)
        fcntl(trace_wfd, F_SETFD, 0);
    if (log_wfd >= 0)
        fcntl(log_wfd, F_SETFD, 0);
    if (pcap_fd >= 0)
        fcntl(pcap_fd, F_SETFD, 0);
}

/* In the parent after fork: QEMU holds the only write ends, so its exit ends our reads. */
static void parent_after_fork(void)
{
    if (trace_wfd >= 0) {
        close(trace_wfd);
        trace_wfd = -1;
    }
    if (log_wfd >= 0) {
        close(log_wfd);
        log_wfd = -1;
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
 * The boot deadline, checked on every turn of a wait loop while the boot line has not come:
 * past it, ask QEMU to quit (SIGTERM: on a terminal QEMU restores the terminal's mode) and
 * give it until *kill_at before SIGKILL. Returns the poll timeout in ms (at most max_ms).
 */
static int watch_boot(bool ready, double *kill_at, int max_ms)
{
    double now = hq_now_s();
    int ms = max_ms;

    if (!ready && boot_deadline > 0 && !boot_timed_out) {
        if (now >= boot_deadline) {
            boot_timed_out = true;
            kill(child, SIGTERM);
            *kill_at = now + 5;
        } else {
            double left = (boot_deadline - now) * 1000 + 1;
            if (ms < 0 || left < ms)
                ms = (int)left;
        }
    }
    if (*kill_at > 0) {
        if (now > *kill_at) {
            kill(child, SIGKILL);
            *kill_at = 0;
        } else if (ms < 0 || ms > 1000) {
            ms = 1000;
        }
    }
    return ms;
}

/* Look for the boot line's marker in buf, also across read boundaries (tail keeps the end). */
static bool scan_marker(char tail[16], const char *buf, size_t r)
{
    static const char marker[] = "[boot] ready";
    char scan[65536 + 16];
    size_t tl = strlen(tail), take = r < 65536 ? r : 65536, keep;
    bool found;

    memcpy(scan, tail, tl);
    memcpy(scan + tl, buf + (r - take), take);
    found = memmem(scan, tl + take, marker, sizeof(marker) - 1) != NULL;
    keep = tl + take < 15 ? tl + take : 15;
    memcpy(tail, scan + tl + take - keep, keep);
    tail[keep] = '\0';
    return found;
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

/* QEMU's stderr, minus the one warning our own -fw_cfg etc/sercon-port always causes.
 * Returns what read returned (0: end of file). */
static ssize_t pass_stderr(int fd, char *acc, size_t *alen)
{
    ssize_t r = read(fd, acc + *alen, 4095 - *alen);
    char *nl;

    if (r <= 0) {
        if (*alen)
            cli_write_all(2, acc, *alen);
        *alen = 0;
        return r;
    }
    *alen += (size_t)r;
    acc[*alen] = '\0';
    while ((nl = strchr(acc, '\n')) != NULL || *alen == 4095) {
        size_t n = nl ? (size_t)(nl - acc) + 1 : *alen;
        /* QEMU's "terminating on signal 15" after a boot deadline would only repeat ours. */
        if (!memmem(acc, n, HQ_FWCFG_WARNING, strlen(HQ_FWCFG_WARNING)) &&
            !(boot_timed_out && memmem(acc, n, "terminating on signal", 21)))
            cli_write_all(2, acc, n);
        memmove(acc, acc + n, *alen - n + 1);
        *alen -= n;
    }
    return r;
}

/*
 * Not a terminal: relay both ways. QEMU's serial input has no end of file,
 * and bytes that arrive while the firmware runs may be lost, so we hold our
 * input until the OS prints its boot line, then pass it on, and send ^D
 * (which the image posts as end of input) when our stdin ends. No boot line
 * by the deadline stops QEMU (watch_boot).
 */
static int relay(char **argv)
{
    int in[2], out[2], err[2], ws = 0;
    char errbuf[4096];
    size_t errlen = 0;
    bool err_open = true;
    char buf[65536], tail[16] = "";
    bool ready = false, in_open = true, eof_sent = false;
    char *pending = NULL;
    size_t plen = 0, pcap = 0, poff = 0;
    double stop_deadline = 0;

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
        if (stop_asked == 1) {
            stop_asked = 2;
            stop_deadline = hq_now_s() + 10;
            if (ready) {
                poff = plen = 0; /* pending input is dropped: end it now */
                in_open = false;
                eof_sent = true;
                cli_write_all(in[1], "\x04", 1);
            } else {
                kill(child, SIGTERM); /* still booting: nothing to shut down cleanly */
            }
        }
        if (poll(fds, 4, watch_boot(ready, &stop_deadline, -1)) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[3].revents && pass_stderr(err[0], errbuf, &errlen) <= 0)
            err_open = false;
        if (fds[0].revents) {
            ssize_t r = read(out[0], buf, sizeof(buf));
            if (r <= 0)
                break; /* QEMU closed its side: it is exiting */
            cli_write_all(1, buf, (size_t)r);
            if (!ready)
                ready = scan_marker(tail, buf, (size_t)r);
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
                cli_write_all(in[1], "\x04", 1);
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
        struct pollfd p = {err[0], POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0 || pass_stderr(err[0], errbuf, &errlen) <= 0)
            break;
    }
    close(err[0]);
    while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
        ;
    return ws;
}

/*
 * A terminal: QEMU takes it over directly; its stderr passes through our filter,
 * and the console's output comes to us too (log_rfd, QEMU's chardev logfile) so
 * that the boot deadline can watch for the boot line. We read that copy to its
 * end: QEMU's writes to it block when it is full.
 */
static int direct(char **argv, int log_rfd)
{
    int err[2], ws = 0;
    char errbuf[4096], buf[65536], tail[16] = "";
    size_t errlen = 0;
    bool err_open = true, log_open = log_rfd >= 0, ready = log_rfd < 0, saved;
    double kill_at = 0;
    struct termios tio;

    if (pipe2(err, O_CLOEXEC) != 0) {
        perror("orrery: qemu: pipe");
        return 2;
    }
    saved = tcgetattr(0, &tio) == 0;
    /* a guardian gives the terminal's mode back even if we are killed with QEMU */
    bool guarded = hl_tty_guard(0) == 0;
    if (start_qemu(argv, -1, -1, err[1]) != 0) {
        if (guarded)
            hl_tty_restore();
        return 2;
    }
    close(err[1]);
    while (err_open || log_open) {
        struct pollfd p[2] = {{err_open ? err[0] : -1, POLLIN, 0},
                              {log_open ? log_rfd : -1, POLLIN, 0}};
        if (poll(p, 2, watch_boot(ready, &kill_at, -1)) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents && pass_stderr(err[0], errbuf, &errlen) <= 0)
            err_open = false; /* QEMU closed its stderr: it is exiting */
        if (p[1].revents) {
            ssize_t r = read(log_rfd, buf, sizeof(buf));
            if (r <= 0)
                log_open = false;
            else if (!ready)
                ready = scan_marker(tail, buf, (size_t)r);
        }
    }
    close(err[0]);
    while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
        ;
    /* QEMU restores the terminal when it exits; not when it was killed. */
    if (saved)
        tcsetattr(0, TCSADRAIN, &tio);
    if (guarded)
        hl_tty_restore();
    return ws;
}

/*
 * Say what hq_choose decided when it is not what the user would expect: a KVM that opens but
 * cannot run (always), anything with --verbose. -1 after the error when --accel kvm cannot run.
 */
static int report_choice(const hq_choice_t *c, const char *want, bool verbose)
{
    char why[800];

    hq_kvm_why(c, why, sizeof(why));
    if (c->chosen < 0) {
        fprintf(stderr,
                "orrery: qemu: --accel kvm: KVM cannot run here (%s); try --accel tcg or "
                "auto\n",
                why);
        return -1;
    }
    if (c->chosen == HQ_KVM_DEFAULT)
        fprintf(stderr, "orrery: qemu: %s fails here (%s); using %s\n", hq_cands[HQ_KVM_HOST].name,
                c->why[HQ_KVM_HOST], hq_cands[HQ_KVM_DEFAULT].name);
    else if (c->chosen == HQ_TCG && strcmp(want, "auto") == 0 && !c->gate_failed)
        fprintf(stderr, "orrery: qemu: KVM cannot run here (%s); using TCG\n", why);
    else if (verbose && c->chosen == HQ_TCG)
        fprintf(stderr, "orrery: qemu: using TCG (%s)\n",
                strcmp(want, "tcg") == 0 ? "--accel tcg" : why);
    else if (verbose)
        fprintf(stderr, "orrery: qemu: using %s\n", hq_cands[c->chosen].name);
    return 0;
}

/* `orrery qemu --probe`: the choice on stdout, one line per rejected candidate. */
static void print_probe(const hq_choice_t *c)
{
    printf("chosen: %s\n", c->chosen >= 0 ? hq_cands[c->chosen].label : "none");
    for (int i = 0; i < HQ_NCAND; i++) {
        if (c->rejected[i])
            printf("rejected: %s: %s\n", hq_cands[i].label, c->why[i]);
    }
}

int hl_cmd_qemu(int argc, char **argv)
{
    static char image[4096], qemu[4096];
    enum {
        OPT_GDB = 1000,
        OPT_PROBE,
        OPT_MACHINE,
        OPT_ACCEL,
        OPT_MANIFEST,
        OPT_TRACE,
        OPT_BOOT_TIMEOUT,
        OPT_APPEND,
        OPT_NET,
        OPT_PCAP,
        OPT_DISK,
        OPT_TRACE_CHANNEL,
    };
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"gdb", no_argument, NULL, OPT_GDB},
        {"probe", no_argument, NULL, OPT_PROBE},
        {"machine", required_argument, NULL, OPT_MACHINE},
        {"accel", required_argument, NULL, OPT_ACCEL},
        {"manifest", required_argument, NULL, OPT_MANIFEST},
        {"trace", required_argument, NULL, OPT_TRACE},
        {"boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT},
        {"append", required_argument, NULL, OPT_APPEND},
        {"net", required_argument, NULL, OPT_NET},
        {"pcap", required_argument, NULL, OPT_PCAP},
        {"disk", required_argument, NULL, OPT_DISK},
        {"trace-channel", required_argument, NULL, OPT_TRACE_CHANNEL},
        {NULL, 0, NULL, 0},
    };
    hq_opts_t o = {.machine = "q35", .accel = "auto"};
    bool verbose = false, probe = false;
    const char *trace_path = NULL, *want;
    char *manifest_text = NULL;
    size_t manifest_len = 0;
    hq_trace_t trace = {0};
    char *qargv[64];
    const char *why;
    const hq_choice_t *choice;
    uint64_t boot_timeout = HQ_BOOT_TIMEOUT_S;
    bool boot_timeout_set = false, trace_channel_set = false;
    int ws, status, c, log_pipe[2] = {-1, -1};
    static hl_net_config_t net;
    bool net_on = false;
    const char *pcap_path = NULL;
    hq_pcap_t pcap = {.fd = -1};
    static hq_disk_t disk;
    bool no_disk = false;
    int disk_lock = -1;
    char err[400];

    while ((c = cli_getopt(argc, argv, "qemu", opts)) != -1) {
        switch (c) {
        case 'h':
            fputs(qemu_usage, stdout);
            return 0;
        case OPT_GDB:
            o.gdb = true;
            break;
        case 'v':
            verbose = true;
            break;
        case OPT_PROBE:
            probe = true;
            break;
        case OPT_MACHINE:
            if (strcmp(optarg, "q35") != 0 && strcmp(optarg, "microvm") != 0)
                return cli_usage_error("qemu", "qemu: --machine wants q35 or microvm, not '%s'",
                                       optarg);
            o.machine = optarg;
            break;
        case OPT_ACCEL:
            if (strcmp(optarg, "kvm") != 0 && strcmp(optarg, "tcg") != 0 &&
                strcmp(optarg, "auto") != 0)
                return cli_usage_error("qemu", "qemu: --accel wants kvm, tcg or auto, not '%s'",
                                       optarg);
            o.accel = optarg;
            break;
        case OPT_MANIFEST:
            o.manifest_path = optarg;
            break;
        case OPT_TRACE:
            if (!*optarg)
                return cli_usage_error("qemu", "qemu: --trace needs a file name");
            trace_path = optarg;
            break;
        case OPT_TRACE_CHANNEL:
            if (strcmp(optarg, "virtio") != 0 && strcmp(optarg, "serial") != 0)
                return cli_usage_error("qemu",
                                       "qemu: --trace-channel wants virtio or serial, "
                                       "not '%s'",
                                       optarg);
            o.trace_serial = strcmp(optarg, "serial") == 0;
            trace_channel_set = true;
            break;
        case OPT_BOOT_TIMEOUT:
            if (!cli_parse_u64(optarg, 0, HQ_BOOT_TIMEOUT_MAX_S, &boot_timeout))
                return cli_usage_error("qemu",
                                       "qemu: --boot-timeout wants seconds, 0..%d (0: none), not "
                                       "'%s'",
                                       HQ_BOOT_TIMEOUT_MAX_S, optarg);
            boot_timeout_set = true;
            break;
        case OPT_APPEND:
            o.append = optarg;
            break;
        case OPT_NET:
            if (hl_net_parse(optarg, &net_on, &net, err, sizeof(err)) != 0)
                return cli_usage_error("qemu", "qemu: --net: %s", err);
            break;
        case OPT_PCAP:
            if (!*optarg)
                return cli_usage_error("qemu", "qemu: --pcap needs a file name");
            pcap_path = optarg;
            break;
        case OPT_DISK:
            if (o.disk || no_disk)
                return cli_usage_error("qemu", "qemu: --disk given twice (the image has one "
                                               "disk, blk0)");
            if (strcmp(optarg, "none") == 0) {
                no_disk = true;
                break;
            }
            if (hq_disk_parse(optarg, &disk, err, sizeof(err)) != 0)
                return cli_usage_error("qemu", "qemu: %s", err);
            o.disk = &disk;
            break;
        default:
            return 2; /* CLI_OPT_ERROR: cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("qemu", "qemu: unexpected argument '%s'", argv[optind]);
    if (trace_channel_set && !trace_path)
        return cli_usage_error("qemu", "qemu: --trace-channel needs --trace FILE.db");
    if (pcap_path && !net_on)
        return cli_usage_error("qemu", "qemu: --pcap needs --net user (without a network there "
                                       "are no frames to capture)");
    o.net = net_on ? &net : NULL;
    if (hq_find_qemu(qemu, sizeof(qemu)) != 0 || hq_find_image(image, sizeof(image)) != 0)
        return 2;
    o.qemu = qemu;
    o.image = image;
    if (!probe && net_on)
        hq_print_http_urls(&net, stderr);
    if (probe) {
        choice = hq_choose(qemu, image, o.accel);
        print_probe(choice);
        return report_choice(choice, o.accel, verbose) == 0 ? 0 : 2;
    }
    if (o.manifest_path && hl_manifest_load(o.manifest_path, &manifest_text, &manifest_len) != 0)
        return 2; /* the text is kept for the trace's run row */
    /* After the checks of our own input: the probe starts QEMU. */
    want = o.accel;
    choice = hq_choose(qemu, image, want);
    if (report_choice(choice, want, verbose) != 0) {
        free(manifest_text);
        return 2;
    }
    o.accel = hq_cands[choice->chosen].accel;
    o.cpu = hq_cands[choice->chosen].cpu;
    if (!o.disk && !no_disk) {
        /* the default disk, locked for the run so no other run writes it meanwhile */
        char path[sizeof(disk.path)], dwhy[4400];
        int found = hl_default_disk(path, sizeof(path));
        if (found == 1) {
            /* ORRERY_DISK=none: as --disk none */
        } else if (o.append && has_word(o.append, "blktest")) {
            fprintf(stderr, "orrery: disk: none (blktest writes the disk's first sectors: give it "
                            "a scratch image with --disk)\n");
        } else if (found != 0) {
            fprintf(stderr, "orrery: disk: none (no default image %s; --disk FILE attaches one)\n",
                    path);
        } else if (hq_disk_parse(path, &disk, dwhy, sizeof(dwhy)) != 0 ||
                   (disk_lock = hq_disk_lock(&disk, dwhy, sizeof(dwhy))) < 0) {
            fprintf(stderr, "orrery: disk: none (the default image cannot be used: %s)\n", dwhy);
        } else {
            o.disk = &disk;
        }
    }
    if (o.disk)
        fprintf(stderr, "orrery: disk: %s (%s%s)\n", o.disk->path,
                o.disk->ro ? "read-only" : "read-write", disk_lock >= 0 ? ", the default" : "");
    if (pcap_path) {
        if (hq_pcap_prepare(&pcap, pcap_path, err, sizeof(err)) != 0) {
            free(manifest_text);
            fprintf(stderr, "orrery: qemu: %s\n", err);
            return 2;
        }
        pcap_fd = pcap.fd;
        o.pcap_fd = pcap.fd;
    }
    o.tty = isatty(0) && isatty(1);
    if (o.tty) {
        struct winsize size;
        if (ioctl(1, TIOCGWINSZ, &size) == 0) {
            o.cols = size.ws_col;
            o.rows = size.ws_row;
        }
        /* QEMU owns the terminal; a copy of the console's output shows us the boot line. */
        if (pipe2(log_pipe, O_CLOEXEC) != 0) {
            perror("orrery: qemu: pipe");
            free(manifest_text);
            hq_pcap_release(&pcap);
            return 2;
        }
        log_wfd = log_pipe[1];
        o.console_log_fd = log_wfd;
    }
    if (trace_path) {
        const char *mt = manifest_text ? manifest_text : orrery_default_manifest;
        if (hq_trace_start(&trace, trace_path, &o, mt, manifest_text ? manifest_len : 0,
                           &trace_wfd) != 0) {
            free(manifest_text);
            hq_pcap_release(&pcap);
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
    /* Waiting for a person at gdb is no boot to time out, unless asked. */
    if (boot_timeout > 0 && (!o.gdb || boot_timeout_set))
        boot_deadline = hq_now_s() + (double)boot_timeout;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    relaying = !o.tty;
    ws = o.tty ? direct(qargv, log_pipe[0]) : relay(qargv);
    if (log_pipe[0] >= 0)
        close(log_pipe[0]);
    status = hq_os_status(ws, &why);
    parent_after_fork(); /* if QEMU never started, our write ends are the last ones */
    if (hq_pcap_finish(&pcap, err, sizeof(err)) != 0) {
        fprintf(stderr, "orrery: qemu: %s\n", err);
        if (status >= 0)
            return 2;
    }
    if (trace_path && hq_trace_end(&trace, trace_path, status) != 0 && status >= 0)
        return 2;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
        return 2;
    if (boot_timed_out && status < 0) {
        fprintf(stderr,
                "orrery: qemu: no boot line (\"[boot] ready\") from %s within %llu s; QEMU "
                "stopped (--boot-timeout SECONDS waits longer)\n",
                image, (unsigned long long)boot_timeout);
        return 2;
    }
    if (status < 0 && stop_asked)
        return 0; /* stopped on request before the OS could say its status */
    if (status < 0) {
        fprintf(stderr, "orrery: qemu: %s (exit code %d)\n", why,
                WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
        return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 1 : 2;
    }
    return status;
}
