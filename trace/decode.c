/* decode.c — decode traced message payloads field by field from the interface descriptors. */
#include <trace/decode.h>

#include <iface/iface.h>
#include <os/errno.h>

#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outbuf.h"

/* The image's interface table (iface_table.c). */
extern const iface_t *const *trace_iface_table(void);

/* Same hash as iface_id (FNV-1a of the canonical text), so no servers code is needed. */
static uint32_t canon_id(const iface_t *f)
{
    uint32_t h = 2166136261u;
    for (const char *p = f->text; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 16777619u;
    }
    return h;
}

static const iface_t *lookup(uint32_t id)
{
    const iface_t *const *t = trace_iface_table();

    if (!id || !t)
        return NULL;
    for (; *t; t++)
        if (canon_id(*t) == id)
            return *t;
    return NULL;
}

const char *trace_iface_name(uint32_t id)
{
    const iface_t *f = lookup(id);
    return f ? f->name : NULL;
}

uint32_t trace_iface_from_name(const char *name)
{
    const iface_t *const *t = trace_iface_table();
    char *end;
    unsigned long v;

    for (; t && *t; t++)
        if (strcasecmp((*t)->name, name) == 0)
            return canon_id(*t);
    v = strtoul(name, &end, 0);
    return (*name && !*end) ? (uint32_t)v : 0;
}

const char *trace_msg_label(uint32_t iface, uint32_t type, char *buf, size_t len)
{
    const iface_t *f = lookup(iface);
    const iface_msg_t *m = NULL;

    if (f)
        for (size_t i = 0; i < f->nmsgs && !m; i++)
            if (f->msgs[i].number == type)
                m = &f->msgs[i];
    if (m)
        snprintf(buf, len, "%s.%s", f->name, m->name);
    else if (f)
        snprintf(buf, len, "%s.?%u", f->name, (unsigned)type);
    else if (iface)
        snprintf(buf, len, "0x%08x.%u", (unsigned)iface, (unsigned)type);
    else
        snprintf(buf, len, "type %u", (unsigned)type);
    return buf;
}

void trace_hex(const void *data, size_t len, size_t max, char *out, size_t outlen)
{
    const unsigned char *p = data;
    size_t n = len < max ? len : max, o = 0;

    if (!outlen)
        return;
    out[0] = 0;
    for (size_t i = 0; i < n && o + 4 < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%s%02x", i ? " " : "", p[i]);
    if (n < len && o + 4 < outlen)
        o += (size_t)snprintf(out + o, outlen - o, " ...");
    if (n && o + 4 < outlen) {
        o += (size_t)snprintf(out + o, outlen - o, "  |");
        for (size_t i = 0; i < n && o + 2 < outlen; i++)
            out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '.';
        if (o + 2 < outlen)
            out[o++] = '|';
        out[o] = 0;
    }
}

static void put_quoted(trace_outbuf *o, const unsigned char *s, size_t n, size_t max)
{
    trace_outbuf_put(o, "\"");
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            trace_outbuf_put(o, "\\%c", c);
        else if (c == '\n')
            trace_outbuf_put(o, "\\n");
        else if (c >= 0x20 && c < 0x7f)
            trace_outbuf_put(o, "%c", c);
        else
            trace_outbuf_put(o, "\\x%02x", c);
    }
    trace_outbuf_put(o, n > max ? "\"..." : "\"");
}

static uint64_t le(const unsigned char *p, size_t w)
{
    uint64_t v = 0;
    for (size_t i = 0; i < w; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/*
 * Fields whose name says what the number is: IPv4 addresses (host order, as tcp.h, udp.h and
 * net.h carry them) print dotted, and a negative status prints with its OS_E* name. By name
 * because the interface definitions have no address or status type.
 */
static bool is_addr_field(const char *name)
{
    static const char *const names[] = {"addr", "laddr", "raddr", "mask", "gw", "dns"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

static const char *errno_name(int32_t v)
{
    switch (v) {
#define DECODE_ERRNAME(name, value, msg)                                                           \
    case (value):                                                                                  \
        return #name;
        OS_ERRNO_MAP(DECODE_ERRNAME)
#undef DECODE_ERRNAME
    default:
        return NULL;
    }
}

/* Walk the wire format of iface.h: integers LE at width, str/bytes as u16 length + bytes. */
static int decode_fields(const iface_msg_t *m, const unsigned char *p, size_t len,
                         uint32_t nhandles, trace_outbuf *o)
{
    size_t off = 0, handle = 0;

    trace_outbuf_put(o, "{");
    for (size_t i = 0; i < m->nfields; i++) {
        const iface_field_t *f = &m->fields[i];
        size_t w = iface_int_width(f->kind);

        trace_outbuf_put(o, "%s%s: ", i ? ", " : "", f->name);
        switch (f->kind) {
        case IFACE_U8:
        case IFACE_U16:
        case IFACE_U32:
        case IFACE_I32:
        case IFACE_U64:
        case IFACE_I64:
            break;
        case IFACE_HANDLE:
            trace_outbuf_put(o, "handle#%zu", handle++);
            continue;
        case IFACE_STR:
        case IFACE_BYTES: {
            size_t n;
            if (len - off < 2)
                return -1;
            n = (size_t)le(p + off, 2);
            off += 2;
            if (n > f->max || len - off < n)
                return -1;
            if (f->kind == IFACE_STR)
                put_quoted(o, p + off, n, 200);
            else {
                char hex[200];
                trace_hex(p + off, n, 32, hex, sizeof(hex));
                trace_outbuf_put(o, "[%zu bytes] %s", n, hex);
            }
            off += n;
            continue;
        }
        default:
            return -1;
        }
        if (len - off < w)
            return -1;
        uint64_t v = le(p + off, w);
        off += w;
        if (f->kind == IFACE_U32 && is_addr_field(f->name))
            trace_outbuf_put(o, "%u.%u.%u.%u", (unsigned)(v >> 24) & 0xff,
                             (unsigned)(v >> 16) & 0xff, (unsigned)(v >> 8) & 0xff,
                             (unsigned)v & 0xff);
        else if (f->kind == IFACE_I32 && strcmp(f->name, "status") == 0 && errno_name((int32_t)v))
            trace_outbuf_put(o, "%d %s", (int)(int32_t)v, errno_name((int32_t)v));
        else if (f->kind == IFACE_I32)
            trace_outbuf_put(o, "%d", (int)(int32_t)v);
        else if (f->kind == IFACE_I64)
            trace_outbuf_put(o, "%lld", (long long)(int64_t)v);
        else
            trace_outbuf_put(o, "%llu", (unsigned long long)v);
    }
    trace_outbuf_put(o, "}");
    return (off == len && handle == nhandles) ? 0 : -1;
}

int trace_decode_payload(uint32_t iface, uint32_t type, const void *data, size_t len,
                         uint32_t nhandles, char *out, size_t outlen)
{
    const iface_t *f = lookup(iface);
    const iface_msg_t *m = NULL;
    trace_outbuf o = {out, outlen, 0};
    char hex[512];

    if (!outlen)
        return 1;
    out[0] = 0;
    if (f)
        for (size_t i = 0; i < f->nmsgs && !m; i++)
            if (f->msgs[i].number == type)
                m = &f->msgs[i];
    if (m && decode_fields(m, data ? data : "", data ? len : 0, nhandles, &o) == 0)
        return 0;
    o.len = 0;
    out[0] = 0;
    trace_hex(data, data ? len : 0, 64, hex, sizeof(hex));
    if (m)
        trace_outbuf_put(&o, "<malformed %s.%s, %zu bytes> %s", f->name, m->name, len, hex);
    else
        trace_outbuf_put(&o, "%s%s", len ? "" : "<empty>", hex);
    return 1;
}

uint32_t trace_guess_iface(uint32_t type, const void *data, size_t len, uint32_t nhandles)
{
    const iface_t *const *t = trace_iface_table();
    char scratch[8];

    for (; t && *t; t++) {
        const iface_t *f = *t;
        for (size_t i = 0; i < f->nmsgs; i++) {
            if (f->msgs[i].number != type)
                continue;
            trace_outbuf o = {scratch, sizeof(scratch), 0};
            if (decode_fields(&f->msgs[i], data ? data : "", data ? len : 0, nhandles, &o) == 0)
                return canon_id(f);
        }
    }
    return 0;
}
