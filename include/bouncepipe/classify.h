/*
 * classify.h - a failure's category, in layers that explain can show one by one:
 *
 *   1. the codes: the enhanced status (RFC 3463 table), else the SMTP reply code - the base
 *      verdict;
 *   2. the text: the first rule (in load order) whose scope fits - status, MTA, SMTP stage -
 *      and whose expression matches the remote reply; text beats a generic code;
 *   3. when no rule knew the reply and its codes are generic (missing, X.0.0, X.5.0): the
 *      report's own words about the recipient (its passages), by the same rules;
 *   4. when still no rule: a local delivery program's failure is the receiving host's
 *      configuration; the sending MTA's own verdict (X-PowerMTA-BounceCategory) beats the
 *      code table; a generic X.Y.0 with no text at all is counted (other), never ignored;
 *   5. the guards of the parties: a verdict on the recipient's mailbox or domain given at
 *      CONNECT, EHLO or MAIL, or by a reply that names the envelope sender or the sending host
 *      instead of the recipient, is about the sender: invalid-sender or policy-related.
 *
 * And whether a failure is final.  The action comes from the policy (policy.h).  Reports are
 * turned into events by the core (report_events.h), accounting records by acct.h: both with
 * these functions, so that the classify layer knows nothing of reports, MIME or CSV.
 *
 * Ownership: rule ids made from codes are allocated in the arena passed in.
 */
#ifndef BOUNCEPIPE_CLASSIFY_H
#define BOUNCEPIPE_CLASSIFY_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/event.h"
#include "bouncepipe/rules.h"

/**
 * Category from codes alone (RFC 3463 subject.detail, then the SMTP code).
 * @return a category name (never NULL; "other" when nothing fits).
 */
const char *bp_category_from_codes(const char *status, const char *smtp_code);

/**
 * Classify one diagnostic as a bounce would be: rules, then codes.
 * @param arena holds a code-table rule id when one is made
 * @param rule receives the deciding rule's id, or when no rule matched the code table's:
 *        "status:X.Y.Z" (a specific enhanced status), "smtp:NNN", else "default"
 *        (NULL only when out of memory)
 * @param blocklist receives the block list named, or NULL
 * @return the category (never NULL).
 */
const char *bp_classify_text(bp_rules *rules, bp_arena *arena, const char *text, const char *status,
                             const char *smtp_code, const char *mta, const char **rule, const char **blocklist);

/** One failure as the report stage read it: what the layers above look at. */
typedef struct bp_failure {
    const char *text;        /**< the remote reply (the innermost one, when the diagnostic wraps it), or NULL */
    const char *status;      /**< its enhanced status X.Y.Z, or NULL */
    const char *smtp_code;   /**< its SMTP reply code, or NULL */
    const char *mta;         /**< the remote (else reporting) MTA host name, for mta= scopes; or NULL */
    bp_smtp_command command; /**< the SMTP command the reply answered, or BP_SMTP_NONE */
    const char *passages;    /**< the report's own words about the recipient, or NULL */
    const char *mta_verdict; /**< the sending MTA's own category (X-PowerMTA-BounceCategory), or NULL */
    int local_delivery;      /**< a local delivery program failed (Diagnostic-Code x-unix, procmail, ...) */
    bp_party party;          /**< whom the reply names, when not the recipient */
} bp_failure;

/** The layer that chose a failure's category before the guards (bp_verdict.step). */
typedef enum bp_verdict_step {
    BP_VERDICT_RULE = 0,       /**< a rule matched the reply: match */
    BP_VERDICT_PASSAGES,       /**< a rule matched the report's passages about the recipient: match */
    BP_VERDICT_LOCAL_DELIVERY, /**< no rule: a local delivery program's failure */
    BP_VERDICT_MTA,            /**< no rule: the sending MTA's own verdict */
    BP_VERDICT_STATUS,         /**< no rule: the RFC 3463 table, by the enhanced status */
    BP_VERDICT_SMTP,           /**< no rule: the SMTP reply code */
    BP_VERDICT_GENERIC,        /**< no rule and no text at all, a generic X.Y.0 status: counted as other */
    BP_VERDICT_DEFAULT,        /**< no rule and no usable code: other */
} bp_verdict_step;

/** The guard of the parties that changed the category (bp_verdict.guard). */
typedef enum bp_verdict_guard {
    BP_GUARD_NONE = 0,
    BP_GUARD_STAGE,        /**< a recipient verdict at CONNECT, EHLO or MAIL */
    BP_GUARD_SENDER,       /**< a recipient verdict in a reply that names the envelope sender */
    BP_GUARD_SENDING_HOST, /**< a recipient verdict in a reply that names the sending host */
} bp_verdict_guard;

/** How a failure's category was chosen, layer by layer (for explain). */
typedef struct bp_verdict {
    const char *category;         /**< the category (never NULL) */
    const char *rule;             /**< the deciding id: a rule id, "status:X.Y.Z", "smtp:NNN", "local-delivery",
                                       "mta:CATEGORY", "stage:COMMAND", "party:sender", "party:sending-host",
                                       "default" (NULL only when out of memory) */
    const char *blocklist;        /**< the block list a matching rule names, or NULL */
    bp_verdict_step step;         /**< the layer that chose the category before the guards */
    bp_rule_match match;          /**< the rule, for BP_VERDICT_RULE and BP_VERDICT_PASSAGES */
    const char *codes_category;   /**< what the codes alone say (the base verdict) */
    bp_verdict_guard guard;       /**< the guard that changed the category, or BP_GUARD_NONE */
    const char *guarded_category; /**< with a guard: the category before it */
    const char *guarded_rule;     /**< with a guard: the id before it */
} bp_verdict;

/**
 * Classify one failure through the layers above.
 * @param rules may be NULL: codes only
 * @param arena holds the code-table ids it makes
 * @param out receives every step (may be NULL)
 * @return the category (never NULL).
 */
const char *bp_classify_failure(bp_rules *rules, bp_arena *arena, const bp_failure *f, bp_verdict *out);

/** @return non-zero for a category that is a verdict on the recipient's mailbox or domain
 *  (bad-mailbox, inactive-mailbox, bad-domain): what the guards of the parties protect. */
int bp_category_is_recipient_verdict(const char *category);

/** @return non-zero when an event of @p type with @p status is a final failure: a bounce whose
 *  status (if any) is not a temporary 4.x.x one.  Only final failures suppress outright. */
int bp_failure_is_final(bp_event_type type, const char *status);

#endif
