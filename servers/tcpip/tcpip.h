/* tcpip.h — the tcpip server's state, shared by its files (core, tcp, udp, net queries). */
#ifndef ORRERY_TCPIP_H
#define ORRERY_TCPIP_H

#include <image.h>
#include <iface/init_client.h>
#include <iface/net.h>
#include <iface/tcp.h>
#include <iface/udp.h>

#include "tcpip_limits.h"

#include <stdbool.h>
#include <stdint.h>

#include "lwip/ip4_addr.h"
#include "lwip/pbuf.h"

struct tcp_pcb;
struct udp_pcb;

typedef struct tcpip_frame {
    uint16_t len;
    uint8_t data[HAL_NET_MTU];
} tcpip_frame_t;

typedef enum tcpip_client_kind {
    TCPIP_CLIENT_FREE = 0,
    TCPIP_CLIENT_NET,
    TCPIP_CLIENT_TCP,
    TCPIP_CLIENT_UDP,
} tcpip_client_kind_t;

typedef struct tcpip_client {
    os_handle_t chan;
    tcpip_client_kind_t kind;
} tcpip_client_t;

/* A TCP connection with a channel. chan NONE: a free slot. */
typedef struct tcpip_conn {
    os_handle_t chan;        /* our end of the connection channel */
    struct tcp_pcb *pcb;     /* NULL once lwIP freed it (error) */
    struct pbuf *rx;         /* peer data not yet queued to the client (its queue was full) */
    uint64_t rx_bytes;       /* bytes of the stream received from the peer */
    int listener;            /* the listener slot it came from, -1: connect */
    int error;               /* an error {0, error} to send, then close (0: none) */
    bool connecting;         /* connect's handshake not done */
    bool fin_rx;             /* the peer's FIN arrived */
    bool eof_sent;           /* eof told to the client */
    bool shut_tx;            /* the client's shutdown: FIN (when connected) */
    bool held;               /* chan is held: tx waits for lwIP's send buffer */
    uint32_t tx_off, tx_len; /* tx[tx_off, tx_len): client data lwIP could not take yet */
    uint8_t tx[TCP_DATA_MAX];
} tcpip_conn_t;

typedef struct tcpip_listener {
    os_handle_t chan;    /* NONE: free slot */
    struct tcp_pcb *pcb; /* the listening pcb */
    uint32_t backlog;    /* accepted connections that may wait in the channel */
    uint32_t waiting;    /* upper bound of those waiting (recounted when it reaches backlog) */
    uint32_t pair;       /* the channel pair's lower endpoint id (os_chan_list), 0: unknown */
} tcpip_listener_t;

typedef struct tcpip_udp {
    os_handle_t chan; /* NONE: free slot */
    struct udp_pcb *pcb;
} tcpip_udp_t;

typedef struct tcpip_resolve {
    bool used;
    os_handle_t chan; /* the asking client (may be closed by the time the answer comes) */
    uint32_t req;
} tcpip_resolve_t;

typedef struct tcpip_ping {
    bool used;
    os_handle_t chan;
    uint32_t req, addr; /* addr in host order */
    uint16_t seq, size;
    uint64_t sent_ns;
} tcpip_ping_t;

typedef struct tcpip_state {
    /* the device and lwIP's clock */
    os_handle_t dev;   /* net0 */
    os_handle_t timer; /* lwIP's timeouts: armed at sys_timeouts_sleeptime() */
    bool have_netif;   /* the netif is added (first LINK_UP) */
    bool idle;         /* arg=quiet and no net0: we stay, silent and serving nothing */
    bool bound_logged; /* the address line for the current lease was logged */
    uint8_t mac[6];
    /* the address: by DHCP unless the spawn argument gave one */
    bool is_static;
    ip4_addr_t addr, mask, gw, dns; /* static only */
    bool have_dns;
    /* counters (net.counters) */
    uint64_t rx_frames, tx_frames, rx_bytes, tx_bytes;
    uint64_t rx_dropped;    /* no pbuf for a frame, or lwIP refused it */
    uint64_t tx_dropped;    /* the device refused a frame (its ring was full) */
    uint64_t other_dropped; /* connections reset (table, backlog) and datagrams dropped */
    /* clients and their objects */
    tcpip_client_t clients[TCPIP_CLIENTS_MAX];
    tcpip_conn_t conns[TCPIP_CONNS_MAX];
    tcpip_listener_t listeners[TCPIP_LISTENERS_MAX];
    tcpip_udp_t udps[TCPIP_UDP_MAX];
    tcpip_resolve_t resolves[TCPIP_RESOLVES_MAX];
    tcpip_ping_t pings[TCPIP_PINGS_MAX];
    /* frames the device's ring refused (OS_EFULL), oldest at txq_head */
    tcpip_frame_t txq[TCPIP_TXQ_MAX];
    uint32_t txq_head, txq_count;
    /* scratch */
    uint8_t frame[HAL_NET_MTU]; /* a chained pbuf is copied here for os_device_write */
    union {
        tcp_data_t tcp_data;
        udp_recvfrom_t recvfrom;
        udp_sendto_t sendto;
    } msg;
    os_task_info_t tasks[TCPIP_TASKS_SEEN]; /* at start: is lwIP's previous owner alive? */
    os_chan_info_t chans[TCPIP_CHANS_SEEN]; /* a listener's queue */
} tcpip_state_t;

/* tcpip.c: the running handler's context and state (lwIP's callbacks have neither) */
os_ctx_t *tcpip_ctx(void);
tcpip_state_t *tcpip_st(void);
/* a number that changes with every tcpip task of the process (stale lwIP timeouts) */
uint32_t tcpip_generation(void);
uint32_t tcpip_host_order(const ip4_addr_t *a);
void tcpip_set_addr(ip4_addr_t *a, uint32_t host);

/* tcp.c */
void tcp_on_control(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev);
/* An event on a listener or connection channel; false if ev->handle is neither. */
bool tcp_on_channel(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev);
/* Bytes a connection holds: client data lwIP did not take, peer data the client did not. */
uint32_t tcp_pcb_held(const struct tcp_pcb *pcb);
/* A restarted task: abort every pcb the previous task left (their args point into its state). */
void tcp_forget_all(void);

/* udp.c */
void udp_on_control(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev);
bool udp_on_channel(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev);
void udp_forget_all(void);

/* netq.c: the net interface */
void net_on_message(os_ctx_t *ctx, tcpip_state_t *st, const os_event_t *ev);
void net_ping_init(void);

#endif
