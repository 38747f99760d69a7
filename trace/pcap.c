/* pcap.c — the pcap writer behind `run --pcap`, `trace export --pcap` and the simulator's switch,
 * and the export of a trace's net0 frames. */
#include <trace/outpath.h>
#include <trace/pcap.h>
#include <trace/recorder.h>

#include <hal/codes.h>
#include <hal/trace.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct trace_pcap {
    FILE *f;
    bool to_stdout;  /* "-": no partial, no rename */
    int write_errno; /* first failed write (0: none) */
    uint64_t frames;
    trace_out out; /* the partial and its final name */
};

/* pcap is written little-endian whatever the host, so a capture is the same bytes anywhere. */
static void put32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
}

static void put16(unsigned char *b, uint16_t v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
}

static int put(trace_pcap *p, const void *buf, size_t len)
{
    if (p->write_errno)
        return -1;
    if (len && fwrite(buf, 1, len, p->f) != len) {
        p->write_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int trace_pcap_open(const char *path, trace_pcap **out, char *err, size_t errlen)
{
    trace_pcap *p = calloc(1, sizeof(*p));
    int rc, fd;

    *out = NULL;
    if (!p) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    p->out.lock_fd = -1;
    if (strcmp(path, "-") == 0) {
        p->f = stdout;
        p->to_stdout = true;
    } else {
        rc = trace_out_prepare_pcap(path, &p->out, err, errlen);
        if (rc != 0) {
            free(p);
            return rc;
        }
        if ((fd = dup(p->out.lock_fd)) < 0 || !(p->f = fdopen(fd, "w"))) {
            snprintf(err, errlen, "cannot write %s: %s", p->out.partial, strerror(errno));
            if (fd >= 0)
                close(fd);
            trace_out_release(&p->out, true);
            free(p);
            return -1;
        }
        setvbuf(p->f, NULL, _IOFBF, 64 << 10);
    }
    unsigned char h[TRACE_PCAP_HEADER_LEN];
    put32(h, TRACE_PCAP_MAGIC_NS);
    put16(h + 4, 2); /* version 2.4 */
    put16(h + 6, 4);
    put32(h + 8, 0);  /* thiszone: timestamps are UTC-less kernel time */
    put32(h + 12, 0); /* sigfigs */
    put32(h + 16, TRACE_PCAP_SNAPLEN);
    put32(h + 20, TRACE_PCAP_LINKTYPE_ETHERNET);
    /* Out at once: even a capture killed before its first frame is a valid, empty pcap. */
    if (put(p, h, sizeof(h)) == 0 && fflush(p->f) != 0)
        p->write_errno = errno ? errno : EIO;
    *out = p;
    return 0;
}

int trace_pcap_write(trace_pcap *p, uint64_t t_ns, const void *data, size_t len)
{
    unsigned char r[TRACE_PCAP_RECORD_LEN];
    size_t incl = len > TRACE_PCAP_SNAPLEN ? TRACE_PCAP_SNAPLEN : len;

    put32(r, (uint32_t)(t_ns / 1000000000u));
    put32(r + 4, (uint32_t)(t_ns % 1000000000u));
    put32(r + 8, (uint32_t)incl);
    put32(r + 12, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
    if (put(p, r, sizeof(r)) != 0 || put(p, data, incl) != 0)
        return -1;
    p->frames++;
    return 0;
}

uint64_t trace_pcap_frames(const trace_pcap *p)
{
    return p->frames;
}

int trace_pcap_close(trace_pcap *p, char *err, size_t errlen)
{
    int rc = 0;

    if (!p)
        return 0;
    const char *name = p->to_stdout ? "stdout" : p->out.partial;
    if (fflush(p->f) != 0 && !p->write_errno)
        p->write_errno = errno ? errno : EIO;
    if (!p->to_stdout && fclose(p->f) != 0 && !p->write_errno)
        p->write_errno = errno ? errno : EIO;
    if (p->write_errno) {
        snprintf(err, errlen, "error writing %s: %s", name, strerror(p->write_errno));
        rc = -1;
    } else if (!p->to_stdout && trace_out_commit(&p->out, err, errlen) != 0) {
        if (strncmp(err, "trace ", 6) == 0)
            memmove(err, err + 6, strlen(err + 6) + 1);
        rc = -1;
    }
    if (!p->to_stdout)
        trace_out_release(&p->out, false); /* after a failure the partial keeps the frames */
    free(p);
    return rc;
}

void trace_pcap_abort(trace_pcap *p)
{
    if (!p)
        return;
    if (p->to_stdout) {
        fflush(p->f);
    } else {
        fclose(p->f);
        trace_out_release(&p->out, true);
    }
    free(p);
}

/* ---- the frames of a trace ------------------------------------------------------------ */

bool trace_pcap_has_net0(trace_db *db)
{
    size_t n = trace_db_node_count(db);
    int64_t sel = trace_db_selected_node(db);

    if (!n || sel >= 0)
        return trace_db_device_id_on(db, sel >= 0 ? (uint32_t)sel : 0, "net0") != 0;
    for (uint32_t node = 0; node < n; node++)
        if (trace_db_device_id_on(db, node, "net0"))
            return true;
    return false;
}

/* One device row: written if it is a frame that was on the wire; 1 if it was written. */
static int frame_row(trace_pcap *p, trace_pcap_stats *st, const trace_iter *it,
                     const hal_trace_rec_t *r)
{
    if (r->type != HAL_NET_FRAME)
        return 0;
    if (r->kind == HAL_TR_DEV_WRITE && r->result != 0)
        return 0; /* refused by the device: never on the wire */
    if (r->kind != HAL_TR_DEV_POST && r->kind != HAL_TR_DEV_WRITE)
        return 0; /* a delivery: the same frame as its post */
    uint32_t want = trace_iter_len_column(it);
    const char *bad = NULL;
    char why[sizeof(st->why)];
    if (!r->data)
        bad = "no payload";
    else if (r->len != want)
        bad = "payload length disagrees with len";
    else if (r->len > HAL_NET_MTU)
        bad = "longer than an Ethernet frame";
    if (bad) {
        if (!st->bad++) {
            snprintf(why, sizeof(why), "%s (%u bytes, len %u)", bad, (unsigned)r->len,
                     (unsigned)want);
            memcpy(st->why, why, sizeof(why));
            st->first_bad = r->seq;
        }
        return 0;
    }
    if (trace_pcap_write(p, r->time_ns, r->data, r->len) != 0)
        return -1;
    if (r->kind == HAL_TR_DEV_POST)
        st->in++;
    else
        st->out++;
    return 1;
}

int trace_pcap_export(trace_db *db, trace_pcap *p, trace_pcap_stats *st, char *err, size_t errlen)
{
    uint32_t net0[TRACE_NODES_MAX] = {0};
    trace_iter *it = NULL;
    hal_trace_rec_t r;
    bool every_node = trace_db_node_count(db) && trace_db_selected_node(db) < 0;
    int rc;

    memset(st, 0, sizeof(*st));
    if (every_node) {
        /* Every node's net0, in the file's order: a scan of the device records of all nodes. */
        for (uint32_t node = 0; node < trace_db_node_count(db) && node < TRACE_NODES_MAX; node++)
            if ((net0[node] = trace_db_device_id_on(db, node, "net0")) && !st->device)
                st->device = net0[node];
    } else {
        int64_t sel = trace_db_selected_node(db);
        st->device = trace_db_device_id_on(db, sel >= 0 ? (uint32_t)sel : 0, "net0");
    }
    if (!st->device) {
        snprintf(err, errlen,
                 "the trace names no net0 device (run without --net user, or recorded by an"
                 " orrery older than the trace's DEVICE records)");
        return -1;
    }
    if ((every_node ? trace_iter_open(db, NULL, &it)
                    : trace_iter_open_device(db, st->device, &it)) != 0) {
        snprintf(err, errlen, "%s", trace_db_error(db));
        return -1;
    }
    while ((rc = trace_iter_next(it, &r)) == 1) {
        if (every_node) {
            uint32_t node = trace_iter_node(it);
            if (node >= TRACE_NODES_MAX || !net0[node] || r.chan != net0[node])
                continue;
        }
        if (frame_row(p, st, it, &r) < 0)
            break;
    }
    if (rc < 0)
        snprintf(err, errlen, "%s", trace_db_error(db));
    trace_iter_close(it);
    if (rc < 0)
        return -1;
    if (p->write_errno) {
        snprintf(err, errlen, "error writing %s: %s", p->to_stdout ? "stdout" : p->out.partial,
                 strerror(p->write_errno));
        return -1;
    }
    return 0;
}
