/*
 * test_policy.c - the default action table, overrides (bp_policy_set, and bp_policy_load with
 * the settings of a config file's [policy] group), and the decisions nothing may change:
 * not-spam and auth-failure complaints, delays, auto-replies and deliveries never suppress.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/policy.h"
#include "test_support.h"

static bp_action bounce(const bp_policy *p, const char *category, int final)
{
    return bp_policy_decide(p, BP_EVENT_BOUNCE, category, NULL, final, NULL);
}

static bp_action complaint(const bp_policy *p, const char *type)
{
    return bp_policy_decide(p, BP_EVENT_COMPLAINT, NULL, type, 1, NULL);
}

static void test_defaults(void **state)
{
    (void)state;
    bp_policy p;
    bp_policy_default(&p);
    /* each action with the categories it is the default of (lists end at NULL) */
    static const struct {
        bp_action want;
        const char *categories[10];
    } defaults[] = {
        {BP_ACT_SUPPRESS, {"bad-mailbox", "bad-domain", "inactive-mailbox"}},
        {BP_ACT_SOFT,
         {"quota-issues", "message-expired", "no-answer-from-host", "routing-errors", "relaying-issues",
          "bad-connection", "other", "no-such-category" /* as "other" */}},
        {BP_ACT_IGNORE,
         {"policy-related", "spam-related", "virus-related", "content-related", "invalid-sender", "bad-configuration",
          "protocol-errors"}},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        for (const char *const *c = defaults[i].categories; *c != NULL; c++) {
            bp_action got = bounce(&p, *c, 1);
            if (got != defaults[i].want)
                fail_msg("%s: got %s, want %s", *c, bp_action_name(got), bp_action_name(defaults[i].want));
        }
    /* the step that decided (a temporary failure of a suppressing category only counts) */
    static const struct {
        bp_event_type type;
        const char *category, *feedback;
        int final;
        bp_action want;
        bp_policy_step why;
    } steps[] = {
        {BP_EVENT_BOUNCE, "bad-mailbox", NULL, 0, BP_ACT_SOFT, BP_POLICY_TEMPORARY},
        {BP_EVENT_BOUNCE, "bad-mailbox", NULL, 1, BP_ACT_SUPPRESS, BP_POLICY_SUPPRESS},
        {BP_EVENT_BOUNCE, "quota-issues", NULL, 1, BP_ACT_SOFT, BP_POLICY_SOFT},
        {BP_EVENT_BOUNCE, "spam-related", NULL, 1, BP_ACT_IGNORE, BP_POLICY_IGNORE},
        {BP_EVENT_COMPLAINT, NULL, "abuse", 1, BP_ACT_SUPPRESS, BP_POLICY_COMPLAINT_SUPPRESS},
        {BP_EVENT_COMPLAINT, NULL, "not-spam", 1, BP_ACT_IGNORE, BP_POLICY_COMPLAINT_RECORD},
        {BP_EVENT_DELAY, "bad-mailbox", NULL, 0, BP_ACT_IGNORE, BP_POLICY_DELAY},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        bp_policy_step why = BP_POLICY_SUPPRESS;
        bp_action got = bp_policy_decide(&p, steps[i].type, steps[i].category, steps[i].feedback, steps[i].final, &why);
        if (got != steps[i].want || why != steps[i].why)
            fail_msg("step %zu (%s): got %s by step %d, want %s by step %d", i,
                     steps[i].category ? steps[i].category : steps[i].feedback, bp_action_name(got), (int)why,
                     bp_action_name(steps[i].want), (int)steps[i].why);
    }
    static const char *const suppressing[] = {"abuse", "fraud", "virus", "other", "opt-out", "unheard-of"};
    for (size_t i = 0; i < sizeof(suppressing) / sizeof(suppressing[0]); i++)
        assert_int_equal(complaint(&p, suppressing[i]), BP_ACT_SUPPRESS);
    assert_int_equal(complaint(&p, "not-spam"), BP_ACT_IGNORE);
    assert_int_equal(complaint(&p, "auth-failure"), BP_ACT_IGNORE);
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_DELAY, "bad-mailbox", NULL, 1, NULL), BP_ACT_IGNORE);
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_AUTOREPLY, NULL, NULL, 1, NULL), BP_ACT_IGNORE);
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_DELIVERED, NULL, NULL, 1, NULL), BP_ACT_IGNORE);
    assert_int_equal(p.soft_count, 5);
    assert_int_equal(p.soft_days, 3);
    assert_int_equal(p.soft_window, 30);
}

static void test_set(void **state)
{
    (void)state;
    bp_policy p;
    bp_policy_default(&p);
    assert_int_equal(bp_policy_set(&p, "quota-issues", BP_ACT_IGNORE), BP_OK);
    assert_int_equal(bounce(&p, "quota-issues", 1), BP_ACT_IGNORE);
    assert_int_equal(bp_policy_set(&p, "spam-related", BP_ACT_SOFT), BP_OK);
    assert_int_equal(bounce(&p, "spam-related", 1), BP_ACT_SOFT);
    assert_int_equal(bp_policy_set(&p, "complaint:abuse", BP_ACT_IGNORE), BP_OK);
    assert_int_equal(complaint(&p, "abuse"), BP_ACT_IGNORE);
    /* refused: the complaint types that say nothing against the address */
    assert_int_equal(bp_policy_set(&p, "complaint:not-spam", BP_ACT_SUPPRESS), BP_ERR_CONFIG);
    assert_int_equal(bp_policy_set(&p, "complaint:auth-failure", BP_ACT_SUPPRESS), BP_ERR_CONFIG);
    assert_int_equal(complaint(&p, "not-spam"), BP_ACT_IGNORE);
    /* but they may be counted */
    assert_int_equal(bp_policy_set(&p, "complaint:auth-failure", BP_ACT_SOFT), BP_OK);
    assert_int_equal(complaint(&p, "auth-failure"), BP_ACT_SOFT);
    /* unknown names and the event types outside the table */
    assert_int_equal(bp_policy_set(&p, "bad-mailboxes", BP_ACT_SUPPRESS), BP_ERR_CONFIG);
    assert_int_equal(bp_policy_set(&p, "delay", BP_ACT_SUPPRESS), BP_ERR_CONFIG);
    assert_int_equal(bp_policy_set(&p, "autoreply", BP_ACT_SUPPRESS), BP_ERR_CONFIG);
    assert_int_equal(bp_policy_set(&p, "bad-mailbox", BP_ACT_NONE), BP_ERR_CONFIG);
    /* even "everything suppresses" leaves delays and auto-replies alone */
    assert_int_equal(bp_policy_set(&p, "other", BP_ACT_SUPPRESS), BP_OK);
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_DELAY, "other", NULL, 1, NULL), BP_ACT_IGNORE);
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_AUTOREPLY, NULL, NULL, 1, NULL), BP_ACT_IGNORE);
}

/* Load the [policy] lines "key = value" of @config (as the config reader hands them down) into a
 * fresh default policy; returns the status, *error (or NULL). */
static bp_status load(const char *config, bp_policy *p, char **error)
{
    char text[1024], *save = NULL;
    bp_policy_setting settings[16];
    size_t n = 0;
    int in_policy = 0;
    snprintf(text, sizeof(text), "%s", config);
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (line[0] == '[')
            in_policy = strcmp(line, "[policy]") == 0;
        else if (in_policy && eq != NULL && n < 16) {
            char *end = eq;
            while (end > line && end[-1] == ' ')
                end--;
            *end = '\0';
            settings[n].key = line;
            settings[n++].value = eq + 1; /* the blanks around it are bp_policy_load()'s */
        }
    }
    bp_policy_default(p);
    return bp_policy_load(p, settings, n, error);
}

static void test_load(void **state)
{
    (void)state;
    bp_policy p;
    char *error = NULL;
    assert_int_equal(load("[policy]\n"
                          "quota-issues = ignore\n"
                          "spam-related = soft\n"
                          "complaint:opt-out = ignore\n"
                          "complaint:not-spam = soft\n"
                          "soft_count = 3\n"
                          "soft_days = 2\n"
                          "soft_window = 14\n"
                          "[store]\n"
                          "path = /var/lib/bouncepipe.db\n",
                          &p, &error),
                     BP_OK);
    assert_null(error);
    assert_int_equal(bounce(&p, "quota-issues", 1), BP_ACT_IGNORE);
    assert_int_equal(bounce(&p, "spam-related", 1), BP_ACT_SOFT);
    assert_int_equal(bounce(&p, "bad-mailbox", 1), BP_ACT_SUPPRESS); /* untouched */
    assert_int_equal(complaint(&p, "opt-out"), BP_ACT_IGNORE);
    assert_int_equal(complaint(&p, "not-spam"), BP_ACT_SOFT);
    assert_int_equal(p.soft_count, 3);
    assert_int_equal(p.soft_days, 2);
    assert_int_equal(p.soft_window, 14);

    /* no [policy] group: the defaults stay */
    assert_int_equal(load("[store]\npath = x.db\n", &p, &error), BP_OK);
    assert_int_equal(bounce(&p, "quota-issues", 1), BP_ACT_SOFT);
    assert_int_equal(bp_policy_load(&p, NULL, 0, &error), BP_OK);
    assert_null(error);
}

static void test_load_errors(void **state)
{
    (void)state;
    static const struct {
        const char *config;
        const char *key_named; /* the message must name the key */
    } rows[] = {
        {"[policy]\ncomplaint:not-spam = suppress\n", "complaint:not-spam"},
        {"[policy]\ncomplaint:auth-failure = suppress\n", "complaint:auth-failure"},
        {"[policy]\ndelay = suppress\n", "delay"},
        {"[policy]\nbad-mailbox = delete\n", "bad-mailbox"},
        {"[policy]\nbad_mailbox = suppress\n", "bad_mailbox"},
        {"[policy]\nsoft_count = 0\n", "soft_count"},
        {"[policy]\nsoft_days = -2\n", "soft_days"},
        {"[policy]\nsoft_window = 10 days\n", "soft_window"},
        {"[policy]\nsoft_days = 40\n", "soft_days"}, /* more than the 30-day window */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_policy p;
        char *error = NULL;
        bp_status st = load(rows[i].config, &p, &error);
        if (st != BP_ERR_CONFIG)
            fail_msg("row %zu: got %s, want BP_ERR_CONFIG", i, bp_status_to_string(st));
        if (error == NULL || strstr(error, rows[i].key_named) == NULL)
            fail_msg("row %zu: message \"%s\" does not name %s", i, error ? error : "(null)", rows[i].key_named);
        free(error);
    }
    /* all or nothing: a bad key late in the group leaves earlier good ones unapplied */
    bp_policy p;
    char *error = NULL;
    assert_int_equal(
        load("[policy]\nquota-issues = ignore\nsoft_count = 4\ncomplaint:not-spam = suppress\n", &p, &error),
        BP_ERR_CONFIG);
    free(error);
    assert_int_equal(bounce(&p, "quota-issues", 1), BP_ACT_SOFT);
    assert_int_equal(p.soft_count, 5);
    assert_int_equal(complaint(&p, "not-spam"), BP_ACT_IGNORE);
}

/* Custom categories (PowerMTA's <bounce-category-patterns> allow the operator's own names):
 * soft without a [policy] entry, whatever "other" says; an entry of that name decides; a name
 * that is one of ours mistyped, or an event type, is refused. */
static void test_custom_categories(void **state)
{
    (void)state;
    bp_policy p;
    bp_policy_default(&p);
    assert_int_equal(bp_policy_set(&p, "other", BP_ACT_SUPPRESS), BP_OK);
    bp_policy_step why = BP_POLICY_SUPPRESS;
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_BOUNCE, "greylisting", NULL, 1, &why), BP_ACT_SOFT);
    assert_int_equal(why, BP_POLICY_CUSTOM);
    assert_int_equal(bp_policy_set(&p, "greylisting", BP_ACT_IGNORE), BP_OK);
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_BOUNCE, "greylisting", NULL, 1, &why), BP_ACT_IGNORE);
    assert_int_equal(why, BP_POLICY_IGNORE);
    assert_int_equal(bp_policy_set(&p, "frozen_mailbox", BP_ACT_SUPPRESS), BP_OK);
    assert_int_equal(bp_policy_decide(&p, BP_EVENT_BOUNCE, "frozen_mailbox", NULL, 0, &why), BP_ACT_SOFT);
    assert_int_equal(why, BP_POLICY_TEMPORARY);
    assert_int_equal(bp_policy_set(&p, "bad-mailbx", BP_ACT_IGNORE), BP_ERR_CONFIG);
    assert_int_equal(bp_policy_set(&p, "quota_issues", BP_ACT_IGNORE), BP_ERR_CONFIG);
    assert_int_equal(bp_policy_set(&p, "Greylisting", BP_ACT_IGNORE), BP_ERR_CONFIG);
    assert_int_equal(bp_policy_set(&p, "delivered", BP_ACT_SUPPRESS), BP_ERR_CONFIG);
}

BP_TEST_MAIN(cmocka_unit_test(test_defaults), cmocka_unit_test(test_set), cmocka_unit_test(test_load),
             cmocka_unit_test(test_load_errors), cmocka_unit_test(test_custom_categories))
