/* codes.h — the device codes a task sees: end of input, the console's lines and writes, and
 * the network device's frames.
 * Defined here once; the HAL contract (device.h, console.h) and the os API (os/os.h, for
 * servers) both include it. */
#ifndef HAL_CODES_H
#define HAL_CODES_H

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
};

/* The network device (net.h): Ethernet frames. Code 3 is HAL_DEVICE_END on every device. */
enum {
    HAL_NET_MTU = 1514,    /* largest frame, without FCS */
    HAL_NET_FRAME = 1,     /* device <-> task: one Ethernet frame */
    HAL_NET_LINK_UP = 2,   /* device -> task: link came up; data: 6-byte MAC */
    HAL_NET_LINK_DOWN = 4, /* device -> task: link went down */
};

/* A device's own input codes never mean end of input. */
_Static_assert((int)HAL_CONSOLE_LINE != (int)HAL_DEVICE_END &&
                   (int)HAL_CONSOLE_OVERLONG != (int)HAL_DEVICE_END &&
                   (int)HAL_NET_FRAME != (int)HAL_DEVICE_END &&
                   (int)HAL_NET_LINK_UP != (int)HAL_DEVICE_END &&
                   (int)HAL_NET_LINK_DOWN != (int)HAL_DEVICE_END,
               "device codes collide with HAL_DEVICE_END");

#endif
