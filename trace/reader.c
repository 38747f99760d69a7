/* reader.c — open and validate a trace file, read its run row, names and events. */
#include <trace/decode.h>
#include <trace/outpath.h>
#include <trace/reader.h>
#include <trace/recorder.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct name_ent {
    uint32_t node;
    uint32_t id;
    char *name;
} name_ent;

struct trace_db {
    sqlite3 *db;
    int version; /* meta.schema_version */
    char *path;
    char err[512];
    name_ent *tasks, *ifaces, *devices;
    size_t ntasks, nifaces, ndevices;
    int devices_loaded; /* 0: not yet, 1: loaded, -1: could not be read */
    /* Schema 3: the nodes table's names by id (NULL where an id has no row); 0 without nodes. */
    char **nodes;
    size_t nnodes;
    int64_t sel;       /* the node iterators are limited to, or -1: every node */
    uint32_t cur_node; /* the node names are looked up on (trace_iter_next sets it) */
};

struct trace_iter {
    trace_db *db;
    sqlite3_stmt *st;
    uint32_t len_column; /* the current row's len column (its payload may disagree) */
    uint32_t node;       /* the current row's node */
};

/* What selects a row's node in SQL: the column, or 0 in files from before nodes (schema < 3). */
static const char *node_col(const trace_db *db)
{
    return db->version >= 3 ? "node" : "0";
}

static void dberr(trace_db *db, const char *fmt, ...)
{
    va_list ap;
    char msg[400];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(db->err, sizeof(db->err), "trace %s: %s", db->path, msg);
}

/* A SQLite failure as one line a user can act on. */
static void sqlerr(trace_db *db, int rc)
{
    int prim = rc & 0xff;

    if (prim == SQLITE_NOTADB)
        dberr(db, "not a SQLite database, so not an Orrery trace");
    else if (prim == SQLITE_CORRUPT)
        dberr(db, "corrupt or truncated trace (%s)", sqlite3_errmsg(db->db));
    else
        dberr(db, "%s", sqlite3_errmsg(db->db));
}

const char *trace_db_error(const trace_db *db)
{
    return db->err;
}

int trace_fail(const char *msg)
{
    fprintf(stderr, "orrery trace: %s\n", msg);
    return 1;
}

static int load_names(trace_db *db, const char *sql, name_ent **out, size_t *n)
{
    sqlite3_stmt *st;
    size_t cap = 0;
    int rc;

    rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlerr(db, rc);
        return -1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (!name)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            name_ent *grown = realloc(*out, cap * sizeof(**out));
            if (!grown) {
                sqlite3_finalize(st);
                dberr(db, "out of memory");
                return -1;
            }
            *out = grown;
        }
        (*out)[*n].id = (uint32_t)sqlite3_column_int64(st, 0);
        (*out)[*n].node = sqlite3_column_count(st) > 2 ? (uint32_t)sqlite3_column_int64(st, 2) : 0;
        (*out)[*n].name = strdup(name);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sqlerr(db, rc);
        return -1;
    }
    return 0;
}

static const char *find_name(const name_ent *e, size_t n, uint32_t node, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].id == id && e[i].node == node)
            return e[i].name;
    return NULL;
}

const char *trace_db_task_name_on(trace_db *db, uint32_t node, uint32_t task)
{
    return find_name(db->tasks, db->ntasks, node, task);
}

const char *trace_db_task_name(trace_db *db, uint32_t task)
{
    return trace_db_task_name_on(db, db->cur_node, task);
}

/* From the DEVICE records, read on first use: only device records ask, and it is a scan. */
const char *trace_db_device_name_on(trace_db *db, uint32_t node, uint32_t dev)
{
    if (!db->devices_loaded) {
        char saved[sizeof(db->err)], sql[160];
        memcpy(saved, db->err, sizeof(saved));
        snprintf(sql, sizeof(sql),
                 "SELECT chan, CAST(payload AS TEXT), %s FROM events WHERE kind = %d ORDER BY seq",
                 node_col(db), HAL_TR_DEVICE);
        db->devices_loaded = load_names(db, sql, &db->devices, &db->ndevices) == 0 ? 1 : -1;
        memcpy(db->err, saved, sizeof(saved)); /* a name is a nicety: no error for it */
    }
    return find_name(db->devices, db->ndevices, node, dev);
}

const char *trace_db_device_name(trace_db *db, uint32_t dev)
{
    return trace_db_device_name_on(db, db->cur_node, dev);
}

uint32_t trace_db_device_id_on(trace_db *db, uint32_t node, const char *name)
{
    trace_db_device_name_on(db, node, 0);
    for (size_t i = 0; i < db->ndevices; i++)
        if (db->devices[i].node == node && strcmp(db->devices[i].name, name) == 0)
            return db->devices[i].id;
    return 0;
}

uint32_t trace_db_device_id(trace_db *db, const char *name)
{
    return trace_db_device_id_on(db, db->cur_node, name);
}

size_t trace_db_node_count(const trace_db *db)
{
    return db->nnodes;
}

const char *trace_db_node_name(const trace_db *db, uint32_t node)
{
    return node < db->nnodes ? db->nodes[node] : NULL;
}

int trace_db_node_find(const trace_db *db, const char *name)
{
    for (size_t i = 0; i < db->nnodes; i++)
        if (db->nodes[i] && strcmp(db->nodes[i], name) == 0)
            return (int)i;
    return -1;
}

size_t trace_db_node_list(const trace_db *db, char *buf, size_t len)
{
    size_t off = 0;

    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < db->nnodes && off < len; i++)
        if (db->nodes[i])
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", db->nodes[i]);
    return off;
}

void trace_db_select_node(trace_db *db, int64_t node)
{
    db->sel = node;
    db->cur_node = node < 0 ? 0 : (uint32_t)node;
}

int64_t trace_db_selected_node(const trace_db *db)
{
    return db->sel;
}

uint32_t trace_db_current_node(const trace_db *db)
{
    return db->cur_node;
}

int trace_db_select_node_name(trace_db *db, const char *name, char *err, size_t errlen)
{
    char list[TRACE_NODES_MAX * 34];
    int node;

    if (!name) {
        trace_db_select_node(db, -1);
        return 0;
    }
    if (!db->nnodes) {
        snprintf(err, errlen,
                 "trace %s: no node '%s': the trace is of one kernel (it has no nodes)", db->path,
                 name);
        return -1;
    }
    if ((node = trace_db_node_find(db, name)) < 0) {
        trace_db_node_list(db, list, sizeof(list));
        snprintf(err, errlen, "trace %s: no node '%s' (its nodes: %s)", db->path, name, list);
        return -1;
    }
    trace_db_select_node(db, node);
    return 0;
}

/* Schema 3: the nodes table. A file without nodes (or an older one) has none. */
static int load_nodes(trace_db *db)
{
    name_ent *e = NULL;
    size_t n = 0, max = 0;

    if (db->version < 3)
        return 0;
    if (load_names(db, "SELECT id, name FROM nodes WHERE id >= 0 AND id < 64 ORDER BY id", &e,
                   &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (e[i].id + 1 > max)
            max = e[i].id + 1;
    if (max && !(db->nodes = calloc(max, sizeof(*db->nodes)))) {
        for (size_t i = 0; i < n; i++)
            free(e[i].name);
        free(e);
        dberr(db, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        db->nodes[e[i].id] = e[i].name;
    db->nnodes = max;
    free(e);
    return 0;
}

const char *trace_db_iface_name(trace_db *db, uint32_t iface)
{
    const char *n = find_name(db->ifaces, db->nifaces, 0, iface);
    return n ? n : trace_iface_name(iface);
}

static int check(trace_db *db)
{
    sqlite3_stmt *st;
    int rc, version;

    rc = sqlite3_prepare_v2(db->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                            NULL);
    if (rc != SQLITE_OK) {
        if (strstr(sqlite3_errmsg(db->db), "no such table"))
            dberr(db, "a SQLite database but not an Orrery trace (no meta table)");
        else
            sqlerr(db, rc);
        return -1;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            dberr(db, "not an Orrery trace (no schema_version in meta)");
        else
            sqlerr(db, rc);
        sqlite3_finalize(st);
        return -1;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    db->version = version;
    if (version > TRACE_SCHEMA_VERSION) {
        dberr(db, "schema version %d is newer than this orrery reads (%d); use a newer orrery",
              version, TRACE_SCHEMA_VERSION);
        return -1;
    }
    if (version < 1) {
        dberr(db, "bad schema version %d", version);
        return -1;
    }
    /*
     * Cheap structural check so that a truncated or damaged file fails here
     * with one line rather than half-way through a listing.
     */
    rc = sqlite3_prepare_v2(db->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlerr(db, rc);
        return -1;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (!res || strcmp(res, "ok") != 0) {
            dberr(db, "corrupt or truncated trace (%s)", res ? res : "?");
            sqlite3_finalize(st);
            return -1;
        }
    } else {
        sqlerr(db, rc);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    if (load_names(db,
                   db->version >= 3 ? "SELECT id, name, node FROM tasks"
                                    : "SELECT id, name FROM tasks",
                   &db->tasks, &db->ntasks) != 0 ||
        load_names(db, "SELECT id, name FROM interfaces", &db->ifaces, &db->nifaces) != 0 ||
        load_nodes(db) != 0)
        return -1;
    return 0;
}

/*
 * A recording cut short (SIGKILL, crash) leaves records in capture blocks
 * (its capture file, indexed by its capture table) that were never expanded into events rows: expand them before reading, with
 * a note, unless a recorder is still writing the file (its lock is held).
 */
static void expand_captured(const char *path)
{
    trace_repair_result res;
    uint64_t pending = 0;
    char err[600];
    int fd;

    if (trace_capture_pending(path, &pending) != 0 || pending == 0)
        return;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr,
                "orrery: note: %s: a recording is still writing it; %llu blocks of its records"
                " are not expanded yet and are not shown\n",
                path, (unsigned long long)pending);
        close(fd);
        return;
    }
    if (trace_capture_repair(path, &res, err, sizeof(err)) != 0)
        fprintf(stderr,
                "orrery: note: %s: %llu blocks of records a cut recording left are not expanded"
                " (%s); they are not shown ('orrery trace repair' where the file can be"
                " written)\n",
                path, (unsigned long long)pending, err);
    else {
        fprintf(stderr,
                "orrery: note: %s: expanded %llu records (%llu capture blocks) a cut recording"
                " left unexpanded\n",
                path, (unsigned long long)res.records, (unsigned long long)res.blocks);
        if (res.bad_blocks)
            fprintf(stderr,
                    "orrery: note: %s: %llu capture blocks are corrupt, their %llu records"
                    " counted in run.dropped, kept in the capture table; the first: %s\n",
                    path, (unsigned long long)res.bad_blocks, (unsigned long long)res.bad_records,
                    res.first_bad);
    }
    flock(fd, LOCK_UN);
    close(fd);
}

int trace_db_open(const char *path, trace_db **out, char *err, size_t errlen)
{
    trace_db *db = calloc(1, sizeof(*db));
    struct stat sb;

    *out = NULL;
    if (!db || !(db->path = strdup(path))) {
        free(db);
        snprintf(err, errlen, "trace %s: out of memory", path);
        return -1;
    }
    db->sel = -1;
    if (stat(path, &sb) != 0) {
        char partial[4200];
        snprintf(partial, sizeof(partial), "%s" TRACE_PARTIAL_SUFFIX, path);
        if (stat(partial, &sb) == 0)
            dberr(db, "no such file (%s holds an unfinished or incomplete recording: read that)",
                  partial);
        else
            dberr(db, "no such file");
    } else if (S_ISDIR(sb.st_mode))
        dberr(db, "is a directory, not a trace");
    else if (sb.st_size == 0)
        dberr(db, "empty file, not a trace");
    else if (S_ISREG(sb.st_mode) && (expand_captured(path), 0))
        ;
    else if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        dberr(db, "cannot open: %s", db->db ? sqlite3_errmsg(db->db) : "out of memory");
    else if (check(db) == 0) {
        *out = db;
        return 0;
    }
    snprintf(err, errlen, "%s", db->err);
    trace_db_close(db);
    return -1;
}

void trace_db_close(trace_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->ntasks; i++)
        free(db->tasks[i].name);
    for (size_t i = 0; i < db->nifaces; i++)
        free(db->ifaces[i].name);
    for (size_t i = 0; i < db->ndevices; i++)
        free(db->devices[i].name);
    for (size_t i = 0; i < db->nnodes; i++)
        free(db->nodes[i]);
    free(db->nodes);
    free(db->tasks);
    free(db->ifaces);
    free(db->devices);
    if (db->db)
        sqlite3_close(db->db);
    free(db->path);
    free(db);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

int trace_db_run(trace_db *db, trace_run_row *out)
{
    sqlite3_stmt *st;
    int rc;

    memset(out, 0, sizeof(*out));
    out->schema_version = db->version;
    rc = sqlite3_prepare_v2(db->db,
                            "SELECT platform, commit_id, start_time, seed,"
                            " coalesce(events, (SELECT count(*) FROM events)), dropped,"
                            " bad_frames, workers, complete, exit_status FROM run WHERE id = 1",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlerr(db, rc);
        return -1;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_text(out->platform, sizeof(out->platform), sqlite3_column_text(st, 0));
        copy_text(out->commit, sizeof(out->commit), sqlite3_column_text(st, 1));
        copy_text(out->start_time, sizeof(out->start_time), sqlite3_column_text(st, 2));
        out->seed = (uint64_t)sqlite3_column_int64(st, 3);
        out->events = (uint64_t)sqlite3_column_int64(st, 4);
        out->dropped = (uint64_t)sqlite3_column_int64(st, 5);
        out->bad_frames = (uint64_t)sqlite3_column_int64(st, 6);
        out->workers = (unsigned)sqlite3_column_int(st, 7);
        out->complete = sqlite3_column_int(st, 8) != 0;
        out->has_exit_status = sqlite3_column_type(st, 9) != SQLITE_NULL;
        out->exit_status = sqlite3_column_int(st, 9);
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        dberr(db, "the run table is empty");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sqlerr(db, rc);
        return -1;
    }
    /* commit_unix_ns came later within schema 2: absent from older files. */
    rc = sqlite3_prepare_v2(db->db,
                            "SELECT start_unix_ns, end_unix_ns, commit_unix_ns FROM run"
                            " WHERE id = 1",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        rc = sqlite3_prepare_v2(db->db,
                                "SELECT start_unix_ns, end_unix_ns, NULL FROM run"
                                " WHERE id = 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlerr(db, rc);
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->start_unix_ns = (uint64_t)sqlite3_column_int64(st, 0);
        out->closed = sqlite3_column_type(st, 1) != SQLITE_NULL;
        out->commit_unix_ns = (uint64_t)sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    return 0;
}

int trace_iter_open(trace_db *db, const trace_filter *f, trace_iter **out)
{
    /* Before nodes (schema < 3) tasks has no node column: every row is node 0. */
    static const char *const sql_v2 =
        "SELECT seq, time_ns, arg, kind, task, chan, peer, type, result, len, nhandles, iface,"
        " payload, 0 FROM events"
        " WHERE (?1 IS NULL OR task IN (SELECT id FROM tasks WHERE name = ?1)"
        "        OR CAST(task AS TEXT) = ?1)"
        " AND (?2 = 0 OR iface = ?2) AND (?3 = 0 OR kind = ?3) AND (?5 < 0 OR ?5 = 0)"
        " ORDER BY seq LIMIT ?4";
    static const char *const sql_v3 =
        "SELECT seq, time_ns, arg, kind, task, chan, peer, type, result, len, nhandles, iface,"
        " payload, node FROM events"
        " WHERE (?1 IS NULL OR (node, task) IN (SELECT node, id FROM tasks WHERE name = ?1)"
        "        OR CAST(task AS TEXT) = ?1)"
        " AND (?2 = 0 OR iface = ?2) AND (?3 = 0 OR kind = ?3) AND (?5 < 0 OR node = ?5)"
        " ORDER BY seq LIMIT ?4";
    trace_iter *it = calloc(1, sizeof(*it));
    int rc;

    *out = NULL;
    if (!it) {
        dberr(db, "out of memory");
        return -1;
    }
    it->db = db;
    rc = sqlite3_prepare_v2(db->db, db->version >= 3 ? sql_v3 : sql_v2, -1, &it->st, NULL);
    if (rc != SQLITE_OK) {
        sqlerr(db, rc);
        free(it);
        return -1;
    }
    if (f && f->task)
        sqlite3_bind_text(it->st, 1, f->task, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(it->st, 2, f ? f->iface : 0);
    sqlite3_bind_int64(it->st, 3, f ? f->kind : 0);
    sqlite3_bind_int64(it->st, 4, f && f->limit ? (sqlite3_int64)f->limit : -1);
    sqlite3_bind_int64(it->st, 5, db->sel);
    *out = it;
    return 0;
}

int trace_iter_next(trace_iter *it, hal_trace_rec_t *r)
{
    sqlite3_stmt *st = it->st;
    int rc = sqlite3_step(st);

    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        sqlerr(it->db, rc);
        return -1;
    }
    r->seq = (uint64_t)sqlite3_column_int64(st, 0);
    r->time_ns = (uint64_t)sqlite3_column_int64(st, 1);
    r->arg = (uint64_t)sqlite3_column_int64(st, 2);
    r->kind = (uint32_t)sqlite3_column_int64(st, 3);
    r->task = (uint32_t)sqlite3_column_int64(st, 4);
    r->chan = (uint32_t)sqlite3_column_int64(st, 5);
    r->peer = (uint32_t)sqlite3_column_int64(st, 6);
    r->type = (uint32_t)sqlite3_column_int64(st, 7);
    r->result = (int32_t)sqlite3_column_int64(st, 8);
    it->len_column = (uint32_t)sqlite3_column_int64(st, 9);
    r->nhandles = (uint32_t)sqlite3_column_int64(st, 10);
    r->iface = (uint32_t)sqlite3_column_int64(st, 11);
    r->data = sqlite3_column_blob(st, 12);
    r->len = r->data ? (uint32_t)sqlite3_column_bytes(st, 12) : 0;
    it->node = (uint32_t)sqlite3_column_int64(st, 13);
    it->db->cur_node = it->node;
    return 1;
}

uint32_t trace_iter_len_column(const trace_iter *it)
{
    return it->len_column;
}

uint32_t trace_iter_node(const trace_iter *it)
{
    return it->node;
}

int trace_iter_open_device(trace_db *db, uint32_t dev, trace_iter **out)
{
    trace_iter *it = calloc(1, sizeof(*it));
    int rc;

    *out = NULL;
    if (!it) {
        dberr(db, "out of memory");
        return -1;
    }
    it->db = db;
    char sql[320];
    snprintf(sql, sizeof(sql),
             "SELECT seq, time_ns, arg, kind, task, chan, peer, type, result, len, nhandles, iface,"
             " payload, %s FROM events WHERE chan = ?1 AND kind IN (?2, ?3, ?4)"
             " AND (?5 < 0 OR %s = ?5) ORDER BY seq",
             node_col(db), node_col(db));
    rc = sqlite3_prepare_v2(db->db, sql, -1, &it->st, NULL);
    if (rc != SQLITE_OK) {
        sqlerr(db, rc);
        free(it);
        return -1;
    }
    sqlite3_bind_int64(it->st, 1, dev);
    sqlite3_bind_int(it->st, 2, HAL_TR_DEV_POST);
    sqlite3_bind_int(it->st, 3, HAL_TR_DEV_EVENT);
    sqlite3_bind_int64(it->st, 5, db->sel);
    sqlite3_bind_int(it->st, 4, HAL_TR_DEV_WRITE);
    *out = it;
    return 0;
}

void trace_iter_close(trace_iter *it)
{
    if (it) {
        sqlite3_finalize(it->st);
        free(it);
    }
}

int trace_db_manifest(trace_db *db, char **out, size_t *len)
{
    sqlite3_stmt *st;
    int rc;

    *out = NULL;
    *len = 0;
    /* A node's own manifest, where the trace has one; else the run's (node 0's). */
    if (db->version >= 3 && db->sel >= 0)
        rc = sqlite3_prepare_v2(db->db,
                                "SELECT coalesce((SELECT manifest FROM nodes WHERE id = ?1),"
                                " (SELECT manifest FROM run WHERE id = 1))",
                                -1, &st, NULL);
    else
        rc = sqlite3_prepare_v2(db->db, "SELECT manifest FROM run WHERE id = 1", -1, &st, NULL);
    if (rc == SQLITE_OK && db->version >= 3 && db->sel >= 0)
        sqlite3_bind_int64(st, 1, db->sel);
    if (rc != SQLITE_OK) {
        sqlerr(db, rc);
        return -1;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        if ((*out = malloc((size_t)n + 1)) != NULL) {
            if (n)
                memcpy(*out, p, (size_t)n);
            (*out)[n] = '\0';
            *len = (size_t)n;
        }
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlerr(db, rc);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}
