/* cmd_sim.h — `orrery sim` (seed sweeps over scenarios: cli/cmd_sim.c) and `orrery bench sim`
 * (cli/bench_sim.c). */
#ifndef HL_CMD_SIM_H
#define HL_CMD_SIM_H

/* argv[0] is "sim" (or "bench sim"'s "sim"). Exit status: 0 all seeds passed, 1 a seed failed,
 * 2 usage error. */
int hl_cmd_sim(int argc, char **argv);
int hl_cmd_bench_sim(int argc, char **argv);

#endif
