/* stream.c — decode a byte stream of trace frames, resynchronizing after garbage. */
#include <trace/frame.h>
#include <trace/stream.h>

#include <stdlib.h>
#include <string.h>

/*
 * The decoder keeps at most one maximal frame of unconsumed bytes. At each
 * position it asks trace_frame_parse: a frame is delivered and skipped; a
 * prefix waits for more bytes; anything else skips one byte (counted as
 * garbage) and searches for the next magic, so one bad byte costs at most
 * the frame it hit, and a frame that follows garbage is still found.
 */
struct trace_stream {
    trace_stream_fn fn;
    void *self;
    unsigned char *buf; /* 2 * TRACE_FRAME_MAX bytes */
    size_t len;         /* bytes held */
    trace_stream_stats st;
};

trace_stream *trace_stream_new(trace_stream_fn fn, void *self)
{
    trace_stream *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->buf = malloc(2 * TRACE_FRAME_MAX);
    if (!s->buf) {
        free(s);
        return NULL;
    }
    s->fn = fn;
    s->self = self;
    return s;
}

void trace_stream_free(trace_stream *s)
{
    if (s) {
        free(s->buf);
        free(s);
    }
}

static size_t find_magic(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != TRACE_FRAME_MAGIC0)
            continue;
        /* A magic prefix at the end may complete later. */
        if ((i + 1 >= len || p[i + 1] == TRACE_FRAME_MAGIC1) &&
            (i + 2 >= len || p[i + 2] == TRACE_FRAME_MAGIC2) &&
            (i + 3 >= len || p[i + 3] == TRACE_FRAME_MAGIC3))
            return i;
    }
    return len;
}

/* Consume what can be decided from buf[0..len); returns the bytes consumed. */
static size_t scan(trace_stream *s)
{
    size_t off = 0;

    while (off < s->len) {
        hal_trace_rec_t rec;
        size_t skip = find_magic(s->buf + off, s->len - off);

        if (skip) {
            s->st.garbage_bytes += skip;
            off += skip;
            continue;
        }
        long r = trace_frame_parse(s->buf + off, s->len - off, &rec);
        if (r > 0) {
            s->fn(s->self, &rec);
            s->st.frames++;
            off += (size_t)r;
        } else if (r == 0) {
            break; /* need more bytes */
        } else {
            s->st.bad_frames++;
            s->st.garbage_bytes++;
            off++;
        }
    }
    return off;
}

void trace_stream_feed(trace_stream *s, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len) {
        size_t room = 2 * TRACE_FRAME_MAX - s->len;
        size_t n = len < room ? len : room;

        memcpy(s->buf + s->len, p, n);
        s->len += n;
        p += n;
        len -= n;
        size_t used = scan(s);
        memmove(s->buf, s->buf + used, s->len - used);
        s->len -= used;
        /* Held bytes are always less than one maximal frame, so room stays >= TRACE_FRAME_MAX. */
    }
}

void trace_stream_stats_get(const trace_stream *s, trace_stream_stats *out)
{
    *out = s->st;
}

void trace_stream_finish(trace_stream *s, trace_stream_stats *out)
{
    if (s->len) {
        s->st.truncated = 1;
        s->st.garbage_bytes += s->len;
        s->len = 0;
    }
    if (out)
        *out = s->st;
}
