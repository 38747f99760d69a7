/* runner.c — one seed of a scenario: boot the image on sim, feed it, inject faults, check it. */
#include <sim/runner.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iface/init.h>
#include <image.h>
#include <k/audit.h>
#include <k/fault.h>
#include <k/kernel.h>
#include <manifest.h>
#include <sim/net.h>
#include <sim/sim.h>
#include <sim/streams.h>

#include "sim_priv.h"

enum {
    TASKS_MAX = 1024, /* task ids remembered by the checker */
    AUDIT_EVERY = 64, /* steps between kernel audits */
};

/* The running hash over every node's records, in the order they happened. */
typedef struct hashsum {
    uint64_t hash;
    uint64_t frames; /* cluster files: every frame on the switch (folded in at the end) */
    uint64_t records;
    sim_rec_sum_t *recs;
    size_t nrecs, cap;
    bool keep, oom;
} hashsum_t;

/* What the checker learns from one node's trace, record by record. */
typedef struct watch {
    hashsum_t *hs;
    const hal_trace_sink_t *tee;
    /* per task id (1..TASKS_MAX-1): program, exits */
    char names[TASKS_MAX][32];
    uint32_t spawns_of_init; /* SPAWN records with parent 1 */
    char panic_task[32];     /* first unexpected panic */
    int panic_status;
    uint32_t panics;
    bool too_many_tasks; /* a task id past TASKS_MAX was spawned */
    /* restart bookkeeping: init's policy replayed exit by exit (sim_restart_owed) */
    uint32_t exits_told[MANIFEST_PROGRAMS_MAX];
    uint32_t spawns[MANIFEST_PROGRAMS_MAX];
    uint32_t restarts_owed[MANIFEST_PROGRAMS_MAX]; /* restarts the policy granted so far */
    uint32_t requested[MANIFEST_PROGRAMS_MAX];     /* spawn requests while it was not running */
    bool running[MANIFEST_PROGRAMS_MAX];
    uint32_t init_iface;    /* iface_id(&init_iface) */
    sim_chanq_t *chanq;     /* the queue-bound invariant (NULL: none) */
    char chanq_broken[256]; /* its first failure ("" while none) */
    const manifest_t *man;
    const sim_scenario_t *sc;
    uint32_t node;           /* its index in the run */
    uint32_t boots;          /* SPAWN records of init: 1 + reboots */
    sim_streams_t *streams;  /* the cross-node stream checker (NULL: off) */
    const sim_run_opts_t *o; /* tee_node */
} watch_t;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int prog_index(const watch_t *w, const char *name)
{
    for (size_t i = 0; i < w->man->count; i++)
        if (strcmp(w->man->programs[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool panic_allowed(const sim_scenario_t *sc, const char *name)
{
    for (size_t i = 0; i < sc->nallow_panic; i++)
        if (strcmp(sc->allow_panic[i], name) == 0)
            return true;
    return false;
}

bool sim_restart_owed(const manifest_program_t *p, uint32_t restarts, int status)
{
    bool wants = p->restart == MANIFEST_RESTART_ALWAYS ||
                 (p->restart == MANIFEST_RESTART_ON_FAILURE && status != 0);
    return wants && restarts < p->max_restarts;
}

static void watch_record(void *self, const hal_trace_rec_t *r)
{
    watch_t *w = self;
    hashsum_t *hs = w->hs;
    uint64_t h = hs->hash;
    h = fnv(h, &r->seq, sizeof r->seq);
    h = fnv(h, &r->time_ns, sizeof r->time_ns);
    h = fnv(h, &r->arg, sizeof r->arg);
    uint32_t fields[9] = {r->kind, r->task,     r->chan, r->peer, r->type, (uint32_t)r->result,
                          r->len,  r->nhandles, r->iface};
    h = fnv(h, fields, sizeof fields);
    if (r->len && r->data)
        h = fnv(h, r->data, r->len);
    hs->hash = h;
    hs->records++;
    if (hs->keep && !hs->oom) {
        if (hs->nrecs == hs->cap) {
            size_t cap = hs->cap ? hs->cap * 2 : 4096;
            sim_rec_sum_t *p = realloc(hs->recs, cap * sizeof(*p));
            if (!p)
                hs->oom = true;
            else {
                hs->recs = p;
                hs->cap = cap;
            }
        }
        if (!hs->oom)
            hs->recs[hs->nrecs++] = (sim_rec_sum_t){r->seq, r->kind, r->task, h};
    }
    if (w->tee)
        w->tee->record(w->tee->self, r);
    if (w->o->tee_node)
        w->o->tee_node(w->o->tee_node_self, w->node, r);
    if (w->streams)
        sim_streams_record(w->streams, w->node, r);

    if (r->kind == HAL_TR_SPAWN && r->task == 1) {
        w->boots++;
        /* init again: the node booted anew after a power cut. Restarts and task names are
         * the new kernel's; panics seen before the cut still count. */
        memset(w->names, 0, sizeof w->names);
        memset(w->exits_told, 0, sizeof w->exits_told);
        memset(w->spawns, 0, sizeof w->spawns);
        memset(w->restarts_owed, 0, sizeof w->restarts_owed);
        memset(w->requested, 0, sizeof w->requested);
        memset(w->running, 0, sizeof w->running);
        if (w->chanq)
            sim_chanq_reset(w->chanq);
    }
    if (w->chanq && !w->chanq_broken[0])
        sim_chanq_record(w->chanq, r, w->chanq_broken, sizeof w->chanq_broken);
    if (r->kind == HAL_TR_SPAWN && r->task >= TASKS_MAX)
        w->too_many_tasks = true; /* the checker could not follow it: a failure, said below */
    if (r->kind == HAL_TR_SPAWN && r->task < TASKS_MAX) {
        size_t n = r->len < 31 ? r->len : 31;
        memcpy(w->names[r->task], r->data, n);
        w->names[r->task][n] = '\0';
        int i = prog_index(w, w->names[r->task]);
        if (i >= 0 && r->arg == 1) {
            w->spawns[i]++;
            w->running[i] = true;
        }
    } else if (r->kind == HAL_TR_EXIT && r->task < TASKS_MAX) {
        const char *name = w->names[r->task];
        if ((r->result == OS_EXIT_PANIC || r->result == OS_EXIT_FAULT) &&
            !panic_allowed(w->sc, name)) {
            if (w->panics++ == 0) {
                snprintf(w->panic_task, sizeof w->panic_task, "%s", name);
                w->panic_status = r->result;
            }
        }
    } else if (r->kind == HAL_TR_TASK_EXIT_EVENT && r->task == 1 && r->peer < TASKS_MAX) {
        int i = prog_index(w, w->names[r->peer]);
        if (i >= 0) {
            w->exits_told[i]++;
            w->running[i] = false;
            if (sim_restart_owed(&w->man->programs[i], w->restarts_owed[i], r->result))
                w->restarts_owed[i]++;
        }
    } else if (r->kind == HAL_TR_DELIVER && r->task == 1 && r->iface == w->init_iface &&
               r->type == init_msg_spawn) {
        /* `spawn NAME` of a manifest program that ended starts it again, outside the policy */
        init_spawn_t m;
        const iface_msg_t *d = iface_msg(&init_iface, init_msg_spawn);
        os_handle_t none[OS_MSG_MAX_HANDLES] = {0};
        int i = d && r->data && r->nhandles == 0 &&
                        iface_decode(d, r->data, r->len, none, 0, &m, sizeof m) == 0
                    ? prog_index(w, m.program)
                    : -1;
        if (i >= 0 && !w->running[i])
            w->requested[i]++;
    }
}

static void watch_flush(void *self)
{
    watch_t *w = self;
    if (w->tee && w->tee->flush)
        w->tee->flush(w->tee->self);
}

static void failf(sim_result_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(sim_result_t *r, const char *fmt, ...)
{
    if (!r->ok)
        return; /* keep the first */
    r->ok = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure, sizeof r->failure, fmt, ap);
    va_end(ap);
}

/* Lines fed, and prompts the shell printed: every line is answered before the next prompt. */
static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, k = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + k, needle))
        n++;
    return n;
}

/* Node `node`'s expectations on its console output `out` (expect-not * on every node's), and
 * with `shell` the prompt accounting (`who` names the node in cluster files). */
static void check_output(const sim_scenario_t *sc, uint32_t node, const char *who, const char *out,
                         bool shell, size_t nfed, bool shell_died, bool shut_down, sim_result_t *r)
{
    const char *at = out;
    for (size_t i = 0; i < sc->nsteps; i++) {
        const scn_step_t *st = &sc->steps[i];
        if (st->node != node && !(st->kind == SCN_EXPECT_NOT && st->node == SCN_NODE_ALL))
            continue;
        if (st->kind == SCN_EXPECT) {
            const char *m = strstr(at, st->text);
            if (!m) {
                failf(r, "%sexpectation (scenario line %d): output has no '%s'%s", who, st->line,
                      st->text, at != out ? " after the previous expectation" : "");
                return;
            }
            at = m + strlen(st->text);
        } else if (st->kind == SCN_EXPECT_NOT && strstr(out, st->text)) {
            failf(r, "%sexpectation (scenario line %d): output has '%s'", who, st->line, st->text);
            return;
        }
    }
    if (!shell)
        return;
    /* Every request answered: each line fed (but a final shutdown) gets its prompt back. */
    size_t prompts = count(out, "orrery> ");
    size_t want = nfed + 1 - (shut_down ? 1 : 0);
    if (!shell_died && prompts != want)
        failf(r, "%sunanswered input: %zu line(s) fed, %zu prompt(s) printed (want %zu)", who, nfed,
              prompts, want);
    else if (shell_died && prompts == 0)
        failf(r, "%sunanswered input: the shell never printed a prompt", who);
}

/* The scenario's host-crash hook: the simulator process itself dies, between two events,
 * outside any task (tests of the sweep's crash isolation, docs/simulation.md). */
__attribute__((no_sanitize("undefined"))) static void host_crash(void *self, uint64_t how)
{
    (void)self;
    int *volatile nowhere = NULL;
    if (how == SCN_HOST_CRASH_SEGV)
        *(volatile int *)nowhere = 1;
    abort();
}

/*
 * Checks at the end of the run on the current node, while its tasks still exist: kernel
 * audit, handle limits, panics that were not injected, restarts within policy. `who` prefixes
 * each failure ("" for the scenario's node, "peer NAME: " for another).
 */
static void check_node(const sim_scenario_t *sc, const watch_t *w, const manifest_t *man,
                       const char *who, sim_result_t *r)
{
    char err[160];
    k_audit_task_t tasks[64];
    size_t ntasks = 0;
    if (k_audit(tasks, 64, &ntasks, err, sizeof err) != 0)
        failf(r, "%skernel audit at the end: %s", who, err);
    uint32_t max_handles = sc->max_handles ? sc->max_handles : 64;
    for (size_t i = 0; i < ntasks && i < 64; i++)
        if (tasks[i].handles > max_handles)
            failf(r, "%shandle leak: %s (task %u) holds %u handles (limit %u)", who, tasks[i].name,
                  tasks[i].id, tasks[i].handles, max_handles);
    if (w->too_many_tasks)
        failf(r, "%smore than %d tasks spawned: the checker follows task ids below %d", who,
              TASKS_MAX - 1, TASKS_MAX);
    if (w->chanq_broken[0])
        failf(r, "%squeue bound: %s", who, w->chanq_broken);
    if (w->panics)
        failf(r, "%spanic that was not injected: %s exited with %d (%u in all)", who, w->panic_task,
              w->panic_status, w->panics);
    /* Init restarts within policy: init's policy replayed on the exits it was told of, in
     * their order (sim_restart_owed), gives the restarts it owes; each must have happened,
     * and no more. A `spawn` of the program while it was not running starts it once more. */
    for (size_t i = 0; i < man->count; i++) {
        const manifest_program_t *p = &man->programs[i];
        uint32_t want = 1 + w->restarts_owed[i] + w->requested[i];
        if (w->spawns[i] != want)
            failf(r,
                  "%srestart policy: %s (restart=%s, max-restarts=%u) was told ended %u time(s) "
                  "and started %u time(s), want %u",
                  who, p->name, manifest_restart_name(p->restart), p->max_restarts,
                  w->exits_told[i], w->spawns[i], want);
    }
}

/* When power-cut line i strikes: a seeded time in [start, end], apart from every stream of
 * the run (so a cut window never reshuffles the run's own choices). */
static uint64_t draw_time(uint64_t salt, uint64_t start, uint64_t end, uint64_t seed, size_t i)
{
    uint64_t z = seed ^ (salt + 0x9e3779b97f4a7c15ull * (i + 1));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    uint64_t span = end - start;
    return start + (span == UINT64_MAX ? z : z % (span + 1));
}

static uint64_t cut_time(const scn_power_cut_t *pc, uint64_t seed, size_t i)
{
    return draw_time(0x706f7765722d6375ull, pc->start, pc->end, seed, i);
}

/* When `crash` line i strikes: drawn as a power cut's, from its own stream ("crash-ti"). */
static uint64_t crash_time(const scn_crash_t *cr, uint64_t seed, size_t i)
{
    return draw_time(0x63726173682d7469ull, cr->start, cr->end, seed, i);
}

static void console_end(void *self, uint64_t arg)
{
    (void)self;
    (void)arg;
    sim_console_end();
}

/* The queue-bound invariant's tables: one per node index, kept for the whole process and
 * emptied for each run (a run's endpoints come and go by the thousand). */
static sim_chanq_t *chanqs[SIM_RUN_NODES_MAX];

/* `kill-at`: the named program's live task on the current node (none alive: nothing). */
static bool kill_at_missed[SCN_KILL_AT_MAX]; /* this run's kill-at lines that found no task */

static void kill_at_now(void *self, uint64_t arg)
{
    const sim_scenario_t *sc = self;
    if (!sim_node_booted(sim_node_current())) { /* crashed or cut: no task to kill */
        kill_at_missed[arg] = true;
        return;
    }
    uint32_t id = k_task_find(sc->kill_at[arg].program);
    if (!id || k_fault_kill(id, OS_EXIT_KILLED) != 0)
        kill_at_missed[arg] = true;
}

static void free_disks(sim_disk_t **disks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sim_disk_free(disks[i]);
        disks[i] = NULL;
    }
}

/* The run's frame tap: hashes every frame (cluster files, for --check-determinism) and hands
 * it on to the caller's tap. */
typedef struct frame_hash {
    hashsum_t *hs;
    bool hash;
    const sim_run_opts_t *o;
} frame_hash_t;

static void frame_tap(void *self, uint64_t t_ns, uint32_t from, const void *frame, size_t len)
{
    frame_hash_t *fh = self;
    if (fh->hash) {
        uint64_t h = fh->hs->frames;
        h = fnv(h, &t_ns, sizeof t_ns);
        h = fnv(h, &from, sizeof from);
        fh->hs->frames = fnv(h, frame, len);
    }
    if (fh->o->frame_tap)
        fh->o->frame_tap(fh->o->frame_tap_self, t_ns, from, frame, len);
}

/* A crash or power cut took node `arg` down: its stream ends are gone, not stalled. */
static void streams_down(void *self, uint64_t arg)
{
    sim_streams_node_down(self, (uint32_t)arg);
}

/* The prefix of a node's failures: "node NAME: " in cluster files; in old files "" for the
 * scenario's node and "peer NAME: " for a peer. */
static void node_who(const sim_scenario_t *sc, size_t n, char *who, size_t len)
{
    if (sc->cluster)
        snprintf(who, len, "node %s: ", sim_scenario_node_name(sc, n));
    else if (n > 0)
        snprintf(who, len, "peer %s: ", sim_scenario_node_name(sc, n));
    else
        who[0] = '\0';
}

/* The run's network: paths, partitions, cuts and clogs, chaos (scenario order). 0, or a
 * failure of the switch (said in r). */
static int setup_net(const sim_scenario_t *sc, size_t nnodes, sim_result_t *r)
{
    int rc = 0;
    for (size_t i = 0; i < sc->nlinks && rc == 0; i++) {
        const scn_link_t *l = &sc->links[i];
        rc = sim_net_set_link(l->from, l->to, &l->link);
        if (rc == 0 && l->both)
            rc = sim_net_set_link(l->to, l->from, &l->link);
        if (rc != 0)
            failf(r, "link (scenario line %d): the switch refused it: %s", l->line,
                  os_strerror(rc));
    }
    uint64_t all = nnodes >= 64 ? UINT64_MAX : (1ull << nnodes) - 1;
    for (size_t i = 0; i < sc->npartitions && rc == 0; i++) {
        const scn_partition_t *pt = &sc->partitions[i];
        uint64_t g[SCN_GROUPS_MAX + 1];
        size_t ng = pt->ngroups;
        memcpy(g, pt->groups, ng * sizeof g[0]);
        if (ng == 1) /* isolate: the node against every other */
            g[ng++] = all & ~pt->groups[0];
        /* two cuts per pair of groups (old files: the scenario's node and a peer, as before) */
        for (size_t x = 0; x < ng && rc == 0; x++)
            for (size_t y = x + 1; y < ng && rc == 0; y++) {
                if (!sc->cluster) {
                    rc = sim_net_partition(0, 1 + pt->peer, pt->start, pt->end);
                    continue;
                }
                if (g[x] == 0 || g[y] == 0)
                    continue; /* isolating the only node: nobody to cut it from */
                rc = sim_net_cut_sets(g[x], g[y], pt->start, pt->end);
                if (rc == 0)
                    rc = sim_net_cut_sets(g[y], g[x], pt->start, pt->end);
            }
        if (rc != 0)
            failf(r, "partition (scenario line %d): the switch refused it: %s", pt->line,
                  os_strerror(rc));
    }
    for (size_t i = 0; i < sc->nnet_cuts && rc == 0; i++) {
        const scn_net_cut_t *c = &sc->net_cuts[i];
        rc = c->clog ? sim_net_clog(c->from, c->to, c->start, c->end)
                     : sim_net_cut(c->from, c->to, c->start, c->end);
        if (rc != 0)
            failf(r, "%s (scenario line %d): the switch refused it: %s", c->clog ? "clog" : "cut",
                  c->line, os_strerror(rc));
    }
    if (sc->chaos && rc == 0) {
        rc = sim_net_chaos(&sc->chaos_cfg);
        if (rc != 0)
            failf(r, "net-chaos: the switch refused it: %s", os_strerror(rc));
    }
    return rc;
}

/* A disk holds an ext2 volume: the superblock's magic at byte 1024 + 56. */
static bool is_ext2(sim_disk_t *d)
{
    const uint8_t *m = sim_disk_medium(d);
    return sim_disk_sectors(d) >= 4 && m[1024 + 56] == 0x53 && m[1024 + 57] == 0xef;
}

int sim_run_scenario(const sim_scenario_t *sc, uint64_t seed, const sim_run_opts_t *o,
                     sim_result_t *r)
{
    /* large: not on the stack; node 0 is the scenario's node (or the first `node`) */
    static watch_t w[SIM_RUN_NODES_MAX];
    static manifest_t man[SIM_RUN_NODES_MAX];
    static hashsum_t hs;
    hal_trace_sink_t sinks[SIM_RUN_NODES_MAX];
    sim_config_t cfg[SIM_RUN_NODES_MAX];
    sim_scenario_t *msc = (sim_scenario_t *)sc; /* the accessors serve loading too */
    size_t nnodes = sim_scenario_node_count(sc);
    bool net = sim_scenario_has_net(sc);
    char err[512], who[48];
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->status = -1;
    r->nnodes = nnodes;
    if (nnodes > SIM_RUN_NODES_MAX)
        return OS_EINVAL;
    memset(&hs, 0, sizeof hs);
    hs.hash = 0xcbf29ce484222325ull;
    hs.frames = 0xcbf29ce484222325ull;
    hs.keep = o->keep_records;
    memset(cfg, 0, sizeof cfg);
    /* every seed on a fresh copy of the disk it starts from (every node's) */
    sim_disk_t *disks[SIM_RUN_NODES_MAX] = {NULL};
    for (size_t n = 0; n < nnodes; n++) {
        const scn_disk_t *sd = sim_scenario_node_disk(msc, n);
        if (sd->kind != SCN_DISK_NONE && !sd->image) {
            failf(r, "disk (scenario line %d) was not loaded", sd->line);
            free_disks(disks, nnodes);
            return 0;
        }
        disks[n] = sd->image ? sim_disk_copy(sd->image) : NULL;
        if (sd->image && !disks[n]) {
            free_disks(disks, nnodes);
            return OS_ENOMEM;
        }
    }
    sim_disk_t *disk = disks[0];
    r->disk = disk != NULL;
    sim_streams_t *streams = net && !sc->streams_off ? sim_streams_new() : NULL;
    if (net && !sc->streams_off && !streams) {
        free_disks(disks, nnodes);
        return OS_ENOMEM;
    }
    for (size_t n = 0; streams && n < nnodes; n++) {
        /* violations name the node; its own address pairs its ends (a learnt one could be
         * loopback) */
        sim_streams_node_name(streams, (uint32_t)n,
                              n == 0 && !sc->cluster ? "main" : sim_scenario_node_name(sc, n));
        unsigned a, b, c, d;
        if (sc->cluster && sscanf(sc->nodes[n].addr, "%u.%u.%u.%u", &a, &b, &c, &d) == 4)
            sim_streams_node_addr(streams, (uint32_t)n, a << 24 | b << 16 | c << 8 | d);
    }
    for (size_t n = 0; n < nnodes; n++) {
        const scn_manifest_t *sm = sim_scenario_node_manifest(msc, n);
        const char *text = sm->text ? sm->text : orrery_default_manifest;
        size_t len = sm->text ? sm->len : strlen(orrery_default_manifest);
        node_who(sc, n, who, sizeof who);
        if ((sc->cluster || n > 0) && !sm->text) {
            failf(r, "%smanifest %s was not loaded", who, sm->path[0] ? sm->path : "(default)");
            goto out_early;
        }
        if (manifest_parse(text, len, orrery_programs, "init", &man[n], err, sizeof err) != 0) {
            if (sc->cluster)
                failf(r, "%smanifest: %s", who, err);
            else
                failf(r, "%s manifest: %s", n == 0 ? "the scenario's" : sc->peers[n - 1].name, err);
            goto out_early;
        }
        memset(&w[n], 0, sizeof(w[n]));
        w[n].hs = &hs;
        w[n].tee = n == 0 ? o->tee : NULL;
        w[n].man = &man[n];
        w[n].sc = sc;
        w[n].node = (uint32_t)n;
        w[n].streams = streams;
        w[n].o = o;
        w[n].init_iface = iface_id(&init_iface);
        if (!chanqs[n] && !(chanqs[n] = sim_chanq_new())) {
            failf(r, "out of memory following channel queues");
            goto out_early;
        }
        sim_chanq_reset(chanqs[n]);
        w[n].chanq = chanqs[n];
        sinks[n] = (hal_trace_sink_t){.self = &w[n], .record = watch_record, .flush = watch_flush};
        cfg[n] = (sim_config_t){
            .programs = orrery_programs,
            .init_arg = text,
            .init_arg_len = len,
            /* the scenario's node keeps the seed itself, so single-node runs are as before */
            .seed = n == 0 ? seed : seed ^ (0x9e3779b97f4a7c15ull * n),
            .trace = &sinks[n],
            .event_cost_max_ns = 2000, /* each event takes 1..2000 ns of virtual time */
            .console_out = n == 0 ? o->console_out : NULL,
            .console_out_self = n == 0 ? o->console_out_self : NULL,
            .net = net,
            .disk = disks[n],
        };
    }
    if (o->node_names) {
        const char *names[SIM_RUN_NODES_MAX];
        for (size_t n = 0; n < nnodes; n++)
            names[n] = n == 0 && !sc->cluster ? sc->name : sim_scenario_node_name(sc, n);
        o->node_names(o->tee_node_self, names, nnodes);
    }
    for (size_t n = 0; o->node_manifest && n < nnodes; n++)
        o->node_manifest(o->tee_node_self, (uint32_t)n, (const char *)cfg[n].init_arg,
                         cfg[n].init_arg_len);
    int rc = nnodes == 1 ? sim_boot(&cfg[0]) : sim_boot_nodes(cfg, nnodes);
    if (rc != 0) {
        sim_teardown();
        free_disks(disks, nnodes);
        sim_streams_free(streams);
        return rc;
    }
    r->ncuts = sc->ncuts;
    for (size_t i = 0; i < sc->ncuts && rc == 0; i++) {
        r->cut_ns[i] = cut_time(&sc->cuts[i], seed, i);
        rc = sim_node_power_cut_at(0, r->cut_ns[i], sc->cuts[i].reboot);
        if (rc == 0 && streams)
            rc = sim_at_node(0, r->cut_ns[i], streams_down, streams, 0);
    }
    frame_hash_t fh = {.hs = &hs, .hash = sc->cluster && o->keep_records, .o = o};
    if (net) {
        bool tap = fh.hash || o->frame_tap;
        sim_net_config_t nc = {.latency_ns = sc->net_latency_ns,
                               .path_frames_max = sc->net_capacity,
                               .tail_mean_ns = sc->net_link.tail_mean_ns,
                               .bandwidth_bps = sc->net_link.bandwidth_bps,
                               .tap = tap ? frame_tap : NULL,
                               .tap_self = tap ? &fh : NULL};
        sim_net_configure(&nc);
        if (o->deliver_tap)
            sim_net_set_deliver_tap(o->deliver_tap, o->deliver_tap_self);
        if (rc == 0 && setup_net(sc, nnodes, r) != 0)
            goto out;
    }
    /* node faults: crashes at seeded times (`*`: every node at once), pauses */
    r->ncrashes = sc->ncrashes;
    for (size_t i = 0; i < sc->ncrashes && rc == 0; i++) {
        const scn_crash_t *cr = &sc->crashes[i];
        r->crash_ns[i] = crash_time(cr, seed, i);
        for (size_t n = 0; n < nnodes && rc == 0; n++) {
            if (cr->node != SCN_NODE_ALL && cr->node != n)
                continue;
            rc = sim_node_crash_at(n, r->crash_ns[i], cr->down_ns);
            if (rc == 0 && streams)
                rc = sim_at_node(n, r->crash_ns[i], streams_down, streams, n);
        }
        if (rc != 0)
            failf(r, "crash (scenario line %d): %s", cr->line, os_strerror(rc));
    }
    for (size_t i = 0; i < sc->npauses && rc == 0; i++) {
        rc = sim_node_pause(sc->pauses[i].node, sc->pauses[i].start, sc->pauses[i].end);
        if (rc != 0)
            failf(r, "pause (scenario line %d): %s", sc->pauses[i].line, os_strerror(rc));
    }
    size_t nfed[SIM_RUN_NODES_MAX] = {0};
    for (size_t i = 0; i < sc->nsteps && rc == 0; i++) {
        const scn_step_t *st = &sc->steps[i];
        if (st->kind == SCN_AT) {
            rc = st->node == 0 ? sim_console_at(st->t, st->text)
                               : sim_node_console_at(st->node, st->t, st->text);
            nfed[st->node]++;
        }
    }
    memset(kill_at_missed, 0, sizeof kill_at_missed);
    for (size_t i = 0; i < sc->nkill_at && rc == 0; i++) {
        sim_node_enter(sc->kill_at[i].node); /* the action runs on the node it was added on */
        rc = sim_at(sc->kill_at[i].t, kill_at_now, (void *)sc, i);
        sim_node_enter(0);
    }
    /* `eof on`: the scenario's node's console input ends after its last line */
    uint64_t last_line = 0;
    for (size_t i = 0; i < sc->nsteps; i++)
        if (sc->steps[i].kind == SCN_AT && sc->steps[i].node == 0 && sc->steps[i].t > last_line)
            last_line = sc->steps[i].t;
    if (rc == 0 && sc->console_eof)
        rc = sim_at(last_line, console_end, NULL, 0);
    if (rc == 0 && sc->host_crash != SCN_HOST_CRASH_NONE && seed == sc->host_crash_seed)
        rc = sim_at(0, host_crash, NULL, sc->host_crash);
    sim_faults_t f = sc->fault_cfg;
    f.enabled = o->faults;
    f.duration_ns = sc->duration_ns;
    if (rc == 0)
        rc = sim_faults_install(&f);
    if (rc != 0 && r->ok) {
        sim_faults_remove();
        sim_teardown();
        free_disks(disks, nnodes);
        sim_streams_free(streams);
        return rc;
    }
    if (!r->ok)
        goto out;

    uint64_t max_events = sc->max_events ? sc->max_events : 10000000;
    uint64_t liveness = sim_scenario_liveness(sc);
    /* the network has healed for good once every cut, clog and chaos fault has ended, and
     * every pause: a paused node's streams stall with it */
    uint64_t heal = sim_net_last_heal();
    for (size_t i = 0; i < sc->npauses; i++)
        if (sc->pauses[i].end > heal)
            heal = sc->pauses[i].end;
    bool down[SIM_NODES_MAX] = {false}; /* nodes that shut down, told to the stream checker */
    uint64_t steps = 0;
    bool stuck = false;
    while (r->ok) {
        if (!sim_step()) {
            stuck = !sim_shutdown_status(NULL);
            break;
        }
        /* the node that just ran (its kernel is the current one, unless a power cut took it) */
        if (++steps % AUDIT_EVERY == 0) {
            size_t cur = sim_node_current();
            if (sim_node_booted(cur) && k_audit(NULL, 0, NULL, err, sizeof err) != 0) {
                node_who(sc, cur, who, sizeof who);
                failf(r, "%skernel audit after %llu steps: %s", sc->cluster ? who : "",
                      (unsigned long long)steps, err);
            }
            /* a node that shut down closed its ends: what its peers still send it is not
             * a stall */
            for (size_t n = 0; streams && n < nnodes; n++)
                if (!down[n] && sim_node_shutdown_status(n, NULL)) {
                    down[n] = true;
                    sim_streams_node_down(streams, (uint32_t)n);
                }
            if (streams && !sim_streams_check(streams, sim_now(), heal, liveness, err, sizeof err))
                failf(r, "%s", err);
        }
        if (sim_now() > sc->duration_ns) {
            failf(r, "no shutdown within the scenario's duration (%llu ms of virtual time)",
                  (unsigned long long)(sc->duration_ns / 1000000));
            break;
        }
        if (steps >= max_events) {
            failf(r, "more than %llu steps without a shutdown (livelock?)",
                  (unsigned long long)max_events);
            break;
        }
    }
    bool shut_down = sim_shutdown_status(&r->status);
    if (streams && !sim_streams_check(streams, sim_now(), heal, liveness, err, sizeof err))
        failf(r, "%s", err);

    /* Every kill-at hit a live task (a kill that hit nothing tested nothing). */
    for (size_t i = 0; i < sc->nkill_at; i++) {
        const scn_kill_at_t *ka = &sc->kill_at[i];
        bool named = ka->node || sc->cluster;
        if (kill_at_missed[i] || ka->t > sim_now())
            failf(r, "kill-at (scenario line %d): %s%s%s%s at %llu ms", ka->line,
                  ka->t > sim_now() ? "the run ended before killing " : "no live task of ",
                  named ? sim_scenario_node_name(sc, ka->node) : "", named ? ":" : "", ka->program,
                  (unsigned long long)(ka->t / 1000000));
    }
    /* Every power cut and crash came (a run that ended first proved nothing). */
    sim_blk_stats(&r->blk);
    for (size_t i = r->blk.power_cuts; i < sc->ncuts; i++)
        failf(r, "power cut (scenario line %d) due at %.6f s never came: the run ended at %.6f s",
              sc->cuts[i].line, (double)r->cut_ns[i] / 1e9, (double)sim_now() / 1e9);
    for (size_t i = 0; i < sc->ncrashes; i++)
        if (r->crash_ns[i] > sim_now())
            failf(r, "crash (scenario line %d) due at %.6f s never came: the run ended at %.6f s",
                  sc->crashes[i].line, (double)r->crash_ns[i] / 1e9, (double)sim_now() / 1e9);

    /* Invariants at the end, on every node, while the tasks still exist (a node a power cut
     * or a crash left down has none: its kernel's leaks are counted below). */
    for (size_t n = nnodes; n-- > 0;) {
        if (!sim_node_booted(n))
            continue;
        node_who(sc, n, who, sizeof who);
        sim_node_enter(n);
        check_node(sc, &w[n], &man[n], who, r);
    }
    /* after the nodes' invariants: a run that idles because a policy broke names the policy */
    if (stuck && sim_pending_actions() == 0)
        failf(r, "the system went idle for good without shutting down");
    else if (stuck)
        failf(r, "the run stopped with %zu input line(s) never delivered", sim_pending_actions());
    if (sc->has_exit && shut_down && r->status != sc->exit_status)
        failf(r, "shutdown status %d, want %d", r->status, sc->exit_status);
    if (sc->has_exit && !shut_down)
        failf(r, "no shutdown (want status %d)", sc->exit_status);

    /* Every node's console: its expectations; the prompt accounting where a shell runs (old
     * files: the scenario's node alone, as before) */
    for (size_t n = 0; n < nnodes; n++) {
        size_t out_len;
        const char *out =
            n == 0 ? sim_console_output(&out_len) : sim_node_console_output(n, &out_len);
        int status;
        bool node_down = n == 0 ? shut_down : sim_node_shutdown_status(n, &status);
        int shell = prog_index(&w[n], "shell");
        /* a power cut or a crash kills the shell with its kernel: the lines it held die too */
        bool shell_died = shell >= 0 && (w[n].exits_told[shell] > 0 || w[n].boots > 1 ||
                                         !sim_node_booted(n) || (n == 0 && r->blk.power_cuts > 0));
        node_who(sc, n, who, sizeof who);
        check_output(sc, (uint32_t)n, sc->cluster ? who : "", out ? out : "",
                     sc->cluster ? shell >= 0 : n == 0, nfed[n], shell_died, node_down, r);
        if (n == 0 || sc->cluster)
            hs.hash = fnv(hs.hash, out, out_len);
        if (o->keep_output && out) {
            char *copy = malloc(out_len + 1);
            if (copy)
                memcpy(copy, out, out_len + 1);
            if (n == 0) {
                r->output = copy;
                r->output_len = copy ? out_len : 0;
            } else {
                r->node_output[n] = copy;
                r->node_output_len[n] = copy ? out_len : 0;
            }
        }
    }

out:;
    k_stats_t ks = {0};
    sim_node_enter(0);
    if (sim_node_booted(0))
        k_get_stats(&ks);     /* the scenario's node */
    uint64_t cut_ev, cut_msg; /* kernels torn down by power cuts ran events too */
    sim_node_cut_stats(0, &cut_ev, &cut_msg);
    r->events = ks.events + cut_ev;
    r->messages = ks.messages + cut_msg;
    r->vtime_ns = sim_now();
    sim_faults_stats(&r->injected);
    if (net) {
        sim_net_stats(&r->net);
        r->net_last_heal_ns = sim_net_last_heal();
        sim_net_set_deliver_tap(NULL, NULL);
    }
    sim_faults_remove();
    r->leaks = sim_teardown();
    for (size_t n = 0; n < nnodes; n++) {
        long l = sim_node_leaks(n);
        node_who(sc, n, who, sizeof who);
        if (l != 0 && sc->cluster)
            failf(r, "%smemory leak: %ld kernel allocation(s) live after teardown", who, l);
        else if (l != 0)
            failf(r, "memory leak: %ld kernel allocation(s) live after teardown%s%s", l,
                  n ? " of peer " : "", n ? sc->peers[n - 1].name : "");
    }
    if (sc->cluster && o->keep_records) /* the frames are part of what must be deterministic */
        hs.hash = fnv(hs.hash, &hs.frames, sizeof hs.frames);
    for (size_t n = 0; n < nnodes; n++) {
        if (!disks[n])
            continue;
        sim_disk_flush(disks[n]); /* as a clean power-off and sim_disk_save leave it */
        if (o->keep_records)      /* the disk's bytes are part of what must be deterministic */
            hs.hash = fnv(hs.hash, sim_disk_medium(disks[n]), sim_disk_sectors(disks[n]) * 512);
        char serr[512];
        if (n == 0 && o->save_disk && sim_disk_save(disks[n], o->save_disk, serr, sizeof serr))
            failf(r, "cannot save the disk: %s", serr);
        if (o->node_disk)
            o->node_disk(o->node_disk_self, (uint32_t)n, disks[n]);
        /* cluster files: every ext2 volume must be clean for the host's e2fsck -fn */
        if (sc->cluster && r->ok && is_ext2(disks[n]) &&
            sim_disk_fsck(disks[n], serr, sizeof serr) != 0) {
            node_who(sc, n, who, sizeof who);
            failf(r, "%s%s", who, serr);
        }
    }
    free_disks(disks, nnodes);
    sim_streams_free(streams);
    r->hash = hs.hash;
    r->records = hs.records;
    r->recs = hs.recs;
    r->nrecs = hs.nrecs;
    if (hs.oom)
        failf(r, "out of memory keeping trace records");
    return 0;

out_early:
    free_disks(disks, nnodes);
    sim_streams_free(streams);
    return 0;
}

/* Read one manifest file and (check) check it; 0 or -1 with err. */
static int load_manifest(scn_manifest_t *m, const char *dir, bool check, char *err, size_t errlen)
{
    char path[2 * SCN_PATH_MAX + 2];
    if (m->path[0] == '/' || dir == NULL || dir[0] == '\0')
        snprintf(path, sizeof path, "%s", m->path);
    else
        snprintf(path, sizeof path, "%s/%s", dir, m->path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(OS_BOOT_ARG_MAX + 1);
    size_t n = buf ? fread(buf, 1, OS_BOOT_ARG_MAX + 1, f) : 0;
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > OS_BOOT_ARG_MAX) {
        snprintf(err, errlen, "%s: %s", path,
                 !buf  ? "out of memory"
                 : bad ? "read error"
                       : "manifest over 65536 bytes");
        free(buf);
        return -1;
    }
    static manifest_t man; /* large: not on the stack */
    char why[160];
    int line = check ? manifest_parse(buf, n, orrery_programs, "init", &man, why, sizeof why) : 0;
    if (line != 0) {
        snprintf(err, errlen, "%s:%d: %s", path, line, why);
        free(buf);
        return -1;
    }
    free(m->text);
    m->text = buf;
    m->len = n;
    return 0;
}

int sim_scenario_load(sim_scenario_t *sc, const char *dir, char *err, size_t errlen)
{
    int line = sim_scenario_load_disk(sc, dir, err, errlen);
    if (line != 0)
        return line;
    if (!sc->cluster) {
        if (sc->manifest.path[0] && load_manifest(&sc->manifest, dir, true, err, errlen) != 0)
            return sc->manifest.line;
        for (size_t i = 0; i < sc->npeers; i++)
            if (load_manifest(&sc->peers[i].manifest, dir, true, err, errlen) != 0)
                return sc->peers[i].manifest.line;
        return 0;
    }
    /* a cluster node's manifest (or the default one), with its ${...} replaced, then checked */
    for (size_t n = 0; n < sc->nnodes; n++) {
        scn_node_t *nd = &sc->nodes[n];
        scn_manifest_t *m = &nd->manifest;
        char why[400];
        if (m->path[0] && !m->text && load_manifest(m, dir, false, why, sizeof why) != 0) {
            snprintf(err, errlen, "node %s: %s", nd->name, why);
            return m->line;
        }
        const char *src = m->text ? m->text : orrery_default_manifest;
        size_t slen = m->text ? m->len : strlen(orrery_default_manifest), len;
        char *text = sim_scenario_substitute(sc, n, src, slen, &len, why, sizeof why);
        if (!text) {
            snprintf(err, errlen, "node %s: manifest %s: %s", nd->name,
                     m->path[0] ? m->path : "(default)", why);
            return m->line;
        }
        static manifest_t man; /* large: not on the stack */
        char mwhy[160];
        int mline = len > OS_BOOT_ARG_MAX ? -1
                                          : manifest_parse(text, len, orrery_programs, "init", &man,
                                                           mwhy, sizeof mwhy);
        if (mline != 0) {
            if (mline < 0)
                snprintf(err, errlen, "node %s: manifest %s: over %d bytes once substituted",
                         nd->name, m->path, OS_BOOT_ARG_MAX);
            else
                snprintf(err, errlen, "node %s: %s:%d: %s", nd->name,
                         m->path[0] ? m->path : "(default)", mline, mwhy);
            free(text);
            return m->line;
        }
        free(m->text);
        m->text = text;
        m->len = len;
    }
    return 0;
}

void sim_result_free(sim_result_t *r)
{
    for (size_t n = 0; n < SIM_RUN_NODES_MAX; n++) {
        free(r->node_output[n]);
        r->node_output[n] = NULL;
    }
    free(r->recs);
    free(r->output);
    r->recs = NULL;
    r->output = NULL;
}

long sim_first_difference(const sim_result_t *a, const sim_result_t *b)
{
    size_t n = a->nrecs < b->nrecs ? a->nrecs : b->nrecs;
    for (size_t i = 0; i < n; i++)
        if (a->recs[i].hash != b->recs[i].hash)
            return (long)i;
    if (a->nrecs != b->nrecs)
        return (long)n;
    return a->hash == b->hash ? -1 : (long)n;
}
