/* image.h — the programs of the Orrery image and its default boot manifest. */
#ifndef ORRERY_IMAGE_H
#define ORRERY_IMAGE_H

#include <stddef.h>

#include <os/os.h>
#include <programs.h> /* ORRERY_PROGRAMS, generated from servers/programs.list */

/* The servers, one descriptor each (servers/<name>/): orrery_init, orrery_console, ... */
#define ORRERY_PROGRAM_EXTERN(name) extern const os_program_t orrery_##name;
ORRERY_PROGRAMS(ORRERY_PROGRAM_EXTERN)
#undef ORRERY_PROGRAM_EXTERN

extern const os_program_t *const orrery_programs[]; /* NULL-terminated, programs.list order */
extern const char orrery_default_manifest[];

/* 0 if the manifest text is valid; else the 1-based line number of the first error,
 * with a message in err ("unknown key 'foo'"). Checks program names against
 * orrery_programs; "init" may not be listed (the kernel starts it). */
int orrery_manifest_check(const char *text, size_t len, char *err, size_t errlen);

#endif
