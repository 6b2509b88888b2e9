/*
 * test_address.c - address normalisation, extraction from text, VERP and SRS; validation
 * (bp_address_check(): what is an address, and why not) and an operator's exact address
 * (bp_address_parse()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/address.h"
#include "test_support.h"

/* The functions under test as string functions of an arena (bp_test_str_cases()). */
static const char *normalise(void *arena, const char *input)
{
    return bp_address_normalise(arena, input);
}

static const char *find(void *arena, const char *input)
{
    return bp_address_find(arena, input, strlen(input), NULL);
}

/* bp_address_parse(); a rejection must say why. */
static const char *parse(void *arena, const char *input)
{
    const char *why = NULL;
    const char *got = bp_address_parse(arena, input, &why);
    if (got == NULL && why == NULL)
        fail_msg("%s: rejected without a reason", input);
    return got;
}

static const bp_test_str_case normalise_rows[] = {
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

static void test_normalise(void **state)
{
    BP_TEST_STR_CASES(normalise_rows, normalise, *state);
}

/* bp_address_find() in free text: the address between the delimiters real reports write
 * around one, and no address at all where the scan from an '@' stopped inside something else
 * (an escape sequence, a control character, another '@', a quoted pair): what it read there
 * is a fragment, and a fragment is a different address - "ops\x1b[8m@example.com" must not
 * become "8m@example.com" (a good address is never suppressed). */
static const bp_test_str_case find_rows[] = {
    /* delimiters an address stands between */
    {"angle brackets", "<user@example.com>", "user@example.com"},
    {"double quotes", "\"user@example.com\"", "user@example.com"},
    {"single quotes", "'user@example.com'", "user@example.com"},
    {"rcpt to", "RCPT TO:<user@example.com>", "user@example.com"},
    {"colon after", "user@example.com: user unknown", "user@example.com"},
    {"parentheses", "(user@example.com)", "user@example.com"},
    {"mailto", "mailto:user@example.com", "user@example.com"},
    {"header list", "To: user@example.com, other@example.net", "user@example.com"},
    {"semicolon", "rfc822;user@example.com;", "user@example.com"},
    {"sentence end", "Mail to user@example.com.", "user@example.com"},
    {"square brackets", "550 5.4.1 [user@example.com]: Recipient address rejected", "user@example.com"},
    {"exim field", "T=[user@example.com]", "user@example.com"},
    {"html entities", "&lt;user@example.com&gt;", "user@example.com"},
    {"json escapes", "{\\\"emailAddress\\\":\\\"user@example.com\\\"}", "user@example.com"},
    {"tab and crlf", "\tuser@example.com\r\n", "user@example.com"},
    {"exclamation", "Hello, user@example.com!", "user@example.com"},
    {"query", "mailto:user@example.com?subject=unsubscribe", "user@example.com"},
    {"display name", "Jane Doe <user@example.com>", "user@example.com"},
    {"start and end of text", "user@example.com", "user@example.com"},
    /* fragments: the scan stopped inside something else */
    {"escape sequence in the local part", "ops\x1b[8m@example.com", NULL},
    {"colour with parameters", "ops\x1b[1;31muser@example.com", NULL},
    {"escape sequence before the address", "\x1b[31muser@example.com", NULL},
    {"charset designation", "\x1b(Buser@example.com", NULL},
    {"bare escape", "ops\x1buser@example.com", NULL},
    {"escape before a bracket", "\x1b>user@example.com", NULL},
    {"c1 csi with parameters",
     "ops\xc2\x9b"
     "1;31muser@example.com",
     NULL},
    {"bell in the local part", "ops\x07user@example.com", NULL},
    {"other c0 in the local part", "ops\x01user@example.com", NULL},
    {"del in the local part", "ops\x7fuser@example.com", NULL},
    {"backslash before the local part", "\\u003cuser@example.com\\u003e", NULL},
    {"another @ before", "a@b@example.com", NULL},
    {"escape in the domain", "user@mail.exa\x1bmple.com", NULL},
    {"bell in the domain", "user@mail.exa\x07mple.com", NULL},
    {"del in the domain", "user@mail.exa\x7fmple.com", NULL},
    {"escape after the domain", "user@example.com\x1b[0m", NULL},
    {"another @ after", "user@example.com@evil.example", NULL},
    {"a fragment, then an address", "ops\x1b[8m@example.com for jdoe@example.net", "jdoe@example.net"},
    /* a C1 CSI in UTF-8 or as a raw byte is part of the local part: the candidate is kept
     * whole (bp_address_check() then rejects it), never shortened */
    {"c1 csi kept whole",
     "ops\xc2\x9b"
     "8m@example.com",
     "ops\xc2\x9b"
     "8m@example.com"},
    {"raw c1 byte kept whole",
     "ops\x9b"
     "8m@example.com",
     "ops\x9b"
     "8m@example.com"},
    {"utf-8 letter ending in 0x9b before a bracket", "Kan\xc4\x9b<user@example.com>", "user@example.com"},
    /* the quotation marks, brackets and spaces of other scripts delimit as their ASCII kin */
    {"curly double quotes", "\xe2\x80\x9cuser@example.com\xe2\x80\x9d", "user@example.com"},
    {"curly single quotes", "\xe2\x80\x98user@example.com\xe2\x80\x99", "user@example.com"},
    {"low-9 and high-reversed-9 quotes", "\xe2\x80\x9euser@example.com\xe2\x80\x9f", "user@example.com"},
    {"guillemets", "\xc2\xabuser@example.com\xc2\xbb", "user@example.com"},
    {"corner brackets", "\xe3\x80\x8cuser@example.com\xe3\x80\x8d", "user@example.com"},
    {"lenticular brackets", "\xe3\x80\x90user@example.com\xe3\x80\x91", "user@example.com"},
    {"fullwidth parentheses", "\xef\xbc\x88user@example.com\xef\xbc\x89", "user@example.com"},
    {"no-break spaces",
     "To:\xc2\xa0user@example.com\xc2\xa0"
     "failed",
     "user@example.com"},
    {"ideographic space", "\xe5\xae\x9b\xe5\x85\x88\xe3\x80\x80user@example.com", "user@example.com"},
    {"ideographic full stop after the domain", "user@example.com\xe3\x80\x82", "user@example.com"},
    {"ideographic comma after the domain", "user@example.com\xe3\x80\x81other", "user@example.com"},
    {"japanese text glued before", "\xe5\xae\x9b\xe5\x85\x88user@example.com",
     "\xe5\xae\x9b\xe5\x85\x88user@example.com"},
    {"utf-8 local part and domain kept", "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
     "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a"},
    {"idn domain kept",
     "j\xc3\xb6rg@b\xc3\xbc"
     "cher.de",
     "j\xc3\xb6rg@b\xc3\xbc"
     "cher.de"},
    {"bidi override kept whole", "x\xe2\x80\xaemoc@example.com", "x\xe2\x80\xaemoc@example.com"},
};

static void test_find(void **state)
{
    BP_TEST_STR_CASES(find_rows, find, *state);
    assert_non_null(bp_address_check("ops\xc2\x9b"
                                     "8m@example.com"));
    static const char nul[] = "ops\0user@example.com";
    bp_test_check_str("nul in the local part", bp_address_find(*state, nul, sizeof(nul) - 1, NULL), NULL);
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

/* bp_address_check(): valid addresses pass; everything else is rejected with a reason that
 * says what is wrong (issue 19 item 2: recipients with raw 8-bit bytes, controls, bidi
 * overrides and line breaks reached every output). */
static void test_check(void **state)
{
    (void)state;
    static const struct {
        const char *label, *address, *why; /* why: a word of the reason, NULL when valid */
    } rows[] = {
        {"plain", "jdoe@example.com", NULL},
        {"atext", "a.b+c!#$%&'*/=?^_`{|}~-@example.co.uk", NULL},
        {"upper-case domain", "jdoe@Example.COM", NULL},
        {"utf-8 local part", "用户@example.com", NULL},
        {"idn domain", "jörg@bücher.de", NULL},
        {"idn everything", "用户@例子.广告", NULL},
        {"a-label", "jdoe@xn--bcher-kva.de", NULL},
        {"japanese carrier dots", "a..b.@docomo.ne.jp", NULL},
        {"underscore in a label", "jdoe@mail_1.example.com", NULL},
        {"ipv4 literal", "user@[192.0.2.1]", NULL},
        {"ipv6 literal", "user@[IPv6:2001:db8::1]", NULL},
        {"latin-1 byte", "j\xf6rg@example.de", "UTF-8"},
        {"cut utf-8", "j\xc3@example.de", "UTF-8"},
        {"overlong utf-8", "\xc0\xafroot@example.com", "UTF-8"},
        {"escape in local part", "a\x1b[8m@example.com", "control"},
        {"c1 control",
         "a\xc2\x9b"
         "8m@example.com",
         "control"},
        {"bidi override", "x\xe2\x80\xaemoc@example.com", "format"},
        {"zero-width joiner",
         "a\xe2\x80\x8d"
         "b@example.com",
         "format"},
        {"no-break space",
         "a\xc2\xa0"
         "b@example.com",
         "space"},
        {"space", "foo' OR 1=1 --@evil.example", "white space"},
        {"line break", "a\nb@example.com", "control"},
        {"quote", "\"a b\"@example.com", "unquoted"},
        {"leading dot", ".a@example.com", "dot"},
        {"two @", "a@b@example.com", "domain"},
        {"no @", "example.com", "@"},
        {"empty local", "@example.com", "empty"},
        {"no dot in domain", "user@localhost", "dot"},
        {"empty label", "user@example..com", "label"},
        {"hyphen at a label's end", "user@example-.com", "'-'"},
        {"long label", "user@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", "63"},
        {"bidi in domain",
         "user@ex\xe2\x80\xae"
         "ample.com",
         "format"},
        {"control in domain",
         "user@ex\x07"
         "ample.com",
         "control"},
        {"bad a-label", "user@xn--zz.com", "Punycode"},
        {"literal with a line break", "x@[\nvictim@gmail.com\n]", "literal"},
        {"literal, not an address", "x@[not an ip]", "literal"},
        {"general literal", "x@[tag:content]", "literal"},
        {"unclosed literal", "x@[192.0.2.1", "literal"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *why = bp_address_check(rows[i].address);
        if (rows[i].why == NULL && why != NULL)
            fail_msg("%s: rejected: %s", rows[i].label, why);
        if (rows[i].why != NULL && (why == NULL || strstr(why, rows[i].why) == NULL))
            fail_msg("%s: got %s, want a reason naming '%s'", rows[i].label, why != NULL ? why : "valid", rows[i].why);
    }
    char long_address[400];
    memset(long_address, 'a', sizeof(long_address));
    memcpy(long_address + sizeof(long_address) - 13, "@example.com", 13);
    assert_non_null(bp_address_check(long_address));
    assert_non_null(bp_address_check(NULL));
}

static const bp_test_str_case parse_rows[] = {
    {"plain", "jdoe@example.com", "jdoe@example.com"},
    {"domain lower-cased", "JDoe@Example.COM", "JDoe@example.com"},
    {"white space around", "  jdoe@example.com \n", "jdoe@example.com"},
    {"angle brackets", "<jdoe@example.com>", "jdoe@example.com"},
    {"root dot", "jdoe@example.com.", "jdoe@example.com"},
    {"idn", "jörg@Bücher.de", "jörg@bücher.de"},
    {"sql in free text", "foo' OR 1=1 --@evil.example", NULL},
    {"display name", "Jane Doe <jdoe@example.com>", NULL},
    {"rfc822 prefix", "rfc822; jdoe@example.com", NULL},
    {"two addresses", "a@example.com b@example.com", NULL},
    {"latin-1", "j\xf6rg@example.de", NULL},
    {"escape", "jdoe\x1b[8m@example.com", NULL},
    {"empty", "   ", NULL},
    {"no @", "jdoe", NULL},
};

/* bp_address_parse(): an operator's address is taken exactly, never rewritten into the
 * address found inside it. */
static void test_parse(void **state)
{
    BP_TEST_STR_CASES(parse_rows, parse, *state);
}

static void test_srs(void **state)
{
    (void)state;
    assert_true(bp_address_is_srs("SRS0=abcd=AB=example.com=user@fwd.example"));
    assert_true(bp_address_is_srs("srs1=x=y==abcd=AB=example.com=user@fwd.example"));
    assert_false(bp_address_is_srs("bounces-user=example.com@b.example"));
}

static const bp_test_str_case cleaning_rows[] = {
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

static const bp_test_str_case cleaning_text_rows[] = {
    {"quoted in prose", "delivery to 'jdoe@example.org' failed", "jdoe@example.org"},
    {"smtp= in prose", "recipient smtp=jdoe@example.org rejected", "jdoe@example.org"},
    {"apostrophe inside kept", "mail for o'brien@example.org", "o'brien@example.org"},
};

/* Address cleaning (issue 13 item 13): quotes, "smtp=" and an address type around an address
 * are not part of it; a "#" in the domain part (RFC 3464 leaves the rfc822 value to the MTA,
 * and some write a route or an extension after the domain) does not make it no address. */
static void test_cleaning(void **state)
{
    BP_TEST_STR_CASES(cleaning_rows, normalise, *state);
    BP_TEST_STR_CASES(cleaning_text_rows, find, *state);
}

BP_TEST_MAIN(BP_ARENA_TEST(test_normalise), BP_ARENA_TEST(test_find), BP_ARENA_TEST(test_verp), BP_ARENA_TEST(test_srs),
             BP_ARENA_TEST(test_cleaning), BP_ARENA_TEST(test_check), BP_ARENA_TEST(test_parse))
