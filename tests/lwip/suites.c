/* suites.c — the lwIP unit suites that do not apply to Orrery's options, as empty suites. */
#include "lwip_check.h"

#include "api/test_sockets.h"
#include "mdns/test_mdns.h"
#include "lwip/netif.h"
#include "nosys.h"

/* lwIP's socket API is off (LWIP_SOCKET 0, NO_SYS 1): clients reach the stack through the
 * tcpip server's channels, so the sockets suite has nothing to test. */
Suite *sockets_suite(void)
{
    return suite_create("SOCKETS (not built: LWIP_SOCKET 0)");
}

/* The mDNS responder (an lwIP app needing IGMP) is not part of Orrery's stack. */
Suite *mdns_suite(void)
{
    return suite_create("MDNS (not built: LWIP_MDNS_RESPONDER 0, LWIP_IGMP 0)");
}

/* The ip4 and ip6 suites' teardowns poll the tcpip thread once, which in lwIP's NO_SYS=0
 * test set-up runs the netif_poll callbacks that loopback output scheduled. With NO_SYS 1
 * there is no tcpip thread: the main loop delivers looped-back packets by calling
 * netif_poll_all() (as the tcpip server's loop will), so that is what this does. */
int tcpip_thread_poll_one(void)
{
    netif_poll_all();
    return 0;
}
