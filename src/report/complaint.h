/*
 * complaint.h - the recipient of a complaint, from the original it carries (not public).
 */
#ifndef BOUNCEPIPE_COMPLAINT_H
#define BOUNCEPIPE_COMPLAINT_H

#include "bouncepipe/report.h"

/**
 * Set @p b's recipient from @p r->original: X-HmXmrOriginalRecipient, then each configured
 * per-recipient header (opts->rcpt_headers), then the To: of a single-recipient original;
 * a redacted address (bp_complaint_redacted) is passed over.
 * Leaves the recipient NULL (redacted) when none gives an address; the VERP fallback is the
 * caller's (it needs the envelope).
 */
void bp_complaint_recipient(const bp_report *r, const bp_report_options *opts, bp_arena *arena, bp_rcpt_block *b);

/**
 * @return non-zero when @p addr is a redacted placeholder, not a person: a local part
 * "redacted", or one made only of "x" and "*" (as Yahoo and others send), or empty.
 */
int bp_complaint_redacted(const char *addr);

#endif
