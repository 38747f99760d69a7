/* bench_net.c — `orrery bench net`: TCP round trips, bulk echo and connections per second
 * through the echo service on port 7 (hosted, under QEMU, in the simulator), against Linux
 * loopback TCP between two threads measured in the same run. */
#define _GNU_SOURCE
#include "bench_net.h"
#include "commands.h"
#include "opt.h"
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    DEFAULT_COUNT = 1000, /* round trips, and connections */
    COUNT_MAX = 1000000,
    BOOT_TIMEOUT_S = 180, /* child start -> the echo service answers (TCG on a busy host) */
    STALL_TIMEOUT_S = 30, /* no byte moved for this long: the row failed */
    CHUNK = 64 * 1024,    /* host-side reads and writes of the bulk echo */
};
#define DEFAULT_BYTES (16ull << 20)
#define BYTES_MAX (1ull << 30)

uint64_t bench_net_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- figures ----------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_net_percentiles(uint64_t *v, size_t n, figures_t *f)
{
    qsort(v, n, sizeof(v[0]), cmp_u64);
    size_t p99 = (n * 99 + 99) / 100; /* ceil(0.99 n), 1-based */
    f->rtt_med_us =
        (n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2) / 1e3;
    f->rtt_p99_us = (double)v[(p99 ? p99 : 1) - 1] / 1e3;
}

double bench_net_mib_s(uint64_t bytes, uint64_t ns)
{
    return ns ? (double)bytes / (1024.0 * 1024.0) / ((double)ns / 1e9) : -1;
}

void bench_net_say(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, REASON_MAX, fmt, ap);
    va_end(ap);
}

/* ---- the host side: a client on 127.0.0.1 -------------------------------------------------- */

/* A connected TCP socket to 127.0.0.1:port with Nagle off, or -1 with why. */
static int tcp_dial(int port, char *why)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        bench_net_say(why, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        bench_net_say(why, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Read exactly n bytes before the deadline (ns): 0, or -1 with why. */
static int read_full(int fd, uint8_t *buf, size_t n, uint64_t deadline, char *why)
{
    size_t got = 0;
    while (got < n) {
        uint64_t now = bench_net_now_ns();
        if (now >= deadline) {
            bench_net_say(why, "no echo within the time limit (%zu of %zu bytes)", got, n);
            return -1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int ms = (int)((deadline - now) / 1000000u) + 1;
        if (poll(&p, 1, ms) <= 0)
            continue;
        ssize_t r = read(fd, buf + got, n - got);
        if (r == 0) {
            bench_net_say(why, "the echo service closed the connection (%zu of %zu bytes)", got, n);
            return -1;
        }
        if (r < 0 && errno != EINTR && errno != EAGAIN) {
            bench_net_say(why, "read: %s", strerror(errno));
            return -1;
        }
        if (r > 0)
            got += (size_t)r;
    }
    return 0;
}

/* One message out and its echo back, checked. */
static int echo_once(int fd, uint64_t seq, uint64_t timeout_ns, char *why)
{
    uint8_t out[MSG_BYTES], in[MSG_BYTES];
    for (int i = 0; i < MSG_BYTES; i++)
        out[i] = bench_net_pattern(seq * MSG_BYTES + (uint64_t)i);
    if (cli_write_all(fd, out, sizeof(out)) != 0) {
        bench_net_say(why, "write: %s", strerror(errno));
        return -1;
    }
    if (read_full(fd, in, sizeof(in), bench_net_now_ns() + timeout_ns, why) != 0)
        return -1;
    if (memcmp(in, out, sizeof(in)) != 0) {
        bench_net_say(why, "the echo differs from what was sent (message %llu)",
                      (unsigned long long)seq);
        return -1;
    }
    return 0;
}

#define STALL_NS ((uint64_t)STALL_TIMEOUT_S * 1000000000u)

/* count round trips of MSG_BYTES on one connection (after a warm-up): median and p99. */
static int measure_rtt(int port, uint64_t count, figures_t *f, char *why)
{
    uint64_t *v = calloc(count, sizeof(*v)),
             warm = count / 10 < WARMUP_MAX ? count / 10 : WARMUP_MAX;
    int fd = v ? tcp_dial(port, why) : -1, rc = -1;
    if (fd >= 0) {
        uint64_t i;
        for (i = 0; i < warm + count; i++) {
            uint64_t t0 = bench_net_now_ns();
            if (echo_once(fd, i, STALL_NS, why) != 0)
                break;
            if (i >= warm)
                v[i - warm] = bench_net_now_ns() - t0;
        }
        if (i == warm + count) {
            bench_net_percentiles(v, count, f);
            rc = 0;
        }
        close(fd);
    } else if (!v) {
        bench_net_say(why, "out of memory");
    }
    free(v);
    return rc;
}

/* bytes out on one connection while the echo comes back, checked byte by byte; the clock runs
 * from the first write to the last byte echoed. */
static int measure_bulk(int port, uint64_t bytes, figures_t *f, char *why)
{
    int fd = tcp_dial(port, why);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    static uint8_t out[CHUNK], in[CHUNK];
    uint64_t sent = 0, got = 0, t0 = bench_net_now_ns(), last = t0;
    int rc = -1;
    bool shut = false;
    while (got < bytes) {
        struct pollfd p = {fd, (short)(POLLIN | (sent < bytes ? POLLOUT : 0)), 0};
        if (bench_net_now_ns() - last > STALL_NS) {
            bench_net_say(why, "bulk echo stalled for %d s (%llu of %llu bytes back)",
                          STALL_TIMEOUT_S, (unsigned long long)got, (unsigned long long)bytes);
            goto out;
        }
        if (poll(&p, 1, 1000) <= 0)
            continue;
        if (p.revents & POLLOUT && sent < bytes) {
            size_t n = bytes - sent < CHUNK ? (size_t)(bytes - sent) : CHUNK;
            for (size_t i = 0; i < n; i++)
                out[i] = bench_net_pattern(sent + i);
            ssize_t w = write(fd, out, n);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                bench_net_say(why, "bulk write: %s", strerror(errno));
                goto out;
            }
            if (w > 0) {
                sent += (uint64_t)w;
                last = bench_net_now_ns();
            }
        }
        if (sent == bytes && !shut) {
            shutdown(fd, SHUT_WR); /* the echo service shuts its side once all is echoed */
            shut = true;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(fd, in, sizeof(in));
            if (r == 0) {
                bench_net_say(why, "the echo service closed after %llu of %llu bytes",
                              (unsigned long long)got, (unsigned long long)bytes);
                goto out;
            }
            if (r < 0 && errno != EAGAIN && errno != EINTR) {
                bench_net_say(why, "bulk read: %s", strerror(errno));
                goto out;
            }
            for (ssize_t i = 0; i < r; i++) {
                if (in[i] != bench_net_pattern(got + (uint64_t)i)) {
                    bench_net_say(why, "bulk echo differs at byte %llu",
                                  (unsigned long long)(got + i));
                    goto out;
                }
            }
            if (r > 0) {
                got += (uint64_t)r;
                last = bench_net_now_ns();
            }
        }
    }
    f->bulk_mib_s = bench_net_mib_s(bytes, bench_net_now_ns() - t0);
    rc = 0;
out:
    close(fd);
    return rc;
}

/* count connections, each: open, one echo, close. */
static int measure_conns(int port, uint64_t count, figures_t *f, char *why)
{
    uint64_t t0 = bench_net_now_ns();
    for (uint64_t i = 0; i < count; i++) {
        int fd = tcp_dial(port, why);
        if (fd < 0)
            return -1;
        int rc = echo_once(fd, i, STALL_NS, why);
        close(fd);
        if (rc != 0)
            return -1;
    }
    f->conns_per_s = (double)count * 1e9 / (double)(bench_net_now_ns() - t0);
    return 0;
}

static int measure_all(int port, uint64_t count, uint64_t bytes, figures_t *f, char *why)
{
    *f = no_figures;
    if (measure_rtt(port, count, f, why) != 0)
        return -1;
    if (measure_bulk(port, bytes, f, why) != 0)
        return -1;
    return measure_conns(port, count, f, why);
}

/* ---- the baseline: Linux loopback TCP, an echo thread ----------------------------------- */

static void *loop_echo(void *arg)
{
    int lfd = *(int *)arg;
    static uint8_t buf[CHUNK];
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* the listener was shut down: the end */
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        ssize_t r;
        while ((r = read(fd, buf, sizeof(buf))) > 0)
            if (cli_write_all(fd, buf, (size_t)r) != 0)
                break;
        close(fd);
    }
}

/* A listening socket on 127.0.0.1 port 0; its port in *port. */
static int listen_local(int *port, char *why)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        bench_net_say(why, "a socket on 127.0.0.1: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int measure_loopback(uint64_t count, uint64_t bytes, figures_t *f, char *why)
{
    int port, lfd = listen_local(&port, why);
    pthread_t t;
    if (lfd < 0)
        return -1;
    if (pthread_create(&t, NULL, loop_echo, &lfd) != 0) {
        bench_net_say(why, "pthread_create failed");
        close(lfd);
        return -1;
    }
    int rc = measure_all(port, count, bytes, f, why);
    shutdown(lfd, SHUT_RDWR); /* wakes accept: the thread ends */
    pthread_join(t, NULL);
    close(lfd);
    return rc;
}

/* A port free on 127.0.0.1 now (bound to port 0, then released) for a hostfwd rule. */
static int free_port(char *why)
{
    int port, fd = listen_local(&port, why);
    if (fd < 0)
        return -1;
    close(fd);
    return port;
}

/* ---- a child: `orrery run` or `orrery qemu` serving the echo on a forwarded port ------------ */

#define READY_LINE "[tcpecho] tcp port 7"

/* A child and a thread reading its output all along (a child whose console pipe filled up
 * would stall mid-measurement): the last part of it is kept for reasons. */
typedef struct child {
    pid_t pid; /* also its process group (QEMU is in it) */
    int in, out;
    pthread_t drain;
    bool draining;
    pthread_mutex_t mu; /* guards the fields below */
    char log[16384];    /* the last of its output */
    size_t loglen;
    bool ready_seen; /* READY_LINE went by */
    bool eof;        /* its output ended: it exited */
} child_t;

/* The child alive now, killed (its whole group) when we are stopped by a signal, and our
 * manifest file, removed then ("" while there is none). */
static volatile pid_t live_child;
static char manifest_path[4096];

static void on_fatal_signal(int sig)
{
    if (live_child > 0)
        kill(-live_child, SIGKILL);
    if (manifest_path[0])
        unlink(manifest_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void *child_drain(void *arg)
{
    child_t *c = arg;
    char buf[4096];
    for (;;) {
        ssize_t r = read(c->out, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        pthread_mutex_lock(&c->mu);
        if (r <= 0) {
            c->eof = true;
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        if (c->loglen + (size_t)r >= sizeof(c->log)) { /* keep the newer half */
            size_t keep = sizeof(c->log) / 2;
            memmove(c->log, c->log + c->loglen - keep, keep);
            c->loglen = keep;
        }
        memcpy(c->log + c->loglen, buf, (size_t)r);
        c->loglen += (size_t)r;
        c->log[c->loglen] = '\0';
        /* the line may straddle two reads: look back over the last sizeof(READY_LINE) too */
        size_t from = c->loglen > (size_t)r + sizeof(READY_LINE)
                          ? c->loglen - (size_t)r - sizeof(READY_LINE)
                          : 0;
        if (strstr(c->log + from, READY_LINE))
            c->ready_seen = true;
        pthread_mutex_unlock(&c->mu);
    }
}

static int child_start(child_t *c, char **argv, char *why)
{
    int in[2], out[2];
    memset(c, 0, sizeof(*c));
    c->pid = -1;
    c->in = c->out = -1;
    pthread_mutex_init(&c->mu, NULL);
    if (pipe2(in, O_CLOEXEC) != 0) {
        bench_net_say(why, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
        bench_net_say(why, "pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* we died without cleaning up: so does it */
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
    if (pid < 0) {
        bench_net_say(why, "fork: %s", strerror(errno));
        return -1;
    }
    setpgid(pid, pid); /* both sides, so that no kill finds it in our group */
    live_child = pid;
    c->pid = pid;
    if (pthread_create(&c->drain, NULL, child_drain, c) != 0) {
        bench_net_say(why, "pthread_create failed");
        return -1;
    }
    c->draining = true;
    return 0;
}

/* The last line of its output that says something, for a reason (caller holds mu). */
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

/* It exited (its output ended): why, from its status and last line. */
static void child_died(child_t *c, char *why)
{
    int ws = 0;
    while (waitpid(c->pid, &ws, 0) < 0 && errno == EINTR)
        ;
    live_child = 0;
    c->pid = -1;
    pthread_mutex_lock(&c->mu);
    bench_net_say(why, "%s before its echo service answered (%s %d): %s",
                  WIFSIGNALED(ws) ? "it was killed" : "it exited",
                  WIFSIGNALED(ws) ? "signal" : "status",
                  WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws), child_last_line(c));
    pthread_mutex_unlock(&c->mu);
}

/* 1: READY_LINE went by, 0: not yet, -1: its output ended (it exited). */
static int child_state(child_t *c)
{
    pthread_mutex_lock(&c->mu);
    int s = c->ready_seen ? 1 : c->eof ? -1 : 0;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/*
 * Wait for tcpecho's READY_LINE, then until one echo goes through the forwarded port (slirp
 * accepts on the host before the guest has its address by DHCP; those first connections
 * close or hang, and are tried again). 0, or -1 with why (a child that exits fails at once).
 */
static int child_ready(child_t *c, int port, char *why)
{
    uint64_t deadline = bench_net_now_ns() + (uint64_t)BOOT_TIMEOUT_S * 1000000000u;
    int s;
    while ((s = child_state(c)) == 0) {
        if (bench_net_now_ns() > deadline) {
            pthread_mutex_lock(&c->mu);
            bench_net_say(why, "no '" READY_LINE "' within %d s: %s", BOOT_TIMEOUT_S,
                          child_last_line(c));
            pthread_mutex_unlock(&c->mu);
            return -1;
        }
        sleep_ms(20);
    }
    char err[REASON_MAX] = "";
    for (uint64_t n = 0;; n++) {
        int fd = tcp_dial(port, err);
        if (fd >= 0) {
            int rc = echo_once(fd, n, 1000000000u, err);
            close(fd);
            if (rc == 0)
                return 0;
        }
        if (s < 0 || child_state(c) < 0) {
            child_died(c, why);
            return -1;
        }
        if (bench_net_now_ns() > deadline) {
            bench_net_say(why, "the echo on port %d never answered within %d s: %s", port,
                          BOOT_TIMEOUT_S, err);
            return -1;
        }
        sleep_ms(100);
    }
}

/* Stop it and its group: the end of its input, SIGTERM (a clean shutdown), SIGKILL after 10 s;
 * then the drain thread sees the end of its output. */
static void child_stop(child_t *c)
{
    if (c->in >= 0)
        close(c->in);
    if (c->pid > 0) {
        kill(-c->pid, SIGTERM);
        int ws;
        uint64_t end = bench_net_now_ns() + 10000000000ull;
        pid_t r;
        while ((r = waitpid(c->pid, &ws, WNOHANG)) == 0 && bench_net_now_ns() < end)
            sleep_ms(20);
        kill(-c->pid, SIGKILL); /* QEMU too, whatever its parent did */
        if (r == 0)
            while (waitpid(c->pid, &ws, 0) < 0 && errno == EINTR)
                ;
        live_child = 0;
    }
    if (c->draining)
        pthread_join(c->drain, NULL);
    if (c->out >= 0)
        close(c->out);
    pthread_mutex_destroy(&c->mu);
    c->pid = -1;
    c->in = c->out = -1;
    c->draining = false;
}

/* ---- rows ---------------------------------------------------------------------------------- */

static const char *const row_names[NROWS] = {"hosted", "qemu-q35", "qemu-microvm", "sim"};
static const char *const st_names[] = {"off", "measured", "skipped", "failed"};

static const char net_manifest[] = "# orrery bench net: the echo service on port 7\n"
                                   "program tcpip\n"
                                   "program tcpecho reach=tcp,udp\n";

/* A child serving the echo (argv ends with --net user,hostfwd=...PORT-:7), measured. */
static void run_child_row(row_t *row, char **argv, int port, uint64_t count, uint64_t bytes)
{
    static child_t c;
    if (child_start(&c, argv, row->why) != 0)
        row->state = ST_FAILED;
    else if (child_ready(&c, port, row->why) == 0 &&
             measure_all(port, count, bytes, &row->f, row->why) == 0)
        row->state = ST_MEASURED;
    else
        row->state = ST_FAILED;
    child_stop(&c);
}

static void run_hosted(row_t *row, const char *self, const char *manifest, uint64_t count,
                       uint64_t bytes)
{
    char net[128];
    int port = free_port(row->why);
    if (port < 0) {
        row->state = ST_FAILED;
        return;
    }
    snprintf(net, sizeof(net), "user,hostfwd=tcp:127.0.0.1:%d-:7", port);
    char *argv[] = {(char *)self, "run", "--manifest", (char *)manifest, "--net", net, NULL};
    run_child_row(row, argv, port, count, bytes);
}

static void run_qemu(row_t *row, const char *machine, const char *self, const char *manifest,
                     uint64_t count, uint64_t bytes)
{
    static char qemu[4096], image[4096];
    static const hq_choice_t *choice;
    static const char *missing; /* why the QEMU rows cannot run, or NULL */
    static bool looked;
    char net[128];
    if (!looked) {
        looked = true;
        /* hq_find_* also say why on stderr */
        if (hq_find_qemu(qemu, sizeof(qemu)) != 0)
            missing = "no QEMU: qemu-system-x86_64 is not on PATH, or $ORRERY_QEMU is not "
                      "executable";
        else if (hq_find_image(image, sizeof(image)) != 0)
            missing = "no image: orrery.elf is not next to orrery, or $ORRERY_IMAGE is missing";
        else
            choice = hq_choose(qemu, image, "auto");
    }
    if (missing) {
        bench_net_say(row->why, "%s", missing);
        row->state = ST_SKIPPED;
        return;
    }
    row->accel = choice->chosen >= 0 ? hq_cands[choice->chosen].accel : "tcg";
    int port = free_port(row->why);
    if (port < 0) {
        row->state = ST_FAILED;
        return;
    }
    snprintf(net, sizeof(net), "user,hostfwd=tcp:127.0.0.1:%d-:7", port);
    char *argv[] = {(char *)self, "qemu",
                    "--machine",  (char *)machine,
                    "--accel",    (char *)row->accel,
                    "--manifest", (char *)manifest,
                    "--net",      net,
                    NULL};
    run_child_row(row, argv, port, count, bytes);
}

/* ---- output -------------------------------------------------------------------------------- */

static void json_num(const char *key, double v, bool comma)
{
    printf("\"%s\": ", key);
    if (v < 0)
        fputs("null", stdout);
    else
        printf("%.3f", v);
    if (comma)
        fputs(", ", stdout);
}

/* row / baseline, or -1 when either is missing. */
static double ratio(double row, double base)
{
    return row > 0 && base > 0 ? row / base : -1;
}

static void json_figures(const figures_t *f, const figures_t *base)
{
    json_num("rtt_median_us", f->rtt_med_us, true);
    json_num("rtt_p99_us", f->rtt_p99_us, true);
    json_num("bulk_mib_s", f->bulk_mib_s, true);
    json_num("conns_per_s", f->conns_per_s, true);
    fputs("\"ratios\": {\"baseline\": \"loopback\", ", stdout);
    json_num("rtt_median_over_baseline", ratio(f->rtt_med_us, base->rtt_med_us), true);
    json_num("rtt_p99_over_baseline", ratio(f->rtt_p99_us, base->rtt_p99_us), true);
    json_num("bulk_over_baseline", ratio(f->bulk_mib_s, base->bulk_mib_s), true);
    json_num("conns_over_baseline", ratio(f->conns_per_s, base->conns_per_s), false);
    fputs("}", stdout);
}

static void print_json(const row_t *rows, const figures_t *base, uint64_t count, uint64_t bytes)
{
    printf("{\"bench\": \"net\", \"count\": %llu, \"bytes\": %llu, \"message_bytes\": %d, "
           "\"baseline\": {\"name\": \"loopback\", \"what\": \"Linux TCP on 127.0.0.1 between "
           "two threads of this process\", ",
           (unsigned long long)count, (unsigned long long)bytes, MSG_BYTES);
    json_num("rtt_median_us", base->rtt_med_us, true);
    json_num("rtt_p99_us", base->rtt_p99_us, true);
    json_num("bulk_mib_s", base->bulk_mib_s, true);
    json_num("conns_per_s", base->conns_per_s, false);
    fputs("}, \"rows\": [", stdout);
    bool first = true;
    for (int i = 0; i < NROWS; i++) {
        const row_t *r = &rows[i];
        if (r->state == ST_OFF)
            continue;
        printf("%s{\"row\": \"%s\", \"status\": \"%s\"", first ? "" : ", ", row_names[i],
               st_names[r->state]);
        first = false;
        if (r->accel)
            printf(", \"accel\": \"%s\"", r->accel);
        if (r->state != ST_MEASURED) {
            fputs(", \"reason\": ", stdout);
            cli_json_str(r->why);
        } else if (i == ROW_SIM) {
            fputs(", \"clock\": \"wall\", ", stdout);
            json_figures(&r->f, base);
            fputs(", \"virtual\": {", stdout);
            json_figures(&r->virt, base);
            fputs("}, ", stdout);
            json_num("run_wall_s", r->wall_s, true);
            json_num("run_virtual_s", r->virt_s, false);
        } else {
            fputs(", \"clock\": \"wall\", ", stdout);
            json_figures(&r->f, base);
        }
        fputs("}", stdout);
    }
    /* Every bench JSON names the baseline of each ratio (rows[].ratios.*). */
    fputs("], \"baselines\": {"
          "\"rtt_median_over_baseline\": {\"baseline\": \"loopback\", \"ratio\": \"rtt_median_us / "
          "baseline.rtt_median_us\"}, "
          "\"rtt_p99_over_baseline\": {\"baseline\": \"loopback\", \"ratio\": \"rtt_p99_us / "
          "baseline.rtt_p99_us\"}, "
          "\"bulk_over_baseline\": {\"baseline\": \"loopback\", \"ratio\": \"bulk_mib_s / "
          "baseline.bulk_mib_s\"}, "
          "\"conns_over_baseline\": {\"baseline\": \"loopback\", \"ratio\": \"conns_per_s / "
          "baseline.conns_per_s\"}"
          "}}\n",
          stdout);
}

static void text_cell(const char *fmt, double v)
{
    if (v < 0)
        printf("%10s", "-");
    else
        printf(fmt, v);
}

static void text_line(const char *name, const char *accel, const figures_t *f,
                      const figures_t *base)
{
    printf("%-14s %-5s", name, accel ? accel : "");
    text_cell("%10.1f", f->rtt_med_us);
    text_cell("%10.1f", f->rtt_p99_us);
    text_cell("%10.1f", f->bulk_mib_s);
    text_cell("%10.0f", f->conns_per_s);
    if (base) {
        text_cell("%9.1fx", ratio(f->rtt_med_us, base->rtt_med_us));
        text_cell("%9.3fx", ratio(f->bulk_mib_s, base->bulk_mib_s));
        text_cell("%9.3fx", ratio(f->conns_per_s, base->conns_per_s));
    }
    putchar('\n');
}

static void print_text(const row_t *rows, const figures_t *base, uint64_t count, uint64_t bytes)
{
    printf("orrery bench net: %llu round trips of %d bytes, %.2f MiB echoed, %llu connections\n"
           "ratios against the baseline, loopback (Linux TCP on 127.0.0.1 between two threads):\n"
           "rtt x = row / baseline (slower), bulk x and conns x = row / baseline\n\n",
           (unsigned long long)count, MSG_BYTES, (double)bytes / (1024.0 * 1024.0),
           (unsigned long long)count);
    printf("%-14s %-5s%10s%10s%10s%10s%10s%10s%10s\n", "row", "accel", "rtt us", "p99 us", "MiB/s",
           "conn/s", "rtt x", "bulk x", "conns x");
    text_line("loopback", NULL, base, NULL);
    for (int i = 0; i < NROWS; i++) {
        const row_t *r = &rows[i];
        if (r->state == ST_OFF)
            continue;
        if (r->state != ST_MEASURED) {
            printf("%-14s %-5s %s: %s\n", row_names[i], r->accel ? r->accel : "",
                   st_names[r->state], r->why);
        } else if (i == ROW_SIM) {
            text_line("sim (wall)", NULL, &r->f, base);
            text_line("sim (virtual)", NULL, &r->virt, base);
            printf("%-14s       the run took %.2f s wall, %.3f s virtual\n", "", r->wall_s,
                   r->virt_s);
        } else {
            text_line(row_names[i], r->accel, &r->f, base);
        }
    }
}

/* ---- the command --------------------------------------------------------------------------- */

static const char bench_net_usage[] =
    "usage: orrery bench net [--json] [--rows hosted,qemu-q35,qemu-microvm,sim] [--bytes N]\n"
    "                        [--count N]\n"
    "\n"
    "Measure TCP through the echo service on port 7 (tcpecho over tcpip's lwIP):\n"
    "  round trip   N messages of 64 bytes on one connection, one at a time (median, p99)\n"
    "  bulk         BYTES sent on one connection while the echo comes back (MiB/s)\n"
    "  connections  N times: open, one 64-byte echo, close (per second)\n"
    "Rows:\n"
    "  hosted        `orrery run --net user,hostfwd=tcp:127.0.0.1:PORT-:7`, this process the\n"
    "                client on 127.0.0.1:PORT\n"
    "  qemu-q35      `orrery qemu` with the same --net, on q35 and microvm; KVM when the probe\n"
    "  qemu-microvm  of `orrery qemu --probe` says it runs, TCG otherwise\n"
    "  sim           two simulated nodes in this process (10.0.0.1 the client, 10.0.0.2\n"
    "                tcpecho) joined by the switch: virtual and wall-clock figures (no\n"
    "                connections per second)\n"
    "The baseline, measured first in the same run: Linux TCP on 127.0.0.1 between two threads\n"
    "of this process; every row has ratios against it. Every echoed byte is checked. Ports\n"
    "are free ones on 127.0.0.1; nothing leaves the machine.\n"
    "\n"
    "  --json       print one JSON object instead of the table\n"
    "  --rows LIST  which rows (default all four, comma-separated)\n"
    "  --bytes N    bulk bytes, 64..1073741824 (default 16777216)\n"
    "  --count N    round trips and connections, 1..1000000 (default 1000)\n"
    "\n"
    "A row that cannot run here (no QEMU, no image) is skipped with the reason; exit status 0\n"
    "when every other row was measured, 1 when one failed (its reason is printed), 2 for\n"
    "usage errors.\n";

/* --rows: a comma-separated list of row names. 0, or 2 after the usage error. */
static int parse_rows(const char *s, row_t *rows)
{
    char buf[256];
    if (strlen(s) >= sizeof(buf) || !*s)
        return cli_usage_error("bench net", "bench net: --rows wants a list of %s, %s, %s, %s",
                               row_names[0], row_names[1], row_names[2], row_names[3]);
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        int i;
        for (i = 0; i < NROWS && strcmp(w, row_names[i]) != 0; i++)
            ;
        if (i == NROWS)
            return cli_usage_error("bench net",
                                   "bench net: --rows: unknown row '%s' (rows: %s, %s, %s, %s)", w,
                                   row_names[0], row_names[1], row_names[2], row_names[3]);
        rows[i].state = ST_SKIPPED; /* asked for; set again when it runs */
    }
    return 0;
}

int hl_cmd_bench_net(int argc, char **argv)
{
    static row_t rows[NROWS];
    bool json = false, rows_given = false;
    uint64_t count = DEFAULT_COUNT, bytes = DEFAULT_BYTES;
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},        {"json", no_argument, NULL, 'j'},
        {"rows", required_argument, NULL, 'r'},  {"bytes", required_argument, NULL, 'b'},
        {"count", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0},
    };
    int c;
    memset(rows, 0, sizeof(rows));
    while ((c = cli_getopt(argc, argv, "bench net", opts)) != -1) {
        if (c == 'h') {
            fputs(bench_net_usage, stdout);
            return 0;
        } else if (c == 'j') {
            json = true;
        } else if (c == 'r') {
            memset(rows, 0, sizeof(rows));
            rows_given = true;
            if (parse_rows(optarg, rows) != 0)
                return 2;
        } else if (c == 'b') {
            if (cli_opt_u64("bench net", "--bytes", optarg, MSG_BYTES, BYTES_MAX, &bytes) != 0)
                return 2;
        } else if (c == 'c') {
            if (cli_opt_u64("bench net", "--count", optarg, 1, COUNT_MAX, &count) != 0)
                return 2;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("bench net", "bench net: unexpected argument '%s'", argv[optind]);
    for (int i = 0; i < NROWS && !rows_given; i++)
        rows[i].state = ST_SKIPPED;

    /* A child still running when we are stopped goes with us. */
    struct sigaction sa = {.sa_handler = on_fatal_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    figures_t base;
    char why[REASON_MAX];
    if (measure_loopback(count, bytes, &base, why) != 0) {
        fprintf(stderr, "orrery: bench net: the loopback baseline: %s\n", why);
        return 1;
    }

    /* The manifest for the children: a file of ours, removed on every path below (and by
     * on_fatal_signal). */
    const char *tmp = getenv("TMPDIR");
    char manifest[sizeof(manifest_path)];
    snprintf(manifest, sizeof(manifest), "%s/orrery-bench-net-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    static char self[4096];
    bool need_child = rows[ROW_HOSTED].state || rows[ROW_Q35].state || rows[ROW_MICROVM].state;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old); /* no signal between creating and naming it */
    int mfd = need_child ? mkstemp(manifest) : -1;
    if (mfd >= 0)
        memcpy(manifest_path, manifest, sizeof(manifest_path));
    sigprocmask(SIG_SETMASK, &old, NULL);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (need_child &&
        (mfd < 0 || cli_write_all(mfd, net_manifest, strlen(net_manifest)) != 0 || sl <= 0)) {
        fprintf(stderr, "orrery: bench net: writing the boot manifest %s: %s\n", manifest,
                strerror(errno));
        if (mfd >= 0) {
            close(mfd);
            unlink(manifest);
            manifest_path[0] = '\0';
        }
        return 1;
    }
    if (mfd >= 0)
        close(mfd);
    if (sl > 0)
        self[sl] = '\0';

    for (int i = 0; i < NROWS; i++) {
        row_t *r = &rows[i];
        if (r->state == ST_OFF)
            continue;
        r->f = r->virt = no_figures;
        if (!json)
            fprintf(stderr, "orrery: bench net: %s...\n", row_names[i]);
        if (i == ROW_HOSTED)
            run_hosted(r, self, manifest, count, bytes);
        else if (i == ROW_Q35)
            run_qemu(r, "q35", self, manifest, count, bytes);
        else if (i == ROW_MICROVM)
            run_qemu(r, "microvm", self, manifest, count, bytes);
        else
            bench_net_run_sim(r, count, bytes);
    }
    if (mfd >= 0) {
        unlink(manifest);
        manifest_path[0] = '\0';
    }

    int status = 0;
    for (int i = 0; i < NROWS; i++) {
        if (rows[i].state == ST_FAILED) {
            fprintf(stderr, "orrery: bench net: %s: %s\n", row_names[i], rows[i].why);
            status = 1;
        }
    }
    if (json)
        print_json(rows, &base, count, bytes);
    else
        print_text(rows, &base, count, bytes);
    return status;
}
