/* writer.c — the recorder's writer thread: buffered records into SQLite in bounded transactions. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "capture_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tr_exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tr_seterr(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int tr_write_nodes(trace_recorder *rec)
{
    sqlite3_stmt *st = NULL;
    int rc = SQLITE_DONE;

    if (rec->nnodes == 0 || rec->nodes_written)
        return 0;
    if (sqlite3_prepare_v2(rec->db,
                           "INSERT OR REPLACE INTO nodes(id, name, manifest) VALUES(?,?,?)", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    for (size_t i = 0; i < rec->nnodes && rc == SQLITE_DONE; i++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
        sqlite3_bind_text(st, 2, rec->node_names[i], -1, SQLITE_STATIC);
        if (rec->node_manifests && rec->node_manifests[i])
            sqlite3_bind_text(st, 3, rec->node_manifests[i], (int)rec->node_manifest_len[i],
                              SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 3);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE ||
        sqlite3_exec(rec->db, "CREATE INDEX IF NOT EXISTS events_node ON events(node, task)", NULL,
                     NULL, NULL) != SQLITE_OK)
        return -1;
    rec->nodes_written = true;
    return 0;
}

/* A committed prefix taken from a chunk its owner is still filling. */
typedef struct tr_take {
    tr_chunk *c;
    size_t end; /* the fill level seen; c->read moves here once written */
} tr_take;

/* Entries in [from, to) of c, counted without parsing further. */
static size_t count_entries(const tr_chunk *c, size_t from, size_t to)
{
    size_t n = 0;

    for (size_t off = from; off < to; n++)
        off += tr_entry_skip(c->data + off, NULL);
    return n;
}

/* Records of a batch that will not reach the file: counted, the first reason kept. */
static void lose(trace_recorder *rec, size_t n, const char *why)
{
    if (!rec->write_err[0])
        tr_seterr(rec->write_err, sizeof(rec->write_err), "writing events: %s", why);
    __atomic_store_n(&rec->lost, rec->lost + n, __ATOMIC_RELAXED);
}

static uint64_t dropped_now(trace_recorder *rec)
{
    uint64_t d = 0;

    for (int i = 0; i < TR_SLOTS; i++)
        d += atomic_load_explicit(&rec->slots[i].dropped, memory_order_relaxed);
    return d + atomic_load_explicit(&rec->overflow.dropped, memory_order_relaxed);
}

static int txn_begin(trace_recorder *rec)
{
    rec->txns++;
    return sqlite3_exec(rec->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/*
 * Commit rows events, with the run row's progress in the same transaction:
 * a file cut short by a kill still says how many records were lost before
 * its last commit and when that commit was.
 */
static int txn_commit(trace_recorder *rec, size_t rows)
{
    sqlite3_stmt *st = rec->upd_progress;
    int rc;

    sqlite3_bind_int64(st, 1, (sqlite3_int64)(dropped_now(rec) + rec->lost));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)tr_clock_ns(CLOCK_REALTIME));
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE || sqlite3_exec(rec->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    __atomic_store_n(&rec->written, rec->written + rows, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->batches, rec->batches + 1, __ATOMIC_RELAXED);
    if (rows > rec->max_txn_rows)
        __atomic_store_n(&rec->max_txn_rows, rows, __ATOMIC_RELAXED);
    return 0;
}

/*
 * One block: bytes [from, to) of c, the entries its slot filled since the
 * last block, appended to the capture file, then its row (in the open
 * transaction, so a row never names bytes that were not written).
 */
static int capture_block(trace_recorder *rec, const tr_chunk *c, size_t from, size_t to,
                         size_t *rows)
{
    sqlite3_stmt *st = rec->ins_block;
    uint64_t n = 0, lo = UINT64_MAX, hi = 0;
    size_t size = to - from, done = 0;
    int rc;

    for (size_t off = from; off < to; n++) {
        uint64_t gseq;
        off += tr_entry_skip(c->data + off, &gseq);
        if (gseq < lo)
            lo = gseq;
        if (gseq > hi)
            hi = gseq;
    }
    if (rec->wfaults.row_delay_us)
        usleep(rec->wfaults.row_delay_us * (useconds_t)n);
    while (done < size) {
        ssize_t w = pwrite(rec->capture_fd, c->data + from + done, size - done,
                           (off_t)(rec->capture_end + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            tr_seterr(rec->write_err, sizeof(rec->write_err), "writing the capture file: %s",
                      w < 0 ? strerror(errno) : "no room");
            return -1;
        }
        done += (size_t)w;
    }
    sqlite3_bind_int64(st, 1, c->slot);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)lo);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)hi);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)n);
    sqlite3_bind_int(st, 5, TR_CAPTURE_FORMAT);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)rec->capture_end);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)size);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    *rows = (size_t)n;
    if (rc != SQLITE_DONE)
        return -1;
    /* A rolled-back row leaves its bytes unnamed; the next block goes after them all the same. */
    rec->capture_end += size;
    return 0;
}

typedef struct tr_batch {
    size_t total, done, in_txn; /* records: the batch's, committed, in the open transaction */
    bool open, failed;
    uint64_t t0;
} tr_batch;

/* Add bytes [from, to) of c to the batch's transactions: 0, or -1 (the batch has failed). */
static int batch_add(trace_recorder *rec, tr_batch *b, const tr_chunk *c, size_t from, size_t to)
{
    size_t rows;

    if (to <= from)
        return 0;
    if (b->open && (b->in_txn + count_entries(c, from, to) > TR_TXN_ROWS ||
                    tr_clock_ns(CLOCK_MONOTONIC) - b->t0 >= TR_TXN_NS)) {
        b->open = false;
        if (txn_commit(rec, b->in_txn) != 0)
            return -1;
        b->done += b->in_txn;
        b->in_txn = 0;
    }
    if (!b->open) {
        if (txn_begin(rec) != 0)
            return -1;
        b->open = true;
        if (rec->wfaults.fail_txn == rec->txns) {
            tr_exec_sql(rec->db, "ROLLBACK", NULL, 0);
            b->open = false;
            rec->nodes_written = false;
            lose(rec, b->total - b->done, "injected failure");
            b->failed = true;
            return -1;
        }
        if (tr_write_nodes(rec) != 0)
            return -1;
        b->t0 = tr_clock_ns(CLOCK_MONOTONIC);
    }
    if (capture_block(rec, c, from, to, &rows) != 0)
        return -1;
    b->in_txn += rows;
    return 0;
}

/*
 * Commit the rest of each chunk of list and the taken prefixes as capture
 * blocks: one row a chunk, its bytes as they are (about a copy per record,
 * so the writer keeps up and chunks go back to the pool at once). Expansion
 * into events rows in seq order comes later (capture.c).
 *
 * A transaction ends every TR_TXN_NS or TR_TXN_ROWS (see there), at a block
 * boundary. A failed one is rolled back and its records, with the rest of
 * the batch, are counted as lost; the next batch tries again.
 */
static void write_batch(trace_recorder *rec, tr_chunk *list, const tr_take *part, size_t npart)
{
    tr_batch b = {0};
    int rc = 0;

    for (tr_chunk *c = list; c; c = c->next)
        b.total += count_entries(c, c->read, atomic_load_explicit(&c->used, memory_order_relaxed));
    for (size_t k = 0; k < npart; k++)
        b.total += count_entries(part[k].c, part[k].c->read, part[k].end);
    if (b.total == 0)
        return;
    for (tr_chunk *c = list; c && rc == 0; c = c->next)
        rc = batch_add(rec, &b, c, c->read, atomic_load_explicit(&c->used, memory_order_relaxed));
    for (size_t k = 0; k < npart && rc == 0; k++)
        rc = batch_add(rec, &b, part[k].c, part[k].c->read, part[k].end);
    if (rc == 0 && (!b.open || txn_commit(rec, b.in_txn) == 0))
        return;
    if (b.failed)
        return;
    lose(rec, b.total - b.done, sqlite3_errmsg(rec->db));
    tr_exec_sql(rec->db, "ROLLBACK", NULL, 0);
    rec->nodes_written = false; /* if this transaction wrote them, they are gone */
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

/*
 * A flush that asked for events rows: every captured block is expanded now
 * (chunks queued meanwhile wait). A failure leaves the blocks captured, and
 * close tries again.
 */
static void expand_captured(trace_recorder *rec)
{
    tr_expand_result res = {0};
    char err[256];

    if (!rec->expander && !(rec->expander = tr_expander_new(rec->db)))
        return;
    if (tr_expand_all(rec->expander, &res, err, sizeof(err)) != 0 && !rec->write_err[0])
        tr_seterr(rec->write_err, sizeof(rec->write_err), "%s", err);
}

/* One idle expansion step: true if blocks may be left. */
static bool expand_idle(trace_recorder *rec)
{
    tr_expand_result res = {0};
    char err[256];
    int rc;

    if (!rec->expander && !(rec->expander = tr_expander_new(rec->db)))
        return false;
    rc = tr_expand_some(rec->expander, TR_EXPAND_IDLE_ROWS, &res, err, sizeof(err));
    if (rc < 0 && !rec->write_err[0])
        tr_seterr(rec->write_err, sizeof(rec->write_err), "%s", err);
    return rc == 1;
}

void *tr_writer_main(void *arg)
{
    trace_recorder *rec = arg;
    uint64_t last_take = tr_clock_ns(CLOCK_MONOTONIC);
    uint64_t expand_after = 0; /* the next idle expansion step, not before (monotonic ns) */
    bool pending = false;      /* captured blocks may wait for expansion */
    tr_take part[TR_SLOTS + 1];

    pthread_setname_np(pthread_self(), "trace-writer");
    pthread_mutex_lock(&rec->qmu);
    for (;;) {
        uint64_t req = rec->flush_req;
        bool expand = rec->expand_req > rec->flush_done; /* a flush wants events rows */
        bool stopping = rec->stop;
        uint64_t now = tr_clock_ns(CLOCK_MONOTONIC);
        bool take = stopping || req != rec->flush_done || now - last_take >= TR_STEAL_NS;
        if (rec->faults.hold_writer && !stopping) {
            pthread_cond_wait(&rec->qcv, &rec->qmu);
            continue;
        }
        if (!rec->queue_head && !take) {
            if (pending && now >= expand_after && !rec->faults.hold_expansion) {
                pthread_mutex_unlock(&rec->qmu);
                pending = expand_idle(rec);
                uint64_t t = tr_clock_ns(CLOCK_MONOTONIC) - now;
                pthread_mutex_lock(&rec->qmu);
                expand_after = now + rec->expand_duty * t;
                continue;
            }
            uint64_t wait = 20u * 1000 * 1000;
            if (pending && expand_after - now < wait)
                wait = expand_after - now;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)wait;
            while (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&rec->qcv, &rec->qmu, &ts);
            continue;
        }
        tr_chunk *list = rec->queue_head;
        rec->queue_head = rec->queue_tail = NULL;
        rec->wfaults = rec->faults;
        pthread_mutex_unlock(&rec->qmu);

        /* After the pop: a chunk popped here is no longer in any slot. */
        size_t npart = take ? take_partials(rec, part) : 0;
        write_batch(rec, list, part, npart);
        for (size_t k = 0; k < npart; k++)
            part[k].c->read = part[k].end;
        if (take)
            last_take = tr_clock_ns(CLOCK_MONOTONIC);
        pending = pending || list || npart;

        pthread_mutex_lock(&rec->qmu);
        while (list) {
            tr_chunk *next = list->next;
            tr_chunk_release(rec, list);
            list = next;
        }
        tr_pool_fill(rec);
        if (take && expand && !stopping) {
            pthread_mutex_unlock(&rec->qmu);
            expand_captured(rec);
            pending = false;
            pthread_mutex_lock(&rec->qmu);
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
    rec->writer_cpu_ns = tr_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

static void flush(trace_recorder *rec, bool expand)
{
    pthread_mutex_lock(&rec->qmu);
    if (!rec->stop) {
        uint64_t mine = ++rec->flush_req;
        if (expand)
            rec->expand_req = mine;
        pthread_cond_signal(&rec->qcv);
        /* The writer took every queued chunk and every slot's prefix after we asked. */
        while (!rec->writer_exited && rec->flush_done < mine)
            pthread_cond_wait(&rec->donecv, &rec->qmu);
    }
    pthread_mutex_unlock(&rec->qmu);
}

void trace_recorder_flush(trace_recorder *rec)
{
    flush(rec, true);
}

void trace_recorder_commit(trace_recorder *rec)
{
    flush(rec, false);
}
