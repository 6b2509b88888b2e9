/*
 * rules_prefilter.h - the rules' prefilter: the literals a regex requires, found at load, and
 * the test of a subject against them at match (rules_prefilter.c; not public).
 */
#ifndef BOUNCEPIPE_RULES_PREFILTER_H
#define BOUNCEPIPE_RULES_PREFILTER_H

#include <stddef.h>
#include <string.h>

#include "bouncepipe/status.h"
#include "bouncepipe/text.h"

/**
 * The literals @p pattern requires: one per top-level alternative, lower case.
 * @param literals receives a malloc'ed array of @p *n_literals malloc'ed strings and
 *        @p literal_len their lengths (the caller frees all of them); NULL and 0 when the
 *        pattern has no prefilter (it is then tried on every text)
 * @return BP_OK (also without a prefilter); BP_ERR_NOMEM.
 */
bp_status bp_rules_literals(const char *pattern, char ***literals, size_t **literal_len, unsigned *n_literals);

/** @return the index just past the character class opening at @p p[@p i] == '[' (a leading
 *  ']' or "^]", escapes and POSIX classes such as [[:alpha:]] understood), at most @p end. */
size_t bp_rules_class_end(const char *p, size_t i, size_t end);

/** One subject, folded and with its byte pairs noted, for testing many rules' literals. */
typedef struct bp_rules_prefilter {
    char *lower; /**< the folded subject (owned) */
    size_t len;
    size_t lower_cap;
    bp_byte_pairs pairs; /**< the byte pairs of lower */
} bp_rules_prefilter;

/** Fold @p text for the tests below.  @return 0 when out of memory: then every rule must be
 *  tried. */
int bp_rules_prefilter_prepare(bp_rules_prefilter *pf, const char *text, size_t len);

/**
 * @return non-zero when one of the literals occurs in the prepared subject, or there are none
 * (a rule without a prefilter is always tried).  The byte-pair test comes first: it rejects
 * most literals in a bit test or two, where memmem would scan the subject (it cost 9 % of a
 * replay when it ran for every literal).  Inline: it runs for every rule and subject.
 */
static inline int bp_rules_prefilter_passes(const bp_rules_prefilter *pf, const char *const *literals,
                                            const size_t *literal_len, unsigned n_literals)
{
    if (n_literals == 0)
        return 1;
    for (unsigned i = 0; i < n_literals; i++)
        if (bp_byte_pairs_may_hold(&pf->pairs, literals[i], literal_len[i]) &&
            memmem(pf->lower, pf->len, literals[i], literal_len[i]) != NULL)
            return 1;
    return 0;
}

/** Release the folded copy; the struct may be prepared again. */
void bp_rules_prefilter_free(bp_rules_prefilter *pf);

#endif
