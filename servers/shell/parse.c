/* parse.c — the shell's command parser and help text (pure: no os calls). */
#include <shell_parse.h>

#include <os/os.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The commands, in help order. */
static const struct command {
    const char *name;
    shell_kind_t kind;
    const char *usage; /* arguments, for help and usage errors */
    const char *help;
} commands[] = {
    {"help", SHELL_HELP, "", "list the commands"},
    {"echo", SHELL_ECHO, "[-e] WORDS",
     "ask the echo server to repeat WORDS (-e: \\e \\xHH \\n \\t \\\\ stand for their bytes)"},
    {"ps", SHELL_PS, "", "list the tasks"},
    {"uptime", SHELL_UPTIME, "", "time since boot"},
    {"ipc", SHELL_IPC, "", "list the channels and their queued messages"},
    {"top", SHELL_TOP, "[-n COUNT] [-s KEY]",
     "a refreshing table of tasks (keys: q quit, s next sort key; -n: COUNT tables, then done)"},
    {"history", SHELL_HISTORY, "[N]", "list the lines entered so far (the last N)"},
    {"clear", SHELL_CLEAR, "", "clear the terminal"},
    {"net", SHELL_NET, "", "the network's address, gateway, DNS, MAC and counters"},
    {"netstat", SHELL_NETSTAT, "", "list TCP connections, listeners and UDP sockets"},
    {"ping", SHELL_PING, "HOST [COUNT]", "send COUNT ICMP echoes (default 4, at most 100)"},
    {"fetch", SHELL_FETCH, "http://HOST[:PORT]/PATH",
     "HTTP GET: status, headers, body size (fetch -r N URL: N retries)"},
    {"ls", SHELL_LS, "[-l] [PATH]", "list a directory (-l: type, mode, links, size, mtime)"},
    {"cat", SHELL_CAT, "FILE", "print a file (control bytes shown as '?')"},
    {"write", SHELL_WRITE, "FILE [TEXT]", "make FILE hold TEXT and a newline (no TEXT: empty)"},
    {"append", SHELL_APPEND, "FILE TEXT", "add TEXT and a newline at the end of FILE"},
    {"mkdir", SHELL_MKDIR, "PATH", "make a directory"},
    {"rm", SHELL_RM, "PATH", "remove a file or symlink"},
    {"rmdir", SHELL_RMDIR, "PATH", "remove an empty directory"},
    {"mv", SHELL_MV, "FROM TO", "rename or move a file or directory"},
    {"ln", SHELL_LN, "-s TARGET PATH", "make PATH a symlink to TARGET"},
    {"stat", SHELL_STAT, "PATH", "a file's inode, type, mode, links, size, mtime"},
    {"df", SHELL_DF, "", "the file system's blocks and inodes, used and free"},
    {"sync", SHELL_SYNC, "", "write every change to the disk now"},
    {"mount", SHELL_MOUNT, "", "what is mounted, read-write or read-only, and why"},
    {"cd", SHELL_CD, "[PATH]", "change the current directory (default /)"},
    {"pwd", SHELL_PWD, "", "print the current directory"},
    {"spawn", SHELL_SPAWN, "NAME", "start program NAME of the image"},
    {"kill", SHELL_KILL, "NAME|ID", "kill a task (init restarts it by policy)"},
    {"shutdown", SHELL_SHUTDOWN, "[STATUS]", "stop the OS with exit status STATUS (default 0)"},
    {"crash", SHELL_CRASH, "null|panic|assert|stack", "make the shell fault on purpose"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

const char *shell_command_name(size_t i)
{
    return i < NCOMMANDS ? commands[i].name : NULL;
}

const char *const shell_top_keys[] = {"cpu", "in", "out", "queue", "restarts", "name", "id", NULL};

int shell_top_key(const char *name)
{
    for (int i = 0; shell_top_keys[i]; i++) {
        if (strcmp(shell_top_keys[i], name) == 0)
            return i;
    }
    return -1;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* echo -e: \e, \xHH, \n, \t, \a, \\ become their bytes (never NUL: a str holds none). */
static void unescape(char *out, const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        char c = in[i];
        if (c == '\\' && in[i + 1]) {
            char e = in[++i];
            int h1, h2;
            if (e == 'e')
                c = 0x1b;
            else if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else if (e == 'a')
                c = '\a';
            else if (e == '\\')
                c = '\\';
            else if (e == 'x' && (h1 = hex_digit(in[i + 1])) >= 0 &&
                     (h2 = hex_digit(in[i + 2])) >= 0 && (h1 || h2)) {
                c = (char)(h1 * 16 + h2);
                i += 2;
            } else {
                out[o++] = '\\';
                c = e;
            }
        }
        out[o++] = c;
    }
    out[o] = 0;
}

size_t shell_help(char *buf, size_t len)
{
    size_t at = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char left[48];
        snprintf(left, sizeof left, "%s%s%s", commands[i].name, commands[i].usage[0] ? " " : "",
                 commands[i].usage);
        int n = snprintf(at < len ? buf + at : NULL, at < len ? len - at : 0, "%-30s %s\n", left,
                         commands[i].help);
        at += (size_t)n;
    }
    return at;
}

static shell_kind_t error(shell_cmd_t *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static shell_kind_t error(shell_cmd_t *out, const char *fmt, ...)
{
    va_list ap;
    out->kind = SHELL_ERROR;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
    return SHELL_ERROR;
}

static shell_kind_t usage(shell_cmd_t *out, const struct command *c)
{
    return error(out, "shell: usage: %s %s", c->name, c->usage);
}

static int is_space(char c)
{
    return isspace((unsigned char)c);
}

/* Shorten a word quoted in an error message, in place. */
static const char *cut(char *word)
{
    if (strlen(word) > 40)
        strcpy(word + 37, "...");
    return word;
}

/* A host name or dotted address: letters, digits, '-', '.', '_'; 1..SHELL_HOST_MAX bytes. */
static bool host_ok(const char *s, size_t len)
{
    if (len == 0 || len > SHELL_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
            return false;
    }
    return true;
}

static bool prefix_nocase(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        if (tolower((unsigned char)*s) != *prefix)
            return false;
    }
    return true;
}

/* The length of the prefix of s without any byte of stop (strcspn; the image's libc has none). */
static size_t span_until(const char *s, const char *stop)
{
    size_t n = 0;
    while (s[n] && !strchr(stop, s[n]))
        n++;
    return n;
}

/* http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT] into host, port and arg (the path and query;
 * the fragment is the client's own and is not sent). */
static shell_kind_t parse_url(shell_cmd_t *out, char *url)
{
    size_t len = strlen(url);
    if (len > SHELL_URL_MAX)
        return error(out, "shell: fetch: URL too long (%lu bytes, limit %d)", (unsigned long)len,
                     SHELL_URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= ' ' || ch >= 0x7f)
            return error(out, "shell: fetch: byte 0x%02x in the URL must be percent-encoded", ch);
    }
    char *sep = strstr(url, "://");
    if (!sep)
        return error(out, "shell: fetch: URL must start with http://, not '%s'", cut(url));
    if (prefix_nocase(url, "https://"))
        return error(out, "shell: fetch: https is not supported (no TLS); use http://");
    if (sep - url != 4 || !prefix_nocase(url, "http://")) {
        sep[3] = 0;
        return error(out, "shell: fetch: only http:// URLs are supported, not '%s'", cut(url));
    }
    char *host = sep + 3;
    size_t alen = span_until(host, "/?#");
    char *path = host + alen;
    if (host[0] == '[')
        return error(out, "shell: fetch: IPv6 addresses are not supported");
    char *colon = memchr(host, ':', alen);
    size_t hlen = colon ? (size_t)(colon - host) : alen;
    if (memchr(host, '@', alen))
        return error(out, "shell: fetch: user names in URLs are not supported");
    out->port = 80;
    if (colon) {
        char port[8] = "";
        size_t plen = alen - hlen - 1;
        int v = -1;
        if (plen > 0 && plen < sizeof port) {
            memcpy(port, colon + 1, plen);
            port[plen] = 0;
            for (size_t i = 0; i < plen; i++)
                v = isdigit((unsigned char)port[i]) ? v : -2;
            if (v == -1)
                v = (int)strtol(port, NULL, 10);
        }
        if (v < 1 || v > 65535) {
            char bad[48];
            snprintf(bad, sizeof bad, "%.*s", (int)(plen < 40 ? plen : 40), colon + 1);
            return error(out, "shell: fetch: bad port '%s' in the URL (1..65535)", bad);
        }
        out->port = (uint16_t)v;
    }
    if (hlen == 0)
        return error(out, "shell: fetch: no host in the URL");
    if (!host_ok(host, hlen)) {
        host[hlen] = 0;
        return error(out, "shell: fetch: bad host name '%s' in the URL", cut(host));
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = 0;
    path[span_until(path, "#")] = 0;
    snprintf(out->arg, sizeof out->arg, "%s%s", path[0] == '/' ? "" : "/", path);
    return out->kind = SHELL_FETCH;
}

/* Parse a whole decimal int (optionally negative) within int range. */
static int parse_int(const char *s, int *v)
{
    char *end;
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -1;
    long x = strtol(s, &end, 10);
    if (*end || x < -2147483647L || x > 2147483647L)
        return -1;
    *v = (int)x;
    return 0;
}

/* The next word of *s (ended by white space), advancing *s past the space after it; NULL at the
 * end. The word is cut out of the buffer in place. */
static char *next_word(char **s)
{
    char *w = *s;
    if (*w == 0)
        return NULL;
    while (**s && !is_space(**s))
        (*s)++;
    if (**s)
        *(*s)++ = 0;
    while (is_space(**s))
        (*s)++;
    return w;
}

/* The file commands: paths are single words (no quoting); write and append keep the rest of
 * the line after FILE verbatim as the text. */
static shell_kind_t parse_fs(shell_cmd_t *out, const struct command *c, char *rest)
{
    char *w[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0;

    out->kind = c->kind;
    if (c->kind == SHELL_WRITE || c->kind == SHELL_APPEND) {
        w[0] = next_word(&rest);
        if (!w[0] || (c->kind == SHELL_APPEND && *rest == 0))
            return usage(out, c);
        strcpy(out->arg, w[0]);
        strcpy(out->arg2, rest);
        return c->kind;
    }
    while (n < 4 && (w[n] = next_word(&rest)) != NULL)
        n++;
    switch (c->kind) {
    case SHELL_LS:
        if (n > 0 && strcmp(w[0], "-l") == 0) {
            out->long_list = true;
            memmove(w, w + 1, 3 * sizeof w[0]);
            n--;
        }
        if (n > 0 && w[0][0] == '-' && w[0][1] != 0)
            return error(out, "shell: ls: unknown option '%s' (usage: ls [-l] [PATH])", cut(w[0]));
        if (n > 1)
            return usage(out, c);
        strcpy(out->arg, n ? w[0] : "");
        return c->kind;
    case SHELL_CD:
        if (n > 1)
            return usage(out, c);
        strcpy(out->arg, n ? w[0] : "/");
        return c->kind;
    case SHELL_DF:
    case SHELL_SYNC:
    case SHELL_MOUNT:
    case SHELL_PWD:
        if (n != 0)
            return error(out, "shell: %s takes no arguments", c->name);
        return c->kind;
    case SHELL_MV:
        if (n != 2)
            return usage(out, c);
        strcpy(out->arg, w[0]);
        strcpy(out->arg2, w[1]);
        return c->kind;
    case SHELL_LN:
        if (n == 2 && strcmp(w[0], "-s") != 0)
            return error(out, "shell: ln: only symbolic links (ln -s TARGET PATH): the file "
                              "system interface has no hard links");
        if (n != 3 || strcmp(w[0], "-s") != 0)
            return usage(out, c);
        strcpy(out->arg, w[1]);
        strcpy(out->arg2, w[2]);
        return c->kind;
    default: /* one path */
        if (n != 1)
            return usage(out, c);
        strcpy(out->arg, w[0]);
        return c->kind;
    }
}

/* top [-n COUNT] [-s KEY], in any order. */
static shell_kind_t parse_top(shell_cmd_t *out, const struct command *c, char *rest)
{
    char *w[5];
    size_t n = 0;
    while (n < 5 && (w[n] = next_word(&rest)) != NULL)
        n++;
    out->kind = c->kind;
    strcpy(out->arg, "cpu");
    if (n > 4)
        return usage(out, c);
    for (size_t i = 0; i < n; i += 2) {
        if (i + 1 >= n || (strcmp(w[i], "-n") != 0 && strcmp(w[i], "-s") != 0))
            return usage(out, c);
        if (w[i][1] == 'n' &&
            (parse_int(w[i + 1], &out->count) < 0 || out->count < 1 || out->count > SHELL_TOP_MAX))
            return error(out, "shell: top: COUNT must be 1..%d, not '%s'", SHELL_TOP_MAX,
                         cut(w[i + 1]));
        if (w[i][1] == 's') {
            if (shell_top_key(w[i + 1]) < 0)
                return error(out,
                             "shell: top: unknown sort key '%s' (cpu, in, out, queue, "
                             "restarts, name, id)",
                             cut(w[i + 1]));
            strcpy(out->arg, w[i + 1]);
        }
    }
    return c->kind;
}

shell_kind_t shell_parse(const char *line, size_t len, shell_cmd_t *out)
{
    char buf[SHELL_LINE_MAX + 1];
    char *words[3];
    size_t nwords = 0;

    memset(out, 0, sizeof *out);
    if (len > SHELL_LINE_MAX) {
        return error(out, "shell: line too long (%lu bytes, limit %d)", (unsigned long)len,
                     SHELL_LINE_MAX);
    }
    memcpy(buf, line, len);
    buf[len] = 0;
    if (memchr(buf, 0, len))
        return error(out, "shell: line contains a NUL byte");

    /* the command word, then the rest (echo keeps it verbatim), split into at most 2 words */
    char *s = buf;
    while (is_space(*s))
        s++;
    if (*s == 0)
        return out->kind = SHELL_EMPTY;
    char *name = s;
    while (*s && !is_space(*s))
        s++;
    if (*s)
        *s++ = 0;
    while (is_space(*s))
        s++;
    char *rest = s;
    size_t rl = strlen(rest);
    while (rl > 0 && is_space(rest[rl - 1]))
        rest[--rl] = 0;

    const struct command *c = NULL;
    for (size_t i = 0; i < NCOMMANDS && !c; i++) {
        if (strcmp(commands[i].name, name) == 0)
            c = &commands[i];
    }
    if (!c) {
        if (strlen(name) > 40)
            strcpy(name + 37, "...");
        return error(out, "shell: unknown command '%s' (try 'help')", name);
    }
    if (c->kind == SHELL_ECHO) {
        out->kind = SHELL_ECHO;
        if (strncmp(rest, "-e", 2) == 0 && (rest[2] == 0 || is_space(rest[2]))) {
            rest += 2;
            while (is_space(*rest))
                rest++;
            unescape(out->arg, rest);
        } else {
            strcpy(out->arg, rest);
        }
        return SHELL_ECHO;
    }
    if (c->kind >= SHELL_LS)
        return parse_fs(out, c, rest);
    if (c->kind == SHELL_TOP)
        return parse_top(out, c, rest);
    for (char *w = rest; *w && nwords < 3;) {
        words[nwords++] = w;
        while (*w && !is_space(*w))
            w++;
        if (*w)
            *w++ = 0;
        while (is_space(*w))
            w++;
    }

    out->kind = c->kind;
    switch (c->kind) {
    case SHELL_HELP:
    case SHELL_PS:
    case SHELL_UPTIME:
    case SHELL_IPC:
    case SHELL_NET:
    case SHELL_NETSTAT:
        if (nwords != 0)
            return error(out, "shell: %s takes no arguments", c->name);
        return c->kind;
    case SHELL_CLEAR:
        if (nwords != 0)
            return error(out, "shell: %s takes no arguments", c->name);
        return c->kind;
    case SHELL_HISTORY:
        if (nwords > 1)
            return usage(out, c);
        if (nwords == 1 && (parse_int(words[0], &out->count) < 0 || out->count < 1))
            return error(out, "shell: history: N must be a number of lines, not '%s'",
                         cut(words[0]));
        return c->kind;
    case SHELL_PING:
        if (nwords < 1 || nwords > 2)
            return usage(out, c);
        if (!host_ok(words[0], strlen(words[0])))
            return error(out, "shell: ping: bad host name '%s'", cut(words[0]));
        strcpy(out->host, words[0]);
        out->count = SHELL_PING_DEFAULT;
        if (nwords == 2 &&
            (parse_int(words[1], &out->count) < 0 || out->count < 1 || out->count > SHELL_PING_MAX))
            return error(out, "shell: ping: COUNT must be 1..%d, not '%s'", SHELL_PING_MAX,
                         cut(words[1]));
        return c->kind;
    case SHELL_FETCH:
        out->count = 0; /* retries */
        if (nwords >= 1 && strcmp(words[0], "-r") == 0) {
            if (nwords != 3)
                return usage(out, c);
            if (parse_int(words[1], &out->count) < 0 || out->count < 0 ||
                out->count > SHELL_FETCH_RETRY_MAX)
                return error(out, "shell: fetch: -r needs a number of retries 0..%d, not '%s'",
                             SHELL_FETCH_RETRY_MAX, cut(words[1]));
            return parse_url(out, words[2]);
        }
        if (nwords != 1)
            return usage(out, c);
        return parse_url(out, words[0]);
    case SHELL_SPAWN:
    case SHELL_KILL:
        if (nwords != 1 || strlen(words[0]) >= 32)
            return usage(out, c);
        strcpy(out->arg, words[0]);
        return c->kind;
    case SHELL_SHUTDOWN:
        if (nwords > 1)
            return usage(out, c);
        if (nwords == 1 && (parse_int(words[0], &out->status) < 0 || out->status < 0 ||
                            out->status > OS_EXIT_USER_MAX)) {
            /* a status the platforms cannot report exactly, or one the OS keeps for itself */
            if (strlen(words[0]) > 20)
                strcpy(words[0] + 17, "...");
            return error(out, "shell: shutdown: STATUS must be 0..%d, not '%s'", OS_EXIT_USER_MAX,
                         words[0]);
        }
        return c->kind;
    case SHELL_CRASH:
        if (nwords == 1 && strcmp(words[0], "null") == 0)
            out->crash = SHELL_CRASH_NULL;
        else if (nwords == 1 && strcmp(words[0], "panic") == 0)
            out->crash = SHELL_CRASH_PANIC;
        else if (nwords == 1 && strcmp(words[0], "assert") == 0)
            out->crash = SHELL_CRASH_ASSERT;
        else if (nwords == 1 && strcmp(words[0], "stack") == 0)
            out->crash = SHELL_CRASH_STACK;
        else
            return usage(out, c);
        return c->kind;
    default:
        return usage(out, c);
    }
}
