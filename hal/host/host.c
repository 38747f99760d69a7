/* host.c — the hal_* contract for host processes, forwarded to the installed platform. */
#include <hal/host.h>

#include <stdio.h>
#include <stdlib.h>

#include <hal/clock.h>
#include <hal/console.h>
#include <hal/cpu.h>
#include <hal/entropy.h>

static const hal_host_t *platform;

void hal_host_set(const hal_host_t *p)
{
    __atomic_store_n(&platform, p, __ATOMIC_RELEASE);
}

const hal_host_t *hal_host_get(void)
{
    return __atomic_load_n(&platform, __ATOMIC_ACQUIRE);
}

static const hal_host_t *current(void)
{
    const hal_host_t *p = hal_host_get();
    if (!p) {
        /* NEVER: a kernel runs only between hal_host_set and k_teardown. */
        fputs("orrery: HAL called with no platform installed\n", stderr);
        abort();
    }
    return p;
}

uint64_t hal_clock_now_ns(void)
{
    return current()->clock_now_ns();
}

void hal_timer_arm(uint64_t deadline_ns)
{
    current()->timer_arm(deadline_ns);
}

void hal_entropy_fill(void *buf, size_t len)
{
    current()->entropy_fill(buf, len);
}

void hal_console_write(const void *buf, size_t len)
{
    current()->console_write(buf, len);
}

void hal_cpu_relax(void)
{
    __builtin_ia32_pause();
}

void hal_cpu_yield(void)
{
    current()->cpu_yield();
}

void hal_cpu_wake(int worker)
{
    current()->cpu_wake(worker);
}

void hal_shutdown(int status)
{
    current()->shutdown(status);
}
