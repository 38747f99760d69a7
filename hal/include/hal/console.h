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
 *
 * A platform whose input is a person's terminal (hosted: stdin and stdout are
 * ttys; bare metal: "tty" on the command line; simulated: never) posts
 * HAL_CONSOLE_INFO first and then raw keystrokes (HAL_CONSOLE_KEYS) instead of
 * lines, and owes: the terminal in raw mode while it runs and its mode given
 * back however the run ends; HAL_CONSOLE_INFO posted again when a task writes
 * that code; the last HAL_CONSOLE_ROW written kept, so that hal_console_write
 * clears that row first and draws it again after its own text.
 */

/*
 * Write bytes straight to the console, bypassing any task: for kernel log
 * lines and panics. Callable from any thread; each call is written whole
 * (not interleaved with another call).
 */
void hal_console_write(const void *buf, size_t len);

#endif
