/* console.h — HAL contract: the console device (line input, byte output). */
#ifndef HAL_CONSOLE_H
#define HAL_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include <hal/device.h>

/*
 * The console is a device named "console" (see device.h). Each platform
 * registers it before boot. Input is posted line by line with these codes;
 * output is written with HAL_CONSOLE_WRITE. Hosted: stdin/stdout (lines in
 * order also when stdin is a pipe). Simulated: scripted input. Bare metal: 16550.
 */
enum {
    HAL_CONSOLE_LINE_MAX = 1024, /* longest accepted input line, without '\n' */
    HAL_CONSOLE_LINE = 1,        /* device -> task: one line, without '\n' */
    HAL_CONSOLE_OVERLONG = 2,    /* device -> task: a line was too long and
                                    dropped; data is its length as uint32_t */
    HAL_CONSOLE_EOF = HAL_DEVICE_END, /* device -> task: input ended (kept: device.h) */
    HAL_CONSOLE_WRITE = 16,      /* task -> device: bytes to print */
};

/*
 * Write bytes straight to the console, bypassing any task: for kernel log
 * lines and panics. Callable from any thread; each call is written whole
 * (not interleaved with another call).
 */
void hal_console_write(const void *buf, size_t len);

#endif
