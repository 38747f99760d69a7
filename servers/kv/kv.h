/* kv.h — the replicated key-value store (docs/kv.md): its log records, the lines of its two
 * protocols, line-buffered TCP connections and the task's state, shared by kv.c (the task),
 * node.c (leader and follower), log.c (pure: records, recovery choice, lines) and conn.c. */
#ifndef KV_KV_H
#define KV_KV_H

#include <iface/fs.h>
#include <iface/tcp.h>
#include <lineconn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    KV_KEY_MAX = 64,                       /* bytes of a key */
    KV_VALUE_MAX = 256,                    /* bytes of a value */
    KV_LOG_MAX = 2048,                     /* entries of the log; a PUT past it is `ERR log full` */
    KV_PEERS_MAX = 4,                      /* followers: a cluster of at most 5 */
    KV_CLIENTS_MAX = 8,                    /* client connections of the leader; more are closed */
    KV_LINE_MAX = 512,                     /* bytes of one protocol line, its '\n' included */
    KV_IN_MAX = 2048,                      /* bytes of input kept per connection */
    KV_OUT_MAX = 16384,                    /* bytes of output kept per connection */
    KV_BATCH = 32,                         /* entries the leader sends a follower before waiting */
    KV_REC = 344,                          /* bytes of one log record on disk */
    KV_REC_MAGIC = 0x314c564b,             /* "KVL1" */
    KV_READ_RECS = FS_DATA_MAX / KV_REC,   /* 11: records per read */
    KV_WRITE_RECS = FS_WRITE_MAX / KV_REC, /* 11: records per write */
    KV_PORT = 7000,
};

#define KV_BUG_ACK_BEFORE_FSYNC 1u

/* One log entry; key_len 0 is the no-op a leader appends when it starts an epoch. prev and crc
 * chain the records of a log file: prev is the CRC of the record before (0 for entry 1), crc
 * this record's own (both set by kv_rec_encode), so a stale record left past a shorter log
 * never reads as part of it. */
typedef struct kv_entry {
    uint32_t epoch, index;
    uint32_t prev, crc;
    uint8_t key_len;
    uint16_t value_len;
    char key[KV_KEY_MAX];
    char value[KV_VALUE_MAX];
} kv_entry_t;

/* ---- log.c: pure functions (tests/test_kv_log.c) --------------------------------------- */

uint32_t kv_crc32(const void *p, size_t n);
/* Record 0 of the file is the header (index 0: the node's epoch); record i is entry i. Sets
 * e->crc. */
void kv_rec_encode(kv_entry_t *e, uint8_t out[KV_REC]);
/* 0, or -1 for a record that is not whole (magic, CRC, lengths). */
int kv_rec_decode(const uint8_t *in, kv_entry_t *e);

/* What a node's log looks like to recovery: its length and its last entry's epoch. */
typedef struct kv_logpos {
    uint32_t len, last_epoch;
} kv_logpos_t;
/* true when a is more up to date than b: a higher last epoch, or the same and longer. */
bool kv_log_better(kv_logpos_t a, kv_logpos_t b);
/* Of n candidates, the index of the best (the first of equals). n > 0. */
size_t kv_log_choose(const kv_logpos_t *c, size_t n);

/* Set log[i]'s prev and crc for i in from..len (after entries from..len changed). */
void kv_chain(kv_entry_t *log, uint32_t from, uint32_t len);

/*
 * Loading a log file: records in file order, starting at record `pos`. Accepts each whole
 * record whose index is its position and whose prev is the CRC of the record before (the
 * header at 0 stands alone), stops at the first that is not (a torn, zeroed or stale record
 * ends the log). Returns the records accepted; ld->end true once stopped.
 */
typedef struct kv_loader {
    uint32_t epoch; /* the header's */
    bool header;    /* a header was read */
    uint32_t len;   /* entries accepted */
    bool end;
} kv_loader_t;
size_t kv_load_records(kv_loader_t *ld, kv_entry_t *log, uint32_t pos, const uint8_t *p, size_t n);

/* ---- lines -------------------------------------------------------------------------------- */

typedef enum kv_verb {
    KV_V_BAD = 0,
    KV_V_PUT,   /* client: PUT key value */
    KV_V_GET,   /* client: GET key */
    KV_V_HELLO, /* leader -> follower: HELLO epoch */
    KV_V_FETCH, /* leader -> follower: FETCH from */
    KV_V_E,     /* either way: E epoch index prev_epoch [key value] */
    KV_V_SYNC,  /* leader -> follower: end of a batch */
    KV_V_LOG,   /* follower -> leader: LOG len last_epoch */
    KV_V_END,   /* follower -> leader: END len (after FETCH's entries) */
    KV_V_ACK,   /* follower -> leader: ACK index */
    KV_V_NACK,  /* follower -> leader: NACK index */
} kv_verb_t;

typedef struct kv_line {
    kv_verb_t verb;
    uint32_t a, b, c; /* numbers, in the order of the line */
    kv_entry_t e;     /* PUT, GET (key), E */
    const char *why;  /* KV_V_BAD: what is wrong, for `ERR why` */
} kv_line_t;

/* Parse one line (without its '\n'; a '\r' before it is dropped by the caller). */
void kv_parse_line(const char *s, size_t n, kv_line_t *out);
/* Format entry e as an E line with its '\n' into out (KV_LINE_MAX); returns its length. */
size_t kv_format_entry(const kv_entry_t *e, uint32_t prev_epoch, char *out);

/* The arg: role=leader|follower,port=N,peers=A+B,log=PATH,bug=ack-before-fsync */
typedef struct kv_args {
    bool leader;
    uint16_t port;
    uint32_t peers[KV_PEERS_MAX];
    size_t npeers;
    char log[64];
    uint32_t bugs;
} kv_args_t;
/* 0, or -1 with a one-line reason in why (128 bytes). */
int kv_parse_args(const char *s, size_t n, kv_args_t *a, char *why);

/* ---- the task (kv.c: task, file; repl.c: replication, clients) ---------------------------- */

typedef enum kv_phase {
    KP_CONNECT = 0, /* waiting for init's connects to fs and tcp */
    KP_LOAD,        /* reading the log file back */
    KP_COLLECT,     /* leader: waiting for the logs of a majority */
    KP_FETCH,       /* leader: fetching a better log from a follower */
    KP_PERSIST,     /* leader: the adopted log and the new epoch going to the disk */
    KP_CATCHUP,     /* leader: the epoch's no-op not yet on a majority */
    KP_SERVE,       /* leader: serving clients; follower: following */
} kv_phase_t;

/* A follower, seen from the leader. */
typedef struct kv_peer {
    uint32_t addr;
    lconn_t c;
    uint32_t attempt;     /* connects so far: part of their request ids */
    bool logged;          /* its LOG answer came on this connection */
    bool inflight;        /* a batch is out: waiting for ACK or NACK */
    kv_logpos_t pos;      /* its LOG answer */
    uint32_t next, match; /* the next entry to send; its log matches ours and is durable to match */
    uint64_t deadline;    /* an answer is due by then (0: none is awaited) */
    uint64_t retry_at;    /* connect again then (state LC_FREE) */
    uint32_t backoff_ms;
} kv_peer_t;

/* An accepted connection: a client (PUT/GET) or, on a follower, the leader. */
typedef struct kv_client {
    lconn_t c;
    uint32_t wait_index; /* leader: its PUT, waiting for the entry's commit */
} kv_client_t;

typedef enum kv_fsop {
    KF_NONE = 0,
    KF_READ,
    KF_PREALLOC,
    KF_TRUNC,
    KF_HEADER,
    KF_WRITE,
    KF_FSYNC,
} kv_fsop_t;

typedef struct kv_state {
    kv_args_t args;
    os_handle_t fs, tcp, file, listener, timer;
    kv_phase_t phase;
    bool listen_sent;
    uint32_t req;
    uint32_t epoch;  /* the header's: the leader's current epoch */
    uint32_t len;    /* entries 1..len in log */
    uint32_t commit; /* leader: entries 1..commit are on a majority */
    /* the file: one request at a time */
    kv_fsop_t op;
    uint32_t op_to;         /* KF_WRITE: records up to op_to; KF_FSYNC: written when sent */
    uint32_t op_low;        /* the lowest truncation point while the op was out */
    uint32_t op_epoch;      /* KF_HEADER, KF_FSYNC: the header's epoch it carries */
    uint32_t written;       /* records 1..written are in the file as in log */
    uint32_t synced;        /* ... and fsync'ed */
    bool trunc_needed;      /* record written+1 must be zeroed: the log got shorter */
    uint32_t prealloc;      /* the next record to fill with zeros, up to KV_LOG_MAX (0: done) */
    bool prealloc_unsynced; /* zeros written since the last fsync */
    uint32_t header_written, header_synced; /* epochs */
    bool header_dirty;
    uint64_t file_size; /* when opened */
    kv_loader_t ld;
    uint32_t load_pos;
    /* follower */
    int leader_ci;    /* the client slot the leader speaks on, or -1 */
    uint32_t matched; /* our log matches the leader's up to here */
    bool bad;         /* a batch did not fit our log: NACK nack at its SYNC */
    uint32_t nack;
    bool ack_pending; /* a SYNC waits for matched to be durable */
    uint32_t ack_index;
    bool fetching; /* sending entries fetch_next.. to the leader */
    uint32_t fetch_next;
    /* leader */
    kv_peer_t peers[KV_PEERS_MAX];
    int fetch_peer;        /* KP_FETCH: whose log we take */
    uint32_t first_change; /* KP_FETCH: the first entry the fetched log changes */
    uint32_t nop_index;    /* the epoch's no-op */
    kv_client_t clients[KV_CLIENTS_MAX];
    kv_line_t line;
    char text[KV_LINE_MAX];
    union {
        fs_write_t write;
        fs_open_t open;
    } m;
    kv_entry_t log[KV_LOG_MAX + 1];
} kv_state_t;

/* kv.c */
void kv_file_pump(os_ctx_t *ctx, kv_state_t *st);
void kv_truncate(kv_state_t *st, uint32_t len);
void kv_append(kv_state_t *st, const kv_entry_t *e);
void kv_reload(os_ctx_t *ctx, kv_state_t *st);
uint32_t kv_majority(const kv_state_t *st);
/* repl.c */
void kv_loaded(os_ctx_t *ctx, kv_state_t *st);
void kv_durable(os_ctx_t *ctx, kv_state_t *st);
void kv_tick(os_ctx_t *ctx, kv_state_t *st);
void kv_tcp_control(os_ctx_t *ctx, kv_state_t *st, const os_event_t *ev);
void kv_accepted(os_ctx_t *ctx, kv_state_t *st, os_handle_t chan);
bool kv_conn_event(os_ctx_t *ctx, kv_state_t *st, const os_event_t *ev);

#endif
