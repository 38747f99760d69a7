/* timer.c — one-shot timers in ns: per-task timer objects, one kernel min-heap, one HAL timer. */
#include "kpriv.h"

/* Heap order: deadline, then arm order, so equal deadlines fire as they were armed. */
static bool before(const k_timer_t *a, const k_timer_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->order < b->order);
}

static void heap_put(uint32_t i, k_timer_t *tm)
{
    K.heap[i] = tm;
    tm->heap_idx = (int32_t)i;
}

static void sift_up(uint32_t i)
{
    k_timer_t *tm = K.heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(tm, K.heap[parent]))
            break;
        heap_put(i, K.heap[parent]);
        i = parent;
    }
    heap_put(i, tm);
}

static void sift_down(uint32_t i)
{
    k_timer_t *tm = K.heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= K.heap_len)
            break;
        if (c + 1 < K.heap_len && before(K.heap[c + 1], K.heap[c]))
            c++;
        if (!before(K.heap[c], tm))
            break;
        heap_put(i, K.heap[c]);
        i = c;
    }
    heap_put(i, tm);
}

static void heap_remove(k_timer_t *tm)
{
    uint32_t i = (uint32_t)tm->heap_idx;
    tm->heap_idx = -1;
    K.heap_len--;
    if (i == K.heap_len)
        return;
    k_timer_t *last = K.heap[K.heap_len];
    heap_put(i, last);
    sift_down(i);
    sift_up((uint32_t)last->heap_idx);
}

static uint64_t earliest(void)
{
    uint64_t e = K.heap_len ? K.heap[0]->deadline : UINT64_MAX;
    if (__builtin_expect(!k_list_empty(&K.delayed), 0)) {
        uint64_t d = k_fault_next_due();
        e = d < e ? d : e;
    }
    return e;
}

uint64_t k_timer_earliest(void)
{
    return earliest();
}

static void fire(k_timer_t *tm)
{
    tm->fired = true;
    k_pend(&tm->obj);
}

/* Lock held; no table holds tm. */
void k_timer_destroy(k_timer_t *tm)
{
    if (tm->heap_idx >= 0)
        heap_remove(tm);
    k_obj_unlink(&tm->obj);
    K.ntimers--;
    k_free(tm);
}

bool k_timer_take(k_task_t *t, k_timer_t *tm, os_event_t *ev)
{
    if (!tm->fired)
        return false;
    tm->fired = false;
    ev->kind = OS_EV_TIMER;
    K_TRACE(.kind = HAL_TR_TIMER_FIRE, .task = t->id, .chan = tm->obj.id, .arg = tm->deadline);
    return true;
}

void k_timer_tick(void)
{
    k_lock();
    if (K.booted) {
        uint64_t now = hal_clock_now_ns();
        while (K.heap_len && K.heap[0]->deadline <= now) {
            k_timer_t *tm = K.heap[0];
            heap_remove(tm);
            fire(tm);
        }
        if (__builtin_expect(!k_list_empty(&K.delayed), 0))
            k_fault_tick(now);
        hal_timer_arm(earliest());
    }
    k_unlock();
}

uint64_t k_next_deadline(void)
{
    k_lock();
    uint64_t d = earliest();
    k_unlock();
    return d;
}

/* ---- os API ------------------------------------------------------------------------------ */

int os_timer_create(os_ctx_t *ctx, os_handle_t *out)
{
    k_task_t *t = ctx->task;
    if (!out)
        return OS_EINVAL;
    k_timer_t *tm = k_calloc(1, sizeof(*tm));
    if (!tm)
        return OS_ENOMEM;
    tm->heap_idx = -1;
    k_lock();
    int rc = k_handle_room(t, 1) ? 0 : OS_ENOSPC;
    if (rc == 0 && K.heap_cap < K.ntimers + 1) {
        /* Room in the heap for every timer, so os_timer_set never allocates. */
        uint32_t cap = K.heap_cap ? K.heap_cap * 2 : 64;
        k_timer_t **heap = k_malloc(cap * sizeof(*heap));
        if (heap) {
            for (uint32_t i = 0; i < K.heap_len; i++)
                heap[i] = K.heap[i];
            k_free(K.heap);
            K.heap = heap;
            K.heap_cap = cap;
        } else {
            rc = OS_ENOMEM;
        }
    }
    os_handle_t h = OS_HANDLE_NONE;
    if (rc == 0) {
        k_obj_link(&tm->obj, K_OBJ_TIMER);
        K.ntimers++;
        h = k_handle_install(t, &tm->obj, OS_RIGHTS_ALL);
    }
    k_unlock();
    if (rc) {
        k_free(tm);
        return rc;
    }
    *out = h;
    return 0;
}

static int timer_get(k_task_t *t, os_handle_t h, k_timer_t **out)
{
    k_slot_t *s;
    int rc = k_handle_get(t, h, &s);
    if (rc)
        return rc;
    if (s->obj->type != K_OBJ_TIMER)
        return OS_EINVAL;
    if (!(s->rights & OS_RIGHT_WRITE))
        return OS_EACCES;
    *out = (k_timer_t *)s->obj;
    return 0;
}

int os_timer_set(os_ctx_t *ctx, os_handle_t timer, uint64_t deadline_ns)
{
    k_task_t *t = ctx->task;
    k_timer_t *tm;
    k_lock();
    int rc = timer_get(t, timer, &tm);
    if (rc == 0) {
        /* Re-arming replaces the old deadline, and drops a fire not yet told. */
        if (tm->heap_idx >= 0)
            heap_remove(tm);
        tm->fired = false;
        k_unpend(&tm->obj);
        K_TRACE(.kind = HAL_TR_TIMER_SET, .task = t->id, .chan = tm->obj.id, .arg = deadline_ns);
        if (__builtin_expect(k_faults != NULL, 0))
            deadline_ns = k_fault_jitter(t, tm, deadline_ns);
        tm->deadline = deadline_ns;
        tm->order = K.timer_order++;
        if (deadline_ns <= hal_clock_now_ns()) {
            fire(tm);
        } else {
            uint64_t old = earliest();
            tm->heap_idx = (int32_t)K.heap_len++;
            K.heap[tm->heap_idx] = tm;
            sift_up((uint32_t)tm->heap_idx);
            if (deadline_ns < old)
                hal_timer_arm(deadline_ns);
        }
    }
    k_unlock();
    return rc;
}

int os_timer_cancel(os_ctx_t *ctx, os_handle_t timer)
{
    k_task_t *t = ctx->task;
    k_timer_t *tm;
    k_lock();
    int rc = timer_get(t, timer, &tm);
    if (rc == 0) {
        if (tm->heap_idx >= 0)
            heap_remove(tm);
        tm->fired = false;
        k_unpend(&tm->obj);
        K_TRACE(.kind = HAL_TR_TIMER_CANCEL, .task = t->id, .chan = tm->obj.id);
    }
    k_unlock();
    return rc;
}
