/*
 * test_address.c - address normalisation, extraction from text, VERP and SRS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/address.h"
#include "test_support.h"

static void test_normalise(void **state)
{
    static const struct {
        const char *label, *input, *want;
    } rows[] = {
        {"dsn field", "rfc822; kijitora@Example.JP", "kijitora@example.jp"},
        {"brackets", "rfc822;<User.Name@MAIL.example.com>", "User.Name@mail.example.com"},
        {"display name", "\"Neko, Kijitora\" <neko@example.org>", "neko@example.org"},
        {"trailing dot", "rfc822; user@example.com.", "user@example.com"},
        {"utf-8 type", "utf-8; 用户@例子.广告", "用户@例子.广告"},
        {"no domain dot", "rfc822; user@localhost", NULL},
        {"not an address", "rfc822; redacted", NULL},
        {"empty", "", NULL},
        {"address literal", "<user@[192.0.2.1]>", "user@[192.0.2.1]"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        bp_test_check_str(rows[i].label, bp_address_normalise(*state, rows[i].input), rows[i].want);
}

static void test_find(void **state)
{
    const char *text = "Delivery to the following recipient failed permanently:\n\n     jdoe@example.net\n";
    size_t end = 0;
    bp_test_check_str("find", bp_address_find(*state, text, strlen(text), &end), "jdoe@example.net");
    assert_int_equal(end, strlen(text) - 1);
    bp_test_check_str("none", bp_address_find(*state, "no address here @ all", 21, NULL), NULL);
}

static void test_verp(void **state)
{
    static const struct {
        const char *label, *input, *prefix, *want;
    } rows[] = {
        {"powermta", "bounces-jdoe=yahoo.com@bounces.example.com", NULL, "jdoe@yahoo.com"},
        {"postfix", "bounces+jdoe=yahoo.com@bounces.example.com", NULL, "jdoe@yahoo.com"},
        {"dash in user", "bounces-john-doe=example.org@b.example.com", "bounces", "john-doe@example.org"},
        {"prefix mismatch", "other-jdoe=yahoo.com@b.example.com", "bounces", NULL},
        {"domain lower-cased", "bounces-JDoe=Yahoo.COM@b.example.com", NULL, "JDoe@yahoo.com"},
        {"not verp", "postmaster@example.com", NULL, NULL},
        {"srs0 is not verp", "SRS0=HHH=TT=example.org=jdoe@forwarder.example.net", NULL, NULL},
        {"srs1 is not verp", "SRS1=XXX=forwarder.example=HHH=TT=example.org=jdoe@f2.example", NULL, NULL},
        {"no domain after =", "bounces-jdoe=@b.example.com", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_verp_options o = {rows[i].prefix, NULL, 0, NULL};
        bp_test_check_str(rows[i].label, bp_verp_decode(*state, rows[i].input, &o), rows[i].want);
    }
    bp_verp_options custom = {"b", ".", '#', NULL};
    bp_test_check_str("custom separators", bp_verp_decode(*state, "b.jdoe#example.org@bounce.example.com", &custom),
                      "jdoe@example.org");
}

static void test_srs(void **state)
{
    (void)state;
    assert_true(bp_address_is_srs("SRS0=abcd=AB=example.com=user@fwd.example"));
    assert_true(bp_address_is_srs("srs1=x=y==abcd=AB=example.com=user@fwd.example"));
    assert_false(bp_address_is_srs("bounces-user=example.com@b.example"));
}

/* Address cleaning (issue 13 item 13): quotes, "smtp=" and an address type around an address
 * are not part of it; a "#" in the domain part (RFC 3464 leaves the rfc822 value to the MTA,
 * and some write a route or an extension after the domain) does not make it no address. */
static void test_cleaning(void **state)
{
    static const struct {
        const char *label, *input, *want;
    } rows[] = {
        {"single quotes", "'jdoe@example.org'", "jdoe@example.org"},
        {"single quote before", "'jdoe@example.org", "jdoe@example.org"},
        {"quotes and brackets", "\"'<jdoe@example.org>'\"", "jdoe@example.org"},
        {"smtp= prefix", "smtp=jdoe@example.org", "jdoe@example.org"},
        {"SMTP= prefix", "SMTP=jdoe@example.org", "jdoe@example.org"},
        {"smtp: prefix", "smtp:jdoe@example.org", "jdoe@example.org"},
        {"rfc822; without space", "RFC822;jdoe@example.org", "jdoe@example.org"},
        {"rfc822; twice", "rfc822; rfc822;jdoe@example.org", "jdoe@example.org"},
        {"hash after the domain", "rfc822; jdoe@example.org#5.1.1", "jdoe@example.org"},
        {"hash inside the domain", "rfc822; jdoe@mail#1.example.org", "jdoe@mail#1.example.org"},
        {"hash in the local part", "rfc822; j#doe@example.org", "j#doe@example.org"},
        {"apostrophe inside kept", "o'brien@example.org", "o'brien@example.org"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        bp_test_check_str(rows[i].label, bp_address_normalise(*state, rows[i].input), rows[i].want);
    static const struct {
        const char *label, *input, *want;
    } text[] = {
        {"quoted in prose", "delivery to 'jdoe@example.org' failed", "jdoe@example.org"},
        {"smtp= in prose", "recipient smtp=jdoe@example.org rejected", "jdoe@example.org"},
        {"apostrophe inside kept", "mail for o'brien@example.org", "o'brien@example.org"},
    };
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        bp_test_check_str(text[i].label, bp_address_find(*state, text[i].input, strlen(text[i].input), NULL),
                          text[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normalise, bp_test_arena_setup, bp_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_find, bp_test_arena_setup, bp_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_verp, bp_test_arena_setup, bp_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_srs, bp_test_arena_setup, bp_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_cleaning, bp_test_arena_setup, bp_test_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
