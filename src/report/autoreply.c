/*
 * autoreply.c - RFC 3834 auto-replies, vacation and out-of-office messages, and
 * challenge-response requests.
 *
 * bp_autoreply_parse(): runs after the DSN and complaint parsers, so a DSN that carries
 * "Auto-Submitted: auto-replied" (as RFC 3464 reports often do) never arrives here.  A
 * message is an auto-reply when it has an auto-reply marker (X-Autoreply, X-Autorespond,
 * Precedence: auto_reply, Auto-Submitted: auto-replied) or a vacation Subject together with
 * a sign that a program wrote it, and does not look like a bounce: From is not a mailer
 * daemon, no bounce words in the Subject, and the structure is not a bounce's (an
 * X-Failed-Recipients header; a returned original attached with an SMTP reply or enhanced
 * status in the text - "Auto-Submitted: auto-replied" with a status is a bounce in any
 * language).  The recipient is the sender of the auto-reply.
 * The reply's own words (report.reply_text, cleaned and capped) go with it: the classifier
 * makes a bounce of an auto-reply whose words are a mailbox verdict ("That's not a valid user
 * here").
 * A challenge-response request (a sender-verification system asking the sender to confirm a
 * message or to prove it is a human, "your server requires confirmation") is an auto-reply of
 * family "challenge-response" whatever it looks like, and never a bounce: it has no
 * reply_text.
 * Ownership: every string put into the report belongs to the arena passed in.
 */
#include <string.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "explanation.h"
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

/* A sender-verification system's request, in the folded text: it asks the sender to confirm
 * the message or to show it is a person (TMDA, ASK and the like; services that "require
 * confirmation"). */
static const char *const challenge_cues[] = {"requires confirmation",
                                             "require confirmation",
                                             "you are a human",
                                             "you're a human",
                                             "you are human",
                                             "not a robot",
                                             "confirm your message",
                                             "confirm your e-mail message",
                                             "confirm your email message",
                                             "verify your message",
                                             "confirm that you sent",
                                             "challenge-response",
                                             "challenge/response",
                                             "challenge response",
                                             NULL};

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

/* The text of the message up to a quoted original, folded (NULL when it has none). */
typedef struct reply_text {
    const bp_part *part;
    const char *text, *folded;
    const bp_byte_pairs *pairs; /* of folded */
    size_t len;                 /* up to the quoted original */
} reply_text;

/* Read once per message (bp_explanation_read()): kept in @p out for the text-bounce scanner
 * and reading.c when this is no auto-reply. */
static bp_status read_text(const bp_part *root, bp_arena *arena, bp_report *out, reply_text *t)
{
    memset(t, 0, sizeof(*t));
    t->part = bp_explanation_part(root);
    if (t->part == NULL)
        return BP_OK;
    bp_status st = bp_explanation_read(out, arena, t->part);
    if (st != BP_OK)
        return st;
    t->text = out->explanation;
    t->folded = out->explanation_folded;
    t->pairs = out->explanation_pairs;
    t->len = out->explanation_len;
    return BP_OK;
}

static int is_challenge(const reply_text *t)
{
    for (int i = 0; t->folded != NULL && challenge_cues[i] != NULL; i++)
        if (bp_explanation_find(t->pairs, t->folded, t->len, challenge_cues[i]) != NULL)
            return 1;
    return 0;
}

/* A bounce's structure, in any language: X-Failed-Recipients, or the returned original
 * attached together with an SMTP reply or an enhanced status in the text. */
static int bounce_structure(const bp_part *root, bp_arena *arena, const reply_text *t)
{
    if (bp_part_header(root, "X-Failed-Recipients") != NULL)
        return 1;
    if (t->text == NULL || bp_report_find_original(root, arena) == NULL)
        return 0;
    char code[4];
    char status[BP_STATUS_BUF];
    return bp_status_code_find(t->text, t->len, status) ||
           (bp_smtp_code_find(t->text, t->len, code) && (code[0] == '4' || code[0] == '5'));
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
    /* a program wrote it: an Auto-Submitted other than "no", a reply to something, a bulk
     * Precedence, a null return path, or Exchange's inbox-rule headers */
    int generated = (as != NULL && !bp_starts_with_ci(as, "no")) || bp_part_header(root, "In-Reply-To") != NULL ||
                    (prec != NULL && (bp_strcasestr(prec, "bulk") || bp_strcasestr(prec, "junk"))) ||
                    (rp != NULL && strstr(rp, "<>") != NULL) ||
                    bp_part_header(root, "X-MS-Exchange-Inbox-Rules-Loop") != NULL ||
                    bp_part_header(root, "X-Auto-Response-Suppress") != NULL;
    reply_text t = {0};
    int challenge = 0;
    if (marker || generated || subject_cue || from_daemon(root)) {
        bp_status st = read_text(root, arena, out, &t);
        if (st != BP_OK)
            return st;
        challenge = is_challenge(&t);
    }
    if (!challenge) {
        if (!marker && !subject_cue)
            return BP_OK;
        if (from_daemon(root) || has_cue(out->subject, bounce_cues) || bounce_structure(root, arena, &t))
            return BP_OK;
        /* A subject cue alone is weak: it needs a sign that a program wrote the message. */
        if (!marker && !generated)
            return BP_OK;
    }

    out->kind = BP_REPORT_AUTOREPLY;
    out->family = challenge ? "challenge-response" : "autoreply";
    if (!challenge && t.text != NULL && t.len > 0)
        out->reply_text = bp_clean_text(arena, t.text, t.len, BP_MAX_DIAGNOSTIC_BYTES);
    bp_rcpt_block *b = bp_report_add_sender_block(out, root, BP_ACTION_UNKNOWN, arena);
    if (b == NULL)
        return BP_ERR_NOMEM;
    b->part_index = 0;
    if (out->subject != NULL)
        b->diagnostic = bp_clean_text(arena, out->subject, strlen(out->subject), 200);
    return BP_OK;
}
