/* stdlib.c — number parsing, abs and qsort of the bare-metal C subset (allocation is heap.c). */
#include <limits.h>

#include "bmlibc.h"

static int digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return 99;
}

/*
 * The common parser: skips space, reads a sign and a base prefix, saturates at
 * `limit` (for the magnitude). *neg receives the sign; *end the first unparsed
 * character (s itself when no digit was read). No errno: callers in Orrery
 * check the end pointer.
 */
static unsigned long long parse(const char *s, char **end, int base, unsigned long long limit,
                                int *neg, int *overflow)
{
    const char *p = s;
    unsigned long long v = 0;
    int any = 0, over = 0;

    *neg = 0;
    *overflow = 0;
    while (bm_isspace(*p))
        p++;
    if (*p == '+' || *p == '-')
        *neg = *p++ == '-';
    if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        digit_value(p[2]) < 16) {
        p += 2;
        base = 16;
    } else if (base == 0) {
        base = p[0] == '0' ? 8 : 10;
    }
    if (base < 2 || base > 36) {
        if (end)
            *end = (char *)s;
        return 0;
    }
    for (;; p++) {
        int d = digit_value(*p);
        if (d >= base)
            break;
        any = 1;
        if (over || v > (limit - (unsigned)d) / (unsigned)base) {
            over = 1;
            continue;
        }
        v = v * (unsigned)base + (unsigned)d;
    }
    if (end)
        *end = (char *)(any ? p : s);
    *overflow = over;
    return over ? limit : v;
}

long bm_strtol(const char *s, char **end, int base)
{
    int neg, over;
    unsigned long long v = parse(s, end, base, (unsigned long long)LONG_MAX + 1, &neg, &over);

    if (neg)
        return v > (unsigned long long)LONG_MAX ? LONG_MIN : -(long)v;
    return v > (unsigned long long)LONG_MAX ? LONG_MAX : (long)v;
}

unsigned long bm_strtoul(const char *s, char **end, int base)
{
    int neg, over;
    unsigned long long v = parse(s, end, base, ULONG_MAX, &neg, &over);

    if (over)
        return ULONG_MAX; /* also for a negative number: like glibc */
    return neg ? -(unsigned long)v : (unsigned long)v;
}

unsigned long long bm_strtoull(const char *s, char **end, int base)
{
    int neg, over;
    unsigned long long v = parse(s, end, base, ULLONG_MAX, &neg, &over);

    if (over)
        return ULLONG_MAX;
    return neg ? -v : v;
}

int bm_abs(int x)
{
    return x < 0 ? -x : x;
}

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
    while (size--) {
        unsigned char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

static void sift_down(unsigned char *base, size_t root, size_t n, size_t size,
                      int (*cmp)(const void *, const void *))
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size) < 0)
            child++;
        if (cmp(base + root * size, base + child * size) >= 0)
            return;
        swap_bytes(base + root * size, base + child * size, size);
        root = child;
    }
}

/* Heapsort: O(n log n) in the worst case, no recursion, no extra memory. */
void bm_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    unsigned char *b = base;

    if (n < 2 || size == 0)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(b, i, n, size, cmp);
    for (size_t end = n - 1; end > 0; end--) {
        swap_bytes(b, b + end * size, size);
        sift_down(b, 0, end, size, cmp);
    }
}

BM_ALIAS(strtol, bm_strtol)
BM_ALIAS(strtoul, bm_strtoul)
BM_ALIAS(strtoull, bm_strtoull)
BM_ALIAS(abs, bm_abs)
BM_ALIAS(qsort, bm_qsort)
