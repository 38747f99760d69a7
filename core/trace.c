/* trace.c — trace points: stamp each IPC event with seq and time and hand it to the sink. */
#include "kpriv.h"

/*
 * Call sites use K_TRACE, which names the record's fields. The sequence
 * number comes from one atomic counter, so records are numbered from 1 with
 * no gaps even when several workers record at once; it is also the count of
 * records given to the sink (k_get_stats).
 */
void k_trace_emit(hal_trace_rec_t *rec)
{
    const hal_trace_sink_t *sink = K.trace;

    if (!sink)
        return;
    rec->seq = atomic_fetch_add_explicit(&K.trace_seq, 1, memory_order_relaxed) + 1;
    rec->time_ns = hal_clock_now_ns();
    if (!rec->len)
        rec->data = NULL;
    sink->record(sink->self, rec);
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
