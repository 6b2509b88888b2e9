/*
 * kumo.c - convert KumoMTA bounce-classifier files (TOML) to rules (contract in kumo.h).
 *
 * KumoMTA's classifier files hold one table, [rules], whose keys are class labels and whose
 * values are arrays of regular expressions:
 *
 *     [rules]
 *     InvalidRecipient = [
 *         "^(451|550) [45]\\.1\\.[1234] ",   # comment
 *         '^550 .*user unknown',
 *     ]
 *
 * We read that subset of TOML by hand (no new dependency): comments, [table] headers, bare
 * and quoted keys, basic strings with their escapes, literal strings, multi-line strings of
 * both kinds, and arrays spanning lines with trailing commas.  Keys of other tables are
 * ignored; anything else (inline tables, numbers, dotted keys) is skipped with a warning
 * naming FILE:LINE, and parsing resumes on the next line.  Labels map onto our categories by
 * the table below (documented in bouncepipe-patterns(5)).
 *
 * bp_kumo_label_category(): the mapping.  bp_kumo_rules(): the rules, each with the line of
 * its regex, handed back to the caller (the rule loader adds them, so explain points at the
 * TOML file's line); nothing here calls the rule loader.  bp_kumo_convert(): the same as
 * rule-file text.  A '/' in a regex is escaped for the rule syntax; a line break becomes "\n"
 * (or "\r"), escaped or not: in PCRE2 both mean the line break itself, and a rule is one line.
 * Inside \Q...\E, where PCRE2 reads no escape, such a character is written outside the quote
 * (\E\/\Q), and a quote left open is closed (quoted_escape()); \cX is written \x{HH}, as X
 * may be '/' or '['.  A regex over several lines that sets extended mode is skipped with a
 * warning: its line breaks end # comments, which a rule of one line cannot keep.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/kumo.h"
#include "bouncepipe/text.h"

static const struct {
    const char *label;
    const char *category; /* NULL: not a bounce (skipped) */
} label_map[] = {
    {"InvalidRecipient", "bad-mailbox"},
    {"DNSFailure", "routing-errors"}, /* may be temporary: counted, never suppressed at once */
    {"SpamBlock", "spam-related"},
    {"SpamContent", "spam-related"},
    {"ProhibitedAttachment", "content-related"},
    {"RelayDenied", "relaying-issues"},
    {"AutoReply", NULL},
    {"TransientFailure", "other"},
    {"Subscribe", NULL},
    {"Unsubscribe", NULL},
    {"ChallengeResponse", NULL},
    {"BadConfiguration", "bad-configuration"},
    {"BadConnection", "bad-connection"},
    {"BadDomain", "bad-domain"},
    {"ContentRelated", "content-related"},
    {"InactiveMailbox", "inactive-mailbox"},
    {"InvalidSender", "invalid-sender"},
    {"MessageExpired", "message-expired"},
    {"NoAnswerFromHost", "no-answer-from-host"},
    {"PolicyRelated", "policy-related"},
    {"ProtocolErrors", "protocol-errors"},
    {"QuotaIssues", "quota-issues"},
    {"RelayingIssues", "relaying-issues"},
    {"RoutingErrors", "routing-errors"},
    {"SpamRelated", "spam-related"},
    {"VirusRelated", "virus-related"},
    {"AuthenticationFailed", "policy-related"},
    {"TooManyRecipients", "policy-related"},
    {"Uncategorized", "other"},
};

static int label_known(const char *label)
{
    for (size_t i = 0; i < sizeof(label_map) / sizeof(label_map[0]); i++)
        if (strcmp(label_map[i].label, label) == 0)
            return 1;
    return 0;
}

const char *bp_kumo_label_category(const char *label)
{
    for (size_t i = 0; label != NULL && i < sizeof(label_map) / sizeof(label_map[0]); i++)
        if (strcmp(label_map[i].label, label) == 0)
            return label_map[i].category;
    return NULL;
}

/* ---- the TOML subset ------------------------------------------------------------------ */

/* Receives each regex of a known bounce label (the mapping's own string), with the line it
 * started on. */
typedef bp_status (*entry_fn)(void *user, unsigned line, const char *label, unsigned n, const char *regex);

struct parser {
    bp_rules_diag diag; /* the file's name, where its warnings go, their count */
    const char *p, *end;
    unsigned line;
};

/* Skip blanks, and with @lines also newlines and comments. */
static void skip_space(struct parser *ps, int lines)
{
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t' || c == '\r') {
            ps->p++;
        } else if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else if (c == '\n' && lines) {
            ps->p++;
            ps->line++;
        } else {
            break;
        }
    }
}

/* Skip to the start of the next line (error recovery). */
static void skip_line(struct parser *ps)
{
    while (ps->p < ps->end && *ps->p != '\n')
        ps->p++;
    if (ps->p < ps->end) {
        ps->p++;
        ps->line++;
    }
}

static int append_utf8(bp_strbuf *sb, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return bp_strbuf_append(sb, b, n) == BP_OK;
}

/*
 * A string at ps->p (basic "...", literal '...', or their multi-line forms) into @out.
 * @return 1 on success, 0 on a syntax error (warned), -1 when out of memory.
 */
static int parse_string(struct parser *ps, bp_strbuf *out)
{
    char q = *ps->p;
    unsigned start_line = ps->line;
    int multi = ps->end - ps->p >= 3 && ps->p[1] == q && ps->p[2] == q;
    ps->p += multi ? 3 : 1;
    if (multi && ps->p < ps->end && *ps->p == '\n') { /* a newline right after the opening is dropped */
        ps->p++;
        ps->line++;
    } else if (multi && ps->end - ps->p >= 2 && ps->p[0] == '\r' && ps->p[1] == '\n') {
        ps->p += 2;
        ps->line++;
    }
    bp_strbuf_clear(out);
    for (;;) {
        if (ps->p >= ps->end || (!multi && *ps->p == '\n')) {
            bp_rules_warnf(&ps->diag, start_line, "%s", "unterminated string");
            return 0;
        }
        char c = *ps->p;
        if (c == q && (!multi || (ps->end - ps->p >= 3 && ps->p[1] == q && ps->p[2] == q))) {
            ps->p += multi ? 3 : 1;
            return 1;
        }
        if (c == '\n')
            ps->line++;
        if (c == '\\' && q == '"') {
            if (ps->end - ps->p < 2) {
                bp_rules_warnf(&ps->diag, ps->line, "%s", "unterminated escape");
                return 0;
            }
            char e = ps->p[1];
            ps->p += 2;
            const char *simple = NULL;
            switch (e) {
            case '\\': simple = "\\"; break;
            case '"': simple = "\""; break;
            case 'n': simple = "\n"; break;
            case 't': simple = "\t"; break;
            case 'r': simple = "\r"; break;
            case 'b': simple = "\b"; break;
            case 'f': simple = "\f"; break;
            case 'e': simple = "\x1b"; break;
            default: break;
            }
            if (simple != NULL) {
                if (bp_strbuf_append(out, simple, 1) != BP_OK)
                    return -1;
                continue;
            }
            if (e == 'u' || e == 'U') {
                size_t digits = e == 'u' ? 4 : 8;
                char hex[9];
                size_t have = 0;
                while (have < digits && ps->p + have < ps->end &&
                       strchr("0123456789abcdefABCDEF", ps->p[have]) != NULL && ps->p[have] != '\0')
                    have++;
                if (have < digits) {
                    bp_rules_warnf(&ps->diag, ps->line, "\\%c wants %zu hex digits", e, digits);
                    return 0;
                }
                memcpy(hex, ps->p, digits);
                hex[digits] = '\0';
                ps->p += digits;
                if (!append_utf8(out, strtoul(hex, NULL, 16))) {
                    bp_rules_warnf(&ps->diag, ps->line, "\\%c%s is not a character", e, hex);
                    return 0;
                }
                continue;
            }
            if (multi && (e == '\n' || e == ' ' || e == '\t' || e == '\r')) {
                /* line-ending backslash: trim the newline and the blanks that follow */
                ps->p--;
                while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')) {
                    if (*ps->p == '\n')
                        ps->line++;
                    ps->p++;
                }
                continue;
            }
            /* TOML forbids other escapes; a regex author usually meant the backslash */
            bp_rules_warnf(&ps->diag, ps->line, "invalid escape \"\\%c\" in a basic string (write \\\\%c)", e, e);
            return 0;
        }
        if (bp_strbuf_append(out, &c, 1) != BP_OK)
            return -1;
        ps->p++;
    }
}

/* A bare or quoted key at ps->p into @key. 1 ok, 0 error (warned), -1 out of memory. */
static int parse_key(struct parser *ps, bp_strbuf *key)
{
    if (*ps->p == '"' || *ps->p == '\'')
        return parse_string(ps, key);
    const char *s = ps->p;
    while (ps->p < ps->end && ((*ps->p >= 'A' && *ps->p <= 'Z') || (*ps->p >= 'a' && *ps->p <= 'z') ||
                               (*ps->p >= '0' && *ps->p <= '9') || *ps->p == '_' || *ps->p == '-'))
        ps->p++;
    if (ps->p == s) {
        bp_rules_warnf(&ps->diag, ps->line, "%s", "expected a key");
        return 0;
    }
    bp_strbuf_clear(key);
    return bp_strbuf_append(key, s, (size_t)(ps->p - s)) == BP_OK ? 1 : -1;
}

/* Does @p regex turn on extended mode ((?x), (?x:...), (?xx)) anywhere?  Approximate on the
 * safe side: an x among the letters of any option setting counts, even after '-'. */
static int sets_extended(const char *regex)
{
    for (const char *r = strstr(regex, "(?"); r != NULL; r = strstr(r + 2, "(?")) {
        size_t n = strspn(r + 2, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-^");
        if (memchr(r + 2, 'x', n) != NULL && (r[2 + n] == ')' || r[2 + n] == ':'))
            return 1;
    }
    return 0;
}

/* Parse the whole text, calling @fn for each regex of a bounce label in [rules]. */
static bp_status parse(struct parser *ps, entry_fn fn, void *user)
{
    bp_strbuf key = {0}, str = {0}, table = {0};
    bp_status st = BP_OK;
    int rc;
    unsigned counts[sizeof(label_map) / sizeof(label_map[0])] = {0};
    while (ps->p < ps->end && st == BP_OK) {
        skip_space(ps, 1);
        if (ps->p >= ps->end)
            break;
        unsigned line = ps->line;
        if (*ps->p == '[') {
            const char *close = memchr(ps->p, ']', (size_t)(ps->end - ps->p));
            const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
            if (close == NULL || (nl != NULL && close > nl) || ps->p[1] == '[') {
                bp_rules_warnf(&ps->diag, line, "%s", "unsupported table header");
                skip_line(ps);
                continue;
            }
            bp_strbuf_clear(&table);
            const char *s = ps->p + 1;
            while (s < close && (*s == ' ' || *s == '\t'))
                s++;
            const char *e = close;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (bp_strbuf_append(&table, s, (size_t)(e - s)) != BP_OK) {
                st = BP_ERR_NOMEM;
                break;
            }
            ps->p = close + 1;
            skip_space(ps, 0);
            if (ps->p < ps->end && *ps->p != '\n')
                bp_rules_warnf(&ps->diag, line, "%s", "text after the table header");
            skip_line(ps);
            continue;
        }
        if ((rc = parse_key(ps, &key)) <= 0 || key.data == NULL || key.len == 0) {
            if (rc < 0)
                st = BP_ERR_NOMEM;
            else if (rc > 0)
                bp_rules_warnf(&ps->diag, line, "%s", "empty key");
            skip_line(ps);
            continue;
        }
        skip_space(ps, 0);
        if (ps->p >= ps->end || *ps->p != '=') {
            bp_rules_warnf(&ps->diag, line, "expected '=' after \"%s\"", key.data);
            skip_line(ps);
            continue;
        }
        ps->p++;
        skip_space(ps, 0);
        int in_rules = table.data != NULL && strcmp(table.data, "rules") == 0;
        const char *label = key.data;
        size_t li = 0;
        while (li < sizeof(label_map) / sizeof(label_map[0]) && strcmp(label_map[li].label, label) != 0)
            li++;
        const char *category = li < sizeof(label_map) / sizeof(label_map[0]) ? label_map[li].category : NULL;
        int wanted = in_rules && category != NULL;
        if (in_rules && !label_known(label))
            bp_rules_warnf(&ps->diag, line, "unknown KumoMTA label \"%s\": skipped", label);
        else if (in_rules && category == NULL)
            bp_rules_warnf(&ps->diag, line, "label \"%s\" is not a bounce category: skipped", label);
        /* the value: an array of strings, or one string */
        int array = ps->p < ps->end && *ps->p == '[';
        if (array)
            ps->p++;
        int ok = 1;
        for (;;) {
            skip_space(ps, array);
            if (ps->p >= ps->end) {
                if (array)
                    bp_rules_warnf(&ps->diag, line, "unterminated array for \"%s\"", label);
                ok = 0;
                break;
            }
            if (array && *ps->p == ']') {
                ps->p++;
                break;
            }
            if (*ps->p != '"' && *ps->p != '\'') {
                if (in_rules)
                    bp_rules_warnf(&ps->diag, ps->line, "\"%s\": only strings are supported here", label);
                ok = 0;
                break;
            }
            unsigned str_line = ps->line;
            rc = parse_string(ps, &str);
            if (rc < 0) {
                st = BP_ERR_NOMEM;
                break;
            }
            if (rc == 0) {
                ok = 0;
                break;
            }
            if (wanted) {
                if (str.len == 0 || strlen(str.data) != str.len) {
                    bp_rules_warnf(&ps->diag, str_line, "\"%s\": empty regex or NUL byte: skipped", label);
                } else if (strpbrk(str.data, "\r\n") != NULL && sets_extended(str.data)) {
                    /* in extended mode a line break ends a # comment: a rule is one line, and
                     * the break written \n would not end it (the rule would mean less) */
                    bp_rules_warnf(&ps->diag, str_line,
                                   "\"%s\": a regex in extended mode (?x) over several lines: skipped", label);
                } else {
                    st = fn(user, str_line, label_map[li].label, ++counts[li], str.data);
                    if (st != BP_OK)
                        break;
                }
            }
            if (!array)
                break;
            skip_space(ps, 1);
            if (ps->p < ps->end && *ps->p == ',')
                ps->p++;
            else if (ps->p < ps->end && *ps->p != ']') {
                bp_rules_warnf(&ps->diag, ps->line, "expected ',' or ']' in the array of \"%s\"", label);
                ok = 0;
                break;
            }
        }
        if (!ok && st == BP_OK) {
            /* resume after the broken value: at the next line that starts a key or table */
            skip_line(ps);
            while (ps->p < ps->end) {
                const char *s = ps->p;
                while (s < ps->end && (*s == ' ' || *s == '\t'))
                    s++;
                if (s < ps->end && (*s == '[' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
                    break;
                skip_line(ps);
            }
            continue;
        }
        skip_space(ps, 0);
        if (st == BP_OK && ps->p < ps->end && *ps->p != '\n')
            bp_rules_warnf(&ps->diag, ps->line, "%s", "text after the value");
        skip_line(ps);
    }
    bp_strbuf_free(&key);
    bp_strbuf_free(&str);
    bp_strbuf_free(&table);
    return st;
}

/* Inside \Q...\E PCRE2 takes every character as it is, backslashes too: a character the rule
 * syntax cannot hold there ('/' would close the regex, a line break end the line, '[' start
 * what the loader takes for a class) leaves the quote, is written escaped, and the quote
 * starts again.  @return the text for @p c, or NULL when it stays as it is. */
static const char *quoted_escape(char c)
{
    switch (c) {
    case '/': return "\\E\\/\\Q";
    case '\n': return "\\E\\n\\Q";
    case '\r': return "\\E\\r\\Q";
    case '[': return "\\E\\[\\Q";
    default: return NULL;
    }
}

/* The rule line for one regex: '/' escaped, line breaks as \n, \Q...\E kept literal. */
static bp_status rule_line(bp_strbuf *out, const char *label, unsigned n, const char *regex)
{
    bp_status st = bp_strbuf_putc(out, '/');
    int quoted = 0; /* inside \Q...\E */
    for (const char *r = regex; *r && st == BP_OK; r++) {
        if (quoted) {
            const char *esc = quoted_escape(*r);
            if (*r == '\\' && r[1] == 'E') {
                st = bp_strbuf_append(out, r, 2);
                r++;
                quoted = 0;
            } else if (esc != NULL) {
                st = bp_strbuf_puts(out, esc);
            } else {
                st = bp_strbuf_putc(out, *r);
            }
            continue;
        }
        if (*r == '\\' && r[1] == 'Q') {
            st = bp_strbuf_append(out, r, 2);
            r++;
            quoted = 1;
            continue;
        }
        if (*r == '\\' && r[1] == 'c' && r[2] >= 0x20 && r[2] < 0x7f) {
            /* \cX is one character (X upper-cased, bit 6 flipped), and X may be '/' or '[':
             * written \x{HH}, so that neither an escape nor the loader reads X on its own */
            unsigned x = (unsigned char)r[2];
            st = bp_strbuf_printf(out, "\\x{%02x}", (x >= 'a' && x <= 'z' ? x - 32u : x) ^ 0x40u);
            r += 2;
            continue;
        }
        if (*r == '\\' && r[1] == 'c' && (r[2] == '\n' || r[2] == '\r')) {
            /* PCRE2 refuses \c before anything but printable ASCII: keep it refusing (a line
             * break written \n here would make \c\ and n of it) */
            st = bp_strbuf_puts(out, "\\c\x7f");
            r += 2;
            continue;
        }
        if (*r == '\\' && (r[1] == '\n' || r[1] == '\r'))
            continue; /* an escaped line break is the line break: written as \n or \r next */
        if (*r == '\\' && r[1] != '\0') {
            st = bp_strbuf_append(out, r, 2);
            r++;
        } else if (*r == '/') {
            st = bp_strbuf_puts(out, "\\/");
        } else if (*r == '\n') {
            st = bp_strbuf_puts(out, "\\n");
        } else if (*r == '\r') {
            st = bp_strbuf_puts(out, "\\r");
        } else {
            st = bp_strbuf_putc(out, *r);
        }
    }
    if (st == BP_OK && quoted) /* a quote open to the end: close it, so that a last backslash
                                  cannot escape the closing '/' */
        st = bp_strbuf_puts(out, "\\E");
    if (st == BP_OK)
        st = bp_strbuf_printf(out, "/ %s id=kumo:%s:%u", bp_kumo_label_category(label), label, n);
    return st;
}

/* Collects the converted rules. */
struct collect_ctx {
    bp_kumo_rule *rules;
    size_t n, cap;
    bp_strbuf line;
};

static bp_status collect_entry(void *user, unsigned line, const char *label, unsigned n, const char *regex)
{
    struct collect_ctx *cc = user;
    bp_kumo_rule *grown = bp_grow(cc->rules, cc->n, &cc->cap, sizeof(*grown), 16);
    if (grown == NULL)
        return BP_ERR_NOMEM;
    cc->rules = grown;
    bp_strbuf_clear(&cc->line);
    bp_status st = rule_line(&cc->line, label, n, regex);
    char *text = st == BP_OK ? bp_strdup(cc->line.data) : NULL;
    char *copy = text != NULL ? bp_strdup(regex) : NULL;
    if (copy == NULL) {
        free(text);
        return BP_ERR_NOMEM;
    }
    cc->rules[cc->n++] = (bp_kumo_rule){line, label, text, copy};
    return BP_OK;
}

bp_status bp_kumo_rules(const char *name, const char *toml, size_t len, bp_kumo_rule **rules, size_t *n,
                        bp_rules_warn_fn warn, void *user, unsigned *n_errors)
{
    struct parser ps = {{name, warn, user, 0}, toml, toml + len, 1};
    struct collect_ctx cc = {NULL, 0, 0, {0}};
    bp_status st = parse(&ps, collect_entry, &cc);
    bp_strbuf_free(&cc.line);
    if (n_errors != NULL)
        *n_errors = ps.diag.errors;
    if (st != BP_OK) {
        bp_kumo_rules_free(cc.rules, cc.n);
        cc.rules = NULL;
        cc.n = 0;
    }
    *rules = cc.rules; /* ownership passes to the caller */
    *n = cc.n;
    return st;
}

void bp_kumo_rules_free(bp_kumo_rule *rules, size_t n)
{
    for (size_t i = 0; rules != NULL && i < n; i++) {
        free(rules[i].text);
        free(rules[i].regex);
    }
    free(rules);
}

bp_status bp_kumo_convert(const char *name, const char *toml, size_t len, char **out, bp_rules_warn_fn warn, void *user,
                          unsigned *n_errors)
{
    bp_kumo_rule *rules = NULL;
    size_t n = 0;
    bp_strbuf text = {0};
    *out = NULL;
    bp_status st = bp_kumo_rules(name, toml, len, &rules, &n, warn, user, n_errors);
    if (st == BP_OK)
        st = bp_strbuf_printf(&text,
                              "# Converted from the KumoMTA bounce classifier file %s by bouncepipe patterns "
                              "import-kumo.\n# Label mapping: bouncepipe-patterns(5).\n",
                              name);
    for (size_t i = 0; i < n && st == BP_OK; i++)
        st = bp_strbuf_printf(&text, "%s # KumoMTA %s, line %u\n", rules[i].text, rules[i].label, rules[i].line);
    bp_kumo_rules_free(rules, n);
    if (st != BP_OK) {
        bp_strbuf_free(&text);
        return st;
    }
    *out = text.data; /* ownership passes to the caller */
    return BP_OK;
}
