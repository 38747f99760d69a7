/* test_stress.c — ping-pong pairs on real workers with kills, faults, restarts and tracing (TSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hl/hosted.h>
#include <k/kernel.h>
#include <trace/recorder.h>

/*
 * stress-init spawns PAIRS pairs (pinger, ponger) joined by a channel; a pinger
 * sends ROUNDS numbered pings in bursts of BURST, each answered by its ponger,
 * with a pause between bursts, then exits 0. A
 * timer kills a random live task every millisecond until kills_wanted kills
 * are done. Every other respawned pinger fails halfway, in turn with a null
 * store, a stack overflow (both caught by hal-linux/fault.c on the worker that
 * ran it) or os_panic; that worker then goes on with other tasks and other
 * faults. The survivor of a broken pair sees peer-closed and exits 1; init
 * respawns pairs until the kills are done and faults_wanted faults were seen.
 * Then the remaining pairs finish and init shuts down. Every record goes to
 * the SQLite trace recorder through a counting sink, from all workers at once.
 *
 * Checked afterwards: every spawn has its exit; every fault the pingers
 * committed came back to init with the fault or panic status, and the trace
 * holds the same exits; pairs did their rounds in order; the recorder wrote or
 * counted as dropped every record; teardown leaks nothing. Under TSan (label
 * tsan, with --kills 2000: a few seconds) it is the multi-worker race check of
 * the kernel, the hosted platform, the fault handler and the recorder.
 */
enum {
    PAIRS = 8,
    ROUNDS = 64, /* pings per pinger, in bursts */
    BURST = 8,
    GAP_NS = 200000, /* between bursts */
    KILL_EVERY_NS = 1000000,
    RECORDER_BUFFER = 16 << 20, /* bytes: past it the recorder drops (and counts) records */
    WORKERS = 4,
    MSG_PING = 1,
    MSG_PONG = 2,
};

typedef enum fault_kind { NO_FAULT, FAULT_NULL, FAULT_STACK, FAULT_PANIC } fault_kind_t;

/* The run's size: `test_stress [--kills N]`; one kill a millisecond sets the run's length. */
static long kills_wanted = 150;
static long faults_wanted = 45; /* kills_wanted / 3 */

/* Shared with the test body; the tasks update them from several workers. */
static struct {
    long spawned;                           /* tasks spawned by init */
    long exits;                             /* OS_EV_TASK_EXIT events init received */
    long kills;                             /* successful os_task_kill calls */
    long completed;                         /* pingers that did all ROUNDS */
    long broken;                            /* tasks that saw their peer close early */
    long pings;                             /* pings received by pongers */
    long pongs;                             /* pongs received by pingers */
    long order_errors;                      /* a pong with the wrong sequence number */
    long init_errors;                       /* a call in init that failed unexpectedly */
    long null_faults, stack_faults, panics; /* committed by pingers */
    long fault_exits, panic_exits;          /* OS_EXIT_FAULT / OS_EXIT_PANIC seen by init */
    long trace_records, trace_fault_exits, trace_panic_exits; /* seen by the trace sink */
} C;

#define BUMP(field) __atomic_add_fetch(&C.field, 1, __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&C.field, __ATOMIC_RELAXED)

typedef struct pair_arg {
    int worker;         /* -1: unpinned */
    fault_kind_t fault; /* the pinger fails this way halfway */
} pair_arg_t;

static pair_arg_t arg_of(os_ctx_t *ctx)
{
    const void *arg;
    size_t len;
    os_spawn_arg(ctx, &arg, &len);
    pair_arg_t a = {-1, NO_FAULT};
    if (len == sizeof(a))
        memcpy(&a, arg, sizeof(a));
    if (a.worker >= 0)
        k_task_pin(os_task_id(ctx), a.worker);
    return a;
}

/* ---- pinger and ponger ------------------------------------------------------------------ */

typedef struct pinger {
    os_handle_t chan, timer;
    uint32_t next; /* the pong expected next */
    fault_kind_t fault;
} pinger_t;

/* Recurse until the stack runs out; the volatile frame keeps it from being a loop. */
static unsigned recurse(volatile unsigned depth)
{
    volatile char frame[256];
    if (depth == 0xffffffffu)
        return 0;
    frame[depth % sizeof frame] = (char)depth;
    return recurse(depth + 1) + frame[0];
}

/* The null store must reach the hardware even under a sanitizer: the platform is under test.
 * (TSan would also record the store as a write to address 0 by every worker: a race.) */
__attribute__((no_sanitize("undefined", "thread"))) static void commit_fault(os_ctx_t *ctx,
                                                                             fault_kind_t how)
{
    int *volatile nowhere = NULL;
    switch (how) {
    case FAULT_NULL:
        BUMP(null_faults);
        *(volatile int *)nowhere = 1;
        os_panic(ctx, "the null store did not fault");
    case FAULT_STACK:
        BUMP(stack_faults);
        os_panic(ctx, "recursion ended at depth %u", recurse(0));
    default:
        BUMP(panics);
        os_panic(ctx, "asked to panic");
    }
}

/* Send the next BURST pings at once: they queue up while the ponger answers. */
static void send_burst(os_ctx_t *ctx, pinger_t *p)
{
    for (uint32_t seq = p->next; seq < p->next + BURST; seq++) {
        if (os_send(ctx, p->chan, MSG_PING, &seq, sizeof(seq), NULL, 0) != 0) {
            BUMP(broken);
            os_exit(ctx, 1);
        }
    }
}

static void pinger_start(os_ctx_t *ctx)
{
    pinger_t *p = os_state(ctx);
    p->fault = arg_of(ctx).fault;
    p->chan = os_initial_handle(ctx, 0);
    if (os_timer_create(ctx, &p->timer) != 0) {
        BUMP(init_errors);
        os_exit(ctx, 1);
    }
    send_burst(ctx, p);
}

static void pinger_event(os_ctx_t *ctx, const os_event_t *ev)
{
    pinger_t *p = os_state(ctx);
    if (ev->kind == OS_EV_PEER_CLOSED) {
        BUMP(broken);
        os_exit(ctx, 1);
    }
    if (ev->kind == OS_EV_TIMER) {
        send_burst(ctx, p);
        return;
    }
    if (ev->kind != OS_EV_MESSAGE || ev->type != MSG_PONG)
        return;
    BUMP(pongs);
    uint32_t seq;
    memcpy(&seq, ev->data, sizeof(seq));
    if (ev->len != sizeof(seq) || seq != p->next)
        BUMP(order_errors);
    if (p->fault != NO_FAULT && p->next == ROUNDS / 2)
        commit_fault(ctx, p->fault);
    if (++p->next == ROUNDS) {
        BUMP(completed);
        os_exit(ctx, 0);
    }
    /* A burst answered: the next one after a pause, so the load follows the clock like the
     * kills do and the trace stays a size the recorder keeps up with. */
    if (p->next % BURST == 0 && os_timer_set(ctx, p->timer, os_clock_now(ctx) + GAP_NS) != 0)
        BUMP(init_errors);
}

static void ponger_start(os_ctx_t *ctx)
{
    arg_of(ctx);
}

static void ponger_event(os_ctx_t *ctx, const os_event_t *ev)
{
    if (ev->kind == OS_EV_PEER_CLOSED)
        os_exit(ctx, 0); /* normal after the pinger finished; also after a kill or a fault */
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
    int live;          /* tasks not yet reported exited */
    unsigned respawns; /* pairs started again */
    long faults_seen;  /* fault and panic exits */
} sinit_t;

static bool more_to_do(const sinit_t *s)
{
    return s->kills < kills_wanted || s->faults_seen < faults_wanted;
}

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
    pair_arg_t pa = {-1, NO_FAULT}, pb = {-1, NO_FAULT};
    if (i % 3 == 1) {
        pa.worker = pb.worker = i % WORKERS;
    } else if (i % 3 == 2) {
        pa.worker = i % WORKERS;
        pb.worker = (i + 1) % WORKERS;
    }
    /* Every other respawned pinger fails halfway, by turns in each of the three ways. */
    if (sl->generation > 1 && s->faults_seen < faults_wanted && s->respawns++ % 2 == 0)
        pa.fault = (fault_kind_t)(FAULT_NULL + s->respawns / 2 % 3);
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
        if (s->kills < kills_wanted) {
            sinit_kill_one(ctx, s);
            os_timer_set(ctx, s->timer, os_clock_now(ctx) + KILL_EVERY_NS);
        }
        return;
    }
    if (ev->kind != OS_EV_TASK_EXIT)
        return;
    BUMP(exits);
    if (ev->status == OS_EXIT_FAULT) {
        BUMP(fault_exits);
        s->faults_seen++;
    } else if (ev->status == OS_EXIT_PANIC) {
        BUMP(panic_exits);
        s->faults_seen++;
    }
    s->live--;
    for (int i = 0; i < PAIRS; i++) {
        slot_t *sl = &s->slot[i];
        for (int j = 0; j < 2; j++) {
            if (sl->task[j] == ev->handle) {
                os_handle_close(ctx, ev->handle);
                sl->task[j] = OS_HANDLE_NONE;
            }
        }
        if (sl->task[0] == OS_HANDLE_NONE && sl->task[1] == OS_HANDLE_NONE && more_to_do(s) &&
            sl->generation > 0)
            spawn_pair(ctx, s, i);
    }
    if (s->live == 0 && !more_to_do(s))
        os_shutdown(ctx, 0);
}

static const os_program_t sinit = {"stress-init", sizeof(sinit_t), sinit_start, sinit_event};
static const os_program_t *const programs[] = {&sinit, &pinger, &ponger, NULL};

/* ---- the trace: count exits from every worker, pass everything to the recorder ---------- */

static void count_record(void *self, const hal_trace_rec_t *r)
{
    const hal_trace_sink_t *rec = self;
    BUMP(trace_records);
    if (r->kind == HAL_TR_EXIT && r->result == OS_EXIT_FAULT)
        BUMP(trace_fault_exits);
    else if (r->kind == HAL_TR_EXIT && r->result == OS_EXIT_PANIC)
        BUMP(trace_panic_exits);
    rec->record(rec->self, r);
}

static void count_flush(void *self)
{
    const hal_trace_sink_t *rec = self;
    if (rec->flush)
        rec->flush(rec->self);
}

static void stress_run(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    char dir[] = "/tmp/orrery-stress-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/stress.db", dir);
    trace_recorder *rec;
    trace_run_info info = {.platform = "hosted", .workers = WORKERS, .command = "test_stress"};
    assert_int_equal(0, trace_recorder_open(path, &info, &rec, err, sizeof err));
    trace_recorder_set_buffer_limit(rec, RECORDER_BUFFER);
    const hal_trace_sink_t *inner = trace_recorder_sink(rec);
    hal_trace_sink_t counting = {.self = (void *)inner, .record = count_record, .flush = count_flush};

    hl_run_config_t rc;
    hl_run_config_init(&rc);
    hl_run_stats_t stats;
    rc.programs = programs;
    rc.init_program = "stress-init";
    rc.workers = WORKERS;
    rc.console_in = -1;
    rc.console_out = open("/dev/null", O_WRONLY | O_CLOEXEC); /* "[pinger] fault: ..." lines */
    assert_true(rc.console_out >= 0);
    rc.timeout_ms = 300000;
    rc.spin_us = 5;
    rc.stats = &stats;
    rc.trace = &counting;

    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = hl_run(&rc);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(rc.console_out);
    trace_recorder_stats ts;
    trace_recorder_stats_at_close(rec, &ts);
    assert_int_equal(0, trace_recorder_close(rec, err, sizeof err));
    clock_gettime(CLOCK_MONOTONIC, &t2);
    unlink(path);
    rmdir(dir);
    print_message("spawned %ld exits %ld kills %ld completed %ld broken %ld pings %ld pongs %ld "
                  "faults null %ld stack %ld panic %ld; events %llu futex wakes %llu; trace "
                  "records %ld written %llu dropped %llu; %.2f s run, %.2f s closing the trace\n",
                  GET(spawned), GET(exits), GET(kills), GET(completed), GET(broken), GET(pings),
                  GET(pongs), GET(null_faults), GET(stack_faults), GET(panics),
                  (unsigned long long)stats.events, (unsigned long long)stats.wakes,
                  GET(trace_records), (unsigned long long)ts.written,
                  (unsigned long long)ts.dropped,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                  (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9);

    assert_false(stats.timed_out);
    assert_int_equal(0, status);
    assert_int_equal(0, stats.leaks);
    assert_int_equal(0, GET(init_errors));
    assert_int_equal(0, GET(order_errors));
    assert_int_equal(kills_wanted, GET(kills));
    assert_int_equal(GET(spawned), GET(exits));
    assert_true(GET(spawned) >= 2 * PAIRS);
    /* Every fault a pinger committed killed that pinger alone, with the right status, and the
     * trace (recorded from all workers at once) says the same. */
    assert_int_equal(GET(null_faults) + GET(stack_faults), GET(fault_exits));
    assert_int_equal(GET(panics), GET(panic_exits));
    assert_true(GET(fault_exits) + GET(panic_exits) >= faults_wanted);
    assert_true(GET(null_faults) > 0 && GET(stack_faults) > 0 && GET(panics) > 0);
    assert_int_equal(GET(fault_exits), GET(trace_fault_exits));
    assert_int_equal(GET(panic_exits), GET(trace_panic_exits));
    assert_int_equal(GET(trace_records), ts.recorded + ts.dropped);
    assert_int_equal(ts.recorded, ts.written);
    /* Every pair ends complete, or broken by a kill or a fault. */
    long pairs = GET(spawned) / 2, failures = kills_wanted + GET(fault_exits) + GET(panic_exits);
    assert_true(GET(completed) <= pairs);
    assert_true(pairs <= GET(completed) + failures);
    assert_true(GET(broken) <= failures);
    /* A pong is only counted for a ping answered; at most a burst of answers per pair is lost. */
    assert_true(GET(pongs) <= GET(pings));
    assert_true(GET(pings) - GET(pongs) <= pairs * BURST);
    assert_true(GET(pongs) >= (long)GET(completed) * ROUNDS);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--kills") == 0 && atol(argv[2]) >= 30) {
        kills_wanted = atol(argv[2]);
        faults_wanted = kills_wanted / 3;
    } else if (argc != 1) {
        fprintf(stderr, "usage: test_stress [--kills N (>= 30)]\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stress_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
