/* stream.h — host side of the bare-metal trace stream: a resynchronizing frame decoder and the importer. */
#ifndef TRACE_STREAM_H
#define TRACE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>
#include <trace/recorder.h>

typedef struct trace_stream_stats {
    uint64_t frames;        /* valid records delivered */
    uint64_t bad_frames;    /* positions where the magic began no valid frame */
    uint64_t garbage_bytes; /* bytes skipped outside valid frames */
    uint64_t truncated;     /* 1 if the stream ended inside a frame */
} trace_stream_stats;

typedef void (*trace_stream_fn)(void *self, const hal_trace_rec_t *rec);

typedef struct trace_stream trace_stream;

/* A decoder that calls fn for every complete valid frame, in stream order. NULL: out of memory. */
trace_stream *trace_stream_new(trace_stream_fn fn, void *self);
/* Feed any number of bytes (any split). */
void trace_stream_feed(trace_stream *s, const void *buf, size_t len);
/* End of stream: counts a partial frame as truncated, fills *out (may be NULL). */
void trace_stream_finish(trace_stream *s, trace_stream_stats *out);
void trace_stream_stats_get(const trace_stream *s, trace_stream_stats *out);
void trace_stream_free(trace_stream *s);

/*
 * Read a frame stream from fd until EOF (a file, a pipe, QEMU's chardev
 * socket) and record every valid record into rec; bad frames are added to
 * the run's count. Returns 0 at EOF, -1 on a read error (message in err).
 */
int trace_import_fd(int fd, trace_recorder *rec, trace_stream_stats *stats, char *err,
                    size_t errlen);

/* Called by trace_import_fd_progress after each read: the stream's counts so far and the bytes
 * read. It decides itself how often to say anything (a read is at most 64 KiB). */
typedef void (*trace_import_progress_fn)(void *self, const trace_stream_stats *st,
                                         uint64_t bytes_read);

/* trace_import_fd, with progress (NULL: none). */
int trace_import_fd_progress(int fd, trace_recorder *rec, trace_stream_stats *stats,
                             trace_import_progress_fn progress, void *self, char *err,
                             size_t errlen);

#endif
