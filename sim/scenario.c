/* scenario.c — the scenario parser (format: docs/simulation.md) and the built-in scenario. */
#include "scenario_priv.h"

#include <os/os.h>
#include <sim/blk.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char sim_default_scenario[] = "# default: boot, ps, echo, kill echo, restart, ps, shutdown\n"
                                    "name default\n"
                                    "duration 2s\n"
                                    "faults kill,delay,jitter\n"
                                    "kill echo\n"
                                    "kills 2\n"
                                    "exit 0\n"
                                    "expect orrery>\n"
                                    "at 100ms ps\n"
                                    "expect ID   NAME         STATE\n"
                                    "expect echo\n"
                                    "at +100ms echo hello, orrery\n"
                                    "expect hello, orrery\n"
                                    "at +100ms kill echo\n"
                                    "expect [init] echo (task\n"
                                    "expect restarting (restart\n"
                                    "at +500ms ps\n"
                                    "expect ID   NAME\n"
                                    "at +100ms echo still here\n"
                                    "expect still here\n"
                                    "at +100ms shutdown\n"
                                    "expect shutting down\n"
                                    "expect-not panic:\n"
                                    "expect-not fault:\n";

bool sim_parse_duration(const char *s, uint64_t *ns)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}, {"", 1000000000}};
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    uint64_t whole = strtoull(s, &end, 10), frac = 0, fdiv = 1;
    if (*end == '.') {
        end++;
        while (isdigit((unsigned char)*end) && fdiv < 1000000000ull) {
            frac = frac * 10 + (uint64_t)(*end++ - '0');
            fdiv *= 10;
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (whole > UINT64_MAX / units[i].mul / 2)
                return false;
            *ns = whole * units[i].mul + frac * units[i].mul / fdiv;
            return true;
        }
    }
    return false;
}

bool sim_parse_disk_size(const char *s, uint64_t *bytes)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ull << 10;
    else if (*end == 'M' || *end == 'm')
        mul = 1ull << 20;
    else if (*end == 'G' || *end == 'g')
        mul = 1ull << 30;
    if (mul != 1)
        end++;
    if (errno || *end || v == 0 || v > SIM_DISK_MAX_BYTES / mul)
        return false;
    v *= mul;
    if (v % 512 != 0)
        return false;
    *bytes = v;
    return true;
}

bool scn_parse_number(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Names separated by commas into dst[max][32]; false if one is too long or too many. */
static bool parse_names(const char *s, char (*dst)[32], size_t max, size_t *n)
{
    *n = 0;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 0 || len > 31 || *n == max)
            return false;
        memcpy(dst[*n], s, len);
        dst[*n][len] = '\0';
        (*n)++;
        s = end ? end + 1 : s + len;
    }
    return *n > 0;
}

static void copy_text(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= 2 && src[0] == '"' && src[n - 1] == '"') {
        src++;
        n -= 2;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

char *scn_word(char **s)
{
    char *w = *s, *p = w;
    while (*p && !isspace((unsigned char)*p))
        p++;
    if (*p)
        *p++ = '\0';
    while (isspace((unsigned char)*p))
        p++;
    *s = p;
    return w;
}

bool scn_set_path(char *dst, const char *arg)
{
    size_t len = strlen(arg);
    if (len == 0 || len >= SCN_PATH_MAX)
        return false;
    for (size_t k = 0; k < len; k++)
        if (isspace((unsigned char)arg[k]))
            return false;
    memcpy(dst, arg, len + 1);
    return true;
}

/* A manifest path: one word, shorter than SCN_PATH_MAX. */
static bool set_path(scn_manifest_t *m, const char *arg, int lineno)
{
    if (!scn_set_path(m->path, arg))
        return false;
    m->line = lineno;
    return true;
}

/*
 * A disk's description, the words after `disk` or `peer-disk PEER`: IMAGE | zero size=SIZE |
 * ext2 size=SIZE [from=DIR]. 0, or -1 with err (what names the directive).
 */
static int parse_disk(scn_disk_t *d, const char *what, char *arg, int lineno, char *err,
                      size_t errlen)
{
    char *rest = arg;
    while (*rest && !isspace((unsigned char)*rest))
        rest++;
    if (*rest)
        *rest++ = '\0';
    while (isspace((unsigned char)*rest))
        rest++;
    bool made = strcmp(arg, "zero") == 0 || strcmp(arg, "ext2") == 0;
    if (made) {
        char *from = rest;
        while (*from && !isspace((unsigned char)*from))
            from++;
        if (*from)
            *from++ = '\0';
        while (isspace((unsigned char)*from))
            from++;
        if (strncmp(rest, "size=", 5) != 0 || !sim_parse_disk_size(rest + 5, &d->size)) {
            snprintf(err, errlen,
                     "%s %s needs size=SIZE (a multiple of 512 bytes up to 1G: 4M, 512K, "
                     "1048576)",
                     what, arg);
            return -1;
        }
        d->kind = arg[0] == 'z' ? SCN_DISK_ZERO : SCN_DISK_EXT2;
        if (*from) {
            scn_manifest_t m = {.line = 0};
            if (d->kind != SCN_DISK_EXT2 || strncmp(from, "from=", 5) != 0 ||
                !set_path(&m, from + 5, lineno)) {
                snprintf(err, errlen,
                         "%s %s size=SIZE takes only from=DIR (a folder, at most %d bytes, no "
                         "spaces; ext2 only)",
                         what, arg, SCN_PATH_MAX - 1);
                return -1;
            }
            memcpy(d->from, m.path, sizeof d->from);
        }
    } else {
        scn_manifest_t m = {.line = 0};
        if (*arg == '\0' || *rest || !set_path(&m, arg, lineno)) {
            snprintf(err, errlen,
                     "%s needs IMAGE (a file, at most %d bytes, no spaces), or zero|ext2 "
                     "size=SIZE",
                     what, SCN_PATH_MAX - 1);
            return -1;
        }
        memcpy(d->path, m.path, sizeof d->path);
        d->kind = SCN_DISK_FILE;
    }
    d->line = lineno;
    return 0;
}

static int parse_line(sim_scenario_t *sc, char *line, int lineno, uint64_t *last_at, char *err,
                      size_t errlen)
{
    char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(p);
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        p[--n] = '\0';
    if (*p == '\0' || *p == '#')
        return 0;
    char *key = p;
    while (*p && !isspace((unsigned char)*p))
        p++;
    if (*p)
        *p++ = '\0';
    while (isspace((unsigned char)*p))
        p++;
    char *arg = p;
    uint64_t v;

#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)
    if (strcmp(key, "at") == 0 || strcmp(key, "expect") == 0 || strcmp(key, "expect-not") == 0) {
        if (sc->nsteps == SCN_STEPS_MAX)
            BAD("too many steps (limit %d)", SCN_STEPS_MAX);
        scn_step_t *st = &sc->steps[sc->nsteps];
        memset(st, 0, sizeof(*st));
        st->line = lineno;
        if (key[0] == 'a') {
            char *cmd = arg;
            while (*cmd && !isspace((unsigned char)*cmd))
                cmd++;
            if (*cmd)
                *cmd++ = '\0';
            while (isspace((unsigned char)*cmd))
                cmd++;
            if (sc->cluster) {
                /* at TIME NODE COMMAND */
                char *who = scn_word(&cmd);
                if (!scn_find_node(sc, who, false, &st->node))
                    BAD("at needs TIME NODE COMMAND with a node declared above, not '%s'", who);
            }
            bool rel = arg[0] == '+';
            if (!sim_parse_duration(arg + rel, &v))
                BAD("bad time '%s' (try 100ms, +50ms, 1.5s)", arg);
            if (rel && v > UINT64_MAX / 2 - *last_at)
                BAD("time '%s' is too far in the future", arg);
            st->kind = SCN_AT;
            st->t = rel ? *last_at + v : v;
            *last_at = st->t;
            if (strlen(cmd) > SCN_TEXT_MAX)
                BAD("command longer than %d bytes", SCN_TEXT_MAX);
            copy_text(st->text, cmd);
        } else {
            if (sc->cluster) {
                /* expect NODE TEXT, expect-not NODE|* TEXT */
                char *who = scn_word(&arg);
                if (!scn_find_node(sc, who, key[6] == '-', &st->node))
                    BAD("%s needs NODE%s TEXT with a node declared above, not '%s'", key,
                        key[6] == '-' ? "|*" : "", who);
            }
            if (*arg == '\0')
                BAD("%s needs a text", key);
            if (strlen(arg) > SCN_TEXT_MAX)
                BAD("text longer than %d bytes", SCN_TEXT_MAX);
            st->kind = strcmp(key, "expect") == 0 ? SCN_EXPECT : SCN_EXPECT_NOT;
            copy_text(st->text, arg);
        }
        sc->nsteps++;
    } else if (sc->cluster && (strcmp(key, "manifest") == 0 || strcmp(key, "disk") == 0 ||
                               strcmp(key, "peer") == 0 || strcmp(key, "peer-disk") == 0)) {
        BAD("%s is not for a cluster file: give the node its options (node NAME "
            "manifest=FILE disk=... addr=...)",
            key);
    } else if (strcmp(key, "name") == 0) {
        /* It names the files --keep-failing writes: no '/', no spaces. */
        size_t len = strlen(arg);
        bool word = len > 0 && len < sizeof(sc->name) && arg[0] != '.';
        for (size_t k = 0; word && k < len; k++)
            word = isalnum((unsigned char)arg[k]) || strchr("._-", arg[k]) != NULL;
        if (!word)
            BAD("name needs a word of letters, digits, '.', '_' and '-' (at most %zu bytes)",
                sizeof(sc->name) - 1);
        memcpy(sc->name, arg, len + 1);
    } else if (strcmp(key, "duration") == 0) {
        if (!sim_parse_duration(arg, &sc->duration_ns) || sc->duration_ns == 0)
            BAD("bad duration '%s'", arg);
    } else if (strcmp(key, "exit") == 0) {
        char *end;
        long s = strtol(arg, &end, 10);
        if (*arg == '\0' || *end || s < -1000000 || s > 1000000)
            BAD("exit needs a status number");
        sc->has_exit = true;
        sc->exit_status = (int)s;
    } else if (strcmp(key, "faults") == 0) {
        if (sim_faults_parse(arg, &sc->faults, err, errlen) != 0)
            return -1;
    } else if (strcmp(key, "kill") == 0) {
        if (!parse_names(arg, sc->fault_cfg.kill_allow, SIM_FAULT_ALLOW_MAX,
                         &sc->fault_cfg.nkill_allow))
            BAD("kill needs names separated by commas (at most %d, 31 bytes each)",
                SIM_FAULT_ALLOW_MAX);
    } else if (strcmp(key, "allow-panic") == 0) {
        if (!parse_names(arg, sc->allow_panic, SIM_FAULT_ALLOW_MAX, &sc->nallow_panic))
            BAD("allow-panic needs names separated by commas (at most %d, 31 bytes each)",
                SIM_FAULT_ALLOW_MAX);
    } else if (strcmp(key, "kills") == 0) {
        if (!scn_parse_number(arg, 0, SCN_KILLS_MAX, &v))
            BAD("kills needs a number 0..%d", SCN_KILLS_MAX);
        sc->fault_cfg.kills = (uint32_t)v;
    } else if (strcmp(key, "delay-rate") == 0) {
        if (!scn_parse_number(arg, 0, 100, &v))
            BAD("delay-rate is a percentage (0..100)");
        sc->fault_cfg.delay_pct = (uint32_t)v;
    } else if (strcmp(key, "max-handles") == 0) {
        if (!scn_parse_number(arg, 1, OS_HANDLES_MAX, &v))
            BAD("max-handles needs a number 1..%d", OS_HANDLES_MAX);
        sc->max_handles = (uint32_t)v;
    } else if (strcmp(key, "max-events") == 0) {
        if (!scn_parse_number(arg, 1, SCN_EVENTS_MAX, &v))
            BAD("max-events needs a number 1..%d", SCN_EVENTS_MAX);
        sc->max_events = v;
    } else if (strcmp(key, "host-crash") == 0) {
        char *how = arg;
        while (*how && !isspace((unsigned char)*how))
            how++;
        if (*how)
            *how++ = '\0';
        while (isspace((unsigned char)*how))
            how++;
        if (!scn_parse_number(arg, 0, UINT64_MAX, &sc->host_crash_seed))
            BAD("host-crash needs SEED abort|segv");
        if (strcmp(how, "abort") == 0)
            sc->host_crash = SCN_HOST_CRASH_ABORT;
        else if (strcmp(how, "segv") == 0)
            sc->host_crash = SCN_HOST_CRASH_SEGV;
        else
            BAD("host-crash needs SEED abort|segv");
    } else if (strcmp(key, "delay-max") == 0) {
        if (!sim_parse_duration(arg, &sc->fault_cfg.delay_max_ns))
            BAD("bad duration '%s'", arg);
    } else if (strcmp(key, "jitter-max") == 0) {
        if (!sim_parse_duration(arg, &sc->fault_cfg.jitter_max_ns))
            BAD("bad duration '%s'", arg);
    } else if (strcmp(key, "manifest") == 0) {
        if (sc->manifest.path[0])
            BAD("manifest given twice");
        if (!set_path(&sc->manifest, arg, lineno))
            BAD("manifest needs a file name (at most %d bytes, no spaces)", SCN_PATH_MAX - 1);
    } else if (strcmp(key, "net") == 0) {
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            BAD("net is on or off");
        sc->net = arg[1] == 'n';
    } else if (strcmp(key, "eof") == 0) {
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            BAD("eof is on or off");
        sc->console_eof = arg[1] == 'n';
    } else if (strcmp(key, "peer") == 0) {
        /* peer NAME manifest=FILE */
        char *rest = arg;
        while (*rest && !isspace((unsigned char)*rest))
            rest++;
        if (*rest)
            *rest++ = '\0';
        while (isspace((unsigned char)*rest))
            rest++;
        if (sc->npeers == SCN_PEERS_MAX)
            BAD("too many peers (limit %d)", SCN_PEERS_MAX);
        scn_peer_t *pe = &sc->peers[sc->npeers];
        size_t len = strlen(arg);
        bool word = len > 0 && len < sizeof(pe->name);
        for (size_t k = 0; word && k < len; k++)
            word = isalnum((unsigned char)arg[k]) || strchr("_-", arg[k]) != NULL;
        if (!word)
            BAD("peer needs a name of letters, digits, '_' and '-' (at most %zu bytes), then "
                "manifest=FILE",
                sizeof(pe->name) - 1);
        for (size_t k = 0; k < sc->npeers; k++)
            if (strcmp(sc->peers[k].name, arg) == 0)
                BAD("peer '%s' declared twice", arg);
        if (strncmp(rest, "manifest=", 9) != 0 || !set_path(&pe->manifest, rest + 9, lineno))
            BAD("peer %s needs manifest=FILE (at most %d bytes, no spaces)", arg, SCN_PATH_MAX - 1);
        memcpy(pe->name, arg, len + 1);
        sc->npeers++;
    } else if (strcmp(key, "partition") == 0 && !sc->cluster) {
        /* partition PEER START END|never */
        char *w[3] = {arg, NULL, NULL};
        for (int k = 1; k < 3; k++) {
            char *q = w[k - 1];
            while (*q && !isspace((unsigned char)*q))
                q++;
            if (*q)
                *q++ = '\0';
            while (isspace((unsigned char)*q))
                q++;
            w[k] = q;
        }
        if (sc->npartitions == SCN_PARTITIONS_MAX)
            BAD("too many partitions (limit %d)", SCN_PARTITIONS_MAX);
        scn_partition_t *pt = &sc->partitions[sc->npartitions];
        size_t k = 0;
        while (k < sc->npeers && strcmp(sc->peers[k].name, w[0]) != 0)
            k++;
        if (k == sc->npeers)
            BAD("partition needs a peer declared above, not '%s' (partition PEER START END)", w[0]);
        pt->peer = (uint32_t)k;
        pt->groups[0] = 1;
        pt->groups[1] = 1ull << (1 + k);
        pt->ngroups = 2;
        pt->end = UINT64_MAX;
        if (!sim_parse_duration(w[1], &pt->start) ||
            (strcmp(w[2], "never") != 0 && !sim_parse_duration(w[2], &pt->end)) ||
            pt->end <= pt->start)
            BAD("partition needs PEER START END (END after START, or 'never')");
        pt->line = lineno;
        sc->npartitions++;
    } else if (strcmp(key, "disk") == 0) {
        /* disk IMAGE | disk zero size=SIZE | disk ext2 size=SIZE [from=DIR] */
        if (sc->disk.kind != SCN_DISK_NONE)
            BAD("disk given twice (the node has one blk0)");
        if (parse_disk(&sc->disk, "disk", arg, lineno, err, errlen) != 0)
            return -1;
    } else if (strcmp(key, "kill-at") == 0) {
        /* kill-at TIME [PEER:]PROGRAM */
        char *prog = arg;
        while (*prog && !isspace((unsigned char)*prog))
            prog++;
        if (*prog)
            *prog++ = '\0';
        while (isspace((unsigned char)*prog))
            prog++;
        if (sc->nkill_at == SCN_KILL_AT_MAX)
            BAD("too many kill-at lines (limit %d)", SCN_KILL_AT_MAX);
        scn_kill_at_t *ka = &sc->kill_at[sc->nkill_at];
        if (!sim_parse_duration(arg, &ka->t))
            BAD("kill-at needs TIME [PEER:]PROGRAM, not time '%s'", arg);
        ka->node = 0;
        char *colon = strchr(prog, ':');
        if (colon && sc->cluster) {
            /* kill-at TIME NODE:PROGRAM */
            *colon = '\0';
            if (!scn_find_node(sc, prog, false, &ka->node))
                BAD("kill-at needs a node declared above, not '%s' (kill-at TIME NODE:PROGRAM)",
                    prog);
            prog = colon + 1;
        } else if (sc->cluster) {
            BAD("kill-at needs TIME NODE:PROGRAM in a cluster file");
        } else if (colon) {
            *colon = '\0';
            size_t k = 0;
            while (k < sc->npeers && strcmp(sc->peers[k].name, prog) != 0)
                k++;
            if (k == sc->npeers)
                BAD("kill-at needs a peer declared above, not '%s' (kill-at TIME PEER:PROGRAM)",
                    prog);
            ka->node = (uint32_t)(1 + k);
            prog = colon + 1;
        }
        size_t len = strlen(prog);
        bool word = len > 0 && len < sizeof(ka->program);
        for (size_t k = 0; word && k < len; k++)
            word = isalnum((unsigned char)prog[k]) || strchr("_-", prog[k]) != NULL;
        if (!word)
            BAD("kill-at needs a program name of at most %zu bytes (kill-at TIME [PEER:]PROGRAM)",
                sizeof(ka->program) - 1);
        memcpy(ka->program, prog, len + 1);
        ka->line = lineno;
        sc->nkill_at++;
    } else if (strcmp(key, "peer-disk") == 0) {
        /* peer-disk PEER IMAGE | zero size=SIZE | ext2 size=SIZE [from=DIR] */
        char *rest = arg;
        while (*rest && !isspace((unsigned char)*rest))
            rest++;
        if (*rest)
            *rest++ = '\0';
        while (isspace((unsigned char)*rest))
            rest++;
        size_t k = 0;
        while (k < sc->npeers && strcmp(sc->peers[k].name, arg) != 0)
            k++;
        if (k == sc->npeers)
            BAD("peer-disk needs a peer declared above, not '%s' (peer-disk PEER IMAGE|zero|ext2 "
                "...)",
                arg);
        if (sc->peers[k].disk.kind != SCN_DISK_NONE)
            BAD("peer-disk %s given twice (the node has one blk0)", arg);
        if (parse_disk(&sc->peers[k].disk, "peer-disk", rest, lineno, err, errlen) != 0)
            return -1;
    } else if (strcmp(key, "power-cut") == 0) {
        /* power-cut TIME|START..END [reboot] */
        char *rest = arg;
        while (*rest && !isspace((unsigned char)*rest))
            rest++;
        if (*rest)
            *rest++ = '\0';
        while (isspace((unsigned char)*rest))
            rest++;
        if (sc->ncuts == SCN_CUTS_MAX)
            BAD("too many power cuts (limit %d)", SCN_CUTS_MAX);
        scn_power_cut_t *pc = &sc->cuts[sc->ncuts];
        char *dots = strstr(arg, "..");
        if (dots)
            *dots = '\0';
        bool ok = sim_parse_duration(arg, &pc->start);
        pc->end = pc->start;
        if (ok && dots)
            ok = sim_parse_duration(dots + 2, &pc->end) && pc->end >= pc->start;
        if (!ok || (*rest && strcmp(rest, "reboot") != 0))
            BAD("power-cut needs TIME or START..END (END not before START), then optionally "
                "'reboot'");
        pc->reboot = *rest != '\0';
        pc->line = lineno;
        sc->ncuts++;
    } else if (strcmp(key, "net-latency") == 0) {
        if (!sim_parse_duration(arg, &sc->net_latency_ns) || sc->net_latency_ns == 0)
            BAD("bad duration '%s'", arg);
    } else if (strcmp(key, "net-delay-max") == 0) {
        if (!sim_parse_duration(arg, &sc->fault_cfg.net_delay_max_ns))
            BAD("bad duration '%s'", arg);
    } else if (strcmp(key, "blk-eio-rate") == 0 || strcmp(key, "blk-torn-rate") == 0 ||
               strcmp(key, "blk-lost-rate") == 0) {
        if (!scn_parse_number(arg, 0, 100, &v))
            BAD("%s is a percentage (0..100)", key);
        if (key[4] == 'e')
            sc->fault_cfg.blk_eio_pct = (uint32_t)v;
        else if (key[4] == 't')
            sc->fault_cfg.blk_torn_pct = (uint32_t)v;
        else
            sc->fault_cfg.blk_lost_pct = (uint32_t)v;
    } else if (strcmp(key, "blk-latency-max") == 0) {
        if (!sim_parse_duration(arg, &sc->fault_cfg.blk_latency_max_ns))
            BAD("bad duration '%s'", arg);
    } else if (strcmp(key, "net-loss-rate") == 0 || strcmp(key, "net-dup-rate") == 0 ||
               strcmp(key, "net-reorder-rate") == 0) {
        if (!scn_parse_number(arg, 0, 100, &v))
            BAD("%s is a percentage (0..100)", key);
        if (key[4] == 'l')
            sc->fault_cfg.net_loss_pct = (uint32_t)v;
        else if (key[4] == 'd')
            sc->fault_cfg.net_dup_pct = (uint32_t)v;
        else
            sc->fault_cfg.net_reorder_pct = (uint32_t)v;
    } else {
        int c = scn_parse_cluster_line(sc, key, arg, lineno, err, errlen);
        if (c < 0)
            return -1;
        if (c == 0)
            BAD("unknown key '%s'", key);
    }
#undef BAD
    return 0;
}

int sim_scenario_parse(const char *text, size_t len, sim_scenario_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "scenario");
    out->duration_ns = 10ull * 1000000000ull;
    sim_faults_defaults(&out->fault_cfg);
    out->steps = calloc(SCN_STEPS_MAX, sizeof(scn_step_t));
    if (!out->steps) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    /* A file with a `node` or `nodes` line is a cluster file: its other lines name nodes. */
    for (size_t i = 0; i < len; i++) {
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        size_t w = i;
        while (w < len && !isspace((unsigned char)text[w]))
            w++;
        if ((w - i == 4 && memcmp(text + i, "node", 4) == 0) ||
            (w - i == 5 && memcmp(text + i, "nodes", 5) == 0))
            out->cluster = true;
        while (i < len && text[i] != '\n')
            i++;
    }
    if (out->cluster && !(out->nodes = calloc(SCN_NODES_MAX, sizeof(scn_node_t)))) {
        snprintf(err, errlen, "out of memory");
        sim_scenario_free(out);
        return 1;
    }
    char line[SCN_LINE_MAX + 1];
    uint64_t last_at = 0;
    int lineno = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        lineno++;
        if (j - i > SCN_LINE_MAX) {
            snprintf(err, errlen, "line longer than %d bytes", SCN_LINE_MAX);
            sim_scenario_free(out);
            return lineno;
        }
        memcpy(line, text + i, j - i);
        line[j - i] = '\0';
        bool nul = memchr(line, '\0', j - i) != NULL;
        if (nul)
            snprintf(err, errlen, "NUL byte in the line");
        if (nul || parse_line(out, line, lineno, &last_at, err, errlen)) {
            sim_scenario_free(out);
            return lineno;
        }
        i = j + 1;
    }
    out->fault_cfg.duration_ns = out->duration_ns;
    return 0;
}

void sim_scenario_free(sim_scenario_t *sc)
{
    free(sc->steps);
    sc->steps = NULL;
    sc->nsteps = 0;
    free(sc->manifest.text);
    sc->manifest.text = NULL;
    sim_disk_free(sc->disk.image);
    sc->disk.image = NULL;
    for (size_t i = 0; sc->nodes && i < sc->nnodes; i++) {
        sim_disk_free(sc->nodes[i].disk.image);
        free(sc->nodes[i].manifest.text);
    }
    free(sc->nodes);
    sc->nodes = NULL;
    sc->nnodes = 0;
    for (size_t i = 0; i < sc->npeers; i++) {
        sim_disk_free(sc->peers[i].disk.image);
        sc->peers[i].disk.image = NULL;
        free(sc->peers[i].manifest.text);
        sc->peers[i].manifest.text = NULL;
    }
}
