/* cmd_replay.c — `orrery replay FILE --task NAME [--verbose]`: replay one server against a trace. */
#include "commands.h"
#include <sim/replay.h>

#include <stdio.h>
#include <string.h>

static const char replay_usage[] =
    "usage: orrery replay FILE --task NAME|ID [--verbose]\n"
    "\n"
    "Run one server alone on the deterministic kernel, feed it its recorded inputs in order\n"
    "(messages, peer closes, timers, device input, task exits, and every clock read, random\n"
    "draw, send result, spawn and list it consumed) and compare everything it does with the\n"
    "recording: sends (handle, type, payload, handles carried), closes, timers, device writes,\n"
    "spawns, exit. The first divergence is printed with both events decoded by interface.\n"
    "NAME is a program name (its first task in the trace) or a recorded task id.\n"
    "\n"
    "  --verbose   print every matched event and the task's console output\n"
    "\n"
    "Exit status: 0 all events matched, 1 divergence, 2 bad trace or usage.\n"
    "Record a trace with 'orrery run --trace FILE.db'; see docs/replay.md.\n";

int hl_cmd_replay(int argc, char **argv)
{
    trace_replay_opts o = {.out = stdout};
    char err[512];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(replay_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o.verbose = true;
        } else if (strcmp(a, "--task") == 0) {
            if (i + 1 >= argc)
                return hl_usage_error("replay", "replay: --task needs a name");
            o.task = argv[++i];
        } else if (strncmp(a, "--task=", 7) == 0) {
            o.task = a + 7;
        } else if (a[0] == '-' && a[1]) {
            return hl_usage_error("replay", "replay: unknown option '%s'", a);
        } else if (!o.path) {
            o.path = a;
        } else {
            return hl_usage_error("replay", "replay: unexpected argument '%s'", a);
        }
    }
    if (!o.path)
        return hl_usage_error("replay", "replay: which trace file?");
    if (!o.task || !*o.task)
        return hl_usage_error("replay", "replay: which task? (--task NAME)");
    int rc = trace_replay(&o, err, sizeof(err));
    if (rc == 2)
        fprintf(stderr, "orrery replay: %s\n", err);
    return rc;
}
