/* recorder.c — the SQLite trace recorder: per-thread in-memory buffers drained by a writer thread. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <trace/recorder.h>
#include <trace/decode.h>

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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
#define TR_ROWS 64                  /* events per multi-row INSERT */
#define TR_STEAL_NS (100u * 1000u * 1000u) /* commit partial chunks at least this often */

typedef struct tr_chunk {
    struct tr_chunk *next;  /* queue or pool link (qmu) */
    size_t cap;             /* bytes of data[] */
    size_t read;            /* writer only: bytes of data[] already committed */
    atomic_size_t used;     /* bytes of data[] filled: owner stores (release), writer loads */
    unsigned char data[];   /* entries: tr_entry, payload, padding to 8 */
} tr_chunk;

typedef struct tr_entry {
    hal_trace_rec_t rec;   /* data pointer is meaningless here: payload follows */
} tr_entry;

/* One recording thread's state; only its owner writes it (or whoever holds mu). */
typedef struct tr_slot {
    _Atomic(tr_chunk *) cur;   /* chunk being filled or NULL; the writer loads it */
    size_t pos;                /* owner: bytes of cur filled (== cur->used) */
    atomic_uint_fast64_t recorded; /* owner stores, others load: no read-modify-write */
    atomic_uint_fast64_t dropped;
    pthread_mutex_t *mu;       /* NULL: one owner; else the shared overflow slot's lock */
} __attribute__((aligned(64))) tr_slot;

struct trace_recorder {
    hal_trace_sink_t sink;
    uint64_t id;              /* unique per open: the thread-local slot cache keys on it */
    atomic_uint nslots;       /* slots claimed (may exceed TR_SLOTS: those share overflow) */
    tr_slot slots[TR_SLOTS];
    tr_slot overflow;         /* threads past TR_SLOTS, under overflow_mu */
    pthread_mutex_t overflow_mu;

    /* Guarded by qmu: the writer's queue, the chunk pool, flush requests. */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;       /* writer: work queued, flush requested or stop */
    pthread_cond_t donecv;    /* flushers: the writer took everything up to a request */
    tr_chunk *queue_head, *queue_tail;
    tr_chunk *pool;           /* free standard-size chunks */
    size_t bytes;             /* memory held by all chunks */
    size_t peak;
    size_t limit;
    uint64_t flush_req;       /* flush requests made */
    uint64_t flush_done;      /* requests the writer has satisfied */
    bool stop;
    bool writer_exited;

    atomic_uint_fast64_t bad_frames;
    uint64_t written, batches; /* writer thread only (read after join or racy stats) */
    uint64_t writer_cpu_ns;    /* set when the writer ends */
    int exit_status;
    bool has_exit_status;

    /* Writer thread only. */
    sqlite3 *db;
    sqlite3_stmt *ins_event, *ins_events, *ins_spawn, *ins_exit, *ins_chan;
    char *path;
    char write_err[256];
    struct tr_key *sorted;    /* a batch's entries in seq order */
    size_t nsorted;
    pthread_t writer;
    bool writer_started;
    trace_recorder_stats *close_stats; /* filled by close (benchmarks) */
};

static atomic_uint_fast64_t next_recorder_id = 1;

/* This thread's slot in the recorder whose id matches (recorders come and go). */
static _Thread_local struct {
    uint64_t id;
    tr_slot *slot;
} tls_slot;

static const char *const schema_sql =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE run(id INTEGER PRIMARY KEY CHECK (id = 1), platform TEXT NOT NULL,"
    " seed INTEGER NOT NULL, commit_id TEXT, manifest TEXT, command TEXT,"
    " start_unix_ns INTEGER NOT NULL, start_time TEXT NOT NULL, end_unix_ns INTEGER,"
    " workers INTEGER NOT NULL, events INTEGER, dropped INTEGER NOT NULL DEFAULT 0,"
    " bad_frames INTEGER NOT NULL DEFAULT 0, exit_status INTEGER,"
    " complete INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE kinds(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    "CREATE TABLE interfaces(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    "CREATE TABLE tasks(id INTEGER PRIMARY KEY, name TEXT, parent INTEGER,"
    " spawned_seq INTEGER, exit_seq INTEGER, exit_status INTEGER);"
    "CREATE TABLE channels(endpoint INTEGER PRIMARY KEY, peer INTEGER NOT NULL,"
    " creator INTEGER NOT NULL, created_seq INTEGER NOT NULL, iface INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL,"
    " task INTEGER NOT NULL, kind INTEGER NOT NULL, chan INTEGER NOT NULL,"
    " peer INTEGER NOT NULL, iface INTEGER NOT NULL, type INTEGER NOT NULL,"
    " result INTEGER NOT NULL, len INTEGER NOT NULL, nhandles INTEGER NOT NULL,"
    " arg INTEGER NOT NULL, payload BLOB);";

/*
 * Built at close so that ingest only appends to the rowid tree. Readers scan
 * by seq (the rowid); replay and --task select by task.
 */
static const char *const index_sql =
    "CREATE INDEX IF NOT EXISTS events_task ON events(task, seq);";

static const struct {
    uint32_t id;
    const char *name;
} kind_names[] = {
#define TR_KIND_NAME(name, value) {value, #name},
    HAL_TRACE_KINDS(TR_KIND_NAME)
#undef TR_KIND_NAME
};

const char *trace_kind_name(uint32_t kind)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (kind_names[i].id == kind)
            return kind_names[i].name;
    return NULL;
}

uint32_t trace_kind_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (strcasecmp(kind_names[i].name, name) == 0)
            return kind_names[i].id;
    return 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- record(): the kernel side ---------------------------------------------------------- */

static size_t entry_size(uint32_t len)
{
    return (sizeof(tr_entry) + (size_t)len + 7u) & ~(size_t)7u;
}

/* qmu held. A chunk with room for need bytes, or NULL past the limit. */
static tr_chunk *chunk_get(trace_recorder *rec, size_t need)
{
    tr_chunk *c;
    size_t cap = need > TR_CHUNK ? need : TR_CHUNK;

    if (cap == TR_CHUNK && rec->pool) {
        c = rec->pool;
        rec->pool = c->next;
    } else {
        if (rec->bytes + cap > rec->limit)
            return NULL;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        rec->bytes += cap;
        if (rec->bytes > rec->peak)
            rec->peak = rec->bytes;
    }
    c->next = NULL;
    c->read = 0;
    atomic_store_explicit(&c->used, 0, memory_order_relaxed);
    return c;
}

/* qmu held. */
static void chunk_queue(trace_recorder *rec, tr_chunk *c)
{
    c->next = NULL;
    if (rec->queue_tail)
        rec->queue_tail->next = c;
    else
        rec->queue_head = c;
    rec->queue_tail = c;
    pthread_cond_signal(&rec->qcv);
}

/* qmu held; writer thread only (see the comment at the top). */
static void chunk_release(trace_recorder *rec, tr_chunk *c)
{
    if (c->cap == TR_CHUNK) {
        c->read = 0;
        atomic_store_explicit(&c->used, 0, memory_order_relaxed);
        c->next = rec->pool;
        rec->pool = c;
    } else {
        rec->bytes -= c->cap;
        free(c);
    }
}

/* First record of this thread into rec: claim a slot. */
static tr_slot *slot_claim(trace_recorder *rec)
{
    unsigned i = atomic_fetch_add_explicit(&rec->nslots, 1, memory_order_relaxed);
    tr_slot *s = i < TR_SLOTS ? &rec->slots[i] : &rec->overflow;

    tls_slot.id = rec->id;
    tls_slot.slot = s;
    return s;
}

/*
 * The slot's chunk has no room for need bytes: queue it and take a fresh one.
 * Returns it, or NULL past the buffer limit (the caller drops the record).
 */
static __attribute__((noinline)) tr_chunk *slot_refill(trace_recorder *rec, tr_slot *s,
                                                      size_t need)
{
    tr_chunk *old = atomic_load_explicit(&s->cur, memory_order_relaxed), *c;

    /* Cleared before queueing: once the writer pops old, no slot shows it. */
    atomic_store_explicit(&s->cur, NULL, memory_order_release);
    pthread_mutex_lock(&rec->qmu);
    if (old)
        chunk_queue(rec, old);
    c = chunk_get(rec, need);
    pthread_mutex_unlock(&rec->qmu);
    s->pos = 0;
    if (c)
        atomic_store_explicit(&s->cur, c, memory_order_release);
    return c;
}

static inline void slot_append(trace_recorder *rec, tr_slot *s, const hal_trace_rec_t *r)
{
    uint32_t len = r->data ? r->len : 0;
    size_t need = entry_size(len);
    tr_chunk *c = atomic_load_explicit(&s->cur, memory_order_relaxed);
    tr_entry *e;

    if (__builtin_expect(!c || c->cap - s->pos < need, 0)) {
        c = slot_refill(rec, s, need);
        if (!c) {
            atomic_store_explicit(&s->dropped,
                                  atomic_load_explicit(&s->dropped, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            return;
        }
    }
    e = (tr_entry *)(c->data + s->pos);
    e->rec = *r;
    e->rec.len = len;
    e->rec.data = NULL;
    if (len)
        memcpy(e + 1, r->data, len);
    s->pos += need;
    atomic_store_explicit(&c->used, s->pos, memory_order_release);
    atomic_store_explicit(&s->recorded,
                          atomic_load_explicit(&s->recorded, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void trace_recorder_record(trace_recorder *rec, const hal_trace_rec_t *r)
{
    tr_slot *s = tls_slot.id == rec->id ? tls_slot.slot : slot_claim(rec);

    if (__builtin_expect(s->mu == NULL, 1)) {
        slot_append(rec, s, r);
        return;
    }
    pthread_mutex_lock(s->mu);
    slot_append(rec, s, r);
    pthread_mutex_unlock(s->mu);
}

static void sink_record(void *self, const hal_trace_rec_t *r)
{
    trace_recorder_record(self, r);
}

static void sink_flush(void *self)
{
    trace_recorder_flush(self);
}

/* ---- the writer thread ---------------------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        seterr(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Bind one event's 13 columns starting at parameter base + 1. */
static void bind_event(sqlite3_stmt *st, int base, const tr_entry *e)
{
    const hal_trace_rec_t *r = &e->rec;

    sqlite3_bind_int64(st, base + 1, (sqlite3_int64)r->seq);
    sqlite3_bind_int64(st, base + 2, (sqlite3_int64)r->time_ns);
    sqlite3_bind_int64(st, base + 3, r->task);
    sqlite3_bind_int64(st, base + 4, r->kind);
    sqlite3_bind_int64(st, base + 5, r->chan);
    sqlite3_bind_int64(st, base + 6, r->peer);
    sqlite3_bind_int64(st, base + 7, r->iface);
    sqlite3_bind_int64(st, base + 8, r->type);
    sqlite3_bind_int64(st, base + 9, r->result);
    sqlite3_bind_int64(st, base + 10, r->len);
    sqlite3_bind_int64(st, base + 11, r->nhandles);
    sqlite3_bind_int64(st, base + 12, (sqlite3_int64)r->arg);
    if (r->len)
        sqlite3_bind_blob(st, base + 13, e + 1, (int)r->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, base + 13);
}

/* The tasks and channels rows a SPAWN, EXIT or CHAN_CREATE record makes. */
static int write_side(trace_recorder *rec, const tr_entry *e)
{
    const hal_trace_rec_t *r = &e->rec;
    sqlite3_stmt *st;
    int rc;

    switch (r->kind) {
    case HAL_TR_SPAWN:
        st = rec->ins_spawn;
        sqlite3_bind_int64(st, 1, r->task);
        if (r->len)
            sqlite3_bind_text(st, 2, (const char *)(e + 1),
                              (int)strnlen((const char *)(e + 1), r->len), SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)r->arg);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)r->seq);
        break;
    case HAL_TR_EXIT:
        st = rec->ins_exit;
        sqlite3_bind_int64(st, 1, r->task);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)r->seq);
        sqlite3_bind_int64(st, 3, r->result);
        break;
    case HAL_TR_CHAN_CREATE:
        st = rec->ins_chan;
        for (int side = 0; side < 2; side++) {
            sqlite3_bind_int64(st, 1, side ? r->peer : r->chan);
            sqlite3_bind_int64(st, 2, side ? r->chan : r->peer);
            sqlite3_bind_int64(st, 3, r->task);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)r->seq);
            sqlite3_bind_int64(st, 5, r->iface);
            rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                return -1;
        }
        return 0;
    default:
        return 0;
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* A batch entry: its seq first, so that sorting touches only this array. */
typedef struct tr_key {
    uint64_t seq;
    const tr_entry *e;
} tr_key;

/* A committed prefix taken from a chunk its owner is still filling. */
typedef struct tr_take {
    tr_chunk *c;
    size_t end; /* the fill level seen; c->read moves here once written */
} tr_take;

static int cmp_key(const void *a, const void *b)
{
    uint64_t x = ((const tr_key *)a)->seq, y = ((const tr_key *)b)->seq;
    return x < y ? -1 : x > y;
}

/*
 * Insert event i of the sorted batch: TR_ROWS rows per statement when i
 * starts a full group (fewer statement executions per row), else one row.
 */
static int write_event(trace_recorder *rec, size_t i, size_t n)
{
    sqlite3_stmt *st;
    int rc;

    if (i % TR_ROWS == 0 && n - i >= TR_ROWS) {
        st = rec->ins_events;
        for (int k = 0; k < TR_ROWS; k++)
            bind_event(st, k * 13, rec->sorted[i + (size_t)k].e);
    } else if (i % TR_ROWS == 0 || n - (i - i % TR_ROWS) < TR_ROWS) {
        st = rec->ins_event;
        bind_event(st, 0, rec->sorted[i].e);
    } else {
        return 0; /* inserted with its group */
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_CONSTRAINT ? 0 : -1;
}

/* Append the keys of the entries in [from, to) of c at rec->sorted + n: the new n, or SIZE_MAX. */
static size_t collect(trace_recorder *rec, const tr_chunk *c, size_t from, size_t to, size_t n)
{
    for (size_t off = from; off < to; n++) {
        const tr_entry *e = (const tr_entry *)(c->data + off);
        if (n == rec->nsorted) {
            size_t grown_n = n ? 2 * n : 16384;
            tr_key *grown = realloc(rec->sorted, grown_n * sizeof(*grown));
            if (!grown)
                return SIZE_MAX;
            rec->sorted = grown;
            rec->nsorted = grown_n;
        }
        rec->sorted[n].seq = e->rec.seq;
        rec->sorted[n].e = e;
        off += entry_size(e->rec.len);
    }
    return n;
}

/*
 * Commit the rest of each chunk of list and the taken prefixes in one
 * transaction, in seq order: threads' chunks interleave, and sorted inserts
 * keep SQLite appending at the right edge of the events b-tree. A seq range
 * split between two batches (one thread's record taken now, another's
 * slightly smaller seq still in its chunk) is harmless: rows are keyed by seq,
 * and readers scan by seq.
 */
static void write_batch(trace_recorder *rec, tr_chunk *list, const tr_take *part, size_t npart)
{
    size_t n = 0, i = 0;
    bool sorted = true;

    if (rec->write_err[0])
        return; /* the file failed: keep draining so record() never stalls */
    for (tr_chunk *c = list; c && n != SIZE_MAX; c = c->next)
        n = collect(rec, c, c->read, atomic_load_explicit(&c->used, memory_order_relaxed), n);
    for (size_t k = 0; k < npart && n != SIZE_MAX; k++)
        n = collect(rec, part[k].c, part[k].c->read, part[k].end, n);
    if (n == SIZE_MAX)
        seterr(rec->write_err, sizeof(rec->write_err), "writing events: out of memory");
    if (n == 0 || n == SIZE_MAX)
        return;
    for (i = 1; i < n && sorted; i++)
        sorted = rec->sorted[i - 1].seq < rec->sorted[i].seq;
    if (!sorted)
        qsort(rec->sorted, n, sizeof(*rec->sorted), cmp_key);
    if (exec_sql(rec->db, "BEGIN", rec->write_err, sizeof(rec->write_err)) != 0)
        return;
    for (i = 0; i < n; i++) {
        if (write_event(rec, i, n) != 0 || write_side(rec, rec->sorted[i].e) != 0) {
            seterr(rec->write_err, sizeof(rec->write_err), "writing events: %s",
                   sqlite3_errmsg(rec->db));
            exec_sql(rec->db, "ROLLBACK", NULL, 0);
            return;
        }
    }
    if (exec_sql(rec->db, "COMMIT", rec->write_err, sizeof(rec->write_err)) != 0)
        return;
    __atomic_store_n(&rec->written, rec->written + n, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->batches, rec->batches + 1, __ATOMIC_RELAXED);
}

static void take_prefix(tr_slot *s, tr_take *part, size_t *npart)
{
    tr_chunk *c = atomic_load_explicit(&s->cur, memory_order_acquire);
    if (!c)
        return;
    size_t end = atomic_load_explicit(&c->used, memory_order_acquire);
    if (end > c->read)
        part[(*npart)++] = (tr_take){c, end};
}

/* The filled prefixes of every slot's current chunk not yet written. */
static size_t take_partials(trace_recorder *rec, tr_take *part)
{
    unsigned ns = atomic_load_explicit(&rec->nslots, memory_order_acquire);
    size_t npart = 0;

    for (unsigned i = 0; i < ns && i < TR_SLOTS; i++)
        take_prefix(&rec->slots[i], part, &npart);
    if (ns > TR_SLOTS)
        take_prefix(&rec->overflow, part, &npart);
    return npart;
}

static void *writer_main(void *arg)
{
    trace_recorder *rec = arg;
    uint64_t last_take = clock_ns(CLOCK_MONOTONIC);
    tr_take part[TR_SLOTS + 1];

    pthread_setname_np(pthread_self(), "trace-writer");
    pthread_mutex_lock(&rec->qmu);
    for (;;) {
        uint64_t req = rec->flush_req;
        bool stopping = rec->stop;
        bool take = stopping || req != rec->flush_done || clock_ns(CLOCK_MONOTONIC) - last_take >= TR_STEAL_NS;
        if (!rec->queue_head && !take) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&rec->qcv, &rec->qmu, &ts);
            continue;
        }
        tr_chunk *list = rec->queue_head;
        rec->queue_head = rec->queue_tail = NULL;
        pthread_mutex_unlock(&rec->qmu);

        /* After the pop: a chunk popped here is no longer in any slot. */
        size_t npart = take ? take_partials(rec, part) : 0;
        write_batch(rec, list, part, npart);
        for (size_t k = 0; k < npart; k++)
            part[k].c->read = part[k].end;
        if (take)
            last_take = clock_ns(CLOCK_MONOTONIC);

        pthread_mutex_lock(&rec->qmu);
        while (list) {
            tr_chunk *next = list->next;
            chunk_release(rec, list);
            list = next;
        }
        if (take) {
            rec->flush_done = req;
            pthread_cond_broadcast(&rec->donecv);
            if (stopping)
                break;
        }
    }
    rec->writer_exited = true;
    pthread_cond_broadcast(&rec->donecv);
    pthread_mutex_unlock(&rec->qmu);
    rec->writer_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

void trace_recorder_flush(trace_recorder *rec)
{
    pthread_mutex_lock(&rec->qmu);
    if (!rec->stop) {
        uint64_t mine = ++rec->flush_req;
        pthread_cond_signal(&rec->qcv);
        /* The writer took every queued chunk and every slot's prefix after we asked. */
        while (!rec->writer_exited && rec->flush_done < mine)
            pthread_cond_wait(&rec->donecv, &rec->qmu);
    }
    pthread_mutex_unlock(&rec->qmu);
}

/* ---- open and close ------------------------------------------------------------------- */

static int prepare(trace_recorder *rec, sqlite3_stmt **st, const char *sql, char *err,
                   size_t errlen)
{
    if (sqlite3_prepare_v3(rec->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        seterr(err, errlen, "trace %s: %s", rec->path, sqlite3_errmsg(rec->db));
        return -1;
    }
    return 0;
}

static void remove_file(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char buf[4096];

    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", path, suffix[i]);
        unlink(buf);
    }
}

static int write_header(trace_recorder *rec, const trace_run_info *run, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char ver[16], iso[64];
    uint64_t now = clock_ns(CLOCK_REALTIME);
    time_t secs = (time_t)(now / 1000000000u);
    struct tm tm;
    int rc;

    if (exec_sql(rec->db, schema_sql, err, errlen) != 0)
        return -1;
    snprintf(ver, sizeof(ver), "%d", TRACE_SCHEMA_VERSION);
    gmtime_r(&secs, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);

    if (prepare(rec, &st, "INSERT INTO meta VALUES('schema_version', ?1), ('format', 'orrery-trace'),"
                          " ('writer', 'orrery trace recorder')",
                err, errlen) != 0)
        return -1;
    sqlite3_bind_text(st, 1, ver, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto fail;

    if (prepare(rec, &st, "INSERT INTO run(id, platform, seed, commit_id, manifest, command,"
                          " start_unix_ns, start_time, workers) VALUES(1,?,?,?,?,?,?,?,?)",
                err, errlen) != 0)
        return -1;
    sqlite3_bind_text(st, 1, run && run->platform ? run->platform : "hosted", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, run ? (sqlite3_int64)run->seed : 0);
    if (run && run->commit)
        sqlite3_bind_text(st, 3, run->commit, -1, SQLITE_TRANSIENT);
    if (run && run->manifest)
        sqlite3_bind_text(st, 4, run->manifest,
                          run->manifest_len ? (int)run->manifest_len : -1, SQLITE_TRANSIENT);
    if (run && run->command)
        sqlite3_bind_text(st, 5, run->command, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
    sqlite3_bind_text(st, 7, iso, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, run && run->workers ? run->workers : 1);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto fail;

    if (prepare(rec, &st, "INSERT INTO kinds VALUES(?, ?)", err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        sqlite3_bind_int64(st, 1, kind_names[i].id);
        sqlite3_bind_text(st, 2, kind_names[i].name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            goto fail;
        }
    }
    sqlite3_finalize(st);
    return 0;
fail:
    seterr(err, errlen, "trace %s: %s", rec->path, sqlite3_errmsg(rec->db));
    return -1;
}

static void recorder_free(trace_recorder *rec)
{
    for (int i = 0; i < TR_SLOTS; i++)
        free(atomic_load(&rec->slots[i].cur));
    free(atomic_load(&rec->overflow.cur));
    pthread_mutex_destroy(&rec->overflow_mu);
    while (rec->pool) {
        tr_chunk *c = rec->pool;
        rec->pool = c->next;
        free(c);
    }
    while (rec->queue_head) {
        tr_chunk *c = rec->queue_head;
        rec->queue_head = c->next;
        free(c);
    }
    sqlite3_finalize(rec->ins_event);
    sqlite3_finalize(rec->ins_events);
    sqlite3_finalize(rec->ins_spawn);
    sqlite3_finalize(rec->ins_exit);
    sqlite3_finalize(rec->ins_chan);
    if (rec->db)
        sqlite3_close(rec->db);
    pthread_mutex_destroy(&rec->qmu);
    pthread_cond_destroy(&rec->qcv);
    pthread_cond_destroy(&rec->donecv);
    free(rec->sorted);
    free(rec->path);
    free(rec);
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/*
 * Without memory statistics SQLite's allocator takes no global mutex: the
 * writer mallocs per row. Only possible before SQLite's first use in the
 * process (else SQLITE_MISUSE, harmless: the statistics stay on).
 */
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* "INSERT OR IGNORE INTO events VALUES(?,...),(?,...)...": TR_ROWS rows. */
static const char *events_multi_sql(char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "INSERT OR IGNORE INTO events VALUES");
    for (int k = 0; k < TR_ROWS && off < size; k++)
        off += (size_t)snprintf(buf + off, size - off, "%s(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                k ? "," : "");
    return buf;
}

int trace_recorder_open(const char *path, const trace_run_info *run, trace_recorder **out,
                        char *err, size_t errlen)
{
    trace_recorder *rec = calloc(1, sizeof(*rec));
    char multi[64 + TR_ROWS * 32];

    *out = NULL;
    if (!rec || !(rec->path = strdup(path))) {
        free(rec);
        seterr(err, errlen, "trace %s: out of memory", path);
        return -1;
    }
    rec->id = atomic_fetch_add(&next_recorder_id, 1);
    pthread_mutex_init(&rec->overflow_mu, NULL);
    rec->overflow.mu = &rec->overflow_mu;
    pthread_mutex_init(&rec->qmu, NULL);
    pthread_cond_init(&rec->qcv, NULL);
    pthread_cond_init(&rec->donecv, NULL);
    rec->limit = 256u << 20;
    rec->sink.self = rec;
    rec->sink.record = sink_record;
    rec->sink.flush = sink_flush;

    pthread_once(&sqlite_once, sqlite_setup);
    remove_file(path);
    if (sqlite3_open_v2(path, &rec->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) !=
        SQLITE_OK) {
        seterr(err, errlen, "trace %s: cannot create: %s", path,
               rec->db ? sqlite3_errmsg(rec->db) : "out of memory");
        recorder_free(rec);
        return -1;
    }
    /*
     * WAL with synchronous=OFF: each batch is one append to the log, nothing
     * is fsynced, and a process killed mid-run leaves every committed batch
     * readable. At close the log is checkpointed and the file switched back to
     * a single-file rollback journal.
     */
    if (exec_sql(rec->db,
                 "PRAGMA page_size=65536; PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                 " PRAGMA wal_autocheckpoint=1024; PRAGMA cache_size=-65536;"
                 " PRAGMA temp_store=MEMORY",
                 err, errlen) != 0 ||
        write_header(rec, run, err, errlen) != 0 ||
        prepare(rec, &rec->ins_event,
                "INSERT OR IGNORE INTO events VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", err,
                errlen) != 0 ||
        prepare(rec, &rec->ins_events, events_multi_sql(multi, sizeof(multi)), err, errlen) != 0 ||
        prepare(rec, &rec->ins_spawn,
                "INSERT INTO tasks(id, name, parent, spawned_seq) VALUES(?1,?2,?3,?4)"
                " ON CONFLICT(id) DO UPDATE SET name=excluded.name, parent=excluded.parent,"
                " spawned_seq=excluded.spawned_seq",
                err, errlen) != 0 ||
        prepare(rec, &rec->ins_exit,
                "INSERT INTO tasks(id, exit_seq, exit_status) VALUES(?1,?2,?3)"
                " ON CONFLICT(id) DO UPDATE SET exit_seq=excluded.exit_seq,"
                " exit_status=excluded.exit_status",
                err, errlen) != 0 ||
        prepare(rec, &rec->ins_chan,
                "INSERT OR REPLACE INTO channels(endpoint, peer, creator, created_seq, iface)"
                " VALUES(?,?,?,?,?)",
                err, errlen) != 0) {
        if (err && errlen && !strstr(err, path)) {
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "trace %s: %s", path, err);
            seterr(err, errlen, "%s", tmp);
        }
        recorder_free(rec);
        remove_file(path);
        return -1;
    }
    if (pthread_create(&rec->writer, NULL, writer_main, rec) != 0) {
        seterr(err, errlen, "trace %s: cannot start the writer thread", path);
        recorder_free(rec);
        remove_file(path);
        return -1;
    }
    rec->writer_started = true;
    *out = rec;
    return 0;
}

void trace_recorder_set_buffer_limit(trace_recorder *rec, size_t bytes)
{
    pthread_mutex_lock(&rec->qmu);
    rec->limit = bytes;
    pthread_mutex_unlock(&rec->qmu);
}

const hal_trace_sink_t *trace_recorder_sink(trace_recorder *rec)
{
    return &rec->sink;
}

void trace_recorder_add_bad_frames(trace_recorder *rec, uint64_t n)
{
    atomic_fetch_add_explicit(&rec->bad_frames, n, memory_order_relaxed);
}

void trace_recorder_set_exit_status(trace_recorder *rec, int status)
{
    pthread_mutex_lock(&rec->qmu);
    rec->exit_status = status;
    rec->has_exit_status = true;
    pthread_mutex_unlock(&rec->qmu);
}

void trace_recorder_stats_at_close(trace_recorder *rec, trace_recorder_stats *out)
{
    rec->close_stats = out;
}

void trace_recorder_get_stats(trace_recorder *rec, trace_recorder_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < TR_SLOTS; i++) {
        out->recorded += atomic_load_explicit(&rec->slots[i].recorded, memory_order_relaxed);
        out->dropped += atomic_load_explicit(&rec->slots[i].dropped, memory_order_relaxed);
    }
    out->recorded += atomic_load_explicit(&rec->overflow.recorded, memory_order_relaxed);
    out->dropped += atomic_load_explicit(&rec->overflow.dropped, memory_order_relaxed);
    out->bad_frames = atomic_load(&rec->bad_frames);
    pthread_mutex_lock(&rec->qmu);
    out->written = __atomic_load_n(&rec->written, __ATOMIC_RELAXED);
    out->batches = __atomic_load_n(&rec->batches, __ATOMIC_RELAXED);
    out->buffer_bytes = rec->bytes;
    out->buffer_peak = rec->peak;
    out->writer_cpu_ns = rec->writer_cpu_ns;
    pthread_mutex_unlock(&rec->qmu);
}

/* Name the interfaces the events mention, from the decoder's registry. */
static int fill_interfaces(trace_recorder *rec)
{
    sqlite3_stmt *sel = NULL, *ins = NULL;
    int rc = SQLITE_OK;

    if (sqlite3_prepare_v2(rec->db, "SELECT DISTINCT iface FROM events WHERE iface <> 0", -1,
                           &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(rec->db, "INSERT OR REPLACE INTO interfaces VALUES(?, ?)", -1, &ins,
                           NULL) != SQLITE_OK) {
        rc = SQLITE_ERROR;
        goto out;
    }
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        uint32_t id = (uint32_t)sqlite3_column_int64(sel, 0);
        const char *name = trace_iface_name(id);
        if (!name)
            continue;
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_text(ins, 2, name, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            rc = SQLITE_ERROR;
            break;
        }
        sqlite3_reset(ins);
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    return rc == SQLITE_OK ? 0 : -1;
}

int trace_recorder_close(trace_recorder *rec, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char buf[256] = "";
    uint64_t close_cpu;
    int ret = 0;

    if (!rec)
        return 0;
    close_cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    pthread_mutex_lock(&rec->qmu);
    rec->stop = true;
    pthread_cond_signal(&rec->qcv);
    pthread_mutex_unlock(&rec->qmu);
    if (rec->writer_started)
        pthread_join(rec->writer, NULL);

    if (rec->write_err[0]) {
        snprintf(buf, sizeof(buf), "%s", rec->write_err);
        ret = -1;
    }
    /* Final counts and indexes in one transaction, then back to a single file. */
    if (exec_sql(rec->db, "BEGIN", buf, sizeof(buf)) == 0 &&
        exec_sql(rec->db, index_sql, buf, sizeof(buf)) == 0 &&
        exec_sql(rec->db,
                 "UPDATE channels SET iface = m.iface FROM (SELECT chan, max(iface) AS iface"
                 " FROM events WHERE iface <> 0 AND kind IN (4, 5) GROUP BY chan) AS m"
                 " WHERE channels.endpoint = m.chan AND channels.iface = 0",
                 buf, sizeof(buf)) == 0 &&
        fill_interfaces(rec) == 0 &&
        sqlite3_prepare_v2(rec->db,
                           "UPDATE run SET end_unix_ns=?1, events=(SELECT count(*) FROM events),"
                           " dropped=?2, bad_frames=?3, exit_status=?4, complete=1 WHERE id=1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)clock_ns(CLOCK_REALTIME));
        trace_recorder_stats now;
        trace_recorder_get_stats(rec, &now);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)now.dropped);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)atomic_load(&rec->bad_frames));
        if (rec->has_exit_status)
            sqlite3_bind_int64(st, 4, rec->exit_status);
        if (sqlite3_step(st) != SQLITE_DONE || exec_sql(rec->db, "COMMIT", buf, sizeof(buf)))
            ret = -1;
        sqlite3_finalize(st);
    } else {
        ret = -1;
    }
    if (ret == 0 &&
        exec_sql(rec->db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE", buf,
                 sizeof(buf)) != 0)
        ret = -1;
    {
        close_cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - close_cpu;
        if (rec->close_stats) {
            trace_recorder_get_stats(rec, rec->close_stats);
            rec->close_stats->writer_cpu_ns += close_cpu;
        }
    }
    if (ret != 0) {
        if (!buf[0])
            snprintf(buf, sizeof(buf), "%s", sqlite3_errmsg(rec->db));
        seterr(err, errlen, "trace %s: %s", rec->path, buf);
    }
    recorder_free(rec);
    return ret;
}
