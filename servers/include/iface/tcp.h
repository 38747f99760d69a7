/* tcp.h — the tcp interface: listeners and connections of the tcpip server, one channel each. */
#ifndef IFACE_TCP_H
#define IFACE_TCP_H

#include <iface/iface.h>

/*
 * Three kinds of channel carry this interface (each is tagged with it, so traces decode all):
 *
 * The control channel (from init's connect): requests with a request id chosen by the client.
 *   listen {req, addr, port, backlog} -> listening {req, port, chan}: a listener channel;
 *       addr 0 is every address, port 0 an ephemeral port (the answer names it); backlog is
 *       how many accepted connections may wait in the listener channel (1..64, 0: 16).
 *   connect {req, addr, port}         -> opened {req, port, chan}: a connection channel at
 *       once (port is our local port); `established` or `error` follows on that channel.
 *   Either may be answered `reply {req, status}` instead: OS_EINVAL (address 0, port 0 for
 *   connect, backlog over 64), OS_EADDRINUSE, OS_ENOMEM (lwIP has no pcb), OS_ENOSPC (the
 *   server's connection table is full), OS_EUNREACH (no route, no address yet).
 *
 * A listener channel (server -> client): accepted {addr, port, lport, chan} per connection,
 *   addr/port the remote end. A connection beyond the backlog, or when the listener's queue
 *   is full, is reset and counted. Closing the listener channel closes the listener.
 *
 * A connection channel, both directions:
 *   data {data}         up to TCP_DATA_MAX bytes of the stream, in order.
 *     client -> server: written to lwIP; when lwIP's send buffer cannot take it the server
 *     holds the message and the channel, so the client's next sends get OS_EFULL and an
 *     OS_EV_WRITABLE follows once lwIP has sent enough. Nothing is dropped.
 *     server -> client: when the client's queue is full, the server keeps the rest (lwIP's
 *     receive buffer) and advertises no more window until the client has taken messages:
 *     the window is opened (tcp_recved) only for data queued to the client.
 *   established {laddr, lport, raddr, rport}  (server -> client) a connect's handshake done.
 *   shutdown {how}      (client -> server) how 1: no more data from us (FIN, half close).
 *   eof {bytes}         (server -> client) the peer sent FIN; bytes: the stream's total.
 *   reset {reason}      (client -> server) abort with RST at once.
 *   error {type, status} (server -> client) type 0: the connection failed or ended badly:
 *     OS_ECONNREFUSED, OS_ECONNRESET, OS_ETIMEDOUT, OS_EUNREACH, OS_ENOMEM; then the server
 *     closes the channel. type non-zero: a malformed or unexpected message of that type
 *     (OS_EPROTO, OS_ESTATE: data after shutdown); the connection goes on.
 *   Closing the channel closes the connection gracefully, after the data already sent on it;
 *   the server closes the channel after the peer's FIN and our own close, or after an error.
 *
 * Addresses are IPv4 in host order (10.0.2.15 is 0x0a00020f).
 */
enum { TCP_DATA_MAX = 4092, TCP_BACKLOG_MAX = 64 };

#define TCP_MESSAGES(MSG)                                                                          \
    MSG(tcp, listen, 1, (u32, req, 0), (u32, addr, 0), (u16, port, 0), (u16, backlog, 0))          \
    MSG(tcp, connect, 2, (u32, req, 0), (u32, addr, 0), (u16, port, 0))                            \
    MSG(tcp, reply, 3, (u32, req, 0), (i32, status, 0))                                            \
    MSG(tcp, listening, 4, (u32, req, 0), (u16, port, 0), (handle, chan, 0))                       \
    MSG(tcp, opened, 5, (u32, req, 0), (u16, port, 0), (handle, chan, 0))                          \
    MSG(tcp, accepted, 6, (u32, addr, 0), (u16, port, 0), (u16, lport, 0), (handle, chan, 0))      \
    MSG(tcp, established, 7, (u32, laddr, 0), (u16, lport, 0), (u32, raddr, 0), (u16, rport, 0))   \
    MSG(tcp, data, 8, (bytes, data, 4092))                                                         \
    MSG(tcp, shutdown, 9, (u32, how, 0))                                                           \
    MSG(tcp, eof, 10, (u64, bytes, 0))                                                             \
    MSG(tcp, reset, 11, (u32, reason, 0))                                                          \
    MSG(tcp, error, 12, (u32, type, 0), (i32, status, 0))

IFACE_DECLARE(tcp, TCP_MESSAGES)

#endif
