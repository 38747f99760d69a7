/* ext2_wdir.c — the ext2 write side on directories: create, mkdir, symlink, remove, rename. */
#include <string.h>

#include <os/errno.h>

#include "ext2.h"
#include "ext2_priv.h"

#define LINK_MAX 32000 /* links of one inode, as Linux's ext2 allows */
#define NONE UINT32_MAX

/* The file-type byte of a directory entry for an inode's mode. */
static uint8_t ftype(uint16_t mode)
{
    switch (mode >> 12) {
    case EXT2_T_REG:
        return 1;
    case EXT2_T_DIR:
        return 2;
    case EXT2_T_CHR:
        return 3;
    case EXT2_T_BLK:
        return 4;
    case EXT2_T_FIFO:
        return 5;
    case EXT2_T_SOCK:
        return 6;
    case EXT2_T_LNK:
        return 7;
    }
    return 0;
}

static uint32_t rec_for(size_t len)
{
    return (uint32_t)(8 + ((len + 3) & ~(size_t)3));
}

static int name_check(ext2_fs_t *fs, const char *name, size_t len)
{
    if (len > EXT2_NAME_MAX)
        return ext2__fail(fs, OS_ENAMETOOLONG, "name of %zu bytes (255 at most)", len);
    if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len) ||
        (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return ext2__fail(fs, OS_EINVAL, "bad name '%.*s'", (int)len, name);
    return 0;
}

/* Load a directory to change it: OS_ENOTDIR, OS_ENOENT if it was removed. */
static int dir_load(ext2_fs_t *fs, uint32_t ino, ext2__wino_t *wi)
{
    int rc = ext2__wi_load(fs, ino, wi, true);
    if (rc < 0)
        return rc;
    if (ext2_type(&wi->in) != EXT2_T_DIR)
        return ext2__fail(fs, OS_ENOTDIR, "inode %u is not a directory", ino);
    if (wi->in.links == 0)
        return ext2__fail(fs, OS_ENOENT, "directory inode %u was removed", ino);
    return 0;
}

/* One pass over a directory's entries: a name, a free slot, whether it is empty. */
typedef struct {
    const char *name; /* the name looked for, or NULL */
    size_t len;
    uint32_t need; /* bytes of a new entry, 0: no slot wanted */
    bool stop;     /* stop at the name (or, with no name, at an entry other than . and ..) */
    /* Results: the name's entry (block, offset, previous entry's offset or NONE). */
    bool found;
    uint32_t f_blk, f_off, f_prev, f_ino;
    /* A free slot: the entry to reuse (ino 0) or to split. */
    uint32_t s_blk, s_off;
    uint32_t others; /* entries other than . and .. */
    uint64_t blocks;
} scan_t;

static int dir_scan(ext2_fs_t *fs, const ext2_inode_t *dir, scan_t *s)
{
    uint32_t bs = fs->block_size;
    s->found = false;
    s->s_blk = 0;
    s->others = 0;
    s->blocks = dir->size / bs;
    for (uint64_t l = 0; l < s->blocks; l++) {
        uint32_t pb;
        int rc = ext2_bmap(fs, dir, l, &pb);
        if (rc < 0)
            return rc;
        if (pb == 0)
            return ext2__fail(fs, OS_EIO, "directory inode %u: hole at block %llu", dir->ino,
                              (unsigned long long)l);
        if ((rc = ext2__scratch_load(fs, pb)) < 0)
            return rc;
        uint32_t prev = NONE;
        for (uint32_t o = 0; o < bs;) {
            const uint8_t *e = fs->scratch + o;
            if (o + 8 > bs)
                return ext2__fail(fs, OS_EIO,
                                  "directory inode %u: entry header at block %llu+%u "
                                  "crosses the block",
                                  dir->ino, (unsigned long long)l, o);
            uint32_t ino = le32(e), rec = le16(e + 4);
            uint32_t nlen = (fs->feat_incompat & INCOMPAT_FILETYPE) ? e[6] : le16(e + 6);
            if (rec < 8 || rec % 4 || o + rec > bs || ino > fs->inodes_count ||
                (ino && (nlen == 0 || 8 + nlen > rec)))
                return ext2__fail(fs, OS_EIO, "directory inode %u: bad entry at block %llu+%u",
                                  dir->ino, (unsigned long long)l, o);
            bool dot =
                ino && ((nlen == 1 && e[8] == '.') || (nlen == 2 && e[8] == '.' && e[9] == '.'));
            if (ino && !dot)
                s->others++;
            if (ino && s->name && !s->found && nlen == s->len && !memcmp(e + 8, s->name, nlen)) {
                s->found = true;
                s->f_blk = pb;
                s->f_off = o;
                s->f_prev = prev;
                s->f_ino = ino;
            }
            uint32_t used = ino ? rec_for(nlen) : 0;
            if (s->need && !s->s_blk && rec - used >= s->need) {
                s->s_blk = pb;
                s->s_off = o;
            }
            if (s->stop && (s->found || (!s->name && s->others)))
                return 0;
            prev = o;
            o += rec;
        }
    }
    return 0;
}

/* Write the scratch block back where it came from. */
static int scratch_store(ext2_fs_t *fs)
{
    uint32_t b = fs->scratch_blk;
    int rc = ext2__blk_check(fs, 0, b, "directory block");
    if (rc < 0)
        return rc;
    return ext2__dev_write(fs, (uint64_t)b * fs->block_size, fs->scratch, fs->block_size,
                           EXT2_W_META, "directory block");
}

static void ent_put(ext2_fs_t *fs, uint32_t o, uint32_t ino, uint32_t rec, const char *name,
                    size_t len, uint8_t type)
{
    uint8_t *e = fs->scratch + o;
    put32(e, ino);
    put16(e + 4, rec);
    if (fs->feat_incompat & INCOMPAT_FILETYPE) {
        e[6] = (uint8_t)len;
        e[7] = type;
    } else {
        put16(e + 6, (uint32_t)len);
    }
    memcpy(e + 8, name, len);
    memset(e + 8 + len, 0, rec_for(len) - 8 - len);
}

/* A directory is changed: times, and a hash index (which this library does not keep) off. */
static void dir_touch(ext2_fs_t *fs, ext2_inode_t *dir)
{
    dir->mtime = dir->ctime = fs->now;
    dir->flags &= ~(uint32_t)EXT2_INDEX_FL;
}

/* The blocks adding an entry takes: 0 with a slot, else the directory's next block's. */
static int add_need(ext2_fs_t *fs, const ext2_inode_t *dir, const scan_t *s, uint32_t *need)
{
    *need = 0;
    if (s->s_blk)
        return 0;
    /* Bounds the blocks one call reads in a directory it changes. */
    if (s->blocks >= EXT2_DIR_GROW_MAX)
        return ext2__fail(fs, OS_ENOSPC, "directory inode %u is full (%u blocks, the limit)",
                          dir->ino, EXT2_DIR_GROW_MAX);
    return ext2__map_need(fs, dir, s->blocks, need);
}

/* Add an entry where the scan found room, or in a new block at the directory's end. */
static int dir_add(ext2_fs_t *fs, ext2__wino_t *dw, const scan_t *s, const char *name, size_t len,
                   uint32_t ino, uint8_t type)
{
    int rc;
    if (s->s_blk) {
        if ((rc = ext2__scratch_load(fs, s->s_blk)) < 0)
            return rc;
        uint8_t *e = fs->scratch + s->s_off;
        uint32_t cur = le32(e), rec = le16(e + 4), nlen;
        nlen = (fs->feat_incompat & INCOMPAT_FILETYPE) ? e[6] : le16(e + 6);
        if (cur == 0) {
            ent_put(fs, s->s_off, ino, rec, name, len, type);
        } else {
            uint32_t used = rec_for(nlen);
            put16(e + 4, used);
            ent_put(fs, s->s_off + used, ino, rec - used, name, len, type);
        }
    } else {
        uint32_t pb;
        bool fresh;
        if ((rc = ext2__map_ensure(fs, dw, s->blocks, s->blocks, &pb, &fresh)) < 0)
            return rc;
        fs->scratch_blk = 0;
        memset(fs->scratch, 0, fs->block_size);
        ent_put(fs, 0, ino, fs->block_size, name, len, type);
        fs->scratch_blk = pb;
        dw->in.size += fs->block_size;
    }
    dir_touch(fs, &dw->in);
    return scratch_store(fs);
}

/* Remove the entry the scan found: merged into the previous one, or emptied (ino 0). */
static int dir_del(ext2_fs_t *fs, ext2__wino_t *dw, const scan_t *s)
{
    int rc = ext2__scratch_load(fs, s->f_blk);
    if (rc < 0)
        return rc;
    uint8_t *e = fs->scratch + s->f_off;
    if (s->f_prev == NONE) {
        put32(e, 0);
    } else {
        uint8_t *p = fs->scratch + s->f_prev;
        put16(p + 4, le16(p + 4) + le16(e + 4));
    }
    dir_touch(fs, &dw->in);
    return scratch_store(fs);
}

/* An entry naming a reserved inode (or the root) is corrupt: never unlinked or moved. */
static int entry_ino_ok(ext2_fs_t *fs, uint32_t dir, uint32_t ino)
{
    if (ino < fs->first_ino)
        return ext2__fail(fs, OS_EIO, "directory inode %u: an entry names reserved inode %u", dir,
                          ino);
    return 0;
}

/* ".." of directory `dir`: its inode number and where it sits (offset in block 0). */
static int dotdot(ext2_fs_t *fs, const ext2_inode_t *dir, uint32_t *parent, uint32_t *blk,
                  uint32_t *off)
{
    int rc = ext2_bmap(fs, dir, 0, blk);
    if (rc == 0 && *blk == 0)
        rc = ext2__fail(fs, OS_EIO, "directory inode %u has no block 0", dir->ino);
    if (rc == 0)
        rc = ext2__scratch_load(fs, *blk);
    if (rc < 0)
        return rc;
    uint32_t rec0 = le16(fs->scratch + 4);
    if (rec0 < 12 || rec0 % 4 || rec0 + 12 > fs->block_size)
        return ext2__fail(fs, OS_EIO, "directory inode %u: '.' has rec_len %u", dir->ino, rec0);
    const uint8_t *e = fs->scratch + rec0;
    uint32_t nlen = (fs->feat_incompat & INCOMPAT_FILETYPE) ? e[6] : le16(e + 6);
    if (nlen != 2 || e[8] != '.' || e[9] != '.' || le32(e) == 0 || le32(e) > fs->inodes_count)
        return ext2__fail(fs, OS_EIO, "directory inode %u: no '..' entry", dir->ino);
    *parent = le32(e);
    *off = rec0;
    return 0;
}

/* ---- create ----------------------------------------------------------------------------- */

static int create_(ext2_fs_t *fs, uint32_t dir, const char *name, size_t len, uint16_t mode,
                   const char *target, uint32_t *out)
{
    ext2__wino_t dw, nw;
    unsigned t = mode >> 12;
    size_t tlen = 0;
    int rc;
    if ((rc = name_check(fs, name, len)) < 0)
        return rc;
    if (t != EXT2_T_REG && t != EXT2_T_DIR && t != EXT2_T_LNK)
        return ext2__fail(fs, OS_EINVAL, "mode 0%o: only files, directories and symlinks", mode);
    if (t == EXT2_T_LNK) {
        while (target && tlen <= EXT2_PATH_MAX && target[tlen] != '\0')
            tlen++;
        if (tlen == 0)
            return ext2__fail(fs, OS_EINVAL, "an empty symlink target");
        if (tlen > EXT2_PATH_MAX || tlen >= fs->block_size)
            return ext2__fail(fs, OS_ENAMETOOLONG, "symlink target over %u bytes",
                              EXT2_PATH_MAX < fs->block_size - 1 ? EXT2_PATH_MAX
                                                                 : fs->block_size - 1);
    }
    if ((rc = dir_load(fs, dir, &dw)) < 0)
        return rc;
    if (t == EXT2_T_DIR && dw.in.links >= LINK_MAX)
        return ext2__fail(fs, OS_ENOSPC, "directory inode %u has %u links (the limit)", dir,
                          dw.in.links);
    scan_t s = {.name = name, .len = len, .need = rec_for(len)};
    if ((rc = dir_scan(fs, &dw.in, &s)) < 0)
        return rc;
    if (s.found)
        return ext2__fail(fs, OS_EEXIST, "'%.*s' exists in directory inode %u", (int)len, name,
                          dir);
    uint32_t need;
    if ((rc = add_need(fs, &dw.in, &s, &need)) < 0)
        return rc;
    bool slow = t == EXT2_T_LNK && tlen >= 60;
    need += t == EXT2_T_DIR || slow;
    if ((rc = ext2__space(fs, need, 1)) < 0 || (rc = ext2__room(fs)) < 0)
        return rc;
    uint32_t ino;
    if ((rc = ext2__ialloc(fs, dir, t == EXT2_T_DIR, &ino)) < 0 ||
        (rc = ext2__inode_off(fs, ino, &nw.off)) < 0)
        return rc;
    memset(nw.raw, 0, sizeof nw.raw);
    nw.in = (ext2_inode_t){.ino = ino,
                           .mode = mode,
                           .links = t == EXT2_T_DIR ? 2 : 1,
                           .atime = fs->now,
                           .mtime = fs->now,
                           .ctime = fs->now};
    /* The inode's bytes past the first 128 (if any) start clean. */
    if (fs->inode_size > INODE_BASE &&
        (rc = ext2__dev_write(fs, nw.off + INODE_BASE, ext2__zeros, fs->inode_size - INODE_BASE,
                              EXT2_W_META, "inode")) < 0)
        return rc;
    if (t == EXT2_T_DIR || slow) {
        uint32_t pb;
        bool fresh;
        if ((rc = ext2__map_ensure(fs, &nw, 0, 0, &pb, &fresh)) < 0)
            return rc;
        fs->scratch_blk = 0;
        memset(fs->scratch, 0, fs->block_size);
        if (t == EXT2_T_DIR) {
            ent_put(fs, 0, ino, 12, ".", 1, 2);
            ent_put(fs, 12, dir, fs->block_size - 12, "..", 2, 2);
            nw.in.size = fs->block_size;
        } else {
            memcpy(fs->scratch, target, tlen);
            nw.in.size = tlen;
        }
        fs->scratch_blk = pb;
        if ((rc = scratch_store(fs)) < 0)
            return rc;
    } else if (t == EXT2_T_LNK) {
        uint8_t raw[sizeof nw.in.block] = {0};
        memcpy(raw, target, tlen);
        for (int i = 0; i < EXT2_N_BLOCKS; i++)
            nw.in.block[i] = le32(raw + 4 * i);
        nw.in.size = tlen;
    }
    if ((rc = ext2__wi_store(fs, &nw)) < 0 ||
        (rc = dir_add(fs, &dw, &s, name, len, ino, ftype(mode))) < 0)
        return rc;
    if (t == EXT2_T_DIR)
        dw.in.links++;
    if ((rc = ext2__wi_store(fs, &dw)) < 0)
        return rc;
    if (out)
        *out = ino;
    return 0;
}

int ext2_create(ext2_fs_t *fs, uint32_t dir, const char *name, size_t len, uint16_t mode,
                const char *target, uint32_t *ino)
{
    int rc = ext2__wbegin(fs);
    if (rc == 0)
        rc = create_(fs, dir, name, len, mode, target, ino);
    return ext2__wend(fs, rc);
}

/* ---- remove ----------------------------------------------------------------------------- */

/* OS_ENOTEMPTY unless directory `in` holds only . and .. */
static int dir_empty(ext2_fs_t *fs, const ext2_inode_t *in)
{
    scan_t s = {.stop = true};
    int rc = dir_scan(fs, in, &s);
    if (rc < 0)
        return rc;
    if (s.others)
        return ext2__fail(fs, OS_ENOTEMPTY, "directory inode %u holds %u entries", in->ino,
                          s.others);
    return 0;
}

/* Drop one link of `vw` (all of a directory's: its entry and its "."), parent `dw` updated. */
static void unlink_inode(ext2_fs_t *fs, ext2__wino_t *vw, ext2__wino_t *dw)
{
    if (ext2_type(&vw->in) == EXT2_T_DIR) {
        vw->in.links = 0;
        /* Its ".." no longer counts for the parent. */
        if (dw->in.links > 1)
            dw->in.links--;
    } else {
        vw->in.links--;
    }
    vw->in.ctime = fs->now;
}

static int remove_(ext2_fs_t *fs, uint32_t dir, const char *name, size_t len, bool want_dir,
                   uint32_t *ino, bool *gone)
{
    ext2__wino_t dw, vw;
    int rc;
    if ((rc = name_check(fs, name, len)) < 0 || (rc = dir_load(fs, dir, &dw)) < 0)
        return rc;
    scan_t s = {.name = name, .len = len, .stop = true};
    if ((rc = dir_scan(fs, &dw.in, &s)) < 0)
        return rc;
    if (!s.found)
        return ext2__fail(fs, OS_ENOENT, "'%.*s' not found in directory inode %u", (int)len, name,
                          dir);
    if ((rc = entry_ino_ok(fs, dir, s.f_ino)) < 0 ||
        (rc = ext2__wi_load(fs, s.f_ino, &vw, false)) < 0)
        return rc;
    bool is_dir = ext2_type(&vw.in) == EXT2_T_DIR;
    if (want_dir && !is_dir)
        return ext2__fail(fs, OS_ENOTDIR, "'%.*s' is not a directory", (int)len, name);
    if (!want_dir && is_dir)
        return ext2__fail(fs, OS_EISDIR, "'%.*s' is a directory", (int)len, name);
    if (is_dir && (rc = dir_empty(fs, &vw.in)) < 0)
        return rc;
    if ((rc = ext2__room(fs)) < 0 || (rc = dir_del(fs, &dw, &s)) < 0)
        return rc;
    unlink_inode(fs, &vw, &dw);
    if ((rc = ext2__wi_store(fs, &vw)) < 0 || (rc = ext2__wi_store(fs, &dw)) < 0)
        return rc;
    *ino = s.f_ino;
    *gone = vw.in.links == 0;
    return 0;
}

int ext2_remove(ext2_fs_t *fs, uint32_t dir, const char *name, size_t len, bool want_dir,
                uint32_t *ino, bool *gone)
{
    *ino = 0;
    *gone = false;
    int rc = ext2__wbegin(fs);
    if (rc == 0)
        rc = remove_(fs, dir, name, len, want_dir, ino, gone);
    return ext2__wend(fs, rc);
}

/* ---- rename ----------------------------------------------------------------------------- */

/* OS_EINVAL if directory `src` is `to` or one of its ancestors (walking ".." up). */
static int not_under(ext2_fs_t *fs, uint32_t src, uint32_t to)
{
    uint32_t cur = to;
    for (uint32_t steps = 0; cur != EXT2_ROOT_INO; steps++) {
        if (cur == src)
            return ext2__fail(fs, OS_EINVAL, "cannot move directory inode %u under itself", src);
        if (steps > fs->inodes_count)
            return ext2__fail(fs, OS_EIO, "directory inode %u: '..' chain loops", to);
        ext2_inode_t in;
        uint32_t up, blk, off;
        int rc = ext2_iget(fs, cur, &in);
        if (rc == 0 && ext2_type(&in) != EXT2_T_DIR)
            rc = ext2__fail(fs, OS_EIO, "inode %u on a '..' chain is not a directory", cur);
        if (rc == 0)
            rc = dotdot(fs, &in, &up, &blk, &off);
        if (rc < 0)
            return rc;
        cur = up;
    }
    return 0;
}

static int rename_(ext2_fs_t *fs, uint32_t from_dir, const char *from_name, size_t from_len,
                   uint32_t to_dir, const char *to_name, size_t to_len, uint32_t *replaced,
                   bool *gone)
{
    ext2__wino_t fw, tw, sw, xw;
    int rc;
    if ((rc = name_check(fs, from_name, from_len)) < 0 ||
        (rc = name_check(fs, to_name, to_len)) < 0 || (rc = dir_load(fs, from_dir, &fw)) < 0 ||
        (rc = dir_load(fs, to_dir, &tw)) < 0)
        return rc;
    bool same = from_dir == to_dir;
    scan_t fs_ = {.name = from_name, .len = from_len, .stop = true};
    if ((rc = dir_scan(fs, &fw.in, &fs_)) < 0)
        return rc;
    if (!fs_.found)
        return ext2__fail(fs, OS_ENOENT, "'%.*s' not found in directory inode %u", (int)from_len,
                          from_name, from_dir);
    scan_t ts = {.name = to_name, .len = to_len, .need = rec_for(to_len)};
    if ((rc = dir_scan(fs, &tw.in, &ts)) < 0)
        return rc;
    if (ts.found && ts.f_ino == fs_.f_ino)
        return 0; /* the same file under both names: nothing to do */
    if ((rc = entry_ino_ok(fs, from_dir, fs_.f_ino)) < 0 ||
        (ts.found && (rc = entry_ino_ok(fs, to_dir, ts.f_ino)) < 0) ||
        (rc = ext2__wi_load(fs, fs_.f_ino, &sw, false)) < 0)
        return rc;
    bool src_dir = ext2_type(&sw.in) == EXT2_T_DIR;
    if (src_dir && !same && (rc = not_under(fs, fs_.f_ino, to_dir)) < 0)
        return rc;
    if (ts.found) {
        if ((rc = ext2__wi_load(fs, ts.f_ino, &xw, false)) < 0)
            return rc;
        bool dst_dir = ext2_type(&xw.in) == EXT2_T_DIR;
        if (src_dir && !dst_dir)
            return ext2__fail(fs, OS_ENOTDIR, "'%.*s' is not a directory", (int)to_len, to_name);
        if (!src_dir && dst_dir)
            return ext2__fail(fs, OS_EISDIR, "'%.*s' is a directory", (int)to_len, to_name);
        if (dst_dir && (rc = dir_empty(fs, &xw.in)) < 0)
            return rc;
    } else {
        if (src_dir && !same && tw.in.links >= LINK_MAX)
            return ext2__fail(fs, OS_ENOSPC, "directory inode %u has %u links (the limit)", to_dir,
                              tw.in.links);
        uint32_t need;
        if ((rc = add_need(fs, &tw.in, &ts, &need)) < 0 || (rc = ext2__space(fs, need, 0)) < 0)
            return rc;
    }
    /* A directory changing parents: its ".." is found (and checked) before any write. */
    uint32_t up, up_blk = 0, up_off = 0;
    if (src_dir && !same && (rc = dotdot(fs, &sw.in, &up, &up_blk, &up_off)) < 0)
        return rc;
    if ((rc = ext2__room(fs)) < 0)
        return rc;
    /* The new name first: the file is never without one. */
    if (ts.found) {
        if ((rc = ext2__scratch_load(fs, ts.f_blk)) < 0)
            return rc;
        uint8_t *e = fs->scratch + ts.f_off;
        put32(e, fs_.f_ino);
        if (fs->feat_incompat & INCOMPAT_FILETYPE)
            e[7] = ftype(sw.in.mode);
        dir_touch(fs, &tw.in);
        if ((rc = scratch_store(fs)) < 0)
            return rc;
        unlink_inode(fs, &xw, &tw);
        if ((rc = ext2__wi_store(fs, &xw)) < 0)
            return rc;
        *replaced = ts.f_ino;
        *gone = xw.in.links == 0;
    } else if ((rc = dir_add(fs, &tw, &ts, to_name, to_len, fs_.f_ino, ftype(sw.in.mode))) < 0) {
        return rc;
    }
    /* The old name: look again, the directory may have changed under the new entry. */
    if (same)
        fw = tw;
    if ((rc = dir_scan(fs, &fw.in, &fs_)) < 0)
        return rc;
    if (!fs_.found)
        return ext2__fail(fs, OS_EIO, "directory inode %u lost '%.*s'", from_dir, (int)from_len,
                          from_name);
    if ((rc = dir_del(fs, &fw, &fs_)) < 0)
        return rc;
    if (src_dir && !same) {
        if ((rc = ext2__scratch_load(fs, up_blk)) < 0)
            return rc;
        put32(fs->scratch + up_off, to_dir);
        if ((rc = scratch_store(fs)) < 0)
            return rc;
        if (fw.in.links > 1)
            fw.in.links--;
        tw.in.links++;
    }
    sw.in.ctime = fs->now;
    if ((rc = ext2__wi_store(fs, &sw)) < 0 || (rc = ext2__wi_store(fs, &fw)) < 0)
        return rc;
    if (!same && (rc = ext2__wi_store(fs, &tw)) < 0)
        return rc;
    return 0;
}

int ext2_rename(ext2_fs_t *fs, uint32_t from_dir, const char *from_name, size_t from_len,
                uint32_t to_dir, const char *to_name, size_t to_len, uint32_t *replaced, bool *gone)
{
    *replaced = 0;
    *gone = false;
    int rc = ext2__wbegin(fs);
    if (rc == 0)
        rc = rename_(fs, from_dir, from_name, from_len, to_dir, to_name, to_len, replaced, gone);
    if (rc < 0) {
        *replaced = 0;
        *gone = false;
    }
    return ext2__wend(fs, rc);
}
