/* test_corpus.c — trace-to-fuzz-input conversion (trace/corpus.c): ops per message and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <iface/all.h>
#include <trace/corpus.h>

/* An echo request on the wire becomes: op 0, its index, id (4 bytes), text length, text, idle. */
static void test_echo_request_structured(void **state)
{
    (void)state;
    echo_request_t m = {.id = 0x01020304};
    strcpy(m.text, "hi");
    uint8_t wire[OS_MSG_MAX_DATA], out[64];
    os_handle_t hs[OS_MSG_MAX_HANDLES];
    size_t wlen = 0, nh = 0, len = 0;
    assert_int_equal(0, iface_encode(&echo_iface.msgs[0], &m, wire, sizeof wire, &wlen, hs, &nh));
    assert_int_equal(0, trace_corpus_msg(&echo_iface, 1, wire, wlen, 0, out, &len, sizeof out));
    const uint8_t want[] = {0, 0, 4, 3, 2, 1, 2, 'h', 'i', TRACE_CORPUS_OP_IDLE};
    assert_int_equal(sizeof want, len);
    assert_memory_equal(want, out, sizeof want);
}

/* A payload that is not its message (trailing byte) or an unknown interface: a raw op. */
static void test_malformed_is_raw(void **state)
{
    (void)state;
    const uint8_t bad[] = {1, 0, 0, 0, 0, 0, 9};
    uint8_t out[64];
    size_t len = 0;
    assert_int_equal(0, trace_corpus_msg(&echo_iface, 1, bad, sizeof bad, 0, out, &len, sizeof out));
    const uint8_t want[] = {3, 1, 7, 1, 0, 0, 0, 0, 0, 9, 0, TRACE_CORPUS_OP_IDLE};
    assert_int_equal(sizeof want, len);
    assert_memory_equal(want, out, sizeof want);
    len = 0;
    assert_int_equal(0, trace_corpus_msg(NULL, 14, bad, 2, 1, out, &len, sizeof out));
    const uint8_t want2[] = {3, 2, 2, 1, 0, 1, TRACE_CORPUS_OP_IDLE};
    assert_int_equal(sizeof want2, len);
    assert_memory_equal(want2, out, sizeof want2);
}

/* A console line: op 6, length (cut to 63), bytes; nothing is appended when it does not fit. */
static void test_line_and_room(void **state)
{
    (void)state;
    char long_line[100];
    memset(long_line, 'x', sizeof long_line);
    uint8_t out[70];
    size_t len = 0;
    assert_int_equal(0, trace_corpus_line("ps", 2, out, &len, sizeof out));
    assert_int_equal(4, len);
    assert_memory_equal("\x06\x02ps", out, 4);
    assert_int_equal(-1, trace_corpus_line(long_line, sizeof long_line, out, &len, 66));
    assert_int_equal(4, len);
    len = 0;
    assert_int_equal(0, trace_corpus_line(long_line, sizeof long_line, out, &len, sizeof out));
    assert_int_equal(65, len);
    assert_int_equal(63, out[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_request_structured),
        cmocka_unit_test(test_malformed_is_raw),
        cmocka_unit_test(test_line_and_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
