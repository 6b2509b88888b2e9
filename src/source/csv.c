/*
 * csv.c - the one CSV reader (RFC 4180; columns by header name when the stream has headers).
 *
 * The reader keeps the bytes fed to it in one buffer and cuts records out of it:
 *
 *   bp_csv_reader_feed()  appends bytes (compacting what earlier records used);
 *   bp_csv_reader_next()  finds the end of the next record - an LF outside quotes - splits it
 *                          into fields and says whether it was a header, a data record or a
 *                          malformed line.  The scan position and quote state are kept between
 *                          calls, so a record fed a byte at a time costs linear time.
 *
 * A quote opens a quoted field only at the start of a field (RFC 4180); elsewhere it is an
 * ordinary byte, as are bytes between a closing quote and the next comma (lenient, like most
 * readers); without quotes_span_lines, a line end inside quotes ends the record all the same
 * (the field ends there).  A record is malformed, counted by the caller and skipped, when it
 * is longer than BP_MAX_ACCT_LINE_BYTES (the reader then skips to the next line end), has
 * more than BP_MAX_ACCT_FIELDS fields, holds a NUL byte, or is cut: unterminated at the end of
 * the stream.  With headers (header_first_field) also when it comes before any header, has a
 * field count other than its header's, or a quoted field runs into a line that starts a
 * header ("type,") - what a file looks like when PowerMTA stopped mid-record and wrote a
 * fresh header after its restart.
 *
 * Ownership: the reader owns buf (the pending bytes), fieldbuf (the unquoted values of the
 * last record) and the header names; records point into them until the next call.
 */
#include "bouncepipe/csv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/limits.h"

struct bp_csv_reader {
    int has_headers;       /* the options name a header's first field */
    int quotes_span_lines; /* a quoted field may hold line breaks */
    char header_name[64];  /* the first field of a header line */
    char header_word[66];  /* header_name + ",": how a line starting a header begins */
    size_t header_word_len;
    char *buf; /* pending bytes [start, len) */
    size_t len, cap;
    size_t start;              /* first byte of the record being cut */
    size_t scan;               /* next byte to examine */
    int in_quotes;             /* quote state at scan */
    int field_start;           /* scan is at the start of a field */
    unsigned long line;        /* physical line number of start (1-based) */
    unsigned long extra_lines; /* line ends inside quotes seen since start */
    int discarding;            /* skipping the rest of an over-long record to its line end */

    char *fieldbuf; /* values of the last record, NUL-separated */
    size_t fieldcap;
    const char *fields[BP_MAX_ACCT_FIELDS];

    char **header; /* column names of the current header (owned) */
    size_t n_header;
    unsigned long generation;
};

bp_status bp_csv_reader_new(const bp_csv_options *opts, bp_csv_reader **out)
{
    *out = NULL;
    bp_csv_reader *r = bp_calloc(1, sizeof(*r));
    if (r == NULL)
        return BP_ERR_NOMEM;
    if (opts != NULL && opts->header_first_field != NULL && strlen(opts->header_first_field) < sizeof(r->header_name)) {
        r->has_headers = 1;
        snprintf(r->header_name, sizeof(r->header_name), "%s", opts->header_first_field);
        snprintf(r->header_word, sizeof(r->header_word), "%s,", r->header_name);
        r->header_word_len = strlen(r->header_word);
    }
    r->quotes_span_lines = opts != NULL && opts->quotes_span_lines;
    r->line = 1;
    r->field_start = 1;
    *out = r;
    return BP_OK;
}

static void free_header(bp_csv_reader *r)
{
    for (size_t i = 0; i < r->n_header; i++)
        free(r->header[i]);
    free(r->header);
    r->header = NULL;
    r->n_header = 0;
}

void bp_csv_reader_free(bp_csv_reader *r)
{
    if (r == NULL)
        return;
    free_header(r);
    free(r->buf);
    free(r->fieldbuf);
    free(r);
}

/* Drop the bytes before start, so the buffer holds one record plus what was fed since. */
static void compact(bp_csv_reader *r)
{
    if (r->start == 0)
        return;
    memmove(r->buf, r->buf + r->start, r->len - r->start);
    r->len -= r->start;
    r->scan -= r->start;
    r->start = 0;
}

bp_status bp_csv_reader_feed(bp_csv_reader *r, const char *data, size_t len)
{
    compact(r);
    if (len == 0)
        return BP_OK;
    char *nb = bp_reserve(r->buf, &r->cap, r->len + len, 8192, SIZE_MAX);
    if (nb == NULL)
        return BP_ERR_NOMEM;
    r->buf = nb;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return BP_OK;
}

size_t bp_csv_reader_pending(const bp_csv_reader *r)
{
    return r->len - r->start;
}

/* Forget the record that ends just before @p next (the byte after its LF, or len). */
static void advance(bp_csv_reader *r, size_t next, unsigned long lines)
{
    r->start = next;
    r->scan = next;
    r->in_quotes = 0;
    r->field_start = 1;
    r->line += lines;
    r->extra_lines = 0;
}

/* Split raw[0..n) into fields.  @return NULL or a static reason the record is malformed. */
static const char *split_fields(bp_csv_reader *r, const char *raw, size_t n, size_t *n_fields, bp_status *st)
{
    *st = BP_OK;
    *n_fields = 0;
    /* values only shrink when unquoted; each field adds its NUL: 2n + 1 is always enough */
    size_t need = 2 * n + 2;
    if (need > r->fieldcap) {
        char *nb = bp_realloc(r->fieldbuf, need);
        if (nb == NULL) {
            *st = BP_ERR_NOMEM;
            return "out of memory";
        }
        r->fieldbuf = nb;
        r->fieldcap = need;
    }
    if (memchr(raw, '\0', n) != NULL)
        return "NUL byte in record";
    char *out = r->fieldbuf;
    size_t i = 0, nf = 0;
    for (;;) {
        if (nf == BP_MAX_ACCT_FIELDS)
            return "more fields than BP_MAX_ACCT_FIELDS";
        r->fields[nf++] = out;
        if (i < n && raw[i] == '"') {
            i++;
            while (i < n) {
                if (raw[i] == '"') {
                    if (i + 1 < n && raw[i + 1] == '"') {
                        *out++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *out++ = raw[i++];
            }
        }
        while (i < n && raw[i] != ',')
            *out++ = raw[i++];
        *out++ = '\0';
        if (i >= n)
            break;
        i++; /* the comma; a trailing comma makes one more, empty, field */
    }
    *n_fields = nf;
    return NULL;
}

static bp_status take_header(bp_csv_reader *r, size_t n)
{
    char **names = bp_calloc(n, sizeof(*names));
    if (names == NULL)
        return BP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = r->fields[i];
        size_t len = strlen(s);
        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        names[i] = bp_strndup(s, len);
        if (names[i] == NULL) {
            for (size_t k = 0; k < i; k++)
                free(names[k]);
            free(names);
            return BP_ERR_NOMEM;
        }
    }
    free_header(r);
    r->header = names;
    r->n_header = n;
    r->generation++;
    return BP_OK;
}

/* Does a header line ("type,") start at buf[pos]?  @return 1 yes, 0 no, -1 not enough bytes. */
static int header_starts_at(const bp_csv_reader *r, size_t pos, int at_eof)
{
    size_t want = r->header_word_len;
    if (want == 0)
        return 0;
    size_t have = r->len - pos;
    size_t cmp = have < want ? have : want;
    if (strncasecmp(r->buf + pos, r->header_word, cmp) != 0)
        return 0;
    if (cmp < want)
        return at_eof ? 0 : -1;
    return 1;
}

/* Scan for the LF that ends the record at start.
 * @return 1 found (at *end), 0 need more bytes, 2 the record is cut by a header at *end. */
static int find_record_end(bp_csv_reader *r, int at_eof, size_t *end)
{
    size_t i = r->scan;
    while (i < r->len) {
        char c = r->buf[i];
        if (r->in_quotes) {
            if (c == '"') {
                if (i + 1 >= r->len && !at_eof)
                    break; /* a doubled quote or a closing one: decided by the next byte */
                if (i + 1 < r->len && r->buf[i + 1] == '"') {
                    i += 2;
                    continue;
                }
                r->in_quotes = 0;
            } else if (c == '\n' && !r->quotes_span_lines) {
                *end = i; /* the field ends with the line */
                r->scan = i;
                return 1;
            } else if (c == '\n') {
                int h = header_starts_at(r, i + 1, at_eof);
                if (h < 0)
                    break;
                if (h > 0) {
                    *end = i;
                    r->scan = i;
                    return 2;
                }
                r->extra_lines++;
            }
            r->field_start = 0;
            i++;
            continue;
        }
        if (c == '\n') {
            *end = i;
            r->scan = i;
            return 1;
        }
        if (c == '"' && r->field_start)
            r->in_quotes = 1;
        r->field_start = c == ',';
        i++;
    }
    r->scan = i;
    return 0;
}

bp_status bp_csv_reader_next(bp_csv_reader *r, int at_eof, bp_csv_record *rec, bp_csv_outcome *outcome)
{
    memset(rec, 0, sizeof(*rec));
    *outcome = BP_CSV_NEED_MORE;
    for (;;) {
        if (r->discarding) {
            const char *lf = r->start < r->len ? memchr(r->buf + r->start, '\n', r->len - r->start) : NULL;
            if (lf == NULL) {
                advance(r, r->len, 0); /* drop what we have; keep discarding */
                return BP_OK;
            }
            advance(r, (size_t)(lf - r->buf) + 1, 1);
            r->discarding = 0;
            continue;
        }
        size_t end = 0;
        int found = find_record_end(r, at_eof, &end);
        rec->line = r->line;
        rec->header_generation = r->generation;
        if (found == 0) {
            if (r->len - r->start > BP_MAX_ACCT_LINE_BYTES) {
                rec->error = "record longer than BP_MAX_ACCT_LINE_BYTES";
                r->line += r->extra_lines;
                r->discarding = 1;
                advance(r, r->len, 0);
                *outcome = BP_CSV_MALFORMED;
                return BP_OK;
            }
            if (at_eof && r->start < r->len) {
                rec->error = "record cut by the end of the input (no line end)";
                advance(r, r->len, 0);
                *outcome = BP_CSV_MALFORMED;
            }
            return BP_OK;
        }
        const char *raw = r->buf + r->start;
        size_t n = end - r->start;
        unsigned long lines = 1 + r->extra_lines;
        if (n >= 3 && memcmp(raw, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 BOM from an editor */
            raw += 3;
            n -= 3;
        }
        if (found == 2) {
            rec->error = "record cut mid-field by a new header";
            advance(r, end + 1, lines);
            *outcome = BP_CSV_MALFORMED;
            return BP_OK;
        }
        if (n > 0 && raw[n - 1] == '\r')
            n--;
        if (n > BP_MAX_ACCT_LINE_BYTES) {
            rec->error = "record longer than BP_MAX_ACCT_LINE_BYTES";
            advance(r, end + 1, lines);
            *outcome = BP_CSV_MALFORMED;
            return BP_OK;
        }
        if (n == 0) { /* blank line: nothing to say */
            advance(r, end + 1, lines);
            continue;
        }
        size_t nf = 0;
        bp_status st;
        const char *why = split_fields(r, raw, n, &nf, &st);
        advance(r, end + 1, lines);
        if (st != BP_OK)
            return st;
        rec->raw = raw;
        rec->raw_len = n;
        if (why != NULL) {
            rec->error = why;
            *outcome = BP_CSV_MALFORMED;
            return BP_OK;
        }
        rec->fields = r->fields;
        rec->n_fields = nf;
        if (!r->has_headers) {
            *outcome = BP_CSV_RECORD;
            return BP_OK;
        }
        if (strcasecmp(r->fields[0], r->header_name) == 0) {
            st = take_header(r, nf);
            if (st != BP_OK)
                return st;
            rec->header_generation = r->generation;
            *outcome = BP_CSV_HEADER;
            return BP_OK;
        }
        if (r->generation == 0) {
            rec->error = "record before any header line";
            *outcome = BP_CSV_MALFORMED;
            return BP_OK;
        }
        if (nf != r->n_header) {
            rec->error = "field count differs from the header's";
            *outcome = BP_CSV_MALFORMED;
            return BP_OK;
        }
        *outcome = BP_CSV_RECORD;
        return BP_OK;
    }
}

int bp_csv_column(const bp_csv_reader *r, const char *name)
{
    for (size_t i = 0; i < r->n_header; i++)
        if (strcasecmp(r->header[i], name) == 0)
            return (int)i;
    return -1;
}

unsigned long bp_csv_header_generation(const bp_csv_reader *r)
{
    return r->generation;
}

const char *bp_csv_value(const bp_csv_record *rec, int column)
{
    if (column < 0 || (size_t)column >= rec->n_fields || rec->fields[column][0] == '\0')
        return NULL;
    return rec->fields[column];
}
