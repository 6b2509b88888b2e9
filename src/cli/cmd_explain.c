/*
 * cmd_explain.c - bouncepipe explain [--rcpt ADDRESS] [--patterns FILE] [--no-builtin-rules]
 *                 [--config FILE] FILE...
 *
 * For each message of each FILE (a message, a directory, an mbox, a Maildir, - for stdin),
 * and for each event it yields, tells an operator why the event came out as it did:
 * the report family; which MIME part and which field gave the recipient, and whether the
 * VERP-decoded envelope recipient agrees; the codes and the diagnostic text; every rule that
 * matched, in load order, with its id, file:line, category and the matched span; why the
 * winner won; the block list; and the policy step that chose the action.  Nothing is
 * recorded.  Output is plain text for people; remote text is printed with control bytes
 * masked.  Exit 0, 1 when an input could not be read, 64 on bad usage, 78 on bad
 * configuration.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/process.h"
#include "bouncepipe/source.h"
#include "cli.h"

static void explain_usage(FILE *out)
{
    fprintf(out, "usage: bouncepipe explain [--rcpt ADDRESS] [--patterns FILE] [--no-builtin-rules]\n"
                 "                          [--config FILE] FILE...\n"
                 "FILE is a message file, a directory of them, an mbox, a Maildir, or - for stdin.\n");
}

/* Untrusted text with control bytes shown as '?'. */
static void put_masked(const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        putchar(c < 0x20 || c == 0x7F ? '?' : c);
    }
}

static void put_field(const char *label, const char *value)
{
    printf("  %-12s ", label);
    if (value == NULL)
        fputs("-", stdout);
    else
        put_masked(value, strlen(value));
    putchar('\n');
}

static void explain_event(const bp_event *e, const bp_explain *x, size_t index)
{
    printf("event %zu: %s\n", index + 1, bp_event_type_name(e->type));
    put_field("recipient:", e->recipient);
    if (e->recipient != NULL) {
        printf("  %-12s %s", "found in:", e->recipient_from != NULL ? e->recipient_from : "-");
        if (x->field != NULL && e->recipient_from != NULL && strcmp(e->recipient_from, "verp") != 0) {
            fputs(" (field \"", stdout);
            put_masked(x->field, strlen(x->field));
            printf("\" of MIME part %u)", x->part_index);
        } else if (e->recipient_from != NULL && strcmp(e->recipient_from, "verp") == 0) {
            fputs(" (the report named nobody: decoded from the envelope recipient)", stdout);
        }
        putchar('\n');
    }
    if (x->verp_address != NULL) {
        printf("  %-12s ", "VERP:");
        put_masked(x->verp_address, strlen(x->verp_address));
        puts(x->verp_disagrees ? " (DIFFERS from the report's recipient: the report wins)" : "");
    }
    if (e->type == BP_EVENT_COMPLAINT) {
        put_field("feedback:", e->feedback_type);
    } else if (e->type == BP_EVENT_BOUNCE || e->type == BP_EVENT_DELAY) {
        printf("  %-12s %s   smtp code: %s   final: %s\n", "status:", e->status != NULL ? e->status : "-",
               e->smtp_code != NULL ? e->smtp_code : "-", e->final ? "yes" : "no (temporary)");
        put_field("remote MTA:", e->remote_mta);
        put_field("diagnostic:", e->diagnostic);
        if (x->n_matches == 0) {
            printf("  %-12s none\n", "rules:");
        } else {
            printf("  %-12s %zu matched, in load order (the first wins):\n", "rules:", x->n_matches);
            for (size_t i = 0; i < x->n_matches && i < BP_EXPLAIN_MAX_MATCHES; i++) {
                const bp_rule_match *m = &x->matches[i];
                printf("    %s %zu. %s  %s:%u  %s  \"", i == 0 ? "*" : " ", i + 1, m->rule->id, m->rule->file,
                       m->rule->line, m->rule->category);
                if (e->diagnostic != NULL)
                    put_masked(e->diagnostic + m->start, m->end - m->start);
                printf("\" at %zu-%zu\n", m->start, m->end);
            }
            if (x->n_matches > BP_EXPLAIN_MAX_MATCHES)
                printf("      ... and %zu more\n", x->n_matches - BP_EXPLAIN_MAX_MATCHES);
        }
        printf("  %-12s %s (rule %s)\n", "category:", e->category != NULL ? e->category : "-",
               e->rule != NULL ? e->rule : "-");
        printf("  %-12s %s\n", "why:", x->category_why != NULL ? x->category_why : "-");
        put_field("blocklist:", e->blocklist);
    } else {
        printf("  %-12s %s\n", "why:", x->category_why != NULL ? x->category_why : "-");
    }
    printf("  %-12s %s (%s)\n\n", "action:", bp_action_name(e->action) != NULL ? bp_action_name(e->action) : "none",
           x->action_why != NULL ? x->action_why : "-");
}

static void explain_message(const char *name, const bp_process_result *res)
{
    fputs("== ", stdout);
    put_masked(name, strlen(name));
    putchar('\n');
    printf("  %-12s %s (%s)\n", "report:", bp_report_kind_name(res->report.kind),
           res->report.family != NULL ? res->report.family : "no family recognised it");
    put_field("message-id:", res->report.message_id);
    put_field("reporting:", res->report.reporting_mta);
    if (res->mime_failed)
        puts("  (GMime found no message in the input)");
    if (res->effort.cut != BP_EFFORT_OK)
        printf("  %-12s the %s budget ran out in the %s after %llu ms of CPU time and %llu PCRE2 searches: the rest "
               "of the message was treated as unrecognised text\n",
               "effort:", bp_effort_cut_name(res->effort.cut), res->effort.cut_in != NULL ? res->effort.cut_in : "-",
               (unsigned long long)(res->effort.cut_after_ns / 1000000u), (unsigned long long)res->effort.searches);
    putchar('\n');
    for (size_t i = 0; i < res->n_events; i++)
        explain_event(&res->events[i], &res->explains[i], i);
}

int cmd_explain(int argc, char **argv)
{
    static const struct option longopts[] = {{"rcpt", required_argument, NULL, 'r'},
                                             {"patterns", required_argument, NULL, 'p'},
                                             {"no-builtin-rules", no_argument, NULL, 'B'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bp_cli_env env = {0};
    const char *rcpt = NULL;
    int opt, rc = BP_EXIT_OK;
    bp_arena *arena = NULL;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "r:p:Bc:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': rcpt = optarg; break;
        case 'p': env.patterns_file = optarg; break;
        case 'B': env.no_builtin = 1; break;
        case 'c': env.config_file = optarg; break;
        case 'h': explain_usage(stdout); return BP_EXIT_OK;
        default: explain_usage(stderr); return BP_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        explain_usage(stderr);
        return BP_EXIT_USAGE;
    }
    if (bp_cli_env_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    arena = bp_arena_new();
    if (arena == NULL) {
        bp_cli_error("explain", "out of memory");
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        bp_source *src = NULL;
        bp_status st = bp_source_open(argv[i], &src);
        if (st != BP_OK) {
            bp_cli_error("explain", "%s: %s", argv[i], bp_status_to_string(st));
            rc = BP_EXIT_FAILURE;
            continue;
        }
        for (;;) {
            bp_source_msg msg;
            int done = 0;
            st = bp_source_next(src, &msg, &done);
            if (done)
                break;
            if (st != BP_OK) {
                bp_cli_error("explain", "%s: %s", msg.name != NULL ? msg.name : argv[i], bp_status_to_string(st));
                rc = BP_EXIT_FAILURE;
                if (st == BP_ERR_NOMEM)
                    break;
                continue;
            }
            bp_arena_reset(arena);
            bp_classify_ctx ctx;
            bp_cli_classify_ctx(&env, rcpt, NULL, msg.name, &ctx);
            ctx.explain = 1;
            bp_process_result res;
            st = bp_process_message(&ctx, &env.config.report, msg.data, msg.len, arena, &res);
            if (st != BP_OK || res.explains == NULL) {
                bp_cli_error("explain", "%s: %s", msg.name, bp_status_to_string(st != BP_OK ? st : BP_ERR_NOMEM));
                rc = BP_EXIT_FAILURE;
                continue;
            }
            if (msg.truncated)
                puts("(message longer than the limit: only its beginning was read)");
            explain_message(msg.name, &res);
        }
        bp_source_close(src);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("explain", "writing output failed");
        rc = BP_EXIT_FAILURE;
    }
out:
    bp_arena_free(arena);
    bp_cli_env_cleanup(&env);
    return rc;
}
