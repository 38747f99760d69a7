/* qemu_trace.c — `orrery qemu --trace`: import the image's trace frames (virtio-console or COM2)
 * into an SQLite trace. */
#define _GNU_SOURCE
#include "qemu.h"

#include "commands.h"

#include <trace/recorder.h>
#include <trace/stream.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ORRERY_COMMIT
#define ORRERY_COMMIT "unknown"
#endif

static void import_one(void *self, const hal_trace_rec_t *rec)
{
    trace_recorder_record(self, rec);
}

/*
 * trace_import_fd's loop, with one difference: after a short read it sleeps
 * 2 ms. On COM2 QEMU writes the port's bytes to the pipe one at a time; a
 * reader blocked in read() is woken for each, and those wake-ups cost more
 * than the writes. Asleep, it lets them collect (64 KiB of pipe is ~90 ms of
 * stream). The bulk channel writes whole buffers, so its reads are long.
 */
static void *import_main(void *arg)
{
    hq_trace_t *t = arg;
    trace_stream *s = trace_stream_new(import_one, t->rec);
    static unsigned char buf[65536];
    uint64_t bad_reported = 0;

    if (!s) {
        snprintf(t->err, sizeof(t->err), "trace import: out of memory");
        t->rc = -1;
        return NULL;
    }
    for (;;) {
        ssize_t n = read(t->rfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(t->err, sizeof(t->err), "trace import: read: %s", strerror(errno));
            t->rc = -1;
            break;
        }
        if (n == 0)
            break;
        trace_stream_feed(s, buf, (size_t)n);
        trace_stream_stats_get(s, &t->st);
        if (t->st.bad_frames != bad_reported) {
            trace_recorder_add_bad_frames(t->rec, t->st.bad_frames - bad_reported);
            bad_reported = t->st.bad_frames;
        }
        if (n < 4096) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
    }
    trace_stream_finish(s, &t->st);
    /* A frame cut short (QEMU killed mid-write) counts as one bad frame. */
    trace_recorder_add_bad_frames(t->rec, t->st.bad_frames - bad_reported + t->st.truncated);
    trace_stream_free(s);
    return NULL;
}

int hq_trace_start(hq_trace_t *t, const char *path, const hq_opts_t *o, const char *manifest,
                   size_t mlen, int *write_fd)
{
    char command[4600];
    int p[2];
    sigset_t block, old;

    snprintf(command, sizeof(command),
             "orrery qemu --machine %s --accel %s --trace-channel %s%s%s%s%s", o->machine, o->accel,
             o->trace_serial ? "serial" : "virtio", o->manifest_path ? " --manifest " : "",
             o->manifest_path ? o->manifest_path : "", o->append ? " --append " : "",
             o->append ? o->append : "");
    trace_run_info run = {
        .platform = "qemu",
        .commit = ORRERY_COMMIT,
        .manifest = manifest,
        .manifest_len = mlen,
        .workers = 1,
        .command = command,
    };
    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "orrery: qemu: pipe: %s\n", strerror(errno));
        return -1;
    }
    /* Our signal handler must run on the main thread (it wakes the relay's poll). */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    if (hl_trace_open("qemu", path, &run, &t->rec) != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(p[0]);
        close(p[1]);
        return -1;
    }
    /* The guest's records are expanded as they arrive: what close waits for is what is left. */
    trace_recorder_set_expand_duty(t->rec, 1);
    /* A bigger pipe lets QEMU hand over several buffers while we store the last ones. */
    fcntl(p[0], F_SETPIPE_SZ, HQ_TRACE_PIPE_BYTES);
    t->rfd = p[0];
    t->started = pthread_create(&t->thread, NULL, import_main, t) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!t->started) {
        fprintf(stderr, "orrery: qemu: cannot start the trace import thread\n");
        trace_recorder_close(t->rec, NULL, 0);
        close(p[0]);
        close(p[1]);
        return -1;
    }
    *write_fd = p[1];
    return 0;
}

int hq_trace_end(hq_trace_t *t, const char *path, int status)
{
    int rc = 0;

    pthread_join(t->thread, NULL);
    close(t->rfd);
    if (t->rc != 0) {
        fprintf(stderr, "orrery: qemu: %s\n", t->err);
        rc = -1;
    }
    if (status >= 0)
        trace_recorder_set_exit_status(t->rec, status);
    if (hl_trace_close("qemu", t->rec) != 0)
        return -1;
    fprintf(stderr, "orrery: qemu: trace: %llu records in %s (%llu bad frames%s)\n",
            (unsigned long long)t->st.frames, path,
            (unsigned long long)(t->st.bad_frames + t->st.truncated),
            t->st.truncated ? ", the last one cut short" : "");
    return rc;
}
