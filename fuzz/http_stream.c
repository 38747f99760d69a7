/* http_stream.c — fuzz_httpd's check of one HTTP/1.1 connection: requests paired with their
 * answers, each answer's framing (http_stream.h). */
#include "http_stream.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void check(hs_env_t *env, bool ok, const char *what)
{
    if (!ok)
        env->fail(what);
}

/* A head complete in what was sent notes whether it was a HEAD. */
static void track_heads(hs_stream_t *c)
{
    for (;;) {
        size_t at = 0;
        if (c->track_skip) {
            size_t k = c->track_skip < c->track_len ? (size_t)c->track_skip : c->track_len;
            c->track_skip -= k;
            at = k;
        }
        while (at < c->track_len && (c->track[at] == '\r' || c->track[at] == '\n'))
            at++; /* empty lines before a request are skipped */
        char *s = c->track + at;
        size_t n = c->track_len - at, end = 0;
        for (size_t i = 0; i + 1 < n && !end; i++)
            if (s[i] == '\n' &&
                (s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n')))
                end = i + (s[i + 1] == '\n' ? 2 : 3);
        if (!end) {
            memmove(c->track, s, n);
            c->track_len = n;
            return;
        }
        if (c->npending < HS_PENDING_MAX)
            c->pending_head[c->npending++] = n >= 5 && memcmp(s, "HEAD ", 5) == 0;
        else
            c->pending_lost = true; /* (a held connection, requests piling up in the kernel) */
        /* a body: Content-Length (the server reads and drops it) */
        for (size_t i = 0; i + 16 < end; i++) {
            if (s[i] == '\n' && strncasecmp(s + i + 1, "content-length:", 15) == 0) {
                c->track_skip = strtoull(s + i + 16, NULL, 10);
                break;
            }
        }
        memmove(c->track, s + end, n - end);
        c->track_len = n - end;
    }
}

void hs_sent(hs_stream_t *c, const uint8_t *data, size_t len)
{
    while (len && !c->track_lost) {
        size_t k = HS_TRACK_MAX - c->track_len < len ? HS_TRACK_MAX - c->track_len : len;
        if (!k) {
            c->track_lost = true; /* a head too long to be answered but 431 (then the close) */
            return;
        }
        memcpy(c->track + c->track_len, data, k);
        c->track_len += k;
        data += k;
        len -= k;
        track_heads(c);
    }
}

/* The head of one response is complete (head[0..len), ending in the blank line): check it. */
static void response_head(hs_env_t *env, hs_stream_t *c, const char *h, size_t len)
{
    check(env, len >= 17 && memcmp(h, "HTTP/1.1 ", 9) == 0 && isdigit((unsigned char)h[9]) &&
              isdigit((unsigned char)h[10]) && isdigit((unsigned char)h[11]) && h[12] == ' ',
          "response: malformed status line");
    int status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    if (env->verbose)
        fprintf(stderr, "response: %.*s", (int)(strchr(h, '\n') - h + 1), h);
    check(env, status >= 100 && status <= 599, "response: status out of range");
    env->statuses[status / 100]++;
    const char *p = memchr(h, '\n', len);
    check(env, p && p[-1] == '\r', "response: status line not ended by CRLF");
    for (const char *q = h + 13; q < p - 1; q++)
        check(env, *q >= 0x20 && *q != 0x7f, "response: a control byte in the reason");
    p++;
    bool has_cl = false, close = false;
    uint64_t cl = 0;
    while (p < h + len - 2) {
        const char *e = memchr(p, '\n', (size_t)(h + len - p));
        check(env, e && e > p && e[-1] == '\r', "response: header line not ended by CRLF");
        const char *colon = memchr(p, ':', (size_t)(e - p));
        check(env, colon && colon > p, "response: header line without a name");
        for (const char *q = p; q < colon; q++)
            check(env, isalnum((unsigned char)*q) || strchr("-_", *q), "response: bad header name");
        for (const char *q = colon + 1; q < e - 1; q++)
            check(env, *q >= 0x20 && *q != 0x7f, "response: a control byte in a header value");
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
            check(env, !has_cl, "response: Content-Length twice");
            check(env, isdigit((unsigned char)*v), "response: Content-Length not a number");
            char *ve;
            cl = strtoull(v, &ve, 10);
            check(env, ve == e - 1, "response: Content-Length not a number");
            has_cl = true;
        } else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
            check(env, false, "response: Transfer-Encoding (the server sends Content-Length)");
        } else if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
            close = strncasecmp(v, "close", 5) == 0;
        }
        p = e + 1;
    }
    bool head_req = false;
    if (c->npending > 0) {
        head_req = c->pending_head[0];
        memmove(c->pending_head, c->pending_head + 1, (size_t)(--c->npending) * sizeof(bool));
    } else {
        /* a refusal of a head not whole yet (400, 408, 431): a HEAD's has no body either */
        size_t at = 0;
        while (at < c->track_len && (c->track[at] == '\r' || c->track[at] == '\n'))
            at++;
        head_req = c->track_len - at >= 5 && memcmp(c->track + at, "HEAD ", 5) == 0;
    }
    c->responses++;
    env->responses++;
    if (head_req || status < 200 || status == 204 || status == 304) {
        c->phase = HS_HEAD;
    } else if (has_cl) {
        c->body_left = cl;
        c->phase = cl ? HS_BODY : HS_HEAD;
    } else {
        check(env, close, "response: no Content-Length and no Connection: close");
        c->phase = HS_TO_CLOSE;
    }
}

void hs_received(hs_env_t *env, hs_stream_t *c, const uint8_t *d, size_t n)
{
    check(env, !c->shut, "response: data after the server's shutdown");
        if (c->pending_lost)
        return; /* which answer is a HEAD's is not known: no framing to check */
    while (n) {
        if (c->phase == HS_TO_CLOSE)
            return;
        if (c->phase == HS_BODY) {
            size_t k = c->body_left < n ? (size_t)c->body_left : n;
            c->body_left -= k;
            d += k;
            n -= k;
            if (!c->body_left)
                c->phase = HS_HEAD;
            continue;
        }
        check(env, c->head_len < HS_HEAD_MAX, "response: head longer than 8192 bytes");
        c->head[c->head_len++] = (char)*d++;
        n--;
        if (c->head_len >= 4 && memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) == 0) {
            size_t len = c->head_len;
            c->head_len = 0;
            response_head(env, c, c->head, len);
        }
    }
}

void hs_ended(hs_env_t *env, hs_stream_t *c, bool shutdown, bool excused)
{
    if (shutdown)
        c->shut = true;
    if (excused || c->pending_lost)
        return;
    if (shutdown) {
        check(env, c->phase != HS_BODY && c->head_len == 0, "response: cut short by shutdown");
        return;
    }
    check(env, c->phase != HS_BODY, "response: body shorter than its Content-Length at the close");
    check(env, c->head_len == 0, "response: head cut short at the close");
}
