/* fuzz_tcpip.c — libFuzzer target of tcpip: frames on a net0 stand-in, messages on its channels. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hal/codes.h>
#include <hal/device.h>
#include <iface/init_client.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <iface/udp.h>
#include <image.h>
#include <k/audit.h>
#include <k/kernel.h>
#include <sim/sim.h>

#include "sim_priv.h" /* the per-node state section: lwIP's globals, pristine for every input */

#include "lwip/etharp.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/priv/nd6_priv.h" /* lwIP's neighbour, router and prefix tables */
#include "lwip/priv/tcp_priv.h" /* lwIP's pcb lists: listeners and connects go with their client */
#include "lwip/stats.h"         /* memp and heap use: the stack is back where it booted */
#include "lwip/udp.h"

#include "fuzz_tcpip.h"

/*
 * The hooks (docs/fuzzing.md, "tcpip"):
 *   init     boot init, tcpip (static address 10.0.0.2/24, gateway 10.0.0.1) and a fake
 *            client `fuzz_peer` on sim, with a net0 stand-in registered by the harness:
 *            the frames tcpip writes come to net0_write (parsed: ARP requests, pings and
 *            TCP segments are tracked so the next frames can answer them), the frames of
 *            the input are posted with k_post; lwIP's globals start pristine (the per-node
 *            state section, reloaded before each boot);
 *   connect  the peer connects to net, tcp and udp, listens on TCP port 7 and binds UDP
 *            port 7; every listener, connection and socket channel tcpip hands out is kept;
 *   feed     ops from the input: frames (structured templates or raw, each after a time
 *            step), interface messages on a kept channel (structured or raw), closes and
 *            holds of kept channels, time jumps;
 *   clean up close every channel, run lwIP's timers at their deadlines until it is quiet (or
 *            for a while); the node must come back to where it booted, else it reboots
 *            (persistent mode, below).
 * Invariants (abort() is the crash libFuzzer reports): tcpip did not panic or fault (an
 * lwIP assertion is os_panic of the task), the kernel audit holds, no listener, connect in
 * SYN_SENT or client UDP pcb outlives the client, sim_teardown reports no leaked kernel
 * allocation (at each reboot). A reproducer run (files, FUZZ_FRESH=1) boots afresh for every
 * input, so a crash file reproduces alone.
 */

enum {
    KEPT_MAX = 32,     /* listener/connection/socket channels the peer keeps */
    REQ_LISTEN7 = 900, /* the listen and bind of every boot and input (arm) */
    REQ_BIND7 = 901,
    SETTLE_TIMEOUTS = 400, /* lwIP timer events after the client went away */
};

typedef enum kept_kind { KEPT_FREE, KEPT_CTL, KEPT_LISTENER, KEPT_CONN, KEPT_UDP } kept_kind_t;

typedef struct kept {
    os_handle_t h;
    kept_kind_t kind;
    const iface_t *iface;
    bool held;
} kept_t;

static bool verbose; /* FUZZ_VERBOSE: print what each input reached */

/* ---- the fake peer ------------------------------------------------------------------------- */

static struct {
    os_ctx_t *ctx;
    uint32_t id;
    kept_t ch[KEPT_MAX]; /* 0..2: the net, tcp and udp control channels */
    int nctl;
    int newest; /* the slot of the channel kept last (-1: none) */
    int peak;   /* most channels kept at once (FUZZ_VERBOSE) */
} P;

static const iface_t *const ctl_ifaces[3] = {&net_iface, &tcp_iface, &udp_iface};

static void keep(os_handle_t h, kept_kind_t kind, const iface_t *ifc)
{
    for (int i = 3; i < KEPT_MAX; i++)
        if (P.ch[i].kind == KEPT_FREE) {
            P.ch[i] = (kept_t){.h = h, .kind = kind, .iface = ifc};
            P.newest = i;
            P.peak = i + 1 > P.peak ? i + 1 : P.peak;
            return;
        }
    os_handle_close(P.ctx, h); /* full: the server sees the channel close */
}

/* The peer's client: connect to net, tcp and udp (at boot, and again after each input in
 * persistent mode). */
static void peer_connect(void)
{
    P.nctl = 0;
    P.newest = -1;
    for (uint32_t i = 0; i < 3; i++)
        init_connect_iface(P.ctx, i + 1, ctl_ifaces[i]);
}

static void peer_start(os_ctx_t *ctx)
{
    memset(&P, 0, sizeof P);
    P.ctx = ctx;
    P.id = os_task_id(ctx);
    peer_connect();
}

static void note_port(uint16_t port, bool udp);

static void peer_event(os_ctx_t *ctx, const os_event_t *ev)
{
    union {
        init_connected_t c;
        tcp_listening_t l;
        tcp_opened_t o;
        tcp_accepted_t a;
        udp_bound_t b;
    } m;
    int i = -1;
    for (int k = 0; k < KEPT_MAX; k++)
        if (P.ch[k].kind != KEPT_FREE && P.ch[k].h == ev->handle)
            i = k;
    if (ev->kind == OS_EV_PEER_CLOSED && i >= 0) {
        os_handle_close(ctx, ev->handle);
        P.ch[i].kind = KEPT_FREE;
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (verbose && i >= 0)
        for (size_t k = 0; k < P.ch[i].iface->nmsgs; k++)
            if (P.ch[i].iface->msgs[k].number == ev->type)
                fprintf(stderr, "peer <- %s.%s (%zu bytes%s%s) on slot %d\n", P.ch[i].iface->name,
                        P.ch[i].iface->msgs[k].name, ev->len, ev->len == 8 ? ": " : "",
                        ev->len == 8 ? os_strerror(((const int32_t *)ev->data)[1]) : "", i);
    if (ev->handle == init_channel(ctx) && ev->type == init_msg_connected &&
        init_connected_decode(ev, &m.c) == 0 && m.c.req >= 1 && m.c.req <= 3) {
        int k = (int)m.c.req - 1;
        P.ch[k] = (kept_t){.h = m.c.chan, .kind = KEPT_CTL, .iface = ctl_ifaces[k]};
        P.nctl++; /* the listen on port 7 and the bind follow (arm) */
        return;
    }
    /* handles handed out: listeners, connections, sockets (their ports are frame targets) */
    if (ev->type == tcp_msg_listening && i >= 0 && P.ch[i].iface == &tcp_iface &&
        tcp_listening_decode(ev, &m.l) == 0) {
        keep(m.l.chan, KEPT_LISTENER, &tcp_iface);
        note_port(m.l.port, false);
    } else if (ev->type == tcp_msg_opened && i >= 0 && P.ch[i].iface == &tcp_iface &&
               tcp_opened_decode(ev, &m.o) == 0) {
        keep(m.o.chan, KEPT_CONN, &tcp_iface);
    } else if (ev->type == tcp_msg_accepted && i >= 0 && P.ch[i].kind == KEPT_LISTENER &&
               tcp_accepted_decode(ev, &m.a) == 0) {
        keep(m.a.chan, KEPT_CONN, &tcp_iface);
    } else if (ev->type == udp_msg_bound && i >= 0 && P.ch[i].iface == &udp_iface &&
               udp_bound_decode(ev, &m.b) == 0) {
        keep(m.b.chan, KEPT_UDP, &udp_iface);
        note_port(m.b.port, true);
    } else {
        for (size_t k = 0; k < ev->nhandles; k++)
            os_handle_close(ctx, ev->handles[k]); /* nothing else is meant to carry one */
    }
}

static const os_program_t peer = {"fuzz_peer", 0, peer_start, peer_event};

/* ---- the watch: panics ---------------------------------------------------------------------- */

static int panics;
static void watch(void *self, const hal_trace_rec_t *r)
{
    (void)self;
    if (r->kind == HAL_TR_EXIT && (r->result == OS_EXIT_PANIC || r->result == OS_EXIT_FAULT))
        panics++;
}
static const hal_trace_sink_t sink = {.record = watch};

/* ---- net0: what tcpip writes is parsed into the frame builder's state ----------------------- */

static fz_net_t N; /* the frame builder's view of the link (fuzz_tcpip.h) */
static int net0_dev;

/* FUZZ_VERBOSE: one line per frame in either direction (ARP, IPv4 protocol and ports, TCP flags).
 */
static void show_frame(const char *dir, const uint8_t *f, size_t len)
{
    fprintf(stderr, "%s %zu bytes", dir, len);
    if (len >= 42 && f[12] == 0x08 && f[13] == 0x06)
        fprintf(stderr, " ARP op %u for %u.%u.%u.%u", f[21], f[38], f[39], f[40], f[41]);
    else if (len >= 34 && f[12] == 0x08 && f[13] == 0x00) {
        fprintf(stderr, " IPv4 proto %u %u.%u.%u.%u -> %u.%u.%u.%u", f[23], f[26], f[27], f[28],
                f[29], f[30], f[31], f[32], f[33]);
        if (f[23] == 6 && len >= 54)
            fprintf(stderr, " TCP %u -> %u flags %#x seq %u ack %u", f[34] << 8 | f[35],
                    f[36] << 8 | f[37], f[47],
                    (uint32_t)f[38] << 24 | (uint32_t)f[39] << 16 | (uint32_t)f[40] << 8 | f[41],
                    (uint32_t)f[42] << 24 | (uint32_t)f[43] << 16 | (uint32_t)f[44] << 8 | f[45]);
        else if (f[23] == 17 && len >= 42)
            fprintf(stderr, " UDP %u -> %u", f[34] << 8 | f[35], f[36] << 8 | f[37]);
        else if (f[23] == 1 && len >= 35)
            fprintf(stderr, " ICMP type %u", f[34]);
    } else if (len >= 14)
        fprintf(stderr, " ethertype %#x", f[12] << 8 | f[13]);
    fputc('\n', stderr);
}

static bool ring_full; /* net0 refuses writes (OS_EFULL): tcpip queues and retries */

static int net0_write(void *self, uint32_t code, const void *buf, size_t len)
{
    (void)self;
    if (ring_full)
        return OS_EFULL;
    if (code == HAL_NET_FRAME) {
        if (verbose)
            show_frame("tcpip ->", buf, len);
        fz_net_observe(&N, buf, len);
    }
    return 0;
}

static const hal_device_ops_t net0_ops = {.name = "net0", .write = net0_write};

static void note_port(uint16_t port, bool udp)
{
    fz_net_note_port(&N, port, udp);
}

/* ---- feeding ------------------------------------------------------------------------------- */

static void check(bool ok, const char *what)
{
    if (!ok) {
        size_t len = 0;
        const char *out = sim_console_output(&len);
        fprintf(stderr, "fuzz_tcpip: invariant broken: %s\n", what);
        if (len)
            fprintf(stderr, "--- console ---\n%.*s\n---\n", (int)(len > 4000 ? 4000 : len),
                    out + (len > 4000 ? len - 4000 : 0));
        abort();
    }
}

static void idle(void)
{
    sim_run_until_idle();
}

static kept_t *pick(fz_in_t *in)
{
    int n = 0;
    for (int i = 0; i < KEPT_MAX; i++)
        n += P.ch[i].kind != KEPT_FREE;
    if (n == 0)
        return NULL;
    uint8_t b = fz_byte(in);
    if (b == TRACE_CORPUS_TCPIP_NEWEST && P.newest >= 0 && P.ch[P.newest].kind != KEPT_FREE)
        return &P.ch[P.newest];
    int want = b % n;
    for (int i = 0; i < KEPT_MAX; i++)
        if (P.ch[i].kind != KEPT_FREE && want-- == 0)
            return &P.ch[i];
    return NULL;
}

/* Addresses: 0 (any) stays; else mostly the link's (10.0.0.0-3), so connects and sends go
 * somewhere; a top bit set keeps the bytes as they are. */
static void steer_addr(const iface_field_t *f, uint8_t *at, size_t width)
{
    uint32_t v;
    if (width != 4 || strcmp(f->name, "addr") != 0)
        return;
    memcpy(&v, at, 4);
    if (v != 0 && !(at[3] & 0x80)) {
        uint32_t a = 0x0a000000u | (at[0] & 3);
        memcpy(at, &a, 4);
    }
}

/* A well-formed message of the channel's interface, its fields filled from the input. */
static void send_structured(fz_in_t *in, kept_t *k)
{
    const iface_msg_t *m = &k->iface->msgs[fz_byte(in) % k->iface->nmsgs];
    static uint8_t msg[8192], wire[OS_MSG_MAX_DATA];
    os_handle_t hs[OS_MSG_MAX_HANDLES], ours[OS_MSG_MAX_HANDLES];
    size_t nours;
    fz_fill_message(P.ctx, m, in, msg, ours, &nours, steer_addr);
    size_t len = 0, nh = 0;
    if (iface_encode(m, msg, wire, sizeof wire, &len, hs, &nh) != 0 ||
        os_send(P.ctx, k->h, m->number, wire, len, hs, nh) != 0)
        for (size_t i = 0; i < nh; i++)
            os_handle_close(P.ctx, hs[i]);
    for (size_t i = 0; i < nours; i++)
        os_handle_close(P.ctx, ours[i]);
}

static void send_raw(fz_in_t *in, kept_t *k)
{
    static uint8_t data[OS_MSG_MAX_DATA];
    uint32_t type = fz_byte(in) % 14;
    size_t len = fz_byte(in);
    if (len == 255)
        len = (size_t)fz_byte(in) * 16;
    for (size_t b = 0; b < len; b++)
        data[b] = fz_byte(in);
    os_handle_t h[1], other;
    size_t nh = 0;
    if (fz_byte(in) & 1 && os_channel_create(P.ctx, &h[0], &other) == 0) {
        nh = 1;
        os_handle_close(P.ctx, other);
    }
    if (os_send(P.ctx, k->h, type, data, len, h, nh) != 0 && nh)
        os_handle_close(P.ctx, h[0]);
}

static void post_frame(const uint8_t *f, size_t len)
{
    if (verbose)
        show_frame("-> tcpip", f, len);
    if (len > 0 && len <= HAL_NET_MTU)
        k_post(net0_dev, HAL_NET_FRAME, f, len);
}

/* ---- boot, input, teardown ------------------------------------------------------------------ */

/* lwIP's UDP pcbs (its own DNS pcb and the sockets of clients). */
static int udp_pcb_count(void)
{
    int n = 0;
    for (struct udp_pcb *p = udp_pcbs; p; p = p->next)
        n++;
    return n;
}

static const os_program_t *programs[4];
static void *pristine; /* the per-node state section as loaded: lwIP never ran */

static const char manifest[] = "program tcpip restart=never arg=addr=10.0.0.2/24,gw=10.0.0.1\n"
                               "program fuzz_peer restart=never reach=net,tcp,udp\n";

static const os_program_t *find_program(const char *name)
{
    for (const os_program_t *const *p = orrery_programs; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

/*
 * Persistent mode (docs/fuzzing.md, "tcpip"): the image boots once; after each input the
 * client goes away (every channel closes), lwIP's timers run until it is quiet (or as long
 * as before), the checks run, then the harness empties lwIP's ARP and neighbour caches and
 * drops the pcbs tcpip let go of (TIME_WAIT, closing ones still retransmitting: what a fresh
 * boot would not have), the peer connects afresh, listens on port 7 and binds port 7, and
 * the node must be back where it booted: kernel task and endpoint counts (allocations are
 * checked by sim_teardown at each reboot: the kernel's message buffer cache grows), lwIP's
 * pool and heap use, its netifs, no pcb but those of the boot. Otherwise, every REBOOT_EVERY
 * inputs, and for every input of a reproducer run (files, FUZZ_FRESH=1), it boots afresh.
 */
enum { REBOOT_EVERY = 1000, FULL_EVERY = 16 };

typedef struct lwip_base {
    mem_size_t mem_used;
    mem_size_t memp_used[MEMP_MAX];
    struct netif nif[2]; /* net0's and the loopback's */
    int nifs;
    u32_t reachable_time, retrans_timer;
    int udp;
} lwip_base_t;

static struct {
    bool booted, fresh_each;
    unsigned inputs;   /* since boot */
    k_stats_t base;    /* tasks and endpoints once booted */
    fz_net_t net;      /* the frame builder's view once booted */
    lwip_base_t lw;    /* lwIP once booted */
    lwip_base_t quiet; /* lwIP once booted, before the listen and bind on port 7 */
    int udp_base;      /* lwIP's own UDP pcbs (DNS): those at boot but the peer's port 7 */
    unsigned long reboots, dirty; /* FUZZ_VERBOSE: reboots, and those because not back */
    unsigned long calls;
} H;

static void lwip_take(lwip_base_t *b)
{
    memset(b, 0, sizeof *b);
    b->mem_used = lwip_stats.mem.used;
    for (int i = 0; i < MEMP_MAX; i++)
        b->memp_used[i] = lwip_stats.memp[i] ? lwip_stats.memp[i]->used : 0;
    for (struct netif *n = netif_list; n; n = n->next, b->nifs++)
        if (b->nifs < 2) {
            memcpy(&b->nif[b->nifs], n, sizeof b->nif[0]);
            b->nif[b->nifs].rs_count = 0; /* router solicitations of the first seconds */
        }
    b->reachable_time = reachable_time;
    b->retrans_timer = retrans_timer;
    b->udp = udp_pcb_count();
}

/* lwIP's neighbour discovery holds nothing (a fresh boot's tables). */
static bool nd6_empty(void)
{
    for (int i = 0; i < LWIP_ND6_NUM_NEIGHBORS; i++)
        if (neighbor_cache[i].state != ND6_NO_ENTRY)
            return false;
    for (int i = 0; i < LWIP_ND6_NUM_ROUTERS; i++)
        if (default_router_list[i].neighbor_entry != NULL)
            return false;
    for (int i = 0; i < LWIP_ND6_NUM_PREFIXES; i++)
        if (prefix_list[i].netif != NULL)
            return false;
    return true;
}

/* Pool (and heap) use as at b, TIME_WAIT pcbs (tw of them) aside. */
static bool lwip_pools_at(const lwip_base_t *b, int tw, bool heap)
{
    if (heap && lwip_stats.mem.used != b->mem_used)
        return false;
    for (int i = 0; i < MEMP_MAX; i++) {
        mem_size_t u = lwip_stats.memp[i] ? lwip_stats.memp[i]->used : 0;
        if (i == MEMP_TCP_PCB)
            u = (mem_size_t)(u - tw);
        if (u != b->memp_used[i])
            return false;
    }
    return true;
}

static int tw_count(void)
{
    int n = 0;
    for (struct tcp_pcb *p = tcp_tw_pcbs; p; p = p->next)
        n++;
    return n;
}

/*
 * Nothing left for lwIP's timers to do that a check could see: no active pcb (the checks
 * below are about active ones; TIME_WAIT only ages), no neighbour discovery state to age,
 * pools as at boot (no queued packet, reassembly, ping or pending timeout). The heap is not
 * compared here: the MLD reports lwIP queues on its loopback netif in the first seconds
 * (tcpip polls only net0's loop queue) hold heap and nothing else.
 */
static bool lwip_quiet(void)
{
    return tcp_active_pcbs == NULL && nd6_empty() && lwip_pools_at(&H.quiet, tw_count(), false);
}

static void audit(bool full)
{
    char err[160];
    int rc = full ? k_audit(NULL, 0, NULL, err, sizeof err)
                  : k_audit_quick(NULL, 0, NULL, err, sizeof err);
    check(rc == 0, err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    programs[0] = find_program("init");
    programs[1] = find_program("tcpip");
    programs[2] = &peer;
    programs[3] = NULL;
    pristine = sim_node_state_new();
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (!programs[0] || !programs[1] || !pristine) {
        fprintf(stderr, "fuzz_tcpip: %s\n",
                pristine
                    ? "init or tcpip is not in the image"
                    : "this build has no per-node state section (lwIP would not start afresh)");
        abort();
    }
    H.fresh_each = fz_fresh_each(*argc, *argv); /* a reproducer run boots for every input */
    return 0;
}

/* The peer listens on TCP port 7 and binds UDP port 7 (at boot and after each input), one
 * after the other, so their channels take the same slots every time. */
static void arm(void)
{
    if (P.ch[1].kind == KEPT_CTL)
        tcp_listen_send(P.ctx, P.ch[1].h, &(tcp_listen_t){REQ_LISTEN7, 0, 7, 4});
    idle();
    if (P.ch[2].kind == KEPT_CTL)
        udp_bind_send(P.ctx, P.ch[2].h, &(udp_bind_t){REQ_BIND7, 0, 7});
    idle();
}

static void boot(void)
{
    sim_node_state_load(pristine);
    memset(&P, 0, sizeof P);
    fz_net_reset(&N);
    ring_full = false;
    sim_config_t cfg = {.programs = programs,
                        .init_arg = manifest,
                        .init_arg_len = sizeof manifest - 1,
                        .seed = 1,
                        .trace = &sink};
    check(sim_boot(&cfg) == 0, "boot");
    net0_dev = k_device_add(&net0_ops);
    check(net0_dev > 0, "net0 stand-in");
    k_post(net0_dev, HAL_NET_LINK_UP, N.our_mac, 6);
    idle();
    check(P.ctx && P.nctl == 3, "the peer did not connect to net, tcp and udp");
    lwip_take(&H.quiet);
    arm();
    check(P.ch[3].kind == KEPT_LISTENER && P.ch[4].kind == KEPT_UDP,
          "the peer did not listen on port 7 and bind port 7");
    H.udp_base = udp_pcb_count() - 1;
    lwip_take(&H.lw);
    k_get_stats(&H.base);
    H.net = N;
    H.booted = true;
    H.inputs = 0;
    H.reboots++;
}

static void reboot_clean(void)
{
    audit(true);
    check(sim_teardown() == 0, "kernel memory leaked");
    H.booted = false;
}

static bool not_back(const char *why)
{
    if (verbose)
        fprintf(stderr, "not back at boot: %s\n", why);
    return false;
}

/*
 * After the client went away and lwIP settled: empty what a fresh boot would not hold (ARP
 * and neighbour caches, pcbs tcpip let go of: lwIP's own cleanup functions), reconnect the peer,
 * listen and bind again, and compare with the booted node. False: reboot.
 */
static bool back_to_boot(void)
{
    if (k_task_find("tcpip") == 0 || !P.ctx)
        return not_back("tcpip or the peer");
    while (tcp_tw_pcbs != NULL)
        tcp_abort(tcp_tw_pcbs); /* a TIME_WAIT pcb is freed without callbacks or a reset */
    /* what tcpip let go (its callbacks off the pcb) and lwIP still retransmits: dropped */
    for (struct tcp_pcb *p = tcp_active_pcbs; p != NULL;) {
        struct tcp_pcb *next = p->next;
        if (p->callback_arg != NULL || p->errf != NULL)
            return not_back("a TCP pcb tcpip still holds");
        tcp_abandon(p, 0); /* no reset: the harness is not tcpip's task, it cannot send */
        p = next;
    }
    for (struct netif *n = netif_list; n; n = n->next) {
        if (n->flags & NETIF_FLAG_ETHARP)
            etharp_cleanup_netif(n);
        nd6_cleanup_netif(n);
        reachable_time = H.lw.reachable_time; /* a router advertisement's, else as booted */
        retrans_timer = H.lw.retrans_timer;
        for (int i = 0; n != netif_default && n->loop_first != NULL && i < 16; i++)
            netif_poll(n); /* the loopback's queued MLD reports: heap as at boot */
    }
    if (tcp_active_pcbs != NULL || tcp_listen_pcbs.listen_pcbs != NULL || !nd6_empty())
        return not_back("lwIP's pcbs or neighbour tables");
    /* lwIP's TCP timer stops itself at its next tick once no pcb is left */
    for (int i = 0; i < 4 && !lwip_pools_at(&H.quiet, 0, true) && panics == 0; i++) {
        uint64_t d = k_next_deadline();
        if (d == UINT64_MAX)
            break;
        if (d > sim_now())
            sim_advance(d - sim_now());
        idle();
    }
    if (!lwip_pools_at(&H.quiet, 0, true)) {
        if (verbose) {
            fprintf(stderr, "heap %ld/%ld", (long)lwip_stats.mem.used, (long)H.quiet.mem_used);
            for (int i = 0; i < MEMP_MAX; i++)
                if (lwip_stats.memp[i] && lwip_stats.memp[i]->used != H.quiet.memp_used[i])
                    fprintf(stderr, " pool%d %ld/%ld", i, (long)lwip_stats.memp[i]->used,
                            (long)H.quiet.memp_used[i]);
            fputc('\n', stderr);
        }
        return not_back("lwIP's pools or heap");
    }
    peer_connect();
    idle();
    if (P.nctl != 3)
        return not_back("the peer did not connect again");
    arm();
    if (P.ch[3].kind != KEPT_LISTENER || P.ch[4].kind != KEPT_UDP || panics)
        return not_back("the listen and bind on port 7");
    k_stats_t st;
    k_get_stats(&st);
    lwip_base_t now;
    lwip_take(&now);
    if (verbose)
        fprintf(stderr,
                "back? tasks %u/%u channels %u/%u pools %d netif %d nd6 "
                "times %d udp %d/%d\n",
                st.tasks, H.base.tasks, st.channels, H.base.channels, lwip_pools_at(&H.lw, 0, true),
                now.nifs == H.lw.nifs && memcmp(now.nif, H.lw.nif, sizeof now.nif) == 0,
                now.reachable_time == H.lw.reachable_time, now.udp, H.lw.udp);
    return st.tasks == H.base.tasks && st.channels == H.base.channels &&
           lwip_pools_at(&H.lw, 0, true) && now.nifs == H.lw.nifs &&
           memcmp(now.nif, H.lw.nif, sizeof now.nif) == 0 &&
           now.reachable_time == H.lw.reachable_time && now.retrans_timer == H.lw.retrans_timer &&
           now.udp == H.lw.udp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!H.booted)
        boot();
    panics = 0;
    bool full = H.fresh_each || H.inputs % FULL_EVERY == FULL_EVERY - 1;
    N = H.net;
    ring_full = false;
    P.peak = 0;
    fz_in_t in = {data, size};
    static uint8_t frame[HAL_NET_MTU + 64];
    while (in.n && panics == 0 && k_task_find("tcpip") != 0) {
        uint8_t op = fz_byte(&in);
        kept_t *k;
        switch (op % 8) {
        case TRACE_CORPUS_TCPIP_FRAME:
        case TRACE_CORPUS_TCPIP_FRAME + 1:
        case TRACE_CORPUS_TCPIP_FRAME + 2: { /* a structured frame, after a time step */
            sim_advance((uint64_t)(fz_byte(&in) & 31) * TRACE_CORPUS_TCPIP_STEP_NS);
            size_t len = fz_net_build(&N, &in, frame, sizeof frame);
            post_frame(frame, len);
            break;
        }
        case TRACE_CORPUS_TCPIP_RAW: { /* a raw frame */
            sim_advance((uint64_t)(fz_byte(&in) & 31) * TRACE_CORPUS_TCPIP_STEP_NS);
            size_t len = fz_byte(&in);
            len = (len | (size_t)fz_byte(&in) << 8) % (HAL_NET_MTU + 1);
            for (size_t b = 0; b < len; b++)
                frame[b] = fz_byte(&in);
            post_frame(frame, len);
            break;
        }
        case TRACE_CORPUS_TCPIP_MSG:
        case TRACE_CORPUS_TCPIP_MSG + 1: /* a message of the channel's interface */
            if ((k = pick(&in)) != NULL)
                send_structured(&in, k);
            break;
        case TRACE_CORPUS_TCPIP_CHAN: /* a raw message, a close or hold of a channel, net0 */
            if ((k = pick(&in)) == NULL)
                break;
            switch (fz_byte(&in) % 5) {
            case 0:
            case 1:
                send_raw(&in, k);
                break;
            case 2:
                os_handle_close(P.ctx, k->h);
                k->kind = KEPT_FREE;
                break;
            case 3:
                k->held = !k->held; /* backpressure: tcpip's window closes */
                os_handle_hold(P.ctx, k->h, k->held);
                break;
            case 4:
                ring_full = !ring_full; /* net0's transmit ring fills, or drains */
                break;
            }
            break;
        case TRACE_CORPUS_TCPIP_TIME: /* a time jump: retransmissions, keepalives, TIME_WAIT */
            sim_advance(((uint64_t)fz_byte(&in) + 1) * 250000000ull);
            break;
        }
        idle();
        audit(full);
    }
    check(panics == 0, "tcpip panicked or faulted (an lwIP assertion is a panic)");
    /*
     * The client goes away: every channel closes. Then lwIP's timers run, each at its
     * deadline (lwIP runs a cyclic timer once however far time jumps, so its retransmissions
     * and closing states age by timer events, not by time), until lwIP is quiet (no active
     * pcb, no neighbour state, pools as at boot) or SETTLE_TIMEOUTS times: about 40 virtual
     * seconds, which ends SYN_RCVD and FIN_WAIT_2 but not every retransmission, TIME_WAIT, or
     * a connection whose peer keeps its window shut while tcpip still holds data for it, so
     * those are not counted. Listeners, connects still in SYN_SENT and UDP sockets must be
     * gone.
     */
    ring_full = false;
    for (int i = 0; P.ctx && i < KEPT_MAX; i++)
        if (P.ch[i].kind != KEPT_FREE) {
            os_handle_close(P.ctx, P.ch[i].h);
            P.ch[i].kind = KEPT_FREE;
        }
    idle();
    int settled = 0;
    for (; settled < SETTLE_TIMEOUTS && panics == 0 && !lwip_quiet(); settled++) {
        uint64_t d = k_next_deadline();
        if (d == UINT64_MAX)
            break;
        if (d > sim_now())
            sim_advance(d - sim_now());
        idle();
    }
    check(panics == 0, "tcpip panicked or faulted after its client went away");
    if (verbose && !lwip_quiet()) {
        fprintf(stderr, "not quiet: active %p nd6 %d tw %d mem %ld/%ld", (void *)tcp_active_pcbs,
                nd6_empty(), tw_count(), (long)lwip_stats.mem.used, (long)H.quiet.mem_used);
        for (int i = 0; i < MEMP_MAX; i++)
            if (lwip_stats.memp[i] && lwip_stats.memp[i]->used != H.quiet.memp_used[i])
                fprintf(stderr, " pool%d %ld/%ld", i, (long)lwip_stats.memp[i]->used,
                        (long)H.quiet.memp_used[i]);
        fputc('\n', stderr);
    }
    if (verbose)
        fprintf(stderr, "settled after %d timer events at %.3f s virtual, next deadline %llu\n",
                settled, sim_now() / 1e9, (unsigned long long)k_next_deadline());
    if (verbose)
        for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
            fprintf(stderr, "left: TCP pcb %u -> %u state %d\n", p->local_port, p->remote_port,
                    (int)p->state);
    for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
        check(p->state != SYN_SENT,
              "lwIP still has a connect in SYN_SENT after its channel closed");
    check(tcp_listen_pcbs.listen_pcbs == NULL,
          "lwIP still has a listening pcb after its listener channel closed");
    check(udp_pcb_count() == H.udp_base, "lwIP still has UDP pcbs after their channels closed");
    audit(true); /* the full scan after every input, as when every input booted */
    if (verbose) {
        /* what the input reached: the console, and what tcpip wrote */
        fprintf(stderr, "%s--- tcpip wrote %llu frames; channels kept:", sim_console_output(NULL),
                (unsigned long long)N.frames_seen);
        fprintf(stderr, " %d at most\n", P.peak);
    }
    sim_console_clear();
    bool back = !H.fresh_each && back_to_boot();
    check(panics == 0, "tcpip panicked or faulted while its client came back");
    if (!H.fresh_each && !back)
        H.dirty++;
    /* libFuzzer's first call (an empty input) is not counted for coverage: the node it booted
     * goes, so the boot's edges count with the first real input */
    if (!back || ++H.inputs >= REBOOT_EVERY || H.calls++ == 0)
        reboot_clean();
    if (verbose)
        fprintf(stderr, "%s (%lu boots, %lu of them because the node was not back)\n",
                back ? "persistent: back at boot" : "reboot", H.reboots, H.dirty);
    return 0;
}
