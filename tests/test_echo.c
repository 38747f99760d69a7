/* test_echo.c — the echo server through the simulator: replies, malformed requests, survival. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* ---- many clients: echo's table of ECHO_CLIENTS_MAX (64) clients ---------------------- */

enum { TABLE = 64 };

static struct {
    int want;       /* connects to make */
    bool cycle;     /* close each channel after its reply (else hold them all) */
    int connects;   /* connected so far */
    int replies;
    int refused;    /* channels echo closed on us */
    int connect_errors;
    bool close_last;           /* hold: once all are served, close the last and ask on the rest */
    os_handle_t chans[TABLE + 1];
} M;

static void many_start(os_ctx_t *ctx)
{
    assert_int_equal(0, init_connect_iface(ctx, 1, &echo_iface));
}

static void many_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_connected_t c;
    init_reply_t ir;
    echo_reply_t r;
    if (ev->kind == OS_EV_PEER_CLOSED && ev->handle != init_channel(ctx))
        M.refused++;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &c) == 0) {
        if (M.connects < (int)(sizeof M.chans / sizeof M.chans[0]))
            M.chans[M.connects] = c.chan; /* kept for close_last; cycling closes as it goes */
        M.connects++;
        echo_request_t q = {(uint32_t)M.connects, "n"};
        assert_int_equal(0, echo_request_send(ctx, c.chan, &q));
        if (!M.cycle && M.connects < M.want)
            assert_int_equal(0, init_connect_iface(ctx, 1, &echo_iface));
    } else if (init_reply_decode(ev, &ir) == 0) {
        M.connect_errors++;
    } else if (echo_reply_decode(ev, &r) == 0) {
        M.replies++;
        if (M.close_last && M.replies == M.want) {
            os_handle_close(ctx, M.chans[M.want - 1]);
            for (int i = 0; i < M.want - 1; i++) {
                echo_request_t q = {0, "again"};
                assert_int_equal(0, echo_request_send(ctx, M.chans[i], &q));
            }
        }
        if (M.cycle) {
            os_handle_close(ctx, ev->handle);
            if (M.connects < M.want)
                assert_int_equal(0, init_connect_iface(ctx, 1, &echo_iface));
        }
    }
}

static const os_program_t many = {"many", 0, many_start, many_event};

/* ---- a malformed request that carries a handle ---------------------------------------- */

static struct {
    bool error;    /* echo answered echo.error */
    bool released; /* echo closed the handle the request carried */
} J;

static void junk_start(os_ctx_t *ctx)
{
    assert_int_equal(0, init_connect_iface(ctx, 1, &echo_iface));
}

static void junk_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_connected_t c;
    echo_error_t e;
    if (ev->kind == OS_EV_PEER_CLOSED)
        J.released = true; /* the kept end: the only handle besides init's and echo's */
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &c) == 0) {
        os_handle_t keep, give;
        uint8_t shortreq[3] = {1, 0, 0};
        assert_int_equal(0, os_channel_create(ctx, &keep, &give));
        assert_int_equal(0, os_send(ctx, c.chan, echo_msg_request, shortreq, sizeof shortreq,
                                    &give, 1));
    } else if (echo_error_decode(ev, &e) == 0) {
        J.error = true;
    }
}

static const os_program_t junk = {"junk", 0, junk_start, junk_event};

/* A second echo server under another name: its registration of "echo" is refused. */
static os_program_t echo2;

static const os_program_t *const image[] = {&orrery_init, &orrery_echo, &client, &many,
                                            &junk,        &echo2,       NULL};

static void boot(const char *manifest)
{
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = image;
    cfg.init_arg = manifest;
    cfg.init_arg_len = strlen(manifest);
    cfg.seed = 3;
    echo2 = orrery_echo;
    echo2.name = "echo2";
    assert_int_equal(0, sim_boot(&cfg));
}

static size_t occurrences(const char *s)
{
    size_t n = 0;
    for (const char *p = sim_console_output(NULL); (p = strstr(p, s)) != NULL; p++)
        n++;
    return n;
}

static void test_reply_and_malformed_requests(void **state)
{
    boot("program echo\nprogram client reach=echo\n");
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
    assert_int_equal(0, occurrences("[echo]")); /* registered, nothing to complain of */
    assert_int_equal(0, sim_teardown());
}

/* The table holds 64 clients; the 65th is refused (its channel closed, one log line) and the
 * 64 are still served. */
static void test_client_past_the_table_is_refused(void **state)
{
    memset(&M, 0, sizeof M);
    M.want = TABLE + 1;
    boot("program echo\nprogram many reach=echo\n");
    sim_run(200000);
    assert_int_equal(TABLE + 1, M.connects);
    assert_int_equal(0, M.connect_errors);
    assert_int_equal(TABLE, M.replies);
    assert_int_equal(1, M.refused);
    if (occurrences("[echo] too many clients; refusing one") != 1)
        fail_msg("output: %s", sim_console_output(NULL));
    assert_int_equal(0, sim_teardown());
}

/* A client that closes frees its place and its handle: five tables' worth of clients (more than
 * the OS_HANDLES_MAX (256) echo could hold if it kept their handles), one after another, each
 * served and none refused. */
static void test_closed_clients_free_their_place(void **state)
{
    memset(&M, 0, sizeof M);
    M.want = 5 * TABLE;
    M.cycle = true;
    boot("program echo\nprogram many reach=echo\n");
    sim_run(1000000);
    assert_int_equal(0, M.connect_errors);
    assert_int_equal(5 * TABLE, M.connects);
    assert_int_equal(5 * TABLE, M.replies);
    assert_int_equal(0, M.refused);
    assert_int_equal(0, occurrences("too many clients"));
    assert_int_equal(0, sim_teardown());
}

/* One client closing leaves the others connected and served. */
static void test_a_client_closing_leaves_the_others(void **state)
{
    memset(&M, 0, sizeof M);
    M.want = 3;
    M.close_last = true;
    boot("program echo\nprogram many reach=echo\n");
    sim_run(10000);
    assert_int_equal(3 + 2, M.replies);
    assert_int_equal(0, M.refused);
    assert_int_equal(0, sim_teardown());
}

/* A malformed request is answered with echo.error and the handle it carried is released. */
static void test_malformed_request_releases_its_handle(void **state)
{
    memset(&J, 0, sizeof J);
    boot("program echo\nprogram junk reach=echo\n");
    sim_run(10000);
    assert_true(J.error);
    assert_true(J.released);
    assert_int_equal(0, sim_teardown());
}

/* A refused registration is logged, once, with its reason; the server that got the name (either
 * may be first) says nothing. */
static void test_refused_registration_is_logged(void **state)
{
    boot("program echo\nprogram echo2\n");
    sim_run(10000);
    char want[96];
    snprintf(want, sizeof want, "] register echo: %s\n", os_strerror(OS_EEXIST));
    if (occurrences(want) != 1 || occurrences("register echo") != 1)
        fail_msg("want \"%s\" once; output: %s", want, sim_console_output(NULL));
    assert_int_equal(0, sim_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_and_malformed_requests),
        cmocka_unit_test(test_client_past_the_table_is_refused),
        cmocka_unit_test(test_closed_clients_free_their_place),
        cmocka_unit_test(test_a_client_closing_leaves_the_others),
        cmocka_unit_test(test_malformed_request_releases_its_handle),
        cmocka_unit_test(test_refused_registration_is_logged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
