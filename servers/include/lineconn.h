/* lineconn.h — a line-buffered TCP connection over the tcp interface (kv, kvclient). */
#ifndef LINECONN_H
#define LINECONN_H

#include <iface/tcp.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    LC_IN_MAX = 8192,   /* input kept; the channel is held while a message might not fit */
    LC_OUT_MAX = 16384, /* output kept while tcpip's queue is full */
};

typedef enum lc_state {
    LC_FREE = 0,
    LC_CONNECTING, /* connect sent, waiting for opened */
    LC_OPENING,    /* opened: waiting for established */
    LC_UP,
} lc_state_t;

typedef struct lconn {
    lc_state_t state;
    os_handle_t chan;
    uint32_t req; /* the connect's request id */
    bool held;    /* input held: the buffer is full, or the owner paused reading */
    bool paused;  /* the owner does not want lines now */
    bool blocked; /* our last send got OS_EFULL: wait for WRITABLE */
    size_t in_len, out_len;
    char in[LC_IN_MAX];
    char out[LC_OUT_MAX];
    tcp_data_t msg; /* one data message, either way */
} lconn_t;

/* What an event on a connection's channel meant. */
typedef enum lc_event {
    LC_NOTHING = 0,
    LC_ESTABLISHED, /* a connect's handshake is done */
    LC_WRITABLE,    /* output drained: room again */
    LC_DATA,        /* bytes arrived: take lines with lconn_line */
    LC_CLOSED,      /* reset, refused, EOF or closed: the connection is gone (freed) */
} lc_event_t;

void lconn_init(lconn_t *c);
/* Start a connection (connect on the tcp control channel); 0 or the send's error. */
int lconn_connect(os_ctx_t *ctx, lconn_t *c, os_handle_t tcp, uint32_t req, uint32_t addr,
                  uint16_t port);
/* The control channel's answer to our connect: true if it was ours (opened or refused). *closed
 * is set when it was refused. */
bool lconn_control(os_ctx_t *ctx, lconn_t *c, const os_event_t *ev, bool *closed);
/* An accepted connection. */
void lconn_accept(lconn_t *c, os_handle_t chan);
/* An event on c->chan. */
lc_event_t lconn_event(os_ctx_t *ctx, lconn_t *c, const os_event_t *ev);
/* The next whole line (without "\r\n") into line (KV_LINE_MAX-sized): its length, or -1 when
 * none is whole. A line longer than max is cut and its rest skipped (the length is max+1 so
 * the caller can refuse it). */
int lconn_line(os_ctx_t *ctx, lconn_t *c, char *line, size_t max);
/* Room for output now (bytes). */
size_t lconn_room(const lconn_t *c);
/* Queue bytes; false when they do not fit (nothing queued). */
bool lconn_write(os_ctx_t *ctx, lconn_t *c, const char *p, size_t n);
/* Stop (true) or resume taking lines. */
void lconn_pause(os_ctx_t *ctx, lconn_t *c, bool pause);
/* Close: gracefully after what was queued when `graceful`, else a reset. */
void lconn_close(os_ctx_t *ctx, lconn_t *c, bool graceful);

#endif
