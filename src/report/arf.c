/*
 * arf.c - RFC 5965 feedback reports (ARF) and RFC 6591 authentication-failure reports.
 *
 * bp_arf_parse(): the message/feedback-report part gives Feedback-Type (normalised: "opt-out"
 * also for "optout" and "unsubscribe"), Original-Mail-From, Original-Rcpt-To (one block per
 * field, or Removal-Recipient in opt-out reports), Source-IP, Reported-Domain, Arrival-Date,
 * User-Agent, Reporting-MTA.  Without an Original-Rcpt-To the recipient comes from the
 * attached original (bp_complaint_recipient).
 * A redacted recipient ("redacted@", "xxxx@") still yields a block, with recipient NULL
 * unless the original names the recipient in a configured header.  Apple Mail's
 * unsubscribe message (X-Apple-Unsubscribe) is read as an opt-out report.
 */
#include <string.h>
#include <strings.h>

#include "bouncepipe/address.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "complaint.h"
#include "report_internal.h"

static const char *semi_value(bp_arena *arena, const char *v)
{
    if (v == NULL)
        return NULL;
    const char *semi = strchr(v, ';');
    const char *s = semi != NULL ? semi + 1 : v;
    return bp_trim_dup(arena, s, strlen(s));
}

/*
 * Apple Mail's "Unsubscribe" button sends a plain message to the List-Unsubscribe mailto:
 * address with "X-Apple-Unsubscribe: true"; its sender is the recipient who opted out.
 * Not ARF, but the same meaning as Feedback-Type: opt-out (docs/violations.md).
 */
static bp_status apple_unsubscribe(const bp_part *root, bp_arena *arena, bp_report *out)
{
    const char *flag = bp_part_header(root, "X-Apple-Unsubscribe");
    if (flag == NULL || !bp_starts_with_ci(flag, "true"))
        return BP_OK;
    out->kind = BP_REPORT_FEEDBACK;
    out->family = "apple-unsubscribe";
    out->feedback_type = "opt-out";
    out->arrival_date = bp_part_header(root, "Date");
    return bp_report_add_sender_block(out, root, BP_ACTION_FAILED, arena) != NULL ? BP_OK : BP_ERR_NOMEM;
}

bp_status bp_arf_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out)
{
    const bp_part *root = msg->root;
    const bp_part *part = NULL;
    for (const bp_part *p = root; p != NULL; p = bp_part_walk_next(root, p)) {
        if (p->is_message && p != root)
            continue;
        if (bp_part_is(p, "message", "feedback-report") && p->body != NULL) {
            part = p;
            break;
        }
    }
    if (part == NULL)
        return apple_unsubscribe(root, arena, out);
    bp_field_group *groups = NULL;
    size_t n = 0;
    bp_status st = bp_fields_parse(part->body, part->body_len, 4, arena, &groups, &n, NULL);
    if (st != BP_OK)
        return st;
    if (n == 0)
        return BP_OK;
    /* feedback fields sometimes come in more than one group; read them as one */
    bp_field_group all = groups[0];
    if (n > 1) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += groups[i].n;
        all.fields = bp_arena_alloc(arena, total * sizeof(bp_field));
        if (all.fields == NULL)
            return BP_ERR_NOMEM;
        all.n = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(all.fields + all.n, groups[i].fields, groups[i].n * sizeof(bp_field));
            all.n += groups[i].n;
        }
    }
    out->kind = BP_REPORT_FEEDBACK;
    out->family = "arf";
    out->feedback_type = bp_feedback_type_normalise(bp_fields_get(&all, "Feedback-Type"));
    out->original_mail_from = bp_address_normalise(arena, bp_fields_get(&all, "Original-Mail-From"));
    out->source_ip = bp_fields_get(&all, "Source-IP");
    out->reported_domain = bp_fields_get(&all, "Reported-Domain");
    out->user_agent = bp_fields_get(&all, "User-Agent");
    out->arrival_date = bp_fields_get(&all, "Arrival-Date");
    if (out->arrival_date == NULL)
        out->arrival_date = bp_fields_get(&all, "Received-Date");
    out->reporting_mta = semi_value(arena, bp_fields_get(&all, "Reporting-MTA"));
    bp_report_note_original(out, root, arena);

    for (size_t i = 0; i < all.n; i++) {
        /* Removal-Recipient: the opt-out extension's name for the same thing */
        if (strcasecmp(all.fields[i].name, "Original-Rcpt-To") != 0 &&
            strcasecmp(all.fields[i].name, "Removal-Recipient") != 0)
            continue;
        bp_complaint_pick pick = {0};
        if (!bp_complaint_rcpt_field(arena, all.fields[i].value, "original-rcpt-to", all.fields[i].name,
                                     opts != NULL ? opts->verp : NULL, &pick))
            continue;
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL)
            break;
        b->recipient = pick.recipient;
        b->recipient_from = strcmp(pick.from, "verp") == 0 ? BP_FROM_VERP : BP_FROM_ORIGINAL_RCPT_TO;
        b->field = pick.field;
        b->part_index = part->index;
        b->action = BP_ACTION_FAILED;
    }
    if (out->n_blocks == 0) {
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL)
            return BP_ERR_NOMEM;
        b->action = BP_ACTION_FAILED;
        bp_complaint_recipient(out, opts, arena, b);
    }
    return BP_OK;
}
