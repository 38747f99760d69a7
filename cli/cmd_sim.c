/* cmd_sim.c — `orrery sim`: sweep a scenario over seeds in a child, sharded; keep failures. */
#define _GNU_SOURCE
#include "cmd_sim.h"
#include "opt.h"
#include "sim_keep.h"

#include <hl/hosted.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <k/kernel.h>
#include "commands.h"
#include <sim/blk.h>
#include <sim/runner.h>
#include <sim/scenario.h>

#include <trace/outpath.h>
#include <trace/pcap.h>

static const char sim_usage[] =
    "usage: orrery sim [SCENARIO] [--seed N | --seeds A..B] [--shard I/N] [--count N]\n"
    "                  [--faults LIST] [--check-determinism] [--keep-failing DIR]\n"
    "                  [--show-output] [--quiet] [--no-fork] [--pcap FILE]\n"
    "                  [--disk IMAGE] [--save-disk FILE | --save-disks DIR]\n"
    "\n"
    "Run a scenario (docs/simulation.md) on the deterministic platform once per seed and\n"
    "check its expectations and the built-in invariants (no panic that was not injected,\n"
    "every input line answered, init restarts within policy, no handle or memory leak).\n"
    "Without SCENARIO: the built-in one (boot, ps, echo, kill echo, restart, shutdown).\n"
    "\n"
    "  --seed N             run one seed (default: --seed 1)\n"
    "  --seeds A..B         run seeds A to B inclusive (0 <= A <= B <= 18446744073709551615)\n"
    "  --shard I/N          run only the seeds s with (s - A) % N == I (0 <= I < N), so N\n"
    "                       machines (CI matrix, Kubernetes indexed job, Slurm array) share\n"
    "                       one sweep\n"
    "  --count N            stop after the first N seeds (of this shard)\n"
    "  --faults LIST        faults to inject: kill, delay, jitter, net-loss, net-delay,\n"
    "                       net-reorder, net-dup, net-partition, blk-eio, blk-latency,\n"
    "                       blk-torn, blk-lost (or all, none); default: the ones the scenario\n"
    "                       allows (its 'faults' line)\n"
    "  --check-determinism  run every seed twice and compare trace hashes; report the first\n"
    "                       record that differs\n"
    "  --keep-failing DIR   keep each failing seed's trace in DIR (SQLite if the trace\n"
    "                       recorder is built in, else a text dump) and its console output;\n"
    "                       for a cluster file one trace of every node, and per node its\n"
    "                       console (NAME-seed-N.NODE.out), frames (.NODE.pcap) and disk\n"
    "                       (.NODE.img)\n"
    "  --show-output        print each run's console output\n"
    "  --quiet              no progress lines\n"
    "  --no-fork            run the seeds in this process: a crash of the simulator then ends\n"
    "                       the sweep (for a debugger or a core dump)\n"
    "  --pcap FILE          write every frame on the simulated switch to FILE (pcap,\n"
    "                       virtual-time stamps: the same seed gives the same bytes); one\n"
    "                       seed only, and a scenario with a network (net on, or a peer)\n"
    "  --disk IMAGE         the scenario's node gets blk0 on a copy of the image file IMAGE\n"
    "                       (read once; every seed starts on the same bytes), instead of the\n"
    "                       scenario's 'disk' line; IMAGE itself is never written\n"
    "  --save-disk FILE     write the disk to FILE when the run ends (after a power cut: what\n"
    "                       the cut left); one seed only; FILE must not exist or be a regular\n"
    "                       file (replaced whole)\n"
    "  --save-disks DIR     for every seed, write DIR/NAME-seed-N.img (the disk) and\n"
    "                       DIR/NAME-seed-N.out (the console output): what a checker such as\n"
    "                       e2fsck reads (docs/storage-sim.md)\n"
    "\n"
    "The seeds run in a child process: a fault in a task kills that task (as in 'orrery run'),\n"
    "and anything that kills the simulator itself is a FAIL line for that seed, then the sweep\n"
    "goes on. Exit status: 0 every seed passed, 1 a seed failed, 2 usage error. Each failing\n"
    "seed's line ends with the command that reproduces it.\n";

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the sweep ---------------------------------------------------------------------------- */

typedef struct sweep {
    const char *scenario_path; /* NULL: built-in */
    uint64_t first, last;      /* the range, inclusive */
    uint64_t shard, shards;    /* this shard's seeds: (s - first) % shards == shard */
    uint64_t limit;            /* --count (0: all) */
    uint32_t faults;
    bool faults_given, determinism, show_output, quiet, no_fork;
    const char *keep_dir;
    const char *pcap;       /* --pcap: the one seed's frames */
    const char *disk_path;  /* --disk: for the reproduce command */
    const char *save_disk;  /* --save-disk FILE (one seed) */
    const char *save_disks; /* --save-disks DIR */
} sweep_t;

/* The sweep's counts. When the seeds run in a child, this lives in memory shared with the
 * parent: the child updates it after each seed at no cost, and if the child dies, `seed` and
 * `running` tell the parent which seed killed it. */
typedef struct tally {
    uint64_t total, passed, failed, events, vtime, kills;
    uint64_t seed; /* the seed being run (or the last one run) */
    int running;   /* 1 while `seed` runs */
} tally_t;

#define TALLY_SET(t, field, v) __atomic_store_n(&(t)->field, (v), __ATOMIC_RELAXED)
#define TALLY_GET(t, field) __atomic_load_n(&(t)->field, __ATOMIC_RELAXED)
#define TALLY_ADD(t, field, v) TALLY_SET(t, field, TALLY_GET(t, field) + (v))

/* The shard's first seed, or false if it has none. Arithmetic, so any range starts at once. */
static bool first_seed(const sweep_t *sw, uint64_t *seed)
{
    if (sw->shard > sw->last - sw->first)
        return false;
    *seed = sw->first + sw->shard;
    return true;
}

/* The shard's seed after `seed`, or false at the end of the range (no overflow at 2^64 - 1). */
static bool next_seed(const sweep_t *sw, uint64_t *seed)
{
    if (sw->last - *seed < sw->shards)
        return false;
    *seed += sw->shards;
    return true;
}

/* How many seeds the shard holds, saturated at UINT64_MAX (a whole 2^64 range). */
static uint64_t shard_count(const sweep_t *sw)
{
    if (sw->shard > sw->last - sw->first)
        return 0;
    uint64_t n = (sw->last - sw->first - sw->shard) / sw->shards;
    n = n == UINT64_MAX ? UINT64_MAX : n + 1;
    return sw->limit && sw->limit < n ? sw->limit : n;
}

static bool limit_reached(const sweep_t *sw, const tally_t *t)
{
    return sw->limit && TALLY_GET(t, total) >= sw->limit;
}

static void repro_command(const sweep_t *sw, uint64_t seed, uint32_t faults, char *buf, size_t len)
{
    char exe[2048], fl[128];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        snprintf(exe, sizeof exe, "orrery");
    else
        exe[n] = '\0';
    snprintf(buf, len, "%s sim%s%s --seed %llu --faults %s%s%s%s", exe,
             sw->scenario_path ? " " : "", sw->scenario_path ? sw->scenario_path : "",
             (unsigned long long)seed, sim_faults_format(faults, fl, sizeof fl),
             sw->determinism ? " --check-determinism" : "", sw->disk_path ? " --disk " : "",
             sw->disk_path ? sw->disk_path : "");
}

/* Run the second run of --check-determinism and name the first record that differs. */
static void check_determinism(const sim_scenario_t *sc, uint64_t seed, const sim_run_opts_t *o,
                              sim_result_t *r)
{
    sim_run_opts_t o2 = *o;
    sim_result_t r2;
    o2.keep_output = false;
    o2.frame_tap = NULL; /* --pcap holds the first run's frames */
    o2.save_disk = NULL; /* the first run's disk is the one kept */
    int rc = sim_run_scenario(sc, seed, &o2, &r2);
    long d = rc == 0 ? sim_first_difference(r, &r2) : -2;
    if (d == -2) {
        snprintf(r->failure, sizeof r->failure, "second run could not run: %s", os_strerror(rc));
        r->ok = false;
    } else if (d >= 0) {
        char a[96] = "(end of trace)", b[96] = "(end of trace)";
        if ((size_t)d < r->nrecs)
            snprintf(a, sizeof a, "seq %llu %s task %u", (unsigned long long)r->recs[d].seq,
                     k_trace_kind_name(r->recs[d].kind), r->recs[d].task);
        if ((size_t)d < r2.nrecs)
            snprintf(b, sizeof b, "seq %llu %s task %u", (unsigned long long)r2.recs[d].seq,
                     k_trace_kind_name(r2.recs[d].kind), r2.recs[d].task);
        snprintf(r->failure, sizeof r->failure,
                 "not deterministic: hashes %016llx and %016llx; first difference at "
                 "record %ld: %s vs %s",
                 (unsigned long long)r->hash, (unsigned long long)r2.hash, d + 1, a, b);
        r->ok = false;
    }
    if (rc == 0)
        sim_result_free(&r2);
}

static void pcap_tap(void *self, uint64_t t_ns, uint32_t from, const void *frame, size_t len)
{
    (void)from;
    trace_pcap_write(self, t_ns, frame, len);
}

/* The disk's counters and the power cuts of a run, for --show-output. */
static void show_disk(const sim_result_t *r)
{
    const sim_blk_stats_t *b = &r->blk;
    if (r->disk)
        printf("blk: %llu read(s), %llu write(s), %llu flush(es), %llu refused; eio %llu, torn "
               "%llu, lost %llu; %llu sector(s) landed early\n",
               (unsigned long long)b->reads, (unsigned long long)b->writes,
               (unsigned long long)b->flushes, (unsigned long long)b->invalid,
               (unsigned long long)b->eio, (unsigned long long)b->torn, (unsigned long long)b->lost,
               (unsigned long long)b->early);
    for (size_t i = 0; i < r->ncuts; i++)
        printf("power cut %zu due at %.6f s%s\n", i + 1, (double)r->cut_ns[i] / 1e9,
               i < b->power_cuts ? "" : " (never came)");
    if (b->power_cuts && r->disk)
        printf("power cuts: %llu unflushed sector(s) kept, %llu lost, %llu completion(s) "
               "dropped\n",
               (unsigned long long)b->cut_kept_sectors, (unsigned long long)b->cut_lost_sectors,
               (unsigned long long)b->dropped);
}

/* One seed: run it (twice with --check-determinism), print its FAIL lines, count it. */
static void run_seed(const sweep_t *sw, const sim_scenario_t *sc, uint64_t seed, tally_t *t)
{
    sim_run_opts_t o = {.faults = sw->faults,
                        .keep_records = sw->determinism,
                        .keep_output = sw->show_output || sw->save_disks,
                        .save_disk = sw->save_disk};
    sim_result_t r;
    char dpath[4200];
    hl_sim_keep_t sd = {.sc = sc, .dir = sw->save_disks, .seed = seed};
    if (sw->save_disks && sc->cluster) {
        /* every node's disk: DIR/NAME-seed-N.NODE.img */
        o.node_disk = hl_sim_keep_disk;
        o.node_disk_self = &sd;
    } else if (sw->save_disks) {
        hl_sim_keep_path(dpath, sizeof dpath, sw->save_disks, sc, seed, ".img");
        o.save_disk = dpath;
    }
    trace_pcap *pcap = NULL;
    char perr[512];
    if (sw->pcap) {
        /* checked before the sweep started; a failure here (disk full) is this seed's */
        if (trace_pcap_open(sw->pcap, &pcap, perr, sizeof perr) != 0)
            fprintf(stderr, "orrery: sim: --pcap: %s\n", perr);
        o.frame_tap = pcap ? pcap_tap : NULL;
        o.frame_tap_self = pcap;
    }
    int rc = sim_run_scenario(sc, seed, &o, &r);
    if (pcap) {
        uint64_t frames = trace_pcap_frames(pcap);
        if (trace_pcap_close(pcap, perr, sizeof perr) != 0)
            fprintf(stderr, "orrery: sim: --pcap: %s\n", perr);
        else if (!sw->quiet)
            fprintf(stderr, "sim: %llu frame(s) written to %s\n", (unsigned long long)frames,
                    sw->pcap);
    }
    if (rc != 0) {
        memset(&r, 0, sizeof r);
        snprintf(r.failure, sizeof r.failure, "could not run: %s", os_strerror(rc));
    } else {
        if (sw->show_output && r.output && sc->cluster)
            printf("---- seed %llu node %s ----\n%s\n", (unsigned long long)seed,
                   sim_scenario_node_name(sc, 0), r.output);
        else if (sw->show_output && r.output)
            printf("---- seed %llu ----\n%s\n", (unsigned long long)seed, r.output);
        for (size_t n = 1; sw->show_output && n < r.nnodes && n < SIM_RUN_NODES_MAX; n++)
            if (sc->cluster && r.node_output[n])
                printf("---- seed %llu node %s ----\n%s\n", (unsigned long long)seed,
                       sim_scenario_node_name(sc, n), r.node_output[n]);
        for (size_t i = 0; sw->show_output && i < r.ncrashes; i++)
            printf("crash %zu (scenario line %d) due at %.6f s\n", i + 1, sc->crashes[i].line,
                   (double)r.crash_ns[i] / 1e9);
        if (sw->show_output)
            show_disk(&r);
        for (size_t n = 0; sw->save_disks && sc->cluster && n < r.nnodes; n++) {
            char opath[4200], ext[64];
            const char *out = n == 0 ? r.output : r.node_output[n];
            snprintf(ext, sizeof ext, ".%s.out", sim_scenario_node_name(sc, n));
            hl_sim_keep_path(opath, sizeof opath, sw->save_disks, sc, seed, ext);
            if (out &&
                hl_sim_save_file(opath, out, n == 0 ? r.output_len : r.node_output_len[n]) != 0 &&
                r.ok) {
                r.ok = false;
                snprintf(r.failure, sizeof r.failure, "cannot save the console output to %.400s",
                         opath);
            }
        }
        if (sw->save_disks && r.output && !sc->cluster) {
            char opath[4200];
            hl_sim_keep_path(opath, sizeof opath, sw->save_disks, sc, seed, ".out");
            if (hl_sim_save_file(opath, r.output, r.output_len) != 0 && r.ok) {
                r.ok = false;
                snprintf(r.failure, sizeof r.failure, "cannot save the console output to %.400s",
                         opath);
            }
        }
        if (sw->show_output && r.net.sent)
            printf("net: %llu frame(s) sent, %llu delivered; lost %llu, cut %llu, duplicated %llu, "
                   "reordered %llu, overflow %llu, unknown %llu, queue full %llu, down %llu\n",
                   (unsigned long long)r.net.sent, (unsigned long long)r.net.delivered,
                   (unsigned long long)r.net.lost, (unsigned long long)r.net.cut,
                   (unsigned long long)r.net.duplicated, (unsigned long long)r.net.reordered,
                   (unsigned long long)r.net.overflow, (unsigned long long)r.net.unknown,
                   (unsigned long long)r.net.queue_full, (unsigned long long)r.net.down);
        if (sw->determinism)
            check_determinism(sc, seed, &o, &r);
    }
    bool ok = r.ok;
    if (!ok) {
        char cmd[4096];
        repro_command(sw, seed, sw->faults, cmd, sizeof cmd);
        printf("FAIL %s seed %llu: %s\n", sc->name, (unsigned long long)seed, r.failure);
        if (r.injected.kills)
            printf("  injected: %u kill(s), last %s; %u delayed message(s)\n", r.injected.kills,
                   r.injected.last_kill, r.injected.delayed);
        printf("  reproduce: %s\n", cmd);
        fflush(stdout); /* before anything later can crash the process and lose it */
        if (sw->keep_dir)
            hl_sim_keep_failing(sw->keep_dir, sc, seed, sw->faults, cmd);
    } else if (sw->show_output) {
        fflush(stdout);
    }
    /* Counted last: if the process dies before this, the parent counts the seed instead. */
    TALLY_ADD(t, events, r.events);
    TALLY_ADD(t, vtime, r.vtime_ns);
    TALLY_ADD(t, kills, r.injected.kills);
    TALLY_ADD(t, passed, ok ? 1 : 0);
    TALLY_ADD(t, failed, ok ? 0 : 1);
    sim_result_free(&r);
    TALLY_ADD(t, total, 1);
}

/* Run the shard's seeds from `seed` on, in this process. */
static void run_seeds(const sweep_t *sw, const sim_scenario_t *sc, uint64_t seed, tally_t *t,
                      bool progress)
{
    double t0 = wall_now(), last_progress = t0;
    uint64_t count = shard_count(sw);
    hl_fault_thread_enter(0, true); /* a task's fault kills the task, as in `run` */
    do {
        if (limit_reached(sw, t))
            break;
        TALLY_SET(t, seed, seed);
        TALLY_SET(t, running, 1);
        run_seed(sw, sc, seed, t);
        TALLY_SET(t, running, 0);
        double now;
        if (progress && (now = wall_now()) - last_progress >= 2.0) {
            fprintf(stderr, "sim: %llu/%llu seeds, %llu failed, %.0f seeds/s\n",
                    (unsigned long long)t->total, (unsigned long long)count,
                    (unsigned long long)t->failed, (double)t->total / (now - t0));
            last_progress = now;
        }
    } while (next_seed(sw, &seed));
    hl_fault_thread_leave();
}

static void describe_death(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else if (WIFEXITED(status))
        snprintf(buf, len,
                 "exited with status %d before the end of the run (a sanitizer's "
                 "report on stderr?)",
                 WEXITSTATUS(status));
    else
        snprintf(buf, len, "ended with wait status %#x", (unsigned)status);
}

/*
 * Run the shard's seeds in a child process that shares `t` with us. The child runs seed
 * after seed with no per-seed cost; it prints its own FAIL lines (flushed). If it dies, the
 * seed it was running is a FAIL line printed here, and a new child takes the next seed.
 * A pipe that only the child holds open tells us, by its end of file, that the child is
 * gone; while it runs, we print the progress lines.
 */
static int run_forked(const sweep_t *sw, const sim_scenario_t *sc, tally_t *t)
{
    uint64_t seed, count = shard_count(sw);
    double t0 = wall_now();
    if (!first_seed(sw, &seed))
        return 0;
    while (!limit_reached(sw, t)) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            fprintf(stderr, "orrery: sim: pipe: %s\n", strerror(errno));
            return -1;
        }
        fflush(stdout);
        fflush(stderr);
        uint64_t total_before = TALLY_GET(t, total);
        pid_t parent = getpid(), pid = fork();
        if (pid < 0) {
            fprintf(stderr, "orrery: sim: fork: %s\n", strerror(errno));
            close(p[0]);
            close(p[1]);
            return -1;
        }
        if (pid == 0) {
            close(p[0]);
            /* Die with the sweep: a CI job that kills `orrery sim` must not leave us running. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            run_seeds(sw, sc, seed, t, false);
            fflush(stdout);
            exit(0);
        }
        close(p[1]);
        for (;;) {
            struct pollfd pfd = {.fd = p[0], .events = POLLIN};
            int n = poll(&pfd, 1, 2000);
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0) {
                char c;
                if (read(p[0], &c, 1) <= 0)
                    break; /* end of file: the child is gone */
                continue;
            }
            if (n == 0 && !sw->quiet) {
                uint64_t done = TALLY_GET(t, total);
                fprintf(stderr, "sim: %llu/%llu seeds, %llu failed, %.0f seeds/s\n",
                        (unsigned long long)done, (unsigned long long)count,
                        (unsigned long long)TALLY_GET(t, failed), (double)done / (wall_now() - t0));
            }
            if (n < 0)
                break;
        }
        close(p[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        bool running = TALLY_GET(t, running);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !running)
            return 0; /* the child ran every seed */
        char why[160], cmd[4096];
        describe_death(status, why, sizeof why);
        seed = TALLY_GET(t, seed);
        if (!running && TALLY_GET(t, total) == total_before) {
            fprintf(stderr, "orrery: sim: the simulator %s before its first seed\n", why);
            return -1;
        } else if (!running) {
            /* It died between seeds (at exit: a sanitizer's leak report?). */
            fprintf(stderr, "orrery: sim: the simulator %s after seed %llu\n", why,
                    (unsigned long long)seed);
            TALLY_ADD(t, failed, 1);
        } else {
            TALLY_SET(t, running, 0);
            TALLY_ADD(t, failed, 1);
            TALLY_ADD(t, total, 1);
            repro_command(sw, seed, sw->faults, cmd, sizeof cmd);
            printf("FAIL %s seed %llu: the simulator %s\n", sc->name, (unsigned long long)seed,
                   why);
            printf("  reproduce: %s\n", cmd);
            printf("  (add --no-fork to let it crash in one process, e.g. under gdb)\n");
            fflush(stdout);
            if (sw->keep_dir)
                hl_sim_keep_crashed(sw->keep_dir, sc, seed, sw->faults);
        }
        if (!next_seed(sw, &seed))
            return 0;
    }
    return 0;
}

static int sweep_run(const sweep_t *sw, const sim_scenario_t *sc)
{
    double t0 = wall_now();
    tally_t local, *t = &local;
    memset(&local, 0, sizeof local);
    int rc = 0;
    if (sw->no_fork) {
        uint64_t seed;
        if (first_seed(sw, &seed))
            run_seeds(sw, sc, seed, t, !sw->quiet);
    } else {
        t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (t == MAP_FAILED) {
            fprintf(stderr, "orrery: sim: mmap: %s\n", strerror(errno));
            return 1;
        }
        memset(t, 0, sizeof *t);
        rc = run_forked(sw, sc, t);
    }
    double wall = wall_now() - t0;
    char fl[128];
    printf("sim: %s: %llu seed(s) (%llu..%llu", sc->name, (unsigned long long)t->total,
           (unsigned long long)sw->first, (unsigned long long)sw->last);
    if (sw->shards > 1)
        printf(", shard %llu/%llu", (unsigned long long)sw->shard, (unsigned long long)sw->shards);
    printf("), %llu passed, %llu failed; faults %s (%llu kill(s) injected)%s; %.2f s wall, "
           "%.1f s virtual, %llu events\n",
           (unsigned long long)t->passed, (unsigned long long)t->failed,
           sim_faults_format(sw->faults, fl, sizeof fl), (unsigned long long)t->kills,
           sw->determinism ? ", each seed run twice: deterministic" : "", wall,
           (double)t->vtime / 1e9, (unsigned long long)t->events);
    if (t->failed && sw->determinism)
        printf("sim: (a 'not deterministic' failure means host state leaked into the run)\n");
    bool failed = t->failed != 0;
    if (t != &local)
        munmap(t, sizeof *t);
    return rc != 0 || failed ? 1 : 0;
}

/* "A..B" or "I/N" -> two numbers; false if malformed. */
static bool parse_pair(const char *v, const char *sep, uint64_t *a, uint64_t *b)
{
    const char *at = strstr(v, sep);
    char lo[32];
    if (!at || (size_t)(at - v) >= sizeof lo)
        return false;
    memcpy(lo, v, (size_t)(at - v));
    lo[at - v] = '\0';
    return cli_parse_u64(lo, 0, UINT64_MAX, a) && cli_parse_u64(at + strlen(sep), 0, UINT64_MAX, b);
}

int hl_cmd_sim(int argc, char **argv)
{
    enum {
        OPT_SEED = 256,
        OPT_SEEDS,
        OPT_SHARD,
        OPT_COUNT,
        OPT_FAULTS,
        OPT_DET,
        OPT_KEEP,
        OPT_SHOW,
        OPT_NOFORK,
        OPT_PCAP,
        OPT_DISK,
        OPT_SAVE_DISK,
        OPT_SAVE_DISKS
    };
    static const struct option opts[] = {
        {"seed", required_argument, NULL, OPT_SEED},
        {"seeds", required_argument, NULL, OPT_SEEDS},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"count", required_argument, NULL, OPT_COUNT},
        {"faults", required_argument, NULL, OPT_FAULTS},
        {"check-determinism", no_argument, NULL, OPT_DET},
        {"keep-failing", required_argument, NULL, OPT_KEEP},
        {"show-output", no_argument, NULL, OPT_SHOW},
        {"quiet", no_argument, NULL, 'q'},
        {"no-fork", no_argument, NULL, OPT_NOFORK},
        {"pcap", required_argument, NULL, OPT_PCAP},
        {"disk", required_argument, NULL, OPT_DISK},
        {"save-disk", required_argument, NULL, OPT_SAVE_DISK},
        {"save-disks", required_argument, NULL, OPT_SAVE_DISKS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sweep_t sw = {.first = 1, .last = 1, .shard = 0, .shards = 1};
    bool seed_given = false;
    char err[256];
    int c;
    while ((c = cli_getopt(argc, argv, "sim", opts)) != -1) {
        const char *v = optarg;
        switch (c) {
        case 'h':
            fputs(sim_usage, stdout);
            return 0;
        case OPT_SEED:
            if (seed_given || !cli_parse_u64(v, 0, UINT64_MAX, &sw.first))
                return cli_usage_error("sim", "sim: --seed needs one number 0..%llu, got '%s'",
                                       (unsigned long long)UINT64_MAX, v);
            sw.last = sw.first;
            seed_given = true;
            break;
        case OPT_SEEDS:
            if (seed_given || !parse_pair(v, "..", &sw.first, &sw.last) || sw.last < sw.first)
                return cli_usage_error("sim",
                                       "sim: --seeds needs A..B with 0 <= A <= B <= %llu, "
                                       "got '%s'",
                                       (unsigned long long)UINT64_MAX, v);
            seed_given = true;
            break;
        case OPT_SHARD:
            if (!parse_pair(v, "/", &sw.shard, &sw.shards) || sw.shards == 0 ||
                sw.shard >= sw.shards)
                return cli_usage_error("sim", "sim: --shard needs I/N with 0 <= I < N, got '%s'",
                                       v);
            break;
        case OPT_COUNT:
            if (!cli_parse_u64(v, 1, UINT64_MAX, &sw.limit))
                return cli_usage_error("sim", "sim: --count needs a number >= 1, got '%s'", v);
            break;
        case OPT_FAULTS:
            if (sim_faults_parse(v, &sw.faults, err, sizeof err) != 0)
                return cli_usage_error("sim", "sim: --faults: %s (kill,delay,jitter, all, none)",
                                       err);
            sw.faults_given = true;
            break;
        case OPT_DET:
            sw.determinism = true;
            break;
        case OPT_KEEP:
            if (!*v)
                return cli_usage_error("sim", "sim: --keep-failing needs a directory");
            sw.keep_dir = v;
            break;
        case OPT_SHOW:
            sw.show_output = true;
            break;
        case 'q':
            sw.quiet = true;
            break;
        case OPT_NOFORK:
            sw.no_fork = true;
            break;
        case OPT_PCAP:
            if (!*v || strcmp(v, "-") == 0)
                return cli_usage_error("sim", "sim: --pcap needs a file name (stdout carries the "
                                              "sweep's report)");
            sw.pcap = v;
            break;
        case OPT_DISK:
            if (!*v || sw.disk_path)
                return cli_usage_error("sim", "sim: --disk needs one image file%s",
                                       sw.disk_path ? " (given twice: the node has one blk0)" : "");
            sw.disk_path = v;
            break;
        case OPT_SAVE_DISK:
        case OPT_SAVE_DISKS:
            if (!*v || strcmp(v, "-") == 0 || sw.save_disk || sw.save_disks)
                return cli_usage_error("sim",
                                       "sim: %s needs a %s (once; not both --save-disk and "
                                       "--save-disks)",
                                       c == OPT_SAVE_DISK ? "--save-disk" : "--save-disks",
                                       c == OPT_SAVE_DISK ? "file name" : "directory");
            if (c == OPT_SAVE_DISK)
                sw.save_disk = v;
            else
                sw.save_disks = v;
            break;
        default:
            return 2; /* cli_getopt said why */
        }
    }
    if (optind < argc)
        sw.scenario_path = argv[optind++];
    if (optind < argc)
        return cli_usage_error("sim", "sim: unexpected argument '%s'", argv[optind]);

    sim_scenario_t sc;
    size_t len = 0;
    char *text = NULL;
    if (sw.scenario_path) {
        text = cli_read_file(sw.scenario_path, SCN_FILE_MAX, &len);
        if (!text)
            return 2; /* cli_read_file said why, naming the file */
    }
    int line = text ? sim_scenario_parse(text, len, &sc, err, sizeof err)
                    : sim_scenario_parse(sim_default_scenario, strlen(sim_default_scenario), &sc,
                                         err, sizeof err);
    free(text);
    if (line == 0 && sw.disk_path) {
        /* --disk replaces the scenario's disk: sim_scenario_load then makes none */
        scn_disk_t *d0 = sim_scenario_node_disk(&sc, 0);
        sim_disk_free(d0->image);
        d0->image = sim_disk_open(sw.disk_path, err, sizeof err);
        if (!d0->image) {
            sim_scenario_free(&sc);
            return cli_usage_error("sim", "sim: --disk %s", err);
        }
    }
    if (line == 0 && sw.scenario_path) {
        /* the manifests it names, relative to the scenario's folder */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", sw.scenario_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            dir[0] = '\0';
        line = sim_scenario_load(&sc, dir, err, sizeof err);
        if (line != 0)
            sim_scenario_free(&sc);
    }
    if (line != 0) {
        fprintf(stderr, "orrery: sim: %s:%d: %s\n", sw.scenario_path ? sw.scenario_path : "default",
                line, err);
        return 2;
    }
    if (!sw.faults_given)
        sw.faults = sc.faults;
    bool some_disk = sim_scenario_node_disk(&sc, 0)->image != NULL;
    for (size_t n = 1; sc.cluster && sw.save_disks && n < sim_scenario_node_count(&sc); n++)
        some_disk = some_disk || sim_scenario_node_disk(&sc, n)->image != NULL;
    if ((sw.save_disk || sw.save_disks) && !some_disk) {
        sim_scenario_free(&sc);
        return cli_usage_error("sim",
                               "sim: %s needs a disk (--disk IMAGE, or a 'disk' line in "
                               "the scenario)",
                               sw.save_disk ? "--save-disk" : "--save-disks");
    }
    if (sw.save_disk) {
        struct stat st;
        const char *why = !(sw.first == sw.last || sw.limit == 1)
                              ? "needs one seed (--seed N, or --count 1); --save-disks DIR "
                                "keeps every seed's"
                          : lstat(sw.save_disk, &st) == 0 && !S_ISREG(st.st_mode)
                              ? "exists and is not a regular file; not overwritten"
                              : NULL;
        if (why) {
            sim_scenario_free(&sc);
            return cli_usage_error("sim", "sim: --save-disk %s: %s", sw.save_disk, why);
        }
    }
    if (sw.save_disks) {
        struct stat st;
        if (mkdir(sw.save_disks, 0777) != 0 && errno != EEXIST) {
            sim_scenario_free(&sc);
            return cli_usage_error("sim", "sim: --save-disks %s: %s", sw.save_disks,
                                   strerror(errno));
        }
        if (stat(sw.save_disks, &st) != 0 || !S_ISDIR(st.st_mode)) {
            sim_scenario_free(&sc);
            return cli_usage_error("sim", "sim: --save-disks %s: not a directory", sw.save_disks);
        }
    }
    if (sw.pcap) {
        bool one = sw.first == sw.last || sw.limit == 1;
        bool net = sim_scenario_has_net(&sc);
        if (!one || !net) {
            sim_scenario_free(&sc);
            return cli_usage_error("sim", "sim: --pcap %s",
                                   !one ? "needs one seed (--seed N, or --count 1)"
                                        : "needs a scenario with a network ('net on' or a "
                                          "'peer' line, or several nodes)");
        }
        /* refuse a path that is not ours before anything runs */
        trace_pcap *probe = NULL;
        int prc = trace_pcap_open(sw.pcap, &probe, err, sizeof err);
        if (prc != 0) {
            sim_scenario_free(&sc);
            fprintf(stderr, "orrery: sim: --pcap: %s\n", err);
            return prc == TRACE_OUT_REFUSED ? 2 : 1;
        }
        trace_pcap_abort(probe);
    }
    int rc = sweep_run(&sw, &sc);
    sim_scenario_free(&sc);
    return rc;
}
