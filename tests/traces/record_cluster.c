/* record_cluster.c — records a two-node trace (tests/traces/cluster_trace.h) for the pytest of
 * the trace tools' --node options. usage: record_cluster OUT.db */
#include "cluster_trace.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    char err[512], console[8192];

    if (argc != 2) {
        fprintf(stderr, "usage: record_cluster OUT.db\n");
        return 2;
    }
    if (cluster_trace_record(argv[1], console, sizeof(console), err, sizeof(err)) != 0) {
        fprintf(stderr, "record_cluster: %s\n", err);
        return 1;
    }
    fputs(console, stderr);
    return 0;
}
