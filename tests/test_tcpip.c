/* test_tcpip.c — the tcpip server, hosted on slirp (restricted: nothing leaves the machine):
 * DHCP binds, the net interface reports the lease, and malformed requests get net.error. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <hl/hosted.h>
#include <iface/init_client.h>
#include <iface/net.h>
#include <image.h>

enum { REQ_POLL = 1, REQ_FINAL = 77, ERRORS_MAX = 16 };

/* What the client saw; read by the test after hl_run returned (handlers run on workers). */
static struct {
    net_info_t bound;        /* the first info with an address */
    net_info_t final;        /* the answer to the good request after the garbage */
    net_counters_t counters; /* the counters that came with `bound` */
    int polls;               /* infos without an address yet */
    int errors[ERRORS_MAX];
    uint32_t error_types[ERRORS_MAX];
    int nerrors;
    int other; /* messages that were neither info nor error */
    bool closed;
} G;

typedef struct client {
    os_handle_t chan, timer;
} client_t;

static void ask(os_ctx_t *ctx, client_t *c, uint32_t req)
{
    net_status_t q = {req};
    net_status_send(ctx, c->chan, &q);
}

/* Garbage of every kind, then one good request. */
static void send_garbage(os_ctx_t *ctx, client_t *c)
{
    uint8_t junk[64];
    os_handle_t a, b;
    memset(junk, 0xff, sizeof junk);
    os_send(ctx, c->chan, net_msg_status, junk, 3, NULL, 0); /* short */
    os_send(ctx, c->chan, net_msg_status, junk, 8, NULL, 0); /* long */
    os_send(ctx, c->chan, net_msg_info, junk, 16, NULL, 0);  /* wrong direction */
    os_send(ctx, c->chan, net_msg_error, junk, 8, NULL, 0);  /* an error, to the server */
    os_send(ctx, c->chan, 99, NULL, 0, NULL, 0);             /* unknown type */
    os_channel_create(ctx, &a, &b);
    uint8_t ok[4] = {5, 0, 0, 0};
    os_send(ctx, c->chan, net_msg_status, ok, sizeof ok, &b, 1); /* a stray handle */
    os_handle_close(ctx, a);
    ask(ctx, c, REQ_FINAL);
}

static void client_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    os_timer_create(ctx, &c->timer);
    init_connect_iface(ctx, 1, &net_iface);
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    init_connected_t conn;
    net_info_t info;
    net_counters_t counters;
    net_error_t e;

    if (ev->kind == OS_EV_TIMER) {
        ask(ctx, c, REQ_POLL); /* DHCP has not bound yet: ask again */
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED) {
        G.closed = true;
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &conn) == 0) {
            c->chan = conn.chan;
            ask(ctx, c, REQ_POLL);
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    if (net_info_decode(ev, &info) == 0) {
        if (info.req == REQ_FINAL) {
            G.final = info;
            init_shutdown_t s = {2, 0};
            init_shutdown_send(ctx, init_channel(ctx), &s);
        } else if (info.addr == 0) {
            G.polls++;
            os_timer_set(ctx, c->timer, os_clock_now(ctx) + 20000000u);
        } else {
            G.bound = info;
            send_garbage(ctx, c);
        }
    } else if (net_counters_decode(ev, &counters) == 0) {
        if (G.bound.addr != 0 && G.counters.req == 0)
            G.counters = counters;
    } else if (net_error_decode(ev, &e) == 0 && G.nerrors < ERRORS_MAX) {
        G.error_types[G.nerrors] = e.type;
        G.errors[G.nerrors++] = e.status;
    } else {
        G.other++;
        iface_discard(ctx, ev);
    }
}

static const os_program_t client = {"client", sizeof(client_t), client_start, client_event};
static const os_program_t *const image[] = {&orrery_init, &orrery_tcpip, &client, NULL};

static int run_manifest(const char *manifest, hl_run_stats_t *stats)
{
    memset(&G, 0, sizeof G);
    hl_net_config_t net = {.restricted = true};
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = image;
    rc.init_program = "init";
    rc.init_arg = manifest;
    rc.init_arg_len = strlen(manifest);
    int in[2]; /* console input that never ends (ended input with no shell stops the OS) */
    assert_int_equal(0, pipe2(in, O_CLOEXEC));
    rc.console_in = in[0];
    rc.console_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    rc.workers = 2;
    rc.net = &net;
    rc.stats = stats;
    rc.timeout_ms = 60000; /* a hang guard only: the run ends when the answers are in */
    int status = hl_run(&rc);
    close(rc.console_out);
    close(in[0]);
    close(in[1]);
    return status;
}

/* arg=addr=...: the address, gateway and DNS server are ours at once, no DHCP. */
static void test_static_address_from_the_manifest(void **state)
{
    hl_run_stats_t stats;
    int status = run_manifest("program tcpip arg=addr=10.0.2.16/25,gw=10.0.2.2,dns=10.0.2.3\n"
                              "program client reach=net,init\n",
                              &stats);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(0x0a000210, G.bound.addr);
    assert_int_equal(0xffffff80, G.bound.mask);
    assert_int_equal(0x0a000202, G.bound.gw);
    assert_int_equal(0x0a000203, G.bound.dns);
    assert_int_equal(0, G.bound.dhcp);
    assert_int_equal(0, G.polls); /* the first answer had the address */
    assert_int_equal(6, G.nerrors);
}

static void test_dhcp_status_and_malformed_requests(void **state)
{
    const char *manifest = "program tcpip\nprogram client reach=net,init\n";
    hl_net_config_t net = {.restricted = true};
    hl_run_stats_t stats;
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = image;
    rc.init_program = "init";
    rc.init_arg = manifest;
    rc.init_arg_len = strlen(manifest);
    int in[2]; /* console input that never ends (ended input with no shell stops the OS) */
    assert_int_equal(0, pipe2(in, O_CLOEXEC));
    rc.console_in = in[0];
    rc.console_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    rc.workers = 2;
    rc.net = &net;
    rc.stats = &stats;
    rc.timeout_ms = 60000; /* a hang guard only: the run ends when the answers are in */
    int status = hl_run(&rc);
    close(rc.console_out);
    close(in[0]);
    close(in[1]);

    assert_int_equal(0, status);
    assert_false(stats.timed_out);
    assert_int_equal(0, stats.leaks);
    /* the lease slirp gives, in host order */
    assert_int_equal(0x0a00020f, G.bound.addr);
    assert_int_equal(0xffffff00, G.bound.mask);
    assert_int_equal(0, G.bound.gw); /* restricted slirp gives no gateway */
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    assert_int_equal(6, G.bound.mac_len);
    assert_memory_equal(mac, G.bound.mac, 6);
    assert_int_equal(1, G.bound.dhcp);
    assert_true(G.counters.rx_frames >= 2); /* OFFER, ACK */
    assert_true(G.counters.tx_frames >= 2); /* DISCOVER, REQUEST */
    assert_int_equal(0, G.counters.rx_dropped + G.counters.tx_dropped);
    /* every malformed request got net.error OS_EPROTO, and the server still answers */
    assert_int_equal(6, G.nerrors);
    for (int i = 0; i < G.nerrors; i++)
        assert_int_equal(OS_EPROTO, G.errors[i]);
    assert_int_equal(net_msg_status, G.error_types[0]);
    assert_int_equal(net_msg_status, G.error_types[1]);
    assert_int_equal(net_msg_info, G.error_types[2]);
    assert_int_equal(net_msg_error, G.error_types[3]);
    assert_int_equal(99, G.error_types[4]);
    assert_int_equal(net_msg_status, G.error_types[5]);
    assert_int_equal(REQ_FINAL, G.final.req);
    assert_int_equal(0x0a00020f, G.final.addr);
    assert_int_equal(0, G.other);
    assert_false(G.closed);
}

/* arg=dhcp says what no arg says: the lease from DHCP. */
static void test_dhcp_named_in_the_arg(void **state)
{
    (void)state;
    hl_run_stats_t stats;
    int status = run_manifest("program tcpip arg=dhcp\nprogram client reach=net,init\n", &stats);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(0x0a00020f, G.bound.addr);
    assert_int_equal(1, G.bound.dhcp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dhcp_status_and_malformed_requests),
        cmocka_unit_test(test_static_address_from_the_manifest),
        cmocka_unit_test(test_dhcp_named_in_the_arg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
