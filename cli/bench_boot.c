/* bench_boot.c — `orrery bench boot`: QEMU start -> shell prompt, the OS's own boot time, hosted
 * start. */
#define _GNU_SOURCE
#include "qemu.h"

#include "commands.h"
#include "opt.h"

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
    "--accel auto (or both, the same) measures KVM and TCG: KVM with the CPU model\n"
    "`orrery qemu` would choose (see its --probe); when KVM cannot run here its rows are\n"
    "skipped with the reason. The headline figures come from the first row of each\n"
    "machine that ran (KVM before TCG). Exit status 0 when every row that could run\n"
    "booted; 1 otherwise; 2 for usage errors, or --accel kvm where KVM cannot run.\n";

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
    const char *cpu;     /* -cpu, NULL: QEMU's default model */
    const char *skipped; /* why this row could not run, or NULL */
    double qemu_ms;      /* median, -1 if it never booted */
    double os_us;
    int ok;
} result_t;

/* A figure, or null when nothing measured it. */
static void json_num(const char *fmt, double v)
{
    if (v < 0)
        fputs("null", stdout);
    else
        printf(fmt, v);
}

/* The headline row for a machine: the first that ran. */
static const result_t *headline(const result_t *res, int nres, const char *machine)
{
    for (int i = 0; i < nres; i++) {
        if (strcmp(res[i].machine, machine) == 0 && res[i].ok > 0)
            return &res[i];
    }
    return NULL;
}

int hl_cmd_bench_boot(int argc, char **argv)
{
    static char image[4096], qemu[4096], self[4096], kvm_why[800];
    uint64_t runs = 5;
    bool json = false;
    const char *accel_opt = "auto";
    result_t res[4];
    int nres = 0, status = 0;
    int cands[2], ncand = 0;
    double hosted[64], hosted_ms;
    int nh = 0;
    const hq_choice_t *choice = NULL;

    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"runs", required_argument, NULL, 'r'},
        {"accel", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = cli_getopt(argc, argv, "bench boot", opts)) != -1) {
        if (opt == 'h') {
            fputs(bench_boot_usage, stdout);
            return 0;
        } else if (opt == 'j') {
            json = true;
        } else if (opt == 'r') {
            if (cli_opt_u64("bench boot", "--runs", optarg, 1, 64, &runs) != 0)
                return 2;
        } else if (opt == 'a') {
            accel_opt = optarg;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("bench boot", "bench boot: unexpected argument '%s'", argv[optind]);
    bool both = strcmp(accel_opt, "auto") == 0 || strcmp(accel_opt, "both") == 0;
    if (!both && strcmp(accel_opt, "kvm") != 0 && strcmp(accel_opt, "tcg") != 0)
        return cli_usage_error(
            "bench boot", "bench boot: --accel wants auto, both, kvm or tcg, not '%s'", accel_opt);
    if (hq_find_qemu(qemu, sizeof(qemu)) != 0 || hq_find_image(image, sizeof(image)) != 0)
        return 2;
    if (both || strcmp(accel_opt, "kvm") == 0) {
        /* KVM as `orrery qemu --accel kvm` would run it: probed, with the CPU model that works. */
        choice = hq_choose(qemu, image, "kvm");
        hq_kvm_why(choice, kvm_why, sizeof(kvm_why));
        if (choice->chosen < 0 && !both) {
            fprintf(stderr, "orrery: bench boot: --accel kvm: KVM cannot run here (%s)\n", kvm_why);
            return 2;
        }
        cands[ncand++] = choice->chosen >= 0 ? choice->chosen : HQ_KVM_HOST;
    }
    if (both || strcmp(accel_opt, "tcg") == 0)
        cands[ncand++] = HQ_TCG;

    const char *machines[2] = {"microvm", "q35"};
    for (int a = 0; a < ncand; a++) {
        const hq_cand_t *c = &hq_cands[cands[a]];
        bool skip = cands[a] != HQ_TCG && choice->chosen < 0;
        for (int m = 0; m < 2; m++) {
            hq_opts_t o = {.qemu = qemu,
                           .image = image,
                           .machine = machines[m],
                           .accel = c->accel,
                           .cpu = c->cpu};
            char *qargv[64];
            double ms[64], us[64];
            int n = 0, nu = 0;
            hq_build_argv(&o, qargv, 64);
            for (uint64_t r = 0; r < runs && !skip; r++) {
                sample_t s;
                if (measure(qargv, &s) != 0)
                    continue;
                ms[n++] = s.start_ms;
                if (s.os_us >= 0)
                    us[nu++] = s.os_us;
            }
            res[nres] = (result_t){.machine = machines[m],
                                   .accel = c->accel,
                                   .cpu = c->cpu,
                                   .skipped = skip ? kvm_why : NULL,
                                   .ok = n,
                                   .qemu_ms = median(ms, n),
                                   .os_us = median(us, nu)};
            if (!skip && n == 0)
                status = 1; /* it could run, and did not boot */
            if (!json && skip)
                fprintf(stderr, "  %-8s %-4s  skipped: KVM cannot run here (%s)\n", machines[m],
                        c->accel, kvm_why);
            else if (!json)
                fprintf(stderr,
                        "  %-8s %-4s  qemu start -> prompt %8.1f ms   os entry -> "
                        "ready %8.0f us   (%d/%d runs%s%s)\n",
                        machines[m], c->accel, res[nres].qemu_ms, res[nres].os_us, n, (int)runs,
                        c->cpu ? ", -cpu " : "", c->cpu ? c->cpu : "");
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
    if (nh == 0)
        status = 1;
    if (!json)
        fprintf(stderr, "  hosted   `orrery run` start -> prompt %6.1f ms   (%d/%d runs)\n",
                hosted_ms, nh, (int)runs);

    /* Headline figures: per machine, the first row that ran (KVM before TCG). */
    const result_t none = {.machine = "", .accel = "", .qemu_ms = -1, .os_us = -1};
    const result_t *mv = headline(res, nres, "microvm"), *q35 = headline(res, nres, "q35");
    mv = mv ? mv : &none;
    q35 = q35 ? q35 : &none;
    if (json) {
        printf("{\"runs\": %d, \"os_boot_us\": ", (int)runs);
        json_num("%.0f", mv->os_us);
        printf(", \"os_boot_machine\": \"%s\", \"os_boot_accel\": \"%s\", \"qemu_microvm_ms\": ",
               mv->machine, mv->accel);
        json_num("%.1f", mv->qemu_ms);
        printf(", \"qemu_microvm_accel\": \"%s\", \"qemu_q35_ms\": ", mv->accel);
        json_num("%.1f", q35->qemu_ms);
        printf(", \"qemu_q35_accel\": \"%s\", \"hosted_ms\": ", q35->accel);
        json_num("%.1f", hosted_ms);
        printf(", \"results\": [");
        for (int i = 0; i < nres; i++) {
            printf("%s{\"machine\": \"%s\", \"accel\": \"%s\", \"cpu\": \"%s\", \"qemu_ms\": ",
                   i ? ", " : "", res[i].machine, res[i].accel,
                   res[i].cpu ? res[i].cpu : "default");
            json_num("%.1f", res[i].qemu_ms);
            printf(", \"os_boot_us\": ");
            json_num("%.0f", res[i].os_us);
            printf(", \"ok_runs\": %d", res[i].ok);
            if (res[i].skipped) {
                printf(", \"skipped\": ");
                cli_json_str(res[i].skipped);
            }
            printf("}");
        }
        /* Every bench JSON names the baseline of each ratio; this one has no ratios. */
        printf("], \"baselines\": {}}\n");
    } else {
        printf("os_boot_us %.0f (%s, %s)\nqemu_microvm_ms %.1f (%s)\nqemu_q35_ms %.1f (%s)\n"
               "hosted_ms %.1f\n",
               mv->os_us, mv->machine, mv->accel, mv->qemu_ms, mv->accel, q35->qemu_ms, q35->accel,
               hosted_ms);
    }
    return status;
}
