/* main.c — the image's C entry: bring up the machine, boot the kernel, run the one-CPU event loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hal/clock.h>
#include <hal/cpu.h>
#include <hal/entropy.h>
#include <k/kernel.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

#include "image_select.h"

/*
 * One CPU, one worker (0). The loop runs ready tasks; between events it turns
 * timer interrupts into k_timer_tick() and received bytes into console lines.
 * When nothing is ready it halts until an interrupt (`sti; hlt` with no gap,
 * so a wake-up cannot slip between the check and the halt).
 *
 * Boot line: "ready" is the first time the loop finds nothing to run after
 * k_boot: every server of the manifest has started and handled all it had
 * (the shell has written its prompt). Console output made during boot is held
 * in memory and written after the boot line, so the line comes before the
 * prompt and the figure does not include the serial transmission. Console
 * input is not read before ready: input already waiting would otherwise keep
 * the system busy past its boot.
 */
static volatile bool shutdown_called;

static _Noreturn void finish(int status);

void bm_main(uint32_t start_info);

void hal_cpu_relax(void)
{
    cpu_pause();
}

void hal_cpu_yield(void)
{
}

void hal_cpu_wake(int worker)
{
    /* One CPU: the worker is the loop below, which runs again before it halts. */
}

void hal_shutdown(int status)
{
    shutdown_called = true; /* the loop exits after the current event */
}

static const char *manifest(size_t *len)
{
    uint16_t sel;
    long n = bm_fwcfg_find("opt/orrery/manifest", &sel);
    char *text;

    if (n > OS_BOOT_ARG_MAX) {
        /* `orrery qemu --manifest` checks first; a bigger file given to QEMU by hand ends here */
        bm_printf("[bm] manifest from fw_cfg is %ld bytes, over the limit of %d; shutting down "
                  "with status %d\n",
                  n, OS_BOOT_ARG_MAX, OS_EXIT_BAD_MANIFEST);
        finish(OS_EXIT_BAD_MANIFEST);
    }
    if (n < 0 || !(text = malloc((size_t)n + 1))) {
        *len = strlen(bm_default_manifest);
        return bm_default_manifest;
    }
    bm_fwcfg_read(sel, text, (size_t)n);
    text[n] = '\0';
    *len = (size_t)n;
    if (bm_boot.verbose)
        bm_printf("[bm] manifest from fw_cfg (%ld bytes)\n", n);
    return text;
}

/*
 * `--append costs`: what the basic operations cost on this host (a slow nested
 * /dev/kvm shows up here: rdtsc and RDRAND trapping, stores to RAM far slower than TCG's).
 */
static void report_costs(void)
{
    uint64_t t0, t1, t2, t3, t4, sum = 0;
    uint8_t rb[8];
    volatile char *mem = malloc(1 << 20);

    if (!mem)
        return;
    t0 = rdtsc();
    for (int i = 0; i < 1000; i++)
        sum += rdtsc();
    t1 = rdtsc();
    for (int i = 0; i < 100; i++)
        hal_entropy_fill(rb, sizeof(rb));
    t2 = rdtsc();
    for (int i = 0; i < (1 << 20); i += 4096)
        mem[i] = 1;
    t3 = rdtsc();
    for (int i = 0; i < (1 << 20); i += 64)
        mem[i] = 2;
    t4 = rdtsc();
    bm_printf("[bm] costs: rdtsc %lu ns, 8 random bytes %lu ns, first store to a page %lu ns, "
              "store to a cache line %lu ns%s\n",
              (unsigned long)(bm_tsc_to_ns(t1 - t0) / 1000),
              (unsigned long)(bm_tsc_to_ns(t2 - t1) / 100),
              (unsigned long)(bm_tsc_to_ns(t3 - t2) / 256),
              (unsigned long)(bm_tsc_to_ns(t4 - t3) / 16384), sum ? "" : " ");
    free((void *)mem);
}

static void boot_line(void)
{
    uint64_t ns = hal_clock_now_ns();
    char line[200];
    int n =
        snprintf(line, sizeof(line),
                 "[boot] ready in %lu us (entry to first idle; tsc %lu MHz from %s; entropy %s)\n",
                 (unsigned long)(ns / 1000), (unsigned long)(bm_tsc_hz() / 1000000),
                 bm_tsc_source(), bm_entropy_source());

    bm_serial_write_now(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
    bm_console_hold(false);
}

static int __attribute__((noinline)) recurse(int depth)
{
    volatile char pad[512];

    pad[0] = (char)depth;
    if (depth > (1 << 20))
        return 0; /* never reached: the 64 KiB stack ends long before */
    return recurse(depth + 1) + pad[0];
}

static _Noreturn void finish(int status)
{
    irq_disable();
    if (bm_boot.verbose)
        bm_virtio_net_report();
    if (bm_boot.verbose)
        bm_virtio_blk_report();
    bm_trace_finish();
    bm_console_hold(false);
    bm_exit(status);
}

void bm_main(uint32_t start_info)
{
    size_t mlen;
    const char *mtext;
    int rc, status;
    bool ready = false;

    /* TSC after each step, for `--append verbose` (converted once the clock is known). */
    uint64_t t[8];
    t[0] = rdtsc();
    bm_serial_init();
    bm_console_hold(true);
    bm_cpu_init();
    bm_boot_parse(start_info);
    if (bm_cmdline_has("probe"))
        bm_exit(0); /* `orrery qemu`'s accelerator probe: the vCPU is up and runs our code */
    t[1] = rdtsc();
    bm_mem_init();
    t[2] = rdtsc();
    bm_apic_init();
    t[3] = rdtsc();
    bm_clock_init();
    bm_clock_start();
    t[4] = rdtsc();
    bm_virtio_probe();
    t[5] = rdtsc();
    bm_entropy_init();
    t[6] = rdtsc();
    if (bm_cmdline_has("costs"))
        report_costs();
    if (bm_boot.verbose) {
        bm_printf("[bm] command line: %s\n", bm_boot.cmdline);
        bm_mem_describe();
        bm_printf("[bm] platform up at %lu us: entry.S %lu, cpu+boot info %lu, memory %lu, "
                  "apic %lu, clock %lu, virtio %lu, entropy %lu us\n",
                  (unsigned long)(hal_clock_now_ns() / 1000),
                  (unsigned long)(bm_tsc_to_ns(t[0] - bm_tsc_entry) / 1000),
                  (unsigned long)(bm_tsc_to_ns(t[1] - t[0]) / 1000),
                  (unsigned long)(bm_tsc_to_ns(t[2] - t[1]) / 1000),
                  (unsigned long)(bm_tsc_to_ns(t[3] - t[2]) / 1000),
                  (unsigned long)(bm_tsc_to_ns(t[4] - t[3]) / 1000),
                  (unsigned long)(bm_tsc_to_ns(t[5] - t[4]) / 1000),
                  (unsigned long)(bm_tsc_to_ns(t[6] - t[5]) / 1000));
    }
    if (bm_console_register() < 0)
        bm_panic("cannot register the console device");
    bm_virtio_net_init(); /* "net0" only when a virtio-net device is there */
    bm_virtio_blk_init(); /* "blk0" only when a virtio-blk device is there */
    mtext = manifest(&mlen);
    k_config_t cfg = {
        .programs = bm_programs,
        .init_program = "init",
        .init_arg = mtext,
        .init_arg_len = mlen,
        .workers = 1,
        .trace = bm_trace_init(),
    };
    rc = k_boot(&cfg);
    if (rc != 0)
        bm_panic("k_boot failed: %d", rc);
    if (bm_boot.verbose)
        bm_printf("[bm] k_boot done at %lu us\n", (unsigned long)(hal_clock_now_ns() / 1000));
    bm_kernel_running = true;
    bm_serial_start_irq();
    irq_enable();
    bm_virtio_net_start(); /* HAL_NET_LINK_UP, queued until tcpip opens net0 */
    if (bm_cmdline_has("rngtest"))
        bm_virtio_rng_selftest(); /* interrupts on: it counts the device's */
    if (bm_cmdline_has("blktest"))
        bm_virtio_blk_selftest(); /* before blk0's first post: completions go to the test */
    bm_virtio_blk_start();        /* HAL_BLK_INFO, queued until a task opens blk0 */

    for (;;) {
        if (shutdown_called && k_shutdown_requested(&status))
            finish(status);
        if (bm_timer_due) {
            bm_timer_due = false;
            k_timer_tick();
        }
        if (ready) {
            bm_serial_poll();     /* input waits until boot is over (it would delay "ready") */
            bm_virtio_net_poll(); /* frames too */
            bm_virtio_blk_poll();
        }
        if (k_run_one(0))
            continue;
        if (!ready) {
            ready = true;
            boot_line();
            if (bm_cmdline_has("kernelfault")) /* for the tests: a fault outside any task */
                *(volatile int *)0 = 1;
            if (bm_cmdline_has("stackoverflow")) /* for the tests: run into the guard page */
                recurse(0);
        }
        bm_trace_virtio_idle(); /* records made before idling leave the machine now */
        irq_disable();
        if (bm_timer_due ||
            (ready &&
             (bm_serial_pending() || bm_virtio_net_pending() || bm_virtio_blk_pending())) ||
            shutdown_called)
            irq_enable();
        else
            __asm__ volatile("sti; hlt" ::: "memory");
    }
}
