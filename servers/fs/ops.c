/* ops.c — the fs server's requests: decode, path walk, and each message of the fs interface
 * run in steps that a cache miss can restart. */
#include <stdio.h>
#include <string.h>

#include <iface/init_client.h>

#include "fs_priv.h"

/* ---- answers ------------------------------------------------------------------------- */

void fs_answer(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r, int status)
{
    (void)st;
    if (r->chan == OS_HANDLE_NONE)
        return;
    fs_reply_t m = {.req = r->m.read.req, .status = status};
    fs_reply_send(ctx, r->chan, &m); /* a client that does not read its answers loses them */
}

/* Answer reply{req, rc}; an OS_EIO from the library is logged with its reason (inode, block). */
static int answer(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r, int rc)
{
    if (rc == OS_EIO && st->mounted && st->fs.why[0])
        os_log(ctx, "%s", st->fs.why);
    fs_answer(ctx, st, r, rc);
    return 0;
}

/* ---- decode -------------------------------------------------------------------------- */

int fs_decode(fs_state_t *st, fs_req_t *r, const os_event_t *ev)
{
    int rc = OS_EPROTO;
    if (r->client >= 0) {
        r->ro = st->clients[r->client].ro;
        switch (ev->type) {
        case fs_msg_open:
            rc = fs_open_decode(ev, &r->m.open);
            break;
        case fs_msg_mkdir:
            rc = fs_mkdir_decode(ev, &r->m.mkdir);
            break;
        case fs_msg_unlink:
            rc = fs_unlink_decode(ev, &r->m.unlink);
            break;
        case fs_msg_rmdir:
            rc = fs_rmdir_decode(ev, &r->m.rmdir);
            break;
        case fs_msg_rename:
            rc = fs_rename_decode(ev, &r->m.rename);
            break;
        case fs_msg_symlink:
            rc = fs_symlink_decode(ev, &r->m.symlink);
            break;
        case fs_msg_statfs:
            rc = fs_statfs_decode(ev, &r->m.statfs);
            break;
        case fs_msg_sync:
            rc = fs_sync_decode(ev, &r->m.sync);
            break;
        default:
            break;
        }
    } else {
        fs_file_t *f = &st->files[r->file];
        r->ro = f->ro;
        r->fino = f->ino;
        r->fflags = f->flags;
        switch (ev->type) {
        case fs_msg_read:
            rc = fs_read_decode(ev, &r->m.read);
            break;
        case fs_msg_write:
            rc = fs_write_decode(ev, &r->m.write);
            break;
        case fs_msg_stat:
            rc = fs_stat_decode(ev, &r->m.stat);
            break;
        case fs_msg_readdir:
            rc = fs_readdir_decode(ev, &r->m.readdir);
            break;
        case fs_msg_truncate:
            rc = fs_truncate_decode(ev, &r->m.truncate);
            break;
        case fs_msg_fsync:
            rc = fs_fsync_decode(ev, &r->m.fsync);
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        return OS_EPROTO;
    r->type = ev->type;
    return 0;
}

/* ---- orphans ------------------------------------------------------------------------- */

static bool ino_open(const fs_state_t *st, uint32_t ino)
{
    for (int i = 0; i < FS_FILES_MAX; i++)
        if (st->files[i].chan != OS_HANDLE_NONE && st->files[i].ino == ino)
            return true;
    return false;
}

static fs_orphan_t *orphan(fs_state_t *st, uint32_t ino)
{
    for (int i = 0; i < FS_ORPHANS_MAX; i++)
        if (st->orphans[i].ino == ino && ino != 0)
            return &st->orphans[i];
    return NULL;
}

void fs_orphan_closed(fs_state_t *st, uint32_t ino)
{
    fs_orphan_t *o = orphan(st, ino);
    if (o && !ino_open(st, ino))
        o->closed = true;
}

uint32_t fs_orphan_take(fs_state_t *st)
{
    for (int i = 0; i < FS_ORPHANS_MAX; i++) {
        fs_orphan_t *o = &st->orphans[i];
        if (o->ino && o->closed) {
            uint32_t ino = o->ino;
            o->ino = 0;
            o->closed = false;
            return ino;
        }
    }
    return 0;
}

/* The inode behind a file channel: an orphan's kept copy, else read from the volume. */
static int file_inode(fs_state_t *st, uint32_t ino, ext2_inode_t *out)
{
    fs_orphan_t *o = orphan(st, ino);
    if (o) {
        *out = o->node;
        return 0;
    }
    return ext2_iget(&st->fs, ino, out);
}

/* ---- steps ----------------------------------------------------------------------------- */

/* A write-side call that succeeded: the request moved on, what it pinned may go. */
static void committed(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    r->restarts = 0;
    fs_step(st);
    fs_changed(ctx, st);
}

/* Free an inode whose links reached 0 (r->ino): truncate in steps, then release. Stage
 * `from` on; returns 0 when done, OS_EBUSY, or an error. */
static int free_inode(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    bool more = true;
    while (more) {
        fs_call_begin(st);
        int rc = fs_call_end(st, ext2_truncate(&st->fs, r->ino, 0, &more));
        if (rc < 0)
            return rc;
        committed(ctx, st, r);
    }
    fs_call_begin(st);
    int rc = fs_call_end(st, ext2_release(&st->fs, r->ino));
    if (rc < 0)
        return rc;
    committed(ctx, st, r);
    return 0;
}

/* After a name went (r->ino, r->gone): free the inode now, or at its last close. */
static int after_remove(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r, const ext2_inode_t *node)
{
    if (!r->gone)
        return 0;
    if (ino_open(st, r->ino)) {
        for (int i = 0; i < FS_ORPHANS_MAX; i++) {
            if (st->orphans[i].ino == 0) {
                st->orphans[i] = (fs_orphan_t){.ino = r->ino, .node = *node};
                st->orphans[i].node.links = 0;
                return 0;
            }
        }
        /* cannot happen: every orphan holds an open file, and files are as many */
    }
    return free_inode(ctx, st, r);
}

/* May this request change the volume? 0, OS_EACCES (a read-only client), OS_EROFS. */
static int may_change(const fs_state_t *st, const fs_req_t *r)
{
    if (r->ro)
        return OS_EACCES;
    if (!st->mounted)
        return OS_EIO;
    if (!st->rw)
        return OS_EROFS;
    return 0;
}

/* ---- paths --------------------------------------------------------------------------- */

/*
 * Walk path from the root: empty parts and "." skipped, ".." through the directory's own
 * entry, symlinks on the way followed (the last one too if follow), at most
 * EXT2_SYMLINK_MAX. The last name need not exist (p->found). OS_ENOENT (a directory on the
 * way is missing), OS_ENOTDIR, OS_ENAMETOOLONG, OS_EINVAL (too many symlinks), OS_EIO.
 */
static int resolve(fs_state_t *st, const char *path, bool follow, fs_path_t *p)
{
    ext2_fs_t *fs = &st->fs;
    int cur = 0, links = 0, rc;
    size_t plen = strlen(path);
    if (plen > FS_PATH_MAX)
        return OS_ENAMETOOLONG;
    memcpy(st->pbuf[0], path, plen + 1);
    const char *s = st->pbuf[0];
    ext2_inode_t dir, node;
    if ((rc = ext2_iget(fs, EXT2_ROOT_INO, &dir)) < 0)
        return rc;
    for (;;) {
        while (*s == '/')
            s++;
        if (*s == '\0') {
            *p = (fs_path_t){.dir = dir.ino, .len = 0, .found = true, .node = dir};
            return 0;
        }
        const char *end = strchr(s, '/');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *rest = s + len;
        while (*rest == '/')
            rest++;
        bool last = *rest == '\0';
        if (len > EXT2_NAME_MAX)
            return OS_ENAMETOOLONG;
        if (ext2_type(&dir) != EXT2_T_DIR)
            return OS_ENOTDIR;
        if (len == 1 && s[0] == '.') {
            s = rest;
            continue;
        }
        uint32_t ino;
        rc = ext2_dir_lookup(fs, &dir, s, len, &ino);
        if (rc == OS_ENOENT && last) {
            p->dir = dir.ino;
            memcpy(p->name, s, len);
            p->name[len] = '\0';
            p->len = len;
            p->found = false;
            return 0;
        }
        if (rc < 0)
            return rc;
        if ((rc = ext2_iget(fs, ino, &node)) < 0)
            return rc;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            dir = node; /* ".." names a directory itself, never a name to change */
            s = rest;
            continue;
        }
        if (ext2_type(&node) == EXT2_T_LNK && (!last || follow)) {
            if (++links > EXT2_SYMLINK_MAX)
                return OS_EINVAL;
            int nxt = 1 - cur;
            char *np = st->pbuf[nxt];
            if ((rc = ext2_readlink(fs, &node, np, EXT2_PATH_MAX + 1)) < 0)
                return rc == OS_EINVAL ? OS_EIO : rc;
            size_t tl = strlen(np), rl = strlen(rest);
            if (tl + 1 + rl > EXT2_PATH_MAX)
                return OS_ENAMETOOLONG;
            np[tl] = '/';
            memcpy(np + tl + 1, rest, rl + 1);
            cur = nxt;
            s = np;
            if (*s == '/' && (rc = ext2_iget(fs, EXT2_ROOT_INO, &dir)) < 0)
                return rc;
            continue;
        }
        if (last) {
            p->dir = dir.ino;
            memcpy(p->name, s, len);
            p->name[len] = '\0';
            p->len = len;
            p->found = true;
            p->node = node;
            return 0;
        }
        dir = node;
        s = rest;
    }
}

/* ---- the control channel ------------------------------------------------------------- */

static int free_file(const fs_state_t *st)
{
    for (int i = 0; i < FS_FILES_MAX; i++)
        if (st->files[i].chan == OS_HANDLE_NONE)
            return i;
    return -1;
}

enum {
    O_KNOWN =
        FS_O_READ | FS_O_WRITE | FS_O_NOFOLLOW | FS_O_CREAT | FS_O_EXCL | FS_O_TRUNC | FS_O_APPEND,
    O_CHANGE = FS_O_WRITE | FS_O_CREAT | FS_O_TRUNC | FS_O_APPEND,
};

static int op_open(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    fs_open_t *m = &r->m.open;
    int rc;
    if (r->stage == 0) {
        if ((m->flags & ~(uint32_t)O_KNOWN) ||
            ((m->flags & (FS_O_TRUNC | FS_O_APPEND)) && !(m->flags & FS_O_WRITE)) ||
            ((m->flags & FS_O_EXCL) && !(m->flags & FS_O_CREAT)))
            return answer(ctx, st, r, OS_EINVAL);
        if (!st->mounted)
            return answer(ctx, st, r, OS_EIO);
        if ((m->flags & O_CHANGE) && (rc = may_change(st, r)) < 0)
            return answer(ctx, st, r, rc);
        if (free_file(st) < 0)
            return answer(ctx, st, r, OS_ENOSPC);
        rc = resolve(st, m->path, !(m->flags & FS_O_NOFOLLOW), &st->p1);
        if (rc < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        fs_path_t *p = &st->p1;
        if (!p->found) {
            if (!(m->flags & FS_O_CREAT))
                return answer(ctx, st, r, OS_ENOENT);
            uint32_t ino = 0;
            fs_call_begin(st);
            rc = fs_call_end(st, ext2_create(&st->fs, p->dir, p->name, p->len,
                                             (uint16_t)(EXT2_T_REG << 12 | (m->mode & 07777)), NULL,
                                             &ino));
            if (rc < 0)
                return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
            committed(ctx, st, r);
            r->ino = ino;
            r->stage = 2;
        } else {
            if ((m->flags & FS_O_CREAT) && (m->flags & FS_O_EXCL))
                return answer(ctx, st, r, OS_EEXIST);
            unsigned t = ext2_type(&p->node);
            if (t == EXT2_T_DIR && (m->flags & FS_O_WRITE))
                return answer(ctx, st, r, OS_EISDIR);
            if (t == EXT2_T_LNK && (m->flags & FS_O_WRITE))
                return answer(ctx, st, r, OS_EINVAL);
            r->ino = p->node.ino;
            r->stage = (m->flags & FS_O_TRUNC) && t == EXT2_T_REG && p->node.size > 0 ? 1 : 2;
        }
    }
    if (r->stage == 1) {
        bool more = true;
        while (more) {
            fs_call_begin(st);
            rc = fs_call_end(st, ext2_truncate(&st->fs, r->ino, 0, &more));
            if (rc < 0)
                return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
            committed(ctx, st, r);
        }
        r->stage = 2;
    }
    ext2_inode_t node;
    if ((rc = ext2_iget(&st->fs, r->ino, &node)) < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    if (r->chan == OS_HANDLE_NONE)
        return 0; /* the client went away meanwhile */
    int f = free_file(st);
    os_handle_t mine, theirs;
    if (f < 0)
        return answer(ctx, st, r, OS_ENOSPC);
    if ((rc = os_channel_create(ctx, &mine, &theirs)) < 0)
        return answer(ctx, st, r, rc);
    os_channel_tag(ctx, mine, iface_id(&fs_iface));
    fs_opened_t o = {.req = m->req,
                     .ino = node.ino,
                     .type = (uint8_t)ext2_type(&node),
                     .size = node.size,
                     .chan = theirs};
    if (fs_opened_send(ctx, r->chan, &o) < 0) {
        os_handle_close(ctx, mine);
        os_handle_close(ctx, theirs);
        return 0;
    }
    st->files[f] = (fs_file_t){.chan = mine, .ino = node.ino, .flags = m->flags, .ro = r->ro};
    fs_hold_new(ctx, st, mine);
    return 0;
}

/* mkdir and symlink: a new name. */
static int op_create(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r, const char *path, uint16_t mode,
                     const char *target)
{
    int rc = may_change(st, r);
    if (rc < 0)
        return answer(ctx, st, r, rc);
    if (target && target[0] == '\0')
        return answer(ctx, st, r, OS_EINVAL);
    if ((rc = resolve(st, path, false, &st->p1)) < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    fs_path_t *p = &st->p1;
    if (p->found)
        return answer(ctx, st, r, OS_EEXIST);
    fs_call_begin(st);
    rc = fs_call_end(st, ext2_create(&st->fs, p->dir, p->name, p->len, mode, target, NULL));
    if (rc < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    committed(ctx, st, r);
    return answer(ctx, st, r, 0);
}

/* unlink and rmdir. */
static int op_remove(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r, const char *path, bool want_dir)
{
    int rc;
    if (r->stage == 0) {
        if ((rc = may_change(st, r)) < 0)
            return answer(ctx, st, r, rc);
        if ((rc = resolve(st, path, false, &st->p1)) < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        fs_path_t *p = &st->p1;
        if (p->len == 0) /* the root, ".", "..": a directory, never removed by this name */
            return answer(ctx, st, r,
                          !want_dir ? OS_EISDIR
                                    : (p->node.ino == EXT2_ROOT_INO ? OS_EBUSY : OS_EINVAL));
        if (!p->found)
            return answer(ctx, st, r, OS_ENOENT);
        fs_call_begin(st);
        rc = fs_call_end(
            st, ext2_remove(&st->fs, p->dir, p->name, p->len, want_dir, &r->ino, &r->gone));
        if (rc < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        committed(ctx, st, r);
        r->stage = 1;
        if (r->gone && ino_open(st, r->ino)) {
            after_remove(ctx, st, r, &p->node);
            return answer(ctx, st, r, 0);
        }
    }
    if (r->gone && (rc = free_inode(ctx, st, r)) < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    return answer(ctx, st, r, 0);
}

static int op_rename(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    fs_rename_t *m = &r->m.rename;
    int rc;
    if (r->stage == 0) {
        if ((rc = may_change(st, r)) < 0)
            return answer(ctx, st, r, rc);
        if ((rc = resolve(st, m->from, false, &st->p1)) < 0 ||
            (rc = resolve(st, m->to, false, &st->p2)) < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        if (st->p1.len == 0 || st->p2.len == 0)
            return answer(ctx, st, r,
                          st->p1.len == 0 && st->p1.node.ino == EXT2_ROOT_INO ? OS_EBUSY
                                                                              : OS_EINVAL);
        if (!st->p1.found)
            return answer(ctx, st, r, OS_ENOENT);
        ext2_inode_t victim = st->p2.node;
        bool had = st->p2.found;
        fs_call_begin(st);
        rc = fs_call_end(st, ext2_rename(&st->fs, st->p1.dir, st->p1.name, st->p1.len, st->p2.dir,
                                         st->p2.name, st->p2.len, &r->ino, &r->gone));
        if (rc < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        committed(ctx, st, r);
        r->stage = 1;
        if (!had || r->ino == 0)
            r->gone = false;
        if (r->gone && ino_open(st, r->ino)) {
            after_remove(ctx, st, r, &victim);
            return answer(ctx, st, r, 0);
        }
    }
    if (r->gone && (rc = free_inode(ctx, st, r)) < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    return answer(ctx, st, r, 0);
}

static int op_statfs(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    fs_fsinfo_t *o = &st->out.fsinfo;
    memset(o, 0, sizeof *o);
    o->req = r->m.statfs.req;
    if (st->mounted) {
        ext2_statfs_t s;
        int rc = ext2_statfs(&st->fs, &s);
        if (rc < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        o->block_size = s.block_size;
        o->blocks = s.blocks;
        o->free_blocks = s.free_blocks;
        o->inodes = s.inodes;
        o->free_inodes = s.free_inodes;
    }
    if (!st->rw)
        o->flags |= FS_INFO_RO;
    if (r->ro)
        o->flags |= FS_INFO_CLIENT_RO;
    snprintf(o->note, sizeof o->note, "%s", st->note);
    if (r->chan != OS_HANDLE_NONE)
        fs_fsinfo_send(ctx, r->chan, o);
    return 0;
}

/* sync and fsync: a whole write-back that starts after the request, flush included. */
static int op_sync(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    if (!st->mounted)
        return answer(ctx, st, r, OS_EIO);
    if (r->stage == 0) {
        if (st->wb_phase != 0)
            return FS_AGAIN; /* it may have passed changes made before us */
        fs_writeback_start(ctx, st);
        r->seq = st->wb_seq;
        r->stage = 1;
    }
    if (st->wb_done < r->seq)
        return FS_AGAIN;
    return answer(ctx, st, r, st->wb_status);
}

/* ---- file channels ------------------------------------------------------------------- */

static int op_read(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    fs_read_t *m = &r->m.read;
    ext2_inode_t node;
    int rc;
    if (!(r->fflags & FS_O_READ))
        return answer(ctx, st, r, OS_EACCES);
    if ((rc = file_inode(st, r->fino, &node)) < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    unsigned t = ext2_type(&node);
    if (t == EXT2_T_DIR)
        return answer(ctx, st, r, OS_EISDIR);
    fs_data_t *o = &st->out.data;
    size_t want = m->len < FS_DATA_MAX ? m->len : FS_DATA_MAX, got = 0;
    if (t == EXT2_T_LNK) {
        char *text = (char *)st->buf;
        if ((rc = ext2_readlink(&st->fs, &node, text, EXT2_PATH_MAX + 1)) < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc == OS_EINVAL ? OS_EIO : rc);
        size_t n = strlen(text);
        if (m->off < n) {
            got = n - (size_t)m->off < want ? n - (size_t)m->off : want;
            memcpy(o->data, text + m->off, got);
        }
    } else if ((rc = ext2_read(&st->fs, &node, m->off, o->data, want, &got)) < 0) {
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    }
    o->req = m->req;
    o->data_len = (uint32_t)got;
    if (r->chan != OS_HANDLE_NONE)
        fs_data_send(ctx, r->chan, o);
    return 0;
}

/* May a file channel change its file? */
static int file_may_change(const fs_state_t *st, const fs_req_t *r)
{
    if (r->ro || !(r->fflags & FS_O_WRITE))
        return OS_EACCES;
    if (!st->rw)
        return OS_EROFS;
    if (orphan((fs_state_t *)st, r->fino))
        return OS_ENOENT; /* unlinked: readable until closed, no longer changed */
    return 0;
}

static int op_write(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    fs_write_t *m = &r->m.write;
    int rc = file_may_change(st, r);
    if (rc < 0)
        return answer(ctx, st, r, rc);
    uint64_t off = m->off;
    if (r->fflags & FS_O_APPEND) {
        ext2_inode_t node;
        if ((rc = ext2_iget(&st->fs, r->fino, &node)) < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        off = node.size;
    }
    if (m->data_len > 0) {
        fs_call_begin(st);
        rc = fs_call_end(st, ext2_write(&st->fs, r->fino, off, m->data, m->data_len));
        if (rc < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        committed(ctx, st, r);
    }
    return answer(ctx, st, r, (int)m->data_len);
}

static int op_truncate(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    int rc = file_may_change(st, r);
    if (rc < 0)
        return answer(ctx, st, r, rc);
    bool more = true;
    while (more) {
        fs_call_begin(st);
        rc = fs_call_end(st, ext2_truncate(&st->fs, r->fino, r->m.truncate.size, &more));
        if (rc < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        committed(ctx, st, r);
    }
    return answer(ctx, st, r, 0);
}

static int op_stat(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    ext2_inode_t n;
    int rc = file_inode(st, r->fino, &n);
    if (rc < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    fs_attr_t a = {.req = r->m.stat.req,
                   .ino = n.ino,
                   .mode = n.mode,
                   .links = n.links,
                   .uid = n.uid,
                   .gid = n.gid,
                   .size = n.size,
                   .mtime = n.mtime};
    if (r->chan != OS_HANDLE_NONE)
        fs_attr_send(ctx, r->chan, &a);
    return 0;
}

/*
 * Where a readdir cookie lets the scan start. A cookie this channel was handed (or 0, or a
 * block's start) is a record boundary unless the directory changed since: the block is
 * walked from its start, and a cookie inside a record that grew over it (its successor was
 * removed) starts at that record's end. Anything else is OS_EINVAL.
 */
static int cookie_pos(fs_state_t *st, fs_req_t *r, const ext2_inode_t *dir, uint64_t *pos)
{
    uint64_t c = r->m.readdir.cookie, bs = st->fs.block_size;
    bool known = c == 0 || c % bs == 0;
    if (r->file >= 0)
        for (uint32_t k = 0; k < FS_COOKIES; k++)
            known |= st->files[r->file].cookies[k] == c && c != 0;
    if (!known)
        return OS_EINVAL;
    if (c >= dir->size || c % bs == 0) {
        *pos = c;
        return 0;
    }
    size_t got;
    uint64_t start = c - c % bs;
    int rc = ext2_read(&st->fs, dir, start, st->buf, (size_t)bs, &got);
    if (rc < 0)
        return rc;
    uint32_t o = 0;
    while (start + o < c) {
        uint32_t rec = (uint32_t)st->buf[o + 4] | (uint32_t)st->buf[o + 5] << 8;
        if (o + 8 > bs || rec < 8 || rec % 4 || o + rec > bs)
            return OS_EINVAL; /* ext2_dir_next names the corruption if the scan meets it */
        o += rec;
    }
    *pos = start + o;
    return 0;
}

static int op_readdir(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    fs_readdir_t *m = &r->m.readdir;
    ext2_inode_t dir;
    int rc;
    if (!(r->fflags & FS_O_READ))
        return answer(ctx, st, r, OS_EACCES);
    if ((rc = file_inode(st, r->fino, &dir)) < 0)
        return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
    if (ext2_type(&dir) != EXT2_T_DIR)
        return answer(ctx, st, r, OS_ENOTDIR);
    if (r->stage == 0) {
        if ((rc = cookie_pos(st, r, &dir, &r->pos)) < 0)
            return rc == OS_EBUSY ? rc : answer(ctx, st, r, rc);
        r->stage = 1;
    }
    fs_dirents_t *o = &st->out.dirents;
    uint64_t pos = r->pos;
    uint32_t used = 0, count = 0;
    ext2_dirent_t d;
    for (;;) {
        uint64_t before = pos;
        rc = ext2_dir_next(&st->fs, &dir, &pos, &d);
        if (rc == OS_EBUSY) {
            if (count > 0) {
                pos = before; /* a shorter page now rather than a re-run */
                break;
            }
            r->pos = before; /* the scan goes on from here */
            return rc;
        }
        if (rc < 0)
            return answer(ctx, st, r, rc);
        if (rc == 0)
            break;
        uint32_t need = 6u + d.name_len;
        if (used + need > FS_DIRENTS_MAX) {
            pos = before;
            break;
        }
        uint8_t *e = o->data + used;
        e[0] = (uint8_t)d.ino;
        e[1] = (uint8_t)(d.ino >> 8);
        e[2] = (uint8_t)(d.ino >> 16);
        e[3] = (uint8_t)(d.ino >> 24);
        e[4] = d.type;
        e[5] = d.name_len;
        memcpy(e + 6, d.name, d.name_len);
        used += need;
        count++;
    }
    o->req = m->req;
    o->next = pos;
    o->count = (uint16_t)count;
    o->data_len = used;
    if (r->file >= 0) {
        fs_file_t *f = &st->files[r->file];
        f->cookies[f->ncookie++ % FS_COOKIES] = pos;
    }
    if (r->chan != OS_HANDLE_NONE)
        fs_dirents_send(ctx, r->chan, o);
    return 0;
}

/* ---- the server's own ---------------------------------------------------------------- */

static int op_mount(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    int rc;
    if (r->stage == 0) {
        rc = ext2_mount(&st->fs, fs_cache_read, st, st->dev_size);
        if (rc == OS_EBUSY)
            return rc;
        if (rc < 0) {
            snprintf(st->note, sizeof st->note, "not mounted: %s", ext2_why(&st->fs));
            os_log(ctx, "cannot mount blk0: %s; every request fails with EIO", ext2_why(&st->fs));
            fs_register(ctx);
            return 0;
        }
        uint8_t t[4];
        if ((rc = fs_cache_read(st, 1024 + 48, t, 4)) < 0) /* s_wtime: fs->now counts from it */
            return rc;
        st->base_time =
            (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
        st->fs.now = st->base_time;
        st->mounted = true;
        r->stage = 1;
    }
    if (st->dev_ro) {
        snprintf(st->note, sizeof st->note, "read-only: the disk is read-only");
    } else if (st->fs.ro_note[0]) {
        snprintf(st->note, sizeof st->note, "%s", st->fs.ro_note);
    } else {
        fs_call_begin(st);
        rc = fs_call_end(st, ext2_mount_rw(&st->fs, fs_cache_write));
        if (rc == OS_EBUSY)
            return rc;
        if (rc < 0) {
            snprintf(st->note, sizeof st->note, "read-only: %s", ext2_why(&st->fs));
        } else {
            st->rw = true;
            committed(ctx, st, r);
        }
    }
    os_log(ctx, "blk0: ext2, %u blocks of %u bytes, %s%s%s%s", st->fs.blocks_count,
           st->fs.block_size, st->rw ? "read-write" : "read-only", st->note[0] ? " (" : "",
           st->note, st->note[0] ? ")" : "");
    fs_register(ctx);
    return 0;
}

static int op_release(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    int rc = free_inode(ctx, st, r);
    if (rc == OS_EBUSY)
        return rc;
    if (rc < 0)
        os_log(ctx, "freeing unlinked inode %u: %s", r->ino, ext2_why(&st->fs));
    return 0;
}

int fs_run(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r)
{
    if (r->type == FS_REQ_MOUNT)
        return op_mount(ctx, st, r);
    if (r->type == FS_REQ_RELEASE)
        return st->rw ? op_release(ctx, st, r) : 0;
    if (!st->mounted && r->type != fs_msg_statfs)
        return answer(ctx, st, r, OS_EIO);
    if (r->client >= 0 || r->file < 0) {
        switch (r->type) {
        case fs_msg_open:
            return op_open(ctx, st, r);
        case fs_msg_mkdir:
            return op_create(ctx, st, r, r->m.mkdir.path,
                             (uint16_t)(EXT2_T_DIR << 12 | (r->m.mkdir.mode & 07777)), NULL);
        case fs_msg_symlink:
            return op_create(ctx, st, r, r->m.symlink.path, (uint16_t)(EXT2_T_LNK << 12 | 0777),
                             r->m.symlink.target);
        case fs_msg_unlink:
            return op_remove(ctx, st, r, r->m.unlink.path, false);
        case fs_msg_rmdir:
            return op_remove(ctx, st, r, r->m.rmdir.path, true);
        case fs_msg_rename:
            return op_rename(ctx, st, r);
        case fs_msg_statfs:
            return op_statfs(ctx, st, r);
        case fs_msg_sync:
            return op_sync(ctx, st, r);
        default:
            break;
        }
    }
    switch (r->type) {
    case fs_msg_read:
        return op_read(ctx, st, r);
    case fs_msg_write:
        return op_write(ctx, st, r);
    case fs_msg_truncate:
        return op_truncate(ctx, st, r);
    case fs_msg_fsync:
        return op_sync(ctx, st, r);
    case fs_msg_stat:
        return op_stat(ctx, st, r);
    case fs_msg_readdir:
        return op_readdir(ctx, st, r);
    default:
        return 0;
    }
}
