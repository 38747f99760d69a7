/* test_pcap.c — the pcap writer (bytes on disk, output rule), the export of a trace's net0 frames
 * (damaged rows skipped and counted) and the one-line frame decoder on hand-built frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <trace/outpath.h>
#include <trace/pcap.h>
#include <trace/reader.h>
#include <trace/recorder.h>

#include <hal/codes.h>
#include <os/errno.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/orrery-pcap-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void in_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    *len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return buf;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* ---- hand-built frames ------------------------------------------------------------------ */

static const uint8_t mac_us[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t mac_gw[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
static const uint8_t mac_bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
enum { IP_US = 0x0a00020f, IP_GW = 0x0a000202 };

static void be16(uint8_t *b, unsigned v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static void be32(uint8_t *b, uint32_t v)
{
    be16(b, v >> 16);
    be16(b + 2, v & 0xffff);
}

static size_t eth(uint8_t *b, const uint8_t *dst, const uint8_t *src, unsigned type)
{
    memcpy(b, dst, 6);
    memcpy(b + 6, src, 6);
    be16(b + 12, type);
    return 14;
}

static size_t ip4(uint8_t *b, unsigned proto, uint32_t src, uint32_t dst, size_t payload)
{
    memset(b, 0, 20);
    b[0] = 0x45;
    be16(b + 2, (unsigned)(20 + payload));
    b[8] = 64;
    b[9] = (uint8_t)proto;
    be32(b + 12, src);
    be32(b + 16, dst);
    return 20;
}

static size_t arp_frame(uint8_t *b, unsigned op)
{
    size_t n = eth(b, op == 1 ? mac_bc : mac_us, op == 1 ? mac_us : mac_gw, 0x0806);
    uint8_t *a = b + n;
    be16(a, 1);
    be16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    be16(a + 6, op);
    memcpy(a + 8, op == 1 ? mac_us : mac_gw, 6);
    be32(a + 14, op == 1 ? IP_US : IP_GW);
    memcpy(a + 18, op == 1 ? mac_bc : mac_us, 6);
    be32(a + 24, op == 1 ? IP_GW : IP_US);
    return n + 28;
}

static size_t icmp_frame(uint8_t *b, unsigned type)
{
    size_t n = eth(b, mac_gw, mac_us, 0x0800);
    n += ip4(b + n, 1, IP_US, IP_GW, 16);
    b[n] = (uint8_t)type;
    b[n + 1] = 0;
    be16(b + n + 2, 0);
    be16(b + n + 4, 0x1234);
    be16(b + n + 6, 7);
    memset(b + n + 8, 'p', 8);
    return n + 16;
}

static size_t udp_hdr(uint8_t *b, unsigned sp, unsigned dp, size_t payload)
{
    be16(b, sp);
    be16(b + 2, dp);
    be16(b + 4, (unsigned)(8 + payload));
    be16(b + 6, 0);
    return 8;
}

static size_t dhcp_frame(uint8_t *b, unsigned mtype)
{
    size_t body = 240 + 3 + 1;
    size_t n = eth(b, mac_bc, mac_us, 0x0800);
    n += ip4(b + n, 17, 0, 0xffffffff, 8 + body);
    n += udp_hdr(b + n, 68, 67, body);
    uint8_t *d = b + n;
    memset(d, 0, body);
    d[0] = 1;
    d[1] = 1;
    d[2] = 6;
    be32(d + 4, 0x01020304);
    memcpy(d + 28, mac_us, 6);
    be32(d + 236, 0x63825363);
    d[240] = 53;
    d[241] = 1;
    d[242] = (uint8_t)mtype;
    d[243] = 255;
    return n + body;
}

static size_t dns_frame(uint8_t *b)
{
    static const uint8_t q[] = {7,   'e', 'x', 'a', 'm', 'p', 'l', 'e', 3,
                                'c', 'o', 'm', 0,   0,   1,   0,   1};
    size_t body = 12 + sizeof(q);
    size_t n = eth(b, mac_gw, mac_us, 0x0800);
    n += ip4(b + n, 17, IP_US, 0x0a000203, 8 + body);
    n += udp_hdr(b + n, 49152, 53, body);
    memset(b + n, 0, 12);
    be16(b + n, 0xabcd);
    be16(b + n + 2, 0x0100);
    be16(b + n + 4, 1);
    memcpy(b + n + 12, q, sizeof(q));
    return n + body;
}

static size_t tcp_frame(uint8_t *b, unsigned flags, size_t payload)
{
    size_t n = eth(b, mac_gw, mac_us, 0x0800);
    n += ip4(b + n, 6, IP_US, IP_GW, 20 + payload);
    uint8_t *t = b + n;
    memset(t, 0, 20);
    be16(t, 49152);
    be16(t + 2, 80);
    be32(t + 4, 1000);
    be32(t + 8, 5001);
    t[12] = 5 << 4;
    t[13] = (uint8_t)flags;
    be16(t + 14, 8192);
    memset(t + 20, 'd', payload);
    return n + 20 + payload;
}

static const char *describe(const uint8_t *b, size_t n)
{
    static char out[512];
    return trace_ether_describe(b, n, out, sizeof(out));
}

/* ---- the decoder --------------------------------------------------------------------------- */

static void decodes_arp(void **state)
{
    uint8_t b[64];
    size_t n = arp_frame(b, 1);
    assert_string_equal(
        "52:54:00:12:34:56 > ff:ff:ff:ff:ff:ff, ARP who-has 10.0.2.2 tell 10.0.2.15",
        describe(b, n));
    n = arp_frame(b, 2);
    assert_string_equal(
        "52:55:0a:00:02:02 > 52:54:00:12:34:56, ARP 10.0.2.2 is-at 52:55:0a:00:02:02",
        describe(b, n));
    /* Ethernet pads a short frame to 60 bytes: the padding changes nothing */
    memset(b + n, 0, 60 - n);
    assert_string_equal(
        "52:55:0a:00:02:02 > 52:54:00:12:34:56, ARP 10.0.2.2 is-at 52:55:0a:00:02:02",
        describe(b, 60));
}

static void decodes_icmp_echo(void **state)
{
    uint8_t b[128];
    size_t n = icmp_frame(b, 8);
    assert_string_equal("52:54:00:12:34:56 > 52:55:0a:00:02:02, IPv4 10.0.2.15 > 10.0.2.2: ICMP "
                        "echo request id 4660 seq 7 len 8",
                        describe(b, n));
    n = icmp_frame(b, 0);
    assert_non_null(strstr(describe(b, n), "ICMP echo reply id 4660 seq 7 len 8"));
}

static void decodes_dhcp_and_dns(void **state)
{
    uint8_t b[600];
    static const char *const names[] = {"", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK"};
    for (unsigned t = 1; t <= 5; t++) {
        char want[128];
        snprintf(want, sizeof(want), "UDP 68 > 67 len 244, DHCP %s xid 0x01020304", names[t]);
        size_t n = dhcp_frame(b, t);
        assert_non_null(strstr(describe(b, n), want));
    }
    assert_non_null(strstr(describe(b, dhcp_frame(b, 1)), "IPv4 0.0.0.0 > 255.255.255.255: "));
    size_t n = dns_frame(b);
    assert_string_equal("52:54:00:12:34:56 > 52:55:0a:00:02:02, IPv4 10.0.2.15 > 10.0.2.3: UDP "
                        "49152 > 53 len 29, DNS query id 0xabcd example.com A",
                        describe(b, n));
}

static void decodes_tcp_flags(void **state)
{
    uint8_t b[128];
    assert_string_equal("52:54:00:12:34:56 > 52:55:0a:00:02:02, IPv4 10.0.2.15 > 10.0.2.2: TCP "
                        "49152 > 80 [S] seq 1000 win 8192 len 0",
                        describe(b, tcp_frame(b, 0x02, 0)));
    assert_non_null(strstr(describe(b, tcp_frame(b, 0x12, 0)), "[S.] seq 1000 ack 5001 win 8192"));
    assert_non_null(
        strstr(describe(b, tcp_frame(b, 0x19, 5)), "[FP.] seq 1000 ack 5001 win 8192 len 5"));
    assert_non_null(strstr(describe(b, tcp_frame(b, 0x04, 0)), "[R] seq 1000 win"));
    assert_non_null(strstr(describe(b, tcp_frame(b, 0x00, 0)), "[none] seq 1000"));
}

/* Every frame cut anywhere before its end says "truncated", and never reads past the cut. */
static void truncated_at_every_layer(void **state)
{
    uint8_t full[7][600];
    size_t len[7] = {arp_frame(full[0], 1), icmp_frame(full[1], 8),      dhcp_frame(full[2], 3),
                     dns_frame(full[3]),    tcp_frame(full[4], 0x18, 9), tcp_frame(full[5], 2, 0),
                     arp_frame(full[6], 2)};
    for (size_t f = 0; f < 7; f++) {
        assert_null(strstr(describe(full[f], len[f]), "truncated"));
        for (size_t n = 0; n < len[f]; n++) {
            /* a heap copy of exactly n bytes: ASan catches a read past the cut */
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, full[f], n);
            const char *s = describe(cut, n);
            if (!strstr(s, "truncated"))
                fail_msg("frame %zu cut at %zu of %zu: '%s'", f, n, len[f], s);
            free(cut);
        }
    }
    assert_string_equal("[truncated Ethernet header: 10 of 14 bytes]", describe(full[4], 10));
    assert_non_null(strstr(describe(full[4], 24), "IPv4 [truncated IPv4 header: 10 of 20 bytes]"));
    assert_non_null(
        strstr(describe(full[4], 41),
               "[truncated IPv4: 7 of 29 bytes] TCP [truncated TCP header: 7 of 20 bytes]"));
    assert_non_null(strstr(describe(full[0], 30), "ARP [truncated ARP: 16 of 28 bytes]"));
    assert_non_null(strstr(describe(full[2], 14 + 20 + 8 + 100),
                           "UDP 68 > 67 len 244 [truncated UDP: 100 of 244 bytes]"));
}

static void malformed_fields_are_named(void **state)
{
    uint8_t b[600];
    size_t n = tcp_frame(b, 2, 0);
    b[14] = 0x43; /* IHL 3 */
    assert_non_null(strstr(describe(b, n), "[bad IPv4 header: version 4, length 12]"));
    n = tcp_frame(b, 2, 0);
    b[14 + 20 + 12] = 2 << 4;
    assert_non_null(strstr(describe(b, n), "[bad TCP header length 8]"));
    n = tcp_frame(b, 2, 0);
    be16(b + 16, 10); /* IPv4 total length below its header */
    assert_non_null(strstr(describe(b, n), "[bad IPv4 total length 10]"));
    n = dns_frame(b);
    be16(b + 14 + 20 + 4, 3); /* UDP length below its header */
    assert_non_null(strstr(describe(b, n), "[bad UDP length 3]"));
    n = dns_frame(b);
    b[14 + 20 + 8 + 12] = 0xc0; /* the name points at itself */
    b[14 + 20 + 8 + 13] = 12;
    assert_non_null(strstr(describe(b, n), "DNS query id 0xabcd [bad name]"));
    n = dns_frame(b);
    b[14 + 20 + 8 + 12] = 60; /* a label longer than the packet */
    assert_non_null(strstr(describe(b, n), "[bad name]"));
    n = dhcp_frame(b, 1);
    b[14 + 20 + 8 + 241] = 200; /* an option running past the end */
    assert_non_null(strstr(describe(b, n), "DHCP request (no message type) xid 0x01020304"));
    n = eth(b, mac_bc, mac_us, 0x88cc);
    assert_non_null(strstr(describe(b, n + 4), "ethertype 0x88cc len 4"));
    /* A small buffer is filled and terminated, never overrun. */
    char small[9];
    memset(small, 'x', sizeof(small));
    trace_ether_describe(b, n, small, 8);
    assert_int_equal(7, strlen(small));
    assert_int_equal('x', small[8]);
    assert_string_equal("[truncated Ethernet header: 0 of 14 bytes]", describe(NULL, 5));
}

/* ---- the writer ---------------------------------------------------------------------------- */

static void writer_bytes(void **state)
{
    char p[128], partial[160], err[256];
    trace_pcap *pc;
    in_dir(p, sizeof(p), "w.pcap");
    snprintf(partial, sizeof(partial), "%s.partial", p);
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_true(exists(partial));
    assert_false(exists(p));
    uint8_t f1[3] = {1, 2, 3}, f2[60];
    memset(f2, 0xab, sizeof(f2));
    assert_int_equal(0, trace_pcap_write(pc, 1500000123, f1, sizeof(f1)));
    assert_int_equal(0, trace_pcap_write(pc, 42, f2, sizeof(f2)));
    assert_int_equal(2, trace_pcap_frames(pc));
    assert_int_equal(0, trace_pcap_close(pc, err, sizeof(err)));
    assert_false(exists(partial));

    size_t n;
    unsigned char *b = slurp(p, &n);
    static const unsigned char head[24] = {0x4d, 0x3c, 0xb2, 0xa1, 2,    0,    4, 0, 0, 0, 0, 0,
                                           0,    0,    0,    0,    0xff, 0xff, 0, 0, 1, 0, 0, 0};
    assert_int_equal(24 + 16 + 3 + 16 + 60, n);
    assert_memory_equal(head, b, 24);
    assert_int_equal(1, le32(b + 24));         /* ts_sec */
    assert_int_equal(500000123, le32(b + 28)); /* ts_nsec: the ns survive */
    assert_int_equal(3, le32(b + 32));
    assert_int_equal(3, le32(b + 36));
    assert_memory_equal(f1, b + 40, 3);
    assert_int_equal(0, le32(b + 43));
    assert_int_equal(42, le32(b + 47));
    assert_int_equal(60, le32(b + 51));
    assert_int_equal(60, le32(b + 55));
    assert_memory_equal(f2, b + 59, 60);
}

static void writer_cuts_at_snaplen(void **state)
{
    char p[128], err[256];
    trace_pcap *pc;
    in_dir(p, sizeof(p), "big.pcap");
    static uint8_t big[70000];
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_write(pc, 0, big, sizeof(big)));
    assert_int_equal(0, trace_pcap_close(pc, err, sizeof(err)));
    size_t n;
    unsigned char *b = slurp(p, &n);
    assert_int_equal(24 + 16 + 65535, n);
    assert_int_equal(65535, le32(b + 32));
    assert_int_equal(70000, le32(b + 36));
}

static void writer_refuses_what_is_not_a_pcap(void **state)
{
    char p[128], partial[160], err[512];
    trace_pcap *pc;
    in_dir(p, sizeof(p), "notes.txt");
    snprintf(partial, sizeof(partial), "%s.partial", p);
    FILE *f = fopen(p, "w");
    fputs("my notes, not a capture\n", f);
    fclose(f);
    assert_int_equal(TRACE_OUT_REFUSED, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_non_null(strstr(err, "is not a pcap file"));
    assert_false(exists(partial));
    size_t n;
    assert_string_equal("my notes, not a capture\n", (char *)slurp(p, &n));
    /* a directory, an empty file: refused too */
    in_dir(p, sizeof(p), "adir");
    mkdir(p, 0755);
    assert_int_equal(TRACE_OUT_REFUSED, trace_pcap_open(p, &pc, err, sizeof(err)));
    in_dir(p, sizeof(p), "empty");
    fclose(fopen(p, "w"));
    assert_int_equal(TRACE_OUT_REFUSED, trace_pcap_open(p, &pc, err, sizeof(err)));
    /* an SQLite trace is not a pcap either */
    in_dir(p, sizeof(p), "t.db");
    trace_run_info run = {.platform = "hosted", .commit = "test"};
    trace_recorder *rec;
    assert_int_equal(0, trace_recorder_open(p, &run, &rec, err, sizeof(err)));
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
    assert_int_equal(TRACE_OUT_REFUSED, trace_pcap_open(p, &pc, err, sizeof(err)));
}

static void writer_replaces_a_pcap_abort_keeps_it(void **state)
{
    char p[128], partial[160], err[256];
    trace_pcap *pc;
    uint8_t f[20] = {0};
    in_dir(p, sizeof(p), "r.pcap");
    snprintf(partial, sizeof(partial), "%s.partial", p);
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_write(pc, 0, f, 20));
    assert_int_equal(0, trace_pcap_close(pc, err, sizeof(err)));
    size_t n;
    slurp(p, &n);
    assert_int_equal(24 + 16 + 20, n);
    /* given up: the earlier capture stays, the partial goes */
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_write(pc, 0, f, 10));
    trace_pcap_abort(pc);
    assert_false(exists(partial));
    slurp(p, &n);
    assert_int_equal(24 + 16 + 20, n);
    /* finished: replaced */
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_close(pc, err, sizeof(err)));
    slurp(p, &n);
    assert_int_equal(24, n);
}

/* ---- export from a trace ------------------------------------------------------------------- */

static void rec_one(trace_recorder *rec, hal_trace_rec_t r)
{
    trace_recorder_record(rec, &r);
}

static void make_net_trace(const char *path, bool with_net0)
{
    trace_run_info run = {.platform = "sim", .commit = "test"};
    trace_recorder *rec;
    char err[256];
    uint8_t arp_req[64], arp_rep[64], ping[128];
    size_t nreq = arp_frame(arp_req, 1), nrep = arp_frame(arp_rep, 2), nping = icmp_frame(ping, 8);
    uint64_t seq = 0;

    assert_int_equal(0, trace_recorder_open(path, &run, &rec, err, sizeof(err)));
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .kind = HAL_TR_DEVICE,
                                   .chan = 1,
                                   .type = 1,
                                   .data = "console",
                                   .len = 7});
    if (with_net0)
        rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                       .kind = HAL_TR_DEVICE,
                                       .chan = 2,
                                       .type = 2,
                                       .data = "net0",
                                       .len = 4});
    rec_one(rec, (hal_trace_rec_t){
                     .seq = ++seq, .kind = HAL_TR_SPAWN, .task = 1, .data = "tcpip", .len = 5});
    /* 3 (or 2): not a frame */
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .kind = HAL_TR_DEV_POST,
                                   .chan = 2,
                                   .type = HAL_NET_LINK_UP,
                                   .data = mac_us,
                                   .len = 6});
    /* out, accepted */
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 1500000123,
                                   .kind = HAL_TR_DEV_WRITE,
                                   .task = 1,
                                   .chan = 2,
                                   .type = HAL_NET_FRAME,
                                   .data = arp_req,
                                   .len = (uint32_t)nreq});
    /* in, and its delivery (the same frame: written once) */
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 2000000007,
                                   .kind = HAL_TR_DEV_POST,
                                   .chan = 2,
                                   .type = HAL_NET_FRAME,
                                   .data = arp_rep,
                                   .len = (uint32_t)nrep});
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 2000000100,
                                   .kind = HAL_TR_DEV_EVENT,
                                   .task = 1,
                                   .chan = 2,
                                   .type = HAL_NET_FRAME,
                                   .data = arp_rep,
                                   .len = (uint32_t)nrep});
    /* refused by the device: not on the wire */
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 2000000200,
                                   .kind = HAL_TR_DEV_WRITE,
                                   .task = 1,
                                   .chan = 2,
                                   .type = HAL_NET_FRAME,
                                   .result = OS_EFULL,
                                   .data = ping,
                                   .len = (uint32_t)nping});
    /* the console's input: another device */
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 2000000300,
                                   .kind = HAL_TR_DEV_POST,
                                   .chan = 1,
                                   .type = HAL_NET_FRAME,
                                   .data = "ls",
                                   .len = 2});
    /* seq 10 (with net0): damaged below */
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 3000000000,
                                   .kind = HAL_TR_DEV_POST,
                                   .chan = 2,
                                   .type = HAL_NET_FRAME,
                                   .data = ping,
                                   .len = (uint32_t)nping});
    rec_one(rec, (hal_trace_rec_t){.seq = ++seq,
                                   .time_ns = 4000000000,
                                   .kind = HAL_TR_DEV_WRITE,
                                   .task = 1,
                                   .chan = 2,
                                   .type = HAL_NET_FRAME,
                                   .data = ping,
                                   .len = (uint32_t)nping});
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof(err)));
}

static void export_writes_net0_frames(void **state)
{
    char t[128], p[128], err[512];
    trace_db *db;
    trace_pcap *pc;
    trace_pcap_stats st;
    in_dir(t, sizeof(t), "net.db");
    in_dir(p, sizeof(p), "net.pcap");
    make_net_trace(t, true);
    assert_int_equal(0, trace_db_open(t, &db, err, sizeof(err)));
    assert_string_equal("net0", trace_db_device_name(db, 2));
    assert_string_equal("console", trace_db_device_name(db, 1));
    assert_null(trace_db_device_name(db, 3));
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_export(db, pc, &st, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_close(pc, err, sizeof(err)));
    trace_db_close(db);
    assert_int_equal(2, st.device);
    assert_int_equal(2, st.in);
    assert_int_equal(2, st.out);
    assert_int_equal(0, st.bad);

    size_t n;
    unsigned char *b = slurp(p, &n);
    assert_int_equal(24 + 4 * 16 + 42 + 42 + 50 + 50, n);
    uint8_t arp_req[64];
    arp_frame(arp_req, 1);
    assert_int_equal(1, le32(b + 24));
    assert_int_equal(500000123, le32(b + 28));
    assert_int_equal(42, le32(b + 32));
    assert_memory_equal(arp_req, b + 40, 42);
    assert_int_equal(2, le32(b + 40 + 42));
    assert_int_equal(7, le32(b + 40 + 42 + 4));
    assert_int_equal(3, le32(b + 24 + 2 * (16 + 42)));
    assert_int_equal(4, le32(b + 24 + 2 * (16 + 42) + 16 + 50));
}

static void export_skips_damaged_rows(void **state)
{
    char t[128], p[128], err[512];
    trace_db *db;
    trace_pcap *pc;
    trace_pcap_stats st;
    sqlite3 *s;
    in_dir(t, sizeof(t), "bad.db");
    in_dir(p, sizeof(p), "bad.pcap");
    make_net_trace(t, true);
    /* the frame at seq 10 lost its tail; the one at seq 5 its payload */
    assert_int_equal(SQLITE_OK, sqlite3_open(t, &s));
    assert_int_equal(SQLITE_OK, sqlite3_exec(s,
                                             "UPDATE events SET payload = substr(payload, 1, 10)"
                                             " WHERE seq = 10;"
                                             "UPDATE events SET payload = NULL WHERE seq = 5;",
                                             NULL, NULL, NULL));
    sqlite3_close(s);
    assert_int_equal(0, trace_db_open(t, &db, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_export(db, pc, &st, err, sizeof(err)));
    assert_int_equal(0, trace_pcap_close(pc, err, sizeof(err)));
    trace_db_close(db);
    assert_int_equal(2, st.bad);
    assert_int_equal(5, st.first_bad);
    assert_non_null(strstr(st.why, "no payload"));
    assert_int_equal(1, st.in);
    assert_int_equal(1, st.out);
    size_t n;
    slurp(p, &n);
    assert_int_equal(24 + 2 * 16 + 42 + 50, n);
}

static void export_needs_net0(void **state)
{
    char t[128], p[128], err[512];
    trace_db *db;
    trace_pcap *pc;
    trace_pcap_stats st;
    in_dir(t, sizeof(t), "nonet.db");
    in_dir(p, sizeof(p), "nonet.pcap");
    make_net_trace(t, false);
    assert_int_equal(0, trace_db_open(t, &db, err, sizeof(err)));
    assert_int_equal(0, trace_db_device_id(db, "net0"));
    assert_int_equal(0, trace_pcap_open(p, &pc, err, sizeof(err)));
    assert_int_equal(-1, trace_pcap_export(db, pc, &st, err, sizeof(err)));
    assert_non_null(strstr(err, "names no net0 device"));
    trace_pcap_abort(pc);
    trace_db_close(db);
    assert_false(exists(p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_arp),
        cmocka_unit_test(decodes_icmp_echo),
        cmocka_unit_test(decodes_dhcp_and_dns),
        cmocka_unit_test(decodes_tcp_flags),
        cmocka_unit_test(truncated_at_every_layer),
        cmocka_unit_test(malformed_fields_are_named),
        cmocka_unit_test(writer_bytes),
        cmocka_unit_test(writer_cuts_at_snaplen),
        cmocka_unit_test(writer_refuses_what_is_not_a_pcap),
        cmocka_unit_test(writer_replaces_a_pcap_abort_keeps_it),
        cmocka_unit_test(export_writes_net0_frames),
        cmocka_unit_test(export_skips_damaged_rows),
        cmocka_unit_test(export_needs_net0),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
