/* test_libc.c — the bare-metal C subset (formatting, allocator, strings, parsing, qsort) on the
 * host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <ctype.h>
#include <sys/types.h>

#include <cmocka.h>

#include "bmlibc.h"

/* ---- formatting: each case against glibc's snprintf as the oracle ------------------------- */

#define SAME(...)                                                                                  \
    do {                                                                                           \
        char want[256], got[256];                                                                  \
        int wn = snprintf(want, sizeof(want), __VA_ARGS__);                                        \
        int gn = bm_snprintf(got, sizeof(got), __VA_ARGS__);                                       \
        assert_string_equal(want, got);                                                            \
        assert_int_equal(wn, gn);                                                                  \
    } while (0)

static void test_format_integers(void **state)
{
    SAME("%d %i %u", 42, -17, 3000000000u);
    SAME("%d %d", INT_MIN, INT_MAX);
    SAME("%ld %lu %lx", LONG_MIN, ULONG_MAX, 0xdeadbeefcafeUL);
    SAME("%lld %llu %llX", LLONG_MIN, ULLONG_MAX, 0xabcdefULL);
    SAME("%zu %zx %zd", (size_t)123456789, (size_t)0xffff, (ssize_t)-5);
    SAME("%hd %hu %hhd %hhu %hhx", (short)-2, (unsigned short)65535, (signed char)-128,
         (unsigned char)200, 0x1ff);
    SAME("%x %X %o", 0xabcdef, 0xabcdef, 8);
    SAME("%#x %#X %#o %#x", 255, 255, 8, 0);
    SAME("%+d % d %+d", 5, 5, -5);
}

static void test_format_width_precision(void **state)
{
    SAME("[%5d] [%-5d] [%05d]", 42, 42, 42);
    SAME("[%.3d] [%8.3d] [%-8.3d]", 7, 7, 7);
    SAME("[%.0d] [%.0x] [%5.0d]", 0, 0, 0);
    SAME("[%05d] [%5d] [%+05d]", -42, -42, 42);
    SAME("[%*d] [%-*d] [%.*d] [%*d]", 6, 1, 6, 1, 4, 1, -6, 1);
    SAME("[%08lx] [%016llx] [%-12zu]", 0x1234UL, 0xdeadULL, (size_t)99);
    SAME("[%#08x] [%#10o]", 0x2a, 8);
}

static void test_format_strings_chars(void **state)
{
    SAME("[%s] [%10s] [%-10s] [%.2s] [%8.3s]", "hello", "hi", "hi", "hello", "hello");
    SAME("[%c] [%3c] [%-3c] [%%]", 'x', 'y', 'z');
    SAME("%s/%s/%d", "a", "", 0);
    SAME("[%.*s]", 3, "abcdef");
    SAME("%p", (void *)0x1234);
}

static void test_format_pointer_null_and_unknown(void **state)
{
    char buf[64];

    /* NULL prints 0x0 (glibc prints "(nil)"): the kernel's fault messages rely on it. */
    bm_snprintf(buf, sizeof(buf), "%p", (void *)0);
    assert_string_equal("0x0", buf);
    const char *volatile nothing = NULL; /* hidden from -Wformat-overflow */
    bm_snprintf(buf, sizeof(buf), "%s", nothing);
    assert_string_equal("(null)", buf);
}

static void test_format_truncation(void **state)
{
    char buf[8];

    memset(buf, 'X', sizeof(buf));
    assert_int_equal(11, bm_snprintf(buf, sizeof(buf), "hello %s", "world"));
    assert_string_equal("hello w", buf);
    assert_int_equal(5, bm_snprintf(NULL, 0, "%d", -1234));
    memset(buf, 'X', sizeof(buf));
    assert_int_equal(3, bm_snprintf(buf, 1, "abc"));
    assert_int_equal('\0', buf[0]);
    assert_int_equal('X', buf[1]);
}

static int vformat(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = bm_vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r;
}

static void test_vsnprintf(void **state)
{
    char buf[32];

    assert_int_equal(10, vformat(buf, sizeof(buf), "%s=%03u", "answer", 42));
    assert_string_equal("answer=042", buf);
}

/* ---- strings ----------------------------------------------------------------------------- */

static void test_strings(void **state)
{
    char a[32] = "hello", b[32];
    const char *s = "the quick brown fox";

    assert_int_equal(5, bm_strlen(a));
    assert_int_equal(3, bm_strnlen(a, 3));
    assert_int_equal(5, bm_strnlen(a, 99));
    assert_true(bm_strcmp("abc", "abd") < 0);
    assert_true(bm_strcmp("abd", "abc") > 0);
    assert_int_equal(0, bm_strcmp("abc", "abc"));
    assert_true(bm_strcmp("ab", "abc") < 0);
    assert_true(bm_strcmp("\xff", "a") > 0); /* compared as unsigned char */
    assert_int_equal(0, bm_strncmp("abcX", "abcY", 3));
    assert_ptr_equal(s + 4, bm_strchr(s, 'q'));
    assert_ptr_equal(s + strlen(s), bm_strchr(s, '\0'));
    assert_null(bm_strchr(s, 'z'));
    assert_ptr_equal(s + 17, bm_strrchr(s, 'o'));
    assert_ptr_equal(s + 10, bm_strstr(s, "brown"));
    assert_ptr_equal(s, bm_strstr(s, ""));
    assert_null(bm_strstr(s, "cat"));
    bm_strcpy(b, "ab");
    bm_strcat(b, "cd");
    assert_string_equal("abcd", b);
    memset(b, 'X', sizeof(b));
    bm_strncpy(b, "xy", 5);
    assert_memory_equal("xy\0\0\0X", b, 6);
}

static void test_memory(void **state)
{
    unsigned char buf[64], ref[64];

    for (int i = 0; i < 64; i++)
        buf[i] = ref[i] = (unsigned char)i;
    bm_memmove(buf + 3, buf, 40); /* overlapping, forwards */
    memmove(ref + 3, ref, 40);
    assert_memory_equal(ref, buf, 64);
    bm_memmove(buf, buf + 5, 40); /* overlapping, backwards */
    memmove(ref, ref + 5, 40);
    assert_memory_equal(ref, buf, 64);
    bm_memset(buf + 1, 0xab, 33); /* unaligned start, word body */
    memset(ref + 1, 0xab, 33);
    assert_memory_equal(ref, buf, 64);
    bm_memcpy(buf + 8, "0123456789abcdefXYZ", 19);
    memcpy(ref + 8, "0123456789abcdefXYZ", 19);
    assert_memory_equal(ref, buf, 64);
    assert_int_equal(0, bm_memcmp(buf, ref, 64));
    buf[10] = 0xff;
    assert_true(bm_memcmp(buf, ref, 64) > 0);
    assert_ptr_equal(buf + 10, bm_memchr(buf, 0xff, 64));
    assert_null(bm_memchr(buf, 0xff, 10));
}

/* ---- parsing, ctype, qsort ---------------------------------------------------------------- */

static void test_strtol_family(void **state)
{
    const char *cases[] = {"0",
                           "42",
                           "-42",
                           "  +17xyz",
                           "0x1fz",
                           "0755",
                           "9223372036854775807",
                           "9223372036854775808",
                           "-9223372036854775808",
                           "-9223372036854775809",
                           "18446744073709551615",
                           "18446744073709551616",
                           "",
                           "-",
                           "0x",
                           "zz"};
    int bases[] = {0, 10, 16, 8, 36};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t k = 0; k < sizeof(bases) / sizeof(bases[0]); k++) {
            char *we, *ge;
            long wl = strtol(cases[i], &we, bases[k]);
            long gl = bm_strtol(cases[i], &ge, bases[k]);
            assert_int_equal(wl, gl);
            assert_ptr_equal(we, ge);
            unsigned long wu = strtoul(cases[i], &we, bases[k]);
            unsigned long gu = bm_strtoul(cases[i], &ge, bases[k]);
            assert_int_equal(wu, gu);
            assert_ptr_equal(we, ge);
            unsigned long long wq = strtoull(cases[i], &we, bases[k]);
            unsigned long long gq = bm_strtoull(cases[i], &ge, bases[k]);
            assert_int_equal(wq, gq);
            assert_ptr_equal(we, ge);
        }
    }
    assert_int_equal(5, bm_abs(-5));
    assert_int_equal(5, bm_abs(5));
}

static void test_ctype(void **state)
{
    for (int c = -1; c < 256; c++) {
        int in = c >= 0 && c < 128; /* the C locale: ASCII only */
        if (!in)
            continue;
        assert_int_equal(!!isspace(c), !!bm_isspace(c));
        assert_int_equal(!!isdigit(c), !!bm_isdigit(c));
        assert_int_equal(!!isalpha(c), !!bm_isalpha(c));
        assert_int_equal(!!isalnum(c), !!bm_isalnum(c));
        assert_int_equal(!!isprint(c), !!bm_isprint(c));
        assert_int_equal(!!isxdigit(c), !!bm_isxdigit(c));
        assert_int_equal(!!isupper(c), !!bm_isupper(c));
        assert_int_equal(!!islower(c), !!bm_islower(c));
        assert_int_equal(tolower(c), bm_tolower(c));
        assert_int_equal(toupper(c), bm_toupper(c));
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

typedef struct rec {
    char name[13];
    int key;
} rec_t;

static int cmp_rec(const void *a, const void *b)
{
    return cmp_int(&((const rec_t *)a)->key, &((const rec_t *)b)->key);
}

static void test_qsort(void **state)
{
    int v[1000], w[1000];
    rec_t r[50];
    unsigned seed = 12345;

    for (int n = 0; n <= 1000; n = n ? n * 3 : 1) {
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            v[i] = w[i] = (int)(seed >> 16) % 100 - 50; /* many duplicates */
        }
        bm_qsort(v, (size_t)n, sizeof(int), cmp_int);
        qsort(w, (size_t)n, sizeof(int), cmp_int);
        assert_memory_equal(w, v, (size_t)n * sizeof(int));
    }
    for (int i = 0; i < 50; i++) {
        r[i].key = 49 - i;
        snprintf(r[i].name, sizeof(r[i].name), "n%d", 49 - i);
    }
    bm_qsort(r, 50, sizeof(rec_t), cmp_rec); /* odd element size */
    for (int i = 0; i < 50; i++) {
        char want[13];
        snprintf(want, sizeof(want), "n%d", i);
        assert_int_equal(i, r[i].key);
        assert_string_equal(want, r[i].name);
    }
}

/* ---- allocator ----------------------------------------------------------------------------- */

static unsigned char arena[1 << 20] __attribute__((aligned(16)));

static int heap_setup(void **state)
{
    bm_heap_init(arena, sizeof(arena));
    return 0;
}

static void test_heap_basic(void **state)
{
    bm_heap_stats_t st;
    char *a = bm_malloc(10), *b = bm_malloc(100), *c = bm_calloc(20, 30);

    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(0, (uintptr_t)a % 16);
    assert_int_equal(0, (uintptr_t)b % 16);
    assert_int_equal(0, (uintptr_t)c % 16);
    for (int i = 0; i < 600; i++)
        assert_int_equal(0, c[i]);
    memset(a, 1, 10);
    memset(b, 2, 100);
    memset(c, 3, 600);
    bm_heap_get_stats(&st);
    assert_int_equal(3, st.allocations);
    assert_int_equal(0, bm_heap_check());
    bm_free(b);
    bm_free(a);
    bm_free(c);
    bm_free(NULL);
    bm_heap_get_stats(&st);
    assert_int_equal(0, st.allocations);
    assert_int_equal(0, st.used);
    /* Everything merged back into one chunk. */
    assert_int_equal(st.total, st.largest);
    assert_int_equal(0, bm_heap_check());
}

static void test_heap_realloc(void **state)
{
    unsigned char *p = bm_malloc(16), *q;

    for (int i = 0; i < 16; i++)
        p[i] = (unsigned char)i;
    p = bm_realloc(p, 4000); /* grows in place: nothing follows it */
    assert_non_null(p);
    for (int i = 0; i < 16; i++)
        assert_int_equal(i, p[i]);
    q = bm_malloc(32); /* now p cannot grow in place */
    memset(p, 7, 4000);
    p = bm_realloc(p, 9000);
    assert_non_null(p);
    for (int i = 0; i < 4000; i++)
        assert_int_equal(7, p[i]);
    p = bm_realloc(p, 8); /* shrink */
    assert_int_equal(7, p[7]);
    assert_int_equal(0, bm_heap_check());
    assert_null(bm_realloc(p, 0)); /* frees */
    bm_free(q);
    p = bm_realloc(NULL, 50); /* as malloc */
    assert_non_null(p);
    bm_free(p);
    bm_heap_stats_t st;
    bm_heap_get_stats(&st);
    assert_int_equal(0, st.allocations);
    assert_int_equal(st.total, st.largest);
}

static void test_heap_exhaustion_and_overflow(void **state)
{
    void *blocks[4096];
    int n = 0;

    assert_null(bm_malloc(sizeof(arena)));
    assert_null(bm_malloc((size_t)-1));
    assert_null(bm_calloc((size_t)1 << 40, (size_t)1 << 40)); /* n * size overflows */
    while (n < 4096 && (blocks[n] = bm_malloc(1000)) != NULL)
        n++;
    assert_true(n > 900 && n < 1100); /* 1 MiB in ~1 KiB chunks */
    assert_null(bm_malloc(1000));
    assert_int_equal(0, bm_heap_check());
    for (int i = 0; i < n; i += 2) /* free every other one: no merging possible */
        bm_free(blocks[i]);
    assert_int_equal(0, bm_heap_check());
    assert_null(bm_malloc(3000)); /* fragmented: no 3000-byte hole */
    for (int i = 1; i < n; i += 2)
        bm_free(blocks[i]);
    assert_non_null(blocks[0] = bm_malloc(500000));
    bm_free(blocks[0]);
    assert_int_equal(0, bm_heap_check());
}

static void test_heap_random_stress(void **state)
{
    enum { SLOTS = 256 };
    unsigned char *p[SLOTS] = {0};
    size_t sz[SLOTS] = {0};
    unsigned seed = 99;

    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)(seed >> 8) % SLOTS;
        size_t n = (seed >> 20) % 3000;
        if (p[i]) {
            /* Contents survived since the last write. */
            for (size_t k = 0; k < sz[i]; k++)
                assert_int_equal((unsigned char)(i + k), p[i][k]);
        }
        if (step % 3 == 0) {
            p[i] = bm_realloc(p[i], n + 1);
            sz[i] = sz[i] < n + 1 ? sz[i] : n + 1;
        } else if (p[i]) {
            bm_free(p[i]);
            p[i] = NULL;
            sz[i] = 0;
            continue;
        } else {
            p[i] = bm_malloc(n + 1);
            sz[i] = 0;
        }
        assert_non_null(p[i]);
        for (size_t k = sz[i]; k < n + 1; k++)
            p[i][k] = (unsigned char)(i + k);
        sz[i] = n + 1;
        if (step % 500 == 0)
            assert_int_equal(0, bm_heap_check());
    }
    for (int i = 0; i < SLOTS; i++)
        bm_free(p[i]);
    bm_heap_stats_t st;
    bm_heap_get_stats(&st);
    assert_int_equal(0, st.allocations);
    assert_int_equal(st.total, st.largest);
    assert_int_equal(0, bm_heap_check());
}

static unsigned char big_arena[8 << 20] __attribute__((aligned(16)));

static void test_heap_grows_into_its_region(void **state)
{
    bm_heap_stats_t st;
    void *blocks[200];
    int n = 0;

    bm_heap_init(big_arena, sizeof(big_arena));
    bm_heap_get_stats(&st);
    assert_true(st.total <= (1u << 20)); /* starts small: RAM is touched as it is used */
    void *a = bm_malloc(100), *big = bm_malloc(3u << 20);
    assert_non_null(a);
    assert_non_null(big);
    bm_heap_get_stats(&st);
    assert_true(st.total >= (3u << 20));
    assert_int_equal(0, bm_heap_check());
    bm_free(big);
    bm_free(a);
    bm_heap_get_stats(&st);
    assert_int_equal(st.total, st.largest); /* the grown part merged with the rest */
    while (n < 200 && (blocks[n] = bm_malloc(100000)) != NULL)
        n++;
    assert_true(n > 75 && n < 84); /* all 8 MiB, and no more */
    bm_heap_get_stats(&st);
    assert_true(st.total > (8u << 20) - (1u << 17));
    assert_int_equal(0, bm_heap_check());
    while (n > 0)
        bm_free(blocks[--n]);
    bm_heap_get_stats(&st);
    assert_int_equal(0, st.allocations);
    assert_int_equal(st.total, st.largest);
}

static void test_heap_double_free_is_ignored(void **state)
{
    void *a = bm_malloc(64), *b = bm_malloc(64);

    bm_free(a);
    bm_free(a); /* a bug in the caller; the heap stays sound */
    assert_int_equal(0, bm_heap_check());
    bm_free(b);
    bm_heap_stats_t st;
    bm_heap_get_stats(&st);
    assert_int_equal(0, st.allocations);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_integers),
        cmocka_unit_test(test_format_width_precision),
        cmocka_unit_test(test_format_strings_chars),
        cmocka_unit_test(test_format_pointer_null_and_unknown),
        cmocka_unit_test(test_format_truncation),
        cmocka_unit_test(test_vsnprintf),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_strtol_family),
        cmocka_unit_test(test_ctype),
        cmocka_unit_test(test_qsort),
        cmocka_unit_test_setup(test_heap_basic, heap_setup),
        cmocka_unit_test_setup(test_heap_realloc, heap_setup),
        cmocka_unit_test_setup(test_heap_exhaustion_and_overflow, heap_setup),
        cmocka_unit_test_setup(test_heap_random_stress, heap_setup),
        cmocka_unit_test_setup(test_heap_double_free_is_ignored, heap_setup),
        cmocka_unit_test(test_heap_grows_into_its_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
