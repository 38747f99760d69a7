/* test_shell_net.c — the shell's network commands: parser, HTTP parser, and sessions in the
 * simulator against a fake tcpip that serves net and tcp by the contracts of net.h and tcp.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <iface/init_client.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <image.h>
#include <shell_http.h>
#include <shell_parse.h>
#include <sim/sim.h>

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* ---- the parser ------------------------------------------------------------------------- */

static shell_kind_t parse(const char *line, shell_cmd_t *c)
{
    return shell_parse(line, strlen(line), c);
}

static void test_parse_net_commands(void **state)
{
    shell_cmd_t c;
    assert_int_equal(SHELL_NETSTAT, parse("netstat", &c));
    assert_int_equal(SHELL_PING, parse("ping 10.0.2.2", &c));
    assert_string_equal("10.0.2.2", c.host);
    assert_int_equal(SHELL_PING_DEFAULT, c.count);
    assert_int_equal(SHELL_PING, parse("ping host.example 100", &c));
    assert_string_equal("host.example", c.host);
    assert_int_equal(100, c.count);
    assert_int_equal(SHELL_FETCH, parse("fetch http://10.0.2.2:8080/x/y?q=1#frag", &c));
    assert_string_equal("10.0.2.2", c.host);
    assert_int_equal(8080, c.port);
    assert_string_equal("/x/y?q=1", c.arg);
    assert_int_equal(SHELL_FETCH, parse("fetch HTTP://Host-1.test", &c));
    assert_string_equal("Host-1.test", c.host);
    assert_int_equal(80, c.port);
    assert_string_equal("/", c.arg);
    assert_int_equal(SHELL_FETCH, parse("fetch http://h?x", &c));
    assert_string_equal("/?x", c.arg);
    assert_int_equal(SHELL_FETCH, parse("fetch http://h:65535/", &c));
    assert_int_equal(65535, c.port);
}

static void expect_error(const char *line, const char *msg)
{
    shell_cmd_t c;
    if (parse(line, &c) != SHELL_ERROR)
        fail_msg("'%s' was accepted", line);
    assert_string_equal(msg, c.error);
}

static void test_parse_net_errors(void **state)
{
    expect_error("netstat -a", "shell: netstat takes no arguments");
    expect_error("ping", "shell: usage: ping HOST [COUNT]");
    expect_error("ping a 1 2", "shell: usage: ping HOST [COUNT]");
    expect_error("ping 1.2.3.4 0", "shell: ping: COUNT must be 1..100, not '0'");
    expect_error("ping 1.2.3.4 101", "shell: ping: COUNT must be 1..100, not '101'");
    expect_error("ping 1.2.3.4 many", "shell: ping: COUNT must be 1..100, not 'many'");
    expect_error("ping a/b", "shell: ping: bad host name 'a/b'");
    expect_error("fetch", "shell: usage: fetch http://HOST[:PORT]/PATH");
    expect_error("fetch a b", "shell: usage: fetch http://HOST[:PORT]/PATH");
    expect_error("fetch ftp://x", "shell: fetch: only http:// URLs are supported, not 'ftp://'");
    expect_error("fetch https://x/", "shell: fetch: https is not supported (no TLS); use http://");
    expect_error("fetch x.test/a", "shell: fetch: URL must start with http://, not 'x.test/a'");
    expect_error("fetch http:///x", "shell: fetch: no host in the URL");
    expect_error("fetch http://h:0/", "shell: fetch: bad port '0' in the URL (1..65535)");
    expect_error("fetch http://h:65536/", "shell: fetch: bad port '65536' in the URL (1..65535)");
    expect_error("fetch http://h:/", "shell: fetch: bad port '' in the URL (1..65535)");
    expect_error("fetch http://h:8x/", "shell: fetch: bad port '8x' in the URL (1..65535)");
    expect_error("fetch http://u@h/", "shell: fetch: user names in URLs are not supported");
    expect_error("fetch http://[::1]/", "shell: fetch: IPv6 addresses are not supported");
    expect_error("fetch http://a,b/", "shell: fetch: bad host name 'a,b' in the URL");
    expect_error("fetch http://h/\x01",
                 "shell: fetch: byte 0x01 in the URL must be percent-encoded");

    char line[SHELL_LINE_MAX];
    int n = snprintf(line, sizeof line, "fetch http://h/");
    memset(line + n, 'a', SHELL_URL_MAX - 8); /* "http://h/" and this: one byte over */
    line[n + SHELL_URL_MAX - 8] = 0;
    expect_error(line, "shell: fetch: URL too long (513 bytes, limit 512)");
    line[n + SHELL_URL_MAX - 9] = 0; /* at the limit */
    shell_cmd_t c;
    assert_int_equal(SHELL_FETCH, parse(line, &c));

    char host[SHELL_HOST_MAX + 20];
    memset(host, 'h', sizeof host);
    snprintf(line, sizeof line, "ping %.*s", SHELL_HOST_MAX + 1, host);
    assert_int_equal(SHELL_ERROR, parse(line, &c)); /* 254 bytes: one over */
    snprintf(line, sizeof line, "ping %.*s", SHELL_HOST_MAX, host);
    assert_int_equal(SHELL_PING, parse(line, &c));
}

static void test_help_lists_the_net_commands(void **state)
{
    char buf[4096];
    shell_help(buf, sizeof buf);
    assert_non_null(strstr(buf, "\nnet "));
    assert_non_null(strstr(buf, "\nnetstat "));
    assert_non_null(strstr(buf, "\nping HOST [COUNT] "));
    assert_non_null(strstr(buf, "\nfetch http://HOST[:PORT]/PATH "));
}

/* ---- the HTTP parser -------------------------------------------------------------------- */

static struct {
    char lines[8192];
} H;

static void on_line(void *arg, const char *line)
{
    size_t n = strlen(H.lines);
    snprintf(H.lines + n, sizeof H.lines - n, "%s|", line);
}

/* Feed s in pieces of `step` bytes; the result of the last feed. */
static int feed(http_resp_t *r, const char *s, size_t len, size_t step)
{
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0; at += step) {
        size_t n = len - at < step ? len - at : step;
        rc = http_resp_feed(r, (const uint8_t *)s + at, n, on_line, NULL);
    }
    return rc;
}

static void test_http_request(void **state)
{
    char buf[512];
    size_t n = http_request(buf, sizeof buf, "10.0.2.2", 8080, "/x");
    assert_string_equal("GET /x HTTP/1.0\r\nHost: 10.0.2.2:8080\r\nUser-Agent: orrery-fetch\r\n"
                        "Connection: close\r\n\r\n",
                        buf);
    assert_int_equal(strlen(buf), n);
    http_request(buf, sizeof buf, "h.test", 80, "/");
    assert_non_null(strstr(buf, "\r\nHost: h.test\r\n"));
    assert_int_equal(0, http_request(buf, 20, "h", 80, "/"));
}

static void test_http_response_in_any_pieces(void **state)
{
    const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length:  11 \r\n"
                        "X-Folded: a\r\n b\nLast: bare LF\n\r\nhello world";
    for (size_t step = 1; step <= sizeof resp; step++) {
        http_resp_t r;
        http_resp_init(&r);
        memset(&H, 0, sizeof H);
        assert_int_equal(0, feed(&r, resp, sizeof resp - 1, step));
        assert_int_equal(0, http_resp_end(&r));
        assert_int_equal(200, r.status);
        assert_string_equal("OK", r.reason);
        assert_int_equal(11, r.body);
        assert_true(r.has_length);
        assert_string_equal("HTTP/1.1 200 OK|Content-Type: text/plain|Content-Length:  11 |"
                            "X-Folded: a| b|Last: bare LF|",
                            H.lines);
    }
}

static void expect_bad(const char *resp, size_t len, const char *error)
{
    http_resp_t r;
    http_resp_init(&r);
    memset(&H, 0, sizeof H);
    int rc = feed(&r, resp, len, 7);
    if (rc == 0)
        rc = http_resp_end(&r);
    assert_int_equal(-1, rc);
    assert_int_equal(HTTP_BAD, r.phase);
    assert_string_equal(error, r.error);
    assert_int_equal(-1, http_resp_feed(&r, (const uint8_t *)"x", 1, on_line, NULL));
}

static void test_http_malformed_responses(void **state)
{
    expect_bad("", 0, "empty response (the server closed without answering)");
    expect_bad("SSH-2.0-OpenSSH\r\n", 17, "malformed response (status line 'SSH-2.0-OpenSSH')");
    expect_bad("HTTP/1.0 20 OK\r\n", 16, "malformed response (status line 'HTTP/1.0 20 OK')");
    expect_bad("HTTP/1.0 200", 12, "malformed response (it ended in the status line)");
    expect_bad("HTTP/1.0 200 OK\r\nA: b\r\n", 23, "malformed response (it ended in the headers)");
    expect_bad("HTTP/1.0 200 OK\r\nno colon\r\n\r\n", 29,
               "malformed response (header line 'no colon')");
    expect_bad("HTTP/1.0 200 OK\r\nBad name: x\r\n\r\n", 32,
               "malformed response (header name 'Bad name')");
    expect_bad("HTTP/1.0 200 OK\r\nContent-Length: 1x\r\n\r\n", 38,
               "malformed response (Content-Length '1x')");
    expect_bad("HTTP/1.0 200 OK\r\ncontent-length: 3\r\nContent-Length: 4\r\n\r\n", 56,
               "malformed response (two different Content-Lengths)");
    expect_bad("HTTP/1.0 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", 60,
               "malformed response (Content-Length too large)");
    expect_bad("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nabc", 41,
               "malformed response (body 3 bytes, Content-Length 5)");
    expect_bad("HTTP/1.0 200 OK\r\nA: \0\r\n\r\n", 25,
               "malformed response (a NUL byte in the headers)");

    char *big = malloc(HTTP_HEADERS_MAX + 100);
    strcpy(big, "HTTP/1.0 200 OK\r\n");
    size_t n = strlen(big);
    while (n < HTTP_HEADERS_MAX + 50) {
        memcpy(big + n, "X-Pad: 0123456789\r\n", 19);
        n += 19;
    }
    expect_bad(big, n, "malformed response (headers over 16384 bytes)");
    memset(big, 'a', HTTP_LINE_MAX + 10);
    expect_bad(big, HTTP_LINE_MAX + 10, "malformed response (a header line over 2048 bytes)");
    free(big);
}

static void test_http_control_bytes_are_not_printed(void **state)
{
    const char resp[] = "HTTP/1.0 404 Not\x1b[2J Found\r\nServer: caf\xc3\xa9\r\n\r\n";
    http_resp_t r;
    http_resp_init(&r);
    memset(&H, 0, sizeof H);
    assert_int_equal(0, feed(&r, resp, sizeof resp - 1, 3));
    assert_int_equal(0, http_resp_end(&r));
    assert_int_equal(404, r.status);
    assert_int_equal(0, r.body);
    assert_string_equal("HTTP/1.0 404 Not?[2J Found|Server: caf??|", H.lines);
}

/* A fixed xorshift: the same bytes every run. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)rnd_state;
}

/* Random responses (mostly plausible ones, mutated) in random pieces: the parser never reads
 * outside its input, counts exactly the bytes after the blank line, and stays BAD once BAD. */
static void test_http_random_responses(void **state)
{
    static const char good[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nA: b\r\n\r\nbody";
    uint8_t buf[256];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = rnd() % sizeof buf;
        if (iter % 2 == 0) {
            len = sizeof good - 1;
            memcpy(buf, good, len);
            for (int k = rnd() % 4; k > 0; k--)
                buf[rnd() % len] = (uint8_t)rnd();
        } else {
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rnd();
        }
        http_resp_t r;
        http_resp_init(&r);
        int rc = 0;
        for (size_t at = 0; at < len;) {
            size_t n = 1 + rnd() % 32;
            n = n > len - at ? len - at : n;
            uint8_t *piece = malloc(n); /* exactly n bytes: ASan sees any read past them */
            memcpy(piece, buf + at, n);
            int was_bad = r.phase == HTTP_BAD;
            rc = http_resp_feed(&r, piece, n, NULL, NULL);
            free(piece);
            assert_true(rc == 0 || r.phase == HTTP_BAD);
            assert_true(!was_bad || rc == -1);
            at += n;
        }
        int end = http_resp_end(&r);
        if (end == 0) {
            assert_int_equal(HTTP_BODY, r.phase);
            assert_true(r.status >= 100 && r.status <= 999);
            assert_true(r.body <= len);
        } else {
            assert_true(strlen(r.error) > 0 && strlen(r.error) < HTTP_ERROR_MAX);
        }
    }
}

/* Random command lines for the network commands: one result, an error that fits. */
static void test_parse_random_net_lines(void **state)
{
    static const char *const heads[] = {"ping ", "fetch ", "fetch http://",
                                        "fetch HTTP://h:", "netstat "};
    static const char alphabet[] = "ab.-_:/?#@[]%0123456789 \t\x01\xff";
    char line[600];
    shell_cmd_t c;
    for (int iter = 0; iter < 20000; iter++) {
        int n = snprintf(line, sizeof line, "%s", heads[rnd() % 5]);
        size_t len = (size_t)n + rnd() % (sizeof line - (size_t)n);
        for (size_t i = (size_t)n; i < len; i++)
            line[i] = alphabet[rnd() % (sizeof alphabet - 1)];
        shell_kind_t k = shell_parse(line, len, &c);
        if (k == SHELL_ERROR) {
            assert_true(strlen(c.error) > 0 && strlen(c.error) < 120);
            assert_null(strchr(c.error, '\n'));
        } else if (k == SHELL_PING) {
            assert_true(c.count >= 1 && c.count <= SHELL_PING_MAX && strlen(c.host) > 0);
        } else if (k == SHELL_FETCH) {
            assert_true(c.port >= 1 && strlen(c.host) > 0 && c.arg[0] == '/');
            assert_true(strlen(c.arg) <= SHELL_URL_MAX);
        }
    }
}

/* ---- a fake tcpip ------------------------------------------------------------------------ */

/*
 * Serves net and tcp by their contracts, with canned answers:
 *   resolve: 10.0.2.2 and host.test -> 10.0.2.2; nosuch.invalid -> ENOENT; nodns.test ->
 *     EUNREACH; silent.test -> no answer.
 *   ping 10.0.2.2: pong (rtt 400 us + seq us); 10.0.2.7: even seqs fail ETIMEDOUT; 10.0.2.8:
 *     never answered.
 *   connect 10.0.2.2 port 80: a good response of BODY_LEN bytes in small pieces; 81: refused;
 *     82: reply EUNREACH; 83: not HTTP; 84: reset in the body; 85: never established;
 *     86: a body shorter than its Content-Length.
 */
enum { BODY_LEN = 20000, FAKE_CONNS = 8, FAKE_PINGS = 16 };

static struct {
    os_handle_t conns[FAKE_CONNS];
    uint16_t ports[FAKE_CONNS];
    char request[1024]; /* the last request a connection got */
    uint64_t ping_at[FAKE_PINGS];
    int pings;
    int connects;
} T;

static void fake_reply(os_ctx_t *ctx, os_handle_t ch, const char *data, size_t len)
{
    tcp_data_t d;
    while (len > 0) {
        size_t n = len < 1000 ? len : 1000; /* headers cut mid-line on purpose */
        d.data_len = (uint32_t)n;
        memcpy(d.data, data, n);
        assert_int_equal(0, tcp_data_send(ctx, ch, &d));
        data += n;
        len -= n;
    }
}

static void fake_eof(os_ctx_t *ctx, os_handle_t ch, uint64_t bytes)
{
    tcp_eof_t e = {bytes};
    tcp_eof_send(ctx, ch, &e);
}

static void fake_request(os_ctx_t *ctx, int i, const tcp_data_t *d)
{
    os_handle_t ch = T.conns[i];
    char head[256];
    memcpy(T.request, d->data, d->data_len);
    T.request[d->data_len] = 0;
    if (T.ports[i] == 80 || T.ports[i] == 84 || T.ports[i] == 86) {
        int n = snprintf(head, sizeof head,
                         "HTTP/1.0 200 OK\r\nServer: fake\r\nContent-Length: %d\r\n\r\n",
                         T.ports[i] == 86 ? BODY_LEN + 1 : BODY_LEN);
        fake_reply(ctx, ch, head, (size_t)n);
        static char body[BODY_LEN];
        memset(body, 'b', sizeof body);
        fake_reply(ctx, ch, body, T.ports[i] == 84 ? BODY_LEN / 2 : BODY_LEN);
        if (T.ports[i] == 84) {
            tcp_error_t e = {0, OS_ECONNRESET};
            tcp_error_send(ctx, ch, &e);
        } else {
            fake_eof(ctx, ch, (uint64_t)n + BODY_LEN);
        }
    } else if (T.ports[i] == 83) {
        fake_reply(ctx, ch, "SSH-2.0-OpenSSH_9.2\r\n", 21);
        fake_eof(ctx, ch, 21);
    }
}

static void fake_connect(os_ctx_t *ctx, os_handle_t ctl, const tcp_connect_t *c)
{
    T.connects++;
    if (c->addr != IP(10, 0, 2, 2) || c->port == 82) {
        tcp_reply_t r = {c->req, OS_EUNREACH};
        tcp_reply_send(ctx, ctl, &r);
        return;
    }
    os_handle_t mine, theirs;
    assert_int_equal(0, os_channel_create(ctx, &mine, &theirs));
    tcp_opened_t o = {.req = c->req, .port = 49152, .chan = theirs};
    assert_int_equal(0, tcp_opened_send(ctx, ctl, &o));
    int i = 0;
    while (T.conns[i] != OS_HANDLE_NONE)
        i++;
    assert_true(i < FAKE_CONNS);
    T.conns[i] = mine;
    T.ports[i] = c->port;
    if (c->port == 81) {
        tcp_error_t e = {0, OS_ECONNREFUSED};
        tcp_error_send(ctx, mine, &e);
        os_handle_close(ctx, mine); /* then the server closes the channel */
        T.conns[i] = OS_HANDLE_NONE;
    } else if (c->port != 85) {
        tcp_established_t e = {IP(10, 0, 2, 15), 49152, c->addr, c->port};
        tcp_established_send(ctx, mine, &e);
    }
}

static void fake_net(os_ctx_t *ctx, const os_event_t *ev)
{
    union {
        net_status_t status;
        net_resolve_t resolve;
        net_ping_t ping;
        net_conns_t conns;
    } m;
    os_handle_t ch = ev->handle;
    if (net_status_decode(ev, &m.status) == 0) {
        net_info_t i = {.req = m.status.req,
                        .addr = IP(10, 0, 2, 15),
                        .mask = 0xffffff00u,
                        .gw = IP(10, 0, 2, 2),
                        .dns = IP(10, 0, 2, 3),
                        .mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56},
                        .mac_len = 6,
                        .dhcp = 1};
        net_counters_t c = {.req = m.status.req,
                            .rx_frames = 12,
                            .tx_frames = 10,
                            .rx_bytes = 3456,
                            .tx_bytes = 1234,
                            .rx_dropped = 1,
                            .tx_dropped = 2,
                            .other_dropped = 3};
        net_info_send(ctx, ch, &i);
        net_counters_send(ctx, ch, &c);
    } else if (net_resolve_decode(ev, &m.resolve) == 0) {
        const char *n = m.resolve.name;
        if (strcmp(n, "10.0.2.2") == 0 || strcmp(n, "host.test") == 0) {
            net_resolved_t r = {m.resolve.req, IP(10, 0, 2, 2)};
            net_resolved_send(ctx, ch, &r);
        } else if (strncmp(n, "10.0.2.", 7) == 0) {
            net_resolved_t r = {m.resolve.req, IP(10, 0, 2, atoi(n + 7))};
            net_resolved_send(ctx, ch, &r);
        } else if (strcmp(n, "silent.test") != 0) {
            net_failed_t f = {m.resolve.req,
                              strcmp(n, "nodns.test") == 0 ? OS_EUNREACH : OS_ENOENT};
            net_failed_send(ctx, ch, &f);
        }
    } else if (net_ping_decode(ev, &m.ping) == 0) {
        if (T.pings < FAKE_PINGS)
            T.ping_at[T.pings++] = os_clock_now(ctx);
        assert_int_equal(56, m.ping.size);
        if (m.ping.addr == IP(10, 0, 2, 8))
            return;
        if (m.ping.addr == IP(10, 0, 2, 7) && m.ping.seq % 2 == 0) {
            net_failed_t f = {m.ping.req, OS_ETIMEDOUT};
            net_failed_send(ctx, ch, &f);
            return;
        }
        net_pong_t p = {.req = m.ping.req,
                        .addr = m.ping.addr,
                        .seq = m.ping.seq,
                        .size = m.ping.size,
                        .ttl = 255,
                        .rtt_ns = 400000u + 1000u * m.ping.seq};
        net_pong_send(ctx, ch, &p);
    } else if (net_conns_decode(ev, &m.conns) == 0) {
        net_conn_t rows[] = {
            {m.conns.req, 6, 1, 0, 7, 0, 0, 0},
            {m.conns.req, 6, 4, IP(10, 0, 2, 15), 49153, IP(10, 0, 2, 2), 8080, 12},
            {m.conns.req, 17, 0, 0, 53, 0, 0, 0},
        };
        for (size_t i = 0; i < 3; i++)
            net_conn_send(ctx, ch, &rows[i]);
        net_conns_end_t e = {m.conns.req, 3};
        net_conns_end_send(ctx, ch, &e);
    } else {
        iface_discard(ctx, ev);
    }
}

static os_handle_t fake_net_chan, fake_tcp_chan;

static void fake_start(os_ctx_t *ctx)
{
    memset(&T, 0, sizeof T);
    fake_net_chan = fake_tcp_chan = OS_HANDLE_NONE;
    assert_int_equal(0, init_register_iface(ctx, 1, &net_iface));
    assert_int_equal(0, init_register_iface(ctx, 2, &tcp_iface));
}

static void fake_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_new_client_t nc;
    if (ev->kind == OS_EV_PEER_CLOSED) {
        for (int i = 0; i < FAKE_CONNS; i++) {
            if (T.conns[i] == ev->handle)
                T.conns[i] = OS_HANDLE_NONE;
        }
        os_handle_close(ctx, ev->handle);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == init_channel(ctx)) {
        if (init_new_client_decode(ev, &nc) == 0) {
            if (strcmp(nc.name, "net") == 0)
                fake_net_chan = nc.chan;
            else
                fake_tcp_chan = nc.chan;
        } else {
            iface_discard(ctx, ev);
        }
        return;
    }
    if (ev->handle == fake_net_chan) {
        fake_net(ctx, ev);
        return;
    }
    tcp_connect_t c;
    if (ev->handle == fake_tcp_chan && tcp_connect_decode(ev, &c) == 0) {
        fake_connect(ctx, ev->handle, &c);
        return;
    }
    static tcp_data_t d;
    for (int i = 0; i < FAKE_CONNS; i++) {
        if (T.conns[i] == ev->handle && tcp_data_decode(ev, &d) == 0) {
            fake_request(ctx, i, &d);
            return;
        }
    }
    iface_discard(ctx, ev);
}

static const os_program_t fake_tcpip = {"tcpip", 0, fake_start, fake_event};
static const os_program_t *const image[] = {&orrery_init, &orrery_console, &orrery_shell,
                                            &orrery_echo, &fake_tcpip,     NULL};

#define PROGRAMS(reach)                                                                            \
    "program console restart=always\n"                                                             \
    "program shell   restart=always max-restarts=10 reach=" reach "\n"                             \
    "program echo    restart=on-failure\n"                                                         \
    "program tcpip   restart=on-failure\n"

static const char *out(void)
{
    return sim_console_output(NULL);
}

static void expect(const char *s)
{
    if (!strstr(out(), s))
        fail_msg("missing '%s' in output:\n%s", s, out());
}

static int session(const char *manifest, const char *input)
{
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = image;
    cfg.init_arg = manifest;
    cfg.init_arg_len = strlen(manifest);
    cfg.seed = 7;
    cfg.console_input = input;
    cfg.console_eof = true;
    assert_int_equal(0, sim_boot(&cfg));
    return sim_run(200000);
}

static const char full[] = PROGRAMS("console,echo,init,net,tcp");

static void test_net_prints_address_dns_and_counters(void **state)
{
    assert_int_equal(0, session(full, "net\n"));
    expect("orrery> net0 10.0.2.15/24 gw 10.0.2.2 mac 52:54:00:12:34:56\n"
           "address by dhcp, dns 10.0.2.3\n"
           "frames rx 12 tx 10 dropped 6\n"
           "bytes rx 3456 tx 1234\n"
           "dropped rx 1 tx 2 other 3\n"
           "orrery> ");
    assert_int_equal(0, sim_teardown());
}

static void test_netstat_lists_the_sockets(void **state)
{
    assert_int_equal(0, session(full, "netstat\n"));
    expect("orrery> PROTO LOCAL                 REMOTE                STATE        QUEUED\n"
           "tcp   0.0.0.0:7             0.0.0.0:0             LISTEN       0\n"
           "tcp   10.0.2.15:49153       10.0.2.2:8080         ESTABLISHED  12\n"
           "udp   0.0.0.0:53            0.0.0.0:0             -            0\n"
           "total: 3 sockets (2 tcp, 1 udp)\n"
           "orrery> ");
    assert_int_equal(0, sim_teardown());
}

static void test_ping_sends_one_a_second_and_sums_up(void **state)
{
    assert_int_equal(0, session(full, "ping host.test 3\necho after\n"));
    expect("orrery> PING host.test (10.0.2.2): 56 data bytes\n"
           "64 bytes from 10.0.2.2: seq=1 ttl=255 time=0.401 ms\n"
           "64 bytes from 10.0.2.2: seq=2 ttl=255 time=0.402 ms\n"
           "64 bytes from 10.0.2.2: seq=3 ttl=255 time=0.403 ms\n"
           "--- host.test ping statistics ---\n"
           "3 transmitted, 3 received, 0% loss, rtt min/avg/max 0.401/0.402/0.403 ms\n"
           "orrery> after\n");
    assert_int_equal(3, T.pings);
    for (int i = 1; i < T.pings; i++)
        assert_true(T.ping_at[i] - T.ping_at[i - 1] >= 1000000000ull);
    assert_int_equal(0, sim_teardown());
}

static void test_ping_timeouts_are_lines(void **state)
{
    assert_int_equal(0, session(full, "ping 10.0.2.7\nping 10.0.2.8 2\necho after\n"));
    expect("PING 10.0.2.7 (10.0.2.7): 56 data bytes\n"
           "64 bytes from 10.0.2.7: seq=1 ttl=255 time=0.401 ms\n"
           "no answer from 10.0.2.7: seq=2 (timed out)\n"
           "64 bytes from 10.0.2.7: seq=3 ttl=255 time=0.403 ms\n"
           "no answer from 10.0.2.7: seq=4 (timed out)\n"
           "--- 10.0.2.7 ping statistics ---\n"
           "4 transmitted, 2 received, 50% loss, rtt min/avg/max 0.401/0.402/0.403 ms\n");
    /* tcpip that never answers: the shell gives up after the last echo's wait */
    expect("PING 10.0.2.8 (10.0.2.8): 56 data bytes\n"
           "no answer from 10.0.2.8: seq=1 (tcpip did not answer)\n"
           "no answer from 10.0.2.8: seq=2 (tcpip did not answer)\n"
           "--- 10.0.2.8 ping statistics ---\n"
           "2 transmitted, 0 received, 100% loss\n"
           "orrery> after\n");
    assert_int_equal(0, sim_teardown());
}

static void test_name_lookup_failures(void **state)
{
    assert_int_equal(0, session(full, "ping nosuch.invalid\nping nodns.test\nping silent.test\n"
                                      "fetch http://nosuch.invalid/\necho after\n"));
    expect("orrery> shell: ping: nosuch.invalid: name not found\n");
    expect("orrery> shell: ping: nodns.test: no DNS server\n");
    expect("orrery> shell: ping: silent.test: name lookup timed out\n");
    expect("orrery> shell: fetch: nosuch.invalid: name not found\n");
    expect("orrery> after\n");
    assert_int_equal(0, T.pings);
    assert_int_equal(0, sim_teardown());
}

static void test_fetch_prints_status_headers_and_body_size(void **state)
{
    assert_int_equal(0, session(full, "fetch http://host.test/x?y=1#top\necho after\n"));
    assert_string_equal("GET /x?y=1 HTTP/1.0\r\nHost: host.test\r\nUser-Agent: orrery-fetch\r\n"
                        "Connection: close\r\n\r\n",
                        T.request);
    expect("orrery> HTTP/1.0 200 OK\nServer: fake\nContent-Length: 20000\nfetch: 200 OK, 20000 "
           "bytes in ");
    expect(" ms\norrery> after\n");
    assert_null(strstr(out(), "bbbb")); /* the body is counted, not printed */
    assert_int_equal(0, sim_teardown());
}

static void test_fetch_errors_are_one_line(void **state)
{
    assert_int_equal(0, session(full, "fetch http://10.0.2.2:81/\n"
                                      "fetch http://10.0.2.2:82/\n"
                                      "fetch http://10.0.2.2:83/\n"
                                      "fetch http://10.0.2.2:84/\n"
                                      "fetch http://10.0.2.2:85/\n"
                                      "fetch http://10.0.2.2:86/\n"
                                      "fetch ftp://x\n"
                                      "echo after\n"));
    expect("orrery> shell: fetch: 10.0.2.2:81: connection refused\n");
    expect("orrery> shell: fetch: 10.0.2.2:82: unreachable\n");
    expect("orrery> shell: fetch: malformed response (status line 'SSH-2.0-OpenSSH_9.2')\n");
    expect("HTTP/1.0 200 OK\nServer: fake\nContent-Length: 20000\n"
           "shell: fetch: 10.0.2.2:84: connection reset\n");
    expect("orrery> shell: fetch: 10.0.2.2:85: timed out\n");
    expect("shell: fetch: malformed response (body 20000 bytes, Content-Length 20001)\n");
    expect("orrery> shell: fetch: only http:// URLs are supported, not 'ftp://'\n");
    expect("orrery> after\n");
    assert_int_equal(6, T.connects);
    /* every connection channel is closed again (by the shell or after the fake's error) */
    for (int i = 0; i < FAKE_CONNS; i++)
        assert_int_equal(OS_HANDLE_NONE, T.conns[i]);
    assert_int_equal(0, sim_teardown());
}

static void test_net_commands_need_reach(void **state)
{
    assert_int_equal(0, session(PROGRAMS("console,echo,init"),
                                "net\nnetstat\nping 10.0.2.2\nfetch http://10.0.2.2/\n"));
    expect("\nshell: net: permission denied\n");
    expect("\nshell: netstat: permission denied\n");
    expect("\nshell: ping: permission denied\n");
    expect("\nshell: fetch: permission denied\n");
    assert_int_equal(0, sim_teardown());
    /* net without tcp: everything but fetch */
    assert_int_equal(
        0, session(PROGRAMS("console,echo,init,net"), "fetch http://10.0.2.2/\nping 10.0.2.2 1\n"));
    expect("\nshell: fetch: permission denied\n");
    expect("1 transmitted, 1 received, 0% loss");
    assert_int_equal(0, T.connects);
    assert_int_equal(0, sim_teardown());
}

static void test_commands_reconnect_after_tcpip_restarts(void **state)
{
    assert_int_equal(0, session(full, "netstat\nkill tcpip\nping 10.0.2.2 1\n"
                                      "fetch http://10.0.2.2/\nkill tcpip\nnet\n"));
    expect("total: 3 sockets (2 tcp, 1 udp)\n");
    expect("killed tcpip (task 5)\n");
    expect("1 transmitted, 1 received, 0% loss");
    expect("fetch: 200 OK, 20000 bytes in ");
    expect("orrery> net0 10.0.2.15/24 gw 10.0.2.2 mac 52:54:00:12:34:56\n");
    assert_null(strstr(out(), "went away"));
    assert_int_equal(0, sim_teardown());
}

static void test_without_tcpip_commands_time_out(void **state)
{
    /* reach is given but no tcpip runs: init holds the connects, the shell's timers end them */
    const char manifest[] = "program console restart=always\n"
                            "program shell reach=console,echo,init,net,tcp\n"
                            "program echo\n";
    assert_int_equal(0, session(manifest, "net\nnetstat\nping 10.0.2.2\nfetch http://h/\n"));
    expect("orrery> shell: net: timed out\n"
           "orrery> shell: netstat: timed out\n"
           "orrery> shell: ping: timed out\n"
           "orrery> shell: fetch: timed out\n"
           "orrery> shutting down\n");
    assert_int_equal(0, sim_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_net_commands),
        cmocka_unit_test(test_parse_net_errors),
        cmocka_unit_test(test_help_lists_the_net_commands),
        cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_http_response_in_any_pieces),
        cmocka_unit_test(test_http_malformed_responses),
        cmocka_unit_test(test_http_control_bytes_are_not_printed),
        cmocka_unit_test(test_http_random_responses),
        cmocka_unit_test(test_parse_random_net_lines),
        cmocka_unit_test(test_net_prints_address_dns_and_counters),
        cmocka_unit_test(test_netstat_lists_the_sockets),
        cmocka_unit_test(test_ping_sends_one_a_second_and_sums_up),
        cmocka_unit_test(test_ping_timeouts_are_lines),
        cmocka_unit_test(test_name_lookup_failures),
        cmocka_unit_test(test_fetch_prints_status_headers_and_body_size),
        cmocka_unit_test(test_fetch_errors_are_one_line),
        cmocka_unit_test(test_net_commands_need_reach),
        cmocka_unit_test(test_commands_reconnect_after_tcpip_restarts),
        cmocka_unit_test(test_without_tcpip_commands_time_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
