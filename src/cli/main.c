/*
 * main.c - the bouncepipe command: global options and the subcommand table.
 *
 * Each subcommand lives in its own cmd_<name>.c and gets argv starting at its name: most
 * through bp_cli_main() (their bp_cli_entry), pipe and patterns through their own function.
 */
#include <stdio.h>
#include <string.h>

#include "bouncepipe/mime.h"
#include "cli.h"

static const struct {
    const char *name;
    const bp_cli_entry *entry;         /* run by bp_cli_main(), or */
    int (*run)(int argc, char **argv); /* a command line of its own */
    const char *summary;
} commands[] = {
    {"replay", &bp_cli_replay, NULL, "read stored messages (file, directory, mbox, Maildir, -) and report events"},
    {"pipe", NULL, cmd_pipe, "MTA pipe target: record one message from stdin; exits 0 or 75 only"},
    {"lookup", &bp_cli_lookup, NULL, "is an address suppressed, why, and the evidence"},
    {"remove", &bp_cli_remove, NULL, "lift the suppression of addresses (kept in the ledger)"},
    {"import", &bp_cli_import, NULL, "add an existing suppression list (one address a line, or CSV)"},
    {"export", &bp_cli_export, NULL, "print the suppression list (csv, json, ndjson, plain)"},
    {"stats", &bp_cli_stats, NULL, "counts by type, category, action, domain, day (text, json, prometheus)"},
    {"rescore", &bp_cli_rescore, NULL, "re-run rules and policy over the ledger; --apply to change it"},
    {"explain", &bp_cli_explain, NULL, "why each event of a message got its recipient, category and action"},
    {"patterns", NULL, cmd_patterns, "check rule files, test a text against the rules, import KumoMTA rules"},
    {"acct", &bp_cli_acct, NULL,
     "read PowerMTA accounting CSV (stdin or files) and record bounces, complaints, deliveries"},
    {"report", &bp_cli_report, NULL, "write a self-contained HTML report of the store (charts; opens offline)"},
    {"dmarc", &bp_cli_dmarc, NULL, "DMARC aggregate reports: pass rates per domain and source, red flags, readiness"},
    {"signals", &bp_cli_signals, NULL,
     "per sending IP, VMTA, stream, receiver: rates, block lists; --check raises alerts"},
    {"migrate", &bp_cli_migrate, NULL, "copy a store into another (SQLite file -> postgresql://...); safe to re-run"},
    {"deliver", &bp_cli_deliver, NULL, "post recorded events to the configured webhooks (a service; --once, --status)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: bouncepipe COMMAND [OPTIONS] [ARGS]\n"
                 "       bouncepipe --help | --version\n\n"
                 "Turn bounces, complaints and auto-replies into a suppression list.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'bouncepipe COMMAND --help' shows a command's options; man bouncepipe has the rest.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return BP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return BP_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("bouncepipe %s\n", BP_VERSION);
        return BP_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            bp_mime_init();
            return commands[i].entry != NULL ? bp_cli_main(commands[i].entry, argc - 1, argv + 1)
                                             : commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "bouncepipe: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return BP_EXIT_USAGE;
}
