/* udp.c — the tcpip server's udp interface: a channel per bound socket (iface/udp.h). */
#include "tcpip.h"

#include <string.h>

#include "lwip/udp.h"

static int map_err(err_t e)
{
    switch (e) {
    case ERR_USE:
        return OS_EADDRINUSE;
    case ERR_MEM:
    case ERR_BUF:
        return OS_ENOMEM;
    case ERR_RTE:
        return OS_EUNREACH;
    case ERR_VAL:
    case ERR_ARG:
        return OS_EINVAL;
    default:
        return OS_EIO;
    }
}

static void proto_error(os_ctx_t *ctx, os_handle_t ch, const os_event_t *ev, int status)
{
    iface_discard(ctx, ev);
    udp_error_t e = {ev->type, status};
    udp_error_send(ctx, ch, &e);
}

/* A datagram for a socket: to its client, or dropped and counted when its queue is full. */
static void on_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                    u16_t port)
{
    (void)pcb;
    tcpip_udp_t *u = arg;
    if (u == NULL) {
        pbuf_free(p);
        return;
    }
    tcpip_state_t *st = tcpip_st();
    udp_recvfrom_t *m = &st->msg.recvfrom;
    if (p->tot_len > UDP_DATA_MAX || !IP_IS_V4(addr)) {
        st->other_dropped++;
        pbuf_free(p);
        return;
    }
    m->addr = tcpip_host_order(ip_2_ip4(addr));
    m->port = port;
    m->data_len = pbuf_copy_partial(p, m->data, p->tot_len, 0);
    pbuf_free(p);
    if (udp_recvfrom_send(tcpip_ctx(), u->chan, m) < 0)
        st->other_dropped++; /* UDP may lose datagrams: the client's queue is full */
}

void udp_forget_all(void)
{
    struct udp_pcb *p = udp_pcbs;
    while (p != NULL) {
        struct udp_pcb *next = p->next;
        if (p->recv == on_recv)
            udp_remove(p); /* the previous task's sockets; DHCP's and DNS's stay */
        p = next;
    }
}

static void on_bind(os_ctx_t *ctx, tcpip_state_t *st, os_handle_t ch, const udp_bind_t *m)
{
    udp_reply_t r = {m->req, 0};
    tcpip_udp_t *u = NULL;
    for (int i = 0; i < TCPIP_UDP_MAX && u == NULL; i++)
        if (st->udps[i].chan == OS_HANDLE_NONE)
            u = &st->udps[i];
    struct udp_pcb *pcb = u ? udp_new_ip_type(IPADDR_TYPE_V4) : NULL;
    if (pcb == NULL) {
        r.status = u == NULL ? OS_ENOSPC : OS_ENOMEM;
        udp_reply_send(ctx, ch, &r);
        return;
    }
    ip_addr_t a;
    ip_addr_set_ip4_u32_val(a, lwip_htonl(m->addr));
    err_t e = udp_bind(pcb, &a, m->port);
    os_handle_t mine, theirs;
    if (e != ERR_OK || os_channel_create(ctx, &mine, &theirs) < 0) {
        udp_remove(pcb);
        r.status = e != ERR_OK ? map_err(e) : OS_ENOSPC;
        udp_reply_send(ctx, ch, &r);
        return;
    }
    os_channel_tag(ctx, mine, iface_id(&udp_iface));
    udp_bound_t b = {m->req, pcb->local_port, theirs};
    if (udp_bound_send(ctx, ch, &b) < 0) {
        os_handle_close(ctx, mine);
        os_handle_close(ctx, theirs);
        udp_remove(pcb);
        return;
    }
    u->chan = mine;
    u->pcb = pcb;
    udp_recv(pcb, on_recv, u);
}

void udp_on_control(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    udp_bind_t m;
    if (ev->type == udp_msg_bind && udp_bind_decode(ev, &m) == 0)
        on_bind(ctx, st, ev->handle, &m);
    else
        proto_error(ctx, ev->handle, ev, OS_EPROTO);
}

static void on_sendto(os_ctx_t *ctx, tcpip_state_t *st, tcpip_udp_t *u, const os_event_t *ev)
{
    udp_sendto_t *m = &st->msg.sendto;
    if (udp_sendto_decode(ev, m) < 0) {
        proto_error(ctx, u->chan, ev, OS_EPROTO);
        return;
    }
    udp_error_t e = {udp_msg_sendto, 0};
    if (m->addr == 0 || m->port == 0) {
        e.status = OS_EINVAL;
        udp_error_send(ctx, u->chan, &e);
        return;
    }
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)m->data_len, PBUF_RAM);
    if (p == NULL) {
        e.status = OS_ENOMEM;
        udp_error_send(ctx, u->chan, &e);
        return;
    }
    memcpy(p->payload, m->data, m->data_len);
    ip_addr_t a;
    ip_addr_set_ip4_u32_val(a, lwip_htonl(m->addr));
    err_t err = udp_sendto(u->pcb, p, &a, m->port);
    pbuf_free(p);
    if (err != ERR_OK) {
        e.status = map_err(err);
        udp_error_send(ctx, u->chan, &e);
    }
}

bool udp_on_channel(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    tcpip_udp_t *u = NULL;
    for (int i = 0; i < TCPIP_UDP_MAX && u == NULL; i++)
        if (st->udps[i].chan != OS_HANDLE_NONE && st->udps[i].chan == ev->handle)
            u = &st->udps[i];
    if (u == NULL)
        return false;
    if (ev->kind == OS_EV_MESSAGE) {
        if (ev->type == udp_msg_sendto)
            on_sendto(ctx, st, u, ev);
        else
            proto_error(ctx, u->chan, ev, OS_EPROTO);
    } else if (ev->kind == OS_EV_PEER_CLOSED) {
        udp_remove(u->pcb);
        os_handle_close(ctx, u->chan);
        u->chan = OS_HANDLE_NONE;
        u->pcb = NULL;
    }
    return true;
}
