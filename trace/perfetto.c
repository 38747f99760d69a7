/* perfetto.c — `orrery trace export --perfetto`: Chrome trace-event JSON with one track per task
 * and send->deliver flows. */
#include <trace/decode.h>
#include <trace/pair.h>
#include <trace/recorder.h>
#include <trace/tools.h>

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
 */

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

static int thread_names(trace_db *db, FILE *out)
{
    trace_filter f = {0};
    trace_iter *it;
    hal_trace_rec_t r;
    int rc;

    /* Every SPAWN names a track; tid 0 is the kernel. */
    fprintf(out, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,"
                 "\"args\":{\"name\":\"(kernel)\"}}");
    f.kind = HAL_TR_SPAWN;
    if (trace_iter_open(db, &f, &it) != 0)
        return -1;
    while ((rc = trace_iter_next(it, &r)) == 1) {
        char name[96];
        snprintf(name, sizeof(name), "%.*s:%u", (int)(r.len < 64 ? r.len : 64),
                 r.data ? (const char *)r.data : "?", (unsigned)r.task);
        fprintf(
            out,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"args\":{\"name\":",
            (unsigned)r.task);
        json_str(out, name);
        fprintf(out,
                "}},\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,"
                "\"args\":{\"sort_index\":%u}}",
                (unsigned)r.task, (unsigned)r.task);
    }
    trace_iter_close(it);
    return rc < 0 ? -1 : 0;
}

int trace_export_perfetto(trace_db *db, FILE *out, trace_clock clock)
{
    trace_run_row run;
    trace_pairer *pairer = NULL;
    trace_ifmap *ifmap = NULL;
    trace_iter *it = NULL;
    hal_trace_rec_t r;
    trace_pair pr;
    char label[128], body[2048];
    int rc = -1;

    if (trace_db_run(db, &run) != 0)
        return -1;
    if (clock == TRACE_CLOCK_AUTO)
        clock = strcmp(run.platform, "sim") == 0 ? TRACE_CLOCK_SEQ : TRACE_CLOCK_TIME;
    pairer = trace_pairer_new();
    ifmap = trace_ifmap_new();
    if (!pairer || !ifmap)
        goto out;

    fputs(TRACE_PERFETTO_HEAD, out);
    json_str(out, run.platform);
    fprintf(out, ",\"commit\":");
    json_str(out, run.commit);
    fprintf(out, ",\"seed\":%llu,\"clock\":\"%s\"},\n\"traceEvents\":[\n",
            (unsigned long long)run.seed, clock == TRACE_CLOCK_SEQ ? "seq" : "time");
    fprintf(out, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":");
    snprintf(label, sizeof(label), "orrery (%s)", run.platform);
    json_str(out, label);
    fprintf(out, "}}");
    if (thread_names(db, out) != 0 || trace_iter_open(db, NULL, &it) != 0)
        goto out;

    /* A reader that went away or a full disk: stop at once (the caller reports ferror). */
    while (!ferror(out) && (rc = trace_iter_next(it, &r)) == 1) {
        const char *kind = trace_kind_name(r.kind);
        uint32_t iface = trace_ifmap_resolve(ifmap, &r);
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
                ",\"dur\":%s,\"pid\":1,\"tid\":%u,\"args\":{\"seq\":%llu,\"chan\":%u,"
                "\"peer\":%u,\"result\":%d,\"detail\":",
                clock == TRACE_CLOCK_SEQ ? "0.5" : "0.001", (unsigned)r.task,
                (unsigned long long)r.seq, (unsigned)r.chan, (unsigned)r.peer, (int)r.result);
        json_str(out, body);
        fprintf(out, "}}");

        if (r.kind == HAL_TR_SEND && r.result == 0 && r.peer) {
            fprintf(out,
                    ",\n{\"name\":\"message\",\"cat\":\"ipc\",\"ph\":\"s\",\"id\":%llu,\"ts\":",
                    (unsigned long long)r.seq);
            ts_print(out, clock, &r);
            fprintf(out, ",\"pid\":1,\"tid\":%u}", (unsigned)r.task);
        }
        if (trace_pairer_feed(pairer, &r, iface, &pr)) {
            fprintf(out,
                    ",\n{\"name\":\"message\",\"cat\":\"ipc\",\"ph\":\"f\",\"bp\":\"e\","
                    "\"id\":%llu,\"ts\":",
                    (unsigned long long)pr.send_seq);
            ts_print(out, clock, &r);
            fprintf(out, ",\"pid\":1,\"tid\":%u}", (unsigned)r.task);
        }
    }
    fprintf(out, "\n]}\n");
    rc = rc < 0 ? -1 : 0;
out:
    trace_iter_close(it);
    trace_pairer_free(pairer);
    trace_ifmap_free(ifmap);
    return rc;
}
