/* sim.h — the deterministic platform: one thread, virtual time, seeded choices, scripted console. */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>
#include <os/os.h>

/*
 * Return 1 and fill line[0..min(len,max)) with the next input line ('\n'
 * stripped), or 0 at the end of input. A line longer than max returns 1 with
 * *len set to its real length (content truncated): the console then posts
 * HAL_CONSOLE_OVERLONG instead of the line.
 */
typedef int (*sim_input_fn)(void *self, char *line, size_t max, size_t *len);

typedef struct sim_config {
    const os_program_t *const *programs; /* the image, NULL-terminated */
    const char *init_program;            /* NULL: "init" */
    const void *init_arg;                /* init's spawn arg (the manifest) */
    size_t init_arg_len;
    uint64_t seed;                       /* scheduler picks and entropy */
    const char *console_input;           /* script: lines separated by '\n' (or NULL) */
    sim_input_fn console_read;           /* or: input from a callback (wins over the script) */
    void *console_read_self;
    bool console_eof;                    /* post HAL_CONSOLE_EOF when input ends */
    void (*console_out)(void *self, const void *buf, size_t len); /* also send output here */
    void *console_out_self;
    const hal_trace_sink_t *trace;       /* NULL: no tracing */
    uint64_t event_cost_max_ns;          /* each event advances virtual time by a seeded
                                            1..max ns (0: events take no time) */
    bool net;                            /* a net0 device on the switch (sim/net.h) */
    uint8_t mac[6];                      /* its MAC; all zero: 52:54:00:12:34:56 plus the
                                            node's index in the last byte */
    struct sim_disk *disk;               /* a blk0 device on this disk (sim/blk.h); the
                                            disk is the caller's and outlives the node */
} sim_config_t;

/* Install the sim platform, register the console device and boot the kernel. */
int sim_boot(const sim_config_t *cfg);

/*
 * Boot n nodes in one run (1..SIM_NODES_MAX), each a whole Orrery with its own kernel,
 * tasks, console and (cfg.net) net0 on the switch. Virtual time is one for all; each step
 * runs one event of one node, the node drawn from the seed of cfgs[0] among those with
 * work. Every node starts from the program's pristine state (every static of the kernel,
 * the servers and lwIP: the per-node state section, docs/simulation.md) and the process's
 * own state is put back at sim_teardown. sim_step/sim_run end when node 0 shuts down, or
 * when nothing can happen any more; a node that shut down stops (frames to it are lost).
 * The calls below without a node (sim_console_output, sim_console_feed,
 * sim_shutdown_status) are node 0's. OS_EINVAL (n), OS_ENOTSUP (the build has no per-node
 * state section), OS_ENOMEM, or k_boot's error.
 */
enum { SIM_NODES_MAX = 64 };
int sim_boot_nodes(const sim_config_t *cfgs, size_t n);
size_t sim_node_count(void);
const char *sim_node_console_output(size_t node, size_t *len);
bool sim_node_shutdown_status(size_t node, int *status);
/* A console line for one node at t_ns (as sim_console_at for node 0). */
int sim_node_console_at(size_t node, uint64_t t_ns, const char *line);
/* Kernel allocations still live on each node after teardown (set by sim_teardown). */
long sim_node_leaks(size_t node);
/* How many times node booted in this run: 1, plus its reboots after power cuts and crashes. */
unsigned sim_node_boots(size_t node);

/*
 * Advance the run by one step: run one ready event; or, when nothing is
 * ready, fire the timers that are due, or feed the next console input line,
 * or jump virtual time to the next timer. Returns false once shutdown was
 * requested or nothing can ever happen again.
 */
bool sim_step(void);

/* Step until sim_step returns false or max_events steps ran (0: no limit).
 * Returns the shutdown status, or -1 if the run ended without a shutdown. */
int sim_run(uint64_t max_events);

/* Step until no task is ready and no timer is due now (input is not fed). */
void sim_run_until_idle(void);

/* Move virtual time forward by ns and fire the timers that became due. */
void sim_advance(uint64_t ns);
uint64_t sim_now(void);

/* Everything written to the console since boot (or the last clear), NUL-terminated. */
const char *sim_console_output(size_t *len);
void sim_console_clear(void);

/* Post one console input line now (bypassing the script). OS_EFULL, OS_E2BIG. */
int sim_console_feed(const char *line);

/* True once shutdown was requested; *status receives the status. */
bool sim_shutdown_status(int *status);

/*
 * The run's seeded generator for everything the platform decides (injected
 * faults, simulated latencies). The scheduler and the entropy device draw
 * from their own streams of the same seed, so adding a fault draw never
 * changes which task runs next.
 */
uint64_t sim_rand(void);

/*
 * Timed actions. sim_at calls fn(self, arg) between two events once virtual
 * time reaches t_ns, with the node that was current when it was added (the one
 * whose kernel the caller was using) current again; sim_console_at posts a console input line then (if the
 * console queue is full, the line waits, and later lines wait behind it).
 * Actions at equal times run in the order they were added. When nothing is
 * ready, virtual time jumps to the next action or timer, whichever is first.
 * 0, OS_ENOMEM, OS_E2BIG (line too long).
 */
typedef void (*sim_action_fn)(void *self, uint64_t arg);
int sim_at(uint64_t t_ns, sim_action_fn fn, void *self, uint64_t arg);
int sim_console_at(uint64_t t_ns, const char *line);
size_t sim_pending_actions(void);
/* The current node's console input ends: once the lines already posted or waiting are in, its
 * console gets HAL_CONSOLE_EOF (as at the end of piped input). Called from a timed action, it
 * ends the input at that time (a scenario's `eof on`). */
void sim_console_end(void);

/* Tear the kernel down and uninstall the platform. Returns leaked kernel allocations. */
long sim_teardown(void);

#endif
