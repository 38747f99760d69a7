/* test_iface.c — the interface machinery: round trips, every malformed variant, build-time ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <iface/all.h>

/* Two local definitions that differ in one field's limit, and one that differs only in
 * how its macro is spaced: the id follows the meaning, not the layout. */
#define T1_MESSAGES(MSG) MSG(t1, ping, 1, (u32, id, 0), (str, text, 16))
#define T2_MESSAGES(MSG) MSG(t1, ping, 1, (u32, id, 0), (str, text, 17))
#define T3_MESSAGES(MSG) MSG(t1, ping, 1, (u32, id, 0), (str, text, 16))
#define T4_MESSAGES(MSG) MSG(t1, ping, 1, (u64, id, 0), (str, text, 16))
#define T5_MESSAGES(MSG)                                                                           \
    MSG(t5, all, 1, (u8, a, 0), (u16, b, 0), (u32, c, 0), (u64, d, 0), (i32, e, 0), (i64, f, 0),   \
        (str, s, 8), (bytes, g, 8))                                                                \
    MSG(t5, hh, 2, (handle, h1, 0), (u8, x, 0), (handle, h2, 0))                                  \
    MSG(t5, port, 3, (u16, port, 0))
/* Interfaces outside the image's set carry no build-time id; the tests hash their texts. */
IFACE_DECLARE(t1, T1_MESSAGES)
IFACE_DEFINE_AS(t1, T1_MESSAGES, 0u)
/* The canonical texts of the variants, built by the same generator IFACE_DEFINE uses. */
static const char t2_text[] = "t1{" T2_MESSAGES(IFACE_G_CANON) "}";
static const char t3_text[] = "t1{" T3_MESSAGES(IFACE_G_CANON) "}";
static const char t4_text[] = "t1{" T4_MESSAGES(IFACE_G_CANON) "}";

IFACE_DECLARE(t5, T5_MESSAGES)
IFACE_DEFINE_AS(t5, T5_MESSAGES, 0u)

static void test_fnv1a_vectors(void **state)
{
    assert_int_equal(0x811c9dc5u, iface_hash("", 0));
    assert_int_equal(0xe40c292cu, iface_hash("a", 1));
    assert_int_equal(0xbf9cf968u, iface_hash("foobar", 6));
}

static void test_canonical_text_and_id(void **state)
{
    assert_string_equal("echo{1 request(u32 id;str text<=1024;)2 reply(u32 id;str text<=1024;)"
                        "3 error(u32 type;i32 status;)}",
                        echo_iface.text);
    /* the id iface_gen computed at build time is the hash of the text compiled now */
    for (size_t i = 0; iface_all[i]; i++)
        assert_int_equal(iface_hash(iface_all[i]->text, strlen(iface_all[i]->text)),
                         iface_id(iface_all[i]));
    assert_string_equal("t1{1 ping(u32 id;str text<=16;)}", t1_iface.text);
}

static void test_id_changes_with_the_definition(void **state)
{
    uint32_t t2 = iface_hash(t2_text, strlen(t2_text));
    uint32_t t3 = iface_hash(t3_text, strlen(t3_text));
    uint32_t t4 = iface_hash(t4_text, strlen(t4_text));
    uint32_t t1 = iface_hash(t1_iface.text, strlen(t1_iface.text));
    assert_true(t1 != t2);    /* a limit changed */
    assert_true(t1 != t4);    /* a kind changed */
    assert_int_equal(t1, t3); /* only the spacing changed */
}

static void test_ids_of_the_image_are_unique(void **state)
{
    char err[128];
    size_t n = 0;
    while (iface_all[n])
        n++;
    assert_int_equal(7, n); /* init, console, echo, net, tcp, udp, fs */
    assert_int_equal(0, iface_check_set(iface_all, n, err, sizeof err));
}

static void test_check_set_finds_collisions(void **state)
{
    char err[128];
    iface_t twin = echo_iface;
    twin.name = "echo2"; /* same text, so the same id */
    const iface_t *dup_id[] = {&echo_iface, &twin};
    assert_int_equal(-1, iface_check_set(dup_id, 2, err, sizeof err));
    assert_non_null(strstr(err, "same id"));

    iface_t t1b = t1_iface;
    t1b.text = t2_text;
    const iface_t *dup_name[] = {&t1_iface, &t1b};
    assert_int_equal(-1, iface_check_set(dup_name, 2, err, sizeof err));
    assert_non_null(strstr(err, "defined twice"));

    iface_msg_t msgs[2] = {echo_iface.msgs[0], echo_iface.msgs[1]};
    msgs[1].number = msgs[0].number;
    iface_t bad = {"bad", "bad{}", msgs, 2, 0};
    const iface_t *dup_num[] = {&bad};
    assert_int_equal(-1, iface_check_set(dup_num, 1, err, sizeof err));
    assert_non_null(strstr(err, "share number"));
}

static void encode(const iface_t *i, uint32_t num, const void *msg, uint8_t *buf, size_t *len,
                   os_handle_t *hs, size_t *nh)
{
    assert_int_equal(0, iface_encode(iface_msg(i, num), msg, buf, OS_MSG_MAX_DATA, len, hs, nh));
}

/* Decode into a buffer that is larger than the message's struct, filled with a guard byte:
 * the decoded struct must equal `want`, and no byte past the struct may change (each field
 * is written at its own width, never past the struct's end). */
enum { GUARD = 0xa5 };
static void decode_guarded(const iface_msg_t *d, const uint8_t *buf, size_t len,
                           const os_handle_t *hs, size_t nh, const void *want)
{
    uint8_t out[8192];
    memset(out, GUARD, sizeof out);
    assert_true(d->size + 16 <= sizeof out);
    assert_int_equal(0, iface_decode(d, buf, len, hs, nh, out, sizeof out));
    assert_memory_equal(want, out, d->size);
    for (size_t i = d->size; i < d->size + 16; i++)
        if (out[i] != GUARD)
            fail_msg("message %u: decode wrote byte %zu, past its %zu-byte struct", d->number, i,
                     (size_t)d->size);
}

static void test_round_trip_every_kind(void **state)
{
    t5_all_t in, out;
    uint8_t buf[OS_MSG_MAX_DATA];
    os_handle_t hs[OS_MSG_MAX_HANDLES];
    size_t len, nh;

    memset(&in, 0, sizeof in);
    in.a = 0xfe;
    in.b = 0xbeef;
    in.c = 0xdeadbeef;
    in.d = 0x0123456789abcdefull;
    in.e = -5;
    in.f = -1234567890123ll;
    strcpy(in.s, "12345678");
    in.g_len = 3;
    memcpy(in.g, "\0\1\2", 3);
    encode(&t5_iface, t5_msg_all, &in, buf, &len, hs, &nh);
    assert_int_equal(1 + 2 + 4 + 8 + 4 + 8 + 2 + 8 + 2 + 3, len);
    assert_int_equal(0, nh);
    assert_int_equal(0xfe, buf[0]);
    assert_int_equal(0xef, buf[1]); /* little endian */
    assert_int_equal(0xbe, buf[2]);
    assert_int_equal(0, iface_decode(iface_msg(&t5_iface, 1), buf, len, NULL, 0, &out, sizeof out));
    assert_memory_equal(&in, &out, sizeof in);

    t5_hh_t h, h2;
    memset(&h, 0, sizeof h); /* padding too: the structs are compared bytewise */
    h.h1 = 7;
    h.x = 9;
    h.h2 = 8;
    encode(&t5_iface, t5_msg_hh, &h, buf, &len, hs, &nh);
    assert_int_equal(1, len);
    assert_int_equal(2, nh);
    assert_int_equal(7, hs[0]);
    assert_int_equal(8, hs[1]);
    assert_int_equal(0, iface_decode(iface_msg(&t5_iface, 2), buf, len, hs, nh, &h2, sizeof h2));
    assert_memory_equal(&h, &h2, sizeof h);

    /* A 16-bit field that ends its struct: two bytes on the wire, two in memory. */
    t5_port_t p = {.port = 0xbeef};
    encode(&t5_iface, t5_msg_port, &p, buf, &len, hs, &nh);
    assert_int_equal(2, len);
    decode_guarded(iface_msg(&t5_iface, 3), buf, len, hs, nh, &p);
}

static void test_round_trip_every_image_message(void **state)
{
    /* fill each message of each interface field by field from its descriptor */
    for (size_t i = 0; iface_all[i]; i++) {
        const iface_t *f = iface_all[i];
        for (size_t m = 0; m < f->nmsgs; m++) {
            const iface_msg_t *d = &f->msgs[m];
            uint8_t in[8192], buf[OS_MSG_MAX_DATA];
            os_handle_t hs[OS_MSG_MAX_HANDLES];
            size_t len, nh;
            memset(in, 0, sizeof in);
            for (size_t k = 0; k < d->nfields; k++) {
                const iface_field_t *fl = &d->fields[k];
                if (fl->kind == IFACE_STR)
                    memset(in + fl->offset, 'a' + (int)k, fl->max); /* at the limit */
                else if (fl->kind == IFACE_BYTES) {
                    uint32_t n = fl->max;
                    memset(in + fl->offset, 0, n); /* NULs are fine in bytes */
                    memcpy(in + fl->len_offset, &n, sizeof n);
                } else if (fl->kind == IFACE_HANDLE) {
                    os_handle_t h = (os_handle_t)(100 + k);
                    memcpy(in + fl->offset, &h, sizeof h);
                } else
                    in[fl->offset] = (uint8_t)(k + 1);
            }
            assert_int_equal(0, iface_encode(d, in, buf, sizeof buf, &len, hs, &nh));
            assert_true(len <= d->wire_max);
            assert_int_equal(d->nhandles, nh);
            decode_guarded(d, buf, len, hs, nh, in);
        }
    }
}

static void test_every_truncation_and_extension_is_eproto(void **state)
{
    echo_request_t r = {42, "hello"}, out;
    uint8_t buf[OS_MSG_MAX_DATA];
    os_handle_t hs[OS_MSG_MAX_HANDLES];
    size_t len, nh;
    const iface_msg_t *d = iface_msg(&echo_iface, echo_msg_request);

    encode(&echo_iface, echo_msg_request, &r, buf, &len, hs, &nh);
    for (size_t n = 0; n < len; n++)
        assert_int_equal(OS_EPROTO, iface_decode(d, buf, n, NULL, 0, &out, sizeof out));
    buf[len] = 'x';
    assert_int_equal(OS_EPROTO, iface_decode(d, buf, len + 1, NULL, 0, &out, sizeof out));
    assert_int_equal(0, iface_decode(d, buf, len, NULL, 0, &out, sizeof out));
}

static void test_malformed_strings_and_handles(void **state)
{
    echo_request_t out;
    const iface_msg_t *d = iface_msg(&echo_iface, echo_msg_request);
    uint8_t buf[2048] = {1, 0, 0, 0};

    /* a length past the limit, even with the bytes present */
    buf[4] = (uint8_t)(1025 & 0xff);
    buf[5] = (uint8_t)(1025 >> 8);
    memset(buf + 6, 'a', 1025);
    assert_int_equal(OS_EPROTO, iface_decode(d, buf, 6 + 1025, NULL, 0, &out, sizeof out));
    /* a length past the end */
    buf[4] = 10;
    buf[5] = 0;
    assert_int_equal(OS_EPROTO, iface_decode(d, buf, 6 + 5, NULL, 0, &out, sizeof out));
    /* a NUL inside a str */
    memcpy(buf + 6, "ab\0cd", 5);
    buf[4] = 5;
    assert_int_equal(OS_EPROTO, iface_decode(d, buf, 6 + 5, NULL, 0, &out, sizeof out));
    memcpy(buf + 6, "abccd", 5);
    assert_int_equal(0, iface_decode(d, buf, 6 + 5, NULL, 0, &out, sizeof out));
    assert_string_equal("abccd", out.text);
    /* a handle where none belongs */
    os_handle_t h = 5;
    assert_int_equal(OS_EPROTO, iface_decode(d, buf, 6 + 5, &h, 1, &out, sizeof out));
    /* too small an output struct */
    assert_int_equal(OS_EPROTO, iface_decode(d, buf, 6 + 5, NULL, 0, &out, sizeof out - 1));

    /* handle messages: missing, extra, NONE */
    t5_hh_t hh;
    const iface_msg_t *dh = iface_msg(&t5_iface, t5_msg_hh);
    os_handle_t two[3] = {3, 4, 5}, none[2] = {3, OS_HANDLE_NONE};
    uint8_t x = 1;
    assert_int_equal(0, iface_decode(dh, &x, 1, two, 2, &hh, sizeof hh));
    assert_int_equal(OS_EPROTO, iface_decode(dh, &x, 1, two, 1, &hh, sizeof hh));
    assert_int_equal(OS_EPROTO, iface_decode(dh, &x, 1, two, 3, &hh, sizeof hh));
    assert_int_equal(OS_EPROTO, iface_decode(dh, &x, 1, none, 2, &hh, sizeof hh));
}

static void test_encode_refuses_bad_structs(void **state)
{
    uint8_t buf[OS_MSG_MAX_DATA];
    os_handle_t hs[OS_MSG_MAX_HANDLES];
    size_t len, nh;
    t5_all_t a;
    memset(&a, 'x', sizeof a); /* str without a NUL within its limit, bytes length huge */
    assert_int_equal(OS_EINVAL,
                     iface_encode(iface_msg(&t5_iface, 1), &a, buf, sizeof buf, &len, hs, &nh));
    memset(&a, 0, sizeof a);
    assert_int_equal(OS_E2BIG, iface_encode(iface_msg(&t5_iface, 1), &a, buf, 10, &len, hs, &nh));
    t5_hh_t h = {OS_HANDLE_NONE, 1, 3};
    assert_int_equal(OS_EINVAL,
                     iface_encode(iface_msg(&t5_iface, 2), &h, buf, sizeof buf, &len, hs, &nh));
}

static void test_decode_event_checks_kind_and_type(void **state)
{
    echo_error_t e = {1, OS_EPROTO}, out;
    uint8_t buf[64];
    os_handle_t hs[OS_MSG_MAX_HANDLES];
    size_t len, nh;
    encode(&echo_iface, echo_msg_error, &e, buf, &len, hs, &nh);
    os_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = OS_EV_MESSAGE;
    ev.type = echo_msg_error;
    ev.data = buf;
    ev.len = len;
    assert_int_equal(0, echo_error_decode(&ev, &out));
    assert_int_equal(OS_EPROTO, out.status);
    ev.type = echo_msg_reply;
    assert_int_equal(OS_EPROTO, echo_error_decode(&ev, &out));
    ev.type = 99;
    assert_int_equal(OS_EPROTO, iface_decode_event(&echo_iface, 99, &ev, &out, sizeof out));
    ev.type = echo_msg_error;
    ev.kind = OS_EV_DEVICE;
    assert_int_equal(OS_EPROTO, echo_error_decode(&ev, &out));
}

static void test_labels(void **state)
{
    char b[32];
    assert_string_equal("init.new_client", iface_msg_label(&init_iface, 8, b, sizeof b));
    assert_string_equal("init.?77", iface_msg_label(&init_iface, 77, b, sizeof b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_vectors),
        cmocka_unit_test(test_canonical_text_and_id),
        cmocka_unit_test(test_id_changes_with_the_definition),
        cmocka_unit_test(test_ids_of_the_image_are_unique),
        cmocka_unit_test(test_check_set_finds_collisions),
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_round_trip_every_image_message),
        cmocka_unit_test(test_every_truncation_and_extension_is_eproto),
        cmocka_unit_test(test_malformed_strings_and_handles),
        cmocka_unit_test(test_encode_refuses_bad_structs),
        cmocka_unit_test(test_decode_event_checks_kind_and_type),
        cmocka_unit_test(test_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
