/* status.c — httpd's /status: tasks and their counters, uptime, network and disk counters,
 * the build's commit, as one JSON object (docs/httpd.md). */
#include "httpd.h"

#include <build_commit.h>

#include <stdarg.h>
#include <stdio.h>

enum { STATUS_TASKS_MAX = 32 };

typedef struct out {
    char *buf;
    size_t cap, len;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    if (o->len >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    o->len = n < 0 || (size_t)n >= o->cap - o->len ? o->cap : o->len + (size_t)n;
}

/* A JSON string of a name we made (task names, fs notes): escape what JSON needs. */
static void put_str(out_t *o, const char *s)
{
    put(o, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            put(o, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            put(o, "\\u%04x", ch);
        else
            put(o, "%c", ch);
    }
    put(o, "\"");
}

size_t httpd_status_json(os_ctx_t *ctx, httpd_state_t *st, const conn_t *c)
{
    out_t o = {st->json, sizeof st->json, 0};
    os_task_info_t tasks[STATUS_TASKS_MAX];
    int n = os_task_list(ctx, tasks, STATUS_TASKS_MAX);
    if (n < 0)
        n = 0;
    size_t shown = (size_t)n > STATUS_TASKS_MAX ? STATUS_TASKS_MAX : (size_t)n;
    put(&o, "{\"commit\":");
    put_str(&o, ORRERY_COMMIT);
    put(&o, ",\"uptime_ms\":%llu,\"tasks\":[", (unsigned long long)(os_clock_now(ctx) / 1000000u));
    for (size_t i = 0; i < shown; i++) {
        const os_task_info_t *t = &tasks[i];
        put(&o, "%s{\"id\":%u,\"name\":", i ? "," : "", (unsigned)t->id);
        put_str(&o, t->name);
        put(&o,
            ",\"state\":\"%s\",\"handles\":%u,\"msgs_sent\":%llu,\"msgs_received\":%llu,"
            "\"restarts\":%u}",
            os_task_state_name(t->state), (unsigned)t->handles, (unsigned long long)t->msgs_sent,
            (unsigned long long)t->msgs_received, (unsigned)t->restarts);
    }
    put(&o, "],\"tasks_total\":%d", n);
    if (c->have_net)
        put(&o,
            ",\"net\":{\"rx_frames\":%llu,\"tx_frames\":%llu,\"rx_bytes\":%llu,"
            "\"tx_bytes\":%llu,\"rx_dropped\":%llu,\"tx_dropped\":%llu,\"other_dropped\":%llu}",
            (unsigned long long)c->net.rx_frames, (unsigned long long)c->net.tx_frames,
            (unsigned long long)c->net.rx_bytes, (unsigned long long)c->net.tx_bytes,
            (unsigned long long)c->net.rx_dropped, (unsigned long long)c->net.tx_dropped,
            (unsigned long long)c->net.other_dropped);
    else
        put(&o, ",\"net\":null");
    if (c->have_disk)
        put(&o,
            ",\"disk\":{\"block_size\":%u,\"blocks\":%llu,\"free_blocks\":%llu,\"inodes\":%u,"
            "\"free_inodes\":%u,\"read_only\":%s}",
            (unsigned)c->disk.block_size, (unsigned long long)c->disk.blocks,
            (unsigned long long)c->disk.free_blocks, (unsigned)c->disk.inodes,
            (unsigned)c->disk.free_inodes, (c->disk.flags & FS_INFO_RO) ? "true" : "false");
    else
        put(&o, ",\"disk\":null");
    int conns = 0;
    for (int i = 0; i < HTTPD_CONNS_MAX; i++)
        conns += st->conns[i].phase != C_FREE;
    put(&o, ",\"httpd\":{\"connections\":%d,\"requests\":%llu,\"refused\":%llu}}\n", conns,
        (unsigned long long)st->requests, (unsigned long long)st->refused);
    if (o.len >= o.cap) {
        /* cannot happen with STATUS_TASKS_MAX tasks; still valid JSON if it did */
        o.len = (size_t)snprintf(st->json, sizeof st->json, "{\"error\":\"too long\"}\n");
    }
    return o.len;
}
