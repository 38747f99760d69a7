/* fs_client.h — what test_fs_server.c shares with fs_client.c (scripted clients of the fs
 * interface that run inside the OS): the steps of a script and what each step saw. */
#ifndef TESTS_FS_CLIENT_H
#define TESTS_FS_CLIENT_H

#include <stdatomic.h>
#include <stdint.h>

#include <iface/fs.h>
#include <os/os.h>

enum {
    ANYERR = 1000, /* expect: any negative status */
    ANY = 1001,    /* expect: any answer at all (corrupt images) */
    SLOTS = 72,    /* files a client holds at once (more than the server's 64) */
    STEPS_MAX = 256,
    NAMES_MAX = 1 << 16,
    FLAGS = 8,
    SCRIPTS = 8,
};

typedef enum op {
    OP_END = 0,
    OP_OPEN,     /* slot, path, flags, mode -> expect (0: opened); len: expected size if set;
                    flag 1: OS_ENOSPC is tried again a tick later */
    OP_CLOSE,    /* slot */
    OP_READ,     /* slot, off, len -> data/data_len expected, or expect < 0 */
    OP_READALL,  /* slot: reads from 0 to the end; data/data_len is the whole content */
    OP_WRITE,    /* slot, off, data -> expect (the byte count, or an error) */
    OP_WRITEALL, /* slot: data/data_len from off in FS_WRITE_MAX pieces, each answered whole */
    OP_STAT,     /* slot -> the attr in seen.attr */
    OP_READDIR,  /* slot: every page; names in names ("name\n"), pages in seen.pages;
                    with off: one page from cookie off */
    OP_TRUNC,    /* slot, len (the size) */
    OP_FSYNC,    /* slot */
    OP_SYNC,
    OP_STATFS,   /* -> seen.info */
    OP_WAITFREE, /* statfs until free_inodes is step `flag`'s again */
    OP_MKDIR,    /* path, mode */
    OP_RMDIR,    /* path */
    OP_UNLINK,   /* path */
    OP_RENAME,   /* path -> path2 */
    OP_SYMLINK,  /* path2 (target), path */
    OP_GARBAGE,  /* slot (-1: the control channel): message `flags` with `len` bytes of junk */
    OP_SETFLAG,  /* flag */
    OP_WAITFLAG, /* flag */
    OP_BURST,    /* slot: `len` reads of `data_len` bytes at off sent at once; each gives them */
    OP_SLEEP,    /* wait `len` ns of the kernel clock */
    OP_EXIT,     /* the task exits now (its channels close) */
    OP_SHUTDOWN, /* ask init to shut the OS down with status 0 */
} op_t;

typedef struct step {
    op_t op;
    int slot;
    const char *path, *path2;
    uint32_t flags, mode;
    uint64_t off, len;
    const void *data;
    size_t data_len;
    int expect;
    int flag;
} step_t;

/* What one step saw. */
typedef struct seen {
    int status; /* reply status, 0 for an answer of its own, the error{} status */
    fs_attr_t attr;
    fs_fsinfo_t info;
    uint32_t pages, nnames;
    uint64_t opened_size;
    uint8_t opened_type;
} seen_t;

typedef struct script {
    const char *program; /* the program that runs it */
    step_t steps[STEPS_MAX];
    seen_t seen[STEPS_MAX];
    char names[NAMES_MAX]; /* OP_READDIR's names, the last one's */
    size_t names_len;
    char fail[512]; /* the first step that went wrong */
    atomic_int at;  /* the step running (for a run that hangs) */
    atomic_int done;
} script_t;

extern script_t scripts[SCRIPTS];
extern atomic_int flags[FLAGS];

/* The client programs: fsc0 .. fsc7 run scripts[i]. */
extern const os_program_t fsc_programs[SCRIPTS];

#endif
