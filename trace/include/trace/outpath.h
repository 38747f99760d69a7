/* outpath.h — where a trace is written: refuse what is not ours, record into FILE.partial, rename
 * on a clean close. */
#ifndef TRACE_OUTPATH_H
#define TRACE_OUTPATH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* trace_out_prepare (and trace_recorder_open): the path exists and is not an Orrery trace. */
#define TRACE_OUT_REFUSED (-2)

/* The rule in one paragraph, for every recording command's --help. */
#define TRACE_OUT_HELP                                                                             \
    "The trace is written to OUT.db.partial and renamed to OUT.db once it is complete. An\n"       \
    "existing OUT.db (a symlink: its target) must be an Orrery trace, replaced only then;\n"       \
    "anything else is refused (exit 2) and left untouched. After a kill or lost records the\n"     \
    "trace stays in OUT.db.partial (run.complete = 0), readable like any trace.\n"

/* What is written while recording, next to the final name. */
#define TRACE_PARTIAL_SUFFIX ".partial"

/* An output path, checked and claimed by trace_out_prepare. */
typedef struct trace_out {
    char target[PATH_MAX];       /* the finished trace's name (a symlink's target, resolved) */
    char partial[PATH_MAX + 16]; /* target + ".partial": the recording, flock'ed while written */
    bool replaces;               /* target holds an Orrery trace the finished one replaces */
    bool replaced_partial;       /* an unfinished earlier recording at partial was removed */
    mode_t mode;                 /* replaces: the old trace's permission bits, kept */
    int lock_fd;                 /* the partial, open and flock'ed; -1 when released */
    bool export;                 /* an export (one plain file), not a trace */
    bool pcap;                   /* ... and that export is a pcap capture */
} trace_out;

/*
 * Check path for a new trace and claim target.partial (created empty and
 * locked, so that two recordings never share it). A path that does not exist
 * is fine; one that exists must be, after following symlinks, a regular file
 * holding an Orrery trace (it is replaced when the new trace is finished).
 * Directories, devices, FIFOs, sockets, other files and other SQLite
 * databases are refused and left untouched: TRACE_OUT_REFUSED. Other
 * failures: -1. Both with a one-line message in err.
 */
int trace_out_prepare(const char *path, trace_out *out, char *err, size_t errlen);

/*
 * The same for `trace export --perfetto OUT.json`: an existing OUT.json must
 * be an earlier export (it begins with TRACE_PERFETTO_HEAD); write the new
 * one through lock_fd.
 */
int trace_out_prepare_export(const char *path, trace_out *out, char *err, size_t errlen);

/*
 * The same for a pcap capture (`run --pcap`, `trace export --pcap`, trace_pcap_open): an
 * existing file must be a pcap file (a 24-byte header with a pcap magic, any writer's).
 */
int trace_out_prepare_pcap(const char *path, trace_out *out, char *err, size_t errlen);

/* The recording is finished and closed: rename the partial over the target. 0 or -1. */
int trace_out_commit(trace_out *out, char *err, size_t errlen);

/* Stop writing: remove the partial and its SQLite siblings (remove) or keep them; unlock. */
void trace_out_release(trace_out *out, bool remove);

/*
 * A trace the caller made under a name of its own (a benchmark's temporary file, named by its
 * pid): remove path and path.partial with their siblings (-wal, -shm, -journal, -capture), the
 * regular files among them. Never for a path a user gave.
 */
void trace_out_remove_own(const char *path);

/*
 * 1 if path (followed) is a regular file holding an Orrery trace, 0 if not
 * (why in why), -1 if that cannot be told (why says why). Never writes.
 */
int trace_file_is_trace(const char *path, char *why, size_t whylen);

#endif
