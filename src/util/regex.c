/*
 * regex.c - the one PCRE2 wrapper (contract in include/bouncepipe/regex.h).
 *
 * bp_regex_compile(): PCRE2_UTF | PCRE2_MATCH_INVALID_UTF plus the caller's flags; the error
 * is worded "MESSAGE at offset N" as rule-file warnings show it.  bp_regex_serialize(): PCRE2's
 * encoding, copied into malloc'ed memory.  bp_regex_table_take(): pcre2_serialize_decode()
 * of the whole table at the first take (copying bytes, a fraction of what compiling the
 * patterns costs), refused when the count differs or PCRE2 rejects the bytes.
 * bp_regex_search(): pcre2_match() under the match limit (steps of the matcher, counted
 * afresh at each start position), the depth limit (nested backtracking) and the heap limit
 * of limits.h; hitting one counts as no match.  Each search is first charged to the effort
 * budget (effort.h).  Two things keep a search through a long text linear: a subject with
 * more than BP_REGEX_JIT_SUBJECT_BYTES after the start is searched JIT-compiled (the
 * interpreter validates the UTF-8 of the rest of the subject at every call under
 * PCRE2_MATCH_INVALID_UTF: 82 k instructions a call through a 20 kB text, where the JIT code
 * needs none), and a BP_REGEX_WINDOWED pattern is searched BP_REGEX_WINDOW_BYTES of start
 * positions at a time (pcre2_set_offset_limit), the budget checked between windows, so that
 * no single call runs over a megabyte of start positions.  Where JIT is unavailable the
 * interpreter runs and the budget bounds the rest.
 *
 * Out of memory: a search or compile that PCRE2 could not do for want of memory has no
 * answer, so it is not taken for "no match" or "bad pattern": it cuts the current effort
 * budget (bp_effort_out_of_memory(): the message then fails with BP_ERR_NOMEM) and a compile
 * says ENOMEM in errno.  A decode that runs out leaves the table to be decoded again, a JIT
 * compile that runs out leaves JIT available for the next one.
 *
 * PCRE2's memory comes from bp_malloc() (alloc.h): one general context for the process, made
 * at the first use and kept, is handed to every compile, decode, match context and match
 * data, so that PCRE2's allocations fail where ours do under the fault hook of the tests.
 *
 * The opaque bp_regex is the pcre2_code itself: no allocation of our own per pattern.
 */
#include "bouncepipe/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/limits.h"

static int jit_unavailable; /* a JIT compile failed once: do not retry for every long subject */

static void *pcre2_alloc(PCRE2_SIZE size, void *data)
{
    (void)data;
    return bp_malloc(size);
}

static void pcre2_release(void *p, void *data)
{
    (void)data;
    free(p);
}

/* The process's general context (PCRE2 allocates through bp_malloc()), made at the first use
 * and kept for the life of the process; NULL when memory ran out (then the next use tries
 * again).  Threads racing to make it keep the first one made. */
static pcre2_general_context *general(void)
{
    static _Atomic(pcre2_general_context *) made;
    pcre2_general_context *g = atomic_load(&made);
    if (g != NULL)
        return g;
    pcre2_general_context *mine = pcre2_general_context_create(pcre2_alloc, pcre2_release, NULL);
    if (mine == NULL)
        return NULL;
    if (!atomic_compare_exchange_strong(&made, &g, mine)) {
        pcre2_general_context_free(mine); /* another thread made it first: g is that one */
        return g;
    }
    return mine;
}

struct bp_regex_matcher {
    pcre2_match_context *mctx; /* the limits */
    pcre2_match_data *mdata;   /* the last match (16 pairs: enough for every pattern's groups) */
};

static pcre2_code *code_of(const bp_regex *re)
{
    return (pcre2_code *)re;
}

bp_regex *bp_regex_compile(const char *pattern, unsigned flags, char *err, size_t err_size)
{
    uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (flags & BP_REGEX_CASELESS)
        options |= PCRE2_CASELESS;
    if (flags & BP_REGEX_MULTILINE)
        options |= PCRE2_MULTILINE;
    if (flags & BP_REGEX_WINDOWED)
        options |= PCRE2_USE_OFFSET_LIMIT;
    int errcode = PCRE2_ERROR_HEAP_FAILED;
    PCRE2_SIZE erroff = 0;
    pcre2_code *code = NULL;
    pcre2_general_context *g = general();
    pcre2_compile_context *cc = g != NULL ? pcre2_compile_context_create(g) : NULL;
    if (cc != NULL) { /* the code keeps a copy of the context's allocator: freed right away */
        code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options, &errcode, &erroff, cc);
        pcre2_compile_context_free(cc);
    }
    if (code == NULL && err != NULL && err_size > 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        snprintf(err, err_size, "%s at offset %zu", (const char *)msg, (size_t)erroff);
    }
    if (code == NULL && errcode == PCRE2_ERROR_HEAP_FAILED) {
        bp_effort_out_of_memory(); /* not the pattern's fault: whatever needed it has no answer */
        errno = ENOMEM;
    } else if (code == NULL) {
        errno = EINVAL;
    }
    return (bp_regex *)code;
}

void bp_regex_free(bp_regex *re)
{
    pcre2_code_free(code_of(re));
}

/* After a failed JIT compile: the interpreter runs, and gives the same results.  Only a JIT
 * that is not there (not built in, no executable memory) stops later tries; out of memory
 * may pass. */
static void jit_failed(int rc)
{
    if (rc != PCRE2_ERROR_NOMEMORY)
        jit_unavailable = 1;
}

void bp_regex_jit(bp_regex *re)
{
    int rc;
    if (re != NULL && (rc = pcre2_jit_compile(code_of(re), PCRE2_JIT_COMPLETE)) != 0)
        jit_failed(rc);
}

/* JIT-compile @p code unless it is already (PCRE2_INFO_JITSIZE is 0 before). */
static void jit_now(pcre2_code *code)
{
    size_t jit_size = 0;
    if (jit_unavailable || pcre2_pattern_info(code, PCRE2_INFO_JITSIZE, &jit_size) != 0 || jit_size > 0)
        return;
    int rc = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    if (rc != 0)
        jit_failed(rc);
}

bp_status bp_regex_serialize(bp_regex *const *codes, size_t n, unsigned char **bytes, size_t *len)
{
    if (n > INT32_MAX)
        return BP_ERR_LIMIT;
    uint8_t *encoded = NULL;
    PCRE2_SIZE size = 0;
    pcre2_general_context *g = general();
    if (g == NULL || pcre2_serialize_encode((const pcre2_code **)codes, (int32_t)n, &encoded, &size, g) < 0)
        return BP_ERR_NOMEM;
    *bytes = bp_malloc(size);
    if (*bytes != NULL) {
        memcpy(*bytes, encoded, size);
        *len = size;
    }
    pcre2_serialize_free(encoded);
    return *bytes != NULL ? BP_OK : BP_ERR_NOMEM;
}

/* Decode the whole serialization; a count other than the table's, or bytes this PCRE2
 * refuses (another version or configuration), leave the table refused.  Out of memory leaves
 * it as it was: the next take decodes again (the caller of this one compiles instead). */
static void table_decode(bp_regex_table *t)
{
    t->state = -1;
    if (t->bytes == NULL || t->n == 0 || t->n > INT32_MAX)
        return;
    int32_t n = pcre2_serialize_get_number_of_codes(t->bytes);
    if (n <= 0 || (size_t)n != t->n)
        return;
    pcre2_code **codes = bp_calloc((size_t)n, sizeof(*codes));
    pcre2_general_context *g = general();
    int32_t got = codes != NULL && g != NULL ? pcre2_serialize_decode(codes, n, t->bytes, g) : PCRE2_ERROR_NOMEMORY;
    if (got != n) {
        free((void *)codes); /* on failure PCRE2 frees the codes it decoded */
        if (got == PCRE2_ERROR_NOMEMORY)
            t->state = 0;
        return;
    }
    t->codes = (bp_regex **)codes;
    t->state = 1;
}

bp_regex *bp_regex_table_take(bp_regex_table *t, size_t i)
{
    if (t->state == 0)
        table_decode(t);
    if (t->state != 1 || i >= t->n)
        return NULL;
    bp_regex *re = t->codes[i];
    t->codes[i] = NULL; /* the caller owns it now */
    return re;
}

void bp_regex_table_clear(bp_regex_table *t)
{
    for (size_t i = 0; t->codes != NULL && i < t->n; i++)
        bp_regex_free(t->codes[i]);
    free((void *)t->codes);
    t->codes = NULL;
    t->state = 0;
}

int bp_regex_lazy_jit_due(bp_regex_lazy_jit *j, unsigned after)
{
    if (j->done || ++j->tries < after)
        return 0;
    j->done = 1;
    return 1;
}

bp_regex_matcher *bp_regex_matcher_new(void)
{
    bp_regex_matcher *m = bp_calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pcre2_general_context *g = general();
    if (g != NULL) {
        m->mctx = pcre2_match_context_create(g);
        m->mdata = pcre2_match_data_create(16, g);
    }
    if (m->mctx == NULL || m->mdata == NULL) {
        bp_regex_matcher_free(m);
        return NULL;
    }
    pcre2_set_match_limit(m->mctx, BP_PCRE2_MATCH_LIMIT);
    pcre2_set_depth_limit(m->mctx, BP_PCRE2_DEPTH_LIMIT);
    pcre2_set_heap_limit(m->mctx, BP_PCRE2_HEAP_LIMIT_KIB);
    return m;
}

void bp_regex_matcher_free(bp_regex_matcher *m)
{
    if (m == NULL)
        return;
    pcre2_match_context_free(m->mctx);
    pcre2_match_data_free(m->mdata);
    free(m);
}

/* The search of a BP_REGEX_WINDOWED pattern through a long subject: window by window of
 * start positions (the offset limit is the last start a call may try), each window charged
 * to the budget.  A limit hit in one window ends the search, as it would end one call. */
static int search_windows(bp_regex_matcher *m, pcre2_code *code, const char *s, size_t len, size_t from)
{
    int rc = PCRE2_ERROR_NOMATCH;
    for (;;) {
        size_t last = len - from > BP_REGEX_WINDOW_BYTES ? from + BP_REGEX_WINDOW_BYTES - 1 : len;
        pcre2_set_offset_limit(m->mctx, last);
        rc = pcre2_match(code, (PCRE2_SPTR)s, len, from, 0, m->mdata, m->mctx);
        if (rc != PCRE2_ERROR_NOMATCH || last >= len || !bp_effort_search())
            break;
        from = last + 1;
    }
    pcre2_set_offset_limit(m->mctx, PCRE2_UNSET);
    return rc;
}

int bp_regex_search(bp_regex_matcher *m, const bp_regex *re, const char *s, size_t len, size_t from, size_t *ms,
                    size_t *me)
{
    if (s == NULL || from > len || !bp_effort_search())
        return 0;
    pcre2_code *code = code_of(re);
    if (len - from > BP_REGEX_JIT_SUBJECT_BYTES)
        jit_now(code);
    int rc;
    uint32_t options = 0;
    if (len - from > BP_REGEX_WINDOW_BYTES && pcre2_pattern_info(code, PCRE2_INFO_ALLOPTIONS, &options) == 0 &&
        (options & PCRE2_USE_OFFSET_LIMIT))
        rc = search_windows(m, code, s, len, from);
    else
        rc = pcre2_match(code, (PCRE2_SPTR)s, len, from, 0, m->mdata, m->mctx);
    if (rc == PCRE2_ERROR_NOMEMORY)
        bp_effort_out_of_memory(); /* no answer: not "no match" */
    if (rc < 0)
        return 0;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->mdata);
    if (ms != NULL)
        *ms = ov[0];
    if (me != NULL)
        *me = ov[1];
    return 1;
}

int bp_regex_has_group(const bp_regex *re, const char *name)
{
    int n = pcre2_substring_number_from_name(code_of(re), (PCRE2_SPTR)name);
    return n > 0 || n == PCRE2_ERROR_NOUNIQUESUBSTRING; /* (?J): several groups of the name */
}

/* Group @p n of @p m's last match into *gs, *ge. @return non-zero when it took part. */
static int group_span(const bp_regex_matcher *m, int n, size_t *gs, size_t *ge)
{
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->mdata);
    if (n < 0 || (uint32_t)n >= pcre2_get_ovector_count(m->mdata) || ov[2 * n] == PCRE2_UNSET)
        return 0;
    *gs = ov[2 * n];
    *ge = ov[2 * n + 1];
    return 1;
}

int bp_regex_group(const bp_regex_matcher *m, const bp_regex *re, const char *name, size_t *gs, size_t *ge)
{
    const pcre2_code *code = code_of(re);
    int n = pcre2_substring_number_from_name(code, (PCRE2_SPTR)name);
    if (n == PCRE2_ERROR_NOUNIQUESUBSTRING) {
        /* (?J): several groups share the name; the first of them that took part */
        PCRE2_SPTR first = NULL, last = NULL;
        int size = pcre2_substring_nametable_scan(code, (PCRE2_SPTR)name, &first, &last);
        for (PCRE2_SPTR e = first; size > 0 && e != NULL && e <= last; e += size)
            if (group_span(m, (e[0] << 8) | e[1], gs, ge))
                return *ge > *gs;
        return 0;
    }
    return group_span(m, n, gs, ge) && *ge > *gs;
}
