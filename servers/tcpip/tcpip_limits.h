/* tcpip_limits.h — the tcpip server's table sizes and limits (docs/networking.md, Limits). */
#ifndef ORRERY_TCPIP_LIMITS_H
#define ORRERY_TCPIP_LIMITS_H

#include <os/os.h>

/*
 * Limits. The task has OS_HANDLES_MAX (256) handles: init's channel, net0, the timer, the
 * control channels, one per listener, connection and UDP socket (179 at most), and a margin
 * for the channel pair a listen, connect, accept or bind creates before it sends one end.
 */
enum {
    TCPIP_NS_PER_MS = 1000000,
    TCPIP_TASKS_SEEN = 64,
    TCPIP_CLIENTS_MAX = 48,   /* control channels of net, tcp and udp together */
    TCPIP_CONNS_MAX = 96,     /* TCP connections with a channel */
    TCPIP_LISTENERS_MAX = 16, /* TCP listeners */
    TCPIP_UDP_MAX = 16,       /* bound UDP sockets */
    TCPIP_RESOLVES_MAX = 8,   /* name lookups in flight */
    TCPIP_PINGS_MAX = 8,      /* pings in flight (lwipopts.h: MEMP_NUM_SYS_TIMEOUT) */
    TCPIP_CHANS_SEEN = 1024,  /* os_chan_list entries read to count a listener's queue */
    TCPIP_BACKLOG_DEFAULT = 16,
    TCPIP_REQ_REGISTER = 1,     /* init requests: net, tcp, udp follow */
    TCPIP_ARG_MAX = 255,        /* the spawn argument (the manifest's arg=) */
    TCPIP_TXQ_MAX = 64,         /* frames waiting for room in the device's transmit ring */
    TCPIP_TX_RETRY_NS = 200000, /* and how soon they are tried again */
    TCPIP_LOOP_ROUNDS = 16,     /* netif_poll rounds per event for looped-back packets */
};

#endif
