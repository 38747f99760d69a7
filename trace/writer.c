/* writer.c — the recorder's writer thread: buffered records into SQLite in bounded transactions. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "recorder_int.h"

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

/* Columns of an events row (TR_EVENT_COLS parameters per row of an INSERT). */
#define TR_EVENT_COLS 15

/* Bind one event's columns starting at parameter base + 1. */
static void bind_event(sqlite3_stmt *st, int base, const tr_entry *e)
{
    sqlite3_bind_int64(st, base + 1, (sqlite3_int64)e->gseq);
    sqlite3_bind_int64(st, base + 2, (sqlite3_int64)e->time_ns);
    sqlite3_bind_int64(st, base + 3, e->task);
    sqlite3_bind_int64(st, base + 4, e->kind);
    sqlite3_bind_int64(st, base + 5, e->chan);
    sqlite3_bind_int64(st, base + 6, e->peer);
    sqlite3_bind_int64(st, base + 7, e->iface);
    sqlite3_bind_int64(st, base + 8, e->type);
    sqlite3_bind_int64(st, base + 9, e->result);
    sqlite3_bind_int64(st, base + 10, e->len);
    sqlite3_bind_int64(st, base + 11, e->nhandles);
    sqlite3_bind_int64(st, base + 12, (sqlite3_int64)e->arg);
    if (e->len)
        sqlite3_bind_blob(st, base + 13, e + 1, (int)e->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, base + 13);
    sqlite3_bind_int64(st, base + 14, e->node);
    sqlite3_bind_int64(st, base + 15, (sqlite3_int64)e->seq);
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
    if (rc != SQLITE_DONE)
        return -1;
    rec->nodes_written = true;
    return 0;
}

/* The tasks and channels rows a SPAWN, EXIT or CHAN_CREATE record makes. */
static int write_side(trace_recorder *rec, const tr_entry *e)
{
    sqlite3_stmt *st;
    int rc;

    switch (e->kind) {
    case HAL_TR_SPAWN:
        st = rec->ins_spawn;
        sqlite3_bind_int64(st, 1, e->task);
        if (e->len)
            sqlite3_bind_text(st, 2, (const char *)(e + 1),
                              (int)strnlen((const char *)(e + 1), e->len), SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)e->arg);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)e->gseq);
        sqlite3_bind_int64(st, 5, e->node);
        break;
    case HAL_TR_EXIT:
        st = rec->ins_exit;
        sqlite3_bind_int64(st, 1, e->task);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)e->gseq);
        sqlite3_bind_int64(st, 3, e->result);
        sqlite3_bind_int64(st, 4, e->node);
        break;
    case HAL_TR_CHAN_CREATE:
        st = rec->ins_chan;
        for (int side = 0; side < 2; side++) {
            sqlite3_bind_int64(st, 1, side ? e->peer : e->chan);
            sqlite3_bind_int64(st, 2, side ? e->chan : e->peer);
            sqlite3_bind_int64(st, 3, e->task);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)e->gseq);
            sqlite3_bind_int64(st, 5, e->iface);
            sqlite3_bind_int64(st, 6, e->node);
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
            bind_event(st, k * TR_EVENT_COLS, rec->sorted[i + (size_t)k].e);
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
        rec->sorted[n].seq = e->gseq;
        rec->sorted[n].e = e;
        off += tr_entry_size(e->len);
    }
    return n;
}

/* Entries in [from, to) of c, counted without allocating (a batch that could not be collected). */
static size_t count_entries(const tr_chunk *c, size_t from, size_t to)
{
    size_t n = 0;

    for (size_t off = from; off < to; n++)
        off += tr_entry_size(((const tr_entry *)(c->data + off))->len);
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
 * Commit the rest of each chunk of list and the taken prefixes in seq order:
 * threads' chunks interleave, and sorted inserts keep SQLite appending at the
 * right edge of the events b-tree. A seq range split between two batches (one
 * thread's record taken now, another's slightly smaller seq still in its
 * chunk) is harmless: rows are keyed by seq, and readers scan by seq.
 *
 * A transaction ends every TR_TXN_NS or TR_TXN_ROWS (see there). A failed one
 * is rolled back and its records, with the rest of the batch, are counted as
 * lost; the next batch tries again (an allocation may succeed then).
 */
static void write_batch(trace_recorder *rec, tr_chunk *list, const tr_take *part, size_t npart)
{
    size_t n = 0, i, first = 0;
    bool sorted = true;
    uint64_t t0;

    for (tr_chunk *c = list; c && n != SIZE_MAX; c = c->next)
        n = collect(rec, c, c->read, atomic_load_explicit(&c->used, memory_order_relaxed), n);
    for (size_t k = 0; k < npart && n != SIZE_MAX; k++)
        n = collect(rec, part[k].c, part[k].c->read, part[k].end, n);
    if (n == SIZE_MAX) {
        n = 0;
        for (tr_chunk *c = list; c; c = c->next)
            n += count_entries(c, c->read, atomic_load_explicit(&c->used, memory_order_relaxed));
        for (size_t k = 0; k < npart; k++)
            n += count_entries(part[k].c, part[k].c->read, part[k].end);
        lose(rec, n, "out of memory");
        return;
    }
    if (n == 0)
        return;
    for (i = 1; i < n && sorted; i++)
        sorted = rec->sorted[i - 1].seq < rec->sorted[i].seq;
    if (!sorted)
        qsort(rec->sorted, n, sizeof(*rec->sorted), cmp_key);
    if (txn_begin(rec) != 0 || tr_write_nodes(rec) != 0)
        goto fail;
    t0 = tr_clock_ns(CLOCK_MONOTONIC);
    for (i = 0; i < n; i++) {
        /* Only at a group boundary: a multi-row INSERT never straddles two transactions. */
        if (i > first && i % TR_ROWS == 0 &&
            (i - first >= TR_TXN_ROWS || tr_clock_ns(CLOCK_MONOTONIC) - t0 >= TR_TXN_NS)) {
            if (txn_commit(rec, i - first) != 0)
                goto fail;
            first = i;
            if (txn_begin(rec) != 0)
                goto fail;
            t0 = tr_clock_ns(CLOCK_MONOTONIC);
        }
        if (rec->wfaults.row_delay_us)
            usleep(rec->wfaults.row_delay_us);
        if (rec->wfaults.fail_txn == rec->txns) {
            tr_exec_sql(rec->db, "ROLLBACK", NULL, 0);
            rec->nodes_written = false;
            lose(rec, n - first, "injected failure");
            return;
        }
        if (write_event(rec, i, n) != 0 || write_side(rec, rec->sorted[i].e) != 0)
            goto fail;
    }
    if (txn_commit(rec, n - first) == 0)
        return;
fail:
    lose(rec, n - first, sqlite3_errmsg(rec->db));
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

void *tr_writer_main(void *arg)
{
    trace_recorder *rec = arg;
    uint64_t last_take = tr_clock_ns(CLOCK_MONOTONIC);
    tr_take part[TR_SLOTS + 1];

    pthread_setname_np(pthread_self(), "trace-writer");
    pthread_mutex_lock(&rec->qmu);
    for (;;) {
        uint64_t req = rec->flush_req;
        bool stopping = rec->stop;
        bool take = stopping || req != rec->flush_done ||
                    tr_clock_ns(CLOCK_MONOTONIC) - last_take >= TR_STEAL_NS;
        if (rec->faults.hold_writer && !stopping) {
            pthread_cond_wait(&rec->qcv, &rec->qmu);
            continue;
        }
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
        rec->wfaults = rec->faults;
        pthread_mutex_unlock(&rec->qmu);

        /* After the pop: a chunk popped here is no longer in any slot. */
        size_t npart = take ? take_partials(rec, part) : 0;
        write_batch(rec, list, part, npart);
        for (size_t k = 0; k < npart; k++)
            part[k].c->read = part[k].end;
        if (take)
            last_take = tr_clock_ns(CLOCK_MONOTONIC);

        pthread_mutex_lock(&rec->qmu);
        while (list) {
            tr_chunk *next = list->next;
            tr_chunk_release(rec, list);
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
    rec->writer_cpu_ns = tr_clock_ns(CLOCK_THREAD_CPUTIME_ID);
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
