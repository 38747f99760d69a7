/* serve.c — `orrery serve`: a reverse proxy on the host that boots a fresh Orrery for every
 * request, forwards the request to its httpd through a slirp hostfwd port, and throws the
 * instance away (Starina's vmcgi, faster). One thread, one poll loop. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <image.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_INSTANCES_MAX = 64,
    CLIENTS_MAX = 256,      /* connections held at once; more wait in the listen backlog */
    HEAD_MAX = 16 * 1024,   /* a request's or a response's head: 431 / 502 beyond */
    BODY_MAX = 1024 * 1024, /* a request body (Content-Length): 413 beyond */
    LOG_KEEP = 4096,        /* the last of an instance's output, for reasons */
    KILL_GRACE_MS = 2000,   /* SIGTERM, then SIGKILL of the group after this */
    READ_TIMEOUT_S = 30,    /* a client that has not sent its whole request: 408 */
    RETRY_MS = 5,           /* a forwarded connection closed with no answer: again after */
    CHUNK = 64 * 1024,
};

/* The two lines that make an instance ready (docs/httpd-serve.md): tcpip has its address (a
 * connection through hostfwd reaches the guest) and httpd listens on port 80. */
#define READY_NET "[tcpip] net0 "
#define READY_HTTPD "[httpd] serving "
#define READY_FS "[fs] blk0: "
#define PROBE_REQ "HEAD / HTTP/1.1\r\nHost: orrery-serve\r\nConnection: close\r\n\r\n"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define MS(x) ((uint64_t)(x)*1000000u)

typedef struct serve_config {
    unsigned pool, max_instances, queue, timeout_s, boot_timeout_s, grace_s;
    bool qemu, verbose;
    const char *manifest;
} serve_config_t;

/* ---- state ---------------------------------------------------------------------------------- */

struct client;

typedef struct inst {
    bool used;
    pid_t pid;   /* also its process group; -1 once reaped */
    int in, out; /* its stdin (held open: end of input would shut it down), its output */
    int port;
    char id[40];
    uint64_t t_start, t_ready;
    bool seen_net, seen_httpd, seen_fs, ready;
    bool eof; /* its output ended */
    uint64_t eof_at;
    bool reaped;
    int wstatus;
    bool dying; /* thrown away: killed, waiting to be reaped */
    uint64_t kill_at;
    struct client *client;
    char log[LOG_KEEP + 1];
    size_t loglen;
    int probe; /* the readiness probe's connection, -1: none */
    size_t probe_sent, probe_got;
    char probe_buf[64];
    int probe_status; /* the last status it answered, 0: none */
    uint64_t probe_at;
    char carry[64];
    size_t carrylen;
} inst_t;

enum cstate { C_READ, C_WAIT, C_CONNECT, C_SEND, C_RELAY, C_REPLY };

typedef struct client {
    bool used;
    int fd;
    enum cstate st;
    uint64_t seq; /* arrival order: the queue is first come, first served */
    uint64_t deadline;
    char *req;                     /* the request as received, then as forwarded */
    size_t req_len, req_cap, need; /* need: the whole request's length once the head is read */
    char *fwd;
    size_t fwd_len, fwd_off;
    inst_t *inst;
    int up; /* the connection to the instance's forwarded port */
    uint64_t retry_at;
    char *head; /* the response's head, gathered to add our headers */
    size_t head_len;
    bool head_done, answered;
    char *out; /* bytes owed to the client */
    size_t out_len, out_off, out_cap;
    bool up_eof;
} client_t;

static struct {
    serve_config_t cfg;
    const char *self;
    char disk_arg[4200];
    int lfd;
    int sigpipe[2];
    inst_t inst[MAX_INSTANCES_MAX * 2]; /* serving, idle, booting and dying ones */
    client_t cl[CLIENTS_MAX];
    uint64_t seq, nboots;
    unsigned fails; /* boots that failed in a row: the pool is not refilled past 3 */
    bool stopping;
    uint32_t run_id;
    char tmp_manifest[4200]; /* ours to remove at the end, "" if none */
} S;

#define NELEM_INST (sizeof(S.inst) / sizeof(S.inst[0]))

static void on_signal(int sig)
{
    int e = errno;
    char c = (char)sig;
    if (write(S.sigpipe[1], &c, 1) < 0) {
    }
    errno = e;
}

/* ---- instances ------------------------------------------------------------------------------ */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static unsigned live_instances(void)
{
    unsigned n = 0;
    for (size_t i = 0; i < NELEM_INST; i++)
        n += S.inst[i].used && !S.inst[i].dying;
    return n;
}

static unsigned idle_instances(void)
{
    unsigned n = 0;
    for (size_t i = 0; i < NELEM_INST; i++)
        n += S.inst[i].used && !S.inst[i].dying && !S.inst[i].client;
    return n;
}

static void inst_say(inst_t *in, const char *what)
{
    if (S.cfg.verbose)
        fprintf(stderr, "orrery serve: instance %s: %s\n", in->id, what);
}

/* Start an instance: `orrery run` or `orrery qemu --machine microvm`, its own process group,
 * killed with us (PR_SET_PDEATHSIG). NULL after printing why (fork or pipe failed). */
static inst_t *inst_start(void)
{
    inst_t *in = NULL;
    for (size_t i = 0; i < NELEM_INST && !in; i++)
        if (!S.inst[i].used)
            in = &S.inst[i];
    if (!in)
        return NULL;
    int port = free_port();
    int pin[2], pout[2];
    if (port < 0 || pipe2(pin, O_CLOEXEC) != 0)
        return NULL;
    if (pipe2(pout, O_CLOEXEC) != 0) {
        close(pin[0]);
        close(pin[1]);
        return NULL;
    }
    char net[96];
    snprintf(net, sizeof(net), "user,hostfwd=tcp:127.0.0.1:%d-:80", port);
    const char *argv[16];
    int n = 0;
    argv[n++] = S.self;
    if (S.cfg.qemu) {
        argv[n++] = "qemu";
        argv[n++] = "--machine";
        argv[n++] = "microvm";
    } else {
        argv[n++] = "run";
    }
    argv[n++] = "--net";
    argv[n++] = net;
    argv[n++] = "--disk";
    argv[n++] = S.disk_arg;
    if (S.cfg.manifest) {
        argv[n++] = "--manifest";
        argv[n++] = S.cfg.manifest;
    }
    argv[n] = NULL;
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(pout[1], 2);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    if (pid < 0) {
        fprintf(stderr, "orrery serve: fork: %s\n", strerror(errno));
        close(pin[1]);
        close(pout[0]);
        return NULL;
    }
    setpgid(pid, pid);
    memset(in, 0, sizeof(*in));
    in->used = true;
    in->pid = pid;
    in->in = pin[1];
    in->out = pout[0];
    fcntl(in->out, F_SETFL, O_NONBLOCK);
    in->port = port;
    in->probe = -1;
    in->t_start = t0;
    snprintf(in->id, sizeof(in->id), "%08x-%llu", S.run_id, (unsigned long long)++S.nboots);
    inst_say(in, "started");
    return in;
}

static void probe_close(inst_t *in, bool again);

/* Throw it away: SIGTERM to its group now, SIGKILL after the grace, reaped in the loop. */
static void inst_kill(inst_t *in)
{
    if (in->dying)
        return;
    in->dying = true;
    in->client = NULL;
    probe_close(in, false);
    if (in->in >= 0) {
        close(in->in);
        in->in = -1;
    }
    if (!in->reaped)
        kill(-in->pid, SIGTERM);
    in->kill_at = now_ns() + MS(KILL_GRACE_MS);
}

/* The last line of its output that says something. */
static const char *inst_last_line(inst_t *in)
{
    static char line[256];
    char *end = in->log + in->loglen;
    while (end > in->log && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    char *start = end;
    while (start > in->log && start[-1] != '\n')
        start--;
    snprintf(line, sizeof(line), "%.*s", (int)(end - start), start);
    return line[0] ? line : "(no output)";
}

static void inst_read(inst_t *in)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(in->out, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            in->eof = true;
            close(in->out);
            in->out = -1;
            return;
        }
        /* the ready lines, also when one straddles two reads (the last 63 bytes carried) */
        char scan[64 + sizeof(buf) + 1];
        memcpy(scan, in->carry, in->carrylen);
        memcpy(scan + in->carrylen, buf, (size_t)r);
        size_t sl = in->carrylen + (size_t)r;
        scan[sl] = '\0';
        if (!in->seen_net && strstr(scan, READY_NET))
            in->seen_net = true;
        if (!in->seen_httpd && strstr(scan, READY_HTTPD))
            in->seen_httpd = true;
        if (!in->seen_fs && strstr(scan, READY_FS))
            in->seen_fs = true;
        in->carrylen = sl < 63 ? sl : 63;
        memcpy(in->carry, scan + sl - in->carrylen, in->carrylen);
        /* the last LOG_KEEP bytes of its output, for reasons */
        const char *src = buf;
        size_t n = (size_t)r;
        if (n > LOG_KEEP) {
            src += n - LOG_KEEP;
            n = LOG_KEEP;
        }
        if (in->loglen + n > LOG_KEEP) {
            size_t keep = LOG_KEEP - n;
            memmove(in->log, in->log + in->loglen - keep, keep);
            in->loglen = keep;
        }
        memcpy(in->log + in->loglen, src, n);
        in->loglen += n;
        in->log[in->loglen] = '\0';
    }
}

/* The probe: once the three lines went by, HEAD / until httpd answers with a status below 500
 * (at boot httpd may answer 500 while its fs connection is being made; slirp may accept before
 * the guest can, and close with nothing). Called from the loop; ready when it answers. */
static void probe_close(inst_t *in, bool again)
{
    if (in->probe >= 0)
        close(in->probe);
    in->probe = -1;
    in->probe_sent = in->probe_got = 0;
    if (again)
        in->probe_at = now_ns() + MS(RETRY_MS);
}

static void probe_step(inst_t *in, short revents)
{
    static const char req[] = PROBE_REQ;
    if (in->probe < 0) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)in->port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0)
            return;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
            close(fd);
            in->probe_at = now_ns() + MS(RETRY_MS);
            return;
        }
        in->probe = fd;
        return;
    }
    if (revents & (POLLERR | POLLHUP) && !(revents & POLLIN)) {
        probe_close(in, true);
        return;
    }
    if (in->probe_sent < sizeof(req) - 1 && (revents & POLLOUT)) {
        ssize_t w =
            send(in->probe, req + in->probe_sent, sizeof(req) - 1 - in->probe_sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            probe_close(in, true);
            return;
        }
        if (w > 0)
            in->probe_sent += (size_t)w;
    }
    if (revents & POLLIN) {
        ssize_t r = read(in->probe, in->probe_buf + in->probe_got,
                         sizeof(in->probe_buf) - 1 - in->probe_got);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            probe_close(in, true);
            return;
        }
        in->probe_got += (size_t)r;
        in->probe_buf[in->probe_got] = '\0';
        if (in->probe_got < 12 && !strchr(in->probe_buf, '\n'))
            return;
        int status = 0;
        sscanf(in->probe_buf, "HTTP/1.%*d %d", &status);
        in->probe_status = status;
        probe_close(in, status < 100 || status >= 500);
        if (status >= 100 && status < 500) {
            in->ready = true;
            in->t_ready = now_ns();
            inst_say(in, "ready");
        }
    }
}

/* Why it ended, for a 502's body. */
static void inst_reason(inst_t *in, char *why, size_t n)
{
    int ws = in->wstatus;
    if (in->reaped)
        snprintf(why, n, "instance %s %s (%s %d)%s: %s\n", in->id,
                 WIFSIGNALED(ws) ? "was killed" : "exited", WIFSIGNALED(ws) ? "signal" : "status",
                 WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws),
                 in->ready ? " while serving" : " before httpd was ready", inst_last_line(in));
    else
        snprintf(why, n, "instance %s closed its output%s: %s\n", in->id,
                 in->ready ? " while serving" : " before httpd was ready", inst_last_line(in));
}

/* ---- clients -------------------------------------------------------------------------------- */

static void client_free(client_t *c)
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
        inst_kill(c->inst);
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
static void client_error(client_t *c, int code, const char *fmt, ...)
{
    char body[1024], head[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (S.cfg.verbose)
        fprintf(stderr, "orrery serve: %d %s", code, body);
    if (c->inst)
        inst_kill(c->inst);
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
        client_error(c, 400, "orrery serve: malformed request line\n");
        return -1;
    }
    size_t body = 0;
    size_t cap = head_end + 64;
    c->fwd = malloc(cap);
    if (!c->fwd) {
        client_error(c, 503, "orrery serve: out of memory\n");
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
                client_error(c, 400, "orrery serve: bad Content-Length\n");
                return -1;
            }
            if (b > BODY_MAX) {
                client_error(c, 413, "orrery serve: a request body is at most %d bytes\n",
                             BODY_MAX);
                return -1;
            }
            body = (size_t)b;
        } else if (hdr_is(l, len, "Transfer-Encoding")) {
            client_error(c, 501,
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
        n += S.cl[i].used && S.cl[i].st == C_WAIT && !S.cl[i].inst;
    return n;
}

/* Read from the client until its request is whole; then it waits for an instance. */
static void client_read(client_t *c)
{
    for (;;) {
        if (c->req_len == c->req_cap) {
            size_t cap = c->req_cap ? c->req_cap * 2 : 4096;
            char *r = realloc(c->req, cap + 1);
            if (!r) {
                client_error(c, 503, "orrery serve: out of memory\n");
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
                    client_error(c, 431, "orrery serve: a request head is at most %d bytes\n",
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
        client_error(c, 503, "orrery serve: out of memory\n");
        return;
    }
    if (f)
        c->fwd = f;
    memcpy(c->fwd + c->fwd_len, c->req + head_end, body);
    c->fwd_len += body;
    c->st = C_WAIT;
    c->seq = ++S.seq;
    /* it waits only when no instance is idle and none may start, and then up to --queue */
    if (idle_instances() == 0 && live_instances() >= S.cfg.max_instances &&
        waiting_clients() > S.cfg.queue)
        client_error(c, 503,
                     "orrery serve: busy: %u instances in flight and %u requests "
                     "waiting (--max-instances, --queue)\n",
                     S.cfg.max_instances, S.cfg.queue);
}

/* Connect to the instance's forwarded port (non-blocking). */
static void client_connect(client_t *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->inst->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        client_error(c, 502, "orrery serve: socket: %s\n", strerror(errno));
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

static void client_up_read(client_t *c)
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
            client_error(c, 502, "orrery serve: instance %s closed mid-head\n", c->inst->id);
            return;
        }
        c->up_eof = true;
        close(c->up);
        c->up = -1;
        inst_kill(c->inst); /* answered: the instance goes */
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
        client_error(c, 502, "orrery serve: out of memory\n");
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
        client_error(c, 502, "orrery serve: httpd's response head is over %d bytes\n", HEAD_MAX);
}

static void client_up_write(client_t *c)
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

static void client_write(client_t *c)
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
                client_error(c, 502, "client gone\n");
            c->out_off = c->out_len = 0;
            c->st = C_REPLY;
            return;
        }
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* Give waiting clients instances (the first come first), start instances up to the limit, and
 * keep the pool's idle ones. */
static void dispatch(void)
{
    uint64_t now = now_ns();
    for (;;) {
        client_t *c = NULL;
        for (size_t i = 0; i < CLIENTS_MAX; i++)
            if (S.cl[i].used && S.cl[i].st == C_WAIT && !S.cl[i].inst &&
                (!c || S.cl[i].seq < c->seq))
                c = &S.cl[i];
        if (!c)
            break;
        inst_t *best = NULL;
        for (size_t i = 0; i < NELEM_INST; i++) {
            inst_t *in = &S.inst[i];
            if (in->used && !in->dying && !in->client &&
                (!best || (in->ready && !best->ready) ||
                 (in->ready == best->ready && in->t_start < best->t_start)))
                best = in;
        }
        if (!best && live_instances() < S.cfg.max_instances)
            best = inst_start();
        if (!best) {
            if (live_instances() == 0) { /* nothing could start: no process, no pipe */
                client_error(c, 502, "orrery serve: cannot start an instance: %s\n",
                             strerror(errno));
                continue;
            }
            break;
        }
        best->client = c;
        c->inst = best;
        c->deadline = (best->ready ? now : best->t_start) + MS(S.cfg.timeout_s * 1000);
        if (!best->ready)
            c->deadline =
                best->t_start + MS(S.cfg.boot_timeout_s * 1000) + MS(S.cfg.timeout_s * 1000);
    }
    while (!S.stopping && S.fails < 3 && idle_instances() < S.cfg.pool &&
           live_instances() < S.cfg.max_instances)
        if (!inst_start())
            break;
}

static void check_instances(void)
{
    uint64_t now = now_ns();
    for (size_t i = 0; i < NELEM_INST; i++) {
        inst_t *in = &S.inst[i];
        if (!in->used)
            continue;
        if (!in->reaped) {
            int ws;
            pid_t r = waitpid(in->pid, &ws, WNOHANG);
            if (r == in->pid) {
                in->reaped = true;
                in->wstatus = ws;
                kill(-in->pid, SIGKILL); /* QEMU or any other member its leader left behind */
            }
        }
        if (in->dying) {
            if (!in->reaped && now >= in->kill_at) {
                kill(-in->pid, SIGKILL);
                in->kill_at = now + MS(KILL_GRACE_MS);
            }
            if (in->reaped) {
                if (in->out >= 0)
                    close(in->out);
                in->used = false;
            }
            continue;
        }
        client_t *c = in->client;
        if (in->eof && !in->reaped) {
            /* its output ended: its status comes next, for the reason; one that closed its
             * output and lives on is killed */
            if (!in->eof_at)
                in->eof_at = now;
            if (now - in->eof_at < MS(KILL_GRACE_MS))
                continue;
            kill(-in->pid, SIGKILL);
        }
        if ((in->eof || in->reaped) && (!c || !c->answered)) {
            if (!in->ready)
                S.fails++;
            if (c) {
                char why[600];
                inst_reason(in, why, sizeof(why));
                client_error(c, 502, "orrery serve: %s", why);
            } else {
                char why[600];
                inst_reason(in, why, sizeof(why));
                fprintf(stderr, "orrery serve: %s", why);
                inst_kill(in);
            }
            continue;
        }
        if (in->ready)
            S.fails = 0;
        else if (in->seen_net && in->seen_httpd && in->seen_fs && in->probe < 0 &&
                 now >= in->probe_at)
            probe_step(in, 0);
        if (!in->ready && now - in->t_start > MS(S.cfg.boot_timeout_s * 1000)) {
            char why[600];
            if (in->probe_status)
                snprintf(why, sizeof(why), "httpd answers HEAD / with %d", in->probe_status);
            else if (in->seen_net && in->seen_httpd && in->seen_fs)
                snprintf(why, sizeof(why), "httpd does not answer on port 80");
            else
                snprintf(why, sizeof(why), "waiting for%s%s%s; its last line: %s",
                         in->seen_net ? "" : " '" READY_NET "'",
                         in->seen_fs ? "" : " '" READY_FS "'",
                         in->seen_httpd ? "" : " '" READY_HTTPD "'", inst_last_line(in));
            S.fails++;
            if (c) {
                client_error(c, 504, "orrery serve: instance %s was not ready within %u s (%s)\n",
                             in->id, S.cfg.boot_timeout_s, why);
            } else {
                fprintf(stderr, "orrery serve: instance %s was not ready within %u s (%s)\n",
                        in->id, S.cfg.boot_timeout_s, why);
                inst_kill(in);
            }
        }
    }
}

static void check_clients(void)
{
    uint64_t now = now_ns();
    for (size_t i = 0; i < CLIENTS_MAX; i++) {
        client_t *c = &S.cl[i];
        if (!c->used)
            continue;
        if (c->st == C_READ && now > c->deadline)
            client_error(c, 408, "orrery serve: the request did not arrive within %d s\n",
                         READ_TIMEOUT_S);
        else if (c->st == C_WAIT && c->inst && c->inst->ready && now >= c->retry_at)
            client_connect(c);
        if (c->inst && c->st != C_REPLY && now > c->deadline)
            client_error(c, 504, "orrery serve: instance %s did not answer within %u s\n",
                         c->inst->id, S.cfg.timeout_s);
        if (c->st == C_REPLY && c->out_off == c->out_len && (c->up_eof || c->up < 0))
            client_free(c);
    }
}

static void accept_clients(void)
{
    for (;;) {
        client_t *c = NULL;
        for (size_t i = 0; i < CLIENTS_MAX && !c; i++)
            if (!S.cl[i].used)
                c = &S.cl[i];
        if (!c)
            return;
        int fd = accept4(S.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        memset(c, 0, sizeof(*c));
        c->used = true;
        c->fd = fd;
        c->up = -1;
        c->st = C_READ;
        c->deadline = now_ns() + MS(READ_TIMEOUT_S * 1000);
        client_read(c);
    }
}

static int serve_loop(void)
{
    struct pollfd pf[2 + CLIENTS_MAX * 2 + NELEM_INST * 2];
    void *who[sizeof(pf) / sizeof(pf[0])];
    char kind[sizeof(pf) / sizeof(pf[0])];
    uint64_t stop_deadline = 0;
    for (;;) {
        dispatch();
        check_instances();
        check_clients();
        dispatch();
        bool busy = false;
        for (size_t i = 0; i < CLIENTS_MAX; i++)
            busy |= S.cl[i].used;
        for (size_t i = 0; i < NELEM_INST; i++)
            busy |= S.inst[i].used;
        if (S.stopping && !busy)
            return 0;
        if (S.stopping && now_ns() > stop_deadline) { /* cut what is still in flight */
            for (size_t i = 0; i < CLIENTS_MAX; i++)
                if (S.cl[i].used) {
                    S.cl[i].answered = true;
                    S.cl[i].out_len = S.cl[i].out_off = 0;
                    S.cl[i].up_eof = true;
                    client_free(&S.cl[i]);
                }
            for (size_t i = 0; i < NELEM_INST; i++)
                if (S.inst[i].used && !S.inst[i].reaped)
                    kill(-S.inst[i].pid, SIGKILL);
        }
        int n = 0;
        pf[n] = (struct pollfd){S.sigpipe[0], POLLIN, 0};
        kind[n++] = 's';
        bool room = false; /* a free client slot: else the listener waits (no busy loop) */
        for (size_t i = 0; i < CLIENTS_MAX && !room; i++)
            room = !S.cl[i].used;
        if (S.lfd >= 0 && room) {
            pf[n] = (struct pollfd){S.lfd, POLLIN, 0};
            kind[n++] = 'l';
        }
        for (size_t i = 0; i < NELEM_INST; i++) {
            inst_t *in = &S.inst[i];
            if (in->used && in->out >= 0) {
                pf[n] = (struct pollfd){in->out, POLLIN, 0};
                who[n] = in;
                kind[n++] = 'i';
            }
            if (in->used && in->probe >= 0) {
                short ev = POLLIN;
                if (in->probe_sent < sizeof(PROBE_REQ) - 1)
                    ev |= POLLOUT;
                pf[n] = (struct pollfd){in->probe, ev, 0};
                who[n] = in;
                kind[n++] = 'p';
            }
        }
        for (size_t i = 0; i < CLIENTS_MAX; i++) {
            client_t *c = &S.cl[i];
            if (!c->used)
                continue;
            short ev = c->st == C_READ ? POLLIN : 0;
            if (c->out_off < c->out_len)
                ev |= POLLOUT;
            pf[n] = (struct pollfd){c->fd, ev, 0};
            who[n] = c;
            kind[n++] = 'c';
            if (c->up >= 0) {
                short uev = c->st == C_SEND                                ? POLLOUT
                            : c->st == C_RELAY && c->out_off == c->out_len ? POLLIN
                                                                           : 0;
                pf[n] = (struct pollfd){c->up, uev, 0};
                who[n] = c;
                kind[n++] = 'u';
            }
        }
        /* short waits only while something is due soon: a retry, a reaping */
        int wait_ms = 100;
        for (size_t i = 0; i < NELEM_INST; i++)
            if (S.inst[i].used &&
                (S.inst[i].dying || S.inst[i].eof || (S.inst[i].seen_fs && !S.inst[i].ready)))
                wait_ms = RETRY_MS;
        for (size_t i = 0; i < CLIENTS_MAX; i++)
            if (S.cl[i].used && S.cl[i].st == C_WAIT && S.cl[i].inst && S.cl[i].inst->ready)
                wait_ms = RETRY_MS;
        int r = poll(pf, (nfds_t)n, wait_ms);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "orrery serve: poll: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; r > 0 && i < n; i++) {
            if (!pf[i].revents)
                continue;
            switch (kind[i]) {
            case 's': {
                char sig[16];
                if (read(S.sigpipe[0], sig, sizeof(sig)) > 0 && !S.stopping) {
                    fprintf(stderr, "orrery serve: %s: stopping\n",
                            sig[0] == SIGINT ? "SIGINT" : "SIGTERM");
                    S.stopping = true;
                    stop_deadline = now_ns() + MS(S.cfg.grace_s * 1000);
                    close(S.lfd);
                    S.lfd = -1;
                    /* idle instances and queued requests go at once */
                    for (size_t k = 0; k < NELEM_INST; k++)
                        if (S.inst[k].used && !S.inst[k].client)
                            inst_kill(&S.inst[k]);
                    for (size_t k = 0; k < CLIENTS_MAX; k++)
                        if (S.cl[k].used && (S.cl[k].st == C_WAIT || S.cl[k].st == C_READ) &&
                            !S.cl[k].inst)
                            client_error(&S.cl[k], 503, "orrery serve: shutting down\n");
                }
                break;
            }
            case 'l':
                accept_clients();
                break;
            case 'i':
                inst_read(who[i]);
                break;
            case 'p': {
                inst_t *in = who[i];
                if (in->used && in->probe >= 0 && !in->ready)
                    probe_step(in, pf[i].revents);
                break;
            }
            case 'c': {
                client_t *c = who[i];
                if (!c->used)
                    break;
                if (c->st == C_READ && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    client_read(c);
                else if (pf[i].revents & (POLLOUT | POLLERR | POLLHUP))
                    client_write(c);
                break;
            }
            case 'u': {
                client_t *c = who[i];
                if (!c->used || c->up < 0)
                    break;
                if (c->st == C_SEND)
                    client_up_write(c);
                else if (c->st == C_RELAY)
                    client_up_read(c);
                break;
            }
            }
        }
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: orrery serve [--listen ADDR:PORT] [--pool N] [--max-instances N] [--queue N]\n"
    "                    [--qemu microvm] [--disk FILE] [--manifest FILE]\n"
    "                    [--boot-timeout S] [--timeout S] [--verbose]\n"
    "\n"
    "A reverse proxy on the host that boots a fresh Orrery for every HTTP request, forwards\n"
    "the request to its httpd (port 80, through a slirp hostfwd on a free 127.0.0.1 port),\n"
    "answers with the instance's response plus the headers 'orrery-boot-time' (ms from the\n"
    "process start, or QEMU's, to httpd ready) and 'orrery-instance' (a unique id), and\n"
    "throws the instance away. One connection carries one request (Connection: close).\n"
    "\n"
    "  --listen ADDR:PORT  where to listen (default 127.0.0.1:8000; PORT 0: any free port).\n"
    "                      ADDR is a numeric IPv4 address or 'localhost'; an address that is\n"
    "                      not loopback (0.0.0.0, a LAN address) is taken only when written\n"
    "                      here, and said on stderr. The address is printed on stdout.\n"
    "  --pool N            keep N booted instances warm (0..--max-instances; default 0); each\n"
    "                      still serves one request.\n"
    "  --max-instances N   instances alive at once (1..64; default 4); requests beyond wait.\n"
    "  --queue N           requests that may wait for an instance (0..200; default 64);\n"
    "                      more get 503.\n"
    "  --qemu microvm      boot the x86_64 image under QEMU (orrery qemu --machine microvm)\n"
    "                      instead of hosted processes (orrery run).\n"
    "  --disk FILE         the disk image, opened read-only by every instance (default:\n"
    "                      build/disk.img, the default disk; $ORRERY_DISK replaces it).\n"
    "  --manifest FILE     the boot manifest each instance gets (read at each start).\n"
    "                      Default: the default manifest with tcpip on slirp's fixed address\n"
    "                      (10.0.2.15, no DHCP: a second less per boot), in a temp file.\n"
    "  --boot-timeout S    an instance not ready after S seconds is killed (504; default 30,\n"
    "                      120 with --qemu).\n"
    "  --timeout S         a ready instance that has not answered in S seconds is killed\n"
    "                      (504; default 30).\n"
    "  --verbose           a line on stderr per instance started, ready and per error.\n"
    "\n"
    "An instance that fails to boot or dies answers 502 with the reason in the body; the\n"
    "proxy keeps serving. SIGINT/SIGTERM: stop accepting, answer waiting requests 503, let\n"
    "in-flight ones finish for up to 5 s, kill every instance, exit 0. docs/httpd-serve.md\n";

/* Without --manifest: the default manifest with tcpip on slirp's fixed address (10.0.2.15, the
 * gateway 10.0.2.2, DNS 10.0.2.3) instead of DHCP, which costs about a second of every boot
 * (lwIP checks an offered address with ARP before binding it). Written once to a temp file
 * that every instance reads and that we remove at the end. 0, or 1 after printing why. */
static const char static_net[] = " arg=addr=10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3";

static int write_manifest(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(S.tmp_manifest, sizeof(S.tmp_manifest), "%s/orrery-serve-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemp(S.tmp_manifest);
    if (fd < 0) {
        fprintf(stderr, "orrery serve: a temp manifest in %s: %s\n", tmp ? tmp : "/tmp",
                strerror(errno));
        S.tmp_manifest[0] = '\0';
        return 1;
    }
    FILE *f = fdopen(fd, "w");
    const char *p = orrery_default_manifest;
    while (f && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *arg = memmem(p, len, " arg=", 5);
        if (strncmp(p, "program tcpip", 13) != 0 || (p[13] != ' ' && p[13] != '\t')) {
            fwrite(p, 1, len, f);
        } else if (!arg) {
            fwrite(p, 1, len, f);
            fputs(static_net, f);
        } else {
            /* DHCP (arg= empty, dhcp, quiet or quiet,dhcp) becomes the static address */
            const char *v = arg + 5, *ve = v;
            while (ve < p + len && *ve != ' ' && *ve != '\t')
                ve++;
            size_t vl = (size_t)(ve - v);
            bool dhcp = vl == 0 || (vl == 4 && !memcmp(v, "dhcp", 4)) ||
                        (vl == 5 && !memcmp(v, "quiet", 5)) ||
                        (vl == 10 && !memcmp(v, "quiet,dhcp", 10));
            fwrite(p, 1, (size_t)(arg - p), f);
            if (dhcp)
                fputs(static_net, f);
            else
                fwrite(arg, 1, (size_t)(ve - arg), f);
            fwrite(ve, 1, (size_t)(p + len - ve), f);
        }
        fputc('\n', f);
        p += len + (nl ? 1 : 0);
    }
    if (!f || fclose(f) != 0) {
        fprintf(stderr, "orrery serve: %s: %s\n", S.tmp_manifest, strerror(errno));
        unlink(S.tmp_manifest);
        S.tmp_manifest[0] = '\0';
        return 1;
    }
    S.cfg.manifest = S.tmp_manifest;
    return 0;
}

/* "ADDR:PORT" into a, refusing names other than localhost (no lookups). 0 or 2. */
static int parse_listen(const char *s, struct sockaddr_in *a)
{
    const char *colon = strrchr(s, ':');
    char host[64];
    uint64_t port;
    if (!colon || (size_t)(colon - s) >= sizeof(host) || !cli_parse_u64(colon + 1, 0, 65535, &port))
        return cli_usage_error("serve",
                               "serve: --listen wants ADDR:PORT (e.g. 127.0.0.1:8000, "
                               "port 0..65535), not '%s'",
                               s);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return cli_usage_error("serve",
                               "serve: --listen: '%s' is not an IPv4 address "
                               "(A.B.C.D or localhost)",
                               host);
    return 0;
}

int hl_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"listen", required_argument, NULL, 'l'},
        {"pool", required_argument, NULL, 'p'},
        {"max-instances", required_argument, NULL, 'm'},
        {"queue", required_argument, NULL, 'q'},
        {"qemu", required_argument, NULL, 'Q'},
        {"disk", required_argument, NULL, 'd'},
        {"manifest", required_argument, NULL, 'M'},
        {"boot-timeout", required_argument, NULL, 'B'},
        {"timeout", required_argument, NULL, 'T'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_s = "127.0.0.1:8000", *disk = NULL;
    uint64_t v;
    bool boot_timeout_set = false;
    memset(&S, 0, sizeof(S));
    S.cfg.max_instances = 4;
    S.cfg.queue = 64;
    S.cfg.timeout_s = 30;
    S.cfg.boot_timeout_s = 30;
    S.cfg.grace_s = 5;
    int o;
    while ((o = cli_getopt(argc, argv, "serve", opts)) != -1) {
        switch (o) {
        case CLI_OPT_ERROR:
            return 2;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'l':
            listen_s = optarg;
            break;
        case 'p':
            if (cli_opt_u64("serve", "--pool", optarg, 0, MAX_INSTANCES_MAX, &v))
                return 2;
            S.cfg.pool = (unsigned)v;
            break;
        case 'm':
            if (cli_opt_u64("serve", "--max-instances", optarg, 1, MAX_INSTANCES_MAX, &v))
                return 2;
            S.cfg.max_instances = (unsigned)v;
            break;
        case 'q':
            if (cli_opt_u64("serve", "--queue", optarg, 0, 200, &v))
                return 2;
            S.cfg.queue = (unsigned)v;
            break;
        case 'Q':
            if (strcmp(optarg, "microvm") != 0)
                return cli_usage_error("serve", "serve: --qemu takes 'microvm', not '%s'", optarg);
            S.cfg.qemu = true;
            break;
        case 'd':
            disk = optarg;
            break;
        case 'M':
            S.cfg.manifest = optarg;
            break;
        case 'B':
            if (cli_opt_u64("serve", "--boot-timeout", optarg, 1, 3600, &v))
                return 2;
            S.cfg.boot_timeout_s = (unsigned)v;
            boot_timeout_set = true;
            break;
        case 'T':
            if (cli_opt_u64("serve", "--timeout", optarg, 1, 3600, &v))
                return 2;
            S.cfg.timeout_s = (unsigned)v;
            break;
        case 'v':
            S.cfg.verbose = true;
            break;
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "serve: unexpected argument '%s'", argv[optind]);
    if (S.cfg.pool > S.cfg.max_instances)
        return cli_usage_error("serve", "serve: --pool %u is more than --max-instances %u",
                               S.cfg.pool, S.cfg.max_instances);
    if (S.cfg.qemu && !boot_timeout_set)
        S.cfg.boot_timeout_s = 120;
    struct sockaddr_in la;
    if (parse_listen(listen_s, &la) != 0)
        return 2;

    if (S.cfg.manifest && access(S.cfg.manifest, R_OK) != 0)
        return cli_usage_error("serve", "serve: --manifest %s: %s", S.cfg.manifest,
                               strerror(errno));
    /* The disk: checked now so a typo is a usage error; each instance opens it again. */
    char path[4096];
    if (disk) {
        snprintf(path, sizeof(path), "%s", disk);
    } else {
        int d = hl_default_disk(path, sizeof(path));
        if (d == 1)
            return cli_usage_error("serve", "serve: no disk ($ORRERY_DISK is 'none'); the site "
                                            "is on a disk: give --disk FILE");
        if (d != 0)
            return cli_usage_error("serve", "serve: no default disk (%s); give --disk FILE", path);
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_usage_error("serve", "serve: --disk %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cli_usage_error("serve", "serve: --disk %s: not a regular file", path);
    snprintf(S.disk_arg, sizeof(S.disk_arg), "%s,ro", path);

    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "orrery serve: cannot find this program (/proc/self/exe): %s\n",
                strerror(errno));
        return 1;
    }
    self[sl] = '\0';
    S.self = self;

    S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    socklen_t al = sizeof(la);
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &la.sin_addr, addr, sizeof(addr));
    if (S.lfd < 0 || bind(S.lfd, (struct sockaddr *)&la, sizeof(la)) != 0 ||
        listen(S.lfd, 128) != 0 || getsockname(S.lfd, (struct sockaddr *)&la, &al) != 0) {
        fprintf(stderr, "orrery serve: --listen %s: %s\n", listen_s, strerror(errno));
        return 1;
    }
    if ((ntohl(la.sin_addr.s_addr) >> 24) != 127)
        fprintf(stderr,
                "orrery serve: listening on %s, which is not loopback: other machines "
                "can boot instances here\n",
                addr);

    if (pipe2(S.sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "orrery serve: pipe: %s\n", strerror(errno));
        return 1;
    }
    if (!S.cfg.manifest && write_manifest() != 0)
        return 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (size_t i = 0; i < CLIENTS_MAX; i++)
        S.cl[i].fd = S.cl[i].up = -1;
    uint32_t rnd = (uint32_t)getpid() ^ (uint32_t)now_ns();
    S.run_id = rnd * 2654435761u;

    printf("orrery serve: http://%s:%d/ (%s, pool %u, at most %u instances)\n", addr,
           ntohs(la.sin_port), S.cfg.qemu ? "qemu microvm" : "hosted", S.cfg.pool,
           S.cfg.max_instances);
    fflush(stdout);
    int rc = serve_loop();
    if (S.tmp_manifest[0])
        unlink(S.tmp_manifest);
    fprintf(stderr, "orrery serve: stopped (%llu instances booted)\n",
            (unsigned long long)S.nboots);
    return rc;
}
