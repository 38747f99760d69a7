/* main.c — the orrery command line: one table of commands, dispatched by name. */
#include "cmd_sim.h"
#include "commands.h"
#include "opt.h"

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

/* A command is its file and one line here; `orrery --help` lists this table. */
typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
    const char *summary;
} command_t;

static int cmd_version(int argc, char **argv);
static int cmd_bench(int argc, char **argv);

static const command_t commands[] = {
    {"run", hl_cmd_run, "boot Orrery hosted, shell on this terminal (--trace FILE.db records)"},
    {"qemu", hl_cmd_qemu, "boot the bare-metal image under QEMU"},
    {"mkfs", hl_cmd_mkfs, "make an ext2 disk image from a folder (mke2fs -d)"},
    {"sim", hl_cmd_sim, "run scenarios over many seeds deterministically, with faults"},
    {"trace", hl_cmd_trace, "read, decode, export and import IPC traces (SQLite)"},
    {"serve", hl_cmd_serve, "HTTP proxy that boots a fresh Orrery for every request"},
    {"replay", hl_cmd_replay, "replay one server against a recorded trace, report divergence"},
    {"bench", cmd_bench,
     "measure: ipc, boot, trace, qtrace, sim, net, fs, http (orrery bench --help)"},
    {"version", cmd_version, "print the version and commit"},
};

static const command_t benches[] = {
    {"ipc", hl_cmd_bench_ipc, "IPC round trip and throughput against a Linux pipe"},
    {"boot", hl_cmd_bench_boot, "QEMU start -> prompt, OS entry -> ready"},
    {"trace", hl_cmd_bench_trace, "the trace recorder's cost and ingest rate"},
    {"qtrace", hl_cmd_bench_qtrace, "QEMU trace records/s: virtio-console against COM2"},
    {"sim", hl_cmd_bench_sim, "the simulator's time compression, message rate, clusters"},
    {"net", hl_cmd_bench_net, "TCP echo: round trip, bulk, connections/s against loopback"},
    {"fs", hl_cmd_bench_fs, "files: write, read, creates/s, fsync against host files"},
    {"http", hl_cmd_bench_http, "HTTP with wrk: httpd, orrery serve, against nginx"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void print_table(FILE *f, const char *prefix, const command_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %s%-8s %s\n", prefix, t[i].name, t[i].summary);
}

static void usage(FILE *f)
{
    fputs("usage: orrery <command> [options]\n"
          "\n"
          "Orrery is a microkernel OS; this program runs it as a Linux process, under QEMU,\n"
          "and in deterministic simulation, and reads its traces.\n"
          "\n"
          "commands:\n",
          f);
    print_table(f, "", commands, NELEM(commands));
    fputs("\nRun 'orrery <command> --help' for a command's options.\n", f);
}

static const command_t *find(const command_t *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

static const char version_usage[] = "usage: orrery version\n"
                                    "\n"
                                    "Print the version and the commit it was built from.\n";

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
        return cli_usage_error("version", "version: unexpected argument '%s'", argv[1]);
    }
    printf("orrery %s (commit %s)\n", ORRERY_VERSION, ORRERY_COMMIT);
    return 0;
}

static int cmd_bench(int argc, char **argv)
{
    const command_t *b;

    if (argc < 2)
        return cli_usage_error(
            "bench", "bench: which benchmark? (ipc, boot, trace, qtrace, sim, net, fs or http)");
    if (is_help(argv[1])) {
        fputs("usage: orrery bench <ipc|boot|trace|qtrace|sim|net|fs|http> [options]\n\n", stdout);
        print_table(stdout, "", benches, NELEM(benches));
        fputs("\nRun 'orrery bench <name> --help' for a benchmark's options.\n", stdout);
        return 0;
    }
    if (!(b = find(benches, NELEM(benches), argv[1])))
        return cli_usage_error("bench", "bench: unknown benchmark '%s'", argv[1]);
    return b->run(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    const command_t *c;

    /* Output goes to pipes in tests: no stdio buffering surprises around exit. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* `orrery run | head` must not die of SIGPIPE mid-write; the console drops output instead. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if ((c = find(commands, NELEM(commands), argv[1])))
        return c->run(argc - 1, argv + 1);
    if (argv[1][0] == '-')
        return cli_usage_error(NULL, "unknown option '%s'", argv[1]);
    return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
