/* fuzz_edit.c — libFuzzer target for the console's line editor (servers/console/edit.c):
 * keystroke bytes in, the line and the screen of a terminal model (fuzz/term_screen.c) checked
 * after every byte. */
#include <console_edit.h>

#include <stdlib.h>
#include <string.h>

#include "term_screen.h"

/*
 * Input: the first byte picks the width (EDIT_COLS_MIN..), the rest are keys. When the editor
 * asks for a completion, the next byte picks the answer (where the word starts and which of a
 * few candidate lists). A finished line goes into the history and a new one starts, as the
 * console does. Ctrl-Z is skipped: its hint is free text that a real terminal wraps, which the
 * model does not (the editor's own row never needs wrapping: that is checked).
 *
 * Checked every byte: the line is valid UTF-8 without control bytes, within EDIT_LINE_MAX, the
 * cursor on a code point; the model saw only the sequences the editor may send, nothing past
 * the last column; while a line is edited the row starts with the prompt and the cursor is
 * where the line's cursor is drawn.
 */
#define PROMPT "orrery> "

#define LIST(s)                                                                                    \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }
static const struct {
    const char *names; /* NUL-separated, as the shell answers */
    size_t len;
} lists[] = {
    LIST("shutdown\0"),
    LIST("spawn\0shell\0shutdown\0"),
    LIST("dir/\0dir/a\0dir/b\xc3\xa9\0"),
    LIST("x\x01y\0\xff\0"),
};

static void check(const edit_t *ed, const term_screen_t *ts, unsigned cols)
{
    size_t len;
    const char *line = edit_line(ed, &len);
    size_t pos = edit_cursor(ed);
    if (len > EDIT_LINE_MAX || pos > len || !edit_utf8_valid(line, len) ||
        !edit_utf8_valid(line, pos))
        abort();
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            abort();
    }
    if (ts->unknown || ts->overflow || ts->col >= cols)
        abort();
    if (ed->active && !ed->searching) {
        char row[TS_COLS * 4 + 1];
        ts_row(ts, 0, row, sizeof row);
        if (strncmp(row, PROMPT, strlen(PROMPT)) != 0)
            abort();
        /* the cursor: after the prompt, at the line's cursor within the visible window */
        size_t ccol = 0;
        for (size_t i = 0; i < pos; i++)
            ccol += ((unsigned char)line[i] & 0xC0) != 0x80;
        size_t avail = cols - strlen(PROMPT) - 1;
        size_t expect = strlen(PROMPT) + (ccol < avail ? ccol : avail - 1);
        if (ts->col != expect)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static edit_t ed;
    static term_screen_t ts;
    if (size == 0)
        return 0;
    unsigned cols = EDIT_COLS_MIN + 8 + data[0] % 120; /* the prompt fits, as in life */
    edit_init(&ed, cols);
    ts_init(&ts, cols);
    ts_feed(&ts, PROMPT, strlen(PROMPT));
    edit_begin(&ed, PROMPT, strlen(PROMPT));
    for (size_t i = 1; i < size; i++) {
        edit_result_t r = EDIT_MORE;
        if (data[i] != 0x1a)
            r = edit_feed(&ed, data[i]);
        if (r == EDIT_COMPLETE) {
            unsigned pick = i + 1 < size ? data[++i] : 0;
            size_t which = pick % (sizeof lists / sizeof lists[0]);
            edit_complete(&ed, (pick >> 2) % (edit_cursor(&ed) + 1), lists[which].names,
                          lists[which].len);
        }
        size_t n;
        const char *out = edit_take(&ed, &n);
        ts_feed(&ts, out, n);
        if (r == EDIT_LINE || r == EDIT_CANCEL || r == EDIT_EOF) {
            size_t len;
            const char *line = edit_line(&ed, &len);
            if (r == EDIT_LINE)
                edit_history_add(&ed, line, len);
            check(&ed, &ts, cols);
            ts_feed(&ts, PROMPT, strlen(PROMPT));
            edit_begin(&ed, PROMPT, strlen(PROMPT));
        }
        check(&ed, &ts, cols);
    }
    return 0;
}
