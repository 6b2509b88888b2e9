/*
 * classify.h - a failure's category: from the rules (text first), else from the enhanced
 * status and SMTP codes (RFC 3463 table); and whether a failure is final.  The action comes
 * from the policy (policy.h).  Reports are turned into events by the core
 * (report_events.h), accounting records by acct.h: both with these functions, so that the
 * classify layer knows nothing of reports, MIME or CSV.
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

/** @return non-zero when an event of @p type with @p status is a final failure: a bounce whose
 *  status (if any) is not a temporary 4.x.x one.  Only final failures suppress outright. */
int bp_failure_is_final(bp_event_type type, const char *status);

#endif
