/* httpd.h — the httpd server's state, shared by its files (httpd.c, status.c). */
#ifndef HTTPD_H
#define HTTPD_H

#include <http_parse.h>
#include <iface/fs.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <image.h>

enum {
    HTTPD_IN_MAX = HTTP_HEADERS_MAX + TCP_DATA_MAX, /* a head under the limit plus one message */
    HTTPD_OUT_MAX = 8192,                           /* a response head plus a small body */
    HTTPD_STATUS_BODY_MAX = 7680,                   /* the /status JSON */
};

typedef enum conn_phase {
    C_FREE = 0,
    C_READING, /* waiting for (the rest of) a request head */
    C_WALK,    /* opening the path one name at a time (symlinks refused) */
    C_STAT,    /* the file is open: asking its mtime */
    C_STATUS,  /* /status: waiting for the fs and net counters */
    C_SENDING, /* the response is going out */
} conn_phase_t;

typedef struct conn {
    conn_phase_t phase;
    os_handle_t chan;
    uint32_t gen;      /* bumped per use of the slot: stale fs answers are told apart */
    bool held;         /* we hold chan: no reading while a response is under way */
    bool keep;         /* keep the connection after this response */
    bool eof;          /* the client sent FIN */
    bool processing;   /* conn_process is on the stack (answers that complete at once) */
    uint64_t deadline; /* READING: the head must be complete by then (ns) */
    /* the request */
    http_method_t method;
    char method_name[16];
    bool has_ims;
    int64_t ims;
    char range[64]; /* the Range value, "" if none (or too long to be one range) */
    uint64_t skip;  /* body bytes still to drop */
    char path[HTTP_PATH_MAX + 1];
    char fspath[FS_PATH_MAX + 1];
    size_t walk; /* fspath[0..walk) is checked */
    bool index_tried;
    /* the file */
    os_handle_t file;
    uint64_t size, off, end;
    bool reading;
    /* /status */
    int pending;
    bool have_disk, have_net;
    fs_fsinfo_t disk;
    net_counters_t net;
    /* the response */
    int status;
    uint64_t body_bytes;
    size_t out_len, out_off;
    uint8_t out[HTTPD_OUT_MAX];
    size_t in_len;
    char in[HTTPD_IN_MAX];
} conn_t;

/*
 * A refused connection after its 503: our FIN is sent, and what the client still sends (its
 * request, arriving after the 503) is read and dropped until its FIN or the deadline, so the
 * close does not answer unread data with a reset that could destroy the 503 on its way.
 */
typedef struct drain {
    os_handle_t chan; /* OS_HANDLE_NONE: free */
    uint64_t deadline;
} drain_t;

typedef struct httpd_state {
    httpd_config_t cfg;
    os_handle_t tcp, listener, fs, net, timer;
    bool fs_up, fs_connecting, net_up;
    uint32_t next_gen;
    uint64_t requests, refused;
    conn_t conns[HTTPD_CONNS_MAX];
    drain_t drains[HTTPD_DRAIN_MAX];
    char json[HTTPD_STATUS_BODY_MAX];
    tcp_data_t data;             /* scratch: one tcp data message, in or out */
    char head[HTTP_HEADERS_MAX]; /* scratch: the request head being answered */
} httpd_state_t;

/* The /status body into st->json; returns its length. */
size_t httpd_status_json(os_ctx_t *ctx, httpd_state_t *st, const conn_t *c);

#endif
