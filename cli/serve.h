/* serve.h — what the parts of `orrery serve` share: limits, instances, clients, its state. */
#ifndef ORRERY_CLI_SERVE_H
#define ORRERY_CLI_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum {
    MAX_INSTANCES_MAX = 64,
    CLIENTS_MAX = 256,      /* connections held at once; more wait in the listen backlog */
    HEAD_MAX = 16 * 1024,   /* a request's or a response's head: 431 / 502 beyond */
    BODY_MAX = 1024 * 1024, /* a request body (Content-Length): 413 beyond */
    LOG_KEEP = 4096,        /* the last of an instance's output, for reasons */
    KILL_GRACE_MS = 2000,   /* SIGTERM, then SIGKILL of the group after this */
    READ_TIMEOUT_S = 30,    /* a client that has not sent its whole request: 408 */
    RETRY_MS = 5,           /* a forwarded connection closed with no answer: again after */
    CHUNK = 64 * 1024,
};

/* The two lines that make an instance ready (docs/httpd.md): tcpip has its address (a
 * connection through hostfwd reaches the guest) and httpd listens on port 80. */
#define READY_NET "[tcpip] net0 "
#define READY_HTTPD "[httpd] serving "
#define READY_FS "[fs] blk0: "
#define PROBE_REQ "HEAD / HTTP/1.1\r\nHost: orrery-serve\r\nConnection: close\r\n\r\n"

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define MS(x) ((uint64_t)(x)*1000000u)

typedef struct serve_config {
    unsigned pool, max_instances, queue, timeout_s, boot_timeout_s, grace_s;
    bool qemu, verbose;
    const char *manifest;
} serve_config_t;

/* ---- state ---------------------------------------------------------------------------------- */

struct client;

typedef struct inst {
    bool used;
    pid_t pid;   /* also its process group; -1 once reaped */
    int in, out; /* its stdin (held open: end of input would shut it down), its output */
    int port;
    char id[40];
    uint64_t t_start, t_ready;
    bool seen_net, seen_httpd, seen_fs, ready;
    bool eof; /* its output ended */
    uint64_t eof_at;
    bool reaped;
    int wstatus;
    bool dying; /* thrown away: killed, waiting to be reaped */
    uint64_t kill_at;
    struct client *client;
    char log[LOG_KEEP + 1];
    size_t loglen;
    int probe; /* the readiness probe's connection, -1: none */
    size_t probe_sent, probe_got;
    char probe_buf[64];
    int probe_status; /* the last status it answered, 0: none */
    uint64_t probe_at;
    char carry[64];
    size_t carrylen;
} inst_t;

enum cstate { C_READ, C_WAIT, C_CONNECT, C_SEND, C_RELAY, C_REPLY };

typedef struct client {
    bool used;
    int fd;
    enum cstate st;
    uint64_t seq; /* arrival order: the queue is first come, first served */
    uint64_t deadline;
    char *req;                     /* the request as received, then as forwarded */
    size_t req_len, req_cap, need; /* need: the whole request's length once the head is read */
    char *fwd;
    size_t fwd_len, fwd_off;
    inst_t *inst;
    int up; /* the connection to the instance's forwarded port */
    uint64_t retry_at;
    char *head; /* the response's head, gathered to add our headers */
    size_t head_len;
    bool head_done, answered;
    char *out; /* bytes owed to the client */
    size_t out_len, out_off, out_cap;
    bool up_eof;
} client_t;

typedef struct serve_state {
    serve_config_t cfg;
    const char *self;
    char disk_arg[4200];
    int lfd;
    int sigpipe[2];
    inst_t inst[MAX_INSTANCES_MAX * 2]; /* serving, idle, booting and dying ones */
    client_t cl[CLIENTS_MAX];
    uint64_t seq, nboots;
    unsigned fails; /* boots that failed in a row: the pool is not refilled past 3 */
    bool stopping;
    uint32_t run_id;
    char tmp_manifest[4200]; /* ours to remove at the end, "" if none */
} serve_state_t;

/* All of `orrery serve`'s state, in one place: it runs one loop on one thread (serve.c). */
extern serve_state_t serve_state;

#define NELEM_INST (sizeof(serve_state.inst) / sizeof(serve_state.inst[0]))

/* serve_instance.c: starting, readiness, killing and reaping instances */
unsigned serve_live_instances(void);
unsigned serve_idle_instances(void);
inst_t *serve_inst_start(void);
void serve_inst_kill(inst_t *in);
void serve_inst_read(inst_t *in);
void serve_probe_step(inst_t *in, short revents);
void serve_check_instances(void);

/* serve_http.c: clients' requests, forwarding them, and the responses */
void serve_client_free(client_t *c);
void serve_client_error(client_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void serve_client_read(client_t *c);
void serve_client_write(client_t *c);
void serve_client_up_read(client_t *c);
void serve_client_up_write(client_t *c);
void serve_check_clients(void);
void serve_accept_clients(void);

#endif
