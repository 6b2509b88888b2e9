/*
 * emit.h - the one printer of events: NDJSON (the versioned contract of
 * docs/output-schema.md), human-readable text, and CSV.  Every command that prints events
 * goes through here, so a field is added in one place (the field table of printer.c).
 * NDJSON and CSV are written by the structured writer (writer.h); commands that add their own
 * fields to an event's map (acct) write the event's entries with bp_event_write_fields().
 *
 * Ownership: a bp_printer writes to a FILE it does not own; it holds a writer and a scratch
 * buffer that bp_printer_free() releases.
 */
#ifndef BOUNCEPIPE_EMIT_H
#define BOUNCEPIPE_EMIT_H

#include <stdio.h>

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"
#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"

/** Version of the NDJSON event contract (docs/output-schema.md). */
#define BP_SCHEMA_VERSION "1.5"

typedef struct bp_printer bp_printer;

/** @return a printer writing @p format to @p out, or NULL when out of memory: JSON is NDJSON
 *  (an object a line), CSV a header and a row an event, TEXT a layout for people. */
bp_printer *bp_printer_new(FILE *out, bp_writer_format format);
/** Release the printer (not the FILE); NULL allowed. */
void bp_printer_free(bp_printer *p);
/** Print one event. @return BP_OK, or BP_ERR_IO when the write failed. */
bp_status bp_printer_event(bp_printer *p, const bp_event *e);

/** Append one event as its contract JSON object (no newline): what an NDJSON line holds
 *  (webhook bodies).  @return BP_OK or BP_ERR_NOMEM. */
bp_status bp_event_json_object(bp_strbuf *sb, const bp_event *e);
/** Write the contract fields of @p e, in contract order, as entries of the map open in @p w. */
bp_status bp_event_write_fields(bp_writer *w, const bp_event *e);

#endif
