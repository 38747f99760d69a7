/* bench.c — the recorder's ingest benchmark: synthetic records from N threads into a SQLite trace.
 */
#include <trace/outpath.h>
#include <trace/recorder.h>
#include <trace/tools.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/*
 * The mix approximates an echo/console workload: per 10 records, 4 SENDs and
 * 4 DELIVERs with a 32-byte payload, 1 CLOCK_READ and 1 TIMER_SET without.
 */
typedef struct bench_thread {
    trace_recorder *rec;
    uint64_t n;
    unsigned id, threads;
    uint64_t warm; /* record_ns: records before the timed ones (then a flush) */
    double ns;     /* wall time of this thread's timed record() loop */
} bench_thread;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The k-th record of thread b. Seqs interleave (k * threads + id + 1), so
 * the threads share no counter: the loop times record() and nothing else
 * (the kernel's own seq counter is under its lock, outside the sink).
 */
static inline void make_record(const bench_thread *b, uint64_t k, const unsigned char *payload,
                               hal_trace_rec_t *r)
{
    unsigned slot = (unsigned)(k % 10);

    memset(r, 0, sizeof(*r));
    r->seq = k * b->threads + b->id + 1;
    r->time_ns = r->seq * 100;
    r->task = 2 + b->id * 2 + (slot & 1);
    r->chan = 10 + b->id * 2 + (slot & 1);
    if (slot < 8) {
        r->kind = (slot & 1) ? HAL_TR_DELIVER : HAL_TR_SEND;
        r->peer = r->chan ^ 1;
        r->type = 1;
        r->len = 32;
        r->data = payload;
    } else if (slot == 8) {
        r->kind = HAL_TR_CLOCK_READ;
        r->arg = r->time_ns;
    } else {
        r->kind = HAL_TR_TIMER_SET;
        r->arg = r->time_ns + 1000000;
    }
}

static void *producer(void *arg)
{
    bench_thread *b = arg;
    unsigned char payload[32];
    hal_trace_rec_t r;
    double t0;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (unsigned char)(i * 7 + b->id);
    for (uint64_t k = 0; k < b->warm; k++) {
        make_record(b, k, payload, &r);
        trace_recorder_record(b->rec, &r);
    }
    if (b->warm)
        trace_recorder_flush(b->rec); /* the warm-up's chunks are back in the pool */
    t0 = now_s();
    for (uint64_t k = b->warm; k < b->warm + b->n; k++) {
        make_record(b, k, payload, &r);
        trace_recorder_record(b->rec, &r);
    }
    b->ns = (now_s() - t0) * 1e9;
    return NULL;
}

/* Run `threads` producers of n records each after `warm` untimed ones; mean ns per record. */
static double run_producers(trace_recorder *rec, unsigned threads, const uint64_t *n, uint64_t warm)
{
    pthread_t tids[64];
    bench_thread bt[64];
    double ns = 0;

    for (unsigned i = 0; i < threads; i++) {
        bt[i] = (bench_thread){rec, n[i], i, threads, warm, 0};
        pthread_create(&tids[i], NULL, producer, &bt[i]);
    }
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        ns += bt[i].ns / (double)(bt[i].n ? bt[i].n : 1);
    }
    return ns / threads;
}

double trace_bench_record_ns(const char *path, unsigned threads, char *err, size_t errlen)
{
    enum { TIMED = 100000 };
    trace_run_info run = {.platform = "sim", .command = "orrery bench trace", .workers = threads};
    trace_recorder *rec;
    uint64_t n[64];
    double ns;

    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    for (unsigned i = 0; i < threads; i++)
        n[i] = TIMED;
    if (trace_recorder_open(path, &run, &rec, err, errlen) != 0)
        return -1;
    ns = run_producers(rec, threads, n, 2 * TIMED);
    if (trace_recorder_close(rec, err, errlen) < 0)
        return -1;
    return ns;
}

int trace_bench_ingest(const char *path, uint64_t events, unsigned threads,
                       trace_ingest_result *out, char *err, size_t errlen)
{
    trace_run_info run = {.platform = "sim", .command = "orrery bench trace", .workers = threads};
    uint64_t n[64];
    trace_recorder *rec;
    trace_recorder_stats st;
    struct stat sb;
    double t0, t1, rec_ns;

    memset(out, 0, sizeof(*out));
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    if (trace_recorder_open(path, &run, &rec, err, errlen) != 0)
        return -1;
    t0 = now_s();
    /* Equal shares, so that the interleaved seqs are 1..events with no gap. */
    for (unsigned i = 0; i < threads; i++)
        n[i] = events / threads;
    events = n[0] * threads;
    rec_ns = run_producers(rec, threads, n, 0);
    trace_recorder_commit(rec); /* every record committed: the ingest phase ends here */
    t1 = now_s();
    trace_recorder_stats_at_close(rec, &st);
    /* Records dropped under load are a result here (counted below), not a failure. */
    if (trace_recorder_close(rec, err, errlen) < 0)
        return -1;
    out->close_s = now_s() - t1;
    out->events = events;
    out->threads = threads;
    out->record_ns = rec_ns;
    out->events_per_s = (double)(events - st.dropped) / (t1 - t0);
    out->dropped = st.dropped;
    out->writer_events_per_cpu_s =
        st.writer_cpu_ns ? (double)st.written / (st.writer_cpu_ns / 1e9) : 0;
    out->capture_events_per_cpu_s =
        st.writer_cpu_ns > st.close_cpu_ns
            ? (double)st.written / ((st.writer_cpu_ns - st.close_cpu_ns) / 1e9)
            : 0;
    out->payload_mean = 32.0 * 8 / 10;
    char partial[4200];
    snprintf(partial, sizeof(partial), "%s" TRACE_PARTIAL_SUFFIX, path);
    if ((stat(path, &sb) == 0 || stat(partial, &sb) == 0) && events > st.dropped)
        out->bytes_per_event = (double)sb.st_size / (double)(events - st.dropped);
    return 0;
}
