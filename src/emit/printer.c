/*
 * printer.c - events to NDJSON, text or CSV.
 *
 * The field list is one table (fields[]) read by all three formats, in contract order.
 * Strings are already cleaned by the parsers (control bytes masked, valid UTF-8); the JSON
 * writer still escapes every control byte so that no input can break a line of NDJSON.
 * CSV cells that start with = + - @ (or tab / CR) get a leading apostrophe, the OWASP
 * recipe against formula injection in spreadsheet software.
 */
#include "bouncepipe/emit.h"

#include <stdlib.h>
#include <string.h>

struct bp_printer {
    FILE *out;
    bp_format format;
    bp_strbuf buf;
    int header_done;
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
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

bp_printer *bp_printer_new(FILE *out, bp_format format)
{
    bp_printer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->out = out;
    p->format = format;
    return p;
}

void bp_printer_free(bp_printer *p)
{
    if (p == NULL)
        return;
    bp_strbuf_free(&p->buf);
    free(p);
}

bp_status bp_format_parse(const char *name, bp_format *out)
{
    if (strcmp(name, "ndjson") == 0 || strcmp(name, "json") == 0)
        *out = BP_FORMAT_NDJSON;
    else if (strcmp(name, "text") == 0)
        *out = BP_FORMAT_TEXT;
    else if (strcmp(name, "csv") == 0)
        *out = BP_FORMAT_CSV;
    else
        return BP_ERR_USAGE;
    return BP_OK;
}

/* Bytes a JSON string may carry as they are: not a quote, backslash, control byte or DEL. */
static int json_plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\' && c != 0x7F;
}

bp_status bp_json_string(bp_strbuf *sb, const char *s)
{
    if (s == NULL)
        return bp_strbuf_append(sb, "null", 4);
    bp_status st = bp_strbuf_putc(sb, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (st == BP_OK && *p) {
        /* runs of plain bytes in one append: most of a field is plain, and a call per byte
         * was the printer's whole cost (docs/performance.md) */
        const unsigned char *run = p;
        while (json_plain(*p))
            p++;
        if (p > run)
            st = bp_strbuf_append(sb, (const char *)run, (size_t)(p - run));
        if (st != BP_OK || *p == '\0')
            break;
        switch (*p) {
        case '"': st = bp_strbuf_append(sb, "\\\"", 2); break;
        case '\\': st = bp_strbuf_append(sb, "\\\\", 2); break;
        case '\n': st = bp_strbuf_append(sb, "\\n", 2); break;
        case '\r': st = bp_strbuf_append(sb, "\\r", 2); break;
        case '\t': st = bp_strbuf_append(sb, "\\t", 2); break;
        default: st = bp_strbuf_printf(sb, "\\u%04x", *p);
        }
        p++;
    }
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '"');
    return st;
}

bp_status bp_csv_cell(bp_strbuf *sb, const char *s)
{
    if (s == NULL)
        return BP_OK;
    int risky = strchr("=+-@\t\r", s[0]) != NULL && s[0] != '\0';
    int quote = risky || strpbrk(s, ",\"\n\r") != NULL;
    bp_status st = BP_OK;
    if (quote)
        st = bp_strbuf_putc(sb, '"');
    if (st == BP_OK && risky)
        st = bp_strbuf_putc(sb, '\'');
    for (const char *p = s; st == BP_OK && *p; p++)
        st = *p == '"' ? bp_strbuf_puts(sb, "\"\"") : bp_strbuf_putc(sb, *p);
    if (st == BP_OK && quote)
        st = bp_strbuf_putc(sb, '"');
    return st;
}

bp_status bp_event_json_object(bp_strbuf *sb, const bp_event *e)
{
    bp_status st = bp_strbuf_putc(sb, '{');
    for (size_t i = 0; st == BP_OK && i < N_FIELDS; i++) {
        /* ,"name": by appends: vsnprintf per field cost more than the values (performance.md) */
        if (i > 0)
            st = bp_strbuf_putc(sb, ',');
        if (st == BP_OK)
            st = bp_strbuf_putc(sb, '"');
        if (st == BP_OK)
            st = bp_strbuf_puts(sb, fields[i].name);
        if (st == BP_OK)
            st = bp_strbuf_append(sb, "\":", 2);
        if (st == BP_OK)
            st = bp_json_string(sb, fields[i].get(e));
    }
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '}');
    return st;
}

static bp_status format_ndjson(bp_strbuf *sb, const bp_event *e)
{
    bp_status st = bp_event_json_object(sb, e);
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '\n');
    return st;
}

static bp_status format_text(bp_strbuf *sb, const bp_event *e)
{
    const char *action = bp_action_name(e->action);
    const char *what = e->category != NULL ? e->category : e->feedback_type;
    bp_status st = bp_strbuf_printf(sb, "%-9s %-10s %s", action != NULL ? action : "-", bp_event_type_name(e->type),
                                    e->recipient != NULL ? e->recipient : "(no recipient)");
    if (st == BP_OK && what != NULL)
        st = bp_strbuf_printf(sb, "  %s", what);
    if (st == BP_OK && (e->status != NULL || e->smtp_code != NULL))
        st = bp_strbuf_printf(sb, " [%s%s%s]", e->smtp_code ? e->smtp_code : "", e->smtp_code && e->status ? " " : "",
                              e->status ? e->status : "");
    if (st == BP_OK && e->rule != NULL)
        st = bp_strbuf_printf(sb, " rule=%s", e->rule);
    if (st == BP_OK && e->blocklist != NULL)
        st = bp_strbuf_printf(sb, " blocklist=%s", e->blocklist);
    if (st == BP_OK)
        st = bp_strbuf_printf(sb, "\n          %s\n", e->source != NULL ? e->source : "-");
    if (st == BP_OK && e->diagnostic != NULL)
        st = bp_strbuf_printf(sb, "          \"%s\"\n", e->diagnostic);
    return st;
}

static bp_status format_csv(bp_printer *p, const bp_event *e)
{
    bp_strbuf *sb = &p->buf;
    bp_status st = BP_OK;
    if (!p->header_done) {
        for (size_t i = 0; st == BP_OK && i < N_FIELDS; i++)
            st = bp_strbuf_printf(sb, "%s%s", i ? "," : "", fields[i].name);
        if (st == BP_OK)
            st = bp_strbuf_puts(sb, "\r\n");
        p->header_done = 1;
    }
    for (size_t i = 0; st == BP_OK && i < N_FIELDS; i++) {
        if (i > 0)
            st = bp_strbuf_putc(sb, ',');
        if (st == BP_OK)
            st = bp_csv_cell(sb, fields[i].get(e));
    }
    if (st == BP_OK)
        st = bp_strbuf_puts(sb, "\r\n");
    return st;
}

bp_status bp_printer_event(bp_printer *p, const bp_event *e)
{
    bp_strbuf_clear(&p->buf);
    bp_status st;
    switch (p->format) {
    case BP_FORMAT_TEXT: st = format_text(&p->buf, e); break;
    case BP_FORMAT_CSV: st = format_csv(p, e); break;
    default: st = format_ndjson(&p->buf, e); break;
    }
    if (st != BP_OK)
        return st;
    if (fwrite(p->buf.data, 1, p->buf.len, p->out) != p->buf.len)
        return BP_ERR_IO;
    return BP_OK;
}
