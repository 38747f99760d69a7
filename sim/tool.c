/* tool.c — orrery-sim: `orrery sim` and `orrery bench sim` as a standalone binary (tests, CI). */
#include <stdio.h>
#include <string.h>

#include <hl/cmd_sim.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "bench") == 0 && strcmp(argv[2], "sim") == 0)
        return hl_cmd_bench_sim(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "sim") == 0)
        return hl_cmd_sim(argc - 1, argv + 1);
    return hl_cmd_sim(argc, argv); /* argv[0] stands for "sim" */
}
