/*
 * dmarc_store.h - DMARC reports in the store: what bp_store_record() keeps of them, and what
 * `bouncepipe dmarc` and `migrate` read back.  The same on SQLite and PostgreSQL (the tables
 * and the SQL are src/store/dmarc_sql.h and dmarc_store.c; docs/dmarc.md says what is kept).
 *
 * Writing.  A dmarc-report event's report is stored with its unit, in its transaction, by
 * bp_store_record() itself: once per (org_name, report_id), whatever message it came in, so
 * that pipe retries, replays and a receiver sending a report again store it once.  An
 * auth-failure complaint's Reported-Domain goes to the failure reports of that domain.
 * migrate copies both with bp_store_dmarc_put() and bp_store_dmarc_failure_put().
 *
 * Reading.  The view's queries take a window (reports whose period begins in [since, until),
 * failure reports dated in it) and an optional From domain, and hand rows to a callback,
 * largest grouping first as each says.  "Domain" is a record's header_from (its From domain),
 * or the report's policy domain when the record has none.  Days are UTC day numbers (Unix
 * seconds / 86400) of a report's begin: a report longer than a day counts on its first day.
 *
 * Ownership: rows handed to callbacks and every string in them live only during the
 * callback; reports read back (bp_store_dmarc_reports()) live in the arena passed in.
 */
#ifndef BOUNCEPIPE_DMARC_STORE_H
#define BOUNCEPIPE_DMARC_STORE_H

#include "bouncepipe/arena.h"
#include "bouncepipe/dmarc_report.h"
#include "bouncepipe/store.h"

/* ---- writing (in a transaction) ---- */

/**
 * Store @p r (a report read: outcome BP_DMARC_READ) as having come in the unit @p fingerprint,
 * unless a report of the same org_name and report_id is stored already.  Every field is cut to
 * its cap, counts to BP_MAX_DMARC_STORED_COUNT; past BP_MAX_DMARC_STORE_BYTES the records keep
 * what the view counts only (limits.h).
 * @param stored receives 1 when it was new, 0 when it was there (may be NULL)
 * @return BP_OK; BP_ERR_USAGE outside a transaction; the backend's status.
 */
bp_status bp_store_dmarc_put(bp_store *s, const char *fingerprint, const bp_dmarc_report *r, int *stored);

/** Note the failure report of unit @p fingerprint (an auth-failure complaint, already in the
 *  ledger) as being about @p reported_domain, dated @p when; once per fingerprint. */
bp_status bp_store_dmarc_failure_put(bp_store *s, const char *fingerprint, const char *reported_domain, long long when);

/* ---- reading back whole (migrate) ---- */

/** A stored report: its store id, the unit it came in, and the report as read. */
typedef int (*bp_dmarc_report_cb)(void *user, long long id, const char *fingerprint, const bp_dmarc_report *r);

/**
 * At most @p limit stored reports with ids after @p after_id, in id order, each rebuilt whole
 * (records, auth results, reasons, errors) in @p arena.  A caller walks every report in
 * bounded memory by passing the last id it was given and resetting the arena between pages.
 */
bp_status bp_store_dmarc_reports(bp_store *s, long long after_id, long long limit, bp_arena *arena,
                                 bp_dmarc_report_cb cb, void *user);

typedef int (*bp_dmarc_failure_cb)(void *user, const char *fingerprint, const char *reported_domain, long long when);

/** At most @p limit failure-report notes with fingerprints after @p after ("" from the first),
 *  in fingerprint order. */
bp_status bp_store_dmarc_failures(bp_store *s, const char *after, long long limit, bp_dmarc_failure_cb cb, void *user);

/* ---- the view (bouncepipe dmarc) ---- */

/** What the view looks at. */
typedef struct bp_dmarc_window {
    long long since;    /**< reports beginning at or after (Unix seconds) */
    long long until;    /**< ... and before */
    const char *domain; /**< one From domain (lower case), or NULL for all */
} bp_dmarc_window;

/** Messages of one From domain, UTC day and source IP, summed over the window's reports. */
typedef struct bp_dmarc_traffic {
    const char *domain;
    long long day; /**< Unix seconds / 86400 of the reports' begin */
    const char *source_ip;
    long long messages;
    long long pass;         /**< passing DMARC (DKIM or SPF aligned and passing) */
    long long dkim_aligned; /**< policy_evaluated dkim pass */
    long long spf_aligned;  /**< policy_evaluated spf pass */
    long long quarantine;   /**< disposition quarantine */
    long long reject;       /**< disposition reject (the rest: none, or DMARCbis pass) */
} bp_dmarc_traffic;
typedef int (*bp_dmarc_traffic_cb)(void *user, const bp_dmarc_traffic *row);
/** Rows in domain, day, source IP order. */
bp_status bp_store_dmarc_traffic(bp_store *s, const bp_dmarc_window *w, bp_dmarc_traffic_cb cb, void *user);

/** Reports that speak of one From domain on one day. */
typedef int (*bp_dmarc_count_cb)(void *user, const char *key, long long day, long long n);
/** (domain, day, reports) in domain, day order. */
bp_status bp_store_dmarc_report_days(bp_store *s, const bp_dmarc_window *w, bp_dmarc_count_cb cb, void *user);

/** A published policy as one report saw it. */
typedef struct bp_dmarc_policy {
    const char *domain; /**< the policy domain */
    const char *p, *sp, *adkim, *aspf;
    long long pct; /**< -1 when absent */
    long long begin;
} bp_dmarc_policy;
typedef int (*bp_dmarc_policy_cb)(void *user, const bp_dmarc_policy *row);
/** Every report's policy in the window, by domain, the latest (by begin) first. */
bp_status bp_store_dmarc_policies(bp_store *s, const bp_dmarc_window *w, bp_dmarc_policy_cb cb, void *user);

/** An auth result as the reports of one From domain saw it from one source IP. */
typedef struct bp_dmarc_auth_row {
    const char *method;      /**< dkim, spf */
    const char *auth_domain; /**< d= / the SPF domain */
    const char *selector;    /**< DKIM selector, or the SPF scope */
    const char *result;
    long long messages; /**< of the records it was part of */
} bp_dmarc_auth_row;
typedef int (*bp_dmarc_auth_cb)(void *user, const bp_dmarc_auth_row *row);
/** The auth results behind @p source_ip's messages as @p w->domain (which must be set),
 *  the most messages first. */
bp_status bp_store_dmarc_auth(bp_store *s, const bp_dmarc_window *w, const char *source_ip, bp_dmarc_auth_cb cb,
                              void *user);

/** One stored report, for the list. */
typedef struct bp_dmarc_listed {
    const char *org_name, *report_id, *domain, *p, *email;
    long long begin, end, pct, records, messages, pass, detail_cut;
} bp_dmarc_listed;
typedef int (*bp_dmarc_listed_cb)(void *user, const bp_dmarc_listed *row);
/** The window's reports (w->domain: its policy domain) by begin, organisation, report id. */
bp_status bp_store_dmarc_report_list(bp_store *s, const bp_dmarc_window *w, bp_dmarc_listed_cb cb, void *user);

/** A failure (ruf) report: its note and its ledger row's facts. */
typedef struct bp_dmarc_failure {
    const char *reported_domain;
    long long when;
    const char *source_ip, *feedback_type, *reporting_mta, *original_message_id, *source, *message_id;
} bp_dmarc_failure;
typedef int (*bp_dmarc_failure_row_cb)(void *user, const bp_dmarc_failure *row);
/** The window's failure reports (dated in it; w->domain: the Reported-Domain) by date. */
bp_status bp_store_dmarc_failure_list(bp_store *s, const bp_dmarc_window *w, bp_dmarc_failure_row_cb cb, void *user);

/** The sending IPs PowerMTA's accounting stream named (dlvSourceIp, in the ledger rows of
 *  `acct`) with events dated in the window: (ip, day 0, events). */
bp_status bp_store_dmarc_acct_ips(bp_store *s, const bp_dmarc_window *w, bp_dmarc_count_cb cb, void *user);

/** @param end receives the latest end of a stored report, 0 when there is none. */
bp_status bp_store_dmarc_newest(bp_store *s, long long *end);

/** The cached reverse DNS of @p ip: cb(user, name or NULL for "none found", 0, resolved_at) once,
 *  or BP_ERR_NOT_FOUND. */
bp_status bp_store_dmarc_rdns_get(bp_store *s, const char *ip, bp_dmarc_count_cb cb, void *user);
/** Cache @p name (NULL: none found) as @p ip's reverse DNS at @p when (in a transaction). */
bp_status bp_store_dmarc_rdns_put(bp_store *s, const char *ip, const char *name, long long when);

#endif
