/*
 * dmarc.h - DMARC aggregate (rua) reports: recognise one in a parsed message, decompress its
 * attachment and read the XML into a typed report (dmarc_report.h).
 *
 * Two halves, so that a process that never meets a report never loads an XML or a zip
 * library (docs/dmarc.md, "Linking"):
 *   - recognition, in the core (dmarc.c): which leaf of a message is a report, from its file
 *     name, the Subject or its <feedback> root; it decompresses nothing and needs no library
 *     but the MIME adapter's;
 *   - the reader (dmarc_reader.c, dmarc_archive.c, dmarc_xml.c), built as the module
 *     bouncepipe-dmarc.so that the core loads with dlopen() for the first message that is a
 *     report (bp_dmarc_reader_load()), and as the static library bpdmarc that the tests, the
 *     fuzzer and the benchmark link.
 *
 * What is read (docs/dmarc.md): RFC 7489 Appendix C's schema and the DMARCbis aggregate
 * reporting draft's additions (namespace urn:ietf:params:xml:ns:dmarc-2.0, <generator>, <np>,
 * <testing>, <discovery_method>), attached as XML (text/xml, application/xml), gzip
 * (application/gzip, x-gzip, *.xml.gz) or zip (application/zip, *.zip), whatever the
 * attachment's label says: the bytes decide.  The XML is streamed through libxml2's SAX
 * parser with no DTD, no entity expansion and no network; gzip is read with zlib, zip with
 * libzip.  Every limit is in limits.h (BP_MAX_ATTACHMENT_BYTES, BP_MAX_DMARC_*); a report over
 * one, or malformed, is refused as a whole with a reason, never half read.  Every string kept
 * is valid UTF-8 without control characters, at most BP_MAX_DMARC_FIELD_BYTES.
 *
 * Ownership: the report and everything it points to belong to the arena passed in; the
 * attachment points into the bp_mime_message (also arena-owned).  The reader keeps no state
 * but libxml2's process-wide settings, made once (bp_dmarc_init()); the core keeps the
 * loaded module for the life of the process.
 */
#ifndef BOUNCEPIPE_DMARC_H
#define BOUNCEPIPE_DMARC_H

#include <stddef.h>
#include <stdint.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/dmarc_report.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/status.h"

/* ---- the reader (the module bouncepipe-dmarc.so, or the library bpdmarc) ---- */

/** Bumped whenever bp_dmarc_reader or dmarc_report.h changes: a module of another version
 *  is not used. */
#define BP_DMARC_READER_ABI 1u

/** What the module exports, as the symbol bp_dmarc_reader_module. */
typedef struct bp_dmarc_reader {
    unsigned abi;       /**< BP_DMARC_READER_ABI it was built with */
    size_t report_size; /**< sizeof(bp_dmarc_report) it was built with */
    /** bp_dmarc_read_attachment() */
    bp_status (*read_attachment)(const char *bytes, size_t len, int is_utf8_text, bp_arena *arena,
                                 bp_dmarc_report *out);
} bp_dmarc_reader;

/** The reader of this build (dmarc_reader.c): exported by the module; programs that link
 *  bpdmarc pass it to bp_dmarc_read_message() themselves. */
extern const bp_dmarc_reader bp_dmarc_reader_module;

/** Set up libxml2 once per process (no network, no external entities, silent errors); safe
 *  to call more than once.  bp_dmarc_read_attachment() calls it. */
void bp_dmarc_init(void);

/**
 * Read one attachment's bytes: XML, gzip or zip, told apart by their first bytes.
 * @param is_utf8_text non-zero when the bytes were converted to UTF-8 by the MIME layer
 *        (a text/xml part with a declared charset): the XML declaration's encoding is ignored
 * @param out filled in (out->outcome BP_DMARC_READ or BP_DMARC_REFUSED); its message fields
 *        (attachment, subject_*, name_*) are left as they are
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_dmarc_read_attachment(const char *bytes, size_t len, int is_utf8_text, bp_arena *arena,
                                   bp_dmarc_report *out);

/* ---- the core (dmarc.c): recognition, and the module loaded when it is needed ---- */

/**
 * The module's reader, loaded on first use: from $BOUNCEPIPE_DMARC_MODULE, beside the
 * executable, then from BP_MODULE_DIR (bouncepipe-dmarc.so).  It stays loaded.
 * @return the reader, or NULL when no usable module was found (bp_dmarc_reader_error() says
 *         why; a later call tries again).
 */
const bp_dmarc_reader *bp_dmarc_reader_load(void);

/** @return why the last bp_dmarc_reader_load() failed (static text), or "". */
const char *bp_dmarc_reader_error(void);

/**
 * Recognise and read the aggregate report in @p msg.
 *
 * A message is taken for a report when one of its own leaves (mime.h: report attachments,
 * text/xml) is named like one (receiver!domain!begin!end...), or its Subject reads
 * "Report Domain: ... Submitter: ...", or it is XML whose root element is <feedback>.
 * Only then is anything decompressed, and only then is the reader needed.
 * @param reader the reader to use, or NULL for the module (bp_dmarc_reader_load())
 * @param out filled in; out->outcome says which of the three it is
 * @return BP_OK whatever the message holds (a refused report is an outcome, not an error);
 *         BP_ERR_UNSUPPORTED when the message is a report and no reader could be loaded (an
 *         installation problem: pipe mode answers 75, the message is kept by the MTA);
 *         BP_ERR_NOMEM.
 */
bp_status bp_dmarc_read_message(const bp_mime_message *msg, const bp_dmarc_reader *reader, bp_arena *arena,
                                bp_dmarc_report *out);

/** @return "read", "refused" or "not-report". */
const char *bp_dmarc_outcome_name(bp_dmarc_outcome outcome);

/** @return "xml", "gzip", "zip" or "none". */
const char *bp_dmarc_packing_name(bp_dmarc_packing packing);

#endif
