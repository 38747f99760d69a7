/* serial.c — the 16550 UART on COM1: console output, interrupt-driven line input, the "console"
 * device. */
#include <stdio.h>
#include <string.h>

#include <hal/console.h>
#include <hal/device.h>
#include <k/kernel.h>
#include <os/errno.h>

#include <bm/bm.h>
#include <bm/x86.h>

/*
 * QEMU: -serial stdio (COM1, IRQ 4 on q35 and microvm). The interrupt handler
 * moves received bytes into a ring; the run loop cuts lines and posts them to
 * the kernel (never from the handler: the kernel may hold its locks in the
 * code we interrupted). When the ring is full the handler turns the receive
 * interrupt off, so QEMU keeps the rest (its FIFO fills and it stops reading
 * the host side): no byte is lost, whatever the line length.
 *
 * Input bytes: '\n' or '\r' (or "\r\n") ends a line; 0x04 (Ctrl-D) on an empty
 * line is end of input (`orrery qemu` sends it when its stdin ends). With
 * "tty" on the kernel command line (a person's terminal, which QEMU puts in
 * raw mode) bytes are posted as they come (HAL_CONSOLE_KEYS, after
 * HAL_CONSOLE_INFO with "cols=N rows=N" of the command line): the console
 * server echoes and edits. Log lines then clear the row being edited and draw
 * it again after themselves (HAL_CONSOLE_ROW).
 */
enum {
    COM1 = 0x3F8,
    RBR = 0,
    THR = 0,
    IER = 1,
    FCR = 2,
    LCR = 3,
    MCR = 4,
    LSR = 5,
    DLL = 0,
    DLM = 1,
    LSR_DR = 0x01,
    LSR_THRE = 0x20,
    RING = 4096,
    HOLD = 32768,
};

static volatile uint8_t ring[RING];
static volatile uint32_t ring_head, ring_tail; /* head: written by the handler */
static volatile bool rx_paused;

static char line[HAL_CONSOLE_LINE_MAX];
static size_t line_len; /* real length, may exceed the buffer */
static bool last_cr;
static int post_code; /* a completed item waiting for k_post room, 0 if none */
static int console_dev;

/* tty: keystrokes taken from the ring and not yet posted, the info to post, the edited row */
static uint8_t keys[256];
static size_t keys_len;
static bool info_pending;
static char row[2048];
static size_t row_len;

static bool hold_on;
static char hold_buf[HOLD];
static size_t hold_len;

void bm_serial_init(void)
{
    outb(COM1 + IER, 0x00);
    outb(COM1 + LCR, 0x80); /* DLAB */
    outb(COM1 + DLL, 0x01); /* 115200 baud */
    outb(COM1 + DLM, 0x00);
    outb(COM1 + LCR, 0x03); /* 8N1 */
    /* Turning the FIFO on clears it: keep a byte that arrived during the firmware first. */
    while (inb(COM1 + LSR) & LSR_DR)
        ring[ring_head++ % RING] = inb(COM1 + RBR);
    outb(COM1 + FCR, 0x01); /* FIFO on, interrupt at 1 byte */
    outb(COM1 + MCR, 0x0B); /* DTR, RTS, OUT2 (routes the IRQ) */
}

/* Transmit: wait for an empty FIFO, then fill its 16 bytes (one VM exit per byte, not two). */
static void tx(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        while (!(inb(COM1 + LSR) & LSR_THRE))
            cpu_pause();
        for (int n = 0; n < 16 && i < len; n++)
            outb(COM1 + THR, (uint8_t)buf[i++]);
    }
}

/* QEMU keeps the terminal's output processing (OPOST) on, so "\n" needs no "\r". */
static void out_raw(const char *buf, size_t len)
{
    tx(buf, len);
}

void bm_serial_write(const void *buf, size_t len)
{
    if (hold_on) {
        if (hold_len + len <= sizeof(hold_buf)) {
            memcpy(hold_buf + hold_len, buf, len);
            hold_len += len;
            return;
        }
        bm_console_hold(false); /* the boot said a lot: stop holding */
    }
    out_raw(buf, len);
}

void bm_serial_write_now(const void *buf, size_t len)
{
    out_raw(buf, len);
}

void bm_console_hold(bool hold)
{
    if (!hold && hold_len) {
        out_raw(hold_buf, hold_len);
        hold_len = 0;
    }
    hold_on = hold;
}

/* The kernel's log lines: never inside the row being edited. */
void hal_console_write(const void *buf, size_t len)
{
    if (row_len > 0)
        bm_serial_write("\r\x1b[K", 4);
    bm_serial_write(buf, len);
    if (row_len > 0)
        bm_serial_write(row, row_len);
}

void bm_vprintf(const char *fmt, va_list ap)
{
    char buf[512];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);

    bm_serial_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void bm_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    bm_vprintf(fmt, ap);
    va_end(ap);
}

static void on_rx(void *self)
{
    while (inb(COM1 + LSR) & LSR_DR) {
        if (ring_head - ring_tail == RING) {
            rx_paused = true;
            outb(COM1 + IER, 0x00);
            return;
        }
        ring[ring_head % RING] = inb(COM1 + RBR);
        ring_head++;
    }
}

void bm_serial_start_irq(void)
{
    bm_irq_set(BM_VEC_SERIAL, on_rx, NULL);
    bm_ioapic_route(4, BM_VEC_SERIAL, false);
    outb(COM1 + IER, 0x01); /* received data available */
    irq_disable();
    on_rx(NULL); /* bytes that arrived before the interrupt was routed */
    irq_enable();
}

static bool try_post(void)
{
    int rc;

    if (post_code == HAL_CONSOLE_OVERLONG) {
        uint32_t n = (uint32_t)line_len;
        rc = k_post(console_dev, HAL_CONSOLE_OVERLONG, &n, sizeof(n));
    } else if (post_code == HAL_CONSOLE_EOF) {
        rc = k_post(console_dev, HAL_CONSOLE_EOF, NULL, 0);
    } else {
        rc = k_post(console_dev, HAL_CONSOLE_LINE, line, line_len);
    }
    if (rc == OS_EFULL)
        return false; /* keep it; the run loop tries again after tasks ran */
    post_code = 0;
    line_len = 0;
    return true;
}

/* tty: post keystrokes as they come. true while some wait. */
static bool poll_keys(void)
{
    if (info_pending) {
        hal_console_info_t info = {HAL_CONSOLE_TERMINAL, bm_boot.cols, bm_boot.rows};
        if (k_post(console_dev, HAL_CONSOLE_INFO, &info, sizeof(info)) == OS_EFULL)
            return true;
        info_pending = false;
    }
    if (keys_len == 0) {
        while (ring_tail != ring_head && keys_len < sizeof(keys))
            keys[keys_len++] = ring[ring_tail++ % RING];
    }
    if (keys_len > 0 && k_post(console_dev, HAL_CONSOLE_KEYS, keys, keys_len) != OS_EFULL)
        keys_len = 0;
    if (rx_paused && ring_head - ring_tail < RING / 2) {
        rx_paused = false;
        outb(COM1 + IER, 0x01);
    }
    return keys_len != 0 || ring_tail != ring_head;
}

bool bm_serial_poll(void)
{
    if (bm_boot.tty)
        return poll_keys();
    if (post_code && !try_post())
        return true;
    while (ring_tail != ring_head) {
        char c = (char)ring[ring_tail % RING];
        ring_tail++;
        if (c == '\n' && last_cr) {
            last_cr = false;
            continue;
        }
        last_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            post_code = line_len > sizeof(line) ? HAL_CONSOLE_OVERLONG : HAL_CONSOLE_LINE;
        } else if (c == 0x04 && line_len == 0) {
            post_code = HAL_CONSOLE_EOF;
        } else {
            if (line_len < sizeof(line))
                line[line_len] = c;
            line_len++;
        }
        if (post_code && !try_post())
            break;
    }
    if (rx_paused && ring_head - ring_tail < RING / 2) {
        rx_paused = false;
        outb(COM1 + IER, 0x01);
    }
    return post_code != 0 || ring_tail != ring_head;
}

bool bm_serial_pending(void)
{
    return ring_tail != ring_head || rx_paused;
}

static int console_write(void *self, uint32_t code, const void *buf, size_t len)
{
    switch (code) {
    case HAL_CONSOLE_WRITE:
        bm_serial_write(buf, len);
        return 0;
    case HAL_CONSOLE_ROW:
        if (!bm_boot.tty)
            return OS_EINVAL;
        row_len = len <= sizeof(row) ? len : 0; /* a row we cannot keep is not redrawn */
        if (row_len > 0)
            memcpy(row, buf, row_len);
        return 0;
    case HAL_CONSOLE_INFO:
        if (!bm_boot.tty)
            return OS_EINVAL;
        info_pending = true; /* posted by the run loop (k_post is not for this path) */
        return 0;
    default:
        return OS_EINVAL;
    }
}

static void console_resume(void *self)
{
    /* The run loop retries a held line on every turn; nothing to wake on one CPU. */
}

static const hal_device_ops_t console_ops = {
    .name = "console",
    .self = NULL,
    .write = console_write,
    .resume = console_resume,
};

int bm_console_register(void)
{
    info_pending = bm_boot.tty;
    console_dev = k_device_add(&console_ops);
    return console_dev;
}
