/*
 * explanation.h - the explanation text of a non-standard bounce: which part, in UTF-8
 * without HTML, up to the quoted original (explanation.c; not public).
 */
#ifndef BOUNCEPIPE_EXPLANATION_H
#define BOUNCEPIPE_EXPLANATION_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/report.h"
#include "bouncepipe/text.h"

/** @return the first text/plain part of @p root outside any attached original, else the
 *  first text/html one; NULL when there is none. */
const bp_part *bp_explanation_part(const bp_part *root);

/** @return the text of @p part in UTF-8 (undeclared or wrong charsets guessed) without HTML,
 *  its length in @p len; the part's own body or an arena copy; NULL when out of memory. */
const char *bp_explanation_text(bp_arena *arena, const bp_part *part, size_t *len);

/** Read the explanation @p part (bp_explanation_part() of the message @p r is about) once:
 *  on the first call its text (bp_explanation_text()), folded copy, the folded copy's byte
 *  pairs and length up to the quoted original are kept in @p r's explanation fields; later calls find them there.
 *  @return BP_OK, or BP_ERR_NOMEM (the fields then stay NULL). */
bp_status bp_explanation_read(bp_report *r, bp_arena *arena, const bp_part *part);

/** @return an arena copy of @p text with ASCII letters folded to lower case (NUL-terminated),
 *  for the searches below; NULL when out of memory. */
char *bp_explanation_fold(bp_arena *arena, const char *text, size_t len);

/** @return the first occurrence of @p needle (in lower case) in the folded text
 *  @p folded[0, @p len), or NULL; linear in @p len whatever the text (glibc's memmem).
 *  @p pairs: the byte pairs of a text @p folded[0, @p len) lies in (the report's
 *  explanation_pairs), which spare the search for a needle that cannot be there; or NULL. */
const char *bp_explanation_find(const bp_byte_pairs *pairs, const char *folded, size_t len, const char *needle);

/** @return where the quoted original starts in the folded text @p folded (a marker such as
 *  "--- Below this line is a copy of the message"), or @p len when nothing is quoted.
 *  @p pairs: the byte pairs of @p folded[0, @p len), or NULL. */
size_t bp_explanation_length(const bp_byte_pairs *pairs, const char *folded, size_t len);

/** @return the offset where the line holding offset @p at of @p text starts. */
size_t bp_explanation_line_start(const char *text, size_t at);

/** @return non-zero when the line starting at @p ls holds only white space. */
int bp_explanation_line_blank(const char *text, size_t len, size_t ls);

/** @return non-zero when the line starting at @p ls of @p text (@p len bytes) is quoted from
 *  the original: one of its header lines ("To: ...") or their indented continuations, or a
 *  "> " quote (">>> " is an SMTP transcript, not a quote).  Looks back at most a few lines. */
int bp_explanation_quoted_line(const char *text, size_t len, size_t ls);

#endif
