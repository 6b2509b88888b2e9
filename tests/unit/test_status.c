/*
 * test_status.c - the status enum: a name for every value, and which failures are transient
 * (may go away with nothing changed: busy, I/O, memory) and which are not (a store that
 * refuses for good, a bad configuration: retrying them would spin for ever).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/status.h"

static void test_transient(void **state)
{
    (void)state;
    static const struct {
        bp_status st;
        int want;
    } rows[] = {
        {BP_OK, 0},        {BP_ERR_NOMEM, 1}, {BP_ERR_IO, 1},          {BP_ERR_NOT_FOUND, 0},
        {BP_ERR_PARSE, 0}, {BP_ERR_LIMIT, 0}, {BP_ERR_CONFIG, 0},      {BP_ERR_BUSY, 1},
        {BP_ERR_STORE, 0}, {BP_ERR_USAGE, 0}, {BP_ERR_UNSUPPORTED, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (bp_status_is_transient(rows[i].st) != rows[i].want)
            fail_msg("%s: got %d, want %d", bp_status_to_string(rows[i].st), !rows[i].want, rows[i].want);
}

static void test_names(void **state)
{
    (void)state;
    for (int s = 0; s <= BP_STATUS_LAST; s++) {
        const char *name = bp_status_to_string((bp_status)s);
        assert_non_null(name);
        assert_true(name[0] != '\0');
    }
    assert_string_equal(bp_status_to_string((bp_status)1000), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_transient), cmocka_unit_test(test_names)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
