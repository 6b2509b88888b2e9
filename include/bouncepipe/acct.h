/*
 * acct.h - PowerMTA accounting records: a streaming RFC 4180 CSV reader that finds columns by
 * header name, and the mapping of one accounting record to one event.
 *
 * PowerMTA writes (or pipes, with <acct-file |program>) CSV whose first line is a header
 * naming the columns; it writes the header again after every reload, and the columns change
 * whenever the operator changes record-fields.  So the reader never trusts a position: a line
 * whose first field is "type" is a header and replaces the column map, and every value is
 * looked up by name.  Records are ended by CRLF (LF accepted); quoted fields may hold commas,
 * doubled quotes and line breaks.  A record longer than BP_MAX_ACCT_LINE_BYTES, with more
 * than BP_MAX_ACCT_FIELDS fields, with a field count that differs from its header's, with a
 * NUL byte, before any header, or cut by the end of the stream is reported as malformed and
 * skipped; the reader then goes on with the next line.  Nothing is fatal but memory.
 *
 * The reader is push-driven so that a caller can poll its input with a timeout: feed it the
 * bytes read() returned, then call bp_acct_reader_next() until it says BP_ACCT_NEED_MORE.
 *
 * Ownership: the reader owns its buffers.  The fields and raw bytes of a bp_acct_record point
 * into them and stay valid until the next bp_acct_reader_feed() or bp_acct_reader_next().
 * Results of bp_acct_record_event() live in the arena passed in (they copy what they keep).
 */
#ifndef BOUNCEPIPE_ACCT_H
#define BOUNCEPIPE_ACCT_H

#include <stddef.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/event.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/status.h"

typedef struct bp_acct_reader bp_acct_reader;

/** What bp_acct_reader_next() found. */
typedef enum bp_acct_outcome {
    BP_ACCT_NEED_MORE = 0, /**< no complete record buffered: feed more (or it was the end) */
    BP_ACCT_HEADER,        /**< a header line: the column map was replaced */
    BP_ACCT_RECORD,        /**< a data record */
    BP_ACCT_MALFORMED,     /**< a record was skipped; its reason is in bp_acct_record.error */
} bp_acct_outcome;

typedef struct bp_acct_record {
    const char *const *fields; /**< n_fields NUL-terminated values, unquoted */
    size_t n_fields;
    const char *raw; /**< the record's bytes as read, without its line end (NULL if skipped) */
    size_t raw_len;
    unsigned long line;              /**< physical line number where the record starts (1-based) */
    unsigned long header_generation; /**< which header the fields belong to (see below) */
    const char *error;               /**< static reason, for BP_ACCT_MALFORMED; else NULL */
} bp_acct_record;

/** @return BP_OK and a new reader in @p *out, or BP_ERR_NOMEM. */
bp_status bp_acct_reader_new(bp_acct_reader **out);
/** Release the reader; NULL is allowed. */
void bp_acct_reader_free(bp_acct_reader *r);

/**
 * Append @p len bytes of the stream.  Call bp_acct_reader_next() until BP_ACCT_NEED_MORE before
 * feeding again, so that the buffer stays within one record plus one read.
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_acct_reader_feed(bp_acct_reader *r, const char *data, size_t len);

/**
 * Take the next record out of the buffered bytes.
 * @param at_eof non-zero when no more bytes will come: an unterminated last record is then a
 *        cut (PowerMTA ends every record with CRLF) and comes back as BP_ACCT_MALFORMED
 * @param rec receives the record (fields for BP_ACCT_RECORD; the header's own fields for
 *        BP_ACCT_HEADER; error and line for BP_ACCT_MALFORMED)
 * @param outcome receives what was found
 * @return BP_OK, or BP_ERR_NOMEM.
 */
bp_status bp_acct_reader_next(bp_acct_reader *r, int at_eof, bp_acct_record *rec, bp_acct_outcome *outcome);

/**
 * Column of the current header named @p name (ASCII case-insensitive, as PowerMTA's header_X
 * fields carry mail header names).
 * @return the 0-based column, or -1 when the header has no such column (or none was read).
 */
int bp_acct_column(const bp_acct_reader *r, const char *name);

/** Generation of the current header: starts at 0 (no header), +1 for each header read.
 *  Callers that cache column numbers refresh them when it changes. */
unsigned long bp_acct_header_generation(const bp_acct_reader *r);

/** @return the value of column @p column of @p rec, or NULL when @p column is -1 or the
 *  value is empty (PowerMTA leaves fields a record type does not have empty). */
const char *bp_acct_value(const bp_acct_record *rec, int column);

/** Settings for turning records into events. */
typedef struct bp_acct_options {
    bp_rules *rules;             /**< may be NULL: codes only */
    const bp_policy *policy;     /**< may be NULL: the default policy */
    const bp_verp_options *verp; /**< for decoding orig when rcpt is missing; NULL: defaults */
    const char *source;          /**< stream name for event sources: a path, or "-" */
    int transient;               /**< non-zero: `t` records become delay events (default: ignored) */
} bp_acct_options;

/** What one record means for the store. */
typedef enum bp_acct_disposition {
    BP_ACCT_EVENT = 0,    /**< a bounce, delay or complaint event to record */
    BP_ACCT_DELIVERY,     /**< a delivery: resets the recipient's soft-bounce counter */
    BP_ACCT_IGNORED,      /**< a type we do not act on (t by default, r, tq, unknown) */
    BP_ACCT_NO_RECIPIENT, /**< an event-bearing type without a usable recipient */
} bp_acct_disposition;

/** The column numbers bp_acct_record_event() reads, refreshed when the header changes. */
typedef struct bp_acct_columns {
    unsigned long generation;
    int type, time_logged, orig, rcpt, orcpt, dsn_action, dsn_status, dsn_diag, dsn_mta, bounce_cat, job_id, env_id,
        feedback_type, reporting_mta, x_hmxmr, src_ip, user_agent;
} bp_acct_columns;

typedef struct bp_acct_result {
    bp_acct_disposition disposition;
    const char *record_type;    /**< the record's type field as written ("b", "rb", ...) */
    int unknown_type;           /**< BP_ACCT_IGNORED because the type is not one PowerMTA writes */
    bp_event event;             /**< filled for BP_ACCT_EVENT and BP_ACCT_DELIVERY */
    const char *pmta_category;  /**< PowerMTA's own bounceCat, kept beside ours; NULL if none */
    const char *time_logged;    /**< the record's timeLogged as written, NULL if absent */
    long long time_logged_unix; /**< timeLogged as seconds since 1970, or -1 when unknown */
    const char *key;            /**< idempotency key "acct:" + SHA-256 hex (also event.fingerprint) */
} bp_acct_result;

/**
 * Turn one data record into a result.  Bounces (`b`, `rb`) are classified from dsnStatus and
 * dsnDiag with our rules and policy, PowerMTA's bounceCat kept beside; `rs` follows its
 * dsnAction; `f` is a complaint (feedbackType; rcpt, else header_X-HmXmrOriginalRecipient,
 * else the VERP-decoded orig); `d` is a delivery; `t` is ignored unless opts->transient.
 * @param cols column cache, zero-initialised by the caller once; refreshed here as needed
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_acct_record_event(const bp_acct_options *opts, const bp_acct_reader *reader, bp_acct_columns *cols,
                               const bp_acct_record *rec, bp_arena *arena, bp_acct_result *out);

/**
 * The idempotency key of a record: SHA-256 over the record type, timeLogged, rcpt, orig,
 * dsnStatus, dsnDiag, feedbackType, jobId and envId, each found by name, so that a file copy
 * with other column order or extra columns gives the same key as the piped stream.  Without
 * a timeLogged column the record's raw bytes are hashed instead.
 * @return an arena string "acct:<hex>", or NULL when out of memory.
 */
const char *bp_acct_record_key(const bp_acct_reader *reader, bp_acct_columns *cols, const bp_acct_record *rec,
                               bp_arena *arena);

#endif
