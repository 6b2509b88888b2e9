/*
 * test_arf.c - complaints: RFC 5965 ARF, RFC 6591 auth-failure reports, Microsoft JMRP,
 * redacted recipients and the recipient order (src/report/arf.c, src/report/jmrp.c), through
 * bp_mime_parse() + bp_report_parse().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/mime.h"
#include "bouncepipe/report.h"
#include "test_support.h"
#include "test_util.h"

/* An ARF with @fields in its feedback-report part and @orig_headers as the original. */
static bp_status parse_arf(bp_arena *arena, const char *fields, const char *orig_type, const char *orig_headers,
                           const bp_report_options *opts, bp_report *r)
{
    char *msg = bp_arena_printf(arena,
                                "From: feedback@fbl.example.net\n"
                                "To: fbl@example.com\n"
                                "Subject: Email Feedback Report for IP 192.0.2.10\n"
                                "Message-ID: <arf.1@fbl.example.net>\n"
                                "MIME-Version: 1.0\n"
                                "Content-Type: multipart/report; report-type=feedback-report; boundary=\"fb\"\n"
                                "\n"
                                "--fb\n"
                                "Content-Type: text/plain\n"
                                "\n"
                                "This is an email abuse report.\n"
                                "\n"
                                "--fb\n"
                                "Content-Type: message/feedback-report\n"
                                "\n"
                                "%s\n"
                                "--fb\n"
                                "Content-Type: %s\n"
                                "\n"
                                "%s\n"
                                "Hello.\n"
                                "\n"
                                "--fb--\n",
                                fields, orig_type, orig_headers);
    return msg != NULL ? bp_test_parse_report(arena, msg, strlen(msg), opts, r) : BP_ERR_NOMEM;
}

#define ORIG(to, extra) "From: news@example.com\nTo: " to "\nSubject: News\nMessage-ID: <orig.7@example.com>\n" extra

static void test_feedback_types(void **state)
{
    static const struct {
        const char *value, *want; /* the value names the case */
    } rows[] = {
        {"abuse", "abuse"},
        {"fraud", "fraud"},
        {"virus", "virus"},
        {"other", "other"},
        {"not-spam", "not-spam"},
        {"auth-failure", "auth-failure"},
        {"opt-out", "opt-out"},
        {"optout", "opt-out"}, /* other spellings */
        {"unsubscribe", "opt-out"},
        {"Abuse", "abuse"},         /* upper case */
        {"complaint-ish", "other"}, /* an unknown token */
        {"abuse; user clicked spam", "abuse"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        char *fields =
            bp_arena_printf(*state, "Feedback-Type: %s\nVersion: 1\nOriginal-Rcpt-To: u@example.org\n", rows[i].value);
        bp_report r;
        if (parse_arf(*state, fields, "message/rfc822", ORIG("u@example.org", ""), NULL, &r) != BP_OK)
            fail_msg("%s: parse failed", rows[i].value);
        if (r.kind != BP_REPORT_FEEDBACK)
            fail_msg("%s: kind got %s, want feedback", rows[i].value, bp_report_kind_name(r.kind));
        bp_test_check_field(rows[i].value, "feedback_type", r.feedback_type, rows[i].want);
    }
}

/* Where the complaining recipient comes from, in DESIGN.md's order. */
static void test_recipient_order(void **state)
{
    static const char *const x_rcpt[] = {"X-Rcpt", NULL};
    static const bp_report_options with_x_rcpt = {x_rcpt, NULL};
    static const struct {
        const char *label;
        const char *fields;
        const char *orig_type;
        const char *orig;
        const bp_report_options *opts;
        const char *recipient;
        const char *recipient_from;
    } rows[] = {
        {"Original-Rcpt-To first", "Feedback-Type: abuse\nOriginal-Rcpt-To: <hiro@Yahoo.Example.COM>\n",
         "message/rfc822", ORIG("other@example.org", "X-HmXmrOriginalRecipient: x@example.org\n"), NULL,
         "hiro@yahoo.example.com", "original-rcpt-to"},
        {"then X-HmXmrOriginalRecipient", "Feedback-Type: abuse\n", "message/rfc822",
         ORIG("to@example.org", "X-HmXmrOriginalRecipient: <emma@outlook.example.com>\n"), NULL,
         "emma@outlook.example.com", "x-hmxmroriginalrecipient"},
        {"then a configured header", "Feedback-Type: abuse\n", "message/rfc822",
         ORIG("to@example.org", "X-Rcpt: ayumi@aol.example.net\n"), &with_x_rcpt, "ayumi@aol.example.net", "header"},
        {"then To of a single-recipient original", "Feedback-Type: abuse\n", "message/rfc822",
         ORIG("\"Gary\" <gary@comcast.example.net>", ""), NULL, "gary@comcast.example.net", "header"},
        {"To of a many-recipient original is not used", "Feedback-Type: abuse\n", "message/rfc822",
         ORIG("a@example.org, b@example.org", ""), NULL, NULL, NULL},
        {"headers-only original", "Feedback-Type: abuse\n", "text/rfc822-headers", ORIG("olga@mail.example.ru", ""),
         NULL, "olga@mail.example.ru", "header"},
        {"redacted Original-Rcpt-To", "Feedback-Type: abuse\nOriginal-Rcpt-To: redacted@aol.example.net\n",
         "message/rfc822", ORIG("redacted@aol.example.net", "X-Rcpt: ayumi@aol.example.net\n"), NULL, NULL, NULL},
        {"redacted, X-Rcpt configured", "Feedback-Type: abuse\nOriginal-Rcpt-To: redacted@aol.example.net\n",
         "message/rfc822", ORIG("redacted@aol.example.net", "X-Rcpt: ayumi@aol.example.net\n"), &with_x_rcpt,
         "ayumi@aol.example.net", "header"},
        {"x-redacted", "Feedback-Type: abuse\nOriginal-Rcpt-To: xxxxxxxx@mail.example.jp\n", "text/rfc822-headers",
         ORIG("xxxxxxxx@mail.example.jp", ""), NULL, NULL, NULL},
        {"star-redacted", "Feedback-Type: abuse\nOriginal-Rcpt-To: ****@mail.example.jp\n", "text/rfc822-headers",
         ORIG("****@mail.example.jp", ""), NULL, NULL, NULL},
        {"opt-out Removal-Recipient", "Feedback-Type: opt-out\nRemoval-Recipient: user@example.com\n",
         "text/rfc822-header", ORIG("<Undisclosed Recipients>", ""), NULL, "user@example.com", "original-rcpt-to"},
        {"x in a real name is not redaction", "Feedback-Type: abuse\nOriginal-Rcpt-To: xavier@example.org\n",
         "message/rfc822", ORIG("xavier@example.org", ""), NULL, "xavier@example.org", "original-rcpt-to"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        bp_report r;
        if (parse_arf(*state, rows[i].fields, rows[i].orig_type, rows[i].orig, rows[i].opts, &r) != BP_OK)
            fail_msg("%s: parse failed", rows[i].label);
        if (r.kind != BP_REPORT_FEEDBACK)
            fail_msg("%s: kind got %s, want feedback", rows[i].label, bp_report_kind_name(r.kind));
        if (r.n_blocks != 1)
            fail_msg("%s: blocks got %zu, want 1 (a complaint always yields one)", rows[i].label, r.n_blocks);
        bp_test_check_field(rows[i].label, "recipient", r.blocks[0].recipient, rows[i].recipient);
        bp_test_check_field(rows[i].label, "recipient_from", bp_rcpt_source_name(r.blocks[0].recipient_from),
                            rows[i].recipient_from);
        bp_test_check_field(rows[i].label, "original_message_id", r.original_message_id, "<orig.7@example.com>");
    }
}

static void test_arf_fields(void **state)
{
    bp_report r;
    assert_int_equal(parse_arf(*state,
                               "Feedback-Type: auth-failure\nUser-Agent: ReceiverFilter/2.4\nVersion: 1\n"
                               "Original-Mail-From: <bounces@bounces.example.com>\n"
                               "Original-Rcpt-To: <tomo@receiver.example.org>\n"
                               "Arrival-Date: Tue, 10 Mar 2026 09:19:58 +0000\nSource-IP: 192.0.2.99\n"
                               "Reported-Domain: example.com\nReporting-MTA: dns; mx.receiver.example.org\n"
                               "Auth-Failure: signature\nDKIM-Domain: example.com\n",
                               "text/rfc822-headers", ORIG("tomo@receiver.example.org", ""), NULL, &r),
                     BP_OK);
    bp_test_check_field("fields", "family", r.family, "arf");
    bp_test_check_field("fields", "feedback_type", r.feedback_type, "auth-failure");
    bp_test_check_field("fields", "original_mail_from", r.original_mail_from, "bounces@bounces.example.com");
    bp_test_check_field("fields", "source_ip", r.source_ip, "192.0.2.99");
    bp_test_check_field("fields", "reported_domain", r.reported_domain, "example.com");
    bp_test_check_field("fields", "user_agent", r.user_agent, "ReceiverFilter/2.4");
    bp_test_check_field("fields", "arrival_date", r.arrival_date, "Tue, 10 Mar 2026 09:19:58 +0000");
    bp_test_check_field("fields", "reporting_mta", r.reporting_mta, "mx.receiver.example.org");
    bp_test_check_field("fields", "message_id", r.message_id, "<arf.1@fbl.example.net>");
}

/* Yahoo's Received-Date stands in for Arrival-Date; two Original-Rcpt-To give two blocks. */
static void test_received_date_and_two_recipients(void **state)
{
    bp_report r;
    assert_int_equal(parse_arf(*state,
                               "Feedback-Type: abuse\nReceived-Date: Tue, 10 Mar 2026 09:14:03 +0000\n"
                               "Original-Rcpt-To: one@example.org\nOriginal-Rcpt-To: two@example.org\n",
                               "message/rfc822", ORIG("one@example.org", ""), NULL, &r),
                     BP_OK);
    bp_test_check_field("received-date", "arrival_date", r.arrival_date, "Tue, 10 Mar 2026 09:14:03 +0000");
    assert_int_equal(r.n_blocks, 2);
    bp_test_check_field("two rcpt", "first", r.blocks[0].recipient, "one@example.org");
    bp_test_check_field("two rcpt", "second", r.blocks[1].recipient, "two@example.org");
}

/* @p r is one complaint: of @p kind and @p feedback_type, about the one @p recipient. */
static void check_complaint(const char *label, const bp_report *r, const char *kind, const char *feedback_type,
                            const char *recipient)
{
    bp_test_check_field(label, "kind", bp_report_kind_name(r->kind), kind);
    bp_test_check_field(label, "feedback_type", r->feedback_type, feedback_type);
    if (r->n_blocks != 1)
        fail_msg("%s: blocks got %zu, want 1", label, r->n_blocks);
    bp_test_check_field(label, "recipient", r->blocks[0].recipient, recipient);
}

static const char jmrp_classic[] =
    "From: staff@hotmail.com\n"
    "To: jmrp@example.com\n"
    "Subject: complaint about message from 192.0.2.10\n"
    "Date: Tue, 10 Mar 2026 10:31:07 -0700\n"
    "Message-ID: <jmrp.1@hotmail.example.com>\n"
    "X-HmXmrOriginalRecipient: <jmrp@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"jm\"\n"
    "\n"
    "--jm\n"
    "Content-Type: text/plain\n"
    "\n"
    "This is a Junk Mail Reporting Program report.\n"
    "\n"
    "--jm\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "X-HmXmrOriginalRecipient: <liam@hotmail.example.com>\n"
    "Received: from mta1.example.com ([192.0.2.10]) by mc1.hotmail.example.com with "
    "Microsoft SMTPSVC(7.5.7601.23143);\n"
    "\t Tue, 10 Mar 2026 02:14:03 -0700\n"
    "Received: from [198.51.100.7] by mta1.example.com; Tue, 10 Mar 2026 09:14:02 +0000\n"
    "From: news@example.com\n"
    "To: <liam@hotmail.example.com>\n"
    "Message-ID: <orig.9@example.com>\n"
    "\n"
    "Hello.\n"
    "\n"
    "--jm--\n";

/* The JMRP recipient is the attached original's header, never the report's own. */
static void test_jmrp(void **state)
{
    bp_report r;
    bp_test_parse_str(*state, jmrp_classic, &r);
    check_complaint("jmrp", &r, "jmrp", "abuse", "liam@hotmail.example.com");
    bp_test_check_field("jmrp", "recipient_from", bp_rcpt_source_name(r.blocks[0].recipient_from),
                        "x-hmxmroriginalrecipient");
    bp_test_check_field("jmrp", "original_message_id", r.original_message_id, "<orig.9@example.com>");
    bp_test_check_field("jmrp", "arrival_date", r.arrival_date, "Tue, 10 Mar 2026 02:14:03 -0700");
    bp_test_check_field("jmrp", "source_ip", r.source_ip, "192.0.2.10");
}

/* A forwarded message that is no complaint: no X-HmXmr header, not from Microsoft. */
static void test_forward_is_not_jmrp(void **state)
{
    const char *msg = "From: friend@example.org\n"
                      "To: news@example.com\n"
                      "Subject: Fwd: News\n"
                      "MIME-Version: 1.0\n"
                      "Content-Type: multipart/mixed; boundary=\"fw\"\n"
                      "\n"
                      "--fw\n"
                      "Content-Type: text/plain\n"
                      "\n"
                      "See below.\n"
                      "--fw\n"
                      "Content-Type: message/rfc822\n"
                      "\n"
                      "From: news@example.com\n"
                      "To: friend@example.org\n"
                      "\n"
                      "Hello.\n"
                      "--fw--\n";
    bp_report r;
    bp_test_parse_str(*state, msg, &r);
    assert_int_not_equal(r.kind, BP_REPORT_JMRP);
    assert_int_not_equal(r.kind, BP_REPORT_FEEDBACK);
}

/* Apple Mail's unsubscribe message reads as an opt-out from its sender. */
static void test_apple_unsubscribe(void **state)
{
    const char *msg = "From: someone@icloud.example.com\n"
                      "To: opt-out-1234@example.com\n"
                      "Subject: unsubscribe\n"
                      "Date: Thu, 2 May 2024 17:48:55 +0000\n"
                      "Auto-Submitted: auto-replied\n"
                      "X-Apple-Unsubscribe: true\n"
                      "Content-Type: text/plain\n"
                      "\n"
                      "Apple Mail sent this email to unsubscribe from the message.\n";
    bp_report r;
    bp_test_parse_str(*state, msg, &r);
    check_complaint("apple", &r, "feedback", "opt-out", "someone@icloud.example.com");
}

BP_TEST_MAIN(BP_ARENA_TEST(test_feedback_types), BP_ARENA_TEST(test_recipient_order), BP_ARENA_TEST(test_arf_fields),
             BP_ARENA_TEST(test_received_date_and_two_recipients), BP_ARENA_TEST(test_jmrp),
             BP_ARENA_TEST(test_forward_is_not_jmrp), BP_ARENA_TEST(test_apple_unsubscribe))
