/* entropy.h — HAL contract: random bytes. */
#ifndef HAL_ENTROPY_H
#define HAL_ENTROPY_H

#include <stddef.h>

/*
 * Fill buf with len random bytes. Never fails and never blocks for long.
 * Hosted: getrandom(). Simulated: the seeded generator (so a seed replays).
 * Bare metal: RDRAND, else virtio-rng. Callable from any worker.
 */
void hal_entropy_fill(void *buf, size_t len);

#endif
