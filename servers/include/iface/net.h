/* net.h — the net interface: the tcpip server's status (address, gateway, MAC, frame counters). */
#ifndef IFACE_NET_H
#define IFACE_NET_H

#include <iface/iface.h>

/*
 * `status` is answered with `info`: IPv4 addresses in host order (10.0.2.15 is 0x0a00020f),
 * 0 while there is no address; the MAC (empty before the link came up); frames received
 * and sent; frames dropped (no buffer, lwIP refused it, or the device's ring was full).
 * A malformed request (or any other message) gets `error` with its type and OS_EPROTO.
 */
#define NET_MESSAGES(MSG)                                                                          \
    MSG(net, status, 1, (u32, req, 0))                                                             \
    MSG(net, info, 2, (u32, req, 0), (u32, addr, 0), (u32, mask, 0), (u32, gw, 0),                 \
        (bytes, mac, 6), (u64, rx_frames, 0), (u64, tx_frames, 0), (u64, dropped, 0))              \
    MSG(net, error, 3, (u32, type, 0), (i32, status, 0))

IFACE_DECLARE(net, NET_MESSAGES)

#endif
