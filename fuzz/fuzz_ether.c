/* fuzz_ether.c — libFuzzer target for the one-line Ethernet frame decoder of `trace show`
 * (trace/ether.c): any bytes, never a read past them, always a terminated line. */
#include <trace/pcap.h>

#include <stdlib.h>
#include <string.h>

/*
 * The input is one frame as net0 would carry it (libFuzzer hands an allocation of exactly
 * `size` bytes, so ASan sees a read past the end). It is decoded into a roomy buffer and into
 * one cut at a size taken from the input, which must hold a prefix of the roomy line.
 */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static char line[4096], small[256];
    size_t cut = size ? (size_t)data[size - 1] % sizeof(small) + 1 : 1;

    trace_ether_describe(data, size, line, sizeof(line));
    size_t n = strnlen(line, sizeof(line));
    if (n >= sizeof(line))
        abort();
    memset(small, 'x', sizeof(small));
    trace_ether_describe(data, size, small, cut);
    size_t m = strnlen(small, cut);
    if (m >= cut || m > n || memcmp(small, line, m) != 0)
        abort();
    return 0;
}
