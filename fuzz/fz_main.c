/* fz_main.c — runs a libFuzzer target's LLVMFuzzerTestOneInput over input files without libFuzzer,
 * so a gcc build's ctest replays a target's seeds and regression inputs (tests/fuzz.cmake).
 * usage: fuzz_<t>_replay FILE...   exit 0 when every input ran (a broken invariant aborts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { INPUT_MAX = 1 << 20 }; /* bytes of one input; libFuzzer's own default -max_len is far less */

int main(int argc, char **argv)
{
    static uint8_t buf[INPUT_MAX];
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        int bad = ferror(f) || !feof(f);
        fclose(f);
        if (bad) {
            fprintf(stderr, "%s: unreadable, or longer than %d bytes\n", argv[i], INPUT_MAX);
            return 2;
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("%d inputs ran\n", argc - 1);
    return 0;
}
