/* fuzz_tcpip.h — the frame builder of fuzz_tcpip: Ethernet frames from templates and input bytes.
 */
#ifndef FUZZ_TCPIP_H
#define FUZZ_TCPIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <trace/corpus.h> /* the op and template numbers */

#include "fz_input.h"

enum {
    FZ_FLOWS = 8, /* TCP flows tracked (remote addr, remote port, local port) */
    FZ_PORTS = 8, /* listening TCP ports, bound UDP ports */
    FZ_ECHO_MAX = 1472,
};

/* A TCP flow between the server (10.0.0.2:lport) and a remote (rip:rport). */
typedef struct fz_flow {
    bool used;
    uint32_t rip; /* host order */
    uint16_t rport, lport;
    uint32_t our_nxt; /* the sequence number our next segment carries */
    uint32_t srv_nxt; /* the server's next sequence number: what we acknowledge */
} fz_flow_t;

/*
 * What the builder knows of the link: the server's MAC and address, the ports it listens on
 * and bound, and what it sent last (fz_net_observe): the address its ARP asked for, the ping
 * it sent, the TCP flows with their sequence numbers, the UDP port it sent from.
 */
typedef struct fz_net {
    uint8_t our_mac[6]; /* the server's (net0's) MAC */
    uint32_t our_ip;    /* 10.0.0.2 */
    uint16_t tcp_ports[FZ_PORTS], udp_ports[FZ_PORTS];
    int ntcp, nudp;
    uint32_t arp_asked; /* the address the server's last ARP request asked for (0: none) */
    bool ping_seen;     /* the server's last ICMP echo request */
    uint32_t ping_dst;
    uint16_t ping_id, ping_seq, ping_len;
    uint8_t ping_data[FZ_ECHO_MAX];
    fz_flow_t flows[FZ_FLOWS];
    uint16_t next_rport;
    uint64_t frames_seen; /* frames the server wrote */
} fz_net_t;

void fz_net_reset(fz_net_t *n);
/* A port the server listens on (TCP) or bound (UDP): a target of the templates. */
void fz_net_note_port(fz_net_t *n, uint16_t port, bool udp);
/* A frame the server wrote: learn ARP requests, pings, TCP sequence numbers, UDP ports. */
void fz_net_observe(fz_net_t *n, const uint8_t *f, size_t len);
/*
 * Build one frame into out from the input: the first byte picks a template (ARP request or
 * reply, ICMP echo request or reply, TCP segment, UDP datagram, IPv6 neighbour discovery,
 * IPv4 fragment, ...), the next one how to mutate it; the rest fill its fields. Checksums
 * are right unless the mutation byte says otherwise. Returns the frame's length.
 */
size_t fz_net_build(fz_net_t *n, fz_in_t *in, uint8_t *out, size_t max);

#endif
