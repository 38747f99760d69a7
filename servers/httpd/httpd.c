/* httpd.c — the HTTP/1.1 static file server: the task, its connections and their responses,
 * a client of tcp (tcpip) and fs (read-only) through init (docs/httpd.md). */
#include "httpd.h"

#include <iface/init_client.h>

#include <stdio.h>
#include <string.h>

enum {
    REQ_TCP = 1,
    REQ_FS = 2,
    REQ_NET = 3,
    REQ_LISTEN = 4,
    /* fs and net requests of a connection: slot in the low 8 bits, the slot's gen above */
};

static uint32_t conn_req(httpd_state_t *st, conn_t *c)
{
    return (c->gen << 8) | (uint32_t)(c - st->conns);
}

static conn_t *conn_of_req(httpd_state_t *st, uint32_t req)
{
    uint32_t i = req & 0xff;
    if (i >= HTTPD_CONNS_MAX || st->conns[i].phase == C_FREE || st->conns[i].gen != req >> 8)
        return NULL;
    return &st->conns[i];
}

static void conn_process(os_ctx_t *ctx, httpd_state_t *st, conn_t *c);
static void conn_pump(os_ctx_t *ctx, httpd_state_t *st, conn_t *c);

static void close_file(os_ctx_t *ctx, conn_t *c)
{
    if (c->file != OS_HANDLE_NONE)
        os_handle_close(ctx, c->file);
    c->file = OS_HANDLE_NONE;
    c->reading = false;
}

static void conn_free(os_ctx_t *ctx, conn_t *c)
{
    close_file(ctx, c);
    if (c->chan != OS_HANDLE_NONE)
        os_handle_close(ctx, c->chan); /* closes gracefully after what we sent */
    c->chan = OS_HANDLE_NONE;
    c->phase = C_FREE;
}

static void hold(os_ctx_t *ctx, conn_t *c, bool on)
{
    if (c->held != on) {
        os_handle_hold(ctx, c->chan, on);
        c->held = on;
    }
}

/* Start sending: head (and a small body) are in out; a file range may follow. */
static void respond_head(os_ctx_t *ctx, httpd_state_t *st, conn_t *c, int status, const char *type,
                         uint64_t length, const char *extra, const void *body, size_t body_len)
{
    c->status = status;
    char cl[40] = "";
    if (status != 304) /* a 304 has no body and says nothing of the one it stands for */
        snprintf(cl, sizeof cl, "Content-Length: %llu\r\n", (unsigned long long)length);
    int n = snprintf((char *)c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\n"
                     "Server: orrery-httpd\r\n"
                     "%s%s%s"
                     "%s"
                     "%s"
                     "Connection: %s\r\n"
                     "\r\n",
                     status, http_reason(status), type ? "Content-Type: " : "", type ? type : "",
                     type ? "\r\n" : "", cl, extra ? extra : "", c->keep ? "keep-alive" : "close");
    if (n < 0 || (size_t)n >= sizeof c->out)
        n = 0; /* cannot happen: every part is bounded */
    c->out_len = (size_t)n;
    if (body && c->method != HTTP_HEAD && body_len <= sizeof c->out - c->out_len) {
        memcpy(c->out + c->out_len, body, body_len);
        c->out_len += body_len;
        c->body_bytes = body_len;
    }
    c->out_off = 0;
    c->phase = C_SENDING;
    hold(ctx, c, true);
    conn_pump(ctx, st, c);
}

/* A request refused before it was whole: a HEAD's answer has no body, any other's has. */
static void refused_method(conn_t *c, const http_req_t *r)
{
    c->method = r->method == HTTP_HEAD ? HTTP_HEAD : HTTP_GET;
    snprintf(c->method_name, sizeof c->method_name, "%s", r->method_name);
}

static void respond_error(os_ctx_t *ctx, httpd_state_t *st, conn_t *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    /* after these the request stream cannot be trusted (or the client is told to go away) */
    if (status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
        status == 500 || status == 501 || status == 503 || status == 505)
        c->keep = false;
    close_file(ctx, c);
    respond_head(ctx, st, c, status, "text/plain; charset=utf-8", (uint64_t)n,
                 status == 405 ? "Allow: GET, HEAD\r\n" : NULL, body, (size_t)n);
}

static void log_request(os_ctx_t *ctx, httpd_state_t *st, conn_t *c)
{
    if (st->cfg.log)
        os_log(ctx, "%s %s %d %llu", c->method_name[0] ? c->method_name : "-",
               c->path[0] ? c->path : "-", c->status, (unsigned long long)c->body_bytes);
}

/* The response is all queued: the next request, or the end of the connection. */
static void finish(os_ctx_t *ctx, httpd_state_t *st, conn_t *c)
{
    log_request(ctx, st, c);
    close_file(ctx, c);
    if (!c->keep || c->eof) {
        conn_free(ctx, c);
        return;
    }
    c->phase = C_READING;
    c->deadline = os_clock_now(ctx) + (uint64_t)st->cfg.timeout_ms * 1000000u;
    hold(ctx, c, false);
    conn_process(ctx, st, c);
}

/* Send what waits, then read the next piece of the file once the last one is queued. */
static void conn_pump(os_ctx_t *ctx, httpd_state_t *st, conn_t *c)
{
    while (c->phase == C_SENDING) {
        if (c->out_off < c->out_len) {
            size_t n = c->out_len - c->out_off;
            if (n > TCP_DATA_MAX)
                n = TCP_DATA_MAX;
            memcpy(st->data.data, c->out + c->out_off, n);
            st->data.data_len = (uint32_t)n;
            int rc = tcp_data_send(ctx, c->chan, &st->data);
            if (rc == OS_EFULL)
                return; /* OS_EV_WRITABLE brings us back */
            if (rc < 0) {
                conn_free(ctx, c);
                return;
            }
            c->out_off += n;
            continue;
        }
        if (c->file != OS_HANDLE_NONE && c->off < c->end) {
            if (c->reading)
                return;
            uint64_t n = c->end - c->off;
            fs_read_t m = {.req = conn_req(st, c),
                           .off = c->off,
                           .len = (uint32_t)(n > FS_DATA_MAX ? FS_DATA_MAX : n)};
            if (fs_read_send(ctx, c->file, &m) < 0) {
                conn_free(ctx, c); /* head already sent: all we can do is end it */
                return;
            }
            c->reading = true;
            return;
        }
        finish(ctx, st, c);
        return;
    }
}

/* ---- the request ------------------------------------------------------------------------- */

static void fs_reconnect(os_ctx_t *ctx, httpd_state_t *st)
{
    if (!st->fs_up && !st->fs_connecting) {
        st->fs_connecting = true;
        init_connect_iface(ctx, REQ_FS, &fs_iface);
    }
}

static void walk_step(os_ctx_t *ctx, httpd_state_t *st, conn_t *c)
{
    if (!st->fs_up) {
        fs_reconnect(ctx, st);
        respond_error(ctx, st, c, 500);
        return;
    }
    size_t len = strlen(c->fspath);
    size_t root_len = strlen(st->cfg.root);
    fs_open_t m = {.req = conn_req(st, c), .flags = FS_O_READ};
    if (c->walk == root_len && len == root_len) {
        /* the root itself: trusted as configured (it may be a symlink) */
        snprintf(m.path, sizeof m.path, "%s", len ? c->fspath : "/");
    } else {
        size_t e = c->walk + 1;
        while (e < len && c->fspath[e] != '/')
            e++;
        memcpy(m.path, c->fspath, e);
        m.path[e] = 0;
        m.flags |= FS_O_NOFOLLOW;
    }
    c->phase = C_WALK;
    if (fs_open_send(ctx, st->fs, &m) < 0)
        respond_error(ctx, st, c, 500);
}

/* An open of the walk answered. */
static void walk_opened(os_ctx_t *ctx, httpd_state_t *st, conn_t *c, const fs_opened_t *m)
{
    size_t len = strlen(c->fspath);
    size_t root_len = strlen(st->cfg.root);
    size_t e;
    if (c->walk == root_len && len == root_len) {
        e = len;
    } else {
        e = c->walk + 1;
        while (e < len && c->fspath[e] != '/')
            e++;
    }
    bool last = e >= len;
    if (m->type == FS_T_LNK || (!last && m->type != FS_T_DIR) ||
        (m->type != FS_T_DIR && m->type != FS_T_REG)) {
        os_handle_close(ctx, m->chan);
        respond_error(ctx, st, c, 404); /* a symlink is never followed out of (or in) the root */
        return;
    }
    if (!last) {
        os_handle_close(ctx, m->chan);
        c->walk = e;
        walk_step(ctx, st, c);
        return;
    }
    if (m->type == FS_T_DIR) {
        os_handle_close(ctx, m->chan);
        if (c->index_tried || len + 11 > FS_PATH_MAX) {
            respond_error(ctx, st, c, 404);
            return;
        }
        c->index_tried = true;
        c->walk = len;
        memcpy(c->fspath + len, "/index.html", 12);
        walk_step(ctx, st, c);
        return;
    }
    c->file = m->chan;
    c->size = m->size;
    c->phase = C_STAT;
    fs_stat_t s = {conn_req(st, c)};
    if (fs_stat_send(ctx, c->file, &s) < 0)
        respond_error(ctx, st, c, 500);
}

/* The file is open and its attributes known: the response. */
static void file_attr(os_ctx_t *ctx, httpd_state_t *st, conn_t *c, const fs_attr_t *a)
{
    char extra[256], date[40];
    c->size = a->size;
    http_date_format(a->mtime, date, sizeof date);
    int n = snprintf(extra, sizeof extra, "Last-Modified: %s\r\nAccept-Ranges: bytes\r\n", date);
    if (c->has_ims && (int64_t)a->mtime <= c->ims) {
        close_file(ctx, c);
        c->method = HTTP_HEAD; /* no body */
        respond_head(ctx, st, c, 304, NULL, 0, extra, NULL, 0);
        /* a 304 carries no Content-Length of a body it does not send: it is 0 here, harmless */
        return;
    }
    uint64_t first = 0, last = 0;
    int r = c->range[0] ? http_range(c->range, strlen(c->range), c->size, &first, &last) : 0;
    if (r < 0) {
        snprintf(extra + n, sizeof extra - (size_t)n, "Content-Range: bytes */%llu\r\n",
                 (unsigned long long)c->size);
        close_file(ctx, c);
        char body[] = "416 Range Not Satisfiable\n";
        respond_head(ctx, st, c, 416, "text/plain; charset=utf-8", sizeof body - 1, extra, body,
                     sizeof body - 1);
        return;
    }
    int status = 200;
    c->off = 0;
    c->end = c->size;
    if (r == 1) {
        status = 206;
        c->off = first;
        c->end = last + 1;
        snprintf(extra + n, sizeof extra - (size_t)n, "Content-Range: bytes %llu-%llu/%llu\r\n",
                 (unsigned long long)first, (unsigned long long)last, (unsigned long long)c->size);
    }
    if (c->method == HTTP_HEAD)
        c->end = c->off; /* the head only; Content-Length still says the body's size */
    uint64_t length = r == 1 ? last + 1 - first : c->size;
    c->body_bytes = 0;
    respond_head(ctx, st, c, status, http_mime(c->fspath), length, extra, NULL, 0);
}

static void start_status(os_ctx_t *ctx, httpd_state_t *st, conn_t *c)
{
    c->phase = C_STATUS;
    c->pending = 0;
    c->have_disk = c->have_net = false;
    if (st->fs_up) {
        fs_statfs_t m = {conn_req(st, c)};
        if (fs_statfs_send(ctx, st->fs, &m) == 0)
            c->pending++;
    }
    if (st->net_up) {
        net_status_t m = {conn_req(st, c)};
        if (net_status_send(ctx, st->net, &m) == 0)
            c->pending++;
    }
    if (c->pending == 0) {
        size_t n = httpd_status_json(ctx, st, c);
        respond_head(ctx, st, c, 200, "application/json", n, "Cache-Control: no-store\r\n",
                     st->json, n);
    }
}

static void status_answered(os_ctx_t *ctx, httpd_state_t *st, conn_t *c)
{
    if (c->phase != C_STATUS || --c->pending > 0)
        return;
    size_t n = httpd_status_json(ctx, st, c);
    respond_head(ctx, st, c, 200, "application/json", n, "Cache-Control: no-store\r\n", st->json,
                 n);
}

/* A whole request head is at c->in (head bytes): route it. */
static void handle_request(os_ctx_t *ctx, httpd_state_t *st, conn_t *c, const http_req_t *r)
{
    st->requests++;
    c->method = r->method;
    snprintf(c->method_name, sizeof c->method_name, "%s", r->method_name);
    c->keep = r->keep_alive;
    c->has_ims = r->has_ims;
    c->ims = r->ims;
    c->range[0] = 0;
    if (r->range && r->range_len < sizeof c->range) {
        memcpy(c->range, r->range, r->range_len);
        c->range[r->range_len] = 0;
    }
    c->skip = r->content_length;
    c->status = 0;
    c->body_bytes = 0;
    c->index_tried = false;
    int rc = http_path_normalise(r->target, r->target_len, c->path, sizeof c->path);
    if (rc < 0) {
        snprintf(c->path, sizeof c->path, "-");
        respond_error(ctx, st, c, -rc);
        return;
    }
    if (r->method == HTTP_OTHER) {
        respond_error(ctx, st, c, 405);
        return;
    }
    if (strcmp(c->path, "/status") == 0) {
        start_status(ctx, st, c);
        return;
    }
    int n = snprintf(c->fspath, sizeof c->fspath, "%s%s", st->cfg.root, c->path);
    if (n < 0 || (size_t)n >= sizeof c->fspath) {
        respond_error(ctx, st, c, 414);
        return;
    }
    while (n > 0 && c->fspath[n - 1] == '/' && (size_t)n > strlen(st->cfg.root))
        c->fspath[--n] = 0; /* "/www/dir/" is the directory "/www/dir" */
    c->walk = strlen(st->cfg.root);
    walk_step(ctx, st, c);
}

/* Parse what has come in, while the connection waits for a request. */
static void conn_process(os_ctx_t *ctx, httpd_state_t *st, conn_t *c)
{
    if (c->processing)
        return; /* finish() inside our loop: the loop goes on with the next request */
    c->processing = true;
    while (c->phase == C_READING) {
        if (c->skip > 0) {
            size_t n = c->skip < c->in_len ? (size_t)c->skip : c->in_len;
            memmove(c->in, c->in + n, c->in_len - n);
            c->in_len -= n;
            c->skip -= n;
            if (c->skip > 0)
                break;
        }
        http_req_t r;
        int rc = http_parse_request(c->in, c->in_len, &r);
        if (rc == 0)
            break;
        if (rc < 0) {
            st->requests++;
            refused_method(c, &r);
            snprintf(c->path, sizeof c->path, "-");
            c->in_len = 0;
            respond_error(ctx, st, c, -rc);
            return;
        }
        /* the head moves to scratch and out of the buffer before it is answered: an answer
         * that completes at once comes back here for the next pipelined request */
        memcpy(st->head, c->in, (size_t)rc);
        memmove(c->in, c->in + rc, c->in_len - (size_t)rc);
        c->in_len -= (size_t)rc;
        http_parse_request(st->head, (size_t)rc, &r);
        handle_request(ctx, st, c, &r);
    }
    if (c->phase == C_READING && c->eof)
        conn_free(ctx, c); /* the client is done sending and nothing is left to answer */
    c->processing = false;
}

/* ---- connections ------------------------------------------------------------------------- */

static void drain_end(os_ctx_t *ctx, drain_t *d)
{
    os_handle_close(ctx, d->chan);
    d->chan = OS_HANDLE_NONE;
}

/* After a 503: our FIN, then read to the client's (a drain slot), or close now if none is free. */
static void drain_start(os_ctx_t *ctx, httpd_state_t *st, os_handle_t chan)
{
    tcp_shutdown_t how = {1};
    for (int i = 0; i < HTTPD_DRAIN_MAX; i++) {
        drain_t *d = &st->drains[i];
        if (d->chan == OS_HANDLE_NONE) {
            if (tcp_shutdown_send(ctx, chan, &how) < 0)
                break; /* the queue is full: no FIN of ours to wait behind */
            d->chan = chan;
            d->deadline = os_clock_now(ctx) + (uint64_t)HTTPD_DRAIN_MS * 1000000u;
            return;
        }
    }
    os_handle_close(ctx, chan);
}

/* An event on a draining connection: data is dropped; its FIN, an error or its close ends it. */
static void on_drain(os_ctx_t *ctx, drain_t *d, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        drain_end(ctx, d);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    bool done = ev->type != tcp_msg_data;
    iface_discard(ctx, ev);
    if (done)
        drain_end(ctx, d);
}

static void on_accepted(os_ctx_t *ctx, httpd_state_t *st, const os_event_t *ev)
{
    tcp_accepted_t m;
    if (tcp_accepted_decode(ev, &m) < 0) {
        iface_discard(ctx, ev);
        return;
    }
    for (int i = 0; i < HTTPD_CONNS_MAX; i++) {
        conn_t *c = &st->conns[i];
        if (c->phase == C_FREE) {
            c->phase = C_READING;
            c->chan = m.chan;
            c->gen = ++st->next_gen & 0xffffff;
            c->held = c->eof = c->processing = false;
            c->file = OS_HANDLE_NONE;
            c->in_len = 0;
            c->skip = 0;
            c->path[0] = 0;
            c->deadline = os_clock_now(ctx) + (uint64_t)st->cfg.timeout_ms * 1000000u;
            return;
        }
    }
    /* past the limit: a 503 on its way, then the channel closes after it */
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Server: orrery-httpd\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 24\r\n"
                               "Retry-After: 1\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "503 Service Unavailable\n";
    memcpy(st->data.data, busy, sizeof busy - 1);
    st->data.data_len = sizeof busy - 1;
    tcp_data_send(ctx, m.chan, &st->data);
    drain_start(ctx, st, m.chan);
    st->refused++;
    if (st->cfg.log)
        os_log(ctx, "- - 503 24 (over %d connections)", HTTPD_CONNS_MAX);
}

static void on_conn(os_ctx_t *ctx, httpd_state_t *st, conn_t *c, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        conn_free(ctx, c);
        return;
    }
    if (ev->kind == OS_EV_WRITABLE) {
        conn_pump(ctx, st, c);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->type == tcp_msg_data && tcp_data_decode(ev, &st->data) == 0) {
        size_t n = st->data.data_len;
        if (c->phase != C_READING || c->in_len + n > sizeof c->in) {
            conn_free(ctx, c); /* cannot happen while we hold the channel */
            return;
        }
        memcpy(c->in + c->in_len, st->data.data, n);
        c->in_len += n;
        conn_process(ctx, st, c);
    } else if (ev->type == tcp_msg_eof) {
        c->eof = true;
        if (c->phase == C_READING)
            conn_process(ctx, st, c);
    } else if (ev->type == tcp_msg_error) {
        tcp_error_t e;
        if (tcp_error_decode(ev, &e) == 0 && e.type == 0)
            conn_free(ctx, c);
    } else {
        iface_discard(ctx, ev);
    }
}

/* A file channel's answer: attributes or a piece of the body. */
static void on_file(os_ctx_t *ctx, httpd_state_t *st, conn_t *c, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED) {
        /* the fs server went away under us */
        if (c->phase == C_SENDING) {
            conn_free(ctx, c);
        } else {
            respond_error(ctx, st, c, 500);
        }
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    union {
        fs_attr_t attr;
        fs_data_t data;
    } m;
    if (c->phase == C_STAT && fs_attr_decode(ev, &m.attr) == 0) {
        file_attr(ctx, st, c, &m.attr);
    } else if (c->phase == C_SENDING && c->reading && fs_data_decode(ev, &m.data) == 0) {
        c->reading = false;
        if (m.data.data_len == 0) {
            conn_free(ctx, c); /* the file shrank under us: the promised length cannot come */
            return;
        }
        if (m.data.data_len > c->end - c->off) {
            conn_free(ctx, c); /* more than we asked for: past the Content-Length we promised */
            return;
        }
        memcpy(c->out, m.data.data, m.data.data_len);
        c->out_len = m.data.data_len;
        c->out_off = 0;
        c->off += m.data.data_len;
        c->body_bytes += m.data.data_len;
        conn_pump(ctx, st, c);
    } else if (c->phase == C_STAT || (c->phase == C_SENDING && c->reading)) {
        /* an error, or anything else where attributes or data were due (a confused server):
         * either way what we wait for will not come, and the connection must not wait */
        iface_discard(ctx, ev);
        if (c->phase == C_SENDING)
            conn_free(ctx, c);
        else
            respond_error(ctx, st, c, 500);
    } else {
        iface_discard(ctx, ev);
    }
}

/* ---- the fs and net control channels ----------------------------------------------------- */

static void on_fs_control(os_ctx_t *ctx, httpd_state_t *st, const os_event_t *ev)
{
    union {
        fs_opened_t opened;
        fs_fsinfo_t info;
        fs_reply_t reply;
    } m;
    if (fs_opened_decode(ev, &m.opened) == 0) {
        conn_t *c = conn_of_req(st, m.opened.req);
        if (!c || c->phase != C_WALK) {
            os_handle_close(ctx, m.opened.chan);
            return;
        }
        walk_opened(ctx, st, c, &m.opened);
    } else if (fs_fsinfo_decode(ev, &m.info) == 0) {
        conn_t *c = conn_of_req(st, m.info.req);
        if (c && c->phase == C_STATUS) {
            c->disk = m.info;
            c->have_disk = true;
            status_answered(ctx, st, c);
        }
    } else if (fs_reply_decode(ev, &m.reply) == 0) {
        conn_t *c = conn_of_req(st, m.reply.req);
        if (!c)
            return;
        if (c->phase == C_STATUS) {
            status_answered(ctx, st, c);
        } else if (c->phase == C_WALK) {
            int s = m.reply.status;
            respond_error(
                ctx, st, c,
                s == OS_ENOENT || s == OS_ENOTDIR || s == OS_ENAMETOOLONG || s == OS_EINVAL ? 404
                : s == OS_EACCES                                                            ? 403
                                                                                            : 500);
        }
    } else {
        iface_discard(ctx, ev);
    }
}

static void on_net(os_ctx_t *ctx, httpd_state_t *st, const os_event_t *ev)
{
    union {
        net_counters_t counters;
        net_info_t info;
        net_error_t error;
    } m;
    if (net_counters_decode(ev, &m.counters) == 0) {
        conn_t *c = conn_of_req(st, m.counters.req);
        if (c && c->phase == C_STATUS) {
            c->net = m.counters;
            c->have_net = true;
            status_answered(ctx, st, c);
        }
    } else if (net_info_decode(ev, &m.info) == 0) {
        /* the counters follow */
    } else {
        iface_discard(ctx, ev);
    }
}

/* fs went away: every request waiting on it gets 500; the next request reconnects. */
static void fs_gone(os_ctx_t *ctx, httpd_state_t *st)
{
    os_handle_close(ctx, st->fs);
    st->fs = OS_HANDLE_NONE;
    st->fs_up = false;
    for (int i = 0; i < HTTPD_CONNS_MAX; i++) {
        conn_t *c = &st->conns[i];
        if (c->phase == C_WALK)
            respond_error(ctx, st, c, 500);
        else if (c->phase == C_STATUS)
            status_answered(ctx, st, c);
    }
}

static void on_init(os_ctx_t *ctx, httpd_state_t *st, const os_event_t *ev)
{
    union {
        init_connected_t conn;
        init_reply_t reply;
    } m;
    if (init_connected_decode(ev, &m.conn) == 0) {
        if (m.conn.req == REQ_TCP) {
            st->tcp = m.conn.chan;
            tcp_listen_t l = {
                .req = REQ_LISTEN, .addr = 0, .port = st->cfg.port, .backlog = TCP_BACKLOG_MAX};
            tcp_listen_send(ctx, st->tcp, &l);
        } else if (m.conn.req == REQ_FS) {
            st->fs = m.conn.chan;
            st->fs_up = true;
            st->fs_connecting = false;
        } else if (m.conn.req == REQ_NET) {
            st->net = m.conn.chan;
            st->net_up = true;
        } else {
            os_handle_close(ctx, m.conn.chan);
        }
    } else if (init_reply_decode(ev, &m.reply) == 0 && m.reply.status < 0) {
        if (m.reply.req == REQ_TCP) {
            /* no tcpip (no net0, or not in the manifest): nothing to serve, quietly */
            os_exit(ctx, 0);
        } else if (m.reply.req == REQ_FS) {
            st->fs_connecting = false; /* the next request tries again */
        }
    } else {
        iface_discard(ctx, ev);
    }
}

static void on_tcp_control(os_ctx_t *ctx, httpd_state_t *st, const os_event_t *ev)
{
    union {
        tcp_listening_t ok;
        tcp_reply_t reply;
    } m;
    if (tcp_listening_decode(ev, &m.ok) == 0) {
        st->listener = m.ok.chan;
        os_log(ctx, "serving %s on tcp port %u", st->cfg.root[0] ? st->cfg.root : "/",
               (unsigned)m.ok.port);
    } else if (tcp_reply_decode(ev, &m.reply) == 0) {
        os_log(ctx, "listen on tcp port %u: %s", (unsigned)st->cfg.port,
               os_strerror(m.reply.status));
        os_exit(ctx, 1);
    } else {
        iface_discard(ctx, ev);
    }
}

/* ---- the timer: request heads that take too long ----------------------------------------- */

static void arm_timer(os_ctx_t *ctx, httpd_state_t *st)
{
    uint64_t next = 0;
    for (int i = 0; i < HTTPD_CONNS_MAX; i++) {
        const conn_t *c = &st->conns[i];
        if (c->phase == C_READING && (next == 0 || c->deadline < next))
            next = c->deadline;
    }
    for (int i = 0; i < HTTPD_DRAIN_MAX; i++) {
        const drain_t *d = &st->drains[i];
        if (d->chan != OS_HANDLE_NONE && (next == 0 || d->deadline < next))
            next = d->deadline;
    }
    if (next)
        os_timer_set(ctx, st->timer, next);
    else
        os_timer_cancel(ctx, st->timer);
}

static void on_timer(os_ctx_t *ctx, httpd_state_t *st)
{
    uint64_t now = os_clock_now(ctx);
    for (int i = 0; i < HTTPD_CONNS_MAX; i++) {
        conn_t *c = &st->conns[i];
        if (c->phase != C_READING || c->deadline > now)
            continue;
        if (c->in_len == 0 && c->skip == 0) {
            conn_free(ctx, c); /* an idle keep-alive connection: closed without a word */
        } else {
            http_req_t r;
            http_parse_request(c->in, c->in_len, &r); /* incomplete: only its method */
            refused_method(c, &r);
            snprintf(c->path, sizeof c->path, "-");
            c->in_len = 0;
            st->requests++;
            respond_error(ctx, st, c, 408);
        }
    }
    for (int i = 0; i < HTTPD_DRAIN_MAX; i++) {
        drain_t *d = &st->drains[i];
        if (d->chan != OS_HANDLE_NONE && d->deadline <= now)
            drain_end(ctx, d);
    }
}

/* ---- the task ------------------------------------------------------------------------------ */

static void httpd_start(os_ctx_t *ctx)
{
    httpd_state_t *st = os_state(ctx);
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    char err[160];
    if (httpd_config_parse(arg, len, &st->cfg, err, sizeof err) < 0) {
        os_log(ctx, "%s", err);
        os_exit(ctx, 2);
    }
    st->tcp = st->listener = st->fs = st->net = OS_HANDLE_NONE;
    for (int i = 0; i < HTTPD_CONNS_MAX; i++) {
        st->conns[i].chan = OS_HANDLE_NONE;
        st->conns[i].file = OS_HANDLE_NONE;
    }
    for (int i = 0; i < HTTPD_DRAIN_MAX; i++)
        st->drains[i].chan = OS_HANDLE_NONE;
    if (os_timer_create(ctx, &st->timer) < 0) {
        os_log(ctx, "no timer");
        os_exit(ctx, 1);
    }
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
    st->fs_connecting = true;
    init_connect_iface(ctx, REQ_FS, &fs_iface);
    init_connect_iface(ctx, REQ_NET, &net_iface); /* for /status; refused without reach=net */
}

static void httpd_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    httpd_state_t *st = os_state(ctx);
    os_handle_t h = ev->handle;
    if (h == init_channel(ctx)) {
        if (ev->kind == OS_EV_MESSAGE)
            on_init(ctx, st, ev);
        else if (ev->kind == OS_EV_PEER_CLOSED)
            os_exit(ctx, 1);
    } else if (h == st->timer && ev->kind == OS_EV_TIMER) {
        on_timer(ctx, st);
    } else if (h == st->tcp || h == st->listener) {
        if (ev->kind == OS_EV_PEER_CLOSED) {
            os_log(ctx, "the tcpip server went away; exiting");
            os_exit(ctx, 1);
        }
        if (ev->kind != OS_EV_MESSAGE)
            return;
        if (h == st->tcp)
            on_tcp_control(ctx, st, ev);
        else
            on_accepted(ctx, st, ev);
    } else if (h == st->fs && st->fs != OS_HANDLE_NONE) {
        if (ev->kind == OS_EV_PEER_CLOSED)
            fs_gone(ctx, st);
        else if (ev->kind == OS_EV_MESSAGE)
            on_fs_control(ctx, st, ev);
    } else if (h == st->net && st->net != OS_HANDLE_NONE) {
        if (ev->kind == OS_EV_PEER_CLOSED) {
            os_handle_close(ctx, st->net);
            st->net = OS_HANDLE_NONE;
            st->net_up = false;
        } else if (ev->kind == OS_EV_MESSAGE) {
            on_net(ctx, st, ev);
        }
    } else {
        bool found = false;
        for (int i = 0; i < HTTPD_CONNS_MAX && !found; i++) {
            conn_t *c = &st->conns[i];
            if (c->phase == C_FREE)
                continue;
            if (c->chan == h) {
                on_conn(ctx, st, c, ev);
                found = true;
            } else if (c->file != OS_HANDLE_NONE && c->file == h) {
                on_file(ctx, st, c, ev);
                found = true;
            }
        }
        for (int i = 0; i < HTTPD_DRAIN_MAX && !found; i++) {
            if (st->drains[i].chan == h) {
                on_drain(ctx, &st->drains[i], ev);
                found = true;
            }
        }
        if (!found && ev->kind == OS_EV_MESSAGE)
            iface_discard(ctx, ev);
    }
    arm_timer(ctx, st);
}

const os_program_t orrery_httpd = {"httpd", sizeof(httpd_state_t), httpd_start, httpd_on_event};
