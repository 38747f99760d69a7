/* iface.c — the generic codec and validator behind every interface, and the id hash. */
#include <iface/iface.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

uint32_t iface_hash(const char *text, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)text[i];
        h *= 16777619u;
    }
    return h;
}

const iface_msg_t *iface_msg(const iface_t *iface, uint32_t number)
{
    for (size_t i = 0; i < iface->nmsgs; i++) {
        if (iface->msgs[i].number == number)
            return &iface->msgs[i];
    }
    return NULL;
}

const char *iface_msg_label(const iface_t *iface, uint32_t number, char *buf, size_t len)
{
    const iface_msg_t *m = iface_msg(iface, number);
    if (m)
        snprintf(buf, len, "%s.%s", iface->name, m->name);
    else
        snprintf(buf, len, "%s.?%u", iface->name, (unsigned)number);
    return buf;
}

size_t iface_int_width(iface_kind_t kind)
{
    switch (kind) {
    case IFACE_U8:
        return 1;
    case IFACE_U16:
        return 2;
    case IFACE_U32:
    case IFACE_I32:
        return 4;
    case IFACE_U64:
    case IFACE_I64:
        return 8;
    default:
        return 0;
    }
}

/* Integers live in the struct at their natural type; move them through a uint64_t. */
static uint64_t load_int(const uint8_t *p, iface_kind_t kind)
{
    switch (kind) {
    case IFACE_U8:
        return *p;
    case IFACE_U16: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case IFACE_U32:
    case IFACE_I32: {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    }
}

static void store_int(uint8_t *p, iface_kind_t kind, uint64_t v)
{
    switch (kind) {
    case IFACE_U8:
        *p = (uint8_t)v;
        break;
    case IFACE_U16: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, sizeof x);
        break;
    }
    case IFACE_U32:
    case IFACE_I32: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, sizeof x);
        break;
    }
    default:
        memcpy(p, &v, sizeof v);
        break;
    }
}

int iface_encode(const iface_msg_t *m, const void *msg, void *buf, size_t cap, size_t *len,
                 os_handle_t handles[OS_MSG_MAX_HANDLES], size_t *nhandles)
{
    const uint8_t *src = msg;
    uint8_t *out = buf;
    size_t at = 0, nh = 0;

    for (size_t i = 0; i < m->nfields; i++) {
        const iface_field_t *f = &m->fields[i];
        const uint8_t *p = src + f->offset;
        size_t w = iface_int_width(f->kind);
        if (w) {
            if (cap - at < w)
                return OS_E2BIG;
            uint64_t v = load_int(p, f->kind);
            for (size_t b = 0; b < w; b++)
                out[at++] = (uint8_t)(v >> (8 * b));
            continue;
        }
        if (f->kind == IFACE_HANDLE) {
            os_handle_t h;
            memcpy(&h, p, sizeof h);
            if (h == OS_HANDLE_NONE || nh == OS_MSG_MAX_HANDLES)
                return OS_EINVAL;
            handles[nh++] = h;
            continue;
        }
        size_t n;
        if (f->kind == IFACE_STR) {
            n = strnlen((const char *)p, (size_t)f->max + 1);
            if (n > f->max)
                return OS_EINVAL;
        } else {
            uint32_t l;
            memcpy(&l, src + f->len_offset, sizeof l);
            if (l > f->max)
                return OS_EINVAL;
            n = l;
        }
        if (cap - at < 2 + n)
            return OS_E2BIG;
        out[at++] = (uint8_t)n;
        out[at++] = (uint8_t)(n >> 8);
        memcpy(out + at, p, n);
        at += n;
    }
    *len = at;
    *nhandles = nh;
    return 0;
}

int iface_decode(const iface_msg_t *m, const void *data, size_t len, const os_handle_t *handles,
                 size_t nhandles, void *out, size_t out_size)
{
    const uint8_t *in = data;
    uint8_t *dst = out;
    size_t at = 0, nh = 0;

    if (out_size < m->size || nhandles != m->nhandles || (len > 0 && !data))
        return OS_EPROTO;
    memset(out, 0, m->size);
    for (size_t i = 0; i < m->nfields; i++) {
        const iface_field_t *f = &m->fields[i];
        uint8_t *p = dst + f->offset;
        size_t w = iface_int_width(f->kind);
        if (w) {
            if (len - at < w)
                return OS_EPROTO;
            uint64_t v = 0;
            for (size_t b = 0; b < w; b++)
                v |= (uint64_t)in[at++] << (8 * b);
            store_int(p, f->kind, v);
            continue;
        }
        if (f->kind == IFACE_HANDLE) {
            if (handles[nh] == OS_HANDLE_NONE)
                return OS_EPROTO;
            memcpy(p, &handles[nh], sizeof handles[nh]);
            nh++;
            continue;
        }
        if (len - at < 2)
            return OS_EPROTO;
        size_t n = (size_t)in[at] | (size_t)in[at + 1] << 8;
        at += 2;
        if (n > f->max || len - at < n)
            return OS_EPROTO;
        if (f->kind == IFACE_STR) {
            if (memchr(in + at, 0, n))
                return OS_EPROTO;
            memcpy(p, in + at, n);
            p[n] = 0;
        } else {
            uint32_t l = (uint32_t)n;
            memcpy(p, in + at, n);
            memcpy(dst + f->len_offset, &l, sizeof l);
        }
        at += n;
    }
    return at == len ? 0 : OS_EPROTO;
}

int iface_decode_event(const iface_t *iface, uint32_t number, const os_event_t *ev, void *out,
                       size_t out_size)
{
    if (ev->kind != OS_EV_MESSAGE || ev->type != number)
        return OS_EPROTO;
    const iface_msg_t *m = iface_msg(iface, number);
    if (!m)
        return OS_EPROTO;
    return iface_decode(m, ev->data, ev->len, ev->handles, ev->nhandles, out, out_size);
}

int iface_check_set(const iface_t *const *ifaces, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const iface_t *a = ifaces[i];
        for (size_t j = 0; j < a->nmsgs; j++) {
            for (size_t k = j + 1; k < a->nmsgs; k++) {
                if (a->msgs[j].number == a->msgs[k].number) {
                    snprintf(err, errlen, "%s: messages %s and %s share number %u", a->name,
                             a->msgs[j].name, a->msgs[k].name, (unsigned)a->msgs[j].number);
                    return -1;
                }
                if (strcmp(a->msgs[j].name, a->msgs[k].name) == 0) {
                    snprintf(err, errlen, "%s: message %s defined twice", a->name, a->msgs[j].name);
                    return -1;
                }
            }
        }
        for (size_t j = i + 1; j < n; j++) {
            const iface_t *b = ifaces[j];
            if (strcmp(a->name, b->name) == 0) {
                snprintf(err, errlen, "interface %s defined twice", a->name);
                return -1;
            }
            uint32_t ha = iface_hash(a->text, strlen(a->text));
            if (ha == iface_hash(b->text, strlen(b->text))) {
                snprintf(err, errlen, "interfaces %s and %s have the same id %08x", a->name,
                         b->name, (unsigned)ha);
                return -1;
            }
        }
    }
    return 0;
}
