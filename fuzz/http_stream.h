/* http_stream.h — fuzz_httpd's check of one connection's HTTP/1.1 stream (http_stream.c): the
 * request bytes the client sent, to pair each answer with its request (a HEAD's has no body),
 * and the bytes the server wrote, whose framing is checked as they arrive. */
#ifndef FUZZ_HTTP_STREAM_H
#define FUZZ_HTTP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    HS_TRACK_MAX = 16384,    /* request bytes remembered while a head ends */
    HS_HEAD_MAX = 8192,      /* a response head longer than this is malformed */
    HS_PENDING_MAX = 256,    /* HEAD flags of requests not answered yet */
};

/* What every stream reports to: the failure hook (must not return) and the tallies. */
typedef struct hs_env {
    void (*fail)(const char *what); /* does not return */
    bool verbose; /* print each status line */
    uint64_t responses, statuses[6];
} hs_env_t;

typedef enum hs_phase { HS_HEAD, HS_BODY, HS_TO_CLOSE } hs_phase_t;

typedef struct hs_stream {
    /* what the client sent */
    char track[HS_TRACK_MAX];
    size_t track_len;
    bool track_lost;     /* a head over HS_TRACK_MAX: answered 431, then the close */
    uint64_t track_skip; /* a request body still to pass over */
    bool pending_head[HS_PENDING_MAX];
    int npending;
    bool pending_lost; /* more unanswered than HS_PENDING_MAX: the answers go unchecked */
    /* what the server wrote */
    hs_phase_t phase;
    char head[HS_HEAD_MAX + 1];
    size_t head_len;
    uint64_t body_left;
    bool shut; /* the server shut its side: nothing more may come */
    int responses;
} hs_stream_t;

/* Request bytes the client sent. */
void hs_sent(hs_stream_t *s, const uint8_t *data, size_t len);

/* Bytes the server wrote: each response's head and body checked (env->fail on a violation). */
void hs_received(hs_env_t *env, hs_stream_t *s, const uint8_t *data, size_t len);

/* The stream ended (shutdown: the server's FIN; else the close): a response under way is a
 * violation, unless excused (the client or the fs misbehaved first) or the answers went
 * unchecked. */
void hs_ended(hs_env_t *env, hs_stream_t *s, bool shutdown, bool excused);

#endif
