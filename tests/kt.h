/* kt.h — a tiny single-threaded test platform for kernel unit tests (manual clock, captured I/O).
 */
#ifndef KT_H
#define KT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <k/kernel.h>
#include <os/os.h>

/*
 * kt installs an hal_host_t with a manual clock (starts at 0), captured
 * console output, a recorded shutdown status and wake calls, and a counting
 * trace sink. One worker (0) runs everything, so a test is deterministic.
 *
 * Generic test programs: kt_programs[] holds "test", "peer", "child", "other"
 * (state_size 64). Their start and on_event call the hooks registered for
 * that program name with kt_on(); every event any of them receives is also
 * appended to kt_events (and handles received stay valid for the test).
 * A test may keep a task's ctx (saved in kt_ctx_of) and call os_* with it
 * from the test body between kt_run calls; never os_exit/os_panic there.
 */
typedef void (*kt_start_fn)(os_ctx_t *ctx);
typedef void (*kt_event_fn)(os_ctx_t *ctx, const os_event_t *ev);

extern const os_program_t *const kt_programs[];

/* Register hooks for a kt program ("test", "peer", "child", "other"); NULL = none. */
void kt_on(const char *program, kt_start_fn start, kt_event_fn event);

/* The ctx of the last started task of that program (NULL if none). */
os_ctx_t *kt_ctx_of(const char *program);

/* Reset kt state, install the platform and boot with init = `init` (privileged). */
int kt_boot(const char *init);
/* Same with a full config; programs default to kt_programs, workers to 1. */
int kt_boot_cfg(k_config_t *cfg);

/* Run k_run_one(0) until idle or max events; returns the events run. */
size_t kt_run(size_t max);
#define kt_run_all() kt_run(100000)

/* Move the manual clock forward and call k_timer_tick. */
void kt_advance(uint64_t ns);
uint64_t kt_now(void);
/* The last deadline given to hal_timer_arm (UINT64_MAX: disarmed). */
uint64_t kt_armed(void);

/* Console output so far (NUL-terminated). */
const char *kt_console(void);
void kt_console_clear(void);

/* hal_shutdown calls seen, and the last status. */
int kt_shutdown_calls(void);
int kt_shutdown_status(void);
/* hal_cpu_wake calls, and the last worker given. */
int kt_wake_calls(void);
int kt_last_wake(void);

/* Counting trace sink (installed by kt_boot; kt_boot_cfg uses cfg->trace as given,
 * pass kt_trace_sink() to count). */
const hal_trace_sink_t *kt_trace_sink(void);
uint64_t kt_trace_count(uint32_t kind);
uint64_t kt_trace_total(void);
bool kt_trace_seq_ok(void); /* seqs seen were exactly 1..total in order */
/* The last record of a kind (fields copied, data not kept). */
bool kt_trace_last(uint32_t kind, hal_trace_rec_t *out);

/* Events received by kt programs, in order. */
typedef struct kt_event {
    uint32_t task;
    char program[OS_NAME_MAX];
    os_event_t ev;     /* data points into data[] below */
    uint8_t data[256]; /* first bytes of the payload */
} kt_event_t;
enum { KT_EVENTS_MAX = 1024 };
extern kt_event_t kt_events[KT_EVENTS_MAX];
extern size_t kt_nevents;
/* Count events of a kind received by a program (NULL: any program). */
size_t kt_count(const char *program, os_event_kind_t kind);
/* The n-th (0-based) event of that kind for that program, or NULL. */
const kt_event_t *kt_find(const char *program, os_event_kind_t kind, size_t n);

/* k_teardown and uninstall the platform; returns leaked allocations. */
long kt_teardown(void);

#ifdef cmocka_unit_test
/* For cmocka tests (cmocka.h included first): boot with the "test" program as init, run it
 * until idle and return its ctx; and a teardown that tears the kernel down. */
static inline os_ctx_t *kt_boot_test(void)
{
    assert_int_equal(0, kt_boot("test"));
    kt_run_all();
    os_ctx_t *ctx = kt_ctx_of("test");
    assert_non_null(ctx);
    return ctx;
}

static inline int kt_cleanup(void **state)
{
    (void)state;
    kt_teardown();
    return 0;
}
#endif

#endif
