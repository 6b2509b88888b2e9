/*
 * text.h - small string helpers shared by parsers, classifier and printers.
 *
 * bp_strbuf is a growable, always NUL-terminated byte buffer owned by its user
 * (bp_strbuf_free() releases it).  The other helpers either work in place on caller memory
 * or allocate from a bp_arena, as each says.
 */
#ifndef BOUNCEPIPE_TEXT_H
#define BOUNCEPIPE_TEXT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/status.h"

typedef struct bp_strbuf {
    char *data; /**< NUL-terminated once anything was appended; NULL before */
    size_t len;
    size_t cap;
} bp_strbuf;

/** Append @p len bytes. @return BP_OK or BP_ERR_NOMEM. */
bp_status bp_strbuf_append(bp_strbuf *sb, const char *s, size_t len);
/** Append a NUL-terminated string. */
bp_status bp_strbuf_puts(bp_strbuf *sb, const char *s);
/** Append one byte. */
bp_status bp_strbuf_putc(bp_strbuf *sb, char c);
/** Append formatted text. */
bp_status bp_strbuf_printf(bp_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** bp_strbuf_printf() with a va_list (the caller va_start()s and va_end()s it). */
bp_status bp_strbuf_vprintf(bp_strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/** Forget the contents, keep the memory. */
void bp_strbuf_clear(bp_strbuf *sb);
/** Release the memory; the buffer may be reused afterwards. */
void bp_strbuf_free(bp_strbuf *sb);

/** @return non-zero when @p s starts with @p prefix, ASCII case-insensitively. */
int bp_starts_with_ci(const char *s, const char *prefix);
/** @return pointer to the first ASCII case-insensitive occurrence of @p needle in @p hay
 *  (NUL-terminated), or NULL.  Points into @p hay. */
const char *bp_strcasestr(const char *hay, const char *needle);
/** @return pointer to the first occurrence of @p needle in @p hay (@p hay_len bytes) ignoring
 *  ASCII case, or NULL.  Points into @p hay. */
const char *bp_memcasemem(const char *hay, size_t hay_len, const char *needle, size_t needle_len);

/**
 * The adjacent byte pairs that occur in a text, one bit each, the high bit of each byte
 * dropped (16,384 bits: ASCII pairs exactly, other bytes share their bits with ASCII ones).
 * A needle one of whose pairs is missing cannot occur in the text, nor in any stretch of it:
 * a few bit tests tell what a memmem would scan the text for.  Worth it when many needles are
 * looked for in one text (the rules' literals, the explanation's markers and cues, the SMTP
 * stage's phrases): memmem sets up each needle anew, which costs more than scanning a short
 * text.  (2 kB: clearing the 8 kB of all 65,536 pairs cost more than noting a short text.)
 */
typedef struct bp_byte_pairs {
    uint64_t bits[256];
} bp_byte_pairs;

/** The bit of the pair @p a, @p b. */
#define BP_BYTE_PAIR(a, b) (((unsigned)(unsigned char)(a)&0x7fu) << 7 | ((unsigned)(unsigned char)(b)&0x7fu))

/** Note the byte pairs of @p s[0, @p len) in @p p (what it held before is cleared). */
void bp_byte_pairs_note(bp_byte_pairs *p, const char *s, size_t len);

/** @return 0 when some adjacent byte pair of @p needle[0, @p n) is not in @p p: the needle
 *  cannot occur in the text noted; non-zero when it may (always for a needle of one byte).
 *  Inline: it runs for every needle and text. */
static inline int bp_byte_pairs_may_hold(const bp_byte_pairs *p, const char *needle, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned pair = BP_BYTE_PAIR(needle[i], needle[i + 1]);
        if (!((p->bits[pair >> 6] >> (pair & 63)) & 1))
            return 0;
    }
    return 1;
}

/** memmem(@p hay, @p len, @p needle, @p n) when @p p says the needle may occur, else NULL
 *  without scanning.  @p hay[0, @p len) must lie within the text @p p noted; @p p may be
 *  NULL (then memmem always runs). */
const char *bp_byte_pairs_memmem(const bp_byte_pairs *p, const char *hay, size_t len, const char *needle, size_t n);

/** Lower-case ASCII letters of @p s in place. @return @p s. */
char *bp_ascii_lower(char *s);

/** @return an arena copy of @p s without leading and trailing white space; NULL stays NULL. */
char *bp_trim_dup(bp_arena *arena, const char *s, size_t len);

/* Masking: the one place that decides which characters of untrusted text may reach an output
 * as they are.  A character is shown as it is when it is valid UTF-8 and printable; shown as
 * '?' are
 *   - bytes that start no valid UTF-8 sequence (an 8-bit charset, a cut sequence);
 *   - C0 controls, DEL and the C1 controls U+0080..U+009F (ESC[8m hides text on a terminal,
 *     U+009B is a one-character CSI on some);
 *   - the bidirectional embeddings, overrides and isolates U+202A..U+202E, U+2066..U+2069
 *     (they reorder what follows them: "Trojan Source") and the line and paragraph
 *     separators U+2028, U+2029.
 * ASCII white space is a kind of its own: bp_clean_text() folds it, the writer's back ends
 * decide.  The JSON back end escapes controls and unsafe format characters (\u009b,
 * \u202e) instead of masking them; it masks invalid bytes. */

/** The kind of one character of untrusted text (bp_text_char()). */
typedef enum bp_text_kind {
    BP_TEXT_PLAIN = 0, /**< valid, printable: shown as it is */
    BP_TEXT_SPACE,     /**< ASCII white space: space, tab, CR, LF, FF, VT */
    BP_TEXT_CONTROL,   /**< another C0 control, DEL, or a C1 control (U+0080..U+009F) */
    BP_TEXT_UNSAFE,    /**< a bidi embedding, override or isolate, or U+2028 / U+2029 */
    BP_TEXT_INVALID,   /**< a byte that starts no valid UTF-8 sequence */
} bp_text_kind;

/**
 * The character at @p s: @p avail (at least 1) bytes may be read.
 * @param kind receives its kind
 * @param cp if not NULL, receives its code point (the byte itself for BP_TEXT_INVALID)
 * @return its length in bytes: 1 to 4; 1 for an invalid byte.
 */
size_t bp_text_char(const char *s, size_t avail, bp_text_kind *kind, unsigned int *cp);

/** bp_text_mask_append() flags. */
enum {
    BP_MASK_KEEP_NEWLINES = 1u << 0,   /**< '\n' passes (a layout's own lines); else it is masked */
    BP_MASK_KEEP_WHITESPACE = 1u << 1, /**< '\t', '\r' and '\n' pass (a CSV cell quotes them) */
};

/**
 * Append @p len bytes of @p s to @p sb with every character that is not BP_TEXT_PLAIN shown
 * as '?', except the space (and what @p flags keep).  The output is valid UTF-8
 * without controls whatever @p s holds.  @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_text_mask_append(bp_strbuf *sb, const char *s, size_t len, unsigned flags);

/**
 * bp_text_mask_append() of a NUL-terminated string into the arena, cut at @p max_bytes on a
 * character boundary (a rejected address quoted in a message, an operator's argument echoed).
 * @return the arena string; NULL when @p s is NULL or out of memory.
 */
char *bp_text_mask(bp_arena *arena, const char *s, size_t max_bytes);

/**
 * Make remote text safe to store and print: every character that is not printable
 * (bp_text_char(): controls, C1 controls, bidi overrides, invalid UTF-8) becomes '?', runs of
 * white space (including folded lines) become one space, leading and trailing space go, and
 * the result is cut at @p max_bytes on a UTF-8 character boundary.
 * @return an arena string, or NULL when @p s is NULL or the result is empty.
 */
char *bp_clean_text(bp_arena *arena, const char *s, size_t len, size_t max_bytes);

/** @return non-zero when @p s[0..len) is valid UTF-8. */
int bp_utf8_valid(const char *s, size_t len);

/** @return how many of the @p len bytes of @p s to keep so that at most @p max remain, cut at a
 *  UTF-8 character boundary (a character that would be cut goes whole). */
size_t bp_utf8_cut(const char *s, size_t len, size_t max);

/**
 * A duration of a configuration value or an option: a number (a fraction allowed) with ms, s,
 * m, h, d or w, or none for seconds ("250ms", "1.5s", "30", "24h", "7d", "2w"); blanks around
 * it are allowed.  The one parser of durations ([deliver], [signals], --since).
 * @return BP_OK with @p ms set; BP_ERR_CONFIG (malformed, negative, over 366 days).
 */
bp_status bp_parse_duration_ms(const char *s, long long *ms);

/**
 * A stored field's text: @p s itself (NULL too) when it has at most @p max bytes, else a copy
 * cut to @p max bytes at a UTF-8 character boundary (bp_utf8_cut()), made in @p *arena, which
 * is created on first use (the caller frees it).
 * @return the text, or NULL with @p *nomem set when out of memory
 */
const char *bp_arena_cut(bp_arena **arena, const char *s, size_t max, int *nomem);

#endif
