/*
 * cli.h - what the subcommands (one cmd_<name>.c each) share: the command table, common
 * option handling, and setting up rules and policy from the configuration.
 *
 * The core library knows nothing of the command line; everything argv-related is here.
 */
#ifndef BOUNCEPIPE_CLI_H
#define BOUNCEPIPE_CLI_H

#include "bouncepipe/classify.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/process.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/status.h"
#include "bouncepipe/store.h"
#include "config.h"

/* Exit codes (sysexits.h values, named here so that pipe mode's contract is visible). */
#define BP_EXIT_OK       0
#define BP_EXIT_FAILURE  1  /* some inputs failed; the run went on */
#define BP_EXIT_USAGE    64 /* EX_USAGE */
#define BP_EXIT_DATAERR  65 /* EX_DATAERR */
#define BP_EXIT_SOFTWARE 70 /* EX_SOFTWARE */
#define BP_EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: the MTA keeps the message and retries */
#define BP_EXIT_CONFIG   78 /* EX_CONFIG */

/** Who reads a command's exit status: what a failure means to them. */
typedef enum bp_cli_audience {
    BP_CLI_OPERATOR = 0, /**< an operator or a script: run it again (75) only when that can help */
    BP_CLI_MTA,          /**< the MTA of pipe mode: every failure defers (75), nothing may be lost */
} bp_cli_audience;

/**
 * The one place a failure becomes an exit status.  For the MTA: BP_EXIT_OK for BP_OK, else
 * BP_EXIT_TEMPFAIL.  For an operator: BP_EXIT_TEMPFAIL when bp_status_is_transient() (busy,
 * disk full, out of memory: run it again), BP_EXIT_CONFIG for BP_ERR_CONFIG and
 * BP_ERR_UNSUPPORTED, BP_EXIT_USAGE for BP_ERR_USAGE, and BP_EXIT_FAILURE for the rest - a
 * corrupt or foreign store (BP_ERR_STORE) is a failure to look into, not a reason to retry.
 */
int bp_cli_exit_status(bp_status st, bp_cli_audience who);

/** Everything a command needs to classify: rules, policy and the settings they came from. */
typedef struct bp_cli_env {
    bp_rules *rules;
    bp_policy policy;
    const char *patterns_file; /**< --patterns: operator rules, tried before the shipped ones */
    int no_builtin;            /**< --no-builtin-rules */
    const char *config_file;   /**< --config, or NULL (then $BOUNCEPIPE_CONFIG, /etc/bouncepipe/...) */
    const char *db;            /**< --db, or NULL (then $BOUNCEPIPE_DB, the config, ./bouncepipe.db) */
    bp_config config;          /**< read by bp_cli_env_setup() / bp_cli_config_setup() */
    int config_loaded;
    int refuse_exposed;     /**< a config file exposing a password is an error, not a warning (pipe) */
    char shown_db[1024];    /**< bp_cli_db_shown()'s text */
    char shown_error[1024]; /**< bp_cli_store_error()'s text */
} bp_cli_env;

/**
 * Load the rules (operator file first, then the shipped database) and the policy.
 * @return BP_OK, or the status of the failure (already reported on stderr).
 */
bp_status bp_cli_env_setup(bp_cli_env *env);
/** Release what bp_cli_env_setup() made. */
void bp_cli_env_cleanup(bp_cli_env *env);

/**
 * Read the configuration only (commands that need no rules).  bp_cli_env_setup() calls it.
 * @return BP_OK or BP_ERR_CONFIG / BP_ERR_NOMEM (reported on stderr).
 */
bp_status bp_cli_config_setup(bp_cli_env *env);

/** @return the store location: --db, $BOUNCEPIPE_DB, the config file, ./bouncepipe.db. */
const char *bp_cli_db(const bp_cli_env *env);
/** The database location fit to print (bp_secret_mask(): every password becomes "***").
 *  @return text in @p env, valid until the next call. */
const char *bp_cli_db_shown(bp_cli_env *env);
/** The last error of @p store fit to print (bp_secret_scrub() with the location).
 *  @return text in @p env, valid until the next call; "" when @p store is NULL. */
const char *bp_cli_store_error(bp_cli_env *env, const bp_store *store);

/**
 * Open the store with the configured policy thresholds and busy timeout; errors are reported
 * on stderr as "bouncepipe: CMD: ...".  @return bp_store_open()'s status.
 */
bp_status bp_cli_store_open(bp_cli_env *env, const char *cmd, int read_only, bp_store **out);

/** Classification context from the configuration (VERP settings) and the command's options. */
void bp_cli_classify_ctx(const bp_cli_env *env, const char *rcpt, const char *envid, const char *source,
                         bp_classify_ctx *ctx);

/** @return when a processed message was made: its Date header in Unix seconds, or 0. */
long long bp_cli_message_time(const bp_process_result *res);

/** Record a processed message in an open transaction (the one path of pipe and replay). */
bp_status bp_cli_record(bp_store *store, const bp_process_result *res, const char *source, bp_record_result *rr);

/** Parse a date "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[Z]" (UTC) or Unix seconds; -1 if invalid. */
long long bp_cli_parse_time(const char *s);
/** Format Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" into @p buf (at least 32 bytes). @return buf. */
char *bp_cli_format_time(long long t, char *buf, size_t size);

/** Print "bouncepipe: CMD: message" on stderr. */
void bp_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_replay(int argc, char **argv);
int cmd_pipe(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_rescore(int argc, char **argv);
int cmd_acct(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_patterns(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
