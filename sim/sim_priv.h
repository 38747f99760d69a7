/* sim_priv.h — what the parts of the simulator share: nodes, their state, posting to them. */
#ifndef SIM_PRIV_H
#define SIM_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>

/* The per-node state section (node_state.c): its size (0: the build has none). */
size_t sim_node_state_size(void);
/* A copy of the section as the program was loaded (NULL: none, or out of memory). */
void *sim_node_state_new(void);
void sim_node_state_save(void *buf);
void sim_node_state_load(const void *buf);

/* The node whose state is loaded and whose HAL calls are being served. */
size_t sim_node_current(void);
/* Make node i current (loading its state); its kernel may then be called. */
void sim_node_enter(size_t i);
/* True if node i exists and has not shut down. */
int sim_node_alive(size_t i);
/* True if node i is paused now (sim_node_pause): its events, timers and input wait. */
int sim_node_paused(size_t i);
/* Events and messages the kernels of node i that power cuts tore down had run (this run). */
void sim_node_cut_stats(size_t i, uint64_t *events, uint64_t *messages);
/* True if node i has a kernel (booted, and not torn down by a power cut since). */
int sim_node_booted(size_t i);
/* Post device input to node i (entering it); it then has work. k_post's result. */
int sim_node_post(size_t i, int dev, uint32_t code, const void *data, size_t len);

/* sim_at, with node `node` current while fn runs. */
int sim_at_node(size_t node, uint64_t t_ns, void (*fn)(void *, uint64_t), void *self, uint64_t arg);

/* The switch (net.c): attach node i's net0 (before its boot), write, reset. */
int sim_net_attach(size_t node, const uint8_t mac[6]);
void sim_net_link_up(size_t node);
void sim_net_reset(void);

/* The disks (blk.c): attach node i's blk0 on disk (before its boot), post its info (after),
 * a power cut (drop its requests, the seed decides its cache), reset at teardown. */
struct sim_disk;
int sim_blk_attach(size_t node, struct sim_disk *disk);
void sim_blk_started(size_t node);
void sim_blk_power_cut(size_t node);
void sim_blk_reset(void);

/* Tear node i's kernel down at once (its disk's power cut included), put its state section
 * back to the program's pristine state and then, as `again` says: boot it anew with its
 * config (SIM_REBOOT_NOW), keep it down as shut down with status -1 (SIM_REBOOT_OFF), or keep
 * it down without shutting it down, for a crash's later boot (SIM_REBOOT_LATER). 0 or
 * node_boot's error (the node is then shut down). */
enum { SIM_REBOOT_OFF = 0, SIM_REBOOT_NOW = 1, SIM_REBOOT_LATER = 2 };
int sim_node_reboot(size_t i, int again);

/* Seeded streams apart from sim_rand: the run's seed (cfgs[0].seed) mixed with a tag (one per
 * user) and an index (a path, a node) gives a splitmix64 state; drawing from it moves no other
 * stream, so what it decides is a function of the seed whatever the order of events. */
uint64_t sim_stream(uint64_t tag, uint64_t index);
uint64_t sim_splitmix64(uint64_t *state);
/* An exponential draw of the given mean (ns) from state; 0 for mean 0. Integer arithmetic
 * only: the same on every host. */
uint64_t sim_exp_draw(uint64_t *state, uint64_t mean);

#endif
