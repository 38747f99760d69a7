/* fault.c — thin wrappers around the platform's fault-injection hooks, and injected kills. */
#include <k/fault.h>

#include "kpriv.h"

/*
 * The hooks live outside K because the platform installs them before k_boot
 * (which clears K). Call sites test k_faults with one predictable branch; the
 * work happens here, off the hot path.
 */
const k_fault_ops_t *k_faults;

void k_fault_set(const k_fault_ops_t *ops)
{
    k_faults = ops;
}

const k_fault_ops_t *k_fault_get(void)
{
    return k_faults;
}

/* ---- delayed deliveries ---------------------------------------------------------------- */

static void delayed_link(k_chan_t *ch)
{
    if (ch->delayed)
        return;
    ch->delayed = true;
    k_list_push_head(&K.delayed, &ch->dllink);
}

static void delayed_unlink(k_chan_t *ch)
{
    if (!ch->delayed)
        return;
    ch->delayed = false;
    k_list_remove(&K.delayed, &ch->dllink);
}

static k_chan_t *delayed_entry(k_link_t *l)
{
    return K_ENTRY(l, k_chan_t, dllink);
}

/* Lock held: m was just queued on peer by `from`. Ask how long to hold it back. */
void k_fault_on_send(k_task_t *from, k_chan_t *peer, k_msg_t *m)
{
    if (!k_faults->send_delay)
        return;
    uint32_t to = peer->obj.owner ? peer->obj.owner->id : 0;
    uint64_t delay = k_faults->send_delay(k_faults->self, from->id, to, peer->obj.id, m->type);
    uint64_t now = hal_clock_now_ns();
    uint64_t due = delay > UINT64_MAX - now ? UINT64_MAX - 1 : now + delay;
    if (peer->delayed && peer->last_due > due)
        due = peer->last_due; /* never overtake a message queued before */
    if (due <= now)
        return;
    m->due = due;
    peer->last_due = due;
    bool arm = due < k_timer_earliest();
    delayed_link(peer);
    if (arm)
        hal_timer_arm(due);
}

/* Lock held, from k_timer_tick: tell receivers whose head message became due. */
void k_fault_tick(uint64_t now)
{
    k_chan_t *ch = delayed_entry(K.delayed.first);
    while (ch) {
        k_chan_t *next = delayed_entry(ch->dllink.next);
        if (ch->count && k_msg_due(k_chan_head(ch)))
            k_pend(&ch->obj);
        if (ch->last_due <= now)
            delayed_unlink(ch); /* everything queued is due: ordinary delivery from here */
        ch = next;
    }
}

/* Lock held: the earliest due time of a message not yet due, or UINT64_MAX. */
uint64_t k_fault_next_due(void)
{
    uint64_t now = hal_clock_now_ns(), best = UINT64_MAX;
    K_LIST_FOR(ch, &K.delayed, k_chan_t, dllink)
    {
        K_LIST_FOR(m, &ch->queue, k_msg_t, link)
        {
            if (m->due > now) {
                best = m->due < best ? m->due : best;
                break; /* due times grow along the queue */
            }
        }
    }
    return best;
}

void k_fault_chan_gone(k_chan_t *ch)
{
    delayed_unlink(ch);
}

/* ---- timer jitter ----------------------------------------------------------------------- */

uint64_t k_fault_jitter(k_task_t *t, k_timer_t *tm, uint64_t deadline)
{
    if (!k_faults->timer_jitter || deadline == UINT64_MAX)
        return deadline;
    uint64_t j = k_faults->timer_jitter(k_faults->self, t->id, tm->obj.id, deadline);
    return j > UINT64_MAX - 1 - deadline ? UINT64_MAX - 1 : deadline + j;
}

/* ---- injected kills ----------------------------------------------------------------------- */

int k_fault_kill(uint32_t task_id, int status)
{
    int rc = OS_ENOENT;
    k_lock();
    K_LIST_FOR(t, &K.tasks, k_task_t, tlink)
    {
        if (t->id != task_id)
            continue;
        if (t->dying) {
            rc = OS_ESTATE;
        } else if (t->run == OS_TASK_RUNNING) {
            t->dying = true; /* k_run_one destroys it after this event */
            t->kill_status = status;
            rc = 0;
        } else {
            k_task_destroy(t, status);
            rc = 0;
        }
        break;
    }
    k_unlock();
    return rc;
}
