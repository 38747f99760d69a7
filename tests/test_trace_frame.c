/* test_trace_frame.c — binary trace frames: round trip, resync after garbage, truncation, import. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <trace/frame.h>
#include <trace/reader.h>
#include <trace/stream.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXREC 64
#define CHECK_BYTES 0x3a, 0x3d, 0x18, 0x3e /* the check of test_frame2_known_bytes's frame */

typedef struct got {
    hal_trace_rec_t rec[MAXREC];
    unsigned char payload[MAXREC][64];
    int n;
} got;

static void collect(void *self, const hal_trace_rec_t *r)
{
    got *g = self;
    assert_true(g->n < MAXREC);
    g->rec[g->n] = *r;
    assert_true(r->len <= 64);
    if (r->len)
        memcpy(g->payload[g->n], r->data, r->len);
    g->n++;
}

static hal_trace_rec_t sample(uint64_t seq)
{
    static const char text[] = "hello, world";
    hal_trace_rec_t r = {0};
    r.seq = seq;
    r.time_ns = 1000000007ull * seq;
    r.arg = 0xfedcba9876543210ull;
    r.kind = HAL_TR_SEND;
    r.task = 3;
    r.chan = 11;
    r.peer = 12;
    r.type = 1;
    r.result = -4;
    r.nhandles = 2;
    r.iface = 0xdeadbeef;
    r.len = (uint32_t)(seq % 13);
    r.data = r.len ? text : NULL;
    return r;
}

/* The frame version encode_many writes: 1, 2, or 0 for both in turn (a stream may mix them). */
static int enc_version = 1;

/* n frames back to back; returns the length. */
static size_t encode_many(unsigned char *buf, size_t cap, int n, size_t *offsets)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        hal_trace_rec_t r = sample((uint64_t)i + 1);
        int v = enc_version ? enc_version : 1 + i % 2;
        if (offsets)
            offsets[i] = len;
        size_t k = v == 1 ? trace_frame_encode(&r, buf + len, cap - len)
                          : trace_frame2_encode(&r, buf + len, cap - len);
        assert_int_equal(v == 1 ? trace_frame_size(&r) : trace_frame2_size(&r), k);
        len += k;
    }
    return len;
}

/* Run a stream test on version 1 frames, version 2 frames and a mix. */
#define EACH_VERSION(test)                                                                         \
    static void test##_each_version(void **state)                                                  \
    {                                                                                              \
        for (enc_version = 1; enc_version >= 0; enc_version = enc_version == 1 ? 2 : enc_version - 2) \
            test(state);                                                                           \
        enc_version = 1;                                                                           \
    }

static void check_sample(const got *g, int i, uint64_t seq)
{
    hal_trace_rec_t want = sample(seq);
    const hal_trace_rec_t *r = &g->rec[i];
    assert_int_equal(want.seq, r->seq);
    assert_int_equal(want.time_ns, r->time_ns);
    assert_int_equal(want.arg, r->arg);
    assert_int_equal(want.kind, r->kind);
    assert_int_equal(want.task, r->task);
    assert_int_equal(want.chan, r->chan);
    assert_int_equal(want.peer, r->peer);
    assert_int_equal(want.type, r->type);
    assert_int_equal(want.result, r->result);
    assert_int_equal(want.nhandles, r->nhandles);
    assert_int_equal(want.iface, r->iface);
    assert_int_equal(want.len, r->len);
    if (want.len)
        assert_memory_equal(want.data, g->payload[i], want.len);
}

static void test_crc32_known_value(void **state)
{
    /* The standard check value of CRC-32/ISO-HDLC. */
    assert_int_equal(0xcbf43926u, trace_crc32(0, "123456789", 9));
    assert_int_equal(0xcbf43926u, trace_crc32(trace_crc32(0, "1234", 4), "56789", 5));
}

/* Bit by bit, the definition: the oracle for the table-driven one. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc >> 1 ^ (0xEDB88320u & -(crc & 1));
    }
    return ~crc;
}

static void test_crc32_every_length_offset_and_split(void **state)
{
    unsigned char buf[200];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    /* lengths below and above the 16 bytes where eight-byte steps start, any alignment */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; off + len <= sizeof(buf); len++) {
            uint32_t want = crc32_bitwise(buf + off, len);
            assert_int_equal(want, trace_crc32(0, buf + off, len));
            size_t cut = len / 3;
            assert_int_equal(want, trace_crc32(trace_crc32(0, buf + off, cut), buf + off + cut,
                                               len - cut));
        }
    }
}

static void test_round_trip_any_split(void **state)
{
    unsigned char buf[4096];
    size_t len = encode_many(buf, sizeof(buf), 20, NULL);

    /* Feed in every chunk size from 1 byte to all at once. */
    for (size_t step = 1; step <= len; step = step < 16 ? step + 1 : step * 3) {
        got g = {0};
        trace_stream_stats st;
        trace_stream *s = trace_stream_new(collect, &g);
        for (size_t off = 0; off < len; off += step)
            trace_stream_feed(s, buf + off, len - off < step ? len - off : step);
        trace_stream_finish(s, &st);
        trace_stream_free(s);
        assert_int_equal(20, g.n);
        for (int i = 0; i < 20; i++)
            check_sample(&g, i, (uint64_t)i + 1);
        assert_int_equal(0, st.bad_frames);
        assert_int_equal(0, st.garbage_bytes);
        assert_int_equal(0, st.truncated);
    }
}

static void test_split_encoder_matches(void **state)
{
    hal_trace_rec_t r = sample(12);
    unsigned char whole[256], head[TRACE_FRAME_HEAD + TRACE_FRAME_FIXED], tail[4];
    size_t n = trace_frame_encode(&r, whole, sizeof(whole));
    size_t plen = trace_frame_encode_split(&r, head, tail);

    assert_int_equal(r.len, plen);
    assert_memory_equal(whole, head, sizeof(head));
    assert_memory_equal(whole + sizeof(head), r.data, plen);
    assert_memory_equal(whole + n - 4, tail, 4);
    assert_int_equal(0, trace_frame_encode(&r, whole, n - 1)); /* too small */
}

static void test_resync_after_garbage(void **state)
{
    unsigned char frames[4096], buf[8192];
    size_t off[10];
    size_t len = encode_many(frames, sizeof(frames), 10, off);
    size_t n = 0;
    got g = {0};
    trace_stream_stats st;

    /* garbage (including a fake magic), frames 1-3, garbage, frame 4 with a flipped
     * payload/CRC byte, frames 5-10 */
    static const unsigned char junk[] = {0x00, 0xA5, 0x5A, 0x4F, 0x54, 0xff, 0xff, 0x01, 0xA5, 0x17};
    memcpy(buf + n, junk, sizeof(junk));
    n += sizeof(junk);
    memcpy(buf + n, frames, off[3]);
    n += off[3];
    memcpy(buf + n, "noise!", 6);
    n += 6;
    size_t bad_at = n;
    memcpy(buf + n, frames + off[3], len - off[3]);
    n += len - off[3];
    buf[bad_at + 20] ^= 0x40; /* inside frame 4's fixed fields: CRC fails */

    trace_stream *s = trace_stream_new(collect, &g);
    trace_stream_feed(s, buf, n);
    trace_stream_finish(s, &st);
    trace_stream_free(s);
    assert_int_equal(9, g.n);
    for (int i = 0; i < 3; i++)
        check_sample(&g, i, (uint64_t)i + 1);
    for (int i = 3; i < 9; i++)
        check_sample(&g, i, (uint64_t)i + 2);
    assert_int_equal(2, st.bad_frames); /* the fake magic and frame 4 */
    assert_int_equal(0, st.truncated);
    assert_true(st.garbage_bytes >= sizeof(junk) + 6);
}

static void test_truncated_keeps_complete(void **state)
{
    unsigned char buf[4096];
    size_t off[6];
    size_t len = encode_many(buf, sizeof(buf), 6, off);

    /* Cut at every byte of the last frame: five records survive, one is truncated. */
    for (size_t cut = off[5] + 1; cut < len; cut++) {
        got g = {0};
        trace_stream_stats st;
        trace_stream *s = trace_stream_new(collect, &g);
        trace_stream_feed(s, buf, cut);
        trace_stream_finish(s, &st);
        trace_stream_free(s);
        assert_int_equal(5, g.n);
        assert_int_equal(1, st.truncated);
        check_sample(&g, 4, 5);
    }
}

static void test_garbled_length_does_not_stall(void **state)
{
    unsigned char buf[4096];
    size_t off[4];
    size_t len = encode_many(buf, sizeof(buf), 4, off);
    got g = {0};
    trace_stream_stats st;

    buf[off[1] + 5] ^= 0x01; /* frame 2's length: the header check rejects it at once */
    trace_stream *s = trace_stream_new(collect, &g);
    trace_stream_feed(s, buf, len);
    trace_stream_finish(s, &st);
    trace_stream_free(s);
    assert_int_equal(3, g.n);
    assert_int_equal(1, st.bad_frames);
}

static void test_import_into_recorder(void **state)
{
    unsigned char buf[4096];
    char path[256], db[256], err[256];
    size_t len = encode_many(buf, sizeof(buf), 8, NULL);
    trace_recorder *rec;
    trace_stream_stats st;
    trace_db *tdb;
    trace_run_row run;
    int fd;

    snprintf(path, sizeof(path), "/tmp/orrery-frames-%d.bin", (int)getpid());
    snprintf(db, sizeof(db), "/tmp/orrery-frames-%d.db", (int)getpid());
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal((long)len - 7, (long)write(fd, buf, len - 7)); /* the last frame is cut */
    close(fd);

    trace_run_info ri = {.platform = "qemu"};
    assert_int_equal(0, trace_recorder_open(db, &ri, &rec, err, sizeof(err)));
    fd = open(path, O_RDONLY);
    assert_int_equal(0, trace_import_fd(fd, rec, &st, err, sizeof(err)));
    close(fd);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(7, st.frames);
    assert_int_equal(1, st.truncated);

    assert_int_equal(0, trace_db_open(db, &tdb, err, sizeof(err)));
    assert_int_equal(0, trace_db_run(tdb, &run));
    assert_string_equal("qemu", run.platform);
    assert_int_equal(7, run.events);
    assert_int_equal(1, run.bad_frames);
    trace_db_close(tdb);
    unlink(path);
    unlink(db);
}

/* The version 2 layout, byte for byte, for one record (the format is pinned: a change to the
 * encoder or the check that the host would not read back fails here). */
static void test_frame2_known_bytes(void **state)
{
    static const unsigned char want[] = {
        0xa5, 0x5a, 0x4f, 0x55, 0x45, 0x00, 0x00, 0x00, 0xba, 0xff, 0xff, 0xff, CHECK_BYTES,
        /* seq 5, time 5000000035, arg */
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x23, 0xf2, 0x05, 0x2a, 0x01, 0x00, 0x00,
        0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
        /* kind 4, task 3, chan 11, peer 12, type 1, result -4, len 5, nhandles 2 */
        0x04, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0xfc, 0xff, 0xff, 0xff, 0x05, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x00, 0x00,
        /* iface, reserved */
        0xef, 0xbe, 0xad, 0xde, 0x00, 0x00, 0x00, 0x00,
        /* "hello", padded */
        'h', 'e', 'l', 'l', 'o', 0x00, 0x00, 0x00};
    hal_trace_rec_t r = sample(5), back;
    unsigned char buf[sizeof(want) + 16];

    assert_int_equal(sizeof(want), trace_frame2_size(&r));
    assert_int_equal(sizeof(want), trace_frame2_encode(&r, buf + 1, sizeof(want))); /* unaligned */
    assert_memory_equal(want, buf + 1, sizeof(want));
    assert_int_equal(0, trace_frame2_encode(&r, buf, sizeof(want) - 1)); /* too small */
    assert_int_equal((long)sizeof(want), trace_frame_parse(want, sizeof(want), &back));
    for (size_t cut = 0; cut < sizeof(want); cut++) /* every prefix: more bytes wanted */
        assert_int_equal(0, trace_frame_parse(want, cut, &back));
}

/* Version 2's fixed fields are version 1's body, and each version parses back to the record. */
static void test_frame2_round_trip_every_length(void **state)
{
    unsigned char payload[80], v1[256], v2[256];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (unsigned char)(i * 37 + 1);
    for (uint32_t len = 0; len <= sizeof(payload); len++) {
        hal_trace_rec_t r = sample(7), back;
        r.len = len;
        r.data = len ? payload : NULL;
        size_t n1 = trace_frame_encode(&r, v1, sizeof(v1));
        size_t n2 = trace_frame2_encode(&r, v2, sizeof(v2));
        assert_int_equal(TRACE_FRAME_OVERHEAD + len, n1);
        assert_int_equal(80 + (len + 7) / 8 * 8, n2);
        assert_memory_equal(v1 + TRACE_FRAME_HEAD, v2 + TRACE_FRAME2_HEAD, TRACE_FRAME_FIXED + len);
        for (size_t k = 80 + len; k < n2; k++)
            assert_int_equal(0, v2[k]); /* the padding */
        assert_int_equal((long)n2, trace_frame_parse(v2, n2, &back));
        assert_int_equal(len, back.len);
        assert_int_equal(r.seq, back.seq);
        assert_int_equal(r.iface, back.iface);
        if (len)
            assert_memory_equal(payload, back.data, len);
        else
            assert_null(back.data);
    }
}

/* Every single-bit error in a version 2 frame after the magic is rejected (the header check
 * or the check), never read as a record; so are two-bit errors in one word and across words. */
static void test_frame2_bit_errors_rejected(void **state)
{
    hal_trace_rec_t r = sample(12), back;
    unsigned char good[256], bad[256];
    size_t n = trace_frame2_encode(&r, good, sizeof(good));

    for (size_t bit = 0; bit < n * 8; bit++) {
        memcpy(bad, good, n);
        bad[bit / 8] ^= (unsigned char)(1u << bit % 8);
        assert_true(trace_frame_parse(bad, n, &back) < 0);
        for (size_t bit2 = bit + 1; bit2 < n * 8; bit2 += 13) {
            unsigned char two[256];
            memcpy(two, bad, n);
            two[bit2 / 8] ^= (unsigned char)(1u << bit2 % 8);
            assert_true(trace_frame_parse(two, n, &back) <= 0);
        }
    }
}

EACH_VERSION(test_round_trip_any_split)
EACH_VERSION(test_resync_after_garbage)
EACH_VERSION(test_truncated_keeps_complete)
EACH_VERSION(test_garbled_length_does_not_stall)
EACH_VERSION(test_import_into_recorder)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known_value),
        cmocka_unit_test(test_crc32_every_length_offset_and_split),
        cmocka_unit_test(test_round_trip_any_split_each_version),
        cmocka_unit_test(test_split_encoder_matches),
        cmocka_unit_test(test_resync_after_garbage_each_version),
        cmocka_unit_test(test_truncated_keeps_complete_each_version),
        cmocka_unit_test(test_garbled_length_does_not_stall_each_version),
        cmocka_unit_test(test_import_into_recorder_each_version),
        cmocka_unit_test(test_frame2_known_bytes),
        cmocka_unit_test(test_frame2_round_trip_every_length),
        cmocka_unit_test(test_frame2_bit_errors_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
