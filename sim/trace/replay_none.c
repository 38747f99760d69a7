/* replay_none.c — `orrery replay` when the build has no kernel, servers or sim to replay on. */
#include <trace/replay.h>

int trace_replay(const trace_replay_opts *o, char *err, size_t errlen)
{
    (void)o;
    snprintf(err, errlen, "replay is not built in this tree (needs core, servers and sim)");
    return 2;
}
