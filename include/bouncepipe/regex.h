/*
 * regex.h - the one PCRE2 wrapper.  Every pattern bouncepipe runs (the rules, the text-bounce
 * family patterns, bp_rulegen's compiling at build time) is compiled or decoded, JIT-compiled
 * and matched here, so that what bounds the work hostile text can cause is set in one place:
 * the match, depth and heap limits of every search, the search window on long subjects, and
 * the per-message effort budget (effort.h), charged for every search.
 *
 * A bp_regex is one compiled pattern (PCRE2 code).  Patterns are UTF-8; subjects need not be:
 * text that is not valid UTF-8 is matched as far as it is (PCRE2_MATCH_INVALID_UTF).
 * The build stores compiled code as one PCRE2 serialization (bp_regex_serialize()); a
 * bp_regex_table decodes it at its first use and hands the codes out one by one.  A PCRE2
 * of another version or configuration refuses the serialization: the table then hands out
 * nothing and its users compile.  JIT is lazy: a pattern is JIT-compiled once it has been
 * tried often enough to repay the compiling (bp_regex_lazy_jit), because a pipe-mode process
 * reads one message.
 *
 * Ownership: bp_regex_compile() and bp_regex_table_take() hand the code to the caller, who
 * frees it with bp_regex_free().  A bp_regex_matcher carries the limits and the match
 * results of its last search: one per thread.
 */
#ifndef BOUNCEPIPE_REGEX_H
#define BOUNCEPIPE_REGEX_H

#include <stddef.h>

#include "bouncepipe/status.h"

/** A compiled pattern (opaque: a PCRE2 code). */
typedef struct bp_regex bp_regex;

/** Compile flags; every pattern is also UTF-8 and matches invalid UTF-8 as far as it is. */
#define BP_REGEX_CASELESS  0x1u /**< PCRE2_CASELESS */
#define BP_REGEX_MULTILINE 0x2u /**< PCRE2_MULTILINE: ^ and $ at line ends too */
/** Searched window by window on long subjects (PCRE2_USE_OFFSET_LIMIT): a search that finds
 *  nothing in BP_REGEX_WINDOW_BYTES of start positions yields to the effort budget before it
 *  goes on.  For patterns run over whole texts (the text-bounce families). */
#define BP_REGEX_WINDOWED 0x4u

/**
 * Compile @p pattern (NUL-terminated).
 * @param err receives "MESSAGE at offset N" when it does not compile (may be NULL)
 * @return the code, or NULL with errno EINVAL when the pattern does not compile, ENOMEM when
 *         memory ran out (then the current effort budget is cut too: effort.h).
 */
bp_regex *bp_regex_compile(const char *pattern, unsigned flags, char *err, size_t err_size);

/** Release @p re; NULL is allowed. */
void bp_regex_free(bp_regex *re);

/** JIT-compile @p re now (complete matches).  Where JIT is unavailable the interpreter keeps
 *  running it: matching gives the same results either way. */
void bp_regex_jit(bp_regex *re);

/**
 * Encode @p n codes as one PCRE2 serialization (valid for this PCRE2 version and
 * configuration only): the form in which the build stores compiled code.
 * @param bytes receives a malloc'ed buffer (the caller frees it), @p len its size
 * @return BP_OK; BP_ERR_LIMIT for more codes than PCRE2 encodes at once; BP_ERR_NOMEM.
 */
bp_status bp_regex_serialize(bp_regex *const *codes, size_t n, unsigned char **bytes, size_t *len);

/**
 * Codes stored by the build as one serialization, decoded at the first take.  Initialise
 * with {bytes, n} (bytes may be NULL: nothing to hand out).  The serialization is borrowed:
 * it must outlive the table (a static array, aligned to 8).
 */
typedef struct bp_regex_table {
    const unsigned char *bytes; /**< the serialization, or NULL */
    size_t n;                   /**< codes it must hold: another count is refused */
    bp_regex **codes;           /**< decoded codes not taken yet (NULL until the first take) */
    int state;                  /**< 0 not decoded yet, 1 decoded, -1 refused */
} bp_regex_table;

/**
 * Code @p i of the table, decoded at the first take of any; ownership passes to the caller.
 * @return NULL when @p i is out of range or taken already, or when this PCRE2 refuses the
 *         serialization or memory ran out decoding it (then compile the pattern instead;
 *         after running out, the next take decodes again).
 */
bp_regex *bp_regex_table_take(bp_regex_table *t, size_t i);

/** Release the codes not taken; the table may be taken from again (it decodes anew). */
void bp_regex_table_clear(bp_regex_table *t);

/** A count of tries that JIT-compiling waits for (zero-initialised). */
typedef struct bp_regex_lazy_jit {
    unsigned tries;
    int done; /**< JIT was due once: later codes are JIT-compiled as soon as they are made */
} bp_regex_lazy_jit;

/** Count one try. @return non-zero exactly once: at the @p after-th try (JIT-compile now). */
int bp_regex_lazy_jit_due(bp_regex_lazy_jit *j, unsigned after);

/** Limits and match results for searches; one per thread. */
typedef struct bp_regex_matcher bp_regex_matcher;

/** @return a matcher with the match and depth limits of limits.h, or NULL (out of memory). */
bp_regex_matcher *bp_regex_matcher_new(void);

/** Release @p m; NULL is allowed. */
void bp_regex_matcher_free(bp_regex_matcher *m);

/**
 * Search @p re in @p s[0, @p len) for the first match starting at or after @p from.
 * Every search is charged to the current effort budget (effort.h) and runs under the match,
 * depth and heap limits of limits.h.  When more than BP_REGEX_JIT_SUBJECT_BYTES lie after
 * @p from, @p re is JIT-compiled first: the interpreter re-checks the UTF-8 of the whole rest
 * of the subject at every call (PCRE2_MATCH_INVALID_UTF), which would make a loop of
 * searches through a long text quadratic.  A BP_REGEX_WINDOWED pattern is searched
 * BP_REGEX_WINDOW_BYTES of start positions at a time, each window charged as a search.
 * The result is PCRE2's either way.
 * @param ms, @p me receive the span of the match (either may be NULL)
 * @return 1 on a match; 0 when there is none, when a limit stopped the search (hostile text
 *         never matches by exhausting PCRE2), or when the effort budget has run out; also 0
 *         when PCRE2 ran out of memory, which cuts the effort budget (BP_EFFORT_MEMORY).
 */
int bp_regex_search(bp_regex_matcher *m, const bp_regex *re, const char *s, size_t len, size_t from, size_t *ms,
                    size_t *me);

/** @return non-zero when @p re has a capturing group named @p name. */
int bp_regex_has_group(const bp_regex *re, const char *name);

/**
 * The span of the named group @p name of @p m's last match, which must have been a match of
 * @p re; when several groups share the name ((?J)), the first of them that took part.
 * @return non-zero when the group took part and is not empty.
 */
int bp_regex_group(const bp_regex_matcher *m, const bp_regex *re, const char *name, size_t *gs, size_t *ge);

#endif
