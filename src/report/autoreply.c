/*
 * autoreply.c - RFC 3834 auto-replies, vacation and out-of-office messages.
 *
 * bp_autoreply_parse(): runs after the DSN and complaint parsers, so a DSN that carries
 * "Auto-Submitted: auto-replied" (as RFC 3464 reports often do) never arrives here.  A
 * message is an auto-reply when it has an auto-reply marker (X-Autoreply, X-Autorespond,
 * Precedence: auto_reply, Auto-Submitted: auto-replied) or a vacation Subject together with
 * a sign that a program wrote it, and does not look like a bounce (From is not a mailer
 * daemon, no bounce words in the Subject).  The recipient is the sender of the auto-reply.
 */
#include <string.h>

#include "bouncepipe/address.h"
#include "bouncepipe/text.h"
#include "report_internal.h"

static const char *const subject_cues[] = {"auto:",
                                           "automatic reply",
                                           "autoreply",
                                           "auto-reply",
                                           "auto reply",
                                           "out of office",
                                           "out of the office",
                                           "vacation",
                                           "away from",
                                           "abwesenheit",
                                           "automatische antwort",
                                           "réponse automatique",
                                           "reponse automatique",
                                           "absence",
                                           "respuesta automática",
                                           "risposta automatica",
                                           "不在",
                                           "自動返信",
                                           "自动回复",
                                           NULL};

static const char *const bounce_cues[] = {
    "undeliver",     "delivery status", "delivery failure", "returned mail", "failure notice", "delivery notification",
    "mail delivery", "non remis",       "unzustellbar",     "nondeliver",    "not delivered",  NULL};

static int has_cue(const char *s, const char *const *cues)
{
    if (s == NULL)
        return 0;
    for (int i = 0; cues[i] != NULL; i++)
        if (bp_strcasestr(s, cues[i]) != NULL)
            return 1;
    return 0;
}

/* From names a mailer daemon or postmaster.  Return-Path is not looked at: RFC 3834
 * section 3.3 asks auto-replies to use the null return path too. */
static int from_daemon(const bp_part *root)
{
    static const char *const daemons[] = {"mailer-daemon", "postmaster", "mail delivery", "mailerdaemon", "mail-daemon",
                                          "maildaemon",    NULL};
    const char *from = bp_part_header(root, "From");
    for (int i = 0; from != NULL && daemons[i] != NULL; i++)
        if (bp_strcasestr(from, daemons[i]) != NULL)
            return 1;
    return 0;
}

bp_status bp_autoreply_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out)
{
    (void)opts;
    const bp_part *root = msg->root;
    const char *as = bp_part_header(root, "Auto-Submitted");
    const char *prec = bp_part_header(root, "Precedence");
    const char *rp = bp_part_header(root, "Return-Path");
    int marker = bp_part_header(root, "X-Autoreply") != NULL || bp_part_header(root, "X-Autorespond") != NULL ||
                 bp_part_header(root, "X-Autoresponder") != NULL ||
                 (prec != NULL && bp_strcasestr(prec, "auto_reply") != NULL) ||
                 (as != NULL && bp_strcasestr(as, "auto-replied") != NULL);
    int subject_cue = has_cue(out->subject, subject_cues);
    if (!marker && !subject_cue)
        return BP_OK;
    if (from_daemon(root) || has_cue(out->subject, bounce_cues))
        return BP_OK;
    /* A subject cue alone is weak: it needs a sign that a program wrote the message - an
     * Auto-Submitted other than "no", a reply to something, a bulk Precedence, a null return
     * path, or Exchange's inbox-rule headers (Outlook's "Automatic reply:"). */
    int generated = (as != NULL && !bp_starts_with_ci(as, "no")) || bp_part_header(root, "In-Reply-To") != NULL ||
                    (prec != NULL && (bp_strcasestr(prec, "bulk") || bp_strcasestr(prec, "junk"))) ||
                    (rp != NULL && strstr(rp, "<>") != NULL) ||
                    bp_part_header(root, "X-MS-Exchange-Inbox-Rules-Loop") != NULL ||
                    bp_part_header(root, "X-Auto-Response-Suppress") != NULL;
    if (!marker && !generated)
        return BP_OK;

    out->kind = BP_REPORT_AUTOREPLY;
    out->family = "autoreply";
    bp_rcpt_block *b = bp_report_add_block(out, arena);
    if (b == NULL)
        return BP_ERR_NOMEM;
    b->action = BP_ACTION_UNKNOWN;
    b->recipient = bp_address_normalise(arena, bp_part_header(root, "From"));
    if (b->recipient != NULL) {
        b->recipient_from = BP_FROM_HEADER;
        b->field = "From";
    }
    b->part_index = 0;
    if (out->subject != NULL)
        b->diagnostic = bp_clean_text(arena, out->subject, strlen(out->subject), 200);
    return BP_OK;
}
