/* record_run.c — `orrery trace record`: boot the image (sim or hosted) with the SQLite recorder as
 * trace sink. */
#include <trace/recorder.h>
#include <trace/tools.h>

#include <hl/hosted.h>
#include <image.h>
#include <sim/sim.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void out_stdout(void *self, const void *buf, size_t len)
{
    (void)self;
    fwrite(buf, 1, len, stdout);
    fflush(stdout);
}

int trace_record_run(const trace_record_opts *o, int *status, char *err, size_t errlen)
{
    trace_recorder *rec = o->rec;

    if (o->deterministic) {
        sim_config_t sc = {
            .programs = orrery_programs,
            .init_program = "init",
            .init_arg = orrery_default_manifest,
            .init_arg_len = strlen(orrery_default_manifest),
            .seed = o->seed,
            .console_input = o->input,
            .console_eof = true,
            .console_out = o->quiet ? NULL : out_stdout,
            .trace = trace_recorder_sink(rec),
        };
        if (sim_boot(&sc) != 0) {
            snprintf(err, errlen, "the simulated kernel did not boot");
            return -1;
        }
        *status = sim_run(o->max_events);
        long leaks = sim_teardown();
        if (leaks)
            fprintf(stderr, "orrery trace record: %ld kernel allocations leaked\n", leaks);
    } else {
        hl_run_config_t rc;
        hl_run_config_init(&rc);
        rc.programs = orrery_programs;
        rc.init_arg = orrery_default_manifest;
        rc.init_arg_len = strlen(orrery_default_manifest);
        rc.workers = o->workers;
        rc.trace = trace_recorder_sink(rec);
        rc.handle_signals = true;
        rc.console_in = 0;
        rc.console_out = o->quiet ? -1 : 1;
        *status = hl_run(&rc);
    }
    return 0;
}
