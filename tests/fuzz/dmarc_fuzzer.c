/*
 * dmarc_fuzzer.c - DMARC aggregate reports: attachment -> decompression -> XML -> records.
 *
 * The first input byte picks the path, the rest is its input:
 *   0: the bytes are an attachment: bp_dmarc_read_attachment() tells XML, gzip and zip apart;
 *   1: the bytes are XML, gzip'ed here (zlib), so the fuzzer's effort goes into the XML
 *      behind a valid gzip stream;
 *   2: the bytes are XML, put in a zip here (libzip), likewise;
 *   3: the bytes are a whole message: bp_mime_parse() and bp_dmarc_read_message() (recognition by
 *      file name, Subject, root element; the MIME adapter's report attachments);
 *   4: the bytes are XML in a text/xml part declared ISO-8859-1 of a synthetic report
 *      message (the MIME layer converts it to UTF-8; the XML declaration is then ignored).
 * After each run the promises of dmarc.h are checked (dmarc_check.h, shared with
 * tests/unit/test_dmarc.c) and a broken one aborts: a reason when refused, counts within limits.h,
 * every string kept valid UTF-8 without control bytes and at most BP_MAX_DMARC_FIELD_BYTES.
 *
 * Seeds: corpus/dmarc/, written from fixtures/dmarc/ by `make_fixtures.py --seeds`.
 */
#include <stdio.h>
#include <zip.h>
#include <zlib.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/dmarc.h"
#include "bouncepipe/mime.h"
#include "dmarc_check.h"
#include "fuzz_common.h"

/* A broken promise of dmarc.h is a finding. */
static void check(const bp_dmarc_report *r)
{
    if (bp_dmarc_check_report(r) != NULL)
        abort();
}

/* gzip @size bytes into a malloc'ed buffer (NULL on failure). */
static unsigned char *gzip_of(const uint8_t *data, size_t size, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, (uLong)size) + 64;
    unsigned char *out = malloc(cap);
    if (out != NULL) {
        zs.next_in = (Bytef *)(uintptr_t)data;
        zs.avail_in = (uInt)size;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
            free(out);
            out = NULL;
        }
        *out_len = zs.total_out;
    }
    deflateEnd(&zs);
    return out;
}

/* A zip of one entry report.xml holding @size bytes, malloc'ed (NULL on failure). */
static unsigned char *zip_of(const uint8_t *data, size_t size, size_t *out_len)
{
    unsigned char *out = NULL;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (src == NULL)
        goto done;
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    if (za == NULL) {
        zip_source_free(src); /* not taken by a failed open */
        goto done;
    }
    zip_source_keep(src); /* still ours after zip_close() */
    zip_source_t *file = zip_source_buffer(za, data, size, 0);
    if (file != NULL && zip_file_add(za, "report.xml", file, 0) < 0) {
        zip_source_free(file); /* not taken by a failed add */
        file = NULL;
    }
    if (file == NULL) {
        zip_discard(za);
        zip_source_free(src);
        goto done;
    }
    if (zip_close(za) != 0) {
        zip_discard(za);
        zip_source_free(src);
        goto done;
    }
    if (zip_source_open(src) == 0) {
        zip_source_seek(src, 0, SEEK_END);
        zip_int64_t n = zip_source_tell(src);
        zip_source_seek(src, 0, SEEK_SET);
        out = n > 0 ? malloc((size_t)n) : NULL;
        if (out != NULL && zip_source_read(src, out, (zip_uint64_t)n) == n) {
            *out_len = (size_t)n;
        } else {
            free(out);
            out = NULL;
        }
        zip_source_close(src);
    }
    zip_source_free(src);
done:
    zip_error_fini(&ze);
    return out;
}

static const char text_xml_head[] = "From: dmarc@mx.example.net\r\n"
                                    "To: dmarc@bounces.example.com\r\n"
                                    "Subject: Report Domain: example.com Submitter: mx.example.net Report-ID: f-1\r\n"
                                    "MIME-Version: 1.0\r\n"
                                    "Content-Type: text/xml; charset=iso-8859-1\r\n"
                                    "Content-Transfer-Encoding: 8bit\r\n"
                                    "\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int mode = fuzz_take_mode(&data, &size, 5);
    if (mode < 0)
        return 0;
    bp_mime_init();
    bp_dmarc_init();
    bp_arena *arena = bp_arena_new();
    if (arena == NULL)
        return 0;
    bp_dmarc_report r;
    memset(&r, 0, sizeof(r));
    unsigned char *packed = NULL;
    size_t packed_len = 0;
    switch (mode) {
    case 0:
        if (bp_dmarc_read_attachment((const char *)data, size, 0, arena, &r) == BP_OK)
            check(&r);
        break;
    case 1:
    case 2:
        packed = mode == 1 ? gzip_of(data, size, &packed_len) : zip_of(data, size, &packed_len);
        if (packed != NULL && bp_dmarc_read_attachment((const char *)packed, packed_len, 0, arena, &r) == BP_OK)
            check(&r);
        break;
    case 3:
    case 4: {
        size_t head = mode == 4 ? sizeof(text_xml_head) - 1 : 0;
        char *msg = malloc(head + size + 1);
        if (msg == NULL)
            break;
        memcpy(msg, text_xml_head, head);
        if (size > 0)
            memcpy(msg + head, data, size);
        bp_mime_message m;
        if (bp_mime_parse(msg, head + size, arena, &m) == BP_OK &&
            bp_dmarc_read_message(&m, &bp_dmarc_reader_module, arena, &r) == BP_OK)
            check(&r);
        free(msg);
        break;
    }
    default: break;
    }
    free(packed);
    bp_arena_free(arena);
    return 0;
}
