/* recorder.h — the SQLite trace recorder: a hal_trace_sink_t that never makes the kernel wait on disk. */
#ifndef TRACE_RECORDER_H
#define TRACE_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>

/* The trace schema this build writes and the newest it reads (docs/trace-format.md).
 * 2: HANDLE and LIST records (replay needs them); 1 is still read. */
#define TRACE_SCHEMA_VERSION 2

/* What is known about the run when recording starts; strings are copied. */
typedef struct trace_run_info {
    const char *platform; /* "hosted", "sim" or "qemu" */
    uint64_t seed;        /* sim: the seed; otherwise 0 */
    const char *commit;   /* git describe of the build (NULL: unknown) */
    const char *manifest; /* boot manifest text (NULL: none) */
    size_t manifest_len;  /* 0: strlen(manifest) */
    unsigned workers;     /* worker threads running tasks */
    const char *command;  /* command line that made the run (NULL: none) */
} trace_run_info;

typedef struct trace_recorder trace_recorder;

/* Counters of a recorder, readable at any time. */
typedef struct trace_recorder_stats {
    uint64_t recorded;     /* records accepted by record() */
    uint64_t dropped;      /* records dropped because the buffer bound was reached */
    uint64_t written;      /* records committed to the file */
    uint64_t batches;      /* transactions committed */
    uint64_t bad_frames;   /* imported stream: frames rejected (see trace_import) */
    size_t buffer_bytes;   /* memory held by buffers now */
    size_t buffer_peak;    /* the most memory buffers held */
    uint64_t writer_cpu_ns; /* CPU time of the writer thread (and close), once closed */
} trace_recorder_stats;

/*
 * Create (or replace) the trace file at path and start its writer thread.
 * Returns 0, or -1 with a one-line message in err.
 */
int trace_recorder_open(const char *path, const trace_run_info *run, trace_recorder **out,
                        char *err, size_t errlen);

/*
 * Bound the memory that buffers may hold while the writer lags (default 256 MiB).
 * Past it, record() drops records and counts them: run.dropped in the file.
 */
void trace_recorder_set_buffer_limit(trace_recorder *rec, size_t bytes);

/* The sink to give the kernel (k_config_t.trace, sim_config_t.trace). Lives as long as rec. */
const hal_trace_sink_t *trace_recorder_sink(trace_recorder *rec);

/* Record one record (what the sink's record() does); any thread, never blocks on disk. */
void trace_recorder_record(trace_recorder *rec, const hal_trace_rec_t *r);

/* Block until every record accepted so far is committed to the file. */
void trace_recorder_flush(trace_recorder *rec);

/* Add to the count of bad frames reported in the run table (the stream importer). */
void trace_recorder_add_bad_frames(trace_recorder *rec, uint64_t n);

/* Set the final exit status of the run (stored in run.exit_status). */
void trace_recorder_set_exit_status(trace_recorder *rec, int status);

void trace_recorder_get_stats(trace_recorder *rec, trace_recorder_stats *out);
/* Have trace_recorder_close fill *out with the final counters (benchmarks). */
void trace_recorder_stats_at_close(trace_recorder *rec, trace_recorder_stats *out);

/*
 * Flush, stop the writer, build the reader indexes, fill the channel
 * interfaces and final counts, and close the file. No record() may run
 * concurrently or afterwards. Returns 0, or -1 with a message in err (err may be NULL).
 */
int trace_recorder_close(trace_recorder *rec, char *err, size_t errlen);

/* Name of a trace kind ("SEND"), or NULL. */
const char *trace_kind_name(uint32_t kind);
/* Kind from its name (case-insensitive), or 0. */
uint32_t trace_kind_from_name(const char *name);

#endif
