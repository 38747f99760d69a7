/* fuzz_kernel.c — libFuzzer target for kernel syscall sequences, interpreted by a task on sim. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <k/audit.h>
#include <k/fault.h>
#include <k/kernel.h>
#include <sim/faults.h>
#include <sim/sim.h>

#include "fz_input.h"

/*
 * The input is a syscall script. Task "fz" (privileged, task 1) runs it from
 * its on_event: each timer event executes ops until a `yield` op, then re-arms
 * the timer, so other tasks run (and events arrive) between slices. Its
 * children "fzc" obey the messages they receive (reply, close, exit, panic,
 * send back handles; a message is sent back at most (byte 1 & 15) times, so two
 * children holding both ends of a channel stop). Handles live in a pool of 16 slots; ops pick slots by
 * index, so stale and wrong-type handles are exercised too.
 * Invariants: the kernel audit holds after every slice; once the harness has
 * killed every task the input made, the kernel holds exactly what it held
 * before the input (tasks, endpoints, allocations); every boot ends in a clean
 * teardown with no leaked allocation. A child's panic is on purpose (op), so
 * panics are not failures here, but a crash or sanitizer report is.
 *
 * Persistent mode (docs/fuzzing.md): one kernel is booted with a root task
 * "fzroot"; per input the root spawns a fresh privileged "fz", the script
 * runs, the harness kills fz and every task it made, runs to idle and checks
 * the baseline. The kernel is rebooted every REBOOT_EVERY inputs. Given files
 * on the command line (a reproducer run), every input gets a fresh boot.
 */
enum { POOL = 16 };

static struct {
    const uint8_t *p;
    size_t n;
    os_handle_t pool[POOL];
    os_handle_t tick;
    bool done; /* the script ran out: fz stops re-arming its tick */
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

/*
 * The audit after every slice is k_audit_quick (the object list, not every handle slot);
 * the full k_audit runs through a whole input every FULL_EVERY inputs, on every input of a
 * reproducer run, and at every reboot.
 */
enum { FULL_EVERY = 16 };
static bool full_audit;

static int audit(k_audit_task_t *ts, size_t max, size_t *n, char *err, size_t errlen)
{
    return full_audit ? k_audit(ts, max, n, err, errlen) : k_audit_quick(ts, max, n, err, errlen);
}

static void fz_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_TIMER && ev->handle == Z.tick && !Z.done) {
        run_slice(ctx);
        char err[160];
        if (audit(NULL, 0, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_kernel: audit: %s\n", err);
            abort();
        }
        if (Z.n)
            os_timer_set(ctx, Z.tick, os_clock_now(ctx) + 1000);
        else
            Z.done = true;
    }
    for (size_t i = 0; i < ev->nhandles; i++)
        put(ev->handles[i]);
}

/* A child obeys the first byte of each message it gets. */
static void fzc_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind != OS_EV_MESSAGE)
        return;
    const uint8_t *d = ev->data;
    uint8_t what = ev->len ? d[0] : 0;
    switch (what % 6) {
    case 0: { /* send it back, one hop fewer (byte 1): two children cannot ping-pong forever */
        uint8_t back[OS_MSG_MAX_DATA];
        if (ev->len < 2 || (d[1] & 15) == 0)
            break;
        memcpy(back, d, ev->len);
        back[1] = (uint8_t)((d[1] & 15) - 1);
        os_send(ctx, ev->handle, ev->type, back, ev->len, ev->handles, ev->nhandles);
        break;
    }
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

/* The root: task 1, privileged, does nothing itself; the harness spawns fz from it. */
static os_ctx_t *root;
static bool prefill_pool; /* chosen by the input that boots (its size), so a reproducer boots alike */
static void root_start(os_ctx_t *ctx)
{
    os_handle_t t;
    root = ctx;
    /* Arm and drop a timer once: the kernel's timer heap, allocated on first use, is then
     * part of the baseline rather than counted against the first input. */
    if (os_timer_create(ctx, &t) == 0) {
        os_timer_set(ctx, t, UINT64_MAX - 1);
        os_handle_close(ctx, t);
    }
    /* One boot in eight (prefill_pool) fills the kernel's pool of spare message buffers to
     * its bound (256): its inputs run with the pool full, so a freed message goes back to the
     * heap (k_msg_free's other branch). Not every boot: each audit walks the whole pool, a
     * page a buffer, and with it full that was 12% of the time. */
    if (prefill_pool) {
        os_handle_t a[3], b[3];
        for (int i = 0; i < 3; i++) {
            if (os_channel_create(ctx, &a[i], &b[i]) != 0)
                continue;
            for (int k = 0; k < OS_CHAN_QUEUE_MAX; k++)
                os_send(ctx, a[i], 0, NULL, 0, NULL, 0);
        }
        for (int i = 0; i < 3; i++) {
            os_handle_close(ctx, a[i]);
            os_handle_close(ctx, b[i]);
        }
    }
}
static void root_event(os_ctx_t *ctx, const os_event_t *ev)
{
    for (size_t i = 0; i < ev->nhandles; i++)
        os_handle_close(ctx, ev->handles[i]);
}

static const os_program_t fzroot = {"fzroot", 0, root_start, root_event};
static const os_program_t fz = {"fz", 0, fz_start, fz_event};
static const os_program_t fzc = {"fzc", 0, NULL, fzc_event};
static const os_program_t *const programs[] = {&fzroot, &fz, &fzc, NULL};

enum { REBOOT_EVERY = 500, MAX_EVENTS = 200000 };

static struct {
    bool booted, fresh_each;
    unsigned inputs;   /* since boot */
    k_stats_t base;    /* the kernel with only the root, idle */
} H;

static void die(const char *what, long a, long b)
{
    fprintf(stderr, "fuzz_kernel: %s (%ld, %ld)\n", what, a, b);
    abort();
}

static void boot(size_t size)
{
    prefill_pool = (size & 14) == 14;
    sim_config_t cfg = {.programs = programs, .init_program = "fzroot", .seed = 1};
    if (sim_boot(&cfg) != 0)
        die("boot failed", 0, 0);
    sim_run_until_idle();
    if (!root)
        die("root did not start", 0, 0);
    k_get_stats(&H.base);
    H.booted = true;
    H.inputs = 0;
}

static void shutdown_kernel(void)
{
    char err[160];
    if (k_audit(NULL, 0, NULL, err, sizeof err) != 0)
        die(err, 0, 0);
    long leaks = sim_teardown();
    if (leaks != 0)
        die("allocations leaked at teardown", leaks, 0);
    root = NULL;
    H.booted = false;
}

/* Kill every task but the root (children first would not matter: a kill is a kill). */
static void kill_all_but_root(void)
{
    for (int round = 0; round < 8; round++) {
        k_audit_task_t ts[64];
        size_t n = 0;
        char err[160];
        if (audit(ts, 64, &n, err, sizeof err) != 0)
            die(err, 0, 0);
        if (n == 1)
            return;
        for (size_t i = 0; i < n && i < 64; i++)
            if (ts[i].id != 1)
                k_fault_kill(ts[i].id, -129);
        sim_run_until_idle();
    }
    die("tasks survive being killed", 0, 0);
}

/* A reproducer run (a file given on the command line) boots afresh for every input. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    H.fresh_each = fz_fresh_each(*argc, *argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!H.booted)
        boot(size);
    memset(&Z, 0, sizeof Z);
    full_audit = H.fresh_each || H.inputs % FULL_EVERY == FULL_EVERY - 1;
    Z.p = data;
    Z.n = size;
    /* Every other input also runs with delayed deliveries and timer jitter. */
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = size % 2 ? SIM_FAULT_DELAY | SIM_FAULT_JITTER : 0;
    sim_faults_install(&f);
    os_handle_t h;
    os_spawn_args_t sa = {.program = "fz", .privileged = true};
    if (os_spawn(root, &sa, &h) != 0)
        die("spawn fz failed", 0, 0);
    for (uint64_t ev = 0; !Z.done && ev < MAX_EVENTS && sim_step(); ev++)
        ;
    sim_faults_remove();
    kill_all_but_root();
    os_handle_close(root, h);
    sim_run_until_idle();
    k_stats_t st;
    k_get_stats(&st);
    if (st.tasks != H.base.tasks)
        die("tasks outlive being killed", st.tasks, H.base.tasks);
    /* Endpoints can outlive every task: carried in messages queued in a cycle (an end sent
     * through its own channel, or two channels carrying each other's ends), they stay
     * reachable only from each other until teardown frees them. Not a failure here, but
     * the state is no longer the baseline: reboot, and teardown checks for leaks. */
    /* The kernel's spare message buffers (up to 256, kept for reuse) are counted apart: how
     * many an input leaves there is its own, and the audit checks the list against its count
     * (the pool is full only after the boots that fill it, root_start). */
    bool dirty = st.channels != H.base.channels ||
                 st.allocations - st.spare_messages != H.base.allocations - H.base.spare_messages;
    if (dirty || H.fresh_each || ++H.inputs >= REBOOT_EVERY)
        shutdown_kernel();
    return 0;
}
