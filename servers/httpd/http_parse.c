/* http_parse.c — httpd's request parser, ranges, dates, MIME types and arg (pure: no os calls). */
#include <http_parse.h>

#include <stdio.h>
#include <string.h>

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool name_is(const char *s, size_t len, const char *name)
{
    if (strlen(name) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (lower(s[i]) != name[i])
            return false;
    }
    return true;
}

/* Does the comma-separated list v hold token t (case-insensitive)? */
static bool list_has(const char *v, size_t len, const char *t)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i > s && name_is(v + s, i - s, t))
            return true;
    }
    return false;
}

/* The end of the line starting at p (the '\n'), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    const void *nl = memchr(p, '\n', (size_t)(end - p));
    return nl;
}

/* The method token at p (before end): req->method and its name once the token is whole (a run
 * of tchars ended by a space). Returns the space, or NULL (no whole token: req untouched). */
static const char *method(const char *p, const char *end, http_req_t *req)
{
    const char *q = p;
    while (q < end && is_tchar(*q))
        q++;
    if (q == p || q == end || *q != ' ')
        return NULL;
    size_t mlen = (size_t)(q - p);
    snprintf(req->method_name, sizeof req->method_name, "%.*s", (int)mlen, p);
    if (mlen == 3 && memcmp(p, "GET", 3) == 0)
        req->method = HTTP_GET;
    else if (mlen == 4 && memcmp(p, "HEAD", 4) == 0)
        req->method = HTTP_HEAD;
    else
        req->method = HTTP_OTHER;
    return q;
}

static int request_line(const char *p, const char *eol, http_req_t *req)
{
    if (eol > p && eol[-1] == '\r')
        eol--;
    const char *sp1 = method(p, eol, req);
    if (!sp1)
        return -400;
    const char *t = sp1 + 1;
    const char *sp2 = NULL;
    for (const char *q = eol; q > t; q--) {
        if (q[-1] == ' ') {
            sp2 = q - 1;
            break;
        }
    }
    if (!sp2 || sp2 == t)
        return -400;
    if ((size_t)(sp2 - t) > HTTP_URI_MAX)
        return -414;
    for (const char *q = t; q < sp2; q++) {
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
            return -400;
    }
    req->target = t;
    req->target_len = (size_t)(sp2 - t);
    const char *v = sp2 + 1;
    size_t vlen = (size_t)(eol - v);
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1')
        return -505;
    req->minor = v[7] - '0';
    req->keep_alive = req->minor >= 1;
    return 0;
}

static int header(const char *p, const char *eol, http_req_t *req)
{
    if (eol > p && eol[-1] == '\r')
        eol--;
    if (*p == ' ' || *p == '\t')
        return -400; /* obsolete line folding */
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (!colon || colon == p)
        return -400;
    for (const char *q = p; q < colon; q++) {
        if (!is_tchar(*q))
            return -400;
    }
    for (const char *q = colon + 1; q < eol; q++) {
        if ((*q == 0 || (unsigned char)*q < ' ') && *q != '\t')
            return -400;
    }
    const char *v = colon + 1;
    while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
    const char *ve = eol;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    size_t nlen = (size_t)(colon - p), vlen = (size_t)(ve - v);
    if (name_is(p, nlen, "connection")) {
        if (list_has(v, vlen, "close"))
            req->keep_alive = false;
        else if (list_has(v, vlen, "keep-alive"))
            req->keep_alive = true;
    } else if (name_is(p, nlen, "content-length")) {
        if (vlen == 0)
            return -400;
        uint64_t n = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -400;
            if (n > HTTP_BODY_MAX)
                return -413;
            n = n * 10 + (uint64_t)(v[i] - '0');
        }
        if (req->content_length != UINT64_MAX && req->content_length != n)
            return -400; /* two different lengths: a smuggling attempt */
        req->content_length = n;
    } else if (name_is(p, nlen, "transfer-encoding")) {
        return -501;
    } else if (name_is(p, nlen, "if-modified-since")) {
        req->has_ims = http_date_parse(v, vlen, &req->ims) == 0; /* a bad date is ignored */
    } else if (name_is(p, nlen, "range")) {
        req->range = v;
        req->range_len = vlen;
    }
    return 0;
}

int http_parse_request(const char *buf, size_t len, http_req_t *req)
{
    memset(req, 0, sizeof *req);
    req->content_length = UINT64_MAX;
    const char *p = buf, *end = buf + len;
    /* robustness: blank lines before a request line are skipped (RFC 9112 2.2) */
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    method(p, end, req); /* early: a refused HEAD is answered without a body */
    const char *eol = line_end(p, end);
    if (!eol) {
        if (memchr(p, 0, (size_t)(end - p)))
            return -400;
        if ((size_t)(end - p) > HTTP_URI_MAX + 32) {
            /* a request line that long: the target is over the limit, or it is garbage */
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            return sp && sp - p < 32 ? -414 : -400;
        }
        return len >= HTTP_HEADERS_MAX ? -431 : 0;
    }
    int rc = request_line(p, eol, req);
    if (rc < 0)
        return rc;
    p = eol + 1;
    for (;;) {
        eol = line_end(p, end);
        if (!eol) {
            if (memchr(p, 0, (size_t)(end - p)))
                return -400;
            return len >= HTTP_HEADERS_MAX ? -431 : 0;
        }
        if ((size_t)(eol + 1 - buf) > HTTP_HEADERS_MAX)
            return -431;
        if (eol == p || (eol == p + 1 && *p == '\r')) {
            if (req->content_length == UINT64_MAX)
                req->content_length = 0;
            return (int)(eol + 1 - buf);
        }
        if (memchr(p, 0, (size_t)(eol - p)))
            return -400;
        rc = header(p, eol, req);
        if (rc < 0)
            return rc;
        p = eol + 1;
    }
}

/* ---- ranges ------------------------------------------------------------------------------ */

static bool number(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t n = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    *out = n;
    return *p > s;
}

int http_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
    const char *p = v, *end = v + len;
    if (len < 6 || memcmp(v, "bytes=", 6) != 0)
        return 0;
    p += 6;
    if (memchr(p, ',', (size_t)(end - p)))
        return 0;
    uint64_t a = 0, b = 0;
    if (p < end && *p == '-') {
        p++;
        if (!number(&p, end, &b) || p != end)
            return 0;
        if (b == 0 || size == 0)
            return -416;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (!number(&p, end, &a) || p == end || *p != '-')
        return 0;
    p++;
    bool has_b = p < end;
    if (has_b && (!number(&p, end, &b) || p != end))
        return 0;
    if (has_b && b < a)
        return 0;
    if (a >= size)
        return -416;
    *first = a;
    *last = !has_b || b >= size ? size - 1 : b;
    return 1;
}

/* ---- dates ------------------------------------------------------------------------------- */

static const char *const WDAY[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
static const char *const MON[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void http_date_format(int64_t t, char *buf, size_t cap)
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int wd = (int)(((days % 7) + 7) % 7);
    snprintf(buf, cap, "%s, %02u %s %04lld %02d:%02d:%02d GMT", WDAY[wd], d, MON[m - 1],
             (long long)y, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int http_date_parse(const char *s, size_t len, int64_t *t)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes */
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    int d, y, hh, mm, ss, m = -1;
    for (int i = 0; i < 12; i++) {
        if (memcmp(s + 8, MON[i], 3) == 0)
            m = i + 1;
    }
    if (m < 0 || !digits(s + 5, 2, &d) || !digits(s + 12, 4, &y) || !digits(s + 17, 2, &hh) ||
        !digits(s + 20, 2, &mm) || !digits(s + 23, 2, &ss) || d < 1 || d > 31 || hh > 23 ||
        mm > 59 || ss > 60)
        return -1;
    *t = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

/* ---- MIME and reasons ---------------------------------------------------------------------- */

static const struct {
    const char *ext, *type;
} MIME[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/plain; charset=utf-8"},
    {"css", "text/css"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"xml", "application/xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"webp", "image/webp"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
};

const char *http_mime(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot) {
        for (size_t i = 0; i < sizeof MIME / sizeof MIME[0]; i++) {
            const char *e = MIME[i].ext;
            size_t n = strlen(e);
            if (strlen(dot + 1) == n && name_is(dot + 1, n, e))
                return MIME[i].type;
        }
    }
    return "application/octet-stream";
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* ---- the arg ----------------------------------------------------------------------------- */

int httpd_config_parse(const char *arg, size_t len, httpd_config_t *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->root, sizeof cfg->root, "/www");
    cfg->port = 80;
    cfg->timeout_ms = 10000;
    size_t i = 0;
    while (len > 0 && (arg[len - 1] == 0 || arg[len - 1] == '\n'))
        len--;
    while (i < len) {
        size_t s = i;
        while (i < len && arg[i] != ',')
            i++;
        const char *kv = arg + s;
        size_t kvlen = i - s;
        if (i < len)
            i++;
        const char *eq = memchr(kv, '=', kvlen);
        if (!eq) {
            snprintf(err, errlen, "bad arg '%.*s': expected key=value (root, port, log, timeout)",
                     (int)(kvlen > 60 ? 60 : kvlen), kv);
            return -1;
        }
        size_t klen = (size_t)(eq - kv), vlen = kvlen - klen - 1;
        const char *v = eq + 1;
        if (klen == 4 && memcmp(kv, "root", 4) == 0) {
            if (vlen == 0 || v[0] != '/' || vlen > HTTP_ROOT_MAX || memchr(v, 0, vlen)) {
                snprintf(err, errlen, "bad arg root='%.*s': an absolute path of at most %d bytes",
                         (int)(vlen > 60 ? 60 : vlen), v, HTTP_ROOT_MAX);
                return -1;
            }
            while (vlen > 0 && v[vlen - 1] == '/')
                vlen--;
            memcpy(cfg->root, v, vlen);
            cfg->root[vlen] = 0;
        } else if (klen == 4 && memcmp(kv, "port", 4) == 0) {
            unsigned n = 0;
            size_t j = 0;
            for (; j < vlen && v[j] >= '0' && v[j] <= '9' && n <= 65535; j++)
                n = n * 10 + (unsigned)(v[j] - '0');
            if (vlen == 0 || j != vlen || n == 0 || n > 65535) {
                snprintf(err, errlen, "bad arg port='%.*s': a number 1..65535",
                         (int)(vlen > 20 ? 20 : vlen), v);
                return -1;
            }
            cfg->port = (uint16_t)n;
        } else if (klen == 3 && memcmp(kv, "log", 3) == 0) {
            if (vlen == 2 && memcmp(v, "on", 2) == 0) {
                cfg->log = true;
            } else if (vlen == 3 && memcmp(v, "off", 3) == 0) {
                cfg->log = false;
            } else {
                snprintf(err, errlen, "bad arg log='%.*s': on or off", (int)(vlen > 20 ? 20 : vlen),
                         v);
                return -1;
            }
        } else if (klen == 7 && memcmp(kv, "timeout", 7) == 0) {
            uint64_t n = 0;
            size_t j = 0;
            for (; j < vlen && v[j] >= '0' && v[j] <= '9' && n < 100000000; j++)
                n = n * 10 + (uint64_t)(v[j] - '0');
            bool ms = vlen >= 2 && j == vlen - 2 && v[j] == 'm' && v[j + 1] == 's';
            if (j == 0 || (j != vlen && !ms) || n == 0 || (ms ? n : n * 1000) > 3600000) {
                snprintf(err, errlen, "bad arg timeout='%.*s': seconds 1..3600 (or Nms)",
                         (int)(vlen > 20 ? 20 : vlen), v);
                return -1;
            }
            cfg->timeout_ms = (uint32_t)(ms ? n : n * 1000);
        } else {
            snprintf(err, errlen, "bad arg: unknown key '%.*s' (root, port, log, timeout)",
                     (int)(klen > 20 ? 20 : klen), kv);
            return -1;
        }
    }
    return 0;
}
