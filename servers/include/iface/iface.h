/* iface.h — interfaces defined once as X-macro lists: structs, descriptors, codec, computed ids. */
#ifndef IFACE_IFACE_H
#define IFACE_IFACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <os/os.h>

/*
 * An interface is one X-macro list of its messages. Each message is
 *     MSG(iface, name, number, (kind, field, max), ...)
 * with one to eight fields, kind one of u8 u16 u32 u64 i32 i64 str bytes handle,
 * and max the byte limit of a str or bytes field (0 for the others):
 *
 *     #define ECHO_MESSAGES(MSG)                                          \
 *         MSG(echo, request, 1, (u32, id, 0), (str, text, 1024))          \
 *         MSG(echo, reply, 2, (u32, id, 0), (str, text, 1024))
 *     IFACE_DECLARE(echo, ECHO_MESSAGES)      -- in the interface header
 *     IFACE_DEFINE(echo, ECHO_MESSAGES)       -- in exactly one .c file
 *
 * From that list come: a struct per message (echo_request_t), the message
 * numbers (echo_msg_request), typed senders and decoders
 * (echo_request_send, echo_request_decode), the descriptor echo_iface (names,
 * kinds, limits, offsets: for the generic codec, trace decoding and fuzzers)
 * and its canonical text "echo{1 request(u32 id;str text<=1024;)...}", whose
 * FNV-1a hash is the interface id (iface_id). Nobody types an id: the build
 * runs iface_gen (servers/tools), which hashes the canonical text of every
 * interface in ORRERY_IFACES (iface/all.h) into the generated header
 * iface_ids.h (IFACE_ID_<name>), and fails on a collision; IFACE_DEFINE takes
 * the id from there. A change to any message changes the id.
 *
 * Wire format of a message's data: its fields in order, integers little
 * endian at their width, str and bytes as a u16 length then the bytes (a str
 * holds no NUL), handles not in the data but in the message's handle list,
 * in field order. Decoding is exact: every byte accounted for, every limit
 * and the handle count checked, else OS_EPROTO.
 *
 * In the C struct a str field is char[max + 1] (NUL-terminated after decode),
 * a bytes field is uint8_t[max] plus uint32_t <field>_len, a handle field is
 * an os_handle_t.
 */

typedef enum iface_kind {
    IFACE_U8 = 1,
    IFACE_U16,
    IFACE_U32,
    IFACE_U64,
    IFACE_I32,
    IFACE_I64,
    IFACE_STR,
    IFACE_BYTES,
    IFACE_HANDLE,
} iface_kind_t;

typedef struct iface_field {
    const char *name;
    iface_kind_t kind;
    uint32_t max;      /* str, bytes: most bytes on the wire */
    size_t offset;     /* of the field in the message struct */
    size_t len_offset; /* bytes: of its uint32_t length; else 0 */
} iface_field_t;

typedef struct iface_msg {
    const char *name;
    uint32_t number; /* the channel message type */
    const iface_field_t *fields;
    size_t nfields;
    size_t size;     /* sizeof the C struct */
    size_t nhandles; /* handle fields */
    size_t wire_max; /* longest encoding */
} iface_msg_t;

typedef struct iface {
    const char *name;
    const char *text; /* canonical definition; its hash is the id */
    const iface_msg_t *msgs;
    size_t nmsgs;
    uint32_t id; /* iface_hash(text), computed at build time (iface_ids.h) */
} iface_t;

/* FNV-1a, 32 bits. */
uint32_t iface_hash(const char *text, size_t len);
/* The interface id: iface_hash of its canonical text, computed at build time. */
static inline uint32_t iface_id(const iface_t *iface)
{
    return iface->id;
}
/* The message numbered `number`, or NULL. */
const iface_msg_t *iface_msg(const iface_t *iface, uint32_t number);
/* Bytes an integer field takes on the wire (1, 2, 4 or 8); 0 for str, bytes and handle. */
size_t iface_int_width(iface_kind_t kind);

/* "echo.request", or "echo.?" for an unknown number (buf is filled and returned). */
const char *iface_msg_label(const iface_t *iface, uint32_t number, char *buf, size_t len);

/*
 * Encode the struct at msg (of message m) into buf; the handle fields go to
 * handles[] in field order. OS_E2BIG if buf is too small, OS_EINVAL if a
 * field is over its limit, a str has no NUL within max + 1 bytes, or a handle
 * field is OS_HANDLE_NONE.
 */
int iface_encode(const iface_msg_t *m, const void *msg, void *buf, size_t cap, size_t *len,
                 os_handle_t handles[OS_MSG_MAX_HANDLES], size_t *nhandles);

/*
 * Validate and decode message data into the struct at out (out_size bytes,
 * at least m->size; zeroed first). OS_EPROTO if the data is malformed in any
 * way (short, long, a length past its limit, NUL inside a str, wrong handle
 * count, a NONE handle). This is the validator every server runs before it
 * touches a message.
 */
int iface_decode(const iface_msg_t *m, const void *data, size_t len, const os_handle_t *handles,
                 size_t nhandles, void *out, size_t out_size);

/* Decode a MESSAGE event as message `number` of iface: OS_EPROTO if the event
 * is not that message or malformed. Carried handles stay in the event. */
int iface_decode_event(const iface_t *iface, uint32_t number, const os_event_t *ev, void *out,
                       size_t out_size);

/* Encode and send message `number` of iface on channel ch. The os_send errors,
 * or the iface_encode ones. */
int iface_send(os_ctx_t *ctx, os_handle_t ch, const iface_t *iface, uint32_t number,
               const void *msg);

/* Close the handles a rejected message carried (so a malformed message leaks nothing). */
void iface_discard(os_ctx_t *ctx, const os_event_t *ev);

/*
 * Check a set of interfaces: unique names, unique ids, unique message numbers
 * and names within each. 0, or -1 with the first problem in err.
 */
int iface_check_set(const iface_t *const *ifaces, size_t n, char *err, size_t errlen);

/* ---- the generator ---------------------------------------------------------------------- */

#define IFACE_CAT_(a, b) a##b
#define IFACE_CAT(a, b) IFACE_CAT_(a, b)
#define IFACE_UNPAREN(...) __VA_ARGS__
#define IFACE_CALL(f, ...) f(__VA_ARGS__)
#define IFACE_NARG_(_1, _2, _3, _4, _5, _6, _7, _8, n, ...) n
#define IFACE_NARG(...) IFACE_NARG_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)

/* IFACE_FOREACH(F, c, t1, t2, ...) -> F(c, t1) F(c, t2) ... (one to eight fields) */
#define IFACE_FOREACH(F, c, ...) IFACE_CAT(IFACE_FE_, IFACE_NARG(__VA_ARGS__))(F, c, __VA_ARGS__)
#define IFACE_FE_1(F, c, a) F(c, a)
#define IFACE_FE_2(F, c, a, ...) F(c, a) IFACE_FE_1(F, c, __VA_ARGS__)
#define IFACE_FE_3(F, c, a, ...) F(c, a) IFACE_FE_2(F, c, __VA_ARGS__)
#define IFACE_FE_4(F, c, a, ...) F(c, a) IFACE_FE_3(F, c, __VA_ARGS__)
#define IFACE_FE_5(F, c, a, ...) F(c, a) IFACE_FE_4(F, c, __VA_ARGS__)
#define IFACE_FE_6(F, c, a, ...) F(c, a) IFACE_FE_5(F, c, __VA_ARGS__)
#define IFACE_FE_7(F, c, a, ...) F(c, a) IFACE_FE_6(F, c, __VA_ARGS__)
#define IFACE_FE_8(F, c, a, ...) F(c, a) IFACE_FE_7(F, c, __VA_ARGS__)

/* Per kind: the C member, the descriptor kind, the length offset, the text, the
 * longest encoding and whether it is a handle. */
#define IFACE_CT_u8(n, max) uint8_t n;
#define IFACE_CT_u16(n, max) uint16_t n;
#define IFACE_CT_u32(n, max) uint32_t n;
#define IFACE_CT_u64(n, max) uint64_t n;
#define IFACE_CT_i32(n, max) int32_t n;
#define IFACE_CT_i64(n, max) int64_t n;
#define IFACE_CT_str(n, max) char n[(max) + 1];
#define IFACE_CT_bytes(n, max)                                                                     \
    uint32_t n##_len;                                                                              \
    uint8_t n[max];
#define IFACE_CT_handle(n, max) os_handle_t n;

#define IFACE_K_u8 IFACE_U8
#define IFACE_K_u16 IFACE_U16
#define IFACE_K_u32 IFACE_U32
#define IFACE_K_u64 IFACE_U64
#define IFACE_K_i32 IFACE_I32
#define IFACE_K_i64 IFACE_I64
#define IFACE_K_str IFACE_STR
#define IFACE_K_bytes IFACE_BYTES
#define IFACE_K_handle IFACE_HANDLE

#define IFACE_LO_u8(T, n) 0
#define IFACE_LO_u16(T, n) 0
#define IFACE_LO_u32(T, n) 0
#define IFACE_LO_u64(T, n) 0
#define IFACE_LO_i32(T, n) 0
#define IFACE_LO_i64(T, n) 0
#define IFACE_LO_str(T, n) 0
#define IFACE_LO_bytes(T, n) offsetof(T, n##_len)
#define IFACE_LO_handle(T, n) 0

#define IFACE_TX_u8(n, max) "u8 " #n ";"
#define IFACE_TX_u16(n, max) "u16 " #n ";"
#define IFACE_TX_u32(n, max) "u32 " #n ";"
#define IFACE_TX_u64(n, max) "u64 " #n ";"
#define IFACE_TX_i32(n, max) "i32 " #n ";"
#define IFACE_TX_i64(n, max) "i64 " #n ";"
#define IFACE_TX_str(n, max) "str " #n "<=" #max ";"
#define IFACE_TX_bytes(n, max) "bytes " #n "<=" #max ";"
#define IFACE_TX_handle(n, max) "handle " #n ";"

#define IFACE_WM_u8(max) +1
#define IFACE_WM_u16(max) +2
#define IFACE_WM_u32(max) +4
#define IFACE_WM_u64(max) +8
#define IFACE_WM_i32(max) +4
#define IFACE_WM_i64(max) +8
#define IFACE_WM_str(max) +2 + (max)
#define IFACE_WM_bytes(max) +2 + (max)
#define IFACE_WM_handle(max) +0

#define IFACE_IH_u8 +0
#define IFACE_IH_u16 +0
#define IFACE_IH_u32 +0
#define IFACE_IH_u64 +0
#define IFACE_IH_i32 +0
#define IFACE_IH_i64 +0
#define IFACE_IH_str +0
#define IFACE_IH_bytes +0
#define IFACE_IH_handle +1

/* field tuple (kind, name, max) helpers, c is the context (unused or the struct type) */
#define IFACE_MEMBER_(kind, n, max) IFACE_CT_##kind(n, max)
#define IFACE_G_MEMBER(c, t) IFACE_MEMBER_ t
#define IFACE_FIELD_(T, kind, n, max)                                                              \
    {#n, IFACE_K_##kind, (max), offsetof(T, n), IFACE_LO_##kind(T, n)},
#define IFACE_G_FIELD(T, t) IFACE_CALL(IFACE_FIELD_, T, IFACE_UNPAREN t)
#define IFACE_TEXT_(kind, n, max) IFACE_TX_##kind(n, max)
#define IFACE_G_TEXT(c, t) IFACE_TEXT_ t
#define IFACE_WMAX_(kind, n, max) IFACE_WM_##kind(max)
#define IFACE_G_WMAX(c, t) IFACE_WMAX_ t
#define IFACE_NH_(kind, n, max) IFACE_IH_##kind
#define IFACE_G_NH(c, t) IFACE_NH_ t

/* per message */
#define IFACE_G_STRUCT(i, n, num, ...)                                                             \
    typedef struct i##_##n {                                                                       \
        IFACE_FOREACH(IFACE_G_MEMBER, _, __VA_ARGS__)                                              \
    } i##_##n##_t;                                                                                 \
    _Static_assert((0 IFACE_FOREACH(IFACE_G_WMAX, _, __VA_ARGS__)) <= OS_MSG_MAX_DATA,             \
                   #i "." #n " may not fit in one message");                                       \
    _Static_assert((0 IFACE_FOREACH(IFACE_G_NH, _, __VA_ARGS__)) <= OS_MSG_MAX_HANDLES,            \
                   #i "." #n " carries too many handles");
#define IFACE_G_ENUM(i, n, num, ...) i##_msg_##n = (num),
#define IFACE_G_HELPERS(i, n, num, ...)                                                            \
    static inline int i##_##n##_send(os_ctx_t *ctx, os_handle_t ch, const i##_##n##_t *m)          \
    {                                                                                              \
        return iface_send(ctx, ch, &i##_iface, (num), m);                                          \
    }                                                                                              \
    static inline int i##_##n##_decode(const os_event_t *ev, i##_##n##_t *m)                       \
    {                                                                                              \
        return iface_decode_event(&i##_iface, (num), ev, m, sizeof *m);                            \
    }
#define IFACE_G_FIELDS(i, n, num, ...)                                                             \
    static const iface_field_t i##_##n##_fields[] = {                                              \
        IFACE_FOREACH(IFACE_G_FIELD, i##_##n##_t, __VA_ARGS__)};
#define IFACE_G_DESC(i, n, num, ...)                                                               \
    {#n,                                                                                           \
     (num),                                                                                        \
     i##_##n##_fields,                                                                             \
     sizeof i##_##n##_fields / sizeof i##_##n##_fields[0],                                         \
     sizeof(i##_##n##_t),                                                                          \
     (0 IFACE_FOREACH(IFACE_G_NH, _, __VA_ARGS__)),                                                \
     (0 IFACE_FOREACH(IFACE_G_WMAX, _, __VA_ARGS__))},
#define IFACE_G_CANON(i, n, num, ...)                                                              \
#num " " #n "(" IFACE_FOREACH(IFACE_G_TEXT, _, __VA_ARGS__) ")"

/* In the interface's header. */
#define IFACE_DECLARE(i, LIST)                                                                     \
    LIST(IFACE_G_STRUCT)                                                                           \
    enum i##_msg{LIST(IFACE_G_ENUM)};                                                              \
    extern const iface_t i##_iface;                                                                \
    LIST(IFACE_G_HELPERS)

/* In one .c file. */
/* The descriptor i_iface with the given id (iface_gen passes 0: it computes the ids). */
#define IFACE_DEFINE_AS(i, LIST, ID)                                                               \
    LIST(IFACE_G_FIELDS)                                                                           \
    static const iface_msg_t i##_msgs[] = {LIST(IFACE_G_DESC)};                                    \
    const iface_t i##_iface = {#i, #i "{" LIST(IFACE_G_CANON) "}", i##_msgs,                       \
                               sizeof i##_msgs / sizeof i##_msgs[0], (ID)};
/* The descriptor with its build-time id (include the generated iface_ids.h first). */
#define IFACE_DEFINE(i, LIST) IFACE_DEFINE_AS(i, LIST, IFACE_ID_##i)

#endif
