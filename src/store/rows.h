/*
 * rows.h - the rows store.c reads and writes, through a backend's one runner (internal to
 * src/store/).
 *
 * Every statement of these functions is one of sql.c's, the same on SQLite and PostgreSQL, so
 * they are written once, on top of the backend's run() (store_backend.h): a backend prepares,
 * binds and steps, these functions say which statement, with which values, and turn its
 * result rows into the rows of store.h.  Where a backend has to lock an address key before
 * the store reads what it derives from (PostgreSQL: several hosts write one list), they call
 * its lock() first.
 *
 * Contract of every function: BP_OK or the backend's status (BP_ERR_NOT_FOUND where a single
 * row was asked for and there is none); writes only inside a transaction; rows lent to the
 * callback until it returns, a non-zero callback result ends the walk with BP_OK.
 */
#ifndef BOUNCEPIPE_STORE_ROWS_H
#define BOUNCEPIPE_STORE_ROWS_H

#include "store_backend.h"

/** Insert or update the processed row of unit @p fingerprint with @p state and its facts. */
bp_status bp_rows_mark(const bp_store_backend *be, void *h, const char *fingerprint, const bp_unit_facts *facts,
                       int state, long long now);
/** Delete the unrecognized placeholder rows of @p fingerprint. */
bp_status bp_rows_drop_placeholder(const bp_store_backend *be, void *h, const char *fingerprint);

/** Rows of address key @p key ordered by evidence_time, then id (under the key's lock). */
bp_status bp_rows_ledger_for(const bp_store_backend *be, void *h, const char *key, bp_ledger_cb cb, void *user);
/**
 * What derive() folds, and what pairing compares (store.c pair_report): the rows of address
 * key @p key that sort after (@p after_time, @p after_id) in (evidence_time, id) order, with
 * only id, kind, evidence_time, note, paired_with, reported_again and of the event type,
 * action, category, feedback_type, recipient, status, smtp_code, final, envid (the row's
 * own: NULL when its unit's processed row holds it), job_id and fingerprint filled in (the
 * rest zero).  Under the key's lock, as bp_rows_ledger_for().
 */
bp_status bp_rows_ledger_fold(const bp_store_backend *be, void *h, const char *key, long long after_time,
                              long long after_id, bp_ledger_cb cb, void *user);
/** The recipient of the first row of @p key into @p buf (cut to @p size - 1); BP_ERR_NOT_FOUND. */
bp_status bp_rows_first_spelling(const bp_store_backend *be, void *h, const char *key, char *buf, size_t size);
/** The envelope id of unit @p fingerprint's processed row into @p buf; BP_ERR_NOT_FOUND. */
bp_status bp_rows_unit_envid(const bp_store_backend *be, void *h, const char *fingerprint, char *buf, size_t size);
/** Row @p id is a second report of the failure of row @p first. */
bp_status bp_rows_ledger_pair(const bp_store_backend *be, void *h, long long id, long long first);
/** Undo the pair of row @p id when the two rows' actions now differ. */
bp_status bp_rows_ledger_unpair(const bp_store_backend *be, void *h, long long id);
/** At most @p limit rows after @p after_id in id order (@p events_only: kind "event"). */
bp_status bp_rows_ledger_page(const bp_store_backend *be, void *h, long long after_id, long long limit, int events_only,
                              bp_ledger_cb cb, void *user);
/** The event rows of the units whose first row's id is in (@p after_id, @p last_id]. */
bp_status bp_rows_ledger_units(const bp_store_backend *be, void *h, long long after_id, long long last_id,
                               bp_ledger_cb cb, void *user);
bp_status bp_rows_ledger_reclassify(const bp_store_backend *be, void *h, long long id, const char *category,
                                    const char *rule, bp_action action, const char *blocklist);

/** The suppression row of @p key (under the key's lock); BP_ERR_NOT_FOUND. */
bp_status bp_rows_suppression_get(const bp_store_backend *be, void *h, const char *key, bp_suppression_cb cb,
                                  void *user);
bp_status bp_rows_suppression_put(const bp_store_backend *be, void *h, const bp_suppression *row);
bp_status bp_rows_suppression_delete(const bp_store_backend *be, void *h, const char *key);
/** The suppression rows @p filter selects (NULL: all). */
bp_status bp_rows_suppression_list(const bp_store_backend *be, void *h, const bp_store_filter *filter,
                                   bp_suppression_cb cb, void *user);
/** The counts of bp_store_stats() (@p filter NULL: all). */
bp_status bp_rows_stats(const bp_store_backend *be, void *h, const bp_store_filter *filter, bp_stats_cb cb, void *user);

/** The fold state of @p key (under the key's lock): cb once, or BP_ERR_NOT_FOUND. */
bp_status bp_rows_state_get(const bp_store_backend *be, void *h, const char *key, bp_fold_state_cb cb, void *user);
bp_status bp_rows_state_put(const bp_store_backend *be, void *h, const bp_fold_state *state);
/** Forget the fold state of @p key (under its lock); no row is not an error. */
bp_status bp_rows_state_delete(const bp_store_backend *be, void *h, const char *key);

/** The acct --follow position of @p stream: cb once, or BP_ERR_NOT_FOUND. */
bp_status bp_rows_position_get(const bp_store_backend *be, void *h, const char *stream, bp_acct_position_cb cb,
                               void *user);
bp_status bp_rows_position_put(const bp_store_backend *be, void *h, const bp_acct_position *pos);

#endif
