/*
 * store_backend.h - what a storage backend provides to store.c (internal to src/store/).
 *
 * A backend stores rows and answers queries; it decides nothing.  All semantics
 * (idempotency, derivation of the suppression list, soft-bounce escalation, removals) are in
 * store.c, so a second backend (PostgreSQL) only has to store and find the same rows: it
 * runs the statements of sql.c through one runner, run(), and rows.c makes the store's rows
 * of them, the same for every backend.
 *
 * Contract of every function: return BP_OK or a bp_status (BP_ERR_BUSY and BP_ERR_IO for
 * transient failures, BP_ERR_STORE otherwise) and leave a message in the handle's
 * bp_backend_head.  Writes
 * are only called between begin and commit.  Rows given to callbacks live until the callback
 * returns; a non-zero callback result stops the iteration and the function returns BP_OK.
 */
#ifndef BOUNCEPIPE_STORE_BACKEND_H
#define BOUNCEPIPE_STORE_BACKEND_H

#include "bouncepipe/store.h"
#include "fold.h"

/** Processed-unit states (table "processed"); bp_store_seen() reports these numbers. */
#define BP_SEEN_UNKNOWN      0
#define BP_SEEN_RECORDED     1
#define BP_SEEN_UNRECOGNIZED 2 /**< nothing recognised (quarantined): a later run may retry it */

/**
 * What a unit's event rows share, kept once in its processed row (schema 3): a value is
 * non-NULL only when every event row of the unit has it, and those rows then store NULL in
 * its column (readers get it back through the join of sql.c).
 */
typedef struct bp_unit_facts {
    const char *message_id;
    const char *source;
    const char *original_message_id;
    const char *reporting_mta;
    const char *envid;
    const char *arrival_date;
} bp_unit_facts;

typedef int (*bp_fold_state_cb)(void *user, const bp_fold_state *state);

/**
 * What store.c lends a backend's migrations (schema 5, docs/store.md "Identity"): the key
 * function (the PostgreSQL module does not link it) and the derivation, run through the
 * handle being migrated, inside the migration's transaction, for an address whose spellings
 * were merged.
 */
typedef struct bp_store_hooks {
    void *ctx;
    /** bp_address_key(): malloc'ed, NULL out of memory. */
    char *(*address_key)(const char *address);
    /** Derive the suppression row and fold state of key @p key through backend handle @p h. */
    bp_status (*rederive)(void *ctx, void *h, const char *key);
} bp_store_hooks;

/**
 * What every backend's handle begins with (its first member): store.c reads the last error
 * and the schema version here, without a call into the backend, and lends its hooks here.
 */
typedef struct bp_backend_head {
    char error[512];      /**< the last failure's message, "" when none */
    int version;          /**< the database's schema version, once opened */
    bp_store_hooks hooks; /**< store.c's, for the migrations */
} bp_backend_head;

struct bp_sql_call; /* sql.h */
struct bp_sql_stmt;
struct bp_sql_value;
/** A result row of a bp_sql_stmt or bp_sql_call: its columns as their types say (sql.h). */
typedef int (*bp_sql_row_fn)(void *user, const struct bp_sql_value *v);

typedef struct bp_store_backend {
    const char *name;
    /** Open or create, migrate (with @p hooks); *handle receives the backend's state, which
     *  begins with a bp_backend_head, failed or not (a failure's reason is in it, and the
     *  caller closes it), or NULL when there was no memory for it. */
    bp_status (*open)(const char *location, const bp_store_options *opts, const bp_store_hooks *hooks, void **handle);
    void (*close)(void *h);
    bp_status (*begin)(void *h);
    bp_status (*commit)(void *h);
    void (*rollback)(void *h);

    /** The state of unit @p fingerprint (BP_SEEN_*); inside a write transaction a backend
     *  that shares the database with other hosts claims the unit first (PostgreSQL). */
    bp_status (*seen)(void *h, const char *fingerprint, int *state);
    /** Insert a row; *id receives its id. */
    bp_status (*ledger_insert)(void *h, const bp_ledger_row *row, long long *id);
    /**
     * Inside a write transaction, lock address key @p key before the store reads what it
     * derives from it (rows.c: ledger_for, ledger_fold, suppression_get, state_get,
     * state_delete); outside one, nothing.  NULL for a backend whose writer holds the whole
     * database (SQLite).
     */
    bp_status (*lock)(void *h, const char *key);
    /**
     * The one runner: a statement of sql.c, or of an extension of the store (call->stmt:
     * dmarc_store.c, signals.c, prepared once per connection, keyed by its address), run as
     * @p call says (sql.h bp_sql_call).  Every read and write of rows.c, outbox.c, grouped.c
     * and the extensions goes through it.
     */
    bp_status (*run)(void *h, struct bp_sql_call *call);
} bp_store_backend;

/** The backend and its handle of @p s, for outbox.c and grouped.c (store.c). */
const bp_store_backend *bp_store_backend_of(bp_store *s, void **handle);
/** Note the failure of a store function done above the backend (bp_store_last_error()). */
void bp_store_set_error(bp_store *s, const char *message);

extern const bp_store_backend bp_store_backend_sqlite;
#ifdef BP_HAVE_POSTGRES
/* postgres.c, built as the module bouncepipe-postgres.so and found with dlsym() by store.c */
extern const bp_store_backend bp_store_backend_postgres;
#endif

#endif
