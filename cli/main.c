/* main.c — the orrery command line: dispatches run, bench, qemu and version. */
#include "cmd_sim.h"
#include "commands.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ORRERY_VERSION
#define ORRERY_VERSION "0.0.0"
#endif
#ifndef ORRERY_COMMIT
#define ORRERY_COMMIT "unknown"
#endif

static const char usage[] =
    "usage: orrery <command> [options]\n"
    "\n"
    "Orrery is a microkernel OS; this program runs it as a Linux process.\n"
    "\n"
    "commands:\n"
    "  run          boot Orrery hosted, shell on this terminal (stdin/stdout);\n"
    "               --trace FILE.db records every IPC event\n"
    "  bench ipc    measure IPC round trips and throughput against a pipe baseline\n"
    "  bench boot   measure bare-metal boot time under QEMU\n"
    "  bench trace  measure the trace recorder's cost\n"
    "  bench sim    measure the simulator's time compression and message rate\n"
    "  sim          run scenarios over many seeds deterministically, with faults\n"
    "  trace        read, decode, export and import IPC traces (SQLite)\n"
    "  replay       replay one server against a recorded trace, report the first divergence\n"
    "  qemu         boot the bare-metal image under QEMU\n"
    "  version      print the version and commit\n"
    "\n"
    "Run 'orrery <command> --help' for a command's options.\n";

static const char bench_usage[] =
    "usage: orrery bench <ipc|boot|trace|sim> [options]\n"
    "\n"
    "  ipc    IPC round trip and throughput (orrery bench ipc --help)\n"
    "  boot   bare-metal boot time (orrery bench boot --help)\n"
    "  trace  the trace recorder's cost (orrery bench trace --help)\n"
    "  sim    the simulator's speed (orrery bench sim --help)\n";

static const char version_usage[] = "usage: orrery version\n"
                                    "\n"
                                    "Print the version and the commit it was built from.\n";

int hl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("orrery: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try 'orrery %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    return 2;
}

bool hl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        if (is_help(argv[1])) {
            fputs(version_usage, stdout);
            return 0;
        }
        return hl_usage_error("version", "version: unexpected argument '%s'", argv[1]);
    }
    printf("orrery %s (commit %s)\n", ORRERY_VERSION, ORRERY_COMMIT);
    return 0;
}

static int cmd_bench(int argc, char **argv)
{
    if (argc < 2)
        return hl_usage_error("bench", "bench: which benchmark? (ipc, boot, trace or sim)");
    if (is_help(argv[1])) {
        fputs(bench_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "ipc") == 0)
        return hl_cmd_bench_ipc(argc - 1, argv + 1);
    if (strcmp(argv[1], "boot") == 0)
        return hl_cmd_bench_boot(argc - 1, argv + 1);
    if (strcmp(argv[1], "trace") == 0)
        return hl_cmd_bench_trace(argc - 1, argv + 1);
    if (strcmp(argv[1], "sim") == 0)
        return hl_cmd_bench_sim(argc - 1, argv + 1);
    return hl_usage_error("bench", "bench: unknown benchmark '%s'", argv[1]);
}

int main(int argc, char **argv)
{
    /* Output goes to pipes in tests: no stdio buffering surprises around exit. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* `orrery run | head` must not die of SIGPIPE mid-write; the console drops output instead. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return hl_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "qemu") == 0)
        return hl_cmd_qemu(argc - 1, argv + 1);
    if (strcmp(cmd, "trace") == 0)
        return hl_cmd_trace(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0)
        return hl_cmd_sim(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0)
        return hl_cmd_replay(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return hl_usage_error(NULL, "unknown option '%s'", cmd);
    return hl_usage_error(NULL, "unknown command '%s'", cmd);
}
