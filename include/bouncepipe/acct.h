/*
 * acct.h - what one PowerMTA accounting record means: the record -> event mapping of the
 * classify layer.
 *
 * The record arrives typed: its values taken by column name (the source layer's
 * acct_csv.h reads the CSV stream and fills a bp_acct_record), so nothing here knows of
 * CSV, columns or positions.  bp_acct_record_event() classifies it with the rules and the
 * policy the pipeline of a message uses; bp_acct_record_key() makes its idempotency key.
 *
 * Ownership: a bp_acct_record points into its reader (valid until the reader moves on);
 * results of bp_acct_record_event() live in the arena passed in (they copy what they keep).
 */
#ifndef BOUNCEPIPE_ACCT_H
#define BOUNCEPIPE_ACCT_H

#include <stddef.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/event.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/signal_fields.h"
#include "bouncepipe/status.h"

/** Any column of the record by its name (ASCII case-insensitive: "header_X-Rcpt",
 *  "arf_Original-Rcpt-To", "vmta", "header_X-Traffic-Type"), or NULL when the stream has no
 *  such column or the value is empty. */
typedef const char *(*bp_acct_column_fn)(const void *ctx, const char *name);

/** One accounting record's values by PowerMTA's column names; NULL when the column is
 *  missing or the value empty (PowerMTA leaves the fields a record type lacks empty). */
typedef struct bp_acct_record {
    const char *type;          /**< type: b, rb, rs, f, d, t, ... (or the long names) */
    const char *time_logged;   /**< timeLogged */
    const char *orig;          /**< orig: the envelope sender (maybe VERP) */
    const char *rcpt;          /**< rcpt */
    const char *orcpt;         /**< orcpt */
    const char *dsn_action;    /**< dsnAction */
    const char *dsn_status;    /**< dsnStatus */
    const char *dsn_diag;      /**< dsnDiag */
    const char *dsn_mta;       /**< dsnMta */
    const char *bounce_cat;    /**< bounceCat */
    const char *job_id;        /**< jobId (b, d, t records; f records carry header_X-job instead) */
    const char *env_id;        /**< envId */
    const char *feedback_type; /**< feedbackType */
    const char *reporting_mta; /**< reportingMta, else dsnReportingMta */
    const char *source_ip;     /**< dlvSourceIp */
    bp_acct_column_fn column;  /**< any other column by name (header_NAME, arf_NAME, the signal
                                    fields'), or NULL */
    const void *column_ctx;    /**< for @p column */
    int keyed_by_values;       /**< the stream has a timeLogged column: the key hashes the named
                                    values; without one, the raw bytes */
    const char *raw;           /**< the record's bytes as read, without its line end */
    size_t raw_len;
    unsigned long line; /**< physical line where the record starts, for the event source */
} bp_acct_record;

/** Settings for turning records into events. */
typedef struct bp_acct_options {
    bp_rules *rules;                  /**< may be NULL: codes only */
    const bp_policy *policy;          /**< may be NULL: the default policy */
    const bp_verp_options *verp;      /**< for decoding orig when rcpt is missing; NULL: defaults */
    const char *source;               /**< stream name for event sources: a path, or "-" */
    int transient;                    /**< non-zero: `t` records become delay events (default: counted as
                                           deferrals only, BP_ACCT_DEFERRAL) */
    const char *const *rcpt_headers;  /**< [report] rcpt_headers: per-recipient headers of the
                                           original (header_NAME columns), or NULL */
    const bp_signal_options *signals; /**< the columns of the signal fields; NULL: defaults */
    const char *signal_host;          /**< the host whose watermark counts deliveries and deferrals
                                           (signals.h); NULL: this machine's name */
} bp_acct_options;

/** What one record means for the store. */
typedef enum bp_acct_disposition {
    BP_ACCT_EVENT = 0,    /**< a bounce, delay or complaint event to record (a complaint whose
                               recipient was redacted has none: kept as evidence, as by mail) */
    BP_ACCT_DELIVERY,     /**< a delivery: resets the recipient's soft-bounce counter */
    BP_ACCT_IGNORED,      /**< a type we do not act on (t by default, r, tq, unknown), or a
                               recipient PowerMTA refused from its own suppression list */
    BP_ACCT_NO_RECIPIENT, /**< a bounce, delay or delivery without a usable recipient */
    BP_ACCT_DEFERRAL,     /**< a `t` record (without opts->transient): no event, a deferral to
                               count per sending IP, VMTA, stream and receiver (signals.h) */
} bp_acct_disposition;

typedef struct bp_acct_result {
    bp_acct_disposition disposition;
    const char *record_type;    /**< the record's type field as written ("b", "rb", ...) */
    int unknown_type;           /**< BP_ACCT_IGNORED because the type is not one PowerMTA writes */
    int mta_suppressed;         /**< BP_ACCT_IGNORED because PowerMTA refused the recipient from its
                                     suppression-list (our own export fed back): no new evidence */
    bp_event event;             /**< filled for BP_ACCT_EVENT and BP_ACCT_DELIVERY */
    const char *pmta_category;  /**< PowerMTA's own bounceCat, kept beside ours; NULL if none */
    const char *time_logged;    /**< the record's timeLogged as written, NULL if absent */
    long long time_logged_unix; /**< timeLogged as seconds since 1970, or -1 when absent or not
                                     understood (time_logged is then set: warn about it) */
    const char *key;            /**< idempotency key "acct:" + SHA-256 hex (also event.fingerprint) */
    const char *signal_host;    /**< opts->signal_host */
} bp_acct_result;

/**
 * Turn one record into a result.  Bounces (`b`, `rb`) are classified from dsnStatus and
 * dsnDiag with our rules and policy, PowerMTA's bounceCat kept beside; a `b` record of a
 * recipient PowerMTA refused from its own suppression-list is ignored; `rs` follows its
 * dsnAction; `f` is a complaint read by the one complaint model (complaint.h: rcpt,
 * arf_Original-Rcpt-To, the original's headers in header_NAME columns, header_Return-Path,
 * orig); `d` is a delivery; `t` is a deferral, classified but only counted (a delay event
 * with opts->transient).  The job id is jobId, else header_X-job.  Every event gets its
 * signal fields from the record's columns (dlvSourceIp, vmta, header_X-Traffic-Type:
 * signal_fields.h), then the text and the receiver.
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_acct_record_event(const bp_acct_options *opts, const bp_acct_record *rec, bp_arena *arena,
                               bp_acct_result *out);

/**
 * Whether @p rec may become a stored unit keyed by bp_acct_record_key() (a bounce, delay or
 * complaint event), decided from its type (and an rs record's dsnAction and raw dsnStatus)
 * without classifying it: a reader may then ask the store for the key first and spare the
 * rules a record it holds already.  Never true of a record bp_acct_record_event() ignores.
 * @return non-zero for such a record.
 */
int bp_acct_record_keyed(const bp_acct_options *opts, const bp_acct_record *rec);

/**
 * timeLogged in any of the forms PowerMTA writes: Unix seconds (PowerMTA 4), "YYYY-MM-DD
 * HH:MM:SS+HHMM" (PowerMTA 5; 'T' for the blank, "+HH:MM" and "Z" accepted) and
 * "MM/DD/YYYY HH:MM:SS+HHMM" (the guide's other form); a time without an offset is UTC.
 * @return seconds since 1970, or -1 when @p text is NULL or in none of these forms.
 */
long long bp_acct_parse_time(const char *text);

/**
 * The idempotency key of a record: SHA-256 over the record type, timeLogged, rcpt, orig,
 * dsnStatus, dsnDiag, feedbackType, jobId and envId, each found by name, so that a file copy
 * with other column order or extra columns gives the same key as the piped stream.  Without
 * a timeLogged column (!keyed_by_values) the record's raw bytes are hashed instead.
 * @return an arena string "acct:<hex>", or NULL when out of memory.
 */
const char *bp_acct_record_key(const bp_acct_record *rec, bp_arena *arena);

#endif
