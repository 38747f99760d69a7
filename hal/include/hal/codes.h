/* codes.h — the device codes a task sees: end of input, and the console's lines and writes.
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

#endif
