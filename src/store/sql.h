/*
 * sql.h - the SQL and the column layout both backends share (internal to src/store/).
 *
 * sqlite.c and postgres.c store the same rows with the same statements; only connecting,
 * locking, the DDL of the migrations and a few PostgreSQL-only statements (claiming a
 * fingerprint, locking an address) differ.  So the statements are written once, here, in the
 * dialect both accept (numbered parameters ?N, which postgres.c turns into $N; CAST instead
 * of ::; ON CONFLICT upserts; RETURNING), and so is the mapping between the rows of
 * store_backend.h and the columns those statements read and write: a backend fetches or
 * binds an array of bp_sql_value in the order of the column list, nothing else.
 *
 * Built into the core library and into the PostgreSQL module (CMakeLists.txt), so it needs
 * nothing but libc, event.c and the allocator (bputil).
 *
 * Ownership: bp_sql_value texts are borrowed (from the row being written, or from the
 * backend's result row being read); rows made from values borrow them too.
 */
#ifndef BOUNCEPIPE_STORE_SQL_H
#define BOUNCEPIPE_STORE_SQL_H

#include <stddef.h>

#include "store_backend.h"

/** The statements both backends run.  Parameters are ?1, ?2, ... */
typedef enum bp_sql_id {
    BP_SQL_SEEN,
    BP_SQL_MARK,
    BP_SQL_DROP_PLACEHOLDER,
    BP_SQL_LEDGER_INSERT,
    BP_SQL_LEDGER_FOR,
    BP_SQL_LEDGER_FOLD,
    BP_SQL_FIRST_SPELLING,
    BP_SQL_UNIT_ENVID,
    BP_SQL_LEDGER_PAIR,
    BP_SQL_LEDGER_UNPAIR,
    BP_SQL_LEDGER_PAGE,
    BP_SQL_LEDGER_UNITS,
    BP_SQL_LEDGER_RECLASSIFY,
    BP_SQL_SUPP_GET,
    BP_SQL_SUPP_PUT,
    BP_SQL_SUPP_DELETE,
    BP_SQL_SUPP_LIST,
    BP_SQL_STATS_TYPE,
    BP_SQL_STATS_CATEGORY,
    BP_SQL_STATS_ACTION,
    BP_SQL_STATS_DOMAIN,
    BP_SQL_STATS_DAY,
    BP_SQL_STATS_SUPPRESSED,
    BP_SQL_STATS_LIFTED,
    BP_SQL_STATE_GET,
    BP_SQL_STATE_PUT,
    BP_SQL_STATE_DELETE,
    BP_SQL_POSITION_GET,
    BP_SQL_POSITION_PUT,
    BP_SQL_MIGRATE_KEYS,
    /* the webhook outbox (outbox.c) */
    BP_SQL_OUTBOX_INSERT,
    BP_SQL_OUTBOX_DROP_PLACEHOLDER,
    BP_SQL_OUTBOX_CLAIM,
    BP_SQL_OUTBOX_CLAIMED,
    BP_SQL_OUTBOX_DELIVERED,
    BP_SQL_OUTBOX_RETRY,
    BP_SQL_OUTBOX_DEAD,
    BP_SQL_OUTBOX_RELEASE,
    BP_SQL_OUTBOX_RETRY_DEAD,
    BP_SQL_OUTBOX_COUNTS,
    BP_SQL_OUTBOX_LIST,
    /* the report's grouped counts (grouped.c), in the order of bp_group_dim */
    BP_SQL_GROUP_DAY_TYPE,
    BP_SQL_GROUP_DOMAIN_CATEGORY,
    BP_SQL_GROUP_RULE,
    BP_SQL_GROUP_BLOCKLIST,
    BP_SQL_GROUP_NEW_SUPPRESSIONS,
    BP_SQL_COUNT
} bp_sql_id;

/** The text of statement @p id. */
extern const char *const bp_sql[BP_SQL_COUNT];
/** PostgreSQL's text of statement @p id where it differs from bp_sql[id] (claiming outbox rows
 *  with FOR UPDATE SKIP LOCKED, which SQLite has no use for: its writer holds the database),
 *  else NULL. */
extern const char *const bp_sql_postgres[BP_SQL_COUNT];

/** The statements of bp_store_stats(), in the order of the result, with their dimension. */
typedef struct bp_sql_stats_query {
    bp_sql_id id;
    bp_stats_dim dim;
    int uses_since; /**< binds ?1 = filter.since */
} bp_sql_stats_query;
extern const bp_sql_stats_query bp_sql_stats[BP_STATS_DIM_LAST];

/**
 * The key of a stats row as the operator sees it: the day dimension counts by day number
 * (evidence_time / 86400, the same in both dialects), shown as YYYY-MM-DD; NULL is "unknown".
 * @param buf room for a day (at least 16 bytes)
 */
const char *bp_sql_stats_key(bp_stats_dim dim, const char *key, char *buf, size_t size);

/** Column types: how a backend reads and binds a column. */
typedef enum bp_sql_type { BP_SQL_TEXT, BP_SQL_INT } bp_sql_type;

/** One column's value: text (NULL for SQL NULL) or a number (is_null for SQL NULL). */
typedef struct bp_sql_value {
    const char *text;
    long long num;
    int is_null;
} bp_sql_value;

/**
 * A statement of an extension of the store (the DMARC tables: dmarc_store.c; the signal
 * tables: signals.c), in the dialect
 * of the statements above, run through the backend's run() (store_backend.h) by
 * bp_store_sql_run().  Backends prepare each once per connection, keyed by its address, so
 * it must be a static object.
 */
typedef struct bp_sql_stmt {
    const char *sql;          /**< ?1, ?2, ... parameters */
    const bp_sql_type *types; /**< of the result columns (NULL when none) */
    size_t n_cols;            /**< at most BP_SQL_STMT_MAX_COLS */
} bp_sql_stmt;
#define BP_SQL_STMT_MAX_COLS 40
/** Result columns a run of bp_sql_call may ask for (an outbox row and its ledger row). */
#define BP_SQL_RUN_MAX_COLS 64
/** Statements of extensions a connection keeps prepared at most (a backend's cache). */
#define BP_SQL_STMT_CACHE 48

/**
 * Run @p stmt on @p s's backend (store.c): what an extension of the store (dmarc_store.c,
 * signals.c) reads and writes with.  Writes only inside a transaction, as every write.
 * @return the backend's status.
 */
bp_status bp_store_sql_run(bp_store *s, const bp_sql_stmt *stmt, const bp_sql_value *v, size_t n, bp_sql_row_fn each,
                           void *user, long long *changes);
/** @return non-zero while @p s has a write transaction open (an extension's writes need one). */
int bp_store_sql_in_tx(const bp_store *s);

/** A text value (NULL: SQL NULL) and a number, for bp_sql_call's parameters. */
static inline bp_sql_value bp_sql_text(const char *s)
{
    bp_sql_value v = {s, 0, s == NULL};
    return v;
}
static inline bp_sql_value bp_sql_int(long long n)
{
    bp_sql_value v = {NULL, n, 0};
    return v;
}

/* Column lists: the SELECT of ledger rows (BP_SQL_LEDGER_FOR/PAGE/UNIT; INSERT writes the
 * same columns but the first, id), of the fold (BP_SQL_LEDGER_FOLD), of suppression rows, of
 * fold states.  The ledger's paired_with
 * column holds both sides of a pair (schema 5): on the second report the id of the row that
 * counts (bp_ledger_row.paired_with), on that row minus the id of its second report
 * (bp_ledger_row.reported_again); NULL on a row of no pair.  Its last five columns are
 * the signal fields (signals_sql.h). */
#define BP_SQL_LEDGER_N      37
#define BP_SQL_FOLD_N        16
#define BP_SQL_SUPPRESSION_N 11
#define BP_SQL_STATE_N       16
extern const bp_sql_type bp_sql_ledger_types[BP_SQL_LEDGER_N];
extern const bp_sql_type bp_sql_fold_types[BP_SQL_FOLD_N];
extern const bp_sql_type bp_sql_suppression_types[BP_SQL_SUPPRESSION_N];
extern const bp_sql_type bp_sql_state_types[BP_SQL_STATE_N];

/** The event rows naming a list or reputation system in a window (signals.h
 *  bp_store_signal_events()): ?1, ?2 the evidence times, ?3 a sending IP or NULL, ?4 a limit. */
extern const bp_sql_stmt bp_sql_ledger_named;

/** Values of ledger row @p r in BP_SQL_LEDGER order (v[0] is the id; INSERT binds v + 1). */
void bp_sql_ledger_values(const bp_ledger_row *r, bp_sql_value v[BP_SQL_LEDGER_N]);
/** The ledger row of a result row (strings borrowed from @p v). */
void bp_sql_ledger_row(bp_ledger_row *r, const bp_sql_value v[BP_SQL_LEDGER_N]);
/** The row derive() folds (store_backend.h ledger_fold), of address key @p address. */
void bp_sql_fold_row(bp_ledger_row *r, const bp_sql_value v[BP_SQL_FOLD_N], const char *address);

void bp_sql_suppression_values(const bp_suppression *r, bp_sql_value v[BP_SQL_SUPPRESSION_N]);
void bp_sql_suppression_row(bp_suppression *r, const bp_sql_value v[BP_SQL_SUPPRESSION_N]);

void bp_sql_state_values(const bp_fold_state *s, bp_sql_value v[BP_SQL_STATE_N]);
void bp_sql_state_row(bp_fold_state *s, const bp_sql_value v[BP_SQL_STATE_N]);

/** The columns of acct_position (BP_SQL_POSITION_GET/PUT): stream, file, inode, byte_offset,
 *  updated_at. */
#define BP_SQL_POSITION_N 5
extern const bp_sql_type bp_sql_position_types[BP_SQL_POSITION_N];
void bp_sql_position_values(const bp_acct_position *pos, bp_sql_value v[BP_SQL_POSITION_N]);
void bp_sql_position_row(bp_acct_position *pos, const bp_sql_value v[BP_SQL_POSITION_N]);
/* Columns of an outbox row (BP_SQL_OUTBOX_LIST; BP_SQL_OUTBOX_CLAIMED: then the ledger's). */
#define BP_SQL_OUTBOX_N 12
extern const bp_sql_type bp_sql_outbox_types[BP_SQL_OUTBOX_N];
/** The outbox row of a result row (strings borrowed from @p v). */
void bp_sql_outbox_row(bp_store_outbox_entry *r, const bp_sql_value v[BP_SQL_OUTBOX_N]);

/* bp_sql_row_fn, a result row of bp_sql_call or bp_sql_stmt: store_backend.h */

/**
 * One run of a statement through a backend's one runner, run() (store_backend.h): rows.c,
 * the outbox, the report's counts and the extensions (bp_store_sql_run()) need nothing else
 * from a backend.  @p params are bound from ?1 on; each result row is read as @p n_cols
 * columns of @p types (at most BP_SQL_RUN_MAX_COLS) and handed to @p row (NULL: a statement
 * whose rows, if any, are not wanted).
 */
typedef struct bp_sql_call {
    bp_sql_id id;
    const bp_sql_stmt *stmt; /**< an extension's statement, run instead of @p id (NULL: @p id) */
    const bp_sql_value *params;
    size_t n_params;
    const bp_sql_type *types;
    size_t n_cols;
    bp_sql_row_fn row;
    void *user;
    const char *what;  /**< for the error message: "claiming outbox rows" */
    long long changed; /**< out: rows the statement changed (INSERT, UPDATE, DELETE) */
    long long rows;    /**< out: result rows handed to @p row */
} bp_sql_call;

/**
 * What a row function (bp_sql_row_fn) of rows.c, outbox.c or grouped.c hands each result row
 * on to, made into a row of store.h: the caller's callback, one of these, with its @p user
 * pointer, and what the walk needs besides.
 */
typedef struct bp_sql_walk {
    union {
        bp_ledger_cb ledger;
        bp_suppression_cb suppression;
        bp_fold_state_cb state;
        bp_acct_position_cb position;
        bp_stats_cb stats;
        bp_group_cb group;
        bp_store_outbox_count_cb outbox_count;
        bp_store_outbox_entry_cb outbox_entry;
    } cb;
    void *user;
    const char *address; /**< the fold's rows: of this address key */
    int dim;             /**< a bp_stats_dim or bp_group_dim */
    int stopped;         /**< the callback asked to stop */
} bp_sql_walk;

/** A call of statement @p id with @p n_params @p params whose rows, @p n_cols columns of
 *  @p types, go to @p row with @p user (NULL, 0, NULL: a statement without rows wanted). */
static inline bp_sql_call bp_sql_read(bp_sql_id id, const bp_sql_value *params, size_t n_params,
                                      const bp_sql_type *types, size_t n_cols, bp_sql_row_fn row, void *user,
                                      const char *what)
{
    bp_sql_call c = {id, NULL, params, n_params, types, n_cols, row, user, what, 0, 0};
    return c;
}

/** A list of strings read from the first column of a statement's rows (malloc'ed). */
typedef struct bp_sql_text_list {
    char **v;
    size_t n, cap;
    int nomem;
} bp_sql_text_list;
/**
 * Run statement @p id (no parameters) through backend runner @p run of handle @p h and add
 * the first column of every row that is not NULL to @p list (the keys of a migration).
 * @return the runner's status, or BP_ERR_NOMEM (the list keeps what it had)
 */
bp_status bp_sql_text_list_read(bp_status (*run)(void *h, bp_sql_call *c), void *h, bp_sql_id id,
                                bp_sql_text_list *list, const char *what);
void bp_sql_text_list_free(bp_sql_text_list *list);

/**
 * A backend's schema, for the migrations both backends run the same way: entry i of @p steps
 * brings the schema from version i to i+1 in the backend's dialect, and entry i of @p code
 * (NULL: none) runs after every step's SQL; @p exec runs SQL without rows through handle h,
 * @p run is the backend's runner (store_backend.h).
 */
typedef struct bp_sql_schema {
    const char *const *steps;          /**< BP_STORE_SCHEMA_VERSION entries */
    bp_status (*const *code)(void *h); /**< BP_STORE_SCHEMA_VERSION entries */
    bp_status (*exec)(void *h, const char *sql, const char *doing);
    bp_status (*run)(void *h, struct bp_sql_call *call);
} bp_sql_schema;
/* the named steps that have their own entries are steps of this schema */
_Static_assert(BP_STORE_SCHEMA_IDENTITY >= 1 && BP_STORE_SCHEMA_IDENTITY <= BP_STORE_SCHEMA_VERSION,
               "the identity step is a step of this schema");
_Static_assert(BP_STORE_SCHEMA_DMARC >= 1 && BP_STORE_SCHEMA_DMARC <= BP_STORE_SCHEMA_VERSION,
               "the DMARC step is a step of this schema");
_Static_assert(BP_STORE_SCHEMA_SIGNALS >= 1 && BP_STORE_SCHEMA_SIGNALS <= BP_STORE_SCHEMA_VERSION,
               "the signals step is a step of this schema");

/**
 * Judge schema version @p version of a database (-1: it has tables that are not ours) and
 * keep it in @p head: BP_OK when this program can use it (after migrating it, when it is
 * older and @p read_only is 0); otherwise BP_ERR_NOT_FOUND (an empty database, for a reader)
 * or BP_ERR_STORE, with the reason in head->error after @p where (a path, or "").
 */
bp_status bp_sql_schema_check(bp_backend_head *head, const char *where, int version, int read_only);

/**
 * Bring the schema of handle @p h (a bp_backend_head first) from @p version to
 * BP_STORE_SCHEMA_VERSION, inside the caller's transaction: every step's SQL, then every
 * step's code in step order (it runs this program's statements, which read the columns of
 * every step: a later step's too), then the version row.
 */
bp_status bp_sql_schema_migrate(void *h, const bp_sql_schema *schema, int version);

/**
 * The end of the identity step (BP_STORE_SCHEMA_IDENTITY) in both backends, once every row
 * has its address key, in the step's transaction: the keys to pair and derive again
 * (BP_SQL_MIGRATE_KEYS), the merged spellings' rows dropped (BP_SQL_MIGRATE_DROP_MERGED),
 * @p index_sql (the backend's unique index on the suppressions' key), then each of those keys
 * derived again by store.c (head->hooks).
 */
bp_status bp_sql_identity_rederive(void *h, const bp_sql_schema *schema, const char *index_sql);

/** Values of BP_SQL_MARK: ?1 fingerprint, ?2 state, ?3.. the facts, ?9 now. */
#define BP_SQL_MARK_N 9
void bp_sql_mark_values(const char *fingerprint, const bp_unit_facts *facts, int state, long long now,
                        bp_sql_value v[BP_SQL_MARK_N]);

/**
 * Migration 2 -> 3, after the backend added the processed columns original_message_id,
 * reporting_mta, envid and arrival_date (in its own dialect): each unit's facts that all its
 * event rows share move to its processed row, and those rows keep NULL there.  In the
 * migration's transaction: interrupted, it is all undone, and runs again at the next open.
 */
#define BP_SQL_MIGRATE_FACTS                                                                                                                                                                                                                                                                                   \
    "UPDATE processed SET message_id = f.message_id, source = f.source, "                                                                                                                                                                                                                                      \
    "original_message_id = f.original_message_id, reporting_mta = f.reporting_mta, envid = f.envid, "                                                                                                                                                                                                          \
    "arrival_date = f.arrival_date FROM (SELECT fingerprint, " BP_SQL_SHARED("message_id") ", " BP_SQL_SHARED(                                                                                                                                                                                                 \
        "source") ", " BP_SQL_SHARED("original_message_id") ", " BP_SQL_SHARED("reporting_mta") ", " BP_SQL_SHARED("e"                                                                                                                                                                                         \
                                                                                                                   "n"                                                                                                                                                                                         \
                                                                                                                   "v"                                                                                                                                                                                         \
                                                                                                                   "i"                                                                                                                                                                                         \
                                                                                                                   "d") ", " BP_SQL_SHARED("arrival_date") " FROM ledger WHERE kind = 'event' "                                                                                                                \
                                                                                                                                                           "AND fingerprint IS NOT NULL GROUP BY fingerprint) AS f WHERE f.fingerprint = processed.fingerprint;"                                               \
                                                                                                                                                           "UPDATE ledger SET " BP_SQL_UNSHARE("message_id") ", " BP_SQL_UNSHARE("source") ", " BP_SQL_UNSHARE("original_message_id") ", " BP_SQL_UNSHARE(     \
                                                                                                                                                               "reporting_mta") ", " BP_SQL_UNSHARE("envid") ", " BP_SQL_UNSHARE("arrival_date") " FROM processed p WHERE p.fingerprint = ledger.fingerprint " \
                                                                                                                                                                                                                                                 "AND ledger.kind = 'event';"
/**
 * Migration 3 -> 4 (docs/store.md "Identity", "Two channels"), once the backend has filled
 * ledger.address_key and suppressions.address_key.  BP_SQL_MERGED_KEYS: the keys whose rows
 * or suppression rows have more than one spelling; their suppression rows and fold states are
 * dropped (BP_SQL_MIGRATE_DROP_MERGED, one pass each, before suppressions has an index on the
 * key).  BP_SQL_MIGRATE_KEYS: the keys to pair and derive again, those merged and those whose
 * bounces both channels reported.
 */
#define BP_SQL_MERGED_KEYS                                                                                             \
    "SELECT address_key FROM ledger WHERE address_key IS NOT NULL GROUP BY address_key "                               \
    "HAVING count(DISTINCT recipient) > 1 UNION "                                                                      \
    "SELECT address_key FROM suppressions WHERE address_key IS NOT NULL GROUP BY address_key HAVING count(*) > 1"
#define BP_SQL_MIGRATE_DROP_MERGED                                                                                     \
    "DELETE FROM suppressions WHERE address_key IN (" BP_SQL_MERGED_KEYS ");"                                          \
    "DELETE FROM derive_state WHERE address_key IN (" BP_SQL_MERGED_KEYS ");"
#define BP_SQL_MIGRATE_KEYS_TEXT                                                                                       \
    BP_SQL_MERGED_KEYS " UNION SELECT address_key FROM ledger WHERE address_key IS NOT NULL AND kind = 'event' "       \
                       "AND type = 'bounce' GROUP BY address_key HAVING min(" BP_SQL_ACCT_ROW(                         \
                           "") ") = 0 AND max(" BP_SQL_ACCT_ROW("") ") = 1 ORDER BY 1"

/* 1 for a row of the accounting channel (store.h BP_UNIT_ACCT_PREFIX), else 0; @p t the
 * table's alias with its dot, or "" */
#define BP_SQL_ACCT_ROW(t) "(CASE WHEN substr(" t "fingerprint, 1, 5) = '" BP_UNIT_ACCT_PREFIX "' THEN 1 ELSE 0 END)"

/* the value all rows of a group have (none NULL, all equal), else NULL */
#define BP_SQL_SHARED(c) "CASE WHEN count(*) = count(" c ") AND min(" c ") = max(" c ") THEN min(" c ") END AS " c
/* NULL where the processed row holds the value */
#define BP_SQL_UNSHARE(c) c " = CASE WHEN ledger." c " = p." c " THEN NULL ELSE ledger." c " END"

#endif
