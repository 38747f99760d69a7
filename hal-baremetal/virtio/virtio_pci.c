/* virtio_pci.c — the virtio-pci modern transport (q35): config space by ports 0xcf8/0xcfc, vendor
 * capabilities. */
#include <stdio.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

/*
 * QEMU: -machine q35 -device virtio-rng-pci (-device virtio-net-pci,netdev=...). Devices on bus 0
 * with vendor 0x1af4 and device 0x1000-0x107f (0x1040 + type: modern; 0x1000-0x103f: transitional,
 * type from the subsystem id). The firmware (SeaBIOS) has assigned the BARs; we enable memory
 * decoding and bus mastering, then find the common, notify, ISR and device windows in the vendor
 * capabilities (virtio 1.x, 4.1.4). Only bus 0 is scanned: -device without a bus= lands there.
 */
enum {
    PCI_CAP_VENDOR = 0x09,
    PCI_CAP_MSIX = 0x11,
    CAP_COMMON = 1,
    CAP_NOTIFY = 2,
    CAP_ISR = 3,
    CAP_DEVICE = 4,
};

/* Common configuration (4.1.4.3). */
enum {
    C_DFSELECT = 0x00,
    C_DF = 0x04,
    C_GFSELECT = 0x08,
    C_GF = 0x0C,
    C_NUMQ = 0x12,
    C_STATUS = 0x14,
    C_QSELECT = 0x16,
    C_QSIZE = 0x18,
    C_QMSIX = 0x1A,
    C_QENABLE = 0x1C,
    C_QNOTIFYOFF = 0x1E,
    C_QDESC = 0x20,
    C_QDRIVER = 0x28,
    C_QDEVICE = 0x30,
};

static uint32_t cfg_read32(int bus, int dev, int fn, int off)
{
    outl(0xCF8, 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 |
                    (uint32_t)(off & 0xFC));
    return inl(0xCFC);
}

static void cfg_write32(int bus, int dev, int fn, int off, uint32_t v)
{
    outl(0xCF8, 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 |
                    (uint32_t)(off & 0xFC));
    outl(0xCFC, v);
}

static uint8_t cfg_read8(int bus, int dev, int fn, int off)
{
    return (uint8_t)(cfg_read32(bus, dev, fn, off) >> ((off & 3) * 8));
}

static uint64_t bar_address(int bus, int dev, int fn, int bar)
{
    uint32_t lo = cfg_read32(bus, dev, fn, 0x10 + 4 * bar);
    uint64_t addr;

    if (lo & 1)
        return 0; /* an I/O BAR: modern windows are memory */
    addr = lo & ~0xFu;
    if (((lo >> 1) & 3) == 2)
        addr |= (uint64_t)cfg_read32(bus, dev, fn, 0x10 + 4 * (bar + 1)) << 32;
    return addr;
}

static uint8_t p_get_status(vio_dev_t *d)
{
    return mmio_read8(d->common + C_STATUS);
}

static void p_set_status(vio_dev_t *d, uint8_t s)
{
    mmio_write8(d->common + C_STATUS, s);
}

static uint64_t p_get_features(vio_dev_t *d)
{
    uint64_t f;

    mmio_write32(d->common + C_DFSELECT, 0);
    f = mmio_read32(d->common + C_DF);
    mmio_write32(d->common + C_DFSELECT, 1);
    return f | (uint64_t)mmio_read32(d->common + C_DF) << 32;
}

static void p_set_features(vio_dev_t *d, uint64_t f)
{
    mmio_write32(d->common + C_GFSELECT, 0);
    mmio_write32(d->common + C_GF, (uint32_t)f);
    mmio_write32(d->common + C_GFSELECT, 1);
    mmio_write32(d->common + C_GF, (uint32_t)(f >> 32));
}

static uint16_t p_queue_max(vio_dev_t *d, uint16_t index)
{
    if (index >= mmio_read16(d->common + C_NUMQ))
        return 0;
    mmio_write16(d->common + C_QSELECT, index);
    return mmio_read16(d->common + C_QSIZE);
}

static int p_queue_enable(vio_dev_t *d, virtq_t *q)
{
    mmio_write16(d->common + C_QSELECT, q->index);
    mmio_write16(d->common + C_QSIZE, q->size);
    mmio_write16(d->common + C_QMSIX, d->vector ? 0 : 0xFFFF); /* MSI-X entry 0, or none */
    mmio_write_width(d->common + C_QDESC, 8, (uint64_t)(uintptr_t)q->desc);
    mmio_write_width(d->common + C_QDRIVER, 8, (uint64_t)(uintptr_t)q->avail);
    mmio_write_width(d->common + C_QDEVICE, 8, (uint64_t)(uintptr_t)q->used);
    q->notify = d->notify_base + (uintptr_t)mmio_read16(d->common + C_QNOTIFYOFF) * d->notify_mult;
    mmio_write16(d->common + C_QENABLE, 1);
    return 0;
}

static void p_notify(vio_dev_t *d, virtq_t *q)
{
    mmio_write16(q->notify, q->index);
}

static uint32_t p_isr_ack(vio_dev_t *d)
{
    return mmio_read8(d->isr); /* reading acknowledges */
}

static uint64_t p_config_read(vio_dev_t *d, uint32_t off, int width)
{
    return mmio_read_width(d->devcfg + off, width);
}

static void p_config_write(vio_dev_t *d, uint32_t off, int width, uint64_t v)
{
    mmio_write_width(d->devcfg + off, width, v);
}

/* MSI-X entry 0 -> vector on this CPU; queues (p_queue_enable) and configuration changes
 * name entry 0; the ISR register, read by the handler, tells them apart. */
static int p_irq_setup(vio_dev_t *d, int vector)
{
    uint32_t ctl;

    if (!d->msix_table)
        return -1; /* INTx would need ACPI's _PRT to find the line */
    mmio_write32(d->msix_table + 0, 0xFEE00000u | bm_lapic_id() << 12);
    mmio_write32(d->msix_table + 4, 0);
    mmio_write32(d->msix_table + 8, (uint32_t)vector);
    mmio_write32(d->msix_table + 12, 0); /* unmasked */
    ctl = cfg_read32(d->bus, d->slot, d->fn, d->msix_cap);
    ctl = (ctl | (1u << 31)) & ~(1u << 30); /* enable, function not masked */
    cfg_write32(d->bus, d->slot, d->fn, d->msix_cap, ctl);
    mmio_write16(d->common + 0x10, 0); /* config changes (net's link) on entry 0 too */
    return 0;
}

static const vio_ops_t pci_ops = {
    .name = "virtio-pci",
    .get_status = p_get_status,
    .set_status = p_set_status,
    .get_features = p_get_features,
    .set_features = p_set_features,
    .queue_max = p_queue_max,
    .queue_enable = p_queue_enable,
    .notify = p_notify,
    .isr_ack = p_isr_ack,
    .irq_setup = p_irq_setup,
    .config_read = p_config_read,
    .config_write = p_config_write,
};

static void probe_function(int bus, int dev, int fn, uint32_t id)
{
    uint16_t device = (uint16_t)(id >> 16);
    uint16_t type;
    vio_dev_t *d;
    uintptr_t win[5] = {0}, msix = 0;
    uint32_t mult = 0;
    int msix_cap = 0;

    if (device >= 0x1040)
        type = (uint16_t)(device - 0x1040);
    else
        type = (uint16_t)(cfg_read32(bus, dev, fn, 0x2C) >> 16); /* transitional: subsystem id */
    if (!(cfg_read32(bus, dev, fn, 0x04) & (1u << 20)))
        return; /* no capability list: legacy only */
    for (int cap = cfg_read8(bus, dev, fn, 0x34) & 0xFC, guard = 0; cap && guard < 48;
         cap = cfg_read8(bus, dev, fn, cap + 1) & 0xFC, guard++) {
        uint8_t kind;
        uint64_t base;
        uint32_t off, len;
        if (cfg_read8(bus, dev, fn, cap) == PCI_CAP_MSIX) {
            uint32_t t = cfg_read32(bus, dev, fn, cap + 4);
            uint64_t b = bar_address(bus, dev, fn, (int)(t & 7));
            if (b && (b < 0x100000000ull || bm_map_mmio(b + (t & ~7u), 16) == 0)) {
                msix = (uintptr_t)(b + (t & ~7u));
                msix_cap = cap;
            }
            continue;
        }
        if (cfg_read8(bus, dev, fn, cap) != PCI_CAP_VENDOR)
            continue;
        kind = cfg_read8(bus, dev, fn, cap + 3);
        if (kind < CAP_COMMON || kind > CAP_DEVICE || win[kind])
            continue;
        base = bar_address(bus, dev, fn, cfg_read8(bus, dev, fn, cap + 4));
        off = cfg_read32(bus, dev, fn, cap + 8);
        len = cfg_read32(bus, dev, fn, cap + 12);
        if (base == 0 || (base >= 0x100000000ull && bm_map_mmio(base + off, len) != 0))
            continue;
        win[kind] = (uintptr_t)(base + off);
        if (kind == CAP_NOTIFY)
            mult = cfg_read32(bus, dev, fn, cap + 16);
    }
    if (!win[CAP_COMMON] || !win[CAP_NOTIFY] || !win[CAP_ISR])
        return;
    /* Memory space and bus master on, INTx on. */
    cfg_write32(bus, dev, fn, 0x04, (cfg_read32(bus, dev, fn, 0x04) & 0xFFFF & ~(1u << 10)) | 0x6);
    d = vio_register(&pci_ops, type);
    if (!d)
        return;
    d->common = win[CAP_COMMON];
    d->notify_base = win[CAP_NOTIFY];
    d->isr = win[CAP_ISR];
    d->devcfg = win[CAP_DEVICE];
    d->notify_mult = mult;
    d->msix_table = msix;
    d->msix_cap = msix_cap;
    d->bus = (uint8_t)bus;
    d->slot = (uint8_t)dev;
    d->fn = (uint8_t)fn;
    d->gsi = -1; /* INTx routing needs ACPI's _PRT; drivers poll or use MSI-X (later) */
    snprintf(d->where, sizeof(d->where), "pci %02x:%02x.%x", bus, dev, fn);
}

bool bm_virtio_pci_probe(void)
{
    uint32_t host = cfg_read32(0, 0, 0, 0);

    if (host == 0xFFFFFFFFu || host == 0)
        return false; /* no PCI (microvm) */
    for (int dev = 0; dev < 32; dev++) {
        int nfn = 1;
        for (int fn = 0; fn < nfn; fn++) {
            uint32_t id = cfg_read32(0, dev, fn, 0);
            if ((id & 0xFFFF) == 0xFFFF)
                continue;
            if (fn == 0 && (cfg_read8(0, dev, 0, 0x0E) & 0x80))
                nfn = 8;
            if ((id & 0xFFFF) == 0x1AF4 && (id >> 16) >= 0x1000 && (id >> 16) <= 0x107F)
                probe_function(0, dev, fn, id);
        }
    }
    return true;
}
