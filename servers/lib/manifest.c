/* manifest.c — the boot manifest parser, shared by init and the CLI's --manifest check. */
#include <manifest.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One parse: where we are and where errors go. */
typedef struct parser {
    const os_program_t *const *image;
    const char *init_name;
    manifest_t *out;
    char *err;
    size_t errlen;
    int line;
} parser_t;

static int fail(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser_t *p, const char *fmt, ...)
{
    if (p->err && p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
    return p->line;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Names of programs and interfaces: letters, digits, '_' and '-', 1..OS_NAME_MAX-1 bytes. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= OS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

const char *manifest_restart_name(manifest_restart_t r)
{
    switch (r) {
    case MANIFEST_RESTART_ALWAYS:
        return "always";
    case MANIFEST_RESTART_NEVER:
        return "never";
    default:
        return "on-failure";
    }
}

static int in_image(const parser_t *p, const char *name)
{
    if (!p->image)
        return 1;
    for (size_t i = 0; p->image[i]; i++) {
        if (strcmp(p->image[i]->name, name) == 0)
            return 1;
    }
    return 0;
}

/* The interface a reach entry names: "fs:ro" names fs. */
static size_t iface_len(const char *entry)
{
    const char *colon = strchr(entry, ':');
    return colon ? (size_t)(colon - entry) : strlen(entry);
}

static bool same_iface(const char *a, const char *b)
{
    size_t n = iface_len(a);
    return n == iface_len(b) && strncmp(a, b, n) == 0;
}

static int parse_reach(parser_t *p, manifest_program_t *prog, char *value)
{
    prog->nreach = 0;
    if (*value == 0)
        return 0; /* "reach=" : nothing */
    char *s = value;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = 0;
        /* "fs:ro": the fs interface, read-only; no other interface takes a suffix */
        char *colon = strchr(s, ':');
        if (colon) {
            *colon = 0;
            bool ok = valid_name(s) && strcmp(s, "fs") == 0 && strcmp(colon + 1, "ro") == 0;
            *colon = ':';
            if (!ok)
                return fail(p, "bad interface '%s' in reach (only 'fs:ro' takes a ':' suffix)", s);
        } else if (!valid_name(s)) {
            return fail(p, "bad interface name '%s' in reach", s);
        }
        for (uint32_t i = 0; i < prog->nreach; i++) {
            if (strcmp(prog->reach[i], s) == 0)
                return fail(p, "interface '%s' listed twice in reach", s);
            if (same_iface(prog->reach[i], s))
                return fail(p, "reach lists both '%s' and '%s'", prog->reach[i], s);
        }
        if (prog->nreach == MANIFEST_REACH_MAX)
            return fail(p, "reach lists more than %d interfaces", MANIFEST_REACH_MAX);
        strcpy(prog->reach[prog->nreach++], s);
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

static int parse_option(parser_t *p, manifest_program_t *prog, char *word)
{
    char *eq = strchr(word, '=');
    if (!eq)
        return fail(p, "expected key=value, got '%s'", word);
    *eq = 0;
    char *value = eq + 1;
    if (strcmp(word, "restart") == 0) {
        if (strcmp(value, "always") == 0)
            prog->restart = MANIFEST_RESTART_ALWAYS;
        else if (strcmp(value, "on-failure") == 0)
            prog->restart = MANIFEST_RESTART_ON_FAILURE;
        else if (strcmp(value, "never") == 0)
            prog->restart = MANIFEST_RESTART_NEVER;
        else
            return fail(p, "bad value '%s' for restart (always, on-failure, never)", value);
        return 0;
    }
    if (strcmp(word, "max-restarts") == 0) {
        char *end;
        if (!isdigit((unsigned char)value[0]))
            return fail(p, "bad value '%s' for max-restarts (a number)", value);
        unsigned long n = strtoul(value, &end, 10);
        if (*end || n > MANIFEST_MAX_RESTARTS_LIMIT)
            return fail(p, "bad value '%s' for max-restarts (0 to 1000000)", value);
        prog->max_restarts = (uint32_t)n;
        return 0;
    }
    if (strcmp(word, "reach") == 0)
        return parse_reach(p, prog, value);
    if (strcmp(word, "arg") == 0) {
        /* words hold no blank, so the value has none; only its length needs a check */
        size_t n = strlen(value);
        if (n > MANIFEST_ARG_MAX)
            return fail(p, "arg is %zu bytes, over the limit of %d", n, MANIFEST_ARG_MAX);
        memcpy(prog->arg, value, n + 1);
        prog->arg_len = (uint32_t)n;
        return 0;
    }
    return fail(p, "unknown key '%s' (restart, max-restarts, reach, arg)", word);
}

/* Split line (modified in place) into words; returns the count, at most max. */
static size_t split(char *line, char **words, size_t max)
{
    size_t n = 0;
    char *s = line;
    for (;;) {
        while (is_blank(*s))
            s++;
        if (*s == 0)
            return n;
        if (n == max)
            return max + 1;
        words[n++] = s;
        while (*s && !is_blank(*s))
            s++;
        if (*s == 0)
            return n;
        *s++ = 0;
    }
}

static int parse_line(parser_t *p, char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    char *words[MANIFEST_REACH_MAX + 8];
    size_t max = sizeof words / sizeof words[0];
    size_t n = split(line, words, max);
    if (n == 0)
        return 0;
    if (n > max)
        return fail(p, "too many words on one line");
    if (strcmp(words[0], "program") != 0)
        return fail(p, "unknown directive '%s' (expected 'program')", words[0]);
    if (n < 2)
        return fail(p, "program needs a name");
    const char *name = words[1];
    if (!valid_name(name))
        return fail(p, "bad program name '%s'", name);
    if (p->init_name && strcmp(name, p->init_name) == 0)
        return fail(p, "program '%s' is started by the kernel; do not list it", name);
    if (!in_image(p, name))
        return fail(p, "unknown program '%s' (not in the image)", name);
    if (manifest_find(p->out, name))
        return fail(p, "duplicate program '%s'", name);
    if (p->out->count == MANIFEST_PROGRAMS_MAX)
        return fail(p, "more than %d programs", MANIFEST_PROGRAMS_MAX);

    manifest_program_t *prog = &p->out->programs[p->out->count];
    memset(prog, 0, sizeof *prog);
    strcpy(prog->name, name);
    prog->restart = MANIFEST_RESTART_ON_FAILURE;
    prog->max_restarts = MANIFEST_DEFAULT_MAX_RESTARTS;
    prog->line = p->line;
    for (size_t i = 2; i < n; i++) {
        int e = parse_option(p, prog, words[i]);
        if (e)
            return e;
    }
    p->out->count++;
    return 0;
}

int manifest_parse(const char *text, size_t len, const os_program_t *const *image,
                   const char *init_name, manifest_t *out, char *err, size_t errlen)
{
    parser_t p = {image, init_name, out, err, errlen, 0};
    char line[MANIFEST_LINE_MAX + 1];
    size_t at = 0;

    out->count = 0;
    if (err && errlen)
        err[0] = 0;
    while (at < len) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        p.line++;
        if (len > MANIFEST_SIZE_MAX && at + n >= MANIFEST_SIZE_MAX) {
            /* stop at the line holding the first byte past the limit, before using it */
            return fail(&p, "manifest is %lu bytes, over the limit of %d", (unsigned long)len,
                        MANIFEST_SIZE_MAX);
        }
        if (n > MANIFEST_LINE_MAX)
            return fail(&p, "line longer than %d bytes", MANIFEST_LINE_MAX);
        if (memchr(text + at, 0, n))
            return fail(&p, "NUL byte in the manifest");
        memcpy(line, text + at, n);
        line[n] = 0;
        int e = parse_line(&p, line);
        if (e)
            return e;
        at += n + (nl ? 1 : 0);
    }
    return 0;
}

const manifest_program_t *manifest_find(const manifest_t *m, const char *name)
{
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->programs[i].name, name) == 0)
            return &m->programs[i];
    }
    return NULL;
}

int manifest_may_reach(const manifest_program_t *p, const char *iface)
{
    if (strchr(iface, ':'))
        return 0; /* a connect names the interface; ":ro" is the manifest's word only */
    for (uint32_t i = 0; i < p->nreach; i++) {
        if (same_iface(p->reach[i], iface))
            return 1;
    }
    return 0;
}

int manifest_reach_ro(const manifest_program_t *p, const char *iface)
{
    for (uint32_t i = 0; i < p->nreach; i++) {
        const char *colon = strchr(p->reach[i], ':');
        if (colon && same_iface(p->reach[i], iface))
            return strcmp(colon, ":ro") == 0;
    }
    return 0;
}
