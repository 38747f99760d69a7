/* bench_http.h — what bench_http.c and bench_http_run.c share: limits, points, children. */
#ifndef ORRERY_CLI_BENCH_HTTP_H
#define ORRERY_CLI_BENCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

enum {
    NPOINTS_MAX = 8,
    REASON = 512,
    BOOT_TIMEOUT_S = 180, /* child start -> a 200 on / (TCG on a busy host) */
    SERVE_SAMPLES = 5,    /* sequential requests through orrery serve for the boot times */
};

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* why (REASON bytes) from a format */
void bh_say(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct point {
    unsigned conns;
    bool ok;
    double rps, p50, p75, p90, p99; /* ms */
    unsigned long long requests, errors;
} point_t;

typedef struct child {
    pid_t pid;
    int in, out;
    char log[8192];
    size_t loglen;
    bool eof;
} child_t;

/* bench_http_run.c: the children and the host side of HTTP */
extern volatile pid_t bh_live_pid; /* the child running now, killed on a fatal signal */
extern char bh_tmpdir[256];        /* removed at the end and on a fatal signal */
extern char bh_wrk_path[4096];

void bh_cleanup_tmp(void);
void bh_on_fatal(int sig);
int bh_child_start(child_t *c, char **argv, char *why);
bool bh_child_pump(child_t *c, int ms);
void bh_child_stop(child_t *c);
int bh_free_port(void);
int bh_http_get(int port, double timeout_s, const char *hdr, char *val, size_t vn);
int bh_wait_http(child_t *c, int port, char *why);
int bh_run_wrk(int port, unsigned conns, unsigned duration_s, unsigned timeout_s, child_t *c,
               point_t *p, char *why);

#endif
