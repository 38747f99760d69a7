/* test_stress.c — tasks ping-ponging on real workers with random kills and respawns (TSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <hl/hosted.h>
#include <k/kernel.h>

/*
 * stress-init spawns PAIRS pairs (pinger, ponger) joined by a channel; a pinger
 * sends ROUNDS numbered pings, each answered by its ponger, then exits 0. A
 * timer kills a random live task every KILL_EVERY_NS until KILLS kills are done;
 * the survivor of a broken pair sees peer-closed and exits 1, and init
 * respawns the pair while kills remain. Then the remaining pairs finish and
 * init shuts down. Counters checked afterwards: every spawn has its exit, every
 * finished pair did exactly ROUNDS rounds in order, and teardown leaks nothing.
 */
enum {
    PAIRS = 8,
    ROUNDS = 300,
    KILLS = 40,
    KILL_EVERY_NS = 2000000,
    WORKERS = 4,
    MSG_PING = 1,
    MSG_PONG = 2,
};

/* Shared with the test body; the tasks update them from several workers. */
static struct {
    long spawned;      /* tasks spawned by init */
    long exits;        /* OS_EV_TASK_EXIT events init received */
    long kills;        /* successful os_task_kill calls */
    long completed;    /* pingers that did all ROUNDS */
    long broken;       /* tasks that saw their peer close early */
    long pings;        /* pings received by pongers */
    long pongs;        /* pongs received by pingers */
    long order_errors; /* a pong with the wrong sequence number */
    long init_errors;  /* a call in init that failed unexpectedly */
} C;

#define BUMP(field) __atomic_add_fetch(&C.field, 1, __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&C.field, __ATOMIC_RELAXED)

typedef struct pair_arg {
    int worker; /* -1: unpinned */
} pair_arg_t;

static void pin_from_arg(os_ctx_t *ctx)
{
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    pair_arg_t a = {-1};
    if (len == sizeof(a))
        memcpy(&a, arg, sizeof(a));
    if (a.worker >= 0)
        k_task_pin(os_task_id(ctx), a.worker);
}

/* ---- pinger and ponger ------------------------------------------------------------------ */

typedef struct pinger {
    os_handle_t chan;
    uint32_t next;
} pinger_t;

static void pinger_start(os_ctx_t *ctx)
{
    pinger_t *p = os_state(ctx);
    pin_from_arg(ctx);
    p->chan = os_initial_handle(ctx, 0);
    uint32_t seq = 0;
    if (os_send(ctx, p->chan, MSG_PING, &seq, sizeof(seq), NULL, 0) != 0) {
        BUMP(broken);
        os_exit(ctx, 1);
    }
}

static void pinger_event(os_ctx_t *ctx, const os_event_t *ev)
{
    pinger_t *p = os_state(ctx);
    if (ev->kind == OS_EV_PEER_CLOSED) {
        BUMP(broken);
        os_exit(ctx, 1);
    }
    if (ev->kind != OS_EV_MESSAGE || ev->type != MSG_PONG)
        return;
    BUMP(pongs);
    uint32_t seq;
    memcpy(&seq, ev->data, sizeof(seq));
    if (ev->len != sizeof(seq) || seq != p->next)
        BUMP(order_errors);
    if (++p->next == ROUNDS) {
        BUMP(completed);
        os_exit(ctx, 0);
    }
    seq = p->next;
    if (os_send(ctx, p->chan, MSG_PING, &seq, sizeof(seq), NULL, 0) != 0) {
        BUMP(broken);
        os_exit(ctx, 1);
    }
}

static void ponger_start(os_ctx_t *ctx)
{
    pin_from_arg(ctx);
}

static void ponger_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED)
        os_exit(ctx, 0); /* normal after the pinger finished; also after a kill */
    if (ev->kind != OS_EV_MESSAGE || ev->type != MSG_PING)
        return;
    BUMP(pings);
    /* EPEER is fine: the pinger may have been killed meanwhile. */
    os_send(ctx, ev->handle, MSG_PONG, ev->data, ev->len, NULL, 0);
}

static const os_program_t pinger = {"pinger", sizeof(pinger_t), pinger_start, pinger_event};
static const os_program_t ponger = {"ponger", 0, ponger_start, ponger_event};

/* ---- stress-init ------------------------------------------------------------------------- */

typedef struct slot {
    os_handle_t task[2]; /* pinger, ponger; OS_HANDLE_NONE once exited */
    uint32_t generation;
} slot_t;

typedef struct sinit {
    slot_t slot[PAIRS];
    os_handle_t timer;
    int kills;
    int live; /* tasks not yet reported exited */
} sinit_t;

static void spawn_pair(os_ctx_t *ctx, sinit_t *s, int i)
{
    os_handle_t a, b;
    if (os_channel_create(ctx, &a, &b) != 0) {
        BUMP(init_errors);
        return;
    }
    slot_t *sl = &s->slot[i];
    sl->generation++;
    /* Vary placement: unpinned, same worker, two workers. */
    pair_arg_t pa = {-1}, pb = {-1};
    if (i % 3 == 1) {
        pa.worker = pb.worker = i % WORKERS;
    } else if (i % 3 == 2) {
        pa.worker = i % WORKERS;
        pb.worker = (i + 1) % WORKERS;
    }
    os_spawn_args_t sa = {
        .program = "pinger", .handles = &a, .nhandles = 1, .arg = &pa, .arg_len = sizeof(pa)};
    if (os_spawn(ctx, &sa, &sl->task[0]) != 0) {
        BUMP(init_errors);
        return;
    }
    sa.program = "ponger";
    sa.handles = &b;
    sa.arg = &pb;
    if (os_spawn(ctx, &sa, &sl->task[1]) != 0) {
        BUMP(init_errors);
        return;
    }
    BUMP(spawned);
    BUMP(spawned);
    s->live += 2;
}

static void sinit_start(os_ctx_t *ctx)
{
    sinit_t *s = os_state(ctx);
    for (int i = 0; i < PAIRS; i++)
        spawn_pair(ctx, s, i);
    if (os_timer_create(ctx, &s->timer) != 0 ||
        os_timer_set(ctx, s->timer, os_clock_now(ctx) + KILL_EVERY_NS) != 0)
        BUMP(init_errors);
}

static void sinit_kill_one(os_ctx_t *ctx, sinit_t *s)
{
    uint32_t r;
    os_random(ctx, &r, sizeof(r));
    for (int k = 0; k < 2 * PAIRS; k++) {
        int idx = (int)((r + (uint32_t)k) % (2 * PAIRS));
        os_handle_t t = s->slot[idx / 2].task[idx % 2];
        if (t != OS_HANDLE_NONE && os_task_kill(ctx, t) == 0) {
            BUMP(kills);
            s->kills++;
            return;
        }
    }
}

static void sinit_event(os_ctx_t *ctx, const os_event_t *ev)
{
    sinit_t *s = os_state(ctx);
    if (ev->kind == OS_EV_TIMER) {
        if (s->kills < KILLS) {
            sinit_kill_one(ctx, s);
            os_timer_set(ctx, s->timer, os_clock_now(ctx) + KILL_EVERY_NS);
        }
        return;
    }
    if (ev->kind != OS_EV_TASK_EXIT)
        return;
    BUMP(exits);
    s->live--;
    for (int i = 0; i < PAIRS; i++) {
        slot_t *sl = &s->slot[i];
        for (int j = 0; j < 2; j++) {
            if (sl->task[j] == ev->handle) {
                os_handle_close(ctx, ev->handle);
                sl->task[j] = OS_HANDLE_NONE;
            }
        }
        if (sl->task[0] == OS_HANDLE_NONE && sl->task[1] == OS_HANDLE_NONE && s->kills < KILLS &&
            sl->generation > 0) {
            spawn_pair(ctx, s, i);
        }
    }
    if (s->live == 0 && s->kills >= KILLS)
        os_shutdown(ctx, 0);
}

static const os_program_t sinit = {"stress-init", sizeof(sinit_t), sinit_start, sinit_event};
static const os_program_t *const programs[] = {&sinit, &pinger, &ponger, NULL};

static void stress_run(void **state)
{
    memset(&C, 0, sizeof(C));
    hl_run_config_t rc;
    hl_run_config_init(&rc);
    hl_run_stats_t stats;
    rc.programs = programs;
    rc.init_program = "stress-init";
    rc.workers = WORKERS;
    rc.console_in = -1;
    rc.console_out = 2;
    rc.timeout_ms = 120000;
    rc.spin_us = 5;
    rc.stats = &stats;

    int status = hl_run(&rc);
    print_message("spawned %ld exits %ld kills %ld completed %ld broken %ld pings %ld pongs %ld "
                  "events %llu futex wakes %llu\n",
                  GET(spawned), GET(exits), GET(kills), GET(completed), GET(broken), GET(pings),
                  GET(pongs), (unsigned long long)stats.events, (unsigned long long)stats.wakes);

    assert_false(stats.timed_out);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(0, GET(init_errors));
    assert_int_equal(0, GET(order_errors));
    assert_int_equal(KILLS, GET(kills));
    assert_int_equal(GET(spawned), GET(exits));
    assert_true(GET(spawned) >= 2 * PAIRS);
    /* Every pair ends complete, or broken by one of the kills. */
    long pairs = GET(spawned) / 2;
    assert_true(GET(completed) <= pairs);
    assert_true(pairs <= GET(completed) + KILLS);
    assert_true(GET(broken) <= KILLS);
    /* A pong is only counted for a ping answered; at most one answer per pair is lost. */
    assert_true(GET(pongs) <= GET(pings));
    assert_true(GET(pings) - GET(pongs) <= GET(spawned) / 2);
    assert_true(GET(pongs) >= (long)GET(completed) * ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stress_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
