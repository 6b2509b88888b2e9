/*
 * fold.h - the derivation fold of one address (internal to src/store/): how its ledger rows,
 * taken in (evidence_time, id) order, become its suppression row.  Pure: no store, no
 * database, no clock; store.c feeds it rows and saves what it returns, tests/unit/test_fold.c
 * feeds it tables.  The rules are those of docs/store.md ("Derivation"):
 *
 *  - a suppressing event, an import or a manual row suppresses (count, first and last seen);
 *  - soft events are counted; soft_count of them on at least soft_days distinct UTC days
 *    within soft_window days of the newest suppress (kind soft-threshold);
 *  - a delivery, a removal or a suppression empties the soft count;
 *  - a removal lifts the suppression; evidence dated at or before it never suppresses again;
 *  - a second report of a failure another row counts (paired_with) means nothing.
 *
 * The fold's state (bp_fold) is what the next rows need besides the suppression row: the soft
 * events counted and the keys of the last row folded and of the suppression in force.  It can
 * be saved as a bp_fold_state (table derive_state) and loaded again.
 *
 * Ownership: a bp_fold owns its strings and soft times (bp_fold_free() releases them); a
 * bp_fact borrows its reason from the row it was made of; bp_fold_state strings are borrowed.
 */
#ifndef BOUNCEPIPE_STORE_FOLD_H
#define BOUNCEPIPE_STORE_FOLD_H

#include <stddef.h>

#include "bouncepipe/store.h"

#define BP_SECONDS_PER_DAY 86400LL

/** The thresholds the fold is run with (bp_store_options' soft_*). */
typedef struct bp_fold_policy {
    unsigned soft_count, soft_days, soft_window;
} bp_fold_policy;

/** What the fold does with one ledger row. */
typedef enum bp_fact_what {
    BP_FACT_NOTHING,
    BP_FACT_SUPPRESS,
    BP_FACT_SOFT,
    BP_FACT_RESET,
    BP_FACT_REMOVAL
} bp_fact_what;

/** The meaning of one ledger row for the fold. */
typedef struct bp_fact {
    bp_fact_what what;
    const char *kind;   /**< BP_KIND_* for BP_FACT_SUPPRESS (static) */
    const char *reason; /**< borrowed from the row */
    long long t, id;    /**< the row's key */
} bp_fact;

/** The state of the fold of one address. */
typedef struct bp_fold {
    int exists; /**< ever suppressed (a suppression row should exist) */
    int active; /**< exists && !lifted */
    char *reason, *kind, *lift_reason;
    long long first, last, count;
    int lifted;
    long long lifted_at;
    long long active_time, active_id; /**< key of the row that began the suppression in force */
    long long *soft;                  /**< times of the soft events counted now, oldest first */
    size_t n_soft, cap_soft;
    long long last_time, last_id; /**< key of the last row folded */
    size_t folded;                /**< rows folded since the fold was loaded or started */
    int nomem;                    /**< an allocation failed: the state is not to be used */
} bp_fold;

/**
 * The fold of one address up to a row, as the backend stores it (table derive_state).
 * Strings are text in fold.c's formats; the backend only stores them.
 */
typedef struct bp_fold_state {
    const char *address;
    long long last_time, last_id; /**< (evidence_time, id) of the last row folded */
    const char *policy;           /**< what the fold depends on besides the rows (bp_fold_policy_text) */
    int suppressed;               /**< a suppression row exists (ever suppressed) */
    const char *reason;
    const char *source_kind;
    long long first_seen, last_seen, count;
    int lifted;
    const char *lift_reason;
    long long lifted_at;
    long long active_time, active_id; /**< key of the row that began the suppression in force (not lifted) */
    const char *soft;                 /**< times of the soft events counted (bp_fold_soft_text) */
} bp_fold_state;

/** @return what @p r means to the fold (its reason points into @p r). */
bp_fact bp_fact_of(const bp_ledger_row *r);

/** @return non-zero when (t1, id1) sorts after (t2, id2) in (evidence_time, id) order. */
int bp_fold_key_after(long long t1, long long id1, long long t2, long long id2);

/** Release what @p d owns and zero it (a zeroed bp_fold is an empty fold). */
void bp_fold_free(bp_fold *d);

/** Fold one fact (facts come in key order) into @p d; on allocation failure sets d->nomem. */
void bp_fold_fact(const bp_fold_policy *o, bp_fold *d, const bp_fact *f);

/** Fold ledger row @p r: its fact, then the key of the last row folded. @return d->nomem. */
int bp_fold_row(const bp_fold_policy *o, bp_fold *d, const bp_ledger_row *r);

/**
 * A row that sorts at or before the last row folded, folded late into a fold that has been
 * suppressed since before it (the caller checks that): a suppressing row only adds to count
 * and last_seen; anything else changes nothing.
 */
void bp_fold_late(bp_fold *d, bp_fact_what what, long long t);

/** The suppression row the fold makes of address key @p address in @p domain (strings borrowed from @p d;
 *  address_key is @p address too). */
bp_suppression bp_fold_suppression(const bp_fold *d, const char *address, const char *domain);

/** Write the state's format and @p o into @p buf ("1:5:3:30"): a state folded otherwise is not used. */
void bp_fold_policy_text(const bp_fold_policy *o, char *buf, size_t size);

/** @return the soft times as text (first time, then differences; "" none), malloc'ed; NULL out of memory. */
char *bp_fold_soft_text(const bp_fold *d);

/** Parse bp_fold_soft_text()'s format into d->soft. @return 0, or -1 when malformed (or d->nomem). */
int bp_fold_soft_parse(bp_fold *d, const char *text);

/**
 * Load a saved state into the empty fold @p d.
 * @param policy this run's bp_fold_policy_text()
 * @return 1 when the state is usable (same policy and format, well formed), 0 when it must be
 *         folded again from the first row (d may then hold part of it: free it).
 */
int bp_fold_load(bp_fold *d, const bp_fold_state *st, const char *policy);

/** Describe @p d as a state to save for @p address (strings borrowed; @p soft from bp_fold_soft_text()). */
bp_fold_state bp_fold_to_state(const bp_fold *d, const char *address, const char *policy, const char *soft);

#endif
