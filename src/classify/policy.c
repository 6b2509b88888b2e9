/*
 * policy.c - the default action table of DESIGN.md and its overrides.
 *
 * bp_policy_decide(): delays, auto-replies and deliveries are always ignored; a bounce whose
 * category suppresses but that is not final (a temporary failure) is counted as soft; every
 * other decision is a table look-up; a category not in the table is a custom one of the
 * operator's rule files (PowerMTA allows them in <bounce-category-patterns>): soft.  It says which
 * step decided as a bp_policy_step; words for people are the CLI's.
 * bp_policy_set(): one override; complaint types not-spam and auth-failure can never be made
 * to suppress (they say nothing against the address), and delays, auto-replies and
 * deliveries are not in the table at all, so nothing can make them act.
 * bp_policy_load(): the settings of the config file's [policy] group, all or nothing: on a
 * bad one the policy is left as it was and *error (malloc'ed, the caller frees it) names the
 * key.  The file itself is read by the CLI (src/cli/config.c); nothing here knows of GLib's
 * key files.
 */
#include "bouncepipe/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/rules.h" /* bp_category_valid(), bp_category_custom() */
#include "bouncepipe/store.h" /* the soft-bounce defaults: defined at the store, below classify */

static const struct {
    const char *name;
    bp_action action;
} defaults[] = {
    {"bad-mailbox", BP_ACT_SUPPRESS},      {"bad-domain", BP_ACT_SUPPRESS},
    {"inactive-mailbox", BP_ACT_SUPPRESS}, {"quota-issues", BP_ACT_SOFT},
    {"message-expired", BP_ACT_SOFT},      {"no-answer-from-host", BP_ACT_SOFT},
    {"routing-errors", BP_ACT_SOFT},       {"relaying-issues", BP_ACT_SOFT},
    {"bad-connection", BP_ACT_SOFT},       {"other", BP_ACT_SOFT},
    {"policy-related", BP_ACT_IGNORE},     {"spam-related", BP_ACT_IGNORE},
    {"virus-related", BP_ACT_IGNORE},      {"content-related", BP_ACT_IGNORE},
    {"invalid-sender", BP_ACT_IGNORE},     {"bad-configuration", BP_ACT_IGNORE},
    {"protocol-errors", BP_ACT_IGNORE},    {"complaint:abuse", BP_ACT_SUPPRESS},
    {"complaint:fraud", BP_ACT_SUPPRESS},  {"complaint:virus", BP_ACT_SUPPRESS},
    {"complaint:other", BP_ACT_SUPPRESS},  {"complaint:opt-out", BP_ACT_SUPPRESS},
    {"complaint:not-spam", BP_ACT_IGNORE}, {"complaint:auth-failure", BP_ACT_IGNORE},
};

static const char *const feedback_types[] = {"abuse",    "fraud",        "virus",   "other",
                                             "not-spam", "auth-failure", "opt-out", NULL};

int bp_feedback_type_valid(const char *name)
{
    for (int i = 0; name != NULL && feedback_types[i] != NULL; i++)
        if (strcmp(name, feedback_types[i]) == 0)
            return 1;
    return 0;
}

void bp_policy_default(bp_policy *p)
{
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        snprintf(p->entries[i].name, sizeof(p->entries[i].name), "%s", defaults[i].name);
        p->entries[i].action = defaults[i].action;
    }
    p->n_entries = sizeof(defaults) / sizeof(defaults[0]);
    p->soft_count = BP_SOFT_COUNT_DEFAULT;
    p->soft_days = BP_SOFT_DAYS_DEFAULT;
    p->soft_window = BP_SOFT_WINDOW_DEFAULT;
}

/* Levenshtein distance of two short names, stopping at 3. */
static unsigned distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[40];
    if (lb >= sizeof(row) / sizeof(row[0]) || (la > lb ? la - lb : lb - la) > 2)
        return 3;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* A custom name that is a category of ours mistyped ("bad-mailbx"): refused, so that a typo
 * does not quietly leave the real category's action as it was. */
static int near_a_category(const char *name)
{
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (strncmp(defaults[i].name, "complaint:", 10) != 0 && distance(name, defaults[i].name) <= 2)
            return 1;
    return 0;
}

bp_status bp_policy_set(bp_policy *p, const char *name, bp_action action)
{
    if (action == BP_ACT_NONE)
        return BP_ERR_CONFIG;
    if (strcmp(name, "complaint:not-spam") == 0 || strcmp(name, "complaint:auth-failure") == 0) {
        if (action == BP_ACT_SUPPRESS)
            return BP_ERR_CONFIG; /* a not-spam or authentication report says nothing against the address */
    }
    for (unsigned i = 0; i < p->n_entries; i++) {
        if (strcmp(p->entries[i].name, name) == 0) {
            p->entries[i].action = action;
            return BP_OK;
        }
    }
    /* a custom category of the operator's rule files; never an event type (delays, auto-replies
     * and deliveries are not in the table: nothing may make them act) */
    if (!bp_category_custom(name) || bp_event_type_from_name(name) >= 0 || strcmp(name, "delivery") == 0 ||
        near_a_category(name))
        return BP_ERR_CONFIG;
    if (p->n_entries == BP_POLICY_MAX_ENTRIES)
        return BP_ERR_LIMIT;
    snprintf(p->entries[p->n_entries].name, sizeof(p->entries[p->n_entries].name), "%s", name);
    p->entries[p->n_entries++].action = action;
    return BP_OK;
}

static bp_action lookup(const bp_policy *p, const char *name)
{
    for (unsigned i = 0; i < p->n_entries; i++)
        if (strcmp(p->entries[i].name, name) == 0)
            return p->entries[i].action;
    return BP_ACT_NONE;
}

bp_action bp_policy_decide(const bp_policy *p, bp_event_type type, const char *category, const char *feedback_type,
                           int final, bp_policy_step *why)
{
    bp_policy_step dummy;
    if (why == NULL)
        why = &dummy;
    switch (type) {
    case BP_EVENT_UNRECOGNIZED: *why = BP_POLICY_UNRECOGNIZED; return BP_ACT_IGNORE;
    case BP_EVENT_DELAY: *why = BP_POLICY_DELAY; return BP_ACT_IGNORE;
    case BP_EVENT_AUTOREPLY: *why = BP_POLICY_AUTOREPLY; return BP_ACT_IGNORE;
    case BP_EVENT_DELIVERED: *why = BP_POLICY_DELIVERED; return BP_ACT_IGNORE;
    case BP_EVENT_COMPLAINT: {
        char key[48];
        snprintf(key, sizeof(key), "complaint:%s", feedback_type != NULL ? feedback_type : "other");
        bp_action a = lookup(p, key);
        if (a == BP_ACT_NONE)
            a = lookup(p, "complaint:other");
        *why = a == BP_ACT_SUPPRESS ? BP_POLICY_COMPLAINT_SUPPRESS : BP_POLICY_COMPLAINT_RECORD;
        return a;
    }
    case BP_EVENT_BOUNCE: break;
    }
    bp_action a = category != NULL ? lookup(p, category) : BP_ACT_NONE;
    if (a == BP_ACT_NONE && category != NULL && !bp_category_valid(category)) {
        *why = BP_POLICY_CUSTOM; /* a custom category without a [policy] entry: counted */
        return BP_ACT_SOFT;
    }
    if (a == BP_ACT_NONE)
        a = lookup(p, "other");
    if (a == BP_ACT_SUPPRESS && !final) {
        *why = BP_POLICY_TEMPORARY;
        return BP_ACT_SOFT;
    }
    *why = a == BP_ACT_SUPPRESS ? BP_POLICY_SUPPRESS : a == BP_ACT_SOFT ? BP_POLICY_SOFT : BP_POLICY_IGNORE;
    return a;
}

/* Parse a positive count of at most 100000 (days or bounces: anything larger is a typo). */
static int parse_count(const char *text, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v == 0 || v > 100000ul)
        return 0;
    *out = (unsigned)v;
    return 1;
}

/* The error text of a bad setting: malloc'ed, the caller frees it. */
static char *setting_error(const char *key, const char *why)
{
    char *m = NULL;
    if (asprintf(&m, "[policy] %s: %s", key, why) < 0)
        m = NULL;
    return m;
}

/* Apply one setting to @p work.  @return NULL, or why it is refused. */
static const char *apply(bp_policy *work, const char *key, const char *value)
{
    if (strcmp(key, "soft_count") == 0 || strcmp(key, "soft_days") == 0 || strcmp(key, "soft_window") == 0) {
        unsigned n = 0;
        if (!parse_count(value, &n))
            return "wants a whole number from 1 to 100000";
        if (key[5] == 'c')
            work->soft_count = n;
        else if (key[5] == 'd')
            work->soft_days = n;
        else
            work->soft_window = n;
        return NULL;
    }
    bp_action a = bp_action_from_name(value);
    if (a == BP_ACT_NONE)
        return "action must be suppress, soft or ignore";
    bp_status st = bp_policy_set(work, key, a);
    if (st == BP_ERR_LIMIT)
        return "too many custom categories";
    if (st != BP_OK)
        return lookup(work, key) != BP_ACT_NONE ? "this feedback type can never suppress"
               : bp_category_custom(key)        ? "too close to one of bouncepipe's categories: a typo?"
                                                : "not a category, a custom category or complaint:TYPE (delays, "
                                                  "auto-replies and deliveries are never acted on)";
    return NULL;
}

bp_status bp_policy_load(bp_policy *p, const bp_policy_setting *settings, size_t n, char **error)
{
    bp_policy work = *p; /* all or nothing */
    if (error != NULL)
        *error = NULL;
    for (size_t i = 0; i < n; i++) {
        char value[64];
        const char *v = settings[i].value != NULL ? settings[i].value : "";
        while (*v == ' ' || *v == '\t')
            v++;
        size_t len = strlen(v);
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
            len--;
        const char *why = len < sizeof(value) ? NULL : "value too long";
        if (why == NULL) {
            memcpy(value, v, len);
            value[len] = '\0';
            why = apply(&work, settings[i].key, value);
        }
        if (why != NULL) {
            if (error != NULL && (*error = setting_error(settings[i].key, why)) == NULL)
                return BP_ERR_NOMEM;
            return BP_ERR_CONFIG;
        }
    }
    if (work.soft_days > work.soft_window) {
        if (error != NULL && (*error = setting_error("soft_days", "cannot exceed soft_window")) == NULL)
            return BP_ERR_NOMEM;
        return BP_ERR_CONFIG;
    }
    *p = work;
    return BP_OK;
}
