/* cluster_trace.h — records a two-node simulated cluster into one trace (schema 3 nodes): the
 * fixture of test_trace_nodes and of record_cluster (pytest's multi-node trace); its per-node
 * sink is record_kv's too. */
#ifndef CLUSTER_TRACE_H
#define CLUSTER_TRACE_H

#include <hal/trace.h>
#include <trace/recorder.h>

#include <stddef.h>
#include <stdint.h>

/* One node's trace sink: its kernel's records, with the node's index, into a recorder shared by
 * the nodes (trace_recorder_record_node); its flush flushes the recorder. */
typedef struct cluster_node_sink {
    hal_trace_sink_t sink;
    trace_recorder *rec;
    uint32_t node;
} cluster_node_sink;

/* Make s node `node`'s sink into rec; &s->sink goes in that node's sim_config_t.trace. */
void cluster_node_sink_init(cluster_node_sink *s, trace_recorder *rec, uint32_t node);

/*
 * Node 0 "client": console, tcpip at 10.0.0.1 and a shell that pings 10.0.0.2 three times at
 * 200 ms and shuts the node down at 3 s. Node 1 "server": tcpip at 10.0.0.2 and tcpecho. Both
 * kernels record into path through trace_recorder_set_nodes / trace_recorder_record_node, each
 * node's manifest kept. Seed 1, a switch without faults: the same build records the same
 * trace. 0, or -1 with one line in err (the client's console is in console, if not NULL).
 */
int cluster_trace_record(const char *path, char *console, size_t console_len, char *err,
                         size_t errlen);

#endif
