/* run.c — `orrery run`: check the manifest, then boot hosted (threads) or deterministic (sim). */
#include "commands.h"
#include "opt.h"
#include "qemu.h"
#include <hl/hosted.h>
#include <trace/outpath.h>
#include <trace/pcap.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <image.h>
#include <k/kernel.h>

/* A printf format: the limits come from their one definition (os.h, k/kernel.h). */
static const char run_usage[] =
    "usage: orrery run [--manifest FILE] [--workers N] [--deterministic --seed N] [--trace "
    "FILE.db]\n"
    "                  [--net none|user[,hostfwd=...]] [--pcap FILE]\n"
    "                  [--disk FILE[,ro]|none]\n"
    "\n"
    "Boot Orrery as a Linux process; the console is stdin/stdout (try 'help' at the\n"
    "'orrery> ' prompt, 'shutdown' to leave). SIGINT/SIGTERM shut it down cleanly.\n"
    "At a terminal the line is edited, with history and Tab completion; Ctrl-C cancels\n"
    "a line or stops a command, Ctrl-D leaves; the terminal's mode is always given back\n"
    "(docs/shell.md).\n"
    "\n"
    "  --manifest FILE   boot manifest to use instead of the built-in one, at most\n"
    "                    %d bytes (docs/manifest.md)\n"
    "  --workers N       worker threads running tasks, 1..%d (default: one per core,\n"
    "                    at most %d)\n"
    "  --deterministic   one thread, virtual clock, seeded scheduling: the same seed\n"
    "                    and input give the same output, byte for byte\n"
    "  --seed N          the seed for --deterministic (default 1)\n"
    "  --trace FILE.db   record every IPC event into a SQLite trace (docs/trace-format.md;\n"
    "                    read it with 'orrery trace', replay a server with 'orrery replay');\n"
    "                    written to FILE.db.partial, renamed once complete; an existing\n"
    "                    FILE.db must be an Orrery trace (else refused, exit 2)\n"
    "  --net none        no network device (the default; tcpip and httpd then idle)\n"
    "  --net user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...\n"
    "                    the net0 device on libslirp, QEMU's user network: 10.0.2.0/24,\n"
    "                    gateway 10.0.2.2, DNS 10.0.2.3, DHCP from 10.0.2.15; each hostfwd\n"
    "                    (at most %d) forwards a host port to the guest (an empty HOSTADDR\n"
    "                    is every interface, as in QEMU: use 127.0.0.1 to stay local;\n"
    "                    GUESTADDR defaults to 10.0.2.15); docs/networking.md; a TCP\n"
    "                    hostfwd to guest port 80 reaches httpd and its URL is printed\n"
    "                    on stderr (docs/httpd.md)\n"
    "  --pcap FILE       capture every net0 frame, both ways, into a pcap file for\n"
    "                    'tcpdump -r' (needs --net user; timestamps: the kernel clock, ns\n"
    "                    since boot); written to FILE.partial, renamed at the end; an\n"
    "                    existing FILE must be a pcap file (else refused, exit 2)\n"
    "  --disk FILE[,ro]  the blk0 device on an image file: 512-byte sectors, capacity =\n"
    "                    the file's size / 512 (a non-zero multiple of 512; never created\n"
    "                    or truncated: make one with 'truncate -s 64M FILE'); locked while\n"
    "                    the run lasts; ',ro' (or a file we may not write) serves it\n"
    "                    read-only; docs/storage.md\n"
    "                    Without --disk: disk.img next to this binary (build/disk.img, the\n"
    "                    default disk made from disk/ by the build; what the OS writes\n"
    "                    stays in it), unless another run has it open (then no disk);\n"
    "                    --disk none: no disk. $ORRERY_DISK=FILE|none replaces the\n"
    "                    default. The disk used is said on stderr at the start.\n"
    "                    --deterministic runs have no disk. docs/storage-shell.md\n"
    "  --help            this text\n";

int hl_manifest_load(const char *path, char **text, size_t *len)
{
    char err[256] = "";
    int line;

    /* A generous bound for reading; the manifest's own limit (OS_BOOT_ARG_MAX) is checked
     * by the parser, which names the line that crosses it. */
    *text = cli_read_file(path, 16u << 20, len);
    if (!*text)
        return 2;
    line = orrery_manifest_check(*text, *len, err, sizeof(err));
    if (line != 0) {
        fprintf(stderr, "orrery: %s:%d: %s\n", path, line, err[0] ? err : "invalid manifest");
        free(*text);
        *text = NULL;
        return 2;
    }
    return 0;
}

/* net0's capture hook: serialized by net.c, so the writer needs no lock of its own. */
static void run_pcap_tap(void *self, uint64_t t_ns, bool out, const void *frame, size_t len)
{
    (void)out;
    trace_pcap_write(self, t_ns, frame, len);
}

int hl_cmd_run(int argc, char **argv)
{
    const char *manifest_path = NULL, *trace_path = NULL, *pcap_path = NULL, *disk_spec = NULL;
    uint64_t workers = 0, seed = 1;
    bool deterministic = false, seed_given = false, net_on = false, net_given = false;
    bool no_disk = false, default_disk = false;
    hl_net_config_t net;

    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},           {"deterministic", no_argument, NULL, 'd'},
        {"manifest", required_argument, NULL, 'm'}, {"workers", required_argument, NULL, 'w'},
        {"seed", required_argument, NULL, 's'},     {"trace", required_argument, NULL, 't'},
        {"net", required_argument, NULL, 'n'},      {"pcap", required_argument, NULL, 'p'},
        {"disk", required_argument, NULL, 'D'},     {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = cli_getopt(argc, argv, "run", opts)) != -1) {
        switch (c) {
        case 'h':
            printf(run_usage, OS_BOOT_ARG_MAX, K_WORKERS_MAX, K_WORKERS_MAX, HL_NET_FWD_MAX);
            return 0;
        case 'd':
            deterministic = true;
            break;
        case 'm':
            manifest_path = optarg;
            break;
        case 't':
            if (!*optarg)
                return cli_usage_error("run", "run: --trace needs a file name");
            trace_path = optarg;
            break;
        case 'p':
            if (!*optarg)
                return cli_usage_error("run", "run: --pcap needs a file name");
            if (strcmp(optarg, "-") == 0)
                return cli_usage_error("run", "run: --pcap -: stdout is the console; name a file");
            pcap_path = optarg;
            break;
        case 'D':
            if (disk_spec || no_disk)
                return cli_usage_error("run", "run: --disk given twice (there is one blk0)");
            if (strcmp(optarg, "none") == 0)
                no_disk = true;
            else
                disk_spec = optarg;
            break;
        case 'n': {
            char err[256];
            if (hl_net_parse(optarg, &net_on, &net, err, sizeof(err)) != 0)
                return cli_usage_error("run", "run: --net: %s", err);
            net_given = true;
            break;
        }
        case 'w':
            if (cli_opt_u64("run", "--workers", optarg, 1, K_WORKERS_MAX, &workers) != 0)
                return 2;
            break;
        case 's':
            if (cli_opt_u64("run", "--seed", optarg, 0, UINT64_MAX, &seed) != 0)
                return 2;
            seed_given = true;
            break;
        default:
            return 2; /* cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("run", "run: unexpected argument '%s'", argv[optind]);
    if (seed_given && !deterministic)
        return cli_usage_error("run", "run: --seed needs --deterministic");
    if (deterministic && net_given && net_on)
        return cli_usage_error("run",
                               "run: --net user needs the threaded run, not --deterministic");
    if (pcap_path && !net_on)
        return cli_usage_error("run", "run: --pcap needs --net user (there is no net0 to capture)");
    if (deterministic && disk_spec)
        return cli_usage_error("run", "run: --disk needs the threaded run, not --deterministic");
    if (deterministic && workers > 1)
        return cli_usage_error("run", "run: --deterministic runs one worker");

    const char *text = orrery_default_manifest;
    size_t len = strlen(orrery_default_manifest);
    char *owned = NULL;
    if (manifest_path) {
        if (hl_manifest_load(manifest_path, &owned, &len) != 0)
            return 2;
        text = owned;
    }

    /* Opened (and locked) before anything is written: a bad image stops the run at once. */
    hl_blk_config_t disk = {.fd = -1};
    char default_path[4096];
    if (!disk_spec && !no_disk && !deterministic) {
        /* the default disk; a run that has it open already leaves this one without */
        char err[4200];
        int found = hl_default_disk(default_path, sizeof(default_path));
        if (found == 1)
            ; /* ORRERY_DISK=none: as --disk none */
        else if (found != 0)
            fprintf(stderr, "orrery: disk: none (no default image %s; --disk FILE attaches one)\n",
                    default_path);
        else if (hl_blk_open(default_path, &disk, err, sizeof(err)) != 0)
            fprintf(stderr, "orrery: disk: none (the default image cannot be used: %s)\n", err);
        else
            default_disk = true;
    }
    if (disk_spec) {
        char err[4200];
        if (hl_blk_open(disk_spec, &disk, err, sizeof(err)) != 0) {
            free(owned);
            return cli_usage_error("run", "run: --disk: %s", err);
        }
    }
    if (disk.fd >= 0)
        fprintf(stderr, "orrery: disk: %s (%s%s)\n", disk.path,
                disk.read_only ? "read-only" : "read-write", default_disk ? ", the default" : "");

    /* Opened before the trace and the boot: a path that is not ours stops the run at once. */
    trace_pcap *pcap = NULL;
    if (pcap_path) {
        char err[1024];
        int prc = trace_pcap_open(pcap_path, &pcap, err, sizeof(err));
        if (prc != 0) {
            fprintf(stderr, "orrery: run: --pcap: %s\n", err);
            free(owned);
            hl_blk_close(&disk);
            return prc == TRACE_OUT_REFUSED ? 2 : 1;
        }
        net.tap = run_pcap_tap;
        net.tap_self = pcap;
    }

    const hal_trace_sink_t *sink = NULL;
    if (trace_path) {
        int trc = hl_trace_run_open(
            trace_path, deterministic, seed, text, len,
            deterministic ? 1 : (workers ? (unsigned)workers : hl_default_workers()), "orrery run",
            &sink);
        if (trc != 0) {
            trace_pcap_abort(pcap);
            free(owned);
            hl_blk_close(&disk);
            return trc; /* 2: the path is not ours to replace */
        }
    }

    int status;
    if (deterministic) {
        hl_det_config_t dc = {
            .programs = orrery_programs,
            .init_program = "init",
            .init_arg = text,
            .init_arg_len = len,
            .seed = seed,
            .console_in = 0,
            .console_out = 1,
            .trace = sink,
        };
        status = hl_run_deterministic(&dc);
    } else {
        hl_run_config_t rc;
        hl_run_config_init(&rc);
        hl_run_stats_t stats;
        rc.programs = orrery_programs;
        rc.init_arg = text;
        rc.init_arg_len = len;
        rc.workers = (unsigned)workers;
        rc.handle_signals = true;
        rc.stats = &stats;
        rc.trace = sink;
        rc.net = net_on ? &net : NULL;
        rc.disk = disk.fd >= 0 ? &disk : NULL;
        if (net_on)
            hq_print_http_urls(&net, stderr);
        status = hl_run(&rc);
        if (status >= 0 && stats.leaks != 0)
            fprintf(stderr, "orrery: warning: %ld kernel allocations leaked\n", stats.leaks);
    }
    free(owned);
    hl_blk_close(&disk);
    bool pcap_failed = false;
    if (pcap) {
        char err[1024];
        if (trace_pcap_close(pcap, err, sizeof(err)) != 0) {
            fprintf(stderr, "orrery: run: --pcap: %s\n", err);
            pcap_failed = true;
        }
    }
    if (sink && hl_trace_run_close(status) != 0 && status >= 0)
        return 1;
    if (pcap_failed && status >= 0)
        return 1;
    if (status < 0)
        return 1;
    /* as on bare metal: a status no platform reports exactly becomes OS_EXIT_STATUS_MAX */
    return status > OS_EXIT_STATUS_MAX ? OS_EXIT_STATUS_MAX : status;
}
