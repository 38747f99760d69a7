/* sched.c — scheduling policies (FIFO hosted, seeded pick deterministic) and worker pinning. */
#include <string.h>

#include "kpriv.h"

/* Lock held: t has an event (or its start) waiting. */
void k_sched_ready(k_task_t *t)
{
    if (t->run != OS_TASK_IDLE || t->dying)
        return; /* queued already, or running: k_run_one re-queues it after the handler */
    t->run = OS_TASK_READY;
    K.nready++;
    K.policy->push(K.sched, t);
    if (!K.tearing_down)
        hal_cpu_wake(t->pin);
}

bool k_can_run(k_task_t *t, unsigned worker)
{
    return t->pin < 0 || (unsigned)t->pin == worker;
}

int k_task_pin(uint32_t task_id, int worker)
{
    int rc = OS_ENOENT;
    k_lock();
    if (worker >= (int)K.workers) {
        rc = OS_EINVAL;
    } else {
        K_LIST_FOR(t, &K.tasks, k_task_t, tlink)
        {
            if (t->id != task_id)
                continue;
            t->pin = worker < 0 ? -1 : worker;
            if (t->run == OS_TASK_READY)
                hal_cpu_wake(t->pin);
            rc = 0;
            break;
        }
    }
    k_unlock();
    return rc;
}

/* ---- a queue of ready tasks in arrival order, shared by both policies --------------------- */

typedef struct readyq {
    k_task_t **q;
    size_t cap, head, len;
    uint64_t rng; /* seeded policy: splitmix64 state */
} readyq_t;

static int rq_init(void **self, size_t max_tasks, uint64_t seed)
{
    readyq_t *rq = k_calloc(1, sizeof(*rq));
    if (!rq)
        return OS_ENOMEM;
    rq->q = k_calloc(max_tasks ? max_tasks : 1, sizeof(*rq->q));
    if (!rq->q) {
        k_free(rq);
        return OS_ENOMEM;
    }
    rq->cap = max_tasks ? max_tasks : 1;
    rq->rng = seed;
    *self = rq;
    return 0;
}

static void rq_push(void *self, k_task_t *t)
{
    readyq_t *rq = self;
    /* Each live task is queued at most once and there are <= max_tasks. */
    if (NEVER(rq->len == rq->cap))
        return;
    rq->q[(rq->head + rq->len) % rq->cap] = t;
    rq->len++;
}

static k_task_t **rq_at(readyq_t *rq, size_t i)
{
    return &rq->q[(rq->head + i) % rq->cap];
}

/* Remove the i-th queued task, keeping the others in order. */
static k_task_t *rq_take(readyq_t *rq, size_t i)
{
    k_task_t *t = *rq_at(rq, i);
    if (i == 0) {
        rq->head = (rq->head + 1) % rq->cap;
    } else {
        for (size_t j = i; j + 1 < rq->len; j++)
            *rq_at(rq, j) = *rq_at(rq, j + 1);
    }
    rq->len--;
    return t;
}

static void rq_remove(void *self, k_task_t *t)
{
    readyq_t *rq = self;
    for (size_t i = 0; i < rq->len; i++) {
        if (*rq_at(rq, i) == t) {
            rq_take(rq, i);
            return;
        }
    }
}

static void rq_fini(void *self)
{
    readyq_t *rq = self;
    if (!rq)
        return;
    k_free(rq->q);
    k_free(rq);
}

static k_task_t *fifo_pop(void *self, unsigned worker, bool (*can_run)(k_task_t *, unsigned))
{
    readyq_t *rq = self;
    for (size_t i = 0; i < rq->len; i++)
        if (can_run(*rq_at(rq, i), worker))
            return rq_take(rq, i);
    return NULL;
}

const k_sched_policy_t k_sched_fifo = {
    .name = "fifo",
    .init = rq_init,
    .push = rq_push,
    .pop = fifo_pop,
    .remove = rq_remove,
    .fini = rq_fini,
};

/* splitmix64 (Steele, Lea, Flood 2014): tiny, and every seed gives a good stream. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static k_task_t *seeded_pop(void *self, unsigned worker, bool (*can_run)(k_task_t *, unsigned))
{
    readyq_t *rq = self;
    size_t runnable = 0;
    for (size_t i = 0; i < rq->len; i++)
        runnable += can_run(*rq_at(rq, i), worker);
    if (!runnable)
        return NULL;
    size_t pick = (size_t)(splitmix64(&rq->rng) % runnable), i;
    for (i = 0; i < rq->len; i++)
        if (can_run(*rq_at(rq, i), worker) && pick-- == 0)
            break;
    if (NEVER(i == rq->len)) /* pick < runnable: the loop always finds it */
        return NULL;
    return rq_take(rq, i);
}

const k_sched_policy_t k_sched_seeded = {
    .name = "seeded",
    .init = rq_init,
    .push = rq_push,
    .pop = seeded_pop,
    .remove = rq_remove,
    .fini = rq_fini,
};
