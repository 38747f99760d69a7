/* cpu.h — HAL contract: what the kernel needs from the processors that run it. */
#ifndef HAL_CPU_H
#define HAL_CPU_H

/*
 * Workers are the threads (hosted) or CPUs (bare metal) that call
 * k_run_one(worker). They are numbered 0..n-1; n is k_config_t.workers.
 */

/* Spin-wait hint (x86 PAUSE). Any thread. */
void hal_cpu_relax(void);

/* Give the processor to another thread after spinning too long (hosted:
 * sched_yield; simulated and bare metal: nothing). Any thread. */
void hal_cpu_yield(void);

/*
 * The kernel made work ready for `worker` (or for any worker when worker < 0).
 * The platform wakes that worker if it sleeps, so that it calls k_run_one()
 * again. Called with kernel locks held: it must not call into the kernel.
 * Waking a worker that is running is cheap and must be harmless.
 */
void hal_cpu_wake(int worker);

/*
 * The kernel was asked to stop (os_shutdown) with this exit status.
 * The platform stops its workers after their current event and ends the run
 * with `status` (hosted: the process exit status; bare metal: isa-debug-exit).
 * Called on a worker with kernel locks held: it must return, not exit.
 */
void hal_shutdown(int status);

#endif
