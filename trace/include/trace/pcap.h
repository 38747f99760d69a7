/* pcap.h — packet captures of net0: a pcap file writer, the export of a trace's frames, and the
 * one-line decoder of Ethernet frames that `trace show` prints. */
#ifndef TRACE_PCAP_H
#define TRACE_PCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <trace/reader.h>

/*
 * The file is classic libpcap (what `tcpdump -r` and Wireshark read), always the same bytes for
 * the same frames and times, whatever the host:
 *
 *   header (24 bytes, little-endian): magic 0xa1b23c4d (nanosecond timestamps), version 2.4,
 *   thiszone 0, sigfigs 0, snaplen 65535, network 1 (LINKTYPE_ETHERNET)
 *   per frame (16 bytes + the frame): ts_sec, ts_nsec, incl_len, orig_len (u32 LE each), bytes
 *
 * Frames are Ethernet without FCS, as net0 moves them (1..HAL_NET_MTU bytes). Timestamps are
 * the kernel clock in ns (hosted: since boot; simulated: virtual time), so a capture lines up
 * with the trace of the same run and a simulated one is the same file for the same seed.
 */
enum {
    TRACE_PCAP_MAGIC_NS = 0xa1b23c4d, /* nanosecond-resolution pcap */
    TRACE_PCAP_SNAPLEN = 65535,       /* longer frames are cut, orig_len keeps their length */
    TRACE_PCAP_LINKTYPE_ETHERNET = 1,
    TRACE_PCAP_HEADER_LEN = 24,
    TRACE_PCAP_RECORD_LEN = 16, /* per-frame header */
};

typedef struct trace_pcap trace_pcap;

/*
 * Create a capture at path, under the rule every output of ours follows (trace/outpath.h): the
 * frames go to path.partial, renamed over path by trace_pcap_close; an existing path must be a
 * pcap file (it is then replaced), anything else is refused and left untouched. "-" writes to
 * stdout. Returns 0, TRACE_OUT_REFUSED (the path is not ours: exit 2) or -1, with a one-line
 * message in err for both.
 */
int trace_pcap_open(const char *path, trace_pcap **out, char *err, size_t errlen);

/*
 * Append one frame seen at t_ns (kernel clock). 0, or -1 once a write failed (the error is kept
 * for trace_pcap_close; later writes do nothing). Not thread-safe: callers that capture from
 * several threads serialize their calls (hal-linux/net.c does, under its own mutex). Empty
 * frames are written as they are (a zero-length record).
 */
int trace_pcap_write(trace_pcap *p, uint64_t t_ns, const void *data, size_t len);

/* Frames written so far. */
uint64_t trace_pcap_frames(const trace_pcap *p);

/*
 * Flush and close; on success rename path.partial over path. 0, or -1 with one line in err (a
 * write or rename failed: path.partial is left as it is, so the frames written are not lost).
 * Frees p either way. trace_pcap_close(NULL, ...) is 0.
 */
int trace_pcap_close(trace_pcap *p, char *err, size_t errlen);

/* Give up: close and remove path.partial (a capture that should not exist). Frees p. */
void trace_pcap_abort(trace_pcap *p);

/* ---- the frames of a trace ------------------------------------------------------------ */

typedef struct trace_pcap_stats {
    uint64_t in, out;   /* frames written: posted by the device (DEV_POST), written by a task */
    uint64_t bad;       /* frame rows skipped: no payload, or one that disagrees with len */
    uint64_t first_bad; /* seq of the first of them (0: none) */
    char why[128];      /* what was wrong with it */
    uint32_t device;    /* net0's object id in the trace (0: the trace names no net0) */
} trace_pcap_stats;

/*
 * Write every net0 frame of the trace into p, in trace (seq) order: each DEV_POST of a
 * HAL_NET_FRAME (what the device received, also the frames the kernel then dropped for a full
 * queue: they were on the wire) and each DEV_WRITE of one that the device accepted (result 0),
 * stamped with the record's time_ns. Device input delivered to a task (DEV_EVENT) is the same
 * frame as its DEV_POST and is not written twice. A row whose payload is missing or whose length
 * disagrees with its len column, or is longer than HAL_NET_MTU, is skipped and counted.
 * 0, or -1 with the reason in err (a reader error, a write error).
 */
int trace_pcap_export(trace_db *db, trace_pcap *p, trace_pcap_stats *st, char *err, size_t errlen);
/*
 * A trace with nodes: with a node selected (trace_db_select_node), that node's frames; else
 * every node's, in the file's order (a frame that crossed from one node to another is there
 * twice: its DEV_WRITE on the sender, its DEV_POST on the receiver).
 * Whether there is a net0 to export (on the selected node, or on any node).
 */
bool trace_pcap_has_net0(trace_db *db);

/* ---- decoding a frame in one line, as `trace show` prints it -------------------------- */

/*
 * A tcpdump-like one-liner of an Ethernet frame: "52:55:0a:00:02:02 > 52:54:00:12:34:56, IPv4
 * 10.0.2.2 > 10.0.2.15: UDP 67 > 68 len 548, DHCP OFFER xid 0x1234abcd". ARP, IPv4 with ICMP,
 * UDP (DHCP, DNS) and TCP are decoded; other EtherTypes and protocols are named. A frame cut
 * short at any layer says so ("[truncated IPv4 header]"), and a field that cannot be (a header
 * length below the minimum) says "[bad ...]". Reads only data[0..len); out is always
 * NUL-terminated (cut to outlen). Returns out.
 */
const char *trace_ether_describe(const void *data, size_t len, char *out, size_t outlen);

#endif
