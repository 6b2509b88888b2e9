/*
 * test_verp.c - VERP decoding in every form (PowerMTA "-", Postfix "+", configured prefix
 * and separators, header values), SRS never decoded, and how the classifier uses the
 * decoded address: recipient_from "verp" when the report names nobody, the report's
 * recipient winning (and the disagreement in explain) when both exist, and the report's own
 * Delivered-To / X-Original-To as the place the bounce address is read from.
 * The VERP form as a pattern ([verp] pattern): the presets decode what the prefix and
 * separators decode, and a per-message form that no prefix can describe
 * ("customer1-campaign563-uniq498294-jdoe=example.net@bounces.example.com", the guide's
 * unique return paths) decodes with a pattern of its own; patterns without the named groups
 * are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/address.h"
#include "bouncepipe/classify.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/report.h"
#include "bouncepipe/report_events.h"
#include "test_support.h"
#include "test_util.h"

static void test_forms(void **state)
{
    static const struct {
        const char *label, *input, *prefix, *seps;
        char dsep;
        const char *want;
    } rows[] = {
        {"powermta any prefix", "bounces-jdoe=example.net@bounce.example.com", NULL, NULL, 0, "jdoe@example.net"},
        {"postfix any prefix", "bounces+jdoe=example.net@bounce.example.com", NULL, NULL, 0, "jdoe@example.net"},
        {"powermta with prefix", "bounces-jdoe=example.net@bounce.example.com", "bounces", NULL, 0, "jdoe@example.net"},
        {"postfix with prefix", "bounces+jdoe=example.net@bounce.example.com", "bounces", NULL, 0, "jdoe@example.net"},
        {"prefix is case-insensitive", "BOUNCES-jdoe=example.net@bounce.example.com", "bounces", NULL, 0,
         "jdoe@example.net"},
        {"prefix with a dash", "mail-bounce-jdoe=example.net@b.example.com", "mail-bounce", NULL, 0,
         "jdoe@example.net"},
        {"user with the separator", "bounces-john-doe=example.org@b.example.com", "bounces", NULL, 0,
         "john-doe@example.org"},
        {"user with the domain separator", "bounces-a=b=example.org@b.example.com", "bounces", NULL, 0,
         "a=b@example.org"},
        {"user with plus", "bounces-jdoe+tag=example.org@b.example.com", "bounces", NULL, 0, "jdoe+tag@example.org"},
        {"domain lower-cased, user kept", "bounces-JDoe=Example.NET@b.example.com", NULL, NULL, 0, "JDoe@example.net"},
        {"bracketed header value", "<bounces-jdoe=example.net@b.example.com>", NULL, NULL, 0, "jdoe@example.net"},
        {"display name", "Bounces <bounces+jdoe=example.net@b.example.com>", "bounces", NULL, 0, "jdoe@example.net"},
        {"only dash allowed", "bounces+jdoe=example.net@b.example.com", "bounces", "-", 0, NULL},
        {"custom separators", "b.jdoe#example.org@bounce.example.com", "b", ".", '#', "jdoe@example.org"},
        {"prefix mismatch", "other-jdoe=example.net@b.example.com", "bounces", NULL, 0, NULL},
        {"prefix without separator", "bouncesjdoe=example.net@b.example.com", "bounces", NULL, 0, NULL},
        {"plain address", "postmaster@example.com", NULL, NULL, 0, NULL},
        {"no domain separator", "bounces-jdoe@b.example.com", NULL, NULL, 0, NULL},
        {"empty domain", "bounces-jdoe=@b.example.com", NULL, NULL, 0, NULL},
        {"empty user", "bounces-=example.net@b.example.com", NULL, NULL, 0, NULL},
        {"domain without a dot", "bounces-jdoe=localhost@b.example.com", NULL, NULL, 0, NULL},
        {"no host", "bounces-jdoe=example.net", NULL, NULL, 0, NULL},
        {"srs0", "SRS0=HHH=TT=example.org=jdoe@forwarder.example.net", NULL, NULL, 0, NULL},
        {"srs1", "SRS1=XXX=forwarder.example=HHH=TT=example.org=jdoe@f2.example", NULL, NULL, 0, NULL},
        {"srs0 lower case", "srs0=HHH=TT=example.org=jdoe@forwarder.example.net", NULL, NULL, 0, NULL},
        {"srs0 with plus", "SRS0+HHH=TT=example.org=jdoe@forwarder.example.net", NULL, NULL, 0, NULL},
        {"srs behind a prefix", "bounces+SRS0=HHH=TT=example.org=jdoe@fwd.example.net", "bounces", NULL, 0, NULL},
        {"null", NULL, NULL, NULL, 0, NULL},
        /* without a prefix: after the list server's bounce word, not at the first hyphen */
        {"mailman, list name with a dash", "my-list-bounces+jdoe=example.net@lists.example.com", NULL, NULL, 0,
         "jdoe@example.net"},
        {"ezmlm message number", "my-list-return-1234-jdoe=example.net@lists.example.com", NULL, NULL, 0,
         "jdoe@example.net"},
        {"mlmmj", "announce+bounces-17-jo-doe=example.net@lists.example.com", NULL, NULL, 0, "jo-doe@example.net"},
        {"bounce word, user with a dash", "news-bounce-mary-ann=example.org@b.example.com", NULL, NULL, 0,
         "mary-ann@example.org"},
        {"user named like the word", "bounces-return=example.org@b.example.com", NULL, NULL, 0, "return@example.org"},
        {"word inside a segment is no word", "nobounces-jdoe=example.org@b.example.com", NULL, NULL, 0,
         "jdoe@example.org"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_verp_options o = {rows[i].prefix, rows[i].seps, rows[i].dsep, NULL};
        bp_test_check_str(rows[i].label, bp_verp_decode(*state, rows[i].input, &o), rows[i].want);
    }
    bp_test_check_str("null options", bp_verp_decode(*state, "bounces-jdoe=example.net@b.example.com", NULL),
                      "jdoe@example.net");
}

static void test_srs_detection(void **state)
{
    (void)state;
    assert_true(bp_address_is_srs("SRS0=abcd=AB=example.com=user@fwd.example"));
    assert_true(bp_address_is_srs("SRS1=x=fwd.example==abcd=AB=example.com=user@f2.example"));
    assert_true(bp_address_is_srs("srs0-abcd=AB=example.com=user@fwd.example"));
    assert_false(bp_address_is_srs("bounces-user=example.com@b.example"));
    assert_false(bp_address_is_srs("SRS2=abcd@fwd.example"));
    assert_false(bp_address_is_srs(NULL));
}

/* What classify() found: the events, their explanations and how many there are (>= 1). */
typedef struct classified {
    bp_event *ev;
    bp_explain *ex;
    size_t n;
} classified;

/* Parse @p msg and classify it with @p rcpt as the envelope recipient. */
static classified classify(bp_arena *arena, const char *msg, const char *rcpt, const bp_verp_options *verp)
{
    classified c = {NULL, NULL, 0};
    bp_report *r = bp_arena_alloc(arena, sizeof(*r));
    assert_non_null(r);
    bp_test_parse_str(arena, msg, r);
    bp_classify_ctx ctx = {0};
    ctx.envelope_rcpt = rcpt;
    ctx.verp = verp;
    ctx.explain = 1;
    assert_int_equal(bp_classify(&ctx, r, arena, &c.ev, &c.n, &c.ex), BP_OK);
    assert_true(c.n >= 1);
    return c;
}

/* A bounce that names no recipient: only a status code in its text. */
static const char no_recipient_bounce[] = "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n"
                                          "To: bounces-jdoe=example.org@bounce.example.com\n"
                                          "Subject: Undelivered Mail\n"
                                          "Message-ID: <nr1@mx.example.net>\n"
                                          "\n"
                                          "Your message could not be delivered.\n"
                                          "The remote server said: 550 5.1.1 mailbox unavailable\n";

static void test_verp_names_the_recipient(void **state)
{
    classified c = classify(*state, no_recipient_bounce, "bounces-jdoe=example.org@bounce.example.com", NULL);
    assert_int_equal(c.n, 1);
    bp_test_check_str("recipient", c.ev[0].recipient, "jdoe@example.org");
    bp_test_check_str("recipient_from", c.ev[0].recipient_from, "verp");
    bp_test_check_str("explain verp", c.ex[0].verp_address, "jdoe@example.org");
    assert_false(c.ex[0].verp_disagrees);
}

static void test_srs_rcpt_names_nobody(void **state)
{
    classified c = classify(*state, no_recipient_bounce, "SRS0=HHH=TT=example.org=jdoe@fwd.example.net", NULL);
    bp_test_check_str("recipient", c.ev[0].recipient, NULL);
    bp_test_check_str("explain verp", c.ex[0].verp_address, NULL);
}

/* A report that attaches no original: its own To: (the bounce address) still names the
 * recipient when there is no --rcpt. */
static void test_report_headers_without_original(void **state)
{
    classified c = classify(*state, no_recipient_bounce, NULL, NULL);
    assert_int_equal(c.n, 1);
    bp_test_check_str("recipient", c.ev[0].recipient, "jdoe@example.org");
    bp_test_check_str("recipient_from", c.ev[0].recipient_from, "verp");
}

static const char qmail_bounce[] = "From: MAILER-DAEMON@mx.example.net\n"
                                   "To: bounces-jdoe=example.org@bounce.example.com\n"
                                   "Subject: failure notice\n"
                                   "Message-ID: <q1@mx.example.net>\n"
                                   "\n"
                                   "Hi. This is the qmail-send program at mx.example.net.\n"
                                   "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
                                   "This is a permanent error; I've given up. Sorry it didn't work out.\n"
                                   "\n"
                                   "<other@example.org>:\n"
                                   "192.0.2.7 does not like recipient.\n"
                                   "Remote host said: 550 5.1.1 <other@example.org>... User unknown\n"
                                   "Giving up on 192.0.2.7.\n"
                                   "\n"
                                   "--- Below this line is a copy of the message.\n"
                                   "\n"
                                   "From: sender@example.com\n"
                                   "To: jdoe@example.org\n";

static void test_report_wins_and_explain_shows_it(void **state)
{
    bp_verp_options o = {"bounces", NULL, 0, NULL};
    classified c = classify(*state, qmail_bounce, "bounces-jdoe=example.org@bounce.example.com", &o);
    assert_int_equal(c.n, 1);
    bp_test_check_str("recipient", c.ev[0].recipient, "other@example.org");
    bp_test_check_str("recipient_from", c.ev[0].recipient_from, "body");
    bp_test_check_str("explain verp", c.ex[0].verp_address, "jdoe@example.org");
    assert_true(c.ex[0].verp_disagrees);
}

/* No --rcpt: the bounce address is read from the report's Delivered-To. */
static const char delivered_to_bounce[] = "Delivered-To: bounces+jdoe=example.org@bounce.example.com\n"
                                          "From: MAILER-DAEMON@mx.example.net\n"
                                          "To: list-owner@example.com\n"
                                          "Subject: Undelivered Mail\n"
                                          "Message-ID: <d1@mx.example.net>\n"
                                          "MIME-Version: 1.0\n"
                                          "Content-Type: multipart/mixed; boundary=\"b1\"\n"
                                          "\n"
                                          "--b1\n"
                                          "Content-Type: text/plain\n"
                                          "\n"
                                          "Delivery failed: 550 5.1.1 mailbox unavailable\n"
                                          "--b1\n"
                                          "Content-Type: message/rfc822\n"
                                          "\n"
                                          "From: news@example.com\n"
                                          "To: someone@example.org\n"
                                          "Subject: news\n"
                                          "\n"
                                          "hello\n"
                                          "--b1--\n";

static void test_delivered_to_carries_the_bounce_address(void **state)
{
    bp_verp_options o = {"bounces", NULL, 0, NULL};
    classified c = classify(*state, delivered_to_bounce, NULL, &o);
    assert_int_equal(c.n, 1);
    bp_test_check_str("recipient", c.ev[0].recipient, "jdoe@example.org");
    bp_test_check_str("recipient_from", c.ev[0].recipient_from, "verp");
    /* with a prefix that does not match, nothing is decoded: the returned original's one
     * recipient (its To:) names it - the VERP address won over it above */
    bp_verp_options other = {"returns", NULL, 0, NULL};
    c = classify(*state, delivered_to_bounce, NULL, &other);
    bp_test_check_str("other prefix", c.ev[0].recipient, "someone@example.org");
    bp_test_check_str("other prefix: from", c.ev[0].recipient_from, "header");
    assert_false(c.ex[0].verp_disagrees);
}

/* Compile the VERP form @p form (a preset or a pattern) with @p prefix. */
static bp_regex *pattern_of(bp_arena *arena, const char *form, const char *prefix)
{
    char err[300] = "";
    const char *text = bp_verp_pattern_text(arena, form, prefix, '\0');
    assert_non_null(text);
    bp_regex *re = bp_verp_pattern_compile(text, err, sizeof(err));
    if (re == NULL)
        fail_msg("%s: %s (%s)", form, err, text);
    return re;
}

/* Every row of test_forms that has no custom separators decodes alike with the preset that
 * names its separators: the presets are today's forms. */
static void test_presets_agree(void **state)
{
    static const char *const inputs[] = {
        "bounces-jdoe=example.net@bounce.example.com",
        "bounces+jdoe=example.net@bounce.example.com",
        "BOUNCES-jdoe=example.net@bounce.example.com",
        "mail-bounce-jdoe=example.net@b.example.com",
        "bounces-john-doe=example.org@b.example.com",
        "bounces-a=b=example.org@b.example.com",
        "bounces-jdoe+tag=example.org@b.example.com",
        "bounces-JDoe=Example.NET@b.example.com",
        "<bounces-jdoe=example.net@b.example.com>",
        "other-jdoe=example.net@b.example.com",
        "bouncesjdoe=example.net@b.example.com",
        "postmaster@example.com",
        "bounces-jdoe@b.example.com",
        "bounces-jdoe=@b.example.com",
        "bounces-=example.net@b.example.com",
        "bounces-jdoe=localhost@b.example.com",
        "bounces-jdoe=example.net",
        "SRS0=HHH=TT=example.org=jdoe@forwarder.example.net",
        "bounces+SRS0=HHH=TT=example.org=jdoe@fwd.example.net",
        "my-list-bounces+jdoe=example.net@lists.example.com",
        "my-list-return-1234-jdoe=example.net@lists.example.com",
        "announce+bounces-17-jo-doe=example.net@lists.example.com",
        "news-bounce-mary-ann=example.org@b.example.com",
        "bounces-return=example.org@b.example.com",
        "nobounces-jdoe=example.org@b.example.com",
    };
    static const struct {
        const char *preset, *seps;
    } presets[] = {{"any", NULL}, {"powermta", "-"}, {"postfix", "+"}};
    static const char *const prefixes[] = {NULL, "bounces", "mail-bounce"};
    for (size_t p = 0; p < sizeof(presets) / sizeof(presets[0]); p++) {
        for (size_t x = 0; x < sizeof(prefixes) / sizeof(prefixes[0]); x++) {
            bp_regex *re = pattern_of(*state, presets[p].preset, prefixes[x]);
            bp_verp_options by_pattern = {NULL, NULL, 0, re};
            bp_verp_options by_prefix = {prefixes[x], presets[p].seps, 0, NULL};
            for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
                char label[256];
                snprintf(label, sizeof(label), "%s prefix=%s %s", presets[p].preset,
                         prefixes[x] != NULL ? prefixes[x] : "(any)", inputs[i]);
                bp_test_check_str(label, bp_verp_decode(*state, inputs[i], &by_pattern),
                                  bp_verp_decode(*state, inputs[i], &by_prefix));
            }
            bp_regex_free(re);
        }
    }
}

/* The guide's per-message return path: no prefix decodes it (an empty prefix takes the
 * campaign and uniq parts for the user), a pattern does. */
static void test_per_message_pattern(void **state)
{
    const char *addr = "customer1-campaign563-uniq498294-jdoe=example.net@bounces.example.com";
    bp_test_check_str("no prefix", bp_verp_decode(*state, addr, NULL), "campaign563-uniq498294-jdoe@example.net");
    bp_regex *re = pattern_of(
        *state, "^customer\\d+-campaign\\d+-uniq\\d+-(?<local>.+)=(?<domain>[^=@]+)@bounces\\.example\\.com$", NULL);
    bp_verp_options o = {NULL, NULL, 0, re};
    assert_true(bp_verp_explicit(&o));
    bp_test_check_str("pattern", bp_verp_decode(*state, addr, &o), "jdoe@example.net");
    bp_test_check_str("header value",
                      bp_verp_decode(*state, "<Customer7-Campaign1-Uniq2-J.Roe=Example.ORG@bounces.example.com>", &o),
                      "J.Roe@example.org");
    bp_test_check_str("other host",
                      bp_verp_decode(*state, "customer1-campaign563-uniq498294-jdoe=example.net@x.example.com", &o),
                      NULL);
    bp_test_check_str("plain VERP is not this form",
                      bp_verp_decode(*state, "bounces-jdoe=example.net@bounces.example.com", &o), NULL);
    bp_test_check_str(
        "srs never",
        bp_verp_decode(*state, "customer1-campaign1-uniq1-SRS0=HH=TT=example.org=j@bounces.example.com", &o), NULL);
    /* through the classifier: the bounce names nobody, the envelope does */
    classified c = classify(*state, no_recipient_bounce, addr, &o);
    bp_test_check_str("classified recipient", c.ev[0].recipient, "jdoe@example.net");
    bp_regex_free(re);

    /* a pattern must name both groups and compile */
    char err[300] = "";
    assert_null(bp_verp_pattern_compile("^(?<local>.+)@", err, sizeof(err)));
    assert_non_null(strstr(err, "domain"));
    assert_null(bp_verp_pattern_compile("^(?<local>.+", err, sizeof(err)));
    assert_non_null(strstr(err, "compile"));
}

BP_TEST_MAIN(BP_ARENA_TEST(test_forms), BP_ARENA_TEST(test_srs_detection), BP_ARENA_TEST(test_verp_names_the_recipient),
             BP_ARENA_TEST(test_srs_rcpt_names_nobody), BP_ARENA_TEST(test_report_headers_without_original),
             BP_ARENA_TEST(test_report_wins_and_explain_shows_it),
             BP_ARENA_TEST(test_delivered_to_carries_the_bounce_address), BP_ARENA_TEST(test_presets_agree),
             BP_ARENA_TEST(test_per_message_pattern))
