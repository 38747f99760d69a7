/* sim.c — the deterministic platform: virtual clock, seeded entropy, scripted console, one thread.
 */
#include <sim/sim.h>

#include <stdlib.h>
#include <string.h>

#include <hal/console.h>
#include <hal/device.h>
#include <hal/host.h>
#include <k/fault.h>
#include <k/kernel.h>

#include "sim_priv.h"

typedef struct sim_action sim_action_t;

/* One node: a whole Orrery with its own kernel (its state section), devices and console. */
typedef struct sim_node {
    uint64_t deadline; /* its kernel's one HAL timer; UINT64_MAX: disarmed */
    uint64_t rng;      /* splitmix64 state for its entropy */
    bool busy;         /* may have a ready task (cleared when k_run_one finds none) */
    void *saved;       /* its state section while another node's is loaded (several nodes) */
    /* console output */
    char *out;
    size_t out_len, out_cap;
    void (*out_fn)(void *, const void *, size_t);
    void *out_self;
    /* console input */
    int console_dev;
    const char *script; /* next unread byte of the script, NULL when done */
    sim_input_fn read_fn;
    void *read_self;
    bool want_eof, eof_posted, input_done;
    bool blocked; /* k_post said OS_EFULL: wait for resume */
    char pending[HAL_CONSOLE_LINE_MAX + 1];
    size_t pending_len; /* real length, may exceed the buffer (overlong) */
    bool has_pending;
    /* shutdown */
    bool shutdown;
    int status;
    bool booted;
    unsigned boots; /* how many times it booted (power cuts reboot it) */
    /* node faults (sim_node_crash_at, sim_node_pause) */
    bool down;                    /* crashed: neither booted nor shut down, boots at down_until */
    uint64_t down_until;          /* the latest reboot time its crashes asked for */
    uint64_t paused_until;        /* runs nothing before this virtual time */
    sim_config_t cfg;             /* its config, to boot it again after a power cut */
    hal_device_ops_t console_ops; /* its self is this node */
} sim_node_t;

static struct {
    /* virtual time, one for every node */
    uint64_t now;
    uint64_t seed;     /* cfgs[0].seed: the streams of sim_stream derive from it */
    uint64_t frng;     /* splitmix64 state for sim_rand: faults, latencies */
    uint64_t nrng;     /* which node runs next, when several have work */
    uint64_t cost_max; /* each event costs 1..cost_max ns of virtual time (0: none) */
    /* timed actions (console lines at virtual times, injected faults, frames), by (time, seq) */
    sim_action_t *acts;
    size_t nacts, cap_acts;
    uint64_t act_seq;
    /* nodes */
    sim_node_t *nodes;
    size_t nnodes;
    size_t cur;       /* the node whose state is loaded */
    bool multi;       /* sim_boot_nodes: nodes swap their state sections */
    void *host_saved; /* the process's own state section, put back at teardown */
} S;

static long node_leaks[SIM_NODES_MAX];
static long reboot_leaks[SIM_NODES_MAX]; /* left by kernels torn down at power cuts */
static uint64_t cut_events[SIM_NODES_MAX], cut_messages[SIM_NODES_MAX]; /* ran by those */

#define N (&S.nodes[S.cur]) /* the current node */

struct sim_action {
    uint64_t t, seq;
    size_t node;      /* current while it runs */
    sim_action_fn fn; /* NULL: a console line */
    void *self;
    uint64_t arg;
    char *line;
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- nodes ------------------------------------------------------------------------------ */

size_t sim_node_current(void)
{
    return S.cur;
}

void sim_node_enter(size_t i)
{
    if (i == S.cur || i >= S.nnodes)
        return;
    if (S.multi) {
        sim_node_state_save(S.nodes[S.cur].saved);
        sim_node_state_load(S.nodes[i].saved);
    }
    S.cur = i;
}

/* Whether node n is paused now: it then runs no event, timer or console input. */
static bool paused(const sim_node_t *n)
{
    return n->paused_until > S.now;
}

int sim_node_paused(size_t i)
{
    return i < S.nnodes && paused(&S.nodes[i]);
}

int sim_node_alive(size_t i)
{
    return i < S.nnodes && S.nodes[i].booted && !S.nodes[i].shutdown;
}

void sim_node_cut_stats(size_t i, uint64_t *events, uint64_t *messages)
{
    *events = i < SIM_NODES_MAX ? cut_events[i] : 0;
    *messages = i < SIM_NODES_MAX ? cut_messages[i] : 0;
}

int sim_node_booted(size_t i)
{
    return i < S.nnodes && S.nodes[i].booted;
}

int sim_node_post(size_t i, int dev, uint32_t code, const void *data, size_t len)
{
    sim_node_enter(i);
    int rc = k_post(dev, code, data, len);
    if (rc == 0)
        N->busy = true;
    return rc;
}

/* ---- the hal_host ops ------------------------------------------------------------- */

static uint64_t sim_clock_now(void)
{
    return S.now;
}

static void sim_timer_arm(uint64_t deadline_ns)
{
    N->deadline = deadline_ns;
}

static void sim_entropy(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        uint64_t r = splitmix64(&N->rng);
        size_t n = len < sizeof r ? len : sizeof r;
        memcpy(p, &r, n);
        p += n;
        len -= n;
    }
}

static void sim_console_write(const void *buf, size_t len)
{
    sim_node_t *n = N;
    if (n->out_len + len + 1 > n->out_cap) {
        size_t cap = n->out_cap ? n->out_cap : 4096;
        while (cap < n->out_len + len + 1)
            cap *= 2;
        char *p = realloc(n->out, cap);
        if (!p)
            abort(); /* the host is out of memory: nothing sensible to do */
        n->out = p;
        n->out_cap = cap;
    }
    memcpy(n->out + n->out_len, buf, len);
    n->out_len += len;
    n->out[n->out_len] = '\0';
    if (n->out_fn)
        n->out_fn(n->out_self, buf, len);
}

static void sim_wake(int worker)
{
    (void)worker; /* one thread: the loop looks for work itself, in the nodes marked busy */
    N->busy = true;
}

static void sim_yield(void)
{
}

static void sim_shutdown(int status)
{
    if (!N->shutdown) {
        N->shutdown = true;
        N->status = status;
    }
}

static const hal_host_t sim_platform = {
    .name = "sim",
    .clock_now_ns = sim_clock_now,
    .timer_arm = sim_timer_arm,
    .entropy_fill = sim_entropy,
    .console_write = sim_console_write,
    .cpu_wake = sim_wake,
    .cpu_yield = sim_yield,
    .shutdown = sim_shutdown,
};

/* ---- the console device ---------------------------------------------------------------- */

static int console_dev_write(void *self, uint32_t code, const void *buf, size_t len)
{
    (void)self;
    if (code != HAL_CONSOLE_WRITE)
        return OS_EINVAL;
    sim_console_write(buf, len);
    return 0;
}

static void console_dev_resume(void *self)
{
    ((sim_node_t *)self)->blocked = false; /* called by that node's kernel */
}

/* Next line of the script: same contract as sim_input_fn. */
static int script_read(void *self, char *line, size_t max, size_t *len)
{
    sim_node_t *node = self;
    if (!node->script || *node->script == '\0')
        return 0;
    const char *nl = strchr(node->script, '\n');
    size_t n = nl ? (size_t)(nl - node->script) : strlen(node->script);
    memcpy(line, node->script, n < max ? n : max);
    *len = n;
    node->script = nl ? nl + 1 : node->script + n;
    return 1;
}

/* Post node n's pending line (or EOF); false if the console queue is full. */
static bool post_pending(sim_node_t *n)
{
    int rc;
    if (n->pending_len > HAL_CONSOLE_LINE_MAX) {
        uint32_t len = (uint32_t)n->pending_len;
        rc = k_post(n->console_dev, HAL_CONSOLE_OVERLONG, &len, sizeof len);
    } else {
        rc = k_post(n->console_dev, HAL_CONSOLE_LINE, n->pending, n->pending_len);
    }
    if (rc == OS_EFULL) {
        n->blocked = true;
        return false;
    }
    n->has_pending = false;
    n->busy = true;
    return true;
}

/* Whether node n has console input left: a line, more of its script, or the EOF. */
static bool input_left(const sim_node_t *n)
{
    return n->has_pending || !n->input_done || (n->want_eof && !n->eof_posted);
}

/* Whether node n has console input left to feed (and room for it). */
static bool has_input(const sim_node_t *n)
{
    return n->booted && !n->shutdown && !n->blocked && !paused(n) && input_left(n);
}

/* Feed one input item to the current node. True if something was posted. */
static bool feed_input(void)
{
    sim_node_t *n = N;
    if (n->blocked)
        return false;
    if (!n->has_pending && !n->input_done) {
        size_t len = 0;
        int got = n->read_fn(n->read_self, n->pending, HAL_CONSOLE_LINE_MAX, &len);
        if (got) {
            n->pending_len = len;
            n->has_pending = true;
        } else {
            n->input_done = true;
        }
    }
    if (n->has_pending)
        return post_pending(n);
    if (n->input_done && n->want_eof && !n->eof_posted) {
        if (k_post(n->console_dev, HAL_CONSOLE_EOF, NULL, 0) == OS_EFULL) {
            n->blocked = true;
            return false;
        }
        n->eof_posted = true;
        n->busy = true;
        return true;
    }
    return false;
}

/* ---- boot and teardown ------------------------------------------------------------------- */

/* Register node i's devices and boot its kernel; i is current. */
static int node_boot(size_t i, const sim_config_t *cfg)
{
    sim_node_t *n = &S.nodes[i];
    n->deadline = UINT64_MAX;
    /* entropy stream apart from the scheduler's; another one after each reboot */
    n->rng = (cfg->seed ^ 0x6f72726572792121ull) + n->boots * 0x9e3779b97f4a7c15ull;
    if (n->boots++ == 0) {
        n->cfg = *cfg;
        n->out_fn = cfg->console_out;
        n->out_self = cfg->console_out_self;
        n->script = cfg->console_input;
        n->read_fn = cfg->console_read ? cfg->console_read : script_read;
        n->read_self = cfg->console_read ? cfg->console_read_self : n;
    } /* after a power cut: the output goes on, the input goes on where it stopped */

    hal_device_ops_t *ops = &n->console_ops;
    *ops = (hal_device_ops_t){"console", n, console_dev_write, console_dev_resume};
    n->want_eof = cfg->console_eof;
    int dev = k_device_add(ops);
    if (dev < 0)
        return dev;
    n->console_dev = dev;
    if (cfg->net) {
        uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i)};
        static const uint8_t zero[6];
        int rc = sim_net_attach(i, memcmp(cfg->mac, zero, 6) ? cfg->mac : mac);
        if (rc < 0)
            return rc;
    }
    if (cfg->disk) {
        int rc = sim_blk_attach(i, cfg->disk);
        if (rc < 0)
            return rc;
    }
    k_config_t kc = {
        .programs = cfg->programs,
        .init_program = cfg->init_program ? cfg->init_program : "init",
        .init_arg = cfg->init_arg,
        .init_arg_len = cfg->init_arg_len,
        .workers = 1,
        .policy = &k_sched_seeded,
        .seed = cfg->seed,
        .trace = cfg->trace,
    };
    int rc = k_boot(&kc);
    if (rc < 0) {
        k_teardown();
        return rc;
    }
    n->booted = true;
    n->down = false;
    n->busy = true;
    if (cfg->net)
        sim_net_link_up(i);
    if (cfg->disk)
        sim_blk_started(i);
    return 0;
}

/* Put node i's state section back as the program was loaded. 0 or OS_ENOMEM. */
static int node_state_pristine(void)
{
    if (sim_node_state_size() == 0)
        return 0;
    /* the statics of the kernel, the servers and lwIP as the program was loaded; the fault
     * hooks the platform installed in this node's kernel stay (they are its) */
    const k_fault_ops_t *hooks = k_fault_get();
    void *p = sim_node_state_new();
    if (!p)
        return OS_ENOMEM;
    sim_node_state_load(p);
    free(p);
    k_fault_set(hooks);
    return 0;
}

int sim_node_reboot(size_t i, int again)
{
    if (i >= S.nnodes)
        return OS_EINVAL;
    sim_node_enter(i);
    sim_node_t *n = &S.nodes[i];
    if (n->booted) {
        k_stats_t ks;
        k_get_stats(&ks);
        cut_events[i] += ks.events;
        cut_messages[i] += ks.messages;
        reboot_leaks[i] += k_teardown(); /* every task dies with its kernel */
    }
    n->booted = false;
    sim_blk_power_cut(i);
    if (node_state_pristine() != 0) {
        n->down = false;
        n->shutdown = true;
        n->status = -1;
        return OS_ENOMEM;
    }
    n->deadline = UINT64_MAX;
    n->busy = false;
    n->blocked = false;
    n->has_pending = false; /* a line being posted died with the kernel */
    n->eof_posted = false;
    if (again == SIM_REBOOT_OFF) {
        n->down = false;
        n->shutdown = true;
        n->status = -1;
        return 0;
    }
    n->shutdown = false;
    n->status = 0;
    if (again == SIM_REBOOT_LATER) {
        n->down = true; /* not shut down: node 0's run goes on until it boots again */
        return 0;
    }
    int rc = node_boot(i, &n->cfg);
    if (rc < 0) {
        if (n->booted)
            reboot_leaks[i] += k_teardown();
        n->booted = false;
        n->down = false;
        n->shutdown = true;
        n->status = -1;
    }
    return rc;
}

/* ---- node faults ------------------------------------------------------------------------- */

static void crash_action(void *self, uint64_t until)
{
    size_t i = (size_t)(uintptr_t)self;
    sim_node_t *n = &S.nodes[i];
    if (until == UINT64_MAX) {
        sim_node_reboot(i, SIM_REBOOT_OFF);
        return;
    }
    if (until > n->down_until)
        n->down_until = until; /* a longer crash before this one's end keeps it down */
    if (!n->down)
        sim_node_reboot(i, SIM_REBOOT_LATER);
}

static void crash_boot_action(void *self, uint64_t arg)
{
    (void)arg;
    size_t i = (size_t)(uintptr_t)self;
    sim_node_t *n = &S.nodes[i];
    if (!n->down || S.now < n->down_until)
        return; /* booted meanwhile (a power cut with reboot), or a later crash holds it */
    sim_node_enter(i);
    if (node_state_pristine() != 0 || node_boot(i, &n->cfg) < 0) {
        if (n->booted)
            reboot_leaks[i] += k_teardown();
        n->booted = false;
        n->down = false;
        n->shutdown = true;
        n->status = -1;
    }
}

int sim_node_crash_at(size_t node, uint64_t t_ns, uint64_t down_ns)
{
    if (node >= S.nnodes)
        return OS_EINVAL;
    uint64_t until =
        down_ns == UINT64_MAX || t_ns > UINT64_MAX - down_ns ? UINT64_MAX : t_ns + down_ns;
    int rc = sim_at_node(node, t_ns, crash_action, (void *)(uintptr_t)node, until);
    if (rc == 0 && until != UINT64_MAX)
        rc = sim_at_node(node, until, crash_boot_action, (void *)(uintptr_t)node, 0);
    return rc;
}

static void pause_action(void *self, uint64_t until)
{
    sim_node_t *n = &S.nodes[(size_t)(uintptr_t)self];
    if (until > n->paused_until)
        n->paused_until = until;
}

int sim_node_pause(size_t node, uint64_t start_ns, uint64_t end_ns)
{
    if (node >= S.nnodes || end_ns <= start_ns)
        return OS_EINVAL;
    return sim_at_node(node, start_ns, pause_action, (void *)(uintptr_t)node, end_ns);
}

unsigned sim_node_boots(size_t node)
{
    return node < S.nnodes ? S.nodes[node].boots : 0;
}

static int boot(const sim_config_t *cfgs, size_t count, bool multi)
{
    memset(&S, 0, sizeof S);
    memset(node_leaks, 0, sizeof node_leaks);
    memset(reboot_leaks, 0, sizeof reboot_leaks);
    memset(cut_events, 0, sizeof cut_events);
    memset(cut_messages, 0, sizeof cut_messages);
    S.nodes = calloc(count, sizeof(S.nodes[0]));
    if (!S.nodes)
        return OS_ENOMEM;
    S.nnodes = count;
    S.multi = multi;
    S.seed = cfgs[0].seed;
    S.frng = cfgs[0].seed ^ 0x73696d6661756c74ull; /* faults and latencies: a third stream */
    S.nrng = cfgs[0].seed ^ 0x6e6f646573656564ull; /* which node runs: a fourth */
    S.cost_max = cfgs[0].event_cost_max_ns;
    hal_host_set(&sim_platform);
    if (multi) {
        /* every node from the program's pristine state; the process's own is kept aside */
        S.host_saved = sim_node_state_new();
        bool ok = S.host_saved != NULL;
        for (size_t i = 0; ok && i < count; i++)
            ok = (S.nodes[i].saved = sim_node_state_new()) != NULL;
        if (!ok) {
            sim_teardown();
            return OS_ENOMEM;
        }
        sim_node_state_save(S.host_saved);
        sim_node_state_load(S.nodes[0].saved);
    }
    for (size_t i = 0; i < count; i++) {
        sim_node_enter(i);
        int rc = node_boot(i, &cfgs[i]);
        if (rc < 0) {
            sim_teardown();
            return rc;
        }
    }
    sim_node_enter(0);
    return 0;
}

int sim_boot(const sim_config_t *cfg)
{
    return boot(cfg, 1, false);
}

int sim_boot_nodes(const sim_config_t *cfgs, size_t n)
{
    if (n == 0 || n > SIM_NODES_MAX)
        return OS_EINVAL;
    if (n > 1 && sim_node_state_size() == 0)
        return OS_ENOTSUP;
    return boot(cfgs, n, n > 1);
}

size_t sim_node_count(void)
{
    return S.nnodes;
}

long sim_teardown(void)
{
    long leaked = 0;
    for (size_t i = S.nnodes; i-- > 0;) {
        sim_node_enter(i);
        long l = S.nodes[i].booted ? k_teardown() : 0;
        if (i < SIM_NODES_MAX)
            l += reboot_leaks[i];
        if (i < SIM_NODES_MAX)
            node_leaks[i] = l;
        leaked += l;
    }
    sim_net_reset();
    sim_blk_reset();
    if (S.multi && S.host_saved)
        sim_node_state_load(S.host_saved); /* the process's own statics, as before the run */
    hal_host_set(NULL);
    for (size_t i = 0; i < S.nnodes; i++) {
        free(S.nodes[i].out);
        free(S.nodes[i].saved);
    }
    free(S.nodes);
    free(S.host_saved);
    for (size_t i = 0; i < S.nacts; i++)
        free(S.acts[i].line);
    free(S.acts);
    memset(&S, 0, sizeof S);
    return leaked;
}

long sim_node_leaks(size_t node)
{
    return node < SIM_NODES_MAX ? node_leaks[node] : 0;
}

/* ---- the run loop ---------------------------------------------------------------------- */

/* Run the first timed action that is due; true if one ran. */
static bool run_due_action(void)
{
    for (size_t i = 0; i < S.nacts && S.acts[i].t <= S.now; i++) {
        sim_action_t a = S.acts[i];
        sim_node_t *n = &S.nodes[a.node];
        if (!a.fn) {
            if (!n->booted || n->shutdown) {
                /* a line for a node that stopped: dropped with it */
            } else if (n->blocked) {
                continue; /* the console queue is full: lines wait, in order */
            } else {
                sim_node_enter(a.node);
                int rc = k_post(n->console_dev, HAL_CONSOLE_LINE, a.line, strlen(a.line));
                if (rc == OS_EFULL) {
                    n->blocked = true;
                    continue;
                }
                n->busy = true;
            }
        }
        memmove(&S.acts[i], &S.acts[i + 1], (S.nacts - i - 1) * sizeof(S.acts[0]));
        S.nacts--;
        if (a.fn) {
            sim_node_enter(a.node);
            a.fn(a.self, a.arg);
        }
        free(a.line);
        return true;
    }
    return false;
}

static uint64_t next_action_time(void)
{
    for (size_t i = 0; i < S.nacts; i++)
        if (S.acts[i].fn || !S.nodes[S.acts[i].node].blocked)
            return S.acts[i].t;
    return UINT64_MAX;
}

/* A running node (booted, not shut down) whose timer is due, or SIZE_MAX. */
static size_t due_timer_node(void)
{
    for (size_t i = 0; i < S.nnodes; i++)
        if (sim_node_alive(i) && S.nodes[i].deadline <= S.now && !paused(&S.nodes[i]))
            return i;
    return SIZE_MAX;
}

static void fire_timer(size_t i)
{
    sim_node_enter(i);
    N->busy = true;
    k_timer_tick();
}

/* Run one ready event of some node (drawn from the seed among the busy ones). */
static bool run_one_event(void)
{
    if (S.nnodes == 1) {
        if (!S.nodes[0].busy || paused(&S.nodes[0]))
            return false;
        if (k_run_one(0))
            return true;
        S.nodes[0].busy = false;
        return false;
    }
    for (;;) {
        size_t busy[SIM_NODES_MAX], nb = 0;
        for (size_t i = 0; i < S.nnodes; i++)
            if (S.nodes[i].busy && sim_node_alive(i) && !paused(&S.nodes[i]))
                busy[nb++] = i;
        if (nb == 0)
            return false;
        size_t i = busy[nb == 1 ? 0 : splitmix64(&S.nrng) % nb];
        sim_node_enter(i);
        if (k_run_one(0))
            return true;
        S.nodes[i].busy = false;
    }
}

bool sim_step(void)
{
    if (S.nodes[0].shutdown)
        return false;
    if (S.nacts && S.acts[0].t <= S.now && run_due_action())
        return true;
    if (run_one_event()) {
        if (S.cost_max) {
            S.now += 1 + sim_rand() % S.cost_max; /* simulated latency of the event */
            if (N->deadline <= S.now)
                fire_timer(S.cur);
        }
        return true;
    }
    size_t t = due_timer_node();
    if (t != SIZE_MAX) {
        fire_timer(t);
        return true;
    }
    for (size_t i = 0; i < S.nnodes; i++) {
        if (has_input(&S.nodes[i])) {
            sim_node_enter(i);
            if (feed_input())
                return true;
        }
    }
    uint64_t next = next_action_time();
    for (size_t i = 0; i < S.nnodes; i++) {
        const sim_node_t *n = &S.nodes[i];
        if (!sim_node_alive(i))
            continue;
        uint64_t when = n->deadline;
        if (paused(n)) {
            /* its work and its input wait for the pause's end, its timer at least as long */
            if (n->busy || (!n->blocked && input_left(n)))
                when = n->paused_until;
            else if (when != UINT64_MAX && when < n->paused_until)
                when = n->paused_until;
        }
        if (when < next)
            next = when;
    }
    if (next != UINT64_MAX) {
        if (next > S.now)
            S.now = next; /* nothing to do until then: jump */
        if ((t = due_timer_node()) != SIZE_MAX)
            fire_timer(t);
        return true;
    }
    return false;
}

uint64_t sim_rand(void)
{
    return splitmix64(&S.frng);
}

uint64_t sim_splitmix64(uint64_t *state)
{
    return splitmix64(state);
}

uint64_t sim_stream(uint64_t tag, uint64_t index)
{
    /* hashed twice, so that streams of neighbouring indexes are not one sequence shifted */
    uint64_t x = S.seed ^ tag;
    uint64_t a = splitmix64(&x);
    x = a + index;
    return splitmix64(&x);
}

/* -ln(x / 2^63) for x in [2^63, 2^64), in Q62 fixed point: 2 atanh((y - 1) / (y + 1)) by its
 * series, in integers only, so that a seed draws the same delays on every host. */
static uint64_t ln_mantissa_q62(uint64_t x)
{
    const uint64_t one = 1ull << 62;
    uint64_t y = x >> 1; /* x / 2^63 in Q62: 1 <= y < 2 */
    uint64_t z = (uint64_t)(((unsigned __int128)(y - one) << 62) / (y + one)); /* < 1/3 */
    uint64_t z2 = (uint64_t)(((unsigned __int128)z * z) >> 62);
    uint64_t sum = 0, term = z;
    for (uint64_t k = 1; term != 0; k += 2) {
        sum += term / k;
        term = (uint64_t)(((unsigned __int128)term * z2) >> 62);
    }
    return 2 * sum;
}

uint64_t sim_exp_draw(uint64_t *state, uint64_t mean)
{
    if (mean == 0)
        return 0;
    uint64_t u = splitmix64(state);
    if (u == 0)
        u = 1;
    /* u / 2^64 = (x / 2^63) * 2^-(k+1) with x = u << k; -ln of it = (k+1) ln 2 - ln(x / 2^63) */
    const uint64_t ln2_q62 = 0x2c5c85fdf473de6aull;
    unsigned k = (unsigned)__builtin_clzll(u);
    unsigned __int128 v = (unsigned __int128)(k + 1) * ln2_q62 - ln_mantissa_q62(u << k);
    unsigned __int128 d = ((unsigned __int128)mean * (uint64_t)(v >> 30)) >> 32; /* Q32 */
    return d > UINT64_MAX ? UINT64_MAX : (uint64_t)d;
}

static int add_action(size_t node, uint64_t t, sim_action_fn fn, void *self, uint64_t arg,
                      const char *line)
{
    if (S.nacts == S.cap_acts) {
        size_t cap = S.cap_acts ? S.cap_acts * 2 : 32;
        sim_action_t *p = realloc(S.acts, cap * sizeof(*p));
        if (!p)
            return OS_ENOMEM;
        S.acts = p;
        S.cap_acts = cap;
    }
    char *copy = NULL;
    if (line) {
        size_t n = strlen(line);
        if (n > HAL_CONSOLE_LINE_MAX)
            return OS_E2BIG;
        if (!(copy = malloc(n + 1)))
            return OS_ENOMEM;
        memcpy(copy, line, n + 1);
    }
    size_t i = S.nacts;
    while (i > 0 && S.acts[i - 1].t > t)
        i--; /* equal times keep their order of registration */
    memmove(&S.acts[i + 1], &S.acts[i], (S.nacts - i) * sizeof(S.acts[0]));
    S.acts[i] = (sim_action_t){t, S.act_seq++, node, fn, self, arg, copy};
    S.nacts++;
    return 0;
}

int sim_at(uint64_t t_ns, sim_action_fn fn, void *self, uint64_t arg)
{
    if (!fn)
        return OS_EINVAL;
    return add_action(S.cur, t_ns, fn, self, arg, NULL);
}

int sim_at_node(size_t node, uint64_t t_ns, void (*fn)(void *, uint64_t), void *self, uint64_t arg)
{
    if (!fn || node >= S.nnodes)
        return OS_EINVAL;
    return add_action(node, t_ns, fn, self, arg, NULL);
}

int sim_console_at(uint64_t t_ns, const char *line)
{
    return sim_node_console_at(0, t_ns, line);
}

int sim_node_console_at(size_t node, uint64_t t_ns, const char *line)
{
    if (!line || node >= S.nnodes)
        return OS_EINVAL;
    return add_action(node, t_ns, NULL, NULL, 0, line);
}

void sim_console_end(void)
{
    N->want_eof = true;
}

size_t sim_pending_actions(void)
{
    return S.nacts;
}

int sim_run(uint64_t max_events)
{
    for (uint64_t n = 0; max_events == 0 || n < max_events; n++)
        if (!sim_step())
            break;
    return S.nodes[0].shutdown ? S.nodes[0].status : -1;
}

void sim_run_until_idle(void)
{
    while (!S.nodes[0].shutdown) {
        if (run_one_event())
            continue;
        size_t t = due_timer_node();
        if (t != SIZE_MAX) {
            fire_timer(t);
            continue;
        }
        break;
    }
}

void sim_advance(uint64_t ns)
{
    S.now += ns;
    size_t t;
    while ((t = due_timer_node()) != SIZE_MAX)
        fire_timer(t);
}

uint64_t sim_now(void)
{
    return S.now;
}

const char *sim_node_console_output(size_t node, size_t *len)
{
    const sim_node_t *n = node < S.nnodes ? &S.nodes[node] : NULL;
    if (len)
        *len = n ? n->out_len : 0;
    return n && n->out ? n->out : "";
}

const char *sim_console_output(size_t *len)
{
    return sim_node_console_output(0, len);
}

void sim_console_clear(void)
{
    sim_node_t *n = &S.nodes[0];
    n->out_len = 0;
    if (n->out)
        n->out[0] = '\0';
}

int sim_console_feed(const char *line)
{
    size_t n = strlen(line);
    if (n > HAL_CONSOLE_LINE_MAX)
        return OS_E2BIG;
    return sim_node_post(0, S.nodes[0].console_dev, HAL_CONSOLE_LINE, line, n);
}

bool sim_node_shutdown_status(size_t node, int *status)
{
    if (node >= S.nnodes)
        return false;
    if (S.nodes[node].shutdown && status)
        *status = S.nodes[node].status;
    return S.nodes[node].shutdown;
}

bool sim_shutdown_status(int *status)
{
    return sim_node_shutdown_status(0, status);
}
