/*
 * report.c - recognise which kind of report a message is and dispatch to its parser.
 *
 * bp_report_parse(): fills the per-message fields every kind shares (Message-ID, Subject,
 * From), then tries the family parsers in order of how strong their signature is: a
 * machine-readable delivery-status part, a feedback-report part, a JMRP original, an
 * auto-reply, and last the text-bounce scanners.  The first that recognises the message wins.
 */
#include "bouncepipe/report.h"

#include <string.h>

#include "bouncepipe/limits.h"

bp_rcpt_block *bp_report_add_block(bp_report *r, bp_arena *arena)
{
    if (r->n_blocks >= BP_MAX_RECIPIENTS) {
        r->n_blocks_dropped++;
        return NULL;
    }
    if (r->n_blocks == r->cap_blocks) {
        size_t cap = r->cap_blocks ? r->cap_blocks * 2 : 4;
        bp_rcpt_block *nb = bp_arena_alloc(arena, cap * sizeof(*nb));
        if (nb == NULL)
            return NULL;
        if (r->n_blocks > 0)
            memcpy(nb, r->blocks, r->n_blocks * sizeof(*nb));
        r->blocks = nb;
        r->cap_blocks = cap;
    }
    bp_rcpt_block *b = &r->blocks[r->n_blocks++];
    memset(b, 0, sizeof(*b));
    return b;
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

const char *bp_report_kind_name(bp_report_kind kind)
{
    switch (kind) {
    case BP_REPORT_DSN: return "dsn";
    case BP_REPORT_FEEDBACK: return "feedback";
    case BP_REPORT_JMRP: return "jmrp";
    case BP_REPORT_AUTOREPLY: return "autoreply";
    case BP_REPORT_TEXT: return "text";
    case BP_REPORT_NONE: break;
    }
    return "none";
}

bp_status bp_report_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out)
{
    memset(out, 0, sizeof(*out));
    const bp_part *root = msg->root;
    out->message = root;
    out->message_id = bp_part_header(root, "Message-ID");
    out->subject = bp_mime_decode_header(arena, bp_part_header(root, "Subject"));
    out->from = bp_part_header(root, "From");

    bp_status st = bp_dsn_parse(msg, arena, out);
    if (st == BP_OK && out->kind == BP_REPORT_NONE)
        st = bp_arf_parse(msg, opts, arena, out);
    if (st == BP_OK && out->kind == BP_REPORT_NONE)
        st = bp_jmrp_parse(msg, opts, arena, out);
    if (st == BP_OK && out->kind == BP_REPORT_NONE)
        st = bp_autoreply_parse(msg, arena, out);
    if (st == BP_OK && out->kind == BP_REPORT_NONE)
        st = bp_textbounce_parse(msg, arena, out);
    return st;
}
