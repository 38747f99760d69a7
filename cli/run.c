/* run.c — `orrery run`: check the manifest, then boot hosted (threads) or deterministic (sim). */
#include "commands.h"
#include <hl/hosted.h>

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
    "\n"
    "Boot Orrery as a Linux process; the console is stdin/stdout (try 'help' at the\n"
    "'orrery> ' prompt, 'shutdown' to leave). SIGINT/SIGTERM shut it down cleanly.\n"
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
    "  --help            this text\n";

/* Read a whole file; NULL with errno set. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f) ? EIO : 0;
    fclose(f);
    if (buf && err) {
        free(buf);
        errno = err;
        return NULL;
    }
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int hl_cmd_run(int argc, char **argv)
{
    const char *manifest_path = NULL, *trace_path = NULL;
    uint64_t workers = 0, seed = 1;
    bool deterministic = false, seed_given = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(run_usage, OS_BOOT_ARG_MAX, K_WORKERS_MAX, K_WORKERS_MAX);
            return 0;
        }
        if (strcmp(a, "--deterministic") == 0) {
            deterministic = true;
            continue;
        }
        /* Options with a value: "--opt VALUE" or "--opt=VALUE". */
        const char *names[] = {"--manifest", "--workers", "--seed", "--trace"};
        int which = -1;
        for (int k = 0; k < 4; k++) {
            size_t nl = strlen(names[k]);
            if (strncmp(a, names[k], nl) == 0 && (a[nl] == '\0' || a[nl] == '=')) {
                which = k;
                if (a[nl] == '=') {
                    val = a + nl + 1;
                } else {
                    if (i + 1 >= argc)
                        return hl_usage_error("run", "run: %s needs a value", names[k]);
                    val = argv[++i];
                }
            }
        }
        if (which < 0)
            return hl_usage_error("run", "run: unknown option '%s'", a);
        if (which == 0) {
            manifest_path = val;
        } else if (which == 3) {
            if (!*val)
                return hl_usage_error("run", "run: --trace needs a file name");
            trace_path = val;
        } else if (which == 1) {
            if (!hl_parse_u64(val, 1, K_WORKERS_MAX, &workers))
                return hl_usage_error("run", "run: --workers wants a number 1..%d, not '%s'",
                                      K_WORKERS_MAX, val);
        } else {
            if (!hl_parse_u64(val, 0, UINT64_MAX, &seed))
                return hl_usage_error("run", "run: --seed wants a number, not '%s'", val);
            seed_given = true;
        }
    }
    if (seed_given && !deterministic)
        return hl_usage_error("run", "run: --seed needs --deterministic");
    if (deterministic && workers > 1)
        return hl_usage_error("run", "run: --deterministic runs one worker");

    const char *text = orrery_default_manifest;
    size_t len = strlen(orrery_default_manifest);
    char *owned = NULL;
    if (manifest_path) {
        owned = slurp(manifest_path, &len);
        if (!owned) {
            fprintf(stderr, "orrery: %s: cannot read manifest: %s\n", manifest_path,
                    strerror(errno));
            return 2;
        }
        text = owned;
        char err[256] = "";
        int line = orrery_manifest_check(text, len, err, sizeof(err));
        if (line != 0) {
            fprintf(stderr, "orrery: %s:%d: %s\n", manifest_path, line,
                    err[0] ? err : "invalid manifest");
            free(owned);
            return 2;
        }
    }

    const hal_trace_sink_t *sink = NULL;
    if (trace_path) {
        int trc = hl_trace_run_open(trace_path, deterministic, seed, text, len,
                                    deterministic ? 1 : (workers ? (unsigned)workers : hl_default_workers()),
                                    "orrery run", &sink);
        if (trc != 0) {
            free(owned);
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
        status = hl_run(&rc);
        if (status >= 0 && stats.leaks != 0)
            fprintf(stderr, "orrery: warning: %ld kernel allocations leaked\n", stats.leaks);
    }
    free(owned);
    if (sink && hl_trace_run_close(status) != 0 && status >= 0)
        return 1;
    if (status < 0)
        return 1;
    /* as on bare metal: a status no platform reports exactly becomes OS_EXIT_STATUS_MAX */
    return status > OS_EXIT_STATUS_MAX ? OS_EXIT_STATUS_MAX : status;
}
