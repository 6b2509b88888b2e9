/*
 * rules.c - load rule files and match diagnostics, first match wins, fast.
 *
 * Loading (bp_rules_load_*): one rule per line (format in rules.h and
 * docs/bouncepipe-patterns.5).  A bad line is skipped with "FILE:LINE: why" (Postfix
 * dict_pcre habit), never fatal: bad syntax, unknown category or option, bad option value,
 * duplicate id, and a pattern PCRE2 will not compile (each is compiled once to validate
 * it, and the code kept).  The shipped database is not loaded here at run time: the build
 * loads it with this loader (bp_rulegen) and bp_rules_add_entries() takes the result, with
 * the prefilter literals and the compiled code, from a static table - no parsing and no
 * compiling at start-up, because PowerMTA starts one process per message.  Their code is
 * decoded at the first candidacy of any of them (compiled instead when this PCRE2 refuses
 * the serialization; bp_rules_validate() does it for all, for 'patterns check').
 * Each rule gets a prefilter at load time:
 *
 *   the literals its regex requires - for every top-level alternative, the longest run of
 *   plain characters outside groups, classes, escapes with arguments and quantified atoms,
 *   folded to lower case (ASCII and basic Cyrillic; CJK and Hangul have no case; any other
 *   non-ASCII letter ends the run).  An alternative without a literal of MIN_LITERAL bytes,
 *   more than MAX_LITERALS alternatives, \Q..\E, verbs or extended mode: no prefilter.
 *
 * Matching folds the subject the same way once, notes which byte pairs occur in it, and
 * skips every rule none of whose literals occurs in it (all of a literal's byte pairs must
 * be there before a memmem looks for the literal itself), so a rule is compiled (lazily, on
 * first candidacy) and run only when it can match.  A subject holding a letter whose
 * caseless match is an ASCII or Cyrillic letter in another shape (KELVIN SIGN, LONG S,
 * dotted/dotless I, U+1C80..) is matched without the prefilter.  The prefilter is a
 * necessary condition only, so it never changes which rule wins (tests compare it with
 * brute-force PCRE2).  A rule that keeps being tried gets JIT-compiled after JIT_AFTER_TRIES
 * tries; PCRE2 match and depth limits bound every run (limits.h), and
 * PCRE2_MATCH_INVALID_UTF lets non-UTF-8 diagnostics match.
 *
 * bp_rules_add_line(): one line as if read from FILE:LINE (KumoMTA import keeps the TOML
 * file's lines this way).  bp_rules_load_file() hands *.toml files to kumo.c.
 * Ownership: a bp_rules copies every string it keeps, except that rules added from a
 * bp_rule_entry table borrow the table (and its serialized code); bp_rule pointers stay
 * valid until bp_rules_free().  A bp_rules is not thread-safe (it keeps scratch buffers and
 * lazily compiled code): one per thread.
 */
#include "bouncepipe/rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/readfile.h"
#include "bouncepipe/text.h"

#define MAX_LITERALS    64 /* top-level alternatives with a literal each; beyond: no prefilter */
#define MIN_LITERAL     3
#define JIT_AFTER_TRIES 16

struct rule {
    bp_rule pub;
    const char *const *literals; /* lower case, one per top-level alternative; n_literals == 0: no prefilter */
    const size_t *literal_len;
    unsigned n_literals;
    int borrowed;     /* pub's strings and the literals belong to a bp_rule_entry table */
    pcre2_code *code; /* NULL until first candidacy */
    int compile_failed;
    int jitted;
    unsigned tries;
};

struct bp_rules {
    struct rule *rules;
    size_t n, cap;
    pcre2_match_context *mctx;
    pcre2_match_data *mdata;
    char *lower; /* scratch: lower-cased subject */
    size_t lower_cap;
    uint64_t pairs[1024]; /* scratch: the byte pairs of the lower-cased subject, one bit each */
    /* Rules [code_first, code_first + code_n) came with their compiled code as one PCRE2
     * serialization (the build's table): decoded at the first candidacy of any of them.
     * code_state: 0 not yet, 1 decoded, -1 unusable (another PCRE2 build: compile instead). */
    const unsigned char *code;
    size_t code_first, code_n;
    int code_state;
};

static const char *const categories[] = {"bad-mailbox",       "bad-domain",      "inactive-mailbox",
                                         "quota-issues",      "bad-connection",  "no-answer-from-host",
                                         "routing-errors",    "relaying-issues", "protocol-errors",
                                         "message-expired",   "policy-related",  "spam-related",
                                         "virus-related",     "content-related", "invalid-sender",
                                         "bad-configuration", "other",           NULL};

int bp_category_valid(const char *category)
{
    for (int i = 0; category != NULL && categories[i] != NULL; i++)
        if (strcmp(categories[i], category) == 0)
            return 1;
    return 0;
}

bp_status bp_rules_new(bp_rules **out)
{
    bp_rules *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return BP_ERR_NOMEM;
    r->mctx = pcre2_match_context_create(NULL);
    r->mdata = pcre2_match_data_create(16, NULL);
    if (r->mctx == NULL || r->mdata == NULL) {
        bp_rules_free(r);
        return BP_ERR_NOMEM;
    }
    pcre2_set_match_limit(r->mctx, BP_PCRE2_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, BP_PCRE2_DEPTH_LIMIT);
    *out = r;
    return BP_OK;
}

static void rule_clear(struct rule *ru)
{
    pcre2_code_free(ru->code);
    if (ru->borrowed)
        return;
    free((char *)ru->pub.id);
    free((char *)ru->pub.file);
    free((char *)ru->pub.pattern);
    free((char *)ru->pub.category);
    free((char *)ru->pub.blocklist);
    free((char *)ru->pub.scope_status);
    free((char *)ru->pub.scope_mta);
    for (unsigned i = 0; i < ru->n_literals; i++)
        free((char *)ru->literals[i]);
    free((void *)ru->literals);
    free((void *)ru->literal_len);
}

void bp_rules_free(bp_rules *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        rule_clear(&r->rules[i]);
    free(r->rules);
    pcre2_match_context_free(r->mctx);
    pcre2_match_data_free(r->mdata);
    free(r->lower);
    free(r);
}

size_t bp_rules_count(const bp_rules *r)
{
    return r->n;
}

int bp_rules_prefiltered(const bp_rules *r, size_t i)
{
    return i < r->n && r->rules[i].n_literals > 0;
}

const bp_rule *bp_rules_get(const bp_rules *r, size_t i)
{
    return i < r->n ? &r->rules[i].pub : NULL;
}

/* ---- prefilter: required literals of a regex -------------------------------------- */

/* Append one byte to the current run; keep the longest finished run. */
struct lit_state {
    char run[512];
    size_t run_len;
    char best[512];
    size_t best_len;
};

static void lit_break(struct lit_state *ls)
{
    if (ls->run_len > ls->best_len) {
        memcpy(ls->best, ls->run, ls->run_len);
        ls->best_len = ls->run_len;
    }
    ls->run_len = 0;
}

static void lit_add(struct lit_state *ls, char c)
{
    if (ls->run_len < sizeof(ls->run))
        ls->run[ls->run_len++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static int is_quantifier(char c)
{
    return c == '*' || c == '+' || c == '?' || c == '{';
}

/* Drop the last literal character: a quantifier follows it, so it may be absent. */
static void lit_drop_last(struct lit_state *ls)
{
    /* the quantifier applies to the last character, which may be a multi-byte UTF-8 one */
    while (ls->run_len > 0 && ((unsigned char)ls->run[ls->run_len - 1] & 0xC0) == 0x80)
        ls->run_len--;
    if (ls->run_len > 0)
        ls->run_len--;
    lit_break(ls);
}

/* Index just past the character class opening at p[i] == '['; understands a leading ']' or
 * "^]", escapes and POSIX classes such as [[:alpha:]] (whose ']' does not close the class). */
static size_t skip_class(const char *p, size_t i, size_t end)
{
    i++;
    if (i < end && p[i] == '^')
        i++;
    if (i < end && p[i] == ']')
        i++;
    while (i < end && p[i] != ']') {
        if (p[i] == '\\') {
            i += 2;
            continue;
        }
        if (p[i] == '[' && i + 1 < end && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
            char kind = p[i + 1];
            size_t j = i + 2;
            while (j + 1 < end && !(p[j] == kind && p[j + 1] == ']'))
                j++;
            if (j + 1 < end) {
                i = j + 2;
                continue;
            }
        }
        i++;
    }
    return i < end ? i + 1 : end;
}

/* Index just past the group opening at p[i] == '(' (comments "(?#...)" end at the first ')'). */
static size_t skip_group(const char *p, size_t i, size_t end)
{
    if (i + 2 < end && p[i + 1] == '?' && p[i + 2] == '#') {
        const char *close = memchr(p + i, ')', end - i);
        return close != NULL ? (size_t)(close - p) + 1 : end;
    }
    int depth = 0;
    while (i < end) {
        char g = p[i];
        if (g == '\\') {
            i += 2;
            continue;
        }
        if (g == '[') {
            i = skip_class(p, i, end);
            continue;
        }
        if (g == '(' && i + 2 < end && p[i + 1] == '?' && p[i + 2] == '#' && depth > 0) {
            const char *close = memchr(p + i, ')', end - i);
            i = close != NULL ? (size_t)(close - p) + 1 : end;
            continue;
        }
        if (g == '(') {
            depth++;
        } else if (g == ')') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return end;
}

/* Index just past the arguments of a non-literal escape whose letter is p[i - 1]: \x41,
 * \x{263a}, \o{12}, \p{Han}, \pL, \N{U+41}, \g{1}, \g<n>, \k'n', \cX, \12 ... */
static size_t skip_escape_args(const char *p, size_t i, size_t end)
{
    char e = p[i - 1];
    if (i < end && p[i] == '{' && strchr("xopPNgk", e) != NULL) {
        const char *close = memchr(p + i, '}', end - i);
        return close != NULL ? (size_t)(close - p) + 1 : end;
    }
    if ((e == 'g' || e == 'k') && i < end && (p[i] == '<' || p[i] == '\'')) {
        char want = p[i] == '<' ? '>' : '\'';
        const char *close = memchr(p + i + 1, want, end - i - 1);
        return close != NULL ? (size_t)(close - p) + 1 : end;
    }
    if (e == 'x') {
        for (int k = 0; k < 2 && i < end && strchr("0123456789abcdefABCDEF", p[i]) != NULL && p[i] != '\0'; k++)
            i++;
        return i;
    }
    if (e == 'c' || e == 'p' || e == 'P')
        return i < end ? i + 1 : end;
    if ((e >= '0' && e <= '9') || e == 'g') {
        if (e == 'g' && i < end && (p[i] == '-' || p[i] == '+'))
            i++;
        while (i < end && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    return i;
}

/* Skip a quantifier at p[i] (with its lazy or possessive suffix); returns i when there is none. */
static size_t skip_quantifier(const char *p, size_t i, size_t end)
{
    if (i >= end || !is_quantifier(p[i]))
        return i;
    if (p[i] == '{') {
        const char *close = memchr(p + i, '}', end - i);
        i = close != NULL ? (size_t)(close - p) + 1 : end;
    } else {
        i++;
    }
    if (i < end && (p[i] == '?' || p[i] == '+'))
        i++;
    return i;
}

/* Letters a caseless UTF pattern may match in a different, non-ASCII shape: the prefilter
 * cannot see them, so a subject holding one is matched without it. */
static int has_odd_fold(const char *s, size_t len)
{
    static const char *const odd[] = {"\xE2\x84\xAA", /* KELVIN SIGN ~ k */
                                      "\xC5\xBF",     /* LATIN SMALL LETTER LONG S ~ s */
                                      "\xC4\xB0",     /* LATIN CAPITAL LETTER I WITH DOT ABOVE */
                                      "\xC4\xB1",     /* LATIN SMALL LETTER DOTLESS I */
                                      "\xE1\xB2",     /* U+1C80..U+1CBF: Cyrillic letter variants ~ в д о с т ъ */
                                      NULL};
    for (int i = 0; odd[i] != NULL; i++)
        if (memmem(s, len, odd[i], strlen(odd[i])) != NULL)
            return 1;
    return 0;
}

/* Basic Cyrillic (U+0400..U+045F) folded to lower case; 0 for anything else. */
static unsigned cyrillic_lower(unsigned cp)
{
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    return cp >= 0x430 && cp <= 0x45F ? cp : 0;
}

/* Write the two-byte UTF-8 form of a basic Cyrillic letter. */
static void put_cyrillic(char *out, unsigned cp)
{
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
}

/* A run of CJK or Hangul characters has no case: safe to require byte for byte. */
static int caseless_cp(unsigned cp)
{
    return (cp >= 0x3000 && cp < 0xA000) || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF);
}

/*
 * Scan pattern[start..end) (one top-level alternative) for its longest required literal.
 * Conservative: anything not understood ends the current run.
 */
static size_t longest_literal(const char *p, size_t start, size_t end, char *out, size_t out_cap)
{
    struct lit_state ls;
    ls.run_len = ls.best_len = 0;
    size_t i = start;
    while (i < end) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\') {
            if (i + 1 >= end) {
                lit_break(&ls);
                break;
            }
            char e = p[i + 1];
            i += 2;
            if (strchr(".^$|()[]{}*+?\\/-\"' #:@=<>,;!&%~`", e) != NULL && e != '\0') {
                lit_add(&ls, e);
                if (i < end && is_quantifier(p[i]))
                    lit_drop_last(&ls);
            } else if (e == 'b' || e == 'B') {
                /* zero-width: the run goes on */
            } else {
                lit_break(&ls); /* \s \d \w \x.. \1 ...: not a plain character */
                i = skip_quantifier(p, skip_escape_args(p, i, end), end);
            }
            continue;
        }
        if (c == '(') {
            /* skip the whole group: its content is optional or alternative for all we know */
            lit_break(&ls);
            i = skip_group(p, i, end);
            continue;
        }
        if (c == '[') {
            lit_break(&ls);
            i = skip_class(p, i, end);
            continue;
        }
        if (c == '.' || c == '^' || c == '$' || c == ')' || c == '|') {
            lit_break(&ls);
            i++;
            continue;
        }
        if (is_quantifier((char)c)) {
            lit_drop_last(&ls);
            i = skip_quantifier(p, i, end);
            continue;
        }
        if (c >= 0x80) {
            /* a UTF-8 character: keep it only when it has no case (CJK, kana, Hangul) */
            size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            unsigned cp = 0;
            if (n == 3 && i + 2 < end)
                cp = ((c & 0x0Fu) << 12) | (((unsigned char)p[i + 1] & 0x3Fu) << 6) | ((unsigned char)p[i + 2] & 0x3Fu);
            unsigned cyr = 0;
            if (n == 2 && i + 1 < end && ((unsigned char)p[i + 1] & 0xC0) == 0x80)
                cyr = cyrillic_lower(((c & 0x1Fu) << 6) | ((unsigned char)p[i + 1] & 0x3Fu));
            if (cyr != 0) {
                char two[2];
                put_cyrillic(two, cyr); /* the subject is folded the same way */
                lit_add(&ls, two[0]);
                lit_add(&ls, two[1]);
                i += 2;
                if (i < end && is_quantifier(p[i]))
                    lit_drop_last(&ls);
            } else if (n == 3 && caseless_cp(cp)) {
                for (size_t k = 0; k < n && i + k < end; k++)
                    lit_add(&ls, p[i + k]);
                i += n;
                if (i < end && is_quantifier(p[i]))
                    lit_drop_last(&ls);
            } else {
                lit_break(&ls);
                i += n;
            }
            continue;
        }
        if (c == ' ' || (c >= 0x21 && c < 0x7F)) {
            i++;
            if (i < end && is_quantifier(p[i])) {
                lit_add(&ls, (char)c);
                lit_drop_last(&ls);
            } else {
                lit_add(&ls, (char)c);
            }
            continue;
        }
        lit_break(&ls);
        i++;
    }
    lit_break(&ls);
    size_t n = ls.best_len < out_cap ? ls.best_len : out_cap;
    memcpy(out, ls.best, n);
    return n;
}

/* Split at top-level '|' and take one literal per alternative; any alternative without a
 * usable literal disables the prefilter for the rule. */
static bp_status extract_literals(struct rule *ru)
{
    const char *p = ru->pub.pattern;
    size_t len = strlen(p);
    if (strstr(p, "\\Q") != NULL || strstr(p, "(*") != NULL)
        return BP_OK; /* quoting or verbs: no prefilter */
    for (const char *o = strstr(p, "(?"); o != NULL; o = strstr(o + 2, "(?")) {
        size_t n = strspn(o + 2, "imnsxJU^-"); /* option letters: an x anywhere means extended */
        if (memchr(o + 2, 'x', n) != NULL)
            return BP_OK;
    }
    /* leading inline options such as (?i) are harmless: the prefilter is case-blind */
    size_t starts[MAX_LITERALS + 1], ends[MAX_LITERALS + 1];
    size_t n_alt = 0, depth = 0, s = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? p[i] : '|';
        if (i < len && c == '\\') {
            i++;
            continue;
        }
        if (c == '[') {
            i = skip_class(p, i, len) - 1;
            continue;
        }
        if (c == '(' && i + 2 < len && p[i + 1] == '?' && p[i + 2] == '#') {
            i = skip_group(p, i, len) - 1;
            continue;
        }
        if (c == '(')
            depth++;
        else if (c == ')' && depth > 0)
            depth--;
        else if (c == '|' && depth == 0) {
            if (n_alt == MAX_LITERALS)
                return BP_OK; /* too many alternatives: no prefilter */
            starts[n_alt] = s;
            ends[n_alt] = i;
            n_alt++;
            s = i + 1;
        }
    }
    char buf[512];
    size_t *lens = malloc(n_alt * sizeof(*lens));
    char **lits = calloc(n_alt, sizeof(*lits));
    if (lens == NULL || lits == NULL) {
        free(lens);
        free(lits);
        return BP_ERR_NOMEM;
    }
    for (size_t a = 0; a < n_alt; a++) {
        size_t st = starts[a];
        if (p[st] == '(' && p[st + 1] == '?' && st + 2 < ends[a] && strchr("imsxn-", p[st + 2]) != NULL) {
            const char *close = memchr(p + st, ')', ends[a] - st);
            if (close != NULL && memchr(p + st, ':', (size_t)(close - p - st)) == NULL)
                st = (size_t)(close - p) + 1; /* (?i) and friends */
        }
        size_t n = longest_literal(p, st, ends[a], buf, sizeof(buf));
        if (n >= MIN_LITERAL)
            lits[a] = malloc(n + 1);
        if (n < MIN_LITERAL || lits[a] == NULL) {
            int nomem = n >= MIN_LITERAL;
            for (size_t k = 0; k <= a; k++)
                free(lits[k]);
            free(lits);
            free(lens);
            return nomem ? BP_ERR_NOMEM : BP_OK; /* an alternative without a literal: no prefilter */
        }
        memcpy(lits[a], buf, n);
        lits[a][n] = '\0';
        lens[a] = n;
    }
    ru->literals = (const char *const *)lits;
    ru->literal_len = lens;
    ru->n_literals = (unsigned)n_alt;
    return BP_OK;
}

/* ---- loading ------------------------------------------------------------------------ */

struct load_ctx {
    const char *name;
    bp_rules_warn_fn warn;
    void *user;
    unsigned errors;
};

static void warnf(struct load_ctx *lc, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void warnf(struct load_ctx *lc, unsigned line, const char *fmt, ...)
{
    char msg[1024], full[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s:%u: %s", lc->name, line, msg);
    if (lc->warn != NULL)
        lc->warn(lc->user, full);
    else
        fprintf(stderr, "bouncepipe: warning: %s\n", full);
    lc->errors++;
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Base name without directories and extension, for derived ids. */
static void base_name(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b != NULL ? b + 1 : path;
    if (strncmp(b, "builtin:", 8) == 0)
        b += 8;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot != NULL && dot != out)
        *dot = '\0';
}

static int valid_id(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.' || *s == ':'))
            return 0;
    return 1;
}

/* One scope entry: an SMTP code "550", or a status prefix "5", "5.7", "5.7.1". */
static int valid_status_entry(const char *s, size_t n)
{
    if (n == 0 || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
        return 0;
    if (n == 3 && strspn(s, "0123456789") >= 3)
        return 1;
    size_t i = 1, parts = 1;
    while (i < n) {
        if (s[i] != '.' || parts == 3)
            return 0;
        size_t digits = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (digits == 0 || digits > 3)
            return 0;
        parts++;
    }
    return 1;
}

/* Scope entries, comma-separated. */
static int valid_status_list(const char *s)
{
    if (*s == '\0')
        return 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (!valid_status_entry(s, n))
            return 0;
        s += n;
        if (*s == ',')
            s++;
    }
    return 1;
}

/* Domain suffixes, comma-separated: letters, digits, '-' and '.'. */
static int valid_domain_list(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '.' || *s == ','))
            return 0;
    return 1;
}

/* Parse one line; returns BP_OK also for skipped lines. */
static bp_status load_line(bp_rules *r, struct load_ctx *lc, unsigned lineno, char *line)
{
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
        s[--l] = '\0';
    if (*s == '\0' || *s == '#')
        return BP_OK;
    if (*s == '<') /* <bounce-category-patterns> and its closing tag, pasted from PowerMTA */
        return BP_OK;
    if (*s != '/') {
        warnf(lc, lineno, "rule does not start with /regex/: %.60s", s);
        return BP_OK;
    }
    /* find the closing slash: unescaped and outside a character class */
    char *p = s + 1;
    size_t line_len = strlen(s);
    while (*p && *p != '/') {
        if (*p == '\\' && p[1] != '\0')
            p += 2;
        else if (*p == '[') /* a class may hold '/' and POSIX names: [[:alpha:]/] */
            p = s + skip_class(s, (size_t)(p - s), line_len);
        else
            p++;
    }
    if (*p != '/') {
        warnf(lc, lineno, "regex has no closing /");
        return BP_OK;
    }
    char *pattern = s + 1;
    *p++ = '\0';
    if (*pattern == '\0') {
        warnf(lc, lineno, "%s", "empty regex");
        return BP_OK;
    }
    while (*p == 'i' || *p == 'm' || *p == 's')
        p++; /* flags: matching is always case-insensitive */
    char *tok = strtok(p, " \t");
    if (tok == NULL) {
        warnf(lc, lineno, "%s", "rule has no category");
        return BP_OK;
    }
    if (!bp_category_valid(tok)) {
        warnf(lc, lineno, "unknown category \"%s\"", tok);
        return BP_OK;
    }
    const char *category = tok;
    const char *id = NULL, *status = NULL, *mta = NULL, *blocklist = NULL;
    while ((tok = strtok(NULL, " \t")) != NULL) {
        if (*tok == '#')
            break;
        char *eq = strchr(tok, '=');
        if (eq == NULL) {
            warnf(lc, lineno, "option \"%s\" is not key=value", tok);
            return BP_OK;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(tok, "id") == 0 && valid_id(v))
            id = v;
        else if (strcmp(tok, "status") == 0 && valid_status_list(v))
            status = v;
        else if (strcmp(tok, "mta") == 0 && valid_domain_list(v))
            mta = v;
        else if (strcmp(tok, "blocklist") == 0)
            blocklist = v;
        else if (strcmp(tok, "id") == 0 || strcmp(tok, "status") == 0 || strcmp(tok, "mta") == 0) {
            warnf(lc, lineno, "invalid value \"%s\" for %s=", v, tok);
            return BP_OK;
        } else {
            warnf(lc, lineno, "unknown option \"%s\"", tok);
            return BP_OK;
        }
    }
    /* an id names one rule: events and explain point at it */
    for (size_t i = 0; id != NULL && i < r->n; i++)
        if (strcmp(r->rules[i].pub.id, id) == 0) {
            if (strcmp(r->rules[i].pub.file, lc->name) == 0)
                warnf(lc, lineno, "duplicate id \"%s\" (first at line %u)", id, r->rules[i].pub.line);
            else
                warnf(lc, lineno, "duplicate id \"%s\" (first in %s:%u)", id, r->rules[i].pub.file,
                      r->rules[i].pub.line);
            return BP_OK;
        }
    /* compile once to validate: a pattern that does not compile is skipped here, not at match */
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                     PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        char detail[400];
        snprintf(detail, sizeof(detail), "%s at offset %zu", (const char *)msg, (size_t)erroff);
        warnf(lc, lineno, "bad regex: %s", detail);
        return BP_OK;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct rule *nr = realloc(r->rules, cap * sizeof(*nr));
        if (nr == NULL) {
            pcre2_code_free(code);
            return BP_ERR_NOMEM;
        }
        r->rules = nr;
        r->cap = cap;
    }
    struct rule *ru = &r->rules[r->n];
    memset(ru, 0, sizeof(*ru));
    ru->code = code; /* validated already: keep it (cheap to keep, saves a compile) */
    char base[256];
    base_name(lc->name, base, sizeof(base));
    char derived[300];
    if (id == NULL) {
        snprintf(derived, sizeof(derived), "%s:%08x", base, fnv1a(pattern));
        id = derived;
    }
    ru->pub.id = strdup(id);
    ru->pub.file = strdup(lc->name);
    ru->pub.line = lineno;
    ru->pub.pattern = strdup(pattern);
    ru->pub.category = strdup(category);
    ru->pub.blocklist = blocklist != NULL ? strdup(blocklist) : NULL;
    ru->pub.scope_status = status != NULL ? strdup(status) : NULL;
    ru->pub.scope_mta = mta != NULL ? strdup(mta) : NULL;
    if (ru->pub.id == NULL || ru->pub.file == NULL || ru->pub.pattern == NULL || ru->pub.category == NULL ||
        extract_literals(ru) != BP_OK) {
        rule_clear(ru);
        return BP_ERR_NOMEM;
    }
    r->n++;
    return BP_OK;
}

bp_status bp_rules_load_text(bp_rules *r, const char *name, const char *text, size_t len, bp_rules_warn_fn warn,
                             void *user, unsigned *n_errors)
{
    struct load_ctx lc = {name, warn, user, 0};
    char *line = malloc(BP_MAX_RULE_LINE_BYTES + 1);
    if (line == NULL)
        return BP_ERR_NOMEM;
    bp_status st = BP_OK;
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len && st == BP_OK) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = nl != NULL ? (size_t)(nl - text - pos) : len - pos;
        lineno++;
        if (llen > BP_MAX_RULE_LINE_BYTES) {
            warnf(&lc, lineno, "%s", "line too long");
        } else if (memchr(text + pos, '\0', llen) != NULL) {
            warnf(&lc, lineno, "%s", "line contains a NUL byte");
        } else {
            memcpy(line, text + pos, llen);
            line[llen] = '\0';
            st = load_line(r, &lc, lineno, line);
        }
        pos += llen + 1;
    }
    free(line);
    if (n_errors != NULL)
        *n_errors = lc.errors;
    return st;
}

bp_status bp_rules_add_line(bp_rules *r, const char *file, unsigned line, const char *text, bp_rules_warn_fn warn,
                            void *user, unsigned *n_errors)
{
    struct load_ctx lc = {file, warn, user, 0};
    size_t len = strlen(text);
    bp_status st = BP_OK;
    if (len > BP_MAX_RULE_LINE_BYTES) {
        warnf(&lc, line, "%s", "line too long");
    } else {
        char *copy = strdup(text);
        if (copy == NULL)
            return BP_ERR_NOMEM;
        st = load_line(r, &lc, line, copy);
        free(copy);
    }
    if (n_errors != NULL)
        *n_errors += lc.errors;
    return st;
}

bp_status bp_rules_add_entries(bp_rules *r, const bp_rule_entry *entries, size_t n, const unsigned char *code)
{
    if (n > r->cap - r->n) {
        struct rule *nr = realloc(r->rules, (r->n + n) * sizeof(*nr));
        if (nr == NULL)
            return BP_ERR_NOMEM;
        r->rules = nr;
        r->cap = r->n + n;
    }
    for (size_t i = 0; i < n; i++) {
        struct rule *ru = &r->rules[r->n++];
        memset(ru, 0, sizeof(*ru));
        ru->pub = entries[i].rule;
        ru->literals = entries[i].literals;
        ru->literal_len = entries[i].literal_len;
        ru->n_literals = entries[i].n_literals;
        ru->borrowed = 1;
    }
    if (code != NULL && r->code == NULL) { /* one serialization per database: later ones compile */
        r->code = code;
        r->code_first = r->n - n;
        r->code_n = n;
    }
    return BP_OK;
}

int bp_rules_get_entry(const bp_rules *r, size_t i, bp_rule_entry *out)
{
    if (i >= r->n)
        return 0;
    out->rule = r->rules[i].pub;
    out->literals = r->rules[i].literals;
    out->literal_len = r->rules[i].literal_len;
    out->n_literals = r->rules[i].n_literals;
    return 1;
}

bp_status bp_rules_load_file(bp_rules *r, const char *path, bp_rules_warn_fn warn, void *user, unsigned *n_errors)
{
    size_t plen = strlen(path);
    if (plen > 5 && strcasecmp(path + plen - 5, ".toml") == 0)
        return bp_rules_load_kumo_file(r, path, warn, user, n_errors);
    char *data = NULL;
    size_t len = 0;
    int truncated = 0;
    bp_status st = bp_read_file(path, SIZE_MAX, &data, &len, &truncated);
    if (st == BP_OK)
        st = bp_rules_load_text(r, path, data, len, warn, user, n_errors);
    free(data);
    return st;
}

/* Decode the serialized code of the build's table into every rule of it not compiled yet.
 * Decoding all of them copies bytes (39 k instructions) where compiling the rules one
 * diagnostic makes candidates parsed their patterns (0.3-1.2 M instructions).  PCRE2
 * refuses a serialization from another version or configuration: then the rules are
 * compiled one by one as usual. */
static void decode_table_code(bp_rules *r)
{
    r->code_state = -1;
    int32_t n = pcre2_serialize_get_number_of_codes(r->code);
    pcre2_code **codes = n > 0 && (size_t)n == r->code_n ? calloc((size_t)n, sizeof(*codes)) : NULL;
    if (codes == NULL)
        return;
    if (pcre2_serialize_decode(codes, n, r->code, NULL) == n) {
        for (int32_t k = 0; k < n; k++) {
            struct rule *ru = &r->rules[r->code_first + (size_t)k];
            if (ru->code == NULL)
                ru->code = codes[k];
            else
                pcre2_code_free(codes[k]);
        }
        r->code_state = 1;
    }
    free(codes);
}

/* Compile @ru now if it is not yet; 0 when its pattern does not compile (message in @msg). */
static int ensure_compiled(bp_rules *r, struct rule *ru, char *msg, size_t msg_size)
{
    if (ru->code != NULL)
        return 1;
    size_t i = (size_t)(ru - r->rules);
    if (r->code_state == 0 && r->code != NULL && i >= r->code_first && i - r->code_first < r->code_n) {
        decode_table_code(r);
        if (ru->code != NULL)
            return 1;
    }
    if (ru->compile_failed) {
        snprintf(msg, msg_size, "%s", "does not compile");
        return 0;
    }
    int errcode;
    PCRE2_SIZE erroff;
    ru->code = pcre2_compile((PCRE2_SPTR)ru->pub.pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
    if (ru->code != NULL)
        return 1;
    ru->compile_failed = 1;
    PCRE2_UCHAR text[256];
    pcre2_get_error_message(errcode, text, sizeof(text));
    snprintf(msg, msg_size, "%s at offset %zu", (const char *)text, (size_t)erroff);
    return 0;
}

unsigned bp_rules_validate(bp_rules *r, bp_rules_warn_fn warn, void *user)
{
    unsigned bad = 0;
    for (size_t i = 0; i < r->n; i++) {
        char msg[300], full[1400];
        if (ensure_compiled(r, &r->rules[i], msg, sizeof(msg)))
            continue;
        bad++;
        snprintf(full, sizeof(full), "%s:%u: bad regex: %s", r->rules[i].pub.file, r->rules[i].pub.line, msg);
        if (warn != NULL)
            warn(user, full);
        else
            fprintf(stderr, "bouncepipe: warning: %s\n", full);
    }
    return bad;
}

bp_status bp_rules_serialize(bp_rules *r, unsigned char **bytes, size_t *len)
{
    bp_status st = BP_ERR_NOMEM;
    uint8_t *encoded = NULL;
    PCRE2_SIZE size = 0;
    const pcre2_code **codes = calloc(r->n > 0 ? r->n : 1, sizeof(*codes));
    if (codes == NULL)
        goto out;
    for (size_t i = 0; i < r->n; i++) {
        char msg[300];
        if (!ensure_compiled(r, &r->rules[i], msg, sizeof(msg))) {
            st = BP_ERR_PARSE;
            goto out;
        }
        codes[i] = r->rules[i].code;
    }
    if (r->n > INT32_MAX || pcre2_serialize_encode(codes, (int32_t)r->n, &encoded, &size, NULL) < 0)
        goto out;
    *bytes = malloc(size);
    if (*bytes == NULL)
        goto out;
    memcpy(*bytes, encoded, size);
    *len = size;
    st = BP_OK;
out:
    pcre2_serialize_free(encoded);
    free((void *)codes);
    return st;
}

/* ---- matching ----------------------------------------------------------------------- */

static int scope_fits(const struct rule *ru, const bp_rule_subject *s)
{
    if (ru->pub.scope_status != NULL) {
        int ok = 0;
        const char *list = ru->pub.scope_status;
        while (*list && !ok) {
            size_t n = strcspn(list, ",");
            if (n > 0) {
                const char *code = strchr(list, '.') != NULL && (size_t)(strchr(list, '.') - list) < n
                                       ? s->status
                                       : (n == 3 ? s->smtp_code : s->status);
                if (code != NULL && strncmp(code, list, n) == 0 && (code[n] == '\0' || code[n] == '.'))
                    ok = 1;
                /* a bare class digit "5" matches both codes */
                if (!ok && n == 1 &&
                    ((s->status && s->status[0] == list[0]) || (s->smtp_code && s->smtp_code[0] == list[0])))
                    ok = 1;
            }
            list += n;
            if (*list == ',')
                list++;
        }
        if (!ok)
            return 0;
    }
    if (ru->pub.scope_mta != NULL) {
        if (s->mta == NULL)
            return 0;
        int ok = 0;
        const char *list = ru->pub.scope_mta;
        size_t mlen = strlen(s->mta);
        while (*list && !ok) {
            size_t n = strcspn(list, ",");
            if (n > 0 && n <= mlen && strncasecmp(s->mta + mlen - n, list, n) == 0 &&
                (n == mlen || s->mta[mlen - n - 1] == '.'))
                ok = 1;
            list += n;
            if (*list == ',')
                list++;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* Note every pair of adjacent bytes of the folded subject (65,536 bits). */
static void pairs_build(bp_rules *r, const char *lower, size_t len)
{
    memset(r->pairs, 0, sizeof(r->pairs));
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned pair = (unsigned)(unsigned char)lower[i] << 8 | (unsigned char)lower[i + 1];
        r->pairs[pair >> 6] |= (uint64_t)1 << (pair & 63);
    }
}

/* 0 when some byte pair of @p lit is not in the subject: then @p lit cannot occur in it. */
static int pairs_cover(const bp_rules *r, const char *lit, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned pair = (unsigned)(unsigned char)lit[i] << 8 | (unsigned char)lit[i + 1];
        if (!((r->pairs[pair >> 6] >> (pair & 63)) & 1))
            return 0;
    }
    return 1;
}

/* The byte-pair test first: it rejects most literals in a bit test or two, where memmem
 * would scan the subject (it cost 9 % of a replay when it ran for every literal). */
static int prefilter_passes(const bp_rules *r, const struct rule *ru, const char *lower, size_t len)
{
    if (ru->n_literals == 0)
        return 1;
    for (unsigned i = 0; i < ru->n_literals; i++)
        if (pairs_cover(r, ru->literals[i], ru->literal_len[i]) &&
            memmem(lower, len, ru->literals[i], ru->literal_len[i]) != NULL)
            return 1;
    return 0;
}

/* Run one rule; 1 and the span on a match, 0 otherwise (limits hit count as no match). */
static int run_rule(bp_rules *r, struct rule *ru, const bp_rule_subject *s, size_t *start, size_t *end)
{
    char msg[300];
    if (!ensure_compiled(r, ru, msg, sizeof(msg)))
        return 0;
    if (!ru->jitted && ++ru->tries >= JIT_AFTER_TRIES) {
        ru->jitted = 1; /* tried even when JIT is unavailable: then the interpreter runs */
        pcre2_jit_compile(ru->code, PCRE2_JIT_COMPLETE);
    }
    int rc = pcre2_match(ru->code, (PCRE2_SPTR)s->text, s->len, 0, 0, r->mdata, r->mctx);
    if (rc < 0)
        return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->mdata);
    *start = ov[0];
    *end = ov[1];
    return 1;
}

/* The subject folded as the literals are (ASCII and basic Cyrillic to lower case) in
 * r->lower; *@p non_ascii tells whether it holds any byte >= 0x80.  NULL when out of memory. */
static const char *lowered(bp_rules *r, const bp_rule_subject *s, int *non_ascii)
{
    if (s->len + 1 > r->lower_cap) {
        size_t cap = s->len + 1 < 1024 ? 1024 : s->len + 1;
        char *nl = realloc(r->lower, cap);
        if (nl == NULL)
            return NULL;
        r->lower = nl;
        r->lower_cap = cap;
    }
    unsigned char high = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->text[i];
        unsigned char u = (unsigned char)c;
        high |= u;
        if ((u == 0xD0 || u == 0xD1) && i + 1 < s->len && ((unsigned char)s->text[i + 1] & 0xC0) == 0x80) {
            unsigned cyr = cyrillic_lower(((u & 0x1Fu) << 6) | ((unsigned char)s->text[i + 1] & 0x3Fu));
            if (cyr != 0) {
                put_cyrillic(r->lower + i, cyr);
                i++;
                continue;
            }
        }
        r->lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    r->lower[s->len] = '\0';
    *non_ascii = (high & 0x80) != 0;
    return r->lower;
}

/* Matches in load order; stops after the first when @first_only. */
static size_t match_rules(bp_rules *r, const bp_rule_subject *s, bp_rule_match *out, size_t max, int first_only)
{
    if (s->text == NULL)
        return 0;
    int non_ascii = 0;
    const char *lower = lowered(r, s, &non_ascii);
    /* the odd folds are all non-ASCII: an ASCII subject cannot hold one */
    int prefilter = lower != NULL && !(non_ascii && has_odd_fold(s->text, s->len));
    if (prefilter)
        pairs_build(r, lower, s->len);
    size_t found = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct rule *ru = &r->rules[i];
        if (!scope_fits(ru, s))
            continue;
        if (prefilter && !prefilter_passes(r, ru, lower, s->len))
            continue;
        size_t a, b;
        if (!run_rule(r, ru, s, &a, &b))
            continue;
        if (found < max) {
            out[found].rule = &ru->pub;
            out[found].start = a;
            out[found].end = b;
        }
        found++;
        if (first_only)
            break;
    }
    return found;
}

size_t bp_rules_match_all(bp_rules *r, const bp_rule_subject *s, bp_rule_match *out, size_t max)
{
    return match_rules(r, s, out, max, 0);
}

int bp_rules_match(bp_rules *r, const bp_rule_subject *s, bp_rule_match *winner)
{
    return match_rules(r, s, winner, 1, 1) > 0;
}
