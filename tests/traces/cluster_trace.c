/* cluster_trace.c — a two-node simulated cluster recorded into one trace (cluster_trace.h). */
#include "cluster_trace.h"

#include <image.h>
#include <sim/sim.h>
#include <trace/recorder.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const node_names[] = {"client", "server"};
static const char client_manifest[] =
    "program console restart=always\n"
    "program tcpip restart=on-failure arg=addr=10.0.0.1/24\n"
    "program shell restart=always reach=console,echo,init,net,tcp\n"
    "program echo restart=on-failure\n";
static const char server_manifest[] = "program tcpip restart=on-failure arg=addr=10.0.0.2/24\n"
                                      "program tcpecho restart=on-failure reach=tcp,udp\n";

static void node_record(void *self, const hal_trace_rec_t *r)
{
    cluster_node_sink *s = self;
    trace_recorder_record_node(s->rec, s->node, r);
}

static void node_flush(void *self)
{
    trace_recorder_flush(((cluster_node_sink *)self)->rec);
}

void cluster_node_sink_init(cluster_node_sink *s, trace_recorder *rec, uint32_t node)
{
    *s = (cluster_node_sink){{s, node_record, node_flush}, rec, node};
}

int cluster_trace_record(const char *path, char *console, size_t console_len, char *err,
                         size_t errlen)
{
    const char *manifests[2] = {client_manifest, server_manifest};
    trace_run_info info = {.platform = "sim",
                           .seed = 1,
                           .manifest = client_manifest,
                           .workers = 1,
                           .command = "tests/traces/cluster_trace (two nodes)"};
    cluster_node_sink sinks[2];
    sim_config_t cfg[2];
    trace_recorder *rec;
    int status = -1;

    if (trace_recorder_open(path, &info, &rec, err, errlen) != 0)
        return -1;
    if (trace_recorder_set_nodes(rec, node_names, 2) != 0 ||
        trace_recorder_set_node_manifest(rec, 0, client_manifest, 0) != 0 ||
        trace_recorder_set_node_manifest(rec, 1, server_manifest, 0) != 0) {
        snprintf(err, errlen, "the recorder refused the nodes");
        trace_recorder_close(rec, NULL, 0);
        return -1;
    }
    memset(cfg, 0, sizeof(cfg));
    for (uint32_t i = 0; i < 2; i++) {
        cluster_node_sink_init(&sinks[i], rec, i);
        cfg[i].programs = orrery_programs;
        cfg[i].init_program = "init";
        cfg[i].init_arg = manifests[i];
        cfg[i].init_arg_len = strlen(manifests[i]);
        cfg[i].seed = 1 + i;
        cfg[i].net = true;
        cfg[i].trace = &sinks[i].sink;
    }
    if (sim_boot_nodes(cfg, 2) != 0) {
        snprintf(err, errlen, "the two nodes did not boot");
        trace_recorder_close(rec, NULL, 0);
        return -1;
    }
    sim_node_console_at(0, 200000000ull, "ping 10.0.0.2 3");
    sim_node_console_at(0, 3000000000ull, "shutdown");
    for (uint64_t steps = 0; steps < 10000000; steps++)
        if (!sim_step())
            break;
    bool down = sim_node_shutdown_status(0, &status);
    if (console)
        snprintf(console, console_len, "%s", sim_node_console_output(0, NULL));
    sim_teardown();
    if (trace_recorder_close(rec, err, errlen) != 0)
        return -1;
    if (!down) {
        snprintf(err, errlen, "the client node did not shut down");
        return -1;
    }
    return 0;
}
