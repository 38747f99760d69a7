/* lwipopts.h — Orrery's lwIP options: NO_SYS, raw API, static heap (docs/networking.md). */
#ifndef ORRERY_LWIPOPTS_H
#define ORRERY_LWIPOPTS_H

/* One server thread drives lwIP from its event loop: no OS threads, no locking, no
 * sequential or socket API (clients talk to the server over channels instead). */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_NETIF_API 0

/* Memory: lwIP's own heap in a static array plus its fixed pools, not the C allocator, so
 * the stack's memory is bounded, the same on every platform, and running out of it is
 * lwIP's ERR_MEM on one connection rather than a failure of the server's allocator.
 * The sizes may be raised by a build that includes a header first (#ifndef). */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#ifndef MEM_SIZE
#define MEM_SIZE (512 * 1024)
#endif
#ifndef PBUF_POOL_SIZE
#define PBUF_POOL_SIZE 256
#endif
/* The tcpip server's tables (servers/tcpip/tcpip.h) hold 96 connections, 16 listeners and
 * 16 UDP sockets. Far more TCP pcbs than connections (a pcb is ~200 bytes): a burst of SYNs
 * gets pcbs, and the connections beyond the table are reset at once (a SYN lwIP has no pcb
 * for is dropped silently, and the peer retries for minutes); pcbs that lwIP still closes
 * (FIN_WAIT, TIME_WAIT) after their channel went need them too. */
#ifndef MEMP_NUM_TCP_PCB
#define MEMP_NUM_TCP_PCB 512
#endif
#ifndef MEMP_NUM_TCP_PCB_LISTEN
#define MEMP_NUM_TCP_PCB_LISTEN 16
#endif
#ifndef MEMP_NUM_UDP_PCB
#define MEMP_NUM_UDP_PCB 24
#endif
#ifndef TCP_SND_QUEUELEN
#define TCP_SND_QUEUELEN 40
#endif
/* segments are shared by every connection: more than one connection's queue */
#ifndef MEMP_NUM_TCP_SEG
#define MEMP_NUM_TCP_SEG 256
#endif
/* lwIP's own timeouts plus one per ping in flight (the server's TCPIP_PINGS_MAX) */
#ifndef MEMP_NUM_SYS_TIMEOUT
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
#endif
/* Packets to an address ARP has not resolved yet wait for its reply. lwIP's default keeps
 * only the last one: SYN-ACKs to a burst of clients that arrives before the gateway's
 * address is known (64 connections through a hostfwd right after DHCP) were all lost but one,
 * and each connection then waited ~3 s for TCP's retransmission. */
#define ARP_QUEUEING 1
#ifndef ARP_QUEUE_LEN
#define ARP_QUEUE_LEN 128
#endif
#ifndef MEMP_NUM_ARP_QUEUE
#define MEMP_NUM_ARP_QUEUE 256
#endif

/* Protocols: Ethernet with ARP, IPv4 with ICMP, UDP, TCP, DHCP and DNS; IPv6 too. */
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_IPV4 1
#define LWIP_ICMP 1
#define LWIP_RAW 1 /* an ICMP pcb for the net interface's ping */
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 1
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#ifndef LWIP_DNS
#define LWIP_DNS 1
#endif
#define LWIP_IPV6 1
#define LWIP_IPV6_DHCP6 0
/* ip6_frag.c keeps a pointer in the fragment header, which needs 8 bytes on x86_64: copy it */
#define IPV6_FRAG_COPYHEADER 1
#define IP_REASSEMBLY 1
#define IP_FRAG 1
/* Packets to our own address loop back inside lwIP (the server polls them after every
 * event): a task can connect to another task's listener on this node. */
#ifndef LWIP_NETIF_LOOPBACK
#define LWIP_NETIF_LOOPBACK 1
#endif
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
/* SOF_REUSEADDR on listeners (servers/tcpip/tcp.c): a port is free again while its
 * connections still close */
#define SO_REUSE 1
#ifndef TCP_MSS
#define TCP_MSS 1460
#endif
#ifndef TCP_WND
#define TCP_WND (8 * TCP_MSS)
#endif
#ifndef TCP_SND_BUF
#define TCP_SND_BUF (8 * TCP_MSS)
#endif

/* Checksums are computed and checked in software on every layer: virtio-net and slirp
 * offload nothing we rely on, and the unit suite checks them. */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_GEN_ICMP6 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_UDP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_ICMP 1
#define CHECKSUM_CHECK_ICMP6 1

/* Randomness (initial sequence numbers, ports, DNS ids, DHCP xids) comes from the server,
 * which takes it from the kernel's entropy so a simulation run is reproducible. */
#define LWIP_RAND() orrery_lwip_rand()

/* Counters stay (the unit suite reads them); no debug output. */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define LWIP_DEBUG_TIMERNAMES 0

#endif
