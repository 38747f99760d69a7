/* blk.c — the virtio block device (type 2) as the "blk0" device: 512-byte sectors in and out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hal/blk.h>
#include <hal/device.h>
#include <k/kernel.h>
#include <os/errno.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

/*
 * QEMU: q35:     -drive file=F,format=raw,if=none,id=blk0 -device virtio-blk-pci,drive=blk0
 *       microvm: ... -device virtio-blk-device,drive=blk0
 * (`orrery qemu --disk F[,ro]` passes these). The contract is codes.h's (HAL_BLK_*).
 *
 * Features: VERSION_1 and, if offered, RO (the disk is read-only: writes complete with
 * OS_EACCES and never reach the device) and FLUSH (without it the device is write-through
 * and a FLUSH completes at once). Nothing else: one queue, and each request is one chain of
 * at most three descriptors (header, data, status byte), so SEG_MAX and SIZE_MAX never bind.
 *
 * Requests: SLOTS slots, each holding the virtio header, the hal_blk_req_t and up to
 * HAL_BLK_MAX_SECTORS of data in one block, then the status byte. The hal_blk_req_t sits
 * right before the data so a completed READ is posted from the slot as it is. A write takes
 * a free slot (none: OS_EFULL, as a full queue of a real controller) and chains it into the
 * ring. The interrupt only wakes the run loop, which calls bm_virtio_blk_poll: each used
 * chain's status becomes the request's (OK 0, IOERR OS_EIO, UNSUPP or anything else
 * OS_EINVAL) and the slot joins the done list, in completion order. The done list is posted
 * with k_post; when the kernel's queue is full the slot stays on the list (and so out of the
 * free pool) until the kernel calls resume: a completion is delayed, never dropped.
 *
 * Only the run loop touches the ring (writes come from tasks run by the loop, one CPU);
 * the interrupt handler sets a flag.
 */
enum {
    BLK_F_RO = 5,
    BLK_F_FLUSH = 9,
    CFG_CAPACITY = 0, /* config space: capacity in 512-byte sectors (le64) */
    T_IN = 0,         /* virtio_blk_outhdr.type */
    T_OUT = 1,
    T_FLUSH = 4,
    S_OK = 0, /* the status byte */
    S_IOERR = 1,
    S_UNSUPP = 2,
    SLOTS = 32, /* requests in flight (or waiting to be posted) at most */
    RING = 128, /* descriptors: three per request */
    STATUS_NONE = 0xff,
};

typedef struct slot {
    /* device-readable header (struct virtio_blk_outhdr) */
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
    /* ours: the request as the task wrote it, then its sectors (posted together) */
    hal_blk_req_t req;
    uint8_t data[HAL_BLK_MAX_SECTORS * HAL_BLK_SECTOR];
    uint8_t status;    /* device-writable */
    uint32_t code;     /* HAL_BLK_READ, WRITE or FLUSH */
    struct slot *next; /* free or done list */
} slot_t;

static struct {
    vio_dev_t *dev;
    int kdev; /* k_device_add's number */
    virtq_t q;
    slot_t *slots;
    slot_t *free;              /* slots not in use */
    slot_t *done, **done_tail; /* completed, not yet posted (in completion order) */
    int in_flight;             /* slots with the device */
    int max_flight;            /* SLOTS, or fewer when the ring is small */
    uint64_t capacity;
    bool ro, has_flush;

    /* run loop */
    bool started;
    bool info_due; /* HAL_BLK_INFO not yet posted */
    bool blocked;  /* k_post said OS_EFULL: wait for resume */
    /* blktest: completions go here instead of k_post (same return convention) */
    int (*sink)(uint32_t code, const void *data, size_t len);

    /* interrupt handler -> run loop */
    volatile bool irq;
    volatile uint32_t irqs;

    /* counters */
    uint64_t reads, writes, flushes, errors, refused_ro, full, held;
} B;

static void done_push(slot_t *s)
{
    s->next = NULL;
    *B.done_tail = s;
    B.done_tail = &s->next;
}

static int check(uint32_t code, const void *buf, size_t len, hal_blk_req_t *r)
{
    if (code != HAL_BLK_READ && code != HAL_BLK_WRITE && code != HAL_BLK_FLUSH)
        return OS_EINVAL;
    if (len < sizeof(*r))
        return OS_EINVAL;
    memcpy(r, buf, sizeof(*r));
    if (code == HAL_BLK_FLUSH)
        return len == sizeof(*r) && r->count == 0 && r->sector == 0 ? 0 : OS_EINVAL;
    if (r->count < 1 || r->count > HAL_BLK_MAX_SECTORS)
        return OS_EINVAL;
    if (r->sector >= B.capacity || r->count > B.capacity - r->sector)
        return OS_EINVAL; /* past the end */
    if (len != sizeof(*r) + (code == HAL_BLK_WRITE ? (size_t)r->count * HAL_BLK_SECTOR : 0))
        return OS_EINVAL;
    return 0;
}

static int blk_write(void *self, uint32_t code, const void *buf, size_t len)
{
    hal_blk_req_t r;
    slot_t *s;
    vq_buf_t b[3];
    unsigned nout, nin;
    int rc;

    if (code == HAL_BLK_INFO) {
        if (len != 0)
            return OS_EINVAL;
        B.info_due = true; /* posted by the next poll, for a restarted server */
        return 0;
    }
    rc = check(code, buf, len, &r);
    if (rc != 0)
        return rc;
    if (!B.free || B.in_flight >= B.max_flight) {
        B.full++;
        return OS_EFULL;
    }
    s = B.free;
    B.free = s->next;
    s->req = r;
    s->req.status = 0;
    s->code = code;
    if ((code == HAL_BLK_WRITE && B.ro) || (code == HAL_BLK_FLUSH && !B.has_flush)) {
        /* Never sent: a read-only disk refuses, a write-through one has nothing to flush. */
        if (code == HAL_BLK_WRITE) {
            s->req.status = OS_EACCES;
            B.refused_ro++;
        } else {
            B.flushes++;
        }
        done_push(s);
        return 0;
    }
    s->type = code == HAL_BLK_READ ? T_IN : code == HAL_BLK_WRITE ? T_OUT : T_FLUSH;
    s->reserved = 0;
    s->sector = code == HAL_BLK_FLUSH ? 0 : r.sector;
    s->status = STATUS_NONE;
    b[0] = (vq_buf_t){&s->type, 16};
    if (code == HAL_BLK_FLUSH) {
        b[1] = (vq_buf_t){&s->status, 1};
        nout = 1;
        nin = 1;
    } else {
        b[1] = (vq_buf_t){s->data, r.count * HAL_BLK_SECTOR};
        b[2] = (vq_buf_t){&s->status, 1};
        if (code == HAL_BLK_WRITE) {
            memcpy(s->data, (const uint8_t *)buf + sizeof(r), (size_t)r.count * HAL_BLK_SECTOR);
            nout = 2;
            nin = 1;
        } else {
            nout = 1;
            nin = 2;
        }
    }
    if (virtq_add(&B.q, b, nout, nin, s) != 0) { /* never: max_flight keeps to the ring */
        s->next = B.free;
        B.free = s;
        B.full++;
        return OS_EFULL;
    }
    B.in_flight++;
    virtq_kick(&B.q);
    return 0;
}

/* The kernel's queue drained after OS_EFULL: the run loop may post again (it runs next). */
static void blk_resume(void *self)
{
    B.blocked = false;
}

static const hal_device_ops_t blk_ops = {
    .name = "blk0",
    .self = NULL,
    .write = blk_write,
    .resume = blk_resume,
};

static void on_irq(void *self)
{
    B.irqs++;
    B.irq = true;
}

int bm_virtio_blk_init(void)
{
    vio_dev_t *d = vio_find(VIO_ID_BLK, 0);
    uint64_t got = 0;
    int kdev;

    if (!d)
        return -1; /* no device: no blk0 */
    if (vio_begin(d, 1ull << BLK_F_RO | 1ull << BLK_F_FLUSH, &got) != 0) {
        bm_printf("[bm] virtio-blk at %s: the device refused our features; no blk0\n", d->where);
        return -1;
    }
    if (vio_irq_enable(d, on_irq, NULL) != 0 || vio_queue_setup(d, 0, &B.q, RING) != 0 ||
        B.q.size < 3) {
        bm_printf("[bm] virtio-blk at %s: no interrupt or queue; no blk0\n", d->where);
        d->ops->set_status(d, VIO_S_FAILED);
        return -1;
    }
    /* The heap is identity-mapped like all RAM: a slot's address is its physical address. */
    B.slots = calloc(SLOTS, sizeof(slot_t));
    if (!B.slots) {
        bm_printf("[bm] virtio-blk at %s: no memory for requests; no blk0\n", d->where);
        d->ops->set_status(d, VIO_S_FAILED);
        return -1;
    }
    for (int i = SLOTS - 1; i >= 0; i--) {
        B.slots[i].next = B.free;
        B.free = &B.slots[i];
    }
    B.done = NULL;
    B.done_tail = &B.done;
    B.max_flight = B.q.size / 3 < SLOTS ? B.q.size / 3 : SLOTS;
    B.dev = d;
    B.ro = (got & 1ull << BLK_F_RO) != 0;
    B.has_flush = (got & 1ull << BLK_F_FLUSH) != 0;
    B.capacity = d->ops->config_read(d, CFG_CAPACITY, 8);
    vio_driver_ok(d);
    kdev = k_device_add(&blk_ops);
    if (kdev < 0) {
        bm_printf("[bm] virtio-blk at %s: cannot register blk0 (%d)\n", d->where, kdev);
        d->ops->set_status(d, VIO_S_FAILED);
        B.dev = NULL;
        return -1;
    }
    B.kdev = kdev;
    B.info_due = true;
    if (bm_boot.verbose)
        bm_printf("[bm] blk0: virtio-blk at %s (%s), %lu sectors, %s, flush %s, "
                  "%d requests in flight, vector %#x\n",
                  d->where, d->ops->name, (unsigned long)B.capacity,
                  B.ro ? "read-only" : "read-write", B.has_flush ? "yes" : "no (write-through)",
                  B.max_flight, (unsigned)d->vector);
    return 0;
}

static int post(uint32_t code, const void *data, size_t len)
{
    return B.sink ? B.sink(code, data, len) : k_post(B.kdev, code, data, len);
}

void bm_virtio_blk_start(void)
{
    if (!B.dev)
        return;
    B.started = true;
    bm_virtio_blk_poll(); /* posts HAL_BLK_INFO */
}

/* A used chain: the device's status byte becomes the request's. */
static void complete(slot_t *s)
{
    B.in_flight--;
    switch (s->status) {
    case S_OK:
        s->req.status = 0;
        break;
    case S_IOERR:
        s->req.status = OS_EIO;
        break;
    case S_UNSUPP:
    default: /* a status the device should not give: the request was not done as asked */
        s->req.status = OS_EINVAL;
        break;
    }
    if (s->req.status != 0)
        B.errors++;
    else if (s->code == HAL_BLK_READ)
        B.reads++;
    else if (s->code == HAL_BLK_WRITE)
        B.writes++;
    else
        B.flushes++;
    done_push(s);
}

bool bm_virtio_blk_poll(void)
{
    hal_blk_info_t info;
    slot_t *s;
    size_t len;
    bool moved = false;
    int rc;

    if (!B.started)
        return false;
    if (B.irq)
        B.irq = false; /* the used ring is read below either way */
    while ((s = virtq_next_used(&B.q, NULL)) != NULL) {
        complete(s);
        moved = true;
    }
    if (B.blocked)
        return moved;
    if (B.info_due) {
        info = (hal_blk_info_t){B.capacity, B.ro ? 1u : 0u, HAL_BLK_MAX_SECTORS};
        rc = post(HAL_BLK_INFO, &info, sizeof(info));
        if (rc == OS_EFULL) {
            B.blocked = true;
            B.held++;
            return moved;
        }
        B.info_due = false;
    }
    while ((s = B.done) != NULL) {
        len = sizeof(s->req);
        if (s->code == HAL_BLK_READ && s->req.status == 0)
            len += (size_t)s->req.count * HAL_BLK_SECTOR;
        rc = post(s->code, &s->req, len);
        if (rc == OS_EFULL) {
            B.blocked = true; /* kept at the head of the list, posted again after resume */
            B.held++;
            break;
        }
        /* Posted (or, for an error the kernel gives other than a full queue, which a
         * completion of at most 4096 bytes cannot meet, given up) */
        B.done = s->next;
        if (!B.done)
            B.done_tail = &B.done;
        s->next = B.free;
        B.free = s;
        moved = true;
    }
    return moved;
}

bool bm_virtio_blk_pending(void)
{
    if (!B.started)
        return false;
    if (B.irq || *(volatile uint16_t *)&B.q.used->idx != B.q.last_used)
        return true;
    return !B.blocked && (B.info_due || B.done != NULL);
}

void bm_virtio_blk_report(void)
{
    if (!B.dev)
        return;
    bm_printf("[bm] blk0: %lu reads, %lu writes, %lu flushes, %lu errors, %lu writes refused "
              "(read-only), %lu refused (queue full), held %lu times for a full kernel queue, "
              "interrupts %u\n",
              (unsigned long)B.reads, (unsigned long)B.writes, (unsigned long)B.flushes,
              (unsigned long)B.errors, (unsigned long)B.refused_ro, (unsigned long)B.full,
              (unsigned long)B.held, (unsigned)B.irqs);
}

/*
 * `--append blktest`: the driver's own test, before any server runs. It writes a pattern to
 * the first TEST_SECTORS sectors (a few requests in flight at once), flushes, reads them
 * back and compares; fills the request slots to meet OS_EFULL; then times TIMED reads kept
 * SLOTS deep. Completions come to test_sink instead of k_post, which refuses every fourth
 * one with OS_EFULL once to exercise the hold-and-resume path. The host checks the pattern
 * in the image file (pytest/test_qemu_blk.py): sector s holds "orrery blktest sector s"
 * and then bytes (s + i) & 0xff.
 */
enum { TEST_SECTORS = 64, TEST_PER_REQ = 4, TIMED = 10000 };

static struct {
    unsigned completed, refusals, mismatches, bad_status;
    int last_status[8]; /* by code */
    uint8_t *readback;  /* TEST_SECTORS sectors */
} T;

static int test_sink(uint32_t code, const void *data, size_t len)
{
    hal_blk_req_t r;

    if (code == HAL_BLK_INFO)
        return 0;
    if (++T.refusals % 4 == 0)
        return OS_EFULL; /* wait_for resumes, as the kernel does once its queue drains */
    memcpy(&r, data, sizeof(r));
    T.completed++;
    T.last_status[code & 7] = r.status;
    if (r.status != 0)
        T.bad_status++;
    if (code == HAL_BLK_READ && r.status == 0 && r.sector + r.count <= TEST_SECTORS &&
        len == sizeof(r) + (size_t)r.count * HAL_BLK_SECTOR)
        memcpy(T.readback + r.sector * HAL_BLK_SECTOR, (const uint8_t *)data + sizeof(r),
               (size_t)r.count * HAL_BLK_SECTOR);
    return 0;
}

static void pattern(uint64_t s, uint8_t *p)
{
    for (unsigned i = 0; i < HAL_BLK_SECTOR; i++)
        p[i] = (uint8_t)((s + i) & 0xff);
    snprintf((char *)p, 40, "orrery blktest sector %lu", (unsigned long)s);
}

/* Wait until `want` completions have come (interrupts on); false after 10 s. */
static bool wait_for(unsigned want)
{
    uint64_t t0 = rdtsc();

    while (T.completed < want) {
        if (rdtsc() - t0 > 10 * bm_tsc_hz())
            return false;
        if (B.blocked)
            blk_resume(NULL);
        irq_disable();
        if (!bm_virtio_blk_pending())
            __asm__ volatile("sti; hlt" ::: "memory");
        else
            irq_enable();
        bm_virtio_blk_poll();
    }
    return true;
}

static int submit(uint32_t code, uint64_t sector, uint32_t count, const uint8_t *data)
{
    uint8_t buf[sizeof(hal_blk_req_t) + HAL_BLK_MAX_SECTORS * HAL_BLK_SECTOR];
    hal_blk_req_t r = {.id = sector, .sector = sector, .count = count};
    size_t len = sizeof(r);

    memcpy(buf, &r, sizeof(r));
    if (code == HAL_BLK_WRITE) {
        memcpy(buf + sizeof(r), data, (size_t)count * HAL_BLK_SECTOR);
        len += (size_t)count * HAL_BLK_SECTOR;
    }
    return blk_write(NULL, code, buf, len);
}

void bm_virtio_blk_selftest(void)
{
    uint8_t want[TEST_PER_REQ * HAL_BLK_SECTOR];
    unsigned sent = 0, full_at = 0;
    int rc, inval;
    uint64_t t1;

    if (!B.dev) {
        bm_printf("[bm] blktest: no virtio-blk device\n");
        return;
    }
    if (B.capacity < TEST_SECTORS) {
        bm_printf("[bm] blktest: the disk has %lu sectors, fewer than %d\n",
                  (unsigned long)B.capacity, TEST_SECTORS);
        return;
    }
    T.readback = calloc(TEST_SECTORS, HAL_BLK_SECTOR);
    if (!T.readback)
        return;
    B.sink = test_sink;
    B.started = true;
    wait_for(0); /* HAL_BLK_INFO goes to the sink */
    bm_virtio_blk_poll();
    bm_printf("[bm] blktest: virtio-blk at %s (%s), %lu sectors, %s\n", B.dev->where,
              B.dev->ops->name, (unsigned long)B.capacity, B.ro ? "read-only" : "read-write");

    /* Bad requests are refused at once, as the hosted device does. */
    inval = 0;
    inval += submit(HAL_BLK_READ, 0, 0, NULL) == OS_EINVAL;
    inval += submit(HAL_BLK_READ, B.capacity - 1, 2, NULL) == OS_EINVAL;
    inval += submit(HAL_BLK_READ, 0, HAL_BLK_MAX_SECTORS + 1, NULL) == OS_EINVAL;
    inval += blk_write(NULL, 3, "", 0) == OS_EINVAL;
    bm_printf("[bm] blktest: %d of 4 bad requests refused with OS_EINVAL\n", inval);

    for (uint64_t s = 0; s < TEST_SECTORS; s += TEST_PER_REQ) {
        for (unsigned k = 0; k < TEST_PER_REQ; k++)
            pattern(s + k, want + k * HAL_BLK_SECTOR);
        rc = submit(HAL_BLK_WRITE, s, TEST_PER_REQ, want);
        if (rc != 0) {
            bm_printf("[bm] blktest: write of sector %lu: %d\n", (unsigned long)s, rc);
            break;
        }
        sent++;
    }
    wait_for(sent);
    bm_printf("[bm] blktest: wrote %d sectors in %u requests: status %d%s\n", TEST_SECTORS, sent,
              T.last_status[HAL_BLK_WRITE],
              T.last_status[HAL_BLK_WRITE] == OS_EACCES ? " (OS_EACCES: read-only)" : "");
    rc = submit(HAL_BLK_FLUSH, 0, 0, NULL);
    sent += rc == 0;
    wait_for(sent);
    bm_printf("[bm] blktest: flush: %d, status %d\n", rc, T.last_status[HAL_BLK_FLUSH]);
    for (uint64_t s = 0; s < TEST_SECTORS; s += HAL_BLK_MAX_SECTORS) {
        uint32_t n = TEST_SECTORS - s < HAL_BLK_MAX_SECTORS ? (uint32_t)(TEST_SECTORS - s)
                                                            : HAL_BLK_MAX_SECTORS;
        if (submit(HAL_BLK_READ, s, n, NULL) == 0)
            sent++;
    }
    wait_for(sent);
    for (uint64_t s = 0; s < TEST_SECTORS; s++) {
        pattern(s, want);
        T.mismatches += memcmp(want, T.readback + s * HAL_BLK_SECTOR, HAL_BLK_SECTOR) != 0;
    }
    bm_printf("[bm] blktest: read back %d sectors: %u differ from the pattern, status %d%s\n",
              TEST_SECTORS, T.mismatches, T.last_status[HAL_BLK_READ],
              T.last_status[HAL_BLK_READ] == OS_EIO ? " (OS_EIO)" : "");

    /* Fill every slot: the next request finds none. */
    while ((rc = submit(HAL_BLK_READ, 0, 1, NULL)) == 0)
        full_at++;
    sent += full_at;
    bm_printf("[bm] blktest: queue full after %u requests in flight: %d%s\n", full_at, rc,
              rc == OS_EFULL ? " (OS_EFULL)" : "");
    wait_for(sent);

    /* Throughput: TIMED single-sector reads, kept as deep as the slots allow. */
    t1 = rdtsc();
    for (unsigned issued = 0; issued < TIMED;) {
        while (issued < TIMED && submit(HAL_BLK_READ, issued % TEST_SECTORS, 1, NULL) == 0) {
            issued++;
            sent++;
        }
        if (!wait_for(T.completed + 1))
            break;
    }
    wait_for(sent);
    t1 = rdtsc() - t1;
    bm_printf("[bm] blktest: %u requests completed of %u sent (%u with a bad status, %u held "
              "and retried); %u reads in %lu us: %lu requests per second\n",
              T.completed, sent, T.bad_status, (unsigned)B.held, TIMED,
              (unsigned long)(bm_tsc_to_ns(t1) / 1000),
              (unsigned long)(TIMED * 1000000000ull / (bm_tsc_to_ns(t1) ? bm_tsc_to_ns(t1) : 1)));
    bm_virtio_blk_report();
    B.sink = NULL;
    B.blocked = false;
    B.info_due = true; /* the sink had the first: the server that opens blk0 gets its own */
    free(T.readback);
}
