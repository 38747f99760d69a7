/* entry.c — capture block format 2: decoding a record, every field checked against the block. */
#include "capture_int.h"

#include <stdio.h>

/* A varint of at most maxbits bits at *pp (before end): 0, or -1 if cut short or too wide. */
static int get_varint(const unsigned char **pp, const unsigned char *end, unsigned maxbits,
                      uint64_t *v)
{
    const unsigned char *p = *pp;
    uint64_t x = 0;

    for (unsigned shift = 0; p < end && shift < maxbits; shift += 7) {
        unsigned char b = *p++;
        if (shift + 7 > maxbits && (b & 0x7f) >> (maxbits - shift))
            return -1; /* bits past the field's width */
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

static void say(char *why, size_t whylen, const char *what, size_t at)
{
    if (why && whylen)
        snprintf(why, whylen, "%s at byte %zu of its entry", what, at);
}

size_t tr_entry_decode(const unsigned char *p, size_t avail, tr_entry *e,
                       const unsigned char **payload, char *why, size_t whylen)
{
    const unsigned char *q = p, *end = p + avail, *rec_end;
    uint64_t size, v[12];
    unsigned flags;

    if (get_varint(&q, end, 32, &size) != 0) {
        say(why, whylen, "a header cut or a size too wide", 0);
        return 0;
    }
    if (size > (uint64_t)(end - q)) {
        if (why && whylen)
            snprintf(why, whylen, "an entry of %llu bytes runs past the end",
                     (unsigned long long)size);
        return 0;
    }
    rec_end = q + size;
    if (q == rec_end) {
        say(why, whylen, "a header cut", (size_t)(q - p));
        return 0;
    }
    flags = *q++;
    if (flags & ~(TR_ENTRY_GSEQ | TR_ENTRY_NODE)) {
        say(why, whylen, "unknown flags", (size_t)(q - p - 1));
        return 0;
    }
    /* seq, time_ns 64 bits; kind .. iface 32; arg 64 */
    static const unsigned char bits[12] = {64, 64, 32, 32, 32, 32, 32, 32, 32, 32, 32, 64};
    for (int i = 0; i < 12; i++)
        if (get_varint(&q, rec_end, bits[i], &v[i]) != 0) {
            say(why, whylen, "a header cut or a field too wide", (size_t)(q - p));
            return 0;
        }
    *e = (tr_entry){
        .seq = v[0],
        .time_ns = v[1],
        .kind = (uint32_t)v[2],
        .task = (uint32_t)v[3],
        .chan = (uint32_t)v[4],
        .peer = (uint32_t)v[5],
        .type = (uint32_t)v[6],
        .result = (int32_t)((uint32_t)(v[7] >> 1) ^ (0u - (uint32_t)(v[7] & 1))),
        .len = (uint32_t)v[8],
        .nhandles = (uint32_t)v[9],
        .iface = (uint32_t)v[10],
        .arg = v[11],
        .gseq = v[0],
    };
    if ((flags & TR_ENTRY_GSEQ) && get_varint(&q, rec_end, 64, &e->gseq) != 0) {
        say(why, whylen, "a header cut or a field too wide", (size_t)(q - p));
        return 0;
    }
    if (flags & TR_ENTRY_NODE) {
        uint64_t node;
        if (get_varint(&q, rec_end, 32, &node) != 0) {
            say(why, whylen, "a header cut or a field too wide", (size_t)(q - p));
            return 0;
        }
        e->node = (uint32_t)node;
    }
    if (e->len > TR_CAPTURE_PAYLOAD_MAX || e->len != (uint64_t)(rec_end - q)) {
        if (why && whylen)
            snprintf(why, whylen, "an entry of %llu bytes claims a %u-byte payload past the end",
                     (unsigned long long)size, e->len);
        return 0;
    }
    *payload = q;
    return (size_t)(rec_end - p);
}
