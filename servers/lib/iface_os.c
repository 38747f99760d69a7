/* iface_os.c — the codec meets the os API: send an interface message, drop a rejected one. */
#include <iface/iface.h>

#include <stdint.h>

int iface_send(os_ctx_t *ctx, os_handle_t ch, const iface_t *iface, uint32_t number,
               const void *msg)
{
    const iface_msg_t *m = iface_msg(iface, number);
    uint8_t buf[OS_MSG_MAX_DATA];
    os_handle_t handles[OS_MSG_MAX_HANDLES];
    size_t len, nh;

    if (!m)
        return OS_EINVAL;
    int err = iface_encode(m, msg, buf, sizeof buf, &len, handles, &nh);
    if (err < 0)
        return err;
    return os_send(ctx, ch, number, buf, len, handles, nh);
}

void iface_discard(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind != OS_EV_MESSAGE)
        return;
    for (size_t i = 0; i < ev->nhandles && i < OS_MSG_MAX_HANDLES; i++) {
        if (ev->handles[i] != OS_HANDLE_NONE)
            os_handle_close(ctx, ev->handles[i]);
    }
}
