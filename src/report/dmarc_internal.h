/*
 * dmarc_internal.h - what the files of the DMARC reader share (not public): the XML reader
 * as a sink that decompressed bytes are pushed into, the two archive readers that push, and
 * the refusal helper.  dmarc_reader.c drives them (include/bouncepipe/dmarc.h).
 */
#ifndef BOUNCEPIPE_DMARC_INTERNAL_H
#define BOUNCEPIPE_DMARC_INTERNAL_H

#include "bouncepipe/dmarc.h"

/** The streaming XML reader of one report (dmarc_xml.c). */
typedef struct bp_dmarc_xml bp_dmarc_xml;

/**
 * A reader filling @p out, which must be zeroed (but for its message fields).
 * @param is_utf8_text the bytes are UTF-8 whatever the XML declaration says
 * @param packing what the bytes come out of: for BP_DMARC_PACK_GZIP / _ZIP, XML that starts
 *        like an archive is refused as a nested archive
 * @return BP_OK with *@p x set (free it with bp_dmarc_xml_free()), or BP_ERR_NOMEM.
 */
bp_status bp_dmarc_xml_new(bp_arena *arena, bp_dmarc_report *out, int is_utf8_text, bp_dmarc_packing packing,
                           bp_dmarc_xml **x);

/**
 * Push the next @p len bytes of XML.  Counts them into out->xml_bytes against
 * BP_MAX_DMARC_XML_BYTES.
 * @return BP_OK to go on; BP_ERR_LIMIT or BP_ERR_PARSE when the report was refused (out->reason
 *         says why; push nothing more); BP_ERR_NOMEM.
 */
bp_status bp_dmarc_xml_push(bp_dmarc_xml *x, const char *data, size_t len);

/**
 * End of input: finish the parse and check that the report has what identifies it.
 * @return BP_OK (out->outcome is BP_DMARC_READ or BP_DMARC_REFUSED); BP_ERR_NOMEM.
 */
bp_status bp_dmarc_xml_finish(bp_dmarc_xml *x);

/** Release the reader (not the report, which is in the arena); NULL is allowed. */
void bp_dmarc_xml_free(bp_dmarc_xml *x);

/**
 * Inflate the gzip member(s) of @p bytes into @p x (zlib), within BP_MAX_DMARC_XML_BYTES and
 * BP_MAX_DMARC_RATIO.  @return as bp_dmarc_xml_push().
 */
bp_status bp_dmarc_gunzip(const char *bytes, size_t len, bp_dmarc_xml *x, bp_arena *arena, bp_dmarc_report *out);

/**
 * Read the report file of the zip archive @p bytes into @p x (libzip): at most
 * BP_MAX_DMARC_ZIP_ENTRIES entries, the first named *.xml (or the only entry), not encrypted,
 * within BP_MAX_DMARC_XML_BYTES and BP_MAX_DMARC_RATIO.  @return as bp_dmarc_xml_push().
 */
bp_status bp_dmarc_unzip(const char *bytes, size_t len, bp_dmarc_xml *x, bp_arena *arena, bp_dmarc_report *out);

/**
 * Refuse the report: set out->outcome, out->refusal = @p why and out->reason from @p fmt,
 * unless it was refused already (the first reason is the one kept).
 * @return @p why, or BP_ERR_NOMEM when the reason could not be written.
 */
bp_status bp_dmarc_refuse(bp_dmarc_report *out, bp_arena *arena, bp_status why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Check the output/input ratio of a decompressor (BP_MAX_DMARC_RATIO past the grace bytes).
 *  @return BP_OK or the refusal (bp_dmarc_refuse() with @p what naming the format). */
bp_status bp_dmarc_check_ratio(bp_dmarc_report *out, bp_arena *arena, const char *what, uint64_t produced,
                               uint64_t consumed);

#endif
