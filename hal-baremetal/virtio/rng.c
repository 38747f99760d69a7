/* rng.c — the virtio entropy device (type 4): one request queue, polled; the first virtio driver.
 */
#include <string.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

/*
 * QEMU: q35: -device virtio-rng-pci; microvm: -device virtio-rng-device.
 * The device fills each device-writable buffer we queue with random bytes.
 * Requests are rare (RDRAND serves when the CPU has it), so we poll the used
 * ring with a time limit instead of taking its interrupt.
 */
static struct {
    vio_dev_t *dev;
    virtq_t q;
    uint8_t buf[64] __attribute__((aligned(64)));
    bool ok;
    volatile uint32_t irqs; /* interrupts taken (the used ring moved) */
} rng;

static void on_irq(void *self)
{
    rng.irqs++;
}

void bm_virtio_rng_init(void)
{
    vio_dev_t *d = vio_find(VIO_ID_RNG, 0);

    if (!d || vio_begin(d, 0, NULL) != 0)
        return;
    vio_irq_enable(d, on_irq, NULL); /* optional: reads poll; the count proves delivery */
    if (vio_queue_setup(d, 0, &rng.q, 16) != 0) {
        d->ops->set_status(d, VIO_S_FAILED);
        return;
    }
    vio_driver_ok(d);
    rng.dev = d;
    rng.ok = true;
}

bool bm_virtio_rng_present(void)
{
    return rng.ok;
}

size_t bm_virtio_rng_read(void *buf, size_t len)
{
    size_t done = 0;

    while (rng.ok && done < len) {
        vq_buf_t b = {rng.buf, sizeof(rng.buf)};
        uint32_t got = 0;
        uint64_t start = rdtsc(), limit = bm_tsc_hz(); /* one second */
        if (virtq_add(&rng.q, &b, 0, 1, rng.buf) != 0)
            break;
        virtq_kick(&rng.q);
        while (virtq_next_used(&rng.q, &got) == NULL) {
            if (rdtsc() - start > limit) {
                bm_printf("[bm] virtio-rng at %s: no answer in 1 s; not used again\n",
                          rng.dev->where);
                rng.ok = false; /* the buffer stays with the device */
                return done;
            }
            cpu_pause();
        }
        rng.dev->ops->isr_ack(rng.dev);
        if (got > sizeof(rng.buf))
            got = sizeof(rng.buf);
        if (got > len - done)
            got = (uint32_t)(len - done);
        memcpy((uint8_t *)buf + done, rng.buf, got);
        done += got;
    }
    return done;
}

void bm_virtio_rng_selftest(void)
{
    uint8_t b[32];
    size_t n;
    unsigned nonzero = 0;

    if (!rng.ok) {
        bm_printf("[bm] rngtest: no virtio-rng device\n");
        return;
    }
    memset(b, 0, sizeof(b));
    n = bm_virtio_rng_read(b, sizeof(b));
    for (size_t i = 0; i < n; i++)
        nonzero += b[i] != 0;
    /* The completions' interrupts: give them up to 100 ms to arrive (interrupts are on). */
    for (uint64_t t0 = rdtsc(); rng.irqs == 0 && rdtsc() - t0 < bm_tsc_hz() / 10;)
        cpu_pause();
    bm_printf("[bm] rngtest: %zu bytes from virtio-rng at %s (%s), %u non-zero: "
              "%02x%02x%02x%02x%02x%02x%02x%02x...; interrupts: %u (vector %#x)\n",
              n, rng.dev->where, rng.dev->ops->name, nonzero, b[0], b[1], b[2], b[3], b[4], b[5],
              b[6], b[7], (unsigned)rng.irqs, (unsigned)rng.dev->vector);
}
