/* outbuf.c — the bounded text appender of the decoders (outbuf.h). */
#include "outbuf.h"

#include <stdarg.h>
#include <stdio.h>

void trace_outbuf_put(trace_outbuf *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->len + 1 >= o->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}
