/* udp.h — the udp interface: a channel per bound UDP socket of the tcpip server. */
#ifndef IFACE_UDP_H
#define IFACE_UDP_H

#include <iface/iface.h>

/*
 * The control channel (from init's connect):
 *   bind {req, addr, port} -> bound {req, port, chan}: a socket channel (addr 0: every
 *     address; port 0: an ephemeral port, named in the answer), or reply {req, status}:
 *     OS_EINVAL, OS_EADDRINUSE, OS_ENOMEM, OS_ENOSPC.
 * A socket channel, both directions:
 *   sendto {addr, port, data}   (client -> server) one datagram, up to UDP_DATA_MAX bytes.
 *     A datagram lwIP cannot send (no route, no memory) gets error {udp_msg_sendto, status}.
 *   recvfrom {addr, port, data} (server -> client) one datagram received. When the client's
 *     queue is full the datagram is dropped and counted (UDP may lose datagrams).
 *   error {type, status} a malformed message (OS_EPROTO) or a failed send.
 *   Closing the channel unbinds the socket.
 * Addresses are IPv4 in host order.
 */
enum { UDP_DATA_MAX = 1472 };

#define UDP_MESSAGES(MSG)                                                                          \
    MSG(udp, bind, 1, (u32, req, 0), (u32, addr, 0), (u16, port, 0))                               \
    MSG(udp, reply, 2, (u32, req, 0), (i32, status, 0))                                            \
    MSG(udp, bound, 3, (u32, req, 0), (u16, port, 0), (handle, chan, 0))                           \
    MSG(udp, sendto, 4, (u32, addr, 0), (u16, port, 0), (bytes, data, 1472))                       \
    MSG(udp, recvfrom, 5, (u32, addr, 0), (u16, port, 0), (bytes, data, 1472))                     \
    MSG(udp, error, 6, (u32, type, 0), (i32, status, 0))

IFACE_DECLARE(udp, UDP_MESSAGES)

#endif
