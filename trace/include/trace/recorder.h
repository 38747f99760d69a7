/* recorder.h — the SQLite trace recorder: a hal_trace_sink_t that never makes the kernel wait on
 * disk. */
#ifndef TRACE_RECORDER_H
#define TRACE_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>

/* The trace schema this build writes and the newest it reads (docs/trace-format.md).
 * 2: HANDLE and LIST records (replay needs them); 3: several nodes in one file (a nodes
 * table, a node column on tasks, channels and events); 1 and 2 are still read. */
#define TRACE_SCHEMA_VERSION 3

/* PRAGMA application_id of every trace ("Orry"): tells a trace from any other file at a glance. */
#define TRACE_APPLICATION_ID 0x4F727279

/* trace_recorder_close: the trace was closed but lost records; it stays at FILE.partial. */
#define TRACE_INCOMPLETE 1

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
    uint64_t recorded;      /* records accepted by record() */
    uint64_t dropped;       /* records dropped: the buffer bound was reached or malloc failed */
    uint64_t lost;          /* records accepted but not stored: a transaction failed */
    uint64_t written;       /* records committed to the file */
    uint64_t batches;       /* transactions committed */
    uint64_t max_txn_rows;  /* events in the largest transaction */
    uint64_t bad_frames;    /* imported stream: frames rejected (see trace_import) */
    size_t buffer_bytes;    /* memory held by buffers now */
    size_t buffer_peak;     /* the most memory buffers held */
    uint64_t writer_cpu_ns; /* CPU time of the writer thread (and close), once closed */
    uint64_t close_cpu_ns;  /* of that, close's (the expansion of the capture table), once closed */
    uint64_t close_ns;      /* wall time of close, once closed */
} trace_recorder_stats;

/*
 * Start recording a trace for path and start the writer thread. The records
 * go to path.partial (trace/outpath.h: a path that exists must be an Orrery
 * trace, a symlink's target is judged and written); trace_recorder_close
 * renames it over path when the trace is complete. Returns 0,
 * TRACE_OUT_REFUSED (path is not ours to replace: nothing was touched) or -1,
 * with a one-line message in err.
 */
int trace_recorder_open(const char *path, const trace_run_info *run, trace_recorder **out,
                        char *err, size_t errlen);

/* NULL, or a one-line notice for the user: the trace at path is replaced when this one is done. */
const char *trace_recorder_notice(const trace_recorder *rec);

/*
 * Bound the memory that buffers may hold while the writer lags (default 256 MiB).
 * Past it, record() drops records and counts them: run.dropped in the file.
 */
void trace_recorder_set_buffer_limit(trace_recorder *rec, size_t bytes);

/*
 * While the writer has nothing to capture it expands captured records into
 * events rows, spending at most 1 in duty of its time on it (default 4: a
 * kernel in this process keeps most of the CPU it shares with the writer). A
 * recording fed from outside the process (a QEMU stream, an imported file)
 * sets 1: expanded as it arrives, little is left for close. 0 counts as 1.
 */
void trace_recorder_set_expand_duty(trace_recorder *rec, unsigned duty);

/* The sink to give the kernel (k_config_t.trace, sim_config_t.trace). Lives as long as rec. */
const hal_trace_sink_t *trace_recorder_sink(trace_recorder *rec);

/* Record one record (what the sink's record() does); any thread, never blocks on disk. */
void trace_recorder_record(trace_recorder *rec, const hal_trace_rec_t *r);

/*
 * Several nodes in one trace (a simulated cluster, docs/trace-format.md): name the nodes
 * once before their first record, then give each record with its node index. Node 0's
 * records may also come through trace_recorder_record / the sink. The file then has a
 * `nodes` table and a `node` column on every row that holds a task, a channel or an event;
 * a trace without nodes is one node (0) and reads as before. 0 or OS_EINVAL (n 0 or over
 * 64, a name empty or over 31 bytes), OS_ESTATE (a record came first, or the nodes were
 * already named), OS_ENOMEM. A record of a node that was not
 * named (node >= n, or any node but 0 without nodes) is dropped and counted (run.dropped).
 */
enum { TRACE_NODES_MAX = 64 };
int trace_recorder_set_nodes(trace_recorder *rec, const char *const *names, size_t n);
void trace_recorder_record_node(trace_recorder *rec, uint32_t node, const hal_trace_rec_t *r);
/*
 * A node's boot manifest (nodes.manifest; `orrery replay --node` reads it as it reads
 * run.manifest for a trace of one kernel). After trace_recorder_set_nodes, before the first
 * record; copied. 0, OS_EINVAL (no such node), OS_ESTATE (a record came first), OS_ENOMEM.
 */
int trace_recorder_set_node_manifest(trace_recorder *rec, uint32_t node, const char *text,
                                     size_t len);

/*
 * Block until every record accepted so far is committed to the file and
 * expanded into its events rows (a reader may open the file now).
 */
void trace_recorder_flush(trace_recorder *rec);
/*
 * Block until every record accepted so far is committed to the file's
 * capture table (what a SIGKILL now would keep), without expanding it (the
 * kernel's own flush at shutdown; the ingest benchmark).
 */
void trace_recorder_commit(trace_recorder *rec);

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
 * concurrently or afterwards. Returns 0: a complete trace was renamed into
 * place; TRACE_INCOMPLETE: records were dropped or lost, run.complete = 0
 * and run.dropped count them, and the trace stays at path.partial (an
 * earlier trace at path is left as it was); -1: the file could not be
 * finished (what was committed is in path.partial). Both with a message in
 * err (err may be NULL).
 */
int trace_recorder_close(trace_recorder *rec, char *err, size_t errlen);

/*
 * Fault injection for tests (SQLite's FAULTSIM idea): a recorder that runs
 * out of memory, a writer that stalls or is slow, a transaction that fails.
 * Set before recording; zero fields inject nothing.
 */
typedef struct trace_recorder_faults {
    uint64_t alloc_ok;     /* >0: buffer allocations after this many fail */
    uint64_t fail_txn;     /* >0: the writer's Nth transaction fails as a SQLite error would */
    unsigned row_delay_us; /* the writer sleeps this long per event (a slow disk) */
    bool hold_writer;      /* the writer takes nothing until this is cleared (a stalled disk) */
    bool hold_expansion;   /* the writer expands no capture block while recording */
} trace_recorder_faults;
void trace_recorder_set_faults(trace_recorder *rec, const trace_recorder_faults *f);

/*
 * A file a killed recorder left holds records still in its capture table
 * (docs/trace-format.md, "Capture blocks"). trace_capture_pending counts the
 * blocks waiting (0 with no capture table; -1 if the file cannot be read).
 * trace_capture_repair expands them into events rows, builds the indexes and
 * drops the emptied table; a block that does not parse is kept, marked in
 * capture.bad, its records added to run.dropped. 0, or -1 with err.
 */
typedef struct trace_repair_result {
    uint64_t records, blocks;         /* expanded */
    uint64_t bad_blocks, bad_records; /* kept as corrupt */
    char first_bad[400];              /* the first bad block and why, or "" */
} trace_repair_result;
int trace_capture_pending(const char *path, uint64_t *blocks);
int trace_capture_repair(const char *path, trace_repair_result *out, char *err, size_t errlen);

/* Name of a trace kind ("SEND"), or NULL. */
const char *trace_kind_name(uint32_t kind);
/* Kind from its name (case-insensitive), or 0. */
uint32_t trace_kind_from_name(const char *name);

#endif
