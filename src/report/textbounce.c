/*
 * textbounce.c - non-standard bounces recognised from their text.
 *
 * bp_textbounce_parse(): takes the explanation text of a message (explanation.c: the first
 * text part outside any attached original, HTML reduced to text, undeclared charsets decoded
 * to UTF-8, cut where a quoted original starts), and reads it with the first family of
 * bp_text_families[] (text_families.h, textbounce_families.c) whose signature matches:
 * its error section, its recipient lines, its diagnostics.  A family that finds nobody, or
 * no family at all for a message that comes from a mailer daemon or whose Subject says it
 * is a bounce, falls back to the generic scan: one block per distinct address in the
 * section, the lines around it as the diagnostic.  Recipients named in X-Failed-Recipients
 * (Exim, Google) restrict the generic scan and stand in when the text names nobody.
 *
 * Never taken as failed recipients: the report's own From and To, the original's From, the
 * envelope sender (Exim's "A message sent by <x>" in a bounce to an errors address, the
 * Return-Path of the original, attached or quoted after the explanation), and any address on
 * a line quoted from the original (its header lines and their continuations, "MAIL FROM",
 * "(expanded from ...)", "please contact ...").  A recipient's diagnostic that holds an SMTP
 * transcript keeps only the reply of the recipient's own session (reading.h).
 *
 * Every block is failed, or delayed when the section says delivery will be retried (or the
 * family says so); the SMTP code and enhanced status come from the diagnostic, or from the
 * family pattern's "code" and "status" groups.
 *
 * Patterns are compiled by the build (bp_text_family_code, decoded at first use; compiled
 * here when this PCRE2 refuses it) and kept for the life of the process: a family's
 * signature patterns are taken when it is first tried, its other patterns when its signature
 * first matches, JIT after JIT_AFTER_TRIES tries (pipe mode reads one message per process).
 * A pattern that does not compile disables its family (a table bug, caught by the tests).
 * Compiling, decoding, JIT and matching under the PCRE2 limits are the wrapper's
 * (bouncepipe/regex.h).
 *
 * Every scan is linear in the text (or bounded per address by the windows below), and the
 * whole parse runs under the message's effort budget (effort.h): the wrapper charges every
 * search and the generic scan checks it in its loop.  When it runs out before the blocks are
 * made, the message is left unrecognised (kind BP_REPORT_NONE): pipe mode then quarantines
 * it whole, and explain shows where the budget ran out.
 *
 * Ownership: every string put into the report belongs to the arena passed in.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/address.h"
#include "bouncepipe/alloc.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/regex.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "explanation.h"
#include "reading.h"
#include "report_internal.h"
#include "text_families.h"

static const char *const subject_cues[] = {"undeliver",          "delivery status",  "delivery failure",
                                           "returned mail",      "failure notice",   "delivery notification",
                                           "mail delivery",      "non remis",        "unzustellbar",
                                           "nondeliver",         "not delivered",    "could not be delivered",
                                           "mail system error",  "delivery failed",  "rejected",
                                           "returned to sender", "delivery problem", NULL};

/* Text that says the server keeps trying: the block is a delay, not a failure. */
static const char *const delay_cues[] = {"will continue to try",
                                         "will keep trying",
                                         "will keep on trying",
                                         "will be retried",
                                         "will retry",
                                         "still trying",
                                         "has not yet been delivered",
                                         "have not yet been delivered",
                                         "is delayed",
                                         "has been delayed",
                                         "delivery delayed",
                                         "this is a warning message only",
                                         "will try again",
                                         "this is a warning only",
                                         "transient non-fatal errors",
                                         "delivery is delayed to these recipients",
                                         "keine erneute",
                                         NULL};

/* Words before an address on its line that make it somebody else than a failed recipient. */
static const char *const not_recipient_cues[] = {"expanded from", "generated from", "contact",  "mail from",
                                                 "envelope-from", "sender:",        "mailto:",  "postmaster at",
                                                 "sent by",       "originally to",  "reply-to", NULL};

/* ---- compiled patterns ---------------------------------------------------------------- */

/* Signature patterns (BP_TEXT_PAT_FROM .. BP_TEXT_PAT_BODY) come first: they are taken for
 * every family tried; the rest only for a family whose signature matched. */
enum { SIGNATURE_PATTERNS = BP_TEXT_PAT_START };

/* A pipe-mode process reads one message: JIT-compiling every pattern on first use cost it
 * 16 M instructions (more than the rest of the process), so a family is JIT-compiled only
 * once a long-running process has tried it this often: at its second message, since a
 * family tried twice is tried on most texts and its interpreted searches through a whole
 * text soon cost more than the compiling (docs/performance.md: 3 -> 2, fewer instructions
 * over the corpus once and x6; a pipe process tries each family once). */
#define JIT_AFTER_TRIES 2

typedef struct compiled_family {
    int stage;  /* patterns compiled so far: 0, SIGNATURE_PATTERNS or BP_TEXT_PAT_N */
    int broken; /* a pattern did not compile: the family is skipped */
    bp_regex_lazy_jit jit;
    bp_regex *pat[BP_TEXT_PAT_N];
} compiled_family;

static compiled_family *compiled; /* one per table entry, allocated on first use */
static bp_regex_matcher *matcher; /* the limits, and the last match (one thread) */

/* The build's compiled patterns (bp_text_family_code), decoded at the first use of any:
 * copying them costs a fraction of compiling the signatures of the families tried before the
 * one that matches (0.3-1.5 M instructions, in pipe mode once per message).  Each family
 * takes its patterns out; a PCRE2 of another version refuses them, and they are compiled. */
static bp_regex_table build_code;

static int engine_ready(void)
{
    if (compiled != NULL)
        return 1;
    size_t n = bp_text_family_count();
    compiled = bp_calloc(n > 0 ? n : 1, sizeof(*compiled));
    matcher = bp_regex_matcher_new();
    if (compiled == NULL || matcher == NULL) {
        free(compiled);
        compiled = NULL;
        bp_regex_matcher_free(matcher);
        matcher = NULL;
        return 0;
    }
    build_code = (bp_regex_table){bp_text_family_code, bp_text_pattern_position(n, 0), NULL, 0};
    return 1;
}

/* Family @p i with its signature patterns compiled (@p all == 0: counts as one try) or all
 * of them; NULL when one of them does not compile. */
static const compiled_family *family_compiled(size_t i, int all)
{
    compiled_family *cf = &compiled[i];
    int want = all ? BP_TEXT_PAT_N : SIGNATURE_PATTERNS;
    for (; !cf->broken && cf->stage < want; cf->stage++) {
        int k = cf->stage;
        const char *src = bp_text_family_pattern(&bp_text_families[i], k);
        if (src == NULL)
            continue;
        cf->pat[k] = bp_regex_table_take(&build_code, bp_text_pattern_position(i, k));
        if (cf->pat[k] == NULL)
            cf->pat[k] = bp_regex_compile(src, BP_TEXT_PATTERN_FLAGS, NULL, 0);
        if (cf->pat[k] == NULL && errno == ENOMEM)
            return NULL; /* out of memory cut the effort budget: the next message tries again */
        if (cf->pat[k] == NULL)
            cf->broken = 1;
        else if (cf->jit.done)
            bp_regex_jit(cf->pat[k]);
    }
    if (!all && !cf->broken && bp_regex_lazy_jit_due(&cf->jit, JIT_AFTER_TRIES))
        for (int k = 0; k < cf->stage; k++)
            bp_regex_jit(cf->pat[k]);
    return cf->broken ? NULL : cf;
}

/* Search @p code in s[from, len). @return non-zero and the match span in ms, me. */
static int re_search(const bp_regex *code, const char *s, size_t len, size_t from, size_t *ms, size_t *me)
{
    return bp_regex_search(matcher, code, s, len, from, ms, me);
}

/* The span of named group @p name of the last match, or 0 when it did not take part. */
static int re_group(const bp_regex *code, const char *name, size_t *gs, size_t *ge)
{
    return bp_regex_group(matcher, code, name, gs, ge);
}

/* ---- the explanation text ------------------------------------------------------------- */

static int is_bounce_like(const bp_report *r, const bp_part *root, bp_arena *arena, const char *text, size_t len)
{
    if (bp_report_from_daemon(root))
        return 1;
    /* a bounce's structure in any language: X-Failed-Recipients, or the returned original
     * attached with an enhanced status in the text (autoreply.c lets these through) */
    char status[BP_STATUS_BUF];
    if (bp_part_header(root, "X-Failed-Recipients") != NULL ||
        (bp_status_code_find(text, len, status) && bp_report_find_original(root, arena) != NULL))
        return 1;
    for (int i = 0; r->subject != NULL && subject_cues[i] != NULL; i++)
        if (bp_strcasestr(r->subject, subject_cues[i]) != NULL)
            return 1;
    return 0;
}

/* ---- lines ------------------------------------------------------------------------------ */

static size_t line_end(const char *text, size_t len, size_t at)
{
    while (at < len && text[at] != '\n')
        at++;
    return at;
}

/* How far back the cue test looks: it bounds the work per address (a hostile text can hold
 * a megabyte on one line) and is wider than any real shape: "(expanded from <...>)" or
 * "please contact <...>" sit just before the address.  Lines quoted from the original are
 * bp_explanation_quoted_line()'s. */
static const size_t quote_cue_window = 160;

/* Non-zero when words just before the address at @p at on its line (which starts at @p ls)
 * make it somebody other than a failed recipient. */
static int quoted_by_cue(const char *text, size_t ls, size_t at)
{
    size_t from = at - ls > quote_cue_window ? at - quote_cue_window : ls;
    for (int k = 0; not_recipient_cues[k] != NULL; k++)
        if (bp_memcasemem(text + from, at - from, not_recipient_cues[k], strlen(not_recipient_cues[k])) != NULL)
            return 1;
    return 0;
}

/* Line starts for increasing offsets in linear time overall. */
typedef struct line_tracker {
    size_t pos; /* offsets below were scanned */
    size_t ls;  /* start of the line that holds pos */
} line_tracker;

static size_t track_line(const char *text, line_tracker *t, size_t at)
{
    for (size_t i = t->pos; i < at; i++)
        if (text[i] == '\n')
            t->ls = i + 1;
    if (at > t->pos)
        t->pos = at;
    return t->ls;
}

static int has_code(const char *s, size_t len)
{
    char code[4];
    char status[BP_STATUS_BUF];
    return bp_smtp_code_find(s, len, code) || bp_status_code_find(s, len, status);
}

/* ---- blocks ------------------------------------------------------------------------------ */

typedef struct candidate {
    const char *addr;
    size_t line;   /* start of the recipient's line */
    size_t ds, de; /* "diag" group, when ds < de */
    char status[BP_STATUS_BUF];
    char code[4];
} candidate;

typedef struct scan {
    bp_arena *arena;
    const char *text;
    size_t sec_start, sec_end;
    const char *const *excluded;
    size_t n_excluded;
    const char *const *failed; /* X-Failed-Recipients, or NULL */
    size_t n_failed;
    candidate *cand; /* grown in the arena as recipients are found, up to BP_MAX_RECIPIENTS */
    size_t n_cand, cap_cand;
    int nomem; /* growing cand failed: the parse reports BP_ERR_NOMEM */
} scan;

static int in_list(const char *addr, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] != NULL && strcasecmp(addr, list[i]) == 0)
            return 1;
    return 0;
}

static candidate *add_candidate(scan *sc, const char *addr, size_t line)
{
    if (addr == NULL || in_list(addr, sc->excluded, sc->n_excluded))
        return NULL;
    for (size_t i = 0; i < sc->n_cand; i++)
        if (strcasecmp(sc->cand[i].addr, addr) == 0)
            return NULL;
    if (sc->n_cand >= BP_MAX_RECIPIENTS)
        return NULL;
    if (sc->n_cand == sc->cap_cand) {
        /* most texts name one recipient: room for BP_MAX_RECIPIENTS up front cost 64 kB of
         * zeroing per message */
        size_t cap = sc->cap_cand > 0 ? sc->cap_cand * 2 : 8;
        if (cap > BP_MAX_RECIPIENTS)
            cap = BP_MAX_RECIPIENTS;
        candidate *grown = bp_arena_alloc(sc->arena, cap * sizeof(*grown));
        if (grown == NULL) {
            sc->nomem = 1;
            return NULL;
        }
        if (sc->n_cand > 0)
            memcpy(grown, sc->cand, sc->n_cand * sizeof(*grown));
        sc->cand = grown;
        sc->cap_cand = cap;
    }
    candidate *c = &sc->cand[sc->n_cand++];
    memset(c, 0, sizeof(*c));
    c->addr = addr;
    c->line = line;
    return c;
}

/* Recipients by the family's pattern. */
static void scan_family(scan *sc, const compiled_family *cf)
{
    const bp_regex *re = cf->pat[BP_TEXT_PAT_RCPT];
    line_tracker lt = {sc->sec_start, bp_explanation_line_start(sc->text, sc->sec_start)};
    size_t pos = sc->sec_start, ms = 0, me = 0;
    while (pos < sc->sec_end && re_search(re, sc->text, sc->sec_end, pos, &ms, &me)) {
        pos = me > ms ? me : ms + 1;
        size_t gs = 0, ge = 0;
        if (!re_group(re, "rcpt", &gs, &ge))
            continue;
        char *addr = bp_address_find(sc->arena, sc->text + gs, ge - gs, NULL);
        candidate *c = add_candidate(sc, addr, track_line(sc->text, &lt, ms));
        if (c == NULL)
            continue;
        size_t ds = 0, de = 0;
        if (re_group(re, "diag", &ds, &de)) {
            c->ds = ds;
            c->de = de;
        }
        size_t ss = 0, se = 0;
        if (re_group(re, "status", &ss, &se)) {
            char *st = bp_arena_strndup(sc->arena, sc->text + ss, se - ss);
            if (st == NULL || !bp_status_code_parse(st, c->status))
                c->status[0] = '\0';
        }
        if (re_group(re, "code", &ss, &se) && se - ss == 3)
            memcpy(c->code, sc->text + ss, 3);
    }
}

/* Recipients as any address in the section that is not quoted from the original. */
static void scan_generic(scan *sc)
{
    line_tracker lt = {sc->sec_start, bp_explanation_line_start(sc->text, sc->sec_start)};
    size_t pos = sc->sec_start;
    size_t checked_line = (size_t)-1; /* the line whose quotedness is known */
    int line_is_quoted = 0;
    while (pos < sc->sec_end && bp_effort_left()) {
        size_t end = 0;
        char *addr = bp_address_find(sc->arena, sc->text + pos, sc->sec_end - pos, &end);
        if (addr == NULL)
            break;
        size_t at = pos + end; /* just past the address */
        size_t line = track_line(sc->text, &lt, at > 0 ? at - 1 : 0);
        pos = at;
        if (line != checked_line) {
            checked_line = line;
            line_is_quoted = bp_explanation_quoted_line(sc->text, sc->sec_end, line);
        }
        if (line_is_quoted) {
            pos = line_end(sc->text, sc->sec_end, pos); /* nothing else on it counts */
            continue;
        }
        if (quoted_by_cue(sc->text, line, at - strlen(addr) > line ? at - strlen(addr) : line))
            continue;
        if (sc->failed != NULL && !in_list(addr, sc->failed, sc->n_failed))
            continue;
        if (add_candidate(sc, addr, line) != NULL) /* one recipient per line: the rest are quotes */
            pos = line_end(sc->text, sc->sec_end, pos);
    }
}

/* The end of the paragraph that starts at @p from, not beyond @p limit. */
static size_t paragraph_end(const char *text, size_t limit, size_t from)
{
    size_t e = from;
    int seen_text = 0;
    while (e < limit) {
        size_t le = line_end(text, limit, e);
        if (bp_explanation_line_blank(text, limit, e)) {
            if (seen_text)
                return e;
        } else {
            seen_text = 1;
        }
        e = le < limit ? le + 1 : limit;
    }
    return limit;
}

static void diagnostic_span(const scan *sc, const bp_text_family *fam, size_t i, size_t *ds, size_t *de)
{
    const candidate *c = &sc->cand[i];
    size_t limit = sc->sec_end;
    /* the next recipient's line bounds this one's text (candidates are in text order) */
    for (size_t k = 0; k < sc->n_cand; k++)
        if (sc->cand[k].line > c->line && sc->cand[k].line < limit)
            limit = sc->cand[k].line;
    bp_text_diag_mode mode = fam != NULL ? fam->diag_mode : BP_TEXT_DIAG_PARAGRAPH;
    *ds = c->line;
    switch (mode) {
    case BP_TEXT_DIAG_GROUP:
        if (c->de > c->ds) {
            *ds = c->ds;
            *de = c->de;
            return;
        }
        *de = line_end(sc->text, limit, c->line); /* no group: the recipient's line */
        return;
    case BP_TEXT_DIAG_SECTION:
        *ds = sc->sec_start;
        *de = sc->sec_end;
        return;
    case BP_TEXT_DIAG_TO_NEXT: *de = limit; return;
    case BP_TEXT_DIAG_PARAGRAPH: break;
    }
    size_t e = paragraph_end(sc->text, limit, c->line);
    /* the remote server's words often follow in the next paragraphs */
    for (int more = 0; more < 3 && e < limit && !has_code(sc->text + c->line, e - c->line); more++)
        e = paragraph_end(sc->text, limit, e);
    *de = e;
}

/* @p folded: the section folded to lower case (bp_explanation_fold()), within the text whose
 * byte pairs are @p pairs. */
static int says_delayed(const bp_byte_pairs *pairs, const char *folded, size_t len)
{
    for (int i = 0; delay_cues[i] != NULL; i++)
        if (bp_explanation_find(pairs, folded, len, delay_cues[i]) != NULL)
            return 1;
    return 0;
}

/* The addresses of an X-Failed-Recipients header (comma separated), arena-owned. */
static const char **failed_recipients(bp_arena *arena, const bp_part *root, size_t *n)
{
    *n = 0;
    const char *v = bp_part_header(root, "X-Failed-Recipients");
    if (v == NULL)
        return NULL;
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    const char **list = bp_arena_alloc(arena, cap * sizeof(*list));
    if (list == NULL)
        return NULL;
    const char *p = v;
    while (*p && *n < cap) {
        size_t span = strcspn(p, ",");
        size_t end = 0;
        char *a = bp_address_find(arena, p, span, &end);
        if (a != NULL)
            list[(*n)++] = a;
        p += span;
        if (*p == ',')
            p++;
    }
    return *n > 0 ? list : NULL;
}

static int signature_matches(const compiled_family *cf, const bp_report *r, const bp_part *root, const char *text,
                             size_t len)
{
    if (cf->pat[BP_TEXT_PAT_FROM] == NULL && cf->pat[BP_TEXT_PAT_SUBJECT] == NULL && cf->pat[BP_TEXT_PAT_BODY] == NULL)
        return 0;
    const char *from = bp_part_header(root, "From");
    if (cf->pat[BP_TEXT_PAT_FROM] != NULL &&
        (from == NULL || !re_search(cf->pat[BP_TEXT_PAT_FROM], from, strlen(from), 0, NULL, NULL)))
        return 0;
    if (cf->pat[BP_TEXT_PAT_SUBJECT] != NULL &&
        (r->subject == NULL || !re_search(cf->pat[BP_TEXT_PAT_SUBJECT], r->subject, strlen(r->subject), 0, NULL, NULL)))
        return 0;
    if (cf->pat[BP_TEXT_PAT_BODY] != NULL && !re_search(cf->pat[BP_TEXT_PAT_BODY], text, len, 0, NULL, NULL))
        return 0;
    return 1;
}

/* The family's error section: after its start line, up to its end line or @p cut (where
 * the quoted original begins), whichever comes first.  When the start line lies beyond the
 * cut (a marker of the original appeared inside the report itself), the family's own start
 * is trusted and the section may run to the end of the text. */
static void family_section(const compiled_family *cf, const char *text, size_t len, size_t cut, size_t *ss, size_t *se)
{
    size_t ms = 0, me = 0;
    *ss = 0;
    if (cf->pat[BP_TEXT_PAT_START] != NULL && re_search(cf->pat[BP_TEXT_PAT_START], text, len, 0, &ms, &me)) {
        size_t le = line_end(text, len, me > ms ? me - 1 : ms);
        *ss = le < len ? le + 1 : len;
    }
    *se = cut > *ss ? cut : len;
    if (cf->pat[BP_TEXT_PAT_END] != NULL && re_search(cf->pat[BP_TEXT_PAT_END], text, *se, *ss, &ms, &me)) {
        size_t ls = bp_explanation_line_start(text, ms);
        *se = ls > *ss ? ls : ms;
    }
}

/* Text after the family's shared-diagnostic marker: to the next blank line after it. */
static int shared_diagnostic(const compiled_family *cf, const char *text, size_t ss, size_t se, size_t *ds, size_t *de)
{
    size_t ms = 0, me = 0;
    if (cf == NULL || cf->pat[BP_TEXT_PAT_SHARED] == NULL ||
        !re_search(cf->pat[BP_TEXT_PAT_SHARED], text, se, ss, &ms, &me))
        return 0;
    size_t from = me;
    while (from < se && (text[from] == '\n' || text[from] == ' ' || text[from] == '\t' || text[from] == '\r'))
        from++;
    *ds = from;
    *de = paragraph_end(text, se, from);
    return *de > *ds;
}

/* A failed delivery's diagnostic may quote the server's earlier "250 2.1.5 Ok" (a session
 * transcript); the failure is the first 4xx/5xx reply after it. */
static void prefer_failure_codes(bp_rcpt_block *b, bp_arena *arena)
{
    if (b->diagnostic == NULL || b->action != BP_ACTION_FAILED)
        return;
    int status_ok = b->status == NULL || b->status[0] != '2';
    int code_ok = b->smtp_code == NULL || b->smtp_code[0] != '2';
    if (status_ok && code_ok)
        return;
    const char *d = b->diagnostic;
    size_t len = strlen(d);
    for (size_t i = 0; i < len; i++) {
        if ((d[i] != '4' && d[i] != '5') || (i > 0 && d[i - 1] >= '0' && d[i - 1] <= '9'))
            continue;
        char status[BP_STATUS_BUF];
        char code[4];
        if (!status_ok && bp_status_code_parse(d + i, status)) {
            b->status = bp_arena_strdup(arena, status);
            status_ok = 1;
        }
        if (!code_ok && bp_smtp_code_find(d + i, 4, code) && code[0] == d[i]) {
            b->smtp_code = bp_arena_strdup(arena, code);
            code_ok = 1;
        }
        if (status_ok && code_ok)
            return;
    }
    if (!status_ok)
        b->status = NULL;
    if (!code_ok)
        b->smtp_code = NULL;
}

/* The family's default category (text_families.h) into block @p b. */
static void set_family_default(bp_rcpt_block *b, const bp_text_family *fam)
{
    if (fam == NULL)
        return;
    b->default_category = fam->default_category;
    b->default_unless_rcpt = fam->default_unless_rcpt;
}

/* The Return-Path of an original quoted after the explanation (qmail's "--- Below this line is
 * a copy of the message."): its first "Return-Path: <x>" line within the first header-sized
 * stretch after @p cut.  @return the address (arena), or NULL. */
static const char *quoted_return_path(bp_arena *arena, const char *text, const char *folded, const bp_byte_pairs *pairs,
                                      size_t len, size_t cut)
{
    if (cut >= len)
        return NULL;
    size_t n = len - cut < BP_MAX_HEADER_BYTES ? len - cut : BP_MAX_HEADER_BYTES;
    const char *m = bp_explanation_find(pairs, folded + cut, n, "\nreturn-path:");
    if (m == NULL)
        return NULL;
    size_t at = (size_t)(m - folded) + 13, e = at;
    while (e < len && text[e] != '\n')
        e++;
    char *line = bp_arena_strndup(arena, text + at, e - at);
    return line != NULL ? bp_address_normalise(arena, line) : NULL;
}

/* Non-zero when the line at @p t (to @p le) is part of an SMTP transcript. */
static int transcript_line(const char *text, size_t t, size_t le)
{
    while (t < le && (text[t] == ' ' || text[t] == '\t'))
        t++;
    return (le - t >= 4 && (strncmp(text + t, ">>> ", 4) == 0 || strncmp(text + t, "<<< ", 4) == 0)) ||
           bp_memcasemem(text + t, le - t, "while talking to ", 17) != NULL;
}

/*
 * Text [@p s, @p e) of a recipient's diagnostic with its SMTP transcript read as sessions
 * (issue 13 item 10): the text before the transcript, then the reply of the recipient's own
 * session (bp_transcript_find()), never the lines of the next session.  When the transcript
 * has several sessions and none is the recipient's, only the text before it.  Without a
 * transcript, the text as it is.  @return an arena string (NULL only when out of memory).
 */
static const char *session_cut(bp_arena *arena, const char *text, size_t s, size_t e, const char *rcpt)
{
    size_t first = e;
    for (size_t p = s; p < e;) {
        const char *nl = memchr(text + p, '\n', e - p);
        size_t le = nl != NULL ? (size_t)(nl - text) : e;
        if (transcript_line(text, p, le)) {
            first = p;
            break;
        }
        p = le + 1;
    }
    if (first >= e)
        return bp_arena_strndup(arena, text + s, e - s);
    bp_transcript_reply r;
    int sessions = 0;
    if (bp_transcript_find(text + first, e - first, rcpt, NULL, &r, &sessions)) {
        const char *reply = bp_transcript_reply_text(arena, text + first, &r);
        return bp_arena_printf(arena, "%.*s %s", (int)(first - s), text + s, reply != NULL ? reply : "");
    }
    if (sessions > 1)
        return bp_arena_strndup(arena, text + s, first - s);
    return bp_arena_strndup(arena, text + s, e - s);
}

/* Text taken into a diagnostic before cleaning: room for white space that cleaning folds. */
static const size_t diag_span_cap = 8 * BP_MAX_DIAGNOSTIC_BYTES;

bp_status bp_textbounce_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena,
                              bp_report *out)
{
    (void)opts;
    const bp_part *root = msg->root;
    const bp_part *part = bp_explanation_part(root);
    if (part == NULL)
        return BP_OK;
    if (!engine_ready()) /* no patterns to try is no answer: not "not a text bounce" */
        return BP_ERR_NOMEM;
    bp_effort_stage("text-bounce scan");
    bp_status st = bp_explanation_read(out, arena, part); /* read already if an auto-reply was looked for */
    if (st != BP_OK)
        return st;
    const char *text = out->explanation;
    const char *folded = out->explanation_folded;
    size_t len = out->explanation_full_len;
    size_t cut = out->explanation_len;

    const bp_text_family *fam = NULL;
    const compiled_family *cf = NULL;
    int bounce_like = is_bounce_like(out, root, arena, text, cut);
    size_t n_fam = bp_text_family_count();
    int has_original = -1; /* not looked for yet */
    for (size_t i = 0; i < n_fam && fam == NULL; i++) {
        const bp_text_family *f = &bp_text_families[i];
        if (!bounce_like && !f->self_evident && f->from == NULL && f->subject == NULL)
            continue;
        if (f->rcpt_from_original && has_original < 0)
            has_original = bp_report_find_original(root, arena) != NULL;
        if (f->rcpt_from_original && !has_original) /* its notice is about a returned post */
            continue;
        const compiled_family *c = family_compiled(i, 0);
        if (c != NULL && signature_matches(c, out, root, text, len) && (c = family_compiled(i, 1)) != NULL) {
            fam = f;
            cf = c;
        }
    }
    if (fam == NULL && !bounce_like)
        return BP_OK;

    bp_report_note_original(out, root, arena);
    /* the parties who are not recipients: the report's own From and To, the original's From,
     * and the envelope sender (Exim's "A message sent by <x>", the original's Return-Path) */
    const char *ex[5];
    ex[0] = bp_address_normalise(arena, bp_part_header(root, "From"));
    ex[1] = bp_address_normalise(arena, bp_part_header(root, "To"));
    ex[2] = out->original != NULL ? bp_address_normalise(arena, bp_part_header(out->original, "From")) : NULL;
    ex[3] = out->original != NULL ? bp_address_normalise(arena, bp_part_header(out->original, "Return-Path"))
                                  : quoted_return_path(arena, text, folded, out->explanation_pairs, len, cut);
    ex[4] = bp_report_exim_sender(arena, text, cut, out->explanation_pairs);
    out->envelope_sender = ex[4] != NULL ? ex[4] : ex[3];

    scan sc = {0};
    sc.arena = arena;
    sc.text = text;
    sc.excluded = ex;
    sc.n_excluded = sizeof(ex) / sizeof(ex[0]);
    const char **failed = failed_recipients(arena, root, &sc.n_failed);
    sc.sec_end = cut;
    /* a family whose notice names its recipient only in the returned original (a list
     * server's): the original's one recipient, else X-Failed-Recipients, never the prose */
    const char *orig_rcpt = bp_report_original_recipient(out->original, arena);
    if (fam != NULL && fam->rcpt_from_original && orig_rcpt != NULL)
        add_candidate(&sc, orig_rcpt, 0);
    if (cf != NULL) {
        family_section(cf, text, len, cut, &sc.sec_start, &sc.sec_end);
        if (cf->pat[BP_TEXT_PAT_RCPT] != NULL && sc.n_cand == 0)
            scan_family(&sc, cf);
    }
    if (sc.n_cand == 0 && (fam == NULL || !fam->rcpt_from_original)) {
        sc.failed = failed;
        scan_generic(&sc);
    }
    for (size_t i = 0; sc.n_cand == 0 && i < sc.n_failed; i++)
        add_candidate(&sc, failed[i], sc.sec_start);
    if (sc.nomem)
        return BP_ERR_NOMEM;
    if (!bp_effort_left()) { /* the rest was never read: unrecognised, never half a report */
        out->original = NULL;
        out->original_message_id = NULL;
        out->original_to = NULL;
        return BP_OK;
    }

    size_t sh_s = 0, sh_e = 0;
    /* the shared diagnostic may precede the recipient list ("Could not be delivered because
     * of ... The following recipients were affected:"): look in the whole explanation */
    int has_shared = shared_diagnostic(cf, text, 0, sc.sec_end > cut ? sc.sec_end : cut, &sh_s, &sh_e);
    bp_rcpt_action action = fam != NULL && fam->action != BP_ACTION_UNKNOWN ? fam->action
                            : says_delayed(out->explanation_pairs, folded + sc.sec_start, sc.sec_end - sc.sec_start)
                                ? BP_ACTION_DELAYED
                                : BP_ACTION_FAILED;
    for (size_t i = 0; i < sc.n_cand; i++) {
        const candidate *c = &sc.cand[i];
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL)
            break;
        b->recipient = c->addr;
        b->recipient_from = BP_FROM_BODY;
        b->field = fam != NULL ? fam->name : "text";
        if (fam != NULL && fam->rcpt_from_original && c->addr == orig_rcpt) {
            b->recipient_from = BP_FROM_HEADER;
            b->field = "To";
            b->recipient_weak = 1;
        }
        b->action = action;
        b->part_index = part->index;
        set_family_default(b, fam);
        if (c->status[0] != '\0')
            b->status = bp_arena_strdup(arena, c->status);
        if (c->code[0] != '\0')
            b->smtp_code = bp_arena_strdup(arena, c->code);
        size_t ds = 0, de = 0;
        diagnostic_span(&sc, fam, i, &ds, &de);
        /* the cleaned diagnostic is capped anyway; a wider span (a whole section shared by
         * a thousand recipients) would only cost time and memory per block */
        if (de - ds > diag_span_cap)
            de = ds + diag_span_cap;
        if (sh_e - sh_s > diag_span_cap)
            sh_e = sh_s + diag_span_cap;
        int join = has_shared && !has_code(text + ds, de - ds) && (sh_s >= de || sh_e <= ds);
        const char *own = session_cut(arena, text, ds, de, c->addr);
        const char *shared = join ? session_cut(arena, text, sh_s, sh_e, c->addr) : NULL;
        if (join) {
            const char *joined = bp_arena_printf(arena, "%s %s", own, shared != NULL ? shared : "");
            if (joined != NULL)
                bp_block_set_diagnostic(b, arena, joined, strlen(joined));
        } else if (own != NULL) {
            bp_block_set_diagnostic(b, arena, own, strlen(own));
        }
        prefer_failure_codes(b, arena);
    }
    if (out->n_blocks == 0) {
        char status[BP_STATUS_BUF];
        size_t s0 = sc.sec_start, s1 = sc.sec_end > sc.sec_start ? sc.sec_end : cut;
        if (fam == NULL && !bp_status_code_find(text + s0, s1 - s0, status))
            return BP_OK;
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL)
            return BP_ERR_NOMEM;
        b->action = action;
        b->part_index = part->index;
        set_family_default(b, fam);
        b->field = fam != NULL ? fam->name : "text";
        /* the report names nobody: the returned original's one recipient does */
        if (orig_rcpt != NULL) {
            b->recipient = orig_rcpt;
            b->recipient_from = BP_FROM_HEADER;
            b->field = "To";
            b->recipient_weak = 1;
        }
        size_t n = s1 - s0;
        bp_block_set_diagnostic(b, arena, text + s0, n < BP_MAX_DIAGNOSTIC_BYTES ? n : BP_MAX_DIAGNOSTIC_BYTES);
    }
    out->kind = BP_REPORT_TEXT;
    out->family = fam != NULL ? fam->name : "text-generic";
    return BP_OK;
}
