/* corpus.c — `orrery trace corpus`: a recorded trace's messages as seed inputs for the fuzz
 * targets. */
#include <trace/corpus.h>
#include <trace/decode.h>
#include <trace/reader.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hal/codes.h>
#include <hal/console.h>

extern const iface_t *const *trace_iface_table(void);

/*
 * The structured op: fuzz/fuzz_server.c's send_structured reads, per field in order,
 * an int as its bytes (little-endian), a string or byte field as a length byte (255: then
 * a byte b, length b * 16) and the bytes, a handle field as nothing. Walk the wire format
 * (ints LE, str/bytes as a u16 length and the bytes, handles out of band) and re-emit it.
 * -1 if the payload is not exactly one message of m, or a length cannot be expressed.
 */
static int structured(const iface_t *ifc, size_t idx, const uint8_t *in, size_t n,
                      uint32_t nhandles, uint8_t *o, size_t *olen, size_t cap)
{
    const iface_msg_t *m = &ifc->msgs[idx];
    size_t at = 0, w = *olen;
    if (nhandles != m->nhandles || cap - w < 2 || idx > 255)
        return -1;
    o[w++] = TRACE_CORPUS_OP_MSG;
    o[w++] = (uint8_t)idx;
    for (size_t i = 0; i < m->nfields; i++) {
        const iface_field_t *f = &m->fields[i];
        size_t iw = iface_int_width(f->kind);
        if (iw) {
            if (n - at < iw || cap - w < iw)
                return -1;
            memcpy(o + w, in + at, iw);
            at += iw;
            w += iw;
            continue;
        }
        if (f->kind == IFACE_HANDLE)
            continue;
        if (n - at < 2)
            return -1;
        size_t l = (size_t)in[at] | (size_t)in[at + 1] << 8;
        at += 2;
        if (l > f->max || n - at < l || (f->kind == IFACE_STR && memchr(in + at, 0, l)))
            return -1;
        if (l >= 255 && (l % 16 != 0 || l / 16 > 255))
            l = l >= 255 * 16 ? 255 * 16 : l / 16 * 16; /* the harness's long form: b * 16 */
        if (cap - w < 2 + l)
            return -1;
        if (l < 255) {
            o[w++] = (uint8_t)l;
        } else {
            o[w++] = 255;
            o[w++] = (uint8_t)(l / 16);
        }
        memcpy(o + w, in + at, l);
        w += l;
        at += (size_t)in[at - 2] | (size_t)in[at - 1] << 8;
    }
    if (at != n)
        return -1;
    *olen = w;
    return 0;
}

int trace_corpus_msg(const iface_t *ifc, uint32_t type, const void *data, size_t dlen,
                     uint32_t nhandles, uint8_t *out, size_t *len, size_t cap)
{
    size_t w = *len;
    bool done = false;
    for (size_t i = 0; ifc && i < ifc->nmsgs && !done; i++)
        if (ifc->msgs[i].number == type)
            done = structured(ifc, i, data, dlen, nhandles, out, &w, cap) == 0;
    if (!done) {
        size_t l = dlen > 255 ? 255 : dlen;
        if (cap - w < 4 + l)
            return -1;
        out[w++] = TRACE_CORPUS_OP_RAW;
        out[w++] = (uint8_t)(type % 12);
        out[w++] = (uint8_t)l;
        if (l)
            memcpy(out + w, data, l);
        w += l;
        out[w++] = nhandles ? 1 : 0;
    }
    if (cap - w < 1)
        return -1;
    out[w++] = TRACE_CORPUS_OP_IDLE;
    *len = w;
    return 0;
}

int trace_corpus_line(const char *line, size_t n, uint8_t *out, size_t *len, size_t cap)
{
    if (n > 63)
        n = 63;
    if (cap - *len < 2 + n)
        return -1;
    out[(*len)++] = TRACE_CORPUS_OP_LINE;
    out[(*len)++] = (uint8_t)n;
    memcpy(out + *len, line, n);
    *len += n;
    return 0;
}

int trace_corpus_tcpip_msg(const iface_t *ifc, uint32_t type, const void *data, size_t dlen,
                           uint32_t nhandles, uint8_t *out, size_t *len, size_t cap)
{
    uint8_t pick = TRACE_CORPUS_TCPIP_NEWEST;
    if (strcmp(ifc->name, "net") == 0)
        pick = 0;
    else if (strcmp(ifc->name, "tcp") == 0 && (type == 1 || type == 2)) /* listen, connect */
        pick = 1;
    else if (strcmp(ifc->name, "udp") == 0 && type == 1) /* bind */
        pick = 2;
    for (size_t i = 0; i < ifc->nmsgs; i++) {
        if (ifc->msgs[i].number != type)
            continue;
        size_t w = *len;
        if (cap - w < 16 + dlen) /* room for the op whatever its fields (lengths: 2 bytes) */
            return -1;
        /* structured() writes [OP_MSG][index][fields]: ours is [MSG][pick][index][fields] */
        size_t at = w + 1;
        if (structured(ifc, i, data, dlen, nhandles, out, &at, cap) != 0)
            return 1;
        out[w] = TRACE_CORPUS_TCPIP_MSG;
        out[w + 1] = pick;
        *len = at;
        return 0;
    }
    return 1;
}

/* ---- reading a trace ----------------------------------------------------------------------- */

typedef struct input {
    char target[16];
    char node[32]; /* a trace of several nodes: the node's name (its tasks' ids are its own) */
    uint32_t chan; /* 0: the console lines; tcpip: its task id */
    unsigned part; /* a long session is split into inputs of at most TRACE_CORPUS_MAX bytes */
    uint8_t buf[TRACE_CORPUS_TCPIP_MAX];
    size_t len;
    trace_corpus_net_t net; /* tcpip: the flows so far */
    uint64_t last_ns;       /* tcpip: when the last frame came */
} input_t;

static const char *const targets[] = {"init", "echo", "console", "shell", "tcpip", NULL};

/* Bytes of one input: tcpip's hold a whole conversation (a fresh boot each). */
static size_t input_cap(const input_t *in)
{
    return strcmp(in->target, "tcpip") == 0 ? TRACE_CORPUS_TCPIP_MAX : TRACE_CORPUS_MAX;
}

static const char *target_of(const char *name)
{
    for (int i = 0; name && targets[i]; i++)
        if (strcmp(name, targets[i]) == 0)
            return targets[i];
    return NULL;
}

/* The newest part for (target, chan); a new part if there is none or `next` is set. */
static input_t *input_for(input_t **v, size_t *n, const char *target, const char *node,
                          uint32_t chan, bool next)
{
    unsigned part = 0;
    for (size_t i = *n; i-- > 0;) {
        if ((*v)[i].chan == chan && strcmp((*v)[i].target, target) == 0 &&
            strcmp((*v)[i].node, node) == 0) {
            if (!next)
                return &(*v)[i];
            part = (*v)[i].part + 1;
            break;
        }
    }
    input_t *nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv)
        return NULL;
    *v = nv;
    input_t *in = &nv[(*n)++];
    memset(in, 0, sizeof *in);
    snprintf(in->target, sizeof in->target, "%s", target);
    snprintf(in->node, sizeof in->node, "%s", node);
    in->chan = chan;
    in->part = part;
    return in;
}

typedef struct op {
    const iface_t *ifc; /* a message (line == NULL) */
    const hal_trace_rec_t *r;
    const char *line; /* or a console line */
    size_t line_len;
    bool frame; /* or a frame tcpip received */
} op_t;

static int append(input_t *in, const op_t *o)
{
    size_t cap = input_cap(in);
    if (o->frame) {
        uint64_t step =
            in->last_ns && o->r->time_ns > in->last_ns ? o->r->time_ns - in->last_ns : 0;
        int rc = trace_corpus_frame(&in->net, o->r->data, o->r->len, step, in->buf, &in->len, cap);
        if (rc == 0)
            in->last_ns = o->r->time_ns;
        return rc;
    }
    if (strcmp(in->target, "tcpip") == 0)
        return trace_corpus_tcpip_msg(o->ifc, o->r->type, o->r->data, o->r->len, o->r->nhandles,
                                      in->buf, &in->len, cap) < 0
                   ? -1
                   : 0;
    if (o->line)
        return trace_corpus_line(o->line, o->line_len, in->buf, &in->len, cap);
    return trace_corpus_msg(o->ifc, o->r->type, o->r->data, o->r->len, o->r->nhandles, in->buf,
                            &in->len, cap);
}

/* Append o to the input of (target, chan), starting a new part when the current one is full. */
static int add(input_t **v, size_t *n, const char *target, const char *node, uint32_t chan,
               const op_t *o)
{
    input_t *in = input_for(v, n, target, node, chan, false);
    if (!in)
        return -1;
    if (append(in, o) == 0)
        return 0;
    if (!(in = input_for(v, n, target, node, chan, true)))
        return -1;
    (void)append(in, o); /* cannot fail on an empty part: an op is under 300 bytes */
    return 0;
}

static const iface_t *iface_by_id(uint32_t id)
{
    const iface_t *const *t = trace_iface_table();
    for (size_t i = 0; t && id && t[i]; i++)
        if (iface_id(t[i]) == id)
            return t[i];
    return NULL;
}

/* DIR/<target>/<trace name>-ch<endpoint>[.part] or .../<trace name>-lines[.part]. */
static void input_path(char *path, size_t cap, const char *dir, const char *base, const input_t *in)
{
    char part[16] = "", node[40] = "";
    if (in->part)
        snprintf(part, sizeof part, ".%u", in->part + 1);
    if (in->node[0])
        snprintf(node, sizeof node, "-%s", in->node);
    if (in->chan && strcmp(in->target, "tcpip") == 0)
        snprintf(path, cap, "%s/%s/%s%s-task%u%s", dir, in->target, base, node, in->chan, part);
    else if (in->chan)
        snprintf(path, cap, "%s/%s/%s%s-ch%u%s", dir, in->target, base, node, in->chan, part);
    else
        snprintf(path, cap, "%s/%s/%s%s-lines%s", dir, in->target, base, node, part);
}

/*
 * Is path a directory we may write in? DIR itself is followed if a symlink (the user named
 * it); below DIR nothing is (a symlinked DIR/echo would send inputs elsewhere).
 * 0 (also: missing, *exists false), -1 or TRACE_CORPUS_REFUSED with a message in err.
 */
static int dir_ok(const char *path, bool follow, bool *exists, char *err, size_t errlen)
{
    struct stat st;
    *exists = false;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: %s; refusing to write inputs into it", path,
                 S_ISLNK(st.st_mode) ? "a symlink" : "not a directory");
        return TRACE_CORPUS_REFUSED;
    }
    *exists = true;
    return 0;
}

/* May an input be renamed onto path: missing, or a regular file (an earlier input by name)? */
static int target_ok(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s; refusing to replace it", path,
                 S_ISLNK(st.st_mode) ? "a symlink" : "not a regular file");
        return TRACE_CORPUS_REFUSED;
    }
    return 0;
}

/* Create path as a directory unless it is one (dir_ok's rules); 0 or as dir_ok. */
static int make_dir(const char *path, bool follow, char *err, size_t errlen)
{
    bool exists;
    int rc = dir_ok(path, follow, &exists, err, errlen);
    if (rc != 0 || exists)
        return rc;
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    rc = dir_ok(path, follow, &exists, err, errlen); /* EEXIST: made by someone else meanwhile */
    return rc;
}

/* Write one input to a new temporary file beside path, then rename it onto path. */
static int write_input(const input_t *in, const char *path, char *err, size_t errlen)
{
    char tmp[4200];
    const char *slash = strrchr(path, '/');
    mode_t mask = umask(0);
    FILE *f;
    int fd, rc;

    umask(mask);
    snprintf(tmp, sizeof tmp, "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
    if ((fd = mkstemp(tmp)) < 0) { /* O_EXCL: never opens what is already there */
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    if (fchmod(fd, 0666 & ~mask) != 0 || !(f = fdopen(fd, "wb"))) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    bool wrote = fwrite(in->buf, 1, in->len, f) == in->len;
    if (fclose(f) != 0 || !wrote) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        rc = -1;
    } else if ((rc = target_ok(path, err, errlen)) == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        unlink(tmp); /* our own temporary file */
    return rc;
}

#define CORPUS_DIR_MAX (4096 - 256 - 64) /* room in write_inputs' path for the rest */

static int write_inputs(const input_t *v, size_t n, const char *dir, const char *base, char *err,
                        size_t errlen)
{
    char path[4096];
    bool exists;
    int files = 0, rc;

    /* DIR/<server>/<base, under 256>-ch<n>.<part> must fit whole: a cut path names another
     * file. */
    if (strlen(dir) > CORPUS_DIR_MAX) {
        snprintf(err, errlen, "%.200s...: longer than %d bytes", dir, CORPUS_DIR_MAX);
        return -1;
    }
    /* Check everything first: a refusal leaves DIR exactly as it was. */
    if ((rc = dir_ok(dir, true, &exists, err, errlen)) != 0)
        return rc;
    for (size_t i = 0; exists && i < n; i++) {
        bool sub;
        snprintf(path, sizeof path, "%s/%s", dir, v[i].target);
        if ((rc = dir_ok(path, false, &sub, err, errlen)) != 0)
            return rc;
        input_path(path, sizeof path, dir, base, &v[i]);
        if (sub && v[i].len && (rc = target_ok(path, err, errlen)) != 0)
            return rc;
    }
    if ((rc = make_dir(dir, true, err, errlen)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].len)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, v[i].target);
        if ((rc = make_dir(path, false, err, errlen)) != 0)
            return rc;
        input_path(path, sizeof path, dir, base, &v[i]);
        if ((rc = write_input(&v[i], path, err, errlen)) != 0)
            return rc;
        files++;
    }
    return files;
}

/*
 * The node's part of its inputs' file names: "" in a trace of one kernel, else its name, or
 * "nodeN" when the name is not letters, digits, '-' and '_' (the file is only ever read, and a
 * name from it never makes a path).
 */
static const char *node_part(trace_db *db, uint32_t node, char *buf, size_t len)
{
    const char *name = trace_db_node_name(db, node);

    if (!trace_db_node_count(db))
        return "";
    if (name && name[0] &&
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-_") == strlen(name))
        return name;
    snprintf(buf, len, "node%u", (unsigned)node);
    return buf;
}

int trace_corpus_write(const char *db_path, const char *dir, char *err, size_t errlen)
{
    char nodebuf[16];
    trace_db *db = NULL;
    trace_iter *it = NULL;
    input_t *v = NULL;
    size_t n = 0;
    int rc = -1;
    trace_filter all = {0};
    hal_trace_rec_t r;

    if (trace_db_open(db_path, &db, err, errlen) != 0)
        return -1;
    if (trace_iter_open(db, &all, &it) != 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        goto out;
    }
    int got;
    while ((got = trace_iter_next(it, &r)) == 1) {
        /* A trace of several nodes: each node's inputs apart (ids and endpoints are its own). */
        const char *node = node_part(db, trace_iter_node(it), nodebuf, sizeof nodebuf);
        /* A console line (net0's FRAME has the same code: the device tells them apart; a trace
         * from before DEVICE records names none, and had only the console posting). */
        const char *dev = r.kind == HAL_TR_DEV_POST ? trace_db_device_name(db, r.chan) : NULL;
        if (r.kind == HAL_TR_DEV_POST && r.type == HAL_CONSOLE_LINE &&
            (!dev || strcmp(dev, "console") == 0)) {
            op_t o = {.r = &r, .line = r.data ? r.data : "", .line_len = r.len};
            if (add(&v, &n, "shell", node, 0, &o) != 0 || add(&v, &n, "console", node, 0, &o) != 0)
                goto oom;
            continue;
        }
        const char *t = target_of(trace_db_task_name(db, r.task));
        bool tcpip = t && strcmp(t, "tcpip") == 0;
        if (tcpip && r.type == HAL_NET_FRAME && r.data &&
            (r.kind == HAL_TR_DEV_EVENT || r.kind == HAL_TR_DEV_WRITE)) {
            if (r.kind == HAL_TR_DEV_WRITE) { /* what it sent: its flows */
                input_t *in = input_for(&v, &n, t, node, r.task, false);
                if (!in)
                    goto oom;
                trace_corpus_net_sent(&in->net, r.data, r.len);
                continue;
            }
            op_t o = {.r = &r, .frame = true};
            if (add(&v, &n, t, node, r.task, &o) != 0)
                goto oom;
            continue;
        }
        if (r.kind != HAL_TR_DELIVER || r.result != 0)
            continue;
        if (!t || strcmp(t, "shell") == 0) /* the shell's input is console lines */
            continue;
        uint32_t id = r.iface ? r.iface : trace_guess_iface(r.type, r.data, r.len, r.nhandles);
        const iface_t *ifc = iface_by_id(id);
        if (tcpip && ifc &&
            (strcmp(ifc->name, "tcp") == 0 || strcmp(ifc->name, "udp") == 0 ||
             strcmp(ifc->name, "net") == 0)) {
            op_t o = {.ifc = ifc, .r = &r};
            if (add(&v, &n, t, node, r.task, &o) != 0)
                goto oom;
            continue;
        }
        if (!ifc || strcmp(ifc->name, t) != 0) /* only the server's own interface: its target's */
            continue;
        op_t o = {.ifc = ifc, .r = &r};
        if (add(&v, &n, t, node, r.chan, &o) != 0)
            goto oom;
    }
    if (got < 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        goto out;
    }
    char base[256];
    const char *slash = strrchr(db_path, '/');
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : db_path);
    char *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = '\0';
    rc = write_inputs(v, n, dir, base, err, errlen);
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    if (it)
        trace_iter_close(it);
    trace_db_close(db);
    free(v);
    return rc;
}
