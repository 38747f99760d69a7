/* all.h — every interface of the image, for iface_gen, trace decoding and fuzzers. */
#ifndef IFACE_ALL_H
#define IFACE_ALL_H

#include <iface/console.h>
#include <iface/echo.h>
#include <iface/fs.h>
#include <iface/init.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <iface/udp.h>

/*
 * X(name, MESSAGES) for each interface of the image. A new interface is its header
 * (servers/include/iface/NAME.h, included above) and one line here: servers/lib/ifaces.c
 * defines every descriptor from this list, and the build computes their ids (iface_gen).
 */
#define ORRERY_IFACES(X)                                                                           \
    X(init, INIT_MESSAGES)                                                                         \
    X(console, CONSOLE_MESSAGES)                                                                   \
    X(echo, ECHO_MESSAGES)                                                                         \
    X(net, NET_MESSAGES)                                                                           \
    X(tcp, TCP_MESSAGES)                                                                           \
    X(udp, UDP_MESSAGES)                                                                           \
    X(fs, FS_MESSAGES)

/* Every interface of ORRERY_IFACES, NULL-terminated. */
extern const iface_t *const iface_all[];

#endif
