/* nosys.h — declarations lwIP's unit suite expects from lwIP's NO_SYS=0 API, for NO_SYS 1. */
#ifndef ORRERY_TESTS_LWIP_NOSYS_H
#define ORRERY_TESTS_LWIP_NOSYS_H

/* The ip4 and ip6 suites' teardowns poll the tcpip thread once; with NO_SYS 1 there is none
 * (suites.c defines it as a netif_poll_all()). */
int tcpip_thread_poll_one(void);

#endif
