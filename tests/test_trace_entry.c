/* test_trace_entry.c — capture block format 2: records encoded as a chunk holds them, decoded
 * and scanned as the expander reads them; cut, garbled and over-wide entries are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "capture_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A value of a random width: small ones most often, the extremes sometimes. */
static uint64_t any(unsigned bits)
{
    uint64_t v = next();
    switch (v % 8) {
    case 0:
        return 0;
    case 1:
        return bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    case 2:
        return next() >> (64 - bits);
    case 3:
        return 0x7f + (v >> 60);
    default:
        return (next() % 200) & (bits == 64 ? UINT64_MAX : (1ull << bits) - 1);
    }
}

typedef struct rec_plus {
    hal_trace_rec_t r;
    uint64_t gseq;
    uint32_t node;
    unsigned char payload[400];
} rec_plus;

static void random_record(rec_plus *p)
{
    memset(p, 0, sizeof(*p));
    p->r.seq = any(64);
    p->r.time_ns = any(64);
    p->r.arg = any(64);
    p->r.kind = (uint32_t)any(32);
    p->r.task = (uint32_t)any(32);
    p->r.chan = (uint32_t)any(32);
    p->r.peer = (uint32_t)any(32);
    p->r.type = (uint32_t)any(32);
    p->r.result = (int32_t)(uint32_t)any(32);
    p->r.nhandles = (uint32_t)any(32);
    p->r.iface = (uint32_t)any(32);
    p->r.len = (uint32_t)(next() % 4 == 0 ? next() % sizeof(p->payload) : next() % 16);
    for (uint32_t i = 0; i < p->r.len; i++)
        p->payload[i] = (unsigned char)next();
    p->r.data = p->r.len ? p->payload : NULL;
    p->gseq = next() % 3 == 0 ? any(64) : p->r.seq;
    p->node = next() % 3 == 0 ? (uint32_t)any(32) : 0;
}

/* A record as the kernel makes most of them: small ids and lengths, no gseq or node. */
static void common_record(rec_plus *p)
{
    random_record(p);
    uint32_t *f[] = {&p->r.kind, &p->r.task,     &p->r.chan,  &p->r.peer,
                     &p->r.type, &p->r.nhandles, &p->r.iface, (uint32_t *)&p->r.result};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (next() % 16)
            *f[i] = (uint32_t)(next() % 64);
    p->r.seq = next() % 16 ? next() >> (8 + next() % 56) : any(64);
    p->r.time_ns = next() % 16 ? next() >> (8 + next() % 56) : any(64);
    p->r.arg = next() % 16 ? next() % 128 : any(64);
    p->r.len = (uint32_t)(next() % 130);
    p->r.data = p->r.len ? p->payload : NULL;
    p->gseq = next() % 16 ? p->r.seq : any(64);
    p->node = next() % 16 ? 0 : (uint32_t)any(32);
}

static void assert_same(const rec_plus *p, const tr_entry *e, const unsigned char *payload)
{
    assert_true(e->seq == p->r.seq);
    assert_true(e->time_ns == p->r.time_ns);
    assert_true(e->arg == p->r.arg);
    assert_true(e->gseq == p->gseq);
    assert_int_equal(e->kind, p->r.kind);
    assert_int_equal(e->task, p->r.task);
    assert_int_equal(e->chan, p->r.chan);
    assert_int_equal(e->peer, p->r.peer);
    assert_int_equal(e->type, p->r.type);
    assert_int_equal(e->result, p->r.result);
    assert_int_equal(e->len, p->r.len);
    assert_int_equal(e->nhandles, p->r.nhandles);
    assert_int_equal(e->iface, p->r.iface);
    assert_int_equal(e->node, p->node);
    assert_memory_equal(payload, p->payload, p->r.len);
}

/*
 * Every field at every width, and payloads on both sides of the one-byte
 * size, come back: records of any shape, then records shaped as most are
 * (small fields, seq and time of every width up to 2^56, payloads of 0 to
 * 129 bytes) with now and then one that is not.
 */
static void round_trip(void (*make)(rec_plus *))
{
    enum { N = 20000 };
    static rec_plus recs[N];
    static unsigned char block[N * (TR_ENTRY_HEAD_MAX + 400)];
    unsigned char *p = block;
    uint64_t count, first, last, lo = UINT64_MAX, hi = 0;
    size_t expanded, want = 0;
    char why[300];

    for (int i = 0; i < N; i++) {
        make(&recs[i]);
        unsigned char *end =
            tr_entry_encode(p, &recs[i].r, recs[i].r.len, recs[i].gseq, recs[i].node);
        assert_true((size_t)(end - p) <= TR_ENTRY_HEAD_MAX + recs[i].r.len);
        /* the writer's walk agrees with the decoder */
        uint64_t g;
        assert_int_equal((size_t)(end - p), tr_entry_skip(p, &g));
        assert_true(g == recs[i].gseq);
        p = end;
        lo = recs[i].gseq < lo ? recs[i].gseq : lo;
        hi = recs[i].gseq > hi ? recs[i].gseq : hi;
        want += tr_entry_size(recs[i].r.len);
    }
    assert_int_equal(0, tr_capture_scan(2, block, (size_t)(p - block), &count, &first, &last,
                                        &expanded, why, sizeof(why)));
    assert_int_equal(N, count);
    assert_true(first == lo && last == hi);
    assert_int_equal(want, expanded);

    size_t off = 0;
    for (int i = 0; i < N; i++) {
        tr_entry e;
        const unsigned char *payload;
        size_t used =
            tr_entry_decode(block + off, (size_t)(p - block) - off, &e, &payload, why, sizeof(why));
        assert_true(used > 0);
        assert_same(&recs[i], &e, payload);
        off += used;
    }
    assert_int_equal(off, (size_t)(p - block));
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip(random_record);
    round_trip(common_record);
}

/* A round trip's record: what format 2 is for, a third of format 1's 80 bytes. */
static void test_small_record_is_small(void **state)
{
    unsigned char buf[TR_ENTRY_HEAD_MAX + 8];
    uint64_t msg = 42;
    hal_trace_rec_t r = {.seq = 2000000,
                         .time_ns = 3000000000ull,
                         .kind = HAL_TR_SEND,
                         .task = 3,
                         .chan = 11,
                         .peer = 12,
                         .type = 1,
                         .len = 8,
                         .data = &msg};

    (void)state;
    size_t n = (size_t)(tr_entry_encode(buf, &r, 8, r.seq, 0) - buf);
    assert_true(n <= 32);
    assert_true(tr_entry_size(8) == 80);
}

/* A block cut anywhere but between entries does not scan; at a boundary it counts the entries
 * before. */
static void test_cut_blocks(void **state)
{
    enum { N = 40 };
    static rec_plus recs[N];
    static unsigned char block[N * (TR_ENTRY_HEAD_MAX + 400)];
    size_t bounds[N + 1], nb = 0;
    unsigned char *p = block;
    char why[300];

    (void)state;
    bounds[nb++] = 0;
    for (int i = 0; i < N; i++) {
        random_record(&recs[i]);
        p = tr_entry_encode(p, &recs[i].r, recs[i].r.len, recs[i].gseq, recs[i].node);
        bounds[nb++] = (size_t)(p - block);
    }
    size_t k = 0;
    for (size_t len = 0; len <= (size_t)(p - block); len++) {
        uint64_t count, first, last;
        size_t expanded;
        /* a copy exactly len long, so that ASan sees any read past it */
        unsigned char *cut = malloc(len ? len : 1);
        memcpy(cut, block, len);
        int rc = tr_capture_scan(2, cut, len, &count, &first, &last, &expanded, why, sizeof(why));
        free(cut);
        while (k < nb && bounds[k] < len)
            k++;
        if (k < nb && bounds[k] == len) {
            assert_int_equal(0, rc);
            assert_int_equal(k, count);
        } else {
            assert_int_equal(-1, rc);
            assert_true(strstr(why, "cut") || strstr(why, "past the end"));
        }
    }
}

/* Garbled bytes are refused or read as some entries, never read past the block. */
static void test_garbled_blocks(void **state)
{
    enum { N = 30 };
    static rec_plus recs[N];
    static unsigned char block[N * (TR_ENTRY_HEAD_MAX + 400)];
    unsigned char *p = block;
    char why[300];
    int refused = 0;

    (void)state;
    for (int i = 0; i < N; i++) {
        random_record(&recs[i]);
        p = tr_entry_encode(p, &recs[i].r, recs[i].r.len, recs[i].gseq, recs[i].node);
    }
    size_t size = (size_t)(p - block);
    for (int round = 0; round < 3000; round++) {
        unsigned char *g = malloc(size);
        memcpy(g, block, size);
        for (int f = 0; f < 1 + round % 4; f++)
            g[next() % size] = (unsigned char)next();
        uint64_t count, first, last;
        size_t expanded;
        if (tr_capture_scan(2, g, size, &count, &first, &last, &expanded, why, sizeof(why)) != 0)
            refused++;
        free(g);
    }
    assert_true(refused > 0); /* most garbling breaks the sizes */
}

/* One entry, head by head: unknown flags, a 32-bit field of 33 bits, a payload the size does not
 * hold. */
static void test_bad_fields(void **state)
{
    unsigned char b[64];
    tr_entry e;
    const unsigned char *payload;
    char why[300];

    (void)state;
    /* size 13: flags, seq 1, time 2, kind .. iface (9), arg 0: a byte each */
    const unsigned char good[] = {13, 0, 1, 2, 4, 3, 11, 12, 1, 0, 0, 0, 0, 0};
    assert_int_equal(sizeof(good),
                     tr_entry_decode(good, sizeof(good), &e, &payload, why, sizeof(why)));
    assert_int_equal(4, e.kind);
    assert_true(e.seq == 1 && e.time_ns == 2 && e.gseq == 1);

    memcpy(b, good, sizeof(good));
    b[1] = 4; /* a flag no Orrery writes */
    assert_int_equal(0, tr_entry_decode(b, sizeof(good), &e, &payload, why, sizeof(why)));
    assert_non_null(strstr(why, "flags"));

    /* kind as 0xff 0xff 0xff 0xff 0x1f: 33 bits */
    const unsigned char wide[] = {17, 0,  1,  2, 0xff, 0xff, 0xff, 0xff, 0x1f,
                                  3,  11, 12, 1, 0,    0,    0,    0,    0};
    assert_int_equal(0, tr_entry_decode(wide, sizeof(wide), &e, &payload, why, sizeof(why)));
    assert_non_null(strstr(why, "too wide"));
    /* the same with 32 bits is an entry */
    unsigned char ok[sizeof(wide)];
    memcpy(ok, wide, sizeof(wide));
    ok[8] = 0x0f;
    assert_int_equal(sizeof(ok), tr_entry_decode(ok, sizeof(ok), &e, &payload, why, sizeof(why)));
    assert_true(e.kind == UINT32_MAX);

    /* len 5 where the size leaves no payload */
    memcpy(b, good, sizeof(good));
    b[10] = 5;
    assert_int_equal(0, tr_entry_decode(b, sizeof(good), &e, &payload, why, sizeof(why)));
    assert_non_null(strstr(why, "past the end"));

    /* a size larger than the block */
    memcpy(b, good, sizeof(good));
    b[0] = 60;
    assert_int_equal(0, tr_entry_decode(b, sizeof(good), &e, &payload, why, sizeof(why)));
    assert_non_null(strstr(why, "past the end"));

    /* format 3 is no block this build reads */
    uint64_t count, first, last;
    size_t expanded;
    assert_int_equal(-1, tr_capture_scan(3, good, sizeof(good), &count, &first, &last, &expanded,
                                         why, sizeof(why)));
    assert_non_null(strstr(why, "format 3"));
}

/* Format 1 blocks (a cut recording from an Orrery before format 2) still scan. */
static void test_format_1_still_scans(void **state)
{
    unsigned char b[3 * 96];
    size_t off = 0;
    char why[300];

    (void)state;
    memset(b, 0, sizeof(b));
    for (uint64_t i = 0; i < 3; i++) {
        tr_entry e = {.seq = 10 + i, .gseq = 10 + i, .kind = HAL_TR_SEND, .len = i ? 5 : 0};
        memcpy(b + off, &e, sizeof(e));
        off += tr_entry_size(e.len);
    }
    uint64_t count, first, last;
    size_t expanded;
    assert_int_equal(
        0, tr_capture_scan(1, b, off, &count, &first, &last, &expanded, why, sizeof(why)));
    assert_int_equal(3, count);
    assert_true(first == 10 && last == 12 && expanded == off);
    assert_int_equal(
        -1, tr_capture_scan(1, b, off - 8, &count, &first, &last, &expanded, why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_small_record_is_small),
        cmocka_unit_test(test_cut_blocks), cmocka_unit_test(test_garbled_blocks),
        cmocka_unit_test(test_bad_fields), cmocka_unit_test(test_format_1_still_scans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
