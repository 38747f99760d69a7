/* format.c — snprintf/vsnprintf of the bare-metal C subset: integers, strings, characters,
 * pointers. */
#include "bmlibc.h"

typedef struct out {
    char *buf;   /* destination, may be NULL when size is 0 */
    size_t size; /* capacity including the terminating NUL */
    size_t len;  /* characters produced so far (may exceed size) */
} out_t;

static void put(out_t *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_n(out_t *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

enum {
    F_LEFT = 1,   /* '-' */
    F_ZERO = 2,   /* '0' */
    F_PLUS = 4,   /* '+' */
    F_SPACE = 8,  /* ' ' */
    F_ALT = 16,   /* '#' */
    F_UPPER = 32, /* %X */
    F_PTR = 64,   /* %p: always "0x" */
};

/* One integer conversion: sign or prefix, zero padding from precision or the
 * '0' flag, then width padding. */
static void put_int(out_t *o, unsigned long long v, int neg, unsigned base, int flags, int width,
                    int prec)
{
    const char *digits = (flags & F_UPPER) ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0;
    const char *prefix = "";
    int plen, zeros, pad;

    if (!(prec == 0 && v == 0)) {
        do {
            tmp[n++] = digits[v % base];
            v /= base;
        } while (v);
    }
    if (neg)
        prefix = "-";
    else if (flags & F_PLUS)
        prefix = "+";
    else if (flags & F_SPACE)
        prefix = " ";
    else if ((flags & F_PTR) ||
             ((flags & F_ALT) && base == 16 && n > 0 && !(n == 1 && tmp[0] == '0')))
        prefix = (flags & F_UPPER) ? "0X" : "0x";
    else if ((flags & F_ALT) && base == 8 && (n == 0 || tmp[n - 1] != '0'))
        prefix = "0";
    plen = (int)bm_strlen(prefix);
    zeros = prec > n ? prec - n : 0;
    if (prec < 0 && (flags & F_ZERO) && !(flags & F_LEFT) && width > plen + n)
        zeros = width - plen - n;
    pad = width - plen - zeros - n;
    if (!(flags & F_LEFT))
        put_n(o, ' ', pad);
    while (*prefix)
        put(o, *prefix++);
    put_n(o, '0', zeros);
    while (n)
        put(o, tmp[--n]);
    if (flags & F_LEFT)
        put_n(o, ' ', pad);
}

static void put_str(out_t *o, const char *s, int flags, int width, int prec)
{
    size_t n;
    int pad;

    if (!s)
        s = "(null)";
    n = prec >= 0 ? bm_strnlen(s, (size_t)prec) : bm_strlen(s);
    pad = width > (int)n ? width - (int)n : 0;
    if (!(flags & F_LEFT))
        put_n(o, ' ', pad);
    for (size_t i = 0; i < n; i++)
        put(o, s[i]);
    if (flags & F_LEFT)
        put_n(o, ' ', pad);
}

int bm_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    out_t o = {buf, size, 0};
    va_list args;

    va_copy(args, ap);
    while (*fmt) {
        int flags = 0, width = 0, prec = -1, lng = 0;
        unsigned long long v;
        int neg;

        if (*fmt != '%') {
            put(&o, *fmt++);
            continue;
        }
        fmt++;
        for (;; fmt++) {
            if (*fmt == '-')
                flags |= F_LEFT;
            else if (*fmt == '0')
                flags |= F_ZERO;
            else if (*fmt == '+')
                flags |= F_PLUS;
            else if (*fmt == ' ')
                flags |= F_SPACE;
            else if (*fmt == '#')
                flags |= F_ALT;
            else
                break;
        }
        if (*fmt == '*') {
            width = va_arg(args, int);
            if (width < 0) {
                flags |= F_LEFT;
                width = -width;
            }
            fmt++;
        } else {
            while (bm_isdigit(*fmt))
                width = width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') {
                prec = va_arg(args, int);
                fmt++;
            } else {
                while (bm_isdigit(*fmt))
                    prec = prec * 10 + (*fmt++ - '0');
            }
        }
        /* Length: -2 hh, -1 h, 0 int, 1 long, 2 long long; z, t, j are 64-bit here. */
        if (*fmt == 'h') {
            lng = -1;
            if (*++fmt == 'h') {
                lng = -2;
                fmt++;
            }
        } else if (*fmt == 'l') {
            lng = 1;
            if (*++fmt == 'l') {
                lng = 2;
                fmt++;
            }
        } else if (*fmt == 'z' || *fmt == 't' || *fmt == 'j') {
            lng = 2;
            fmt++;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            long long s;
            if (lng >= 2)
                s = va_arg(args, long long);
            else if (lng == 1)
                s = va_arg(args, long);
            else
                s = va_arg(args, int);
            if (lng == -1)
                s = (short)s;
            else if (lng == -2)
                s = (signed char)s;
            neg = s < 0;
            v = neg ? 0ull - (unsigned long long)s : (unsigned long long)s;
            put_int(&o, v, neg, 10, flags, width, prec);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            if (lng >= 2)
                v = va_arg(args, unsigned long long);
            else if (lng == 1)
                v = va_arg(args, unsigned long);
            else
                v = va_arg(args, unsigned int);
            if (lng == -1)
                v = (unsigned short)v;
            else if (lng == -2)
                v = (unsigned char)v;
            if (*fmt == 'X')
                flags |= F_UPPER;
            flags &= ~(F_PLUS | F_SPACE);
            put_int(&o, v, 0, *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16, flags, width, prec);
            break;
        case 'p':
            v = (uintptr_t)va_arg(args, void *);
            /* "0x0" for NULL (glibc prints "(nil)"). */
            put_int(&o, v, 0, 16, (flags & F_LEFT) | F_PTR, width, prec);
            break;
        case 's':
            put_str(&o, va_arg(args, const char *), flags, width, prec);
            break;
        case 'c': {
            char c = (char)va_arg(args, int);
            if (!(flags & F_LEFT))
                put_n(&o, ' ', width - 1);
            put(&o, c);
            if (flags & F_LEFT)
                put_n(&o, ' ', width - 1);
            break;
        }
        case '%':
            put(&o, '%');
            break;
        case '\0':
            fmt--; /* a lone '%' at the end: print nothing for it */
            break;
        default:
            /* Unknown conversion: print it as written, so the mistake shows. */
            put(&o, '%');
            put(&o, *fmt);
            break;
        }
        fmt++;
    }
    va_end(args);
    if (size > 0)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len > 0x7fffffff ? 0x7fffffff : (int)o.len;
}

int bm_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = bm_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

BM_ALIAS(vsnprintf, bm_vsnprintf)
BM_ALIAS(snprintf, bm_snprintf)
