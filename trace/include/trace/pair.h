/* pair.h — match each SEND with its DELIVER, and give each message its interface. */
#ifndef TRACE_PAIR_H
#define TRACE_PAIR_H

#include <stdint.h>

#include <hal/trace.h>

/*
 * Pairing. A successful SEND (result 0) on endpoint `chan` queues the message
 * on the peer endpoint (`peer`); the receiver's DELIVER names that endpoint as
 * its `chan`. A channel direction is FIFO, so the k-th successful SEND whose
 * peer is E is delivered by the k-th DELIVER whose chan is E. Messages still
 * queued when the receiver closes its endpoint never get a DELIVER; they stay
 * unmatched (counted). Feed events in seq order.
 */
typedef struct trace_pair {
    uint64_t send_seq, deliver_seq;
    uint64_t send_ns, deliver_ns;
    uint32_t sender, receiver; /* task ids */
    uint32_t iface;            /* the SEND's interface (see trace_ifmap) */
    uint32_t len;
} trace_pair;

typedef struct trace_pairer trace_pairer;

trace_pairer *trace_pairer_new(void);
/* 1 when r is a DELIVER matched to its SEND (*out filled), else 0. iface: r's interface. */
int trace_pairer_feed(trace_pairer *p, const hal_trace_rec_t *r, uint32_t iface, trace_pair *out);
/* SENDs never delivered, DELIVERs whose SEND is not in the trace. */
void trace_pairer_unmatched(const trace_pairer *p, uint64_t *sends, uint64_t *delivers);
void trace_pairer_free(trace_pairer *p);

/*
 * Interfaces. A record's iface is used when the kernel tagged the channel.
 * Otherwise the message is matched against the known interfaces: the one
 * already seen on this channel if its definition decodes the payload
 * exactly, else the first whose message `type` does. Feed in seq order.
 */
typedef struct trace_ifmap trace_ifmap;

trace_ifmap *trace_ifmap_new(void);
/* The interface of a SEND or DELIVER (0: unknown); other kinds give r->iface. */
uint32_t trace_ifmap_resolve(trace_ifmap *m, const hal_trace_rec_t *r);
void trace_ifmap_free(trace_ifmap *m);

/* Nearest-rank percentile (pct 0..100) of sorted values; 0 if n is 0. */
uint64_t trace_percentile(const uint64_t *sorted, uint64_t n, unsigned pct);

#endif
