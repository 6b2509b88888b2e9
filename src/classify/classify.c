/*
 * classify.c - a failure's category: rules over the remote reply first, then the report's
 * passages, then the codes; then the guards of the parties (classify.h lists the layers).
 *
 * bp_classify_failure(): every layer, recorded in a bp_verdict for explain.
 * bp_classify_text(): the same for a bare text and its codes (accounting records, rescore,
 * patterns test): the first matching rule, else the codes (text beats a generic code); the
 * deciding rule's id, or the code table's ("status:X.Y.Z", "smtp:NNN", "default").
 * bp_category_from_codes(): the RFC 3463 table (subject.detail), then SMTP reply codes.
 * bp_failure_is_final(): only a final failure suppresses outright.
 * These know nothing of reports or messages: the core's report_events.c turns a report's
 * blocks into events with them, and acct_events.c an accounting record.
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

/* Subject-level fallbacks for details the table does not list.  An addressing detail outside
 * RFC 3463's registry is a vendor's own and may be about the sender (Exchange Online's
 * 5.1.90, the sender's daily recipient limit): "other", not a recipient verdict. */
static const char *subject_category(char subject)
{
    switch (subject) {
    case '1': return "other";
    case '2': return "other";
    case '3': return "other";
    case '4': return "routing-errors";
    case '5': return "protocol-errors";
    case '6': return "content-related";
    case '7': return "policy-related";
    default: return "other";
    }
}

/* Reply codes when the enhanced status says nothing.  553 (RFC 5321: "mailbox name not
 * allowed") is relaying and policy refusals too - qmail-smtpd's rcpthosts, sendmail,
 * MessageLabs -, so by itself it is "other": the text decides. */
static const struct {
    const char *code;
    const char *category;
} smtp_table[] = {
    {"421", "bad-connection"},  {"450", "other"},           {"451", "other"},           {"452", "quota-issues"},
    {"500", "protocol-errors"}, {"501", "protocol-errors"}, {"502", "protocol-errors"}, {"503", "protocol-errors"},
    {"504", "protocol-errors"}, {"521", "routing-errors"},  {"530", "policy-related"},  {"550", "other"},
    {"551", "bad-mailbox"},     {"552", "quota-issues"},    {"553", "other"},           {"554", "other"},
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

/* Codes that say nothing specific: none, X.0.0, or X.5.0 ("other or undefined protocol
 * status", which MTAs also give any reply whose code they could not map). */
static int codes_generic(const char *status)
{
    return status == NULL || strlen(status) < 5 || strcmp(status + 1, ".0.0") == 0 || strcmp(status + 1, ".5.0") == 0;
}

/* Non-zero when @p s holds a word: a letter (or any non-ASCII byte), not only codes. */
static int has_words(const char *s)
{
    for (; s != NULL && *s; s++)
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

int bp_category_is_recipient_verdict(const char *category)
{
    return category != NULL && (strcmp(category, "bad-mailbox") == 0 || strcmp(category, "inactive-mailbox") == 0 ||
                                strcmp(category, "bad-domain") == 0);
}

static int match_text(bp_rules *rules, const char *text, const bp_failure *f, bp_rule_match *m)
{
    if (rules == NULL || text == NULL)
        return 0;
    bp_rule_subject subj = {text, strlen(text), f->status, f->smtp_code, f->mta, f->command};
    return bp_rules_match(rules, &subj, m);
}

/* The code table's verdict and its id (layer 1 and the fallbacks of layer 4). */
static const char *codes_verdict(bp_arena *arena, const bp_failure *f, int no_text, bp_verdict *v)
{
    const char *status = f->status, *smtp_code = f->smtp_code;
    const char *category = bp_category_from_codes(status, smtp_code);
    if (status != NULL && strlen(status) >= 5 && strcmp(status + 1, ".0.0") != 0) {
        v->rule = bp_arena_printf(arena, "status:%s", status);
        v->step = BP_VERDICT_STATUS;
        /* a generic X.Y.0 with nothing said at all: a failure of that kind, nothing more is
         * known, so it is counted (soft), never ignored */
        if (no_text && strcmp(status + strlen(status) - 2, ".0") == 0) {
            v->step = BP_VERDICT_GENERIC;
            category = "other";
        }
    } else if (smtp_code != NULL) {
        v->rule = bp_arena_printf(arena, "smtp:%s", smtp_code);
        v->step = BP_VERDICT_SMTP;
    } else {
        v->rule = "default";
        v->step = BP_VERDICT_DEFAULT;
    }
    return category;
}

const char *bp_classify_failure(bp_rules *rules, bp_arena *arena, const bp_failure *f, bp_verdict *out)
{
    bp_verdict local = {0};
    bp_verdict *v = out != NULL ? out : &local;
    memset(v, 0, sizeof(*v));
    v->codes_category = bp_category_from_codes(f->status, f->smtp_code);
    /* 2. the reply's text */
    if (match_text(rules, f->text, f, &v->match)) {
        v->step = BP_VERDICT_RULE;
        v->category = v->match.rule->category;
        v->rule = v->match.rule->id;
        v->blocklist = v->match.rule->blocklist;
        /* 3. the report's passages about the recipient, when the reply decided nothing and
         *    its codes are generic */
    } else if (codes_generic(f->status) && f->passages != NULL && match_text(rules, f->passages, f, &v->match)) {
        v->step = BP_VERDICT_PASSAGES;
        v->category = v->match.rule->category;
        v->rule = v->match.rule->id;
        v->blocklist = v->match.rule->blocklist;
        /* 4. no rule knew the words */
    } else if (f->local_delivery) {
        v->step = BP_VERDICT_LOCAL_DELIVERY;
        v->category = "bad-configuration";
        v->rule = "local-delivery";
    } else if (f->mta_verdict != NULL && bp_category_valid(f->mta_verdict)) {
        v->step = BP_VERDICT_MTA;
        v->category = f->mta_verdict;
        v->rule = bp_arena_printf(arena, "mta:%s", f->mta_verdict);
    } else {
        v->category = codes_verdict(arena, f, !has_words(f->text) && !has_words(f->passages), v);
    }
    /* 5. the guards of the parties: a verdict on the recipient given where the recipient was
     *    not the subject */
    if (bp_category_is_recipient_verdict(v->category)) {
        const char *cat = NULL, *rule = NULL;
        if (f->command == BP_SMTP_CONNECT || f->command == BP_SMTP_EHLO || f->command == BP_SMTP_MAIL) {
            v->guard = BP_GUARD_STAGE;
            cat = f->command == BP_SMTP_MAIL ? "invalid-sender" : "policy-related";
            rule = bp_arena_printf(arena, "stage:%s", bp_smtp_command_name(f->command));
        } else if (f->party == BP_PARTY_SENDER) {
            v->guard = BP_GUARD_SENDER;
            cat = "invalid-sender";
            rule = "party:sender";
        } else if (f->party == BP_PARTY_SENDING_HOST) {
            v->guard = BP_GUARD_SENDING_HOST;
            cat = "policy-related";
            rule = "party:sending-host";
        }
        if (cat != NULL) {
            v->guarded_category = v->category;
            v->guarded_rule = v->rule;
            v->category = cat;
            v->rule = rule;
        }
    }
    return v->category;
}

const char *bp_classify_text(bp_rules *rules, bp_arena *arena, const char *text, const char *status,
                             const char *smtp_code, const char *mta, const char **rule, const char **blocklist)
{
    bp_failure f = {text, status, smtp_code, mta, BP_SMTP_NONE, NULL, NULL, 0, BP_PARTY_RECIPIENT};
    bp_verdict v;
    const char *category = bp_classify_failure(rules, arena, &f, &v);
    *rule = v.rule;
    *blocklist = v.blocklist;
    return category;
}

int bp_failure_is_final(bp_event_type type, const char *status)
{
    return type == BP_EVENT_BOUNCE && (status == NULL || status[0] != '4');
}
