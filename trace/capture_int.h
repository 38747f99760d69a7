/* capture_int.h — capture blocks: the recorder's chunks stored raw, expanded into events later. */
#ifndef TRACE_CAPTURE_INT_H
#define TRACE_CAPTURE_INT_H

#include "recorder_int.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * During a recording the writer appends each chunk's new bytes to the capture
 * file beside the trace (FILE + TR_CAPTURE_SUFFIX) by one write: a "block",
 * the entries exactly as they lie in the chunk (format 2, encoded:
 * recorder_int.h), which costs about a copy, so chunks go back to the pool at once
 * however fast the kernel records. A row of the capture table indexes each
 * block (offset, size, records, seq range), committed after the bytes are
 * written. The blocks become events/tasks/channels rows (keeping the indexes
 * up, and noting each channel's interfaces in iface_seen) while the writer is
 * idle, at close (trace_recorder_flush too), or when a reader opens a file a
 * killed recorder left (trace_capture_repair); the capture file goes once
 * nothing in it is left to expand.
 *
 * The capture file starts with a 64-byte header: TR_CAPTURE_MAGIC (16 bytes),
 * the recording's 64-bit id (meta.capture_id holds the same), zeros. A file
 * whose header does not match its trace is not read (or removed): its blocks
 * are marked bad.
 */
/* capture.format written: the chunk's encoding (recorder_int.h); format 1 is read too. */
#define TR_CAPTURE_FORMAT 2
#define TR_CAPTURE_SUFFIX "-capture"      /* the capture file: the trace's name and this */
#define TR_CAPTURE_MAGIC "orrery capture\n" /* 15 characters and a NUL */
#define TR_CAPTURE_HEADER 64u             /* bytes before the first block */
#define TR_CAPTURE_PAYLOAD_MAX TR_ENTRY_PAYLOAD_MAX /* a larger len marks a block corrupt */
/* A larger block is corrupt: a chunk, or one record too large for a chunk. */
#define TR_CAPTURE_BLOCK_MAX (TR_CHUNK + TR_CAPTURE_PAYLOAD_MAX + 2 * sizeof(tr_entry))
#define TR_EXPAND_ROWS 65536u             /* records per expansion transaction (at least) */
/*
 * While recording, the writer expands when it has nothing to capture, in
 * steps of TR_EXPAND_IDLE_ROWS, and spends at most 1 in TR_EXPAND_DUTY of
 * its time on it: a step that took t waits (TR_EXPAND_DUTY - 1) * t. Records
 * then reach the events rows during a quiet run (live readers see them), and
 * a burst is captured at once and expanded later (the rest at close).
 */
#define TR_EXPAND_IDLE_ROWS 8192u
#define TR_EXPAND_DUTY 4u

extern const char *const tr_capture_sql; /* CREATE TABLE capture */

/* The capture file of the database open as db (its main file's name and TR_CAPTURE_SUFFIX). */
int tr_capture_path(sqlite3 *db, char *buf, size_t len);
/*
 * Create the capture file for db (it must not exist: O_EXCL), write its
 * header with a fresh id and store the id in meta. The open descriptor, or
 * -1 with err.
 */
int tr_capture_create(sqlite3 *db, char *err, size_t errlen);

/*
 * Walk a block of the given format: its records, seq range and the bytes its
 * entries take as tr_entry (expanded: size for format 1), or -1 with why it
 * does not parse.
 */
int tr_capture_scan(int format, const unsigned char *p, size_t size, uint64_t *count,
                    uint64_t *first, uint64_t *last, size_t *expanded, char *why, size_t whylen);

typedef struct tr_expand_result {
    uint64_t records, blocks;         /* expanded */
    uint64_t bad_blocks, bad_records; /* blocks that did not parse, kept and marked */
    char first_bad[400];
} tr_expand_result;

typedef struct tr_expander tr_expander;
tr_expander *tr_expander_new(sqlite3 *db);
void tr_expander_free(tr_expander *x);
/* Every pending block, in transactions of whole blocks: 0, or -1 (what is left stays captured). */
int tr_expand_all(tr_expander *x, tr_expand_result *res, char *err, size_t errlen);
/* One step of at least limit records (whole blocks): 1 done, 0 nothing left, -1 error. */
int tr_expand_some(tr_expander *x, size_t limit, tr_expand_result *res, char *err, size_t errlen);
/*
 * Inside a transaction: channels.iface and interfaces (from iface_seen, which goes; from the
 * events in an older file without it, whose indexes are built here too), the emptied capture
 * table.
 */
/* *capture_done: the table was empty and is dropped (its capture file may go after COMMIT). */
int tr_finish_tables(sqlite3 *db, bool nodes, bool *capture_done, char *err, size_t errlen);

#endif
