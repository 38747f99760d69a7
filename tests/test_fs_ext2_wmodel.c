/* test_fs_ext2_wmodel.c — the ext2 write side against a model, with and without OS_EBUSY. */
#include "ext2w_util.h"

/* ---- the model: every name, its type, inode and contents ------------------------------- */

enum { ENT_MAX = 400, NAME_POOL = 24 };

typedef struct {
    bool used;
    char path[1100]; /* "" for the root, else "/a/b" */
    int type;        /* EXT2_T_* */
    uint32_t ino;
    uint8_t *data; /* a file's bytes, a symlink's target */
    size_t size;
} ent_t;

typedef struct {
    ent_t e[ENT_MAX];
    disk_t *d;
    ext2_fs_t *fs;
    uint32_t rng, brng;          /* the operations' stream; the OS_EBUSY points' own */
    bool busy;                   /* inject OS_EBUSY */
    unsigned long busies;        /* calls run again after OS_EBUSY */
    unsigned long calls, failed; /* library calls; those the model expected to fail */
    uint32_t most_blocks;        /* the most distinct blocks one call touched */
    uint32_t now;
} model_t;

static uint32_t rnd(model_t *m, uint32_t n)
{
    m->rng = m->rng * 1103515245u + 12345u;
    return (m->rng >> 8) % n;
}

static ent_t *ent_new(model_t *m)
{
    for (int i = 0; i < ENT_MAX; i++)
        if (!m->e[i].used) {
            memset(&m->e[i], 0, sizeof m->e[i]);
            m->e[i].used = true;
            return &m->e[i];
        }
    return NULL;
}

static const char *base_of(const ent_t *e)
{
    return strrchr(e->path, '/') + 1;
}

/* The directory holding e. */
static ent_t *parent_of(model_t *m, const ent_t *e)
{
    size_t n = (size_t)(strrchr(e->path, '/') - e->path);
    for (int i = 0; i < ENT_MAX; i++)
        if (m->e[i].used && m->e[i].type == EXT2_T_DIR && strlen(m->e[i].path) == n &&
            strncmp(m->e[i].path, e->path, n) == 0)
            return &m->e[i];
    fail_msg("no parent for %s", e->path);
    return NULL;
}

static ent_t *child(model_t *m, const ent_t *dir, const char *name)
{
    for (int i = 0; i < ENT_MAX; i++)
        if (m->e[i].used && m->e[i].path[0] && parent_of(m, &m->e[i]) == dir &&
            strcmp(base_of(&m->e[i]), name) == 0)
            return &m->e[i];
    return NULL;
}

static int children(model_t *m, const ent_t *dir)
{
    int n = 0;
    for (int i = 0; i < ENT_MAX; i++)
        if (m->e[i].used && m->e[i].path[0] && parent_of(m, &m->e[i]) == dir)
            n++;
    return n;
}

/* Whether a is b or lies under b. */
static bool under(const ent_t *a, const ent_t *b)
{
    size_t n = strlen(b->path);
    return strncmp(a->path, b->path, n) == 0 && (a->path[n] == '\0' || a->path[n] == '/');
}

/* A random used entry of the given type (0: any but the root). */
static ent_t *pick(model_t *m, int type)
{
    int idx[ENT_MAX], n = 0;
    for (int i = 0; i < ENT_MAX; i++)
        if (m->e[i].used && (type ? m->e[i].type == type : m->e[i].path[0] != '\0'))
            idx[n++] = i;
    return n ? &m->e[idx[rnd(m, (uint32_t)n)]] : NULL;
}

static void name_pick(model_t *m, char *name)
{
    uint32_t k = rnd(m, NAME_POOL);
    if (k % 5 == 4) {
        /* A long name fills directory blocks sooner. */
        memset(name, 'L', 120);
        snprintf(name + 120, 16, "%u", k);
    } else {
        snprintf(name, 16, "n%u", k);
    }
}

/* ---- calls, run again after OS_EBUSY as the server does -------------------------------- */

typedef enum { C_CREATE, C_WRITE, C_TRUNC, C_REMOVE, C_RELEASE, C_RENAME } kind_t;

typedef struct {
    kind_t kind;
    uint32_t dir, dir2, ino;
    const char *name, *name2;
    uint16_t mode;
    const char *target;
    uint64_t off;
    const void *buf;
    size_t len;
    bool want_dir;
    /* Results. */
    uint32_t out_ino;
    bool more, gone;
} call_t;

static int call_once(ext2_fs_t *fs, call_t *c)
{
    switch (c->kind) {
    case C_CREATE:
        return ext2_create(fs, c->dir, c->name, strlen(c->name), c->mode, c->target, &c->out_ino);
    case C_WRITE:
        return ext2_write(fs, c->ino, c->off, c->buf, c->len);
    case C_TRUNC:
        return ext2_truncate(fs, c->ino, c->off, &c->more);
    case C_REMOVE:
        return ext2_remove(fs, c->dir, c->name, strlen(c->name), c->want_dir, &c->out_ino,
                           &c->gone);
    case C_RELEASE:
        return ext2_release(fs, c->ino);
    case C_RENAME:
        return ext2_rename(fs, c->dir, c->name, strlen(c->name), c->dir2, c->name2,
                           strlen(c->name2), &c->out_ino, &c->gone);
    }
    return OS_EINVAL;
}

static void undo(disk_t *d)
{
    for (size_t i = d->nlog; i-- > 0;)
        memcpy(d->data + d->log[i].off, d->log[i].old, d->log[i].len);
}

static void log_clear(disk_t *d)
{
    for (size_t i = 0; i < d->nlog; i++)
        free(d->log[i].old);
    d->nlog = 0;
}

/* One library call; with m->busy, OS_EBUSY at a random device access, undone and run again. */
static int call(model_t *m, call_t *c)
{
    static ext2_fs_t saved;
    disk_t *d = m->d;
    m->fs->now = m->now;
    m->calls++;
    for (int tries = 0;; tries++) {
        assert_true(tries < 10000);
        saved = *m->fs;
        log_clear(d);
        d->logging = true;
        /* A third of the runs go through: a call of many accesses ends too. */
        m->brng = m->brng * 1103515245u + 12345u;
        uint32_t r = m->brng >> 8;
        d->busy_in = m->busy && r % 3 ? (long)(r / 3 % 40) : -1;
        disk_call_start(d);
        int rc = call_once(m->fs, c);
        d->busy_in = -1;
        d->logging = false;
        if (m->fs->touched_n > m->most_blocks)
            m->most_blocks = m->fs->touched_n;
        assert_true(m->fs->touched_n <= EXT2_CALL_BLOCKS_MAX);
        if (rc != OS_EBUSY)
            return rc;
        assert_true(ext2_why(m->fs)[0] != '\0');
        undo(d);
        *m->fs = saved;
        m->busies++;
    }
}

static void expect_rc(model_t *m, int want, int got, const char *what, const char *path)
{
    m->failed += want != 0;
    if (want != got)
        fail_msg("%s %s: %s, expected %s (%s)", what, path, os_errname(got), os_errname(want),
                 ext2_why(m->fs));
}

/* Free an inode the way the server does: truncate in steps, then release. */
static void release(model_t *m, uint32_t ino)
{
    call_t c = {.kind = C_TRUNC, .ino = ino, .off = 0};
    do
        expect_rc(m, 0, call(m, &c), "truncate", "(removed)");
    while (c.more);
    c = (call_t){.kind = C_RELEASE, .ino = ino};
    expect_rc(m, 0, call(m, &c), "release", "(removed)");
}

static void ent_drop(ent_t *e)
{
    free(e->data);
    e->used = false;
}

/* ---- random operations ----------------------------------------------------------------- */

static void op_create(model_t *m, int type)
{
    ent_t *dir = pick(m, EXT2_T_DIR);
    char name[140], path[1300], target[400];
    name_pick(m, name);
    snprintf(path, sizeof path, "%s/%s", dir->path, name);
    if (strlen(path) > 900 || (type == EXT2_T_DIR && strlen(path) > 600))
        return;
    call_t c = {.kind = C_CREATE, .dir = dir->ino, .name = name, .mode = (uint16_t)(type << 12)};
    if (type == EXT2_T_LNK) {
        size_t n = 1 + rnd(m, rnd(m, 2) ? 58 : 300);
        for (size_t i = 0; i < n; i++)
            target[i] = (char)('a' + rnd(m, 26));
        target[n] = '\0';
        c.target = target;
    }
    int rc = call(m, &c);
    if (child(m, dir, name)) {
        expect_rc(m, OS_EEXIST, rc, "create", path);
        return;
    }
    expect_rc(m, 0, rc, "create", path);
    ent_t *e = ent_new(m);
    assert_non_null(e);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->type = type;
    e->ino = c.out_ino;
    if (type == EXT2_T_LNK) {
        e->size = strlen(target);
        e->data = (uint8_t *)strdup(target);
    }
}

static void op_write(model_t *m)
{
    ent_t *f = pick(m, EXT2_T_REG);
    if (!f)
        return;
    uint8_t buf[4096];
    size_t len = 1 + rnd(m, 4096);
    /* Mostly near the end; sometimes far out (double indirect with 1 KiB blocks). */
    uint64_t off = rnd(m, 8) ? rnd(m, (uint32_t)f->size + 9000) : rnd(m, 2u << 20);
    fill(buf, len, m->rng);
    call_t c = {.kind = C_WRITE, .ino = f->ino, .off = off, .buf = buf, .len = len};
    expect_rc(m, 0, call(m, &c), "write", f->path);
    if (off + len > f->size) {
        f->data = realloc(f->data, off + len);
        memset(f->data + f->size, 0, off + len - f->size);
        f->size = off + len;
    }
    memcpy(f->data + off, buf, len);
}

static void op_truncate(model_t *m)
{
    ent_t *f = pick(m, EXT2_T_REG);
    if (!f)
        return;
    uint64_t size = rnd(m, (uint32_t)f->size + 5000);
    call_t c = {.kind = C_TRUNC, .ino = f->ino, .off = size};
    do
        expect_rc(m, 0, call(m, &c), "truncate", f->path);
    while (c.more);
    if (size > f->size) {
        f->data = realloc(f->data, size);
        memset(f->data + f->size, 0, size - f->size);
    }
    f->size = size;
}

static void op_remove(model_t *m, bool dir)
{
    ent_t *e = pick(m, dir ? EXT2_T_DIR : 0);
    if (!e || !e->path[0] || (!dir && e->type == EXT2_T_DIR))
        return;
    call_t c = {.kind = C_REMOVE, .dir = parent_of(m, e)->ino, .name = base_of(e), .want_dir = dir};
    int rc = call(m, &c);
    if (dir && children(m, e)) {
        expect_rc(m, OS_ENOTEMPTY, rc, "rmdir", e->path);
        return;
    }
    expect_rc(m, 0, rc, dir ? "rmdir" : "unlink", e->path);
    assert_int_equal(c.out_ino, e->ino);
    assert_true(c.gone);
    if (e->type == EXT2_T_REG && rnd(m, 3) == 0) {
        /* Still open somewhere: an unlinked file is written until its last close. */
        uint8_t buf[3000];
        fill(buf, sizeof buf, m->rng);
        call_t w = {
            .kind = C_WRITE, .ino = e->ino, .off = rnd(m, 70000), .buf = buf, .len = sizeof buf};
        expect_rc(m, 0, call(m, &w), "write to unlinked", e->path);
    }
    release(m, e->ino);
    ent_drop(e);
}

static void op_rename(model_t *m)
{
    ent_t *s = pick(m, 0), *to = pick(m, EXT2_T_DIR);
    if (!s)
        return;
    char name[140], path[1300];
    name_pick(m, name);
    snprintf(path, sizeof path, "%s/%s", to->path, name);
    if (strlen(path) > 600)
        return;
    ent_t *from = parent_of(m, s), *x = child(m, to, name);
    call_t c = {
        .kind = C_RENAME, .dir = from->ino, .name = base_of(s), .dir2 = to->ino, .name2 = name};
    char what[1200];
    snprintf(what, sizeof what, "%s ->", s->path);
    int rc = call(m, &c);
    int want = 0;
    if (x == s)
        want = 0;
    else if (s->type == EXT2_T_DIR && under(to, s))
        want = OS_EINVAL;
    else if (x && s->type == EXT2_T_DIR && x->type != EXT2_T_DIR)
        want = OS_ENOTDIR;
    else if (x && s->type != EXT2_T_DIR && x->type == EXT2_T_DIR)
        want = OS_EISDIR;
    else if (x && x->type == EXT2_T_DIR && children(m, x))
        want = OS_ENOTEMPTY;
    expect_rc(m, want, rc, what, path);
    if (rc != 0 || x == s)
        return;
    if (x) {
        assert_int_equal(c.out_ino, x->ino);
        assert_true(c.gone);
        release(m, x->ino);
        ent_drop(x);
    } else {
        assert_int_equal(c.out_ino, 0);
    }
    /* The entry and everything under it take the new path. */
    char old[1100];
    snprintf(old, sizeof old, "%s", s->path);
    size_t n = strlen(old);
    for (int i = 0; i < ENT_MAX; i++) {
        ent_t *e = &m->e[i];
        if (e->used && under(e, s) && e != s) {
            char rest[1100];
            snprintf(rest, sizeof rest, "%s", e->path + n);
            snprintf(e->path, sizeof e->path, "%s%s", path, rest);
        }
    }
    snprintf(s->path, sizeof s->path, "%s", path);
}

/* Every name, type, content and link count of the model is on the volume, and no more. */
static void check_model(model_t *m)
{
    for (int i = 0; i < ENT_MAX; i++) {
        ent_t *e = &m->e[i];
        if (!e->used)
            continue;
        ext2_inode_t in;
        const char *p = e->path[0] ? e->path : "/";
        int rc = ext2_lookup(m->fs, p, false, &in);
        if (rc != 0)
            fail_msg("lookup %s: %s: %s", p, os_errname(rc), ext2_why(m->fs));
        assert_int_equal(in.ino, e->ino);
        assert_int_equal(ext2_type(&in), e->type);
        if (e->type == EXT2_T_REG) {
            expect_file(m->fs, p, e->data, e->size);
        } else if (e->type == EXT2_T_LNK) {
            char buf[EXT2_PATH_MAX + 1];
            assert_int_equal(ext2_readlink(m->fs, &in, buf, sizeof buf), 0);
            assert_string_equal(buf, (char *)e->data);
        } else {
            int subdirs = 0, n = 0;
            for (int j = 0; j < ENT_MAX; j++)
                if (m->e[j].used && m->e[j].path[0] && parent_of(m, &m->e[j]) == e)
                    subdirs += m->e[j].type == EXT2_T_DIR;
            ext2_dirent_t de;
            uint64_t pos = 0;
            while ((rc = ext2_dir_next(m->fs, &in, &pos, &de)) == 1)
                if (strcmp(de.name, ".") && strcmp(de.name, "..") && strcmp(de.name, "lost+found"))
                    n++;
            assert_int_equal(rc, 0);
            assert_int_equal(n, children(m, e));
            /* The root also holds lost+found, which mke2fs made. */
            assert_int_equal(in.links, 2 + subdirs + (e->path[0] ? 0 : 1));
        }
    }
}

static void model_init(model_t *m, disk_t *d, uint32_t seed, bool busy)
{
    memset(m, 0, sizeof *m);
    m->d = d;
    m->fs = d->fs;
    m->rng = seed;
    m->brng = seed * 31 + 7;
    m->busy = busy;
    m->now = 1600000000; /* in the past: e2fsck checks times */
    ent_t *root = ent_new(m);
    root->type = EXT2_T_DIR;
    root->ino = EXT2_ROOT_INO;
}

static void model_free(model_t *m)
{
    for (int i = 0; i < ENT_MAX; i++)
        if (m->e[i].used)
            ent_drop(&m->e[i]);
}

static void run_ops(model_t *m, int n)
{
    for (int i = 0; i < n; i++) {
        m->now++;
        uint32_t r = rnd(m, 100);
        if (r < 18)
            op_create(m, EXT2_T_REG);
        else if (r < 26)
            op_create(m, EXT2_T_DIR);
        else if (r < 31)
            op_create(m, EXT2_T_LNK);
        else if (r < 55)
            op_write(m);
        else if (r < 65)
            op_truncate(m);
        else if (r < 75)
            op_remove(m, false);
        else if (r < 82)
            op_remove(m, true);
        else
            op_rename(m);
    }
}

/* A few hundred random operations per volume shape, then e2fsck and the model agree. */
static void test_model(void **state)
{
    (void)state;
    static model_t m;
    for (int c = 0; c < NCONF; c++) {
        disk_t *d = disk_make(c, 16);
        mount_rw(d);
        model_init(&m, d, 1000 + (uint32_t)c, false);
        run_ops(&m, 400);
        int live = 0;
        for (int i = 0; i < ENT_MAX; i++)
            live += m.e[i].used;
        print_message("%s: %lu calls (%lu refused as the model said), %d names left, at most "
                      "%u blocks in one call\n",
                      conf_name[c], m.calls, m.failed, live, m.most_blocks);
        assert_true(live > 20);
        check_model(&m);
        fsck_ok(d, "random operations");
        model_free(&m);
        disk_free(d, d->fs);
    }
}

/* Mount for the OS_EBUSY comparison: the same clock on both sides. */
static void mount_at(disk_t *d, uint32_t now)
{
    d->fs = calloc(1, sizeof *d->fs);
    assert_int_equal(ext2_mount(d->fs, disk_read, d, d->size), 0);
    d->fs->now = now;
    assert_int_equal(ext2_mount_rw(d->fs, disk_write), 0);
}

/*
 * OS_EBUSY at a random device access of every call: the call's writes are undone, the
 * ext2_fs_t restored, the call run again, as the server does. The image must end exactly as
 * a run without OS_EBUSY leaves it.
 */
static void test_busy_torture(void **state)
{
    (void)state;
    static model_t plain, busy;
    static const int confs[] = {1, 2, 4};
    for (size_t k = 0; k < sizeof confs / sizeof confs[0]; k++) {
        /* One image twice (mke2fs draws a new UUID each time). */
        disk_t *a = disk_make(confs[k], 16), *b = calloc(1, sizeof *b);
        *b = *a;
        b->data = malloc(a->size);
        memcpy(b->data, a->data, a->size);
        mount_at(a, 5);
        mount_at(b, 5);
        model_init(&plain, a, 77 + (uint32_t)k, false);
        model_init(&busy, b, 77 + (uint32_t)k, true);
        run_ops(&plain, 500);
        run_ops(&busy, 500);
        print_message("%s: %lu of %lu calls run again after OS_EBUSY\n", conf_name[confs[k]],
                      busy.busies, busy.calls);
        assert_int_equal(busy.calls, plain.calls);
        assert_true(busy.busies > busy.calls / 3);
        check_model(&busy);
        a->fs->now = b->fs->now = 9;
        fsck_ok(a, "plain run");
        fsck_ok(b, "run with OS_EBUSY");
        if (memcmp(a->data, b->data, a->size) != 0) {
            size_t i = 0;
            while (a->data[i] == b->data[i])
                i++;
            fail_msg("the images differ first at byte %zu (block %zu)", i, i / a->fs->block_size);
        }
        model_free(&plain);
        model_free(&busy);
        disk_free(a, a->fs);
        disk_free(b, b->fs);
    }
}

/* The deep block maps under OS_EBUSY: triple indirect writes, cuts in steps, a release. */
static void deep_calls(model_t *m)
{
    call_t c = {.kind = C_CREATE, .dir = EXT2_ROOT_INO, .name = "deep", .mode = EXT2_T_REG << 12};
    assert_int_equal(call(m, &c), 0);
    uint32_t f = c.out_ino;
    uint64_t p = m->fs->ptrs, bs = m->fs->block_size;
    uint8_t buf[4096];
    for (uint64_t i = 0; i < 40; i++) {
        uint64_t lblk = 12 + p + p * p + i * (p * p / 3 + p / 2 + 1);
        fill(buf, sizeof buf, (uint32_t)i);
        c = (call_t){.kind = C_WRITE, .ino = f, .off = lblk * bs - 700, .buf = buf, .len = 4096};
        assert_int_equal(call(m, &c), 0);
    }
    c = (call_t){.kind = C_TRUNC, .ino = f, .off = (12 + p + p * p + 5 * p * p) * bs + 3};
    do
        assert_int_equal(call(m, &c), 0);
    while (c.more);
    c = (call_t){.kind = C_REMOVE, .dir = EXT2_ROOT_INO, .name = "deep"};
    assert_int_equal(call(m, &c), 0);
    release(m, f);
}

static void test_busy_deep(void **state)
{
    (void)state;
    static model_t plain, busy;
    disk_t *a = disk_make(1, 16), *b = calloc(1, sizeof *b);
    *b = *a;
    b->data = malloc(a->size);
    memcpy(b->data, a->data, a->size);
    mount_at(a, 5);
    mount_at(b, 5);
    model_init(&plain, a, 3, false);
    model_init(&busy, b, 3, true);
    deep_calls(&plain);
    deep_calls(&busy);
    print_message("%lu of %lu calls run again after OS_EBUSY\n", busy.busies, busy.calls);
    assert_true(busy.busies > busy.calls / 3);
    a->fs->now = b->fs->now = 9;
    fsck_ok(a, "deep, plain");
    fsck_ok(b, "deep, with OS_EBUSY");
    assert_memory_equal(a->data, b->data, a->size);
    model_free(&plain);
    model_free(&busy);
    disk_free(a, a->fs);
    disk_free(b, b->fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_busy_torture),
        cmocka_unit_test(test_busy_deep),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
