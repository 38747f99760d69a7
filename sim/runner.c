/* runner.c — one seed of a scenario: boot the image on sim, feed it, inject faults, check it. */
#include <sim/runner.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <image.h>
#include <k/audit.h>
#include <k/fault.h>
#include <k/kernel.h>
#include <manifest.h>
#include <sim/net.h>
#include <sim/sim.h>

#include "sim_priv.h"

enum {
    TASKS_MAX = 1024, /* task ids remembered by the checker */
    AUDIT_EVERY = 64, /* steps between kernel audits */
};

/* The running hash over every node's records, in the order they happened. */
typedef struct hashsum {
    uint64_t hash;
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
    /* restart bookkeeping: exits told to init whose program must come back */
    uint32_t exits_told[MANIFEST_PROGRAMS_MAX];
    uint32_t spawns[MANIFEST_PROGRAMS_MAX];
    uint32_t clean_exits_told[MANIFEST_PROGRAMS_MAX];
    const manifest_t *man;
    const sim_scenario_t *sc;
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

    if (r->kind == HAL_TR_SPAWN && r->task == 1) {
        /* init again: the node booted anew after a power cut. Restarts and task names are
         * the new kernel's; panics seen before the cut still count. */
        memset(w->names, 0, sizeof w->names);
        memset(w->exits_told, 0, sizeof w->exits_told);
        memset(w->spawns, 0, sizeof w->spawns);
        memset(w->clean_exits_told, 0, sizeof w->clean_exits_told);
    }
    if (r->kind == HAL_TR_SPAWN && r->task >= TASKS_MAX)
        w->too_many_tasks = true; /* the checker could not follow it: a failure, said below */
    if (r->kind == HAL_TR_SPAWN && r->task < TASKS_MAX) {
        size_t n = r->len < 31 ? r->len : 31;
        memcpy(w->names[r->task], r->data, n);
        w->names[r->task][n] = '\0';
        int i = prog_index(w, w->names[r->task]);
        if (i >= 0 && r->arg == 1)
            w->spawns[i]++;
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
            if (r->result == 0)
                w->clean_exits_told[i]++;
        }
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

static void check_output(const sim_scenario_t *sc, const char *out, size_t nfed, bool shell_died,
                         bool shut_down, sim_result_t *r)
{
    const char *at = out;
    for (size_t i = 0; i < sc->nsteps; i++) {
        const scn_step_t *st = &sc->steps[i];
        if (st->kind == SCN_EXPECT) {
            const char *m = strstr(at, st->text);
            if (!m) {
                failf(r, "expectation (scenario line %d): output has no '%s'%s", st->line, st->text,
                      at != out ? " after the previous expectation" : "");
                return;
            }
            at = m + strlen(st->text);
        } else if (st->kind == SCN_EXPECT_NOT && strstr(out, st->text)) {
            failf(r, "expectation (scenario line %d): output has '%s'", st->line, st->text);
            return;
        }
    }
    /* Every request answered: each line fed (but a final shutdown) gets its prompt back. */
    size_t prompts = count(out, "orrery> ");
    size_t want = nfed + 1 - (shut_down ? 1 : 0);
    if (!shell_died && prompts != want)
        failf(r, "unanswered input: %zu line(s) fed, %zu prompt(s) printed (want %zu)", nfed,
              prompts, want);
    else if (shell_died && prompts == 0)
        failf(r, "unanswered input: the shell never printed a prompt");
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
    if (w->panics)
        failf(r, "%spanic that was not injected: %s exited with %d (%u in all)", who, w->panic_task,
              w->panic_status, w->panics);
    /* Init restarts within policy: each exit init was told of is followed by the restart the
     * manifest asks for, and no program is started more often than its max-restarts allow. */
    for (size_t i = 0; i < man->count; i++) {
        const manifest_program_t *p = &man->programs[i];
        uint32_t told = w->exits_told[i], expect_spawns = 1;
        for (uint32_t k = 0; k < told && expect_spawns - 1 < p->max_restarts; k++) {
            if (p->restart == MANIFEST_RESTART_NEVER)
                break;
            if (p->restart == MANIFEST_RESTART_ON_FAILURE && w->clean_exits_told[i] > 0)
                break; /* a clean exit ends the on-failure chain (good enough for scenarios) */
            expect_spawns++;
        }
        if (w->spawns[i] != expect_spawns)
            failf(r,
                  "%srestart policy: %s (restart=%s, max-restarts=%u) was told ended %u time(s) "
                  "and started %u time(s), want %u",
                  who, p->name, manifest_restart_name(p->restart), p->max_restarts, told,
                  w->spawns[i], expect_spawns);
    }
}

/* When power-cut line i strikes: a seeded time in [start, end], apart from every stream of
 * the run (so a cut window never reshuffles the run's own choices). */
static uint64_t cut_time(const scn_power_cut_t *pc, uint64_t seed, size_t i)
{
    uint64_t z = seed ^ (0x706f7765722d6375ull + 0x9e3779b97f4a7c15ull * (i + 1));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    uint64_t span = pc->end - pc->start;
    return pc->start + (span == UINT64_MAX ? z : z % (span + 1));
}

/* `kill-at`: the named program's live task on the current node (none alive: nothing). */
static bool kill_at_missed[SCN_KILL_AT_MAX]; /* this run's kill-at lines that found no task */

static void kill_at_now(void *self, uint64_t arg)
{
    const sim_scenario_t *sc = self;
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

int sim_run_scenario(const sim_scenario_t *sc, uint64_t seed, const sim_run_opts_t *o,
                     sim_result_t *r)
{
    /* large: not on the stack; [0] is the scenario's node, [1 + i] peer i */
    static watch_t w[1 + SCN_PEERS_MAX];
    static manifest_t man[1 + SCN_PEERS_MAX];
    static hashsum_t hs;
    hal_trace_sink_t sinks[1 + SCN_PEERS_MAX];
    sim_config_t cfg[1 + SCN_PEERS_MAX];
    size_t nnodes = 1 + sc->npeers;
    char err[160];
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->status = -1;
    memset(&hs, 0, sizeof hs);
    hs.hash = 0xcbf29ce484222325ull;
    hs.keep = o->keep_records;
    memset(cfg, 0, sizeof cfg);
    /* every seed on a fresh copy of the disk it starts from (the scenario node's and peers') */
    sim_disk_t *disks[1 + SCN_PEERS_MAX] = {NULL};
    for (size_t n = 0; n < nnodes; n++) {
        const scn_disk_t *sd = n == 0 ? &sc->disk : &sc->peers[n - 1].disk;
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
    for (size_t n = 0; n < nnodes; n++) {
        const scn_manifest_t *sm = n == 0 ? &sc->manifest : &sc->peers[n - 1].manifest;
        const char *text = sm->text ? sm->text : orrery_default_manifest;
        size_t len = sm->text ? sm->len : strlen(orrery_default_manifest);
        if (n > 0 && !sm->text) {
            failf(r, "peer %s: manifest %s was not loaded", sc->peers[n - 1].name, sm->path);
            free_disks(disks, nnodes);
            return 0;
        }
        if (manifest_parse(text, len, orrery_programs, "init", &man[n], err, sizeof err) != 0) {
            failf(r, "%s manifest: %s", n == 0 ? "the scenario's" : sc->peers[n - 1].name, err);
            free_disks(disks, nnodes);
            return 0;
        }
        memset(&w[n], 0, sizeof(w[n]));
        w[n].hs = &hs;
        w[n].tee = n == 0 ? o->tee : NULL;
        w[n].man = &man[n];
        w[n].sc = sc;
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
            .net = n > 0 || sc->net || sc->npeers > 0,
            .disk = disks[n],
        };
    }
    int rc = nnodes == 1 ? sim_boot(&cfg[0]) : sim_boot_nodes(cfg, nnodes);
    if (rc != 0) {
        sim_teardown();
        free_disks(disks, nnodes);
        return rc;
    }
    r->ncuts = sc->ncuts;
    for (size_t i = 0; i < sc->ncuts && rc == 0; i++) {
        r->cut_ns[i] = cut_time(&sc->cuts[i], seed, i);
        rc = sim_node_power_cut_at(0, r->cut_ns[i], sc->cuts[i].reboot);
    }
    if (cfg[0].net) {
        sim_net_config_t nc = {
            .latency_ns = sc->net_latency_ns, .tap = o->frame_tap, .tap_self = o->frame_tap_self};
        sim_net_configure(&nc);
    }
    for (size_t i = 0; i < sc->npartitions && rc == 0; i++)
        rc = sim_net_partition(0, 1 + sc->partitions[i].peer, sc->partitions[i].start,
                               sc->partitions[i].end);
    size_t nfed = 0;
    for (size_t i = 0; i < sc->nsteps && rc == 0; i++) {
        if (sc->steps[i].kind == SCN_AT) {
            rc = sim_console_at(sc->steps[i].t, sc->steps[i].text);
            nfed++;
        }
    }
    memset(kill_at_missed, 0, sizeof kill_at_missed);
    for (size_t i = 0; i < sc->nkill_at && rc == 0; i++) {
        sim_node_enter(sc->kill_at[i].node); /* the action runs on the node it was added on */
        rc = sim_at(sc->kill_at[i].t, kill_at_now, (void *)sc, i);
        sim_node_enter(0);
    }
    if (rc == 0 && sc->host_crash != SCN_HOST_CRASH_NONE && seed == sc->host_crash_seed)
        rc = sim_at(0, host_crash, NULL, sc->host_crash);
    sim_faults_t f = sc->fault_cfg;
    f.enabled = o->faults;
    f.duration_ns = sc->duration_ns;
    if (rc == 0)
        rc = sim_faults_install(&f);
    if (rc != 0) {
        sim_faults_remove();
        sim_teardown();
        free_disks(disks, nnodes);
        return rc;
    }

    uint64_t max_events = sc->max_events ? sc->max_events : 10000000;
    uint64_t steps = 0;
    bool stuck = false;
    while (r->ok) {
        if (!sim_step()) {
            stuck = !sim_shutdown_status(NULL);
            break;
        }
        /* the node that just ran (its kernel is the current one, unless a power cut took it) */
        if (++steps % AUDIT_EVERY == 0 && sim_node_booted(sim_node_current()) &&
            k_audit(NULL, 0, NULL, err, sizeof err) != 0)
            failf(r, "kernel audit after %llu steps: %s", (unsigned long long)steps, err);
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
    if (stuck && sim_pending_actions() == 0)
        failf(r, "the system went idle for good without shutting down");
    else if (stuck)
        failf(r, "the run stopped with %zu input line(s) never delivered", sim_pending_actions());

    /* Every kill-at hit a live task (a kill that hit nothing tested nothing). */
    for (size_t i = 0; i < sc->nkill_at; i++)
        if (kill_at_missed[i] || sc->kill_at[i].t > sim_now())
            failf(r, "kill-at (scenario line %d): %s%s%s%s at %llu ms", sc->kill_at[i].line,
                  sc->kill_at[i].t > sim_now() ? "the run ended before killing "
                                               : "no live task of ",
                  sc->kill_at[i].node ? sc->peers[sc->kill_at[i].node - 1].name : "",
                  sc->kill_at[i].node ? ":" : "", sc->kill_at[i].program,
                  (unsigned long long)(sc->kill_at[i].t / 1000000));
    /* Every power cut came (a run that ended first proved nothing about the disk). */
    sim_blk_stats(&r->blk);
    for (size_t i = r->blk.power_cuts; i < sc->ncuts; i++)
        failf(r, "power cut (scenario line %d) due at %.6f s never came: the run ended at %.6f s",
              sc->cuts[i].line, (double)r->cut_ns[i] / 1e9, (double)sim_now() / 1e9);

    /* Invariants at the end, on every node, while the tasks still exist (a node a power cut
     * left down has none: its kernel's leaks are counted below). */
    for (size_t n = nnodes; n-- > 0;) {
        char who[48] = "";
        if (n > 0)
            snprintf(who, sizeof who, "peer %s: ", sc->peers[n - 1].name);
        if (!sim_node_booted(n))
            continue;
        sim_node_enter(n);
        check_node(sc, &w[n], &man[n], who, r);
    }
    if (sc->has_exit && shut_down && r->status != sc->exit_status)
        failf(r, "shutdown status %d, want %d", r->status, sc->exit_status);
    if (sc->has_exit && !shut_down)
        failf(r, "no shutdown (want status %d)", sc->exit_status);

    size_t out_len;
    const char *out = sim_console_output(&out_len);
    int shell = prog_index(&w[0], "shell");
    /* a power cut kills the shell with its kernel: the lines it held die with it */
    bool shell_died = shell >= 0 && (w[0].exits_told[shell] > 0 || r->blk.power_cuts > 0);
    check_output(sc, out, nfed, shell_died, shut_down, r);
    hs.hash = fnv(hs.hash, out, out_len);
    if (o->keep_output) {
        r->output = malloc(out_len + 1);
        if (r->output) {
            memcpy(r->output, out, out_len + 1);
            r->output_len = out_len;
        }
    }

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
    if (cfg[0].net)
        sim_net_stats(&r->net);
    sim_faults_remove();
    r->leaks = sim_teardown();
    for (size_t n = 0; n < nnodes; n++) {
        long l = sim_node_leaks(n);
        if (l != 0)
            failf(r, "memory leak: %ld kernel allocation(s) live after teardown%s%s", l,
                  n ? " of peer " : "", n ? sc->peers[n - 1].name : "");
    }
    if (disk) {
        sim_disk_flush(disk); /* as a clean power-off and sim_disk_save leave it */
        if (o->keep_records)  /* the disk's bytes are part of what must be deterministic */
            hs.hash = fnv(hs.hash, sim_disk_medium(disk), sim_disk_sectors(disk) * 512);
        char serr[512];
        if (o->save_disk && sim_disk_save(disk, o->save_disk, serr, sizeof serr) != 0)
            failf(r, "cannot save the disk: %s", serr);
    }
    for (size_t n = 1; n < nnodes; n++)
        if (disks[n]) { /* a peer's disk: as deterministic as the scenario node's */
            sim_disk_flush(disks[n]);
            if (o->keep_records)
                hs.hash = fnv(hs.hash, sim_disk_medium(disks[n]), sim_disk_sectors(disks[n]) * 512);
        }
    free_disks(disks, nnodes);
    r->hash = hs.hash;
    r->records = hs.records;
    r->recs = hs.recs;
    r->nrecs = hs.nrecs;
    if (hs.oom)
        failf(r, "out of memory keeping trace records");
    return 0;
}

/* Read one manifest file and check it; 0 or -1 with err. */
static int load_manifest(scn_manifest_t *m, const char *dir, char *err, size_t errlen)
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
    int line = manifest_parse(buf, n, orrery_programs, "init", &man, why, sizeof why);
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
    if (sc->manifest.path[0] && load_manifest(&sc->manifest, dir, err, errlen) != 0)
        return sc->manifest.line;
    for (size_t i = 0; i < sc->npeers; i++)
        if (load_manifest(&sc->peers[i].manifest, dir, err, errlen) != 0)
            return sc->peers[i].manifest.line;
    return 0;
}

void sim_result_free(sim_result_t *r)
{
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
