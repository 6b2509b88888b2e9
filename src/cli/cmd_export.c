/*
 * cmd_export.c - bouncepipe export [--db PATH] [--config FILE] [--format csv|json|ndjson|plain|text]
 *                [--since DATE] [--type KIND] [--category REASON] [--domain DOMAIN] [--all]
 *
 * Prints the suppression list for list software: csv (a header line, CRLF, cells starting
 * with = + - @ neutralised by bp_csv_cell()), json (one array), ndjson (one object a line),
 * plain (one address a line), text (aligned, for people).  Filters: --since (last evidence
 * at or after DATE: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or Unix seconds), --type (source kind:
 * bounce, complaint, soft-threshold, import, manual), --category (the reason), --domain;
 * --all includes lifted rows (with their lift).
 * Exit status: 0; 1 output or store failure; 64 usage; 75 store busy; 78 configuration.
 *
 * Ownership: one output buffer, flushed every row.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bouncepipe/emit.h"
#include "bouncepipe/text.h"
#include "cli.h"

typedef enum export_format { EX_CSV, EX_JSON, EX_NDJSON, EX_PLAIN, EX_TEXT } export_format;

struct export_run {
    export_format format;
    FILE *out;
    bp_strbuf sb;
    size_t rows;
    int failed;
};

static void export_usage(FILE *out)
{
    fprintf(out,
            "usage: bouncepipe export [--db PATH] [--config FILE] [--format csv|json|ndjson|plain|text]\n"
            "                         [--since DATE] [--type KIND] [--category REASON] [--domain DOMAIN] [--all]\n");
}

static void json_row(bp_strbuf *sb, const bp_suppression *r)
{
    char first[32], last[32], lifted[32];
    bp_strbuf_puts(sb, "{\"address\":");
    bp_json_string(sb, r->address);
    bp_strbuf_puts(sb, ",\"domain\":");
    bp_json_string(sb, r->domain);
    bp_strbuf_puts(sb, ",\"reason\":");
    bp_json_string(sb, r->reason);
    bp_strbuf_puts(sb, ",\"source_kind\":");
    bp_json_string(sb, r->source_kind);
    bp_strbuf_printf(sb, ",\"first_seen\":\"%s\",\"last_seen\":\"%s\",\"count\":%lld,\"lifted\":%s,\"lift_reason\":",
                     bp_cli_format_time(r->first_seen, first, sizeof(first)),
                     bp_cli_format_time(r->last_seen, last, sizeof(last)), r->count, r->lifted ? "true" : "false");
    bp_json_string(sb, r->lifted ? r->lift_reason : NULL);
    bp_strbuf_puts(sb, ",\"lifted_at\":");
    if (r->lifted)
        bp_strbuf_printf(sb, "\"%s\"}", bp_cli_format_time(r->lifted_at, lifted, sizeof(lifted)));
    else
        bp_strbuf_puts(sb, "null}");
}

static int export_row(void *user, const bp_suppression *r)
{
    struct export_run *run = user;
    bp_strbuf *sb = &run->sb;
    char first[32], last[32], lifted[32];
    bp_strbuf_clear(sb);
    switch (run->format) {
    case EX_PLAIN: bp_strbuf_printf(sb, "%s\n", r->address); break;
    case EX_NDJSON:
        json_row(sb, r);
        bp_strbuf_putc(sb, '\n');
        break;
    case EX_JSON:
        bp_strbuf_puts(sb, run->rows == 0 ? "[\n" : ",\n");
        json_row(sb, r);
        break;
    case EX_TEXT:
        bp_strbuf_printf(sb, "%-40s %-15s %-20s last %s  x%lld%s%s\n", r->address, r->source_kind,
                         r->reason != NULL ? r->reason : "-", bp_cli_format_time(r->last_seen, last, sizeof(last)),
                         r->count, r->lifted ? "  LIFTED: " : "", r->lifted && r->lift_reason ? r->lift_reason : "");
        break;
    case EX_CSV: {
        char count[24], lifted_flag[2] = {r->lifted ? '1' : '0', '\0'};
        snprintf(count, sizeof(count), "%lld", r->count);
        const char *cells[] = {r->address,
                               r->domain,
                               r->reason,
                               r->source_kind,
                               bp_cli_format_time(r->first_seen, first, sizeof(first)),
                               bp_cli_format_time(r->last_seen, last, sizeof(last)),
                               count,
                               lifted_flag,
                               r->lifted ? r->lift_reason : NULL,
                               r->lifted ? bp_cli_format_time(r->lifted_at, lifted, sizeof(lifted)) : NULL};
        for (size_t i = 0; i < sizeof(cells) / sizeof(cells[0]); i++) {
            if (i > 0)
                bp_strbuf_putc(sb, ',');
            bp_csv_cell(sb, cells[i]);
        }
        bp_strbuf_puts(sb, "\r\n");
        break;
    }
    }
    run->rows++;
    if (sb->data != NULL && fwrite(sb->data, 1, sb->len, run->out) != sb->len) {
        run->failed = 1;
        return 1;
    }
    return 0;
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},     {"config", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'f'}, {"since", required_argument, NULL, 's'},
        {"type", required_argument, NULL, 't'},   {"category", required_argument, NULL, 'C'},
        {"domain", required_argument, NULL, 'D'}, {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    static const struct {
        const char *name;
        export_format format;
    } formats[] = {{"csv", EX_CSV}, {"json", EX_JSON}, {"ndjson", EX_NDJSON}, {"plain", EX_PLAIN}, {"text", EX_TEXT}};
    bp_cli_env env = {0};
    bp_store_filter filter;
    struct export_run run;
    bp_store *store = NULL;
    char domain[256];
    int opt, rc = BP_EXIT_OK;
    memset(&filter, 0, sizeof(filter));
    memset(&run, 0, sizeof(run));
    run.out = stdout;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:f:s:t:C:D:ah", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': env.db = optarg; break;
        case 'c': env.config_file = optarg; break;
        case 'f': {
            size_t i = 0;
            while (i < sizeof(formats) / sizeof(formats[0]) && strcmp(formats[i].name, optarg) != 0)
                i++;
            if (i == sizeof(formats) / sizeof(formats[0])) {
                bp_cli_error("export", "unknown format '%s' (csv, json, ndjson, plain, text)", optarg);
                return BP_EXIT_USAGE;
            }
            run.format = formats[i].format;
            break;
        }
        case 's':
            filter.since = bp_cli_parse_time(optarg);
            if (filter.since < 0) {
                bp_cli_error("export", "--since: want YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or Unix seconds");
                return BP_EXIT_USAGE;
            }
            break;
        case 't': filter.type = optarg; break;
        case 'C': filter.category = optarg; break;
        case 'D':
            snprintf(domain, sizeof(domain), "%s", optarg);
            filter.domain = bp_ascii_lower(domain);
            break;
        case 'a': filter.include_lifted = 1; break;
        case 'h': export_usage(stdout); return BP_EXIT_OK;
        default: export_usage(stderr); return BP_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        export_usage(stderr);
        return BP_EXIT_USAGE;
    }
    if (bp_cli_config_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    bp_status st = bp_cli_store_open(&env, "export", 1, &store);
    if (st == BP_ERR_NOT_FOUND) {
        st = BP_OK; /* no store yet: an empty list */
    } else if (st != BP_OK) {
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    if (run.format == EX_CSV)
        fputs("address,domain,reason,source_kind,first_seen,last_seen,count,lifted,lift_reason,lifted_at\r\n", stdout);
    if (store != NULL)
        st = bp_store_export(store, &filter, export_row, &run);
    if (st != BP_OK) {
        bp_cli_error("export", "%s: %s", bp_status_to_string(st), bp_cli_store_error(&env, store));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    if (run.format == EX_JSON)
        fputs(run.rows == 0 ? "[]\n" : "\n]\n", stdout);
    if (run.failed || fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("export", "writing output failed");
        rc = BP_EXIT_FAILURE;
    }
out:
    bp_strbuf_free(&run.sb);
    bp_store_close(store);
    bp_cli_env_cleanup(&env);
    return rc;
}
