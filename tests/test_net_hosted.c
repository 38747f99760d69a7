/* test_net_hosted.c — the hosted net0 device on libslirp: ARP, DHCP, hostfwd, refused writes,
 * and the --net parser. Only slirp's own addresses (10.0.2.x) and 127.0.0.1 are ever used. */
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hal/net.h>
#include <hl/hosted.h>
#include <k/kernel.h>

static const uint8_t my_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* What the test program saw; read by the test after hl_run returned. */
static struct {
    int link_up;
    uint8_t link_mac[6];
    int big_rc, bad_code_rc, empty_rc, mtu_rc;
    int arp_reply;
    uint8_t gw_mac[6];
    int dhcp_offer;
    uint32_t offered; /* yiaddr, host order */
    int syn_seen;     /* hostfwd: a SYN for 10.0.2.15:80 arrived */
    int write_errors;
} seen;

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, my_mac, 6);
    put16(f + 12, type);
}

/* ARP (request or reply) from 10.0.2.15/my_mac about `tip`. 60 bytes (minimum frame). */
static size_t arp(uint8_t *f, uint16_t op, const uint8_t *dst, const uint8_t *tha,
                  const uint8_t tip[4])
{
    memset(f, 0, 60);
    eth(f, dst, 0x0806);
    uint8_t *a = f + 14;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, my_mac, 6);
    static const uint8_t me[4] = {10, 0, 2, 15};
    memcpy(a + 14, me, 4);
    memcpy(a + 18, tha, 6);
    memcpy(a + 24, tip, 4);
    return 60;
}

/* A DHCP DISCOVER: broadcast, from 0.0.0.0:68 to 255.255.255.255:67, a full 576-byte BOOTP. */
static size_t dhcp_discover(uint8_t *f)
{
    enum { IP = 14, UDP = 34, BP = 42, BP_LEN = 548 };
    size_t total = 14 + 20 + 8 + BP_LEN;
    memset(f, 0, total);
    eth(f, bcast, 0x0800);
    uint8_t *ip = f + IP;
    ip[0] = 0x45;
    put16(ip + 2, 20 + 8 + BP_LEN);
    ip[8] = 64;
    ip[9] = 17;
    memset(ip + 16, 0xff, 4);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += get16(ip + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, (uint16_t)~sum);
    uint8_t *udp = f + UDP;
    put16(udp, 68);
    put16(udp + 2, 67);
    put16(udp + 4, 8 + BP_LEN); /* checksum 0: none */
    uint8_t *bp = f + BP;
    bp[0] = 1; /* BOOTREQUEST */
    bp[1] = 1;
    bp[2] = 6;
    memcpy(bp + 4, "\x12\x34\x56\x78", 4);
    memcpy(bp + 28, my_mac, 6);
    memcpy(bp + 236, "\x63\x82\x53\x63", 4);
    memcpy(bp + 240, "\x35\x01\x01\xff", 4); /* DHCP message type DISCOVER; end */
    return total;
}

/* The capture hook's view (hl_net_config_t.tap): calls are serialized by net.c. */
static struct {
    int in, out;
    size_t out_len[8]; /* the first frames written, by length */
    bool in_order;     /* times never went back, per direction */
    uint64_t last_in, last_out;
    bool offer_in; /* the DHCP offer went through the hook */
} tapped;

static void tap(void *self, uint64_t t_ns, bool out, const void *frame, size_t len)
{
    const uint8_t *f = frame;
    if (out) {
        if (tapped.out < 8)
            tapped.out_len[tapped.out] = len;
        tapped.out++;
        tapped.in_order &= t_ns >= tapped.last_out;
        tapped.last_out = t_ns;
    } else {
        tapped.in++;
        tapped.in_order &= t_ns >= tapped.last_in;
        tapped.last_in = t_ns;
        if (len > 14 + 20 + 8 && f[12] == 8 && f[13] == 0 && f[14 + 9] == 17 &&
            f[14 + 20 + 1] == 67)
            tapped.offer_in = true;
    }
}

typedef struct net_test {
    os_handle_t dev;
} net_test_t;

/* The hostfwd run: answer slirp's ARP for 10.0.2.15 and wait for the forwarded SYN. */
static bool hostfwd_run;

static void send_frame(os_ctx_t *ctx, net_test_t *s, const uint8_t *f, size_t len)
{
    if (os_device_write(ctx, s->dev, HAL_NET_FRAME, f, len) != 0)
        seen.write_errors++;
}

static void net_start(os_ctx_t *ctx)
{
    net_test_t *s = os_state(ctx);
    OS_ASSERT(ctx, os_device_open(ctx, "net0", &s->dev) == 0);
    static uint8_t big[HAL_NET_MTU + 1];
    seen.big_rc = os_device_write(ctx, s->dev, HAL_NET_FRAME, big, sizeof(big));
    seen.bad_code_rc = os_device_write(ctx, s->dev, 99, big, 60);
    seen.empty_rc = os_device_write(ctx, s->dev, HAL_NET_FRAME, NULL, 0);
    /* A whole MTU of zeros is accepted (slirp drops it: ethertype 0). */
    seen.mtu_rc = os_device_write(ctx, s->dev, HAL_NET_FRAME, big, HAL_NET_MTU);
}

static const uint8_t gw_ip[4] = {10, 0, 2, 2};

static void on_frame(os_ctx_t *ctx, net_test_t *s, const uint8_t *f, size_t len)
{
    uint8_t out[600];
    if (len >= 42 && get16(f + 12) == 0x0806) {
        const uint8_t *a = f + 14;
        if (get16(a + 6) == 2 && memcmp(a + 14, gw_ip, 4) == 0 && memcmp(f, my_mac, 6) == 0 &&
            !hostfwd_run) {
            seen.arp_reply++;
            memcpy(seen.gw_mac, a + 8, 6);
            send_frame(ctx, s, out, dhcp_discover(out));
        }
        static const uint8_t me[4] = {10, 0, 2, 15};
        if (get16(a + 6) == 1 && memcmp(a + 24, me, 4) == 0 && hostfwd_run)
            send_frame(ctx, s, out, arp(out, 2, a + 8, a + 8, a + 14)); /* "10.0.2.15 is us" */
        return;
    }
    if (len < 34 || get16(f + 12) != 0x0800)
        return;
    const uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 15) * 4;
    if (len < 14 + ihl + 20)
        return;
    const uint8_t *l4 = ip + ihl;
    if (ip[9] == 17 && get16(l4) == 67 && len >= 14 + ihl + 8 + 240) {
        const uint8_t *bp = l4 + 8;
        /* options: find message type (53) */
        for (size_t o = 240; 14 + ihl + 8 + o + 2 < len && bp[o] != 255;) {
            if (bp[o] == 0) {
                o++;
                continue;
            }
            if (bp[o] == 53 && bp[o + 2] == 2 && bp[0] == 2 && get32(bp + 4) == 0x12345678) {
                seen.dhcp_offer++;
                seen.offered = get32(bp + 16);
                os_shutdown(ctx, 0);
                return;
            }
            o += 2u + bp[o + 1];
        }
        return;
    }
    if (ip[9] == 6 && hostfwd_run && get32(ip + 16) == 0x0a00020f && get16(l4 + 2) == 80 &&
        (l4[13] & 0x02)) {
        seen.syn_seen++;
        os_shutdown(ctx, 0);
    }
}

static void net_event(os_ctx_t *ctx, const os_event_t *ev)
{
    net_test_t *s = os_state(ctx);
    if (ev->kind != OS_EV_DEVICE)
        return;
    if (ev->type == HAL_NET_LINK_UP) {
        seen.link_up++;
        if (ev->len == 6)
            memcpy(seen.link_mac, ev->data, 6);
        if (!hostfwd_run) {
            uint8_t out[60];
            static const uint8_t zero[6];
            send_frame(ctx, s, out, arp(out, 1, bcast, zero, gw_ip));
        }
        return;
    }
    if (ev->type == HAL_NET_FRAME)
        on_frame(ctx, s, ev->data, ev->len);
}

static const os_program_t net_prog = {"net-test", sizeof(net_test_t), net_start, net_event};
static const os_program_t *const net_programs[] = {&net_prog, NULL};

static int run_net(const hl_net_config_t *net, void (*on_boot)(void *), hl_run_stats_t *stats,
                   const os_program_t *const *programs)
{
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = programs;
    rc.init_program = "net-test";
    rc.console_in = -1;
    rc.console_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    rc.workers = 2;
    rc.net = net;
    rc.stats = stats;
    rc.on_boot = on_boot;
    rc.timeout_ms = 60000; /* a hang guard only: the run ends as soon as the answer arrives */
    int status = hl_run(&rc);
    close(rc.console_out);
    return status;
}

/* ARP for the gateway, then DHCP DISCOVER -> OFFER of 10.0.2.15; and the refused writes. */
static void arp_and_dhcp(void **state)
{
    memset(&seen, 0, sizeof(seen));
    memset(&tapped, 0, sizeof(tapped));
    tapped.in_order = true;
    hostfwd_run = false;
    hl_net_config_t net = {.restricted = true, .tap = tap}; /* nothing can leave the machine */
    hl_run_stats_t stats;
    assert_int_equal(0, run_net(&net, NULL, &stats, net_programs));
    /* The hook saw the three frames the device took (the MTU of zeros, the ARP request, the
     * DHCP discover), not the three it refused, and the replies: ARP, then the offer. */
    assert_int_equal(3, tapped.out);
    assert_int_equal(HAL_NET_MTU, tapped.out_len[0]);
    assert_int_equal(60, tapped.out_len[1]);
    assert_true(tapped.out_len[2] > 14 + 20 + 8 + 240);
    assert_true(tapped.in >= 2);
    assert_true(tapped.offer_in);
    assert_true(tapped.in_order);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(1, seen.link_up);
    assert_memory_equal(my_mac, seen.link_mac, 6);
    assert_int_equal(OS_E2BIG, seen.big_rc);
    assert_int_equal(OS_EINVAL, seen.bad_code_rc);
    assert_int_equal(OS_EINVAL, seen.empty_rc);
    assert_int_equal(0, seen.mtu_rc);
    assert_int_equal(1, seen.arp_reply);
    static const uint8_t slirp_mac[6] = {0x52, 0x55, 10, 0, 2, 2};
    assert_memory_equal(slirp_mac, seen.gw_mac, 6);
    assert_int_equal(1, seen.dhcp_offer);
    assert_int_equal(0x0a00020f, seen.offered);
    assert_int_equal(0, seen.write_errors);
    assert_int_equal(0, stats.net_rx_dropped);
}

/* ---- a flood: frames slirp sends into a full queue are dropped and counted ---------------- */

enum { FLOOD = OS_CHAN_QUEUE_MAX + 72 };

static struct {
    int sent, replies;
    uint64_t dropped_seen; /* hl_net_rx_dropped() when the handler stopped waiting */
} flood;

/*
 * On LINK_UP, within one handler: FLOOD ARP requests (retrying while the hand-off ring is
 * full), then wait until slirp's replies overflowed the queue this very handler keeps from
 * draining. Exactly OS_CHAN_QUEUE_MAX replies then reach the task; the rest were dropped.
 */
static void flood_event(os_ctx_t *ctx, const os_event_t *ev)
{
    net_test_t *s = os_state(ctx);
    if (ev->kind != OS_EV_DEVICE)
        return;
    if (ev->type == HAL_NET_LINK_UP) {
        uint8_t out[60];
        static const uint8_t zero[6];
        arp(out, 1, bcast, zero, gw_ip);
        while (flood.sent < FLOOD) {
            int rc = os_device_write(ctx, s->dev, HAL_NET_FRAME, out, sizeof(out));
            if (rc == 0)
                flood.sent++;
            else if (rc != OS_EFULL)
                seen.write_errors++;
        }
        /* Hang guard only (a lost reply): the count is what the test checks. */
        time_t give_up = time(NULL) + 60;
        while (hl_net_rx_dropped() < FLOOD - OS_CHAN_QUEUE_MAX && time(NULL) < give_up)
            ;
        flood.dropped_seen = hl_net_rx_dropped();
        return;
    }
    if (ev->type == HAL_NET_FRAME && ev->len >= 42 &&
        get16((const uint8_t *)ev->data + 12) == 0x0806 && ++flood.replies == OS_CHAN_QUEUE_MAX)
        os_shutdown(ctx, 0);
}

static void flood_start(os_ctx_t *ctx)
{
    net_test_t *s = os_state(ctx);
    OS_ASSERT(ctx, os_device_open(ctx, "net0", &s->dev) == 0);
}

static const os_program_t flood_prog = {"net-test", sizeof(net_test_t), flood_start, flood_event};
static const os_program_t *const flood_programs[] = {&flood_prog, NULL};

static void full_queue_drops_and_counts(void **state)
{
    memset(&seen, 0, sizeof(seen));
    memset(&flood, 0, sizeof(flood));
    memset(&tapped, 0, sizeof(tapped));
    tapped.in_order = true;
    hl_net_config_t net = {.restricted = true, .tap = tap};
    hl_run_stats_t stats;
    assert_int_equal(0, run_net(&net, NULL, &stats, flood_programs));
    /* Captured: every request the ring took, and every reply, also those the kernel dropped. */
    assert_int_equal(FLOOD, tapped.out);
    assert_int_equal(FLOOD, tapped.in);
    assert_true(tapped.in_order);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(0, seen.write_errors);
    assert_int_equal(FLOOD, flood.sent);
    assert_int_equal(FLOOD - OS_CHAN_QUEUE_MAX, flood.dropped_seen);
    assert_int_equal(OS_CHAN_QUEUE_MAX, flood.replies);
    assert_int_equal(FLOOD - OS_CHAN_QUEUE_MAX, stats.net_rx_dropped);
}

/* ---- hostfwd: a connection to 127.0.0.1:PORT reaches the guest as a SYN for 10.0.2.15:80 -- */

static int fwd_port;
static int fwd_sock = -1;

/* A free loopback port: bind port 0 and read it back. */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(0, bind(s, (struct sockaddr *)&a, sizeof(a)));
    socklen_t al = sizeof(a);
    assert_int_equal(0, getsockname(s, (struct sockaddr *)&a, &al));
    close(s);
    return ntohs(a.sin_port);
}

/* On the loop thread after slirp listens: start a non-blocking connect to the forward. */
static void connect_fwd(void *self)
{
    fwd_sock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)fwd_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(fwd_sock, (struct sockaddr *)&a, sizeof(a));
    if (rc != 0 && errno != EINPROGRESS) {
        close(fwd_sock);
        fwd_sock = -1;
    }
}

static void hostfwd_reaches_guest(void **state)
{
    memset(&seen, 0, sizeof(seen));
    hostfwd_run = true;
    fwd_port = free_port();
    char spec[96];
    snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%d-:80", fwd_port);
    bool on;
    hl_net_config_t net;
    char err[256];
    assert_int_equal(0, hl_net_parse(spec, &on, &net, err, sizeof(err)));
    assert_true(on);
    net.restricted = true;
    hl_run_stats_t stats;
    assert_int_equal(0, run_net(&net, connect_fwd, &stats, net_programs));
    assert_true(fwd_sock >= 0);
    close(fwd_sock);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(1, seen.syn_seen);
}

/* ---- the --net parser ------------------------------------------------------------------ */

static void parse_good(void **state)
{
    bool on = true;
    hl_net_config_t n;
    char err[256];
    assert_int_equal(0, hl_net_parse("none", &on, &n, err, sizeof(err)));
    assert_false(on);
    assert_int_equal(0, hl_net_parse("user", &on, &n, err, sizeof(err)));
    assert_true(on);
    assert_int_equal(0, n.nfwd);
    assert_int_equal(0, hl_net_parse("user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:"
                                     "localhost:5353-10.0.2.20:53,hostfwd=::2222-:22",
                                     &on, &n, err, sizeof(err)));
    assert_true(on);
    assert_int_equal(3, n.nfwd);
    assert_false(n.fwd[0].udp);
    assert_int_equal(0x7f000001, n.fwd[0].host_addr);
    assert_int_equal(8080, n.fwd[0].host_port);
    assert_int_equal(0x0a00020f, n.fwd[0].guest_addr);
    assert_int_equal(80, n.fwd[0].guest_port);
    assert_true(n.fwd[1].udp);
    assert_int_equal(0x7f000001, n.fwd[1].host_addr);
    assert_int_equal(5353, n.fwd[1].host_port);
    assert_int_equal(0x0a000214, n.fwd[1].guest_addr);
    assert_int_equal(53, n.fwd[1].guest_port);
    assert_false(n.fwd[2].udp);              /* empty protocol: tcp, as in QEMU */
    assert_int_equal(0, n.fwd[2].host_addr); /* empty host address: any, as in QEMU */
    assert_int_equal(2222, n.fwd[2].host_port);
    assert_int_equal(22, n.fwd[2].guest_port);
}

static void parse_bad(void **state)
{
    static const struct {
        const char *spec, *says;
    } bad[] = {
        {"", "is not a network"},
        {"slirp", "'slirp' is not a network"},
        {"user,", "unknown ''"},
        {"user,restrict=on", "unknown 'restrict=on'"},
        {"user,hostfwd=", "unknown 'hostfwd='"},
        {"user,hostfwd=tcp", "wants [tcp|udp]"},
        {"user,hostfwd=sctp:127.0.0.1:1-:2", "protocol must be tcp or udp, not 'sctp'"},
        {"user,hostfwd=tcp:127.0.0.1:8080:80", "wants [tcp|udp]"},
        {"user,hostfwd=tcp:127.0.0.1:8080-80", "wants [tcp|udp]"},
        {"user,hostfwd=tcp:1.2.3:8080-:80", "bad host address '1.2.3'"},
        {"user,hostfwd=tcp:127.0.0.1:0-:80", "host port must be 1..65535, not '0'"},
        {"user,hostfwd=tcp:127.0.0.1:65536-:80", "host port must be 1..65535, not '65536'"},
        {"user,hostfwd=tcp:127.0.0.1:-:80", "host port must be 1..65535, not ''"},
        {"user,hostfwd=tcp:127.0.0.1:80x-:80", "host port must be 1..65535, not '80x'"},
        {"user,hostfwd=tcp:127.0.0.1:8080-:", "guest port must be 1..65535, not ''"},
        {"user,hostfwd=tcp:127.0.0.1:8080-localhost:80", "bad guest address 'localhost'"},
        {"user,hostfwd=tcp:127.0.0.1:8080-192.168.1.1:80", "must be in 10.0.2.0/24"},
        {"user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:8080-:81",
         "host port 8080 is forwarded twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool on = true;
        hl_net_config_t n;
        char err[256] = "";
        if (hl_net_parse(bad[i].spec, &on, &n, err, sizeof(err)) != -1 || !strstr(err, bad[i].says))
            fail_msg("'%s': got '%s', wanted '%s'", bad[i].spec, err, bad[i].says);
        assert_false(on);
    }
    /* One rule more than the limit. */
    char spec[2048] = "user";
    for (int i = 0; i <= HL_NET_FWD_MAX; i++)
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), ",hostfwd=tcp:127.0.0.1:%d-:80",
                 10000 + i);
    bool on;
    hl_net_config_t n;
    char err[256] = "";
    assert_int_equal(-1, hl_net_parse(spec, &on, &n, err, sizeof(err)));
    assert_non_null(strstr(err, "more than 16 hostfwd rules"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_good),
        cmocka_unit_test(parse_bad),
        cmocka_unit_test(arp_and_dhcp),
        cmocka_unit_test(hostfwd_reaches_guest),
        cmocka_unit_test(full_queue_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
