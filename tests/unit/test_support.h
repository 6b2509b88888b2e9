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

/* ---- string tables and per-test arenas (the report, classify and scanner tests) ---- */

/* Register test @p f with a fresh arena as its state (bp_test_arena_setup()). */
#define BP_ARENA_TEST(f) cmocka_unit_test_setup_teardown(f, bp_test_arena_setup, bp_test_arena_teardown)

/* One row of a string table: a case name, its input, the string wanted (NULL: none). */
typedef struct bp_test_str_case {
    const char *label, *input, *want;
} bp_test_str_case;

/* What a string table tests: @p input through the function under test, with @p ctx (an
 * arena, or NULL); NULL for "no result". */
typedef const char *(*bp_test_str_fn)(void *ctx, const char *input);

/* Run @p fn over the @p n rows and fail with "LABEL: got X, want Y" at the first wrong one. */
static inline void bp_test_str_cases(const bp_test_str_case *rows, size_t n, bp_test_str_fn fn, void *ctx)
{
    for (size_t i = 0; i < n; i++)
        bp_test_check_str(rows[i].label, fn(ctx, rows[i].input), rows[i].want);
}

#define BP_TEST_STR_CASES(rows, fn, ctx) bp_test_str_cases(rows, sizeof(rows) / sizeof((rows)[0]), fn, ctx)

#endif
