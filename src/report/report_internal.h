/*
 * report_internal.h - helpers shared by the family parsers of src/report/ (not public).
 */
#ifndef BOUNCEPIPE_REPORT_INTERNAL_H
#define BOUNCEPIPE_REPORT_INTERNAL_H

#include "bouncepipe/fields.h"
#include "bouncepipe/report.h"

/**
 * The original message a report carries: the message inside a message/rfc822 (or
 * message/global) part, or a text/rfc822-headers part turned into a part with headers.
 * Searches below @p root only, and not inside the original itself.
 * @return a part whose headers are the original's, or NULL.  Arena-owned.
 */
const bp_part *bp_report_find_original(const bp_part *root, bp_arena *arena);

/** Fill out->original, original_message_id and original_to from the original, if any. */
void bp_report_note_original(bp_report *out, const bp_part *root, bp_arena *arena);

/** @return the one address the To: of @p orig (an original found as above) names, or NULL
 *  when it names none or more than one, or a Cc: names anyone.  Arena-owned. */
const char *bp_report_original_recipient(const bp_part *orig, bp_arena *arena);

/** Take a diagnostic text (blocks.c): clean and cap it, and derive status and SMTP code from
 *  it when the block has none. */
void bp_block_set_diagnostic(bp_rcpt_block *b, bp_arena *arena, const char *text, size_t len);

/** Append a block (blocks.c) with @p action for the one who wrote @p root: the address of its
 *  From: header (normalised; none when From names no address).  @return the block, or NULL
 *  as bp_report_add_block(). */
bp_rcpt_block *bp_report_add_sender_block(bp_report *r, const bp_part *root, bp_rcpt_action action, bp_arena *arena);

/** @return non-zero when the message comes from a mailer daemon (From or Return-Path). */
int bp_report_from_daemon(const bp_part *root);

#endif
