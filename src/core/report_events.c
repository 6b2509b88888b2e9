/*
 * report_events.c - a report's recipient blocks to events (report_events.h).
 *
 * bp_classify(): one event per recipient block (one "unrecognized" event when there is
 * none).  The event type follows the report kind and the block's action; the recipient is
 * the report's own, else the VERP-decoded envelope recipient (from --rcpt, else the report's
 * own Delivered-To / X-Original-To / To, else the original's Return-Path); every one of them
 * only when it is a valid address (bp_address_check(): a rejected Final-Recipient gives way
 * to the Original-Recipient, then to VERP, else the event has no recipient, and explain says
 * what was rejected and why); the category comes from classify.c through its layers (the
 * innermost reply, the report's passages, the codes, the guards of the stage and the parties:
 * classify.h); the smtp_command is the stage the report stated; the action from the policy;
 * the job id from the attached original's X-Job header (complaint.h).
 * With ctx->explain, every step is recorded as data (bp_explain) for explain to word.
 * This is core: it is where the report stage's output meets the classify stage, so neither
 * includes the other.
 */
#include "bouncepipe/report_events.h"

#include <string.h>
#include <strings.h>

#include "bouncepipe/complaint.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

/* @p candidate when it is a valid address, else NULL; the first rejection is noted in @p x
 * (NULL: not explaining) with the candidate masked for printing. */
static const char *valid_address(const char *candidate, const char *field, bp_arena *arena, bp_explain *x)
{
    if (candidate == NULL)
        return NULL;
    const char *why = bp_address_check(candidate);
    if (why == NULL)
        return candidate;
    if (x != NULL && x->rejected_address == NULL) {
        x->rejected_address = bp_text_mask(arena, candidate, BP_MAX_ADDRESS_BYTES);
        x->rejected_why = why;
        x->rejected_field = field;
    }
    return NULL;
}

static bp_event_type event_type(const bp_report *r, const bp_rcpt_block *b)
{
    switch (r->kind) {
    case BP_REPORT_FEEDBACK:
    case BP_REPORT_JMRP: return BP_EVENT_COMPLAINT;
    case BP_REPORT_AUTOREPLY: return BP_EVENT_AUTOREPLY;
    case BP_REPORT_NONE: return BP_EVENT_UNRECOGNIZED;
    default: break;
    }
    switch (b->action) {
    case BP_ACTION_FAILED: return BP_EVENT_BOUNCE;
    case BP_ACTION_DELAYED: return BP_EVENT_DELAY;
    case BP_ACTION_DELIVERED:
    case BP_ACTION_RELAYED:
    case BP_ACTION_EXPANDED: return BP_EVENT_DELIVERED;
    case BP_ACTION_UNKNOWN: break;
    }
    if (b->status != NULL && b->status[0] == '2')
        return BP_EVENT_DELIVERED;
    return BP_EVENT_BOUNCE;
}

/* bp_complaint_header_fn over the attached original (complaint.h). */
static const char *original_header(const void *ctx, const char *name)
{
    return bp_part_header((const bp_part *)ctx, name);
}

static void fill_common(const bp_classify_ctx *ctx, const bp_report *r, bp_arena *arena, bp_event *e)
{
    e->source = ctx->source;
    e->message_id = r->message_id;
    e->reporting_mta = r->reporting_mta;
    e->arrival_date = r->arrival_date;
    e->source_ip = r->source_ip;
    e->envid = r->envid != NULL ? r->envid : ctx->envid;
    e->original_message_id = r->original_message_id;
    /* PowerMTA's job id in the original (its X-Job header, kept with retain-x-job): the
     * accounting record of the same failure carries it too (complaint.h) */
    e->job_id = r->original != NULL ? bp_complaint_job(original_header, r->original, arena) : NULL;
    e->family = r->family;
}

/* The VERP-decoded bounce address, from the first place that carries one: the envelope
 * recipient (--rcpt), the report's own Delivered-To / X-Original-To / To (where the report
 * was delivered: the bounce address; reached through the original's parent chain), or the
 * original's Return-Path (complaints and bounces that attach the original). */
static const char *verp_address(const bp_classify_ctx *ctx, const bp_report *r, bp_arena *arena)
{
    static const char *const delivered_headers[] = {"Delivered-To", "X-Original-To", "To"};
    const char *addr = NULL;
    if (ctx->envelope_rcpt != NULL)
        addr = bp_verp_decode(arena, ctx->envelope_rcpt, ctx->verp);
    /* Without --rcpt, the report's own headers (never the original's) may carry the bounce
     * address; with it, the envelope is authoritative and the headers are not consulted. */
    const bp_part *top = ctx->envelope_rcpt == NULL ? r->message : NULL;
    for (size_t h = 0; addr == NULL && top != NULL && top != r->original && h < 3; h++)
        for (size_t i = 0; addr == NULL && i < top->n_headers; i++)
            if (strcasecmp(top->headers[i].name, delivered_headers[h]) == 0)
                addr = bp_verp_decode(arena, top->headers[i].value, ctx->verp);
    if (addr == NULL && r->original != NULL &&
        (r->kind == BP_REPORT_FEEDBACK || r->kind == BP_REPORT_JMRP || r->kind == BP_REPORT_DSN ||
         r->kind == BP_REPORT_TEXT)) {
        char *rp = bp_address_normalise(arena, bp_part_header(r->original, "Return-Path"));
        if (rp != NULL)
            addr = bp_verp_decode(arena, rp, ctx->verp);
    }
    return addr;
}

/* Whether block @p b's family default decides, after the layers of classify.h gave verdict
 * @p v: only when no rule of patterns/ matched and no specific enhanced status decided (the
 * SMTP code, nothing at all, or a generic X.Y.0 without text).  A default scoped "unless RCPT"
 * yields to the codes when the report says the recipient's SMTP stage was RCPT. */
static int family_default_applies(const bp_rcpt_block *b, const bp_verdict *v)
{
    if (b->default_category == NULL)
        return 0;
    if (b->default_unless_rcpt && b->smtp_command == BP_SMTP_RCPT)
        return 0;
    return v->step == BP_VERDICT_SMTP || v->step == BP_VERDICT_DEFAULT || v->step == BP_VERDICT_GENERIC;
}

/* An auto-reply whose own words are a mailbox verdict ("That's not a valid user here", "this
 * address is no longer in use"): a rule of patterns/ over report->reply_text says the address
 * does not exist, is closed or its domain is gone.  @return the category, with the rule's id
 * in @p rule, or NULL (a holiday notice stays an auto-reply). */
static const char *autoreply_verdict(const bp_classify_ctx *ctx, const bp_report *r, const char **rule)
{
    if (r->kind != BP_REPORT_AUTOREPLY || r->reply_text == NULL || ctx->rules == NULL)
        return NULL;
    bp_rule_subject subj = {r->reply_text, strlen(r->reply_text), NULL, NULL, NULL, BP_SMTP_NONE};
    bp_rule_match m;
    if (!bp_rules_match(ctx->rules, &subj, &m))
        return NULL;
    const char *c = m.rule->category;
    if (!bp_category_is_recipient_verdict(c))
        return NULL;
    *rule = m.rule->id;
    return c;
}

/* A failure or delay block through the layers of classify.h: the innermost reply (with its
 * own codes) when the diagnostic wraps one, else the diagnostic; the report's passages about
 * the recipient; the stage, the parties, a local delivery program, the sending MTA's verdict.
 * A category the report itself states (an ESP's bounce type) decides over all of them; the
 * family's default decides where no rule and no specific status did. */
static void classify_failure(const bp_classify_ctx *ctx, const bp_report *r, const bp_rcpt_block *b, bp_arena *arena,
                             bp_event *e, bp_explain *x)
{
    bp_failure f;
    memset(&f, 0, sizeof(f));
    f.text = b->reply != NULL ? b->reply : b->diagnostic;
    f.status = b->reply != NULL ? b->reply_status : b->status;
    f.smtp_code = b->reply != NULL && b->reply_code != NULL ? b->reply_code : b->smtp_code;
    f.mta = b->remote_mta != NULL ? b->remote_mta : r->reporting_mta;
    f.command = b->smtp_command;
    f.passages = b->passages;
    f.mta_verdict = b->mta_category;
    f.local_delivery = b->local_delivery;
    f.party = b->party;
    bp_verdict local = {0};
    bp_verdict *v = x != NULL ? &x->verdict : &local;
    e->category = bp_classify_failure(ctx->rules, arena, &f, v);
    e->rule = v->rule;
    e->blocklist = v->blocklist;
    bp_category_step decided = BP_CATEGORY_RULE; /* or a later layer: worked out below */
    if (b->stated_category != NULL) {
        e->category = b->stated_category;
        e->rule = b->stated_by != NULL ? b->stated_by : r->family;
        e->blocklist = NULL;
        decided = BP_CATEGORY_STATED;
    } else if (family_default_applies(b, v)) {
        e->category = b->default_category;
        e->rule = bp_arena_printf(arena, "family:%s", r->family != NULL ? r->family : "text");
        decided = BP_CATEGORY_FAMILY;
    }
    e->smtp_command = bp_smtp_command_name(b->smtp_command);
    if (b->reply_status != NULL) /* the inner reply's own status is the one that decided */
        e->status = b->reply_status;
    if (x == NULL)
        return;
    x->block = b;
    x->envelope_sender = r->envelope_sender;
    x->sending_host = r->sending_host;
    x->had_diagnostic = b->diagnostic != NULL;
    x->codes_category = v->codes_category;
    x->stated_by = e->rule;
    x->matched_text = v->step == BP_VERDICT_PASSAGES ? f.passages : f.text;
    if (ctx->rules != NULL && x->matched_text != NULL) {
        bp_rule_subject subj = {x->matched_text, strlen(x->matched_text), f.status, f.smtp_code, f.mta, f.command};
        x->n_matches = bp_rules_match_all(ctx->rules, &subj, x->matches, BP_EXPLAIN_MAX_MATCHES);
    }
    if (decided != BP_CATEGORY_RULE) {
        x->category_step = decided;
        return;
    }
    switch (v->step) {
    case BP_VERDICT_RULE:
    case BP_VERDICT_PASSAGES: x->category_step = BP_CATEGORY_RULE; break;
    case BP_VERDICT_STATUS: x->category_step = BP_CATEGORY_STATUS; break;
    case BP_VERDICT_SMTP: x->category_step = BP_CATEGORY_SMTP; break;
    case BP_VERDICT_DEFAULT: x->category_step = BP_CATEGORY_DEFAULT; break;
    case BP_VERDICT_LOCAL_DELIVERY:
    case BP_VERDICT_MTA:
    case BP_VERDICT_GENERIC: x->category_step = BP_CATEGORY_FALLBACK; break;
    }
}

bp_status bp_classify(const bp_classify_ctx *ctx, const bp_report *report, bp_arena *arena, bp_event **events,
                      size_t *n_events, bp_explain **explains)
{
    bp_policy def;
    const bp_policy *policy = ctx->policy;
    if (policy == NULL) {
        bp_policy_default(&def);
        policy = &def;
    }
    size_t n = report->n_blocks > 0 ? report->n_blocks : 1;
    bp_event *ev = bp_arena_alloc(arena, n * sizeof(*ev));
    bp_explain *ex = ctx->explain ? bp_arena_alloc(arena, n * sizeof(*ex)) : NULL;
    if (ev == NULL || (ctx->explain && ex == NULL))
        return BP_ERR_NOMEM;
    *events = ev;
    *n_events = n;
    if (explains != NULL)
        *explains = ex;

    if (report->n_blocks == 0) {
        fill_common(ctx, report, arena, &ev[0]);
        ev[0].type = BP_EVENT_UNRECOGNIZED;
        ev[0].action = bp_policy_decide(policy, BP_EVENT_UNRECOGNIZED, NULL, NULL, 0, NULL);
        const char *verp = valid_address(verp_address(ctx, report, arena), "VERP", arena, ex);
        if (verp != NULL) {
            ev[0].recipient = verp;
            ev[0].recipient_from = "verp";
        }
        if (ex != NULL) {
            ex[0].family = report->family;
            ex[0].verp_address = verp;
            ex[0].category_step = BP_CATEGORY_UNRECOGNIZED;
            ex[0].action_step = BP_POLICY_UNRECOGNIZED;
        }
        return BP_OK;
    }

    const char *verp_candidate = verp_address(ctx, report, arena);
    const char *verp = valid_address(verp_candidate, "VERP", arena, NULL);
    for (size_t i = 0; i < n; i++) {
        const bp_rcpt_block *b = &report->blocks[i];
        bp_event *e = &ev[i];
        bp_explain *x = ex != NULL ? &ex[i] : NULL;
        fill_common(ctx, report, arena, e);
        e->type = event_type(report, b);
        const char *reply_rule = NULL;
        const char *reply_verdict = e->type == BP_EVENT_AUTOREPLY ? autoreply_verdict(ctx, report, &reply_rule) : NULL;
        if (reply_verdict != NULL)
            e->type = BP_EVENT_BOUNCE;
        const char *field = b->field;
        e->recipient = valid_address(b->recipient, field, arena, x);
        e->recipient_from = bp_rcpt_source_name(b->recipient_from);
        if (e->recipient == NULL && b->recipient != NULL && b->recipient_from == BP_FROM_FINAL_RECIPIENT &&
            (e->recipient = valid_address(b->original_recipient, "Original-Recipient", arena, x)) != NULL) {
            e->recipient_from = bp_rcpt_source_name(BP_FROM_ORIGINAL_RECIPIENT);
            field = "Original-Recipient";
        }
        if (e->recipient == NULL || (b->recipient_weak && verp != NULL)) {
            if (verp != NULL) {
                e->recipient = verp;
                e->recipient_from = "verp";
            } else {
                e->recipient_from = NULL;
                if (verp_candidate != NULL)
                    valid_address(verp_candidate, "VERP", arena, x); /* explain says why not */
            }
        }
        e->status = b->status;
        e->smtp_code = b->smtp_code;
        e->diagnostic = b->diagnostic;
        e->remote_mta = b->remote_mta;
        if (x != NULL) {
            x->family = report->family;
            x->part_index = b->part_index;
            x->field = field;
            x->verp_address = verp;
            x->verp_disagrees = verp != NULL && e->recipient != NULL && e->recipient != verp && !b->recipient_weak &&
                                strcasecmp(verp, e->recipient) != 0;
        }
        bp_policy_step policy_why = BP_POLICY_UNRECOGNIZED;
        if (e->type == BP_EVENT_COMPLAINT) {
            e->feedback_type = report->feedback_type != NULL ? report->feedback_type : "other";
            e->action = bp_policy_decide(policy, e->type, NULL, e->feedback_type, 1, &policy_why);
            if (x != NULL)
                x->category_step = BP_CATEGORY_COMPLAINT;
        } else if (reply_verdict != NULL) { /* the auto-reply's words are a permanent failure */
            e->diagnostic = report->reply_text;
            e->category = reply_verdict;
            e->rule = reply_rule;
            e->final = 1;
            e->action = bp_policy_decide(policy, e->type, e->category, NULL, e->final, &policy_why);
            if (x != NULL) {
                x->n_matches = 0;
                x->had_diagnostic = 1;
                x->codes_category = bp_category_from_codes(NULL, NULL);
                x->category_step = BP_CATEGORY_RULE;
                x->matched_text = e->diagnostic;
                if (ctx->rules != NULL) {
                    bp_rule_subject subj = {e->diagnostic, strlen(e->diagnostic), NULL, NULL, NULL, BP_SMTP_NONE};
                    x->n_matches = bp_rules_match_all(ctx->rules, &subj, x->matches, BP_EXPLAIN_MAX_MATCHES);
                }
            }
        } else if (e->type == BP_EVENT_BOUNCE || e->type == BP_EVENT_DELAY) {
            classify_failure(ctx, report, b, arena, e, x);
            e->final = bp_failure_is_final(e->type, e->status);
            e->action = bp_policy_decide(policy, e->type, e->category, NULL, e->final, &policy_why);
        } else {
            e->action = bp_policy_decide(policy, e->type, NULL, NULL, 0, &policy_why);
            if (x != NULL)
                x->category_step = BP_CATEGORY_NOT_FAILURE;
        }
        if (x != NULL)
            x->action_step = policy_why;
    }
    return BP_OK;
}
