/* serve_instance.c — `orrery serve`'s instances: starting, readiness, killing and reaping. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

unsigned serve_live_instances(void)
{
    unsigned n = 0;
    for (size_t i = 0; i < NELEM_INST; i++)
        n += serve_state.inst[i].used && !serve_state.inst[i].dying;
    return n;
}

unsigned serve_idle_instances(void)
{
    unsigned n = 0;
    for (size_t i = 0; i < NELEM_INST; i++)
        n += serve_state.inst[i].used && !serve_state.inst[i].dying && !serve_state.inst[i].client;
    return n;
}

static void inst_say(inst_t *in, const char *what)
{
    if (serve_state.cfg.verbose)
        fprintf(stderr, "orrery serve: instance %s: %s\n", in->id, what);
}

/* Start an instance: `orrery run` or `orrery qemu --machine microvm`, its own process group,
 * killed with us (PR_SET_PDEATHSIG). NULL after printing why (fork or pipe failed). */
inst_t *serve_inst_start(void)
{
    inst_t *in = NULL;
    for (size_t i = 0; i < NELEM_INST && !in; i++)
        if (!serve_state.inst[i].used)
            in = &serve_state.inst[i];
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
    argv[n++] = serve_state.self;
    if (serve_state.cfg.qemu) {
        argv[n++] = "qemu";
        argv[n++] = "--machine";
        argv[n++] = "microvm";
    } else {
        argv[n++] = "run";
    }
    argv[n++] = "--net";
    argv[n++] = net;
    argv[n++] = "--disk";
    argv[n++] = serve_state.disk_arg;
    if (serve_state.cfg.manifest) {
        argv[n++] = "--manifest";
        argv[n++] = serve_state.cfg.manifest;
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
    snprintf(in->id, sizeof(in->id), "%08x-%llu", serve_state.run_id,
             (unsigned long long)++serve_state.nboots);
    inst_say(in, "started");
    return in;
}

static void probe_close(inst_t *in, bool again);

/* Throw it away: SIGTERM to its group now, SIGKILL after the grace, reaped in the loop. */
void serve_inst_kill(inst_t *in)
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

void serve_inst_read(inst_t *in)
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

void serve_probe_step(inst_t *in, short revents)
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

void serve_check_instances(void)
{
    uint64_t now = now_ns();
    for (size_t i = 0; i < NELEM_INST; i++) {
        inst_t *in = &serve_state.inst[i];
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
                serve_state.fails++;
            if (c) {
                char why[600];
                inst_reason(in, why, sizeof(why));
                serve_client_error(c, 502, "orrery serve: %s", why);
            } else {
                char why[600];
                inst_reason(in, why, sizeof(why));
                fprintf(stderr, "orrery serve: %s", why);
                serve_inst_kill(in);
            }
            continue;
        }
        if (in->ready)
            serve_state.fails = 0;
        else if (in->seen_net && in->seen_httpd && in->seen_fs && in->probe < 0 &&
                 now >= in->probe_at)
            serve_probe_step(in, 0);
        if (!in->ready && now - in->t_start > MS(serve_state.cfg.boot_timeout_s * 1000)) {
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
            serve_state.fails++;
            if (c) {
                serve_client_error(c, 504,
                                   "orrery serve: instance %s was not ready within %u s (%s)\n",
                                   in->id, serve_state.cfg.boot_timeout_s, why);
            } else {
                fprintf(stderr, "orrery serve: instance %s was not ready within %u s (%s)\n",
                        in->id, serve_state.cfg.boot_timeout_s, why);
                serve_inst_kill(in);
            }
        }
    }
}
