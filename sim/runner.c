/* runner.c — one seed of a scenario: boot the image on sim, feed it, inject faults, check it. */
#include <sim/runner.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <image.h>
#include <k/audit.h>
#include <k/kernel.h>
#include <manifest.h>
#include <sim/sim.h>

enum {
    TASKS_MAX = 1024,  /* task ids remembered by the checker */
    AUDIT_EVERY = 64,  /* steps between kernel audits */
};

/* What the checker learns from the trace, record by record. */
typedef struct watch {
    uint64_t hash;
    uint64_t records;
    sim_rec_sum_t *recs;
    size_t nrecs, cap;
    bool keep, oom;
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
    uint64_t h = w->hash;
    h = fnv(h, &r->seq, sizeof r->seq);
    h = fnv(h, &r->time_ns, sizeof r->time_ns);
    h = fnv(h, &r->arg, sizeof r->arg);
    uint32_t fields[9] = {r->kind, r->task,     r->chan, r->peer, r->type, (uint32_t)r->result,
                          r->len,  r->nhandles, r->iface};
    h = fnv(h, fields, sizeof fields);
    if (r->len && r->data)
        h = fnv(h, r->data, r->len);
    w->hash = h;
    w->records++;
    if (w->keep && !w->oom) {
        if (w->nrecs == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 4096;
            sim_rec_sum_t *p = realloc(w->recs, cap * sizeof(*p));
            if (!p)
                w->oom = true;
            else {
                w->recs = p;
                w->cap = cap;
            }
        }
        if (!w->oom)
            w->recs[w->nrecs++] = (sim_rec_sum_t){r->seq, r->kind, r->task, h};
    }
    if (w->tee)
        w->tee->record(w->tee->self, r);

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
        if ((r->result == OS_EXIT_PANIC || r->result == OS_EXIT_FAULT) && !panic_allowed(w->sc, name)) {
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

int sim_run_scenario(const sim_scenario_t *sc, uint64_t seed, const sim_run_opts_t *o,
                     sim_result_t *r)
{
    static watch_t w; /* large: not on the stack */
    static manifest_t man;
    char err[160];
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->status = -1;
    if (manifest_parse(orrery_default_manifest, strlen(orrery_default_manifest), orrery_programs,
                       "init", &man, err, sizeof err) != 0) {
        failf(r, "default manifest: %s", err);
        return 0;
    }
    memset(&w, 0, sizeof(w));
    w.hash = 0xcbf29ce484222325ull;
    w.keep = o->keep_records;
    w.tee = o->tee;
    w.man = &man;
    w.sc = sc;
    hal_trace_sink_t sink = {.self = &w, .record = watch_record, .flush = watch_flush};

    sim_config_t cfg = {
        .programs = orrery_programs,
        .init_arg = orrery_default_manifest,
        .init_arg_len = strlen(orrery_default_manifest),
        .seed = seed,
        .trace = &sink,
        .event_cost_max_ns = 2000, /* each event takes 1..2000 ns of virtual time */
        .console_out = o->console_out,
        .console_out_self = o->console_out_self,
    };
    int rc = sim_boot(&cfg);
    if (rc != 0) {
        sim_teardown();
        return rc;
    }
    size_t nfed = 0;
    for (size_t i = 0; i < sc->nsteps && rc == 0; i++) {
        if (sc->steps[i].kind == SCN_AT) {
            rc = sim_console_at(sc->steps[i].t, sc->steps[i].text);
            nfed++;
        }
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
        if (++steps % AUDIT_EVERY == 0 && k_audit(NULL, 0, NULL, err, sizeof err) != 0)
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

    /* Invariants at the end, while the tasks still exist. */
    k_audit_task_t tasks[64];
    size_t ntasks = 0;
    if (k_audit(tasks, 64, &ntasks, err, sizeof err) != 0)
        failf(r, "kernel audit at the end: %s", err);
    uint32_t max_handles = sc->max_handles ? sc->max_handles : 64;
    for (size_t i = 0; i < ntasks && i < 64; i++)
        if (tasks[i].handles > max_handles)
            failf(r, "handle leak: %s (task %u) holds %u handles (limit %u)", tasks[i].name,
                  tasks[i].id, tasks[i].handles, max_handles);
    if (w.too_many_tasks)
        failf(r, "more than %d tasks spawned: the checker follows task ids below %d", TASKS_MAX - 1,
              TASKS_MAX);
    if (w.panics)
        failf(r, "panic that was not injected: %s exited with %d (%u in all)", w.panic_task,
              w.panic_status, w.panics);
    /* Init restarts within policy: each exit init was told of is followed by the restart the
     * manifest asks for, and no program is started more often than its max-restarts allow. */
    for (size_t i = 0; i < man.count; i++) {
        const manifest_program_t *p = &man.programs[i];
        uint32_t told = w.exits_told[i], expect_spawns = 1;
        for (uint32_t k = 0; k < told && expect_spawns - 1 < p->max_restarts; k++) {
            if (p->restart == MANIFEST_RESTART_NEVER)
                break;
            if (p->restart == MANIFEST_RESTART_ON_FAILURE && w.clean_exits_told[i] > 0)
                break; /* a clean exit ends the on-failure chain (good enough for scenarios) */
            expect_spawns++;
        }
        if (w.spawns[i] != expect_spawns)
            failf(r,
                  "restart policy: %s (restart=%s, max-restarts=%u) was told ended %u time(s) "
                  "and started %u time(s), want %u",
                  p->name, manifest_restart_name(p->restart), p->max_restarts, told, w.spawns[i],
                  expect_spawns);
    }
    if (sc->has_exit && shut_down && r->status != sc->exit_status)
        failf(r, "shutdown status %d, want %d", r->status, sc->exit_status);
    if (sc->has_exit && !shut_down)
        failf(r, "no shutdown (want status %d)", sc->exit_status);

    size_t out_len;
    const char *out = sim_console_output(&out_len);
    int shell = prog_index(&w, "shell");
    bool shell_died = shell >= 0 && w.exits_told[shell] > 0;
    check_output(sc, out, nfed, shell_died, shut_down, r);
    w.hash = fnv(w.hash, out, out_len);
    if (o->keep_output) {
        r->output = malloc(out_len + 1);
        if (r->output) {
            memcpy(r->output, out, out_len + 1);
            r->output_len = out_len;
        }
    }

    k_stats_t ks;
    k_get_stats(&ks);
    r->events = ks.events;
    r->messages = ks.messages;
    r->vtime_ns = sim_now();
    sim_faults_stats(&r->injected);
    sim_faults_remove();
    r->leaks = sim_teardown();
    if (r->leaks != 0)
        failf(r, "memory leak: %ld kernel allocation(s) live after teardown", r->leaks);
    r->hash = w.hash;
    r->records = w.records;
    r->recs = w.recs;
    r->nrecs = w.nrecs;
    if (w.oom)
        failf(r, "out of memory keeping trace records");
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
