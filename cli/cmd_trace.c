/* cmd_trace.c — `orrery trace summary|show|export|import|record` and `orrery bench trace` (argv[0]
 * is the subcommand). */
#include <trace/outpath.h>
#include <trace/pcap.h>
#include <trace/reader.h>
#include <trace/recorder.h>
#include <trace/stream.h>
#include <trace/tools.h>
#include <trace/decode.h>
#include "commands.h"
#include "opt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ORRERY_COMMIT
#define ORRERY_COMMIT "unknown"
#endif

static const char trace_usage[] =
    "usage: orrery trace <command> FILE [options]\n"
    "  summary FILE [--node N]        messages, bytes, send->deliver latency per task and "
    "interface\n"
    "  show FILE [--task T] [--interface I] [--kind K] [--limit N] [--node N]\n"
    "                                 one line per event, messages decoded by interface\n"
    "  export --perfetto FILE OUT.json [--clock time|seq] [--node N]\n"
    "                                 Chrome trace-event JSON for ui.perfetto.dev ('-': stdout)\n"
    "  export --pcap FILE OUT.pcap [--node N]\n"
    "                                 net0's Ethernet frames for tcpdump -r / Wireshark ('-': "
    "stdout)\n"
    "  record OUT.db [RUN OPTIONS]    an alias of 'orrery run --trace OUT.db [RUN OPTIONS]'\n"
    "  import STREAM OUT.db [--platform P]\n"
    "                                 binary frames (bare-metal serial stream, '-': stdin) to a "
    "trace\n"
    "  corpus FILE DIR                seed inputs for the server fuzz targets (docs/fuzzing.md)\n"
    "  repair FILE                    expand the records a cut recording left in its capture\n"
    "                                 table (every reader does it when it opens such a file)\n"
    "A trace of a simulated cluster holds several nodes (kernels): --node NAME reads one.\n"
    "Traces are SQLite files; docs/trace-format.md has the schema and sqlite3 "
    "queries.\n" TRACE_OUT_HELP;

static const char summary_usage[] =
    "usage: orrery trace summary FILE [--node NAME]\n"
    "Per task and per interface: messages and bytes sent and received, send errors, and the\n"
    "send->deliver latency percentiles (p50/p90/p99) of the messages received. Each DELIVER is\n"
    "paired with the SEND it dequeued: FIFO per receiving endpoint.\n"
    "A trace with several nodes (a simulated cluster) has one section per node; --node NAME\n"
    "prints that node's alone.\n";

static const char show_usage[] =
    "usage: orrery trace show FILE [--task NAME|ID] [--interface NAME|ID] [--kind KIND] [--limit "
    "N]\n"
    "                         [--node NAME]\n"
    "One line per event in sequence order: seq, time, task, kind, and for messages the channel,\n"
    "the message name and its fields decoded by interface definition (hex when unknown).\n"
    "A trace with several nodes (a simulated cluster) has a node column after the time; --node\n"
    "NAME shows that node's events alone.\n";

static const char export_usage[] =
    "usage: orrery trace export --perfetto FILE OUT.json [--clock time|seq] [--node NAME]\n"
    "       orrery trace export --pcap FILE OUT.pcap [--node NAME]\n"
    "--perfetto: Chrome trace-event JSON (open it in ui.perfetto.dev): one track per task, one\n"
    "slice per event, a flow arrow from each send to its delivery. --clock seq spaces events by\n"
    "sequence number (the default for sim traces, whose virtual clock stands still while tasks\n"
    "run).\n"
    "--pcap: the Ethernet frames net0 moved, both ways, in trace order, as a pcap file "
    "(nanosecond\n"
    "timestamps = the trace's kernel clock) for 'tcpdump -r' or Wireshark; a damaged frame row is\n"
    "skipped and counted (docs/trace-format.md).\n"
    "A trace with several nodes (a simulated cluster): --perfetto makes one process per node\n"
    "(its tasks as threads) with a flow from each frame one node's net0 sent to where another\n"
    "node's net0 received it; --pcap writes every node's frames (each frame once per node that\n"
    "sent or received it). --node NAME exports that node alone.\n"
    "OUT is written to OUT.partial and renamed when done ('-': stdout); an existing OUT must be\n"
    "an earlier export of the same format (--pcap: any pcap file); anything else is refused,\n"
    "exit 2, and left untouched.\n";

static const char import_usage[] =
    "usage: orrery trace import STREAM OUT.db [--platform qemu|sim|hosted] [--quiet]\n"
    "Decode a binary trace stream (the bare-metal image's second serial port; '-' reads stdin)\n"
    "into a trace file. Garbage is skipped and every complete valid record kept; bad frames are\n"
    "counted in the run table. Every 2 seconds it says on stderr how far it is (--quiet: not).\n"
    "  --platform P   the run's platform in the trace (default qemu)\n"
    "  --quiet        no progress lines\n" TRACE_OUT_HELP;

static const char repair_usage[] =
    "usage: orrery trace repair FILE\n"
    "A recording cut short (SIGKILL, a crash) leaves its last records as capture blocks: the\n"
    "recorder's buffers stored raw in FILE-capture beside it (the capture table says where),\n"
    "expanded into events rows when the recorder closes. This expands them in place, fills the\n"
    "channels' interfaces and removes FILE-capture once every block is expanded; the run row\n"
    "keeps complete = 0. To move such a recording elsewhere first, move FILE-capture with it\n"
    "(without it, or with another recording's, no block is read and every captured record\n"
    "counts in run.dropped). A block that does not parse is kept in the capture table\n"
    "(capture.bad says why) and its records are added to run.dropped. The readers ('orrery\n"
    "trace', 'orrery replay') do the same when they open such a file, with a note. Exit 0\n"
    "(nothing to do is fine), 1 on an error.\n";

static const char record_usage[] =
    "usage: orrery trace record OUT.db [RUN OPTIONS]\n"
    "An alias of 'orrery run --trace OUT.db [RUN OPTIONS]': boot Orrery with every IPC event\n"
    "recorded into OUT.db. It takes exactly run's options (--manifest, --workers,\n"
    "--deterministic, --seed; see 'orrery run --help'); OUT.db comes first. The console is\n"
    "stdin/stdout; with --deterministic, a seed and an input give the same trace.\n" TRACE_OUT_HELP;

static const char bench_usage[] =
    "usage: orrery bench trace [--events N] [--threads N] [--json] [--keep FILE] [--no-ipc]\n"
    "record() alone (1 and N threads, warm buffers). SQLite ingest of synthetic records (8 of 10\n"
    "are 32-byte messages) from N threads into a trace: events per second until every record is\n"
    "committed, the close time (expanding the capture table, index build), the writer's events\n"
    "per CPU second (with and without close), and bytes per\n"
    "event. Then the IPC benchmark (orrery bench ipc) with tracing off and on, both tasks on one\n"
    "worker (the writer has the other CPU) and on two workers (the writer competes with them):\n"
    "round trip and throughput ratios, each against tracing off (the JSON's baselines name\n"
    "it), the records dropped (skip it with --no-ipc).\n";

/* Open a recorder for path on behalf of `who`: 0, or the exit status after printing why. */
int hl_trace_open(const char *who, const char *path, const trace_run_info *ti, trace_recorder **rec)
{
    char err[1024];
    int rc = trace_recorder_open(path, ti, rec, err, sizeof(err));

    if (rc != 0) {
        fprintf(stderr, "orrery: %s: %s\n", who, err);
        return rc == TRACE_OUT_REFUSED ? 2 : 1;
    }
    if (trace_recorder_notice(*rec))
        fprintf(stderr, "orrery: %s: note: %s\n", who, trace_recorder_notice(*rec));
    return 0;
}

/* Close it: 0, or 1 after printing why the trace is incomplete or unfinished. */
int hl_trace_close(const char *who, trace_recorder *rec)
{
    char err[1024] = "";

    if (trace_recorder_close(rec, err, sizeof(err)) == 0)
        return 0;
    fprintf(stderr, "orrery: %s: %s\n", who, err);
    return 1;
}

/*
 * Output commands stop as soon as their reader goes away (`trace show | head`):
 * main ignores SIGPIPE for the OS's console, these take it back. Any other
 * write error (a full disk) is reported: 1.
 */
void hl_output_begin(void)
{
    signal(SIGPIPE, SIG_DFL);
}

int hl_output_end(const char *who, FILE *f, int rc)
{
    if ((fflush(f) != 0 || ferror(f)) && rc == 0) {
        fprintf(stderr, "orrery %s: writing the output: %s\n", who, strerror(errno));
        return 1;
    }
    return rc;
}

/* Option values that are no short option (cli_getopt makes one of every val below 128). */
enum {
    OPT_TASK = 256,
    OPT_IFACE,
    OPT_KIND,
    OPT_LIMIT,
    OPT_PERFETTO,
    OPT_PCAP,
    OPT_CLOCK,
    OPT_PLATFORM,
    OPT_EVENTS,
    OPT_THREADS,
    OPT_JSON,
    OPT_KEEP,
    OPT_NO_IPC,
    OPT_QUIET,
    OPT_NODE
};

/*
 * The operands left after cli_getopt (argv[optind..]): at least min (else "CMD: missing") and
 * at most max (else "CMD: unexpected argument 'X'"). Their count, or -1 after the usage error.
 */
static int operands(int argc, char **argv, const char *cmd, int min, int max, const char *missing)
{
    int n = argc - optind;

    if (n < min) {
        cli_usage_error(cmd, "%s: %s", cmd, missing);
        return -1;
    }
    if (n > max) {
        cli_usage_error(cmd, "%s: unexpected argument '%s'", cmd, argv[optind + max]);
        return -1;
    }
    return n;
}

static int open_db(const char *path, trace_db **db)
{
    char err[512];

    if (trace_db_open(path, db, err, sizeof(err)) != 0)
        return trace_fail(err);
    return 0;
}

/* Open the trace and select --node (NULL: every node): 0, or the exit status after saying why
 * (an unknown node: 2, with the trace's nodes named). */
static int open_db_node(const char *path, const char *node, trace_db **db)
{
    char err[TRACE_NODES_MAX * 34 + 512];
    int rc;

    if ((rc = open_db(path, db)) != 0)
        return rc;
    if (trace_db_select_node_name(*db, node, err, sizeof(err)) != 0) {
        trace_fail(err);
        trace_db_close(*db);
        *db = NULL;
        return 2;
    }
    return 0;
}

static int cmd_repair(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    trace_repair_result res;
    trace_db *db;
    char err[600];
    int rc;

    while ((rc = cli_getopt(argc, argv, "trace repair", opts)) != -1) {
        if (rc != 'h')
            return 2;
        fputs(repair_usage, stdout);
        return 0;
    }
    if (operands(argc, argv, "trace repair", 1, 1, "which trace file?") < 0)
        return 2;
    /* Validate it as a reader would first, without expanding: what is not a trace is refused. */
    const char *path = argv[optind];
    uint64_t pending = 0;
    if (trace_capture_pending(path, &pending) != 0 || pending == 0) {
        if ((rc = open_db(path, &db)) != 0)
            return rc;
        trace_db_close(db);
        printf("%s: nothing to expand\n", path);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "orrery trace: %s: %s\n", path,
                fd < 0 ? strerror(errno) : "a recording is still writing it");
        return 1;
    }
    rc = trace_capture_repair(path, &res, err, sizeof(err));
    close(fd);
    if (rc != 0)
        return trace_fail(err);
    printf("%s: expanded %llu records from %llu capture blocks\n", path,
           (unsigned long long)res.records, (unsigned long long)res.blocks);
    if (res.bad_blocks) {
        printf("%s: %llu corrupt capture blocks kept (their %llu records counted in run.dropped);"
               " the first: %s\n",
               path, (unsigned long long)res.bad_blocks, (unsigned long long)res.bad_records,
               res.first_bad);
        return 1;
    }
    return 0;
}

static int cmd_summary(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"node", required_argument, NULL, OPT_NODE},
        {NULL, 0, NULL, 0},
    };
    const char *node = NULL;
    trace_db *db;
    trace_summary s;
    int rc;

    while ((rc = cli_getopt(argc, argv, "trace summary", opts)) != -1) {
        if (rc == OPT_NODE) {
            node = optarg;
            continue;
        }
        if (rc != 'h')
            return 2; /* cli_getopt said why */
        fputs(summary_usage, stdout);
        return 0;
    }
    if (operands(argc, argv, "trace summary", 1, 1, "which trace file?") < 0)
        return 2;
    if ((rc = open_db_node(argv[optind], node, &db)) != 0)
        return rc;
    hl_output_begin();
    if (trace_db_node_count(db)) {
        rc = trace_summary_print_nodes(db, stdout) == 0 ? 0 : trace_fail(trace_db_error(db));
        trace_db_close(db);
        return hl_output_end("trace", stdout, rc);
    }
    if (trace_summary_compute(db, &s) != 0) {
        rc = trace_fail(trace_db_error(db));
    } else {
        trace_summary_print(&s, stdout);
        rc = 0;
    }
    trace_summary_free(&s);
    trace_db_close(db);
    return hl_output_end("trace", stdout, rc);
}

static int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"task", required_argument, NULL, OPT_TASK},
        {"interface", required_argument, NULL, OPT_IFACE},
        {"kind", required_argument, NULL, OPT_KIND},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"node", required_argument, NULL, OPT_NODE},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "trace show", *node = NULL;
    trace_filter f = {0};
    trace_db *db;
    int c, rc;

    while ((c = cli_getopt(argc, argv, cmd, opts)) != -1) {
        if (c == 'h') {
            fputs(show_usage, stdout);
            return 0;
        } else if (c == OPT_TASK) {
            f.task = optarg;
        } else if (c == OPT_IFACE) {
            if (!(f.iface = trace_iface_from_name(optarg)))
                return cli_usage_error(cmd, "%s: unknown interface '%s'", cmd, optarg);
        } else if (c == OPT_KIND) {
            if (!(f.kind = trace_kind_from_name(optarg)))
                return cli_usage_error(cmd, "%s: unknown kind '%s'", cmd, optarg);
        } else if (c == OPT_LIMIT) {
            if (cli_opt_u64(cmd, "--limit", optarg, 1, UINT64_MAX, &f.limit) != 0)
                return 2;
        } else if (c == OPT_NODE) {
            node = optarg;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (operands(argc, argv, cmd, 1, 1, "which trace file?") < 0)
        return 2;
    if ((rc = open_db_node(argv[optind], node, &db)) != 0)
        return rc;
    hl_output_begin();
    rc = trace_show(db, &f, stdout) == 0 ? 0 : trace_fail(trace_db_error(db));
    trace_db_close(db);
    return hl_output_end("trace", stdout, rc);
}

/* `trace export --pcap FILE OUT`: the checks are done; the operands are left. */
static int export_pcap(int argc, char **argv, const char *cmd, const char *node)
{
    trace_pcap_stats st;
    trace_pcap *p;
    trace_db *db;
    char msg[1024];
    int rc;

    if (operands(argc, argv, cmd, 2, 2, "needs FILE and OUT.pcap") < 0)
        return 2;
    if ((rc = open_db_node(argv[optind], node, &db)) != 0)
        return rc;
    /* Asked before OUT is touched: a trace without net0 leaves no empty capture behind. */
    if (!trace_pcap_has_net0(db)) {
        rc = trace_fail("export: the trace names no net0 device (run without --net user, or "
                        "recorded by an orrery older than the trace's DEVICE records)");
        trace_db_close(db);
        return rc;
    }
    rc = trace_pcap_open(argv[optind + 1], &p, msg, sizeof(msg));
    if (rc != 0) {
        trace_db_close(db);
        fprintf(stderr, "orrery trace: export: %s\n", msg);
        return rc == TRACE_OUT_REFUSED ? 2 : 1;
    }
    hl_output_begin();
    rc = trace_pcap_export(db, p, &st, msg, sizeof(msg)) == 0 ? 0 : trace_fail(msg);
    rc = hl_output_end("trace", stdout, rc);
    if (rc != 0) {
        trace_pcap_abort(p);
    } else if (trace_pcap_close(p, msg, sizeof(msg)) != 0) {
        rc = trace_fail(msg);
    }
    if (st.bad)
        fprintf(stderr,
                "orrery trace: export: skipped %llu damaged frame row%s (first: seq %llu, %s)\n",
                (unsigned long long)st.bad, st.bad == 1 ? "" : "s",
                (unsigned long long)st.first_bad, st.why);
    trace_db_close(db);
    return rc;
}

static int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"perfetto", no_argument, NULL, OPT_PERFETTO},
        {"pcap", no_argument, NULL, OPT_PCAP},
        {"clock", required_argument, NULL, OPT_CLOCK},
        {"node", required_argument, NULL, OPT_NODE},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "trace export", *in, *out, *node = NULL;
    trace_clock clock = TRACE_CLOCK_AUTO;
    int perfetto = 0, pcap = 0, clock_given = 0, c, rc;
    trace_db *db;
    FILE *f;

    while ((c = cli_getopt(argc, argv, cmd, opts)) != -1) {
        if (c == 'h') {
            fputs(export_usage, stdout);
            return 0;
        } else if (c == OPT_PERFETTO) {
            perfetto = 1;
        } else if (c == OPT_PCAP) {
            pcap = 1;
        } else if (c == OPT_CLOCK) {
            clock_given = 1;
            if (strcmp(optarg, "time") == 0)
                clock = TRACE_CLOCK_TIME;
            else if (strcmp(optarg, "seq") == 0)
                clock = TRACE_CLOCK_SEQ;
            else
                return cli_usage_error(cmd, "%s: --clock is time or seq, not '%s'", cmd, optarg);
        } else if (c == OPT_NODE) {
            node = optarg;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (perfetto && pcap)
        return cli_usage_error(cmd, "%s: one format at a time (--perfetto or --pcap)", cmd);
    if (!perfetto && !pcap)
        return cli_usage_error(cmd, "%s: which format? (--perfetto or --pcap)", cmd);
    if (pcap && clock_given)
        return cli_usage_error(cmd, "%s: --clock is for --perfetto (a pcap has the trace's times)",
                               cmd);
    if (pcap)
        return export_pcap(argc, argv, cmd, node);
    if (operands(argc, argv, cmd, 2, 2, "needs FILE and OUT.json") < 0)
        return 2;
    in = argv[optind];
    out = argv[optind + 1];
    if ((rc = open_db_node(in, node, &db)) != 0)
        return rc;
    /* Like a trace: written to OUT.json.partial, renamed when done; only an export is replaced. */
    trace_out o = {.lock_fd = -1};
    char msg[1024];
    f = stdout;
    if (strcmp(out, "-") != 0) {
        int fd;
        rc = trace_out_prepare_export(out, &o, msg, sizeof(msg));
        if (rc != 0 || (fd = dup(o.lock_fd)) < 0 || !(f = fdopen(fd, "w"))) {
            if (rc == 0) {
                snprintf(msg, sizeof(msg), "cannot write %.900s: %s", o.partial, strerror(errno));
                trace_out_release(&o, true);
            }
            trace_db_close(db);
            fprintf(stderr, "orrery trace: export: %s\n", msg);
            return rc == TRACE_OUT_REFUSED ? 2 : 1;
        }
    }
    hl_output_begin();
    rc = trace_export_perfetto(db, f, clock) == 0 ? 0 : trace_fail(trace_db_error(db));
    rc = hl_output_end("trace", f, rc);
    if (f != stdout) {
        if (fclose(f) != 0 && rc == 0)
            rc = trace_fail("error writing the JSON file");
        if (rc == 0 && trace_out_commit(&o, msg, sizeof(msg)) != 0)
            rc = trace_fail(msg);
        trace_out_release(&o, rc != 0);
    }
    trace_db_close(db);
    return rc;
}

/* trace import's progress: a line every 2 s of the import, on stderr. */
typedef struct import_progress {
    struct timespec t0;
    double last;  /* seconds since t0 of the last line */
    bool printed; /* any line yet */
} import_progress;

static double since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void import_progress_line(void *self, const trace_stream_stats *st, uint64_t bytes)
{
    import_progress *p = self;
    double t = since(&p->t0);

    if (t - p->last < 2.0)
        return;
    fprintf(stderr,
            "orrery: trace import: %llu records, %.1f MB read, %llu bad frames (%.0f s, %.0f "
            "records/s)\n",
            (unsigned long long)st->frames, (double)bytes / 1e6, (unsigned long long)st->bad_frames,
            t, (double)st->frames / t);
    p->last = t;
    p->printed = true;
}

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "trace import", *in, *out, *platform = "qemu";
    import_progress prog = {0};
    bool quiet = false;
    trace_run_info run = {0};
    trace_stream_stats st;
    trace_recorder *rec;
    char err[512];
    int c, fd, rc;

    while ((c = cli_getopt(argc, argv, cmd, opts)) != -1) {
        if (c == 'h') {
            fputs(import_usage, stdout);
            return 0;
        } else if (c == OPT_PLATFORM) {
            if (strcmp(optarg, "qemu") != 0 && strcmp(optarg, "sim") != 0 &&
                strcmp(optarg, "hosted") != 0)
                return cli_usage_error(cmd, "%s: --platform is qemu, sim or hosted, not '%s'", cmd,
                                       optarg);
            platform = optarg;
        } else if (c == OPT_QUIET) {
            quiet = true;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (operands(argc, argv, cmd, 2, 2, "needs STREAM and OUT.db") < 0)
        return 2;
    in = argv[optind];
    out = argv[optind + 1];
    fd = strcmp(in, "-") == 0 ? 0 : open(in, O_RDONLY);
    if (fd < 0) {
        snprintf(err, sizeof(err), "cannot read %s: %s", in, strerror(errno));
        return trace_fail(err);
    }
    run.platform = platform;
    run.command = "orrery trace import";
    run.workers = 1;
    if ((rc = hl_trace_open("trace import", out, &run, &rec)) != 0) {
        if (fd)
            close(fd);
        return rc;
    }
    trace_recorder_set_expand_duty(rec, 1); /* nothing else runs here: expand as it comes */
    clock_gettime(CLOCK_MONOTONIC, &prog.t0);
    rc = trace_import_fd_progress(fd, rec, &st, quiet ? NULL : import_progress_line, &prog, err,
                                  sizeof(err));
    if (fd)
        close(fd);
    if (rc != 0)
        fprintf(stderr, "orrery: %s\n", err);
    if (prog.printed)
        fprintf(stderr, "orrery: trace import: %llu records read; finishing %s\n",
                (unsigned long long)st.frames, out);
    if (hl_trace_close("trace import", rec) != 0 || rc != 0)
        return 1;
    printf("imported %llu records into %s (%llu bad frames, %llu garbage bytes%s)\n",
           (unsigned long long)st.frames, out, (unsigned long long)st.bad_frames,
           (unsigned long long)st.garbage_bytes, st.truncated ? ", last frame truncated" : "");
    return 0;
}

/*
 * `trace record OUT.db [RUN OPTIONS]` is `run --trace OUT.db [RUN OPTIONS]`: one command line
 * for recording, so the alias has every option run has and means the same by each.
 */
static int cmd_record(int argc, char **argv)
{
    const char *cmd = "trace record";
    char **run_argv;
    int rc;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(record_usage, stdout);
        return 0;
    }
    if (argc < 2 || (argv[1][0] == '-' && argv[1][1]))
        return cli_usage_error(cmd, "%s: which trace file? (OUT.db comes first)", cmd);
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--trace") == 0 || strncmp(argv[i], "--trace=", 8) == 0)
            return cli_usage_error(cmd, "%s: OUT.db is the trace; no --trace", cmd);
    /* run, --trace, OUT.db, the rest, NULL: argc + 2 slots. */
    if (!(run_argv = calloc((size_t)argc + 2, sizeof(*run_argv)))) {
        fprintf(stderr, "orrery: %s: out of memory\n", cmd);
        return 1;
    }
    run_argv[0] = "run";
    run_argv[1] = "--trace";
    for (int i = 1; i < argc; i++)
        run_argv[i + 1] = argv[i];
    rc = hl_cmd_run(argc + 1, run_argv);
    free(run_argv);
    return rc;
}

int hl_cmd_trace(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("trace",
                               "trace: which command? (summary, show, export, import, record,"
                               " corpus)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(trace_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "summary") == 0)
        return cmd_summary(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    if (strcmp(argv[1], "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (strcmp(argv[1], "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "record") == 0)
        return cmd_record(argc - 1, argv + 1);
    if (strcmp(argv[1], "repair") == 0)
        return cmd_repair(argc - 1, argv + 1);
    if (strcmp(argv[1], "corpus") == 0)
        return hl_cmd_trace_corpus(argc - 1, argv + 1);
    if (argv[1][0] == '-')
        return cli_usage_error("trace", "trace: unknown option '%s'", argv[1]);
    return cli_usage_error("trace", "trace: unknown command '%s'", argv[1]);
}

/* A benchmark's own temporary trace (named by our pid), finished or left incomplete, with
 * the files beside it (a capture file a bad block kept, a WAL). */
static void bench_remove(const char *path)
{
    trace_out_remove_own(path);
}

/* One placement of the IPC benchmark, tracing off and on. */
typedef struct ipc_pair {
    uint64_t rtt_off, rtt_on;     /* median round trip, ns */
    double tput_off, tput_on;     /* one-way messages per second */
    uint64_t rtt_null;            /* round trip with a sink that discards: the kernel's share */
    uint64_t records;             /* trace records of the traced run */
    uint64_t dropped;             /* ... that the recorder dropped (its buffers full) */
    double writer_ns_per_record;  /* the writer thread's CPU during the run, per record */
    double close_s;               /* closing the trace (expanding the capture table) */
    double close_cpu_ns_per_record; /* close's CPU per record */
    double rtt_ratio, tput_ratio; /* on/off for the round trip, off/on for throughput */
} ipc_pair;

typedef struct ipc_overhead {
    bool ran;
    ipc_pair same;  /* client and server on worker 0: worker 1's CPU is free for the writer */
    ipc_pair cross; /* client on worker 0, server on worker 1: the writer competes for a CPU */
} ipc_overhead;

static void null_record(void *self, const hal_trace_rec_t *r)
{
    (void)self;
    (void)r;
}

static const hal_trace_sink_t null_sink = {.record = null_record};

/* A round trip records 2 SENDs and 2 DELIVERs. */
#define RECORDS_PER_RTT 4

static int bench_ipc_pair(const char *dir, int client, int server, ipc_pair *o, char *err,
                          size_t errlen)
{
    trace_run_info ti = {.platform = "hosted",
                         .commit = ORRERY_COMMIT,
                         .workers = 2,
                         .command = "orrery bench trace"};
    trace_recorder_stats st;
    trace_recorder *rec;
    char path[300];

    if (hl_bench_ipc_on(client, server, NULL, &o->rtt_off, &o->tput_off) != 0) {
        snprintf(err, errlen, "the IPC benchmark failed (tracing off)");
        return -1;
    }
    double tput_null;
    if (hl_bench_ipc_on(client, server, &null_sink, &o->rtt_null, &tput_null) != 0) {
        snprintf(err, errlen, "the IPC benchmark failed (null sink)");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/orrery-bench-ipc-trace-%d.db", dir, (int)getpid());
    if (trace_recorder_open(path, &ti, &rec, err, errlen) != 0)
        return -1;
    trace_recorder_stats_at_close(rec, &st);
    int rc = hl_bench_ipc_on(client, server, trace_recorder_sink(rec), &o->rtt_on, &o->tput_on);
    trace_recorder_close(rec, NULL, 0);
    bench_remove(path);
    if (rc != 0) {
        snprintf(err, errlen, "the IPC benchmark failed (tracing on)");
        return -1;
    }
    o->records = st.recorded;
    o->dropped = st.dropped;
    if (st.recorded) {
        o->writer_ns_per_record =
            (double)(st.writer_cpu_ns - st.close_cpu_ns) / (double)st.recorded;
        o->close_cpu_ns_per_record = (double)st.close_cpu_ns / (double)st.recorded;
    }
    o->close_s = (double)st.close_ns / 1e9;
    o->rtt_ratio = o->rtt_off ? (double)o->rtt_on / (double)o->rtt_off : 0;
    o->tput_ratio = o->tput_on > 0 ? o->tput_off / o->tput_on : 0;
    return 0;
}

/* The IPC benchmark with tracing off, then on (the recorder into a temporary file). */
static int bench_ipc_overhead(const char *dir, ipc_overhead *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    if (bench_ipc_pair(dir, 0, 0, &o->same, err, errlen) != 0 ||
        bench_ipc_pair(dir, 0, 1, &o->cross, err, errlen) != 0)
        return -1;
    o->ran = true;
    return 0;
}

static void print_pair_json(const char *name, const ipc_pair *p)
{
    printf(",\"%s_rtt_ns_off\":%llu,\"%s_rtt_ns_on\":%llu,\"%s_rtt_ratio\":%.3f,"
           "\"%s_msgs_per_s_off\":%.0f,\"%s_msgs_per_s_on\":%.0f,\"%s_throughput_ratio\":%.3f,"
           "\"%s_rtt_ns_null_sink\":%llu,\"%s_null_sink_rtt_ratio\":%.3f,"
           "\"%s_trace_records\":%llu,\"%s_trace_dropped\":%llu,"
           "\"%s_writer_cpu_ns_per_record\":%.1f,\"%s_close_s\":%.3f,"
           "\"%s_close_cpu_ns_per_record\":%.1f",
           name, (unsigned long long)p->rtt_off, name, (unsigned long long)p->rtt_on, name,
           p->rtt_ratio, name, p->tput_off, name, p->tput_on, name, p->tput_ratio, name,
           (unsigned long long)p->rtt_null, name,
           p->rtt_off ? (double)p->rtt_null / (double)p->rtt_off : 0, name,
           (unsigned long long)p->records, name, (unsigned long long)p->dropped, name,
           p->writer_ns_per_record, name, p->close_s, name, p->close_cpu_ns_per_record);
}

/* The "baselines" entries of one placement's ratios: each against the run with tracing off. */
static void print_pair_baselines(const char *name, bool first)
{
    printf("%s\"%s_rtt_ratio\":{\"baseline\":\"%s_rtt_ns_off\","
           "\"ratio\":\"%s_rtt_ns_on / %s_rtt_ns_off\"},"
           "\"%s_throughput_ratio\":{\"baseline\":\"%s_msgs_per_s_off\","
           "\"ratio\":\"%s_msgs_per_s_off / %s_msgs_per_s_on\"},"
           "\"%s_null_sink_rtt_ratio\":{\"baseline\":\"%s_rtt_ns_off\","
           "\"ratio\":\"%s_rtt_ns_null_sink / %s_rtt_ns_off\"}",
           first ? "" : ",", name, name, name, name, name, name, name, name, name, name, name,
           name);
}

static void print_pair(const char *title, const ipc_pair *p, double rec_ns, double goal)
{
    /* What RECORDS_PER_RTT record() calls alone add to a round trip. */
    double floor = p->rtt_off ? (p->rtt_off + RECORDS_PER_RTT * rec_ns) / p->rtt_off : 0;
    printf("  %s (%llu records):\n"
           "    round trip    %8llu -> %llu ns   ratio %.2fx (goal <= %.1fx; %d x record() alone"
           " gives %.2fx)\n"
           "    one way       %8.0f -> %.0f msgs/s   ratio %.2fx\n"
           "    null sink     %8llu ns round trip (the kernel's tracing alone: ratio %.2fx)\n",
           title, (unsigned long long)p->records, (unsigned long long)p->rtt_off,
           (unsigned long long)p->rtt_on, p->rtt_ratio, goal, RECORDS_PER_RTT, floor, p->tput_off,
           p->tput_on, p->tput_ratio, (unsigned long long)p->rtt_null,
           p->rtt_off ? (double)p->rtt_null / (double)p->rtt_off : 0);
    printf("    writer        %8.1f ns of CPU per record during the run (capture blocks)\n"
           "    close         %8.3f s (%.1f ns of CPU per record: expanding the capture table,"
           " indexes)\n",
           p->writer_ns_per_record, p->close_s, p->close_cpu_ns_per_record);
    if (p->dropped)
        printf("    dropped       %8llu records (the recorder's buffers were full: the writer fell"
               " behind)\n",
               (unsigned long long)p->dropped);
}

int hl_cmd_bench_trace(int argc, char **argv)
{
    uint64_t events = 2000000, threads = 2;
    const char *keep = NULL;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[256], err[512];
    trace_ingest_result r;
    double rec1_ns, recn_ns;
    int json = 0, no_ipc = 0, c;
    ipc_overhead ov;
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"events", required_argument, NULL, OPT_EVENTS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"json", no_argument, NULL, OPT_JSON},
        {"keep", required_argument, NULL, OPT_KEEP},
        {"no-ipc", no_argument, NULL, OPT_NO_IPC},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "bench trace";

    while ((c = cli_getopt(argc, argv, cmd, opts)) != -1) {
        if (c == 'h') {
            fputs(bench_usage, stdout);
            return 0;
        } else if (c == OPT_JSON) {
            json = 1;
        } else if (c == OPT_NO_IPC) {
            no_ipc = 1;
        } else if (c == OPT_KEEP) {
            keep = optarg;
        } else if (c == OPT_EVENTS) {
            if (cli_opt_u64(cmd, "--events", optarg, 1, UINT64_MAX, &events) != 0)
                return 2;
        } else if (c == OPT_THREADS) {
            if (cli_opt_u64(cmd, "--threads", optarg, 1, 64, &threads) != 0)
                return 2;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (operands(argc, argv, cmd, 0, 0, "") < 0)
        return 2;
    snprintf(path, sizeof(path), "%s/orrery-bench-record-%d.db", tmp, (int)getpid());
    rec1_ns = trace_bench_record_ns(path, 1, err, sizeof(err));
    recn_ns = rec1_ns < 0 ? -1 : trace_bench_record_ns(path, (unsigned)threads, err, sizeof(err));
    bench_remove(path);
    if (rec1_ns < 0 || recn_ns < 0)
        return trace_fail(err);
    if (keep)
        snprintf(path, sizeof(path), "%s", keep);
    else
        snprintf(path, sizeof(path), "%s/orrery-bench-trace-%d.db", tmp, (int)getpid());
    if (trace_bench_ingest(path, events, (unsigned)threads, &r, err, sizeof(err)) != 0)
        return trace_fail(err);
    if (!keep)
        bench_remove(path);
    memset(&ov, 0, sizeof(ov));
    if (!no_ipc && bench_ipc_overhead(tmp, &ov, err, sizeof(err)) != 0)
        return trace_fail(err);
    if (json) {
        printf("{\"record_ns_1_thread\":%.1f,\"record_ns_n_threads\":%.1f,"
               "\"ingest_events\":%llu,\"threads\":%u,\"ingest_record_ns\":%.1f,"
               "\"ingest_events_per_s\":%.0f,\"close_s\":%.3f,\"writer_events_per_cpu_s\":%.0f,"
               "\"capture_events_per_cpu_s\":%.0f,\"bytes_per_event\":%.1f,\"dropped\":%llu",
               rec1_ns, recn_ns, (unsigned long long)r.events, r.threads, r.record_ns,
               r.events_per_s, r.close_s, r.writer_events_per_cpu_s, r.capture_events_per_cpu_s,
               r.bytes_per_event, (unsigned long long)r.dropped);
        if (ov.ran) {
            print_pair_json("ipc_same_worker", &ov.same);
            print_pair_json("ipc_cross_worker", &ov.cross);
        }
        printf(",\"baselines\":{");
        if (ov.ran) {
            print_pair_baselines("ipc_same_worker", true);
            print_pair_baselines("ipc_cross_worker", false);
        }
        printf("}}\n");
        return 0;
    }
    printf("record() alone (warm buffers, no shared counter in the loop):\n"
           "  1 thread        %8.1f ns/record\n"
           "  %u threads       %8.1f ns/record (per thread, at once)\n",
           rec1_ns, r.threads, recn_ns);
    printf("trace ingest: %llu events from %u threads (mean payload %.1f bytes)\n"
           "  record()        %8.1f ns/event (per thread, buffers growing: page faults, CPU"
           " shared with the writer)\n"
           "  ingest          %8.0f events/s (first record() to last commit; goal >= 1000000)\n"
           "  close           %8.3f s (capture table expanded into events rows, index,"
           " checkpoint)\n"
           "  writer CPU      %8.0f events per CPU second, ingest and close (load-independent)\n"
           "  capture CPU     %8.0f events per CPU second, the writer during ingest alone\n"
           "  file            %8.1f bytes/event\n"
           "  dropped         %8llu\n",
           (unsigned long long)r.events, r.threads, r.payload_mean, r.record_ns, r.events_per_s,
           r.close_s, r.writer_events_per_cpu_s, r.capture_events_per_cpu_s, r.bytes_per_event,
           (unsigned long long)r.dropped);
    if (ov.ran) {
        printf("IPC benchmark (orrery bench ipc, 2 workers pinned to CPUs), tracing off -> on;"
               " every ratio against tracing off:\n");
        print_pair("same worker: client and server on worker 0, the writer free to use CPU 1",
                   &ov.same, rec1_ns, 1.5);
        print_pair("cross worker: client on worker 0, server on worker 1, the writer shares"
                   " their CPUs",
                   &ov.cross, rec1_ns, 2.0);
    }
    return 0;
}

/* ---- `orrery run --trace FILE` ---------------------------------------------------------- */

static trace_recorder *run_rec;

int hl_trace_run_open(const char *path, bool deterministic, uint64_t seed, const char *manifest,
                      size_t manifest_len, unsigned workers, const char *command,
                      const struct hal_trace_sink **sink)
{
    trace_run_info ti = {
        .platform = deterministic ? "sim" : "hosted",
        .seed = deterministic ? seed : 0,
        .commit = ORRERY_COMMIT,
        .manifest = manifest,
        .manifest_len = manifest_len,
        .workers = workers,
        .command = command,
    };
    int rc = hl_trace_open("run", path, &ti, &run_rec);

    if (rc != 0) {
        run_rec = NULL;
        return rc;
    }
    *sink = trace_recorder_sink(run_rec);
    return 0;
}

int hl_trace_run_close(int status)
{
    int rc;

    if (!run_rec)
        return 0;
    trace_recorder_set_exit_status(run_rec, status);
    rc = hl_trace_close("run", run_rec);
    run_rec = NULL;
    return rc;
}
