/*
 * mime.c - the GMime adapter; the only file that includes GMime.
 *
 * bp_mime_parse(): bytes -> bp_part tree (contract in include/bouncepipe/mime.h).
 *   Line ends are made LF first (GMime copes with CRLF but not with bare CR, which real
 *   bounces contain).  The parser runs in loose RFC-compliance modes because bounces are
 *   written by every MTA ever shipped; its warnings are counted, not fatal.
 *   Text is decoded through GMime's own filters (transfer decoding, charset -> UTF-8), read
 *   in chunks so that a huge part costs at most BP_MAX_TEXT_BYTES.
 * bp_mime_decode_header(), bp_mime_to_utf8(): RFC 2047 and charset conversion for text
 *   the report parsers find outside of MIME labels.
 *
 * Ownership: GMime objects live only inside bp_mime_parse(); each g_object_unref() below
 * says what it releases.  Everything handed out is copied into the caller's arena.
 */
#include "bouncepipe/mime.h"

#include <gmime/gmime.h>
#include <string.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

static GMimeParserOptions *parser_options; /* process-wide, set up by bp_mime_init() */

struct walk_ctx {
    bp_arena *arena;
    bp_mime_message *msg;
    unsigned next_index;
};

static void count_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer user)
{
    (void)offset;
    (void)code;
    (void)item;
    unsigned *warnings = user;
    if (warnings != NULL)
        (*warnings)++;
}

void bp_mime_init(void)
{
    if (parser_options != NULL)
        return;
    g_mime_init();
    parser_options = g_mime_parser_options_new();
    g_mime_parser_options_set_address_compliance_mode(parser_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(parser_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_rfc2047_compliance_mode(parser_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(parser_options, TRUE);
    /* Undeclared 8-bit header text: try UTF-8, then the Japanese and Western encodings that
     * bounces in the wild use most. */
    static const char *fallback[] = {"utf-8", "iso-2022-jp", "shift_jis", "euc-jp", "iso-8859-1", NULL};
    g_mime_parser_options_set_fallback_charsets(parser_options, fallback);
}

/* LF-only copy of the input: CRLF -> LF, bare CR -> LF.  Caller frees with g_free. */
static guint8 *normalise_line_ends(const char *in, size_t len, size_t *out_len)
{
    guint8 *out = g_try_malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\r') {
            out[o++] = '\n';
            if (i + 1 < len && in[i + 1] == '\n')
                i++;
        } else {
            out[o++] = (guint8)c;
        }
    }
    *out_len = o;
    return out;
}

static const char *lower_dup(bp_arena *arena, const char *s, const char *fallback)
{
    char *p = bp_arena_strdup(arena, (s != NULL && *s != '\0') ? s : fallback);
    return p != NULL ? bp_ascii_lower(p) : NULL;
}

static bp_status copy_headers(struct walk_ctx *ctx, GMimeObject *object, bp_part *part)
{
    GMimeHeaderList *list = g_mime_object_get_header_list(object); /* borrowed */
    int n = list != NULL ? g_mime_header_list_get_count(list) : 0;
    if (n <= 0)
        return BP_OK;
    if ((unsigned)n > BP_MAX_HEADERS_PER_PART)
        n = (int)BP_MAX_HEADERS_PER_PART;
    bp_header *hs = bp_arena_alloc(ctx->arena, sizeof(*hs) * (size_t)n);
    if (hs == NULL)
        return BP_ERR_NOMEM;
    size_t kept = 0;
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(list, i); /* borrowed */
        const char *name = g_mime_header_get_name(h);
        const char *value = g_mime_header_get_value(h);
        if (name == NULL)
            continue;
        if (value == NULL)
            value = "";
        size_t vlen = strlen(value);
        if (vlen > BP_MAX_HEADER_BYTES)
            vlen = BP_MAX_HEADER_BYTES;
        hs[kept].name = bp_arena_strdup(ctx->arena, name);
        hs[kept].value = bp_trim_dup(ctx->arena, value, vlen);
        if (hs[kept].name == NULL || hs[kept].value == NULL)
            return BP_ERR_NOMEM;
        kept++;
    }
    part->headers = hs;
    part->n_headers = kept;
    return BP_OK;
}

/* Read a leaf's content through GMime's decoding filters, at most BP_MAX_TEXT_BYTES. */
static bp_status read_body(struct walk_ctx *ctx, GMimePart *leaf, int to_utf8, bp_part *part)
{
    GMimeDataWrapper *content = g_mime_part_get_content(leaf); /* borrowed */
    if (content == NULL) {
        part->body = "";
        return BP_OK;
    }
    GMimeStream *raw = g_mime_data_wrapper_get_stream(content); /* borrowed */
    if (raw == NULL) {
        part->body = "";
        return BP_OK;
    }
    g_mime_stream_reset(raw);
    GMimeStream *filtered = g_mime_stream_filter_new(raw); /* owned: unref below */
    GMimeFilter *f = NULL;
    GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(content);
    if (enc != GMIME_CONTENT_ENCODING_DEFAULT) {
        f = g_mime_filter_basic_new(enc, FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
        g_object_unref(f); /* the filter stream holds its own reference */
    }
    const char *charset = part->charset;
    if (to_utf8 && charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
        g_ascii_strcasecmp(charset, "us-ascii") != 0) {
        f = g_mime_filter_charset_new(charset, "utf-8");
        if (f != NULL) { /* NULL: unknown charset, keep the bytes */
            g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
            g_object_unref(f);
        }
    }
    f = g_mime_filter_dos2unix_new(FALSE);
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
    g_object_unref(f);

    bp_status st = BP_OK;
    size_t cap = 8192, len = 0;
    char *buf = g_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= BP_MAX_TEXT_BYTES) {
                part->truncated = 1;
                break;
            }
            cap = cap * 2 > BP_MAX_TEXT_BYTES ? BP_MAX_TEXT_BYTES : cap * 2;
            buf = g_realloc(buf, cap + 1);
        }
        ssize_t n = g_mime_stream_read(filtered, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    part->body = bp_arena_strndup(ctx->arena, buf, len);
    part->body_len = len;
    if (part->body == NULL)
        st = BP_ERR_NOMEM;
    g_free(buf);
    g_object_unref(filtered); /* releases the filters; raw stays with the wrapper */
    return st;
}

static int is_report_part(const bp_part *p)
{
    if (strcmp(p->type, "message") == 0)
        return 1; /* delivery-status, global-delivery-status, feedback-report, ... */
    return strcmp(p->type, "text") == 0 && (strcmp(p->subtype, "rfc822-headers") == 0);
}

static bp_status walk(struct walk_ctx *ctx, GMimeObject *object, GMimeObject *header_source, bp_part *parent,
                      unsigned depth, bp_part **out);

static bp_status walk_children(struct walk_ctx *ctx, GMimeObject *object, bp_part *part)
{
    bp_part **tail = &part->child;
    if (GMIME_IS_MULTIPART(object)) {
        GMimeMultipart *mp = GMIME_MULTIPART(object);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++) {
            bp_part *child = NULL;
            bp_status st = walk(ctx, g_mime_multipart_get_part(mp, i), NULL, part, part->depth + 1, &child);
            if (st != BP_OK)
                return st;
            if (child == NULL)
                continue;
            *tail = child;
            tail = &child->next;
        }
    } else if (GMIME_IS_MESSAGE_PART(object)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object)); /* borrowed */
        if (inner == NULL)
            return BP_OK;
        GMimeObject *body = g_mime_message_get_mime_part(inner); /* borrowed */
        bp_part *child = NULL;
        bp_status st =
            walk(ctx, body != NULL ? body : GMIME_OBJECT(inner), GMIME_OBJECT(inner), part, part->depth + 1, &child);
        if (st != BP_OK)
            return st;
        *tail = child;
    }
    return BP_OK;
}

/*
 * Build the bp_part for @object.  @header_source, when not NULL, is the GMimeMessage whose
 * headers belong to this part (a message and its top MIME part are one bp_part).
 */
static bp_status walk(struct walk_ctx *ctx, GMimeObject *object, GMimeObject *header_source, bp_part *parent,
                      unsigned depth, bp_part **out)
{
    *out = NULL;
    if (depth > BP_MAX_MIME_DEPTH || ctx->msg->n_parts >= BP_MAX_MIME_PARTS) {
        ctx->msg->parts_truncated = 1;
        return BP_OK;
    }
    bp_part *part = bp_arena_alloc(ctx->arena, sizeof(*part));
    if (part == NULL)
        return BP_ERR_NOMEM;
    part->depth = depth;
    part->index = ctx->next_index++;
    part->parent = parent;
    part->is_message = header_source != NULL;
    ctx->msg->n_parts++;

    GMimeContentType *ct = object != NULL ? g_mime_object_get_content_type(object) : NULL; /* borrowed */
    part->type = lower_dup(ctx->arena, ct ? g_mime_content_type_get_media_type(ct) : NULL, "text");
    part->subtype = lower_dup(ctx->arena, ct ? g_mime_content_type_get_media_subtype(ct) : NULL, "plain");
    if (part->type == NULL || part->subtype == NULL)
        return BP_ERR_NOMEM;
    if (ct != NULL) {
        const char *cs = g_mime_content_type_get_parameter(ct, "charset");
        if (cs != NULL && *cs != '\0')
            part->charset = lower_dup(ctx->arena, cs, cs);
        const char *rt = g_mime_content_type_get_parameter(ct, "report-type");
        if (rt != NULL && *rt != '\0')
            part->report_type = lower_dup(ctx->arena, rt, rt);
    }
    GMimeContentDisposition *cd = object != NULL ? g_mime_object_get_content_disposition(object) : NULL;
    part->is_attachment = cd != NULL && g_mime_content_disposition_is_attachment(cd);

    bp_status st = copy_headers(ctx, header_source != NULL ? header_source : object, part);
    if (st != BP_OK)
        return st;
    *out = part;

    if (object == NULL)
        return BP_OK;
    if (GMIME_IS_MULTIPART(object) || GMIME_IS_MESSAGE_PART(object))
        return walk_children(ctx, object, part);
    if (GMIME_IS_PART(object)) {
        int is_text = strcmp(part->type, "text") == 0;
        if (is_text || is_report_part(part))
            return read_body(ctx, GMIME_PART(object), is_text && !is_report_part(part), part);
    }
    return BP_OK;
}

bp_status bp_mime_parse(const char *bytes, size_t len, bp_arena *arena, bp_mime_message *out)
{
    bp_status st = BP_OK;
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *message = NULL;

    memset(out, 0, sizeof(*out));
    bp_mime_init();
    if (len > BP_MAX_MESSAGE_BYTES)
        len = BP_MAX_MESSAGE_BYTES;
    size_t norm_len = 0;
    guint8 *norm = normalise_line_ends(bytes, len, &norm_len);
    if (norm == NULL)
        return BP_ERR_NOMEM;
    GByteArray *array = g_byte_array_new_take(norm, norm_len); /* takes norm */
    stream = g_mime_stream_mem_new_with_byte_array(array);     /* takes array */

    parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    /* options are shared; the warning counter is per parse, and parsing is single-threaded */
    g_mime_parser_options_set_warning_callback(parser_options, count_warning, &out->warnings);
    message = g_mime_parser_construct_message(parser, parser_options);
    g_mime_parser_options_set_warning_callback(parser_options, count_warning, NULL);
    if (message == NULL) {
        st = BP_ERR_PARSE;
        goto out;
    }
    struct walk_ctx ctx = {arena, out, 0};
    GMimeObject *body = g_mime_message_get_mime_part(message); /* borrowed */
    st = walk(&ctx, body, GMIME_OBJECT(message), NULL, 0, &out->root);
    if (st == BP_OK && out->root == NULL)
        st = BP_ERR_PARSE;

out:
    if (message != NULL)
        g_object_unref(message); /* the whole GMime tree */
    if (parser != NULL)
        g_object_unref(parser);
    if (stream != NULL)
        g_object_unref(stream); /* and with it the normalised copy */
    return st;
}

const char *bp_part_header(const bp_part *part, const char *name)
{
    for (size_t i = 0; i < part->n_headers; i++)
        if (g_ascii_strcasecmp(part->headers[i].name, name) == 0)
            return part->headers[i].value;
    return NULL;
}

int bp_part_is(const bp_part *part, const char *type, const char *subtype)
{
    return strcmp(part->type, type) == 0 && (strcmp(subtype, "*") == 0 || strcmp(part->subtype, subtype) == 0);
}

const bp_part *bp_part_walk_next(const bp_part *root, const bp_part *part)
{
    if (part->child != NULL)
        return part->child;
    while (part != NULL && part != root) {
        if (part->next != NULL)
            return part->next;
        part = part->parent;
    }
    return NULL;
}

const bp_part *bp_part_find(const bp_part *root, const char *type, const char *subtype)
{
    for (const bp_part *p = root; p != NULL; p = bp_part_walk_next(root, p))
        if (bp_part_is(p, type, subtype))
            return p;
    return NULL;
}

char *bp_mime_decode_header(bp_arena *arena, const char *value)
{
    if (value == NULL)
        return NULL;
    bp_mime_init();
    char *decoded = g_mime_utils_header_decode_text(parser_options, value); /* owned */
    char *copy = bp_arena_strdup(arena, decoded != NULL ? decoded : value);
    g_free(decoded);
    return copy;
}

char *bp_mime_to_utf8(bp_arena *arena, const char *charset, const char *s, size_t len)
{
    if (charset == NULL || s == NULL)
        return NULL;
    bp_mime_init();
    iconv_t cd = g_mime_iconv_open("utf-8", charset);
    if (cd == (iconv_t)-1)
        return NULL;
    char *converted = g_mime_iconv_strndup(cd, s, len); /* owned */
    g_mime_iconv_close(cd);
    char *copy = converted != NULL ? bp_arena_strdup(arena, converted) : NULL;
    g_free(converted);
    return copy;
}
