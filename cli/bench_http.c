/* bench_http.c — `orrery bench http`: requests per second and latency percentiles with wrk. */
#include "commands.h"
#include "opt.h"

int hl_cmd_bench_http(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
