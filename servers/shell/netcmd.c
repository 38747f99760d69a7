/* netcmd.c — the shell's network commands: net, netstat, ping and fetch (net and tcp clients). */
#include "shell.h"

#include <iface/net.h>
#include <iface/tcp.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool netcmd_is(op_kind_t op)
{
    return op == OP_NET || op == OP_NETSTAT || op == OP_PING || op == OP_FETCH;
}

static const char *op_name(op_kind_t op)
{
    return op == OP_NET ? "net" : op == OP_NETSTAT ? "netstat" : op == OP_PING ? "ping" : "fetch";
}

/* "10.0.2.2" or, with a port, "10.0.2.2:80". */
static const char *ipstr(char *buf, size_t len, uint32_t a, int port)
{
    int n = snprintf(buf, len, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16 & 0xff),
                     (unsigned)(a >> 8 & 0xff), (unsigned)(a & 0xff));
    if (port >= 0 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ":%d", port);
    return buf;
}

/* "0.412": milliseconds with `decimals` (1 or 3) digits. */
static const char *msstr(char *buf, size_t len, uint64_t ns, int decimals)
{
    if (decimals == 1)
        snprintf(buf, len, "%llu.%llu", (unsigned long long)(ns / 1000000u),
                 (unsigned long long)(ns / 100000u % 10u));
    else
        snprintf(buf, len, "%llu.%03llu", (unsigned long long)(ns / 1000000u),
                 (unsigned long long)(ns / 1000u % 1000u));
    return buf;
}

/* The command is over: close its connection (abort it with a reset when it failed), prompt. */
static void finish(os_ctx_t *ctx, shell_state_t *st, bool failed)
{
    netcmd_t *nc = &st->nc;
    if (nc->chan != OS_HANDLE_NONE) {
        if (failed) {
            tcp_reset_t r = {0};
            tcp_reset_send(ctx, nc->chan, &r); /* a closed or full channel is closed below */
        }
        os_handle_close(ctx, nc->chan);
        nc->chan = OS_HANDLE_NONE;
    }
    sh_op_done(ctx, st);
}

/* fetch -r N: say why this try failed and start the next one a second later, while tries
 * are left; false when none is (the command ends as without -r). */
static bool retry_later(os_ctx_t *ctx, shell_state_t *st, const char *why)
{
    netcmd_t *nc = &st->nc;
    if (st->op != OP_FETCH || nc->phase == NP_RETRY || nc->tries >= nc->count)
        return false;
    nc->tries++;
    sh_say(st, "shell: fetch: %s; retry %d of %d in 1 s\n", why, nc->tries, nc->count);
    if (nc->chan != OS_HANDLE_NONE) {
        tcp_reset_t r = {0};
        tcp_reset_send(ctx, nc->chan, &r);
        os_handle_close(ctx, nc->chan);
        nc->chan = OS_HANDLE_NONE;
    }
    nc->phase = NP_RETRY;
    nc->sent = false;
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + 1000000000ull);
    return true;
}

/* End the command with one error line: "shell: ping: ...". */
static void fail(os_ctx_t *ctx, shell_state_t *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(os_ctx_t *ctx, shell_state_t *st, const char *fmt, ...)
{
    char msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (retry_later(ctx, st, msg))
        return;
    sh_say(st, "shell: %s: %s\n", op_name(st->op), msg);
    finish(ctx, st, true);
}

/* fetch's "HOST:PORT" for its error lines. */
static const char *target(shell_state_t *st, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%u", st->nc.host, (unsigned)st->nc.port);
    return buf;
}

/* Give the current step of ping's lookup or of fetch its full time again. */
static void idle_restart(os_ctx_t *ctx, shell_state_t *st)
{
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + SHELL_NET_IDLE_NS);
}

/* ---- sending ---------------------------------------------------------------------------- */

/* Send the current phase's request once its connection is up. A connection found closed is
 * asked for again, and the request goes out when it is back. */
static void send_phase(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    conn_t *c = nc->phase == NP_OPEN ? &st->tcp : &st->net;
    int err;

    if (nc->sent || c->state != CONN_UP)
        return;
    nc->req = ++st->next_req;
    if (nc->phase == NP_RESOLVE) {
        net_resolve_t m;
        m.req = nc->req;
        memcpy(m.name, nc->host, strlen(nc->host) + 1);
        err = net_resolve_send(ctx, c->chan, &m);
    } else if (nc->phase == NP_REQUEST && st->op == OP_NET) {
        net_status_t m = {nc->req};
        err = net_status_send(ctx, c->chan, &m);
    } else if (nc->phase == NP_REQUEST) {
        net_conns_t m = {nc->req};
        err = net_conns_send(ctx, c->chan, &m);
    } else if (nc->phase == NP_OPEN) {
        tcp_connect_t m = {.req = nc->req, .addr = nc->addr, .port = nc->port};
        nc->started = os_clock_now(ctx);
        err = tcp_connect_send(ctx, c->chan, &m);
    } else {
        return;
    }
    if (err == 0)
        nc->sent = true;
    else if (err == OS_EPEER)
        sh_conn_lost(ctx, st, c); /* sent again once reconnected */
    else
        fail(ctx, st, "%s", os_strerror(err));
}

/* Move on from NP_CONNECT once the connections the command needs are up. */
static void advance(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    if (nc->phase == NP_CONNECT) {
        if (st->net.state != CONN_UP || (st->op == OP_FETCH && st->tcp.state != CONN_UP))
            return;
        nc->phase = st->op == OP_NET || st->op == OP_NETSTAT ? NP_REQUEST : NP_RESOLVE;
        nc->sent = false;
    }
    send_phase(ctx, st);
}

void netcmd_start(os_ctx_t *ctx, shell_state_t *st, const shell_cmd_t *c)
{
    netcmd_t *nc = &st->nc;
    op_kind_t op = c->kind == SHELL_NET       ? OP_NET
                   : c->kind == SHELL_NETSTAT ? OP_NETSTAT
                   : c->kind == SHELL_PING    ? OP_PING
                                              : OP_FETCH;

    memset(nc, 0, sizeof *nc);
    nc->chan = OS_HANDLE_NONE;
    nc->phase = NP_CONNECT;
    snprintf(nc->host, sizeof nc->host, "%s", c->host);
    nc->count = c->count;
    nc->port = c->port;
    snprintf(nc->path, sizeof nc->path, "%s", c->arg);
    sh_op_start(ctx, st, op,
                op == OP_NET || op == OP_NETSTAT ? SHELL_OP_TIMEOUT_NS : SHELL_NET_IDLE_NS);
    if (op == OP_FETCH) {
        nc->request_len =
            http_request(nc->request, sizeof nc->request, nc->host, nc->port, nc->path);
        if (nc->request_len == 0) {
            fail(ctx, st, "URL too long");
            return;
        }
        http_resp_init(&nc->resp);
        if (st->tcp.state == CONN_DOWN)
            sh_connect(ctx, st, &st->tcp); /* asked for at once: a refusal shows before DNS */
    }
    if (st->net.state == CONN_DOWN)
        sh_connect(ctx, st, &st->net);
    advance(ctx, st);
}

void netcmd_connected(os_ctx_t *ctx, shell_state_t *st, conn_t *c)
{
    (void)c;
    if (netcmd_is(st->op))
        advance(ctx, st);
}

void netcmd_refused(os_ctx_t *ctx, shell_state_t *st, conn_t *c, int status)
{
    if (netcmd_is(st->op) && (c == &st->net || st->op == OP_FETCH))
        fail(ctx, st, "%s", os_strerror(status)); /* without reach: "permission denied" */
}

void netcmd_lost(os_ctx_t *ctx, shell_state_t *st, conn_t *c)
{
    netcmd_t *nc = &st->nc;
    if (!netcmd_is(st->op))
        return;
    if (c == &st->net && (nc->phase == NP_RESOLVE || nc->phase == NP_REQUEST)) {
        if (nc->partial)
            fail(ctx, st, "the tcpip server went away");
        else
            nc->sent = false; /* asked again once reconnected */
    } else if (c == &st->net && nc->phase == NP_PING) {
        fail(ctx, st, "the tcpip server went away");
    } else if (c == &st->tcp && nc->phase == NP_OPEN) {
        nc->sent = false; /* the connect died with the server: asked again */
    }
}

/* ---- net and netstat -------------------------------------------------------------------- */

static void print_info(shell_state_t *st, const net_info_t *m)
{
    char a[24], g[24];
    sh_say(st, "net0 ");
    if (m->addr == 0) {
        sh_say(st, "no address");
    } else {
        int prefix = 0;
        for (uint32_t k = m->mask; k & 0x80000000u; k <<= 1)
            prefix++;
        sh_say(st, "%s/%d gw %s", ipstr(a, sizeof a, m->addr, -1), prefix,
               ipstr(g, sizeof g, m->gw, -1));
    }
    if (m->mac_len == 6)
        sh_say(st, " mac %02x:%02x:%02x:%02x:%02x:%02x", m->mac[0], m->mac[1], m->mac[2], m->mac[3],
               m->mac[4], m->mac[5]);
    sh_say(st, "\naddress %s, dns %s\n", m->dhcp ? "by dhcp" : "static",
           m->dns ? ipstr(a, sizeof a, m->dns, -1) : "none");
}

static void print_counters(shell_state_t *st, const net_counters_t *c)
{
    sh_say(st, "frames rx %llu tx %llu dropped %llu\n", (unsigned long long)c->rx_frames,
           (unsigned long long)c->tx_frames,
           (unsigned long long)(c->rx_dropped + c->tx_dropped + c->other_dropped));
    sh_say(st, "bytes rx %llu tx %llu\n", (unsigned long long)c->rx_bytes,
           (unsigned long long)c->tx_bytes);
    sh_say(st, "dropped rx %llu tx %llu other %llu\n", (unsigned long long)c->rx_dropped,
           (unsigned long long)c->tx_dropped, (unsigned long long)c->other_dropped);
}

static const char *const tcp_states[] = {
    "CLOSED",     "LISTEN",     "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1",
    "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING",  "LAST_ACK", "TIME_WAIT",
};

static void netstat_header(shell_state_t *st)
{
    sh_say(st, "PROTO LOCAL                 REMOTE                STATE        QUEUED\n");
}

static void print_conn(shell_state_t *st, const net_conn_t *m)
{
    netcmd_t *nc = &st->nc;
    char l[24], r[24], state[16];
    if (!nc->partial)
        netstat_header(st);
    nc->partial = true;
    if (m->proto == 17)
        snprintf(state, sizeof state, "-");
    else if (m->state < sizeof tcp_states / sizeof tcp_states[0])
        snprintf(state, sizeof state, "%s", tcp_states[m->state]);
    else
        snprintf(state, sizeof state, "?%u", (unsigned)m->state);
    sh_say(st, "%-5s %-21s %-21s %-12s %u\n",
           m->proto == 6    ? "tcp"
           : m->proto == 17 ? "udp"
                            : "?",
           ipstr(l, sizeof l, m->laddr, m->lport), ipstr(r, sizeof r, m->raddr, m->rport), state,
           m->queued);
    nc->rows++;
    nc->tcp_rows += m->proto == 6;
    nc->udp_rows += m->proto == 17;
}

static void print_conns_end(os_ctx_t *ctx, shell_state_t *st, const net_conns_end_t *m)
{
    netcmd_t *nc = &st->nc;
    if (!nc->partial)
        netstat_header(st);
    sh_say(st, "total: %u socket%s (%u tcp, %u udp)", nc->rows, nc->rows == 1 ? "" : "s",
           nc->tcp_rows, nc->udp_rows);
    if (m->count != nc->rows)
        sh_say(st, "; the server counted %u", m->count);
    sh_say(st, "\n");
    finish(ctx, st, false);
}

/* ---- ping ------------------------------------------------------------------------------- */

static void ping_end(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    char a[32], b[32], c[32];
    sh_say(st, "--- %s ping statistics ---\n", nc->host);
    sh_say(st, "%d transmitted, %d received, %d%% loss", nc->sent_n, nc->received,
           nc->sent_n ? (nc->sent_n - nc->received) * 100 / nc->sent_n : 0);
    if (nc->received)
        sh_say(st, ", rtt min/avg/max %s/%s/%s ms", msstr(a, sizeof a, nc->rtt_min, 3),
               msstr(b, sizeof b, nc->rtt_sum / (uint64_t)nc->received, 3),
               msstr(c, sizeof c, nc->rtt_max, 3));
    sh_say(st, "\n");
    finish(ctx, st, false);
}

/* Send the next echo, or, after the last one's wait, give up on those still unanswered. */
static void ping_tick(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    char a[16];

    if (nc->sent_n == nc->count) {
        for (int seq = 1; seq <= nc->sent_n; seq++) {
            if (!nc->done[seq])
                sh_say(st, "no answer from %s: seq=%d (tcpip did not answer)\n",
                       ipstr(a, sizeof a, nc->addr, -1), seq);
        }
        ping_end(ctx, st);
        return;
    }
    int seq = nc->sent_n + 1;
    net_ping_t m = {.req = nc->req + (uint32_t)seq - 1,
                    .addr = nc->addr,
                    .seq = (uint16_t)seq,
                    .size = SHELL_PING_SIZE,
                    .timeout_ms = SHELL_PING_WAIT_MS};
    int err = net_ping_send(ctx, st->net.chan, &m);
    if (err == OS_EPEER) {
        sh_conn_lost(ctx, st, &st->net);
        fail(ctx, st, "the tcpip server went away");
        return;
    }
    if (err < 0) {
        fail(ctx, st, "%s", os_strerror(err));
        return;
    }
    nc->sent_n = seq;
    /* the next echo a second later; after the last, its wait and a second more for tcpip */
    uint64_t wait = seq < nc->count ? SHELL_PING_INTERVAL_NS
                                    : SHELL_PING_WAIT_MS * 1000000ull + SHELL_PING_INTERVAL_NS;
    os_timer_set(ctx, st->timer, os_clock_now(ctx) + wait);
}

static void ping_start(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    char a[16];
    nc->phase = NP_PING;
    nc->req = st->next_req + 1; /* seq n is req + n - 1 */
    st->next_req += (uint32_t)nc->count;
    sh_say(st, "PING %s (%s): %d data bytes\n", nc->host, ipstr(a, sizeof a, nc->addr, -1),
           SHELL_PING_SIZE);
    ping_tick(ctx, st);
}

/* The seq of a ping answer with request id req, or 0 if it is not one of ours. */
static int ping_seq(netcmd_t *nc, uint32_t req)
{
    if (nc->phase != NP_PING || req - nc->req >= (uint32_t)nc->sent_n)
        return 0;
    int seq = (int)(req - nc->req) + 1;
    return nc->done[seq] ? 0 : seq;
}

static void ping_answered(os_ctx_t *ctx, shell_state_t *st, int seq)
{
    netcmd_t *nc = &st->nc;
    nc->done[seq] = true;
    if (++nc->answered == nc->count)
        ping_end(ctx, st);
}

static void on_pong(os_ctx_t *ctx, shell_state_t *st, const net_pong_t *m)
{
    netcmd_t *nc = &st->nc;
    char a[16], t[32];
    int seq = ping_seq(nc, m->req);
    if (seq == 0 || m->seq != seq)
        return;
    sh_say(st, "%u bytes from %s: seq=%u ttl=%u time=%s ms\n", (unsigned)m->size + 8,
           ipstr(a, sizeof a, m->addr, -1), (unsigned)m->seq, (unsigned)m->ttl,
           msstr(t, sizeof t, m->rtt_ns, 3));
    if (nc->received == 0 || m->rtt_ns < nc->rtt_min)
        nc->rtt_min = m->rtt_ns;
    if (m->rtt_ns > nc->rtt_max)
        nc->rtt_max = m->rtt_ns;
    nc->rtt_sum += m->rtt_ns;
    nc->received++;
    ping_answered(ctx, st, seq);
}

/* The command waits for an answer on the net channel. */
static bool waits_on_net(shell_state_t *st)
{
    const netcmd_t *nc = &st->nc;
    return netcmd_is(st->op) &&
           ((nc->sent && (nc->phase == NP_RESOLVE || nc->phase == NP_REQUEST)) ||
            nc->phase == NP_PING);
}

/* ---- lookups ---------------------------------------------------------------------------- */

static void lookup_failed(os_ctx_t *ctx, shell_state_t *st, int status)
{
    const char *why = status == OS_ENOENT      ? "name not found"
                      : status == OS_ETIMEDOUT ? "name lookup timed out"
                      : status == OS_EUNREACH  ? "no DNS server"
                      : status == OS_EINVAL    ? "not a valid host name"
                                               : os_strerror(status);
    fail(ctx, st, "%s: %s", st->nc.host, why);
}

static void on_resolved(os_ctx_t *ctx, shell_state_t *st, uint32_t addr)
{
    netcmd_t *nc = &st->nc;
    if (addr == 0) {
        lookup_failed(ctx, st, OS_ENOENT);
        return;
    }
    nc->addr = addr;
    if (st->op == OP_PING) {
        ping_start(ctx, st);
        return;
    }
    nc->phase = NP_OPEN;
    nc->sent = false;
    idle_restart(ctx, st);
    send_phase(ctx, st);
}

void netcmd_on_net(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    netcmd_t *nc = &st->nc;
    union {
        net_info_t info;
        net_counters_t counters;
        net_resolved_t resolved;
        net_failed_t failed;
        net_pong_t pong;
        net_conn_t conn;
        net_conns_end_t end;
        net_error_t error;
    } m;
    bool ours = netcmd_is(st->op) && nc->sent; /* what net says now may be for us */
    char a[16];

    if (ev->type == net_msg_info && net_info_decode(ev, &m.info) == 0) {
        if (ours && st->op == OP_NET && m.info.req == nc->req && !nc->partial) {
            print_info(st, &m.info); /* the counters follow */
            nc->partial = true;
        }
    } else if (ev->type == net_msg_counters && net_counters_decode(ev, &m.counters) == 0) {
        if (ours && st->op == OP_NET && m.counters.req == nc->req && nc->partial) {
            print_counters(st, &m.counters);
            finish(ctx, st, false);
        }
    } else if (ev->type == net_msg_resolved && net_resolved_decode(ev, &m.resolved) == 0) {
        if (ours && nc->phase == NP_RESOLVE && m.resolved.req == nc->req)
            on_resolved(ctx, st, m.resolved.addr);
    } else if (ev->type == net_msg_failed && net_failed_decode(ev, &m.failed) == 0) {
        int seq = st->op == OP_PING ? ping_seq(nc, m.failed.req) : 0;
        if (ours && nc->phase == NP_RESOLVE && m.failed.req == nc->req) {
            lookup_failed(ctx, st, m.failed.status);
        } else if (seq > 0) {
            sh_say(st, "no answer from %s: seq=%d (%s)\n", ipstr(a, sizeof a, nc->addr, -1), seq,
                   os_strerror(m.failed.status));
            ping_answered(ctx, st, seq);
        }
    } else if (ev->type == net_msg_pong && net_pong_decode(ev, &m.pong) == 0) {
        if (st->op == OP_PING)
            on_pong(ctx, st, &m.pong);
    } else if (ev->type == net_msg_conn && net_conn_decode(ev, &m.conn) == 0) {
        if (ours && st->op == OP_NETSTAT && m.conn.req == nc->req)
            print_conn(st, &m.conn);
    } else if (ev->type == net_msg_conns_end && net_conns_end_decode(ev, &m.end) == 0) {
        if (ours && st->op == OP_NETSTAT && m.end.req == nc->req)
            print_conns_end(ctx, st, &m.end);
    } else if (ev->type == net_msg_error && net_error_decode(ev, &m.error) == 0) {
        if (waits_on_net(st))
            fail(ctx, st, "the server refused the request (%s)", os_strerror(m.error.status));
    } else {
        iface_discard(ctx, ev);
        if (waits_on_net(st))
            fail(ctx, st, "the server answered with an error");
    }
}

/* ---- fetch ------------------------------------------------------------------------------ */

void netcmd_on_tcp(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    netcmd_t *nc = &st->nc;
    union {
        tcp_opened_t opened;
        tcp_reply_t reply;
        tcp_error_t error;
    } m;
    bool ours = st->op == OP_FETCH && nc->phase == NP_OPEN && nc->sent;
    char t[300];

    if (ev->type == tcp_msg_opened && tcp_opened_decode(ev, &m.opened) == 0) {
        if (!ours || m.opened.req != nc->req) {
            os_handle_close(ctx, m.opened.chan); /* a connect we gave up on */
            return;
        }
        nc->chan = m.opened.chan;
        nc->phase = NP_ESTABLISH;
        idle_restart(ctx, st);
    } else if (ev->type == tcp_msg_reply && tcp_reply_decode(ev, &m.reply) == 0) {
        if (ours && m.reply.req == nc->req)
            fail(ctx, st, "%s: %s", target(st, t, sizeof t), os_strerror(m.reply.status));
    } else if (ev->type == tcp_msg_error && tcp_error_decode(ev, &m.error) == 0) {
        if (ours)
            fail(ctx, st, "the server refused the request (%s)", os_strerror(m.error.status));
    } else {
        iface_discard(ctx, ev); /* a listening {chan} we never asked for closes here too */
        if (ours)
            fail(ctx, st, "the server answered with an error");
    }
}

static void send_request(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    tcp_data_t m;
    m.data_len = (uint32_t)nc->request_len;
    memcpy(m.data, nc->request, nc->request_len);
    int err = tcp_data_send(ctx, nc->chan, &m);
    if (err == 0)
        nc->sent = true;
    else if (err != OS_EFULL && err != OS_EPEER) /* EFULL: on WRITABLE; EPEER: why follows */
        fail(ctx, st, "%s", os_strerror(err));
}

static void print_header_line(void *arg, const char *line)
{
    sh_say(arg, "%s\n", line);
}

static void fetch_done(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    char t[32];
    if (http_resp_end(&nc->resp) < 0) {
        fail(ctx, st, "%s", nc->resp.error);
        return;
    }
    if (nc->resp.status >= 500) { /* a server error: fetch -r tries again */
        char why[96];
        snprintf(why, sizeof why, "%d%s%s", nc->resp.status, nc->resp.reason[0] ? " " : "",
                 nc->resp.reason);
        if (retry_later(ctx, st, why))
            return;
    }
    sh_say(st, "fetch: %d%s%s, %llu bytes in %s ms\n", nc->resp.status,
           nc->resp.reason[0] ? " " : "", nc->resp.reason, (unsigned long long)nc->resp.body,
           msstr(t, sizeof t, os_clock_now(ctx) - nc->started, 1));
    finish(ctx, st, false);
}

void netcmd_on_chan(os_ctx_t *ctx, shell_state_t *st, const os_event_t *ev)
{
    netcmd_t *nc = &st->nc;
    union {
        tcp_established_t established;
        tcp_data_t data;
        tcp_eof_t eof;
        tcp_error_t error;
    } m;
    char t[300];

    if (ev->kind == OS_EV_PEER_CLOSED) {
        fail(ctx, st, "%s: the connection closed before the response ended",
             target(st, t, sizeof t));
        return;
    }
    if (ev->kind == OS_EV_WRITABLE) {
        if (nc->phase == NP_RESPONSE && !nc->sent)
            send_request(ctx, st);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    idle_restart(ctx, st);
    if (ev->type == tcp_msg_established && tcp_established_decode(ev, &m.established) == 0) {
        if (nc->phase == NP_ESTABLISH) {
            nc->phase = NP_RESPONSE;
            nc->sent = false;
            send_request(ctx, st);
        }
    } else if (ev->type == tcp_msg_data && tcp_data_decode(ev, &m.data) == 0) {
        if (http_resp_feed(&nc->resp, m.data.data, m.data.data_len, print_header_line, st) < 0)
            fail(ctx, st, "%s", nc->resp.error);
    } else if (ev->type == tcp_msg_eof && tcp_eof_decode(ev, &m.eof) == 0) {
        fetch_done(ctx, st);
    } else if (ev->type == tcp_msg_error && tcp_error_decode(ev, &m.error) == 0) {
        if (m.error.type == 0)
            fail(ctx, st, "%s: %s", target(st, t, sizeof t), os_strerror(m.error.status));
        else
            fail(ctx, st, "tcpip refused our message %u (%s)", m.error.type,
                 os_strerror(m.error.status));
    } else {
        iface_discard(ctx, ev);
        fail(ctx, st, "%s: tcpip sent a malformed message", target(st, t, sizeof t));
    }
}

void netcmd_on_timer(os_ctx_t *ctx, shell_state_t *st)
{
    netcmd_t *nc = &st->nc;
    char t[300];
    if (nc->phase == NP_RETRY) { /* fetch -r: the next try, from the connect on */
        nc->phase = NP_CONNECT;
        http_resp_init(&nc->resp);
        idle_restart(ctx, st);
        if (st->tcp.state == CONN_DOWN)
            sh_connect(ctx, st, &st->tcp);
        if (st->net.state == CONN_DOWN)
            sh_connect(ctx, st, &st->net);
        advance(ctx, st);
        return;
    }
    if (nc->phase == NP_PING)
        ping_tick(ctx, st);
    else if (nc->phase == NP_RESOLVE && nc->sent)
        fail(ctx, st, "%s: name lookup timed out", nc->host);
    else if (st->op == OP_FETCH && nc->phase >= NP_OPEN)
        fail(ctx, st, "%s: %s", target(st, t, sizeof t), os_strerror(OS_ETIMEDOUT));
    else
        fail(ctx, st, "%s", os_strerror(OS_ETIMEDOUT));
}

void netcmd_interrupt(os_ctx_t *ctx, shell_state_t *st)
{
    sh_say(st, "^C\n");
    if (st->op == OP_PING && st->nc.phase == NP_PING && st->nc.sent_n > 0) {
        ping_end(ctx, st); /* the summary of the echoes sent so far */
        return;
    }
    finish(ctx, st, true);
}
