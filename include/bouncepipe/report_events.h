/*
 * report_events.h - a report to events: the core's step between the report stage (report.h)
 * and the classify stage (classify.h, policy.h).
 *
 * One event per recipient block of the report (one "unrecognized" event when it has none):
 * the type from the report kind and the block's action, the recipient from the report's own
 * fields else the VERP-decoded bounce address, the category from the rules and codes, the
 * action from the policy.  With explain set, each event also gets a bp_explain: why it came
 * out as it did, as structured steps that the explain command words.
 *
 * Ownership: events, their strings and explanations are allocated in the arena passed in.
 */
#ifndef BOUNCEPIPE_REPORT_EVENTS_H
#define BOUNCEPIPE_REPORT_EVENTS_H

#include <stddef.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/classify.h"
#include "bouncepipe/event.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/report.h"
#include "bouncepipe/rules.h"

#define BP_EXPLAIN_MAX_MATCHES 16

/** The step that chose an event's category (bp_explain.category_step); for failures, the
 *  layers of bp_explain.verdict say more. */
typedef enum bp_category_step {
    BP_CATEGORY_UNRECOGNIZED = 0, /**< no report family recognised the message */
    BP_CATEGORY_COMPLAINT,        /**< a complaint: the feedback type decides */
    BP_CATEGORY_NOT_FAILURE,      /**< not a failure (auto-reply, delivery): no category */
    BP_CATEGORY_RULE,             /**< a rule matched the reply or the report's passages: matches[0] */
    BP_CATEGORY_STATUS,           /**< no rule matched: the RFC 3463 table, by the enhanced status */
    BP_CATEGORY_SMTP,             /**< no rule matched: the SMTP reply code */
    BP_CATEGORY_DEFAULT,          /**< no rule matched and no usable code: other */
    BP_CATEGORY_STATED,           /**< the report states it (an ESP's bounce type) */
    BP_CATEGORY_FAMILY,           /**< no rule or specific status: the family's default */
    BP_CATEGORY_FALLBACK,         /**< no rule matched: a local delivery program, the sending MTA's
                                       own verdict, or a generic status without text (verdict.step) */
} bp_category_step;

/** Why an event came out as it did (filled only when bp_classify_ctx.explain is set), as
 *  structured steps; the explain command words them. */
typedef struct bp_explain {
    const char *family;           /**< report family */
    unsigned part_index;          /**< MIME part of the recipient block */
    const char *field;            /**< field or scanner that gave the recipient */
    const char *verp_address;     /**< decoded envelope recipient, when there was one */
    int verp_disagrees;           /**< the report's recipient differs from the VERP address */
    const char *rejected_address; /**< the first recipient candidate that was not a valid address
                                       (bp_address_check()), masked for printing, or NULL */
    const char *rejected_why;     /**< why it was rejected */
    const char *rejected_field;   /**< where it was found: the field or scanner, or "VERP" */
    bp_rule_match matches[BP_EXPLAIN_MAX_MATCHES];
    size_t n_matches;               /**< every matching rule (may exceed the array) */
    const char *matched_text;       /**< the text the matches' spans point into: the reply, the
                                         diagnostic or the passages */
    bp_category_step category_step; /**< how the category was chosen */
    int had_diagnostic;             /**< the block had diagnostic text to match */
    const char *codes_category;     /**< what the codes alone would say (bounces, delays) */
    const char *stated_by;          /**< BP_CATEGORY_STATED: what the report stated */
    bp_policy_step action_step;     /**< which policy step chose the action */
    /* failures and delays: every layer of the classification, and what the report said */
    bp_verdict verdict;          /**< the layers (classify.h) */
    const bp_rcpt_block *block;  /**< the block as read (stage, reply, passages, parties) */
    const char *envelope_sender; /**< the parties as the report showed them, or NULL */
    const char *sending_host;
} bp_explain;

typedef struct bp_classify_ctx {
    bp_rules *rules;             /**< may be NULL: codes only */
    const bp_policy *policy;     /**< may be NULL: the default policy */
    const char *envelope_rcpt;   /**< --rcpt, the bounce address (maybe VERP), or NULL */
    const bp_verp_options *verp; /**< NULL for defaults */
    const char *envid;           /**< --envid */
    const char *source;          /**< source name for the events */
    int explain;                 /**< fill bp_explain for each event */
    int skip_fingerprint;        /**< bp_process_message(): leave the idempotency key NULL (a dry
                                      run stores nothing; the SHA-256 is 12 % of its time) */
} bp_classify_ctx;

/**
 * Classify @p report.  A report that yields nothing yields one event of type unrecognized.
 * @param events receives an arena array of @p *n_events events (at least one)
 * @param explains receives a parallel arena array when ctx->explain, else NULL (may be NULL)
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_classify(const bp_classify_ctx *ctx, const bp_report *report, bp_arena *arena, bp_event **events,
                      size_t *n_events, bp_explain **explains);

#endif
