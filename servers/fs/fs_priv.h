/* fs_priv.h — the fs server's state: block cache, request queue, clients, open files. */
#ifndef FS_PRIV_H
#define FS_PRIV_H

#include <iface/fs.h>
#include <os/os.h>

#include "ext2.h"

/*
 * The server runs one request at a time against the synchronous ext2 library. The library
 * reads and writes through the block cache (cache.c); a miss makes the library return
 * OS_EBUSY, the cache fetches what was missing from blk0, and the request runs again from the
 * start of its current step. Write-side library calls are atomic for the server: each is
 * framed by fs_call_begin/fs_call_end, which undo every cache change of a call that did not
 * succeed and restore the ext2_fs_t copy taken before it. docs/storage-server.md.
 */
enum {
    FS_UNIT = 4096, /* bytes of one cache slot, device-aligned */
    FS_UNIT_SECTORS = FS_UNIT / HAL_BLK_SECTOR,
    FS_CACHE_SLOTS = 256,                  /* 1 MiB of cache */
    FS_UNDO_MAX = EXT2_CALL_BLOCKS_MAX,    /* slots one library call may change */
    FS_QUEUE_MAX = 16,                     /* requests waiting; full: every channel is held */
    FS_CLIENTS_MAX = 32,                   /* control channels */
    FS_FILES_MAX = 64,                     /* open file channels */
    FS_ORPHANS_MAX = 64,                   /* unlinked inodes still open */
    FS_INFLIGHT_MAX = 30,                  /* blk0 requests in flight (the device takes 32) */
    FS_READAHEAD = 3,                      /* units fetched after a missed one */
    FS_RESTARTS_MAX = FS_CACHE_SLOTS + 16, /* runs of one step before it fails OS_EIO */
    FS_COOKIES = 4,                        /* readdir cookies a file channel remembers */
};

/* Time: the write-back runs this long after the last change, and at most this long after
 * the first change not yet written (docs/storage-server.md, "Write-back"). */
#define FS_IDLE_NS (100ull * 1000 * 1000)
#define FS_PERIOD_NS (5ull * 1000 * 1000 * 1000)

/* Sector masks of a unit: one bit per 512-byte sector. */
typedef uint8_t fs_mask_t;
#define FS_MASK_ALL ((fs_mask_t)0xff)

/* One cache slot: FS_UNIT bytes of the device at unit number `unit`. */
typedef struct fs_slot {
    uint64_t unit;     /* device byte offset / FS_UNIT */
    bool used;         /* holds a unit (else free) */
    fs_mask_t valid;   /* sectors holding the device's (or our newer) bytes */
    fs_mask_t dirty;   /* sectors changed and not yet submitted to the device */
    fs_mask_t meta;    /* dirty sectors holding metadata (written after data) */
    fs_mask_t want;    /* sectors to fetch, not yet submitted */
    fs_mask_t reading; /* sectors being fetched */
    fs_mask_t wb_data; /* write-back: data sectors to write in its first phase */
    fs_mask_t wb_meta; /* write-back: the other sectors, second phase */
    bool bad;          /* a fetch failed: reads of it are OS_EIO until the request ends */
    uint16_t writing;  /* device writes in flight from this slot */
    uint32_t pin;      /* == fs_state.gen: used by the step running now, not evictable */
    uint32_t undo_gen; /* == fs_state.call: the undo copy of this call is taken */
    uint64_t lru;      /* last use, for eviction */
    uint8_t data[FS_UNIT];
} fs_slot_t;

/* The bytes and masks of a slot before the running call first changed it. */
typedef struct fs_undo {
    int slot;
    bool was_used;
    uint64_t unit;
    fs_mask_t valid, dirty, meta;
    uint8_t data[FS_UNIT];
} fs_undo_t;

/* The request kinds: the fs messages, plus the server's own. */
enum {
    FS_REQ_MOUNT = 100,   /* mount after HAL_BLK_INFO */
    FS_REQ_RELEASE = 101, /* free an unlinked inode whose last channel closed */
};

/* Why the request at the head waits. */
enum {
    FS_WAIT_NONE = 0,
    FS_WAIT_FETCH, /* blocks being read */
    FS_WAIT_WB,    /* a write-back (a sync, or the cache needs clean slots) */
};

/* A request taken off a channel (or made by the server), kept until it is answered. */
typedef struct fs_req {
    uint32_t type;    /* fs_msg_* or FS_REQ_* */
    os_handle_t chan; /* where the answer goes (NONE for the server's own) */
    int file;         /* the open file it came on, -1 for the control channel */
    int client;       /* the client index of a control channel, -1 otherwise */
    bool ro;          /* from a read-only client (reach=fs:ro) */
    uint32_t fino;    /* a file channel's inode and open flags, as at decode */
    uint32_t fflags;
    /* progress kept across restarts */
    int stage;
    uint32_t restarts;
    uint32_t ino; /* an inode the request made or found */
    bool gone;    /* the inode it removed lost its last link */
    uint64_t pos; /* readdir: where the scan goes on */
    uint64_t seq; /* sync: the write-back it waits for */
    union {
        fs_open_t open;
        fs_mkdir_t mkdir;
        fs_unlink_t unlink;
        fs_rmdir_t rmdir;
        fs_rename_t rename;
        fs_symlink_t symlink;
        fs_statfs_t statfs;
        fs_sync_t sync;
        fs_read_t read;
        fs_write_t write;
        fs_stat_t stat;
        fs_readdir_t readdir;
        fs_truncate_t truncate;
        fs_fsync_t fsync;
    } m;
} fs_req_t;

typedef struct fs_client {
    os_handle_t chan; /* NONE: free */
    bool ro;          /* reach=fs:ro: every change is OS_EACCES */
    uint32_t task;    /* the client's task id, for log lines */
} fs_client_t;

typedef struct fs_file {
    os_handle_t chan; /* NONE: free */
    uint32_t ino;
    uint32_t flags;               /* FS_O_* it was opened with */
    bool ro;                      /* opened by a read-only client */
    uint64_t cookies[FS_COOKIES]; /* readdir positions handed out (0 is always accepted) */
    uint32_t ncookie;
} fs_file_t;

/* An inode whose last name went while a channel had it open: it is freed at the last close. */
typedef struct fs_orphan {
    uint32_t ino;      /* 0: free entry */
    bool closed;       /* its last channel closed: a release request frees it */
    ext2_inode_t node; /* as it was when unlinked: reads and stat use it */
} fs_orphan_t;

/* Where a path leads (fs_resolve). */
typedef struct fs_path {
    uint32_t dir; /* the directory holding the last name */
    char name[EXT2_NAME_MAX + 1];
    size_t len; /* 0: the path names a directory itself (root, ".", "..") */
    bool found; /* the last name exists: node holds it */
    ext2_inode_t node;
} fs_path_t;

typedef struct fs_state {
    /* The device. */
    os_handle_t dev;
    uint64_t dev_size; /* bytes, from HAL_BLK_INFO */
    bool dev_ro;
    uint32_t inflight; /* blk0 requests not completed */
    uint16_t epoch;    /* random at start: the top bits of our blk0 request ids (cache.c) */

    /* The volume. */
    ext2_fs_t fs;
    ext2_fs_t saved;            /* the copy taken before a write-side call */
    bool mounted;               /* ext2_mount succeeded */
    bool rw;                    /* ext2_mount_rw succeeded and no device write failed */
    bool failed_write;          /* a device write or flush failed: read-only from then on */
    char note[FS_NOTE_MAX + 1]; /* why the volume is read-only or unmounted ("": it is not) */
    uint32_t base_time;         /* the superblock's write time at mount: fs->now counts from it */
    uint64_t start_ns;

    /* The cache (cache.c). */
    fs_slot_t slots[FS_CACHE_SLOTS];
    fs_undo_t undo[FS_UNDO_MAX];
    uint32_t nundo;
    bool in_call;      /* a write-side library call is running */
    bool undo_over;    /* the call changed more slots than FS_UNDO_MAX */
    uint32_t call;     /* generation of write-side calls (undo_gen) */
    uint32_t gen;      /* generation of steps (pin) */
    uint64_t tick;     /* lru clock */
    uint32_t fetching; /* sectors wanted or being read */
    bool need_slots;   /* a miss found no slot it could take: a write-back must run */
    bool too_big;      /* a step needs more slots than the cache can give it */

    /* Write-back. */
    int wb_phase;       /* 0 idle, 1 data, 2 meta, 3 flush sent */
    uint32_t wb_writes; /* writes of the write-back in flight */
    uint64_t wb_seq;    /* write-backs started */
    uint64_t wb_done;   /* write-backs finished (flushed) */
    int wb_status;      /* 0, or OS_EIO once a write or flush failed */
    os_handle_t timer;
    bool timer_armed;
    bool dirty_since;        /* changed since the last write-back started: */
    uint64_t first_dirty_ns; /* ... at this time */

    /* Requests: a FIFO; the head runs. */
    fs_req_t queue[FS_QUEUE_MAX];
    uint32_t qhead, qcount;
    int wait;       /* FS_WAIT_* of the head */
    bool held;      /* the queue was full: every channel is held */
    bool held_once; /* ... which was logged */

    fs_client_t clients[FS_CLIENTS_MAX];
    fs_file_t files[FS_FILES_MAX];
    fs_orphan_t orphans[FS_ORPHANS_MAX];

    /* Scratch for one request. */
    char pbuf[2][EXT2_PATH_MAX + 2];
    uint8_t buf[FS_UNIT];
    uint8_t io[sizeof(hal_blk_req_t) + HAL_BLK_MAX_SECTORS * HAL_BLK_SECTOR]; /* a blk0 request */
    bool driving; /* fs_drive runs (a nested call only asks it to look again) */
    bool redrive;
    fs_path_t p1, p2;
    union {
        fs_data_t data;
        fs_dirents_t dirents;
        fs_fsinfo_t fsinfo;
    } out;
} fs_state_t;

/* ---- cache.c ------------------------------------------------------------------------- */

/* The library's callbacks (arg is the fs_state_t). */
int fs_cache_read(void *arg, uint64_t off, void *buf, size_t len);
int fs_cache_write(void *arg, uint64_t off, const void *buf, size_t len, int kind);

/* Frame one write-side library call: begin before it, end with its result (undoes the call
 * unless it returned 0). Returns rc, or OS_EIO if the call overflowed the undo space. */
void fs_call_begin(fs_state_t *st);
int fs_call_end(fs_state_t *st, int rc);

/* A new step: what the previous one pinned may be evicted again. */
void fs_step(fs_state_t *st);
/* The request ended: forget failed fetches so the next request tries the device again. */
void fs_request_done(fs_state_t *st);

/* Submit what can be submitted: fetches, write-back writes, the flush. */
void fs_pump(os_ctx_t *ctx, fs_state_t *st);
/* A blk0 completion (READ, WRITE, FLUSH). */
void fs_blk_done(os_ctx_t *ctx, fs_state_t *st, uint32_t code, const void *data, size_t len);
/* Start a write-back unless one runs: data sectors, then metadata, then a flush. */
void fs_writeback_start(os_ctx_t *ctx, fs_state_t *st);
/* Dirty sectors, counted. */
uint32_t fs_dirty_count(const fs_state_t *st);
/* Slots that could take a fetch now (free, or clean and unpinned). */
uint32_t fs_clean_slots(const fs_state_t *st);

/* ---- fs.c ---------------------------------------------------------------------------- */

enum { FS_AGAIN = 1 }; /* fs_run: the request waits for a write-back */

/* The head request may run again (its fetches arrived, or a write-back finished). */
void fs_drive(os_ctx_t *ctx, fs_state_t *st);
/* A change was made: arm the write-back timer. */
void fs_changed(os_ctx_t *ctx, fs_state_t *st);
/* A device write or flush failed: the volume becomes read-only. */
void fs_write_failed(os_ctx_t *ctx, fs_state_t *st, uint64_t sector, int status);
/* Register "fs" with init (after the mount). */
void fs_register(os_ctx_t *ctx);
/* A channel made while every channel is held starts held. */
void fs_hold_new(os_ctx_t *ctx, fs_state_t *st, os_handle_t h);

/* ---- ops.c --------------------------------------------------------------------------- */

/* Decode ev into r, checking it is a message of r's kind of channel: 0 or OS_EPROTO. */
int fs_decode(fs_state_t *st, fs_req_t *r, const os_event_t *ev);
/* Run r (again) from its current step: 0 (answered), OS_EBUSY (blocks to fetch or slots to
 * free: the cache says which), FS_AGAIN (waits for a write-back). */
int fs_run(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r);
/* Answer r with reply{req, status} (nothing for the server's own requests). */
void fs_answer(os_ctx_t *ctx, fs_state_t *st, fs_req_t *r, int status);
/* The last channel of ino closed: an unlinked inode is now to be freed. */
void fs_orphan_closed(fs_state_t *st, uint32_t ino);
/* An orphan ready to be freed (taken off the list of those waiting), or 0. */
uint32_t fs_orphan_take(fs_state_t *st);

#endif
