/* cmd_replay.c — `orrery replay FILE --task NAME [--node NAME] [--verbose]`: replay one server
 * against a trace. */
#include "commands.h"
#include "opt.h"
#include <sim/replay.h>

#include <stdio.h>
#include <string.h>

static const char replay_usage[] =
    "usage: orrery replay FILE --task NAME|ID [--node NAME] [--verbose]\n"
    "\n"
    "Run one server alone on the deterministic kernel, feed it its recorded inputs in order\n"
    "(messages, peer closes, timers, device input, task exits, and every clock read, random\n"
    "draw, send result, spawn and list it consumed) and compare everything it does with the\n"
    "recording: sends (handle, type, payload, handles carried), closes, timers, device writes,\n"
    "spawns, exit. The first divergence is printed with both events decoded by interface.\n"
    "NAME is a program name (its first task in the trace) or a recorded task id.\n"
    "\n"
    "  --task NAME|ID   the server to replay\n"
    "  --node NAME      the node it ran on, in a trace of several nodes (a simulated cluster:\n"
    "                   'orrery trace summary FILE' lists them); required there\n"
    "  --verbose, -v    print every matched event and the task's console output\n"
    "  --help, -h       this text\n"
    "\n"
    "Exit status: 0 all events matched, 1 divergence (or the report could not be written),\n"
    "2 bad trace or usage. The report stops at once when its reader goes away ('| head').\n"
    "Record a trace with 'orrery run --trace FILE.db'; see docs/replay.md.\n";

int hl_cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"task", required_argument, NULL, 256},
        {"node", required_argument, NULL, 257},
        {NULL, 0, NULL, 0},
    };
    trace_replay_opts o = {.out = stdout};
    char err[512];
    int c;

    while ((c = cli_getopt(argc, argv, "replay", opts)) != -1) {
        if (c == 'h') {
            fputs(replay_usage, stdout);
            return 0;
        } else if (c == 'v') {
            o.verbose = true;
        } else if (c == 256) {
            o.task = optarg;
        } else if (c == 257) {
            o.node = optarg;
        } else {
            return 2; /* cli_getopt said why */
        }
    }
    if (optind >= argc)
        return cli_usage_error("replay", "replay: which trace file?");
    if (argc - optind > 1)
        return cli_usage_error("replay", "replay: unexpected argument '%s'", argv[optind + 1]);
    o.path = argv[optind];
    if (!o.task || !*o.task)
        return cli_usage_error("replay", "replay: which task? (--task NAME)");
    hl_output_begin();
    int rc = trace_replay(&o, err, sizeof(err));
    if (rc == 2)
        fprintf(stderr, "orrery replay: %s\n", err);
    return hl_output_end("replay", stdout, rc);
}
