/* det.c — `orrery run --deterministic`: the sim platform on one thread, console on stdin/stdout. */
#include "commands.h"

#include <hl/hosted.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <sim/sim.h>

typedef struct det_io {
    hl_lines_t lines;
    int out_fd;
} det_io_t;

/* sim asks for the next line only when the system is idle, so a run depends on
 * the seed and the input alone, never on when the input arrives. */
static int det_read(void *self, char *line, size_t max, size_t *len)
{
    det_io_t *io = self;
    return hl_lines_next(&io->lines, line, max, len) == 1;
}

static void det_write(void *self, const void *buf, size_t len)
{
    det_io_t *io = self;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(io->out_fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

int hl_run_deterministic(const hl_det_config_t *cfg)
{
    static det_io_t io; /* big line buffer: not on the stack */
    hl_lines_init(&io.lines, cfg->console_in, -1);
    io.out_fd = cfg->console_out;
    sim_config_t sc = {
        .programs = cfg->programs,
        .init_program = cfg->init_program,
        .init_arg = cfg->init_arg,
        .init_arg_len = cfg->init_arg_len,
        .seed = cfg->seed,
        .console_read = det_read,
        .console_read_self = &io,
        .console_eof = true,
        .console_out = det_write,
        .console_out_self = &io,
        .trace = cfg->trace,
    };
    int rc = sim_boot(&sc);
    if (rc != 0) {
        fprintf(stderr, "orrery: boot failed: %s\n", os_strerror(rc));
        sim_teardown();
        return rc;
    }
    hl_fault_thread_enter(0, true); /* this thread is the simulator's one worker */
    int status = sim_run(cfg->max_events);
    hl_fault_thread_leave();
    long leaks = sim_teardown();
    if (leaks != 0)
        fprintf(stderr, "orrery: warning: %ld kernel allocations leaked\n", leaks);
    return status;
}
