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

struct bp_sql_call; /* sql.h */
struct bp_sql_stmt;
struct bp_sql_value;
/** A result row of a bp_sql_stmt or bp_sql_call: its columns as their types say (sql.h). */
typedef int (*bp_sql_row_fn)(void *user, const struct bp_sql_value *v);

typedef struct bp_store_backend {
    const char *name;
    /** Open or create, migrate (with @p hooks); *handle receives the backend's state. */
    bp_status (*open)(const char *location, const bp_store_options *opts, const bp_store_hooks *hooks, void **handle,
                      char **error);
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
    /** Rows of address key @p key ordered by evidence_time, then id. */
    bp_status (*ledger_for)(void *h, const char *key, bp_ledger_cb cb, void *user);
    /**
     * What derive() folds, and what pairing compares (store.c pair_report): the rows of address
     * key @p key that sort after (@p after_time, @p after_id) in (evidence_time, id) order, with
     * only id, kind, evidence_time, note, paired_with, reported_again and of the event type,
     * action, category, feedback_type, recipient, status, smtp_code, final, envid (the row's
     * own: NULL when its unit's processed row holds it), job_id and fingerprint filled in (the
     * rest zero).  Inside a write transaction it first locks the address, as ledger_for does.
     */
    bp_status (*ledger_fold)(void *h, const char *key, long long after_time, long long after_id, bp_ledger_cb cb,
                             void *user);
    /** The recipient of the first row (lowest id) of address key @p key, into @p buf (cut to
     *  @p size - 1 bytes); BP_ERR_NOT_FOUND when it has none. */
    bp_status (*first_spelling)(void *h, const char *key, char *buf, size_t size);
    /** The envelope id the processed row of unit @p fingerprint holds (the unit's shared
     *  facts, schema 3), into @p buf (cut to @p size - 1 bytes); BP_ERR_NOT_FOUND when none. */
    bp_status (*unit_envid)(void *h, const char *fingerprint, char *buf, size_t size);
    /** Mark row @p id as a second report of the failure of row @p first, and @p first as
     *  reported again by @p id (in a transaction). */
    bp_status (*ledger_pair)(void *h, long long id, long long first);
    /** Undo the pair of row @p id (both rows' marks) when the two rows' actions now differ
     *  (after ledger_reclassify). */
    bp_status (*ledger_unpair)(void *h, long long id);
    /** At most @p limit rows with ids after @p after_id in id order (@p events_only: kind "event"). */
    bp_status (*ledger_page)(void *h, long long after_id, long long limit, int events_only, bp_ledger_cb cb,
                             void *user);
    /** The event rows of the units whose first row's id is in (@p after_id, @p last_id], unit by
     *  unit in the order of their first rows, each unit's in id order (bp_store_ledger_units). */
    bp_status (*ledger_units)(void *h, long long after_id, long long last_id, bp_ledger_cb cb, void *user);
    bp_status (*ledger_reclassify)(void *h, long long id, const char *category, const char *rule, bp_action action,
                                   const char *blocklist);

    /** The row of address key @p key. */
    bp_status (*suppression_get)(void *h, const char *key, bp_suppression_cb cb, void *user);
    /** Insert the row of row->address_key, or replace everything of it but its address (the
     *  spelling shown, kept from its insertion). */
    bp_status (*suppression_put)(void *h, const bp_suppression *row);
    bp_status (*suppression_delete)(void *h, const char *key);
    bp_status (*suppression_list)(void *h, const bp_store_filter *filter, bp_suppression_cb cb, void *user);

    bp_status (*stats)(void *h, const bp_store_filter *filter, bp_stats_cb cb, void *user);

    /** The fold state of address key @p key (table derive_state): cb called once, or
     *  BP_ERR_NOT_FOUND.  Inside a write transaction it first locks the address, as ledger_for does. */
    bp_status (*state_get)(void *h, const char *key, bp_fold_state_cb cb, void *user);
    /** Insert or replace the fold state of state->address (a key). */
    bp_status (*state_put)(void *h, const bp_fold_state *state);
    /** Forget the fold state of address key @p key (under its lock); no row is not an error. */
    bp_status (*state_delete)(void *h, const char *key);

    /**
     * Run a statement of an extension of the store (sql.h bp_sql_stmt: dmarc_store.c,
     * signals.c), prepared
     * once per connection (keyed by @p stmt's address), with @p n values bound from ?1 on;
     * each result row goes to @p each (NULL: none are expected).
     * @param changes receives the rows the statement changed (may be NULL)
     */
    bp_status (*run_stmt)(void *h, const struct bp_sql_stmt *stmt, const struct bp_sql_value *v, size_t n,
                          bp_sql_row_fn each, void *user, long long *changes);
    /** The acct --follow position of @p stream (table acct_position): cb once, or BP_ERR_NOT_FOUND. */
    bp_status (*position_get)(void *h, const char *stream, bp_acct_position_cb cb, void *user);
    /** Insert or replace the position of pos->stream. */
    bp_status (*position_put)(void *h, const bp_acct_position *pos);

    /** Run one shared statement of sql.c as @p call says (sql.h bp_sql_call): what the outbox
     *  (outbox.c) and the report's counts (grouped.c) need, nothing backend-specific. */
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
