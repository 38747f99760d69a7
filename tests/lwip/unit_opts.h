/* unit_opts.h — what lwIP's unit suite needs beyond Orrery's lwipopts.h (included first). */
#ifndef ORRERY_TESTS_LWIP_UNIT_OPTS_H
#define ORRERY_TESTS_LWIP_UNIT_OPTS_H

/* Exposes lwIP internals the tests reach into. */
#define LWIP_TESTMODE 1
/* The mem and pbuf suites refuse to build with DNS (dns_init allocates); no suite tests DNS. */
#define LWIP_DNS 0
/* Sizes as in the suite's own lwipopts.h: its tcp and pbuf expectations are computed from
 * them (the default MSS of 536, windows and queues in MSS units, a pool of 400 pbufs). */
#define TCP_MSS 536
#define MEM_SIZE 16000
#define TCP_SND_QUEUELEN 40
#define TCP_SND_BUF (12 * TCP_MSS)
#define TCP_WND (10 * TCP_MSS)
#define PBUF_POOL_SIZE 400
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 0
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
/* Options the suites test: etharp's static entries, ip4 reassembly's MIB2 counters, the
 * netif extended status callback, loopback (freed by the ip4/ip6 teardowns). */
#define ETHARP_SUPPORT_STATIC_ENTRIES 1
#define MIB2_STATS 1
#define LWIP_NETIF_EXT_STATUS_CALLBACK 1
#define LWIP_NETIF_LOOPBACK 1
#define LWIP_HAVE_LOOPIF 1
/* The mem suite frees bad pointers on purpose and checks lwip_stats.mem.illegal. */
#define LWIP_MEM_ILLEGAL_FREE(msg)

#endif
