/* clock.h — HAL contract: the monotonic clock and the one kernel timer. */
#ifndef HAL_CLOCK_H
#define HAL_CLOCK_H

#include <stdint.h>

/*
 * Nanoseconds of the kernel clock: monotonic, starting near 0 at boot.
 * Hosted: CLOCK_MONOTONIC minus the boot instant. Simulated: virtual time.
 * Bare metal: calibrated TSC. Callable from any thread, at any time.
 */
uint64_t hal_clock_now_ns(void);

/*
 * Ask the platform to call k_timer_tick() once hal_clock_now_ns() >= deadline_ns.
 * Only the latest call counts (it replaces the previous deadline); UINT64_MAX
 * disarms. Called by the kernel from any worker, possibly with kernel locks
 * held: it must not call back into the kernel synchronously. Calling
 * k_timer_tick() early or more often is harmless.
 */
void hal_timer_arm(uint64_t deadline_ns);

#endif
