/* test_echo.c — the echo server through the simulator: replies, malformed requests, survival. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <iface/echo.h>
#include <iface/init_client.h>
#include <image.h>
#include <sim/sim.h>

static struct {
    int replies;
    char last[64];
    int errors[8]; /* echo.error statuses, by order */
    uint32_t error_types[8];
    int nerrors;
    bool closed;
} G;

/* Connects to echo, sends garbage of every kind, then one good request. */
static void send_all(os_ctx_t *ctx, os_handle_t ch)
{
    uint8_t junk[64];
    os_handle_t a, b;
    memset(junk, 0xff, sizeof junk);
    os_send(ctx, ch, echo_msg_request, junk, 3, NULL, 0);           /* short */
    os_send(ctx, ch, echo_msg_request, junk, sizeof junk, NULL, 0); /* length past the end */
    uint8_t nul[] = {1, 0, 0, 0, 3, 0, 'a', 0, 'b'};
    os_send(ctx, ch, echo_msg_request, nul, sizeof nul, NULL, 0); /* NUL in a str */
    os_send(ctx, ch, echo_msg_reply, nul, 4, NULL, 0);            /* wrong direction */
    os_send(ctx, ch, 99, NULL, 0, NULL, 0);                       /* unknown type */
    uint8_t ok[] = {1, 0, 0, 0, 2, 0, 'h', 'i'};
    os_channel_create(ctx, &a, &b);
    os_send(ctx, ch, echo_msg_request, ok, sizeof ok, &b, 1); /* a stray handle */
    os_handle_close(ctx, a);
    echo_request_t q = {42, "still alive"};
    assert_int_equal(0, echo_request_send(ctx, ch, &q));
}

static void client_start(os_ctx_t *ctx)
{
    assert_int_equal(0, init_connect_iface(ctx, 1, &echo_iface));
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_connected_t c;
    echo_reply_t r;
    echo_error_t e;
    if (ev->kind == OS_EV_PEER_CLOSED)
        G.closed = true;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &c) == 0) {
        echo_request_t q = {1, "hello"};
        assert_int_equal(0, echo_request_send(ctx, c.chan, &q));
        send_all(ctx, c.chan);
    } else if (echo_reply_decode(ev, &r) == 0) {
        G.replies++;
        strcpy(G.last, r.text);
    } else if (echo_error_decode(ev, &e) == 0 && G.nerrors < 8) {
        G.error_types[G.nerrors] = e.type;
        G.errors[G.nerrors++] = e.status;
    }
}

static const os_program_t client = {"client", 0, client_start, client_event};
static const os_program_t *const image[] = {&orrery_init, &orrery_echo, &client, NULL};

static void test_reply_and_malformed_requests(void **state)
{
    const char *manifest = "program echo\nprogram client reach=echo\n";
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = image;
    cfg.init_arg = manifest;
    cfg.init_arg_len = strlen(manifest);
    cfg.seed = 3;
    assert_int_equal(0, sim_boot(&cfg));
    sim_run(10000);
    assert_int_equal(2, G.replies); /* "hello", then "still alive" */
    assert_string_equal("still alive", G.last);
    assert_int_equal(6, G.nerrors);
    for (int i = 0; i < 6; i++)
        assert_int_equal(OS_EPROTO, G.errors[i]);
    assert_int_equal(echo_msg_request, G.error_types[0]);
    assert_int_equal(echo_msg_reply, G.error_types[3]);
    assert_int_equal(99, G.error_types[4]);
    assert_false(G.closed); /* echo never went away */
    assert_int_equal(0, sim_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_and_malformed_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
