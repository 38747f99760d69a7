/* commands.h — the orrery CLI's subcommands, one function each (argv[0] is the subcommand). */
#ifndef HL_COMMANDS_H
#define HL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hal/trace.h>
#include <os/os.h>

/* Each returns the process exit status: 0 ok, 2 usage error, else the command's own. */
int hl_cmd_run(int argc, char **argv);        /* run.c */
int hl_cmd_bench_ipc(int argc, char **argv);  /* bench_ipc.c */
int hl_cmd_bench_net(int argc, char **argv);  /* bench_net.c */
int hl_cmd_bench_fs(int argc, char **argv);   /* bench_fs.c */
int hl_cmd_bench_qtrace(int argc, char **argv); /* bench_qtrace.c */
int hl_cmd_mkfs(int argc, char **argv);       /* mkfs.c */
int hl_cmd_serve(int argc, char **argv);      /* serve.c */
int hl_cmd_bench_http(int argc, char **argv); /* bench_http.c */

/* The bare-metal image under QEMU (qemu.c, bench_boot.c). */
int hl_cmd_qemu(int argc, char **argv);
int hl_cmd_bench_boot(int argc, char **argv);

/* The trace store (cmd_trace.c, cmd_corpus.c; built by trace/CMakeLists.txt). */
int hl_cmd_trace(int argc, char **argv);
int hl_cmd_bench_trace(int argc, char **argv);
int hl_cmd_trace_corpus(int argc, char **argv);

/* `orrery run --trace FILE` (cmd_trace.c): open the recorder for a run and give its sink;
 * 0, or the exit status (2: FILE is not ours to replace) after printing a one-line error.
 * hl_trace_run_close stores the exit status and closes the file (0, or 1 after printing why
 * the trace is incomplete or unfinished). */
struct hal_trace_sink;
int hl_trace_run_open(const char *path, bool deterministic, uint64_t seed, const char *manifest,
                      size_t manifest_len, unsigned workers, const char *command,
                      const struct hal_trace_sink **sink);
int hl_trace_run_close(int status);
/* Output commands (cmd_trace.c): hl_output_begin makes the process stop at once when its reader
 * goes away (`orrery trace show | head`; main ignores SIGPIPE for the OS's console).
 * hl_output_end flushes f: rc, or 1 after printing "orrery WHO: writing the output: <why>" if
 * rc was 0 and a write failed (a full disk). */
void hl_output_begin(void);
int hl_output_end(const char *who, FILE *f, int rc);
/* Any recording command (cmd_trace.c): open a recorder for path, printing "orrery: WHO: ..."
 * for an error or a notice (an existing trace is replaced); 0 or the exit status (2: the path
 * is refused). hl_trace_close closes it: 0, or 1 after printing why it is incomplete. */
struct trace_recorder;
struct trace_run_info;
int hl_trace_open(const char *who, const char *path, const struct trace_run_info *ti,
                  struct trace_recorder **rec);
int hl_trace_close(const char *who, struct trace_recorder *rec);
/* bench_ipc.c: one IPC benchmark run (workers 0 and 1) with this trace sink (NULL: off);
 * the median round trip and one-way messages per second. 0 or -1. */
int hl_bench_ipc_once(const struct hal_trace_sink *trace, uint64_t *rtt_ns, double *msgs_per_s);
/* The same with the client on client_worker and the server on server_worker (0 and 0: both
 * tasks on worker 0, worker 1 idle). */
int hl_bench_ipc_on(int client_worker, int server_worker, const struct hal_trace_sink *trace,
                    uint64_t *rtt_ns, double *msgs_per_s);
/* `orrery run --deterministic` (det.c): the simulator with the console on file descriptors. */

typedef struct hl_det_config {
    const os_program_t *const *programs;
    const char *init_program;
    const void *init_arg;
    size_t init_arg_len;
    uint64_t seed;
    int console_in;                /* fd; -1: no input (EOF at once) */
    int console_out;               /* fd */
    uint64_t max_events;           /* 0: no limit */
    const hal_trace_sink_t *trace; /* NULL: no tracing */
} hl_det_config_t;

/* One thread, virtual clock, seeded scheduling; the same seed and input give
 * the same output byte for byte. Returns the shutdown status, or -1. */
int hl_run_deterministic(const hl_det_config_t *cfg);

/* `orrery replay` (cmd_replay.c). */
int hl_cmd_replay(int argc, char **argv);

/* Read and check a boot manifest file (run.c): 0 with *text (the caller frees it), or 2
 * after printing why, naming the file and line. */
int hl_manifest_load(const char *path, char **text, size_t *len);

/* The default disk: $ORRERY_DISK if set (a path, or "none": 1, no disk), else HL_DEFAULT_DISK
 * next to this binary (build/disk.img, made from disk/ by the build). 0 with its path when it
 * exists, else -1 with the path it would have. */
#define HL_DEFAULT_DISK "disk.img"
int hl_default_disk(char *out, size_t n); /* qemu_disk.c */

/* Usage errors, numbers, files and writes: cli_* in opt.h. */

#endif
