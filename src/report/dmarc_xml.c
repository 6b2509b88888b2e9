/*
 * dmarc_xml.c - the XML of a DMARC aggregate report, streamed through libxml2's SAX parser
 * into a bp_dmarc_report (contract: src/report/dmarc_internal.h).
 *
 * libxml2 tokenises; this file only maps elements to fields.  It keeps a stack of element
 * states; a start tag moves from its parent's state to a child state through the table
 * `elements` (RFC 7489 Appendix C plus DMARCbis), matched on local names in the root's
 * namespace (no namespace, RFC 7489's, or DMARCbis' urn:ietf:params:xml:ns:dmarc-2.0).
 * Anything else (extensions, unknown elements, elements of another namespace) is skipped with
 * its subtree.  A leaf's text is gathered (at most 4 x BP_MAX_DMARC_FIELD_BYTES raw bytes,
 * leading white space dropped), then cleaned by bp_clean_text() at the end tag.  The first
 * occurrence of a single-valued field wins.
 *
 * Hostile input: the parser is created with SAX handlers only, so no tree is built.  A
 * document type declaration stops the parse at once (internalSubset / entityDecl handlers
 * call xmlStopParser()): DMARC reports have none, and without a DTD there is no entity to
 * expand (billion laughs) or to load (XXE), whatever the libxml2 version's defaults.  On top
 * of that: XML_PARSE_NONET, never XML_PARSE_NOENT / DTDLOAD / DTDATTR / HUGE (so libxml2's own
 * limits on depth, text and dictionary stay on), undefined entities are errors
 * (getEntity gives NULL), and bp_dmarc_init() installs an external entity loader that
 * loads nothing.  Errors go to a structured handler that keeps the first fatal one; nothing
 * reaches stderr.  Counts are bounded by limits.h (records, auth results, list items, bytes).
 *
 * bp_dmarc_refuse() is here too, at the bottom of the reader's files (the archive and the
 * attachment code call it and this file), so that their calls go one way.
 *
 * Ownership: the reader (bp_dmarc_xml) is malloc'ed and owns its libxml2 context and text
 * buffer; everything written into the report is copied into the arena.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "dmarc_internal.h"

bp_status bp_dmarc_refuse(bp_dmarc_report *out, bp_arena *arena, bp_status why, const char *fmt, ...)
{
    if (out->outcome == BP_DMARC_REFUSED)
        return out->refusal;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* a reason can quote the report (a root element's name, a bad count): clean it too */
    const char *reason = bp_clean_text(arena, buf, strlen(buf), sizeof(buf));
    if (reason == NULL)
        return BP_ERR_NOMEM;
    out->outcome = BP_DMARC_REFUSED;
    out->refusal = why;
    out->reason = reason;
    return why;
}

/* Element states.  E_SKIP: inside something we do not read. */
enum el {
    E_DOC = 0,
    E_SKIP,
    E_FEEDBACK,
    E_VERSION,
    E_META,
    E_ORG,
    E_EMAIL,
    E_EXTRA,
    E_REPORT_ID,
    E_RANGE,
    E_BEGIN,
    E_END,
    E_ERROR,
    E_GENERATOR,
    E_POLICY,
    E_P_DOMAIN,
    E_P_ADKIM,
    E_P_ASPF,
    E_P_P,
    E_P_SP,
    E_P_NP,
    E_P_PCT,
    E_P_FO,
    E_P_TESTING,
    E_P_DISCOVERY,
    E_RECORD,
    E_ROW,
    E_SOURCE_IP,
    E_COUNT,
    E_EVAL,
    E_DISPOSITION,
    E_EVAL_DKIM,
    E_EVAL_SPF,
    E_REASON,
    E_REASON_TYPE,
    E_REASON_COMMENT,
    E_IDS,
    E_ENV_TO,
    E_ENV_FROM,
    E_HEADER_FROM,
    E_AUTH,
    E_DKIM,
    E_DKIM_DOMAIN,
    E_DKIM_SELECTOR,
    E_DKIM_RESULT,
    E_DKIM_HUMAN,
    E_SPF,
    E_SPF_DOMAIN,
    E_SPF_SCOPE,
    E_SPF_RESULT,
    E_SPF_HUMAN,
};

/* How a leaf's text becomes a value. */
enum kind {
    K_NODE = 0, /* not a leaf: holds elements */
    K_TEXT,     /* free text, case kept */
    K_DOMAIN,   /* lower-cased text */
    K_TOKEN,    /* lower-cased, a known keyword shared (not copied) */
    K_NUMBER,   /* handled by its state */
};

static const struct element {
    enum el parent;
    const char *name;
    enum el state;
    enum kind kind;
} elements[] = {
    {E_DOC, "feedback", E_FEEDBACK, K_NODE},
    {E_FEEDBACK, "version", E_VERSION, K_TEXT},
    {E_FEEDBACK, "report_metadata", E_META, K_NODE},
    {E_FEEDBACK, "policy_published", E_POLICY, K_NODE},
    {E_FEEDBACK, "record", E_RECORD, K_NODE},
    {E_META, "org_name", E_ORG, K_TEXT},
    {E_META, "email", E_EMAIL, K_TEXT},
    {E_META, "extra_contact_info", E_EXTRA, K_TEXT},
    {E_META, "report_id", E_REPORT_ID, K_TEXT},
    {E_META, "date_range", E_RANGE, K_NODE},
    {E_META, "error", E_ERROR, K_TEXT},
    {E_META, "generator", E_GENERATOR, K_TEXT},
    {E_RANGE, "begin", E_BEGIN, K_NUMBER},
    {E_RANGE, "end", E_END, K_NUMBER},
    {E_POLICY, "domain", E_P_DOMAIN, K_DOMAIN},
    {E_POLICY, "adkim", E_P_ADKIM, K_TOKEN},
    {E_POLICY, "aspf", E_P_ASPF, K_TOKEN},
    {E_POLICY, "p", E_P_P, K_TOKEN},
    {E_POLICY, "sp", E_P_SP, K_TOKEN},
    {E_POLICY, "np", E_P_NP, K_TOKEN},
    {E_POLICY, "pct", E_P_PCT, K_NUMBER},
    {E_POLICY, "fo", E_P_FO, K_TEXT},
    {E_POLICY, "testing", E_P_TESTING, K_TOKEN},
    {E_POLICY, "discovery_method", E_P_DISCOVERY, K_TOKEN},
    {E_RECORD, "row", E_ROW, K_NODE},
    {E_RECORD, "identifiers", E_IDS, K_NODE},
    {E_RECORD, "auth_results", E_AUTH, K_NODE},
    {E_ROW, "source_ip", E_SOURCE_IP, K_NUMBER},
    {E_ROW, "count", E_COUNT, K_NUMBER},
    {E_ROW, "policy_evaluated", E_EVAL, K_NODE},
    {E_EVAL, "disposition", E_DISPOSITION, K_TOKEN},
    {E_EVAL, "dkim", E_EVAL_DKIM, K_TOKEN},
    {E_EVAL, "spf", E_EVAL_SPF, K_TOKEN},
    {E_EVAL, "reason", E_REASON, K_NODE},
    {E_REASON, "type", E_REASON_TYPE, K_TOKEN},
    {E_REASON, "comment", E_REASON_COMMENT, K_TEXT},
    {E_IDS, "envelope_to", E_ENV_TO, K_DOMAIN},
    {E_IDS, "envelope_from", E_ENV_FROM, K_DOMAIN},
    {E_IDS, "header_from", E_HEADER_FROM, K_DOMAIN},
    {E_AUTH, "dkim", E_DKIM, K_NODE},
    {E_AUTH, "spf", E_SPF, K_NODE},
    {E_DKIM, "domain", E_DKIM_DOMAIN, K_DOMAIN},
    {E_DKIM, "selector", E_DKIM_SELECTOR, K_TEXT},
    {E_DKIM, "result", E_DKIM_RESULT, K_TOKEN},
    {E_DKIM, "human_result", E_DKIM_HUMAN, K_TEXT},
    {E_SPF, "domain", E_SPF_DOMAIN, K_DOMAIN},
    {E_SPF, "scope", E_SPF_SCOPE, K_TOKEN},
    {E_SPF, "result", E_SPF_RESULT, K_TOKEN},
    {E_SPF, "human_result", E_SPF_HUMAN, K_TEXT},
};

/* Keywords of the schema's enumerations (and the spellings receivers use besides): a token
 * field equal to one of them points here instead of taking arena memory per record. */
static const char *const keywords[] = {
    "pass",
    "fail",
    "none",
    "neutral",
    "policy",
    "temperror",
    "permerror",
    "softfail",
    "quarantine",
    "reject",
    "r",
    "s",
    "y",
    "n",
    "mfrom",
    "helo",
    "psl",
    "treewalk",
    "forwarded",
    "sampled_out",
    "trusted_forwarder",
    "mailing_list",
    "local_policy",
    "other",
    "policy_test_mode",
    "unknown",
    "error",
    "hardfail",
};

/* Deeper elements are all E_SKIP; a report is 5 deep. */
#define STACK_DEPTH 16u

struct open_element {
    enum el state;
    enum kind kind; /* K_NODE unless it is a leaf we read */
};

struct bp_dmarc_xml {
    xmlParserCtxtPtr ctxt; /* owned: xmlFreeParserCtxt() */
    bp_arena *arena;
    bp_dmarc_report *out;
    bp_dmarc_packing packing;
    bp_status stop; /* not BP_OK: refused or out of memory, push nothing more */
    int started;    /* the first byte of XML was seen */
    unsigned depth;
    struct open_element stack[STACK_DEPTH];
    const char *root_ns; /* the root's namespace as written (arena), or NULL */
    int root_closed;
    int fatal_line; /* first fatal error: line, message (arena); 0 when none */
    const char *fatal_msg;
    bp_strbuf text; /* the current leaf's raw text (owned) */
    size_t cap_errors, cap_reasons, cap_dkim, cap_spf;
    int have_begin, have_end, have_ip, have_count;
};

/* Stop the parser: a report over a limit or malformed goes no further. */
static void halt(bp_dmarc_xml *x, bp_status st)
{
    if (x->stop == BP_OK)
        x->stop = st;
    xmlStopParser(x->ctxt);
}

static void refuse(bp_dmarc_xml *x, bp_status why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void refuse(bp_dmarc_xml *x, bp_status why, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    halt(x, bp_dmarc_refuse(x->out, x->arena, why, "%s", buf));
}

/* @p items (*n of @p size bytes, room for *cap) with one more item, zeroed, at its end (*n
 * counts it): the array to keep, or NULL with the parse halted when out of memory. */
static void *push(bp_dmarc_xml *x, void *items, size_t *n, size_t *cap, size_t size)
{
    char *all = bp_arena_grow(x->arena, items, *n, cap, size, 4);
    if (all == NULL) {
        halt(x, BP_ERR_NOMEM);
        return NULL;
    }
    memset(all + *n * size, 0, size);
    (*n)++;
    return all;
}

static bp_dmarc_record *current_record(bp_dmarc_xml *x)
{
    return x->out->n_records > 0 ? &x->out->records[x->out->n_records - 1] : NULL;
}

/* A new item at a container's start tag; refuses past the limits. */
static void open_item(bp_dmarc_xml *x, enum el state)
{
    bp_dmarc_report *r = x->out;
    bp_dmarc_record *rec = current_record(x);
    switch (state) {
    case E_RECORD: {
        if (r->n_records >= BP_MAX_DMARC_RECORDS) {
            refuse(x, BP_ERR_LIMIT, "more than %u records (BP_MAX_DMARC_RECORDS)", BP_MAX_DMARC_RECORDS);
            return;
        }
        bp_dmarc_record *recs = push(x, r->records, &r->n_records, &r->cap_records, sizeof(*recs));
        if (recs == NULL)
            return;
        r->records = recs;
        x->cap_reasons = x->cap_dkim = x->cap_spf = 0;
        x->have_ip = x->have_count = 0;
        return;
    }
    case E_REASON: {
        if (rec->n_reasons >= BP_MAX_DMARC_LIST_ITEMS) {
            refuse(x, BP_ERR_LIMIT, "record %zu: more than %u reasons (BP_MAX_DMARC_LIST_ITEMS)", r->n_records,
                   BP_MAX_DMARC_LIST_ITEMS);
            return;
        }
        bp_dmarc_reason *rs = push(x, rec->reasons, &rec->n_reasons, &x->cap_reasons, sizeof(*rs));
        if (rs != NULL)
            rec->reasons = rs;
        return;
    }
    case E_DKIM:
    case E_SPF: {
        if (rec->n_dkim + rec->n_spf >= BP_MAX_DMARC_AUTH_RESULTS) {
            refuse(x, BP_ERR_LIMIT, "record %zu: more than %u DKIM and SPF results (BP_MAX_DMARC_AUTH_RESULTS)",
                   r->n_records, BP_MAX_DMARC_AUTH_RESULTS);
            return;
        }
        if (state == E_DKIM) {
            bp_dmarc_dkim *d = push(x, rec->dkim_results, &rec->n_dkim, &x->cap_dkim, sizeof(*d));
            if (d != NULL)
                rec->dkim_results = d;
        } else {
            bp_dmarc_spf *sp = push(x, rec->spf_results, &rec->n_spf, &x->cap_spf, sizeof(*sp));
            if (sp != NULL)
                rec->spf_results = sp;
        }
        return;
    }
    default: return;
    }
}

/* The record is complete: check what identifies it and derive its alignment. */
static void close_record(bp_dmarc_xml *x)
{
    bp_dmarc_report *r = x->out;
    bp_dmarc_record *rec = current_record(x);
    if (!x->have_ip) {
        refuse(x, BP_ERR_PARSE, "record %zu has no source_ip", r->n_records);
        return;
    }
    if (!x->have_count) {
        refuse(x, BP_ERR_PARSE, "record %zu has no count", r->n_records);
        return;
    }
    rec->dkim_aligned = rec->dkim != NULL && strcmp(rec->dkim, "pass") == 0;
    rec->spf_aligned = rec->spf != NULL && strcmp(rec->spf, "pass") == 0;
    rec->dmarc_pass = rec->dkim_aligned || rec->spf_aligned;
    r->messages = r->messages + rec->count < r->messages ? UINT64_MAX : r->messages + rec->count;
    if (rec->dmarc_pass)
        r->messages_pass =
            r->messages_pass + rec->count < r->messages_pass ? UINT64_MAX : r->messages_pass + rec->count;
}

/* The cleaned value of the current leaf (NULL when empty), as its kind says. */
static const char *leaf_value(bp_dmarc_xml *x, enum kind kind)
{
    if (x->text.len == 0)
        return NULL;
    char *v = bp_clean_text(x->arena, x->text.data, x->text.len, BP_MAX_DMARC_FIELD_BYTES);
    if (v == NULL)
        return NULL;
    if (kind == K_DOMAIN || kind == K_TOKEN)
        bp_ascii_lower(v);
    if (kind == K_TOKEN)
        for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
            if (strcmp(v, keywords[i]) == 0)
                return keywords[i];
    return v;
}

/* The leaf's text as a decimal number of at most @max, or -1 when it is not one. */
static int parse_number(const bp_dmarc_xml *x, uint64_t max, uint64_t *value)
{
    const char *s = x->text.data;
    size_t n = x->text.len, i = 0;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n == 0)
        return -1;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *value = v;
    return 0;
}

/* Show at most 64 bytes of the current text, cleaned, in a reason. */
static const char *shown(bp_dmarc_xml *x)
{
    const char *v = bp_clean_text(x->arena, x->text.data, x->text.len, 64);
    return v != NULL ? v : "";
}

static void set_once(const char **field, const char *value)
{
    if (*field == NULL)
        *field = value;
}

static void number_leaf(bp_dmarc_xml *x, enum el state)
{
    bp_dmarc_report *r = x->out;
    bp_dmarc_record *rec = current_record(x);
    uint64_t v = 0;
    switch (state) {
    case E_BEGIN:
    case E_END: {
        int *have = state == E_BEGIN ? &x->have_begin : &x->have_end;
        if (*have)
            return;
        if (parse_number(x, INT64_MAX, &v) != 0) {
            refuse(x, BP_ERR_PARSE, "date_range %s \"%s\" is not a number of seconds",
                   state == E_BEGIN ? "begin" : "end", shown(x));
            return;
        }
        *(state == E_BEGIN ? &r->begin : &r->end) = (int64_t)v;
        *have = 1;
        return;
    }
    case E_P_PCT:
        if (r->pct < 0 && parse_number(x, 100, &v) == 0)
            r->pct = (int)v;
        return;
    case E_COUNT:
        if (x->have_count)
            return;
        if (parse_number(x, UINT64_MAX, &v) != 0) {
            refuse(x, BP_ERR_PARSE, "record %zu: count \"%s\" is not a number", r->n_records, shown(x));
            return;
        }
        rec->count = v;
        x->have_count = 1;
        return;
    case E_SOURCE_IP: {
        if (x->have_ip)
            return;
        const char *ip = bp_clean_text(x->arena, x->text.data, x->text.len, 64);
        unsigned char addr[sizeof(struct in6_addr)];
        char canon[INET6_ADDRSTRLEN];
        int family = ip != NULL && strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
        if (ip == NULL || inet_pton(family, ip, addr) != 1 || inet_ntop(family, addr, canon, sizeof(canon)) == NULL) {
            refuse(x, BP_ERR_PARSE, "record %zu: source_ip \"%s\" is not an IP address", r->n_records, shown(x));
            return;
        }
        rec->source_ip = bp_arena_strdup(x->arena, canon);
        if (rec->source_ip == NULL)
            halt(x, BP_ERR_NOMEM);
        x->have_ip = 1;
        return;
    }
    default: return;
    }
}

/* The end tag of a leaf: store its value. */
static void close_leaf(bp_dmarc_xml *x, enum el state, enum kind kind)
{
    if (kind == K_NUMBER) {
        number_leaf(x, state);
        return;
    }
    bp_dmarc_report *r = x->out;
    bp_dmarc_record *rec = current_record(x);
    const char *v = leaf_value(x, kind);
    if (x->text.len > 0 && v == NULL) {
        /* the gathered text starts with a non-space byte, so it was lost to memory */
        halt(x, BP_ERR_NOMEM);
        return;
    }
    bp_dmarc_dkim *dkim = rec != NULL && rec->n_dkim > 0 ? &rec->dkim_results[rec->n_dkim - 1] : NULL;
    bp_dmarc_spf *spf = rec != NULL && rec->n_spf > 0 ? &rec->spf_results[rec->n_spf - 1] : NULL;
    bp_dmarc_reason *reason = rec != NULL && rec->n_reasons > 0 ? &rec->reasons[rec->n_reasons - 1] : NULL;
    switch (state) {
    case E_VERSION: set_once(&r->version, v); return;
    case E_ORG: set_once(&r->org_name, v); return;
    case E_EMAIL: set_once(&r->email, v); return;
    case E_EXTRA: set_once(&r->extra_contact_info, v); return;
    case E_REPORT_ID: set_once(&r->report_id, v); return;
    case E_GENERATOR: set_once(&r->generator, v); return;
    case E_ERROR: {
        if (v == NULL)
            return;
        if (r->n_errors >= BP_MAX_DMARC_LIST_ITEMS) {
            refuse(x, BP_ERR_LIMIT, "more than %u errors in report_metadata (BP_MAX_DMARC_LIST_ITEMS)",
                   BP_MAX_DMARC_LIST_ITEMS);
            return;
        }
        const char **errs = push(x, (void *)r->errors, &r->n_errors, &x->cap_errors, sizeof(*errs));
        if (errs != NULL) {
            errs[r->n_errors - 1] = v;
            r->errors = errs;
        }
        return;
    }
    case E_P_DOMAIN: set_once(&r->domain, v); return;
    case E_P_ADKIM: set_once(&r->adkim, v); return;
    case E_P_ASPF: set_once(&r->aspf, v); return;
    case E_P_P: set_once(&r->p, v); return;
    case E_P_SP: set_once(&r->sp, v); return;
    case E_P_NP: set_once(&r->np, v); return;
    case E_P_FO: set_once(&r->fo, v); return;
    case E_P_TESTING: set_once(&r->testing, v); return;
    case E_P_DISCOVERY: set_once(&r->discovery_method, v); return;
    case E_DISPOSITION: set_once(&rec->disposition, v); return;
    case E_EVAL_DKIM: set_once(&rec->dkim, v); return;
    case E_EVAL_SPF: set_once(&rec->spf, v); return;
    case E_REASON_TYPE: set_once(&reason->type, v); return;
    case E_REASON_COMMENT: set_once(&reason->comment, v); return;
    case E_ENV_TO: set_once(&rec->envelope_to, v != NULL ? v : ""); return;
    case E_ENV_FROM: set_once(&rec->envelope_from, v != NULL ? v : ""); return;
    case E_HEADER_FROM: set_once(&rec->header_from, v); return;
    case E_DKIM_DOMAIN: set_once(&dkim->domain, v); return;
    case E_DKIM_SELECTOR: set_once(&dkim->selector, v); return;
    case E_DKIM_RESULT: set_once(&dkim->result, v); return;
    case E_DKIM_HUMAN: set_once(&dkim->human_result, v); return;
    case E_SPF_DOMAIN: set_once(&spf->domain, v); return;
    case E_SPF_SCOPE: set_once(&spf->scope, v); return;
    case E_SPF_RESULT: set_once(&spf->result, v); return;
    case E_SPF_HUMAN: set_once(&spf->human_result, v); return;
    default: return;
    }
}

/* ---- SAX handlers ---- */

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri, int nb_namespaces,
                     const xmlChar **namespaces, int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    (void)prefix;
    (void)nb_namespaces;
    (void)namespaces;
    (void)nb_attributes;
    (void)nb_defaulted;
    (void)attributes;
    bp_dmarc_xml *x = ctx;
    if (x->stop != BP_OK)
        return;
    const char *name = (const char *)localname;
    unsigned depth = x->depth++;
    struct open_element parent = {E_DOC, K_NODE};
    if (depth > 0)
        parent = depth - 1 < STACK_DEPTH ? x->stack[depth - 1] : (struct open_element){E_SKIP, K_NODE};
    struct open_element e = {E_SKIP, K_NODE};
    if (depth == 0) {
        if (strcmp(name, "feedback") != 0) {
            refuse(x, BP_ERR_PARSE, "the XML's root element is <%.64s>, not <feedback>", name);
            return;
        }
        if (uri != NULL) {
            size_t len = strlen((const char *)uri);
            x->root_ns = bp_arena_strndup(x->arena, (const char *)uri, len);
            x->out->xml_namespace = bp_clean_text(x->arena, (const char *)uri, len, BP_MAX_DMARC_FIELD_BYTES);
            if (x->root_ns == NULL || x->out->xml_namespace == NULL) {
                halt(x, BP_ERR_NOMEM);
                return;
            }
        }
        e.state = E_FEEDBACK;
    } else if (parent.state != E_SKIP && parent.kind == K_NODE) {
        /* only elements in the root's namespace: others are extensions */
        const char *ns = x->root_ns;
        int same_ns = uri == NULL ? ns == NULL : ns != NULL && strcmp((const char *)uri, ns) == 0;
        for (size_t i = 0; same_ns && i < sizeof(elements) / sizeof(elements[0]); i++) {
            if (elements[i].parent == parent.state && strcmp(elements[i].name, name) == 0) {
                e.state = elements[i].state;
                e.kind = elements[i].kind;
                break;
            }
        }
    }
    if (depth < STACK_DEPTH)
        x->stack[depth] = e;
    if (e.kind != K_NODE)
        bp_strbuf_clear(&x->text);
    else if (e.state != E_SKIP)
        open_item(x, e.state);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    (void)localname;
    (void)prefix;
    (void)uri;
    bp_dmarc_xml *x = ctx;
    if (x->stop != BP_OK || x->depth == 0)
        return;
    unsigned depth = --x->depth;
    if (depth >= STACK_DEPTH)
        return;
    struct open_element e = x->stack[depth];
    if (e.kind != K_NODE) {
        close_leaf(x, e.state, e.kind);
        bp_strbuf_clear(&x->text);
    } else if (e.state == E_RECORD) {
        close_record(x);
    } else if (e.state == E_FEEDBACK) {
        x->root_closed = 1;
    }
}

/* Text of the innermost element, gathered when it is a leaf we read (text of an element
 * inside a leaf is not part of the leaf's value). */
static void on_text(void *ctx, const xmlChar *ch, int len)
{
    bp_dmarc_xml *x = ctx;
    if (x->stop != BP_OK || x->depth == 0 || x->depth > STACK_DEPTH || x->stack[x->depth - 1].kind == K_NODE ||
        len <= 0)
        return;
    const char *s = (const char *)ch;
    size_t n = (size_t)len;
    if (x->text.len == 0) /* leading white space is never kept: do not gather it */
        while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
            s++;
            n--;
        }
    size_t room = 4u * BP_MAX_DMARC_FIELD_BYTES - x->text.len;
    if (n > room)
        n = room;
    if (n > 0 && bp_strbuf_append(&x->text, s, n) != BP_OK)
        halt(x, BP_ERR_NOMEM);
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
    (void)name;
    (void)external_id;
    (void)system_id;
    refuse(ctx, BP_ERR_PARSE,
           "the XML has a document type declaration (<!DOCTYPE>): refused, DMARC reports have none "
           "(no DTD, no entities: XXE and entity-expansion guard)");
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id, const xmlChar *system_id,
                           xmlChar *content)
{
    (void)name;
    (void)type;
    (void)public_id;
    (void)system_id;
    (void)content;
    refuse(ctx, BP_ERR_PARSE, "the XML declares an entity: refused (XXE and entity-expansion guard)");
}

static xmlEntityPtr on_get_entity(void *ctx, const xmlChar *name)
{
    (void)ctx;
    (void)name;
    return NULL; /* only the five predefined entities exist (libxml2 resolves them first) */
}

#if LIBXML_VERSION >= 21200
static void on_error(void *ctx, const xmlError *error)
#else
static void on_error(void *ctx, xmlErrorPtr error)
#endif
{
    bp_dmarc_xml *x = ctx;
    if (error != NULL && error->code == XML_ERR_NO_MEMORY) {
        halt(x, BP_ERR_NOMEM); /* ours to retry, not the report's fault */
        return;
    }
    if (error == NULL || error->level != XML_ERR_FATAL || x->fatal_line != 0 || x->root_closed)
        return; /* warnings, namespace errors, and junk after the report's end tag do not count */
    x->fatal_line = error->line > 0 ? error->line : 1;
    const char *msg = error->message != NULL ? error->message : "error";
    x->fatal_msg = bp_clean_text(x->arena, msg, strlen(msg), 200);
}

static xmlParserInputPtr no_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url;
    (void)id;
    (void)ctxt;
    return NULL; /* nothing outside the report is ever read */
}

static void silent_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

void bp_dmarc_init(void)
{
    static int done;
    if (done)
        return;
    xmlInitParser();
    xmlSetExternalEntityLoader(no_entity_loader);
    xmlSetGenericErrorFunc(NULL, silent_generic);
    done = 1;
}

bp_status bp_dmarc_xml_new(bp_arena *arena, bp_dmarc_report *out, int is_utf8_text, bp_dmarc_packing packing,
                           bp_dmarc_xml **xp)
{
    bp_dmarc_init();
    *xp = NULL;
    bp_dmarc_xml *x = bp_calloc(1, sizeof(*x));
    if (x == NULL)
        return BP_ERR_NOMEM;
    x->arena = arena;
    x->out = out;
    x->packing = packing;
    out->pct = -1;

    /* SAX handlers only: everything not set here does nothing (no tree, no DTD, no entity) */
    xmlSAXHandler sax;
    memset(&sax, 0, sizeof(sax));
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = on_start;
    sax.endElementNs = on_end;
    sax.characters = on_text;
    sax.cdataBlock = on_text;
    sax.internalSubset = on_doctype;
    sax.externalSubset = on_doctype;
    sax.entityDecl = on_entity_decl;
    sax.getEntity = on_get_entity;
    sax.getParameterEntity = on_get_entity;
    sax.serror = on_error;

    x->ctxt = xmlCreatePushParserCtxt(&sax, x, NULL, 0, NULL);
    if (x->ctxt == NULL) {
        free(x);
        return BP_ERR_NOMEM;
    }
    int options = XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOERROR;
    if (is_utf8_text) {
        options |= XML_PARSE_IGNORE_ENC;
        xmlSwitchEncoding(x->ctxt, XML_CHAR_ENCODING_UTF8);
    }
    xmlCtxtUseOptions(x->ctxt, options);
    *xp = x;
    return BP_OK;
}

/* The first bytes of decompressed XML: refuse an archive inside the archive. */
static bp_status check_start(bp_dmarc_xml *x, const unsigned char *p, size_t n)
{
    if (x->packing == BP_DMARC_PACK_XML || n == 0)
        return BP_OK;
    const char *inside = NULL;
    if (p[0] == 0x1f && (n < 2 || p[1] == 0x8b))
        inside = "gzip";
    else if (p[0] == 'P' && (n < 2 || p[1] == 'K'))
        inside = "zip";
    if (inside == NULL)
        return BP_OK;
    return bp_dmarc_refuse(x->out, x->arena, BP_ERR_LIMIT, "nested archive: the %s holds a %s, not XML",
                           x->packing == BP_DMARC_PACK_GZIP ? "gzip" : "zip", inside);
}

/* A fatal parse error before the report's end tag refuses the report; libxml2 running out of
 * memory does not (a report refused for it would stay refused). */
static void refuse_if_fatal(bp_dmarc_xml *x)
{
    if (x->ctxt->errNo == XML_ERR_NO_MEMORY)
        halt(x, BP_ERR_NOMEM);
    if (x->fatal_line != 0 && !x->root_closed && x->stop == BP_OK)
        refuse(x, BP_ERR_PARSE, "the XML is not well-formed: line %d: %s", x->fatal_line,
               x->fatal_msg != NULL ? x->fatal_msg : "error");
}

bp_status bp_dmarc_xml_push(bp_dmarc_xml *x, const char *data, size_t len)
{
    if (x->stop != BP_OK)
        return x->stop;
    if (len > BP_MAX_DMARC_XML_BYTES - x->out->xml_bytes) {
        x->stop = bp_dmarc_refuse(x->out, x->arena, BP_ERR_LIMIT, "more than %u bytes of XML (BP_MAX_DMARC_XML_BYTES)",
                                  BP_MAX_DMARC_XML_BYTES);
        return x->stop;
    }
    x->out->xml_bytes += len;
    if (!x->started) {
        /* white space before the XML declaration would make it an error: drop it */
        while (len > 0 && (*data == ' ' || *data == '\t' || *data == '\r' || *data == '\n')) {
            data++;
            len--;
        }
        if (len == 0)
            return BP_OK;
        x->started = 1;
        bp_status st = check_start(x, (const unsigned char *)data, len);
        if (st != BP_OK) {
            x->stop = st;
            return st;
        }
    }
    /* xmlParseChunk() takes an int length */
    while (len > 0 && x->stop == BP_OK) {
        size_t n = len < 65536 ? len : 65536;
        xmlParseChunk(x->ctxt, data, (int)n, 0);
        data += n;
        len -= n;
        refuse_if_fatal(x); /* the rest cannot mend it: stop reading at once */
    }
    return x->stop;
}

bp_status bp_dmarc_xml_finish(bp_dmarc_xml *x)
{
    bp_dmarc_report *r = x->out;
    if (x->stop == BP_OK && !x->started) {
        x->stop = bp_dmarc_refuse(r, x->arena, BP_ERR_PARSE, "the attachment is empty");
    } else if (x->stop == BP_OK) {
        xmlParseChunk(x->ctxt, NULL, 0, 1);
        refuse_if_fatal(x);
    }
    if (x->stop == BP_ERR_NOMEM)
        return BP_ERR_NOMEM;
    if (r->outcome == BP_DMARC_REFUSED)
        return BP_OK;
    bp_status st = BP_OK;
    if (!x->root_closed)
        st = bp_dmarc_refuse(r, x->arena, BP_ERR_PARSE, "the XML ends before </feedback>");
    else if (r->org_name == NULL)
        st = bp_dmarc_refuse(r, x->arena, BP_ERR_PARSE, "report_metadata has no org_name");
    else if (r->report_id == NULL)
        st = bp_dmarc_refuse(r, x->arena, BP_ERR_PARSE, "report_metadata has no report_id");
    else if (!x->have_begin || !x->have_end)
        st = bp_dmarc_refuse(r, x->arena, BP_ERR_PARSE, "report_metadata has no date_range begin and end");
    else if (r->domain == NULL)
        st = bp_dmarc_refuse(r, x->arena, BP_ERR_PARSE, "policy_published has no domain");
    if (st == BP_ERR_NOMEM)
        return st;
    if (r->outcome != BP_DMARC_REFUSED)
        r->outcome = BP_DMARC_READ;
    return BP_OK;
}

void bp_dmarc_xml_free(bp_dmarc_xml *x)
{
    if (x == NULL)
        return;
    if (x->ctxt != NULL)
        xmlFreeParserCtxt(x->ctxt); /* no document was built: there is no startDocument handler */
    bp_strbuf_free(&x->text);
    free(x);
}
