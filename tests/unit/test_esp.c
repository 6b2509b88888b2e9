/*
 * test_esp.c - the sending services' JSON event notifications (esp.c): every fixture of
 * fixtures/esp/ is read as the service's events with the report kind, the recipients and the
 * category the service states; the stated category decides over the text and the codes;
 * a message that is not JSON, or JSON no service writes, is left to the other families;
 * wrapped JSON lines are joined; hostile JSON (deep, huge, invalid) is refused quietly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/classify.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/report.h"
#include "bouncepipe/report_events.h"
#include "test_support.h"
#include "test_util.h"

/* Each fixture: the family, kind, blocks, the first block's recipient, action, the category
 * the service states (NULL: the rules decide) and the report's feedback type. */
static const struct {
    const char *file, *family;
    bp_report_kind kind;
    size_t n_blocks;
    const char *rcpt;
    bp_rcpt_action action;
    const char *stated, *feedback;
} rows[] = {
    {"ses-sns-noemail", "amazonses", BP_REPORT_TEXT, 1, "ada@example.org", BP_ACTION_FAILED, "bad-mailbox", NULL},
    {"ses-suppressed-email-protocol", "amazonses", BP_REPORT_TEXT, 1, "carl@example.org", BP_ACTION_FAILED,
     "policy-related", NULL},
    {"ses-transient-mailboxfull", "amazonses", BP_REPORT_TEXT, 2, "dora@example.org", BP_ACTION_FAILED, "quota-issues",
     NULL},
    {"ses-sns-complaint", "amazonses", BP_REPORT_FEEDBACK, 1, "fay@example.org", BP_ACTION_FAILED, NULL, "abuse"},
    {"ses-event-delivery-delay", "amazonses", BP_REPORT_TEXT, 1, "gus@example.org", BP_ACTION_DELAYED, "quota-issues",
     NULL},
    {"sendgrid-event-batch", "sendgrid", BP_REPORT_TEXT, 4, "hal@example.org", BP_ACTION_FAILED, "bad-mailbox", NULL},
    {"sendgrid-spamreport", "sendgrid", BP_REPORT_FEEDBACK, 1, "mia@example.org", BP_ACTION_FAILED, NULL, "abuse"},
    {"mailgun-failed-permanent", "mailgun", BP_REPORT_TEXT, 1, "ned@example.org", BP_ACTION_FAILED, NULL, NULL},
    {"mailgun-suppress-bounce", "mailgun", BP_REPORT_TEXT, 1, "ole@example.org", BP_ACTION_FAILED, "policy-related",
     NULL},
    {"mailgun-failed-temporary", "mailgun", BP_REPORT_TEXT, 1, "pia@example.org", BP_ACTION_DELAYED, NULL, NULL},
    {"mailgun-complained", "mailgun", BP_REPORT_FEEDBACK, 1, "quinn@example.org", BP_ACTION_FAILED, NULL, "abuse"},
    {"postmark-hardbounce", "postmark", BP_REPORT_TEXT, 1, "rex@example.org", BP_ACTION_FAILED, "bad-mailbox", NULL},
    {"postmark-spamcomplaint", "postmark", BP_REPORT_FEEDBACK, 1, "sam@example.org", BP_ACTION_FAILED, NULL, "abuse"},
    {"postmark-delivery", "postmark", BP_REPORT_TEXT, 1, "tia@example.org", BP_ACTION_DELIVERED, NULL, NULL},
    {"postmark-autoresponder", "postmark", BP_REPORT_AUTOREPLY, 1, "uli@example.org", BP_ACTION_UNKNOWN, NULL, NULL},
    {"sparkpost-bounces", "sparkpost", BP_REPORT_TEXT, 2, "vic@example.org", BP_ACTION_FAILED, "bad-mailbox", NULL},
    {"sparkpost-spam-complaint", "sparkpost", BP_REPORT_FEEDBACK, 1, "zoe@example.org", BP_ACTION_FAILED, NULL,
     "abuse"},
};

static void test_fixtures(void **state)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_report r;
        bp_test_parse_fixture(*state, "esp", rows[i].file, &r);
        if (r.kind != rows[i].kind || r.family == NULL || strcmp(r.family, rows[i].family) != 0)
            fail_msg("%s: got kind %s family %s, want %s %s", rows[i].file, bp_report_kind_name(r.kind),
                     r.family ? r.family : "(null)", bp_report_kind_name(rows[i].kind), rows[i].family);
        if (r.n_blocks != rows[i].n_blocks)
            fail_msg("%s: got %zu blocks, want %zu", rows[i].file, r.n_blocks, rows[i].n_blocks);
        bp_test_check_field(rows[i].file, "recipient", r.blocks[0].recipient, rows[i].rcpt);
        bp_test_check_field(rows[i].file, "stated category", r.blocks[0].stated_category, rows[i].stated);
        bp_test_check_field(rows[i].file, "feedback type", r.feedback_type, rows[i].feedback);
        if (r.blocks[0].action != rows[i].action)
            fail_msg("%s: got action %d, want %d", rows[i].file, (int)r.blocks[0].action, (int)rows[i].action);
        bp_arena_reset(*state);
    }
}

/* The recipients of a batch, in order, each with its own event's meaning; events that are
 * not about delivery (opens) are not recipients. */
static void test_sendgrid_batch(void **state)
{
    bp_report r;
    bp_test_parse_fixture(*state, "esp", "sendgrid-event-batch", &r);
    assert_int_equal(r.n_blocks, 4);
    static const char *const want[] = {"hal@example.org", "ida@example.org", "jan@example.org", "kim@example.org"};
    static const bp_rcpt_action act[] = {BP_ACTION_FAILED, BP_ACTION_FAILED, BP_ACTION_DELAYED, BP_ACTION_DELIVERED};
    for (size_t i = 0; i < 4; i++) {
        bp_test_check_field("sendgrid batch", "recipient", r.blocks[i].recipient, want[i]);
        assert_int_equal(r.blocks[i].action, act[i]);
    }
    bp_test_check_str("dropped: SendGrid's own list", r.blocks[1].stated_category, "policy-related");
    bp_test_check_str("deferred: the rules decide", r.blocks[2].stated_category, NULL);
}

/* The service's type decides over the text and the codes, and the event says so. */
static void test_stated_category_decides(void **state)
{
    bp_report r;
    bp_test_parse_fixture(*state, "esp", "ses-sns-noemail", &r);
    bp_classify_ctx ctx = {0};
    ctx.explain = 1;
    bp_event *ev = NULL;
    bp_explain *ex = NULL;
    size_t n = 0;
    assert_int_equal(bp_classify(&ctx, &r, *state, &ev, &n, &ex), BP_OK);
    assert_int_equal(n, 1);
    bp_test_check_str("category", ev[0].category, "bad-mailbox");
    bp_test_check_str("rule", ev[0].rule, "amazonses:NoEmail");
    assert_int_equal(ex[0].category_step, BP_CATEGORY_STATED);
    assert_int_equal(ev[0].action, BP_ACT_SUPPRESS);
}

/* Text that is not a service's JSON is left to the other families. */
static void test_not_esp(void **state)
{
    static const char *const msgs[] = {
        /* JSON, but no service's event */
        "From: a@example.com\nTo: b@example.org\nSubject: data\n\n{\"event\":\"bounce\",\"who\":\"c@example.org\"}\n",
        /* a brace, not JSON */
        "From: a@example.com\nTo: b@example.org\nSubject: code\n\n{ this is not json, c@example.org }\n",
        /* a JSON string, not an object */
        "From: a@example.com\nTo: b@example.org\nSubject: s\n\n[\"c@example.org\"]\n",
        /* an SNS envelope whose Message is no JSON */
        "From: a@example.com\nTo: b@example.org\nSubject: s\n\n{\"Type\":\"Notification\",\"Message\":\"hello\"}\n",
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        bp_report r;
        bp_test_parse_str(*state, msgs[i], &r);
        if (r.kind != BP_REPORT_NONE)
            fail_msg("message %zu: got kind %s, want none", i, bp_report_kind_name(r.kind));
    }
}

/* Long JSON lines wrapped by a mail system (line ends inside strings) are joined. */
static void test_wrapped_lines(void **state)
{
    const char *msg =
        "From: AWS Notifications <no-reply@sns.example.com>\nTo: b@example.com\nSubject: n\n\n"
        "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":\"Gen\n"
        "eral\",\"bouncedRecipients\":[{\"emailAddress\":\"wrapped@exam\nple.org\",\"status\":\"5.1.1\"}]},"
        "\"mail\":{\"source\":\"b@example.com\"}}\n";
    bp_report r;
    bp_test_parse_one_block(*state, msg, BP_REPORT_TEXT, "wrapped@example.org", &r);
}

/* Deep, invalid or oversized JSON is refused without harm. */
static void test_hostile(void **state)
{
    size_t depth = 200000;
    size_t cap = 2 * depth + 256;
    char *msg = malloc(cap);
    assert_non_null(msg);
    size_t n = (size_t)snprintf(msg, cap, "From: a@example.com\nTo: b@example.org\nSubject: deep\n\n");
    for (size_t i = 0; i < depth; i++)
        msg[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        msg[n++] = ']';
    msg[n] = '\0';
    bp_report r;
    assert_int_equal(bp_test_parse_report(*state, msg, n, NULL, &r), BP_OK);
    assert_int_equal(r.n_blocks, 0);
    /* many events: at most BP_MAX_RECIPIENTS blocks */
    bp_arena_reset(*state);
    const char *one = "{\"event\":\"bounce\",\"email\":\"x@example.org\",\"sg_event_id\":\"1\"},\n";
    size_t events = 3000;
    char *big = malloc(events * strlen(one) + 256);
    assert_non_null(big);
    n = (size_t)sprintf(big, "From: a@example.com\nTo: b@example.org\nSubject: many\n\n[");
    for (size_t i = 0; i < events; i++)
        n += (size_t)sprintf(big + n, "%s", one);
    big[n - 2] = ']';
    big[n - 1] = '\0';
    n--;
    assert_int_equal(bp_test_parse_report(*state, big, n, NULL, &r), BP_OK);
    assert_int_equal(r.n_blocks, BP_MAX_RECIPIENTS);
    free(big);
    free(msg);
}

BP_TEST_MAIN(BP_ARENA_TEST(test_fixtures), BP_ARENA_TEST(test_sendgrid_batch),
             BP_ARENA_TEST(test_stated_category_decides), BP_ARENA_TEST(test_not_esp),
             BP_ARENA_TEST(test_wrapped_lines), BP_ARENA_TEST(test_hostile))
