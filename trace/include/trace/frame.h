/* frame.h — binary framing of trace records for the bare-metal serial stream (freestanding). */
#ifndef TRACE_FRAME_H
#define TRACE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <hal/trace.h>

/*
 * One frame per record, all integers little-endian. Version 1 (COM2's):
 *
 *   off  size  field
 *   0    4     magic A5 5A 4F 54 ("\xA5\x5AOT")
 *   4    4     N = body length (TRACE_FRAME_FIXED + payload length)
 *   8    4     ~N (header check: a garbled length is rejected at once)
 *   12   N     body: seq u64, time_ns u64, arg u64, kind u32, task u32,
 *              chan u32, peer u32, type u32, result i32, len u32,
 *              nhandles u32, iface u32, reserved u32 (0), then len bytes
 *   12+N 4     CRC-32 (IEEE 802.3, as zlib's crc32) of bytes [4, 12+N)
 *
 * The body's len field must equal N - TRACE_FRAME_FIXED. A decoder that
 * meets anything else skips one byte and searches for the next magic, so it
 * resynchronizes after garbage and keeps every complete valid frame.
 */
#define TRACE_FRAME_MAGIC0 0xA5u
#define TRACE_FRAME_MAGIC1 0x5Au
#define TRACE_FRAME_MAGIC2 0x4Fu
#define TRACE_FRAME_MAGIC3 0x54u
#define TRACE_FRAME_HEAD 12u                /* magic, N, ~N */
#define TRACE_FRAME_FIXED 64u               /* body fields before the payload */
#define TRACE_FRAME_TAIL 4u                 /* CRC-32 */
#define TRACE_FRAME_MAX_PAYLOAD 65536u      /* larger payloads are truncated by the encoder */
#define TRACE_FRAME_OVERHEAD (TRACE_FRAME_HEAD + TRACE_FRAME_FIXED + TRACE_FRAME_TAIL)
#define TRACE_FRAME_MAX (TRACE_FRAME_OVERHEAD + TRACE_FRAME_MAX_PAYLOAD) /* also version 2's */

/*
 * Version 2 (the bulk channel's, hal-baremetal/virtio/console.c): the same record fields, a
 * check that costs a multiply per 8 bytes instead of a CRC's table look-ups (under TCG a memory
 * access costs ten times an arithmetic step), and everything in 8-byte words:
 *
 *   off  size  field
 *   0    4     magic A5 5A 4F 55 ("\xA5\x5AOU")
 *   4    4     N = TRACE_FRAME_FIXED + payload length (as version 1)
 *   8    4     ~N
 *   12   4     check: trace_frame_check2 of the little-endian 8-byte words at
 *              [4, 12) and [16, 16 + round8(N))
 *   16   64    the fixed fields, as version 1's body
 *   80   P     payload, then zeros up to a multiple of 8 bytes (covered by the check)
 *
 * A frame is 80 + round8(payload) bytes; a stream may mix both versions.
 */
#define TRACE_FRAME2_MAGIC3 0x55u
#define TRACE_FRAME2_HEAD 16u /* magic, N, ~N, check */

/* The version 2 check: a 64-bit multiply-xorshift chain over the words, then a final mix;
 * its low 32 bits. Every step is a bijection of the state, so a frame that differs from the
 * encoded one in one word always ends in another 64-bit state. */
#define TRACE_FRAME2_SEED 0x4f72726572793200ull
#define TRACE_FRAME2_MUL 0x9e3779b97f4a7c15ull
static inline uint64_t trace_frame2_step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * TRACE_FRAME2_MUL;
    return h ^ (h >> 32);
}
static inline uint32_t trace_frame2_final(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* Bytes the version 2 frame of rec takes. */
size_t trace_frame2_size(const hal_trace_rec_t *rec);

/* Encode rec as a version 2 frame into buf (any alignment). Returns its size, or 0 if cap is
 * too small. */
size_t trace_frame2_encode(const hal_trace_rec_t *rec, void *buf, size_t cap);

/* CRC-32 (reflected 0xEDB88320); start with crc = 0, feed pieces in order. */
uint32_t trace_crc32(uint32_t crc, const void *buf, size_t len);

/* Bytes the frame of rec takes (payload clamped to TRACE_FRAME_MAX_PAYLOAD). */
size_t trace_frame_size(const hal_trace_rec_t *rec);

/* Encode rec into buf. Returns the frame size, or 0 if cap is too small. */
size_t trace_frame_encode(const hal_trace_rec_t *rec, void *buf, size_t cap);

/*
 * Zero-copy variant for a serial writer: write `head` (TRACE_FRAME_HEAD +
 * TRACE_FRAME_FIXED bytes), then rec->data (payload_len bytes, as returned),
 * then `tail`. Returns payload_len.
 */
size_t trace_frame_encode_split(const hal_trace_rec_t *rec,
                                uint8_t head[TRACE_FRAME_HEAD + TRACE_FRAME_FIXED],
                                uint8_t tail[TRACE_FRAME_TAIL]);

/*
 * Parse one frame (either version) at the start of buf. Returns:
 *   > 0  a valid frame of that many bytes; *rec is filled and rec->data
 *        points into buf;
 *   0    buf holds a prefix of what may be a valid frame: need more bytes;
 *   < 0  no valid frame starts at buf[0] (bad magic, header, length or CRC).
 */
long trace_frame_parse(const void *buf, size_t len, hal_trace_rec_t *rec);

#endif
