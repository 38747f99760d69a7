/* test_blkdec.c — `trace show` on blk0: requests, completions and INFO decoded from a hand-built
 * trace (never the sector bytes), damaged payloads named, and fs messages decoded by interface. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <trace/blk.h>
#include <trace/decode.h>
#include <trace/reader.h>
#include <trace/recorder.h>
#include <trace/tools.h>

#include <hal/codes.h>
#include <os/errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/orrery-blkdec-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A request header followed by n bytes of sector data (0x5a), in buf. */
static size_t req(unsigned char *buf, uint64_t id, uint64_t sector, uint32_t count, int32_t status,
                  size_t n)
{
    hal_blk_req_t r = {.id = id, .sector = sector, .count = count, .status = status};
    memcpy(buf, &r, sizeof(r));
    memset(buf + sizeof(r), 0x5a, n);
    return sizeof(r) + n;
}

static const char *describe(uint32_t code, bool completion, const void *data, size_t len)
{
    static char out[512];
    return trace_blk_describe(code, completion, data, len, out, sizeof(out));
}

static void test_requests_and_completions(void **state)
{
    static unsigned char b[4096];
    size_t n;

    n = req(b, 7, 128, 4, 0, 0);
    assert_string_equal("id 7 sector 128 count 4", describe(HAL_BLK_READ, false, b, n));
    n = req(b, 7, 128, 4, 0, 4 * 512);
    assert_string_equal("id 7 sector 128 count 4 status OK +2048 bytes",
                        describe(HAL_BLK_READ, true, b, n));
    n = req(b, 8, 2, 1, 0, 512);
    assert_string_equal("id 8 sector 2 count 1 +512 bytes", describe(HAL_BLK_WRITE, false, b, n));
    n = req(b, 8, 2, 1, 0, 0);
    assert_string_equal("id 8 sector 2 count 1 status OK", describe(HAL_BLK_WRITE, true, b, n));
    n = req(b, 9, 0, 0, 0, 0);
    assert_string_equal("id 9", describe(HAL_BLK_FLUSH, false, b, n));
    assert_string_equal("id 9 status OK", describe(HAL_BLK_FLUSH, true, b, n));
    /* failed completions: the error's name, and a failed READ carries no sectors */
    n = req(b, 10, 5, 3, OS_EIO, 0);
    assert_string_equal("id 10 sector 5 count 3 status EIO", describe(HAL_BLK_READ, true, b, n));
    n = req(b, 11, 5, 3, OS_EACCES, 0);
    assert_string_equal("id 11 sector 5 count 3 status EACCES",
                        describe(HAL_BLK_WRITE, true, b, n));
    n = req(b, 12, 5, 3, -9999, 0);
    assert_string_equal("id 12 sector 5 count 3 status -9999", describe(HAL_BLK_WRITE, true, b, n));
    /* the sector bytes are never printed */
    n = req(b, 13, 0, 7, 0, 7 * 512);
    assert_null(strstr(describe(HAL_BLK_READ, true, b, n), "5a"));
}

static void test_info(void **state)
{
    hal_blk_info_t in = {.sectors = 2048, .read_only = 0, .max_sectors = 7};
    assert_string_equal("2048 sectors (1 MiB) read-write, max 7 a request",
                        describe(HAL_BLK_INFO, true, &in, sizeof(in)));
    in = (hal_blk_info_t){.sectors = 129, .read_only = 1, .max_sectors = 7};
    assert_string_equal("129 sectors (64.5 KiB) read-only, max 7 a request",
                        describe(HAL_BLK_INFO, true, &in, sizeof(in)));
    assert_string_equal("[truncated blk info: 15 of 16 bytes]",
                        describe(HAL_BLK_INFO, true, &in, sizeof(in) - 1));
}

static void test_damaged_payloads(void **state)
{
    static unsigned char b[4096];
    size_t n;

    n = req(b, 1, 0, 1, 0, 0);
    assert_string_equal("[truncated blk request: 23 of 24 bytes]",
                        describe(HAL_BLK_READ, false, b, n - 1));
    assert_string_equal("[truncated blk completion: 0 of 24 bytes]",
                        describe(HAL_BLK_READ, true, NULL, 0));
    /* a READ completion whose sectors are cut short, a WRITE without its sectors */
    n = req(b, 2, 0, 2, 0, 700);
    assert_string_equal("id 2 sector 0 count 2 status OK +700 bytes [expected 1024 data bytes]",
                        describe(HAL_BLK_READ, true, b, n));
    n = req(b, 3, 0, 2, 0, 0);
    assert_string_equal("id 3 sector 0 count 2 [expected 1024 data bytes]",
                        describe(HAL_BLK_WRITE, false, b, n));
    /* a READ request with data after it */
    n = req(b, 4, 0, 1, 0, 10);
    assert_string_equal("id 4 sector 0 count 1 +10 bytes [expected 0 data bytes]",
                        describe(HAL_BLK_READ, false, b, n));
    assert_string_equal("[not a blk0 code: 3, 24 bytes]", describe(3, false, b, 24));
    assert_null(trace_blk_code_name(3));
    assert_string_equal("FLUSH", trace_blk_code_name(HAL_BLK_FLUSH));
}

/* A line cut at any size is a NUL-terminated prefix of the whole line. */
static void test_cut_output(void **state)
{
    static unsigned char b[4096];
    size_t n = req(b, 123456789, 987654321, 7, OS_EIO, 33);
    char whole[256], cut[256];
    trace_blk_describe(HAL_BLK_READ, true, b, n, whole, sizeof(whole));
    for (size_t cap = 1; cap < strlen(whole) + 2; cap++) {
        memset(cut, 'x', sizeof(cut));
        trace_blk_describe(HAL_BLK_READ, true, b, n, cut, cap);
        size_t m = strnlen(cut, cap);
        assert_true(m < cap);
        assert_memory_equal(whole, cut, m);
    }
}

static void rec(trace_recorder *r, hal_trace_rec_t e)
{
    trace_recorder_record(r, &e);
}

/* little-endian field writers for hand-encoded fs messages */
static size_t put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> 8 * i);
    return 4;
}

static char *show_all(const char *path)
{
    trace_db *db;
    char err[256], *text = NULL;
    size_t len = 0;
    assert_int_equal(0, trace_db_open(path, &db, err, sizeof(err)));
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(0, trace_show(db, NULL, out));
    fclose(out);
    trace_db_close(db);
    return text;
}

/* The trace of an fs task: blk0 named by its DEVICE record; its records decoded in `trace show`;
 * an fs.open and its reply decoded by the fs interface's definition. */
static void test_trace_show_decodes_blk0_and_fs(void **state)
{
    char path[128], err[256];
    static unsigned char b[4096];
    trace_run_info run = {.platform = "sim", .commit = "test"};
    trace_recorder *r;
    uint64_t seq = 0;
    uint32_t fs = trace_iface_from_name("fs");
    hal_blk_info_t in = {.sectors = 512, .read_only = 0, .max_sectors = 7};

    assert_int_not_equal(0, fs);
    snprintf(path, sizeof(path), "%s/blk.db", dir);
    assert_int_equal(0, trace_recorder_open(path, &run, &r, err, sizeof(err)));
    rec(r,
        (hal_trace_rec_t){
            .seq = ++seq, .kind = HAL_TR_DEVICE, .chan = 3, .type = 2, .data = "blk0", .len = 4});
    rec(r,
        (hal_trace_rec_t){.seq = ++seq, .kind = HAL_TR_SPAWN, .task = 2, .data = "fs", .len = 2});
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DEV_POST,
                             .chan = 3,
                             .type = HAL_BLK_INFO,
                             .data = &in,
                             .len = sizeof(in)});
    size_t n = req(b, 1, 2, 2, 0, 0);
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DEV_WRITE,
                             .task = 2,
                             .chan = 3,
                             .type = HAL_BLK_READ,
                             .data = b,
                             .len = (uint32_t)n});
    n = req(b, 1, 2, 2, 0, 1024);
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DEV_POST,
                             .chan = 3,
                             .type = HAL_BLK_READ,
                             .data = b,
                             .len = (uint32_t)n});
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DEV_EVENT,
                             .task = 2,
                             .chan = 3,
                             .type = HAL_BLK_READ,
                             .data = b,
                             .len = (uint32_t)n});
    n = req(b, 2, 40, 1, 0, 512);
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DEV_WRITE,
                             .task = 2,
                             .chan = 3,
                             .type = HAL_BLK_WRITE,
                             .data = b,
                             .len = (uint32_t)n});
    n = req(b, 2, 40, 1, OS_EIO, 0);
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DEV_EVENT,
                             .task = 2,
                             .chan = 3,
                             .type = HAL_BLK_WRITE,
                             .data = b,
                             .len = (uint32_t)n});
    n = req(b, 3, 0, 0, 0, 0);
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DEV_WRITE,
                             .task = 2,
                             .chan = 3,
                             .type = HAL_BLK_FLUSH,
                             .result = OS_EFULL,
                             .data = b,
                             .len = (uint32_t)n});
    /* fs.open {req 5, flags READ, mode 0, path "/etc/motd"} and fs.reply {5, OS_ENOENT} */
    unsigned char m[64];
    size_t k = put32(m, 5);
    k += put32(m + k, 1);
    k += put32(m + k, 0);
    m[k++] = 9;
    m[k++] = 0;
    memcpy(m + k, "/etc/motd", 9);
    k += 9;
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_DELIVER,
                             .task = 2,
                             .chan = 20,
                             .peer = 21,
                             .type = 1,
                             .iface = fs,
                             .data = m,
                             .len = (uint32_t)k});
    k = put32(m, 5);
    k += put32(m + k, (uint32_t)OS_ENOENT);
    rec(r, (hal_trace_rec_t){.seq = ++seq,
                             .kind = HAL_TR_SEND,
                             .task = 2,
                             .chan = 20,
                             .peer = 21,
                             .type = 3,
                             .iface = fs,
                             .data = m,
                             .len = (uint32_t)k});
    assert_int_equal(0, trace_recorder_close(r, err, sizeof(err)));

    char *text = show_all(path);
    assert_non_null(strstr(text, "dev 3 blk0 INFO [16 bytes] 512 sectors (256 KiB) read-write"));
    assert_non_null(
        strstr(text, "DEV_WRITE    dev 3 blk0 READ [24 bytes] id 1 sector 2 count 2\n"));
    assert_non_null(strstr(text, "DEV_POST     dev 3 blk0 READ [1048 bytes] id 1 sector 2 count 2 "
                                 "status OK +1024 bytes\n"));
    assert_non_null(strstr(text, "DEV_EVENT    dev 3 blk0 READ [1048 bytes] id 1 sector 2 count 2 "
                                 "status OK +1024 bytes\n"));
    assert_non_null(strstr(text, "blk0 WRITE [536 bytes] id 2 sector 40 count 1 +512 bytes\n"));
    assert_non_null(strstr(text, "blk0 WRITE [24 bytes] id 2 sector 40 count 1 status EIO\n"));
    assert_non_null(strstr(text, "blk0 FLUSH [24 bytes] id 3 -> EFULL\n"));
    assert_non_null(strstr(text, "fs.open {req: 5, flags: 1, mode: 0, path: \"/etc/motd\"}"));
    assert_non_null(strstr(text, "fs.reply {req: 5, status: -9 ENOENT}"));
    /* no sector bytes (0x5a, 'Z') in the text */
    assert_null(strstr(text, "5a 5a"));
    assert_null(strstr(text, "ZZZZ"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_and_completions),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_damaged_payloads),
        cmocka_unit_test(test_cut_output),
        cmocka_unit_test(test_trace_show_decodes_blk0_and_fs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
