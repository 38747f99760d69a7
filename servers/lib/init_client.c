/* init_client.c — register and connect requests to init, shared by every server and client. */
#include <iface/init_client.h>

#include <string.h>

os_handle_t init_channel(os_ctx_t *ctx)
{
    return os_initial_handle(ctx, INIT_BOOTSTRAP_INDEX);
}

int init_register_iface(os_ctx_t *ctx, uint32_t req, const iface_t *iface)
{
    init_register_t m;
    memset(&m, 0, sizeof m);
    m.req = req;
    strncpy(m.name, iface->name, sizeof m.name - 1);
    m.id = iface_id(iface);
    return init_register_send(ctx, init_channel(ctx), &m);
}

int init_connect_iface(os_ctx_t *ctx, uint32_t req, const iface_t *iface)
{
    init_connect_t m;
    memset(&m, 0, sizeof m);
    m.req = req;
    strncpy(m.name, iface->name, sizeof m.name - 1);
    m.id = iface_id(iface);
    return init_connect_send(ctx, init_channel(ctx), &m);
}
