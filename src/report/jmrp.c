/*
 * jmrp.c - Microsoft JMRP complaints and the recipient rules shared by all complaints.
 *
 * bp_jmrp_parse(): a message (no feedback-report part; ARF is tried first) that attaches an
 * original carrying X-HmXmrOriginalRecipient, or comes from Microsoft's staff address with
 * an attached original, is a complaint of type abuse; arrival date and source IP come from
 * the original's first Received header.
 * bp_complaint_recipient(): the report layer's side of the one complaint model
 * (bouncepipe/complaint.h): the attached original's headers handed to
 * bp_complaint_from_original().
 */
#include <string.h>

#include "bouncepipe/address.h"
#include "bouncepipe/text.h"
#include "complaint.h"
#include "report_internal.h"

const char *bp_complaint_part_header(const void *ctx, const char *name)
{
    return bp_part_header((const bp_part *)ctx, name);
}

void bp_complaint_recipient(const bp_report *r, const bp_report_options *opts, bp_arena *arena, bp_rcpt_block *b)
{
    if (r->original == NULL)
        return;
    bp_complaint_pick pick = {0};
    if (!bp_complaint_from_original(bp_complaint_part_header, r->original, opts != NULL ? opts->rcpt_headers : NULL,
                                    arena, &pick))
        return;
    b->recipient = pick.recipient;
    b->recipient_from = strcmp(pick.from, "x-hmxmroriginalrecipient") == 0 ? BP_FROM_X_HMXMR : BP_FROM_HEADER;
    b->field = pick.field;
}

/*
 * JMRP has no feedback fields: when and from where the original arrived are in the first
 * Received header of the original, the one Microsoft's MX added:
 *   "from mta1.example.com ([192.0.2.10]) by BAY004-MC1F12... ; Tue, 10 Mar 2026 02:14:03 -0700"
 * The date is what follows the last ';'; the source IP the first bracketed literal.
 */
static void arrival_from_received(const bp_part *orig, bp_arena *arena, bp_report *out)
{
    const char *rcvd = bp_part_header(orig, "Received");
    if (rcvd == NULL)
        return;
    const char *semi = strrchr(rcvd, ';');
    if (semi != NULL)
        out->arrival_date = bp_trim_dup(arena, semi + 1, strlen(semi + 1));
    const char *by = bp_strcasestr(rcvd, " by ");
    const char *open = strchr(rcvd, '[');
    if (open == NULL || (by != NULL && open > by))
        return;
    size_t len = strspn(open + 1, "0123456789abcdefABCDEF.:");
    if (len >= 3 && open[1 + len] == ']')
        out->source_ip = bp_arena_strndup(arena, open + 1, len);
}

bp_status bp_jmrp_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out)
{
    const bp_part *root = msg->root;
    const bp_part *orig = bp_report_find_original(root, arena);
    if (orig == NULL)
        return BP_OK;
    const char *from = bp_part_header(root, "From");
    int staff = from != NULL &&
                (bp_strcasestr(from, "staff@hotmail.com") != NULL || bp_strcasestr(from, "complaints@") != NULL);
    if (bp_part_header(orig, "X-HmXmrOriginalRecipient") == NULL && !staff)
        return BP_OK;
    out->kind = BP_REPORT_JMRP;
    out->family = "jmrp";
    out->feedback_type = "abuse";
    out->original = orig;
    out->original_message_id = bp_part_header(orig, "Message-ID");
    out->original_to = bp_part_header(orig, "To");
    arrival_from_received(orig, arena, out);
    bp_rcpt_block *b = bp_report_add_block(out, arena);
    if (b == NULL)
        return BP_ERR_NOMEM;
    b->action = BP_ACTION_FAILED;
    b->part_index = orig->index;
    bp_complaint_recipient(out, opts, arena, b);
    return BP_OK;
}
