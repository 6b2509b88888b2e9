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

/** Lower-case ASCII letters of @p s in place. @return @p s. */
char *bp_ascii_lower(char *s);

/** @return an arena copy of @p s without leading and trailing white space; NULL stays NULL. */
char *bp_trim_dup(bp_arena *arena, const char *s, size_t len);

/**
 * Make remote text safe to store and print: control bytes and invalid UTF-8 become '?',
 * runs of white space (including folded lines) become one space, leading and trailing space
 * go, and the result is cut at @p max_bytes on a UTF-8 character boundary.
 * @return an arena string, or NULL when @p s is NULL or the result is empty.
 */
char *bp_clean_text(bp_arena *arena, const char *s, size_t len, size_t max_bytes);

/** @return non-zero when @p s[0..len) is valid UTF-8. */
int bp_utf8_valid(const char *s, size_t len);

#endif
