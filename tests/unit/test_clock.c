/*
 * test_clock.c - the monotonic clock, sleeping and the back-off (clock.h): every delay stays
 * within 1..min(base << attempt, cap), including shifts past the word's width and a zero
 * base or cap; one seed gives one sequence and advances; a sleep of nothing returns at once.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bouncepipe/clock.h"
#include "test_support.h"

static const struct {
    const char *label;
    unsigned attempt, base_ms, cap_ms;
    long long top; /* the largest delay allowed */
} backoff_rows[] = {
    {"first retry", 0, 1, 64, 1},
    {"doubling", 3, 1, 64, 8},
    {"reaches the cap", 6, 1, 64, 64},
    {"past the cap", 20, 1, 64, 64},
    {"shift past 32 bits", 40, 1, 64, 64},
    {"shift of the word's width", 31, UINT_MAX, UINT_MAX, UINT_MAX},
    {"larger base", 2, 10, 5000, 40},
    {"larger base capped", 12, 10, 5000, 5000},
    {"zero base", 5, 0, 64, 1},
    {"zero cap", 5, 1, 0, 1},
};

static void test_backoff_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(backoff_rows) / sizeof(backoff_rows[0]); i++) {
        unsigned seed = 12345u + (unsigned)i;
        long long lo = LLONG_MAX, hi = 0;
        for (int n = 0; n < 2000; n++) {
            long long ms =
                bp_backoff_ms(&seed, backoff_rows[i].attempt, backoff_rows[i].base_ms, backoff_rows[i].cap_ms);
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        if (lo < 1 || hi > backoff_rows[i].top)
            fail_msg("%s: delays %lld..%lld, want 1..%lld", backoff_rows[i].label, lo, hi, backoff_rows[i].top);
        /* small ranges are covered whole: the delay is spread, not fixed */
        if (backoff_rows[i].top <= 64 && hi != backoff_rows[i].top)
            fail_msg("%s: largest delay %lld of 2000, want %lld", backoff_rows[i].label, hi, backoff_rows[i].top);
    }
}

static void test_backoff_seed(void **state)
{
    (void)state;
    unsigned a = 7, b = 7;
    long long first[16];
    int differ = 0;
    for (int n = 0; n < 16; n++) {
        first[n] = bp_backoff_ms(&a, 6, 1, 64);
        assert_int_equal(first[n], bp_backoff_ms(&b, 6, 1, 64)); /* one seed, one sequence */
        differ |= n > 0 && first[n] != first[0];
    }
    assert_true(differ); /* the seed advances */
    assert_int_equal(a, b);
}

static void test_clock(void **state)
{
    (void)state;
    long long t0 = bp_monotonic_ms();
    bp_sleep_ms(0);
    bp_sleep_ms(-5);
    long long t1 = bp_monotonic_ms();
    assert_true(t1 >= t0);
    assert_true(t1 - t0 < 1000); /* nothing to sleep: no sleep (a generous bound for loaded hosts) */
    bp_sleep_ms(20);
    assert_true(bp_monotonic_ms() - t1 >= 20);
}

BP_TEST_MAIN(cmocka_unit_test(test_backoff_bounds), cmocka_unit_test(test_backoff_seed), cmocka_unit_test(test_clock))
