/* selftest.c — a stand-in image (one "init" program) that proves boot, console, timers and faults.
 */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <hal/console.h>
#include <os/os.h>

/*
 * Built as orrery-selftest.elf. Commands: "time", "sleep MS", "crash", "recurse",
 * "shutdown [N]"; anything else is echoed. Used while bringing the platform
 * up and by the libc/platform smoke tests; the real image boots the servers.
 */
typedef struct st {
    os_handle_t con;
    os_handle_t timer;
} st_t;

static void say(os_ctx_t *ctx, const char *s)
{
    st_t *st = os_state(ctx);
    os_device_write(ctx, st->con, HAL_CONSOLE_WRITE, s, strlen(s));
}

static int __attribute__((noinline)) recurse(int depth)
{
    volatile char pad[512];

    pad[0] = (char)depth;
    if (depth > (1 << 20))
        return 0;
    return recurse(depth + 1) + pad[0];
}

static void st_start(os_ctx_t *ctx)
{
    st_t *st = os_state(ctx);

    if (os_device_open(ctx, "console", &st->con) != 0)
        os_panic(ctx, "no console");
    os_timer_create(ctx, &st->timer);
    say(ctx, "selftest> ");
}

static void st_event(os_ctx_t *ctx, const os_event_t *ev)
{
    st_t *st = os_state(ctx);
    char out[160];

    if (ev->kind == OS_EV_TIMER) {
        say(ctx, "timer fired\nselftest> ");
        return;
    }
    if (ev->kind != OS_EV_DEVICE)
        return;
    if (ev->type == HAL_CONSOLE_EOF) {
        os_shutdown(ctx, 0);
        return;
    }
    if (ev->type == HAL_CONSOLE_OVERLONG) {
        uint32_t n;
        memcpy(&n, ev->data, sizeof(n));
        snprintf(out, sizeof(out), "line too long (%u bytes)\nselftest> ", (unsigned)n);
        say(ctx, out);
        return;
    }
    char line[HAL_CONSOLE_LINE_MAX + 1];
    memcpy(line, ev->data, ev->len);
    line[ev->len] = '\0';
    if (strcmp(line, "time") == 0) {
        snprintf(out, sizeof(out), "now %llu ns\nselftest> ",
                 (unsigned long long)os_clock_now(ctx));
        say(ctx, out);
    } else if (strncmp(line, "sleep ", 6) == 0) {
        uint64_t ms = strtoul(line + 6, NULL, 10);
        os_timer_set(ctx, st->timer, os_clock_now(ctx) + ms * 1000000);
    } else if (strcmp(line, "recurse") == 0) {
        say(ctx, recurse(0) ? "?" : "!");
    } else if (strcmp(line, "crash") == 0) {
        *(volatile int *)0 = 1;
    } else if (strncmp(line, "shutdown", 8) == 0) {
        os_shutdown(ctx, (int)strtol(line + 8, NULL, 10));
    } else {
        snprintf(out, sizeof(out), "echo: %s\nselftest> ", line);
        say(ctx, out);
    }
}

static const os_program_t selftest_init = {"init", sizeof(st_t), st_start, st_event};
const os_program_t *const bm_selftest_programs[] = {&selftest_init, NULL};
const char bm_selftest_manifest[] = "";
