/* faults.c — seeded fault injection for the simulator: kills, delayed deliveries, jitter, devices. */
#include <sim/faults.h>

#include <stdio.h>
#include <string.h>

#include <hal/codes.h>
#include <k/kernel.h>
#include <os/errno.h>
#include <sim/sim.h>

#include "sim_priv.h"

enum { PARTITIONS_MAX = 16 };

static struct {
    sim_faults_t f;
    sim_fault_stats_t st;
    bool installed;
    struct {
        uint32_t a, b;
        uint64_t until;
    } parts[PARTITIONS_MAX];
} F;

static const struct {
    uint32_t bit;
    const char *name;
} names[] = {
#define SIM_FAULT_NAME(up, name, bit) {SIM_FAULT_##up, name},
    SIM_FAULT_KINDS(SIM_FAULT_NAME)
#undef SIM_FAULT_NAME
};

void sim_faults_defaults(sim_faults_t *f)
{
    memset(f, 0, sizeof(*f));
    f->duration_ns = 10ull * 1000000000ull;
    f->kills = 1;
    f->delay_pct = 20;
    f->delay_max_ns = 2000000;  /* 2 ms */
    f->jitter_max_ns = 1000000; /* 1 ms */
    f->net_loss_pct = 1;
    f->net_reorder_pct = 1;
    f->net_dup_pct = 1;
    f->net_delay_max_ns = 5000000;
    f->blk_eio_pct = 1;
    f->blk_torn_pct = 1;
    f->blk_lost_pct = 1;
    f->blk_latency_max_ns = 10000000;
}

int sim_faults_parse(const char *list, uint32_t *bits, char *err, size_t errlen)
{
    uint32_t out = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        bool found = false;
        if (n == 3 && strncmp(p, "all", 3) == 0) {
            out |= SIM_FAULT_TASKS; /* devices join once they exist */
            found = true;
        } else if (n == 4 && strncmp(p, "none", 4) == 0) {
            found = true;
        }
        for (size_t i = 0; !found && i < sizeof(names) / sizeof(names[0]); i++) {
            if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0) {
                out |= names[i].bit;
                found = true;
            }
        }
        if (!found && n > 0) {
            if (err)
                snprintf(err, errlen, "unknown fault '%.*s'", (int)(n > 40 ? 40 : n), p);
            return -1;
        }
        p = end ? end + 1 : p + n;
    }
    *bits = out;
    return 0;
}

const char *sim_faults_format(uint32_t bits, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(bits & names[i].bit))
            continue;
        int n = snprintf(buf + at, len - at, "%s%s", at ? "," : "", names[i].name);
        if (n < 0 || (size_t)n >= len - at)
            break;
        at += (size_t)n;
    }
    if (at == 0)
        snprintf(buf, len, "none");
    return buf;
}

static bool chance(uint32_t pct)
{
    return pct > 0 && sim_rand() % 100 < pct;
}

/* ---- kernel hooks ---------------------------------------------------------------------------- */

static uint64_t hook_send_delay(void *self, uint32_t from, uint32_t to, uint32_t chan,
                                uint32_t type)
{
    if (!(F.f.enabled & SIM_FAULT_DELAY) || !F.f.delay_max_ns || !chance(F.f.delay_pct))
        return 0;
    F.st.delayed++;
    return 1 + sim_rand() % F.f.delay_max_ns;
}

static uint64_t hook_timer_jitter(void *self, uint32_t task, uint32_t timer, uint64_t deadline)
{
    if (!(F.f.enabled & SIM_FAULT_JITTER) || !F.f.jitter_max_ns)
        return 0;
    uint64_t j = sim_rand() % (F.f.jitter_max_ns + 1);
    F.st.jittered += j != 0;
    return j;
}

static const k_fault_ops_t hooks = {
    .send_delay = hook_send_delay,
    .timer_jitter = hook_timer_jitter,
};

/* A scheduled kill: hit one live task among the allowed programs, chosen by the seed. */
static void kill_now(void *self, uint64_t arg)
{
    uint32_t ids[SIM_FAULT_ALLOW_MAX];
    size_t which[SIM_FAULT_ALLOW_MAX], n = 0;
    for (size_t i = 0; i < F.f.nkill_allow; i++) {
        uint32_t id = k_task_find(F.f.kill_allow[i]);
        if (id) {
            which[n] = i;
            ids[n++] = id;
        }
    }
    if (n == 0)
        return; /* all of them are down already: nothing to hit this time */
    size_t k = (size_t)(sim_rand() % n);
    if (k_fault_kill(ids[k], OS_EXIT_KILLED) == 0) {
        uint64_t t = sim_now();
        F.st.kills++;
        snprintf(F.st.last_kill, sizeof(F.st.last_kill), "%s (task %u) at %llu.%06llus",
                 F.f.kill_allow[which[k]], ids[k], (unsigned long long)(t / 1000000000ull),
                 (unsigned long long)(t % 1000000000ull / 1000));
    }
}

int sim_faults_install(const sim_faults_t *f)
{
    memset(&F, 0, sizeof(F));
    F.f = *f;
    F.installed = true;
    if (f->enabled & (SIM_FAULT_DELAY | SIM_FAULT_JITTER)) {
        /* the hooks are kernel state: each node's kernel gets them */
        size_t cur = sim_node_current();
        for (size_t i = 0; i < sim_node_count(); i++) {
            sim_node_enter(i);
            k_fault_set(&hooks);
        }
        sim_node_enter(cur);
    }
    if ((f->enabled & SIM_FAULT_KILL) && f->nkill_allow && f->duration_ns > 1) {
        for (uint32_t i = 0; i < f->kills; i++) {
            uint64_t t = 1 + sim_rand() % (f->duration_ns - 1);
            int rc = sim_at(t, kill_now, NULL, i);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void sim_faults_remove(void)
{
    size_t cur = sim_node_current();
    for (size_t i = 0; i < sim_node_count(); i++) {
        sim_node_enter(i);
        k_fault_set(NULL);
    }
    sim_node_enter(cur);
    F.installed = false;
}

void sim_faults_stats(sim_fault_stats_t *out)
{
    *out = F.st;
}

/* ---- device verdicts ------------------------------------------------------------------------ */

void sim_fault_net_partition(uint32_t a, uint32_t b, uint64_t until_ns)
{
    for (size_t i = 0; i < PARTITIONS_MAX; i++) {
        if (F.parts[i].until <= sim_now()) {
            F.parts[i].a = a;
            F.parts[i].b = b;
            F.parts[i].until = until_ns;
            return;
        }
    }
}

sim_net_verdict_t sim_fault_net_frame(uint32_t from, uint32_t to, size_t len)
{
    sim_net_verdict_t v = {SIM_NET_DELIVER, 0, false};
    uint32_t on = F.installed ? F.f.enabled : 0;
    if (on & SIM_FAULT_NET_PARTITION) {
        for (size_t i = 0; i < PARTITIONS_MAX; i++) {
            if (F.parts[i].until > sim_now() && ((F.parts[i].a == from && F.parts[i].b == to) ||
                                                 (F.parts[i].a == to && F.parts[i].b == from))) {
                F.st.net_dropped++;
                v.action = SIM_NET_DROP;
                return v;
            }
        }
    }
    if ((on & SIM_FAULT_NET_LOSS) && chance(F.f.net_loss_pct)) {
        F.st.net_dropped++;
        v.action = SIM_NET_DROP;
    } else if ((on & SIM_FAULT_NET_REORDER) && chance(F.f.net_reorder_pct)) {
        F.st.net_reordered++;
        v.action = SIM_NET_REORDER;
    } else if ((on & SIM_FAULT_NET_DELAY) && F.f.net_delay_max_ns) {
        v.delay_ns = sim_rand() % (F.f.net_delay_max_ns + 1);
        F.st.net_delayed += v.delay_ns != 0;
    }
    if ((on & SIM_FAULT_NET_DUP) && chance(F.f.net_dup_pct)) {
        F.st.net_duplicated++;
        v.dup = true;
    }
    return v;
}

sim_blk_verdict_t sim_fault_blk_request(uint32_t op, uint64_t sector, uint32_t count)
{
    sim_blk_verdict_t v = {0, 0, count, false};
    uint32_t on = F.installed ? F.f.enabled : 0;
    if ((on & SIM_FAULT_BLK_LATENCY) && F.f.blk_latency_max_ns)
        v.latency_ns = sim_rand() % (F.f.blk_latency_max_ns + 1);
    if ((on & SIM_FAULT_BLK_EIO) && chance(F.f.blk_eio_pct)) {
        F.st.blk_failed++;
        v.status = OS_EIO;
        v.sectors = 0;
        return v;
    }
    if (op != HAL_BLK_WRITE || count == 0)
        return v;
    if ((on & SIM_FAULT_BLK_LOST) && chance(F.f.blk_lost_pct)) {
        F.st.blk_lost++;
        v.lost = true;
        v.sectors = 0;
    } else if ((on & SIM_FAULT_BLK_TORN) && count > 1 && chance(F.f.blk_torn_pct)) {
        F.st.blk_torn++;
        v.sectors = (uint32_t)(sim_rand() % count); /* 0..count-1 reach the medium */
    }
    return v;
}
