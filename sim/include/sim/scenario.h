/* scenario.h — simulation scenarios: timed console input, expectations, allowed faults. */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sim/faults.h>

/* The format is documented in docs/simulation.md. */
enum {
    SCN_STEPS_MAX = 256,              /* at / expect lines */
    SCN_TEXT_MAX = 1024,              /* one command or expected text (a console line's limit) */
    SCN_LINE_MAX = SCN_TEXT_MAX + 64, /* one line of the file, with its key and time */
    SCN_FILE_MAX = 1 << 20,           /* bytes in a scenario file */
    SCN_KILLS_MAX = 1000,             /* `kills` per run */
    SCN_EVENTS_MAX = 100000000,       /* `max-events` */
};

/* The `host-crash` test hook: how the simulator process itself dies. */
typedef enum scn_host_crash {
    SCN_HOST_CRASH_NONE = 0,
    SCN_HOST_CRASH_ABORT = 1, /* abort() */
    SCN_HOST_CRASH_SEGV = 2,  /* a store to address 0 outside any task */
} scn_host_crash_t;

typedef enum scn_step_kind {
    SCN_AT = 1,         /* feed `text` to the console at time t */
    SCN_EXPECT = 2,     /* the output contains `text`, after the previous expect's match */
    SCN_EXPECT_NOT = 3, /* the output never contains `text` */
} scn_step_kind_t;

typedef struct scn_step {
    scn_step_kind_t kind;
    uint64_t t; /* SCN_AT: virtual ns */
    char text[SCN_TEXT_MAX + 1];
    int line; /* in the scenario file */
} scn_step_t;

typedef struct sim_scenario {
    char name[64];
    uint64_t duration_ns; /* the run must end (shut down) by then */
    bool has_exit;
    int exit_status;                           /* expected shutdown status */
    uint32_t faults;                           /* allowed faults: the default for --faults */
    sim_faults_t fault_cfg;                    /* kill targets, counts, rates */
    char allow_panic[SIM_FAULT_ALLOW_MAX][32]; /* programs whose panics are expected */
    size_t nallow_panic;
    uint32_t max_handles;        /* per task, checked at shutdown (0: 64) */
    uint64_t max_events;         /* 0: 10 million */
    scn_host_crash_t host_crash; /* test hook: the simulator dies on host_crash_seed */
    uint64_t host_crash_seed;
    size_t nsteps;
    scn_step_t *steps; /* nsteps of them (owned) */
} sim_scenario_t;

/*
 * Parse scenario text. 0, or the 1-based line of the first error with a
 * message in err. sim_scenario_free releases the steps.
 */
int sim_scenario_parse(const char *text, size_t len, sim_scenario_t *out, char *err, size_t errlen);
void sim_scenario_free(sim_scenario_t *sc);

/* The built-in scenario: boot, ps, echo, kill echo, restart, ps, shutdown. */
extern const char sim_default_scenario[];

/* "1.5s", "250ms", "10us", "42ns", "3" (seconds) -> ns. false if malformed. */
bool sim_parse_duration(const char *s, uint64_t *ns);

#endif
