/* replay_run.c — the sim side of `orrery replay`: the replayed task, its harness, the kernel hooks.
 */
#include <sim/replay.h>

#include <k/fault.h>
#include <k/kernel.h>
#include <k/replay.h>
#include <image.h>
#include <sim/sim.h>

#include "sim_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The run: sim boots the harness as its first task (privileged); the harness
 * creates one channel per initial handle of the recorded task, keeps one end
 * and spawns the task with the other. From then on the harness holds the
 * peers of the task's channels: the replayer sends the recorded messages from
 * there, closes them for PEER_CLOSED, and receives what the task sends (the
 * harness's handler does nothing: carried handles land in its table). The
 * kernel's own trace records of this run come to replay_sink and are turned
 * into the task's stream with the same handle-value naming as the recording.
 */

struct rp_run {
    rp_recording *rec;
    rp_vec events;    /* the replayed task's stream */
    rp_map owner;     /* object id -> task id << 32 | handle value (last install) */
    rp_map pair;      /* endpoint id -> peer endpoint id */
    uint32_t task;    /* the replayed task's id in this run */
    uint32_t harness; /* the harness's id (1) */
    k_replay_ops_t ops;
    hal_trace_sink_t sink;
    void *host_saved; /* the process's per-node state section, put back at rp_run_stop */
};

static os_ctx_t *harness_ctx;

static void harness_start(os_ctx_t *ctx)
{
    harness_ctx = ctx;
}

static void harness_event(os_ctx_t *ctx, const os_event_t *ev)
{
    (void)ctx;
    (void)ev; /* messages from the task are read from the trace; handles stay in our table */
}

static const os_program_t harness_prog = {
    .name = "replay-harness",
    .state_size = 0,
    .start = harness_start,
    .on_event = harness_event,
};

static const os_program_t *programs[64];

/* ---- the kernel's records of this run ------------------------------------------------------ */

static void replay_sink(void *self, const hal_trace_rec_t *r)
{
    rp_run *run = self;

    if (r->kind == HAL_TR_HANDLE) {
        rp_map_set(&run->owner, RP_KEY(r->chan, rp_obj_kind(r)),
                   (uint64_t)r->task << 32 | (uint32_t)r->arg);
        return;
    }
    if (r->kind == HAL_TR_CHAN_CREATE) {
        rp_map_set(&run->pair, r->chan, r->peer);
        rp_map_set(&run->pair, r->peer, r->chan);
    }
    if (!run->task)
        return;
    bool mine = r->task == run->task && r->kind != HAL_TR_SPAWN;
    bool child = r->kind == HAL_TR_SPAWN && r->arg == run->task;
    if (!mine && !child)
        return;
    uint32_t h = 0, h2 = 0;
    uint64_t o = r->chan ? rp_map_get(&run->owner, RP_KEY(r->chan, rp_obj_kind(r))) : 0;
    if (o && (uint32_t)(o >> 32) == run->task)
        h = (uint32_t)o;
    if (r->kind == HAL_TR_CHAN_CREATE) {
        uint64_t o2 = rp_map_get(&run->owner, RP_KEY(r->peer, HAL_TRACE_OBJ_CHAN));
        h2 = (uint32_t)o2;
    }
    rp_push(&run->events, r, h, h2);
}

/* ---- values for the replayed task --------------------------------------------------------------
 */

static bool hook_clock(void *self, uint64_t *now)
{
    rp_inputs *in = &((rp_run *)self)->rec->in;
    if (in->iclock >= in->nclock)
        return false;
    *now = in->clock[in->iclock++];
    return true;
}

static bool hook_random(void *self, void *buf, size_t len)
{
    rp_inputs *in = &((rp_run *)self)->rec->in;
    if (in->irandom >= in->random.n)
        return false;
    const rp_ev *e = &in->random.v[in->irandom++];
    memset(buf, 0, len);
    memcpy(buf, e->data, e->r.len < len ? e->r.len : len);
    return true;
}

static bool hook_send(void *self, int *rc)
{
    rp_inputs *in = &((rp_run *)self)->rec->in;
    if (in->isend >= in->nsends)
        return false;
    *rc = in->sends[in->isend++];
    return true;
}

static bool hook_spawn(void *self, const char *program, uint32_t *task_id)
{
    rp_inputs *in = &((rp_run *)self)->rec->in;
    (void)program;
    if (in->ispawn >= in->nspawn)
        return false;
    *task_id = in->spawn_ids[in->ispawn++];
    return true;
}

static bool hook_list(void *self, uint32_t which, void *out, size_t max_bytes, int *rc)
{
    rp_inputs *in = &((rp_run *)self)->rec->in;
    if (in->ilist >= in->lists.n)
        return false;
    const rp_ev *e = &in->lists.v[in->ilist++];
    (void)which;
    if (out && e->r.len)
        memcpy(out, e->data, e->r.len < max_bytes ? e->r.len : max_bytes);
    *rc = e->r.result;
    return true;
}

/* ---- start, inject, stop ------------------------------------------------------------------------
 */

/*
 * The device the recorded task used (net0 for tcpip, blk0 for fs), registered after the
 * console, so it has the same device number here as when recorded (a node has the console,
 * then its one device). It stands in only when the recorded task used a device (it got
 * device input or wrote one; the console server never opens net0), so a task that found no
 * device finds none here either. It has the recorded name, so the task's os_device_open finds
 * it; its writes return what the recorded ones did, in order, and its input (net0's frames,
 * blk0's completions) is the recorded DEV_EVENTs, injected in order.
 */
static rp_recording *dev_rec;
static size_t dev_next; /* next event of dev_rec to look at for a DEV_WRITE */

static int dev_write(void *self, uint32_t code, const void *buf, size_t len)
{
    (void)self, (void)code, (void)buf, (void)len;
    for (; dev_rec && dev_next < dev_rec->events.n; dev_next++) {
        const hal_trace_rec_t *r = &dev_rec->events.v[dev_next].r;
        if (r->kind == HAL_TR_DEV_WRITE) {
            dev_next++;
            return r->result;
        }
    }
    return 0;
}

static hal_device_ops_t dev_ops = {.name = "net0", .write = dev_write};

static bool used_a_device(const rp_recording *rec)
{
    for (size_t i = 0; i < rec->events.n; i++) {
        const hal_trace_rec_t *r = &rec->events.v[i].r;
        if (r->kind == HAL_TR_DEV_EVENT || r->kind == HAL_TR_DEV_WRITE)
            return true;
    }
    return false;
}

static const os_program_t *find_program(const char *name)
{
    for (const os_program_t *const *p = orrery_programs; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

int rp_run_start(rp_run **out, rp_recording *rec, char *err, size_t errlen)
{
    os_handle_t keep[8], give[8], task;
    size_t n = 0;
    rp_run *run;

    if (!find_program(rec->name)) {
        snprintf(err, errlen, "program '%s' is not in this orrery's image", rec->name);
        return -1;
    }
    programs[n++] = &harness_prog;
    for (const os_program_t *const *p = orrery_programs; *p && n < 63; p++)
        programs[n++] = *p;
    programs[n] = NULL;
    if (!(run = calloc(1, sizeof(*run)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    run->rec = rec;
    run->sink = (hal_trace_sink_t){.self = run, .record = replay_sink};
    harness_ctx = NULL;
    /*
     * The replayed task starts on a fresh machine: every static of the kernel, the servers and
     * lwIP as the program loaded them (the per-node state section, sim/node_state.c), as the
     * recorded task found them at its boot. lwIP's state is one per process; without this a
     * second tcpip replay in one process found the first one's lwIP (and its owner's task
     * id, alive again in the new kernel) and exited. The process's own copy is put back at
     * rp_run_stop.
     */
    run->host_saved = sim_node_state_new();
    if (run->host_saved) {
        void *fresh = sim_node_state_new();
        sim_node_state_save(run->host_saved);
        if (fresh)
            sim_node_state_load(fresh);
        free(fresh);
    }
    sim_config_t sc = {
        .programs = programs,
        .init_program = harness_prog.name,
        .seed = 1,
        .trace = &run->sink,
    };
    if (sim_boot(&sc) != 0) {
        snprintf(err, errlen, "the simulated kernel did not boot");
        if (run->host_saved)
            sim_node_state_load(run->host_saved);
        free(run->host_saved);
        free(run);
        return -1;
    }
    /* The console server's device is the replay's own console, registered first: no
     * stand-in for it (a second "console" would be refused). */
    const char *dev_name = rec->device[0] ? rec->device : "net0";
    if (used_a_device(rec) && strcmp(dev_name, "console") != 0) {
        dev_rec = rec;
        dev_next = 0;
        dev_ops.name = dev_name;
        if (k_device_add(&dev_ops) < 0) {
            snprintf(err, errlen, "the replay's %s stand-in could not be registered", dev_ops.name);
            rp_run_stop(run);
            return -1;
        }
    }
    sim_run_until_idle();
    run->harness = 1;
    for (size_t i = 0; i < rec->ninitial; i++) {
        if (rec->initial[i] != 1 /* K_OBJ_CHAN */) {
            snprintf(err, errlen, "initial handle %zu of %s is not a channel: cannot replay", i,
                     rec->name);
            rp_run_stop(run);
            return -1;
        }
        if (os_channel_create(harness_ctx, &keep[i], &give[i]) != 0) {
            snprintf(err, errlen, "harness: cannot create channels");
            rp_run_stop(run);
            return -1;
        }
    }
    os_spawn_args_t a = {
        .program = rec->name,
        .handles = give,
        .nhandles = rec->ninitial,
        .arg = rec->arg,
        .arg_len = rec->arg_len,
        .privileged = rec->privileged,
    };
    uint32_t id = 0;
    if (os_spawn(harness_ctx, &a, &task) != 0 || os_task_handle_id(harness_ctx, task, &id) != 0) {
        snprintf(err, errlen, "harness: cannot spawn %s", rec->name);
        rp_run_stop(run);
        return -1;
    }
    run->task = id;
    run->ops = (k_replay_ops_t){.self = run,
                                .clock = hook_clock,
                                .random = hook_random,
                                .send_result = hook_send,
                                .spawn = hook_spawn,
                                .list = hook_list};
    k_replay_set(&run->ops, id, rec->task, run->harness);
    sim_run_until_idle();
    *out = run;
    return 0;
}

const rp_vec *rp_run_events(rp_run *run)
{
    return &run->events;
}

/* The object of this kind behind the replayed task's handle h, or 0. */
static uint32_t task_obj(rp_run *run, uint32_t h, uint32_t kind)
{
    uint64_t want = (uint64_t)run->task << 32 | h;
    for (size_t key = run->owner.cap; key-- > 1;)
        if ((key & 7) == kind && run->owner.v[key] == want)
            return (uint32_t)(key >> 3);
    return 0;
}

/* The harness's handle on the peer of the task's endpoint h, or 0. */
static os_handle_t harness_peer(rp_run *run, uint32_t h, char *err, size_t errlen)
{
    uint32_t ep = task_obj(run, h, 1);
    uint32_t peer = ep ? (uint32_t)rp_map_get(&run->pair, ep) : 0;
    uint64_t o = peer ? rp_map_get(&run->owner, RP_KEY(peer, HAL_TRACE_OBJ_CHAN)) : 0;
    if (!ep)
        snprintf(err, errlen, "the task holds no handle %#x", h);
    else if (!peer || (uint32_t)(o >> 32) != run->harness)
        snprintf(err, errlen, "the peer of handle %#x is not held by the harness", h);
    else
        return (os_handle_t)(uint32_t)o;
    return 0;
}

int rp_run_inject(rp_run *run, const rp_ev *e, char *err, size_t errlen)
{
    const hal_trace_rec_t *r = &e->r;
    os_handle_t hp, carried[4];
    int rc = 0;

    switch (r->kind) {
    case HAL_TR_DELIVER:
        if (!(hp = harness_peer(run, e->h, err, errlen)))
            return -1;
        for (uint32_t i = 0; i < r->nhandles && i < 4; i++) {
            os_handle_t keep;
            if (e->carried[i] == 1)
                rc = os_channel_create(harness_ctx, &keep, &carried[i]);
            else if (e->carried[i] == 2)
                rc = os_timer_create(harness_ctx, &carried[i]);
            else
                rc = OS_EINVAL;
            if (rc) {
                snprintf(err, errlen, "cannot make a carried handle of kind %u", e->carried[i]);
                return -1;
            }
        }
        rc = os_send(harness_ctx, hp, r->type, e->data, r->len, carried,
                     r->nhandles < 4 ? r->nhandles : 4);
        break;
    case HAL_TR_PEER_CLOSED:
        if (!(hp = harness_peer(run, e->h, err, errlen)))
            return -1;
        rc = os_handle_close(harness_ctx, hp);
        break;
    case HAL_TR_WRITABLE:
        rc = k_replay_writable(task_obj(run, e->h, 1));
        break;
    case HAL_TR_TIMER_FIRE:
        if (r->arg > sim_now())
            sim_advance(r->arg - sim_now());
        break;
    case HAL_TR_DEV_EVENT:
        rc = k_post((int)r->chan, r->type, e->data, r->len); /* device ids: registration order */
        break;
    case HAL_TR_TASK_EXIT_EVENT:
        rc = k_replay_task_exit(task_obj(run, e->h, 3), r->result);
        break;
    case HAL_TR_EXIT:
        rc = k_fault_kill(run->task, r->result);
        break;
    default:
        snprintf(err, errlen, "kind %u is not an input", r->kind);
        return -1;
    }
    if (rc) {
        snprintf(err, errlen, "the harness could not inject it (%s)", os_strerror(rc));
        return -1;
    }
    sim_run_until_idle();
    return 0;
}

const char *rp_run_console(rp_run *run, size_t *len)
{
    (void)run;
    return sim_console_output(len);
}

void rp_run_stop(rp_run *run)
{
    k_replay_set(NULL, 0, 0, 0);
    sim_teardown();
    if (run->host_saved)
        sim_node_state_load(run->host_saved);
    free(run->host_saved);
    rp_vec_free(&run->events);
    rp_map_free(&run->owner);
    rp_map_free(&run->pair);
    free(run);
}
