/* edit.c — the console's line editor (console_edit.h): keys, history, Ctrl-R, completion,
 * one-row redraws. Pure: the console server and the tests feed it bytes and take its output. */
#include <console_edit.h>

#include <stdio.h>
#include <string.h>

/* Escape sequence states: nothing, ESC seen, "ESC [" (CSI) and its parameter, "ESC O" (SS3). */
enum { ESC_NONE, ESC_START, ESC_CSI, ESC_SS3 };

static void put(edit_t *ed, const char *s, size_t n)
{
    if (n > EDIT_OUT_MAX - ed->out_len) {
        ed->out_cut = true;
        n = EDIT_OUT_MAX - ed->out_len;
    }
    memcpy(ed->out + ed->out_len, s, n);
    ed->out_len += n;
}

static void puts_(edit_t *ed, const char *s)
{
    put(ed, s, strlen(s));
}

static bool is_cont(uint8_t c)
{
    return (c & 0xC0) == 0x80;
}

size_t edit_utf8_len(uint8_t c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* Whether s[0..n) is one whole code point, encoded shortest, no surrogate, at most U+10FFFF. */
static bool utf8_one(const uint8_t *s, size_t n)
{
    if (n == 0 || edit_utf8_len(s[0]) != n)
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_cont(s[i]))
            return false;
    }
    if (n == 3 && s[0] == 0xE0 && s[1] < 0xA0)
        return false; /* overlong */
    if (n == 3 && s[0] == 0xED && s[1] >= 0xA0)
        return false; /* a surrogate */
    if (n == 4 && s[0] == 0xF0 && s[1] < 0x90)
        return false; /* overlong */
    if (n == 4 && s[0] == 0xF4 && s[1] >= 0x90)
        return false; /* past U+10FFFF */
    return true;
}

bool edit_utf8_valid(const char *buf, size_t len)
{
    const uint8_t *s = (const uint8_t *)buf;
    for (size_t i = 0; i < len;) {
        size_t n = edit_utf8_len(s[i]);
        if (n == 0 || i + n > len || !utf8_one(s + i, n))
            return false;
        i += n;
    }
    return true;
}

/* Code points (columns) in s[0..n). */
static size_t cols_of(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += !is_cont((uint8_t)s[i]);
    return c;
}

/* The byte offset of code point k of s[0..n) (n if past the end). */
static size_t byte_of(const char *s, size_t n, size_t k)
{
    size_t i = 0;
    while (i < n && k > 0) {
        i++;
        while (i < n && is_cont((uint8_t)s[i]))
            i++;
        k--;
    }
    return i;
}

static size_t prev_cp(const edit_t *ed, size_t at)
{
    if (at == 0)
        return 0;
    at--;
    while (at > 0 && is_cont((uint8_t)ed->line[at]))
        at--;
    return at;
}

static size_t next_cp(const edit_t *ed, size_t at)
{
    if (at >= ed->len)
        return ed->len;
    at++;
    while (at < ed->len && is_cont((uint8_t)ed->line[at]))
        at++;
    return at;
}

/* ---- drawing ---------------------------------------------------------------------------- */

/* Draw a row into buf: "\r", the prompt, the window of the text that holds the cursor,
 * "\x1b[K", then the cursor put back at its column. Returns the length (buf NUL-terminated,
 * cut at len). */
static size_t draw(unsigned cols, const char *prompt, size_t prompt_len, const char *text,
                   size_t text_len, size_t pos, char *buf, size_t len)
{
    size_t at = 0;
#define ADD(p, n)                                                                                  \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (at + n_ < len)                                                                         \
            memcpy(buf + at, (p), n_);                                                             \
        at += n_;                                                                                  \
    } while (0)

    /* the prompt leaves the text at least EDIT_TEXT_MIN columns (and the last column free) */
    size_t pmax = cols > 2 * EDIT_TEXT_MIN ? cols - EDIT_TEXT_MIN : cols / 2;
    size_t pcols = cols_of(prompt, prompt_len);
    if (pcols > pmax) {
        prompt_len = byte_of(prompt, prompt_len, pmax);
        pcols = pmax;
    }
    size_t avail = cols - pcols - 1;
    size_t ccol = cols_of(text, pos);
    size_t first = ccol < avail ? 0 : ccol - avail + 1; /* the first code point shown */
    size_t from = byte_of(text, text_len, first);
    size_t to = from + byte_of(text + from, text_len - from, avail);
    ADD("\r", 1);
    ADD(prompt, prompt_len);
    ADD(text + from, to - from);
    ADD("\x1b[K\r", 4);
    size_t col = pcols + ccol - first;
    if (col > 0) {
        char mv[16];
        int n = snprintf(mv, sizeof mv, "\x1b[%zuC", col);
        ADD(mv, (size_t)n);
    }
#undef ADD
    if (len > 0)
        buf[at < len ? at : len - 1] = 0;
    return at;
}

/* The search row's prompt: "(reverse-i-search)`TEXT': " (or "failing ..." without a match). */
static size_t search_prompt(const edit_t *ed, char *buf, size_t len)
{
    int n = snprintf(buf, len, "(%sreverse-i-search)`%.*s': ",
                     ed->search_len && ed->match == ed->hist_count ? "failing " : "",
                     (int)ed->search_len, ed->search);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

size_t edit_redraw(const edit_t *ed, char *buf, size_t len)
{
    if (ed->searching) {
        char sp[EDIT_SEARCH_MAX + 40];
        size_t spl = search_prompt(ed, sp, sizeof sp);
        const char *m = ed->match < ed->hist_count ? edit_history_get(ed, ed->match) : "";
        size_t ml = strlen(m);
        return draw(ed->cols, sp, spl, m, ml, ml, buf, len);
    }
    return draw(ed->cols, ed->prompt, ed->prompt_len, ed->line, ed->len, ed->pos, buf, len);
}

static void refresh(edit_t *ed)
{
    char row[EDIT_LINE_MAX + EDIT_PROMPT_MAX + 128];
    size_t n = edit_redraw(ed, row, sizeof row);
    put(ed, row, n < sizeof row ? n : sizeof row - 1);
}

/* ---- state ------------------------------------------------------------------------------ */

void edit_init(edit_t *ed, unsigned cols)
{
    memset(ed, 0, sizeof *ed);
    edit_set_cols(ed, cols);
}

void edit_set_cols(edit_t *ed, unsigned cols)
{
    ed->cols = cols == 0              ? EDIT_COLS_DEFAULT
               : cols < EDIT_COLS_MIN ? EDIT_COLS_MIN
               : cols > EDIT_COLS_MAX ? EDIT_COLS_MAX
                                      : cols;
}

void edit_begin(edit_t *ed, const char *prompt, size_t prompt_len)
{
    if (prompt_len > EDIT_PROMPT_MAX)
        prompt_len = EDIT_PROMPT_MAX;
    memcpy(ed->prompt, prompt, prompt_len);
    ed->prompt[prompt_len] = 0;
    /* a prompt is drawn as text: a control byte in it would move the cursor behind our back */
    for (size_t i = 0; i < prompt_len; i++) {
        if ((uint8_t)ed->prompt[i] < 0x20 || ed->prompt[i] == 0x7f)
            ed->prompt[i] = '?';
    }
    if (!edit_utf8_valid(ed->prompt, prompt_len)) {
        for (size_t i = 0; i < prompt_len; i++) {
            if ((uint8_t)ed->prompt[i] >= 0x80)
                ed->prompt[i] = '?';
        }
    }
    ed->prompt_len = prompt_len;
    ed->len = ed->pos = 0;
    ed->line[0] = 0;
    ed->active = true;
    ed->awaiting = ed->searching = ed->last_tab = false;
    ed->esc = ESC_NONE;
    ed->utf_len = ed->utf_need = 0;
    ed->browse = ed->hist_count;
}

const char *edit_take(edit_t *ed, size_t *len)
{
    *len = ed->out_len;
    ed->out_len = 0;
    return ed->out;
}

const char *edit_line(const edit_t *ed, size_t *len)
{
    *len = ed->len;
    return ed->line;
}

size_t edit_cursor(const edit_t *ed)
{
    return ed->pos;
}

/* ---- history ---------------------------------------------------------------------------- */

size_t edit_history_count(const edit_t *ed)
{
    return ed->hist_count;
}

const char *edit_history_get(const edit_t *ed, size_t i)
{
    if (i >= ed->hist_count)
        return "";
    return ed->hist[(ed->hist_first + i) % EDIT_HISTORY_MAX];
}

void edit_history_add(edit_t *ed, const char *line, size_t len)
{
    if (len == 0 || len > EDIT_LINE_MAX)
        return;
    if (ed->hist_count > 0) {
        const char *last = edit_history_get(ed, ed->hist_count - 1);
        if (strlen(last) == len && memcmp(last, line, len) == 0)
            return;
    }
    size_t slot;
    if (ed->hist_count == EDIT_HISTORY_MAX) {
        slot = ed->hist_first;
        ed->hist_first = (ed->hist_first + 1) % EDIT_HISTORY_MAX;
    } else {
        slot = (ed->hist_first + ed->hist_count) % EDIT_HISTORY_MAX;
        ed->hist_count++;
    }
    memcpy(ed->hist[slot], line, len);
    ed->hist[slot][len] = 0;
    ed->browse = ed->hist_count;
}

static void load(edit_t *ed, const char *s)
{
    size_t n = strlen(s);
    if (n > EDIT_LINE_MAX)
        n = EDIT_LINE_MAX;
    memcpy(ed->line, s, n);
    ed->line[n] = 0;
    ed->len = ed->pos = n;
}

static void history_step(edit_t *ed, bool older)
{
    if (older && ed->browse == 0)
        return;
    if (!older && ed->browse >= ed->hist_count)
        return;
    if (ed->browse == ed->hist_count) {
        memcpy(ed->saved, ed->line, ed->len + 1);
        ed->saved_len = ed->len;
    }
    ed->browse += older ? (size_t)-1 : 1;
    load(ed, ed->browse == ed->hist_count ? ed->saved : edit_history_get(ed, ed->browse));
    refresh(ed);
}

/* The newest entry at or before `from` that holds the search string; hist_count if none. */
static size_t search_from(const edit_t *ed, size_t from)
{
    for (size_t i = from + 1; i-- > 0;) {
        if (i >= ed->hist_count)
            continue;
        const char *h = edit_history_get(ed, i);
        size_t hl = strlen(h);
        for (size_t at = 0; at + ed->search_len <= hl; at++) {
            if (memcmp(h + at, ed->search, ed->search_len) == 0)
                return i;
        }
    }
    return ed->hist_count;
}

/* ---- editing ---------------------------------------------------------------------------- */

static void insert(edit_t *ed, const char *s, size_t n)
{
    if (n == 0 || ed->len + n > EDIT_LINE_MAX) {
        if (n)
            puts_(ed, "\a"); /* the line is full */
        return;
    }
    memmove(ed->line + ed->pos + n, ed->line + ed->pos, ed->len - ed->pos + 1);
    memcpy(ed->line + ed->pos, s, n);
    ed->len += n;
    ed->pos += n;
}

static void erase(edit_t *ed, size_t from, size_t to)
{
    memmove(ed->line + from, ed->line + to, ed->len - to + 1);
    ed->len -= to - from;
    if (ed->pos > to)
        ed->pos -= to - from;
    else if (ed->pos > from)
        ed->pos = from;
}

static bool is_word(char c)
{
    return c != ' ' && c != '\t' && c != '/';
}

static size_t word_left(const edit_t *ed, size_t at)
{
    while (at > 0 && !is_word(ed->line[at - 1]))
        at--;
    while (at > 0 && is_word(ed->line[at - 1]))
        at--;
    return at;
}

static size_t word_right(const edit_t *ed, size_t at)
{
    while (at < ed->len && !is_word(ed->line[at]))
        at++;
    while (at < ed->len && is_word(ed->line[at]))
        at++;
    return at;
}

/* Leave the line: the cursor goes after its end, then to the next row. */
static void finish_row(edit_t *ed, const char *mark)
{
    ed->pos = ed->len;
    refresh(ed);
    puts_(ed, mark);
    puts_(ed, "\r\n");
    ed->active = false;
    ed->searching = false;
}

static void leave_search(edit_t *ed, bool take)
{
    if (take && ed->match < ed->hist_count)
        load(ed, edit_history_get(ed, ed->match));
    ed->searching = false;
    ed->browse = ed->hist_count;
    refresh(ed);
}

void edit_note(edit_t *ed, const char *text)
{
    puts_(ed, "\r\x1b[K");
    puts_(ed, text);
    puts_(ed, "\r\n");
    refresh(ed);
}

static edit_result_t control(edit_t *ed, uint8_t c);

static edit_result_t search_key(edit_t *ed, uint8_t c)
{
    if (c == 0x12) { /* Ctrl-R again: an older match */
        if (ed->match < ed->hist_count && ed->match > 0) {
            size_t m = search_from(ed, ed->match - 1);
            if (m < ed->hist_count)
                ed->match = m;
        }
    } else if (c == 0x7f || c == 0x08) {
        if (ed->search_len > 0) {
            ed->search_len--;
            while (ed->search_len > 0 && is_cont((uint8_t)ed->search[ed->search_len]))
                ed->search_len--;
        }
        ed->match = search_from(ed, ed->hist_count - 1);
    } else if (c == 0x07) { /* Ctrl-G: back to the line as it was */
        leave_search(ed, false);
        return EDIT_MORE;
    } else if (c >= 0x20 && c != 0x7f) {
        if (ed->search_len < EDIT_SEARCH_MAX)
            ed->search[ed->search_len++] = (char)c;
        if (!is_cont(c) || ed->match == ed->hist_count)
            ed->match = search_from(ed, ed->hist_count ? ed->hist_count - 1 : 0);
    } else {
        /* any other key takes the match into the line and then does what it does */
        leave_search(ed, true);
        return c == 0x1b ? (ed->esc = ESC_START, EDIT_MORE) : control(ed, c);
    }
    refresh(ed);
    return EDIT_MORE;
}

static void csi(edit_t *ed, char final)
{
    int n = 0;
    for (size_t i = 0; i < ed->esc_param_len && ed->esc_param[i] != ';'; i++)
        n = n * 10 + (ed->esc_param[i] - '0');
    size_t old = ed->pos;
    switch (final) {
    case 'A':
        history_step(ed, true);
        return;
    case 'B':
        history_step(ed, false);
        return;
    case 'C':
        ed->pos = next_cp(ed, ed->pos);
        break;
    case 'D':
        ed->pos = prev_cp(ed, ed->pos);
        break;
    case 'H':
        ed->pos = 0;
        break;
    case 'F':
        ed->pos = ed->len;
        break;
    case '~':
        if (n == 1 || n == 7)
            ed->pos = 0;
        else if (n == 4 || n == 8)
            ed->pos = ed->len;
        else if (n == 3 && ed->pos < ed->len)
            erase(ed, ed->pos, next_cp(ed, ed->pos));
        else
            return; /* Insert, Page Up/Down, function keys: nothing */
        refresh(ed);
        return;
    default:
        return; /* a key we do not use */
    }
    if (ed->pos != old)
        refresh(ed);
}

static edit_result_t control(edit_t *ed, uint8_t c)
{
    switch (c) {
    case 0x01: /* Ctrl-A */
        ed->pos = 0;
        break;
    case 0x02: /* Ctrl-B */
        ed->pos = prev_cp(ed, ed->pos);
        break;
    case 0x03: /* Ctrl-C */
        finish_row(ed, "^C");
        return EDIT_CANCEL;
    case 0x04: /* Ctrl-D */
        if (ed->len == 0) {
            finish_row(ed, "");
            return EDIT_EOF;
        }
        if (ed->pos < ed->len)
            erase(ed, ed->pos, next_cp(ed, ed->pos));
        break;
    case 0x05: /* Ctrl-E */
        ed->pos = ed->len;
        break;
    case 0x06: /* Ctrl-F */
        ed->pos = next_cp(ed, ed->pos);
        break;
    case 0x08: /* Ctrl-H, Backspace */
    case 0x7f:
        if (ed->pos > 0)
            erase(ed, prev_cp(ed, ed->pos), ed->pos);
        break;
    case 0x09: /* Tab */
        ed->awaiting = true;
        return EDIT_COMPLETE;
    case 0x0a: /* Enter */
    case 0x0d:
        finish_row(ed, "");
        return EDIT_LINE;
    case 0x0b: /* Ctrl-K */
        erase(ed, ed->pos, ed->len);
        break;
    case 0x0c: /* Ctrl-L */
        puts_(ed, "\x1b[H\x1b[2J");
        break;
    case 0x0e: /* Ctrl-N */
        history_step(ed, false);
        return EDIT_MORE;
    case 0x10: /* Ctrl-P */
        history_step(ed, true);
        return EDIT_MORE;
    case 0x12: /* Ctrl-R */
        ed->searching = true;
        ed->search_len = 0;
        ed->match = ed->hist_count;
        break;
    case 0x15: /* Ctrl-U */
        erase(ed, 0, ed->pos);
        break;
    case 0x17: /* Ctrl-W */
        erase(ed, word_left(ed, ed->pos), ed->pos);
        break;
    case 0x1a: /* Ctrl-Z */
        edit_note(ed, "(Ctrl-Z: no job control here; Ctrl-C interrupts a command, Ctrl-D on an "
                      "empty line or 'shutdown' leaves)");
        return EDIT_MORE;
    default:
        return EDIT_MORE; /* other control bytes are not keys we use */
    }
    refresh(ed);
    return EDIT_MORE;
}

edit_result_t edit_feed(edit_t *ed, uint8_t c)
{
    if (!ed->active || ed->awaiting)
        return EDIT_MORE;
    bool cr = ed->last_cr;
    ed->last_cr = c == '\r';
    if (c == '\n' && cr)
        return EDIT_MORE; /* the second half of "\r\n" */
    if (c != 0x09)
        ed->last_tab = false;

    switch (ed->esc) {
    case ESC_START:
        ed->esc = ESC_NONE;
        if (c == '[') {
            ed->esc = ESC_CSI;
            ed->esc_param_len = 0;
        } else if (c == 'O') {
            ed->esc = ESC_SS3;
        } else if (c == 'b' || c == 'f') { /* Alt-B, Alt-F: a word left, right */
            ed->pos = c == 'b' ? word_left(ed, ed->pos) : word_right(ed, ed->pos);
            refresh(ed);
        } else if (c == 'd') { /* Alt-D: delete the word after the cursor */
            erase(ed, ed->pos, word_right(ed, ed->pos));
            refresh(ed);
        }
        return EDIT_MORE;
    case ESC_CSI:
        if ((c >= '0' && c <= '9') || c == ';') {
            if (ed->esc_param_len < sizeof ed->esc_param)
                ed->esc_param[ed->esc_param_len++] = (char)c;
            return EDIT_MORE;
        }
        ed->esc = ESC_NONE;
        if (c >= 0x40 && c <= 0x7e)
            csi(ed, (char)c);
        return EDIT_MORE; /* else a broken sequence: dropped */
    case ESC_SS3:
        ed->esc = ESC_NONE;
        if (c >= 0x40 && c <= 0x7e)
            csi(ed, (char)c); /* ESC O A..D, H, F: the same keys */
        return EDIT_MORE;
    default:
        break;
    }

    if (ed->utf_need) {
        if (is_cont(c)) {
            ed->utf[ed->utf_len++] = c;
            if (ed->utf_len < ed->utf_need)
                return EDIT_MORE;
            size_t n = ed->utf_len;
            ed->utf_need = ed->utf_len = 0;
            if (ed->searching) {
                for (size_t i = 0; i < n; i++)
                    search_key(ed, ed->utf[i]);
            } else if (utf8_one(ed->utf, n)) {
                insert(ed, (const char *)ed->utf, n);
                refresh(ed);
            }
            return EDIT_MORE;
        }
        ed->utf_need = ed->utf_len = 0; /* a cut sequence: dropped; c stands on its own */
    }
    if (c >= 0x80) {
        size_t need = edit_utf8_len(c);
        if (need >= 2) {
            ed->utf[0] = c;
            ed->utf_len = 1;
            ed->utf_need = need;
        }
        return EDIT_MORE; /* a stray continuation or invalid byte is dropped */
    }
    if (c == 0x1b && !ed->searching) {
        ed->esc = ESC_START;
        return EDIT_MORE;
    }
    if (ed->searching) {
        if (c == 0x0a || c == 0x0d) {
            leave_search(ed, true);
            finish_row(ed, "");
            return EDIT_LINE;
        }
        if (c == 0x03) {
            ed->searching = false;
            finish_row(ed, "^C");
            return EDIT_CANCEL;
        }
        return search_key(ed, c);
    }
    if (c >= 0x20 && c < 0x7f) {
        char ch = (char)c;
        insert(ed, &ch, 1);
        refresh(ed);
        return EDIT_MORE;
    }
    return control(ed, c);
}

/* ---- completion ------------------------------------------------------------------------- */

/* Insert candidate bytes as typed text: a control byte or broken UTF-8 becomes '?'. */
static void insert_text(edit_t *ed, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        size_t k = edit_utf8_len(c);
        if (c >= 0x20 && c < 0x7f) {
            insert(ed, s + i, 1);
            i++;
        } else if (k >= 2 && i + k <= n && utf8_one((const uint8_t *)s + i, k)) {
            insert(ed, s + i, k);
            i += k;
        } else {
            insert(ed, "?", 1);
            i++;
        }
    }
}

static void list_candidates(edit_t *ed, const char *list, size_t list_len, const char *word,
                            size_t wlen)
{
    size_t widest = 0, n = 0;
    for (size_t at = 0; at < list_len && n < EDIT_LIST_MAX;) {
        size_t l = strnlen(list + at, list_len - at);
        if (l >= wlen && memcmp(list + at, word, wlen) == 0) {
            size_t w = cols_of(list + at, l);
            widest = w > widest ? w : widest;
            n++;
        }
        at += l + 1;
    }
    size_t colw = widest + 2, per_row = ed->cols / colw ? ed->cols / colw : 1, col = 0;
    puts_(ed, "\r\n");
    n = 0;
    for (size_t at = 0; at < list_len && n < EDIT_LIST_MAX;) {
        size_t l = strnlen(list + at, list_len - at);
        if (l >= wlen && memcmp(list + at, word, wlen) == 0) {
            for (size_t i = 0; i < l; i++) {
                uint8_t c = (uint8_t)list[at + i];
                put(ed, c < 0x20 || c == 0x7f ? "?" : list + at + i, 1);
            }
            n++;
            if (++col == per_row) {
                puts_(ed, "\r\n");
                col = 0;
            } else {
                for (size_t i = cols_of(list + at, l); i < colw; i++)
                    put(ed, " ", 1);
            }
        }
        at += l + 1;
    }
    if (col)
        puts_(ed, "\r\n");
    refresh(ed);
}

void edit_complete(edit_t *ed, size_t start, const char *list, size_t list_len)
{
    if (!ed->awaiting)
        return;
    ed->awaiting = false;
    bool again = ed->last_tab;
    ed->last_tab = true;
    if (start > ed->pos)
        start = ed->pos;
    const char *word = ed->line + start;
    size_t wlen = ed->pos - start;
    /* the common prefix of the candidates that extend the word */
    const char *first = NULL;
    size_t common = 0, n = 0;
    for (size_t at = 0; at < list_len;) {
        size_t l = strnlen(list + at, list_len - at);
        const char *cand = list + at;
        at += l + 1;
        if (l < wlen || memcmp(cand, word, wlen) != 0)
            continue;
        if (!first) {
            first = cand;
            common = l;
        } else {
            size_t k = 0;
            while (k < common && k < l && first[k] == cand[k])
                k++;
            common = k;
        }
        n++;
    }
    if (n == 0) {
        puts_(ed, "\a");
        return;
    }
    while (common > wlen && common < strnlen(first, common + 1) && is_cont((uint8_t)first[common]))
        common--; /* never split a code point */
    if (common > wlen || n == 1) {
        insert_text(ed, first + wlen, common - wlen);
        if (n == 1 && common > 0 && first[common - 1] != '/' &&
            (ed->pos == ed->len || ed->line[ed->pos] != ' '))
            insert(ed, " ", 1);
        ed->last_tab = false;
        refresh(ed);
        return;
    }
    if (again)
        list_candidates(ed, list, list_len, word, wlen);
    else
        puts_(ed, "\a");
}
