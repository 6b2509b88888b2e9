/*
 * rules.h - the rule database: PCRE2 patterns over remote diagnostic text that decide a
 * bounce category, first match wins.
 *
 * File format (docs/bouncepipe-patterns.5): one rule per line, PowerMTA's
 * <bounce-category-patterns> lines verbatim ("/regex/ category"), extended with options
 * after the category (id=..., status=..., mta=..., stage=..., blocklist=...) and '#' comments.
 * Loading never fails on a bad rule: the rule is skipped and a warning names file:line.
 *
 * Ownership: a bp_rules owns every rule, pattern and compiled code; bp_rule pointers handed
 * out stay valid until bp_rules_free().
 */
#ifndef BOUNCEPIPE_RULES_H
#define BOUNCEPIPE_RULES_H

#include <stddef.h>

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"

typedef struct bp_rules bp_rules;

/** One rule as loaded. */
typedef struct bp_rule {
    const char *id;   /**< stable id: given with id=, else derived from file and pattern */
    const char *file; /**< file it came from ("builtin:NAME" for the shipped database) */
    unsigned line;
    const char *pattern;      /**< the regex source, without slashes */
    const char *category;     /**< bounce category it assigns */
    const char *blocklist;    /**< block list the text names (blocklist=), or NULL */
    const char *scope_status; /**< "5", "5.7", "5.7.1" or NULL: applies only to such codes; a
                                   leading '!' inverts the list (applies to any other code, or none) */
    const char *scope_mta;    /**< domain suffix of the reporting/remote MTA, or NULL */
    const char *scope_stage;  /**< SMTP commands ("RCPT", "DATA,NONE"; a leading '!' inverts the
                                   list), upper case, or NULL: applies only at those stages */
} bp_rule;

/** What a rule is matched against. */
typedef struct bp_rule_subject {
    const char *text; /**< diagnostic text, UTF-8 */
    size_t len;
    const char *status;      /**< enhanced status code or NULL */
    const char *smtp_code;   /**< SMTP code or NULL */
    const char *mta;         /**< remote or reporting MTA host name, or NULL */
    bp_smtp_command command; /**< the SMTP command the text answered, or BP_SMTP_NONE */
} bp_rule_subject;

/** A match: the rule and the matched span of the subject text. */
typedef struct bp_rule_match {
    const bp_rule *rule;
    size_t start;
    size_t end;
} bp_rule_match;

/** Receives each loader warning, already formatted as "FILE:LINE: message". */
typedef void (*bp_rules_warn_fn)(void *user, const char *message);

/** Where a loader's warnings go (the rule loader's and the KumoMTA converter's): each as
 *  "NAME:LINE: message" to @c warn (NULL: standard error), counted in @c errors. */
typedef struct bp_rules_diag {
    const char *name;
    bp_rules_warn_fn warn;
    void *user;
    unsigned errors;
} bp_rules_diag;

/** Report and count one warning of line @p line (bp_rules_diag). */
void bp_rules_warnf(bp_rules_diag *d, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** @return BP_OK and a new, empty database in @p out; BP_ERR_NOMEM. */
bp_status bp_rules_new(bp_rules **out);

/** Release @p rules and everything it owns; NULL is allowed. */
void bp_rules_free(bp_rules *rules);

/**
 * Append the rules of one file (read from disk).  A name ending in ".toml" is read as a
 * KumoMTA bounce-classifier file: its rules (bouncepipe/kumo.h) keep the TOML file name and
 * the line of their regex.
 * @param warn may be NULL (warnings go to stderr)
 * @param n_errors if not NULL, receives the number of rules skipped
 * @return BP_OK (also with skipped rules); BP_ERR_NOT_FOUND / BP_ERR_IO when the file cannot
 *         be read; BP_ERR_NOMEM.
 */
bp_status bp_rules_load_file(bp_rules *rules, const char *path, bp_rules_warn_fn warn, void *user, unsigned *n_errors);

/** Append rules from @p len bytes of @p text, reported as file @p name. Same contract. */
bp_status bp_rules_load_text(bp_rules *rules, const char *name, const char *text, size_t len, bp_rules_warn_fn warn,
                             void *user, unsigned *n_errors);

/**
 * Append the shipped database compiled into the binary.  The build parsed and validated
 * the files of patterns/ already (bp_rulegen, src/tools/rulegen.c), so this only points at a
 * table: no parsing at start-up, and @p n_errors (if not NULL) receives 0.
 */
bp_status bp_rules_load_builtin(bp_rules *rules, bp_rules_warn_fn warn, void *user, unsigned *n_errors);

/**
 * One rule with what loading computed for it: the form in which the build stores the shipped
 * database (bp_rulegen writes a table of these; src/classify/rules_builtin.c loads it).
 */
typedef struct bp_rule_entry {
    bp_rule rule;
    const char *const *literals; /**< prefilter literals (lower case); NULL when n_literals is 0 */
    const size_t *literal_len;
    unsigned n_literals; /**< 0: no prefilter, the rule is tried on every text */
} bp_rule_entry;

/**
 * Append @p n entries as rules, in order.  The rules borrow the entries' strings and arrays,
 * which must outlive @p rules (static tables).  No validation: the build did it.
 * @param code NULL, or bp_rules_serialize() output for exactly these rules (static, aligned
 *        to 8): their compiled code, decoded instead of compiled when first needed (ignored
 *        when this PCRE2 is another version or configuration, or a serialization was given
 *        already)
 * @return BP_OK; BP_ERR_NOMEM.
 */
bp_status bp_rules_add_entries(bp_rules *rules, const bp_rule_entry *entries, size_t n, const unsigned char *code);

/**
 * Compile every rule and encode the compiled code of all of them as one PCRE2 serialization
 * (for the build's table; valid only for this PCRE2 version and configuration).
 * @param bytes receives a malloc'ed buffer (the caller frees it), @p len its size
 * @return BP_OK; BP_ERR_PARSE when a rule does not compile; BP_ERR_NOMEM.
 */
bp_status bp_rules_serialize(bp_rules *rules, unsigned char **bytes, size_t *len);

/** Fill @p out with rule @p i as an entry (pointers into @p rules). @return 0 when out of range. */
int bp_rules_get_entry(const bp_rules *rules, size_t i, bp_rule_entry *out);

/**
 * Append one rule line (same syntax as a line of a rule file), reported as @p file:@p line.
 * The pattern is compiled to validate it.  @p n_errors, if not NULL, is increased by the
 * number of warnings.  @return BP_OK (also when the line was skipped); BP_ERR_NOMEM.
 */
bp_status bp_rules_add_line(bp_rules *rules, const char *file, unsigned line, const char *text, bp_rules_warn_fn warn,
                            void *user, unsigned *n_errors);

/**
 * Compile every rule not compiled yet (the shipped database is compiled lazily) and warn
 * "FILE:LINE: bad regex: ..." for each that fails; such rules never match.
 * @return the number of rules that failed.
 */
unsigned bp_rules_validate(bp_rules *rules, bp_rules_warn_fn warn, void *user);

/**
 * @return non-zero when rule @p i has a prefilter (required literals), i.e. it is compiled
 * and run only for texts that contain one of them; a rule without one is compiled and run
 * for every text, which costs start-up time in pipe mode ("patterns check" reports them).
 */
int bp_rules_prefiltered(const bp_rules *rules, size_t i);

/** @return the number of rules loaded. */
size_t bp_rules_count(const bp_rules *rules);

/** @return rule number @p i (0-based, in file order), or NULL. */
const bp_rule *bp_rules_get(const bp_rules *rules, size_t i);

/** @return the rule whose id is @p id, or NULL (an id of the code tables, "status:5.1.1", or
 *  NULL).  A rule's own id string (the one a match hands out) is found by its address first,
 *  without comparing strings. */
const bp_rule *bp_rules_find(const bp_rules *rules, const char *id);

/**
 * First rule (in load order) whose scope fits and whose pattern matches @p subject.
 * A rule whose match hits the PCRE2 limits counts as not matching.
 * @return non-zero and fills @p winner when a rule matched.
 */
int bp_rules_match(bp_rules *rules, const bp_rule_subject *subject, bp_rule_match *winner);

/**
 * Every matching rule, in load order, for explain.
 * @return the number of matches (may exceed @p max; only @p max are stored).
 */
size_t bp_rules_match_all(bp_rules *rules, const bp_rule_subject *subject, bp_rule_match *out, size_t max);

/**
 * Match rule @p rule of @p rules (a pointer bp_rules_get() or a match gave) alone against
 * @p text, whatever its scope, and give the span of its named group @p group (the listed IP
 * "ip" or domain "domain" of patterns/10-blocklists.rules) - what a signal needs of the rule
 * that already decided (signal_fields.h).
 * @return non-zero when the rule matches and the group took part.
 */
int bp_rules_group(bp_rules *rules, const bp_rule *rule, const char *text, size_t len, const char *group, size_t *gs,
                   size_t *ge);

/** @return non-zero when @p category is one of the bounce categories of the contract. */
int bp_category_valid(const char *category);

/**
 * A custom category: PowerMTA lets <bounce-category-patterns> name categories of the
 * operator's own, and so do rule files.  A custom name is 1 to 31 of a-z, 0-9, '-' and '_',
 * starting with a letter, and not a contract category.  Its action is the [policy] entry of
 * that name, soft when there is none (policy.h).
 * @return non-zero when @p category is such a name.
 */
int bp_category_custom(const char *category);

#endif
