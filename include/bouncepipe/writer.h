/*
 * writer.h - the one structured writer: maps, lists and scalars, written as JSON, CSV or
 * plain text by back ends behind one interface (after notmuch's sprinter).
 *
 * A command describes what it prints - "a list of maps with these keys" - once, and the
 * format the operator chose decides the bytes: every JSON string escaped, every CSV cell
 * quoted and neutralised against formula injection, every text value masked.  Used by the
 * event printer (emit.h), export, lookup, stats and acct.
 *
 * Whatever the strings hold, the output is valid UTF-8 without a control character that is
 * not the format's own (text.h, "Masking"): JSON escapes C0 and C1 controls and the bidi
 * overrides (\u001b, \u009b, \u202e) and writes '?' for a byte of no valid UTF-8
 * sequence; CSV cells, text values and raw layouts show all of those as '?' (a CSV cell
 * keeps tabs and line breaks, quoted as RFC 4180 says; a raw layout keeps its line ends).  So no input reaches an
 * operator's terminal or a JSON parser as anything but text.
 *
 *   JSON   compact JSON.  bp_writer_separator() between items of a list puts them on lines
 *          of their own (and the closing bracket too); at the top level it ends the line, so
 *          one map per line and a separator after each is NDJSON.
 *   CSV    one row per map (a map at the top level, or inside the top-level list); the keys of
 *          the first row, or the names given to bp_writer_columns(), make the header line;
 *          booleans are 1/0, null an empty cell; rows end with CRLF (RFC 4180).  Containers
 *          inside a row are a programming error.
 *   TEXT   plain values for people and scripts: keys are not written, scalars of one
 *          container are separated by a space, null is "-", values are masked (a control,
 *          '\n' included, is '?'), and bp_writer_separator() ends the line (a list of
 *          addresses, one a line).
 *
 * Output is buffered and written to the FILE each time the writer is back at the top level
 * (a JSON value with the separator after it; a CSV row; a text line), when 64 KiB are
 * buffered inside a long list, and by bp_writer_flush(), so that one record is one write and
 * a long list streams.  The first error (out of memory, a failed
 * write) sticks: every later call returns it.
 *
 * Ownership: the writer does not own the FILE (or the caller's buffer); bp_writer_free()
 * releases its own buffers.
 */
#ifndef BOUNCEPIPE_WRITER_H
#define BOUNCEPIPE_WRITER_H

#include <stddef.h>
#include <stdio.h>

#include "bouncepipe/status.h"
#include "bouncepipe/text.h"

typedef enum bp_writer_format {
    BP_WRITER_JSON = 0,
    BP_WRITER_CSV,
    BP_WRITER_TEXT,
} bp_writer_format;

typedef struct bp_writer bp_writer;

/** @return a writer of @p format to @p out, or NULL when out of memory. */
bp_writer *bp_writer_new(FILE *out, bp_writer_format format);
/** @return a writer of @p format that appends to @p out (a body in memory, e.g. a webhook's),
 *  or NULL when out of memory.  The writer does not own @p out. */
bp_writer *bp_writer_new_buffer(bp_strbuf *out, bp_writer_format format);
/** Release the writer (not the FILE); what is buffered is not written.  NULL allowed. */
void bp_writer_free(bp_writer *w);
/** @return the format the writer writes. */
bp_writer_format bp_writer_get_format(const bp_writer *w);

/** Open a map; its entries are bp_writer_key() followed by one value each. */
bp_status bp_writer_begin_map(bp_writer *w);
/** Open a list. */
bp_status bp_writer_begin_list(bp_writer *w);
/** Close the innermost open map or list. */
bp_status bp_writer_end(bp_writer *w);
/** The key of the next map entry (escaped like any string: keys may be data). */
bp_status bp_writer_key(bp_writer *w, const char *key);
/** A string value; NULL writes null. */
bp_status bp_writer_string(bp_writer *w, const char *s);
/** @p n entries of the open map at once: @p keys[i] with the string value @p values[i] (NULL:
 *  null) - what bp_writer_key() and bp_writer_string() in turn would write, in one call (the
 *  event printer writes every event's twenty fields so).  The keys are the program's own
 *  names (letters, digits, '_', '-'), written as they are; data as keys goes through
 *  bp_writer_key(). */
bp_status bp_writer_strings(bp_writer *w, const char *const *keys, const char *const *values, size_t n);
/** An integer value. */
bp_status bp_writer_integer(bp_writer *w, long long n);
/** A boolean value. */
bp_status bp_writer_boolean(bp_writer *w, int b);
/** A null value. */
bp_status bp_writer_null(bp_writer *w);
/** One entry of the open map: bp_writer_key() @p key, then the string @p s (NULL: null). */
bp_status bp_writer_entry_string(bp_writer *w, const char *key, const char *s);
/** One entry of the open map: @p key, then the integer @p n. */
bp_status bp_writer_entry_integer(bp_writer *w, const char *key, long long n);
/** One entry of the open map: @p key, then the boolean @p b. */
bp_status bp_writer_entry_boolean(bp_writer *w, const char *key, int b);
/** Between items of a list, or after a top-level value (see the formats above). */
bp_status bp_writer_separator(bp_writer *w);
/** CSV: write the header line now, from @p names (before any row; once).  Other formats:
 *  nothing. */
bp_status bp_writer_columns(bp_writer *w, const char *const *names, size_t n);
/** Append @p len bytes of a human layout a command formats itself (event text), masked but
 *  for its '\n' (text.h): data formatted into it cannot reach the terminal as controls. */
bp_status bp_writer_raw(bp_writer *w, const char *s, size_t len);
/** bp_writer_raw() of printf-formatted text. */
bp_status bp_writer_rawf(bp_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** @return the first error the writer met, or BP_OK. */
bp_status bp_writer_status(const bp_writer *w);
/** Write what is buffered to the FILE and flush it.  @return the writer's status. */
bp_status bp_writer_flush(bp_writer *w);

/** Append @p s as a JSON string (quoted, escaped; C1 controls and bidi overrides escaped,
 *  invalid UTF-8 bytes as '?') or null. */
bp_status bp_json_string(bp_strbuf *sb, const char *s);
/** Append @p s as a CSV cell, masked (text.h), quoted when needed and neutralised against
 *  formula injection. */
bp_status bp_csv_cell(bp_strbuf *sb, const char *s);

#endif
