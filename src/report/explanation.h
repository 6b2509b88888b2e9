/*
 * explanation.h - the explanation text of a non-standard bounce: which part, in UTF-8
 * without HTML, up to the quoted original (explanation.c; not public).
 */
#ifndef BOUNCEPIPE_EXPLANATION_H
#define BOUNCEPIPE_EXPLANATION_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/mime.h"

/** @return the first text/plain part of @p root outside any attached original, else the
 *  first text/html one; NULL when there is none. */
const bp_part *bp_explanation_part(const bp_part *root);

/** @return the text of @p part in UTF-8 (undeclared or wrong charsets guessed) without HTML,
 *  its length in @p len; the part's own body or an arena copy; NULL when out of memory. */
const char *bp_explanation_text(bp_arena *arena, const bp_part *part, size_t *len);

/** @return where the quoted original starts in @p text (a marker such as "--- Below this
 *  line is a copy of the message"), or @p len when nothing is quoted. */
size_t bp_explanation_length(const char *text, size_t len);

#endif
