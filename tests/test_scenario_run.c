/* test_scenario_run.c — cluster files run: three nodes from one template with their manifests
 * substituted, per-node input and expectations, a crash and reboot of a node other than the
 * first, a pause (and a TCP stream through one, which the stream checker must not call a
 * stall), kill-at on a node, the e2fsck check of every node's disk; and the invariants that
 * judge the policy edges (docs/simulation.md, "Policy edges"): the restart policy replayed exit
 * by exit, the queue bound, the handle limit. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <manifest.h>
#include <os/os.h>
#include <sim/runner.h>
#include <sim/scenario.h>

static char dir[] = "/tmp/orrery-test-scenario-run-XXXXXX";
static char err[512];

/* Every node: console, shell, tcpip at its address, the echo services. */
static const char node_manifest[] =
    "program console restart=always\n"
    "program tcpip   restart=on-failure arg=addr=${cidr}\n"
    "program shell   restart=always max-restarts=10 reach=console,echo,init,net,tcp\n"
    "program echo    restart=on-failure\n"
    "program tcpecho restart=on-failure reach=tcp,udp\n";

/* A node that only holds a disk nobody mounts. */
static const char disk_manifest[] = "program echo restart=on-failure\n";

static void put(const char *name, const char *text, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(len, fwrite(text, 1, len, f));
    assert_int_equal(0, fclose(f));
}

/* Parse and load text (manifests from dir), run seed; the scenario stays loaded in sc. */
static void run(const char *text, uint64_t seed, sim_scenario_t *sc, sim_result_t *r)
{
    int line = sim_scenario_parse(text, strlen(text), sc, err, sizeof err);
    if (line == 0)
        line = sim_scenario_load(sc, dir, err, sizeof err);
    if (line != 0)
        fail_msg("line %d: %s", line, err);
    sim_run_opts_t o = {.faults = sc->faults, .keep_output = true, .keep_records = true};
    assert_int_equal(0, sim_run_scenario(sc, seed, &o, r));
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay ? strstr(hay, needle) : NULL; p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static const char three[] = "nodes n 1..3 manifest=node.manifest addr=10.1.0.{i}/24\n"
                            "duration 20s\n"
                            "exit 0\n"
                            "expect n1 [tcpip] net0 10.1.0.1/24\n"
                            "expect n2 [tcpip] net0 10.1.0.2/24\n"
                            "expect n3 [tcpip] net0 10.1.0.3/24\n"
                            "at 200ms n1 ping 10.1.0.3 1\n"
                            "expect n1 bytes from 10.1.0.3: seq=1\n"
                            "at 300ms n2 echo two speaks\n"
                            "expect n2 two speaks\n"
                            "expect-not * panic:\n";

static void test_three_nodes(void **state)
{
    (void)state;
    sim_scenario_t sc;
    sim_result_t a, b;
    char text[4096];
    snprintf(text, sizeof text, "%sat 3s n1 shutdown\n", three);
    run(text, 1, &sc, &a);
    if (!a.ok)
        fail_msg("%s", a.failure);
    assert_int_equal(3, a.nnodes);
    assert_int_equal(0, a.status);
    assert_non_null(strstr(a.output, "shutting down"));
    assert_null(strstr(a.output, "two speaks"));
    assert_non_null(strstr(a.node_output[1], "two speaks"));
    assert_non_null(strstr(a.node_output[2], "[tcpip] net0 10.1.0.3/24"));
    assert_true(a.net.delivered > 0);
    sim_result_free(&a);
    /* the same seed: the same hash, over every node's records, outputs, frames */
    sim_scenario_free(&sc);
    run(text, 1, &sc, &b);
    sim_scenario_free(&sc);
    run(text, 1, &sc, &a);
    assert_int_equal(a.hash, b.hash);
    assert_int_equal(-1, sim_first_difference(&a, &b));
    sim_result_free(&a);
    sim_result_free(&b);
    sim_scenario_free(&sc);

    /* an expectation on one node's console is that node's: n3 never echoed anything */
    snprintf(text, sizeof text, "%sexpect n3 two speaks\nat 3s n1 shutdown\n", three);
    run(text, 1, &sc, &a);
    assert_false(a.ok);
    assert_string_equal("node n3: expectation (scenario line 12): output has no 'two speaks' "
                        "after the previous expectation",
                        a.failure);
    sim_result_free(&a);
    sim_scenario_free(&sc);
    /* expect-not * holds on every node */
    snprintf(text, sizeof text, "%sexpect-not * 10.1.0.2/24\nat 3s n1 shutdown\n", three);
    run(text, 1, &sc, &a);
    assert_false(a.ok);
    assert_string_equal("node n2: expectation (scenario line 12): output has '10.1.0.2/24'",
                        a.failure);
    sim_result_free(&a);
    sim_scenario_free(&sc);
}

static void test_crash_and_reboot(void **state)
{
    (void)state;
    sim_scenario_t sc;
    sim_result_t r;
    char text[4096];
    /* n2 loses power at 2 s and is back half a second later: it answers again */
    snprintf(text, sizeof text,
             "%scrash n2 2s down=500ms\nat 4s n1 ping 10.1.0.2 1\n"
             "expect n1 bytes from 10.1.0.2: seq=1\nat 6s n1 shutdown\n",
             three);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        run(text, seed, &sc, &r);
        if (!r.ok)
            fail_msg("seed %llu: %s", (unsigned long long)seed, r.failure);
        assert_int_equal(2, count(r.node_output[1], "[tcpip] net0 10.1.0.2/24")); /* 2 boots */
        assert_int_equal(1, count(r.node_output[2], "[tcpip] net0 10.1.0.3/24"));
        assert_int_equal(1, r.ncrashes);
        assert_int_equal(2000000000ull, r.crash_ns[0]);
        sim_result_free(&r);
        sim_scenario_free(&sc);
    }
    /* left down: it never answers again, and that is no failure of the run */
    snprintf(text, sizeof text,
             "%scrash n2 2s down=never\nat 4s n1 ping 10.1.0.2 1\n"
             "expect n1 1 transmitted, 0 received\nat 6s n1 shutdown\n",
             three);
    run(text, 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    assert_int_equal(1, count(r.node_output[1], "[tcpip] net0 10.1.0.2/24"));
    sim_result_free(&r);
    sim_scenario_free(&sc);
    /* a crash the run never reaches tested nothing */
    snprintf(text, sizeof text, "%scrash n3 50s\nat 3s n1 shutdown\n", three);
    run(text, 1, &sc, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure, "crash (scenario line 12) due at 50.000000 s never came"));
    sim_result_free(&r);
    sim_scenario_free(&sc);
    /* a seeded time inside its window, the same for the same seed */
    snprintf(text, sizeof text, "%scrash n3 1s..2s\nat 4s n1 shutdown\n", three);
    run(text, 7, &sc, &r);
    uint64_t t = r.crash_ns[0];
    assert_true(r.ok);
    assert_true(t >= 1000000000ull && t <= 2000000000ull);
    sim_result_free(&r);
    sim_scenario_free(&sc);
    run(text, 7, &sc, &r);
    assert_int_equal(t, r.crash_ns[0]);
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

static void test_pause(void **state)
{
    (void)state;
    sim_scenario_t sc;
    sim_result_t r;
    char text[4096];
    /* n2 stands still from 1 s to 5 s: a ping then goes unanswered (n1 pings n3 until about
     * 1.2 s, then n2 from about 2.2 s until 3.2 s), one after is answered */
    snprintf(text, sizeof text,
             "%spause n2 1s 5s\nat 1.1s n1 ping 10.1.0.2 1\nexpect n1 1 transmitted, 0 received\n"
             "at 6s n1 ping 10.1.0.2 1\nexpect n1 1 transmitted, 1 received\nat 8s n1 shutdown\n",
             three);
    run(text, 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    assert_int_equal(1, count(r.node_output[1], "[tcpip] net0 10.1.0.2/24")); /* no reboot */
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

/* A stream to a node that stands still for longer than the liveness bound is not a stall:
 * the stream checker counts from the end of the last pause (as from the last heal), and the
 * stream goes on and completes after it. A slow link keeps the stream running into the pause. */
static void test_stream_through_a_pause(void **state)
{
    (void)state;
    sim_scenario_t sc;
    sim_result_t r;
    static const char streamer[] = "program tcpip     restart=on-failure arg=addr=${cidr}\n"
                                   "program tcpstream restart=never reach=tcp "
                                   "arg=addr=${addr:n2},port=7,bytes=400000\n";
    put("streamer.manifest", streamer, strlen(streamer));
    static const char text[] = "nodes n 1..2 manifest=node.manifest addr=10.1.0.{i}/24\n"
                               "node s manifest=streamer.manifest addr=10.1.0.9/24\n"
                               "duration 400s\n"
                               "exit 0\n"
                               "link s n2 bandwidth=1M\n"
                               "liveness 60s\n"
                               "pause n2 1s 100s\n"
                               "expect s tcpstream: 400000 bytes echoed and checked (1 tries)\n"
                               "at 300s n1 shutdown\n";
    run(text, 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

/* The smallest round trip of the ping statistics after the first (or last) `after` in out,
 * in ms. */
static double rtt_min(const char *out, const char *after, bool last)
{
    const char *p = strstr(out, after), *next;
    assert_non_null(p);
    while (last && (next = strstr(p + 1, after)) != NULL)
        p = next;
    p = strstr(p, "rtt min/avg/max ");
    assert_non_null(p);
    return strtod(p + 16, NULL);
}

/* Paths: a slow link, the switch's bandwidth, a clog of one direction (virtual times). */
static void test_links_and_clogs(void **state)
{
    (void)state;
    sim_scenario_t sc;
    sim_result_t r;
    char text[4096];
    snprintf(text, sizeof text,
             "%slink n1 n3 latency=30ms\nnet-bandwidth 1M\n"
             "at 1s n1 ping 10.1.0.3 2\nat 4s n1 ping 10.1.0.2 2\n"
             "clog n2 n1 7s 9s\nat 7.5s n1 ping 10.1.0.2 1\n"
             "expect n1 1 transmitted, 0 received\nat 10s n1 shutdown\n",
             three);
    run(text, 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    /* 30 ms each way to n3, and 98 bytes at 1 Mbit/s (784 us) on every path; the second ping
     * to n3 (the first one waited for ARP) */
    double slow = rtt_min(r.output, "PING 10.1.0.3", true);
    double fast = rtt_min(r.output, "PING 10.1.0.2", false);
    if (!(slow >= 61.5 && slow < 70) || !(fast >= 1.5 && fast < 10))
        fail_msg("round trips %f ms and %f ms", slow, fast);
    assert_true(slow >= 61.5 && slow < 70);
    assert_true(fast >= 1.5 && fast < 10);
    assert_true(r.net.clogged > 0);
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

/* `partition NODE` isolates it from every other node; the others still reach each other. */
static void test_isolate(void **state)
{
    (void)state;
    sim_scenario_t sc;
    sim_result_t r;
    char text[4096];
    snprintf(text, sizeof text,
             "%spartition n2 1s 5s\nat 1.5s n1 ping 10.1.0.2 1\n"
             "expect n1 1 transmitted, 0 received\nat 1.5s n3 ping 10.1.0.2 1\n"
             "expect n3 1 transmitted, 0 received\nat 3s n1 ping 10.1.0.3 1\n"
             "expect n1 1 transmitted, 1 received\nat 6s n1 ping 10.1.0.2 1\n"
             "expect n1 1 transmitted, 1 received\nat 8s n1 shutdown\n",
             three);
    run(text, 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    assert_true(r.net.cut > 0);
    assert_int_equal(5000000000ull, r.net_last_heal_ns);
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

static void test_kill_at_a_node(void **state)
{
    (void)state;
    sim_scenario_t sc;
    sim_result_t r;
    char text[4096];
    snprintf(text, sizeof text, "%skill-at 1s n3:tcpecho\nat 3s n1 shutdown\n", three);
    run(text, 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    assert_int_equal(2, count(r.node_output[2], "[tcpecho] tcp port 7")); /* restarted */
    sim_result_free(&r);
    sim_scenario_free(&sc);
    snprintf(text, sizeof text, "%skill-at 1s n3:nothing\nat 3s n1 shutdown\n", three);
    run(text, 1, &sc, &r);
    assert_false(r.ok);
    assert_string_equal("kill-at (scenario line 12): no live task of n3:nothing at 1000 ms",
                        r.failure);
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

/* Every node's ext2 disk must pass e2fsck -fn: a clean volume passes, a spoiled one fails the
 * run naming its node. */
static void test_e2fsck_of_every_disk(void **state)
{
    (void)state;
    if (system("command -v mke2fs >/dev/null 2>&1 || test -x /sbin/mke2fs || "
               "test -x /usr/sbin/mke2fs") != 0)
        skip();
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "PATH=$PATH:/sbin:/usr/sbin; cd %s && truncate -s 1M bad.img && "
             "mke2fs -q -F -t ext2 -b 1024 bad.img",
             dir);
    assert_int_equal(0, system(cmd));
    /* the root inode's link count: 3 on a new volume; 9 is wrong and e2fsck -n will not fix it */
    char path[256];
    snprintf(path, sizeof path, "%s/bad.img", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t sb[1024], gd[32];
    assert_int_equal(0, fseek(f, 1024, SEEK_SET));
    assert_int_equal(1, fread(sb, sizeof sb, 1, f));
    assert_int_equal(0, fseek(f, 2048, SEEK_SET)); /* the group descriptors: block 2 */
    assert_int_equal(1, fread(gd, sizeof gd, 1, f));
    uint32_t table = gd[8] | gd[9] << 8 | (uint32_t)gd[10] << 16 | (uint32_t)gd[11] << 24;
    uint32_t isize = sb[88] | sb[89] << 8;
    assert_int_equal(0, fseek(f, (long)(table * 1024 + isize + 26), SEEK_SET));
    uint8_t links[2] = {9, 0};
    assert_int_equal(1, fwrite(links, 2, 1, f));
    assert_int_equal(0, fclose(f));

    sim_scenario_t sc;
    sim_result_t r;
    const char *text = "node a manifest=node.manifest addr=10.2.0.1/24 disk=ext2:1M\n"
                       "node b manifest=disk.manifest disk=bad.img\n"
                       "node c manifest=disk.manifest disk=ext2:1M\n"
                       "node d manifest=disk.manifest disk=zero:64K\n"
                       "exit 0\n"
                       "at 100ms a shutdown\n";
    run(text, 1, &sc, &r);
    assert_false(r.ok);
    if (strcmp(r.failure, "node b: e2fsck -fn on its disk after the run exited 4: Inode 2 ref "
                          "count is 9, should be 3.") != 0)
        fail_msg("%s", r.failure);
    sim_result_free(&r);
    sim_scenario_free(&sc);
    /* the same nodes with b on a clean volume: every disk passes */
    snprintf(cmd, sizeof cmd, "PATH=$PATH:/sbin:/usr/sbin; mke2fs -q -F -t ext2 -b 1024 %s", path);
    assert_int_equal(0, system(cmd));
    run(text, 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

/* init's policy, as the restart invariant replays it: each restart= at and past max-restarts. */
static void test_restart_owed(void **state)
{
    (void)state;
    manifest_program_t p = {.restart = MANIFEST_RESTART_ON_FAILURE, .max_restarts = 2};
    assert_true(sim_restart_owed(&p, 0, 1));
    assert_true(sim_restart_owed(&p, 1, OS_EXIT_KILLED));
    assert_false(sim_restart_owed(&p, 2, 1)); /* the edge: max-restarts reached */
    assert_false(sim_restart_owed(&p, 0, 0)); /* a clean exit ends on-failure */
    p.restart = MANIFEST_RESTART_ALWAYS;
    assert_true(sim_restart_owed(&p, 1, 0));
    assert_false(sim_restart_owed(&p, 2, 0));
    p.max_restarts = 0;
    assert_false(sim_restart_owed(&p, 0, OS_EXIT_PANIC));
    p.restart = MANIFEST_RESTART_NEVER;
    p.max_restarts = 5;
    assert_false(sim_restart_owed(&p, 0, OS_EXIT_KILLED));
}

/* The queue-bound model on records made by hand: a refusal is right only at a full queue, a
 * queue never holds more than OS_CHAN_QUEUE_MAX, nothing comes out of an empty one. */
static void test_queue_bound(void **state)
{
    (void)state;
    char why[256];
    sim_chanq_t *q = sim_chanq_new();
    assert_non_null(q);
    hal_trace_rec_t create = {.kind = HAL_TR_CHAN_CREATE, .task = 2, .chan = 7, .peer = 8};
    hal_trace_rec_t send = {.kind = HAL_TR_SEND, .task = 2, .chan = 7, .peer = 8};
    hal_trace_rec_t full = {.kind = HAL_TR_SEND, .task = 2, .chan = 7, .result = OS_EFULL};
    hal_trace_rec_t deliver = {.kind = HAL_TR_DELIVER, .task = 3, .chan = 8, .peer = 7};
    assert_true(sim_chanq_record(q, &create, why, sizeof why));
    for (int i = 0; i < OS_CHAN_QUEUE_MAX; i++)
        assert_true(sim_chanq_record(q, &send, why, sizeof why));
    assert_true(sim_chanq_record(q, &full, why, sizeof why)); /* refused at 128: right */
    assert_true(sim_chanq_record(q, &deliver, why, sizeof why));
    assert_false(sim_chanq_record(q, &full, why, sizeof why)); /* refused at 127: wrong */
    assert_string_equal("task 2's send on endpoint 7 was refused (queue full) while its peer 8 "
                        "held 127 of 128 messages",
                        why);
    uint64_t refused;
    uint32_t deepest;
    sim_chanq_stats(q, &refused, &deepest);
    assert_int_equal(2, refused);
    assert_int_equal(OS_CHAN_QUEUE_MAX, deepest);
    assert_true(sim_chanq_record(q, &send, why, sizeof why)); /* 128 again */
    assert_false(sim_chanq_record(q, &send, why, sizeof why));
    assert_string_equal("task 2 queued a message on endpoint 8, which then held 129 "
                        "(OS_CHAN_QUEUE_MAX is 128)",
                        why);
    sim_chanq_reset(q); /* a new kernel: endpoint 8 is new and empty */
    create.chan = 8, create.peer = 7;
    assert_true(sim_chanq_record(q, &create, why, sizeof why));
    assert_false(sim_chanq_record(q, &deliver, why, sizeof why));
    assert_string_equal("task 3 was handed a message from endpoint 8, whose queue held none (a "
                        "message delivered twice, or never sent)",
                        why);
    sim_chanq_free(q);
}

/* The edge program through the runner: failures then a clean exit under on-failure (the
 * policy replayed in order: two restarts owed, not three, not none); a flood of echo's queue
 * (refused at the bound, every request answered); a handle table kept full fails the
 * handle-leak check, naming the task. */
static void test_policy_edges(void **state)
{
    (void)state;
    static const char exits[] = "program edge restart=on-failure max-restarts=5 "
                                "arg=exits=3:4:0\n"
                                "program echo restart=never\n";
    put("exits.manifest", exits, sizeof exits - 1);
    sim_scenario_t sc;
    sim_result_t r;
    run("manifest exits.manifest\nduration 2s\nkill-at 1s echo\nexit 121\n", 1, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    assert_non_null(strstr(r.output, "failed (status 4); restarting (restart 2 of 5)"));
    assert_non_null(strstr(r.output, "[edge] exits: start 2, status 0"));
    assert_int_equal(0, count(r.output, "restart 3 of 5"));
    sim_result_free(&r);
    sim_scenario_free(&sc);

    static const char flood[] = "program echo restart=never\n"
                                "program edge restart=never reach=echo arg=flood=300\n";
    put("flood.manifest", flood, sizeof flood - 1);
    run("manifest flood.manifest\nduration 2s\nkill-at 1s echo\nexit 121\n", 2, &sc, &r);
    if (!r.ok)
        fail_msg("%s", r.failure);
    assert_non_null(
        strstr(r.output, "[edge] flood: 300 requests answered in order, 1 refused with queue full "
                         "and sent again (the first after 128)"));
    sim_result_free(&r);
    sim_scenario_free(&sc);

    static const char hold[] = "program console restart=always\n"
                               "program shell restart=always reach=console,init\n"
                               "program echo restart=on-failure\n"
                               "program edge restart=never reach=echo arg=handles=hold\n";
    put("hold.manifest", hold, sizeof hold - 1);
    run("manifest hold.manifest\nduration 1s\nat 500ms shutdown\nexit 0\n", 3, &sc, &r);
    assert_false(r.ok);
    assert_string_equal("handle leak: edge (task 5) holds 256 handles (limit 64)", r.failure);
    assert_non_null(strstr(r.output, "[edge] handles: init's channel to echo did not fit"));
    sim_result_free(&r);
    sim_scenario_free(&sc);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    put("node.manifest", node_manifest, strlen(node_manifest));
    put("disk.manifest", disk_manifest, strlen(disk_manifest));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir); /* ours: made by mkdtemp in setup */
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes),
        cmocka_unit_test(test_crash_and_reboot),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_stream_through_a_pause),
        cmocka_unit_test(test_links_and_clogs),
        cmocka_unit_test(test_isolate),
        cmocka_unit_test(test_kill_at_a_node),
        cmocka_unit_test(test_e2fsck_of_every_disk),
        cmocka_unit_test(test_restart_owed),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_policy_edges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
