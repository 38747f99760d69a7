/* replay.c — `orrery replay`: load one task's recorded stream, replay it on sim, report the first
 * divergence. */
#include <trace/decode.h>
#include <trace/pair.h>
#include <trace/reader.h>
#include <trace/recorder.h>
#include <sim/replay.h>

#include <manifest.h>

#include <os/os.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- small containers ------------------------------------------------------------------------ */

int rp_push(rp_vec *vec, const hal_trace_rec_t *r, uint32_t h, uint32_t h2)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        rp_ev *v = realloc(vec->v, cap * sizeof(*v));
        if (!v)
            return -1;
        vec->v = v;
        vec->cap = cap;
    }
    rp_ev *e = &vec->v[vec->n];
    memset(e, 0, sizeof(*e));
    e->r = *r;
    e->h = h;
    e->h2 = h2;
    if (r->len && r->data) {
        if (!(e->data = malloc(r->len)))
            return -1;
        memcpy(e->data, r->data, r->len);
    }
    e->r.data = e->data;
    vec->n++;
    return 0;
}

void rp_vec_free(rp_vec *vec)
{
    for (size_t i = 0; i < vec->n; i++)
        free(vec->v[i].data);
    free(vec->v);
    memset(vec, 0, sizeof(*vec));
}

void rp_map_set(rp_map *m, uint32_t key, uint64_t val)
{
    if (key >= m->cap) {
        size_t cap = m->cap ? m->cap : 256;
        while (cap <= key)
            cap *= 2;
        uint64_t *v = realloc(m->v, cap * sizeof(*v));
        if (!v)
            return;
        memset(v + m->cap, 0, (cap - m->cap) * sizeof(*v));
        m->v = v;
        m->cap = cap;
    }
    m->v[key] = val;
}

uint64_t rp_map_get(const rp_map *m, uint32_t key)
{
    return key < m->cap ? m->v[key] : 0;
}

void rp_map_free(rp_map *m)
{
    free(m->v);
    memset(m, 0, sizeof(*m));
}

uint32_t rp_obj_kind(const hal_trace_rec_t *r)
{
    switch (r->kind) {
    case HAL_TR_TIMER_SET:
    case HAL_TR_TIMER_CANCEL:
    case HAL_TR_TIMER_FIRE:
        return HAL_TRACE_OBJ_TIMER;
    case HAL_TR_TASK_EXIT_EVENT:
        return HAL_TRACE_OBJ_TASK;
    case HAL_TR_DEV_POST:
    case HAL_TR_DEV_EVENT:
    case HAL_TR_DEV_WRITE:
        return HAL_TRACE_OBJ_DEVICE;
    case HAL_TR_CLOSE:
    case HAL_TR_HANDLE:
        return r->type & 0xff;
    default:
        return HAL_TRACE_OBJ_CHAN;
    }
}

bool rp_is_input(const rp_ev *e)
{
    switch (e->r.kind) {
    case HAL_TR_DELIVER:
    case HAL_TR_PEER_CLOSED:
    case HAL_TR_WRITABLE:
    case HAL_TR_TIMER_FIRE:
    case HAL_TR_DEV_EVENT:
    case HAL_TR_TASK_EXIT_EVENT:
        return true;
    case HAL_TR_EXIT:
        return e->r.result == OS_EXIT_KILLED; /* killed by its supervisor or at shutdown */
    default:
        return false;
    }
}

/* ---- the recording -------------------------------------------------------------------------- */

static void rec_free(rp_recording *rec)
{
    rp_vec_free(&rec->events);
    rp_vec_free(&rec->in.random);
    rp_vec_free(&rec->in.lists);
    free(rec->in.clock);
    free(rec->in.sends);
    free(rec->in.spawn_ids);
    free(rec->arg);
}

static int grow(void *pp, size_t n, size_t size)
{
    void **p = pp;
    if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) { /* 16, then at each power of two */
        void *q = realloc(*p, (n ? n * 2 : 16) * size);
        if (!q)
            return -1;
        *p = q;
    }
    return 0;
}

/* Find the task: the first SPAWN of a program with this name, or this recorded id. */
static int find_task(trace_db *db, const char *want, rp_recording *rec, char *err, size_t errlen)
{
    trace_filter f = {.kind = HAL_TR_SPAWN};
    trace_iter *it;
    hal_trace_rec_t r;
    char *end;
    unsigned long id = strtoul(want, &end, 10);
    int rc;

    if (*end)
        id = 0;
    if (trace_iter_open(db, &f, &it) != 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    while ((rc = trace_iter_next(it, &r)) == 1) {
        size_t n = r.len < sizeof(rec->name) - 1 ? r.len : sizeof(rec->name) - 1;
        if ((id && r.task == id) ||
            (!id && r.len == strlen(want) && memcmp(r.data, want, r.len) == 0)) {
            memcpy(rec->name, r.data, n);
            rec->name[n] = '\0';
            rec->task = r.task;
            rec->privileged = r.arg == 0;
            rec->parent = r.arg;
            break;
        }
    }
    trace_iter_close(it);
    if (rc < 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    if (!rec->task) {
        snprintf(err, errlen, "the trace has no task '%s'", want);
        return -1;
    }
    return 0;
}

/*
 * The spawn argument of a task init started. A SPAWN record does not carry it, but init gives
 * a program its manifest line's arg= (the same on every start, and on a `spawn` request), and
 * the trace keeps the manifest: parse it as init did. A program not in the manifest, or a task
 * another task spawned, gets none (as before). A manifest that does not parse is the trace's
 * fault: init would not have started anything from it.
 */
static int manifest_arg(trace_db *db, rp_recording *rec, char *err, size_t errlen)
{
    trace_filter f = {.kind = HAL_TR_SPAWN};
    trace_iter *it;
    hal_trace_rec_t r;
    char root[OS_NAME_MAX] = "";
    int rc;
    if (trace_iter_open(db, &f, &it) != 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    while ((rc = trace_iter_next(it, &r)) == 1)
        if (r.task == rec->parent && r.arg == 0 && r.len < sizeof root) {
            memcpy(root, r.data, r.len); /* the parent is the kernel's first task: init */
            root[r.len] = '\0';
            break;
        }
    trace_iter_close(it);
    char *text = NULL;
    size_t len = 0;
    if (rc < 0 || (root[0] && trace_db_manifest(db, &text, &len) != 0)) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    if (!root[0] || !text || !len) {
        free(text);
        return 0;
    }
    manifest_t *m = malloc(sizeof *m);
    char why[160];
    int line = m ? manifest_parse(text, len, NULL, root, m, why, sizeof why) : -1;
    free(text);
    if (line != 0) {
        if (m)
            snprintf(err, errlen, "the trace's manifest does not parse (line %d: %s)", line, why);
        else
            snprintf(err, errlen, "out of memory");
        free(m);
        return -1;
    }
    const manifest_program_t *p = manifest_find(m, rec->name);
    if (p && p->arg_len) {
        rec->arg = malloc(p->arg_len);
        if (!rec->arg) {
            free(m);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(rec->arg, p->arg, p->arg_len);
        rec->arg_len = p->arg_len;
    }
    free(m);
    return 0;
}

static int load(trace_db *db, const char *want, rp_recording *rec, char *err, size_t errlen)
{
    trace_filter f = {0};
    trace_iter *it;
    hal_trace_rec_t r;
    trace_ifmap *ifm;
    rp_map hv = {0};  /* object id -> the task's handle value */
    uint8_t kinds[8]; /* kinds of the task's latest installs, for a DELIVER's carried handles */
    size_t nk = 0;
    bool started = false, any_handle = false;
    int rc;

    if (find_task(db, want, rec, err, errlen) != 0)
        return -1;
    if (trace_iter_open(db, &f, &it) != 0 || !(ifm = trace_ifmap_new())) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    while ((rc = trace_iter_next(it, &r)) == 1) {
        uint32_t iface = trace_ifmap_resolve(ifm, &r);
        if (r.kind == HAL_TR_HANDLE) {
            any_handle = true;
            if (r.task != rec->task)
                continue;
            rp_map_set(&hv, RP_KEY(r.chan, rp_obj_kind(&r)), (uint32_t)r.arg);
            if (!started && rec->ninitial < 8)
                rec->initial[rec->ninitial++] = (uint8_t)(r.type & 0xff);
            kinds[nk++ % 8] = (uint8_t)(r.type & 0xff);
            continue;
        }
        /* init spawned again: the node lost power and booted anew (a power cut or a crash
         * in a simulated run). Task ids start over with the new kernel, so what follows is
         * another life of the node; the recording of this task's life ends here. */
        if (started && r.kind == HAL_TR_SPAWN && r.task == 1)
            break;
        bool mine = r.task == rec->task && r.kind != HAL_TR_SPAWN;
        bool child = r.kind == HAL_TR_SPAWN && r.arg == rec->task && r.task != rec->task;
        if (!mine && !child)
            continue;
        uint32_t h = r.chan ? (uint32_t)rp_map_get(&hv, RP_KEY(r.chan, rp_obj_kind(&r))) : 0;
        uint32_t h2 = r.kind == HAL_TR_CHAN_CREATE
                          ? (uint32_t)rp_map_get(&hv, RP_KEY(r.peer, HAL_TRACE_OBJ_CHAN))
                          : 0;
        if (r.kind == HAL_TR_START)
            started = true;
        if ((r.kind == HAL_TR_DEV_EVENT || r.kind == HAL_TR_DEV_WRITE) && !rec->device[0]) {
            /* traces from before DEVICE records were written name no device: net0 then */
            const char *dev = trace_db_device_name(db, r.chan);
            snprintf(rec->device, sizeof rec->device, "%s", dev ? dev : "net0");
        }
        if (rp_push(&rec->events, &r, h, h2) != 0)
            goto nomem;
        rp_ev *e = &rec->events.v[rec->events.n - 1];
        e->iface = iface;
        if (r.kind == HAL_TR_DELIVER)
            for (uint32_t i = 0; i < r.nhandles && i < 4 && i < nk; i++)
                e->carried[i] = kinds[(nk - r.nhandles + i) % 8];
        nk = 0;
        switch (r.kind) {
        case HAL_TR_CLOCK_READ:
            if (grow(&rec->in.clock, rec->in.nclock, sizeof(uint64_t)) != 0)
                goto nomem;
            rec->in.clock[rec->in.nclock++] = r.arg;
            break;
        case HAL_TR_RANDOM:
            if (rp_push(&rec->in.random, &r, 0, 0) != 0)
                goto nomem;
            break;
        case HAL_TR_LIST:
            if (rp_push(&rec->in.lists, &r, 0, 0) != 0)
                goto nomem;
            break;
        case HAL_TR_SEND:
            if (grow(&rec->in.sends, rec->in.nsends, sizeof(int)) != 0)
                goto nomem;
            rec->in.sends[rec->in.nsends++] = r.result;
            break;
        case HAL_TR_SPAWN:
            if (grow(&rec->in.spawn_ids, rec->in.nspawn, sizeof(uint32_t)) != 0)
                goto nomem;
            rec->in.spawn_ids[rec->in.nspawn++] = r.task;
            break;
        default:
            break;
        }
    }
    trace_iter_close(it);
    trace_ifmap_free(ifm);
    rp_map_free(&hv);
    if (rc < 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    if (!any_handle) {
        snprintf(err, errlen,
                 "the trace has no HANDLE records (schema 1?): record it again with "
                 "this orrery to replay it");
        return -1;
    }
    if (rec->privileged && trace_db_manifest(db, &rec->arg, &rec->arg_len) != 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    if (!rec->privileged && manifest_arg(db, rec, err, errlen) != 0)
        return -1;
    return 0;
nomem:
    trace_iter_close(it);
    trace_ifmap_free(ifm);
    rp_map_free(&hv);
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* ---- comparing and printing -------------------------------------------------------------------
 */

static const char *errname(int rc)
{
    return rc ? os_strerror(rc) : "ok";
}

/* One event, decoded: "SEND h=0x101 echo.reply {id: 1, text: \"hi\"} -> ok". */
static void format(const rp_ev *e, uint32_t iface, char *buf, size_t len)
{
    const hal_trace_rec_t *r = &e->r;
    const char *kind = trace_kind_name(r->kind);
    char label[96], body[1024];
    size_t n = 0;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < len)                                                                               \
            n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__);                                  \
    } while (0)
    ADD("%s", kind ? kind : "?");
    if (e->h)
        ADD(" handle %#x", e->h);
    switch (r->kind) {
    case HAL_TR_SEND:
    case HAL_TR_DELIVER:
        trace_decode_payload(iface, r->type, r->data, r->len, r->nhandles, body, sizeof(body));
        ADD(" %s %s", trace_msg_label(iface, r->type, label, sizeof(label)), body);
        if (r->nhandles)
            ADD(" +%u handle%s", r->nhandles, r->nhandles == 1 ? "" : "s");
        ADD(" -> %s", errname(r->result));
        break;
    case HAL_TR_DEV_EVENT:
    case HAL_TR_DEV_WRITE:
        trace_hex(r->data, r->len, 64, body, sizeof(body));
        ADD(" code %u %s", r->type, body);
        if (r->kind == HAL_TR_DEV_WRITE)
            ADD(" -> %s", errname(r->result));
        break;
    case HAL_TR_CHAN_CREATE:
        ADD(" and %#x", e->h2);
        break;
    case HAL_TR_CLOSE:
        ADD(" (object kind %u)", r->type);
        break;
    case HAL_TR_TIMER_SET:
    case HAL_TR_TIMER_FIRE:
        ADD(" deadline %llu ns", (unsigned long long)r->arg);
        break;
    case HAL_TR_CLOCK_READ:
        ADD(" = %llu", (unsigned long long)r->arg);
        break;
    case HAL_TR_RANDOM:
        ADD(" %u bytes", r->len);
        break;
    case HAL_TR_SPAWN:
        ADD(" %.*s with %u handle%s", (int)r->len, r->data ? (const char *)r->data : "",
            r->nhandles, r->nhandles == 1 ? "" : "s");
        break;
    case HAL_TR_EXIT:
    case HAL_TR_TASK_EXIT_EVENT:
        ADD(" status %d", r->result);
        break;
    case HAL_TR_LIST:
        ADD(" %s -> %d", r->type == HAL_TRACE_LIST_TASKS ? "tasks" : "channels", r->result);
        break;
    default:
        break;
    }
#undef ADD
}

/* Which fields differ ("" if none). */
static void differ(const rp_ev *a, const rp_ev *b, char *buf, size_t len)
{
    const hal_trace_rec_t *x = &a->r, *y = &b->r;
    size_t n = 0;
    buf[0] = '\0';
#define D(cond, name)                                                                              \
    do {                                                                                           \
        if ((cond) && n < len)                                                                     \
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name);                  \
    } while (0)
    if (x->kind != y->kind) {
        snprintf(buf, len, "kind");
        return;
    }
    switch (x->kind) {
    case HAL_TR_SEND:
    case HAL_TR_DELIVER:
    case HAL_TR_DEV_EVENT:
    case HAL_TR_DEV_WRITE:
        D(a->h != b->h, "handle");
        D(x->type != y->type,
          x->kind == HAL_TR_SEND || x->kind == HAL_TR_DELIVER ? "message type" : "code");
        D(x->len != y->len || (x->len && memcmp(x->data, y->data, x->len) != 0), "payload");
        D(x->nhandles != y->nhandles, "handles carried");
        D(x->result != y->result, "result");
        break;
    case HAL_TR_CLOSE:
        D(a->h != b->h, "handle");
        D(x->type != y->type, "object kind");
        break;
    case HAL_TR_PEER_CLOSED:
    case HAL_TR_WRITABLE:
    case HAL_TR_TIMER_CANCEL:
    case HAL_TR_TIMER_FIRE:
        D(a->h != b->h, "handle");
        break;
    case HAL_TR_TIMER_SET:
        D(a->h != b->h, "handle");
        D(x->arg != y->arg, "deadline");
        break;
    case HAL_TR_CHAN_CREATE:
        D(a->h != b->h || a->h2 != b->h2, "handles");
        break;
    case HAL_TR_RANDOM:
        D(x->len != y->len, "length");
        break;
    case HAL_TR_SPAWN:
        D(x->len != y->len || (x->len && memcmp(x->data, y->data, x->len) != 0), "program");
        D(x->nhandles != y->nhandles, "handles given");
        break;
    case HAL_TR_EXIT:
    case HAL_TR_TASK_EXIT_EVENT:
        D(a->h != b->h, "handle");
        D(x->result != y->result, "status");
        break;
    case HAL_TR_LIST:
        D(x->type != y->type, "list");
        break;
    default:
        break;
    }
#undef D
}

static int report(FILE *out, const rp_recording *rec, size_t i, const rp_ev *want, const rp_ev *got,
                  const char *what)
{
    char a[2048], b[2048], d[128];
    uint32_t iface = want ? want->iface : 0;

    fprintf(out, "replay %s: divergence at event %zu of %zu (trace seq %llu)\n", rec->name, i + 1,
            rec->events.n, want ? (unsigned long long)want->r.seq : 0ULL);
    if (want) {
        format(want, iface, a, sizeof(a));
        fprintf(out, "  expected: %s\n", a);
    } else {
        fprintf(out, "  expected: nothing more (the recording ends)\n");
    }
    if (got) {
        format(got, iface, b, sizeof(b));
        fprintf(out, "  actual:   %s\n", b);
        if (want) {
            differ(want, got, d, sizeof(d));
            if (d[0])
                fprintf(out, "  differs:  %s\n", d);
        }
    } else {
        fprintf(out, "  actual:   %s\n", what);
    }
    fprintf(out, "  %zu event%s matched before it\n", i, i == 1 ? "" : "s");
    return 1;
}

/*
 * A trace with several nodes holds several kernels, each with its own task ids: the task is
 * looked for on the node named (a trace with one node needs no name).
 */
static int select_node(trace_db *db, const char *node, char *err, size_t errlen)
{
    char list[TRACE_NODES_MAX * 34];
    size_t n = trace_db_node_count(db);

    if (!node && n > 1) {
        trace_db_node_list(db, list, sizeof(list));
        snprintf(err, errlen, "the trace holds %zu nodes (%s): name the task's with --node NAME", n,
                 list);
        return -1;
    }
    if (!node && n == 1) {
        trace_db_select_node(db, 0);
        return 0;
    }
    return trace_db_select_node_name(db, node, err, errlen);
}

int trace_replay(const trace_replay_opts *o, char *err, size_t errlen)
{
    FILE *out = o->out ? o->out : stdout;
    rp_recording rec;
    trace_db *db;
    rp_run *run;
    size_t i = 0;
    int rc = 0;
    char d[128];

    memset(&rec, 0, sizeof(rec));
    if (trace_db_open(o->path, &db, err, errlen) != 0)
        return 2;
    if (select_node(db, o->node, err, errlen) != 0) {
        trace_db_close(db);
        return 2;
    }
    if (load(db, o->task, &rec, err, errlen) != 0) {
        trace_db_close(db);
        rec_free(&rec);
        return 2;
    }
    if (rec.events.n == 0) {
        snprintf(err, errlen, "the trace has no events of task '%s'", o->task);
        trace_db_close(db);
        rec_free(&rec);
        return 2;
    }
    if (rp_run_start(&run, &rec, err, errlen) != 0) {
        trace_db_close(db);
        rec_free(&rec);
        return 2;
    }
    for (;;) {
        const rp_vec *got = rp_run_events(run);
        for (; i < got->n && rc == 0; i++) {
            if (i >= rec.events.n) {
                rc = report(out, &rec, i, NULL, &got->v[i], NULL);
                break;
            }
            differ(&rec.events.v[i], &got->v[i], d, sizeof(d));
            if (d[0]) {
                rc = report(out, &rec, i, &rec.events.v[i], &got->v[i], NULL);
                break;
            }
            if (o->verbose) {
                char a[2048];
                format(&rec.events.v[i], rec.events.v[i].iface, a, sizeof(a));
                fprintf(out, "  %5zu ok  %s\n", i + 1, a);
            }
        }
        if (rc || i >= rec.events.n)
            break;
        const rp_ev *next = &rec.events.v[i];
        if (!rp_is_input(next)) {
            rc = report(out, &rec, i, next, NULL,
                        "nothing (the task did not do it; it waits for input)");
            break;
        }
        if (rp_run_inject(run, next, d, sizeof(d)) != 0) {
            snprintf(err, errlen, "cannot replay event %zu (trace seq %llu): %s", i + 1,
                     (unsigned long long)next->r.seq, d);
            rc = 2;
            break;
        }
        if (rp_run_events(run)->n == i) {
            rc = report(out, &rec, i, next, NULL, "nothing (the task did not receive it)");
            break;
        }
    }
    if (rc == 0)
        fprintf(out, "replay %s: %zu events matched (task %u of %s)\n", rec.name, rec.events.n,
                rec.task, o->path);
    if (o->verbose) {
        size_t len;
        const char *con = rp_run_console(run, &len);
        if (len)
            fprintf(out, "console output of the replay:\n%.*s", (int)len, con);
    }
    rp_run_stop(run);
    trace_db_close(db);
    rec_free(&rec);
    return rc;
}
