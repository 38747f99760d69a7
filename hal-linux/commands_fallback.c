/* commands_fallback.c — stand-ins for the bare-metal subcommands when they are not built. */
#include <hl/commands.h>

#include <stdio.h>

#ifdef ORRERY_NO_QEMU
int hl_cmd_qemu(int argc, char **argv)
{
    fputs("orrery: qemu: not built in this tree\n", stderr);
    return 2;
}
#endif

#ifdef ORRERY_NO_TRACE
int hl_cmd_trace(int argc, char **argv)
{
    fputs("orrery: trace: not built in this tree\n", stderr);
    return 2;
}

int hl_cmd_bench_trace(int argc, char **argv)
{
    fputs("orrery: bench trace: not built in this tree\n", stderr);
    return 2;
}
#endif

#ifdef ORRERY_NO_BENCH_BOOT
int hl_cmd_bench_boot(int argc, char **argv)
{
    fputs("orrery: bench boot: not built in this tree\n", stderr);
    return 2;
}
#endif
