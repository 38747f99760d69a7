/* test_replay.c — orrery replay: golden traces match, an altered output is caught and decoded, bad
 * traces fail cleanly. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <sim/replay.h>

#ifndef ORRERY_TRACES_DIR
#error "ORRERY_TRACES_DIR must name tests/traces"
#endif

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/orrery-test-replay-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Replay path/task; the report in out (malloc'd), the error line in err. */
static int replay(const char *path, const char *task, char **out, char *err, size_t errlen)
{
    size_t len;
    FILE *f = open_memstream(out, &len);
    trace_replay_opts o = {.path = path, .task = task, .out = f};
    err[0] = '\0';
    int rc = trace_replay(&o, err, errlen);
    fclose(f);
    return rc;
}

static void copy_golden(const char *name, char *dst, size_t len)
{
    char src[512], cmd[1200];
    snprintf(src, sizeof(src), "%s/%s", ORRERY_TRACES_DIR, name);
    snprintf(dst, len, "%s/%s", tmpdir, name);
    snprintf(cmd, sizeof(cmd), "cp %s %s", src, dst);
    assert_int_equal(0, system(cmd));
}

static void expect_error(const char *path, const char *task, const char *needle);

static void sql(const char *path, const char *stmt)
{
    sqlite3 *db;
    assert_int_equal(SQLITE_OK, sqlite3_open(path, &db));
    assert_int_equal(SQLITE_OK, sqlite3_exec(db, stmt, NULL, NULL, NULL));
    sqlite3_close(db);
}

/* In the payload of the event chosen by seq_sql, change the last byte of `word` to `to`. */
static void alter_payload(const char *path, const char *seq_sql, const char *word, char to)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char q[512];
    assert_int_equal(SQLITE_OK, sqlite3_open(path, &db));
    snprintf(q, sizeof(q), "SELECT seq, payload FROM events WHERE seq = (%s)", seq_sql);
    assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(db, q, -1, &st, NULL));
    assert_int_equal(SQLITE_ROW, sqlite3_step(st));
    sqlite3_int64 seq = sqlite3_column_int64(st, 0);
    int n = sqlite3_column_bytes(st, 1);
    unsigned char *p = malloc((size_t)n);
    memcpy(p, sqlite3_column_blob(st, 1), (size_t)n);
    sqlite3_finalize(st);
    unsigned char *at = memmem(p, (size_t)n, word, strlen(word));
    assert_non_null(at);
    at[strlen(word) - 1] = (unsigned char)to;
    assert_int_equal(
        SQLITE_OK,
        sqlite3_prepare_v2(db, "UPDATE events SET payload = ?1 WHERE seq = ?2", -1, &st, NULL));
    sqlite3_bind_blob(st, 1, p, n, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    assert_int_equal(SQLITE_DONE, sqlite3_step(st));
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(p);
}

static void golden_traces_match(void **state)
{
    static const char *const cases[][2] = {
        {"session.db", "init"}, {"session.db", "console"}, {"session.db", "shell"},
        {"session.db", "echo"}, {"restart.db", "init"},    {"restart.db", "shell"},
        {"restart.db", "echo"}, {"restart.db", "5"},       {"restart.db", "6"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[512], err[512], *out = NULL;
        snprintf(path, sizeof(path), "%s/%s", ORRERY_TRACES_DIR, cases[i][0]);
        int rc = replay(path, cases[i][1], &out, err, sizeof(err));
        if (rc != 0)
            fail_msg("%s --task %s: %d %s%s", cases[i][0], cases[i][1], rc, out, err);
        assert_non_null(strstr(out, "events matched"));
        free(out);
    }
}

/* One byte of echo's first reply text changed in the recording: replay must say so, decoded. */
static void altered_reply_is_caught(void **state)
{
    char path[512], err[512], *out = NULL;
    copy_golden("session.db", path, sizeof(path));
    /* echo's first reply carries the text "hello": make the recording say "hellp". */
    alter_payload(
        path,
        "SELECT min(e.seq) FROM events e JOIN tasks t ON t.id = e.task "
        "WHERE t.name = 'echo' AND e.kind = 4 AND instr(e.payload, CAST('hello' AS BLOB)) > 0",
        "hello", 'p');
    int rc = replay(path, "echo", &out, err, sizeof(err));
    assert_int_equal(1, rc);
    assert_non_null(strstr(out, "replay echo: divergence at event"));
    assert_non_null(strstr(out, "expected: SEND"));
    assert_non_null(strstr(out, "echo.reply"));
    assert_non_null(strstr(out, "text: \"hellp\""));
    assert_non_null(strstr(out, "actual:   SEND"));
    assert_non_null(strstr(out, "text: \"hello\""));
    assert_non_null(strstr(out, "differs:  payload"));
    free(out);
    /* The other tasks' recordings are untouched: they still match. */
    assert_int_equal(0, replay(path, "shell", &out, err, sizeof(err)));
    free(out);
}

/* A recording where the shell printed something else: the console write differs. */
static void altered_send_type_is_caught(void **state)
{
    char path[512], err[512], *out = NULL;
    copy_golden("session.db", path, sizeof(path));
    sql(path, "UPDATE events SET type = type + 1 WHERE seq = (SELECT max(e.seq) FROM events e "
              "JOIN tasks t ON t.id = e.task WHERE t.name = 'shell' AND e.kind = 4)");
    assert_int_equal(1, replay(path, "shell", &out, err, sizeof(err)));
    assert_non_null(strstr(out, "differs:  message type"));
    free(out);
}

/*
 * tcpip from two simulated nodes (tcpip-sim.db): it served a TCP echo both ways, a UDP datagram
 * and a ping. It replays; a changed byte of a frame it wrote is caught as a DEV_WRITE payload.
 */
static void tcpip_golden_replays_and_a_changed_frame_is_caught(void **state)
{
    char path[512], err[512], *out = NULL;
    snprintf(path, sizeof(path), "%s/tcpip-sim.db", ORRERY_TRACES_DIR);
    int rc = replay(path, "tcpip", &out, err, sizeof(err));
    if (rc != 0)
        fail_msg("tcpip-sim.db --task tcpip: %d %s%s", rc, out, err);
    assert_non_null(strstr(out, "events matched"));
    free(out);
    copy_golden("tcpip-sim.db", path, sizeof(path));
    /* the last frame tcpip wrote: its last byte off by one */
    sql(path, "UPDATE events SET payload = substr(payload, 1, length(payload) - 1) || "
              "CAST(char((unicode(substr(CAST(payload AS TEXT), -1)) + 1) % 128) AS BLOB) "
              "WHERE seq = (SELECT max(e.seq) FROM events e JOIN tasks t ON t.id = e.task "
              "WHERE t.name = 'tcpip' AND e.kind = 14)");
    assert_int_equal(1, replay(path, "tcpip", &out, err, sizeof(err)));
    assert_non_null(strstr(out, "expected: DEV_WRITE"));
    assert_non_null(strstr(out, "differs:  payload"));
    free(out);
}

/*
 * A task init started gets its manifest line's arg= (SPAWN records do not carry it): with
 * another address in the recorded manifest, tcpip's first frame (its gratuitous ARP) differs;
 * a manifest that does not parse is the trace's fault (exit 2).
 */
static void tcpip_spawn_arg_comes_from_the_manifest(void **state)
{
    char path[512], err[512], *out = NULL;
    copy_golden("tcpip-sim.db", path, sizeof(path));
    sql(path, "UPDATE run SET manifest = replace(manifest, '10.0.0.2/24', '10.0.0.9/24')");
    assert_int_equal(1, replay(path, "tcpip", &out, err, sizeof(err)));
    assert_non_null(strstr(out, "expected: DEV_WRITE"));
    assert_non_null(strstr(out, "differs:  payload"));
    free(out);
    sql(path, "UPDATE run SET manifest = 'program tcpip bogus=1'");
    expect_error(path, "tcpip", "the trace's manifest does not parse (line 1");
}

static void expect_error(const char *path, const char *task, const char *needle)
{
    char err[512], *out = NULL;
    int rc = replay(path, task, &out, err, sizeof(err));
    if (rc != 2)
        fail_msg("%s: status %d, want 2 (%s)", path, rc, out);
    assert_non_null(strstr(err, needle));
    assert_null(strchr(err, '\n'));
    free(out);
}

static void bad_traces_fail_cleanly(void **state)
{
    char path[512], cmd[1200];
    snprintf(path, sizeof(path), "%s/missing.db", tmpdir);
    expect_error(path, "echo", "no such file");

    snprintf(path, sizeof(path), "%s/empty.db", tmpdir);
    fclose(fopen(path, "w"));
    expect_error(path, "echo", "empty");

    snprintf(path, sizeof(path), "%s/garbage.db", tmpdir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    expect_error(path, "echo", "garbage.db");

    char src[512];
    copy_golden("session.db", src, sizeof(src));
    snprintf(path, sizeof(path), "%s/truncated.db", tmpdir);
    snprintf(cmd, sizeof(cmd), "head -c 20000 %s > %s", src, path);
    assert_int_equal(0, system(cmd));
    expect_error(path, "echo", "truncated.db");

    copy_golden("restart.db", path, sizeof(path));
    sql(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    expect_error(path, "echo", "newer");

    copy_golden("session.db", path, sizeof(path));
    expect_error(path, "nosuchserver", "no task 'nosuchserver'");

    /* Schema 1: no HANDLE records, so no way to name objects by handle. */
    sql(path, "UPDATE meta SET value = '1' WHERE key = 'schema_version'; "
              "DELETE FROM events WHERE kind = 19");
    expect_error(path, "echo", "HANDLE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_traces_match),
        cmocka_unit_test(altered_reply_is_caught),
        cmocka_unit_test(altered_send_type_is_caught),
        cmocka_unit_test(tcpip_golden_replays_and_a_changed_frame_is_caught),
        cmocka_unit_test(tcpip_spawn_arg_comes_from_the_manifest),
        cmocka_unit_test(bad_traces_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
