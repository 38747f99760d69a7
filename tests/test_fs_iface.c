/* test_fs_iface.c — the fs interface's messages: limits of path and data, exact decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <iface/all.h>
#include <iface/fs.h>

static uint8_t g_buf[OS_MSG_MAX_DATA];

static void test_open_path_limit(void **state)
{
    (void)state;
    const iface_msg_t *m = iface_msg(&fs_iface, fs_msg_open);
    assert_non_null(m);
    static fs_open_t open, back;
    size_t len, nh;
    os_handle_t h[OS_MSG_MAX_HANDLES];
    open.req = 7;
    open.flags = FS_O_READ;
    memset(open.path, 'a', FS_PATH_MAX);
    open.path[FS_PATH_MAX] = '\0';
    assert_int_equal(iface_encode(m, &open, g_buf, sizeof g_buf, &len, h, &nh), 0);
    assert_int_equal(iface_decode(m, g_buf, len, h, nh, &back, sizeof back), 0);
    assert_int_equal(back.req, 7);
    assert_int_equal(strlen(back.path), FS_PATH_MAX);
    /* One byte short is malformed: decoding is exact. */
    assert_int_equal(iface_decode(m, g_buf, len - 1, h, nh, &back, sizeof back), OS_EPROTO);
}

static void test_data_and_dirents_fit_one_message(void **state)
{
    (void)state;
    static fs_data_t d, db;
    static fs_dirents_t e, eb;
    size_t len, nh;
    os_handle_t h[OS_MSG_MAX_HANDLES];
    d.req = 1;
    d.data_len = FS_DATA_MAX;
    memset(d.data, 0x5a, FS_DATA_MAX);
    const iface_msg_t *m = iface_msg(&fs_iface, fs_msg_data);
    assert_int_equal(iface_encode(m, &d, g_buf, sizeof g_buf, &len, h, &nh), 0);
    assert_true(len <= OS_MSG_MAX_DATA);
    assert_int_equal(iface_decode(m, g_buf, len, h, nh, &db, sizeof db), 0);
    assert_int_equal(db.data_len, FS_DATA_MAX);
    d.data_len = FS_DATA_MAX + 1;
    assert_int_equal(iface_encode(m, &d, g_buf, sizeof g_buf, &len, h, &nh), OS_EINVAL);
    e.req = 2;
    e.next = 99;
    e.count = 1;
    e.data_len = FS_DIRENTS_MAX;
    m = iface_msg(&fs_iface, fs_msg_dirents);
    assert_int_equal(iface_encode(m, &e, g_buf, sizeof g_buf, &len, h, &nh), 0);
    assert_int_equal(iface_decode(m, g_buf, len, h, nh, &eb, sizeof eb), 0);
    assert_int_equal(eb.next, 99);
    assert_int_equal(sizeof d.data, FS_DATA_MAX);
    assert_int_equal(sizeof e.data, FS_DIRENTS_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_path_limit),
        cmocka_unit_test(test_data_and_dirents_fit_one_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
