/* init_client.h — what every task says to init on its bootstrap channel (handle 0). */
#ifndef IFACE_INIT_CLIENT_H
#define IFACE_INIT_CLIENT_H

#include <iface/init.h>

/* The bootstrap channel to init (initial handle 0). */
os_handle_t init_channel(os_ctx_t *ctx);
/* Register iface (its name and computed id) as served by us; init answers `reply` with req. */
int init_register_iface(os_ctx_t *ctx, uint32_t req, const iface_t *iface);
/* Ask for a channel to iface's server; init answers `connected` (or `reply` with an error). */
int init_connect_iface(os_ctx_t *ctx, uint32_t req, const iface_t *iface);

#endif
