/*
 * cmd_lookup.c - bouncepipe lookup [--db PATH] [--config FILE] [--format text|json] ADDRESS
 *
 * Says whether ADDRESS is suppressed, why (reason, source kind, first and last evidence, how
 * many pieces of evidence; a lift and its reason), and lists its ledger rows in evidence-time
 * order.  Exit status: 0 suppressed, 1 not suppressed (or unknown), 64 usage, 75 store busy
 * or unreadable, 78 configuration.
 *
 * Ownership: the address is normalised into an arena freed on return.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/text.h"
#include "cli.h"

static void lookup_usage(FILE *out)
{
    fprintf(out, "usage: bouncepipe lookup [--db PATH] [--config FILE] [--format text|json] ADDRESS\n");
}

struct lookup_run {
    int json;
    int found, active;
    int n_rows;
    bp_strbuf out;
};

static int print_suppression(void *user, const bp_suppression *r)
{
    struct lookup_run *run = user;
    char first[32], last[32], lifted[32];
    run->found = 1;
    run->active = !r->lifted;
    bp_cli_format_time(r->first_seen, first, sizeof(first));
    bp_cli_format_time(r->last_seen, last, sizeof(last));
    bp_cli_format_time(r->lifted_at, lifted, sizeof(lifted));
    bp_strbuf *sb = &run->out;
    if (run->json) {
        bp_strbuf_puts(sb, "\"suppressed\":");
        bp_strbuf_puts(sb, r->lifted ? "false" : "true");
        bp_strbuf_puts(sb, ",\"reason\":");
        bp_json_string(sb, r->reason);
        bp_strbuf_puts(sb, ",\"source_kind\":");
        bp_json_string(sb, r->source_kind);
        bp_strbuf_printf(sb, ",\"first_seen\":\"%s\",\"last_seen\":\"%s\",\"count\":%lld,\"lifted\":%s", first, last,
                         r->count, r->lifted ? "true" : "false");
        bp_strbuf_puts(sb, ",\"lift_reason\":");
        bp_json_string(sb, r->lifted ? r->lift_reason : NULL);
        bp_strbuf_puts(sb, ",\"lifted_at\":");
        if (r->lifted)
            bp_strbuf_printf(sb, "\"%s\"", lifted);
        else
            bp_strbuf_puts(sb, "null");
        return 0;
    }
    if (r->lifted)
        bp_strbuf_printf(sb, "%s: not suppressed: lifted %s (%s); was suppressed for %s (%s)\n", r->address, lifted,
                         r->lift_reason != NULL ? r->lift_reason : "no reason given",
                         r->reason != NULL ? r->reason : "-", r->source_kind);
    else
        bp_strbuf_printf(sb, "%s: SUPPRESSED: %s (%s)\n", r->address, r->reason != NULL ? r->reason : "-",
                         r->source_kind);
    bp_strbuf_printf(sb, "  first evidence %s, last %s, %lld suppressing piece%s of evidence\n", first, last, r->count,
                     r->count == 1 ? "" : "s");
    return 0;
}

static int print_row(void *user, const bp_ledger_row *r)
{
    struct lookup_run *run = user;
    const bp_event *e = &r->event;
    char when[32];
    bp_cli_format_time(r->evidence_time, when, sizeof(when));
    bp_strbuf *sb = &run->out;
    int is_event = strcmp(r->kind, BP_LEDGER_EVENT) == 0;
    if (run->json) {
        bp_strbuf_printf(sb, "%s{\"id\":%lld,\"kind\":", run->n_rows ? "," : "", r->id);
        bp_json_string(sb, r->kind);
        bp_strbuf_printf(sb, ",\"evidence_time\":\"%s\",\"type\":", when);
        bp_json_string(sb, is_event ? bp_event_type_name(e->type) : NULL);
        bp_strbuf_puts(sb, ",\"action\":");
        bp_json_string(sb, is_event ? bp_action_name(e->action) : NULL);
        const struct {
            const char *name, *value;
        } f[] = {{"category", e->category},
                 {"feedback_type", e->feedback_type},
                 {"status", e->status},
                 {"smtp_code", e->smtp_code},
                 {"diagnostic", e->diagnostic},
                 {"rule", e->rule},
                 {"reporting_mta", e->reporting_mta},
                 {"source", e->source},
                 {"message_id", e->message_id},
                 {"envid", e->envid},
                 {"note", r->note},
                 {"mta_category", r->mta_category}};
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
            bp_strbuf_printf(sb, ",\"%s\":", f[i].name);
            bp_json_string(sb, f[i].value);
        }
        bp_strbuf_putc(sb, '}');
    } else if (is_event) {
        const char *action = bp_action_name(e->action);
        bp_strbuf_printf(sb, "  %s  %-9s %-9s %s", when, bp_event_type_name(e->type), action != NULL ? action : "-",
                         e->category != NULL        ? e->category
                         : e->feedback_type != NULL ? e->feedback_type
                                                    : "-");
        if (e->smtp_code != NULL || e->status != NULL)
            bp_strbuf_printf(sb, " [%s%s%s]", e->smtp_code != NULL ? e->smtp_code : "",
                             e->smtp_code != NULL && e->status != NULL ? " " : "", e->status != NULL ? e->status : "");
        if (e->rule != NULL)
            bp_strbuf_printf(sb, " rule=%s", e->rule);
        bp_strbuf_printf(sb, "\n      from %s", e->source != NULL ? e->source : "-");
        if (e->message_id != NULL)
            bp_strbuf_printf(sb, " %s", e->message_id);
        if (e->reporting_mta != NULL)
            bp_strbuf_printf(sb, " via %s", e->reporting_mta);
        bp_strbuf_putc(sb, '\n');
        if (e->diagnostic != NULL)
            bp_strbuf_printf(sb, "      \"%s\"\n", e->diagnostic);
    } else {
        bp_strbuf_printf(sb, "  %s  %-9s %s\n", when, r->kind, r->note != NULL ? r->note : "");
    }
    run->n_rows++;
    return 0;
}

int cmd_lookup(int argc, char **argv)
{
    static const struct option longopts[] = {{"db", required_argument, NULL, 'd'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bp_cli_env env = {0};
    struct lookup_run run;
    memset(&run, 0, sizeof(run));
    bp_store *store = NULL;
    bp_arena *arena = NULL;
    int opt, rc = BP_EXIT_OK;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:f:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': env.db = optarg; break;
        case 'c': env.config_file = optarg; break;
        case 'f':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
                bp_cli_error("lookup", "unknown format '%s' (text or json)", optarg);
                return BP_EXIT_USAGE;
            }
            run.json = strcmp(optarg, "json") == 0;
            break;
        case 'h': lookup_usage(stdout); return BP_EXIT_OK;
        default: lookup_usage(stderr); return BP_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        lookup_usage(stderr);
        return BP_EXIT_USAGE;
    }
    arena = bp_arena_new();
    const char *address = arena != NULL ? bp_address_normalise(arena, argv[optind]) : NULL;
    if (address == NULL) {
        bp_cli_error("lookup", "'%s' is not an e-mail address", argv[optind]);
        rc = BP_EXIT_USAGE;
        goto out;
    }
    if (bp_cli_config_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    bp_status st = bp_cli_store_open(&env, "lookup", 1, &store);
    if (st == BP_ERR_NOT_FOUND) {
        printf("%s: not suppressed (no store yet)\n", address);
        rc = BP_EXIT_FAILURE;
        goto out;
    }
    if (st != BP_OK) {
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    if (run.json) {
        bp_strbuf_puts(&run.out, "{\"address\":");
        bp_json_string(&run.out, address);
        bp_strbuf_putc(&run.out, ',');
    }
    st = bp_store_lookup(store, address, print_suppression, &run);
    if (st == BP_ERR_NOT_FOUND) {
        if (run.json)
            bp_strbuf_puts(&run.out, "\"suppressed\":false,\"reason\":null");
        else
            bp_strbuf_printf(&run.out, "%s: not suppressed\n", address);
        st = BP_OK;
    }
    if (st == BP_OK) {
        if (run.json)
            bp_strbuf_puts(&run.out, ",\"evidence\":[");
        else
            bp_strbuf_puts(&run.out, "evidence:\n");
        st = bp_store_ledger_for(store, address, print_row, &run);
        if (run.json)
            bp_strbuf_puts(&run.out, "]}\n");
        else if (run.n_rows == 0)
            bp_strbuf_puts(&run.out, "  (none in the ledger)\n");
    }
    if (st != BP_OK) {
        bp_cli_error("lookup", "%s: %s", bp_status_to_string(st), bp_cli_store_error(&env, store));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    if (run.out.data != NULL)
        fputs(run.out.data, stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("lookup", "writing output failed");
        rc = BP_EXIT_FAILURE;
        goto out;
    }
    rc = run.found && run.active ? BP_EXIT_OK : BP_EXIT_FAILURE;
out:
    bp_strbuf_free(&run.out);
    bp_store_close(store);
    bp_arena_free(arena);
    bp_cli_env_cleanup(&env);
    return rc;
}
