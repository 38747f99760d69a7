/* bench_sim.c — `orrery bench sim`: the simulator's time compression, message rate and clusters
 * of tcpip nodes (sim/bench.c runs them), beside other simulators' published figures. */
#include "cmd_sim.h"
#include "opt.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <image.h>
#include <os/os.h>
#include <sim/bench.h>
#include <sim/sim.h>

enum { BENCH_CLUSTERS_MAX = 8 };

static const char bench_usage[] =
    "usage: orrery bench sim [--json] [--quick] [--virtual SECONDS] [--msgs N]\n"
    "                        [--clusters N,N,...|none] [--cluster-virtual SECONDS]\n"
    "\n"
    "Measure the simulator on one core:\n"
    "  time compression  virtual seconds per wall second: 8 tasks with periodic 10 ms timers\n"
    "                    for --virtual seconds of virtual time (default 1000)\n"
    "  msgs/s            messages delivered per wall second: a ping-pong pair with 16\n"
    "                    messages in flight until --msgs were delivered (default 4000000)\n"
    "  clusters          for each node count of --clusters (default 2,8,32; 2..64 each), two\n"
    "                    runs of --cluster-virtual virtual seconds (default 5) from boot, seed 1,\n"
    "                    node i at 10.0.0.(i+1)/24 on the simulated switch:\n"
    "                      idle  every node runs tcpip alone with its static address (its\n"
    "                            ARP announcement and lwIP's timers, nothing else)\n"
    "                      busy  every node also runs tcpecho and a shell typing, every 10 ms,\n"
    "                            `fetch http://NEXT:7/bench` (a TCP connection through the next\n"
    "                            node's tcpecho) and `ping NEXT 1` in turn\n"
    "                    each row: simulated seconds per wall second, frames per wall second,\n"
    "                    kernel events per wall second, and seeds per hour on one core (3600 /\n"
    "                    the row's wall time: one seed is one such run, boot included)\n"
    "  --quick           small sizes for a smoke run: --virtual 10 --msgs 100000\n"
    "                    --clusters 2,8 --cluster-virtual 1 (options given win)\n"
    "  --json            print one object: time_compression, virtual_s, timer_wall_s,\n"
    "                    timer_events, msgs_per_s, msgs, msgs_wall_s; clusters: a list of\n"
    "                    {nodes, load (\"idle\"|\"busy\"), virtual_s, wall_s, sim_s_per_wall_s,\n"
    "                    frames, frames_per_s, events, events_per_s, messages, seeds_per_hour};\n"
    "                    published: {tigerbeetle_vopr_x, foundationdb_x} (others' published\n"
    "                    figures, not measured here)\n"
    "\n"
    "Beside the cluster rows, for reference: TigerBeetle's VOPR is published as \"up to 700x\"\n"
    "time acceleration, FoundationDB's simulation as about 10:1 simulated to real time.\n"
    "Details: docs/simulation.md, \"bench sim: clusters\".\n";

/* "2,8,32" into counts (each 2..SIM_NODES_MAX), or "none". The count, or -1 (said why). */
static int parse_clusters(const char *val, unsigned *counts)
{
    if (strcmp(val, "none") == 0)
        return 0;
    int n = 0;
    const char *p = val;
    for (;;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || (*end != ',' && *end != 0) || v < 2 || v > SIM_NODES_MAX ||
            n == BENCH_CLUSTERS_MAX) {
            cli_usage_error("bench sim",
                            "bench sim: --clusters wants up to %d node counts 2..%d separated "
                            "by commas (or none), not '%s'",
                            BENCH_CLUSTERS_MAX, SIM_NODES_MAX, val);
            return -1;
        }
        counts[n++] = (unsigned)v;
        if (*end == 0)
            return n;
        p = end + 1;
    }
}

static void print_clusters(const sim_bench_cluster_t *rows, int n, bool json)
{
    if (json) {
        printf(", \"clusters\": [");
        for (int i = 0; i < n; i++) {
            const sim_bench_cluster_t *c = &rows[i];
            printf("%s{\"nodes\": %u, \"load\": \"%s\", \"virtual_s\": %.3f, \"wall_s\": %.4f, "
                   "\"sim_s_per_wall_s\": %.2f, \"frames\": %llu, \"frames_per_s\": %.0f, "
                   "\"events\": %llu, \"events_per_s\": %.0f, \"messages\": %llu, "
                   "\"seeds_per_hour\": %.1f}",
                   i ? ", " : "", c->nodes, c->load == SIM_BENCH_BUSY ? "busy" : "idle",
                   c->virtual_s, c->wall_s, c->sim_per_wall, (unsigned long long)c->frames,
                   c->frames_per_s, (unsigned long long)c->events, c->events_per_s,
                   (unsigned long long)c->messages, c->seeds_per_hour);
        }
        printf("], \"published\": {\"tigerbeetle_vopr_x\": %.0f, \"foundationdb_x\": %.0f}",
               SIM_BENCH_PUBLISHED_TIGERBEETLE_VOPR, SIM_BENCH_PUBLISHED_FOUNDATIONDB);
        return;
    }
    if (n == 0)
        return;
    printf("clusters (seed 1, %.0f virtual s from boot each; docs/simulation.md):\n",
           rows[0].virtual_s);
    printf("  %5s %-5s %14s %12s %12s %11s\n", "nodes", "load", "sim s/wall s", "frames/s",
           "events/s", "seeds/hour");
    for (int i = 0; i < n; i++) {
        const sim_bench_cluster_t *c = &rows[i];
        printf("  %5u %-5s %13.1fx %12.0f %12.0f %11.0f\n", c->nodes,
               c->load == SIM_BENCH_BUSY ? "busy" : "idle", c->sim_per_wall, c->frames_per_s,
               c->events_per_s, c->seeds_per_hour);
    }
    printf("published, not measured: TigerBeetle VOPR \"up to %.0fx\" time acceleration; "
           "FoundationDB about %.0f:1 simulated to real time\n",
           SIM_BENCH_PUBLISHED_TIGERBEETLE_VOPR, SIM_BENCH_PUBLISHED_FOUNDATIONDB);
}

int hl_cmd_bench_sim(int argc, char **argv)
{
    bool json = false, quick = false, set_virtual = false, set_msgs = false, set_clusters = false,
         set_cvirtual = false;
    uint64_t vsecs = 1000, msgs = 4000000, cvsecs = 5;
    unsigned counts[BENCH_CLUSTERS_MAX] = {2, 8, 32};
    int ncounts = 3;
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"quick", no_argument, NULL, 'q'},
        {"virtual", required_argument, NULL, 'V'},
        {"msgs", required_argument, NULL, 'm'},
        {"clusters", required_argument, NULL, 'c'},
        {"cluster-virtual", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = cli_getopt(argc, argv, "bench sim", opts)) != -1) {
        if (c == 'h') {
            fputs(bench_usage, stdout);
            return 0;
        } else if (c == 'j') {
            json = true;
        } else if (c == 'q') {
            quick = true;
        } else if (c == 'V') {
            if (cli_opt_u64("bench sim", "--virtual", optarg, 1, 999999999, &vsecs) != 0)
                return 2;
            set_virtual = true;
        } else if (c == 'm') {
            if (cli_opt_u64("bench sim", "--msgs", optarg, 2, UINT64_MAX, &msgs) != 0)
                return 2;
            set_msgs = true;
        } else if (c == 'c') {
            if ((ncounts = parse_clusters(optarg, counts)) < 0)
                return 2;
            set_clusters = true;
        } else if (c == 'C') {
            if (cli_opt_u64("bench sim", "--cluster-virtual", optarg, 1, 3600, &cvsecs) != 0)
                return 2;
            set_cvirtual = true;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("bench sim", "bench sim: unexpected argument '%s'", argv[optind]);
    if (quick) {
        vsecs = set_virtual ? vsecs : 10;
        msgs = set_msgs ? msgs : 100000;
        cvsecs = set_cvirtual ? cvsecs : 1;
        if (!set_clusters)
            ncounts = 2; /* 2 and 8 */
    }
    sim_bench_result_t r;
    memset(&r, 0, sizeof r);
    int rc = sim_bench_timers(8, 10000000, vsecs * 1000000000ull, &r);
    if (rc == 0)
        rc = sim_bench_msgs(msgs, 16, &r);
    sim_bench_cluster_t rows[2 * BENCH_CLUSTERS_MAX];
    int nrows = 0;
    for (int i = 0; rc == 0 && i < ncounts; i++) {
        for (int load = SIM_BENCH_IDLE; rc == 0 && load <= SIM_BENCH_BUSY; load++) {
            rc = sim_bench_cluster(orrery_programs, counts[i], (sim_bench_load_t)load,
                                   cvsecs * 1000000000ull, &rows[nrows]);
            if (rc == 0)
                nrows++;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "orrery: bench sim: %s\n",
                rc == OS_ENOTSUP ? "clusters: this build has no per-node state section "
                                   "(several simulated nodes; --clusters none skips them)"
                                 : os_strerror(rc));
        return 1;
    }
    if (json) {
        printf("{\"time_compression\": %.0f, \"virtual_s\": %.1f, \"timer_wall_s\": %.4f, "
               "\"timer_events\": %llu, \"msgs_per_s\": %.0f, \"msgs\": %llu, \"msgs_wall_s\": "
               "%.4f",
               r.time_compression, r.virtual_s, r.ticks_wall_s, (unsigned long long)r.ticks,
               r.msgs_per_s, (unsigned long long)r.msgs, r.msgs_wall_s);
        print_clusters(rows, nrows, true);
        /* Every bench JSON names the baseline of each ratio. */
        printf(", \"baselines\": {\"time_compression\": {\"baseline\": \"timer_wall_s\", "
               "\"ratio\": \"virtual_s / timer_wall_s\"}, \"clusters.sim_s_per_wall_s\": "
               "{\"baseline\": \"clusters.wall_s\", \"ratio\": \"virtual_s / wall_s\"}, "
               "\"published.tigerbeetle_vopr_x\": {\"baseline\": \"wall time\", \"ratio\": "
               "\"simulated / real time, TigerBeetle's published figure (not measured)\"}, "
               "\"published.foundationdb_x\": {\"baseline\": \"wall time\", \"ratio\": "
               "\"simulated / real time, FoundationDB's published figure (not measured)\"}}}\n");
    } else {
        printf("time compression: %.0fx (%.0f virtual s in %.3f wall s, %llu events, 8 periodic "
               "timers)\n",
               r.time_compression, r.virtual_s, r.ticks_wall_s, (unsigned long long)r.ticks);
        printf("messages: %.2fM msgs/s on one core (%llu delivered in %.3f s, ping-pong)\n",
               r.msgs_per_s / 1e6, (unsigned long long)r.msgs, r.msgs_wall_s);
        print_clusters(rows, nrows, false);
    }
    return 0;
}
