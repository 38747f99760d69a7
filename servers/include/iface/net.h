/* net.h — the net interface: the tcpip server's status, counters, name lookup, ping, netstat. */
#ifndef IFACE_NET_H
#define IFACE_NET_H

#include <iface/iface.h>

/*
 * Requests carry a request id chosen by the client; answers repeat it.
 *   status {req}  -> info {req, addr, mask, gw, dns, mac, dhcp} then counters {req, ...}.
 *     IPv4 addresses in host order (10.0.2.15 is 0x0a00020f), 0 while there is none; the
 *     MAC (empty before the link came up); dhcp 1 when the address came by DHCP, 0 static.
 *     counters: frames and bytes received and sent; rx_dropped: frames the server could
 *     not take (no buffer, lwIP refused it, malformed); tx_dropped: frames the device
 *     refused (its ring was full); other_dropped: connections reset beyond a listener's
 *     backlog plus datagrams dropped for a client's full queue.
 *   resolve {req, name} -> resolved {req, addr}, or failed {req, status}: OS_ENOENT (no
 *     such name), OS_ETIMEDOUT, OS_EUNREACH (no DNS server), OS_EINVAL (bad name).
 *     A dotted IPv4 address resolves to itself.
 *   ping {req, addr, seq, size, timeout_ms} -> pong {req, addr, seq, size, ttl, rtt_ns}
 *     (the ICMP echo answer; rtt in the kernel clock) or failed {req, OS_ETIMEDOUT} after
 *     timeout_ms (0: 1000), OS_EUNREACH, OS_EBUSY (too many pings at once), OS_EINVAL
 *     (addr 0, size over NET_PING_MAX, timeout_ms over NET_PING_TIMEOUT_MAX: an hour).
 *   conns {req} -> conn {req, proto, state, laddr, lport, raddr, rport, queued} for each
 *     TCP pcb (listeners included) and UDP socket, then conns_end {req, count}. proto 6 or
 *     17; state lwIP's tcp_state (0 CLOSED, 1 LISTEN, 2 SYN_SENT, 3 SYN_RCVD, 4 ESTABLISHED,
 *     5 FIN_WAIT_1, 6 FIN_WAIT_2, 7 CLOSE_WAIT, 8 CLOSING, 9 LAST_ACK, 10 TIME_WAIT; 0 for
 *     UDP); queued: bytes waiting to be sent (TCP) or held for the client.
 * A malformed request (or any other message) gets error {type, OS_EPROTO}.
 */
enum { NET_NAME_MAX = 253, NET_PING_MAX = 1400, NET_PING_TIMEOUT_MAX = 3600000 };

#define NET_MESSAGES(MSG)                                                                          \
    MSG(net, status, 1, (u32, req, 0))                                                             \
    MSG(net, info, 2, (u32, req, 0), (u32, addr, 0), (u32, mask, 0), (u32, gw, 0), (u32, dns, 0),  \
        (bytes, mac, 6), (u8, dhcp, 0))                                                            \
    MSG(net, error, 3, (u32, type, 0), (i32, status, 0))                                           \
    MSG(net, counters, 4, (u32, req, 0), (u64, rx_frames, 0), (u64, tx_frames, 0),                 \
        (u64, rx_bytes, 0), (u64, tx_bytes, 0), (u64, rx_dropped, 0), (u64, tx_dropped, 0),        \
        (u64, other_dropped, 0))                                                                   \
    MSG(net, resolve, 5, (u32, req, 0), (str, name, 253))                                          \
    MSG(net, resolved, 6, (u32, req, 0), (u32, addr, 0))                                           \
    MSG(net, failed, 7, (u32, req, 0), (i32, status, 0))                                           \
    MSG(net, ping, 8, (u32, req, 0), (u32, addr, 0), (u16, seq, 0), (u16, size, 0),               \
        (u32, timeout_ms, 0))                                                                      \
    MSG(net, pong, 9, (u32, req, 0), (u32, addr, 0), (u16, seq, 0), (u16, size, 0), (u8, ttl, 0), \
        (u64, rtt_ns, 0))                                                                          \
    MSG(net, conns, 10, (u32, req, 0))                                                             \
    MSG(net, conn, 11, (u32, req, 0), (u8, proto, 0), (u8, state, 0), (u32, laddr, 0),             \
        (u16, lport, 0), (u32, raddr, 0), (u16, rport, 0), (u32, queued, 0))                       \
    MSG(net, conns_end, 12, (u32, req, 0), (u32, count, 0))

IFACE_DECLARE(net, NET_MESSAGES)

#endif
