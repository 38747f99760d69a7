/* ether.c — one line per Ethernet frame for `trace show`: Ethernet, ARP, IPv4/IPv6, ICMP, UDP
 * (DHCP, DNS) and TCP, like tcpdump's one-liners; every read is bounded by the frame. */
#include <trace/pcap.h>

#include <stdio.h>
#include <string.h>

#include "outbuf.h"

/* A bounded view of the bytes of one layer. */
typedef struct view {
    const unsigned char *b;
    size_t n;
} view;

static unsigned u8(view v, size_t off)
{
    return v.b[off];
}

static unsigned u16(view v, size_t off)
{
    return (unsigned)v.b[off] << 8 | v.b[off + 1];
}

static uint32_t u32(view v, size_t off)
{
    return (uint32_t)v.b[off] << 24 | (uint32_t)v.b[off + 1] << 16 | (uint32_t)v.b[off + 2] << 8 |
           v.b[off + 3];
}

static view skip(view v, size_t k)
{
    return k >= v.n ? (view){v.b + v.n, 0} : (view){v.b + k, v.n - k};
}

/* true when v holds need bytes; otherwise says so ("[truncated TCP header: 7 of 20 bytes]"). */
static bool need(trace_outbuf *o, view v, size_t need_n, const char *what)
{
    if (v.n >= need_n)
        return true;
    trace_outbuf_put(o, "[truncated %s: %zu of %zu bytes]", what, v.n, need_n);
    return false;
}

static void add_mac(trace_outbuf *o, view v, size_t off)
{
    trace_outbuf_put(o, "%02x:%02x:%02x:%02x:%02x:%02x", u8(v, off), u8(v, off + 1), u8(v, off + 2),
                     u8(v, off + 3), u8(v, off + 4), u8(v, off + 5));
}

static void add_ip4(trace_outbuf *o, view v, size_t off)
{
    trace_outbuf_put(o, "%u.%u.%u.%u", u8(v, off), u8(v, off + 1), u8(v, off + 2), u8(v, off + 3));
}

/* RFC 5952's short form, enough to read a trace: the longest run of zero groups becomes "::". */
static void add_ip6(trace_outbuf *o, view v, size_t off)
{
    unsigned g[8];
    int best = -1, bestlen = 0;
    for (int i = 0; i < 8; i++)
        g[i] = u16(v, off + 2 * (size_t)i);
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > bestlen && j - i >= 2) {
            best = i;
            bestlen = j - i;
        }
        i = j > i ? j : i + 1;
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            trace_outbuf_put(o, "::");
            i += bestlen - 1;
            continue;
        }
        trace_outbuf_put(o, "%s%x", i > 0 && i != best + bestlen ? ":" : "", g[i]);
    }
}

/* ---- ARP -------------------------------------------------------------------------------- */

static void arp(trace_outbuf *o, view v)
{
    trace_outbuf_put(o, "ARP ");
    if (!need(o, v, 8, "ARP header"))
        return;
    unsigned htype = u16(v, 0), ptype = u16(v, 2), hlen = u8(v, 4), plen = u8(v, 5);
    unsigned op = u16(v, 6);
    if (htype != 1 || ptype != 0x0800 || hlen != 6 || plen != 4) {
        trace_outbuf_put(o, "op %u (hardware %u/%u, protocol %#06x/%u)", op, htype, hlen, ptype,
                         plen);
        return;
    }
    if (!need(o, v, 28, "ARP"))
        return;
    /* sender MAC 8, sender IP 14, target MAC 18, target IP 24 */
    if (op == 1) {
        trace_outbuf_put(o, "who-has ");
        add_ip4(o, v, 24);
        trace_outbuf_put(o, " tell ");
        add_ip4(o, v, 14);
    } else if (op == 2) {
        add_ip4(o, v, 14);
        trace_outbuf_put(o, " is-at ");
        add_mac(o, v, 8);
    } else {
        trace_outbuf_put(o, "op %u", op);
    }
}

/* ---- ICMP ------------------------------------------------------------------------------- */

static void icmp(trace_outbuf *o, view v)
{
    trace_outbuf_put(o, "ICMP ");
    if (!need(o, v, 4, "ICMP header"))
        return;
    unsigned type = u8(v, 0), code = u8(v, 1);
    if (type == 0 || type == 8) {
        if (!need(o, v, 8, "ICMP echo"))
            return;
        trace_outbuf_put(o, "echo %s id %u seq %u len %zu", type == 8 ? "request" : "reply",
                         u16(v, 4), u16(v, 6), v.n - 8);
    } else if (type == 3) {
        trace_outbuf_put(o, "unreachable code %u", code);
    } else if (type == 11) {
        trace_outbuf_put(o, "time exceeded code %u", code);
    } else {
        trace_outbuf_put(o, "type %u code %u", type, code);
    }
}

static void icmp6(trace_outbuf *o, view v)
{
    static const struct {
        unsigned type;
        const char *name;
    } names[] = {
        {1, "unreachable"},
        {2, "packet too big"},
        {3, "time exceeded"},
        {128, "echo request"},
        {129, "echo reply"},
        {130, "multicast listener query"},
        {131, "MLD report"},
        {133, "router solicitation"},
        {134, "router advertisement"},
        {135, "neighbor solicitation"},
        {136, "neighbor advertisement"},
        {143, "MLDv2 report"},
    };
    trace_outbuf_put(o, "ICMPv6 ");
    if (!need(o, v, 4, "ICMPv6 header"))
        return;
    unsigned type = u8(v, 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].type == type) {
            trace_outbuf_put(o, "%s", names[i].name);
            if ((type == 128 || type == 129) && v.n >= 8)
                trace_outbuf_put(o, " id %u seq %u", u16(v, 4), u16(v, 6));
            if ((type == 135 || type == 136) && v.n >= 24) {
                trace_outbuf_put(o, " ");
                add_ip6(o, v, 8);
            }
            return;
        }
    }
    trace_outbuf_put(o, "type %u code %u", type, u8(v, 1));
}

/* ---- UDP: DHCP, DNS ---------------------------------------------------------------------- */

static void dhcp(trace_outbuf *o, view v)
{
    static const char *const types[] = {"?",   "DISCOVER", "OFFER",   "REQUEST", "DECLINE",
                                        "ACK", "NAK",      "RELEASE", "INFORM"};
    trace_outbuf_put(o, ", DHCP ");
    /* op, htype, hlen, hops, xid 4, secs, flags, ciaddr, yiaddr 16, siaddr, giaddr, chaddr 28,
     * sname 44, file 108, magic 236, options 240 */
    if (!need(o, v, 240, "BOOTP"))
        return;
    unsigned op = u8(v, 0);
    uint32_t xid = u32(v, 4);
    if (u32(v, 236) != 0x63825363) {
        trace_outbuf_put(o, "BOOTP %s xid %#010x (no DHCP magic)", op == 1 ? "request" : "reply",
                         (unsigned)xid);
        return;
    }
    int mtype = -1;
    for (size_t off = 240; off < v.n;) {
        unsigned tag = u8(v, off);
        if (tag == 0) { /* pad */
            off++;
            continue;
        }
        if (tag == 255 || off + 1 >= v.n)
            break;
        unsigned l = u8(v, off + 1);
        if (off + 2 + l > v.n)
            break;
        if (tag == 53 && l >= 1)
            mtype = (int)u8(v, off + 2);
        off += 2 + l;
    }
    if (mtype > 0 && mtype < (int)(sizeof(types) / sizeof(types[0])))
        trace_outbuf_put(o, "%s", types[mtype]);
    else if (mtype >= 0)
        trace_outbuf_put(o, "type %d", mtype);
    else
        trace_outbuf_put(o, "%s (no message type)", op == 1 ? "request" : "reply");
    trace_outbuf_put(o, " xid %#010x", (unsigned)xid);
    if (u32(v, 16)) {
        trace_outbuf_put(o, " yiaddr ");
        add_ip4(o, v, 16);
    }
}

/* A DNS name at off (compression pointers followed, at most 16 hops); false when malformed. */
static bool dns_name(trace_outbuf *o, view v, size_t off)
{
    int hops = 0, labels = 0;
    bool first = true;
    for (;;) {
        if (off >= v.n)
            return false;
        unsigned l = u8(v, off);
        if ((l & 0xc0) == 0xc0) {
            if (off + 1 >= v.n || ++hops > 16)
                return false;
            off = ((l & 0x3f) << 8) | u8(v, off + 1);
            continue;
        }
        if (l & 0xc0)
            return false;
        if (l == 0) {
            if (first)
                trace_outbuf_put(o, ".");
            return true;
        }
        if (off + 1 + l > v.n || ++labels > 128)
            return false;
        if (!first)
            trace_outbuf_put(o, ".");
        for (unsigned i = 0; i < l; i++) {
            unsigned c = u8(v, off + 1 + i);
            if (c > 0x20 && c < 0x7f && c != '\\')
                trace_outbuf_put(o, "%c", (int)c);
            else
                trace_outbuf_put(o, "\\%03u", c);
        }
        first = false;
        off += 1 + l;
    }
}

static void dns(trace_outbuf *o, view v)
{
    trace_outbuf_put(o, ", DNS ");
    if (!need(o, v, 12, "DNS header"))
        return;
    unsigned id = u16(v, 0), flags = u16(v, 2), qd = u16(v, 4), an = u16(v, 6);
    bool resp = flags & 0x8000;
    trace_outbuf_put(o, "%s id %#06x", resp ? "response" : "query", id);
    if (resp)
        trace_outbuf_put(o, " rcode %u answers %u", flags & 0xf, an);
    if (qd == 0)
        return;
    trace_outbuf_put(o, " ");
    size_t mark = o->len;
    if (!dns_name(o, v, 12)) {
        o->len = mark;
        o->p[mark] = 0;
        trace_outbuf_put(o, "[bad name]");
        return;
    }
    /* the question's type follows the name as written (not where pointers led) */
    size_t off = 12;
    while (off < v.n && u8(v, off) != 0 && (u8(v, off) & 0xc0) != 0xc0)
        off += 1 + u8(v, off);
    off += off < v.n && (u8(v, off) & 0xc0) == 0xc0 ? 2 : 1;
    if (off + 2 <= v.n) {
        unsigned qt = u16(v, off);
        const char *name = qt == 1    ? "A"
                           : qt == 28 ? "AAAA"
                           : qt == 5  ? "CNAME"
                           : qt == 12 ? "PTR"
                                      : NULL;
        if (name)
            trace_outbuf_put(o, " %s", name);
        else
            trace_outbuf_put(o, " type %u", qt);
    }
}

static void udp(trace_outbuf *o, view v)
{
    trace_outbuf_put(o, "UDP ");
    if (!need(o, v, 8, "UDP header"))
        return;
    unsigned sp = u16(v, 0), dp = u16(v, 2), ulen = u16(v, 4);
    trace_outbuf_put(o, "%u > %u len %u", sp, dp, ulen >= 8 ? ulen - 8 : 0);
    if (ulen < 8) {
        trace_outbuf_put(o, " [bad UDP length %u]", ulen);
        return;
    }
    view body = skip(v, 8);
    if (ulen - 8u < body.n)
        body.n = ulen - 8u;
    else if (ulen - 8u > body.n) {
        trace_outbuf_put(o, " [truncated UDP: %zu of %u bytes]", body.n, ulen - 8);
        return;
    }
    if ((sp == 67 || sp == 68) && (dp == 67 || dp == 68))
        dhcp(o, body);
    else if (sp == 53 || dp == 53)
        dns(o, body);
}

/* ---- TCP -------------------------------------------------------------------------------- */

static void tcp(trace_outbuf *o, view v)
{
    trace_outbuf_put(o, "TCP ");
    if (!need(o, v, 20, "TCP header"))
        return;
    unsigned sp = u16(v, 0), dp = u16(v, 2), doff = u8(v, 12) >> 4, fl = u8(v, 13);
    trace_outbuf_put(o, "%u > %u [", sp, dp);
    /* tcpdump's letters; "." is ACK */
    static const struct {
        unsigned bit;
        char c;
    } flags[] = {{0x02, 'S'}, {0x01, 'F'}, {0x08, 'P'}, {0x04, 'R'},
                 {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'}, {0x10, '.'}};
    bool any = false;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (fl & flags[i].bit) {
            trace_outbuf_put(o, "%c", flags[i].c);
            any = true;
        }
    if (!any)
        trace_outbuf_put(o, "none");
    trace_outbuf_put(o, "] seq %u", (unsigned)u32(v, 4));
    if (fl & 0x10)
        trace_outbuf_put(o, " ack %u", (unsigned)u32(v, 8));
    trace_outbuf_put(o, " win %u", u16(v, 14));
    if (doff < 5) {
        trace_outbuf_put(o, " [bad TCP header length %u]", doff * 4);
        return;
    }
    if (v.n < doff * 4u) {
        trace_outbuf_put(o, " [truncated TCP options: %zu of %u bytes]", v.n, doff * 4);
        return;
    }
    trace_outbuf_put(o, " len %zu", v.n - doff * 4u);
}

/* ---- IP --------------------------------------------------------------------------------- */

static void transport(trace_outbuf *o, unsigned proto, view v)
{
    switch (proto) {
    case 1:
        icmp(o, v);
        break;
    case 6:
        tcp(o, v);
        break;
    case 17:
        udp(o, v);
        break;
    case 58:
        icmp6(o, v);
        break;
    default:
        trace_outbuf_put(o, "proto %u len %zu", proto, v.n);
        break;
    }
}

static void ipv4(trace_outbuf *o, view v)
{
    trace_outbuf_put(o, "IPv4 ");
    if (!need(o, v, 20, "IPv4 header"))
        return;
    unsigned ver = u8(v, 0) >> 4, ihl = (u8(v, 0) & 0xf) * 4u, total = u16(v, 2);
    unsigned frag = u16(v, 6), proto = u8(v, 9);
    add_ip4(o, v, 12);
    trace_outbuf_put(o, " > ");
    add_ip4(o, v, 16);
    trace_outbuf_put(o, ": ");
    if (ver != 4 || ihl < 20) {
        trace_outbuf_put(o, "[bad IPv4 header: version %u, length %u]", ver, ihl);
        return;
    }
    if (total < ihl) {
        trace_outbuf_put(o, "[bad IPv4 total length %u]", total);
        return;
    }
    if (v.n < ihl) {
        trace_outbuf_put(o, "[truncated IPv4 options: %zu of %u bytes]", v.n, ihl);
        return;
    }
    view body = skip(v, ihl);
    size_t want = total - ihl;
    bool cut = body.n < want;
    if (!cut)
        body.n = want; /* Ethernet pads short frames: the padding is not the datagram's */
    if (frag & 0x1fff) {
        trace_outbuf_put(o, "fragment of proto %u offset %u len %zu", proto, (frag & 0x1fff) * 8u,
                         want);
        return;
    }
    if (cut) {
        trace_outbuf_put(o, "[truncated IPv4: %zu of %zu bytes] ", body.n, want);
    }
    transport(o, proto, body);
    if (frag & 0x2000)
        trace_outbuf_put(o, " (first fragment)");
}

static void ipv6(trace_outbuf *o, view v)
{
    trace_outbuf_put(o, "IPv6 ");
    if (!need(o, v, 40, "IPv6 header"))
        return;
    unsigned plen = u16(v, 4), next = u8(v, 6);
    add_ip6(o, v, 8);
    trace_outbuf_put(o, " > ");
    add_ip6(o, v, 24);
    trace_outbuf_put(o, ": ");
    view body = skip(v, 40);
    if (body.n < plen) {
        trace_outbuf_put(o, "[truncated IPv6: %zu of %u bytes] ", body.n, plen);
    } else {
        body.n = plen;
    }
    /* Hop-by-hop options (MLD reports carry one): step over, as far as they are there. */
    if (next == 0 && body.n >= 8) {
        size_t hl = (u8(body, 1) + 1u) * 8u;
        next = u8(body, 0);
        body = skip(body, hl);
    }
    transport(o, next, body);
}

const char *trace_ether_describe(const void *data, size_t len, char *buf, size_t buflen)
{
    trace_outbuf o = {buf, buflen, 0};
    view v = {data, data ? len : 0};

    if (!buflen)
        return buf;
    buf[0] = 0;
    if (!need(&o, v, 14, "Ethernet header"))
        return buf;
    add_mac(&o, v, 6);
    trace_outbuf_put(&o, " > ");
    add_mac(&o, v, 0);
    trace_outbuf_put(&o, ", ");
    unsigned type = u16(v, 12);
    view body = skip(v, 14);
    if (type == 0x8100 && body.n >= 4) {
        trace_outbuf_put(&o, "802.1Q vlan %u, ", u16(body, 0) & 0xfff);
        type = u16(body, 2);
        body = skip(body, 4);
    }
    switch (type) {
    case 0x0806:
        arp(&o, body);
        break;
    case 0x0800:
        ipv4(&o, body);
        break;
    case 0x86dd:
        ipv6(&o, body);
        break;
    default:
        if (type <= 1500)
            trace_outbuf_put(&o, "802.3 length %u", type);
        else
            trace_outbuf_put(&o, "ethertype %#06x len %zu", type, body.n);
        break;
    }
    return buf;
}
