/*
 * csv.h - the one CSV reader: RFC 4180 records cut out of a byte stream, for the PowerMTA
 * accounting stream (acct_csv.h) and for suppression lists (import).
 *
 * Records end with CRLF or LF; a field that starts with a quote may hold commas, doubled
 * quotes and (with quotes_span_lines) line breaks.  A record longer than
 * BP_MAX_ACCT_LINE_BYTES, with more than BP_MAX_ACCT_FIELDS fields, with a NUL byte, or cut by
 * the end of the stream is reported as malformed and skipped; the reader goes on with the
 * next line.  Blank lines are skipped silently; a UTF-8 byte-order mark at the start of a
 * record is dropped.  Nothing is fatal but memory.
 *
 * Headers, when the options name one: a record whose first field is header_first_field
 * (ASCII case ignored) is a header and replaces the column map (PowerMTA writes its header
 * again after every reload, with other columns when record-fields changed), so values are
 * looked up by name, never by position; a data record before any header, or with another
 * field count than its header's, is malformed; and a quoted field that runs into a line
 * starting a header is cut there (a writer that stopped mid-record and restarted).
 *
 * The reader is push-driven so that a caller can poll its input with a timeout: feed it the
 * bytes read() returned, then call bp_csv_reader_next() until it says BP_CSV_NEED_MORE.
 *
 * Ownership: the reader owns its buffers.  The fields and raw bytes of a bp_csv_record point
 * into them and stay valid until the next bp_csv_reader_feed() or bp_csv_reader_next().
 */
#ifndef BOUNCEPIPE_CSV_H
#define BOUNCEPIPE_CSV_H

#include <stddef.h>

#include "bouncepipe/status.h"

typedef struct bp_csv_reader bp_csv_reader;

/** How the stream is written. */
typedef struct bp_csv_options {
    const char *header_first_field; /**< first field of a header line ("type"), or NULL: no
                                         headers (the caller reads the records it wants as one) */
    int quotes_span_lines;          /**< non-zero: a quoted field may hold line breaks (RFC 4180);
                                         zero: every line end ends a record */
} bp_csv_options;

/** What bp_csv_reader_next() found. */
typedef enum bp_csv_outcome {
    BP_CSV_NEED_MORE = 0, /**< no complete record buffered: feed more (or it was the end) */
    BP_CSV_HEADER,        /**< a header line: the column map was replaced */
    BP_CSV_RECORD,        /**< a data record */
    BP_CSV_MALFORMED,     /**< a record was skipped; its reason is in bp_csv_record.error */
} bp_csv_outcome;

typedef struct bp_csv_record {
    const char *const *fields; /**< n_fields NUL-terminated values, unquoted */
    size_t n_fields;
    const char *raw; /**< the record's bytes as read, without its line end (NULL if skipped) */
    size_t raw_len;
    unsigned long line;              /**< physical line number where the record starts (1-based) */
    unsigned long header_generation; /**< which header the fields belong to (see below) */
    const char *error;               /**< static reason, for BP_CSV_MALFORMED; else NULL */
} bp_csv_record;

/** @return BP_OK and a new reader in @p *out, or BP_ERR_NOMEM.  @p opts is copied. */
bp_status bp_csv_reader_new(const bp_csv_options *opts, bp_csv_reader **out);
/** Release the reader; NULL is allowed. */
void bp_csv_reader_free(bp_csv_reader *r);

/**
 * Append @p len bytes of the stream.  Call bp_csv_reader_next() until BP_CSV_NEED_MORE before
 * feeding again, so that the buffer stays within one record plus one read.
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_csv_reader_feed(bp_csv_reader *r, const char *data, size_t len);

/**
 * Take the next record out of the buffered bytes.
 * @param at_eof non-zero when no more bytes will come: an unterminated last record is then a
 *        cut and comes back as BP_CSV_MALFORMED
 * @param rec receives the record (fields for BP_CSV_RECORD; the header's own fields for
 *        BP_CSV_HEADER; error and line for BP_CSV_MALFORMED)
 * @param outcome receives what was found
 * @return BP_OK, or BP_ERR_NOMEM.
 */
bp_status bp_csv_reader_next(bp_csv_reader *r, int at_eof, bp_csv_record *rec, bp_csv_outcome *outcome);

/**
 * Column of the current header named @p name (ASCII case-insensitive, as PowerMTA's header_X
 * fields carry mail header names; blanks around a header name are ignored).
 * @return the 0-based column, or -1 when the header has no such column (or none was read).
 */
int bp_csv_column(const bp_csv_reader *r, const char *name);

/** Bytes fed but not yet handed out in a record (a record cut so far, and what follows it):
 *  the bytes fed minus this is the stream offset just past the last record, header or
 *  malformed line bp_csv_reader_next() reported. */
size_t bp_csv_reader_pending(const bp_csv_reader *r);

/** Generation of the current header: starts at 0 (no header), +1 for each header read.
 *  Callers that cache column numbers refresh them when it changes. */
unsigned long bp_csv_header_generation(const bp_csv_reader *r);

/** @return the value of column @p column of @p rec, or NULL when @p column is -1, beyond the
 *  record, or the value is empty (PowerMTA leaves the fields a record type lacks empty). */
const char *bp_csv_value(const bp_csv_record *rec, int column);

#endif
