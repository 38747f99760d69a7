/* test_blk_hosted.c — the hosted blk0 device on an image file: info, I/O, refusals, read-only,
 * many requests in flight, a client whose queue fills, EIO, teardown, and hl_blk_open. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hal/blk.h>
#include <hl/hosted.h>
#include <k/kernel.h>

/* hal-linux/internal.h: the device's counters, read while the run goes on. */
void hl_blk_counts(uint64_t out[6]);

enum { SEC = HAL_BLK_SECTOR, MAXS = HAL_BLK_MAX_SECTORS };

static char dir[64];
static char img[128];

/* Sector s of a fresh image: every byte (s * 7 + i) & 0xff, so each sector is told apart. */
static uint8_t fresh_byte(uint64_t s, size_t i)
{
    return (uint8_t)(s * 7 + i);
}

/* What the tests write: a stamp of (tag, sector, byte). */
static uint8_t stamp_byte(uint32_t tag, uint64_t s, size_t i)
{
    return (uint8_t)(tag * 31 + s * 13 + i * 3 + 1);
}

static void make_image(uint64_t sectors)
{
    snprintf(img, sizeof(img), "%s/disk.img", dir);
    int fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    uint8_t b[SEC];
    for (uint64_t s = 0; s < sectors; s++) {
        for (size_t i = 0; i < SEC; i++)
            b[i] = fresh_byte(s, i);
        assert_int_equal(SEC, pwrite(fd, b, SEC, (off_t)(s * SEC)));
    }
    close(fd);
}

/* The image's sector s, read by the test from the file itself. */
static void file_sector(uint64_t s, uint8_t *b)
{
    int fd = open(img, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(SEC, pread(fd, b, SEC, (off_t)(s * SEC)));
    close(fd);
}

/* ---- the client task: one program, its behaviour chosen by `mode` --------------------------- */

enum mode { M_INFO, M_RW, M_BAD, M_RO, M_MANY, M_NOREAD, M_EIO, M_TEARDOWN };
static enum mode mode;

enum { MANY = 300, MANY_SECTORS = MANY * MAXS, NOREAD = OS_CHAN_QUEUE_MAX + HL_BLK_INFLIGHT };

static struct {
    int info;
    hal_blk_info_t inf;
    int rc[16];
    int wr_status, fl_status, rd_status;
    int completions;
    bool read_ok;
    int errors;           /* unexpected write results or completions */
    uint8_t done[MANY];   /* completions per id (many, noread) */
    int submitted, phase; /* many: 0 writes, 1 flush, 2 reads */
    int extra_rc;         /* noread: the write after the 160th */
    int accepted;         /* teardown */
} seen;

typedef struct blk_test {
    os_handle_t dev;
} blk_test_t;

static uint8_t msg[sizeof(hal_blk_req_t) + MAXS * SEC];

static int req(os_ctx_t *ctx, uint32_t code, uint64_t id, uint64_t sector, uint32_t count,
               uint32_t tag, size_t extra)
{
    blk_test_t *t = os_state(ctx);
    hal_blk_req_t r = {.id = id, .sector = sector, .count = count, .status = 12345};
    memcpy(msg, &r, sizeof(r));
    size_t len = sizeof(r);
    if (code == HAL_BLK_WRITE) {
        for (uint32_t k = 0; k < count && k < MAXS; k++)
            for (size_t i = 0; i < SEC; i++)
                msg[len + k * SEC + i] = stamp_byte(tag, sector + k, i);
        len += (size_t)count * SEC;
    }
    return os_device_write(ctx, t->dev, code, msg, len + extra);
}

static void blk_start(os_ctx_t *ctx)
{
    blk_test_t *t = os_state(ctx);
    OS_ASSERT(ctx, os_device_open(ctx, "blk0", &t->dev) == 0);
}

static bool read_matches(const os_event_t *ev, uint32_t tag, bool fresh)
{
    hal_blk_req_t r;
    memcpy(&r, ev->data, sizeof(r));
    if (ev->len != sizeof(r) + (size_t)r.count * SEC)
        return false;
    const uint8_t *d = (const uint8_t *)ev->data + sizeof(r);
    for (uint32_t k = 0; k < r.count; k++)
        for (size_t i = 0; i < SEC; i++)
            if (d[k * SEC + i] !=
                (fresh ? fresh_byte(r.sector + k, i) : stamp_byte(tag, r.sector + k, i)))
                return false;
    return true;
}

/* Many: keep HL_BLK_INFLIGHT busy; ids 0..MANY-1, each `id` covers sectors id*7 .. id*7+n-1. */
static void many_fill(os_ctx_t *ctx)
{
    while (seen.submitted < MANY) {
        int id = seen.submitted;
        uint32_t n = (uint32_t)(id % MAXS) + 1;
        int rc = req(ctx, seen.phase == 0 ? HAL_BLK_WRITE : HAL_BLK_READ, (uint64_t)id,
                     (uint64_t)id * MAXS, n, 5, 0);
        if (rc == OS_EFULL)
            return; /* a completion frees a slot: we come back then */
        if (rc != 0) {
            seen.errors++;
            return;
        }
        seen.submitted++;
    }
}

static void on_info(os_ctx_t *ctx)
{
    switch (mode) {
    case M_INFO: {
        /* asked again (a restarted server does), it comes again; with data it is refused */
        os_handle_t dev = ((blk_test_t *)os_state(ctx))->dev;
        if (seen.info == 1) {
            seen.rc[0] = os_device_write(ctx, dev, HAL_BLK_INFO, "x", 1);
            seen.rc[1] = os_device_write(ctx, dev, HAL_BLK_INFO, NULL, 0);
        } else {
            os_shutdown(ctx, 0);
        }
        break;
    }
    case M_RW:
    case M_RO:
        seen.rc[0] = req(ctx, HAL_BLK_WRITE, 1, 3, 3, 9, 0);
        break;
    case M_BAD: {
        uint64_t last = seen.inf.sectors - 1;
        int i = 0;
        seen.rc[i++] = req(ctx, 99, 1, 0, 1, 0, 0);           /* code */
        seen.rc[i++] = req(ctx, HAL_BLK_INFO, 1, 0, 1, 0, 0); /* device's code */
        seen.rc[i++] = os_device_write(ctx, ((blk_test_t *)os_state(ctx))->dev, HAL_BLK_READ, msg,
                                       sizeof(hal_blk_req_t) - 1);         /* short */
        seen.rc[i++] = req(ctx, HAL_BLK_READ, 1, 0, 0, 0, 0);              /* count 0 */
        seen.rc[i++] = req(ctx, HAL_BLK_READ, 1, 0, MAXS + 1, 0, 0);       /* count > max */
        seen.rc[i++] = req(ctx, HAL_BLK_READ, 1, 0, 1, 0, 4);              /* read with data */
        seen.rc[i++] = req(ctx, HAL_BLK_WRITE, 1, 0, 2, 0, (size_t)-SEC);  /* one sector short */
        seen.rc[i++] = req(ctx, HAL_BLK_WRITE, 1, 0, 1, 0, 1);             /* a byte over */
        seen.rc[i++] = req(ctx, HAL_BLK_READ, 1, last + 1, 1, 0, 0);       /* past the end */
        seen.rc[i++] = req(ctx, HAL_BLK_WRITE, 1, last - 1, 3, 0, 0);      /* crosses the end */
        seen.rc[i++] = req(ctx, HAL_BLK_READ, 1, UINT64_MAX - 1, 4, 0, 0); /* wraps */
        seen.rc[i++] = req(ctx, HAL_BLK_FLUSH, 1, 0, 0, 0, 8);             /* flush with data */
        seen.rc[i++] = req(ctx, HAL_BLK_READ, 2, last, 1, 0, 0);           /* the last: fine */
        break;
    }
    case M_MANY:
        many_fill(ctx);
        break;
    case M_NOREAD: {
        /* Never return while filling: nothing is delivered to us, so the kernel's queue takes
         * OS_CHAN_QUEUE_MAX completions and the device keeps the other HL_BLK_INFLIGHT. */
        time_t give_up = time(NULL) + 120; /* a hang guard only */
        while (seen.submitted < NOREAD && time(NULL) < give_up) {
            int rc = req(ctx, HAL_BLK_READ, (uint64_t)seen.submitted, (uint64_t)seen.submitted % 64,
                         1, 0, 0);
            if (rc == 0)
                seen.submitted++;
            else if (rc != OS_EFULL)
                seen.errors++;
        }
        /* Every slot is taken (by a completion the full queue refused, or by a read the I/O
         * threads have not finished yet): deterministic OS_EFULL. */
        seen.extra_rc = req(ctx, HAL_BLK_READ, 999, 0, 1, 0, 0);
        /* Stay until the loop thread has met the full queue at least once; returning earlier
         * would let the queue drain before the slowest reads finish, and then no completion
         * ever waits (seen on a loaded machine). */
        for (uint64_t c[6] = {0}; c[5] == 0 && time(NULL) < give_up;) {
            hl_blk_counts(c);
            if (c[5] == 0)
                nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
        break;
    }
    case M_EIO: {
        /* The image shrinks under the device: reading what is gone fails on the host. */
        seen.rc[1] = truncate(img, 8 * SEC);
        seen.rc[0] = req(ctx, HAL_BLK_READ, 1, 32, 2, 0, 0);
        break;
    }
    case M_TEARDOWN:
        /* Accept what fits and shut down at once: teardown serves every accepted write. */
        for (int id = 0; id < HL_BLK_INFLIGHT + 8; id++)
            if (req(ctx, HAL_BLK_WRITE, (uint64_t)id, (uint64_t)id * MAXS, MAXS, 3, 0) == 0) {
                seen.accepted++;
                seen.done[id] = 1;
            }
        os_shutdown(ctx, 0);
        break;
    }
}

static void blk_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind != OS_EV_DEVICE)
        return;
    if (ev->type == HAL_BLK_INFO) {
        seen.info++;
        if (ev->len == sizeof(seen.inf))
            memcpy(&seen.inf, ev->data, sizeof(seen.inf));
        on_info(ctx);
        return;
    }
    hal_blk_req_t r;
    if (ev->len < sizeof(r)) {
        seen.errors++;
        return;
    }
    memcpy(&r, ev->data, sizeof(r));
    seen.completions++;
    switch (mode) {
    case M_RW:
    case M_RO:
        if (ev->type == HAL_BLK_WRITE) {
            seen.wr_status = r.status;
            seen.rc[1] = req(ctx, HAL_BLK_FLUSH, 2, 0, 0, 0, 0);
        } else if (ev->type == HAL_BLK_FLUSH) {
            seen.fl_status = r.status;
            seen.rc[2] = req(ctx, HAL_BLK_READ, 3, 2, 5, 0, 0); /* one fresh sector each side */
        } else if (ev->type == HAL_BLK_READ) {
            seen.rd_status = r.status;
            /* sectors 2 and 6 fresh, 3..5 written (unless read-only: all fresh) */
            bool ok = r.status == 0 && r.id == 3 && ev->len == sizeof(r) + 5 * SEC;
            const uint8_t *d = (const uint8_t *)ev->data + sizeof(r);
            for (uint32_t k = 0; ok && k < 5; k++) {
                bool written = mode == M_RW && k >= 1 && k <= 3;
                for (size_t i = 0; ok && i < SEC; i++)
                    ok = d[k * SEC + i] ==
                         (written ? stamp_byte(9, 2 + k, i) : fresh_byte(2 + k, i));
            }
            seen.read_ok = ok;
            os_shutdown(ctx, 0);
        }
        break;
    case M_BAD:
        seen.rd_status = r.status;
        seen.read_ok = ev->type == HAL_BLK_READ && r.id == 2 && read_matches(ev, 0, true);
        os_shutdown(ctx, 0);
        break;
    case M_MANY:
        if (ev->type == HAL_BLK_FLUSH) {
            seen.fl_status = r.status;
            seen.phase = 2;
            seen.submitted = 0;
            memset(seen.done, 0, sizeof(seen.done));
            many_fill(ctx);
            break;
        }
        if (r.id >= MANY || r.status != 0 || (ev->type == HAL_BLK_WRITE) != (seen.phase == 0) ||
            (ev->type == HAL_BLK_READ && !read_matches(ev, 5, false)))
            seen.errors++;
        else if (++seen.done[r.id] != 1)
            seen.errors++;
        {
            int all = 0;
            for (int i = 0; i < MANY; i++)
                all += seen.done[i] != 0;
            if (all == MANY) {
                if (seen.phase == 0) {
                    seen.phase = 1;
                    if (req(ctx, HAL_BLK_FLUSH, 7, 0, 0, 0, 0) != 0)
                        seen.errors++;
                } else {
                    os_shutdown(ctx, 0);
                }
                break;
            }
        }
        many_fill(ctx);
        break;
    case M_NOREAD:
        if (ev->type != HAL_BLK_READ || r.status != 0 || r.id >= NOREAD)
            seen.errors++;
        else if (++seen.done[r.id] != 1)
            seen.errors++;
        if (seen.completions == NOREAD)
            os_shutdown(ctx, 0);
        break;
    case M_EIO:
        seen.rd_status = r.status;
        seen.read_ok = ev->len == sizeof(r); /* no sectors with a failed read */
        os_shutdown(ctx, 0);
        break;
    default:
        seen.errors++;
        break;
    }
}

static const os_program_t blk_prog = {"blk-test", sizeof(blk_test_t), blk_start, blk_event};
static const os_program_t *const blk_programs[] = {&blk_prog, NULL};

static int run_blk(enum mode m, const char *spec, hl_run_stats_t *stats)
{
    memset(&seen, 0, sizeof(seen));
    mode = m;
    hl_blk_config_t disk;
    char err[4200];
    int orc = hl_blk_open(spec, &disk, err, sizeof(err));
    if (orc != 0)
        fail_msg("hl_blk_open(%s): %s", spec, err);
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    rc.programs = blk_programs;
    rc.init_program = "blk-test";
    rc.console_in = -1;
    rc.console_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    rc.workers = 2;
    rc.disk = &disk;
    rc.stats = stats;
    rc.timeout_ms = 120000; /* a hang guard only: every run ends on its own */
    int status = hl_run(&rc);
    close(rc.console_out);
    hl_blk_close(&disk);
    assert_int_equal(-1, disk.fd);
    return status;
}

/* ---- the tests ---------------------------------------------------------------------------- */

static void info_posted_at_start_and_on_request(void **state)
{
    make_image(64);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_INFO, img, &st));
    assert_false(st.timed_out);
    assert_int_equal(0, st.leaks);
    assert_int_equal(OS_EINVAL, seen.rc[0]);
    assert_int_equal(0, seen.rc[1]);
    assert_int_equal(2, seen.info);
    assert_int_equal(64, seen.inf.sectors);
    assert_int_equal(0, seen.inf.read_only);
    assert_int_equal(HAL_BLK_MAX_SECTORS, seen.inf.max_sectors);
    assert_int_equal(0, st.blk_reads + st.blk_writes + st.blk_flushes + st.blk_bytes);
}

static void write_flush_read_back(void **state)
{
    make_image(64);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_RW, img, &st));
    assert_false(st.timed_out);
    assert_int_equal(0, st.leaks);
    assert_int_equal(0, seen.rc[0]);
    assert_int_equal(0, seen.rc[1]);
    assert_int_equal(0, seen.rc[2]);
    assert_int_equal(0, seen.wr_status);
    assert_int_equal(0, seen.fl_status);
    assert_int_equal(0, seen.rd_status);
    assert_true(seen.read_ok);
    assert_int_equal(3, seen.completions);
    assert_int_equal(1, st.blk_reads);
    assert_int_equal(1, st.blk_writes);
    assert_int_equal(1, st.blk_flushes);
    assert_int_equal(8 * SEC, st.blk_bytes); /* 3 written, 5 read */
    /* The file itself: sectors 3..5 hold the stamp, 2 and 6 are untouched. */
    uint8_t b[SEC];
    for (uint64_t s = 2; s <= 6; s++) {
        file_sector(s, b);
        for (size_t i = 0; i < SEC; i++)
            assert_int_equal(s >= 3 && s <= 5 ? stamp_byte(9, s, i) : fresh_byte(s, i), b[i]);
    }
    struct stat sb;
    assert_int_equal(0, stat(img, &sb));
    assert_int_equal(64 * SEC, sb.st_size); /* never grown or truncated */
}

static void bad_requests_refused(void **state)
{
    make_image(64);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_BAD, img, &st));
    assert_false(st.timed_out);
    for (int i = 0; i < 12; i++)
        if (seen.rc[i] != OS_EINVAL)
            fail_msg("request %d: %d, not OS_EINVAL", i, seen.rc[i]);
    assert_int_equal(0, seen.rc[12]);
    assert_int_equal(1, seen.completions); /* nothing refused was queued */
    assert_int_equal(0, seen.rd_status);
    assert_true(seen.read_ok);
    assert_int_equal(1, st.blk_reads);
    assert_int_equal(0, st.blk_writes);
    assert_int_equal(0, st.blk_flushes);
}

static void read_only_refuses_writes(void **state)
{
    make_image(64);
    char spec[160];
    snprintf(spec, sizeof(spec), "%s,ro", img);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_RO, spec, &st));
    assert_false(st.timed_out);
    assert_int_equal(1, seen.inf.read_only);
    assert_int_equal(0, seen.rc[0]);             /* accepted ... */
    assert_int_equal(OS_EACCES, seen.wr_status); /* ... and completed refused */
    assert_int_equal(0, seen.fl_status);
    assert_true(seen.read_ok); /* all fresh */
    assert_int_equal(5 * SEC, st.blk_bytes);
    uint8_t b[SEC];
    file_sector(4, b);
    for (size_t i = 0; i < SEC; i++)
        assert_int_equal(fresh_byte(4, i), b[i]);
}

static void many_in_flight_complete_once(void **state)
{
    make_image(MANY_SECTORS);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_MANY, img, &st));
    assert_false(st.timed_out);
    assert_int_equal(0, st.leaks);
    assert_int_equal(0, seen.errors);
    assert_int_equal(0, seen.fl_status);
    for (int i = 0; i < MANY; i++)
        if (seen.done[i] != 1)
            fail_msg("read %d completed %d times", i, seen.done[i]);
    assert_int_equal(MANY, st.blk_writes);
    assert_int_equal(MANY, st.blk_reads);
    assert_int_equal(1, st.blk_flushes);
    /* The file holds every write. */
    uint8_t b[SEC];
    for (int id = 0; id < MANY; id += 37) {
        uint32_t n = (uint32_t)(id % MAXS) + 1;
        for (uint32_t k = 0; k < n; k++) {
            uint64_t s = (uint64_t)id * MAXS + k;
            file_sector(s, b);
            for (size_t i = 0; i < SEC; i++)
                assert_int_equal(stamp_byte(5, s, i), b[i]);
        }
    }
}

static void full_queue_keeps_every_completion(void **state)
{
    make_image(64);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_NOREAD, img, &st));
    assert_false(st.timed_out);
    assert_int_equal(0, st.leaks);
    assert_int_equal(0, seen.errors);
    assert_int_equal(NOREAD, seen.submitted);
    assert_int_equal(OS_EFULL, seen.extra_rc);
    assert_int_equal(NOREAD, seen.completions);
    for (int i = 0; i < NOREAD; i++)
        if (seen.done[i] != 1)
            fail_msg("read %d completed %d times", i, seen.done[i]);
    assert_int_equal(NOREAD, st.blk_reads);
    assert_true(st.blk_full >= 1);
    /* At least one completion met the full queue and waited for resume (how many depends on
     * how many had finished before the handler returned), none more than once. */
    assert_true(st.blk_post_waits >= 1);
    assert_true(st.blk_post_waits <= HL_BLK_INFLIGHT);
}

static void host_eio_becomes_status(void **state)
{
    make_image(64);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_EIO, img, &st));
    assert_false(st.timed_out);
    assert_int_equal(0, seen.rc[1]);
    assert_int_equal(0, seen.rc[0]);
    assert_int_equal(OS_EIO, seen.rd_status);
    assert_true(seen.read_ok);
    assert_int_equal(0, st.blk_bytes);
}

static void teardown_serves_accepted_writes(void **state)
{
    make_image(HL_BLK_INFLIGHT * 2 * MAXS);
    hl_run_stats_t st;
    assert_int_equal(0, run_blk(M_TEARDOWN, img, &st));
    assert_false(st.timed_out);
    assert_int_equal(0, st.leaks);
    assert_true(seen.accepted >= HL_BLK_INFLIGHT);
    assert_int_equal(seen.accepted, st.blk_writes);
    uint8_t b[SEC];
    for (int id = 0; id < HL_BLK_INFLIGHT + 8; id++) {
        file_sector((uint64_t)id * MAXS + MAXS - 1, b);
        bool written = b[0] == stamp_byte(3, (uint64_t)id * MAXS + MAXS - 1, 0);
        assert_int_equal(seen.done[id], written);
    }
}

/* ---- hl_blk_open ------------------------------------------------------------------------- */

static void open_refuses(const char *spec, const char *want)
{
    hl_blk_config_t c;
    char err[4200] = "";
    assert_int_equal(-1, hl_blk_open(spec, &c, err, sizeof(err)));
    assert_int_equal(-1, c.fd);
    if (!strstr(err, want))
        fail_msg("%s: '%s' lacks '%s'", spec, err, want);
    hl_blk_close(&c); /* harmless */
}

static void open_checks_the_image(void **state)
{
    char p[160];
    make_image(4);
    open_refuses("", "needs an image file name");
    open_refuses(",ro", "needs an image file name");
    snprintf(p, sizeof(p), "%s/missing.img", dir);
    open_refuses(p, "missing.img: cannot open: No such file or directory");
    struct stat sb;
    assert_int_equal(-1, stat(p, &sb)); /* never created */
    open_refuses(dir, "is a directory");
    open_refuses("/dev/null", "/dev/null: is a character device, not an image file");
    snprintf(p, sizeof(p), "%s/fifo", dir);
    assert_int_equal(0, mkfifo(p, 0600));
    open_refuses(p, "is not a regular file"); /* without hanging in open */
    snprintf(p, sizeof(p), "%s/empty.img", dir);
    close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    open_refuses(p, "empty.img: size 0 is not a non-zero multiple of 512");
    snprintf(p, sizeof(p), "%s/odd.img", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_int_equal(0, ftruncate(fd, 1000));
    close(fd);
    open_refuses(p, "odd.img: size 1000 is not a non-zero multiple of 512");
    assert_int_equal(0, stat(p, &sb));
    assert_int_equal(1000, sb.st_size); /* untouched */

    hl_blk_config_t c;
    char err[4200];
    assert_int_equal(0, hl_blk_open(img, &c, err, sizeof(err)));
    assert_int_equal(4, c.sectors);
    assert_false(c.read_only);
    assert_string_equal(img, c.path);
    hl_blk_close(&c);
    snprintf(p, sizeof(p), "%s,ro", img);
    assert_int_equal(0, hl_blk_open(p, &c, err, sizeof(err)));
    assert_true(c.read_only);
    assert_string_equal(img, c.path);
    hl_blk_close(&c);
    /* A file we may not write is served read-only (root may write anything: nothing to see). */
    assert_int_equal(0, chmod(img, 0444));
    assert_int_equal(0, hl_blk_open(img, &c, err, sizeof(err)));
    assert_int_equal(geteuid() != 0, c.read_only);
    hl_blk_close(&c);
    assert_int_equal(0, chmod(img, 0644));
}

static void open_locks_the_image(void **state)
{
    make_image(4);
    char ro[160];
    snprintf(ro, sizeof(ro), "%s,ro", img);
    hl_blk_config_t a, b, c;
    char err[4200];
    assert_int_equal(0, hl_blk_open(img, &a, err, sizeof(err)));
    open_refuses(img, "in use");
    open_refuses(ro, "in use"); /* a reader would see the writer's sectors change */
    hl_blk_close(&a);
    /* Readers share. */
    assert_int_equal(0, hl_blk_open(ro, &b, err, sizeof(err)));
    assert_int_equal(0, hl_blk_open(ro, &c, err, sizeof(err)));
    open_refuses(img, "in use");
    hl_blk_close(&b);
    hl_blk_close(&c);
    assert_int_equal(0, hl_blk_open(img, &a, err, sizeof(err)));
    hl_blk_close(&a);
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/orrery-blk-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

/* Only what setup and the tests made. */
static int cleanup(void **state)
{
    const char *names[] = {"disk.img", "fifo", "empty.img", "odd.img"};
    char p[160];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(info_posted_at_start_and_on_request),
        cmocka_unit_test(write_flush_read_back),
        cmocka_unit_test(bad_requests_refused),
        cmocka_unit_test(read_only_refuses_writes),
        cmocka_unit_test(many_in_flight_complete_once),
        cmocka_unit_test(full_queue_keeps_every_completion),
        cmocka_unit_test(host_eio_becomes_status),
        cmocka_unit_test(teardown_serves_accepted_writes),
        cmocka_unit_test(open_checks_the_image),
        cmocka_unit_test(open_locks_the_image),
    };
    return cmocka_run_group_tests(tests, setup, cleanup);
}
