/* term_screen.c — the terminal model of term_screen.h: text, CR, LF, BEL, ESC[K, ESC[nC, ESC[H,
 * ESC[2J; anything else is marked unknown. */
#include "term_screen.h"

#include <string.h>

void ts_init(term_screen_t *ts, unsigned cols)
{
    memset(ts, 0, sizeof *ts);
    ts->cols = cols < TS_COLS ? cols : TS_COLS;
}

static void newline(term_screen_t *ts)
{
    ts->col = 0;
    if (ts->row + 1 < TS_ROWS) {
        ts->row++;
        return;
    }
    memmove(ts->cell[0], ts->cell[1], sizeof ts->cell[0] * (TS_ROWS - 1));
    memset(ts->cell[TS_ROWS - 1], 0, sizeof ts->cell[0]);
}

static size_t utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

void ts_feed(term_screen_t *ts, const char *buf, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\r') {
            ts->col = 0;
            i++;
        } else if (c == '\n') {
            newline(ts);
            i++;
        } else if (c == '\a') {
            ts->bells++;
            i++;
        } else if (c == 0x1b) {
            /* ESC [ digits final */
            size_t k = i + 1;
            unsigned n = 0;
            if (k >= len || buf[k] != '[') {
                ts->unknown = true;
                return;
            }
            k++;
            while (k < len && buf[k] >= '0' && buf[k] <= '9')
                n = n * 10 + (unsigned)(buf[k++] - '0');
            if (k >= len) {
                ts->unknown = true;
                return;
            }
            char f = buf[k++];
            if (f == 'K') {
                memset(ts->cell[ts->row][ts->col], 0, sizeof ts->cell[0][0] * (TS_COLS - ts->col));
            } else if (f == 'C') {
                ts->col += n ? n : 1;
                if (ts->col >= ts->cols) {
                    ts->overflow = true;
                    ts->col = ts->cols - 1;
                }
            } else if (f == 'H') {
                ts->row = ts->col = 0;
            } else if (f == 'J' && n == 2) {
                memset(ts->cell, 0, sizeof ts->cell);
            } else {
                ts->unknown = true;
            }
            i = k;
        } else if (c < 0x20 || c == 0x7f) {
            ts->unknown = true;
            i++;
        } else {
            size_t n = utf8_len(c);
            if (i + n > len)
                n = len - i;
            if (ts->col >= ts->cols) {
                ts->overflow = true;
            } else {
                memcpy(ts->cell[ts->row][ts->col], buf + i, n);
                ts->cell[ts->row][ts->col][n] = 0;
                ts->col++;
            }
            i += n;
        }
    }
}

const char *ts_row(const term_screen_t *ts, unsigned r, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    if (r > ts->row)
        return buf;
    unsigned row = ts->row - r, last = 0;
    for (unsigned c = 0; c < ts->cols; c++) {
        if (ts->cell[row][c][0])
            last = c + 1;
    }
    for (unsigned c = 0; c < last; c++) {
        const char *s = ts->cell[row][c][0] ? ts->cell[row][c] : " ";
        size_t n = strlen(s);
        if (at + n + 1 > len)
            break;
        memcpy(buf + at, s, n);
        at += n;
    }
    buf[at] = 0;
    return buf;
}
