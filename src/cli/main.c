/*
 * main.c - the bouncepipe command: global options and the subcommand table.
 *
 * Each subcommand lives in its own cmd_<name>.c and gets argv starting at its name.
 */
#include <stdio.h>
#include <string.h>

#include "bouncepipe/mime.h"
#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"replay", cmd_replay, "read stored messages (file, directory, mbox, Maildir, -) and report events"},
    {"pipe", cmd_pipe, "MTA pipe target: record one message from stdin; exits 0 or 75 only"},
    {"lookup", cmd_lookup, "is an address suppressed, why, and the evidence"},
    {"remove", cmd_remove, "lift the suppression of addresses (kept in the ledger)"},
    {"import", cmd_import, "add an existing suppression list (one address a line, or CSV)"},
    {"export", cmd_export, "print the suppression list (csv, json, ndjson, plain)"},
    {"stats", cmd_stats, "counts by type, category, action, domain, day (text, json, prometheus)"},
    {"rescore", cmd_rescore, "re-run rules and policy over the ledger; --apply to change it"},
    {"explain", cmd_explain, "why each event of a message got its recipient, category and action"},
    {"patterns", cmd_patterns, "check rule files, test a text against the rules, import KumoMTA rules"},
    {"acct", cmd_acct, "read PowerMTA accounting CSV (stdin or files) and record bounces, complaints, deliveries"},
    {"report", cmd_report, "write a self-contained HTML report of the store (charts; opens offline)"},
    {"dmarc", cmd_dmarc, "DMARC aggregate reports: pass rates per domain and source, red flags, readiness"},
    {"signals", cmd_signals, "per sending IP, VMTA, stream, receiver: rates, block lists; --check raises alerts"},
    {"migrate", cmd_migrate, "copy a store into another (SQLite file -> postgresql://...); safe to re-run"},
    {"deliver", cmd_deliver, "post recorded events to the configured webhooks (a service; --once, --status)"},
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
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "bouncepipe: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return BP_EXIT_USAGE;
}
