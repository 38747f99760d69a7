/* corpus.h — turning a recorded trace into seed inputs for the server fuzz targets
 * (docs/fuzzing.md). */
#ifndef TRACE_CORPUS_H
#define TRACE_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include <iface/iface.h>

/* The op bytes of fuzz/fuzz_server.c's input: an op is chosen by byte % 8. */
enum {
    TRACE_CORPUS_OP_MSG = 0,  /* then: message index, the fields (see docs/fuzzing.md) */
    TRACE_CORPUS_OP_RAW = 3,  /* then: type % 12, length (<= 255), bytes, handle flag */
    TRACE_CORPUS_OP_IDLE = 4, /* run until idle */
    TRACE_CORPUS_OP_LINE = 6, /* then: length % 64, bytes: one console device line */
    TRACE_CORPUS_MAX = 512,   /* longer sessions are split into parts of whole ops */
};

/*
 * The input of fuzz/fuzz_tcpip.c (docs/fuzzing.md): ops chosen by byte % 8, frames built by
 * its templates (fuzz/tcpip_frames.c reads their fields in the order trace/corpus.c writes them).
 */
enum {
    TRACE_CORPUS_TCPIP_FRAME = 0, /* (1, 2 too) then: time step, template, mutation, fields */
    TRACE_CORPUS_TCPIP_RAW = 3,   /* then: time step, length (u16 LE), the frame's bytes */
    TRACE_CORPUS_TCPIP_MSG = 4,   /* (5 too) then: channel pick, message index, fields */
    TRACE_CORPUS_TCPIP_CHAN =
        6, /* then: channel pick, action % 5 (raw, raw, close, hold, net0 full) */
    TRACE_CORPUS_TCPIP_TIME = 7,           /* then: n: virtual time moves (n + 1) * 250 ms */
    TRACE_CORPUS_TCPIP_STEP_NS = 20000000, /* a frame's time step: (byte & 31) of these */
    TRACE_CORPUS_TCPIP_NEWEST = 255, /* channel pick: the channel the server handed out last */
    TRACE_CORPUS_TCPIP_MAX = 16384,  /* bytes of one tcpip input (a whole conversation) */
};
/* The frame templates (the byte after the time step, % TRACE_CORPUS_TPL_COUNT). */
enum {
    TRACE_CORPUS_TPL_ARP_REQUEST = 0,
    TRACE_CORPUS_TPL_ARP_REPLY = 1,
    TRACE_CORPUS_TPL_ECHO_REQUEST = 2,
    TRACE_CORPUS_TPL_ECHO_REPLY = 3,
    TRACE_CORPUS_TPL_TCP = 4, /* 5 and 6 too: the common case */
    TRACE_CORPUS_TPL_UDP = 7,
    TRACE_CORPUS_TPL_ICMP6 = 8,
    TRACE_CORPUS_TPL_FRAGMENT = 9,
    TRACE_CORPUS_TPL_COUNT = 10,
};

/* What the frame translation keeps between frames: the TCP flows, numbered as the harness
 * numbers them (in the order they start; a RST frees a slot). Zero it for a new input. */
enum { TRACE_CORPUS_FLOWS = 8 };
typedef struct trace_corpus_net {
    struct {
        int used;
        uint32_t rip;
        uint16_t rport, lport;
    } flows[TRACE_CORPUS_FLOWS];
} trace_corpus_net_t;

/*
 * Append the op that rebuilds frame f (received by tcpip step_ns after the previous one):
 * a template op for ARP, ICMP echo, TCP and UDP to the server, else a raw frame op.
 * 0, or -1 if it does not fit (nothing appended).
 */
int trace_corpus_frame(trace_corpus_net_t *s, const uint8_t *f, size_t len, uint64_t step_ns,
                       uint8_t *out, size_t *olen, size_t cap);
/* A frame tcpip sent: its SYN starts a flow, a RST ends one. */
void trace_corpus_net_sent(trace_corpus_net_t *s, const uint8_t *f, size_t len);
/*
 * Append a message op of fuzz_tcpip: [op][pick][index][fields] when the payload decodes
 * exactly by ifc (tcp, udp or net), the pick naming the control channel for requests on it
 * (0 net, 1 tcp, 2 udp) and the newest handed-out channel otherwise. 0, 1 (not structured:
 * nothing appended), or -1 if it does not fit.
 */
int trace_corpus_tcpip_msg(const iface_t *ifc, uint32_t type, const void *data, size_t dlen,
                           uint32_t nhandles, uint8_t *out, size_t *len, size_t cap);

/* trace_corpus_write refused a path that is not ours to write (nothing was written). */
#define TRACE_CORPUS_REFUSED (-2)

/*
 * Append the ops for one message that arrived on a channel of interface ifc
 * (NULL: unknown) to out[*len..cap): a structured op when the payload decodes
 * exactly by the interface's definition, else a raw op; then an idle op.
 * Returns 0, or -1 if it does not fit (nothing appended).
 */
int trace_corpus_msg(const iface_t *ifc, uint32_t type, const void *data, size_t dlen,
                     uint32_t nhandles, uint8_t *out, size_t *len, size_t cap);

/* Append a console-line op (the line cut to 63 bytes). 0, or -1 if it does not fit. */
int trace_corpus_line(const char *line, size_t n, uint8_t *out, size_t *len, size_t cap);

/*
 * Read the trace at db_path and write one input per (server, client channel) that
 * server received messages on, as DIR/<server>/<trace name>-ch<endpoint>, plus the
 * console lines of the run as DIR/shell/<trace name>-lines and DIR/console/<...>-lines.
 * A session longer than TRACE_CORPUS_MAX bytes continues in <name>.2, <name>.3, ...
 * (short inputs keep the fuzzer's max_len, and so its speed, down).
 * Servers are the fuzz targets: init, echo, console (messages), shell (lines), and tcpip:
 * one input per tcpip task, DIR/tcpip/<trace name>-task<id>, holding the frames it received
 * (trace_corpus_frame) and the tcp, udp and net messages it was sent, in order, in parts of at
 * most TRACE_CORPUS_TCPIP_MAX bytes.
 * DIR (followed if a symlink) and DIR/<server> (never a symlink) are created if missing and
 * must be directories; each input goes to a new temporary file beside its name and is
 * renamed onto it, replacing only a regular file. Everything is checked before anything is
 * written: a refusal (TRACE_CORPUS_REFUSED) leaves DIR as it was.
 * Returns the number of files written, or -1 or TRACE_CORPUS_REFUSED with a one-line
 * message in err.
 */
int trace_corpus_write(const char *db_path, const char *dir, char *err, size_t errlen);

#endif
