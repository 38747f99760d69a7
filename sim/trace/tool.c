/* tool.c — orrery-trace: the `orrery trace` and `orrery bench trace` commands as a standalone binary. */
#include <stdio.h>
#include <string.h>

int hl_cmd_trace(int argc, char **argv);
int hl_cmd_bench_trace(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "bench") == 0 && strcmp(argv[2], "trace") == 0)
        return hl_cmd_bench_trace(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "trace") == 0)
        return hl_cmd_trace(argc - 1, argv + 1);
    return hl_cmd_trace(argc, argv); /* argv[0] stands for "trace" */
}
