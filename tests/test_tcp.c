/* test_tcp.c — the tcp and udp interfaces of the tcpip server, hosted on slirp (restricted:
 * only 127.0.0.1 and 10.0.2.x), with real host sockets as the peers through hostfwd: tcpecho
 * echoes 1 MiB with a half close, UDP, many connections; a client that does not read; a
 * listener nobody accepts from; malformed messages; a refused connect; a denied program. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hl/hosted.h>
#include <iface/init_client.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <iface/udp.h>
#include <image.h>

#include "../servers/tcpip/tcpip_limits.h" /* TCPIP_CONNS_MAX */
#include "tcp_test.h"

/* ---- what the tasks and the host thread saw (tcp_test.h) --------------------------------- */

tcp_seen_t G;
int expected_ports[4];
int nexpected;
int host_ports[4];

void host_failed(const char *fmt, ...)
{
    if (G.host_fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(G.host_fail, sizeof G.host_fail, fmt, ap);
    va_end(ap);
}

extern const os_program_t greeter; /* docs/networking.md's example */

static const os_program_t *const image[] = {
    &orrery_init, &orrery_tcpip, &orrery_tcpecho, &stopper, &lazy, &prober,
    &denied,      &greeter,      &selfcon,        &udpsink, NULL};

/* ---- the host side ------------------------------------------------------------------------ */

static int free_port(int type)
{
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    return ntohs(a.sin_port);
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static bool wait_ready(void)
{
    uint64_t end = now_ms() + GUARD_MS;
    while (!atomic_load(&G.ready)) {
        if (now_ms() > end) {
            host_failed("the listeners never appeared");
            return false;
        }
        usleep(1000);
    }
    return true;
}

static int tcp_to(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(s);
        return -1;
    }
    struct pollfd pf = {s, POLLOUT, 0};
    if (poll(&pf, 1, GUARD_MS) != 1) {
        close(s);
        return -1;
    }
    return s;
}

/* Send BULK bytes and read them back at once, then half close and read to EOF. */
static void host_bulk(int port)
{
    static uint8_t out[BULK], in[BULK];
    for (long i = 0; i < BULK; i++)
        out[i] = pattern((uint64_t)i);
    int s = tcp_to(port);
    if (s < 0) {
        host_failed("bulk: connect: %s", strerror(errno));
        return;
    }
    long sent = 0, got = 0;
    bool shut = false;
    uint64_t end = now_ms() + GUARD_MS;
    while (now_ms() < end) {
        struct pollfd pf = {s, (short)(POLLIN | (sent < BULK ? POLLOUT : 0)), 0};
        if (poll(&pf, 1, 1000) < 0)
            break;
        if (sent < BULK && (pf.revents & POLLOUT)) {
            ssize_t n = send(s, out + sent, (size_t)(BULK - sent), MSG_NOSIGNAL);
            if (n > 0)
                sent += n;
        }
        if (sent == BULK && !shut) {
            shutdown(s, SHUT_WR);
            shut = true;
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(s, in + got, (size_t)(BULK - got < 65536 ? BULK - got + 1 : 65536), 0);
            if (n == 0) {
                G.bulk_eof = 1;
                break;
            }
            if (n < 0 && errno != EAGAIN) {
                host_failed("bulk: recv after %ld bytes: %s", got, strerror(errno));
                break;
            }
            if (n > 0)
                got += n;
            if (got > BULK) {
                host_failed("bulk: more bytes than sent");
                break;
            }
        }
    }
    close(s);
    G.bulk_echoed = got == BULK && memcmp(out, in, BULK) == 0 ? got : -got;
}

/* MANY connections open at once: each sends a line and waits for its echo (or a reset)
 * before the next one opens, and stays open: the server's table fills, the rest are reset. */
static void host_many(int port)
{
    static int s[MANY];
    for (int i = 0; i < MANY; i++) {
        s[i] = tcp_to(port);
        if (s[i] < 0) {
            host_failed("many: connect %d: %s", i, strerror(errno));
            break;
        }
        char msg[32], back[64];
        int n = snprintf(msg, sizeof msg, "line %d\n", i);
        send(s[i], msg, (size_t)n, MSG_NOSIGNAL);
        struct pollfd pf = {s[i], POLLIN, 0};
        if (poll(&pf, 1, GUARD_MS) != 1) {
            host_failed("many: connection %d: no echo and no reset", i);
            break;
        }
        ssize_t r = recv(s[i], back, sizeof back, 0);
        if (r == n && memcmp(back, msg, (size_t)n) == 0) {
            G.many_echoed++;
        } else if (r <= 0) {
            G.many_reset++;
            close(s[i]);
            s[i] = -1;
        } else {
            host_failed("many: connection %d got %zd wrong bytes", i, r);
            break;
        }
    }
    for (int i = 0; i < MANY; i++)
        if (s[i] >= 0)
            close(s[i]);
}

/* One connection after the other: each echoes, each closes. */
static void host_sequential(int port)
{
    for (int i = 0; i < SEQUENTIAL; i++) {
        int s = tcp_to(port);
        if (s < 0)
            break;
        char back[8];
        send(s, "seq\n", 4, MSG_NOSIGNAL);
        struct pollfd pf = {s, POLLIN, 0};
        if (poll(&pf, 1, GUARD_MS) == 1 && recv(s, back, sizeof back, 0) == 4)
            G.seq_ok++;
        close(s);
    }
}

static void *host_echo_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        uint64_t t0 = now_ms();
        host_bulk(host_ports[0]);
        uint64_t t1 = now_ms();
        host_many(host_ports[0]);
        uint64_t t2 = now_ms();
        host_sequential(host_ports[0]);
        if (getenv("TEST_TCP_VERBOSE"))
            fprintf(stderr, "bulk %lu ms, many %lu ms, sequential %lu ms\n",
                    (unsigned long)(t1 - t0), (unsigned long)(t2 - t1),
                    (unsigned long)(now_ms() - t2));
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

/* Write LAZY_BYTES to the lazy task, which does not read: the write stalls (the window
 * closed); then the task reads, the rest goes through; then read its own 1 MiB back. */
static void host_lazy(int port)
{
    int s = tcp_to(port);
    int small = 65536; /* the host's own buffer must not swallow the test */
    if (s >= 0)
        setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (s < 0) {
        host_failed("lazy: connect: %s", strerror(errno));
        return;
    }
    static uint8_t buf[65536];
    long sent = 0;
    bool told = false;
    uint64_t end = now_ms() + GUARD_MS;
    while (sent < LAZY_BYTES && now_ms() < end) {
        long n = LAZY_BYTES - sent < (long)sizeof buf ? LAZY_BYTES - sent : (long)sizeof buf;
        for (long i = 0; i < n; i++)
            buf[i] = pattern((uint64_t)(sent + i));
        struct pollfd pf = {s, POLLOUT, 0};
        /* a stall of 300 ms with nothing taken: every buffer is full, the window is shut */
        if (poll(&pf, 1, told ? 1000 : 300) == 0 && !told) {
            G.lazy_sent = sent;
            atomic_store(&G.go, 1);
            told = true;
            continue;
        }
        ssize_t w = send(s, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            sent += w;
        else if (w < 0 && errno != EAGAIN) {
            host_failed("lazy: send: %s", strerror(errno));
            break;
        }
    }
    if (!told) {
        G.lazy_sent = sent;
        atomic_store(&G.go, 1);
    }
    shutdown(s, SHUT_WR);
    /* the task's own 1 MiB, then its FIN */
    long got = 0;
    bool bad = false;
    while (now_ms() < end) {
        struct pollfd pf = {s, POLLIN, 0};
        if (poll(&pf, 1, 1000) != 1)
            continue;
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern((uint64_t)(got + i)))
                bad = true;
        got += r;
    }
    close(s);
    if (bad || got != BULK)
        host_failed("lazy: got %ld bytes back%s", got, bad ? ", some wrong" : "");
}

/* BACKLOG_TRIES connections to a listener nobody accepts from (backlog 2): three are reset;
 * once the task accepts, the two that waited get "hi". */
static void host_backlog(int port)
{
    int s[BACKLOG_TRIES];
    int done[BACKLOG_TRIES] = {0};
    for (int i = 0; i < BACKLOG_TRIES; i++)
        s[i] = tcp_to(port);
    uint64_t end = now_ms() + GUARD_MS;
    int left = BACKLOG_TRIES;
    while (left > 0 && now_ms() < end) {
        struct pollfd pf[BACKLOG_TRIES];
        for (int i = 0; i < BACKLOG_TRIES; i++)
            pf[i] = (struct pollfd){done[i] ? -1 : s[i], POLLIN, 0};
        poll(pf, BACKLOG_TRIES, 1000);
        for (int i = 0; i < BACKLOG_TRIES; i++) {
            if (done[i] || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char b[8];
            ssize_t r = recv(s[i], b, sizeof b, 0);
            if (r == 2 && memcmp(b, "hi", 2) == 0)
                G.backlog_hi++;
            else if (r <= 0)
                G.backlog_closed++;
            done[i] = 1;
            close(s[i]);
            left--;
        }
        if (G.backlog_closed == BACKLOG_TRIES - BACKLOG)
            atomic_store(&G.go_backlog, 1); /* the rest waits: now let the task accept */
    }
}

static void *host_lazy_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        host_backlog(host_ports[3]);
        host_lazy(host_ports[2]);
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

static void *host_probe_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        int s = tcp_to(host_ports[0]);
        char b[16];
        long got = 0;
        uint64_t end = now_ms() + GUARD_MS;
        while (s >= 0 && now_ms() < end) {
            struct pollfd pf = {s, POLLIN, 0};
            if (poll(&pf, 1, 1000) != 1)
                continue;
            ssize_t r = recv(s, b + got, sizeof b - (size_t)got, 0);
            if (r <= 0)
                break;
            got += r;
        }
        G.probe_ok = got == 2 && memcmp(b, "ok", 2) == 0;
        if (s >= 0)
            close(s);
        /* the peer vanishing: a connection the host resets (SO_LINGER 0) once it is up */
        s = tcp_to(host_ports[0]);
        while (s >= 0 && !atomic_load(&G.accepted2) && now_ms() < end)
            usleep(1000);
        if (s >= 0) {
            struct linger lg = {1, 0};
            setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(s);
        }
        while (!atomic_load(&G.reset_closed) && now_ms() < end)
            usleep(1000);
        while (!atomic_load(&G.ping_done) && now_ms() < end)
            usleep(1000);
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

static pthread_t host_thread;
static void *(*host_main)(void *);

static void on_boot(void *self)
{
    (void)self;
    pthread_create(&host_thread, NULL, host_main, NULL);
}

/* Boot the image with this manifest and hostfwd rules; the host side runs `main`. */
static int run(const char *manifest, const char *fwd, void *(*main_fn)(void *),
               hl_run_stats_t *stats, char *out, size_t outlen)
{
    bool on;
    hl_net_config_t net;
    char err[256];
    if (hl_net_parse(fwd, &on, &net, err, sizeof err) != 0)
        fail_msg("--net %s: %s", fwd, err);
    net.restricted = true;
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = image;
    rc.init_program = "init";
    rc.init_arg = manifest;
    rc.init_arg_len = strlen(manifest);
    int in[2]; /* console input that never ends (ended input with no shell stops the OS) */
    assert_int_equal(0, pipe2(in, O_CLOEXEC));
    char path[] = "/tmp/test_tcp_outXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    rc.console_in = in[0];
    rc.console_out = fd;
    rc.workers = 2;
    rc.net = &net;
    rc.stats = stats;
    rc.on_boot = on_boot;
    rc.timeout_ms = 4 * GUARD_MS; /* a hang guard only: the stopper ends the run */
    host_main = main_fn;
    int status = hl_run(&rc);
    atomic_store(&G.ready, 1); /* a host thread still waiting gives up */
    pthread_join(host_thread, NULL);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    if (getenv("TEST_TCP_VERBOSE"))
        fprintf(stderr, "%s", out);
    close(in[0]);
    close(in[1]);
    return status;
}

static void reset_globals(void)
{
    memset(&G, 0, sizeof G);
}

static char console[1 << 16];

static void test_tcpecho_bulk_half_close_udp_and_many(void **state)
{
    (void)state;
    reset_globals();
    host_ports[0] = free_port(SOCK_STREAM);
    host_ports[1] = free_port(SOCK_DGRAM);
    expected_ports[0] = 7;
    nexpected = 1;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:7,hostfwd=udp:127.0.0.1:%d-:7",
             host_ports[0], host_ports[1]);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram tcpecho reach=tcp,udp\nprogram stopper "
                     "reach=net,init\n",
                     fwd, host_echo_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    if (getenv("TEST_TCP_VERBOSE"))
        fprintf(stderr,
                "rx %lu tx %lu rx_dropped %lu tx_dropped %lu other %lu; hosted rx_dropped %lu "
                "tx_full %lu; echoed %d reset %d\n",
                (unsigned long)G.counters.rx_frames, (unsigned long)G.counters.tx_frames,
                (unsigned long)G.counters.rx_dropped, (unsigned long)G.counters.tx_dropped,
                (unsigned long)G.counters.other_dropped, (unsigned long)stats.net_rx_dropped,
                (unsigned long)stats.net_tx_full, G.many_echoed, G.many_reset);
    assert_int_equal(0, status);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(BULK, G.bulk_echoed); /* every byte, in order */
    assert_int_equal(1, G.bulk_eof);       /* our FIN came back after the echo */
    /* UDP echo is tested in pytest/test_tcp.py: restricted slirp drops the guest's datagrams */
    assert_int_equal(TCPIP_CONNS_MAX, G.many_echoed); /* the server's table, full */
    assert_int_equal(MANY - TCPIP_CONNS_MAX, G.many_reset);
    assert_int_equal(G.many_reset, G.counters.other_dropped); /* each reset was counted */
    assert_int_equal(SEQUENTIAL, G.seq_ok);
    /* every connection's pcb is gone; the listener stays */
    assert_int_equal(0, G.conns_tcp_other);
    assert_int_equal(1, G.conns_listen);
    assert_int_equal(1, G.info.dhcp);
    assert_true(G.counters.rx_bytes > BULK && G.counters.tx_bytes > BULK);
    assert_non_null(strstr(console, "[tcpecho] tcp port 7"));
}

static void test_slow_reader_and_unaccepted_listener(void **state)
{
    (void)state;
    reset_globals();
    host_ports[2] = free_port(SOCK_STREAM);
    host_ports[3] = free_port(SOCK_STREAM);
    expected_ports[0] = PORT_LAZY;
    expected_ports[1] = PORT_BACKLOG;
    nexpected = 2;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=tcp:127.0.0.1:%d-:%d",
             host_ports[2], PORT_LAZY, host_ports[3], PORT_BACKLOG);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram lazy reach=tcp\nprogram stopper reach=net,init\n", fwd,
                     host_lazy_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    assert_int_equal(0, status);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    /* the listener nobody accepted from: backlog 2 waited, the rest were reset and counted */
    assert_int_equal(BACKLOG_TRIES - BACKLOG, G.backlog_closed);
    assert_int_equal(BACKLOG, G.backlog_hi);
    assert_int_equal(BACKLOG_TRIES - BACKLOG, G.counters.other_dropped);
    /* the reader that did not read: the host stalled before the end, nothing was lost */
    assert_true(G.lazy_sent < LAZY_BYTES);
    assert_int_equal(LAZY_BYTES, G.lazy_got);
    assert_int_equal(0, G.lazy_bad);
    assert_int_equal(LAZY_BYTES, G.lazy_eof_bytes);
    /* its own 1 MiB met a full send buffer: EFULL, then WRITABLE */
    assert_int_equal(BULK, G.lazy_echo_sent);
    assert_true(G.lazy_efull > 0);
    assert_true(G.lazy_writable > 0);
    assert_int_equal(0, G.conns_tcp_other);
}

static void test_malformed_refused_and_denied(void **state)
{
    (void)state;
    reset_globals();
    host_ports[0] = free_port(SOCK_STREAM);
    expected_ports[0] = PORT_PROBE;
    nexpected = 1;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:%d", host_ports[0], PORT_PROBE);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram prober reach=tcp,udp,net\nprogram denied "
                     "reach=udp\nprogram stopper reach=net,init\n",
                     fwd, host_probe_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    assert_int_equal(0, status);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    /* control channel: 4 malformed; listener channel: 4; then the answers to bad requests */
    int proto = 0, einval = 0, inuse = 0;
    for (int i = 0; i < G.nerrors; i++) {
        if (G.errors[i] == OS_EPROTO)
            proto++;
        else if (G.errors[i] == OS_EINVAL)
            einval++;
        else if (G.errors[i] == OS_EADDRINUSE && G.error_types[i] == 1005)
            inuse++;
        else
            fail_msg("error %d: type %u status %d", i, G.error_types[i], G.errors[i]);
    }
    assert_int_equal(8, proto);
    assert_int_equal(2, einval); /* connect to address 0, backlog 65 */
    assert_int_equal(1, inuse);  /* a second listener on port 9 */
    /* the connection channel: 4 malformed, shutdown how 2, data after shutdown */
    assert_int_equal(6, G.nconn_errors);
    for (int i = 0; i < 5; i++)
        assert_int_equal(OS_EPROTO, G.conn_errors[i]);
    assert_int_equal(tcp_msg_shutdown, G.conn_error_types[4]);
    assert_int_equal(OS_ESTATE, G.conn_errors[5]);
    assert_int_equal(tcp_msg_data, G.conn_error_types[5]);
    assert_int_equal(1, G.probe_ok); /* and the connection went on */
    /* a closed port on 10.0.2.2: refused, then the channel closed */
    assert_int_equal(OS_ECONNREFUSED, G.refused);
    assert_int_equal(1, G.refused_closed);
    /* a peer that resets: error ECONNRESET, then the channel closed */
    assert_int_equal(OS_ECONNRESET, G.reset_error);
    assert_int_equal(1, atomic_load(&G.reset_closed));
    /* udp: 4 malformed and a sendto to address 0 */
    assert_int_equal(5, G.nudp_errors);
    assert_int_equal(OS_EINVAL, G.udp_errors[4]);
    assert_int_equal(udp_msg_sendto, G.udp_error_types[4]);
    assert_int_equal(0x0a000202, G.resolved);
    assert_int_equal(OS_EINVAL, G.net_failed[2]); /* resolve "" */
    assert_int_equal(OS_EINVAL, G.net_failed[4]); /* ping of 1401 bytes */
    assert_int_equal(OS_EINVAL, G.net_failed[5]); /* ping of address 0 */
    /* slirp answers pings to its own address */
    if (G.net_failed[3] != 0)
        fail_msg("ping 10.0.2.2: %s", os_strerror(G.net_failed[3]));
    assert_int_equal(3, G.pong.req);
    assert_int_equal(0x0a000202, G.pong.addr);
    assert_int_equal(42, G.pong.seq);
    assert_int_equal(56, G.pong.size);
    assert_true(G.pong.ttl > 0);
    assert_true(G.pong.rtt_ns > 0);
    /* without reach=tcp */
    assert_int_equal(OS_EACCES, G.denied);
    assert_non_null(strstr(console, "denied: denied (task"));
    assert_non_null(strstr(console, "may not reach tcp"));
}

/* docs/networking.md's example program greets a host socket and closes. */
/*
 * Datagrams to the socket nobody reads until the server has dropped some for its full queue:
 * DGRAMS at once, then bursts of DGRAM_BURST with a pause (a busy machine may lose a burst in
 * slirp or the kernel's device queue before the server sees it, which proves nothing); then
 * wait until its client reads again.
 */
static void *host_udp_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)host_ports[0]),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        for (int i = 0; i < DGRAMS_MAX && !atomic_load(&U.released); i++) {
            sendto(s, "d", 1, 0, (struct sockaddr *)&a, sizeof a);
            atomic_fetch_add(&U.sent, 1);
            if (i >= DGRAMS && i % DGRAM_BURST == 0)
                usleep(5000);
        }
        close(s);
        uint64_t end = now_ms() + GUARD_MS;
        while ((!atomic_load(&U.released) || atomic_load(&U.got) < OS_CHAN_QUEUE_MAX) &&
               now_ms() < end)
            usleep(1000);
        if (!atomic_load(&U.released))
            host_failed("udp: no datagram was dropped, or the queue was not read");
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

/* the host only waits for selfcon's connection to end; the stopper then checks the pcbs */
static void *host_idle_main(void *arg)
{
    (void)arg;
    uint64_t end = now_ms() + GUARD_MS;
    while (wait_ready() && !atomic_load(&S.closed) && now_ms() < end)
        usleep(1000);
    atomic_store(&G.host_done, 1);
    return NULL;
}

static void *host_greeter_main(void *arg)
{
    (void)arg;
    if (wait_ready()) {
        int s = tcp_to(host_ports[0]);
        char b[64];
        long got = 0;
        uint64_t end = now_ms() + GUARD_MS;
        while (s >= 0 && now_ms() < end && got < (long)sizeof b) {
            struct pollfd pf = {s, POLLIN, 0};
            if (poll(&pf, 1, 1000) != 1)
                continue;
            ssize_t r = recv(s, b + got, sizeof b - (size_t)got, 0);
            if (r <= 0) {
                G.bulk_eof = r == 0;
                break;
            }
            got += r;
        }
        G.probe_ok = got == 18 && memcmp(b, "hello from orrery\n", 18) == 0;
        if (s >= 0)
            close(s);
    }
    atomic_store(&G.host_done, 1);
    return NULL;
}

static void test_doc_greeter(void **state)
{
    (void)state;
    reset_globals();
    host_ports[0] = free_port(SOCK_STREAM);
    expected_ports[0] = 13;
    nexpected = 1;
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=tcp:127.0.0.1:%d-:13", host_ports[0]);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram greeter reach=tcp\nprogram stopper reach=net,init\n",
                     fwd, host_greeter_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s\n%s", G.host_fail, console);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(1, G.probe_ok);
    assert_int_equal(1, G.bulk_eof); /* and the close came after the line */
    assert_non_null(strstr(console, "[greeter] listening on tcp port 13"));
}

/* Connect to our own address: established (addresses and ports), data both ways, both FINs. */
static void test_connect_to_ourselves(void **state)
{
    (void)state;
    reset_globals();
    memset(&S, 0, sizeof S);
    expected_ports[0] = PORT_SELF;
    nexpected = 1;
    hl_run_stats_t stats;
    int status =
        run("program tcpip\nprogram selfcon reach=net,tcp\nprogram stopper reach=net,init\n",
            "user", host_idle_main, &stats, console, sizeof console);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(0x0a00020f, S.est.laddr);
    assert_int_equal(0x0a00020f, S.est.raddr);
    assert_int_equal(PORT_SELF, S.est.rport);
    assert_true(S.est.lport != 0 && S.est.lport != PORT_SELF);
    assert_int_equal(1, S.ping);
    assert_int_equal(1, S.pong);
    assert_int_equal(4, S.eof_bytes);
    assert_int_equal(
        1, atomic_load(&S.closed)); /* after both FINs the server closed the client's channel */
    assert_int_equal(0, G.conns_tcp_other);
}

/* A UDP socket whose client does not read: 128 datagrams wait, the rest are dropped and
 * counted; nothing else is lost (frames the kernel had no room for are counted too). */
static void test_udp_full_queue_drops_and_counts(void **state)
{
    (void)state;
    reset_globals();
    memset(&U, 0, sizeof U);
    host_ports[0] = free_port(SOCK_DGRAM);
    nexpected = 0; /* no TCP listener to wait for: the stopper waits for the address only */
    char fwd[160];
    snprintf(fwd, sizeof fwd, "user,hostfwd=udp:127.0.0.1:%d-:%d", host_ports[0], PORT_SINK);
    hl_run_stats_t stats;
    int status = run("program tcpip\nprogram udpsink reach=udp,net\nprogram stopper "
                     "reach=net,init\n",
                     fwd, host_udp_main, &stats, console, sizeof console);
    if (G.host_fail[0])
        fail_msg("host: %s (got %d, rx %lu dropped %lu other %lu, kernel dropped %lu)\n%s",
                 G.host_fail, atomic_load(&U.got), (unsigned long)G.counters.rx_frames,
                 (unsigned long)G.counters.rx_dropped, (unsigned long)G.counters.other_dropped,
                 (unsigned long)stats.net_rx_dropped, console);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    /* the queue filled (128 waited), the rest was dropped and counted, nothing came twice;
     * datagrams may also be lost before the server (slirp, the kernel's device queue) */
    assert_true(atomic_load(&U.got) >= OS_CHAN_QUEUE_MAX);
    assert_true(G.counters.other_dropped > 0);
    assert_true(atomic_load(&U.got) + G.counters.other_dropped <= (uint64_t)atomic_load(&U.sent));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcpecho_bulk_half_close_udp_and_many),
        cmocka_unit_test(test_slow_reader_and_unaccepted_listener),
        cmocka_unit_test(test_malformed_refused_and_denied),
        cmocka_unit_test(test_doc_greeter),
        cmocka_unit_test(test_connect_to_ourselves),
        cmocka_unit_test(test_udp_full_queue_drops_and_counts),
    };
    if (getenv("TEST_TCP_ONLY"))
        cmocka_set_test_filter(getenv("TEST_TCP_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
