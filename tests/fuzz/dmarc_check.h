/*
 * dmarc_check.h - the promises include/bouncepipe/dmarc.h makes about a finished report,
 * checked in one place for tests/unit/test_dmarc.c and tests/fuzz/dmarc_fuzzer.c: a reason when
 * (and only when) refused, counts within limits.h, the identity of a report that was read,
 * alignment as derived, and every string kept valid UTF-8 without control bytes and at most
 * BP_MAX_DMARC_FIELD_BYTES.
 */
#ifndef BOUNCEPIPE_DMARC_CHECK_H
#define BOUNCEPIPE_DMARC_CHECK_H

#include <string.h>

#include "bouncepipe/dmarc.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

/* NULL when @s is a clean string (or NULL), else @what. */
static inline const char *bp_dmarc_check_str(const char *s, const char *what)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    if (n > BP_MAX_DMARC_FIELD_BYTES || !bp_utf8_valid(s, n))
        return what;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return what;
    return NULL;
}

/* The first of the @p n strings @p v that is not clean (its @p what), or NULL. */
static inline const char *bp_dmarc_check_strs(const char *const *v, const char *const *what, size_t n)
{
    const char *bad = NULL;
    for (size_t i = 0; i < n && bad == NULL; i++)
        bad = bp_dmarc_check_str(v[i], what[i]);
    return bad;
}

/** @return NULL when @p r keeps every promise, else a description of the first it breaks. */
static inline const char *bp_dmarc_check_report(const bp_dmarc_report *r)
{
    const char *bad = NULL;
    if (r->outcome == BP_DMARC_REFUSED &&
        (r->reason == NULL || (r->refusal != BP_ERR_LIMIT && r->refusal != BP_ERR_PARSE)))
        return "refused without a reason or with another status";
    if (r->outcome != BP_DMARC_REFUSED && r->reason != NULL)
        return "a reason without a refusal";
    if (r->xml_bytes > BP_MAX_DMARC_XML_BYTES || r->n_records > BP_MAX_DMARC_RECORDS ||
        r->n_errors > BP_MAX_DMARC_LIST_ITEMS)
        return "a count over its limit";
    if (r->outcome == BP_DMARC_READ && (r->org_name == NULL || r->report_id == NULL || r->domain == NULL))
        return "read without org_name, report_id or domain";
    if (r->outcome == BP_DMARC_READ && r->messages_pass > r->messages)
        return "more messages passing than messages";
    const struct {
        const char *s, *what;
    } fields[] = {
        {r->reason, "reason"},
        {r->filename, "filename"},
        {r->subject_domain, "subject_domain"},
        {r->subject_submitter, "subject_submitter"},
        {r->subject_report_id, "subject_report_id"},
        {r->name_receiver, "name_receiver"},
        {r->name_domain, "name_domain"},
        {r->xml_namespace, "xml_namespace"},
        {r->version, "version"},
        {r->org_name, "org_name"},
        {r->email, "email"},
        {r->extra_contact_info, "extra_contact_info"},
        {r->report_id, "report_id"},
        {r->generator, "generator"},
        {r->domain, "domain"},
        {r->adkim, "adkim"},
        {r->aspf, "aspf"},
        {r->p, "p"},
        {r->sp, "sp"},
        {r->np, "np"},
        {r->fo, "fo"},
        {r->testing, "testing"},
        {r->discovery_method, "discovery_method"},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if ((bad = bp_dmarc_check_str(fields[i].s, fields[i].what)) != NULL)
            return bad;
    for (size_t i = 0; i < r->n_errors; i++)
        if ((bad = bp_dmarc_check_str(r->errors[i], "error")) != NULL)
            return bad;
    for (size_t i = 0; i < r->n_records; i++) {
        const bp_dmarc_record *c = &r->records[i];
        if (c->n_dkim + c->n_spf > BP_MAX_DMARC_AUTH_RESULTS || c->n_reasons > BP_MAX_DMARC_LIST_ITEMS)
            return "a record's count over its limit";
        if (r->outcome == BP_DMARC_READ && c->source_ip == NULL)
            return "a record read without source_ip";
        if (c->dmarc_pass != (c->dkim_aligned || c->spf_aligned))
            return "dmarc_pass is not dkim_aligned || spf_aligned";
        const char *rf[] = {c->source_ip,   c->disposition,   c->dkim,       c->spf,
                            c->header_from, c->envelope_from, c->envelope_to};
        for (size_t j = 0; j < sizeof(rf) / sizeof(rf[0]); j++)
            if ((bad = bp_dmarc_check_str(rf[j], "a record field")) != NULL)
                return bad;
        for (size_t j = 0; j < c->n_reasons && bad == NULL; j++)
            if ((bad = bp_dmarc_check_str(c->reasons[j].type, "reason type")) == NULL)
                bad = bp_dmarc_check_str(c->reasons[j].comment, "reason comment");
        static const char *const dkim_what[] = {"dkim domain", "dkim selector", "dkim result", "dkim human_result"};
        static const char *const spf_what[] = {"spf domain", "spf scope", "spf result", "spf human_result"};
        for (size_t j = 0; j < c->n_dkim && bad == NULL; j++) {
            const bp_dmarc_dkim *d = &c->dkim_results[j];
            const char *v[] = {d->domain, d->selector, d->result, d->human_result};
            bad = bp_dmarc_check_strs(v, dkim_what, 4);
        }
        for (size_t j = 0; j < c->n_spf && bad == NULL; j++) {
            const bp_dmarc_spf *s = &c->spf_results[j];
            const char *v[] = {s->domain, s->scope, s->result, s->human_result};
            bad = bp_dmarc_check_strs(v, spf_what, 4);
        }
        if (bad != NULL)
            return bad;
    }
    return NULL;
}

#endif
