/* tcpip.c — the tcpip server: lwIP (NO_SYS, raw API) on net0, its clock, the address (DHCP or
 * static), and the dispatch of events to the tcp, udp and net interfaces (tcp.c, udp.c, netq.c). */
#include "tcpip.h"

#include <stdio.h>
#include <string.h>

#include "lwip/dhcp.h"
#include "lwip/dns.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

/*
 * lwIP keeps its state in globals and calls sys_now, LWIP_RAND and its assert without a
 * context, so the task running lwIP is kept here for the length of each handler. Only one
 * task may run lwIP in a process (lwip_owner); the netif is global too, since lwIP's lists
 * point at it and must stay valid if the task dies and is restarted.
 */
static os_ctx_t *lwip_ctx;       /* the running tcpip handler's context, else NULL */
static uint32_t lwip_owner;      /* task id that runs lwIP now; 0: none */
static bool lwip_inited;         /* lwip_init ran in this process (it may run once) */
static uint32_t lwip_generation; /* one more per tcpip task started */
static struct netif tcpip_netif;

static os_ctx_t *cur(void)
{
    /* every lwIP entry happens inside our handlers; anything else is a bug: stop at once */
    if (lwip_ctx == NULL)
        __builtin_trap();
    return lwip_ctx;
}

os_ctx_t *tcpip_ctx(void)
{
    return cur();
}

tcpip_state_t *tcpip_st(void)
{
    return os_state(cur());
}

uint32_t tcpip_generation(void)
{
    return lwip_generation;
}

uint32_t tcpip_host_order(const ip4_addr_t *a)
{
    return lwip_ntohl(ip4_addr_get_u32(a));
}

void tcpip_set_addr(ip4_addr_t *a, uint32_t host)
{
    ip4_addr_set_u32(a, lwip_htonl(host));
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

/* Write the frames that wait, in order, until the device refuses one (its ring is full). */
static void tx_flush(os_ctx_t *ctx, tcpip_state_t *st)
{
    while (st->txq_count > 0) {
        tcpip_frame_t *f = &st->txq[st->txq_head];
        int err = os_device_write(ctx, st->dev, HAL_NET_FRAME, f->data, f->len);
        if (err == OS_EFULL)
            return;
        if (err < 0) {
            st->tx_dropped++;
        } else {
            st->tx_frames++;
            st->tx_bytes += f->len;
        }
        st->txq_head = (st->txq_head + 1) % TCPIP_TXQ_MAX;
        st->txq_count--;
    }
}

/*
 * A frame the device's ring cannot take now waits in our queue and is written before any
 * later one (a retry timer runs while frames wait): a dropped RST or SYN-ACK is never sent
 * again, and dropped data costs a retransmission timeout. Beyond the queue, frames drop.
 */
static err_t tcpip_linkoutput(struct netif *nif, struct pbuf *p)
{
    os_ctx_t *ctx = cur();
    tcpip_state_t *st = nif->state;
    if (p->tot_len > HAL_NET_MTU || p->tot_len == 0) {
        st->tx_dropped++;
        return ERR_IF;
    }
    if (st->txq_count == 0) {
        const void *data = p->payload;
        if (p->len != p->tot_len) {
            pbuf_copy_partial(p, st->frame, p->tot_len, 0);
            data = st->frame;
        }
        int err = os_device_write(ctx, st->dev, HAL_NET_FRAME, data, p->tot_len);
        if (err == 0) {
            st->tx_frames++;
            st->tx_bytes += p->tot_len;
            return ERR_OK;
        }
        if (err != OS_EFULL) {
            st->tx_dropped++;
            return ERR_OK;
        }
    }
    if (st->txq_count == TCPIP_TXQ_MAX) {
        st->tx_dropped++; /* Ethernet may lose frames; TCP resends */
        return ERR_OK;
    }
    tcpip_frame_t *f = &st->txq[(st->txq_head + st->txq_count) % TCPIP_TXQ_MAX];
    f->len = pbuf_copy_partial(p, f->data, p->tot_len, 0);
    st->txq_count++;
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

/* Log the address line tests wait for: "net0 ADDR/PREFIX gw GW (dhcp|static)". */
static void log_address(os_ctx_t *ctx, tcpip_state_t *st)
{
    char a[IP4ADDR_STRLEN_MAX], g[IP4ADDR_STRLEN_MAX];
    ip4addr_ntoa_r(netif_ip4_addr(&tcpip_netif), a, sizeof a);
    ip4addr_ntoa_r(netif_ip4_gw(&tcpip_netif), g, sizeof g);
    os_log(ctx, "net0 %s/%d gw %s (%s)", a, prefix_len(netif_ip4_netmask(&tcpip_netif)), g,
           st->is_static ? "static" : "dhcp");
}

/* Run lwIP's due timeouts, log a new address, and arm the timer for the next timeout. */
static void tcpip_settle(os_ctx_t *ctx, tcpip_state_t *st)
{
    /* packets to our own address, queued by lwIP's loopback; their answers may loop too */
    for (int i = 0; st->have_netif && i < TCPIP_LOOP_ROUNDS && tcpip_netif.loop_first != NULL; i++)
        netif_poll(&tcpip_netif);
    sys_check_timeouts();
    tx_flush(ctx, st);
    if (st->have_netif) {
        bool bound = st->is_static ? netif_is_link_up(&tcpip_netif) != 0
                                   : dhcp_supplied_address(&tcpip_netif) != 0;
        if (bound && !st->bound_logged)
            log_address(ctx, st);
        st->bound_logged = bound;
    }
    u32_t ms = sys_timeouts_sleeptime();
    uint64_t now = os_clock_now(ctx);
    bool waiting = st->txq_count > 0 || (st->have_netif && tcpip_netif.loop_first != NULL);
    if (waiting && (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE ||
                    (uint64_t)ms * TCPIP_NS_PER_MS > TCPIP_TX_RETRY_NS))
        os_timer_set(ctx, st->timer, now + TCPIP_TX_RETRY_NS); /* frames wait for the ring */
    else if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE)
        os_timer_cancel(ctx, st->timer);
    else
        os_timer_set(ctx, st->timer, now + (uint64_t)ms * TCPIP_NS_PER_MS);
}

/* Add the netif with this MAC, bring it up, and start DHCP or set the static address. */
static void netif_start(os_ctx_t *ctx, tcpip_state_t *st, const uint8_t mac[6])
{
    memcpy(st->mac, mac, 6);
    const ip4_addr_t *addr = IP4_ADDR_ANY4, *mask = IP4_ADDR_ANY4, *gw = IP4_ADDR_ANY4;
    if (st->is_static) {
        addr = &st->addr;
        mask = &st->mask;
        gw = &st->gw;
    }
    if (netif_add(&tcpip_netif, addr, mask, gw, st, tcpip_netif_init, ethernet_input) == NULL)
        os_panic(ctx, "netif_add failed");
    netif_set_default(&tcpip_netif);
    netif_set_up(&tcpip_netif);
    st->have_netif = true;
    netif_set_link_up(&tcpip_netif);
    if (st->is_static) {
        if (st->have_dns) {
            ip_addr_t d;
            ip_addr_copy_from_ip4(d, st->dns);
            dns_setserver(0, &d);
        }
        return;
    }
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
    st->rx_bytes += ev->len;
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

/* ---- the static address: the spawn argument ----------------------------------------------- */

/* A dotted quad, exactly: four numbers 0..255. */
static bool parse_ip4(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        uint32_t x = 0;
        size_t digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            x = x * 10 + (uint32_t)(s[i++] - '0');
            if (++digits > 3 || x > 255)
                return false;
        }
        v = v << 8 | x;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    if (i != n)
        return false;
    *out = v;
    return true;
}

/*
 * The spawn argument (the manifest's arg=): empty or "dhcp" for DHCP, else any of
 * addr=A.B.C.D/N, gw=A.B.C.D, dns=A.B.C.D separated by commas (addr= required). 0, or -1 with
 * the reason in err.
 */
static int parse_config(tcpip_state_t *st, const char *arg, size_t len, char *err, size_t errlen)
{
    if (len == 0 || (len == 4 && memcmp(arg, "dhcp", 4) == 0))
        return 0;
    bool have_addr = false, have_gw = false;
    size_t at = 0;
    while (at <= len) {
        const char *w = arg + at;
        const char *comma = memchr(w, ',', len - at);
        size_t n = comma ? (size_t)(comma - w) : len - at;
        const char *eq = memchr(w, '=', n);
        if (eq == NULL) {
            snprintf(err, errlen, "'%.*s' is not KEY=VALUE (addr=, gw=, dns=, or dhcp alone)",
                     (int)n, w);
            return -1;
        }
        size_t kn = (size_t)(eq - w);
        const char *v = eq + 1;
        size_t vn = n - kn - 1;
        uint32_t ip;
        if (kn == 4 && memcmp(w, "addr", 4) == 0 && !have_addr) {
            const char *slash = memchr(v, '/', vn);
            size_t an = slash ? (size_t)(slash - v) : vn;
            if (!parse_ip4(v, an, &ip) || ip == 0) {
                snprintf(err, errlen, "bad address '%.*s' in addr= (A.B.C.D/PREFIX)", (int)vn, v);
                return -1;
            }
            uint32_t prefix = 0;
            size_t pn = slash ? vn - an - 1 : 0;
            bool ok = slash && pn >= 1 && pn <= 2;
            for (size_t i = 0; ok && i < pn; i++) {
                char c = slash[1 + i];
                ok = c >= '0' && c <= '9';
                prefix = prefix * 10 + (uint32_t)(c - '0');
            }
            if (!ok || prefix < 1 || prefix > 32) {
                snprintf(err, errlen, "addr= needs a prefix 1..32 (A.B.C.D/PREFIX), not '%.*s'",
                         (int)vn, v);
                return -1;
            }
            tcpip_set_addr(&st->addr, ip);
            tcpip_set_addr(&st->mask, prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
            have_addr = true;
        } else if (kn == 2 && memcmp(w, "gw", 2) == 0 && !have_gw) {
            if (!parse_ip4(v, vn, &ip)) {
                snprintf(err, errlen, "bad address '%.*s' in gw= (A.B.C.D)", (int)vn, v);
                return -1;
            }
            tcpip_set_addr(&st->gw, ip);
            have_gw = true;
        } else if (kn == 3 && memcmp(w, "dns", 3) == 0 && !st->have_dns) {
            if (!parse_ip4(v, vn, &ip)) {
                snprintf(err, errlen, "bad address '%.*s' in dns= (A.B.C.D)", (int)vn, v);
                return -1;
            }
            tcpip_set_addr(&st->dns, ip);
            st->have_dns = true;
        } else {
            snprintf(err, errlen, "unknown or repeated key '%.*s' (addr, gw, dns)", (int)kn, w);
            return -1;
        }
        if (!comma)
            break;
        at += n + 1;
    }
    if (!have_addr) {
        snprintf(err, errlen, "gw= and dns= need addr= (without it DHCP gives all three)");
        return -1;
    }
    st->is_static = true;
    return 0;
}

/* ---- clients from init -------------------------------------------------------------------- */

static int client_index(tcpip_state_t *st, os_handle_t h)
{
    for (int i = 0; i < TCPIP_CLIENTS_MAX; i++)
        if (st->clients[i].kind != TCPIP_CLIENT_FREE && st->clients[i].chan == h)
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
        tcpip_client_kind_t kind = TCPIP_CLIENT_FREE;
        if (strcmp(m.nc.name, net_iface.name) == 0)
            kind = TCPIP_CLIENT_NET;
        else if (strcmp(m.nc.name, tcp_iface.name) == 0)
            kind = TCPIP_CLIENT_TCP;
        else if (strcmp(m.nc.name, udp_iface.name) == 0)
            kind = TCPIP_CLIENT_UDP;
        for (int i = 0; kind != TCPIP_CLIENT_FREE && i < TCPIP_CLIENTS_MAX; i++) {
            if (st->clients[i].kind == TCPIP_CLIENT_FREE) {
                st->clients[i].chan = m.nc.chan;
                st->clients[i].kind = kind;
                return;
            }
        }
        os_log(ctx, "too many clients (%d); refusing one of %s", TCPIP_CLIENTS_MAX, m.nc.name);
        os_handle_close(ctx, m.nc.chan);
    } else if (ev->type == init_msg_reply && init_reply_decode(ev, &m.reply) == 0) {
        if (m.reply.status < 0)
            os_log(ctx, "register (request %u): %s", (unsigned)m.reply.req,
                   os_strerror(m.reply.status));
    } else {
        iface_discard(ctx, ev);
    }
}

static void tcpip_start(os_ctx_t *ctx)
{
    tcpip_state_t *st = os_state(ctx);
    st->dev = OS_HANDLE_NONE;
    st->timer = OS_HANDLE_NONE;
    for (int i = 0; i < TCPIP_CLIENTS_MAX; i++)
        st->clients[i].chan = OS_HANDLE_NONE;
    for (int i = 0; i < TCPIP_CONNS_MAX; i++)
        st->conns[i].chan = OS_HANDLE_NONE;
    for (int i = 0; i < TCPIP_LISTENERS_MAX; i++)
        st->listeners[i].chan = OS_HANDLE_NONE;
    for (int i = 0; i < TCPIP_UDP_MAX; i++)
        st->udps[i].chan = OS_HANDLE_NONE;

    const void *arg;
    size_t arg_len;
    char err[160];
    os_spawn_arg(ctx, &arg, &arg_len);
    /* "quiet" first: a boot without net0 is normal (the default manifest), not worth a line */
    bool quiet = false;
    if (arg_len >= 5 && memcmp(arg, "quiet", 5) == 0 &&
        (arg_len == 5 || ((const char *)arg)[5] == ',')) {
        quiet = true;
        arg = (const char *)arg + (arg_len == 5 ? 5 : 6);
        arg_len -= arg_len == 5 ? 5 : 6;
    }
    if (arg_len > TCPIP_ARG_MAX || parse_config(st, arg, arg_len, err, sizeof err) < 0) {
        if (arg_len > TCPIP_ARG_MAX)
            snprintf(err, sizeof err, "over %d bytes", TCPIP_ARG_MAX);
        os_log(ctx, "bad arg '%.*s': %s; tcpip not started", (int)(arg_len > 64 ? 64 : arg_len),
               (const char *)arg, err);
        os_exit(ctx, 2);
    }
    int e = os_device_open(ctx, "net0", &st->dev);
    if (e == OS_ENOENT) {
        if (!quiet)
            os_log(ctx, "no net0 device (%s); tcpip not started", os_strerror(e));
        os_exit(ctx, 0);
    }
    if (e < 0) {
        /* OS_EBUSY: another task holds net0 (a second tcpip); not a failure to restart */
        os_log(ctx, "cannot open net0: %s; tcpip not started", os_strerror(e));
        os_exit(ctx, 0);
    }
    /* our own id: the previous owner ran in an earlier boot of this process (tests) */
    if (lwip_owner != 0 && lwip_owner != os_task_id(ctx) && task_alive(ctx, st, lwip_owner)) {
        /* lwIP's state is one per process: a second tcpip task cannot have its own */
        os_log(ctx, "lwIP already runs in task %u; exiting", (unsigned)lwip_owner);
        os_exit(ctx, 0);
    }
    e = os_timer_create(ctx, &st->timer);
    if (e < 0)
        os_panic(ctx, "timer: %s", os_strerror(e));
    lwip_ctx = ctx;
    lwip_owner = os_task_id(ctx);
    lwip_generation++;
    if (!lwip_inited) {
        lwip_init();
        net_ping_init();
        lwip_inited = true;
    } else {
        /*
         * Restarted after the previous task died: its pcbs' callbacks point into its freed
         * state, so they go first (reset); then its interface (its DHCP release goes out
         * through our device, as its state is gone); lwIP's heap and timers stay. The device
         * posted LINK_UP once, to the task that opened it first, so an interface whose link
         * was up comes back at once with the same MAC.
         */
        tcp_forget_all();
        udp_forget_all();
        sys_restart_timeouts(); /* an earlier boot's clock may have been ahead of ours */
        if (tcpip_netif.state != NULL) {
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
    }
    tcpip_settle(ctx, st);
    lwip_ctx = NULL;
    init_register_iface(ctx, TCPIP_REQ_REGISTER, &net_iface);
    init_register_iface(ctx, TCPIP_REQ_REGISTER + 1, &tcp_iface);
    init_register_iface(ctx, TCPIP_REQ_REGISTER + 2, &udp_iface);
}

static void on_device(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev)
{
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
}

static void on_client(os_ctx_t *ctx, tcpip_state_t *st, int i, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        os_handle_close(ctx, st->clients[i].chan);
        st->clients[i].chan = OS_HANDLE_NONE;
        st->clients[i].kind = TCPIP_CLIENT_FREE;
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    switch (st->clients[i].kind) {
    case TCPIP_CLIENT_NET:
        net_on_message(ctx, st, ev);
        break;
    case TCPIP_CLIENT_TCP:
        tcp_on_control(ctx, st, ev);
        break;
    case TCPIP_CLIENT_UDP:
        udp_on_control(ctx, st, ev);
        break;
    default:
        iface_discard(ctx, ev);
        break;
    }
}

static void tcpip_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    tcpip_state_t *st = os_state(ctx);
    lwip_ctx = ctx;
    int i;
    if (ev->kind == OS_EV_DEVICE) {
        if (ev->handle == st->dev)
            on_device(ctx, st, ev);
    } else if (ev->kind == OS_EV_TIMER) {
        /* lwIP's timeouts run in settle, below */
    } else if (ev->handle == init_channel(ctx)) {
        if (ev->kind == OS_EV_MESSAGE)
            on_init_message(ctx, st, ev);
    } else if ((i = client_index(st, ev->handle)) >= 0) {
        on_client(ctx, st, i, ev);
    } else if (!tcp_on_channel(ctx, st, ev) && !udp_on_channel(ctx, st, ev)) {
        if (ev->kind == OS_EV_MESSAGE)
            iface_discard(ctx, ev);
    }
    tcpip_settle(ctx, st);
    lwip_ctx = NULL;
}

const os_program_t orrery_tcpip = {"tcpip", sizeof(tcpip_state_t), tcpip_start, tcpip_on_event};
