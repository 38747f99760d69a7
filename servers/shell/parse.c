/* parse.c — the shell's command parser and help text (pure: no os calls). */
#include <shell_parse.h>

#include <os/os.h>

#include <ctype.h>
#include <stdarg.h>
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
    {"echo", SHELL_ECHO, "WORDS", "ask the echo server to repeat WORDS"},
    {"ps", SHELL_PS, "", "list the tasks"},
    {"uptime", SHELL_UPTIME, "", "time since boot"},
    {"ipc", SHELL_IPC, "", "list the channels and their queued messages"},
    {"net", SHELL_NET, "", "the network's address, gateway, MAC and frame counts"},
    {"spawn", SHELL_SPAWN, "NAME", "start program NAME of the image"},
    {"kill", SHELL_KILL, "NAME|ID", "kill a task (init restarts it by policy)"},
    {"shutdown", SHELL_SHUTDOWN, "[STATUS]", "stop the OS with exit status STATUS (default 0)"},
    {"crash", SHELL_CRASH, "null|panic|assert|stack", "make the shell fault on purpose"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

size_t shell_help(char *buf, size_t len)
{
    size_t at = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char left[48];
        snprintf(left, sizeof left, "%s%s%s", commands[i].name, commands[i].usage[0] ? " " : "",
                 commands[i].usage);
        int n = snprintf(at < len ? buf + at : NULL, at < len ? len - at : 0, "%-26s %s\n", left,
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
        strcpy(out->arg, rest);
        return SHELL_ECHO;
    }
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
        if (nwords != 0)
            return error(out, "shell: %s takes no arguments", c->name);
        return c->kind;
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
