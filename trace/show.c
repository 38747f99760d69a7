/* show.c — `orrery trace show`: one line per event, messages decoded field by field by interface.
 */
#include <trace/blk.h>
#include <trace/decode.h>
#include <trace/pair.h>
#include <trace/pcap.h>
#include <trace/recorder.h>
#include <trace/tools.h>

#include <hal/codes.h>
#include <os/errno.h>

#include <stdarg.h>
#include <string.h>

static const char *errname(int rc)
{
    switch (rc) {
    case 0:
        return "OK";
#define SHOW_ERRNAME(name, value, msg)                                                             \
    case (value):                                                                                  \
        return #name;
        OS_ERRNO_MAP(SHOW_ERRNAME)
#undef SHOW_ERRNAME
    default:
        return NULL;
    }
}

/* A device code's name, for the devices whose codes hal/codes.h defines (NULL: print the number).
 */
static const char *code_name(const char *dev, uint32_t code)
{
    if (code == HAL_DEVICE_END)
        return "END";
    if (!dev)
        return NULL;
    if (strcmp(dev, "net0") == 0)
        return code == HAL_NET_FRAME       ? "FRAME"
               : code == HAL_NET_LINK_UP   ? "LINK_UP"
               : code == HAL_NET_LINK_DOWN ? "LINK_DOWN"
                                           : NULL;
    if (strcmp(dev, "console") == 0)
        return code == HAL_CONSOLE_LINE       ? "LINE"
               : code == HAL_CONSOLE_OVERLONG ? "OVERLONG"
               : code == HAL_CONSOLE_WRITE    ? "WRITE"
                                              : NULL;
    if (strcmp(dev, "blk0") == 0)
        return trace_blk_code_name(code);
    return NULL;
}

typedef struct line {
    char *p;
    size_t cap, len;
} line;

static void add(line *l, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (l->len + 1 >= l->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(l->p + l->len, l->cap - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len = l->len + (size_t)n < l->cap ? l->len + (size_t)n : l->cap - 1;
}

static void add_result(line *l, int32_t rc)
{
    const char *n = errname(rc);
    if (rc == 0)
        return;
    if (n)
        add(l, " -> %s", n);
    else
        add(l, " -> %d", (int)rc);
}

static void add_task(line *l, trace_db *db, uint32_t task)
{
    const char *name = trace_db_task_name(db, task);
    char who[48];

    if (task == 0)
        snprintf(who, sizeof(who), "(kernel)");
    else
        snprintf(who, sizeof(who), "%s:%u", name ? name : "?", (unsigned)task);
    add(l, "%-14s", who);
}

void trace_show_format(trace_db *db, const hal_trace_rec_t *r, uint32_t iface, char *buf,
                       size_t len)
{
    line l = {buf, len, 0};
    const char *kind = trace_kind_name(r->kind);
    char label[96], body[2048];

    buf[0] = 0;
    add(&l, "#%-7llu %12.6fms ", (unsigned long long)r->seq, r->time_ns / 1e6);
    if (trace_db_node_count(db)) {
        /* A trace with nodes: whose kernel recorded it, in a column as wide as the longest name. */
        const char *node = trace_db_node_name(db, trace_db_current_node(db));
        int width = 0;
        for (uint32_t i = 0; i < trace_db_node_count(db); i++) {
            const char *n = trace_db_node_name(db, i);
            if (n && (int)strlen(n) > width)
                width = (int)strlen(n);
        }
        add(&l, "%-*s ", width, node ? node : "?");
    }
    add_task(&l, db, r->task);
    if (kind)
        add(&l, " %-12s", kind);
    else
        add(&l, " KIND%-8u", (unsigned)r->kind);
    switch (r->kind) {
    case HAL_TR_SEND:
    case HAL_TR_DELIVER:
        trace_msg_label(iface, r->type, label, sizeof(label));
        trace_decode_payload(iface, r->type, r->data, r->len, r->nhandles, body, sizeof(body));
        if (r->kind == HAL_TR_SEND)
            add(&l, " ch %u->%u %s %s", (unsigned)r->chan, (unsigned)r->peer, label, body);
        else
            add(&l, " ch %u<-%u %s %s", (unsigned)r->chan, (unsigned)r->peer, label, body);
        if (r->nhandles)
            add(&l, " +%u handle%s", (unsigned)r->nhandles, r->nhandles == 1 ? "" : "s");
        add_result(&l, r->result);
        break;
    case HAL_TR_SPAWN:
        add(&l, " \"%.*s\" parent %llu", (int)r->len, r->data ? (const char *)r->data : "",
            (unsigned long long)r->arg);
        break;
    case HAL_TR_EXIT:
    case HAL_TR_TASK_EXIT_EVENT:
        if (r->kind == HAL_TR_TASK_EXIT_EVENT)
            add(&l, " task %u", (unsigned)r->peer);
        add(&l, " status %d", (int)r->result);
        if (r->result < 0 && errname(r->result))
            add(&l, " (%s)", errname(r->result));
        break;
    case HAL_TR_CHAN_CREATE:
        add(&l, " ch %u<->%u", (unsigned)r->chan, (unsigned)r->peer);
        break;
    case HAL_TR_CLOSE:
    case HAL_TR_PEER_CLOSED:
    case HAL_TR_WRITABLE:
    case HAL_TR_TIMER_CANCEL:
        add(&l, " obj %u", (unsigned)r->chan);
        break;
    case HAL_TR_TIMER_SET:
    case HAL_TR_TIMER_FIRE:
        add(&l, " timer %u deadline %.6fms", (unsigned)r->chan, r->arg / 1e6);
        break;
    case HAL_TR_CLOCK_READ:
        add(&l, " = %llu ns", (unsigned long long)r->arg);
        break;
    case HAL_TR_DEV_POST:
    case HAL_TR_DEV_EVENT:
    case HAL_TR_DEV_WRITE: {
        const char *dev = trace_db_device_name(db, r->chan);
        const char *code = code_name(dev, r->type);
        add(&l, " dev %u", (unsigned)r->chan);
        if (dev)
            add(&l, " %s", dev);
        if (code)
            add(&l, " %s", code);
        else
            add(&l, " code %u", (unsigned)r->type);
        add(&l, " [%u bytes] ", (unsigned)r->len);
        if (dev && strcmp(dev, "net0") == 0 && r->type == HAL_NET_FRAME)
            trace_ether_describe(r->data, r->len, body, sizeof(body));
        else if (dev && strcmp(dev, "blk0") == 0 && trace_blk_code_name(r->type))
            trace_blk_describe(r->type, r->kind != HAL_TR_DEV_WRITE, r->data, r->len, body,
                               sizeof(body));
        else
            trace_hex(r->data, r->len, 48, body, sizeof(body));
        add(&l, "%s", body);
        add_result(&l, r->result);
        break;
    }
    case HAL_TR_DEVICE:
        add(&l, " dev %u = \"%.*s\" (number %u)", (unsigned)r->chan, (int)r->len,
            r->data ? (const char *)r->data : "", (unsigned)r->type);
        break;
    case HAL_TR_RANDOM:
        trace_hex(r->data, r->len, 16, body, sizeof(body));
        add(&l, " [%u bytes] %s", (unsigned)r->len, body);
        break;
    case HAL_TR_HANDLE: {
        static const char *const kinds[] = {"?", "channel", "timer", "task", "device"};
        unsigned k = r->type & 0xff;
        add(&l, " handle %#llx = %s %u rights %#x", (unsigned long long)r->arg,
            kinds[k < 5 ? k : 0], (unsigned)r->chan, (unsigned)(r->type >> 8));
        break;
    }
    case HAL_TR_LIST:
        add(&l, " %s -> %d", r->type == HAL_TRACE_LIST_TASKS ? "tasks" : "channels",
            (int)r->result);
        break;
    default:
        if (r->len) {
            trace_hex(r->data, r->len, 32, body, sizeof(body));
            add(&l, " %s", body);
        }
        break;
    }
}

int trace_show(trace_db *db, const trace_filter *f, FILE *out)
{
    trace_filter all = {0};
    /* One per node: endpoints restart per node, and the map learns channels by endpoint. */
    trace_ifmap *ifmaps[TRACE_NODES_MAX] = {0};
    trace_iter *it = NULL;
    hal_trace_rec_t r;
    char buf[4096];
    int rc = -1;

    if (f && f->iface) {
        /* Interfaces may be inferred, so filter after resolving rather than in SQL. */
        all = *f;
        all.iface = 0;
        all.limit = 0;
    } else if (f) {
        all = *f;
    }
    if (trace_iter_open(db, &all, &it) != 0)
        goto out;
    uint64_t shown = 0;
    while ((rc = trace_iter_next(it, &r)) == 1) {
        uint32_t node = trace_iter_node(it) % TRACE_NODES_MAX;
        if (!ifmaps[node] && !(ifmaps[node] = trace_ifmap_new())) {
            rc = -1;
            break;
        }
        uint32_t iface = trace_ifmap_resolve(ifmaps[node], &r);
        if (f && f->iface && iface != f->iface)
            continue;
        trace_show_format(db, &r, iface, buf, sizeof(buf));
        /* A reader that went away or a full disk: stop at once (the caller reports ferror). */
        if (fprintf(out, "%s\n", buf) < 0 || ferror(out))
            break;
        if (f && f->limit && ++shown >= f->limit)
            break;
    }
    rc = rc < 0 ? -1 : 0;
out:
    trace_iter_close(it);
    for (size_t i = 0; i < TRACE_NODES_MAX; i++)
        trace_ifmap_free(ifmaps[i]);
    return rc;
}
