/* tty.c — the shell at a terminal: completion for the console's editor, Ctrl-C, `top`,
 * `history` and `clear`. */
#include "shell.h"

#include <image.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- completion ------------------------------------------------------------------------- */

/* The commands whose arguments are paths (completed through the fs server). */
static bool takes_paths(const char *cmd)
{
    static const char *const path_cmds[] = {"ls",    "cat", "write", "append", "mkdir", "rm",
                                            "rmdir", "mv",  "ln",    "stat",   "cd",    NULL};
    for (size_t i = 0; path_cmds[i]; i++) {
        if (strcmp(path_cmds[i], cmd) == 0)
            return true;
    }
    return false;
}

/* Add name to the candidates if it starts with prefix (and fits). */
static void add_name(complete_t *cp, const char *name, size_t len)
{
    if (len < cp->prefix_len || memcmp(name, cp->prefix, cp->prefix_len) != 0)
        return;
    if (cp->names_len + len + 1 > sizeof cp->names)
        return; /* the rest do not fit one answer: the common prefix of these still helps */
    memcpy(cp->names + cp->names_len, name, len);
    cp->names[cp->names_len + len] = 0;
    cp->names_len += len + 1;
}

static void answer(os_ctx_t *ctx, shell_state_t *st)
{
    complete_t *cp = &st->cp;
    console_candidates_t m;
    m.req = cp->req;
    m.start = cp->start;
    memcpy(m.names, cp->names, cp->names_len);
    m.names_len = cp->names_len;
    cp->busy = false;
    if (st->console.state == CONN_UP)
        console_candidates_send(ctx, st->console.chan, &m);
}

void tty_complete(os_ctx_t *ctx, shell_state_t *st, const console_complete_t *m)
{
    complete_t *cp = &st->cp;
    const char *text = m->text;
    size_t len = strlen(text);

    if (cp->busy)
        complete_fs_abort(ctx, st); /* the console moved on: the old question is void */
    memset(cp, 0, offsetof(complete_t, names));
    cp->names_len = 0;
    cp->req = m->req;
    /* the word being completed: after the last space */
    size_t start = len;
    while (start > 0 && text[start - 1] != ' ' && text[start - 1] != '\t')
        start--;
    cp->start = (uint32_t)start;
    cp->prefix_len = len - start;
    memcpy(cp->prefix, text + start, cp->prefix_len);
    cp->prefix[cp->prefix_len] = 0;
    /* the command word */
    char cmd[32] = "";
    size_t c0 = 0;
    while (c0 < len && (text[c0] == ' ' || text[c0] == '\t'))
        c0++;
    size_t c1 = c0;
    while (c1 < len && text[c1] != ' ' && text[c1] != '\t')
        c1++;
    if (c1 - c0 < sizeof cmd)
        memcpy(cmd, text + c0, c1 - c0);

    if (start <= c0) {
        for (size_t i = 0; shell_command_name(i); i++)
            add_name(cp, shell_command_name(i), strlen(shell_command_name(i)));
    } else if (strcmp(cmd, "kill") == 0) {
        int n = os_task_list(ctx, st->tasks, SHELL_TASKS_MAX);
        for (int i = 0; i < n && i < SHELL_TASKS_MAX; i++)
            add_name(cp, st->tasks[i].name, strlen(st->tasks[i].name));
    } else if (strcmp(cmd, "spawn") == 0) {
        for (size_t i = 0; orrery_programs[i]; i++)
            add_name(cp, orrery_programs[i]->name, strlen(orrery_programs[i]->name));
    } else if (strcmp(cmd, "top") == 0 && start >= 3 && strncmp(text + start - 3, "-s ", 3) == 0) {
        for (size_t i = 0; shell_top_keys[i]; i++)
            add_name(cp, shell_top_keys[i], strlen(shell_top_keys[i]));
    } else if (takes_paths(cmd)) {
        if (complete_fs_start(ctx, st))
            return; /* answered when the fs server has listed the directory */
    }
    answer(ctx, st);
}

void tty_complete_done(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->cp.busy)
        answer(ctx, st);
}

/* ---- paths, through the fs server ------------------------------------------------------ */

/* Whether a task named "fs" runs (it ends at start without a disk: then nothing completes). */
static bool fs_task_runs(os_ctx_t *ctx, shell_state_t *st)
{
    int n = os_task_list(ctx, st->tasks, SHELL_TASKS_MAX);
    for (int i = 0; i < n && i < SHELL_TASKS_MAX; i++) {
        if (strcmp(st->tasks[i].name, "fs") == 0)
            return true;
    }
    return false;
}

static void cp_send_open(os_ctx_t *ctx, shell_state_t *st)
{
    complete_t *cp = &st->cp;
    fs_open_t *m = &st->fc.tx.open;
    memset(m, 0, sizeof *m);
    m->req = cp->fs_req = ++st->next_req;
    m->flags = FS_O_READ;
    size_t dl = strlen(cp->dir);
    if (dl >= sizeof m->path) {
        tty_complete_done(ctx, st); /* a path too long to open completes to nothing */
        return;
    }
    memcpy(m->path, cp->dir, dl + 1);
    if (fs_open_send(ctx, st->fs.chan, m) == 0)
        cp->phase = CP_OPEN;
    else
        tty_complete_done(ctx, st);
}

static void cp_send_readdir(os_ctx_t *ctx, shell_state_t *st)
{
    complete_t *cp = &st->cp;
    fs_readdir_t m = {.req = cp->fs_req = ++st->next_req, .cookie = cp->cookie};
    if (fs_readdir_send(ctx, cp->chan, &m) == 0)
        cp->phase = CP_READDIR;
    else
        complete_fs_abort(ctx, st);
}

bool complete_fs_start(os_ctx_t *ctx, shell_state_t *st)
{
    complete_t *cp = &st->cp;
    /* the directory part of the word, and where it is */
    const char *slash = strrchr(cp->prefix, '/');
    size_t dlen = slash ? (size_t)(slash - cp->prefix) + 1 : 0;
    memcpy(cp->dirpart, cp->prefix, dlen);
    cp->dirpart[dlen] = 0;
    if (cp->prefix[0] == '/')
        snprintf(cp->dir, sizeof cp->dir, "%s", cp->dirpart);
    else
        snprintf(cp->dir, sizeof cp->dir, "%s/%s", st->cwd, cp->dirpart);
    cp->chan = OS_HANDLE_NONE;
    cp->busy = true;
    if (st->fs.state == CONN_UP) {
        cp_send_open(ctx, st);
    } else {
        if (!fs_task_runs(ctx, st)) {
            cp->busy = false;
            return false;
        }
        cp->phase = CP_CONNECT;
        if (st->fs.state == CONN_DOWN)
            sh_connect(ctx, st, &st->fs);
    }
    /* an fs server that does not answer must not leave the line waiting */
    if (cp->busy)
        os_timer_set(ctx, st->timer, os_clock_now(ctx) + SHELL_COMPLETE_TIMEOUT_NS);
    return cp->busy || cp->names_len > 0;
}

void complete_fs_connected(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->cp.busy && st->cp.phase == CP_CONNECT)
        cp_send_open(ctx, st);
}

void complete_fs_abort(os_ctx_t *ctx, shell_state_t *st)
{
    complete_t *cp = &st->cp;
    if (cp->chan != OS_HANDLE_NONE) {
        os_handle_close(ctx, cp->chan);
        cp->chan = OS_HANDLE_NONE;
    }
    if (st->op == OP_NONE)
        os_timer_cancel(ctx, st->timer);
    tty_complete_done(ctx, st);
}

bool complete_fs_owns(const shell_state_t *st, os_handle_t h)
{
    return st->cp.busy && h != OS_HANDLE_NONE && h == st->cp.chan;
}

void complete_fs_on_answer(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    complete_t *cp = &st->cp;
    if (ev->kind != OS_EV_MESSAGE) {
        complete_fs_abort(ctx, st); /* the directory's channel closed */
        return;
    }
    union fs_rx *rx = &st->fc.rx;
    if (ev->type == fs_msg_opened && fs_opened_decode(ev, &rx->opened) == 0) {
        if (cp->phase != CP_OPEN || rx->opened.req != cp->fs_req) {
            os_handle_close(ctx, rx->opened.chan);
            return;
        }
        cp->chan = rx->opened.chan;
        cp->cookie = 0;
        if (rx->opened.type != FS_T_DIR) {
            complete_fs_abort(ctx, st);
            return;
        }
        cp_send_readdir(ctx, st);
        return;
    }
    if (ev->type == fs_msg_dirents && fs_dirents_decode(ev, &rx->dirents) == 0 &&
        cp->phase == CP_READDIR && rx->dirents.req == cp->fs_req) {
        const uint8_t *d = rx->dirents.data;
        size_t at = 0, len = rx->dirents.data_len;
        for (uint16_t i = 0; i < rx->dirents.count && at + 6 <= len; i++) {
            uint8_t type = d[at + 4], nl = d[at + 5];
            if (at + 6 + nl > len)
                break;
            const char *name = (const char *)d + at + 6;
            at += 6 + (size_t)nl;
            if ((nl == 1 && name[0] == '.') || (nl == 2 && name[0] == '.' && name[1] == '.'))
                continue;
            char word[FS_PATH_MAX + FS_NAME_MAX + 2];
            int wl = snprintf(word, sizeof word, "%s%.*s%s", cp->dirpart, (int)nl, name,
                              type == FS_T_DIR ? "/" : "");
            if (wl > 0 && (size_t)wl < sizeof word)
                add_name(cp, word, (size_t)wl);
        }
        if (rx->dirents.count == 0 || cp->names_len + 64 > sizeof cp->names) {
            complete_fs_abort(ctx, st); /* closes the directory and answers */
            return;
        }
        cp->cookie = rx->dirents.next;
        cp_send_readdir(ctx, st);
        return;
    }
    /* a reply (an error: no such directory), fs.error, or a stale answer */
    if (ev->type == fs_msg_reply && fs_reply_decode(ev, &rx->reply) == 0 &&
        rx->reply.req == cp->fs_req) {
        complete_fs_abort(ctx, st);
        return;
    }
    iface_discard(ctx, ev);
}

/* ---- Ctrl-C ----------------------------------------------------------------------------- */

void tty_interrupt(os_ctx_t *ctx, shell_state_t *st)
{
    if (netcmd_is(st->op))
        netcmd_interrupt(ctx, st);
    else if (st->op == OP_TOP)
        top_stop(ctx, st);
    /* the others end by themselves within their timeouts */
}

/* ---- top -------------------------------------------------------------------------------- */

/* Queue depth: messages waiting for each task, from the channel list. */
static void queue_depths(os_ctx_t *ctx, shell_state_t *st, top_row_t *rows, size_t n)
{
    int nc = os_chan_list(ctx, st->chans, SHELL_CHANS_MAX);
    for (int i = 0; i < nc && i < SHELL_CHANS_MAX; i++) {
        const os_chan_info_t *c = &st->chans[i];
        for (size_t k = 0; k < n; k++) {
            if (rows[k].id == c->owner)
                rows[k].queue += c->queued;
            if (c->peer && rows[k].id == c->peer_owner)
                rows[k].queue += c->peer_queued;
        }
    }
}

static int cmp_rows(const top_row_t *a, const top_row_t *b, int key)
{
    switch (key) {
    case 0: /* cpu: highest first */
        return a->cpu_permille != b->cpu_permille ? (a->cpu_permille > b->cpu_permille ? -1 : 1)
                                                  : 0;
    case 1:
        return a->in_rate != b->in_rate ? (a->in_rate > b->in_rate ? -1 : 1) : 0;
    case 2:
        return a->out_rate != b->out_rate ? (a->out_rate > b->out_rate ? -1 : 1) : 0;
    case 3:
        return a->queue != b->queue ? (a->queue > b->queue ? -1 : 1) : 0;
    case 4:
        return a->restarts != b->restarts ? (a->restarts > b->restarts ? -1 : 1) : 0;
    case 5:
        return strcmp(a->name, b->name);
    default:
        return 0;
    }
}

/* One table: the rates are over the time since the last table (the first: since boot). */
static void top_table(os_ctx_t *ctx, shell_state_t *st)
{
    top_t *tp = &st->top;
    uint64_t now = os_clock_now(ctx);
    uint64_t span = now - tp->prev_at; /* ns */
    int n = os_task_list(ctx, st->tasks, SHELL_TASKS_MAX);
    if (n > SHELL_TASKS_MAX)
        n = SHELL_TASKS_MAX;
    top_row_t *rows = tp->rows;
    for (int i = 0; i < n; i++) {
        const os_task_info_t *t = &st->tasks[i];
        top_row_t *r = &rows[i];
        memset(r, 0, sizeof *r);
        r->id = t->id;
        snprintf(r->name, sizeof r->name, "%s", t->name);
        r->state = t->state;
        r->restarts = t->restarts;
        uint64_t sent0 = 0, recv0 = 0;
        uint32_t cpu0 = 0;
        for (size_t k = 0; k < tp->nprev; k++) {
            if (tp->prev[k].id == t->id) {
                sent0 = tp->prev[k].sent;
                recv0 = tp->prev[k].received;
                cpu0 = tp->prev[k].cpu_ms;
            }
        }
        /* a restarted task's counters start again: count from zero then */
        uint64_t ds = t->msgs_sent >= sent0 ? t->msgs_sent - sent0 : t->msgs_sent;
        uint64_t dr = t->msgs_received >= recv0 ? t->msgs_received - recv0 : t->msgs_received;
        uint32_t dc = t->cpu_ms - cpu0; /* modulo 2^32, as os.h says */
        uint64_t span_ms = span / 1000000u;
        r->cpu_permille = span_ms ? (uint32_t)((uint64_t)dc * 1000u / span_ms) : 0;
        if (r->cpu_permille > 1000)
            r->cpu_permille = 1000;
        r->in_rate = span ? dr * 1000000000ull / span : 0;
        r->out_rate = span ? ds * 1000000000ull / span : 0;
    }
    queue_depths(ctx, st, rows, (size_t)n);
    /* remember this sample for the next table's rates */
    for (int i = 0; i < n; i++) {
        tp->prev[i].id = st->tasks[i].id;
        tp->prev[i].sent = st->tasks[i].msgs_sent;
        tp->prev[i].received = st->tasks[i].msgs_received;
        tp->prev[i].cpu_ms = st->tasks[i].cpu_ms;
    }
    tp->nprev = (size_t)n;
    tp->prev_at = now;
    /* sort: insertion, stable (ties keep id order) */
    for (int i = 1; i < n; i++) {
        top_row_t r = rows[i];
        int k = i;
        while (k > 0 && cmp_rows(&r, &rows[k - 1], tp->key) < 0) {
            rows[k] = rows[k - 1];
            k--;
        }
        rows[k] = r;
    }

    if (st->terminal && tp->count != 1) {
        static const char home[] = "\x1b[H\x1b[2J";
        tty_control(ctx, st, home, sizeof home - 1);
    }
    sh_say(st, "top: %d tasks, up %llu.%03llus, sorted by %s", n,
           (unsigned long long)(now / 1000000000u),
           (unsigned long long)(now % 1000000000u / 1000000u), shell_top_keys[tp->key]);
    if (st->terminal && tp->count != 1)
        sh_say(st, " (q quits, s changes the sort)");
    sh_say(st, "\n%-4s %-12s %-8s %6s %8s %8s %6s %8s\n", "ID", "NAME", "STATE", "CPU%", "IN/S",
           "OUT/S", "QUEUE", "RESTARTS");
    for (int i = 0; i < n; i++) {
        const top_row_t *r = &rows[i];
        sh_say(st, "%-4u %-12s %-8s %4u.%u %8llu %8llu %6u %8u\n", r->id, r->name,
               os_task_state_name(r->state), r->cpu_permille / 10, r->cpu_permille % 10,
               (unsigned long long)r->in_rate, (unsigned long long)r->out_rate, r->queue,
               r->restarts);
    }
    tp->shown++;
}

void top_start(os_ctx_t *ctx, shell_state_t *st, const shell_cmd_t *c)
{
    top_t *tp = &st->top;
    memset(tp, 0, sizeof *tp);
    tp->key = shell_top_key(c->arg) < 0 ? 0 : shell_top_key(c->arg);
    /* a pipe cannot type q: one table there unless -n says otherwise */
    tp->count = c->count ? c->count : st->terminal ? 0 : 1;
    top_table(ctx, st);
    if (tp->count == 1)
        return; /* done: the caller prompts */
    sh_op_start(ctx, st, OP_TOP, SHELL_TOP_INTERVAL_NS);
    if (st->terminal && st->console.state == CONN_UP) {
        console_keys_t k = {1};
        console_keys_send(ctx, st->console.chan, &k);
    }
}

void top_stop(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->terminal && st->console.state == CONN_UP) {
        console_keys_t k = {0};
        console_keys_send(ctx, st->console.chan, &k);
    }
    sh_op_done(ctx, st);
}

void top_on_timer(os_ctx_t *ctx, shell_state_t *st)
{
    top_t *tp = &st->top;
    top_table(ctx, st);
    if (tp->count && tp->shown >= (uint32_t)tp->count) {
        top_stop(ctx, st);
        return;
    }
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + SHELL_TOP_INTERVAL_NS);
}

void top_on_keys(os_ctx_t *ctx, shell_state_t *st, const uint8_t *keys, size_t n)
{
    top_t *tp = &st->top;
    if (st->op != OP_TOP)
        return;
    for (size_t i = 0; i < n; i++) {
        if (keys[i] == 'q' || keys[i] == 'Q') {
            top_stop(ctx, st);
            return;
        }
        int key = -1;
        switch (keys[i]) {
        case 's':
            key = shell_top_keys[tp->key + 1] ? tp->key + 1 : 0;
            break;
        case 'c':
            key = 0;
            break;
        case 'i':
            key = 1;
            break;
        case 'o':
            key = 2;
            break;
        case 'w':
            key = 3;
            break;
        case 'r':
            key = 4;
            break;
        case 'n':
            key = 5;
            break;
        case 'd':
            key = 6;
            break;
        default:
            break;
        }
        if (key >= 0 && key != tp->key) {
            tp->key = key;
            top_table(ctx, st); /* at once, not at the next tick */
            os_timer_set(ctx, st->timer, os_clock_now(ctx) + SHELL_TOP_INTERVAL_NS);
        }
    }
}

/* ---- history, clear, terminal control --------------------------------------------------- */

void tty_control(os_ctx_t *ctx, shell_state_t *st, const char *bytes, size_t len)
{
    /* after what was said before it, in order */
    sh_flush(ctx, st);
    if (!st->terminal || st->console.state != CONN_UP || st->out_len > 0)
        return; /* not a terminal, or the console is slow: the screen stays as it is */
    console_control_t m;
    memcpy(m.data, bytes, len);
    m.data_len = (uint32_t)len;
    console_control_send(ctx, st->console.chan, &m);
}

void tty_history(os_ctx_t *ctx, shell_state_t *st, int count)
{
    sh_flush(ctx, st);
    st->history_wanted = true;
    st->history_max = (uint32_t)count;
    sh_flush(ctx, st); /* sends it once everything before it went out */
}
