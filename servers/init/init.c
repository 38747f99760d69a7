/* init.c — task 1: starts the manifest's programs, serves names, enforces reach, restarts. */
#include <image.h>
#include <iface/console.h>
#include <iface/init.h>
#include <manifest.h>

#include <stdio.h>
#include <string.h>

enum {
    INIT_SLOTS_MAX = 32,   /* programs init supervises (manifest + spawned on request) */
    INIT_REGS_MAX = 32,    /* registered interfaces */
    INIT_PENDING_MAX = 32, /* connects waiting for their interface */
    INIT_READ_AHEAD = 8,   /* console input asked for ahead while init reads it itself */
};

/* One supervised program: its policy and, while it runs, its task. */
typedef struct slot {
    bool used;
    manifest_program_t prog; /* policy and reach; line 0: spawned on request */
    bool running;
    os_handle_t task; /* MANAGE handle; OS_EV_TASK_EXIT arrives on it */
    os_handle_t boot; /* our end of its bootstrap channel */
    uint32_t task_id;
    uint32_t restarts;
    bool killed;   /* we killed it on request */
    bool gave_up;  /* ended for good because max-restarts was reached */
    int kill_from; /* slot that asked for the kill (-1: none) */
    uint32_t kill_req;
} slot_t;

/* A registered interface. */
typedef struct reg {
    bool used;
    char name[OS_NAME_MAX];
    uint32_t id;
    int slot; /* the server */
} reg_t;

/* A connect waiting for its interface to be registered. */
typedef struct pending {
    bool used;
    int slot; /* the client */
    uint32_t req;
    char name[OS_NAME_MAX];
    uint32_t id;
} pending_t;

typedef struct init_state {
    manifest_t manifest;
    slot_t slots[INIT_SLOTS_MAX];
    reg_t regs[INIT_REGS_MAX];
    pending_t pending[INIT_PENDING_MAX];
    /* End of console input (docs/manifest.md): when no program can read or act on the input,
     * init reads it itself, drops it, and at its end shuts the OS down. */
    bool input_ended;    /* the console device's input ended */
    bool down;           /* we asked for shutdown: decide nothing more */
    os_handle_t dev;     /* the console device, while no console program runs */
    os_handle_t cclient; /* our own client channel to the console, while no program may read */
    uint32_t dropped;    /* input lines nobody could read */
} init_state_t;

/* ---- helpers -------------------------------------------------------------------------- */

static slot_t *slot_by_handle(init_state_t *st, os_handle_t h, bool boot)
{
    for (int i = 0; i < INIT_SLOTS_MAX; i++) {
        slot_t *s = &st->slots[i];
        if (s->used && s->running && h != OS_HANDLE_NONE && (boot ? s->boot : s->task) == h)
            return s;
    }
    return NULL;
}

static slot_t *slot_by_name(init_state_t *st, const char *name)
{
    for (int i = 0; i < INIT_SLOTS_MAX; i++) {
        if (st->slots[i].used && strcmp(st->slots[i].prog.name, name) == 0)
            return &st->slots[i];
    }
    return NULL;
}

static int slot_index(init_state_t *st, const slot_t *s)
{
    return (int)(s - st->slots);
}

/* The program of the image that reads the console device, if the manifest has it. */
static slot_t *console_slot(init_state_t *st)
{
    return slot_by_name(st, orrery_console.name);
}

/* A running program that may reach the console and ask init to shut down (the shell): it
 * acts on end of input itself. */
static slot_t *input_actor(init_state_t *st)
{
    for (int i = 0; i < INIT_SLOTS_MAX; i++) {
        slot_t *s = &st->slots[i];
        if (s->used && s->running && manifest_may_reach(&s->prog, console_iface.name) &&
            manifest_may_reach(&s->prog, "init"))
            return s;
    }
    return NULL;
}

/* A running program, other than init, that may read console input. */
static bool input_reader(init_state_t *st)
{
    for (int i = 0; i < INIT_SLOTS_MAX; i++) {
        slot_t *s = &st->slots[i];
        if (s->used && s->running && manifest_may_reach(&s->prog, console_iface.name))
            return true;
    }
    return false;
}

static void describe_gone(const slot_t *s, char *buf, size_t len)
{
    if (s->gave_up)
        snprintf(buf, len, "%s gave up after %u restart%s", s->prog.name, s->restarts,
                 s->restarts == 1 ? "" : "s");
    else
        snprintf(buf, len, "%s ended and is not restarted", s->prog.name);
}

/* Why no task can act on console input, for the shutdown line. */
static void why_nobody(init_state_t *st, char *buf, size_t len)
{
    slot_t *c = console_slot(st);
    if (!c) {
        snprintf(buf, len, "no %s program in the manifest", orrery_console.name);
        return;
    }
    if (!c->running) {
        describe_gone(c, buf, len);
        return;
    }
    const slot_t *gone = NULL;
    for (int i = 0; i < INIT_SLOTS_MAX; i++) {
        slot_t *s = &st->slots[i];
        if (!s->used || !manifest_may_reach(&s->prog, console_iface.name))
            continue;
        if (s->running) {
            snprintf(buf, len, "%s may not shut down: no 'init' in its reach (manifest line %d)",
                     s->prog.name, s->prog.line);
            return;
        }
        gone = s;
    }
    if (gone)
        describe_gone(gone, buf, len);
    else
        snprintf(buf, len, "no program in the manifest may reach %s and init", console_iface.name);
}

static void shut_down(os_ctx_t *ctx, init_state_t *st, int status)
{
    st->down = true;
    os_shutdown(ctx, status);
}

/* Input ended: if nobody is left to act on it (the shell shuts down at end of input), we do. */
static void input_check(os_ctx_t *ctx, init_state_t *st)
{
    if (!st->input_ended || st->down)
        return;
    slot_t *c = console_slot(st);
    if (c && c->running && input_actor(st))
        return;
    char why[128];
    why_nobody(st, why, sizeof why);
    os_log(ctx, "console input ended and no task can act on it (%s); shutting down with status %d",
           why, OS_EXIT_INPUT_ENDED);
    shut_down(ctx, st, OS_EXIT_INPUT_ENDED);
}

static reg_t *reg_find(init_state_t *st, const char *name);

/* Make sure someone reads console input, so its end is seen: the console program for its
 * client; or, with no console program running, init from the device; or, with no program
 * that may read it, init as the console's client. Init drops what it reads. */
static void reader_check(os_ctx_t *ctx, init_state_t *st)
{
    slot_t *c = console_slot(st);
    char why[128];

    if (st->down)
        return;
    if (!c || !c->running) {
        if (st->cclient != OS_HANDLE_NONE) {
            os_handle_close(ctx, st->cclient);
            st->cclient = OS_HANDLE_NONE;
        }
        if (st->dev == OS_HANDLE_NONE && os_device_open(ctx, "console", &st->dev) == 0) {
            why_nobody(st, why, sizeof why);
            os_log(ctx, "console input is read and dropped by init (%s)", why);
        }
        return;
    }
    reg_t *r = reg_find(st, console_iface.name);
    if (st->cclient != OS_HANDLE_NONE || input_reader(st) || !r ||
        r->id != iface_id(&console_iface))
        return;
    os_handle_t a, b;
    if (os_channel_create(ctx, &a, &b) < 0)
        return;
    os_channel_tag(ctx, a, r->id);
    init_new_client_t nc;
    memset(&nc, 0, sizeof nc);
    strcpy(nc.name, r->name);
    nc.client = os_task_id(ctx);
    nc.chan = b;
    console_read_t rd = {INIT_READ_AHEAD};
    if (init_new_client_send(ctx, st->slots[r->slot].boot, &nc) < 0 ||
        console_read_send(ctx, a, &rd) < 0) {
        os_handle_close(ctx, a);
        os_handle_close(ctx, b);
        return;
    }
    st->cclient = a;
    why_nobody(st, why, sizeof why);
    os_log(ctx, "console input is read and dropped by init (%s)", why);
}

/* Input init reads itself (device or console client): lines are dropped, the end acted on. */
static void on_own_input(os_ctx_t *ctx, init_state_t *st, bool ended)
{
    if (ended) {
        st->input_ended = true;
        input_check(ctx, st);
        return;
    }
    st->dropped++;
}

/* Every supervised program ended for good: nothing can run any more. */
static void nothing_left_check(os_ctx_t *ctx, init_state_t *st)
{
    for (int i = 0; i < INIT_SLOTS_MAX; i++) {
        if (st->slots[i].used && st->slots[i].running)
            return;
    }
    if (st->down)
        return;
    os_log(ctx, "every program has ended for good; shutting down with status %d",
           OS_EXIT_NOTHING_LEFT);
    shut_down(ctx, st, OS_EXIT_NOTHING_LEFT);
}

static void reply(os_ctx_t *ctx, slot_t *to, uint32_t req, int status, uint32_t value)
{
    if (!to || !to->running || to->boot == OS_HANDLE_NONE)
        return;
    init_reply_t r = {req, status, value};
    int err = init_reply_send(ctx, to->boot, &r);
    if (err < 0)
        os_log(ctx, "reply to %s (task %u) lost: %s", to->prog.name, to->task_id, os_strerror(err));
}

/* ---- starting and restarting ---------------------------------------------------------- */

static int start(os_ctx_t *ctx, init_state_t *st, slot_t *s)
{
    os_handle_t mine, theirs, task;
    if (strcmp(s->prog.name, orrery_console.name) == 0 && st->dev != OS_HANDLE_NONE) {
        os_handle_close(ctx, st->dev); /* the console program reads the device again */
        st->dev = OS_HANDLE_NONE;
    }
    int err = os_channel_create(ctx, &mine, &theirs);
    if (err < 0)
        return err;
    os_channel_tag(ctx, mine, iface_id(&init_iface)); /* traces name its messages */
    os_spawn_args_t args = {0};
    args.program = s->prog.name;
    args.handles = &theirs;
    args.nhandles = 1;
    args.restarts = s->restarts;
    args.arg = s->prog.arg; /* arg= of the manifest line; empty when not given */
    args.arg_len = s->prog.arg_len;
    err = os_spawn(ctx, &args, &task);
    if (err < 0) {
        os_handle_close(ctx, mine);
        os_handle_close(ctx, theirs);
        return err;
    }
    s->running = true;
    s->killed = false;
    s->task = task;
    s->boot = mine;
    s->task_id = 0;
    os_task_handle_id(ctx, task, &s->task_id); /* cannot fail: we were just given it */
    return 0;
}

static void forget_server(init_state_t *st, int idx)
{
    for (int i = 0; i < INIT_REGS_MAX; i++) {
        if (st->regs[i].used && st->regs[i].slot == idx)
            st->regs[i].used = false;
    }
    for (int i = 0; i < INIT_PENDING_MAX; i++) {
        if (st->pending[i].used && st->pending[i].slot == idx)
            st->pending[i].used = false;
    }
}

static bool wants_restart(const slot_t *s, int status)
{
    switch (s->prog.restart) {
    case MANIFEST_RESTART_ALWAYS:
        return true;
    case MANIFEST_RESTART_NEVER:
        return false;
    default:
        return s->killed || status != 0;
    }
}

static void task_ended(os_ctx_t *ctx, init_state_t *st, slot_t *s, int status)
{
    uint32_t old_id = s->task_id;
    char why[48];

    if (s->killed)
        snprintf(why, sizeof why, "killed");
    else if (status == 0)
        snprintf(why, sizeof why, "exited");
    else
        snprintf(why, sizeof why, "failed (status %d)", status);
    os_handle_close(ctx, s->task);
    if (s->boot != OS_HANDLE_NONE)
        os_handle_close(ctx, s->boot);
    s->task = s->boot = OS_HANDLE_NONE;
    s->running = false;
    forget_server(st, slot_index(st, s));

    if (!wants_restart(s, status)) {
        os_log(ctx, "%s (task %u) %s", s->prog.name, old_id, why);
    } else if (s->restarts >= s->prog.max_restarts) {
        s->gave_up = true;
        os_log(ctx, "%s (task %u) %s; not restarting (max-restarts %u reached)", s->prog.name,
               old_id, why, s->prog.max_restarts);
    } else {
        s->restarts++;
        os_log(ctx, "%s (task %u) %s; restarting (restart %u of %u)", s->prog.name, old_id, why,
               s->restarts, s->prog.max_restarts);
        int err = start(ctx, st, s);
        if (err < 0)
            os_log(ctx, "restart of %s failed: %s", s->prog.name, os_strerror(err));
    }
    if (s->kill_from >= 0 && s->kill_from != slot_index(st, s)) {
        /* answered only now, so the requester sees the restarted task */
        reply(ctx, &st->slots[s->kill_from], s->kill_req, 0, old_id);
    }
    s->kill_from = -1;
    s->killed = false;
    if (!s->running) {
        reader_check(ctx, st);
        input_check(ctx, st);
        nothing_left_check(ctx, st);
    }
}

/* ---- the name service ----------------------------------------------------------------- */

static reg_t *reg_find(init_state_t *st, const char *name)
{
    for (int i = 0; i < INIT_REGS_MAX; i++) {
        if (st->regs[i].used && strcmp(st->regs[i].name, name) == 0)
            return &st->regs[i];
    }
    return NULL;
}

/* Connect client to a registered interface: a new channel, one end to each. */
static void grant(os_ctx_t *ctx, init_state_t *st, slot_t *client, uint32_t req, reg_t *r,
                  uint32_t id)
{
    slot_t *server = &st->slots[r->slot];
    if (id != r->id) {
        os_log(ctx, "%s (task %u) -> %s: interface version mismatch (wants %08x, server has %08x)",
               client->prog.name, client->task_id, r->name, (unsigned)id, (unsigned)r->id);
        reply(ctx, client, req, OS_EPROTO, 0);
        return;
    }
    os_handle_t a, b;
    int err = os_channel_create(ctx, &a, &b);
    if (err < 0) {
        reply(ctx, client, req, err, 0);
        return;
    }
    os_channel_tag(ctx, a, r->id); /* the interface the client connected to, for traces */
    init_new_client_t nc;
    memset(&nc, 0, sizeof nc);
    /* reach=fs:ro: the server learns the client may only read */
    strcpy(nc.name, r->name);
    if (manifest_reach_ro(&client->prog, r->name) && strlen(nc.name) + 3 < sizeof nc.name)
        strcat(nc.name, ":ro");
    nc.client = client->task_id;
    nc.chan = b;
    err = init_new_client_send(ctx, server->boot, &nc);
    if (err < 0) {
        os_handle_close(ctx, a);
        os_handle_close(ctx, b);
        reply(ctx, client, req, err, 0);
        return;
    }
    init_connected_t c = {req, a};
    err = init_connected_send(ctx, client->boot, &c);
    if (err < 0)
        os_handle_close(ctx, a);
}

static void on_connect(os_ctx_t *ctx, init_state_t *st, slot_t *s, const init_connect_t *m)
{
    if (!manifest_may_reach(&s->prog, m->name)) {
        if (s->prog.line > 0)
            os_log(ctx, "denied: %s (task %u) may not reach %s (manifest line %d)", s->prog.name,
                   s->task_id, m->name, s->prog.line);
        else
            os_log(ctx, "denied: %s (task %u) may not reach %s (not in the manifest)", s->prog.name,
                   s->task_id, m->name);
        reply(ctx, s, m->req, OS_EACCES, 0);
        return;
    }
    reg_t *r = reg_find(st, m->name);
    if (r) {
        grant(ctx, st, s, m->req, r, m->id);
        return;
    }
    for (int i = 0; i < INIT_PENDING_MAX; i++) {
        pending_t *p = &st->pending[i];
        if (!p->used) {
            p->used = true;
            p->slot = slot_index(st, s);
            p->req = m->req;
            strcpy(p->name, m->name);
            p->id = m->id;
            return;
        }
    }
    reply(ctx, s, m->req, OS_ENOSPC, 0);
}

static void on_register(os_ctx_t *ctx, init_state_t *st, slot_t *s, const init_register_t *m)
{
    if (m->name[0] == 0) {
        reply(ctx, s, m->req, OS_EINVAL, 0);
        return;
    }
    if (reg_find(st, m->name)) {
        reply(ctx, s, m->req, OS_EEXIST, 0);
        return;
    }
    reg_t *r = NULL;
    for (int i = 0; i < INIT_REGS_MAX && !r; i++) {
        if (!st->regs[i].used)
            r = &st->regs[i];
    }
    if (!r) {
        reply(ctx, s, m->req, OS_ENOSPC, 0);
        return;
    }
    r->used = true;
    strcpy(r->name, m->name);
    r->id = m->id;
    r->slot = slot_index(st, s);
    reply(ctx, s, m->req, 0, 0);
    if (strcmp(r->name, console_iface.name) == 0)
        reader_check(ctx, st); /* a console program (re)started: does anyone read it? */
    for (int i = 0; i < INIT_PENDING_MAX; i++) {
        pending_t *p = &st->pending[i];
        if (p->used && strcmp(p->name, m->name) == 0) {
            p->used = false;
            grant(ctx, st, &st->slots[p->slot], p->req, r, p->id);
        }
    }
}

/* ---- requests from the shell ---------------------------------------------------------- */

/* Spawn, kill and shutdown are init's control requests: only a program whose manifest
 * reach list names "init" may make them. */
static bool may_control(os_ctx_t *ctx, slot_t *s, const char *what)
{
    if (manifest_may_reach(&s->prog, "init"))
        return true;
    if (s->prog.line > 0)
        os_log(ctx, "denied: %s (task %u) may not %s (no 'init' in its reach, manifest line %d)",
               s->prog.name, s->task_id, what, s->prog.line);
    else
        os_log(ctx, "denied: %s (task %u) may not %s (not in the manifest)", s->prog.name,
               s->task_id, what);
    return false;
}

static void on_spawn(os_ctx_t *ctx, init_state_t *st, slot_t *from, const init_spawn_t *m)
{
    slot_t *s = slot_by_name(st, m->program);
    if (strcmp(m->program, os_task_name(ctx)) == 0) {
        /* There is one init, started by the kernel: a second would run a name service and
         * read the console device beside us. */
        reply(ctx, from, m->req, OS_EEXIST, os_task_id(ctx));
        return;
    }
    if (s && s->running) {
        reply(ctx, from, m->req, OS_EEXIST, s->task_id);
        return;
    }
    if (!s) {
        for (int i = 0; i < INIT_SLOTS_MAX && !s; i++) {
            if (!st->slots[i].used)
                s = &st->slots[i];
        }
        if (!s) {
            reply(ctx, from, m->req, OS_ENOSPC, 0);
            return;
        }
        /* not in the manifest: started once, reaches nothing */
        memset(s, 0, sizeof *s);
        strcpy(s->prog.name, m->program);
        s->prog.restart = MANIFEST_RESTART_NEVER;
        s->kill_from = -1;
        int err = start(ctx, st, s);
        if (err < 0) {
            reply(ctx, from, m->req, err, 0);
            return;
        }
        s->used = true;
    } else {
        int err = start(ctx, st, s);
        if (err < 0) {
            reply(ctx, from, m->req, err, 0);
            return;
        }
    }
    reply(ctx, from, m->req, 0, s->task_id);
}

static void on_kill(os_ctx_t *ctx, init_state_t *st, slot_t *from, const init_kill_t *m)
{
    if (m->task == os_task_id(ctx)) {
        reply(ctx, from, m->req, OS_EACCES, 0);
        return;
    }
    slot_t *s = NULL;
    for (int i = 0; i < INIT_SLOTS_MAX && !s; i++) {
        if (st->slots[i].used && st->slots[i].running && st->slots[i].task_id == m->task)
            s = &st->slots[i];
    }
    if (!s || s->killed) {
        reply(ctx, from, m->req, s ? OS_EBUSY : OS_ENOENT, 0);
        return;
    }
    int err = os_task_kill(ctx, s->task);
    if (err < 0) {
        reply(ctx, from, m->req, err, 0);
        return;
    }
    s->killed = true;
    s->kill_from = slot_index(st, from);
    s->kill_req = m->req;
}

/* ---- events --------------------------------------------------------------------------- */

static void on_message(os_ctx_t *ctx, init_state_t *st, slot_t *s, const os_event_t *ev)
{
    union {
        init_register_t reg;
        init_connect_t conn;
        init_spawn_t spawn;
        init_kill_t kill;
        init_shutdown_t shut;
        init_input_ended_t ended;
    } m;
    int err = OS_EPROTO;

    switch (ev->type) {
    case init_msg_register:
        if ((err = init_register_decode(ev, &m.reg)) == 0)
            on_register(ctx, st, s, &m.reg);
        break;
    case init_msg_connect:
        if ((err = init_connect_decode(ev, &m.conn)) == 0)
            on_connect(ctx, st, s, &m.conn);
        break;
    case init_msg_spawn:
        if ((err = init_spawn_decode(ev, &m.spawn)) == 0) {
            if (may_control(ctx, s, "spawn"))
                on_spawn(ctx, st, s, &m.spawn);
            else
                reply(ctx, s, m.spawn.req, OS_EACCES, 0);
        }
        break;
    case init_msg_kill:
        if ((err = init_kill_decode(ev, &m.kill)) == 0) {
            if (may_control(ctx, s, "kill"))
                on_kill(ctx, st, s, &m.kill);
            else
                reply(ctx, s, m.kill.req, OS_EACCES, 0);
        }
        break;
    case init_msg_shutdown:
        if ((err = init_shutdown_decode(ev, &m.shut)) == 0) {
            if (!may_control(ctx, s, "shut down")) {
                reply(ctx, s, m.shut.req, OS_EACCES, 0);
                break;
            }
            os_log(ctx, "shutdown (status %d) asked by %s (task %u)", (int)m.shut.status,
                   s->prog.name, s->task_id);
            err = os_shutdown(ctx, m.shut.status);
            reply(ctx, s, m.shut.req, err, 0);
        }
        break;
    case init_msg_input_ended:
        if ((err = init_input_ended_decode(ev, &m.ended)) == 0) {
            reg_t *r = reg_find(st, console_iface.name);
            if (r && r->slot == slot_index(st, s)) { /* only the console's server knows */
                st->input_ended = true;
                input_check(ctx, st);
            }
        }
        break;
    default:
        break;
    }
    if (err == OS_EPROTO) {
        iface_discard(ctx, ev);
        init_error_t e = {ev->type, OS_EPROTO};
        init_error_send(ctx, s->boot, &e);
    }
}

static void init_start(os_ctx_t *ctx)
{
    init_state_t *st = os_state(ctx);
    const void *arg;
    size_t len;
    char err[128];

    for (int i = 0; i < INIT_SLOTS_MAX; i++)
        st->slots[i].kill_from = -1;
    os_spawn_arg(ctx, &arg, &len);
    int line = manifest_parse(arg, len, NULL, os_task_name(ctx), &st->manifest, err, sizeof err);
    if (line) {
        os_log(ctx, "manifest line %d: %s; shutting down with status %d", line, err,
               OS_EXIT_BAD_MANIFEST);
        shut_down(ctx, st, OS_EXIT_BAD_MANIFEST);
        return;
    }
    for (size_t i = 0; i < st->manifest.count && i < INIT_SLOTS_MAX; i++) {
        slot_t *s = &st->slots[i];
        s->used = true;
        s->prog = st->manifest.programs[i];
        int e = start(ctx, st, s);
        if (e < 0)
            os_log(ctx, "cannot start %s (manifest line %d): %s", s->prog.name, s->prog.line,
                   os_strerror(e));
    }
    reader_check(ctx, st); /* no console program: init watches the device for the end */
}

static void init_on_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_state_t *st = os_state(ctx);
    slot_t *s;

    switch (ev->kind) {
    case OS_EV_TASK_EXIT:
        if ((s = slot_by_handle(st, ev->handle, false)))
            task_ended(ctx, st, s, ev->status);
        break;
    case OS_EV_MESSAGE:
        if ((s = slot_by_handle(st, ev->handle, true))) {
            on_message(ctx, st, s, ev);
        } else if (ev->handle == st->cclient && st->cclient != OS_HANDLE_NONE) {
            iface_discard(ctx, ev);
            if (ev->type == console_msg_line || ev->type == console_msg_overlong) {
                console_read_t rd = {1};
                console_read_send(ctx, st->cclient, &rd);
            }
            if (ev->type == console_msg_line || ev->type == console_msg_overlong ||
                ev->type == console_msg_eof)
                on_own_input(ctx, st, ev->type == console_msg_eof);
        } else {
            iface_discard(ctx, ev);
        }
        break;
    case OS_EV_DEVICE:
        if (ev->handle == st->dev && st->dev != OS_HANDLE_NONE &&
            (ev->type == HAL_CONSOLE_LINE || ev->type == HAL_CONSOLE_OVERLONG ||
             ev->type == HAL_CONSOLE_EOF))
            on_own_input(ctx, st, ev->type == HAL_CONSOLE_EOF);
        break;
    case OS_EV_PEER_CLOSED:
        /* the task is ending (its exit event follows) or dropped its bootstrap channel */
        if ((s = slot_by_handle(st, ev->handle, true))) {
            os_handle_close(ctx, s->boot);
            s->boot = OS_HANDLE_NONE;
            forget_server(st, slot_index(st, s));
        } else if (ev->handle == st->cclient && st->cclient != OS_HANDLE_NONE) {
            os_handle_close(ctx, st->cclient); /* the console ended; it re-registers if restarted */
            st->cclient = OS_HANDLE_NONE;
        }
        break;
    default:
        break;
    }
}

const os_program_t orrery_init = {"init", sizeof(init_state_t), init_start, init_on_event};
