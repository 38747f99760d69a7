/* tools.h — the trace readers behind `orrery trace summary|show|export` and `orrery bench trace`.
 */
#ifndef TRACE_TOOLS_H
#define TRACE_TOOLS_H

#include <stdint.h>
#include <stdio.h>

#include <trace/reader.h>

typedef struct trace_latency {
    uint64_t n;                  /* paired messages */
    uint64_t p50, p90, p99, max; /* send -> deliver, ns */
} trace_latency;

typedef struct trace_summary_row {
    uint32_t id; /* task id or interface id (0: unknown interface) */
    char name[64];
    uint64_t sent, sent_bytes; /* successful SENDs (interfaces: all messages) */
    uint64_t recv, recv_bytes; /* DELIVERs */
    uint64_t send_errors;      /* SENDs with a negative result */
    trace_latency latency;     /* of messages delivered to the task / on the interface */
} trace_summary_row;

typedef struct trace_summary {
    trace_run_row run;
    uint64_t events, first_ns, last_ns;
    uint64_t unmatched_sends, unmatched_delivers;
    trace_summary_row *tasks, *ifaces;
    size_t ntasks, nifaces;
    trace_latency all;
} trace_summary;

/* Compute the summary (tests read it); -1 with trace_db_error. Free with trace_summary_free. */
int trace_summary_compute(trace_db *db, trace_summary *out);
void trace_summary_free(trace_summary *s);
void trace_summary_print(const trace_summary *s, FILE *out);
/* A trace with nodes: the run, then a section per node (only the selected one, if any).
 * -1 with trace_db_error. */
int trace_summary_print_nodes(trace_db *db, FILE *out);

/* One line per event (filtered), messages decoded by interface. -1 with trace_db_error. */
int trace_show(trace_db *db, const trace_filter *f, FILE *out);
/* The one-line rendering show uses (without the trailing newline). */
void trace_show_format(trace_db *db, const hal_trace_rec_t *r, uint32_t iface, char *buf,
                       size_t len);

/* Perfetto / Chrome trace-event JSON. */
typedef enum trace_clock {
    TRACE_CLOCK_AUTO, /* seq for sim traces (virtual time stands still while tasks run), else time
                       */
    TRACE_CLOCK_TIME, /* ts = time_ns */
    TRACE_CLOCK_SEQ,  /* ts = seq, one microsecond per event */
} trace_clock;
int trace_export_perfetto(trace_db *db, FILE *out, trace_clock clock);
/* How every export begins: what tells an earlier export (replaceable) from any other file. */
#define TRACE_PERFETTO_HEAD "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"platform\":"

/* `orrery bench trace` figures for the recorder alone. */
typedef struct trace_ingest_result {
    uint64_t events;
    unsigned threads;
    double record_ns;               /* mean wall time of one record() call, per thread */
    double events_per_s;            /* from the first record() until every record was committed */
    double close_s;                 /* then close(): build the reader index, checkpoint, finish */
    double bytes_per_event;         /* file size / events */
    double writer_events_per_cpu_s; /* events / CPU seconds of the writer thread and close */
    double capture_events_per_cpu_s; /* events / CPU seconds of the writer thread alone */
    uint64_t dropped;
    double payload_mean; /* mean payload bytes of the synthetic mix */
} trace_ingest_result;
int trace_bench_ingest(const char *path, uint64_t events, unsigned threads,
                       trace_ingest_result *out, char *err, size_t errlen);
/*
 * record() alone: ns per call from each of `threads` threads, buffers warm
 * (chunks already faulted in and pooled), each thread with its own seqs.
 * Returns the mean over threads, or -1 with a message in err.
 */
double trace_bench_record_ns(const char *path, unsigned threads, char *err, size_t errlen);

#endif
