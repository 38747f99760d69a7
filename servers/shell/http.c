/* http.c — the shell's HTTP/1.0 request and streaming response parser (pure: no os calls). */
#include <shell_http.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

size_t http_request(char *buf, size_t cap, const char *host, uint16_t port, const char *path)
{
    char hostport[300];
    if (port == 80)
        snprintf(hostport, sizeof hostport, "%s", host);
    else
        snprintf(hostport, sizeof hostport, "%s:%u", host, (unsigned)port);
    int n = snprintf(buf, cap,
                     "GET %s HTTP/1.0\r\n"
                     "Host: %s\r\n"
                     "User-Agent: orrery-fetch\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     path, hostport);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

void http_resp_init(http_resp_t *r)
{
    memset(r, 0, sizeof *r);
}

static int bad(http_resp_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(http_resp_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->phase = HTTP_BAD;
    return -1;
}

/* "HTTP/d.d ddd[ reason]" */
static int status_line(http_resp_t *r, const char *s)
{
    if (strncmp(s, "HTTP/", 5) != 0 || !isdigit((unsigned char)s[5]) || s[6] != '.' ||
        !isdigit((unsigned char)s[7]) || s[8] != ' ' || !isdigit((unsigned char)s[9]) ||
        !isdigit((unsigned char)s[10]) || !isdigit((unsigned char)s[11]) ||
        (s[12] != 0 && s[12] != ' '))
        return bad(r, "malformed response (status line '%.40s')", s);
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r->status < 100)
        return bad(r, "malformed response (status %d)", r->status);
    snprintf(r->reason, sizeof r->reason, "%s", s[12] ? s + 13 : "");
    return 0;
}

static bool name_is(const char *s, size_t len, const char *name)
{
    if (strlen(name) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (tolower((unsigned char)s[i]) != name[i])
            return false;
    }
    return true;
}

/* "Name: value"; continuation lines (obsolete folding) pass as they are. */
static int header_line(http_resp_t *r, const char *s)
{
    if (s[0] == ' ' || s[0] == '\t')
        return 0;
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return bad(r, "malformed response (header line '%.40s')", s);
    for (const char *p = s; p < colon; p++) {
        if (*p == ' ' || *p == '\t')
            return bad(r, "malformed response (header name '%.*s')", (int)(colon - s), s);
    }
    if (!name_is(s, (size_t)(colon - s), "content-length"))
        return 0;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    uint64_t n = 0;
    const char *p = v;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return bad(r, "malformed response (Content-Length too large)");
        n = n * 10 + (uint64_t)(*p - '0');
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (p == v || *p)
        return bad(r, "malformed response (Content-Length '%.20s')", v);
    if (r->has_length && r->length != n)
        return bad(r, "malformed response (two different Content-Lengths)");
    r->has_length = true;
    r->length = n;
    return 0;
}

/* A line is complete: the status line, a header, or the blank line before the body. */
static int end_of_line(http_resp_t *r, http_line_fn on_line, void *arg)
{
    if (r->line_len > 0 && r->line[r->line_len - 1] == '\r')
        r->line_len--;
    r->line[r->line_len] = 0;
    r->line_len = 0;
    if (r->phase == HTTP_STATUS) {
        if (status_line(r, r->line) < 0)
            return -1;
        r->phase = HTTP_HEADERS;
    } else if (r->line[0] == 0) {
        r->phase = HTTP_BODY;
        return 0;
    } else if (header_line(r, r->line) < 0) {
        return -1;
    }
    if (on_line)
        on_line(arg, r->line);
    return 0;
}

int http_resp_feed(http_resp_t *r, const uint8_t *data, size_t len, http_line_fn on_line, void *arg)
{
    size_t i = 0;
    while (i < len && (r->phase == HTTP_STATUS || r->phase == HTTP_HEADERS)) {
        uint8_t c = data[i++];
        if (++r->header_bytes > HTTP_HEADERS_MAX)
            return bad(r, "malformed response (headers over %d bytes)", HTTP_HEADERS_MAX);
        if (c == '\n') {
            if (end_of_line(r, on_line, arg) < 0)
                return -1;
            continue;
        }
        if (c == 0)
            return bad(r, "malformed response (a NUL byte in the headers)");
        if (r->line_len == HTTP_LINE_MAX)
            return bad(r, "malformed response (a header line over %d bytes)", HTTP_LINE_MAX);
        /* the lines go to a terminal: no control bytes, nothing beyond ASCII */
        r->line[r->line_len++] = (c == '\r' || c == '\t' || (c >= 0x20 && c < 0x7f)) ? c : '?';
    }
    if (r->phase == HTTP_BAD)
        return -1;
    if (r->phase == HTTP_BODY)
        r->body += len - i;
    return 0;
}

int http_resp_end(http_resp_t *r)
{
    switch (r->phase) {
    case HTTP_BAD:
        return -1;
    case HTTP_STATUS:
        if (r->header_bytes == 0)
            return bad(r, "empty response (the server closed without answering)");
        return bad(r, "malformed response (it ended in the status line)");
    case HTTP_HEADERS:
        return bad(r, "malformed response (it ended in the headers)");
    case HTTP_BODY:
        if (r->has_length && r->body != r->length)
            return bad(r, "malformed response (body %llu bytes, Content-Length %llu)",
                       (unsigned long long)r->body, (unsigned long long)r->length);
        return 0;
    }
    return -1;
}
