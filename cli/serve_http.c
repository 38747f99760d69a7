/* serve_http.c — `orrery serve`'s clients: parsing requests, forwarding them, relaying answers. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"
#include "serve.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- clients -------------------------------------------------------------------------------- */

void serve_client_free(client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->up >= 0)
        close(c->up);
    free(c->req);
    free(c->fwd);
    free(c->head);
    free(c->out);
    if (c->inst)
        serve_inst_kill(c->inst);
    memset(c, 0, sizeof(*c));
    c->fd = c->up = -1;
}

static int out_add(client_t *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o)
            return -1;
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

/* Answer with our own status and a text body; the connection closes once it is sent. The
 * instance (if any) is thrown away. */
void serve_client_error(client_t *c, int code, const char *fmt, ...)
{
    char body[1024], head[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (serve_state.cfg.verbose)
        fprintf(stderr, "orrery serve: %d %s", code, body);
    if (c->inst)
        serve_inst_kill(c->inst);
    c->inst = NULL;
    if (c->up >= 0) {
        close(c->up);
        c->up = -1;
    }
    c->st = C_REPLY;
    if (c->answered) { /* part of the instance's answer went out: all we can do is close */
        c->out_len = c->out_off;
        return;
    }
    c->answered = true;
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      code, reason_phrase(code), strlen(body));
    c->out_len = c->out_off = 0;
    if (out_add(c, head, (size_t)hl) != 0 || out_add(c, body, strlen(body)) != 0)
        c->out_len = 0;
}

static bool hdr_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* The request's head is complete (req[0..head_end)): check it, note the body's length, and
 * make the request we forward (its Connection headers replaced by "Connection: close"). 0, or
 * -1 after answering an error. */
static int request_parse(client_t *c, size_t head_end)
{
    const char *p = c->req, *end = c->req + head_end;
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol || memchr(p, ' ', (size_t)(eol - p)) == NULL) {
        serve_client_error(c, 400, "orrery serve: malformed request line\n");
        return -1;
    }
    size_t body = 0;
    size_t cap = head_end + 64;
    c->fwd = malloc(cap);
    if (!c->fwd) {
        serve_client_error(c, 503, "orrery serve: out of memory\n");
        return -1;
    }
    size_t fl = 0;
    memcpy(c->fwd, p, (size_t)(eol - p) + 2);
    fl = (size_t)(eol - p) + 2;
    for (const char *l = eol + 2; l < end - 2;) {
        const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
        size_t len = (size_t)(le - l);
        if (hdr_is(l, len, "Content-Length")) {
            char num[32];
            const char *v = l + 15;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = (size_t)(le - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            uint64_t b;
            snprintf(num, sizeof(num), "%.*s", (int)(vl < 31 ? vl : 31), v);
            if (vl >= 31 || !cli_parse_u64(num, 0, UINT64_MAX, &b)) {
                serve_client_error(c, 400, "orrery serve: bad Content-Length\n");
                return -1;
            }
            if (b > BODY_MAX) {
                serve_client_error(c, 413, "orrery serve: a request body is at most %d bytes\n",
                                   BODY_MAX);
                return -1;
            }
            body = (size_t)b;
        } else if (hdr_is(l, len, "Transfer-Encoding")) {
            serve_client_error(c, 501,
                               "orrery serve: chunked request bodies are not supported; "
                               "send Content-Length\n");
            return -1;
        }
        if (!hdr_is(l, len, "Connection") && !hdr_is(l, len, "Keep-Alive") &&
            !hdr_is(l, len, "Proxy-Connection")) {
            memcpy(c->fwd + fl, l, len + 2);
            fl += len + 2;
        }
        l = le + 2;
    }
    static const char close_hdr[] = "Connection: close\r\n\r\n";
    memcpy(c->fwd + fl, close_hdr, sizeof(close_hdr) - 1);
    fl += sizeof(close_hdr) - 1;
    c->fwd_len = fl;
    c->need = head_end + body;
    return 0;
}

static unsigned waiting_clients(void)
{
    unsigned n = 0;
    for (size_t i = 0; i < CLIENTS_MAX; i++)
        n += serve_state.cl[i].used && serve_state.cl[i].st == C_WAIT && !serve_state.cl[i].inst;
    return n;
}

/* Read from the client until its request is whole; then it waits for an instance. */
void serve_client_read(client_t *c)
{
    for (;;) {
        if (c->req_len == c->req_cap) {
            size_t cap = c->req_cap ? c->req_cap * 2 : 4096;
            char *r = realloc(c->req, cap + 1);
            if (!r) {
                serve_client_error(c, 503, "orrery serve: out of memory\n");
                return;
            }
            c->req = r;
            c->req_cap = cap;
        }
        ssize_t r = read(c->fd, c->req + c->req_len, c->req_cap - c->req_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) { /* gone before sending a whole request: nothing to answer */
            c->st = C_REPLY;
            c->out_len = c->out_off = 0;
            c->answered = true;
            return;
        }
        c->req_len += (size_t)r;
        if (!c->need) {
            c->req[c->req_len] = '\0';
            char *he = memmem(c->req, c->req_len, "\r\n\r\n", 4);
            if (!he) {
                if (c->req_len > HEAD_MAX)
                    serve_client_error(c, 431, "orrery serve: a request head is at most %d bytes\n",
                                       HEAD_MAX);
                continue;
            }
            if (request_parse(c, (size_t)(he + 4 - c->req)) != 0)
                return;
        }
        if (c->req_len >= c->need)
            break;
    }
    /* append the body (whatever followed the head, up to need) to the forwarded request */
    char *he = memmem(c->req, c->req_len, "\r\n\r\n", 4);
    size_t head_end = (size_t)(he + 4 - c->req), body = c->need - head_end;
    char *f = realloc(c->fwd, c->fwd_len + body);
    if (!f && body) {
        serve_client_error(c, 503, "orrery serve: out of memory\n");
        return;
    }
    if (f)
        c->fwd = f;
    memcpy(c->fwd + c->fwd_len, c->req + head_end, body);
    c->fwd_len += body;
    c->st = C_WAIT;
    c->seq = ++serve_state.seq;
    /* it waits only when no instance is idle and none may start, and then up to --queue */
    if (serve_idle_instances() == 0 && serve_live_instances() >= serve_state.cfg.max_instances &&
        waiting_clients() > serve_state.cfg.queue)
        serve_client_error(c, 503,
                           "orrery serve: busy: %u instances in flight and %u requests "
                           "waiting (--max-instances, --queue)\n",
                           serve_state.cfg.max_instances, serve_state.cfg.queue);
}

/* Connect to the instance's forwarded port (non-blocking). */
static void client_connect(client_t *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->inst->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        serve_client_error(c, 502, "orrery serve: socket: %s\n", strerror(errno));
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        close(fd);
        c->retry_at = now_ns() + MS(RETRY_MS);
        c->st = C_WAIT;
        return;
    }
    c->up = fd;
    c->fwd_off = 0;
    c->head_len = 0;
    c->st = C_SEND;
}

/* The forwarded connection ended with nothing from httpd: slirp accepted before the guest
 * could (a SYN it answered with RST); connect again shortly. */
static void client_retry(client_t *c)
{
    close(c->up);
    c->up = -1;
    c->st = C_WAIT;
    c->retry_at = now_ns() + MS(RETRY_MS);
}

/* The response's head is whole in c->head[0..end): send it on with our headers added and its
 * Connection headers replaced, then whatever followed it. */
static void response_head(client_t *c, size_t end)
{
    inst_t *in = c->inst;
    char *eol = memmem(c->head, end, "\r\n", 2);
    char extra[160];
    int el = snprintf(extra, sizeof(extra),
                      "orrery-boot-time: %.1f\r\norrery-instance: %s\r\nConnection: close\r\n",
                      (double)(in->t_ready - in->t_start) / 1e6, in->id);
    out_add(c, c->head, (size_t)(eol - c->head) + 2);
    out_add(c, extra, (size_t)el);
    for (char *l = eol + 2; l < c->head + end - 2;) {
        char *le = memmem(l, (size_t)(c->head + end - l), "\r\n", 2);
        size_t len = (size_t)(le - l);
        if (!hdr_is(l, len, "Connection") && !hdr_is(l, len, "Keep-Alive"))
            out_add(c, l, len + 2);
        l = le + 2;
    }
    out_add(c, "\r\n", 2);
    out_add(c, c->head + end, c->head_len - end);
    c->head_done = true;
    c->answered = true;
}

void serve_client_up_read(client_t *c)
{
    char buf[CHUNK];
    ssize_t r = read(c->up, buf, sizeof(buf));
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        if (!c->head_done && c->head_len == 0) {
            client_retry(c);
            return;
        }
        if (!c->head_done) {
            serve_client_error(c, 502, "orrery serve: instance %s closed mid-head\n", c->inst->id);
            return;
        }
        c->up_eof = true;
        close(c->up);
        c->up = -1;
        serve_inst_kill(c->inst); /* answered: the instance goes */
        c->inst = NULL;
        c->st = C_REPLY;
        return;
    }
    if (c->head_done) {
        out_add(c, buf, (size_t)r);
        return;
    }
    char *h = realloc(c->head, c->head_len + (size_t)r + 1);
    if (!h) {
        serve_client_error(c, 502, "orrery serve: out of memory\n");
        return;
    }
    c->head = h;
    memcpy(c->head + c->head_len, buf, (size_t)r);
    c->head_len += (size_t)r;
    c->head[c->head_len] = '\0';
    char *he = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (he)
        response_head(c, (size_t)(he + 4 - c->head));
    else if (c->head_len > HEAD_MAX)
        serve_client_error(c, 502, "orrery serve: httpd's response head is over %d bytes\n",
                           HEAD_MAX);
}

void serve_client_up_write(client_t *c)
{
    if (c->st == C_SEND) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->up, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            client_retry(c);
            return;
        }
        ssize_t w = send(c->up, c->fwd + c->fwd_off, c->fwd_len - c->fwd_off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            client_retry(c);
            return;
        }
        if (w > 0)
            c->fwd_off += (size_t)w;
        if (c->fwd_off == c->fwd_len)
            c->st = C_RELAY;
    }
}

void serve_client_write(client_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0) { /* the client went away: nothing more to send */
            c->out_off = c->out_len = 0;
            if (c->st != C_REPLY)
                serve_client_error(c, 502, "client gone\n");
            c->out_off = c->out_len = 0;
            c->st = C_REPLY;
            return;
        }
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
}

void serve_check_clients(void)
{
    uint64_t now = now_ns();
    for (size_t i = 0; i < CLIENTS_MAX; i++) {
        client_t *c = &serve_state.cl[i];
        if (!c->used)
            continue;
        if (c->st == C_READ && now > c->deadline)
            serve_client_error(c, 408, "orrery serve: the request did not arrive within %d s\n",
                               READ_TIMEOUT_S);
        else if (c->st == C_WAIT && c->inst && c->inst->ready && now >= c->retry_at)
            client_connect(c);
        if (c->inst && c->st != C_REPLY && now > c->deadline)
            serve_client_error(c, 504, "orrery serve: instance %s did not answer within %u s\n",
                               c->inst->id, serve_state.cfg.timeout_s);
        if (c->st == C_REPLY && c->out_off == c->out_len && (c->up_eof || c->up < 0))
            serve_client_free(c);
    }
}

void serve_accept_clients(void)
{
    for (;;) {
        client_t *c = NULL;
        for (size_t i = 0; i < CLIENTS_MAX && !c; i++)
            if (!serve_state.cl[i].used)
                c = &serve_state.cl[i];
        if (!c)
            return;
        int fd = accept4(serve_state.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        memset(c, 0, sizeof(*c));
        c->used = true;
        c->fd = fd;
        c->up = -1;
        c->st = C_READ;
        c->deadline = now_ns() + MS(READ_TIMEOUT_S * 1000);
        serve_client_read(c);
    }
}
