/*
 * test_util.h - what the report tests share: reading a message into a report through the
 * public path (bytes -> bp_mime_parse() -> bp_report_parse()), and reading a fixture file
 * of fixtures/<suite>/ into memory.  Include after <cmocka.h> and test_support.h.
 *
 * Ownership: the message tree and the report live in the arena passed in; a file read by
 * bp_test_read_file() is the caller's to free().
 */
#ifndef BOUNCEPIPE_TEST_UTIL_H
#define BOUNCEPIPE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/report.h"
#include "bouncepipe/rules.h"

/* Parse @p len bytes of @p msg and read them as a report into @p r with @p opts (NULL: the
 * defaults); @return BP_OK or the first error, of the MIME parse or of the report. */
static inline bp_status bp_test_parse_report(bp_arena *arena, const char *msg, size_t len,
                                             const bp_report_options *opts, bp_report *r)
{
    bp_mime_message m;
    bp_status st = bp_mime_parse(msg, len, arena, &m);
    if (st != BP_OK)
        return st;
    return bp_report_parse(&m, opts, arena, r);
}

/* The whole file at @p path, NUL-terminated, read to at most 1 MiB - 1 bytes, its length in
 * @p len; NULL when it cannot be opened or memory runs out.  The caller frees it. */
static inline char *bp_test_read_file(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(1 << 20);
    if (buf != NULL) {
        *len = fread(buf, 1, (1 << 20) - 1, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

/* Read fixtures/@p suite/@p name.eml into @p r with the default options; fails the test when
 * the file cannot be read or does not parse. */
static inline void bp_test_parse_fixture(bp_arena *arena, const char *suite, const char *name, bp_report *r)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/fixtures/%s/%s.eml", BP_SOURCE_DIR, suite, name);
    size_t len = 0;
    char *bytes = bp_test_read_file(path, &len);
    if (bytes == NULL)
        fail_msg("cannot read %s", path);
    assert_int_equal(bp_test_parse_report(arena, bytes, len, NULL, r), BP_OK);
    free(bytes); /* the tree and the report live in the arena */
}

/* ---- messages given as strings (the report tests) ---- */

/* Read the NUL-terminated message @p msg into @p r with the default options; fails the test
 * unless it parses. */
static inline void bp_test_parse_str(bp_arena *arena, const char *msg, bp_report *r)
{
    assert_int_equal(bp_test_parse_report(arena, msg, strlen(msg), NULL, r), BP_OK);
}

/* Read @p msg into @p r as bp_test_parse_str() does; fails the test unless it is a report of
 * @p kind with one block, for @p recipient. */
static inline void bp_test_parse_one_block(bp_arena *arena, const char *msg, bp_report_kind kind, const char *recipient,
                                           bp_report *r)
{
    bp_test_parse_str(arena, msg, r);
    assert_int_equal(r->kind, kind);
    assert_int_equal(r->n_blocks, 1);
    bp_test_check_str("recipient", r->blocks[0].recipient, recipient);
}

/* ---- the built-in rules (the classify and rules tests) ---- */

/* A new rule set with the built-in rules loaded, or NULL when they do not load cleanly (for a
 * group setup: return its NULL as the failure).  The caller frees it with bp_rules_free(). */
static inline bp_rules *bp_test_builtin_rules(void)
{
    bp_rules *r = NULL;
    unsigned errs = 99;
    if (bp_rules_new(&r) != BP_OK)
        return NULL;
    if (bp_rules_load_builtin(r, NULL, NULL, &errs) != BP_OK || errs != 0) {
        bp_rules_free(r);
        return NULL;
    }
    return r;
}

#endif
