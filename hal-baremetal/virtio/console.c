/* console.c — the bulk trace channel: trace frames packed into large buffers on a virtio-console
 * port, so a buffer of thousands of records costs one notification instead of a VM exit a byte. */
#include <stdlib.h>
#include <string.h>

#include <hal/trace.h>
#include <trace/frame.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

/*
 * QEMU (what `orrery qemu --trace FILE.db` adds when the channel is virtio, the default):
 *
 *   -chardev file,id=trace,path=/dev/fd/N
 *   -device virtio-serial-pci            (microvm: -device virtio-serial-device)
 *   -device virtserialport,chardev=trace,nr=1,name=org.orrery.trace
 *   -fw_cfg name=opt/orrery/trace,string=virtio
 *
 * The bytes are version 2 frames (trace/include/trace/frame.h): COM2's records with a check
 * that is cheap under TCG, which the host decodes with the same resynchronizing decoder (it
 * takes either version anywhere in a stream).
 *
 * Why a virtserialport (nr=1) and not a virtconsole on port 0: QEMU drops what a console
 * port's chardev cannot take at once (a full pipe), while a serial port is throttled and
 * resumes when the chardev is writable again, keeping the buffer in the ring meanwhile. So a
 * slow reader slows the guest, as on COM2, and loses nothing. Port 1 needs the MULTIPORT
 * feature (its queues are 4 and 5); the control queues (2, 3) are not set up: QEMU writes a
 * port's output once its chardev is open, whatever the guest said on them, and we have
 * nothing to read.
 *
 * Buffers: NBUF of BUF_BYTES, from the heap (identity-mapped). record() encodes each frame
 * into the current buffer; a full buffer (the next frame does not fit) is added to the
 * transmit queue and the device notified, and the next free one is taken: the kernel waits
 * only when all NBUF are with the device (the host is behind). A buffer also goes out when
 * its first record is FLUSH_NS older than the one being written, when the run loop has
 * nothing to do (bm_trace_virtio_idle), and at shutdown, where we wait until QEMU has handed every
 * buffer to the chardev. Transmit interrupts are off: used buffers are reclaimed on demand.
 * record() runs with kernel locks held and never calls into the kernel or allocates.
 */
enum {
    CONSOLE_F_MULTIPORT = 1,
    CFG_MAX_PORTS = 4,  /* config space: cols u16, rows u16, max_nr_ports u32 */
    PORT = 1,           /* port 0 is QEMU's, reserved for a virtconsole */
    TXQ = 2 * PORT + 3, /* port 0: queues 0, 1; control: 2, 3; port n >= 1: 2n+2, 2n+3 */
    /* 512 KiB buffers, a buffer leaving at 10 ms at the latest: under TCG on a busy host each
       notification cost tens of microseconds and QEMU gave buffers back late, so with 128 KiB
       (2 ms) a stream of 1.3M records/s waited for a free buffer ~15 times per 2M records, with
       512 KiB 0 or 1 times, and the notifications per record went down 4 times. */
    NBUF = 4,
    BUF_BYTES = 512 * 1024,
    FLUSH_NS = 10 * 1000 * 1000,
    AVAIL_F_NO_INTERRUPT = 1,
};
_Static_assert(BUF_BYTES >= TRACE_FRAME_MAX + BM_TRACE_JUNK_BYTES,
               "a buffer holds the largest frame");

static struct {
    vio_dev_t *dev;
    virtq_t tx;
    uint8_t *free[NBUF]; /* buffers not with the device */
    int nfree;
    uint8_t *cur;      /* the buffer being filled, or NULL */
    size_t fill;       /* bytes in cur */
    uint64_t first_ns; /* time_ns of cur's first record */
    bool glitch;       /* "traceglitch": garble the stream on purpose (tests) */

    /* counters (`--append verbose`, at shutdown) */
    uint64_t frames, buffers, bytes, waits;
    uint64_t wait_tsc, kick_tsc; /* TSC ticks spent waiting for a free buffer, notifying */
} C;

static void reclaim(void)
{
    uint8_t *b;

    while ((b = virtq_next_used(&C.tx, NULL)) != NULL)
        C.free[C.nfree++] = b;
}

/* The current buffer to the device (nothing if empty). */
static void submit(void)
{
    vq_buf_t b = {C.cur, (uint32_t)C.fill};
    uint64_t t0;

    if (!C.cur || C.fill == 0)
        return;
    if (virtq_add(&C.tx, &b, 1, 0, C.cur) != 0)
        return; /* never: a buffer we hold has a descriptor (NBUF <= ring size) */
    t0 = rdtsc();
    virtq_kick(&C.tx); /* QEMU: an eventfd write; its main loop writes the buffer to the pipe */
    C.kick_tsc += rdtsc() - t0;
    C.buffers++;
    C.bytes += C.fill;
    C.cur = NULL;
    C.fill = 0;
}

/* A free buffer as the current one, waiting for the device if all are out. */
static void take(void)
{
    reclaim();
    if (C.nfree == 0) {
        uint64_t t0 = rdtsc();
        C.waits++;
        while (C.nfree == 0) {
            cpu_pause();
            reclaim();
        }
        C.wait_tsc += rdtsc() - t0;
    }
    C.cur = C.free[--C.nfree];
    C.fill = 0;
}

static void put(const void *p, size_t n)
{
    memcpy(C.cur + C.fill, p, n);
    C.fill += n;
}

/*
 * One record: a version 2 frame (trace/include/trace/frame.h) encoded straight into the current
 * buffer. Under TCG this is the image's whole cost of tracing a record besides building it, so
 * it stays short: the frame's size bound is computed here, not called for, and the check is a
 * multiply a word (a version 1 frame's CRC-32 took ~1 us a record here, this ~0.15 us).
 */
static void console_record(void *self, const hal_trace_rec_t *rec)
{
    size_t plen = rec->data ? rec->len : 0;
    size_t need;
    uint8_t *frame;

    (void)self;
    if (plen > TRACE_FRAME_MAX_PAYLOAD)
        plen = TRACE_FRAME_MAX_PAYLOAD;
    need = TRACE_FRAME2_HEAD + TRACE_FRAME_FIXED + ((plen + 7) & ~(size_t)7);
    if (__builtin_expect(C.glitch, 0))
        need += sizeof(bm_trace_junk);
    if (C.cur && C.fill + need > BUF_BYTES)
        submit();
    if (!C.cur)
        take();
    if (C.fill == 0)
        C.first_ns = rec->time_ns;
    if (C.glitch && C.frames % 10 == BM_TRACE_GLITCH_JUNK_AT)
        put(bm_trace_junk, sizeof(bm_trace_junk));
    frame = C.cur + C.fill;
    C.fill += trace_frame2_encode(rec, frame, BUF_BYTES - C.fill);
    if (C.glitch && C.frames % 10 == BM_TRACE_GLITCH_CRC_AT)
        frame[12] ^= 0xFF; /* the check's first byte */
    C.frames++;
    if (rec->time_ns - C.first_ns >= FLUSH_NS)
        submit();
}

/* Send what is buffered and wait until QEMU has written every buffer to its chardev. */
static void console_flush(void *self)
{
    (void)self;
    submit();
    reclaim();
    while (C.nfree + (C.cur ? 1 : 0) < NBUF) {
        cpu_pause();
        reclaim();
    }
}

static const hal_trace_sink_t sink = {
    .self = NULL,
    .record = console_record,
    .flush = console_flush,
};

const hal_trace_sink_t *bm_trace_virtio_init(bool glitch)
{
    vio_dev_t *d = vio_find(VIO_ID_CONSOLE, 0);
    uint64_t got = 0;
    uint8_t *mem;

    if (!d)
        return NULL;
    if (vio_begin(d, 1ull << CONSOLE_F_MULTIPORT, &got) != 0 ||
        !(got & 1ull << CONSOLE_F_MULTIPORT) || d->ops->config_read(d, CFG_MAX_PORTS, 4) <= PORT) {
        bm_printf("[bm] virtio-console at %s: no port %d (virtserialport nr=%d); tracing to "
                  "COM2\n",
                  d->where, PORT, PORT);
        d->ops->set_status(d, VIO_S_FAILED);
        return NULL;
    }
    mem = malloc((size_t)NBUF * BUF_BYTES);
    if (vio_queue_setup(d, TXQ, &C.tx, NBUF) != 0 || !mem) {
        bm_printf("[bm] virtio-console at %s: no queue or memory; tracing to COM2\n", d->where);
        d->ops->set_status(d, VIO_S_FAILED);
        free(mem);
        return NULL;
    }
    for (int i = 0; i < NBUF; i++)
        C.free[C.nfree++] = mem + (size_t)i * BUF_BYTES;
    C.tx.avail->flags = AVAIL_F_NO_INTERRUPT; /* reclaimed on demand */
    vio_driver_ok(d);
    C.dev = d;
    C.glitch = glitch;
    if (bm_boot.verbose)
        bm_printf("[bm] tracing to virtio-console port %d at %s (%s), %d buffers of %d KiB\n", PORT,
                  d->where, d->ops->name, NBUF, BUF_BYTES / 1024);
    return &sink;
}

void bm_trace_virtio_idle(void)
{
    if (C.dev && C.cur && C.fill)
        submit();
}

void bm_trace_virtio_finish(void)
{
    if (!C.dev)
        return;
    console_flush(NULL);
    if (bm_boot.verbose)
        bm_printf("[bm] trace: %lu records in %lu buffers (%lu bytes) on virtio-console, waited "
                  "for a free buffer %lu times (%lu ms), notifying took %lu ms\n",
                  (unsigned long)C.frames, (unsigned long)C.buffers, (unsigned long)C.bytes,
                  (unsigned long)C.waits, (unsigned long)(bm_tsc_to_ns(C.wait_tsc) / 1000000),
                  (unsigned long)(bm_tsc_to_ns(C.kick_tsc) / 1000000));
}
