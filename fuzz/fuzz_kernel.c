/* fuzz_kernel.c — libFuzzer target for kernel syscall sequences, interpreted by a task on sim. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <k/fault.h>
#include <k/kernel.h>
#include <sim/faults.h>
#include <sim/sim.h>

/*
 * The input is a syscall script. Task "fz" (privileged, task 1) runs it from
 * its on_event: each timer event executes ops until a `yield` op, then re-arms
 * the timer, so other tasks run (and events arrive) between slices. Its
 * children "fzc" obey the messages they receive (reply, close, exit, panic,
 * send back handles). Handles live in a pool of 16 slots; ops pick slots by
 * index, so stale and wrong-type handles are exercised too.
 * Invariants: the kernel audit holds after every slice; every run ends in a
 * clean teardown with no leaked allocation; a child's panic is on purpose
 * (op), so panics are not failures here, but a crash or sanitizer report is.
 */
enum { POOL = 16 };

static struct {
    const uint8_t *p;
    size_t n;
    os_handle_t pool[POOL];
    os_handle_t tick;
} Z;

static uint8_t byte(void)
{
    if (!Z.n)
        return 0;
    Z.n--;
    return *Z.p++;
}

static os_handle_t *slot(void)
{
    return &Z.pool[byte() % POOL];
}

static void put(os_handle_t h)
{
    for (int i = 0; i < POOL; i++) {
        if (Z.pool[i] == OS_HANDLE_NONE) {
            Z.pool[i] = h;
            return;
        }
    }
    Z.pool[byte() % POOL] = h; /* the old handle leaks into the table: teardown frees it */
}

static void run_slice(os_ctx_t *ctx)
{
    uint8_t data[64];
    for (int budget = 0; Z.n && budget < 64; budget++) {
        uint8_t op = byte() % 16;
        os_handle_t a, b, hs[OS_MSG_MAX_HANDLES];
        switch (op) {
        case 0: /* yield */
            return;
        case 1:
            if (os_channel_create(ctx, &a, &b) == 0) {
                put(a);
                put(b);
            }
            break;
        case 2: { /* send, maybe carrying handles */
            os_handle_t *ch = slot();
            size_t len = byte() % sizeof data, nh = byte() % 3;
            for (size_t i = 0; i < len; i++)
                data[i] = byte();
            for (size_t i = 0; i < nh; i++)
                hs[i] = *slot();
            int rc = os_send(ctx, *ch, byte(), data, len, hs, nh);
            if (rc == 0)
                for (size_t i = 0; i < nh; i++)
                    for (int k = 0; k < POOL; k++)
                        if (Z.pool[k] == hs[i])
                            Z.pool[k] = OS_HANDLE_NONE;
            break;
        }
        case 3: {
            os_handle_t *h = slot();
            if (os_handle_close(ctx, *h) == 0)
                *h = OS_HANDLE_NONE;
            break;
        }
        case 4:
            if (os_timer_create(ctx, &a) == 0)
                put(a);
            break;
        case 5:
            os_timer_set(ctx, *slot(), os_clock_now(ctx) + (uint64_t)byte() * 1000);
            break;
        case 6:
            os_timer_cancel(ctx, *slot());
            break;
        case 7: { /* spawn a child with up to two handles */
            size_t nh = byte() % 3;
            for (size_t i = 0; i < nh; i++)
                hs[i] = *slot();
            os_spawn_args_t sa = {.program = byte() & 1 ? "fzc" : "nope",
                                  .handles = hs,
                                  .nhandles = nh,
                                  .privileged = byte() == 7};
            if (os_spawn(ctx, &sa, &a) == 0) {
                for (size_t i = 0; i < nh; i++)
                    for (int k = 0; k < POOL; k++)
                        if (Z.pool[k] == hs[i])
                            Z.pool[k] = OS_HANDLE_NONE;
                put(a);
            }
            break;
        }
        case 8:
            os_task_kill(ctx, *slot());
            break;
        case 9: {
            os_handle_t *h = slot();
            if (os_handle_replace(ctx, *h, byte() & 0xf, &a) == 0)
                *h = a;
            break;
        }
        case 10: {
            os_task_info_t ti[4];
            os_chan_info_t ci[4];
            os_task_list(ctx, ti, byte() % 5);
            os_chan_list(ctx, ci, byte() % 5);
            break;
        }
        case 11:
            os_random(ctx, data, byte() % sizeof data);
            break;
        case 12:
            *slot() = (os_handle_t)(byte() | (byte() << 8)); /* a forged handle value */
            break;
        case 13: {
            os_handle_t dev;
            if (os_device_open(ctx, byte() & 1 ? "console" : "disk", &dev) == 0) {
                os_device_write(ctx, dev, 16, "x", 1);
                put(dev);
            }
            break;
        }
        default:
            break;
        }
    }
}

static void fz_start(os_ctx_t *ctx)
{
    os_timer_create(ctx, &Z.tick);
    os_timer_set(ctx, Z.tick, 0);
}

static void fz_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_TIMER && ev->handle == Z.tick) {
        run_slice(ctx);
        char err[160];
        if (k_audit(NULL, 0, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_kernel: audit: %s\n", err);
            abort();
        }
        if (Z.n)
            os_timer_set(ctx, Z.tick, os_clock_now(ctx) + 1000);
        else
            os_shutdown(ctx, 0);
    }
    for (size_t i = 0; i < ev->nhandles; i++)
        put(ev->handles[i]);
}

/* A child obeys the first byte of each message it gets. */
static void fzc_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind != OS_EV_MESSAGE)
        return;
    uint8_t what = ev->len ? ((const uint8_t *)ev->data)[0] : 0;
    switch (what % 6) {
    case 0:
        os_send(ctx, ev->handle, ev->type, ev->data, ev->len, ev->handles, ev->nhandles);
        break;
    case 1:
        os_handle_close(ctx, ev->handle);
        break;
    case 2:
        os_exit(ctx, 3);
    case 3:
        os_panic(ctx, "asked to");
    case 4: {
        os_handle_t t;
        if (os_timer_create(ctx, &t) == 0)
            os_timer_set(ctx, t, 0);
        break;
    }
    default:
        break;
    }
}

static const os_program_t fz = {"fz", 0, fz_start, fz_event};
static const os_program_t fzc = {"fzc", 0, NULL, fzc_event};
static const os_program_t *const programs[] = {&fz, &fzc, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&Z, 0, sizeof Z);
    Z.p = data;
    Z.n = size;
    sim_config_t cfg = {.programs = programs, .init_program = "fz", .seed = size};
    if (sim_boot(&cfg) != 0)
        abort();
    /* Every other input also runs with delayed deliveries and timer jitter. */
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = size % 2 ? SIM_FAULT_DELAY | SIM_FAULT_JITTER : 0;
    sim_faults_install(&f);
    sim_run(200000);
    sim_faults_remove();
    long leaks = sim_teardown();
    if (leaks != 0) {
        fprintf(stderr, "fuzz_kernel: %ld allocations leaked\n", leaks);
        abort();
    }
    return 0;
}
