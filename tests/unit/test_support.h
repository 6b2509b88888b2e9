/*
 * test_support.h - what the cmocka tests share: a per-test arena as the test state, and
 * string comparisons that print got/want.  Include after <cmocka.h>.
 */
#ifndef BOUNCEPIPE_TEST_SUPPORT_H
#define BOUNCEPIPE_TEST_SUPPORT_H

#include <string.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/mime.h"

/* Setup: a fresh arena as *state (and GMime initialised, for tests that parse). */
static inline int bp_test_arena_setup(void **state)
{
    bp_mime_init();
    *state = bp_arena_new();
    return *state == NULL;
}

static inline int bp_test_arena_teardown(void **state)
{
    bp_arena_free(*state);
    return 0;
}

/* Fail with "LABEL: got X, want Y" unless @p got equals @p want (NULL equals NULL only). */
static inline void bp_test_check_str(const char *label, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", label, got ? got : "(null)", want ? want : "(null)");
}

/* The same for one field of a table row: "LABEL: WHAT: got "X", want "Y"". */
static inline void bp_test_check_field(const char *label, const char *what, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: %s: got \"%s\", want \"%s\"", label, what, got ? got : "(null)", want ? want : "(null)");
}

#endif
