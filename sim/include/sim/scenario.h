/* scenario.h — simulation scenarios: timed console input, expectations, allowed faults. */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sim/faults.h>
#include <sim/net.h>

/* The format is documented in docs/simulation.md. */
enum {
    SCN_STEPS_MAX = 256,              /* at / expect lines */
    SCN_TEXT_MAX = 1024,              /* one command or expected text (a console line's limit) */
    SCN_LINE_MAX = SCN_TEXT_MAX + 64, /* one line of the file, with its key and time */
    SCN_FILE_MAX = 1 << 20,           /* bytes in a scenario file */
    SCN_KILLS_MAX = 1000,             /* `kills` per run */
    SCN_EVENTS_MAX = 100000000,       /* `max-events` */
    SCN_PEERS_MAX = 7,                /* `peer` nodes besides the scenario's own */
    SCN_PATH_MAX = 256,               /* a manifest path as written */
    SCN_PARTITIONS_MAX = 16,          /* `partition` lines */
    SCN_CUTS_MAX = 8,                 /* `power-cut` lines */
    SCN_KILL_AT_MAX = 16,             /* `kill-at` lines */
    SCN_NODES_MAX = 32,               /* `node` / `nodes` of a cluster file */
    SCN_NAME_MAX = 32,                /* a node's name, with its NUL */
    SCN_GROUPS_MAX = 8,               /* groups of one `partition` line */
    SCN_LINKS_MAX = 64,               /* `link` / `path` lines */
    SCN_NET_CUTS_MAX = 64,            /* `cut` / `clog` lines */
    SCN_CRASHES_MAX = 32,             /* `crash` lines */
    SCN_PAUSES_MAX = 32,              /* `pause` lines */
};

/* A node in `at`, `expect-not`, `crash`, `link`, ...: `*` (every node, any node). */
#define SCN_NODE_ALL UINT32_MAX

/* A node's boot manifest: as written, and its text once sim_scenario_load read it. */
typedef struct scn_manifest {
    char path[SCN_PATH_MAX]; /* relative to the scenario file's folder; "" : the default */
    char *text;              /* loaded (owned), NULL before sim_scenario_load */
    size_t len;
    int line; /* the directive's line */
} scn_manifest_t;

/* `disk ...`: the scenario's node has blk0 on a disk of this kind (docs/storage-sim.md). */
typedef enum scn_disk_kind {
    SCN_DISK_NONE = 0,
    SCN_DISK_FILE = 1, /* an image file, read whole */
    SCN_DISK_ZERO = 2, /* `disk zero size=S`: zeroed */
    SCN_DISK_EXT2 = 3, /* `disk ext2 size=S`: made by the host's mke2fs, once per sweep */
} scn_disk_kind_t;

typedef struct scn_disk {
    scn_disk_kind_t kind;
    char path[SCN_PATH_MAX]; /* SCN_DISK_FILE: relative to the scenario file's folder */
    uint64_t size;           /* bytes (ZERO, EXT2) */
    char from[SCN_PATH_MAX]; /* EXT2 `from=DIR`: mke2fs -d DIR (relative as path); "" empty */
    struct sim_disk *image;  /* loaded by sim_scenario_load (owned): every seed starts on a copy */
    int line;
} scn_disk_t;

/* Another node of the run: boots its manifest, has net0 on the switch, no console script. */
typedef struct scn_peer {
    char name[32];
    scn_manifest_t manifest;
    scn_disk_t disk; /* `peer-disk NAME ...`: its blk0, as the scenario node's `disk` */
} scn_peer_t;

/*
 * `partition PEER START END` (old files: the scenario's node and PEER), `partition A,B|C,D
 * START END` or `partition NODE START END` (cluster files: NODE against every other node): no
 * node of one group reaches a node of another, both directions.
 */
typedef struct scn_partition {
    uint32_t peer;                   /* old files: index in peers */
    uint64_t groups[SCN_GROUPS_MAX]; /* node bit masks (bit n: node n) */
    size_t ngroups;
    uint64_t start, end; /* end UINT64_MAX: never heals */
    int line;
} scn_partition_t;

/* A node of a cluster file: `node NAME [manifest=FILE] [disk=...] [addr=A.B.C.D/N]`, or one of
 * `nodes PREFIX A..B ...` (index: its number; `{i}` in the options was replaced by it). */
typedef struct scn_node {
    char name[SCN_NAME_MAX];
    uint64_t index;          /* ${i}: the number from `nodes`, else 0 */
    scn_manifest_t manifest; /* "" path: the default manifest */
    scn_disk_t disk;
    char addr[16]; /* ${addr}: "10.0.0.1" ("": none) */
    char cidr[20]; /* ${cidr}: "10.0.0.1/24" */
    int line;
} scn_node_t;

/* `link A B ...` (both directions) or `path A B ...` (A to B): a path's character. */
typedef struct scn_link {
    uint32_t from, to; /* node indexes, or SCN_NODE_ALL (`*`) */
    bool both;
    sim_net_link_t link;
    int line;
} scn_link_t;

/* `cut A B START END` (A's frames to B are lost) or `clog A B START END` (they wait). */
typedef struct scn_net_cut {
    uint32_t from, to; /* node indexes, or SCN_NODE_ALL */
    bool clog;
    uint64_t start, end;
    int line;
} scn_net_cut_t;

/* `crash NODE|* TIME|A..B [down=T|never]`: a power cut of the node, booting again after down. */
typedef struct scn_crash {
    uint32_t node;       /* or SCN_NODE_ALL: every node at once */
    uint64_t start, end; /* the time is drawn from the seed in [start, end] */
    uint64_t down_ns;    /* UINT64_MAX: it stays down */
    int line;
} scn_crash_t;

/* `pause NODE START END`: none of its events run between START and END. */
typedef struct scn_pause {
    uint32_t node;
    uint64_t start, end;
    int line;
} scn_pause_t;

/* `kill-at TIME [PEER:]PROGRAM`: at TIME, kill that program's live task on that node. */
typedef struct scn_kill_at {
    uint64_t t;
    uint32_t node; /* 0: the scenario's node; 1 + index in peers */
    char program[32];
    int line;
} scn_kill_at_t;

/* `power-cut START[..END] [reboot]`: node 0 loses power at a seeded time in [start, end]. */
typedef struct scn_power_cut {
    uint64_t start, end;
    bool reboot; /* boot again on the same disk right after the cut */
    int line;
} scn_power_cut_t;

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
    uint32_t node; /* whose console (cluster files; 0 in old ones); SCN_NODE_ALL: expect-not * */
    uint64_t t;    /* SCN_AT: virtual ns */
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
    /* the network (docs/simulation.md): the scenario's node and its peers on one switch */
    scn_manifest_t manifest; /* the scenario's node's manifest ("" path: the default one) */
    bool net;                /* the scenario's node has net0 (always, with peers) */
    scn_peer_t peers[SCN_PEERS_MAX];
    size_t npeers;
    scn_partition_t partitions[SCN_PARTITIONS_MAX];
    size_t npartitions;
    uint64_t net_latency_ns; /* 0: the switch's default */
    /* storage (docs/storage-sim.md): the scenario's node's disk, and its power cuts */
    scn_disk_t disk;
    scn_kill_at_t kill_at[SCN_KILL_AT_MAX]; /* `kill-at`: one named task killed at a set time */
    size_t nkill_at;
    scn_power_cut_t cuts[SCN_CUTS_MAX];
    size_t ncuts;
    /* clusters (docs/simulation.md "Clusters: nodes, links, faults"): a file with a `node` or
     * `nodes` line; then nodes[0] is the node whose shutdown ends the run, and manifest, disk
     * and peers above are unused */
    bool cluster;
    scn_node_t *nodes; /* nnodes of them (owned; SCN_NODES_MAX allocated in cluster files) */
    size_t nnodes;
    scn_link_t links[SCN_LINKS_MAX];
    size_t nlinks;
    sim_net_link_t net_link; /* `net-tail`, `net-bandwidth`: the switch's defaults (0: none) */
    uint32_t net_capacity;   /* `net-capacity N` (0: the switch's default) */
    scn_net_cut_t net_cuts[SCN_NET_CUTS_MAX];
    size_t nnet_cuts;
    bool chaos; /* `net-chaos` or `swizzle` given */
    sim_net_chaos_t chaos_cfg;
    scn_crash_t crashes[SCN_CRASHES_MAX];
    size_t ncrashes;
    scn_pause_t pauses[SCN_PAUSES_MAX];
    size_t npauses;
    uint64_t liveness_ns; /* the stream checker's bound after the last heal (0: 120 s) */
    bool streams_off;     /* `streams off` */
    bool console_eof;     /* `eof on`: node 0's console input ends after its last `at` line */
} sim_scenario_t;

/* The nodes of a run, old files and cluster files alike: node 0 is the scenario's node (or
 * the first `node`), then the peers (or the other nodes). */
size_t sim_scenario_node_count(const sim_scenario_t *sc);
const char *sim_scenario_node_name(const sim_scenario_t *sc, size_t n); /* "" old node 0 */
scn_manifest_t *sim_scenario_node_manifest(sim_scenario_t *sc, size_t n);
scn_disk_t *sim_scenario_node_disk(sim_scenario_t *sc, size_t n);
/* `liveness`, or its default (120 s). */
uint64_t sim_scenario_liveness(const sim_scenario_t *sc);
/* True if the run has a network (net on, a peer, several nodes, or an address). */
bool sim_scenario_has_net(const sim_scenario_t *sc);
/*
 * A cluster node's manifest with ${name}, ${i}, ${addr}, ${cidr} and ${addr:NODE} replaced
 * (docs/simulation.md). A new string (*out, *outlen) or NULL with a one-line reason in err.
 */
char *sim_scenario_substitute(const sim_scenario_t *sc, size_t n, const char *text, size_t len,
                              size_t *outlen, char *err, size_t errlen);

/*
 * Parse scenario text. 0, or the 1-based line of the first error with a
 * message in err. sim_scenario_free releases the steps.
 */
int sim_scenario_parse(const char *text, size_t len, sim_scenario_t *out, char *err, size_t errlen);
void sim_scenario_free(sim_scenario_t *sc);

/*
 * Make or read the scenario's disk into sc->disk.image (once: every seed starts on a copy):
 * an image file relative to dir (NULL or "" for the current folder), a zeroed disk, or an
 * ext2 volume made by the host's mke2fs. 0 (also without a disk), or the `disk` line with a
 * one-line message in err.
 */
int sim_scenario_load_disk(sim_scenario_t *sc, const char *dir, char *err, size_t errlen);

/*
 * The host's `e2fsck -fn` on the disk as a clean power-off leaves it (a copy in a temporary
 * file): 0 clean, or -1 with a one-line reason in err (its exit status and what it found, or
 * why it could not run).
 */
int sim_disk_fsck(struct sim_disk *d, char *err, size_t errlen);

/* The built-in scenario: boot, ps, echo, kill echo, restart, ps, shutdown. */
extern const char sim_default_scenario[];

/* "1.5s", "250ms", "10us", "42ns", "3" (seconds) -> ns. false if malformed. */
bool sim_parse_duration(const char *s, uint64_t *ns);

/* A disk size: "4M", "512K", "1G" (binary units) or bytes; a non-zero multiple of 512 of at
 * most SIM_DISK_MAX_BYTES. false if malformed or out of range. */
bool sim_parse_disk_size(const char *s, uint64_t *bytes);

/* A rate in bits per second: "100M", "1G", "64k" (decimal units) or a number. false if
 * malformed, zero or above 10^15. */
bool sim_parse_rate(const char *s, uint64_t *bps);

#endif
