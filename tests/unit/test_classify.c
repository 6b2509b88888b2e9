/*
 * test_classify.c - category from codes (RFC 3463 table, SMTP codes), text beats a generic
 * code, block lists never suppress, the layers of bp_classify_failure() (the SMTP stage in
 * the rules' scopes, the report's passages, local delivery, the sending MTA's verdict, a
 * generic status without text, the guards of the parties), and what bp_classify() puts into
 * events and explain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/classify.h"
#include "bouncepipe/report_events.h"
#include "test_support.h"
#include "test_util.h"

static bp_rules *builtin;

static int setup(void **state)
{
    (void)state;
    builtin = bp_test_builtin_rules();
    return builtin == NULL;
}

static int teardown(void **state)
{
    (void)state;
    bp_rules_free(builtin);
    return 0;
}

static void test_codes(void **state)
{
    (void)state;
    static const struct {
        const char *status, *code, *want;
    } rows[] = {
        {"5.1.1", "550", "bad-mailbox"},
        {"5.1.2", NULL, "bad-domain"},
        {"5.1.10", NULL, "bad-domain"},
        {"5.2.2", "552", "quota-issues"},
        {"5.2.1", NULL, "inactive-mailbox"},
        {"4.4.7", NULL, "message-expired"},
        {"5.7.1", "550", "policy-related"},
        {"5.7.26", NULL, "policy-related"},
        {"5.7.9", NULL, "policy-related"},
        {"5.7.27", NULL, "invalid-sender"},
        {"5.0.0", "550", "other"},
        {"5.0.0", "552", "quota-issues"}, /* generic status: the code */
        {NULL, "421", "bad-connection"},
        {NULL, "556", "bad-domain"},
        /* an addressing detail outside RFC 3463's registry is a vendor's, and may be about the
         * sender (Exchange Online's 5.1.90: the sender's daily recipient limit) */
        {"5.1.99", NULL, "other"},
        {"5.1.90", "550", "other"},
        /* RFC 5321's 553 is relaying and policy refusals too (qmail-smtpd's rcpthosts,
         * sendmail, MessageLabs): the text decides, the bare code suppresses nothing */
        {NULL, "553", "other"},
        {NULL, "551", "bad-mailbox"},
        {"5.9.9", NULL, "other"}, /* unknown subject */
        {NULL, NULL, "other"},
        {"5.3", NULL, "other"}, /* malformed */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *got = bp_category_from_codes(rows[i].status, rows[i].code);
        if (strcmp(got, rows[i].want) != 0)
            fail_msg("%s/%s: got %s, want %s", rows[i].status ? rows[i].status : "-", rows[i].code ? rows[i].code : "-",
                     got, rows[i].want);
    }
}

static void test_text_beats_code(void **state)
{
    static const struct {
        const char *text, *status, *code, *want, *rule, *blocklist;
    } rows[] = {
        {"550 5.1.1 <jdoe@example.com>: Recipient address rejected: blocked using zen.spamhaus.org", "5.1.1", "550",
         "spam-related", "bl-spamhaus-zen", "spamhaus-zen"},
        {"550 5.1.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service "
         "provider since part of their network is on our block list (S3150).",
         "5.1.1", "550", "spam-related", "bl-microsoft", "microsoft"},
        {"550 5.1.1 User unknown; rejected by SPF policy", "5.1.1", "550", "policy-related", "rep-spf", NULL},
        {"550 Requested action not taken: mailbox unavailable", "5.0.0", "550", "bad-mailbox",
         "gen-mailbox-unavailable", NULL},
        /* no rule: the code table decides, and names itself as the rule */
        {"550 5.1.1 something nobody wrote a rule for", "5.1.1", "550", "bad-mailbox", "status:5.1.1", NULL},
        {"550 something nobody wrote a rule for", "5.0.0", "550", "other", "smtp:550", NULL},
        {"something nobody wrote a rule for", NULL, NULL, "other", "default", NULL},
    };
    bp_arena *arena = *state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *rule = NULL, *bl = NULL;
        const char *got =
            bp_classify_text(builtin, arena, rows[i].text, rows[i].status, rows[i].code, NULL, &rule, &bl);
        if (strcmp(got, rows[i].want) != 0)
            fail_msg("row %zu: got %s, want %s", i, got, rows[i].want);
        if ((rows[i].rule == NULL) != (rule == NULL) || (rule != NULL && strcmp(rule, rows[i].rule) != 0))
            fail_msg("row %zu: rule %s, want %s", i, rule ? rule : "(none)", rows[i].rule ? rows[i].rule : "(none)");
        if ((rows[i].blocklist == NULL) != (bl == NULL) || (bl != NULL && strcmp(bl, rows[i].blocklist) != 0))
            fail_msg("row %zu: blocklist %s, want %s", i, bl ? bl : "(none)",
                     rows[i].blocklist ? rows[i].blocklist : "(none)");
    }
}

/* The layers of bp_classify_failure() (issue 13): each row one failure as the report stage
 * read it, and the category, deciding id, layer and guard it must get. */
static void test_layers(void **state)
{
    static const struct {
        const char *label;
        bp_failure f;
        const char *category, *rule;
        bp_verdict_step step;
        bp_verdict_guard guard;
    } rows[] = {
        /* the stage scopes the rules: a mailbox verdict at RCPT whatever its X.2/X.7 code */
        {"x.7.1 user unknown, no stage: a filter",
         {"550 5.7.1 No such user!", "5.7.1", "550", NULL, BP_SMTP_NONE, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "policy-related",
         "gen-filtered-user-unknown",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        {"x.7.1 user unknown at RCPT: the mailbox",
         {"550 5.7.1 No such user!", "5.7.1", "550", NULL, BP_SMTP_RCPT, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "bad-mailbox",
         "gen-user-unknown",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        {"qmail badrcptto #5.7.1 at RCPT",
         {"553 sorry, your envelope recipient is in my badrcptto list (#5.7.1)", "5.7.1", "553", NULL, BP_SMTP_RCPT,
          NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "bad-mailbox",
         "gen-user-unknown",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        /* after DATA a mailbox phrase is a filter's, unless the status is X.1.x */
        {"user unknown after DATA",
         {"550 No such user here", NULL, "550", NULL, BP_SMTP_DATA, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "policy-related",
         "gen-user-unknown-after-data",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        {"user unknown after DATA under 5.1.1",
         {"550 5.1.1 No such user here", "5.1.1", "550", NULL, BP_SMTP_DATA, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "bad-mailbox",
         "gen-user-unknown",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        /* a carrier's reception filter, unless the reply came at RCPT */
        {"carrier user unknown, no stage",
         {"550 <k@ezweb.ne.jp>: User unknown", "5.0.0", "550", "lsean.ezweb.ne.jp", BP_SMTP_NONE, NULL, NULL, 0,
          BP_PARTY_RECIPIENT},
         "policy-related",
         "jp-carrier-filter",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        {"carrier user unknown at RCPT",
         {"550 <k@ezweb.ne.jp>: User unknown", "5.0.0", "550", "lsean.ezweb.ne.jp", BP_SMTP_RCPT, NULL, NULL, 0,
          BP_PARTY_RECIPIENT},
         "bad-mailbox",
         "gen-user-unknown",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        /* the guards: before the recipient was named, or naming someone else */
        {"a mailbox verdict at MAIL is the sender's",
         {"550 5.1.1 User unknown", "5.1.1", "550", NULL, BP_SMTP_MAIL, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "invalid-sender",
         "gen-verdict-at-mail-from",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        {"a code-table verdict at MAIL too",
         {"553 5.1.1 Mailbox does not exist", "5.1.1", "553", NULL, BP_SMTP_MAIL, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "invalid-sender",
         "stage:MAIL",
         BP_VERDICT_RULE,
         BP_GUARD_STAGE},
        {"a domain verdict at CONNECT",
         {"554 5.7.1 Domain not found", "5.7.1", "554", NULL, BP_SMTP_CONNECT, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "policy-related",
         "stage:CONNECT",
         BP_VERDICT_RULE,
         BP_GUARD_STAGE},
        {"a reply naming the sender",
         {"550 5.1.2 Domain lists.example.org does not exist", "5.1.2", "550", NULL, BP_SMTP_RCPT, NULL, NULL, 0,
          BP_PARTY_SENDER},
         "invalid-sender",
         "party:sender",
         BP_VERDICT_RULE,
         BP_GUARD_SENDER},
        {"a reply naming the sending host",
         {"550 5.1.2 Host out1.example.com not found", "5.1.2", "550", NULL, BP_SMTP_RCPT, NULL, NULL, 0,
          BP_PARTY_SENDING_HOST},
         "policy-related",
         "party:sending-host",
         BP_VERDICT_STATUS,
         BP_GUARD_SENDING_HOST},
        {"a policy verdict at MAIL stays",
         {"550 5.7.1 Access denied", "5.7.1", "550", NULL, BP_SMTP_MAIL, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "policy-related",
         "gen-policy",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        /* the report's passages when the reply says nothing and its codes are generic */
        {"passages under a generic status",
         {NULL, "5.0.0", NULL, NULL, BP_SMTP_NONE,
          "Your message wasn't delivered to k@example.net because the address couldn't be found.", NULL, 0,
          BP_PARTY_RECIPIENT},
         "bad-mailbox",
         "gen-user-unknown",
         BP_VERDICT_PASSAGES,
         BP_GUARD_NONE},
        {"no passages under a specific status",
         {"550 5.2.2 Sorry", "5.2.2", "550", NULL, BP_SMTP_NONE, "k@example.net: no such user", NULL, 0,
          BP_PARTY_RECIPIENT},
         "quota-issues",
         "status:5.2.2",
         BP_VERDICT_STATUS,
         BP_GUARD_NONE},
        /* when no rule knew the words */
        {"a local delivery program",
         {"73", "5.3.0", NULL, NULL, BP_SMTP_NONE, NULL, NULL, 1, BP_PARTY_RECIPIENT},
         "bad-configuration",
         "local-delivery",
         BP_VERDICT_LOCAL_DELIVERY,
         BP_GUARD_NONE},
        {"mail.local's unknown user is still a mailbox verdict",
         {"mail.local: unknown user: k", "5.1.1", NULL, NULL, BP_SMTP_NONE, NULL, NULL, 1, BP_PARTY_RECIPIENT},
         "bad-mailbox",
         "gen-user-unknown",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        {"the sending MTA's own verdict beats the code table",
         {"550 Sorry", "5.0.0", "550", NULL, BP_SMTP_NONE, NULL, "spam-related", 0, BP_PARTY_RECIPIENT},
         "spam-related",
         "mta:spam-related",
         BP_VERDICT_MTA,
         BP_GUARD_NONE},
        {"but not a rule",
         {"550 5.1.1 User unknown", "5.1.1", "550", NULL, BP_SMTP_NONE, NULL, "other", 0, BP_PARTY_RECIPIENT},
         "bad-mailbox",
         "gen-user-unknown",
         BP_VERDICT_RULE,
         BP_GUARD_NONE},
        {"an unknown verdict is no verdict",
         {"550 Sorry", "5.0.0", "550", NULL, BP_SMTP_NONE, NULL, "mailbox-gone", 0, BP_PARTY_RECIPIENT},
         "other",
         "smtp:550",
         BP_VERDICT_SMTP,
         BP_GUARD_NONE},
        {"a generic x.7.0 without any text is counted",
         {NULL, "5.7.0", NULL, NULL, BP_SMTP_NONE, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "other",
         "status:5.7.0",
         BP_VERDICT_GENERIC,
         BP_GUARD_NONE},
        {"a generic x.5.0 with only codes too",
         {"554 5.5.0", "5.5.0", "554", NULL, BP_SMTP_NONE, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "other",
         "status:5.5.0",
         BP_VERDICT_GENERIC,
         BP_GUARD_NONE},
        {"a specific x.7.1 without text is the table's",
         {NULL, "5.7.1", NULL, NULL, BP_SMTP_NONE, NULL, NULL, 0, BP_PARTY_RECIPIENT},
         "policy-related",
         "status:5.7.1",
         BP_VERDICT_STATUS,
         BP_GUARD_NONE},
    };
    bp_arena *arena = *state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_verdict v;
        const char *got = bp_classify_failure(builtin, arena, &rows[i].f, &v);
        if (strcmp(got, rows[i].category) != 0 || strcmp(v.rule, rows[i].rule) != 0 || v.guard != rows[i].guard ||
            (rows[i].guard == BP_GUARD_NONE && v.step != rows[i].step))
            fail_msg("%s: got %s (%s, step %d, guard %d), want %s (%s, step %d, guard %d)", rows[i].label, got, v.rule,
                     (int)v.step, (int)v.guard, rows[i].category, rows[i].rule, (int)rows[i].step, (int)rows[i].guard);
        if (v.guard != BP_GUARD_NONE &&
            (v.guarded_category == NULL || !bp_category_is_recipient_verdict(v.guarded_category)))
            fail_msg("%s: a guard that replaced no recipient verdict (%s)", rows[i].label,
                     v.guarded_category ? v.guarded_category : "(null)");
    }
}

/* One DSN block, as the report parsers leave it. */
static void one_block_report(bp_report *r, bp_rcpt_block *b, const char *rcpt, const char *status, const char *code,
                             const char *diag)
{
    memset(r, 0, sizeof(*r));
    memset(b, 0, sizeof(*b));
    r->kind = BP_REPORT_DSN;
    r->family = "dsn";
    r->reporting_mta = "mx.example.net";
    b->recipient = rcpt;
    b->recipient_from = BP_FROM_FINAL_RECIPIENT;
    b->action = BP_ACTION_FAILED;
    b->status = status;
    b->smtp_code = code;
    b->diagnostic = diag;
    b->part_index = 2;
    b->field = "Final-Recipient";
    r->blocks = b;
    r->n_blocks = 1;
}

static void test_classify_explain(void **state)
{
    bp_arena *arena = *state;
    bp_report r;
    bp_rcpt_block b;
    one_block_report(&r, &b, "jdoe@example.com", "5.1.1", "550",
                     "550 5.1.1 <jdoe@example.com>: Recipient address rejected: User unknown; client [192.0.2.7] "
                     "blocked using zen.spamhaus.org");
    bp_classify_ctx ctx = {0};
    ctx.rules = builtin;
    ctx.explain = 1;
    ctx.source = "test";
    ctx.envelope_rcpt = "bounces-jdoe=example.com@bounces.example.org";
    bp_event *ev = NULL;
    bp_explain *ex = NULL;
    size_t n = 0;
    assert_int_equal(bp_classify(&ctx, &r, arena, &ev, &n, &ex), BP_OK);
    assert_int_equal(n, 1);
    assert_non_null(ex);
    /* a good address is never suppressed for a block-list rejection */
    assert_int_equal(ev[0].type, BP_EVENT_BOUNCE);
    assert_string_equal(ev[0].category, "spam-related");
    assert_int_equal(ev[0].action, BP_ACT_IGNORE);
    assert_string_equal(ev[0].rule, "bl-spamhaus-zen");
    assert_string_equal(ev[0].blocklist, "spamhaus-zen");
    /* explain: every matching rule, the winner first, with spans into the diagnostic */
    assert_true(ex[0].n_matches >= 2);
    assert_string_equal(ex[0].matches[0].rule->id, "bl-spamhaus-zen");
    int saw_mailbox_rule = 0;
    for (size_t i = 0; i < ex[0].n_matches && i < BP_EXPLAIN_MAX_MATCHES; i++) {
        const bp_rule_match *m = &ex[0].matches[i];
        assert_true(m->start <= m->end && m->end <= strlen(b.diagnostic));
        saw_mailbox_rule |= strcmp(m->rule->category, "bad-mailbox") == 0;
    }
    assert_true(saw_mailbox_rule); /* the losing mailbox verdict is shown too */
    assert_int_equal(strncmp(b.diagnostic + ex[0].matches[0].start, "[192.0.2.7] blocked using zen.spamhaus", 38), 0);
    assert_int_equal(ex[0].category_step, BP_CATEGORY_RULE);
    assert_true(ex[0].had_diagnostic);
    assert_string_equal(ex[0].codes_category, "bad-mailbox"); /* what the codes alone would say */
    assert_int_equal(ex[0].action_step, BP_POLICY_IGNORE);
    assert_string_equal(ex[0].field, "Final-Recipient");
    assert_int_equal(ex[0].part_index, 2);
    assert_string_equal(ex[0].verp_address, "jdoe@example.com");
    assert_int_equal(ex[0].verp_disagrees, 0);

    /* the same address with a plain user-unknown text is suppressed, by a rule */
    one_block_report(&r, &b, "jdoe@example.com", "5.1.1", "550",
                     "550 5.1.1 <jdoe@example.com>: Recipient address rejected: User unknown in local recipient table");
    assert_int_equal(bp_classify(&ctx, &r, arena, &ev, &n, &ex), BP_OK);
    assert_string_equal(ev[0].category, "bad-mailbox");
    assert_int_equal(ev[0].action, BP_ACT_SUPPRESS);
    assert_null(ev[0].blocklist);

    /* no text: the code decides, and the rule says so */
    one_block_report(&r, &b, "jdoe@example.com", "4.2.2", NULL, NULL);
    b.action = BP_ACTION_DELAYED;
    assert_int_equal(bp_classify(&ctx, &r, arena, &ev, &n, &ex), BP_OK);
    assert_int_equal(ev[0].type, BP_EVENT_DELAY);
    assert_string_equal(ev[0].category, "quota-issues");
    assert_string_equal(ev[0].rule, "status:4.2.2");
    assert_int_equal(ev[0].action, BP_ACT_IGNORE);
    assert_int_equal(ex[0].category_step, BP_CATEGORY_STATUS);
    assert_false(ex[0].had_diagnostic);
    assert_int_equal(ex[0].action_step, BP_POLICY_DELAY);
    assert_int_equal(ex[0].n_matches, 0);
}

/* A family's default "unless RCPT" (a carrier's prose notice) yields to the codes when the
 * report says the recipient's SMTP stage was RCPT, and decides otherwise. */
static void test_family_default_and_stage(void **state)
{
    bp_arena *arena = *state;
    bp_report r;
    bp_rcpt_block b;
    bp_classify_ctx ctx = {0};
    ctx.rules = builtin;
    ctx.source = "test";
    bp_event *ev = NULL;
    size_t n = 0;
    one_block_report(&r, &b, "k@ezweb.ne.jp", NULL, "550", "550 Sorry");
    r.kind = BP_REPORT_TEXT;
    r.family = "ezweb";
    b.default_category = "policy-related";
    b.default_unless_rcpt = 1;
    assert_int_equal(bp_classify(&ctx, &r, arena, &ev, &n, NULL), BP_OK);
    assert_string_equal(ev[0].category, "policy-related");
    assert_string_equal(ev[0].rule, "family:ezweb");
    assert_null(ev[0].smtp_command);
    b.smtp_command = BP_SMTP_RCPT;
    assert_int_equal(bp_classify(&ctx, &r, arena, &ev, &n, NULL), BP_OK);
    assert_string_equal(ev[0].rule, "smtp:550");
    assert_string_equal(ev[0].smtp_command, "RCPT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),         BP_ARENA_TEST(test_text_beats_code),          BP_ARENA_TEST(test_layers),
        BP_ARENA_TEST(test_classify_explain), BP_ARENA_TEST(test_family_default_and_stage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
