/* shell.c — the shell: reads console lines, runs commands (network ones: netcmd.c, file ones:
 * fscmd.c), prints. */
#include "shell.h"

#include <image.h>
#include <iface/echo.h>
#include <iface/init_client.h>
#include <iface/net.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void run_queue(os_ctx_t *ctx, shell_state_t *st);

/* ---- output --------------------------------------------------------------------------- */


void sh_say(shell_state_t *st, const char *fmt, ...)
{
    size_t room = SHELL_OUT_MAX - st->out_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(st->out + st->out_len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        /* the console is gone or slow: keep what fits, mark the cut */
        st->out_len = SHELL_OUT_MAX;
        memcpy(st->out + SHELL_OUT_MAX - 5, "...\n", 4);
        st->out_len = SHELL_OUT_MAX - 1;
        return;
    }
    st->out_len += (size_t)n;
}

void sh_connect(os_ctx_t *ctx, shell_state_t *st, conn_t *c)
{
    c->req = ++st->next_req;
    c->state = CONN_CONNECTING;
    int err = init_connect_iface(ctx, c->req, c->iface);
    if (err < 0) {
        c->state = CONN_DOWN;
        os_log(ctx, "connect %s: %s", c->iface->name, os_strerror(err));
    }
}

void sh_conn_lost(os_ctx_t *ctx, shell_state_t *st, conn_t *c)
{
    if (c == &st->console)
        st->reading = false; /* the next console starts without our read */
    if (c->chan != OS_HANDLE_NONE)
        os_handle_close(ctx, c->chan);
    c->chan = OS_HANDLE_NONE;
    sh_connect(ctx, st, c); /* init holds the connect until the server is back */
}

void sh_flush(os_ctx_t *ctx, shell_state_t *st)
{
    while (st->out_len > 0 && st->console.state == CONN_UP && !st->out_blocked) {
        size_t n = st->out_len < CONSOLE_WRITE_MAX ? st->out_len : CONSOLE_WRITE_MAX;
        console_write_t m;
        m.data_len = (uint32_t)n;
        memcpy(m.data, st->out, n);
        int err = console_write_send(ctx, st->console.chan, &m);
        if (err == OS_EFULL) {
            st->out_blocked = true;
            return;
        }
        if (err < 0) {
            sh_conn_lost(ctx, st, &st->console);
            return;
        }
        memmove(st->out, st->out + n, st->out_len - n);
        st->out_len -= n;
    }
    if (st->out_len == 0 && st->history_wanted && st->console.state == CONN_UP) {
        console_history_t h = {st->history_max};
        int err = console_history_send(ctx, st->console.chan, &h);
        if (err == OS_EFULL) {
            st->out_blocked = true;
            return;
        }
        st->history_wanted = false;
        if (err < 0)
            sh_conn_lost(ctx, st, &st->console);
    }
    if (st->out_len == 0 && st->flush_wanted && st->console.state == CONN_UP) {
        console_flush_t f = {st->op_req};
        st->flush_wanted = false;
        if (console_flush_send(ctx, st->console.chan, &f) < 0)
            sh_conn_lost(ctx, st, &st->console);
    }
}

/* ---- commands ------------------------------------------------------------------------- */

void sh_op_start(os_ctx_t *ctx, shell_state_t *st, op_kind_t kind, uint64_t timeout)
{
    st->op = kind;
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + timeout);
}

/* The command in flight finished: a new prompt, then whatever input waited. */
void sh_op_done(os_ctx_t *ctx, shell_state_t *st)
{
    st->op = OP_NONE;
    os_timer_cancel(ctx, st->timer);
    sh_say(st, SHELL_PROMPT);
    run_queue(ctx, st);
}

static void echo_send(os_ctx_t *ctx, shell_state_t *st)
{
    echo_request_t m;
    m.id = st->op_req;
    memcpy(m.text, st->op_arg, strlen(st->op_arg) + 1);
    int err = echo_request_send(ctx, st->echo.chan, &m);
    if (err == 0) {
        st->op_sent = true;
    } else if (err == OS_EPEER) {
        sh_conn_lost(ctx, st, &st->echo); /* sent again once reconnected */
    } else {
        sh_say(st, "shell: echo: %s\n", os_strerror(err));
        sh_op_done(ctx, st);
    }
}

void sh_say_ip(shell_state_t *st, uint32_t a)
{
    sh_say(st, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16 & 0xff),
           (unsigned)(a >> 8 & 0xff), (unsigned)(a & 0xff));
}

static void print_ps(os_ctx_t *ctx, shell_state_t *st)
{
    int n = os_task_list(ctx, st->tasks, SHELL_TASKS_MAX);
    sh_say(st, "ID   NAME         STATE    HANDLES  SENT     RECV     RESTARTS\n");
    for (int i = 0; i < n && i < SHELL_TASKS_MAX; i++) {
        const os_task_info_t *t = &st->tasks[i];
        sh_say(st, "%-4u %-12s %-8s %-8u %-8llu %-8llu %u\n", t->id, t->name,
               os_task_state_name(t->state), t->handles, (unsigned long long)t->msgs_sent,
               (unsigned long long)t->msgs_received, t->restarts);
    }
    if (n > SHELL_TASKS_MAX)
        sh_say(st, "(%d more)\n", n - SHELL_TASKS_MAX);
}

static const char *task_name(shell_state_t *st, int ntasks, uint32_t id, char *buf, size_t len)
{
    if (id == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    for (int i = 0; i < ntasks && i < SHELL_TASKS_MAX; i++) {
        if (st->tasks[i].id == id) {
            snprintf(buf, len, "%s(%u)", st->tasks[i].name, id);
            return buf;
        }
    }
    snprintf(buf, len, "?(%u)", id);
    return buf;
}

static void print_ipc(os_ctx_t *ctx, shell_state_t *st)
{
    int nt = os_task_list(ctx, st->tasks, SHELL_TASKS_MAX);
    int n = os_chan_list(ctx, st->chans, SHELL_CHANS_MAX);
    uint64_t queued = 0;
    char a[48], b[48];

    sh_say(st, "CHAN  PEER  OWNER            QUEUED  PEER OWNER       QUEUED\n");
    for (int i = 0; i < n && i < SHELL_CHANS_MAX; i++) {
        const os_chan_info_t *c = &st->chans[i];
        char peer[12];
        if (c->peer)
            snprintf(peer, sizeof peer, "%u", c->peer);
        else
            snprintf(peer, sizeof peer, "-");
        sh_say(st, "%-5u %-5s %-16s %-7u %-16s %u\n", c->id, peer,
               task_name(st, nt, c->owner, a, sizeof a), c->queued,
               task_name(st, nt, c->peer_owner, b, sizeof b), c->peer_queued);
        queued += (uint64_t)c->queued + c->peer_queued;
    }
    if (n > SHELL_CHANS_MAX)
        sh_say(st, "(%d more)\n", n - SHELL_CHANS_MAX);
    sh_say(st, "total: %d channels, %llu messages queued\n", n, (unsigned long long)queued);
}

/* Find a task by name (the lowest id) or by id; 0 if there is none. */
static uint32_t find_task(os_ctx_t *ctx, shell_state_t *st, const char *what, char *name,
                          size_t len)
{
    int n = os_task_list(ctx, st->tasks, SHELL_TASKS_MAX);
    bool numeric = what[0] != 0;
    for (const char *p = what; *p; p++) {
        if (*p < '0' || *p > '9')
            numeric = false;
    }
    for (int i = 0; i < n && i < SHELL_TASKS_MAX; i++) {
        const os_task_info_t *t = &st->tasks[i];
        char id[12];
        snprintf(id, sizeof id, "%u", t->id);
        if (numeric ? strcmp(id, what) == 0 : strcmp(t->name, what) == 0) {
            snprintf(name, len, "%s", t->name);
            return t->id;
        }
    }
    return 0;
}

/* Recurse until the stack runs out; the frame's volatile array keeps it from being a loop. */
static unsigned recurse(volatile unsigned depth)
{
    volatile char frame[256];
    if (depth == 0xffffffffu)
        return 0; /* never: the stack ends long before */
    frame[depth % sizeof frame] = (char)depth;
    return recurse(depth + 1) + frame[0];
}

/* The null store must reach the hardware even in sanitizer builds: the platform, not UBSan,
 * is what is under test. */
__attribute__((no_sanitize("undefined"))) static void crash(os_ctx_t *ctx, shell_crash_t how)
{
    volatile int never = 0;
    int *volatile nowhere = NULL;

    switch (how) {
    case SHELL_CRASH_NULL:
        *(volatile int *)nowhere = 1; /* the platform turns the fault into a kill of this task */
        os_panic(ctx, "crash null: the store did not fault");
    case SHELL_CRASH_PANIC:
        os_panic(ctx, "crash requested");
    case SHELL_CRASH_STACK:
        os_panic(ctx, "crash stack: recursion ended at depth %u", recurse(0));
    default:
        OS_ASSERT(ctx, never == 1);
        break;
    }
}

/* Run one command line; leaves st->op set if it waits for an answer. */
static void run_line(os_ctx_t *ctx, shell_state_t *st, const char *line, size_t len)
{
    shell_cmd_t *c = &st->cmd;
    int err;

    switch (shell_parse(line, len, c)) {
    case SHELL_EMPTY:
        break;
    case SHELL_ERROR:
        sh_say(st, "%s\n", c->error);
        break;
    case SHELL_HELP: {
        size_t room = SHELL_OUT_MAX - st->out_len;
        size_t n = shell_help(st->out + st->out_len, room);
        st->out_len += n < room ? n : room - 1;
        break;
    }
    case SHELL_ECHO:
        strcpy(st->op_arg, c->arg);
        st->op_req = ++st->next_req;
        st->op_sent = false;
        sh_op_start(ctx, st, OP_ECHO, SHELL_OP_TIMEOUT_NS);
        if (st->echo.state == CONN_UP)
            echo_send(ctx, st);
        else if (st->echo.state == CONN_DOWN)
            sh_connect(ctx, st, &st->echo);
        break;
    case SHELL_NET:
    case SHELL_NETSTAT:
    case SHELL_PING:
    case SHELL_FETCH:
        netcmd_start(ctx, st, c);
        break;
    case SHELL_LS:
    case SHELL_CAT:
    case SHELL_WRITE:
    case SHELL_APPEND:
    case SHELL_MKDIR:
    case SHELL_RM:
    case SHELL_RMDIR:
    case SHELL_MV:
    case SHELL_LN:
    case SHELL_STAT:
    case SHELL_DF:
    case SHELL_SYNC:
    case SHELL_MOUNT:
    case SHELL_CD:
    case SHELL_PWD:
        fscmd_start(ctx, st, c);
        break;
    case SHELL_PS:
        print_ps(ctx, st);
        break;
    case SHELL_TOP:
        top_start(ctx, st, c);
        break;
    case SHELL_HISTORY:
        tty_history(ctx, st, c->count);
        break;
    case SHELL_CLEAR: {
        static const char clear[] = "\x1b[H\x1b[2J";
        tty_control(ctx, st, clear, sizeof clear - 1);
        break;
    }
    case SHELL_UPTIME: {
        uint64_t ns = os_clock_now(ctx);
        sh_say(st, "up %llu.%06llus\n", (unsigned long long)(ns / 1000000000u),
               (unsigned long long)(ns % 1000000000u / 1000u));
        break;
    }
    case SHELL_IPC:
        print_ipc(ctx, st);
        break;
    case SHELL_SPAWN: {
        init_spawn_t m;
        memset(&m, 0, sizeof m);
        m.req = st->op_req = ++st->next_req;
        strcpy(m.program, c->arg);
        strcpy(st->op_arg, c->arg);
        if ((err = init_spawn_send(ctx, init_channel(ctx), &m)) < 0)
            sh_say(st, "shell: spawn %s: %s\n", c->arg, os_strerror(err));
        else
            sh_op_start(ctx, st, OP_SPAWN, SHELL_OP_TIMEOUT_NS);
        break;
    }
    case SHELL_KILL: {
        init_kill_t m;
        m.task = find_task(ctx, st, c->arg, st->op_arg, sizeof st->op_arg);
        if (m.task == 0) {
            sh_say(st, "shell: kill %s: no such task\n", c->arg);
            break;
        }
        m.req = st->op_req = ++st->next_req;
        st->op_task = m.task;
        if ((err = init_kill_send(ctx, init_channel(ctx), &m)) < 0)
            sh_say(st, "shell: kill %s: %s\n", c->arg, os_strerror(err));
        else
            sh_op_start(ctx, st, OP_KILL, SHELL_OP_TIMEOUT_NS);
        break;
    }
    case SHELL_SHUTDOWN:
        sh_say(st, "shutting down\n");
        st->op_status = c->status;
        if (st->fs.state == CONN_UP)
            fscmd_sync_then_shutdown(ctx, st); /* what the files hold reaches the disk first */
        else
            sh_shutdown_flush(ctx, st);
        break;
    case SHELL_CRASH:
        sh_flush(ctx, st);
        crash(ctx, c->crash);
        break;
    }
}

void sh_shutdown_flush(os_ctx_t *ctx, shell_state_t *st)
{
    st->op_req = ++st->next_req;
    st->flush_wanted = true;
    sh_op_start(ctx, st, OP_FLUSH, SHELL_SHUTDOWN_TIMEOUT_NS);
}

static void shutdown_now(os_ctx_t *ctx, shell_state_t *st)
{
    init_shutdown_t m = {++st->next_req, st->op_status};
    st->op = OP_SHUTDOWN;
    os_timer_cancel(ctx, st->timer);
    int err = init_shutdown_send(ctx, init_channel(ctx), &m);
    if (err < 0) {
        sh_say(st, "shell: shutdown: %s\n", os_strerror(err));
        sh_op_done(ctx, st);
    }
}

/* Ask the console for the next input item, once nothing runs and nothing waits. Pulling one
 * line at a time keeps the rest with the console (and, past its buffer, in the kernel and at
 * the platform), so piped input is never dropped and a crash loses only the line it ran. */
static void request_input(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->reading || st->op != OP_NONE || st->qcount > 0 || st->console.state != CONN_UP ||
        st->out_blocked)
        return;
    console_read_t r = {1};
    int err = console_read_send(ctx, st->console.chan, &r);
    if (err == 0)
        st->reading = true;
    else if (err == OS_EFULL)
        st->out_blocked = true; /* asked again on WRITABLE */
    else
        sh_conn_lost(ctx, st, &st->console);
}

/* Run queued input until a command has to wait. */
static void run_queue(os_ctx_t *ctx, shell_state_t *st)
{
    while (st->op == OP_NONE && st->qcount > 0) {
        input_t *in = &st->queue[st->qhead];
        st->qhead = (st->qhead + 1) % SHELL_QUEUE_MAX;
        st->qcount--;
        if (in->type == console_msg_line) {
            run_line(ctx, st, in->text, in->len);
        } else if (in->type == console_msg_overlong) {
            sh_say(st, "shell: line too long (%u bytes, limit %d)\n", in->len, SHELL_LINE_MAX);
        } else {
            /* end of input: as `shutdown 0` */
            run_line(ctx, st, "shutdown", 8);
        }
        if (st->op == OP_NONE)
            sh_say(st, SHELL_PROMPT);
    }
    if (st->op == OP_FLUSH || st->op == OP_NONE || st->op == OP_TOP)
        sh_flush(ctx, st);
    request_input(ctx, st);
}

/* ---- events --------------------------------------------------------------------------- */

static void on_init_message(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    union {
        init_connected_t conn;
        init_reply_t reply;
    } m;

    if (ev->type == init_msg_connected && init_connected_decode(ev, &m.conn) == 0) {
        conn_t *c = m.conn.req == st->console.req ? &st->console
                    : m.conn.req == st->echo.req  ? &st->echo
                    : m.conn.req == st->net.req   ? &st->net
                    : m.conn.req == st->tcp.req   ? &st->tcp
                    : m.conn.req == st->fs.req    ? &st->fs
                                                  : NULL;
        if (!c || c->state != CONN_CONNECTING) {
            os_handle_close(ctx, m.conn.chan);
            return;
        }
        c->chan = m.conn.chan;
        c->state = CONN_UP;
        if (c == &st->console) {
            st->out_blocked = false;
            sh_flush(ctx, st);
            request_input(ctx, st);
        } else if (c == &st->echo && st->op == OP_ECHO && !st->op_sent) {
            echo_send(ctx, st);
        } else if (c == &st->net || c == &st->tcp) {
            netcmd_connected(ctx, st, c);
        } else if (c == &st->fs) {
            fscmd_connected(ctx, st);
            complete_fs_connected(ctx, st);
        }
        return;
    }
    if (ev->type != init_msg_reply || init_reply_decode(ev, &m.reply) < 0) {
        iface_discard(ctx, ev); /* init.error or garbage: nothing we can do */
        return;
    }
    const init_reply_t *r = &m.reply;
    if (r->req == st->console.req && st->console.state == CONN_CONNECTING) {
        st->console.state = CONN_DOWN;
        os_log(ctx, "cannot reach the console: %s", os_strerror(r->status));
    } else if (r->req == st->echo.req && st->echo.state == CONN_CONNECTING) {
        st->echo.state = CONN_DOWN;
        if (st->op == OP_ECHO) {
            sh_say(st, "shell: echo: %s\n", os_strerror(r->status));
            sh_op_done(ctx, st);
        }
    } else if (r->req == st->net.req && st->net.state == CONN_CONNECTING) {
        st->net.state = CONN_DOWN;
        netcmd_refused(ctx, st, &st->net, r->status);
    } else if (r->req == st->tcp.req && st->tcp.state == CONN_CONNECTING) {
        st->tcp.state = CONN_DOWN;
        netcmd_refused(ctx, st, &st->tcp, r->status);
    } else if (r->req == st->fs.req && st->fs.state == CONN_CONNECTING) {
        st->fs.state = CONN_DOWN;
        fscmd_refused(ctx, st, r->status);
    } else if (r->req == st->op_req && st->op == OP_SPAWN) {
        if (r->status == 0)
            sh_say(st, "spawned %s (task %u)\n", st->op_arg, r->value);
        else
            sh_say(st, "shell: spawn %s: %s\n", st->op_arg, os_strerror(r->status));
        sh_op_done(ctx, st);
    } else if (r->req == st->op_req && st->op == OP_KILL) {
        if (r->status == 0)
            sh_say(st, "killed %s (task %u)\n", st->op_arg, st->op_task);
        else
            sh_say(st, "shell: kill %s: %s\n", st->op_arg, os_strerror(r->status));
        sh_op_done(ctx, st);
    } else if (st->op == OP_SHUTDOWN && r->status < 0) {
        sh_say(st, "shell: shutdown: %s\n", os_strerror(r->status));
        sh_op_done(ctx, st);
    }
}

static void on_console_message(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    union {
        console_line_t line;
        console_overlong_t overlong;
        console_eof_t eof;
        console_flushed_t flushed;
        console_terminal_t terminal;
        console_interrupt_t interrupt;
        console_complete_t complete;
        console_key_t key;
    } m;
    input_t *in = NULL;

    if (ev->type == console_msg_flushed && console_flushed_decode(ev, &m.flushed) == 0) {
        if (st->op == OP_FLUSH && m.flushed.token == st->op_req)
            shutdown_now(ctx, st);
        return;
    }
    if (ev->type == console_msg_terminal && console_terminal_decode(ev, &m.terminal) == 0) {
        st->terminal = true;
        st->cols = m.terminal.cols;
        st->rows = m.terminal.rows;
        return;
    }
    if (ev->type == console_msg_interrupt && console_interrupt_decode(ev, &m.interrupt) == 0) {
        tty_interrupt(ctx, st);
        return;
    }
    if (ev->type == console_msg_complete && console_complete_decode(ev, &m.complete) == 0) {
        tty_complete(ctx, st, &m.complete);
        return;
    }
    if (ev->type == console_msg_key && console_key_decode(ev, &m.key) == 0) {
        top_on_keys(ctx, st, m.key.data, m.key.data_len);
        return;
    }
    if (ev->type == console_msg_line || ev->type == console_msg_overlong ||
        ev->type == console_msg_eof) {
        if (st->qcount == SHELL_QUEUE_MAX) {
            /* NEVER with a console that sends only what we read: one that floods us is told */
            sh_say(st, "shell: console sent input nobody asked for; line dropped\n");
            sh_flush(ctx, st);
            return;
        }
        in = &st->queue[(st->qhead + st->qcount) % SHELL_QUEUE_MAX];
    }
    if (ev->type == console_msg_line && console_line_decode(ev, &m.line) == 0) {
        in->type = console_msg_line;
        in->len = (uint32_t)strlen(m.line.text);
        memcpy(in->text, m.line.text, in->len + 1);
    } else if (ev->type == console_msg_overlong && console_overlong_decode(ev, &m.overlong) == 0) {
        in->type = console_msg_overlong;
        in->len = m.overlong.length;
    } else if (ev->type == console_msg_eof && console_eof_decode(ev, &m.eof) == 0) {
        in->type = console_msg_eof;
    } else {
        iface_discard(ctx, ev); /* console.error or garbage */
        return;
    }
    if (in->type != console_msg_eof)
        st->reading = false;
    st->qcount++;
    run_queue(ctx, st);
}

static void on_echo_message(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    echo_reply_t m;

    if (echo_reply_decode(ev, &m) == 0) {
        if (st->op == OP_ECHO && m.id == st->op_req) {
            sh_say(st, "%s\n", m.text);
            sh_op_done(ctx, st);
        }
        return;
    }
    iface_discard(ctx, ev);
    if (st->op == OP_ECHO && st->op_sent) {
        sh_say(st, "shell: echo: the server answered with an error\n");
        sh_op_done(ctx, st);
    }
}

static void on_timer(os_ctx_t *ctx, shell_state_t *st)
{
    switch (st->op) {
    case OP_ECHO:
        sh_say(st, "shell: echo: %s\n", os_strerror(OS_ETIMEDOUT));
        sh_op_done(ctx, st);
        break;
    case OP_NET:
    case OP_NETSTAT:
    case OP_PING:
    case OP_FETCH:
        netcmd_on_timer(ctx, st);
        break;
    case OP_FS:
        fscmd_on_timer(ctx, st);
        break;
    case OP_SPAWN:
    case OP_KILL:
        sh_say(st, "shell: %s %s: %s\n", st->op == OP_SPAWN ? "spawn" : "kill", st->op_arg,
               os_strerror(OS_ETIMEDOUT));
        sh_op_done(ctx, st);
        break;
    case OP_FLUSH:
        shutdown_now(ctx, st); /* the console is gone: shut down without it */
        break;
    case OP_TOP:
        top_on_timer(ctx, st);
        break;
    case OP_NONE:
        if (st->cp.busy)
            complete_fs_abort(ctx, st); /* Tab on a path: fs did not answer in time */
        break;
    default:
        break;
    }
}

static void shell_start(os_ctx_t *ctx)
{
    shell_state_t *st = os_state(ctx);
    st->console.iface = &console_iface;
    st->echo.iface = &echo_iface;
    st->net.iface = &net_iface; /* connected on the first network command */
    st->tcp.iface = &tcp_iface; /* on the first fetch */
    st->nc.chan = OS_HANDLE_NONE;
    fscmd_init(st);
    int err = os_timer_create(ctx, &st->timer);
    if (err < 0)
        os_panic(ctx, "no timer: %s", os_strerror(err));
    sh_connect(ctx, st, &st->console);
    sh_connect(ctx, st, &st->echo);
    sh_say(st, SHELL_PROMPT); /* printed once the console is connected */
}

static void shell_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    shell_state_t *st = os_state(ctx);
    os_handle_t h = ev->handle;
    bool is_console = st->console.state == CONN_UP && h == st->console.chan;
    bool is_echo = st->echo.state == CONN_UP && h == st->echo.chan;
    bool is_net = st->net.state == CONN_UP && h == st->net.chan;
    bool is_tcp = st->tcp.state == CONN_UP && h == st->tcp.chan;
    bool is_fetch = st->nc.chan != OS_HANDLE_NONE && h == st->nc.chan;
    bool is_fs = st->fs.state == CONN_UP && h == st->fs.chan;
    bool is_file = fscmd_owns(st, h);
    bool is_cdir = complete_fs_owns(st, h);

    switch (ev->kind) {
    case OS_EV_MESSAGE:
        if (h == init_channel(ctx))
            on_init_message(ctx, st, ev);
        else if (is_console)
            on_console_message(ctx, st, ev);
        else if (is_echo)
            on_echo_message(ctx, st, ev);
        else if (is_net)
            netcmd_on_net(ctx, st, ev);
        else if (is_tcp)
            netcmd_on_tcp(ctx, st, ev);
        else if (is_fetch)
            netcmd_on_chan(ctx, st, ev);
        else if (is_fs && st->cp.busy)
            complete_fs_on_answer(ctx, st, ev); /* no file command runs while Tab waits */
        else if (is_fs)
            fscmd_on_fs(ctx, st, ev);
        else if (is_cdir)
            complete_fs_on_answer(ctx, st, ev);
        else if (is_file)
            fscmd_on_file(ctx, st, ev);
        else
            iface_discard(ctx, ev);
        break;
    case OS_EV_PEER_CLOSED:
        if (is_console)
            sh_conn_lost(ctx, st, &st->console);
        else if (is_echo)
            sh_conn_lost(ctx, st, &st->echo);
        else if (is_net || is_tcp)
            sh_conn_lost(ctx, st, is_net ? &st->net : &st->tcp);
        if (is_echo && st->op == OP_ECHO)
            st->op_sent = false; /* asked again once reconnected */
        if (is_net || is_tcp)
            netcmd_lost(ctx, st, is_net ? &st->net : &st->tcp);
        if (is_fetch)
            netcmd_on_chan(ctx, st, ev);
        if (is_fs) {
            sh_conn_lost(ctx, st, &st->fs);
            fscmd_lost(ctx, st);
        }
        if (is_file)
            fscmd_on_file(ctx, st, ev);
        if (is_cdir || (is_fs && st->cp.busy))
            complete_fs_abort(ctx, st);
        break;
    case OS_EV_WRITABLE:
        if (is_console) {
            st->out_blocked = false;
            sh_flush(ctx, st);
            request_input(ctx, st);
        } else if (is_fetch) {
            netcmd_on_chan(ctx, st, ev);
        }
        break;
    case OS_EV_TIMER:
        if (h == st->timer)
            on_timer(ctx, st);
        break;
    default:
        break;
    }
    if (netcmd_is(st->op) || st->op == OP_FS || st->op == OP_TOP)
        sh_flush(ctx, st); /* ping's lines, fetch's headers, cat's pieces, top's tables */
    if (st->op == OP_FS)
        fscmd_room(ctx, st); /* cat and ls go on once the console took what they printed */
}

const os_program_t orrery_shell = {"shell", sizeof(shell_state_t), shell_start, shell_on_event};
