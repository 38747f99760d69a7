/* all.h — every interface of the image, for iface_check, trace decoding and fuzzers. */
#ifndef IFACE_ALL_H
#define IFACE_ALL_H

#include <iface/console.h>
#include <iface/echo.h>
#include <iface/init.h>

/* NULL-terminated. A new interface is added here (and defined in servers/lib/ifaces.c). */
extern const iface_t *const iface_all[];

#endif
