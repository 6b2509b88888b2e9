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
 * - The file, its -wal and the path (docs/store.md, "Moving, replacing"): a writer uses the
 *   -wal only while no writer of another file does (bp_wal_join: a lock held from before
 *   SQLite opens the -wal until it closed it, taken for the file SQLite really opened, checked
 *   right after sqlite3_open_v2), commits only while the path names the file it opened
 *   (checked after the lock is taken, before COMMIT and after it), marks each commit with the
 *   file it was made through (sqlite_wal.h) and never uses a -wal another file's commits are
 *   in.  A writer that finds its file moved checkpoints into it (FULL: the last one to let go
 *   leaves every frame in the file) and lets go of it; its next transaction opens whatever the
 *   path names then.  Readers check the -wal once, when they open.
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

#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"
#include "dmarc_sql.h"
#include "signals_sql.h"
#include "sql.h"
#include "sqlite_wal.h"

/* Opens again after a -shm deleted under us (sq_open): each race needs another connection to
 * let go of the store at that very moment, so a few are plenty. */
#define SHM_RACE_RETRIES 8
#define SCHEMA_VERSION   BP_STORE_SCHEMA_VERSION

typedef struct sq sq;
static bp_status migrate_identity(void *h);
static bp_status sq_run(void *h, bp_sql_call *call);

/* BP_STORE_SCHEMA_IDENTITY (3 -> 4), one self-contained step: this SQL, then
 * migrate_identity().  An address's identity is its case folding, and a failure reported
 * through two channels is one (docs/store.md "Identity", "Two channels"); the keys are filled
 * in, the spellings merged and derived again by migrate_identity().  The fold state's column
 * is renamed, so that a writer of an older program still running fails instead of deriving
 * by spelling. */
static const char migrate_identity_sql[] = "ALTER TABLE ledger ADD COLUMN address_key TEXT;"
                                           "ALTER TABLE ledger ADD COLUMN paired_with INTEGER;"
                                           "ALTER TABLE suppressions ADD COLUMN address_key TEXT;"
                                           "ALTER TABLE derive_state RENAME COLUMN address TO address_key;";

/* Migrations: entry i brings the schema from version i to i+1 (and migration_code[i] runs
 * after it).  Never edit a shipped entry; append a new one (and document it in
 * docs/store.md). */
static const char *const migrations[SCHEMA_VERSION] = {
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
    /* 2 -> 3: a message's facts once, in its processed row (sql.h BP_SQL_MIGRATE_FACTS) */
    "ALTER TABLE processed ADD COLUMN original_message_id TEXT;"
    "ALTER TABLE processed ADD COLUMN reporting_mta TEXT;"
    "ALTER TABLE processed ADD COLUMN envid TEXT;"
    "ALTER TABLE processed ADD COLUMN arrival_date TEXT;" BP_SQL_MIGRATE_FACTS,
    /* 3 -> 4: where acct --follow stopped reading each stream (bp_acct_position) */
    "CREATE TABLE acct_position ("
    "  stream TEXT PRIMARY KEY,"
    "  file TEXT NOT NULL,"
    "  inode INTEGER NOT NULL,"
    "  byte_offset INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    [BP_STORE_SCHEMA_IDENTITY - 1] = migrate_identity_sql,
    /* the webhook outbox, one row per (event, endpoint) (docs/webhooks.md) */
    [BP_STORE_SCHEMA_OUTBOX - 1] =
        "CREATE TABLE outbox ("
        "  id INTEGER PRIMARY KEY,"
        "  ledger_id INTEGER NOT NULL REFERENCES ledger(id),"
        "  endpoint TEXT NOT NULL,"
        "  event_key TEXT NOT NULL,"
        "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  created_at INTEGER NOT NULL,"
        "  next_at INTEGER NOT NULL,"
        "  lease_owner TEXT,"
        "  lease_until INTEGER NOT NULL DEFAULT 0,"
        "  delivered_at INTEGER,"
        "  last_error TEXT,"
        "  UNIQUE (endpoint, event_key)"
        ");"
        "CREATE INDEX outbox_due ON outbox (endpoint, next_at) WHERE state = 'pending';"
        "CREATE INDEX outbox_ledger ON outbox (ledger_id);",
    /* BP_STORE_SCHEMA_DMARC: DMARC aggregate reports and failure-report domains (dmarc_sql.h),
     * one self-contained step */
    [BP_STORE_SCHEMA_DMARC - 1] = BP_DMARC_SCHEMA_SQLITE,
    /* events' signal fields, signal counts, accounting watermarks, alerts (signals_sql.h) */
    [BP_STORE_SCHEMA_SIGNALS - 1] = BP_SIGNALS_SCHEMA_SQLITE,
};
/* Code a migration runs after its SQL, in its transaction (NULL: none). */
static bp_status (*const migration_code[SCHEMA_VERSION])(void *h) = {[BP_STORE_SCHEMA_IDENTITY - 1] = migrate_identity};

typedef struct sq {
    bp_backend_head head; /* first: store.c reads it (store_backend.h) */
    sqlite3 *db;          /* NULL after a writer let go of a moved file (the next begin opens the path) */
    sqlite3_stmt *stmts[BP_SQL_COUNT];
    struct {
        const bp_sql_stmt *key; /* an extension's statement (sql.h), prepared */
        sqlite3_stmt *st;
    } ext[BP_SQL_STMT_CACHE];
    sqlite3_stmt *marks_get[2]; /* the marks of the last commit (page 1) */
    sqlite3_stmt *marks_put[2]; /* user_version, application_id := this file's, this -wal's */
    int32_t marks_put_for[2];   /* the values marks_put[] were prepared with */
    int32_t wal_mark;           /* this transaction's -wal's mark (check_wal at begin) */
    sqlite3_int64 changes;      /* sqlite3_total_changes64() at begin */
    unsigned busy_timeout_ms;
    long long busy_started_ms;
    unsigned rng;
    int read_only;
    int in_tx;
    char *path;     /* the location */
    char *wal_path; /* its -wal */
    dev_t dev;      /* the file a writer opened: device and inode */
    ino_t ino;
    int32_t mark;  /* bp_wal_file_mark() of the file */
    int wal;       /* the connection is in WAL mode */
    int moved;     /* the path no longer names the file (or its -wal): checkpoint it when letting go */
    int foreign;   /* its -wal holds another file's commits: never checkpoint it into this one */
    int shm_raced; /* connect(): the -shm was deleted and made again while it opened (shm_joined) */
    int shm_fd;    /* a writer's lock in the -shm for its file (bp_wal_join), -1: none */
} sq;

/* Sleep a random 1..2^attempts ms (capped at 64 ms), at most @p max_ms. */
static void backoff_sleep(sq *q, int attempts, long long max_ms)
{
    long long ms = bp_backoff_ms(&q->rng, (unsigned)attempts, 1, 64);
    bp_sleep_ms(ms < max_ms ? ms : max_ms);
}

/* SQLite calls this while another connection holds the lock: back off and try again, until
 * busy_timeout_ms have passed since the first call of this wait. */
static int busy_wait(void *user, int attempts)
{
    sq *q = user;
    long long now = bp_monotonic_ms();
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
    snprintf(q->head.error, sizeof(q->head.error), "%s: %s", what,
             q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
    return map_error(rc);
}

static bp_status connect(sq *q);

static bp_status prepare(sq *q, bp_sql_id id, sqlite3_stmt **out)
{
    if (q->db == NULL) { /* it let go of a moved file: open what the path names now */
        bp_status bs = connect(q);
        if (bs != BP_OK)
            return bs;
    }
    if (q->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(q->db, bp_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &q->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return fail(q, rc, "prepare");
    }
    *out = q->stmts[id];
    return BP_OK;
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

/* The schema version, 0 for an empty database; -1 for a database that is not ours; then
 * judged for a reader or a writer (bp_sql_schema_check()). */
static bp_status read_schema(sq *q, int read_only, int *version)
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
    if ((rc & 0xff) != SQLITE_ERROR) { /* out of memory, I/O, busy: not an answer about the tables */
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
    return bs == BP_OK ? bp_sql_schema_check(&q->head, q->path, *version, read_only) : bs;
}

static bp_status sq_begin(void *h);
static bp_status sq_commit(void *h);
static void sq_rollback(void *h);

/* ---- the file, its -wal and the path (sqlite_wal.h; docs/store.md "Moving, replacing") --- */

/* SQLite's handle of the -wal; NULL when none is open (not WAL, or before the first read). */
static sqlite3_file *wal_file(sq *q)
{
    sqlite3_file *f = NULL;
    if (!q->wal || sqlite3_file_control(q->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK)
        return NULL;
    return f != NULL && f->pMethods != NULL ? f : NULL;
}

/* Does the path no longer name the file this writer opened (device and inode, and SQLite's
 * own SQLITE_FCNTL_HAS_MOVED), or the -wal path no longer its -wal? */
static int has_moved(sq *q)
{
    struct stat sb;
    int moved = 0;
    if (lstat(q->path, &sb) != 0 || sb.st_dev != q->dev || sb.st_ino != q->ino)
        return 1;
    if (sqlite3_file_control(q->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved)
        return 1;
    sqlite3_file *w = wal_file(q);
    return w != NULL && w->pMethods->xFileControl(w, SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved;
}

static bp_status moved_error(sq *q)
{
    q->moved = 1;
    snprintf(q->head.error, sizeof(q->head.error),
             "%s was moved or replaced while in use: nothing written (the path names another file now; the next "
             "transaction opens it)",
             q->path);
    return BP_ERR_IO;
}

static int wal_read(void *ctx, unsigned char *buf, size_t n, long long offset)
{
    sqlite3_file *w = ctx;
    return w->pMethods->xRead(w, buf, (int)n, offset) == SQLITE_OK ? 0 : -1;
}

/* The marks of the last commit: user_version and application_id of page 1 as this
 * transaction sees it (its first read: it opens the -wal).  Two plain PRAGMAs: preparing
 * one SELECT of the pragma_* table functions costs ten times as much (a pipe prepares it). */
static bp_status read_marks(sq *q, int32_t *mark, int32_t *wal_mark)
{
    static const char *const sql[2] = {"PRAGMA user_version", "PRAGMA application_id"};
    int32_t *out[2] = {mark, wal_mark};
    for (int i = 0; i < 2; i++) {
        int rc = SQLITE_OK;
        if (q->marks_get[i] == NULL)
            rc = sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->marks_get[i], NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(q->marks_get[i]);
        if (rc == SQLITE_ROW) {
            *out[i] = sqlite3_column_int(q->marks_get[i], 0);
            rc = SQLITE_OK;
        }
        if (q->marks_get[i] != NULL)
            sqlite3_reset(q->marks_get[i]);
        if (rc != SQLITE_OK)
            return fail(q, rc, "reading the database header");
    }
    return BP_OK;
}

/* Inside a transaction: may this connection use the -wal it has open?  Not when its last
 * commit was made by bouncepipe through another database file into this -wal file
 * (bp_wal_is_foreign): then it is refused, and never checkpointed into this file.
 * @param wal_mark receives the mark of this -wal (0: none open) */
static bp_status check_wal(sq *q, int32_t *wal_mark)
{
    int32_t mark = 0, last_wal_mark = 0;
    sqlite3_int64 size = 0;
    struct stat sb;
    bp_wal_view v;
    *wal_mark = 0;
    bp_status bs = read_marks(q, &mark, &last_wal_mark);
    sqlite3_file *w = wal_file(q);
    if (bs != BP_OK || w == NULL || bp_wal_file_mark(-1, q->wal_path, wal_mark, &sb) != 0)
        return bs;
    if (w->pMethods->xFileSize(w, &size) != SQLITE_OK || bp_wal_inspect(wal_read, w, size, 0, &v) != 0) {
        snprintf(q->head.error, sizeof(q->head.error), "%s: cannot read", q->wal_path);
        return BP_ERR_IO;
    }
    if (!v.frames || !bp_wal_is_foreign(mark, last_wal_mark, q->mark, *wal_mark))
        return BP_OK;
    q->foreign = 1;
    sqlite3_db_config(q->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    snprintf(q->head.error, sizeof(q->head.error),
             "%s holds commits made through another file (%s was moved or replaced while in use): not used until "
             "that file's writers have finished",
             q->wal_path, q->path);
    return BP_ERR_IO;
}

/* Mark this transaction's commit with this file and this -wal (page 1 is then written by
 * every commit that writes anything, so that a -wal's first and last commits always say
 * whose they are). */
static bp_status put_marks(sq *q, int32_t wal_mark)
{
    static const char *const names[2] = {"user_version", "application_id"};
    const int32_t want[2] = {q->mark, wal_mark};
    for (int i = 0; i < 2 && wal_mark != 0; i++) {
        if (q->marks_put[i] == NULL || q->marks_put_for[i] != want[i]) {
            char sql[64];
            sqlite3_finalize(q->marks_put[i]);
            q->marks_put[i] = NULL;
            snprintf(sql, sizeof(sql), "PRAGMA %s = %d", names[i], (int)want[i]);
            int rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->marks_put[i], NULL);
            if (rc != SQLITE_OK)
                return fail(q, rc, "marking the commit");
            q->marks_put_for[i] = want[i];
        }
        bp_status bs = step_done(q, q->marks_put[i], "marking the commit");
        if (bs != BP_OK)
            return bs;
    }
    return BP_OK;
}

/* Let go of the connection.  A writer whose file was moved copies what it committed into the
 * file (wherever it is now: SQLite does not checkpoint at close once the file moved), unless
 * the -wal was another file's.  The next transaction opens the path again. */
static void disconnect(sq *q)
{
    if (q->db == NULL)
        return;
    if (q->in_tx)
        sq_rollback(q);
    for (int i = 0; i < BP_SQL_COUNT; i++) {
        sqlite3_finalize(q->stmts[i]);
        q->stmts[i] = NULL;
    }
    for (int i = 0; i < BP_SQL_STMT_CACHE; i++) {
        sqlite3_finalize(q->ext[i].st);
        q->ext[i].st = NULL;
        q->ext[i].key = NULL;
    }
    for (int i = 0; i < 2; i++) {
        sqlite3_finalize(q->marks_get[i]);
        q->marks_get[i] = NULL;
        sqlite3_finalize(q->marks_put[i]);
        q->marks_put[i] = NULL;
    }
    if (!q->read_only && !q->moved && !q->foreign)
        q->moved = has_moved(q);
    /* FULL, not PASSIVE: it waits (busy handler) for the other writers of the moved file, which
     * are letting go of it too, so that the last of them leaves every frame in the file; the
     * writers of the file now at the path wait for that (bp_wal_join, bp_wal_preopen). */
    if (q->moved && !q->foreign)
        sqlite3_wal_checkpoint_v2(q->db, "main", SQLITE_CHECKPOINT_FULL, NULL, NULL);
    if (q->foreign)
        sqlite3_db_config(q->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_close(q->db);
    q->db = NULL;
    bp_wal_leave(&q->shm_fd); /* after SQLite closed the -shm: see bp_wal_join() */
}

/* Runs a migration step's SQL (bp_sql_schema). */
static bp_status exec_step(void *h, const char *sql, const char *what)
{
    return exec(h, sql, what);
}

static const bp_sql_schema schema = {migrations, migration_code, exec_step, sq_run};

static bp_status migrate(sq *q)
{
    bp_status bs = sq_begin(q);
    if (bs != BP_OK)
        return bs;
    int version = 0;
    bs = read_schema(q, 0, &version); /* again: another process may have migrated meanwhile */
    if (bs == BP_OK)
        bs = bp_sql_schema_migrate(q, &schema, version);
    if (bs != BP_OK)
        goto out;
    bs = sq_commit(q);
    if (bs == BP_OK)
        q->head.version = SCHEMA_VERSION;
    return bs;
out:
    sq_rollback(q);
    return bs;
}

static bp_status set_wal(sq *q)
{
    sqlite3_stmt *st = NULL;
    bp_status bs = BP_OK;
    long long started = bp_monotonic_ms();
    for (;;) {
        int rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(st, 0);
            if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
                snprintf(q->head.error, sizeof(q->head.error), "cannot switch the database to WAL mode");
                bs = BP_ERR_IO;
            }
            break;
        }
        sqlite3_finalize(st);
        st = NULL;
        /* switching needs the database to itself; the busy handler is not consulted here */
        long long left = (long long)q->busy_timeout_ms - (bp_monotonic_ms() - started);
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

/* Is the database in WAL mode (a reader's question: writers set it)? */
static int journal_is_wal(sq *q)
{
    sqlite3_stmt *st = NULL;
    int wal = 0;
    if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
    }
    sqlite3_finalize(st);
    return wal;
}

/* A writer, just after sqlite3_open_v2(): is the file SQLite opened the one @p sb describes,
 * the one this connection's marks and lock are of?  The path names it before and after
 * SQLite's own look (SQLITE_FCNTL_HAS_MOVED compares the path with the file it opened). */
static bp_status opened_same(sq *q, struct stat *sb)
{
    struct stat before, after;
    int moved = 1;
    if (lstat(q->path, &before) == 0 &&
        sqlite3_file_control(q->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && !moved &&
        lstat(q->path, &after) == 0 && before.st_dev == sb->st_dev && before.st_ino == sb->st_ino &&
        after.st_dev == sb->st_dev && after.st_ino == sb->st_ino) {
        *sb = after; /* its size now: bp_wal_preopen() asks whether it is empty */
        return BP_OK;
    }
    snprintf(q->head.error, sizeof(q->head.error), "%s was moved or replaced while being opened: not opened", q->path);
    return BP_ERR_IO;
}

/* A writer, once SQLite opened the -shm: is it the one bp_wal_join() holds the lock on?  (A
 * connection letting go of the store may have deleted it in between: SQLite then made another,
 * which no lock of ours guards.) */
static bp_status shm_joined(sq *q)
{
    if (q->read_only || bp_wal_joined_current(q->path, q->shm_fd))
        return BP_OK;
    q->foreign = 1; /* not guarded: never checkpoint through it */
    q->shm_raced = 1;
    snprintf(q->head.error, sizeof(q->head.error), "%s-shm was replaced while being opened: not used", q->path);
    return BP_ERR_IO;
}

/* Open the path: the file (a writer creates it, 0640, never through a symbolic link, and
 * first looks at a -wal beside it: bp_wal_preopen), WAL mode, the -wal check, the schema. */
static bp_status connect(sq *q)
{
    bp_status bs = BP_OK;
    struct stat sb;
    int flags = SQLITE_OPEN_NOMUTEX;
    q->moved = q->foreign = q->wal = 0;
    if (q->read_only) {
        if (bp_wal_file_mark(-1, q->path, &q->mark, &sb) != 0) {
            snprintf(q->head.error, sizeof(q->head.error), "%s: no such database", q->path);
            return BP_ERR_NOT_FOUND;
        }
        flags |= SQLITE_OPEN_READONLY;
    } else {
        /* Create it ourselves so that its mode is 0640 (SQLite would use 0644), never
         * through a symbolic link (a dangling one would make us create the target). */
        int fd = open(q->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0) {
            if (errno == ELOOP)
                snprintf(q->head.error, sizeof(q->head.error),
                         "%s: is a symbolic link: a store is not opened through one", q->path);
            else
                snprintf(q->head.error, sizeof(q->head.error), "%s: %s", q->path, strerror(errno));
            return errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO;
        }
        int got = bp_wal_file_mark(fd, NULL, &q->mark, &sb);
        close(fd);
        if (got != 0) {
            snprintf(q->head.error, sizeof(q->head.error), "%s: %s", q->path, strerror(errno));
            return BP_ERR_IO;
        }
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW;
    }
    q->dev = sb.st_dev;
    q->ino = sb.st_ino;
    int rc = sqlite3_open_v2(q->path, &q->db, flags, NULL);
    if (rc != SQLITE_OK) {
        bs = fail(q, rc, q->path);
        goto out;
    }
    if (!q->read_only) {
        /* SQLite opened the path again: the file it opened must be the one looked at above
         * (a rename between the two would have it judge and mark another file's commits as
         * its own).  It has read no page yet, so letting go costs nothing. */
        bs = opened_same(q, &sb);
        if (bs == BP_OK)
            bs = bp_wal_join(q->path, &sb, q->mark, &q->shm_fd, q->head.error, sizeof(q->head.error));
        if (bs == BP_OK)
            bs = bp_wal_preopen(q->path, q->shm_fd, sb.st_size == 0, q->mark, q->head.error, sizeof(q->head.error));
        if (bs != BP_OK) {
            q->foreign = 1; /* nothing of the -wal is read: never checkpoint through it */
            goto out;
        }
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_handler(q->db, busy_wait, q);
    bs = exec(q, "PRAGMA synchronous=FULL", "setting synchronous");
    if (bs != BP_OK)
        goto out;
    q->wal = journal_is_wal(q);
    /* Before reading a table: is the -wal this file's? */
    int32_t wal_mark = 0;
    bs = exec(q, "BEGIN", "reading the database");
    if (bs == BP_OK) {
        bs = check_wal(q, &wal_mark);
        if (bs == BP_OK)
            bs = shm_joined(q);
        rc = sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        if (bs == BP_OK && rc != SQLITE_OK && sqlite3_get_autocommit(q->db) == 0)
            bs = fail(q, rc, "reading the database"); /* still in that transaction: let go (out:) */
    }
    if (bs != BP_OK)
        goto out;
    int version = 0;
    bs = read_schema(q, q->read_only, &version);
    if (bs != BP_OK)
        goto out;
    if (!q->read_only && !q->wal) { /* a new store, or one restored from a rollback-mode copy */
        bs = set_wal(q);
        if (bs != BP_OK)
            goto out;
        q->wal = 1;
        bs = shm_joined(q);
        if (bs != BP_OK)
            goto out;
    }
    if (version < SCHEMA_VERSION)
        bs = migrate(q);
out:
    if (bs != BP_OK)
        disconnect(q);
    return bs;
}

static void sq_close(void *h)
{
    sq *q = h;
    if (q == NULL)
        return;
    disconnect(q);
    free(q->path);
    free(q->wal_path);
    free(q);
}

static bp_status sq_open(const char *location, const bp_store_options *opts, const bp_store_hooks *hooks, void **handle)
{
    bp_status bs = BP_OK;
    sq *q = bp_calloc(1, sizeof(*q));
    if (q == NULL)
        return BP_ERR_NOMEM;
    q->head.hooks = *hooks;
    q->busy_timeout_ms = opts->busy_timeout_ms;
    q->rng = bp_backoff_seed();
    q->shm_fd = -1;
    q->read_only = opts->read_only != 0;
    size_t n = strlen(location);
    q->path = bp_strdup(location);
    q->wal_path = bp_malloc(n + sizeof("-wal"));
    if (q->path == NULL || q->wal_path == NULL) {
        bs = BP_ERR_NOMEM;
        snprintf(q->head.error, sizeof(q->head.error), "out of memory");
        goto out;
    }
    memcpy(q->wal_path, location, n);
    memcpy(q->wal_path + n, "-wal", sizeof("-wal"));
    /* The last connection letting go of the store deletes its -shm (SQLite does), and may do
     * so while this one opens it: shm_joined() then finds a -shm that no lock of ours guards.
     * Nothing was read through it; a reader closing (lookup, stats, an operator's sqlite3)
     * is all it takes, so open again rather than defer. */
    for (int tries = 0;; tries++) {
        q->shm_raced = 0;
        bs = connect(q);
        if (bs == BP_OK || !q->shm_raced || tries == SHM_RACE_RETRIES)
            break;
    }
out:
    *handle = q;
    return bs;
}

static bp_status sq_begin(void *h)
{
    sq *q = h;
    if (q->in_tx) {
        snprintf(q->head.error, sizeof(q->head.error), "a transaction is already open");
        return BP_ERR_USAGE;
    }
    if (q->db == NULL) { /* it let go of a moved file: open what the path names now */
        bp_status bs = connect(q);
        if (bs != BP_OK)
            return bs;
    }
    /* The busy handler waits inside one attempt; SQLite skips it in some lock states, so
     * retry the attempt itself until the same deadline. */
    long long started = bp_monotonic_ms();
    for (unsigned attempt = 0;; attempt++) {
        int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            /* The write lock is ours: is the path still this file, the -wal this file's? */
            q->in_tx = 1;
            q->changes = sqlite3_total_changes64(q->db);
            bp_status bs = has_moved(q) ? moved_error(q) : shm_joined(q);
            if (bs == BP_OK)
                bs = check_wal(q, &q->wal_mark);
            if (bs != BP_OK) {
                sq_rollback(q);
                if (q->moved || q->foreign)
                    disconnect(q);
            }
            return bs;
        }
        long long left = (long long)q->busy_timeout_ms - (bp_monotonic_ms() - started);
        if ((rc & 0xff) != SQLITE_BUSY || left <= 0)
            return fail(q, rc, "starting a transaction");
        backoff_sleep(q, (int)(attempt < 6 ? attempt : 6), left);
    }
}

static bp_status sq_commit(void *h)
{
    sq *q = h;
    bp_status bs = BP_OK;
    if (q->db == NULL || !q->in_tx) {
        snprintf(q->head.error, sizeof(q->head.error), "no transaction is open");
        return BP_ERR_USAGE;
    }
    if (has_moved(q)) { /* again: the file may have gone since begin */
        bs = moved_error(q);
        disconnect(q);
        return bs;
    }
    if (sqlite3_total_changes64(q->db) != q->changes) { /* it writes: mark the commit */
        bs = put_marks(q, q->wal_mark);
        if (bs != BP_OK) {
            sq_rollback(q);
            return bs;
        }
    }
    int rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        bs = fail(q, rc, "committing");
        sq_rollback(q);
        return bs;
    }
    q->in_tx = 0;
    if (has_moved(q)) { /* it went during COMMIT: the commit is in the moved file, not at the path */
        q->moved = 1;
        snprintf(q->head.error, sizeof(q->head.error),
                 "%s was moved or replaced while committing: written into the moved file, not into what the path "
                 "names now",
                 q->path);
        disconnect(q);
        return BP_ERR_IO;
    }
    return BP_OK;
}

static void sq_rollback(void *h)
{
    sq *q = h;
    q->in_tx = 0;
    /* ROLLBACK is compiled like any statement, so it can fail for want of memory; then the
     * transaction would stay open and every later BEGIN fail.  Closing the connection rolls it
     * back instead (the next transaction opens the path again). */
    if (q->db != NULL && sqlite3_get_autocommit(q->db) == 0 &&
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && sqlite3_get_autocommit(q->db) == 0)
        disconnect(q);
}

/* ---- rows: the shared statements of sql.c, bound and read as bp_sql_value arrays ------- */

/* Bind @p n values from parameter @p first on. */
static void bind_values(sqlite3_stmt *st, int first, const bp_sql_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int at = first + (int)i;
        if (v[i].is_null)
            sqlite3_bind_null(st, at);
        else if (v[i].text != NULL)
            sqlite3_bind_text(st, at, v[i].text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, at, v[i].num);
    }
}

/* The current result row's @p n columns of @p types. */
static void read_values(sqlite3_stmt *st, const bp_sql_type *types, size_t n, bp_sql_value *v)
{
    for (size_t i = 0; i < n; i++) {
        v[i].is_null = sqlite3_column_type(st, (int)i) == SQLITE_NULL;
        v[i].text = types[i] == BP_SQL_TEXT ? (const char *)sqlite3_column_text(st, (int)i) : NULL;
        v[i].num = types[i] == BP_SQL_INT ? sqlite3_column_int64(st, (int)i) : 0;
    }
}

/* Step through the rows of @p st, handing each to @p each; reset it either way.
 * @param n receives the rows handed over (may be NULL) */
typedef int (*row_fn)(sqlite3_stmt *st, void *ctx);
static bp_status each_row(sq *q, sqlite3_stmt *st, row_fn each, void *ctx, const char *what, long long *n)
{
    int rc;
    long long count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        count++;
        if (each(st, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    bp_status bs = rc == SQLITE_DONE ? BP_OK : fail(q, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (n != NULL)
        *n = count;
    return bs;
}

/* The statement of @p c: an extension's, prepared once per connection and kept by its
 * address (at most BP_SQL_STMT_CACHE of them), or shared statement c->id. */
static bp_status prepare_call(sq *q, const bp_sql_call *c, sqlite3_stmt **out)
{
    if (c->stmt == NULL)
        return prepare(q, c->id, out);
    if (q->db == NULL) { /* it let go of a moved file: open what the path names now */
        bp_status bs = connect(q);
        if (bs != BP_OK)
            return bs;
    }
    int slot = -1;
    for (int i = 0; i < BP_SQL_STMT_CACHE; i++) {
        if (q->ext[i].key == c->stmt) {
            *out = q->ext[i].st;
            return BP_OK;
        }
        if (q->ext[i].key == NULL && slot < 0)
            slot = i;
    }
    if (slot < 0)
        BP_INTERNAL_ERROR("more extension statements than BP_SQL_STMT_CACHE");
    int rc = sqlite3_prepare_v3(q->db, c->stmt->sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK)
        return fail(q, rc, "prepare");
    q->ext[slot].key = c->stmt;
    q->ext[slot].st = *out;
    return BP_OK;
}

static int call_each(sqlite3_stmt *st, void *ctx)
{
    bp_sql_call *c = ctx;
    bp_sql_value v[BP_SQL_RUN_MAX_COLS];
    read_values(st, c->types, c->n_cols, v);
    return c->row(c->user, v);
}

/* The one runner (store_backend.h run()): bind, step, hand each row over; reset either way. */
static bp_status sq_run(void *h, bp_sql_call *c)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    if (c->n_cols > BP_SQL_RUN_MAX_COLS)
        BP_INTERNAL_ERROR("more result columns than BP_SQL_RUN_MAX_COLS");
    c->rows = c->changed = 0;
    bp_status bs = prepare_call(q, c, &st);
    if (bs != BP_OK)
        return bs;
    bind_values(st, 1, c->params, c->n_params);
    bs = c->row != NULL ? each_row(q, st, call_each, c, c->what, &c->rows) : step_done(q, st, c->what);
    if (bs == BP_OK && q->db != NULL)
        c->changed = sqlite3_changes64(q->db);
    return bs;
}

static int seen_each(void *ctx, const bp_sql_value *v)
{
    *(int *)ctx = (int)v[0].num;
    return 1;
}

static bp_status sq_seen(void *h, const char *fingerprint, int *state)
{
    static const bp_sql_type types[] = {BP_SQL_INT};
    const bp_sql_value v[] = {bp_sql_text(fingerprint)};
    bp_sql_call c = bp_sql_read(BP_SQL_SEEN, v, 1, types, 1, seen_each, state, "looking up a fingerprint");
    *state = BP_SEEN_UNKNOWN;
    return sq_run(h, &c);
}

static bp_status sq_ledger_insert(void *h, const bp_ledger_row *r, long long *id)
{
    sq *q = h;
    bp_sql_value v[BP_SQL_LEDGER_N];
    bp_sql_ledger_values(r, v); /* all but v[0], the id, are bound */
    bp_sql_call c = {
        .id = BP_SQL_LEDGER_INSERT, .params = v + 1, .n_params = BP_SQL_LEDGER_N - 1, .what = "writing the ledger"};
    bp_status bs = sq_run(q, &c);
    *id = bs == BP_OK ? sqlite3_last_insert_rowid(q->db) : 0;
    return bs;
}

/* ---- schema 5: identity (docs/store.md "Identity") ----------------------------------------- */

/* SQL function bp_address_key(text): store.c's key function, for the migration's statements
 * (registered for the migration only: the schema never names it). */
static void sql_address_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    sq *q = sqlite3_user_data(ctx);
    (void)argc;
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    if (text == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    char *key = q->head.hooks.address_key(text); /* owned: SQLite frees it */
    if (key == NULL)
        sqlite3_result_error_nomem(ctx);
    else
        sqlite3_result_text(ctx, key, -1, free);
}

/* After the identity step's SQL, in its transaction: every row's key (bp_address_key() as an SQL
 * function), the fold states of spellings that are not keys dropped (a cache: made again at
 * the address's next write), the indexes; then the keys with several spellings lose their
 * suppression rows and fold states, and they and the keys whose failures both channels
 * reported are paired and derived again by store.c (merged ones show their first spelling).
 * Interrupted, the transaction is undone and all of it runs again. */
static bp_status migrate_identity(void *h)
{
    sq *q = h;
    int rc = sqlite3_create_function_v2(q->db, "bp_address_key", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, q,
                                        sql_address_key, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(q, rc, "migrating the schema");
    bp_status bs = exec(q,
                        "UPDATE ledger SET address_key = bp_address_key(recipient) WHERE recipient IS NOT NULL;"
                        "UPDATE suppressions SET address_key = bp_address_key(address);"
                        "DELETE FROM derive_state WHERE address_key <> bp_address_key(address_key);"
                        "DROP INDEX ledger_recipient;"
                        "CREATE INDEX ledger_key ON ledger(address_key, evidence_time, id);",
                        "migrating the schema: address keys");
    if (bs == BP_OK)
        bs = bp_sql_identity_rederive(q, &schema, "CREATE UNIQUE INDEX suppressions_key ON suppressions(address_key);");
    sqlite3_create_function_v2(q->db, "bp_address_key", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL, NULL);
    return bs;
}

const bp_store_backend bp_store_backend_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .seen = sq_seen,
    .ledger_insert = sq_ledger_insert,
    .lock = NULL,
    .run = sq_run,
};
