/* perfetto.c — `orrery trace export --perfetto`: Chrome trace-event JSON with one track per task
 * and send->deliver flows. */
#include <trace/decode.h>
#include <trace/pair.h>
#include <trace/recorder.h>
#include <trace/tools.h>

#include <hal/codes.h>

#include <stdlib.h>
#include <string.h>

/*
 * Layout (opens in ui.perfetto.dev and chrome://tracing):
 *   - one process "orrery (<platform>)", pid 1; one thread per task (tid = task id,
 *     named "name:id"), tid 0 for the kernel/platform;
 *   - one complete slice ("ph":"X") per event, named by kind and message
 *     ("SEND echo.request"), args: seq, channel, decoded payload, result;
 *   - a flow from each successful SEND ("ph":"s", id = the SEND's seq) to
 *     its DELIVER ("ph":"f", "bp":"e", same id), bound to those slices.
 * Timestamps are microseconds: time_ns / 1000, or with the seq clock one
 * microsecond per event (sim traces, whose virtual time stands still while
 * tasks run, would otherwise stack every event at one instant).
 *
 * A trace with nodes (a simulated cluster): one process per node (pid = node
 * id + 1, named by the node), its tasks as its threads, and a flow ("cat":
 * "net") from each frame a node's net0 sent (DEV_WRITE) to each other node
 * whose net0 received the same bytes later (DEV_POST): the receiver's post is
 * matched with the first earlier send of another node with the same bytes not
 * yet matched on that receiver (a broadcast reaches several). Its id is the
 * post's seq, so it never meets an IPC flow's (a SEND's seq).
 */

/* Frames sent and not yet matched on every other node that are kept for matching; past it the
 * oldest is forgotten (its later receptions get no flow). */
#define PERFETTO_PENDING_FRAMES 4096

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void ts_print(FILE *out, trace_clock clock, const hal_trace_rec_t *r)
{
    if (clock == TRACE_CLOCK_SEQ)
        fprintf(out, "%llu", (unsigned long long)r->seq);
    else
        fprintf(out, "%llu.%03u", (unsigned long long)(r->time_ns / 1000),
                (unsigned)(r->time_ns % 1000));
}

/* The process of a record: 1, or with nodes its node's id + 1. */
static unsigned pid_of(trace_db *db, uint32_t node)
{
    return trace_db_node_count(db) ? node + 1 : 1;
}

static void kernel_thread(FILE *out, unsigned pid)
{
    fprintf(out,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,"
            "\"args\":{\"name\":\"(kernel)\"}}",
            pid);
}

static int thread_names(trace_db *db, FILE *out)
{
    trace_filter f = {0};
    trace_iter *it;
    hal_trace_rec_t r;
    int rc;

    /* Every SPAWN names a track; tid 0 is the kernel (of each node). */
    if (!trace_db_node_count(db))
        kernel_thread(out, 1);
    f.kind = HAL_TR_SPAWN;
    if (trace_iter_open(db, &f, &it) != 0)
        return -1;
    while ((rc = trace_iter_next(it, &r)) == 1) {
        unsigned pid = pid_of(db, trace_iter_node(it));
        char name[96];
        snprintf(name, sizeof(name), "%.*s:%u", (int)(r.len < 64 ? r.len : 64),
                 r.data ? (const char *)r.data : "?", (unsigned)r.task);
        fprintf(out,
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,"
                "\"args\":{\"name\":",
                pid, (unsigned)r.task);
        json_str(out, name);
        fprintf(out,
                "}},\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,"
                "\"args\":{\"sort_index\":%u}}",
                pid, (unsigned)r.task, (unsigned)r.task);
    }
    trace_iter_close(it);
    return rc < 0 ? -1 : 0;
}

/* One process per node, named by it (the selected node's alone). */
static void node_processes(trace_db *db, FILE *out)
{
    int64_t sel = trace_db_selected_node(db);
    const char *sep = ""; /* the first entry of traceEvents */

    for (uint32_t node = 0; node < trace_db_node_count(db); node++) {
        const char *name = trace_db_node_name(db, node);
        if (!name || (sel >= 0 && (uint32_t)sel != node))
            continue;
        fprintf(out,
                "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"args\":{\"name\":", sep,
                node + 1);
        sep = ",\n";
        json_str(out, name);
        fprintf(out,
                "}},\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%u,"
                "\"args\":{\"sort_index\":%u}}",
                node + 1, node + 1);
        kernel_thread(out, node + 1);
    }
}

/* A frame a node's net0 sent, waiting for the other nodes' receptions. */
typedef struct sent_frame {
    uint64_t seq;      /* its DEV_WRITE */
    hal_trace_rec_t r; /* for its ts (data: the copy below) */
    uint32_t node, task;
    uint64_t matched; /* nodes that received it (bit per node) */
    uint32_t len;
    unsigned char *data;
} sent_frame;

typedef struct frame_flows {
    uint32_t net0[TRACE_NODES_MAX]; /* each node's net0 (0: none) */
    sent_frame *v;
    size_t n, cap;
    uint64_t all; /* bits of the nodes with a net0 */
} frame_flows;

static void flows_sent(frame_flows *ff, uint32_t node, const hal_trace_rec_t *r)
{
    if (ff->n == PERFETTO_PENDING_FRAMES) {
        free(ff->v[0].data);
        memmove(ff->v, ff->v + 1, (ff->n - 1) * sizeof(*ff->v));
        ff->n--;
    }
    if (ff->n == ff->cap) {
        size_t cap = ff->cap ? 2 * ff->cap : 64;
        sent_frame *v = realloc(ff->v, cap * sizeof(*v));
        if (!v)
            return; /* a flow less: the export goes on */
        ff->v = v;
        ff->cap = cap;
    }
    sent_frame *f = &ff->v[ff->n];
    if (!(f->data = malloc(r->len ? r->len : 1)))
        return;
    memcpy(f->data, r->data, r->len);
    f->len = r->len;
    f->seq = r->seq;
    f->r = *r;
    f->r.data = NULL;
    f->node = node;
    f->task = r->task;
    f->matched = 1ull << node; /* never received by its own sender */
    ff->n++;
}

/* The earliest frame another node sent with these bytes and node has not received, or NULL. */
static sent_frame *flows_match(frame_flows *ff, uint32_t node, const hal_trace_rec_t *r)
{
    for (size_t i = 0; i < ff->n; i++) {
        sent_frame *f = &ff->v[i];
        if (!(f->matched & (1ull << node)) && f->len == r->len &&
            memcmp(f->data, r->data, r->len) == 0) {
            f->matched |= 1ull << node;
            return f;
        }
    }
    return NULL;
}

/* Forget the frames every node with a net0 has received. */
static void flows_prune(frame_flows *ff)
{
    size_t k = 0;

    for (size_t i = 0; i < ff->n; i++) {
        if ((ff->v[i].matched & ff->all) == ff->all)
            free(ff->v[i].data);
        else
            ff->v[k++] = ff->v[i];
    }
    ff->n = k;
}

static void flows_free(frame_flows *ff)
{
    for (size_t i = 0; i < ff->n; i++)
        free(ff->v[i].data);
    free(ff->v);
}

int trace_export_perfetto(trace_db *db, FILE *out, trace_clock clock)
{
    trace_run_row run;
    /* Per node: endpoints restart on each, and these key on them. */
    trace_pairer *pairers[TRACE_NODES_MAX] = {0};
    trace_ifmap *ifmaps[TRACE_NODES_MAX] = {0};
    frame_flows ff = {0};
    size_t nnodes = trace_db_node_count(db);
    trace_iter *it = NULL;
    hal_trace_rec_t r;
    trace_pair pr;
    char label[128], body[2048];
    int rc = -1;

    if (trace_db_run(db, &run) != 0)
        return -1;
    if (clock == TRACE_CLOCK_AUTO)
        clock = strcmp(run.platform, "sim") == 0 ? TRACE_CLOCK_SEQ : TRACE_CLOCK_TIME;
    for (uint32_t node = 0; node < nnodes && node < TRACE_NODES_MAX; node++)
        if ((ff.net0[node] = trace_db_device_id_on(db, node, "net0")))
            ff.all |= 1ull << node;

    fputs(TRACE_PERFETTO_HEAD, out);
    json_str(out, run.platform);
    fprintf(out, ",\"commit\":");
    json_str(out, run.commit);
    fprintf(out, ",\"seed\":%llu,\"clock\":\"%s\"},\n\"traceEvents\":[\n",
            (unsigned long long)run.seed, clock == TRACE_CLOCK_SEQ ? "seq" : "time");
    if (!nnodes) {
        fprintf(out, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":");
        snprintf(label, sizeof(label), "orrery (%s)", run.platform);
        json_str(out, label);
        fprintf(out, "}}");
    }
    node_processes(db, out);
    if (thread_names(db, out) != 0 || trace_iter_open(db, NULL, &it) != 0)
        goto out;

    /* A reader that went away or a full disk: stop at once (the caller reports ferror). */
    while (!ferror(out) && (rc = trace_iter_next(it, &r)) == 1) {
        const char *kind = trace_kind_name(r.kind);
        uint32_t node = trace_iter_node(it) % TRACE_NODES_MAX;
        unsigned pid = pid_of(db, node);
        if ((!pairers[node] && !(pairers[node] = trace_pairer_new())) ||
            (!ifmaps[node] && !(ifmaps[node] = trace_ifmap_new()))) {
            rc = -1;
            break;
        }
        uint32_t iface = trace_ifmap_resolve(ifmaps[node], &r);
        bool msg = r.kind == HAL_TR_SEND || r.kind == HAL_TR_DELIVER;

        if (msg) {
            char l2[96];
            trace_msg_label(iface, r.type, l2, sizeof(l2));
            snprintf(label, sizeof(label), "%s %s", kind, l2);
            trace_decode_payload(iface, r.type, r.data, r.len, r.nhandles, body, sizeof(body));
        } else {
            snprintf(label, sizeof(label), "%s", kind ? kind : "?");
            trace_show_format(db, &r, iface, body, sizeof(body));
        }
        fprintf(out, ",\n{\"name\":");
        json_str(out, label);
        fprintf(out, ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":", msg ? "ipc" : "event");
        ts_print(out, clock, &r);
        fprintf(out,
                ",\"dur\":%s,\"pid\":%u,\"tid\":%u,\"args\":{\"seq\":%llu,\"chan\":%u,"
                "\"peer\":%u,\"result\":%d,\"detail\":",
                clock == TRACE_CLOCK_SEQ ? "0.5" : "0.001", pid, (unsigned)r.task,
                (unsigned long long)r.seq, (unsigned)r.chan, (unsigned)r.peer, (int)r.result);
        json_str(out, body);
        fprintf(out, "}}");

        if (r.kind == HAL_TR_SEND && r.result == 0 && r.peer) {
            fprintf(out,
                    ",\n{\"name\":\"message\",\"cat\":\"ipc\",\"ph\":\"s\",\"id\":%llu,\"ts\":",
                    (unsigned long long)r.seq);
            ts_print(out, clock, &r);
            fprintf(out, ",\"pid\":%u,\"tid\":%u}", pid, (unsigned)r.task);
        }
        if (trace_pairer_feed(pairers[node], &r, iface, &pr)) {
            fprintf(out,
                    ",\n{\"name\":\"message\",\"cat\":\"ipc\",\"ph\":\"f\",\"bp\":\"e\","
                    "\"id\":%llu,\"ts\":",
                    (unsigned long long)pr.send_seq);
            ts_print(out, clock, &r);
            fprintf(out, ",\"pid\":%u,\"tid\":%u}", pid, (unsigned)r.task);
        }
        /* Frames between nodes: net0's accepted writes, and what another net0 was posted. */
        if (nnodes > 1 && ff.net0[node] && r.chan == ff.net0[node] && r.type == HAL_NET_FRAME &&
            r.data) {
            sent_frame *f;
            if (r.kind == HAL_TR_DEV_WRITE && r.result == 0) {
                flows_sent(&ff, node, &r);
            } else if (r.kind == HAL_TR_DEV_POST && (f = flows_match(&ff, node, &r))) {
                fprintf(out,
                        ",\n{\"name\":\"frame\",\"cat\":\"net\",\"ph\":\"s\",\"id\":%llu,"
                        "\"ts\":",
                        (unsigned long long)r.seq);
                ts_print(out, clock, &f->r);
                fprintf(out, ",\"pid\":%u,\"tid\":%u}", pid_of(db, f->node), (unsigned)f->task);
                fprintf(out,
                        ",\n{\"name\":\"frame\",\"cat\":\"net\",\"ph\":\"f\",\"bp\":\"e\","
                        "\"id\":%llu,\"ts\":",
                        (unsigned long long)r.seq);
                ts_print(out, clock, &r);
                fprintf(out, ",\"pid\":%u,\"tid\":%u}", pid, (unsigned)r.task);
                flows_prune(&ff);
            }
        }
    }
    fprintf(out, "\n]}\n");
    rc = rc < 0 ? -1 : 0;
out:
    trace_iter_close(it);
    for (size_t i = 0; i < TRACE_NODES_MAX; i++) {
        trace_pairer_free(pairers[i]);
        trace_ifmap_free(ifmaps[i]);
    }
    flows_free(&ff);
    return rc;
}
