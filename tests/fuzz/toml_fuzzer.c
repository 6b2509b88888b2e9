/*
 * toml_fuzzer.c - the KumoMTA bounce-classifier reader (src/classify/kumo.c): a hand-written
 * reader of a TOML subset, fed files an operator copies from elsewhere.
 *
 * The input is the TOML text.  bp_kumo_rules() must return BP_OK (only memory may stop it)
 * and every rule it hands back must be what kumo.h promises:
 *   - one line "/REGEX/ CATEGORY id=kumo:LABEL:N", LABEL a bounce label of the mapping,
 *     CATEGORY its category, N counting that label's rules from 1 in file order, its line
 *     inside the input;
 *   - the same regex for PCRE2 as the one the file gives: when the file's regex does not
 *     compile, bp_rules_add_line() (what the rule loader does with a *.toml file) skips the
 *     rule with a warning; when it compiles, the rule either loads as written, without a
 *     warning, and matches every subject tried exactly where the file's regex does (the
 *     input itself, both regexes' text, fixed texts with slashes, backslashes and line
 *     breaks), or is skipped with a warning - never loaded with another meaning;
 * and bp_kumo_convert()'s rule file (patterns import-kumo) must load the same rules through
 * bp_rules_load_text() as the rules loaded one by one.
 */
#include <stdio.h>

#include "bouncepipe/kumo.h"
#include "bouncepipe/regex.h"
#include "bouncepipe/rules.h"
#include "fuzz_common.h"

static const char *const subjects[] = {
    "550 5.1.1 <jdoe@example.com>: Recipient address rejected: User unknown",
    "a/b\\c [d] e\nf\r\ng \x1b\x1c h#i (j) \\Q/\\E",
    "//\\/\\\\[[]]\n\n",
};

/* Does @p converted find what @p original finds in @p s (the same span, or nothing)? */
static int same_matches(bp_regex_matcher *m, const bp_regex *original, const bp_regex *converted, const char *s)
{
    size_t len = strlen(s), os = 0, oe = 0, cs = 0, ce = 0;
    int o = bp_regex_search(m, original, s, len, 0, &os, &oe);
    int c = bp_regex_search(m, converted, s, len, 0, &cs, &ce);
    return o == c && (!o || (os == cs && oe == ce));
}

static void count_warning(void *user, const char *message)
{
    if (message == NULL)
        abort(); /* warnings always carry a FILE:LINE message */
    (*(unsigned *)user)++;
}

/* The line count of the input (the last line need not end in a newline). */
static unsigned lines_of(const uint8_t *data, size_t size)
{
    unsigned n = 1;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n;
}

/* Check rule @p r (the @p nth of its label so far) against the contract; @return its regex as
 * a malloc'ed string. */
static char *check_rule(const bp_kumo_rule *r, unsigned lines, unsigned nth)
{
    const char *category = bp_kumo_label_category(r->label);
    if (r->text == NULL || r->label == NULL || category == NULL || r->line < 1 || r->line > lines)
        abort();
    if (strchr(r->text, '\n') != NULL || strchr(r->text, '\r') != NULL)
        abort(); /* a rule is one line of a rule file */
    char tail[256];
    snprintf(tail, sizeof(tail), "/ %s id=kumo:%s:%u", category, r->label, nth);
    size_t len = strlen(r->text), tlen = strlen(tail);
    if (r->text[0] != '/' || len < tlen + 2 || strcmp(r->text + len - tlen, tail) != 0)
        abort(); /* "/REGEX/ CATEGORY id=kumo:LABEL:N", REGEX not empty */
    return fuzz_cstring((const uint8_t *)r->text + 1, len - tlen - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bp_kumo_rule *rules = NULL;
    size_t n = 0;
    unsigned errors = 0, warned = 0;
    if (bp_kumo_rules("fuzz.toml", (const char *)data, size, &rules, &n, count_warning, &warned, &errors) != BP_OK)
        return 0; /* out of memory */
    if (errors != warned || (n > 0) != (rules != NULL))
        abort(); /* n_errors counts the warnings; rules is NULL when there are none */

    bp_rules *one_by_one = NULL;
    bp_regex_matcher *matcher = bp_regex_matcher_new();
    if (bp_rules_new(&one_by_one) != BP_OK || matcher == NULL)
        abort();
    unsigned lines = lines_of(data, size);
    unsigned per_label[64] = {0};
    const char *labels[64] = {NULL};
    for (size_t i = 0; i < n; i++) {
        size_t li = 0; /* labels are static strings of the mapping: compare pointers */
        while (li < 64 && labels[li] != NULL && labels[li] != rules[i].label)
            li++;
        if (li == 64)
            abort();
        labels[li] = rules[i].label;
        char *regex = check_rule(&rules[i], lines, ++per_label[li]);
        if (regex == NULL)
            abort(); /* out of memory for a few bytes: not what is fuzzed here */
        if (rules[i].regex == NULL || rules[i].regex[0] == '\0')
            abort();
        bp_regex *original = bp_regex_compile(rules[i].regex, BP_REGEX_CASELESS, NULL, 0);
        size_t before = bp_rules_count(one_by_one);
        unsigned add_warned = 0, add_errors = 0;
        if (bp_rules_add_line(one_by_one, "fuzz.toml", rules[i].line, rules[i].text, count_warning, &add_warned,
                              &add_errors) != BP_OK)
            abort();
        size_t after = bp_rules_count(one_by_one);
        if (original != NULL && after == before + 1) { /* loaded: as written, without a word, same meaning */
            const bp_rule *got = bp_rules_get(one_by_one, after - 1);
            if (add_warned != 0 || got == NULL || strcmp(got->pattern, regex) != 0 || got->line != rules[i].line)
                abort();
            bp_regex *converted = bp_regex_compile(regex, BP_REGEX_CASELESS, NULL, 0);
            char *input = fuzz_cstring(data, size);
            if (converted == NULL || input == NULL)
                abort();
            for (size_t k = 0; k < sizeof(subjects) / sizeof(subjects[0]); k++)
                if (!same_matches(matcher, original, converted, subjects[k]))
                    abort();
            if (!same_matches(matcher, original, converted, input) ||
                !same_matches(matcher, original, converted, rules[i].regex) ||
                !same_matches(matcher, original, converted, rules[i].text))
                abort();
            free(input);
            bp_regex_free(converted);
        } else if (after != before || add_warned == 0) { /* skipped: and said so */
            abort();
        }
        bp_regex_free(original);
        free(regex);
    }

    /* the converted rule file loads the same rules */
    char *text = NULL;
    unsigned convert_errors = 0;
    warned = 0;
    if (bp_kumo_convert("fuzz.toml", (const char *)data, size, &text, count_warning, &warned, &convert_errors) ==
        BP_OK) {
        bp_rules *from_file = NULL;
        unsigned file_warned = 0;
        if (text == NULL || convert_errors != errors || bp_rules_new(&from_file) != BP_OK ||
            bp_rules_load_text(from_file, "fuzz.rules", text, strlen(text), count_warning, &file_warned, NULL) != BP_OK)
            abort();
        if (bp_rules_count(from_file) != bp_rules_count(one_by_one))
            abort();
        for (size_t i = 0; i < bp_rules_count(from_file); i++)
            if (strcmp(bp_rules_get(from_file, i)->pattern, bp_rules_get(one_by_one, i)->pattern) != 0 ||
                strcmp(bp_rules_get(from_file, i)->id, bp_rules_get(one_by_one, i)->id) != 0)
                abort();
        bp_rules_free(from_file);
    }
    free(text);
    bp_rules_free(one_by_one);
    bp_regex_matcher_free(matcher);
    bp_kumo_rules_free(rules, n);
    return 0;
}
