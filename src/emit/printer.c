/*
 * printer.c - events to NDJSON, text or CSV.
 *
 * The field list is one table (fields[]) in contract order, read by bp_event_write_fields()
 * for NDJSON and CSV, both written by the structured writer (writer.c: JSON escaping of every
 * control byte so that no input can break a line of NDJSON; CSV cells that start with = + - @
 * (or tab / CR) get a leading apostrophe, the OWASP recipe against formula injection in
 * spreadsheet software).  Strings are cleaned by the parsers (control bytes masked, valid
 * UTF-8) and masked again by the writer, whatever produced them (writer.h).  The text format
 * is a layout for people, formatted here with every value masked (a file name may hold a line
 * break) and handed to the writer, which masks the layout but for its line ends.  After the
 * table come the fields of a DMARC aggregate report (schema 1.4), null on every other event:
 * its period as UTC times, its counts as numbers.
 */
#include "bouncepipe/emit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"

struct bp_printer {
    bp_writer *w;
    bp_writer_format format;
    bp_strbuf text; /* the text layout of one event */
};

typedef const char *(*field_get)(const bp_event *e);

#define GETTER(name)                                                                                                   \
    static const char *get_##name(const bp_event *e)                                                                   \
    {                                                                                                                  \
        return e->name;                                                                                                \
    }
GETTER(source)
GETTER(message_id)
GETTER(recipient)
GETTER(recipient_from)
GETTER(status)
GETTER(smtp_code)
GETTER(diagnostic)
GETTER(category)
GETTER(feedback_type)
GETTER(rule)
GETTER(reporting_mta)
GETTER(remote_mta)
GETTER(arrival_date)
GETTER(source_ip)
GETTER(envid)
GETTER(job_id)
GETTER(original_message_id)
GETTER(blocklist)
GETTER(smtp_command)
GETTER(sending_ip)
GETTER(vmta)
GETTER(stream)
GETTER(receiver)
GETTER(listed)
#undef GETTER
static const char *get_type(const bp_event *e)
{
    return bp_event_type_name(e->type);
}
static const char *get_action(const bp_event *e)
{
    return bp_action_name(e->action);
}

static const struct {
    const char *name;
    field_get get;
} fields[] = {
    {"source", get_source},
    {"message_id", get_message_id},
    {"type", get_type},
    {"recipient", get_recipient},
    {"recipient_from", get_recipient_from},
    {"status", get_status},
    {"smtp_code", get_smtp_code},
    {"diagnostic", get_diagnostic},
    {"category", get_category},
    {"feedback_type", get_feedback_type},
    {"action", get_action},
    {"rule", get_rule},
    {"reporting_mta", get_reporting_mta},
    {"remote_mta", get_remote_mta},
    {"arrival_date", get_arrival_date},
    {"source_ip", get_source_ip},
    {"envid", get_envid},
    {"job_id", get_job_id},
    {"original_message_id", get_original_message_id},
    {"blocklist", get_blocklist},
    {"smtp_command", get_smtp_command},
    /* 1.4: write_dmarc_fields() */
    /* 1.5: where the message came from (docs/signals.md) */
    {"sending_ip", get_sending_ip},
    {"vmta", get_vmta},
    {"stream", get_stream},
    {"receiver", get_receiver},
    {"listed", get_listed},
};
#define N_FIELDS       (sizeof(fields) / sizeof(fields[0]))
#define N_BEFORE_DMARC 21 /* source .. smtp_command: the fields up to schema 1.3 */
_Static_assert(N_FIELDS > N_BEFORE_DMARC, "the signal fields follow the DMARC fields");

/* The DMARC aggregate report's fields (schema 1.4), after the table's. */
static bp_status write_dmarc_fields(bp_writer *w, const bp_dmarc_report *r)
{
    static const char *const text_names[] = {"dmarc_org",   "dmarc_report_id", "dmarc_domain",
                                             "dmarc_begin", "dmarc_end",       "dmarc_p"};
    static const char *const count_names[] = {"dmarc_records", "dmarc_messages", "dmarc_messages_pass"};
    char begin[32], end[32];
    const char *values[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (r != NULL) {
        values[0] = r->org_name;
        values[1] = r->report_id;
        values[2] = r->domain;
        values[3] = bp_utc_text(r->begin, BP_UTC_TIME, begin, sizeof(begin));
        values[4] = bp_utc_text(r->end, BP_UTC_TIME, end, sizeof(end));
        values[5] = r->p;
    }
    bp_status st = bp_writer_strings(w, text_names, values, 6);
    const unsigned long long counts[3] = {r != NULL ? r->n_records : 0, r != NULL ? r->messages : 0,
                                          r != NULL ? r->messages_pass : 0};
    for (size_t i = 0; i < 3 && st == BP_OK; i++) {
        st = bp_writer_key(w, count_names[i]);
        if (st == BP_OK)
            st = r != NULL ? bp_writer_integer(w, counts[i] > (unsigned long long)LLONG_MAX ? LLONG_MAX
                                                                                            : (long long)counts[i])
                           : bp_writer_null(w);
    }
    return st;
}

bp_status bp_event_write_fields(bp_writer *w, const bp_event *e)
{
    const char *names[N_FIELDS], *values[N_FIELDS];
    for (size_t i = 0; i < N_FIELDS; i++) {
        names[i] = fields[i].name;
        values[i] = fields[i].get(e);
    }
    /* in contract order: the fields up to 1.3, the DMARC fields (1.4), the signal fields (1.5) */
    bp_status st = bp_writer_strings(w, names, values, N_BEFORE_DMARC);
    if (st == BP_OK)
        st = write_dmarc_fields(w, e->dmarc);
    return st == BP_OK
               ? bp_writer_strings(w, names + N_BEFORE_DMARC, values + N_BEFORE_DMARC, N_FIELDS - N_BEFORE_DMARC)
               : st;
}

bp_status bp_event_json_object(bp_strbuf *sb, const bp_event *e)
{
    bp_writer *w = bp_writer_new_buffer(sb, BP_WRITER_JSON);
    if (w == NULL)
        return BP_ERR_NOMEM;
    bp_writer_begin_map(w);
    bp_event_write_fields(w, e);
    bp_writer_end(w);
    bp_status st = bp_writer_flush(w); /* the object into @p sb */
    bp_writer_free(w);
    return st;
}

bp_printer *bp_printer_new(FILE *out, bp_writer_format format)
{
    bp_printer *p = bp_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->format = format;
    /* the text layout is masked by a JSON writer's raw output (format_text()) */
    p->w = bp_writer_new(out, format == BP_WRITER_CSV ? BP_WRITER_CSV : BP_WRITER_JSON);
    if (p->w == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void bp_printer_free(bp_printer *p)
{
    if (p == NULL)
        return;
    bp_writer_free(p->w);
    bp_strbuf_free(&p->text);
    free(p);
}

/* Untrusted text into the layout, masked (text.h): a file name or a stored value with a line
 * break or an escape in it stays on its line. */
static bp_status put_masked(bp_strbuf *sb, const char *s)
{
    return bp_text_mask_append(sb, s, strlen(s), 0);
}

static bp_status format_text(bp_strbuf *sb, const bp_event *e)
{
    const char *action = bp_action_name(e->action);
    const char *what = e->category != NULL ? e->category : e->feedback_type;
    bp_status st = bp_strbuf_printf(sb, "%-9s %-10s ", action != NULL ? action : "-", bp_event_type_name(e->type));
    if (st == BP_OK)
        st = put_masked(sb, e->recipient != NULL ? e->recipient : "(no recipient)");
    if (st == BP_OK && what != NULL && (st = bp_strbuf_puts(sb, "  ")) == BP_OK)
        st = put_masked(sb, what);
    if (st == BP_OK && (e->status != NULL || e->smtp_code != NULL))
        st = bp_strbuf_printf(sb, " [%s%s%s]", e->smtp_code ? e->smtp_code : "", e->smtp_code && e->status ? " " : "",
                              e->status ? e->status : "");
    if (st == BP_OK && e->rule != NULL && (st = bp_strbuf_puts(sb, " rule=")) == BP_OK)
        st = put_masked(sb, e->rule);
    if (st == BP_OK && e->blocklist != NULL && (st = bp_strbuf_puts(sb, " blocklist=")) == BP_OK)
        st = put_masked(sb, e->blocklist);
    if (st == BP_OK && e->listed != NULL && (st = bp_strbuf_puts(sb, " listed=")) == BP_OK)
        st = put_masked(sb, e->listed);
    if (st == BP_OK && e->smtp_command != NULL && (st = bp_strbuf_puts(sb, " at=")) == BP_OK)
        st = put_masked(sb, e->smtp_command);
    if (st == BP_OK && (st = bp_strbuf_puts(sb, "\n          ")) == BP_OK)
        st = put_masked(sb, e->source != NULL ? e->source : "-");
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '\n');
    /* where the message came from, and where each of that was found (signal_fields.h) */
    const char *const sig[][3] = {{"ip", e->sending_ip, e->sending_ip_from},
                                  {"vmta", e->vmta, e->vmta_from},
                                  {"stream", e->stream, e->stream_from},
                                  {"receiver", e->receiver, e->receiver_from}};
    size_t shown = 0;
    for (size_t i = 0; st == BP_OK && i < sizeof(sig) / sizeof(sig[0]); i++) {
        if (sig[i][1] == NULL)
            continue;
        st = bp_strbuf_printf(sb, "%s%s=", shown++ ? " " : "          from: ", sig[i][0]);
        if (st == BP_OK)
            st = put_masked(sb, sig[i][1]);
        if (st == BP_OK && sig[i][2] != NULL && (st = bp_strbuf_puts(sb, " [")) == BP_OK &&
            (st = put_masked(sb, sig[i][2])) == BP_OK)
            st = bp_strbuf_putc(sb, ']');
    }
    if (st == BP_OK && shown > 0)
        st = bp_strbuf_putc(sb, '\n');
    if (st == BP_OK && e->diagnostic != NULL && (st = bp_strbuf_puts(sb, "          \"")) == BP_OK &&
        (st = put_masked(sb, e->diagnostic)) == BP_OK)
        st = bp_strbuf_puts(sb, "\"\n");
    if (st == BP_OK && e->dmarc != NULL) {
        const bp_dmarc_report *r = e->dmarc;
        char begin[32], end[32];
        if ((st = bp_strbuf_puts(sb, "          DMARC ")) == BP_OK && (st = put_masked(sb, r->domain)) == BP_OK &&
            (st = bp_strbuf_puts(sb, " from ")) == BP_OK && (st = put_masked(sb, r->org_name)) == BP_OK &&
            (st = bp_strbuf_puts(sb, " (")) == BP_OK && (st = put_masked(sb, r->report_id)) == BP_OK &&
            (st = bp_strbuf_printf(sb, "): %s .. %s, p=", bp_utc_text(r->begin, BP_UTC_TIME, begin, sizeof(begin)),
                                   bp_utc_text(r->end, BP_UTC_TIME, end, sizeof(end)))) == BP_OK &&
            (st = put_masked(sb, r->p != NULL ? r->p : "-")) == BP_OK)
            st = bp_strbuf_printf(sb, ", %zu records, %llu messages, %llu pass\n", r->n_records,
                                  (unsigned long long)r->messages, (unsigned long long)r->messages_pass);
    }
    return st;
}

bp_status bp_printer_event(bp_printer *p, const bp_event *e)
{
    bp_status st = BP_OK;
    switch (p->format) {
    case BP_WRITER_TEXT:
        bp_strbuf_clear(&p->text);
        st = format_text(&p->text, e);
        if (st == BP_OK)
            st = bp_writer_raw(p->w, p->text.data, p->text.len);
        break;
    case BP_WRITER_CSV: /* the header is the first row's keys */
        st = bp_writer_begin_map(p->w);
        if (st == BP_OK)
            st = bp_event_write_fields(p->w, e);
        if (st == BP_OK)
            st = bp_writer_end(p->w);
        break;
    case BP_WRITER_JSON:
        st = bp_writer_begin_map(p->w);
        if (st == BP_OK)
            st = bp_event_write_fields(p->w, e);
        if (st == BP_OK)
            st = bp_writer_end(p->w);
        if (st == BP_OK)
            st = bp_writer_separator(p->w);
        break;
    }
    return st;
}
