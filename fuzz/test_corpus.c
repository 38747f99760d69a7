/* test_corpus.c — trace-to-fuzz-input conversion (trace/corpus.c, corpus_net.c): ops per message,
 * line and frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <iface/all.h>
#include <trace/corpus.h>

#include "fuzz_tcpip.h"

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
    assert_int_equal(0,
                     trace_corpus_msg(&echo_iface, 1, bad, sizeof bad, 0, out, &len, sizeof out));
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

/*
 * A frame tcpip received becomes the template op that builds it again: frames made by
 * fuzz_tcpip's builder (ARP request, ping, UDP, a TCP SYN, then ACK, data and FIN on that
 * flow), turned into ops and built again from them on a builder of their own, come out byte
 * for byte the same. Both builders see the server's SYN|ACK, as fuzz_tcpip's net0 would.
 */
static void test_frames_rebuild_from_their_ops(void **state)
{
    (void)state;
    static const uint8_t inputs[][24] = {
        {TRACE_CORPUS_TPL_ARP_REQUEST, 0, 0, 0},
        {TRACE_CORPUS_TPL_ECHO_REQUEST, 0, 0, 3, 'a', 'b', 'c', 0x12, 0x34, 9, 0},
        {TRACE_CORPUS_TPL_UDP, 0, 0, 0, 0, 2, 'h', 'i'},
        {TRACE_CORPUS_TPL_TCP, 0, 0, 0xf0, 0x02, 0, 0, 0, 0, 0, 0, 0},
        {TRACE_CORPUS_TPL_TCP, 0, 0, 0xf0, 0x10, 0, 0, 0, 0, 0, 0, 0},
        {TRACE_CORPUS_TPL_TCP, 0, 0, 0xf0, 0x18, 0, 0, 0, 0, 0, 0, 4, 'd', 'a', 't', 'a'},
        {TRACE_CORPUS_TPL_TCP, 0, 0, 0xf0, 0x11, 0, 0, 0, 0, 0, 0, 0},
    };
    fz_net_t a, b;
    trace_corpus_net_t t;
    fz_net_reset(&a);
    fz_net_reset(&b);
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        uint8_t f1[1600], f2[1600], ops[1700];
        fz_in_t in = {inputs[i], sizeof inputs[i]};
        size_t n1 = fz_net_build(&a, &in, f1, sizeof f1), len = 0;
        assert_true(n1 >= 42);
        assert_int_equal(0, trace_corpus_frame(&t, f1, n1, 3 * TRACE_CORPUS_TCPIP_STEP_NS, ops,
                                               &len, sizeof ops));
        assert_int_equal(TRACE_CORPUS_TCPIP_FRAME, ops[0]);
        assert_int_equal(3, ops[1]); /* the time step */
        fz_in_t again = {ops + 2, len - 2};
        size_t n2 = fz_net_build(&b, &again, f2, sizeof f2);
        assert_int_equal(0, again.n); /* every byte of the op read */
        assert_int_equal(n1, n2);
        assert_memory_equal(f1, f2, n1);
        if (i == 3) { /* the server answers the SYN: both learn its sequence number */
            uint8_t sa[58];
            memcpy(sa, f1 + 6, 6); /* to the sender */
            memcpy(sa + 6, f1, 6);
            memcpy(sa + 12, f1 + 12, 22);
            memcpy(sa + 26, f1 + 30, 4); /* from the server */
            memcpy(sa + 30, f1 + 26, 4);
            memcpy(sa + 34, f1 + 36, 2); /* its port first */
            memcpy(sa + 36, f1 + 34, 2);
            memcpy(sa + 38, "\x00\x00\x19\x6e", 4); /* seq 6510 */
            sa[42] = f1[38], sa[43] = f1[39], sa[44] = f1[40], sa[45] = (uint8_t)(f1[41] + 1);
            memcpy(sa + 46, f1 + 46, 12);
            sa[47] = 0x12;
            fz_net_observe(&a, sa, sizeof sa);
            fz_net_observe(&b, sa, sizeof sa);
            trace_corpus_net_sent(&t, sa, sizeof sa);
        }
    }
}

/* Anything else (here IPv6) is a raw frame op: length (u16 LE) and the bytes. */
static void test_other_frames_are_raw(void **state)
{
    (void)state;
    uint8_t f[60] = {0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x86, 0xdd};
    uint8_t ops[80];
    size_t len = 0;
    trace_corpus_net_t t = {0};
    assert_int_equal(0, trace_corpus_frame(&t, f, sizeof f, 0, ops, &len, sizeof ops));
    assert_int_equal(4 + sizeof f, len);
    assert_memory_equal("\x03\x00\x3c\x00", ops, 4);
    assert_memory_equal(f, ops + 4, sizeof f);
    len = 0;
    assert_int_equal(-1, trace_corpus_frame(&t, f, sizeof f, 0, ops, &len, 40)); /* no room */
    assert_int_equal(0, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_request_structured),
        cmocka_unit_test(test_malformed_is_raw),
        cmocka_unit_test(test_line_and_room),
        cmocka_unit_test(test_frames_rebuild_from_their_ops),
        cmocka_unit_test(test_other_frames_are_raw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
