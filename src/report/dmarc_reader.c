/*
 * dmarc_reader.c - the DMARC report reader's entry points (contract: include/bouncepipe/dmarc.h):
 * an attachment's packing, told from its first bytes, and the pipeline dmarc_archive.c
 * (decompression) -> dmarc_xml.c (XML) it is pushed through; the refusal helper both use
 * (dmarc_internal.h); and bp_dmarc_reader_module, the table the module exports.
 *
 * Built into the module bouncepipe-dmarc.so (with libxml2, zlib and libzip) and into the
 * library bpdmarc, never into the core: see dmarc.h.
 *
 * Ownership: everything is in the caller's arena.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bouncepipe/dmarc.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "dmarc_internal.h"

/* ---- the attachment ---- */

static bp_dmarc_packing packing_of(const unsigned char *b, size_t len)
{
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return BP_DMARC_PACK_GZIP;
    if (len >= 4 && b[0] == 'P' && b[1] == 'K' && (b[2] == 3 || b[2] == 5) && (b[3] == 4 || b[3] == 6))
        return BP_DMARC_PACK_ZIP; /* a local file header, or the end record of an empty zip */
    return BP_DMARC_PACK_XML;
}

bp_status bp_dmarc_read_attachment(const char *bytes, size_t len, int is_utf8_text, bp_arena *arena,
                                   bp_dmarc_report *out)
{
    bp_dmarc_xml *x = NULL;
    out->packing = packing_of((const unsigned char *)bytes, len);
    out->packed_bytes = len;
    bp_status st = bp_dmarc_xml_new(arena, out, is_utf8_text, out->packing, &x);
    if (st != BP_OK)
        return st;
    switch (out->packing) {
    case BP_DMARC_PACK_GZIP: st = bp_dmarc_gunzip(bytes, len, x, arena, out); break;
    case BP_DMARC_PACK_ZIP: st = bp_dmarc_unzip(bytes, len, x, arena, out); break;
    default: st = bp_dmarc_xml_push(x, bytes, len); break;
    }
    if (st == BP_OK)
        st = bp_dmarc_xml_finish(x);
    bp_dmarc_xml_free(x);
    if (bp_arena_failed(arena)) /* a value that could not be copied may have refused the report */
        return BP_ERR_NOMEM;
    /* a refusal is an outcome (out->reason), not an error of ours */
    return st == BP_ERR_LIMIT || st == BP_ERR_PARSE ? BP_OK : st;
}

const bp_dmarc_reader bp_dmarc_reader_module = {BP_DMARC_READER_ABI, sizeof(bp_dmarc_report), bp_dmarc_read_attachment};
