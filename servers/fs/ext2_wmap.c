/* ext2_wmap.c — the ext2 write side on block maps: file writes, truncation in steps, release. */
#include <string.h>

#include <os/errno.h>

#include "ext2.h"
#include "ext2_priv.h"

/* Where a logical block hangs: an inode slot, then up to three indirect indexes. */
typedef struct {
    int depth; /* indirect levels: 0 direct, 3 triple */
    int slot;  /* i_block index */
    uint32_t idx[3];
} path_t;

static void path_of(const ext2_fs_t *fs, uint64_t lblk, path_t *p)
{
    uint64_t n = fs->ptrs, rel = lblk;
    if (rel < 12) {
        *p = (path_t){.depth = 0, .slot = (int)rel};
    } else if ((rel -= 12) < n) {
        *p = (path_t){.depth = 1, .slot = 12, .idx = {(uint32_t)rel}};
    } else if ((rel -= n) < n * n) {
        *p = (path_t){.depth = 2, .slot = 13, .idx = {(uint32_t)(rel / n), (uint32_t)(rel % n)}};
    } else {
        rel -= n * n;
        *p = (path_t){
            .depth = 3,
            .slot = 14,
            .idx = {(uint32_t)(rel / (n * n)), (uint32_t)(rel / n % n), (uint32_t)(rel % n)}};
    }
}

/* Read one pointer of indirect block `ind`, checked. */
static int ptr_get(ext2_fs_t *fs, uint32_t ino, uint32_t ind, uint32_t idx, uint32_t *v)
{
    uint8_t b[4];
    int rc = ext2__dev_read(fs, (uint64_t)ind * fs->block_size + (uint64_t)idx * 4, b, 4,
                            "indirect block");
    if (rc < 0)
        return rc;
    *v = le32(b);
    if (*v != 0 && !ext2__blk_ok(fs, *v))
        return ext2__fail(fs, OS_EIO,
                          "inode %u: indirect block %u points to %u, outside the volume", ino, ind,
                          *v);
    return 0;
}

static int ptr_put(ext2_fs_t *fs, uint32_t ino, uint32_t ind, uint32_t idx, uint32_t v)
{
    uint8_t b[4];
    int rc = ext2__blk_check(fs, ino, ind, "indirect block");
    if (rc < 0)
        return rc;
    put32(b, v);
    return ext2__dev_write(fs, (uint64_t)ind * fs->block_size + (uint64_t)idx * 4, b, 4,
                           EXT2_W_META, "indirect block");
}

/* node[0] is the inode's slot, node[k] entry idx[k-1] of node[k-1]; 0 from a hole on. */
static int path_read(ext2_fs_t *fs, const ext2_inode_t *in, const path_t *p, uint32_t node[4])
{
    node[0] = in->block[p->slot];
    if (node[0] != 0 && !ext2__blk_ok(fs, node[0]))
        return ext2__fail(fs, OS_EIO, "inode %u: i_block[%d] = %u, outside the volume", in->ino,
                          p->slot, node[0]);
    for (int k = 1; k <= p->depth; k++) {
        node[k] = 0;
        if (node[k - 1] == 0)
            continue;
        int rc = ptr_get(fs, in->ino, node[k - 1], p->idx[k - 1], &node[k]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Count the blocks mapping first..last takes; an indirect block shared counts once. */
static int map_count(ext2_fs_t *fs, const ext2_inode_t *in, uint64_t first, uint64_t last,
                     uint32_t *need, uint32_t *goal, uint32_t *pblk)
{
    path_t p, prev = {0};
    uint32_t node[4], prev_node[4] = {0};
    *need = *goal = 0;
    if (last < first || last - first >= EXT2__SPAN_MAX || last >= ext2__map_blocks(fs))
        return ext2__fail(fs, OS_EINVAL, "inode %u: blocks %llu..%llu past the block map", in->ino,
                          (unsigned long long)first, (unsigned long long)last);
    for (uint64_t l = first; l <= last; l++) {
        path_of(fs, l, &p);
        int rc = path_read(fs, in, &p, node);
        if (rc < 0)
            return rc;
        for (int k = 0; k <= p.depth; k++) {
            /* Every block this call will write into is checked before anything changes. */
            if (node[k] != 0) {
                *goal = node[k];
                if (k == p.depth && (rc = ext2__blk_check(fs, in->ino, node[k], "file data")) < 0)
                    return rc;
                continue;
            }
            if (k > 0 && node[k - 1] != 0 &&
                (rc = ext2__blk_check(fs, in->ino, node[k - 1], "indirect block")) < 0)
                return rc;
            bool shared = k < p.depth && l > first && prev.slot == p.slot && prev_node[k] == 0;
            for (int j = 0; shared && j < k; j++)
                shared = prev.idx[j] == p.idx[j];
            *need += !shared;
        }
        pblk[l - first] = node[p.depth];
        prev = p;
        memcpy(prev_node, node, sizeof node);
    }
    return 0;
}

int ext2__map_need(ext2_fs_t *fs, const ext2_inode_t *in, uint64_t lblk, uint32_t *need)
{
    uint32_t goal, pblk;
    return map_count(fs, in, lblk, lblk, need, &goal, &pblk);
}

int ext2__map_ensure(ext2_fs_t *fs, ext2__wino_t *wi, uint64_t first, uint64_t last, uint32_t *pblk,
                     bool *fresh)
{
    ext2_inode_t *in = &wi->in;
    path_t p;
    uint32_t node[4], need, goal;
    int rc = map_count(fs, in, first, last, &need, &goal, pblk);
    if (rc < 0)
        return rc;
    for (uint64_t l = first; l <= last; l++)
        fresh[l - first] = false;
    if (need == 0)
        return 0;
    if ((uint64_t)in->sectors + (uint64_t)need * (fs->block_size / 512) > UINT32_MAX)
        return ext2__fail(fs, OS_EINVAL, "inode %u: over 2^32 sectors", in->ino);
    if ((rc = ext2__space(fs, need, 0)) < 0)
        return rc;
    if (goal == 0 && first > 0 && (rc = ext2_bmap(fs, in, first - 1, &goal)) < 0)
        return rc;
    if (goal != 0)
        goal++;
    else
        goal = fs->first_data_block + (in->ino - 1) / fs->inodes_per_group * fs->blocks_per_group;
    /* Take every block first, so a failure part way can give them all back. */
    uint32_t nb[EXT2__SPAN_MAX * 4];
    for (uint32_t i = 0; i < need; i++) {
        if ((rc = ext2__balloc(fs, goal, &nb[i])) < 0) {
            /* After OS_EBUSY the caller undoes the whole call anyway. */
            for (uint32_t j = 0; rc != OS_EBUSY && j < i; j++)
                if (ext2__bfree(fs, nb[j]) < 0)
                    break;
            return rc;
        }
        goal = nb[i] + 1;
    }
    uint32_t used = 0;
    for (uint64_t l = first; l <= last; l++) {
        path_of(fs, l, &p);
        if ((rc = path_read(fs, in, &p, node)) < 0)
            return rc;
        for (int k = 0; k <= p.depth; k++) {
            if (node[k] != 0)
                continue;
            if (used == need)
                return ext2__fail(fs, OS_EIO, "inode %u: block map changed under the write",
                                  in->ino);
            uint32_t b = nb[used++];
            if (k < p.depth &&
                (rc = ext2__dev_write(fs, (uint64_t)b * fs->block_size, ext2__zeros, fs->block_size,
                                      EXT2_W_META, "indirect block")) < 0)
                return rc;
            if (k == p.depth)
                fresh[l - first] = true;
            if (k == 0)
                in->block[p.slot] = b;
            else if ((rc = ptr_put(fs, in->ino, node[k - 1], p.idx[k - 1], b)) < 0)
                return rc;
            node[k] = b;
            in->sectors += fs->block_size / 512;
        }
        pblk[l - first] = node[p.depth];
    }
    return 0;
}

/*
 * Write file bytes into block b at offset o. A fresh block is written whole in one call
 * (zeros around the bytes, composed in the scratch block): a cache in front of the device
 * need not read a block that is overwritten whole.
 */
static int data_put(ext2_fs_t *fs, uint32_t b, uint32_t o, const uint8_t *src, size_t n, bool fresh)
{
    uint64_t at = (uint64_t)b * fs->block_size;
    int rc = ext2__blk_check(fs, 0, b, "file data");
    if (rc < 0)
        return rc;
    if (!fresh || (o == 0 && n == fs->block_size))
        return ext2__dev_write(fs, at + o, src, n, EXT2_W_DATA, "file data");
    fs->scratch_blk = 0;
    memset(fs->scratch, 0, fs->block_size);
    memcpy(fs->scratch + o, src, n);
    return ext2__dev_write(fs, at, fs->scratch, fs->block_size, EXT2_W_DATA, "file data");
}

static int write_(ext2_fs_t *fs, uint32_t ino, uint64_t off, const void *buf, size_t len)
{
    ext2__wino_t wi;
    int rc;
    if (len > 4096)
        return ext2__fail(fs, OS_EINVAL, "write of %zu bytes (4096 at most)", len);
    /* The reserved inodes (resize, journal, ...) are the file system's own. */
    if (ino < fs->first_ino && ino != EXT2_ROOT_INO)
        return ext2__fail(fs, OS_EINVAL, "inode %u is reserved", ino);
    /* An unlinked file still open is written as any other. */
    if ((rc = ext2__wi_load(fs, ino, &wi, true)) < 0)
        return rc;
    unsigned t = ext2_type(&wi.in);
    if (t == EXT2_T_DIR)
        return ext2__fail(fs, OS_EISDIR, "inode %u is a directory", ino);
    if (t != EXT2_T_REG)
        return ext2__fail(fs, OS_EINVAL, "inode %u is not a regular file", ino);
    if (len == 0)
        return 0;
    uint64_t bs = fs->block_size, max = ext2__map_blocks(fs) * bs;
    if (off >= max || len > max - off)
        return ext2__fail(fs, OS_EINVAL, "inode %u: bytes %llu+%zu beyond the block map", ino,
                          (unsigned long long)off, len);
    uint64_t end = off + len;
    if (fs->rev == 0 && end > 0x7fffffffu)
        return ext2__fail(fs, OS_EINVAL, "a size of %llu bytes needs large_file (revision 1)",
                          (unsigned long long)end);
    uint32_t pblk[EXT2__SPAN_MAX];
    bool fresh[EXT2__SPAN_MAX];
    uint64_t first = off / bs, last = (end - 1) / bs;
    if ((rc = ext2__map_ensure(fs, &wi, first, last, pblk, fresh)) < 0)
        return rc;
    const uint8_t *src = buf;
    for (uint64_t l = first; l <= last; l++) {
        uint64_t lo = l == first ? off % bs : 0, hi = l == last ? (end - 1) % bs + 1 : bs;
        if ((rc = data_put(fs, pblk[l - first], (uint32_t)lo, src, hi - lo, fresh[l - first])) < 0)
            return rc;
        src += hi - lo;
    }
    if (end > wi.in.size) {
        if ((rc = ext2__large_file(fs, end)) < 0)
            return rc;
        wi.in.size = end;
    }
    wi.in.mtime = wi.in.ctime = fs->now;
    return ext2__wi_store(fs, &wi);
}

int ext2_write(ext2_fs_t *fs, uint32_t ino, uint64_t off, const void *buf, size_t len)
{
    int rc = ext2__wbegin(fs);
    if (rc == 0)
        rc = write_(fs, ino, off, buf, len);
    return ext2__wend(fs, rc);
}

/* ---- truncation ------------------------------------------------------------------------- */

/* One truncation step: frees blocks at or past `end`, highest first, while the budget lasts. */
typedef struct {
    ext2_fs_t *fs;
    ext2__wino_t *wi;
    uint64_t end;   /* first logical block to free */
    uint64_t low;   /* every block at or past `low` is free now */
    uint32_t freed; /* data blocks freed by this call */
    bool stopped;   /* the budget ran out: more to do */
} cut_t;

/*
 * Room for one more step: a block freed touches a bitmap and a descriptor block at most, and
 * the call's end may still zero the last block's tail (its map: three indirect blocks).
 */
static bool cut_room(cut_t *c)
{
    if (c->fs->touched_n + 8 > EXT2_CALL_BLOCKS_MAX)
        c->stopped = true;
    return !c->stopped;
}

static int cut_free(cut_t *c, uint32_t b)
{
    int rc = ext2__bfree(c->fs, b);
    if (rc < 0)
        return rc;
    c->wi->in.sectors -=
        c->wi->in.sectors >= c->fs->block_size / 512 ? c->fs->block_size / 512 : c->wi->in.sectors;
    return 0;
}

/* Free what indirect block `b` of height h (it points to height h-1) maps from c->end on. */
static int cut_node(cut_t *c, uint32_t b, int h, uint64_t base)
{
    ext2_fs_t *fs = c->fs;
    uint64_t span = 1;
    for (int i = 1; i < h; i++)
        span *= fs->ptrs;
    if (!cut_room(c))
        return 0;
    for (uint32_t i = fs->ptrs; i-- > 0;) {
        uint64_t cbase = base + i * span;
        if (cbase + span <= c->end)
            break;
        uint32_t v;
        int rc = ptr_get(fs, c->wi->in.ino, b, i, &v);
        if (rc < 0)
            return rc;
        if (v != 0) {
            if (h == 1) {
                if (c->freed == EXT2_FREE_STEP || !cut_room(c)) {
                    c->stopped = true;
                    return 0;
                }
                c->freed++;
            } else {
                if ((rc = cut_node(c, v, h - 1, cbase)) < 0 || c->stopped)
                    return rc;
            }
            /* A child wholly past the end is empty now: free it and its pointer. */
            if (cbase >= c->end) {
                /* The pointer goes first: a block refused as corrupt is lost, never shared. */
                if ((rc = ptr_put(fs, c->wi->in.ino, b, i, 0)) < 0 || (rc = cut_free(c, v)) < 0)
                    return rc;
            }
        }
        c->low = cbase > c->end ? cbase : c->end;
    }
    return 0;
}

/* Free the blocks of the map from c->end on, as far as one call may. */
static int cut_map(cut_t *c)
{
    ext2_fs_t *fs = c->fs;
    ext2_inode_t *in = &c->wi->in;
    uint64_t p = fs->ptrs, base[15], span[15];
    for (int s = 0; s < 12; s++) {
        base[s] = (uint64_t)s;
        span[s] = 1;
    }
    base[12] = 12, span[12] = p;
    base[13] = 12 + p, span[13] = p * p;
    base[14] = 12 + p + p * p, span[14] = p * p * p;
    c->low = ext2__map_blocks(fs);
    for (int s = 14; s >= 0; s--) {
        if (base[s] + span[s] <= c->end)
            break;
        uint32_t b = in->block[s];
        if (b != 0 && !ext2__blk_ok(fs, b))
            return ext2__fail(fs, OS_EIO, "inode %u: i_block[%d] = %u, outside the volume", in->ino,
                              s, b);
        if (b != 0) {
            int rc;
            if (s < 12) {
                if (c->freed == EXT2_FREE_STEP || !cut_room(c)) {
                    c->stopped = true;
                    return 0;
                }
                c->freed++;
            } else if ((rc = cut_node(c, b, s - 11, base[s])) < 0 || c->stopped) {
                return rc;
            }
            /* An indirect block across the new end keeps what lies before it. */
            if (base[s] >= c->end) {
                in->block[s] = 0;
                if ((rc = cut_free(c, b)) < 0)
                    return rc;
            }
        }
        c->low = base[s] > c->end ? base[s] : c->end;
    }
    return 0;
}

static int truncate_(ext2_fs_t *fs, uint32_t ino, uint64_t size, bool *more)
{
    ext2__wino_t wi;
    if (ino < fs->first_ino && ino != EXT2_ROOT_INO)
        return ext2__fail(fs, OS_EINVAL, "inode %u is reserved", ino);
    int rc = ext2__wi_load(fs, ino, &wi, true);
    if (rc < 0)
        return rc;
    ext2_inode_t *in = &wi.in;
    unsigned t = ext2_type(in);
    /* A removed directory (links 0) is emptied the same way before its release. */
    if (t == EXT2_T_DIR && !(in->links == 0 && size == 0))
        return ext2__fail(fs, OS_EISDIR, "inode %u is a directory", ino);
    if (t == EXT2_T_LNK && size != 0)
        return ext2__fail(fs, OS_EINVAL, "symlink inode %u can only be cut to 0", ino);
    if (t != EXT2_T_REG && t != EXT2_T_LNK && t != EXT2_T_DIR)
        return ext2__fail(fs, OS_EINVAL, "inode %u is not a regular file", ino);
    uint64_t bs = fs->block_size;
    if (size > ext2__map_blocks(fs) * bs)
        return ext2__fail(fs, OS_EINVAL, "inode %u: size %llu beyond the block map", ino,
                          (unsigned long long)size);
    in->mtime = in->ctime = fs->now;
    if (t == EXT2_T_LNK && ext2__fast_symlink(fs, in)) {
        /* The target lives in i_block: there is no block to free. */
        memset(in->block, 0, sizeof in->block);
        in->size = 0;
        return ext2__wi_store(fs, &wi);
    }
    if (size >= in->size) {
        if ((rc = ext2__large_file(fs, size)) < 0)
            return rc;
        in->size = size;
        return ext2__wi_store(fs, &wi);
    }
    cut_t c = {.fs = fs, .wi = &wi, .end = (size + bs - 1) / bs};
    rc = cut_map(&c);
    if (rc < 0 || c.stopped) {
        /* Blocks below c.low remain: the size may not cut them off yet. */
        uint64_t keep = c.low * bs;
        if (keep < in->size)
            in->size = keep > size ? keep : size;
        *more = rc == 0;
        /* After a corrupt pointer, the inode still forgets the blocks already freed. */
        int st = rc == OS_EBUSY ? 0 : ext2__wi_store(fs, &wi);
        return rc < 0 ? rc : st;
    }
    /* The last, partial block: bytes past the new end read as zeros if the file grows again. */
    if (size % bs != 0) {
        uint32_t pb;
        if ((rc = ext2_bmap(fs, in, size / bs, &pb)) < 0)
            return rc;
        if (pb != 0 && ((rc = ext2__blk_check(fs, ino, pb, "file data")) < 0 ||
                        (rc = ext2__dev_write(fs, (uint64_t)pb * bs + size % bs, ext2__zeros,
                                              bs - size % bs, EXT2_W_DATA, "file data")) < 0))
            return rc;
    }
    in->size = size;
    return ext2__wi_store(fs, &wi);
}

int ext2_truncate(ext2_fs_t *fs, uint32_t ino, uint64_t size, bool *more)
{
    *more = false;
    int rc = ext2__wbegin(fs);
    if (rc == 0)
        rc = truncate_(fs, ino, size, more);
    if (rc < 0)
        *more = false;
    return ext2__wend(fs, rc);
}

/* ---- release ---------------------------------------------------------------------------- */

#define EA_MAGIC 0xEA020000u

/* Drop the inode's reference to its extended attribute block; free it with the last one. */
static int drop_xattr(ext2_fs_t *fs, ext2__wino_t *wi)
{
    uint32_t b = wi->in.file_acl;
    uint8_t h[8];
    int rc = ext2__blk_check(fs, wi->in.ino, b, "xattr block");
    if (rc == 0)
        rc = ext2__dev_read(fs, (uint64_t)b * fs->block_size, h, sizeof h, "xattr block");
    if (rc < 0)
        return rc;
    uint32_t refs = le32(h + 4);
    if (le32(h) != EA_MAGIC || refs == 0)
        return ext2__fail(fs, OS_EIO, "inode %u: xattr block %u is corrupt", wi->in.ino, b);
    if (refs == 1)
        rc = ext2__bfree(fs, b);
    else {
        put32(h + 4, refs - 1);
        rc = ext2__dev_write(fs, (uint64_t)b * fs->block_size + 4, h + 4, 4, EXT2_W_META,
                             "xattr block");
    }
    wi->in.file_acl = 0;
    wi->in.sectors = 0;
    return rc;
}

static int release_(ext2_fs_t *fs, uint32_t ino)
{
    ext2__wino_t wi;
    int rc;
    if (ino < fs->first_ino)
        return ext2__fail(fs, OS_EINVAL, "inode %u is reserved", ino);
    if ((rc = ext2__wi_load(fs, ino, &wi, true)) < 0)
        return rc;
    ext2_inode_t *in = &wi.in;
    if (in->links != 0)
        return ext2__fail(fs, OS_EINVAL, "inode %u still has %u links", ino, in->links);
    bool fast = ext2__fast_symlink(fs, in);
    uint32_t acl = in->file_acl ? fs->block_size / 512 : 0;
    for (int i = 0; i < EXT2_N_BLOCKS && !fast; i++)
        if (in->block[i] != 0)
            return ext2__fail(fs, OS_EINVAL, "inode %u still holds blocks (truncate it first)",
                              ino);
    if (in->sectors != acl)
        return ext2__fail(fs, OS_EIO, "inode %u: %u sectors with no block mapped", ino,
                          in->sectors);
    /* The bitmap first: an inode already free (released twice) is refused unchanged. */
    if ((rc = ext2__ifree(fs, ino, ext2_type(in) == EXT2_T_DIR)) < 0)
        return rc;
    if (in->file_acl && (rc = drop_xattr(fs, &wi)) < 0)
        return rc;
    memset(in->block, 0, sizeof in->block);
    in->size = 0;
    put32(wi.raw + 20, fs->now ? fs->now : 1); /* dtime: a deleted inode's mark */
    return ext2__wi_store(fs, &wi);
}

int ext2_release(ext2_fs_t *fs, uint32_t ino)
{
    int rc = ext2__wbegin(fs);
    if (rc == 0)
        rc = release_(fs, ino);
    return ext2__wend(fs, rc);
}
