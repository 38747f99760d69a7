/* http_parse.h — httpd's pure parts: request parser, path normalisation, ranges, dates, MIME,
 * the arg, the /status JSON (no os calls: the fuzz target and the unit tests drive them). */
#ifndef ORRERY_HTTP_PARSE_H
#define ORRERY_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    HTTP_HEADERS_MAX = 8192, /* bytes of request line plus headers: over is 431 */
    HTTP_URI_MAX = 2048,     /* bytes of the request target: over is 414 */
    HTTP_BODY_MAX = 4096,    /* bytes of a request body read and dropped: over is 413 */
    HTTP_PATH_MAX = 1024,    /* bytes of a normalised path (the fs interface's limit) */
    HTTP_ROOT_MAX = 255,     /* bytes of the document root */
    HTTPD_CONNS_MAX = 64,    /* connections at once: one more is answered 503 */
    HTTPD_DRAIN_MAX = 16,    /* 503-answered connections read to their end before the close */
    HTTPD_DRAIN_MS = 2000,   /* ... for at most this long */
};

typedef enum http_method {
    HTTP_GET = 1,
    HTTP_HEAD = 2,
    HTTP_OTHER = 3, /* a well-formed token we do not serve: 405 */
} http_method_t;

typedef struct http_req {
    http_method_t method;
    char method_name[16]; /* as sent (cut to fit), for the log */
    const char *target;   /* into the parsed buffer, not NUL-ended */
    size_t target_len;
    int minor;               /* HTTP/1.minor */
    bool keep_alive;         /* after Connection and the version */
    uint64_t content_length; /* body bytes that follow the headers */
    bool has_ims;
    int64_t ims;       /* If-Modified-Since, seconds since 1970 */
    const char *range; /* the Range value (NULL: none), not NUL-ended */
    size_t range_len;
} http_req_t;

/*
 * Parse one request head at buf (len bytes). Returns the bytes of the head (request line,
 * headers and the blank line) when it is complete; 0 when more bytes are needed; or a
 * negative HTTP status for a request to refuse: -400 malformed, -414 target over
 * HTTP_URI_MAX, -431 head over HTTP_HEADERS_MAX, -413 Content-Length over HTTP_BODY_MAX,
 * -501 Transfer-Encoding, -505 an HTTP version other than 1.x. req->method (and its name) is
 * set whenever the method token is whole, also with 0 or a refusal: the answer to a HEAD has no
 * body, even when it is a 400 (RFC 9110 9.3.2); 0 (none) before that.
 */
int http_parse_request(const char *buf, size_t len, http_req_t *req);

/*
 * Normalise a request target into a path under the root: the query and fragment dropped,
 * %XX decoded, empty and "." segments dropped; "/" for the root. Returns 0, or -400 for
 * anything that could leave the root or name something odd: a ".." segment, an encoded '/'
 * or '\\', a NUL or control byte (raw or encoded), a bad %-escape, a target not starting
 * with '/'; -414 when the result is over cap.
 */
int http_path_normalise(const char *target, size_t len, char *out, size_t cap);

/*
 * A Range value against a file of size bytes. Returns 1 with [*first, *last] for one
 * satisfiable range, 0 to ignore the header (malformed, not bytes, several ranges: the whole
 * file is served), -416 when unsatisfiable.
 */
int http_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"): format (buf of 30+) and parse (-1: bad). */
void http_date_format(int64_t t, char *buf, size_t cap);
int http_date_parse(const char *s, size_t len, int64_t *t);

/* The Content-Type of a path by its extension (application/octet-stream if unknown). */
const char *http_mime(const char *path);

/* The reason phrase of a status. */
const char *http_reason(int status);

typedef struct httpd_config {
    char root[HTTP_ROOT_MAX + 1]; /* no trailing '/', "" for the volume's root */
    uint16_t port;
    bool log;
    uint32_t timeout_ms; /* a client must send its request head within this */
} httpd_config_t;

/* Parse the spawn arg "root=/www,port=80,log=off,timeout=10" (every key optional; timeout in
 * seconds, or with an "ms" suffix). 0, or -1 with a one-line reason in err. */
int httpd_config_parse(const char *arg, size_t len, httpd_config_t *cfg, char *err, size_t errlen);

#endif
