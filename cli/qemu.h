/* qemu.h — launching the bare-metal image under QEMU: shared by `orrery qemu` and `orrery bench
 * boot`. */
#ifndef HL_QEMU_H
#define HL_QEMU_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <trace/recorder.h>
#include <trace/stream.h>

typedef struct hq_opts {
    const char *qemu;          /* qemu-system-x86_64 path */
    const char *image;         /* orrery.elf */
    const char *machine;       /* "q35" or "microvm" */
    const char *accel;         /* "kvm" or "tcg" (resolved, not "auto") */
    const char *manifest_path; /* validated manifest file, or NULL */
    const char *append;        /* extra kernel command line words, or NULL */
    bool tty;                  /* the console is an interactive terminal */
    bool gdb;                  /* -s -S: wait for gdb on :1234 */
    int trace_fd;              /* > 0: the trace port (COM2) writes to this inherited fd
                                * (/dev/fd/N) and the image is told to trace; 0: no trace */
} hq_opts_t;

/* The image next to this binary (or $ORRERY_IMAGE). 0, or -1 with a message on stderr. */
int hq_find_image(char *out, size_t n);
/* qemu-system-x86_64 from $ORRERY_QEMU or PATH. 0, or -1 with a message on stderr. */
int hq_find_qemu(char *out, size_t n);
/* /dev/kvm opens read-write and answers KVM_GET_API_VERSION. */
bool hq_kvm_usable(void);
/* Fill argv (NULL-terminated, at most max entries, strings owned by a static pool). */
int hq_build_argv(const hq_opts_t *o, char **argv, int max);
/*
 * QEMU's exit status -> the OS's. The image writes status + 1 to
 * isa-debug-exit, which makes QEMU exit with 2 * status + 3. Returns the OS
 * status (0..126), or -1 when QEMU ended otherwise (*why says how).
 */
int hq_os_status(int wait_status, const char **why);

/*
 * --trace (qemu_trace.c): the recorder, and a thread that imports COM2's
 * frames from a pipe as QEMU writes them. A pipe (not a file we tail) gives
 * an exact end: the import reads until EOF, which comes when QEMU exits (only
 * QEMU holds the write end), however it ends. A full pipe blocks QEMU's vCPU,
 * so a slow importer slows the guest instead of losing records.
 */
typedef struct hq_trace {
    trace_recorder *rec;
    int rfd; /* the pipe's read end */
    pthread_t thread;
    bool started;
    trace_stream_stats st; /* what the decoder saw (set by the thread at EOF) */
    int rc;                /* the import's result */
    char err[256];
} hq_trace_t;

/* Open the trace and start the import; *write_fd is the pipe's write end for QEMU (the
 * caller closes its own copy once QEMU is started). 0, or -1 with a message on stderr. */
int hq_trace_start(hq_trace_t *t, const char *path, const hq_opts_t *o, const char *manifest,
                   size_t mlen, int *write_fd);
/* QEMU has exited and our write end is closed: read the pipe to its end, store the OS's exit
 * status (if >= 0) and close the trace. 0, or -1 with a message on stderr. */
int hq_trace_end(hq_trace_t *t, const char *path, int status);

#endif
