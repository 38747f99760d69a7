/* tcpip_frames.c — fuzz_tcpip's frame builder: templates of ARP, ICMP, TCP, UDP, IPv6 ND and
 * fragments. */
#include "fuzz_tcpip.h"

#include <string.h>

/*
 * The link: the server 10.0.0.2 (52:54:00:12:34:56) and three remotes: 10.0.0.1 (the gateway),
 * 10.0.0.3 (a neighbour) and 192.0.2.7 (off the subnet, behind the gateway's MAC). The
 * templates answer what the server sent (its ARP request, its ping, its TCP sequence
 * numbers), so an input gets past the handshake into lwIP's data paths; the mutation byte
 * and the fields from the input move them off the beaten path.
 */
static const uint32_t remotes[3] = {0x0a000001, 0x0a000003, 0xc0000207};

static void mac_of(uint32_t ip, uint8_t mac[6])
{
    uint32_t on_link = (ip & 0xffffff00u) == 0x0a000000u ? ip : 0x0a000001u;
    const uint8_t m[6] = {0x02, 0, 0, 0, (uint8_t)(on_link >> 8), (uint8_t)on_link};
    memcpy(mac, m, 6);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint32_t sum(const uint8_t *p, size_t len, uint32_t acc)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        acc += get16(p + i);
    if (len & 1)
        acc += (uint32_t)p[len - 1] << 8;
    return acc;
}

static uint16_t fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

void fz_net_reset(fz_net_t *n)
{
    memset(n, 0, sizeof *n);
    const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(n->our_mac, mac, 6);
    n->our_ip = 0x0a000002;
    n->next_rport = 40000;
    fz_net_note_port(n, 7, false);
    fz_net_note_port(n, 7, true);
}

void fz_net_note_port(fz_net_t *n, uint16_t port, bool udp)
{
    uint16_t *v = udp ? n->udp_ports : n->tcp_ports;
    int *c = udp ? &n->nudp : &n->ntcp;
    for (int i = 0; i < *c; i++)
        if (v[i] == port)
            return;
    if (*c < FZ_PORTS)
        v[(*c)++] = port;
    else
        v[port % FZ_PORTS] = port;
}

static fz_flow_t *flow_find(fz_net_t *n, uint32_t rip, uint16_t rport, uint16_t lport, bool make)
{
    fz_flow_t *free_slot = NULL;
    for (int i = 0; i < FZ_FLOWS; i++) {
        fz_flow_t *f = &n->flows[i];
        if (f->used && f->rip == rip && f->rport == rport && f->lport == lport)
            return f;
        if (!f->used && !free_slot)
            free_slot = f;
    }
    if (!make)
        return NULL;
    if (!free_slot)
        free_slot = &n->flows[rport % FZ_FLOWS]; /* the oldest is as good as any */
    *free_slot = (fz_flow_t){
        .used = true, .rip = rip, .rport = rport, .lport = lport, .our_nxt = 0x1000 + rport};
    return free_slot;
}

static bool seq_after(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

void fz_net_observe(fz_net_t *n, const uint8_t *f, size_t len)
{
    n->frames_seen++;
    if (len < 14)
        return;
    uint16_t type = get16(f + 12);
    if (type == 0x0806 && len >= 42 && get16(f + 20) == 1) {
        n->arp_asked = get32(f + 38); /* who has it? */
        return;
    }
    if (type != 0x0800 || len < 34 || (f[14] >> 4) != 4)
        return;
    const uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 15) * 4, tot = get16(ip + 2);
    if (ihl < 20 || tot < ihl || 14 + tot > len || (get16(ip + 6) & 0x3fff) != 0)
        return; /* fragments of the server's own datagrams are not tracked */
    const uint8_t *l4 = ip + ihl;
    size_t l4len = tot - ihl;
    uint32_t dst = get32(ip + 16);
    if (ip[9] == 1 && l4len >= 8 && l4[0] == 8) { /* its ping */
        n->ping_seen = true;
        n->ping_dst = dst;
        n->ping_id = get16(l4 + 4);
        n->ping_seq = get16(l4 + 6);
        n->ping_len = (uint16_t)(l4len - 8 > FZ_ECHO_MAX ? FZ_ECHO_MAX : l4len - 8);
        memcpy(n->ping_data, l4 + 8, n->ping_len);
    } else if (ip[9] == 17 && l4len >= 8) {
        fz_net_note_port(n, get16(l4), true); /* a socket that sends can receive */
    } else if (ip[9] == 6 && l4len >= 20) {
        uint16_t lport = get16(l4), rport = get16(l4 + 2);
        size_t doff = (size_t)(l4[12] >> 4) * 4;
        if (doff < 20 || doff > l4len)
            return;
        uint8_t flags = l4[13];
        uint32_t seq = get32(l4 + 4), ack = get32(l4 + 8);
        fz_flow_t *fl = flow_find(n, dst, rport, lport, (flags & 0x04) == 0);
        if (!fl)
            return;
        if (flags & 0x04) { /* RST: the flow is over */
            fl->used = false;
            return;
        }
        uint32_t end = seq + (uint32_t)(l4len - doff) + !!(flags & 0x02) + !!(flags & 0x01);
        if ((flags & 0x02) || seq_after(end, fl->srv_nxt))
            fl->srv_nxt = end;
        if ((flags & 0x10) && seq_after(ack, fl->our_nxt))
            fl->our_nxt = ack;
    }
}

/* ---- building ------------------------------------------------------------------------------- */

typedef struct bld {
    uint8_t *f;
    size_t max, len;
} bld_t;

static void eth(bld_t *b, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
    memcpy(b->f, dst, 6);
    memcpy(b->f + 6, src, 6);
    put16(b->f + 12, type);
    b->len = 14;
}

/* Input bytes (zeros once it runs out), at most max. */
static size_t fill(fz_in_t *in, uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = fz_byte(in);
    return len;
}

/* A payload length: one byte, 255 then another for up to 255*8. */
static size_t paylen(fz_in_t *in, size_t max)
{
    size_t len = fz_byte(in);
    if (len == 255)
        len = (size_t)fz_byte(in) * 8;
    return len > max ? max : len;
}

/* The IPv4 header at b->f + 14 for an l4len-byte payload already in place at +34. */
static void ip4(bld_t *b, uint8_t proto, uint32_t src, uint32_t dst, size_t l4len, uint16_t id,
                uint16_t frag)
{
    uint8_t *ip = b->f + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, (uint16_t)(20 + l4len));
    put16(ip + 4, id);
    put16(ip + 6, frag);
    ip[8] = 64;
    ip[9] = proto;
    put16(ip + 10, 0);
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, fold(sum(ip, 20, 0)));
    b->len = 34 + l4len;
}

/* The TCP or UDP checksum over the pseudo-header and l4len bytes at +34. */
static uint16_t l4sum4(const uint8_t *l4, size_t l4len, uint8_t proto, uint32_t src, uint32_t dst)
{
    uint8_t ph[12];
    put32(ph, src);
    put32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = proto;
    put16(ph + 10, (uint16_t)l4len);
    return fold(sum(l4, l4len, sum(ph, 12, 0)));
}

static uint32_t remote(fz_in_t *in)
{
    uint8_t r = fz_byte(in);
    return r < 240 ? remotes[r % 3] : 0x0a000000u | r; /* now and then another 10.0.0.x */
}

static void arp(bld_t *b, fz_net_t *n, uint16_t op, uint32_t sip, uint32_t tip, bool bcast)
{
    static const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t smac[6];
    mac_of(sip, smac);
    eth(b, bcast ? bc : n->our_mac, smac, 0x0806);
    uint8_t *a = b->f + 14;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, smac, 6);
    put32(a + 14, sip);
    memcpy(a + 18, op == 1 ? (const uint8_t[6]){0} : n->our_mac, 6);
    put32(a + 24, tip);
    b->len = 42;
}

static void icmp_echo(bld_t *b, fz_net_t *n, fz_in_t *in, bool reply)
{
    uint32_t src = remote(in), dst = n->our_ip;
    uint8_t smac[6];
    uint8_t *l4 = b->f + 34;
    size_t len;
    if (reply && n->ping_seen) {
        src = n->ping_dst;
        len = n->ping_len;
        memcpy(l4 + 8, n->ping_data, len);
        put16(l4 + 4, n->ping_id);
        put16(l4 + 6, n->ping_seq);
    } else {
        len = fill(in, l4 + 8, paylen(in, b->max - 42));
        uint8_t hi = fz_byte(in);
        put16(l4 + 4, (uint16_t)(hi << 8 | fz_byte(in)));
        put16(l4 + 6, fz_byte(in));
        if (fz_byte(in) >= 250)
            dst = 0x0a0000ff; /* the subnet's broadcast */
    }
    mac_of(src, smac);
    eth(b, n->our_mac, smac, 0x0800);
    l4[0] = reply ? 0 : 8;
    l4[1] = 0;
    put16(l4 + 2, 0);
    put16(l4 + 2, fold(sum(l4, 8 + len, 0)));
    ip4(b, 1, src, dst, 8 + len, 0x4000, 0x4000);
}

static const uint8_t tcp_flag_sets[8] = {
    0x02, /* SYN */
    0x10, /* ACK */
    0x18, /* PSH|ACK (data) */
    0x18, /* data again: the common case */
    0x11, /* FIN|ACK */
    0x04, /* RST */
    0x14, /* RST|ACK */
    0x12, /* SYN|ACK (answers the server's connect) */
};

static void tcp_seg(bld_t *b, fz_net_t *n, fz_in_t *in)
{
    uint8_t sel = fz_byte(in);
    uint8_t fl = fz_byte(in);
    uint8_t flags = fl >= 0xf0 ? fz_byte(in) : tcp_flag_sets[fl % 8];
    /* read whether used or not, so an input's bytes mean the same in any state */
    uint8_t p = fz_byte(in);
    uint32_t rip = remote(in);
    uint8_t isn = fz_byte(in);
    fz_flow_t *f = &n->flows[sel % FZ_FLOWS];
    if (!f->used || (flags & 0x12) == 0x02) {
        /* a new connection to a port the server listens on (or any port) */
        uint16_t lport = p < 224 ? n->tcp_ports[p % n->ntcp] : (uint16_t)(p * 257);
        f = flow_find(n, rip, n->next_rport++, lport, true);
        if (n->next_rport < 40000)
            n->next_rport = 40000;
        f->our_nxt = (uint32_t)isn * 0x01000193u;
        flags = 0x02;
    }
    /* the numbers: right, or a little (or a lot) off */
    uint8_t d = fz_byte(in);
    uint32_t seq = f->our_nxt, ack = f->srv_nxt;
    if (d >= 0xc0)
        seq += (uint32_t)(int8_t)fz_byte(in) * ((d & 0x10) ? 1000u : 1u);
    if ((d & 0xe0) == 0xa0)
        ack += (uint32_t)(int8_t)fz_byte(in);
    uint8_t w = fz_byte(in);
    uint16_t win = w < 200 ? 0xffff : (uint16_t)(w - 200) * 64;
    uint8_t *l4 = b->f + 34;
    size_t optlen = 0;
    uint8_t o = fz_byte(in);
    if (flags & 0x02) {
        l4[20] = 2; /* MSS */
        l4[21] = 4;
        put16(l4 + 22, o < 128 ? 1460 : (uint16_t)(o * 11));
        optlen = 4;
    }
    if (o >= 200) /* raw options, padded to a multiple of 4 */
        optlen += fill(in, l4 + 20 + optlen, (size_t)(o % 5) * 4);
    size_t dlen = (flags & 0x04) ? 0 : paylen(in, b->max - 54 - optlen);
    fill(in, l4 + 20 + optlen, dlen);
    put16(l4, f->rport);
    put16(l4 + 2, f->lport);
    put32(l4 + 4, seq);
    put32(l4 + 8, (flags & 0x10) ? ack : 0);
    l4[12] = (uint8_t)(((20 + optlen) / 4) << 4);
    l4[13] = flags;
    put16(l4 + 14, win);
    put16(l4 + 16, 0);
    put16(l4 + 18, (d & 0x0f) == 0x0f ? fz_byte(in) : 0); /* urgent pointer */
    if ((d & 0x0f) == 0x0f)
        l4[13] |= 0x20;
    size_t l4len = 20 + optlen + dlen;
    put16(l4 + 16, l4sum4(l4, l4len, 6, f->rip, n->our_ip));
    uint8_t smac[6];
    mac_of(f->rip, smac);
    eth(b, n->our_mac, smac, 0x0800);
    ip4(b, 6, f->rip, n->our_ip, l4len, (uint16_t)seq, 0x4000);
    /* our side of the stream moves on as if the server took it */
    if (seq == f->our_nxt)
        f->our_nxt += (uint32_t)dlen + !!(flags & 0x02) + !!(flags & 0x01);
    if (flags & 0x04)
        f->used = false;
}

static void udp_dgram(bld_t *b, fz_net_t *n, fz_in_t *in)
{
    uint32_t src = remote(in);
    uint8_t p = fz_byte(in);
    uint16_t dport = p < 240 ? n->udp_ports[p % n->nudp] : (uint16_t)(p * 131);
    uint16_t sport = fz_byte(in) < 128 ? 53 : 30000 + fz_byte(in);
    uint8_t *l4 = b->f + 34;
    size_t dlen = fill(in, l4 + 8, paylen(in, b->max - 42));
    put16(l4, sport);
    put16(l4 + 2, dport);
    put16(l4 + 4, (uint16_t)(8 + dlen));
    put16(l4 + 6, 0);
    uint16_t c = l4sum4(l4, 8 + dlen, 17, src, n->our_ip);
    put16(l4 + 6, c ? c : 0xffff);
    uint8_t smac[6];
    mac_of(src, smac);
    eth(b, n->our_mac, smac, 0x0800);
    ip4(b, 17, src, n->our_ip, 8 + dlen, 0x1234, 0x4000);
}

/*
 * One fragment of a UDP datagram (or ICMP echo) to the server. The datagram's bytes are a
 * function of its IP id, so the fragments of several ops fit together; the transport
 * checksum is over the whole datagram.
 */
static void fragment(bld_t *b, fz_net_t *n, fz_in_t *in)
{
    static uint8_t whole[4096];
    uint8_t k = fz_byte(in);
    uint16_t id = 0x7700 + (k & 3);
    bool icmp = k & 4;
    size_t total = 8 + (size_t)(k >> 3) * 96; /* 8 .. 2984 bytes */
    for (size_t i = 8; i < total; i++)
        whole[i] = (uint8_t)(i * 7 + id);
    uint32_t src = remotes[0];
    if (icmp) {
        whole[0] = 8;
        whole[1] = 0;
        put16(whole + 2, 0);
        put32(whole + 4, 0x00010001);
        put16(whole + 2, fold(sum(whole, total, 0)));
    } else {
        put16(whole, 5000);
        put16(whole + 2, n->udp_ports[0]);
        put16(whole + 4, (uint16_t)total);
        put16(whole + 6, 0);
        put16(whole + 6, l4sum4(whole, total, 17, src, n->our_ip));
    }
    size_t off = (size_t)fz_byte(in) * 8 % ((total + 7) & ~(size_t)7);
    size_t flen = ((size_t)fz_byte(in) % 184 + 1) * 8;
    bool last = off + flen >= total;
    if (last)
        flen = total - off;
    memcpy(b->f + 34, whole + off, flen);
    uint8_t smac[6];
    mac_of(src, smac);
    eth(b, n->our_mac, smac, 0x0800);
    ip4(b, icmp ? 1 : 17, src, n->our_ip, flen, id, (uint16_t)((last ? 0 : 0x2000) | off / 8));
}

/* ICMPv6 from a link-local remote to all nodes: router and neighbour advertisements, echo. */
static void icmp6(bld_t *b, fz_net_t *n, fz_in_t *in)
{
    static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
    uint8_t smac[6];
    mac_of(remote(in), smac);
    uint8_t src[16] = {0xfe, 0x80}, dst[16] = {0xff, 0x02};
    src[8] = smac[0] ^ 2;
    src[9] = smac[1];
    src[10] = smac[2];
    src[11] = 0xff;
    src[12] = 0xfe;
    memcpy(src + 13, smac + 3, 3);
    dst[15] = 1;
    static const uint8_t types[8] = {134, 134, 136, 135, 128, 137, 130, 129};
    uint8_t t = fz_byte(in);
    uint8_t *ip = b->f + 14, *m = ip + 40;
    size_t len = 4;
    m[0] = t >= 248 ? fz_byte(in) : types[t % 8];
    m[1] = 0;
    put16(m + 2, 0);
    if (m[0] == 134) { /* RA: hop limit, flags, lifetime, reachable, retrans; then options */
        len += fill(in, m + 4, 12);
        uint8_t nopt = fz_byte(in) % 4;
        for (uint8_t i = 0; i < nopt && len + 48 < b->max - 54; i++) {
            uint8_t *o = m + len;
            switch (fz_byte(in) % 4) {
            case 0: /* source link-layer address */
                o[0] = 1;
                o[1] = 1;
                memcpy(o + 2, smac, 6);
                len += 8;
                break;
            case 1: /* prefix information: 2001:db8::/64 */
                memset(o, 0, 32);
                o[0] = 3;
                o[1] = 4;
                o[2] = fz_byte(in) < 200 ? 64 : fz_byte(in);
                o[3] = fz_byte(in);
                put32(o + 4, 3600u * fz_byte(in));
                put32(o + 8, 1800u * fz_byte(in));
                o[16] = 0x20;
                o[17] = 0x01;
                o[18] = 0x0d;
                o[19] = 0xb8;
                len += 32;
                break;
            case 2: /* MTU */
                o[0] = 5;
                o[1] = 1;
                put16(o + 2, 0);
                put32(o + 4, 1280u + (uint32_t)fz_byte(in) * 16);
                len += 8;
                break;
            default: /* any: type, length in 8-byte units, bytes */
                o[0] = fz_byte(in);
                o[1] = fz_byte(in) % 4;
                fill(in, o + 2, o[1] ? (size_t)o[1] * 8 - 2 : 6);
                len += o[1] ? (size_t)o[1] * 8 : 8;
                break;
            }
        }
    } else {
        len += fill(in, m + 4, paylen(in, 256));
    }
    ip[0] = 0x60;
    ip[1] = ip[2] = ip[3] = 0;
    put16(ip + 4, (uint16_t)len);
    ip[6] = 58;
    ip[7] = 255;
    memcpy(ip + 8, src, 16);
    memcpy(ip + 24, dst, 16);
    uint8_t ph[8] = {0};
    put32(ph, (uint32_t)len);
    ph[7] = 58;
    put16(m + 2, fold(sum(m, len, sum(ph, 8, sum(ip + 8, 32, 0)))));
    eth(b, all_nodes_mac, smac, 0x86dd);
    b->len = 14 + 40 + len;
    (void)n;
}

size_t fz_net_build(fz_net_t *n, fz_in_t *in, uint8_t *out, size_t max)
{
    bld_t b = {.f = out, .max = max < 1514 ? max : 1514};
    uint8_t t = fz_byte(in);
    uint8_t mut = fz_byte(in);
    memset(out, 0, b.max);
    switch (t % TRACE_CORPUS_TPL_COUNT) {
    case TRACE_CORPUS_TPL_ARP_REQUEST: /* who has 10.0.0.2 (the asker's entry is learned) */
        arp(&b, n, 1, remote(in), fz_byte(in) < 240 ? n->our_ip : 0x0a000000u | fz_byte(in), true);
        break;
    case TRACE_CORPUS_TPL_ARP_REPLY: { /* the answer to what the server asked */
        uint32_t ip = remote(in);
        arp(&b, n, 2, n->arp_asked ? n->arp_asked : ip, n->our_ip, false);
        break;
    }
    case TRACE_CORPUS_TPL_ECHO_REQUEST:
        icmp_echo(&b, n, in, false);
        break;
    case TRACE_CORPUS_TPL_ECHO_REPLY:
        icmp_echo(&b, n, in, true);
        break;
    case TRACE_CORPUS_TPL_TCP:
    case TRACE_CORPUS_TPL_TCP + 1:
    case TRACE_CORPUS_TPL_TCP + 2:
        tcp_seg(&b, n, in);
        break;
    case TRACE_CORPUS_TPL_UDP:
        udp_dgram(&b, n, in);
        break;
    case TRACE_CORPUS_TPL_ICMP6:
        icmp6(&b, n, in);
        break;
    case TRACE_CORPUS_TPL_FRAGMENT:
        fragment(&b, n, in);
        break;
    }
    /* the mutation: now and then flip a byte (a header field, a checksum) or cut the frame */
    if (mut >= 0xe0 && b.len > 0) {
        size_t at = (size_t)fz_byte(in) % b.len;
        out[at] ^= fz_byte(in) | 1;
    } else if (mut >= 0xd8 && b.len > 14) {
        b.len = 14 + (size_t)fz_byte(in) % (b.len - 14);
    }
    return b.len;
}
