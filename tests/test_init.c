/* test_init.c — init in the simulator: names, reach, versions, restarts, garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <iface/echo.h>
#include <iface/init_client.h>
#include <image.h>
#include <manifest.h>
#include <sim/sim.h>

/* What the test programs saw. */
static struct {
    uint32_t id_delta; /* client: added to echo's id in its connect */
    int reply_status;  /* client: init's error reply, 1 if none */
    bool connected;
    uint64_t connected_at;
    char echo_text[64];
    int lazy_clients; /* lazy: new_client messages */
    int starts;       /* quitter */
    int exit_status;  /* quitter */
    uint32_t last_restarts;
    int errors; /* fuzzer: init.error replies */
    bool fuzz_connected;
    const char *spawn_name; /* spawner */
    uint32_t spawned_id;    /* spawner: the reply's task id */
    int waiters_connected;  /* waiter */
    uint32_t refused_req;   /* waiter: the request init refused */
} G;

/* ---- test programs -------------------------------------------------------------------- */

static void client_start(os_ctx_t *ctx)
{
    init_connect_t m;
    memset(&m, 0, sizeof m);
    m.req = 7;
    strcpy(m.name, "echo");
    m.id = iface_id(&echo_iface) + G.id_delta;
    assert_int_equal(0, init_connect_send(ctx, init_channel(ctx), &m));
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_connected_t c;
    init_reply_t r;
    echo_reply_t e;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &c) == 0) {
        assert_int_equal(7, c.req);
        G.connected = true;
        G.connected_at = os_clock_now(ctx);
        echo_request_t q = {1, "ping"};
        assert_int_equal(0, echo_request_send(ctx, c.chan, &q));
    } else if (init_reply_decode(ev, &r) == 0) {
        assert_int_equal(7, r.req);
        G.reply_status = r.status;
    } else if (echo_reply_decode(ev, &e) == 0) {
        strcpy(G.echo_text, e.text);
    }
}

static const os_program_t client = {"client", 0, client_start, client_event};

/* Registers "echo" only 100 ms after it starts. */
static void lazy_start(os_ctx_t *ctx)
{
    os_handle_t t;
    assert_int_equal(0, os_timer_create(ctx, &t));
    assert_int_equal(0, os_timer_set(ctx, t, os_clock_now(ctx) + 100000000));
}

static void lazy_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_new_client_t nc;
    if (ev->kind == OS_EV_TIMER)
        assert_int_equal(0, init_register_iface(ctx, 1, &echo_iface));
    else if (ev->kind == OS_EV_MESSAGE && init_new_client_decode(ev, &nc) == 0)
        G.lazy_clients++;
}

static const os_program_t lazy = {"lazy", 0, lazy_start, lazy_event};

static void quitter_start(os_ctx_t *ctx)
{
    os_task_info_t t[16];
    int n = os_task_list(ctx, t, 16);
    for (int i = 0; i < n && i < 16; i++) {
        if (t[i].id == os_task_id(ctx))
            G.last_restarts = t[i].restarts;
    }
    G.starts++;
    os_exit(ctx, G.exit_status);
}

static void quitter_event(os_ctx_t *ctx, const os_event_t *ev)
{
}

static const os_program_t quitter = {"quitter", 0, quitter_start, quitter_event};

/* Sends init garbage of every message type, then one good connect. */
static void fuzzer_start(os_ctx_t *ctx)
{
    uint8_t junk[100];
    memset(junk, 0xff, sizeof junk);
    for (uint32_t type = 0; type <= 12; type++) {
        assert_int_equal(0, os_send(ctx, init_channel(ctx), type, junk, 0, NULL, 0));
        assert_int_equal(0, os_send(ctx, init_channel(ctx), type, junk, 3, NULL, 0));
        assert_int_equal(0, os_send(ctx, init_channel(ctx), type, junk, sizeof junk, NULL, 0));
    }
    /* a well-formed register carrying a handle it should not */
    init_register_t r;
    memset(&r, 0, sizeof r);
    r.req = 1;
    strcpy(r.name, "x");
    uint8_t buf[64];
    os_handle_t hs[4], a, b;
    size_t len, nh;
    assert_int_equal(0, iface_encode(iface_msg(&init_iface, init_msg_register), &r, buf, sizeof buf,
                                     &len, hs, &nh));
    assert_int_equal(0, os_channel_create(ctx, &a, &b));
    assert_int_equal(0, os_send(ctx, init_channel(ctx), init_msg_register, buf, len, &b, 1));
    assert_int_equal(0, init_connect_iface(ctx, 2, &echo_iface));
}

static void fuzzer_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_error_t e;
    init_connected_t c;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_error_decode(ev, &e) == 0) {
        assert_int_equal(OS_EPROTO, e.status);
        G.errors++;
    } else if (init_connected_decode(ev, &c) == 0) {
        G.fuzz_connected = true;
    }
}

static const os_program_t fuzzer = {"fuzzer", 0, fuzzer_start, fuzzer_event};

/* Asks init to shut the OS down with status 9. */
static void stopper_start(os_ctx_t *ctx)
{
    init_shutdown_t m = {11, 9};
    assert_int_equal(0, init_shutdown_send(ctx, init_channel(ctx), &m));
}

static void stopper_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_reply_t r;
    if (ev->kind == OS_EV_MESSAGE && init_reply_decode(ev, &r) == 0) {
        assert_int_equal(11, r.req);
        G.reply_status = r.status;
    }
}

static const os_program_t stopper = {"stopper", 0, stopper_start, stopper_event};

/* Asks init to spawn G.spawn_name after 100 ms (so a manifest program may have ended). */
static void spawner_start(os_ctx_t *ctx)
{
    os_handle_t t;
    assert_int_equal(0, os_timer_create(ctx, &t));
    assert_int_equal(0, os_timer_set(ctx, t, os_clock_now(ctx) + 100000000));
}

static void spawner_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_reply_t r;
    if (ev->kind == OS_EV_TIMER) {
        init_spawn_t m;
        memset(&m, 0, sizeof m);
        m.req = 5;
        strcpy(m.program, G.spawn_name);
        assert_int_equal(0, init_spawn_send(ctx, init_channel(ctx), &m));
    } else if (ev->kind == OS_EV_MESSAGE && init_reply_decode(ev, &r) == 0) {
        assert_int_equal(5, r.req);
        G.reply_status = r.status;
        G.spawned_id = r.value;
    }
}

static const os_program_t spawner = {"spawner", 0, spawner_start, spawner_event};

/* Connects to "echo" WAITERS times at once, before anyone registered it. */
enum { PENDING_MAX = 32, WAITERS = PENDING_MAX + 1 };

static void waiter_start(os_ctx_t *ctx)
{
    for (uint32_t req = 1; req <= WAITERS; req++)
        assert_int_equal(0, init_connect_iface(ctx, req, &echo_iface));
}

static void waiter_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_connected_t c;
    init_reply_t r;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &c) == 0) {
        G.waiters_connected++;
        os_handle_close(ctx, c.chan);
    } else if (init_reply_decode(ev, &r) == 0) {
        G.reply_status = r.status;
        G.refused_req = r.req;
    }
}

static const os_program_t waiter = {"waiter", 0, waiter_start, waiter_event};

/* Tells init console input ended, though it is not the console's server. */
static void ender_start(os_ctx_t *ctx)
{
    init_input_ended_t m = {3};
    assert_int_equal(0, init_input_ended_send(ctx, init_channel(ctx), &m));
}

static void ender_event(os_ctx_t *ctx, const os_event_t *ev)
{
}

static const os_program_t ender = {"ender", 0, ender_start, ender_event};

/* An interface whose name takes the whole of its field (OS_NAME_MAX - 1 bytes): the
 * init_client requests must carry it whole. A server of it (longsrv) and a client (longcli). */
#define LONG_IFACE_NAME "interface-name-at-its-31-limit_"
_Static_assert(sizeof LONG_IFACE_NAME == OS_NAME_MAX, "the name fills its field");
static const iface_t long_iface = {LONG_IFACE_NAME, LONG_IFACE_NAME "{}", NULL, 0, 0x4c6f6e67u};

static void longsrv_start(os_ctx_t *ctx)
{
    assert_int_equal(0, init_register_iface(ctx, 1, &long_iface));
}

static void longsrv_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_new_client_t nc;
    if (ev->kind == OS_EV_MESSAGE && init_new_client_decode(ev, &nc) == 0)
        G.lazy_clients++;
}

static void longcli_start(os_ctx_t *ctx)
{
    assert_int_equal(0, init_connect_iface(ctx, 7, &long_iface));
}

static void longcli_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_connected_t c;
    init_reply_t r;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &c) == 0)
        G.connected = true;
    else if (init_reply_decode(ev, &r) == 0)
        G.reply_status = r.status;
}

static const os_program_t longsrv = {"longsrv", 0, longsrv_start, longsrv_event};
static const os_program_t longcli = {"longcli", 0, longcli_start, longcli_event};

static const os_program_t *const image[] = {
    &orrery_init, &orrery_echo, &client, &lazy,   &quitter, &fuzzer,  &stopper,
    &spawner,     &waiter,      &ender,  &longsrv, &longcli, NULL};

/* ---- helpers -------------------------------------------------------------------------- */

/* Boot with console input `input` followed by its end, or (NULL) with input that never ends. */
static void boot_input(const char *manifest, const char *input)
{
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = image;
    cfg.init_arg = manifest;
    cfg.init_arg_len = strlen(manifest);
    cfg.seed = 7;
    cfg.console_input = input;
    cfg.console_eof = input != NULL;
    assert_int_equal(0, sim_boot(&cfg));
}

static void boot(const char *manifest)
{
    boot_input(manifest, NULL);
}

static void finish(void)
{
    assert_int_equal(0, sim_teardown());
}

static int setup(void **state)
{
    memset(&G, 0, sizeof G);
    G.reply_status = 1;
    return 0;
}

static bool output_has(const char *s)
{
    return strstr(sim_console_output(NULL), s) != NULL;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_register_and_connect(void **state)
{
    boot("program echo\nprogram client reach=echo\n");
    assert_int_equal(-1, sim_run(10000));
    assert_true(G.connected);
    assert_int_equal(1, G.reply_status);
    assert_string_equal("ping", G.echo_text);
    finish();
}

/* init_register_iface and init_connect_iface send an interface name at its length limit
 * whole: the server registers, the client connects through it. */
static void test_register_and_connect_a_name_at_its_limit(void **state)
{
    boot("program longsrv\nprogram longcli reach=" LONG_IFACE_NAME "\n");
    sim_run(10000);
    assert_true(G.connected);
    assert_int_equal(1, G.reply_status);
    assert_int_equal(1, G.lazy_clients);
    finish();
}

static void test_connect_before_register_waits(void **state)
{
    boot("program client reach=echo\nprogram lazy\n");
    sim_run(10000);
    assert_true(G.connected);
    assert_int_equal(1, G.lazy_clients);
    assert_true(G.connected_at >= 100000000);
    finish();
}

static void test_version_mismatch(void **state)
{
    G.id_delta = 1;
    boot("program echo\nprogram client reach=echo\n");
    sim_run(10000);
    assert_false(G.connected);
    assert_int_equal(OS_EPROTO, G.reply_status);
    assert_true(output_has("interface version mismatch"));
    finish();
}

static void test_version_mismatch_of_a_waiting_connect(void **state)
{
    G.id_delta = 1;
    boot("program client reach=echo\nprogram lazy\n");
    sim_run(10000);
    assert_false(G.connected);
    assert_int_equal(OS_EPROTO, G.reply_status);
    assert_int_equal(0, G.lazy_clients);
    finish();
}

static void test_permission_denied_with_log_line(void **state)
{
    boot("# no reach for the client\nprogram echo\nprogram client reach=console\n");
    sim_run(10000);
    assert_false(G.connected);
    assert_int_equal(OS_EACCES, G.reply_status);
    if (!output_has("[init] denied: client (task 3) may not reach echo (manifest line 3)"))
        fail_msg("output: %s", sim_console_output(NULL));
    finish();
}

static void test_control_needs_init_in_reach(void **state)
{
    boot("program echo\nprogram stopper reach=echo\n");
    assert_int_equal(-1, sim_run(10000)); /* refused: the run ends without a shutdown */
    assert_int_equal(OS_EACCES, G.reply_status);
    if (!output_has("[init] denied: stopper (task 3) may not shut down (no 'init' in its reach, "
                    "manifest line 2)"))
        fail_msg("output: %s", sim_console_output(NULL));
    finish();

    setup(NULL);
    boot("program echo\nprogram stopper reach=init\n");
    assert_int_equal(9, sim_run(10000));
    finish();
}

static void test_restart_always_until_the_limit(void **state)
{
    G.exit_status = 0;
    boot("program quitter restart=always max-restarts=3\n");
    sim_run(10000);
    assert_int_equal(4, G.starts);
    assert_int_equal(3, G.last_restarts);
    assert_true(output_has("quitter (task 2) exited; restarting (restart 1 of 3)"));
    assert_true(output_has("not restarting (max-restarts 3 reached)"));
    assert_false(output_has("restart of quitter failed")); /* each restart worked */
    finish();
}

static void test_restart_on_failure(void **state)
{
    G.exit_status = 1;
    boot("program quitter restart=on-failure max-restarts=2\n");
    sim_run(10000);
    assert_int_equal(3, G.starts);
    assert_true(output_has("failed (status 1); restarting (restart 2 of 2)"));
    finish();
}

static void test_on_failure_does_not_restart_a_clean_exit(void **state)
{
    G.exit_status = 0;
    boot("program quitter\n");
    sim_run(10000);
    assert_int_equal(1, G.starts);
    finish();
}

static void test_restart_never(void **state)
{
    G.exit_status = 1;
    boot("program quitter restart=never\n");
    sim_run(10000);
    assert_int_equal(1, G.starts);
    assert_true(output_has("quitter (task 2) failed (status 1)\n"));
    finish();
}

static void test_garbage_gets_errors_and_init_survives(void **state)
{
    boot("program echo\nprogram fuzzer reach=echo\n");
    sim_run(10000);
    assert_int_equal(13 * 3 + 1, G.errors);
    assert_true(G.fuzz_connected);
    finish();
}

static void test_bad_manifest_shuts_down_with_its_status(void **state)
{
    boot("program echo colour=red\n");
    assert_int_equal(OS_EXIT_BAD_MANIFEST, sim_run(10000));
    assert_true(output_has("manifest line 1: unknown key 'colour' (restart, max-restarts, reach, arg); "
                           "shutting down with status 122\n"));
    finish();
}

static void test_oversized_manifest_names_the_line_past_the_limit(void **state)
{
    /* 64 KiB of comment lines of 64 bytes, then a program: one byte over the limit */
    size_t len = MANIFEST_SIZE_MAX + 1;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = i % 64 == 63 ? '\n' : '#';
    manifest_t m;
    char err[128];
    assert_int_equal(MANIFEST_SIZE_MAX / 64 + 1,
                     manifest_parse(text, len, NULL, "init", &m, err, sizeof err));
    assert_string_equal("manifest is 65537 bytes, over the limit of 65536", err);
    assert_int_equal(0, manifest_parse(text, len - 1, NULL, "init", &m, err, sizeof err));
    free(text);
}

static void test_input_end_without_a_console_program(void **state)
{
    boot_input("program echo\n", "ps\nps\n");
    assert_int_equal(OS_EXIT_INPUT_ENDED, sim_run(10000));
    assert_true(output_has("[init] console input is read and dropped by init (no console program "
                           "in the manifest)\n"));
    assert_true(output_has("[init] console input ended and no task can act on it (no console "
                           "program in the manifest); shutting down with status 120\n"));
    finish();
}

static void test_empty_manifest_ends_at_end_of_input(void **state)
{
    boot_input("", "");
    assert_int_equal(OS_EXIT_INPUT_ENDED, sim_run(10000));
    finish();
    /* without an end of input it keeps running: nothing else ends it */
    boot("");
    assert_int_equal(-1, sim_run(10000));
    finish();
}

static void test_every_program_gave_up(void **state)
{
    G.exit_status = 3;
    boot("program quitter restart=always max-restarts=2\n");
    assert_int_equal(OS_EXIT_NOTHING_LEFT, sim_run(10000));
    assert_int_equal(3, G.starts);
    assert_true(output_has("[init] every program has ended for good; shutting down with status "
                           "121\n"));
    finish();
}

/* A program not in the manifest is started by name; the reply carries its task id. */
static void test_spawn_of_a_program_not_in_the_manifest(void **state)
{
    G.spawn_name = "quitter";
    G.exit_status = 0;
    boot("program spawner reach=init\n");
    sim_run(10000);
    assert_int_equal(0, G.reply_status);
    assert_int_equal(1, G.starts);
    assert_int_equal(3, G.spawned_id); /* init is 1, spawner 2 */
    assert_true(output_has("quitter (task 3) exited"));
    finish();
}

/* A manifest program that ended (restart=never) starts again on request, under a new id. */
static void test_spawn_of_an_ended_manifest_program(void **state)
{
    G.spawn_name = "quitter";
    G.exit_status = 0;
    boot("program quitter restart=never\nprogram spawner reach=init\n");
    sim_run(10000);
    assert_int_equal(0, G.reply_status);
    assert_int_equal(2, G.starts);
    assert_int_equal(4, G.spawned_id); /* quitter was 2, spawner 3 */
    assert_true(output_has("quitter (task 4) exited"));
    finish();
}

/* Init keeps INIT_PENDING_MAX (32) connects waiting for their interface: all are granted when
 * it registers; the one past the limit is refused with OS_ENOSPC at once. */
static void test_waiting_connects_up_to_the_limit(void **state)
{
    boot("program waiter reach=echo\nprogram lazy\n");
    sim_run(10000);
    assert_int_equal(OS_ENOSPC, G.reply_status);
    assert_int_equal(WAITERS, G.refused_req);
    assert_int_equal(PENDING_MAX, G.waiters_connected);
    assert_int_equal(PENDING_MAX, G.lazy_clients);
    finish();
}

/* Only the console's server may tell init that input ended: from anyone else it is ignored. */
static void test_input_ended_only_from_the_console_server(void **state)
{
    boot("program echo\nprogram ender\n"); /* input that never ends */
    sim_run(10000);
    int status;
    assert_false(sim_shutdown_status(&status));
    assert_false(output_has("console input ended"));
    finish();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_register_and_connect, setup),
        cmocka_unit_test_setup(test_register_and_connect_a_name_at_its_limit, setup),
        cmocka_unit_test_setup(test_connect_before_register_waits, setup),
        cmocka_unit_test_setup(test_version_mismatch, setup),
        cmocka_unit_test_setup(test_version_mismatch_of_a_waiting_connect, setup),
        cmocka_unit_test_setup(test_permission_denied_with_log_line, setup),
        cmocka_unit_test_setup(test_control_needs_init_in_reach, setup),
        cmocka_unit_test_setup(test_restart_always_until_the_limit, setup),
        cmocka_unit_test_setup(test_restart_on_failure, setup),
        cmocka_unit_test_setup(test_on_failure_does_not_restart_a_clean_exit, setup),
        cmocka_unit_test_setup(test_restart_never, setup),
        cmocka_unit_test_setup(test_garbage_gets_errors_and_init_survives, setup),
        cmocka_unit_test_setup(test_bad_manifest_shuts_down_with_its_status, setup),
        cmocka_unit_test_setup(test_oversized_manifest_names_the_line_past_the_limit, setup),
        cmocka_unit_test_setup(test_input_end_without_a_console_program, setup),
        cmocka_unit_test_setup(test_empty_manifest_ends_at_end_of_input, setup),
        cmocka_unit_test_setup(test_every_program_gave_up, setup),
        cmocka_unit_test_setup(test_spawn_of_a_program_not_in_the_manifest, setup),
        cmocka_unit_test_setup(test_spawn_of_an_ended_manifest_program, setup),
        cmocka_unit_test_setup(test_waiting_connects_up_to_the_limit, setup),
        cmocka_unit_test_setup(test_input_ended_only_from_the_console_server, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
