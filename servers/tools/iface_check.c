/* iface_check.c — build-time host tool: lists interface ids, fails the build on a collision. */
#include <iface/all.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    char err[256];
    size_t n = 0;
    int verbose = argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v';

    while (iface_all[n])
        n++;
    if (iface_check_set(iface_all, n, err, sizeof err) < 0) {
        fprintf(stderr, "iface_check: %s\n", err);
        return 1;
    }
    for (size_t i = 0; verbose && i < n; i++)
        printf("%-12s %08x  %s\n", iface_all[i]->name, (unsigned)iface_id(iface_all[i]),
               iface_all[i]->text);
    return 0;
}
