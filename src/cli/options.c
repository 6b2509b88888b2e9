/*
 * options.c - the one table of options the subcommands share, and the parser that reads a
 * command line with it (cli.h: bp_cli_parse()).
 *
 * A command names the common options it takes (bp_cli_command.common) and lists its own; the
 * parser builds getopt_long()'s tables from both (a one-letter form from each option's val, so a
 * letter is never spelt twice), stores the common values in the bp_cli_env
 * (checking --format against the command's names and --since as a date), hands every other
 * option to the command, and checks the number of operands.  So --db, --config, --patterns,
 * --no-builtin-rules, --format, --rcpt, --dry-run and --since are spelt, checked and
 * documented in one place, and mean the same in every command.  bp_cli_start() goes on with
 * the set-up the command asks for.
 *
 * Ownership: the tables are built on the stack for each call; values point into argv.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "cli.h"

static const struct {
    unsigned bit;
    struct option opt;
} common[] = {
    {BP_OPT_DRY_RUN, {"dry-run", no_argument, NULL, 'n'}},
    {BP_OPT_FORMAT, {"format", required_argument, NULL, 'f'}},
    {BP_OPT_RCPT, {"rcpt", required_argument, NULL, 'r'}},
    {BP_OPT_SINCE, {"since", required_argument, NULL, 's'}},
    {BP_OPT_DB, {"db", required_argument, NULL, 'd'}},
    {BP_OPT_CONFIG, {"config", required_argument, NULL, 'c'}},
    {BP_OPT_PATTERNS, {"patterns", required_argument, NULL, 'p'}},
    {BP_OPT_NO_BUILTIN, {"no-builtin-rules", no_argument, NULL, 'B'}},
};
#define N_COMMON (sizeof(common) / sizeof(common[0]))

/* Long options of one command at the most: the common ones, its own, --help, the end. */
#define MAX_OPTIONS 40

void bp_cli_usage(const bp_cli_command *cmd, FILE *out)
{
    fputs(cmd->usage, out);
}

/* --format NAME: its index among the command's formats. */
static int take_format(const bp_cli_command *cmd, bp_cli_env *env, const char *name)
{
    for (int i = 0; cmd->formats != NULL && cmd->formats[i] != NULL; i++)
        if (strcmp(cmd->formats[i], name) == 0) {
            env->format = i;
            env->format_given = 1;
            return 0;
        }
    char names[256] = "";
    for (int i = 0; cmd->formats != NULL && cmd->formats[i] != NULL; i++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i > 0 ? ", " : "", cmd->formats[i]);
    bp_cli_error(cmd->name, "unknown format '%s' (%s)", name, names);
    return BP_EXIT_USAGE;
}

/* A common option the command takes: @return 0, BP_EXIT_USAGE, or 1 when @p opt is not one. */
static int take_common(const bp_cli_command *cmd, bp_cli_env *env, int opt, const char *arg)
{
    int taken = 0;
    for (size_t i = 0; i < N_COMMON && !taken; i++)
        taken = (cmd->common & common[i].bit) && common[i].opt.val == opt;
    if (!taken)
        return 1;
    switch (opt) {
    case 'n': env->dry_run = 1; return 0;
    case 'f': return take_format(cmd, env, arg);
    case 'r': env->rcpt = arg; return 0;
    case 's': return bp_cli_time_option(cmd->name, "--since", arg, 0, &env->since);
    case 'd': env->db = arg; return 0;
    case 'c': env->config_file = arg; return 0;
    case 'p': env->patterns_file = arg; return 0;
    case 'B': env->no_builtin = 1; return 0;
    default: return 1;
    }
}

int bp_cli_start(const bp_cli_command *cmd, bp_cli_env *env, int argc, char **argv, bp_cli_own_option own, void *user)
{
    int rc = bp_cli_parse(cmd, env, argc, argv, own, user);
    if (rc != -1)
        return rc;
    bp_status st = BP_OK;
    if (cmd->setup == BP_CLI_SETUP_CONFIG)
        st = bp_cli_config_setup(env);
    else if (cmd->setup == BP_CLI_SETUP_RULES)
        st = bp_cli_env_setup(env);
    if (st == BP_OK)
        return -1;
    bp_cli_env_cleanup(env);
    return BP_EXIT_CONFIG;
}

int bp_cli_main(const bp_cli_entry *entry, int argc, char **argv)
{
    bp_cli_env env;
    memset(&env, 0, sizeof(env));
    void *state = bp_calloc(1, entry->state_size);
    if (state == NULL) {
        bp_cli_error(entry->command->name, "out of memory");
        return BP_EXIT_SOFTWARE;
    }
    if (entry->defaults != NULL)
        memcpy(state, entry->defaults, entry->state_size);
    int rc = bp_cli_start(entry->command, &env, argc, argv, entry->option, state);
    if (rc == -1) {
        rc = entry->run(&env, state, argc, argv);
        bp_cli_env_cleanup(&env);
    }
    free(state);
    return rc;
}

/* Append @p o's getopt letter ("x", "x:" when it takes a value) to @p shortopts at @p s (room
 * for two per option: MAX_OPTIONS bounds them).  @return the new end. */
static size_t add_letter(char *shortopts, size_t s, const struct option *o)
{
    shortopts[s++] = (char)o->val;
    if (o->has_arg == required_argument)
        shortopts[s++] = ':';
    return s;
}

int bp_cli_parse(const bp_cli_command *cmd, bp_cli_env *env, int argc, char **argv, bp_cli_own_option own, void *user)
{
    struct option longopts[MAX_OPTIONS];
    char shortopts[2 * MAX_OPTIONS + 1] = "";
    size_t n = 0, s = 0;
    env->cmd = cmd->name;
    for (size_t i = 0; i < N_COMMON; i++) {
        if (!(cmd->common & common[i].bit))
            continue;
        longopts[n++] = common[i].opt;
        s = add_letter(shortopts, s, &common[i].opt);
    }
    for (const struct option *o = cmd->own; o != NULL && o->name != NULL; o++) {
        if (n + 2 >= MAX_OPTIONS || strchr(shortopts, o->val) != NULL)
            BP_INTERNAL_ERROR("cli: a command's own option clashes with a common one, or too many options");
        longopts[n++] = *o;
        if (!cmd->long_only)
            s = add_letter(shortopts, s, o);
    }
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    shortopts[s++] = 'h';
    shortopts[s] = '\0';

    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (opt == 'h') {
            bp_cli_usage(cmd, stdout);
            return BP_EXIT_OK;
        }
        if (opt == '?' || opt == ':') {
            bp_cli_usage(cmd, stderr);
            return BP_EXIT_USAGE;
        }
        int rc = take_common(cmd, env, opt, optarg);
        if (rc == 1)
            rc = own != NULL ? own(user, opt, optarg) : BP_EXIT_USAGE;
        if (rc != 0)
            return rc;
    }
    int operands = argc - optind;
    if (operands < cmd->min_operands || (cmd->max_operands >= 0 && operands > cmd->max_operands)) {
        bp_cli_usage(cmd, stderr);
        return BP_EXIT_USAGE;
    }
    return -1;
}
