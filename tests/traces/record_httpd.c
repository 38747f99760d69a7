/* record_httpd.c — records the golden httpd trace: two simulated nodes, node 0's httpd serves a
 * few requests from an ext2 image to a client on node 1. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iface/init_client.h>
#include <iface/tcp.h>
#include <image.h>
#include <sim/blk.h>
#include <sim/sim.h>
#include <trace/recorder.h>

/*
 * usage: record_httpd IMAGE OUT.db   (tests/traces/record.sh makes IMAGE with
 * make-httpd-image.sh and runs it; docs/httpd.md)
 *
 * Node 0 (10.0.0.2) runs tcpip, the fs server on blk0 (a simulated disk loaded from IMAGE; the
 * file is not changed) and httpd, and is recorded. Node 1 (10.0.0.1) runs tcpip and `client`:
 * one keep-alive connection carrying, pipelined, GET /, HEAD /hello.txt, GET /missing, a byte
 * range of /hello.txt, GET /sub/ and a last GET /hello.txt with `Connection: close`; then a
 * second connection with a malformed request. The client reads each connection to its end and
 * checks the status lines it expects. The run is deterministic (seed 1, no faults), so the same
 * build and image record the same trace. Exit 0 when every answer came, 1 otherwise.
 */
enum { REQ_TCP = 1, REQ_CONNECT = 10, RESP_MAX = 65536 };

static const char *const conn_requests[2] = {
    "GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"
    "HEAD /hello.txt HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"
    "GET /missing HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"
    "GET /hello.txt HTTP/1.1\r\nHost: 10.0.0.2\r\nRange: bytes=10-29\r\n\r\n"
    "GET /sub/ HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"
    "GET /hello.txt HTTP/1.1\r\nHost: 10.0.0.2\r\nConnection: close\r\n\r\n",
    "NOT A REQUEST\r\n\r\n",
};
/* the status lines each connection's answers must hold, in order */
static const char *const conn_expect[2][7] = {
    {"HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 404", "HTTP/1.1 206", "HTTP/1.1 200", "HTTP/1.1 200",
     NULL},
    {"HTTP/1.1 400", NULL},
};

static struct {
    bool failed;
    int done; /* connections read to their end */
    uint64_t done_ns;
    char resp[RESP_MAX];
    size_t resp_len;
} R;

typedef struct client {
    os_handle_t tcp, conn;
    int which; /* 0, 1: the connection under way */
} client_t;

static void fail(const char *what)
{
    fprintf(stderr, "record_httpd: %s\n", what);
    R.failed = true;
}

/* The answers on connection `which` hold the expected status lines in order. */
static void check_answers(int which)
{
    const char *p = R.resp, *end = R.resp + R.resp_len;
    for (int i = 0; conn_expect[which][i]; i++) {
        const char *want = conn_expect[which][i];
        const char *hit = NULL;
        for (const char *q = p; q + strlen(want) <= end && !hit; q++)
            if (memcmp(q, want, strlen(want)) == 0)
                hit = q;
        if (!hit) {
            fprintf(stderr, "record_httpd: connection %d: no '%s' (answer %d)\n", which, want,
                    i + 1);
            R.failed = true;
            return;
        }
        p = hit + strlen(want);
    }
}

static void client_start(os_ctx_t *ctx)
{
    client_t *c = os_state(ctx);
    c->tcp = c->conn = OS_HANDLE_NONE;
    init_connect_iface(ctx, REQ_TCP, &tcp_iface);
}

static void connect_next(os_ctx_t *ctx, client_t *c)
{
    R.resp_len = 0;
    tcp_connect_send(ctx, c->tcp,
                     &(tcp_connect_t){REQ_CONNECT + (uint32_t)c->which, 0x0a000002, 80});
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    client_t *c = os_state(ctx);
    static union {
        init_connected_t ic;
        tcp_opened_t op;
        tcp_data_t d;
    } m;
    if (ev->kind == OS_EV_MESSAGE && ev->handle == init_channel(ctx)) {
        if (init_connected_decode(ev, &m.ic) != 0) {
            fail("init refused the tcp connect");
            return;
        }
        c->tcp = m.ic.chan;
        connect_next(ctx, c);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (ev->handle == c->tcp) {
        if (tcp_opened_decode(ev, &m.op) != 0) {
            fail("tcp connect refused");
            return;
        }
        c->conn = m.op.chan;
    } else if (ev->handle == c->conn) {
        if (ev->type == tcp_msg_established) {
            const char *rq = conn_requests[c->which];
            m.d.data_len = (uint32_t)strlen(rq);
            memcpy(m.d.data, rq, m.d.data_len);
            if (tcp_data_send(ctx, c->conn, &m.d) != 0)
                fail("the requests could not be sent");
        } else if (tcp_data_decode(ev, &m.d) == 0) {
            if (R.resp_len + m.d.data_len > RESP_MAX) {
                fail("more answer than expected");
                return;
            }
            memcpy(R.resp + R.resp_len, m.d.data, m.d.data_len);
            R.resp_len += m.d.data_len;
        } else if (ev->type == tcp_msg_eof) {
            check_answers(c->which);
            os_handle_close(ctx, c->conn); /* our FIN after httpd's */
            c->conn = OS_HANDLE_NONE;
            R.done++;
            if (++c->which < 2)
                connect_next(ctx, c);
            else
                R.done_ns = os_clock_now(ctx);
        } else {
            fail("the connection failed");
        }
    }
}

static const os_program_t client = {"client", sizeof(client_t), client_start, client_event};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: record_httpd IMAGE OUT.db\n");
        return 2;
    }
    static const char m0[] = "program tcpip arg=addr=10.0.0.2/24\n"
                             "program fs\n"
                             "program httpd reach=tcp,fs,net\n";
    static const char m1[] = "program tcpip arg=addr=10.0.0.1/24\n"
                             "program client reach=tcp\n";
    static const os_program_t *image[64];
    size_t n = 0;
    for (const os_program_t *const *p = orrery_programs; *p && n < 62; p++)
        image[n++] = *p;
    image[n++] = &client;
    image[n] = NULL;
    char err[256];
    sim_disk_t *disk = sim_disk_open(argv[1], err, sizeof err);
    if (!disk) {
        fprintf(stderr, "record_httpd: %s\n", err);
        return 2;
    }
    trace_recorder *rec;
    trace_run_info info = {.platform = "sim",
                           .seed = 1,
                           .manifest = m0,
                           .workers = 1,
                           .command = "tests/traces/record_httpd (node 0 of two)"};
    if (trace_recorder_open(argv[2], &info, &rec, err, sizeof err) != 0) {
        fprintf(stderr, "record_httpd: %s\n", err);
        sim_disk_free(disk);
        return 2;
    }
    sim_config_t cfg[2];
    memset(cfg, 0, sizeof cfg);
    for (int i = 0; i < 2; i++) {
        cfg[i].programs = image;
        cfg[i].seed = 1 + (uint64_t)i;
        cfg[i].net = true;
        cfg[i].init_arg = i == 0 ? m0 : m1;
        cfg[i].init_arg_len = strlen(i == 0 ? m0 : m1);
    }
    cfg[0].trace = trace_recorder_sink(rec);
    cfg[0].disk = disk;
    if (sim_boot_nodes(cfg, 2) != 0) {
        fprintf(stderr, "record_httpd: the two nodes did not boot\n");
        return 1;
    }
    /* until both connections were read to their end, then 200 ms more for the last FINs */
    for (uint64_t steps = 0; steps < 10000000 && !R.failed; steps++) {
        if (R.done == 2 && sim_now() > R.done_ns + 200000000ull)
            break;
        if (!sim_step())
            break;
    }
    fputs(sim_node_console_output(0, NULL), stderr);
    fputs(sim_node_console_output(1, NULL), stderr);
    long leaks = sim_teardown();
    sim_disk_free(disk);
    int rc = trace_recorder_close(rec, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "record_httpd: %s\n", err);
    bool ok = R.done == 2 && !R.failed && leaks == 0 && rc == 0;
    printf("record_httpd: %d connection(s) answered, %s\n", R.done, ok ? "recorded" : "FAILED");
    return ok ? 0 : 1;
}
