/* net.c — the simulator's switch: every node's net0 on one Ethernet, each frame under the seed. */
#include <sim/net.h>

#include <stdlib.h>
#include <string.h>

#include <hal/device.h>
#include <hal/net.h>
#include <k/kernel.h>
#include <sim/faults.h>
#include <sim/sim.h>

#include "sim_priv.h"

enum {
    NET_LATENCY_NS = 50000, /* 50 us: a LAN */
    NET_PATH_FRAMES = 256,
    ETH_HEADER = 14,
};

/* A copy of a frame on its way to one node. */
typedef struct sim_frame {
    struct sim_frame *prev, *next; /* every frame in flight, freed at teardown */
    uint32_t from, to;
    size_t len;
    uint8_t data[];
} sim_frame_t;

typedef struct path {
    uint64_t last;     /* when the latest in-order frame on it arrives */
    uint32_t inflight; /* frames on it now */
} path_t;

typedef struct cut {
    uint32_t from, to;
    uint64_t start, end;
} cut_t;

static struct {
    sim_net_config_t cfg;
    bool attached[SIM_NODES_MAX];
    int dev[SIM_NODES_MAX];
    uint8_t mac[SIM_NODES_MAX][6];
    hal_device_ops_t ops[SIM_NODES_MAX];
    path_t paths[SIM_NODES_MAX][SIM_NODES_MAX];
    cut_t cuts[SIM_NET_CUTS_MAX];
    size_t ncuts;
    sim_frame_t *inflight; /* list head */
    sim_net_stats_t st;
} W;

static uint64_t latency(void)
{
    return W.cfg.latency_ns ? W.cfg.latency_ns : NET_LATENCY_NS;
}

static bool is_cut(uint32_t from, uint32_t to)
{
    uint64_t now = sim_now();
    for (size_t i = 0; i < W.ncuts; i++)
        if (W.cuts[i].from == from && W.cuts[i].to == to && W.cuts[i].start <= now &&
            now < W.cuts[i].end)
            return true;
    return false;
}

static void unlink_frame(sim_frame_t *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        W.inflight = f->next;
    if (f->next)
        f->next->prev = f->prev;
}

/* The frame's time has come: post it to its node's net0 (entering that node). */
static void deliver(void *self, uint64_t arg)
{
    (void)arg;
    sim_frame_t *f = self;
    unlink_frame(f);
    W.paths[f->from][f->to].inflight--;
    if (!sim_node_alive(f->to)) {
        W.st.down++;
    } else if (sim_node_post(f->to, W.dev[f->to], HAL_NET_FRAME, f->data, f->len) == 0) {
        W.st.delivered++;
    } else {
        W.st.queue_full++; /* Ethernet may drop a frame; TCP resends */
    }
    free(f);
}

static void schedule(uint32_t from, uint32_t to, const void *data, size_t len, uint64_t at)
{
    path_t *p = &W.paths[from][to];
    uint32_t max = W.cfg.path_frames_max ? W.cfg.path_frames_max : NET_PATH_FRAMES;
    if (p->inflight >= max) {
        W.st.overflow++;
        return;
    }
    sim_frame_t *f = malloc(sizeof *f + len);
    if (!f) {
        W.st.overflow++; /* the host is out of memory: the frame is lost like any other */
        return;
    }
    f->from = from;
    f->to = to;
    f->len = len;
    memcpy(f->data, data, len);
    if (sim_at_node(to, at, deliver, f, 0) < 0) {
        free(f);
        W.st.overflow++;
        return;
    }
    f->prev = NULL;
    f->next = W.inflight;
    if (W.inflight)
        W.inflight->prev = f;
    W.inflight = f;
    p->inflight++;
}

/* One copy of a frame on the path from -> to, as the seed decides. */
static void forward(uint32_t from, uint32_t to, const void *data, size_t len)
{
    if (is_cut(from, to)) {
        W.st.cut++;
        return;
    }
    sim_net_verdict_t v = sim_fault_net_frame(from, to, len);
    if (v.action == SIM_NET_DROP) {
        W.st.lost++;
        return;
    }
    path_t *p = &W.paths[from][to];
    uint64_t now = sim_now(), lat = latency(), at;
    if (v.action == SIM_NET_REORDER) {
        /* anywhere up to the path's latency: ahead of frames sent just before it */
        at = now + 1 + sim_rand() % lat;
        W.st.reordered++;
    } else {
        at = now + lat + v.delay_ns;
        if (at < p->last)
            at = p->last; /* in order on its path */
        p->last = at;
    }
    schedule(from, to, data, len, at);
    if (v.dup) {
        W.st.duplicated++;
        schedule(from, to, data, len, at + 1 + sim_rand() % lat);
    }
}

static int net_write(void *self, uint32_t code, const void *buf, size_t len)
{
    uint32_t from = (uint32_t)(uintptr_t)self;
    if (code != HAL_NET_FRAME || len == 0)
        return OS_EINVAL;
    if (len > HAL_NET_MTU)
        return OS_E2BIG;
    W.st.sent++;
    if (W.cfg.tap)
        W.cfg.tap(W.cfg.tap_self, sim_now(), from, buf, len);
    if (len < ETH_HEADER) {
        W.st.unknown++;
        return 0;
    }
    const uint8_t *dst = buf;
    size_t n = sim_node_count();
    if (dst[0] & 1) { /* broadcast or multicast: every other node */
        for (uint32_t to = 0; to < n; to++)
            if (to != from && W.attached[to])
                forward(from, to, buf, len);
        return 0;
    }
    for (uint32_t to = 0; to < n; to++) {
        if (to != from && W.attached[to] && memcmp(W.mac[to], dst, 6) == 0) {
            forward(from, to, buf, len);
            return 0;
        }
    }
    W.st.unknown++;
    return 0;
}

static void net_resume(void *self)
{
    (void)self; /* frames that found the queue full were dropped: nothing waits */
}

int sim_net_attach(size_t node, const uint8_t mac[6])
{
    if (node >= SIM_NODES_MAX)
        return OS_EINVAL;
    W.ops[node] = (hal_device_ops_t){"net0", (void *)(uintptr_t)node, net_write, net_resume};
    int dev = k_device_add(&W.ops[node]);
    if (dev < 0)
        return dev;
    W.dev[node] = dev;
    memcpy(W.mac[node], mac, 6);
    W.attached[node] = true;
    return 0;
}

void sim_net_link_up(size_t node)
{
    /* queued until a task opens net0, as on the other platforms */
    sim_node_post(node, W.dev[node], HAL_NET_LINK_UP, W.mac[node], 6);
}

void sim_net_reset(void)
{
    while (W.inflight) {
        sim_frame_t *f = W.inflight;
        W.inflight = f->next;
        free(f);
    }
    memset(&W, 0, sizeof W);
}

void sim_net_configure(const sim_net_config_t *cfg)
{
    W.cfg = *cfg;
}

int sim_net_cut(uint32_t from, uint32_t to, uint64_t start_ns, uint64_t end_ns)
{
    size_t n = sim_node_count();
    if (from >= n || to >= n || from == to || end_ns <= start_ns)
        return OS_EINVAL;
    if (W.ncuts == SIM_NET_CUTS_MAX)
        return OS_ENOSPC;
    W.cuts[W.ncuts++] = (cut_t){from, to, start_ns, end_ns};
    return 0;
}

int sim_net_partition(uint32_t a, uint32_t b, uint64_t start_ns, uint64_t end_ns)
{
    if (W.ncuts + 2 > SIM_NET_CUTS_MAX)
        return OS_ENOSPC;
    int rc = sim_net_cut(a, b, start_ns, end_ns);
    return rc ? rc : sim_net_cut(b, a, start_ns, end_ns);
}

void sim_net_stats(sim_net_stats_t *out)
{
    *out = W.st;
}
