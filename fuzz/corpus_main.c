/* corpus_main.c — build/orrery-trace-corpus FILE.db DIR: `orrery trace corpus` until the CLI wires it. */
int hl_cmd_trace_corpus(int argc, char **argv);

int main(int argc, char **argv)
{
    return hl_cmd_trace_corpus(argc, argv);
}
