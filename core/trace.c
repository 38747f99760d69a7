/* trace.c — trace points: stamp each IPC event with seq and time and hand it to the sink. */
#include "kpriv.h"

/*
 * Call sites use K_TRACE, one predictable branch when no sink is set. The
 * sequence number comes from one atomic counter, so records are numbered
 * from 1 with no gaps even when several workers record at once; it is also
 * the count of records given to the sink (k_get_stats).
 */
void k_trace_emit(uint32_t kind, uint32_t task, uint32_t chan, uint32_t peer, uint32_t type,
                  int32_t result, uint64_t arg, const void *data, size_t len, uint32_t nh)
{
    k_trace_emit_if(kind, task, chan, peer, type, result, arg, data, len, nh, 0);
}

void k_trace_emit_if(uint32_t kind, uint32_t task, uint32_t chan, uint32_t peer, uint32_t type,
                     int32_t result, uint64_t arg, const void *data, size_t len, uint32_t nh,
                     uint32_t iface)
{
    const hal_trace_sink_t *sink = K.trace;
    hal_trace_rec_t rec;

    if (!sink)
        return;
    rec.seq = atomic_fetch_add_explicit(&K.trace_seq, 1, memory_order_relaxed) + 1;
    rec.time_ns = hal_clock_now_ns();
    rec.arg = arg;
    rec.kind = kind;
    rec.task = task;
    rec.chan = chan;
    rec.peer = peer;
    rec.type = type;
    rec.result = result;
    rec.len = (uint32_t)len;
    rec.nhandles = nh;
    rec.iface = iface; /* the channel's os_channel_tag, 0 for other objects */
    rec.data = len ? data : NULL;
    sink->record(sink->self, &rec);
}

const char *k_trace_kind_name(uint32_t kind)
{
    switch (kind) {
#define K_TRACE_KIND_NAME(name, value)                                                             \
    case (value):                                                                                  \
        return #name;
        HAL_TRACE_KINDS(K_TRACE_KIND_NAME)
#undef K_TRACE_KIND_NAME
    default:
        return "?";
    }
}
