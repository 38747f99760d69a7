/* term_screen.h — a small terminal model for the line editor's tests and fuzzer: it plays the
 * bytes the editor writes and keeps the rows as text, the cursor, and what it did not expect. */
#ifndef ORRERY_TERM_SCREEN_H
#define ORRERY_TERM_SCREEN_H

#include <stdbool.h>
#include <stddef.h>

enum {
    TS_ROWS = 64,  /* rows kept (older ones scroll away) */
    TS_COLS = 256, /* widest terminal modelled */
};

typedef struct term_screen {
    unsigned cols;
    /* each cell holds one code point's UTF-8 bytes ("" is a blank) */
    char cell[TS_ROWS][TS_COLS][5];
    unsigned row, col; /* the cursor */
    bool overflow;     /* something was written past the last column */
    bool unknown;      /* a byte or sequence the editor should never send */
    unsigned bells;
} term_screen_t;

void ts_init(term_screen_t *ts, unsigned cols);
void ts_feed(term_screen_t *ts, const char *buf, size_t len);
/* Row r (0: the cursor's row, 1: the one above, ...) as text, trailing blanks cut. */
const char *ts_row(const term_screen_t *ts, unsigned r, char *buf, size_t len);

#endif
