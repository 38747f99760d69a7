/* manifest.h — the boot manifest: which programs init starts, their restart policy and reach. */
#ifndef ORRERY_MANIFEST_H
#define ORRERY_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include <os/os.h>

/*
 * The text (docs/manifest.md):
 *     # comment
 *     program NAME [restart=always|on-failure|never] [max-restarts=N] [reach=IFACE,...]
 *                  [arg=TEXT]
 * one program per line, started in order. Pure C: init parses it at boot and
 * the CLI checks a --manifest file with the same code.
 */
enum {
    MANIFEST_PROGRAMS_MAX = 16, /* program lines */
    MANIFEST_REACH_MAX = 8,     /* interfaces in one reach list */
    MANIFEST_LINE_MAX = 512,    /* bytes in one line */
    MANIFEST_ARG_MAX = 255,     /* bytes of one arg= value (the program's spawn argument) */
    MANIFEST_SIZE_MAX = OS_BOOT_ARG_MAX, /* bytes in the whole text (what the kernel hands init) */
    MANIFEST_MAX_RESTARTS_LIMIT = 1000000,
    MANIFEST_DEFAULT_MAX_RESTARTS = 5,
};

typedef enum manifest_restart {
    MANIFEST_RESTART_ON_FAILURE = 0, /* default: restart unless it exited with status 0 */
    MANIFEST_RESTART_ALWAYS = 1,
    MANIFEST_RESTART_NEVER = 2,
} manifest_restart_t;

typedef struct manifest_program {
    char name[OS_NAME_MAX];
    manifest_restart_t restart;
    uint32_t max_restarts; /* restarts allowed before init gives up */
    uint32_t nreach;
    char reach[MANIFEST_REACH_MAX][OS_NAME_MAX]; /* interfaces it may connect to */
    int line;                                    /* 1-based line in the manifest */
    uint32_t arg_len;                            /* bytes of arg (0: no arg= given) */
    char arg[MANIFEST_ARG_MAX + 1];              /* arg=TEXT: the spawn argument, NUL-ended */
} manifest_program_t;

typedef struct manifest {
    size_t count;
    manifest_program_t programs[MANIFEST_PROGRAMS_MAX];
} manifest_t;

/*
 * Parse text (len bytes, no NUL needed; over MANIFEST_SIZE_MAX is an error at the line
 * holding the limit's byte). `image` is the NULL-terminated
 * program table programs must come from (NULL: any name); `init_name` is the
 * program the kernel starts itself (may not be listed; NULL: none). Returns 0,
 * or the 1-based line of the first error with its message in err.
 */
int manifest_parse(const char *text, size_t len, const os_program_t *const *image,
                   const char *init_name, manifest_t *out, char *err, size_t errlen);

/* The program called name, or NULL. */
const manifest_program_t *manifest_find(const manifest_t *m, const char *name);
/* True if p's reach list names iface ("fs:ro" names fs; a name with ':' is never reached). */
int manifest_may_reach(const manifest_program_t *p, const char *iface);
/* True if p reaches iface read-only only (reach=fs:ro): init names it "fs:ro" in new_client. */
int manifest_reach_ro(const manifest_program_t *p, const char *iface);
/* "always", "on-failure", "never". */
const char *manifest_restart_name(manifest_restart_t r);

#endif
