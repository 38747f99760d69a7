/* make_frames.c — writes the seed inputs of fuzz_trace_frame: valid trace frames (trace/include/trace/frame.h). */
#include <trace/frame.h>

#include <stdio.h>
#include <string.h>

/*
 * fuzz_trace_frame feeds its whole input to the stream decoder in pieces of
 * (first byte + 1) bytes, so each seed is: a split byte, then frames. The
 * decoder skips the split byte as garbage before the first magic.
 */
static unsigned char buf[8 * TRACE_FRAME_MAX];

static int version = 1; /* of the frames frame() writes */

static size_t frame(size_t at, uint32_t kind, uint32_t task, const char *payload, uint64_t seq)
{
    hal_trace_rec_t r;
    memset(&r, 0, sizeof r);
    r.seq = seq;
    r.time_ns = seq * 1000;
    r.kind = kind;
    r.task = task;
    r.chan = 7;
    r.peer = 8;
    r.type = 1;
    r.len = payload ? (uint32_t)strlen(payload) : 0;
    r.data = payload;
    if (version == 2)
        return at + trace_frame2_encode(&r, buf + at, sizeof buf - at);
    return at + trace_frame_encode(&r, buf + at, sizeof buf - at);
}

static int put(const char *dir, const char *name, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_frames DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int bad = 0;
    size_t n;

    buf[0] = 0xff; /* whole input in one piece */
    n = frame(1, 4, 3, "hello", 1);
    bad |= put(dir, "send-hello", n);

    buf[0] = 6; /* 7-byte pieces: frames cut across reads */
    n = frame(1, 1, 2, "echo", 1);
    n = frame(n, 5, 2, "hi there", 2);
    n = frame(n, 2, 2, NULL, 3);
    bad |= put(dir, "spawn-deliver-exit-split", n);

    buf[0] = 0xff; /* garbage between frames: the decoder resynchronizes */
    n = frame(1, 4, 1, "a", 1);
    memcpy(buf + n, "\xa5\x5a\x4f junk", 9);
    n = frame(n + 9, 4, 1, "b", 2);
    bad |= put(dir, "resync", n);

    buf[0] = 0x1f; /* a last frame cut short */
    n = frame(1, 13, 4, "line", 1);
    n = frame(n, 14, 4, "out", 2);
    bad |= put(dir, "truncated", n - 5);

    version = 2; /* the bulk channel's frames */
    buf[0] = 10; /* 11-byte pieces */
    n = frame(1, 4, 3, "hello", 1);
    n = frame(n, 5, 3, "hello", 2);
    n = frame(n, 2, 3, NULL, 3);
    bad |= put(dir, "v2-send-deliver-split", n);

    buf[0] = 0xff; /* both versions in one stream, a false start between them */
    n = frame(1, 4, 1, "a", 1);
    memcpy(buf + n, "\xa5\x5a\x4f\x55junk", 8);
    version = 1;
    n = frame(n + 8, 4, 1, "b", 2);
    version = 2;
    n = frame(n, 13, 4, "line", 3);
    bad |= put(dir, "v2-mixed-resync", n - 3);
    return bad;
}
