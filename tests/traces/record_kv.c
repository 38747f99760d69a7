/* record_kv.c — records the golden kv trace: a kv leader and its follower serving kvclient, and
 * tcpecho echoing tcpstream's bytes, on three simulated nodes (two of them recorded). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <image.h>
#include <sim/blk.h>
#include <sim/sim.h>
#include <trace/recorder.h>

#include "cluster_trace.h"

/*
 * usage: record_kv IMAGE OUT.db   (tests/traces/record.sh makes IMAGE with make-kv-image.sh and
 * runs it; docs/replay.md)
 *
 * Node "leader" (10.0.0.10) runs tcpip, the fs server and kv as the leader of one follower; node
 * "f1" (10.0.0.11) runs tcpip, the fs server, kv as that follower, and tcpecho. Each boots on its
 * own copy of IMAGE (a simulated disk; the file is not changed). Node "client" (10.0.0.20) runs
 * tcpip, kvclient (writes through the leader every 50 ms, then reads its keys back at 400 ms) and
 * tcpstream (4000 bytes to f1's tcpecho and back). The leader recovers (HELLO, LOG, its epoch's
 * no-op on both logs), then every write is on both disks before its OK. Only the leader and f1 are
 * recorded, into one trace of two nodes (`orrery replay --node leader --task kv`). The run is
 * deterministic (seeds 1, 2, 3, a switch without faults), so the same build and image record the
 * same trace. Exit 0 when kvclient verified every key it wrote and tcpstream got its bytes back.
 */
enum { NODES = 3, RECORDED = 2, STEPS_MAX = 20000000 };

static const char *const names[RECORDED] = {"leader", "f1"};
static const char leader_manifest[] =
    "program tcpip restart=on-failure arg=addr=10.0.0.10/24\n"
    "program fs    restart=on-failure\n"
    "program kv    restart=on-failure reach=tcp,fs arg=role=leader,port=7000,peers=10.0.0.11\n";
static const char f1_manifest[] = "program tcpip   restart=on-failure arg=addr=10.0.0.11/24\n"
                                  "program fs      restart=on-failure\n"
                                  "program kv      restart=on-failure reach=tcp,fs "
                                  "arg=role=follower,port=7000\n"
                                  "program tcpecho restart=on-failure reach=tcp,udp\n";
static const char client_manifest[] =
    "program tcpip     restart=on-failure arg=addr=10.0.0.20/24\n"
    "program kvclient  restart=never reach=tcp "
    "arg=leader=10.0.0.10,port=7000,keys=4,every=50ms,check=400ms\n"
    "program tcpstream restart=never reach=tcp arg=addr=10.0.0.11,bytes=4000\n";

/* The client node said both verdicts (kvclient's and tcpstream's). */
static bool client_done(bool *ok)
{
    const char *out = sim_node_console_output(2, NULL);
    bool kv = strstr(out, "kvcheck:") != NULL,
         stream = strstr(out, "echoed and checked") || strstr(out, "gave up");
    *ok = strstr(out, ", 0 lost") && strstr(out, "echoed and checked") &&
          !strstr(out, "kvcheck: 0 acked");
    return kv && stream;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: record_kv IMAGE OUT.db\n");
        return 2;
    }
    char err[256];
    sim_disk_t *disks[RECORDED];
    for (int i = 0; i < RECORDED; i++)
        if (!(disks[i] = sim_disk_open(argv[1], err, sizeof err))) {
            fprintf(stderr, "record_kv: %s\n", err);
            return 2;
        }
    trace_recorder *rec;
    trace_run_info info = {.platform = "sim",
                           .seed = 1,
                           .manifest = leader_manifest,
                           .workers = 1,
                           .command = "tests/traces/record_kv (nodes leader and f1 of three)"};
    if (trace_recorder_open(argv[2], &info, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "record_kv: %s\n", err);
        return 2;
    }
    if (trace_recorder_set_nodes(rec, names, RECORDED) != 0 ||
        trace_recorder_set_node_manifest(rec, 0, leader_manifest, 0) != 0 ||
        trace_recorder_set_node_manifest(rec, 1, f1_manifest, 0) != 0) {
        fprintf(stderr, "record_kv: the recorder refused the nodes\n");
        trace_recorder_close(rec, NULL, 0);
        return 1;
    }
    const char *manifests[NODES] = {leader_manifest, f1_manifest, client_manifest};
    cluster_node_sink sinks[RECORDED]; /* cluster_trace.c's per-node sink */
    sim_config_t cfg[NODES];
    memset(cfg, 0, sizeof cfg);
    for (uint32_t i = 0; i < NODES; i++) {
        cfg[i].programs = orrery_programs;
        cfg[i].init_arg = manifests[i];
        cfg[i].init_arg_len = strlen(manifests[i]);
        cfg[i].seed = 1 + i;
        cfg[i].net = true;
        if (i < RECORDED) {
            cluster_node_sink_init(&sinks[i], rec, i);
            cfg[i].trace = &sinks[i].sink;
            cfg[i].disk = disks[i];
        }
    }
    if (sim_boot_nodes(cfg, NODES) != 0) {
        fprintf(stderr, "record_kv: the three nodes did not boot\n");
        trace_recorder_close(rec, NULL, 0);
        return 1;
    }
    /* until the client's verdicts, then 200 ms more for the last FINs and ACKs */
    bool ok = false, done = false;
    uint64_t done_ns = 0;
    for (uint64_t steps = 0; steps < STEPS_MAX; steps++) {
        if (!done && client_done(&ok)) {
            done = true;
            done_ns = sim_now();
        }
        if (done && sim_now() > done_ns + 200000000ull)
            break;
        if (!sim_step())
            break;
    }
    for (size_t i = 0; i < NODES; i++)
        fputs(sim_node_console_output(i, NULL), stderr);
    long leaks = sim_teardown();
    for (int i = 0; i < RECORDED; i++)
        sim_disk_free(disks[i]);
    int rc = trace_recorder_close(rec, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "record_kv: %s\n", err);
    ok = ok && done && leaks == 0 && rc == 0;
    printf("record_kv: %s\n", ok ? "every key verified, every byte echoed: recorded" : "FAILED");
    return ok ? 0 : 1;
}
