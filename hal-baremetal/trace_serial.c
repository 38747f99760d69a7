/* trace_serial.c — the image trace sink: kernel trace records as CRC-checked frames on the bulk
 * channel (virtio-console, virtio/console.c) when QEMU gives one, else on COM2. */
#include <stdint.h>
#include <string.h>

#include <hal/trace.h>
#include <trace/frame.h>

#include <bm/bm.h>
#include <bm/x86.h>

/*
 * QEMU (what `orrery qemu --trace FILE.db` adds to its command line):
 *
 *   -chardev file,id=trace,path=/dev/fd/N -device isa-serial,chardev=trace,iobase=0x2f8,irq=3
 *   -fw_cfg name=opt/orrery/trace,string=com2
 *
 * That is the fallback (`orrery qemu --trace-channel serial`, or a machine without a
 * virtio-console device): when a virtio-console device is present its port 1 carries the
 * same records in large buffers (virtio/console.c, as version 2 frames, cheaper to check under
 * TCG), some hundred times faster.
 *
 * Tracing is on only when the fw_cfg file opt/orrery/trace exists, so an
 * untraced boot pays nothing: k_config_t.trace stays NULL and the kernel
 * builds no records. The frame format is trace/include/trace/frame.h (the
 * encoder is freestanding and compiled into the image); the host decodes it
 * with trace/stream.c.
 *
 * record() runs with kernel locks held, on the one CPU, from the run loop
 * (never from an interrupt handler: the kernel is not called there). It only
 * encodes and polls the UART: it never calls into the kernel, allocates, or
 * enables interrupts. The port is transmit-only (no interrupt is routed).
 * QEMU hands each byte written to THR to the chardev at once; when the host
 * reader lags, the chardev write blocks the vCPU (a pipe gives backpressure),
 * so no record is lost on the way, and the guest only waits on THRE.
 */
enum {
    COM2 = 0x2F8,
    THR = 0,
    IER = 1,
    FCR = 2,
    LCR = 3,
    MCR = 4,
    LSR = 5,
    DLL = 0,
    DLM = 1,
    LSR_THRE = 0x20,
    LSR_TEMT = 0x40,
    FIFO = 16,
};

const uint8_t bm_trace_junk[BM_TRACE_JUNK_BYTES] = {0xA5, 0x5A, 0x4F, 0x54, 9, 0,
                                                    0,    0,    9,    0,    0, 0x55};

static uint64_t frames_sent; /* records written to the port (for `verbose`) */
static bool glitch;          /* "traceglitch": garble the stream on purpose (tests) */

/* Wait for an empty FIFO, then fill its 16 bytes (one LSR read per 16 bytes written). */
static void tx(const uint8_t *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        while (!(inb(COM2 + LSR) & LSR_THRE))
            cpu_pause();
        for (int n = 0; n < FIFO && i < len; n++)
            outb(COM2 + THR, buf[i++]);
    }
}

static void trace_record(void *self, const hal_trace_rec_t *rec)
{
    uint8_t head[TRACE_FRAME_HEAD + TRACE_FRAME_FIXED];
    uint8_t tail[TRACE_FRAME_TAIL];
    size_t plen = trace_frame_encode_split(rec, head, tail);

    (void)self;
    if (glitch && frames_sent % 10 == BM_TRACE_GLITCH_JUNK_AT)
        tx(bm_trace_junk, sizeof(bm_trace_junk));
    if (glitch && frames_sent % 10 == BM_TRACE_GLITCH_CRC_AT)
        tail[0] ^= 0xFF;
    tx(head, sizeof(head));
    if (plen)
        tx(rec->data, plen);
    tx(tail, sizeof(tail));
    frames_sent++;
}

/* At shutdown (k_shutdown) and before bm_exit: every byte has left the UART. */
static void trace_flush(void *self)
{
    (void)self;
    while ((inb(COM2 + LSR) & (LSR_THRE | LSR_TEMT)) != (LSR_THRE | LSR_TEMT))
        cpu_pause();
}

static const hal_trace_sink_t sink = {
    .self = NULL,
    .record = trace_record,
    .flush = trace_flush,
};

static bool trace_on; /* on COM2 */

const hal_trace_sink_t *bm_trace_init(void)
{
    uint16_t sel;
    const hal_trace_sink_t *bulk;

    if (bm_fwcfg_find("opt/orrery/trace", &sel) < 0)
        return NULL;
    glitch = bm_cmdline_has("traceglitch");
    bulk = bm_trace_virtio_init(glitch);
    if (bulk)
        return bulk;
    /* An absent UART reads 0xff: LSR says "empty" and the bytes go nowhere. */
    outb(COM2 + IER, 0x00);
    outb(COM2 + LCR, 0x80); /* DLAB */
    outb(COM2 + DLL, 0x01); /* 115200 baud (QEMU does not pace output by it) */
    outb(COM2 + DLM, 0x00);
    outb(COM2 + LCR, 0x03); /* 8N1 */
    outb(COM2 + FCR, 0x07); /* FIFO on, both cleared */
    outb(COM2 + MCR, 0x03); /* DTR, RTS; OUT2 off: no interrupt */
    trace_on = true;
    if (bm_boot.verbose)
        bm_printf("[bm] tracing to COM2 (0x2f8)\n");
    return &sink;
}

void bm_trace_finish(void)
{
    static bool finishing; /* once: a panic while finishing must not come back here */

    if (finishing)
        return;
    finishing = true;
    bm_trace_virtio_finish();
    if (!trace_on)
        return;
    trace_flush(NULL);
    if (bm_boot.verbose)
        bm_printf("[bm] trace: %lu records sent on COM2\n", (unsigned long)frames_sent);
}
