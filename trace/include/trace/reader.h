/* reader.h — opening a trace file safely and iterating its events (summary, show, export, replay).
 */
#ifndef TRACE_READER_H
#define TRACE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hal/trace.h>

typedef struct trace_db trace_db;

/*
 * Open a trace read-only and check it: a missing or empty file, a file that
 * is not SQLite, a SQLite file that is not a trace, a newer schema_version
 * and a corrupt or truncated file each give a one-line message in err and -1.
 */
int trace_db_open(const char *path, trace_db **out, char *err, size_t errlen);
void trace_db_close(trace_db *db);

/* The last error of a reader call on db, one line ("trace x.db: database disk image is malformed").
 */
const char *trace_db_error(const trace_db *db);

typedef struct trace_run_row {
    char platform[16];
    char commit[64];
    char start_time[32];
    uint64_t seed;
    uint64_t events;     /* events in the file */
    uint64_t dropped;    /* records the recorder dropped */
    uint64_t bad_frames; /* imported stream: frames rejected */
    unsigned workers;
    int schema_version;
    bool complete; /* false: records are missing (dropped, or the recording was cut) */
    bool closed;   /* the recorder closed the file (end_unix_ns is set) */
    uint64_t start_unix_ns;
    uint64_t commit_unix_ns; /* the writer's last commit (0: not recorded, older traces) */
    bool has_exit_status;
    int exit_status;
} trace_run_row;

int trace_db_run(trace_db *db, trace_run_row *out);

/* The run's boot manifest (malloc'd, NUL-terminated; NULL if none). 0 or -1 (trace_db_error).
 * With a node selected, that node's manifest when the trace has one for it. */
int trace_db_manifest(trace_db *db, char **out, size_t *len);

/*
 * Nodes (schema 3, docs/trace-format.md): a trace of a simulated cluster holds the records of
 * several kernels, whose task ids, endpoints and object ids restart per node. A trace without
 * nodes (every trace of one kernel, and every file before schema 3) has none: count 0, and
 * everything is node 0.
 */
size_t trace_db_node_count(const trace_db *db);                    /* 0: a trace without nodes */
const char *trace_db_node_name(const trace_db *db, uint32_t node); /* NULL if none */
int trace_db_node_find(const trace_db *db, const char *name);      /* its id, or -1 */
/* "a, b, c": the node names, for messages; returns the length written. */
size_t trace_db_node_list(const trace_db *db, char *buf, size_t len);
/* Limit iterators (and so every reader) to one node's records (-1: every node, the default). */
void trace_db_select_node(trace_db *db, int64_t node);
int64_t trace_db_selected_node(const trace_db *db);
/* Select the node named name (NULL: every node): 0, or -1 with one line in err naming the
 * trace's nodes ("no node 'x' (its nodes: a, b)") or saying it has none. */
int trace_db_select_node_name(trace_db *db, const char *name, char *err, size_t errlen);
/* The node of the row an iterator returned last (or the selected node). */
uint32_t trace_db_current_node(const trace_db *db);

/*
 * Task name by id (NULL if unknown); interface name by id (from the file, then the decoder).
 * Task and device names are looked up on the node of the row an iterator returned last (or
 * the selected node); the _on forms name the node.
 */
const char *trace_db_task_name(trace_db *db, uint32_t task);
const char *trace_db_task_name_on(trace_db *db, uint32_t node, uint32_t task);
const char *trace_db_iface_name(trace_db *db, uint32_t iface);
/* Device name by object id, from the trace's DEVICE records (NULL if unknown: also every trace
 * recorded before they existed); the id of the device named name, or 0. */
const char *trace_db_device_name(trace_db *db, uint32_t dev);
const char *trace_db_device_name_on(trace_db *db, uint32_t node, uint32_t dev);
uint32_t trace_db_device_id(trace_db *db, const char *name);
uint32_t trace_db_device_id_on(trace_db *db, uint32_t node, const char *name);

/* Which events to visit. Zero fields mean "all". */
typedef struct trace_filter {
    const char *task; /* task name or id */
    uint32_t iface;   /* interface id */
    uint64_t limit;   /* at most this many events */
    uint32_t kind;    /* only this kind */
} trace_filter;

typedef struct trace_iter trace_iter;

/* Events in seq order. -1 with trace_db_error set. */
int trace_iter_open(trace_db *db, const trace_filter *f, trace_iter **out);
/* 1: *rec filled (rec->data valid until the next call), 0: end, -1: error (trace_db_error). */
int trace_iter_next(trace_iter *it, hal_trace_rec_t *rec);
void trace_iter_close(trace_iter *it);
/* The len column of the row trace_iter_next returned last: rec->len is its payload's length,
 * and the two differ only in a damaged file. */
uint32_t trace_iter_len_column(const trace_iter *it);
/* The node of the row trace_iter_next returned last (0 in a trace without nodes). */
uint32_t trace_iter_node(const trace_iter *it);
/* The device records (DEV_POST, DEV_EVENT, DEV_WRITE) of device object dev, in seq order
 * (of the selected node: a device id names one object on one node). */
int trace_iter_open_device(trace_db *db, uint32_t dev, trace_iter **out);

/* Print "orrery trace: <message>" for a failed reader, return 1 (the CLI's status). */
int trace_fail(const char *msg);

#endif
