/*
 * postgres.c - the PostgreSQL backend of the store (libpq; see store_backend.h for the
 * contract of each function).  Chosen by bp_store_open() for "postgresql://" and
 * "postgres://" locations.  Everything PostgreSQL-specific is here: connecting, the SQL
 * dialect, the schema and its migrations, row locking, and the mapping of SQLSTATEs.
 *
 * Connecting.  The location is handed to libpq as a connection URI (PQconnectdbParams with
 * expand_dbname), so everything libpq reads applies: parameters in the URI, the PG*
 * environment (PGHOST, PGPORT, PGUSER, PGPASSFILE, PGSSLMODE, ...), ~/.pgpass, pg_service.conf,
 * TLS as libpq does it.  We only add defaults the URI and environment can override
 * (connect_timeout 10 s unless PGCONNECT_TIMEOUT is set, application_name "bouncepipe") and
 * force client_encoding UTF8.  A connection lost between transactions is re-established
 * once at the next begin().
 *
 * Many writers on many hosts.  Transactions run at READ COMMITTED, where every statement
 * sees what was committed before it started, and writers that touch the same thing queue
 * on PostgreSQL's row locks (held until commit or rollback, released if the connection dies;
 * no advisory locks, no lock files):
 *   - the fingerprint: seen() inside a write transaction inserts the unit's "processed" row
 *     in state 0 (unknown) or locks the existing row (SELECT ... FOR UPDATE).  A second host
 *     recording the same message waits for the first to commit and then sees it recorded, so
 *     a message is never recorded twice.  A state-0 row left by a caller that did not go on
 *     to mark() means "unknown", as no row does.
 *   - the address: before the store derives an address (ledger_for, suppression_get inside
 *     a write transaction), the backend locks the address's row in "addresses" (created the
 *     first time the address has ledger rows).  Derivations of one address are therefore
 *     serial, and each one reads every ledger row committed before it plus its own: the last
 *     one to commit has seen all evidence, so no suppression count is lost or doubled.
 *     The recipients a transaction wrote rows for are locked together, in byte order, so
 *     that two reports naming the same addresses in opposite orders do not deadlock.
 *   Waiting for a lock is bounded by lock_timeout = busy_timeout_ms (SQLSTATE 55P03 ->
 *   BP_ERR_BUSY).  Deadlocks that remain (batches of many units locking unit after unit:
 *   40P01) and serialization failures (40001, if the server forces SERIALIZABLE) abort the
 *   transaction with BP_ERR_BUSY: the caller rolls back and may run it again (pipe mode
 *   exits 75 and the MTA retries; migrate retries the batch with back-off; acct keeps its
 *   batch and retries).  Schema creation retries by itself, so that hosts starting at once
 *   do not trip over each other.
 *
 * Statements.  Every statement with values runs with parameters: the first time on a
 * connection through PQexecParams (one round trip, as a pipe process mostly needs), from the
 * second on prepared (PQprepare, PQexecPrepared); no SQL text is ever built from data.  Only constant
 * DDL of the migrations goes through PQexec.  Text that is not valid UTF-8 (PostgreSQL
 * refuses it) is stored with the offending bytes replaced by '?'.  Columns compare with
 * COLLATE "C", byte by byte, so that orders (export by address, stats ties) match SQLite's.
 *
 * Errors: connection failures and lost connections, class 08 (connection), 53 (insufficient
 * resources: disk full, too many connections), 57P01-57P03 (shutdown, starting up), 58
 * (system I/O) and 25006 (a read-only standby) -> BP_ERR_IO, transient: pipe mode exits 75;
 * 40001, 40P01, 55P03, 57014 (timeouts) -> BP_ERR_BUSY; the rest BP_ERR_STORE.
 *
 * Ownership: the handle owns the connection and the error text.  Rows handed to callbacks
 * point into a PGresult that is cleared when the callback returns.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"
#include "bouncepipe/secret.h"
#include "bouncepipe/text.h"
#include "dmarc_sql.h"
#include "signals_sql.h"
#include "sql.h"

#define SCHEMA_VERSION BP_STORE_SCHEMA_VERSION

typedef struct pg pg;
static bp_status migrate_identity(void *h);
static bp_status pg_run(void *h, bp_sql_call *call);

/* BP_STORE_SCHEMA_IDENTITY (4 -> 5), one self-contained step: this SQL, then
 * migrate_identity().  An address's identity is its case folding, and a failure reported
 * through two channels is one (docs/store.md "Identity", "Two channels"): keys of ASCII
 * spellings here (lower() of a COLLATE "C" column lowers A-Z only), the others, the merging
 * and the indexes in migrate_identity().  Renaming the key columns makes a writer of an
 * older program still running fail instead of deriving or locking by spelling. */
static const char migrate_identity_sql[] =
    "ALTER TABLE ledger ADD COLUMN address_key TEXT COLLATE \"C\", ADD COLUMN paired_with BIGINT;"
    "ALTER TABLE suppressions ADD COLUMN address_key TEXT COLLATE \"C\";"
    "ALTER TABLE derive_state RENAME COLUMN address TO address_key;"
    "ALTER TABLE addresses RENAME COLUMN address TO address_key;"
    "UPDATE ledger SET address_key = lower(recipient) WHERE recipient IS NOT NULL "
    "  AND octet_length(recipient) = length(recipient);"
    "UPDATE suppressions SET address_key = lower(address) WHERE octet_length(address) = length(address);"
    "DELETE FROM derive_state WHERE NOT (octet_length(address_key) = length(address_key) "
    "  AND address_key = lower(address_key));"
    "DELETE FROM addresses WHERE NOT (octet_length(address_key) = length(address_key) "
    "  AND address_key = lower(address_key));";

/* Migrations: entry i brings the schema from version i to i+1, with the same meaning as
 * sqlite.c's entry i (and migration_code[i] runs after it).  Never edit a shipped entry;
 * append (and document it in docs/store.md). */
static const char *const migrations[SCHEMA_VERSION] = {
    /* 0 -> 1: the first schema */
    "CREATE TABLE processed ("
    "  fingerprint TEXT COLLATE \"C\" PRIMARY KEY,"
    "  state INTEGER NOT NULL,"
    "  message_id TEXT COLLATE \"C\","
    "  source TEXT COLLATE \"C\","
    "  first_seen BIGINT NOT NULL,"
    "  updated BIGINT NOT NULL"
    ");"
    "CREATE TABLE ledger ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  kind TEXT COLLATE \"C\" NOT NULL,"
    "  fingerprint TEXT COLLATE \"C\","
    "  evidence_time BIGINT NOT NULL,"
    "  recorded_at BIGINT NOT NULL,"
    "  type TEXT COLLATE \"C\", action TEXT COLLATE \"C\", recipient TEXT COLLATE \"C\","
    "  domain TEXT COLLATE \"C\", recipient_from TEXT COLLATE \"C\", status TEXT COLLATE \"C\","
    "  smtp_code TEXT COLLATE \"C\", diagnostic TEXT COLLATE \"C\", category TEXT COLLATE \"C\","
    "  feedback_type TEXT COLLATE \"C\", rule TEXT COLLATE \"C\", final INTEGER NOT NULL DEFAULT 0,"
    "  reporting_mta TEXT COLLATE \"C\", remote_mta TEXT COLLATE \"C\", arrival_date TEXT COLLATE \"C\","
    "  source_ip TEXT COLLATE \"C\", envid TEXT COLLATE \"C\", job_id TEXT COLLATE \"C\","
    "  source TEXT COLLATE \"C\", message_id TEXT COLLATE \"C\", original_message_id TEXT COLLATE \"C\","
    "  blocklist TEXT COLLATE \"C\", family TEXT COLLATE \"C\", note TEXT COLLATE \"C\","
    "  mta_category TEXT COLLATE \"C\""
    ");"
    "CREATE INDEX ledger_recipient ON ledger(recipient, evidence_time, id);"
    "CREATE INDEX ledger_fingerprint ON ledger(fingerprint);"
    "CREATE INDEX ledger_time ON ledger(evidence_time);"
    "CREATE INDEX ledger_events ON ledger(id) WHERE kind = 'event';"
    "CREATE TABLE suppressions ("
    "  address TEXT COLLATE \"C\" PRIMARY KEY,"
    "  domain TEXT COLLATE \"C\" NOT NULL,"
    "  reason TEXT COLLATE \"C\","
    "  source_kind TEXT COLLATE \"C\" NOT NULL,"
    "  first_seen BIGINT NOT NULL,"
    "  last_seen BIGINT NOT NULL,"
    "  count BIGINT NOT NULL,"
    "  lifted INTEGER NOT NULL DEFAULT 0,"
    "  lift_reason TEXT COLLATE \"C\","
    "  lifted_at BIGINT"
    ");"
    "CREATE INDEX suppressions_domain ON suppressions(domain);"
    /* one row per address with ledger rows: what writers of that address lock (see above) */
    "CREATE TABLE addresses ("
    "  address TEXT COLLATE \"C\" PRIMARY KEY,"
    "  first_derived BIGINT NOT NULL"
    ");",
    /* 1 -> 2: the fold state of each address (store.c derive()): a cache, starts empty */
    "CREATE TABLE derive_state ("
    "  address TEXT COLLATE \"C\" PRIMARY KEY,"
    "  last_time BIGINT NOT NULL,"
    "  last_id BIGINT NOT NULL,"
    "  policy TEXT COLLATE \"C\" NOT NULL,"
    "  suppressed INTEGER NOT NULL,"
    "  reason TEXT COLLATE \"C\","
    "  source_kind TEXT COLLATE \"C\","
    "  first_seen BIGINT NOT NULL,"
    "  last_seen BIGINT NOT NULL,"
    "  count BIGINT NOT NULL,"
    "  lifted INTEGER NOT NULL,"
    "  lift_reason TEXT COLLATE \"C\","
    "  lifted_at BIGINT NOT NULL,"
    "  active_time BIGINT NOT NULL,"
    "  active_id BIGINT NOT NULL,"
    "  soft TEXT COLLATE \"C\" NOT NULL"
    ");",
    /* 2 -> 3: a message's facts once, in its processed row (sql.h BP_SQL_MIGRATE_FACTS) */
    "ALTER TABLE processed ADD COLUMN original_message_id TEXT COLLATE \"C\","
    "  ADD COLUMN reporting_mta TEXT COLLATE \"C\", ADD COLUMN envid TEXT COLLATE \"C\","
    "  ADD COLUMN arrival_date TEXT COLLATE \"C\";" BP_SQL_MIGRATE_FACTS,
    /* 3 -> 4: where acct --follow stopped reading each stream (bp_acct_position) */
    "CREATE TABLE acct_position ("
    "  stream TEXT COLLATE \"C\" PRIMARY KEY,"
    "  file TEXT COLLATE \"C\" NOT NULL,"
    "  inode BIGINT NOT NULL,"
    "  byte_offset BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL"
    ");",
    [BP_STORE_SCHEMA_IDENTITY - 1] = migrate_identity_sql,
    /* the webhook outbox, one row per (event, endpoint) (docs/webhooks.md) */
    [BP_STORE_SCHEMA_OUTBOX - 1] =
        "CREATE TABLE outbox ("
        "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "  ledger_id BIGINT NOT NULL REFERENCES ledger(id),"
        "  endpoint TEXT COLLATE \"C\" NOT NULL,"
        "  event_key TEXT COLLATE \"C\" NOT NULL,"
        "  state TEXT COLLATE \"C\" NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  created_at BIGINT NOT NULL,"
        "  next_at BIGINT NOT NULL,"
        "  lease_owner TEXT COLLATE \"C\","
        "  lease_until BIGINT NOT NULL DEFAULT 0,"
        "  delivered_at BIGINT,"
        "  last_error TEXT COLLATE \"C\","
        "  UNIQUE (endpoint, event_key)"
        ");"
        "CREATE INDEX outbox_due ON outbox (endpoint, next_at) WHERE state = 'pending';"
        "CREATE INDEX outbox_ledger ON outbox (ledger_id);",
    /* BP_STORE_SCHEMA_DMARC: DMARC aggregate reports and failure-report domains (dmarc_sql.h),
     * one self-contained step */
    [BP_STORE_SCHEMA_DMARC - 1] = BP_DMARC_SCHEMA_PG,
    /* events' signal fields, signal counts, accounting watermarks, alerts (signals_sql.h) */
    [BP_STORE_SCHEMA_SIGNALS - 1] = BP_SIGNALS_SCHEMA_PG,
};
/* Code a migration runs after its SQL, in its transaction (NULL: none). */
static bp_status (*const migration_code[SCHEMA_VERSION])(void *h) = {[BP_STORE_SCHEMA_IDENTITY - 1] = migrate_identity};

/* Statements: the shared ones of sql.c (ids below BP_SQL_COUNT, their ?N turned into $N
 * when a connection is opened) and PostgreSQL's own, that claim and lock. */
enum stmt_id { ST_CLAIM = BP_SQL_COUNT, ST_SEEN_LOCKED, ST_LOCK_ADDRESS, ST_COUNT };

static const char *const own_sql[ST_COUNT - BP_SQL_COUNT] = {
    [ST_CLAIM - BP_SQL_COUNT] =
        "INSERT INTO processed (fingerprint, state, first_seen, updated) VALUES ($1, 0, $2, $2) "
        "ON CONFLICT (fingerprint) DO NOTHING",
    [ST_SEEN_LOCKED - BP_SQL_COUNT] = "SELECT state FROM processed WHERE fingerprint = $1 FOR UPDATE",
    /* locks the address's row, creating it when the address has ledger rows (committed or
     * ours); an address without any gets no row and needs no lock: nothing to derive */
    [ST_LOCK_ADDRESS - BP_SQL_COUNT] =
        "INSERT INTO addresses (address_key, first_derived) SELECT $1::text, $2::bigint "
        "WHERE EXISTS (SELECT 1 FROM ledger WHERE address_key = $1::text) "
        "ON CONFLICT (address_key) DO UPDATE SET first_derived = addresses.first_derived RETURNING 1",
};

/* The text of a statement in PostgreSQL's dialect and its parameter count (the highest $N). */
typedef struct stmt_text {
    char *owned; /* a shared statement with $N for ?N */
    const char *sql;
    int n_params;
} stmt_text;

static int count_params(const char *sql)
{
    int most = 0;
    for (const char *p = sql; *p != '\0'; p++)
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            int n = (int)strtol(p + 1, NULL, 10);
            if (n > most)
                most = n;
        }
    return most;
}

/* Fill @p t for every statement. @return 0, or -1 out of memory.  The ledger insert gets
 * "RETURNING id" here: SQLite reads sqlite3_last_insert_rowid() instead, because RETURNING
 * costs it a temporary table per row (six times the instructions of the insert itself). */
static int stmt_texts(stmt_text *t)
{
    static const char returning[] = " RETURNING id";
    for (int id = 0; id < ST_COUNT; id++) {
        if (id < BP_SQL_COUNT) {
            const char *sql = bp_sql_postgres[id] != NULL ? bp_sql_postgres[id] : bp_sql[id];
            size_t n = strlen(sql);
            if ((t[id].owned = bp_malloc(n + sizeof(returning))) == NULL)
                return -1;
            memcpy(t[id].owned, sql, n + 1);
            if (id == BP_SQL_LEDGER_INSERT)
                memcpy(t[id].owned + n, returning, sizeof(returning));
            for (char *c = t[id].owned; *c != '\0'; c++)
                if (*c == '?')
                    *c = '$'; /* the shared SQL has no '?' but its parameters */
            t[id].sql = t[id].owned;
        } else {
            t[id].sql = own_sql[id - BP_SQL_COUNT];
        }
        t[id].n_params = count_params(t[id].sql);
    }
    return 0;
}

/* A small set of addresses (a transaction touches a few; a batch some thousands). */
typedef struct addr_set {
    char **v;
    size_t n, cap;
} addr_set;

static int set_has(const addr_set *set, const char *a)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i], a) == 0)
            return 1;
    return 0;
}

/* Add a copy of @p a unless present. @return 0, or -1 out of memory (the set is unchanged). */
static int set_add(addr_set *set, const char *a)
{
    if (set_has(set, a))
        return 0;
    char **v = bp_grow(set->v, set->n, &set->cap, sizeof(*v), 8);
    if (v == NULL)
        return -1;
    set->v = v;
    if ((set->v[set->n] = bp_strdup(a)) == NULL)
        return -1;
    set->n++;
    return 0;
}

static void set_clear(addr_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->v[i]);
    set->n = 0;
}

static void set_free(addr_set *set)
{
    set_clear(set);
    free(set->v);
    set->v = NULL;
    set->cap = 0;
}

static int cmp_address(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An extension's statement (sql.h bp_sql_stmt), in PostgreSQL's dialect. */
typedef struct ext_stmt {
    const bp_sql_stmt *key;
    stmt_text text;
    unsigned char prepared; /* as pg.prepared */
} ext_stmt;

typedef struct pg {
    bp_backend_head head; /* first: store.c reads it (store_backend.h) */
    PGconn *conn;
    stmt_text stmts[ST_COUNT];
    unsigned char prepared[ST_COUNT]; /* 0 unused, 1 used once, 2 prepared on this connection */
    ext_stmt ext[BP_SQL_STMT_CACHE];
    unsigned busy_timeout_ms;
    unsigned rng;
    int in_tx;
    int read_only;
    addr_set locked;  /* addresses this transaction holds the lock of */
    addr_set pending; /* address keys of ledger rows this transaction wrote, not locked yet */
} pg;

/* ---- parameters ------------------------------------------------------------------------ */

#define MAX_PARAMS 40

/* Values of one statement: text, or NULL for SQL NULL; numbers are formatted in place. */
typedef struct params {
    const char *v[MAX_PARAMS];
    char *owned[MAX_PARAMS]; /* copies made valid UTF-8 */
    char num[MAX_PARAMS][24];
    int n;
    int nomem;
} params;

/* A copy of @p s with every byte that is not part of valid UTF-8 replaced by '?'. */
static char *utf8_fixed_copy(const char *s)
{
    size_t len = strlen(s);
    char *out = bp_malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t i = 0;
    while (i < len) {
        size_t n = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4;
        if (c < 0x80 || (n > 1 && i + n <= len && bp_utf8_valid(s + i, n))) {
            memcpy(out + i, s + i, n);
            i += n;
        } else {
            out[i++] = '?';
        }
    }
    out[len] = '\0';
    return out;
}

static void param_text(params *p, const char *s)
{
    int i = p->n++;
    p->owned[i] = NULL;
    p->v[i] = s;
    if (s != NULL && !bp_utf8_valid(s, strlen(s))) {
        p->owned[i] = utf8_fixed_copy(s);
        p->v[i] = p->owned[i];
        if (p->owned[i] == NULL)
            p->nomem = 1;
    }
}

static void param_int(params *p, long long value)
{
    int i = p->n++;
    p->owned[i] = NULL;
    snprintf(p->num[i], sizeof(p->num[i]), "%lld", value);
    p->v[i] = p->num[i];
}

static void params_free(params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->owned[i]);
    p->n = 0;
}

/* ---- errors ---------------------------------------------------------------------------- */

static bp_status map_sqlstate(const char *state)
{
    if (state == NULL || strlen(state) != 5)
        return BP_ERR_IO; /* no SQLSTATE: the client lost the server */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
        strcmp(state, "57014") == 0)
        return BP_ERR_BUSY;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0 ||
        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
        strcmp(state, "25006") == 0)
        return BP_ERR_IO;
    return BP_ERR_STORE;
}

/* Notices (a CREATE TABLE IF NOT EXISTS that found the table) are not for the operator;
 * pipe mode's standard error goes to the MTA's log. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Copy @p msg into the error text, without libpq's trailing newline, and without any secret
 * libpq quoted from the connection string (bp_secret_scrub()). */
static void set_error(pg *q, const char *what, const char *msg)
{
    char raw[sizeof(q->head.error)];
    snprintf(raw, sizeof(raw), "%s: %s", what, msg != NULL && *msg != '\0' ? msg : "unknown error");
    bp_secret_scrub(raw, NULL, q->head.error, sizeof(q->head.error));
    size_t len = strlen(q->head.error);
    while (len > 0 && (q->head.error[len - 1] == '\n' || q->head.error[len - 1] == ' '))
        q->head.error[--len] = '\0';
}

/* The status of @p res (which may be NULL); on failure leaves a message. */
static bp_status check(pg *q, const PGresult *res, const char *what)
{
    if (res == NULL) {
        set_error(q, what, PQerrorMessage(q->conn));
        return PQstatus(q->conn) == CONNECTION_BAD ? BP_ERR_IO : BP_ERR_NOMEM;
    }
    ExecStatusType es = PQresultStatus(res);
    if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK)
        return BP_OK;
    set_error(q, what, PQresultErrorMessage(res));
    if (PQstatus(q->conn) == CONNECTION_BAD)
        return BP_ERR_IO;
    return map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
}

/* ---- running statements ---------------------------------------------------------------- */

/* Run statement @p t (named @p name once prepared; @p prepared its state) with @p p; *out
 * receives the result (the caller clears it). */
static bp_status run_text_stmt(pg *q, const stmt_text *t, const char *name, unsigned char *prepared, params *p,
                               PGresult **out, const char *what)
{
    bp_status bs = BP_OK;
    PGresult *res = NULL;
    *out = NULL;
    if (p->nomem) {
        snprintf(q->head.error, sizeof(q->head.error), "%s: out of memory", what);
        bs = BP_ERR_NOMEM;
        goto out;
    }
    if (p->n != t->n_params)
        BP_INTERNAL_ERROR("parameter count differs from the statement's");
    if (*prepared == 0) {
        /* First use on this connection: parse, bind and run in one round trip.  A pipe
         * process runs most statements once; longer runs prepare on the second use. */
        *prepared = 1;
        res = PQexecParams(q->conn, t->sql, p->n, NULL, p->v, NULL, NULL, 0);
        goto done;
    }
    if (*prepared == 1) {
        res = PQprepare(q->conn, name, t->sql, t->n_params, NULL);
        bs = check(q, res, "preparing a statement");
        PQclear(res);
        res = NULL;
        if (bs != BP_OK)
            goto out;
        *prepared = 2;
    }
    res = PQexecPrepared(q->conn, name, p->n, p->v, NULL, NULL, 0);
done:
    bs = check(q, res, what);
    if (bs != BP_OK) {
        PQclear(res);
        res = NULL;
    }
    *out = res;
out:
    params_free(p);
    return bs;
}

/* Run prepared statement @p id with @p p; *out receives the result (the caller clears it). */
static bp_status run(pg *q, int id, params *p, PGresult **out, const char *what)
{
    char name[16];
    snprintf(name, sizeof(name), "bp%d", (int)id);
    return run_text_stmt(q, &q->stmts[id], name, &q->prepared[id], p, out, what);
}

/* Run a statement that returns no rows we need. @param affected receives the row count (may be NULL) */
static bp_status run_command(pg *q, int id, params *p, long long *affected, const char *what)
{
    PGresult *res = NULL;
    bp_status bs = run(q, id, p, &res, what);
    if (bs == BP_OK && affected != NULL)
        *affected = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return bs;
}

/* Constant SQL without parameters (transaction control, DDL of the migrations). */
static bp_status exec_plain(pg *q, const char *sql, const char *what)
{
    PGresult *res = PQexec(q->conn, sql);
    bp_status bs = check(q, res, what);
    PQclear(res);
    return bs;
}

static const char *col_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static long long col_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* ---- connection and schema ------------------------------------------------------------- */

/* Session settings, again after every (re)connection. */
static bp_status configure_session(pg *q)
{
    PGresult *res = NULL;
    char timeout[32];
    /* lock_timeout 0 would mean "wait for ever"; a zero busy timeout means "do not wait" */
    snprintf(timeout, sizeof(timeout), "%ums", q->busy_timeout_ms > 0 ? q->busy_timeout_ms : 1);
    memset(q->prepared, 0, sizeof(q->prepared));
    for (int i = 0; i < BP_SQL_STMT_CACHE; i++)
        q->ext[i].prepared = 0;
    /* set_config() takes its value as a parameter; SET cannot */
    res = PQexecParams(q->conn, "SELECT set_config('lock_timeout', $1, false)", 1, NULL, (const char *const[]){timeout},
                       NULL, NULL, 0);
    bp_status bs = check(q, res, "setting lock_timeout");
    PQclear(res);
    return bs;
}

static bp_status connect_to(pg *q, const char *location)
{
    /* Keywords before "dbname" are defaults that the URI overrides; those after it win. */
    const char *keys[5];
    const char *values[5];
    int n = 0;
    if (getenv("PGCONNECT_TIMEOUT") == NULL) {
        keys[n] = "connect_timeout";
        values[n++] = "10";
    }
    keys[n] = "fallback_application_name";
    values[n++] = "bouncepipe";
    keys[n] = "dbname";
    values[n++] = location;
    keys[n] = "client_encoding";
    values[n++] = "UTF8";
    keys[n] = NULL;
    values[n] = NULL;
    q->conn = PQconnectdbParams(keys, values, 1);
    if (q->conn == NULL) {
        snprintf(q->head.error, sizeof(q->head.error), "connecting: out of memory");
        return BP_ERR_NOMEM;
    }
    if (PQstatus(q->conn) != CONNECTION_OK) {
        /* Never echo the location: it may hold a password.  libpq's message names host and
         * port, not the password. */
        set_error(q, "connecting to PostgreSQL", PQerrorMessage(q->conn));
        return BP_ERR_IO;
    }
    PQsetNoticeProcessor(q->conn, ignore_notice, NULL);
    return configure_session(q);
}

/* The schema version: 0 for an empty schema; -1 when other tables are there (not ours);
 * then judged for a reader or a writer (bp_sql_schema_check()).  One snapshot answers both
 * questions, so that a schema another host creates meanwhile is seen whole or not at all. */
static bp_status read_schema(pg *q, int read_only, int *version)
{
    *version = 0;
    PGresult *res = PQexec(q->conn, "SELECT (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = "
                                    "current_schema() AND tablename = 'schema_version'), (SELECT count(*) FROM "
                                    "pg_catalog.pg_tables WHERE schemaname = current_schema())");
    bp_status bs = check(q, res, "reading the schema");
    if (bs != BP_OK)
        goto out;
    int have_version_table = col_int(res, 0, 0) > 0, tables = (int)col_int(res, 0, 1);
    PQclear(res);
    res = NULL;
    if (!have_version_table) {
        *version = tables > 0 ? -1 : 0;
        goto out;
    }
    /* committed together with the version row, so there is one */
    res = PQexec(q->conn, "SELECT max(version) FROM schema_version");
    bs = check(q, res, "reading the schema version");
    if (bs == BP_OK)
        *version = (int)col_int(res, 0, 0);
out:
    PQclear(res);
    return bs == BP_OK ? bp_sql_schema_check(&q->head, "", *version, read_only) : bs;
}

/* Runs a migration step's SQL (bp_sql_schema). */
static bp_status exec_step(void *h, const char *sql, const char *what)
{
    return exec_plain(h, sql, what);
}

static const bp_sql_schema schema = {migrations, migration_code, exec_step, pg_run};

/* One attempt at bringing the schema to SCHEMA_VERSION, in one transaction. */
static bp_status migrate_once(pg *q)
{
    int version = 0;
    bp_status bs = exec_plain(q, "BEGIN ISOLATION LEVEL READ COMMITTED", "starting the migration");
    if (bs != BP_OK)
        return bs;
    /* Hosts starting at once queue here; the others find the work done when they get in. */
    bs = exec_plain(q, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                    "creating the schema version table");
    if (bs == BP_OK)
        bs = exec_plain(q, "LOCK TABLE schema_version IN EXCLUSIVE MODE", "locking the schema version table");
    if (bs != BP_OK)
        goto out;
    PGresult *res = PQexec(q->conn, "SELECT (SELECT max(version) FROM schema_version), (SELECT count(*) FROM "
                                    "pg_catalog.pg_tables WHERE schemaname = current_schema())");
    bs = check(q, res, "reading the schema version");
    if (bs == BP_OK) {
        version = (int)col_int(res, 0, 0);
        if (version == 0 && col_int(res, 0, 1) > 1)
            version = -1; /* other tables than the one made above */
    }
    PQclear(res);
    if (bs == BP_OK)
        bs = bp_sql_schema_check(&q->head, "", version, 0);
    if (bs == BP_OK)
        bs = bp_sql_schema_migrate(q, &schema, version);
    if (bs != BP_OK)
        goto out;
    bs = exec_plain(q, "COMMIT", "committing the migration");
    if (bs == BP_OK)
        q->head.version = SCHEMA_VERSION;
    return bs;
out:
    PQclear(PQexec(q->conn, "ROLLBACK"));
    return bs;
}

/* Migrate, retrying what concurrent creators cause: two CREATE TABLE IF NOT EXISTS racing
 * (23505, 42P07), deadlocks, lock waits; until busy_timeout_ms is spent. */
static bp_status migrate(pg *q)
{
    long long started = bp_monotonic_ms();
    for (unsigned attempt = 0;; attempt++) {
        bp_status bs = migrate_once(q);
        if (bs == BP_OK || bs == BP_ERR_IO || bp_monotonic_ms() - started >= (long long)q->busy_timeout_ms)
            return bs;
        if (bs != BP_ERR_BUSY && strstr(q->head.error, "already exists") == NULL &&
            strstr(q->head.error, "duplicate key") == NULL)
            return bs;
        bp_sleep_ms(bp_backoff_ms(&q->rng, attempt, 1, 64)); /* retrying hosts spread out */
    }
}

static void pg_rollback(void *h);

static void pg_close(void *h)
{
    pg *q = h;
    if (q == NULL)
        return;
    if (q->in_tx)
        pg_rollback(q);
    PQfinish(q->conn);
    for (int i = 0; i < ST_COUNT; i++)
        free(q->stmts[i].owned);
    for (int i = 0; i < BP_SQL_STMT_CACHE; i++)
        free(q->ext[i].text.owned);
    set_free(&q->locked);
    set_free(&q->pending);
    free(q);
}

static bp_status pg_open(const char *location, const bp_store_options *opts, const bp_store_hooks *hooks, void **handle)
{
    pg *q = bp_calloc(1, sizeof(*q));
    if (q == NULL)
        return BP_ERR_NOMEM;
    q->head.hooks = *hooks;
    q->busy_timeout_ms = opts->busy_timeout_ms;
    q->read_only = opts->read_only;
    q->rng = bp_backoff_seed();
    bp_status bs = BP_OK;
    if (stmt_texts(q->stmts) != 0) {
        snprintf(q->head.error, sizeof(q->head.error), "out of memory");
        bs = BP_ERR_NOMEM;
        goto out;
    }
    bs = connect_to(q, location);
    if (bs != BP_OK)
        goto out;
    int version = 0;
    bs = read_schema(q, opts->read_only, &version);
    if (bs != BP_OK)
        goto out;
    if (version < SCHEMA_VERSION) {
        bs = migrate(q);
        if (bs != BP_OK)
            goto out;
    }
    if (opts->read_only) {
        bs = exec_plain(q, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "opening read-only");
        if (bs != BP_OK)
            goto out;
    }
out:
    *handle = q;
    return bs;
}

/* ---- transactions ---------------------------------------------------------------------- */

static void forget_lock(pg *q)
{
    set_clear(&q->locked);
    set_clear(&q->pending);
}

/* Connect again after the server closed the connection (restart, failover, idle timeout). */
static bp_status reconnect(pg *q)
{
    PQreset(q->conn);
    if (PQstatus(q->conn) != CONNECTION_OK) {
        set_error(q, "reconnecting to PostgreSQL", PQerrorMessage(q->conn));
        return BP_ERR_IO;
    }
    return configure_session(q);
}

static bp_status pg_begin(void *h)
{
    pg *q = h;
    static const char begin_sql[] = "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE";
    if (q->in_tx) {
        snprintf(q->head.error, sizeof(q->head.error), "a transaction is already open");
        return BP_ERR_USAGE;
    }
    if (q->read_only) {
        snprintf(q->head.error, sizeof(q->head.error), "the store was opened read-only");
        return BP_ERR_USAGE;
    }
    forget_lock(q);
    bp_status bs = PQstatus(q->conn) == CONNECTION_OK ? BP_OK : reconnect(q);
    if (bs != BP_OK)
        return bs;
    bs = exec_plain(q, begin_sql, "starting a transaction");
    if (bs != BP_OK && PQstatus(q->conn) == CONNECTION_BAD) {
        /* libpq learns that the server closed the connection only now; nothing of this
         * transaction was sent yet, so connect again and begin once more */
        bs = reconnect(q);
        if (bs == BP_OK)
            bs = exec_plain(q, begin_sql, "starting a transaction");
    }
    if (bs == BP_OK)
        q->in_tx = 1;
    return bs;
}

static bp_status pg_commit(void *h)
{
    pg *q = h;
    PGresult *res = PQexec(q->conn, "COMMIT");
    bp_status bs = check(q, res, "committing");
    /* COMMIT of a transaction that failed earlier answers ROLLBACK: nothing was kept */
    if (bs == BP_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        snprintf(q->head.error, sizeof(q->head.error), "committing: the transaction had failed and was rolled back");
        bs = BP_ERR_STORE;
    }
    PQclear(res);
    q->in_tx = 0;
    forget_lock(q);
    return bs;
}

static void pg_rollback(void *h)
{
    pg *q = h;
    if (PQstatus(q->conn) == CONNECTION_OK && PQtransactionStatus(q->conn) != PQTRANS_IDLE)
        PQclear(PQexec(q->conn, "ROLLBACK"));
    q->in_tx = 0;
    forget_lock(q);
}

/* ---- rows: the shared statements of sql.c, with values as bp_sql_value arrays ---------- */

static void param_values(params *p, const bp_sql_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].is_null)
            param_text(p, NULL);
        else if (v[i].text != NULL)
            param_text(p, v[i].text);
        else
            param_int(p, v[i].num);
    }
}

/* Row @p row of @p res, @p n columns of @p types. */
static void read_values(const PGresult *res, int row, const bp_sql_type *types, size_t n, bp_sql_value *v)
{
    for (size_t i = 0; i < n; i++) {
        v[i].is_null = PQgetisnull(res, row, (int)i);
        v[i].text = types[i] == BP_SQL_TEXT ? col_text(res, row, (int)i) : NULL;
        v[i].num = types[i] == BP_SQL_INT ? col_int(res, row, (int)i) : 0;
    }
}

/* The text, name and state of an extension's statement, made the first time it runs on this
 * connection (kept by its address, at most BP_SQL_STMT_CACHE of them). */
static bp_status ext_text(pg *q, const bp_sql_stmt *stmt, ext_stmt **out)
{
    for (int i = 0; i < BP_SQL_STMT_CACHE; i++)
        if (q->ext[i].key == stmt) {
            *out = &q->ext[i];
            return BP_OK;
        }
    for (int i = 0; i < BP_SQL_STMT_CACHE; i++)
        if (q->ext[i].key == NULL) {
            size_t len = strlen(stmt->sql);
            char *t = bp_malloc(len + 1);
            if (t == NULL) {
                snprintf(q->head.error, sizeof(q->head.error), "out of memory");
                return BP_ERR_NOMEM;
            }
            memcpy(t, stmt->sql, len + 1);
            for (char *c = t; *c != '\0'; c++)
                if (*c == '?')
                    *c = '$'; /* the shared SQL has no '?' but its parameters */
            ext_stmt *e = &q->ext[i];
            e->key = stmt;
            e->text.owned = t;
            e->text.sql = t;
            e->text.n_params = count_params(t);
            e->prepared = 0;
            *out = e;
            return BP_OK;
        }
    BP_INTERNAL_ERROR("more extension statements than BP_SQL_STMT_CACHE");
}

/* The one runner (store_backend.h run()): a shared statement or an extension's. */
static bp_status pg_run(void *h, bp_sql_call *c)
{
    pg *q = h;
    params p = {.n = 0};
    PGresult *res = NULL;
    ext_stmt *e = NULL;
    if (c->n_params > MAX_PARAMS)
        BP_INTERNAL_ERROR("more parameters than MAX_PARAMS");
    if (c->n_cols > BP_SQL_RUN_MAX_COLS)
        BP_INTERNAL_ERROR("more result columns than BP_SQL_RUN_MAX_COLS");
    c->rows = c->changed = 0;
    bp_status bs = c->stmt != NULL ? ext_text(q, c->stmt, &e) : BP_OK;
    if (bs != BP_OK)
        return bs;
    param_values(&p, c->params, c->n_params);
    if (e != NULL) {
        char name[16];
        snprintf(name, sizeof(name), "bx%d", (int)(e - q->ext));
        bs = run_text_stmt(q, &e->text, name, &e->prepared, &p, &res, c->what);
    } else {
        bs = run(q, (int)c->id, &p, &res, c->what);
    }
    if (bs != BP_OK)
        return bs;
    c->changed = strtoll(PQcmdTuples(res), NULL, 10);
    int n = c->row != NULL ? PQntuples(res) : 0;
    for (int i = 0; i < n; i++) {
        bp_sql_value v[BP_SQL_RUN_MAX_COLS];
        read_values(res, i, c->types, c->n_cols, v);
        c->rows++;
        if (c->row(c->user, v) != 0)
            break;
    }
    PQclear(res);
    return BP_OK;
}

/* Inside a write transaction, the address's lock first (see lock_address). */
static bp_status lock_address(pg *q, const char *address, int *locked);
static bp_status pg_lock(void *h, const char *address)
{
    pg *q = h;
    int locked = 0;
    return q->in_tx ? lock_address(q, address, &locked) : BP_OK;
}

/* ---- processed units ------------------------------------------------------------------- */

static bp_status pg_seen(void *h, const char *fingerprint, int *state)
{
    pg *q = h;
    params p = {.n = 0};
    PGresult *res = NULL;
    bp_status bs = BP_OK;
    *state = BP_SEEN_UNKNOWN;
    if (q->in_tx) {
        /* Claim the fingerprint: a row we insert, or the existing row locked.  A host
         * recording the same unit right now makes us wait here until it commits. */
        long long inserted = 0;
        param_text(&p, fingerprint);
        param_int(&p, (long long)time(NULL));
        bs = run_command(q, ST_CLAIM, &p, &inserted, "claiming a fingerprint");
        if (bs != BP_OK || inserted == 1)
            return bs;
        param_text(&p, fingerprint);
        bs = run(q, ST_SEEN_LOCKED, &p, &res, "looking up a fingerprint");
    } else {
        param_text(&p, fingerprint);
        bs = run(q, BP_SQL_SEEN, &p, &res, "looking up a fingerprint");
    }
    if (bs == BP_OK && PQntuples(res) > 0)
        *state = (int)col_int(res, 0, 0);
    PQclear(res);
    return bs;
}

/* ---- the ledger ------------------------------------------------------------------------ */

static bp_status pg_ledger_insert(void *h, const bp_ledger_row *r, long long *id)
{
    pg *q = h;
    params p = {.n = 0};
    bp_sql_value v[BP_SQL_LEDGER_N];
    bp_sql_ledger_values(r, v);
    param_values(&p, v + 1, BP_SQL_LEDGER_N - 1); /* all but the id */
    PGresult *res = NULL;
    bp_status bs = run(q, BP_SQL_LEDGER_INSERT, &p, &res, "writing the ledger");
    *id = bs == BP_OK && PQntuples(res) > 0 ? col_int(res, 0, 0) : 0;
    PQclear(res);
    /* to be locked, in order with the others, when the store first derives (lock_address) */
    const char *rcpt = r->address_key;
    if (bs == BP_OK && rcpt != NULL && !set_has(&q->locked, rcpt) && set_add(&q->pending, rcpt) != 0) {
        snprintf(q->head.error, sizeof(q->head.error), "writing the ledger: out of memory");
        bs = BP_ERR_NOMEM;
    }
    return bs;
}

/* Inside a write transaction, lock the row of @p address in "addresses" before the store
 * reads what it derives from (waiting, if another transaction holds it, until that one
 * ends).  The row is created the first time the address has ledger rows; an address without
 * any is left alone (*locked = 0): there is nothing to derive, and a transaction that adds
 * its first rows locks it when it derives.
 *
 * The recipients of the rows this transaction wrote are locked together with it, in byte
 * order: two reports naming the same two addresses in opposite orders then take the locks
 * in the same order and wait for each other instead of deadlocking. */
static bp_status lock_address(pg *q, const char *address, int *locked)
{
    bp_status bs = BP_OK;
    *locked = set_has(&q->locked, address);
    if (*locked)
        return BP_OK;
    if (set_add(&q->pending, address) != 0) {
        snprintf(q->head.error, sizeof(q->head.error), "locking an address: out of memory");
        return BP_ERR_NOMEM;
    }
    bp_sort(q->pending.v, q->pending.n, sizeof(*q->pending.v), cmp_address);
    for (size_t i = 0; i < q->pending.n && bs == BP_OK; i++) {
        params p = {.n = 0};
        PGresult *res = NULL;
        param_text(&p, q->pending.v[i]);
        param_int(&p, (long long)time(NULL));
        bs = run(q, ST_LOCK_ADDRESS, &p, &res, "locking an address");
        if (bs == BP_OK && PQntuples(res) > 0) {
            if (strcmp(q->pending.v[i], address) == 0)
                *locked = 1;
            if (set_add(&q->locked, q->pending.v[i]) != 0)
                set_clear(&q->locked); /* only a cache: locking again is harmless */
        }
        PQclear(res);
    }
    set_clear(&q->pending);
    return bs;
}

/* ---- schema 5: identity (docs/store.md "Identity") ----------------------------------------- */

/* The key of every value @p select returns (a column of text that is not ASCII), written by
 * @p update ($1 the value, $2 its key): store.c's key function, which the server has not. */
static bp_status fill_keys(pg *q, const char *select, const char *update)
{
    PGresult *res = PQexec(q->conn, select);
    bp_status bs = check(q, res, "migrating the schema: address keys");
    int n = bs == BP_OK ? PQntuples(res) : 0;
    for (int i = 0; i < n && bs == BP_OK; i++) {
        const char *value = PQgetvalue(res, i, 0);
        char *key = q->head.hooks.address_key(value);
        if (key == NULL) {
            snprintf(q->head.error, sizeof(q->head.error), "migrating the schema: out of memory");
            bs = BP_ERR_NOMEM;
            break;
        }
        PGresult *u = PQexecParams(q->conn, update, 2, NULL, (const char *const[]){value, key}, NULL, NULL, 0);
        bs = check(q, u, "migrating the schema: address keys");
        PQclear(u);
        free(key);
    }
    PQclear(res);
    return bs;
}

/* After the identity step's SQL (the ASCII keys), in its transaction: the keys of the other
 * spellings, the indexes, then the keys with several spellings lose their suppression rows
 * and fold states, and they and the keys whose failures both channels reported are paired
 * and derived again by store.c (merged ones show their first spelling).  Interrupted, the
 * transaction is undone and all of it runs again. */
static bp_status migrate_identity(void *h)
{
    pg *q = h;
    bp_status bs =
        fill_keys(q, "SELECT DISTINCT recipient FROM ledger WHERE address_key IS NULL AND recipient IS NOT NULL",
                  "UPDATE ledger SET address_key = $2 WHERE recipient = $1 AND address_key IS NULL");
    if (bs == BP_OK)
        bs = fill_keys(q, "SELECT address FROM suppressions WHERE address_key IS NULL",
                       "UPDATE suppressions SET address_key = $2 WHERE address = $1");
    if (bs == BP_OK)
        bs = exec_plain(q,
                        "DROP INDEX ledger_recipient;"
                        "CREATE INDEX ledger_key ON ledger(address_key, evidence_time, id);",
                        "migrating the schema: indexes");
    if (bs == BP_OK)
        bs = bp_sql_identity_rederive(q, &schema,
                                      "CREATE UNIQUE INDEX suppressions_key ON suppressions(address_key);"
                                      "ALTER TABLE suppressions ALTER COLUMN address_key SET NOT NULL;");
    return bs;
}

const bp_store_backend bp_store_backend_postgres = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .seen = pg_seen,
    .ledger_insert = pg_ledger_insert,
    .lock = pg_lock,
    .run = pg_run,
};
