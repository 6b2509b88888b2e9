/*
 * complaint.h - a complaint's recipient from the original it carries (not public): the report
 * layer's side of the one complaint model (bouncepipe/complaint.h), which reads the attached
 * original's headers through bp_part_header().
 */
#ifndef BOUNCEPIPE_REPORT_COMPLAINT_H
#define BOUNCEPIPE_REPORT_COMPLAINT_H

#include "bouncepipe/complaint.h"
#include "bouncepipe/report.h"

/**
 * Set @p b's recipient from @p r->original by bp_complaint_from_original(): X-HmXmrOriginalRecipient,
 * then each configured per-recipient header (opts->rcpt_headers), then the To: of a
 * single-recipient original; a redacted address is passed over.
 * Leaves the recipient NULL (redacted) when none gives an address; the VERP fallback is the
 * caller's (it needs the envelope).
 */
void bp_complaint_recipient(const bp_report *r, const bp_report_options *opts, bp_arena *arena, bp_rcpt_block *b);

/** bp_complaint_header_fn over a MIME part (@p ctx is a const bp_part *). */
const char *bp_complaint_part_header(const void *ctx, const char *name);

#endif
