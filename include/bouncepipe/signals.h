/*
 * signals.h - the store's signal counts (docs/signals.md): per UTC hour and per (sending IP,
 * VMTA, stream, receiver, block list), what was delivered, deferred, bounced, refused by a
 * named list or reputation system, and complained about; the state of the alerts; the events
 * behind a signal.
 *
 *  - Counting.  Every event the ledger records is counted by bp_store_record() in the same
 *    transaction (so recording is idempotent for the counts as for the ledger, and rescore
 *    moves a count when a row's block list changes).  Deliveries and deferrals of the
 *    accounting stream are no ledger rows (millions a day): bp_store_signal_acct() counts them
 *    under a per-host watermark - the newest timeLogged counted and how many records of that
 *    second - so that re-reading a file after a crash, or a file copy of what the pipe already
 *    streamed, counts nothing twice (records older than the watermark are taken as counted:
 *    load history in time order).  Counts are kept per transaction and written at its commit.
 *  - Reading.  bp_store_signal_rows() sums a window's hours per key; bp_store_signal_hours()
 *    per hour and receiver (the hourly deferral share).  Neither reads the ledger: the cost is
 *    that of the window's counter rows, whatever the ledger's size.
 *  - bp_store_signal_rebuild() recounts the ledger's part of every counter from the ledger (a
 *    store whose counts predate its ledger rows: an upgrade, rows edited by hand).
 *
 * Ownership: rows handed to callbacks, and their strings, live during the callback only.
 */
#ifndef BOUNCEPIPE_SIGNALS_H
#define BOUNCEPIPE_SIGNALS_H

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"
#include "bouncepipe/store.h"

/** What one accounting record adds (bp_store_signal_acct()). */
typedef enum bp_signal_acct {
    BP_SIGNAL_DELIVERED = 0, /**< a `d` record */
    BP_SIGNAL_DEFERRED,      /**< a `t` record (a deferral PowerMTA will retry) */
} bp_signal_acct;

/**
 * Count an accounting record that is no ledger row (in a transaction): a delivery or a
 * deferral of @p e's key (sending_ip, vmta, stream, receiver, blocklist) at @p when, unless
 * the watermark of @p host says it was counted already.
 * @param counted receives 1 when it was counted, 0 when it was counted before (may be NULL)
 * @return BP_OK; BP_ERR_USAGE outside a transaction; BP_ERR_NOMEM; the backend's status.
 */
bp_status bp_store_signal_acct(bp_store *s, const char *host, long long when, const bp_event *e, bp_signal_acct what,
                               int *counted);

/**
 * The accounting reading about to start resumes exactly where a kept position
 * (bp_store_acct_position()) of the same file says an earlier reading stopped.  That position
 * was written in the transaction of the watermark, so this reading continues the earlier one:
 * of the watermark's second, the records counted are all before the position, and each one
 * met from here on is new (as one process's reading goes on across its commits).  Lasts
 * until the first commit that counted an accounting record; a rollback keeps it.  Call it
 * only at a kept position: a reading from a file's start, of another file or at a position
 * that does not match keeps the watermark's protection (the first records of its second met
 * are taken for the counted ones).
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_store_signal_acct_resume(bp_store *s);

/** The counts of one key over a window (NULL strings: unknown; blocklist NULL: none named). */
typedef struct bp_signal_row {
    long long hour;         /**< bp_store_signal_hours(): the UTC hour (Unix seconds / 3600); else 0 */
    const char *sending_ip; /**< NULL in bp_store_signal_hours() */
    const char *vmta;
    const char *stream;
    const char *receiver;
    const char *blocklist; /**< the list or reputation system the rows name, or NULL */
    long long delivered;   /**< deliveries: accounting `d` records, and delivered events */
    long long deferred;    /**< deferrals: accounting `t` records, and delay events */
    long long bounced;     /**< bounce events (final or not) */
    long long hard;        /**< final bounces naming no list: a bad address, not our reputation */
    long long complaints;  /**< complaints (auth-failure and not-spam reports left out) */
} bp_signal_row;

typedef int (*bp_signal_row_cb)(void *user, const bp_signal_row *row);

/** Sums over the hours [@p from, @p until) (Unix seconds, rounded down to hours) per (sending
 *  IP, VMTA, stream, receiver, block list), in key order. */
bp_status bp_store_signal_rows(bp_store *s, long long from, long long until, bp_signal_row_cb cb, void *user);

/** Sums over the hours [@p from, @p until) per (hour, receiver, block list), hour by hour. */
bp_status bp_store_signal_hours(bp_store *s, long long from, long long until, bp_signal_row_cb cb, void *user);

/** The state of an alert for one subject (table signal_alerts). */
typedef struct bp_signal_alert_state {
    const char *alert;     /**< listing, deferral, complaint */
    const char *subject;   /**< what it is about: "IP VMTA LIST", "RECEIVER", "STREAM" */
    long long first_fired; /**< when it first fired */
    long long last_fired;  /**< when it last fired (an episode's start) */
    long long last_seen;   /**< when its condition last held at a check */
    long long fired;       /**< how many times it fired */
    int action_status;     /**< its command's outcome: 0 ran and succeeded, -1 none to run,
                                1 failed (retried at the next check while the condition holds) */
} bp_signal_alert_state;

typedef int (*bp_signal_alert_cb)(void *user, const bp_signal_alert_state *st);

/** The state of (@p alert, @p subject): @p cb once, or BP_ERR_NOT_FOUND. */
bp_status bp_store_signal_alert(bp_store *s, const char *alert, const char *subject, bp_signal_alert_cb cb, void *user);
/** Every alert state, by alert and subject. */
bp_status bp_store_signal_alerts(bp_store *s, bp_signal_alert_cb cb, void *user);
/** Write the state of st->alert, st->subject (in a transaction). */
bp_status bp_store_signal_alert_put(bp_store *s, const bp_signal_alert_state *st);

/**
 * The event rows that name a block list or reputation system with evidence time in
 * [@p from, @p until), oldest first, at most @p limit, of sending IP @p ip (NULL: any).
 */
bp_status bp_store_signal_events(bp_store *s, long long from, long long until, const char *ip, long long limit,
                                 bp_ledger_cb cb, void *user);

/**
 * Copy what no ledger row can give back from @p from into @p to (migrate): the accounting
 * counts (deliveries and deferrals of `acct`), the accounting watermarks and the alert
 * states.  Each is merged by keeping the larger value, so that a copy run again changes
 * nothing and stores of several hosts merge.  A week of hours per transaction of @p to.
 * @param rows receives the rows copied (may be NULL)
 * @param from_source receives 1 when reading @p from failed (may be NULL)
 */
bp_status bp_store_signal_copy(bp_store *from, bp_store *to, long long *rows, int *from_source);

/**
 * Recount the ledger's part of every counter (ev_delivered, ev_deferred, bounced, hard,
 * complaints) from the ledger's event rows, in a transaction; the accounting part stays.
 * @param keys receives the counter rows written (may be NULL)
 */
bp_status bp_store_signal_rebuild(bp_store *s, long long *keys);

#endif
