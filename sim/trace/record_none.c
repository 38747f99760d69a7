/* record_none.c — `orrery trace record` when the build has no kernel, image or platforms to run. */
#include <trace/tools.h>

#include <stdio.h>

int trace_record_run(const trace_record_opts *o, int *status, char *err, size_t errlen)
{
    (void)o;
    *status = -1;
    snprintf(err, errlen, "trace record: not built in this tree (no kernel or image)");
    return -1;
}
