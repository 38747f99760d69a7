/* test_trace_nodes.c — a trace of a two-node simulated cluster (schema 3): recorded through
 * trace_recorder_set_nodes / trace_recorder_record_node, read back by every reader, node by
 * node: names, task names per node, counts per node, show's node column, the Perfetto
 * processes and cross-node frame flows, the pcap, and replay's --node. */
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

#include "traces/cluster_trace.h"
#include <sim/replay.h>
#include <trace/pcap.h>
#include <trace/reader.h>
#include <trace/recorder.h>
#include <trace/tools.h>

static char dir[64], path[128];

static int setup(void **state)
{
    char err[512], console[8192];

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/orrery-trace-nodes-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/cluster.db", dir);
    if (cluster_trace_record(path, console, sizeof(console), err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    /* The run did what the trace is about: the pings crossed and came back. */
    if (!strstr(console, "3 transmitted, 3 received")) {
        fprintf(stderr, "the client's console:\n%s\n", console);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static trace_db *open_trace(void)
{
    char err[512];
    trace_db *db;

    assert_int_equal(0, trace_db_open(path, &db, err, sizeof(err)));
    return db;
}

/* Does node have a task named name (by its SPAWN)? */
static bool has_task(trace_db *db, uint32_t node, const char *name)
{
    for (uint32_t id = 1; id < 64; id++) {
        const char *n = trace_db_task_name_on(db, node, id);
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

static void test_nodes_and_task_names(void **state)
{
    trace_db *db = open_trace();
    trace_run_row run;
    char list[128];

    (void)state;
    assert_int_equal(0, trace_db_run(db, &run));
    assert_int_equal(TRACE_SCHEMA_VERSION, run.schema_version);
    assert_true(run.complete);
    assert_int_equal(2, trace_db_node_count(db));
    assert_string_equal("client", trace_db_node_name(db, 0));
    assert_string_equal("server", trace_db_node_name(db, 1));
    assert_int_equal(1, trace_db_node_find(db, "server"));
    assert_int_equal(-1, trace_db_node_find(db, "nobody"));
    trace_db_node_list(db, list, sizeof(list));
    assert_string_equal("client, server", list);
    /* Each kernel numbers its tasks from 1: the names are the node's. */
    assert_true(has_task(db, 0, "shell"));
    assert_true(has_task(db, 0, "console"));
    assert_true(has_task(db, 0, "tcpip"));
    assert_false(has_task(db, 0, "tcpecho"));
    assert_true(has_task(db, 1, "tcpecho"));
    assert_true(has_task(db, 1, "tcpip"));
    assert_false(has_task(db, 1, "shell"));
    assert_string_equal("init", trace_db_task_name_on(db, 0, 1));
    assert_string_equal("init", trace_db_task_name_on(db, 1, 1));
    /* Each node's net0. */
    assert_int_not_equal(0, trace_db_device_id_on(db, 0, "net0"));
    assert_int_not_equal(0, trace_db_device_id_on(db, 1, "net0"));
    trace_db_close(db);
}

/* Per node, the events the iterator gives are that node's, and together they are the file. */
static void test_counts_per_node(void **state)
{
    trace_db *db = open_trace();
    trace_summary all, node[2];
    trace_iter *it;
    hal_trace_rec_t r;
    uint64_t last = 0;

    (void)state;
    assert_int_equal(0, trace_summary_compute(db, &all));
    for (uint32_t n = 0; n < 2; n++) {
        trace_db_select_node(db, n);
        assert_int_equal(0, trace_summary_compute(db, &node[n]));
        assert_true(node[n].events > 100);
        /* Only the node's rows, in seq order. */
        assert_int_equal(0, trace_iter_open(db, NULL, &it));
        while (trace_iter_next(it, &r) == 1) {
            assert_int_equal(n, trace_iter_node(it));
            assert_true(r.seq > last || n == 1);
            last = r.seq;
        }
        trace_iter_close(it);
        /* The tasks of the node's summary have the node's names. */
        bool shell = false, tcpecho = false;
        for (size_t i = 0; i < node[n].ntasks; i++) {
            shell |= strcmp(node[n].tasks[i].name, "shell") == 0;
            tcpecho |= strcmp(node[n].tasks[i].name, "tcpecho") == 0;
        }
        assert_true(n == 0 ? shell && !tcpecho : tcpecho && !shell);
        /* Pairing is per node: every message found its send. */
        assert_int_equal(0, node[n].unmatched_delivers);
    }
    assert_int_equal(all.events, node[0].events + node[1].events);
    for (int n = 0; n < 2; n++)
        trace_summary_free(&node[n]);
    trace_summary_free(&all);

    /* The sum agrees with SQL's count per node. */
    sqlite3 *sq;
    sqlite3_stmt *st;
    assert_int_equal(SQLITE_OK, sqlite3_open_v2(path, &sq, SQLITE_OPEN_READONLY, NULL));
    assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(sq,
                                                   "SELECT count(*), count(DISTINCT node),"
                                                   " max(node_seq) < max(seq) FROM events",
                                                   -1, &st, NULL));
    assert_int_equal(SQLITE_ROW, sqlite3_step(st));
    assert_int_equal(all.events, sqlite3_column_int64(st, 0));
    assert_int_equal(2, sqlite3_column_int64(st, 1));
    assert_int_equal(1, sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    sqlite3_close(sq);
    trace_db_close(db);
}

static char *capture(trace_db *db, int what, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);

    assert_non_null(f);
    if (what == 0) {
        assert_int_equal(0, trace_show(db, NULL, f));
    } else if (what == 1) {
        assert_int_equal(0, trace_summary_print_nodes(db, f));
    } else {
        assert_int_equal(0, trace_export_perfetto(db, f, TRACE_CLOCK_AUTO));
    }
    fclose(f);
    return buf;
}

static void test_show_and_summary(void **state)
{
    trace_db *db = open_trace();
    char err[512];
    size_t len;

    (void)state;
    char *show = capture(db, 0, &len);
    /* A node column after the time: both nodes' lines, the tasks named on their node. */
    assert_non_null(strstr(show, "ms client shell:"));
    assert_non_null(strstr(show, "ms server tcpecho:"));
    assert_null(strstr(show, "client tcpecho:"));
    assert_null(strstr(show, "server shell:"));
    free(show);

    assert_int_equal(0, trace_db_select_node_name(db, "server", err, sizeof(err)));
    show = capture(db, 0, &len);
    assert_null(strstr(show, "ms client "));
    assert_non_null(strstr(show, "ms server tcpecho:"));
    free(show);
    assert_int_equal(-1, trace_db_select_node_name(db, "nobody", err, sizeof(err)));
    assert_non_null(strstr(err, "no node 'nobody' (its nodes: client, server)"));

    trace_db_select_node(db, -1);
    char *sum = capture(db, 1, &len);
    assert_non_null(strstr(sum, "nodes: 2 (client, server)"));
    char *c = strstr(sum, "== node client (0):"), *s = strstr(sum, "== node server (1):");
    assert_non_null(c);
    assert_non_null(s);
    assert_true(c < s);
    free(sum);
    trace_db_close(db);
}

static void test_perfetto_and_pcap(void **state)
{
    trace_db *db = open_trace();
    trace_pcap_stats all, one;
    trace_pcap *p;
    char err[512], out[160];
    size_t len;

    (void)state;
    char *json = capture(db, 2, &len);
    assert_non_null(
        strstr(json, "\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"client\""));
    assert_non_null(
        strstr(json, "\"process_name\",\"ph\":\"M\",\"pid\":2,\"args\":{\"name\":\"server\""));
    /* Frames that crossed: at least the pings and their replies, both ways. */
    assert_non_null(strstr(json, "\"name\":\"frame\",\"cat\":\"net\",\"ph\":\"s\""));
    assert_non_null(strstr(json, "\"name\":\"frame\",\"cat\":\"net\",\"ph\":\"f\""));
    free(json);

    /* Every node's frames, or one node's. */
    snprintf(out, sizeof(out), "%s/all.pcap", dir);
    assert_int_equal(0, trace_pcap_open(out, &p, err, sizeof(err)));
    assert_true(trace_pcap_has_net0(db));
    assert_int_equal(0, trace_pcap_export(db, p, &all, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_close(p, err, sizeof(err)));
    trace_db_select_node(db, 1);
    snprintf(out, sizeof(out), "%s/server.pcap", dir);
    assert_int_equal(0, trace_pcap_open(out, &p, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_export(db, p, &one, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_close(p, err, sizeof(err)));
    assert_true(one.in >= 3 && one.out >= 3); /* the echo requests in, the replies out */
    assert_true(all.in > one.in && all.out > one.out);
    assert_int_equal(0, all.bad);
    trace_db_close(db);
}

static int replay(const char *task, const char *node, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    trace_replay_opts o = {.path = path, .task = task, .node = node, .out = f};
    int rc = trace_replay(&o, err, errlen);

    fclose(f);
    if (rc == 0)
        assert_non_null(strstr(buf, "events matched"));
    free(buf);
    return rc;
}

static void test_replay_needs_a_node(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(2, replay("tcpecho", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "the trace holds 2 nodes (client, server)"));
    assert_int_equal(2, replay("tcpecho", "nobody", err, sizeof(err)));
    assert_non_null(strstr(err, "no node 'nobody'"));
    assert_int_equal(2, replay("tcpecho", "client", err, sizeof(err)));
    assert_non_null(strstr(err, "no task 'tcpecho'"));
    assert_int_equal(0, replay("tcpecho", "server", err, sizeof(err)));
    /* tcpip's arg (its address) comes from the server's own manifest. */
    assert_int_equal(0, replay("tcpip", "server", err, sizeof(err)));
    assert_int_equal(0, replay("tcpip", "client", err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_and_task_names), cmocka_unit_test(test_counts_per_node),
        cmocka_unit_test(test_show_and_summary),     cmocka_unit_test(test_perfetto_and_pcap),
        cmocka_unit_test(test_replay_needs_a_node),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
