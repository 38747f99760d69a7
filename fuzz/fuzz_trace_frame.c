/* fuzz_trace_frame.c — libFuzzer target for the bare-metal trace stream decoder (clang -fsanitize=fuzzer). */
#include <trace/frame.h>
#include <trace/stream.h>

#include <stdlib.h>
#include <string.h>

/*
 * The input is split at positions taken from its first byte, so the fuzzer
 * also explores frames cut across reads. Every delivered record must be
 * internally consistent, and re-encoding it in either frame version must parse back to itself.
 */
static void check(void *self, const hal_trace_rec_t *r)
{
    static unsigned char buf[TRACE_FRAME_MAX]; /* 64 KiB: not on the stack of every record */
    hal_trace_rec_t back;
    size_t n;

    (void)self;
    if (r->len > TRACE_FRAME_MAX_PAYLOAD || (r->len && !r->data))
        abort();
    for (int v = 1; v <= 2; v++) {
        n = v == 1 ? trace_frame_encode(r, buf, sizeof(buf)) : trace_frame2_encode(r, buf, sizeof(buf));
        if (n != (v == 1 ? trace_frame_size(r) : trace_frame2_size(r)) ||
            trace_frame_parse(buf, n, &back) != (long)n)
            abort();
        if (back.seq != r->seq || back.len != r->len || back.kind != r->kind ||
            back.time_ns != r->time_ns || back.iface != r->iface ||
            (r->len && memcmp(back.data, r->data, r->len) != 0))
            abort();
    }
}

/*
 * One decoder serves every input: trace_stream_finish empties it (a partial frame is
 * dropped), so the next input starts from a clean buffer, and its frame count is the
 * difference of the (cumulative) stats. A fresh decoder per input cost a 128 KiB
 * allocation, page faults included, each time.
 */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static trace_stream *s;
    trace_stream_stats before, st;
    size_t step = size ? (size_t)data[0] + 1 : 1;

    if (!s && !(s = trace_stream_new(check, NULL)))
        return 0;
    trace_stream_stats_get(s, &before);
    for (size_t off = 0; off < size; off += step)
        trace_stream_feed(s, data + off, size - off < step ? size - off : step);
    trace_stream_finish(s, &st);
    if (st.frames - before.frames > size / TRACE_FRAME_OVERHEAD)
        abort();
    return 0;
}
