/*
 * test_fields.c - the "Name: value" field-group grammar of report parts (src/report/fields.c):
 * group breaks, folding, the lenient shapes of docs/violations.md, and the group limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/fields.h"
#include "test_support.h"

/* One row: the text, how many groups it must give, and one field to look up in a group. */
static void test_groups(void **state)
{
    static const struct {
        const char *label;
        const char *input;
        size_t want_groups;
        size_t group;
        const char *name;
        const char *want;
    } rows[] = {
        {"two groups", "Reporting-MTA: dns; a.example\n\nFinal-Recipient: rfc822; u@example.com\nStatus: 5.1.1\n", 2, 1,
         "Status", "5.1.1"},
        {"per-message field", "Reporting-MTA: dns; a.example\n\nFinal-Recipient: rfc822; u@example.com\n", 2, 0,
         "reporting-mta", "dns; a.example"},
        {"folded value joined by one space",
         "Final-Recipient: rfc822; u@example.com\nDiagnostic-Code: smtp; 550 5.1.1 user\n    unknown here\n", 1, 0,
         "Diagnostic-Code", "smtp; 550 5.1.1 user unknown here"},
        {"tab continuation", "Diagnostic-Code: smtp; 550\n\tno such user\n", 1, 0, "Diagnostic-Code",
         "smtp; 550 no such user"},
        {"CRLF line ends", "Reporting-MTA: dns; a.example\r\n\r\nStatus: 4.2.2\r\nAction: delayed\r\n", 2, 1, "Action",
         "delayed"},
        {"leading blank lines", "\n\n\nStatus: 5.0.0\n", 1, 0, "Status", "5.0.0"},
        {"white-space line breaks a group", "Status: 5.1.1\n   \t\nStatus: 5.2.2\n", 2, 1, "Status", "5.2.2"},
        {"space before colon", "Status : 5.1.1\n", 1, 0, "Status", "5.1.1"},
        {"line without colon skipped", "Status: 5.1.1\nthis line is noise\nAction: failed\n", 1, 0, "Action", "failed"},
        {"name with inner space is not a field", "Final Recipient: u@example.com\nStatus: 5.1.1\n", 1, 0,
         "Final Recipient", NULL},
        {"no trailing newline", "Status: 5.1.1", 1, 0, "Status", "5.1.1"},
        {"value trimmed", "Action:    failed   \n", 1, 0, "Action", "failed"},
        {"empty value kept", "X-Empty:\nStatus: 5.1.1\n", 1, 0, "X-Empty", ""},
        {"first of repeated field", "Status: 5.1.1\nStatus: 5.2.2\n", 1, 0, "Status", "5.1.1"},
        {"colon in value", "Arrival-Date: Tue, 10 Mar 2026 09:14:05 +0000\n", 1, 0, "Arrival-Date",
         "Tue, 10 Mar 2026 09:14:05 +0000"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_field_group *groups = NULL;
        size_t n = 0, dropped = 0;
        bp_status st = bp_fields_parse(rows[i].input, strlen(rows[i].input), 16, *state, &groups, &n, &dropped);
        if (st != BP_OK)
            fail_msg("%s: status got %d, want BP_OK", rows[i].label, (int)st);
        if (n != rows[i].want_groups)
            fail_msg("%s: groups got %zu, want %zu", rows[i].label, n, rows[i].want_groups);
        bp_test_check_field(rows[i].label, rows[i].name, bp_fields_get(&groups[rows[i].group], rows[i].name),
                            rows[i].want);
    }
}

static void test_empty_input(void **state)
{
    bp_field_group *groups = NULL;
    size_t n = 99;
    assert_int_equal(bp_fields_parse("", 0, 4, *state, &groups, &n, NULL), BP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bp_fields_parse("\n\n  \n", 5, 4, *state, &groups, &n, NULL), BP_OK);
    assert_int_equal(n, 0);
}

static void test_group_limit(void **state)
{
    const char *text = "A: 1\n\nB: 2\n\nC: 3\n\nD: 4\n";
    bp_field_group *groups = NULL;
    size_t n = 0, dropped = 0;
    assert_int_equal(bp_fields_parse(text, strlen(text), 2, *state, &groups, &n, &dropped), BP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(dropped, 2);
    bp_test_check_field("limit", "A", bp_fields_get(&groups[0], "A"), "1");
    bp_test_check_field("limit", "B", bp_fields_get(&groups[1], "B"), "2");
}

/* The length argument bounds the parse: bytes past it are never read. */
static void test_length_bounds(void **state)
{
    const char *text = "Status: 5.1.1\nAction: failed\n";
    bp_field_group *groups = NULL;
    size_t n = 0;
    assert_int_equal(bp_fields_parse(text, 14, 4, *state, &groups, &n, NULL), BP_OK);
    assert_int_equal(n, 1);
    bp_test_check_field("bounded", "Status", bp_fields_get(&groups[0], "Status"), "5.1.1");
    bp_test_check_field("bounded", "Action", bp_fields_get(&groups[0], "Action"), NULL);
}

/* bp_field_find(): the value of the first of the first n fields with the name, in any case;
 * NULL when none of them has it (n bounds the look-up: a field past it is not there). */
static void test_field_find(void **state)
{
    (void)state;
    static const bp_field fields[] = {
        {"Final-Recipient", "rfc822; a@example.com"},
        {"Status", "5.1.1"},
        {"status", "4.0.0"},
        {"X-Empty", ""},
        {"", "nameless"},
        {"Action", "failed"},
    };
    static const struct {
        const char *label;
        size_t n;
        const char *name, *want;
    } rows[] = {
        {"first field", 6, "Final-Recipient", "rfc822; a@example.com"},
        {"exact case", 6, "Status", "5.1.1"},
        {"upper case", 6, "STATUS", "5.1.1"},
        {"lower case", 6, "final-recipient", "rfc822; a@example.com"},
        {"the first of two in any case", 6, "status", "5.1.1"},
        {"last field", 6, "Action", "failed"},
        {"empty value is a value", 6, "X-Empty", ""},
        {"empty name: the nameless field", 6, "", "nameless"},
        {"not found", 6, "Diagnostic-Code", NULL},
        {"a prefix is not the name", 6, "Stat", NULL},
        {"the name is not a prefix", 6, "Status-Code", NULL},
        {"past n", 5, "Action", NULL},
        {"one field", 1, "Status", NULL},
        {"one field, found", 1, "FINAL-RECIPIENT", "rfc822; a@example.com"},
        {"empty name past n", 4, "", NULL},
        {"no fields", 0, "Status", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        bp_test_check_field(rows[i].label, rows[i].name, bp_field_find(fields, rows[i].n, rows[i].name), rows[i].want);
    assert_ptr_equal(bp_field_find(fields, 6, "action"), fields[5].value); /* the field's own, not a copy */
    assert_null(bp_field_find(NULL, 0, "Status"));                         /* none: never read */
}

BP_TEST_MAIN(BP_ARENA_TEST(test_groups), BP_ARENA_TEST(test_empty_input), BP_ARENA_TEST(test_group_limit),
             BP_ARENA_TEST(test_length_bounds), cmocka_unit_test(test_field_find))
