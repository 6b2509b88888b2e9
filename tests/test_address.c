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

static int setup(void **state)
{
    *state = bp_arena_new();
    return *state == NULL;
}

static int teardown(void **state)
{
    bp_arena_free(*state);
    return 0;
}

static void check(const char *label, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", label, got ? got : "(null)", want ? want : "(null)");
}

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
        check(rows[i].label, bp_address_normalise(*state, rows[i].input), rows[i].want);
}

static void test_find(void **state)
{
    const char *text = "Delivery to the following recipient failed permanently:\n\n     jdoe@example.net\n";
    size_t end = 0;
    check("find", bp_address_find(*state, text, strlen(text), &end), "jdoe@example.net");
    assert_int_equal(end, strlen(text) - 1);
    check("none", bp_address_find(*state, "no address here @ all", 21, NULL), NULL);
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
        bp_verp_options o = {rows[i].prefix, NULL, 0};
        check(rows[i].label, bp_verp_decode(*state, rows[i].input, &o), rows[i].want);
    }
    bp_verp_options custom = {"b", ".", '#'};
    check("custom separators", bp_verp_decode(*state, "b.jdoe#example.org@bounce.example.com", &custom),
          "jdoe@example.org");
}

static void test_srs(void **state)
{
    (void)state;
    assert_true(bp_address_is_srs("SRS0=abcd=AB=example.com=user@fwd.example"));
    assert_true(bp_address_is_srs("srs1=x=y==abcd=AB=example.com=user@fwd.example"));
    assert_false(bp_address_is_srs("bounces-user=example.com@b.example"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normalise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
