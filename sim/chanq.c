/* chanq.c — the runner's queue-bound invariant: every channel endpoint's queue replayed from a
 * node's trace (docs/simulation.md, "Built-in invariants"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <os/os.h>
#include <sim/runner.h>

/* One endpoint: its peer and the messages queued on it, as the records tell. */
typedef struct endpoint {
    uint32_t id; /* 0: a free slot */
    uint32_t peer;
    uint32_t queued;
} endpoint_t;

struct sim_chanq {
    endpoint_t *slots; /* open addressing on id; endpoints are never removed (ids only grow) */
    size_t cap, used;
    uint64_t refused; /* sends refused with OS_EFULL, each at a full queue */
    uint32_t deepest; /* the most messages one endpoint held */
};

sim_chanq_t *sim_chanq_new(void)
{
    return calloc(1, sizeof(sim_chanq_t));
}

void sim_chanq_free(sim_chanq_t *q)
{
    if (q)
        free(q->slots);
    free(q);
}

void sim_chanq_reset(sim_chanq_t *q)
{
    if (q->slots)
        memset(q->slots, 0, q->cap * sizeof q->slots[0]);
    q->used = 0;
}

static size_t slot_of(uint32_t id, size_t cap)
{
    return (size_t)((id * 0x9e3779b1u) & (cap - 1));
}

static endpoint_t *find(sim_chanq_t *q, uint32_t id)
{
    if (!q->cap || !id)
        return NULL;
    for (size_t i = slot_of(id, q->cap);; i = (i + 1) & (q->cap - 1)) {
        if (q->slots[i].id == id)
            return &q->slots[i];
        if (q->slots[i].id == 0)
            return NULL;
    }
}

/* A new endpoint (or the one of that id); NULL when out of memory. */
static endpoint_t *add(sim_chanq_t *q, uint32_t id, uint32_t peer)
{
    endpoint_t *e = find(q, id);
    if (e) {
        e->peer = peer;
        return e;
    }
    if (2 * (q->used + 1) > q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 1024;
        endpoint_t *s = calloc(cap, sizeof *s);
        if (!s)
            return NULL;
        for (size_t i = 0; i < q->cap; i++) {
            if (!q->slots[i].id)
                continue;
            size_t j = slot_of(q->slots[i].id, cap);
            while (s[j].id)
                j = (j + 1) & (cap - 1);
            s[j] = q->slots[i];
        }
        free(q->slots);
        q->slots = s;
        q->cap = cap;
    }
    size_t i = slot_of(id, q->cap);
    while (q->slots[i].id)
        i = (i + 1) & (q->cap - 1);
    q->slots[i] = (endpoint_t){.id = id, .peer = peer};
    q->used++;
    return &q->slots[i];
}

bool sim_chanq_record(sim_chanq_t *q, const hal_trace_rec_t *r, char *why, size_t len)
{
    endpoint_t *e;
    switch (r->kind) {
    case HAL_TR_CHAN_CREATE:
        if (!add(q, r->chan, r->peer) || !add(q, r->peer, r->chan)) {
            snprintf(why, len, "out of memory following channel queues");
            return false;
        }
        return true;
    case HAL_TR_SEND:
        if (r->result == 0 && r->peer) {
            if (!(e = find(q, r->peer)))
                return true; /* not created under our eyes: nothing to compare with */
            if (++e->queued > (uint32_t)OS_CHAN_QUEUE_MAX) {
                snprintf(why, len,
                         "task %u queued a message on endpoint %u, which then held %u "
                         "(OS_CHAN_QUEUE_MAX is %d)",
                         r->task, r->peer, e->queued, OS_CHAN_QUEUE_MAX);
                return false;
            }
            if (e->queued > q->deepest)
                q->deepest = e->queued;
        } else if (r->result == OS_EFULL && r->chan) {
            endpoint_t *s = find(q, r->chan);
            if (!s || !(e = find(q, s->peer)))
                return true;
            q->refused++;
            if (e->queued != OS_CHAN_QUEUE_MAX) {
                snprintf(why, len,
                         "task %u's send on endpoint %u was refused (%s) while its peer %u held "
                         "%u of %d messages",
                         r->task, r->chan, os_strerror(OS_EFULL), s->peer, e->queued,
                         OS_CHAN_QUEUE_MAX);
                return false;
            }
        }
        return true;
    case HAL_TR_DELIVER:
        if (!(e = find(q, r->chan)))
            return true;
        if (e->queued == 0) {
            snprintf(why, len,
                     "task %u was handed a message from endpoint %u, whose queue held none "
                     "(a message delivered twice, or never sent)",
                     r->task, r->chan);
            return false;
        }
        e->queued--;
        return true;
    default:
        return true;
    }
}

void sim_chanq_stats(const sim_chanq_t *q, uint64_t *refused, uint32_t *deepest)
{
    *refused = q->refused;
    *deepest = q->deepest;
}
