/* test_pcap_sim.c — captures of a simulation: two nodes running tcpip on the switch; the pcap
 * exported from node 0's trace is the same bytes for the same seed, and holds the frames the
 * switch's tap saw node 0 send (the writer's API as the simulator uses it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <image.h>
#include <sim/net.h>
#include <sim/sim.h>
#include <trace/pcap.h>
#include <trace/reader.h>
#include <trace/recorder.h>

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/orrery-pcap-sim-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* The switch's tap, as the simulator's --pcap would use it: node 0's frames into a capture. */
static void tap(void *self, uint64_t t_ns, uint32_t from, const void *frame, size_t len)
{
    if (from == 0)
        assert_int_equal(0, trace_pcap_write(self, t_ns, frame, len));
}

/* Two nodes with tcpip for 5 s of virtual time; node 0 traced to NAME.db, tapped to NAME.tap;
 * then NAME.db exported to NAME.pcap. */
static void run(uint64_t seed, const char *name)
{
    static const char manifest[] = "program tcpip restart=on-failure\n";
    char db[128], tapped[128], pcap[128], err[512];
    trace_run_info info = {.platform = "sim", .seed = seed, .commit = "test"};
    trace_recorder *rec;
    trace_pcap *tp, *out;
    trace_pcap_stats st;
    trace_db *rdb;

    snprintf(db, sizeof(db), "%s/%s.db", dir, name);
    snprintf(tapped, sizeof(tapped), "%s/%s.tap", dir, name);
    snprintf(pcap, sizeof(pcap), "%s/%s.pcap", dir, name);
    assert_int_equal(0, trace_recorder_open(db, &info, &rec, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_open(tapped, &tp, err, sizeof(err)));
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof(cfg));
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = orrery_programs;
        cfg[i].init_program = "init";
        cfg[i].init_arg = manifest;
        cfg[i].init_arg_len = strlen(manifest);
        cfg[i].seed = seed + (uint64_t)i;
        cfg[i].net = true;
    }
    cfg[0].trace = trace_recorder_sink(rec);
    assert_int_equal(0, sim_boot_nodes(cfg, 2));
    sim_net_config_t nc = {.tap = tap, .tap_self = tp};
    sim_net_configure(&nc);
    for (uint64_t steps = 0; sim_now() < 5000000000u && steps < 2000000; steps++)
        if (!sim_step())
            break;
    sim_teardown();
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_close(tp, err, sizeof(err)));

    assert_int_equal(0, trace_db_open(db, &rdb, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_open(pcap, &out, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_export(rdb, out, &st, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_close(out, err, sizeof(err)));
    trace_db_close(rdb);
    /* DHCP discovers at least, both ways (each node hears the other's broadcasts) */
    assert_true(st.out >= 2);
    assert_true(st.in >= 2);
    assert_int_equal(0, st.bad);
}

static void same_seed_same_pcap(void **state)
{
    char a[128], b[128], c[128], ta[128];
    size_t na, nb, nc, nt;
    run(7, "a");
    run(7, "b");
    run(8, "c");
    snprintf(a, sizeof(a), "%s/a.pcap", dir);
    snprintf(b, sizeof(b), "%s/b.pcap", dir);
    snprintf(c, sizeof(c), "%s/c.pcap", dir);
    snprintf(ta, sizeof(ta), "%s/a.tap", dir);
    unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb), *pc = slurp(c, &nc);
    unsigned char *pt = slurp(ta, &nt);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    /* another seed draws other DHCP transaction ids: the capture tells seeds apart */
    assert_true(na != nc || memcmp(pa, pc, na) != 0);
    /* The tap saw each frame node 0 sent, at the time it was sent: every one of them is in
     * the export, same bytes at the same virtual time (records after the 24-byte header). */
    size_t found = 0, total = 0;
    for (size_t off = 24; off + 16 <= nt;) {
        uint32_t incl = (uint32_t)pt[off + 8] | (uint32_t)pt[off + 9] << 8 |
                        (uint32_t)pt[off + 10] << 16 | (uint32_t)pt[off + 11] << 24;
        total++;
        for (size_t o = 24; o + 16 <= na;) {
            uint32_t n = (uint32_t)pa[o + 8] | (uint32_t)pa[o + 9] << 8 |
                         (uint32_t)pa[o + 10] << 16 | (uint32_t)pa[o + 11] << 24;
            if (n == incl && memcmp(pa + o, pt + off, 16 + n) == 0) {
                found++;
                break;
            }
            o += 16 + n;
        }
        off += 16 + incl;
    }
    assert_true(total >= 2);
    assert_int_equal(total, found);
    free(pa);
    free(pb);
    free(pc);
    free(pt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_pcap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
