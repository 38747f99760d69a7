/* fscmd.c — the shell's file commands: ls, cat, write, append, mkdir, rm, rmdir, mv, ln, stat,
 * df, sync, mount, cd and pwd (a client of the fs interface, iface/fs.h). */
#include "shell.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * One command runs at a time, as a small state machine: `step` says which request is out
 * and `wait` on which channel its answer comes. Requests on the control channel (open,
 * mkdir, unlink, rmdir, rename, symlink, statfs, sync) go out once init has connected us to
 * "fs"; a file's requests (read, write, stat, readdir) go on the channel `open` gave. ls -l
 * opens each entry in turn (without following a symlink) for its attributes and link text.
 * cat and ls ask for the next piece only when the console buffer has room for it, so a
 * long file streams at the console's pace and nothing is cut.
 */

enum {
    STEP_OPEN = 1,
    STEP_READ,
    STEP_WRITE,
    STEP_STAT,
    STEP_READDIR,
    STEP_READLINK,
    STEP_CONTROL, /* mkdir, unlink, rmdir, rename, symlink, sync: a reply */
    STEP_STATFS,
    STEP_E_OPEN, /* ls -l: the entry */
    STEP_E_STAT,
    STEP_E_LINK,
};

/* Output room a step needs before its answer is asked for: a data message, a page of names
 * or an ls -l line with a link text shown up to FS_PATH_MAX bytes. */
#define FSC_ROOM (FS_DATA_MAX + 2048)

static const char *cmd_name(shell_kind_t k)
{
    switch (k) {
    case SHELL_LS:
        return "ls";
    case SHELL_CAT:
        return "cat";
    case SHELL_WRITE:
        return "write";
    case SHELL_APPEND:
        return "append";
    case SHELL_MKDIR:
        return "mkdir";
    case SHELL_RM:
        return "rm";
    case SHELL_RMDIR:
        return "rmdir";
    case SHELL_MV:
        return "mv";
    case SHELL_LN:
        return "ln";
    case SHELL_STAT:
        return "stat";
    case SHELL_DF:
        return "df";
    case SHELL_SYNC:
        return "sync";
    case SHELL_MOUNT:
        return "mount";
    case SHELL_CD:
        return "cd";
    case SHELL_SHUTDOWN:
        return "shutdown: sync";
    default:
        return "pwd";
    }
}

static bool changes(shell_kind_t k)
{
    return k == SHELL_WRITE || k == SHELL_APPEND || k == SHELL_MKDIR || k == SHELL_RM ||
           k == SHELL_RMDIR || k == SHELL_MV || k == SHELL_LN;
}

/* ---- ending ----------------------------------------------------------------------------- */

static void close_handle(os_ctx_t *ctx, os_handle_t *h)
{
    if (*h != OS_HANDLE_NONE)
        os_handle_close(ctx, *h);
    *h = OS_HANDLE_NONE;
}

/* The command is over: close its file channels, prompt (unless fscmd_start is still on the
 * stack: run_line's caller prompts then). */
static void finish(os_ctx_t *ctx, shell_state_t *st)
{
    fscmd_t *fc = &st->fc;
    close_handle(ctx, &fc->entry);
    close_handle(ctx, &fc->file);
    fc->step = 0;
    if (fc->kind == SHELL_SHUTDOWN) {
        sh_shutdown_flush(ctx, st); /* synced or not: the shutdown goes on */
        return;
    }
    if (fc->starting) {
        st->op = OP_NONE;
        os_timer_cancel(ctx, st->timer);
        return;
    }
    sh_op_done(ctx, st);
}

/* End the command with one line: "shell: cat: /a/b: no such entry". */
static void fail(os_ctx_t *ctx, shell_state_t *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(os_ctx_t *ctx, shell_state_t *st, const char *fmt, ...)
{
    char msg[FS_PATH_MAX * 2 + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (st->fc.kind == SHELL_CAT && !st->fc.last_nl && st->fc.off > 0)
        sh_say(st, "\n"); /* the error starts a line of its own */
    sh_say(st, "shell: %s: %s\n", cmd_name(st->fc.kind), msg);
    finish(ctx, st);
}

/* The path the command failed on: both of mv's, the symlink's for ln. */
static void fail_status(os_ctx_t *ctx, shell_state_t *st, int status)
{
    fscmd_t *fc = &st->fc;
    const char *hint = "";
    if (status == OS_EACCES && changes(fc->kind))
        hint = " (this shell may only read: reach=fs:ro in the manifest)";
    if (fc->kind == SHELL_MV)
        fail(ctx, st, "%s -> %s: %s", fc->path, fc->path2, os_strerror(status));
    else if (fc->kind == SHELL_DF || fc->kind == SHELL_SYNC || fc->kind == SHELL_MOUNT ||
             fc->kind == SHELL_SHUTDOWN)
        fail(ctx, st, "%s", os_strerror(status));
    else
        fail(ctx, st, "%s: %s%s", fc->path, os_strerror(status), hint);
}

/* ---- paths ------------------------------------------------------------------------------ */

/* arg relative to the current directory (absolute as given); false when too long. */
static bool join(const shell_state_t *st, const char *arg, char *out)
{
    int n;
    if (arg[0] == '/')
        n = snprintf(out, FS_PATH_MAX + 1, "%s", arg);
    else if (arg[0] == 0)
        n = snprintf(out, FS_PATH_MAX + 1, "%s", st->cwd);
    else
        n = snprintf(out, FS_PATH_MAX + 1, "%s%s%s", st->cwd, strcmp(st->cwd, "/") ? "/" : "", arg);
    return n >= 0 && n <= FS_PATH_MAX;
}

/* cd's directory by name: empty parts and "." dropped, ".." the parent (by name, as a
 * shell's logical current directory: not through a symlink's target). */
static void normalize(const char *in, char *out)
{
    size_t len = 0;
    out[0] = 0;
    while (*in) {
        while (*in == '/')
            in++;
        const char *part = in;
        while (*in && *in != '/')
            in++;
        size_t n = (size_t)(in - part);
        if (n == 0 || (n == 1 && part[0] == '.'))
            continue;
        if (n == 2 && part[0] == '.' && part[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the '/' before it */
            out[len] = 0;
            continue;
        }
        out[len++] = '/';
        memcpy(out + len, part, n);
        len += n;
        out[len] = 0;
    }
    if (len == 0)
        strcpy(out, "/");
}

/* ---- sending ---------------------------------------------------------------------------- */

static void restart_timer(os_ctx_t *ctx, shell_state_t *st)
{
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + SHELL_FS_TIMEOUT_NS);
}

/* A send on the control channel: a closed channel is asked for again and the request goes
 * out when it is back (FW_CONNECT); any other error ends the command. */
static void sent_control(os_ctx_t *ctx, shell_state_t *st, int err, fs_wait_t wait)
{
    if (err == 0) {
        st->fc.wait = wait;
        restart_timer(ctx, st);
    } else if (err == OS_EPEER) {
        st->fc.wait = FW_CONNECT;
        sh_conn_lost(ctx, st, &st->fs);
    } else {
        fail(ctx, st, "sending to the fs server: %s", os_strerror(err));
    }
}

/* A send on a file channel: the server closing it ends the command. */
static void sent_file(os_ctx_t *ctx, shell_state_t *st, int err, fs_wait_t wait)
{
    if (err == 0) {
        st->fc.wait = wait;
        restart_timer(ctx, st);
    } else if (err == OS_EPEER) {
        fail(ctx, st, "the fs server went away");
    } else {
        fail(ctx, st, "sending to the fs server: %s", os_strerror(err));
    }
}

static void send_open(os_ctx_t *ctx, shell_state_t *st, uint32_t step, const char *path,
                      uint32_t flags, uint32_t mode)
{
    fscmd_t *fc = &st->fc;
    fs_open_t *m = &fc->tx.open;
    char copy[FS_PATH_MAX + 1];
    snprintf(copy, sizeof copy, "%s", path); /* path may be in fc->tx */
    fc->step = step;
    fc->req = ++st->next_req;
    m->req = fc->req;
    m->flags = flags;
    m->mode = mode;
    snprintf(m->path, sizeof m->path, "%s", copy);
    sent_control(ctx, st, fs_open_send(ctx, st->fs.chan, m),
                 step == STEP_E_OPEN ? FW_ENTRY : FW_CONTROL);
}

/* The command's first request, once the control channel is up. */
static void begin(os_ctx_t *ctx, shell_state_t *st)
{
    fscmd_t *fc = &st->fc;
    int err;

    switch (fc->kind) {
    case SHELL_LS:
    case SHELL_CAT:
    case SHELL_CD:
        send_open(ctx, st, STEP_OPEN, fc->path, FS_O_READ, 0);
        return;
    case SHELL_STAT:
        send_open(ctx, st, STEP_OPEN, fc->path, FS_O_READ | FS_O_NOFOLLOW, 0);
        return;
    case SHELL_WRITE:
        send_open(ctx, st, STEP_OPEN, fc->path, FS_O_WRITE | FS_O_CREAT | FS_O_TRUNC, 0644);
        return;
    case SHELL_APPEND:
        send_open(ctx, st, STEP_OPEN, fc->path, FS_O_WRITE | FS_O_CREAT | FS_O_APPEND, 0644);
        return;
    default:
        break;
    }
    fc->req = ++st->next_req;
    fc->step = STEP_CONTROL;
    switch (fc->kind) {
    case SHELL_MKDIR: {
        fs_mkdir_t *m = &fc->tx.mkdir;
        m->req = fc->req;
        m->mode = 0755;
        snprintf(m->path, sizeof m->path, "%s", fc->path);
        err = fs_mkdir_send(ctx, st->fs.chan, m);
        break;
    }
    case SHELL_RM: {
        fs_unlink_t *m = &fc->tx.unlink;
        m->req = fc->req;
        snprintf(m->path, sizeof m->path, "%s", fc->path);
        err = fs_unlink_send(ctx, st->fs.chan, m);
        break;
    }
    case SHELL_RMDIR: {
        fs_rmdir_t *m = &fc->tx.rmdir;
        m->req = fc->req;
        snprintf(m->path, sizeof m->path, "%s", fc->path);
        err = fs_rmdir_send(ctx, st->fs.chan, m);
        break;
    }
    case SHELL_MV: {
        fs_rename_t *m = &fc->tx.rename;
        m->req = fc->req;
        snprintf(m->from, sizeof m->from, "%s", fc->path);
        snprintf(m->to, sizeof m->to, "%s", fc->path2);
        err = fs_rename_send(ctx, st->fs.chan, m);
        break;
    }
    case SHELL_LN: {
        fs_symlink_t *m = &fc->tx.symlink;
        m->req = fc->req;
        memcpy(m->target, fc->text, strlen(fc->text) + 1); /* fscmd_start checked its length */
        snprintf(m->path, sizeof m->path, "%s", fc->path);
        err = fs_symlink_send(ctx, st->fs.chan, m);
        break;
    }
    case SHELL_SYNC:
    case SHELL_SHUTDOWN: {
        fs_sync_t m = {fc->req};
        err = fs_sync_send(ctx, st->fs.chan, &m);
        break;
    }
    default: { /* df, mount */
        fs_statfs_t m = {fc->req};
        fc->step = STEP_STATFS;
        err = fs_statfs_send(ctx, st->fs.chan, &m);
        break;
    }
    }
    sent_control(ctx, st, err, FW_CONTROL);
}

static void send_read(os_ctx_t *ctx, shell_state_t *st, os_handle_t chan, uint32_t step,
                      uint64_t off)
{
    fscmd_t *fc = &st->fc;
    fc->step = step;
    fc->req = ++st->next_req;
    fs_read_t m = {.req = fc->req, .off = off, .len = FS_DATA_MAX};
    sent_file(ctx, st, fs_read_send(ctx, chan, &m), step == STEP_E_LINK ? FW_ENTRY : FW_FILE);
}

static void send_stat(os_ctx_t *ctx, shell_state_t *st, os_handle_t chan, uint32_t step)
{
    fscmd_t *fc = &st->fc;
    fc->step = step;
    fc->req = ++st->next_req;
    fs_stat_t m = {fc->req};
    sent_file(ctx, st, fs_stat_send(ctx, chan, &m), step == STEP_E_STAT ? FW_ENTRY : FW_FILE);
}

static bool has_room(const shell_state_t *st)
{
    return SHELL_OUT_MAX - st->out_len >= FSC_ROOM;
}

/* Wait for the console before asking for more output; no deadline while the console is
 * what we wait for. */
static void wait_room(os_ctx_t *ctx, shell_state_t *st)
{
    st->fc.wait = FW_ROOM;
    os_timer_cancel(ctx, st->timer);
}

static void cat_next(os_ctx_t *ctx, shell_state_t *st)
{
    if (!has_room(st))
        wait_room(ctx, st);
    else
        send_read(ctx, st, st->fc.file, STEP_READ, st->fc.off);
}

/* ---- printing --------------------------------------------------------------------------- */

/* Bytes for the terminal: printable ASCII, newline and tab as they are, any other byte '?'
 * (as fetch shows headers): a file's bytes never drive the terminal. */
static void put_bytes(shell_state_t *st, const uint8_t *p, size_t n, bool newlines)
{
    size_t room = SHELL_OUT_MAX - st->out_len;
    if (n >= room)
        n = room - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        bool keep = (c >= 0x20 && c < 0x7f) || c == '\t' || (newlines && c == '\n');
        st->out[st->out_len++] = keep ? (char)c : '?';
    }
}

static void put_name(shell_state_t *st, const char *s)
{
    put_bytes(st, (const uint8_t *)s, strlen(s), false);
}

static char type_char(unsigned type)
{
    switch (type) {
    case FS_T_DIR:
        return 'd';
    case FS_T_REG:
        return '-';
    case FS_T_LNK:
        return 'l';
    case FS_T_CHR:
        return 'c';
    case FS_T_BLK:
        return 'b';
    case FS_T_FIFO:
        return 'p';
    case FS_T_SOCK:
        return 's';
    default:
        return '?';
    }
}

static const char *type_name(unsigned type)
{
    switch (type) {
    case FS_T_DIR:
        return "directory";
    case FS_T_REG:
        return "regular file";
    case FS_T_LNK:
        return "symbolic link";
    case FS_T_CHR:
        return "character device";
    case FS_T_BLK:
        return "block device";
    case FS_T_FIFO:
        return "fifo";
    case FS_T_SOCK:
        return "socket";
    default:
        return "unknown";
    }
}

/* "drwxr-xr-x" from an inode mode. */
static void mode_string(uint16_t mode, char out[11])
{
    static const char rwx[] = "rwxrwxrwx";
    out[0] = type_char(mode >> 12);
    for (int i = 0; i < 9; i++)
        out[1 + i] = mode & (0400 >> i) ? rwx[i] : '-';
    if (mode & 04000)
        out[3] = mode & 0100 ? 's' : 'S';
    if (mode & 02000)
        out[6] = mode & 010 ? 's' : 'S';
    if (mode & 01000)
        out[9] = mode & 01 ? 't' : 'T';
    out[10] = 0;
}

/* "2026-12-02 08:00:00" (UTC) from seconds since 1970 (days to a civil date: H. Hinnant). */
static void time_string(uint32_t t, char *out, size_t len)
{
    uint32_t days = t / 86400u, secs = t % 86400u;
    long z = (long)days + 719468;
    long era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = (long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, len, "%04ld-%02u-%02u %02u:%02u:%02u", y, m, d, secs / 3600u, secs / 60u % 60u,
             secs % 60u);
}

/* One ls -l line; target is the link text (NULL: none), why an error instead of attributes. */
static void long_row(shell_state_t *st, const fs_attr_t *a, const char *name, const uint8_t *target,
                     size_t target_len, const char *why)
{
    char mode[11], when[48];
    if (why) {
        sh_say(st, "%c?????????   ?        ? ?                   ", type_char(st->fc.etype));
        put_name(st, name);
        sh_say(st, " (%s)\n", why);
        return;
    }
    mode_string(a->mode, mode);
    time_string(a->mtime, when, sizeof when);
    when[16] = 0; /* minutes are enough in a listing */
    sh_say(st, "%s %3u %8llu %s  ", mode, (unsigned)a->links, (unsigned long long)a->size, when);
    put_name(st, name);
    if (target) {
        sh_say(st, " -> ");
        put_bytes(st, target, target_len < FS_PATH_MAX ? target_len : FS_PATH_MAX, false);
    }
    sh_say(st, "\n");
}

static void print_stat(shell_state_t *st, const uint8_t *target, size_t target_len)
{
    const fs_attr_t *a = &st->fc.attr;
    char mode[11], when[48];
    mode_string(a->mode, mode);
    time_string(a->mtime, when, sizeof when);
    sh_say(st, "  file: ");
    put_name(st, st->fc.path);
    if (target) {
        sh_say(st, " -> ");
        put_bytes(st, target, target_len, false);
    }
    sh_say(st,
           "\n  type: %s\n inode: %u  links: %u  size: %llu\n  mode: %04o (%s)  uid: %u  "
           "gid: %u\nmodify: %s UTC (%u)\n",
           type_name(a->mode >> 12), a->ino, (unsigned)a->links, (unsigned long long)a->size,
           a->mode & 07777u, mode, a->uid, a->gid, when, a->mtime);
}

static void print_fsinfo(shell_state_t *st, const fs_fsinfo_t *m)
{
    if (st->fc.kind == SHELL_DF) {
        uint64_t used = m->blocks >= m->free_blocks ? m->blocks - m->free_blocks : 0;
        unsigned pct = m->blocks ? (unsigned)((used * 100 + m->blocks - 1) / m->blocks) : 0;
        uint64_t kb = m->block_size / 1024u;
        sh_say(st, "FILESYSTEM  BLOCK-SIZE  BLOCKS    USED      FREE      USE%%  INODES  IFREE\n");
        sh_say(st, "blk0 ext2   %-10u  %-9llu %-9llu %-9llu %3u%%  %-7u %u\n", m->block_size,
               (unsigned long long)m->blocks, (unsigned long long)used,
               (unsigned long long)m->free_blocks, pct, m->inodes, m->free_inodes);
        sh_say(st, "size %llu KiB, used %llu KiB, free %llu KiB\n",
               (unsigned long long)(m->blocks * kb), (unsigned long long)(used * kb),
               (unsigned long long)(m->free_blocks * kb));
        return;
    }
    sh_say(st, "blk0 on / type ext2 (%s", m->flags & FS_INFO_RO ? "ro" : "rw");
    if (m->note[0]) {
        const char *note = m->note;
        if (strncmp(note, "read-only: ", 11) == 0)
            note += 11; /* "(ro: the disk is read-only)", not "(ro: read-only: ...)" */
        sh_say(st, ": ");
        put_name(st, note);
    }
    sh_say(st, ")\n");
    if (m->flags & FS_INFO_RO)
        sh_say(st, "this shell may only read: the volume is read-only\n");
    else if (m->flags & FS_INFO_CLIENT_RO)
        sh_say(st, "this shell may only read: its manifest line grants reach=fs:ro\n");
    else
        sh_say(st, "this shell may read and write\n");
}

/* ---- ls --------------------------------------------------------------------------------- */

static void ls_readdir(os_ctx_t *ctx, shell_state_t *st)
{
    fscmd_t *fc = &st->fc;
    fc->step = STEP_READDIR;
    fc->req = ++st->next_req;
    fs_readdir_t m = {.req = fc->req, .cookie = fc->off};
    sent_file(ctx, st, fs_readdir_send(ctx, fc->file, &m), FW_FILE);
}

/* List the page from page_at: names at once; for -l, one entry at a time (its answers come
 * back here). At the page's end, the next page once the console has room. */
static void ls_continue(os_ctx_t *ctx, shell_state_t *st)
{
    fscmd_t *fc = &st->fc;
    while (fc->page_at < fc->page_len) {
        if (fc->long_list && !has_room(st)) {
            wait_room(ctx, st);
            return;
        }
        const uint8_t *r = fc->page + fc->page_at;
        if (fc->page_len - fc->page_at < 6 || fc->page_len - fc->page_at < 6u + r[5]) {
            fail(ctx, st, "%s: a malformed directory page from the fs server", fc->path);
            return;
        }
        fc->etype = r[4];
        memcpy(fc->name, r + 6, r[5]);
        fc->name[r[5]] = 0;
        fc->page_at += 6u + r[5];
        if (strcmp(fc->name, ".") == 0 || strcmp(fc->name, "..") == 0)
            continue;
        fc->entries++;
        if (!fc->long_list) {
            put_name(st, fc->name);
            sh_say(st, "%s\n", fc->etype == FS_T_DIR ? "/" : "");
            continue;
        }
        char path[FS_PATH_MAX + 1];
        int n = snprintf(path, sizeof path, "%s%s%s", fc->path,
                         fc->path[strlen(fc->path) - 1] == '/' ? "" : "/", fc->name);
        if (n < 0 || n > FS_PATH_MAX) {
            long_row(st, NULL, fc->name, NULL, 0, os_strerror(OS_ENAMETOOLONG));
            continue;
        }
        send_open(ctx, st, STEP_E_OPEN, path, FS_O_READ | FS_O_NOFOLLOW, 0);
        return;
    }
    if (!has_room(st))
        wait_room(ctx, st);
    else
        ls_readdir(ctx, st);
}

static void ls_page(os_ctx_t *ctx, shell_state_t *st, const fs_dirents_t *m)
{
    fscmd_t *fc = &st->fc;
    if (m->count == 0) {
        finish(ctx, st);
        return;
    }
    memcpy(fc->page, m->data, m->data_len);
    fc->page_len = m->data_len;
    fc->page_at = 0;
    fc->off = m->next;
    ls_continue(ctx, st);
}

/* ---- answers ---------------------------------------------------------------------------- */

/* opened: the file channel for the command, or ls -l's entry. */
static void on_opened(os_ctx_t *ctx, shell_state_t *st, const fs_opened_t *m)
{
    fscmd_t *fc = &st->fc;
    if (fc->step == STEP_E_OPEN) {
        fc->entry = m->chan;
        send_stat(ctx, st, fc->entry, STEP_E_STAT);
        return;
    }
    fc->file = m->chan;
    fc->type = m->type;
    switch (fc->kind) {
    case SHELL_CAT:
        if (m->type == FS_T_DIR) {
            fail_status(ctx, st, OS_EISDIR);
            return;
        }
        fc->last_nl = true;
        cat_next(ctx, st);
        return;
    case SHELL_LS:
        if (m->type == FS_T_DIR)
            ls_readdir(ctx, st);
        else if (fc->long_list)
            send_stat(ctx, st, fc->file, STEP_STAT);
        else {
            put_name(st, fc->path);
            sh_say(st, "\n");
            finish(ctx, st);
        }
        return;
    case SHELL_STAT:
        send_stat(ctx, st, fc->file, STEP_STAT);
        return;
    case SHELL_CD:
        if (m->type != FS_T_DIR) {
            fail_status(ctx, st, OS_ENOTDIR);
            return;
        }
        normalize(fc->path, st->cwd);
        finish(ctx, st);
        return;
    default: { /* write, append */
        if (fc->text_len == 0) {
            finish(ctx, st);
            return;
        }
        fc->step = STEP_WRITE;
        fc->req = ++st->next_req;
        fs_write_t *w = &fc->tx.write;
        w->req = fc->req;
        w->off = 0;
        w->data_len = fc->text_len;
        memcpy(w->data, fc->text, fc->text_len);
        sent_file(ctx, st, fs_write_send(ctx, fc->file, w), FW_FILE);
        return;
    }
    }
}

/* reply {req, status}: an error for any request, or the answer to a change. */
static void on_reply(os_ctx_t *ctx, shell_state_t *st, const fs_reply_t *m)
{
    fscmd_t *fc = &st->fc;
    if (fc->step >= STEP_E_OPEN && m->status < 0) {
        /* one entry of ls -l we cannot look at: say why on its line, go on */
        long_row(st, NULL, fc->name, NULL, 0, os_strerror(m->status));
        close_handle(ctx, &fc->entry);
        ls_continue(ctx, st);
        return;
    }
    if (m->status < 0) {
        fail_status(ctx, st, m->status);
        return;
    }
    if (fc->step == STEP_WRITE && (uint32_t)m->status != fc->text_len) {
        fail(ctx, st, "%s: the fs server wrote %d of %u bytes", fc->path, m->status, fc->text_len);
        return;
    }
    if (fc->step == STEP_WRITE || fc->step == STEP_CONTROL) {
        finish(ctx, st);
        return;
    }
    fail(ctx, st, "%s: the fs server answered with a bare reply", fc->path);
}

static void on_data(os_ctx_t *ctx, shell_state_t *st, const fs_data_t *m)
{
    fscmd_t *fc = &st->fc;
    if (fc->step == STEP_E_LINK) {
        long_row(st, &fc->attr, fc->name, m->data, m->data_len, NULL);
        close_handle(ctx, &fc->entry);
        ls_continue(ctx, st);
        return;
    }
    if (fc->step == STEP_READLINK) {
        print_stat(st, m->data, m->data_len);
        finish(ctx, st);
        return;
    }
    /* cat */
    if (m->data_len == 0) {
        if (!fc->last_nl)
            sh_say(st, "\n"); /* the prompt starts a line of its own */
        finish(ctx, st);
        return;
    }
    put_bytes(st, m->data, m->data_len, true);
    fc->last_nl = m->data[m->data_len - 1] == '\n';
    fc->off += m->data_len;
    cat_next(ctx, st);
}

static void on_attr(os_ctx_t *ctx, shell_state_t *st, const fs_attr_t *m)
{
    fscmd_t *fc = &st->fc;
    fc->attr = *m;
    bool link = (m->mode >> 12) == FS_T_LNK;
    if (fc->step == STEP_E_STAT) {
        if (link) {
            send_read(ctx, st, fc->entry, STEP_E_LINK, 0);
            return;
        }
        long_row(st, m, fc->name, NULL, 0, NULL);
        close_handle(ctx, &fc->entry);
        ls_continue(ctx, st);
        return;
    }
    if (fc->kind == SHELL_LS) { /* ls -l of a file */
        long_row(st, m, fc->path, NULL, 0, NULL);
        finish(ctx, st);
        return;
    }
    if (link) {
        send_read(ctx, st, fc->file, STEP_READLINK, 0);
        return;
    }
    print_stat(st, NULL, 0);
    finish(ctx, st);
}

/* A message answering fc->req, from the control channel or a file channel. */
static void on_answer(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    fscmd_t *fc = &st->fc;
    union fs_rx *m = &fc->rx;
    bool ours = st->op == OP_FS && fc->step != 0 && fc->wait != FW_ROOM && fc->wait != FW_CONNECT;

    if (ev->type == fs_msg_opened && fs_opened_decode(ev, &m->opened) == 0) {
        if (ours && m->opened.req == fc->req && (fc->step == STEP_OPEN || fc->step == STEP_E_OPEN))
            on_opened(ctx, st, &m->opened);
        else
            os_handle_close(ctx, m->opened.chan); /* an answer to a command that timed out */
        return;
    }
    if (ev->type == fs_msg_error && fs_error_decode(ev, &m->error) == 0) {
        if (ours)
            fail(ctx, st, "the fs server refused message %u: %s", m->error.type,
                 os_strerror(m->error.status));
        return;
    }
    if (ev->type == fs_msg_reply && fs_reply_decode(ev, &m->reply) == 0) {
        if (ours && m->reply.req == fc->req)
            on_reply(ctx, st, &m->reply);
        return;
    }
    if (ev->type == fs_msg_data && fs_data_decode(ev, &m->data) == 0) {
        if (ours && m->data.req == fc->req &&
            (fc->step == STEP_READ || fc->step == STEP_READLINK || fc->step == STEP_E_LINK))
            on_data(ctx, st, &m->data);
        return;
    }
    if (ev->type == fs_msg_attr && fs_attr_decode(ev, &m->attr) == 0) {
        if (ours && m->attr.req == fc->req && (fc->step == STEP_STAT || fc->step == STEP_E_STAT))
            on_attr(ctx, st, &m->attr);
        return;
    }
    if (ev->type == fs_msg_dirents && fs_dirents_decode(ev, &m->dirents) == 0) {
        if (ours && m->dirents.req == fc->req && fc->step == STEP_READDIR)
            ls_page(ctx, st, &m->dirents);
        return;
    }
    if (ev->type == fs_msg_fsinfo && fs_fsinfo_decode(ev, &m->fsinfo) == 0) {
        if (ours && m->fsinfo.req == fc->req && fc->step == STEP_STATFS) {
            print_fsinfo(st, &m->fsinfo);
            finish(ctx, st);
        }
        return;
    }
    iface_discard(ctx, ev); /* garbage: closes any handles it carried */
    if (ours)
        fail(ctx, st, "a malformed answer from the fs server");
}

/* ---- entry points ----------------------------------------------------------------------- */

void fscmd_init(shell_state_t *st)
{
    st->fs.iface = &fs_iface; /* connected on the first file command */
    st->fc.file = OS_HANDLE_NONE;
    st->fc.entry = OS_HANDLE_NONE;
    strcpy(st->cwd, "/");
}

#define NOT_RUNNING "no file system: the fs server is not running (no disk? boot with --disk FILE)"

/* Whether a task named "fs" runs (it ends at start when there is no blk0). */
static bool fs_running(os_ctx_t *ctx, shell_state_t *st)
{
    int n = os_task_list(ctx, st->tasks, SHELL_TASKS_MAX);
    for (int i = 0; i < n && i < SHELL_TASKS_MAX; i++) {
        if (strcmp(st->tasks[i].name, "fs") == 0)
            return true;
    }
    return false;
}

void fscmd_start(os_ctx_t *ctx, shell_state_t *st, const shell_cmd_t *c)
{
    fscmd_t *fc = &st->fc;
    const char *first = c->arg;

    memset(fc, 0, offsetof(fscmd_t, page));
    fc->file = OS_HANDLE_NONE;
    fc->entry = OS_HANDLE_NONE;
    fc->kind = c->kind;
    fc->long_list = c->long_list;
    if (c->kind == SHELL_PWD) {
        put_name(st, st->cwd);
        sh_say(st, "\n");
        return;
    }
    if (c->kind == SHELL_LN) {
        first = c->arg2; /* the symlink; arg is its target text, stored as given */
        if (strlen(c->arg) > FS_PATH_MAX) {
            sh_say(st, "shell: ln: the target is too long (limit %d bytes)\n", FS_PATH_MAX);
            return;
        }
        snprintf(fc->text, sizeof fc->text, "%s", c->arg);
    }
    if (!join(st, first, fc->path) || (c->kind == SHELL_MV && !join(st, c->arg2, fc->path2))) {
        sh_say(st, "shell: %s: path too long (limit %d bytes with the current directory)\n",
               cmd_name(c->kind), FS_PATH_MAX);
        return;
    }
    if (c->kind == SHELL_WRITE || c->kind == SHELL_APPEND) {
        size_t n = strlen(c->arg2);
        memcpy(fc->text, c->arg2, n);
        if (n > 0 || c->kind == SHELL_APPEND)
            fc->text[n++] = '\n'; /* as echo TEXT > FILE */
        fc->text_len = (uint32_t)n;
    }
    if (st->fs.state != CONN_UP && !fs_running(ctx, st)) {
        /* init would hold the connect until an fs server registers: say so now instead */
        sh_say(st, "shell: %s: %s\n", cmd_name(c->kind), NOT_RUNNING);
        return;
    }
    fc->starting = true;
    fc->wait = FW_CONNECT;
    fc->deadline = os_clock_now(ctx) + SHELL_FS_TIMEOUT_NS;
    sh_op_start(ctx, st, OP_FS, SHELL_FS_POLL_NS);
    if (st->fs.state == CONN_UP)
        begin(ctx, st);
    else if (st->fs.state == CONN_DOWN)
        sh_connect(ctx, st, &st->fs);
    fc->starting = false;
}

void fscmd_sync_then_shutdown(os_ctx_t *ctx, shell_state_t *st)
{
    fscmd_t *fc = &st->fc;
    memset(fc, 0, offsetof(fscmd_t, page));
    fc->file = OS_HANDLE_NONE;
    fc->entry = OS_HANDLE_NONE;
    fc->kind = SHELL_SHUTDOWN;
    fc->wait = FW_CONNECT;
    sh_op_start(ctx, st, OP_FS, SHELL_FS_TIMEOUT_NS);
    begin(ctx, st);
}

void fscmd_connected(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->op == OP_FS && st->fc.wait == FW_CONNECT)
        begin(ctx, st);
}

void fscmd_refused(os_ctx_t *ctx, shell_state_t *st, int status)
{
    if (st->op != OP_FS || st->fc.wait != FW_CONNECT)
        return;
    if (status == OS_EACCES)
        fail(ctx, st,
             "this shell may not reach the file system (no 'fs' in its reach in the "
             "manifest)");
    else
        fail(ctx, st, "cannot reach the fs server: %s", os_strerror(status));
}

void fscmd_lost(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->op == OP_FS && st->fc.wait != FW_CONNECT && st->fc.wait != FW_ROOM)
        fail(ctx, st, "the fs server went away");
}

void fscmd_on_fs(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    on_answer(ctx, st, ev);
}

bool fscmd_owns(const shell_state_t *st, os_handle_t h)
{
    return h != OS_HANDLE_NONE && (h == st->fc.file || h == st->fc.entry);
}

void fscmd_on_file(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    if (ev->kind == OS_EV_MESSAGE) {
        on_answer(ctx, st, ev);
        return;
    }
    if (ev->kind == OS_EV_PEER_CLOSED && st->op == OP_FS)
        fail(ctx, st, "the fs server went away");
}

void fscmd_on_timer(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->fc.wait == FW_CONNECT) {
        /* init holds the connect while no server has registered fs: one that ended (no
         * disk) never will, one that mounts soon does */
        uint64_t now = os_clock_now(ctx);
        if (!fs_running(ctx, st))
            fail(ctx, st, NOT_RUNNING);
        else if (now >= st->fc.deadline)
            fail(ctx, st, "no file system: the fs server did not register in time (%s)",
                 os_strerror(OS_ETIMEDOUT));
        else
            os_timer_set(ctx, st->timer, now + SHELL_FS_POLL_NS);
    } else if (st->fc.wait != FW_ROOM)
        fail(ctx, st, "the fs server did not answer: %s", os_strerror(OS_ETIMEDOUT));
}

void fscmd_room(os_ctx_t *ctx, shell_state_t *st)
{
    if (st->op != OP_FS || st->fc.wait != FW_ROOM || !has_room(st))
        return;
    restart_timer(ctx, st);
    if (st->fc.kind == SHELL_CAT)
        cat_next(ctx, st);
    else
        ls_continue(ctx, st);
}
