/* opt.h — one way for every orrery command to read its command line and do its host chores:
 * getopt_long with our error wording, numbers with range errors, whole files, whole writes. */
#ifndef CLI_OPT_H
#define CLI_OPT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returned by cli_getopt after it printed a usage error: the command returns 2. */
#define CLI_OPT_ERROR (-2)

/*
 * getopt_long over argv (argv[0] is the command's name): every command takes `--opt VAL` and
 * `--opt=VAL`, and `-h`/`--help` when opts lists them. Returns the option's val, -1 at the
 * end of the options (optind is the first operand; operands may also come between options),
 * or CLI_OPT_ERROR after printing "orrery: CMD: unknown option '--x'" or "... needs a value"
 * with the usage hint. The first call for an argv starts afresh.
 */
int cli_getopt(int argc, char **argv, const char *cmd, const struct option *opts);

/* Print "orrery: <msg> (try 'orrery CMD --help')" to stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A decimal unsigned number in [min, max]: digits only (no sign, no space, no "0x"). */
bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* The value of option `opt` as a number in [min, max]: 0, or 2 after printing
 * "orrery: CMD: OPT wants a number from MIN to MAX, not 'VAL'" with the usage hint. */
int cli_opt_u64(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                uint64_t *out);

/*
 * Read a whole file (at most max bytes) into a NUL-terminated buffer the caller frees; *len
 * is its length. NULL after printing "orrery: PATH: <why>" (cannot open, a read error, a
 * directory, or larger than max: "larger than N bytes").
 */
char *cli_read_file(const char *path, size_t max, size_t *len);

/* Write all of buf to fd, retrying short writes and EINTR. 0, or -errno. */
int cli_write_all(int fd, const void *buf, size_t len);

/* Print s on stdout as a JSON string: quotes, with '"', '\\' and control bytes escaped. */
void cli_json_str(const char *s);

#endif
