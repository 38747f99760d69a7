/* virtio_mmio.c — the virtio-mmio transport (microvm): probe QEMU's fixed window of transports. */
#include <stdio.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

/*
 * QEMU: -machine microvm -device virtio-rng-device
 *       -netdev user,id=net0 -device virtio-net-device,netdev=net0
 *       -global virtio-mmio.force-legacy=false   (else QEMU offers version 1, legacy)
 * microvm places its virtio-mmio transports at 0xfeb00000 + 512 * i (its
 * VIRTIO_MMIO_BASE, include/hw/i386/microvm.h): 8 of them, 24 with the second
 * IOAPIC (ioapic2, the default in QEMU 7.2), and fills them from the last one
 * down (-device virtio-rng-device lands in slot 23, 0xfeb02e00). Probing the
 * window from the top for the "virt" magic and a non-zero device id, down to the
 * first empty transport (devices placed with an explicit bus= below a gap are
 * not found), finds them without parsing the virtio_mmio.device=512@0x...:irq
 * words QEMU may append to a Linux command line (it did not for this image).
 * Their interrupt lines: GSI 24 + i on the second IOAPIC (24 transports), else
 * 16 + i.
 */
enum {
    WINDOW = 0xFEB00000,
    SLOT = 512,
    R_MAGIC = 0x000,
    R_VERSION = 0x004,
    R_DEVICE_ID = 0x008,
    R_DEV_FEATURES = 0x010,
    R_DEV_FEATURES_SEL = 0x014,
    R_DRV_FEATURES = 0x020,
    R_DRV_FEATURES_SEL = 0x024,
    R_QUEUE_SEL = 0x030,
    R_QUEUE_NUM_MAX = 0x034,
    R_QUEUE_NUM = 0x038,
    R_QUEUE_READY = 0x044,
    R_QUEUE_NOTIFY = 0x050,
    R_INT_STATUS = 0x060,
    R_INT_ACK = 0x064,
    R_STATUS = 0x070,
    R_QUEUE_DESC = 0x080,
    R_QUEUE_DRIVER = 0x090,
    R_QUEUE_DEVICE = 0x0A0,
    R_CONFIG = 0x100,
};

static uint32_t rd(vio_dev_t *d, uint32_t r)
{
    return mmio_read32(d->base + r);
}

static void wr(vio_dev_t *d, uint32_t r, uint32_t v)
{
    mmio_write32(d->base + r, v);
}

static uint8_t m_get_status(vio_dev_t *d)
{
    return (uint8_t)rd(d, R_STATUS);
}

static void m_set_status(vio_dev_t *d, uint8_t s)
{
    wr(d, R_STATUS, s);
}

static uint64_t m_get_features(vio_dev_t *d)
{
    uint64_t f;

    wr(d, R_DEV_FEATURES_SEL, 0);
    f = rd(d, R_DEV_FEATURES);
    wr(d, R_DEV_FEATURES_SEL, 1);
    return f | (uint64_t)rd(d, R_DEV_FEATURES) << 32;
}

static void m_set_features(vio_dev_t *d, uint64_t f)
{
    wr(d, R_DRV_FEATURES_SEL, 0);
    wr(d, R_DRV_FEATURES, (uint32_t)f);
    wr(d, R_DRV_FEATURES_SEL, 1);
    wr(d, R_DRV_FEATURES, (uint32_t)(f >> 32));
}

static uint16_t m_queue_max(vio_dev_t *d, uint16_t index)
{
    wr(d, R_QUEUE_SEL, index);
    if (rd(d, R_QUEUE_READY))
        return 0;
    return (uint16_t)rd(d, R_QUEUE_NUM_MAX);
}

static void wr64(vio_dev_t *d, uint32_t r, uint64_t v)
{
    wr(d, r, (uint32_t)v);
    wr(d, r + 4, (uint32_t)(v >> 32));
}

static int m_queue_enable(vio_dev_t *d, virtq_t *q)
{
    wr(d, R_QUEUE_SEL, q->index);
    wr(d, R_QUEUE_NUM, q->size);
    wr64(d, R_QUEUE_DESC, (uint64_t)(uintptr_t)q->desc);
    wr64(d, R_QUEUE_DRIVER, (uint64_t)(uintptr_t)q->avail);
    wr64(d, R_QUEUE_DEVICE, (uint64_t)(uintptr_t)q->used);
    wr(d, R_QUEUE_READY, 1);
    q->notify = d->base + R_QUEUE_NOTIFY;
    return 0;
}

static void m_notify(vio_dev_t *d, virtq_t *q)
{
    mmio_write32(q->notify, q->index);
}

/*
 * QEMU holds the line high while any status bit is set, and we route it edge-triggered
 * (m_irq_setup): acknowledge until the status reads 0, so that a bit set meanwhile raises the
 * line again from low (a new edge) instead of keeping it high with no interrupt to come.
 */
static uint32_t m_isr_ack(vio_dev_t *d)
{
    uint32_t all = 0, s;

    while ((s = rd(d, R_INT_STATUS)) != 0) {
        wr(d, R_INT_ACK, s);
        all |= s;
    }
    return all;
}

static uint64_t m_config_read(vio_dev_t *d, uint32_t off, int width)
{
    return mmio_read_width(d->base + R_CONFIG + off, width);
}

static void m_config_write(vio_dev_t *d, uint32_t off, int width, uint64_t v)
{
    mmio_write_width(d->base + R_CONFIG + off, width, v);
}

static int m_irq_setup(vio_dev_t *d, int vector);

static const vio_ops_t mmio_ops = {
    .name = "virtio-mmio",
    .get_status = m_get_status,
    .set_status = m_set_status,
    .get_features = m_get_features,
    .set_features = m_set_features,
    .queue_max = m_queue_max,
    .queue_enable = m_queue_enable,
    .notify = m_notify,
    .isr_ack = m_isr_ack,
    .irq_setup = m_irq_setup,
    .config_read = m_config_read,
    .config_write = m_config_write,
};

static int m_irq_setup(vio_dev_t *d, int vector)
{
    if (d->gsi < 0)
        return -1;
    bm_ioapic_route(d->gsi, vector, false);
    return 0;
}

static bool legacy_warned;

void bm_virtio_mmio_probe(void)
{
    /* 24 transports: the second IOAPIC carries their lines, GSI 24 + i; 8: GSI 16 + i
     * (QEMU's virtio_irq_base with ACPI on, microvm's default). */
    bool ioapic2 = mmio_read32(WINDOW + 8 * SLOT + R_MAGIC) == 0x74726976;
    int irq_base = ioapic2 ? 24 : 16;

    int slots = ioapic2 ? 24 : 8;

    /* From the top down, stopping at the first empty transport: QEMU fills them in that
     * order, and each read is a VM exit. */
    for (int i = slots - 1; i >= 0; i--) {
        uintptr_t base = WINDOW + (uintptr_t)i * SLOT;
        uint32_t id;
        vio_dev_t *d;
        if (mmio_read32(base + R_MAGIC) != 0x74726976) /* "virt" */
            break;
        id = mmio_read32(base + R_DEVICE_ID);
        if (id == 0)
            break; /* an empty transport: the ones below are empty too */
        if (mmio_read32(base + R_VERSION) != 2) {
            if (!legacy_warned)
                bm_printf("[bm] virtio-mmio at %#lx is legacy (version 1): skipped; run QEMU "
                          "with -global virtio-mmio.force-legacy=false\n",
                          (unsigned long)base);
            legacy_warned = true;
            continue;
        }
        d = vio_register(&mmio_ops, (uint16_t)id);
        if (!d)
            return;
        d->base = base;
        d->gsi = irq_base + i;
        snprintf(d->where, sizeof(d->where), "mmio %#lx", (unsigned long)base);
    }
}
