/* argwords.h — the words of a spawn argument `key=value,key=value` (kv, kvclient, tcpstream):
 * items, decimal numbers and IPv4 addresses, without a C library. */
#ifndef ARGWORDS_H
#define ARGWORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One `key=value` item of s[0..n) from *i on (items separated by ','); *i moves past it.
 * 1: an item (its value may be empty); 0: no more; -1: an item without '=' (key: the item). */
static inline int arg_item(const char *s, size_t n, size_t *i, const char **key, size_t *klen,
                           const char **val, size_t *vlen)
{
    if (*i >= n)
        return 0;
    size_t b = *i, e = b;
    while (e < n && s[e] != ',')
        e++;
    *i = e + 1;
    size_t eq = b;
    while (eq < e && s[eq] != '=')
        eq++;
    *key = s + b;
    *klen = eq - b;
    if (eq == e)
        return -1;
    *val = s + eq + 1;
    *vlen = e - eq - 1;
    return 1;
}

/* True if the key is the word w. */
static inline bool arg_is(const char *key, size_t klen, const char *w)
{
    size_t k = 0;
    while (k < klen && w[k] && key[k] == w[k])
        k++;
    return k == klen && w[k] == '\0';
}

/* A decimal number of at most 19 digits, in [min, max]. */
static inline bool arg_u64(const char *p, size_t n, uint64_t min, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[k] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A dotted IPv4 address, not 0.0.0.0, in host order (10.0.0.2 is 0x0a000002). */
static inline bool arg_ipv4(const char *p, size_t n, uint32_t *out)
{
    uint32_t a = 0;
    size_t k = 0;
    for (int part = 0; part < 4; part++) {
        size_t b = k;
        while (k < n && p[k] != '.')
            k++;
        uint64_t v;
        if (!arg_u64(p + b, k - b, 0, 255, &v) || k - b > 3 || (part < 3 && k >= n))
            return false;
        a = a << 8 | (uint32_t)v;
        k++;
    }
    if (k <= n || a == 0)
        return false; /* bytes after the fourth part, or no address */
    *out = a;
    return true;
}

#endif
