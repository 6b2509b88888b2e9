/*
 * acct_csv.c - PowerMTA's accounting CSV as typed records (acct_csv.h).
 *
 * bp_acct_reader_next() takes the next record out of the CSV reader (csv.c, set up with
 * PowerMTA's header line "type,..." and quoted fields that span lines) and, for a data
 * record, looks each value up by PowerMTA's column name.  The column numbers are cached per
 * header (struct columns) and refreshed when a new header arrives, so a reload that changes
 * record-fields is followed at once.  Where PowerMTA versions name a field differently
 * (reportingMta / dsnReportingMta, reportedIp / dlvSourceIp) the first name found wins.
 *
 * Ownership: the reader owns the CSV reader; records point into it.
 */
#include "bouncepipe/acct_csv.h"

#include <stdlib.h>
#include <string.h>

/* The column numbers of the current header, -1 for a column it lacks. */
struct columns {
    unsigned long generation;
    int type, time_logged, orig, rcpt, orcpt, dsn_action, dsn_status, dsn_diag, dsn_mta, bounce_cat, job_id, env_id,
        feedback_type, reporting_mta, x_hmxmr, source_ip;
};

struct bp_acct_reader {
    bp_csv_reader *csv;
    struct columns cols;
};

bp_status bp_acct_reader_new(bp_acct_reader **out)
{
    static const bp_csv_options powermta = {"type", 1};
    *out = NULL;
    bp_acct_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return BP_ERR_NOMEM;
    bp_status st = bp_csv_reader_new(&powermta, &r->csv);
    if (st != BP_OK) {
        free(r);
        return st;
    }
    *out = r;
    return BP_OK;
}

void bp_acct_reader_free(bp_acct_reader *r)
{
    if (r == NULL)
        return;
    bp_csv_reader_free(r->csv);
    free(r);
}

bp_status bp_acct_reader_feed(bp_acct_reader *r, const char *data, size_t len)
{
    return bp_csv_reader_feed(r->csv, data, len);
}

const bp_csv_reader *bp_acct_reader_csv(const bp_acct_reader *r)
{
    return r->csv;
}

/* The first of two names the header has. */
static int either(const bp_csv_reader *csv, const char *name, const char *other)
{
    int c = bp_csv_column(csv, name);
    return c >= 0 ? c : bp_csv_column(csv, other);
}

static void refresh_columns(const bp_csv_reader *csv, struct columns *c)
{
    unsigned long gen = bp_csv_header_generation(csv);
    if (c->generation == gen && gen != 0)
        return;
    c->generation = gen;
    c->type = bp_csv_column(csv, "type");
    c->time_logged = bp_csv_column(csv, "timeLogged");
    c->orig = bp_csv_column(csv, "orig");
    c->rcpt = bp_csv_column(csv, "rcpt");
    c->orcpt = bp_csv_column(csv, "orcpt");
    c->dsn_action = bp_csv_column(csv, "dsnAction");
    c->dsn_status = bp_csv_column(csv, "dsnStatus");
    c->dsn_diag = bp_csv_column(csv, "dsnDiag");
    c->dsn_mta = bp_csv_column(csv, "dsnMta");
    c->bounce_cat = bp_csv_column(csv, "bounceCat");
    c->job_id = bp_csv_column(csv, "jobId");
    c->env_id = bp_csv_column(csv, "envId");
    c->feedback_type = bp_csv_column(csv, "feedbackType");
    c->reporting_mta = either(csv, "reportingMta", "dsnReportingMta");
    c->x_hmxmr = bp_csv_column(csv, "header_X-HmXmrOriginalRecipient");
    c->source_ip = either(csv, "reportedIp", "dlvSourceIp");
}

bp_status bp_acct_reader_next(bp_acct_reader *r, int at_eof, bp_csv_record *raw, bp_acct_record *rec,
                              bp_csv_outcome *outcome)
{
    bp_status st = bp_csv_reader_next(r->csv, at_eof, raw, outcome);
    if (st != BP_OK || *outcome != BP_CSV_RECORD)
        return st;
    struct columns *c = &r->cols;
    refresh_columns(r->csv, c);
    memset(rec, 0, sizeof(*rec));
    rec->type = bp_csv_value(raw, c->type);
    rec->time_logged = bp_csv_value(raw, c->time_logged);
    rec->orig = bp_csv_value(raw, c->orig);
    rec->rcpt = bp_csv_value(raw, c->rcpt);
    rec->orcpt = bp_csv_value(raw, c->orcpt);
    rec->dsn_action = bp_csv_value(raw, c->dsn_action);
    rec->dsn_status = bp_csv_value(raw, c->dsn_status);
    rec->dsn_diag = bp_csv_value(raw, c->dsn_diag);
    rec->dsn_mta = bp_csv_value(raw, c->dsn_mta);
    rec->bounce_cat = bp_csv_value(raw, c->bounce_cat);
    rec->job_id = bp_csv_value(raw, c->job_id);
    rec->env_id = bp_csv_value(raw, c->env_id);
    rec->feedback_type = bp_csv_value(raw, c->feedback_type);
    rec->reporting_mta = bp_csv_value(raw, c->reporting_mta);
    rec->x_hmxmr = bp_csv_value(raw, c->x_hmxmr);
    rec->source_ip = bp_csv_value(raw, c->source_ip);
    rec->keyed_by_values = c->time_logged >= 0;
    rec->raw = raw->raw;
    rec->raw_len = raw->raw_len;
    rec->line = raw->line;
    return BP_OK;
}
