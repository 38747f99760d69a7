/* scenario_node.c — the scenario language for clusters: nodes and their templates, the network's
 * paths, partitions, cuts and clogs, seeded chaos, node crashes and pauses, manifest substitution
 * (docs/simulation.md "Clusters: nodes, links, faults"). */
#define _GNU_SOURCE
#include "scenario_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <os/os.h>

enum {
    LINK_CAPACITY_MAX = 65536,      /* frames in flight on one path */
    LIVENESS_DEFAULT_S = 120,       /* `liveness` when none is given */
    RATE_MAX = 1000000000000000ull, /* 1 Pbit/s: a rate above is a typo */
};

#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

bool sim_parse_rate(const char *s, uint64_t *bps)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1000ull;
    else if (*end == 'M')
        mul = 1000000ull;
    else if (*end == 'G')
        mul = 1000000000ull;
    if (mul != 1)
        end++;
    if (*end || v == 0 || v > RATE_MAX / mul)
        return false;
    *bps = v * mul;
    return true;
}

static bool node_word(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= SCN_NAME_MAX)
        return false;
    for (size_t k = 0; k < len; k++)
        if (!isalnum((unsigned char)s[k]) && s[k] != '-' && s[k] != '_')
            return false;
    return true;
}

size_t sim_scenario_node_count(const sim_scenario_t *sc)
{
    return sc->cluster ? sc->nnodes : 1 + sc->npeers;
}

const char *sim_scenario_node_name(const sim_scenario_t *sc, size_t n)
{
    if (sc->cluster)
        return n < sc->nnodes ? sc->nodes[n].name : "";
    return n > 0 && n <= sc->npeers ? sc->peers[n - 1].name : "";
}

scn_manifest_t *sim_scenario_node_manifest(sim_scenario_t *sc, size_t n)
{
    if (sc->cluster)
        return &sc->nodes[n].manifest;
    return n == 0 ? &sc->manifest : &sc->peers[n - 1].manifest;
}

scn_disk_t *sim_scenario_node_disk(sim_scenario_t *sc, size_t n)
{
    if (sc->cluster)
        return &sc->nodes[n].disk;
    return n == 0 ? &sc->disk : &sc->peers[n - 1].disk;
}

bool sim_scenario_has_net(const sim_scenario_t *sc)
{
    if (!sc->cluster)
        return sc->net || sc->npeers > 0;
    if (sc->net || sc->nnodes > 1)
        return true;
    return sc->nnodes == 1 && sc->nodes[0].addr[0];
}

bool scn_find_node(const sim_scenario_t *sc, const char *name, bool star, uint32_t *out)
{
    if (star && strcmp(name, "*") == 0) {
        *out = SCN_NODE_ALL;
        return true;
    }
    size_t n = sim_scenario_node_count(sc);
    for (size_t k = sc->cluster ? 0 : 1; k < n; k++)
        if (strcmp(sim_scenario_node_name(sc, k), name) == 0) {
            *out = (uint32_t)k;
            return true;
        }
    return false;
}

bool scn_parse_window(const char *start, const char *end, uint64_t *s, uint64_t *e)
{
    *e = UINT64_MAX;
    if (!sim_parse_duration(start, s))
        return false;
    if (strcmp(end, "never") != 0 && !sim_parse_duration(end, e))
        return false;
    return *e > *s;
}

/* `addr=A.B.C.D/N` */
static bool parse_addr(scn_node_t *nd, const char *v)
{
    unsigned a[4], bits;
    char tail;
    if (sscanf(v, "%u.%u.%u.%u/%u%c", &a[0], &a[1], &a[2], &a[3], &bits, &tail) != 5)
        return false;
    for (int k = 0; k < 4; k++)
        if (a[k] > 255)
            return false;
    if (bits > 32 || !isdigit((unsigned char)v[0]))
        return false;
    snprintf(nd->addr, sizeof nd->addr, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    snprintf(nd->cidr, sizeof nd->cidr, "%s/%u", nd->addr, bits);
    return true;
}

/* `disk=IMAGE|zero:SIZE|ext2:SIZE[:DIR]` */
static bool parse_node_disk(scn_disk_t *d, char *v, int lineno)
{
    d->line = lineno;
    bool zero = strncmp(v, "zero:", 5) == 0, ext2 = strncmp(v, "ext2:", 5) == 0;
    if (!zero && !ext2) {
        d->kind = SCN_DISK_FILE;
        return scn_set_path(d->path, v);
    }
    char *size = v + 5, *dir = strchr(size, ':');
    if (dir)
        *dir++ = '\0';
    if (!sim_parse_disk_size(size, &d->size))
        return false;
    d->kind = zero ? SCN_DISK_ZERO : SCN_DISK_EXT2;
    if (dir && (zero || !scn_set_path(d->from, dir)))
        return false;
    return true;
}

/* Replace every `{i}` of v (an option's value) by the index, into buf. */
static bool expand_index(const char *v, uint64_t i, char *buf, size_t len)
{
    size_t o = 0;
    for (const char *p = v; *p;) {
        if (strncmp(p, "{i}", 3) == 0) {
            int n = snprintf(buf + o, len - o, "%llu", (unsigned long long)i);
            if (n < 0 || (size_t)n >= len - o)
                return false;
            o += (size_t)n;
            p += 3;
        } else {
            if (o + 1 >= len)
                return false;
            buf[o++] = *p++;
        }
    }
    buf[o] = '\0';
    return true;
}

/* The options of `node` / `nodes` for one node (index i replaces `{i}` when `expand`). */
static int node_options(scn_node_t *nd, const char *opts, bool expand, int lineno, char *err,
                        size_t errlen)
{
    char copy[SCN_LINE_MAX + 1], *rest = copy;
    snprintf(copy, sizeof copy, "%s", opts);
    for (char *w = scn_word(&rest); *w; w = scn_word(&rest)) {
        char v[SCN_PATH_MAX + 32];
        char *eq = strchr(w, '=');
        if (!eq)
            BAD("node %s: '%s' is not an option (manifest=FILE, disk=IMAGE|zero:SIZE|"
                "ext2:SIZE[:DIR], addr=A.B.C.D/N)",
                nd->name, w);
        *eq = '\0';
        if (expand ? !expand_index(eq + 1, nd->index, v, sizeof v)
                   : snprintf(v, sizeof v, "%s", eq + 1) >= (int)sizeof v)
            BAD("node %s: %s= is longer than %d bytes", nd->name, w, SCN_PATH_MAX - 1);
        if (strcmp(w, "manifest") == 0) {
            if (nd->manifest.path[0] || !scn_set_path(nd->manifest.path, v))
                BAD("node %s: manifest=FILE once (a file name, at most %d bytes)", nd->name,
                    SCN_PATH_MAX - 1);
            nd->manifest.line = lineno;
        } else if (strcmp(w, "disk") == 0) {
            if (nd->disk.kind != SCN_DISK_NONE || !parse_node_disk(&nd->disk, v, lineno))
                BAD("node %s: disk= once: IMAGE, zero:SIZE or ext2:SIZE[:DIR] (SIZE a multiple "
                    "of 512 bytes up to 1G: 4M, 512K)",
                    nd->name);
        } else if (strcmp(w, "addr") == 0) {
            if (nd->addr[0] || !parse_addr(nd, v))
                BAD("node %s: addr= once, as A.B.C.D/N (N 0..32), not '%s'", nd->name, v);
        } else {
            BAD("node %s: unknown option '%s' (manifest=, disk=, addr=)", nd->name, w);
        }
    }
    return 0;
}

static int add_node(sim_scenario_t *sc, const char *name, uint64_t index, const char *opts,
                    bool expand, int lineno, char *err, size_t errlen)
{
    if (sc->nnodes == SCN_NODES_MAX)
        BAD("too many nodes (limit %d)", SCN_NODES_MAX);
    if (!node_word(name))
        BAD("a node needs a name of letters, digits, '-' and '_' (at most %d bytes), not '%s'",
            SCN_NAME_MAX - 1, name);
    uint32_t k;
    if (scn_find_node(sc, name, false, &k))
        BAD("node '%s' declared twice", name);
    scn_node_t *nd = &sc->nodes[sc->nnodes];
    memset(nd, 0, sizeof *nd);
    snprintf(nd->name, sizeof nd->name, "%s", name);
    nd->index = index;
    nd->line = lineno;
    nd->manifest.line = lineno;
    if (node_options(nd, opts, expand, lineno, err, errlen) != 0)
        return -1;
    sc->nnodes++;
    return 0;
}

/* `link`/`path` options into l. */
static int link_options(sim_net_link_t *l, char *rest, const char *key, char *err, size_t errlen)
{
    for (char *w = scn_word(&rest); *w; w = scn_word(&rest)) {
        char *eq = strchr(w, '=');
        uint64_t v;
        bool ok = eq != NULL;
        if (ok) {
            *eq++ = '\0';
            if (strcmp(w, "latency") == 0)
                ok = sim_parse_duration(eq, &l->latency_ns) && l->latency_ns > 0;
            else if (strcmp(w, "tail") == 0)
                ok = sim_parse_duration(eq, &l->tail_mean_ns);
            else if (strcmp(w, "bandwidth") == 0)
                ok = sim_parse_rate(eq, &l->bandwidth_bps);
            else if (strcmp(w, "capacity") == 0 &&
                     (ok = scn_parse_number(eq, 1, LINK_CAPACITY_MAX, &v)))
                l->capacity = (uint32_t)v;
            else if (strcmp(w, "capacity") != 0)
                ok = false;
        }
        if (!ok)
            BAD("%s A B takes latency=T, tail=T, bandwidth=RATE (bits/s: 100M, 1G) and "
                "capacity=N (1..%d), not '%s'",
                key, LINK_CAPACITY_MAX, w);
    }
    return 0;
}

static int parse_partition(sim_scenario_t *sc, char *arg, int lineno, char *err, size_t errlen)
{
    char *rest = arg;
    char *who = scn_word(&rest), *start = scn_word(&rest), *end = scn_word(&rest);
    if (sc->npartitions == SCN_PARTITIONS_MAX)
        BAD("too many partitions (limit %d)", SCN_PARTITIONS_MAX);
    scn_partition_t *pt = &sc->partitions[sc->npartitions];
    memset(pt, 0, sizeof *pt);
    uint64_t seen = 0;
    for (char *g = who; g;) {
        char *bar = strchr(g, '|');
        if (bar)
            *bar = '\0';
        if (pt->ngroups == SCN_GROUPS_MAX)
            BAD("partition: at most %d groups", SCN_GROUPS_MAX);
        for (char *nm = g; nm;) {
            char *comma = strchr(nm, ',');
            if (comma)
                *comma = '\0';
            uint32_t k;
            if (!scn_find_node(sc, nm, false, &k))
                BAD("partition needs nodes declared above, not '%s' (partition A,B|C,D START "
                    "END, or partition NODE START END)",
                    nm);
            if (seen & (1ull << k))
                BAD("partition: node %s is in two groups", nm);
            seen |= 1ull << k;
            pt->groups[pt->ngroups] |= 1ull << k;
            nm = comma ? comma + 1 : NULL;
        }
        pt->ngroups++;
        g = bar ? bar + 1 : NULL;
    }
    if (pt->ngroups == 1 && __builtin_popcountll(pt->groups[0]) != 1)
        BAD("partition needs groups A,B|C,D, or one NODE to isolate");
    if (*rest || !scn_parse_window(start, end, &pt->start, &pt->end))
        BAD("partition needs GROUPS START END (END after START, or 'never')");
    pt->line = lineno;
    sc->npartitions++;
    return 0;
}

static int parse_chaos(sim_scenario_t *sc, char *rest, char *err, size_t errlen)
{
    sim_net_chaos_t *c = &sc->chaos_cfg;
    for (char *w = scn_word(&rest); *w; w = scn_word(&rest)) {
        char *eq = strchr(w, '=');
        uint64_t v;
        bool ok = eq != NULL;
        if (ok) {
            *eq++ = '\0';
            if (strcmp(w, "partitions") == 0)
                ok = sim_parse_duration(eq, &c->partition_every_mean_ns);
            else if (strcmp(w, "heal") == 0)
                ok = sim_parse_duration(eq, &c->partition_heal_mean_ns);
            else if (strcmp(w, "clogs") == 0)
                ok = sim_parse_duration(eq, &c->clog_every_mean_ns);
            else if (strcmp(w, "clog") == 0)
                ok = sim_parse_duration(eq, &c->clog_mean_ns);
            else if (strcmp(w, "until") == 0)
                ok = sim_parse_duration(eq, &c->until_ns);
            else if (strcmp(w, "asymmetric") == 0 && (ok = scn_parse_number(eq, 0, 100, &v)))
                c->asymmetric_pct = (uint32_t)v;
            else if (strcmp(w, "split") == 0 && strcmp(eq, "any") == 0)
                c->split = SIM_NET_SPLIT_ANY;
            else if (strcmp(w, "split") == 0 && strcmp(eq, "isolate") == 0)
                c->split = SIM_NET_SPLIT_ISOLATE;
            else if (strcmp(w, "split") == 0 && strcmp(eq, "halves") == 0)
                c->split = SIM_NET_SPLIT_HALVES;
            else
                ok = false;
        }
        if (!ok)
            BAD("net-chaos takes partitions=MEAN heal=MEAN split=any|isolate|halves "
                "asymmetric=PCT clogs=MEAN clog=MEAN until=T, not '%s'",
                w);
    }
    sc->chaos = true;
    return 0;
}

static int parse_crash(sim_scenario_t *sc, char *rest, int lineno, char *err, size_t errlen)
{
    char *who = scn_word(&rest), *when = scn_word(&rest), *down = scn_word(&rest);
    if (sc->ncrashes == SCN_CRASHES_MAX)
        BAD("too many crash lines (limit %d)", SCN_CRASHES_MAX);
    scn_crash_t *cr = &sc->crashes[sc->ncrashes];
    if (!scn_find_node(sc, who, true, &cr->node))
        BAD("crash needs a node declared above or '*', not '%s'", who);
    char *dots = strstr(when, "..");
    if (dots)
        *dots = '\0';
    bool ok = sim_parse_duration(when, &cr->start);
    cr->end = cr->start;
    if (ok && dots)
        ok = sim_parse_duration(dots + 2, &cr->end) && cr->end >= cr->start;
    cr->down_ns = 1000000000ull;
    if (ok && *down) {
        if (strcmp(down, "down=never") == 0)
            cr->down_ns = UINT64_MAX;
        else
            ok = strncmp(down, "down=", 5) == 0 && sim_parse_duration(down + 5, &cr->down_ns) &&
                 cr->down_ns > 0;
    }
    if (!ok || *rest)
        BAD("crash needs NODE|* TIME|START..END (END not before START), then optionally "
            "down=T|never");
    cr->line = lineno;
    sc->ncrashes++;
    return 0;
}

int scn_parse_cluster_line(sim_scenario_t *sc, const char *key, char *arg, int lineno, char *err,
                           size_t errlen)
{
    char *rest = arg;
    uint64_t v;
    if (strcmp(key, "node") == 0) {
        char *name = scn_word(&rest);
        return add_node(sc, name, 0, rest, false, lineno, err, errlen) ? -1 : 1;
    } else if (strcmp(key, "nodes") == 0) {
        /* nodes PREFIX A..B [options]: PREFIXA .. PREFIXB, `{i}` in the options their number */
        char *prefix = scn_word(&rest), *range = scn_word(&rest);
        char *dots = strstr(range, "..");
        uint64_t a, b;
        if (dots)
            *dots = '\0';
        if (!dots || !scn_parse_number(range, 0, 999999999, &a) ||
            !scn_parse_number(dots + 2, a, 999999999, &b))
            BAD("nodes needs PREFIX A..B (A <= B), then the options of node");
        if (b - a >= (uint64_t)(SCN_NODES_MAX - sc->nnodes))
            BAD("too many nodes (limit %d)", SCN_NODES_MAX);
        for (uint64_t i = a; i <= b; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s%llu", prefix, (unsigned long long)i);
            if (add_node(sc, name, i, rest, true, lineno, err, errlen) != 0)
                return -1;
        }
        return 1;
    } else if (strcmp(key, "link") == 0 || strcmp(key, "path") == 0) {
        char *a = scn_word(&rest), *b = scn_word(&rest);
        if (sc->nlinks == SCN_LINKS_MAX)
            BAD("too many link and path lines (limit %d)", SCN_LINKS_MAX);
        scn_link_t *l = &sc->links[sc->nlinks];
        memset(l, 0, sizeof *l);
        if (!scn_find_node(sc, a, true, &l->from) || !scn_find_node(sc, b, true, &l->to))
            BAD("%s needs two nodes declared above or '*', not '%s %s' (%s A B OPTIONS)", key, a, b,
                key);
        if (l->from == l->to && l->from != SCN_NODE_ALL)
            BAD("%s needs two different nodes", key);
        if (link_options(&l->link, rest, key, err, errlen) != 0)
            return -1;
        l->both = key[0] == 'l';
        l->line = lineno;
        sc->nlinks++;
        return 1;
    } else if (strcmp(key, "net-tail") == 0) {
        if (!sim_parse_duration(arg, &sc->net_link.tail_mean_ns))
            BAD("bad duration '%s'", arg);
        return 1;
    } else if (strcmp(key, "net-bandwidth") == 0) {
        if (!sim_parse_rate(arg, &sc->net_link.bandwidth_bps))
            BAD("net-bandwidth needs a rate in bits/s (100M, 1G, 64k), not '%s'", arg);
        return 1;
    } else if (strcmp(key, "net-capacity") == 0) {
        if (!scn_parse_number(arg, 1, LINK_CAPACITY_MAX, &v))
            BAD("net-capacity needs a number of frames 1..%d", LINK_CAPACITY_MAX);
        sc->net_capacity = (uint32_t)v;
        return 1;
    } else if (strcmp(key, "partition") == 0 && sc->cluster) {
        return parse_partition(sc, arg, lineno, err, errlen) ? -1 : 1;
    } else if (strcmp(key, "cut") == 0 || strcmp(key, "clog") == 0) {
        char *a = scn_word(&rest), *b = scn_word(&rest), *s = scn_word(&rest);
        char *e = scn_word(&rest);
        if (sc->nnet_cuts == SCN_NET_CUTS_MAX)
            BAD("too many cut and clog lines (limit %d)", SCN_NET_CUTS_MAX);
        scn_net_cut_t *c = &sc->net_cuts[sc->nnet_cuts];
        if (!scn_find_node(sc, a, true, &c->from) || !scn_find_node(sc, b, true, &c->to))
            BAD("%s needs two nodes declared above or '*', not '%s %s' (%s A B START END)", key, a,
                b, key);
        if (*rest || !scn_parse_window(s, e, &c->start, &c->end))
            BAD("%s needs A B START END (END after START, or 'never')", key);
        c->clog = key[1] == 'l';
        c->line = lineno;
        sc->nnet_cuts++;
        return 1;
    } else if (strcmp(key, "net-chaos") == 0) {
        return parse_chaos(sc, rest, err, errlen) ? -1 : 1;
    } else if (strcmp(key, "swizzle") == 0) {
        char *s = scn_word(&rest), *e = scn_word(&rest);
        if (*rest ||
            !scn_parse_window(s, e, &sc->chaos_cfg.swizzle_start_ns,
                              &sc->chaos_cfg.swizzle_end_ns) ||
            sc->chaos_cfg.swizzle_end_ns == UINT64_MAX)
            BAD("swizzle needs START END (END after START)");
        sc->chaos = true;
        return 1;
    } else if (strcmp(key, "crash") == 0) {
        return parse_crash(sc, rest, lineno, err, errlen) ? -1 : 1;
    } else if (strcmp(key, "pause") == 0) {
        char *who = scn_word(&rest), *s = scn_word(&rest), *e = scn_word(&rest);
        if (sc->npauses == SCN_PAUSES_MAX)
            BAD("too many pause lines (limit %d)", SCN_PAUSES_MAX);
        scn_pause_t *pa = &sc->pauses[sc->npauses];
        if (!scn_find_node(sc, who, false, &pa->node))
            BAD("pause needs a node declared above, not '%s' (pause NODE START END)", who);
        if (*rest || !scn_parse_window(s, e, &pa->start, &pa->end) || pa->end == UINT64_MAX)
            BAD("pause needs NODE START END (END after START)");
        pa->line = lineno;
        sc->npauses++;
        return 1;
    } else if (strcmp(key, "liveness") == 0) {
        if (!sim_parse_duration(arg, &sc->liveness_ns) || sc->liveness_ns == 0)
            BAD("bad duration '%s'", arg);
        return 1;
    } else if (strcmp(key, "streams") == 0) {
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            BAD("streams is on or off");
        sc->streams_off = arg[1] == 'f';
        return 1;
    }
    return 0;
}

uint64_t sim_scenario_liveness(const sim_scenario_t *sc)
{
    return sc->liveness_ns ? sc->liveness_ns : LIVENESS_DEFAULT_S * 1000000000ull;
}

char *sim_scenario_substitute(const sim_scenario_t *sc, size_t n, const char *text, size_t len,
                              size_t *outlen, char *err, size_t errlen)
{
    const scn_node_t *nd = &sc->nodes[n];
    size_t cap = len + 1, o = 0;
    char *out = malloc(cap);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < len;) {
        const char *val = NULL;
        char num[24], key[SCN_NAME_MAX + 8];
        size_t skip = 1;
        if (text[i] == '$' && i + 1 < len && text[i + 1] == '{') {
            const char *close = memchr(text + i + 2, '}', len - i - 2);
            size_t klen = close ? (size_t)(close - text - i - 2) : 0;
            if (!close || klen >= sizeof key) {
                snprintf(err, errlen,
                         "'${' without its '}' (${name}, ${i}, ${addr}, ${cidr}, "
                         "${addr:NODE})");
                free(out);
                return NULL;
            }
            memcpy(key, text + i + 2, klen);
            key[klen] = '\0';
            skip = klen + 3;
            uint32_t k = (uint32_t)n;
            if (strcmp(key, "name") == 0) {
                val = nd->name;
            } else if (strcmp(key, "i") == 0) {
                snprintf(num, sizeof num, "%llu", (unsigned long long)nd->index);
                val = num;
            } else if (strcmp(key, "addr") == 0 || strcmp(key, "cidr") == 0 ||
                       (strncmp(key, "addr:", 5) == 0 && scn_find_node(sc, key + 5, false, &k))) {
                val = key[1] == 'i' ? sc->nodes[k].cidr : sc->nodes[k].addr;
                if (!val[0]) {
                    snprintf(err, errlen, "${%s}: node %s has no addr=", key, sc->nodes[k].name);
                    free(out);
                    return NULL;
                }
            } else {
                snprintf(err, errlen,
                         "unknown ${%s} (${name}, ${i}, ${addr}, ${cidr}, ${addr:NODE} with a "
                         "node of the scenario)",
                         key);
                free(out);
                return NULL;
            }
        }
        size_t vlen = val ? strlen(val) : 1;
        if (o + vlen + 1 > cap) {
            cap = (o + vlen + 1) * 2;
            char *p = realloc(out, cap);
            if (!p) {
                free(out);
                snprintf(err, errlen, "out of memory");
                return NULL;
            }
            out = p;
        }
        memcpy(out + o, val ? val : text + i, vlen);
        o += vlen;
        i += skip;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}
