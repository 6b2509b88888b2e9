/*
 * mime.h - the MIME adapter: the only module that talks to GMime.
 *
 * bp_mime_parse() turns the bytes of one message into a tree of bp_part that the report
 * parsers read without knowing GMime.  What is decoded (and so what costs time and memory):
 *   - text/ parts: transfer-decoded and converted to UTF-8 from their charset, at most
 *     BP_MAX_TEXT_BYTES;
 *   - report parts (message/delivery-status, message/global-delivery-status,
 *     message/feedback-report, text/rfc822-headers and unknown message/ types):
 *     transfer-decoded, raw bytes;
 *   - message/rfc822 and message/global: their headers and parts, as a child part;
 *   - report attachments, the way DMARC aggregate reports arrive: application/gzip, x-gzip,
 *     zip, x-zip, x-zip-compressed, xml, and application/octet-stream named *.gz, *.zip or
 *     *.xml, when they are parts of the message itself (not of a message attached to it):
 *     transfer-decoded, raw bytes (binary: no line-end conversion), at most
 *     BP_MAX_ATTACHMENT_BYTES for all of them together;
 *   - everything else (images, application/...): not decoded, body NULL.
 * Walks stop at BP_MAX_MIME_DEPTH and BP_MAX_MIME_PARTS; headers at BP_MAX_HEADERS_PER_PART;
 * decoding at BP_MAX_DECODED_BYTES per message.  Before parsing, the input is cut where its
 * header-like or boundary-like lines exceed what GMime can hold in bounded memory
 * (limits.h, BP_MAX_MIME_HEADER_*), and the message flagged input_cut.
 *
 * Ownership: the whole tree, every string in it, belongs to the arena passed in.
 */
#ifndef BOUNCEPIPE_MIME_H
#define BOUNCEPIPE_MIME_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/fields.h"
#include "bouncepipe/status.h"

/** A header: its name as written, its value unfolded with RFC 2047 words decoded for
 *  unstructured fields; a bp_field, so that bp_field_find() looks up both. */
typedef bp_field bp_header;

typedef struct bp_part bp_part;
struct bp_part {
    const char *type;        /**< lower case, e.g. "text"; "text" when the part has none */
    const char *subtype;     /**< lower case, e.g. "plain" */
    const char *charset;     /**< declared charset or NULL */
    const char *report_type; /**< multipart/report's report-type parameter, lower case, or NULL */
    const char *filename;    /**< a leaf's file name (Content-Disposition filename, Content-Type name) or NULL */
    const bp_header *headers;
    size_t n_headers;
    const char *body; /**< decoded body (see above), NUL-terminated; NULL if not decoded */
    size_t body_len;
    int truncated;     /**< body was cut at BP_MAX_TEXT_BYTES (BP_MAX_ATTACHMENT_BYTES for attachments) */
    int is_attachment; /**< Content-Disposition: attachment */
    unsigned depth;    /**< 0 for the message itself */
    unsigned index;    /**< position in a depth-first walk, 0 for the message */
    bp_part *parent;
    bp_part *child; /**< first child: parts of a multipart, or the message of message/rfc822 */
    bp_part *next;  /**< next sibling */
    int is_message; /**< this part is a message (the top, or inside message/rfc822) */
};

typedef struct bp_mime_message {
    bp_part *root; /**< the message itself: its headers, its top-level content */
    unsigned n_parts;
    int parts_truncated;  /**< BP_MAX_MIME_PARTS or BP_MAX_MIME_DEPTH was hit */
    int input_cut;        /**< the input was cut before parsing (BP_MAX_MIME_HEADER_LINES,
                               _HEADER_BYTES or _DASH_LINES); what came before was parsed */
    size_t decoded_bytes; /**< bytes decoded from all parts, at most BP_MAX_DECODED_BYTES */
    /** bytes decoded from report attachments, at most BP_MAX_ATTACHMENT_BYTES */
    size_t attachment_bytes;
    long long date; /**< the message's own Date (its first Date header, read by GMime's
                         date parser) in Unix seconds; 0 when absent, unreadable or
                         before 1970 */
} bp_mime_message;

/** Initialise GMime once per process; safe to call more than once. */
void bp_mime_init(void);

/**
 * Parse @p len bytes of one message (any line ends: LF, CRLF, CR).
 * @param out filled in on BP_OK; its tree lives in @p arena
 * @return BP_OK; BP_ERR_PARSE when GMime finds no message at all; BP_ERR_NOMEM.
 */
bp_status bp_mime_parse(const char *bytes, size_t len, bp_arena *arena, bp_mime_message *out);

/**
 * For tests: non-zero makes bp_mime_parse() take every header value from GMime's
 * g_mime_header_get_value(), the reference; zero (the default) lets it unfold a value that
 * needs no decoding itself.  Both give the same bytes (tests/unit/test_mime.c checks that).
 */
void bp_mime_set_reference_headers(int on);

/** @return the value of the first header @p name (case-insensitive) of @p part, or NULL. */
const char *bp_part_header(const bp_part *part, const char *name);

/** @return non-zero when @p part is of @p type / @p subtype ("*" matches any subtype). */
int bp_part_is(const bp_part *part, const char *type, const char *subtype);

/** Depth-first successor of @p part within the tree of @p root, or NULL at the end. */
const bp_part *bp_part_walk_next(const bp_part *root, const bp_part *part);

/** @return the first part (depth-first from @p root, root included) of type/subtype or NULL. */
const bp_part *bp_part_find(const bp_part *root, const char *type, const char *subtype);

/**
 * Decode RFC 2047 encoded words of a header value.
 * @return an arena string in UTF-8 (a copy of @p value when nothing is encoded).
 */
char *bp_mime_decode_header(bp_arena *arena, const char *value);

/**
 * Convert @p len bytes in @p charset to UTF-8 (used for text the MIME structure did not
 * label, such as a quoted message).  @return an arena string, or NULL when the charset is
 * unknown (callers then use the bytes as they are).
 */
char *bp_mime_to_utf8(bp_arena *arena, const char *charset, const char *s, size_t len);

#endif
