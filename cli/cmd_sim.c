/* cmd_sim.c — `orrery sim`: sweep a scenario over seeds (sharded), check determinism, keep failures. */
#include "cmd_sim.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <k/kernel.h>
#include <sim/bench.h>
#include <sim/runner.h>
#include <sim/scenario.h>

#include <trace/recorder.h>

static const char sim_usage[] =
    "usage: orrery sim [SCENARIO] [--seed N | --seeds A..B] [--shard I/N] [--faults LIST]\n"
    "                  [--check-determinism] [--keep-failing DIR] [--show-output] [--quiet]\n"
    "\n"
    "Run a scenario (docs/simulation.md) on the deterministic platform once per seed and\n"
    "check its expectations and the built-in invariants (no panic that was not injected,\n"
    "every input line answered, init restarts within policy, no handle or memory leak).\n"
    "Without SCENARIO: the built-in one (boot, ps, echo, kill echo, restart, shutdown).\n"
    "\n"
    "  --seed N             run one seed (default: --seed 1)\n"
    "  --seeds A..B         run seeds A to B inclusive\n"
    "  --shard I/N          run only the seeds s with (s - A) %% N == I (0 <= I < N), so N\n"
    "                       machines (CI matrix, Kubernetes indexed job, Slurm array) share\n"
    "                       one sweep\n"
    "  --faults LIST        faults to inject: kill,delay,jitter (or all, none); default: the\n"
    "                       ones the scenario allows (its 'faults' line)\n"
    "  --check-determinism  run every seed twice and compare trace hashes; report the first\n"
    "                       record that differs\n"
    "  --keep-failing DIR   keep each failing seed's trace in DIR (SQLite if the trace\n"
    "                       recorder is built in, else a text dump) and its console output\n"
    "  --show-output        print each run's console output\n"
    "  --quiet              no progress lines\n"
    "\n"
    "Exit status: 0 every seed passed, 1 a seed failed, 2 usage error. Each failing seed's\n"
    "line ends with the command that reproduces it.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("orrery: sim: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (try 'orrery sim --help')\n", stderr);
    return 2;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *p = realloc(buf, cap *= 2);
        if (!p) {
            free(buf);
            buf = NULL;
        }
        buf = p;
    }
    fclose(f);
    if (buf)
        *len = n;
    return buf;
}

/* ---- keeping a failing seed ---------------------------------------------------------------- */

/* Run the seed again with a recording sink and write its trace and output into dir. */
static void keep_failing(const char *dir, const sim_scenario_t *sc, uint64_t seed, uint32_t faults,
                         const char *command)
{
    char path[4096];
    mkdir(dir, 0777);
    sim_run_opts_t o = {.faults = faults, .keep_output = true};
    sim_result_t r;
    trace_recorder *rec = NULL;
    char err[256];
    snprintf(path, sizeof path, "%s/%s-seed-%llu.trace", dir, sc->name, (unsigned long long)seed);
    trace_run_info info = {.platform = "sim", .seed = seed, .workers = 1, .command = command};
    if (trace_recorder_open(path, &info, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "orrery: sim: cannot keep the trace: %s\n", err);
        return;
    }
    o.tee = trace_recorder_sink(rec);
    int rc = sim_run_scenario(sc, seed, &o, &r);
    trace_recorder_set_exit_status(rec, r.status);
    trace_recorder_close(rec, NULL, 0);
    if (rc == 0 && r.output) {
        char opath[4200];
        snprintf(opath, sizeof opath, "%s/%s-seed-%llu.out", dir, sc->name,
                 (unsigned long long)seed);
        FILE *f = fopen(opath, "w");
        if (f) {
            fwrite(r.output, 1, r.output_len, f);
            fclose(f);
        }
    }
    fprintf(stderr, "  kept: %s\n", path);
    sim_result_free(&r);
}

/* ---- the sweep ---------------------------------------------------------------------------- */

typedef struct sweep {
    const char *scenario_path; /* NULL: built-in */
    uint64_t first, last;
    uint64_t shard, shards;
    uint32_t faults;
    bool faults_given, determinism, show_output, quiet;
    const char *keep_dir;
} sweep_t;

static void repro_command(const sweep_t *sw, uint64_t seed, uint32_t faults, char *buf,
                          size_t len)
{
    char exe[2048], fl[128];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        snprintf(exe, sizeof exe, "orrery");
    else
        exe[n] = '\0';
    snprintf(buf, len, "%s sim%s%s --seed %llu --faults %s%s", exe, sw->scenario_path ? " " : "",
             sw->scenario_path ? sw->scenario_path : "", (unsigned long long)seed,
             sim_faults_format(faults, fl, sizeof fl), sw->determinism ? " --check-determinism" : "");
}

static int sweep_run(const sweep_t *sw, const sim_scenario_t *sc)
{
    uint64_t total = 0, passed = 0, failed = 0, events = 0, vtime = 0, kills = 0;
    double t0 = wall_now(), last_progress = t0;
    uint64_t count = 0;
    for (uint64_t s = sw->first; s <= sw->last; s++) {
        if ((s - sw->first) % sw->shards == sw->shard)
            count++;
        if (s == UINT64_MAX)
            break;
    }
    for (uint64_t seed = sw->first; seed <= sw->last; seed++) {
        if ((seed - sw->first) % sw->shards != sw->shard) {
            if (seed == UINT64_MAX)
                break;
            continue;
        }
        sim_run_opts_t o = {.faults = sw->faults, .keep_records = sw->determinism,
                            .keep_output = sw->show_output};
        sim_result_t r, r2;
        int rc = sim_run_scenario(sc, seed, &o, &r);
        if (rc != 0) {
            fprintf(stderr, "orrery: sim: seed %llu could not run: %s\n",
                    (unsigned long long)seed, os_strerror(rc));
            return 1;
        }
        if (sw->show_output && r.output)
            printf("---- seed %llu ----\n%s\n", (unsigned long long)seed, r.output);
        if (sw->determinism) {
            sim_run_opts_t o2 = o;
            o2.keep_output = false;
            rc = sim_run_scenario(sc, seed, &o2, &r2);
            long d = rc == 0 ? sim_first_difference(&r, &r2) : -2;
            if (d == -2) {
                snprintf(r.failure, sizeof r.failure, "second run could not run: %s",
                         os_strerror(rc));
                r.ok = false;
            } else if (d >= 0) {
                char a[96] = "(end of trace)", b[96] = "(end of trace)";
                if ((size_t)d < r.nrecs)
                    snprintf(a, sizeof a, "seq %llu %s task %u", (unsigned long long)r.recs[d].seq,
                             k_trace_kind_name(r.recs[d].kind), r.recs[d].task);
                if ((size_t)d < r2.nrecs)
                    snprintf(b, sizeof b, "seq %llu %s task %u",
                             (unsigned long long)r2.recs[d].seq,
                             k_trace_kind_name(r2.recs[d].kind), r2.recs[d].task);
                snprintf(r.failure, sizeof r.failure,
                         "not deterministic: hashes %016llx and %016llx; first difference at "
                         "record %ld: %s vs %s",
                         (unsigned long long)r.hash, (unsigned long long)r2.hash, d + 1, a, b);
                r.ok = false;
            }
            if (rc == 0)
                sim_result_free(&r2);
        }
        total++;
        events += r.events;
        vtime += r.vtime_ns;
        kills += r.injected.kills;
        if (r.ok) {
            passed++;
        } else {
            char cmd[4096];
            failed++;
            repro_command(sw, seed, sw->faults, cmd, sizeof cmd);
            printf("FAIL %s seed %llu: %s\n", sc->name, (unsigned long long)seed, r.failure);
            if (r.injected.kills)
                printf("  injected: %u kill(s), last %s; %u delayed message(s)\n", r.injected.kills,
                       r.injected.last_kill, r.injected.delayed);
            printf("  reproduce: %s\n", cmd);
            fflush(stdout);
            if (sw->keep_dir)
                keep_failing(sw->keep_dir, sc, seed, sw->faults, cmd);
        }
        sim_result_free(&r);
        double now = wall_now();
        if (!sw->quiet && now - last_progress >= 2.0) {
            fprintf(stderr, "sim: %llu/%llu seeds, %llu failed, %.0f seeds/s\n",
                    (unsigned long long)total, (unsigned long long)count,
                    (unsigned long long)failed, (double)total / (now - t0));
            last_progress = now;
        }
        if (seed == UINT64_MAX)
            break;
    }
    double wall = wall_now() - t0;
    char fl[128];
    printf("sim: %s: %llu seed(s) (%llu..%llu", sc->name, (unsigned long long)total,
           (unsigned long long)sw->first, (unsigned long long)sw->last);
    if (sw->shards > 1)
        printf(", shard %llu/%llu", (unsigned long long)sw->shard, (unsigned long long)sw->shards);
    printf("), %llu passed, %llu failed; faults %s (%llu kill(s) injected)%s; %.2f s wall, "
           "%.1f s virtual, %llu events\n",
           (unsigned long long)passed, (unsigned long long)failed,
           sim_faults_format(sw->faults, fl, sizeof fl), (unsigned long long)kills,
           sw->determinism ? ", each seed run twice: deterministic" : "", wall,
           (double)vtime / 1e9, (unsigned long long)events);
    if (failed && sw->determinism)
        printf("sim: (a 'not deterministic' failure means host state leaked into the run)\n");
    return failed ? 1 : 0;
}

int hl_cmd_sim(int argc, char **argv)
{
    sweep_t sw = {.first = 1, .last = 1, .shard = 0, .shards = 1};
    bool seed_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(sim_usage, stdout);
            return 0;
        } else if (strcmp(a, "--seed") == 0) {
            if (seed_given || !parse_u64(v, &sw.first))
                return usage_error("--seed needs one number%s", "");
            sw.last = sw.first;
            seed_given = true;
            i++;
        } else if (strcmp(a, "--seeds") == 0) {
            const char *dots = v ? strstr(v, "..") : NULL;
            char lo[32];
            if (seed_given || !dots || (size_t)(dots - v) >= sizeof lo)
                return usage_error("--seeds needs A..B (e.g. 1..100), got '%s'", v ? v : "");
            memcpy(lo, v, (size_t)(dots - v));
            lo[dots - v] = '\0';
            if (!parse_u64(lo, &sw.first) || !parse_u64(dots + 2, &sw.last) || sw.last < sw.first)
                return usage_error("--seeds needs A..B with A <= B, got '%s'", v);
            seed_given = true;
            i++;
        } else if (strcmp(a, "--shard") == 0) {
            const char *slash = v ? strchr(v, '/') : NULL;
            char lo[32];
            if (!slash || (size_t)(slash - v) >= sizeof lo)
                return usage_error("--shard needs I/N (0 <= I < N), got '%s'", v ? v : "");
            memcpy(lo, v, (size_t)(slash - v));
            lo[slash - v] = '\0';
            if (!parse_u64(lo, &sw.shard) || !parse_u64(slash + 1, &sw.shards) || sw.shards == 0 ||
                sw.shard >= sw.shards)
                return usage_error("--shard needs I/N with 0 <= I < N, got '%s'", v);
            i++;
        } else if (strcmp(a, "--faults") == 0) {
            char err[128];
            if (!v)
                return usage_error("--faults needs a list (kill,delay,jitter, all, none)%s", "");
            if (sim_faults_parse(v, &sw.faults, err, sizeof err) != 0)
                return usage_error("--faults: %s", err);
            sw.faults_given = true;
            i++;
        } else if (strcmp(a, "--check-determinism") == 0) {
            sw.determinism = true;
        } else if (strcmp(a, "--keep-failing") == 0) {
            if (!v)
                return usage_error("--keep-failing needs a directory%s", "");
            sw.keep_dir = v;
            i++;
        } else if (strcmp(a, "--show-output") == 0) {
            sw.show_output = true;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            sw.quiet = true;
        } else if (a[0] == '-') {
            return usage_error("unknown option '%s'", a);
        } else if (!sw.scenario_path) {
            sw.scenario_path = a;
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }

    sim_scenario_t sc;
    char err[256];
    size_t len = 0;
    char *text = NULL;
    if (sw.scenario_path) {
        text = read_file(sw.scenario_path, &len);
        if (!text) {
            fprintf(stderr, "orrery: sim: cannot read %s: %s\n", sw.scenario_path,
                    strerror(errno));
            return 2;
        }
    }
    int line = text ? sim_scenario_parse(text, len, &sc, err, sizeof err)
                    : sim_scenario_parse(sim_default_scenario, strlen(sim_default_scenario), &sc,
                                         err, sizeof err);
    free(text);
    if (line != 0) {
        fprintf(stderr, "orrery: sim: %s:%d: %s\n", sw.scenario_path ? sw.scenario_path : "default",
                line, err);
        return 2;
    }
    if (!sw.faults_given)
        sw.faults = sc.faults;
    int rc = sweep_run(&sw, &sc);
    sim_scenario_free(&sc);
    return rc;
}

/* ---- orrery bench sim ------------------------------------------------------------------- */

static const char bench_usage[] =
    "usage: orrery bench sim [--json] [--virtual SECONDS] [--msgs N]\n"
    "\n"
    "Measure the simulator on one core:\n"
    "  time compression  virtual seconds per wall second: 8 tasks with periodic 10 ms timers\n"
    "                    for --virtual seconds of virtual time (default 1000)\n"
    "  msgs/s            messages delivered per wall second: a ping-pong pair with 16\n"
    "                    messages in flight until --msgs were delivered (default 4000000)\n"
    "  --json            print {\"time_compression\": ..., \"msgs_per_s\": ..., ...}\n";

int hl_cmd_bench_sim(int argc, char **argv)
{
    bool json = false;
    uint64_t vsecs = 1000, msgs = 4000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(bench_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--virtual") == 0 && i + 1 < argc &&
                   parse_u64(argv[i + 1], &vsecs) && vsecs > 0 && vsecs < 1000000000) {
            i++;
        } else if (strcmp(argv[i], "--msgs") == 0 && i + 1 < argc &&
                   parse_u64(argv[i + 1], &msgs) && msgs >= 2) {
            i++;
        } else {
            fprintf(stderr, "orrery: bench sim: bad argument '%s' (try 'orrery bench sim --help')\n",
                    argv[i]);
            return 2;
        }
    }
    sim_bench_result_t r;
    memset(&r, 0, sizeof r);
    int rc = sim_bench_timers(8, 10000000, vsecs * 1000000000ull, &r);
    if (rc == 0)
        rc = sim_bench_msgs(msgs, 16, &r);
    if (rc != 0) {
        fprintf(stderr, "orrery: bench sim: %s\n", os_strerror(rc));
        return 1;
    }
    if (json) {
        printf("{\"time_compression\": %.0f, \"virtual_s\": %.1f, \"timer_wall_s\": %.4f, "
               "\"timer_events\": %llu, \"msgs_per_s\": %.0f, \"msgs\": %llu, \"msgs_wall_s\": "
               "%.4f}\n",
               r.time_compression, r.virtual_s, r.ticks_wall_s, (unsigned long long)r.ticks,
               r.msgs_per_s, (unsigned long long)r.msgs, r.msgs_wall_s);
    } else {
        printf("time compression: %.0fx (%.0f virtual s in %.3f wall s, %llu events, 8 periodic "
               "timers)\n",
               r.time_compression, r.virtual_s, r.ticks_wall_s, (unsigned long long)r.ticks);
        printf("messages: %.2fM msgs/s on one core (%llu delivered in %.3f s, ping-pong)\n",
               r.msgs_per_s / 1e6, (unsigned long long)r.msgs, r.msgs_wall_s);
    }
    return 0;
}
