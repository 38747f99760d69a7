/* qemu.h — launching the bare-metal image under QEMU: shared by `orrery qemu` and `orrery bench
 * boot`. */
#ifndef HL_QEMU_H
#define HL_QEMU_H

#include <pthread.h>
#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include <hl/hosted.h>

#include <stdio.h>
#include <trace/recorder.h>
#include <trace/stream.h>

typedef struct hq_opts {
    const char *qemu;           /* qemu-system-x86_64 path */
    const char *image;          /* orrery.elf */
    const char *machine;        /* "q35" or "microvm" */
    const char *accel;          /* "kvm" or "tcg" (resolved, not "auto") */
    const char *cpu;            /* -cpu MODEL, or NULL: QEMU's default model */
    const char *manifest_path;  /* validated manifest file, or NULL */
    const char *append;         /* extra kernel command line words, or NULL */
    bool tty;                   /* the console is an interactive terminal */
    unsigned cols, rows;        /* tty: its size (0 unknown), for the console's line editor */
    bool gdb;                   /* -s -S: wait for gdb on :1234 */
    int trace_fd;               /* > 0: the trace channel writes to this inherited fd
                                 * (/dev/fd/N) and the image is told to trace; 0: no trace */
    bool trace_serial;          /* the trace channel is COM2 (--trace-channel serial), not
                                 * a virtio-console port */
    int console_log_fd;         /* > 0: QEMU also copies the console's output to this inherited
                                 * fd (chardev logfile), so a terminal run can see the boot line */
    const hl_net_config_t *net; /* non-NULL: net0 on QEMU's user network (--net user) */
    int pcap_fd;                /* > 0: QEMU's filter-dump writes net0's frames to this
                                 * inherited fd (/dev/fd/N) as pcap (--pcap) */
    const struct hq_disk *disk; /* non-NULL: blk0 on this image file (--disk) */
} hq_opts_t;

/* `orrery qemu --boot-timeout`: the default (TCG boots q35 in well under a second; a loaded
 * 2-core machine or a nested KVM through SeaBIOS takes seconds) and the largest accepted. */
#define HQ_BOOT_TIMEOUT_S 60
#define HQ_BOOT_TIMEOUT_MAX_S 86400
/* A KVM candidate that has not run the image within this is rejected (hq_choose). */
#define HQ_PROBE_SECONDS 30
/* What QEMU always says about our -fw_cfg name=etc/sercon-port (q35): not worth showing. */
#define HQ_FWCFG_WARNING "externally provided fw_cfg item names"

/* The image next to this binary (or $ORRERY_IMAGE). 0, or -1 with a message on stderr. */
int hq_find_image(char *out, size_t n);
/* qemu-system-x86_64 from $ORRERY_QEMU or PATH. 0, or -1 with a message on stderr. */
int hq_find_qemu(char *out, size_t n);
/*
 * The cheap first gate for KVM: /dev/kvm ($ORRERY_KVM_DEVICE, a testing hook) opens
 * read-write and answers KVM_GET_API_VERSION (a regular file given as the device only has to
 * open). False with the reason in why. Passing it is no proof that QEMU can run: see hq_choose.
 */
bool hq_kvm_usable(char *why, size_t n);

/* The accelerator and CPU model candidates, best first (qemu_accel.c). */
enum { HQ_KVM_HOST, HQ_KVM_DEFAULT, HQ_TCG, HQ_NCAND };
typedef struct hq_cand {
    const char *accel; /* -accel */
    const char *cpu;   /* -cpu, or NULL: QEMU's default model */
    const char *name;  /* for messages: "KVM with -cpu host" */
    const char *label; /* for `orrery qemu --probe`: "kvm host" */
} hq_cand_t;
extern const hq_cand_t hq_cands[HQ_NCAND];

typedef struct hq_choice {
    int chosen;              /* index in hq_cands, -1: none of those allowed can run */
    bool rejected[HQ_NCAND]; /* probed (or gated) and cannot run */
    char why[HQ_NCAND][320]; /* for a rejected candidate, why */
    bool gate_failed;        /* KVM was rejected by the /dev/kvm gate, QEMU never tried */
} hq_choice_t;

/*
 * Choose the accelerator for want = "auto", "kvm" or "tcg". KVM is decided by what QEMU does:
 * each KVM candidate passing the /dev/kvm gate is started on the image (microvm, `-append
 * probe`: the image exits at once), and works when it exits with the image's status 0. The
 * result is kept for the life of the process. TCG is never probed: it is the last resort.
 */
const hq_choice_t *hq_choose(const char *qemu, const char *image, const char *want);
/* The monotonic clock in seconds (deadlines). */
double hq_now_s(void);
/* Why KVM cannot run, for messages: "KVM with -cpu host: ...; KVM with ...: ...". */
void hq_kvm_why(const hq_choice_t *c, char *out, size_t n);
/* Fill argv (NULL-terminated, at most max entries, strings owned by a static pool). */
int hq_build_argv(const hq_opts_t *o, char **argv, int max);
/*
 * QEMU's exit status -> the OS's. The image writes status + 1 to
 * isa-debug-exit, which makes QEMU exit with 2 * status + 3. Returns the OS
 * status (0..126), or -1 when QEMU ended otherwise (*why says how).
 */
int hq_os_status(int wait_status, const char **why);

/* --net and --pcap (qemu_net.c). The -netdev value for QEMU: "user,id=net0,hostfwd=..." with
 * every rule written out in QEMU's own spelling. */
void hq_netdev_arg(const hl_net_config_t *net, char *out, size_t n);
/* "orrery: httpd: http://127.0.0.1:8080/" for each TCP hostfwd that reaches guest port 80
 * (httpd's, docs/httpd.md), so the user knows the URL to open. */
void hq_print_http_urls(const hl_net_config_t *net, FILE *out);

/* --disk FILE[,ro] (qemu_disk.c). */
typedef struct hq_disk {
    char path[PATH_MAX];
    bool ro;
    unsigned long long sectors;
} hq_disk_t;
/* Check FILE (exists, a regular file, a whole number of 512-byte sectors, not empty). 0, or
 * -1 with a one-line reason naming the option in err (a usage error). */
int hq_disk_parse(const char *arg, hq_disk_t *d, char *err, size_t errlen);
/* The -drive value: "file=FILE,format=raw,if=none,id=blk0[,readonly=on]". */
void hq_drive_arg(const hq_disk_t *d, char *out, size_t n);
/* Lock d's file as `orrery run` does (flock: exclusive, shared when read-only), so a run and
 * a QEMU never share a disk they may write: the descriptor holding the lock, or -1 with why
 * ("FILE: in use: another run has the image open"). */
int hq_disk_lock(const hq_disk_t *d, char *err, size_t errlen);

/* --pcap FILE: the capture is written to FILE.partial and renamed over FILE at the end. */
typedef struct hq_pcap {
    char target[PATH_MAX];       /* FILE (a symlink's target, resolved) */
    char partial[PATH_MAX + 16]; /* target + ".partial": QEMU writes it, we hold its flock */
    bool replaces;               /* FILE is an earlier capture (it starts with a pcap magic) */
    mode_t mode;                 /* replaces: its permission bits, kept */
    int fd;                      /* the partial, open and locked; -1 when done */
} hq_pcap_t;
/* Check FILE (it must not exist, or be a pcap file: never replace what is not a capture) and
 * create FILE.partial. 0, or -1 with a one-line reason in err (a usage error). */
int hq_pcap_prepare(hq_pcap_t *p, const char *path, char *err, size_t errlen);
/* QEMU has exited: rename FILE.partial over FILE (or remove it when QEMU wrote nothing). 0, or
 * -1 with the reason in err. */
int hq_pcap_finish(hq_pcap_t *p, char *err, size_t errlen);
/* QEMU never ran: remove FILE.partial. */
void hq_pcap_release(hq_pcap_t *p);

/* --trace: the pipe from QEMU is grown to this (1 MiB; the bulk channel's buffers are 128 KiB),
 * or less if the system refuses, so that QEMU can hand over several while we read. */
#define HQ_TRACE_PIPE_BYTES (1 << 20)

/*
 * --trace (qemu_trace.c): the recorder, and a thread that imports the trace
 * channel's frames from a pipe as QEMU writes them. A pipe (not a file we tail) gives
 * an exact end: the import reads until EOF, which comes when QEMU exits (only
 * QEMU holds the write end), however it ends. A full pipe holds QEMU back (COM2:
 * the byte waits; virtio: the port is throttled), so a slow importer slows the guest instead
 * of losing records.
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
