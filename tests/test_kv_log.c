/* test_kv_log.c — the kv store's pure parts (servers/kv/log.c): records, their chain and the
 * loading of a log file (torn, zeroed and stale tails), the recovery choice, lines, the arg. */
#include "kv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

enum { N = 40 };

static kv_entry_t logv[KV_LOG_MAX + 1];
static kv_entry_t loaded[KV_LOG_MAX + 1];
static uint8_t file[(N + 2) * KV_REC];

static void make_log(uint32_t len, uint32_t epoch_every)
{
    memset(logv, 0, sizeof logv);
    for (uint32_t i = 1; i <= len; i++) {
        logv[i].epoch = 1 + (epoch_every ? (i - 1) / epoch_every : 0);
        logv[i].key_len = (uint8_t)snprintf(logv[i].key, sizeof logv[i].key, "k%u", i % 7);
        logv[i].value_len = (uint16_t)snprintf(logv[i].value, sizeof logv[i].value, "v%u", i);
    }
    kv_chain(logv, 1, len);
}

/* The file as kv writes it: the header, then records 1..len. */
static size_t write_file(uint32_t epoch, uint32_t len)
{
    memset(file, 0, sizeof file);
    kv_entry_t hdr = {.epoch = epoch};
    kv_rec_encode(&hdr, file);
    for (uint32_t i = 1; i <= len; i++)
        kv_rec_encode(&logv[i], file + (size_t)i * KV_REC);
    return (size_t)(len + 1) * KV_REC;
}

/* Load size bytes of file in reads of KV_READ_RECS records, as kv does. */
static kv_loader_t load(size_t size)
{
    kv_loader_t ld = {0};
    memset(loaded, 0, sizeof loaded);
    uint32_t pos = 0;
    while (!ld.end) {
        size_t off = (size_t)pos * KV_REC, n = (size_t)KV_READ_RECS * KV_REC;
        if (off > size)
            off = size;
        if (n > size - off)
            n = size - off;
        kv_load_records(&ld, loaded, pos, file + off, n);
        pos += (uint32_t)(n / KV_REC);
    }
    return ld;
}

static void test_record_round_trip(void **state)
{
    (void)state;
    uint8_t rec[KV_REC];
    kv_entry_t e = {.epoch = 7,
                    .index = 42,
                    .prev = 0xdeadbeef,
                    .key_len = KV_KEY_MAX,
                    .value_len = KV_VALUE_MAX};
    memset(e.key, 'k', KV_KEY_MAX);
    memset(e.value, 'v', KV_VALUE_MAX);
    kv_rec_encode(&e, rec);
    kv_entry_t d;
    assert_int_equal(kv_rec_decode(rec, &d), 0);
    assert_int_equal(d.epoch, 7);
    assert_int_equal(d.index, 42);
    assert_int_equal(d.prev, 0xdeadbeef);
    assert_int_equal(d.crc, e.crc);
    assert_int_equal(d.key_len, KV_KEY_MAX);
    assert_int_equal(d.value_len, KV_VALUE_MAX);
    assert_memory_equal(d.value, e.value, KV_VALUE_MAX);
    /* any flipped byte is caught */
    for (size_t i = 0; i < KV_REC; i += 17) {
        rec[i] ^= 0x40;
        assert_int_equal(kv_rec_decode(rec, &d), -1);
        rec[i] ^= 0x40;
    }
    memset(rec, 0, sizeof rec);
    assert_int_equal(kv_rec_decode(rec, &d), -1); /* a zeroed record (preallocated) */
}

static void test_load_whole_log(void **state)
{
    (void)state;
    make_log(N, 10);
    kv_loader_t ld = load(write_file(5, N));
    assert_true(ld.header);
    assert_int_equal(ld.epoch, 5);
    assert_int_equal(ld.len, N);
    for (uint32_t i = 1; i <= N; i++) {
        assert_int_equal(loaded[i].epoch, logv[i].epoch);
        assert_int_equal(loaded[i].crc, logv[i].crc);
        assert_memory_equal(loaded[i].value, logv[i].value, logv[i].value_len);
    }
    /* an empty file: no header, no entries */
    ld = load(0);
    assert_false(ld.header);
    assert_int_equal(ld.len, 0);
}

static void test_load_stops_at_torn_and_zeroed(void **state)
{
    (void)state;
    make_log(N, 0);
    size_t size = write_file(1, N);
    /* a torn record ends the log, whatever whole records follow */
    file[(size_t)21 * KV_REC + 100] ^= 1;
    assert_int_equal(load(size).len, 20);
    /* a partial last record (the file ends inside it) */
    write_file(1, N);
    assert_int_equal(load(size - 5).len, N - 1);
    /* the zeroed record kv writes where a shorter log ends */
    write_file(1, N);
    memset(file + (size_t)31 * KV_REC, 0, KV_REC);
    assert_int_equal(load(size).len, 30);
    /* a torn header loses the epoch, not the entries */
    write_file(9, N);
    file[3] ^= 0xff;
    kv_loader_t ld = load(size);
    assert_false(ld.header);
    assert_int_equal(ld.epoch, 0);
    assert_int_equal(ld.len, N);
}

static void test_load_ignores_stale_records(void **state)
{
    (void)state;
    /* the file held 40 entries of epoch 1; the log was cut to 10 and 2 entries of epoch 2
     * written after them: records 13..40 are stale, and well-formed, but do not chain */
    make_log(N, 0);
    size_t size = write_file(2, N);
    for (uint32_t i = 11; i <= 12; i++) {
        logv[i].epoch = 2;
        logv[i].value_len = (uint16_t)snprintf(logv[i].value, sizeof logv[i].value, "new%u", i);
    }
    kv_chain(logv, 11, 12);
    for (uint32_t i = 11; i <= 12; i++)
        kv_rec_encode(&logv[i], file + (size_t)i * KV_REC);
    kv_loader_t ld = load(size);
    assert_int_equal(ld.len, 12);
    assert_int_equal(loaded[12].epoch, 2);
    /* a record whose index is not its place does not belong either */
    make_log(N, 0);
    write_file(1, N);
    memcpy(file + (size_t)6 * KV_REC, file + (size_t)5 * KV_REC, KV_REC);
    assert_int_equal(load(size).len, 5);
}

static void test_recovery_choice(void **state)
{
    (void)state;
    kv_logpos_t a = {10, 3}, b = {50, 2}, c = {12, 3}, d = {12, 3};
    assert_true(kv_log_better(a, b)); /* a higher last epoch beats a longer log */
    assert_false(kv_log_better(b, a));
    assert_true(kv_log_better(c, a)); /* same epoch: the longer */
    assert_false(kv_log_better(c, d));
    kv_logpos_t cands[] = {b, a, c, d};
    assert_int_equal(kv_log_choose(cands, 4), 2); /* the first of the equal best */
    kv_logpos_t one[] = {{0, 0}};
    assert_int_equal(kv_log_choose(one, 1), 0);
}

static void parse(const char *s, kv_line_t *l)
{
    kv_parse_line(s, strlen(s), l);
}

static void test_lines(void **state)
{
    (void)state;
    kv_line_t l;
    parse("PUT key some value", &l);
    assert_int_equal(l.verb, KV_V_PUT);
    assert_int_equal(l.e.key_len, 3);
    assert_memory_equal(l.e.value, "some value", 10);
    assert_int_equal(l.e.value_len, 10);
    parse("GET key", &l);
    assert_int_equal(l.verb, KV_V_GET);
    parse("E 3 17 2 k v", &l);
    assert_int_equal(l.verb, KV_V_E);
    assert_int_equal(l.e.epoch, 3);
    assert_int_equal(l.e.index, 17);
    assert_int_equal(l.c, 2);
    parse("E 3 18 3", &l); /* a no-op */
    assert_int_equal(l.verb, KV_V_E);
    assert_int_equal(l.e.key_len, 0);
    parse("LOG 12 4", &l);
    assert_int_equal(l.verb, KV_V_LOG);
    assert_int_equal(l.a, 12);
    assert_int_equal(l.b, 4);

    char line[KV_LINE_MAX];
    memset(line, 0, sizeof line);
    memcpy(line, "GET ", 4);
    memset(line + 4, 'k', KV_KEY_MAX + 1);
    parse(line, &l);
    assert_int_equal(l.verb, KV_V_BAD);
    assert_string_equal(l.why, "key longer than 64 bytes");
    memset(line, 0, sizeof line);
    memcpy(line, "PUT k ", 6);
    memset(line + 6, 'v', KV_VALUE_MAX + 1);
    parse(line, &l);
    assert_string_equal(l.why, "value longer than 256 bytes");
    line[6 + KV_VALUE_MAX] = 0;
    parse(line, &l);
    assert_int_equal(l.verb, KV_V_PUT);
    assert_int_equal(l.e.value_len, KV_VALUE_MAX);

    const char *bad[] = {"",        "PUT",     "PUT k",      "GET",      "GET a b",
                         "DEL k",   "E 1 0 0", "E 1 2049 0", "E x 1 0",  "ACK",
                         "ACK 1 2", "LOG 1",   "put k v",    "GET k\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parse(bad[i], &l);
        assert_int_equal(l.verb, KV_V_BAD);
        assert_non_null(l.why);
    }
}

static void test_entry_line_round_trip(void **state)
{
    (void)state;
    char out[KV_LINE_MAX];
    kv_entry_t e = {.epoch = 4, .index = 99, .key_len = KV_KEY_MAX, .value_len = KV_VALUE_MAX};
    memset(e.key, 'a', KV_KEY_MAX);
    memset(e.value, ' ', KV_VALUE_MAX); /* a value may be all spaces */
    e.value[KV_VALUE_MAX - 1] = 'z';
    size_t n = kv_format_entry(&e, 3, out);
    assert_true(n > 0 && n < KV_LINE_MAX && out[n - 1] == '\n');
    kv_line_t l;
    kv_parse_line(out, n - 1, &l);
    assert_int_equal(l.verb, KV_V_E);
    assert_int_equal(l.c, 3);
    assert_int_equal(l.e.value_len, KV_VALUE_MAX);
    assert_memory_equal(l.e.value, e.value, KV_VALUE_MAX);
    kv_entry_t nop = {.epoch = 5, .index = 100};
    n = kv_format_entry(&nop, 4, out);
    kv_parse_line(out, n - 1, &l);
    assert_int_equal(l.verb, KV_V_E);
    assert_int_equal(l.e.key_len, 0);
}

static void test_args(void **state)
{
    (void)state;
    kv_args_t a;
    char why[128];
    const char *s = "role=leader,port=7001,peers=10.0.0.2+10.0.0.3,log=/data/kv";
    assert_int_equal(kv_parse_args(s, strlen(s), &a, why), 0);
    assert_true(a.leader);
    assert_int_equal(a.port, 7001);
    assert_int_equal(a.npeers, 2);
    assert_int_equal(a.peers[1], 0x0a000003);
    assert_string_equal(a.log, "/data/kv");
    s = "role=follower,bug=ack-before-fsync";
    assert_int_equal(kv_parse_args(s, strlen(s), &a, why), 0);
    assert_false(a.leader);
    assert_int_equal(a.bugs, KV_BUG_ACK_BEFORE_FSYNC);
    assert_int_equal(a.port, KV_PORT);
    assert_string_equal(a.log, "/kv.log");
    const char *bad[] = {"",
                         "port=7000",
                         "role=boss",
                         "role=leader,port=0",
                         "role=leader,port=70000",
                         "role=leader,peers=10.0.0",
                         "role=leader,peers=10.0.0.1.5",
                         "role=leader,peers=1.1.1.1+2.2.2.2+3.3.3.3+4.4.4.4+5.5.5.5",
                         "role=follower,peers=10.0.0.1",
                         "role=leader,log=rel",
                         "role=leader,bug=other",
                         "role=leader,speed=fast",
                         "role"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        assert_int_equal(kv_parse_args(bad[i], strlen(bad[i]), &a, why), -1);
        assert_true(why[0] != 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_load_whole_log),
        cmocka_unit_test(test_load_stops_at_torn_and_zeroed),
        cmocka_unit_test(test_load_ignores_stale_records),
        cmocka_unit_test(test_recovery_choice),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_entry_line_round_trip),
        cmocka_unit_test(test_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
