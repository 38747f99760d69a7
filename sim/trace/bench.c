/* bench.c — the recorder's ingest benchmark: synthetic records from N threads into a SQLite trace. */
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
    atomic_uint_fast64_t *seq;
    uint64_t n;
    unsigned id;
    double ns; /* wall time of this thread's record() loop */
} bench_thread;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *producer(void *arg)
{
    bench_thread *b = arg;
    unsigned char payload[32];
    double t0 = now_s();

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (unsigned char)(i * 7 + b->id);
    for (uint64_t i = 0; i < b->n; i++) {
        hal_trace_rec_t r;
        unsigned slot = (unsigned)(i % 10);
        memset(&r, 0, sizeof(r));
        r.seq = atomic_fetch_add_explicit(b->seq, 1, memory_order_relaxed) + 1;
        r.time_ns = r.seq * 100;
        r.task = 2 + b->id * 2 + (slot & 1);
        r.chan = 10 + b->id * 2 + (slot & 1);
        if (slot < 8) {
            r.kind = (slot & 1) ? HAL_TR_DELIVER : HAL_TR_SEND;
            r.peer = r.chan ^ 1;
            r.type = 1;
            r.len = sizeof(payload);
            r.data = payload;
        } else if (slot == 8) {
            r.kind = HAL_TR_CLOCK_READ;
            r.arg = r.time_ns;
        } else {
            r.kind = HAL_TR_TIMER_SET;
            r.arg = r.time_ns + 1000000;
        }
        trace_recorder_record(b->rec, &r);
    }
    b->ns = (now_s() - t0) * 1e9;
    return NULL;
}

int trace_bench_ingest(const char *path, uint64_t events, unsigned threads,
                       trace_ingest_result *out, char *err, size_t errlen)
{
    trace_run_info run = {.platform = "sim", .command = "orrery bench trace", .workers = threads};
    pthread_t tids[64];
    bench_thread bt[64];
    atomic_uint_fast64_t seq = 0;
    trace_recorder *rec;
    trace_recorder_stats st;
    struct stat sb;
    double t0, t1, rec_ns = 0;

    memset(out, 0, sizeof(*out));
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    if (trace_recorder_open(path, &run, &rec, err, errlen) != 0)
        return -1;
    t0 = now_s();
    for (unsigned i = 0; i < threads; i++) {
        bt[i] = (bench_thread){rec, &seq, events / threads + (i < events % threads), i, 0};
        pthread_create(&tids[i], NULL, producer, &bt[i]);
    }
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        rec_ns += bt[i].ns / (double)(bt[i].n ? bt[i].n : 1);
    }
    trace_recorder_flush(rec); /* every record committed: the ingest phase ends here */
    t1 = now_s();
    trace_recorder_stats_at_close(rec, &st);
    if (trace_recorder_close(rec, err, errlen) != 0)
        return -1;
    out->close_s = now_s() - t1;
    out->events = events;
    out->threads = threads;
    out->record_ns = rec_ns / threads;
    out->events_per_s = (double)(events - st.dropped) / (t1 - t0);
    out->dropped = st.dropped;
    out->writer_events_per_cpu_s = st.writer_cpu_ns ? (double)st.written / (st.writer_cpu_ns / 1e9) : 0;
    out->payload_mean = 32.0 * 8 / 10;
    if (stat(path, &sb) == 0 && events > st.dropped)
        out->bytes_per_event = (double)sb.st_size / (double)(events - st.dropped);
    return 0;
}
