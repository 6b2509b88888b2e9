/*
 * blocks.c - the per-recipient blocks every family parser fills: appending a block within
 * BP_MAX_RECIPIENTS, taking a diagnostic text into it, and naming where its recipient came
 * from.
 *
 * bp_report_add_block(): blocks grow in the arena (doubling from 4); past BP_MAX_RECIPIENTS
 * they are counted in n_blocks_dropped, not kept.  bp_block_set_diagnostic(): the text is
 * cleaned and capped at BP_MAX_DIAGNOSTIC_BYTES (control bytes masked), and the SMTP code and
 * enhanced status are read from it when the block has none; a generic X.0.0 from the
 * reporting MTA yields to the remote server's own code.  bp_report_add_sender_block(): the
 * block of a message that names its recipient only as its sender (a complaint's or an
 * auto-reply's From:).  Strings belong to the arena.
 */
#include <string.h>

#include "bouncepipe/address.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "report_internal.h"

bp_rcpt_block *bp_report_add_block(bp_report *r, bp_arena *arena)
{
    if (r->n_blocks >= BP_MAX_RECIPIENTS) {
        r->n_blocks_dropped++;
        return NULL;
    }
    return bp_arena_push(arena, &r->blocks, &r->n_blocks, &r->cap_blocks, sizeof(*r->blocks), 4);
}

bp_rcpt_block *bp_report_add_sender_block(bp_report *r, const bp_part *root, bp_rcpt_action action, bp_arena *arena)
{
    bp_rcpt_block *b = bp_report_add_block(r, arena);
    if (b == NULL)
        return NULL;
    b->action = action;
    b->recipient = bp_address_normalise(arena, bp_part_header(root, "From"));
    if (b->recipient != NULL) {
        b->recipient_from = BP_FROM_HEADER;
        b->field = "From";
    }
    return b;
}

void bp_block_set_diagnostic(bp_rcpt_block *b, bp_arena *arena, const char *text, size_t len)
{
    if (text == NULL || len == 0)
        return;
    b->diagnostic = bp_clean_text(arena, text, len, BP_MAX_DIAGNOSTIC_BYTES);
    if (b->diagnostic == NULL)
        return;
    size_t dlen = strlen(b->diagnostic);
    char code[4];
    if (b->smtp_code == NULL && bp_smtp_code_find(b->diagnostic, dlen, code))
        b->smtp_code = bp_arena_strdup(arena, code);
    char status[BP_STATUS_BUF];
    if (bp_status_code_find(b->diagnostic, dlen, status)) {
        /* A generic X.0.0 from the reporting MTA yields to the remote server's own code. */
        if (b->status == NULL ||
            (strcmp(b->status + 1, ".0.0") == 0 && status[0] == b->status[0] && strcmp(status + 1, ".0.0") != 0))
            b->status = bp_arena_strdup(arena, status);
    }
}

const char *bp_rcpt_source_name(bp_rcpt_source from)
{
    switch (from) {
    case BP_FROM_FINAL_RECIPIENT: return "final-recipient";
    case BP_FROM_ORIGINAL_RECIPIENT: return "original-recipient";
    case BP_FROM_ORIGINAL_RCPT_TO: return "original-rcpt-to";
    case BP_FROM_X_HMXMR: return "x-hmxmroriginalrecipient";
    case BP_FROM_HEADER: return "header";
    case BP_FROM_VERP: return "verp";
    case BP_FROM_BODY: return "body";
    case BP_FROM_NONE: break;
    }
    return NULL;
}
