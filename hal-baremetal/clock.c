/* clock.c — the kernel clock (calibrated TSC) and the kernel timer (LAPIC one-shot). */
#include <string.h>

#include <hal/clock.h>

#include <bm/bm.h>
#include <bm/x86.h>

/*
 * TSC frequency, first source that answers:
 *   1. CPUID 0x40000010 (hypervisor timing leaf): TSC kHz;
 *   2. kvmclock (KVM): the pvclock multiplier gives ticks -> ns exactly;
 *   3. CPUID 0x15 with a crystal frequency (recent Intel, some hypervisors);
 *   4. the PIT: TSC ticks over 0.5 ms of PIT channel 2, best of 3 (TCG on q35);
 *   5. the LAPIC timer, taken to run at 1 GHz like QEMU's (TCG on microvm).
 * The LAPIC timer (divide by 16) is then calibrated against the TSC over 100 us.
 * hal_clock_now_ns() is nanoseconds since the first instruction of entry.S.
 */
static uint64_t tsc_hz;
static uint64_t ns_mult;  /* ns = ticks * ns_mult >> 32 */
static uint64_t lapic_hz; /* timer ticks per second after the divider */
static const char *source = "none";
volatile bool bm_timer_due;

static uint64_t from_hypervisor_leaf(void)
{
    uint32_t r[4];

    cpuid(0x40000000, 0, r);
    if (r[0] < 0x40000010 || r[0] > 0x400000ff)
        return 0;
    cpuid(0x40000010, 0, r);
    return (uint64_t)r[0] * 1000;
}

typedef struct pvclock {
    uint32_t version;
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
} pvclock_t;

static uint64_t from_kvmclock(void)
{
    static volatile pvclock_t pv __attribute__((aligned(64)));
    uint32_t r[4], msr;
    uint32_t mul, version;
    int8_t shift;
    uint64_t hz;

    cpuid(0x40000000, 0, r);
    if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d) /* "KVMKVMKVM\0\0\0" */
        return 0;
    cpuid(0x40000001, 0, r);
    if (r[0] & (1u << 3))
        msr = 0x4b564d01; /* MSR_KVM_SYSTEM_TIME_NEW */
    else if (r[0] & 1u)
        msr = 0x12; /* MSR_KVM_SYSTEM_TIME */
    else
        return 0;
    wrmsr(msr, (uint64_t)(uintptr_t)&pv | 1);
    do {
        version = pv.version;
        barrier();
        mul = pv.tsc_to_system_mul;
        shift = pv.tsc_shift;
        barrier();
    } while ((version & 1) || version != pv.version);
    wrmsr(msr, 0); /* stop the host writing into our memory */
    if (mul == 0)
        return 0;
    hz = (1000000000ull << 32) / mul;
    return shift >= 0 ? hz >> shift : hz << -shift;
}

static uint64_t from_cpuid_15(void)
{
    uint32_t r[4];

    cpuid(0, 0, r);
    if (r[0] < 0x15)
        return 0;
    cpuid(0x15, 0, r);
    if (r[0] == 0 || r[1] == 0 || r[2] == 0)
        return 0;
    return (uint64_t)r[2] * r[1] / r[0];
}

/* One window of `count` PIT ticks (channel 2, mode 0, gated by port 0x61); TSC ticks or 0. */
static uint64_t pit_window(uint32_t count)
{
    uint64_t t0, t1;
    uint32_t spins = 0;

    outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01)); /* gate channel 2 on, speaker off */
    outb(0x43, 0xB0);                                  /* channel 2, lo/hi, mode 0 */
    outb(0x42, (uint8_t)count);
    outb(0x42, (uint8_t)(count >> 8));
    t0 = rdtsc();
    while (!(inb(0x61) & 0x20)) {
        if (++spins > 100000000)
            return 0;
    }
    t1 = rdtsc();
    if (spins < 10)
        return 0; /* no PIT: the port read back all ones at once */
    return t1 - t0;
}

/*
 * The shortest of three 0.5 ms windows: a window can only come out too long
 * (the vCPU thread preempted on a busy host), never too short.
 */
static uint64_t from_pit(void)
{
    const uint32_t pit_hz = 1193182, count = pit_hz / 2000; /* 0.5 ms */
    uint64_t best = 0;

    for (int i = 0; i < 3; i++) {
        uint64_t t = pit_window(count);
        if (t == 0)
            return 0;
        if (best == 0 || t < best)
            best = t;
    }
    if (bm_cmdline_has("clockdebug"))
        bm_printf("[bm] pit: %lu tsc ticks per %u pit ticks\n", (unsigned long)best, count);
    return best * pit_hz / count;
}

/*
 * No PIT (microvm under TCG has none by default): count TSC ticks over 0.5 ms
 * of the LAPIC timer, taking its clock to be 1 GHz as QEMU's and KVM's are.
 * The shortest of three windows, as for the PIT.
 */
static uint64_t from_lapic_assumed(void)
{
    const uint32_t ticks = 31250; /* 0.5 ms at 1 GHz / 16 */
    uint64_t best = 0;

    for (int i = 0; i < 3; i++) {
        uint64_t t0, t1;
        bm_lapic_timer_mask();
        bm_lapic_timer_oneshot(0xFFFFFFFFu);
        bm_lapic_timer_mask();
        t0 = rdtsc();
        while (0xFFFFFFFFu - bm_lapic_timer_current() < ticks)
            cpu_pause();
        t1 = rdtsc();
        bm_lapic_timer_oneshot(0);
        bm_lapic_timer_mask();
        if (best == 0 || t1 - t0 < best)
            best = t1 - t0;
    }
    lapic_hz = 62500000;
    return best * 2000;
}

static void calibrate_lapic(void)
{
    uint64_t t0 = rdtsc(), wait = tsc_hz / 10000; /* 100 us */
    uint32_t left;

    bm_lapic_timer_mask();
    bm_lapic_timer_oneshot(0xFFFFFFFFu);
    bm_lapic_timer_mask();
    while (rdtsc() - t0 < wait)
        cpu_pause();
    left = bm_lapic_timer_current();
    bm_lapic_timer_oneshot(0);
    lapic_hz = (uint64_t)(0xFFFFFFFFu - left) * 10000;
    if (lapic_hz == 0)
        lapic_hz = 62500000; /* NEVER: QEMU's APIC bus is 1 GHz, /16 */
}

void bm_clock_init(void)
{
    if ((tsc_hz = from_hypervisor_leaf()) != 0)
        source = "cpuid 0x40000010";
    else if ((tsc_hz = from_kvmclock()) != 0)
        source = "kvmclock";
    else if ((tsc_hz = from_cpuid_15()) != 0)
        source = "cpuid 0x15";
    else if ((tsc_hz = from_pit()) != 0)
        source = "pit";
    else if ((tsc_hz = from_lapic_assumed()) != 0) {
        source = "lapic at 1 GHz";
        ns_mult = (1000000000ull << 32) / tsc_hz;
        return;
    } else {
        tsc_hz = 1000000000; /* NEVER */
        source = "guess";
    }
    ns_mult = (1000000000ull << 32) / tsc_hz;
    calibrate_lapic();
}

uint64_t bm_tsc_hz(void)
{
    return tsc_hz;
}

const char *bm_tsc_source(void)
{
    return source;
}

uint64_t bm_tsc_to_ns(uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * ns_mult) >> 32);
}

uint64_t hal_clock_now_ns(void)
{
    return bm_tsc_to_ns(rdtsc() - bm_tsc_entry);
}

/* Called by the kernel, possibly with its locks held: only program the LAPIC. */
void hal_timer_arm(uint64_t deadline_ns)
{
    uint64_t now, delta, count;

    if (deadline_ns == UINT64_MAX) {
        bm_lapic_timer_oneshot(0);
        return;
    }
    now = hal_clock_now_ns();
    if (deadline_ns <= now) {
        bm_timer_due = true;
        return;
    }
    delta = deadline_ns - now;
    if (delta > 10000000000ull)
        delta = 10000000000ull; /* fire early and re-arm: an early tick is harmless */
    count = delta * lapic_hz / 1000000000ull + 1;
    if (count > 0xFFFFFFFFu)
        count = 0xFFFFFFFFu;
    bm_lapic_timer_oneshot((uint32_t)count);
}

static void on_timer(void *self)
{
    bm_timer_due = true;
}

void bm_clock_start(void)
{
    bm_irq_set(BM_VEC_TIMER, on_timer, NULL);
}
