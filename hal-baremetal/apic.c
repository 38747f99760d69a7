/* apic.c — interrupt controllers: the legacy PIC remapped and masked, the LAPIC, the IOAPIC. */
#include <bm/bm.h>
#include <bm/x86.h>

/*
 * Both machines have a LAPIC (xAPIC mode at 0xfee00000) and an IOAPIC at
 * 0xfec00000 whose pins 0-15 are the ISA IRQs (COM1 = 4). q35 also has the
 * 8259 PIC, microvm only with pic=on: we remap it out of the exception
 * vectors and mask it, which is harmless when it is absent.
 */
enum {
    LAPIC_ID = 0x20,
    LAPIC_TPR = 0x80,
    LAPIC_EOI = 0xB0,
    LAPIC_SVR = 0xF0,
    LAPIC_LVT_TIMER = 0x320,
    LAPIC_TIMER_INIT = 0x380,
    LAPIC_TIMER_CUR = 0x390,
    LAPIC_TIMER_DIV = 0x3E0,
    IOAPIC_BASE = 0xFEC00000,  /* GSIs 0-23 */
    IOAPIC2_BASE = 0xFEC10000, /* GSIs 24-47: microvm's second IOAPIC (virtio-mmio lines) */
};

static uintptr_t lapic;
static uint32_t lapic_id;

static uint32_t lapic_read(uint32_t reg)
{
    return mmio_read32(lapic + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(lapic + reg, v);
}

static uint32_t ioapic_read_at(uintptr_t base, uint32_t reg)
{
    mmio_write32(base, reg);
    return mmio_read32(base + 0x10);
}

static void ioapic_write_at(uintptr_t base, uint32_t reg, uint32_t v)
{
    mmio_write32(base, reg);
    mmio_write32(base + 0x10, v);
}

static uint32_t ioapic_read(uint32_t reg)
{
    return ioapic_read_at(IOAPIC_BASE, reg);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
    ioapic_write_at(IOAPIC_BASE, reg, v);
}

static void pic_disable(void)
{
    outb(0x20, 0x11); /* ICW1: init, ICW4 follows */
    outb(0xA0, 0x11);
    outb(0x21, BM_VEC_PIC_BASE);
    outb(0xA1, BM_VEC_PIC_BASE + 8);
    outb(0x21, 4);
    outb(0xA1, 2);
    outb(0x21, 1);
    outb(0xA1, 1);
    outb(0x21, 0xff); /* mask everything */
    outb(0xA1, 0xff);
}

void bm_apic_init(void)
{
    uint64_t base = rdmsr(0x1B);
    int pins;

    pic_disable();
    wrmsr(0x1B, base | (1u << 11)); /* xAPIC enabled */
    lapic = (uintptr_t)(base & 0xFFFFF000u);
    lapic_id = lapic_read(LAPIC_ID) >> 24;
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | BM_VEC_SPURIOUS);
    lapic_write(LAPIC_TIMER_DIV, 0x3);                       /* divide by 16 */
    lapic_write(LAPIC_LVT_TIMER, (1u << 16) | BM_VEC_TIMER); /* masked, one-shot */
    pins = (int)((ioapic_read(1) >> 16) & 0xff) + 1;
    for (int i = 0; i < pins; i++) {
        ioapic_write(0x10 + 2 * i, 1u << 16); /* masked */
        ioapic_write(0x11 + 2 * i, 0);
    }
}

void bm_apic_eoi(void)
{
    lapic_write(LAPIC_EOI, 0);
}

void bm_ioapic_route(int gsi, int vector, bool level)
{
    uint32_t lo = (uint32_t)vector | (level ? (1u << 15) | (1u << 13) : 0);
    uintptr_t base = gsi < 24 ? IOAPIC_BASE : IOAPIC2_BASE;
    int pin = gsi < 24 ? gsi : gsi - 24;

    ioapic_write_at(base, 0x11 + 2 * (uint32_t)pin, lapic_id << 24);
    ioapic_write_at(base, 0x10 + 2 * (uint32_t)pin, lo);
}

uint32_t bm_lapic_id(void)
{
    return lapic_id;
}

int bm_vector_alloc(void)
{
    static int next = BM_VEC_DEVICE;

    return next < BM_VEC_SPURIOUS ? next++ : -1;
}

void bm_lapic_timer_oneshot(uint32_t count)
{
    lapic_write(LAPIC_LVT_TIMER, BM_VEC_TIMER); /* unmasked, one-shot */
    lapic_write(LAPIC_TIMER_INIT, count);
}

uint32_t bm_lapic_timer_current(void)
{
    return lapic_read(LAPIC_TIMER_CUR);
}

void bm_lapic_timer_mask(void)
{
    lapic_write(LAPIC_LVT_TIMER, (1u << 16) | BM_VEC_TIMER);
}
