/* ext2w_util.c — disks in memory, mke2fs, e2fsck and debugfs for the ext2 write-side tests. */
#include "ext2w_util.h"

#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64];
static uint32_t g_now = 1700000000;

const char *const conf_name[NCONF] = {
    "-r 0 -b 1024 -g 4096",
    "-r 1 -b 1024 -g 2048 -I 256",
    "-r 0 -b 4096 -g 1024",
    "-r 1 -b 4096 -g 1024",
    "-r 1 -b 2048 -g 2048 -I 128 -O ^filetype,^resize_inode,^sparse_super,^large_file",
};

int suite_setup(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/orrery-ext2w-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

int suite_teardown(void **state)
{
    (void)state;
    /* Only the folder mkdtemp made for us. */
    if (strncmp(g_dir, "/tmp/orrery-ext2w-", 18) == 0)
        sh("rm -rf %s", g_dir);
    return 0;
}

const char *suite_dir(void)
{
    return g_dir;
}

void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static void load(disk_t *d, const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    d->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    d->data = malloc(d->size);
    assert_non_null(d->data);
    assert_int_equal(fread(d->data, 1, d->size, f), d->size);
    fclose(f);
}

disk_t *disk_make_opts(int c, int mb, const char *extra)
{
    disk_t *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->conf = c;
    d->busy_in = -1;
    char img[128];
    snprintf(img, sizeof img, "%s/mk.img", g_dir);
    sh("rm -f %s && mke2fs -q -F -t ext2 %s %s %s %dM >/dev/null 2>&1", img, conf_name[c],
       extra ? extra : "", img, mb);
    load(d, img);
    return d;
}

disk_t *disk_make(int c, int mb)
{
    return disk_make_opts(c, mb, NULL);
}

ext2_fs_t *mount_rw(disk_t *d)
{
    if (!d->fs)
        d->fs = calloc(1, sizeof *d->fs);
    ext2_fs_t *fs = d->fs;
    int rc = ext2_mount(fs, disk_read, d, d->size);
    if (rc != 0)
        fail_msg("mount (%s): %s: %s", conf_name[d->conf], os_errname(rc), ext2_why(fs));
    fs->now = g_now++;
    rc = ext2_mount_rw(fs, disk_write);
    if (rc != 0)
        fail_msg("mount_rw (%s): %s: %s", conf_name[d->conf], os_errname(rc), ext2_why(fs));
    return fs;
}

void disk_free(disk_t *d, ext2_fs_t *fs)
{
    assert_true(d->max_call_blocks <= EXT2_CALL_BLOCKS_MAX);
    (void)fs;
    for (size_t i = 0; i < d->nlog; i++)
        free(d->log[i].old);
    free(d->log);
    free(d->fs);
    free(d->data);
    free(d);
}

const char *disk_save(disk_t *d, const char *name)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d->data, 1, d->size, f), d->size);
    fclose(f);
    return path;
}

void disk_call_start(disk_t *d)
{
    d->ncall_blocks = 0;
}

static void note_blocks(disk_t *d, uint64_t off, size_t len)
{
    uint32_t bs = d->fs && d->fs->block_size ? d->fs->block_size : 1024;
    for (uint64_t b = off / bs; len && b <= (off + len - 1) / bs; b++) {
        size_t i = 0;
        while (i < d->ncall_blocks && d->call_blocks[i] != b)
            i++;
        if (i == d->ncall_blocks && d->ncall_blocks < sizeof d->call_blocks / 4)
            d->call_blocks[d->ncall_blocks++] = (uint32_t)b;
    }
    if (d->ncall_blocks > d->max_call_blocks)
        d->max_call_blocks = d->ncall_blocks;
}

static bool busy_now(disk_t *d)
{
    if (d->busy_in < 0)
        return false;
    return d->busy_in-- == 0;
}

int disk_read(void *arg, uint64_t off, void *buf, size_t len)
{
    disk_t *d = arg;
    if (off > d->size || len > d->size - off)
        return OS_EIO;
    if (busy_now(d))
        return OS_EBUSY;
    d->reads++;
    memcpy(buf, d->data + off, len);
    return 0;
}

int disk_write(void *arg, uint64_t off, const void *buf, size_t len, int kind)
{
    disk_t *d = arg;
    if (off > d->size || len > d->size - off || (kind != EXT2_W_DATA && kind != EXT2_W_META))
        return OS_EIO;
    if (busy_now(d))
        return OS_EBUSY;
    d->writes++;
    if (kind == EXT2_W_DATA && d->fs && d->fs->block_size) {
        uint32_t bs = d->fs->block_size;
        if (off % bs == 0 && len == bs)
            d->data_whole++;
        else
            d->data_part++;
    }
    note_blocks(d, off, len);
    if (d->logging) {
        if (d->nlog == d->caplog) {
            d->caplog = d->caplog ? 2 * d->caplog : 64;
            d->log = realloc(d->log, d->caplog * sizeof *d->log);
        }
        undo_t *u = &d->log[d->nlog++];
        u->off = off;
        u->len = len;
        u->old = malloc(len);
        memcpy(u->old, d->data + off, len);
    }
    memcpy(d->data + off, buf, len);
    return 0;
}

uint32_t mk(ext2_fs_t *fs, uint32_t dir, const char *name, uint16_t mode, const char *target)
{
    uint32_t ino = 0;
    disk_call_start(fs->arg);
    int rc = ext2_create(fs, dir, name, strlen(name), mode, target, &ino);
    if (rc != 0)
        fail_msg("create %s in %u: %s: %s", name, dir, os_errname(rc), ext2_why(fs));
    assert_true(ino > 0);
    return ino;
}

void wr(ext2_fs_t *fs, uint32_t ino, uint64_t off, const void *buf, size_t len)
{
    disk_call_start(fs->arg);
    int rc = ext2_write(fs, ino, off, buf, len);
    if (rc != 0)
        fail_msg("write inode %u at %llu+%zu: %s: %s", ino, (unsigned long long)off, len,
                 os_errname(rc), ext2_why(fs));
}

int trunc_all(ext2_fs_t *fs, uint32_t ino, uint64_t size, disk_t *d)
{
    bool more = true;
    int steps = 0;
    while (more) {
        disk_call_start(fs->arg);
        int rc = ext2_truncate(fs, ino, size, &more);
        if (rc != 0)
            fail_msg("truncate inode %u to %llu: %s: %s", ino, (unsigned long long)size,
                     os_errname(rc), ext2_why(fs));
        steps++;
        assert_true(steps < 1000000);
        if (d && more && steps % 7 == 1)
            fsck_ok(d, "between truncation steps");
    }
    return steps;
}

int free_inode(ext2_fs_t *fs, uint32_t ino)
{
    int steps = trunc_all(fs, ino, 0, NULL);
    disk_call_start(fs->arg);
    int rc = ext2_release(fs, ino);
    if (rc != 0)
        fail_msg("release inode %u: %s: %s", ino, os_errname(rc), ext2_why(fs));
    return steps;
}

void expect_file(ext2_fs_t *fs, const char *path, const uint8_t *want, size_t n)
{
    ext2_inode_t in;
    int rc = ext2_lookup(fs, path, true, &in);
    if (rc != 0)
        fail_msg("lookup %s: %s: %s", path, os_errname(rc), ext2_why(fs));
    assert_int_equal(in.size, n);
    uint8_t *got = malloc(n + 1);
    size_t at = 0, k;
    while (at < n) {
        assert_int_equal(ext2_read(fs, &in, at, got + at, 50000, &k), 0);
        assert_true(k > 0);
        at += k;
    }
    assert_int_equal(ext2_read(fs, &in, n, got, 1, &k), 0);
    assert_int_equal(k, 0);
    if (n && memcmp(got, want, n) != 0) {
        size_t i = 0;
        while (got[i] == want[i])
            i++;
        fail_msg("%s differs at byte %zu of %zu", path, i, n);
    }
    free(got);
}

void fsck_ok(disk_t *d, const char *label)
{
    ext2_fs_t *fs = d->fs;
    int rc = ext2_unmount(fs);
    if (rc != 0)
        fail_msg("unmount: %s: %s", os_errname(rc), ext2_why(fs));
    const char *img = disk_save(d, "check.img");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "e2fsck -fn %s > %s/fsck.log 2>&1", img, g_dir);
    int st = system(cmd);
    /* e2fsck does not count a wrong free count in the superblock alone as an error: we do. */
    snprintf(cmd, sizeof cmd, "grep -q -e '? no' -e 'count wrong' %s/fsck.log", g_dir);
    if (st == 0 && system(cmd) == 0)
        st = 1 << 8;
    if (st != 0) {
        char log[256];
        snprintf(log, sizeof log, "%s/fsck.log", g_dir);
        snprintf(cmd, sizeof cmd, "cp %s %s/bad.img; cat %s | head -40 >&2", img, g_dir, log);
        (void)system(cmd);
        fail_msg("e2fsck -fn after %s (%s): status %d", label, conf_name[d->conf],
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
}

void debugfs_cat(disk_t *d, const char *path, const uint8_t *want, size_t n)
{
    const char *img = disk_save(d, "cat.img");
    char out[160];
    snprintf(out, sizeof out, "%s/cat.out", g_dir);
    sh("debugfs -R 'cat %s' %s > %s 2>/dev/null", path, img, out);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    uint8_t *got = malloc(n + 16);
    size_t k = fread(got, 1, n + 16, f);
    fclose(f);
    assert_int_equal(k, n);
    assert_memory_equal(got, want, n);
    free(got);
}

void debugfs_stat(disk_t *d, const char *path, char *buf, size_t cap)
{
    const char *img = disk_save(d, "stat.img");
    char out[160];
    snprintf(out, sizeof out, "%s/stat.out", g_dir);
    sh("debugfs -R 'stat %s' %s > %s 2>/dev/null", path, img, out);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    size_t k = fread(buf, 1, cap - 1, f);
    buf[k] = '\0';
    fclose(f);
}

/* The call fails with `want`, ext2_why holds `says`, and the image is unchanged. */
void refused(disk_t *d, int rc, int want, const char *says, const uint8_t *snap)
{
    if (rc != want || !strstr(ext2_why(d->fs), says))
        fail_msg("got %s (%s), expected %s with '%s'", os_errname(rc), ext2_why(d->fs),
                 os_errname(want), says);
    if (snap)
        assert_memory_equal(snap, d->data, d->size);
}
