/*
 * policy.c - the default action table of DESIGN.md and its overrides.
 *
 * bp_policy_decide(): delays, auto-replies and deliveries are always ignored; a bounce whose
 * category suppresses but that is not final (a temporary failure) is counted as soft; every
 * other decision is a table look-up, with "other"'s action for an unknown name.
 * bp_policy_set(): one override; complaint types not-spam and auth-failure can never be made
 * to suppress (they say nothing against the address), and delays, auto-replies and
 * deliveries are not in the table at all, so nothing can make them act.
 * bp_policy_load_keyfile(): the [policy] group of the config file, all or nothing: on a bad
 * key the policy is left as it was and *error (malloc'ed, the caller frees it) names the key.
 */
#include "bouncepipe/policy.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/rules.h"
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
    return BP_ERR_CONFIG;
}

static bp_action lookup(const bp_policy *p, const char *name)
{
    for (unsigned i = 0; i < p->n_entries; i++)
        if (strcmp(p->entries[i].name, name) == 0)
            return p->entries[i].action;
    return BP_ACT_NONE;
}

bp_action bp_policy_decide(const bp_policy *p, bp_event_type type, const char *category, const char *feedback_type,
                           int final, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    switch (type) {
    case BP_EVENT_UNRECOGNIZED:
        *why = "nothing was recognised: recorded (quarantined in pipe mode), never acted on";
        return BP_ACT_IGNORE;
    case BP_EVENT_DELAY: *why = "a delay is never acted on: the MTA is still trying"; return BP_ACT_IGNORE;
    case BP_EVENT_AUTOREPLY: *why = "an auto-reply proves the mailbox is alive"; return BP_ACT_IGNORE;
    case BP_EVENT_DELIVERED: *why = "a delivery report is good news"; return BP_ACT_IGNORE;
    case BP_EVENT_COMPLAINT: {
        char key[48];
        snprintf(key, sizeof(key), "complaint:%s", feedback_type != NULL ? feedback_type : "other");
        bp_action a = lookup(p, key);
        if (a == BP_ACT_NONE)
            a = lookup(p, "complaint:other");
        *why = a == BP_ACT_SUPPRESS ? "policy: this complaint type suppresses"
                                    : "policy: this complaint type is recorded only";
        return a;
    }
    case BP_EVENT_BOUNCE: break;
    }
    bp_action a = category != NULL ? lookup(p, category) : BP_ACT_NONE;
    if (a == BP_ACT_NONE)
        a = lookup(p, "other");
    if (a == BP_ACT_SUPPRESS && !final) {
        *why = "policy: the category suppresses, but the failure was temporary: counted as soft";
        return BP_ACT_SOFT;
    }
    switch (a) {
    case BP_ACT_SUPPRESS: *why = "policy: a final failure of this category suppresses"; break;
    case BP_ACT_SOFT: *why = "policy: this category is counted; repeated soft bounces suppress"; break;
    default: *why = "policy: this category says nothing about the recipient: recorded only"; break;
    }
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

static char *dup_message(const char *key, const char *why)
{
    char *m = g_strdup_printf("[policy] %s: %s", key, why);
    char *copy = m != NULL ? strdup(m) : NULL; /* the contract promises malloc'ed memory */
    g_free(m);
    return copy;
}

bp_status bp_policy_load_keyfile(bp_policy *p, void *keyfile, char **error)
{
    GKeyFile *kf = keyfile;
    gchar **keys = NULL;
    gchar *value = NULL;
    bp_status st = BP_OK;
    bp_policy work = *p; /* all or nothing */
    if (error != NULL)
        *error = NULL;
    if (kf == NULL || !g_key_file_has_group(kf, "policy"))
        return BP_OK;
    keys = g_key_file_get_keys(kf, "policy", NULL, NULL);
    for (size_t i = 0; keys != NULL && keys[i] != NULL; i++) {
        const char *key = keys[i];
        g_free(value);
        value = g_key_file_get_string(kf, "policy", key, NULL);
        if (value == NULL) {
            st = BP_ERR_CONFIG;
            if (error != NULL)
                *error = dup_message(key, "value cannot be read");
            goto out;
        }
        g_strstrip(value);
        if (strcmp(key, "soft_count") == 0 || strcmp(key, "soft_days") == 0 || strcmp(key, "soft_window") == 0) {
            unsigned n = 0;
            if (!parse_count(value, &n)) {
                st = BP_ERR_CONFIG;
                if (error != NULL)
                    *error = dup_message(key, "wants a whole number from 1 to 100000");
                goto out;
            }
            if (key[5] == 'c')
                work.soft_count = n;
            else if (key[5] == 'd')
                work.soft_days = n;
            else
                work.soft_window = n;
            continue;
        }
        bp_action a = bp_action_from_name(value);
        if (a == BP_ACT_NONE) {
            st = BP_ERR_CONFIG;
            if (error != NULL)
                *error = dup_message(key, "action must be suppress, soft or ignore");
            goto out;
        }
        if (bp_policy_set(&work, key, a) != BP_OK) {
            st = BP_ERR_CONFIG;
            if (error != NULL)
                *error = dup_message(key, lookup(&work, key) != BP_ACT_NONE
                                              ? "this feedback type can never suppress"
                                              : "not a category or complaint:TYPE (delays, auto-replies and "
                                                "deliveries are never acted on)");
            goto out;
        }
    }
    if (work.soft_days > work.soft_window) {
        st = BP_ERR_CONFIG;
        if (error != NULL)
            *error = dup_message("soft_days", "cannot exceed soft_window");
        goto out;
    }
    *p = work;
out:
    g_free(value);
    g_strfreev(keys);
    return st;
}
