/* echo.h — the echo interface: each request is answered with the same text (tests, benchmarks). */
#ifndef IFACE_ECHO_H
#define IFACE_ECHO_H

#include <iface/iface.h>

/* A malformed request (or any other message) gets `error` with its type and OS_EPROTO. */
#define ECHO_MESSAGES(MSG)                                                                         \
    MSG(echo, request, 1, (u32, id, 0), (str, text, 1024))                                         \
    MSG(echo, reply, 2, (u32, id, 0), (str, text, 1024))                                           \
    MSG(echo, error, 3, (u32, type, 0), (i32, status, 0))

IFACE_DECLARE(echo, ECHO_MESSAGES)

#endif
