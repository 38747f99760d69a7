/* test_console_edit.c — the console's line editor (servers/console/edit.c), keys in, the screen
 * of a terminal model (term_screen.c) checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <console_edit.h>

#include "term_screen.h"

#define PROMPT "orrery> "

typedef struct fixture {
    edit_t ed;
    term_screen_t ts;
    edit_result_t last;
    char row[1024];
} fixture_t;

static fixture_t *F;

static int setup(void **state)
{
    F = calloc(1, sizeof *F);
    edit_init(&F->ed, 40);
    ts_init(&F->ts, 40);
    ts_feed(&F->ts, PROMPT, strlen(PROMPT)); /* the client printed it */
    edit_begin(&F->ed, PROMPT, strlen(PROMPT));
    *state = F;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Feed keys; the editor's output goes to the screen. Returns the last result. */
static edit_result_t keys(const char *k)
{
    edit_result_t r = EDIT_MORE;
    for (size_t i = 0; k[i]; i++) {
        r = edit_feed(&F->ed, (uint8_t)k[i]);
        size_t n;
        const char *out = edit_take(&F->ed, &n);
        ts_feed(&F->ts, out, n);
        if (r != EDIT_MORE)
            break;
    }
    assert_false(F->ts.unknown);
    assert_false(F->ts.overflow);
    return F->last = r;
}

static const char *row(unsigned r)
{
    return ts_row(&F->ts, r, F->row, sizeof F->row);
}

static const char *line(void)
{
    static char buf[EDIT_LINE_MAX + 1];
    size_t n;
    const char *l = edit_line(&F->ed, &n);
    memcpy(buf, l, n);
    buf[n] = 0;
    return buf;
}

static void submit_line(const char *text)
{
    edit_begin(&F->ed, PROMPT, strlen(PROMPT));
    ts_feed(&F->ts, PROMPT, strlen(PROMPT));
    keys(text);
    assert_int_equal(EDIT_LINE, keys("\r"));
    size_t n;
    const char *l = edit_line(&F->ed, &n);
    edit_history_add(&F->ed, l, n);
    edit_begin(&F->ed, PROMPT, strlen(PROMPT));
    ts_feed(&F->ts, PROMPT, strlen(PROMPT));
}

static void test_typing_and_editing_in_the_middle(void **state)
{
    keys("ecoh hi");
    assert_string_equal("orrery> ecoh hi", row(0));
    keys("\x1b[D\x1b[D\x1b[D\x1b[D"); /* after "ec" */
    assert_int_equal(8 + 3, F->ts.col);
    keys("\x7f"); /* "eoh hi" ... no: delete the 'o' before the cursor */
    assert_string_equal("ech hi", line());
    keys("\x06o"); /* Ctrl-F past 'h', then 'o' */
    assert_string_equal("echo hi", line());
    assert_string_equal("orrery> echo hi", row(0));
    keys("\x01X\x05Y"); /* Home, End */
    assert_string_equal("Xecho hiY", line());
    keys("\x1b[H\x1b[3~\x1b[F\x08"); /* Home, Delete, End, Backspace */
    assert_string_equal("echo hi", line());
    assert_int_equal(EDIT_LINE, keys("\r"));
    assert_string_equal("orrery> echo hi", row(1));
    assert_int_equal(0, F->ts.col);
}

static void test_kill_keys(void **state)
{
    keys("one two three");
    keys("\x17"); /* Ctrl-W */
    assert_string_equal("one two ", line());
    keys("\x02\x02\x02\x0b"); /* three left, Ctrl-K */
    assert_string_equal("one t", line());
    keys("\x15"); /* Ctrl-U */
    assert_string_equal("", line());
    assert_string_equal("orrery> ", row(0));
    keys("a b\x1b"
         "b\x1b"
         "d"); /* Alt-B, Alt-D */
    assert_string_equal("a ", line());
}

/* Alt-F and Alt-B move by words over any run of separators; Alt-D deletes to a word's end. */
static void test_word_motion(void **state)
{
    keys("one  two / three"); /* words end at spaces, tabs and '/' */
    keys("\x01\x1b" "f"); /* Home, Alt-F: after "one" */
    assert_int_equal(8 + 3, F->ts.col);
    keys("\x1b" "f"); /* from the separators: after "two" */
    assert_int_equal(8 + 8, F->ts.col);
    keys("\x1b" "f\x1b" "f"); /* after "three", then stays at the end */
    assert_int_equal(8 + 16, F->ts.col);
    keys("\x1b" "b\x1b" "b"); /* back to the start of "two" */
    assert_int_equal(8 + 5, F->ts.col);
    keys("\x1b" "d"); /* deletes "two" */
    assert_string_equal("one   / three", line());
    keys("\x1b" "d"); /* from a separator: deletes " / three" */
    assert_string_equal("one  ", line());
}

static void test_ctrl_c_cancels_and_ctrl_d_ends(void **state)
{
    keys("half typed");
    assert_int_equal(EDIT_CANCEL, keys("\x03"));
    assert_string_equal("orrery> half typed^C", row(1));
    assert_false(F->ed.active);
    edit_begin(&F->ed, PROMPT, strlen(PROMPT));
    keys("x");
    assert_int_equal(EDIT_MORE, keys("\x01\x04")); /* not empty: deletes under the cursor */
    assert_string_equal("", line());
    assert_int_equal(EDIT_EOF, keys("\x04"));
}

static void test_ctrl_z_is_a_hint(void **state)
{
    edit_set_cols(&F->ed, 120); /* the hint is one row there */
    ts_init(&F->ts, 120);
    keys("ab");
    keys("\x1a");
    assert_non_null(strstr(row(1), "Ctrl-Z: no job control"));
    assert_string_equal("ab", row(0) + strlen(row(0)) - 2);
    assert_string_equal("orrery> ab", row(0));
    assert_string_equal("ab", line());
}

static void test_utf8_is_kept_whole(void **state)
{
    keys("h\xc3\xa9llo \xe2\x82\xac");
    assert_string_equal("h\xc3\xa9llo \xe2\x82\xac", line());
    assert_int_equal(8 + 7, F->ts.col); /* 7 code points */
    keys("\x1b[D\x1b[D\x7f");           /* left over "€" and " ", then Backspace: the 'o' */
    assert_string_equal("h\xc3\xa9ll \xe2\x82\xac", line());
    keys("\x01\x06\x06\x7f"); /* the two-byte é goes whole */
    assert_string_equal("hll \xe2\x82\xac", line());
    keys("\xe2\x82"); /* a cut sequence, then a key: dropped */
    keys("!");
    assert_string_equal("h!ll \xe2\x82\xac", line());
    keys("\xff\x80\xc0\xaf\xed\xa0\x80"); /* invalid, overlong, a surrogate */
    assert_string_equal("h!ll \xe2\x82\xac", line());
    assert_true(edit_utf8_valid(line(), strlen(line())));
}

static void test_a_long_line_scrolls_on_one_row(void **state)
{
    char text[200];
    for (int i = 0; i < 120; i++)
        text[i] = (char)('a' + i % 26);
    text[120] = 0;
    keys(text);
    assert_string_equal(text, line());
    assert_true(F->ts.col < 40);
    assert_int_equal(0, F->ts.row); /* never wrapped to a new row */
    const char *r = row(0);
    assert_memory_equal(PROMPT, r, 8);
    assert_int_equal(38, strlen(r)); /* the cursor's column, and the last, stay free */
    assert_memory_equal(text + 120 - 30, r + 8, 30); /* the end, where the cursor is */
    keys("\x01");
    assert_memory_equal(text, row(0) + 8, 31);
    assert_int_equal(8, F->ts.col);
    keys("\x05");
    for (size_t i = strlen(text); i < EDIT_LINE_MAX + 10; i++)
        keys("z");
    assert_int_equal(EDIT_LINE_MAX, strlen(line())); /* full: the rest rings */
    assert_true(F->ts.bells > 0);
}

static void test_history_up_down(void **state)
{
    submit_line("echo one");
    submit_line("echo two");
    submit_line("echo two"); /* a repeat is kept once */
    assert_int_equal(2, edit_history_count(&F->ed));
    keys("draft");
    keys("\x1b[A");
    assert_string_equal("echo two", line());
    assert_string_equal("orrery> echo two", row(0));
    keys("\x1b[A\x1b[A"); /* stops at the oldest */
    assert_string_equal("echo one", line());
    keys("\x1b[B\x1b[B");
    assert_string_equal("draft", line());
    keys("\x10X"); /* Ctrl-P, edit the recalled line */
    assert_string_equal("echo twoX", line());
    assert_string_equal("echo two", edit_history_get(&F->ed, 1)); /* history unchanged */
}

static void test_history_is_bounded(void **state)
{
    char l[32];
    for (int i = 0; i < EDIT_HISTORY_MAX + 5; i++) {
        snprintf(l, sizeof l, "line %d", i);
        edit_history_add(&F->ed, l, strlen(l));
    }
    assert_int_equal(EDIT_HISTORY_MAX, edit_history_count(&F->ed));
    assert_string_equal("line 5", edit_history_get(&F->ed, 0));
    snprintf(l, sizeof l, "line %d", EDIT_HISTORY_MAX + 4);
    assert_string_equal(l, edit_history_get(&F->ed, EDIT_HISTORY_MAX - 1));
}

static void test_ctrl_r_searches_back(void **state)
{
    edit_set_cols(&F->ed, 80);
    ts_init(&F->ts, 80);
    submit_line("ping example.com");
    submit_line("echo hello");
    submit_line("ps");
    keys("\x12"
         "ec");
    assert_string_equal("(reverse-i-search)`ec': echo hello", row(0));
    keys("\x12"); /* older: none has "ec" before: stays */
    assert_string_equal("(reverse-i-search)`ec': echo hello", row(0));
    keys("\x7f\x7fpi");
    assert_string_equal("(reverse-i-search)`pi': ping example.com", row(0));
    keys("\x1b[C"); /* an arrow takes the match into the line */
    assert_string_equal("ping example.com", line());
    assert_string_equal("orrery> ping example.com", row(0));
    keys("\x15\x12zz");
    assert_string_equal("(failing reverse-i-search)`zz': ", row(0));
    keys("\x07"); /* Ctrl-G: back */
    assert_string_equal("orrery> ", row(0));
    keys("\x12hel");
    assert_int_equal(EDIT_LINE, keys("\r"));
    assert_string_equal("echo hello", line());
}

static void test_tab_completes_a_unique_prefix(void **state)
{
    static const char cands[] = "shutdown\0";
    keys("sh");
    assert_int_equal(EDIT_COMPLETE, keys("\t"));
    assert_int_equal(2, edit_cursor(&F->ed));
    assert_int_equal(EDIT_MORE, edit_feed(&F->ed, 'x')); /* waiting: keys are not taken */
    edit_complete(&F->ed, 0, cands, sizeof cands - 1);
    size_t n;
    const char *out = edit_take(&F->ed, &n);
    ts_feed(&F->ts, out, n);
    assert_string_equal("shutdown ", line());
    assert_string_equal("orrery> shutdown ", row(0));
}

static void complete(size_t start, const char *list, size_t len)
{
    edit_complete(&F->ed, start, list, len);
    size_t n;
    const char *out = edit_take(&F->ed, &n);
    ts_feed(&F->ts, out, n);
}

static void test_tab_common_prefix_then_list(void **state)
{
    static const char cands[] = "fetch\0fsstress\0fsbench\0";
    keys("kill f");
    keys("\t");
    complete(5, cands, sizeof cands - 1);
    assert_string_equal("kill f", line()); /* no common part beyond "f": a bell */
    assert_int_equal(1, F->ts.bells);
    keys("s\t");
    complete(5, cands, sizeof cands - 1); /* "fs": fsstress, fsbench: nothing common more */
    assert_string_equal("kill fs", line());
    keys("\t"); /* a second Tab lists them */
    complete(5, cands, sizeof cands - 1);
    assert_non_null(strstr(row(1), "fsstress"));
    assert_non_null(strstr(row(1), "fsbench"));
    assert_null(strstr(row(1), "fetch"));
    assert_string_equal("orrery> kill fs", row(0));
    keys("\t");
    complete(5, "dir/\0", 5);               /* a directory gets no space */
    assert_string_equal("kill fs", line()); /* "dir/" does not extend "fs" */
    keys("\x15"
         "cat d\t");
    complete(4, "dir/\0", 5);
    assert_string_equal("cat dir/", line());
    keys("\t");
    complete(4, "", 0);
    assert_string_equal("cat dir/", line());
    keys("\t");
    complete(4, "dir/a\x01\xff\0", 8); /* control and broken bytes shown as '?' */
    assert_string_equal("cat dir/a?? ", line());
}

static void test_note_and_redraw_keep_the_row(void **state)
{
    keys("abc\x1b[D");
    edit_note(&F->ed, "[init] something happened");
    size_t n;
    const char *out = edit_take(&F->ed, &n);
    ts_feed(&F->ts, out, n);
    assert_string_equal("[init] something happened", row(1));
    assert_string_equal("orrery> abc", row(0));
    assert_int_equal(10, F->ts.col);
    char buf[256];
    size_t len = edit_redraw(&F->ed, buf, sizeof buf);
    assert_int_equal(strlen(buf), len);
    ts_feed(&F->ts, "\n", 1);
    ts_feed(&F->ts, buf, len);
    assert_string_equal("orrery> abc", row(0));
    assert_int_equal(10, F->ts.col);
}

static void test_prompt_with_control_bytes_is_drawn_safely(void **state)
{
    edit_begin(&F->ed, "a\x1b[2Jb> ", 8);
    keys("x");
    assert_string_equal("a?[2Jb> x", row(0));
}

/* edit_utf8_valid at each edge of the encoding's rules: the first and last code point of every
 * length, the overlong forms just below them, the surrogates, and U+10FFFF. */
static void test_utf8_validity_at_the_edges(void **state)
{
    static const struct {
        const char *s;
        bool valid;
    } cases[] = {
        {"\x7f", true},
        {"\xc1\xbf", false},             /* U+007F, overlong */
        {"\xc2\x80", true},              /* U+0080 */
        {"\xdf\xbf", true},              /* U+07FF */
        {"\xe0\x9f\xbf", false},         /* U+07FF, overlong */
        {"\xe0\xa0\x80", true},          /* U+0800 */
        {"\xed\x9f\xbf", true},          /* U+D7FF */
        {"\xed\xa0\x80", false},         /* U+D800, a surrogate */
        {"\xed\xbf\xbf", false},         /* U+DFFF, a surrogate */
        {"\xee\x80\x80", true},          /* U+E000 */
        {"\xef\xbf\xbf", true},          /* U+FFFF */
        {"\xf0\x8f\xbf\xbf", false},     /* U+FFFF, overlong */
        {"\xf0\x90\x80\x80", true},      /* U+10000 */
        {"\xf4\x8f\xbf\xbf", true},      /* U+10FFFF */
        {"\xf4\x90\x80\x80", false},     /* past U+10FFFF */
        {"\xe0\xa0", false},              /* cut short */
        {"\xe0\xa0\x41", false},          /* not a continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (edit_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].valid)
            fail_msg("case %zu: want %s", i, cases[i].valid ? "valid" : "invalid");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_typing_and_editing_in_the_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_word_motion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_cancels_and_ctrl_d_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_z_is_a_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_is_kept_whole, setup, teardown),
        cmocka_unit_test(test_utf8_validity_at_the_edges),
        cmocka_unit_test_setup_teardown(test_a_long_line_scrolls_on_one_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_up_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_r_searches_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tab_completes_a_unique_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tab_common_prefix_then_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_note_and_redraw_keep_the_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prompt_with_control_bytes_is_drawn_safely, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
