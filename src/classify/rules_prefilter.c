/*
 * rules_prefilter.c - which rules can match a text, decided without running them.
 *
 * At load (bp_rules_literals()): the literals a regex requires - for every top-level
 * alternative, the longest run of plain characters outside groups, classes, escapes with
 * arguments and quantified atoms (a lookaround assertion, zero-width, does not end the run),
 * folded to lower case (ASCII and basic Cyrillic; CJK and Hangul have no case; any other
 * non-ASCII letter ends the run).  An alternative without a
 * literal of MIN_LITERAL bytes, more than MAX_LITERALS alternatives, \Q..\E, verbs or
 * extended mode: no literals, the rule is tried on every text.
 *
 * At match (bp_rules_prefilter_prepare(), bp_rules_prefilter_passes()): the subject is folded
 * the same way once and the byte pairs occurring in it are noted (bp_byte_pairs, text.h); a rule
 * passes when one of its literals occurs in the folded subject, which is looked for with
 * memmem only when all of the literal's byte pairs are there.  A letter whose caseless match
 * is an ASCII or Cyrillic letter in another shape (KELVIN SIGN, LONG S, dotted/dotless I,
 * U+1C80..) is folded to that letter too.  The literals are a necessary condition only: the
 * prefilter never changes which rule wins (test_rules compares it with brute-force PCRE2).
 *
 * Ownership: bp_rules_literals() hands malloc'ed arrays to the caller; a bp_rules_prefilter
 * owns its folded copy of the subject (bp_rules_prefilter_free()).
 */
#include "rules_prefilter.h"

#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"

#define MAX_LITERALS 64 /* top-level alternatives with a literal each; beyond: no prefilter */
#define MIN_LITERAL  3

/* ---- required literals of a regex -------------------------------------------------- */

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
size_t bp_rules_class_end(const char *p, size_t i, size_t end)
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
            i = bp_rules_class_end(p, i, end);
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
        if (c == '(' && i + 3 < end && p[i + 1] == '?' &&
            (p[i + 2] == '=' || p[i + 2] == '!' || (p[i + 2] == '<' && (p[i + 3] == '=' || p[i + 3] == '!')))) {
            /* a lookahead or lookbehind is zero-width, as \b is: the text on either side of
             * it is adjacent in the subject, so the run goes on ("address(?<!sender address)
             * rejected" requires "address rejected"); a quantifier on it changes nothing */
            i = skip_quantifier(p, skip_group(p, i, end), end);
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
            i = bp_rules_class_end(p, i, end);
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
bp_status bp_rules_literals(const char *p, char ***literals, size_t **literal_len, unsigned *n_literals)
{
    *literals = NULL;
    *literal_len = NULL;
    *n_literals = 0;
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
            i = bp_rules_class_end(p, i, len) - 1;
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
    size_t *lens = bp_malloc(n_alt * sizeof(*lens));
    char **lits = bp_calloc(n_alt, sizeof(*lits));
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
            lits[a] = bp_malloc(n + 1);
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
    *literals = lits;
    *literal_len = lens;
    *n_literals = (unsigned)n_alt;
    return BP_OK;
}

/* ---- the subject --------------------------------------------------------------------- */

/*
 * Letters a caseless UTF pattern may match in a different, non-ASCII shape than the literals
 * hold them: KELVIN SIGN ~ k, LATIN SMALL LETTER LONG S ~ s, dotted and dotless I ~ i (PCRE2
 * does not fold them to i, but taking them as i is on the safe side), and the Cyrillic letter
 * variants U+1C80..U+1C86 ~ в д о с т т ъ.  The folded subject holds the letter they may
 * match, so that a literal is found whatever shape the text gives its letters.  (Turning the
 * prefilter off for such a subject instead let one U+017F make every rule run on it.)
 * @return the bytes of @p s folded, 0 when @p s does not start with such a letter; the folded
 *         letter is written to @p out (never more bytes than it took), its size to @p written.
 */
static size_t fold_odd(const unsigned char *s, size_t len, char *out, size_t *written)
{
    *written = 1;
    if (len >= 2 && s[0] == 0xC5 && s[1] == 0xBF) {
        out[0] = 's';
        return 2;
    }
    if (len >= 2 && s[0] == 0xC4 && (s[1] == 0xB0 || s[1] == 0xB1)) {
        out[0] = 'i';
        return 2;
    }
    if (len >= 3 && s[0] == 0xE2 && s[1] == 0x84 && s[2] == 0xAA) {
        out[0] = 'k';
        return 3;
    }
    static const unsigned short variants[] = {0x432, 0x434, 0x43E, 0x441, 0x442, 0x442, 0x44A}; /* U+1C80.. */
    if (len >= 3 && s[0] == 0xE1 && s[1] == 0xB2 && s[2] >= 0x80 &&
        s[2] - 0x80u < sizeof(variants) / sizeof(*variants)) {
        put_cyrillic(out, variants[s[2] - 0x80u]);
        *written = 2;
        return 3;
    }
    return 0;
}

/* The subject folded as the literals are (ASCII and basic Cyrillic to lower case, the odd
 * shapes above to the letters they match) into pf->lower.  0 when out of memory. */
static int fold_subject(bp_rules_prefilter *pf, const char *text, size_t len)
{
    if (len + 1 > pf->lower_cap) {
        size_t cap = len + 1 < 1024 ? 1024 : len + 1;
        char *nl = bp_realloc(pf->lower, cap);
        if (nl == NULL)
            return 0;
        pf->lower = nl;
        pf->lower_cap = cap;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        unsigned char u = (unsigned char)c;
        if (u < 0x80) {
            pf->lower[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            continue;
        }
        if ((u == 0xD0 || u == 0xD1) && i + 1 < len && ((unsigned char)text[i + 1] & 0xC0) == 0x80) {
            unsigned cyr = cyrillic_lower(((u & 0x1Fu) << 6) | ((unsigned char)text[i + 1] & 0x3Fu));
            if (cyr != 0) {
                put_cyrillic(pf->lower + o, cyr);
                o += 2;
                i++;
                continue;
            }
        }
        size_t written = 0, odd = fold_odd((const unsigned char *)text + i, len - i, pf->lower + o, &written);
        if (odd > 0) {
            o += written;
            i += odd - 1;
            continue;
        }
        pf->lower[o++] = c;
    }
    pf->lower[o] = '\0';
    pf->len = o;
    return 1;
}

int bp_rules_prefilter_prepare(bp_rules_prefilter *pf, const char *text, size_t len)
{
    if (!fold_subject(pf, text, len))
        return 0;
    bp_byte_pairs_note(&pf->pairs, pf->lower, pf->len);
    return 1;
}

void bp_rules_prefilter_free(bp_rules_prefilter *pf)
{
    free(pf->lower);
    pf->lower = NULL;
    pf->lower_cap = 0;
}
