/* virtio.h — virtio 1.x for the image: split virtqueues over a generic transport (PCI or MMIO). */
#ifndef BM_VIRTIO_H
#define BM_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A driver (rng today; net and blk later) sees only vio_dev_t and virtq_t:
 *   vio_dev_t *d = vio_find(VIO_ID_RNG, 0);
 *   vio_begin(d, wanted_features, &got)      reset, ACK, DRIVER, features, FEATURES_OK
 *   vio_queue_setup(d, 0, &q, 64)            allocate and enable queue 0
 *   vio_driver_ok(d)
 *   virtq_add(&q, bufs, nout, nin, cookie); virtq_kick(&q);
 *   cookie = virtq_next_used(&q, &len)       poll (or call it from the device's interrupt)
 * The transport (virtio_pci.c, virtio_mmio.c) fills vio_ops_t. Buffers are
 * physical addresses; the image identity-maps RAM, so a pointer is its address.
 */

enum {
    VIO_ID_NET = 1,
    VIO_ID_BLK = 2,
    VIO_ID_CONSOLE = 3,
    VIO_ID_RNG = 4,
};

/* Device status bits. */
enum {
    VIO_S_ACK = 1,
    VIO_S_DRIVER = 2,
    VIO_S_DRIVER_OK = 4,
    VIO_S_FEATURES_OK = 8,
    VIO_S_FAILED = 128,
};

#define VIO_F_VERSION_1 (1ull << 32)

/* The split ring, as the device sees it (virtio 1.x, 2.7). */
typedef struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags; /* VQ_DESC_F_* */
    uint16_t next;
} vq_desc_t;
enum {
    VQ_DESC_F_NEXT = 1,
    VQ_DESC_F_WRITE = 2,
};
typedef struct vq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
} vq_avail_t;
typedef struct vq_used_elem {
    uint32_t id;
    uint32_t len;
} vq_used_elem_t;
typedef struct vq_used {
    uint16_t flags;
    uint16_t idx;
    vq_used_elem_t ring[];
} vq_used_t;

typedef struct vio_dev vio_dev_t;

typedef struct virtq {
    vio_dev_t *dev;
    uint16_t index; /* queue number on the device */
    uint16_t size;  /* entries, a power of two */
    vq_desc_t *desc;
    vq_avail_t *avail;
    vq_used_t *used;
    uint16_t free_head; /* first free descriptor (chained through next) */
    uint16_t num_free;
    uint16_t last_used; /* next used entry to consume */
    void **cookies;     /* per head descriptor */
    uintptr_t notify;   /* transport: where to write the queue index */
} virtq_t;

/* One buffer of a request: device-readable ("out") first, then device-writable ("in"). */
typedef struct vq_buf {
    void *addr;
    uint32_t len;
} vq_buf_t;

typedef struct vio_ops {
    const char *name; /* "virtio-pci", "virtio-mmio" */
    uint8_t (*get_status)(vio_dev_t *d);
    void (*set_status)(vio_dev_t *d, uint8_t status); /* 0 resets */
    uint64_t (*get_features)(vio_dev_t *d);
    void (*set_features)(vio_dev_t *d, uint64_t features);
    /* Select queue `index`; its maximum size (0: no such queue). */
    uint16_t (*queue_max)(vio_dev_t *d, uint16_t index);
    /* Tell the device where q's rings are and enable it; fills q->notify. 0 or -1. */
    int (*queue_enable)(vio_dev_t *d, virtq_t *q);
    void (*notify)(vio_dev_t *d, virtq_t *q);
    /* Read and acknowledge the interrupt status (bit 0: used ring, bit 1: config). */
    uint32_t (*isr_ack)(vio_dev_t *d);
    /* Deliver the device's interrupts (used rings and config) to `vector`: MSI-X entry 0
     * (pci) or its IOAPIC line (mmio). 0, or -1 if it has no usable interrupt. Call
     * before vio_queue_setup (queues are bound to the vector when enabled). */
    int (*irq_setup)(vio_dev_t *d, int vector);
    /* Device-specific configuration space, byte offset, width 1, 2, 4 or 8. */
    uint64_t (*config_read)(vio_dev_t *d, uint32_t off, int width);
    void (*config_write)(vio_dev_t *d, uint32_t off, int width, uint64_t v);
} vio_ops_t;

struct vio_dev {
    const vio_ops_t *ops;
    uint16_t type;     /* VIO_ID_* */
    char where[32];    /* "pci 00:03.0", "mmio 0xfeb00e00" */
    int gsi;           /* mmio: interrupt line (IOAPIC input), -1 if unknown */
    int vector;        /* after vio_irq_enable, else 0 */
    uint32_t isr_seen; /* interrupt status bits acknowledged by the handler, not yet taken
                        * (bit 1: configuration changed); the driver takes them atomically */
    bool claimed;      /* a driver owns it */
    /* transport state */
    uintptr_t base;                             /* mmio: register window */
    uintptr_t common, isr, devcfg, notify_base; /* pci: capability windows */
    uint32_t notify_mult;
    uintptr_t msix_table;  /* pci: MSI-X table (0: none) */
    int msix_cap;          /* pci: config offset of the MSI-X capability */
    uint8_t bus, slot, fn; /* pci: address */
};

/* Find devices (both transports) at boot. */
void bm_virtio_probe(void);
/* The n-th unclaimed device of a type, or NULL. */
vio_dev_t *vio_find(uint16_t type, int n);
/* Handshake up to FEATURES_OK: offer `wanted` (VERSION_1 is added); *got = accepted. */
int vio_begin(vio_dev_t *d, uint64_t wanted, uint64_t *got);
int vio_queue_setup(vio_dev_t *d, uint16_t index, virtq_t *q, uint16_t max_size);
/* Take the device's interrupt: fn(self) runs in interrupt context (keep it short; it
 * should only note work for the run loop); the ISR is acknowledged before fn runs.
 * Between vio_begin and vio_queue_setup. 0, or -1 (then poll). */
int vio_irq_enable(vio_dev_t *d, void (*fn)(void *self), void *self);
void vio_driver_ok(vio_dev_t *d);

int virtq_add(virtq_t *q, const vq_buf_t *bufs, unsigned nout, unsigned nin, void *cookie);
void virtq_kick(virtq_t *q);
void *virtq_next_used(virtq_t *q, uint32_t *len);

/* Transports register what they find. */
vio_dev_t *vio_register(const vio_ops_t *ops, uint16_t type);
bool bm_virtio_pci_probe(void); /* false: no PCI bus */
void bm_virtio_mmio_probe(void);

/* virtio-rng: bytes read (0 if there is no device). */
void bm_virtio_rng_init(void); /* claim the first virtio-rng device, if any */
bool bm_virtio_rng_present(void);
size_t bm_virtio_rng_read(void *buf, size_t len);
void bm_virtio_rng_selftest(void);

/* virtio-net (virtio/net.c): the "net0" device, only when a virtio-net device is present. */
int bm_virtio_net_init(void);     /* before k_boot: claim it, register net0; 0, or -1: none */
void bm_virtio_net_start(void);   /* after k_boot: post the link state (HAL_NET_LINK_UP) */
bool bm_virtio_net_poll(void);    /* run loop: post received frames; true if any moved */
bool bm_virtio_net_pending(void); /* work for the run loop (checked before halting) */
void bm_virtio_net_report(void);  /* one log line of counters (verbose, at shutdown) */

/* virtio-blk (virtio/blk.c): the "blk0" device, only when a virtio-blk device is present. */
int bm_virtio_blk_init(void);      /* before k_boot: claim it, register blk0; 0, or -1: none */
void bm_virtio_blk_start(void);    /* after k_boot: post HAL_BLK_INFO */
bool bm_virtio_blk_poll(void);     /* run loop: post completions; true if any moved */
bool bm_virtio_blk_pending(void);  /* work for the run loop (checked before halting) */
void bm_virtio_blk_report(void);   /* one log line of counters (verbose, at shutdown) */
void bm_virtio_blk_selftest(void); /* `--append blktest`: write, flush, read back, log */

#endif
