/* blk.h — one line per blk0 device record for `trace show`: requests, completions, INFO. */
#ifndef TRACE_BLK_H
#define TRACE_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The name of a blk0 device code ("READ", "WRITE", "FLUSH", "INFO"), or NULL. */
const char *trace_blk_code_name(uint32_t code);

/*
 * Describe the payload of a blk0 device record (hal/codes.h: hal_blk_req_t, hal_blk_info_t)
 * into out, always NUL-terminated: what a task wrote (completion false: a DEV_WRITE record)
 * is a request, "id 7 sector 128 count 4" (a WRITE adds "+2048 bytes"); what the device posted
 * (completion true: DEV_POST, DEV_EVENT) is a completion, which adds "status OK" or the error's
 * name (a READ's sectors: "+2048 bytes"). INFO: "2048 sectors (1 MiB) read-write, max 7 a
 * request". The sector bytes are never printed. A payload shorter than its header or whose
 * length does not match its count says so in brackets. Every read is bounded by len.
 * Returns out.
 */
const char *trace_blk_describe(uint32_t code, bool completion, const void *data, size_t len,
                               char *out, size_t outlen);

#endif
