/* console_edit.h — the console's line editor: keystroke bytes in, terminal output bytes and
 * finished lines out. Pure (no os calls), so cmocka and the fuzzer drive it without a kernel. */
#ifndef ORRERY_CONSOLE_EDIT_H
#define ORRERY_CONSOLE_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One line is edited at a time, on one terminal row: a line wider than the terminal scrolls
 * sideways under the cursor (the prompt stays), so a redraw is always "\r", the row, "\x1b[K"
 * and a cursor move, whatever the terminal does at its right margin. Columns are counted in
 * UTF-8 code points (one column each); a code point is inserted, moved over and deleted whole.
 *
 * The prompt is what the client printed on the row before it asked for a line (the console
 * watches its output); the editor only redraws it. History is kept here, bounded
 * (EDIT_HISTORY_MAX lines, oldest dropped), for Up/Down, Ctrl-R and the shell's `history`.
 */
enum {
    EDIT_LINE_MAX = 1024,   /* bytes of a line (CONSOLE_LINE_MAX) */
    EDIT_PROMPT_MAX = 80,   /* bytes of the prompt kept for redraws (a longer one is cut) */
    EDIT_HISTORY_MAX = 64,  /* lines remembered */
    EDIT_OUT_MAX = 8192,    /* output bytes waiting for edit_take (a redraw fits many times) */
    EDIT_COLS_DEFAULT = 80, /* when the platform does not know the terminal's width */
    EDIT_COLS_MIN = 16,     /* narrower terminals are drawn as if this wide */
    EDIT_COLS_MAX = 1000,   /* wider ones as if this wide */
    EDIT_SEARCH_MAX = 64,   /* bytes of a Ctrl-R search string */
    EDIT_LIST_MAX = 200,    /* completion candidates shown on a second Tab */
    EDIT_TEXT_MIN = 12,     /* columns a long prompt leaves the line (its own cut) */
};

/* What a byte did. */
typedef enum edit_result {
    EDIT_MORE = 0, /* keep feeding */
    EDIT_LINE,     /* Enter: the line is in edit_line(); the next line starts with
                      edit_begin */
    EDIT_EOF,      /* Ctrl-D on an empty line: end of input */
    EDIT_CANCEL,   /* Ctrl-C: the line was dropped ("^C" shown); start a new one */
    EDIT_COMPLETE, /* Tab: answer with edit_complete (the word ends at the cursor,
                      edit_line() up to edit_cursor() is the text to complete) */
} edit_result_t;

typedef struct edit {
    unsigned cols; /* terminal width */
    bool active;   /* between edit_begin and a result that ends the line */
    char prompt[EDIT_PROMPT_MAX + 1];
    size_t prompt_len, prompt_cols;
    char line[EDIT_LINE_MAX + 1];
    size_t len, pos; /* bytes in line; the cursor, a byte offset at a code point start */
    /* input decoding */
    uint8_t esc;       /* escape sequence state (edit.c) */
    char esc_param[8]; /* its numeric parameter */
    size_t esc_param_len;
    uint8_t utf[4]; /* a code point being received */
    size_t utf_len, utf_need;
    bool last_cr;  /* "\r\n" is one Enter */
    bool last_tab; /* a second Tab lists the candidates */
    bool awaiting; /* EDIT_COMPLETE was returned; edit_complete not called yet */
    /* history: a ring, hist[(hist_first + i) % MAX] for i < hist_count, oldest first */
    char hist[EDIT_HISTORY_MAX][EDIT_LINE_MAX + 1];
    size_t hist_first, hist_count;
    size_t browse;                 /* Up/Down: hist_count = the line being typed */
    char saved[EDIT_LINE_MAX + 1]; /* that line, while browsing */
    size_t saved_len;
    /* Ctrl-R */
    bool searching;
    char search[EDIT_SEARCH_MAX + 1];
    size_t search_len;
    size_t match; /* history index of the match, hist_count: none */
    /* output */
    char out[EDIT_OUT_MAX];
    size_t out_len;
    bool out_cut; /* output was dropped because out was full (a NEVER with a sane caller) */
} edit_t;

void edit_init(edit_t *ed, unsigned cols);
void edit_set_cols(edit_t *ed, unsigned cols);
/* Start a line; prompt is what is already on the row (not printed again now). */
void edit_begin(edit_t *ed, const char *prompt, size_t prompt_len);
/* Feed one input byte; only while active and not awaiting a completion. */
edit_result_t edit_feed(edit_t *ed, uint8_t byte);
/*
 * The answer to EDIT_COMPLETE: the word being completed starts at byte `start` of the line
 * (start <= cursor) and may become any of the n candidates (names, NUL-separated in list,
 * list_len bytes). The common prefix is inserted; a unique candidate gets a space after it
 * (not after one ending in '/'); a second Tab in a row lists the candidates.
 */
void edit_complete(edit_t *ed, size_t start, const char *list, size_t list_len);
/* Ctrl-Z and the like: print a note on its own row, then redraw the line under it. */
void edit_note(edit_t *ed, const char *text);
/* The row as it is drawn (prompt, the visible part of the line, cursor) from column 0:
 * written into buf (NUL-terminated); its length. For redrawing after someone else's output. */
size_t edit_redraw(const edit_t *ed, char *buf, size_t len);
/* The output produced since the last call: *len bytes, valid until the next edit_ call. */
const char *edit_take(edit_t *ed, size_t *len);

const char *edit_line(const edit_t *ed, size_t *len);
size_t edit_cursor(const edit_t *ed);

/* History: add a line (an empty one or a repeat of the newest is not added). */
void edit_history_add(edit_t *ed, const char *line, size_t len);
size_t edit_history_count(const edit_t *ed);
/* Entry i, 0 the oldest. */
const char *edit_history_get(const edit_t *ed, size_t i);

/* Bytes of the UTF-8 sequence lead byte c starts: 1 for ASCII, 2..4, 0 for any other byte. */
size_t edit_utf8_len(uint8_t c);
/* Whether buf[0..len) is valid UTF-8 (no overlong forms, no surrogates). */
bool edit_utf8_valid(const char *buf, size_t len);

#endif
