/* ifaces.c — the descriptors of every interface, generated from their X-macro lists. */
#include <iface/all.h>

IFACE_DEFINE(init, INIT_MESSAGES)
IFACE_DEFINE(console, CONSOLE_MESSAGES)
IFACE_DEFINE(echo, ECHO_MESSAGES)

const iface_t *const iface_all[] = {&init_iface, &console_iface, &echo_iface, NULL};
