/* scenario_priv.h — what the parts of the scenario parser share (scenario.c, scenario_node.c). */
#ifndef SIM_SCENARIO_PRIV_H
#define SIM_SCENARIO_PRIV_H

#include <sim/scenario.h>

/* A decimal number in [min, max]; no sign, no spaces. */
bool scn_parse_number(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Cut the first word off *s (NUL-terminating it) and skip the spaces after it: the word. */
char *scn_word(char **s);
/* A path: one word, shorter than SCN_PATH_MAX, into dst[SCN_PATH_MAX]. */
bool scn_set_path(char *dst, const char *arg);
/* A node named in a directive: a cluster file's node, or in an old file a peer (1 + its
 * index). `*` is SCN_NODE_ALL when star is true. false: no such node. */
bool scn_find_node(const sim_scenario_t *sc, const char *name, bool star, uint32_t *out);
/* START END|never of a fault window: false if malformed or END not after START. */
bool scn_parse_window(const char *start, const char *end, uint64_t *s, uint64_t *e);

/*
 * The directives of clusters (scenario_node.c): node, nodes, link, path, net-tail,
 * net-bandwidth, net-capacity, partition (cluster form), cut, clog, net-chaos, swizzle, crash,
 * pause, liveness, streams. 1 handled, 0 not one of them, -1 error in err.
 */
int scn_parse_cluster_line(sim_scenario_t *sc, const char *key, char *arg, int lineno, char *err,
                           size_t errlen);

#endif
