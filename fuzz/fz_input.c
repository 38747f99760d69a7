/* fz_input.c — interface messages filled from fuzz input (fz_input.h). */
#include "fz_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fz_fill_message(os_ctx_t *ctx, const iface_msg_t *m, fz_in_t *in, uint8_t *msg,
                     os_handle_t keep[OS_MSG_MAX_HANDLES], size_t *nkeep,
                     void (*int_hook)(const iface_field_t *f, uint8_t *at, size_t width))
{
    *nkeep = 0;
    memset(msg, 0, m->size);
    for (size_t i = 0; i < m->nfields; i++) {
        const iface_field_t *f = &m->fields[i];
        uint8_t *at = msg + f->offset;
        switch (f->kind) {
        case IFACE_U8:
        case IFACE_U16:
        case IFACE_U32:
        case IFACE_U64:
        case IFACE_I32:
        case IFACE_I64: {
            size_t w = iface_int_width(f->kind);
            for (size_t k = 0; k < w; k++)
                at[k] = fz_byte(in);
            if (int_hook)
                int_hook(f, at, w);
            break;
        }
        case IFACE_STR:
        case IFACE_BYTES: {
            size_t len = fz_byte(in);
            if (len == 255)
                len = (size_t)fz_byte(in) * 16; /* now and then a long one */
            if (len > f->max)
                len = f->max;
            for (size_t k = 0; k < len; k++) {
                uint8_t c = fz_byte(in);
                at[k] = f->kind == IFACE_STR && c == 0 ? 'a' : c;
            }
            if (f->kind == IFACE_BYTES)
                memcpy(msg + f->len_offset, &(uint32_t){(uint32_t)len}, sizeof(uint32_t));
            break;
        }
        case IFACE_HANDLE: {
            os_handle_t a, b;
            if (*nkeep < OS_MSG_MAX_HANDLES && os_channel_create(ctx, &a, &b) == 0) {
                memcpy(at, &b, sizeof b);
                keep[(*nkeep)++] = a;
            }
            break;
        }
        }
    }
}

bool fz_fresh_each(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f;
        if (argv[i][0] != '-' && (f = fopen(argv[i], "rb")) != NULL) {
            bool file = fgetc(f) != EOF || !ferror(f);
            fclose(f);
            if (file)
                return true;
        }
    }
    return getenv("FUZZ_FRESH") != NULL;
}
