/* streams.h — the cross-node TCP stream checker: every byte delivered was sent, and streams
 * make progress once the network has healed. */
#ifndef SIM_STREAMS_H
#define SIM_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>

/*
 * Fed every trace record of every node of a run (with its node index), it follows each TCP
 * connection through the tcp interface's messages on both ends (iface/tcp.h: opened /
 * established on the connecting side, accepted on the listening side, paired across nodes
 * by their addresses and ports) and checks two invariants:
 *
 * 1. Integrity: the bytes one end's application receives (`data` server -> client) are
 *    exactly a prefix of the bytes the other end's application wrote (`data` client ->
 *    server), in order, with nothing added, lost in the middle or changed. An `eof` says how
 *    long the stream was: it must equal what was written before the writer's shutdown.
 * 2. Liveness: once the network has healed for good (sim_streams_check's heal_ns), a
 *    direction with bytes written and not yet delivered delivers more of them, or the
 *    connection ends (error, reset, close on either end, or the node holding an end
 *    crashed), within bound_ns.
 *
 * A connection whose other end is not in the run (a host peer) is checked for nothing.
 * A pending shutdown (no eof yet) counts as undelivered for liveness. heal_ns UINT64_MAX:
 * the network never heals, liveness is not checked. Memory: per direction, the bytes written
 * and not yet delivered (the checked prefix is dropped); an end not yet paired keeps at most
 * SIM_STREAMS_UNPAIRED_MAX bytes, then is taken as talking to a host (more than can be in
 * flight before the other end is accepted: its channel's 128 messages and lwIP's buffers).
 * sim/streams.c says which records tell what.
 * It is in the orrery_sim_runner library (it decodes the tcp interface of the servers).
 */
enum { SIM_STREAMS_UNPAIRED_MAX = 4 << 20 };
typedef struct sim_streams sim_streams_t;

sim_streams_t *sim_streams_new(void);
void sim_streams_free(sim_streams_t *s);

/* One record of node `node` (the records of each node in order; nodes interleaved as run). */
void sim_streams_record(sim_streams_t *s, uint32_t node, const hal_trace_rec_t *r);

/* Node `node` lost power or crashed: its ends of every connection are gone (not a stall);
 * also for a node that shut down for good while others run on. */
void sim_streams_node_down(sim_streams_t *s, uint32_t node);

/*
 * Check both invariants at virtual time now_ns (call it as the run goes, and at its end).
 * The first violation goes into err (one line, naming the nodes, addresses, ports and the
 * byte offset) and false is returned; it stays failed.
 */
bool sim_streams_check(sim_streams_t *s, uint64_t now_ns, uint64_t heal_ns, uint64_t bound_ns,
                       char *err, size_t errlen);

/* Optional: the node's name for failures ("node NAME"; else "node INDEX"), and its IPv4
 * address (host order): an accepting end on it then pairs only with a connecting end that
 * connected to that address (else addresses and ports of both ends are enough, unless two
 * nodes share an address). */
void sim_streams_node_name(sim_streams_t *s, uint32_t node, const char *name);
void sim_streams_node_addr(sim_streams_t *s, uint32_t node, uint32_t addr);

/* A trace sink feeding node `node`'s records to s (for sim_config.trace; valid while s is). */
hal_trace_sink_t sim_streams_sink(sim_streams_t *s, uint32_t node);

typedef struct sim_streams_stats {
    uint64_t connections; /* paired across nodes */
    uint64_t unpaired;    /* an end whose other end is not in the run */
    uint64_t bytes;       /* delivered and checked */
    uint64_t held;        /* now: bytes written and not yet delivered, kept to compare */
} sim_streams_stats_t;
void sim_streams_stats(const sim_streams_t *s, sim_streams_stats_t *out);

#endif
