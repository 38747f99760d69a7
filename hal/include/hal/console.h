/* console.h — HAL contract: the console device (line input, byte output). */
#ifndef HAL_CONSOLE_H
#define HAL_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include <hal/codes.h> /* HAL_CONSOLE_*: the codes */
#include <hal/device.h>

/*
 * The console is a device named "console" (see device.h). Each platform
 * registers it before boot. Input is posted line by line with the codes of
 * hal/codes.h;
 * output is written with HAL_CONSOLE_WRITE. Hosted: stdin/stdout (lines in
 * order also when stdin is a pipe). Simulated: scripted input. Bare metal: 16550.
 */

/*
 * Write bytes straight to the console, bypassing any task: for kernel log
 * lines and panics. Callable from any thread; each call is written whole
 * (not interleaved with another call).
 */
void hal_console_write(const void *buf, size_t len);

#endif
