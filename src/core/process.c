/*
 * process.c - the core (process.h): bytes to events, and events to what is kept.
 *
 * bp_process_message(): MIME (GMime adapter; it also reads the message's own Date with
 * GMime's parser) -> report (family parsers) -> classify (rules, codes, policy), with the
 * classification context built from the pipeline and the envelope; reading the report and
 * matching the rules run under the message's effort budget (effort.h).  A message GMime
 * cannot read still yields one unrecognized event, so that nothing that arrives goes
 * unaccounted.
 * bp_message_fingerprint(): the idempotency key (GLib's SHA-256).
 * bp_finish_decide() / bp_finish_record() / bp_finish_acct() / bp_finish_message(): the
 * "record it or quarantine it" decision and the store units, one code path for pipe, replay
 * and acct (record_unit()), which also hands the store the outbox rows of the configured
 * webhook endpoints (docs/webhooks.md).
 */
#include "bouncepipe/process.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/quarantine.h"
#include "bouncepipe/signals.h"
#include "bouncepipe/text.h"

/* Offset of the body: after the first empty line (LF or CRLF or CR line ends). */
static size_t body_offset(const char *b, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (b[i] == '\n' && (b[i + 1] == '\n' || (b[i + 1] == '\r' && i + 2 < len && b[i + 2] == '\n')))
            return i + (b[i + 1] == '\n' ? 2 : 3);
        if (b[i] == '\r' && b[i + 1] == '\r')
            return i + 2;
    }
    return len;
}

/* Message-ID header value, from the raw header block (no MIME parse needed). */
static void message_id_span(const char *b, size_t hdr_len, const char **id, size_t *id_len)
{
    *id = NULL;
    *id_len = 0;
    size_t i = 0;
    while (i < hdr_len) {
        const char *line = b + i;
        const char *nl = memchr(line, '\n', hdr_len - i);
        size_t llen = nl != NULL ? (size_t)(nl - line) : hdr_len - i;
        if (llen > 11 && bp_starts_with_ci(line, "Message-ID:")) {
            *id = line + 11;
            *id_len = llen - 11;
            while (*id_len > 0 && ((*id)[0] == ' ' || (*id)[0] == '\t')) {
                (*id)++;
                (*id_len)--;
            }
            while (*id_len > 0 && ((*id)[*id_len - 1] == '\r' || (*id)[*id_len - 1] == ' '))
                (*id_len)--;
            return;
        }
        i += llen + 1;
    }
}

const char *bp_message_fingerprint(bp_arena *arena, const char *bytes, size_t len)
{
    size_t body = body_offset(bytes, len);
    const char *id;
    size_t id_len;
    message_id_span(bytes, body, &id, &id_len);
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256); /* owned: freed below */
    if (sum == NULL)
        return NULL;
    if (id != NULL)
        g_checksum_update(sum, (const guchar *)id, (gssize)id_len);
    g_checksum_update(sum, (const guchar *)"\n", 1);
    /* body with CR dropped (a bare CR counts as LF), so CRLF and LF copies of one message
     * agree; the CRs are found with memchr, not a byte loop (docs/performance.md) */
    size_t start = body;
    while (start < len) {
        const char *cr = memchr(bytes + start, '\r', len - start);
        size_t i = cr != NULL ? (size_t)(cr - bytes) : len;
        if (i > start)
            g_checksum_update(sum, (const guchar *)bytes + start, (gssize)(i - start));
        if (cr == NULL)
            break;
        if (i + 1 >= len || bytes[i + 1] != '\n')
            g_checksum_update(sum, (const guchar *)"\n", 1);
        start = i + 1;
    }
    const char *hex = bp_arena_strdup(arena, g_checksum_get_string(sum));
    g_checksum_free(sum);
    return hex;
}

bp_status bp_process_message(const bp_pipeline *p, const bp_envelope *env, unsigned flags, const char *bytes,
                             size_t len, bp_arena *arena, bp_process_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!(flags & BP_PROCESS_NO_FINGERPRINT)) {
        out->fingerprint = bp_message_fingerprint(arena, bytes, len);
        if (out->fingerprint == NULL)
            return BP_ERR_NOMEM;
    }
    bp_status st = bp_mime_parse(bytes, len, arena, &out->mime);
    if (st == BP_ERR_NOMEM)
        return st;
    out->mime_failed = st != BP_OK; /* then the report stays BP_REPORT_NONE: one unrecognized event */
    bp_classify_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.rules = p->rules;
    ctx.policy = &p->policy;
    ctx.verp = p->verp;
    if (env != NULL) {
        ctx.envelope_rcpt = env->rcpt;
        ctx.envid = env->envid;
        ctx.source = env->source;
    }
    ctx.explain = (flags & BP_PROCESS_EXPLAIN) != 0;
    /* reading the report and matching the rules run under the message's effort budget */
    bp_effort_begin(&out->effort);
    st = BP_OK;
    if (!out->mime_failed) {
        st = bp_report_parse(&out->mime, p->report, arena, &out->report);
        out->date = out->mime.date;
        out->message_id = out->report.message_id;
    }
    if (st == BP_OK)
        st = bp_classify(&ctx, &out->report, arena, &out->events, &out->n_events, &out->explains);
    if (st == BP_OK) /* where each message came from: sending IP, VMTA, stream, receiver */
        st = bp_report_signals(p->signals, p->rules, &out->report, out->events, out->n_events, arena);
    bp_effort_end(&out->effort);
    if (st == BP_OK && out->effort.cut == BP_EFFORT_MEMORY)
        st = BP_ERR_NOMEM; /* a search had no answer: the events would be a guess */
    if (st == BP_OK && bp_arena_failed(arena))
        st = BP_ERR_NOMEM; /* a field that could not be copied would read as absent */
    if (st != BP_OK)
        return st;
    for (size_t i = 0; i < out->n_events; i++)
        out->events[i].fingerprint = out->fingerprint;
    return BP_OK;
}

void bp_pipeline_init(bp_pipeline *p)
{
    memset(p, 0, sizeof(*p));
    bp_policy_default(&p->policy);
}

int bp_process_unrecognized(const bp_process_result *res)
{
    for (size_t i = 0; i < res->n_events; i++)
        if (res->events[i].type != BP_EVENT_UNRECOGNIZED)
            return 0;
    return 1;
}

bp_keep bp_finish_decide(const bp_pipeline *p, const bp_process_result *res)
{
    return p->quarantine_dir != NULL && bp_process_unrecognized(res) ? BP_KEEP_QUARANTINE : BP_KEEP_RECORD;
}

/* One unit of evidence: the one way events reach the store.  With webhook endpoints, the
 * outbox rows go with it: for each event, each endpoint that wants it, under the event's key
 * (the unit's key, the event's index, its type and recipient); the store writes them in the
 * ledger's transaction and decides nothing about them. */
static bp_status record_unit(const bp_pipeline *p, bp_store *store, const char *key, const char *message_id,
                             const char *source, long long when, const char *mta_category, const bp_event *events,
                             size_t n, bp_record_result *rr)
{
    bp_store_unit unit;
    bp_store_outbox_want *wants = NULL;
    char(*keys)[33] = NULL;
    size_t n_wants = 0;
    memset(&unit, 0, sizeof(unit));
    unit.fingerprint = key;
    unit.message_id = message_id;
    unit.source = source;
    unit.evidence_time = when;
    unit.mta_category = mta_category;
    if (p != NULL && p->n_webhooks > 0 && key != NULL && n > 0) {
        wants = bp_calloc(n * p->n_webhooks, sizeof(*wants)); /* n and n_webhooks are bounded (limits.h, webhook.h) */
        keys = bp_malloc(n * sizeof(*keys));
        if (wants == NULL || keys == NULL) {
            free(wants);
            free(keys);
            return BP_ERR_NOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            int keyed = 0;
            for (size_t k = 0; k < p->n_webhooks; k++) {
                if (!bp_webhook_wants(&p->webhooks[k], &events[i]))
                    continue;
                if (!keyed)
                    bp_webhook_event_key(key, (unsigned)i, &events[i], keys[i]);
                keyed = 1;
                wants[n_wants].event_index = i;
                wants[n_wants].endpoint = p->webhooks[k].name;
                wants[n_wants++].event_key = keys[i];
            }
        }
    }
    bp_status st = bp_store_record_with_outbox(store, &unit, events, n, wants, n_wants, rr);
    free(wants);
    free(keys);
    return st;
}

bp_status bp_finish_record(const bp_pipeline *p, bp_store *store, const bp_process_result *res, bp_record_result *rr)
{
    return record_unit(p, store, res->fingerprint, res->message_id, res->events[0].source, res->date, NULL, res->events,
                       res->n_events, rr);
}

/* The accounting watermark's host: the configured one, else this machine's name. */
static const char *signal_host(const bp_acct_result *res)
{
    static char name[256];
    if (res->signal_host != NULL)
        return res->signal_host;
    if (name[0] == '\0' && gethostname(name, sizeof(name) - 1) != 0)
        snprintf(name, sizeof(name), "localhost");
    return name;
}

bp_status bp_finish_acct(const bp_pipeline *p, bp_store *store, const bp_acct_result *res, int record_deliveries,
                         bp_acct_kept *kept)
{
    long long when = res->time_logged_unix > 0 ? res->time_logged_unix : 0;
    /* a count needs an hour: a record without a time counts now */
    long long counted_at = when > 0 ? when : (long long)time(NULL);
    *kept = BP_ACCT_KEPT_NEW;
    if (res->disposition == BP_ACCT_DEFERRAL) {
        *kept = BP_ACCT_KEPT_DEFERRAL;
        return bp_store_signal_acct(store, signal_host(res), counted_at, &res->event, BP_SIGNAL_DEFERRED, NULL);
    }
    if (res->disposition == BP_ACCT_DELIVERY && !record_deliveries) {
        *kept = BP_ACCT_KEPT_DELIVERY;
        bp_status st = bp_store_record_delivery(store, res->event.recipient, when);
        if (st == BP_OK)
            st = bp_store_signal_acct(store, signal_host(res), counted_at, &res->event, BP_SIGNAL_DELIVERED, NULL);
        return st;
    }
    /* PowerMTA's bounceCat goes beside our category in the ledger, never deciding */
    bp_record_result rr;
    bp_status st =
        record_unit(p, store, res->key, NULL, res->event.source, when, res->pmta_category, &res->event, 1, &rr);
    if (st == BP_OK && rr.outcome == BP_RECORD_DUPLICATE)
        *kept = BP_ACCT_KEPT_DUPLICATE;
    return st;
}

bp_status bp_finish_message(const bp_pipeline *p, bp_store *store, const bp_process_result *res, const char *bytes,
                            size_t len, bp_finish_result *out)
{
    memset(out, 0, sizeof(*out));
    int quarantine = bp_finish_decide(p, res) == BP_KEEP_QUARANTINE;
    if (quarantine) {
        int seen = 0, existed = 0;
        out->step = BP_FINISH_SEEN;
        bp_status st = bp_store_seen(store, res->fingerprint, &seen);
        if (st != BP_OK)
            return st;
        if (seen != 0) {
            out->outcome = BP_FINISHED_KEPT_BEFORE;
            return BP_OK;
        }
        out->step = BP_FINISH_QUARANTINE;
        st = bp_quarantine_write(p->quarantine_dir, res->fingerprint, bytes, len, &existed);
        if (st != BP_OK) {
            out->error_number = errno;
            return st;
        }
    }
    out->step = BP_FINISH_RECORD;
    bp_record_result rr;
    memset(&rr, 0, sizeof(rr));
    bp_status st = bp_store_begin(store);
    if (st == BP_OK) {
        st = bp_finish_record(p, store, res, &rr);
        if (st == BP_OK)
            st = bp_store_commit(store);
        else
            bp_store_rollback(store);
    }
    if (st != BP_OK)
        return st;
    out->suppressed = rr.suppressed;
    out->outcome = rr.outcome == BP_RECORD_DUPLICATE  ? BP_FINISHED_DUPLICATE
                   : rr.outcome == BP_RECORD_UPGRADED ? BP_FINISHED_UPGRADED
                   : quarantine                       ? BP_FINISHED_QUARANTINED
                                                      : BP_FINISHED_RECORDED;
    return BP_OK;
}

void bp_pipeline_acct_options(const bp_pipeline *p, const char *source, int transient, bp_acct_options *out)
{
    memset(out, 0, sizeof(*out));
    out->rules = p->rules;
    out->policy = &p->policy;
    out->verp = p->verp;
    out->source = source;
    out->transient = transient;
    out->rcpt_headers = p->report != NULL ? p->report->rcpt_headers : NULL;
    out->signals = p->signals;
    out->signal_host = p->signal_host;
}
