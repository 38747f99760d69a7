/* cmd_corpus.c — `orrery trace corpus FILE.db DIR`: seed inputs for the server fuzz targets from a trace. */
#include "commands.h"
#include <trace/corpus.h>

#include <stdio.h>
#include <string.h>

/* argv[0] is "corpus" (or the program name); argv[1] the trace, argv[2] the directory. */
int hl_cmd_trace_corpus(int argc, char **argv)
{
    char err[512];
    if (argc != 3 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: orrery trace corpus FILE.db DIR\n"
                "  writes DIR/<server>/<trace>-ch<endpoint>: the messages each server (init, echo,\n"
                "  console) received on each client channel, and DIR/{shell,console}/<trace>-lines:\n"
                "  the console lines, as inputs of build/fuzz/fuzz_<server> (docs/fuzzing.md)\n");
        return argc == 2 ? 0 : 2;
    }
    int n = trace_corpus_write(argv[1], argv[2], err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "orrery trace corpus: %s\n", err);
        return 1;
    }
    printf("%d inputs written under %s\n", n, argv[2]);
    return 0;
}
