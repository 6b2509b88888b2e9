/*
 * cmd_export.c - bouncepipe export [--db PATH] [--config FILE] [--format csv|json|ndjson|plain|text]
 *                [--since DATE] [--type KIND] [--category REASON] [--domain DOMAIN] [--all]
 *
 * Prints the suppression list for list software: csv (a header line, CRLF, cells starting
 * with = + - @ neutralised), json (one array), ndjson (one object a line), plain (one
 * address a line), text (aligned, for people).  Every row is described once (export_row())
 * and written by the structured writer (writer.h) in the format chosen; text is a layout of
 * its own.  Filters: --since (last evidence at or after DATE: YYYY-MM-DD,
 * YYYY-MM-DDTHH:MM:SS or Unix seconds), --type (source kind: bounce, complaint,
 * soft-threshold, import, manual), --category (the reason), --domain; --all includes lifted
 * rows (with their lift).  Every address written is a valid address (bp_address_check()):
 * a store written before addresses were validated may hold others, which only the text
 * format shows (masked); the rest leave them out and say how many on standard error.  Every
 * value is masked by the writer (writer.h), so no stored byte reaches a terminal as a control.
 * Exit status: 0; 1 output or store failure; 64 usage; 75 store busy; 78 configuration.
 *
 * Ownership: the writer buffers rows and streams a long list.
 */
#include <stdio.h>
#include <string.h>

#include "bouncepipe/address.h"
#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"
#include "cli.h"

typedef enum export_format { EX_CSV, EX_JSON, EX_NDJSON, EX_PLAIN, EX_TEXT } export_format;
static const char *const export_formats[] = {"csv", "json", "ndjson", "plain", "text", NULL};

static const struct option export_options[] = {{"type", required_argument, NULL, 't'},
                                               {"category", required_argument, NULL, 'C'},
                                               {"domain", required_argument, NULL, 'D'},
                                               {"all", no_argument, NULL, 'a'},
                                               {NULL, 0, NULL, 0}};
static const bp_cli_command export_command = {
    "export",
    BP_OPT_STORE | BP_OPT_FORMAT | BP_OPT_SINCE,
    export_options,
    0,
    export_formats,
    0,
    0,
    "usage: bouncepipe export [--db PATH] [--config FILE] [--format csv|json|ndjson|plain|text]\n"
    "                         [--since DATE] [--type KIND] [--category REASON] [--domain DOMAIN] [--all]\n",
    BP_CLI_SETUP_CONFIG,
};

static const char *const export_columns[] = {"address",   "domain", "reason", "source_kind", "first_seen",
                                             "last_seen", "count",  "lifted", "lift_reason", "lifted_at"};

struct export_run {
    export_format format;
    bp_store_filter filter;
    char domain[256];
    bp_writer *w;
    bp_strbuf text, cell[3];
    size_t invalid; /* stored addresses that are not valid addresses, left out */
};

static int export_option(void *user, int opt, const char *arg)
{
    struct export_run *run = user;
    switch (opt) {
    case 't': run->filter.type = arg; return 0;
    case 'C': run->filter.category = arg; return 0;
    case 'D':
        snprintf(run->domain, sizeof(run->domain), "%s", arg);
        run->filter.domain = bp_ascii_lower(run->domain);
        return 0;
    case 'a': run->filter.include_lifted = 1; return 0;
    default: return BP_EXIT_USAGE;
    }
}

/* @p s masked (text.h) into @p sb, for a column of the text layout. */
static const char *masked(bp_strbuf *sb, const char *s)
{
    bp_strbuf_clear(sb);
    if (bp_text_mask_append(sb, s, strlen(s), 0) != BP_OK || sb->data == NULL)
        return "?";
    return sb->data;
}

/* One row for people: the stored values masked, so that each row stays on its line. */
static void text_row(struct export_run *run, const bp_suppression *r)
{
    char last[32];
    bp_strbuf_clear(&run->text);
    bp_strbuf_printf(&run->text, "%-40s %-15s %-20s last %s  x%lld%s%s\n", masked(&run->cell[0], r->address),
                     r->source_kind, masked(&run->cell[1], r->reason != NULL ? r->reason : "-"),
                     bp_cli_format_time(r->last_seen, last, sizeof(last)), r->count, r->lifted ? "  LIFTED: " : "",
                     masked(&run->cell[2], r->lifted && r->lift_reason ? r->lift_reason : ""));
    bp_writer_raw(run->w, run->text.data, run->text.len);
}

static int export_row(void *user, const bp_suppression *r)
{
    struct export_run *run = user;
    bp_writer *w = run->w;
    if (run->format == EX_TEXT) {
        text_row(run, r); /* for people: every row, masked */
    } else if (bp_address_check(r->address) != NULL) {
        run->invalid++; /* written before addresses were validated: no list software gets it */
    } else if (run->format == EX_PLAIN) {
        bp_writer_string(w, r->address);
        bp_writer_separator(w);
    } else {
        if (run->format == EX_JSON)
            bp_writer_separator(w); /* one row a line inside the array */
        bp_writer_begin_map(w);
        bp_writer_entry_string(w, "address", r->address);
        bp_writer_entry_string(w, "domain", r->domain);
        bp_cli_write_suppression(w, r);
        bp_writer_end(w);
        if (run->format == EX_NDJSON)
            bp_writer_separator(w);
    }
    return bp_writer_status(w) == BP_OK ? 0 : 1; /* a failed write stops the listing */
}

/* The list, framed as the format wants.  @return the store's status, or BP_ERR_IO. */
static bp_status export_run(struct export_run *run, bp_store *store)
{
    static const bp_writer_format writer_format[] = {
        [EX_CSV] = BP_WRITER_CSV,    [EX_JSON] = BP_WRITER_JSON, [EX_NDJSON] = BP_WRITER_JSON,
        [EX_PLAIN] = BP_WRITER_TEXT, [EX_TEXT] = BP_WRITER_TEXT,
    };
    run->w = bp_writer_new(stdout, writer_format[run->format]);
    if (run->w == NULL)
        return BP_ERR_NOMEM;
    bp_writer_columns(run->w, export_columns, sizeof(export_columns) / sizeof(export_columns[0]));
    if (run->format == EX_JSON)
        bp_writer_begin_list(run->w);
    bp_status st = store != NULL ? bp_store_export(store, &run->filter, export_row, run) : BP_OK;
    if (st != BP_OK)
        return st;
    if (run->format == EX_JSON) {
        bp_writer_end(run->w);
        bp_writer_separator(run->w);
    }
    return bp_writer_flush(run->w) == BP_OK ? BP_OK : BP_ERR_IO;
}

static int export_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct export_run *run = user;
    bp_store *store = NULL;
    run->format = (export_format)env->format;
    run->filter.since = env->since;
    int rc = bp_cli_store_ready(env, 1, 1, &store); /* no store yet: an empty list */
    if (rc != BP_EXIT_OK)
        goto out;
    bp_status st = export_run(run, store);
    if (st == BP_ERR_IO || (st == BP_OK && (fflush(stdout) != 0 || ferror(stdout)))) {
        bp_cli_error("export", "writing output failed");
        rc = BP_EXIT_FAILURE;
    } else if (st != BP_OK) {
        rc = bp_cli_store_failed(env, store, st);
    } else if (run->invalid > 0) {
        bp_cli_error("export",
                     "%zu stored address%s not a valid address (recorded before addresses were validated) and "
                     "%s left out; --format text shows them",
                     run->invalid, run->invalid == 1 ? " is" : "es are", run->invalid == 1 ? "was" : "were");
    }
out:
    bp_writer_free(run->w);
    bp_strbuf_free(&run->text);
    for (size_t i = 0; i < sizeof(run->cell) / sizeof(run->cell[0]); i++)
        bp_strbuf_free(&run->cell[i]);
    bp_store_close(store);
    return rc;
}

const bp_cli_entry bp_cli_export = {&export_command, export_option, export_main, sizeof(struct export_run), NULL};
