/* init.h — the init interface: names, spawn/kill/shutdown, on each bootstrap channel. */
#ifndef IFACE_INIT_H
#define IFACE_INIT_H

#include <iface/iface.h>

/*
 * Every task but init holds a channel to init as its initial handle 0.
 * Requests carry a request id chosen by the sender; init answers each with
 * `reply` (status 0 or a negative OS_E* code; value: a task id for spawn and
 * kill) or, for a granted connect, with `connected` carrying the client's end.
 * The server of the interface receives the other end in `new_client`.
 * A message init cannot decode gets `error` (its type and OS_EPROTO).
 *
 * input_ended: the console server tells init that console input ended (after
 * it gave its client every line and the end): init then shuts the OS down
 * if no task is left that can act on it (docs/manifest.md). No reply; init
 * takes it only from the server of the console interface.
 *
 * connect: OS_EPROTO if the registered interface has another id ("interface
 * version mismatch"), OS_EACCES if the manifest's reach list of the caller
 * does not name the interface; an interface not yet registered makes the
 * connect wait until it is.
 */
enum { INIT_NAME_MAX = OS_NAME_MAX - 1 };

#define INIT_MESSAGES(MSG)                                                                         \
    MSG(init, register, 1, (u32, req, 0), (str, name, 31), (u32, id, 0))                           \
    MSG(init, connect, 2, (u32, req, 0), (str, name, 31), (u32, id, 0))                            \
    MSG(init, spawn, 3, (u32, req, 0), (str, program, 31))                                         \
    MSG(init, kill, 4, (u32, req, 0), (u32, task, 0))                                              \
    MSG(init, shutdown, 5, (u32, req, 0), (i32, status, 0))                                        \
    MSG(init, reply, 6, (u32, req, 0), (i32, status, 0), (u32, value, 0))                          \
    MSG(init, connected, 7, (u32, req, 0), (handle, chan, 0))                                      \
    MSG(init, new_client, 8, (str, name, 31), (u32, client, 0), (handle, chan, 0))                 \
    MSG(init, error, 9, (u32, type, 0), (i32, status, 0))                                      \
    MSG(init, input_ended, 10, (u32, lines, 0))

IFACE_DECLARE(init, INIT_MESSAGES)

/* The bootstrap channel: a task's initial handle 0. */
#define INIT_BOOTSTRAP_INDEX 0

#endif
