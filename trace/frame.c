/* frame.c — encode and parse trace frames; freestanding (the bare-metal image compiles it too). */
#include <trace/frame.h>

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/*
 * CRC-32 (zlib's), eight bytes a step ("slicing-by-8": 8 tables of 256, 8 KiB, built on first
 * use). Under TCG the image spends most of a record's cost here, and the bulk channel made it
 * the bottleneck: the nibble-at-a-time loop it replaces took ~9 us a record there, 4 times
 * this. Until the tables are built (and in a thread that finds another building them), the
 * nibble loop serves, from a 64-byte table that needs no initialisation.
 */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
    0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
    0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
};

static uint32_t crc_slice[8][256];
static int crc_slice_state; /* 0: not built, 1: being built, 2: ready (atomic) */

static uint32_t crc_nibbles(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
    }
    return crc;
}

static void crc_slice_build(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint8_t b = (uint8_t)i;
        crc_slice[0][i] = crc_nibbles(0, &b, 1);
    }
    for (unsigned i = 0; i < 256; i++) {
        for (unsigned t = 1; t < 8; t++)
            crc_slice[t][i] = (crc_slice[t - 1][i] >> 8) ^ crc_slice[0][crc_slice[t - 1][i] & 0xFF];
    }
}

static bool crc_slice_ready(void)
{
    int st = __atomic_load_n(&crc_slice_state, __ATOMIC_ACQUIRE);
    int zero = 0;

    if (st == 2)
        return true;
    if (st == 0 && __atomic_compare_exchange_n(&crc_slice_state, &zero, 1, false, __ATOMIC_ACQUIRE,
                                               __ATOMIC_RELAXED)) {
        crc_slice_build();
        __atomic_store_n(&crc_slice_state, 2, __ATOMIC_RELEASE);
        return true;
    }
    return false; /* another thread is building them */
}

uint32_t trace_crc32(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    crc = ~crc;
    if (len >= 16 && crc_slice_ready()) {
        for (; len >= 8; len -= 8, p += 8) {
            uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                 (uint32_t)p[3] << 24);
            uint32_t hi =
                (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
            crc = crc_slice[7][lo & 0xFF] ^ crc_slice[6][lo >> 8 & 0xFF] ^
                  crc_slice[5][lo >> 16 & 0xFF] ^ crc_slice[4][lo >> 24] ^ crc_slice[3][hi & 0xFF] ^
                  crc_slice[2][hi >> 8 & 0xFF] ^ crc_slice[1][hi >> 16 & 0xFF] ^
                  crc_slice[0][hi >> 24];
        }
    }
    return ~crc_nibbles(crc, p, len);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t payload_len(const hal_trace_rec_t *rec)
{
    if (!rec->data)
        return 0;
    return rec->len > TRACE_FRAME_MAX_PAYLOAD ? TRACE_FRAME_MAX_PAYLOAD : rec->len;
}

size_t trace_frame_size(const hal_trace_rec_t *rec)
{
    return TRACE_FRAME_OVERHEAD + payload_len(rec);
}

/* Head and fixed fields; returns the CRC so far (over bytes [4, HEAD+FIXED)). */
static uint32_t encode_head(const hal_trace_rec_t *rec, uint32_t plen, uint8_t *h)
{
    uint32_t n = TRACE_FRAME_FIXED + plen;
    uint8_t *b = h + TRACE_FRAME_HEAD;

    h[0] = TRACE_FRAME_MAGIC0;
    h[1] = TRACE_FRAME_MAGIC1;
    h[2] = TRACE_FRAME_MAGIC2;
    h[3] = TRACE_FRAME_MAGIC3;
    put32(h + 4, n);
    put32(h + 8, ~n);
    put64(b + 0, rec->seq);
    put64(b + 8, rec->time_ns);
    put64(b + 16, rec->arg);
    put32(b + 24, rec->kind);
    put32(b + 28, rec->task);
    put32(b + 32, rec->chan);
    put32(b + 36, rec->peer);
    put32(b + 40, rec->type);
    put32(b + 44, (uint32_t)rec->result);
    put32(b + 48, plen);
    put32(b + 52, rec->nhandles);
    put32(b + 56, rec->iface);
    put32(b + 60, 0);
    return trace_crc32(0, h + 4, TRACE_FRAME_HEAD - 4 + TRACE_FRAME_FIXED);
}

size_t trace_frame_encode_split(const hal_trace_rec_t *rec,
                                uint8_t head[TRACE_FRAME_HEAD + TRACE_FRAME_FIXED],
                                uint8_t tail[TRACE_FRAME_TAIL])
{
    uint32_t plen = payload_len(rec);
    uint32_t crc = encode_head(rec, plen, head);

    if (plen)
        crc = trace_crc32(crc, rec->data, plen);
    put32(tail, crc);
    return plen;
}

size_t trace_frame_encode(const hal_trace_rec_t *rec, void *buf, size_t cap)
{
    uint8_t *p = buf;
    uint32_t plen = payload_len(rec);
    size_t size = TRACE_FRAME_OVERHEAD + plen;
    uint32_t crc;

    if (cap < size)
        return 0;
    crc = encode_head(rec, plen, p);
    if (plen) {
        memcpy(p + TRACE_FRAME_HEAD + TRACE_FRAME_FIXED, rec->data, plen);
        crc = trace_crc32(crc, rec->data, plen);
    }
    put32(p + size - TRACE_FRAME_TAIL, crc);
    return size;
}

/* ---- version 2 ---------------------------------------------------------------------------- */

/* 8-byte little-endian words at any alignment (__builtin_memcpy: one move, also freestanding). */
static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void st64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    __builtin_memcpy(p, &v, 8);
}

#define ROUND8(x) (((x) + 7u) & ~(size_t)7u)

_Static_assert(offsetof(hal_trace_rec_t, task) == offsetof(hal_trace_rec_t, kind) + 4 &&
                   offsetof(hal_trace_rec_t, peer) == offsetof(hal_trace_rec_t, chan) + 4 &&
                   offsetof(hal_trace_rec_t, result) == offsetof(hal_trace_rec_t, type) + 4,
               "trace_frame2_encode loads these pairs as one word");

size_t trace_frame2_size(const hal_trace_rec_t *rec)
{
    return TRACE_FRAME2_HEAD + TRACE_FRAME_FIXED + ROUND8(payload_len(rec));
}

/*
 * The words are built in registers, fed to the check and stored once; the payload is moved a
 * word at a time (its last word padded with zeros). This is the image's per-record cost on the
 * bulk channel, so it reads each field once and touches each byte of the frame once.
 */
size_t trace_frame2_encode(const hal_trace_rec_t *rec, void *buf, size_t cap)
{
    uint8_t *p = buf;
    uint32_t plen = payload_len(rec);
    uint32_t n = TRACE_FRAME_FIXED + plen;
    size_t size = TRACE_FRAME2_HEAD + TRACE_FRAME_FIXED + ROUND8(plen);
    uint64_t h = TRACE_FRAME2_SEED, w;

    if (cap < size)
        return 0;
    /* Each word is fed to the check and stored as soon as it is made: few registers live, so
       no spills (each memory access is a TLB look-up under TCG). */
    h = trace_frame2_step(h, (uint64_t)n | (uint64_t)(uint32_t)~n << 32);
#define WORD(off, expr)                                                                            \
    do {                                                                                           \
        w = (expr);                                                                                \
        h = trace_frame2_step(h, w);                                                               \
        st64(p + (off), w);                                                                        \
    } while (0)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* hal_trace_rec_t's fields up to len are the frame's, in its order: a word a load */
    WORD(16, rec->seq);
    WORD(24, rec->time_ns);
    WORD(32, rec->arg);
    WORD(40, ld64((const uint8_t *)&rec->kind)); /* kind, task */
    WORD(48, ld64((const uint8_t *)&rec->chan)); /* chan, peer */
    WORD(56, ld64((const uint8_t *)&rec->type)); /* type, result */
#else
    WORD(16, rec->seq);
    WORD(24, rec->time_ns);
    WORD(32, rec->arg);
    WORD(40, (uint64_t)rec->kind | (uint64_t)rec->task << 32);
    WORD(48, (uint64_t)rec->chan | (uint64_t)rec->peer << 32);
    WORD(56, (uint64_t)rec->type | (uint64_t)(uint32_t)rec->result << 32);
#endif
    WORD(64, (uint64_t)plen | (uint64_t)rec->nhandles << 32);
    WORD(72, (uint64_t)rec->iface); /* and the reserved 0 */
#undef WORD
    if (plen) {
        const uint8_t *s = rec->data;
        uint8_t *d = p + TRACE_FRAME2_HEAD + TRACE_FRAME_FIXED;
        uint32_t i = 0;

        for (; i + 8 <= plen; i += 8) {
            w = ld64(s + i);
            h = trace_frame2_step(h, w);
            st64(d + i, w);
        }
        if (i < plen) {
            w = 0;
            for (uint32_t k = 0; i + k < plen; k++)
                w |= (uint64_t)s[i + k] << (8 * k);
            h = trace_frame2_step(h, w);
            st64(d + i, w);
        }
    }
    st64(p, (uint64_t)TRACE_FRAME_MAGIC0 | (uint64_t)TRACE_FRAME_MAGIC1 << 8 |
                (uint64_t)TRACE_FRAME_MAGIC2 << 16 | (uint64_t)TRACE_FRAME2_MAGIC3 << 24 |
                (uint64_t)n << 32);
    st64(p + 8, (uint64_t)(uint32_t)~n | (uint64_t)trace_frame2_final(h) << 32);
    return size;
}

/* Fields of the 64-byte fixed part at b (either version). */
static void parse_fixed(const uint8_t *b, uint32_t plen, hal_trace_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->seq = get64(b + 0);
    rec->time_ns = get64(b + 8);
    rec->arg = get64(b + 16);
    rec->kind = get32(b + 24);
    rec->task = get32(b + 28);
    rec->chan = get32(b + 32);
    rec->peer = get32(b + 36);
    rec->type = get32(b + 40);
    rec->result = (int32_t)get32(b + 44);
    rec->len = plen;
    rec->nhandles = get32(b + 52);
    rec->iface = get32(b + 56);
    rec->data = plen ? b + TRACE_FRAME_FIXED : NULL;
}

static long parse2(const uint8_t *p, size_t len, hal_trace_rec_t *rec)
{
    const uint8_t *b = p + TRACE_FRAME2_HEAD;
    uint32_t n, plen;
    size_t size;
    uint64_t h = TRACE_FRAME2_SEED;

    if (len < TRACE_FRAME2_HEAD)
        return 0;
    n = get32(p + 4);
    if (get32(p + 8) != (uint32_t)~n || n < TRACE_FRAME_FIXED ||
        n > TRACE_FRAME_FIXED + TRACE_FRAME_MAX_PAYLOAD)
        return -1;
    size = TRACE_FRAME2_HEAD + ROUND8(n);
    if (len < size)
        return 0;
    h = trace_frame2_step(h, ld64(p + 4));
    for (size_t off = TRACE_FRAME2_HEAD; off < size; off += 8)
        h = trace_frame2_step(h, ld64(p + off));
    if (trace_frame2_final(h) != get32(p + 12))
        return -1;
    plen = get32(b + 48);
    if (plen != n - TRACE_FRAME_FIXED)
        return -1;
    parse_fixed(b, plen, rec);
    return (long)size;
}

/* ---- either ---------------------------------------------------------------------------------- */

long trace_frame_parse(const void *buf, size_t len, hal_trace_rec_t *rec)
{
    static const uint8_t magic[3] = {TRACE_FRAME_MAGIC0, TRACE_FRAME_MAGIC1, TRACE_FRAME_MAGIC2};
    const uint8_t *p = buf;
    const uint8_t *b = p + TRACE_FRAME_HEAD;
    uint32_t n, plen;
    size_t size;

    /* A prefix of the magic may still become a frame. */
    if (memcmp(p, magic, len < 3 ? len : 3) != 0)
        return -1;
    if (len < 4)
        return 0;
    if (p[3] == TRACE_FRAME2_MAGIC3)
        return parse2(p, len, rec);
    if (p[3] != TRACE_FRAME_MAGIC3)
        return -1;
    if (len < TRACE_FRAME_HEAD)
        return 0;
    n = get32(p + 4);
    if (get32(p + 8) != (uint32_t)~n || n < TRACE_FRAME_FIXED ||
        n > TRACE_FRAME_FIXED + TRACE_FRAME_MAX_PAYLOAD)
        return -1;
    size = TRACE_FRAME_HEAD + (size_t)n + TRACE_FRAME_TAIL;
    if (len < size)
        return 0;
    if (trace_crc32(0, p + 4, TRACE_FRAME_HEAD - 4 + n) != get32(p + size - TRACE_FRAME_TAIL))
        return -1;
    plen = get32(b + 48);
    if (plen != n - TRACE_FRAME_FIXED)
        return -1;
    parse_fixed(b, plen, rec);
    return (long)size;
}
