/* bench_ipc.c — `orrery bench ipc`: IPC round trips and one-way throughput vs a pipe baseline. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"
#include <hl/hosted.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <k/kernel.h>

/*
 * Three small programs booted through hl_run: bench-init creates a channel
 * and spawns bench-server and bench-client with one end each; both pin
 * themselves to the workers given in their spawn args. The client runs
 * warm-up round trips, RTT_BATCHES timed batches of RTT_BATCH round trips,
 * then streams STREAM_MSGS one-way messages (backing off on OS_EFULL until
 * OS_EV_WRITABLE) and asks for the count. Results land in `result`, read by
 * the main thread after hl_run has joined the workers.
 */

enum {
    RTT_WARMUP = 2000,
    RTT_BATCH = 20000,
    RTT_BATCHES = 9,
    STREAM_MSGS = 1000000,
    STREAM_BYTES = 64,
    PIPE_BATCH = 4000,
    PIPE_BATCHES = 9,
};

enum { MSG_REQ = 1, MSG_REPLY = 2, MSG_STREAM = 3, MSG_DONE = 4, MSG_DONE_REPLY = 5 };

typedef struct bench_arg {
    int client_worker;
    int server_worker;
} bench_arg_t;

static struct {
    uint64_t batch_ns[RTT_BATCHES]; /* per round trip, each batch */
    uint64_t stream_ns;             /* first stream send .. DONE reply */
    uint64_t stream_received;       /* messages the server counted */
    uint64_t efull;                 /* sends refused with OS_EFULL */
    bool done;
} result;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(v[0]), cmp_u64);
    return v[n / 2];
}

/* ---- bench-server -------------------------------------------------------------------- */

typedef struct server {
    os_handle_t chan;
    uint64_t streamed;
} server_t;

static void server_start(os_ctx_t *ctx)
{
    server_t *s = os_state(ctx);
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    bench_arg_t a;
    memcpy(&a, arg, sizeof(a));
    k_task_pin(os_task_id(ctx), a.server_worker);
    s->chan = os_initial_handle(ctx, 0);
}

static void server_event(os_ctx_t *ctx, const os_event_t *ev)
{
    server_t *s = os_state(ctx);
    if (ev->kind == OS_EV_PEER_CLOSED)
        os_exit(ctx, 0);
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->type == MSG_REQ) {
        int rc = os_send(ctx, ev->handle, MSG_REPLY, ev->data, ev->len, NULL, 0);
        OS_ASSERT(ctx, rc == 0);
    } else if (ev->type == MSG_STREAM) {
        s->streamed++;
    } else if (ev->type == MSG_DONE) {
        int rc =
            os_send(ctx, ev->handle, MSG_DONE_REPLY, &s->streamed, sizeof(s->streamed), NULL, 0);
        OS_ASSERT(ctx, rc == 0);
    }
}

static const os_program_t bench_server = {"bench-server", sizeof(server_t), server_start,
                                          server_event};

/* ---- bench-client -------------------------------------------------------------------- */

enum { PH_WARM, PH_RTT, PH_STREAM, PH_DONE };

typedef struct client {
    os_handle_t chan;
    int phase;
    uint32_t count; /* round trips in this batch / phase */
    uint32_t batch;
    uint64_t t0;
    uint64_t sent; /* stream messages sent */
    bool done_sent;
} client_t;

static void client_request(os_ctx_t *ctx, client_t *c)
{
    uint64_t seq = c->count;
    int rc = os_send(ctx, c->chan, MSG_REQ, &seq, sizeof(seq), NULL, 0);
    OS_ASSERT(ctx, rc == 0);
}

/* Send stream messages until the queue is full or all are out, then DONE. */
static void client_stream(os_ctx_t *ctx, client_t *c)
{
    static const char payload[STREAM_BYTES];
    while (c->sent < STREAM_MSGS) {
        int rc = os_send(ctx, c->chan, MSG_STREAM, payload, sizeof(payload), NULL, 0);
        if (rc == OS_EFULL) {
            result.efull++;
            return; /* OS_EV_WRITABLE follows */
        }
        OS_ASSERT(ctx, rc == 0);
        c->sent++;
    }
    if (!c->done_sent) {
        int rc = os_send(ctx, c->chan, MSG_DONE, NULL, 0, NULL, 0);
        if (rc == OS_EFULL) {
            result.efull++;
            return;
        }
        OS_ASSERT(ctx, rc == 0);
        c->done_sent = true;
    }
}

static void client_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    bench_arg_t a;
    memcpy(&a, arg, sizeof(a));
    k_task_pin(os_task_id(ctx), a.client_worker);
    c->chan = os_initial_handle(ctx, 0);
    c->phase = PH_WARM;
    client_request(ctx, c);
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    if (ev->kind == OS_EV_WRITABLE && c->phase == PH_STREAM) {
        client_stream(ctx, c);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->type == MSG_DONE_REPLY) {
        result.stream_ns = os_clock_now(ctx) - c->t0;
        memcpy(&result.stream_received, ev->data, sizeof(uint64_t));
        result.done = true;
        c->phase = PH_DONE;
        os_exit(ctx, 0);
    }
    OS_ASSERT(ctx, ev->type == MSG_REPLY);
    c->count++;
    if (c->phase == PH_WARM && c->count == RTT_WARMUP) {
        c->phase = PH_RTT;
        c->count = 0;
        c->t0 = os_clock_now(ctx);
    } else if (c->phase == PH_RTT && c->count == RTT_BATCH) {
        uint64_t now = os_clock_now(ctx);
        result.batch_ns[c->batch++] = (now - c->t0) / RTT_BATCH;
        c->count = 0;
        c->t0 = now;
        if (c->batch == RTT_BATCHES) {
            c->phase = PH_STREAM;
            c->t0 = os_clock_now(ctx);
            client_stream(ctx, c);
            return;
        }
    }
    client_request(ctx, c);
}

static const os_program_t bench_client = {"bench-client", sizeof(client_t), client_start,
                                          client_event};

/* ---- bench-init ---------------------------------------------------------------------- */

typedef struct binit {
    int exited;
} binit_t;

static void binit_start(os_ctx_t *ctx)
{
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    os_handle_t a, b, t;
    OS_ASSERT(ctx, os_channel_create(ctx, &a, &b) == 0);
    os_spawn_args_t sa = {
        .program = "bench-server", .handles = &b, .nhandles = 1, .arg = arg, .arg_len = len};
    OS_ASSERT(ctx, os_spawn(ctx, &sa, &t) == 0);
    sa.program = "bench-client";
    sa.handles = &a;
    OS_ASSERT(ctx, os_spawn(ctx, &sa, &t) == 0);
}

static void binit_event(os_ctx_t *ctx, const os_event_t *ev)
{
    binit_t *s = os_state(ctx);
    if (ev->kind == OS_EV_TASK_EXIT && ++s->exited == 2)
        os_shutdown(ctx, 0);
}

static const os_program_t bench_init = {"bench-init", sizeof(binit_t), binit_start, binit_event};

static const os_program_t *const bench_programs[] = {&bench_init, &bench_server, &bench_client,
                                                     NULL};

typedef struct ipc_figures {
    uint64_t rtt_ns;   /* median round trip */
    double msgs_per_s; /* one way */
} ipc_figures_t;

static int run_ipc_traced(int client_worker, int server_worker, bool pin,
                          const hal_trace_sink_t *trace, ipc_figures_t *out)
{
    memset(&result, 0, sizeof(result));
    bench_arg_t a = {client_worker, server_worker};
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    hl_run_stats_t stats;
    rc.programs = bench_programs;
    rc.init_program = "bench-init";
    rc.init_arg = &a;
    rc.init_arg_len = sizeof(a);
    rc.workers = 2;
    rc.pin_cpus = pin;
    rc.console_in = -1;
    rc.console_out = 2;
    rc.handle_signals = true;
    rc.timeout_ms = 60000;
    rc.stats = &stats;
    rc.trace = trace;
    int status = hl_run(&rc);
    if (status != 0 || !result.done || stats.signal) {
        fprintf(stderr, "orrery: bench ipc: run failed (status %d%s)\n", status,
                stats.timed_out ? ", timed out" : "");
        return -1;
    }
    if (result.stream_received != STREAM_MSGS) {
        fprintf(stderr, "orrery: bench ipc: server counted %llu of %d messages\n",
                (unsigned long long)result.stream_received, STREAM_MSGS);
        return -1;
    }
    out->rtt_ns = median(result.batch_ns, RTT_BATCHES);
    out->msgs_per_s = (double)STREAM_MSGS * 1e9 / (double)result.stream_ns;
    return 0;
}

static int run_ipc(int client_worker, int server_worker, bool pin, ipc_figures_t *out)
{
    return run_ipc_traced(client_worker, server_worker, pin, NULL, out);
}

/* `orrery bench trace`: the same run (workers 0 and 1, pinned) with a trace sink, or NULL. */
int hl_bench_ipc_once(const hal_trace_sink_t *trace, uint64_t *rtt_ns, double *msgs_per_s)
{
    return hl_bench_ipc_on(0, 1, trace, rtt_ns, msgs_per_s);
}

/* The same with the client and server on the given workers (0 and 0: one worker). */
int hl_bench_ipc_on(int client_worker, int server_worker, const hal_trace_sink_t *trace,
                    uint64_t *rtt_ns, double *msgs_per_s)
{
    ipc_figures_t f;
    if (run_ipc_traced(client_worker, server_worker, true, trace, &f) != 0)
        return -1;
    *rtt_ns = f.rtt_ns;
    *msgs_per_s = f.msgs_per_s;
    return 0;
}

/* ---- the pipe baseline ----------------------------------------------------------------- */

static int ping[2], pong[2];

/* Best effort: a restricted cpuset may refuse, and the figure is then unpinned. */
static void pin_to(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % hl_ncpus(), &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *pipe_echo(void *arg)
{
    pin_to(*(unsigned *)arg);
    char b;
    while (read(ping[0], &b, 1) == 1 && b != 'q')
        if (write(pong[1], &b, 1) != 1)
            break;
    return NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct pipe_job {
    unsigned echo_cpu; /* the echo thread's CPU; the measuring thread is on CPU 0 */
    uint64_t rtt_ns;
    int rc;
} pipe_job_t;

/* Measure on a thread of its own, so that pinning leaves the caller alone. */
static void *pipe_main(void *arg)
{
    pipe_job_t *j = arg;
    j->rc = -1;
    pin_to(0);
    if (pipe(ping) < 0 || pipe(pong) < 0)
        return NULL;
    pthread_t t;
    if (pthread_create(&t, NULL, pipe_echo, &j->echo_cpu) != 0)
        return NULL;
    uint64_t batch[PIPE_BATCHES];
    char b = 'p';
    int rc = 0;
    for (int k = -1; k < PIPE_BATCHES && rc == 0; k++) { /* k = -1: warm-up */
        uint64_t t0 = now_ns();
        for (int i = 0; i < PIPE_BATCH; i++) {
            if (write(ping[1], &b, 1) != 1 || read(pong[0], &b, 1) != 1) {
                rc = -1;
                break;
            }
        }
        if (k >= 0)
            batch[k] = (now_ns() - t0) / PIPE_BATCH;
    }
    b = 'q';
    if (write(ping[1], &b, 1) != 1)
        rc = -1;
    pthread_join(t, NULL);
    close(ping[0]);
    close(ping[1]);
    close(pong[0]);
    close(pong[1]);
    if (rc == 0)
        j->rtt_ns = median(batch, PIPE_BATCHES);
    j->rc = rc;
    return NULL;
}

static int pipe_rtt(unsigned echo_cpu, uint64_t *out)
{
    pipe_job_t j = {echo_cpu, 0, -1};
    pthread_t t;
    if (pthread_create(&t, NULL, pipe_main, &j) != 0)
        return -1;
    pthread_join(t, NULL);
    *out = j.rtt_ns;
    return j.rc;
}

/* ---- the command ----------------------------------------------------------------------- */

static const char bench_ipc_usage[] =
    "usage: orrery bench ipc [--json] [--pin]\n"
    "\n"
    "Boot a client and a server task (2 workers) and measure, in one run:\n"
    "  same-worker round trip   both tasks pinned to worker 0 (median of batches)\n"
    "  cross-worker round trip  client on worker 0, server on worker 1\n"
    "  one-way throughput       the client streams 64-byte messages, backing off on\n"
    "                           EFULL until WRITABLE (msgs_per_s: same worker)\n"
    "  pipe round trip          the baseline: two Linux threads, two pipes, one thread\n"
    "                           on CPU 0 and one on CPU 1 (and both on CPU 0, beside it)\n"
    "\n"
    "  --json   print one JSON object instead of text\n"
    "  --pin    also pin worker i to CPU i (steadier on a quiet machine, worse on a busy one)\n";

/* Which figure each ratio of the JSON is measured against (every bench JSON says it). */
static const char ipc_baselines[] =
    "\"baselines\": {"
    "\"pipe_over_same_worker\": {\"baseline\": \"pipe_rtt_ns\", "
    "\"ratio\": \"pipe_rtt_ns / same_worker_rtt_ns\", \"what\": \"a pipe round trip between "
    "two Linux threads on CPUs 0 and 1\"}, "
    "\"pipe_over_cross_worker\": {\"baseline\": \"pipe_rtt_ns\", "
    "\"ratio\": \"pipe_rtt_ns / cross_worker_rtt_ns\", \"what\": \"a pipe round trip between "
    "two Linux threads on CPUs 0 and 1\"}, "
    "\"pipe_one_cpu_over_same_worker\": {\"baseline\": \"pipe_one_cpu_rtt_ns\", "
    "\"ratio\": \"pipe_one_cpu_rtt_ns / same_worker_rtt_ns\", \"what\": \"a pipe round trip "
    "between two Linux threads both on CPU 0\"}}";

int hl_cmd_bench_ipc(int argc, char **argv)
{
    bool json = false, pin = false;
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"pin", no_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = cli_getopt(argc, argv, "bench ipc", opts)) != -1) {
        if (c == 'h') {
            fputs(bench_ipc_usage, stdout);
            return 0;
        } else if (c == 'j') {
            json = true;
        } else if (c == 'p') {
            pin = true;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("bench ipc", "bench ipc: unexpected argument '%s'", argv[optind]);
    ipc_figures_t same, cross;
    uint64_t pipe_ns, pipe_one_ns;
    if (run_ipc(0, 0, pin, &same) != 0 || run_ipc(0, 1, pin, &cross) != 0)
        return 1;
    if (pipe_rtt(1, &pipe_ns) != 0 || pipe_rtt(0, &pipe_one_ns) != 0) {
        perror("orrery: bench ipc: pipe baseline");
        return 1;
    }
    double same_x = same.rtt_ns ? (double)pipe_ns / (double)same.rtt_ns : 0;
    double cross_x = cross.rtt_ns ? (double)pipe_ns / (double)cross.rtt_ns : 0;
    double one_x = same.rtt_ns ? (double)pipe_one_ns / (double)same.rtt_ns : 0;
    if (json) {
        printf("{\"same_worker_rtt_ns\": %llu, \"cross_worker_rtt_ns\": %llu, "
               "\"pipe_rtt_ns\": %llu, \"msgs_per_s\": %.0f, "
               "\"pipe_one_cpu_rtt_ns\": %llu, "
               "\"same_worker_msgs_per_s\": %.0f, \"cross_worker_msgs_per_s\": %.0f, "
               "\"pipe_over_same_worker\": %.2f, \"pipe_over_cross_worker\": %.2f, "
               "\"pipe_one_cpu_over_same_worker\": %.2f, "
               "\"rtt_iterations\": %d, \"stream_messages\": %d, \"workers\": 2, "
               "\"pinned_workers\": %s, \"cpus\": %u, %s}\n",
               (unsigned long long)same.rtt_ns, (unsigned long long)cross.rtt_ns,
               (unsigned long long)pipe_ns, same.msgs_per_s, (unsigned long long)pipe_one_ns,
               same.msgs_per_s, cross.msgs_per_s, same_x, cross_x, one_x, RTT_BATCH * RTT_BATCHES,
               STREAM_MSGS, pin ? "true" : "false", hl_ncpus(), ipc_baselines);
        return 0;
    }
    printf("orrery bench ipc (%u cpus, 2 workers%s, medians of %d batches)\n", hl_ncpus(),
           pin ? " pinned to CPUs" : "", RTT_BATCHES);
    printf("  same-worker round trip    %8llu ns   (pipe / same-worker  = %.1fx)\n",
           (unsigned long long)same.rtt_ns, same_x);
    printf("  cross-worker round trip   %8llu ns   (pipe / cross-worker = %.1fx)\n",
           (unsigned long long)cross.rtt_ns, cross_x);
    printf("  pipe round trip           %8llu ns   (threads on CPU 0 and 1: the baseline)\n",
           (unsigned long long)pipe_ns);
    printf("  pipe round trip, one CPU  %8llu ns   (pipe one-CPU / same-worker = %.1fx)\n",
           (unsigned long long)pipe_one_ns, one_x);
    printf("  one-way, same worker      %8.0f msgs/s (%d-byte messages)\n", same.msgs_per_s,
           STREAM_BYTES);
    printf("  one-way, cross-worker     %8.0f msgs/s\n", cross.msgs_per_s);
    return 0;
}
