/* image.c — the program table of the image and the default boot manifest (docs/manifest.md). */
#include <image.h>
#include <manifest.h>

#define ORRERY_PROGRAM_ENTRY(name) &orrery_##name,
const os_program_t *const orrery_programs[] = {ORRERY_PROGRAMS(ORRERY_PROGRAM_ENTRY) NULL};
#undef ORRERY_PROGRAM_ENTRY

/* Started in this order: console is task 2, shell 3, echo 4, fs 5 (it ends at once, saying
 * so, when there is no blk0), tcpip 6 (it ends at once, quietly, when there is no net0) and
 * httpd 7 (it ends quietly with tcpip; docs/httpd.md). */
const char orrery_default_manifest[] =
    "# Orrery default boot manifest: the programs init starts, in order.\n"
    "# program NAME [restart=always|on-failure|never] [max-restarts=N] [reach=IFACE,...]\n"
    "# reach=init lets a program ask init to spawn, kill and shut down; reach=fs:ro reads only.\n"
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach=console,echo,init,fs\n"
    "program echo    restart=on-failure\n"
    "program fs      restart=on-failure\n"
    "program tcpip   restart=on-failure arg=quiet\n"
    "program httpd   restart=on-failure reach=tcp,fs:ro,net arg=root=/www,port=80,log=off\n";

int orrery_manifest_check(const char *text, size_t len, char *err, size_t errlen)
{
    manifest_t m;
    return manifest_parse(text, len, orrery_programs, orrery_init.name, &m, err, errlen);
}
