/* sim.c — the deterministic platform: virtual clock, seeded entropy, scripted console, one thread. */
#include <sim/sim.h>

#include <stdlib.h>
#include <string.h>

#include <hal/console.h>
#include <hal/device.h>
#include <hal/host.h>
#include <k/kernel.h>

typedef struct sim_action sim_action_t;

static struct {
    /* virtual time and the one HAL timer */
    uint64_t now;
    uint64_t deadline;      /* UINT64_MAX: disarmed */
    uint64_t rng;           /* splitmix64 state for entropy */
    uint64_t frng;          /* splitmix64 state for sim_rand: faults, latencies */
    uint64_t cost_max;      /* each event costs 1..cost_max ns of virtual time (0: none) */
    /* timed actions (console lines at virtual times, injected faults), by (time, seq) */
    sim_action_t *acts;
    size_t nacts, cap_acts;
    uint64_t act_seq;
    /* console output */
    char *out;
    size_t out_len, out_cap;
    void (*out_fn)(void *, const void *, size_t);
    void *out_self;
    /* console input */
    int console_dev;
    const char *script;     /* next unread byte of the script, NULL when done */
    sim_input_fn read_fn;
    void *read_self;
    bool want_eof, eof_posted, input_done;
    bool blocked;           /* k_post said OS_EFULL: wait for resume */
    char pending[HAL_CONSOLE_LINE_MAX + 1];
    size_t pending_len;     /* real length, may exceed the buffer (overlong) */
    bool has_pending;
    /* shutdown */
    bool shutdown;
    int status;
    bool booted;
} S;

struct sim_action {
    uint64_t t, seq;
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

/* ---- the hal_host ops ------------------------------------------------------------- */

static uint64_t sim_clock_now(void)
{
    return S.now;
}

static void sim_timer_arm(uint64_t deadline_ns)
{
    S.deadline = deadline_ns;
}

static void sim_entropy(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        uint64_t r = splitmix64(&S.rng);
        size_t n = len < sizeof r ? len : sizeof r;
        memcpy(p, &r, n);
        p += n;
        len -= n;
    }
}

static void sim_console_write(const void *buf, size_t len)
{
    if (S.out_len + len + 1 > S.out_cap) {
        size_t cap = S.out_cap ? S.out_cap : 4096;
        while (cap < S.out_len + len + 1)
            cap *= 2;
        char *p = realloc(S.out, cap);
        if (!p)
            abort(); /* the host is out of memory: nothing sensible to do */
        S.out = p;
        S.out_cap = cap;
    }
    memcpy(S.out + S.out_len, buf, len);
    S.out_len += len;
    S.out[S.out_len] = '\0';
    if (S.out_fn)
        S.out_fn(S.out_self, buf, len);
}

static void sim_wake(int worker)
{
    (void)worker; /* one thread: the loop looks for work itself */
}

static void sim_yield(void)
{
}

static void sim_shutdown(int status)
{
    if (!S.shutdown) {
        S.shutdown = true;
        S.status = status;
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
    (void)self;
    S.blocked = false;
}

static const hal_device_ops_t console_ops = {
    .name = "console",
    .write = console_dev_write,
    .resume = console_dev_resume,
};

/* Next line of the script: same contract as sim_input_fn. */
static int script_read(void *self, char *line, size_t max, size_t *len)
{
    (void)self;
    if (!S.script || *S.script == '\0')
        return 0;
    const char *nl = strchr(S.script, '\n');
    size_t n = nl ? (size_t)(nl - S.script) : strlen(S.script);
    memcpy(line, S.script, n < max ? n : max);
    *len = n;
    S.script = nl ? nl + 1 : S.script + n;
    return 1;
}

/* Post the pending line (or EOF); false if the console queue is full. */
static bool post_pending(void)
{
    int rc;
    if (S.pending_len > HAL_CONSOLE_LINE_MAX) {
        uint32_t n = (uint32_t)S.pending_len;
        rc = k_post(S.console_dev, HAL_CONSOLE_OVERLONG, &n, sizeof n);
    } else {
        rc = k_post(S.console_dev, HAL_CONSOLE_LINE, S.pending, S.pending_len);
    }
    if (rc == OS_EFULL) {
        S.blocked = true;
        return false;
    }
    S.has_pending = false;
    return true;
}

/* Feed one input item when the system is idle. True if something was posted. */
static bool feed_input(void)
{
    if (S.blocked)
        return false;
    if (!S.has_pending && !S.input_done) {
        size_t len = 0;
        int got = S.read_fn(S.read_self, S.pending, HAL_CONSOLE_LINE_MAX, &len);
        if (got) {
            S.pending_len = len;
            S.has_pending = true;
        } else {
            S.input_done = true;
        }
    }
    if (S.has_pending)
        return post_pending();
    if (S.input_done && S.want_eof && !S.eof_posted) {
        if (k_post(S.console_dev, HAL_CONSOLE_EOF, NULL, 0) == OS_EFULL) {
            S.blocked = true;
            return false;
        }
        S.eof_posted = true;
        return true;
    }
    return false;
}

/* ---- the run loop ---------------------------------------------------------------------- */

int sim_boot(const sim_config_t *cfg)
{
    memset(&S, 0, sizeof S);
    S.deadline = UINT64_MAX;
    S.rng = cfg->seed ^ 0x6f72726572792121ull; /* entropy stream apart from the scheduler's */
    S.frng = cfg->seed ^ 0x73696d6661756c74ull; /* faults and latencies: a third stream */
    S.cost_max = cfg->event_cost_max_ns;
    S.out_fn = cfg->console_out;
    S.out_self = cfg->console_out_self;
    S.script = cfg->console_input;
    S.read_fn = cfg->console_read ? cfg->console_read : script_read;
    S.read_self = cfg->console_read_self;
    S.want_eof = cfg->console_eof;
    hal_host_set(&sim_platform);

    int dev = k_device_add(&console_ops);
    if (dev < 0) {
        hal_host_set(NULL);
        return dev;
    }
    S.console_dev = dev;
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
        hal_host_set(NULL);
        return rc;
    }
    S.booted = true;
    return 0;
}

/* Run the first timed action that is due; true if one ran. */
static bool run_due_action(void)
{
    for (size_t i = 0; i < S.nacts && S.acts[i].t <= S.now; i++) {
        sim_action_t a = S.acts[i];
        if (!a.fn) {
            if (S.blocked)
                continue; /* the console queue is full: lines wait, in order */
            int rc = k_post(S.console_dev, HAL_CONSOLE_LINE, a.line, strlen(a.line));
            if (rc == OS_EFULL) {
                S.blocked = true;
                continue;
            }
        }
        memmove(&S.acts[i], &S.acts[i + 1], (S.nacts - i - 1) * sizeof(S.acts[0]));
        S.nacts--;
        if (a.fn)
            a.fn(a.self, a.arg);
        free(a.line);
        return true;
    }
    return false;
}

static uint64_t next_action_time(void)
{
    for (size_t i = 0; i < S.nacts; i++)
        if (S.acts[i].fn || !S.blocked)
            return S.acts[i].t;
    return UINT64_MAX;
}

bool sim_step(void)
{
    if (S.shutdown)
        return false;
    if (S.nacts && S.acts[0].t <= S.now && run_due_action())
        return true;
    if (k_run_one(0)) {
        if (S.cost_max) {
            S.now += 1 + sim_rand() % S.cost_max; /* simulated latency of the event */
            if (S.deadline <= S.now)
                k_timer_tick();
        }
        return true;
    }
    if (S.deadline <= S.now) {
        k_timer_tick();
        return true;
    }
    if (feed_input())
        return true;
    uint64_t next = next_action_time();
    if (S.deadline < next)
        next = S.deadline;
    if (next != UINT64_MAX) {
        if (next > S.now)
            S.now = next; /* nothing to do until then: jump */
        if (S.deadline <= S.now)
            k_timer_tick();
        return true;
    }
    return false;
}

uint64_t sim_rand(void)
{
    return splitmix64(&S.frng);
}

static int add_action(uint64_t t, sim_action_fn fn, void *self, uint64_t arg, const char *line)
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
    S.acts[i] = (sim_action_t){t, S.act_seq++, fn, self, arg, copy};
    S.nacts++;
    return 0;
}

int sim_at(uint64_t t_ns, sim_action_fn fn, void *self, uint64_t arg)
{
    if (!fn)
        return OS_EINVAL;
    return add_action(t_ns, fn, self, arg, NULL);
}

int sim_console_at(uint64_t t_ns, const char *line)
{
    if (!line)
        return OS_EINVAL;
    return add_action(t_ns, NULL, NULL, 0, line);
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
    return S.shutdown ? S.status : -1;
}

void sim_run_until_idle(void)
{
    while (!S.shutdown) {
        if (k_run_one(0))
            continue;
        if (S.deadline <= S.now) {
            k_timer_tick();
            continue;
        }
        break;
    }
}

void sim_advance(uint64_t ns)
{
    S.now += ns;
    if (S.deadline <= S.now)
        k_timer_tick();
}

uint64_t sim_now(void)
{
    return S.now;
}

const char *sim_console_output(size_t *len)
{
    if (len)
        *len = S.out_len;
    return S.out ? S.out : "";
}

void sim_console_clear(void)
{
    S.out_len = 0;
    if (S.out)
        S.out[0] = '\0';
}

int sim_console_feed(const char *line)
{
    size_t n = strlen(line);
    if (n > HAL_CONSOLE_LINE_MAX)
        return OS_E2BIG;
    return k_post(S.console_dev, HAL_CONSOLE_LINE, line, n);
}

bool sim_shutdown_status(int *status)
{
    if (S.shutdown && status)
        *status = S.status;
    return S.shutdown;
}

long sim_teardown(void)
{
    long leaked = S.booted ? k_teardown() : 0;
    hal_host_set(NULL);
    free(S.out);
    for (size_t i = 0; i < S.nacts; i++)
        free(S.acts[i].line);
    free(S.acts);
    memset(&S, 0, sizeof S);
    return leaked;
}
