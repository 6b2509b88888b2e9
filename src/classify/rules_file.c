/*
 * rules_file.c - rule files read from disk: bp_rules_load_file() (contract in rules.h).
 *
 * A file is read whole and loaded with bp_rules_load_text(); a name ending in ".toml" is a
 * KumoMTA bounce-classifier file, which the converter (kumo.c) turns into rules that are
 * added one by one, each reported at the line of its regex in the TOML file.  This is the
 * one place where the rule loader and the KumoMTA converter meet: neither calls the other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/kumo.h"
#include "bouncepipe/readfile.h"
#include "bouncepipe/rules.h"

/* The rules the KumoMTA converter hands back for TOML text, each reported at its TOML line;
 * the converter's warnings come first, then those of rules that do not load. */
static bp_status load_kumo(bp_rules *r, const char *path, const char *toml, size_t len, bp_rules_warn_fn warn,
                           void *user, unsigned *n_errors)
{
    bp_kumo_rule *rules = NULL;
    size_t n = 0;
    unsigned errors = 0;
    bp_status st = bp_kumo_rules(path, toml, len, &rules, &n, warn, user, &errors);
    for (size_t i = 0; i < n && st == BP_OK; i++)
        st = bp_rules_add_line(r, path, rules[i].line, rules[i].text, warn, user, &errors);
    bp_kumo_rules_free(rules, n);
    if (n_errors != NULL)
        *n_errors = errors;
    return st;
}

bp_status bp_rules_load_file(bp_rules *r, const char *path, bp_rules_warn_fn warn, void *user, unsigned *n_errors)
{
    size_t plen = strlen(path);
    int toml = plen > 5 && strcasecmp(path + plen - 5, ".toml") == 0;
    char *data = NULL;
    size_t len = 0;
    int truncated = 0;
    bp_status st = bp_read_file(path, SIZE_MAX, &data, &len, &truncated);
    if (st == BP_OK && toml)
        st = load_kumo(r, path, data, len, warn, user, n_errors);
    else if (st == BP_OK)
        st = bp_rules_load_text(r, path, data, len, warn, user, n_errors);
    else if (n_errors != NULL && toml)
        *n_errors = 0;
    free(data);
    return st;
}
