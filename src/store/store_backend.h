/*
 * store_backend.h - what a storage backend provides to store.c (internal to src/store/).
 *
 * A backend stores rows and answers queries; it decides nothing.  All semantics
 * (idempotency, derivation of the suppression list, soft-bounce escalation, removals) are in
 * store.c, so a second backend (PostgreSQL) only has to store and find the same rows.
 *
 * Contract of every function: return BP_OK or a bp_status (BP_ERR_BUSY and BP_ERR_IO for
 * transient failures, BP_ERR_STORE otherwise) and leave a message for last_error().  Writes
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

struct bp_sql_stmt;
struct bp_sql_value;
/** A result row of a bp_sql_stmt: its columns as the statement's types say (sql.h). */
typedef int (*bp_sql_row_fn)(void *user, const struct bp_sql_value *v);

typedef struct bp_store_backend {
    const char *name;
    /** Open or create, migrate; *handle receives the backend's state. */
    bp_status (*open)(const char *location, const bp_store_options *opts, void **handle, char **error);
    void (*close)(void *h);
    const char *(*last_error)(const void *h);
    int (*schema_version)(const void *h);
    bp_status (*begin)(void *h);
    bp_status (*commit)(void *h);
    void (*rollback)(void *h);

    bp_status (*seen)(void *h, const char *fingerprint, int *state);
    /** Insert or update the processed row of unit @p fingerprint with @p state and its facts. */
    bp_status (*mark)(void *h, const char *fingerprint, const bp_unit_facts *facts, int state, long long now);
    /** Delete the unrecognized placeholder rows of @p fingerprint. */
    bp_status (*drop_placeholder)(void *h, const char *fingerprint);

    /** Insert a row; *id receives its id. */
    bp_status (*ledger_insert)(void *h, const bp_ledger_row *row, long long *id);
    /** Rows of @p address ordered by evidence_time, then id. */
    bp_status (*ledger_for)(void *h, const char *address, bp_ledger_cb cb, void *user);
    /**
     * What derive() folds: the rows of @p address that sort after (@p after_time, @p after_id)
     * in (evidence_time, id) order, with only id, kind, evidence_time, event.type,
     * event.action, event.category, event.feedback_type and note filled in (the rest zero).
     * Inside a write transaction it first locks the address, as ledger_for does.
     */
    bp_status (*ledger_fold)(void *h, const char *address, long long after_time, long long after_id, bp_ledger_cb cb,
                             void *user);
    /** At most @p limit rows with ids after @p after_id in id order (@p events_only: kind "event"). */
    bp_status (*ledger_page)(void *h, long long after_id, long long limit, int events_only, bp_ledger_cb cb,
                             void *user);
    /** The event rows of the units whose first row's id is in (@p after_id, @p last_id], unit by
     *  unit in the order of their first rows, each unit's in id order (bp_store_ledger_units). */
    bp_status (*ledger_units)(void *h, long long after_id, long long last_id, bp_ledger_cb cb, void *user);
    bp_status (*ledger_reclassify)(void *h, long long id, const char *category, const char *rule, bp_action action,
                                   const char *blocklist);

    bp_status (*suppression_get)(void *h, const char *address, bp_suppression_cb cb, void *user);
    /** Insert or replace the row of row->address. */
    bp_status (*suppression_put)(void *h, const bp_suppression *row);
    bp_status (*suppression_delete)(void *h, const char *address);
    bp_status (*suppression_list)(void *h, const bp_store_filter *filter, bp_suppression_cb cb, void *user);

    bp_status (*stats)(void *h, const bp_store_filter *filter, bp_stats_cb cb, void *user);

    /** The fold state of @p address (table derive_state): cb called once, or BP_ERR_NOT_FOUND.
     *  Inside a write transaction it first locks the address, as ledger_for does. */
    bp_status (*state_get)(void *h, const char *address, bp_fold_state_cb cb, void *user);
    /** Insert or replace the fold state of state->address. */
    bp_status (*state_put)(void *h, const bp_fold_state *state);
    /** Forget the fold state of @p address (under its lock); no row is not an error. */
    bp_status (*state_delete)(void *h, const char *address);

    /**
     * Run a statement of an extension of the store (sql.h bp_sql_stmt: signals.c), prepared
     * once per connection (keyed by @p stmt's address), with @p n values bound from ?1 on;
     * each result row goes to @p each (NULL: none are expected).
     * @param changes receives the rows the statement changed (may be NULL)
     */
    bp_status (*run)(void *h, const struct bp_sql_stmt *stmt, const struct bp_sql_value *v, size_t n,
                     bp_sql_row_fn each, void *user, long long *changes);
} bp_store_backend;

extern const bp_store_backend bp_store_backend_sqlite;
#ifdef BP_HAVE_POSTGRES
/* postgres.c, built as the module bouncepipe-postgres.so and found with dlsym() by store.c */
extern const bp_store_backend bp_store_backend_postgres;
#endif

#endif
