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
 *
 * When the input is a terminal (the platform says so: HAL_CONSOLE_INFO) the console edits the
 * line itself (console_edit.h: keys, history, Ctrl-R) and shows what clients write with its
 * control bytes escaped ("\x1b[31m"), so no task can wreck the terminal. Then also:
 * console -> client: `terminal` (sent when the console learns it, and to each new client:
 * the terminal's size, 0 unknown); `interrupt` (Ctrl-C typed while no line was asked for:
 * stop the command; count: Ctrl-Cs so far); `complete` (Tab: req, and the line up to the
 * cursor; answer with `candidates`); `key` (keystrokes, while the client asked for them).
 * client -> console: `candidates` (for `complete` req: the word to complete starts at byte
 * `start` of text; names: the words it may become, each ended by a NUL; none: nothing
 * completes); `control` (bytes for the terminal as they are: clearing the screen, moving
 * the cursor; dropped when the console is not a terminal); `keys` (on 1: send keystrokes
 * as `key` instead of editing a line, Ctrl-C still as `interrupt`; on 0: back to lines);
 * `history` (print the lines entered so far, numbered, oldest first, at most the last
 * `max`, 0: all: as if written at this point of the output).
 * Over a pipe none of these is sent, and `control` and `keys` do nothing.
 */
enum {
    CONSOLE_LINE_MAX = 1024,
    CONSOLE_WRITE_MAX = 4000,
    CONSOLE_KEY_MAX = 64,     /* keystroke bytes in one `key` */
    CONSOLE_NAMES_MAX = 4000, /* bytes of `candidates` names */
};

#define CONSOLE_MESSAGES(MSG)                                                                      \
    MSG(console, line, 1, (str, text, 1024))                                                       \
    MSG(console, overlong, 2, (u32, length, 0))                                                    \
    MSG(console, eof, 3, (u32, lines, 0))                                                          \
    MSG(console, write, 4, (bytes, data, 4000))                                                    \
    MSG(console, flush, 5, (u32, token, 0))                                                        \
    MSG(console, flushed, 6, (u32, token, 0))                                                      \
    MSG(console, error, 7, (u32, type, 0), (i32, status, 0))                                       \
    MSG(console, read, 8, (u32, count, 0))                                                         \
    MSG(console, terminal, 9, (u32, cols, 0), (u32, rows, 0))                                      \
    MSG(console, interrupt, 10, (u32, count, 0))                                                   \
    MSG(console, complete, 11, (u32, req, 0), (str, text, 1024))                                   \
    MSG(console, candidates, 12, (u32, req, 0), (u32, start, 0), (bytes, names, 4000))             \
    MSG(console, control, 13, (bytes, data, 256))                                                  \
    MSG(console, keys, 14, (u32, on, 0))                                                           \
    MSG(console, key, 15, (bytes, data, 64))                                                       \
    MSG(console, history, 16, (u32, max, 0))

IFACE_DECLARE(console, CONSOLE_MESSAGES)

/* The console device's own codes (HAL_CONSOLE_*) come with <os/os.h>. */

#endif
