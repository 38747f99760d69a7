/* recorder_int.h — recorder internals shared by recorder.c and writer.c (the writer thread). */
#ifndef TRACE_RECORDER_INT_H
#define TRACE_RECORDER_INT_H

#include <trace/outpath.h>
#include <trace/recorder.h>

#include <hal/trace.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/*
 * record() runs on kernel workers with kernel locks held, so it only copies.
 * Each recording thread claims a slot of its own (a thread-local pointer
 * says which) and appends the record and its payload to the slot's current
 * chunk with no lock and no atomic read-modify-write: after each entry the
 * owner publishes the chunk's fill level with a release store (a plain store
 * on x86), and counts in its own cache line. Only a full chunk takes qmu: it
 * goes on the writer's queue and a fresh one comes from the pool, or is
 * allocated while the total stays under the buffer limit; past it the record
 * is dropped and counted.
 *
 * The writer never takes a chunk away from its owner. To commit records still
 * in a partially filled chunk (every TR_STEAL_NS, at flush and at close) it
 * reads the slot's chunk and fill level with acquire loads and commits the
 * bytes between what it already wrote from that chunk (`read`, writer-only)
 * and the fill level, while the owner goes on appending past it. When the
 * owner queues that chunk later, the writer commits only the rest. Chunks go
 * back to the pool only from the writer thread, so a chunk the writer reads
 * through a slot cannot be recycled under it. An owner clears its slot before
 * queueing its chunk, so a chunk the writer has popped from the queue is never
 * also seen through a slot.
 *
 * Threads past TR_SLOTS share one more slot under a mutex (the same protocol,
 * with the mutex standing in for single ownership).
 */
#define TR_SLOTS 64
#define TR_CHUNK (512u * 1024u)
/*
 * The writer keeps chunks mapped ahead in the pool (within the buffer
 * limit), so that a worker whose chunk fills takes a populated one instead
 * of mapping it under qmu itself (a fresh chunk's pages cost the worker
 * about as much as a round trip per 1000 records). It starts with
 * TR_POOL_AHEAD and doubles its reserve, up to TR_POOL_MAX, each time a
 * worker found the pool empty: a burst the writer cannot keep up with is
 * then absorbed by chunks mapped beforehand.
 */
#define TR_POOL_AHEAD 8u
#define TR_POOL_MAX 128u
#define TR_ROWS 64                        /* events per multi-row INSERT */
#define TR_STEAL_NS (50u * 1000u * 1000u) /* commit partial chunks at least this often */
/*
 * A transaction ends after this long or this many events, whatever is left
 * of the batch: a backlog (the writer fell behind, a checkpoint stalled it)
 * is committed in steps, so a SIGKILL loses one step, not the backlog. With
 * TR_STEAL_NS this bounds what a kill loses to about 100 ms of records while
 * the writer keeps up.
 */
#define TR_TXN_NS (50u * 1000u * 1000u)
#define TR_TXN_ROWS 65536u

typedef struct tr_chunk {
    struct tr_chunk *next; /* queue or pool link (qmu) */
    size_t cap;            /* bytes of data[] */
    size_t read;           /* writer only: bytes of data[] already committed */
    uint32_t slot;         /* the slot filling it (TR_SLOTS: the overflow slot): capture.slot */
    atomic_size_t used;    /* bytes of data[] filled: owner stores (release), writer loads */
    unsigned char data[];  /* entries, encoded (tr_entry_encode) */
} tr_chunk;

/*
 * One record as the expander reads it: hal_trace_rec_t's fields under their
 * names, without its data pointer (the payload follows the entry, padded to
 * 8). It is also capture block format 1: what chunks held, and blocks stored,
 * until records were encoded (format 2, below).
 */
typedef struct tr_entry {
    uint64_t seq, time_ns, arg; /* as in hal_trace_rec_t */
    uint64_t gseq;              /* events.seq: seq, or with nodes the order of arrival */
    uint32_t kind, task, chan, peer, type;
    int32_t result;
    uint32_t len, nhandles, iface;
    uint32_t node; /* events.node: 0 without nodes */
} tr_entry;

/* One recording thread's state; only its owner writes it (or whoever holds mu). */
typedef struct tr_slot {
    _Atomic(tr_chunk *) cur;       /* chunk being filled or NULL; the writer loads it */
    size_t pos;                    /* owner: bytes of cur filled (== cur->used) */
    atomic_uint_fast64_t recorded; /* owner stores, others load: no read-modify-write */
    atomic_uint_fast64_t dropped;
    pthread_mutex_t *mu; /* NULL: one owner; else the shared overflow slot's lock */
} __attribute__((aligned(64))) tr_slot;

struct trace_recorder {
    hal_trace_sink_t sink;
    uint64_t id;        /* unique per open: the thread-local slot cache keys on it */
    atomic_uint nslots; /* slots claimed (may exceed TR_SLOTS: those share overflow) */
    tr_slot slots[TR_SLOTS];
    tr_slot overflow; /* threads past TR_SLOTS, under overflow_mu */
    pthread_mutex_t overflow_mu;

    /* Guarded by qmu: the writer's queue, the chunk pool, flush requests. */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;    /* writer: work queued, flush requested or stop */
    pthread_cond_t donecv; /* flushers: the writer took everything up to a request */
    tr_chunk *queue_head, *queue_tail;
    tr_chunk *pool;     /* free standard-size chunks */
    size_t npool;       /* chunks in the pool */
    size_t pool_target; /* the writer maps ahead up to this many */
    bool starved;       /* a worker mapped a standard chunk itself since the last fill */
    size_t bytes;       /* memory held by all chunks */
    size_t peak;
    size_t limit;
    uint64_t expand_duty; /* under qmu: trace_recorder_set_expand_duty */
    uint64_t flush_req;   /* flush requests made */
    uint64_t flush_done;  /* requests the writer has satisfied */
    uint64_t expand_req;  /* the last request that wants events rows (trace_recorder_flush) */
    bool stop;
    bool writer_exited;
    trace_recorder_faults faults;
    trace_recorder_faults wfaults; /* the writer's copy, taken under qmu */
    uint64_t allocs;               /* buffer allocations made (faults.alloc_ok) */

    atomic_uint_fast64_t bad_frames;

    /*
     * Nodes (trace_recorder_set_nodes): set before the first record, read by
     * the writer after it pops a batch (qmu orders them). With nodes, record()
     * numbers the records itself (gseq), because each node's kernel numbers
     * its own from 1.
     */
    char (*node_names)[32];
    char **node_manifests; /* NULL, or one per node (NULL: none given) */
    size_t *node_manifest_len;
    size_t nnodes;
    atomic_uint_fast64_t gseq; /* the last global seq given */
    atomic_bool any_record;    /* a record came: set_nodes is too late */
    bool nodes_written;        /* writer only: the nodes table is filled */
    uint64_t written, batches; /* writer thread only (read after join or racy stats) */
    uint64_t lost;             /* writer only: records of failed transactions */
    uint64_t max_txn_rows;     /* writer only */
    uint64_t txns;             /* writer only: transactions begun (faults.fail_txn) */
    uint64_t writer_cpu_ns;    /* set when the writer ends */
    int exit_status;
    bool has_exit_status;

    /* Writer thread only. */
    sqlite3 *db;
    sqlite3_stmt *ins_block, *upd_progress;
    int capture_fd;               /* the capture file (capture_int.h), -1 when none is open */
    uint64_t capture_end;         /* writer only: its size, where the next block goes */
    struct tr_expander *expander; /* writer thread, then close */
    char *path;                   /* as the caller gave it (messages) */
    trace_out out;                /* the partial file being written and where it goes */
    char notice[2 * PATH_MAX + 128];
    char write_err[256]; /* the first failure of the writer */
    pthread_t writer;
    bool writer_started;
    bool remove_partial; /* open failed: the partial file holds nothing worth keeping */
    trace_recorder_stats *close_stats; /* filled by close (benchmarks) */
};

/* A tr_entry and its payload, padded to 8: format 1's entry, the expander's. */
static inline size_t tr_entry_size(uint32_t len)
{
    return (sizeof(tr_entry) + (size_t)len + 7u) & ~(size_t)7u;
}

/*
 * Capture block format 2, the records as a chunk holds them: each one
 *
 *   size     varint: the bytes that follow (head and payload)
 *   flags    1 byte: bit 0, gseq follows (else gseq = seq); bit 1, node
 *            follows (else 0); the other bits 0
 *   seq, time_ns, kind, task, chan, peer, type, result (zigzag), len,
 *   nhandles, iface, arg   varints
 *   gseq, node             varints, when flagged
 *   payload  len bytes
 *
 * Varints are LEB128: 7 bits a byte, low first, the high bit set on every
 * byte but the last. A round trip's record (an 8-byte payload) takes about
 * 28 bytes where format 1 took 80: the worker writes fewer lines and the
 * writer copies fewer bytes, which is what a same-worker round trip paid for
 * (docs/trace-format.md, "Round 22").
 */
#define TR_ENTRY_HEAD_MAX 96            /* size 3, flags 1, 64-bit varints 4 x 10, 32-bit 10 x 5 */
#define TR_ENTRY_PAYLOAD_MAX (1u << 20) /* record() drops (and counts) a larger payload */
#define TR_ENTRY_GSEQ 1u
#define TR_ENTRY_NODE 2u

static inline unsigned char *tr_put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/*
 * A 64-bit varint without a loop: the 7-bit groups spread over the bytes of
 * one word and the continuation bits masked in, stored as 8 bytes (the room
 * after p is the caller's to give) of which the varint's are kept. Values of
 * 2^56 and more take the loop.
 */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tr_put_varint64 stores a word");

static inline unsigned char *tr_put_varint64(unsigned char *p, uint64_t v)
{
    if (__builtin_expect(v >> 56 != 0, 0))
        return tr_put_varint(p, v);
    uint64_t x = (v & 0x7full) | (v << 1 & 0x7f00ull) | (v << 2 & 0x7f0000ull) |
                 (v << 3 & 0x7f000000ull) | (v << 4 & 0x7f00000000ull) |
                 (v << 5 & 0x7f0000000000ull) | (v << 6 & 0x7f000000000000ull) |
                 (v << 7 & 0x7f00000000000000ull);
    unsigned n = v ? (unsigned)(70 - __builtin_clzll(v)) / 7 : 1; /* bytes: ceil(bits / 7) */
    x |= 0x8080808080808080ull & ((1ull << (8 * (n - 1))) - 1);
    memcpy(p, &x, 8);
    return p + n;
}

/* The common case first: ids, kinds and lengths are small. */
static inline unsigned char *tr_put_small(unsigned char *p, uint32_t v)
{
    if (__builtin_expect(v < 0x80, 1)) {
        *p = (unsigned char)v;
        return p + 1;
    }
    return tr_put_varint(p, v);
}

/*
 * Encode r (its payload len bytes at r->data) at p, at most TR_ENTRY_HEAD_MAX
 * + len bytes, all of which p must have room for (seq and time are stored as
 * whole words): the end. The head is written in place after one byte kept for
 * the size; an entry of 128 bytes or more moves it along to make room for a
 * three-byte size (LEB128 with padding: 0x80 bytes continue, so any reader
 * of varints takes it).
 */
static inline unsigned char *tr_entry_encode(unsigned char *p, const hal_trace_rec_t *r,
                                             uint32_t len, uint64_t gseq, uint32_t node)
{
    unsigned char *h = p + 1;
    size_t size;

    *h++ = (unsigned char)((gseq != r->seq ? TR_ENTRY_GSEQ : 0) | (node ? TR_ENTRY_NODE : 0));
    h = tr_put_varint64(h, r->seq);
    h = tr_put_varint64(h, r->time_ns);
    h = tr_put_small(h, r->kind);
    h = tr_put_small(h, r->task);
    h = tr_put_small(h, r->chan);
    h = tr_put_small(h, r->peer);
    h = tr_put_small(h, r->type);
    h = tr_put_small(h, ((uint32_t)r->result << 1) ^ (uint32_t)(r->result >> 31));
    h = tr_put_small(h, len);
    h = tr_put_small(h, r->nhandles);
    h = tr_put_small(h, r->iface);
    h = r->arg < 0x80 ? (*h = (unsigned char)r->arg, h + 1) : tr_put_varint(h, r->arg);
    if (__builtin_expect(gseq != r->seq, 0))
        h = tr_put_varint(h, gseq);
    if (__builtin_expect(node != 0, 0))
        h = tr_put_small(h, node);
    size = (size_t)(h - (p + 1)) + len;
    if (__builtin_expect(size < 0x80, 1)) {
        *p = (unsigned char)size;
    } else {
        memmove(p + 3, p + 1, (size_t)(h - (p + 1)));
        h += 2;
        p[0] = (unsigned char)(size | 0x80);
        p[1] = (unsigned char)((size >> 7) | 0x80);
        p[2] = (unsigned char)(size >> 14); /* < 2^21: TR_ENTRY_PAYLOAD_MAX */
    }
    if (len)
        memcpy(h, r->data, len);
    return h + len;
}

/*
 * Decode the format 2 entry at p (avail bytes there) into *e, its payload at
 * *payload: its size in the block, or 0 with why (cut short, a field out of
 * range, sizes that do not agree, an unknown flag).
 */
size_t tr_entry_decode(const unsigned char *p, size_t avail, tr_entry *e,
                       const unsigned char **payload, char *why, size_t whylen);

/* A varint the recorder wrote itself (no bounds to check), *q moved past it. */
static inline uint64_t tr_get_own_varint(const unsigned char **q)
{
    uint64_t v = 0;
    unsigned shift = 0;

    do
        v |= (uint64_t)(**q & 0x7f) << shift, shift += 7;
    while (*(*q)++ & 0x80);
    return v;
}

/* The writer, walking its own chunk: the size of the entry at p, and its gseq. */
static inline size_t tr_entry_skip(const unsigned char *p, uint64_t *gseq)
{
    const unsigned char *q = p;
    uint64_t size = tr_get_own_varint(&q), v;
    unsigned char flags;

    size += (uint64_t)(q - p);
    if (gseq) {
        flags = *q++;
        v = tr_get_own_varint(&q); /* seq */
        if (flags & TR_ENTRY_GSEQ) {
            tr_entry e;
            const unsigned char *pl;
            (void)tr_entry_decode(p, (size_t)size, &e, &pl, NULL, 0);
            v = e.gseq;
        }
        *gseq = v;
    }
    return (size_t)size;
}

static inline uint64_t tr_clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* recorder.c */
void tr_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tr_chunk_release(trace_recorder *rec, tr_chunk *c); /* qmu held; writer thread only */
void tr_pool_fill(trace_recorder *rec); /* qmu held (dropped meanwhile); writer thread only */

/* writer.c */
int tr_exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen);
int tr_write_nodes(trace_recorder *rec); /* inside a transaction; writer thread or close */
void *tr_writer_main(void *rec);

#endif
