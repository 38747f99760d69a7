/* image.h — the programs of the Orrery image and its default boot manifest. */
#ifndef ORRERY_IMAGE_H
#define ORRERY_IMAGE_H

#include <stddef.h>

#include <os/os.h>

/* The servers, one descriptor each (servers/<name>/). */
extern const os_program_t orrery_init;
extern const os_program_t orrery_console;
extern const os_program_t orrery_shell;
extern const os_program_t orrery_echo;

extern const os_program_t *const orrery_programs[]; /* NULL-terminated */
extern const char orrery_default_manifest[];

/* 0 if the manifest text is valid; else the 1-based line number of the first error,
 * with a message in err ("unknown key 'foo'"). Checks program names against
 * orrery_programs; "init" may not be listed (the kernel starts it). */
int orrery_manifest_check(const char *text, size_t len, char *err, size_t errlen);

#endif
