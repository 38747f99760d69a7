/* stream.c — decode a byte stream of trace frames, resynchronizing after garbage. */
#include <trace/frame.h>
#include <trace/stream.h>

#include <stdbool.h>
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
    unsigned char *buf; /* TRACE_FRAME_MAX bytes: the undecided prefix of one frame */
    size_t len;         /* bytes held */
    trace_stream_stats st;
};

trace_stream *trace_stream_new(trace_stream_fn fn, void *self)
{
    trace_stream *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->buf = malloc(TRACE_FRAME_MAX);
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

static bool magic3_ok(unsigned char c)
{
    return c == TRACE_FRAME_MAGIC3 || c == TRACE_FRAME2_MAGIC3;
}

/* The first position in p[0..len) where a magic (either version) starts, or a prefix of one
 * ends the bytes (it may complete later); len if none. */
static size_t find_magic(const unsigned char *p, size_t len)
{
    const unsigned char *q = p, *end = p + len;

    while ((q = memchr(q, TRACE_FRAME_MAGIC0, (size_t)(end - q))) != NULL) {
        size_t i = (size_t)(q - p);
        if ((i + 1 >= len || p[i + 1] == TRACE_FRAME_MAGIC1) &&
            (i + 2 >= len || p[i + 2] == TRACE_FRAME_MAGIC2) && (i + 3 >= len || magic3_ok(p[i + 3])))
            return i;
        q++;
    }
    return len;
}

/* Consume what can be decided from p[0..len); returns the bytes consumed. */
static size_t scan(trace_stream *s, const unsigned char *p, size_t len)
{
    size_t off = 0;

    while (off < len) {
        hal_trace_rec_t rec;
        long r;

        /* At a frame boundary (the usual case) the magic is right there. */
        if (len - off < 4 || p[off] != TRACE_FRAME_MAGIC0 || p[off + 1] != TRACE_FRAME_MAGIC1 ||
            p[off + 2] != TRACE_FRAME_MAGIC2 || !magic3_ok(p[off + 3])) {
            size_t skip = find_magic(p + off, len - off);
            if (skip) {
                s->st.garbage_bytes += skip;
                off += skip;
                continue;
            }
        }
        r = trace_frame_parse(p + off, len - off, &rec);
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

/*
 * Bytes the frame at p (an undecided prefix: a magic or the start of a frame) needs before
 * trace_frame_parse can decide it: its whole size once its header is there, else the header.
 */
static size_t frame_need(const unsigned char *p, size_t len)
{
    size_t head;
    uint32_t n;

    if (len < 4)
        return 4;
    head = p[3] == TRACE_FRAME2_MAGIC3 ? TRACE_FRAME2_HEAD : TRACE_FRAME_HEAD;
    if (len < head)
        return head;
    n = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    if (n > TRACE_FRAME_FIXED + TRACE_FRAME_MAX_PAYLOAD)
        return len + 1; /* NEVER: parse rejects such a header at once */
    return p[3] == TRACE_FRAME2_MAGIC3 ? TRACE_FRAME2_HEAD + ((n + 7u) & ~7u)
                                       : TRACE_FRAME_HEAD + n + TRACE_FRAME_TAIL;
}

/*
 * Bytes are decoded where they are; only an undecided tail (a prefix of one frame, so less
 * than TRACE_FRAME_MAX bytes) is copied and held. The next feed first completes the held frame
 * with just the bytes it lacks, then goes on in place: a pipe's reads, which end anywhere in a
 * frame, cost one frame's copy each, not a copy of everything.
 */
void trace_stream_feed(trace_stream *s, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len) {
        if (s->len == 0) {
            size_t used = scan(s, p, len);
            p += used;
            len -= used;
            if (len >= TRACE_FRAME_MAX) /* NEVER: the undecided tail is a prefix of one frame */
                abort();
            memcpy(s->buf, p, len);
            s->len = len;
            return;
        }
        size_t need = frame_need(s->buf, s->len);
        size_t n = need > s->len ? need - s->len : 1;

        if (n > len)
            n = len;
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        p += n;
        len -= n;
        size_t used = scan(s, s->buf, s->len);
        memmove(s->buf, s->buf + used, s->len - used);
        s->len -= used;
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
