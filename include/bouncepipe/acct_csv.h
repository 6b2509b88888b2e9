/*
 * acct_csv.h - the PowerMTA accounting stream as typed records: the CSV reader (csv.h) set up
 * the way PowerMTA writes (a header whose first field is "type", written again after every
 * reload, with other columns whenever record-fields changes; quoted fields may span lines),
 * and each data record's values taken by column name into a bp_acct_record (acct.h), which
 * the classify layer maps to an event.
 *
 * Ownership: the reader owns its buffers; the bp_csv_record and bp_acct_record handed out
 * point into them until the next bp_acct_reader_feed() or bp_acct_reader_next().
 */
#ifndef BOUNCEPIPE_ACCT_CSV_H
#define BOUNCEPIPE_ACCT_CSV_H

#include <stddef.h>

#include "bouncepipe/acct.h"
#include "bouncepipe/csv.h"
#include "bouncepipe/status.h"

typedef struct bp_acct_reader bp_acct_reader;

/** @return BP_OK and a new reader in @p *out, or BP_ERR_NOMEM. */
bp_status bp_acct_reader_new(bp_acct_reader **out);
/** Release the reader; NULL is allowed. */
void bp_acct_reader_free(bp_acct_reader *r);

/** Append bytes of the stream (as bp_csv_reader_feed()).  @return BP_OK or BP_ERR_NOMEM. */
bp_status bp_acct_reader_feed(bp_acct_reader *r, const char *data, size_t len);

/**
 * Take the next record out of the buffered bytes (as bp_csv_reader_next()).
 * @param raw receives the CSV record (line and error for BP_CSV_MALFORMED)
 * @param rec receives the typed record for BP_CSV_RECORD (untouched otherwise)
 * @return BP_OK, or BP_ERR_NOMEM.
 */
bp_status bp_acct_reader_next(bp_acct_reader *r, int at_eof, bp_csv_record *raw, bp_acct_record *rec,
                              bp_csv_outcome *outcome);

/** @return the stream offset just past the last record, header or malformed line
 *  bp_acct_reader_next() handed out: where a reader of the same file resumes. */
unsigned long long bp_acct_reader_offset(const bp_acct_reader *r);

/** @return the underlying CSV reader (for its column map), owned by @p r. */
const bp_csv_reader *bp_acct_reader_csv(const bp_acct_reader *r);

#endif
