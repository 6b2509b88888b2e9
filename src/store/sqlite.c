/*
 * sqlite.c - the SQLite backend of the store (see store_backend.h for the contract of each
 * function).  Everything SQLite-specific is here: the SQL dialect, the schema and its
 * migrations, WAL, locking and error mapping.
 *
 * - The database file is created by us with mode 0640 (narrowed by the umask) before SQLite
 *   opens it; SQLite gives the -wal and -shm files the same mode.
 * - journal_mode=WAL (readers never block the writer), synchronous=FULL (a commit survives a
 *   power loss: pipe mode exits 0 only after that).
 * - Writers take the lock up front (BEGIN IMMEDIATE) so that, once they hold it, no statement
 *   of the transaction can fail with SQLITE_BUSY.  Waiting is done by busy_wait(): random
 *   sleeps growing to 64 ms until busy_timeout_ms is spent, so that 32 processes queueing for
 *   the lock take turns instead of the same one always losing.
 * - Every statement is prepared once (persistent) with parameters bound; no SQL text is ever
 *   built from data.
 * - Errors: SQLITE_BUSY/LOCKED -> BP_ERR_BUSY; FULL, IOERR, READONLY, CANTOPEN, PERM ->
 *   BP_ERR_IO (transient: pipe mode exits 75); NOMEM -> BP_ERR_NOMEM; the rest BP_ERR_STORE.
 *
 * Ownership: the handle owns the connection and the prepared statements; the error text is
 * kept in the handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_backend.h"

#define SCHEMA_VERSION 2

/* Migrations: entry i brings the schema from version i to i+1.  Never edit a shipped entry;
 * append a new one (and document it in docs/store.md). */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema */
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE processed ("
    "  fingerprint TEXT PRIMARY KEY,"
    "  state INTEGER NOT NULL,"
    "  message_id TEXT,"
    "  source TEXT,"
    "  first_seen INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE ledger ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  fingerprint TEXT,"
    "  evidence_time INTEGER NOT NULL,"
    "  recorded_at INTEGER NOT NULL,"
    "  type TEXT, action TEXT, recipient TEXT, domain TEXT, recipient_from TEXT,"
    "  status TEXT, smtp_code TEXT, diagnostic TEXT, category TEXT, feedback_type TEXT,"
    "  rule TEXT, final INTEGER NOT NULL DEFAULT 0,"
    "  reporting_mta TEXT, remote_mta TEXT, arrival_date TEXT, source_ip TEXT,"
    "  envid TEXT, job_id TEXT, source TEXT, message_id TEXT, original_message_id TEXT,"
    "  blocklist TEXT, family TEXT, note TEXT, mta_category TEXT"
    ");"
    "CREATE INDEX ledger_recipient ON ledger(recipient, evidence_time, id);"
    "CREATE INDEX ledger_fingerprint ON ledger(fingerprint);"
    "CREATE INDEX ledger_time ON ledger(evidence_time);"
    "CREATE TABLE suppressions ("
    "  address TEXT PRIMARY KEY,"
    "  domain TEXT NOT NULL,"
    "  reason TEXT,"
    "  source_kind TEXT NOT NULL,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  lifted INTEGER NOT NULL DEFAULT 0,"
    "  lift_reason TEXT,"
    "  lifted_at INTEGER"
    ");"
    "CREATE INDEX suppressions_domain ON suppressions(domain);",
    /* 1 -> 2: the fold state of each address (store.c derive()): a cache, starts empty */
    "CREATE TABLE derive_state ("
    "  address TEXT PRIMARY KEY,"
    "  last_time INTEGER NOT NULL,"
    "  last_id INTEGER NOT NULL,"
    "  policy TEXT NOT NULL,"
    "  suppressed INTEGER NOT NULL,"
    "  reason TEXT,"
    "  source_kind TEXT,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  lifted INTEGER NOT NULL,"
    "  lift_reason TEXT,"
    "  lifted_at INTEGER NOT NULL,"
    "  active_time INTEGER NOT NULL,"
    "  active_id INTEGER NOT NULL,"
    "  soft TEXT NOT NULL"
    ") WITHOUT ROWID;",
};
#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(N_MIGRATIONS == SCHEMA_VERSION, "one migration per schema version");

#define LEDGER_COLUMNS                                                                                                 \
    "id, kind, evidence_time, recorded_at, type, action, recipient, recipient_from, status, smtp_code, diagnostic, "   \
    "category, feedback_type, rule, final, reporting_mta, remote_mta, arrival_date, source_ip, envid, job_id, "        \
    "source, message_id, original_message_id, blocklist, family, note, fingerprint, domain, mta_category"

/* what derive() folds (store_backend.h ledger_fold) */
#define FOLD_COLUMNS "id, kind, evidence_time, type, action, category, feedback_type, note"

#define STATE_COLUMNS                                                                                                  \
    "address, last_time, last_id, policy, suppressed, reason, source_kind, first_seen, last_seen, count, lifted, "     \
    "lift_reason, lifted_at, active_time, active_id, soft"

#define SUPPRESSION_COLUMNS                                                                                            \
    "address, domain, reason, source_kind, first_seen, last_seen, count, lifted, lift_reason, lifted_at"

enum stmt_id {
    ST_SEEN,
    ST_MARK,
    ST_DROP_PLACEHOLDER,
    ST_LEDGER_INSERT,
    ST_LEDGER_FOR,
    ST_LEDGER_FOLD,
    ST_LEDGER_EVENTS,
    ST_LEDGER_RECLASSIFY,
    ST_SUPP_GET,
    ST_SUPP_PUT,
    ST_SUPP_DELETE,
    ST_SUPP_LIST,
    ST_STATS_TYPE,
    ST_STATS_CATEGORY,
    ST_STATS_ACTION,
    ST_STATS_DOMAIN,
    ST_STATS_DAY,
    ST_STATS_SUPPRESSED,
    ST_STATS_LIFTED,
    ST_STATE_GET,
    ST_STATE_PUT,
    ST_STATE_DELETE,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_SEEN] = "SELECT state FROM processed WHERE fingerprint = ?1",
    [ST_MARK] = "INSERT INTO processed (fingerprint, state, message_id, source, first_seen, updated) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?5) "
                "ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state, updated = excluded.updated",
    [ST_DROP_PLACEHOLDER] = "DELETE FROM ledger WHERE fingerprint = ?1 AND kind = 'event' AND type = 'unrecognized'",
    [ST_LEDGER_INSERT] =
        "INSERT INTO ledger (kind, evidence_time, recorded_at, type, action, recipient, domain, recipient_from, "
        "status, smtp_code, diagnostic, category, feedback_type, rule, final, reporting_mta, remote_mta, "
        "arrival_date, source_ip, envid, job_id, source, message_id, original_message_id, blocklist, family, note, "
        "fingerprint, mta_category) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?28, ?7, ?8, ?9, ?10, ?11, "
        "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?29)",
    [ST_LEDGER_FOR] = "SELECT " LEDGER_COLUMNS " FROM ledger WHERE recipient = ?1 ORDER BY evidence_time, id",
    /* the rows after a key: a range of index ledger_recipient */
    [ST_LEDGER_FOLD] = "SELECT " FOLD_COLUMNS " FROM ledger WHERE recipient = ?1 AND (evidence_time, id) > (?2, ?3) "
                       "ORDER BY evidence_time, id",
    [ST_LEDGER_EVENTS] = "SELECT " LEDGER_COLUMNS " FROM ledger WHERE kind = 'event' ORDER BY id",
    [ST_LEDGER_RECLASSIFY] = "UPDATE ledger SET category = ?2, rule = ?3, action = ?4, blocklist = ?5 WHERE id = ?1",
    [ST_SUPP_GET] = "SELECT " SUPPRESSION_COLUMNS " FROM suppressions WHERE address = ?1",
    [ST_SUPP_PUT] = "INSERT OR REPLACE INTO suppressions (" SUPPRESSION_COLUMNS ") "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_SUPP_DELETE] = "DELETE FROM suppressions WHERE address = ?1",
    [ST_SUPP_LIST] = "SELECT " SUPPRESSION_COLUMNS " FROM suppressions "
                     "WHERE (?5 OR lifted = 0) AND last_seen >= ?1 AND (?2 IS NULL OR source_kind = ?2) "
                     "AND (?3 IS NULL OR reason = ?3) AND (?4 IS NULL OR domain = ?4) ORDER BY address",
    [ST_STATS_TYPE] = "SELECT type, count(*) FROM ledger WHERE kind = 'event' AND evidence_time >= ?1 "
                      "GROUP BY 1 ORDER BY 2 DESC, 1",
    [ST_STATS_CATEGORY] = "SELECT CASE WHEN type = 'complaint' THEN 'complaint:' || coalesce(feedback_type, 'unknown') "
                          "ELSE category END AS c, count(*) FROM ledger WHERE kind = 'event' AND evidence_time >= ?1 "
                          "AND (category IS NOT NULL OR type = 'complaint') GROUP BY 1 ORDER BY 2 DESC, 1",
    [ST_STATS_ACTION] = "SELECT coalesce(action, 'none'), count(*) FROM ledger WHERE kind = 'event' "
                        "AND evidence_time >= ?1 GROUP BY 1 ORDER BY 2 DESC, 1",
    [ST_STATS_DOMAIN] = "SELECT domain, count(*) FROM ledger WHERE kind = 'event' AND evidence_time >= ?1 "
                        "AND domain IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
    [ST_STATS_DAY] = "SELECT strftime('%Y-%m-%d', evidence_time, 'unixepoch'), count(*) FROM ledger "
                     "WHERE kind = 'event' AND evidence_time >= ?1 GROUP BY 1 ORDER BY 1",
    [ST_STATS_SUPPRESSED] =
        "SELECT source_kind, count(*) FROM suppressions WHERE lifted = 0 GROUP BY 1 ORDER BY 2 DESC, 1",
    [ST_STATS_LIFTED] = "SELECT source_kind, count(*) FROM suppressions WHERE lifted = 1 GROUP BY 1 ORDER BY 2 DESC, 1",
    [ST_STATE_GET] = "SELECT " STATE_COLUMNS " FROM derive_state WHERE address = ?1",
    [ST_STATE_PUT] = "INSERT OR REPLACE INTO derive_state (" STATE_COLUMNS ") "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    [ST_STATE_DELETE] = "DELETE FROM derive_state WHERE address = ?1",
};

typedef struct sq {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    unsigned busy_timeout_ms;
    long long busy_started_ms;
    unsigned rng;
    int version;
    int in_tx;
    char error[512];
} sq;

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep a random 1..2^attempts ms (capped at 64 ms), at most @p max_ms. */
static void backoff_sleep(sq *q, int attempts, long long max_ms)
{
    unsigned cap = attempts < 6 ? 1u << attempts : 64u;
    q->rng = q->rng * 1103515245u + 12345u;
    long long ms = 1 + (long long)((q->rng >> 16) % cap);
    if (ms > max_ms)
        ms = max_ms;
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* SQLite calls this while another connection holds the lock: back off and try again, until
 * busy_timeout_ms have passed since the first call of this wait. */
static int busy_wait(void *user, int attempts)
{
    sq *q = user;
    long long now = monotonic_ms();
    if (attempts == 0)
        q->busy_started_ms = now;
    long long left = (long long)q->busy_timeout_ms - (now - q->busy_started_ms);
    if (left <= 0)
        return 0;
    backoff_sleep(q, attempts, left);
    return 1;
}

static bp_status map_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return BP_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return BP_ERR_BUSY;
    case SQLITE_NOMEM: return BP_ERR_NOMEM;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM: return BP_ERR_IO;
    default: return BP_ERR_STORE;
    }
}

static bp_status fail(sq *q, int rc, const char *what)
{
    snprintf(q->error, sizeof(q->error), "%s: %s", what, q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
    return map_error(rc);
}

static bp_status prepare(sq *q, enum stmt_id id, sqlite3_stmt **out)
{
    if (q->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(q->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &q->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return fail(q, rc, "prepare");
    }
    *out = q->stmts[id];
    return BP_OK;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s != NULL ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Run a statement that returns no rows (bindings already made); reset it either way. */
static bp_status step_done(sq *q, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    bp_status bs = rc == SQLITE_DONE ? BP_OK : fail(q, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return bs;
}

static bp_status exec(sq *q, const char *sql, const char *what)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? BP_OK : fail(q, rc, what);
}

/* The schema version, 0 for an empty database; -1 for a database that is not ours. */
static bp_status read_version(sq *q, int *version)
{
    sqlite3_stmt *st = NULL;
    bp_status bs = BP_OK;
    *version = 0;
    int rc = sqlite3_prepare_v2(q->db, "SELECT version FROM schema_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *version = sqlite3_column_int(st, 0);
        else if (rc != SQLITE_DONE)
            bs = fail(q, rc, "reading the schema version");
        goto out;
    }
    /* No schema_version table: an empty file is fine, anything else is not ours. */
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(q->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        bs = fail(q, rc, "reading the database");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        bs = fail(q, rc, "reading the database");
        goto out;
    }
    if (sqlite3_column_int(st, 0) > 0)
        *version = -1;
out:
    sqlite3_finalize(st);
    return bs;
}

static bp_status sq_begin(void *h);
static bp_status sq_commit(void *h);
static void sq_rollback(void *h);

/* Bring the schema to SCHEMA_VERSION, in one write transaction. */
static bp_status migrate(sq *q)
{
    bp_status bs = sq_begin(q);
    if (bs != BP_OK)
        return bs;
    int version = 0;
    bs = read_version(q, &version); /* again: another process may have migrated meanwhile */
    if (bs != BP_OK)
        goto out;
    if (version < 0) {
        snprintf(q->error, sizeof(q->error), "not a bouncepipe database (it has other tables)");
        bs = BP_ERR_STORE;
        goto out;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        bs = exec(q, migrations[v], "migrating the schema");
        if (bs != BP_OK)
            goto out;
    }
    if (version < SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof(sql), "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d);",
                 SCHEMA_VERSION);
        bs = exec(q, sql, "recording the schema version");
        if (bs != BP_OK)
            goto out;
    }
    bs = sq_commit(q);
    if (bs == BP_OK)
        q->version = SCHEMA_VERSION;
    return bs;
out:
    sq_rollback(q);
    return bs;
}

static bp_status set_wal(sq *q)
{
    sqlite3_stmt *st = NULL;
    bp_status bs = BP_OK;
    long long started = monotonic_ms();
    for (;;) {
        int rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(st, 0);
            if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
                snprintf(q->error, sizeof(q->error), "cannot switch the database to WAL mode");
                bs = BP_ERR_IO;
            }
            break;
        }
        sqlite3_finalize(st);
        st = NULL;
        /* switching needs the database to itself; the busy handler is not consulted here */
        long long left = (long long)q->busy_timeout_ms - (monotonic_ms() - started);
        if ((rc & 0xff) == SQLITE_BUSY && left > 0) {
            backoff_sleep(q, 3, left);
            continue;
        }
        bs = fail(q, rc, "setting WAL mode");
        break;
    }
    sqlite3_finalize(st);
    return bs;
}

static void sq_close(void *h)
{
    sq *q = h;
    if (q == NULL)
        return;
    if (q->in_tx)
        sq_rollback(q);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->stmts[i]);
    sqlite3_close(q->db);
    free(q);
}

static bp_status sq_open(const char *location, const bp_store_options *opts, void **handle, char **error)
{
    bp_status bs = BP_OK;
    sq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return BP_ERR_NOMEM;
    q->busy_timeout_ms = opts->busy_timeout_ms;
    q->rng = (unsigned)getpid() ^ (unsigned)monotonic_ms();
    int flags = SQLITE_OPEN_NOMUTEX;
    if (opts->read_only) {
        if (access(location, F_OK) != 0) {
            snprintf(q->error, sizeof(q->error), "%s: no such database", location);
            bs = BP_ERR_NOT_FOUND;
            goto out;
        }
        flags |= SQLITE_OPEN_READONLY;
    } else {
        /* Create it ourselves so that its mode is 0640 (SQLite would use 0644). */
        int fd = open(location, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            snprintf(q->error, sizeof(q->error), "%s: %s", location, strerror(errno));
            bs = errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO;
            goto out;
        }
        close(fd);
        flags |= SQLITE_OPEN_READWRITE;
    }
    int rc = sqlite3_open_v2(location, &q->db, flags, NULL);
    if (rc != SQLITE_OK) {
        bs = fail(q, rc, location);
        goto out;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_handler(q->db, busy_wait, q);
    bs = exec(q, "PRAGMA synchronous=FULL", "setting synchronous");
    if (bs != BP_OK)
        goto out;
    int version = 0;
    bs = read_version(q, &version);
    if (bs != BP_OK)
        goto out;
    if (version < 0) {
        snprintf(q->error, sizeof(q->error), "%s: not a bouncepipe database (it has other tables)", location);
        bs = BP_ERR_STORE;
        goto out;
    }
    if (version > SCHEMA_VERSION) {
        snprintf(q->error, sizeof(q->error), "%s: schema version %d is newer than this program's %d", location, version,
                 SCHEMA_VERSION);
        bs = BP_ERR_STORE;
        goto out;
    }
    q->version = version;
    if (version < SCHEMA_VERSION) {
        if (opts->read_only) {
            snprintf(q->error, sizeof(q->error), "%s: %s", location,
                     version == 0 ? "empty database" : "schema needs migrating (open it for writing once)");
            bs = version == 0 ? BP_ERR_NOT_FOUND : BP_ERR_STORE;
            goto out;
        }
        bs = set_wal(q);
        if (bs == BP_OK)
            bs = migrate(q);
        if (bs != BP_OK)
            goto out;
    }
    *handle = q;
    return BP_OK;
out:
    if (error != NULL)
        *error = strdup(q->error);
    sq_close(q);
    return bs;
}

static const char *sq_last_error(const void *h)
{
    const sq *q = h;
    return q->error[0] != '\0' ? q->error : "no error";
}

static int sq_schema_version(const void *h)
{
    return ((const sq *)h)->version;
}

static bp_status sq_begin(void *h)
{
    sq *q = h;
    if (q->in_tx) {
        snprintf(q->error, sizeof(q->error), "a transaction is already open");
        return BP_ERR_USAGE;
    }
    /* The busy handler waits inside one attempt; SQLite skips it in some lock states, so
     * retry the attempt itself until the same deadline. */
    long long started = monotonic_ms();
    for (unsigned attempt = 0;; attempt++) {
        int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            q->in_tx = 1;
            return BP_OK;
        }
        long long left = (long long)q->busy_timeout_ms - (monotonic_ms() - started);
        if ((rc & 0xff) != SQLITE_BUSY || left <= 0)
            return fail(q, rc, "starting a transaction");
        backoff_sleep(q, (int)(attempt < 6 ? attempt : 6), left);
    }
}

static bp_status sq_commit(void *h)
{
    sq *q = h;
    int rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        bp_status bs = fail(q, rc, "committing");
        sq_rollback(q);
        return bs;
    }
    q->in_tx = 0;
    return BP_OK;
}

static void sq_rollback(void *h)
{
    sq *q = h;
    if (sqlite3_get_autocommit(q->db) == 0)
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    q->in_tx = 0;
}

static bp_status sq_seen(void *h, const char *fingerprint, int *state)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_SEEN, &st);
    if (bs != BP_OK)
        return bs;
    *state = BP_SEEN_UNKNOWN;
    bind_text(st, 1, fingerprint);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *state = sqlite3_column_int(st, 0);
    else if (rc != SQLITE_DONE)
        bs = fail(q, rc, "looking up a fingerprint");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return bs;
}

static bp_status sq_mark(void *h, const bp_store_unit *unit, int state, long long now)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_MARK, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, unit->fingerprint);
    sqlite3_bind_int(st, 2, state);
    bind_text(st, 3, unit->message_id);
    bind_text(st, 4, unit->source);
    sqlite3_bind_int64(st, 5, now);
    return step_done(q, st, "recording a fingerprint");
}

static bp_status sq_drop_placeholder(void *h, const char *fingerprint)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_DROP_PLACEHOLDER, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, fingerprint);
    return step_done(q, st, "replacing an unrecognised message");
}

static bp_status sq_ledger_insert(void *h, const bp_ledger_row *r, long long *id)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_LEDGER_INSERT, &st);
    if (bs != BP_OK)
        return bs;
    const bp_event *e = &r->event;
    int is_event = strcmp(r->kind, BP_LEDGER_EVENT) == 0;
    bind_text(st, 1, r->kind);
    sqlite3_bind_int64(st, 2, r->evidence_time);
    sqlite3_bind_int64(st, 3, r->recorded_at);
    bind_text(st, 4, is_event ? bp_event_type_name(e->type) : NULL);
    bind_text(st, 5, is_event ? bp_action_name(e->action) : NULL);
    bind_text(st, 6, e->recipient);
    bind_text(st, 7, e->recipient_from);
    bind_text(st, 8, e->status);
    bind_text(st, 9, e->smtp_code);
    bind_text(st, 10, e->diagnostic);
    bind_text(st, 11, e->category);
    bind_text(st, 12, e->feedback_type);
    bind_text(st, 13, e->rule);
    sqlite3_bind_int(st, 14, e->final != 0);
    bind_text(st, 15, e->reporting_mta);
    bind_text(st, 16, e->remote_mta);
    bind_text(st, 17, e->arrival_date);
    bind_text(st, 18, e->source_ip);
    bind_text(st, 19, e->envid);
    bind_text(st, 20, e->job_id);
    bind_text(st, 21, e->source);
    bind_text(st, 22, e->message_id);
    bind_text(st, 23, e->original_message_id);
    bind_text(st, 24, e->blocklist);
    bind_text(st, 25, e->family);
    bind_text(st, 26, r->note);
    bind_text(st, 27, e->fingerprint);
    bind_text(st, 28, r->domain);
    bind_text(st, 29, r->mta_category);
    bs = step_done(q, st, "writing the ledger");
    *id = bs == BP_OK ? sqlite3_last_insert_rowid(q->db) : 0;
    return bs;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Iterate a ledger query whose columns are LEDGER_COLUMNS. */
static bp_status ledger_rows(sq *q, sqlite3_stmt *st, bp_ledger_cb cb, void *user)
{
    bp_status bs = BP_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bp_ledger_row r;
        memset(&r, 0, sizeof(r));
        r.id = sqlite3_column_int64(st, 0);
        r.kind = col_text(st, 1);
        r.evidence_time = sqlite3_column_int64(st, 2);
        r.recorded_at = sqlite3_column_int64(st, 3);
        bp_event *e = &r.event;
        const char *type = col_text(st, 4);
        int t = type != NULL ? bp_event_type_from_name(type) : -1;
        e->type = t >= 0 ? (bp_event_type)t : BP_EVENT_UNRECOGNIZED;
        e->action = col_text(st, 5) != NULL ? bp_action_from_name(col_text(st, 5)) : BP_ACT_NONE;
        e->recipient = col_text(st, 6);
        e->recipient_from = col_text(st, 7);
        e->status = col_text(st, 8);
        e->smtp_code = col_text(st, 9);
        e->diagnostic = col_text(st, 10);
        e->category = col_text(st, 11);
        e->feedback_type = col_text(st, 12);
        e->rule = col_text(st, 13);
        e->final = sqlite3_column_int(st, 14);
        e->reporting_mta = col_text(st, 15);
        e->remote_mta = col_text(st, 16);
        e->arrival_date = col_text(st, 17);
        e->source_ip = col_text(st, 18);
        e->envid = col_text(st, 19);
        e->job_id = col_text(st, 20);
        e->source = col_text(st, 21);
        e->message_id = col_text(st, 22);
        e->original_message_id = col_text(st, 23);
        e->blocklist = col_text(st, 24);
        e->family = col_text(st, 25);
        r.note = col_text(st, 26);
        e->fingerprint = col_text(st, 27);
        r.domain = col_text(st, 28);
        r.mta_category = col_text(st, 29);
        if (r.kind == NULL)
            r.kind = BP_LEDGER_EVENT;
        if (cb(user, &r) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        bs = fail(q, rc, "reading the ledger");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return bs;
}

static bp_status sq_ledger_for(void *h, const char *address, bp_ledger_cb cb, void *user)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_LEDGER_FOR, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, address);
    return ledger_rows(q, st, cb, user);
}

static bp_status sq_ledger_fold(void *h, const char *address, long long after_time, long long after_id, bp_ledger_cb cb,
                                void *user)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_LEDGER_FOLD, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, address);
    sqlite3_bind_int64(st, 2, after_time);
    sqlite3_bind_int64(st, 3, after_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bp_ledger_row r;
        memset(&r, 0, sizeof(r));
        r.id = sqlite3_column_int64(st, 0);
        r.kind = col_text(st, 1);
        r.evidence_time = sqlite3_column_int64(st, 2);
        const char *type = col_text(st, 3);
        int t = type != NULL ? bp_event_type_from_name(type) : -1;
        r.event.type = t >= 0 ? (bp_event_type)t : BP_EVENT_UNRECOGNIZED;
        r.event.action = col_text(st, 4) != NULL ? bp_action_from_name(col_text(st, 4)) : BP_ACT_NONE;
        r.event.category = col_text(st, 5);
        r.event.feedback_type = col_text(st, 6);
        r.note = col_text(st, 7);
        r.event.recipient = address;
        if (r.kind == NULL)
            r.kind = BP_LEDGER_EVENT;
        if (cb(user, &r) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    bs = rc == SQLITE_DONE ? BP_OK : fail(q, rc, "reading the ledger");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return bs;
}

static bp_status sq_ledger_events(void *h, bp_ledger_cb cb, void *user)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_LEDGER_EVENTS, &st);
    if (bs != BP_OK)
        return bs;
    return ledger_rows(q, st, cb, user);
}

static bp_status sq_ledger_reclassify(void *h, long long id, const char *category, const char *rule, bp_action action,
                                      const char *blocklist)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_LEDGER_RECLASSIFY, &st);
    if (bs != BP_OK)
        return bs;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, category);
    bind_text(st, 3, rule);
    bind_text(st, 4, bp_action_name(action));
    bind_text(st, 5, blocklist);
    return step_done(q, st, "updating the ledger");
}

static bp_status suppression_rows(sq *q, sqlite3_stmt *st, bp_suppression_cb cb, void *user, int *n)
{
    bp_status bs = BP_OK;
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bp_suppression r;
        r.address = col_text(st, 0);
        r.domain = col_text(st, 1);
        r.reason = col_text(st, 2);
        r.source_kind = col_text(st, 3);
        r.first_seen = sqlite3_column_int64(st, 4);
        r.last_seen = sqlite3_column_int64(st, 5);
        r.count = sqlite3_column_int64(st, 6);
        r.lifted = sqlite3_column_int(st, 7);
        r.lift_reason = col_text(st, 8);
        r.lifted_at = sqlite3_column_int64(st, 9);
        (*n)++;
        if (cb(user, &r) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        bs = fail(q, rc, "reading the suppression list");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return bs;
}

static bp_status sq_suppression_get(void *h, const char *address, bp_suppression_cb cb, void *user)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    int n = 0;
    bp_status bs = prepare(q, ST_SUPP_GET, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, address);
    bs = suppression_rows(q, st, cb, user, &n);
    return bs == BP_OK && n == 0 ? BP_ERR_NOT_FOUND : bs;
}

static bp_status sq_suppression_put(void *h, const bp_suppression *r)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_SUPP_PUT, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, r->address);
    bind_text(st, 2, r->domain);
    bind_text(st, 3, r->reason);
    bind_text(st, 4, r->source_kind);
    sqlite3_bind_int64(st, 5, r->first_seen);
    sqlite3_bind_int64(st, 6, r->last_seen);
    sqlite3_bind_int64(st, 7, r->count);
    sqlite3_bind_int(st, 8, r->lifted != 0);
    bind_text(st, 9, r->lift_reason);
    if (r->lifted_at != 0)
        sqlite3_bind_int64(st, 10, r->lifted_at);
    else
        sqlite3_bind_null(st, 10);
    return step_done(q, st, "writing the suppression list");
}

static bp_status sq_suppression_delete(void *h, const char *address)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_SUPP_DELETE, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, address);
    return step_done(q, st, "writing the suppression list");
}

static bp_status sq_suppression_list(void *h, const bp_store_filter *f, bp_suppression_cb cb, void *user)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    int n = 0;
    bp_status bs = prepare(q, ST_SUPP_LIST, &st);
    if (bs != BP_OK)
        return bs;
    sqlite3_bind_int64(st, 1, f->since);
    bind_text(st, 2, f->type);
    bind_text(st, 3, f->category);
    bind_text(st, 4, f->domain);
    sqlite3_bind_int(st, 5, f->include_lifted != 0);
    return suppression_rows(q, st, cb, user, &n);
}

static bp_status sq_stats(void *h, const bp_store_filter *f, bp_stats_cb cb, void *user)
{
    sq *q = h;
    static const struct {
        enum stmt_id id;
        bp_stats_dim dim;
        int uses_since;
    } queries[] = {
        {ST_STATS_TYPE, BP_STATS_TYPE, 1},     {ST_STATS_CATEGORY, BP_STATS_CATEGORY, 1},
        {ST_STATS_ACTION, BP_STATS_ACTION, 1}, {ST_STATS_DOMAIN, BP_STATS_DOMAIN, 1},
        {ST_STATS_DAY, BP_STATS_DAY, 1},       {ST_STATS_SUPPRESSED, BP_STATS_SUPPRESSED, 0},
        {ST_STATS_LIFTED, BP_STATS_LIFTED, 0},
    };
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        sqlite3_stmt *st = NULL;
        bp_status bs = prepare(q, queries[i].id, &st);
        if (bs != BP_OK)
            return bs;
        if (queries[i].uses_since)
            sqlite3_bind_int64(st, 1, f->since);
        int rc, stop = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *key = col_text(st, 0);
            if (cb(user, queries[i].dim, key != NULL ? key : "unknown", sqlite3_column_int64(st, 1)) != 0) {
                stop = 1;
                rc = SQLITE_DONE;
                break;
            }
        }
        bs = rc == SQLITE_DONE ? BP_OK : fail(q, rc, "counting");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (bs != BP_OK || stop)
            return bs;
    }
    return BP_OK;
}

static bp_status sq_state_get(void *h, const char *address, bp_fold_state_cb cb, void *user)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_STATE_GET, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, address);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bp_fold_state s = {
            .address = col_text(st, 0),
            .last_time = sqlite3_column_int64(st, 1),
            .last_id = sqlite3_column_int64(st, 2),
            .policy = col_text(st, 3),
            .suppressed = sqlite3_column_int(st, 4),
            .reason = col_text(st, 5),
            .source_kind = col_text(st, 6),
            .first_seen = sqlite3_column_int64(st, 7),
            .last_seen = sqlite3_column_int64(st, 8),
            .count = sqlite3_column_int64(st, 9),
            .lifted = sqlite3_column_int(st, 10),
            .lift_reason = col_text(st, 11),
            .lifted_at = sqlite3_column_int64(st, 12),
            .active_time = sqlite3_column_int64(st, 13),
            .active_id = sqlite3_column_int64(st, 14),
            .soft = col_text(st, 15),
        };
        cb(user, &s);
    } else if (rc == SQLITE_DONE) {
        bs = BP_ERR_NOT_FOUND;
    } else {
        bs = fail(q, rc, "reading the fold state");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return bs;
}

static bp_status sq_state_put(void *h, const bp_fold_state *s)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_STATE_PUT, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, s->address);
    sqlite3_bind_int64(st, 2, s->last_time);
    sqlite3_bind_int64(st, 3, s->last_id);
    bind_text(st, 4, s->policy);
    sqlite3_bind_int(st, 5, s->suppressed != 0);
    bind_text(st, 6, s->reason);
    bind_text(st, 7, s->source_kind);
    sqlite3_bind_int64(st, 8, s->first_seen);
    sqlite3_bind_int64(st, 9, s->last_seen);
    sqlite3_bind_int64(st, 10, s->count);
    sqlite3_bind_int(st, 11, s->lifted != 0);
    bind_text(st, 12, s->lift_reason);
    sqlite3_bind_int64(st, 13, s->lifted_at);
    sqlite3_bind_int64(st, 14, s->active_time);
    sqlite3_bind_int64(st, 15, s->active_id);
    bind_text(st, 16, s->soft != NULL ? s->soft : "");
    return step_done(q, st, "writing the fold state");
}

static bp_status sq_state_delete(void *h, const char *address)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    bp_status bs = prepare(q, ST_STATE_DELETE, &st);
    if (bs != BP_OK)
        return bs;
    bind_text(st, 1, address);
    return step_done(q, st, "writing the fold state");
}

const bp_store_backend bp_store_backend_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .last_error = sq_last_error,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .seen = sq_seen,
    .mark = sq_mark,
    .drop_placeholder = sq_drop_placeholder,
    .ledger_insert = sq_ledger_insert,
    .ledger_for = sq_ledger_for,
    .ledger_fold = sq_ledger_fold,
    .ledger_events = sq_ledger_events,
    .ledger_reclassify = sq_ledger_reclassify,
    .suppression_get = sq_suppression_get,
    .suppression_put = sq_suppression_put,
    .suppression_delete = sq_suppression_delete,
    .suppression_list = sq_suppression_list,
    .stats = sq_stats,
    .state_get = sq_state_get,
    .state_put = sq_state_put,
    .state_delete = sq_state_delete,
};
