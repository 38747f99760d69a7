/* pair.c — SEND/DELIVER pairing by per-endpoint FIFO, and interface resolution per channel. */
#include <trace/decode.h>
#include <trace/pair.h>

#include <stdlib.h>
#include <string.h>

/* ---- a small open-addressing map: uint32 key -> slot index ------------------------------- */

typedef struct u32map {
    uint32_t *keys; /* 0: empty (endpoint ids start at 1) */
    uint32_t *vals;
    size_t cap, n;
} u32map;

static size_t hash32(uint32_t k, size_t cap)
{
    return (size_t)((k * 2654435761u) & (uint32_t)(cap - 1));
}

/* Slot of key, inserting it with value `def` if absent. NULL: out of memory. */
static uint32_t *map_get(u32map *m, uint32_t key, uint32_t def)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t ncap = m->cap ? 2 * m->cap : 64;
        uint32_t *nk = calloc(ncap, sizeof(*nk)), *nv = calloc(ncap, sizeof(*nv));
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = hash32(m->keys[i], ncap);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t j = hash32(key, m->cap);
    while (m->keys[j] && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    if (!m->keys[j]) {
        m->keys[j] = key;
        m->vals[j] = def;
        m->n++;
    }
    return &m->vals[j];
}

static void map_free(u32map *m)
{
    free(m->keys);
    free(m->vals);
}

/* ---- pairing ----------------------------------------------------------------------------- */

typedef struct pending {
    uint64_t seq, ns;
    uint32_t task, iface, len;
} pending;

typedef struct fifo {
    pending *v;
    size_t head, n, cap;
} fifo;

struct trace_pairer {
    u32map index; /* receiving endpoint -> fifos[] index + 1 */
    fifo *fifos;
    size_t nfifos, capfifos;
    uint64_t orphan_delivers;
};

trace_pairer *trace_pairer_new(void)
{
    return calloc(1, sizeof(trace_pairer));
}

static fifo *fifo_for(trace_pairer *p, uint32_t endpoint)
{
    uint32_t *slot = map_get(&p->index, endpoint, 0);

    if (!slot)
        return NULL;
    if (!*slot) {
        if (p->nfifos == p->capfifos) {
            size_t ncap = p->capfifos ? 2 * p->capfifos : 64;
            fifo *nf = realloc(p->fifos, ncap * sizeof(*nf));
            if (!nf)
                return NULL;
            p->fifos = nf;
            p->capfifos = ncap;
        }
        memset(&p->fifos[p->nfifos], 0, sizeof(fifo));
        *slot = (uint32_t)++p->nfifos;
    }
    return &p->fifos[*slot - 1];
}

int trace_pairer_feed(trace_pairer *p, const hal_trace_rec_t *r, uint32_t iface, trace_pair *out)
{
    fifo *f;

    if (r->kind == HAL_TR_SEND && r->result == 0 && r->peer) {
        f = fifo_for(p, r->peer);
        if (!f)
            return 0;
        if (f->head + f->n == f->cap) {
            if (f->head) { /* compact before growing */
                memmove(f->v, f->v + f->head, f->n * sizeof(*f->v));
                f->head = 0;
            }
            if (f->n == f->cap) {
                size_t ncap = f->cap ? 2 * f->cap : 8;
                pending *nv = realloc(f->v, ncap * sizeof(*nv));
                if (!nv)
                    return 0;
                f->v = nv;
                f->cap = ncap;
            }
        }
        f->v[f->head + f->n++] = (pending){r->seq, r->time_ns, r->task, iface, r->len};
        return 0;
    }
    if (r->kind != HAL_TR_DELIVER)
        return 0;
    f = fifo_for(p, r->chan);
    if (!f || !f->n) {
        p->orphan_delivers++;
        return 0;
    }
    pending *s = &f->v[f->head++];
    f->n--;
    if (!f->n)
        f->head = 0;
    out->send_seq = s->seq;
    out->send_ns = s->ns;
    out->sender = s->task;
    out->iface = s->iface ? s->iface : iface;
    out->len = s->len;
    out->deliver_seq = r->seq;
    out->deliver_ns = r->time_ns;
    out->receiver = r->task;
    return 1;
}

void trace_pairer_unmatched(const trace_pairer *p, uint64_t *sends, uint64_t *delivers)
{
    uint64_t n = 0;

    for (size_t i = 0; i < p->nfifos; i++)
        n += p->fifos[i].n;
    *sends = n;
    *delivers = p->orphan_delivers;
}

void trace_pairer_free(trace_pairer *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nfifos; i++)
        free(p->fifos[i].v);
    free(p->fifos);
    map_free(&p->index);
    free(p);
}

/* ---- interfaces per channel -------------------------------------------------------------- */

struct trace_ifmap {
    u32map chan; /* lower endpoint id of the pair -> interface id */
};

trace_ifmap *trace_ifmap_new(void)
{
    return calloc(1, sizeof(trace_ifmap));
}

uint32_t trace_ifmap_resolve(trace_ifmap *m, const hal_trace_rec_t *r)
{
    uint32_t key, *slot, guess;
    char scratch[8];

    if (r->iface || (r->kind != HAL_TR_SEND && r->kind != HAL_TR_DELIVER) || !r->chan)
        return r->iface;
    key = r->peer && r->peer < r->chan ? r->peer : r->chan;
    slot = map_get(&m->chan, key, 0);
    if (slot && *slot &&
        trace_decode_payload(*slot, r->type, r->data, r->len, r->nhandles, scratch,
                             sizeof(scratch)) == 0)
        return *slot;
    guess = trace_guess_iface(r->type, r->data, r->len, r->nhandles);
    if (guess && slot)
        *slot = guess;
    return guess;
}

void trace_ifmap_free(trace_ifmap *m)
{
    if (m) {
        map_free(&m->chan);
        free(m);
    }
}

uint64_t trace_percentile(const uint64_t *sorted, uint64_t n, unsigned pct)
{
    uint64_t rank;

    if (!n)
        return 0;
    rank = (n * pct + 99) / 100; /* nearest rank: ceil(pct/100 * n) */
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}
