/* term.c — the console on an interactive terminal: keystrokes through the line editor,
 * type-ahead and Ctrl-C while a command runs, completion asked of the client, output escaped. */
#include "console.h"

#include <stdio.h>
#include <string.h>

/*
 * The platform says the input is a terminal with HAL_CONSOLE_INFO and then posts keystrokes
 * (HAL_CONSOLE_KEYS). Keystrokes are always taken from the device, so a Ctrl-C reaches a
 * running command at once; the rest waits in `ahead` until the client asks for a line, and
 * the device is held only while `ahead` is full. The row being edited is told to the platform
 * (HAL_CONSOLE_ROW) after every change, so its log lines redraw it under themselves.
 */

static void dev_write(os_ctx_t *ctx, console_state_t *st, const void *buf, size_t len)
{
    if (len > 0)
        os_device_write(ctx, st->dev, HAL_CONSOLE_WRITE, buf, len);
}

/* Tell the platform what the current row shows: the line being edited, or the partial last
 * row of output (a prompt), or nothing. */
static void set_row(os_ctx_t *ctx, console_state_t *st)
{
    term_t *t = &st->term;
    char row[EDIT_LINE_MAX + EDIT_PROMPT_MAX + 128];
    size_t n = 0;
    if (t->editing) {
        n = edit_redraw(&st->ed, row, sizeof row);
        if (n >= sizeof row)
            n = sizeof row - 1;
    } else if (t->tail_len > 0) {
        row[0] = '\r';
        memcpy(row + 1, t->tail, t->tail_len);
        n = 1 + t->tail_len;
    }
    os_device_write(ctx, st->dev, HAL_CONSOLE_ROW, row, n);
}

/* Draw the edited row again from column 0. */
static void draw_row(os_ctx_t *ctx, console_state_t *st)
{
    char row[EDIT_LINE_MAX + EDIT_PROMPT_MAX + 128];
    size_t n = edit_redraw(&st->ed, row, sizeof row);
    dev_write(ctx, st, row, n < sizeof row ? n : sizeof row - 1);
}

/* The editor's output to the terminal. */
static void flush_edit(os_ctx_t *ctx, console_state_t *st)
{
    size_t n;
    const char *out = edit_take(&st->ed, &n);
    dev_write(ctx, st, out, n);
    set_row(ctx, st);
}

/* Output as shown: remember the partial last row (the prompt the editor redraws). */
void term_track(term_t *t, const char *buf, size_t len)
{
    const char *nl = NULL;
    for (size_t i = len; i-- > 0;) {
        if (buf[i] == '\n') {
            nl = buf + i;
            break;
        }
    }
    if (nl) {
        t->tail_len = 0;
        t->tail_cut = false;
        len -= (size_t)(nl + 1 - buf);
        buf = nl + 1;
    }
    size_t room = sizeof t->tail - t->tail_len;
    if (len > room) {
        t->tail_cut = true;
        len = room;
    }
    memcpy(t->tail + t->tail_len, buf, len);
    t->tail_len += len;
}

/* Write a client's bytes: newline, tab, printable ASCII and whole UTF-8 code points as they
 * are, anything else (ESC, CR, BEL, DEL, C1, broken UTF-8) as "\xNN". A code point cut at the
 * end of a write waits for the next one. */
static void write_escaped(os_ctx_t *ctx, console_state_t *st, const uint8_t *data, size_t len)
{
    term_t *t = &st->term;
    char out[CONSOLE_OUT_CHUNK + 8];
    size_t n = 0;

    /* the carry and the data, a piece at a time */
    uint8_t buf[CONSOLE_OUT_CHUNK + 4];
    size_t at = 0;
    while (at < len || t->carry_len > 0) {
        size_t bl = t->carry_len;
        memcpy(buf, t->carry, bl);
        t->carry_len = 0;
        size_t take = len - at < CONSOLE_OUT_CHUNK ? len - at : CONSOLE_OUT_CHUNK;
        memcpy(buf + bl, data + at, take);
        at += take;
        bl += take;
        for (size_t k = 0; k < bl;) {
            uint8_t c = buf[k];
            size_t need = edit_utf8_len(c);
            if (n + 8 > CONSOLE_OUT_CHUNK) {
                term_track(t, out, n);
                dev_write(ctx, st, out, n);
                n = 0;
            }
            if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) {
                out[n++] = (char)c;
                k++;
            } else if (need >= 2 && k + need > bl && at < len) {
                /* cut by our own piece: the next piece continues it */
                memcpy(t->carry, buf + k, bl - k);
                t->carry_len = bl - k;
                break;
            } else if (need >= 2 && k + need > bl) {
                /* cut by the end of the write: kept for the next write */
                memcpy(t->carry, buf + k, bl - k);
                t->carry_len = bl - k;
                at = len;
                goto done;
            } else if (need >= 2 && edit_utf8_valid((const char *)buf + k, need)) {
                memcpy(out + n, buf + k, need);
                n += need;
                k += need;
            } else {
                n += (size_t)snprintf(out + n, 8, "\\x%02x", c);
                k++;
            }
        }
    }
done:
    term_track(t, out, n);
    dev_write(ctx, st, out, n);
}

void term_write(os_ctx_t *ctx, console_state_t *st, const uint8_t *data, size_t len)
{
    term_t *t = &st->term;
    if (t->editing) {
        /* someone writes under a line being typed: clear the row, write, draw the line again */
        dev_write(ctx, st, "\r\x1b[K", 4);
        t->tail_len = 0;
        write_escaped(ctx, st, data, len);
        if (t->tail_len > 0)
            dev_write(ctx, st, "\n", 1);
        t->tail_len = 0;
        draw_row(ctx, st);
    } else {
        write_escaped(ctx, st, data, len);
    }
    set_row(ctx, st);
}

static void interrupt(os_ctx_t *ctx, console_state_t *st)
{
    term_t *t = &st->term;
    t->ahead_len = 0; /* what was typed ahead belonged to the command being stopped */
    if (st->client == OS_HANDLE_NONE)
        return;
    console_interrupt_t m = {++t->interrupts};
    console_interrupt_send(ctx, st->client, &m);
}

void term_on_info(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev)
{
    term_t *t = &st->term;
    hal_console_info_t info;
    if (ev->len != sizeof info)
        return; /* not from this HAL: ignored */
    memcpy(&info, ev->data, sizeof info);
    if (!(info.flags & HAL_CONSOLE_TERMINAL))
        return;
    bool size_changed = t->cols != info.cols || t->rows != info.rows;
    t->on = true;
    t->cols = info.cols;
    t->rows = info.rows;
    edit_set_cols(&st->ed, info.cols);
    if (size_changed)
        t->told = false;
    if (size_changed && t->editing) {
        dev_write(ctx, st, "\r\x1b[K", 4);
        draw_row(ctx, st);
        set_row(ctx, st);
    }
    console_pump(ctx, st);
}

void term_on_keys(os_ctx_t *ctx, console_state_t *st, const uint8_t *data, size_t len)
{
    term_t *t = &st->term;
    if (!t->on) {
        /* keystrokes before the info: a restarted console, whose predecessor got it */
        t->on = true;
        if (!t->asked_info) {
            t->asked_info = true;
            os_device_write(ctx, st->dev, HAL_CONSOLE_INFO, NULL, 0);
        }
    }
    for (size_t i = 0; i < len; i++) {
        if (data[i] == 0x03 && !t->editing && !t->keys) {
            interrupt(ctx, st);
            continue;
        }
        if (t->ahead_len < CONSOLE_AHEAD_MAX)
            t->ahead[t->ahead_len++] = data[i];
        /* else: the device is held while ahead is full; a platform that posts anyway loses
           the key */
    }
    console_pump(ctx, st);
}

/* Send typed keys to a client that asked for them (`keys`). */
static void forward_keys(os_ctx_t *ctx, console_state_t *st)
{
    term_t *t = &st->term;
    while (t->ahead_len > 0 && t->keys && st->client != OS_HANDLE_NONE) {
        if (t->ahead[0] == 0x03) {
            memmove(t->ahead, t->ahead + 1, --t->ahead_len);
            console_interrupt_t m = {++t->interrupts};
            console_interrupt_send(ctx, st->client, &m);
            continue;
        }
        console_key_t m;
        size_t n = 0;
        while (n < t->ahead_len && n < CONSOLE_KEY_MAX && t->ahead[n] != 0x03)
            n++;
        memcpy(m.data, t->ahead, n);
        m.data_len = (uint32_t)n;
        if (console_key_send(ctx, st->client, &m) < 0)
            return; /* full: the keys wait; gone: the next client */
        memmove(t->ahead, t->ahead + n, t->ahead_len - n);
        t->ahead_len -= n;
    }
}

/* Feed typed bytes to the editor until it needs the client (a line, a completion). */
static void feed(os_ctx_t *ctx, console_state_t *st)
{
    term_t *t = &st->term;
    size_t used = 0;
    while (used < t->ahead_len && t->editing && t->complete_req == 0) {
        edit_result_t r = edit_feed(&st->ed, t->ahead[used++]);
        flush_edit(ctx, st);
        if (r == EDIT_MORE)
            continue;
        if (r == EDIT_COMPLETE) {
            console_complete_t m;
            size_t len;
            const char *line = edit_line(&st->ed, &len);
            size_t cur = edit_cursor(&st->ed);
            memcpy(m.text, line, cur);
            m.text[cur] = 0;
            m.req = ++t->next_req ? t->next_req : ++t->next_req;
            if (st->client != OS_HANDLE_NONE && console_complete_send(ctx, st->client, &m) == 0)
                t->complete_req = m.req;
            else
                edit_complete(&st->ed, cur, "", 0); /* nobody to ask: nothing completes */
            flush_edit(ctx, st);
            continue;
        }
        t->editing = false;
        if (r == EDIT_CANCEL) {
            dev_write(ctx, st, t->tail, t->tail_len); /* the prompt again, for a new line */
            set_row(ctx, st);
            continue; /* the client still waits for a line: a new one starts below */
        }
        t->tail_len = 0; /* the editor ended the row */
        set_row(ctx, st);
        memmove(t->ahead, t->ahead + used, t->ahead_len - used);
        t->ahead_len -= used;
        used = 0;
        if (r == EDIT_LINE) {
            size_t len;
            const char *line = edit_line(&st->ed, &len);
            console_take_line(ctx, st, line, len);
        } else {
            console_take_eof(ctx, st);
        }
        return;
    }
    memmove(t->ahead, t->ahead + used, t->ahead_len - used);
    t->ahead_len -= used;
}

void term_poke(os_ctx_t *ctx, console_state_t *st)
{
    term_t *t = &st->term;
    if (!t->on || t->poking)
        return; /* called again from inside (a line taken pumps): the outer call goes on */
    t->poking = true;
    if (st->client != OS_HANDLE_NONE && !t->told) {
        console_terminal_t m = {t->cols, t->rows};
        if (console_terminal_send(ctx, st->client, &m) == 0)
            t->told = true;
    }
    /* a line at a time: after Ctrl-C the same read gets a new line, fed from the same keys */
    for (;;) {
        if (t->keys) {
            forward_keys(ctx, st);
            break;
        }
        if (!t->editing && st->client != OS_HANDLE_NONE && !st->blocked && st->credit > 0 &&
            !st->pending.valid && !st->eof) {
            edit_begin(&st->ed, t->tail, t->tail_len);
            t->editing = true;
            /* drawn once now: a log line may have ended the prompt's row before we knew we
               were on a terminal */
            draw_row(ctx, st);
            set_row(ctx, st);
        }
        if (!t->editing)
            break;
        feed(ctx, st);
        if (t->editing)
            break; /* every key taken, or a completion asked for */
    }
    t->poking = false;
}

void term_new_client(os_ctx_t *ctx, console_state_t *st)
{
    term_t *t = &st->term;
    if (t->editing) {
        dev_write(ctx, st, "\r\n", 2); /* the old client's line is abandoned */
        t->tail_len = 0;
    }
    t->editing = false;
    t->keys = false;
    t->complete_req = 0;
    t->told = false;
}

/* The history, numbered, as output of the client. */
static void print_history(os_ctx_t *ctx, console_state_t *st, uint32_t max)
{
    size_t count = edit_history_count(&st->ed);
    size_t first = max && max < count ? count - max : 0;
    char buf[EDIT_LINE_MAX + 16];
    for (size_t i = first; i < count; i++) {
        int n = snprintf(buf, sizeof buf, "%5zu  %s\n", i + 1, edit_history_get(&st->ed, i));
        size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
        if (st->term.on)
            write_escaped(ctx, st, (const uint8_t *)buf, len);
        else
            dev_write(ctx, st, buf, len);
    }
    if (st->term.on)
        set_row(ctx, st);
}

bool term_on_client(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev)
{
    term_t *t = &st->term;
    union {
        console_candidates_t cand;
        console_control_t control;
        console_keys_t keys;
        console_history_t history;
    } m;

    if (ev->type == console_msg_candidates && console_candidates_decode(ev, &m.cand) == 0) {
        if (t->complete_req != 0 && m.cand.req == t->complete_req) {
            t->complete_req = 0;
            edit_complete(&st->ed, m.cand.start, (const char *)m.cand.names, m.cand.names_len);
            flush_edit(ctx, st);
            term_poke(ctx, st);
        }
        return true;
    }
    if (ev->type == console_msg_control && console_control_decode(ev, &m.control) == 0) {
        if (t->on)
            dev_write(ctx, st, m.control.data, m.control.data_len);
        return true;
    }
    if (ev->type == console_msg_keys && console_keys_decode(ev, &m.keys) == 0) {
        t->keys = t->on && m.keys.on != 0;
        console_pump(ctx, st);
        return true;
    }
    if (ev->type == console_msg_history && console_history_decode(ev, &m.history) == 0) {
        print_history(ctx, st, m.history.max);
        return true;
    }
    return false;
}
