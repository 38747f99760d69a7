/* console.c — the hosted "console" device: lines from an fd (reader thread), whole writes out;
 * on a terminal, raw keystrokes instead of lines (tty.c keeps the terminal's mode). */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <hal/console.h>
#include <hal/device.h>
#include <k/kernel.h>

#include <poll.h>

enum {
    HL_CONSOLE_ROW_MAX = 2048,  /* the row being edited (the console server's is smaller) */
    HL_CONSOLE_KEYS_READ = 256, /* keystroke bytes posted at most at once */
};

static struct {
    int dev; /* k_device_add id */
    int in_fd, out_fd;
    pthread_mutex_t out_lock; /* each write is whole */

    /* Reader thread and its back-pressure handshake. */
    pthread_t reader;
    bool reader_started;
    int cancel[2];        /* pipe: readable => reader stops */
    pthread_mutex_t lock; /* guards resumed, stopping */
    pthread_cond_t cond;
    bool resumed; /* the kernel's queue has room again */
    bool stopping;
    uint64_t full_waits; /* atomic: k_post said OS_EFULL */
    hl_lines_t lines;
    char line[HAL_CONSOLE_LINE_MAX];

    /* A terminal: keystrokes, and the row the console server is editing (under out_lock). */
    bool terminal;
    char row[HL_CONSOLE_ROW_MAX];
    size_t row_len;
} C = {.out_lock = PTHREAD_MUTEX_INITIALIZER,
       .lock = PTHREAD_MUTEX_INITIALIZER,
       .cond = PTHREAD_COND_INITIALIZER,
       .cancel = {-1, -1}};

/* Write all of buf; out_lock held. */
static void write_locked(const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(C.out_fd, p, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            break; /* stdout gone (EPIPE): drop the output, keep running */
        }
        p += n;
        len -= (size_t)n;
    }
}

/* The kernel's own lines (logs, panics): on a terminal they clear the row being edited and
 * draw it again after themselves. */
void hl_console_write(const void *buf, size_t len)
{
    pthread_mutex_lock(&C.out_lock);
    if (C.row_len > 0)
        write_locked("\r\x1b[K", 4);
    write_locked(buf, len);
    if (C.row_len > 0)
        write_locked(C.row, C.row_len);
    pthread_mutex_unlock(&C.out_lock);
}

static void post_info(void);

static int console_dev_write(void *self, uint32_t code, const void *buf, size_t len)
{
    switch (code) {
    case HAL_CONSOLE_WRITE:
        pthread_mutex_lock(&C.out_lock);
        write_locked(buf, len);
        pthread_mutex_unlock(&C.out_lock);
        return 0;
    case HAL_CONSOLE_ROW:
        if (!C.terminal)
            return OS_EINVAL;
        pthread_mutex_lock(&C.out_lock);
        C.row_len = len < sizeof(C.row) ? len : 0; /* a row we cannot keep is not redrawn */
        if (C.row_len > 0)
            memcpy(C.row, buf, C.row_len);
        pthread_mutex_unlock(&C.out_lock);
        return 0;
    case HAL_CONSOLE_INFO:
        if (!C.terminal)
            return OS_EINVAL;
        post_info();
        return 0;
    default:
        return OS_EINVAL;
    }
}

/* Kernel locks may be held: only flag the reader. */
static void console_dev_resume(void *self)
{
    pthread_mutex_lock(&C.lock);
    C.resumed = true;
    pthread_cond_signal(&C.cond);
    pthread_mutex_unlock(&C.lock);
}

static const hal_device_ops_t console_ops = {
    .name = "console",
    .self = NULL,
    .write = console_dev_write,
    .resume = console_dev_resume,
};

/* Post one item; on OS_EFULL wait for resume and retry. false if stopping. */
static bool post(uint32_t code, const void *data, size_t len)
{
    for (;;) {
        pthread_mutex_lock(&C.lock);
        C.resumed = false;
        bool stop = C.stopping;
        pthread_mutex_unlock(&C.lock);
        if (stop)
            return false;
        int rc = k_post(C.dev, code, data, len);
        if (rc != OS_EFULL)
            return true; /* posted (OS_E2BIG/OS_EINVAL cannot happen for console codes) */
        __atomic_add_fetch(&C.full_waits, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&C.lock);
        while (!C.resumed && !C.stopping)
            pthread_cond_wait(&C.cond, &C.lock);
        pthread_mutex_unlock(&C.lock);
    }
}

/* The terminal's size and the fact that it is one. */
static void post_info(void)
{
    hal_console_info_t info = {.flags = HAL_CONSOLE_TERMINAL};
    struct winsize ws;
    if (ioctl(C.out_fd, TIOCGWINSZ, &ws) == 0) {
        info.cols = ws.ws_col;
        info.rows = ws.ws_row;
    }
    k_post(C.dev, HAL_CONSOLE_INFO, &info, sizeof(info)); /* OS_EFULL: the keys say it later */
}

/* A terminal: keystrokes as they come, in order, until the end of input. */
static void *keys_main(void *arg)
{
    uint8_t buf[HL_CONSOLE_KEYS_READ];
    for (;;) {
        struct pollfd p[2] = {{.fd = C.in_fd, .events = POLLIN},
                              {.fd = C.cancel[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[1].revents)
            return NULL; /* cancelled */
        if (!p[0].revents)
            continue;
        ssize_t n = read(C.in_fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            post(HAL_CONSOLE_EOF, NULL, 0); /* the terminal hung up (or read failed) */
            return NULL;
        }
        if (!post(HAL_CONSOLE_KEYS, buf, (size_t)n))
            return NULL;
    }
}

static void *reader_main(void *arg)
{
    for (;;) {
        size_t len;
        int r = hl_lines_next(&C.lines, C.line, sizeof(C.line), &len);
        if (r < 0)
            return NULL; /* cancelled */
        if (r == 0) {
            post(HAL_CONSOLE_EOF, NULL, 0);
            return NULL;
        }
        bool ok;
        if (len > HAL_CONSOLE_LINE_MAX) {
            uint32_t real = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
            ok = post(HAL_CONSOLE_OVERLONG, &real, sizeof(real));
        } else {
            ok = post(HAL_CONSOLE_LINE, C.line, len);
        }
        if (!ok)
            return NULL;
    }
}

int hl_console_add(int in_fd, int out_fd)
{
    C.in_fd = in_fd;
    C.out_fd = out_fd;
    C.resumed = C.stopping = false;
    __atomic_store_n(&C.full_waits, 0, __ATOMIC_RELAXED);
    C.reader_started = false;
    int dev = k_device_add(&console_ops);
    if (dev < 0)
        return dev;
    C.dev = dev;
    return 0;
}

void hl_console_terminal(void)
{
    /* A person at a terminal (both ways): the console server edits the lines. */
    C.terminal = C.in_fd >= 0 && isatty(C.in_fd) && isatty(C.out_fd) && hl_tty_raw(C.in_fd) == 0;
    C.row_len = 0;
}

void hl_console_resized(void)
{
    if (C.terminal)
        post_info();
}

int hl_console_start(void)
{
    if (C.in_fd < 0) {
        /* No input at all: the console sees end of input at once. */
        k_post(C.dev, HAL_CONSOLE_EOF, NULL, 0);
        return 0;
    }
    if (pipe2(C.cancel, O_CLOEXEC) < 0)
        return -errno;
    if (C.terminal)
        post_info();
    hl_lines_init(&C.lines, C.in_fd, C.cancel[0]);
    int rc = pthread_create(&C.reader, NULL, C.terminal ? keys_main : reader_main, NULL);
    if (rc != 0)
        return -rc;
    C.reader_started = true;
    return 0;
}

void hl_console_stop(void)
{
    pthread_mutex_lock(&C.lock);
    C.stopping = true;
    pthread_cond_broadcast(&C.cond);
    pthread_mutex_unlock(&C.lock);
    if (C.cancel[1] >= 0) {
        ssize_t n;
        do {
            n = write(C.cancel[1], "x", 1);
        } while (n < 0 && errno == EINTR);
    }
    if (C.reader_started)
        pthread_join(C.reader, NULL);
    C.reader_started = false;
    for (int i = 0; i < 2; i++) {
        if (C.cancel[i] >= 0)
            close(C.cancel[i]);
        C.cancel[i] = -1;
    }
    if (C.terminal) {
        hl_tty_restore();
        C.terminal = false;
        C.row_len = 0;
    }
}

uint64_t hl_console_full_waits(void)
{
    return __atomic_load_n(&C.full_waits, __ATOMIC_RELAXED);
}
