/*
 * report.c - recognise which kind of report a message is and dispatch to its parser.
 *
 * bp_report_parse(): fills the per-message fields every kind shares (Message-ID, Subject,
 * From), then tries the family parsers of the table below in order of how strong their
 * signature is: a machine-readable delivery-status part, a feedback-report part, a JMRP
 * original, a sending service's JSON event notification (esp.c), an auto-reply, and last
 * the text-bounce scanners.  The first that recognises the
 * message wins.  A new family is a row of the table.  What the parsers share lives below
 * them (blocks.c, original.c), so nothing here is called back.  Then bp_report_read()
 * (reading.c) reads what the report says around the codes of each block: the SMTP stage, the
 * innermost reply, the passages about the recipient, the parties.
 */
#include "bouncepipe/report.h"

#include <string.h>

/* The family parsers, strongest signature first. */
static const bp_report_family_fn families[] = {
    bp_dsn_parse, bp_arf_parse, bp_jmrp_parse, bp_esp_parse, bp_autoreply_parse, bp_textbounce_parse,
};

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

    bp_status st = BP_OK;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]) && st == BP_OK && out->kind == BP_REPORT_NONE; i++)
        st = families[i](msg, opts, arena, out);
    if (st == BP_OK) /* what the report says around its codes, for every family (reading.c) */
        st = bp_report_read(msg, arena, out);
    return st;
}
