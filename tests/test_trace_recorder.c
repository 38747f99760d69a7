/* test_trace_recorder.c — the SQLite recorder: round trip, hand-off, honest loss counts, output
 * paths, bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <trace/outpath.h>
#include <trace/reader.h>
#include <trace/recorder.h>

#include <os/errno.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PER_THREAD 20000

static char path[256];

static void tmp_path(const char *name)
{
    snprintf(path, sizeof(path), "%s/orrery-%s-%d.db", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             name, (int)getpid());
}

typedef struct producer {
    trace_recorder *rec;
    atomic_uint_fast64_t *seq;
    uint32_t task;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (uint32_t i = 0; i < PER_THREAD; i++) {
        uint32_t payload[3] = {p->task, i, 0xabcd};
        hal_trace_rec_t r = {0};
        r.seq = atomic_fetch_add(p->seq, 1) + 1;
        r.time_ns = r.seq * 10;
        r.kind = HAL_TR_SEND;
        r.task = p->task;
        r.chan = p->task * 10;
        r.peer = p->task * 10 + 1;
        r.type = i;
        r.len = (i % 3) ? sizeof(payload) : 0;
        r.data = r.len ? payload : NULL;
        trace_recorder_record(p->rec, &r);
    }
    return NULL;
}

static sqlite3_int64 scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    sqlite3_int64 v = -1;
    assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(db, sql, -1, &st, NULL));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void record_meta(trace_recorder *rec)
{
    const hal_trace_sink_t *sink = trace_recorder_sink(rec);
    hal_trace_rec_t r = {0};

    r.seq = 1000000;
    r.kind = HAL_TR_SPAWN;
    r.task = 7;
    r.arg = 1;
    r.data = "echo";
    r.len = 4;
    sink->record(sink->self, &r);
    memset(&r, 0, sizeof(r));
    r.seq = 1000001;
    r.kind = HAL_TR_CHAN_CREATE;
    r.task = 7;
    r.chan = 70;
    r.peer = 71;
    sink->record(sink->self, &r);
    memset(&r, 0, sizeof(r));
    r.seq = 1000002;
    r.kind = HAL_TR_EXIT;
    r.task = 7;
    r.result = -5;
    sink->record(sink->self, &r);
}

static void test_round_trip_two_threads(void **state)
{
    trace_run_info run = {
        .platform = "sim", .seed = 42, .commit = "abc123", .manifest = "echo\n", .workers = 2};
    atomic_uint_fast64_t seq = 0;
    trace_recorder *rec;
    producer p[2];
    pthread_t t[2];
    char err[256];
    sqlite3 *db;

    tmp_path("roundtrip");
    assert_int_equal(0, trace_recorder_open(path, &run, &rec, err, sizeof(err)));
    for (int i = 0; i < 2; i++) {
        p[i] = (producer){rec, &seq, (uint32_t)(i + 2)};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    record_meta(rec);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    trace_recorder_flush(rec);
    trace_recorder_stats st;
    trace_recorder_get_stats(rec, &st);
    assert_int_equal(2 * PER_THREAD + 3, st.written);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));

    assert_int_equal(SQLITE_OK, sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL));
    assert_int_equal(2 * PER_THREAD + 3, scalar(db, "SELECT count(*) FROM events"));
    /* seq 1..2N with no gaps */
    assert_int_equal(2 * PER_THREAD, scalar(db, "SELECT count(*) FROM events WHERE seq <= 40000"));
    assert_int_equal(TRACE_SCHEMA_VERSION,
                     scalar(db, "SELECT value FROM meta WHERE key = 'schema_version'"));
    assert_int_equal(42, scalar(db, "SELECT seed FROM run"));
    assert_int_equal(1, scalar(db, "SELECT complete FROM run"));
    assert_int_equal(0, scalar(db, "SELECT dropped FROM run"));
    assert_int_equal(2 * PER_THREAD + 3, scalar(db, "SELECT events FROM run"));
    /* per task, the payload says which record it was */
    assert_int_equal(0,
                     scalar(db, "SELECT count(*) FROM events WHERE kind = 4 AND len > 0 AND"
                                " (substr(payload, 1, 4) <> substr(CAST(x'00000000' AS BLOB), 1, 0)"
                                " AND length(payload) <> 12)"));
    assert_int_equal(PER_THREAD, scalar(db, "SELECT count(*) FROM events WHERE task = 3"));
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM tasks WHERE id = 7 AND name = 'echo'"
                                   " AND parent = 1 AND exit_status = -5"));
    assert_int_equal(2, scalar(db, "SELECT count(*) FROM channels WHERE endpoint IN (70, 71)"));
    assert_int_equal(71, scalar(db, "SELECT peer FROM channels WHERE endpoint = 70"));
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM kinds WHERE name = 'DELIVER' AND id = 5"));
    assert_int_equal(1,
                     scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'events_task'"));
    sqlite3_close(db);

    /* The reader checks and iterates the same file, in seq order. */
    trace_db *tdb;
    trace_iter *it;
    hal_trace_rec_t r;
    uint64_t last = 0, n = 0;
    assert_int_equal(0, trace_db_open(path, &tdb, err, sizeof(err)));
    assert_string_equal("echo", trace_db_task_name(tdb, 7));
    assert_int_equal(0, trace_iter_open(tdb, NULL, &it));
    while (trace_iter_next(it, &r) == 1) {
        assert_true(r.seq > last);
        last = r.seq;
        if (r.kind == HAL_TR_SEND && r.len) {
            uint32_t pl[3];
            assert_int_equal(12, r.len);
            memcpy(pl, r.data, 12);
            assert_int_equal(r.task, pl[0]);
            assert_int_equal(r.type, pl[1]);
        }
        n++;
    }
    assert_int_equal(2 * PER_THREAD + 3, n);
    trace_iter_close(it);
    trace_db_close(tdb);
    unlink(path);
}

/*
 * The per-thread hand-off: many threads (more than the recorder's own slots,
 * so some share its overflow slot) record interleaved seqs while another
 * thread flushes now and then (the writer takes partially filled chunks under
 * their owners' feet). Nothing is flushed before close, so close must write
 * what is left in every partial chunk. Each record must arrive exactly once
 * with its own payload.
 */
typedef struct hand_off {
    trace_recorder *rec;
    unsigned id, nthreads, per_thread;
} hand_off;

static void *hand_off_produce(void *arg)
{
    hand_off *h = arg;
    for (unsigned i = 0; i < h->per_thread; i++) {
        uint64_t payload[2];
        hal_trace_rec_t r = {0};
        r.seq = (uint64_t)i * h->nthreads + h->id + 1;
        r.time_ns = r.seq;
        r.kind = HAL_TR_DELIVER;
        r.task = h->id + 1;
        payload[0] = r.seq;
        payload[1] = ~r.seq;
        r.len = (i % 4) ? sizeof(payload) : 0;
        r.data = r.len ? payload : NULL;
        trace_recorder_record(h->rec, &r);
    }
    return NULL;
}

static atomic_bool flusher_stop;

static void *flusher(void *arg)
{
    while (!atomic_load(&flusher_stop)) {
        trace_recorder_flush(arg);
        usleep(1000);
    }
    return NULL;
}

static void check_hand_off(unsigned nthreads, unsigned per_thread, bool flush_during)
{
    trace_recorder *rec;
    hand_off h[80];
    pthread_t t[80], ft;
    char err[256];
    uint64_t total = (uint64_t)nthreads * per_thread;

    assert_true(nthreads <= 80);
    tmp_path("handoff");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    atomic_store(&flusher_stop, false);
    if (flush_during)
        pthread_create(&ft, NULL, flusher, rec);
    for (unsigned i = 0; i < nthreads; i++) {
        h[i] = (hand_off){rec, i, nthreads, per_thread};
        pthread_create(&t[i], NULL, hand_off_produce, &h[i]);
    }
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    atomic_store(&flusher_stop, true);
    if (flush_during)
        pthread_join(ft, NULL);
    trace_recorder_stats st;
    trace_recorder_stats_at_close(rec, &st);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(total, st.recorded);
    assert_int_equal(total, st.written);
    assert_int_equal(0, st.dropped);

    /* Every seq 1..total once, in order, each with its own payload. */
    trace_db *tdb;
    trace_iter *it;
    hal_trace_rec_t r;
    uint64_t n = 0;
    assert_int_equal(0, trace_db_open(path, &tdb, err, sizeof(err)));
    assert_int_equal(0, trace_iter_open(tdb, NULL, &it));
    while (trace_iter_next(it, &r) == 1) {
        n++;
        assert_int_equal(n, r.seq);
        assert_int_equal((r.seq - 1) % nthreads + 1, r.task);
        if (((r.seq - 1) / nthreads) % 4) {
            uint64_t pl[2];
            assert_int_equal(sizeof(pl), r.len);
            memcpy(pl, r.data, sizeof(pl));
            assert_int_equal(r.seq, pl[0]);
            assert_int_equal(~r.seq, pl[1]);
        } else {
            assert_int_equal(0, r.len);
        }
    }
    assert_int_equal(total, n);
    trace_iter_close(it);
    trace_db_close(tdb);
    unlink(path);
}

/* Several full chunks per thread, flushed under the producers' feet. */
static void test_hand_off_many_threads(void **state)
{
    check_hand_off(6, 15000, true);
}

/* More threads than slots: the overflow slot is shared under its lock. */
static void test_hand_off_overflow_slot(void **state)
{
    check_hand_off(72, 400, true);
}

/* Only partially filled chunks, never flushed: close writes them. */
static void test_partial_chunks_at_close(void **state)
{
    check_hand_off(3, 7, false);
}

static char partial[300];

/* path and path.partial for a test, neither existing. */
static void fresh(const char *name)
{
    tmp_path(name);
    snprintf(partial, sizeof(partial), "%s%s", path, TRACE_PARTIAL_SUFFIX);
    unlink(path);
    unlink(partial);
}

static bool exists(const char *p)
{
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static sqlite3 *open_ro(const char *file)
{
    sqlite3 *db = NULL;
    assert_int_equal(SQLITE_OK, sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL));
    return db;
}

static void record_n(trace_recorder *rec, uint64_t first, uint64_t n, uint32_t len)
{
    static char blob[4096];
    for (uint64_t i = first; i < first + n; i++) {
        hal_trace_rec_t r = {.seq = i,
                             .time_ns = i,
                             .kind = HAL_TR_SEND,
                             .task = 2,
                             .len = len,
                             .data = len ? blob : NULL};
        trace_recorder_record(rec, &r);
    }
}

static void test_dropped_past_buffer_limit(void **state)
{
    trace_recorder *rec;
    char err[512];
    sqlite3 *db;

    fresh("dropped");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    trace_recorder_set_buffer_limit(rec, 0); /* no buffer may be allocated */
    for (int i = 1; i <= 100; i++) {
        hal_trace_rec_t r = {.seq = (uint64_t)i, .kind = HAL_TR_CLOCK_READ, .task = 1};
        trace_recorder_record(rec, &r);
    }
    assert_int_equal(TRACE_INCOMPLETE, trace_recorder_close(rec, err, sizeof(err)));
    assert_non_null(strstr(err, "100 of 100 records were not stored"));
    /* Incomplete: never renamed into place. */
    assert_false(exists(path));
    db = open_ro(partial);
    assert_int_equal(100, scalar(db, "SELECT dropped FROM run"));
    assert_int_equal(0, scalar(db, "SELECT complete FROM run"));
    assert_int_equal(1, scalar(db, "SELECT end_unix_ns IS NOT NULL FROM run"));
    assert_int_equal(0, scalar(db, "SELECT count(*) FROM events"));
    sqlite3_close(db);
    unlink(partial);
}

/* Buffers that cannot be allocated (malloc failing): every record counted, complete = 0. */
static void test_alloc_failure_counts_dropped(void **state)
{
    trace_recorder_faults f = {.alloc_ok = 2};
    trace_recorder_stats st;
    trace_recorder *rec;
    char err[512];
    sqlite3 *db;

    fresh("nomem");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    trace_recorder_set_faults(rec, &f);
    /* ~1 KiB each: 3000 records need 6 chunks, only 2 are allocated (not recycled yet). */
    f.hold_writer = true;
    trace_recorder_set_faults(rec, &f);
    record_n(rec, 1, 3000, 1000);
    f.hold_writer = false;
    trace_recorder_set_faults(rec, &f);
    trace_recorder_stats_at_close(rec, &st);
    assert_int_equal(TRACE_INCOMPLETE, trace_recorder_close(rec, err, sizeof(err)));
    assert_true(st.dropped > 0);
    assert_int_equal(3000, st.recorded + st.dropped);
    assert_false(exists(path));
    db = open_ro(partial);
    assert_int_equal(0, scalar(db, "SELECT complete FROM run"));
    assert_int_equal((sqlite3_int64)st.dropped, scalar(db, "SELECT dropped FROM run"));
    assert_int_equal(3000, scalar(db, "SELECT count(*) FROM events") +
                               scalar(db, "SELECT dropped FROM run"));
    sqlite3_close(db);
    unlink(partial);
}

/*
 * A transaction that fails (as a SQLite error would): its records are
 * counted as lost, the file says so from the next commit on (a kill after it
 * leaves an honest file), later records are still stored.
 */
static void test_failed_transaction_counts_lost(void **state)
{
    trace_recorder_faults f = {.hold_writer = true};
    trace_recorder_stats st;
    trace_recorder *rec;
    char err[512];
    sqlite3 *db;

    fresh("txnfail");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    trace_recorder_set_faults(rec, &f);
    record_n(rec, 1, 1000, 16);
    f = (trace_recorder_faults){.fail_txn = 1};
    trace_recorder_set_faults(rec, &f); /* the writer's first transaction holds all 1000 */
    trace_recorder_flush(rec);
    record_n(rec, 1001, 500, 16);
    trace_recorder_flush(rec);
    trace_recorder_get_stats(rec, &st);
    assert_int_equal(1000, st.lost);
    assert_int_equal(500, st.written);
    /* What a SIGKILL now would leave: the loss is already in the file. */
    db = open_ro(partial);
    assert_int_equal(1000, scalar(db, "SELECT dropped FROM run"));
    assert_int_equal(0, scalar(db, "SELECT complete FROM run"));
    assert_int_equal(1, scalar(db, "SELECT commit_unix_ns >= start_unix_ns FROM run"));
    sqlite3_close(db);

    assert_int_equal(TRACE_INCOMPLETE, trace_recorder_close(rec, err, sizeof(err)));
    assert_non_null(strstr(err, "injected failure"));
    db = open_ro(partial);
    assert_int_equal(1000, scalar(db, "SELECT dropped FROM run"));
    assert_int_equal(500, scalar(db, "SELECT count(*) FROM events"));
    assert_int_equal(1001, scalar(db, "SELECT min(seq) FROM events"));
    assert_int_equal(0, scalar(db, "SELECT complete FROM run"));
    sqlite3_close(db);
    unlink(partial);
}

/*
 * A backlog (the writer stalled, then catches up) is committed in steps of
 * at most 65536 events, so a kill loses one step, not the whole backlog.
 */
static void test_backlog_commits_in_steps(void **state)
{
    trace_recorder_faults f = {.hold_writer = true};
    trace_recorder_stats st;
    trace_recorder *rec;
    char err[512];

    fresh("backlog");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    trace_recorder_set_faults(rec, &f);
    record_n(rec, 1, 300000, 0);
    f.hold_writer = false;
    trace_recorder_set_faults(rec, &f);
    trace_recorder_flush(rec);
    trace_recorder_get_stats(rec, &st);
    assert_int_equal(300000, st.written);
    assert_true(st.max_txn_rows <= 65536);
    assert_true(st.batches >= 5);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_true(exists(path));
    assert_false(exists(partial));
    unlink(path);
}

/* A slow writer (a slow disk) still commits every 50 ms: a batch taking longer is split. */
static void test_slow_writer_commits_often(void **state)
{
    trace_recorder_faults f = {.hold_writer = true};
    trace_recorder_stats st;
    trace_recorder *rec;
    char err[512];

    fresh("slow");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    trace_recorder_set_faults(rec, &f);
    /* Several chunks' worth (a transaction ends at a block boundary). */
    record_n(rec, 1, 60000, 0);
    /* 60000 x 4 us: at least 240 ms of writing, so at least two transactions. */
    f = (trace_recorder_faults){.row_delay_us = 4};
    trace_recorder_set_faults(rec, &f);
    trace_recorder_flush(rec);
    trace_recorder_get_stats(rec, &st);
    assert_int_equal(60000, st.written);
    assert_true(st.batches >= 2);
    assert_true(st.max_txn_rows < 60000);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    unlink(path);
}

/* Expect trace_db_open to fail with a message containing `what`. */
static void expect_open_error(const char *file, const char *what)
{
    trace_db *db = NULL;
    char err[512] = "";
    assert_int_equal(-1, trace_db_open(file, &db, err, sizeof(err)));
    assert_null(db);
    if (!strstr(err, what))
        fail_msg("error '%s' does not say '%s'", err, what);
    assert_null(strchr(err, '\n'));
}

static void make_trace(const char *file, int nevents)
{
    trace_recorder *rec;
    char err[256];
    static char blob[3000];
    assert_int_equal(0, trace_recorder_open(file, NULL, &rec, err, sizeof(err)));
    for (int i = 1; i <= nevents; i++) {
        hal_trace_rec_t r = {.seq = (uint64_t)i,
                             .kind = HAL_TR_SEND,
                             .task = 2,
                             .chan = 1,
                             .peer = 2,
                             .len = sizeof(blob),
                             .data = blob};
        trace_recorder_record(rec, &r);
    }
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
}

static void test_bad_files(void **state)
{
    char other[300];
    FILE *f;
    sqlite3 *db;

    tmp_path("bad");
    unlink(path);
    expect_open_error(path, "no such file");

    f = fopen(path, "w");
    fclose(f);
    expect_open_error(path, "empty file");

    f = fopen(path, "w");
    fputs("this is a text file, long enough to be looked at by sqlite as a header....\n"
          "more text more text more text more text more text more text more text\n",
          f);
    fclose(f);
    expect_open_error(path, "not a SQLite database");

    unlink(path);
    assert_int_equal(SQLITE_OK, sqlite3_open(path, &db));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL));
    sqlite3_close(db);
    expect_open_error(path, "not an Orrery trace");

    /* A newer schema. */
    unlink(path);
    make_trace(path, 3);
    assert_int_equal(SQLITE_OK, sqlite3_open(path, &db));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db,
                                             "UPDATE meta SET value = '99' WHERE key ="
                                             " 'schema_version'",
                                             NULL, NULL, NULL));
    sqlite3_close(db);
    expect_open_error(path, "schema version 99 is newer");

    /* Truncated: keep the first half of a multi-page trace. */
    make_trace(path, 400);
    snprintf(other, sizeof(other), "%s.half", path);
    f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    assert_int_equal(size, (long)fread(buf, 1, (size_t)size, f));
    fclose(f);
    assert_true(size > 4 * 65536);
    f = fopen(other, "wb");
    fwrite(buf, 1, (size_t)size / 2, f);
    fclose(f);
    expect_open_error(other, "corrupt or truncated");

    /* Corrupt: garble a b-tree page in the middle. */
    memset(buf + 65536 * 2 + 100, 0x5a, 4000);
    memset(buf + 65536 + 8, 0xff, 64);
    f = fopen(other, "wb");
    fwrite(buf, 1, (size_t)size, f);
    fclose(f);
    expect_open_error(other, "corrupt");
    free(buf);
    unlink(other);
    unlink(path);
}

static void test_cannot_create(void **state)
{
    trace_recorder *rec = (void *)1;
    char err[256] = "";
    assert_int_equal(-1,
                     trace_recorder_open("/nonexistent-dir/x.db", NULL, &rec, err, sizeof(err)));
    assert_null(rec);
    assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
}

/* Read a whole small file into buf (NUL-terminated); its length. */
static size_t slurp(const char *p, char *buf, size_t cap)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return n;
}

static void expect_refused(const char *p, const char *what)
{
    trace_recorder *rec = (void *)1;
    char err[1024] = "";
    assert_int_equal(TRACE_OUT_REFUSED, trace_recorder_open(p, NULL, &rec, err, sizeof(err)));
    assert_null(rec);
    if (!strstr(err, what))
        fail_msg("error '%s' does not say '%s'", err, what);
    assert_null(strchr(err, '\n'));
}

/* Paths that exist and are not Orrery traces are refused and left exactly as they were. */
static void test_refuses_what_is_not_a_trace(void **state)
{
    char text[300], link[300], dir[300], fifo[300], other[300], buf[400];
    sqlite3 *db;
    struct stat sb;
    FILE *f;

    fresh("refuse");
    snprintf(text, sizeof(text), "%s.txt", path);
    snprintf(link, sizeof(link), "%s.link", path);
    snprintf(dir, sizeof(dir), "%s.dir", path);
    snprintf(fifo, sizeof(fifo), "%s.fifo", path);
    snprintf(other, sizeof(other), "%s.sqlite", path);
    unlink(text), unlink(link), rmdir(dir), unlink(fifo), unlink(other);

    f = fopen(text, "w");
    fputs("notes, not a trace\n", f);
    fclose(f);
    expect_refused(text, "not a SQLite database");
    assert_int_equal(19, slurp(text, buf, sizeof(buf)));
    assert_string_equal("notes, not a trace\n", buf);

    assert_int_equal(0, symlink(text, link));
    expect_refused(link, "not a SQLite database");
    assert_int_equal(0, lstat(link, &sb));
    assert_true(S_ISLNK(sb.st_mode));
    slurp(text, buf, sizeof(buf));
    assert_string_equal("notes, not a trace\n", buf);
    unlink(link);

    assert_int_equal(0, symlink("/nonexistent-dir/none.db", link));
    expect_refused(link, "a symbolic link to a missing file");
    unlink(link);

    assert_int_equal(0, mkdir(dir, 0755));
    expect_refused(dir, "a directory");
    assert_int_equal(0, mkfifo(fifo, 0644));
    expect_refused(fifo, "a FIFO");
    expect_refused("/dev/null", "a character device");
    assert_int_equal(0, stat("/dev/null", &sb));
    assert_true(S_ISCHR(sb.st_mode));

    assert_int_equal(SQLITE_OK, sqlite3_open(other, &db));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL));
    sqlite3_close(db);
    expect_refused(other, "a SQLite database of something else");
    db = open_ro(other);
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 't'"));
    sqlite3_close(db);

    f = fopen(path, "w");
    fclose(f);
    expect_refused(path, "an empty file");
    assert_int_equal(0, stat(path, &sb));
    assert_int_equal(0, sb.st_size);

    /* Nothing was created next to any of them. */
    snprintf(buf, sizeof(buf), "%s%s", text, TRACE_PARTIAL_SUFFIX);
    assert_false(exists(buf));
    assert_false(exists(partial));
    unlink(text), rmdir(dir), unlink(fifo), unlink(other), unlink(path);
}

/*
 * An existing trace is replaced (with a notice) only by a complete one: an
 * incomplete recording stays in FILE.partial and the old trace is untouched.
 * Through a symlink, the target is replaced and the link kept.
 */
static void test_replaces_only_a_trace_and_only_when_complete(void **state)
{
    char link[300], err[512];
    trace_recorder *rec, *second;
    struct stat sb;
    sqlite3 *db;

    fresh("replace");
    make_trace(path, 3);
    assert_int_equal(0, chmod(path, 0640));

    /* Incomplete: the old trace stays. */
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    assert_non_null(trace_recorder_notice(rec));
    assert_non_null(strstr(trace_recorder_notice(rec), "replaces it once it is complete"));
    /* One recording at a time into a file. */
    assert_int_equal(TRACE_OUT_REFUSED, trace_recorder_open(path, NULL, &second, err, sizeof(err)));
    assert_non_null(strstr(err, "under way"));
    trace_recorder_set_buffer_limit(rec, 0);
    record_n(rec, 1, 10, 0);
    assert_int_equal(TRACE_INCOMPLETE, trace_recorder_close(rec, err, sizeof(err)));
    assert_non_null(strstr(err, "the earlier trace was left as it was"));
    db = open_ro(path);
    assert_int_equal(3, scalar(db, "SELECT count(*) FROM events"));
    assert_int_equal(1, scalar(db, "SELECT complete FROM run"));
    sqlite3_close(db);
    assert_true(exists(partial));

    /* The next recording removes that unfinished one, and replaces the trace when done. */
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    assert_non_null(strstr(trace_recorder_notice(rec), "an unfinished earlier recording"));
    record_n(rec, 1, 7, 0);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_false(exists(partial));
    db = open_ro(path);
    assert_int_equal(7, scalar(db, "SELECT count(*) FROM events"));
    assert_int_equal(TRACE_APPLICATION_ID, scalar(db, "PRAGMA application_id"));
    sqlite3_close(db);
    assert_int_equal(0, stat(path, &sb));
    assert_int_equal(0640, sb.st_mode & 07777);

    /* Through a symlink: the target is replaced, the link stays a link. */
    snprintf(link, sizeof(link), "%s.link", path);
    unlink(link);
    assert_int_equal(0, symlink(path, link));
    assert_int_equal(0, trace_recorder_open(link, NULL, &rec, err, sizeof(err)));
    record_n(rec, 1, 5, 0);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(0, lstat(link, &sb));
    assert_true(S_ISLNK(sb.st_mode));
    db = open_ro(path);
    assert_int_equal(5, scalar(db, "SELECT count(*) FROM events"));
    sqlite3_close(db);
    unlink(link);
    unlink(path);
}

/* A trace written before the application id existed is still recognized (its meta table). */
static void test_replaces_an_older_trace(void **state)
{
    trace_recorder *rec;
    char err[512];
    sqlite3 *db;

    fresh("older");
    assert_int_equal(SQLITE_OK, sqlite3_open(path, &db));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db,
                                             "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
                                             "INSERT INTO meta VALUES('format', 'orrery-trace')",
                                             NULL, NULL, NULL));
    sqlite3_close(db);
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    record_n(rec, 1, 2, 0);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    db = open_ro(path);
    assert_int_equal(2, scalar(db, "SELECT count(*) FROM events"));
    sqlite3_close(db);
    unlink(path);
}

/* Records of two kernels in one file: ids and seqs restart per node, the file's keys do not. */
static void test_nodes(void **state)
{
    static const char *const names[] = {"alpha", "beta"};
    static const char *const bad[] = {"a-name-of-thirty-two-bytes-12345"};
    trace_run_info run = {.platform = "sim", .seed = 1};
    trace_recorder *rec;
    hal_trace_rec_t r;
    char err[256];
    sqlite3 *db;

    (void)state;
    tmp_path("nodes");
    assert_int_equal(0, trace_recorder_open(path, &run, &rec, err, sizeof(err)));
    assert_int_equal(OS_EINVAL, trace_recorder_set_nodes(rec, bad, 1));
    assert_int_equal(OS_EINVAL, trace_recorder_set_nodes(rec, names, TRACE_NODES_MAX + 1));
    assert_int_equal(0, trace_recorder_set_nodes(rec, names, 2));
    assert_int_equal(OS_ESTATE, trace_recorder_set_nodes(rec, names, 2));
    for (uint32_t node = 0; node < 2; node++) {
        /* The same task id 1 and endpoints 10/11 on both nodes, seq from 1 on each. */
        memset(&r, 0, sizeof(r));
        r.seq = 1;
        r.kind = HAL_TR_SPAWN;
        r.task = 1;
        r.data = names[node];
        r.len = (uint32_t)strlen(names[node]);
        trace_recorder_record_node(rec, node, &r);
        memset(&r, 0, sizeof(r));
        r.seq = 2;
        r.kind = HAL_TR_CHAN_CREATE;
        r.task = 1;
        r.chan = 10;
        r.peer = 11 + node;
        trace_recorder_record_node(rec, node, &r);
    }
    memset(&r, 0, sizeof(r));
    r.seq = 3;
    r.kind = HAL_TR_EXIT;
    r.task = 1;
    r.result = -3;
    trace_recorder_record(rec, &r);         /* node 0 through the plain entry */
    trace_recorder_record_node(rec, 2, &r); /* a node never named: dropped, counted */
    assert_int_equal(TRACE_INCOMPLETE, trace_recorder_close(rec, err, sizeof(err)));
    assert_non_null(strstr(err, "1 of 6 records were not stored"));
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", TRACE_PARTIAL_SUFFIX);

    assert_int_equal(SQLITE_OK, sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL));
    assert_int_equal(3, scalar(db, "SELECT value FROM meta WHERE key = 'schema_version'"));
    assert_int_equal(2, scalar(db, "SELECT count(*) FROM nodes"));
    assert_int_equal(1, scalar(db, "SELECT id FROM nodes WHERE name = 'beta'"));
    assert_int_equal(5, scalar(db, "SELECT count(*) FROM events"));
    /* The file's seq is the order of arrival; each node's own is kept. */
    assert_int_equal(15, scalar(db, "SELECT sum(seq) FROM events"));
    assert_int_equal(1, scalar(db, "SELECT node FROM events WHERE seq = 3"));
    assert_int_equal(1, scalar(db, "SELECT node_seq FROM events WHERE seq = 3"));
    assert_int_equal(3, scalar(db, "SELECT node_seq FROM events WHERE seq = 5 AND node = 0"));
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM tasks WHERE node = 0 AND id = 1 AND"
                                   " name = 'alpha' AND exit_status = -3 AND exit_seq = 5"));
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM tasks WHERE node = 1 AND id = 1 AND"
                                   " name = 'beta' AND exit_seq IS NULL AND spawned_seq = 3"));
    assert_int_equal(12, scalar(db, "SELECT peer FROM channels WHERE node = 1 AND endpoint = 10"));
    assert_int_equal(11, scalar(db, "SELECT peer FROM channels WHERE node = 0 AND endpoint = 10"));
    assert_int_equal(1, scalar(db, "SELECT dropped FROM run"));
    sqlite3_close(db);
    unlink(path);
}

static void test_kind_names(void **state)
{
    assert_string_equal("SEND", trace_kind_name(HAL_TR_SEND));
    assert_string_equal("START", trace_kind_name(HAL_TR_START));
    assert_null(trace_kind_name(999));
    assert_int_equal(HAL_TR_DELIVER, trace_kind_from_name("deliver"));
    assert_int_equal(0, trace_kind_from_name("nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_two_threads),
        cmocka_unit_test(test_hand_off_many_threads),
        cmocka_unit_test(test_hand_off_overflow_slot),
        cmocka_unit_test(test_partial_chunks_at_close),
        cmocka_unit_test(test_dropped_past_buffer_limit),
        cmocka_unit_test(test_alloc_failure_counts_dropped),
        cmocka_unit_test(test_failed_transaction_counts_lost),
        cmocka_unit_test(test_backlog_commits_in_steps),
        cmocka_unit_test(test_slow_writer_commits_often),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_cannot_create),
        cmocka_unit_test(test_refuses_what_is_not_a_trace),
        cmocka_unit_test(test_replaces_only_a_trace_and_only_when_complete),
        cmocka_unit_test(test_replaces_an_older_trace),
        cmocka_unit_test(test_nodes),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
