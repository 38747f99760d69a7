/* tcp_test.h — what test_tcp.c (the host side and the tests) and tcp_tasks.c (the programs
 * that run inside the OS) share: the ports, what each side saw, and the stream pattern. */
#ifndef TESTS_TCP_TEST_H
#define TESTS_TCP_TEST_H

#include <stdatomic.h>
#include <stdint.h>

#include <iface/net.h>
#include <iface/tcp.h>
#include <os/os.h>

enum {
    GUARD_MS = 60000, /* hang guards only: a wait that long means the OS is stuck */
    TICK_NS = 10000000,
    BULK = 1 << 20,
    MANY = 300,
    SEQUENTIAL = 1000,
    LAZY_BYTES = 3 << 20, /* more than every buffer between the host and the lazy task */
    BACKLOG = 2,
    BACKLOG_TRIES = 5,
    PORT_LAZY = 8,
    PORT_PROBE = 9,
    PORT_BACKLOG = 10,
};

enum { PORT_SELF = 12 };
enum { PORT_SINK = 5, DGRAMS = 200, DGRAMS_MAX = 5000, DGRAM_BURST = 16 };

/* What the tasks and the host thread saw (read by the test after hl_run returned). */
typedef struct tcp_seen {
    atomic_int ready;      /* the stopper saw every expected listener */
    atomic_int host_done;  /* the host side finished */
    atomic_int go;         /* the host tells the lazy task to start reading its connection */
    atomic_int go_backlog; /* ... and to accept from its second listener */
    atomic_int ping_done;  /* the prober's ping was answered (or failed) */
    atomic_int accepted2;  /* the prober has the connection the host will reset */
    char host_fail[256];   /* the first thing the host side found wrong */
    /* host side */
    long bulk_echoed; /* bytes of BULK echoed back, identical */
    int bulk_eof;     /* the echo ended with EOF after our half close */
    int many_echoed, many_reset, seq_ok;
    long lazy_sent; /* bytes the host wrote to the lazy task before the window closed */
    int backlog_closed, backlog_hi;
    int probe_ok; /* the prober's "ok" after its garbage */
    /* stopper */
    uint32_t conns_tcp_other; /* TCP pcbs other than listeners at the end */
    uint32_t conns_listen;
    net_counters_t counters;
    net_info_t info;
    /* lazy task */
    uint64_t lazy_got;
    int lazy_bad; /* bytes not as sent */
    uint64_t lazy_eof_bytes;
    int lazy_efull, lazy_writable;
    uint64_t lazy_echo_sent;
    /* prober */
    int errors[32];
    uint32_t error_types[32];
    int nerrors;
    int conn_errors[8];
    uint32_t conn_error_types[8];
    int nconn_errors;
    int refused; /* the error{0, status} of the connect to a closed port */
    int refused_closed;
    int reset_error;         /* the error{0} on a connection the host reset */
    atomic_int reset_closed; /* read by the host thread */
    int denied;              /* the reply status of a connect without reach */
    uint32_t resolved;
    net_pong_t pong;   /* ping 10.0.2.2 */
    int net_failed[8]; /* failed{req} by req */
    int udp_errors[8];
    uint32_t udp_error_types[8];
    int nudp_errors;
} tcp_seen_t;
extern tcp_seen_t G;

/* selfcon's view of its connection to itself. */
typedef struct selfcon_seen {
    tcp_established_t est;
    int pong; /* the client side got "pong" */
    uint64_t eof_bytes;
    int ping;          /* the server side got "ping" */
    atomic_int closed; /* the host thread waits for it */
} selfcon_seen_t;
extern selfcon_seen_t S;

/* udpsink's view of its socket. */
typedef struct udpsink_seen {
    atomic_int released; /* the server counted a drop: the socket is read now */
    atomic_int got;      /* datagrams read from it */
    atomic_int sent;     /* datagrams the host sent */
} udpsink_seen_t;
extern udpsink_seen_t U;

extern int expected_ports[4]; /* the TCP ports the stopper waits for listeners on */
extern int nexpected;
extern int host_ports[4]; /* hostfwd host ports: tcp 7, udp 7, tcp 8, tcp 10 / 9 */

/* The first thing the host side found wrong (kept in G.host_fail). */
void host_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Byte i of the streams the lazy task and the host send. */
static inline uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 13));
}

/* The programs of tcp_tasks.c. */
extern const os_program_t stopper, lazy, prober, denied, selfcon, udpsink;

#endif
