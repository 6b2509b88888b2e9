/*
 * alerts.h - the [signals] configuration and the alerts `bouncepipe signals --check` raises
 * from the store's signal counts (signals.h; docs/signals.md).
 *
 * Three alerts, each with a threshold and an optional command:
 *   listing    a block list of listing_lists (name prefixes; default "spamhaus") names one of
 *              our IPs in the last listing_window (default 1 h); one alert per (IP, VMTA,
 *              list);
 *   deferral   a receiver's deferrals that name a reputation system or list reach
 *              deferral_share % (default 25) of its attempts (deliveries, deferrals, bounces)
 *              in an hour with at least deferral_min attempts (default 100) - Gmail's 421
 *              4.7.0 / 4.7.28, Yahoo's TSS04, Microsoft's 4.7.650: the rules name them;
 *              one alert per receiver;
 *   complaint  a stream's complaints reach complaint_rate % (default 0.1) of its deliveries
 *              over complaint_window (default 24 h) with at least complaint_min deliveries
 *              (default 1000); one alert per stream.
 * Windows are whole UTC hours (the counts are hourly): the current hour and those before it
 * that the window reaches.
 *
 * An alert fires once per episode: when its condition holds and it has not held at any check
 * for `cooldown` (default 24 h) - a listing that lasts three days fires once; a new listing a
 * week later fires again.  Its state is in the store (table signal_alerts), so a restart or
 * the next timer run does not fire it again.  Its command (argv, never a shell; {ip} {vmta}
 * {stream} {receiver} {list} {alert} {value} {threshold} {count} {base} are replaced inside
 * each argument by the alert's checked values) is run once per firing; a command that failed,
 * or never ran (the process stopped), is run again at the next check while the condition
 * holds.  A command whose placeholder has no value (a listing of an IP whose VMTA is
 * unknown) is not run: an action on "every VMTA" is never taken by accident.
 *
 * Ownership: a bp_signals_config owns its strings (bp_signals_config_free()); alerts handed
 * to the callback live during the call.
 */
#ifndef BOUNCEPIPE_ALERTS_H
#define BOUNCEPIPE_ALERTS_H

#include <stddef.h>

#include "bouncepipe/policy.h"
#include "bouncepipe/signal_fields.h"
#include "bouncepipe/signals.h"
#include "bouncepipe/status.h"
#include "bouncepipe/store.h"

/** One key = value of the [signals] group: the same pair as a [policy] setting (the
 *  configuration reader hands both groups over alike). */
typedef bp_policy_setting bp_signals_setting;

/** The [signals] group, typed. */
typedef struct bp_signals_config {
    bp_signal_options fields; /**< where events' signal fields are found (points into the lists) */
    char **stream_headers, **vmta_headers, **ip_columns, **vmta_columns, **stream_columns; /**< or NULL */
    char *host;       /**< the accounting watermark's host (NULL: the host name) */
    unsigned top;     /**< groups `signals` shows before "other" (default 20) */
    long long window; /**< `signals`' window without --since, seconds (default 86400) */
    char **listing_lists;
    long long listing_window;
    char **listing_command; /**< argv, or NULL: print only */
    double deferral_share;  /**< percent; 0: off */
    long long deferral_min;
    char **deferral_command;
    double complaint_rate; /**< percent; 0: off */
    long long complaint_min;
    long long complaint_window;
    char **complaint_command;
    long long cooldown;       /**< seconds */
    unsigned command_timeout; /**< seconds a command may run (default 60) */
} bp_signals_config;

/** Fill @p c with the defaults (nothing allocated). */
void bp_signals_config_default(bp_signals_config *c);

/**
 * Apply the [signals] settings, all or nothing.  Keys: stream_headers, vmta_headers,
 * acct_ip_columns, acct_vmta_columns, acct_stream_columns, listing_lists (lists separated by
 * ';'), host, top, window, listing_window, deferral_share, deferral_min, complaint_rate,
 * complaint_min, complaint_window, cooldown, command_timeout (durations: 90s, 30m, 24h, 7d or
 * seconds), listing_command, deferral_command, complaint_command (argv separated by ';', the
 * first an absolute path).
 * @param error receives a malloc'ed message naming the key on failure (the caller frees it)
 * @return BP_OK; BP_ERR_CONFIG; BP_ERR_NOMEM.
 */
bp_status bp_signals_config_load(bp_signals_config *c, const bp_signals_setting *settings, size_t n, char **error);

/** Release what bp_signals_config_load() made; @p c holds the defaults again. */
void bp_signals_config_free(bp_signals_config *c);

/** A duration: "90s", "30m", "24h", "7d", "2w" or a number of seconds. @return seconds, or -1. */
long long bp_signals_parse_duration(const char *s);

typedef enum bp_alert_kind {
    BP_ALERT_LISTING = 0,
    BP_ALERT_DEFERRAL,
    BP_ALERT_COMPLAINT,
} bp_alert_kind;

/** @return "listing", "deferral" or "complaint". */
const char *bp_alert_name(bp_alert_kind kind);

/** An alert whose condition holds. */
typedef struct bp_alert {
    bp_alert_kind kind;
    const char *subject;    /**< its key in the store ("IP VMTA LIST", "RECEIVER", "STREAM") */
    const char *sending_ip; /**< what it is about; NULL when unknown or not its kind */
    const char *vmta;
    const char *stream;
    const char *receiver;
    const char *list;
    long long count;  /**< listing: events naming the list; deferral: named deferrals; complaint: complaints */
    long long base;   /**< deferral: attempts in the hour; complaint: deliveries in the window */
    double value;     /**< deferral, complaint: the share in percent */
    double threshold; /**< its threshold in percent (listing: 0) */
    long long since;  /**< the start of the counts it saw (Unix seconds) */
    int retry;        /**< it fired at @p first_fired already; its command failed or never ran */
    long long first_fired;
    const char *const *command; /**< the configured argv, or NULL */
} bp_alert;

/** Called for each alert that fires (or whose command runs again): print it and run its
 *  command.  @return the command's outcome: 0 succeeded, 1 failed, -1 no command ran. */
typedef int (*bp_alert_fn)(void *user, const bp_alert *a);

/**
 * Check every alert of @p c against the counts of @p s as of @p now: record the state of each
 * whose condition holds (in a short transaction), call @p fire for those that fire, then
 * record their commands' outcomes.
 * @param fired receives the number of alerts @p fire was called for
 * @return BP_OK, or the store's status.
 */
bp_status bp_signals_check(bp_store *s, const bp_signals_config *c, long long now, bp_alert_fn fire, void *user,
                           unsigned *fired);

/**
 * The argv of alert @p a's command: each argument of a->command with its placeholders
 * replaced.  @p why receives a static reason when it cannot run (a placeholder without a value,
 * an unknown placeholder).
 * @param argv receives a malloc'ed NULL-terminated array of malloc'ed strings (bp_alert_argv_free())
 * @return BP_OK; BP_ERR_NOT_FOUND (see why); BP_ERR_NOMEM.
 */
bp_status bp_alert_argv(const bp_alert *a, char ***argv, const char **why);
void bp_alert_argv_free(char **argv);

#endif
