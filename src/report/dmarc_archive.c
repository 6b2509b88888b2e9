/*
 * dmarc_archive.c - the two ways a DMARC report is packed: gzip (zlib) and zip (libzip).
 * Contract: src/report/dmarc_internal.h.
 *
 * Both decompress into a fixed 64 KiB buffer and push each piece into the XML reader, so the
 * decompressed report is never held whole: memory stays at zlib's or libzip's state, what the
 * reader keeps, and (for zip) libzip's copy of the central directory, which
 * BP_MAX_ATTACHMENT_BYTES bounds.  Caps, each refusing the report with its reason:
 * decompressed bytes (BP_MAX_DMARC_XML_BYTES, counted by the reader), the ratio of
 * decompressed to compressed bytes (BP_MAX_DMARC_RATIO, past BP_DMARC_RATIO_GRACE_BYTES; for a
 * zip also checked on the sizes its directory declares, before reading),
 * zip entries (BP_MAX_DMARC_ZIP_ENTRIES); an archive inside the archive is refused by the
 * reader when it sees its first bytes.  CRC and length checks are zlib's and libzip's.
 *
 * gzip: every member of a multi-member file is read (RFC 1952 allows them; gzip -d does the
 * same); bytes after the last member that do not start another one are ignored, as gzip -d
 * ignores "trailing garbage".
 * zip: the entry read is the first whose name ends in ".xml" (any case), else the only
 * entry; an encrypted entry is refused (there is no password to give).
 *
 * Ownership: zlib's and libzip's objects live only inside each call; the buffer is on the
 * stack.  zlib allocates through alloc.h (z_alloc); libzip has no allocator hook.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>
#include <zlib.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/limits.h"
#include "dmarc_internal.h"

enum { CHUNK = 64 * 1024 };

bp_status bp_dmarc_check_ratio(bp_dmarc_report *out, bp_arena *arena, const char *what, uint64_t produced,
                               uint64_t consumed)
{
    if (produced <= BP_DMARC_RATIO_GRACE_BYTES)
        return BP_OK;
    if (consumed > 0 && produced / consumed < BP_MAX_DMARC_RATIO)
        return BP_OK;
    return bp_dmarc_refuse(out, arena, BP_ERR_LIMIT,
                           "%s: compression ratio over %u:1 (%llu bytes out of %llu) (BP_MAX_DMARC_RATIO)", what,
                           BP_MAX_DMARC_RATIO, (unsigned long long)produced, (unsigned long long)consumed);
}

/* zlib's memory through alloc.h, so that its allocations fail where ours do under a test's
 * fault hook */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return bp_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

bp_status bp_dmarc_gunzip(const char *bytes, size_t len, bp_dmarc_xml *x, bp_arena *arena, bp_dmarc_report *out)
{
    unsigned char buf[CHUNK];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) /* 16: a gzip header and trailer, nothing else */
        return BP_ERR_NOMEM;
    bp_status st = BP_OK;
    size_t at = 0;      /* input consumed by finished members */
    uint64_t total = 0; /* output of all members */
    zs.next_in = (Bytef *)(uintptr_t)bytes;
    /* the input is at most BP_MAX_ATTACHMENT_BYTES, which fits zlib's uInt */
    zs.avail_in = (uInt)len;
    for (;;) {
        zs.next_out = buf;
        zs.avail_out = sizeof(buf);
        int zr = inflate(&zs, Z_NO_FLUSH);
        size_t produced = sizeof(buf) - zs.avail_out;
        total += produced;
        if (produced > 0) {
            st = bp_dmarc_xml_push(x, (const char *)buf, produced);
            if (st == BP_OK)
                st = bp_dmarc_check_ratio(out, arena, "gzip", total, (uint64_t)(at + zs.total_in));
            if (st != BP_OK)
                break;
        }
        if (zr == Z_STREAM_END) {
            at += zs.total_in;
            /* another member follows: read it too; anything else is trailing garbage */
            if (len - at >= 2 && (unsigned char)bytes[at] == 0x1f && (unsigned char)bytes[at + 1] == 0x8b) {
                if (inflateReset(&zs) != Z_OK) {
                    st = BP_ERR_NOMEM;
                    break;
                }
                zs.next_in = (Bytef *)(uintptr_t)(bytes + at);
                zs.avail_in = (uInt)(len - at);
                continue;
            }
            break;
        }
        if (zr == Z_MEM_ERROR) {
            st = BP_ERR_NOMEM;
            break;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0) {
            st = bp_dmarc_refuse(out, arena, BP_ERR_PARSE, "gzip: the data ends before the end of the stream");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            st = bp_dmarc_refuse(out, arena, BP_ERR_PARSE, "gzip: %s", zs.msg != NULL ? zs.msg : "corrupt data");
            break;
        }
    }
    inflateEnd(&zs);
    return st;
}

/* libzip's error @p e: out of memory is ours to retry (BP_ERR_NOMEM), anything else refuses
 * the report. */
static bp_status zip_failed(bp_dmarc_report *out, bp_arena *arena, zip_error_t *e)
{
    if (zip_error_code_zip(e) == ZIP_ER_MEMORY)
        return BP_ERR_NOMEM;
    return bp_dmarc_refuse(out, arena, BP_ERR_PARSE, "zip: %s", zip_error_strerror(e));
}

/* Does @name end in ".xml", any case? */
static int is_xml_name(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    return n >= 4 && strcasecmp(name + n - 4, ".xml") == 0;
}

bp_status bp_dmarc_unzip(const char *bytes, size_t len, bp_dmarc_xml *x, bp_arena *arena, bp_dmarc_report *out)
{
    unsigned char buf[CHUNK];
    bp_status st = BP_OK;
    zip_error_t error;
    zip_source_t *src = NULL;
    zip_t *za = NULL;
    zip_file_t *zf = NULL;

    zip_error_init(&error);
    src = zip_source_buffer_create(bytes, len, 0, &error); /* reads the caller's bytes in place */
    if (src == NULL) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    za = zip_open_from_source(src, ZIP_RDONLY, &error);
    if (za == NULL) {
        st = zip_failed(out, arena, &error);
        zip_source_free(src); /* not taken over by a failed open */
        goto out;
    }
    /* za owns src from here */
    zip_int64_t n = zip_get_num_entries(za, 0);
    if (n > (zip_int64_t)BP_MAX_DMARC_ZIP_ENTRIES) {
        st = bp_dmarc_refuse(out, arena, BP_ERR_LIMIT, "zip: %lld entries, more than %u (BP_MAX_DMARC_ZIP_ENTRIES)",
                             (long long)n, BP_MAX_DMARC_ZIP_ENTRIES);
        goto out;
    }
    zip_int64_t pick = -1;
    for (zip_int64_t i = 0; i < n && pick < 0; i++)
        if (is_xml_name(zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW)))
            pick = i;
    if (pick < 0 && n == 1)
        pick = 0;
    if (pick < 0) {
        st = bp_dmarc_refuse(out, arena, BP_ERR_PARSE, "zip: %lld entries and none named *.xml", (long long)n);
        goto out;
    }
    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(za, (zip_uint64_t)pick, 0, &sb) != 0) {
        st = zip_failed(out, arena, zip_get_error(za));
        goto out;
    }
    if ((sb.valid & ZIP_STAT_ENCRYPTION_METHOD) && sb.encryption_method != ZIP_EM_NONE) {
        st = bp_dmarc_refuse(out, arena, BP_ERR_PARSE, "zip: the report file is encrypted");
        goto out;
    }
    if ((sb.valid & ZIP_STAT_SIZE) && sb.size > BP_MAX_DMARC_XML_BYTES) {
        st = bp_dmarc_refuse(out, arena, BP_ERR_LIMIT,
                             "zip: the report file says it holds %llu bytes, more than %u (BP_MAX_DMARC_XML_BYTES)",
                             (unsigned long long)sb.size, BP_MAX_DMARC_XML_BYTES);
        goto out;
    }
    uint64_t packed = (sb.valid & ZIP_STAT_COMP_SIZE) ? sb.comp_size : len;
    /* a bomb that says what it is stops here; one whose sizes lie, while it is read */
    if ((sb.valid & ZIP_STAT_SIZE) && (st = bp_dmarc_check_ratio(out, arena, "zip", sb.size, packed)) != BP_OK)
        goto out;
    zf = zip_fopen_index(za, (zip_uint64_t)pick, 0);
    if (zf == NULL) {
        st = zip_failed(out, arena, zip_get_error(za));
        goto out;
    }
    uint64_t total = 0;
    for (;;) {
        zip_int64_t got = zip_fread(zf, buf, sizeof(buf));
        if (got < 0) {
            st = zip_failed(out, arena, zip_file_get_error(zf));
            break;
        }
        if (got == 0)
            break;
        total += (uint64_t)got;
        st = bp_dmarc_xml_push(x, (const char *)buf, (size_t)got);
        if (st == BP_OK)
            st = bp_dmarc_check_ratio(out, arena, "zip", total, packed);
        if (st != BP_OK)
            break;
    }

out:
    if (zf != NULL)
        zip_fclose(zf);
    if (za != NULL)
        zip_discard(za); /* read-only: release, write nothing; frees src */
    zip_error_fini(&error);
    return st;
}
