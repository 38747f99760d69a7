/* bench_boot.c — `orrery bench boot`: QEMU start -> shell prompt, the OS's own boot time, hosted
 * start. */
#define _GNU_SOURCE
#include "qemu.h"

#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char bench_boot_usage[] =
    "usage: orrery bench boot [--runs N] [--json] [--accel auto|kvm|tcg|both]\n"
    "\n"
    "Boot the bare-metal image N times (default 5) per machine (microvm, q35) and\n"
    "accelerator, and `orrery run` N times, and print medians of:\n"
    "  qemu_<machine>_ms  QEMU process start -> shell prompt on the serial console\n"
    "  os_boot_us         the kernel's own entry -> ready (its \"[boot] ready in N us\" line)\n"
    "  hosted_ms          `orrery run` start -> shell prompt\n"
    "--accel both (default when /dev/kvm works) measures KVM and TCG; the headline\n"
    "figures use KVM when it is there.\n";

typedef struct sample {
    double start_ms; /* process start -> prompt */
    double os_us;    /* the boot line's figure, -1 if none */
} sample_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Run argv, wait for the prompt, then send "shutdown" and reap it. 0 or -1. */
static int measure(char **argv, sample_t *s)
{
    int in[2], out[2], ws;
    char buf[8192], all[65536];
    size_t alen = 0;
    double t0 = now_ms(), deadline = t0 + 120000;
    pid_t pid;
    bool prompt = false;

    s->os_us = -1;
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (devnull >= 0)
            dup2(devnull, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    while (!prompt && now_ms() < deadline) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        ssize_t r = read(out[0], buf, sizeof(buf));
        if (r <= 0)
            break;
        if (alen + (size_t)r < sizeof(all) - 1) {
            memcpy(all + alen, buf, (size_t)r);
            alen += (size_t)r;
            all[alen] = '\0';
        }
        if (strstr(all, "orrery> ")) {
            s->start_ms = now_ms() - t0;
            prompt = true;
        }
    }
    const char *b = strstr(all, "[boot] ready in ");
    if (b)
        s->os_us = strtod(b + strlen("[boot] ready in "), NULL);
    if (write(in[1], "shutdown\n", 9) < 0) {
        /* it exited already; reaped below */
    }
    /* Drain until it exits (QEMU writes "shutting down" and stops). */
    for (double end = now_ms() + 60000; now_ms() < end;) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 500) > 0 && read(out[0], buf, sizeof(buf)) <= 0)
            break;
    }
    kill(pid, SIGTERM);
    close(in[1]);
    close(out[0]);
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    return prompt ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n == 0)
        return -1;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct result {
    const char *machine;
    const char *accel;
    double qemu_ms; /* median, -1 if it never booted */
    double os_us;
    int ok;
} result_t;

int hl_cmd_bench_boot(int argc, char **argv)
{
    static char image[4096], qemu[4096], self[4096];
    uint64_t runs = 5;
    bool json = false;
    const char *accel_opt = "auto";
    result_t res[4];
    int nres = 0;
    const char *accels[2];
    int naccel = 0;
    double hosted[64], hosted_ms;
    int nh = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(bench_boot_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            if (!hl_parse_u64(argv[++i], 1, 64, &runs))
                return hl_usage_error("bench boot", "bench boot: --runs wants 1..64");
        } else if (strcmp(argv[i], "--accel") == 0 && i + 1 < argc) {
            accel_opt = argv[++i];
        } else {
            return hl_usage_error("bench boot", "bench boot: unknown option '%s'", argv[i]);
        }
    }
    if (hq_find_qemu(qemu, sizeof(qemu)) != 0 || hq_find_image(image, sizeof(image)) != 0)
        return 2;
    bool kvm = hq_kvm_usable();
    if (strcmp(accel_opt, "auto") == 0 || strcmp(accel_opt, "both") == 0) {
        if (kvm)
            accels[naccel++] = "kvm";
        accels[naccel++] = "tcg";
    } else if (strcmp(accel_opt, "kvm") == 0 || strcmp(accel_opt, "tcg") == 0) {
        if (strcmp(accel_opt, "kvm") == 0 && !kvm) {
            fprintf(stderr, "orrery: bench boot: /dev/kvm is not usable here\n");
            return 2;
        }
        accels[naccel++] = accel_opt;
    } else {
        return hl_usage_error("bench boot", "bench boot: --accel wants auto, both, kvm or tcg");
    }

    const char *machines[2] = {"microvm", "q35"};
    for (int a = 0; a < naccel; a++) {
        for (int m = 0; m < 2; m++) {
            hq_opts_t o = {
                .qemu = qemu, .image = image, .machine = machines[m], .accel = accels[a]};
            char *qargv[64];
            double ms[64], us[64];
            int n = 0, nu = 0;
            hq_build_argv(&o, qargv, 64);
            for (uint64_t r = 0; r < runs; r++) {
                sample_t s;
                if (measure(qargv, &s) != 0)
                    continue;
                ms[n++] = s.start_ms;
                if (s.os_us >= 0)
                    us[nu++] = s.os_us;
            }
            res[nres].machine = machines[m];
            res[nres].accel = accels[a];
            res[nres].ok = n;
            res[nres].qemu_ms = median(ms, n);
            res[nres].os_us = median(us, nu);
            if (!json)
                fprintf(stderr,
                        "  %-8s %-4s  qemu start -> prompt %8.1f ms   os entry -> "
                        "ready %8.0f us   (%d/%d runs)\n",
                        machines[m], accels[a], res[nres].qemu_ms, res[nres].os_us, n, (int)runs);
            nres++;
        }
    }

    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl > 0) {
        self[sl] = '\0';
        char *hargv[] = {self, "run", NULL};
        for (uint64_t r = 0; r < runs; r++) {
            sample_t s;
            if (measure(hargv, &s) == 0)
                hosted[nh++] = s.start_ms;
        }
    }
    hosted_ms = median(hosted, nh);
    if (!json)
        fprintf(stderr, "  hosted   `orrery run` start -> prompt %6.1f ms   (%d/%d runs)\n",
                hosted_ms, nh, (int)runs);

    /* Headline figures: the first accelerator measured (KVM when usable). */
    const result_t *mv = &res[0], *q35 = &res[1];
    if (json) {
        printf("{\"runs\": %d, \"os_boot_us\": %.0f, \"os_boot_machine\": \"%s\", "
               "\"os_boot_accel\": \"%s\", \"qemu_microvm_ms\": %.1f, \"qemu_microvm_accel\": "
               "\"%s\", \"qemu_q35_ms\": %.1f, \"qemu_q35_accel\": \"%s\", \"hosted_ms\": %.1f, "
               "\"results\": [",
               (int)runs, mv->os_us, mv->machine, mv->accel, mv->qemu_ms, mv->accel, q35->qemu_ms,
               q35->accel, hosted_ms);
        for (int i = 0; i < nres; i++)
            printf("%s{\"machine\": \"%s\", \"accel\": \"%s\", \"qemu_ms\": %.1f, "
                   "\"os_boot_us\": %.0f, \"ok_runs\": %d}",
                   i ? ", " : "", res[i].machine, res[i].accel, res[i].qemu_ms, res[i].os_us,
                   res[i].ok);
        printf("]}\n");
    } else {
        printf("os_boot_us %.0f (%s, %s)\nqemu_microvm_ms %.1f (%s)\nqemu_q35_ms %.1f (%s)\n"
               "hosted_ms %.1f\n",
               mv->os_us, mv->machine, mv->accel, mv->qemu_ms, mv->accel, q35->qemu_ms, q35->accel,
               hosted_ms);
    }
    for (int i = 0; i < nres; i++) {
        if (res[i].ok == 0)
            return 1;
    }
    return nh ? 0 : 1;
}
