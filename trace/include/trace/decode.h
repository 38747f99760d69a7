/* decode.h — naming and decoding traced messages by interface definition (like fidlcat for FIDL). */
#ifndef TRACE_DECODE_H
#define TRACE_DECODE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The interfaces known to the decoder come from the image's descriptor
 * tables (servers/include/iface/all.h: iface_all, through trace/iface_table.c);
 * a payload no definition decodes is printed as hex.
 */

/* Name of the interface with this id, or NULL. */
const char *trace_iface_name(uint32_t id);
/* Id of the interface named name (or written as a number, decimal or 0x hex), or 0. */
uint32_t trace_iface_from_name(const char *name);

/* "echo.request" into buf (or "echo.?7", or "0x1234abcd.7" for an unknown interface). */
const char *trace_msg_label(uint32_t iface, uint32_t type, char *buf, size_t len);

/*
 * Decode a message payload field by field: `{id: 1, text: "hello"}`.
 * Returns 0 when decoded by definition; 1 when the interface or message is
 * unknown or the payload does not match its definition, in which case out
 * holds hex (with a note when malformed). out is always NUL-terminated.
 */
int trace_decode_payload(uint32_t iface, uint32_t type, const void *data, size_t len,
                         uint32_t nhandles, char *out, size_t outlen);

/*
 * For an untagged channel: the first known interface whose message `type`
 * decodes this payload exactly (with nhandles handles), or 0.
 */
uint32_t trace_guess_iface(uint32_t type, const void *data, size_t len, uint32_t nhandles);

/* Hex bytes (at most max of them, then "..."), with printable ASCII after. */
void trace_hex(const void *data, size_t len, size_t max, char *out, size_t outlen);

#endif
