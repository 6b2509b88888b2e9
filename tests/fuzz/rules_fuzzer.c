/*
 * rules_fuzzer.c - the rule-file loader and matcher.
 *
 * The input is a rule file (bp_rules_load_text(): PowerMTA "/regex/ category" lines with
 * options and comments).  Every rule that loads is then matched, with the PCRE2 limits of
 * limits.h, against a few fixed diagnostics (some with letters the prefilter folds: LONG S,
 * KELVIN SIGN, dotless I, a Cyrillic variant) and against the input itself, so that a
 * pattern written to backtrack meets a subject that feeds it; the input as subject is matched
 * under a small effort budget, so that running out of it mid-match is exercised too.
 */
#include "bouncepipe/effort.h"
#include "bouncepipe/rules.h"
#include "fuzz_common.h"

static void quiet(void *user, const char *message)
{
    (void)user;
    if (message == NULL)
        abort(); /* warnings always carry a FILE:LINE message */
}

static const char *const subjects[] = {
    "550 5.1.1 <jdoe@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
    "452 4.2.2 The email account that you tried to reach is over quota",
    "554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org",
    "550 5.1.1 u\xC5\xBF"
    "er un\xE2\x84\xAA"
    "nown, \xC4\xB1nvalid mailbox, \xD0\xBF\xE1\xB2\x82\xD0\xBB\xC5",
    "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bp_rules *rules = NULL;
    if (bp_rules_new(&rules) != BP_OK)
        return 0;
    unsigned n_errors = 0;
    if (bp_rules_load_text(rules, "fuzz.rules", (const char *)data, size, quiet, NULL, &n_errors) == BP_OK) {
        for (size_t i = 0; i < bp_rules_count(rules); i++) {
            const bp_rule *r = bp_rules_get(rules, i);
            if (r == NULL || r->id == NULL || r->pattern == NULL || r->category == NULL)
                abort(); /* a loaded rule is complete */
        }
        char *text = fuzz_cstring(data, size);
        for (size_t i = 0; i <= sizeof(subjects) / sizeof(subjects[0]); i++) {
            const char *s = i < sizeof(subjects) / sizeof(subjects[0]) ? subjects[i] : text;
            if (s == NULL)
                continue;
            bp_rule_subject subject = {
                .text = s, .len = strlen(s), .status = "5.1.1", .smtp_code = "550", .mta = "mx.example.net"};
            bp_effort budget;
            if (s == text)
                bp_effort_begin_with(&budget, 0, 1 + size % 8);
            bp_rule_match m;
            if (bp_rules_match(rules, &subject, &m) && (m.rule == NULL || m.start > m.end || m.end > subject.len))
                abort(); /* a match lies inside the subject */
            bp_rule_match all[8];
            (void)bp_rules_match_all(rules, &subject, all, 8);
            if (s == text) {
                bp_effort_end(&budget);
                if (bp_effort_current() != NULL)
                    abort(); /* budgets nest and end */
            }
        }
        free(text);
    }
    bp_rules_free(rules);
    return 0;
}
