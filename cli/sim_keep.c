/* sim_keep.c — what `orrery sim` keeps of a seed: a failing seed's trace, console output,
 * frames and disks (--keep-failing), every seed's disks and outputs (--save-disks). */
#define _GNU_SOURCE
#include "sim_keep.h"
#include "opt.h"

#include <hl/hosted.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <k/kernel.h>

void hl_sim_keep_path(char *buf, size_t len, const char *dir, const sim_scenario_t *sc,
                      uint64_t seed, const char *ext)
{
    snprintf(buf, len, "%s/%s-seed-%llu%s", dir, sc->name, (unsigned long long)seed, ext);
}

static void keep_names(void *self, const char *const *names, size_t n)
{
    hl_sim_keep_t *k = self;
    int rc = trace_recorder_set_nodes(k->rec, names, n);
    if (rc != 0)
        fprintf(stderr, "orrery: sim: the trace cannot name the nodes: %s\n", os_strerror(rc));
}

static void keep_record(void *self, uint32_t node, const hal_trace_rec_t *r)
{
    trace_recorder_record_node(((hl_sim_keep_t *)self)->rec, node, r);
}

static void keep_sent(void *self, uint64_t t_ns, uint32_t from, const void *frame, size_t len)
{
    hl_sim_keep_t *k = self;
    if (from < SIM_RUN_NODES_MAX && k->pcap[from])
        trace_pcap_write(k->pcap[from], t_ns, frame, len);
}

static void keep_received(void *self, uint64_t t_ns, uint32_t from, uint32_t to, const void *frame,
                          size_t len)
{
    hl_sim_keep_t *k = self;
    (void)from;
    if (to < SIM_RUN_NODES_MAX && k->pcap[to])
        trace_pcap_write(k->pcap[to], t_ns, frame, len);
}

void hl_sim_keep_disk(void *self, uint32_t node, sim_disk_t *disk)
{
    hl_sim_keep_t *k = self;
    char path[4200], ext[64], err[512];
    snprintf(ext, sizeof ext, ".%s.img", sim_scenario_node_name(k->sc, node));
    hl_sim_keep_path(path, sizeof path, k->dir, k->sc, k->seed, ext);
    if (sim_disk_save(disk, path, err, sizeof err) != 0)
        fprintf(stderr, "orrery: sim: cannot keep the disk of node %s: %s\n",
                sim_scenario_node_name(k->sc, node), err);
}

/* Run the seed again with a recording sink and write its trace and output into dir. */
void hl_sim_keep_failing(const char *dir, const sim_scenario_t *sc, uint64_t seed, uint32_t faults,
                         const char *command)
{
    char path[4096];
    mkdir(dir, 0777);
    sim_run_opts_t o = {.faults = faults, .keep_output = true};
    sim_result_t r;
    trace_recorder *rec = NULL;
    char err[256];
    hl_sim_keep_path(path, sizeof path, dir, sc, seed, ".trace");
    trace_run_info info = {.platform = "sim", .seed = seed, .workers = 1, .command = command};
    if (trace_recorder_open(path, &info, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "orrery: sim: cannot keep the trace: %s\n", err);
        return;
    }
    hl_sim_keep_t kn = {.rec = rec, .sc = sc, .dir = dir, .seed = seed};
    size_t nnodes = sim_scenario_node_count(sc);
    if (sc->cluster) {
        /* one trace of every node; per node its console, its frames and its disk */
        o.node_names = keep_names;
        o.tee_node = keep_record;
        o.tee_node_self = &kn;
        o.node_disk = hl_sim_keep_disk;
        o.node_disk_self = &kn;
        for (size_t n = 0; n < nnodes && sim_scenario_has_net(sc); n++) {
            char ppath[4200], ext[64];
            snprintf(ext, sizeof ext, ".%s.pcap", sim_scenario_node_name(sc, n));
            hl_sim_keep_path(ppath, sizeof ppath, dir, sc, seed, ext);
            if (trace_pcap_open(ppath, &kn.pcap[n], err, sizeof err) != 0)
                fprintf(stderr, "orrery: sim: cannot keep the frames: %s\n", err);
        }
        o.frame_tap = keep_sent;
        o.frame_tap_self = &kn;
        o.deliver_tap = keep_received;
        o.deliver_tap_self = &kn;
    } else {
        o.tee = trace_recorder_sink(rec);
    }
    int rc = sim_run_scenario(sc, seed, &o, &r);
    for (size_t n = 0; n < nnodes && n < SIM_RUN_NODES_MAX; n++)
        if (kn.pcap[n] && trace_pcap_close(kn.pcap[n], err, sizeof err) != 0)
            fprintf(stderr, "orrery: sim: %s\n", err);
    trace_recorder_set_exit_status(rec, r.status);
    int crc = trace_recorder_close(rec, err, sizeof err);
    if (crc != 0) {
        /* an incomplete trace stays at PATH.partial (docs/trace-format.md) */
        fprintf(stderr, "orrery: sim: %s\n", err);
        strncat(path, ".partial", sizeof path - strlen(path) - 1);
    }
    for (size_t n = 0; rc == 0 && sc->cluster && n < nnodes; n++) {
        char opath[4200], ext[64];
        snprintf(ext, sizeof ext, ".%s.out", sim_scenario_node_name(sc, n));
        hl_sim_keep_path(opath, sizeof opath, dir, sc, seed, ext);
        const char *out = n == 0 ? r.output : r.node_output[n];
        size_t len = n == 0 ? r.output_len : r.node_output_len[n];
        if (out)
            hl_sim_save_file(opath, out, len);
    }
    if (rc == 0 && r.output && !sc->cluster) {
        char opath[4200], tmp[4300];
        struct stat st;
        int fd;
        hl_sim_keep_path(opath, sizeof opath, dir, sc, seed, ".out");
        snprintf(tmp, sizeof tmp, "%s.XXXXXX", opath);
        /* Written under a fresh name and renamed: only an earlier output file is replaced. */
        if (lstat(opath, &st) == 0 && !S_ISREG(st.st_mode)) {
            fprintf(stderr, "orrery: sim: %s exists and is not a regular file; output not kept\n",
                    opath);
        } else if ((fd = mkstemp(tmp)) >= 0) {
            if (cli_write_all(fd, r.output, r.output_len) == 0 && close(fd) == 0)
                rename(tmp, opath);
            else
                unlink(tmp);
        }
    }
    fprintf(stderr, "  kept: %s\n", path);
    sim_result_free(&r);
}

/* A seed that kills the simulator keeps what was written before the crash: the console
 * output and one line per trace record, both written unbuffered as the run goes. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void stream_out(void *self, const void *buf, size_t len)
{
    write_all(*(int *)self, buf, len);
}

/* One record a line; a cluster file's lines start with the node's name. */
static void stream_line(int fd, const char *node, const hal_trace_rec_t *r)
{
    char line[320];
    const char *kind = k_trace_kind_name(r->kind);
    int n = snprintf(line, sizeof line,
                     "%s%s%llu %llu %s task=%u chan=%u peer=%u type=%u result=%d len=%u arg=%llu\n",
                     node, node[0] ? " " : "", (unsigned long long)r->seq,
                     (unsigned long long)r->time_ns, kind ? kind : "?", r->task, r->chan, r->peer,
                     r->type, (int)r->result, r->len, (unsigned long long)r->arg);
    if (n > 0)
        write_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void stream_record(void *self, const hal_trace_rec_t *r)
{
    stream_line(*(int *)self, "", r);
}

typedef struct stream_nodes {
    int fd;
    const sim_scenario_t *sc;
} stream_nodes_t;

static void stream_record_node(void *self, uint32_t node, const hal_trace_rec_t *r)
{
    stream_nodes_t *s = self;
    stream_line(s->fd, sim_scenario_node_name(s->sc, node), r);
}

void hl_sim_keep_crashed(const char *dir, const sim_scenario_t *sc, uint64_t seed, uint32_t faults)
{
    char tpath[4096], opath[4096];
    mkdir(dir, 0777);
    hl_sim_keep_path(tpath, sizeof tpath, dir, sc, seed, ".trace.txt");
    hl_sim_keep_path(opath, sizeof opath, dir, sc, seed, ".out");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int tfd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        int ofd = open(opath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (tfd < 0 || ofd < 0)
            _exit(1);
        hal_trace_sink_t sink = {.self = &tfd, .record = stream_record};
        stream_nodes_t sn = {.fd = tfd, .sc = sc};
        sim_run_opts_t o = {
            .faults = faults, .tee = &sink, .console_out = stream_out, .console_out_self = &ofd};
        if (sc->cluster) { /* every node's records, each line naming its node */
            o.tee = NULL;
            o.tee_node = stream_record_node;
            o.tee_node_self = &sn;
        }
        sim_result_t r;
        hl_fault_thread_enter(0, true);
        if (sim_run_scenario(sc, seed, &o, &r) == 0)
            sim_result_free(&r);
        _exit(0);
    }
    int st;
    if (pid > 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    fprintf(stderr, "  kept: %s and %s (up to the crash)\n", tpath, opath);
}

/* Write buf to path under a fresh name, then rename it over path (a regular file or none). */
int hl_sim_save_file(const char *path, const char *buf, size_t len)
{
    char tmp[4300];
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "orrery: sim: %s exists and is not a regular file; not overwritten\n",
                path);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "orrery: sim: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    if (cli_write_all(fd, buf, len) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "orrery: sim: %s: %s\n", path, strerror(errno));
        unlink(tmp); /* ours: made by mkstemp above */
        return -1;
    }
    return 0;
}
