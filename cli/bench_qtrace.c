/* bench_qtrace.c — `orrery bench qtrace`: trace records per second from the QEMU image to the
 * SQLite file, on the serial port (the baseline) and on the virtio-console bulk channel. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"

#include <trace/frame.h>
#include <trace/outpath.h>
#include <trace/reader.h>
#include <trace/stream.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Each row is two runs of `orrery qemu --accel tcg --trace T --trace-channel C --manifest M`,
 * the manifest holding one program, traceload (servers/traceload): an IPC ping-pong of N
 * round trips (4 records each), then a shutdown. One run with N = 1 (boot, shutdown, the
 * SQLite file: the fixed cost) and one with the row's N; the rate is
 *   (records of the long run - records of the short one) / (its wall time - the short one's)
 * measured from fork to the exit of `orrery qemu`, which returns once the trace is closed: so
 * it is records from the image to the file, boot and file creation taken out. Each run must
 * exit 0 with a complete trace, no bad frame and every record (seq 1..events).
 */
enum {
    MSGS_BULK_DEFAULT = 250000,
    MSGS_SERIAL_DEFAULT = 5000,
    RUNS_DEFAULT = 3,
    RUNS_MAX = 20,
    MSGS_MAX = 100000000,
    RECORDS_PER_ROUND_TRIP = 4, /* traceload's */
    REASON_MAX = 400,
};

typedef struct run_fig {
    uint64_t records;   /* events in the trace */
    double seconds;     /* fork to exit of orrery qemu */
    double guest_rec_s; /* traceload's own figure: records / kernel-clock time */
    double guest_ns;    /* traceload's kernel-clock time */
    bool have_waits;    /* the bulk channel's counters (`--append verbose`) were printed */
    uint64_t waits, wait_ms; /* times the image found every buffer with the host, and how long */
    uint64_t notify_ms;      /* time in its notifications (a system call in QEMU's vCPU thread) */
} run_fig_t;

typedef struct row {
    const char *channel; /* "serial", "virtio" */
    uint64_t msgs;
    run_fig_t idle, full; /* the short run; the long run whose rate is the median */
    double rec_s;         /* the row's figure: the median of the long runs' rates */
    double runs_rec_s[RUNS_MAX]; /* each long run's rate, in the order they ran */
    int nruns;
    bool ok;
    char why[REASON_MAX];
} row_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Run argv, its output (stdout and stderr) into out (cut to fit). The exit status, 128 + a
 * signal, or -1. */
static int run_capture(char **argv, char *out, size_t outlen)
{
    int o[2], in[2], ws;
    size_t len = 0;
    pid_t pid;

    if (pipe2(o, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0); /* held open: the console's input never ends */
        dup2(o[1], 1);
        dup2(o[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(o[1]);
    close(in[0]);
    for (;;) {
        char buf[4096];
        ssize_t r = read(o[0], buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t n = (size_t)r < outlen - 1 - len ? (size_t)r : outlen - 1 - len;
        memcpy(out + len, buf, n);
        len += n;
    }
    out[len] = '\0';
    close(o[0]);
    close(in[1]);
    if (pid < 0)
        return -1;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static int record_one(const char *self, const char *dir, const char *machine, const char *channel,
                      uint64_t msgs, const char *trace, run_fig_t *f, char *why)
{
    char manifest[4200], text[256], out[65536];
    trace_run_row run;
    trace_db *db;
    int fd, status;

    snprintf(manifest, sizeof(manifest), "%s/traceload.manifest", dir);
    int n = snprintf(text, sizeof(text),
                     "# orrery bench qtrace: an IPC ping-pong that makes 4 records a round trip\n"
                     "program traceload restart=never reach=init arg=msgs=%" PRIu64 "\n",
                     msgs);
    fd = open(manifest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || cli_write_all(fd, text, (size_t)n) != 0) {
        snprintf(why, REASON_MAX, "writing %.300s: %s", manifest, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    char *tr = (char *)trace;
    char *argv[] = {
        (char *)self, "qemu",     "--accel",         "tcg",           "--machine",  (char *)machine,
        "--trace",    tr,         "--trace-channel", (char *)channel, "--manifest", manifest,
        "--append",   "verbose", /* the image's trace counters at shutdown */
        NULL};
    uint64_t t0 = now_ns();
    status = run_capture(argv, out, sizeof(out));
    f->seconds = (double)(now_ns() - t0) / 1e9;
    if (status != 0) {
        const char *last = out[0] ? out : "no output";
        snprintf(why, REASON_MAX, "orrery qemu exited %d: %.300s", status, last);
        return -1;
    }
    const char *res = strstr(out, "result msgs=");
    unsigned long long rm = 0, rr = 0, rns = 0;
    if (!res || sscanf(res, "result msgs=%llu records=%llu ns=%llu", &rm, &rr, &rns) != 3 ||
        rns == 0) {
        snprintf(why, REASON_MAX, "no result line from traceload");
        return -1;
    }
    f->guest_rec_s = (double)rr / ((double)rns / 1e9);
    f->guest_ns = (double)rns;
    const char *w = strstr(out, "waited for a free buffer ");
    unsigned long long wn = 0, wms = 0, nms = 0;
    f->have_waits = w && sscanf(w, "waited for a free buffer %llu times (%llu ms), notifying took "
                                   "%llu ms",
                                &wn, &wms, &nms) == 3;
    f->waits = wn;
    f->wait_ms = wms;
    f->notify_ms = nms;
    if (trace_db_open(trace, &db, why, REASON_MAX) != 0)
        return -1;
    if (trace_db_run(db, &run) != 0) {
        snprintf(why, REASON_MAX, "%.300s: no run row", trace);
        trace_db_close(db);
        return -1;
    }
    trace_db_close(db);
    f->records = run.events;
    if (!run.complete || run.bad_frames || run.dropped || run.events < rr) {
        snprintf(why, REASON_MAX,
                 "the trace is not whole: complete %d, %" PRIu64 " bad frames, %" PRIu64
                 " dropped, %" PRIu64 " events for %llu records of traceload",
                 run.complete, run.bad_frames, run.dropped, run.events, rr);
        return -1;
    }
    return 0;
}

/* One run of orrery qemu --trace into dir; the trace and whatever it left beside it (a
 * -capture file, a .partial of a failed run) are removed after, so dir can go. */
static int one_run(const char *self, const char *dir, const char *machine, const char *channel,
                   uint64_t msgs, run_fig_t *f, char *why)
{
    char trace[4200];
    int rc;

    snprintf(trace, sizeof(trace), "%s/%s-%" PRIu64 ".db", dir, channel, msgs);
    rc = record_one(self, dir, machine, channel, msgs, trace, f, why);
    trace_out_remove_own(trace);
    return rc;
}

/* traceload's rate without the time the image spent waiting for the host: for a free buffer,
 * and in notifications (QEMU's vCPU thread writes an eventfd there, waking its main loop,
 * which writes the buffer to the pipe: a loaded host may run other threads meanwhile). */
static double excl_wait(const run_fig_t *f)
{
    double ns = f->guest_ns - (double)(f->wait_ms + f->notify_ms) * 1e6;
    return ns > 0 ? f->guest_rec_s * f->guest_ns / ns : 0;
}

static void count_rec(void *self, const hal_trace_rec_t *rec)
{
    (void)rec;
    (*(uint64_t *)self)++;
}

/*
 * The host's decoding alone: traceload's records (SEND and DELIVER, 32-byte payloads) as the
 * bulk channel's frames, fed to the stream decoder in 64 KiB pieces, as the import thread's
 * reads hand them over, with a recorder that only counts. Records per CPU second of this
 * thread; 0 if it cannot run.
 */
static double decode_rate(void)
{
    enum { PIECE = 65536, RECORDS = 2000000, BUF = 4 << 20 };
    unsigned char *buf = malloc(BUF), payload[32];
    size_t len = 0;
    uint64_t n = 0, seq = 1;
    struct timespec a, b;
    trace_stream *s = trace_stream_new(count_rec, &n);

    if (!buf || !s) {
        free(buf);
        trace_stream_free(s);
        return 0;
    }
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (unsigned char)i;
    for (;; seq++) {
        hal_trace_rec_t r = {.seq = seq, .time_ns = seq * 700, .kind = seq % 2 ? HAL_TR_SEND : HAL_TR_DELIVER,
                             .task = 5, .chan = 9, .peer = 10, .type = 1, .len = sizeof(payload),
                             .data = payload};
        size_t k = trace_frame2_encode(&r, buf + len, BUF - len);
        if (k == 0)
            break;
        len += k;
    }
    uint64_t per_pass = seq - 1, passes = (RECORDS + per_pass - 1) / per_pass;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (uint64_t p = 0; p < passes; p++) {
        for (size_t off = 0; off < len; off += PIECE)
            trace_stream_feed(s, buf + off, len - off < PIECE ? len - off : PIECE);
    }
    trace_stream_finish(s, NULL);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    trace_stream_free(s);
    free(buf);
    double sec = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    return sec > 0 && n == passes * per_pass ? (double)n / sec : 0;
}

/*
 * The short run, then `runs` long ones: the row's figure is the median long run's rate (a
 * shared machine moves single runs by tens of percent; every run's rate is printed too).
 */
static void measure(const char *self, const char *dir, const char *machine, int runs, row_t *r)
{
    run_fig_t figs[RUNS_MAX];
    int order[RUNS_MAX];

    fprintf(stderr, "orrery: bench qtrace: %s, 1 round trip...\n", r->channel);
    if (one_run(self, dir, machine, r->channel, 1, &r->idle, r->why) != 0)
        return;
    for (int k = 0; k < runs; k++) {
        fprintf(stderr, "orrery: bench qtrace: %s, %" PRIu64 " round trips (run %d of %d)...\n",
                r->channel, r->msgs, k + 1, runs);
        if (one_run(self, dir, machine, r->channel, r->msgs, &figs[k], r->why) != 0)
            return;
        double dt = figs[k].seconds - r->idle.seconds;
        if (dt <= 0 || figs[k].records <= r->idle.records) {
            snprintf(r->why, REASON_MAX,
                     "the long run (%.3f s) took no longer than the short one (%.3f s): more "
                     "round trips (--msgs)",
                     figs[k].seconds, r->idle.seconds);
            return;
        }
        r->runs_rec_s[k] = (double)(figs[k].records - r->idle.records) / dt;
        r->nruns = k + 1;
    }
    for (int k = 0; k < runs; k++) { /* insertion sort of at most RUNS_MAX indexes */
        int j = k;
        for (; j > 0 && r->runs_rec_s[order[j - 1]] > r->runs_rec_s[k]; j--)
            order[j] = order[j - 1];
        order[j] = k;
    }
    int mid = order[(runs - 1) / 2];
    r->full = figs[mid];
    r->rec_s = r->runs_rec_s[mid];
    r->ok = true;
}

static const char qtrace_usage[] =
    "usage: orrery bench qtrace [--machine q35|microvm] [--msgs N] [--serial-msgs N] [--runs N]\n"
    "                           [--json]\n"
    "\n"
    "Trace records per second from the bare-metal image under QEMU (TCG) to the SQLite file\n"
    "of 'orrery qemu --trace', on each trace channel:\n"
    "  serial   --trace-channel serial: COM2, a byte per VM exit (the baseline)\n"
    "  virtio   --trace-channel virtio: a virtio-console port, 512 KiB buffers\n"
    "The image runs traceload, an IPC ping-pong (4 records per round trip). Each channel is\n"
    "run once with 1 round trip and --runs times with N: records/s = the extra records over\n"
    "the extra wall time, from starting 'orrery qemu' to its exit (trace closed); the row's\n"
    "figure is the median run's, and every run's is printed. Also printed: the\n"
    "guest's own rate, the times it waited for the host to take a buffer (virtio), and the\n"
    "records per CPU second the host's stream decoder takes alone (the rest of the host's\n"
    "side is the recorder: 'orrery bench trace').\n"
    "\n"
    "  --machine M       q35 (default) or microvm\n"
    "  --msgs N          round trips on the virtio channel (default 250000)\n"
    "  --serial-msgs N   round trips on the serial channel (default 5000: 2-5 s)\n"
    "  --runs N          long runs per channel, 1..20 (default 3)\n"
    "  --json            one JSON object; ratios name their baseline\n"
    "\n"
    "Exit status 0 when every run recorded a whole trace; 1 otherwise; 2 for usage errors.\n";

int hl_cmd_bench_qtrace(int argc, char **argv)
{
    enum { OPT_MACHINE = 1000, OPT_MSGS, OPT_SERIAL_MSGS, OPT_RUNS };
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"machine", required_argument, NULL, OPT_MACHINE},
        {"msgs", required_argument, NULL, OPT_MSGS},
        {"serial-msgs", required_argument, NULL, OPT_SERIAL_MSGS},
        {"runs", required_argument, NULL, OPT_RUNS},
        {NULL, 0, NULL, 0},
    };
    row_t rows[2] = {{.channel = "serial", .msgs = MSGS_SERIAL_DEFAULT},
                     {.channel = "virtio", .msgs = MSGS_BULK_DEFAULT}};
    const char *machine = "q35";
    uint64_t runs = RUNS_DEFAULT;
    bool json = false;
    char self[4096], dir[] = "/tmp/orrery-qtrace-XXXXXX", path[4200];
    int c;

    while ((c = cli_getopt(argc, argv, "bench qtrace", opts)) != -1) {
        switch (c) {
        case 'h':
            fputs(qtrace_usage, stdout);
            return 0;
        case 'j':
            json = true;
            break;
        case OPT_MACHINE:
            if (strcmp(optarg, "q35") != 0 && strcmp(optarg, "microvm") != 0)
                return cli_usage_error("bench qtrace",
                                       "bench qtrace: --machine wants q35 or microvm, not '%s'",
                                       optarg);
            machine = optarg;
            break;
        case OPT_MSGS:
        case OPT_SERIAL_MSGS:
            if (!cli_parse_u64(optarg, 2, MSGS_MAX, &rows[c == OPT_MSGS ? 1 : 0].msgs))
                return cli_usage_error("bench qtrace",
                                       "bench qtrace: --%s wants 2..%d round trips, not '%s'",
                                       c == OPT_MSGS ? "msgs" : "serial-msgs", MSGS_MAX, optarg);
            break;
        case OPT_RUNS:
            if (!cli_parse_u64(optarg, 1, RUNS_MAX, &runs))
                return cli_usage_error("bench qtrace",
                                       "bench qtrace: --runs wants 1..%d, not '%s'", RUNS_MAX,
                                       optarg);
            break;
        default:
            return 2;
        }
    }
    if (optind < argc)
        return cli_usage_error("bench qtrace", "bench qtrace: unexpected argument '%s'",
                               argv[optind]);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0 || !mkdtemp(dir)) {
        fprintf(stderr, "orrery: bench qtrace: %s\n", strerror(errno));
        return 1;
    }
    self[sl] = '\0';
    for (int i = 0; i < 2; i++)
        measure(self, dir, machine, (int)runs, &rows[i]);
    double decode = decode_rate();
    snprintf(path, sizeof(path), "%s/traceload.manifest", dir);
    unlink(path);
    rmdir(dir);

    double ratio = rows[0].ok && rows[1].ok ? rows[1].rec_s / rows[0].rec_s : 0;
    if (json) {
        printf("{\"bench\": \"qtrace\", \"machine\": \"%s\", \"accel\": \"tcg\", "
               "\"records_per_round_trip\": %d,\n \"baseline\": {\"name\": \"serial\", \"what\": "
               "\"the same records on COM2 (--trace-channel serial)\"},\n \"rows\": [",
               machine, RECORDS_PER_ROUND_TRIP);
        for (int i = 0; i < 2; i++) {
            row_t *r = &rows[i];
            printf("%s\n  {\"channel\": \"%s\", \"round_trips\": %" PRIu64, i ? "," : "",
                   r->channel, r->msgs);
            if (!r->ok) {
                printf(", \"error\": \"");
                for (const char *p = r->why; *p; p++)
                    printf(*p == '"' || *p == '\\' ? "\\%c" : (*p < 0x20 ? " " : "%c"), *p);
                printf("\"}");
                continue;
            }
            printf(", \"records\": %" PRIu64 ", \"seconds\": %.3f, \"short_run_records\": %" PRIu64
                   ", \"short_run_seconds\": %.3f, \"records_per_s\": %.0f, "
                   "\"guest_records_per_s\": %.0f",
                   r->full.records, r->full.seconds, r->idle.records, r->idle.seconds, r->rec_s,
                   r->full.guest_rec_s);
            printf(", \"runs\": %d, \"records_per_s_runs\": [", r->nruns);
            for (int k = 0; k < r->nruns; k++)
                printf("%s%.0f", k ? ", " : "", r->runs_rec_s[k]);
            printf("]");
            if (r->full.have_waits)
                printf(", \"guest_buffer_waits\": %" PRIu64 ", \"guest_wait_ms\": %" PRIu64
                       ", \"guest_notify_ms\": %" PRIu64 ", \"guest_records_per_s_excl_wait\": %.0f",
                       r->full.waits, r->full.wait_ms, r->full.notify_ms, excl_wait(&r->full));
            printf("}");
        }
        printf("\n ],\n \"host_decode_records_per_cpu_s\": %.0f,", decode);
        printf("\n \"ratios\": {\"baseline\": \"serial\", \"virtio_over_baseline\": ");
        if (ratio > 0)
            printf("%.1f},\n", ratio);
        else
            printf("null},\n");
        /* the same "baselines" object as every other bench's JSON */
        printf(" \"baselines\": {\"virtio_over_baseline\": {\"baseline\": \"serial\", "
               "\"ratio\": \"records_per_s(virtio) / records_per_s(serial)\", \"what\": "
               "\"the same records over COM2 (version 1 frames), the 16550 the image polls\"}}}\n");
    } else {
        printf("trace records from the image to the SQLite file, %s under TCG\n\n", machine);
        printf("%-8s %12s %10s %8s %12s %14s\n", "channel", "round trips", "records", "run s",
               "records/s", "in the guest");
        for (int i = 0; i < 2; i++) {
            row_t *r = &rows[i];
            if (!r->ok) {
                printf("%-8s %12" PRIu64 "  failed: %s\n", r->channel, r->msgs, r->why);
                continue;
            }
            printf("%-8s %12" PRIu64 " %10" PRIu64 " %8.2f %12.0f %14.0f\n", r->channel, r->msgs,
                   r->full.records, r->full.seconds, r->rec_s, r->full.guest_rec_s);
        }
        for (int i = 0; i < 2; i++) {
            row_t *r = &rows[i];
            if (!r->ok || r->nruns < 2)
                continue;
            printf("%s: records/s of the %d long runs:", r->channel, r->nruns);
            for (int k = 0; k < r->nruns; k++)
                printf("%s %.0f", k ? "," : "", r->runs_rec_s[k]);
            printf(" (the median above)\n");
        }
        for (int i = 0; i < 2; i++) {
            row_t *r = &rows[i];
            if (r->ok && r->full.have_waits)
                printf("%s: the image waited for a free buffer %" PRIu64 " times (%" PRIu64
                       " ms) and spent %" PRIu64 " ms notifying: %.0f records/s in the guest "
                       "without those\n",
                       r->channel, r->full.waits, r->full.wait_ms, r->full.notify_ms,
                       excl_wait(&r->full));
        }
        printf("host: the stream decoder alone takes %.0f records per CPU second\n", decode);
        if (ratio > 0)
            printf("\nvirtio / serial (the baseline): %.1fx\n", ratio);
        printf("(records/s: the median long run's extra records over its extra wall time "
               "against a run of\n 1 round trip; in the guest: that run's traceload records "
               "over its kernel-clock time)\n");
    }
    return rows[0].ok && rows[1].ok ? 0 : 1;
}
