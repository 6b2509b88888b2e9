/*
 * classify.c - report blocks to events.
 *
 * bp_classify(): one event per recipient block (one "unrecognized" event when there is
 * none).  The event type follows the report kind and the block's action; the recipient is
 * the report's own, else the VERP-decoded envelope recipient; the category comes from the
 * first matching rule over the diagnostic text, else from the codes (text beats a generic
 * code); the action from the policy.
 * bp_category_from_codes(): the RFC 3463 table (subject.detail), then SMTP reply codes.
 */
#include "bouncepipe/classify.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/text.h"

static const struct {
    const char *code; /* "S.D" after the class digit */
    const char *category;
} status_table[] = {
    {"1.0", "other"},
    {"1.1", "bad-mailbox"},
    {"1.2", "bad-domain"},
    {"1.3", "bad-mailbox"},
    {"1.4", "bad-mailbox"},
    {"1.5", "other"},
    {"1.6", "inactive-mailbox"},
    {"1.7", "invalid-sender"},
    {"1.8", "invalid-sender"},
    {"1.9", "other"},
    {"1.10", "bad-domain"},
    {"2.0", "other"},
    {"2.1", "inactive-mailbox"},
    {"2.2", "quota-issues"},
    {"2.3", "content-related"},
    {"2.4", "other"},
    {"3.0", "other"},
    {"3.1", "quota-issues"},
    {"3.2", "routing-errors"},
    {"3.3", "protocol-errors"},
    {"3.4", "content-related"},
    {"3.5", "bad-configuration"},
    {"4.0", "routing-errors"},
    {"4.1", "no-answer-from-host"},
    {"4.2", "bad-connection"},
    {"4.3", "routing-errors"},
    {"4.4", "routing-errors"},
    {"4.5", "bad-connection"},
    {"4.6", "routing-errors"},
    {"4.7", "message-expired"},
    {"5.0", "protocol-errors"},
    {"5.1", "protocol-errors"},
    {"5.2", "protocol-errors"},
    {"5.3", "protocol-errors"},
    {"5.4", "protocol-errors"},
    {"5.5", "protocol-errors"},
    {"5.6", "protocol-errors"},
    {"6.0", "content-related"},
    {"6.1", "content-related"},
    {"6.2", "content-related"},
    {"6.3", "content-related"},
    {"6.4", "content-related"},
    {"6.5", "content-related"},
    {"6.6", "content-related"},
    {"6.7", "content-related"},
    {"6.8", "content-related"},
    {"6.9", "content-related"},
    {"6.10", "content-related"},
    {"7.0", "policy-related"},
    {"7.1", "policy-related"},
    {"7.2", "policy-related"},
    {"7.3", "protocol-errors"},
    {"7.4", "protocol-errors"},
    {"7.5", "protocol-errors"},
    {"7.6", "policy-related"},
    {"7.7", "policy-related"},
    {"7.8", "bad-configuration"},
    {"7.9", "policy-related"},
    {"7.10", "protocol-errors"},
    {"7.11", "protocol-errors"},
    {"7.12", "bad-configuration"},
    {"7.13", "inactive-mailbox"},
    {"7.14", "policy-related"},
    {"7.15", "policy-related"},
    {"7.16", "content-related"},
    {"7.17", "inactive-mailbox"},
    {"7.18", "bad-domain"},
    {"7.19", "other"},
    {"7.20", "policy-related"},
    {"7.21", "policy-related"},
    {"7.22", "policy-related"},
    {"7.23", "policy-related"},
    {"7.24", "policy-related"},
    {"7.25", "policy-related"},
    {"7.26", "policy-related"},
    {"7.27", "invalid-sender"},
    {"7.28", "spam-related"},
    {"7.29", "policy-related"},
    {"7.30", "protocol-errors"},
};

/* Subject-level fallbacks for details the table does not list. */
static const char *subject_category(char subject)
{
    switch (subject) {
    case '1': return "bad-mailbox";
    case '2': return "other";
    case '3': return "other";
    case '4': return "routing-errors";
    case '5': return "protocol-errors";
    case '6': return "content-related";
    case '7': return "policy-related";
    default: return "other";
    }
}

static const struct {
    const char *code;
    const char *category;
} smtp_table[] = {
    {"421", "bad-connection"},  {"450", "other"},           {"451", "other"},           {"452", "quota-issues"},
    {"500", "protocol-errors"}, {"501", "protocol-errors"}, {"502", "protocol-errors"}, {"503", "protocol-errors"},
    {"504", "protocol-errors"}, {"521", "routing-errors"},  {"530", "policy-related"},  {"550", "other"},
    {"551", "bad-mailbox"},     {"552", "quota-issues"},    {"553", "bad-mailbox"},     {"554", "other"},
    {"556", "bad-domain"},
};

const char *bp_category_from_codes(const char *status, const char *smtp_code)
{
    if (status != NULL && strlen(status) >= 5) {
        const char *sd = status + 2; /* "S.D" */
        int generic = strcmp(sd, "0.0") == 0;
        if (!generic) {
            for (size_t i = 0; i < sizeof(status_table) / sizeof(status_table[0]); i++)
                if (strcmp(status_table[i].code, sd) == 0)
                    return status_table[i].category;
            return subject_category(sd[0]);
        }
    }
    if (smtp_code != NULL)
        for (size_t i = 0; i < sizeof(smtp_table) / sizeof(smtp_table[0]); i++)
            if (strcmp(smtp_table[i].code, smtp_code) == 0)
                return smtp_table[i].category;
    return "other";
}

const char *bp_classify_text(bp_rules *rules, bp_arena *arena, const char *text, const char *status,
                             const char *smtp_code, const char *mta, const char **rule, const char **blocklist)
{
    *blocklist = NULL;
    if (rules != NULL && text != NULL) {
        bp_rule_subject subj = {text, strlen(text), status, smtp_code, mta};
        bp_rule_match m;
        if (bp_rules_match(rules, &subj, &m)) {
            *rule = m.rule->id;
            *blocklist = m.rule->blocklist;
            return m.rule->category;
        }
    }
    if (status != NULL && strcmp(status + 1, ".0.0") != 0)
        *rule = bp_arena_printf(arena, "status:%s", status);
    else if (smtp_code != NULL)
        *rule = bp_arena_printf(arena, "smtp:%s", smtp_code);
    else
        *rule = "default";
    return bp_category_from_codes(status, smtp_code);
}

int bp_failure_is_final(bp_event_type type, const char *status)
{
    return type == BP_EVENT_BOUNCE && (status == NULL || status[0] != '4');
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

static void fill_common(const bp_classify_ctx *ctx, const bp_report *r, bp_event *e)
{
    e->source = ctx->source;
    e->message_id = r->message_id;
    e->reporting_mta = r->reporting_mta;
    e->arrival_date = r->arrival_date;
    e->source_ip = r->source_ip;
    e->envid = r->envid != NULL ? r->envid : ctx->envid;
    e->original_message_id = r->original_message_id;
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
        fill_common(ctx, report, &ev[0]);
        ev[0].type = BP_EVENT_UNRECOGNIZED;
        ev[0].action = bp_policy_decide(policy, BP_EVENT_UNRECOGNIZED, NULL, NULL, 0, NULL);
        const char *verp = verp_address(ctx, report, arena);
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

    const char *verp = verp_address(ctx, report, arena);
    for (size_t i = 0; i < n; i++) {
        const bp_rcpt_block *b = &report->blocks[i];
        bp_event *e = &ev[i];
        bp_explain *x = ex != NULL ? &ex[i] : NULL;
        fill_common(ctx, report, e);
        e->type = event_type(report, b);
        e->recipient = b->recipient;
        e->recipient_from = bp_rcpt_source_name(b->recipient_from);
        if (e->recipient == NULL && verp != NULL) {
            e->recipient = verp;
            e->recipient_from = "verp";
        }
        e->status = b->status;
        e->smtp_code = b->smtp_code;
        e->diagnostic = b->diagnostic;
        e->remote_mta = b->remote_mta;
        if (x != NULL) {
            x->family = report->family;
            x->part_index = b->part_index;
            x->field = b->field;
            x->verp_address = verp;
            x->verp_disagrees = verp != NULL && b->recipient != NULL && strcasecmp(verp, b->recipient) != 0;
        }
        bp_policy_step policy_why = BP_POLICY_UNRECOGNIZED;
        if (e->type == BP_EVENT_COMPLAINT) {
            e->feedback_type = report->feedback_type != NULL ? report->feedback_type : "other";
            e->action = bp_policy_decide(policy, e->type, NULL, e->feedback_type, 1, &policy_why);
            if (x != NULL)
                x->category_step = BP_CATEGORY_COMPLAINT;
        } else if (e->type == BP_EVENT_BOUNCE || e->type == BP_EVENT_DELAY) {
            const char *mta = b->remote_mta != NULL ? b->remote_mta : report->reporting_mta;
            e->category = bp_classify_text(ctx->rules, arena, b->diagnostic, b->status, b->smtp_code, mta, &e->rule,
                                           &e->blocklist);
            e->final = bp_failure_is_final(e->type, b->status);
            e->action = bp_policy_decide(policy, e->type, e->category, NULL, e->final, &policy_why);
            if (x != NULL) {
                if (ctx->rules != NULL && b->diagnostic != NULL) {
                    bp_rule_subject subj = {b->diagnostic, strlen(b->diagnostic), b->status, b->smtp_code, mta};
                    x->n_matches = bp_rules_match_all(ctx->rules, &subj, x->matches, BP_EXPLAIN_MAX_MATCHES);
                }
                x->had_diagnostic = b->diagnostic != NULL;
                x->codes_category = bp_category_from_codes(b->status, b->smtp_code);
                x->category_step = x->n_matches > 0                                         ? BP_CATEGORY_RULE
                                   : e->rule != NULL && strncmp(e->rule, "status:", 7) == 0 ? BP_CATEGORY_STATUS
                                   : e->rule != NULL && strncmp(e->rule, "smtp:", 5) == 0   ? BP_CATEGORY_SMTP
                                                                                            : BP_CATEGORY_DEFAULT;
            }
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
