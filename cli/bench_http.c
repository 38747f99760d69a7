/* bench_http.c — `orrery bench http`: requests per second and latency percentiles for a small
 * page with wrk, against Orrery hosted (slirp hostfwd), Orrery under QEMU microvm, and a private
 * nginx on the host's loopback serving the same file in the same run; and `orrery serve`'s
 * requests per second and boot time per request beside Starina's published figure. */
#define _GNU_SOURCE
#include "commands.h"
#include "bench_http.h"
#include "opt.h"
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starina's published vmcgi figure: 100 ms per request on a Raspberry Pi 5, of which 60 ms is
 * QEMU's start and 40 ms the OS's boot (https://seiya.me/blog/starina-vmcgi). */
#define STARINA_MS 100.0
#define STARINA_QEMU_MS 60.0
#define STARINA_OS_MS 40.0

typedef enum { ST_OFF, ST_MEASURED, ST_SKIPPED, ST_FAILED } state_t;
static const char *const st_names[] = {"off", "measured", "skipped", "failed"};

typedef struct row {
    const char *name;
    const char *what;
    state_t state;
    char why[REASON];
    const char *accel;
    size_t npoints;
    point_t pt[NPOINTS_MAX];
    /* serve rows */
    bool serve;
    double boot_med, boot_min, boot_max, req_med; /* ms; -1 none */
    unsigned boots;
} row_t;

enum { R_NGINX, R_HOSTED, R_TCG, R_KVM, R_SERVE_HOSTED, R_SERVE_TCG, NROWS };

/* ---- rows ----------------------------------------------------------------------------------- */

typedef struct bench {
    unsigned duration_s;
    unsigned conns[NPOINTS_MAX];
    size_t nconns;
    const char *self, *disk, *manifest;
    char disk_ro[4200];
    row_t rows[NROWS];
    bool want[NROWS];
} bench_t;

static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("orrery bench http: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void measure_points(bench_t *b, row_t *r, int port, child_t *c)
{
    r->state = ST_MEASURED;
    for (size_t i = 0; i < b->nconns; i++) {
        progress("%s: %u connection(s), %u s", r->name, b->conns[i], b->duration_s);
        if (bh_run_wrk(port, b->conns[i], b->duration_s, 10, c, &r->pt[r->npoints], r->why) != 0) {
            r->state = ST_FAILED;
            return;
        }
        r->npoints++;
    }
}

static void run_nginx(bench_t *b, row_t *r, const char *page, size_t page_len)
{
    static const char *const cands[] = {"/usr/sbin/nginx", "/usr/bin/nginx"};
    const char *nginx = NULL, *env = getenv("ORRERY_NGINX");
    for (size_t i = 0; i < 2 && !nginx && !env; i++)
        if (access(cands[i], X_OK) == 0)
            nginx = cands[i];
    if (env && env[0] && access(env, X_OK) == 0)
        nginx = env;
    if (!nginx) {
        r->state = ST_SKIPPED;
        bh_say(r->why, "no nginx%s%s (Debian package nginx-light; scripts/setup installs it)",
               env ? " at $ORRERY_NGINX " : "", env ? env : "");
        return;
    }
    char path[512], conf[4096];
    int port = bh_free_port();
    snprintf(path, sizeof(path), "%s/www", bh_tmpdir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/www/index.html", bh_tmpdir);
    FILE *f = fopen(path, "w");
    if (!f || fwrite(page, 1, page_len, f) != page_len || fclose(f) != 0) {
        r->state = ST_FAILED;
        bh_say(r->why, "%s: %s", path, strerror(errno));
        return;
    }
    snprintf(path, sizeof(path), "%s/tmp", bh_tmpdir);
    mkdir(path, 0700);
    /* A private nginx: its own prefix, config, pid and logs in our temp folder, one worker, in
     * the foreground; never the system's service. */
    snprintf(conf, sizeof(conf),
             "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
             "error_log %s/error.log;\nevents { worker_connections 1024; }\n"
             "http {\n  access_log off;\n  client_body_temp_path %s/tmp;\n"
             "  proxy_temp_path %s/tmp;\n  fastcgi_temp_path %s/tmp;\n  uwsgi_temp_path %s/tmp;\n"
             "  scgi_temp_path %s/tmp;\n  types { text/html html; }\n"
             "  server {\n    listen 127.0.0.1:%d;\n    root %s/www;\n    index index.html;\n"
             "  }\n}\n",
             bh_tmpdir, bh_tmpdir, bh_tmpdir, bh_tmpdir, bh_tmpdir, bh_tmpdir, bh_tmpdir, port,
             bh_tmpdir);
    snprintf(path, sizeof(path), "%s/nginx.conf", bh_tmpdir);
    f = fopen(path, "w");
    if (!f || fputs(conf, f) < 0 || fclose(f) != 0) {
        r->state = ST_FAILED;
        bh_say(r->why, "%s: %s", path, strerror(errno));
        return;
    }
    char errlog[512];
    snprintf(errlog, sizeof(errlog), "%s/error.log", bh_tmpdir);
    char *argv[] = {(char *)nginx, "-p", bh_tmpdir, "-c", path, "-e", errlog, NULL};
    child_t c;
    progress("nginx: starting a private nginx on 127.0.0.1:%d", port);
    if (bh_child_start(&c, argv, r->why) != 0) {
        r->state = ST_FAILED;
        return;
    }
    if (bh_wait_http(&c, port, r->why) == 0)
        measure_points(b, r, port, &c);
    else
        r->state = ST_FAILED;
    bh_child_stop(&c);
}

static const hq_choice_t *qemu_choice;
static char qemu_missing[REASON];

static void qemu_look(void)
{
    static bool looked;
    static char qemu[4096], image[4096];
    if (looked)
        return;
    looked = true;
    if (hq_find_qemu(qemu, sizeof(qemu)) != 0)
        bh_say(qemu_missing, "no QEMU: qemu-system-x86_64 is not on PATH, or $ORRERY_QEMU is not "
                             "executable");
    else if (hq_find_image(image, sizeof(image)) != 0)
        bh_say(qemu_missing, "no image: orrery.elf is not next to orrery, or $ORRERY_IMAGE is "
                             "missing");
    else
        qemu_choice = hq_choose(qemu, image, "auto");
}

/* Orrery serving the page: `orrery run` (accel NULL) or `orrery qemu --machine microvm`. */
static void run_orrery(bench_t *b, row_t *r, const char *accel)
{
    char net[96];
    int port = bh_free_port();
    snprintf(net, sizeof(net), "user,hostfwd=tcp:127.0.0.1:%d-:80", port);
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)b->self;
    if (accel) {
        argv[n++] = "qemu";
        argv[n++] = "--machine";
        argv[n++] = "microvm";
        argv[n++] = "--accel";
        argv[n++] = (char *)accel;
    } else {
        argv[n++] = "run";
    }
    argv[n++] = "--net";
    argv[n++] = net;
    argv[n++] = "--disk";
    argv[n++] = b->disk_ro;
    if (b->manifest) {
        argv[n++] = "--manifest";
        argv[n++] = (char *)b->manifest;
    }
    argv[n] = NULL;
    child_t c;
    progress("%s: booting", r->name);
    if (bh_child_start(&c, argv, r->why) != 0) {
        r->state = ST_FAILED;
        return;
    }
    if (bh_wait_http(&c, port, r->why) == 0)
        measure_points(b, r, port, &c);
    else
        r->state = ST_FAILED;
    bh_child_stop(&c);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* orrery serve in front: boot times from SERVE_SAMPLES sequential requests (their
 * orrery-boot-time headers), then wrk at 1 connection and at the instance limit. */
static void run_serve(bench_t *b, row_t *r, bool qemu)
{
    char listen[32];
    int port = bh_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)b->self;
    argv[n++] = "serve";
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--disk";
    argv[n++] = (char *)b->disk;
    argv[n++] = "--max-instances";
    argv[n++] = "4";
    argv[n++] = "--queue";
    argv[n++] = "200";
    if (qemu) {
        argv[n++] = "--qemu";
        argv[n++] = "microvm";
    }
    if (b->manifest) {
        argv[n++] = "--manifest";
        argv[n++] = (char *)b->manifest;
    }
    argv[n] = NULL;
    child_t c;
    progress("%s: starting orrery serve", r->name);
    if (bh_child_start(&c, argv, r->why) != 0) {
        r->state = ST_FAILED;
        return;
    }
    r->serve = true;
    if (bh_wait_http(&c, port, r->why) != 0) {
        r->state = ST_FAILED;
        bh_child_stop(&c);
        return;
    }
    double boot[SERVE_SAMPLES], req[SERVE_SAMPLES];
    progress("%s: %d sequential requests for the boot times", r->name, SERVE_SAMPLES);
    for (int i = 0; i < SERVE_SAMPLES; i++) {
        char val[64];
        double t0 = now_s();
        int st = bh_http_get(port, BOOT_TIMEOUT_S, "orrery-boot-time", val, sizeof(val));
        req[i] = (now_s() - t0) * 1e3;
        bh_child_pump(&c, 0);
        if (st != 200 || !val[0]) {
            r->state = ST_FAILED;
            bh_say(r->why, "request %d through orrery serve: status %d%s", i + 1, st,
                   val[0] ? "" : ", no orrery-boot-time header");
            bh_child_stop(&c);
            return;
        }
        boot[i] = strtod(val, NULL);
    }
    qsort(boot, SERVE_SAMPLES, sizeof(double), cmp_d);
    qsort(req, SERVE_SAMPLES, sizeof(double), cmp_d);
    r->boots = SERVE_SAMPLES;
    r->boot_min = boot[0];
    r->boot_max = boot[SERVE_SAMPLES - 1];
    r->boot_med = boot[SERVE_SAMPLES / 2];
    r->req_med = req[SERVE_SAMPLES / 2];
    static const unsigned sconns[] = {1, 4};
    r->state = ST_MEASURED;
    for (size_t i = 0; i < 2; i++) {
        progress("%s: %u connection(s), %u s", r->name, sconns[i], b->duration_s);
        if (bh_run_wrk(port, sconns[i], b->duration_s, qemu ? 60 : 20, &c, &r->pt[r->npoints],
                       r->why) != 0) {
            r->state = ST_FAILED;
            break;
        }
        r->npoints++;
    }
    bh_child_stop(&c);
}

/* ---- output --------------------------------------------------------------------------------- */

static const point_t *nginx_at(const bench_t *b, unsigned conns)
{
    const row_t *g = &b->rows[R_NGINX];
    if (g->state != ST_MEASURED)
        return NULL;
    for (size_t i = 0; i < g->npoints; i++)
        if (g->pt[i].conns == conns)
            return &g->pt[i];
    return NULL;
}

static void jnum(const char *key, double v)
{
    if (v < 0)
        printf("\"%s\": null", key);
    else
        printf("\"%s\": %.3f", key, v);
}

/* a ratio: significant digits, not decimals (serve against nginx is 1e-4) */
static void jratio(const char *key, double v)
{
    if (v < 0)
        printf("\"%s\": null", key);
    else
        printf("\"%s\": %.4g", key, v);
}

static void print_json(const bench_t *b, size_t page_len)
{
    printf("{\"benchmark\": \"http\", \"tool\": \"wrk --latency\", \"duration_s\": %u, "
           "\"page\": {\"path\": \"/\", \"bytes\": %zu}, \"baseline\": \"nginx\",\n"
           " \"rows\": [\n",
           b->duration_s, page_len);
    for (size_t i = 0; i < NROWS; i++) {
        const row_t *r = &b->rows[i];
        printf("  {\"name\": \"%s\", \"what\": ", r->name);
        cli_json_str(r->what);
        printf(", \"state\": \"%s\", \"why\": ", st_names[r->state]);
        cli_json_str(r->why);
        if (r->accel)
            printf(", \"accel\": \"%s\"", r->accel);
        printf(", \"points\": [");
        for (size_t k = 0; k < r->npoints; k++) {
            const point_t *p = &r->pt[k];
            const point_t *g = nginx_at(b, p->conns);
            printf("%s{\"connections\": %u, ", k ? ", " : "", p->conns);
            jnum("rps", p->rps);
            printf(", ");
            jnum("p50_ms", p->p50);
            printf(", ");
            jnum("p75_ms", p->p75);
            printf(", ");
            jnum("p90_ms", p->p90);
            printf(", ");
            jnum("p99_ms", p->p99);
            printf(", \"requests\": %llu, \"errors\": %llu, ", p->requests, p->errors);
            jratio("rps_vs_nginx", g && g->rps > 0 ? p->rps / g->rps : -1);
            printf(", ");
            jratio("p50_vs_nginx", g && g->p50 > 0 && p->p50 >= 0 ? p->p50 / g->p50 : -1);
            printf("}");
        }
        printf("]");
        if (r->serve) {
            printf(", \"boots\": %u, ", r->boots);
            jnum("boot_ms_median", r->boots ? r->boot_med : -1);
            printf(", ");
            jnum("boot_ms_min", r->boots ? r->boot_min : -1);
            printf(", ");
            jnum("boot_ms_max", r->boots ? r->boot_max : -1);
            printf(", ");
            jnum("request_ms_median", r->boots ? r->req_med : -1);
            printf(", ");
            jratio("request_ms_vs_starina", r->boots ? r->req_med / STARINA_MS : -1);
        }
        printf("},\n");
    }
    printf("  {\"name\": \"starina-vmcgi\", \"what\": \"Starina's published figure: a fresh VM "
           "per request on a Raspberry Pi 5 (not measured here)\", \"state\": \"reference\", "
           "\"request_ms\": %.1f, \"qemu_ms\": %.1f, \"os_ms\": %.1f}\n ],\n"
           " \"baselines\": {\"rps_vs_nginx\": {\"baseline\": \"nginx\", \"ratio\": \"rps / the "
           "nginx row's rps at the same connections\"}, \"p50_vs_nginx\": {\"baseline\": "
           "\"nginx\", \"ratio\": \"p50_ms / the nginx row's p50_ms at the same connections\"}, "
           "\"request_ms_vs_starina\": {\"baseline\": \"starina-vmcgi\", \"ratio\": "
           "\"request_ms_median / starina-vmcgi's request_ms (published, not measured)\"}}}\n",
           STARINA_MS, STARINA_QEMU_MS, STARINA_OS_MS);
}

static void fmt_ms(char *o, size_t n, double v)
{
    if (v < 0)
        snprintf(o, n, "-");
    else
        snprintf(o, n, "%.2f", v);
}

static void print_text(const bench_t *b, size_t page_len)
{
    printf("orrery bench http: GET / (%zu bytes) with wrk --latency, %u s per point; ratios "
           "against nginx on loopback at the same connections\n\n",
           page_len, b->duration_s);
    printf("%-22s %5s %10s %9s %9s %9s %9s %8s %7s\n", "row", "conns", "req/s", "p50 ms", "p75 ms",
           "p90 ms", "p99 ms", "errors", "x nginx");
    for (size_t i = 0; i < NROWS; i++) {
        const row_t *r = &b->rows[i];
        if (r->state != ST_MEASURED) {
            printf("%-22s %s%s%s\n", r->name, st_names[r->state], r->why[0] ? ": " : "", r->why);
            continue;
        }
        for (size_t k = 0; k < r->npoints; k++) {
            const point_t *p = &r->pt[k];
            const point_t *g = nginx_at(b, p->conns);
            char a[16], c2[16], d[16], e[16], ratio[16];
            fmt_ms(a, sizeof(a), p->p50);
            fmt_ms(c2, sizeof(c2), p->p75);
            fmt_ms(d, sizeof(d), p->p90);
            fmt_ms(e, sizeof(e), p->p99);
            if (g && g->rps > 0)
                snprintf(ratio, sizeof(ratio), "%.3g", p->rps / g->rps);
            else
                snprintf(ratio, sizeof(ratio), "-");
            printf("%-22s %5u %10.1f %9s %9s %9s %9s %8llu %7s\n", k ? "" : r->name, p->conns,
                   p->rps, a, c2, d, e, p->errors, ratio);
        }
    }
    printf("\nboot per request through orrery serve (orrery-boot-time, %d sequential requests)\n",
           SERVE_SAMPLES);
    printf("%-22s %12s %10s %10s %16s %11s\n", "row", "boot med ms", "min ms", "max ms",
           "request med ms", "x Starina");
    for (size_t i = R_SERVE_HOSTED; i <= R_SERVE_TCG; i++) {
        const row_t *r = &b->rows[i];
        if (!r->boots) {
            printf("%-22s %s%s%s\n", r->name, st_names[r->state], r->why[0] ? ": " : "", r->why);
            continue;
        }
        printf("%-22s %12.1f %10.1f %10.1f %16.1f %11.3f\n", r->name, r->boot_med, r->boot_min,
               r->boot_max, r->req_med, r->req_med / STARINA_MS);
    }
    printf("%-22s %12s %10s %10s %16.1f %11s  (published: %.0f ms QEMU + %.0f ms OS, "
           "Raspberry Pi 5)\n",
           "starina-vmcgi", "-", "-", "-", STARINA_MS, "1.000", STARINA_QEMU_MS, STARINA_OS_MS);
}

/* ---- the command ---------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: orrery bench http [--json] [--duration S] [--connections N,N,...] [--only ROWS]\n"
    "                         [--disk FILE] [--manifest FILE]\n"
    "\n"
    "Requests per second and latency percentiles (wrk --latency) for GET / (the default\n"
    "site's index.html, a small page) at a few connection counts, against:\n"
    "  nginx          a private nginx on 127.0.0.1 serving the same file (the baseline; its\n"
    "                 own config and prefix in a temp folder, one worker, stopped after)\n"
    "  hosted         orrery run, through slirp's hostfwd\n"
    "  microvm-tcg    orrery qemu --machine microvm under TCG\n"
    "  microvm-kvm    the same under KVM (skipped, with the reason, where KVM is not usable)\n"
    "  serve-hosted   orrery serve: a fresh hosted Orrery per request (boot time per request\n"
    "                 from the orrery-boot-time header, then wrk at 1 and 4 connections)\n"
    "  serve-microvm  orrery serve --qemu microvm\n"
    "and Starina's published 100 ms per request (60 ms QEMU + 40 ms OS, Raspberry Pi 5) as a\n"
    "reference row. Ratios are against nginx at the same connection count. Progress on stderr.\n"
    "\n"
    "  --json              one JSON object on stdout instead of tables\n"
    "  --duration S        seconds per point (1..600; default 3)\n"
    "  --connections LIST  connection counts (1..1000, at most 8; default 1,8,32)\n"
    "  --only ROWS         comma-separated row names to run (the others are 'off')\n"
    "  --disk FILE         the disk with the site (default: the default disk), read-only\n"
    "  --manifest FILE     the boot manifest for the Orrery rows\n"
    "\n"
    "Needs wrk (Debian package wrk; $ORRERY_WRK names another); nginx (nginx-light;\n"
    "$ORRERY_NGINX) for the baseline, QEMU and orrery.elf for the microvm rows; a row that\n"
    "cannot run says why, and the exit status is 1 only when a row failed. docs/httpd.md\n";

static const char *const row_keys[NROWS] = {"nginx",       "hosted",       "microvm-tcg",
                                            "microvm-kvm", "serve-hosted", "serve-microvm"};

/* The page: /www/index.html out of the disk image (debugfs), so nginx serves the same bytes. */
static char *read_page(const char *disk, size_t *len, char *why)
{
    char out[512], cmd[600];
    snprintf(out, sizeof(out), "%s/page.html", bh_tmpdir);
    snprintf(cmd, sizeof(cmd), "dump /www/index.html %s", out);
    const char *debugfs = access("/usr/sbin/debugfs", X_OK) == 0 ? "/usr/sbin/debugfs"
                          : access("/sbin/debugfs", X_OK) == 0   ? "/sbin/debugfs"
                                                                 : "debugfs";
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execlp(debugfs, debugfs, "-R", cmd, disk, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    if (pid > 0)
        waitpid(pid, &ws, 0);
    struct stat st;
    if (pid < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || stat(out, &st) != 0 ||
        st.st_size == 0) {
        bh_say(why, "cannot read /www/index.html from %s with debugfs (e2fsprogs)", disk);
        return NULL;
    }
    return cli_read_file(out, 1 << 20, len);
}

int hl_cmd_bench_http(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},           {"json", no_argument, NULL, 'j'},
        {"duration", required_argument, NULL, 'd'}, {"connections", required_argument, NULL, 'c'},
        {"only", required_argument, NULL, 'o'},     {"disk", required_argument, NULL, 'D'},
        {"manifest", required_argument, NULL, 'M'}, {NULL, 0, NULL, 0},
    };
    static bench_t b;
    bool json = false;
    uint64_t v;
    memset(&b, 0, sizeof(b));
    b.duration_s = 3;
    b.conns[0] = 1, b.conns[1] = 8, b.conns[2] = 32;
    b.nconns = 3;
    for (size_t i = 0; i < NROWS; i++)
        b.want[i] = true;
    int o;
    while ((o = cli_getopt(argc, argv, "bench http", opts)) != -1) {
        switch (o) {
        case CLI_OPT_ERROR:
            return 2;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'j':
            json = true;
            break;
        case 'd':
            if (cli_opt_u64("bench http", "--duration", optarg, 1, 600, &v))
                return 2;
            b.duration_s = (unsigned)v;
            break;
        case 'c': {
            char tmp[256], *save = NULL;
            snprintf(tmp, sizeof(tmp), "%s", optarg);
            b.nconns = 0;
            for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (b.nconns == NPOINTS_MAX)
                    return cli_usage_error("bench http",
                                           "bench http: --connections: at most "
                                           "%d counts",
                                           NPOINTS_MAX);
                if (cli_opt_u64("bench http", "--connections", t, 1, 1000, &v))
                    return 2;
                b.conns[b.nconns++] = (unsigned)v;
            }
            if (!b.nconns)
                return cli_usage_error("bench http", "bench http: --connections wants N,N,...");
            break;
        }
        case 'o': {
            char tmp[256], *save = NULL;
            snprintf(tmp, sizeof(tmp), "%s", optarg);
            for (size_t i = 0; i < NROWS; i++)
                b.want[i] = false;
            for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                size_t i;
                for (i = 0; i < NROWS && strcmp(t, row_keys[i]) != 0; i++)
                    ;
                if (i == NROWS)
                    return cli_usage_error("bench http",
                                           "bench http: --only: unknown row '%s' (nginx, "
                                           "hosted, microvm-tcg, microvm-kvm, serve-hosted, "
                                           "serve-microvm)",
                                           t);
                b.want[i] = true;
            }
            break;
        }
        case 'D':
            b.disk = optarg;
            break;
        case 'M':
            b.manifest = optarg;
            break;
        }
    }
    if (optind < argc)
        return cli_usage_error("bench http", "bench http: unexpected argument '%s'", argv[optind]);
    static char diskpath[4096], self[4096];
    if (!b.disk) {
        if (hl_default_disk(diskpath, sizeof(diskpath)) != 0)
            return cli_usage_error("bench http", "bench http: no default disk (%s); give --disk",
                                   diskpath);
        b.disk = diskpath;
    }
    if (access(b.disk, R_OK) != 0)
        return cli_usage_error("bench http", "bench http: --disk %s: %s", b.disk, strerror(errno));
    snprintf(b.disk_ro, sizeof(b.disk_ro), "%s,ro", b.disk);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "orrery bench http: /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    self[sl] = '\0';
    b.self = self;

    static const char *const whats[NROWS] = {
        "nginx on the host's loopback (the baseline)",
        "orrery run, httpd through slirp hostfwd",
        "orrery qemu --machine microvm, TCG",
        "orrery qemu --machine microvm, KVM",
        "orrery serve: a fresh hosted Orrery per request",
        "orrery serve --qemu microvm: a fresh QEMU microvm per request"};
    for (size_t i = 0; i < NROWS; i++) {
        b.rows[i].name = row_keys[i];
        b.rows[i].what = whats[i];
    }

    snprintf(bh_tmpdir, sizeof(bh_tmpdir), "%s/orrery-bench-http.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(bh_tmpdir)) {
        fprintf(stderr, "orrery bench http: a temp folder: %s\n", strerror(errno));
        bh_tmpdir[0] = '\0';
        return 1;
    }
    signal(SIGINT, bh_on_fatal);
    signal(SIGTERM, bh_on_fatal);

    char why[REASON] = "";
    size_t page_len = 0;
    char *page = read_page(b.disk, &page_len, why);
    const char *wrk_missing = NULL;
    /* $ORRERY_WRK and $ORRERY_NGINX name the programs (tests hide them this way) */
    const char *cands[] = {"/usr/bin/wrk", "/usr/local/bin/wrk"}, *wenv = getenv("ORRERY_WRK");
    for (size_t i = 0; i < 2 && !bh_wrk_path[0] && !wenv; i++)
        if (access(cands[i], X_OK) == 0)
            snprintf(bh_wrk_path, sizeof(bh_wrk_path), "%s", cands[i]);
    if (wenv && wenv[0] && access(wenv, X_OK) == 0)
        snprintf(bh_wrk_path, sizeof(bh_wrk_path), "%s", wenv);
    if (!bh_wrk_path[0])
        wrk_missing = "no wrk (Debian package wrk; scripts/setup installs it)";

    for (size_t i = 0; i < NROWS; i++) {
        row_t *r = &b.rows[i];
        if (!b.want[i])
            continue;
        if (wrk_missing) {
            r->state = ST_SKIPPED;
            bh_say(r->why, "%s", wrk_missing);
            continue;
        }
        if (i == R_NGINX) {
            if (!page) {
                r->state = ST_FAILED;
                bh_say(r->why, "%s", why);
            } else {
                run_nginx(&b, r, page, page_len);
            }
        } else if (i == R_HOSTED) {
            run_orrery(&b, r, NULL);
        } else if (i == R_SERVE_HOSTED) {
            run_serve(&b, r, false);
        } else {
            qemu_look();
            r->accel = i == R_KVM ? "kvm" : "tcg";
            if (!qemu_choice) {
                r->state = ST_SKIPPED;
                bh_say(r->why, "%s", qemu_missing);
            } else if (i == R_KVM && (qemu_choice->chosen < 0 ||
                                      strcmp(hq_cands[qemu_choice->chosen].accel, "kvm") != 0)) {
                char kw[1024];
                hq_kvm_why(qemu_choice, kw, sizeof(kw));
                r->state = ST_SKIPPED;
                bh_say(r->why, "KVM is not usable: %s", kw);
            } else if (i == R_SERVE_TCG) {
                r->accel = NULL; /* orrery serve lets orrery qemu choose */
                run_serve(&b, r, true);
            } else {
                run_orrery(&b, r, r->accel);
            }
        }
        if (r->state != ST_MEASURED)
            progress("%s: %s: %s", r->name, st_names[r->state], r->why);
    }
    free(page);
    bh_cleanup_tmp();
    if (json)
        print_json(&b, page_len);
    else
        print_text(&b, page_len);
    bool failed = false;
    for (size_t i = 0; i < NROWS; i++)
        failed |= b.rows[i].state == ST_FAILED;
    return failed ? 1 : 0;
}
