/* console.h — the console interface: input lines to one client, output from it. */
#ifndef IFACE_CONSOLE_H
#define IFACE_CONSOLE_H

#include <iface/iface.h>

/*
 * console -> client: `line` (one input line, without '\n'), `overlong` (a line
 * longer than CONSOLE_LINE_MAX was dropped; its length), `eof` (input ended;
 * lines forwarded in all), `flushed` (answer to flush), `error` (the client's
 * message of `type` was malformed).
 * client -> console: `write` (bytes to print), `flush` (answered by `flushed`
 * with the same token once everything written before it reached the device),
 * `read` (the client can take `count` more input items: line or overlong).
 *
 * Input is pulled: the console sends a line only against a `read`, keeps what
 * the client has not asked for, and while its buffer is full it holds the
 * device (os_handle_hold), so input waits in the kernel and then at the
 * platform — nothing is dropped, however fast it is piped in. `eof` needs no
 * `read`; it follows the last buffered item.
 */
enum { CONSOLE_LINE_MAX = 1024, CONSOLE_WRITE_MAX = 4000 };

#define CONSOLE_MESSAGES(MSG)                                                                      \
    MSG(console, line, 1, (str, text, 1024))                                                       \
    MSG(console, overlong, 2, (u32, length, 0))                                                    \
    MSG(console, eof, 3, (u32, lines, 0))                                                          \
    MSG(console, write, 4, (bytes, data, 4000))                                                    \
    MSG(console, flush, 5, (u32, token, 0))                                                        \
    MSG(console, flushed, 6, (u32, token, 0))                                                      \
    MSG(console, error, 7, (u32, type, 0), (i32, status, 0))                                       \
    MSG(console, read, 8, (u32, count, 0))

IFACE_DECLARE(console, CONSOLE_MESSAGES)

/* The console device's own codes (HAL_CONSOLE_*) come with <os/os.h>. */

#endif
