/*
 * mime.c - the GMime adapter; the only file that includes GMime.
 *
 * bp_mime_parse(): bytes -> bp_part tree (contract in include/bouncepipe/mime.h).
 *   The bytes are read in place through a seekable stream (no copy: a 50 MB message costs
 *   50 MB, not 100), which shows a bare CR as LF (GMime copes with LF and CRLF but not with
 *   CR alone, which real bounces contain).  The parser runs in loose RFC-compliance modes because bounces are
 *   written by every MTA ever shipped.  It gets no warning callback: with one, GMime decodes
 *   every header during the parse just to check it, and no caller used the warnings.
 *   Header values are what g_mime_header_get_value() gives (unfolded, encoded words and
 *   undeclared 8-bit text decoded), but a value whose raw form has no byte >= 0x80 and no
 *   "=?" (most of them: Received, DKIM-Signature, ...) is only unfolded (by GMime), because
 *   decoding leaves it as it is (header_value_dup(); tests/unit/test_mime.c checks the two agree).
 *   Text is decoded through GMime's own filters (transfer decoding, charset -> UTF-8), read
 *   in chunks so that a huge part costs at most BP_MAX_TEXT_BYTES, and all parts together at
 *   most BP_MAX_DECODED_BYTES.  Before parsing, input_view_build() shortens over-long header
 *   fields and cuts the input where GMime's per-header and per-part objects would cost
 *   unbounded memory (limits.h).  Report attachments (is_report_attachment()) are only
 *   transfer-decoded, within their own budget, BP_MAX_ATTACHMENT_BYTES.
 *   The message's own Date is GMime's reading of it (message_date()): the evidence time of
 *   what the message reports.
 * bp_mime_decode_header(), bp_mime_to_utf8(): RFC 2047 and charset conversion for text
 *   the report parsers find outside of MIME labels.
 *
 * Ownership: GMime objects live only inside bp_mime_parse(); each g_object_unref() below
 * says what it releases.  Everything handed out is copied into the caller's arena.
 */
#include "bouncepipe/mime.h"

#include <gmime/gmime.h>
#include <stdint.h>
#include <string.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

static GMimeParserOptions *parser_options; /* process-wide, set up by bp_mime_init() */

struct walk_ctx {
    bp_arena *arena;
    bp_mime_message *msg;
    unsigned next_index;
};

/* Non-zero: every header value comes from g_mime_header_get_value() (bp_mime_set_reference_headers). */
static int reference_headers;

void bp_mime_set_reference_headers(int on)
{
    reference_headers = on;
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

/*
 * What GMime is shown of the message: spans of the caller's bytes, read in place.
 *
 * input_view_build() walks the lines once before parsing and decides what GMime may see
 * (limits.h explains each limit):
 *   - a header-like line longer than BP_MAX_HEADER_BYTES keeps its first BP_MAX_HEADER_BYTES
 *     bytes and its line end; continuation lines that take one field past BP_MAX_HEADER_BYTES
 *     are left out, so a 10 MB header costs 100 KB and the report after it is still read;
 *   - past BP_MAX_MIME_HEADER_LINES / _HEADER_BYTES / _DASH_LINES the rest is cut.
 * The view is a list of spans (source offset, length) laid end to end; the input is never
 * copied.
 */
struct input_span {
    gint64 view_off; /* where the span starts in the view */
    size_t src_off;  /* and in the caller's bytes */
    size_t len;
};

struct input_view {
    const char *data; /* borrowed: the caller's message bytes */
    size_t data_len;
    struct input_span *spans; /* owned: g_free */
    size_t n_spans, cap_spans;
    gint64 len; /* bytes in the view */
    int cut;    /* something was left out */
};

/* Show @len more bytes of the source from @src_off (merged with the last span if adjacent). */
static int view_add(struct input_view *v, size_t src_off, size_t len)
{
    if (len == 0)
        return 0;
    struct input_span *last = v->n_spans > 0 ? &v->spans[v->n_spans - 1] : NULL;
    if (last != NULL && last->src_off + last->len == src_off) {
        last->len += len;
    } else {
        if (v->n_spans == v->cap_spans) {
            size_t cap = v->cap_spans ? v->cap_spans * 2 : 8;
            struct input_span *ns = g_try_realloc(v->spans, cap * sizeof(*ns));
            if (ns == NULL)
                return -1;
            v->spans = ns;
            v->cap_spans = cap;
        }
        v->spans[v->n_spans++] = (struct input_span){v->len, src_off, len};
    }
    v->len += (gint64)len;
    return 0;
}

/* Does the line look like a header field ("Name:", RFC 5322 ftext then optional blanks) or
 * a continuation of one (leading white space)? */
static int is_header_like(const char *line, size_t len)
{
    if (len == 0)
        return 0;
    if (line[0] == ' ' || line[0] == '\t')
        return 1;
    size_t i = 0;
    while (i < len && (unsigned char)line[i] > 32 && (unsigned char)line[i] < 127 && line[i] != ':')
        i++;
    if (i == 0)
        return 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i < len && line[i] == ':';
}

/* Bytes of the line end at the end of @line[0, n): 2 for CRLF, 1 for LF or CR, 0 for none. */
static size_t eol_len(const char *line, size_t n)
{
    if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n')
        return 2;
    return n >= 1 && (line[n - 1] == '\n' || line[n - 1] == '\r') ? 1 : 0;
}

/* Build the view of @bytes (see above).  @return 0, or -1 when out of memory. */
static int input_view_build(struct input_view *v, const char *bytes, size_t len)
{
    size_t header_lines = 0, header_bytes = 0, dash_lines = 0, field_bytes = 0;
    int in_field = 0; /* the previous line was header-like: white space continues it */
    size_t at = 0;
    memset(v, 0, sizeof(*v));
    v->data = bytes;
    v->data_len = len;
    while (at < len) {
        const char *line = bytes + at;
        size_t rest = len - at;
        const char *lf = memchr(line, '\n', rest);
        size_t n = lf != NULL ? (size_t)(lf - line) + 1 : rest;
        const char *cr = memchr(line, '\r', n);
        if (cr != NULL && (size_t)(cr - line) + 1 < n && cr[1] != '\n')
            n = (size_t)(cr - line) + 1; /* a bare CR ends the line, as the stream shows it */
        size_t shown = n;
        if (is_header_like(line, n)) {
            int continues = line[0] == ' ' || line[0] == '\t';
            field_bytes = continues && in_field ? field_bytes + n : n;
            in_field = 1;
            if (continues && field_bytes > BP_MAX_HEADER_BYTES && field_bytes - n >= BP_MAX_HEADER_BYTES) {
                v->cut = 1; /* the field is already at its limit: leave the line out */
                at += n;
                continue;
            }
            if (n > BP_MAX_HEADER_BYTES) {
                size_t eol = eol_len(line, n);
                if (view_add(v, at, BP_MAX_HEADER_BYTES - eol) != 0 || view_add(v, at + n - eol, eol) != 0)
                    return -1;
                shown = BP_MAX_HEADER_BYTES;
                v->cut = 1;
            } else if (view_add(v, at, n) != 0) {
                return -1;
            }
            header_lines++;
            header_bytes += shown;
            if (header_lines > BP_MAX_MIME_HEADER_LINES || header_bytes > BP_MAX_MIME_HEADER_BYTES) {
                v->cut = 1;
                return 0;
            }
            at += n;
            continue;
        }
        in_field = 0;
        if (n >= 2 && line[0] == '-' && line[1] == '-' && ++dash_lines > BP_MAX_MIME_DASH_LINES) {
            v->cut = 1;
            return 0;
        }
        if (view_add(v, at, n) != 0)
            return -1;
        at += n;
    }
    return 0;
}

/* Index of the span holding view offset @pos (pos < v->len). */
static size_t view_span_at(const struct input_view *v, gint64 pos)
{
    size_t lo = 0, hi = v->n_spans;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->spans[mid].view_off <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/*
 * The view as a read-only, seekable GMime stream.
 *
 * GMime's own memory stream copies its buffer, which for a 50 MB message doubles what the
 * process holds.  This stream reads the caller's bytes in place; since it is seekable, the
 * parser keeps part contents as substreams of it (persist-stream) instead of copying them.
 * A bare CR (not followed by LF) reads as LF: GMime copes with LF and CRLF line ends but not
 * with CR alone, which real bounces contain.  That mapping keeps every offset, so seeking
 * and substreams need no bookkeeping.  The view (and the bytes under it) must outlive the
 * stream and its substreams: bp_mime_parse() releases every GMime object before it returns.
 */
typedef struct BpInputStream {
    GMimeStream parent;
    const struct input_view *view; /* borrowed */
} BpInputStream;

typedef struct BpInputStreamClass {
    GMimeStreamClass parent_class;
} BpInputStreamClass;

GType bp_input_stream_get_type(void);
/* cppcheck-suppress unknownMacro ; GObject boilerplate: cppcheck runs without GLib's headers */
G_DEFINE_TYPE(BpInputStream, bp_input_stream, GMIME_TYPE_STREAM)

static gint64 input_end(GMimeStream *stream)
{
    gint64 len = ((const BpInputStream *)stream)->view->len;
    return stream->bound_end != -1 && stream->bound_end < len ? stream->bound_end : len;
}

static ssize_t input_read(GMimeStream *stream, char *buf, size_t len)
{
    const struct input_view *v = ((const BpInputStream *)stream)->view;
    gint64 avail = input_end(stream) - stream->position;
    if (avail <= 0 || len == 0)
        return 0;
    size_t n = (gint64)len < avail ? len : (size_t)avail;
    size_t done = 0, i = view_span_at(v, stream->position);
    while (done < n && i < v->n_spans) {
        const struct input_span *sp = &v->spans[i];
        size_t skip = (size_t)(stream->position + (gint64)done - sp->view_off);
        size_t take = sp->len - skip < n - done ? sp->len - skip : n - done;
        const char *src = v->data + sp->src_off + skip;
        memcpy(buf + done, src, take);
        for (const char *cr = memchr(src, '\r', take); cr != NULL;
             cr = memchr(cr + 1, '\r', take - (size_t)(cr + 1 - src))) {
            /* the byte after the CR in the view: in this span, or the next span's first */
            size_t after = skip + (size_t)(cr - src) + 1;
            const char *next = after < sp->len      ? v->data + sp->src_off + after
                               : i + 1 < v->n_spans ? v->data + v->spans[i + 1].src_off
                                                    : NULL;
            if (next == NULL || *next != '\n')
                buf[done + (size_t)(cr - src)] = '\n';
        }
        done += take;
        i++;
    }
    stream->position += (gint64)done;
    return (ssize_t)done;
}

static ssize_t input_write(GMimeStream *stream, const char *buf, size_t len)
{
    (void)stream;
    (void)buf;
    (void)len;
    return -1; /* read-only: the parser never writes */
}

static int input_flush(GMimeStream *stream)
{
    (void)stream;
    return 0;
}

static int input_close(GMimeStream *stream)
{
    (void)stream;
    return 0;
}

static gboolean input_eos(GMimeStream *stream)
{
    return stream->position >= input_end(stream);
}

static int input_reset(GMimeStream *stream)
{
    stream->position = stream->bound_start;
    return 0;
}

static gint64 input_seek(GMimeStream *stream, gint64 offset, GMimeSeekWhence whence)
{
    gint64 end = input_end(stream), real;
    switch (whence) {
    case GMIME_STREAM_SEEK_SET: real = offset; break;
    case GMIME_STREAM_SEEK_CUR: real = stream->position + offset; break;
    case GMIME_STREAM_SEEK_END: real = end + offset; break;
    default: return -1;
    }
    if (real < stream->bound_start || real > end)
        return -1;
    stream->position = real;
    return real;
}

static gint64 input_tell(GMimeStream *stream)
{
    return stream->position;
}

static gint64 input_length(GMimeStream *stream)
{
    return input_end(stream) - stream->bound_start;
}

static GMimeStream *bp_input_stream_new(const struct input_view *view, gint64 start, gint64 end);

static GMimeStream *input_substream(GMimeStream *stream, gint64 start, gint64 end)
{
    return bp_input_stream_new(((const BpInputStream *)stream)->view, start, end);
}

static void bp_input_stream_class_init(BpInputStreamClass *klass)
{
    GMimeStreamClass *stream_class = GMIME_STREAM_CLASS(klass);
    stream_class->read = input_read;
    stream_class->write = input_write;
    stream_class->flush = input_flush;
    stream_class->close = input_close;
    stream_class->eos = input_eos;
    stream_class->reset = input_reset;
    stream_class->seek = input_seek;
    stream_class->tell = input_tell;
    stream_class->length = input_length;
    stream_class->substream = input_substream;
}

static void bp_input_stream_init(BpInputStream *in)
{
    in->view = NULL;
}

/* A new stream over the view's [start, end) (@end -1: to its end).  Returns an owned reference. */
static GMimeStream *bp_input_stream_new(const struct input_view *view, gint64 start, gint64 end)
{
    BpInputStream *in = g_object_new(bp_input_stream_get_type(), NULL);
    in->view = view;
    g_mime_stream_construct(GMIME_STREAM(in), start, end);
    return GMIME_STREAM(in);
}

static const char *lower_dup(bp_arena *arena, const char *s, const char *fallback)
{
    char *p = bp_arena_strdup(arena, (s != NULL && *s != '\0') ? s : fallback);
    return p != NULL ? bp_ascii_lower(p) : NULL;
}

/* What bp_trim_dup() trims. */
static int is_trim_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* @value cut at BP_MAX_HEADER_BYTES and trimmed, into the arena (what bp_header.value holds). */
static char *value_dup(bp_arena *arena, const char *value)
{
    size_t vlen = strlen(value);
    if (vlen > BP_MAX_HEADER_BYTES)
        vlen = BP_MAX_HEADER_BYTES;
    return bp_trim_dup(arena, value, vlen);
}

/* Does @s[0, @len) hold what GMime's header decoding changes: a byte >= 0x80 or "=?"? */
static int needs_decoding(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) { /* 8 bytes at a time: headers are long and nearly all ASCII */
        uint64_t w;
        memcpy(&w, s + i, sizeof(w));
        if (w & 0x8080808080808080u)
            return 1;
    }
    for (; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    const char *end = s + len;
    for (const char *eq = memchr(s, '=', len); eq != NULL; eq = memchr(eq + 1, '=', (size_t)(end - eq - 1)))
        if (eq + 1 < end && eq[1] == '?')
            return 1;
    return 0;
}

/*
 * The value of @h as value_dup(g_mime_header_get_value(@h)) gives it, but cheaper.
 *
 * g_mime_header_get_value() unfolds the raw value (g_mime_utils_header_unfold()) and then
 * decodes it as unstructured text: encoded words ("=?" starts one, anywhere in loose mode),
 * and 8-bit text through the fallback charsets.  Text of bytes below 0x80 without "=?" comes
 * out of that decoding unchanged, so such a value is only unfolded (by GMime, without the
 * decoding pass); any other goes through g_mime_header_get_value().
 */
static char *header_value_dup(bp_arena *arena, GMimeHeader *h)
{
    const char *raw = g_mime_header_get_raw_value(h); /* borrowed */
    size_t len = raw != NULL ? strlen(raw) : 0;
    if (raw == NULL || reference_headers || needs_decoding(raw, len)) {
        const char *value = g_mime_header_get_value(h); /* borrowed: cached in the header */
        return value_dup(arena, value != NULL ? value : "");
    }
    char *unfolded = g_mime_utils_header_unfold(raw); /* owned: freed below */
    len = strlen(unfolded);
    char *v = bp_arena_strndup(arena, unfolded, len);
    g_free(unfolded);
    if (v == NULL)
        return NULL;
    if (len > BP_MAX_HEADER_BYTES)
        len = BP_MAX_HEADER_BYTES;
    while (len > 0 && is_trim_space((unsigned char)v[len - 1]))
        len--;
    v[len] = '\0';
    while (is_trim_space((unsigned char)*v))
        v++;
    return v;
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
        if (name == NULL)
            continue;
        hs[kept].name = bp_arena_strdup(ctx->arena, name);
        hs[kept].value = header_value_dup(ctx->arena, h);
        if (hs[kept].name == NULL || hs[kept].value == NULL)
            return BP_ERR_NOMEM;
        kept++;
    }
    part->headers = hs;
    part->n_headers = kept;
    return BP_OK;
}

/* How read_body() decodes a leaf. */
enum body_mode {
    BODY_REPORT,     /* transfer decoding, LF line ends */
    BODY_TEXT,       /* the same, then charset -> UTF-8 */
    BODY_ATTACHMENT, /* transfer decoding only: the bytes may be binary */
};

/* Read a leaf's content through GMime's decoding filters, at most BP_MAX_TEXT_BYTES
 * (BP_MAX_ATTACHMENT_BYTES for an attachment, from the message's attachment budget). */
static bp_status read_body(struct walk_ctx *ctx, GMimePart *leaf, enum body_mode mode, bp_part *part)
{
    int attachment = mode == BODY_ATTACHMENT;
    size_t *spent = attachment ? &ctx->msg->attachment_bytes : &ctx->msg->decoded_bytes;
    size_t budget_max = attachment ? BP_MAX_ATTACHMENT_BYTES : BP_MAX_DECODED_BYTES;
    if (*spent >= budget_max) {
        part->body = ""; /* the message's decoding budget is spent */
        part->truncated = 1;
        return BP_OK;
    }
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
    if (mode == BODY_TEXT && charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
        g_ascii_strcasecmp(charset, "us-ascii") != 0) {
        f = g_mime_filter_charset_new(charset, "utf-8");
        if (f != NULL) { /* NULL: unknown charset, keep the bytes */
            g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
            g_object_unref(f);
        }
    }
    if (!attachment) {
        f = g_mime_filter_dos2unix_new(FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
        g_object_unref(f);
    }

    bp_status st = BP_OK;
    size_t budget = budget_max - *spent;
    size_t part_max = attachment ? BP_MAX_ATTACHMENT_BYTES : BP_MAX_TEXT_BYTES;
    size_t limit = budget < part_max ? budget : part_max;
    size_t cap = limit < 8192 ? limit : 8192, len = 0;
    char *buf = g_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= limit) {
                part->truncated = 1;
                break;
            }
            cap = cap * 2 > limit ? limit : cap * 2;
            buf = g_realloc(buf, cap + 1);
        }
        ssize_t n = g_mime_stream_read(filtered, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *spent += len;
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

/*
 * A leaf that may carry a DMARC aggregate report (mime.h): one of the types receivers send it
 * as, or application/octet-stream with a report's file name, and a part of the message itself:
 * an attachment of a returned original is never decoded.
 */
static int is_report_attachment(const bp_part *p)
{
    static const char *const types[] = {"gzip", "x-gzip", "zip", "x-zip", "x-zip-compressed", "xml"};
    if (strcmp(p->type, "application") != 0)
        return 0;
    for (const bp_part *up = p; up != NULL; up = up->parent)
        if (up->is_message && up->parent != NULL)
            return 0; /* the part is, or is inside, an attached message */
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(p->subtype, types[i]) == 0)
            return 1;
    if (strcmp(p->subtype, "octet-stream") != 0 || p->filename == NULL)
        return 0;
    const char *dot = strrchr(p->filename, '.');
    return dot != NULL && (g_ascii_strcasecmp(dot, ".gz") == 0 || g_ascii_strcasecmp(dot, ".zip") == 0 ||
                           g_ascii_strcasecmp(dot, ".xml") == 0);
}

static bp_status walk(struct walk_ctx *ctx, GMimeObject *object, GMimeObject *header_source, bp_part *parent,
                      unsigned depth, bp_part **out);

/*
 * A multipart whose boundary never occurs (misspelt, or its parameter lost to a broken fold)
 * has no parts; GMime keeps its whole body as the prologue.  Bounce texts live there, so it
 * becomes one text/plain child (docs/violations.md), bounded like any text part.
 */
static bp_status prologue_child(struct walk_ctx *ctx, GMimeMultipart *mp, bp_part *parent)
{
    const char *text = g_mime_multipart_get_prologue(mp); /* borrowed */
    if (text == NULL || *text == '\0')
        return BP_OK;
    if (parent->depth + 1 > BP_MAX_MIME_DEPTH || ctx->msg->n_parts >= BP_MAX_MIME_PARTS) {
        ctx->msg->parts_truncated = 1;
        return BP_OK;
    }
    bp_part *child = bp_arena_alloc(ctx->arena, sizeof(*child));
    if (child == NULL)
        return BP_ERR_NOMEM;
    size_t len = strlen(text);
    if (len > BP_MAX_TEXT_BYTES) {
        len = BP_MAX_TEXT_BYTES;
        child->truncated = 1;
    }
    child->type = "text";
    child->subtype = "plain";
    child->depth = parent->depth + 1;
    child->index = ctx->next_index++;
    child->parent = parent;
    child->body = bp_arena_strndup(ctx->arena, text, len);
    child->body_len = len;
    if (child->body == NULL)
        return BP_ERR_NOMEM;
    ctx->msg->n_parts++;
    parent->child = child;
    return BP_OK;
}

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
        if (n == 0)
            return prologue_child(ctx, mp, part);
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
        const char *filename = g_mime_part_get_filename(GMIME_PART(object)); /* borrowed */
        if (filename != NULL && *filename != '\0' && (part->filename = value_dup(ctx->arena, filename)) == NULL)
            return BP_ERR_NOMEM;
        int is_text = strcmp(part->type, "text") == 0;
        if (is_text || is_report_part(part))
            return read_body(ctx, GMIME_PART(object), is_text && !is_report_part(part) ? BODY_TEXT : BODY_REPORT, part);
        if (is_report_attachment(part))
            return read_body(ctx, GMIME_PART(object), BODY_ATTACHMENT, part);
    }
    return BP_OK;
}

/* The message's own Date in Unix seconds by GMime's parser (RFC 5322 and the obsolete forms:
 * two-digit years, zone names), 0 when absent, unreadable or before 1970.  GMime parsed the
 * Date header already while it built the message (the last one, when there are several);
 * the first one is what counts, so only a message with two or more is parsed again. */
static long long message_date(GMimeMessage *message, const bp_part *root)
{
    const char *first = NULL;
    size_t n = 0;
    for (size_t i = 0; i < root->n_headers; i++)
        if (g_ascii_strcasecmp(root->headers[i].name, "Date") == 0 && n++ == 0)
            first = root->headers[i].value;
    if (n == 0)
        return 0;
    GDateTime *dt = NULL; /* owned only when decoded here */
    GDateTime *parsed = n > 1 ? (dt = g_mime_utils_header_decode_date(first)) : g_mime_message_get_date(message);
    long long t = parsed != NULL ? (long long)g_date_time_to_unix(parsed) : 0;
    if (dt != NULL)
        g_date_time_unref(dt);
    return t > 0 ? t : 0;
}

bp_status bp_mime_parse(const char *bytes, size_t len, bp_arena *arena, bp_mime_message *out)
{
    bp_status st = BP_OK;
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *message = NULL;
    struct input_view view = {0};

    memset(out, 0, sizeof(*out));
    bp_mime_init();
    if (len > BP_MAX_MESSAGE_BYTES)
        len = BP_MAX_MESSAGE_BYTES;
    if (input_view_build(&view, bytes, len) != 0) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    out->input_cut = view.cut;
    stream = bp_input_stream_new(&view, 0, -1); /* owned: reads the bytes in place */

    parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    message = g_mime_parser_construct_message(parser, parser_options);
    if (message == NULL) {
        st = BP_ERR_PARSE;
        goto out;
    }
    struct walk_ctx ctx = {arena, out, 0};
    GMimeObject *body = g_mime_message_get_mime_part(message); /* borrowed */
    st = walk(&ctx, body, GMIME_OBJECT(message), NULL, 0, &out->root);
    if (st == BP_OK && out->root == NULL)
        st = BP_ERR_PARSE;
    if (st == BP_OK)
        out->date = message_date(message, out->root);

out:
    if (message != NULL)
        g_object_unref(message); /* the whole GMime tree */
    if (parser != NULL)
        g_object_unref(parser);
    if (stream != NULL)
        g_object_unref(stream); /* substreams held by the tree went with the message */
    g_free(view.spans);         /* no stream is left to read the view */
    return st;
}

const char *bp_part_header(const bp_part *part, const char *name)
{
    return bp_field_find(part->headers, part->n_headers, name);
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
