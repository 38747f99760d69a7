/* ext2.c — the ext2 on-disk format, read side: superblock, groups, inodes, block map, dirs. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <os/errno.h>

#include "ext2.h"
#include "ext2_priv.h"

#define EXT4_EXTENTS_FL 0x80000
#define EXT4_INLINE_DATA_FL 0x10000000

typedef struct {
    uint32_t bit;
    const char *name;
} feat_t;

/* Incompatible features: the library can read a volume only if it knows all of them. */
#define INCOMPAT_OK (INCOMPAT_FILETYPE | INCOMPAT_FLEX_BG)
static const feat_t incompat_names[] = {
    {0x1, "compression"},  {0x2, "filetype"},       {0x4, "needs_recovery"}, {0x8, "journal_dev"},
    {0x10, "meta_bg"},     {0x40, "extents"},       {0x80, "64bit"},         {0x100, "mmp"},
    {0x200, "flex_bg"},    {0x400, "ea_inode"},     {0x1000, "dirdata"},     {0x2000, "csum_seed"},
    {0x4000, "large_dir"}, {0x8000, "inline_data"}, {0x10000, "encrypt"},    {0x20000, "casefold"},
};
/* Read-only-compatible features ext2 itself defines; any other one forbids writing. */
#define RO_COMPAT_EXT2 (RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE)
static const feat_t ro_compat_names[] = {
    {0x1, "sparse_super"}, {0x2, "large_file"},      {0x4, "btree_dir"},    {0x8, "huge_file"},
    {0x10, "uninit_bg"},   {0x20, "dir_nlink"},      {0x40, "extra_isize"}, {0x100, "quota"},
    {0x200, "bigalloc"},   {0x400, "metadata_csum"}, {0x1000, "readonly"},  {0x2000, "project"},
    {0x8000, "verity"},
};

int ext2__fail(ext2_fs_t *fs, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fs->why, sizeof fs->why, fmt, ap);
    va_end(ap);
    return err;
}

/* Append the names of the bits of `set` to buf ("a, b, 0x4000"). */
static void feat_list(char *buf, size_t cap, uint32_t set, const feat_t *names, size_t n)
{
    size_t used = strlen(buf);
    for (uint32_t bit = 1; bit != 0; bit <<= 1) {
        if (!(set & bit))
            continue;
        const char *name = NULL;
        for (size_t i = 0; i < n; i++)
            if (names[i].bit == bit)
                name = names[i].name;
        int w = name ? snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", name)
                     : snprintf(buf + used, cap - used, "%s0x%x", used ? ", " : "", bit);
        if (w < 0 || (size_t)w >= cap - used)
            return;
        used += (size_t)w;
    }
}

int ext2__dev_read(ext2_fs_t *fs, uint64_t off, void *buf, size_t len, const char *what)
{
    if (off > fs->dev_size || len > fs->dev_size - off)
        return ext2__fail(fs, OS_EIO, "%s: bytes %llu+%zu past the device's end", what,
                          (unsigned long long)off, len);
    int rc = ext2__touch(fs, off, len);
    if (rc < 0)
        return rc;
    rc = fs->read(fs->arg, off, buf, len);
    /* Not there yet: the caller fetches it and runs the whole operation again. */
    if (rc == OS_EBUSY)
        return ext2__fail(fs, OS_EBUSY, "%s: bytes %llu+%zu not cached yet", what,
                          (unsigned long long)off, len);
    if (rc < 0)
        return ext2__fail(fs, OS_EIO, "%s: device read at byte %llu failed (%s)", what,
                          (unsigned long long)off, os_errname(rc));
    return 0;
}

static int check_super(ext2_fs_t *fs, const uint8_t *sb)
{
    if (le16(sb + 56) != EXT2_MAGIC)
        return ext2__fail(fs, OS_EINVAL, "superblock: bad magic 0x%04x (not ext2)", le16(sb + 56));
    fs->rev = le32(sb + 76);
    if (fs->rev > 1)
        return ext2__fail(fs, OS_EINVAL, "superblock: unknown revision %u", fs->rev);
    uint32_t log = le32(sb + 24);
    if (log > 2)
        return ext2__fail(fs, OS_EINVAL, "superblock: block size 1024<<%u over the %u limit", log,
                          EXT2_BLOCK_MAX);
    fs->block_size = 1024u << log;
    fs->ptrs = fs->block_size / 4;
    fs->inodes_count = le32(sb + 0);
    fs->blocks_count = le32(sb + 4);
    fs->first_data_block = le32(sb + 20);
    fs->blocks_per_group = le32(sb + 32);
    fs->inodes_per_group = le32(sb + 40);
    if (fs->first_data_block != (fs->block_size == 1024 ? 1u : 0u))
        return ext2__fail(fs, OS_EINVAL, "superblock: first data block %u wrong for %u-byte blocks",
                          fs->first_data_block, fs->block_size);
    if (fs->blocks_per_group == 0 || fs->blocks_per_group > 8 * fs->block_size)
        return ext2__fail(fs, OS_EINVAL, "superblock: %u blocks per group", fs->blocks_per_group);
    if (fs->inodes_per_group == 0 || fs->inodes_per_group > 8 * fs->block_size)
        return ext2__fail(fs, OS_EINVAL, "superblock: %u inodes per group", fs->inodes_per_group);
    if (fs->blocks_count <= fs->first_data_block + 1)
        return ext2__fail(fs, OS_EINVAL, "superblock: %u blocks", fs->blocks_count);
    if ((uint64_t)fs->blocks_count * fs->block_size > fs->dev_size)
        return ext2__fail(fs, OS_EINVAL,
                          "superblock: %u blocks of %u bytes exceed the %llu-byte device",
                          fs->blocks_count, fs->block_size, (unsigned long long)fs->dev_size);
    fs->groups =
        (fs->blocks_count - fs->first_data_block + fs->blocks_per_group - 1) / fs->blocks_per_group;
    if ((uint64_t)fs->groups * fs->inodes_per_group != fs->inodes_count)
        return ext2__fail(fs, OS_EINVAL, "superblock: %u inodes, but %u groups of %u",
                          fs->inodes_count, fs->groups, fs->inodes_per_group);
    if (fs->rev == 0) {
        fs->inode_size = 128;
        fs->first_ino = 11;
        fs->feat_compat = fs->feat_incompat = fs->feat_ro_compat = 0;
    } else {
        fs->inode_size = le16(sb + 88);
        fs->first_ino = le32(sb + 84);
        fs->feat_compat = le32(sb + 92);
        fs->feat_incompat = le32(sb + 96);
        fs->feat_ro_compat = le32(sb + 100);
    }
    uint32_t isz = fs->inode_size;
    if (isz < INODE_BASE || isz > fs->block_size || (isz & (isz - 1)) != 0)
        return ext2__fail(fs, OS_EINVAL, "superblock: inode size %u", isz);
    if (fs->first_ino <= EXT2_ROOT_INO || fs->first_ino > fs->inodes_count)
        return ext2__fail(fs, OS_EINVAL, "superblock: first inode %u", fs->first_ino);
    uint32_t bad = fs->feat_incompat & ~(uint32_t)INCOMPAT_OK;
    if (bad) {
        char names[EXT2_WHY_MAX] = "";
        feat_list(names, sizeof names - 40, bad, incompat_names,
                  sizeof incompat_names / sizeof incompat_names[0]);
        return ext2__fail(fs, OS_ENOTSUP, "superblock: unsupported incompatible features: %s",
                          names);
    }
    /* The group descriptor table follows the superblock's block and must fit the volume. */
    fs->gdt_block = fs->first_data_block + 1;
    uint64_t gdt_blocks = ((uint64_t)fs->groups * GD_SIZE + fs->block_size - 1) / fs->block_size;
    if (fs->gdt_block + gdt_blocks > fs->blocks_count)
        return ext2__fail(fs, OS_EINVAL, "superblock: %u group descriptors overrun the volume",
                          fs->groups);
    return 0;
}

/* Why a volume is read-only, beyond this library having no write side yet. */
static void note_read_only(ext2_fs_t *fs)
{
    fs->ro_note[0] = '\0';
    char names[EXT2_WHY_MAX - 40] = "";
    if (fs->feat_compat & COMPAT_HAS_JOURNAL)
        strcpy(names, "has_journal");
    feat_list(names, sizeof names, fs->feat_ro_compat & ~(uint32_t)RO_COMPAT_EXT2, ro_compat_names,
              sizeof ro_compat_names / sizeof ro_compat_names[0]);
    if (names[0])
        snprintf(fs->ro_note, sizeof fs->ro_note, "read-only: ext3/4 features %s", names);
}

int ext2__group(ext2_fs_t *fs, uint32_t g, ext2__gd_t *out)
{
    uint8_t gd[GD_SIZE];
    int rc = ext2__dev_read(fs, (uint64_t)fs->gdt_block * fs->block_size + (uint64_t)g * GD_SIZE,
                            gd, sizeof gd, "group descriptor");
    if (rc < 0)
        return rc;
    uint32_t bb = le32(gd + 0), ib = le32(gd + 4), it = le32(gd + 8);
    uint64_t it_blocks =
        ((uint64_t)fs->inodes_per_group * fs->inode_size + fs->block_size - 1) / fs->block_size;
    if (!ext2__blk_ok(fs, bb) || !ext2__blk_ok(fs, ib))
        return ext2__fail(fs, OS_EIO, "group %u: bitmap block %u/%u outside the volume", g, bb, ib);
    if (!ext2__blk_ok(fs, it) || it + it_blocks > fs->blocks_count)
        return ext2__fail(fs, OS_EIO, "group %u: inode table at block %u outside the volume", g,
                          it);
    if (le16(gd + 12) > fs->blocks_per_group || le16(gd + 14) > fs->inodes_per_group)
        return ext2__fail(fs, OS_EIO, "group %u: free counts %u/%u over the group's size", g,
                          le16(gd + 12), le16(gd + 14));
    *out = (ext2__gd_t){.block_bitmap = bb,
                        .inode_bitmap = ib,
                        .inode_table = it,
                        .free_blocks = le16(gd + 12),
                        .free_inodes = le16(gd + 14),
                        .used_dirs = le16(gd + 16)};
    return 0;
}

int ext2__touch(ext2_fs_t *fs, uint64_t off, size_t len)
{
    if (!fs->track || len == 0)
        return 0;
    for (uint64_t b = off / fs->block_size; b <= (off + len - 1) / fs->block_size; b++) {
        uint32_t i = 0;
        while (i < fs->touched_n && fs->touched[i] != b)
            i++;
        if (i < fs->touched_n)
            continue;
        if (fs->touched_n == EXT2_CALL_BLOCKS_MAX)
            return ext2__fail(fs, OS_ENOTSUP,
                              "the operation needs more than %u blocks at once (a directory "
                              "too large to change?)",
                              EXT2_CALL_BLOCKS_MAX);
        fs->touched[fs->touched_n++] = (uint32_t)b;
    }
    return 0;
}

int ext2_mount(ext2_fs_t *fs, ext2_read_fn read, void *arg, uint64_t dev_size)
{
    memset(fs, 0, sizeof *fs);
    fs->read = read;
    fs->arg = arg;
    fs->dev_size = dev_size;
    uint8_t sb[SB_SIZE];
    int rc = ext2__dev_read(fs, SB_OFFSET, sb, sizeof sb, "superblock");
    if (rc < 0)
        return rc;
    if ((rc = check_super(fs, sb)) < 0)
        return rc;
    for (uint32_t g = 0; g < fs->groups; g++) {
        ext2__gd_t gd;
        if ((rc = ext2__group(fs, g, &gd)) < 0)
            return rc;
    }
    note_read_only(fs);
    ext2_inode_t root;
    if ((rc = ext2_iget(fs, EXT2_ROOT_INO, &root)) < 0)
        return rc;
    if (ext2_type(&root) != EXT2_T_DIR)
        return ext2__fail(fs, OS_EIO, "inode 2 (the root) is not a directory (mode 0%o)",
                          root.mode);
    fs->why[0] = '\0';
    return 0;
}

const char *ext2_why(const ext2_fs_t *fs)
{
    return fs->why;
}

int ext2__inode_off(ext2_fs_t *fs, uint32_t ino, uint64_t *off)
{
    if (ino == 0 || ino > fs->inodes_count)
        return ext2__fail(fs, OS_EINVAL, "inode %u out of range 1..%u", ino, fs->inodes_count);
    uint32_t g = (ino - 1) / fs->inodes_per_group, idx = (ino - 1) % fs->inodes_per_group;
    ext2__gd_t gd;
    int rc = ext2__group(fs, g, &gd);
    if (rc < 0)
        return rc;
    *off = (uint64_t)gd.inode_table * fs->block_size + (uint64_t)idx * fs->inode_size;
    return 0;
}

int ext2_iget(ext2_fs_t *fs, uint32_t ino, ext2_inode_t *out)
{
    uint64_t off;
    int rc = ext2__inode_off(fs, ino, &off);
    if (rc < 0)
        return rc;
    uint8_t raw[INODE_BASE];
    if ((rc = ext2__dev_read(fs, off, raw, sizeof raw, "inode")) < 0)
        return rc;
    return ext2__decode(fs, ino, raw, false, out);
}

int ext2__decode(ext2_fs_t *fs, uint32_t ino, const uint8_t *raw, bool unlinked, ext2_inode_t *out)
{
    memset(out, 0, sizeof *out);
    out->ino = ino;
    out->mode = le16(raw + 0);
    out->uid = le16(raw + 2) | (uint32_t)le16(raw + 120) << 16;
    out->gid = le16(raw + 24) | (uint32_t)le16(raw + 122) << 16;
    out->atime = le32(raw + 8);
    out->ctime = le32(raw + 12);
    out->mtime = le32(raw + 16);
    out->links = le16(raw + 26);
    out->sectors = le32(raw + 28);
    out->flags = le32(raw + 32);
    out->file_acl = le32(raw + 104);
    for (int i = 0; i < EXT2_N_BLOCKS; i++)
        out->block[i] = le32(raw + 40 + 4 * i);
    out->size = le32(raw + 4);
    unsigned t = ext2_type(out);
    /* i_size_high (i_dir_acl in revision 0) counts only for regular files. */
    if (t == EXT2_T_REG)
        out->size |= (uint64_t)le32(raw + 108) << 32;
    if (out->links == 0 && !unlinked)
        return ext2__fail(fs, OS_EIO, "inode %u is not in use (0 links)", ino);
    if (t != EXT2_T_FIFO && t != EXT2_T_CHR && t != EXT2_T_DIR && t != EXT2_T_BLK &&
        t != EXT2_T_REG && t != EXT2_T_LNK && t != EXT2_T_SOCK)
        return ext2__fail(fs, OS_EIO, "inode %u: bad mode 0%o", ino, out->mode);
    if (out->flags & EXT4_EXTENTS_FL)
        return ext2__fail(fs, OS_EIO, "inode %u uses extents (an ext4 feature)", ino);
    if (out->flags & EXT4_INLINE_DATA_FL)
        return ext2__fail(fs, OS_EIO, "inode %u uses inline data (an ext4 feature)", ino);
    if (out->size > ext2__map_blocks(fs) * fs->block_size)
        return ext2__fail(fs, OS_EIO, "inode %u: size %llu beyond its block map", ino,
                          (unsigned long long)out->size);
    if (t == EXT2_T_DIR && out->size % fs->block_size != 0)
        return ext2__fail(fs, OS_EIO,
                          "inode %u: directory size %llu not a multiple of the block size", ino,
                          (unsigned long long)out->size);
    /* Bounds the time a scan of a (corrupt) directory can take. */
    if (t == EXT2_T_DIR && (out->size > EXT2_DIR_MAX || out->size > (uint64_t)out->sectors * 512))
        return ext2__fail(fs, OS_EIO,
                          "inode %u: directory size %llu over its %u sectors or the %u limit", ino,
                          (unsigned long long)out->size, out->sectors, EXT2_DIR_MAX);
    /* A symlink being freed was cut to 0 bytes first. */
    if (t == EXT2_T_LNK && ((out->size == 0 && !unlinked) || out->size > EXT2_PATH_MAX))
        return ext2__fail(fs, OS_EIO, "inode %u: symlink length %llu", ino,
                          (unsigned long long)out->size);
    return 0;
}

/* Follow one pointer of indirect block `ind` (checked by the caller) at index `idx`. */
static int ind_read(ext2_fs_t *fs, const ext2_inode_t *in, uint32_t ind, uint64_t idx,
                    uint64_t lblk, uint32_t *next)
{
    uint8_t b[4];
    int rc = ext2__dev_read(fs, (uint64_t)ind * fs->block_size + idx * 4, b, 4, "indirect block");
    if (rc < 0)
        return rc;
    *next = le32(b);
    if (*next != 0 && !ext2__blk_ok(fs, *next))
        return ext2__fail(fs, OS_EIO, "inode %u: block %llu maps to %u, outside the volume",
                          in->ino, (unsigned long long)lblk, *next);
    return 0;
}

int ext2_bmap(ext2_fs_t *fs, const ext2_inode_t *in, uint64_t lblk, uint32_t *pblk)
{
    uint64_t p = fs->ptrs, rel = lblk;
    uint32_t b;
    int depth;
    *pblk = 0;
    if (rel < 12) {
        b = in->block[rel];
        depth = 0;
    } else if ((rel -= 12) < p) {
        b = in->block[12];
        depth = 1;
    } else if ((rel -= p) < p * p) {
        b = in->block[13];
        depth = 2;
    } else if ((rel -= p * p) < p * p * p) {
        b = in->block[14];
        depth = 3;
    } else {
        return ext2__fail(fs, OS_EIO, "inode %u: block %llu past the block map", in->ino,
                          (unsigned long long)lblk);
    }
    if (b != 0 && !ext2__blk_ok(fs, b))
        return ext2__fail(fs, OS_EIO, "inode %u: block %llu maps to %u, outside the volume",
                          in->ino, (unsigned long long)lblk, b);
    /* Each level divides what is left of the index by ptrs: depth bounds the walk. */
    for (int level = depth - 1; level >= 0 && b != 0; level--) {
        uint64_t span = 1;
        for (int i = 0; i < level; i++)
            span *= p;
        int rc = ind_read(fs, in, b, rel / span, lblk, &b);
        if (rc < 0)
            return rc;
        rel %= span;
    }
    *pblk = b;
    return 0;
}

int ext2_read(ext2_fs_t *fs, const ext2_inode_t *in, uint64_t off, void *buf, size_t len,
              size_t *got)
{
    *got = 0;
    if (off >= in->size)
        return 0;
    if (len > in->size - off)
        len = (size_t)(in->size - off);
    uint8_t *dst = buf;
    while (*got < len) {
        uint64_t pos = off + *got;
        uint64_t lblk = pos / fs->block_size;
        uint32_t in_blk = (uint32_t)(pos % fs->block_size);
        size_t n = fs->block_size - in_blk;
        if (n > len - *got)
            n = len - *got;
        uint32_t pblk;
        int rc = ext2_bmap(fs, in, lblk, &pblk);
        if (rc < 0)
            return rc;
        if (pblk == 0) {
            memset(dst + *got, 0, n);
        } else {
            rc = ext2__dev_read(fs, (uint64_t)pblk * fs->block_size + in_blk, dst + *got, n,
                                "file data");
            if (rc < 0)
                return rc;
        }
        *got += n;
    }
    return 0;
}

int ext2__scratch_load(ext2_fs_t *fs, uint32_t pblk)
{
    if (pblk == fs->scratch_blk)
        return 0;
    fs->scratch_blk = 0;
    int rc = ext2__dev_read(fs, (uint64_t)pblk * fs->block_size, fs->scratch, fs->block_size,
                            "directory block");
    if (rc < 0)
        return rc;
    fs->scratch_blk = pblk;
    return 0;
}

/* Load directory block `lblk` of `dir` into the scratch block. */
static int dir_block(ext2_fs_t *fs, const ext2_inode_t *dir, uint64_t lblk)
{
    uint32_t pblk;
    int rc = ext2_bmap(fs, dir, lblk, &pblk);
    if (rc < 0)
        return rc;
    if (pblk == 0)
        return ext2__fail(fs, OS_EIO, "directory inode %u: hole at block %llu", dir->ino,
                          (unsigned long long)lblk);
    return ext2__scratch_load(fs, pblk);
}

int ext2_dir_next(ext2_fs_t *fs, const ext2_inode_t *dir, uint64_t *pos, ext2_dirent_t *out)
{
    if (ext2_type(dir) != EXT2_T_DIR)
        return ext2__fail(fs, OS_EINVAL, "inode %u is not a directory", dir->ino);
    bool typed = (fs->feat_incompat & INCOMPAT_FILETYPE) != 0;
    while (*pos < dir->size) {
        if (*pos % 4 != 0)
            return ext2__fail(fs, OS_EINVAL, "directory inode %u: position %llu not aligned",
                              dir->ino, (unsigned long long)*pos);
        uint64_t lblk = *pos / fs->block_size;
        uint32_t o = (uint32_t)(*pos % fs->block_size);
        int rc = dir_block(fs, dir, lblk);
        if (rc < 0)
            return rc;
        const uint8_t *e = fs->scratch + o;
        if (o + 8 > fs->block_size)
            return ext2__fail(fs, OS_EIO,
                              "directory inode %u: entry header at %llu crosses a block", dir->ino,
                              (unsigned long long)*pos);
        uint32_t ino = le32(e), rec = le16(e + 4);
        uint32_t nlen = typed ? e[6] : le16(e + 6);
        /* rec_len >= 8 makes every step advance: iteration always ends. */
        if (rec < 8 || rec % 4 != 0 || o + rec > fs->block_size)
            return ext2__fail(fs, OS_EIO, "directory inode %u: entry at %llu has rec_len %u",
                              dir->ino, (unsigned long long)*pos, rec);
        if (ino != 0 && (nlen == 0 || nlen > EXT2_NAME_MAX || 8 + nlen > rec))
            return ext2__fail(fs, OS_EIO, "directory inode %u: entry at %llu has name_len %u",
                              dir->ino, (unsigned long long)*pos, nlen);
        if (ino > fs->inodes_count)
            return ext2__fail(fs, OS_EIO, "directory inode %u: entry at %llu names inode %u",
                              dir->ino, (unsigned long long)*pos, ino);
        uint64_t at = *pos;
        *pos += rec;
        if (ino == 0)
            continue;
        if (memchr(e + 8, '/', nlen) || memchr(e + 8, '\0', nlen))
            return ext2__fail(fs, OS_EIO,
                              "directory inode %u: entry at %llu has a '/' or NUL in its name",
                              dir->ino, (unsigned long long)at);
        out->ino = ino;
        out->name_len = (uint8_t)nlen;
        memcpy(out->name, e + 8, nlen);
        out->name[nlen] = '\0';
        out->type = 0;
        if (typed) {
            static const uint8_t ft[8] = {0,          EXT2_T_REG,  EXT2_T_DIR,  EXT2_T_CHR,
                                          EXT2_T_BLK, EXT2_T_FIFO, EXT2_T_SOCK, EXT2_T_LNK};
            if (e[7] >= 8)
                return ext2__fail(fs, OS_EIO, "directory inode %u: entry at %llu has file type %u",
                                  dir->ino, (unsigned long long)at, e[7]);
            out->type = ft[e[7]];
        }
        return 1;
    }
    return 0;
}

int ext2_dir_lookup(ext2_fs_t *fs, const ext2_inode_t *dir, const char *name, size_t len,
                    uint32_t *ino)
{
    ext2_dirent_t d;
    uint64_t pos = 0;
    int rc;
    if (len == 0 || len > EXT2_NAME_MAX)
        return ext2__fail(fs, OS_EINVAL, "name of %zu bytes (1..%u allowed)", len, EXT2_NAME_MAX);
    while ((rc = ext2_dir_next(fs, dir, &pos, &d)) == 1) {
        if (d.name_len == len && memcmp(d.name, name, len) == 0) {
            *ino = d.ino;
            return 0;
        }
    }
    if (rc < 0)
        return rc;
    return ext2__fail(fs, OS_ENOENT, "'%.*s' not found in directory inode %u", (int)len, name,
                      dir->ino);
}

int ext2_readlink(ext2_fs_t *fs, const ext2_inode_t *in, char *buf, size_t cap)
{
    if (ext2_type(in) != EXT2_T_LNK)
        return ext2__fail(fs, OS_EINVAL, "inode %u is not a symlink", in->ino);
    if (in->size >= cap)
        return ext2__fail(fs, OS_EINVAL, "inode %u: symlink of %llu bytes over the %zu-byte buffer",
                          in->ino, (unsigned long long)in->size, cap);
    size_t n = (size_t)in->size;
    /* A fast symlink keeps its target in the block map when it owns no data block. */
    uint32_t acl = in->file_acl ? fs->block_size / 512 : 0;
    if (in->sectors == acl && n < sizeof in->block) {
        uint8_t raw[sizeof in->block];
        for (int i = 0; i < EXT2_N_BLOCKS; i++)
            for (int k = 0; k < 4; k++)
                raw[4 * i + k] = (uint8_t)(in->block[i] >> (8 * k));
        memcpy(buf, raw, n);
    } else {
        size_t got;
        int rc = ext2_read(fs, in, 0, buf, n, &got);
        if (rc < 0)
            return rc;
    }
    buf[n] = '\0';
    if (strlen(buf) != n)
        return ext2__fail(fs, OS_EIO, "inode %u: symlink target holds a NUL", in->ino);
    return 0;
}

int ext2_lookup(ext2_fs_t *fs, const char *path, bool follow, ext2_inode_t *out)
{
    size_t plen = strlen(path);
    if (plen > EXT2_PATH_MAX)
        return ext2__fail(fs, OS_EINVAL, "path of %zu bytes over the %u limit", plen,
                          EXT2_PATH_MAX);
    int cur = 0, links = 0, rc;
    memcpy(fs->path[cur], path, plen + 1);
    const char *p = fs->path[cur];
    ext2_inode_t dir, node;
    if ((rc = ext2_iget(fs, EXT2_ROOT_INO, &dir)) < 0)
        return rc;
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0') {
            *out = dir;
            return 0;
        }
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (ext2_type(&dir) != EXT2_T_DIR)
            return ext2__fail(fs, OS_EINVAL, "'%.*s': inode %u on the way is not a directory",
                              (int)len, p, dir.ino);
        uint32_t ino;
        if ((rc = ext2_dir_lookup(fs, &dir, p, len, &ino)) < 0)
            return rc;
        if ((rc = ext2_iget(fs, ino, &node)) < 0)
            return rc;
        const char *rest = p + len;
        while (*rest == '/')
            rest++;
        bool last = *rest == '\0';
        if (ext2_type(&node) == EXT2_T_LNK && (!last || follow)) {
            if (++links > EXT2_SYMLINK_MAX)
                return ext2__fail(fs, OS_EINVAL, "more than %u symlinks in a path",
                                  EXT2_SYMLINK_MAX);
            /* New path = target "/" rest, built in the other buffer. */
            int nxt = 1 - cur;
            char *np = fs->path[nxt];
            if ((rc = ext2_readlink(fs, &node, np, EXT2_PATH_MAX + 1)) < 0)
                return rc;
            size_t tl = strlen(np), rl = strlen(rest);
            if (tl + 1 + rl > EXT2_PATH_MAX)
                return ext2__fail(fs, OS_EINVAL, "path over %u bytes after symlink inode %u",
                                  EXT2_PATH_MAX, node.ino);
            np[tl] = '/';
            memcpy(np + tl + 1, rest, rl + 1);
            cur = nxt;
            p = np;
            /* An absolute target restarts at the root; a relative one stays in `dir`. */
            if (*p == '/' && (rc = ext2_iget(fs, EXT2_ROOT_INO, &dir)) < 0)
                return rc;
            continue;
        }
        if (last) {
            *out = node;
            return 0;
        }
        dir = node;
        p = rest;
    }
}
