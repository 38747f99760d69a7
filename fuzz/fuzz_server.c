/* fuzz_server.c — one libFuzzer harness for every server: init, connect, feed, clean up (per
 * FUZZ_SERVER). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hal/console.h>
#include <iface/all.h>
#include <iface/init_client.h>
#include <image.h>
#include <shell_parse.h>
#include <k/audit.h>
#include <k/fault.h>
#include <k/kernel.h>
#include <sim/sim.h>

#include "fz_input.h"

/*
 * The hooks, one row per server (docs/fuzzing.md):
 *   init     boot the image on sim with a manifest that starts the server and a fake
 *            peer ("fuzz_peer", a client like any other, bootstrap channel to init);
 *   connect  the peer asks init for a channel to the server's interface (init itself:
 *            the peer talks on its bootstrap channel);
 *   feed     the input is a sequence of operations: well-formed messages of the
 *            interface built from the bytes (structure-aware), raw garbage messages,
 *            console device lines, time jumps, reconnects;
 *   clean up run to idle, check the invariants, shut down, tear down, check leaks.
 * Invariants after each input (abort() = a crash libFuzzer reports): no task panicked
 * or faulted; the kernel audit holds; every request the server must answer got an
 * answer (reply or error) once the system is idle; k_teardown reports no leak.
 * A new server adds one row here and one target in fuzz/CMakeLists.txt.
 *
 * Persistent mode (docs/fuzzing.md): the image boots once (seed 1); each input is one
 * client. After it the harness kills the peer: its channels close, the server drops the
 * client's state, init restarts the peer, which connects afresh, and the task and endpoint
 * counts must be back at their booted values. The image reboots (teardown checks leaks)
 * every REBOOT_EVERY inputs and whenever an input shut it down, spawned or ended another
 * task, or left it off its booted counts. A reproducer run (files on the command line, or
 * FUZZ_FRESH=1) boots afresh for every input.
 */
typedef struct fuzz_server {
    const char *name;
    const char *manifest;
    const iface_t *iface; /* NULL: the peer talks to init on its bootstrap channel */
    bool answers_all;     /* every message the peer sends gets one answer back */
} fuzz_server_t;

static const fuzz_server_t servers[] = {
    {"echo",
     "program echo restart=always\nprogram fuzz_peer restart=always max-restarts=1000000 "
     "reach=echo\n",
     &echo_iface, true},
    {"init",
     "program echo restart=on-failure max-restarts=2\n"
     "program fuzz_peer restart=always max-restarts=1000000 reach=echo,init\n",
     NULL, false},
    {"console",
     "program console restart=always\nprogram fuzz_peer restart=always max-restarts=1000000 "
     "reach=console\n",
     &console_iface, false},
    {"shell",
     "program console restart=always\nprogram shell restart=always reach=console,echo\n"
     "program echo restart=always\nprogram fuzz_peer restart=always max-restarts=1000000 "
     "reach=echo\n",
     NULL, false},
};

#ifndef FUZZ_SERVER
#define FUZZ_SERVER "echo"
#endif

static const fuzz_server_t *srv;
static bool runs_shell; /* the manifest starts the shell */

/* ---- the fake peer ----------------------------------------------------------------------- */

static struct {
    os_ctx_t *ctx;
    uint32_t id;
    bool exited;      /* the task P.id ended (the trace sink saw its exit) */
    os_handle_t chan; /* to the server (or init) */
    uint64_t sent, answers;
    uint32_t req;
    bool touched; /* this input sent on chan, got something on it, or reconnected */
} P;

static void peer_start(os_ctx_t *ctx)
{
    memset(&P, 0, sizeof P); /* a restarted peer: a fresh client */
    P.ctx = ctx;
    P.id = os_task_id(ctx);
    if (srv->iface)
        init_connect_iface(ctx, ++P.req, srv->iface);
    else
        P.chan = init_channel(ctx);
}

static void peer_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind != OS_EV_MESSAGE)
        return;
    init_connected_t c;
    if (srv->iface && ev->handle == init_channel(ctx) && ev->type == init_msg_connected &&
        init_connected_decode(ev, &c) == 0) {
        if (P.chan != OS_HANDLE_NONE)
            os_handle_close(ctx, P.chan);
        P.chan = c.chan;
        return;
    }
    if (ev->handle == P.chan) {
        P.answers++;
        P.touched = true;
    }
    for (size_t i = 0; i < ev->nhandles; i++)
        os_handle_close(ctx, ev->handles[i]); /* whatever it sends us, we do not keep */
}

static const os_program_t peer = {"fuzz_peer", 0, peer_start, peer_event};

static const os_program_t *programs[8];

/* ---- the watch: panics ---------------------------------------------------------------------- */

static int panics;
static bool ending;   /* the harness is killing the peer: its exit and respawn are expected */
static int disturbed; /* other tasks spawned or ended: the image is no longer the booted one */
static void watch(void *self, const hal_trace_rec_t *r)
{
    if (r->kind == HAL_TR_EXIT && (r->result == OS_EXIT_PANIC || r->result == OS_EXIT_FAULT))
        panics++;
    if ((r->kind == HAL_TR_EXIT || r->kind == HAL_TR_SPAWN) && !ending)
        disturbed++;
    if (r->kind == HAL_TR_EXIT && r->task == P.id)
        P.exited = true;
}
static const hal_trace_sink_t sink = {.record = watch};

/* ---- feeding ------------------------------------------------------------------------------- */

/* The peer's exit is seen by the trace sink (watch), so this is not a walk of the task list
 * (k_task_find) on every operation. A restarted peer sets P afresh (peer_start). */
static bool peer_alive(void)
{
    return P.ctx && !P.exited;
}

static void idle(void)
{
    sim_run_until_idle();
}

/* Fill message m's struct from the input, encode it and send it. */
static void send_structured(fz_in_t *in)
{
    const iface_t *ifc = srv->iface ? srv->iface : &init_iface;
    const iface_msg_t *m = &ifc->msgs[fz_byte(in) % ifc->nmsgs];
    static uint8_t msg[8192], wire[OS_MSG_MAX_DATA];
    os_handle_t hs[OS_MSG_MAX_HANDLES], keep[OS_MSG_MAX_HANDLES];
    size_t nkeep;
    fz_fill_message(P.ctx, m, in, msg, keep, &nkeep, NULL);
    size_t len = 0, nh = 0;
    if (iface_encode(m, msg, wire, sizeof wire, &len, hs, &nh) == 0 &&
        os_send(P.ctx, P.chan, m->number, wire, len, hs, nh) == 0) {
        P.sent++;
        P.touched = true;
        if (srv->answers_all)
            idle(); /* one request at a time: no answer is lost to a full queue */
    } else
        for (size_t i = 0; i < nh; i++)
            os_handle_close(P.ctx, hs[i]);
    for (size_t i = 0; i < nkeep; i++)
        os_handle_close(P.ctx, keep[i]); /* the server sees its end's peer close */
}

static void send_raw(fz_in_t *in)
{
    static uint8_t data[OS_MSG_MAX_DATA];
    uint32_t type = fz_byte(in) % 12;
    size_t len = fz_byte(in);
    for (size_t k = 0; k < len; k++)
        data[k] = fz_byte(in);
    os_handle_t h[1], other;
    size_t nh = 0;
    if (fz_byte(in) & 1 && os_channel_create(P.ctx, &h[0], &other) == 0) {
        nh = 1;
        os_handle_close(P.ctx, other);
    }
    if (os_send(P.ctx, P.chan, type, data, len, h, nh) == 0) {
        P.sent++;
        P.touched = true;
        if (srv->answers_all)
            idle();
    } else if (nh)
        os_handle_close(P.ctx, h[0]);
}

/* The line holds "crash" (a loop, not strstr: libFuzzer's interceptor would take the word
 * as a hint and type it more). */
static bool has_crash(const char *line)
{
    for (const char *p = line; *p; p++)
        if (p[0] == 'c' && p[1] == 'r' && p[2] == 'a' && p[3] == 's' && p[4] == 'h')
            return true;
    return false;
}

static void console_line(fz_in_t *in)
{
    char line[HAL_CONSOLE_LINE_MAX + 1];
    size_t len = fz_byte(in) % 64;
    for (size_t k = 0; k < len; k++) {
        uint8_t c = fz_byte(in);
        line[k] = c == 0 || c == '\n' ? ' ' : (char)c;
    }
    line[len] = '\0';
    /* Bias towards real commands, so the shell gets past its parser. */
    static const char *const cmds[] = {"ps",        "ipc",        "uptime", "help", "echo hi",
                                       "kill echo", "spawn echo", "kill 4", ""};
    if (len > 0 && (uint8_t)line[0] < 0x40) {
        const char *c = cmds[(uint8_t)line[0] % (sizeof cmds / sizeof cmds[0])];
        snprintf(line, sizeof line, "%s", c);
    }
    /* `crash ...` makes the shell fault on purpose: the shell's own parser says which lines
     * ask for it, and those are typed as something harmless. Its command word is "crash" as
     * typed (no quoting), so a line without those letters in a row cannot be one: in the
     * shell target, where the shell parses every line itself, the harness's parse (a tenth of
     * the time) runs only on lines that have them. The targets without a shell parse every
     * line, as they always did: there the parser's edges are the harness's own, but libFuzzer
     * counts them in the cov/ft those targets report. */
    shell_cmd_t cmd;
    if ((!runs_shell || has_crash(line)) && shell_parse(line, strlen(line), &cmd) == SHELL_CRASH)
        snprintf(line, sizeof line, "help");
    sim_console_feed(line);
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        size_t len = 0;
        const char *out = sim_console_output(&len);
        fprintf(stderr, "fuzz_%s: invariant broken: %s\n", srv->name, what);
        /* what the tasks said (a panic's own line) tells why */
        if (len)
            fprintf(stderr, "--- console ---\n%.*s\n---\n", (int)(len > 4000 ? 4000 : len),
                    out + (len > 4000 ? len - 4000 : 0));
        abort();
    }
}

enum { REBOOT_EVERY = 1000, KILL_EVERY = 32 };

static struct {
    bool booted, fresh_each;
    unsigned inputs; /* since boot */
    unsigned ends;   /* clients of an interface ended */
    k_stats_t base;  /* tasks and endpoints once booted, between inputs */
} H;

/*
 * The audit after every operation is k_audit_quick (the object list, not every handle
 * slot); the full k_audit runs through a whole input every FULL_EVERY inputs, on every
 * input of a reproducer run, and at every reboot.
 */
enum { FULL_EVERY = 16 };
static bool full_audit;

static void audit(bool full)
{
    char err[160];
    int rc = full ? k_audit(NULL, 0, NULL, err, sizeof err)
                  : k_audit_quick(NULL, 0, NULL, err, sizeof err);
    check(rc == 0, err);
}

static void setup(void)
{
    for (size_t i = 0; i < sizeof servers / sizeof servers[0]; i++)
        if (strcmp(servers[i].name, FUZZ_SERVER) == 0)
            srv = &servers[i];
    runs_shell = strstr(srv->manifest, "program shell") != NULL;
    size_t n = 0;
    for (const os_program_t *const *p = orrery_programs; *p && n < 6; p++)
        programs[n++] = *p;
    programs[n++] = &peer;
    programs[n] = NULL;
}

static void boot(void)
{
    memset(&P, 0, sizeof P);
    sim_config_t cfg = {.programs = programs,
                        .init_arg = srv->manifest,
                        .init_arg_len = strlen(srv->manifest),
                        .seed = 1,
                        .trace = &sink};
    check(sim_boot(&cfg) == 0, "boot");
    idle();
    check(peer_alive() && P.chan != OS_HANDLE_NONE, "the peer did not connect");
    k_get_stats(&H.base);
    H.booted = true;
    H.inputs = 0;
}

static void reboot_clean(void)
{
    audit(true);
    check(sim_teardown() == 0, "kernel memory leaked");
    H.booted = false;
}

static bool at_base(void)
{
    k_stats_t st;
    k_get_stats(&st);
    return peer_alive() && P.chan != OS_HANDLE_NONE && st.tasks == H.base.tasks &&
           st.channels == H.base.channels;
}

/*
 * End the client, so the next input starts with a fresh one. A client of a server's interface
 * (echo, console) is its channel: the peer closes it (the server drops what it kept for it, as
 * when a client dies) and asks init for a new one. A client of init (init, shell: the peer's
 * bootstrap channel) is the peer itself: it is killed (its channels close) and init restarts
 * it; the new peer connects afresh. A client of an interface ends that way too once in
 * KILL_EVERY, so init's restart of its client (and the counts after it) stays checked. A client
 * the input never used (nothing sent or received on its channel, no reconnect) is as fresh as
 * a new one and is kept. False if the image is not back where it was after boot (then the
 * harness reboots).
 */
static bool end_client(void)
{
    if (!P.ctx || P.exited)
        return false;
    if (!P.touched)
        return at_base();
    if (srv->iface && ++H.ends % KILL_EVERY != 0) {
        if (P.chan != OS_HANDLE_NONE)
            os_handle_close(P.ctx, P.chan);
        P.chan = OS_HANDLE_NONE;
        init_connect_iface(P.ctx, ++P.req, srv->iface);
        idle();
        return at_base();
    }
    ending = true;
    bool ok = k_fault_kill(P.id, -129) == 0;
    idle();
    ending = false;
    return ok && at_base();
}

/* A reproducer run (a file given on the command line) boots afresh for every input. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    H.fresh_each = fz_fresh_each(*argc, *argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv)
        setup();
    if (!H.booted)
        boot();
    panics = disturbed = 0;
    full_audit = H.fresh_each || H.inputs % FULL_EVERY == FULL_EVERY - 1;
    P.sent = P.answers = 0;
    P.touched = false;
    fz_in_t in = {data, size};
    int shut = 0;
    while (in.n && !sim_shutdown_status(&shut) && peer_alive() && P.chan != OS_HANDLE_NONE) {
        switch (fz_byte(&in) % 8) {
        case 0:
        case 1:
        case 2:
            send_structured(&in);
            break;
        case 3:
            send_raw(&in);
            break;
        case 4:
            idle();
            break;
        case 5:
            sim_advance(((uint64_t)fz_byte(&in) + 1) * 1000000);
            idle();
            break;
        case 6:
            console_line(&in);
            break;
        case 7:
            if (srv->iface && P.chan) {
                os_handle_close(P.ctx, P.chan);
                P.chan = OS_HANDLE_NONE;
                init_connect_iface(P.ctx, ++P.req, srv->iface);
                P.sent = P.answers = 0;
                P.touched = true;
                idle();
            }
            break;
        }
        audit(full_audit);
    }
    idle();
    sim_advance(5000000000ull); /* let timeouts fire */
    idle();
    check(panics == 0, "a task panicked or faulted");
    if (srv->answers_all && peer_alive() && !sim_shutdown_status(NULL) &&
        k_task_find(srv->name) != 0)
        check(P.answers == P.sent, "a request got no answer");
    audit(full_audit);
    sim_console_clear();
    bool clean = !sim_shutdown_status(NULL) && disturbed == 0 && end_client();
    check(panics == 0, "a task panicked or faulted while its client went away");
    audit(full_audit);
    if (!clean || H.fresh_each || ++H.inputs >= REBOOT_EVERY)
        reboot_clean();
    return 0;
}
