/*
 * classify.c - a failure's category: rules over the diagnostic text first, then the codes.
 *
 * bp_classify_text(): the first matching rule over the diagnostic text, else the codes (text
 * beats a generic code); the deciding rule's id, or the code table's ("status:X.Y.Z",
 * "smtp:NNN", "default").
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
