/* codes.h — the device codes a task sees: end of input, the console's lines and writes, the
 * network device's frames and the block device's requests.
 * Defined here once; the HAL contract (device.h, console.h) and the os API (os/os.h, for
 * servers) both include it. */
#ifndef HAL_CODES_H
#define HAL_CODES_H

#include <stdint.h>

/* Every device: its input ended (device.h says how the kernel keeps it). */
enum { HAL_DEVICE_END = 3 };

/* The console device (console.h): input line by line, output as bytes. */
enum {
    HAL_CONSOLE_LINE_MAX = 1024,      /* longest accepted input line, without '\n' */
    HAL_CONSOLE_LINE = 1,             /* device -> task: one line, without '\n' */
    HAL_CONSOLE_OVERLONG = 2,         /* device -> task: a line was too long and
                                         dropped; data is its length as uint32_t */
    HAL_CONSOLE_EOF = HAL_DEVICE_END, /* device -> task: input ended */
    HAL_CONSOLE_WRITE = 16,           /* task -> device: bytes to print */
    /* An interactive terminal (never in simulation, never for piped input): */
    HAL_CONSOLE_INFO = 5, /* device -> task, first, when the input is a terminal:
                             hal_console_info_t; task -> device (no data): post it again
                             (a restarted console server) */
    HAL_CONSOLE_KEYS = 6, /* device -> task: keystroke bytes as typed (raw mode: no echo, no
                             line editing, no signals by the terminal) instead of lines */
    HAL_CONSOLE_ROW = 17, /* task -> device: the row being edited, drawn from column 0 (bytes
                             that redraw it; none: no row). The platform's own log lines
                             clear the row, print, and draw it again, so they never split
                             a line being typed */
};

/* HAL_CONSOLE_INFO's data. */
typedef struct hal_console_info {
    uint32_t flags; /* HAL_CONSOLE_TERMINAL */
    uint32_t cols;  /* the terminal's width in columns, 0 unknown */
    uint32_t rows;  /* its height, 0 unknown */
} hal_console_info_t;
enum { HAL_CONSOLE_TERMINAL = 1 };

/* The network device (net.h): Ethernet frames. Code 3 is HAL_DEVICE_END on every device. */
enum {
    HAL_NET_MTU = 1514,    /* largest frame, without FCS */
    HAL_NET_FRAME = 1,     /* device <-> task: one Ethernet frame */
    HAL_NET_LINK_UP = 2,   /* device -> task: link came up; data: 6-byte MAC */
    HAL_NET_LINK_DOWN = 4, /* device -> task: link went down */
};

/*
 * The block device (blk.h): 512-byte sectors. A task writes a request (code READ, WRITE or
 * FLUSH; data: hal_blk_req_t, then for WRITE the count sectors); the device later posts the
 * completion with the same code (data: the hal_blk_req_t with its status, then for a READ
 * that succeeded the count sectors). Requests may complete in any order; id tells them apart.
 * At start the device posts HAL_BLK_INFO (hal_blk_info_t), queued until a task opens it; a
 * task that writes HAL_BLK_INFO with no data (a restarted file-system server, which missed the
 * first) gets it posted again.
 */
#include <stdint.h>

typedef struct hal_blk_req {
    uint64_t id;     /* chosen by the task, echoed in the completion */
    uint64_t sector; /* first sector (FLUSH: 0) */
    uint32_t count;  /* sectors, 1..HAL_BLK_MAX_SECTORS (FLUSH: 0) */
    int32_t status;  /* completion: 0, or OS_EIO, OS_EINVAL (past the end, a bad count),
                        OS_EACCES (a write to a read-only disk) */
} hal_blk_req_t;

typedef struct hal_blk_info {
    uint64_t sectors;     /* capacity */
    uint32_t read_only;   /* 1: writes complete with OS_EACCES */
    uint32_t max_sectors; /* HAL_BLK_MAX_SECTORS */
} hal_blk_info_t;

enum {
    HAL_BLK_SECTOR = 512,
    HAL_BLK_MAX_SECTORS = 7, /* (OS_MSG_MAX_DATA 4096 - 24-byte header) / 512 */
    HAL_BLK_READ = 1,        /* task -> device request, device -> task completion */
    HAL_BLK_WRITE = 2,       /* the same */
    HAL_BLK_FLUSH = 4,       /* the same: everything completed before it is on the medium */
    HAL_BLK_INFO = 5,        /* device -> task at start, and again on request: hal_blk_info_t */
};
_Static_assert(sizeof(hal_blk_req_t) + HAL_BLK_MAX_SECTORS * HAL_BLK_SECTOR <= 4096,
               "a block request with its sectors fits one device message");

/* A device's own input codes never mean end of input. */
_Static_assert((int)HAL_CONSOLE_LINE != (int)HAL_DEVICE_END &&
                   (int)HAL_CONSOLE_OVERLONG != (int)HAL_DEVICE_END &&
                   (int)HAL_CONSOLE_INFO != (int)HAL_DEVICE_END &&
                   (int)HAL_CONSOLE_KEYS != (int)HAL_DEVICE_END &&
                   (int)HAL_NET_FRAME != (int)HAL_DEVICE_END &&
                   (int)HAL_NET_LINK_UP != (int)HAL_DEVICE_END &&
                   (int)HAL_NET_LINK_DOWN != (int)HAL_DEVICE_END &&
                   (int)HAL_BLK_READ != (int)HAL_DEVICE_END &&
                   (int)HAL_BLK_WRITE != (int)HAL_DEVICE_END &&
                   (int)HAL_BLK_FLUSH != (int)HAL_DEVICE_END &&
                   (int)HAL_BLK_INFO != (int)HAL_DEVICE_END,
               "device codes collide with HAL_DEVICE_END");

#endif
