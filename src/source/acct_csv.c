/*
 * acct_csv.c - PowerMTA's accounting CSV as typed records (acct_csv.h).
 *
 * bp_acct_reader_next() takes the next record out of the CSV reader (csv.c, set up with
 * PowerMTA's header line "type,..." and quoted fields that span lines) and, for a data
 * record, looks each value up by PowerMTA's column name (one table, columns[], says which
 * column fills which field).  The column numbers are cached per header and refreshed when a
 * new header arrives, so a reload that changes record-fields is followed at once.  Where
 * PowerMTA versions name a field differently (reportingMta / dsnReportingMta) the first name
 * found wins.  Any other column (vmta, header_NAME, arf_NAME) is found by name through the
 * record's column function, which looks it up in the current header.
 *
 * Ownership: the reader owns the CSV reader; records point into it.
 */
#include "bouncepipe/acct_csv.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"

/* PowerMTA's columns and where each goes in a bp_acct_record; where PowerMTA versions name a
 * field differently, the second name is tried when the first is missing. */
static const struct {
    const char *name, *other;
    size_t offset;
} columns[] = {
    {"type", NULL, offsetof(bp_acct_record, type)},
    {"timeLogged", NULL, offsetof(bp_acct_record, time_logged)},
    {"orig", NULL, offsetof(bp_acct_record, orig)},
    {"rcpt", NULL, offsetof(bp_acct_record, rcpt)},
    {"orcpt", NULL, offsetof(bp_acct_record, orcpt)},
    {"dsnAction", NULL, offsetof(bp_acct_record, dsn_action)},
    {"dsnStatus", NULL, offsetof(bp_acct_record, dsn_status)},
    {"dsnDiag", NULL, offsetof(bp_acct_record, dsn_diag)},
    {"dsnMta", NULL, offsetof(bp_acct_record, dsn_mta)},
    {"bounceCat", NULL, offsetof(bp_acct_record, bounce_cat)},
    {"jobId", NULL, offsetof(bp_acct_record, job_id)},
    {"envId", NULL, offsetof(bp_acct_record, env_id)},
    {"feedbackType", NULL, offsetof(bp_acct_record, feedback_type)},
    {"reportingMta", "dsnReportingMta", offsetof(bp_acct_record, reporting_mta)},
    {"dlvSourceIp", NULL, offsetof(bp_acct_record, source_ip)},
};
#define N_COLUMNS   (sizeof(columns) / sizeof(columns[0]))
#define TIME_LOGGED 1 /* columns[TIME_LOGGED]: the key hashes named values when it is there */

struct bp_acct_reader {
    bp_csv_reader *csv;
    bp_csv_record current;    /* the record handed out last: the column function reads it */
    unsigned long long fed;   /* bytes fed so far */
    unsigned long generation; /* of the header col[] belongs to */
    int col[N_COLUMNS];       /* column of each of columns[] in that header, -1 for none */
};

bp_status bp_acct_reader_new(bp_acct_reader **out)
{
    static const bp_csv_options powermta = {"type", 1};
    *out = NULL;
    bp_acct_reader *r = bp_calloc(1, sizeof(*r));
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
    bp_status st = bp_csv_reader_feed(r->csv, data, len);
    if (st == BP_OK)
        r->fed += len;
    return st;
}

unsigned long long bp_acct_reader_offset(const bp_acct_reader *r)
{
    return r->fed - bp_csv_reader_pending(r->csv);
}

const bp_csv_reader *bp_acct_reader_csv(const bp_acct_reader *r)
{
    return r->csv;
}

/* bp_acct_column_fn: any column of the current record by name. */
static const char *record_column(const void *ctx, const char *name)
{
    const bp_acct_reader *r = ctx;
    return bp_csv_value(&r->current, bp_csv_column(r->csv, name));
}

/* The column numbers of a new header. */
static void refresh_columns(bp_acct_reader *r)
{
    unsigned long gen = bp_csv_header_generation(r->csv);
    if (r->generation == gen && gen != 0)
        return;
    r->generation = gen;
    for (size_t i = 0; i < N_COLUMNS; i++) {
        r->col[i] = bp_csv_column(r->csv, columns[i].name);
        if (r->col[i] < 0 && columns[i].other != NULL)
            r->col[i] = bp_csv_column(r->csv, columns[i].other);
    }
}

bp_status bp_acct_reader_next(bp_acct_reader *r, int at_eof, bp_csv_record *raw, bp_acct_record *rec,
                              bp_csv_outcome *outcome)
{
    bp_status st = bp_csv_reader_next(r->csv, at_eof, raw, outcome);
    if (st != BP_OK || *outcome != BP_CSV_RECORD)
        return st;
    refresh_columns(r);
    memset(rec, 0, sizeof(*rec));
    for (size_t i = 0; i < N_COLUMNS; i++)
        *(const char **)((char *)rec + columns[i].offset) = bp_csv_value(raw, r->col[i]);
    r->current = *raw;
    rec->column = record_column;
    rec->column_ctx = r;
    rec->keyed_by_values = r->col[TIME_LOGGED] >= 0;
    rec->raw = raw->raw;
    rec->raw_len = raw->raw_len;
    rec->line = raw->line;
    return BP_OK;
}
