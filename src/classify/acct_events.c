/*
 * acct_events.c - one PowerMTA accounting record to one event.
 *
 * bp_acct_record_event() reads a record's values by name (the source layer's acct_csv.c
 * took them out of the CSV by column name) and decides what the record means:
 *
 *   b, rb   a bounce: PowerMTA's dsnStatus ("5.1.1 (bad destination mailbox address)") and
 *           dsnDiag ("smtp;550 5.1.1 <a@b>... User unknown") are classified with our rules and
 *           the RFC 3463 table exactly as a DSN's fields would be, and the policy decides the
 *           action; PowerMTA's own bounceCat is kept beside ours (pmta_category), never used
 *           to decide.  A 4.x.x status is not final (an expired message is not a dead address).
 *   rs      a remote status report: its dsnAction decides (failed: bounce, delayed: delay,
 *           delivered/relayed/expanded: delivery), else the status class.
 *   f       a complaint, read by the one complaint model (complaint.h) that reads complaints
 *           arriving by mail: the feedback type from feedbackType (else arf_Feedback-Type;
 *           dkim and spf are auth-failure, unknown types other); the recipient from rcpt,
 *           arf_Original-Rcpt-To or arf_Removal-Recipient (decoded when it is one of our own
 *           VERP bounce addresses), else the original's headers PowerMTA wrote as header_NAME
 *           columns (X-HmXmrOriginalRecipient, [report] rcpt_headers, a single To:), else the
 *           VERP-decoded header_Return-Path, else the VERP-decoded orig; a redacted address
 *           ("redacted@", "xxxxxxxx@") is nobody: the complaint is recorded without one.
 *           The source IP is dlvSourceIp, else arf_Source-IP.
 *   d       a delivery: resets soft-bounce counters (BP_ACCT_DELIVERY).
 *   t       a transient failure: classified as a delay but only counted, as a deferral of its
 *           sending IP, VMTA, stream and receiver (BP_ACCT_DEFERRAL); a delay event when
 *           opts->transient.
 *   other   r, tq and unknown types are ignored (BP_ACCT_IGNORED).
 *
 * A bounce PowerMTA generated itself because the recipient is in its suppression-list
 * (dsnDiag "... suppression list", no dsnMta: the list bouncepipe exported, fed back) is
 * BP_ACCT_IGNORED: it is no new evidence about the address, and counting it would escalate
 * soft bounces or stats.  The job id is jobId, else the original's header_X-job.
 * Every record's event gets its signal fields (signal_fields.h): the record's own columns
 * (dlvSourceIp, vmta, header_X-Traffic-Type, as configured), then the text and the receiver.
 * A bounce, delay or delivery without a usable recipient is BP_ACCT_NO_RECIPIENT (a deferral
 * is counted without one).
 * Long type names (delivery, bounce, ...) are accepted beside the letters.
 *
 * timeLogged is parsed in the three forms the guide documents (bp_acct_parse_time()); a
 * time in none of them leaves time_logged_unix at -1 and the caller warns with the line.
 *
 * bp_acct_record_key() computes the idempotency key from named values, so that the piped
 * stream and a file copy with the same fields in another order agree.
 *
 * Ownership: every string of a result is an arena copy; nothing points into the reader.
 */
#include "bouncepipe/acct.h"

#include <ctype.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bouncepipe/classify.h"
#include "bouncepipe/complaint.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"

/* Record types, short and long names. */
typedef enum { T_UNKNOWN, T_DELIVERY, T_BOUNCE, T_TRANSIENT, T_FEEDBACK, T_REMOTE_BOUNCE, T_REMOTE_STATUS } rtype;

static rtype record_type(const char *s)
{
    static const struct {
        const char *name;
        rtype t;
    } names[] = {
        {"d", T_DELIVERY},       {"delivery", T_DELIVERY},
        {"b", T_BOUNCE},         {"bounce", T_BOUNCE},
        {"t", T_TRANSIENT},      {"transient", T_TRANSIENT},
        {"f", T_FEEDBACK},       {"feedback-loop", T_FEEDBACK},
        {"rb", T_REMOTE_BOUNCE}, {"remote-bounce", T_REMOTE_BOUNCE},
        {"rs", T_REMOTE_STATUS}, {"remote-status", T_REMOTE_STATUS},
    };
    if (s == NULL)
        return T_UNKNOWN;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].t;
    return T_UNKNOWN;
}

/* Types PowerMTA writes that carry nothing for us: received, transient-queue. */
static int known_other_type(const char *s)
{
    return s != NULL && (strcasecmp(s, "r") == 0 || strcasecmp(s, "receipt") == 0 || strcasecmp(s, "tq") == 0 ||
                         strcasecmp(s, "transient-queue") == 0);
}

/* The UTC offset at @p p ("+HHMM", "-HH:MM", "Z", or nothing), in seconds east; *ok
 * cleared when something else follows the time. */
static long long utc_offset(const char *p, int *ok)
{
    while (*p == ' ')
        p++;
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0'))
        return 0;
    if (*p != '+' && *p != '-') {
        *ok = 0;
        return 0;
    }
    int sign = *p == '-' ? -1 : 1;
    p++;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) {
        *ok = 0;
        return 0;
    }
    int hh = (p[0] - '0') * 10 + (p[1] - '0');
    p += 2;
    if (*p == ':')
        p++;
    int mm = 0;
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
        mm = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
    }
    if (*p != '\0' || hh > 23 || mm > 59)
        *ok = 0;
    return sign * (hh * 3600LL + mm * 60LL);
}

long long bp_acct_parse_time(const char *s)
{
    if (s == NULL)
        return -1;
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    size_t digits = strspn(s, "0123456789");
    /* Unix seconds (PowerMTA 4), maybe with a fraction */
    if (digits > 0 && digits <= 12 &&
        (digits == n || (s[digits] == '.' && strspn(s + digits + 1, "0123456789") == n - digits - 1)))
        return strtoll(s, NULL, 10);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = NULL;
    if (digits == 4 && s[4] == '-')
        p = strptime(s, "%Y-%m-%d", &tm); /* YYYY-MM-DD HH:MM:SS+HHMM (PowerMTA 5) */
    else if ((digits == 1 || digits == 2) && s[digits] == '/')
        p = strptime(s, "%m/%d/%Y", &tm); /* MM/DD/YYYY HH:MM:SS+HHMM */
    if (p == NULL || (*p != ' ' && *p != 'T'))
        return -1;
    p = strptime(p + 1, "%H:%M:%S", &tm);
    if (p == NULL || tm.tm_year < 70)
        return -1;
    int ok = 1;
    long long offset = utc_offset(p, &ok);
    if (!ok)
        return -1;
    return (long long)timegm(&tm) - offset; /* local time minus its offset is UTC */
}

/* dsnDiag carries the diagnostic type first ("smtp;550 ..."): the text starts after it. */
static const char *diag_text(const char *diag)
{
    if (diag == NULL)
        return NULL;
    const char *semi = strchr(diag, ';');
    if (semi != NULL && semi - diag <= 16) {
        int word = 1;
        for (const char *q = diag; q < semi; q++)
            if (!isalnum((unsigned char)*q) && *q != '-')
                word = 0;
        if (word) {
            diag = semi + 1;
            while (*diag == ' ')
                diag++;
        }
    }
    return *diag != '\0' ? diag : NULL;
}

/* dsnMta is "mx.example.net (192.0.2.25)": the host name is the first word. */
static const char *mta_host(bp_arena *arena, const char *mta)
{
    if (mta == NULL)
        return NULL;
    size_t n = strcspn(mta, " (");
    return n > 0 ? bp_arena_strndup(arena, mta, n) : NULL;
}

static char *clean(bp_arena *arena, const char *s, size_t max)
{
    return s != NULL ? bp_clean_text(arena, s, strlen(s), max) : NULL;
}

static void fill_codes(bp_arena *arena, const char *status_field, const char *diag, bp_event *e)
{
    char status[BP_STATUS_BUF];
    char smtp[4];
    if (status_field != NULL && bp_status_code_parse(status_field, status))
        e->status = bp_arena_strdup(arena, status);
    else if (diag != NULL && bp_status_code_find(diag, strlen(diag), status))
        e->status = bp_arena_strdup(arena, status);
    if (diag != NULL && bp_smtp_code_find(diag, strlen(diag), smtp))
        e->smtp_code = bp_arena_strdup(arena, smtp);
}

/* Classify a failure or delay the way classify.c classifies a DSN block. */
static void classify_failure(const bp_acct_options *o, const bp_policy *policy, bp_arena *arena, const char *mta,
                             bp_event *e)
{
    e->category =
        bp_classify_text(o->rules, arena, e->diagnostic, e->status, e->smtp_code, mta, &e->rule, &e->blocklist);
    e->final = bp_failure_is_final(e->type, e->status);
    e->action = bp_policy_decide(policy, e->type, e->category, NULL, e->final, NULL);
}

/* rs: the DSN action named, else the status class. */
static bp_event_type remote_status_type(const char *action, const char *status)
{
    if (action != NULL) {
        if (strcasecmp(action, "failed") == 0)
            return BP_EVENT_BOUNCE;
        if (strcasecmp(action, "delayed") == 0)
            return BP_EVENT_DELAY;
        if (strcasecmp(action, "delivered") == 0 || strcasecmp(action, "relayed") == 0 ||
            strcasecmp(action, "expanded") == 0)
            return BP_EVENT_DELIVERED;
    }
    if (status != NULL && status[0] == '2')
        return BP_EVENT_DELIVERED;
    if (status != NULL && status[0] == '4')
        return BP_EVENT_DELAY;
    return BP_EVENT_BOUNCE;
}

static void hash_field(GChecksum *sum, const char *name, const char *value)
{
    g_checksum_update(sum, (const guchar *)name, (gssize)strlen(name));
    g_checksum_update(sum, (const guchar *)"=", 1);
    if (value != NULL)
        g_checksum_update(sum, (const guchar *)value, (gssize)strlen(value));
    g_checksum_update(sum, (const guchar *)"\n", 1);
}

const char *bp_acct_record_key(const bp_acct_record *rec, bp_arena *arena)
{
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256); /* owned: freed below */
    if (sum == NULL)
        return NULL;
    if (rec->keyed_by_values) {
        hash_field(sum, "type", rec->type);
        hash_field(sum, "timeLogged", rec->time_logged);
        hash_field(sum, "rcpt", rec->rcpt);
        hash_field(sum, "orig", rec->orig);
        hash_field(sum, "dsnStatus", rec->dsn_status);
        hash_field(sum, "dsnDiag", rec->dsn_diag);
        hash_field(sum, "feedbackType", rec->feedback_type);
        hash_field(sum, "jobId", rec->job_id);
        hash_field(sum, "envId", rec->env_id);
    } else {
        /* no time: only the record's own bytes tell one record from another */
        g_checksum_update(sum, (const guchar *)"raw\n", 4);
        if (rec->raw != NULL)
            g_checksum_update(sum, (const guchar *)rec->raw, (gssize)rec->raw_len);
    }
    const char *key = bp_arena_printf(arena, "acct:%s", g_checksum_get_string(sum));
    g_checksum_free(sum);
    return key;
}

/* Take @p addr as the event's recipient when there is one and it is a valid address
 * (bp_address_check(): a record's bytes are as hostile as a message's). @return non-zero when
 * taken. */
static int take_recipient(bp_event *e, const char *addr, const char *from)
{
    if (addr == NULL || bp_address_check(addr) != NULL)
        return 0;
    e->recipient = addr;
    e->recipient_from = from;
    return 1;
}

/* A VERP-encoded orig: the original message's envelope sender names the recipient. */
static const char *verp_orig(const bp_acct_options *o, const bp_acct_record *rec, bp_arena *arena)
{
    return rec->orig != NULL ? bp_verp_decode(arena, rec->orig, o->verp) : NULL;
}

/* Any column by name, NULL without a column function. */
static const char *column(const bp_acct_record *rec, const char *name)
{
    return rec->column != NULL ? rec->column(rec->column_ctx, name) : NULL;
}

/* bp_complaint_header_fn: a header of the original, as PowerMTA writes it in a header_NAME
 * column. */
static const char *original_header(const void *ctx, const char *name)
{
    char col[128];
    if ((size_t)snprintf(col, sizeof(col), "header_%s", name) >= sizeof(col))
        return NULL;
    return column(ctx, col);
}

/* The complaint's recipient by the one complaint model (complaint.h), in its order. */
static void complaint_recipient(const bp_acct_options *o, const bp_acct_record *rec, bp_arena *arena, bp_event *e)
{
    static const char *const rcpt_columns[] = {"arf_Original-Rcpt-To", "arf_Removal-Recipient"};
    bp_complaint_pick pick = {0};
    int found = bp_complaint_rcpt_field(arena, rec->rcpt, "original-rcpt-to", "rcpt", o->verp, &pick);
    for (size_t i = 0; !found && i < sizeof(rcpt_columns) / sizeof(rcpt_columns[0]); i++)
        found = bp_complaint_rcpt_field(arena, column(rec, rcpt_columns[i]), "original-rcpt-to", rcpt_columns[i],
                                        o->verp, &pick);
    if (!found)
        found = bp_complaint_from_original(original_header, rec, o->rcpt_headers, arena, &pick) ||
                bp_complaint_verp(arena, column(rec, "header_Return-Path"), "header_Return-Path", o->verp, &pick) ||
                bp_complaint_verp(arena, rec->orig, "orig", o->verp, &pick);
    if (found) {
        e->recipient = pick.recipient;
        e->recipient_from = pick.from;
    }
}

/* A bounce PowerMTA made itself because the recipient is in its suppression-list: no remote
 * MTA, and the diagnostic says so. */
static int mta_suppressed(const bp_acct_record *rec)
{
    return rec->dsn_mta == NULL && rec->dsn_diag != NULL && bp_strcasestr(rec->dsn_diag, "suppression list") != NULL;
}

/* A bounce's recipient: rcpt (RCPT TO, what the DSN would call Final-Recipient), then orcpt,
 * then a VERP-encoded orig. */
static void bounce_recipient(const bp_acct_options *o, const bp_acct_record *rec, bp_arena *arena, bp_event *e)
{
    (void)(take_recipient(e, bp_address_normalise(arena, rec->rcpt), "final-recipient") ||
           take_recipient(e, bp_address_normalise(arena, rec->orcpt), "original-recipient") ||
           take_recipient(e, verp_orig(o, rec, arena), "verp"));
}

int bp_acct_record_keyed(const bp_acct_options *o, const bp_acct_record *rec)
{
    switch (record_type(rec->type)) {
    case T_BOUNCE: return !mta_suppressed(rec);
    case T_REMOTE_BOUNCE:
    case T_FEEDBACK: return 1;
    case T_REMOTE_STATUS: return remote_status_type(rec->dsn_action, rec->dsn_status) != BP_EVENT_DELIVERED;
    case T_TRANSIENT: return o->transient;
    default: return 0;
    }
}

bp_status bp_acct_record_event(const bp_acct_options *o, const bp_acct_record *rec, bp_arena *arena,
                               bp_acct_result *out)
{
    memset(out, 0, sizeof(*out));
    out->time_logged_unix = -1;
    bp_policy def;
    const bp_policy *policy = o->policy;
    if (policy == NULL) {
        bp_policy_default(&def);
        policy = &def;
    }
    const char *type_field = rec->type;
    out->record_type = clean(arena, type_field, 32);
    rtype t = record_type(type_field);
    if (t == T_UNKNOWN) {
        out->disposition = BP_ACCT_IGNORED;
        out->unknown_type = t == T_UNKNOWN && !known_other_type(type_field);
        return BP_OK;
    }

    out->key = bp_acct_record_key(rec, arena);
    if (out->key == NULL)
        return BP_ERR_NOMEM;
    out->time_logged = clean(arena, rec->time_logged, 64);
    out->time_logged_unix = bp_acct_parse_time(rec->time_logged);
    out->pmta_category = clean(arena, rec->bounce_cat, 64);

    bp_event *e = &out->event;
    e->source = o->source != NULL ? bp_arena_printf(arena, "%s#%lu", o->source, rec->line) : NULL;
    e->family = "powermta-acct";
    e->fingerprint = out->key;
    e->job_id = rec->job_id != NULL ? clean(arena, rec->job_id, BP_MAX_STORED_TOKEN_BYTES)
                                    : bp_complaint_job(original_header, rec, arena);
    e->envid = clean(arena, rec->env_id, 256);
    e->reporting_mta = clean(arena, rec->reporting_mta, 256);
    e->remote_mta = clean(arena, mta_host(arena, rec->dsn_mta), 256);

    if (t == T_FEEDBACK) {
        e->type = BP_EVENT_COMPLAINT;
        const char *ft = rec->feedback_type != NULL ? rec->feedback_type : column(rec, "arf_Feedback-Type");
        e->feedback_type = bp_feedback_type_normalise(ft);
        e->source_ip = clean(arena, rec->source_ip != NULL ? rec->source_ip : column(rec, "arf_Source-IP"), 64);
        e->final = 1;
        e->action = bp_policy_decide(policy, e->type, NULL, e->feedback_type, 1, NULL);
        complaint_recipient(o, rec, arena, e);
    } else if (t == T_BOUNCE && mta_suppressed(rec)) {
        memset(e, 0, sizeof(*e));
        out->disposition = BP_ACCT_IGNORED;
        out->mta_suppressed = 1;
        return BP_OK;
    } else {
        bounce_recipient(o, rec, arena, e);
        const char *diag = diag_text(rec->dsn_diag);
        e->diagnostic = clean(arena, diag, BP_MAX_DIAGNOSTIC_BYTES);
        fill_codes(arena, rec->dsn_status, e->diagnostic, e);
        switch (t) {
        case T_DELIVERY: e->type = BP_EVENT_DELIVERED; break;
        case T_TRANSIENT: e->type = BP_EVENT_DELAY; break;
        case T_REMOTE_STATUS: e->type = remote_status_type(rec->dsn_action, e->status); break;
        default: e->type = BP_EVENT_BOUNCE; break;
        }
        if (e->type == BP_EVENT_BOUNCE || e->type == BP_EVENT_DELAY) {
            /* a budget without limits: only so that a search PCRE2 ran out of memory for is
             * an error, not "no match" (effort.h, BP_EFFORT_MEMORY) */
            bp_effort effort;
            bp_effort_begin_with(&effort, 0, 0);
            classify_failure(o, policy, arena, e->remote_mta, e);
            bp_effort_end(&effort);
            if (effort.cut == BP_EFFORT_MEMORY)
                return BP_ERR_NOMEM;
        } else {
            e->action = bp_policy_decide(policy, e->type, NULL, NULL, 0, NULL);
        }
    }
    /* where the message left from: the record's columns, then its text, the receiver */
    bp_status st = BP_OK;
    if (rec->column != NULL)
        st = bp_signal_from_source(e, o->signals, BP_SIGNAL_ACCOUNTING, rec->column, rec->column_ctx, arena);
    if (st == BP_OK)
        st = bp_signal_finish(e, o->rules, arena);
    if (st != BP_OK)
        return st;
    out->signal_host = o->signal_host;
    if (t == T_TRANSIENT && !o->transient)
        out->disposition = BP_ACCT_DEFERRAL;
    else if (t == T_FEEDBACK)
        out->disposition = BP_ACCT_EVENT; /* recipient or not: a redacted complaint is evidence */
    else if (e->recipient == NULL)
        out->disposition = BP_ACCT_NO_RECIPIENT;
    else if (e->type == BP_EVENT_DELIVERED)
        out->disposition = BP_ACCT_DELIVERY;
    else
        out->disposition = BP_ACCT_EVENT;
    /* a field that could not be copied reads as absent (a recipient, a diagnostic): not a result */
    return bp_arena_failed(arena) ? BP_ERR_NOMEM : BP_OK;
}
