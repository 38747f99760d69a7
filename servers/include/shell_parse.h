/* shell_parse.h — the shell's command-line parser: a pure function, unit-tested on its own. */
#ifndef ORRERY_SHELL_PARSE_H
#define ORRERY_SHELL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <iface/net.h> /* NET_NAME_MAX: the longest host name */

enum {
    SHELL_LINE_MAX = 1024, /* longest command line, bytes without '\n' */
    SHELL_ERROR_MAX = 160,
    SHELL_HOST_MAX = NET_NAME_MAX, /* ping, fetch: a host name or dotted address */
    SHELL_URL_MAX = 512,           /* fetch: the whole URL, bytes */
    SHELL_FETCH_RETRY_MAX = 10,    /* fetch -r N: retries after a failure or a 5xx answer */
    SHELL_PING_DEFAULT = 4,        /* ping: echoes sent when COUNT is not given */
    SHELL_PING_MAX = 100,          /* ping: the largest COUNT */
    SHELL_TOP_MAX = 1000,          /* top -n: the largest COUNT */
};

typedef enum shell_kind {
    SHELL_EMPTY = 0, /* blank line: just a new prompt */
    SHELL_ERROR,     /* print cmd.error */
    SHELL_HELP,
    SHELL_ECHO, /* arg: the text after "echo " */
    SHELL_PS,
    SHELL_UPTIME,
    SHELL_IPC,
    SHELL_SPAWN,    /* arg: program name */
    SHELL_KILL,     /* arg: task name or id */
    SHELL_SHUTDOWN, /* status */
    SHELL_CRASH,    /* crash */
    SHELL_NET,      /* ask the tcpip server for its status */
    SHELL_NETSTAT,  /* list the tcpip server's connections, listeners and UDP sockets */
    SHELL_PING,     /* host, count */
    SHELL_FETCH,    /* host, port, arg: the path (with its query, without a fragment) */
    SHELL_HISTORY,  /* count: the last lines to list (0: all) */
    SHELL_CLEAR,    /* clear the terminal */
    SHELL_TOP,      /* count: tables to print (0: until q or Ctrl-C), arg: the sort key */
    /* file commands (fscmd.c): arg is the (first) path as typed, arg2 the second or the text */
    SHELL_LS,     /* arg: the directory or file ("" for the current directory), long_list */
    SHELL_CAT,    /* arg: the file */
    SHELL_WRITE,  /* arg: the file, arg2: the text (may be empty) */
    SHELL_APPEND, /* arg: the file, arg2: the text */
    SHELL_MKDIR,  /* arg */
    SHELL_RM,     /* arg */
    SHELL_RMDIR,  /* arg */
    SHELL_MV,     /* arg: from, arg2: to */
    SHELL_LN,     /* arg: the target text, arg2: the new symlink's path */
    SHELL_STAT,   /* arg */
    SHELL_DF,
    SHELL_SYNC,
    SHELL_MOUNT,
    SHELL_CD, /* arg ("" for /) */
    SHELL_PWD,
} shell_kind_t;

typedef enum shell_crash {
    SHELL_CRASH_NULL = 1,   /* store through a null pointer: a CPU fault */
    SHELL_CRASH_PANIC = 2,  /* os_panic */
    SHELL_CRASH_ASSERT = 3, /* a failed OS_ASSERT */
    SHELL_CRASH_STACK = 4,  /* unbounded recursion: a stack overflow */
} shell_crash_t;

typedef struct shell_cmd {
    shell_kind_t kind;
    char arg[SHELL_LINE_MAX + 1];
    char arg2[SHELL_LINE_MAX + 1]; /* MV, LN: the second path; WRITE, APPEND: the text */
    bool long_list;                /* LS: -l */
    char host[SHELL_HOST_MAX + 1]; /* PING, FETCH */
    uint16_t port;                 /* FETCH */
    int count;                     /* PING; FETCH: retries (-r N) */
    int status;                    /* SHUTDOWN */
    shell_crash_t crash;           /* CRASH */
    char error[SHELL_ERROR_MAX];
} shell_cmd_t;

/* Parse one input line (len bytes, no '\n'); returns out->kind. Never fails: a bad
 * line gives SHELL_ERROR with the one-line message to print in out->error. */
shell_kind_t shell_parse(const char *line, size_t len, shell_cmd_t *out);

/* Command name i in help order, NULL past the last (for completion). */
const char *shell_command_name(size_t i);

/* top's sort keys, in the order its 's' key cycles through them; "cpu" first (the default). */
extern const char *const shell_top_keys[];
/* The index of key name in shell_top_keys, or -1. */
int shell_top_key(const char *name);

/* The help text: one line per command, each ending in '\n'. Returns the bytes written
 * (snprintf-style: the length it needs). */
size_t shell_help(char *buf, size_t len);

#endif
