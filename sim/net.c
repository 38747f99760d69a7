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

/* Tags of the switch's own seeded streams (sim_stream): one per kind of draw. */
#define TAG_TAIL 0x7461696c00000000ull    /* per path: the latency tail */
#define TAG_CLOG 0x636c6f6700000000ull    /* per path: chaos clogs */
#define TAG_PART 0x7061727400000000ull    /* chaos partitions */
#define TAG_SWIZZLE 0x7377697a00000000ull /* the swizzle-clog */

/* A copy of a frame on its way to one node. */
typedef struct sim_frame {
    struct sim_frame *prev, *next; /* every frame in flight, freed at teardown */
    struct sim_frame *held;        /* the next frame waiting on the same clogged path */
    bool was_held;                 /* counted in .clogged already */
    uint32_t from, to;
    size_t len;
    uint8_t data[];
} sim_frame_t;

/* A run of windows drawn from one stream: gaps and lengths exponential, none past until. */
typedef struct windows {
    uint64_t rng;
    uint64_t start, end; /* the current (or last) window [start, end) */
    bool done;           /* no window starts before until any more */
} windows_t;

typedef struct path {
    /* the frames on it */
    uint64_t last;       /* when the latest in-order frame on it arrives */
    uint64_t busy_until; /* bandwidth: when it has sent its last frame out */
    uint32_t inflight;   /* frames on it now, held ones included */
    sim_frame_t *held_head, *held_tail; /* waiting for the unclog, in arrival order */
    bool release_pending;               /* a release action is scheduled */
    /* its character */
    sim_net_link_t link; /* zero fields: the switch's defaults */
    uint64_t tail_rng;
    bool tail_seeded;
    /* chaos */
    windows_t clogs;              /* sim_net_chaos' clogs of this path */
    bool clogs_on;
    uint64_t swizzle_start, swizzle_end; /* its swizzle clog (end 0: none) */
} path_t;

typedef struct cut {
    uint32_t from, to; /* either may be SIM_NET_ANY */
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
    cut_t clogs[SIM_NET_CUTS_MAX];
    size_t nclogs;
    sim_frame_t *inflight; /* list head */
    sim_net_stats_t st;
    sim_net_deliver_tap_fn dtap;
    void *dtap_self;
    /* sim_net_chaos */
    sim_net_chaos_t chaos;
    uint64_t chaos_from, chaos_until; /* the window of its faults */
    windows_t parts;                  /* its partitions, one at a time */
    bool parts_on;
    uint64_t part_side;               /* the current partition: one side (bit i: node i) */
    bool part_one_way;                /* only side -> the rest is cut */
    uint64_t chaos_heal;              /* when its last fault ends */
    sim_net_swizzle_t swizzle;
} W;

static uint64_t latency(void)
{
    return W.cfg.latency_ns ? W.cfg.latency_ns : NET_LATENCY_NS;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool matches(const cut_t *c, uint32_t from, uint32_t to)
{
    return (c->from == SIM_NET_ANY || c->from == from) && (c->to == SIM_NET_ANY || c->to == to);
}

/* ---- seeded fault windows ----------------------------------------------------------------- */

/* Draw w's next window: a gap of mean `every` after the last one, a length of mean `len`,
 * cut short at until; none starting at until or later. */
static void windows_next(windows_t *w, uint64_t every, uint64_t len, uint64_t until)
{
    uint64_t start = add_sat(w->end, 1 + sim_exp_draw(&w->rng, every));
    uint64_t end = add_sat(start, 1 + sim_exp_draw(&w->rng, len));
    if (start >= until) {
        w->done = true;
        return;
    }
    w->start = start;
    w->end = end < until ? end : until;
}

static uint64_t all_nodes(uint32_t n)
{
    return n >= 64 ? UINT64_MAX : (1ull << n) - 1;
}

/* The current partition's side and direction, drawn after its window. */
static void partition_draw(windows_t *w, uint32_t n, uint64_t *side, bool *one_way)
{
    const sim_net_chaos_t *c = &W.chaos;
    uint64_t all = all_nodes(n);
    sim_net_split_t split = c->split;
    if (split == SIM_NET_SPLIT_ANY)
        split = (sim_net_split_t)(1 + sim_splitmix64(&w->rng) % 3);
    uint64_t s = 0;
    if (split == SIM_NET_SPLIT_ISOLATE) {
        s = 1ull << (sim_splitmix64(&w->rng) % n);
    } else if (split == SIM_NET_SPLIT_HALVES) {
        while (s == 0 || s == all) /* each node a side of its own: both sides non-empty */
            s = sim_splitmix64(&w->rng) & all;
    } else {
        /* SIZED: a size 1..n-1, then that many nodes (a partial shuffle) */
        uint32_t order[SIM_NODES_MAX];
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        uint32_t size = 1 + (uint32_t)(sim_splitmix64(&w->rng) % (n - 1));
        for (uint32_t i = 0; i < size; i++) {
            uint32_t j = i + (uint32_t)(sim_splitmix64(&w->rng) % (n - i));
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
            s |= 1ull << order[i];
        }
    }
    *one_way = c->asymmetric_pct && sim_splitmix64(&w->rng) % 100 < c->asymmetric_pct;
    if (*one_way && (sim_splitmix64(&w->rng) & 1))
        s = all & ~s; /* which side cannot reach the other: drawn too */
    *side = s;
}

static void partitions_next(windows_t *w, uint64_t *side, bool *one_way)
{
    windows_next(w, W.chaos.partition_every_mean_ns, W.chaos.partition_heal_mean_ns,
                 W.chaos_until);
    if (!w->done)
        partition_draw(w, (uint32_t)sim_node_count(), side, one_way);
}

static void clogs_next(windows_t *w)
{
    windows_next(w, W.chaos.clog_every_mean_ns, W.chaos.clog_mean_ns, W.chaos_until);
}

static windows_t partitions_first(void)
{
    return (windows_t){.rng = sim_stream(TAG_PART, 0), .end = W.chaos_from};
}

static windows_t clogs_first(uint32_t from, uint32_t to)
{
    return (windows_t){.rng = sim_stream(TAG_CLOG, (uint64_t)from * SIM_NODES_MAX + to),
                       .end = W.chaos_from};
}

/* ---- cuts and clogs ----------------------------------------------------------------------- */

static bool is_cut(uint32_t from, uint32_t to)
{
    uint64_t now = sim_now();
    for (size_t i = 0; i < W.ncuts; i++)
        if (matches(&W.cuts[i], from, to) && W.cuts[i].start <= now && now < W.cuts[i].end)
            return true;
    if (W.parts_on) {
        while (!W.parts.done && now >= W.parts.end)
            partitions_next(&W.parts, &W.part_side, &W.part_one_way);
        if (!W.parts.done && W.parts.start <= now) {
            bool a = W.part_side >> from & 1, b = W.part_side >> to & 1;
            if (a && !b)
                return true;
            if (!W.part_one_way && b && !a)
                return true;
        }
    }
    return false;
}

/* 0 if the path from -> to is not clogged now; else the earliest time known not to be (a
 * chaos clog that starts before it is found when that time comes). */
static uint64_t clogged_until(uint32_t from, uint32_t to)
{
    path_t *p = &W.paths[from][to];
    uint64_t now = sim_now(), e = now;
    if (p->clogs_on)
        while (!p->clogs.done && now >= p->clogs.end)
            clogs_next(&p->clogs);
    for (bool more = true; more;) {
        more = false;
        for (size_t i = 0; i < W.nclogs; i++) {
            const cut_t *c = &W.clogs[i];
            if (matches(c, from, to) && c->start <= e && e < c->end) {
                e = c->end;
                more = true;
            }
        }
        if (p->clogs_on && !p->clogs.done && p->clogs.start <= e && e < p->clogs.end) {
            e = p->clogs.end;
            more = true;
        }
        if (p->swizzle_start <= e && e < p->swizzle_end) {
            e = p->swizzle_end;
            more = true;
        }
    }
    return e == now ? 0 : e;
}

/* ---- frames ------------------------------------------------------------------------------- */

static void unlink_frame(sim_frame_t *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        W.inflight = f->next;
    if (f->next)
        f->next->prev = f->prev;
}

/* Hand the frame to its node's net0 (entering that node), or count why not; free it. */
static void post(sim_frame_t *f)
{
    unlink_frame(f);
    W.paths[f->from][f->to].inflight--;
    if (!sim_node_alive(f->to)) {
        W.st.down++;
    } else if (sim_node_post(f->to, W.dev[f->to], HAL_NET_FRAME, f->data, f->len) == 0) {
        W.st.delivered++;
        W.st.paused += sim_node_paused(f->to) != 0; /* it waits in the queue */
        if (W.dtap)
            W.dtap(W.dtap_self, sim_now(), f->from, f->to, f->data, f->len);
    } else {
        W.st.queue_full++; /* Ethernet may drop a frame; TCP resends */
    }
    free(f);
}

static void release(void *self, uint64_t arg);

/* Make sure the path's held frames are released when it unclogs (at `at`, or checked then). */
static void release_later(path_t *p, uint32_t from, uint32_t to, uint64_t at)
{
    if (p->release_pending)
        return;
    if (sim_at_node(to, at, release, p, (uint64_t)from << 32 | to) < 0) {
        /* the host is out of memory: the held frames are lost like any other */
        while (p->held_head) {
            sim_frame_t *f = p->held_head;
            p->held_head = f->held;
            unlink_frame(f);
            p->inflight--;
            W.st.overflow++;
            free(f);
        }
        p->held_tail = NULL;
        return;
    }
    p->release_pending = true;
}

/* The path's unclog time: its held frames go on, in the order they arrived. */
static void release(void *self, uint64_t arg)
{
    path_t *p = self;
    uint32_t from = (uint32_t)(arg >> 32), to = (uint32_t)arg;
    p->release_pending = false;
    uint64_t until = clogged_until(from, to);
    if (until) {
        release_later(p, from, to, until); /* clogged again (a chaos clog began meanwhile) */
        return;
    }
    while (p->held_head) {
        sim_frame_t *f = p->held_head;
        p->held_head = f->held;
        post(f);
    }
    p->held_tail = NULL;
}

/* The frame's time has come: post it, or hold it while its path is clogged. */
static void deliver(void *self, uint64_t arg)
{
    (void)arg;
    sim_frame_t *f = self;
    path_t *p = &W.paths[f->from][f->to];
    uint64_t until = p->held_head ? 0 : clogged_until(f->from, f->to);
    if (!p->held_head && !until) {
        post(f);
        return;
    }
    /* behind the frames held already, or the first one of a clog: they leave in order */
    if (!f->was_held) {
        f->was_held = true;
        W.st.clogged++;
    }
    f->held = NULL;
    if (p->held_tail)
        p->held_tail->held = f;
    else
        p->held_head = f;
    p->held_tail = f;
    if (until)
        release_later(p, f->from, f->to, until);
}

static uint32_t capacity(const path_t *p)
{
    if (p->link.capacity)
        return p->link.capacity;
    return W.cfg.path_frames_max ? W.cfg.path_frames_max : NET_PATH_FRAMES;
}

/* Put one copy on the path to arrive at `at`; false if the path was full (counted). */
static bool schedule(uint32_t from, uint32_t to, const void *data, size_t len, uint64_t at)
{
    path_t *p = &W.paths[from][to];
    if (p->inflight >= capacity(p)) {
        W.st.overflow++;
        return false;
    }
    sim_frame_t *f = malloc(sizeof *f + len);
    if (!f) {
        W.st.overflow++; /* the host is out of memory: the frame is lost like any other */
        return false;
    }
    f->from = from;
    f->to = to;
    f->len = len;
    f->held = NULL;
    f->was_held = false;
    memcpy(f->data, data, len);
    if (sim_at_node(to, at, deliver, f, 0) < 0) {
        free(f);
        W.st.overflow++;
        return false;
    }
    f->prev = NULL;
    f->next = W.inflight;
    if (W.inflight)
        W.inflight->prev = f;
    W.inflight = f;
    p->inflight++;
    return true;
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
    uint64_t now = sim_now(), lat = p->link.latency_ns ? p->link.latency_ns : latency(), at;
    uint64_t bw = p->link.bandwidth_bps ? p->link.bandwidth_bps : W.cfg.bandwidth_bps;
    uint64_t tail = p->link.tail_mean_ns ? p->link.tail_mean_ns : W.cfg.tail_mean_ns;
    /* bandwidth: the frame leaves when the path has sent the ones before it, then its own
     * bits take len * 8 / bandwidth */
    uint64_t out = now, busy = 0;
    if (bw) {
        uint64_t bits_ns = (uint64_t)len * 8 * 1000000000ull;
        busy = (now > p->busy_until ? now : p->busy_until) + (bits_ns + bw - 1) / bw;
        out = busy;
    }
    uint64_t last = p->last;
    if (v.action == SIM_NET_REORDER) {
        /* anywhere up to the path's latency: ahead of frames sent just before it */
        at = out + 1 + sim_rand() % lat;
        W.st.reordered++;
    } else if (tail) {
        /* an exponential tail per frame: frames overtake each other on the path */
        if (!p->tail_seeded) {
            p->tail_rng = sim_stream(TAG_TAIL, (uint64_t)from * SIM_NODES_MAX + to);
            p->tail_seeded = true;
        }
        at = out + lat + v.delay_ns + sim_exp_draw(&p->tail_rng, tail);
    } else {
        at = out + lat + v.delay_ns;
        if (at < last)
            at = last; /* in order on its path */
        last = at;
    }
    p->last = last;
    if (schedule(from, to, data, len, at) && busy)
        p->busy_until = busy; /* a frame the path could not take never used its bandwidth */
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

/* from and to name nodes of the run, or SIM_NET_ANY; a path needs two nodes. */
static bool valid_path(uint32_t from, uint32_t to)
{
    size_t n = sim_node_count();
    return (from == SIM_NET_ANY || from < n) && (to == SIM_NET_ANY || to < n) &&
           (from != to || from == SIM_NET_ANY);
}

int sim_net_cut(uint32_t from, uint32_t to, uint64_t start_ns, uint64_t end_ns)
{
    if (!valid_path(from, to) || end_ns <= start_ns)
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

int sim_net_clog(uint32_t from, uint32_t to, uint64_t start_ns, uint64_t end_ns)
{
    if (!valid_path(from, to) || end_ns <= start_ns)
        return OS_EINVAL;
    if (W.nclogs == SIM_NET_CUTS_MAX)
        return OS_ENOSPC;
    W.clogs[W.nclogs++] = (cut_t){from, to, start_ns, end_ns};
    return 0;
}

int sim_net_set_link(uint32_t from, uint32_t to, const sim_net_link_t *l)
{
    if (!l || !valid_path(from, to))
        return OS_EINVAL;
    uint32_t n = (uint32_t)sim_node_count();
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = 0; b < n; b++)
            if (a != b && (from == SIM_NET_ANY || from == a) && (to == SIM_NET_ANY || to == b))
                W.paths[a][b].link = *l;
    return 0;
}

void sim_net_set_deliver_tap(sim_net_deliver_tap_fn fn, void *self)
{
    W.dtap = fn;
    W.dtap_self = self;
}

void sim_net_stats(sim_net_stats_t *out)
{
    *out = W.st;
}

/* ---- seeded chaos ------------------------------------------------------------------------- */

static void sort_times(uint64_t *t, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && t[j - 1] > t[j]; j--) {
            uint64_t x = t[j - 1];
            t[j - 1] = t[j];
            t[j] = x;
        }
}

static void shuffle(uint64_t *rng, uint32_t *v, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(sim_splitmix64(rng) % i), x = v[i - 1];
        v[i - 1] = v[j];
        v[j] = x;
    }
}

/* FoundationDB's swizzle-clog: a random non-empty subset of the nodes; each is clogged (all
 * its paths, both ways) at a random time in the first half of [start, end), one after the
 * other, and unclogged at a random time in the second half, in another random order. */
static void swizzle_draw(uint64_t start, uint64_t end, uint32_t n)
{
    sim_net_swizzle_t *z = &W.swizzle;
    uint64_t rng = sim_stream(TAG_SWIZZLE, 0), members = 0;
    while (members == 0)
        members = sim_splitmix64(&rng) & all_nodes(n);
    for (uint32_t i = 0; i < n; i++)
        if (members >> i & 1)
            z->clog_order[z->count++] = i;
    shuffle(&rng, z->clog_order, z->count);
    memcpy(z->unclog_order, z->clog_order, z->count * sizeof z->clog_order[0]);
    while (z->count > 1 && memcmp(z->unclog_order, z->clog_order,
                                  z->count * sizeof z->clog_order[0]) == 0)
        shuffle(&rng, z->unclog_order, z->count);
    uint64_t mid = start + (end - start) / 2;
    for (uint32_t i = 0; i < z->count; i++) {
        z->clog_ns[i] = start + sim_splitmix64(&rng) % (mid - start);
        z->unclog_ns[i] = mid + sim_splitmix64(&rng) % (end - mid);
    }
    sort_times(z->clog_ns, z->count);
    sort_times(z->unclog_ns, z->count);
    /* each node's window; a path is clogged while either of its ends is */
    uint64_t on[SIM_NODES_MAX] = {0}, off[SIM_NODES_MAX] = {0};
    for (uint32_t i = 0; i < z->count; i++) {
        on[z->clog_order[i]] = z->clog_ns[i];
        off[z->unclog_order[i]] = z->unclog_ns[i];
    }
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = 0; b < n; b++) {
            bool ma = members >> a & 1, mb = members >> b & 1;
            if (a == b || (!ma && !mb))
                continue;
            path_t *p = &W.paths[a][b];
            p->swizzle_start = ma && mb ? (on[a] < on[b] ? on[a] : on[b]) : ma ? on[a] : on[b];
            p->swizzle_end = ma && mb ? (off[a] > off[b] ? off[a] : off[b]) : ma ? off[a] : off[b];
        }
}

int sim_net_chaos(const sim_net_chaos_t *c)
{
    if (!c || c->split > SIM_NET_SPLIT_SIZED || c->asymmetric_pct > 100)
        return OS_EINVAL;
    bool swizzle = c->swizzle_start_ns || c->swizzle_end_ns;
    if (swizzle && c->swizzle_end_ns <= c->swizzle_start_ns)
        return OS_EINVAL;
    uint32_t n = (uint32_t)sim_node_count();
    W.chaos = *c;
    W.chaos_from = sim_now();
    W.chaos_until = c->until_ns ? c->until_ns : UINT64_MAX;
    W.parts_on = n >= 2 && c->partition_every_mean_ns && c->partition_heal_mean_ns;
    W.parts = partitions_first();
    W.part_side = 0;
    bool clogs_on = c->clog_every_mean_ns && c->clog_mean_ns;
    memset(&W.swizzle, 0, sizeof W.swizzle);
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = 0; b < n; b++) {
            path_t *p = &W.paths[a][b];
            p->clogs_on = clogs_on && a != b;
            p->clogs = clogs_first(a, b);
            p->swizzle_start = p->swizzle_end = 0;
        }
    uint64_t zend = c->swizzle_end_ns < W.chaos_until ? c->swizzle_end_ns : W.chaos_until;
    if (swizzle && n >= 2 && c->swizzle_start_ns < zend && zend - c->swizzle_start_ns >= 2)
        swizzle_draw(c->swizzle_start_ns, zend, n);

    /* when the last of them heals: the same draws, made now on copies of the streams */
    uint64_t heal = 0;
    if (W.parts_on || clogs_on) {
        if (W.chaos_until == UINT64_MAX) {
            heal = UINT64_MAX; /* they go on as long as the run */
        } else {
            windows_t w = partitions_first();
            uint64_t side;
            bool one_way;
            for (partitions_next(&w, &side, &one_way); W.parts_on && !w.done;
                 partitions_next(&w, &side, &one_way))
                heal = w.end > heal ? w.end : heal;
            for (uint32_t a = 0; clogs_on && a < n; a++)
                for (uint32_t b = 0; b < n; b++)
                    for (w = clogs_first(a, b), clogs_next(&w); a != b && !w.done; clogs_next(&w))
                        heal = w.end > heal ? w.end : heal;
        }
    }
    for (uint32_t i = 0; i < W.swizzle.count; i++)
        heal = W.swizzle.unclog_ns[i] > heal ? W.swizzle.unclog_ns[i] : heal;
    W.chaos_heal = heal;
    return 0;
}

size_t sim_net_chaos_faults(uint64_t before_ns, sim_net_fault_t *out, size_t max)
{
    size_t k = 0;
    uint32_t n = (uint32_t)sim_node_count();
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        if (k < max)                                                                               \
            out[k] = (sim_net_fault_t){__VA_ARGS__};                                               \
        k++;                                                                                       \
    } while (0)
    if (W.parts_on) {
        windows_t w = partitions_first();
        uint64_t side = 0;
        bool one_way = false;
        for (partitions_next(&w, &side, &one_way); !w.done && w.start < before_ns;
             partitions_next(&w, &side, &one_way))
            EMIT(.kind = SIM_NET_FAULT_PARTITION, .start_ns = w.start, .end_ns = w.end,
                 .side = side, .one_way = one_way, .from = SIM_NET_ANY, .to = SIM_NET_ANY);
    }
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = 0; b < n; b++) {
            if (!W.paths[a][b].clogs_on)
                continue;
            windows_t w = clogs_first(a, b);
            for (clogs_next(&w); !w.done && w.start < before_ns; clogs_next(&w))
                EMIT(.kind = SIM_NET_FAULT_CLOG, .start_ns = w.start, .end_ns = w.end, .from = a,
                     .to = b);
        }
    for (uint32_t i = 0; i < W.swizzle.count; i++) {
        uint32_t node = W.swizzle.clog_order[i];
        uint64_t end = 0;
        for (uint32_t j = 0; j < W.swizzle.count; j++)
            if (W.swizzle.unclog_order[j] == node)
                end = W.swizzle.unclog_ns[j];
        if (W.swizzle.clog_ns[i] < before_ns)
            EMIT(.kind = SIM_NET_FAULT_SWIZZLE, .start_ns = W.swizzle.clog_ns[i], .end_ns = end,
                 .from = node, .to = SIM_NET_ANY);
    }
#undef EMIT
    return k;
}

void sim_net_swizzle_plan(sim_net_swizzle_t *out)
{
    *out = W.swizzle;
}

uint64_t sim_net_last_heal(void)
{
    uint64_t heal = W.chaos_heal;
    for (size_t i = 0; i < W.ncuts; i++)
        heal = W.cuts[i].end > heal ? W.cuts[i].end : heal;
    for (size_t i = 0; i < W.nclogs; i++)
        heal = W.clogs[i].end > heal ? W.clogs[i].end : heal;
    return heal;
}
