/* internal.h — private interfaces between the pieces of the hosted platform (hal-linux). */
#ifndef HL_INTERNAL_H
#define HL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hl/hosted.h>

/* ---- workers.c: threads that call k_run_one, sleeping on a futex when idle ---- */

/* Start n workers; each spins spin_us before sleeping; pin: worker i on CPU i % cores.
 * 0 or -errno. */
int hl_workers_start(unsigned n, unsigned spin_us, bool pin);
/* Restrict the calling thread to one CPU (cpu % cores). 0 or -errno. */
int hl_pin_self(unsigned cpu);
/* Work is ready for `worker` (< 0: any). Cheap when the target is awake. */
void hl_workers_wake(int worker);
/* Ask every worker to stop after its current event (any thread, async-safe enough). */
void hl_workers_request_stop(void);
/* Join them all (after hl_workers_request_stop). */
void hl_workers_join(void);
/* Wake-ups that needed a syscall. */
uint64_t hl_workers_syscall_wakes(void);

/* ---- console.c: the "console" device on fds ---- */

/* Register the device (before k_boot). 0 or a negative code. */
int hl_console_add(int in_fd, int out_fd);
/* Start the reader thread (after k_boot), if there is input. 0 or -errno. */
int hl_console_start(void);
/* Before the tasks run: a terminal on both fds goes raw (tty.c) until hl_console_stop, and
 * hl_console_start then posts keystrokes instead of lines. */
void hl_console_terminal(void);
/* SIGWINCH (loop thread): a terminal posts its new size (HAL_CONSOLE_INFO). */
void hl_console_resized(void);
/* Stop and join the reader (workers already stopped, kernel still alive). */
void hl_console_stop(void);
/* Write whole, under the console mutex (hal_console_write). */
void hl_console_write(const void *buf, size_t len);

/* ---- net.c: the "net0" device on libslirp ---- */

struct uv_loop_s;
/* Register the device (before k_boot). 0 or a negative code. */
int hl_net_add(const hl_net_config_t *cfg);
/* Start slirp on the loop (loop thread, after k_boot) and post HAL_NET_LINK_UP. 0, or a
 * negative code with the reason in err. */
int hl_net_start(struct uv_loop_s *loop, char *err, size_t errlen);
/* Close slirp and its handles (loop thread, workers joined; the loop's last run frees them). */
void hl_net_stop(void);
/* hl_net_rx_dropped/hl_net_tx_full are in <hl/hosted.h>. */

/* ---- blk.c: the "blk0" device on an image file ---- */

/* Register the device (before k_boot). 0 or a negative code. */
int hl_blk_add(const hl_blk_config_t *cfg);
/* Start the I/O threads and the completion hand-off on the loop (loop thread, after k_boot),
 * and post HAL_BLK_INFO. 0, or a negative code with the reason in err. */
int hl_blk_start(struct uv_loop_s *loop, char *err, size_t errlen);
/* Wait for every accepted request, join the I/O threads, close the loop handle (loop thread,
 * workers joined, kernel alive). Completions not yet posted are dropped: no task will run. */
void hl_blk_stop(void);
/* Counters of this run: reads, writes, flushes, bytes, writes refused OS_EFULL, post waits. */
void hl_blk_counts(uint64_t out[6]);

/* fault.c: hl_fault_thread_enter/leave are in <hl/hosted.h>. */

/* ---- platform.c ---- */

/* The run should end with `status` (first caller wins). Any thread. */
void hl_request_stop(int status);

#endif
