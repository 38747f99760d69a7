/* virtq.c — the split virtqueue and the transport-independent device handshake (virtio 1.x). */
#include <string.h>
#include <stdlib.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

enum { MAX_DEVS = 16 };
static vio_dev_t devs[MAX_DEVS];
static int ndevs;

vio_dev_t *vio_register(const vio_ops_t *ops, uint16_t type)
{
    vio_dev_t *d;

    if (ndevs == MAX_DEVS)
        return NULL;
    d = &devs[ndevs++];
    memset(d, 0, sizeof(*d));
    d->ops = ops;
    d->type = type;
    d->gsi = -1;
    return d;
}

void bm_virtio_probe(void)
{
    /* q35 has PCI and nothing virtio in the microvm window; microvm has no PCI. */
    if (!bm_virtio_pci_probe())
        bm_virtio_mmio_probe();
    if (bm_boot.verbose) {
        for (int i = 0; i < ndevs; i++)
            bm_printf("[bm] virtio device type %u at %s (%s)\n", devs[i].type, devs[i].where,
                      devs[i].ops->name);
    }
}

vio_dev_t *vio_find(uint16_t type, int n)
{
    for (int i = 0; i < ndevs; i++) {
        if (devs[i].type == type && !devs[i].claimed && n-- == 0)
            return &devs[i];
    }
    return NULL;
}

int vio_begin(vio_dev_t *d, uint64_t wanted, uint64_t *got)
{
    uint64_t offered, use;

    d->ops->set_status(d, 0);
    while (d->ops->get_status(d) != 0)
        cpu_pause();
    d->ops->set_status(d, VIO_S_ACK);
    d->ops->set_status(d, VIO_S_ACK | VIO_S_DRIVER);
    offered = d->ops->get_features(d);
    if (!(offered & VIO_F_VERSION_1)) {
        d->ops->set_status(d, VIO_S_FAILED);
        return -1; /* a legacy-only device: not supported */
    }
    use = offered & (wanted | VIO_F_VERSION_1);
    d->ops->set_features(d, use);
    d->ops->set_status(d, VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK);
    if (!(d->ops->get_status(d) & VIO_S_FEATURES_OK)) {
        d->ops->set_status(d, VIO_S_FAILED);
        return -1;
    }
    d->claimed = true;
    if (got)
        *got = use;
    return 0;
}

static struct {
    vio_dev_t *dev;
    void (*fn)(void *self);
    void *self;
} irqs[MAX_DEVS];

static void on_irq(void *slot)
{
    int i = (int)(uintptr_t)slot;

    uint32_t isr = irqs[i].dev->ops->isr_ack(irqs[i].dev);

    __atomic_or_fetch(&irqs[i].dev->isr_seen, isr, __ATOMIC_SEQ_CST);
    irqs[i].fn(irqs[i].self);
}

int vio_irq_enable(vio_dev_t *d, void (*fn)(void *self), void *self)
{
    int i = (int)(d - devs), vector;

    if (d->vector)
        return -1; /* NEVER: once per device */
    vector = bm_vector_alloc();
    if (vector < 0)
        return -1;
    irqs[i].dev = d;
    irqs[i].fn = fn;
    irqs[i].self = self;
    bm_irq_set(vector, on_irq, (void *)(uintptr_t)i);
    if (d->ops->irq_setup(d, vector) != 0) {
        bm_irq_set(vector, NULL, NULL);
        return -1;
    }
    d->vector = vector;
    return 0;
}

void vio_driver_ok(vio_dev_t *d)
{
    d->ops->set_status(d, VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK | VIO_S_DRIVER_OK);
}

/*
 * Ring memory: descriptors and the available ring in the first pages, the
 * used ring on the next page boundary (the legacy layout, which modern
 * transports accept too since each part's address is given separately).
 */
int vio_queue_setup(vio_dev_t *d, uint16_t index, virtq_t *q, uint16_t max_size)
{
    uint16_t size = d->ops->queue_max(d, index);
    size_t desc_bytes, avail_bytes, used_bytes, first, pages;
    uint8_t *mem;

    if (size == 0)
        return -1;
    if (size > max_size)
        size = max_size;
    if (size & (size - 1))
        return -1; /* split rings have power-of-two sizes */
    desc_bytes = 16u * size;
    avail_bytes = 6u + 2u * size;
    used_bytes = 6u + 8u * size;
    first = (desc_bytes + avail_bytes + 4095) & ~(size_t)4095;
    pages = (first + used_bytes + 4095) / 4096;
    mem = bm_pages_alloc(pages);
    q->cookies = calloc(size, sizeof(void *));
    if (!mem || !q->cookies)
        return -1;
    q->dev = d;
    q->index = index;
    q->size = size;
    q->desc = (vq_desc_t *)mem;
    q->avail = (vq_avail_t *)(mem + desc_bytes);
    q->used = (vq_used_t *)(mem + first);
    for (uint16_t i = 0; i < size; i++)
        q->desc[i].next = (uint16_t)(i + 1);
    q->free_head = 0;
    q->num_free = size;
    q->last_used = 0;
    return d->ops->queue_enable(d, q);
}

int virtq_add(virtq_t *q, const vq_buf_t *bufs, unsigned nout, unsigned nin, void *cookie)
{
    unsigned n = nout + nin;
    uint16_t head = q->free_head, i = head;

    if (n == 0 || n > q->num_free)
        return -1;
    for (unsigned k = 0; k < n; k++) {
        vq_desc_t *dsc = &q->desc[i];
        dsc->addr = (uint64_t)(uintptr_t)bufs[k].addr;
        dsc->len = bufs[k].len;
        dsc->flags =
            (uint16_t)((k < nout ? 0 : VQ_DESC_F_WRITE) | (k + 1 < n ? VQ_DESC_F_NEXT : 0));
        i = dsc->next;
    }
    q->free_head = i;
    q->num_free = (uint16_t)(q->num_free - n);
    q->cookies[head] = cookie;
    q->avail->ring[q->avail->idx & (q->size - 1)] = head;
    barrier(); /* the descriptors before the index */
    q->avail->idx++;
    return 0;
}

void virtq_kick(virtq_t *q)
{
    barrier(); /* the index before the notification */
    q->dev->ops->notify(q->dev, q);
}

void *virtq_next_used(virtq_t *q, uint32_t *len)
{
    vq_used_elem_t e;
    uint16_t i, n = 1;
    void *cookie;

    if (*(volatile uint16_t *)&q->used->idx == q->last_used)
        return NULL;
    barrier();
    e = q->used->ring[q->last_used & (q->size - 1)];
    q->last_used++;
    if (len)
        *len = e.len;
    cookie = q->cookies[e.id];
    /* Give the chain back to the free list. */
    for (i = (uint16_t)e.id; q->desc[i].flags & VQ_DESC_F_NEXT; i = q->desc[i].next)
        n++;
    q->desc[i].next = q->free_head;
    q->free_head = (uint16_t)e.id;
    q->num_free = (uint16_t)(q->num_free + n);
    return cookie;
}
