/* test_scenario.c — the scenario language for clusters: nodes and templates, per-node steps,
 * the network's directives, node faults, their errors (line and message), manifest
 * substitution and loading. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sim/runner.h>
#include <sim/scenario.h>

static char err[512];

static int parse(const char *text, sim_scenario_t *sc)
{
    err[0] = '\0';
    return sim_scenario_parse(text, strlen(text), sc, err, sizeof err);
}

/* text fails on `line` with a message containing `msg`. */
static void bad(const char *text, int line, const char *msg)
{
    sim_scenario_t sc;
    int got = parse(text, &sc);
    if (got != line || !strstr(err, msg))
        fail_msg("%s: line %d '%s', want line %d with '%s'", text, got, err, line, msg);
}

static void test_old_files_are_not_clusters(void **state)
{
    (void)state;
    sim_scenario_t sc;
    assert_int_equal(0, parse("peer server manifest=s.manifest\npartition server 1s 2s\n"
                              "kill-at 1s server:echo\nat 1s ps\n",
                              &sc));
    assert_false(sc.cluster);
    assert_int_equal(2, sim_scenario_node_count(&sc));
    assert_string_equal("server", sim_scenario_node_name(&sc, 1));
    assert_string_equal("", sim_scenario_node_name(&sc, 0));
    assert_true(sim_scenario_has_net(&sc));
    /* the old partition: the scenario's node against the peer */
    assert_int_equal(2, sc.partitions[0].ngroups);
    assert_int_equal(1, sc.partitions[0].groups[0]);
    assert_int_equal(2, sc.partitions[0].groups[1]);
    assert_int_equal(1, sc.kill_at[0].node);
    assert_int_equal(0, sc.steps[0].node);
    sim_scenario_free(&sc);
    /* a command that starts like a directive is still a command */
    assert_int_equal(0, parse("at 1s node 3\n", &sc));
    assert_false(sc.cluster);
    assert_string_equal("node 3", sc.steps[0].text);
    sim_scenario_free(&sc);
    assert_int_equal(0, parse("duration 1s\n", &sc));
    assert_false(sim_scenario_has_net(&sc));
    sim_scenario_free(&sc);
}

static void test_nodes_and_templates(void **state)
{
    (void)state;
    sim_scenario_t sc;
    assert_int_equal(0, parse("# a cluster\n"
                              "node lead manifest=lead.manifest addr=10.0.0.1/24 disk=zero:1M\n"
                              "nodes web 1..3 manifest=w{i}.m addr=10.0.1.{i}/16 "
                              "disk=ext2:4M:data{i}\n"
                              "node bare\n"
                              "at 1s web2 ps\n"
                              "at +1s lead echo \"a  b\"\n"
                              "expect web3 [tcpip]\n"
                              "expect-not * panic:\n"
                              "expect-not bare fault:\n",
                              &sc));
    assert_true(sc.cluster);
    assert_int_equal(5, sim_scenario_node_count(&sc));
    assert_string_equal("lead", sim_scenario_node_name(&sc, 0));
    assert_string_equal("web1", sim_scenario_node_name(&sc, 1));
    assert_string_equal("web3", sim_scenario_node_name(&sc, 3));
    assert_string_equal("bare", sim_scenario_node_name(&sc, 4));
    assert_string_equal("10.0.0.1", sc.nodes[0].addr);
    assert_string_equal("10.0.0.1/24", sc.nodes[0].cidr);
    assert_int_equal(SCN_DISK_ZERO, sc.nodes[0].disk.kind);
    assert_int_equal(1 << 20, sc.nodes[0].disk.size);
    assert_string_equal("10.0.1.2/16", sc.nodes[2].cidr);
    assert_string_equal("w2.m", sc.nodes[2].manifest.path);
    assert_int_equal(SCN_DISK_EXT2, sc.nodes[2].disk.kind);
    assert_int_equal(4 << 20, sc.nodes[2].disk.size);
    assert_string_equal("data2", sc.nodes[2].disk.from);
    assert_int_equal(3, sc.nodes[3].index);
    assert_int_equal(0, sc.nodes[0].index);
    assert_int_equal(3, sc.nodes[1].line);
    assert_string_equal("", sc.nodes[4].manifest.path);
    assert_int_equal(SCN_DISK_NONE, sc.nodes[4].disk.kind);
    assert_int_equal(SCN_AT, sc.steps[0].kind);
    assert_int_equal(2, sc.steps[0].node);
    assert_string_equal("ps", sc.steps[0].text);
    assert_int_equal(0, sc.steps[1].node);
    assert_int_equal(2000000000ull, sc.steps[1].t);
    assert_string_equal("echo \"a  b\"", sc.steps[1].text);
    assert_int_equal(3, sc.steps[2].node);
    assert_int_equal(SCN_NODE_ALL, sc.steps[3].node);
    assert_int_equal(4, sc.steps[4].node);
    assert_true(sim_scenario_has_net(&sc));
    assert_ptr_equal(&sc.nodes[2].disk, sim_scenario_node_disk(&sc, 2));
    sim_scenario_free(&sc);
    /* one node without an address has no network; with one it has */
    assert_int_equal(0, parse("node a\n", &sc));
    assert_false(sim_scenario_has_net(&sc));
    sim_scenario_free(&sc);
    assert_int_equal(0, parse("node a addr=10.0.0.1/8\n", &sc));
    assert_true(sim_scenario_has_net(&sc));
    sim_scenario_free(&sc);
    /* 32 nodes, the last of them by a template; a disk image file as an option */
    assert_int_equal(0, parse("nodes n 0..30\nnode last disk=img/last.img\n", &sc));
    assert_int_equal(32, sc.nnodes);
    assert_int_equal(SCN_DISK_FILE, sc.nodes[31].disk.kind);
    assert_string_equal("img/last.img", sc.nodes[31].disk.path);
    sim_scenario_free(&sc);
}

static void test_node_errors(void **state)
{
    (void)state;
    bad("node a\nat 1s b ps\n", 2,
        "at needs TIME NODE COMMAND with a node declared above, not 'b'");
    bad("at 1s a ps\nnode a\n", 1, "a node declared above, not 'a'");
    bad("node a\nexpect b x\n", 2, "expect needs NODE TEXT with a node declared above, not 'b'");
    bad("node a\nexpect-not b x\n", 2, "expect-not needs NODE|* TEXT");
    bad("node a\nexpect * x\n", 2, "expect needs NODE TEXT");
    bad("node a\nexpect a\n", 2, "expect needs a text");
    bad("node a b=1\n", 1, "node a: unknown option 'b' (manifest=, disk=, addr=)");
    bad("node a manifest\n", 1, "node a: 'manifest' is not an option");
    bad("node a addr=10.0.0.300/24\n", 1, "node a: addr= once, as A.B.C.D/N");
    bad("node a addr=10.0.0.1\n", 1, "addr= once, as A.B.C.D/N");
    bad("node a addr=10.0.0.1/33\n", 1, "addr= once");
    bad("node a addr=10.0.0.1/8 addr=10.0.0.2/8\n", 1, "addr= once");
    bad("node a manifest=x manifest=y\n", 1, "node a: manifest=FILE once");
    bad("node a disk=zero:1000\n", 1, "node a: disk= once: IMAGE, zero:SIZE or ext2:SIZE[:DIR]");
    bad("node a disk=zero:1M:dir\n", 1, "disk= once");
    bad("node a disk=ext2:2G\n", 1, "disk= once");
    bad("node a\nnode a\n", 2, "node 'a' declared twice");
    bad("nodes a 1..2\nnode a2\n", 2, "node 'a2' declared twice");
    bad("node a/b\n", 1, "a node needs a name of letters, digits, '-' and '_' (at most 31 bytes)");
    bad("node\n", 1, "a node needs a name");
    bad("node aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1, "a node needs a name");
    bad("nodes w 3..1\n", 1, "nodes needs PREFIX A..B (A <= B)");
    bad("nodes w 1\n", 1, "nodes needs PREFIX A..B");
    bad("nodes w 1..33\n", 1, "too many nodes (limit 32)");
    bad("nodes w 1..32\nnode x\n", 2, "too many nodes (limit 32)");
    bad("nodes w 1..2 manifest=m{i}.x manifest=y\n", 1, "node w1: manifest=FILE once");
    bad("node a\nmanifest x.m\n", 2, "manifest is not for a cluster file");
    bad("node a\ndisk zero size=1M\n", 2, "disk is not for a cluster file");
    bad("node a\npeer b manifest=x\n", 2, "peer is not for a cluster file");
    bad("node a\npeer-disk a zero size=1M\n", 2, "peer-disk is not for a cluster file");
    bad("node a\nkill-at 1s echo\n", 2, "kill-at needs TIME NODE:PROGRAM in a cluster file");
    bad("node a\nkill-at 1s b:echo\n", 2, "kill-at needs a node declared above, not 'b'");
    sim_scenario_t sc;
    assert_int_equal(0, parse("node a\nnode b\nkill-at 1s b:echo\n", &sc));
    assert_int_equal(1, sc.kill_at[0].node);
    assert_string_equal("echo", sc.kill_at[0].program);
    sim_scenario_free(&sc);
}

static void test_network_directives(void **state)
{
    (void)state;
    sim_scenario_t sc;
    assert_int_equal(0, parse("nodes n 1..4\n"
                              "link n1 n2 latency=1ms tail=2ms bandwidth=100M capacity=10\n"
                              "path * n3 bandwidth=64k\n"
                              "net-tail 5ms\n"
                              "net-bandwidth 1G\n"
                              "net-capacity 500\n"
                              "net-latency 20us\n"
                              "partition n1,n2|n3|n4 1s 2s\n"
                              "partition n4 3s never\n"
                              "cut n1 n2 1s 2s\n"
                              "clog * n2 1s never\n"
                              "net-chaos partitions=5s heal=1s split=halves asymmetric=30 "
                              "clogs=2s clog=100ms until=20s\n"
                              "swizzle 1s 3s\n"
                              "liveness 30s\n"
                              "streams off\n",
                              &sc));
    assert_int_equal(2, sc.nlinks);
    assert_int_equal(0, sc.links[0].from);
    assert_int_equal(1, sc.links[0].to);
    assert_true(sc.links[0].both);
    assert_int_equal(1000000, sc.links[0].link.latency_ns);
    assert_int_equal(2000000, sc.links[0].link.tail_mean_ns);
    assert_int_equal(100000000, sc.links[0].link.bandwidth_bps);
    assert_int_equal(10, sc.links[0].link.capacity);
    assert_int_equal(SCN_NODE_ALL, sc.links[1].from);
    assert_int_equal(SIM_NET_ANY, sc.links[1].from);
    assert_false(sc.links[1].both);
    assert_int_equal(64000, sc.links[1].link.bandwidth_bps);
    assert_int_equal(5000000, sc.net_link.tail_mean_ns);
    assert_int_equal(1000000000, sc.net_link.bandwidth_bps);
    assert_int_equal(500, sc.net_capacity);
    assert_int_equal(20000, sc.net_latency_ns);
    assert_int_equal(3, sc.partitions[0].ngroups);
    assert_int_equal(3, sc.partitions[0].groups[0]);
    assert_int_equal(4, sc.partitions[0].groups[1]);
    assert_int_equal(8, sc.partitions[0].groups[2]);
    assert_int_equal(1000000000, sc.partitions[0].start);
    assert_int_equal(1, sc.partitions[1].ngroups); /* isolate n4 */
    assert_int_equal(8, sc.partitions[1].groups[0]);
    assert_int_equal(UINT64_MAX, sc.partitions[1].end);
    assert_int_equal(2, sc.nnet_cuts);
    assert_false(sc.net_cuts[0].clog);
    assert_true(sc.net_cuts[1].clog);
    assert_int_equal(SCN_NODE_ALL, sc.net_cuts[1].from);
    assert_int_equal(UINT64_MAX, sc.net_cuts[1].end);
    assert_true(sc.chaos);
    assert_int_equal(5000000000ull, sc.chaos_cfg.partition_every_mean_ns);
    assert_int_equal(1000000000ull, sc.chaos_cfg.partition_heal_mean_ns);
    assert_int_equal(SIM_NET_SPLIT_HALVES, sc.chaos_cfg.split);
    assert_int_equal(30, sc.chaos_cfg.asymmetric_pct);
    assert_int_equal(2000000000ull, sc.chaos_cfg.clog_every_mean_ns);
    assert_int_equal(100000000ull, sc.chaos_cfg.clog_mean_ns);
    assert_int_equal(20000000000ull, sc.chaos_cfg.until_ns);
    assert_int_equal(1000000000ull, sc.chaos_cfg.swizzle_start_ns);
    assert_int_equal(3000000000ull, sc.chaos_cfg.swizzle_end_ns);
    assert_int_equal(30000000000ull, sim_scenario_liveness(&sc));
    assert_true(sc.streams_off);
    sim_scenario_free(&sc);
    assert_int_equal(0, parse("node a\n", &sc));
    assert_int_equal(120000000000ull, sim_scenario_liveness(&sc));
    assert_false(sc.streams_off);
    assert_false(sc.chaos);
    sim_scenario_free(&sc);

    bad("nodes n 1..2\nlink n1 n3\n", 2, "link needs two nodes declared above or '*', not 'n1 n3'");
    bad("nodes n 1..2\nlink n1 n1\n", 2, "link needs two different nodes");
    bad("nodes n 1..2\nlink n1 n2 speed=1\n", 2,
        "link A B takes latency=T, tail=T, bandwidth=RATE");
    bad("nodes n 1..2\npath n1 n2 latency=0\n", 2, "path A B takes latency=T");
    bad("nodes n 1..2\nlink n1 n2 capacity=0\n", 2, "not 'capacity'");
    bad("nodes n 1..2\nlink n1 n2 bandwidth=10X\n", 2, "not 'bandwidth'");
    bad("node a\nnet-bandwidth 0\n", 2, "net-bandwidth needs a rate in bits/s");
    bad("node a\nnet-bandwidth 2000000T\n", 2, "net-bandwidth needs a rate");
    bad("node a\nnet-capacity 0\n", 2, "net-capacity needs a number of frames 1..65536");
    bad("node a\nnet-tail soon\n", 2, "bad duration 'soon'");
    bad("nodes n 1..3\npartition n1,n2 1s 2s\n", 2, "partition needs groups A,B|C,D, or one NODE");
    bad("nodes n 1..3\npartition n1|n1 1s 2s\n", 2, "partition: node n1 is in two groups");
    bad("nodes n 1..3\npartition n1|n9 1s 2s\n", 2,
        "partition needs nodes declared above, not 'n9'");
    bad("nodes n 1..3\npartition n1|n2 2s 1s\n", 2, "partition needs GROUPS START END");
    bad("nodes n 1..3\npartition n1 1s\n", 2, "partition needs GROUPS START END");
    bad("nodes n 1..9\npartition n1|n2|n3|n4|n5|n6|n7|n8|n9 1s 2s\n", 2, "at most 8 groups");
    bad("nodes n 1..2\ncut n1 n2 1s\n", 2, "cut needs A B START END");
    bad("nodes n 1..2\nclog n1 x 1s 2s\n", 2, "clog needs two nodes declared above or '*'");
    bad("node a\nnet-chaos split=thirds\n", 2, "net-chaos takes partitions=MEAN");
    bad("node a\nnet-chaos asymmetric=101\n", 2, "not 'asymmetric'");
    bad("node a\nnet-chaos partitions\n", 2, "not 'partitions'");
    bad("node a\nswizzle 3s 1s\n", 2, "swizzle needs START END");
    bad("node a\nswizzle 1s never\n", 2, "swizzle needs START END");
    bad("node a\nliveness 0\n", 2, "bad duration '0'");
    bad("node a\nstreams maybe\n", 2, "streams is on or off");
    bad("eof maybe\n", 1, "eof is on or off");
    /* too many lines of a kind */
    char text[8192] = "nodes n 1..2\n";
    for (int i = 0; i <= SCN_LINKS_MAX; i++)
        strcat(text, "path n1 n2\n");
    bad(text, SCN_LINKS_MAX + 2, "too many link and path lines (limit 64)");
}

static void test_node_faults(void **state)
{
    (void)state;
    sim_scenario_t sc;
    assert_int_equal(0, parse("nodes n 1..3\n"
                              "crash n2 2s\n"
                              "crash * 1s..2s down=never\n"
                              "crash n3 5s down=300ms\n"
                              "pause n1 1s 2.5s\n",
                              &sc));
    assert_int_equal(3, sc.ncrashes);
    assert_int_equal(1, sc.crashes[0].node);
    assert_int_equal(2000000000ull, sc.crashes[0].start);
    assert_int_equal(2000000000ull, sc.crashes[0].end);
    assert_int_equal(1000000000ull, sc.crashes[0].down_ns); /* the default: 1 s */
    assert_int_equal(SCN_NODE_ALL, sc.crashes[1].node);
    assert_int_equal(1000000000ull, sc.crashes[1].start);
    assert_int_equal(2000000000ull, sc.crashes[1].end);
    assert_int_equal(UINT64_MAX, sc.crashes[1].down_ns);
    assert_int_equal(300000000ull, sc.crashes[2].down_ns);
    assert_int_equal(4, sc.crashes[2].line);
    assert_int_equal(1, sc.npauses);
    assert_int_equal(0, sc.pauses[0].node);
    assert_int_equal(2500000000ull, sc.pauses[0].end);
    sim_scenario_free(&sc);
    /* old files may name their peers */
    assert_int_equal(0, parse("peer s manifest=s.m\ncrash s 1s\npause s 1s 2s\n", &sc));
    assert_int_equal(1, sc.crashes[0].node);
    assert_int_equal(1, sc.pauses[0].node);
    sim_scenario_free(&sc);

    bad("node a\ncrash b 1s\n", 2, "crash needs a node declared above or '*', not 'b'");
    bad("node a\ncrash a 2s..1s\n", 2, "crash needs NODE|* TIME|START..END");
    bad("node a\ncrash a 1s down=0\n", 2, "then optionally down=T|never");
    bad("node a\ncrash a 1s later\n", 2, "then optionally down=T|never");
    bad("node a\ncrash a 1s down=1s extra\n", 2, "crash needs NODE|*");
    bad("node a\ncrash a\n", 2, "crash needs NODE|*");
    bad("node a\npause * 1s 2s\n", 2, "pause needs a node declared above, not '*'");
    bad("node a\npause a 1s never\n", 2, "pause needs NODE START END (END after START)");
    bad("node a\npause a 2s 1s\n", 2, "pause needs NODE START END");
    char text[4096] = "node a\n";
    for (int i = 0; i <= SCN_CRASHES_MAX; i++)
        strcat(text, "crash a 1s\n");
    bad(text, SCN_CRASHES_MAX + 2, "too many crash lines (limit 32)");
}

static void test_substitution(void **state)
{
    (void)state;
    sim_scenario_t sc;
    assert_int_equal(0, parse("node lead addr=10.0.0.1/24\nnodes f 2..3 addr=10.0.0.{i}/24\n"
                              "node bare\n",
                              &sc));
    const char *m = "program x arg=${name}:${i}:${addr}:${cidr}:${addr:lead}:${addr:f3}$$ {i}";
    size_t len;
    char *out = sim_scenario_substitute(&sc, 2, m, strlen(m), &len, err, sizeof err);
    assert_non_null(out);
    assert_string_equal("program x arg=f3:3:10.0.0.3:10.0.0.3/24:10.0.0.1:10.0.0.3$$ {i}", out);
    assert_int_equal(strlen(out), len);
    free(out);
    out = sim_scenario_substitute(&sc, 0, "${i}", 4, &len, err, sizeof err);
    assert_string_equal("0", out);
    free(out);
    assert_null(sim_scenario_substitute(&sc, 0, "${port}", 7, &len, err, sizeof err));
    assert_non_null(strstr(err, "unknown ${port}"));
    assert_null(sim_scenario_substitute(&sc, 0, "${addr:nobody}", 14, &len, err, sizeof err));
    assert_non_null(strstr(err, "unknown ${addr:nobody}"));
    assert_null(sim_scenario_substitute(&sc, 3, "a=${addr}", 9, &len, err, sizeof err));
    assert_string_equal("${addr}: node bare has no addr=", err);
    assert_null(sim_scenario_substitute(&sc, 0, "x ${addr:bare}", 14, &len, err, sizeof err));
    assert_string_equal("${addr:bare}: node bare has no addr=", err);
    assert_null(sim_scenario_substitute(&sc, 0, "x ${name", 8, &len, err, sizeof err));
    assert_non_null(strstr(err, "'${' without its '}'"));
    sim_scenario_free(&sc);
}

/* sim_scenario_load: each node's manifest from the scenario's folder, substituted, checked. */
static void test_load_manifests(void **state)
{
    (void)state;
    char dir[] = "/tmp/orrery-test-scenario-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/node.manifest", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("program tcpip arg=addr=${cidr}\nprogram echo\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/bad.manifest", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("program echo\nprogram ${name}\n", f);
    fclose(f);

    sim_scenario_t sc;
    assert_int_equal(0, parse("nodes n 1..2 manifest=node.manifest addr=10.9.0.{i}/16\n"
                              "node plain\n",
                              &sc));
    assert_int_equal(0, sim_scenario_load(&sc, dir, err, sizeof err));
    assert_string_equal("program tcpip arg=addr=10.9.0.2/16\nprogram echo\n",
                        sc.nodes[1].manifest.text);
    assert_non_null(sc.nodes[2].manifest.text); /* the default manifest */
    sim_scenario_free(&sc);

    assert_int_equal(0, parse("node a\nnode b manifest=bad.manifest\n", &sc));
    assert_int_equal(2, sim_scenario_load(&sc, dir, err, sizeof err));
    assert_non_null(strstr(err, "node b: bad.manifest:2: "));
    sim_scenario_free(&sc);
    assert_int_equal(0, parse("node a manifest=node.manifest\n", &sc));
    assert_int_equal(1, sim_scenario_load(&sc, dir, err, sizeof err));
    assert_string_equal("node a: manifest node.manifest: ${cidr}: node a has no addr=", err);
    sim_scenario_free(&sc);
    assert_int_equal(0, parse("node a\n\nnode b manifest=missing.manifest\n", &sc));
    assert_int_equal(3, sim_scenario_load(&sc, dir, err, sizeof err));
    assert_non_null(strstr(err, "node b: "));
    assert_non_null(strstr(err, "missing.manifest: No such file"));
    sim_scenario_free(&sc);
    /* a disk that cannot be read names its node */
    assert_int_equal(0, parse("nodes d 1..2 disk=d{i}.img\n", &sc));
    assert_int_equal(1, sim_scenario_load(&sc, dir, err, sizeof err));
    assert_non_null(strstr(err, "node d1: "));
    sim_scenario_free(&sc);

    snprintf(path, sizeof path, "%s/node.manifest", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bad.manifest", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_files_are_not_clusters),
        cmocka_unit_test(test_nodes_and_templates),
        cmocka_unit_test(test_node_errors),
        cmocka_unit_test(test_network_directives),
        cmocka_unit_test(test_node_faults),
        cmocka_unit_test(test_substitution),
        cmocka_unit_test(test_load_manifests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
