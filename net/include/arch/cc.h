/* arch/cc.h — lwIP's platform header for Orrery: the C subset only, asserts go to a hook. */
#ifndef ORRERY_LWIP_ARCH_CC_H
#define ORRERY_LWIP_ARCH_CC_H

/* The subset Orrery's code may use (docs/architecture.md): stdint, stddef, limits, ctype and
 * string. No inttypes.h (the bare-metal libc has none) and no unistd.h. */
#define LWIP_NO_INTTYPES_H 1
#define LWIP_NO_UNISTD_H 1
#define X8_F "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "zu"

/* The stack's own errno values (no errno.h; no socket API uses them). */
#define LWIP_PROVIDE_ERRNO 1

/* BYTE_ORDER: lwIP's default, little-endian (x86_64). */

/* ssize_t: where limits.h names SSIZE_MAX (the host's libc) lwIP expects unistd.h to define
 * the type; we define it as that libc does (LP64) instead. The bare-metal limits.h has no
 * SSIZE_MAX, and lwIP then defines ssize_t itself. */
#include <limits.h>
#ifdef SSIZE_MAX
typedef long ssize_t;
#endif

/* netif_name_to_index() calls atoi, which the bare-metal C subset spells strtol. */
#include <stdlib.h>
#define atoi(s) ((int)strtol((s), NULL, 10))

/* Defined by whoever links lwIP (the tcpip server; the unit suite's glue on the host). */
#include <stdint.h>
void orrery_lwip_assert(const char *msg, const char *file, int line) __attribute__((noreturn));
uint32_t orrery_lwip_rand(void);

#define LWIP_PLATFORM_ASSERT(x) orrery_lwip_assert((x), __FILE__, __LINE__)
/* No diagnostics: lwIP's debug messages stay off (LWIP_DEBUG undefined). */
#define LWIP_PLATFORM_DIAG(x)                                                                      \
    do {                                                                                           \
    } while (0)

#endif
