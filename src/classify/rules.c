/*
 * rules.c - load rule files and match diagnostics, first match wins, fast.
 *
 * Loading (bp_rules_load_*): one rule per line (format in rules.h and
 * docs/bouncepipe-patterns.5).  A bad line is skipped with "FILE:LINE: why" (Postfix
 * dict_pcre habit), never fatal: bad syntax, a category name that is neither one of ours nor
 * a custom one (bp_category_custom(): PowerMTA allows the operator's own), unknown option,
 * bad option value,
 * duplicate id, and a pattern PCRE2 will not compile (each is compiled once to validate
 * it, and the code kept).  The shipped database is not loaded here at run time: the build
 * loads it with this loader (bp_rulegen) and bp_rules_add_entries() takes the result, with
 * the prefilter literals and the compiled code, from a static table - no parsing and no
 * compiling at start-up, because PowerMTA starts one process per message.  Their code is
 * decoded at the first candidacy of any of them (compiled instead when this PCRE2 refuses
 * the serialization; bp_rules_validate() does it for all, for 'patterns check').
 * Each rule gets a prefilter at load time: the literals its regex requires
 * (rules_prefilter.c says which), so that matching skips every rule none of whose literals
 * occurs in the subject and a rule is compiled (lazily, on first candidacy) and run only
 * when it can match.  The prefilter is a necessary condition only: it never changes which
 * rule wins.  A rule that keeps being tried gets JIT-compiled after JIT_AFTER_TRIES tries;
 * compiling, decoding, JIT and the PCRE2 limits that bound every run are the wrapper's
 * (bouncepipe/regex.h).
 *
 * bp_rules_add_line(): one line as if read from FILE:LINE.  Reading rule files from disk
 * (bp_rules_load_file(), KumoMTA files included) is rules_file.c's, so that the build's
 * compiler of the shipped rules (bp_rulegen) links the loader without the file readers.
 * Ownership: a bp_rules copies every string it keeps, except that rules added from a
 * bp_rule_entry table borrow the table (and its serialized code); bp_rule pointers stay
 * valid until bp_rules_free().  A bp_rules is not thread-safe (it keeps scratch buffers and
 * lazily compiled code): one per thread.
 */
#include "bouncepipe/rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/regex.h"
#include "rules_prefilter.h"

#define JIT_AFTER_TRIES 16

struct rule {
    bp_rule pub;
    const char *const *literals; /* lower case, one per top-level alternative; n_literals == 0: no prefilter */
    const size_t *literal_len;
    unsigned n_literals;
    int borrowed;   /* pub's strings and the literals belong to a bp_rule_entry table */
    bp_regex *code; /* NULL until first candidacy */
    int compile_failed;
    bp_regex_lazy_jit jit;
};

struct bp_rules {
    struct rule *rules;
    size_t n, cap;
    bp_regex_matcher *matcher;
    bp_rules_prefilter prefilter; /* scratch: the subject being matched */
    /* Rules [code_first, code_first + code.n) came with their compiled code as one PCRE2
     * serialization (the build's table): decoded at the first candidacy of any of them. */
    bp_regex_table code;
    size_t code_first;
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

int bp_category_custom(const char *category)
{
    if (category == NULL || !(category[0] >= 'a' && category[0] <= 'z') || bp_category_valid(category))
        return 0;
    size_t n = strspn(category, "abcdefghijklmnopqrstuvwxyz0123456789-_");
    return n < 32 && category[n] == '\0';
}

bp_status bp_rules_new(bp_rules **out)
{
    bp_rules *r = bp_calloc(1, sizeof(*r));
    if (r == NULL)
        return BP_ERR_NOMEM;
    r->matcher = bp_regex_matcher_new();
    if (r->matcher == NULL) {
        bp_rules_free(r);
        return BP_ERR_NOMEM;
    }
    *out = r;
    return BP_OK;
}

static void rule_clear(struct rule *ru)
{
    bp_regex_free(ru->code);
    if (ru->borrowed)
        return;
    free((char *)ru->pub.id);
    free((char *)ru->pub.file);
    free((char *)ru->pub.pattern);
    free((char *)ru->pub.category);
    free((char *)ru->pub.blocklist);
    free((char *)ru->pub.scope_status);
    free((char *)ru->pub.scope_mta);
    free((char *)ru->pub.scope_stage);
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
    bp_regex_matcher_free(r->matcher);
    bp_rules_prefilter_free(&r->prefilter);
    bp_regex_table_clear(&r->code);
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

const bp_rule *bp_rules_find(const bp_rules *r, const char *id)
{
    if (r == NULL || id == NULL)
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->rules[i].pub.id == id)
            return &r->rules[i].pub;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->rules[i].pub.id, id) == 0)
            return &r->rules[i].pub;
    return NULL;
}

/* ---- loading ------------------------------------------------------------------------ */

void bp_rules_warnf(bp_rules_diag *d, unsigned line, const char *fmt, ...)
{
    char msg[1024], full[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s:%u: %s", d->name, line, msg);
    if (d->warn != NULL)
        d->warn(d->user, full);
    else
        fprintf(stderr, "bouncepipe: warning: %s\n", full);
    d->errors++;
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

/* @p s is not empty and every byte of it is an ASCII letter, a digit or one of @p others. */
static int only_word_bytes(const char *s, const char *others)
{
    const char *p = s;
    while (*p != '\0' && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                          strchr(others, *p) != NULL))
        p++;
    return p != s && *p == '\0';
}

static int valid_id(const char *s)
{
    return only_word_bytes(s, "-_.:");
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

/* Scope entries, comma-separated, the list maybe inverted by a leading '!'. */
static int valid_status_list(const char *s)
{
    if (*s == '!')
        s++;
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
    return only_word_bytes(s, "-.,");
}

/* SMTP commands, comma-separated, the list maybe inverted by a leading '!': CONNECT, EHLO
 * (HELO), MAIL, RCPT, DATA, or NONE (the report names no command).  @return the list in
 * canonical upper case (malloc'ed), or NULL when an entry is unknown or, *nomem set, out of
 * memory. */
static char *stage_list(const char *s, int *nomem)
{
    size_t len = strlen(s);
    char *out = bp_malloc(len + 2);
    if (out == NULL) {
        *nomem = 1;
        return NULL;
    }
    size_t o = 0;
    if (*s == '!')
        out[o++] = *s++;
    if (*s == '\0') {
        free(out);
        return NULL;
    }
    while (*s) {
        size_t n = strcspn(s, ",");
        bp_smtp_command c = bp_smtp_command_from_name(s, n);
        const char *name =
            c != BP_SMTP_NONE ? bp_smtp_command_name(c) : (n == 4 && strncasecmp(s, "none", 4) == 0 ? "NONE" : NULL);
        if (name == NULL) {
            free(out);
            return NULL;
        }
        if (o > 0 && out[o - 1] != '!')
            out[o++] = ',';
        memcpy(out + o, name, strlen(name)); /* never longer than the entry (HELO is EHLO) */
        o += strlen(name);
        s += n;
        if (*s == ',' && *++s == '\0') {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    return out;
}

/* Parse one line; returns BP_OK also for skipped lines. */
static bp_status load_line(bp_rules *r, bp_rules_diag *lc, unsigned lineno, char *line)
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
        bp_rules_warnf(lc, lineno, "rule does not start with /regex/: %.60s", s);
        return BP_OK;
    }
    /* find the closing slash: unescaped and outside a character class */
    char *p = s + 1;
    size_t line_len = strlen(s);
    while (*p && *p != '/') {
        if (*p == '\\' && p[1] != '\0')
            p += 2;
        else if (*p == '[') /* a class may hold '/' and POSIX names: [[:alpha:]/] */
            p = s + bp_rules_class_end(s, (size_t)(p - s), line_len);
        else
            p++;
    }
    if (*p != '/') {
        bp_rules_warnf(lc, lineno, "regex has no closing /");
        return BP_OK;
    }
    char *pattern = s + 1;
    *p++ = '\0';
    if (*pattern == '\0') {
        bp_rules_warnf(lc, lineno, "%s", "empty regex");
        return BP_OK;
    }
    while (*p == 'i' || *p == 'm' || *p == 's')
        p++; /* flags: matching is always case-insensitive */
    char *tok = strtok(p, " \t");
    if (tok == NULL) {
        bp_rules_warnf(lc, lineno, "%s", "rule has no category");
        return BP_OK;
    }
    if (!bp_category_valid(tok) && !bp_category_custom(tok)) {
        bp_rules_warnf(lc, lineno, "invalid category \"%s\" (a custom one is 1 to 31 of a-z, 0-9, - and _)", tok);
        return BP_OK;
    }
    const char *category = tok;
    const char *id = NULL, *status = NULL, *mta = NULL, *blocklist = NULL;
    char *stage = NULL; /* canonical copy; freed below unless the rule keeps it */
    int nomem = 0;
    while ((tok = strtok(NULL, " \t")) != NULL) {
        if (*tok == '#')
            break;
        char *eq = strchr(tok, '=');
        if (eq == NULL) {
            bp_rules_warnf(lc, lineno, "option \"%s\" is not key=value", tok);
            free(stage);
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
        else if (strcmp(tok, "stage") == 0 && stage == NULL && (stage = stage_list(v, &nomem)) != NULL)
            continue;
        else if (nomem) /* not the rule's fault: loading fails, no rule is lost */
            return BP_ERR_NOMEM;
        else if (strcmp(tok, "blocklist") == 0)
            blocklist = v;
        else if (strcmp(tok, "id") == 0 || strcmp(tok, "status") == 0 || strcmp(tok, "mta") == 0 ||
                 strcmp(tok, "stage") == 0) {
            bp_rules_warnf(lc, lineno, "invalid value \"%s\" for %s=", v, tok);
            free(stage);
            return BP_OK;
        } else {
            bp_rules_warnf(lc, lineno, "unknown option \"%s\"", tok);
            free(stage);
            return BP_OK;
        }
    }
    /* an id names one rule: events and explain point at it */
    for (size_t i = 0; id != NULL && i < r->n; i++)
        if (strcmp(r->rules[i].pub.id, id) == 0) {
            if (strcmp(r->rules[i].pub.file, lc->name) == 0)
                bp_rules_warnf(lc, lineno, "duplicate id \"%s\" (first at line %u)", id, r->rules[i].pub.line);
            else
                bp_rules_warnf(lc, lineno, "duplicate id \"%s\" (first in %s:%u)", id, r->rules[i].pub.file,
                               r->rules[i].pub.line);
            free(stage);
            return BP_OK;
        }
    /* compile once to validate: a pattern that does not compile is skipped here, not at match */
    char detail[400];
    bp_regex *code = bp_regex_compile(pattern, BP_REGEX_CASELESS, detail, sizeof(detail));
    if (code == NULL && errno == ENOMEM) { /* not the rule's fault: loading fails, no rule is lost */
        free(stage);
        return BP_ERR_NOMEM;
    }
    if (code == NULL) {
        bp_rules_warnf(lc, lineno, "bad regex: %s", detail);
        free(stage);
        return BP_OK;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct rule *nr = bp_realloc(r->rules, cap * sizeof(*nr));
        if (nr == NULL) {
            bp_regex_free(code);
            free(stage);
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
    ru->pub.id = bp_strdup(id);
    ru->pub.file = bp_strdup(lc->name);
    ru->pub.line = lineno;
    ru->pub.pattern = bp_strdup(pattern);
    ru->pub.category = bp_strdup(category);
    ru->pub.blocklist = blocklist != NULL ? bp_strdup(blocklist) : NULL;
    ru->pub.scope_status = status != NULL ? bp_strdup(status) : NULL;
    ru->pub.scope_mta = mta != NULL ? bp_strdup(mta) : NULL;
    ru->pub.scope_stage = stage; /* the rule owns it now */
    char **literals = NULL;
    size_t *literal_len = NULL;
    if (ru->pub.id == NULL || ru->pub.file == NULL || ru->pub.pattern == NULL || ru->pub.category == NULL ||
        bp_rules_literals(ru->pub.pattern, &literals, &literal_len, &ru->n_literals) != BP_OK) {
        rule_clear(ru);
        return BP_ERR_NOMEM;
    }
    ru->literals = (const char *const *)literals;
    ru->literal_len = literal_len;
    r->n++;
    return BP_OK;
}

bp_status bp_rules_load_text(bp_rules *r, const char *name, const char *text, size_t len, bp_rules_warn_fn warn,
                             void *user, unsigned *n_errors)
{
    bp_rules_diag lc = {name, warn, user, 0};
    char *line = bp_malloc(BP_MAX_RULE_LINE_BYTES + 1);
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
            bp_rules_warnf(&lc, lineno, "%s", "line too long");
        } else if (memchr(text + pos, '\0', llen) != NULL) {
            bp_rules_warnf(&lc, lineno, "%s", "line contains a NUL byte");
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
    bp_rules_diag lc = {file, warn, user, 0};
    size_t len = strlen(text);
    bp_status st = BP_OK;
    if (len > BP_MAX_RULE_LINE_BYTES) {
        bp_rules_warnf(&lc, line, "%s", "line too long");
    } else {
        char *copy = bp_strdup(text);
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
        struct rule *nr = bp_realloc(r->rules, (r->n + n) * sizeof(*nr));
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
    if (code != NULL && r->code.bytes == NULL) { /* one serialization per database: later ones compile */
        r->code = (bp_regex_table){code, n, NULL, 0};
        r->code_first = r->n - n;
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

/* Compile @ru now if it is not yet; 0 when its pattern does not compile (message in @msg). */
static int ensure_compiled(bp_rules *r, struct rule *ru, char *msg, size_t msg_size)
{
    if (ru->code != NULL)
        return 1;
    /* the build's code: decoding all of it copies bytes (39 k instructions) where compiling the
     * rules one diagnostic makes candidates parses their patterns (0.3-1.2 M instructions) */
    size_t i = (size_t)(ru - r->rules);
    if (i >= r->code_first && i - r->code_first < r->code.n) {
        ru->code = bp_regex_table_take(&r->code, i - r->code_first);
        if (ru->code != NULL)
            return 1;
    }
    if (ru->compile_failed) {
        snprintf(msg, msg_size, "%s", "does not compile");
        return 0;
    }
    ru->code = bp_regex_compile(ru->pub.pattern, BP_REGEX_CASELESS, msg, msg_size);
    if (ru->code != NULL)
        return 1;
    if (errno != ENOMEM) /* out of memory cut the effort budget: the next message tries again */
        ru->compile_failed = 1;
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
    bp_regex **codes = bp_calloc(r->n > 0 ? r->n : 1, sizeof(*codes));
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
    st = bp_regex_serialize(codes, r->n, bytes, len);
out:
    free((void *)codes);
    return st;
}

/* ---- matching ----------------------------------------------------------------------- */

/* Non-zero when @p cmd is in the stage list @p scope (as stage_list() wrote it). */
static int stage_fits(const char *scope, bp_smtp_command cmd)
{
    int invert = *scope == '!';
    const char *list = scope + invert;
    const char *name = cmd != BP_SMTP_NONE ? bp_smtp_command_name(cmd) : "NONE";
    size_t nlen = strlen(name);
    int hit = 0;
    while (*list && !hit) {
        size_t n = strcspn(list, ",");
        hit = n == nlen && strncmp(list, name, n) == 0;
        list += n;
        if (*list == ',')
            list++;
    }
    return hit != invert;
}

static int scope_fits(const struct rule *ru, const bp_rule_subject *s)
{
    if (ru->pub.scope_stage != NULL && !stage_fits(ru->pub.scope_stage, s->command))
        return 0;
    if (ru->pub.scope_status != NULL) {
        int ok = 0;
        int invert = ru->pub.scope_status[0] == '!';
        const char *list = ru->pub.scope_status + invert;
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
        if (ok == invert)
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

/* Run one rule; 1 and the span on a match, 0 otherwise (limits hit count as no match). */
static int run_rule(bp_rules *r, struct rule *ru, const bp_rule_subject *s, size_t *start, size_t *end)
{
    char msg[300];
    if (!ensure_compiled(r, ru, msg, sizeof(msg)))
        return 0;
    if (bp_regex_lazy_jit_due(&ru->jit, JIT_AFTER_TRIES))
        bp_regex_jit(ru->code);
    return bp_regex_search(r->matcher, ru->code, s->text, s->len, 0, start, end);
}

/* Matches in load order; stops after the first when @first_only. */
static size_t match_rules(bp_rules *r, const bp_rule_subject *s, bp_rule_match *out, size_t max, int first_only)
{
    if (s->text == NULL)
        return 0;
    bp_effort_stage("rules");
    int prefilter = bp_rules_prefilter_prepare(&r->prefilter, s->text, s->len);
    size_t found = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct rule *ru = &r->rules[i];
        if (!scope_fits(ru, s))
            continue;
        if (prefilter && ru->n_literals > 0 &&
            !bp_rules_prefilter_passes(&r->prefilter, ru->literals, ru->literal_len, ru->n_literals))
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

int bp_rules_group(bp_rules *r, const bp_rule *rule, const char *text, size_t len, const char *group, size_t *gs,
                   size_t *ge)
{
    if (rule == NULL || text == NULL || r->n == 0)
        return 0;
    /* pub is the first member of struct rule: a rule of this database, or none */
    const struct rule *ru = (const struct rule *)(const void *)rule;
    if (ru < r->rules || ru >= r->rules + r->n)
        return 0;
    bp_rule_subject s = {text, len, NULL, NULL, NULL, BP_SMTP_NONE};
    size_t a = 0, b = 0;
    struct rule *own = &r->rules[ru - r->rules];
    return run_rule(r, own, &s, &a, &b) && bp_regex_group(r->matcher, own->code, group, gs, ge);
}
