/* hosted.h — run Orrery as a Linux process: libuv loop, worker threads, stdin/stdout console. */
#ifndef HL_HOSTED_H
#define HL_HOSTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>
#include <os/os.h>

/*
 * One run of the kernel on the real platform. The calling thread runs the
 * libuv loop (real timers, signals, wake-ups); `workers` threads call
 * k_run_one(); a reader thread feeds console input line by line. hl_run
 * returns when a task calls os_shutdown (its status), when SIGINT/SIGTERM
 * arrives and handle_signals is set (0), or when timeout_ms passes (-1 with
 * stats->timed_out). One run at a time per process.
 */
typedef struct hl_run_stats {
    long leaks;              /* k_teardown(): kernel allocations still live (0 = clean) */
    uint64_t events;         /* handler invocations during the run */
    uint64_t messages;       /* messages delivered */
    uint64_t wakes;          /* wake-ups that needed a futex syscall */
    uint64_t console_waits;  /* times console input waited for room (k_post said OS_EFULL) */
    uint64_t net_rx_dropped; /* net0 frames from slirp dropped: the kernel's queue was full */
    uint64_t net_tx_full;    /* net0 writes refused with OS_EFULL: the hand-off ring was full */
    uint64_t blk_reads;      /* blk0 READ requests served (whatever their status) */
    uint64_t blk_writes;     /* blk0 WRITE requests served (also those refused with OS_EACCES) */
    uint64_t blk_flushes;    /* blk0 FLUSH requests served */
    uint64_t blk_bytes;      /* blk0 bytes read plus bytes written on the image */
    uint64_t blk_full;       /* blk0 writes refused with OS_EFULL: HL_BLK_INFLIGHT outstanding */
    uint64_t blk_post_waits; /* blk0 completions that found the kernel's queue full and waited */
    bool timed_out;          /* the run hit timeout_ms */
    int signal;              /* the signal that stopped the run, or 0 */
} hl_run_stats_t;

/* ---- the "net0" device on libslirp (docs/networking.md) ------------------------------- */

enum { HL_NET_FWD_MAX = 16 }; /* hostfwd rules in one --net */

/* One hostfwd rule; addresses are IPv4 in host byte order. */
typedef struct hl_hostfwd {
    bool udp;
    uint32_t host_addr; /* 0: any (QEMU's default for an empty host address) */
    uint16_t host_port;
    uint32_t guest_addr; /* default 10.0.2.15, the first DHCP address */
    uint16_t guest_port;
} hl_hostfwd_t;

/*
 * A capture hook (`orrery run --pcap`): called once per frame net0 moves, in both directions,
 * with the kernel clock's time (hal_clock_now_ns, the clock trace records carry). out: a frame a
 * task wrote that the device accepted (frames it refused never reach the wire); else a frame
 * from slirp, also one the kernel then drops for a full queue. Calls come from the loop thread
 * (frames in) and from workers (frames out), one at a time under net.c's capture mutex; the
 * hook must not call into the kernel.
 */
typedef void hl_net_tap_fn(void *self, uint64_t t_ns, bool out, const void *frame, size_t len);

typedef struct hl_net_config {
    bool restricted; /* slirp's restrict=on: the guest reaches no outside address (tests) */
    unsigned nfwd;
    hl_hostfwd_t fwd[HL_NET_FWD_MAX];
    hl_net_tap_fn *tap; /* NULL: no capture (hl_net_parse leaves it NULL) */
    void *tap_self;
} hl_net_config_t;

/*
 * Parse a --net value: "none" (*enabled = false) or "user" followed by any number of
 * ",hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport" (QEMU's syntax; hostaddr may
 * also be "localhost"; guestaddr must be in 10.0.2.0/24). 0, or -1 with a one-line reason in
 * err (without the option's name).
 */
/* net0 frames from slirp dropped so far in this run because the kernel's queue was full, and
 * writes refused with OS_EFULL because the hand-off ring to the loop was full (for tests). */
uint64_t hl_net_rx_dropped(void);
uint64_t hl_net_tx_full(void);

int hl_net_parse(const char *spec, bool *enabled, hl_net_config_t *out, char *err, size_t errlen);

/* ---- the "blk0" device on an image file (docs/storage.md) -------------------- */

enum {
    HL_BLK_INFLIGHT = 32, /* requests accepted and not yet posted back; more: OS_EFULL */
    HL_BLK_THREADS = 4,   /* I/O threads doing pread/pwrite/fdatasync */
};

/* An opened image: hl_blk_open fills it, hl_run serves it as blk0, hl_blk_close closes it. */
typedef struct hl_blk_config {
    int fd;           /* the image, locked (flock: exclusive, or shared when read_only) */
    uint64_t sectors; /* file size / HAL_BLK_SECTOR */
    bool read_only;   /* ",ro" or the file was not writable: writes complete with OS_EACCES */
    char path[4096];  /* for messages */
} hl_blk_config_t;

/*
 * Open a --disk value: "FILE" or "FILE,ro". The file must exist and be a regular file whose
 * size is a non-zero multiple of 512; it is never created or truncated. Opened read-write
 * (read-only with ",ro", or when the file is not writable by us), and locked so that no other
 * run writes it at the same time. 0, or -1 with a one-line reason naming the file in err.
 */
int hl_blk_open(const char *spec, hl_blk_config_t *out, char *err, size_t errlen);
/* Close the image (releases the lock). Safe on a config hl_blk_open did not fill (fd -1). */
void hl_blk_close(hl_blk_config_t *cfg);

typedef struct hl_run_config {
    const os_program_t *const *programs; /* the image, NULL-terminated */
    const char *init_program;            /* first task, privileged */
    const void *init_arg;                /* its spawn arg (the manifest text) */
    size_t init_arg_len;
    unsigned workers;              /* 0: hl_default_workers(); at most K_WORKERS_MAX */
    const hal_trace_sink_t *trace; /* NULL: no tracing */
    int console_in;                /* fd read line by line; -1: no input */
    int console_out;               /* fd for console output */
    bool handle_signals;           /* SIGINT/SIGTERM end the run with status 0 */
    unsigned spin_us;              /* idle worker spins this long before sleeping */
    bool pin_cpus;                 /* worker i runs only on CPU i % cores (benchmarks) */
    uint64_t timeout_ms;           /* 0: none */
    const hl_net_config_t *net;    /* non-NULL: register "net0" on libslirp */
    const hl_blk_config_t *disk;   /* non-NULL: register "blk0" on this opened image */
    /* Called on the loop thread after k_boot, before any worker runs. */
    void (*on_boot)(void *self);
    void *self;
    hl_run_stats_t *stats; /* filled when hl_run returns; may be NULL */
} hl_run_config_t;

/* Defaults: stdin/stdout console, one worker per core (at most K_WORKERS_MAX), 50 us spin,
 * no signals. */
void hl_run_config_init(hl_run_config_t *cfg);

/* Boot, run until shutdown, tear down. The exit status (>= 0), -1 on timeout,
 * or a negative OS_E* code if the kernel did not boot (message on stderr). */
int hl_run(const hl_run_config_t *cfg);

/* Console input lines that found the kernel's queue full so far in this run (for tests). */
uint64_t hl_console_full_waits(void);

/* Number of online cores (at least 1). */
unsigned hl_ncpus(void);
/* The default worker count for `ncores` cores: one per core, at most K_WORKERS_MAX (the
 * kernel's limit), at least 1. */
unsigned hl_workers_for_cores(unsigned ncores);
/* hl_workers_for_cores(hl_ncpus()): what `orrery run` uses without --workers. */
unsigned hl_default_workers(void);

/* ---- faults: a task's SIGSEGV/SIGBUS/SIGILL/SIGFPE kills that task alone -------------- */

/* The calling thread runs k_run_one(worker) from now on: faults in task handlers on it become
 * k_task_fault (with an alternate signal stack for stack overflows). Used by the hosted workers
 * and by any host program that runs a kernel on its own thread (the simulator under
 * `orrery run --deterministic` and `orrery sim`). deterministic: the fault messages leave out
 * host addresses, which move with ASLR (the simulator's thread). 0 or -errno. */
int hl_fault_thread_enter(unsigned worker, bool deterministic);
/* The thread stops running tasks (before it exits). */
void hl_fault_thread_leave(void);

/* ---- the terminal (tty.c) ------------------------------------------------------------- */

/* Save fd's terminal mode and start the guardian that puts it back if this process dies
 * without hl_tty_restore (a crash, SIGKILL). For `orrery qemu`, whose QEMU sets the mode
 * itself. 0 or -errno (fd is not a terminal: -ENOTTY). */
int hl_tty_guard(int fd);
/* hl_tty_guard, then raw input (no echo, no line editing, no signals from keys: Ctrl-C is a
 * byte); output processing stays on. 0 or -errno. */
int hl_tty_raw(int fd);
/* Give the saved mode back now and stop the guardian. Does nothing if nothing was saved. */
void hl_tty_restore(void);

/* ---- line input shared by the console reader and the deterministic run -------------- */

typedef struct hl_lines {
    int fd;        /* source */
    int cancel_fd; /* readable => give up (-1: never) */
    size_t start;  /* unread bytes are buf[start, end) */
    size_t end;
    bool eof;
    char buf[4096];
} hl_lines_t;

void hl_lines_init(hl_lines_t *r, int fd, int cancel_fd);
/*
 * Next line without its '\n' (a trailing '\r' is dropped too). Returns 1 with
 * *len = its real length and at most `max` bytes copied (the rest of an
 * overlong line is read and discarded, never stored); 0 at end of input
 * (a last line without '\n' is returned first); -1 if cancelled or on a read
 * error.
 */
int hl_lines_next(hl_lines_t *r, char *line, size_t max, size_t *len);

#endif
