/*
 * emit.h - the one printer of events: NDJSON (the versioned contract of
 * docs/output-schema.md), human-readable text, and CSV.  Every command that prints events
 * goes through here, so a field is added in one place.
 *
 * Ownership: a bp_printer writes to a FILE it does not own; it holds a scratch buffer that
 * bp_printer_free() releases.
 */
#ifndef BOUNCEPIPE_EMIT_H
#define BOUNCEPIPE_EMIT_H

#include <stdio.h>

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"
#include "bouncepipe/text.h"

/** Version of the NDJSON event contract (docs/output-schema.md). */
#define BP_SCHEMA_VERSION "1.0"

typedef enum bp_format {
    BP_FORMAT_NDJSON = 0,
    BP_FORMAT_TEXT,
    BP_FORMAT_CSV,
} bp_format;

typedef struct bp_printer bp_printer;

/** @return a printer writing @p format to @p out, or NULL when out of memory. */
bp_printer *bp_printer_new(FILE *out, bp_format format);
/** Release the printer (not the FILE); NULL allowed. */
void bp_printer_free(bp_printer *p);
/** Print one event. @return BP_OK, or BP_ERR_IO when the write failed. */
bp_status bp_printer_event(bp_printer *p, const bp_event *e);
/** @return BP_OK and sets @p out, or BP_ERR_USAGE for an unknown format name. */
bp_status bp_format_parse(const char *name, bp_format *out);

/** Append one event as its contract JSON object (no newline): what an NDJSON line holds. */
bp_status bp_event_json_object(bp_strbuf *sb, const bp_event *e);
/** Append @p s as a JSON string (quoted, escaped) or null. */
bp_status bp_json_string(bp_strbuf *sb, const char *s);
/** Append @p s as a CSV cell, quoted when needed and neutralised against formula injection. */
bp_status bp_csv_cell(bp_strbuf *sb, const char *s);

#endif
