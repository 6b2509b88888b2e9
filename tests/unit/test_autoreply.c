/*
 * test_autoreply.c - RFC 3834 auto-replies and out-of-office shapes (src/report/autoreply.c):
 * which messages are auto-replies, and which only look like one (a DSN carrying
 * Auto-Submitted: auto-replied, a bounce, a person's mail about a vacation); challenge-response
 * requests are auto-replies of their own family, never bounces; an auto-reply whose words are
 * a mailbox verdict is a bounce; "auto-replied" with a returned original and a status is a
 * bounce in any language.
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
#include "bouncepipe/report_events.h"
#include "bouncepipe/rules.h"
#include "test_support.h"
#include "test_util.h"

/* A plain message with @headers (each ending in \n) and a short body. */
static bp_status parse_headers(bp_arena *arena, const char *headers, bp_report *r)
{
    char *msg = bp_arena_printf(arena, "%sTo: bounces@example.com\nContent-Type: text/plain\n\nI am away.\n", headers);
    return msg != NULL ? bp_test_parse_report(arena, msg, strlen(msg), NULL, r) : BP_ERR_NOMEM;
}

static void test_recognition(void **state)
{
    static const struct {
        const char *label;
        const char *headers;
        int want_autoreply;
        const char *want_recipient;
    } rows[] = {
        {"rfc3834 vacation",
         "From: Noriko <noriko@example.org>\nSubject: Away until May 5\nAuto-Submitted: auto-replied (vacation)\n", 1,
         "noriko@example.org"},
        {"X-Autoreply", "From: lukas@example.de\nSubject: Re: News\nX-Autoreply: yes\n", 1, "lukas@example.de"},
        {"X-Autorespond", "From: a@example.org\nSubject: Thanks\nX-Autorespond: yes\n", 1, "a@example.org"},
        {"Precedence auto_reply", "From: b@example.org\nSubject: Re: News\nPrecedence: auto_reply\n", 1,
         "b@example.org"},
        {"Outlook automatic reply, null return path",
         "Return-Path: <>\nFrom: \"Weber, Anna\" <anna.weber@example.de>\nSubject: Automatic reply: News\n"
         "X-Auto-Response-Suppress: All\nX-MS-Exchange-Inbox-Rules-Loop: anna.weber@example.de\n",
         1, "anna.weber@example.de"},
        {"subject cue and In-Reply-To",
         "From: c@example.org\nSubject: Out of office: News\nIn-Reply-To: <20260310091401.1@example.com>\n", 1,
         "c@example.org"},
        {"subject cue and Precedence bulk", "From: d@example.org\nSubject: Vacation notice\nPrecedence: bulk\n", 1,
         "d@example.org"},
        {"japanese subject cue with auto-submitted",
         "From: e@example.jp\nSubject: =?UTF-8?B?5LiN5Zyo44Gu44GK55+l44KJ44Gb?=\nAuto-Submitted: auto-generated\n", 1,
         "e@example.jp"},
        {"subject cue alone is a person writing", "From: f@example.org\nSubject: Vacation photos\n", 0, NULL},
        {"Auto-Submitted: no", "From: g@example.org\nSubject: Out of office plans\nAuto-Submitted: no\n", 0, NULL},
        {"from a mailer daemon is a bounce",
         "From: MAILER-DAEMON@mx.example.net\nSubject: Automatic reply\nAuto-Submitted: auto-replied\n", 0, NULL},
        {"bounce words in subject", "From: h@example.org\nSubject: Undeliverable: News\nAuto-Submitted: auto-replied\n",
         0, NULL},
        {"no marker at all", "From: i@example.org\nSubject: Hello\n", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        bp_report r;
        if (parse_headers(*state, rows[i].headers, &r) != BP_OK)
            fail_msg("%s: parse failed", rows[i].label);
        int got = r.kind == BP_REPORT_AUTOREPLY;
        if (got != rows[i].want_autoreply)
            fail_msg("%s: autoreply got %d (kind %s), want %d", rows[i].label, got, bp_report_kind_name(r.kind),
                     rows[i].want_autoreply);
        if (!got)
            continue;
        if (r.n_blocks != 1)
            fail_msg("%s: blocks got %zu, want 1", rows[i].label, r.n_blocks);
        const char *rcpt = r.blocks[0].recipient;
        if (rcpt == NULL || strcmp(rcpt, rows[i].want_recipient) != 0)
            fail_msg("%s: recipient got %s, want %s", rows[i].label, rcpt ? rcpt : "(null)", rows[i].want_recipient);
        const char *from = bp_rcpt_source_name(r.blocks[0].recipient_from);
        if (from == NULL || strcmp(from, "header") != 0)
            fail_msg("%s: recipient_from got %s, want header", rows[i].label, from ? from : "(null)");
    }
}

/* A DSN with Auto-Submitted: auto-replied and a vacation-like subject stays a DSN. */
static void test_dsn_with_auto_submitted(void **state)
{
    const char *msg = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\n"
                      "Subject: Mail delivery failed: Out of office\n"
                      "Auto-Submitted: auto-replied\n"
                      "X-Autoreply: yes\n"
                      "Content-Type: multipart/report; report-type=delivery-status; boundary=x\n"
                      "\n"
                      "--x\n"
                      "Content-Type: message/delivery-status\n"
                      "\n"
                      "Reporting-MTA: dns; mx.example.org\n"
                      "\n"
                      "Final-Recipient: rfc822; yuki@example.jp\n"
                      "Action: failed\n"
                      "Status: 5.2.2\n"
                      "\n"
                      "--x--\n";
    bp_report r;
    bp_test_parse_str(*state, msg, &r);
    if (r.kind != BP_REPORT_DSN)
        fail_msg("dsn with auto-submitted: kind got %s, want dsn", bp_report_kind_name(r.kind));
}

/* Parse and classify @p msg with the shipped rules; one event expected. */
static void classify_one(bp_arena *arena, const char *msg, bp_report *r, bp_event **ev)
{
    bp_rules *rules = NULL;
    unsigned errs = 0;
    assert_int_equal(bp_rules_new(&rules), BP_OK);
    assert_int_equal(bp_rules_load_builtin(rules, NULL, NULL, &errs), BP_OK);
    bp_test_parse_str(arena, msg, r);
    bp_classify_ctx ctx = {0};
    ctx.rules = rules;
    size_t n = 0;
    assert_int_equal(bp_classify(&ctx, r, arena, ev, &n, NULL), BP_OK);
    assert_int_equal(n, 1);
    bp_rules_free(rules);
}

/* A sender-verification request is an auto-reply of its own family, never a bounce, even
 * when its Subject reads like one. */
static void test_challenge_response(void **state)
{
    static const char *const bodies[] = {
        "Your message has not been delivered yet: your server requires confirmation.\n"
        "Reply to this message to confirm it.\n",
        "Before your message reaches the recipient, please confirm you are a human:\n"
        "https://verify.example.net/c/42\n",
        "This address is protected by a challenge-response system. User unknown senders must\n"
        "confirm their message first.\n",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *msg = bp_arena_printf(*state,
                                    "From: Mail Delivery <mailer-daemon@verify.example.net>\nTo: news@example.com\n"
                                    "Subject: Undelivered mail: confirmation required\n\n%s",
                                    bodies[i]);
        bp_report r;
        bp_event *ev = NULL;
        classify_one(*state, msg, &r, &ev);
        if (r.kind != BP_REPORT_AUTOREPLY || strcmp(r.family, "challenge-response") != 0)
            fail_msg("challenge %zu: got kind %s family %s", i, bp_report_kind_name(r.kind), r.family);
        if (ev[0].type != BP_EVENT_AUTOREPLY)
            fail_msg("challenge %zu: event type %d, want autoreply", i, (int)ev[0].type);
        assert_null(r.reply_text);
    }
}

/* An auto-reply whose words say the address is dead is a bounce; a holiday notice is not. */
static void test_autoreply_verdict(void **state)
{
    static const struct {
        const char *body;
        bp_event_type type;
        const char *category;
    } rows[] = {
        {"That's not a valid user here. Please remove this address.\n", BP_EVENT_BOUNCE, "bad-mailbox"},
        {"This address is no longer in use; write to office@example.org instead.\n", BP_EVENT_BOUNCE,
         "inactive-mailbox"},
        {"I am out of the office until Monday and will answer then.\n", BP_EVENT_AUTOREPLY, NULL},
        {"I am on holiday. The server is full of snow pictures.\n", BP_EVENT_AUTOREPLY, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *msg = bp_arena_printf(*state,
                                    "From: Nora <nora@example.org>\nTo: news@example.com\nSubject: Auto: March\n"
                                    "Auto-Submitted: auto-replied\n\n%s",
                                    rows[i].body);
        bp_report r;
        bp_event *ev = NULL;
        classify_one(*state, msg, &r, &ev);
        if (ev[0].type != rows[i].type)
            fail_msg("row %zu: event type %d, want %d", i, (int)ev[0].type, (int)rows[i].type);
        bp_test_check_str("category", ev[0].category, rows[i].category);
        bp_test_check_str("recipient", ev[0].recipient, "nora@example.org");
    }
}

/* "Auto-Submitted: auto-replied" with the returned original and a status is a bounce, in
 * any language; X-Failed-Recipients likewise. */
static void test_auto_replied_bounce_structure(void **state)
{
    const char *msg = "From: System <system@mail.example.cn>\nTo: news@example.com\nSubject: =?UTF-8?B?6YCA5L+h?=\n"
                      "Auto-Submitted: auto-replied\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                      "Content-Type: text/plain; charset=UTF-8\n\n\xe9\x80\x80\xe4\xbf\xa1 550 5.1.1\n--b\n"
                      "Content-Type: message/rfc822\n\nFrom: news@example.com\nTo: lan@example.cn\n"
                      "Subject: x\n\nhi\n--b--\n";
    bp_report r;
    bp_event *ev = NULL;
    classify_one(*state, msg, &r, &ev);
    if (r.kind != BP_REPORT_TEXT)
        fail_msg("auto-replied with a status: kind %s, want text", bp_report_kind_name(r.kind));
    bp_test_check_str("recipient", ev[0].recipient, "lan@example.cn");
    bp_test_check_str("status", ev[0].status, "5.1.1");
    const char *xfr = "From: Auto <auto@mx.example.org>\nTo: news@example.com\nSubject: Auto: x\n"
                      "Auto-Submitted: auto-replied\nX-Failed-Recipients: ana@example.org\n\n"
                      "Mailbox unavailable.\n";
    classify_one(*state, xfr, &r, &ev);
    if (r.kind != BP_REPORT_TEXT)
        fail_msg("auto-replied with X-Failed-Recipients: kind %s, want text", bp_report_kind_name(r.kind));
}

BP_TEST_MAIN(BP_ARENA_TEST(test_recognition), BP_ARENA_TEST(test_dsn_with_auto_submitted),
             BP_ARENA_TEST(test_challenge_response), BP_ARENA_TEST(test_autoreply_verdict),
             BP_ARENA_TEST(test_auto_replied_bounce_structure))
