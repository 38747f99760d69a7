/* test_trace_recorder.c — the SQLite recorder: round trip, per-thread hand-off, schema, bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <trace/reader.h>
#include <trace/recorder.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    trace_run_info run = {.platform = "sim", .seed = 42, .commit = "abc123", .manifest = "echo\n",
                          .workers = 2};
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
    assert_int_equal(0, scalar(db, "SELECT count(*) FROM events WHERE kind = 4 AND len > 0 AND"
                                   " (substr(payload, 1, 4) <> substr(CAST(x'00000000' AS BLOB), 1, 0)"
                                   " AND length(payload) <> 12)"));
    assert_int_equal(PER_THREAD, scalar(db, "SELECT count(*) FROM events WHERE task = 3"));
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM tasks WHERE id = 7 AND name = 'echo'"
                                   " AND parent = 1 AND exit_status = -5"));
    assert_int_equal(2, scalar(db, "SELECT count(*) FROM channels WHERE endpoint IN (70, 71)"));
    assert_int_equal(71, scalar(db, "SELECT peer FROM channels WHERE endpoint = 70"));
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM kinds WHERE name = 'DELIVER' AND id = 5"));
    assert_int_equal(1, scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'events_task'"));
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

static void test_dropped_past_buffer_limit(void **state)
{
    trace_recorder *rec;
    char err[256];
    sqlite3 *db;

    tmp_path("dropped");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    trace_recorder_set_buffer_limit(rec, 0); /* no buffer may be allocated */
    for (int i = 1; i <= 100; i++) {
        hal_trace_rec_t r = {.seq = (uint64_t)i, .kind = HAL_TR_CLOCK_READ, .task = 1};
        trace_recorder_record(rec, &r);
    }
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(SQLITE_OK, sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL));
    assert_int_equal(100, scalar(db, "SELECT dropped FROM run"));
    assert_int_equal(0, scalar(db, "SELECT count(*) FROM events"));
    sqlite3_close(db);
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
        hal_trace_rec_t r = {.seq = (uint64_t)i, .kind = HAL_TR_SEND, .task = 2, .chan = 1,
                             .peer = 2, .len = sizeof(blob), .data = blob};
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
          "more text more text more text more text more text more text more text\n", f);
    fclose(f);
    expect_open_error(path, "not a SQLite database");

    unlink(path);
    assert_int_equal(SQLITE_OK, sqlite3_open(path, &db));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL));
    sqlite3_close(db);
    expect_open_error(path, "not an Orrery trace");

    /* A newer schema. */
    make_trace(path, 3);
    assert_int_equal(SQLITE_OK, sqlite3_open(path, &db));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key ="
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
    assert_int_equal(-1, trace_recorder_open("/nonexistent-dir/x.db", NULL, &rec, err, sizeof(err)));
    assert_null(rec);
    assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
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
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_cannot_create),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
