/* console.h — the console server's state, shared by console.c (lines, clients) and term.c
 * (an interactive terminal: the line editor, escaping, completion, keys). */
#ifndef ORRERY_CONSOLE_PRIV_H
#define ORRERY_CONSOLE_PRIV_H

#include <console_edit.h>
#include <iface/console.h>

#include <stdbool.h>

enum {
    CONSOLE_CREDIT_MAX = 32, /* input items a client may ask for ahead (console.read) */
    CONSOLE_REQ_REGISTER = 1,
    CONSOLE_AHEAD_MAX = 1024, /* keystrokes typed ahead while a command runs */
    CONSOLE_OUT_CHUNK = 1024, /* bytes per device write of escaped output */
};

/* A terminal's own state: set once the platform said the input is one (HAL_CONSOLE_INFO). */
typedef struct term {
    bool on;               /* input is a terminal: keystrokes arrive, not lines */
    bool asked_info;       /* keystrokes came first (a restarted console): info asked for */
    uint32_t cols, rows;   /* its size, 0 unknown */
    bool told;             /* the current client got `terminal` */
    bool editing;          /* a line is being edited for the client's read */
    bool keys;             /* the client asked for keystrokes (console.keys) */
    uint32_t complete_req; /* the `complete` out, 0 if none */
    uint32_t next_req;
    uint32_t interrupts; /* Ctrl-Cs sent as `interrupt` */
    bool poking;         /* inside term_poke */
    /* typed while no line was asked for, fed to the editor later (bounded: the device is held
       while it is full) */
    uint8_t ahead[CONSOLE_AHEAD_MAX];
    size_t ahead_len;
    /* the partial last row of the output (after its last newline): the prompt to redraw */
    char tail[EDIT_PROMPT_MAX];
    size_t tail_len;
    bool tail_cut;    /* ... longer than tail: the editor draws its start */
    uint8_t carry[4]; /* a UTF-8 sequence cut at the end of a write */
    size_t carry_len;
} term_t;

/*
 * Input is taken from the device only when the client has asked for it: the
 * device is held otherwise, so unread input stays in the kernel's queue and at
 * the platform, never here. A console that is killed or crashes loses nothing:
 * its successor opens the device and reads on where it stopped (and the kernel
 * tells it again if input had already ended).
 */

/* The one item taken from the device and not yet given to a client. */
typedef struct item {
    bool valid;
    uint32_t type;   /* console_msg_line, _overlong */
    uint32_t length; /* line: bytes in text; overlong: the dropped line's length */
    char text[CONSOLE_LINE_MAX + 1];
} item_t;

typedef struct console_state {
    os_handle_t dev;    /* the "console" device */
    os_handle_t client; /* the one client (the latest to connect), or NONE */
    bool blocked;       /* the client's queue was full: wait for WRITABLE */
    uint32_t credit;    /* input items the client asked for (console.read) and has not got */
    bool held;          /* the device is held: nobody wants input now */
    uint32_t lines;     /* lines forwarded */
    bool eof;           /* input ended: tell each client after the last item */
    bool eof_sent;      /* ... the current client was told */
    bool eof_reported;  /* ... init was told (input_ended) */
    item_t pending;     /* taken while a client asked, not delivered yet (its queue was full
                           or it went away): the next client gets it first */
    term_t term;        /* when the input is a terminal (term.c) */
    edit_t ed;          /* the line editor; also keeps the history in both modes */
} console_state_t;

/* console.c */
void console_pump(os_ctx_t *ctx, console_state_t *st);
void console_set_hold(os_ctx_t *ctx, console_state_t *st, bool hold);
/* Hand a finished line to the client, as the device's lines are (queued in `pending`). */
void console_take_line(os_ctx_t *ctx, console_state_t *st, const char *text, size_t len);
void console_take_eof(os_ctx_t *ctx, console_state_t *st);

/* term.c */
/* Output written as it is (before the console knew it had a terminal): its partial last row
 * is the prompt of the first line edited. */
void term_track(term_t *t, const char *buf, size_t len);
void term_on_info(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev);
void term_on_keys(os_ctx_t *ctx, console_state_t *st, const uint8_t *data, size_t len);
/* The client's read credit, its connection or `keys` changed: start editing, go on feeding. */
void term_poke(os_ctx_t *ctx, console_state_t *st);
/* Bytes a client wrote: escaped, the row being edited kept whole. */
void term_write(os_ctx_t *ctx, console_state_t *st, const uint8_t *data, size_t len);
/* The client's messages that only a terminal uses; false if ev is none of them. */
bool term_on_client(os_ctx_t *ctx, console_state_t *st, const os_event_t *ev);
/* A new client: tell it about the terminal, forget the old one's line and keys. */
void term_new_client(os_ctx_t *ctx, console_state_t *st);

#endif
