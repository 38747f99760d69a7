/* serve.c — `orrery serve`: a reverse proxy on the host that boots a fresh Orrery for every
 * request, forwards the request to its httpd through a slirp hostfwd port, and throws the
 * instance away (Starina's vmcgi, faster). One thread, one poll loop. */
#define _GNU_SOURCE
#include "commands.h"
#include "opt.h"
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <image.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

serve_state_t serve_state;

static void on_signal(int sig)
{
    int e = errno;
    char c = (char)sig;
    if (write(serve_state.sigpipe[1], &c, 1) < 0) {
    }
    errno = e;
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* Give waiting clients instances (the first come first), start instances up to the limit, and
 * keep the pool's idle ones. */
static void dispatch(void)
{
    uint64_t now = now_ns();
    for (;;) {
        client_t *c = NULL;
        for (size_t i = 0; i < CLIENTS_MAX; i++)
            if (serve_state.cl[i].used && serve_state.cl[i].st == C_WAIT &&
                !serve_state.cl[i].inst && (!c || serve_state.cl[i].seq < c->seq))
                c = &serve_state.cl[i];
        if (!c)
            break;
        inst_t *best = NULL;
        for (size_t i = 0; i < NELEM_INST; i++) {
            inst_t *in = &serve_state.inst[i];
            if (in->used && !in->dying && !in->client &&
                (!best || (in->ready && !best->ready) ||
                 (in->ready == best->ready && in->t_start < best->t_start)))
                best = in;
        }
        if (!best && serve_live_instances() < serve_state.cfg.max_instances)
            best = serve_inst_start();
        if (!best) {
            if (serve_live_instances() == 0) { /* nothing could start: no process, no pipe */
                serve_client_error(c, 502, "orrery serve: cannot start an instance: %s\n",
                                   strerror(errno));
                continue;
            }
            break;
        }
        best->client = c;
        c->inst = best;
        c->deadline = (best->ready ? now : best->t_start) + MS(serve_state.cfg.timeout_s * 1000);
        if (!best->ready)
            c->deadline = best->t_start + MS(serve_state.cfg.boot_timeout_s * 1000) +
                          MS(serve_state.cfg.timeout_s * 1000);
    }
    while (!serve_state.stopping && serve_state.fails < 3 &&
           serve_idle_instances() < serve_state.cfg.pool &&
           serve_live_instances() < serve_state.cfg.max_instances)
        if (!serve_inst_start())
            break;
}

static int serve_loop(void)
{
    struct pollfd pf[2 + CLIENTS_MAX * 2 + NELEM_INST * 2];
    void *who[sizeof(pf) / sizeof(pf[0])];
    char kind[sizeof(pf) / sizeof(pf[0])];
    uint64_t stop_deadline = 0;
    for (;;) {
        dispatch();
        serve_check_instances();
        serve_check_clients();
        dispatch();
        bool busy = false;
        for (size_t i = 0; i < CLIENTS_MAX; i++)
            busy |= serve_state.cl[i].used;
        for (size_t i = 0; i < NELEM_INST; i++)
            busy |= serve_state.inst[i].used;
        if (serve_state.stopping && !busy)
            return 0;
        if (serve_state.stopping && now_ns() > stop_deadline) { /* cut what is still in flight */
            for (size_t i = 0; i < CLIENTS_MAX; i++)
                if (serve_state.cl[i].used) {
                    serve_state.cl[i].answered = true;
                    serve_state.cl[i].out_len = serve_state.cl[i].out_off = 0;
                    serve_state.cl[i].up_eof = true;
                    serve_client_free(&serve_state.cl[i]);
                }
            for (size_t i = 0; i < NELEM_INST; i++)
                if (serve_state.inst[i].used && !serve_state.inst[i].reaped)
                    kill(-serve_state.inst[i].pid, SIGKILL);
        }
        int n = 0;
        pf[n] = (struct pollfd){serve_state.sigpipe[0], POLLIN, 0};
        kind[n++] = 's';
        bool room = false; /* a free client slot: else the listener waits (no busy loop) */
        for (size_t i = 0; i < CLIENTS_MAX && !room; i++)
            room = !serve_state.cl[i].used;
        if (serve_state.lfd >= 0 && room) {
            pf[n] = (struct pollfd){serve_state.lfd, POLLIN, 0};
            kind[n++] = 'l';
        }
        for (size_t i = 0; i < NELEM_INST; i++) {
            inst_t *in = &serve_state.inst[i];
            if (in->used && in->out >= 0) {
                pf[n] = (struct pollfd){in->out, POLLIN, 0};
                who[n] = in;
                kind[n++] = 'i';
            }
            if (in->used && in->probe >= 0) {
                short ev = POLLIN;
                if (in->probe_sent < sizeof(PROBE_REQ) - 1)
                    ev |= POLLOUT;
                pf[n] = (struct pollfd){in->probe, ev, 0};
                who[n] = in;
                kind[n++] = 'p';
            }
        }
        for (size_t i = 0; i < CLIENTS_MAX; i++) {
            client_t *c = &serve_state.cl[i];
            if (!c->used)
                continue;
            short ev = c->st == C_READ ? POLLIN : 0;
            if (c->out_off < c->out_len)
                ev |= POLLOUT;
            pf[n] = (struct pollfd){c->fd, ev, 0};
            who[n] = c;
            kind[n++] = 'c';
            if (c->up >= 0) {
                short uev = c->st == C_SEND                                ? POLLOUT
                            : c->st == C_RELAY && c->out_off == c->out_len ? POLLIN
                                                                           : 0;
                pf[n] = (struct pollfd){c->up, uev, 0};
                who[n] = c;
                kind[n++] = 'u';
            }
        }
        /* short waits only while something is due soon: a retry, a reaping */
        int wait_ms = 100;
        for (size_t i = 0; i < NELEM_INST; i++)
            if (serve_state.inst[i].used &&
                (serve_state.inst[i].dying || serve_state.inst[i].eof ||
                 (serve_state.inst[i].seen_fs && !serve_state.inst[i].ready)))
                wait_ms = RETRY_MS;
        for (size_t i = 0; i < CLIENTS_MAX; i++)
            if (serve_state.cl[i].used && serve_state.cl[i].st == C_WAIT &&
                serve_state.cl[i].inst && serve_state.cl[i].inst->ready)
                wait_ms = RETRY_MS;
        int r = poll(pf, (nfds_t)n, wait_ms);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "orrery serve: poll: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; r > 0 && i < n; i++) {
            if (!pf[i].revents)
                continue;
            switch (kind[i]) {
            case 's': {
                char sig[16];
                if (read(serve_state.sigpipe[0], sig, sizeof(sig)) > 0 && !serve_state.stopping) {
                    fprintf(stderr, "orrery serve: %s: stopping\n",
                            sig[0] == SIGINT ? "SIGINT" : "SIGTERM");
                    serve_state.stopping = true;
                    stop_deadline = now_ns() + MS(serve_state.cfg.grace_s * 1000);
                    close(serve_state.lfd);
                    serve_state.lfd = -1;
                    /* idle instances and queued requests go at once */
                    for (size_t k = 0; k < NELEM_INST; k++)
                        if (serve_state.inst[k].used && !serve_state.inst[k].client)
                            serve_inst_kill(&serve_state.inst[k]);
                    for (size_t k = 0; k < CLIENTS_MAX; k++)
                        if (serve_state.cl[k].used &&
                            (serve_state.cl[k].st == C_WAIT || serve_state.cl[k].st == C_READ) &&
                            !serve_state.cl[k].inst)
                            serve_client_error(&serve_state.cl[k], 503,
                                               "orrery serve: shutting down\n");
                }
                break;
            }
            case 'l':
                serve_accept_clients();
                break;
            case 'i':
                serve_inst_read(who[i]);
                break;
            case 'p': {
                inst_t *in = who[i];
                if (in->used && in->probe >= 0 && !in->ready)
                    serve_probe_step(in, pf[i].revents);
                break;
            }
            case 'c': {
                client_t *c = who[i];
                if (!c->used)
                    break;
                if (c->st == C_READ && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    serve_client_read(c);
                else if (pf[i].revents & (POLLOUT | POLLERR | POLLHUP))
                    serve_client_write(c);
                break;
            }
            case 'u': {
                client_t *c = who[i];
                if (!c->used || c->up < 0)
                    break;
                if (c->st == C_SEND)
                    serve_client_up_write(c);
                else if (c->st == C_RELAY)
                    serve_client_up_read(c);
                break;
            }
            }
        }
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: orrery serve [--listen ADDR:PORT] [--pool N] [--max-instances N] [--queue N]\n"
    "                    [--qemu microvm] [--disk FILE] [--manifest FILE]\n"
    "                    [--boot-timeout S] [--timeout S] [--verbose]\n"
    "\n"
    "A reverse proxy on the host that boots a fresh Orrery for every HTTP request, forwards\n"
    "the request to its httpd (port 80, through a slirp hostfwd on a free 127.0.0.1 port),\n"
    "answers with the instance's response plus the headers 'orrery-boot-time' (ms from the\n"
    "process start, or QEMU's, to httpd ready) and 'orrery-instance' (a unique id), and\n"
    "throws the instance away. One connection carries one request (Connection: close).\n"
    "\n"
    "  --listen ADDR:PORT  where to listen (default 127.0.0.1:8000; PORT 0: any free port).\n"
    "                      ADDR is a numeric IPv4 address or 'localhost'; an address that is\n"
    "                      not loopback (0.0.0.0, a LAN address) is taken only when written\n"
    "                      here, and said on stderr. The address is printed on stdout.\n"
    "  --pool N            keep N booted instances warm (0..--max-instances; default 0); each\n"
    "                      still serves one request.\n"
    "  --max-instances N   instances alive at once (1..64; default 4); requests beyond wait.\n"
    "  --queue N           requests that may wait for an instance (0..200; default 64);\n"
    "                      more get 503.\n"
    "  --qemu microvm      boot the x86_64 image under QEMU (orrery qemu --machine microvm)\n"
    "                      instead of hosted processes (orrery run).\n"
    "  --disk FILE         the disk image, opened read-only by every instance (default:\n"
    "                      build/disk.img, the default disk; $ORRERY_DISK replaces it).\n"
    "  --manifest FILE     the boot manifest each instance gets (read at each start).\n"
    "                      Default: the default manifest with tcpip on slirp's fixed address\n"
    "                      (10.0.2.15, no DHCP: a second less per boot), in a temp file.\n"
    "  --boot-timeout S    an instance not ready after S seconds is killed (504; default 30,\n"
    "                      120 with --qemu).\n"
    "  --timeout S         a ready instance that has not answered in S seconds is killed\n"
    "                      (504; default 30).\n"
    "  --verbose           a line on stderr per instance started, ready and per error.\n"
    "\n"
    "An instance that fails to boot or dies answers 502 with the reason in the body; the\n"
    "proxy keeps serving. SIGINT/SIGTERM: stop accepting, answer waiting requests 503, let\n"
    "in-flight ones finish for up to 5 s, kill every instance, exit 0. docs/httpd.md\n";

/* Without --manifest: the default manifest with tcpip on slirp's fixed address (10.0.2.15, the
 * gateway 10.0.2.2, DNS 10.0.2.3) instead of DHCP, which costs about a second of every boot
 * (lwIP checks an offered address with ARP before binding it). Written once to a temp file
 * that every instance reads and that we remove at the end. 0, or 1 after printing why. */
static const char static_net[] = " arg=addr=10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3";

static int write_manifest(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(serve_state.tmp_manifest, sizeof(serve_state.tmp_manifest), "%s/orrery-serve-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemp(serve_state.tmp_manifest);
    if (fd < 0) {
        fprintf(stderr, "orrery serve: a temp manifest in %s: %s\n", tmp ? tmp : "/tmp",
                strerror(errno));
        serve_state.tmp_manifest[0] = '\0';
        return 1;
    }
    FILE *f = fdopen(fd, "w");
    const char *p = orrery_default_manifest;
    while (f && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *arg = memmem(p, len, " arg=", 5);
        if (strncmp(p, "program tcpip", 13) != 0 || (p[13] != ' ' && p[13] != '\t')) {
            fwrite(p, 1, len, f);
        } else if (!arg) {
            fwrite(p, 1, len, f);
            fputs(static_net, f);
        } else {
            /* DHCP (arg= empty, dhcp, quiet or quiet,dhcp) becomes the static address */
            const char *v = arg + 5, *ve = v;
            while (ve < p + len && *ve != ' ' && *ve != '\t')
                ve++;
            size_t vl = (size_t)(ve - v);
            bool dhcp = vl == 0 || (vl == 4 && !memcmp(v, "dhcp", 4)) ||
                        (vl == 5 && !memcmp(v, "quiet", 5)) ||
                        (vl == 10 && !memcmp(v, "quiet,dhcp", 10));
            fwrite(p, 1, (size_t)(arg - p), f);
            if (dhcp)
                fputs(static_net, f);
            else
                fwrite(arg, 1, (size_t)(ve - arg), f);
            fwrite(ve, 1, (size_t)(p + len - ve), f);
        }
        fputc('\n', f);
        p += len + (nl ? 1 : 0);
    }
    if (!f || fclose(f) != 0) {
        fprintf(stderr, "orrery serve: %s: %s\n", serve_state.tmp_manifest, strerror(errno));
        unlink(serve_state.tmp_manifest);
        serve_state.tmp_manifest[0] = '\0';
        return 1;
    }
    serve_state.cfg.manifest = serve_state.tmp_manifest;
    return 0;
}

/* "ADDR:PORT" into a, refusing names other than localhost (no lookups). 0 or 2. */
static int parse_listen(const char *s, struct sockaddr_in *a)
{
    const char *colon = strrchr(s, ':');
    char host[64];
    uint64_t port;
    if (!colon || (size_t)(colon - s) >= sizeof(host) || !cli_parse_u64(colon + 1, 0, 65535, &port))
        return cli_usage_error("serve",
                               "serve: --listen wants ADDR:PORT (e.g. 127.0.0.1:8000, "
                               "port 0..65535), not '%s'",
                               s);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return cli_usage_error("serve",
                               "serve: --listen: '%s' is not an IPv4 address "
                               "(A.B.C.D or localhost)",
                               host);
    return 0;
}

int hl_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"listen", required_argument, NULL, 'l'},
        {"pool", required_argument, NULL, 'p'},
        {"max-instances", required_argument, NULL, 'm'},
        {"queue", required_argument, NULL, 'q'},
        {"qemu", required_argument, NULL, 'Q'},
        {"disk", required_argument, NULL, 'd'},
        {"manifest", required_argument, NULL, 'M'},
        {"boot-timeout", required_argument, NULL, 'B'},
        {"timeout", required_argument, NULL, 'T'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_s = "127.0.0.1:8000", *disk = NULL;
    uint64_t v;
    bool boot_timeout_set = false;
    memset(&serve_state, 0, sizeof(serve_state));
    serve_state.cfg.max_instances = 4;
    serve_state.cfg.queue = 64;
    serve_state.cfg.timeout_s = 30;
    serve_state.cfg.boot_timeout_s = 30;
    serve_state.cfg.grace_s = 5;
    int o;
    while ((o = cli_getopt(argc, argv, "serve", opts)) != -1) {
        switch (o) {
        case CLI_OPT_ERROR:
            return 2;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'l':
            listen_s = optarg;
            break;
        case 'p':
            if (cli_opt_u64("serve", "--pool", optarg, 0, MAX_INSTANCES_MAX, &v))
                return 2;
            serve_state.cfg.pool = (unsigned)v;
            break;
        case 'm':
            if (cli_opt_u64("serve", "--max-instances", optarg, 1, MAX_INSTANCES_MAX, &v))
                return 2;
            serve_state.cfg.max_instances = (unsigned)v;
            break;
        case 'q':
            if (cli_opt_u64("serve", "--queue", optarg, 0, 200, &v))
                return 2;
            serve_state.cfg.queue = (unsigned)v;
            break;
        case 'Q':
            if (strcmp(optarg, "microvm") != 0)
                return cli_usage_error("serve", "serve: --qemu takes 'microvm', not '%s'", optarg);
            serve_state.cfg.qemu = true;
            break;
        case 'd':
            disk = optarg;
            break;
        case 'M':
            serve_state.cfg.manifest = optarg;
            break;
        case 'B':
            if (cli_opt_u64("serve", "--boot-timeout", optarg, 1, 3600, &v))
                return 2;
            serve_state.cfg.boot_timeout_s = (unsigned)v;
            boot_timeout_set = true;
            break;
        case 'T':
            if (cli_opt_u64("serve", "--timeout", optarg, 1, 3600, &v))
                return 2;
            serve_state.cfg.timeout_s = (unsigned)v;
            break;
        case 'v':
            serve_state.cfg.verbose = true;
            break;
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "serve: unexpected argument '%s'", argv[optind]);
    if (serve_state.cfg.pool > serve_state.cfg.max_instances)
        return cli_usage_error("serve", "serve: --pool %u is more than --max-instances %u",
                               serve_state.cfg.pool, serve_state.cfg.max_instances);
    if (serve_state.cfg.qemu && !boot_timeout_set)
        serve_state.cfg.boot_timeout_s = 120;
    struct sockaddr_in la;
    if (parse_listen(listen_s, &la) != 0)
        return 2;

    if (serve_state.cfg.manifest && access(serve_state.cfg.manifest, R_OK) != 0)
        return cli_usage_error("serve", "serve: --manifest %s: %s", serve_state.cfg.manifest,
                               strerror(errno));
    /* The disk: checked now so a typo is a usage error; each instance opens it again. */
    char path[4096];
    if (disk) {
        snprintf(path, sizeof(path), "%s", disk);
    } else {
        int d = hl_default_disk(path, sizeof(path));
        if (d == 1)
            return cli_usage_error("serve", "serve: no disk ($ORRERY_DISK is 'none'); the site "
                                            "is on a disk: give --disk FILE");
        if (d != 0)
            return cli_usage_error("serve", "serve: no default disk (%s); give --disk FILE", path);
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_usage_error("serve", "serve: --disk %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cli_usage_error("serve", "serve: --disk %s: not a regular file", path);
    snprintf(serve_state.disk_arg, sizeof(serve_state.disk_arg), "%s,ro", path);

    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "orrery serve: cannot find this program (/proc/self/exe): %s\n",
                strerror(errno));
        return 1;
    }
    self[sl] = '\0';
    serve_state.self = self;

    serve_state.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(serve_state.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    socklen_t al = sizeof(la);
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &la.sin_addr, addr, sizeof(addr));
    if (serve_state.lfd < 0 || bind(serve_state.lfd, (struct sockaddr *)&la, sizeof(la)) != 0 ||
        listen(serve_state.lfd, 128) != 0 ||
        getsockname(serve_state.lfd, (struct sockaddr *)&la, &al) != 0) {
        fprintf(stderr, "orrery serve: --listen %s: %s\n", listen_s, strerror(errno));
        return 1;
    }
    if ((ntohl(la.sin_addr.s_addr) >> 24) != 127)
        fprintf(stderr,
                "orrery serve: listening on %s, which is not loopback: other machines "
                "can boot instances here\n",
                addr);

    if (pipe2(serve_state.sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "orrery serve: pipe: %s\n", strerror(errno));
        return 1;
    }
    if (!serve_state.cfg.manifest && write_manifest() != 0)
        return 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (size_t i = 0; i < CLIENTS_MAX; i++)
        serve_state.cl[i].fd = serve_state.cl[i].up = -1;
    uint32_t rnd = (uint32_t)getpid() ^ (uint32_t)now_ns();
    serve_state.run_id = rnd * 2654435761u;

    printf("orrery serve: http://%s:%d/ (%s, pool %u, at most %u instances)\n", addr,
           ntohs(la.sin_port), serve_state.cfg.qemu ? "qemu microvm" : "hosted",
           serve_state.cfg.pool, serve_state.cfg.max_instances);
    fflush(stdout);
    int rc = serve_loop();
    if (serve_state.tmp_manifest[0])
        unlink(serve_state.tmp_manifest);
    fprintf(stderr, "orrery serve: stopped (%llu instances booted)\n",
            (unsigned long long)serve_state.nboots);
    return rc;
}
