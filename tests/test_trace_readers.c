/* test_trace_readers.c — summary latency pairing, show decoding, Perfetto JSON export, unfinished
 * traces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <trace/decode.h>
#include <trace/outpath.h>
#include <trace/pair.h>
#include <trace/reader.h>
#include <trace/recorder.h>
#include <trace/tools.h>

#include <os/errno.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];

static void rec_one(trace_recorder *rec, hal_trace_rec_t r)
{
    trace_recorder_record(rec, &r);
}

/*
 * init:1, echo:2, shell:3; channel 10 (shell) <-> 11 (echo). Shell sends ten
 * echo.request messages, then echo receives them: message i (from 0) waits
 * 100 * (i + 1) ns. Echo's one reply is never delivered.
 */
static void make_trace(void)
{
    trace_run_info run = {.platform = "hosted", .commit = "test"};
    trace_recorder *rec;
    char err[256];
    unsigned char req[16] = {1, 0, 0, 0, 2, 0, 'h', 'i'};
    uint64_t seq = 0;

    snprintf(path, sizeof(path), "/tmp/orrery-readers-%d.db", (int)getpid());
    assert_int_equal(0, trace_recorder_open(path, &run, &rec, err, sizeof(err)));
    rec_one(rec, (hal_trace_rec_t){
                     .seq = ++seq, .kind = HAL_TR_SPAWN, .task = 1, .data = "init", .len = 4});
    rec_one(rec,
            (hal_trace_rec_t){
                .seq = ++seq, .kind = HAL_TR_SPAWN, .task = 2, .arg = 1, .data = "echo", .len = 4});
    rec_one(
        rec,
        (hal_trace_rec_t){
            .seq = ++seq, .kind = HAL_TR_SPAWN, .task = 3, .arg = 1, .data = "shell", .len = 5});
    rec_one(rec, (hal_trace_rec_t){
                     .seq = ++seq, .kind = HAL_TR_CHAN_CREATE, .task = 1, .chan = 10, .peer = 11});
    for (int i = 0; i < 10; i++)
        rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                       .time_ns = 1000u * i,
                                       .kind = HAL_TR_SEND,
                                       .task = 3,
                                       .chan = 10,
                                       .peer = 11,
                                       .type = 1,
                                       .len = 8,
                                       .data = req});
    /* a failed send is not queued and must not be paired */
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 9500,
                                   .kind = HAL_TR_SEND,
                                   .task = 3,
                                   .chan = 10,
                                   .peer = 0,
                                   .type = 1,
                                   .result = -4,
                                   .len = 8,
                                   .data = req});
    for (int i = 0; i < 10; i++)
        rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                       .time_ns = 1000u * i + 100u * (i + 1),
                                       .kind = HAL_TR_DELIVER,
                                       .task = 2,
                                       .chan = 11,
                                       .peer = 10,
                                       .type = 1,
                                       .len = 8,
                                       .data = req});
    req[0] = 9;
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 20000,
                                   .kind = HAL_TR_SEND,
                                   .task = 2,
                                   .chan = 11,
                                   .peer = 10,
                                   .type = 2,
                                   .len = 8,
                                   .data = req});
    rec_one(
        rec,
        (hal_trace_rec_t){
            .seq = ++seq, .time_ns = 21000, .kind = HAL_TR_CLOCK_READ, .task = 2, .arg = 21000});
    rec_one(rec, (hal_trace_rec_t){
                     .seq = ++seq, .time_ns = 22000, .kind = HAL_TR_EXIT, .task = 2, .result = -5});
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
}

static int setup(void **state)
{
    make_trace();
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static trace_db *open_trace(void)
{
    trace_db *db;
    char err[512];
    if (trace_db_open(path, &db, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return db;
}

static void test_percentile_nearest_rank(void **state)
{
    uint64_t v[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_int_equal(5, trace_percentile(v, 10, 50));
    assert_int_equal(9, trace_percentile(v, 10, 90));
    assert_int_equal(10, trace_percentile(v, 10, 99));
    assert_int_equal(1, trace_percentile(v, 1, 99));
    assert_int_equal(0, trace_percentile(v, 0, 50));
}

static void test_summary_pairs_send_with_deliver(void **state)
{
    trace_db *db = open_trace();
    trace_summary s;

    assert_int_equal(0, trace_summary_compute(db, &s));
    assert_int_equal(10, s.all.n);
    assert_int_equal(500, s.all.p50);
    assert_int_equal(900, s.all.p90);
    assert_int_equal(1000, s.all.p99);
    assert_int_equal(1000, s.all.max);
    assert_int_equal(1, s.unmatched_sends);
    assert_int_equal(0, s.unmatched_delivers);
    assert_string_equal("hosted", s.run.platform);
    int seen = 0;
    for (size_t i = 0; i < s.ntasks; i++) {
        const trace_summary_row *r = &s.tasks[i];
        if (r->id == 3) {
            assert_string_equal("shell", r->name);
            assert_int_equal(10, r->sent);
            assert_int_equal(80, r->sent_bytes);
            assert_int_equal(1, r->send_errors);
            assert_int_equal(0, r->recv);
            seen++;
        } else if (r->id == 2) {
            assert_string_equal("echo", r->name);
            assert_int_equal(10, r->recv);
            assert_int_equal(80, r->recv_bytes);
            assert_int_equal(1, r->sent);
            assert_int_equal(10, r->latency.n);
            assert_int_equal(500, r->latency.p50);
            seen++;
        }
    }
    assert_int_equal(2, seen);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    trace_summary_print(&s, out);
    fclose(out);
    assert_non_null(strstr(text, "shell"));
    assert_non_null(strstr(text, "p50 500ns"));
    free(text);
    trace_summary_free(&s);
    trace_db_close(db);
}

static char *show(const trace_filter *f)
{
    trace_db *db = open_trace();
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_int_equal(0, trace_show(db, f, out));
    fclose(out);
    trace_db_close(db);
    return text;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_show_decodes_and_filters(void **state)
{
    trace_filter f = {0};
    char *text = show(NULL);

    assert_int_equal(28, count(text, "\n"));
    assert_non_null(strstr(text, "SPAWN"));
    assert_non_null(strstr(text, "shell:3"));
    assert_non_null(strstr(text, "-> EFULL"));
    if (trace_iface_from_name("echo"))
        assert_int_equal(21, count(text, "echo.request {id: 1, text: \"hi\"}"));
    else
        assert_non_null(strstr(text, "01 00 00 00 02 00 68 69"));
    free(text);

    f.task = "echo";
    text = show(&f);
    assert_int_equal(14, count(text, "\n")); /* spawn, 10 delivers, send, clock, exit */
    assert_null(strstr(text, "shell:3 "));
    free(text);

    f.task = "3";
    f.limit = 2;
    text = show(&f);
    assert_int_equal(2, count(text, "\n"));
    free(text);

    memset(&f, 0, sizeof(f));
    f.kind = HAL_TR_DELIVER;
    text = show(&f);
    assert_int_equal(10, count(text, "DELIVER"));
    free(text);
}

/* ---- a minimal JSON syntax check ------------------------------------------------------- */

static const char *ws(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static const char *value(const char *p);

static const char *string(const char *p)
{
    if (*p != '"')
        return NULL;
    for (p++; *p && *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *value(const char *p)
{
    p = ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (!(p = string(ws(p))))
                    return NULL;
                p = ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = value(p)))
                return NULL;
            p = ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (*p == '"')
        return string(p);
    if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
        return p + 4;
    if (!strncmp(p, "false", 5))
        return p + 5;
    char *end;
    strtod(p, &end);
    return end == p ? NULL : end;
}

static void test_perfetto_json_with_flows(void **state)
{
    trace_db *db = open_trace();
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_int_equal(0, trace_export_perfetto(db, out, TRACE_CLOCK_AUTO));
    fclose(out);
    trace_db_close(db);
    const char *end = value(text);
    assert_non_null(end);
    assert_int_equal(0, *ws(end));
    assert_non_null(strstr(text, "\"traceEvents\""));
    assert_int_equal(11, count(text, "\"ph\":\"s\"")); /* every successful send */
    assert_int_equal(10, count(text, "\"ph\":\"f\"")); /* every delivered one */
    assert_non_null(strstr(text, "\"name\":\"shell:3\""));
    /* each flow end names the id of a flow start: the SENDs have seq 5..14 */
    for (int id = 5; id <= 14; id++) {
        char s[64], f[64];
        snprintf(s, sizeof(s), "\"ph\":\"s\",\"id\":%d,", id);
        snprintf(f, sizeof(f), "\"bp\":\"e\",\"id\":%d,", id);
        assert_non_null(strstr(text, s));
        assert_non_null(strstr(text, f));
    }
    free(text);
}

static void test_decode_by_interface(void **state)
{
    uint32_t echo = trace_iface_from_name("echo");
    unsigned char req[] = {1, 0, 0, 0, 3, 0, 'a', '"', 'c'};
    char out[256];

    if (!echo)
        skip();
    assert_string_equal("echo", trace_iface_name(echo));
    assert_int_equal(0, trace_decode_payload(echo, 1, req, sizeof(req), 0, out, sizeof(out)));
    assert_string_equal("{id: 1, text: \"a\\\"c\"}", out);
    /* one byte short: hex with a note */
    assert_int_equal(1, trace_decode_payload(echo, 1, req, sizeof(req) - 1, 0, out, sizeof(out)));
    assert_non_null(strstr(out, "malformed echo.request"));
    assert_int_equal(echo, trace_guess_iface(1, req, sizeof(req), 0));
    assert_int_equal(0, trace_guess_iface(77, req, sizeof(req), 0));
    char label[64];
    assert_string_equal("echo.reply", trace_msg_label(echo, 2, label, sizeof(label)));
}

/* The tcp and udp interfaces decode like any other; addresses print dotted, statuses named. */
static void test_decode_tcp_udp(void **state)
{
    uint32_t tcp = trace_iface_from_name("tcp"), udp = trace_iface_from_name("udp");
    char out[256];

    assert_int_not_equal(0, tcp);
    assert_int_not_equal(0, udp);
    /* tcp.accepted {addr 10.0.2.2, port 41396, lport 80, chan}: one handle */
    unsigned char acc[] = {0x02, 0x02, 0x00, 0x0a, 0xb4, 0xa1, 80, 0};
    assert_int_equal(0, trace_decode_payload(tcp, 6, acc, sizeof(acc), 1, out, sizeof(out)));
    assert_string_equal("{addr: 10.0.2.2, port: 41396, lport: 80, chan: handle#0}", out);
    /* tcp.error {type 0, status OS_ECONNREFUSED} */
    unsigned char err[8] = {0, 0, 0, 0};
    int32_t refused = OS_ECONNREFUSED;
    memcpy(err + 4, &refused, 4);
    assert_int_equal(0, trace_decode_payload(tcp, 12, err, sizeof(err), 0, out, sizeof(out)));
    assert_string_equal("{type: 0, status: -17 ECONNREFUSED}", out);
    /* tcp.data {data "hi"} */
    unsigned char data[] = {2, 0, 'h', 'i'};
    assert_int_equal(0, trace_decode_payload(tcp, 8, data, sizeof(data), 0, out, sizeof(out)));
    assert_non_null(strstr(out, "{data: [2 bytes] 68 69  |hi|}"));
    /* udp.sendto {addr 10.0.2.3, port 53, data} */
    unsigned char to[] = {0x03, 0x02, 0x00, 0x0a, 53, 0, 1, 0, 'q'};
    assert_int_equal(0, trace_decode_payload(udp, 4, to, sizeof(to), 0, out, sizeof(out)));
    assert_string_equal("{addr: 10.0.2.3, port: 53, data: [1 bytes] 71  |q|}", out);
    char label[64];
    assert_string_equal("tcp.accepted", trace_msg_label(tcp, 6, label, sizeof(label)));
    assert_string_equal("udp.recvfrom", trace_msg_label(udp, 5, label, sizeof(label)));
}

/*
 * While a recording runs (and after a kill) its records are in FILE.partial:
 * the readers open it, and say it did not finish; FILE itself names it.
 */
static void test_unfinished_recording_reads(void **state)
{
    char file[300], partial[320], err[512], *text = NULL;
    trace_recorder *rec;
    trace_run_row run;
    trace_summary s;
    trace_db *db;
    size_t len = 0;

    snprintf(file, sizeof(file), "/tmp/orrery-readers-live-%d.db", (int)getpid());
    snprintf(partial, sizeof(partial), "%s%s", file, TRACE_PARTIAL_SUFFIX);
    unlink(file);
    unlink(partial);
    assert_int_equal(0, trace_recorder_open(file, NULL, &rec, err, sizeof(err)));
    rec_one(rec,
            (hal_trace_rec_t){.seq = 1, .kind = HAL_TR_SPAWN, .task = 1, .data = "init", .len = 4});
    rec_one(rec, (hal_trace_rec_t){.seq = 2, .time_ns = 5, .kind = HAL_TR_CLOCK_READ, .task = 1});
    trace_recorder_flush(rec);

    assert_int_equal(-1, trace_db_open(file, &db, err, sizeof(err)));
    assert_non_null(strstr(err, partial));
    assert_int_equal(0, trace_db_open(partial, &db, err, sizeof(err)));
    assert_int_equal(0, trace_db_run(db, &run));
    assert_false(run.complete);
    assert_false(run.closed);
    assert_true(run.commit_unix_ns >= run.start_unix_ns && run.start_unix_ns > 0);
    assert_int_equal(0, trace_summary_compute(db, &s));
    FILE *m = open_memstream(&text, &len);
    trace_summary_print(&s, m);
    fclose(m);
    assert_non_null(strstr(text, "did not finish cleanly; its last commit was"));
    free(text);
    trace_summary_free(&s);
    trace_db_close(db);

    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(0, trace_db_open(file, &db, err, sizeof(err)));
    assert_int_equal(0, trace_db_run(db, &run));
    assert_true(run.complete && run.closed);
    assert_int_equal(2, run.events);
    trace_db_close(db);
    unlink(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile_nearest_rank),
        cmocka_unit_test(test_summary_pairs_send_with_deliver),
        cmocka_unit_test(test_show_decodes_and_filters),
        cmocka_unit_test(test_perfetto_json_with_flows),
        cmocka_unit_test(test_decode_by_interface),
        cmocka_unit_test(test_decode_tcp_udp),
        cmocka_unit_test(test_unfinished_recording_reads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
