/* sim_pair.h — two simulated nodes on the switch, for the network tests: boot them with a
 * tap that hashes every frame, a partition and the net faults. Include once per test file. */
#ifndef TESTS_SIM_PAIR_H
#define TESTS_SIM_PAIR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sim/faults.h>
#include <sim/net.h>
#include <sim/sim.h>

/* Every frame the switch saw sent: how many, and FNV-1a over (time, from, bytes) of each. */
static struct {
    uint64_t frames, hash;
} sim_pair_seen;

static void sim_pair_tap(void *self, uint64_t t, uint32_t from, const void *frame, size_t len)
{
    (void)self;
    uint64_t words[2] = {t, from};
    sim_pair_seen.frames++;
    for (size_t i = 0; i < sizeof words; i++)
        sim_pair_seen.hash = (sim_pair_seen.hash ^ ((const uint8_t *)words)[i]) * 0x100000001b3ull;
    for (size_t i = 0; i < len; i++)
        sim_pair_seen.hash = (sim_pair_seen.hash ^ ((const uint8_t *)frame)[i]) * 0x100000001b3ull;
}

/*
 * Boot node 0 with manifest m0 and seed s0, node 1 with m1 and s1, both with net0 and events
 * costing 1..event_cost ns (0: none); tap the switch into sim_pair_seen (reset); cut the two
 * apart from cut_from to cut_to (when cut_to > cut_from); inject `faults` with loss,
 * duplication and reordering at pct %. 0 or the first error (sim_teardown is the caller's).
 */
static int sim_pair_boot(const os_program_t *const *image, const char *m0, uint64_t s0,
                         const char *m1, uint64_t s1, uint64_t event_cost, uint32_t faults,
                         uint32_t pct, uint64_t cut_from, uint64_t cut_to)
{
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof cfg);
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = image;
        cfg[i].seed = i == 0 ? s0 : s1;
        cfg[i].net = true;
        cfg[i].event_cost_max_ns = event_cost;
        cfg[i].init_arg = i == 0 ? m0 : m1;
        cfg[i].init_arg_len = strlen(i == 0 ? m0 : m1);
    }
    sim_pair_seen.frames = 0;
    sim_pair_seen.hash = 0xcbf29ce484222325ull;
    int rc = sim_boot_nodes(cfg, 2);
    if (rc != 0)
        return rc;
    sim_net_config_t nc = {.tap = sim_pair_tap};
    sim_net_configure(&nc);
    if (cut_to > cut_from && (rc = sim_net_partition(0, 1, cut_from, cut_to)) != 0)
        return rc;
    sim_faults_t f;
    sim_faults_defaults(&f);
    f.enabled = faults;
    f.net_loss_pct = f.net_dup_pct = f.net_reorder_pct = pct;
    return sim_faults_install(&f);
}

#endif
