/* heap.c — the kernel heap: boundary-tag chunks, segregated free lists, coalescing on free. */
#include "bmlibc.h"

/*
 * One region, carved into chunks laid end to end. Each chunk starts with a
 * 16-byte header: the size of the chunk before it (so free() can merge
 * backwards) and its own size with bit 0 set while in use. A zero-sized
 * in-use sentinel ends the region. Free chunks sit in one of NBINS lists by
 * size class (power of two); malloc takes the first chunk that fits from the
 * smallest class that can hold it and splits off the rest. Payloads are
 * 16-byte aligned. Single-threaded: the image has one CPU and never calls the
 * allocator from an interrupt handler.
 *
 * The heap starts with the first GROW_STEP bytes of its region and grows (the
 * sentinel moves up) when nothing fits: touching all of RAM at boot would make
 * the host back it (a 2 MiB transparent huge page zeroed for the sentinel at
 * the top of RAM costs QEMU milliseconds).
 */
typedef struct chunk {
    size_t prev_size;          /* size of the chunk just below, 0 for the first */
    size_t size;               /* bytes incl. header; bit 0: in use */
    struct chunk *next, *prev; /* free chunks only: their bin's list */
} chunk_t;

enum {
    HDR = 16,       /* header bytes before the payload */
    MIN_CHUNK = 32, /* header + room for the free-list links */
    NBINS = 64,
    GROW_STEP = 1 << 20,
};

#define IN_USE ((size_t)1)

static struct {
    chunk_t *first;       /* lowest chunk */
    chunk_t *end;         /* the sentinel */
    uintptr_t limit;      /* end of the region: the heap may grow up to here */
    chunk_t *bins[NBINS]; /* free lists by floor(log2(size)) */
    size_t total, used;
    long allocations;
} heap;

static size_t csize(const chunk_t *c)
{
    return c->size & ~IN_USE;
}

static chunk_t *after(chunk_t *c)
{
    return (chunk_t *)((char *)c + csize(c));
}

static int bin_of(size_t size)
{
    int b = 63 - __builtin_clzll((unsigned long long)size);
    return b < NBINS ? b : NBINS - 1;
}

static void bin_insert(chunk_t *c)
{
    int b = bin_of(csize(c));

    c->prev = NULL;
    c->next = heap.bins[b];
    if (c->next)
        c->next->prev = c;
    heap.bins[b] = c;
}

static void bin_remove(chunk_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        heap.bins[bin_of(csize(c))] = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

void bm_heap_init(void *base, size_t len)
{
    uintptr_t lo = ((uintptr_t)base + 15) & ~(uintptr_t)15;
    uintptr_t hi = ((uintptr_t)base + len) & ~(uintptr_t)15;

    bm_memset(&heap, 0, sizeof(heap));
    if (hi <= lo || hi - lo < MIN_CHUNK + HDR)
        return;
    heap.limit = hi;
    if (hi - lo > GROW_STEP)
        hi = lo + GROW_STEP;
    heap.first = (chunk_t *)lo;
    heap.end = (chunk_t *)(hi - HDR);
    heap.first->prev_size = 0;
    heap.first->size = (size_t)((uintptr_t)heap.end - lo);
    heap.end->prev_size = heap.first->size;
    heap.end->size = IN_USE;
    heap.total = heap.first->size;
    bin_insert(heap.first);
}

/* Cut c (in use, removed from its bin) down to `need` bytes if the rest can stand alone. */
static void split(chunk_t *c, size_t need)
{
    size_t rest = csize(c) - need;
    chunk_t *r, *next;

    if (rest < MIN_CHUNK)
        return;
    c->size = need | IN_USE;
    r = after(c);
    r->prev_size = need;
    r->size = rest;
    next = after(r);
    next->prev_size = rest;
    if (!(next->size & IN_USE)) {
        /* Only realloc's shrink gets here: merge with the free chunk above. */
        bin_remove(next);
        r->size += csize(next);
        after(r)->prev_size = csize(r);
    }
    bin_insert(r);
}

/* Move the sentinel up by at least `need` bytes (GROW_STEP at least): 0, or -1 at the limit. */
static int grow(size_t need)
{
    uintptr_t top = (uintptr_t)heap.end + HDR;
    size_t step = need + MIN_CHUNK > GROW_STEP ? need + MIN_CHUNK : GROW_STEP;
    chunk_t *c = heap.end, *prev;

    if (heap.limit - top < step)
        step = (heap.limit - top) & ~(size_t)15;
    if (step < need || step < MIN_CHUNK)
        return -1;
    c->size = step; /* the old sentinel heads the new free chunk */
    heap.end = (chunk_t *)((char *)c + step);
    heap.end->prev_size = step;
    heap.end->size = IN_USE;
    heap.total += step;
    prev = (chunk_t *)((char *)c - c->prev_size);
    if (c != heap.first && !(prev->size & IN_USE)) {
        bin_remove(prev);
        prev->size += step;
        c = prev;
        heap.end->prev_size = csize(c);
    }
    bin_insert(c);
    return 0;
}

static chunk_t *find_fit(size_t need)
{
    for (int b = bin_of(need); b < NBINS; b++) {
        for (chunk_t *it = heap.bins[b]; it; it = it->next) {
            if (csize(it) >= need)
                return it;
        }
    }
    return NULL;
}

static int request_size(size_t n, size_t *need)
{
    if (n > ((size_t)1 << 48))
        return -1;
    *need = (n + HDR + 15) & ~(size_t)15;
    if (*need < MIN_CHUNK)
        *need = MIN_CHUNK;
    return 0;
}

void *bm_malloc(size_t n)
{
    size_t need;
    chunk_t *c;

    if (!heap.first || request_size(n, &need) != 0)
        return NULL;
    c = find_fit(need);
    if (!c && grow(need) == 0)
        c = find_fit(need);
    if (!c)
        return NULL;
    bin_remove(c);
    c->size |= IN_USE;
    split(c, need);
    heap.used += csize(c);
    heap.allocations++;
    return (char *)c + HDR;
}

void *bm_calloc(size_t n, size_t size)
{
    void *p;

    if (size && n > (size_t)-1 / size)
        return NULL;
    p = bm_malloc(n * size);
    if (p)
        bm_memset(p, 0, n * size);
    return p;
}

void bm_free(void *p)
{
    chunk_t *c, *next;

    if (!p)
        return;
    c = (chunk_t *)((char *)p - HDR);
    if (!(c->size & IN_USE) || c == heap.end)
        return; /* NEVER: a double free or a wild pointer; bm_heap_check finds the damage */
    heap.used -= csize(c);
    heap.allocations--;
    c->size &= ~IN_USE;
    next = after(c);
    if (!(next->size & IN_USE)) {
        bin_remove(next);
        c->size += csize(next);
    }
    if (c != heap.first) {
        chunk_t *prev = (chunk_t *)((char *)c - c->prev_size);
        if (!(prev->size & IN_USE)) {
            bin_remove(prev);
            prev->size += csize(c);
            c = prev;
        }
    }
    after(c)->prev_size = csize(c);
    bin_insert(c);
}

void *bm_realloc(void *p, size_t n)
{
    chunk_t *c, *next;
    size_t need, old;
    void *q;

    if (!p)
        return bm_malloc(n);
    if (n == 0) {
        bm_free(p);
        return NULL;
    }
    if (request_size(n, &need) != 0)
        return NULL;
    c = (chunk_t *)((char *)p - HDR);
    old = csize(c);
    next = after(c);
    if (need > old && !(next->size & IN_USE) && old + csize(next) >= need) {
        /* Grow in place into the free chunk above. */
        bin_remove(next);
        c->size += csize(next);
        after(c)->prev_size = csize(c);
    }
    if (csize(c) >= need) {
        split(c, need);
        heap.used += csize(c) - old;
        return p;
    }
    q = bm_malloc(n);
    if (!q)
        return NULL;
    bm_memcpy(q, p, old - HDR);
    bm_free(p);
    return q;
}

void bm_heap_get_stats(bm_heap_stats_t *out)
{
    size_t largest = 0, free_bytes = 0;

    for (int b = 0; b < NBINS; b++) {
        for (chunk_t *c = heap.bins[b]; c; c = c->next) {
            free_bytes += csize(c);
            if (csize(c) > largest)
                largest = csize(c);
        }
    }
    out->total = heap.total;
    out->used = heap.used;
    out->free = free_bytes;
    out->largest = largest;
    out->allocations = heap.allocations;
}

int bm_heap_check(void)
{
    size_t prev = 0, walked_free = 0, listed_free = 0, used = 0;
    int prev_free = 0;

    if (!heap.first)
        return 0;
    for (chunk_t *c = heap.first; c != heap.end; c = after(c)) {
        if (c->prev_size != prev || csize(c) < MIN_CHUNK || (csize(c) & 15) || c > heap.end)
            return -1;
        if (!(c->size & IN_USE)) {
            if (prev_free)
                return -1; /* two free neighbours were not merged */
            walked_free += csize(c);
        } else {
            used += csize(c);
        }
        prev_free = !(c->size & IN_USE);
        prev = csize(c);
    }
    if (heap.end->prev_size != prev || used != heap.used)
        return -1;
    for (int b = 0; b < NBINS; b++) {
        for (chunk_t *c = heap.bins[b]; c; c = c->next) {
            if ((c->size & IN_USE) || bin_of(csize(c)) != b)
                return -1;
            listed_free += csize(c);
        }
    }
    return walked_free == listed_free ? 0 : -1;
}

BM_ALIAS(malloc, bm_malloc)
BM_ALIAS(calloc, bm_calloc)
BM_ALIAS(realloc, bm_realloc)
BM_ALIAS(free, bm_free)
