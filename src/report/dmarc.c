/*
 * dmarc.c - DMARC aggregate reports in the core: which part of a message is one, the report
 * family of report.c, and the module that reads it (contract: include/bouncepipe/dmarc.h).
 *
 * bp_dmarc_read_message(): the candidates are the leaves of the message itself that the MIME
 *   adapter decoded as report attachments (application/gzip, zip, xml, ... : mime.h) and
 *   text/xml parts.  The message is a report when a candidate's file name has the RFC 7489
 *   shape receiver!domain!begin!end[!id].ext, or the Subject reads "Report Domain: X
 *   Submitter: Y [Report-ID: Z]" (any case: Google writes "Report domain:"), or a
 *   candidate is XML whose first element is <feedback>.  Nothing is decompressed before that,
 *   so a zip attached to an auto-reply costs nothing.  The candidate read is the first one
 *   named like a report, else the first one; a report's Subject over no candidate is no
 *   report (there is nothing to read: the other families may know the message).  Only then
 *   is the reader wanted: the caller's, or the module's.
 * bp_dmarc_reader_load(): dlopen() of bouncepipe-dmarc.so (libxml2, zlib, libzip), looked for
 *   in $BOUNCEPIPE_DMARC_MODULE, beside the executable, then in BP_MODULE_DIR, as the
 *   PostgreSQL and HTTP modules are; a module of another BP_DMARC_READER_ABI or report layout
 *   is not used.  Loaded once, for the first report a process meets: an ordinary bounce never
 *   loads it (docs/dmarc.md, "Linking").
 * bp_dmarc_parse(): the family (report.h): a report read or refused becomes the report's
 *   kind BP_REPORT_DMARC; report_events.c makes its one event.
 *
 * Ownership: everything is in the caller's arena; the report points to the MIME part read.
 * The module, once loaded, stays loaded for the life of the process.
 */
#include "bouncepipe/dmarc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/module.h"
#include "bouncepipe/report.h"
#include "bouncepipe/text.h"

const char *bp_dmarc_outcome_name(bp_dmarc_outcome outcome)
{
    switch (outcome) {
    case BP_DMARC_READ: return "read";
    case BP_DMARC_REFUSED: return "refused";
    case BP_DMARC_NOT_REPORT: break;
    }
    return "not-report";
}

const char *bp_dmarc_packing_name(bp_dmarc_packing packing)
{
    switch (packing) {
    case BP_DMARC_PACK_XML: return "xml";
    case BP_DMARC_PACK_GZIP: return "gzip";
    case BP_DMARC_PACK_ZIP: return "zip";
    case BP_DMARC_PACK_NONE: break;
    }
    return "none";
}

/* ---- the module ---- */

static char load_error[700];

const char *bp_dmarc_reader_error(void)
{
    return load_error;
}

/* bp_module_symbol()'s check: a reader of this build's ABI. */
static const char *reader_of_this_build(const void *sym)
{
    const bp_dmarc_reader *r = sym;
    return r->abi == BP_DMARC_READER_ABI && r->report_size == sizeof(bp_dmarc_report)
               ? NULL
               : "built for another version of bouncepipe";
}

const bp_dmarc_reader *bp_dmarc_reader_load(void)
{
    static const bp_dmarc_reader *loaded;
    char why[600];
    if (loaded != NULL)
        return loaded;
    loaded = bp_module_symbol("BOUNCEPIPE_DMARC_MODULE", "bouncepipe-dmarc.so", BP_MODULE_DIR, "bp_dmarc_reader_module",
                              reader_of_this_build, why, sizeof(why));
    if (loaded != NULL)
        load_error[0] = '\0';
    else
        snprintf(load_error, sizeof(load_error), "cannot load the DMARC report reader bouncepipe-dmarc.so: %s", why);
    return loaded;
}

/* ---- the message ---- */

/* A part the MIME adapter decoded that may hold the report's XML. */
static int is_candidate(const bp_part *p)
{
    if (p->body == NULL || p->child != NULL)
        return 0;
    if (bp_part_is(p, "text", "xml"))
        return 1;
    return strcmp(p->type, "application") == 0; /* mime.c decodes only report attachments */
}

/* A candidate's own message is the top one (not a message attached to it). */
static int in_top_message(const bp_part *p)
{
    for (const bp_part *up = p; up != NULL; up = up->parent)
        if (up->is_message && up->parent != NULL)
            return 0;
    return 1;
}

/* The part of @name after its last '/' or '\' (some agents put a path in it). */
static const char *base_name(const char *name)
{
    const char *b = name;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\')
            b = p + 1;
    return b;
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/*
 * Is @name receiver!domain!begin!end[!unique-id].ext (RFC 7489 7.2.1.1, DMARCbis)?  When it
 * is, fill the report's name_receiver and name_domain.  @return 1, 0, or -1 out of memory.
 */
static int parse_file_name(const char *name, bp_arena *arena, bp_dmarc_report *out)
{
    if (name == NULL)
        return 0;
    const char *b = base_name(name);
    const char *f[5];
    size_t flen[5], n = 0;
    const char *p = b;
    while (n < 5) {
        const char *bang = strchr(p, '!');
        f[n] = p;
        flen[n] = bang != NULL ? (size_t)(bang - p) : strlen(p);
        n++;
        if (bang == NULL)
            break;
        p = bang + 1;
    }
    if (n < 4 || strchr(p, '!') != NULL)
        return 0;
    /* the last field carries the extension: digits (or the unique id) up to the first '.' */
    const char *dot = memchr(f[n - 1], '.', flen[n - 1]);
    if (dot == NULL)
        return 0;
    size_t end_len = n == 4 ? (size_t)(dot - f[3]) : flen[3];
    if (flen[0] == 0 || flen[1] == 0 || !all_digits(f[2], flen[2]) || !all_digits(f[3], end_len))
        return 0;
    out->name_receiver = bp_clean_text(arena, f[0], flen[0], BP_MAX_DMARC_FIELD_BYTES);
    out->name_domain = bp_clean_text(arena, f[1], flen[1], BP_MAX_DMARC_FIELD_BYTES);
    if (out->name_receiver == NULL || out->name_domain == NULL)
        return -1;
    bp_ascii_lower((char *)out->name_receiver);
    bp_ascii_lower((char *)out->name_domain);
    return 1;
}

/* The token after @label in @subject (case-insensitive), cleaned; NULL when absent. */
static const char *subject_token(const char *subject, const char *label, bp_arena *arena, int lower)
{
    const char *at = bp_strcasestr(subject, label);
    if (at == NULL)
        return NULL;
    at += strlen(label);
    while (*at == ' ' || *at == '\t')
        at++;
    size_t n = strcspn(at, " \t\r\n");
    if (n > 0 && at[0] == '<') {
        at++;
        n--;
        if (n > 0 && at[n - 1] == '>')
            n--;
    }
    char *v = n > 0 ? bp_clean_text(arena, at, n, BP_MAX_DMARC_FIELD_BYTES) : NULL;
    return v != NULL && lower ? bp_ascii_lower(v) : v;
}

/* Does the XML of @p start with a <feedback> element (after its declaration, comments)? */
static int looks_like_feedback(const bp_part *p)
{
    size_t n = p->body_len < 1024 ? p->body_len : 1024;
    const char *fb = bp_memcasemem(p->body, n, "<feedback", 9);
    if (fb == NULL)
        fb = bp_memcasemem(p->body, n, ":feedback", 9); /* a prefixed root */
    return fb != NULL;
}

static bp_status read_message(const bp_mime_message *msg, const bp_dmarc_reader *reader, bp_arena *arena,
                              bp_dmarc_report *out);

bp_status bp_dmarc_read_message(const bp_mime_message *msg, const bp_dmarc_reader *reader, bp_arena *arena,
                                bp_dmarc_report *out)
{
    bp_status st = read_message(msg, reader, arena, out);
    /* a value that could not be copied reads as absent or invalid (a refusal): not a result */
    return st == BP_OK && bp_arena_failed(arena) ? BP_ERR_NOMEM : st;
}

static bp_status read_message(const bp_mime_message *msg, const bp_dmarc_reader *reader, bp_arena *arena,
                              bp_dmarc_report *out)
{
    memset(out, 0, sizeof(*out));
    const bp_part *root = msg->root;
    if (root == NULL)
        return BP_OK;
    const char *subject = bp_part_header(root, "Subject");
    int subject_says = 0;
    if (subject != NULL && bp_strcasestr(subject, "Report Domain:") != NULL &&
        bp_strcasestr(subject, "Submitter:") != NULL) {
        subject_says = 1;
        out->subject_domain = subject_token(subject, "Report Domain:", arena, 1);
        out->subject_submitter = subject_token(subject, "Submitter:", arena, 1);
        out->subject_report_id = subject_token(subject, "Report-ID:", arena, 0);
    }

    const bp_part *first = NULL, *named = NULL, *xml_root = NULL;
    for (const bp_part *p = root; p != NULL && named == NULL; p = bp_part_walk_next(root, p)) {
        if (!is_candidate(p) || !in_top_message(p))
            continue;
        if (first == NULL)
            first = p;
        bp_dmarc_report probe;
        memset(&probe, 0, sizeof(probe));
        int shape = parse_file_name(p->filename, arena, &probe);
        if (shape < 0)
            return BP_ERR_NOMEM;
        if (shape > 0) {
            named = p;
            out->name_receiver = probe.name_receiver;
            out->name_domain = probe.name_domain;
        } else if (xml_root == NULL && (bp_part_is(p, "text", "xml") || bp_part_is(p, "application", "xml")) &&
                   looks_like_feedback(p)) {
            xml_root = p;
        }
    }
    const bp_part *part = named != NULL ? named : subject_says ? first : xml_root;
    if (part == NULL) { /* nothing to read (even under a report's Subject): not a report */
        memset(out, 0, sizeof(*out));
        return BP_OK;
    }
    out->attachment = part;
    if (part->filename != NULL && (out->filename = bp_clean_text(arena, part->filename, strlen(part->filename),
                                                                 BP_MAX_DMARC_FIELD_BYTES)) == NULL)
        return BP_ERR_NOMEM;
    if (part->truncated) { /* refused without the reader: a refusal is an outcome */
        int text = bp_part_is(part, "text", "xml");
        char reason[128];
        snprintf(reason, sizeof(reason), "the attachment is larger than %u bytes (%s)",
                 text ? BP_MAX_TEXT_BYTES : BP_MAX_ATTACHMENT_BYTES,
                 text ? "BP_MAX_TEXT_BYTES" : "BP_MAX_ATTACHMENT_BYTES");
        out->outcome = BP_DMARC_REFUSED;
        out->refusal = BP_ERR_LIMIT;
        out->reason = bp_arena_strdup(arena, reason);
        return out->reason != NULL ? BP_OK : BP_ERR_NOMEM;
    }
    if (reader == NULL && (reader = bp_dmarc_reader_load()) == NULL)
        return BP_ERR_UNSUPPORTED; /* a report, and nothing to read it with */
    /* a text/xml part was converted to UTF-8 when it declared another charset (mime.h) */
    int utf8_text = bp_part_is(part, "text", "xml") && part->charset != NULL &&
                    strcasecmp(part->charset, "utf-8") != 0 && strcasecmp(part->charset, "us-ascii") != 0;
    return reader->read_attachment(part->body, part->body_len, utf8_text, arena, out);
}

/* ---- the family ---- */

bp_status bp_dmarc_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out)
{
    (void)opts;
    bp_dmarc_report r;
    bp_status st = bp_dmarc_read_message(msg, NULL, arena, &r);
    if (st != BP_OK || r.outcome == BP_DMARC_NOT_REPORT)
        return st;
    bp_dmarc_report *kept = bp_arena_alloc(arena, sizeof(*kept));
    if (kept == NULL)
        return BP_ERR_NOMEM;
    *kept = r;
    out->kind = BP_REPORT_DMARC;
    out->family = "dmarc";
    out->dmarc = kept;
    return BP_OK;
}
