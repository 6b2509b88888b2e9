/*
 * test_smtpcode.c - the SMTP reply code and enhanced status code scanners
 * (src/util/smtpcode.c): what counts as a code, and the look-alikes that must not
 * (IP addresses, dates, version numbers, host names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/smtpcode.h"
#include "test_support.h"

/* The three scanners as one string function: the code found, NULL for none. */
enum scanner { STATUS_PARSE, STATUS_FIND, SMTP_CODE_FIND };

static const char *scan(void *ctx, const char *input)
{
    static char out[BP_STATUS_BUF]; /* an SMTP code needs 4 of these bytes */
    int found = 0;
    out[0] = '\0';
    switch (*(const enum scanner *)ctx) {
    case STATUS_PARSE: found = bp_status_code_parse(input, out); break;
    case STATUS_FIND: found = bp_status_code_find(input, strlen(input), out); break;
    case SMTP_CODE_FIND: found = bp_smtp_code_find(input, strlen(input), out); break;
    }
    return found ? out : NULL;
}

static const bp_test_str_case status_parse_rows[] = {
    {"plain", "5.1.1", "5.1.1"},
    {"with comment", "5.0.0 (permanent failure)", "5.0.0"},
    {"leading white space", "  \t4.4.7", "4.4.7"},
    {"three-digit detail", "5.7.509", "5.7.509"},
    {"two-digit subject", "5.1.10", "5.1.10"},
    {"success class", "2.0.0", "2.0.0"},
    {"class 3 is no class", "3.1.1", NULL},
    {"class 6 is no class", "6.1.1", NULL},
    {"two parts only", "5.1", NULL},
    {"four-digit detail", "5.1.1234", NULL},
    {"trailing digit group", "5.1.1.4", NULL},
    {"not at the start", "smtp; 5.1.1", NULL},
    {"empty", "", NULL},
    {"NULL", NULL, NULL},
};

static void test_status_parse(void **state)
{
    (void)state;
    enum scanner k = STATUS_PARSE;
    BP_TEST_STR_CASES(status_parse_rows, scan, &k);
}

static const bp_test_str_case status_find_rows[] = {
    {"after reply code", "550 5.1.1 <jdoe@example.net>: User unknown", "5.1.1"},
    {"continuation form", "550-5.1.1 The email account that you tried to reach", "5.1.1"},
    {"qmail hash form", "511 sorry, no mailbox here by that name (#5.1.1)", "5.1.1"},
    {"first of two", "554 4.4.7 Message expired <421 4.4.2 Connection timed out>", "4.4.7"},
    {"not inside an IPv4 address", "host 192.0.2.5 refused", NULL},
    {"IP then a real code", "connect to 10.5.1.1 failed: 451 4.4.1 no answer", "4.4.1"},
    {"not a version number", "Postfix v2.5.1 here", NULL},
    {"not inside a longer number", "id 15.20.7362 queued", NULL},
    {"followed by dotted digits", "build 5.1.1.2600 done", NULL},
    {"no code", "Mailbox full", NULL},
};

static void test_status_find(void **state)
{
    (void)state;
    enum scanner k = STATUS_FIND;
    BP_TEST_STR_CASES(status_find_rows, scan, &k);
}

static const bp_test_str_case smtp_code_find_rows[] = {
    {"plain", "550 5.1.1 User unknown", "550"},
    {"continuation dash", "550-5.1.1 The email account", "550"},
    {"after text", "host mx.example.net said: 452 4.2.2 Mailbox full", "452"},
    {"success", "250 2.0.0 Ok: queued as 4QzV9x8y7z", "250"},
    {"end of text", "Remote server said 421", "421"},
    {"in brackets", "<421 4.4.2 Connection timed out>", "421"},
    {"not a year", "Tue, 10 Mar 2026 09:14:05 +0000", NULL},
    {"not an IP octet", "connect to 192.0.2.25 failed", NULL},
    {"not in a host name", "mx550.example.net refused", NULL},
    {"not after a dash", "queue-550 held", NULL},
    {"second digit over 5", "error 590 here", NULL},
    {"not a port", "[192.0.2.44]:25: Connection timed out", NULL},
    {"not an enhanced code's class", "5.1.1 only", NULL},
    {"empty", "", NULL},
};

static void test_smtp_code_find(void **state)
{
    (void)state;
    enum scanner k = SMTP_CODE_FIND;
    BP_TEST_STR_CASES(smtp_code_find_rows, scan, &k);
}

/* The length bounds the scan: a code past it is not seen, and no byte past it is read. */
static void test_length_bounds(void **state)
{
    (void)state;
    const char *text = "see below 550 5.1.1 user unknown";
    char code[4] = "";
    char status[BP_STATUS_BUF] = "";
    assert_false(bp_smtp_code_find(text, 10, code));
    assert_false(bp_status_code_find(text, 10, status));
    assert_true(bp_smtp_code_find(text, strlen(text), code));
    assert_string_equal(code, "550");
    assert_false(bp_smtp_code_find(NULL, 0, code));
    assert_false(bp_status_code_find(NULL, 0, status));
}

BP_TEST_MAIN(cmocka_unit_test(test_status_parse), cmocka_unit_test(test_status_find),
             cmocka_unit_test(test_smtp_code_find), cmocka_unit_test(test_length_bounds))
