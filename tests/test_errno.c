/* test_errno.c — error names and messages come from the one OS_ERRNO_MAP list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <os/errno.h>

static void names_of_codes(void **state)
{
    assert_string_equal("OK", os_errname(0));
    assert_string_equal("EINVAL", os_errname(OS_EINVAL));
    assert_string_equal("EBADH", os_errname(OS_EBADH));
    assert_string_equal("EFULL", os_errname(OS_EFULL));
    assert_string_equal("ESTATE", os_errname(OS_ESTATE));
    assert_string_equal("E?", os_errname(-999));
    assert_string_equal("E?", os_errname(5));
}

static void messages_of_codes(void **state)
{
    assert_string_equal("queue full", os_strerror(OS_EFULL));
    assert_string_equal("bad or stale handle", os_strerror(OS_EBADH));
    assert_string_equal("peer closed", os_strerror(OS_EPEER));
    assert_string_equal("unknown error", os_strerror(-999));
}

/* Every code in the list has its own name and a message. */
static void every_code_is_named(void **state)
{
    int n = 0;
#define CHECK(name, value, msg)                                                                    \
    assert_string_equal(#name, os_errname(value));                                                 \
    assert_string_equal(msg, os_strerror(value));                                                  \
    assert_true((value) < 0);                                                                      \
    n++;
    OS_ERRNO_MAP(CHECK)
#undef CHECK
    assert_int_equal(26, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_of_codes),
        cmocka_unit_test(messages_of_codes),
        cmocka_unit_test(every_code_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
