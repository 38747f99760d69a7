/* test_sim.c — the simulator: timed input, fault hooks (delay order, jitter, kills), scenarios,
 * runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <image.h>
#include <k/audit.h>
#include <k/fault.h>
#include <k/kernel.h>
#include <sim/faults.h>
#include <sim/runner.h>
#include <sim/scenario.h>
#include <sim/sim.h>

/* ---- a sender and a receiver of numbered messages ------------------------------------------ */

enum { NMSG = 300 };
static uint32_t got[NMSG], ngot;
static uint64_t first_deliver_ns, last_deliver_ns;
static int timer_fires;
static uint64_t timer_fired_at[4];
static bool all_received;

typedef struct sender {
    os_handle_t chan, timer;
    uint32_t next;
} sender_t;

static void pump(os_ctx_t *ctx, sender_t *s)
{
    while (s->next < NMSG && os_send(ctx, s->chan, 1, &s->next, sizeof s->next, NULL, 0) == 0)
        s->next++;
}

static void sender_start(os_ctx_t *ctx)
{
    sender_t *s = os_state(ctx);
    os_handle_t theirs, task;
    assert_int_equal(0, os_channel_create(ctx, &s->chan, &theirs));
    os_spawn_args_t a = {.program = "receiver", .handles = &theirs, .nhandles = 1};
    assert_int_equal(0, os_spawn(ctx, &a, &task));
    assert_int_equal(0, os_timer_create(ctx, &s->timer));
    assert_int_equal(0, os_timer_set(ctx, s->timer, 1000000));
    pump(ctx, s);
}

static void sender_event(os_ctx_t *ctx, const os_event_t *ev)
{
    sender_t *s = os_state(ctx);
    if (ev->kind == OS_EV_WRITABLE)
        pump(ctx, s);
    if (ev->kind == OS_EV_TIMER && timer_fires < 4)
        timer_fired_at[timer_fires++] = os_clock_now(ctx);
    if (ev->kind == OS_EV_MESSAGE)
        all_received = true;
    if (all_received && timer_fires > 0)
        os_shutdown(ctx, 7); /* the receiver has them all, and the timer fired */
}

static void receiver_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind != OS_EV_MESSAGE)
        return;
    uint32_t v;
    memcpy(&v, ev->data, sizeof v);
    if (ngot == 0)
        first_deliver_ns = os_clock_now(ctx);
    last_deliver_ns = os_clock_now(ctx);
    got[ngot++] = v;
    if (ngot == NMSG)
        os_send(ctx, os_initial_handle(ctx, 0), 2, NULL, 0, NULL, 0);
}

static const os_program_t sender = {"sender", sizeof(sender_t), sender_start, sender_event};
static const os_program_t receiver = {"receiver", 0, NULL, receiver_event};
static const os_program_t *const progs[] = {&sender, &receiver, NULL};

static int run_pair(uint64_t seed, uint32_t faults, sim_fault_stats_t *st)
{
    ngot = 0;
    timer_fires = 0;
    all_received = false;
    sim_config_t cfg = {.programs = progs, .init_program = "sender", .seed = seed};
    assert_int_equal(0, sim_boot(&cfg));
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = faults;
    f.delay_pct = 50;
    f.delay_max_ns = 1000000;
    f.jitter_max_ns = 500000;
    assert_int_equal(0, sim_faults_install(&f));
    int status = sim_run(1000000);
    char err[128];
    assert_int_equal(0, k_audit(NULL, 0, NULL, err, sizeof err));
    sim_faults_stats(st);
    sim_faults_remove();
    assert_int_equal(0, sim_teardown());
    return status;
}

static void test_delay_keeps_channel_order(void **state)
{
    sim_fault_stats_t st;
    assert_int_equal(7, run_pair(3, SIM_FAULT_DELAY, &st));
    assert_int_equal(NMSG, ngot);
    for (uint32_t i = 0; i < NMSG; i++)
        assert_int_equal(i, got[i]);
    assert_true(st.delayed > 0);
    assert_true(last_deliver_ns > 0); /* deliveries waited for virtual time */
    assert_true(first_deliver_ns <= last_deliver_ns);
}

static void test_no_faults_no_delay(void **state)
{
    sim_fault_stats_t st;
    assert_int_equal(7, run_pair(3, 0, &st));
    assert_int_equal(NMSG, ngot);
    assert_int_equal(0, st.delayed);
    assert_int_equal(0, last_deliver_ns);
}

static void test_jitter_makes_timers_late_never_early(void **state)
{
    sim_fault_stats_t st;
    bool late = false;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        run_pair(seed, SIM_FAULT_JITTER, &st);
        assert_int_equal(1, timer_fires);
        assert_true(timer_fired_at[0] >= 1000000);
        late |= timer_fired_at[0] > 1000000;
    }
    assert_true(late);
}

/* ---- timed console input and injected kills on the real image ------------------------------ */

static void test_console_lines_arrive_at_their_time(void **state)
{
    sim_config_t cfg = {.programs = orrery_programs,
                        .init_arg = orrery_default_manifest,
                        .init_arg_len = strlen(orrery_default_manifest),
                        .seed = 1};
    assert_int_equal(0, sim_boot(&cfg));
    assert_int_equal(0, sim_console_at(2500000000ull, "uptime"));
    assert_int_equal(0, sim_console_at(3000000000ull, "shutdown 4"));
    assert_int_equal(4, sim_run(0));
    assert_non_null(strstr(sim_console_output(NULL), "up 2.500000s"));
    assert_true(sim_now() >= 3000000000ull);
    assert_int_equal(0, sim_teardown());
}

static void test_injected_kill_is_restarted(void **state)
{
    sim_config_t cfg = {.programs = orrery_programs,
                        .init_arg = orrery_default_manifest,
                        .init_arg_len = strlen(orrery_default_manifest),
                        .seed = 9};
    assert_int_equal(0, sim_boot(&cfg));
    sim_run_until_idle();
    uint32_t echo = k_task_find("echo");
    assert_true(echo != 0);
    assert_int_equal(0, k_fault_kill(echo, -129));
    assert_int_equal(OS_ENOENT, k_fault_kill(echo, -129));
    sim_run_until_idle();
    uint32_t again = k_task_find("echo");
    assert_true(again != 0 && again != echo);
    assert_non_null(strstr(sim_console_output(NULL), "restarting (restart 1 of"));
    k_audit_task_t t[8];
    size_t n;
    char err[128];
    assert_int_equal(0, k_audit(t, 8, &n, err, sizeof err));
    assert_int_equal(5, n); /* init console shell echo httpd (fs and tcpip: no devices) */
    assert_string_equal("init", t[0].name);
    assert_int_equal(0, sim_teardown());
}

/* A kill that lands while its victim runs ends it with the kill's status once the handler
 * returns; if the victim leaves the handler itself (os_exit, panic, fault), its own status
 * wins. The victim here kills itself from its handler (k_fault_kill), as another worker's
 * os_task_kill would while it runs. */
static int victim_exit_status;
static bool victim_exits_itself;

static void victim_start(os_ctx_t *ctx)
{
    assert_int_equal(0, k_fault_kill(os_task_id(ctx), -77));
    if (victim_exits_itself)
        os_exit(ctx, 3);
}

static void watcher_start(os_ctx_t *ctx)
{
    os_handle_t task;
    os_spawn_args_t a = {.program = "victim"};
    assert_int_equal(0, os_spawn(ctx, &a, &task));
}

static void watcher_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_TASK_EXIT) {
        victim_exit_status = ev->status;
        os_shutdown(ctx, 0);
    }
}

static const os_program_t victim = {"victim", 0, victim_start, NULL};
static const os_program_t watcher = {"watcher", 0, watcher_start, watcher_event};
static const os_program_t *const kill_progs[] = {&watcher, &victim, NULL};

static void test_kill_while_running(void **state)
{
    for (int own = 0; own <= 1; own++) {
        victim_exits_itself = own;
        victim_exit_status = 0;
        sim_config_t cfg = {.programs = kill_progs, .init_program = "watcher", .seed = 1};
        assert_int_equal(0, sim_boot(&cfg));
        assert_int_equal(0, sim_run(1000));
        assert_int_equal(own ? 3 : -77, victim_exit_status);
        assert_int_equal(0, sim_teardown());
    }
}

/* ---- scenarios and runs ------------------------------------------------------------------------
 */

static int parse(const char *text, sim_scenario_t *sc, char *err)
{
    return sim_scenario_parse(text, strlen(text), sc, err, 160);
}

static void test_scenario_parse(void **state)
{
    sim_scenario_t sc;
    char err[160];
    assert_int_equal(0, parse(sim_default_scenario, &sc, err));
    assert_string_equal("default", sc.name);
    assert_int_equal(SIM_FAULT_KILL | SIM_FAULT_DELAY | SIM_FAULT_JITTER, sc.faults);
    sim_scenario_free(&sc);
    assert_int_equal(0, parse("at 1.5s ps\nat +250ms echo \"a  b\"\nexpect x\n", &sc, err));
    assert_int_equal(3, sc.nsteps);
    assert_int_equal(1500000000ull, sc.steps[0].t);
    assert_int_equal(1750000000ull, sc.steps[1].t);
    assert_string_equal("echo \"a  b\"", sc.steps[1].text);
    sim_scenario_free(&sc);
    assert_int_equal(2, parse("# c\nbogus 1\n", &sc, err));
    assert_string_equal("unknown key 'bogus'", err);
    assert_int_equal(1, parse("at soon ps\n", &sc, err));
    assert_int_equal(1, parse("faults kill,explode\n", &sc, err));
    assert_string_equal("unknown fault 'explode'", err);
    assert_int_equal(1, parse("expect\n", &sc, err));
}

/* Every limit of the format is an error on its line, with the limit in the message. */
static void test_scenario_limits(void **state)
{
    sim_scenario_t sc;
    char err[160];
    static char text[4 * SCN_LINE_MAX];
    memset(text, 'x', SCN_LINE_MAX + 8);
    memcpy(text, "name a\nat 1s echo ", 18); /* line 2 starts at offset 7 */
    text[SCN_LINE_MAX + 8] = '\n';
    text[SCN_LINE_MAX + 9] = '\0';
    assert_int_equal(2, parse(text, &sc, err));
    assert_string_equal("line longer than 1088 bytes", err);
    text[SCN_LINE_MAX + 7] = '\n'; /* a line of exactly SCN_LINE_MAX bytes is read whole */
    text[SCN_LINE_MAX + 8] = '\0';
    assert_int_equal(2, parse(text, &sc, err));
    assert_string_equal("command longer than 1024 bytes", err);

    size_t n = 0;
    for (int i = 0; i <= SCN_STEPS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "expect %d\n", i);
    assert_true(n < sizeof text);
    assert_int_equal(SCN_STEPS_MAX + 1, parse(text, &sc, err));
    assert_string_equal("too many steps (limit 256)", err);

    assert_int_equal(1, parse("kills 1001\n", &sc, err));
    assert_string_equal("kills needs a number 0..1000", err);
    assert_int_equal(0, parse("kills 1000\nmax-events 100000000\nmax-handles 256\n", &sc, err));
    sim_scenario_free(&sc);
    assert_int_equal(1, parse("max-events 0\n", &sc, err));
    assert_int_equal(1, parse("max-events 100000001\n", &sc, err));
    assert_int_equal(1, parse("max-handles 257\n", &sc, err));
    assert_int_equal(1, parse("delay-rate 101\n", &sc, err));
    assert_int_equal(1, parse("kills -1\n", &sc, err));
    assert_int_equal(1, parse("kills 1 2\n", &sc, err));
    /* The name becomes a file name under --keep-failing: a plain word only. */
    assert_int_equal(1, parse("name ../etc/x\n", &sc, err));
    assert_int_equal(1, parse("name a b\n", &sc, err));
    assert_int_equal(1, parse("name .hidden\n", &sc, err));
    assert_int_equal(
        1,
        parse("name aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", &sc, err));
    assert_int_equal(0, parse("name chaos-2_b.v1\n", &sc, err));
    sim_scenario_free(&sc);
    /* Relative times add up without wrapping around. */
    assert_int_equal(2, parse("at 9000000000s ps\nat +9000000000s ps\n", &sc, err));
    assert_int_equal(1, parse("at 99999999999999999999s ps\n", &sc, err));
    /* The host-crash hook. */
    assert_int_equal(0, parse("host-crash 18446744073709551615 segv\n", &sc, err));
    assert_int_equal(SCN_HOST_CRASH_SEGV, sc.host_crash);
    assert_true(sc.host_crash_seed == UINT64_MAX);
    sim_scenario_free(&sc);
    assert_int_equal(1, parse("host-crash 5\n", &sc, err));
    assert_int_equal(1, parse("host-crash 5 explode\n", &sc, err));
    assert_int_equal(1, parse("host-crash x abort\n", &sc, err));
}

static void test_fault_lists(void **state)
{
    uint32_t bits;
    char buf[128];
    assert_int_equal(0, sim_faults_parse("kill,jitter", &bits, NULL, 0));
    assert_int_equal(SIM_FAULT_KILL | SIM_FAULT_JITTER, bits);
    assert_string_equal("kill,jitter", sim_faults_format(bits, buf, sizeof buf));
    assert_int_equal(0, sim_faults_parse("none", &bits, NULL, 0));
    assert_string_equal("none", sim_faults_format(bits, buf, sizeof buf));
    assert_int_equal(0, sim_faults_parse("net-loss,blk-torn", &bits, NULL, 0));
    assert_int_equal(SIM_FAULT_NET_LOSS | SIM_FAULT_BLK_TORN, bits);
    assert_int_equal(-1, sim_faults_parse("kil", &bits, buf, sizeof buf));
}

static void test_device_verdicts(void **state)
{
    sim_config_t cfg = {.programs = progs, .init_program = "receiver", .seed = 1};
    assert_int_equal(0, sim_boot(&cfg));
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = SIM_FAULT_BLK_EIO | SIM_FAULT_NET_PARTITION;
    f.blk_eio_pct = 100;
    assert_int_equal(0, sim_faults_install(&f));
    assert_int_equal(OS_EIO, sim_fault_blk_request(1, 0, 1).status);
    assert_int_equal(SIM_NET_DELIVER, sim_fault_net_frame(1, 2, 60).action);
    sim_fault_net_partition(1, 2, 1000);
    assert_int_equal(SIM_NET_DROP, sim_fault_net_frame(2, 1, 60).action);
    sim_advance(1000);
    assert_int_equal(SIM_NET_DELIVER, sim_fault_net_frame(2, 1, 60).action);
    sim_faults_remove();
    assert_int_equal(0, sim_fault_blk_request(1, 0, 1).status); /* nothing once removed */
    assert_int_equal(0, sim_teardown());
}

static void test_same_seed_same_hash(void **state)
{
    sim_scenario_t sc;
    char err[160];
    assert_int_equal(0, parse(sim_default_scenario, &sc, err));
    sim_run_opts_t o = {.faults = sc.faults, .keep_records = true};
    sim_result_t a, b, c;
    assert_int_equal(0, sim_run_scenario(&sc, 42, &o, &a));
    assert_int_equal(0, sim_run_scenario(&sc, 42, &o, &b));
    assert_true(a.ok);
    assert_int_equal(0, a.leaks);
    assert_int_equal(a.hash, b.hash);
    assert_int_equal(-1, sim_first_difference(&a, &b));
    bool differs = false;
    for (uint64_t seed = 43; seed < 48 && !differs; seed++) {
        assert_int_equal(0, sim_run_scenario(&sc, seed, &o, &c));
        differs = c.hash != a.hash;
        if (differs)
            assert_true(sim_first_difference(&a, &c) >= 0);
        sim_result_free(&c);
    }
    assert_true(differs);
    sim_result_free(&a);
    sim_result_free(&b);
    sim_scenario_free(&sc);
}

static void test_broken_scenario_fails(void **state)
{
    sim_scenario_t sc;
    char err[160];
    assert_int_equal(
        0, parse("duration 1s\nat 10ms echo hi\nexpect bye\nat 20ms shutdown\n", &sc, err));
    sim_run_opts_t o = {0};
    sim_result_t r;
    assert_int_equal(0, sim_run_scenario(&sc, 1, &o, &r));
    assert_false(r.ok);
    assert_non_null(strstr(r.failure, "'bye'"));
    sim_scenario_free(&sc);
    /* no shutdown within the duration */
    assert_int_equal(0, parse("duration 1s\nat 10ms ps\n", &sc, err));
    assert_int_equal(0, sim_run_scenario(&sc, 1, &o, &r));
    assert_false(r.ok);
    assert_non_null(strstr(r.failure, "without shutting down"));
    assert_int_equal(0, r.leaks);
    sim_scenario_free(&sc);
    /* a panic nobody allowed */
    assert_int_equal(0, parse("at 10ms crash panic\nat 20ms shutdown\n", &sc, err));
    assert_int_equal(0, sim_run_scenario(&sc, 1, &o, &r));
    assert_false(r.ok);
    assert_non_null(strstr(r.failure, "panic that was not injected: shell"));
    sim_scenario_free(&sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_keeps_channel_order),
        cmocka_unit_test(test_no_faults_no_delay),
        cmocka_unit_test(test_jitter_makes_timers_late_never_early),
        cmocka_unit_test(test_console_lines_arrive_at_their_time),
        cmocka_unit_test(test_injected_kill_is_restarted),
        cmocka_unit_test(test_scenario_parse),
        cmocka_unit_test(test_scenario_limits),
        cmocka_unit_test(test_kill_while_running),
        cmocka_unit_test(test_fault_lists),
        cmocka_unit_test(test_device_verdicts),
        cmocka_unit_test(test_same_seed_same_hash),
        cmocka_unit_test(test_broken_scenario_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
