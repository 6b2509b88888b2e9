/*
 * test_effort.c - the per-message effort budget (effort.h) and how the PCRE2 wrapper
 * (regex.h) keeps to it:
 * - budgets nest, and the one begun last is the current one until it ends;
 * - the PCRE2 work budget counts searches and refuses the one past it; the time budget runs
 *   out on the clock; either way it stays out, and records what ran out in which stage;
 * - a search is charged before it runs and finds nothing once the budget is out;
 * - a windowed pattern is searched window by window through a long subject (each window a
 *   search), and finds exactly what one pcre2_match() over the whole subject finds;
 * - a search for the SMTP stage that cannot get memory for its copy of a long text cuts the
 *   budget for memory (no answer is not "no stage").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/regex.h"
#include "bouncepipe/report.h"
#include "test_support.h"

static void test_nesting(void **state)
{
    (void)state;
    assert_null(bp_effort_current());
    bp_effort outer, inner;
    bp_effort_begin(&outer);
    assert_ptr_equal(bp_effort_current(), &outer);
    assert_int_equal(outer.searches_max, BP_EFFORT_REGEX_SEARCHES);
    assert_true(outer.deadline_ns > outer.started_ns);
    bp_effort_begin_with(&inner, 0, 0);
    assert_ptr_equal(bp_effort_current(), &inner);
    bp_effort_end(&inner);
    assert_ptr_equal(bp_effort_current(), &outer);
    bp_effort_end(&outer);
    assert_null(bp_effort_current());
    /* without a budget nothing is refused */
    assert_true(bp_effort_left());
    assert_true(bp_effort_search());
}

static void test_search_budget(void **state)
{
    (void)state;
    bp_effort e;
    bp_effort_begin_with(&e, 0, 3);
    bp_effort_stage("somewhere");
    for (int i = 0; i < 3; i++)
        assert_true(bp_effort_search());
    assert_true(bp_effort_left());
    bp_effort_stage("elsewhere");
    assert_false(bp_effort_search());
    assert_false(bp_effort_left()); /* out is out */
    assert_false(bp_effort_search());
    bp_effort_end(&e);
    assert_int_equal(e.cut, BP_EFFORT_REGEX);
    assert_string_equal(e.cut_in, "elsewhere");
    assert_int_equal(e.searches, 3);
    assert_string_equal(bp_effort_cut_name(e.cut), "PCRE2 work");
}

static void test_time_budget(void **state)
{
    (void)state;
    bp_effort e;
    bp_effort_begin_with(&e, 1, 0);
    bp_effort_stage("the scan");
    assert_true(bp_effort_search());
    /* CPU time: sleeping does not spend it, working does */
    struct timespec pause = {0, 3 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 15; i++) /* the 16th check since the budget began reads the clock */
        assert_true(bp_effort_left());
    volatile unsigned long spin = 0;
    for (long tries = 0; bp_effort_left() && tries < 100000000; tries++)
        spin += (unsigned long)tries;
    assert_false(bp_effort_left());
    assert_false(bp_effort_search());
    bp_effort_end(&e);
    assert_int_equal(e.cut, BP_EFFORT_TIME);
    assert_string_equal(e.cut_in, "the scan");
    assert_true(e.cut_after_ns >= 1000000u);
    assert_true(e.elapsed_ns >= e.cut_after_ns);
    assert_string_equal(bp_effort_cut_name(e.cut), "time");
}

/* Every search is charged before it runs; once the budget is out, nothing matches. */
static void test_search_is_charged(void **state)
{
    (void)state;
    bp_regex_matcher *m = bp_regex_matcher_new();
    bp_regex *re = bp_regex_compile("user unknown", BP_REGEX_CASELESS, NULL, 0);
    assert_non_null(m);
    assert_non_null(re);
    const char *text = "550 5.1.1 User Unknown";
    size_t ms = 0, me = 0;
    bp_effort e;
    bp_effort_begin_with(&e, 0, 1);
    assert_true(bp_regex_search(m, re, text, strlen(text), 0, &ms, &me));
    assert_int_equal(ms, 10);
    assert_int_equal(me, strlen(text));
    assert_false(bp_regex_search(m, re, text, strlen(text), 0, &ms, &me));
    bp_effort_end(&e);
    assert_int_equal(e.cut, BP_EFFORT_REGEX);
    assert_true(bp_regex_search(m, re, text, strlen(text), 0, NULL, NULL)); /* no budget: matches */
    bp_regex_free(re);
    bp_regex_matcher_free(m);
}

static unsigned long long rng_state = 0x2545F4914F6CDD1DULL;

static unsigned rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state >> 32);
}

/* A long subject is searched BP_REGEX_WINDOW_BYTES of start positions at a time; the windows
 * find what one search finds (the same spans, for patterns whose matches cross a window's
 * end too), and each window is a search of the budget. */
static void test_windows(void **state)
{
    (void)state;
    static const char *const patterns[] = {"^needle$",      "needle",       "ne+dle\\s*$", "^\\s*x@y\\.z\\s+",
                                           "[^\\n]{3000}Q", "(?<=a)needle", "\\bneedle\\b"};
    bp_regex_matcher *m = bp_regex_matcher_new();
    assert_non_null(m);
    size_t cap = 3 * BP_REGEX_WINDOW_BYTES + BP_REGEX_JIT_SUBJECT_BYTES + 8192;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
        bp_regex *windowed = bp_regex_compile(patterns[p], BP_REGEX_MULTILINE | BP_REGEX_WINDOWED, NULL, 0);
        bp_regex *whole = bp_regex_compile(patterns[p], BP_REGEX_MULTILINE, NULL, 0);
        assert_non_null(windowed);
        assert_non_null(whole);
        for (int round = 0; round < 60; round++) {
            size_t len = BP_REGEX_JIT_SUBJECT_BYTES + rng() % (cap - BP_REGEX_JIT_SUBJECT_BYTES - 4096);
            for (size_t i = 0; i < len; i++) {
                unsigned r = rng() % 64;
                text[i] = r == 0 ? '\n' : r == 1 ? ' ' : 'a';
            }
            /* a few matches anywhere, one often straddling a window's end */
            static const char *const pieces[] = {"\nneedle\n", " x@y.z  ", "neeedle \n", "Q", "aneedle "};
            for (int k = 0; k < 3; k++) {
                const char *piece = pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
                size_t at = k == 0 ? (BP_REGEX_WINDOW_BYTES * (1 + rng() % 3) - 3) % (len - 16) : rng() % (len - 16);
                memcpy(text + at, piece, strlen(piece));
            }
            size_t from = rng() % 64;
            size_t ws = 0, we = 0, s = 0, e = 0;
            bp_effort budget;
            bp_effort_begin_with(&budget, 0, 0);
            int got = bp_regex_search(m, windowed, text, len, from, &ws, &we);
            bp_effort_end(&budget);
            int want = bp_regex_search(m, whole, text, len, from, &s, &e);
            if (got != want || (got && (ws != s || we != e)))
                fail_msg("/%s/ round %d: windows found %d at %zu-%zu, one search %d at %zu-%zu", patterns[p], round,
                         got, ws, we, want, s, e);
            /* one search per window tried */
            size_t last = got ? ws : len;
            uint64_t windows = (last - from) / BP_REGEX_WINDOW_BYTES + 1;
            if (budget.searches != windows && !(got == 0 && budget.searches == windows - 1))
                fail_msg("/%s/ round %d: %llu searches for %llu windows", patterns[p], round,
                         (unsigned long long)budget.searches, (unsigned long long)windows);
        }
        bp_regex_free(windowed);
        bp_regex_free(whole);
    }
    /* matches at the edges of windows: each start position is tried once, in its window */
    bp_regex *needle = bp_regex_compile("needle", BP_REGEX_WINDOWED, NULL, 0);
    assert_non_null(needle);
    for (size_t k = 1; k <= 3; k++)
        for (int delta = -1; delta <= 1; delta++) {
            size_t from = 5, at = from + k * BP_REGEX_WINDOW_BYTES + (size_t)(long)delta;
            memset(text, 'a', cap);
            memcpy(text + at, "needle", 6);
            size_t ms = 0;
            bp_effort budget;
            bp_effort_begin_with(&budget, 0, 0);
            int found = bp_regex_search(m, needle, text, cap, from, &ms, NULL);
            bp_effort_end(&budget);
            if (!found || ms != at)
                fail_msg("needle at %zu (window edge %zu%+d): found %d at %zu", at, k, delta, found, ms);
            uint64_t want = (at - from) / BP_REGEX_WINDOW_BYTES + 1;
            if (budget.searches != want)
                fail_msg("needle at %zu: %llu searches, want %llu", at, (unsigned long long)budget.searches,
                         (unsigned long long)want);
        }
    bp_regex_free(needle);
    /* a budget of a few searches stops a windowed search through a long text early */
    memset(text, 'a', cap);
    memcpy(text + cap - 7, "needle", 6);
    bp_regex *re = bp_regex_compile("needle", BP_REGEX_WINDOWED, NULL, 0);
    bp_effort small;
    bp_effort_begin_with(&small, 0, 4);
    assert_false(bp_regex_search(m, re, text, cap, 0, NULL, NULL));
    bp_effort_end(&small);
    assert_int_equal(small.cut, BP_EFFORT_REGEX);
    assert_int_equal(small.searches, 4);
    assert_true(bp_regex_search(m, re, text, cap, 0, NULL, NULL));
    bp_regex_free(re);
    free(text);
    bp_regex_matcher_free(m);
}

static void test_stage_find_out_of_memory(void **state)
{
    (void)state;
    size_t len = 4096; /* beyond the stack copy: the search copies it to the heap */
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'x', len);
    const char *said = "mx.example.org does not like recipient.";
    memcpy(text + 2000, said, strlen(said));
    text[len] = '\0';
    size_t at = 0, end = 0;
    bp_effort e;
    bp_effort_begin_with(&e, 0, 0);
    assert_int_equal(bp_stage_find(text, len, &at, &end), BP_SMTP_RCPT);
    assert_int_equal(e.cut, BP_EFFORT_OK);
    bp_alloc_set_fault(bp_test_fail_all, NULL);
    bp_stage_find(text, len, &at, &end);
    bp_alloc_set_fault(NULL, NULL);
    bp_effort_end(&e);
    assert_int_equal(e.cut, BP_EFFORT_MEMORY);
    free(text);
}

BP_TEST_MAIN(cmocka_unit_test(test_nesting), cmocka_unit_test(test_search_budget), cmocka_unit_test(test_time_budget),
             cmocka_unit_test(test_search_is_charged), cmocka_unit_test(test_windows),
             cmocka_unit_test(test_stage_find_out_of_memory))
