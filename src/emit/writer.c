/*
 * writer.c - the structured writer (writer.h): JSON, CSV and text back ends over one stack of
 * open containers.
 *
 * Every call appends to a buffer; the buffer goes to the FILE whenever the stack is empty
 * again (a whole top-level value or separator), when it passes WRITER_CHUNK bytes, and on
 * bp_writer_flush().  The stack records
 * for each open container whether it is a map, how many items it has, whether a separator
 * already wrote the comma before the next item (JSON) and whether separators put its items
 * on lines of their own (then its closing bracket gets one too).  CSV rows are assembled in
 * a row buffer so that the header line - the first row's keys, unless bp_writer_columns()
 * named them - can go before it.  JSON strings: bp_json_string(); CSV cells: bp_csv_cell().
 * Masking (writer.h): every string, key, cell and raw layout goes through bp_text_char() or
 * bp_text_mask_append() (text.c), so no back end writes invalid UTF-8 or a control it did
 * not put there itself.
 *
 * Ownership: the writer owns its buffers; the FILE (or the buffer of bp_writer_new_buffer())
 * is the caller's.
 */
#include "bouncepipe/writer.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"

/* Containers open at once: a command's output nests three deep (lookup: map, list, map). */
#define WRITER_MAX_DEPTH 16
/* Bytes buffered inside an open container before they are written anyway. */
#define WRITER_CHUNK 65536

struct frame {
    int is_map;
    size_t items;   /* values (lists) or keys (maps) written */
    int comma_done; /* JSON: a separator wrote the comma before the next item */
    int separated;  /* JSON: separators put the items on lines of their own */
};

struct bp_writer {
    FILE *out;       /* where the output goes, or NULL: */
    bp_strbuf *sink; /* ... appended to the caller's buffer */
    bp_writer_format format;
    bp_status status; /* the first error; BP_OK so far */
    bp_strbuf buf;
    struct frame stack[WRITER_MAX_DEPTH];
    size_t depth;
    /* CSV */
    bp_strbuf row, header;
    size_t row_depth; /* depth of an open row map + 1, 0 when no row is open */
    size_t cells;     /* cells of the row so far */
    int header_done;
};

bp_writer *bp_writer_new(FILE *out, bp_writer_format format)
{
    bp_writer *w = bp_calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->out = out;
    w->format = format;
    return w;
}

bp_writer *bp_writer_new_buffer(bp_strbuf *out, bp_writer_format format)
{
    bp_writer *w = bp_writer_new(NULL, format);
    if (w != NULL)
        w->sink = out;
    return w;
}

/* Hand the buffered bytes to the output: the FILE, or the caller's buffer. */
static bp_status emit(bp_writer *w)
{
    bp_status st = BP_OK;
    if (w->sink != NULL)
        st = bp_strbuf_append(w->sink, w->buf.data, w->buf.len);
    else if (fwrite(w->buf.data, 1, w->buf.len, w->out) != w->buf.len)
        st = BP_ERR_IO;
    bp_strbuf_clear(&w->buf);
    return st;
}

void bp_writer_free(bp_writer *w)
{
    if (w == NULL)
        return;
    bp_strbuf_free(&w->buf);
    bp_strbuf_free(&w->row);
    bp_strbuf_free(&w->header);
    free(w);
}

bp_writer_format bp_writer_get_format(const bp_writer *w)
{
    return w->format;
}

/* ASCII bytes a JSON string may carry as they are: not a quote, backslash, control byte or
 * DEL. */
static int json_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

bp_status bp_json_string(bp_strbuf *sb, const char *s)
{
    if (s == NULL)
        return bp_strbuf_append(sb, "null", 4);
    bp_status st = bp_strbuf_putc(sb, '"');
    const char *p = s, *end = s + strlen(s);
    while (st == BP_OK && p < end) {
        /* runs of plain characters in one append: most of a field is plain, and a call per byte
         * was the printer's whole cost (docs/performance.md) */
        const char *run = p;
        bp_text_kind kind = BP_TEXT_PLAIN;
        unsigned int cp = 0;
        size_t n = 0;
        while (p < end) {
            if (json_plain((unsigned char)*p)) {
                p++;
                continue;
            }
            if ((unsigned char)*p < 0x80)
                break;
            n = bp_text_char(p, (size_t)(end - p), &kind, &cp);
            if (kind != BP_TEXT_PLAIN)
                break;
            p += n;
        }
        if (p > run)
            st = bp_strbuf_append(sb, run, (size_t)(p - run));
        if (st != BP_OK || p == end)
            break;
        if ((unsigned char)*p >= 0x80) {
            /* C1 controls and unsafe format characters escaped (the string keeps them, the
             * bytes on a terminal are ASCII); a byte of no valid UTF-8 sequence is masked */
            st = kind == BP_TEXT_INVALID ? bp_strbuf_putc(sb, '?') : bp_strbuf_printf(sb, "\\u%04x", cp);
            p += n;
            continue;
        }
        switch (*p) {
        case '"': st = bp_strbuf_append(sb, "\\\"", 2); break;
        case '\\': st = bp_strbuf_append(sb, "\\\\", 2); break;
        case '\n': st = bp_strbuf_append(sb, "\\n", 2); break;
        case '\r': st = bp_strbuf_append(sb, "\\r", 2); break;
        case '\t': st = bp_strbuf_append(sb, "\\t", 2); break;
        default: st = bp_strbuf_printf(sb, "\\u%04x", (unsigned char)*p);
        }
        p++;
    }
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '"');
    return st;
}

/* @return non-zero when @p s is printable ASCII only (nothing to mask: the usual cell). */
static int printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7F)
            return 0;
    return 1;
}

bp_status bp_csv_cell(bp_strbuf *sb, const char *s)
{
    if (s == NULL)
        return BP_OK;
    bp_strbuf masked = {0};
    if (!printable_ascii(s)) {
        /* controls, C1, bidi overrides and invalid bytes as '?' (spreadsheets and terminals
         * show cells as they are); tabs and line breaks stay, quoted (RFC 4180) */
        if (bp_text_mask_append(&masked, s, strlen(s), BP_MASK_KEEP_WHITESPACE) != BP_OK) {
            bp_strbuf_free(&masked);
            return BP_ERR_NOMEM;
        }
        s = masked.data != NULL ? masked.data : "";
    }
    int risky = strchr("=+-@\t\r", s[0]) != NULL && s[0] != '\0';
    int quote = risky || strpbrk(s, ",\"\n\r") != NULL;
    bp_status st = BP_OK;
    if (quote)
        st = bp_strbuf_putc(sb, '"');
    if (st == BP_OK && risky)
        st = bp_strbuf_putc(sb, '\'');
    for (const char *p = s; st == BP_OK && *p; p++)
        st = *p == '"' ? bp_strbuf_puts(sb, "\"\"") : bp_strbuf_putc(sb, *p);
    if (st == BP_OK && quote)
        st = bp_strbuf_putc(sb, '"');
    bp_strbuf_free(&masked);
    return st;
}

/* Keep the first error. */
static bp_status note(bp_writer *w, bp_status st)
{
    if (w->status == BP_OK)
        w->status = st;
    return w->status;
}

/* Write the buffer out when the stack is empty, or when it holds WRITER_CHUNK bytes (a long
 * list - an export of the whole suppression list - streams). */
static bp_status drain(bp_writer *w)
{
    if (w->status != BP_OK || (w->depth > 0 && w->buf.len < WRITER_CHUNK) || w->buf.len == 0)
        return w->status;
    return note(w, emit(w));
}

static struct frame *top(bp_writer *w)
{
    return w->depth > 0 ? &w->stack[w->depth - 1] : NULL;
}

/* JSON: the comma (or nothing) before a value in the current container. */
static bp_status json_before_value(bp_writer *w)
{
    struct frame *f = top(w);
    if (f == NULL || f->is_map)
        return BP_OK; /* top level, or after a key (which wrote the comma) */
    bp_status st = BP_OK;
    if (f->items > 0 && !f->comma_done)
        st = bp_strbuf_putc(&w->buf, ',');
    f->items++;
    f->comma_done = 0;
    return st;
}

/* TEXT: a space between scalars of one container. */
static bp_status text_before_value(bp_writer *w)
{
    struct frame *f = top(w);
    if (f == NULL)
        return BP_OK;
    bp_status st = f->items > 0 && !f->comma_done ? bp_strbuf_putc(&w->buf, ' ') : BP_OK;
    f->items++;
    f->comma_done = 0;
    return st;
}

/* CSV: the comma before a cell of the open row. */
static bp_strbuf *csv_cell_start(bp_writer *w)
{
    if (w->row_depth == 0 || w->depth != w->row_depth)
        BP_INTERNAL_ERROR("writer: a CSV value outside a row, or a container inside one");
    if (w->cells++ > 0)
        note(w, bp_strbuf_putc(&w->row, ','));
    return &w->row;
}

static bp_status push(bp_writer *w, int is_map)
{
    if (w->depth == WRITER_MAX_DEPTH)
        BP_INTERNAL_ERROR("writer: containers nested deeper than WRITER_MAX_DEPTH");
    w->stack[w->depth++] = (struct frame){is_map, 0, 0, 0};
    return BP_OK;
}

bp_status bp_writer_begin_map(bp_writer *w)
{
    if (w->status != BP_OK)
        return w->status;
    switch (w->format) {
    case BP_WRITER_JSON:
        note(w, json_before_value(w));
        note(w, bp_strbuf_putc(&w->buf, '{'));
        break;
    case BP_WRITER_CSV:
        if (w->row_depth != 0 || w->depth > 1)
            BP_INTERNAL_ERROR("writer: a CSV row inside a row");
        w->row_depth = w->depth + 1;
        w->cells = 0;
        bp_strbuf_clear(&w->row);
        break;
    case BP_WRITER_TEXT: note(w, text_before_value(w)); break;
    }
    return push(w, 1);
}

bp_status bp_writer_begin_list(bp_writer *w)
{
    if (w->status != BP_OK)
        return w->status;
    if (w->format == BP_WRITER_JSON) {
        note(w, json_before_value(w));
        note(w, bp_strbuf_putc(&w->buf, '['));
    } else if (w->format == BP_WRITER_CSV && w->row_depth != 0) {
        BP_INTERNAL_ERROR("writer: a list inside a CSV row");
    }
    return push(w, 0);
}

/* CSV: the end of a row: the header line first if it is still due. */
static bp_status csv_end_row(bp_writer *w)
{
    if (!w->header_done) {
        w->header_done = 1;
        if (w->header.len > 0) {
            note(w, bp_strbuf_append(&w->buf, w->header.data, w->header.len));
            note(w, bp_strbuf_puts(&w->buf, "\r\n"));
        }
    }
    if (w->row.len > 0)
        note(w, bp_strbuf_append(&w->buf, w->row.data, w->row.len));
    note(w, bp_strbuf_puts(&w->buf, "\r\n"));
    w->row_depth = 0;
    return w->status;
}

bp_status bp_writer_end(bp_writer *w)
{
    if (w->status != BP_OK)
        return w->status;
    struct frame *f = top(w);
    if (f == NULL)
        BP_INTERNAL_ERROR("writer: end without an open container");
    if (w->format == BP_WRITER_JSON) {
        if (f->separated && f->items > 0)
            note(w, bp_strbuf_putc(&w->buf, '\n'));
        note(w, bp_strbuf_putc(&w->buf, f->is_map ? '}' : ']'));
    } else if (w->format == BP_WRITER_CSV && w->row_depth == w->depth) {
        csv_end_row(w);
    }
    w->depth--;
    if (w->format == BP_WRITER_JSON && w->depth == 0)
        return w->status; /* a top-level value goes out with the separator after it (one write) */
    return drain(w);
}

bp_status bp_writer_key(bp_writer *w, const char *key)
{
    if (w->status != BP_OK)
        return w->status;
    struct frame *f = top(w);
    if (f == NULL || !f->is_map)
        BP_INTERNAL_ERROR("writer: a key outside a map");
    switch (w->format) {
    case BP_WRITER_JSON:
        if (f->items > 0 && !f->comma_done)
            note(w, bp_strbuf_putc(&w->buf, ','));
        f->comma_done = 0;
        note(w, bp_json_string(&w->buf, key));
        note(w, bp_strbuf_putc(&w->buf, ':'));
        break;
    case BP_WRITER_CSV:
        if (!w->header_done) {
            if (w->header.len > 0)
                note(w, bp_strbuf_putc(&w->header, ','));
            note(w, bp_csv_cell(&w->header, key));
        }
        break;
    case BP_WRITER_TEXT: break;
    }
    if (w->format == BP_WRITER_JSON)
        f->items++; /* the comma before the next key (text counts values, CSV cells) */
    return w->status;
}

/* A scalar: @p json (JSON) and @p text written as they are (already formatted) or, with
 * @p quote, as a JSON string and as masked text; @p cell the CSV cell (NULL: empty). */
static bp_status scalar(bp_writer *w, const char *json, const char *cell, const char *text, int quote)
{
    if (w->status != BP_OK)
        return w->status;
    switch (w->format) {
    case BP_WRITER_JSON:
        note(w, json_before_value(w));
        note(w, quote ? bp_json_string(&w->buf, json) : bp_strbuf_puts(&w->buf, json));
        break;
    case BP_WRITER_CSV: note(w, bp_csv_cell(csv_cell_start(w), cell)); break;
    case BP_WRITER_TEXT:
        note(w, text_before_value(w));
        note(w, quote ? bp_text_mask_append(&w->buf, text, strlen(text), 0) : bp_strbuf_puts(&w->buf, text));
        break;
    }
    return drain(w);
}

bp_status bp_writer_string(bp_writer *w, const char *s)
{
    return s != NULL ? scalar(w, s, s, s, 1) : bp_writer_null(w);
}

bp_status bp_writer_strings(bp_writer *w, const char *const *keys, const char *const *values, size_t n)
{
    struct frame *f = top(w);
    if (w->format != BP_WRITER_JSON || f == NULL || !f->is_map) {
        for (size_t i = 0; i < n && w->status == BP_OK; i++) {
            bp_writer_key(w, keys[i]);
            bp_writer_string(w, values[i]);
        }
        return w->status;
    }
    /* JSON: the entries straight into the buffer, without a call per key and value */
    bp_strbuf *sb = &w->buf;
    bp_status st = w->status;
    for (size_t i = 0; i < n && st == BP_OK; i++) {
        if (f->items > 0 && !f->comma_done)
            st = bp_strbuf_putc(sb, ',');
        f->comma_done = 0;
        f->items++;
        if (st == BP_OK) /* "key": by appends (the keys need no escaping; see writer.h) */
            st = bp_strbuf_putc(sb, '"');
        if (st == BP_OK)
            st = bp_strbuf_puts(sb, keys[i]);
        if (st == BP_OK)
            st = bp_strbuf_append(sb, "\":", 2);
        if (st == BP_OK)
            st = bp_json_string(sb, values[i]);
    }
    note(w, st);
    return drain(w);
}

bp_status bp_writer_integer(bp_writer *w, long long n)
{
    char text[24];
    snprintf(text, sizeof(text), "%lld", n);
    return scalar(w, text, text, text, 0);
}

bp_status bp_writer_boolean(bp_writer *w, int b)
{
    return scalar(w, b ? "true" : "false", b ? "1" : "0", b ? "true" : "false", 0);
}

bp_status bp_writer_null(bp_writer *w)
{
    return scalar(w, "null", NULL, "-", 0);
}

bp_status bp_writer_entry_string(bp_writer *w, const char *key, const char *s)
{
    bp_writer_key(w, key);
    return bp_writer_string(w, s);
}

bp_status bp_writer_entry_integer(bp_writer *w, const char *key, long long n)
{
    bp_writer_key(w, key);
    return bp_writer_integer(w, n);
}

bp_status bp_writer_entry_boolean(bp_writer *w, const char *key, int b)
{
    bp_writer_key(w, key);
    return bp_writer_boolean(w, b);
}

bp_status bp_writer_separator(bp_writer *w)
{
    if (w->status != BP_OK)
        return w->status;
    struct frame *f = top(w);
    switch (w->format) {
    case BP_WRITER_JSON:
        if (f != NULL) {
            if (f->items > 0) {
                note(w, bp_strbuf_putc(&w->buf, ','));
                f->comma_done = 1;
            }
            f->separated = 1;
        }
        note(w, bp_strbuf_putc(&w->buf, '\n'));
        break;
    case BP_WRITER_CSV: break; /* rows end themselves */
    case BP_WRITER_TEXT:
        note(w, bp_strbuf_putc(&w->buf, '\n'));
        if (f != NULL) {
            f->items = 0; /* a new line: no space before its first value */
            f->comma_done = 0;
        }
        break;
    }
    return drain(w);
}

bp_status bp_writer_columns(bp_writer *w, const char *const *names, size_t n)
{
    if (w->status != BP_OK || w->format != BP_WRITER_CSV || w->header_done)
        return w->status;
    w->header_done = 1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            note(w, bp_strbuf_putc(&w->buf, ','));
        note(w, bp_csv_cell(&w->buf, names[i]));
    }
    note(w, bp_strbuf_puts(&w->buf, "\r\n"));
    return drain(w);
}

bp_status bp_writer_raw(bp_writer *w, const char *s, size_t len)
{
    if (w->status != BP_OK)
        return w->status;
    note(w, bp_text_mask_append(&w->buf, s, len, BP_MASK_KEEP_NEWLINES));
    return drain(w);
}

bp_status bp_writer_rawf(bp_writer *w, const char *fmt, ...)
{
    bp_strbuf text = {0};
    va_list ap;
    va_start(ap, fmt);
    bp_status st = bp_strbuf_vprintf(&text, fmt, ap);
    va_end(ap);
    if (st == BP_OK)
        st = bp_writer_raw(w, text.data, text.len);
    else
        note(w, st);
    bp_strbuf_free(&text);
    return st;
}

bp_status bp_writer_status(const bp_writer *w)
{
    return w->status;
}

bp_status bp_writer_flush(bp_writer *w)
{
    if (w->status == BP_OK && w->buf.len > 0)
        note(w, emit(w));
    if (w->status == BP_OK && w->out != NULL && (fflush(w->out) != 0 || ferror(w->out)))
        note(w, BP_ERR_IO);
    return w->status;
}
