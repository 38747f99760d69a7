/* shell.h — the shell's state and the helpers its command files share (shell.c, netcmd.c,
 * fscmd.c). */
#ifndef ORRERY_SHELL_H
#define ORRERY_SHELL_H

#include <iface/console.h>
#include <iface/fs.h>
#include <iface/tcp.h>
#include <shell_http.h>
#include <shell_parse.h>

#define SHELL_PROMPT "orrery> "

enum {
    SHELL_QUEUE_MAX = 4,       /* input items here: at most one is asked for at a time (+ eof) */
    SHELL_OUT_MAX = 32768,     /* output waiting for the console */
    SHELL_TASKS_MAX = 256,     /* ps */
    SHELL_CHANS_MAX = 512,     /* ipc */
    SHELL_PING_SIZE = 56,      /* ping: ICMP data bytes of each echo (64 with the ICMP header) */
    SHELL_PING_WAIT_MS = 1000, /* ping: how long tcpip waits for each answer */
    SHELL_REQUEST_MAX = SHELL_URL_MAX + SHELL_HOST_MAX + 128, /* fetch: the GET request */
};
#define SHELL_OP_TIMEOUT_NS 5000000000ull       /* a request to init, echo or net */
#define SHELL_SHUTDOWN_TIMEOUT_NS 1000000000ull /* waiting for the console to flush */
#define SHELL_NET_IDLE_NS 10000000000ull     /* ping's lookup, fetch: each step without progress */
#define SHELL_PING_INTERVAL_NS 1000000000ull /* ping: one echo a second */
#define SHELL_FS_TIMEOUT_NS 10000000000ull   /* a file command: each answer of the fs server */
#define SHELL_FS_POLL_NS 50000000ull         /* waiting for fs: is its server still running? */
#define SHELL_TOP_INTERVAL_NS 1000000000ull  /* top: a new table each second */
#define SHELL_COMPLETE_TIMEOUT_NS 2000000000ull /* Tab on a path: the fs server's answers */

/* A connection to a server through init: down, asked for, or up. */
typedef struct conn {
    const iface_t *iface;
    os_handle_t chan;
    uint32_t req; /* of the pending connect */
    enum { CONN_DOWN, CONN_CONNECTING, CONN_UP } state;
} conn_t;

/* The one command in flight (the others wait in the queue). */
typedef enum op_kind {
    OP_NONE,
    OP_ECHO,     /* waiting for echo's reply (or for the connection) */
    OP_NET,      /* net: waiting for tcpip's status (or for the connection) */
    OP_NETSTAT,  /* netstat: waiting for the connection list */
    OP_PING,     /* ping: resolving, then an echo a second */
    OP_FETCH,    /* fetch: resolving, connecting, reading the response */
    OP_FS,       /* a file command: waiting for the fs server (fscmd.c) */
    OP_SPAWN,    /* waiting for init */
    OP_KILL,     /* waiting for init */
    OP_FLUSH,    /* shutdown: waiting for the console to print "shutting down" */
    OP_SHUTDOWN, /* waiting for the end */
    OP_TOP,      /* top: a table each second until q, Ctrl-C or its count (tty.c) */
} op_kind_t;

/* Where a network command is (netcmd.c). */
typedef enum net_phase {
    NP_CONNECT,   /* waiting for init's connections to net (and tcp) */
    NP_RESOLVE,   /* net.resolve is out */
    NP_REQUEST,   /* net.status or net.conns is out */
    NP_PING,      /* echoes going out, one a second */
    NP_OPEN,      /* tcp.connect is out */
    NP_ESTABLISH, /* the connection channel is here; waiting for the handshake */
    NP_RESPONSE,  /* the request is out (or waiting for room); reading the response */
    NP_RETRY,     /* fetch -r: a try failed; the next starts when the timer fires */
} net_phase_t;

/* The network command in flight. */
typedef struct netcmd {
    net_phase_t phase;
    bool sent;    /* the phase's request went out on the current connection */
    bool partial; /* a part of the answer was printed: asking again would repeat it */
    uint32_t req; /* the phase's request id (ping: of seq 1; seq n is req + n - 1) */
    char host[SHELL_HOST_MAX + 1];
    uint32_t addr;
    /* netstat */
    uint32_t rows, tcp_rows, udp_rows;
    /* ping */
    int count;    /* echoes to send */
    int sent_n;   /* sent so far (seq 1..sent_n) */
    int answered; /* answered, failed or given up */
    int received; /* answered */
    uint64_t rtt_min, rtt_max, rtt_sum;
    bool done[SHELL_PING_MAX + 1]; /* by seq */
    /* fetch */
    uint16_t port;
    char path[SHELL_LINE_MAX + 1]; /* the parser keeps it within SHELL_URL_MAX */
    os_handle_t chan;              /* the connection channel, or OS_HANDLE_NONE */
    uint64_t started;              /* when tcp.connect went out */
    size_t request_len;
    char request[SHELL_REQUEST_MAX];
    http_resp_t resp;
    int tries; /* fetch -r N: tries that failed so far (count holds N) */
} netcmd_t;

/* What the file command in flight waits for (fscmd.c). */
typedef enum fs_wait {
    FW_CONNECT, /* init's connection to fs */
    FW_CONTROL, /* the answer to a request on the control channel */
    FW_FILE,    /* the answer to a request on the open file's channel */
    FW_ENTRY,   /* ls -l: the answer about one entry (its open, stat or link text) */
    FW_ROOM,    /* the console to take the output so far */
} fs_wait_t;

/* The file command in flight. */
typedef struct fscmd {
    shell_kind_t kind;
    fs_wait_t wait;
    uint32_t step;                 /* which request of the command is out (fscmd.c's FS_STEP_*) */
    uint32_t req;                  /* its request id */
    bool starting;                 /* inside fscmd_start: an end now is printed by the caller */
    bool long_list;                /* ls -l */
    bool last_nl;                  /* cat: the last byte printed was a newline */
    os_handle_t file;              /* the open file or directory, or OS_HANDLE_NONE */
    os_handle_t entry;             /* ls -l: the entry being looked at, or OS_HANDLE_NONE */
    uint8_t type;                  /* FS_T_* of the open file */
    uint64_t off;                  /* cat: the next byte; ls: the next page's cookie */
    uint32_t entries;              /* ls: entries listed */
    uint64_t deadline;             /* FW_CONNECT: when to give up on fs registering */
    char path[FS_PATH_MAX + 1];    /* the (first) path, absolute */
    char path2[FS_PATH_MAX + 1];   /* mv: TO; ln: the symlink's path */
    char text[SHELL_LINE_MAX + 2]; /* write, append: TEXT and a newline; ln: the target */
    uint32_t text_len;
    /* ls: the page being listed */
    uint8_t page[FS_DIRENTS_MAX];
    uint32_t page_len, page_at;
    char name[FS_NAME_MAX + 1]; /* ls -l: the entry */
    uint8_t etype;              /* ls -l: the entry's type from the page */
    fs_attr_t attr;             /* stat, ls -l */
    /* messages of up to 4 KiB: kept here, off the task's stack */
    union fs_rx {
        fs_opened_t opened;
        fs_reply_t reply;
        fs_data_t data;
        fs_attr_t attr;
        fs_dirents_t dirents;
        fs_fsinfo_t fsinfo;
        fs_error_t error;
    } rx;
    union fs_tx {
        fs_write_t write;
        fs_open_t open;
        fs_rename_t rename;
        fs_symlink_t symlink;
        fs_mkdir_t mkdir;
        fs_unlink_t unlink;
        fs_rmdir_t rmdir;
    } tx;
} fscmd_t;

/* A Tab the console asked about (tty.c): the word, the candidates found so far, and for a path
 * where the listing of its directory is. */
typedef struct complete {
    uint32_t req; /* the console's */
    bool busy;    /* waiting for the fs server */
    enum { CP_CONNECT, CP_OPEN, CP_READDIR } phase;
    uint32_t fs_req;
    os_handle_t chan; /* the directory, or OS_HANDLE_NONE */
    uint64_t cookie;
    uint32_t start;                    /* the word's first byte in the line */
    char prefix[CONSOLE_LINE_MAX + 1]; /* the word, up to the cursor */
    size_t prefix_len;
    char dirpart[FS_PATH_MAX + 1]; /* a path word's part up to its last '/' */
    char dir[2 * FS_PATH_MAX + 2]; /* that directory, absolute */
    /* the answer, built here (names starts the part not cleared for each Tab) */
    char names[CONSOLE_NAMES_MAX];
    size_t names_len;
} complete_t;

/* top's row of a task, and what it keeps between tables for the rates. */
typedef struct top_row {
    uint32_t id;
    char name[OS_NAME_MAX];
    os_task_state_t state;
    uint32_t cpu_permille;      /* of the time since the last table */
    uint64_t in_rate, out_rate; /* messages per second */
    uint32_t queue;             /* messages waiting for it on its channels */
    uint32_t restarts;
} top_row_t;

typedef struct top {
    int count; /* tables to show, 0: until q or Ctrl-C */
    uint32_t shown;
    int key;          /* index in shell_top_keys */
    uint64_t prev_at; /* when the last table's sample was taken (0: boot) */
    struct {
        uint32_t id;
        uint64_t sent, received;
        uint32_t cpu_ms;
    } prev[SHELL_TASKS_MAX];
    size_t nprev;
    top_row_t rows[SHELL_TASKS_MAX];
} top_t;

/* An input item: a line, an overlong notice or the end of input. */
typedef struct input {
    uint32_t type; /* console_msg_line, _overlong, _eof */
    uint32_t len;
    char text[SHELL_LINE_MAX + 1];
} input_t;

typedef struct shell_state {
    conn_t console, echo, net, tcp, fs;
    os_handle_t timer;
    uint32_t next_req;
    /* the command in flight */
    op_kind_t op;
    uint32_t op_req;  /* init request id, echo request id or flush token */
    bool op_sent;     /* OP_ECHO: the request went out on the current connection */
    int op_status;    /* OP_FLUSH: the shutdown status */
    uint32_t op_task; /* OP_KILL: the task */
    char op_arg[SHELL_LINE_MAX + 1];
    netcmd_t nc;               /* OP_NET, OP_NETSTAT, OP_PING, OP_FETCH */
    fscmd_t fc;                /* OP_FS */
    char cwd[FS_PATH_MAX + 1]; /* cd, pwd: "/" at start; relative paths start here */
    /* input: pulled from the console one item at a time (console.read) */
    bool reading; /* a read is out: an item is on its way */
    size_t qhead, qcount;
    input_t queue[SHELL_QUEUE_MAX];
    /* output waiting for the console */
    size_t out_len;
    bool out_blocked;  /* EFULL: wait for WRITABLE */
    bool flush_wanted; /* send console.flush once out is empty */
    char out[SHELL_OUT_MAX];
    /* the terminal (tty.c): told by the console; never over a pipe */
    bool terminal;
    uint32_t cols, rows;
    bool history_wanted; /* send console.history once out is empty */
    uint32_t history_max;
    complete_t cp;
    top_t top;
    /* scratch */
    shell_cmd_t cmd;
    os_task_info_t tasks[SHELL_TASKS_MAX];
    os_chan_info_t chans[SHELL_CHANS_MAX];
} shell_state_t;

/* shell.c */
void sh_say(shell_state_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sh_say_ip(shell_state_t *st, uint32_t addr);
void sh_connect(os_ctx_t *ctx, shell_state_t *st, conn_t *c);
void sh_conn_lost(os_ctx_t *ctx, shell_state_t *st, conn_t *c);
void sh_op_start(os_ctx_t *ctx, shell_state_t *st, op_kind_t kind, uint64_t timeout);
void sh_op_done(os_ctx_t *ctx, shell_state_t *st);
/* Send what sh_say gathered to the console, as far as it takes it. */
void sh_flush(os_ctx_t *ctx, shell_state_t *st);
/* shutdown: wait for the console to print what is left, then ask init to shut down. */
void sh_shutdown_flush(os_ctx_t *ctx, shell_state_t *st);

/* netcmd.c: net, netstat, ping and fetch */
bool netcmd_is(op_kind_t op);
void netcmd_start(os_ctx_t *ctx, shell_state_t *st, const shell_cmd_t *c);
/* c (net or tcp) came up, or init refused it with status. */
void netcmd_connected(os_ctx_t *ctx, shell_state_t *st, conn_t *c);
void netcmd_refused(os_ctx_t *ctx, shell_state_t *st, conn_t *c, int status);
/* c (net or tcp) was lost; the shell already asked init for it again. */
void netcmd_lost(os_ctx_t *ctx, shell_state_t *st, conn_t *c);
void netcmd_on_net(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev);
void netcmd_on_tcp(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev);
/* An event on the fetch's connection channel (st->nc.chan). */
void netcmd_on_chan(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev);
void netcmd_on_timer(os_ctx_t *ctx, shell_state_t *st);
/* Ctrl-C: stop the command ("^C"; ping still sums up the echoes it sent). */
void netcmd_interrupt(os_ctx_t *ctx, shell_state_t *st);

/* fscmd.c: ls, cat, write, append, mkdir, rm, rmdir, mv, ln, stat, df, sync, mount, cd, pwd */
void fscmd_init(shell_state_t *st);
void fscmd_start(os_ctx_t *ctx, shell_state_t *st, const shell_cmd_t *c);
/* shutdown with the fs connection up: fs.sync, then sh_shutdown_flush (also when it fails). */
void fscmd_sync_then_shutdown(os_ctx_t *ctx, shell_state_t *st);
/* st->fs came up, or init refused it with status. */
void fscmd_connected(os_ctx_t *ctx, shell_state_t *st);
void fscmd_refused(os_ctx_t *ctx, shell_state_t *st, int status);
/* st->fs was lost; the shell already asked init for it again. */
void fscmd_lost(os_ctx_t *ctx, shell_state_t *st);
void fscmd_on_fs(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev);
/* Whether h is the channel of the command's open file or entry. */
bool fscmd_owns(const shell_state_t *st, os_handle_t h);
/* A message or peer closed on one of those channels. */
void fscmd_on_file(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev);
void fscmd_on_timer(os_ctx_t *ctx, shell_state_t *st);
/* The console took output: go on if the command waits for room. */
void fscmd_room(os_ctx_t *ctx, shell_state_t *st);

/* tty.c: completion, Ctrl-C, top, history, clear */
void tty_complete(os_ctx_t *ctx, shell_state_t *st, const console_complete_t *m);
/* Answer the console's Tab with what was found (when waiting for the fs server). */
void tty_complete_done(os_ctx_t *ctx, shell_state_t *st);
void tty_interrupt(os_ctx_t *ctx, shell_state_t *st);
/* Bytes for the terminal as they are (after the output before them); nothing over a pipe. */
void tty_control(os_ctx_t *ctx, shell_state_t *st, const char *bytes, size_t len);
void tty_history(os_ctx_t *ctx, shell_state_t *st, int count);
/* Path completion: start listing (false: nothing to ask, answer now), fs came up, stop. */
bool complete_fs_start(os_ctx_t *ctx, shell_state_t *st);
void complete_fs_connected(os_ctx_t *ctx, shell_state_t *st);
void complete_fs_abort(os_ctx_t *ctx, shell_state_t *st);
/* Whether h is the directory being listed; an event on it or on fs while busy. */
bool complete_fs_owns(const shell_state_t *st, os_handle_t h);
void complete_fs_on_answer(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev);
void top_start(os_ctx_t *ctx, shell_state_t *st, const shell_cmd_t *c);
void top_stop(os_ctx_t *ctx, shell_state_t *st);
void top_on_timer(os_ctx_t *ctx, shell_state_t *st);
void top_on_keys(os_ctx_t *ctx, shell_state_t *st, const uint8_t *keys, size_t n);

#endif
