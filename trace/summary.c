/* summary.c — `orrery trace summary`: messages, bytes and send->deliver latency per task and
 * interface. */
#include <trace/pair.h>
#include <trace/recorder.h>
#include <trace/tools.h>

#include <stdlib.h>
#include <string.h>

#define MAX_TASK_ID (1u << 20) /* ids past this (a garbled import) are not tabulated per task */

typedef struct lat_vec {
    uint64_t *v;
    uint64_t n, cap;
} lat_vec;

typedef struct acc {
    trace_summary_row row;
    lat_vec lat;
    int seen;
} acc;

static int lat_push(lat_vec *l, uint64_t x)
{
    if (l->n == l->cap) {
        uint64_t ncap = l->cap ? 2 * l->cap : 64;
        uint64_t *nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = x;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void lat_finish(lat_vec *l, trace_latency *out)
{
    if (l->n)
        qsort(l->v, l->n, sizeof(*l->v), cmp_u64); /* qsort(NULL, 0) is undefined */
    out->n = l->n;
    out->p50 = trace_percentile(l->v, l->n, 50);
    out->p90 = trace_percentile(l->v, l->n, 90);
    out->p99 = trace_percentile(l->v, l->n, 99);
    out->max = l->n ? l->v[l->n - 1] : 0;
    free(l->v);
    memset(l, 0, sizeof(*l));
}

typedef struct accs {
    acc *v;
    size_t n;
} accs;

/* Tasks: indexed by id. */
static acc *task_acc(accs *a, uint32_t id)
{
    if (id >= MAX_TASK_ID)
        return NULL;
    if (id >= a->n) {
        size_t nn = a->n ? a->n : 16;
        while (nn <= id)
            nn *= 2;
        acc *nv = realloc(a->v, nn * sizeof(*nv));
        if (!nv)
            return NULL;
        memset(nv + a->n, 0, (nn - a->n) * sizeof(*nv));
        a->v = nv;
        a->n = nn;
    }
    a->v[id].seen = 1;
    a->v[id].row.id = id;
    return &a->v[id];
}

/* Interfaces: few, searched. */
static acc *iface_acc(accs *a, uint32_t id)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].row.id == id)
            return &a->v[i];
    acc *nv = realloc(a->v, (a->n + 1) * sizeof(*nv));
    if (!nv)
        return NULL;
    a->v = nv;
    memset(&a->v[a->n], 0, sizeof(acc));
    a->v[a->n].row.id = id;
    a->v[a->n].seen = 1;
    return &a->v[a->n++];
}

static void collect(accs *a, trace_summary_row **rows, size_t *n)
{
    *n = 0;
    *rows = calloc(a->n ? a->n : 1, sizeof(**rows));
    for (size_t i = 0; i < a->n; i++) {
        if (!a->v[i].seen) {
            free(a->v[i].lat.v);
            continue;
        }
        lat_finish(&a->v[i].lat, &a->v[i].row.latency);
        if (*rows)
            (*rows)[(*n)++] = a->v[i].row;
    }
    free(a->v);
}

int trace_summary_compute(trace_db *db, trace_summary *s)
{
    trace_pairer *pairer = trace_pairer_new();
    trace_ifmap *ifmap = trace_ifmap_new();
    accs tasks = {0}, ifaces = {0};
    lat_vec all = {0};
    trace_iter *it = NULL;
    hal_trace_rec_t r;
    trace_pair pr;
    int rc = -1;

    memset(s, 0, sizeof(*s));
    if (!pairer || !ifmap || trace_db_run(db, &s->run) != 0 || trace_iter_open(db, NULL, &it) != 0)
        goto out;
    while ((rc = trace_iter_next(it, &r)) == 1) {
        uint32_t iface = trace_ifmap_resolve(ifmap, &r);
        acc *t, *f;

        if (!s->events++)
            s->first_ns = r.time_ns;
        s->last_ns = r.time_ns;
        if (r.kind == HAL_TR_SEND) {
            if ((t = task_acc(&tasks, r.task)) && r.result == 0) {
                t->row.sent++;
                t->row.sent_bytes += r.len;
            } else if (t) {
                t->row.send_errors++;
            }
            if (r.result == 0 && (f = iface_acc(&ifaces, iface))) {
                f->row.sent++;
                f->row.sent_bytes += r.len;
            } else if (r.result != 0 && (f = iface_acc(&ifaces, iface))) {
                f->row.send_errors++;
            }
        } else if (r.kind == HAL_TR_DELIVER) {
            if ((t = task_acc(&tasks, r.task))) {
                t->row.recv++;
                t->row.recv_bytes += r.len;
            }
            if ((f = iface_acc(&ifaces, iface))) {
                f->row.recv++;
                f->row.recv_bytes += r.len;
            }
        } else if (r.task) {
            task_acc(&tasks, r.task);
        }
        if (trace_pairer_feed(pairer, &r, iface, &pr)) {
            uint64_t d = pr.deliver_ns >= pr.send_ns ? pr.deliver_ns - pr.send_ns : 0;
            if ((t = task_acc(&tasks, pr.receiver)))
                lat_push(&t->lat, d);
            if ((f = iface_acc(&ifaces, pr.iface)))
                lat_push(&f->lat, d);
            lat_push(&all, d);
        }
    }
    if (rc == 0) {
        trace_pairer_unmatched(pairer, &s->unmatched_sends, &s->unmatched_delivers);
        lat_finish(&all, &s->all);
    }
out:
    trace_iter_close(it);
    for (size_t i = 0; i < tasks.n; i++) {
        const char *name = trace_db_task_name(db, tasks.v[i].row.id);
        snprintf(tasks.v[i].row.name, sizeof(tasks.v[i].row.name), "%s",
                 name ? name : (i ? "?" : "(kernel)"));
    }
    for (size_t i = 0; i < ifaces.n; i++) {
        const char *name = trace_db_iface_name(db, ifaces.v[i].row.id);
        if (name)
            snprintf(ifaces.v[i].row.name, sizeof(ifaces.v[i].row.name), "%s", name);
        else if (ifaces.v[i].row.id)
            snprintf(ifaces.v[i].row.name, sizeof(ifaces.v[i].row.name), "0x%08x",
                     (unsigned)ifaces.v[i].row.id);
        else
            snprintf(ifaces.v[i].row.name, sizeof(ifaces.v[i].row.name), "(unknown)");
    }
    collect(&tasks, &s->tasks, &s->ntasks);
    collect(&ifaces, &s->ifaces, &s->nifaces);
    free(all.v);
    trace_pairer_free(pairer);
    trace_ifmap_free(ifmap);
    return rc == 0 ? 0 : -1;
}

void trace_summary_free(trace_summary *s)
{
    free(s->tasks);
    free(s->ifaces);
    s->tasks = s->ifaces = NULL;
}

/* 1234 ns -> "1.23us" */
static const char *dur(uint64_t ns, char *buf, size_t len)
{
    if (ns < 1000)
        snprintf(buf, len, "%lluns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(buf, len, "%.2fus", ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, len, "%.2fms", ns / 1e6);
    else
        snprintf(buf, len, "%.2fs", ns / 1e9);
    return buf;
}

static void print_rows(FILE *out, const char *what, const trace_summary_row *rows, size_t n)
{
    char a[32], b[32], c[32];

    fprintf(out, "%-7s %-14s %9s %11s %9s %11s %6s %9s %9s %9s\n", what == NULL ? "" : "ID", what,
            "SENT", "SENT_BYTES", "RECV", "RECV_BYTES", "ERRS", "P50", "P90", "P99");
    for (size_t i = 0; i < n; i++) {
        const trace_summary_row *r = &rows[i];
        char id[16];
        if (strcmp(what, "TASK") == 0)
            snprintf(id, sizeof(id), "%u", (unsigned)r->id);
        else
            snprintf(id, sizeof(id), "%08x", (unsigned)r->id);
        fprintf(out, "%-7s %-14s %9llu %11llu %9llu %11llu %6llu %9s %9s %9s\n", id, r->name,
                (unsigned long long)r->sent, (unsigned long long)r->sent_bytes,
                (unsigned long long)r->recv, (unsigned long long)r->recv_bytes,
                (unsigned long long)r->send_errors,
                r->latency.n ? dur(r->latency.p50, a, sizeof(a)) : "-",
                r->latency.n ? dur(r->latency.p90, b, sizeof(b)) : "-",
                r->latency.n ? dur(r->latency.p99, c, sizeof(c)) : "-");
    }
}

static void print_run(const trace_summary *s, FILE *out)
{
    char a[32], state[160] = "";

    if (!s->run.complete && s->run.closed)
        snprintf(state, sizeof(state), " (incomplete: %llu records not stored)",
                 (unsigned long long)s->run.dropped);
    else if (!s->run.complete && s->run.commit_unix_ns > s->run.start_unix_ns)
        snprintf(state, sizeof(state),
                 " (recording did not finish cleanly; its last commit was %.3f s after the start)",
                 (double)(s->run.commit_unix_ns - s->run.start_unix_ns) / 1e9);
    else if (!s->run.complete)
        snprintf(state, sizeof(state), " (recording did not finish cleanly)");
    fprintf(out, "run: platform %s, seed %llu, commit %s, started %s, %u worker%s%s\n",
            s->run.platform, (unsigned long long)s->run.seed,
            s->run.commit[0] ? s->run.commit : "?", s->run.start_time, s->run.workers,
            s->run.workers == 1 ? "" : "s", state);
    fprintf(out, "events: %llu over %s, dropped %llu, bad frames %llu",
            (unsigned long long)s->events, dur(s->last_ns - s->first_ns, a, sizeof(a)),
            (unsigned long long)s->run.dropped, (unsigned long long)s->run.bad_frames);
    if (s->run.has_exit_status)
        fprintf(out, ", exit status %d", s->run.exit_status);
}

/* Messages and the task and interface tables (of the whole trace, or of one node). */
static void print_body(const trace_summary *s, FILE *out)
{
    char a[32], b[32], c[32], d[32];

    fprintf(out,
            "messages: %llu delivered, send->deliver p50 %s p90 %s p99 %s max %s;"
            " %llu sent but never delivered\n\n",
            (unsigned long long)s->all.n, dur(s->all.p50, a, sizeof(a)),
            dur(s->all.p90, b, sizeof(b)), dur(s->all.p99, c, sizeof(c)),
            dur(s->all.max, d, sizeof(d)), (unsigned long long)s->unmatched_sends);
    print_rows(out, "TASK", s->tasks, s->ntasks);
    fprintf(out, "\n");
    print_rows(out, "INTERFACE", s->ifaces, s->nifaces);
}

static const char latency_note[] =
    "\nLatency: each DELIVER is paired with the SEND it dequeued (FIFO per receiving"
    " endpoint); per task it is the latency of messages the task received.\n";

void trace_summary_print(const trace_summary *s, FILE *out)
{
    print_run(s, out);
    fprintf(out, "\n");
    print_body(s, out);
    fputs(latency_note, out);
}

/*
 * A trace with nodes: the run and the whole file's event count, then one section per node
 * (or the selected node's alone), each summarized on its own: task ids and endpoints are the
 * node's.
 */
int trace_summary_print_nodes(trace_db *db, FILE *out)
{
    int64_t sel = trace_db_selected_node(db);
    size_t n = trace_db_node_count(db);
    trace_summary s;
    char a[32], list[TRACE_NODES_MAX * 34];

    trace_db_select_node(db, -1);
    if (trace_summary_compute(db, &s) != 0) {
        trace_summary_free(&s);
        trace_db_select_node(db, sel);
        return -1;
    }
    trace_summary_free(&s);
    print_run(&s, out);
    trace_db_node_list(db, list, sizeof(list));
    fprintf(out, "\nnodes: %zu (%s)\n", n, list);
    for (uint32_t node = 0; node < n && !ferror(out); node++) {
        const char *name = trace_db_node_name(db, node);
        if (!name || (sel >= 0 && (uint32_t)sel != node))
            continue;
        trace_db_select_node(db, node);
        if (trace_summary_compute(db, &s) != 0) {
            trace_summary_free(&s);
            trace_db_select_node(db, sel);
            return -1;
        }
        fprintf(out, "\n== node %s (%u): %llu events over %s\n", name, (unsigned)node,
                (unsigned long long)s.events, dur(s.last_ns - s.first_ns, a, sizeof(a)));
        print_body(&s, out);
        trace_summary_free(&s);
    }
    trace_db_select_node(db, sel);
    fputs(latency_note, out);
    return 0;
}
