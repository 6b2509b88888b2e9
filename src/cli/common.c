/*
 * common.c - set-up shared by the subcommands: rules and policy.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

void bp_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bouncepipe: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bp_status bp_cli_env_setup(bp_cli_env *env)
{
    bp_policy_default(&env->policy);
    bp_status st = bp_rules_new(&env->rules);
    if (st != BP_OK)
        return st;
    if (env->patterns_file != NULL) {
        st = bp_rules_load_file(env->rules, env->patterns_file, NULL, NULL, NULL);
        if (st != BP_OK) {
            bp_cli_error("patterns", "%s: %s", env->patterns_file, bp_status_to_string(st));
            return st;
        }
    }
    if (!env->no_builtin)
        st = bp_rules_load_builtin(env->rules, NULL, NULL, NULL);
    return st;
}

void bp_cli_env_cleanup(bp_cli_env *env)
{
    bp_rules_free(env->rules);
    env->rules = NULL;
}
