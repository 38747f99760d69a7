/* qemu_accel.c — which accelerator and CPU model `orrery qemu` uses: the /dev/kvm gate, then a
 * probe of each KVM candidate by QEMU itself, once per process; TCG as the last resort. A probe:
 *   qemu-system-x86_64 -machine microvm,... -accel kvm -cpu host ... -append probe
 * exits with code 3 (the image's status 0) when the candidate works.
 */
#define _GNU_SOURCE
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
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

bool hq_kvm_usable(char *why, size_t n)
{
    const char *env = getenv("ORRERY_KVM_DEVICE");
    const char *dev = env && *env ? env : "/dev/kvm";
    struct stat st;
    int fd = open(dev, O_RDWR | O_CLOEXEC), version;

    if (fd < 0) {
        snprintf(why, n, "cannot open %s: %s", dev, strerror(errno));
        return false;
    }
    if (env && *env && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        close(fd); /* the testing hook's stand-in for a device that opens */
        return true;
    }
    version = ioctl(fd, KVM_GET_API_VERSION, 0);
    close(fd);
    if (version != KVM_API_VERSION) {
        snprintf(why, n, "%s does not answer KVM_GET_API_VERSION %d (%s)", dev, KVM_API_VERSION,
                 version < 0 ? strerror(errno) : "another version");
        return false;
    }
    return true;
}

const hq_cand_t hq_cands[HQ_NCAND] = {
    [HQ_KVM_HOST] = {"kvm", "host", "KVM with -cpu host", "kvm host"},
    [HQ_KVM_DEFAULT] = {"kvm", NULL, "KVM with QEMU's default CPU model", "kvm default"},
    [HQ_TCG] = {"tcg", NULL, "TCG", "tcg default"},
};

double hq_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The first line of QEMU's stderr worth showing (not the warning our own -fw_cfg causes). */
static void first_line(const char *text, char *out, size_t n)
{
    out[0] = '\0';
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len && !memmem(p, len, HQ_FWCFG_WARNING, strlen(HQ_FWCFG_WARNING))) {
            snprintf(out, n, "%.*s", (int)(len < 200 ? len : 200), p);
            return;
        }
        p += len + (p[len] == '\n');
    }
}

/*
 * Start QEMU with candidate c on the image (microvm, the fastest machine; `-append probe`
 * makes the image exit with status 0 as soon as it runs). QEMU's KVM failures (MSR set-up,
 * vCPU creation) happen before the first guest instruction, so an exit with the image's
 * status proves the candidate. An image older than the probe word boots instead: its boot
 * line is proof too. true, or false with the reason in why.
 */
static bool probe_one(const char *qemu, const char *image, const hq_cand_t *c, char *why, size_t n)
{
    hq_opts_t o = {.qemu = qemu,
                   .image = image,
                   .machine = "microvm",
                   .accel = c->accel,
                   .cpu = c->cpu,
                   .append = "probe"};
    char *argv[64], ebuf[4096], obuf[8192], line[256];
    size_t elen = 0, olen = 0;
    int out[2], err[2], ws = 0, devnull;
    bool booted = false, timed_out = false, out_open = true, err_open = true;
    double deadline = hq_now_s() + HQ_PROBE_SECONDS;
    pid_t pid, self = getpid();

    hq_build_argv(&o, argv, 64);
    if (pipe2(out, O_CLOEXEC) != 0) {
        snprintf(why, n, "cannot start QEMU: pipe: %s", strerror(errno));
        return false;
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
        snprintf(why, n, "cannot start QEMU: pipe: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return false;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(why, n, "cannot start QEMU: fork: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            close(out[i]);
            close(err[i]);
        }
        return false;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(127);
        devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    while ((out_open || err_open) && !booted) {
        struct pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0},
                              {err_open ? err[0] : -1, POLLIN, 0}};
        double left = deadline - hq_now_s();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (poll(p, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            ssize_t r = read(out[0], obuf + olen, sizeof(obuf) - 1 - olen);
            if (r <= 0) {
                out_open = false;
            } else {
                olen += (size_t)r;
                obuf[olen] = '\0';
                booted = strstr(obuf, "[boot] ready") != NULL;
                if (olen == sizeof(obuf) - 1)
                    olen = 0; /* only the start matters; never block QEMU */
            }
        }
        if (p[1].revents) {
            char *dst = elen < sizeof(ebuf) - 1 ? ebuf + elen : line;
            size_t room = elen < sizeof(ebuf) - 1 ? sizeof(ebuf) - 1 - elen : sizeof(line);
            ssize_t r = read(err[0], dst, room);
            if (r <= 0)
                err_open = false;
            else if (dst == ebuf + elen)
                elen += (size_t)r;
        }
    }
    ebuf[elen] = '\0';
    if (out_open || err_open)
        kill(pid, SIGKILL); /* booted, too slow, or poll failed: we are done with it */
    close(out[0]);
    close(err[0]);
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (booted || (WIFEXITED(ws) && WEXITSTATUS(ws) == 3))
        return true; /* isa-debug-exit with status 0 */
    first_line(ebuf, line, sizeof(line));
    if (timed_out)
        snprintf(why, n, "QEMU did not run the image within %d s%s%s", HQ_PROBE_SECONDS,
                 line[0] ? "; QEMU: " : "", line);
    else if (WIFSIGNALED(ws))
        snprintf(why, n, "QEMU: %s (killed by signal %d, %s)", line[0] ? line : "no message",
                 WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    else
        snprintf(why, n, "QEMU: %s (exit code %d)", line[0] ? line : "no message", WEXITSTATUS(ws));
    return false;
}

const hq_choice_t *hq_choose(const char *qemu, const char *image, const char *want)
{
    static hq_choice_t c;
    static int state[HQ_NCAND]; /* 0: not tried yet, 1: works, -1: rejected (why in c) */
    static int gate;            /* 0: not checked yet, 1: passed, -1: failed */
    static char gate_why[256];

    c.chosen = -1;
    if (strcmp(want, "tcg") != 0) {
        for (int i = HQ_KVM_HOST; i <= HQ_KVM_DEFAULT && c.chosen < 0; i++) {
            if (state[i] == 0) {
                if (gate == 0)
                    gate = hq_kvm_usable(gate_why, sizeof(gate_why)) ? 1 : -1;
                if (gate < 0) {
                    snprintf(c.why[i], sizeof(c.why[i]), "%s", gate_why);
                    state[i] = -1;
                } else {
                    state[i] =
                        probe_one(qemu, image, &hq_cands[i], c.why[i], sizeof(c.why[i])) ? 1 : -1;
                }
                c.rejected[i] = state[i] < 0;
                c.gate_failed = gate < 0;
            }
            if (state[i] > 0)
                c.chosen = i;
        }
    }
    if (c.chosen < 0 && strcmp(want, "kvm") != 0)
        c.chosen = HQ_TCG;
    return &c;
}

void hq_kvm_why(const hq_choice_t *c, char *out, size_t n)
{
    if (c->gate_failed)
        snprintf(out, n, "%s", c->why[HQ_KVM_HOST]);
    else if (strcmp(c->why[HQ_KVM_HOST], c->why[HQ_KVM_DEFAULT]) == 0)
        snprintf(out, n, "%s, with -cpu host and with the default CPU model", c->why[HQ_KVM_HOST]);
    else
        snprintf(out, n, "%s: %s; %s: %s", hq_cands[HQ_KVM_HOST].name, c->why[HQ_KVM_HOST],
                 hq_cands[HQ_KVM_DEFAULT].name, c->why[HQ_KVM_DEFAULT]);
}
