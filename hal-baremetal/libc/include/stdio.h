/* stdio.h — formatted output into buffers (no FILE, no printf) for the bare-metal C subset. */
#ifndef BM_STDIO_H
#define BM_STDIO_H

#include <stdarg.h>
#include <stddef.h>

/* Conversions: d i u x X o p s c %, flags - 0 + space #, width and precision (also *),
 * length modifiers hh h l ll z t j. No floating point. */
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
