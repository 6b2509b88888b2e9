/*
 * test_dsn.c - RFC 3464 / RFC 6533 delivery status notifications (src/report/dsn.c) through
 * the public path: bytes -> bp_mime_parse() -> bp_report_parse().  Each row builds a
 * multipart/report around a delivery-status body and checks one block.
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

/* A DSN whose notification text is @p note and whose status part is @status_type holding
 * @fields; the arena owns the result. */
static bp_status parse_dsn_note(bp_arena *arena, const char *note, const char *status_type, const char *fields,
                                bp_report *r);

/* A DSN whose status part is @status_type holding @fields; the arena owns the result. */
static bp_status parse_dsn(bp_arena *arena, const char *status_type, const char *fields, bp_report *r)
{
    return parse_dsn_note(arena, "Your message could not be delivered.\n", status_type, fields, r);
}

static bp_status parse_dsn_note(bp_arena *arena, const char *note, const char *status_type, const char *fields,
                                bp_report *r)
{
    char *msg = bp_arena_printf(arena,
                                "From: MAILER-DAEMON@mx.example.net\n"
                                "To: bounces@example.com\n"
                                "Subject: Undelivered Mail Returned to Sender\n"
                                "Message-ID: <dsn.1@mx.example.net>\n"
                                "Auto-Submitted: auto-replied\n"
                                "MIME-Version: 1.0\n"
                                "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n"
                                "\n"
                                "--b1\n"
                                "Content-Type: text/plain\n"
                                "\n"
                                "%s"
                                "\n"
                                "--b1\n"
                                "Content-Type: %s\n"
                                "\n"
                                "%s\n"
                                "--b1\n"
                                "Content-Type: text/rfc822-headers\n"
                                "\n"
                                "From: news@example.com\n"
                                "To: quoted@example.org\n"
                                "Message-ID: <orig.1@example.com>\n"
                                "\n"
                                "--b1--\n",
                                note, status_type, fields);
    return msg != NULL ? bp_test_parse_report(arena, msg, strlen(msg), NULL, r) : BP_ERR_NOMEM;
}

#define PER_MSG "Reporting-MTA: dns; mx.example.net\nArrival-Date: Tue, 10 Mar 2026 09:14:05 +0000\n\n"

static void test_blocks(void **state)
{
    static const struct {
        const char *label;
        const char *fields;
        size_t want_blocks;
        size_t block;
        const char *recipient;
        const char *recipient_from;
        const char *status;
        const char *smtp_code;
        bp_rcpt_action action;
    } rows[] = {
        {"plain failure",
         PER_MSG "Final-Recipient: rfc822; jdoe@Example.NET\nAction: failed\nStatus: 5.1.1\n"
                 "Diagnostic-Code: smtp; 550 5.1.1 <jdoe@example.net>: User unknown\n",
         1, 0, "jdoe@example.net", "final-recipient", "5.1.1", "550", BP_ACTION_FAILED},
        {"final beats original",
         PER_MSG "Original-Recipient: rfc822;info@example.org\nFinal-Recipient: rfc822; j.doe@mail.example.org\n"
                 "Action: failed\nStatus: 5.1.1\n",
         1, 0, "j.doe@mail.example.org", "final-recipient", "5.1.1", NULL, BP_ACTION_FAILED},
        {"original when final unusable",
         PER_MSG "Final-Recipient: LOCAL; kijitora\nOriginal-Recipient: rfc822;kijitora@example.org\n"
                 "Action: failed\nStatus: 5.1.1\n",
         1, 0, "kijitora@example.org", "original-recipient", "5.1.1", NULL, BP_ACTION_FAILED},
        {"report fields before the quoted original",
         PER_MSG "Final-Recipient: rfc822; real@example.net\nAction: failed\nStatus: 5.2.2\n", 1, 0, "real@example.net",
         "final-recipient", "5.2.2", NULL, BP_ACTION_FAILED},
        {"generic X.0.0 yields to the diagnostic",
         PER_MSG "Final-Recipient: rfc822;hana@example.net\nAction: failed\nStatus: 5.0.0\n"
                 "Diagnostic-Code: smtp; 550 5.1.1 <hana@example.net>: Recipient address rejected\n",
         1, 0, "hana@example.net", "final-recipient", "5.1.1", "550", BP_ACTION_FAILED},
        {"specific Status kept over the diagnostic",
         PER_MSG "Final-Recipient: rfc822;k@example.org\nAction: failed\nStatus: 4.4.7\n"
                 "Diagnostic-Code: smtp; 452 4.2.2 mailbox full\n",
         1, 0, "k@example.org", "final-recipient", "4.4.7", "452", BP_ACTION_FAILED},
        {"missing Status from the diagnostic",
         PER_MSG "Final-Recipient: rfc822; <nao@example.org>\nAction: failed\n"
                 "Diagnostic-Code: smtp; 550 5.1.1 Mailbox does not exist\n",
         1, 0, "nao@example.org", "final-recipient", "5.1.1", "550", BP_ACTION_FAILED},
        {"malformed Status ignored",
         PER_MSG "Final-Recipient: rfc822; m@example.org\nAction: failed\nStatus: 5.1\n"
                 "Diagnostic-Code: smtp; 550 5.1.2 bad domain\n",
         1, 0, "m@example.org", "final-recipient", "5.1.2", "550", BP_ACTION_FAILED},
        {"folded diagnostic",
         PER_MSG "Final-Recipient: rfc822; jdoe@gmail.example.com\nAction: failed\nStatus: 5.1.1\n"
                 "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does\n"
                 " not exist. Please try 550-5.1.1 double-checking the recipient's email address\n",
         1, 0, "jdoe@gmail.example.com", "final-recipient", "5.1.1", "550", BP_ACTION_FAILED},
        {"delayed", PER_MSG "Final-Recipient: rfc822; sam@example.jp\nAction: delayed\nStatus: 4.4.1\n", 1, 0,
         "sam@example.jp", "final-recipient", "4.4.1", NULL, BP_ACTION_DELAYED},
        {"delivered without Status", PER_MSG "Final-Recipient: rfc822; lee@example.com\nAction: delivered\n", 1, 0,
         "lee@example.com", "final-recipient", "2.0.0", NULL, BP_ACTION_DELIVERED},
        {"relayed", PER_MSG "Final-Recipient: rfc822; ops@example.org\nAction: relayed\nStatus: 2.0.0\n", 1, 0,
         "ops@example.org", "final-recipient", "2.0.0", NULL, BP_ACTION_RELAYED},
        {"expanded", PER_MSG "Final-Recipient: rfc822; list@example.org\nAction: expanded\nStatus: 2.0.0\n", 1, 0,
         "list@example.org", "final-recipient", "2.0.0", NULL, BP_ACTION_EXPANDED},
        {"upper-case types and action",
         PER_MSG "Final-Recipient: RFC822; kumiko@example.org\nAction: FAILED\nStatus: 5.1.1\n"
                 "Diagnostic-Code: SMTP; 550 5.1.1 <kumiko@example.org>... User unknown\n",
         1, 0, "kumiko@example.org", "final-recipient", "5.1.1", "550", BP_ACTION_FAILED},
        {"three recipients, the third",
         PER_MSG "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n\n"
                 "Final-Recipient: rfc822; b@example.org\nAction: failed\nStatus: 5.2.2\n\n"
                 "Final-Recipient: rfc822; c@example.org\nAction: delayed\nStatus: 4.4.1\n",
         3, 2, "c@example.org", "final-recipient", "4.4.1", NULL, BP_ACTION_DELAYED},
        {"blocks without blank lines (AOL), the second",
         "Reporting-MTA: dns; omr.example.com\nArrival-Date: Tue, 10 Mar 2026 04:24:04 -0500\n"
         "Final-Recipient: rfc822; misaki@example.jp\nOriginal-Recipient: rfc822;misaki@example.jp\n"
         "Action: failed\nStatus: 5.2.2\n"
         "Final-Recipient: rfc822; kenta@example.jp\nOriginal-Recipient: rfc822;kenta@example.jp\n"
         "Action: failed\nStatus: 5.1.1\n",
         2, 1, "kenta@example.jp", "final-recipient", "5.1.1", NULL, BP_ACTION_FAILED},
        {"blocks without blank lines, RFC order",
         "Reporting-MTA: dns; omr.example.com\n"
         "Original-Recipient: rfc822;one@example.jp\nFinal-Recipient: rfc822; one@example.jp\n"
         "Action: failed\nStatus: 5.2.2\n"
         "Original-Recipient: rfc822;two@example.jp\nFinal-Recipient: rfc822; two@example.jp\n"
         "Action: failed\nStatus: 5.1.1\n",
         2, 1, "two@example.jp", "final-recipient", "5.1.1", NULL, BP_ACTION_FAILED},
        {"X-Actual-Recipient does not replace Final-Recipient",
         PER_MSG "Final-Recipient: RFC822; sales@example.org\nX-Actual-Recipient: RFC822; k@mailhost.example.org\n"
                 "Action: failed\nStatus: 5.2.2\n",
         1, 0, "sales@example.org", "final-recipient", "5.2.2", NULL, BP_ACTION_FAILED},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        bp_report r;
        if (parse_dsn(*state, "message/delivery-status", rows[i].fields, &r) != BP_OK)
            fail_msg("%s: parse failed", rows[i].label);
        if (r.kind != BP_REPORT_DSN)
            fail_msg("%s: kind got %s, want dsn", rows[i].label, bp_report_kind_name(r.kind));
        if (r.n_blocks != rows[i].want_blocks)
            fail_msg("%s: blocks got %zu, want %zu", rows[i].label, r.n_blocks, rows[i].want_blocks);
        const bp_rcpt_block *b = &r.blocks[rows[i].block];
        bp_test_check_field(rows[i].label, "recipient", b->recipient, rows[i].recipient);
        bp_test_check_field(rows[i].label, "recipient_from", bp_rcpt_source_name(b->recipient_from),
                            rows[i].recipient_from);
        bp_test_check_field(rows[i].label, "status", b->status, rows[i].status);
        bp_test_check_field(rows[i].label, "smtp_code", b->smtp_code, rows[i].smtp_code);
        if (b->action != rows[i].action)
            fail_msg("%s: action got %d, want %d", rows[i].label, (int)b->action, (int)rows[i].action);
    }
}

static void test_per_message_fields(void **state)
{
    bp_report r;
    assert_int_equal(parse_dsn(*state, "message/delivery-status",
                               "Reporting-MTA: dns; googlemail.com\nOriginal-Envelope-Id: job-42\n"
                               "Arrival-Date: Tue, 10 Mar 2026 02:14:05 -0700\n\n"
                               "Final-Recipient: rfc822; jdoe@gmail.example.com\nAction: failed\nStatus: 5.1.1\n"
                               "Remote-MTA: dns; gmail-smtp-in.l.google.com. (192.0.2.27, the server for the\n"
                               " domain gmail.example.com.)\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n"
                               "Last-Attempt-Date: Tue, 10 Mar 2026 02:14:07 -0700\n",
                               &r),
                     BP_OK);
    assert_int_equal(r.kind, BP_REPORT_DSN);
    bp_test_check_field("per-message", "family", r.family, "dsn");
    bp_test_check_field("per-message", "reporting_mta", r.reporting_mta, "googlemail.com");
    bp_test_check_field("per-message", "envid", r.envid, "job-42");
    bp_test_check_field("per-message", "arrival_date", r.arrival_date, "Tue, 10 Mar 2026 02:14:05 -0700");
    bp_test_check_field("per-message", "message_id", r.message_id, "<dsn.1@mx.example.net>");
    bp_test_check_field("per-message", "original_message_id", r.original_message_id, "<orig.1@example.com>");
    assert_int_equal(r.n_blocks, 1);
    bp_test_check_field("per-message", "remote_mta", r.blocks[0].remote_mta, "gmail-smtp-in.l.google.com");
    bp_test_check_field("per-message", "diagnostic_type", r.blocks[0].diagnostic_type, "smtp");
    bp_test_check_field("per-message", "diagnostic", r.blocks[0].diagnostic, "550 5.1.1 no such user");
    bp_test_check_field("per-message", "final_recipient_type", r.blocks[0].final_recipient_type, "rfc822");
    bp_test_check_field("per-message", "last_attempt_date", r.blocks[0].last_attempt_date,
                        "Tue, 10 Mar 2026 02:14:07 -0700");
}

static void test_global_dsn(void **state)
{
    bp_report r;
    assert_int_equal(parse_dsn(*state, "message/global-delivery-status; charset=utf-8",
                               "Reporting-MTA: dns; mx.example.jp\n\n"
                               "Final-Recipient: utf-8; \xe5\xb1\xb1\xe7\x94\xb0@\xe4\xbe\x8b\xe3\x81\x88.Example.JP\n"
                               "Action: failed\nStatus: 5.1.1\n",
                               &r),
                     BP_OK);
    assert_int_equal(r.kind, BP_REPORT_DSN);
    bp_test_check_field("global", "family", r.family, "global-dsn");
    assert_int_equal(r.n_blocks, 1);
    bp_test_check_field("global", "recipient", r.blocks[0].recipient,
                        "\xe5\xb1\xb1\xe7\x94\xb0@\xe4\xbe\x8b\xe3\x81\x88.example.jp");
    bp_test_check_field("global", "final_recipient_type", r.blocks[0].final_recipient_type, "utf-8");
}

/* A text/plain part holding the fields (a mislabelled status part) is still read. */
static void test_mislabelled_status_part(void **state)
{
    bp_report r;
    assert_int_equal(parse_dsn(*state, "text/plain",
                               "Reporting-MTA: dns; smtp.example.jp\n\n"
                               "Final-Recipient: RFC822; goro@example.jp\nAction: failed\nStatus: 5.1.1\n",
                               &r),
                     BP_OK);
    assert_int_equal(r.kind, BP_REPORT_DSN);
    assert_int_equal(r.n_blocks, 1);
    bp_test_check_field("mislabelled", "recipient", r.blocks[0].recipient, "goro@example.jp");
}

/* A delivery-status part without any recipient group is no DSN: later parsers get a try. */
static void test_no_recipient_group(void **state)
{
    bp_report r;
    assert_int_equal(parse_dsn(*state, "message/delivery-status", "Reporting-MTA: dns; mx.example.net\n", &r), BP_OK);
    assert_int_not_equal(r.kind, BP_REPORT_DSN);
}

/* Auto-Submitted: auto-replied on a DSN (Postfix, Exim) never makes it an auto-reply. */
static void test_auto_submitted_dsn_is_dsn(void **state)
{
    bp_report r;
    assert_int_equal(parse_dsn(*state, "message/delivery-status",
                               "Final-Recipient: rfc822; yuki@example.jp\nAction: failed\nStatus: 5.2.2\n", &r),
                     BP_OK);
    bp_test_check_field("auto-submitted dsn", "kind", bp_report_kind_name(r.kind), "dsn");
}

/* A block without Diagnostic-Code takes its recipient's line of the notification text. */
static void test_diagnostic_from_notification(void **state)
{
    static const struct {
        const char *label, *text, *want_diag, *want_status, *want_code;
    } rows[] = {
        {"opensmtpd line",
         "    A message is delayed for more than 4 hours for the following\n    list of recipients:\n\n"
         "sam@example.jp: 421 4.7.0 [TS01] Messages from 192.0.2.25 temporarily deferred\n\n    Please note.\n",
         "421 4.7.0 [TS01] Messages from 192.0.2.25 temporarily deferred", "4.7.0", "421"},
        {"postfix continuation lines",
         "<sam@example.jp>: host mx.example.jp[192.0.2.44] said: 452 4.2.2\n    Mailbox full (in reply to RCPT "
         "TO command)\n\nFor further assistance.\n",
         "host mx.example.jp[192.0.2.44] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)", "4.2.2", "452"},
        {"sendmail reason on the next line",
         "   ----- The following addresses had permanent fatal errors -----\n<sam@example.jp>\n"
         "    (reason: 452 4.2.2 Over quota)\n\n",
         "452 4.2.2 Over quota", "4.2.2", "452"},
        {"empty sendmail reason", "<sam@example.jp>\n    (reason: )\n\n", NULL, "4.0.0", NULL},
        {"quoted header is not the entry", "  To: sam@example.jp\n  Subject: News\n\nSorry.\n", NULL, "4.0.0", NULL},
        {"bare address in a list", "Delivery is delayed to:\n\n   sam@example.jp\n\nRetrying.\n", NULL, "4.0.0", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        char *msg = bp_arena_printf(*state,
                                    "From: MAILER-DAEMON@mx.example.net\n"
                                    "Subject: Delayed Mail\n"
                                    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"n\"\n"
                                    "\n--n\nContent-Type: text/plain\n\n%s\n"
                                    "--n\nContent-Type: message/delivery-status\n\n"
                                    "Reporting-MTA: dns; mx.example.net\n\n"
                                    "Final-Recipient: rfc822; sam@example.jp\nAction: delayed\nStatus: 4.0.0\n\n"
                                    "--n--\n",
                                    rows[i].text);
        assert_non_null(msg);
        bp_report r;
        bp_test_parse_str(*state, msg, &r);
        if (r.kind != BP_REPORT_DSN || r.n_blocks != 1)
            fail_msg("%s: kind %s with %zu blocks, want one dsn block", rows[i].label, bp_report_kind_name(r.kind),
                     r.n_blocks);
        bp_test_check_field(rows[i].label, "diagnostic", r.blocks[0].diagnostic, rows[i].want_diag);
        bp_test_check_field(rows[i].label, "status", r.blocks[0].status, rows[i].want_status);
        bp_test_check_field(rows[i].label, "smtp_code", r.blocks[0].smtp_code, rows[i].want_code);
    }
}

/* Other sources of a block's text: the Status comment, and what an X-Unix code is not. */
static void test_status_comment_and_x_unix(void **state)
{
    static const struct {
        const char *label, *fields, *want_diag, *want_code;
    } rows[] = {
        {"status comment",
         PER_MSG "Final-Recipient: rfc822;sabatora@cat.example.net\nAction: delayed\n"
                 "Status: 4.0.0 (cat.example.net: host name lookup failure)\n",
         "cat.example.net: host name lookup failure", NULL},
        {"generic status comment dropped",
         PER_MSG "Final-Recipient: rfc822;k@example.org\nAction: failed\nStatus: 5.0.0 (permanent failure)\n", NULL,
         NULL},
        {"diagnostic beats status comment",
         PER_MSG "Final-Recipient: rfc822;k@example.org\nAction: failed\nStatus: 5.0.0 (lookup failure)\n"
                 "Diagnostic-Code: smtp; 550 user unknown\n",
         "550 user unknown", "550"},
        {"x-unix exit status is no smtp code",
         PER_MSG "Final-Recipient: RFC822; k@example.jp\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: X-Unix; 255\n",
         "255", NULL},
        {"smtp diagnostic keeps its code",
         PER_MSG "Final-Recipient: rfc822; k@example.jp\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 554\n",
         "554", "554"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        bp_report r;
        if (parse_dsn(*state, "message/delivery-status", rows[i].fields, &r) != BP_OK || r.n_blocks != 1)
            fail_msg("%s: want one dsn block", rows[i].label);
        bp_test_check_field(rows[i].label, "diagnostic", r.blocks[0].diagnostic, rows[i].want_diag);
        bp_test_check_field(rows[i].label, "smtp_code", r.blocks[0].smtp_code, rows[i].want_code);
    }
}

/* A delivery-status part written inline in a text body (lost headers, inline forward). */
static void test_embedded_status(void **state)
{
    static const struct {
        const char *label, *msg, *want_rcpt;
    } rows[] = {
        {"report without Content-Type header",
         "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.jp>\nSubject: Returned mail\n\n"
         "This is a MIME-encapsulated message\n\n--b.1/relay\n\nfatal errors\n\n--b.1/relay\n"
         "Content-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example.jp\n\n"
         "Final-Recipient: RFC822; ken@example.com\nAction: failed\nStatus: 5.7.1\n\n--b.1/relay--\n",
         "ken@example.com"},
        {"inline forward",
         "From: postmaster@example.jp\nSubject: Fwd: Undelivered Mail\nContent-Type: text/plain\n\n"
         "FYI\n-----\nContent-Description: Delivery report\ncontent-type: message/delivery-status\n\n"
         "Reporting-MTA: dns; relay.example.jp\n\nFinal-Recipient: rfc822; soto@example.com\nAction: failed\n"
         "Status: 4.0.0\n",
         "soto@example.com"},
        {"mention inside a sentence",
         "From: someone@example.org\nSubject: question\nContent-Type: text/plain\n\n"
         "Why does my content-type: message/delivery-status part say\nFinal-Recipient: rfc822; x@example.com\n",
         NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        bp_report r;
        bp_test_parse_str(*state, rows[i].msg, &r);
        if (rows[i].want_rcpt == NULL) {
            if (r.kind == BP_REPORT_DSN)
                fail_msg("%s: kind got dsn, want not a dsn", rows[i].label);
            continue;
        }
        if (r.kind != BP_REPORT_DSN || r.n_blocks != 1)
            fail_msg("%s: kind %s with %zu blocks, want one dsn block", rows[i].label, bp_report_kind_name(r.kind),
                     r.n_blocks);
        bp_test_check_field(rows[i].label, "recipient", r.blocks[0].recipient, rows[i].want_rcpt);
        bp_test_check_field(rows[i].label, "recipient_from", bp_rcpt_source_name(r.blocks[0].recipient_from),
                            "final-recipient");
    }
}

/* What the report says around a block's codes (reading.c, issue 13): the SMTP stage from
 * the notification text or a transcript, the innermost reply of a wrapper, the passages about
 * the recipient, the parties, a local delivery program, PowerMTA's own verdict. */
static void test_reading(void **state)
{
    static const struct {
        const char *label, *note, *fields;
        const char *stage; /* smtp_command name, or NULL */
        const char *said;  /* a part of smtp_command_said, or NULL */
        const char *reply; /* the inner reply, or NULL */
        const char *reply_status;
        const char *passage; /* a part of the passages, or NULL for none */
        bp_party party;
        int local;
        const char *mta_category;
    } rows[] = {
        {"postfix: the stage in the notification",
         "<k@example.net>: host mx.example.net[192.0.2.25] said: 550 "
         "5.2.1\n    <k@example.net>... User unknown (in reply to RCPT TO\n    command)\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.2.1\n"
                 "Diagnostic-Code: smtp; 550 5.2.1 <k@example.net>... User unknown\n",
         "RCPT", "in reply to RCPT TO command", NULL, NULL, "(in reply to RCPT TO command)", BP_PARTY_RECIPIENT, 0,
         NULL},
        {"postfix: end of data",
         "<k@example.net>: host mx.example.net[192.0.2.25] said: 550 5.7.1 Rejected (in "
         "reply to end of DATA command)\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.7.1\n"
                 "Diagnostic-Code: smtp; 550 5.7.1 Rejected\n",
         "DATA", NULL, NULL, NULL, "Rejected", BP_PARTY_RECIPIENT, 0, NULL},
        {"exim: the stage in the diagnostic", "Failed.\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.0.0\n"
                 "Diagnostic-Code: smtp; SMTP error from remote mail server after MAIL FROM:<news@example.com> "
                 "SIZE=120: 550 Bad sender\n",
         "MAIL", "error from remote mail server after MAIL FROM", NULL, NULL, NULL, BP_PARTY_RECIPIENT, 0, NULL},
        {"sendmail transcript: the recipient's own reply",
         "   ----- Transcript of session follows -----\n... while talking to mx.example.net.:\n"
         ">>> RCPT To:<k@example.net>\n<<< 550 5.7.1 No such user\n550 5.1.1 <k@example.net>... User unknown\n"
         ">>> DATA\n<<< 503 5.5.1 No recipients\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.1.1\n"
                 "Diagnostic-Code: smtp; 550 5.7.1 No such user\n",
         "RCPT", NULL, NULL, NULL, "550 5.7.1 No such user", BP_PARTY_RECIPIENT, 0, NULL},
        {"a mention mid-sentence is a passage",
         "Your message wasn't delivered to k@example.net because the address couldn't be found.\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.0.0\n", NULL, NULL, NULL, NULL,
         "because the address couldn't be found", BP_PARTY_RECIPIENT, 0, NULL},
        {"another recipient's entry ends the passage",
         "<k@example.net>: host mx said: 550 Unknown\n<o@example.net>: host mx said: 452 Full\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.0.0\n\n"
                 "Final-Recipient: rfc822; o@example.net\nAction: failed\nStatus: 5.0.0\n",
         NULL, NULL, NULL, NULL, "550 Unknown", BP_PARTY_RECIPIENT, 0, NULL},
        {"esp summary: the quoted reply and its status", "Failed.\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.3.0\n"
                 "Diagnostic-Code: smtp; 5.3.0 - Other mail system problem 550-'5.1.1 <k@example.net>... User "
                 "unknown' (delivery attempts: 0)\n",
         NULL, NULL, "5.1.1 <k@example.net>... User unknown", "5.1.1", NULL, BP_PARTY_RECIPIENT, 0, NULL},
        {"sendmail x.4.7: the reply's own status", "<k@example.net>\n    (reason: 550 5.7.1 Access denied)\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 4.4.7\n", NULL, NULL,
         "550 5.7.1 Access denied", "5.7.1", "Access denied", BP_PARTY_RECIPIENT, 0, NULL},
        {"the reply names the sender's domain", "Failed.\n",
         "Reporting-MTA: dns; mx.example.com\nX-Postfix-Sender: rfc822; bounces@lists.example.org\n\n"
         "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.1.2\n"
         "Diagnostic-Code: smtp; 550 5.1.2 Domain lists.example.org does not exist\n",
         NULL, NULL, NULL, NULL, NULL, BP_PARTY_SENDER, 0, NULL},
        {"a reply naming another mailbox is about that mailbox", "Failed.\n",
         "Reporting-MTA: dns; mx.example.com\nX-Postfix-Sender: rfc822; bounces@lists.example.org\n\n"
         "Final-Recipient: rfc822; alias@example.net\nAction: failed\nStatus: 5.1.1\n"
         "Diagnostic-Code: smtp; 550 5.1.1 <user@lists.example.org>... User unknown\n",
         NULL, NULL, NULL, NULL, NULL, BP_PARTY_RECIPIENT, 0, NULL},
        {"the reply names the sending host", "Failed.\n",
         "Reporting-MTA: dns; out1.example.com\n\n"
         "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.1.2\n"
         "Diagnostic-Code: smtp; 450 4.7.1 <out1.example.com>: Helo command rejected: Host not found\n",
         NULL, NULL, NULL, NULL, NULL, BP_PARTY_SENDING_HOST, 0, NULL},
        {"x-unix is a local delivery program", "Failed.\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.3.0\n"
                 "Diagnostic-Code: X-Unix; 73\n",
         NULL, NULL, NULL, NULL, NULL, BP_PARTY_RECIPIENT, 1, NULL},
        {"procmail too", "Failed.\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.0.0\n"
                 "Diagnostic-Code: smtp; 554 procmail: Error while writing to \"/var/mail/k\"\n",
         NULL, NULL, NULL, NULL, NULL, BP_PARTY_RECIPIENT, 1, NULL},
        {"powermta's own verdict", "Failed.\n",
         PER_MSG "Final-Recipient: rfc822; k@example.net\nAction: failed\nStatus: 5.0.0 (undefined status)\n"
                 "Diagnostic-Code: smtp;550 Sorry\nX-PowerMTA-BounceCategory: Bad-Mailbox\n",
         NULL, NULL, NULL, NULL, NULL, BP_PARTY_RECIPIENT, 0, "bad-mailbox"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        bp_report r;
        if (parse_dsn_note(*state, rows[i].note, "message/delivery-status", rows[i].fields, &r) != BP_OK ||
            r.n_blocks < 1)
            fail_msg("%s: want a dsn block", rows[i].label);
        const bp_rcpt_block *b = &r.blocks[0];
        bp_test_check_field(rows[i].label, "smtp_command", bp_smtp_command_name(b->smtp_command), rows[i].stage);
        if (rows[i].said != NULL &&
            (b->smtp_command_said == NULL || strstr(b->smtp_command_said, rows[i].said) == NULL))
            fail_msg("%s: said \"%s\", want it to hold \"%s\"", rows[i].label,
                     b->smtp_command_said ? b->smtp_command_said : "(null)", rows[i].said);
        bp_test_check_field(rows[i].label, "reply", b->reply, rows[i].reply);
        bp_test_check_field(rows[i].label, "reply_status", b->reply_status, rows[i].reply_status);
        if (rows[i].passage != NULL && (b->passages == NULL || strstr(b->passages, rows[i].passage) == NULL))
            fail_msg("%s: passages \"%s\", want them to hold \"%s\"", rows[i].label,
                     b->passages ? b->passages : "(null)", rows[i].passage);
        if (rows[i].passage != NULL && strstr(rows[i].label, "another recipient") != NULL &&
            strstr(b->passages, "452") != NULL)
            fail_msg("%s: passages \"%s\" hold the next recipient's entry", rows[i].label, b->passages);
        if (b->party != rows[i].party)
            fail_msg("%s: party %d, want %d", rows[i].label, (int)b->party, (int)rows[i].party);
        if (b->local_delivery != rows[i].local)
            fail_msg("%s: local_delivery %d, want %d", rows[i].label, b->local_delivery, rows[i].local);
        bp_test_check_field(rows[i].label, "mta_category", b->mta_category, rows[i].mta_category);
    }
}

BP_TEST_MAIN(BP_ARENA_TEST(test_blocks), BP_ARENA_TEST(test_per_message_fields), BP_ARENA_TEST(test_global_dsn),
             BP_ARENA_TEST(test_mislabelled_status_part), BP_ARENA_TEST(test_no_recipient_group),
             BP_ARENA_TEST(test_auto_submitted_dsn_is_dsn), BP_ARENA_TEST(test_diagnostic_from_notification),
             BP_ARENA_TEST(test_status_comment_and_x_unix), BP_ARENA_TEST(test_embedded_status),
             BP_ARENA_TEST(test_reading))
