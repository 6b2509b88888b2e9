/*
 * signals_sql.h - the signal tables of the store (internal to src/store/; docs/signals.md,
 * docs/store.md schema version 8, BP_STORE_SCHEMA_SIGNALS): their DDL in each backend's
 * dialect, which sqlite.c and postgres.c run as their migration 6 -> 7, and what store.c
 * calls to keep the counters (signals.c).
 *
 *   ledger          five columns: sending_ip, vmta, stream, receiver, listed (an event's
 *                   signal fields), and a partial index of the rows that name a block list
 *                   or reputation system, by time (`signals --events`)
 *   signal_counts   per UTC hour and (sending IP, VMTA, stream, receiver, block list): the
 *                   accounting counts no ledger row records (delivered, deferred: `acct`'s d
 *                   and t records) and the counts of the ledger's events (ev_delivered,
 *                   ev_deferred, bounced, hard, complaints), kept by every write of the
 *                   ledger in the same transaction; '' stands for unknown (a key column
 *                   holds no NULL, so that the primary key is the upsert's conflict target)
 *   signal_marks    per accounting host: the newest timeLogged its counts include and how
 *                   many records of that second, so that re-reading a file counts nothing twice
 *   signal_alerts   per alert and subject: when it fired, when its condition last held, the
 *                   outcome of its command - so a restart does not fire it again
 *
 * Three tables and five columns: SQLite parses the whole schema for every connection, so each
 * costs every pipe-mode process a little (dmarc_sql.h measures it).
 */
#ifndef BOUNCEPIPE_STORE_SIGNALS_SQL_H
#define BOUNCEPIPE_STORE_SIGNALS_SQL_H

#include "bouncepipe/event.h"
#include "bouncepipe/store.h"

/* The DDL in both dialects: T text, I integer, W " WITHOUT ROWID" or "". */
#define BP_SIGNALS_SCHEMA(T, I, W)                                                                                     \
    "ALTER TABLE ledger ADD COLUMN sending_ip " T ";"                                                                  \
    "ALTER TABLE ledger ADD COLUMN vmta " T ";"                                                                        \
    "ALTER TABLE ledger ADD COLUMN stream " T ";"                                                                      \
    "ALTER TABLE ledger ADD COLUMN receiver " T ";"                                                                    \
    "ALTER TABLE ledger ADD COLUMN listed " T ";"                                                                      \
    "CREATE INDEX ledger_named ON ledger(evidence_time) WHERE blocklist IS NOT NULL;"                                  \
    "CREATE TABLE signal_counts ("                                                                                     \
    "  hour " I " NOT NULL, sending_ip " T " NOT NULL, vmta " T " NOT NULL, stream " T " NOT NULL,"                    \
    "  receiver " T " NOT NULL, blocklist " T " NOT NULL,"                                                             \
    "  delivered " I " NOT NULL DEFAULT 0, deferred " I " NOT NULL DEFAULT 0,"                                         \
    "  ev_delivered " I " NOT NULL DEFAULT 0, ev_deferred " I " NOT NULL DEFAULT 0, bounced " I " NOT NULL DEFAULT 0," \
    "  hard " I " NOT NULL DEFAULT 0, complaints " I " NOT NULL DEFAULT 0,"                                            \
    "  PRIMARY KEY (hour, sending_ip, vmta, stream, receiver, blocklist)"                                              \
    ")" W ";"                                                                                                          \
    "CREATE TABLE signal_marks (host " T " PRIMARY KEY, last_time " I " NOT NULL, at_last " I " NOT NULL)" W ";"       \
    "CREATE TABLE signal_alerts ("                                                                                     \
    "  alert " T " NOT NULL, subject " T " NOT NULL, first_fired " I " NOT NULL, last_fired " I " NOT NULL,"           \
    "  last_seen " I " NOT NULL, fired " I " NOT NULL, action_status " I " NOT NULL,"                                  \
    "  PRIMARY KEY (alert, subject)"                                                                                   \
    ")" W ";"

#define BP_SIGNALS_SCHEMA_SQLITE BP_SIGNALS_SCHEMA("TEXT", "INTEGER", " WITHOUT ROWID")
#define BP_SIGNALS_SCHEMA_PG     BP_SIGNALS_SCHEMA("TEXT COLLATE \"C\"", "BIGINT", "")

/** The counts a transaction has not written yet (signals.c), kept by the bp_store. */
typedef struct bp_signal_acc bp_signal_acc;

/**
 * Count a ledger event of this transaction (bp_store_record(): every event row it writes,
 * dated @p when): its (hour, sending IP, VMTA, stream, receiver, block list) gains one
 * delivery, deferral, bounce (and a hard one: final, naming no list) or complaint (not an
 * auth-failure or not-spam report).  @p sign is +1, or -1 to take a count back (rescore).
 * @param acc the store's accumulator, made at the first count
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_signal_acc_event(bp_signal_acc **acc, const bp_event *e, long long when, int sign);

/** Write the counts of @p acc (in the store's open transaction, before it commits), in key
 *  order (writers of PostgreSQL take row locks in one order: no deadlock between two). */
bp_status bp_signal_acc_flush(bp_store *s, bp_signal_acc *acc);

/** Forget what @p acc holds (the transaction ended).  NULL allowed. */
void bp_signal_acc_reset(bp_signal_acc *acc);
/** The transaction committed: the accounting reading in progress goes on in the next one
 *  (the records of the watermark's second it met stay met).  NULL allowed. */
void bp_signal_acc_committed(bp_signal_acc *acc);
void bp_signal_acc_free(bp_signal_acc *acc);

/** The store's accumulator (store.c): where bp_store_signal_acct() counts. */
bp_signal_acc **bp_store_signal_acc(bp_store *s);

/**
 * Before ledger row @p id changes its block list to @p blocklist (rescore): its counts move
 * from its old key to its new one in @p acc.
 * @return BP_OK, or the backend's status.
 */
bp_status bp_signal_reclassified(bp_store *s, bp_signal_acc **acc, long long id, const char *blocklist);

#endif
