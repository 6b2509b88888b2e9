/*
 * test_clock.c - the monotonic clock, sleeping and the back-off (clock.h): every delay stays
 * within 1..min(base << attempt, cap), including shifts past the word's width and a zero
 * base or cap; one seed gives one sequence and advances; a sleep of nothing returns at once;
 * dates in each layout, and none for a time out of the calendar's range or a short buffer.
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

static void test_utc_format(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        long long t;
        bp_utc_layout layout;
        size_t size;
        const char *want; /* NULL: no date */
    } rows[] = {
        {"ISO time", 1773134045, BP_UTC_TIME, 32, "2026-03-10T09:14:05Z"},
        {"day", 1773134045, BP_UTC_DAY, 32, "2026-03-10"},
        {"month", 1773134045, BP_UTC_MONTH, 32, "2026-03"},
        {"minute", 1773134045, BP_UTC_MINUTE, 32, "2026-03-10 09:14 UTC"},
        {"the epoch", 0, BP_UTC_TIME, 32, "1970-01-01T00:00:00Z"},
        {"before the epoch", -86400, BP_UTC_DAY, 32, "1969-12-31"},
        {"buffer just large enough", 1773134045, BP_UTC_DAY, 11, "2026-03-10"},
        {"buffer one short", 1773134045, BP_UTC_DAY, 10, NULL},
        {"year past int", LLONG_MAX, BP_UTC_TIME, 32, NULL},
        {"year before int", LLONG_MIN, BP_UTC_TIME, 32, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[32] = "x";
        int ok = bp_utc_format(rows[i].t, rows[i].layout, buf, rows[i].size);
        if (ok != (rows[i].want != NULL))
            fail_msg("%s: returned %d", rows[i].label, ok);
        bp_test_check_str(rows[i].label, buf, rows[i].want != NULL ? rows[i].want : "");
    }
    /* bp_utc_text(): the date, or the seconds when there is none */
    char text[32];
    bp_test_check_str("text of a date", bp_utc_text(1773134045, BP_UTC_TIME, text, sizeof(text)),
                      "2026-03-10T09:14:05Z");
    bp_test_check_str("text without a date", bp_utc_text(LLONG_MAX, BP_UTC_TIME, text, sizeof(text)),
                      "9223372036854775807");
    char none[1] = {'x'};
    assert_int_equal(bp_utc_format(0, BP_UTC_DAY, none, 0), 0); /* nothing written */
    assert_int_equal(none[0], 'x');
}

BP_TEST_MAIN(cmocka_unit_test(test_backoff_bounds), cmocka_unit_test(test_backoff_seed), cmocka_unit_test(test_clock),
             cmocka_unit_test(test_utc_format))
