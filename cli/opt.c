/* opt.c — the command line and the host chores every orrery command shares (opt.h). */
#define _GNU_SOURCE
#include "opt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("orrery: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try 'orrery %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    return 2;
}

int cli_getopt(int argc, char **argv, const char *cmd, const struct option *opts)
{
    static char **started; /* the argv being read: a new one restarts getopt */
    char shorts[64];
    size_t n = 0;
    int c, at;

    if (started != argv) {
        started = argv;
        optind = 0; /* glibc: 0 re-initialises, so each command parses from argv[1] */
    }
    /* ':' first: a missing value is ':' (not '?'), and getopt prints nothing itself. */
    shorts[n++] = ':';
    for (const struct option *o = opts; o->name && n + 3 < sizeof shorts; o++) {
        if (o->flag == NULL && o->val > 0 && o->val < 128) {
            shorts[n++] = (char)o->val;
            if (o->has_arg == required_argument)
                shorts[n++] = ':';
        }
    }
    shorts[n] = '\0';
    opterr = 0;
    at = optind ? optind : 1;
    c = getopt_long(argc, argv, shorts, opts, NULL);
    if (c == '?' || c == ':') {
        /* optind has moved past the offending word (and its value, if it was separate). */
        const char *word = argv[optind - 1 >= at ? optind - 1 : at];
        const char *eq = strchr(word, '=');
        bool flag_given_value = false;
        for (const struct option *o = opts; eq && word[0] == '-' && word[1] == '-' && o->name; o++)
            if (o->has_arg == no_argument && strlen(o->name) == (size_t)(eq - word - 2) &&
                strncmp(o->name, word + 2, (size_t)(eq - word - 2)) == 0)
                flag_given_value = true;
        if (c == ':')
            cli_usage_error(cmd, "%s: %s needs a value", cmd, word);
        else if (flag_given_value)
            cli_usage_error(cmd, "%s: %.*s takes no value", cmd, (int)(eq - word), word);
        else if (optopt && optopt < 128 && word[0] == '-' && word[1] != '-')
            cli_usage_error(cmd, "%s: unknown option '-%c'", cmd, optopt);
        else
            cli_usage_error(cmd, "%s: unknown option '%s'", cmd, word);
        return CLI_OPT_ERROR;
    }
    return c;
}

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || *s < '0' || *s > '9')
        return false; /* also refuses "", "+5", "-5", " 5" */
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int cli_opt_u64(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                uint64_t *out)
{
    if (cli_parse_u64(val, min, max, out))
        return 0;
    return cli_usage_error(cmd, "%s: %s wants a number from %llu to %llu, not '%s'", cmd, opt,
                           (unsigned long long)min, (unsigned long long)max, val ? val : "");
}

char *cli_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (!f) {
        fprintf(stderr, "orrery: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "orrery: %s: is a directory\n", path);
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            char *nb;
            if (cap > max) {
                fprintf(stderr, "orrery: %s: larger than %zu bytes\n", path, max);
                goto fail;
            }
            if (!(nb = realloc(buf, ncap + 1))) {
                fprintf(stderr, "orrery: %s: out of memory\n", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "orrery: %s: read error\n", path);
        goto fail;
    }
    if (n > max) {
        fprintf(stderr, "orrery: %s: larger than %zu bytes\n", path, max);
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

int cli_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void cli_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}
