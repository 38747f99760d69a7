/* blkdec.c — one line per blk0 device record for `trace show`: the request header (id, sector,
 * count), the completion's status and how many sector bytes rode along; never the bytes. */
#include <trace/blk.h>

#include <hal/codes.h>
#include <os/errno.h>

#include <string.h>

#include "outbuf.h"

const char *trace_blk_code_name(uint32_t code)
{
    switch (code) {
    case HAL_BLK_READ:
        return "READ";
    case HAL_BLK_WRITE:
        return "WRITE";
    case HAL_BLK_FLUSH:
        return "FLUSH";
    case HAL_BLK_INFO:
        return "INFO";
    default:
        return NULL;
    }
}

static const char *status_name(int32_t st)
{
    switch (st) {
    case 0:
        return "OK";
#define BLK_ERRNAME(name, value, msg)                                                              \
    case (value):                                                                                  \
        return #name;
        OS_ERRNO_MAP(BLK_ERRNAME)
#undef BLK_ERRNAME
    default:
        return NULL;
    }
}

static void describe_info(trace_outbuf *o, const void *data, size_t len)
{
    hal_blk_info_t in;
    if (len < sizeof(in)) {
        trace_outbuf_put(o, "[truncated blk info: %zu of %zu bytes]", len, sizeof(in));
        return;
    }
    memcpy(&in, data, sizeof(in));
    uint64_t kib = in.sectors / 2;
    trace_outbuf_put(o, "%llu sectors (", (unsigned long long)in.sectors);
    if (kib >= 1024 && kib % 1024 == 0)
        trace_outbuf_put(o, "%llu MiB", (unsigned long long)(kib / 1024));
    else
        trace_outbuf_put(o, "%llu%s KiB", (unsigned long long)kib, in.sectors % 2 ? ".5" : "");
    trace_outbuf_put(o, ") %s, max %u a request", in.read_only ? "read-only" : "read-write",
                     (unsigned)in.max_sectors);
    if (len > sizeof(in))
        trace_outbuf_put(o, " [%zu bytes after the info]", len - sizeof(in));
}

const char *trace_blk_describe(uint32_t code, bool completion, const void *data, size_t len,
                               char *out, size_t outlen)
{
    trace_outbuf o = {out, outlen, 0};
    hal_blk_req_t r;

    if (!outlen)
        return out;
    out[0] = 0;
    if (!data)
        len = 0;
    if (code == HAL_BLK_INFO) {
        describe_info(&o, data, len);
        return out;
    }
    if (!trace_blk_code_name(code)) {
        trace_outbuf_put(&o, "[not a blk0 code: %u, %zu bytes]", (unsigned)code, len);
        return out;
    }
    if (len < sizeof(r)) {
        trace_outbuf_put(&o, "[truncated blk %s: %zu of %zu bytes]",
                         completion ? "completion" : "request", len, sizeof(r));
        return out;
    }
    memcpy(&r, data, sizeof(r));
    trace_outbuf_put(&o, "id %llu", (unsigned long long)r.id);
    if (code != HAL_BLK_FLUSH || r.sector || r.count)
        trace_outbuf_put(&o, " sector %llu count %u", (unsigned long long)r.sector,
                         (unsigned)r.count);
    if (completion) {
        const char *n = status_name(r.status);
        if (n)
            trace_outbuf_put(&o, " status %s", n);
        else
            trace_outbuf_put(&o, " status %d", (int)r.status);
    }
    /* The sectors that ride along: a WRITE request's, a successful READ completion's. */
    bool carries = completion ? code == HAL_BLK_READ && r.status == 0 : code == HAL_BLK_WRITE;
    size_t extra = len - sizeof(r);
    uint64_t want = carries ? (uint64_t)r.count * HAL_BLK_SECTOR : 0;
    if (extra)
        trace_outbuf_put(&o, " +%zu bytes", extra);
    if (extra != want)
        trace_outbuf_put(&o, " [expected %llu data bytes]", (unsigned long long)want);
    return out;
}
