/* replay.h — `orrery replay`: run one server alone against its recorded inputs and compare. */
#ifndef TRACE_REPLAY_H
#define TRACE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hal/trace.h>

typedef struct trace_replay_opts {
    const char *path;   /* the trace file */
    const char *task;   /* program name (its first instance) or recorded task id */
    const char *node;   /* a trace with several nodes: the node whose task it is (NULL: none) */
    bool verbose;       /* print every matched event */
    FILE *out;          /* report (stdout) */
} trace_replay_opts;

/*
 * 0: every recorded event of the task matched (count printed); 1: the first
 * divergence was printed (expected and actual, decoded); 2: the trace is
 * missing, corrupt, lacks the task or cannot be replayed (one line in err).
 */
int trace_replay(const trace_replay_opts *o, char *err, size_t errlen);

/* ---- shared between replay.c (recording, comparison) and replay_run.c (the sim side) ---- */

/* One event of the replayed task, with objects named by the task's handle values. */
typedef struct rp_ev {
    hal_trace_rec_t r;    /* the record; r.data points at data */
    uint8_t *data;        /* owned copy of the payload */
    uint32_t h, h2;       /* handle of r.chan (and of r.peer for CHAN_CREATE) in the task, 0 if none */
    uint32_t iface;       /* interface for decoding (recording side) */
    uint8_t carried[4];   /* DELIVER: object kinds of the carried handles */
} rp_ev;

typedef struct rp_vec {
    rp_ev *v;
    size_t n, cap;
} rp_vec;

int rp_push(rp_vec *vec, const hal_trace_rec_t *r, uint32_t h, uint32_t h2);
void rp_vec_free(rp_vec *vec);

/* A growable map u32 -> u64 indexed by object id (ids are dense, from 1). */
typedef struct rp_map {
    uint64_t *v;
    size_t cap;
} rp_map;
void rp_map_set(rp_map *m, uint32_t key, uint64_t val);
uint64_t rp_map_get(const rp_map *m, uint32_t key);
void rp_map_free(rp_map *m);

/* What the replayed task consumes, in recorded order. */
typedef struct rp_inputs {
    uint64_t *clock;  size_t nclock, iclock;
    rp_vec random;    size_t irandom;
    int *sends;       size_t nsends, isend;
    uint32_t *spawn_ids; size_t nspawn, ispawn;
    rp_vec lists;     size_t ilist;
} rp_inputs;

/* The recording of one task. */
typedef struct rp_recording {
    uint32_t task;              /* recorded id */
    char name[64];
    bool privileged;            /* spawned by the kernel (init) */
    uint32_t parent;            /* the recorded id of the task that spawned it (0: the kernel) */
    uint8_t initial[8];         /* object kinds of its initial handles */
    size_t ninitial;
    char *arg;                  /* spawn arg: init's is the manifest; a program init started
                                   gets its manifest line's arg= (replay.c, manifest_arg) */
    size_t arg_len;
    rp_vec events;              /* its stream */
    rp_inputs in;
    char device[16];            /* the device it used (its DEVICE record's name: "net0",
                                   "blk0"), "" if none; the replay registers a stand-in */
} rp_recording;

/* Maps key on an object's id and kind: traces recorded before one counter numbered every
 * object (devices counted from 1 apart) reuse ids across kinds, and they still replay. */
uint32_t rp_obj_kind(const hal_trace_rec_t *r); /* HAL_TRACE_OBJ_* of r->chan */
#define RP_KEY(id, kind) ((uint32_t)(id) << 3 | (uint32_t)(kind))

/* Is this event of the stream an input the harness injects (vs. something the task does)? */
bool rp_is_input(const rp_ev *e);

/* The sim side (replay_run.c). */
typedef struct rp_run rp_run;
int rp_run_start(rp_run **out, rp_recording *rec, char *err, size_t errlen);
/* The task's stream so far (grows as rp_run_inject and the task run). */
const rp_vec *rp_run_events(rp_run *run);
/* Inject recorded input e and run until idle. 0, or -1 with a reason in err. */
int rp_run_inject(rp_run *run, const rp_ev *e, char *err, size_t errlen);
/* Console output (the task's log lines) so far. */
const char *rp_run_console(rp_run *run, size_t *len);
void rp_run_stop(rp_run *run);

#endif
