/* netq.c — the tcpip server's net interface: status and counters, name lookup (lwIP's DNS),
 * ping (a raw ICMP pcb), and the list of connections (iface/net.h). */
#include "tcpip.h"

#include <string.h>

#include "lwip/dns.h"
#include "lwip/inet_chksum.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/icmp.h"
#include "lwip/prot/ip4.h"
#include "lwip/raw.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"

enum {
    PING_ID = 0x4f52,            /* our ICMP echo identifier ("OR") */
    PING_TIMEOUT_DEFAULT = 1000, /* ms */
};

static struct raw_pcb *ping_pcb; /* one per process, like lwIP */

/*
 * lwIP's callbacks for lookups and pings outlive a task that dies, so their argument is
 * (generation << 8 | slot): a callback of a previous task finds another generation.
 */
static void *slot_arg(int i)
{
    return (void *)(uintptr_t)(tcpip_generation() << 8 | (uint32_t)i);
}

static int slot_of(void *arg, int max)
{
    uintptr_t v = (uintptr_t)arg;
    if ((uint32_t)(v >> 8) != tcpip_generation() || (int)(v & 0xff) >= max)
        return -1;
    return (int)(v & 0xff);
}

static void failed(os_ctx_t *ctx, os_handle_t ch, uint32_t req, int status)
{
    net_failed_t f = {req, status};
    net_failed_send(ctx, ch, &f);
}

/* ---- status ------------------------------------------------------------------------------- */

static void on_status(os_ctx_t *ctx, tcpip_state_t *st, os_handle_t ch, uint32_t req)
{
    net_info_t r;
    memset(&r, 0, sizeof r);
    r.req = req;
    struct netif *nif = netif_default;
    if (st->have_netif && nif != NULL) {
        r.addr = tcpip_host_order(netif_ip4_addr(nif));
        r.mask = tcpip_host_order(netif_ip4_netmask(nif));
        r.gw = tcpip_host_order(netif_ip4_gw(nif));
        memcpy(r.mac, st->mac, 6);
        r.mac_len = 6;
    }
    const ip_addr_t *dns = dns_getserver(0);
    if (dns != NULL && IP_IS_V4(dns))
        r.dns = tcpip_host_order(ip_2_ip4(dns));
    r.dhcp = st->is_static ? 0 : 1;
    net_counters_t c = {
        .req = req,
        .rx_frames = st->rx_frames,
        .tx_frames = st->tx_frames,
        .rx_bytes = st->rx_bytes,
        .tx_bytes = st->tx_bytes,
        .rx_dropped = st->rx_dropped,
        .tx_dropped = st->tx_dropped,
        .other_dropped = st->other_dropped,
    };
    /* a client that does not read loses its answers */
    if (net_info_send(ctx, ch, &r) == 0)
        net_counters_send(ctx, ch, &c);
}

/* ---- resolve ------------------------------------------------------------------------------ */

static void on_found(const char *name, const ip_addr_t *addr, void *arg)
{
    (void)name;
    tcpip_state_t *st = tcpip_st();
    int i = slot_of(arg, TCPIP_RESOLVES_MAX);
    if (i < 0 || !st->resolves[i].used)
        return;
    tcpip_resolve_t *r = &st->resolves[i];
    r->used = false;
    if (addr == NULL || !IP_IS_V4(addr)) {
        /* lwIP reports a name that does not exist and a server that never answered alike */
        failed(tcpip_ctx(), r->chan, r->req, OS_ENOENT);
        return;
    }
    net_resolved_t m = {r->req, tcpip_host_order(ip_2_ip4(addr))};
    net_resolved_send(tcpip_ctx(), r->chan, &m);
}

static void on_resolve(os_ctx_t *ctx, tcpip_state_t *st, os_handle_t ch, const net_resolve_t *m)
{
    if (m->name[0] == 0) {
        failed(ctx, ch, m->req, OS_EINVAL);
        return;
    }
    int i = 0;
    while (i < TCPIP_RESOLVES_MAX && st->resolves[i].used)
        i++;
    if (i == TCPIP_RESOLVES_MAX) {
        failed(ctx, ch, m->req, OS_EBUSY);
        return;
    }
    ip_addr_t addr;
    err_t e =
        dns_gethostbyname_addrtype(m->name, &addr, on_found, slot_arg(i), LWIP_DNS_ADDRTYPE_IPV4);
    if (e == ERR_OK) {
        net_resolved_t r = {m->req, tcpip_host_order(ip_2_ip4(&addr))};
        net_resolved_send(ctx, ch, &r);
    } else if (e == ERR_INPROGRESS) {
        st->resolves[i] = (tcpip_resolve_t){.used = true, .chan = ch, .req = m->req};
    } else if (e == ERR_MEM) {
        failed(ctx, ch, m->req, OS_EBUSY); /* lwIP's table of lookups is full */
    } else {
        const ip_addr_t *server = dns_getserver(0);
        bool none = server == NULL || ip_addr_isany(server);
        failed(ctx, ch, m->req, none ? OS_EUNREACH : OS_EINVAL);
    }
}

/* ---- ping --------------------------------------------------------------------------------- */

static void ping_timeout(void *arg)
{
    tcpip_state_t *st = tcpip_st();
    int i = slot_of(arg, TCPIP_PINGS_MAX);
    if (i < 0 || !st->pings[i].used)
        return;
    st->pings[i].used = false;
    failed(tcpip_ctx(), st->pings[i].chan, st->pings[i].req, OS_ETIMEDOUT);
}

/* Every ICMP packet comes here first: ours are echo replies with our id; the rest go on. */
static u8_t ping_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr)
{
    (void)arg;
    (void)pcb;
    struct ip_hdr iph;
    struct icmp_echo_hdr icmp;
    if (p->tot_len < sizeof iph || pbuf_copy_partial(p, &iph, sizeof iph, 0) != sizeof iph)
        return 0;
    u16_t hlen = (u16_t)(IPH_HL(&iph) * 4);
    if (p->tot_len < hlen + sizeof icmp ||
        pbuf_copy_partial(p, &icmp, sizeof icmp, hlen) != sizeof icmp)
        return 0;
    if (icmp.type != ICMP_ER || lwip_ntohs(icmp.id) != PING_ID || !IP_IS_V4(addr))
        return 0;
    tcpip_state_t *st = tcpip_st();
    uint32_t from = tcpip_host_order(ip_2_ip4(addr));
    uint16_t seq = lwip_ntohs(icmp.seqno);
    for (int i = 0; i < TCPIP_PINGS_MAX; i++) {
        tcpip_ping_t *q = &st->pings[i];
        if (!q->used || q->seq != seq || q->addr != from)
            continue;
        os_ctx_t *ctx = tcpip_ctx();
        q->used = false;
        sys_untimeout(ping_timeout, slot_arg(i));
        net_pong_t m = {
            .req = q->req,
            .addr = from,
            .seq = seq,
            .size = (uint16_t)(p->tot_len - hlen - sizeof icmp),
            .ttl = IPH_TTL(&iph),
            .rtt_ns = os_clock_now(ctx) - q->sent_ns,
        };
        net_pong_send(ctx, q->chan, &m);
        break;
    }
    pbuf_free(p);
    return 1; /* an echo reply of ours (or a late one): nobody else wants it */
}

void net_ping_init(void)
{
    ping_pcb = raw_new(IP_PROTO_ICMP);
    if (ping_pcb != NULL)
        raw_recv(ping_pcb, ping_recv, NULL);
}

static void on_ping(os_ctx_t *ctx, tcpip_state_t *st, os_handle_t ch, const net_ping_t *m)
{
    /* lwIP asserts on a timeout over UINT32_MAX/4 ms: a client must not panic the server */
    if (m->addr == 0 || m->size > NET_PING_MAX || m->timeout_ms > NET_PING_TIMEOUT_MAX) {
        failed(ctx, ch, m->req, OS_EINVAL);
        return;
    }
    int i = 0;
    while (i < TCPIP_PINGS_MAX && st->pings[i].used)
        i++;
    if (i == TCPIP_PINGS_MAX || ping_pcb == NULL) {
        failed(ctx, ch, m->req, OS_EBUSY);
        return;
    }
    struct pbuf *p = pbuf_alloc(PBUF_IP, (u16_t)(sizeof(struct icmp_echo_hdr) + m->size), PBUF_RAM);
    if (p == NULL) {
        failed(ctx, ch, m->req, OS_EBUSY);
        return;
    }
    struct icmp_echo_hdr *h = p->payload;
    h->type = ICMP_ECHO;
    h->code = 0;
    h->chksum = 0;
    h->id = lwip_htons(PING_ID);
    h->seqno = lwip_htons(m->seq);
    uint8_t *data = (uint8_t *)(h + 1);
    for (uint16_t k = 0; k < m->size; k++)
        data[k] = (uint8_t)('a' + k % 26);
    h->chksum = inet_chksum(h, p->len);
    ip_addr_t a;
    ip_addr_set_ip4_u32_val(a, lwip_htonl(m->addr));
    st->pings[i] = (tcpip_ping_t){
        .used = true,
        .chan = ch,
        .req = m->req,
        .addr = m->addr,
        .seq = m->seq,
        .size = m->size,
        .sent_ns = os_clock_now(ctx),
    };
    err_t e = raw_sendto(ping_pcb, p, &a);
    pbuf_free(p);
    if (e != ERR_OK) {
        st->pings[i].used = false;
        failed(ctx, ch, m->req, OS_EUNREACH);
        return;
    }
    sys_timeout(m->timeout_ms ? m->timeout_ms : PING_TIMEOUT_DEFAULT, ping_timeout, slot_arg(i));
}

/* ---- conns -------------------------------------------------------------------------------- */

typedef struct conns_walk {
    os_ctx_t *ctx;
    os_handle_t ch;
    uint32_t req, count;
    bool stopped; /* the client's queue is full: the rest is counted, not sent */
} conns_walk_t;

static void conn_out(conns_walk_t *w, const net_conn_t *m)
{
    w->count++;
    if (!w->stopped && net_conn_send(w->ctx, w->ch, m) < 0)
        w->stopped = true;
}

static void tcp_out(conns_walk_t *w, struct tcp_pcb *p)
{
    net_conn_t m = {
        .req = w->req,
        .proto = 6,
        .state = (uint8_t)p->state,
        .laddr = tcpip_host_order(ip_2_ip4(&p->local_ip)),
        .lport = p->local_port,
        .raddr = tcpip_host_order(ip_2_ip4(&p->remote_ip)),
        .rport = p->remote_port,
        .queued = (uint32_t)(TCP_SND_BUF - p->snd_buf) + tcp_pcb_held(p),
    };
    conn_out(w, &m);
}

static void on_conns(os_ctx_t *ctx, os_handle_t ch, uint32_t req)
{
    conns_walk_t w = {ctx, ch, req, 0, false};
    for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l != NULL; l = l->next) {
        net_conn_t m = {
            .req = req,
            .proto = 6,
            .state = (uint8_t)l->state,
            .laddr = tcpip_host_order(ip_2_ip4(&l->local_ip)),
            .lport = l->local_port,
        };
        conn_out(&w, &m);
    }
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL; p = p->next)
        tcp_out(&w, p);
    for (struct tcp_pcb *p = tcp_tw_pcbs; p != NULL; p = p->next)
        tcp_out(&w, p);
    for (struct udp_pcb *u = udp_pcbs; u != NULL; u = u->next) {
        net_conn_t m = {
            .req = req,
            .proto = 17,
            .laddr = tcpip_host_order(ip_2_ip4(&u->local_ip)),
            .lport = u->local_port,
            .raddr = tcpip_host_order(ip_2_ip4(&u->remote_ip)),
            .rport = u->remote_port,
        };
        conn_out(&w, &m);
    }
    net_conns_end_t e = {req, w.count};
    net_conns_end_send(ctx, ch, &e);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

void net_on_message(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    union {
        net_status_t status;
        net_resolve_t resolve;
        net_ping_t ping;
        net_conns_t conns;
    } m;
    os_handle_t ch = ev->handle;
    if (ev->type == net_msg_status && net_status_decode(ev, &m.status) == 0) {
        on_status(ctx, st, ch, m.status.req);
    } else if (ev->type == net_msg_resolve && net_resolve_decode(ev, &m.resolve) == 0) {
        on_resolve(ctx, st, ch, &m.resolve);
    } else if (ev->type == net_msg_ping && net_ping_decode(ev, &m.ping) == 0) {
        on_ping(ctx, st, ch, &m.ping);
    } else if (ev->type == net_msg_conns && net_conns_decode(ev, &m.conns) == 0) {
        on_conns(ctx, ch, m.conns.req);
    } else {
        iface_discard(ctx, ev);
        net_error_t e = {ev->type, OS_EPROTO};
        net_error_send(ctx, ch, &e);
    }
}
