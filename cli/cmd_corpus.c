/* cmd_corpus.c — `orrery trace corpus FILE.db DIR`: seed inputs for the server fuzz targets from a
 * trace. */
#include "commands.h"
#include "opt.h"
#include <trace/corpus.h>

#include <stdio.h>

static const char corpus_usage[] =
    "usage: orrery trace corpus FILE.db DIR\n"
    "Write DIR/<server>/<trace>-ch<endpoint>: the messages each server (init, echo, console)\n"
    "received on each client channel, and DIR/{shell,console}/<trace>-lines: the console\n"
    "lines, and DIR/tcpip/<trace>-task<id>: the frames each tcpip task received and the\n"
    "tcp/udp/net messages it was sent, as inputs of build/fuzz/fuzz_<server> (docs/fuzzing.md).\n"
    "DIR and DIR/<server> are created if missing and must be directories (not symlinks below\n"
    "DIR). Each input is written under a temporary name and renamed; an existing input of\n"
    "the same name is replaced, but a path there that is a symlink or not a regular file is\n"
    "refused (exit 2) and left untouched, before anything is written.\n";

/* argv[0] is "corpus"; then the trace and the directory. */
int hl_cmd_trace_corpus(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *cmd = "trace corpus";
    char err[512];
    int c, n;

    while ((c = cli_getopt(argc, argv, cmd, opts)) != -1) {
        if (c != 'h')
            return 2; /* cli_getopt said why */
        fputs(corpus_usage, stdout);
        return 0;
    }
    if (argc - optind < 2)
        return cli_usage_error(cmd, "%s: needs FILE.db and DIR", cmd);
    if (argc - optind > 2)
        return cli_usage_error(cmd, "%s: unexpected argument '%s'", cmd, argv[optind + 2]);
    n = trace_corpus_write(argv[optind], argv[optind + 1], err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "orrery trace corpus: %s\n", err);
        return n == TRACE_CORPUS_REFUSED ? 2 : 1;
    }
    printf("%d inputs written under %s\n", n, argv[optind + 1]);
    return 0;
}
