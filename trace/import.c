/* import.c — import a bare-metal trace stream (a file, a pipe, QEMU's serial chardev) into a recorder. */
#include <trace/stream.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void import_one(void *self, const hal_trace_rec_t *rec)
{
    trace_recorder_record(self, rec);
}

int trace_import_fd(int fd, trace_recorder *rec, trace_stream_stats *stats, char *err,
                    size_t errlen)
{
    return trace_import_fd_progress(fd, rec, stats, NULL, NULL, err, errlen);
}

int trace_import_fd_progress(int fd, trace_recorder *rec, trace_stream_stats *stats,
                             trace_import_progress_fn progress, void *self, char *err,
                             size_t errlen)
{
    trace_stream *s = trace_stream_new(import_one, rec);
    unsigned char buf[65536];
    trace_stream_stats st;
    uint64_t bad_reported = 0, bytes = 0;
    int ret = 0;

    if (!s) {
        snprintf(err, errlen, "trace import: out of memory");
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "trace import: read: %s", strerror(errno));
            ret = -1;
            break;
        }
        if (n == 0)
            break;
        trace_stream_feed(s, buf, (size_t)n);
        trace_stream_stats_get(s, &st);
        if (st.bad_frames != bad_reported) {
            trace_recorder_add_bad_frames(rec, st.bad_frames - bad_reported);
            bad_reported = st.bad_frames;
        }
        bytes += (uint64_t)n;
        if (progress)
            progress(self, &st, bytes);
    }
    trace_stream_finish(s, &st);
    /* A truncated last frame (QEMU killed mid-write) counts as one bad frame. */
    trace_recorder_add_bad_frames(rec, st.bad_frames - bad_reported + st.truncated);
    if (stats)
        *stats = st;
    trace_stream_free(s);
    return ret;
}
