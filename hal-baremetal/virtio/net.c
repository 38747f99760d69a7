/* net.c — the virtio network device (type 1) as the "net0" device: Ethernet frames in and out.
 */
#include <stdlib.h>
#include <string.h>

#include <hal/device.h>
#include <hal/entropy.h>
#include <hal/net.h>
#include <k/kernel.h>
#include <os/errno.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

/*
 * QEMU: q35:     -netdev user,id=net0 -device virtio-net-pci,netdev=net0
 *       microvm: -netdev user,id=net0 -device virtio-net-device,netdev=net0
 * (`orrery qemu --net user` passes these). The contract is hosted net0's
 * (hal/net.h, docs/networking.md): HAL_NET_LINK_UP with the 6-byte MAC once
 * the link is up, HAL_NET_FRAME both ways, one frame without FCS per write.
 *
 * Features: VERSION_1, MAC and, if offered, STATUS (link state); nothing
 * else, so each buffer carries the 12-byte virtio_net_hdr and then exactly
 * one frame (no merged buffers, no checksum or segmentation offload).
 *
 * Receive: queue 0 is kept full of RX_RING buffers of SLOT bytes (the header
 * plus the largest frame). The interrupt only wakes the run loop, which calls
 * bm_virtio_net_poll: each used buffer's frame is posted with k_post and the
 * buffer goes back at once. When the kernel's queue for net0 is full the frame
 * is held in its buffer and the ring is not drained further until the kernel
 * calls resume: the device then finds no buffers and QEMU queues what comes
 * next (its own queue drops past 10000 frames), so a burst is delayed, not cut.
 *
 * Transmit: queue 1, TX_RING slots; a write copies the frame behind a zeroed
 * header and notifies the device. Completed slots are reclaimed at the next
 * write, so transmit interrupts are turned off (VRING_AVAIL_F_NO_INTERRUPT).
 * No free slot after reclaiming: OS_EFULL, as a NIC's full transmit ring.
 *
 * Only the run loop touches the rings (writes come from tasks run by the
 * loop, one CPU); the interrupt handler sets a flag.
 */
enum {
    NET_F_MAC = 5,     /* the device has a MAC address in its config */
    NET_F_STATUS = 16, /* ... and a link status */
    NET_S_LINK_UP = 1,
    CFG_MAC = 0, /* config space: mac[6], then status (le16) */
    CFG_STATUS = 6,
    RXQ = 0,
    TXQ = 1,
    RX_RING = 128, /* the kernel's queue holds as many (OS_CHAN_QUEUE_MAX) */
    TX_RING = 256, /* QEMU's largest: it sends from a bottom half that may lag the vCPU */
    HDR = 12,      /* struct virtio_net_hdr with num_buffers (VERSION_1) */
    SLOT = 2048,   /* >= HDR + HAL_NET_MTU */
    AVAIL_F_NO_INTERRUPT = 1,
    ISR_CONFIG = 2, /* interrupt status: the configuration changed */
};
_Static_assert(HDR + HAL_NET_MTU <= SLOT, "a receive buffer holds a header and a frame");

static struct {
    vio_dev_t *dev;
    int kdev; /* k_device_add's number */
    virtq_t rx, tx;
    uint8_t *rxbuf, *txbuf;    /* RX_RING and TX_RING slots of SLOT bytes */
    uint8_t *tx_free[TX_RING]; /* slots not with the device */
    int ntx_free;
    uint8_t mac[6];
    bool has_status; /* STATUS negotiated: the link can go down */

    /* run loop */
    bool started;      /* bm_virtio_net_start ran: link changes are posted */
    bool link, told;   /* link state now; last state posted */
    bool told_any;     /* a link state was posted */
    uint8_t *held;     /* a received buffer k_post had no room for, else NULL */
    uint32_t held_len; /* its used length */
    bool blocked;      /* held: wait for resume before draining further */

    /* interrupt handler -> run loop */
    volatile bool irq;
    volatile uint32_t irqs;

    /* counters */
    uint64_t rx_frames, rx_bad, rx_held, tx_frames, tx_full;
} N;

static int net_write(void *self, uint32_t code, const void *buf, size_t len)
{
    uint8_t *slot;
    vq_buf_t b;

    if (code != HAL_NET_FRAME)
        return OS_EINVAL;
    if (len > HAL_NET_MTU)
        return OS_E2BIG;
    if (len == 0)
        return OS_EINVAL;
    while ((slot = virtq_next_used(&N.tx, NULL)) != NULL)
        N.tx_free[N.ntx_free++] = slot;
    if (N.ntx_free == 0) {
        N.tx_full++;
        return OS_EFULL;
    }
    slot = N.tx_free[--N.ntx_free];
    memset(slot, 0, HDR);
    memcpy(slot + HDR, buf, len);
    b = (vq_buf_t){slot, (uint32_t)(HDR + len)};
    if (virtq_add(&N.tx, &b, 1, 0, slot) != 0) { /* never: a free slot has a descriptor */
        N.tx_free[N.ntx_free++] = slot;
        return OS_EFULL;
    }
    virtq_kick(&N.tx);
    N.tx_frames++;
    return 0;
}

/* The kernel's queue drained after OS_EFULL: the run loop may post again (it runs next). */
static void net_resume(void *self)
{
    N.blocked = false;
}

static const hal_device_ops_t net_ops = {
    .name = "net0",
    .self = NULL,
    .write = net_write,
    .resume = net_resume,
};

static void on_irq(void *self)
{
    N.irqs++;
    N.irq = true;
}

static bool rx_give(uint8_t *slot)
{
    vq_buf_t b = {slot, SLOT};

    return virtq_add(&N.rx, &b, 0, 1, slot) == 0;
}

static bool link_now(void)
{
    if (!N.has_status)
        return true;
    return (N.dev->ops->config_read(N.dev, CFG_STATUS, 2) & NET_S_LINK_UP) != 0;
}

int bm_virtio_net_init(void)
{
    vio_dev_t *d = vio_find(VIO_ID_NET, 0);
    uint64_t got = 0;
    int kdev;

    if (!d)
        return -1; /* no device: no net0 */
    if (vio_begin(d, 1ull << NET_F_MAC | 1ull << NET_F_STATUS, &got) != 0) {
        bm_printf("[bm] virtio-net at %s: the device refused our features; no net0\n", d->where);
        return -1;
    }
    if (vio_irq_enable(d, on_irq, NULL) != 0 || vio_queue_setup(d, RXQ, &N.rx, RX_RING) != 0 ||
        vio_queue_setup(d, TXQ, &N.tx, TX_RING) != 0) {
        bm_printf("[bm] virtio-net at %s: no interrupt or queues; no net0\n", d->where);
        d->ops->set_status(d, VIO_S_FAILED);
        return -1;
    }
    /* The heap is identity-mapped like all RAM: a buffer's address is its physical address
     * (the 1 MiB DMA pool keeps to the rings). */
    N.rxbuf = malloc((size_t)N.rx.size * SLOT);
    N.txbuf = malloc((size_t)N.tx.size * SLOT);
    if (!N.rxbuf || !N.txbuf) {
        bm_printf("[bm] virtio-net at %s: no memory for buffers; no net0\n", d->where);
        d->ops->set_status(d, VIO_S_FAILED);
        return -1;
    }
    N.dev = d;
    N.has_status = (got & 1ull << NET_F_STATUS) != 0;
    if (got & 1ull << NET_F_MAC) {
        for (int i = 0; i < 6; i++)
            N.mac[i] = (uint8_t)d->ops->config_read(d, CFG_MAC + (uint32_t)i, 1);
    } else {
        /* No address from the device: a random one, locally administered and unicast. */
        hal_entropy_fill(N.mac, sizeof(N.mac));
        N.mac[0] = (uint8_t)((N.mac[0] & 0xFE) | 0x02);
    }
    for (uint16_t i = 0; i < N.rx.size; i++)
        rx_give(N.rxbuf + (size_t)i * SLOT);
    for (uint16_t i = 0; i < N.tx.size; i++)
        N.tx_free[N.ntx_free++] = N.txbuf + (size_t)i * SLOT;
    N.tx.avail->flags = AVAIL_F_NO_INTERRUPT; /* reclaimed on write */
    vio_driver_ok(d);
    virtq_kick(&N.rx);
    kdev = k_device_add(&net_ops);
    if (kdev < 0) {
        bm_printf("[bm] virtio-net at %s: cannot register net0 (%d)\n", d->where, kdev);
        d->ops->set_status(d, VIO_S_FAILED);
        N.dev = NULL;
        return -1;
    }
    N.kdev = kdev;
    if (bm_boot.verbose)
        bm_printf("[bm] net0: virtio-net at %s (%s), mac %02x:%02x:%02x:%02x:%02x:%02x, "
                  "link %s, rx ring %u, tx ring %u, vector %#x\n",
                  d->where, d->ops->name, N.mac[0], N.mac[1], N.mac[2], N.mac[3], N.mac[4],
                  N.mac[5],
                  !N.has_status ? "up (no status)"
                  : link_now()  ? "up"
                                : "down",
                  N.rx.size, N.tx.size, (unsigned)d->vector);
    return 0;
}

void bm_virtio_net_start(void)
{
    if (!N.dev)
        return;
    N.link = link_now();
    N.started = true;
    bm_virtio_net_poll(); /* posts the link state */
}

/* Post the link state if it changed since last told (a full queue: next turn). */
static void tell_link(void)
{
    int rc;

    if (N.told_any && N.told == N.link)
        return;
    if (!N.told_any && !N.link)
        return; /* down from the start: nothing to say until it comes up */
    if (N.link)
        rc = k_post(N.kdev, HAL_NET_LINK_UP, N.mac, sizeof(N.mac));
    else
        rc = k_post(N.kdev, HAL_NET_LINK_DOWN, NULL, 0);
    if (rc == 0) {
        if (bm_boot.verbose && N.told_any)
            bm_printf("[bm] net0: link %s\n", N.link ? "up" : "down");
        N.told = N.link;
        N.told_any = true;
    }
}

/* One received buffer: post its frame. False when the kernel had no room (the buffer is held). */
static bool rx_deliver(uint8_t *slot, uint32_t len)
{
    int rc = 0;

    if (len <= HDR || len - HDR > HAL_NET_MTU)
        N.rx_bad++; /* no frame, or one longer than the buffer could hold: dropped */
    else
        rc = k_post(N.kdev, HAL_NET_FRAME, slot + HDR, len - HDR);
    if (rc == OS_EFULL) {
        N.held = slot;
        N.held_len = len;
        N.blocked = true;
        N.rx_held++;
        return false;
    }
    if (rc == 0 && len > HDR && len - HDR <= HAL_NET_MTU)
        N.rx_frames++;
    else if (rc != 0)
        N.rx_bad++; /* OS_ENOMEM: dropped, as Ethernet may */
    N.held = NULL;
    rx_give(slot);
    return true;
}

bool bm_virtio_net_poll(void)
{
    uint32_t len;
    uint8_t *slot;
    bool gave = false;

    if (!N.started)
        return false;
    if (N.irq) {
        N.irq = false;
        if ((__atomic_exchange_n(&N.dev->isr_seen, 0, __ATOMIC_SEQ_CST) & ISR_CONFIG) &&
            N.has_status)
            N.link = link_now();
    }
    tell_link();
    if (N.blocked)
        return false;
    if (N.held) {
        if (!rx_deliver(N.held, N.held_len))
            return false;
        gave = true;
    }
    while ((slot = virtq_next_used(&N.rx, &len)) != NULL) {
        gave = true;
        if (!rx_deliver(slot, len))
            break;
    }
    if (gave)
        virtq_kick(&N.rx); /* buffers are back: QEMU delivers what it queued meanwhile */
    return gave;
}

bool bm_virtio_net_pending(void)
{
    if (!N.started)
        return false;
    if (N.irq || (N.told_any ? N.told != N.link : N.link))
        return true;
    if (N.blocked)
        return false; /* nothing to do until the kernel's resume */
    return N.held || *(volatile uint16_t *)&N.rx.used->idx != N.rx.last_used;
}

void bm_virtio_net_report(void)
{
    if (!N.dev)
        return;
    bm_printf("[bm] net0: rx %lu frames (%lu bad, held %lu times for a full queue), tx %lu frames "
              "(%lu refused: ring full), interrupts %u\n",
              (unsigned long)N.rx_frames, (unsigned long)N.rx_bad, (unsigned long)N.rx_held,
              (unsigned long)N.tx_frames, (unsigned long)N.tx_full, (unsigned)N.irqs);
}
