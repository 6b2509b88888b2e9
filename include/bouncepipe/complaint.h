/*
 * complaint.h - the one complaint model: what a feedback-loop complaint says, however it
 * arrived.  A complaint reaches bouncepipe as mail (ARF, JMRP: `pipe`, `replay`) or as a
 * PowerMTA `f` accounting record (`acct`); both read it through these functions, so that the
 * two paths cannot drift apart:
 *
 *   - the feedback type: bp_feedback_type_normalise() (dkim and spf are auth-failure,
 *     optout and unsubscribe opt-out, anything unknown other);
 *   - the recipient, tried in this order, a redacted address ("redacted@", "xxxxxxxx@")
 *     always passed over as nobody (bp_complaint_address()):
 *       1. the report's own recipient fields (ARF Original-Rcpt-To / Removal-Recipient;
 *          PowerMTA's rcpt and arf_Original-Rcpt-To / arf_Removal-Recipient columns);
 *       2. the complained-about original's headers (bp_complaint_from_original()):
 *          X-HmXmrOriginalRecipient, then each configured [report] rcpt_headers, then the To:
 *          of a single-recipient original (PowerMTA: the header_NAME columns);
 *       3. a VERP bounce address, decoded: the report's envelope recipient, and the
 *          original's Return-Path (PowerMTA: header_Return-Path, then orig);
 *     a recipient-field value that is one of our own VERP bounce addresses (the [verp]
 *     prefix or pattern decodes it) is the VERP-decoded recipient, not a person;
 *   - the job: the original's X-Job header (PowerMTA's job id; `retain-x-job true` keeps it
 *     in the mail, header_X-job in the accounting record): bp_complaint_job_header.
 *
 * The event model sits on the ground floor (util): the report layer (src/report/arf.c,
 * jmrp.c) and the classify layer (src/classify/acct_events.c) both call down to it.
 *
 * Ownership: returned strings belong to the arena passed in, or are static names.
 */
#ifndef BOUNCEPIPE_COMPLAINT_MODEL_H
#define BOUNCEPIPE_COMPLAINT_MODEL_H

#include <stddef.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"

/** The header of the original that carries PowerMTA's job id (its default `jobid-header`). */
#define BP_COMPLAINT_JOB_HEADER "X-Job"

/**
 * A report's feedback type as the contract names it: abuse, fraud, virus, other, not-spam,
 * auth-failure (also dkim, spf), opt-out (also optout, unsubscribe).  Case and anything after
 * a blank or ';' are ignored; NULL, empty and unknown types are "other".
 * @return a static contract name.
 */
const char *bp_feedback_type_normalise(const char *text);

/**
 * @return non-zero when @p addr is a redacted placeholder, not a person: a local part
 * "redacted", or one made only of "x" and "*" (as Yahoo and others send), or empty.
 */
int bp_complaint_redacted(const char *addr);

/** Where a complaint's recipient was found. */
typedef struct bp_complaint_pick {
    const char *recipient; /**< normalised address, or NULL (none, or only redacted ones) */
    const char *from;      /**< contract name: "original-rcpt-to", "x-hmxmroriginalrecipient",
                                "header", "verp"; NULL with no recipient */
    const char *field;     /**< the field or header that gave it */
    int redacted;          /**< a redacted address was seen and passed over */
} bp_complaint_pick;

/**
 * One recipient-field value (Original-Rcpt-To and its kin): normalised; passed over when
 * redacted (@p pick->redacted set); VERP-decoded with from "verp" when it is one of our own
 * bounce addresses (bp_verp_explicit() options that decode it).
 * @param from the contract name to give a plain address ("original-rcpt-to")
 * @return non-zero when @p pick was filled with a recipient.
 */
int bp_complaint_rcpt_field(bp_arena *arena, const char *value, const char *from, const char *field,
                            const bp_verp_options *verp, bp_complaint_pick *pick);

/** A header of the complained-about original by name (case-insensitive), or NULL. */
typedef const char *(*bp_complaint_header_fn)(const void *ctx, const char *name);

/**
 * Step 2: the recipient from the original's headers: X-HmXmrOriginalRecipient, then each of
 * @p rcpt_headers (NULL-terminated, may be NULL), then To: when it names one address.
 * @return non-zero when @p pick was filled with a recipient.
 */
int bp_complaint_from_original(bp_complaint_header_fn header, const void *ctx, const char *const *rcpt_headers,
                               bp_arena *arena, bp_complaint_pick *pick);

/**
 * Step 3 for one candidate: @p value (an envelope recipient or a Return-Path) VERP-decoded.
 * @return non-zero when @p pick was filled with a recipient (from "verp").
 */
int bp_complaint_verp(bp_arena *arena, const char *value, const char *field, const bp_verp_options *verp,
                      bp_complaint_pick *pick);

/** The job id in the original's headers (BP_COMPLAINT_JOB_HEADER): an arena copy, control
 *  bytes masked, at most BP_MAX_STORED_TOKEN_BYTES; NULL when absent or empty. */
const char *bp_complaint_job(bp_complaint_header_fn header, const void *ctx, bp_arena *arena);

#endif
