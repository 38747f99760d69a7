/* tcpip.c — the tcpip server: lwIP (NO_SYS, raw API) on the net0 device, address by DHCP. */
#include <image.h>
#include <iface/init_client.h>
#include <iface/net.h>

#include <string.h>

#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

enum {
    TCPIP_NS_PER_MS = 1000000,
    TCPIP_TASKS_SEEN = 64,
    TCPIP_CLIENTS_MAX = 16,
    TCPIP_REQ_REGISTER = 1
};

typedef struct tcpip_state {
    os_handle_t dev;   /* net0 */
    os_handle_t timer; /* lwIP's timeouts: armed at sys_timeouts_sleeptime() */
    bool have_netif;   /* the netif is added (first LINK_UP) */
    bool bound_logged; /* the DHCP line for the current lease was logged */
    uint8_t mac[6];
    os_handle_t clients[TCPIP_CLIENTS_MAX]; /* of the net interface; NONE: free */
    uint64_t rx_frames, tx_frames;
    uint64_t rx_dropped;                    /* no pbuf for a frame, or lwIP refused it */
    uint64_t tx_dropped;                    /* the device refused a frame (its ring was full) */
    uint8_t frame[HAL_NET_MTU];             /* a chained pbuf is copied here for os_device_write */
    os_task_info_t tasks[TCPIP_TASKS_SEEN]; /* at start: is lwIP's previous owner alive? */
} tcpip_state_t;

/*
 * lwIP keeps its state in globals and calls sys_now, LWIP_RAND and its assert without a
 * context, so the task running lwIP is kept here for the length of each handler. Only one
 * task may run lwIP in a process (lwip_owner); the netif is global too, since lwIP's lists
 * point at it and must stay valid if the task dies and is restarted.
 */
static os_ctx_t *lwip_ctx;  /* the running tcpip handler's context, else NULL */
static uint32_t lwip_owner; /* task id that runs lwIP now; 0: none */
static bool lwip_inited;    /* lwip_init ran in this process (it may run once) */
static struct netif tcpip_netif;

static os_ctx_t *cur(void)
{
    /* every lwIP entry happens inside our handlers; anything else is a bug: stop at once */
    if (lwip_ctx == NULL)
        __builtin_trap();
    return lwip_ctx;
}

u32_t sys_now(void)
{
    return (u32_t)(os_clock_now(cur()) / TCPIP_NS_PER_MS);
}

uint32_t orrery_lwip_rand(void)
{
    uint32_t r;
    os_random(cur(), &r, sizeof r);
    return r;
}

void orrery_lwip_assert(const char *msg, const char *file, int line)
{
    os_panic(cur(), "lwIP assertion failed: %s (%s:%d)", msg, file, line);
}

static err_t tcpip_linkoutput(struct netif *nif, struct pbuf *p)
{
    os_ctx_t *ctx = cur();
    tcpip_state_t *st = nif->state;
    if (p->tot_len > HAL_NET_MTU || p->tot_len == 0) {
        st->tx_dropped++;
        return ERR_IF;
    }
    const void *data = p->payload;
    if (p->len != p->tot_len) {
        pbuf_copy_partial(p, st->frame, p->tot_len, 0);
        data = st->frame;
    }
    int err = os_device_write(ctx, st->dev, HAL_NET_FRAME, data, p->tot_len);
    if (err < 0) {
        st->tx_dropped++; /* a full transmit ring: Ethernet may lose frames, TCP resends */
        return ERR_OK;
    }
    st->tx_frames++;
    return ERR_OK;
}

static err_t tcpip_netif_init(struct netif *nif)
{
    tcpip_state_t *st = nif->state;
    nif->name[0] = 'e';
    nif->name[1] = 'n';
    nif->mtu = HAL_NET_MTU - 14; /* the Ethernet header is not payload */
    nif->hwaddr_len = 6;
    memcpy(nif->hwaddr, st->mac, 6);
    nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    nif->output = etharp_output;
    nif->output_ip6 = ethip6_output;
    nif->linkoutput = tcpip_linkoutput;
    return ERR_OK;
}

/* Whether task `id` still lives; a task list longer than we look at counts as alive. */
static bool task_alive(os_ctx_t *ctx, tcpip_state_t *st, uint32_t id)
{
    int n = os_task_list(ctx, st->tasks, TCPIP_TASKS_SEEN);
    int seen = n < TCPIP_TASKS_SEEN ? n : TCPIP_TASKS_SEEN;
    for (int i = 0; i < seen; i++)
        if (st->tasks[i].id == id)
            return true;
    return n > TCPIP_TASKS_SEEN && st->tasks[seen - 1].id < id;
}

static int prefix_len(const ip4_addr_t *mask)
{
    uint32_t m = lwip_ntohl(ip4_addr_get_u32(mask));
    int n = 0;
    while (m & 0x80000000u) {
        n++;
        m <<= 1;
    }
    return n;
}

/* Run lwIP's due timeouts, log a new DHCP lease, and arm the timer for the next timeout. */
static void tcpip_settle(os_ctx_t *ctx, tcpip_state_t *st)
{
    sys_check_timeouts();
    if (st->have_netif) {
        bool bound = dhcp_supplied_address(&tcpip_netif) != 0;
        if (bound && !st->bound_logged) {
            char a[IP4ADDR_STRLEN_MAX], g[IP4ADDR_STRLEN_MAX];
            ip4addr_ntoa_r(netif_ip4_addr(&tcpip_netif), a, sizeof a);
            ip4addr_ntoa_r(netif_ip4_gw(&tcpip_netif), g, sizeof g);
            os_log(ctx, "net0 %s/%d gw %s (dhcp)", a, prefix_len(netif_ip4_netmask(&tcpip_netif)),
                   g);
        }
        st->bound_logged = bound;
    }
    u32_t ms = sys_timeouts_sleeptime();
    if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE)
        os_timer_cancel(ctx, st->timer);
    else
        os_timer_set(ctx, st->timer, os_clock_now(ctx) + (uint64_t)ms * TCPIP_NS_PER_MS);
}

/* Add the netif with this MAC, bring it up and start DHCP. */
static void netif_start(os_ctx_t *ctx, tcpip_state_t *st, const uint8_t mac[6])
{
    memcpy(st->mac, mac, 6);
    if (netif_add(&tcpip_netif, IP4_ADDR_ANY4, IP4_ADDR_ANY4, IP4_ADDR_ANY4, st, tcpip_netif_init,
                  ethernet_input) == NULL)
        os_panic(ctx, "netif_add failed");
    netif_set_default(&tcpip_netif);
    netif_set_up(&tcpip_netif);
    st->have_netif = true;
    netif_set_link_up(&tcpip_netif);
    err_t e = dhcp_start(&tcpip_netif);
    if (e != ERR_OK)
        os_log(ctx, "net0: dhcp_start: %s", lwip_strerr(e));
}

static void on_link_up(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    if (ev->len != 6) {
        os_log(ctx, "net0: link up with a %zu-byte address; ignored", ev->len);
        return;
    }
    if (!st->have_netif)
        netif_start(ctx, st, ev->data);
    else
        netif_set_link_up(&tcpip_netif);
}

static void on_frame(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    (void)ctx;
    if (!st->have_netif || ev->len == 0 || ev->len > HAL_NET_MTU) {
        st->rx_dropped++;
        return;
    }
    st->rx_frames++;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)ev->len, PBUF_POOL);
    if (p == NULL) {
        st->rx_dropped++;
        return;
    }
    pbuf_take(p, ev->data, (u16_t)ev->len);
    if (tcpip_netif.input(p, &tcpip_netif) != ERR_OK) {
        pbuf_free(p);
        st->rx_dropped++;
    }
}

/* ---- the net interface ------------------------------------------------------------------ */

static int client_index(tcpip_state_t *st, os_handle_t h)
{
    for (int i = 0; i < TCPIP_CLIENTS_MAX; i++)
        if (st->clients[i] != OS_HANDLE_NONE && st->clients[i] == h)
            return i;
    return -1;
}

static void on_init_message(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    union {
        init_new_client_t nc;
        init_reply_t reply;
    } m;

    if (ev->type == init_msg_new_client && init_new_client_decode(ev, &m.nc) == 0) {
        for (int i = 0; i < TCPIP_CLIENTS_MAX; i++) {
            if (st->clients[i] == OS_HANDLE_NONE) {
                st->clients[i] = m.nc.chan;
                return;
            }
        }
        os_log(ctx, "too many net clients; refusing one");
        os_handle_close(ctx, m.nc.chan);
    } else if (ev->type == init_msg_reply && init_reply_decode(ev, &m.reply) == 0) {
        if (m.reply.status < 0)
            os_log(ctx, "register net: %s", os_strerror(m.reply.status));
    } else {
        iface_discard(ctx, ev);
    }
}

static uint32_t host_order(const ip4_addr_t *a)
{
    return lwip_ntohl(ip4_addr_get_u32(a));
}

static void on_client_message(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
    net_status_t req;
    if (ev->type != net_msg_status || net_status_decode(ev, &req) < 0) {
        iface_discard(ctx, ev);
        net_error_t e = {ev->type, OS_EPROTO};
        net_error_send(ctx, ev->handle, &e);
        return;
    }
    net_info_t r;
    memset(&r, 0, sizeof r);
    r.req = req.req;
    if (st->have_netif) {
        r.addr = host_order(netif_ip4_addr(&tcpip_netif));
        r.mask = host_order(netif_ip4_netmask(&tcpip_netif));
        r.gw = host_order(netif_ip4_gw(&tcpip_netif));
        memcpy(r.mac, st->mac, 6);
        r.mac_len = 6;
        r.dhcp = 1;
    }
    net_counters_t c;
    memset(&c, 0, sizeof c);
    c.req = req.req;
    c.rx_frames = st->rx_frames;
    c.tx_frames = st->tx_frames;
    c.rx_dropped = st->rx_dropped;
    c.tx_dropped = st->tx_dropped;
    /* a client that does not read loses its answers */
    if (net_info_send(ctx, ev->handle, &r) == 0)
        net_counters_send(ctx, ev->handle, &c);
}

static void tcpip_start(os_ctx_t *ctx)
{
    tcpip_state_t *st = os_state(ctx);
    st->dev = OS_HANDLE_NONE;
    st->timer = OS_HANDLE_NONE;
    for (int i = 0; i < TCPIP_CLIENTS_MAX; i++)
        st->clients[i] = OS_HANDLE_NONE;
    int err = os_device_open(ctx, "net0", &st->dev);
    if (err == OS_ENOENT) {
        os_log(ctx, "no net0 device (%s); tcpip not started", os_strerror(err));
        os_exit(ctx, 0);
    }
    if (err < 0) {
        /* OS_EBUSY: another task holds net0 (a second tcpip); not a failure to restart */
        os_log(ctx, "cannot open net0: %s; tcpip not started", os_strerror(err));
        os_exit(ctx, 0);
    }
    if (lwip_owner != 0 && task_alive(ctx, st, lwip_owner)) {
        /* lwIP's state is one per process: a second tcpip task cannot have its own */
        os_log(ctx, "lwIP already runs in task %u; exiting", (unsigned)lwip_owner);
        os_exit(ctx, 0);
    }
    err = os_timer_create(ctx, &st->timer);
    if (err < 0)
        os_panic(ctx, "timer: %s", os_strerror(err));
    lwip_ctx = ctx;
    lwip_owner = os_task_id(ctx);
    if (!lwip_inited) {
        lwip_init();
        lwip_inited = true;
    } else if (tcpip_netif.state != NULL) {
        /*
         * Restarted after the previous task died: drop its interface (its DHCP release goes
         * out through our device, as its state is gone), keep lwIP's heap and timers. The
         * device posted LINK_UP once, to the task that opened it first, so an interface whose
         * link was up comes back at once with the same MAC.
         */
        bool link_up = netif_is_link_up(&tcpip_netif);
        uint8_t mac[6];
        memcpy(mac, tcpip_netif.hwaddr, 6);
        tcpip_netif.state = st;
        dhcp_stop(&tcpip_netif);
        netif_remove(&tcpip_netif);
        memset(&tcpip_netif, 0, sizeof tcpip_netif);
        if (link_up)
            netif_start(ctx, st, mac);
    }
    tcpip_settle(ctx, st);
    lwip_ctx = NULL;
    init_register_iface(ctx, TCPIP_REQ_REGISTER, &net_iface);
}

static void tcpip_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    tcpip_state_t *st = os_state(ctx);
    lwip_ctx = ctx;
    switch (ev->kind) {
    case OS_EV_DEVICE:
        if (ev->handle != st->dev)
            break;
        if (ev->type == HAL_NET_FRAME)
            on_frame(ctx, st, ev);
        else if (ev->type == HAL_NET_LINK_UP)
            on_link_up(ctx, st, ev);
        else if (ev->type == HAL_NET_LINK_DOWN && st->have_netif)
            netif_set_link_down(&tcpip_netif);
        else if (ev->type == HAL_DEVICE_END) {
            os_log(ctx, "net0 ended");
            if (st->have_netif)
                netif_set_link_down(&tcpip_netif);
        }
        break;
    case OS_EV_MESSAGE:
        if (ev->handle == init_channel(ctx))
            on_init_message(ctx, st, ev);
        else if (client_index(st, ev->handle) >= 0)
            on_client_message(ctx, st, ev);
        else
            iface_discard(ctx, ev);
        break;
    case OS_EV_PEER_CLOSED: {
        int i = client_index(st, ev->handle);
        if (i >= 0) {
            os_handle_close(ctx, st->clients[i]);
            st->clients[i] = OS_HANDLE_NONE;
        }
        break;
    }
    default:
        break;
    }
    tcpip_settle(ctx, st);
    lwip_ctx = NULL;
}

const os_program_t orrery_tcpip = {"tcpip", sizeof(tcpip_state_t), tcpip_start, tcpip_on_event};
