/*
 * policy.h - category and feedback type to action (suppress, soft, ignore), and the
 * soft-bounce escalation thresholds.
 *
 * Defaults are DESIGN.md's table; bp_policy_set() overrides one entry, bp_policy_load() a list
 * of them as the config file's [policy] group gives them.  A bp_policy is a plain value: copy
 * it freely.
 */
#ifndef BOUNCEPIPE_POLICY_H
#define BOUNCEPIPE_POLICY_H

#include <stddef.h>

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"

#define BP_POLICY_MAX_ENTRIES 48

typedef struct bp_policy {
    struct {
        char name[32]; /**< category or "complaint:TYPE" */
        bp_action action;
    } entries[BP_POLICY_MAX_ENTRIES];
    unsigned n_entries;
    unsigned soft_count;  /**< N: soft events needed */
    unsigned soft_days;   /**< D: on at least this many distinct days */
    unsigned soft_window; /**< W: within this many days */
} bp_policy;

/** Fill @p p with the default policy. */
void bp_policy_default(bp_policy *p);

/**
 * Set the action of a category ("bad-mailbox"), a custom category of the operator's rule files
 * (bp_category_custom(): added to the table) or complaint type ("complaint:abuse").
 * Complaint types not-spam and auth-failure, delays, auto-replies and deliveries can never be
 * made to suppress: such a request is refused with BP_ERR_CONFIG.  A custom name within two
 * letters of one of ours ("bad-mailbx") is taken for a typo and refused.
 * @return BP_OK, BP_ERR_CONFIG for an unknown name or a refused action, BP_ERR_LIMIT when the
 *         table is full.
 */
bp_status bp_policy_set(bp_policy *p, const char *name, bp_action action);

/** The step of bp_policy_decide() that chose an action (the CLI words them for people). */
typedef enum bp_policy_step {
    BP_POLICY_UNRECOGNIZED = 0,   /**< nothing was recognised: never acted on */
    BP_POLICY_DELAY,              /**< a delay is never acted on: the MTA is still trying */
    BP_POLICY_AUTOREPLY,          /**< an auto-reply proves the mailbox is alive */
    BP_POLICY_DELIVERED,          /**< a delivery report is good news */
    BP_POLICY_COMPLAINT_SUPPRESS, /**< the table: this complaint type suppresses */
    BP_POLICY_COMPLAINT_RECORD,   /**< the table: this complaint type is recorded only */
    BP_POLICY_TEMPORARY,          /**< the category suppresses, but the failure was temporary: soft */
    BP_POLICY_SUPPRESS,           /**< the table: a final failure of this category suppresses */
    BP_POLICY_SOFT,               /**< the table: this category is counted (soft) */
    BP_POLICY_IGNORE,             /**< the table: this category is recorded only */
    BP_POLICY_CUSTOM,             /**< a custom category (rules.h) without a [policy] entry: soft */
} bp_policy_step;

/**
 * Decide the action for an event.  A bounce category that is not in the table is a custom one
 * (rules.h): soft (BP_POLICY_CUSTOM), whatever "other" is set to.
 * @param type event type
 * @param category bounce category (NULL for complaints)
 * @param feedback_type complaint type (NULL for bounces)
 * @param final non-zero for a permanent failure
 * @param why if not NULL, receives the step that decided
 */
bp_action bp_policy_decide(const bp_policy *p, bp_event_type type, const char *category, const char *feedback_type,
                           int final, bp_policy_step *why);

/** One setting of the [policy] group as the configuration has it: text, checked here. */
typedef struct bp_policy_setting {
    const char *key;   /**< a category, "complaint:TYPE", soft_count, soft_days or soft_window */
    const char *value; /**< suppress|soft|ignore, or a whole number from 1 to 100000 */
} bp_policy_setting;

/**
 * Apply settings, all or nothing: keys are categories or "complaint:TYPE" with the values
 * suppress|soft|ignore; soft_count, soft_days and soft_window set the escalation thresholds
 * (soft_days may not exceed soft_window).  Blanks around a value are ignored.  The
 * configuration reader (src/cli/config.c) reads the file and hands the settings down.
 * @param error receives a malloc'ed message "[policy] KEY: why" on BP_ERR_CONFIG (may be NULL)
 * @return BP_OK (also for no settings), BP_ERR_CONFIG (@p p unchanged), BP_ERR_NOMEM.
 */
bp_status bp_policy_load(bp_policy *p, const bp_policy_setting *settings, size_t n, char **error);

/** @return non-zero when @p name is a feedback type of the contract. */
int bp_feedback_type_valid(const char *name);

#endif
