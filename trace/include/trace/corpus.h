/* corpus.h — turning a recorded trace into seed inputs for the server fuzz targets
 * (docs/fuzzing.md). */
#ifndef TRACE_CORPUS_H
#define TRACE_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include <iface/iface.h>

/* The op bytes of fuzz/fuzz_server.c's input: an op is chosen by byte % 8. */
enum {
    TRACE_CORPUS_OP_MSG = 0,  /* then: message index, the fields (see docs/fuzzing.md) */
    TRACE_CORPUS_OP_RAW = 3,  /* then: type % 12, length (<= 255), bytes, handle flag */
    TRACE_CORPUS_OP_IDLE = 4, /* run until idle */
    TRACE_CORPUS_OP_LINE = 6, /* then: length % 64, bytes: one console device line */
    TRACE_CORPUS_MAX = 512,   /* longer sessions are split into parts of whole ops */
};

/* trace_corpus_write refused a path that is not ours to write (nothing was written). */
#define TRACE_CORPUS_REFUSED (-2)

/*
 * Append the ops for one message that arrived on a channel of interface ifc
 * (NULL: unknown) to out[*len..cap): a structured op when the payload decodes
 * exactly by the interface's definition, else a raw op; then an idle op.
 * Returns 0, or -1 if it does not fit (nothing appended).
 */
int trace_corpus_msg(const iface_t *ifc, uint32_t type, const void *data, size_t dlen,
                     uint32_t nhandles, uint8_t *out, size_t *len, size_t cap);

/* Append a console-line op (the line cut to 63 bytes). 0, or -1 if it does not fit. */
int trace_corpus_line(const char *line, size_t n, uint8_t *out, size_t *len, size_t cap);

/*
 * Read the trace at db_path and write one input per (server, client channel) that
 * server received messages on, as DIR/<server>/<trace name>-ch<endpoint>, plus the
 * console lines of the run as DIR/shell/<trace name>-lines and DIR/console/<...>-lines.
 * A session longer than TRACE_CORPUS_MAX bytes continues in <name>.2, <name>.3, ...
 * (short inputs keep the fuzzer's max_len, and so its speed, down).
 * Servers are the fuzz targets: init, echo, console (messages), shell (lines).
 * DIR (followed if a symlink) and DIR/<server> (never a symlink) are created if missing and
 * must be directories; each input goes to a new temporary file beside its name and is
 * renamed onto it, replacing only a regular file. Everything is checked before anything is
 * written: a refusal (TRACE_CORPUS_REFUSED) leaves DIR as it was.
 * Returns the number of files written, or -1 or TRACE_CORPUS_REFUSED with a one-line
 * message in err.
 */
int trace_corpus_write(const char *db_path, const char *dir, char *err, size_t errlen);

#endif
