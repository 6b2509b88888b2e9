/*
 * kumo.h - KumoMTA bounce-classifier files (TOML: a [rules] table of Label = ["regex", ...])
 * converted to bouncepipe rules.
 *
 * Each regex becomes the rule "/regex/ CATEGORY id=kumo:Label:N" (N counts that label's
 * regexes from 1, in file order); labels map onto categories as documented in
 * bouncepipe-patterns(5) (bp_kumo_label_category()); labels that are not bounces (AutoReply,
 * Subscribe, Unsubscribe, ChallengeResponse) and unknown ones are skipped with a warning
 * naming FILE:LINE, as are TOML constructs outside the supported subset.  The converter
 * hands the rules back; loading them is the rule loader's business (bp_rules_load_file()
 * reads a *.toml file through bp_kumo_rules()).
 *
 * Ownership: the converted rules and text are malloc'ed and belong to the caller.
 */
#ifndef BOUNCEPIPE_KUMO_H
#define BOUNCEPIPE_KUMO_H

#include <stddef.h>

#include "bouncepipe/rules.h"
#include "bouncepipe/status.h"

/** One rule converted from a KumoMTA file. */
typedef struct bp_kumo_rule {
    unsigned line;     /**< line of the regex in the TOML file */
    const char *label; /**< its KumoMTA label (a static string of the mapping) */
    char *text;        /**< the rule line: "/regex/ CATEGORY id=kumo:Label:N" */
    char *regex;       /**< the regex as the file gives it (TOML escapes resolved), which the
                            rule line writes in the rule syntax: the same regex for PCRE2 */
} bp_kumo_rule;

/** @return our category for a KumoMTA label, or NULL when the label is no bounce category. */
const char *bp_kumo_label_category(const char *label);

/**
 * Convert KumoMTA TOML text (@p len bytes, reported as file @p name) to rules, in file order.
 * @param rules receives a malloc'ed array of @p *n rules (bp_kumo_rules_free()); NULL when none
 * @param n_errors if not NULL, receives the number of warnings (entries skipped)
 * @return BP_OK (also with skipped entries); BP_ERR_NOMEM.
 */
bp_status bp_kumo_rules(const char *name, const char *toml, size_t len, bp_kumo_rule **rules, size_t *n,
                        bp_rules_warn_fn warn, void *user, unsigned *n_errors);

/** Release what bp_kumo_rules() returned; NULL is allowed. */
void bp_kumo_rules_free(bp_kumo_rule *rules, size_t n);

/**
 * Convert KumoMTA TOML text to rule-file text (what 'patterns import-kumo' prints): a header
 * comment, then each rule with a comment naming its label and TOML line.
 * @param out receives a malloc'ed, NUL-terminated rule file (the caller frees it)
 * @return BP_OK (also with skipped entries); BP_ERR_NOMEM.
 */
bp_status bp_kumo_convert(const char *name, const char *toml, size_t len, char **out, bp_rules_warn_fn warn, void *user,
                          unsigned *n_errors);

#endif
