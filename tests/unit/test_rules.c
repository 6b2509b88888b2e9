/*
 * test_rules.c - the rule loader, the matcher and the shipped database.
 *
 * - every shipped rule file has a table tests/rules/NAME.tests of real-world texts, and every
 *   rule of the file has at least one row; each row's text must be won (first match over the
 *   whole builtin database) by the named rule, with the named category;
 * - every builtin rule compiles (the builtin database is not compiled at load), and the table
 *   the build pre-computed equals loading patterns/ as text, literals included; a compiled
 *   code PCRE2 refuses falls back to compiling;
 * - a deliberately broken file gives exactly the warnings of tests/rules/broken.expected;
 * - the prefilter never changes a result: bp_rules_match_all() equals brute-force PCRE2 over
 *   every rule for many texts, for the builtin rules and for patterns built to trip it;
 * - scoping by status and MTA, the PCRE2 limits, and PowerMTA's block pasted verbatim;
 * - every unscoped shipped rule has a prefilter (the start-up budget);
 * - KumoMTA import: conversion and warnings against expected files, direct loading, hostile TOML;
 * - no block-list, reputation or authentication text suppresses, even under 5.1.1 and glued
 *   after a "user unknown".
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/classify.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/kumo.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/text.h"
#include "test_support.h"
#include "test_util.h"

#define RULES_DIR BP_SOURCE_DIR "/tests/rules"

struct table_row {
    char *file; /* NAME.tests */
    unsigned line;
    char *id, *category, *status, *mta, *text;
    bp_smtp_command stage;
};

struct table {
    struct table_row *rows;
    size_t n, cap;
};

/* The whole file (bp_test_read_file()), its length in @p len unless NULL. */
static char *read_all(const char *path, size_t *len)
{
    size_t n = 0;
    char *data = bp_test_read_file(path, &n);
    if (len != NULL)
        *len = n;
    return data;
}

static char *trimmed_dup(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* The scope column: '-', an MTA host name, or key=value words (mta=HOST stage=COMMAND). */
static void scope_parse(struct table_row *r, char *scope, const char *name, unsigned lineno)
{
    r->mta = NULL;
    r->stage = BP_SMTP_NONE;
    if (strcmp(scope, "-") == 0 || strchr(scope, '=') == NULL) {
        r->mta = strcmp(scope, "-") == 0 ? NULL : strdup(scope);
        free(scope);
        return;
    }
    for (char *save = NULL, *tok = strtok_r(scope, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        if (strncmp(tok, "mta=", 4) == 0)
            r->mta = strdup(tok + 4);
        else if (strncmp(tok, "stage=", 6) == 0 &&
                 (r->stage = bp_smtp_command_from_name(tok + 6, strlen(tok + 6))) != BP_SMTP_NONE)
            continue;
        else
            fail_msg("%s:%u: bad scope word \"%s\" (want mta=HOST or stage=COMMAND)", name, lineno, tok);
    }
    free(scope);
}

/* Rows "ID | CATEGORY | STATUS | SCOPE | TEXT" ('-' = none; SCOPE is an MTA host or
 * "mta=HOST stage=COMMAND"); the text is the rest of the line. */
static void table_load(struct table *t, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", RULES_DIR, name);
    char *data = read_all(path, NULL);
    if (data == NULL)
        fail_msg("%s: missing rule-text table", path);
    unsigned lineno = 0;
    for (char *line = data, *next; line != NULL && *line; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        if (*line == '#' || strspn(line, " \t\r") == strlen(line))
            continue;
        char *fields[5];
        char *p = line;
        for (int k = 0; k < 4; k++) {
            char *bar = strstr(p, " | ");
            if (bar == NULL)
                fail_msg("%s:%u: want ID | CATEGORY | STATUS | MTA | TEXT", name, lineno);
            fields[k] = trimmed_dup(p, (size_t)(bar - p));
            p = bar + 3;
        }
        fields[4] = trimmed_dup(p, strlen(p));
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 64;
            t->rows = realloc(t->rows, t->cap * sizeof(*t->rows));
            assert_non_null(t->rows);
        }
        struct table_row *r = &t->rows[t->n++];
        r->file = strdup(name);
        r->line = lineno;
        r->id = fields[0];
        r->category = fields[1];
        r->status = strcmp(fields[2], "-") == 0 ? (free(fields[2]), NULL) : fields[2];
        scope_parse(r, fields[3], name, lineno);
        r->text = fields[4];
    }
    free(data);
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->rows[i].file);
        free(t->rows[i].id);
        free(t->rows[i].category);
        free(t->rows[i].status);
        free(t->rows[i].mta);
        free(t->rows[i].text);
    }
    free(t->rows);
}

/* The SMTP code at the start of a text, for the subject ("550 5.1.1 ..." gives "550"). */
static const char *leading_code(const char *text, char out[4])
{
    if (strlen(text) >= 3 && strspn(text, "0123456789") >= 3 && (text[0] == '4' || text[0] == '5')) {
        memcpy(out, text, 3);
        out[3] = '\0';
        return out;
    }
    return NULL;
}

/* Table rows for the tables of every builtin file, loaded once. */
/* A rule set of the @p len bytes of @p text as the file @p name; fails the test unless
 * every line loads.  The caller frees it. */
static bp_rules *rules_from_text(const char *name, const char *text, size_t len)
{
    bp_rules *r = NULL;
    unsigned errs = 99;
    assert_int_equal(bp_rules_new(&r), BP_OK);
    assert_int_equal(bp_rules_load_text(r, name, text, len, NULL, NULL, &errs), BP_OK);
    if (errs != 0)
        fail_msg("%s: %u lines not loaded", name, errs);
    return r;
}

static struct table all_rows;
static bp_rules *builtin;

static int setup(void **state)
{
    (void)state;
    if ((builtin = bp_test_builtin_rules()) == NULL)
        return -1;
    char seen[64][160];
    size_t n_seen = 0;
    for (size_t i = 0; i < bp_rules_count(builtin); i++) {
        const char *file = bp_rules_get(builtin, i)->file + strlen("builtin:");
        char tests[160];
        snprintf(tests, sizeof(tests), "%.*s.tests", (int)(strlen(file) - strlen(".rules")), file);
        int known = 0;
        for (size_t k = 0; k < n_seen; k++)
            known |= strcmp(seen[k], tests) == 0;
        if (!known && n_seen < 64) {
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", tests);
            table_load(&all_rows, tests);
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    table_free(&all_rows);
    bp_rules_free(builtin);
    return 0;
}

static void test_builtin_tables(void **state)
{
    (void)state;
    assert_true(all_rows.n > 0);
    int failures = 0;
    for (size_t i = 0; i < all_rows.n; i++) {
        const struct table_row *r = &all_rows.rows[i];
        char code[4];
        bp_rule_subject subj = {r->text, strlen(r->text), r->status, leading_code(r->text, code), r->mta, r->stage};
        bp_rule_match m;
        if (!bp_rules_match(builtin, &subj, &m)) {
            print_message("%s:%u: got no match, want %s\n", r->file, r->line, r->id);
            failures++;
            continue;
        }
        if (strcmp(m.rule->id, r->id) != 0 || strcmp(m.rule->category, r->category) != 0) {
            print_message("%s:%u: got %s (%s, %s:%u), want %s (%s)\n", r->file, r->line, m.rule->id, m.rule->category,
                          m.rule->file, m.rule->line, r->id, r->category);
            failures++;
        }
        /* the table of file NN-name.tests tests rules of NN-name.rules only */
        char want_file[200];
        snprintf(want_file, sizeof(want_file), "builtin:%.*s.rules", (int)(strlen(r->file) - strlen(".tests")),
                 r->file);
        if (strcmp(m.rule->id, r->id) == 0 && strcmp(m.rule->file, want_file) != 0) {
            print_message("%s:%u: rule %s lives in %s\n", r->file, r->line, r->id, m.rule->file);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Run @p check over every built-in rule (its index and the rule); each returns the number of
 * defects it printed (file:line first), and the test fails when there is any. */
static void check_builtin_rules(int (*check)(size_t i, const bp_rule *ru))
{
    int bad = 0;
    for (size_t i = 0; i < bp_rules_count(builtin); i++)
        bad += check(i, bp_rules_get(builtin, i));
    assert_int_equal(bad, 0);
}

/* A row in its .tests table, a stable id of its own (never a derived one), used once. */
static int has_a_text(size_t i, const bp_rule *ru)
{
    int missing = 0, found = 0;
    for (size_t k = 0; k < all_rows.n && !found; k++)
        found = strcmp(all_rows.rows[k].id, ru->id) == 0;
    if (!found) {
        print_message("%s:%u: rule %s has no row in its .tests table\n", ru->file, ru->line, ru->id);
        missing++;
    }
    if (strchr(ru->id, ':') != NULL) {
        print_message("%s:%u: shipped rule without id=\n", ru->file, ru->line);
        missing++;
    }
    for (size_t j = 0; j < i; j++)
        if (strcmp(bp_rules_get(builtin, j)->id, ru->id) == 0) {
            print_message("%s:%u: id %s used twice\n", ru->file, ru->line, ru->id);
            missing++;
        }
    return missing;
}

/* The start-up budget (bench/rules_startup.c): a shipped rule that is not scoped must have
 * a prefilter, or it would be compiled and run for every diagnostic of every process. */
static int prefiltered(size_t i, const bp_rule *ru)
{
    if (bp_rules_prefiltered(builtin, i) || ru->scope_status != NULL || ru->scope_mta != NULL)
        return 0;
    print_message("%s:%u: %s has no required literal in some alternative\n", ru->file, ru->line, ru->id);
    return 1;
}

/* The pattern compiles as written, the category is one of ours. */
static int compiles(size_t i, const bp_rule *ru)
{
    (void)i;
    int err, bad = 0;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)ru->pattern, PCRE2_ZERO_TERMINATED,
                                     PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        print_message("%s:%u: %s at offset %zu\n", ru->file, ru->line, (const char *)msg, (size_t)off);
        bad++;
    }
    pcre2_code_free(code);
    assert_true(bp_category_valid(ru->category));
    return bad;
}

static void test_every_rule_has_a_text(void **state)
{
    (void)state;
    check_builtin_rules(has_a_text);
}

static void test_builtin_prefiltered(void **state)
{
    (void)state;
    check_builtin_rules(prefiltered);
}

static void test_builtin_compiles(void **state)
{
    (void)state;
    check_builtin_rules(compiles);
}

/* The build's table (builtin_rules.c, written by bp_rulegen). */
extern const unsigned char bp_builtin_rule_code[];
extern const size_t bp_builtin_rule_code_size;

static int same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The table the build wrote (bp_rulegen) is exactly what loading patterns/ as text gives:
 * every rule's fields, in order, and every prefilter literal. */
static void test_builtin_table_equals_text(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob(BP_SOURCE_DIR "/patterns/*.rules", 0, NULL, &g), 0);
    bp_rules *text;
    assert_int_equal(bp_rules_new(&text), BP_OK);
    for (size_t f = 0; f < g.gl_pathc; f++) {
        size_t len;
        char *data = read_all(g.gl_pathv[f], &len);
        char name[256];
        assert_non_null(data);
        snprintf(name, sizeof(name), "builtin:%s", strrchr(g.gl_pathv[f], '/') + 1);
        unsigned errs = 99;
        assert_int_equal(bp_rules_load_text(text, name, data, len, NULL, NULL, &errs), BP_OK);
        assert_int_equal(errs, 0);
        free(data);
    }
    globfree(&g);
    assert_int_equal(bp_rules_count(text), bp_rules_count(builtin));
    for (size_t i = 0; i < bp_rules_count(text); i++) {
        bp_rule_entry a, b;
        assert_true(bp_rules_get_entry(text, i, &a));
        assert_true(bp_rules_get_entry(builtin, i, &b));
        assert_string_equal(a.rule.id, b.rule.id);
        assert_string_equal(a.rule.file, b.rule.file);
        assert_int_equal(a.rule.line, b.rule.line);
        assert_string_equal(a.rule.pattern, b.rule.pattern);
        assert_string_equal(a.rule.category, b.rule.category);
        assert_true(same_string(a.rule.blocklist, b.rule.blocklist));
        assert_true(same_string(a.rule.scope_status, b.rule.scope_status));
        assert_true(same_string(a.rule.scope_mta, b.rule.scope_mta));
        assert_true(same_string(a.rule.scope_stage, b.rule.scope_stage));
        assert_int_equal(a.n_literals, b.n_literals);
        for (unsigned k = 0; k < a.n_literals; k++) {
            assert_int_equal(a.literal_len[k], b.literal_len[k]);
            assert_memory_equal(a.literals[k], b.literals[k], a.literal_len[k]);
        }
    }
    assert_false(bp_rules_get_entry(builtin, bp_rules_count(builtin), &(bp_rule_entry){0}));
    /* and the compiled code the build stored is these rules' code, in this order */
    unsigned char *code = NULL;
    size_t code_len = 0;
    assert_int_equal(bp_rules_serialize(text, &code, &code_len), BP_OK);
    assert_int_equal(code_len, bp_builtin_rule_code_size);
    assert_memory_equal(code, bp_builtin_rule_code, code_len);
    free(code);
    bp_rules_free(text);
}

/* A serialization PCRE2 refuses (another version, or damage) only costs the decoding: the
 * rules are compiled one by one and match as before. */
static void test_entries_with_unusable_code(void **state)
{
    (void)state;
    static _Alignas(16) const unsigned char bogus[64] = {0x50, 0x32, 0x53, 0x43, 1};
    bp_rule_entry e[2];
    assert_true(bp_rules_get_entry(builtin, 0, &e[0]));
    assert_true(bp_rules_get_entry(builtin, 1, &e[1]));
    bp_rules *r;
    assert_int_equal(bp_rules_new(&r), BP_OK);
    assert_int_equal(bp_rules_add_entries(r, e, 2, bogus), BP_OK);
    const char *text = "554 5.7.1 Service unavailable; Sender address [example.com] blocked using dbl.spamhaus.org";
    bp_rule_subject subj = {text, strlen(text), "5.7.1", "554", NULL, BP_SMTP_NONE};
    bp_rule_match m;
    assert_true(bp_rules_match(r, &subj, &m));
    assert_string_equal(m.rule->id, e[0].rule.id);
    assert_int_equal(bp_rules_validate(r, NULL, NULL), 0);
    bp_rules_free(r);
}

/* ---- loader warnings against the expected-warnings file ------------------------------- */

static void collect(void *user, const char *message)
{
    bp_strbuf *sb = user;
    /* the loader names the file as given; compare by base name */
    const char *colon = strstr(message, "broken.rules:");
    assert_int_equal(bp_strbuf_puts(sb, colon != NULL ? colon : message), BP_OK);
    assert_int_equal(bp_strbuf_putc(sb, '\n'), BP_OK);
}

static void collect_plain(void *user, const char *message)
{
    assert_int_equal(bp_strbuf_puts(user, message), BP_OK);
    assert_int_equal(bp_strbuf_putc(user, '\n'), BP_OK);
}

static void test_broken_file_warnings(void **state)
{
    (void)state;
    bp_rules *r = NULL;
    assert_int_equal(bp_rules_new(&r), BP_OK);
    bp_strbuf got = {0};
    unsigned errs = 0;
    assert_int_equal(bp_rules_load_file(r, RULES_DIR "/broken.rules", collect, &got, &errs), BP_OK);
    char *want = read_all(RULES_DIR "/broken.expected", NULL);
    assert_non_null(want);
    if (strcmp(got.data != NULL ? got.data : "", want) != 0)
        fail_msg("warnings differ.\n--- got\n%s--- want\n%s", got.data != NULL ? got.data : "", want);
    unsigned want_lines = 0;
    for (const char *p = want; *p; p++)
        want_lines += *p == '\n';
    assert_int_equal(errs, want_lines);
    /* the good rules around the bad ones are all there, in order */
    assert_int_equal(bp_rules_count(r), 6);
    assert_string_equal(bp_rules_get(r, 0)->id, "ok-first");
    assert_string_equal(bp_rules_get(r, 3)->id, "ok-last");
    assert_string_equal(bp_rules_get(r, 4)->pattern, "[[:alpha:]/]x"); /* '/' inside a class */
    /* stage= in canonical form (HELO is EHLO), an inverted status list kept as written */
    assert_string_equal(bp_rules_get(r, 5)->id, "ok-stage");
    assert_string_equal(bp_rules_get(r, 5)->scope_stage, "EHLO,NONE");
    assert_string_equal(bp_rules_get(r, 5)->scope_status, "!5.1,4.1");
    /* bp_rules_find(): by the rule's own id string, by a copy of it, and no rule for an id of
     * the code tables */
    assert_ptr_equal(bp_rules_find(r, bp_rules_get(r, 3)->id), bp_rules_get(r, 3));
    char copy[] = "ok-last";
    assert_ptr_equal(bp_rules_find(r, copy), bp_rules_get(r, 3));
    assert_ptr_equal(bp_rules_find(r, "ok-stage"), bp_rules_get(r, 5));
    assert_null(bp_rules_find(r, "status:5.1.1"));
    assert_null(bp_rules_find(r, NULL));
    assert_null(bp_rules_find(NULL, "ok-last"));
    free(want);
    bp_strbuf_free(&got);
    bp_rules_free(r);
    assert_int_equal(bp_rules_new(&r), BP_OK);
    assert_int_equal(bp_rules_load_file(r, RULES_DIR "/no-such-file.rules", collect, &got, NULL), BP_ERR_NOT_FOUND);
    bp_rules_free(r);
}

/* ---- prefilter: the result never differs from brute-force PCRE2 ----------------------- */

/* All matching rules, by running PCRE2 over every rule with no prefilter at all. */
static size_t brute_force(pcre2_code **codes, size_t n, const char *text, size_t len, size_t *out, size_t max)
{
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (codes[i] == NULL)
            continue; /* scoped rules that cannot fit a subject without status, MTA and stage */
        if (pcre2_match(codes[i], (PCRE2_SPTR)text, len, 0, 0, md, NULL) >= 0) {
            if (found < max)
                out[found] = i;
            found++;
        }
    }
    pcre2_match_data_free(md);
    return found;
}

/* Non-zero when @p ru's scope fits a subject without codes, MTA or SMTP stage: no status=
 * list but an inverted one, no mta=, and a stage= list that holds NONE (or inverted, does not). */
static int fits_bare_subject(const bp_rule *ru)
{
    if ((ru->scope_status != NULL && ru->scope_status[0] != '!') || ru->scope_mta != NULL)
        return 0;
    return ru->scope_stage == NULL || (ru->scope_stage[0] == '!') != (strstr(ru->scope_stage, "NONE") != NULL);
}

static void compare_all(bp_rules *r, const char *text, size_t len, int *failures)
{
    size_t n = bp_rules_count(r);
    pcre2_code **codes = calloc(n, sizeof(*codes));
    assert_non_null(codes);
    for (size_t i = 0; i < n; i++) {
        int err;
        PCRE2_SIZE off;
        const bp_rule *ru = bp_rules_get(r, i);
        if (!fits_bare_subject(ru))
            continue;
        codes[i] = pcre2_compile((PCRE2_SPTR)ru->pattern, PCRE2_ZERO_TERMINATED,
                                 PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    }
    size_t want[512];
    bp_rule_match got[512];
    size_t n_want = brute_force(codes, n, text, len, want, 512);
    bp_rule_subject subj = {text, len, NULL, NULL, NULL, BP_SMTP_NONE};
    size_t n_got = bp_rules_match_all(r, &subj, got, 512);
    int same = n_want == n_got;
    for (size_t i = 0; same && i < n_got && i < 512; i++)
        same = got[i].rule == bp_rules_get(r, want[i]);
    if (!same) {
        (*failures)++;
        print_message("prefilter changed the result for \"%.*s\": brute force %zu matches, matcher %zu\n", (int)len,
                      text, n_want, n_got);
        for (size_t i = 0; i < n_want && i < 512; i++)
            print_message("  want %s /%s/\n", bp_rules_get(r, want[i])->id, bp_rules_get(r, want[i])->pattern);
        for (size_t i = 0; i < n_got && i < 512; i++)
            print_message("  got  %s /%s/\n", got[i].rule->id, got[i].rule->pattern);
    }
    for (size_t i = 0; i < n; i++)
        pcre2_code_free(codes[i]);
    free(codes);
}

/* A small deterministic generator (the test must be repeatable). */
static uint32_t rng_state = 2463534242u;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Patterns written to trip a literal extractor: alternations, groups, quantifiers on the
 * last literal, escapes with arguments, classes holding ']' and POSIX names, comments,
 * inline options, case-folding letters beyond ASCII, lookarounds (zero-width) inside a
 * literal. */
static const char *const tricky_patterns[] = {
    "user unknown|no such user",
    "colou?r full",
    "mailbox (is )?full",
    "abc\\d{3}xyz",
    "abc\\d{3,5}xyz",
    "\\x41bc user",
    "\\x{263a}bc user",
    "\\p{L}+ mailbox",
    "\\pLser unknown",
    "[[:alpha:]]ser unknown",
    "[]x]ser unknown",
    "[^]x]ser unknown",
    "(?#comment (with paren)user unknown",
    "(?#)user|unknown",
    "(?ix)user \\s unknown",
    "(?i)user unknown",
    "(?x: user ) unknown",
    "over ?quota",
    "quota{1,2} exceeded",
    "ab+c+d+ full",
    "\\bspam\\b",
    "(?<!may be )black ?listed",
    "mask|kelvin",
    "ſtatus|status",
    "ящик переполнен",
    "ПОЛЬЗОВАТЕЛЬ не найден",
    "ｆｕｌｌ mailbox",
    "用户不存在",
    "Ǆemail|x",
    "\\Qa.b\\E user",
    "a\\.b\\.c user",
    "user\\Q|\\Eunknown",
    "(user|mailbox) (unknown|full)",
    "\\cAuser",
    "\\101ser",
    "\\0101 user",
    "(a)\\1 user",
    "é+ user unknown",
    "DOMAIN\\.COM\\? rejected",
    "x{2}y{1,}z{0,3} abc",
    "abc{ def",
    "address(?<!sender address) rejected",
    "unknown(?! error) user",
    "user(?=s? )s? unknown",
    "mail(?=box)?box full",
    "(?<=no )such user",
    "abc(?!d)|xy(?<=x)z",
};

/* Fragments the random texts are built from: pieces of the patterns above, their
 * near-misses, and letters whose case folds are odd. */
static const char *const fragments[] = {
    "user",
    "unknown",
    " ",
    "no such ",
    "mailbox",
    "is ",
    "full",
    "colour",
    "color",
    "abc",
    "123",
    "12345",
    "xyz",
    "A",
    "bc",
    "☺",
    "é",
    "x",
    "]",
    "comment",
    "(",
    ")",
    "|",
    "quota",
    "over",
    "exceeded",
    "QUOTA",
    "spam",
    "may be ",
    "black",
    "listed",
    "K",
    "\xE2\x84\xAA",
    "mas",
    "ſ",
    "tatus",
    "ящик",
    "ПЕРЕПОЛНЕН",
    "переполнен",
    "пользователь",
    "НЕ НАЙДЕН",
    "не найден",
    "ｆｕｌｌ",
    "ＦＵＬＬ",
    "用户",
    "不存在",
    "ǅ",
    "Ǆ",
    "ǆ",
    "email",
    "a.b",
    "a\\.b",
    ".c",
    "\x01",
    "AA",
    "\x80",
    "\xC3",
    "İ",
    "ı",
    "DOMAIN.COM?",
    "rejected",
    "xx",
    "yy",
    "z",
    "{",
    "de",
    "def",
    "ᲀ",
    "в",
    "address",
    "sender ",
    " rejected",
    " error",
    "users",
    "box",
    "no ",
    "such",
    "d",
};

static void test_prefilter_tricky(void **state)
{
    (void)state;
    bp_strbuf file = {0};
    for (size_t i = 0; i < sizeof(tricky_patterns) / sizeof(tricky_patterns[0]); i++)
        assert_int_equal(bp_strbuf_printf(&file, "/%s/ other id=t%zu\n", tricky_patterns[i], i), BP_OK);
    bp_rules *r = rules_from_text("tricky.rules", file.data, file.len);
    assert_int_equal(bp_rules_count(r), sizeof(tricky_patterns) / sizeof(tricky_patterns[0]));
    int failures = 0;
    char text[512];
    for (int round = 0; round < 4000; round++) {
        size_t len = 0;
        int pieces = 1 + (int)(rng() % 8);
        for (int k = 0; k < pieces; k++) {
            const char *f = fragments[rng() % (sizeof(fragments) / sizeof(fragments[0]))];
            size_t fl = strlen(f);
            if (len + fl >= sizeof(text))
                break;
            memcpy(text + len, f, fl);
            len += fl;
        }
        text[len] = '\0';
        compare_all(r, text, len, &failures);
    }
    /* texts the patterns were written for, so that matches are exercised too */
    const char *sure[] = {"USER UNKNOWN",
                          "colour full",
                          "mailbox full",
                          "abc123xyz",
                          "Abc user",
                          "☺bc user",
                          "ÉÉ mailbox",
                          "user unknown",
                          "xser unknown",
                          "MAſK",
                          "ſtatus",
                          "ЯЩИК ПЕРЕПОЛНЕН",
                          "пользователь НЕ НАЙДЕН",
                          "ＦＵＬＬ mailbox",
                          "用户不存在",
                          "ǆEMAIL",
                          "a.b user",
                          "a.b.c user",
                          "user|unknown",
                          "\x01user",
                          "Auser",
                          "\x08"
                          "1 user",
                          "aa user",
                          "ÉÉÉ USER UNKNOWN",
                          "domain.com? rejected",
                          "xxyzz abc",
                          "abc{ def",
                          "ab\xE2\x84\xAA",
                          "ma\xE2\x84\xAA",
                          "address rejected",
                          "Sender address rejected",
                          "unknown user",
                          "users unknown",
                          "MAILBOX FULL",
                          "no such user",
                          "abcx",
                          "xyz"};
    for (size_t i = 0; i < sizeof(sure) / sizeof(sure[0]); i++)
        compare_all(r, sure[i], strlen(sure[i]), &failures);
    assert_int_equal(failures, 0);
    bp_strbuf_free(&file);
    bp_rules_free(r);
}

static void test_prefilter_builtin(void **state)
{
    (void)state;
    int failures = 0;
    /* every table text, and each one cut, doubled and upper-cased */
    for (size_t i = 0; i < all_rows.n; i++) {
        const char *t = all_rows.rows[i].text;
        size_t len = strlen(t);
        compare_all(builtin, t, len, &failures);
        compare_all(builtin, t, len / 2, &failures);
        char *upper = strdup(t);
        assert_non_null(upper);
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
        compare_all(builtin, upper, len, &failures);
        free(upper);
    }
    assert_int_equal(failures, 0);
}

/* ---- scoping, limits, PowerMTA's block ------------------------------------------------ */

static void test_scope(void **state)
{
    (void)state;
    const char *rules = "/rejected/ policy-related status=5.7 id=s57\n"
                        "/rejected/ bad-mailbox status=550 mta=example.net id=s550net\n"
                        "/rejected/ other status=4 id=s4\n";
    bp_rules *r = rules_from_text("scope.rules", rules, strlen(rules));
    static const struct {
        const char *status, *code, *mta, *want;
    } rows[] = {
        {"5.7.1", "550", NULL, "s57"},
        {"5.7.10", NULL, NULL, "s57"},
        {"5.70.1", "550", "mx.example.net", "s550net"},
        {"5.1.1", "550", "mx.example.org", NULL},
        {"5.1.1", "550", "badexample.net", NULL},
        {NULL, "450", NULL, "s4"},
        {"4.2.0", NULL, NULL, "s4"},
        {NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_rule_subject s = {"550 rejected", 12, rows[i].status, rows[i].code, rows[i].mta, BP_SMTP_NONE};
        bp_rule_match m;
        int hit = bp_rules_match(r, &s, &m);
        if (rows[i].want == NULL && hit)
            fail_msg("row %zu: got %s, want no match", i, m.rule->id);
        if (rows[i].want != NULL && (!hit || strcmp(m.rule->id, rows[i].want) != 0))
            fail_msg("row %zu: got %s, want %s", i, hit ? m.rule->id : "no match", rows[i].want);
    }
    bp_rules_free(r);
}

/* stage= scopes a rule on the SMTP command the reply answered; '!' inverts stage= and
 * status= lists (an inverted status list also fits a subject without codes). */
static void test_stage_scope(void **state)
{
    (void)state;
    const char *rules = "/unknown/ invalid-sender stage=MAIL,EHLO id=at-mail\n"
                        "/unknown/ policy-related stage=DATA status=!5.1,4.1 id=after-data\n"
                        "/unknown/ policy-related status=5.7 stage=!RCPT id=filtered\n"
                        "/unknown/ other stage=none id=no-stage\n"
                        "/unknown/ bad-mailbox id=any\n";
    bp_rules *r = rules_from_text("stage.rules", rules, strlen(rules));
    assert_string_equal(bp_rules_get(r, 0)->scope_stage, "MAIL,EHLO");
    assert_string_equal(bp_rules_get(r, 2)->scope_stage, "!RCPT");
    assert_string_equal(bp_rules_get(r, 3)->scope_stage, "NONE");
    static const struct {
        const char *status;
        bp_smtp_command stage;
        const char *want;
    } rows[] = {
        {"5.1.1", BP_SMTP_MAIL, "at-mail"},    {NULL, BP_SMTP_EHLO, "at-mail"}, {NULL, BP_SMTP_DATA, "after-data"},
        {"5.7.1", BP_SMTP_DATA, "after-data"}, {"5.1.1", BP_SMTP_DATA, "any"},  {"4.1.1", BP_SMTP_DATA, "any"},
        {"5.7.1", BP_SMTP_NONE, "filtered"},   {"5.7.1", BP_SMTP_RCPT, "any"},  {"5.7.1", BP_SMTP_CONNECT, "filtered"},
        {"5.1.1", BP_SMTP_NONE, "no-stage"},   {"5.1.1", BP_SMTP_RCPT, "any"},  {NULL, BP_SMTP_CONNECT, "any"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_rule_subject s = {"550 unknown", 11, rows[i].status, "550", NULL, rows[i].stage};
        bp_rule_match m;
        if (!bp_rules_match(r, &s, &m) || strcmp(m.rule->id, rows[i].want) != 0)
            fail_msg("row %zu (%s at %s): got %s, want %s", i, rows[i].status ? rows[i].status : "-",
                     bp_smtp_command_name(rows[i].stage) ? bp_smtp_command_name(rows[i].stage) : "none",
                     bp_rules_match(r, &s, &m) ? m.rule->id : "no match", rows[i].want);
    }
    bp_rules_free(r);
}

/* Out of memory while reading a stage= list is the loader's failure, not a bad value: with the
 * Nth allocation failing, loading a rule with stage= fails with BP_ERR_NOMEM, or succeeds with
 * the rule; never a warning and the rule skipped. */
static unsigned long stage_fail_at, stage_count;

static int stage_fault(void *user, size_t size)
{
    (void)user;
    (void)size;
    return ++stage_count == stage_fail_at;
}

static void test_stage_out_of_memory(void **state)
{
    (void)state;
    const char *rule = "/unknown/ invalid-sender stage=MAIL id=at-mail\n";
    int loaded = 0;
    for (stage_fail_at = 1; !loaded && stage_fail_at < 1000; stage_fail_at++) {
        bp_rules *r = NULL;
        assert_int_equal(bp_rules_new(&r), BP_OK);
        unsigned errs = 0;
        stage_count = 0;
        bp_alloc_set_fault(stage_fault, NULL);
        bp_status st = bp_rules_load_text(r, "stage.rules", rule, strlen(rule), NULL, NULL, &errs);
        bp_alloc_set_fault(NULL, NULL);
        if (st == BP_OK && (errs != 0 || bp_rules_count(r) != 1))
            fail_msg("allocation %lu failed: loaded %zu rules with %u skipped, not BP_ERR_NOMEM", stage_fail_at,
                     bp_rules_count(r), errs);
        if (st != BP_OK)
            assert_int_equal(st, BP_ERR_NOMEM);
        loaded = st == BP_OK && stage_count < stage_fail_at; /* no allocation failed */
        bp_rules_free(r);
    }
    assert_true(loaded);
}

static void test_powermta_block_and_span(void **state)
{
    (void)state;
    /* pasted from a PowerMTA config: no ids, derived ones are stable */
    const char *block = "<bounce-category-patterns>\n"
                        "    /spam/ spam-related\n"
                        "    /unknown user/ bad-mailbox\n"
                        "    /./ other\n"
                        "</bounce-category-patterns>\n";
    bp_rules *r = rules_from_text("/etc/pmta/config", block, strlen(block));
    assert_int_equal(bp_rules_count(r), 3);
    const char *id = bp_rules_get(r, 1)->id;
    assert_true(strncmp(id, "config:", 7) == 0);
    const char *text = "550 5.1.1 Unknown User here";
    bp_rule_subject s = {text, strlen(text), NULL, NULL, NULL, BP_SMTP_NONE};
    bp_rule_match m[4];
    assert_int_equal(bp_rules_match_all(r, &s, m, 4), 2);
    assert_string_equal(m[0].rule->id, id);
    assert_int_equal(m[0].start, 10);
    assert_int_equal(m[0].end, 22);
    bp_rules_free(r);
}

/* A letter whose caseless match is an ASCII or Cyrillic letter in another shape (U+017F LONG
 * S, KELVIN SIGN, dotted and dotless I, U+1C80..) keeps the prefilter working: it is folded to
 * that letter.  At 269d0b5 one such letter turned the prefilter off and every rule ran on the
 * text.  The PCRE2 searches are counted by the effort budget (effort.h). */
static uint64_t searches_for(bp_rules *r, const char *text, bp_rule_match *m, int *matched)
{
    bp_effort e;
    bp_effort_begin_with(&e, 0, 0);
    bp_rule_subject s = {text, strlen(text), "5.1.1", "550", NULL, BP_SMTP_NONE};
    *matched = bp_rules_match(r, &s, m);
    bp_effort_end(&e);
    return e.searches;
}

static void test_prefilter_odd_letters(void **state)
{
    (void)state;
    bp_rules *r = NULL;
    assert_int_equal(bp_rules_new(&r), BP_OK);
    assert_int_equal(bp_rules_load_builtin(r, NULL, NULL, NULL), BP_OK);
    /* same: PCRE2 matches the odd shape as the letter, so the same rules run as without it;
     * dotted and dotless I are taken as i by the prefilter only (PCRE2 does not fold them),
     * so a rule may run there and not match */
    static const struct {
        const char *plain, *odd;
        int same;
    } rows[] = {
        {"550 5.1.1 user unknown",
         "550 5.1.1 u\xC5\xBF"
         "er unknown",
         1},                                                                            /* LONG S */
        {"550 5.1.1 user unknown", "550 5.1.1 user un\xE2\x84\xAAnown", 1},             /* KELVIN SIGN */
        {"550 5.1.1 invalid mailbox", "550 5.1.1 \xC4\xB0nvalid mailbox", 0},           /* I WITH DOT */
        {"550 5.1.1 invalid mailbox", "550 5.1.1 \xC4\xB1nvalid mailbox", 0},           /* DOTLESS I */
        {"550 5.1.1 mailbox unavailable", "550 5.1.1 mailbox unavailable \xC5\xBF", 1}, /* elsewhere */
        {"550 5.1.1 \xD0\xBF\xD0\xBE\xD0\xBB\xD1\x8C\xD0\xB7\xD0\xBE\xD0\xB2\xD0\xB0\xD1\x82\xD0\xB5\xD0\xBB\xD1\x8C",
         "550 5.1.1 \xD0\xBF\xE1\xB2\x82"
         "\xD0\xBB\xD1\x8C\xD0\xB7\xD0\xBE\xD0\xB2\xD0\xB0\xE1\xB2\x84\xD0\xB5\xD0\xBB\xD1\x8C",
         1},
    };
    size_t all = 0;
    for (size_t i = 0; i < bp_rules_count(r); i++)
        all += bp_rules_get(r, i)->scope_mta == NULL;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_rule_match mp, mo;
        int hit_plain = 0, hit_odd = 0;
        uint64_t plain = searches_for(r, rows[i].plain, &mp, &hit_plain);
        uint64_t odd = searches_for(r, rows[i].odd, &mo, &hit_odd);
        if ((rows[i].same && odd != plain) || odd * 4 > all)
            fail_msg("row %zu: %llu PCRE2 searches with the odd letter, %llu without, of %zu rules", i,
                     (unsigned long long)odd, (unsigned long long)plain, all);
        /* and the prefilter still decides nothing: brute force agrees */
        int failures = 0;
        compare_all(r, rows[i].odd, strlen(rows[i].odd), &failures);
        assert_int_equal(failures, 0);
    }
    bp_rules_free(r);
}

/* Rules not yet run when the message's effort budget runs out find nothing (the codes decide),
 * and the budget says it ran out in the rules. */
static void test_effort_budget(void **state)
{
    (void)state;
    const char *rules = "/mailbox full/ quota-issues id=first\n/full/ other id=second\n";
    bp_rules *r = rules_from_text("budget.rules", rules, strlen(rules));
    const char *text = "552 5.2.2 mailbox full";
    bp_rule_subject s = {text, strlen(text), NULL, NULL, NULL, BP_SMTP_NONE};
    bp_rule_match m[4];
    assert_int_equal(bp_rules_match_all(r, &s, m, 4), 2);
    bp_effort e;
    bp_effort_begin_with(&e, 0, 1);
    assert_int_equal(bp_rules_match_all(r, &s, m, 4), 1);
    assert_false(bp_rules_match(r, &s, m));
    bp_effort_end(&e);
    assert_int_equal(e.cut, BP_EFFORT_REGEX);
    assert_string_equal(e.cut_in, "rules");
    bp_rules_free(r);
}

static void test_match_limit(void **state)
{
    (void)state;
    const char *rules = "/(a+)+$/ other id=catastrophic\n/aaaa/ quota-issues id=after\n";
    bp_rules *r = rules_from_text("limit.rules", rules, strlen(rules));
    char text[4000];
    memset(text, 'a', sizeof(text) - 2);
    text[sizeof(text) - 2] = '!';
    text[sizeof(text) - 1] = '\0';
    bp_rule_subject s = {text, strlen(text), NULL, NULL, NULL, BP_SMTP_NONE};
    bp_rule_match m;
    /* the backtracking rule gives up at the limit and counts as no match; the next one wins */
    for (int i = 0; i < 20; i++) { /* past the JIT threshold too */
        assert_true(bp_rules_match(r, &s, &m));
        assert_string_equal(m.rule->id, "after");
    }
    /* invalid UTF-8 in a diagnostic still matches */
    const char *latin1 = "550 Benutzer unbekannt: M\xFCller aaaa";
    bp_rule_subject l = {latin1, strlen(latin1), NULL, NULL, NULL, BP_SMTP_NONE};
    assert_true(bp_rules_match(r, &l, &m));
    bp_rules_free(r);
}

/* ---- KumoMTA import ---------------------------------------------------------------------- */

static void test_kumo_import(void **state)
{
    (void)state;
    size_t len = 0;
    char *toml = read_all(RULES_DIR "/kumo-sample.toml", &len);
    char *want = read_all(RULES_DIR "/kumo-sample.expected", NULL);
    char *want_warnings = read_all(RULES_DIR "/kumo-sample.warnings", NULL);
    assert_non_null(toml);
    assert_non_null(want);
    assert_non_null(want_warnings);
    char *got = NULL;
    bp_strbuf warnings = {0};
    unsigned errs = 0;
    assert_int_equal(bp_kumo_convert("kumo-sample.toml", toml, len, &got, collect_plain, &warnings, &errs), BP_OK);
    if (strcmp(got, want) != 0)
        fail_msg("conversion differs.\n--- got\n%s--- want\n%s", got, want);
    if (strcmp(warnings.data != NULL ? warnings.data : "", want_warnings) != 0)
        fail_msg("warnings differ.\n--- got\n%s--- want\n%s", warnings.data ? warnings.data : "", want_warnings);
    assert_int_equal(errs, 4);
    /* the converted text is a valid rule file */
    bp_rules *r = rules_from_text("converted.rules", got, strlen(got));
    assert_int_equal(bp_rules_count(r), 8);
    bp_rules_free(r);
    /* the converter hands the rules back, each with its TOML line and label */
    bp_kumo_rule *kr = NULL;
    size_t n_kr = 0;
    bp_strbuf_clear(&warnings);
    assert_int_equal(bp_kumo_rules("kumo-sample.toml", toml, len, &kr, &n_kr, collect_plain, &warnings, &errs), BP_OK);
    assert_int_equal(errs, 4);
    assert_int_equal(n_kr, 8);
    assert_int_equal(kr[0].line, 5);
    assert_string_equal(kr[0].label, "InvalidRecipient");
    assert_string_equal(kr[0].text, "/^(451|550) [45]\\.1\\.[1234] / bad-mailbox id=kumo:InvalidRecipient:1");
    assert_int_equal(kr[5].line, 11);
    assert_string_equal(kr[5].label, "QuotaIssues");
    assert_string_equal(kr[7].text, "/domain\\/not\\/found\xc3\xa9/ bad-domain id=kumo:BadDomain:1");
    bp_kumo_rules_free(kr, n_kr);
    /* loaded directly, rules keep the TOML file and line */
    assert_int_equal(bp_rules_new(&r), BP_OK);
    bp_strbuf_clear(&warnings);
    assert_int_equal(bp_rules_load_file(r, RULES_DIR "/kumo-sample.toml", collect_plain, &warnings, &errs), BP_OK);
    assert_int_equal(errs, 4);
    assert_int_equal(bp_rules_count(r), 8);
    const char *text = "452 4.2.2 mailbox over quota";
    bp_rule_subject s = {text, strlen(text), NULL, NULL, NULL, BP_SMTP_NONE};
    bp_rule_match m;
    assert_true(bp_rules_match(r, &s, &m));
    assert_string_equal(m.rule->id, "kumo:QuotaIssues:1");
    assert_string_equal(m.rule->category, "quota-issues");
    assert_int_equal(m.rule->line, 11);
    assert_non_null(strstr(m.rule->file, "kumo-sample.toml"));
    text = "550 5.1.1 <jdoe@example.com>: user unknown";
    s.text = text;
    s.len = strlen(text);
    assert_true(bp_rules_match(r, &s, &m));
    assert_string_equal(m.rule->id, "kumo:InvalidRecipient:1");
    /* the mapping: bounce labels have a category of the contract; the others none */
    assert_string_equal(bp_kumo_label_category("InvalidRecipient"), "bad-mailbox");
    assert_string_equal(bp_kumo_label_category("SpamBlock"), "spam-related");
    assert_null(bp_kumo_label_category("AutoReply"));
    assert_null(bp_kumo_label_category("NoSuchLabel"));
    bp_rules_free(r);
    /* hostile input: truncated, unbalanced, bad escapes - no crash, warnings only */
    static const char *const hostile[] = {
        "[rules",
        "[rules]\nInvalidRecipient = [\"a\\",
        "[rules]\nX = \"\\u12\"",
        "[rules]\n\"\" = [\"x\"]",
        "[rules]\nInvalidRecipient = '''abc",
        "[rules]\nInvalidRecipient = \"\"\"a\\\n  b\"\"\"",
        "[rules]\nInvalidRecipient = [\"\\q\"]",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        char *out = NULL;
        unsigned n = 0;
        bp_strbuf_clear(&warnings);
        assert_int_equal(bp_kumo_convert("h.toml", hostile[i], strlen(hostile[i]), &out, collect_plain, &warnings, &n),
                         BP_OK);
        assert_non_null(out);
        if (i != 5 && n == 0)
            fail_msg("hostile input %zu gave no warning", i);
        free(out);
    }
    char with_nul[] = "[rules]\nInvalidRecipient = [\"a\0b\"]\n";
    char *out = NULL;
    assert_int_equal(bp_kumo_convert("n.toml", with_nul, sizeof(with_nul) - 1, &out, collect_plain, &warnings, &errs),
                     BP_OK);
    assert_int_equal(errs, 1);
    free(out);
    bp_strbuf_free(&warnings);
    free(got);
    free(toml);
    free(want);
    free(want_warnings);
}

/* A good address is never suppressed for a block-list, reputation or authentication
 * rejection: every such table text, under a 5.1.1 status and glued after a mailbox verdict,
 * still decides a category the default policy does not suppress. */
static void test_sender_side_never_suppresses(void **state)
{
    (void)state;
    bp_policy policy;
    bp_policy_default(&policy);
    int bad = 0;
    size_t checked = 0;
    bp_arena *arena = bp_arena_new();
    assert_non_null(arena);
    for (size_t i = 0; i < all_rows.n; i++) {
        const struct table_row *r = &all_rows.rows[i];
        if (strncmp(r->file, "10-", 3) != 0 && strncmp(r->file, "20-", 3) != 0)
            continue;
        char glued[2048];
        snprintf(glued, sizeof(glued), "550 5.1.1 <jdoe@example.com>: Recipient address rejected: User unknown; %s",
                 r->text);
        const char *texts[] = {r->text, glued};
        for (int k = 0; k < 2; k++) {
            const char *rule = NULL, *bl = NULL;
            const char *category = bp_classify_text(builtin, arena, texts[k], "5.1.1", "550", NULL, &rule, &bl);
            bp_action a = bp_policy_decide(&policy, BP_EVENT_BOUNCE, category, NULL, 1, NULL);
            checked++;
            if (a == BP_ACT_SUPPRESS) {
                print_message("%s:%u: %s suppresses (%s by %s)\n", r->file, r->line, k ? "glued text" : "text",
                              category, rule);
                bad++;
            }
        }
    }
    bp_arena_free(arena);
    assert_true(checked >= 80);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_tables),
        cmocka_unit_test(test_every_rule_has_a_text),
        cmocka_unit_test(test_builtin_compiles),
        cmocka_unit_test(test_builtin_table_equals_text),
        cmocka_unit_test(test_entries_with_unusable_code),
        cmocka_unit_test(test_builtin_prefiltered),
        cmocka_unit_test(test_broken_file_warnings),
        cmocka_unit_test(test_stage_scope),
        cmocka_unit_test(test_prefilter_tricky),
        cmocka_unit_test(test_prefilter_builtin),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_powermta_block_and_span),
        cmocka_unit_test(test_match_limit),
        cmocka_unit_test(test_prefilter_odd_letters),
        cmocka_unit_test(test_effort_budget),
        cmocka_unit_test(test_kumo_import),
        cmocka_unit_test(test_sender_side_never_suppresses),
        cmocka_unit_test(test_stage_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
