/* string.c — memory and string functions of the bare-metal C subset. */
#include "bmlibc.h"

void *bm_memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    /* Word copies when both are aligned: the kernel copies 4 KiB messages. */
    if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
        for (; n >= 8; n -= 8, d += 8, s += 8)
            *(uint64_t *)(void *)d = *(const uint64_t *)(const void *)s;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *bm_memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (d == s || n == 0)
        return dst;
    if (d < s || d >= s + n)
        return bm_memcpy(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

void *bm_memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;

    if (((uintptr_t)d & 7) == 0 && n >= 8) {
        uint64_t w = (unsigned char)c * 0x0101010101010101ull;
        for (; n >= 8; n -= 8, d += 8)
            *(uint64_t *)(void *)d = w;
    }
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int bm_memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (; n; n--, x++, y++) {
        if (*x != *y)
            return *x < *y ? -1 : 1;
    }
    return 0;
}

void *bm_memchr(const void *s, int c, size_t n)
{
    const unsigned char *p = s;

    for (; n; n--, p++) {
        if (*p == (unsigned char)c)
            return (void *)p;
    }
    return NULL;
}

size_t bm_strlen(const char *s)
{
    const char *p = s;

    while (*p)
        p++;
    return (size_t)(p - s);
}

size_t bm_strnlen(const char *s, size_t max)
{
    size_t n = 0;

    while (n < max && s[n])
        n++;
    return n;
}

int bm_strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int bm_strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

char *bm_strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

char *bm_strrchr(const char *s, int c)
{
    const char *last = NULL;

    for (;; s++) {
        if (*s == (char)c)
            last = s;
        if (!*s)
            return (char *)last;
    }
}

char *bm_strstr(const char *hay, const char *needle)
{
    size_t n = bm_strlen(needle);

    if (n == 0)
        return (char *)hay;
    for (; *hay; hay++) {
        if (*hay == *needle && bm_strncmp(hay, needle, n) == 0)
            return (char *)hay;
    }
    return NULL;
}

char *bm_strcpy(char *dst, const char *src)
{
    char *d = dst;

    while ((*d++ = *src++))
        ;
    return dst;
}

char *bm_strncpy(char *dst, const char *src, size_t n)
{
    size_t i = 0;

    for (; i < n && src[i]; i++)
        dst[i] = src[i];
    for (; i < n; i++)
        dst[i] = '\0';
    return dst;
}

char *bm_strcat(char *dst, const char *src)
{
    bm_strcpy(dst + bm_strlen(dst), src);
    return dst;
}

BM_ALIAS(memcpy, bm_memcpy)
BM_ALIAS(memmove, bm_memmove)
BM_ALIAS(memset, bm_memset)
BM_ALIAS(memcmp, bm_memcmp)
BM_ALIAS(memchr, bm_memchr)
BM_ALIAS(strlen, bm_strlen)
BM_ALIAS(strnlen, bm_strnlen)
BM_ALIAS(strcmp, bm_strcmp)
BM_ALIAS(strncmp, bm_strncmp)
BM_ALIAS(strchr, bm_strchr)
BM_ALIAS(strrchr, bm_strrchr)
BM_ALIAS(strstr, bm_strstr)
BM_ALIAS(strcpy, bm_strcpy)
BM_ALIAS(strncpy, bm_strncpy)
BM_ALIAS(strcat, bm_strcat)
