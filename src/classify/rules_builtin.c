/*
 * rules_builtin.c - the shipped rule database, as the build pre-computed it.
 *
 * bp_rulegen (src/tools/rulegen.c) loads the files of patterns/ at build time with the ordinary
 * loader, fails the build on any warning, and writes every rule with its prefilter
 * literals as a static table (builtin_rules.c in the build directory).  Loading the
 * database is then one array of pointers into that table: PowerMTA starts one process per
 * message, and parsing 130 rules and extracting their literals cost about 1.5 M
 * instructions, 13 % of a whole pipe-mode process (docs/performance.md).  The table also
 * holds every rule's compiled code as one PCRE2 serialization, decoded on first use instead
 * of compiling the rules a diagnostic makes candidates (0.3-1.9 M instructions per message).
 * The table is kept apart from rules.c so that bp_rulegen, which links rules.c, does not
 * need the table it is about to write.
 * Ownership: the table is static; the rules borrow it.
 */
#include "bouncepipe/rules.h"

extern const bp_rule_entry bp_builtin_rule_entries[];
extern const size_t bp_builtin_rule_entry_count;
extern const unsigned char bp_builtin_rule_code[];

bp_status bp_rules_load_builtin(bp_rules *r, bp_rules_warn_fn warn, void *user, unsigned *n_errors)
{
    (void)warn;
    (void)user;
    if (n_errors != NULL)
        *n_errors = 0;
    return bp_rules_add_entries(r, bp_builtin_rule_entries, bp_builtin_rule_entry_count, bp_builtin_rule_code);
}
