/* test_trace_capture.c — capture blocks: a recorder killed before expanding them, read back
 * (every record, in seq order across slots), a corrupt block (kept, counted, the rest read), a
 * capture file cut short, missing or another recording's; channels' interfaces from iface_seen
 * or, in a file without it, from the events; trace_out_remove_own taking what a bad block kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <trace/decode.h>
#include <trace/outpath.h>
#include <trace/reader.h>
#include <trace/recorder.h>

#include "capture_int.h" /* block formats: tr_entry_decode, tr_entry */

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 3
#define PER_THREAD 30000 /* several chunks each */

static char path[256], partial[300], side[320];

/* A trace and everything a killed recording of it leaves beside it. */
static void remove_trace(const char *base)
{
    static const char *const sib[] = {"", "-wal", "-shm", "-journal", "-capture"};
    char p[400];
    for (size_t i = 0; i < sizeof(sib) / sizeof(sib[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", base, sib[i]);
        unlink(p);
    }
}

static void fresh(const char *name)
{
    snprintf(path, sizeof(path), "%s/orrery-capture-%s-%d.db",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name, (int)getpid());
    snprintf(partial, sizeof(partial), "%s%s", path, TRACE_PARTIAL_SUFFIX);
    snprintf(side, sizeof(side), "%s-capture", partial);
    remove_trace(path);
    remove_trace(partial);
}

static bool exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

typedef struct producer {
    trace_recorder *rec;
    uint32_t id;
} producer;

/*
 * Thread id's records are seqs id+1, id+1+THREADS, ...: the slots' blocks
 * interleave in seq. Each thread's task is spawned by its first record and
 * exits at its last; the payload names the seq. Thread 0 creates channel
 * 70/71 (no interface of its own), the sends go on 70 or 71 as echo
 * messages, and thread 1 writes once to a device as init (an interface
 * that is no channel's).
 */
static void *produce(void *arg)
{
    producer *p = arg;
    for (uint64_t i = 0; i < PER_THREAD; i++) {
        uint64_t seq = i * THREADS + p->id + 1;
        hal_trace_rec_t r = {.seq = seq, .time_ns = seq * 10, .task = 10 + p->id};
        char name[16];
        if (i == 1 && p->id == 0) {
            r.kind = HAL_TR_CHAN_CREATE;
            r.chan = 70;
            r.peer = 71;
        } else if (i == 2 && p->id == 1) {
            r.kind = HAL_TR_DEV_WRITE;
            r.chan = 90;
            r.iface = trace_iface_from_name("init");
        } else if (i == 0) {
            snprintf(name, sizeof(name), "task%u", p->id);
            r.kind = HAL_TR_SPAWN;
            r.data = name;
            r.len = (uint32_t)strlen(name);
        } else if (i == PER_THREAD - 1) {
            r.kind = HAL_TR_EXIT;
            r.result = (int32_t)p->id;
        } else {
            r.kind = HAL_TR_SEND;
            r.chan = 70 + (uint32_t)(seq % 2);
            r.iface = trace_iface_from_name("echo");
            r.data = &seq;
            r.len = (i % 4) ? sizeof(seq) : 0;
        }
        trace_recorder_record(p->rec, &r);
    }
    return NULL;
}

/* A child records from THREADS threads, commits every record as capture blocks, and is killed. */
static void record_and_die(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        trace_recorder_faults f = {.hold_expansion = true};
        producer p[THREADS];
        pthread_t t[THREADS];
        trace_recorder *rec;
        char err[512];
        if (trace_recorder_open(path, NULL, &rec, err, sizeof(err)) != 0)
            _exit(3);
        trace_recorder_set_faults(rec, &f);
        for (uint32_t i = 0; i < THREADS; i++) {
            p[i] = (producer){rec, i};
            pthread_create(&t[i], NULL, produce, &p[i]);
        }
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        trace_recorder_commit(rec);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status;
    assert_int_equal(pid, waitpid(pid, &status, 0));
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static sqlite3_int64 scalar(const char *file, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    sqlite3_int64 v = -1;
    assert_int_equal(SQLITE_OK, sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL));
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/*
 * Both ends of 70/71 are echo channels; echo is named, and init if thread 1
 * recorded; the helper table is gone.
 */
static void check_ifaces(const char *file, bool init)
{
    char sql[160];

    assert_true(trace_iface_from_name("echo") != 0 && trace_iface_from_name("init") != 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM channels WHERE iface = %u",
             (unsigned)trace_iface_from_name("echo"));
    assert_int_equal(2, scalar(file, sql));
    assert_int_equal(2, scalar(file, "SELECT count(*) FROM channels"));
    assert_int_equal(1, scalar(file, "SELECT count(*) FROM interfaces WHERE name = 'echo'"));
    assert_int_equal(init, scalar(file, "SELECT count(*) FROM interfaces WHERE name = 'init'"));
    assert_int_equal(1 + init, scalar(file, "SELECT count(*) FROM interfaces"));
    assert_int_equal(0,
                     scalar(file, "SELECT count(*) FROM sqlite_master WHERE name = 'iface_seen'"));
}

/* Every one of the n records, in seq order across the slots, each task's and payload right. */
static void read_every_record(trace_db *db, uint64_t n)
{
    trace_iter *it;
    hal_trace_rec_t r;
    uint64_t next = 1;

    assert_int_equal(0, trace_iter_open(db, NULL, &it));
    while (trace_iter_next(it, &r) == 1) {
        assert_int_equal(next, r.seq);
        assert_int_equal(10 + (r.seq - 1) % THREADS, r.task);
        if (r.kind == HAL_TR_SEND && r.len) {
            uint64_t v;
            memcpy(&v, r.data, sizeof(v));
            assert_int_equal(r.seq, v);
        }
        next++;
    }
    trace_iter_close(it);
    assert_int_equal(n + 1, next);
}

/* A killed recorder's records are all captured; a reader expands them, in seq order. */
static void test_killed_then_read(void **state)
{
    const uint64_t n = (uint64_t)THREADS * PER_THREAD;
    trace_db *db;
    trace_run_row run;
    char err[512];

    (void)state;
    fresh("killed");
    record_and_die();
    assert_int_equal(0, scalar(partial, "SELECT count(*) FROM events"));
    assert_true(scalar(partial, "SELECT count(DISTINCT slot) FROM capture") == THREADS);
    assert_int_equal((sqlite3_int64)n, scalar(partial, "SELECT sum(count) FROM capture"));
    assert_true(exists(side));

    assert_int_equal(0, trace_db_open(partial, &db, err, sizeof(err)));
    assert_int_equal(0, trace_db_run(db, &run));
    assert_false(run.complete);
    read_every_record(db, n);
    assert_string_equal("task1", trace_db_task_name(db, 11));
    trace_db_close(db);
    /* The side rows: each task's spawn and exit, from different blocks. */
    assert_int_equal(THREADS, scalar(partial, "SELECT count(*) FROM tasks WHERE spawned_seq <"
                                              " exit_seq AND exit_status = id - 10"));
    assert_int_equal(-1, scalar(partial, "SELECT count(*) FROM capture")); /* dropped */
    assert_int_equal(1, scalar(partial, "SELECT count(*) FROM sqlite_master WHERE name ="
                                        " 'events_task'"));
    assert_false(exists(side)); /* every block expanded: the capture file is gone */
    check_ifaces(partial, true);
    remove_trace(partial);
}

/*
 * A cut recording from an Orrery before capture block format 2 held format 1
 * blocks (tr_entry after tr_entry): they still expand. Every block of slot 0
 * is rewritten as format 1 at the end of the capture file, its row pointed
 * there; then every record must read back, in order, payloads and all.
 */
static void test_format_1_blocks_still_expand(void **state)
{
    const uint64_t n = (uint64_t)THREADS * PER_THREAD;
    sqlite3 *db;
    sqlite3_stmt *st;
    trace_db *tdb;
    char err[512];
    int fd, rewritten = 0;

    (void)state;
    fresh("format1");
    record_and_die();
    assert_true((fd = open(side, O_RDWR)) >= 0);
    assert_int_equal(SQLITE_OK, sqlite3_open_v2(partial, &db, SQLITE_OPEN_READWRITE, NULL));
    assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(db,
                                                   "SELECT id, offset, size, format FROM capture"
                                                   " WHERE slot = 0 ORDER BY id",
                                                   -1, &st, NULL));
    while (sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        size_t size = (size_t)sqlite3_column_int64(st, 2);
        unsigned char *in = malloc(size), *out = malloc(size * 8 + 64), *o = out;
        assert_int_equal(2, sqlite3_column_int(st, 3));
        assert_int_equal((ssize_t)size, pread(fd, in, size, sqlite3_column_int64(st, 1)));
        for (size_t off = 0; off < size;) {
            tr_entry e;
            const unsigned char *payload;
            size_t used = tr_entry_decode(in + off, size - off, &e, &payload, NULL, 0);
            assert_true(used > 0);
            memset(o, 0, tr_entry_size(e.len));
            memcpy(o, &e, sizeof(e));
            memcpy(o + sizeof(e), payload, e.len);
            o += tr_entry_size(e.len);
            off += used;
        }
        off_t end = lseek(fd, 0, SEEK_END);
        assert_int_equal((ssize_t)(o - out), pwrite(fd, out, (size_t)(o - out), end));
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "UPDATE capture SET format = 1, offset = %lld, size = %zu"
                 " WHERE id = %lld",
                 (long long)end, (size_t)(o - out), (long long)id);
        assert_int_equal(SQLITE_OK, sqlite3_exec(db, sql, NULL, NULL, NULL));
        rewritten++;
        free(in);
        free(out);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    close(fd);
    assert_true(rewritten > 1);
    assert_int_equal(rewritten, scalar(partial, "SELECT count(*) FROM capture WHERE format = 1"));

    assert_int_equal(0, trace_db_open(partial, &tdb, err, sizeof(err)));
    read_every_record(tdb, n);
    trace_db_close(tdb);
    assert_int_equal(0, scalar(partial, "SELECT dropped FROM run"));
    remove_trace(partial);
}

/* A partial file from before iface_seen: repair finds the channels' interfaces in the events. */
static void test_old_file_ifaces(void **state)
{
    trace_repair_result res;
    sqlite3 *db;
    char err[512];

    (void)state;
    fresh("oldifaces");
    record_and_die();
    assert_int_equal(0, scalar(partial, "SELECT count(*) FROM iface_seen"));
    assert_int_equal(SQLITE_OK, sqlite3_open_v2(partial, &db, SQLITE_OPEN_READWRITE, NULL));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db, "DROP TABLE iface_seen; DROP INDEX events_task",
                                             NULL, NULL, NULL));
    sqlite3_close(db);
    assert_int_equal(0, trace_capture_repair(partial, &res, err, sizeof(err)));
    assert_int_equal((uint64_t)THREADS * PER_THREAD, res.records);
    check_ifaces(partial, true);
    /* The index an older file lacked is built. */
    assert_int_equal(1, scalar(partial, "SELECT count(*) FROM sqlite_master WHERE name ="
                                        " 'events_task'"));
    remove_trace(partial);
}

/* A block that does not parse is kept and counted; every other block is expanded. */
static void test_corrupt_block(void **state)
{
    const uint64_t n = (uint64_t)THREADS * PER_THREAD;
    trace_repair_result res;
    sqlite3 *db;
    char err[512];
    sqlite3_int64 bad_count;

    (void)state;
    fresh("corrupt");
    record_and_die();
    assert_int_equal(SQLITE_OK, sqlite3_open_v2(partial, &db, SQLITE_OPEN_READWRITE, NULL));
    /* The second block's row loses 20 bytes of it: its last entry is cut. */
    assert_int_equal(SQLITE_OK,
                     sqlite3_exec(db,
                                  "UPDATE capture SET size = size - 20"
                                  " WHERE id = (SELECT id FROM capture ORDER BY id LIMIT 1"
                                  " OFFSET 1)",
                                  NULL, NULL, NULL));
    sqlite3_close(db);
    bad_count = scalar(partial, "SELECT count FROM capture ORDER BY id LIMIT 1 OFFSET 1");
    assert_true(bad_count > 0);

    assert_int_equal(0, trace_capture_repair(partial, &res, err, sizeof(err)));
    assert_int_equal(1, res.bad_blocks);
    assert_int_equal(bad_count, res.bad_records);
    assert_int_equal(n - (uint64_t)bad_count, res.records);
    assert_non_null(strstr(res.first_bad, "capture block 2"));
    assert_true(strstr(res.first_bad, "past the end") || strstr(res.first_bad, "header cut"));
    assert_int_equal((sqlite3_int64)(n - (uint64_t)bad_count),
                     scalar(partial, "SELECT count(*) FROM events"));
    assert_int_equal(bad_count, scalar(partial, "SELECT dropped FROM run"));
    assert_int_equal(0, scalar(partial, "SELECT complete FROM run"));
    assert_int_equal(1, scalar(partial, "SELECT count(*) FROM capture WHERE bad IS NOT NULL"));
    /* Nothing left to expand: a second repair (and every reader) leaves it as it is. */
    uint64_t pending = 9;
    assert_int_equal(0, trace_capture_pending(partial, &pending));
    assert_int_equal(0, pending);
    assert_int_equal(0, trace_capture_repair(partial, &res, err, sizeof(err)));
    assert_int_equal(0, res.records);
    assert_int_equal(bad_count, scalar(partial, "SELECT dropped FROM run"));
    assert_true(exists(side)); /* the bad block's bytes are still in it */

    /* trace_out_remove_own (a benchmark's own temporary trace) takes the partial and the
       capture file the bad block kept; a directory at a sibling's name is not a file of ours. */
    char dir[400];
    snprintf(dir, sizeof(dir), "%s-wal", path);
    assert_int_equal(0, mkdir(dir, 0700));
    trace_out_remove_own(path);
    assert_false(exists(partial));
    assert_false(exists(side));
    assert_true(exists(dir));
    rmdir(dir);
    remove_trace(partial);
}

/* A capture file cut short: the blocks past its end are bad, every one before it is read. */
static void test_capture_file_cut(void **state)
{
    const uint64_t n = (uint64_t)THREADS * PER_THREAD;
    trace_repair_result res;
    char err[512];
    sqlite3_int64 last_off, last_count, last_size;

    (void)state;
    fresh("cut");
    record_and_die();
    last_off = scalar(partial, "SELECT offset FROM capture ORDER BY offset DESC LIMIT 1");
    last_size = scalar(partial, "SELECT size FROM capture ORDER BY offset DESC LIMIT 1");
    last_count = scalar(partial, "SELECT count FROM capture ORDER BY offset DESC LIMIT 1");
    assert_true(last_off >= 64 && last_size > 100 && last_count > 0);
    assert_int_equal(0, truncate(side, (off_t)(last_off + last_size / 2)));

    assert_int_equal(0, trace_capture_repair(partial, &res, err, sizeof(err)));
    assert_int_equal(1, res.bad_blocks);
    assert_int_equal(last_count, res.bad_records);
    assert_int_equal(n - (uint64_t)last_count, res.records);
    assert_non_null(strstr(res.first_bad, "the file ends"));
    assert_int_equal(last_count, scalar(partial, "SELECT dropped FROM run"));
    remove_trace(partial);
}

/* Without its capture file, or with another recording's, no block is read and none is guessed. */
static void test_capture_file_missing_or_foreign(void **state)
{
    const uint64_t n = (uint64_t)THREADS * PER_THREAD;
    trace_repair_result res;
    char err[512], other[340], other_side[360];

    (void)state;
    fresh("other");
    record_and_die();
    snprintf(other, sizeof(other), "%s", partial);
    snprintf(other_side, sizeof(other_side), "%s", side);
    fresh("foreign");
    record_and_die();
    /* The other killed recording's capture file put in place of this one's. */
    assert_int_equal(0, rename(other_side, side));
    assert_int_equal(0, trace_capture_repair(partial, &res, err, sizeof(err)));
    assert_int_equal(0, res.records);
    assert_int_equal(n, res.bad_records);
    assert_non_null(strstr(res.first_bad, "another recording's capture file"));
    assert_true(exists(side)); /* not ours to remove */
    remove_trace(partial);

    /* The other one, without any capture file. */
    assert_int_equal(0, trace_capture_repair(other, &res, err, sizeof(err)));
    assert_int_equal(0, res.records);
    assert_int_equal(n, res.bad_records);
    assert_non_null(strstr(res.first_bad, "No such file"));
    assert_int_equal((sqlite3_int64)n, scalar(other, "SELECT dropped FROM run"));
    remove_trace(other);
}

/* A closed trace holds no capture table; a flush expands while recording. */
static void test_flush_expands_close_drops(void **state)
{
    trace_recorder *rec;
    char err[512];
    producer p = {NULL, 0};

    (void)state;
    fresh("flush");
    assert_int_equal(0, trace_recorder_open(path, NULL, &rec, err, sizeof(err)));
    p.rec = rec;
    produce(&p);
    trace_recorder_flush(rec);
    assert_int_equal(PER_THREAD, scalar(partial, "SELECT count(*) FROM events"));
    assert_int_equal(0, scalar(partial, "SELECT count(*) FROM capture"));
    /* Expanded blocks gave their disk space back: the file is mostly holes until close. */
    struct stat sb;
    assert_int_equal(0, stat(side, &sb));
    assert_true(sb.st_size > PER_THREAD * 16); /* an encoded entry takes at least 16 bytes */
    assert_true((off_t)sb.st_blocks * 512 < sb.st_size / 4);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(PER_THREAD, scalar(path, "SELECT count(*) FROM events"));
    assert_int_equal(-1, scalar(path, "SELECT count(*) FROM capture"));
    assert_false(exists(side));
    assert_false(exists(partial));
    check_ifaces(path, false);
    remove_trace(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_then_read),
        cmocka_unit_test(test_corrupt_block),
        cmocka_unit_test(test_format_1_blocks_still_expand),
        cmocka_unit_test(test_capture_file_cut),
        cmocka_unit_test(test_capture_file_missing_or_foreign),
        cmocka_unit_test(test_flush_expands_close_drops),
        cmocka_unit_test(test_old_file_ifaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
