/* fz_input.h — what every server fuzz target reads: input bytes, and interface messages built
 * from them. */
#ifndef FUZZ_FZ_INPUT_H
#define FUZZ_FZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <iface/iface.h>

/* The input, read a byte at a time (0 once it runs out). */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in_t;

static inline uint8_t fz_byte(fz_in_t *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/*
 * Fill the struct of message m (msg, at least m->size bytes; zeroed first) from the input:
 * integers byte by byte, str and bytes fields with a length byte (255: a long one) then their
 * bytes (a NUL in a str becomes 'a'), and for each handle field a new channel whose far end is
 * the field and whose near end goes to keep[*nkeep] (the caller closes those after the send, so
 * the server sees their peer close). int_hook, if not NULL, may rewrite an integer field once it
 * is filled (fuzz_tcpip steers addresses to its link).
 */
void fz_fill_message(os_ctx_t *ctx, const iface_msg_t *m, fz_in_t *in, uint8_t *msg,
                     os_handle_t keep[OS_MSG_MAX_HANDLES], size_t *nkeep,
                     void (*int_hook)(const iface_field_t *f, uint8_t *at, size_t width));

/*
 * A reproducer run, whose every input boots afresh instead of running on the booted image
 * (persistent mode, docs/fuzzing.md): a file among libFuzzer's arguments (a directory opens but
 * does not read: a corpus, not a reproducer), or FUZZ_FRESH in the environment.
 */
bool fz_fresh_each(int argc, char **argv);

#endif
