/*
 * cmd_lookup.c - bouncepipe lookup [--db PATH] [--config FILE] [--format text|json] ADDRESS
 *
 * Says whether ADDRESS is suppressed, why (reason, source kind, first and last evidence, how
 * many pieces of evidence; a lift and its reason), and lists its ledger rows in evidence-time
 * order.  json is one object written by the structured writer (writer.h); text is a layout for
 * people.  The address is found in any spelling (the store's identity is case-insensitive);
 * each row shows the spelling it was recorded with, and a second report of a failure through
 * the other channel (an accounting record and a DSN) names the row that counts it.
 * Nothing is printed unless every query succeeded.  Exit status: 0 suppressed, 1 not
 * suppressed (or unknown) or a corrupt store, 64 usage, 75 store busy or unreachable, 78
 * configuration.
 *
 * ADDRESS must be exactly one address (bp_address_parse(): angle brackets and white space
 * around it allowed, nothing else); the text layout masks what the store holds (a store
 * written before addresses were validated may hold anything).
 *
 * Ownership: the address is normalised into an arena freed on return; the text layout is
 * built in a buffer, the JSON in the writer's, both written once at the end.
 */
#include <stdio.h>
#include <string.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"
#include "cli.h"

static const char *const lookup_formats[] = {"text", "json", NULL};
static const bp_cli_command lookup_command = {
    "lookup",
    BP_OPT_STORE | BP_OPT_FORMAT,
    NULL,
    0,
    lookup_formats,
    1,
    1,
    "usage: bouncepipe lookup [--db PATH] [--config FILE] [--format text|json] ADDRESS\n",
    BP_CLI_SETUP_NONE,
};

struct lookup_run {
    bp_writer *w;     /* json, else NULL: text into out */
    char listed[512]; /* the address as the suppression row shows it, else as asked */
    int found, active;
    int n_rows;
    bp_strbuf out;
    bp_arena *arena; /* masked copies of what the text layout shows */
};

/* A stored value for the text layout, masked (text.h): a store written before addresses were
 * validated, or a hostile note, keeps every row on its line.  NULL stays NULL. */
static const char *shown(struct lookup_run *run, const char *s)
{
    if (s == NULL)
        return NULL;
    const char *m = bp_text_mask(run->arena, s, 65536);
    return m != NULL ? m : "?";
}

static int print_suppression(void *user, const bp_suppression *r)
{
    struct lookup_run *run = user;
    char first[32], last[32], lifted[32];
    run->found = 1;
    snprintf(run->listed, sizeof(run->listed), "%s", r->address);
    run->active = !r->lifted;
    if (run->w != NULL) {
        bp_writer_key(run->w, "suppressed");
        bp_writer_boolean(run->w, !r->lifted);
        bp_writer_key(run->w, "listed_as"); /* the spelling the list shows: the first recorded */
        bp_writer_string(run->w, r->address);
        bp_cli_write_suppression(run->w, r);
        return 0;
    }
    bp_cli_format_time(r->first_seen, first, sizeof(first));
    bp_cli_format_time(r->last_seen, last, sizeof(last));
    bp_cli_format_time(r->lifted_at, lifted, sizeof(lifted));
    bp_strbuf *sb = &run->out;
    const char *address = shown(run, r->address), *reason = shown(run, r->reason);
    const char *lift_reason = shown(run, r->lift_reason);
    if (r->lifted)
        bp_strbuf_printf(sb, "%s: not suppressed: lifted %s (%s); was suppressed for %s (%s)\n", address, lifted,
                         lift_reason != NULL ? lift_reason : "no reason given", reason != NULL ? reason : "-",
                         r->source_kind);
    else
        bp_strbuf_printf(sb, "%s: SUPPRESSED: %s (%s)\n", address, reason != NULL ? reason : "-", r->source_kind);
    bp_strbuf_printf(sb, "  first evidence %s, last %s, %lld suppressing piece%s of evidence\n", first, last, r->count,
                     r->count == 1 ? "" : "s");
    return 0;
}

static void json_row(bp_writer *w, const bp_ledger_row *r)
{
    const bp_event *e = &r->event;
    int is_event = strcmp(r->kind, BP_LEDGER_EVENT) == 0;
    char when[32];
    const bp_cli_field f[] = {{"kind", r->kind},
                              {"evidence_time", bp_cli_format_time(r->evidence_time, when, sizeof(when))},
                              {"recipient", e->recipient},
                              {"type", is_event ? bp_event_type_name(e->type) : NULL},
                              {"action", is_event ? bp_action_name(e->action) : NULL},
                              {"category", e->category},
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
    bp_writer_begin_map(w);
    bp_writer_entry_integer(w, "id", r->id);
    bp_cli_write_fields(w, f, sizeof(f) / sizeof(f[0]));
    bp_writer_key(w, "paired_with"); /* the row that counts this failure; null: this row counts */
    if (r->paired_with != 0)
        bp_writer_integer(w, r->paired_with);
    else
        bp_writer_null(w);
    bp_writer_key(w, "reported_again"); /* the row that reported this failure again */
    if (r->reported_again != 0)
        bp_writer_integer(w, r->reported_again);
    else
        bp_writer_null(w);
    bp_writer_end(w);
}

static void text_row(struct lookup_run *run, const bp_ledger_row *r)
{
    bp_strbuf *sb = &run->out;
    bp_event shown_event = r->event; /* its text masked */
    const bp_event *e = &shown_event;
    const char **text[] = {&shown_event.category,  &shown_event.feedback_type, &shown_event.rule,
                           &shown_event.source,    &shown_event.message_id,    &shown_event.reporting_mta,
                           &shown_event.diagnostic};
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        *text[i] = shown(run, *text[i]);
    const char *note = shown(run, r->note);
    char when[32];
    bp_cli_format_time(r->evidence_time, when, sizeof(when));
    if (strcmp(r->kind, BP_LEDGER_EVENT) != 0) {
        bp_strbuf_printf(sb, "  %s  %-9s %s\n", when, r->kind, note != NULL ? note : "");
        if (r->event.recipient != NULL && strcmp(r->event.recipient, run->listed) != 0)
            bp_strbuf_printf(sb, "      as %s\n", shown(run, r->event.recipient));
        return;
    }
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
    bp_strbuf_printf(sb, " (row %lld)\n", r->id);
    if (r->event.recipient != NULL && strcmp(r->event.recipient, run->listed) != 0)
        bp_strbuf_printf(sb, "      as %s\n", shown(run, r->event.recipient));
    if (r->paired_with != 0)
        bp_strbuf_printf(sb, "      the same failure as row %lld, reported through the other channel: counted once\n",
                         r->paired_with);
    if (r->reported_again != 0)
        bp_strbuf_printf(sb, "      reported again through the other channel as row %lld\n", r->reported_again);
    if (e->diagnostic != NULL)
        bp_strbuf_printf(sb, "      \"%s\"\n", e->diagnostic);
}

static int print_row(void *user, const bp_ledger_row *r)
{
    struct lookup_run *run = user;
    if (run->w != NULL)
        json_row(run->w, r);
    else
        text_row(run, r);
    run->n_rows++;
    return 0;
}

/* The suppression and the ledger rows of @p address.  @return the store's status. */
static bp_status lookup_run(struct lookup_run *run, bp_store *store, const char *address)
{
    if (run->w != NULL) {
        bp_writer_begin_map(run->w);
        bp_writer_key(run->w, "address");
        bp_writer_string(run->w, address);
    }
    bp_status st = bp_store_lookup(store, address, print_suppression, run);
    if (st == BP_ERR_NOT_FOUND) {
        if (run->w != NULL) {
            bp_writer_key(run->w, "suppressed");
            bp_writer_boolean(run->w, 0);
            bp_writer_key(run->w, "reason");
            bp_writer_null(run->w);
        } else {
            bp_strbuf_printf(&run->out, "%s: not suppressed\n", shown(run, address));
        }
        st = BP_OK;
    }
    if (st != BP_OK)
        return st;
    if (run->w != NULL) {
        bp_writer_key(run->w, "evidence");
        bp_writer_begin_list(run->w);
    } else {
        bp_strbuf_puts(&run->out, "evidence:\n");
    }
    st = bp_store_ledger_for(store, address, print_row, run);
    if (st != BP_OK)
        return st;
    if (run->w != NULL) {
        bp_writer_end(run->w);
        bp_writer_end(run->w);
        bp_writer_separator(run->w);
    } else if (run->n_rows == 0) {
        bp_strbuf_puts(&run->out, "  (none in the ledger)\n");
    }
    return BP_OK;
}

static int lookup_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct lookup_run *run = user;
    bp_store *store = NULL;
    bp_arena *arena = NULL;
    int rc = BP_EXIT_OK;
    arena = bp_arena_new();
    const char *why = "out of memory";
    const char *address = arena != NULL ? bp_address_parse(arena, argv[optind], &why) : NULL;
    if (address == NULL) {
        bp_cli_error("lookup", "'%s' is not an e-mail address: %s",
                     arena != NULL ? bp_text_mask(arena, argv[optind], 1024) : "", why);
        rc = BP_EXIT_USAGE;
        goto out;
    }
    run->arena = arena;
    if (bp_cli_config_setup(env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    bp_status st = bp_cli_store_open(env, 1, &store);
    if (st == BP_ERR_NOT_FOUND) {
        printf("%s: not suppressed (no store yet)\n", address);
        rc = BP_EXIT_FAILURE;
        goto out;
    }
    if (st == BP_OK && strcmp(lookup_formats[env->format], "json") == 0 &&
        (run->w = bp_writer_new(stdout, BP_WRITER_JSON)) == NULL)
        st = BP_ERR_NOMEM;
    snprintf(run->listed, sizeof(run->listed), "%s", address);
    if (st == BP_OK)
        st = lookup_run(run, store, address);
    if (st != BP_OK) {
        if (store != NULL)
            bp_cli_error("lookup", "%s: %s", bp_status_to_string(st), bp_cli_store_error(env, store));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    if (run->out.data != NULL) {
        bp_strbuf shown = {0}; /* the layout's lines; what the store holds masked (text.h) */
        if (bp_text_mask_append(&shown, run->out.data, run->out.len, BP_MASK_KEEP_NEWLINES) == BP_OK &&
            shown.data != NULL)
            fputs(shown.data, stdout);
        bp_strbuf_free(&shown);
    }
    if ((run->w != NULL && bp_writer_flush(run->w) != BP_OK) || fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("lookup", "writing output failed");
        rc = BP_EXIT_FAILURE;
        goto out;
    }
    rc = run->found && run->active ? BP_EXIT_OK : BP_EXIT_FAILURE;
out:
    bp_writer_free(run->w);
    bp_strbuf_free(&run->out);
    bp_store_close(store);
    bp_arena_free(arena);
    return rc;
}

const bp_cli_entry bp_cli_lookup = {&lookup_command, NULL, lookup_main, sizeof(struct lookup_run), NULL};
