/* corpus_net.c — a recorded tcpip's frames and messages as fuzz_tcpip input ops (templates,
 * docs/fuzzing.md). */
#include <trace/corpus.h>

#include <stdbool.h>
#include <string.h>

/*
 * Each frame tcpip received becomes the template op that rebuilds it in fuzz_tcpip
 * (fuzz/tcpip_frames.c reads the fields in the order written here): ARP, ICMP echo, TCP and
 * UDP to the server; anything else (IPv6, fragments, other protocols) is a raw frame. The
 * harness's server is 10.0.0.2 on its own link, so the template answers with the harness's
 * addresses and sequence numbers, not the recorded ones: the conversation keeps its shape
 * (handshake, data both ways, FIN) at whatever numbers the fuzzed server picks. The flows are
 * numbered as the harness numbers them: in the order they start, a slot freed by a RST.
 */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

typedef struct w {
    uint8_t *o;
    size_t n, cap;
    bool full;
} w_t;

static void put(w_t *w, uint8_t b)
{
    if (w->n < w->cap)
        w->o[w->n++] = b;
    else
        w->full = true;
}

static void put_bytes(w_t *w, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        put(w, p[i]);
}

/* The harness's payload length: a byte, or 255 and b for b * 8 bytes (the tail is cut). */
static size_t put_len(w_t *w, size_t len)
{
    if (len < 255) {
        put(w, (uint8_t)len);
        return len;
    }
    size_t b = len / 8 > 255 ? 255 : len / 8;
    put(w, 255);
    put(w, (uint8_t)b);
    return b * 8;
}

static int flow_slot(trace_corpus_net_t *s, uint32_t rip, uint16_t rport, uint16_t lport)
{
    for (int i = 0; i < TRACE_CORPUS_FLOWS; i++)
        if (s->flows[i].used && s->flows[i].rip == rip && s->flows[i].rport == rport &&
            s->flows[i].lport == lport)
            return i;
    return -1;
}

static int flow_new(trace_corpus_net_t *s, uint32_t rip, uint16_t rport, uint16_t lport)
{
    int slot = -1;
    for (int i = 0; i < TRACE_CORPUS_FLOWS && slot < 0; i++)
        if (!s->flows[i].used)
            slot = i;
    if (slot < 0)
        slot = 0; /* the harness then reuses a slot by port; good enough for a seed */
    s->flows[slot].used = true;
    s->flows[slot].rip = rip;
    s->flows[slot].rport = rport;
    s->flows[slot].lport = lport;
    return slot;
}

void trace_corpus_net_sent(trace_corpus_net_t *s, const uint8_t *f, size_t len)
{
    /* the server's own SYN (a connect) opens a flow in the harness too; a RST ends one */
    if (len < 54 || get16(f + 12) != 0x0800 || f[23] != 6 || (f[14] & 15) != 5)
        return;
    const uint8_t *t = f + 34;
    uint32_t rip = get32(f + 30);
    uint16_t lport = get16(t), rport = get16(t + 2);
    int slot = flow_slot(s, rip, rport, lport);
    if (t[13] & 0x04) {
        if (slot >= 0)
            s->flows[slot].used = false;
    } else if (slot < 0) {
        flow_new(s, rip, rport, lport);
    }
}

/* TCP to the server (fuzz/tcpip_frames.c tcp_seg). */
static void tcp_op(trace_corpus_net_t *s, w_t *w, const uint8_t *f, size_t len)
{
    const uint8_t *t = f + 34;
    size_t ip_len = get16(f + 16), doff = (size_t)(t[12] >> 4) * 4;
    size_t dlen = ip_len > 20 + doff ? ip_len - 20 - doff : 0;
    if (34 + doff + dlen > len)
        dlen = len > 34 + doff ? len - 34 - doff : 0;
    uint8_t flags = t[13] & 0x3f;
    uint32_t rip = get32(f + 26);
    uint16_t rport = get16(t), lport = get16(t + 2);
    int slot = flow_slot(s, rip, rport, lport);
    bool fresh = slot < 0 || (flags & 0x12) == 0x02;
    if (fresh) {
        if (slot >= 0)
            s->flows[slot].used = false;
        slot = flow_new(s, rip, rport, lport);
    }
    put(w, (uint8_t)slot); /* which flow */
    put(w, 0xf0);          /* these flags exactly: */
    put(w, fresh ? 0x02 : flags);
    put(w, 0); /* a new flow: to the first listening port (7), */
    put(w, 0); /* from 10.0.0.1, */
    put(w, 0); /* our initial sequence number */
    put(w, 0); /* sequence and acknowledgement numbers as the harness tracks them */
    uint16_t win = get16(t + 14);
    put(w, win == 0xffff ? 0 : (uint8_t)(200 + (win / 64 > 55 ? 55 : win / 64)));
    put(w, 0); /* an MSS option of 1460 on a SYN, no other options */
    if (!(flags & 0x04))
        put_bytes(w, t + doff, put_len(w, dlen));
    if (flags & 0x04)
        s->flows[slot].used = false;
}

int trace_corpus_frame(trace_corpus_net_t *s, const uint8_t *f, size_t len, uint64_t step_ns,
                       uint8_t *out, size_t *olen, size_t cap)
{
    w_t w = {.o = out, .n = *olen, .cap = cap};
    uint64_t steps = step_ns / TRACE_CORPUS_TCPIP_STEP_NS;
    uint8_t step = (uint8_t)(steps > 31 ? 31 : steps);
    uint16_t type = len >= 14 ? get16(f + 12) : 0;
    bool v4 = type == 0x0800 && len >= 34 && f[14] == 0x45 && (get16(f + 20) & 0x3fff) == 0;
    uint8_t proto = v4 ? f[23] : 0;
    if (type == 0x0806 && len >= 42 && (get16(f + 20) == 1 || get16(f + 20) == 2)) {
        bool req = get16(f + 20) == 1;
        put(&w, TRACE_CORPUS_TCPIP_FRAME);
        put(&w, step);
        put(&w, req ? TRACE_CORPUS_TPL_ARP_REQUEST : TRACE_CORPUS_TPL_ARP_REPLY);
        put(&w, 0); /* no mutation */
        put(&w, 0); /* from 10.0.0.1 */
        if (req)
            put(&w, 0); /* asking for the server */
    } else if (v4 && proto == 1 && len >= 42 && (f[34] == 8 || f[34] == 0)) {
        bool req = f[34] == 8;
        size_t plen = get16(f + 16) > 28 ? (size_t)get16(f + 16) - 28 : 0;
        if (42 + plen > len)
            plen = len - 42;
        put(&w, TRACE_CORPUS_TCPIP_FRAME);
        put(&w, step);
        put(&w, req ? TRACE_CORPUS_TPL_ECHO_REQUEST : TRACE_CORPUS_TPL_ECHO_REPLY);
        put(&w, 0);
        put(&w, 0); /* from 10.0.0.1 (a reply: from whom the server pinged) */
        if (req) {
            put_bytes(&w, f + 42, put_len(&w, plen));
            put(&w, f[38]); /* id */
            put(&w, f[39]);
            put(&w, f[41]); /* seq (low byte) */
            put(&w, 0);     /* to the server, not the broadcast address */
        }
    } else if (v4 && proto == 6 && len >= 54 && (f[46] >> 4) >= 5) {
        put(&w, TRACE_CORPUS_TCPIP_FRAME);
        put(&w, step);
        put(&w, TRACE_CORPUS_TPL_TCP);
        put(&w, 0);
        tcp_op(s, &w, f, len);
    } else if (v4 && proto == 17 && len >= 42) {
        size_t plen = get16(f + 38) > 8 ? (size_t)get16(f + 38) - 8 : 0;
        if (42 + plen > len)
            plen = len - 42;
        put(&w, TRACE_CORPUS_TCPIP_FRAME);
        put(&w, step);
        put(&w, TRACE_CORPUS_TPL_UDP);
        put(&w, 0);
        put(&w, 0); /* from 10.0.0.1 */
        put(&w, 0); /* to the first bound port (7) */
        put(&w, 0); /* from port 53 */
        put_bytes(&w, f + 42, put_len(&w, plen));
    } else {
        size_t n = len > 1514 ? 1514 : len;
        put(&w, TRACE_CORPUS_TCPIP_RAW);
        put(&w, step);
        put(&w, (uint8_t)n);
        put(&w, (uint8_t)(n >> 8));
        put_bytes(&w, f, n);
    }
    if (w.full)
        return -1;
    *olen = w.n;
    return 0;
}
