/* net.c — the hosted "net0" device: Ethernet frames to and from libslirp, run on the loop thread.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libslirp.h>
#include <uv.h>

#include <hal/clock.h>
#include <hal/device.h>
#include <hal/net.h>
#include <k/kernel.h>

/*
 * Thread model. libslirp is not thread-safe: every call into it happens on the libuv loop
 * thread. Frames a task writes (ops->write, on a worker) go into a bounded ring and the loop is
 * poked with a uv_async; the loop feeds them to slirp_input. Frames slirp sends come out in
 * send_packet, on the loop thread, and are posted with k_post; when the kernel's queue is
 * full the frame is dropped and counted (Ethernet may drop; TCP retransmits), so the loop never
 * waits for a task. slirp's sockets are polled by one epoll set that the loop watches: before
 * each poll (uv_prepare) slirp lists its fds and the set is brought up to date; after it
 * (uv_check) poll(2) with no wait reads their state and slirp_pollfds_poll acts on it.
 */

enum {
    NET_RING = 64, /* frames written by tasks and not yet given to slirp */
    NET_FDS_MAX = 1024,
};

typedef struct net_frame {
    uint16_t len;
    uint8_t data[HAL_NET_MTU];
} net_frame_t;

typedef struct net_timer {
    uv_timer_t t;
    SlirpTimerCb cb;
    void *cb_opaque;
    struct net_timer *next, *prev; /* N.timers: closed at stop if slirp left any */
} net_timer_t;

static struct {
    int dev;
    bool added, started;
    hl_net_config_t cfg;
    uv_loop_t *loop;
    Slirp *slirp;

    /* worker -> loop */
    pthread_mutex_t lock; /* guards ring, head, count */
    net_frame_t ring[NET_RING];
    unsigned head, count;
    uv_async_t in_async;

    /* slirp's fds */
    int epfd;
    uv_poll_t ep_poll;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_timer_t tick; /* wakes the loop for slirp's own timeout from pollfds_fill */
    net_timer_t *timers;
    struct pollfd fds[NET_FDS_MAX];
    int nfds;
    int prev[NET_FDS_MAX]; /* fds in the epoll set after the last prepare */
    int nprev;

    /* capture (cfg.tap): one frame at a time, whichever thread moves it */
    pthread_mutex_t tap_lock;

    /* counters (atomic) */
    uint64_t rx_dropped; /* slirp -> task frames dropped: kernel queue full */
    uint64_t tx_full;    /* task -> slirp frames refused with OS_EFULL: ring full */
} N = {.lock = PTHREAD_MUTEX_INITIALIZER, .tap_lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1};

static const uint8_t net_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* ---- the device ops (worker threads) ---------------------------------------------------- */

/* Hand a frame to the capture hook, stamped with the clock trace records carry. */
static void net_tap(bool out, const void *frame, size_t len)
{
    if (!N.cfg.tap)
        return;
    pthread_mutex_lock(&N.tap_lock);
    N.cfg.tap(N.cfg.tap_self, hal_clock_now_ns(), out, frame, len);
    pthread_mutex_unlock(&N.tap_lock);
}

static int net_dev_write(void *self, uint32_t code, const void *buf, size_t len)
{
    if (code != HAL_NET_FRAME)
        return OS_EINVAL;
    if (len > HAL_NET_MTU)
        return OS_E2BIG;
    if (len == 0)
        return OS_EINVAL;
    pthread_mutex_lock(&N.lock);
    if (N.count == NET_RING) {
        pthread_mutex_unlock(&N.lock);
        __atomic_add_fetch(&N.tx_full, 1, __ATOMIC_RELAXED);
        return OS_EFULL;
    }
    net_frame_t *f = &N.ring[(N.head + N.count) % NET_RING];
    f->len = (uint16_t)len;
    memcpy(f->data, buf, len);
    N.count++;
    pthread_mutex_unlock(&N.lock);
    net_tap(true, buf, len);
    /* Workers are joined before hl_net_stop closes the async: it is always alive here. */
    uv_async_send(&N.in_async);
    return 0;
}

/* Frames that meet a full queue are dropped, never held: nothing to resume. */
static void net_dev_resume(void *self)
{
}

static const hal_device_ops_t net_ops = {
    .name = "net0",
    .self = NULL,
    .write = net_dev_write,
    .resume = net_dev_resume,
};

/* ---- slirp callbacks (loop thread) ------------------------------------------------------ */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    net_tap(false, buf, len);
    int rc = k_post(N.dev, HAL_NET_FRAME, buf, len);
    if (rc != 0)
        __atomic_add_fetch(&N.rx_dropped, 1, __ATOMIC_RELAXED);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    fprintf(stderr, "orrery: net0: %s\n", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    return (int64_t)uv_hrtime();
}

static void on_slirp_timer(uv_timer_t *t)
{
    net_timer_t *nt = (net_timer_t *)t;
    nt->cb(nt->cb_opaque);
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    net_timer_t *nt = calloc(1, sizeof(*nt));
    if (!nt)
        abort(); /* slirp has no way to be told */
    nt->cb = cb;
    nt->cb_opaque = cb_opaque;
    uv_timer_init(N.loop, &nt->t);
    nt->next = N.timers;
    if (N.timers)
        N.timers->prev = nt;
    N.timers = nt;
    return nt;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void close_timer(net_timer_t *nt)
{
    if (nt->prev)
        nt->prev->next = nt->next;
    else
        N.timers = nt->next;
    if (nt->next)
        nt->next->prev = nt->prev;
    uv_close((uv_handle_t *)&nt->t, free_handle);
}

static void cb_timer_free(void *timer, void *opaque)
{
    close_timer(timer);
}

/* expire_ms is absolute on cb_clock_get_ns's clock, in ms. */
static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    net_timer_t *nt = timer;
    int64_t now_ms = (int64_t)(uv_hrtime() / 1000000u);
    /* uv timers count from the loop's cached time, which may lag: one ms more never fires early. */
    uv_update_time(N.loop);
    uint64_t delay = expire_ms > now_ms ? (uint64_t)(expire_ms - now_ms) + 1 : 0;
    uv_timer_start(&nt->t, on_slirp_timer, delay, 0);
}

static void cb_register_poll_fd(int fd, void *opaque)
{
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
}

/* Called from inside slirp on the loop thread: the next prepare re-reads slirp's fds anyway. */
static void cb_notify(void *opaque)
{
}

static const SlirpCb net_cb = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
};

/*
 * libslirp listens for a hostfwd with a backlog of 1: clients that connect at once overflow the
 * host's accept queue, and a handshake the host dropped waits for a SYN-ACK retransmission
 * (seconds, growing). Run once over slirp's sockets after the hostfwds are added: each
 * listening one gets the system's backlog (listen() again only changes the backlog).
 */
static int widen_backlog(int fd, int events, void *opaque)
{
    int listening = 0;
    socklen_t len = sizeof(listening);
    (void)events;
    (void)opaque;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
        listen(fd, SOMAXCONN);
    return -1; /* not polled: the next fill (the loop's prepare) sets every index again */
}

/* ---- polling slirp's fds from the loop ------------------------------------------------ */

static int add_poll(int fd, int events, void *opaque)
{
    if (N.nfds == NET_FDS_MAX)
        return -1; /* slirp then sees no events for it */
    short ev = 0;
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    N.fds[N.nfds] = (struct pollfd){.fd = fd, .events = ev};
    return N.nfds++;
}

static int get_revents(int idx, void *opaque)
{
    if (idx < 0 || idx >= N.nfds)
        return 0;
    short r = N.fds[idx].revents;
    int ev = 0;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & (POLLERR | POLLNVAL))
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

static void on_tick(uv_timer_t *t)
{
    /* Nothing: waking the loop is the point; the check handle then runs slirp's timers. */
}

static void on_ep(uv_poll_t *p, int status, int events)
{
    /* Nothing: the check handle polls every fd after this round's I/O phase. */
}

/*
 * Before the loop blocks: ask slirp which fds it wants, make the epoll set match (an fd slirp
 * closed left the set by itself; a reused number is added afresh), and arm the tick.
 */
static void on_prepare(uv_prepare_t *h)
{
    uint32_t timeout = UINT32_MAX;
    N.nfds = 0;
    slirp_pollfds_fill(N.slirp, &timeout, add_poll, NULL);
    for (int i = 0; i < N.nprev; i++) {
        bool kept = false;
        for (int j = 0; j < N.nfds && !kept; j++)
            kept = N.fds[j].fd == N.prev[i];
        if (!kept)
            epoll_ctl(N.epfd, EPOLL_CTL_DEL, N.prev[i], NULL); /* ENOENT/EBADF if closed */
    }
    N.nprev = 0;
    for (int i = 0; i < N.nfds; i++) {
        /* One fd may be listed twice: the events of both entries. */
        uint32_t ev = 0;
        bool first = true;
        for (int j = 0; j < N.nfds; j++) {
            if (N.fds[j].fd != N.fds[i].fd)
                continue;
            if (j < i) {
                first = false;
                break;
            }
            ev |= (uint32_t)N.fds[j].events;
        }
        if (!first)
            continue;
        /* EPOLLIN/OUT/PRI have poll(2)'s values on Linux. */
        struct epoll_event ee = {.events = ev, .data.fd = N.fds[i].fd};
        if (epoll_ctl(N.epfd, EPOLL_CTL_MOD, N.fds[i].fd, &ee) < 0 && errno == ENOENT)
            epoll_ctl(N.epfd, EPOLL_CTL_ADD, N.fds[i].fd, &ee);
        N.prev[N.nprev++] = N.fds[i].fd;
    }
    if (timeout != UINT32_MAX)
        uv_timer_start(&N.tick, on_tick, timeout, 0);
    else
        uv_timer_stop(&N.tick);
}

/* After the loop's I/O phase: read every listed fd's state and let slirp act on it. */
static void on_check(uv_check_t *h)
{
    int n = poll(N.fds, (nfds_t)N.nfds, 0);
    slirp_pollfds_poll(N.slirp, n < 0, get_revents, NULL);
}

/* Frames from tasks: take them out of the ring one by one, feed slirp outside the lock. */
static void on_in_async(uv_async_t *a)
{
    static net_frame_t f; /* loop thread only */
    for (;;) {
        pthread_mutex_lock(&N.lock);
        if (N.count == 0) {
            pthread_mutex_unlock(&N.lock);
            return;
        }
        net_frame_t *src = &N.ring[N.head];
        f.len = src->len;
        memcpy(f.data, src->data, src->len);
        N.head = (N.head + 1) % NET_RING;
        N.count--;
        pthread_mutex_unlock(&N.lock);
        slirp_input(N.slirp, f.data, f.len);
    }
}

/* ---- life cycle ------------------------------------------------------------------------- */

int hl_net_add(const hl_net_config_t *cfg)
{
    N.cfg = *cfg;
    N.head = N.count = 0;
    N.nfds = N.nprev = 0;
    N.started = false;
    N.timers = NULL;
    __atomic_store_n(&N.rx_dropped, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&N.tx_full, 0, __ATOMIC_RELAXED);
    int dev = k_device_add(&net_ops);
    if (dev < 0)
        return dev;
    N.dev = dev;
    N.added = true;
    return 0;
}

int hl_net_start(uv_loop_t *loop, char *err, size_t errlen)
{
    N.loop = loop;
    SlirpConfig sc = {0};
    sc.version = 4;
    sc.restricted = N.cfg.restricted;
    sc.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &sc.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &sc.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &sc.vhost);
    inet_pton(AF_INET, "10.0.2.15", &sc.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &sc.vnameserver);
    sc.in6_enabled = false;
    sc.if_mtu = 1500; /* + the 14-byte Ethernet header = HAL_NET_MTU */
    sc.if_mru = 1500;
    N.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (N.epfd < 0) {
        snprintf(err, errlen, "net0: epoll: %s", strerror(errno));
        return OS_EIO;
    }
    N.slirp = slirp_new(&sc, &net_cb, NULL);
    if (!N.slirp) {
        snprintf(err, errlen, "net0: libslirp would not start");
        close(N.epfd);
        N.epfd = -1;
        return OS_EIO;
    }
    uv_async_init(loop, &N.in_async, on_in_async);
    uv_poll_init(loop, &N.ep_poll, N.epfd);
    uv_poll_start(&N.ep_poll, UV_READABLE, on_ep);
    uv_prepare_init(loop, &N.prepare);
    uv_prepare_start(&N.prepare, on_prepare);
    uv_check_init(loop, &N.check);
    uv_check_start(&N.check, on_check);
    uv_timer_init(loop, &N.tick);
    N.started = true;

    for (unsigned i = 0; i < N.cfg.nfwd; i++) {
        const hl_hostfwd_t *f = &N.cfg.fwd[i];
        struct in_addr host = {.s_addr = htonl(f->host_addr)};
        struct in_addr guest = {.s_addr = htonl(f->guest_addr)};
        if (slirp_add_hostfwd(N.slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
            char h[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &host, h, sizeof(h));
            snprintf(err, errlen, "net0: hostfwd %s:%s:%u: cannot listen: %s",
                     f->udp ? "udp" : "tcp", h, f->host_port, strerror(errno));
            return OS_EIO;
        }
    }
    uint32_t timeout = UINT32_MAX;
    slirp_pollfds_fill(N.slirp, &timeout, widen_backlog, NULL);
    /* The link is up from the start; the MAC is QEMU's default. */
    k_post(N.dev, HAL_NET_LINK_UP, net_mac, sizeof(net_mac));
    return 0;
}

void hl_net_stop(void)
{
    if (N.started) {
        uv_handle_t *hs[] = {(uv_handle_t *)&N.in_async, (uv_handle_t *)&N.ep_poll,
                             (uv_handle_t *)&N.prepare, (uv_handle_t *)&N.check,
                             (uv_handle_t *)&N.tick};
        for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
            if (!uv_is_closing(hs[i]))
                uv_close(hs[i], NULL);
        /* Its timers are closed through timer_free; any it kept are closed here, so the
         * loop's last run (which frees them) never calls into the freed slirp. */
        slirp_cleanup(N.slirp);
        N.slirp = NULL;
        while (N.timers)
            close_timer(N.timers);
        N.started = false;
    }
    if (N.epfd >= 0)
        close(N.epfd);
    N.epfd = -1;
    N.added = false;
}

uint64_t hl_net_rx_dropped(void)
{
    return __atomic_load_n(&N.rx_dropped, __ATOMIC_RELAXED);
}

uint64_t hl_net_tx_full(void)
{
    return __atomic_load_n(&N.tx_full, __ATOMIC_RELAXED);
}
