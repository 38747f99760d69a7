/* test_http_parse.c — httpd's request parser, path normalisation, ranges, dates and arg. */
#include <http_parse.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int parse(const char *s, http_req_t *r)
{
    return http_parse_request(s, strlen(s), r);
}

static void test_simple_get(void **state)
{
    (void)state;
    http_req_t r;
    const char *s = "GET /a/b.html?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/7\r\n"
                    "Accept: */*\r\n\r\nGET";
    int n = parse(s, &r);
    assert_int_equal(n, (int)(strstr(s, "\r\n\r\n") - s + 4));
    assert_int_equal(r.method, HTTP_GET);
    assert_int_equal(r.target_len, strlen("/a/b.html?x=1"));
    assert_memory_equal(r.target, "/a/b.html?x=1", r.target_len);
    assert_true(r.keep_alive);
    assert_int_equal(r.content_length, 0);
    assert_int_equal(r.minor, 1);
}

static void test_incomplete_needs_more(void **state)
{
    (void)state;
    http_req_t r;
    const char *full = "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for (size_t i = 0; i < strlen(full); i++)
        assert_int_equal(http_parse_request(full, i, &r), 0);
    assert_int_equal(parse(full, &r), (int)strlen(full));
    assert_int_equal(r.method, HTTP_HEAD);
    assert_true(r.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &r), 18);
    assert_false(r.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\nConnection: Close\n\n", &r), 34);
    assert_false(r.keep_alive);
}

static void test_methods_and_versions(void **state)
{
    (void)state;
    http_req_t r;
    assert_true(parse("POST / HTTP/1.1\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);
    assert_string_equal(r.method_name, "POST");
    assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &r), -505);
    assert_int_equal(parse("GET / HTTP/1.1 x\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET /\r\n\r\n", &r), -400);
    assert_int_equal(parse("G(T / HTTP/1.1\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET / HTTX/1.1\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET /a\x01 HTTP/1.1\r\n\r\n", &r), -400);
}

static void test_headers(void **state)
{
    (void)state;
    http_req_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET / HTTP/1.1\r\n folded\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", &r) > 0, 1);
    assert_int_equal(r.content_length, 12);
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", &r), -400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r),
                     -400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", &r), -413);
    assert_int_equal(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), -501);
    assert_true(parse("GET / HTTP/1.1\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Range: bytes=0-9\r\n\r\n",
                      &r) > 0);
    assert_true(r.has_ims);
    assert_int_equal(r.ims, 784111777);
    assert_int_equal(r.range_len, 9);
    assert_memory_equal(r.range, "bytes=0-9", 9);
    assert_true(parse("GET / HTTP/1.1\r\nIf-Modified-Since: yesterday\r\n\r\n", &r) > 0);
    assert_false(r.has_ims);
}

static void test_nul_and_limits(void **state)
{
    (void)state;
    http_req_t r;
    char buf[HTTP_HEADERS_MAX + 100];
    const char nul[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    assert_int_equal(http_parse_request(nul, sizeof nul - 1, &r), -400);
    const char nulh[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    assert_int_equal(http_parse_request(nulh, sizeof nulh - 1, &r), -400);
    /* a target over HTTP_URI_MAX: 414, even before its line ends */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', HTTP_URI_MAX + 50);
    assert_int_equal(http_parse_request(buf, HTTP_URI_MAX + 55, &r), -414);
    memcpy(buf + HTTP_URI_MAX + 55, " HTTP/1.1\r\n\r\n", 13);
    assert_int_equal(http_parse_request(buf, HTTP_URI_MAX + 68, &r), -414);
    /* headers over HTTP_HEADERS_MAX: 431 */
    size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\n");
    while (n <= HTTP_HEADERS_MAX)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X-Pad: aaaaaaaaaa\r\n");
    assert_int_equal(http_parse_request(buf, n, &r), -431);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    assert_int_equal(http_parse_request(buf, n, &r), -431);
}

/* The method is known as soon as its token is whole, also for a refusal: a refused HEAD's answer
 * has no body (the 400 to "HEAD \xe6..." once carried one, and a client reading it as a HEAD's
 * answer took the body for the next response). */
static void test_refused_method(void **state)
{
    (void)state;
    http_req_t r;
    const char bad_target[] = "HEAD \xe6\xe6 HTTP/1.1\r\n\r\n";
    assert_int_equal(http_parse_request(bad_target, sizeof bad_target - 1, &r), -400);
    assert_int_equal(r.method, HTTP_HEAD);
    assert_string_equal(r.method_name, "HEAD");
    assert_int_equal(parse("\r\nHEAD / HTTP/2.0\r\n\r\n", &r), -505);
    assert_int_equal(r.method, HTTP_HEAD);
    assert_int_equal(parse("\nHEAD /a", &r), 0); /* incomplete: the method is known */
    assert_int_equal(r.method, HTTP_HEAD);
    assert_int_equal(parse("HEAD", &r), 0); /* the token is not whole yet */
    assert_int_equal(r.method, 0);
    assert_int_equal(parse("GET\x01 / HTTP/1.1\r\n\r\n", &r), -400);
    assert_int_equal(r.method, 0);
    char buf[HTTP_HEADERS_MAX + 100];
    size_t n = (size_t)snprintf(buf, sizeof buf, "HEAD / HTTP/1.1\r\n");
    while (n <= HTTP_HEADERS_MAX)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X-Pad: aaaaaaaaaa\r\n");
    assert_int_equal(http_parse_request(buf, n, &r), -431);
    assert_int_equal(r.method, HTTP_HEAD);
}

static void test_pipelined(void **state)
{
    (void)state;
    http_req_t r;
    const char *s = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    int n = parse(s, &r);
    assert_int_equal(n, 19);
    assert_memory_equal(r.target, "/1", 2);
    assert_int_equal(parse(s + n, &r), 19);
    assert_memory_equal(r.target, "/2", 2);
}

static int norm(const char *t, char *out)
{
    return http_path_normalise(t, strlen(t), out, HTTP_PATH_MAX + 1);
}

static void test_path_normalise(void **state)
{
    (void)state;
    char out[HTTP_PATH_MAX + 1];
    assert_int_equal(norm("/", out), 0);
    assert_string_equal(out, "/");
    assert_int_equal(norm("/a//b/./c", out), 0);
    assert_string_equal(out, "/a/b/c");
    assert_int_equal(norm("/dir/", out), 0);
    assert_string_equal(out, "/dir/");
    assert_int_equal(norm("/a%20b.txt?q=1#f", out), 0);
    assert_string_equal(out, "/a b.txt");
    assert_int_equal(norm("http://host/x/y", out), 0);
    assert_string_equal(out, "/x/y");
    assert_int_equal(norm("//", out), 0);
    assert_string_equal(out, "/");
    assert_int_equal(norm("/.", out), 0);
    assert_string_equal(out, "/");
}

static void test_path_refuses_escapes(void **state)
{
    (void)state;
    char out[HTTP_PATH_MAX + 1];
    const char *bad[] = {
        "/../etc/passwd", "/a/../../x", "/%2e%2e/x", "/%2E%2e/x", "/.%2e/x", "/a%2f..%2fb",
        "/a%2Fb",         "/a%5cb",     "/a\\b",     "/a%00b",    "/a%0ab",  "/a%",
        "/a%g0",          "a/b",        "",          "*",         "/..",     "http://host",
        "/a%7f",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = norm(bad[i], out);
        if (rc != -400)
            fail_msg("'%s' gave %d", bad[i], rc);
    }
    char small[8];
    assert_int_equal(http_path_normalise("/abcdefghij", 11, small, sizeof small), -414);
}

static void test_range(void **state)
{
    (void)state;
    uint64_t a, b;
#define R(s, size) http_range(s, strlen(s), size, &a, &b)
    assert_int_equal(R("bytes=0-9", 100), 1);
    assert_int_equal(a, 0);
    assert_int_equal(b, 9);
    assert_int_equal(R("bytes=90-", 100), 1);
    assert_int_equal(a, 90);
    assert_int_equal(b, 99);
    assert_int_equal(R("bytes=-10", 100), 1);
    assert_int_equal(a, 90);
    assert_int_equal(b, 99);
    assert_int_equal(R("bytes=-1000", 100), 1);
    assert_int_equal(a, 0);
    assert_int_equal(R("bytes=50-1000", 100), 1);
    assert_int_equal(b, 99);
    assert_int_equal(R("bytes=100-", 100), -416);
    assert_int_equal(R("bytes=-0", 100), -416);
    assert_int_equal(R("bytes=0-", 0), -416);
    assert_int_equal(R("bytes=0-1,5-6", 100), 0);
    assert_int_equal(R("bytes=9-1", 100), 0);
    assert_int_equal(R("items=0-1", 100), 0);
    assert_int_equal(R("bytes=x-1", 100), 0);
    assert_int_equal(R("bytes=99999999999999999999999-", 100), 0);
#undef R
}

static void test_dates(void **state)
{
    (void)state;
    char buf[40];
    http_date_format(784111777, buf, sizeof buf);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_date_format(0, buf, sizeof buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    int64_t t;
    for (int64_t v = 0; v < 4000000000LL; v += 86399 * 37 + 13) {
        http_date_format(v, buf, sizeof buf);
        assert_int_equal(http_date_parse(buf, strlen(buf), &t), 0);
        assert_int_equal(t, v);
    }
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", 29, &t), -1);
    assert_int_equal(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), -1);
}

static void test_mime(void **state)
{
    (void)state;
    assert_string_equal(http_mime("/www/index.html"), "text/html; charset=utf-8");
    assert_string_equal(http_mime("/x/a.PNG"), "image/png");
    assert_string_equal(http_mime("/x.d/noext"), "application/octet-stream");
    assert_string_equal(http_mime("/x/big.bin"), "application/octet-stream");
    /* a bare name (no directory part) has its extension too */
    assert_string_equal(http_mime("index.html"), "text/html; charset=utf-8");
    assert_string_equal(http_mime("noext"), "application/octet-stream");
    assert_string_equal(http_mime("/.css"), "text/css");
}

static void test_config(void **state)
{
    (void)state;
    httpd_config_t c;
    char err[160];
    assert_int_equal(httpd_config_parse("", 0, &c, err, sizeof err), 0);
    assert_string_equal(c.root, "/www");
    assert_int_equal(c.port, 80);
    assert_false(c.log);
    assert_int_equal(c.timeout_ms, 10000);
    const char *a = "root=/srv/,port=8080,log=on,timeout=2";
    assert_int_equal(httpd_config_parse(a, strlen(a), &c, err, sizeof err), 0);
    assert_string_equal(c.root, "/srv");
    assert_int_equal(c.port, 8080);
    assert_true(c.log);
    assert_int_equal(c.timeout_ms, 2000);
    a = "timeout=500ms,root=/";
    assert_int_equal(httpd_config_parse(a, strlen(a), &c, err, sizeof err), 0);
    assert_int_equal(c.timeout_ms, 500);
    assert_string_equal(c.root, "");
    /* every port of 1..65535, from one digit to five */
    const struct {
        const char *arg;
        uint16_t port;
    } ports[] = {{"port=1", 1}, {"port=8", 8}, {"port=80", 80}, {"port=65535", 65535}};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        assert_int_equal(httpd_config_parse(ports[i].arg, strlen(ports[i].arg), &c, err, sizeof err), 0);
        assert_int_equal(c.port, ports[i].port);
    }
    const char *bad[] = {"port=0",    "port=65536", "port=x",  "root=rel",    "log=maybe",
                         "timeout=0", "size=3",     "novalue", "timeout=5000", "port=",
                         "port=99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(httpd_config_parse(bad[i], strlen(bad[i]), &c, err, sizeof err), -1);
        assert_non_null(strstr(err, "bad arg"));
        assert_null(strchr(err, '\n'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_incomplete_needs_more),
        cmocka_unit_test(test_methods_and_versions),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_nul_and_limits),
        cmocka_unit_test(test_refused_method),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_path_normalise),
        cmocka_unit_test(test_path_refuses_escapes),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_mime),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
