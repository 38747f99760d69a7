/* outbuf.h — a bounded text appender, shared by the decoders behind `trace show`. */
#ifndef TRACE_OUTBUF_H
#define TRACE_OUTBUF_H

#include <stddef.h>

/* p[0..cap) is the buffer; len bytes are used and p[len] is NUL. */
typedef struct trace_outbuf {
    char *p;
    size_t cap, len;
} trace_outbuf;

/* Append printf-style; what does not fit is cut (the text stays NUL-terminated). */
void trace_outbuf_put(trace_outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
