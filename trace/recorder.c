/* recorder.c — the SQLite trace recorder: per-thread buffers, open and close (writer.c drains). */
#include "capture_int.h"

#include <trace/decode.h>

#include <os/errno.h>

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

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
    " complete INTEGER NOT NULL DEFAULT 0, commit_unix_ns INTEGER);"
    "CREATE TABLE kinds(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    "CREATE TABLE interfaces(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    /*
     * Schema 3: several nodes (kernels) in one file. Task ids and endpoints
     * restart per node, so they are keyed with their node; events.seq is the
     * file's own order, node_seq the record's seq on its node. A trace without
     * nodes has an empty nodes table and node 0 everywhere (node_seq = seq).
     */
    "CREATE TABLE nodes(id INTEGER PRIMARY KEY, name TEXT NOT NULL, manifest TEXT);"
    "CREATE TABLE tasks(id INTEGER NOT NULL, name TEXT, parent INTEGER,"
    " spawned_seq INTEGER, exit_seq INTEGER, exit_status INTEGER,"
    " node INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(node, id));"
    "CREATE TABLE channels(endpoint INTEGER NOT NULL, peer INTEGER NOT NULL,"
    " creator INTEGER NOT NULL, created_seq INTEGER NOT NULL, iface INTEGER NOT NULL DEFAULT 0,"
    " node INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(node, endpoint));"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL,"
    " task INTEGER NOT NULL, kind INTEGER NOT NULL, chan INTEGER NOT NULL,"
    " peer INTEGER NOT NULL, iface INTEGER NOT NULL, type INTEGER NOT NULL,"
    " result INTEGER NOT NULL, len INTEGER NOT NULL, nhandles INTEGER NOT NULL,"
    " arg INTEGER NOT NULL, payload BLOB, node INTEGER NOT NULL DEFAULT 0,"
    " node_seq INTEGER NOT NULL);"
    /* Kept up as the capture table is expanded, off the kernel's path (a task's rows by seq). */
    "CREATE INDEX events_task ON events(task);";

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

void tr_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- record(): the kernel side ---------------------------------------------------------- */

/*
 * Chunk memory comes straight from mmap with its pages populated: a fresh
 * chunk's first touches would otherwise fault once per page on the kernel
 * worker that records into it (128 faults per chunk, each an exception and a
 * trip through the host kernel: in a profile of `orrery bench trace` they
 * cost the workers more than copying the records). MAP_POPULATE makes that
 * one system call, and a chunk never goes back to malloc's heap.
 */
static tr_chunk *chunk_map(size_t cap)
{
    void *p = mmap(NULL, sizeof(tr_chunk) + cap, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void chunk_unmap(tr_chunk *c)
{
    if (c)
        munmap(c, sizeof(*c) + c->cap);
}

/* qmu held. A chunk with room for need bytes, or NULL past the limit. */
static tr_chunk *chunk_get(trace_recorder *rec, size_t need)
{
    tr_chunk *c;
    size_t cap = need > TR_CHUNK ? need : TR_CHUNK;

    if (cap == TR_CHUNK && rec->pool) {
        c = rec->pool;
        rec->pool = c->next;
        rec->npool--;
    } else {
        if (cap == TR_CHUNK)
            rec->starved = true;
        if (rec->bytes + cap > rec->limit)
            return NULL;
        if (rec->faults.alloc_ok && rec->allocs >= rec->faults.alloc_ok)
            return NULL;
        rec->allocs++;
        c = chunk_map(cap);
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
void tr_chunk_release(trace_recorder *rec, tr_chunk *c)
{
    if (c->cap == TR_CHUNK) {
        c->read = 0;
        atomic_store_explicit(&c->used, 0, memory_order_relaxed);
        c->next = rec->pool;
        rec->pool = c;
        rec->npool++;
    } else {
        rec->bytes -= c->cap;
        chunk_unmap(c);
    }
}

void tr_pool_fill(trace_recorder *rec)
{
    if (rec->pool_target < TR_POOL_AHEAD)
        rec->pool_target = TR_POOL_AHEAD;
    if (rec->starved && rec->pool_target < TR_POOL_MAX)
        rec->pool_target *= 2;
    rec->starved = false;
    while (rec->npool < rec->pool_target && rec->bytes + TR_CHUNK <= rec->limit && !rec->stop &&
           !(rec->faults.alloc_ok && rec->allocs >= rec->faults.alloc_ok)) {
        rec->allocs++;
        rec->bytes += TR_CHUNK; /* counted before the unlock: record() sees the limit */
        pthread_mutex_unlock(&rec->qmu);
        tr_chunk *c = chunk_map(TR_CHUNK);
        pthread_mutex_lock(&rec->qmu);
        if (!c) {
            rec->bytes -= TR_CHUNK;
            return;
        }
        c->cap = TR_CHUNK;
        if (rec->bytes > rec->peak)
            rec->peak = rec->bytes;
        tr_chunk_release(rec, c);
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
static __attribute__((noinline)) tr_chunk *slot_refill(trace_recorder *rec, tr_slot *s, size_t need)
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
        c->slot = (uint32_t)(s == &rec->overflow ? TR_SLOTS : s - rec->slots);
    if (c)
        atomic_store_explicit(&s->cur, c, memory_order_release);
    return c;
}

static inline void slot_append(trace_recorder *rec, tr_slot *s, const hal_trace_rec_t *r,
                               uint32_t node)
{
    uint32_t len = r->data ? r->len : 0;
    size_t need = TR_ENTRY_HEAD_MAX + (size_t)len;
    tr_chunk *c = atomic_load_explicit(&s->cur, memory_order_relaxed);

    if (__builtin_expect(!c || c->cap - s->pos < need || len > TR_ENTRY_PAYLOAD_MAX, 0)) {
        c = len > TR_ENTRY_PAYLOAD_MAX ? NULL : slot_refill(rec, s, need);
        if (!c) { /* past the buffer bound, or a payload no block may hold */
            atomic_store_explicit(&s->dropped,
                                  atomic_load_explicit(&s->dropped, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            return;
        }
    }
    /* Without nodes the kernel's seq is the file's; with them, the order records arrive. */
    uint64_t gseq =
        rec->nnodes ? atomic_fetch_add_explicit(&rec->gseq, 1, memory_order_relaxed) + 1 : r->seq;
    s->pos = (size_t)(tr_entry_encode(c->data + s->pos, r, len, gseq, node) - c->data);
    atomic_store_explicit(&c->used, s->pos, memory_order_release);
    atomic_store_explicit(&s->recorded,
                          atomic_load_explicit(&s->recorded, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void trace_recorder_record_node(trace_recorder *rec, uint32_t node, const hal_trace_rec_t *r)
{
    tr_slot *s = tls_slot.id == rec->id ? tls_slot.slot : slot_claim(rec);

    if (__builtin_expect(!atomic_load_explicit(&rec->any_record, memory_order_relaxed), 0))
        atomic_store_explicit(&rec->any_record, true, memory_order_relaxed);
    if (__builtin_expect(node != 0 && node >= rec->nnodes, 0)) {
        /* A node never named: its seqs would collide with node 0's. Counted, not stored. */
        if (s->mu)
            pthread_mutex_lock(s->mu);
        atomic_store_explicit(&s->dropped,
                              atomic_load_explicit(&s->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        if (s->mu)
            pthread_mutex_unlock(s->mu);
        return;
    }
    if (__builtin_expect(s->mu == NULL, 1)) {
        slot_append(rec, s, r, node);
        return;
    }
    pthread_mutex_lock(s->mu);
    slot_append(rec, s, r, node);
    pthread_mutex_unlock(s->mu);
}

void trace_recorder_record(trace_recorder *rec, const hal_trace_rec_t *r)
{
    trace_recorder_record_node(rec, 0, r);
}

int trace_recorder_set_nodes(trace_recorder *rec, const char *const *names, size_t n)
{
    char(*copy)[32];

    if (n == 0 || n > TRACE_NODES_MAX)
        return OS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!names[i] || !names[i][0] || strlen(names[i]) > 31)
            return OS_EINVAL;
    if (atomic_load(&rec->any_record) || rec->nnodes)
        return OS_ESTATE;
    if (!(copy = calloc(n, sizeof(*copy))))
        return OS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        memcpy(copy[i], names[i], strlen(names[i]) + 1);
    /* Under qmu: the writer reads them after it pops a batch under the same lock. */
    pthread_mutex_lock(&rec->qmu);
    rec->node_names = copy;
    rec->nnodes = n;
    pthread_mutex_unlock(&rec->qmu);
    return 0;
}

int trace_recorder_set_node_manifest(trace_recorder *rec, uint32_t node, const char *text,
                                     size_t len)
{
    char *copy;

    if (node >= rec->nnodes || !text)
        return OS_EINVAL;
    if (atomic_load(&rec->any_record))
        return OS_ESTATE;
    if (!rec->node_manifests) {
        rec->node_manifests = calloc(rec->nnodes, sizeof(*rec->node_manifests));
        rec->node_manifest_len = calloc(rec->nnodes, sizeof(*rec->node_manifest_len));
        if (!rec->node_manifests || !rec->node_manifest_len) {
            free(rec->node_manifests);
            free(rec->node_manifest_len);
            rec->node_manifests = NULL;
            rec->node_manifest_len = NULL;
            return OS_ENOMEM;
        }
    }
    if (!len)
        len = strlen(text);
    if (!(copy = malloc(len + 1)))
        return OS_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&rec->qmu);
    free(rec->node_manifests[node]);
    rec->node_manifests[node] = copy;
    rec->node_manifest_len[node] = len;
    pthread_mutex_unlock(&rec->qmu);
    return 0;
}

static void sink_record(void *self, const hal_trace_rec_t *r)
{
    trace_recorder_record(self, r);
}

/* The kernel's flush (at shutdown): committed, as a kill would keep it; close expands. */
static void sink_flush(void *self)
{
    trace_recorder_commit(self);
}

/* ---- open and close ------------------------------------------------------------------- */

static int prepare(trace_recorder *rec, sqlite3_stmt **st, const char *sql, char *err,
                   size_t errlen)
{
    if (sqlite3_prepare_v3(rec->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        tr_seterr(err, errlen, "trace %s: %s", rec->path, sqlite3_errmsg(rec->db));
        return -1;
    }
    return 0;
}

static int write_header(trace_recorder *rec, const trace_run_info *run, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char ver[16], iso[64];
    uint64_t now = tr_clock_ns(CLOCK_REALTIME);
    time_t secs = (time_t)(now / 1000000000u);
    struct tm tm;
    int rc;

    if (tr_exec_sql(rec->db, schema_sql, err, errlen) != 0)
        return -1;
    snprintf(ver, sizeof(ver), "%d", TRACE_SCHEMA_VERSION);
    gmtime_r(&secs, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);

    if (prepare(rec, &st,
                "INSERT INTO meta VALUES('schema_version', ?1), ('format', 'orrery-trace'),"
                " ('writer', 'orrery trace recorder')",
                err, errlen) != 0)
        return -1;
    sqlite3_bind_text(st, 1, ver, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto fail;

    if (prepare(rec, &st,
                "INSERT INTO run(id, platform, seed, commit_id, manifest, command,"
                " start_unix_ns, start_time, workers) VALUES(1,?,?,?,?,?,?,?,?)",
                err, errlen) != 0)
        return -1;
    sqlite3_bind_text(st, 1, run && run->platform ? run->platform : "hosted", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, run ? (sqlite3_int64)run->seed : 0);
    if (run && run->commit)
        sqlite3_bind_text(st, 3, run->commit, -1, SQLITE_TRANSIENT);
    if (run && run->manifest)
        sqlite3_bind_text(st, 4, run->manifest, run->manifest_len ? (int)run->manifest_len : -1,
                          SQLITE_TRANSIENT);
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
    tr_seterr(err, errlen, "trace %s: %s", rec->path, sqlite3_errmsg(rec->db));
    return -1;
}

static void db_close(trace_recorder *rec)
{
    sqlite3_stmt **sts[] = {&rec->ins_block, &rec->upd_progress};

    tr_expander_free(rec->expander);
    rec->expander = NULL;
    if (rec->capture_fd >= 0)
        close(rec->capture_fd);
    rec->capture_fd = -1;

    for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++) {
        sqlite3_finalize(*sts[i]);
        *sts[i] = NULL;
    }
    if (rec->db)
        sqlite3_close(rec->db);
    rec->db = NULL;
}

static void recorder_free(trace_recorder *rec)
{
    for (int i = 0; i < TR_SLOTS; i++)
        chunk_unmap(atomic_load(&rec->slots[i].cur));
    chunk_unmap(atomic_load(&rec->overflow.cur));
    pthread_mutex_destroy(&rec->overflow_mu);
    while (rec->pool) {
        tr_chunk *c = rec->pool;
        rec->pool = c->next;
        chunk_unmap(c);
    }
    while (rec->queue_head) {
        tr_chunk *c = rec->queue_head;
        rec->queue_head = c->next;
        chunk_unmap(c);
    }
    db_close(rec);
    trace_out_release(&rec->out, rec->remove_partial);
    pthread_mutex_destroy(&rec->qmu);
    pthread_cond_destroy(&rec->qcv);
    pthread_cond_destroy(&rec->donecv);
    for (size_t i = 0; rec->node_manifests && i < rec->nnodes; i++)
        free(rec->node_manifests[i]);
    free(rec->node_manifests);
    free(rec->node_manifest_len);
    free(rec->node_names);
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

int trace_recorder_open(const char *path, const trace_run_info *run, trace_recorder **out,
                        char *err, size_t errlen)
{
    trace_recorder *rec = calloc(1, sizeof(*rec));

    int rc;

    *out = NULL;
    if (!rec || !(rec->path = strdup(path))) {
        free(rec);
        tr_seterr(err, errlen, "trace %s: out of memory", path);
        return -1;
    }
    rec->out.lock_fd = -1;
    rec->capture_fd = -1;
    rec->id = atomic_fetch_add(&next_recorder_id, 1);
    pthread_mutex_init(&rec->overflow_mu, NULL);
    rec->overflow.mu = &rec->overflow_mu;
    pthread_mutex_init(&rec->qmu, NULL);
    pthread_cond_init(&rec->qcv, NULL);
    pthread_cond_init(&rec->donecv, NULL);
    rec->limit = 256u << 20;
    rec->expand_duty = TR_EXPAND_DUTY;
    rec->sink.self = rec;
    rec->sink.record = sink_record;
    rec->sink.flush = sink_flush;

    pthread_once(&sqlite_once, sqlite_setup);
    /* Nothing that exists is touched unless it is an Orrery trace (outpath.c). */
    if ((rc = trace_out_prepare(path, &rec->out, err, errlen)) != 0) {
        recorder_free(rec);
        return rc;
    }
    if (rec->out.replaces)
        snprintf(rec->notice, sizeof(rec->notice),
                 "%s holds an Orrery trace: this recording replaces it once it is complete",
                 rec->out.target);
    if (rec->out.replaced_partial)
        snprintf(rec->notice + strlen(rec->notice), sizeof(rec->notice) - strlen(rec->notice),
                 "%sremoved %s, an unfinished earlier recording", rec->notice[0] ? "; " : "",
                 rec->out.partial);
    if (sqlite3_open_v2(rec->out.partial, &rec->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        tr_seterr(err, errlen, "trace %s: cannot create %s: %s", path, rec->out.partial,
                  rec->db ? sqlite3_errmsg(rec->db) : "out of memory");
        rec->remove_partial = true;
        recorder_free(rec);
        return -1;
    }
    /*
     * WAL with synchronous=OFF: each batch is one append to the log, nothing
     * is fsynced, and a process killed mid-run leaves every committed batch
     * readable. At close the log is checkpointed and the file switched back to
     * a single-file rollback journal. The application id is written first,
     * into the main file's header, where trace_file_is_trace reads it even
     * while the rest of the trace is still in the log.
     *
     * An 8 MiB page cache (128 pages): a trace is appended, so what a batch
     * touches is the right edge of the events table and of its index. A
     * larger cache only grew with every new page (a fresh allocation: page
     * faults and SQLite zeroing it) until it was full; with 64 MiB that was
     * most of a recording's pages, and inserting 1M events rows took 0.9 s
     * against 0.65 s (docs/trace-format.md, "Round 21").
     */
    char pragmas[320];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA page_size=65536; PRAGMA application_id=%ld; PRAGMA journal_mode=WAL;"
             " PRAGMA synchronous=OFF; PRAGMA wal_autocheckpoint=1024; PRAGMA cache_size=-8192;"
             " PRAGMA temp_store=MEMORY",
             (long)TRACE_APPLICATION_ID);
    if (tr_exec_sql(rec->db, pragmas, err, errlen) != 0 ||
        write_header(rec, run, err, errlen) != 0 ||
        tr_exec_sql(rec->db, tr_capture_sql, err, errlen) != 0 ||
        (rec->capture_fd = tr_capture_create(rec->db, err, errlen)) < 0 ||
        prepare(rec, &rec->ins_block,
                "INSERT INTO capture(slot, first_seq, last_seq, count, format, offset, size)"
                " VALUES(?,?,?,?,?,?,?)",
                err, errlen) != 0 ||
        prepare(rec, &rec->upd_progress, "UPDATE run SET dropped=?1, commit_unix_ns=?2 WHERE id=1",
                err, errlen) != 0) {
        if (err && errlen && !strstr(err, path)) {
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "trace %s: %s", path, err);
            tr_seterr(err, errlen, "%s", tmp);
        }
        rec->remove_partial = true;
        recorder_free(rec);
        return -1;
    }
    if (pthread_create(&rec->writer, NULL, tr_writer_main, rec) != 0) {
        tr_seterr(err, errlen, "trace %s: cannot start the writer thread", path);
        rec->remove_partial = true;
        recorder_free(rec);
        return -1;
    }
    rec->capture_end = TR_CAPTURE_HEADER;
    rec->writer_started = true;
    *out = rec;
    return 0;
}

const char *trace_recorder_notice(const trace_recorder *rec)
{
    return rec->notice[0] ? rec->notice : NULL;
}

void trace_recorder_set_faults(trace_recorder *rec, const trace_recorder_faults *f)
{
    pthread_mutex_lock(&rec->qmu);
    rec->faults = *f;
    pthread_cond_broadcast(&rec->qcv);
    pthread_mutex_unlock(&rec->qmu);
}

void trace_recorder_set_buffer_limit(trace_recorder *rec, size_t bytes)
{
    pthread_mutex_lock(&rec->qmu);
    rec->limit = bytes;
    pthread_mutex_unlock(&rec->qmu);
}

void trace_recorder_set_expand_duty(trace_recorder *rec, unsigned duty)
{
    pthread_mutex_lock(&rec->qmu);
    rec->expand_duty = duty ? duty : 1;
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
    out->lost = __atomic_load_n(&rec->lost, __ATOMIC_RELAXED);
    out->max_txn_rows = __atomic_load_n(&rec->max_txn_rows, __ATOMIC_RELAXED);
    out->batches = __atomic_load_n(&rec->batches, __ATOMIC_RELAXED);
    out->buffer_bytes = rec->bytes;
    out->buffer_peak = rec->peak;
    out->writer_cpu_ns = rec->writer_cpu_ns;
    pthread_mutex_unlock(&rec->qmu);
}

int trace_recorder_close(trace_recorder *rec, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    trace_recorder_stats now;
    char buf[256] = "";
    uint64_t close_cpu, close_wall, missing;
    bool finished = false, capture_done = false;
    int ret;

    if (!rec)
        return 0;
    close_cpu = tr_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    close_wall = tr_clock_ns(CLOCK_MONOTONIC);
    pthread_mutex_lock(&rec->qmu);
    rec->stop = true;
    pthread_cond_signal(&rec->qcv);
    pthread_mutex_unlock(&rec->qmu);
    if (rec->writer_started)
        pthread_join(rec->writer, NULL);

    /* Every record the kernel handed over is in the file, or the run row says it is not. */
    trace_recorder_get_stats(rec, &now);
    missing = now.dropped + now.lost;
    /*
     * The captured blocks become events rows (in steps: a kill now still
     * leaves every record, expanded or captured), then the final counts and
     * indexes in one transaction, then back to a single file. A block that
     * does not parse (it cannot, short of a broken disk) stays captured and
     * its records count as missing.
     */
    tr_expand_result xres = {0};
    if (!rec->expander)
        rec->expander = tr_expander_new(rec->db);
    int xrc = rec->expander ? tr_expand_all(rec->expander, &xres, buf, sizeof(buf)) : -1;
    missing += xres.bad_records;
    if (xrc == 0 && tr_exec_sql(rec->db, "BEGIN", buf, sizeof(buf)) == 0 &&
        (rec->nodes_written || tr_write_nodes(rec) == 0) &&
        tr_finish_tables(rec->db, rec->nnodes > 0, &capture_done, buf, sizeof(buf)) == 0 &&
        sqlite3_prepare_v2(rec->db,
                           "UPDATE run SET end_unix_ns=?1, commit_unix_ns=?1,"
                           " events=(SELECT count(*) FROM events), dropped=?2, bad_frames=?3,"
                           " exit_status=?4, complete=?5 WHERE id=1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)tr_clock_ns(CLOCK_REALTIME));
        sqlite3_bind_int64(st, 2, (sqlite3_int64)missing);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)atomic_load(&rec->bad_frames));
        if (rec->has_exit_status)
            sqlite3_bind_int64(st, 4, rec->exit_status);
        sqlite3_bind_int64(st, 5, missing == 0);
        finished = sqlite3_step(st) == SQLITE_DONE &&
                   tr_exec_sql(rec->db, "COMMIT", buf, sizeof(buf)) == 0;
        sqlite3_finalize(st);
    }
    if (finished &&
        tr_exec_sql(rec->db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE", buf,
                    sizeof(buf)) != 0)
        finished = false;
    if (!finished && !buf[0])
        snprintf(buf, sizeof(buf), "%s", sqlite3_errmsg(rec->db));
    close_cpu = tr_clock_ns(CLOCK_THREAD_CPUTIME_ID) - close_cpu;
    if (rec->close_stats) {
        trace_recorder_get_stats(rec, rec->close_stats);
        rec->close_stats->writer_cpu_ns += close_cpu;
        rec->close_stats->close_cpu_ns = close_cpu;
        rec->close_stats->close_ns = tr_clock_ns(CLOCK_MONOTONIC) - close_wall;
    }
    /* The file must be closed before it is renamed; the capture file goes once all is expanded. */
    char capture[PATH_MAX + 32] = "";
    if (finished && capture_done)
        tr_capture_path(rec->db, capture, sizeof(capture));
    db_close(rec);
    if (capture[0])
        unlink(capture);

    if (!finished) {
        tr_seterr(err, errlen, "trace %s: %s; what was committed is in %s (run.complete = 0)",
                  rec->path, buf, rec->out.partial);
        ret = -1;
    } else if (missing) {
        tr_seterr(err, errlen,
                  "trace %s: %llu of %llu records were not stored (%s); the incomplete trace is %s"
                  " (run.complete = 0, run.dropped = %llu)%s",
                  rec->path, (unsigned long long)missing,
                  (unsigned long long)(now.recorded + now.dropped),
                  rec->write_err[0] ? rec->write_err
                                    : "buffers full: the writer fell behind or memory ran out",
                  rec->out.partial, (unsigned long long)missing,
                  rec->out.replaces ? "; the earlier trace was left as it was" : "");
        ret = TRACE_INCOMPLETE;
    } else {
        ret = trace_out_commit(&rec->out, err, errlen);
    }
    recorder_free(rec);
    return ret;
}
