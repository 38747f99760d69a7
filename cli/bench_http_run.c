/* bench_http_run.c — `orrery bench http`'s processes: children, HTTP probes, wrk and its output. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"
#include "bench_http.h"
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void bh_say(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, REASON, fmt, ap);
    va_end(ap);
}

/* ---- children ------------------------------------------------------------------------------ */

volatile pid_t bh_live_pid;
char bh_tmpdir[256];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void bh_cleanup_tmp(void)
{
    if (bh_tmpdir[0])
        nftw(bh_tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    bh_tmpdir[0] = '\0';
}

void bh_on_fatal(int sig)
{
    if (bh_live_pid > 0)
        kill(-bh_live_pid, SIGKILL);
    bh_cleanup_tmp();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* argv in its own process group, output (stdout and stderr) on a pipe we read. */
int bh_child_start(child_t *c, char **argv, char *why)
{
    int in[2], out[2];
    memset(c, 0, sizeof(*c));
    c->pid = -1;
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        bh_say(why, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->in = in[1];
    c->out = out[0];
    fcntl(c->out, F_SETFL, O_NONBLOCK);
    if (pid < 0) {
        bh_say(why, "fork: %s", strerror(errno));
        return -1;
    }
    setpgid(pid, pid);
    c->pid = bh_live_pid = pid;
    return 0;
}

/* Read what it wrote (up to ms of waiting); false once its output ended. */
bool bh_child_pump(child_t *c, int ms)
{
    if (c->eof)
        return false;
    struct pollfd p = {c->out, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return true;
    char buf[4096];
    ssize_t r = read(c->out, buf, sizeof(buf));
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        c->eof = true;
        return false;
    }
    if (r > 0) {
        if (c->loglen + (size_t)r >= sizeof(c->log)) {
            size_t keep = sizeof(c->log) / 2;
            if (keep > c->loglen)
                keep = c->loglen;
            memmove(c->log, c->log + c->loglen - keep, keep);
            c->loglen = keep;
            if ((size_t)r >= sizeof(c->log) / 2)
                r = (ssize_t)(sizeof(c->log) / 2 - 1);
        }
        memcpy(c->log + c->loglen, buf, (size_t)r);
        c->loglen += (size_t)r;
        c->log[c->loglen] = '\0';
    }
    return true;
}

static const char *child_last_line(child_t *c)
{
    static char line[256];
    char *end = c->log + c->loglen;
    while (end > c->log && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    char *start = end;
    while (start > c->log && start[-1] != '\n')
        start--;
    snprintf(line, sizeof(line), "%.*s", (int)(end - start), start);
    return line[0] ? line : "(no output)";
}

void bh_child_stop(child_t *c)
{
    if (c->in >= 0)
        close(c->in);
    if (c->pid > 0) {
        kill(-c->pid, SIGTERM);
        double end = now_s() + 10;
        int ws;
        pid_t r;
        while ((r = waitpid(c->pid, &ws, WNOHANG)) == 0 && now_s() < end)
            bh_child_pump(c, 20);
        kill(-c->pid, SIGKILL);
        if (r == 0)
            waitpid(c->pid, &ws, 0);
    }
    bh_live_pid = 0;
    if (c->out >= 0)
        close(c->out);
    c->pid = c->in = c->out = -1;
}

/* ---- HTTP on the host side ------------------------------------------------------------------- */

int bh_free_port(void)
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

/* GET / on 127.0.0.1:port with Connection: close; the status (0: no answer) and the value of
 * header hdr (if any) in val. */
int bh_http_get(int port, double timeout_s, const char *hdr, char *val, size_t vn)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (val)
        val[0] = '\0';
    if (fd < 0)
        return 0;
    struct timeval tv = {(time_t)timeout_s, (long)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[8192];
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        cli_write_all(fd, req, sizeof(req) - 1) != 0) {
        close(fd);
        return 0;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(buf) - 1) { /* the head is in; drain the rest */
            char sink[8192];
            while (read(fd, sink, sizeof(sink)) > 0)
                ;
            break;
        }
    }
    close(fd);
    buf[got] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    if (hdr && val) {
        char *end = strstr(buf, "\r\n\r\n");
        size_t hl = strlen(hdr);
        for (char *l = strstr(buf, "\r\n"); l && (!end || l < end); l = strstr(l + 2, "\r\n"))
            if (strncasecmp(l + 2, hdr, hl) == 0 && l[2 + hl] == ':') {
                char *v = l + 3 + hl;
                while (*v == ' ')
                    v++;
                size_t n = strcspn(v, "\r\n");
                snprintf(val, vn, "%.*s", (int)n, v);
            }
    }
    return status;
}

/* Until GET / answers 200 (slirp accepts before the guest can; those tries fail and are
 * repeated), the child exits, or the time is up. */
int bh_wait_http(child_t *c, int port, char *why)
{
    double deadline = now_s() + BOOT_TIMEOUT_S;
    int status = 0;
    for (;;) {
        if (c && !bh_child_pump(c, 0)) {
            int ws = 0;
            waitpid(c->pid, &ws, 0);
            c->pid = -1;
            bh_say(why, "it exited before answering HTTP (%s %d): %s",
                   WIFSIGNALED(ws) ? "signal" : "status",
                   WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws), child_last_line(c));
            return -1;
        }
        if ((status = bh_http_get(port, 2, NULL, NULL, 0)) == 200)
            return 0;
        if (now_s() > deadline) {
            bh_say(why, "GET / on port %d gave no 200 within %d s (last status %d): %s", port,
                   BOOT_TIMEOUT_S, status, c ? child_last_line(c) : "");
            return -1;
        }
        if (c)
            bh_child_pump(c, 20);
        else
            usleep(20000);
    }
}

/* ---- wrk ------------------------------------------------------------------------------------ */

char bh_wrk_path[4096];

/* "1.23ms" -> ms */
static double wrk_time(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (strncmp(end, "us", 2) == 0)
        return v / 1e3;
    if (strncmp(end, "ms", 2) == 0)
        return v;
    if (strncmp(end, "s", 1) == 0)
        return v * 1e3;
    if (strncmp(end, "m", 1) == 0)
        return v * 60e3;
    return -1;
}

/* wrk --latency for duration_s at conns connections on 127.0.0.1:port/. While it runs, c's
 * output is read so a full pipe never stalls it. */
int bh_run_wrk(int port, unsigned conns, unsigned duration_s, unsigned timeout_s, child_t *c,
               point_t *p, char *why)
{
    char cs[16], ts[16], ds[16], to[16], url[64];
    snprintf(cs, sizeof(cs), "%u", conns);
    snprintf(ts, sizeof(ts), "%u", conns < 2 ? 1u : 2u);
    snprintf(ds, sizeof(ds), "%us", duration_s);
    snprintf(to, sizeof(to), "%us", timeout_s);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    char *argv[] = {bh_wrk_path, "--latency", "-t",        ts, "-c", cs,
                    "-d",        ds,          "--timeout", to, url,  NULL};
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        bh_say(why, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    static char buf[65536];
    size_t got = 0;
    for (;;) {
        struct pollfd pf[2] = {{out[0], POLLIN, 0}, {c ? c->out : -1, POLLIN, 0}};
        if (poll(pf, c && !c->eof ? 2 : 1, 200) < 0 && errno != EINTR)
            break;
        if (c && !c->eof && pf[1].revents)
            bh_child_pump(c, 0);
        if (pf[0].revents) {
            ssize_t r = read(out[0], buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    }
    close(out[0]);
    buf[got] = '\0';
    int ws = 0;
    waitpid(pid, &ws, 0);
    memset(p, 0, sizeof(*p));
    p->conns = conns;
    char *rps = strstr(buf, "Requests/sec:");
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !rps) {
        char *nl = strchr(buf, '\n');
        bh_say(why, "wrk failed (status %d): %.*s", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1,
               (int)(nl ? nl - buf : (long)strlen(buf)), buf);
        return -1;
    }
    p->rps = strtod(rps + 13, NULL);
    struct {
        const char *key;
        double *v;
    } pcts[] = {{"50%", &p->p50}, {"75%", &p->p75}, {"90%", &p->p90}, {"99%", &p->p99}};
    char *dist = strstr(buf, "Latency Distribution");
    for (size_t i = 0; i < 4; i++) {
        char *k = dist ? strstr(dist, pcts[i].key) : NULL;
        *pcts[i].v = k ? wrk_time(k + 3 + strspn(k + 3, " ")) : -1;
    }
    char *req = strstr(buf, " requests in ");
    if (req) {
        char *s = req;
        while (s > buf && s[-1] != '\n')
            s--;
        p->requests = strtoull(s + strspn(s, " "), NULL, 10);
    }
    unsigned long long a = 0, b = 0, d = 0, e = 0, n2 = 0;
    char *se = strstr(buf, "Socket errors:");
    if (se)
        sscanf(se, "Socket errors: connect %llu, read %llu, write %llu, timeout %llu", &a, &b, &d,
               &e);
    char *nx = strstr(buf, "Non-2xx or 3xx responses:");
    if (nx)
        n2 = strtoull(nx + 26, NULL, 10);
    p->errors = a + b + d + e + n2;
    p->ok = true;
    return 0;
}
