/* test_httpd_sim.c — the whole httpd in the simulator, judged as an HTTP client judges it: two
 * nodes, node 0 (10.0.0.2) runs tcpip, the fs server on an ext2 image (made at test time by
 * tests/traces/make-httpd-image.sh) and httpd; node 1 runs tcpip and `client`, which opens one
 * connection after another, sends each one's requests (pipelined) and reads the answers to the
 * connection's end. Every answer is parsed as a client does (status line, headers,
 * Content-Length, body) and checked: status, reason, Content-Type, the error bodies, which
 * statuses end the connection, the /status JSON (valid JSON, its counters) and that httpd holds
 * no more handles after serving than before (docs/httpd.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <iface/init_client.h>
#include <iface/tcp.h>
#include <image.h>
#include <sim/blk.h>
#include <sim/sim.h>

enum { REQ_TCP = 1, REQ_CONNECT = 10, RESP_MAX = 65536, CONNS = 8, ANSWERS_MAX = 8 };

/* One answer as a client sees it. */
typedef struct answer {
    int status;
    char reason[64];
    char head[1024]; /* the header lines, "\r\n"-separated */
    char body[6000];
    size_t body_len;
} answer_t;

static struct {
    char req[CONNS][4096];
    int nconns;
    int done;
    bool failed;
    char resp[CONNS][RESP_MAX];
    size_t resp_len[CONNS];
    uint64_t done_ns;
} R;

typedef struct client {
    os_handle_t tcp, conn;
    int which;
} client_t;

static void client_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    c->tcp = c->conn = OS_HANDLE_NONE;
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
}

static void connect_next(os_ctx_t *ctx, client_t *c)
{
    tcp_connect_send(ctx, c->tcp,
                     &(tcp_connect_t){REQ_CONNECT + (uint32_t)c->which, 0x0a000002, 80});
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    static union {
        init_connected_t ic;
        tcp_opened_t op;
        tcp_data_t d;
    } m;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.ic) != 0) {
            R.failed = true;
            return;
        }
        c->tcp = m.ic.chan;
        connect_next(ctx, c);
    } else if (ev->handle == c->tcp) {
        if (tcp_opened_decode(ev, &m.op) != 0) {
            R.failed = true;
            return;
        }
        c->conn = m.op.chan;
    } else if (ev->handle == c->conn) {
        int w = c->which;
        if (ev->type == tcp_msg_established) {
            /* the requests in pieces of at most one message */
            const char *rq = R.req[w];
            size_t len = strlen(rq), off = 0;
            while (off < len) {
                size_t n = len - off > TCP_DATA_MAX ? TCP_DATA_MAX : len - off;
                m.d.data_len = (uint32_t)n;
                memcpy(m.d.data, rq + off, n);
                if (tcp_data_send(ctx, c->conn, &m.d) != 0)
                    R.failed = true;
                off += n;
            }
        } else if (tcp_data_decode(ev, &m.d) == 0) {
            if (R.resp_len[w] + m.d.data_len > RESP_MAX) {
                R.failed = true;
                return;
            }
            memcpy(R.resp[w] + R.resp_len[w], m.d.data, m.d.data_len);
            R.resp_len[w] += m.d.data_len;
        } else if (ev->type == tcp_msg_eof) {
            os_handle_close(ctx, c->conn);
            c->conn = OS_HANDLE_NONE;
            R.done++;
            if (++c->which < R.nconns)
                connect_next(ctx, c);
            else
                R.done_ns = os_clock_now(ctx);
        } else {
            fprintf(stderr, "connection %d failed (message type %u)\n", w, (unsigned)ev->type);
            R.failed = true;
        }
    }
}

static const os_program_t client = {"client", sizeof(client_t), client_start, client_event};

/* ---- the answers, parsed ----------------------------------------------------------------- */

/* The answers of connection w into a[]; returns how many, or -1 if the stream is not HTTP. */
static int parse_answers(int w, answer_t *a, int max)
{
    const char *p = R.resp[w], *end = p + R.resp_len[w];
    int n = 0;
    while (p < end) {
        if (n == max)
            return -1;
        answer_t *x = &a[n];
        memset(x, 0, sizeof *x);
        const char *eoh = NULL;
        for (const char *q = p; q + 4 <= end && !eoh; q++)
            if (memcmp(q, "\r\n\r\n", 4) == 0)
                eoh = q;
        if (!eoh || end - p < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0)
            return -1;
        x->status = atoi(p + 9);
        const char *eol = strstr(p, "\r\n");
        snprintf(x->reason, sizeof x->reason, "%.*s", (int)(eol - (p + 13)), p + 13);
        snprintf(x->head, sizeof x->head, "%.*s", (int)(eoh + 2 - (eol + 2)), eol + 2);
        const char *cl = strstr(x->head, "Content-Length: ");
        size_t len = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
        p = eoh + 4;
        if ((size_t)(end - p) < len || len > sizeof x->body)
            return -1;
        memcpy(x->body, p, len);
        x->body_len = len;
        p += len;
        n++;
    }
    return n;
}

static bool has_header(const answer_t *a, const char *line)
{
    char want[256];
    snprintf(want, sizeof want, "%s\r\n", line);
    return strstr(a->head, want) != NULL;
}

/* ---- JSON: valid or not (RFC 8259's grammar, no more) ----------------------------------------- */

static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *json_number(const char *p)
{
    const char *s = p;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return NULL;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9')
        return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    return p > s ? p : NULL;
}

static const char *json_list(const char *p, char close, bool object)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (object) {
            p = json_string(json_ws(p));
            if (!p)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(p);
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    if (*p == '{')
        return json_list(p, '}', true);
    if (*p == '[')
        return json_list(p, ']', false);
    if (*p == '"')
        return json_string(p);
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    return json_number(p);
}

static bool json_valid(const char *s)
{
    const char *p = json_value(s);
    return p && *json_ws(p) == 0;
}

/* A number after `key` (e.g. "\"requests\":") in s at or after from, -1 if none. */
static long json_num_after(const char *s, const char *from, const char *key)
{
    const char *k = strstr(from ? from : s, key);
    return k ? strtol(k + strlen(key), NULL, 10) : -1;
}

/* ---- the run ------------------------------------------------------------------------------ */

static const char HOST[] = "Host: 10.0.0.2\r\n";
static const char KEEP[] = "GET /sub/ HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"; /* kept open after */

/* A path whose /www-prefixed form is exactly `len` bytes: names of 99 bytes and a last one. */
static void long_path(char *out, size_t len)
{
    size_t want = len - 4, o = 0; /* "/www" */
    while (o < want) {
        size_t seg = want - o > 100 ? 100 : want - o;
        out[o] = '/';
        memset(out + o + 1, 'a', seg - 1);
        o += seg;
    }
    out[o] = 0;
}

static void run(void)
{
    char img[] = "/tmp/test_httpd_sim_XXXXXX";
    int fd = mkstemp(img);
    assert_true(fd >= 0);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sh %s/tests/traces/make-httpd-image.sh %s", ORRERY_SOURCE_DIR,
             img);
    assert_int_equal(system(cmd), 0);

    char p1024[1100], p1025[1100];
    long_path(p1024, 1024); /* fits the fs interface's FS_PATH_MAX */
    long_path(p1025, 1025); /* one past it */
    int k = 0;
    /* 0: /status before anything else */
    snprintf(R.req[k++], sizeof R.req[0], "GET /status HTTP/1.1\r\n%sConnection: close\r\n\r\n",
             HOST);
    /* 1: a keep-alive connection: a directory's index, the root's, a missing name, a method not
     * allowed, a range, a path at the fs limit, a range past the end, the last with
     * Connection: close */
    snprintf(R.req[k++], sizeof R.req[0],
             "GET /sub/ HTTP/1.1\r\n%s\r\n"
             "GET / HTTP/1.1\r\n%s\r\n"
             "GET /missing.html HTTP/1.1\r\n%s\r\n"
             "DELETE /hello.txt HTTP/1.1\r\n%s\r\n"
             "GET /hello.txt HTTP/1.1\r\n%sRange: bytes=10-19\r\n\r\n"
             "GET %s HTTP/1.1\r\n%s\r\n"
             "GET /hello.txt HTTP/1.1\r\n%sRange: bytes=5000-\r\n\r\n"
             "GET /hello.txt HTTP/1.1\r\n%sConnection: close\r\n\r\n",
             HOST, HOST, HOST, HOST, HOST, p1024, HOST, HOST, HOST);
    /* 2: /status again: the counters moved, the handles did not */
    snprintf(R.req[k++], sizeof R.req[0], "GET /status HTTP/1.1\r\n%sConnection: close\r\n\r\n",
             HOST);
    /* 3..7: after a kept request, answers after which the request stream cannot be trusted:
     * the connection ends there, the request pipelined behind is not answered */
    const char *fatal[] = {
        "NOT A REQUEST\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nContent-Length: 99999\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: 10.0.0.2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nTransfer-Encoding: chunked\r\n\r\n",
        NULL, /* the path one past the limit */
    };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        if (fatal[i])
            snprintf(R.req[k], sizeof R.req[0], "%s%sGET /hello.txt HTTP/1.1\r\n%s\r\n", KEEP,
                     fatal[i], HOST);
        else
            snprintf(R.req[k], sizeof R.req[0], "%sGET %s HTTP/1.1\r\n%s\r\nGET / HTTP/1.1\r\n%s\r\n",
                     KEEP, p1025, HOST, HOST);
        k++;
    }
    R.nconns = k;
    assert_true(k <= CONNS);

    static const char m0[] = "program tcpip arg=addr=10.0.0.2/24\n"
                             "program fs\n"
                             "program httpd reach=tcp,fs,net\n";
    static const char m1[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program client reach=tcp\n";
    static const os_program_t *image[64];
    size_t n = 0;
    for (const os_program_t *const *p = orrery_programs; *p && n < 62; p++)
        image[n++] = *p;
    image[n++] = &client;
    image[n] = NULL;
    char err[256];
    sim_disk_t *disk = sim_disk_open(img, err, sizeof err);
    unlink(img);
    assert_non_null(disk);
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof cfg);
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = image;
        cfg[i].seed = 1 + (uint64_t)i;
        cfg[i].net = true;
        cfg[i].init_arg = i == 0 ? m0 : m1;
        cfg[i].init_arg_len = strlen(i == 0 ? m0 : m1);
    }
    cfg[0].disk = disk;
    assert_int_equal(sim_boot_nodes(cfg, 2), 0);
    /* until every connection was read to its end, then 200 ms more for the last FINs; a
     * connection left open by httpd ends at its idle timeout (10 s), long before the step cap */
    for (uint64_t steps = 0; steps < 20000000 && !R.failed; steps++) {
        if (R.done == R.nconns && sim_now() > R.done_ns + 200000000ull)
            break;
        if (!sim_step())
            break;
    }
    if (R.done != R.nconns || R.failed) {
        fputs(sim_node_console_output(0, NULL), stderr);
        fputs(sim_node_console_output(1, NULL), stderr);
    }
    long leaks = sim_teardown();
    sim_disk_free(disk);
    assert_false(R.failed);
    assert_int_equal(R.done, R.nconns);
    assert_int_equal(leaks, 0);
}

static answer_t A[ANSWERS_MAX];

static void check_status_body(const answer_t *a, long *requests, long *handles, long *conns)
{
    assert_int_equal(a->status, 200);
    assert_true(has_header(a, "Content-Type: application/json"));
    assert_true(has_header(a, "Cache-Control: no-store"));
    assert_true(has_header(a, "Connection: close"));
    char body[sizeof a->body + 1];
    memcpy(body, a->body, a->body_len);
    body[a->body_len] = 0;
    if (!json_valid(body))
        fail_msg("/status is not JSON: %s", body);
    assert_non_null(strstr(body, "{\"commit\":\""));
    assert_non_null(strstr(body, "\"uptime_ms\":"));
    assert_non_null(strstr(body, "\"disk\":{\"block_size\":1024,"));
    assert_non_null(strstr(body, "\"read_only\":"));
    assert_non_null(strstr(body, "\"net\":{\"rx_frames\":"));
    const char *h = strstr(body, "\"name\":\"httpd\"");
    assert_non_null(h);
    *handles = json_num_after(body, h, "\"handles\":");
    const char *hd = strstr(body, "\"httpd\":{");
    assert_non_null(hd);
    *conns = json_num_after(body, hd, "\"connections\":");
    *requests = json_num_after(body, hd, "\"requests\":");
    assert_int_equal(json_num_after(body, hd, "\"refused\":"), 0);
}

static void test_httpd_answers_as_a_client_expects(void **state)
{
    (void)state;
    run();
    long req0, h0, c0, req2, h2, c2;
    /* 0: /status */
    assert_int_equal(parse_answers(0, A, ANSWERS_MAX), 1);
    check_status_body(&A[0], &req0, &h0, &c0);
    assert_int_equal(req0, 1);
    assert_int_equal(c0, 1);

    /* 1: the keep-alive connection, one answer per request in order */
    assert_int_equal(parse_answers(1, A, ANSWERS_MAX), 8);
    static const struct {
        int status;
        const char *reason, *type;
    } want[8] = {
        {200, "OK", "text/html; charset=utf-8"},
        {200, "OK", "text/html; charset=utf-8"},
        {404, "Not Found", "text/plain; charset=utf-8"},
        {405, "Method Not Allowed", "text/plain; charset=utf-8"},
        {206, "Partial Content", "text/plain; charset=utf-8"},
        {404, "Not Found", "text/plain; charset=utf-8"},
        {416, "Range Not Satisfiable", "text/plain; charset=utf-8"},
        {200, "OK", "text/plain; charset=utf-8"},
    };
    for (int i = 0; i < 8; i++) {
        char type[128];
        snprintf(type, sizeof type, "Content-Type: %s", want[i].type);
        if (A[i].status != want[i].status || strcmp(A[i].reason, want[i].reason) != 0 ||
            !has_header(&A[i], type) || !has_header(&A[i], "Server: orrery-httpd"))
            fail_msg("answer %d: %d %s, head:\n%s", i, A[i].status, A[i].reason, A[i].head);
        assert_true(has_header(&A[i], i < 7 ? "Connection: keep-alive" : "Connection: close"));
    }
    assert_memory_equal(A[0].body, "<p>a sub page\n", A[0].body_len);
    assert_non_null(strstr(A[1].body, "served by httpd"));
    assert_int_equal(A[2].body_len, strlen("404 Not Found\n"));
    assert_memory_equal(A[2].body, "404 Not Found\n", A[2].body_len);
    assert_true(has_header(&A[3], "Allow: GET, HEAD"));
    assert_memory_equal(A[3].body, "405 Method Not Allowed\n", A[3].body_len);
    assert_true(has_header(&A[4], "Content-Range: bytes 10-19/5000"));
    assert_int_equal(A[4].body_len, 10);
    assert_memory_equal(A[4].body, "line 0001\n", 10);
    assert_true(has_header(&A[6], "Content-Range: bytes */5000"));
    assert_memory_equal(A[6].body, "416 Range Not Satisfiable\n", A[6].body_len);
    assert_int_equal(A[7].body_len, 5000);
    assert_true(has_header(&A[7], "Last-Modified: Sun, 09 Sep 2001 01:46:40 GMT"));

    /* 2: /status again: 1 + 8 requests before it; httpd holds what it held before */
    assert_int_equal(parse_answers(2, A, ANSWERS_MAX), 1);
    check_status_body(&A[0], &req2, &h2, &c2);
    assert_int_equal(req2, req0 + 8 + 1);
    assert_int_equal(c2, 1);
    assert_int_equal(h2, h0);

    /* 3..7: the kept answer, then one with Connection: close, and the end */
    static const struct {
        int status;
        const char *body;
    } fatal[] = {{400, "400 Bad Request\n"},
                 {413, "413 Content Too Large\n"},
                 {505, "505 HTTP Version Not Supported\n"},
                 {501, "501 Not Implemented\n"},
                 {414, "414 URI Too Long\n"}};
    for (int i = 0; i < 5; i++) {
        int got = parse_answers(3 + i, A, ANSWERS_MAX);
        if (got != 2 || A[0].status != 200 || A[1].status != fatal[i].status)
            fail_msg("connection %d: %d answer(s), %d then %d", 3 + i, got, A[0].status,
                     A[1].status);
        assert_true(has_header(&A[0], "Connection: keep-alive"));
        assert_true(has_header(&A[1], "Connection: close"));
        assert_int_equal(A[1].body_len, strlen(fatal[i].body));
        assert_memory_equal(A[1].body, fatal[i].body, A[1].body_len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_httpd_answers_as_a_client_expects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
