/* net_opt.c — the --net value: "none", or "user" with QEMU's hostfwd rules. */
#include <hl/hosted.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A port 1..65535: digits only. */
static bool parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* A dotted IPv4 address (inet_pton's strict form), or "localhost" when allowed. */
static bool parse_addr(const char *s, size_t n, bool localhost, uint32_t *out)
{
    char buf[INET_ADDRSTRLEN + 1];
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (localhost && strcmp(buf, "localhost") == 0) {
        *out = 0x7f000001u;
        return true;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return false;
    *out = ntohl(a.s_addr);
    return true;
}

/* "[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport", n bytes at s. */
static int parse_hostfwd(const char *s, size_t n, hl_hostfwd_t *f, char *err, size_t errlen)
{
    const char *end = s + n;
    const char *c1 = memchr(s, ':', n);
    if (!c1)
        return fail(err, errlen,
                    "hostfwd '%.*s': wants [tcp|udp]:[hostaddr]:hostport-"
                    "[guestaddr]:guestport",
                    (int)n, s);
    size_t plen = (size_t)(c1 - s);
    if (plen == 0 || (plen == 3 && memcmp(s, "tcp", 3) == 0))
        f->udp = false;
    else if (plen == 3 && memcmp(s, "udp", 3) == 0)
        f->udp = true;
    else
        return fail(err, errlen, "hostfwd '%.*s': protocol must be tcp or udp, not '%.*s'", (int)n,
                    s, (int)plen, s);
    const char *h = c1 + 1;
    const char *c2 = memchr(h, ':', (size_t)(end - h));
    const char *dash = memchr(h, '-', (size_t)(end - h));
    if (!c2 || !dash || c2 > dash)
        return fail(err, errlen,
                    "hostfwd '%.*s': wants [tcp|udp]:[hostaddr]:hostport-"
                    "[guestaddr]:guestport",
                    (int)n, s);
    f->host_addr = 0;
    if (c2 > h && !parse_addr(h, (size_t)(c2 - h), true, &f->host_addr))
        return fail(err, errlen, "hostfwd '%.*s': bad host address '%.*s'", (int)n, s,
                    (int)(c2 - h), h);
    if (!parse_port(c2 + 1, (size_t)(dash - c2 - 1), &f->host_port))
        return fail(err, errlen, "hostfwd '%.*s': host port must be 1..65535, not '%.*s'", (int)n,
                    s, (int)(dash - c2 - 1), c2 + 1);
    const char *g = dash + 1;
    const char *c3 = memchr(g, ':', (size_t)(end - g));
    if (!c3)
        return fail(err, errlen,
                    "hostfwd '%.*s': wants [tcp|udp]:[hostaddr]:hostport-"
                    "[guestaddr]:guestport",
                    (int)n, s);
    f->guest_addr = 0x0a00020fu; /* 10.0.2.15 */
    if (c3 > g) {
        if (!parse_addr(g, (size_t)(c3 - g), false, &f->guest_addr))
            return fail(err, errlen, "hostfwd '%.*s': bad guest address '%.*s'", (int)n, s,
                        (int)(c3 - g), g);
        if ((f->guest_addr & 0xffffff00u) != 0x0a000200u)
            return fail(err, errlen, "hostfwd '%.*s': guest address must be in 10.0.2.0/24", (int)n,
                        s);
    }
    if (!parse_port(c3 + 1, (size_t)(end - c3 - 1), &f->guest_port))
        return fail(err, errlen, "hostfwd '%.*s': guest port must be 1..65535, not '%.*s'", (int)n,
                    s, (int)(end - c3 - 1), c3 + 1);
    return 0;
}

int hl_net_parse(const char *spec, bool *enabled, hl_net_config_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *enabled = false;
    if (strcmp(spec, "none") == 0)
        return 0;
    size_t first = strcspn(spec, ",");
    if (first != 4 || strncmp(spec, "user", 4) != 0)
        return fail(err, errlen, "'%.*s' is not a network: use 'user' or 'none'", (int)first, spec);
    const char *p = spec + first;
    while (*p == ',') {
        p++;
        size_t n = strcspn(p, ",");
        if (n > 8 && strncmp(p, "hostfwd=", 8) == 0) {
            if (out->nfwd == HL_NET_FWD_MAX)
                return fail(err, errlen, "more than %d hostfwd rules", HL_NET_FWD_MAX);
            hl_hostfwd_t *f = &out->fwd[out->nfwd];
            if (parse_hostfwd(p + 8, n - 8, f, err, errlen) != 0)
                return -1;
            for (unsigned i = 0; i < out->nfwd; i++)
                if (out->fwd[i].udp == f->udp && out->fwd[i].host_port == f->host_port &&
                    (out->fwd[i].host_addr == f->host_addr || !out->fwd[i].host_addr ||
                     !f->host_addr))
                    return fail(err, errlen, "hostfwd '%.*s': host port %u is forwarded twice",
                                (int)(n - 8), p + 8, f->host_port);
            out->nfwd++;
        } else {
            return fail(err, errlen, "unknown '%.*s' (only hostfwd=... follows 'user')", (int)n, p);
        }
        p += n;
    }
    *enabled = true;
    return 0;
}
