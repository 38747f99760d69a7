/* kv_peer.h — fuzz_kv's fake peer (kv_peer.c): init, the fs server, tcpip, and kv's followers or
 * leader as kv sees them; the checks on every line kv writes; the state fuzz_kv.c's ops drive. */
#ifndef FUZZ_KV_PEER_H
#define FUZZ_KV_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <iface/iface.h>

#include "fz_input.h"
#include "kv.h"

enum {
    CONNS_MAX = 16,                       /* connections the peer keeps */
    REQS_MAX = 32,                        /* client requests awaiting their answer */
    OUT_MAX = 16384,                      /* bytes queued to kv per connection */
    IN_MAX = 8192,                        /* bytes of kv's output kept while a line ends */
    FILE_MAX = (KV_LOG_MAX + 1) * KV_REC, /* the log file's whole size */
    KEYS = 8,                             /* client keys k0..k7 */
    FOLLOWERS = 2,                        /* fake followers (leader role) */
    FOLLOWER_ADDR = 0x0a00000b,           /* 10.0.0.11, 10.0.0.12 */
    WRITES_MAX = 4096,                    /* client writes of one input that are checked */
    LEADER_EPOCHS = 100, /* the fake leader's epochs start here: past any of the file's */
};

typedef enum ckind { C_CLIENT, C_FOLLOWER, C_LEADER } ckind_t;

/* A client request whose answer is due: what kind of answer it may get. */
typedef struct req {
    kv_verb_t verb; /* KV_V_PUT, KV_V_GET, or KV_V_BAD: only ERR */
    uint8_t key;    /* k0..k7 (KEYS: another key) */
    uint32_t seq;   /* PUT: the write's number (its value is "v<seq>") */
    uint32_t at;    /* GET: when it was queued to kv (W.now) */
} req_t;

typedef struct conn {
    bool used, held, raw; /* raw: bytes off the vocabulary went in: answers are not paired */
    ckind_t kind;
    int f; /* C_FOLLOWER: which fake follower */
    os_handle_t h;
    bool blocked; /* our send got OS_EFULL: wait for WRITABLE */
    /* follower role, once the input held c: kv's lines on it may be read long after kv wrote
     * them, so an ACK read there is checked against the most of its log that was durable (and
     * the fake leader's) at any moment since the hold began (kv_peer.c, durable_changed) */
    bool windowed;
    uint32_t win_len, win_leaders;
    size_t out_len, in_len;
    char out[OUT_MAX];
    char in[IN_MAX];
    req_t req[REQS_MAX];
    int nreq;
} conn_t;

/* A fake follower (leader role), or the fake leader (follower role): a log of entries. */
typedef struct model {
    bool auto_answer; /* answers as kv's own follower does */
    uint32_t len;
    bool bad; /* a batch did not fit: NACK at its SYNC */
    uint32_t nack, matched;
    /* the highest ACK it sent to this life of kv, on any of its connections (a HELLO does not
     * take it back: those entries stay in its log), lowered when kv's lines replace them */
    uint32_t claimed;
    bool lied; /* it said words of the input's to this life of kv: it may have acked anything */
    kv_entry_t log[KV_LOG_MAX + 1];
} model_t;

typedef struct pending_connect {
    uint32_t req, addr;
    uint16_t port;
} pending_connect_t;

/* The peer: its channels to kv, its connections, what the input made of it. */
typedef struct kv_fake {
    os_ctx_t *ctx;
    os_handle_t boot, fs, tcp, file, listener, task;
    uint32_t kv_id;
    int kv_status;
    bool kv_exited;
    conn_t c[CONNS_MAX];
    pending_connect_t pc[8];
    int npc;
    bool net_trouble; /* connects wait for an op instead of being answered at once */
    bool fs_slow;     /* file requests wait for an op */
    bool fs_fail;     /* the next file request fails */
    os_event_t fs_q_ev[4];
    uint8_t fs_q_data[4][OS_MSG_MAX_DATA];
    int fs_q;
    bool honest; /* every replication line kv got was its protocol's own */
    uint64_t lines, oks, acks;
} kv_fake_t;

/* kv's role, from the prelude */
typedef struct kv_role {
    bool leader, bug;
    int npeers;
    char arg[128];
} kv_role_t;

/* the log file: as written (the fs server's cache) and as fsync'ed */
typedef struct kv_file {
    uint8_t data[FILE_MAX], synced[FILE_MAX];
    size_t size, synced_size, lo, hi; /* dirty range since the last fsync */
    size_t used;                      /* bytes past it are zero in both */
} kv_file_t;

/* what the clients' writes became (leader role) */
typedef struct kv_writes {
    uint32_t seq;                  /* writes sent */
    uint32_t now;                  /* a clock of the peer's sends and of the answers it reads */
    uint32_t sent_key[WRITES_MAX]; /* seq -> key + 1 (0: not a client write) */
    uint32_t sent_at[WRITES_MAX];  /* when the PUT was queued to kv */
    uint32_t acked_at[WRITES_MAX]; /* when its OK was read (0: not, or not yet) */
    bool refused[WRITES_MAX];      /* its answer was ERR: it never took effect */
} kv_writes_t;

extern bool verbose; /* FUZZ_VERBOSE */
extern fz_in_t *IN;  /* the input being read */
extern kv_fake_t P;
extern kv_role_t R;
extern kv_file_t F;
extern model_t M[FOLLOWERS + 1]; /* followers 0, 1; [FOLLOWERS]: the fake leader */
extern uint32_t leader_epoch;    /* the fake leader's */
extern int leader_conn;          /* the connection it speaks on, or -1 */
extern kv_writes_t W;
extern kv_entry_t sent[KV_LOG_MAX + 1]; /* the entries kv sent its followers, by index */
extern uint32_t sent_hi;                /* sent[1..sent_hi] may be in use */
extern const os_program_t kv_peer;      /* the peer's program: the first task sim boots */

/* abort() with what broke and the end of the console (kv's own lines say why). */
void check(bool ok, const char *what);
/* Queue bytes, a formatted line, entry i of log as an E line for kv on c; false (say) when they
 * do not fit in c's output (then nothing is queued; sayf and say_entry mark c raw). */
bool say(conn_t *c, const char *p, size_t n);
void sayf(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void say_entry(conn_t *c, const kv_entry_t *log, uint32_t i);
uint32_t last_epoch(const model_t *m);
/* A connection slot for channel h (-1: none free); closing one. */
int new_conn(os_handle_t h, ckind_t kind);
void drop_conn(int i);
/* A channel pair tagged with an interface. */
bool tagged_pair(const iface_t *ifc, os_handle_t *near, os_handle_t *far);
/* Answer the file requests a slow fs kept waiting. */
void fs_release(void);
/* Answer kv's connect: how 0 established, 1 refused, 2 opened then failed. */
void answer_connect(const pending_connect_t *pc, int how);
/* The input holds c: from now on its ACKs are checked against what was durable since (follower
 * role; windowed in conn_t). */
void hold_window(conn_t *c);

#endif
