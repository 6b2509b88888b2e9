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
#include "bouncepipe/rules.h"
#include "bouncepipe/status.h"

/* Exit codes (sysexits.h values, named here so that pipe mode's contract is visible). */
#define BP_EXIT_OK       0
#define BP_EXIT_FAILURE  1  /* some inputs failed; the run went on */
#define BP_EXIT_USAGE    64 /* EX_USAGE */
#define BP_EXIT_DATAERR  65 /* EX_DATAERR */
#define BP_EXIT_SOFTWARE 70 /* EX_SOFTWARE */
#define BP_EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: the MTA keeps the message and retries */
#define BP_EXIT_CONFIG   78 /* EX_CONFIG */

/** Everything a command needs to classify: rules, policy and the settings they came from. */
typedef struct bp_cli_env {
    bp_rules *rules;
    bp_policy policy;
    const char *patterns_file; /**< --patterns: operator rules, tried before the shipped ones */
    int no_builtin;            /**< --no-builtin-rules */
} bp_cli_env;

/**
 * Load the rules (operator file first, then the shipped database) and the policy.
 * @return BP_OK, or the status of the failure (already reported on stderr).
 */
bp_status bp_cli_env_setup(bp_cli_env *env);
/** Release what bp_cli_env_setup() made. */
void bp_cli_env_cleanup(bp_cli_env *env);

/** Print "bouncepipe: CMD: message" on stderr. */
void bp_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_replay(int argc, char **argv);

#endif
