/* shell_http.h — the shell's HTTP/1.0 client side: the request and a streaming response parser. */
#ifndef ORRERY_SHELL_HTTP_H
#define ORRERY_SHELL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    HTTP_LINE_MAX = 2048,     /* the status line or one header line, bytes without CRLF */
    HTTP_HEADERS_MAX = 16384, /* the status line and all headers together */
    HTTP_REASON_MAX = 63,     /* the reason phrase kept for the summary (cut beyond) */
    HTTP_ERROR_MAX = 96,
};

/*
 * The GET request for path on host:port (HTTP/1.0, Host, Connection: close) into buf.
 * Returns its length, or 0 if it does not fit in cap.
 */
size_t http_request(char *buf, size_t cap, const char *host, uint16_t port, const char *path);

typedef enum http_phase {
    HTTP_STATUS = 0, /* reading the status line */
    HTTP_HEADERS,    /* reading header lines */
    HTTP_BODY,       /* counting body bytes */
    HTTP_BAD,        /* malformed: error says why; nothing more is taken */
} http_phase_t;

/*
 * A response read as it streams: the status line and the headers are parsed line by line
 * (a line is held only until it is complete), the body is only counted.
 */
typedef struct http_resp {
    http_phase_t phase;
    int status;                       /* the status code, once the status line is read */
    char reason[HTTP_REASON_MAX + 1]; /* its reason phrase */
    bool has_length;                  /* a Content-Length header was seen */
    uint64_t length;                  /* its value */
    uint64_t body;                    /* body bytes so far */
    size_t header_bytes;              /* bytes of the status line and headers so far */
    size_t line_len;                  /* bytes held in line */
    char line[HTTP_LINE_MAX + 1];     /* the line being read */
    char error[HTTP_ERROR_MAX];       /* HTTP_BAD: why */
} http_resp_t;

/* Called with each complete status or header line (no CRLF, NUL-terminated). */
typedef void (*http_line_fn)(void *arg, const char *line);

void http_resp_init(http_resp_t *r);
/* Take len more bytes of the response. Returns 0, or -1 once the response is malformed. */
int http_resp_feed(http_resp_t *r, const uint8_t *data, size_t len, http_line_fn on_line,
                   void *arg);
/* The stream ended: 0 if the response was whole, else -1 with r->error set. */
int http_resp_end(http_resp_t *r);

#endif
