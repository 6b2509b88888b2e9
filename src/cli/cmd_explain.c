/*
 * cmd_explain.c - bouncepipe explain [--rcpt ADDRESS] [--patterns FILE] [--no-builtin-rules]
 *                 [--config FILE] FILE...
 *
 * For each message of each FILE (a message, a directory, an mbox, a Maildir, - for stdin),
 * and for each event it yields, tells an operator why the event came out as it did:
 * the report family; which MIME part and which field gave the recipient, and whether the
 * VERP-decoded envelope recipient agrees; the codes and the diagnostic text; what the report
 * said around them (the SMTP stage and the words that state it, the innermost reply of a
 * wrapper, the passages about the recipient, the envelope sender and the sending host, a
 * local delivery program, the sending MTA's own verdict); the base verdict of the codes;
 * every rule that matched, in load order, with its id, file:line, category and the matched
 * span; a guard of the parties that changed the category; why the winner won; the block
 * list; where the message came from (sending IP, VMTA, stream, receiver, what is listed) and
 * where each of those was found; and the policy step that chose the action.  Nothing is
 * recorded.  Output is plain text for people; remote text is printed with control bytes
 * masked.  Exit 0, 1 when an input could not be read, 64 on bad usage, 78 on bad
 * configuration.
 */
#include <stdio.h>
#include <string.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/process.h"
#include "bouncepipe/source.h"
#include "bouncepipe/text.h"
#include "cli.h"

static const bp_cli_command explain_command = {
    "explain",
    BP_OPT_RCPT | BP_OPT_RULES | BP_OPT_CONFIG,
    NULL,
    0,
    NULL,
    1,
    -1,
    "usage: bouncepipe explain [--rcpt ADDRESS] [--patterns FILE] [--no-builtin-rules]\n"
    "                          [--config FILE] FILE...\n"
    "FILE is a message file, a directory of them, an mbox, a Maildir, or - for stdin.\n",
    BP_CLI_SETUP_RULES,
};

struct explain_run {
    bp_cli_env *env;
    bp_arena *arena;
    int failures;
};

/* Untrusted text masked (text.h: controls, C1, bidi overrides, invalid UTF-8 as '?'). */
static void put_masked(const char *s, size_t n)
{
    bp_strbuf sb = {0};
    if (bp_text_mask_append(&sb, s, strnlen(s, n), 0) == BP_OK && sb.data != NULL)
        fputs(sb.data, stdout);
    bp_strbuf_free(&sb);
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

/* The rule that won, in words: which one, where, in what order, within what scope. */
static void put_rule_why(const bp_explain *x)
{
    const bp_rule *w = x->matches[0].rule;
    printf("rule %s (%s:%u) is ", w->id, w->file, w->line);
    if (x->n_matches == 1)
        fputs("the only matching rule", stdout);
    else
        printf("the first of %zu matching rules in load order", x->n_matches);
    if (w->scope_status != NULL)
        printf(", within its scope status=%s", w->scope_status);
    if (w->scope_mta != NULL)
        printf("%s%s", w->scope_status != NULL ? " mta=" : ", within its scope mta=", w->scope_mta);
    if (w->scope_stage != NULL)
        printf("%s%s", w->scope_status != NULL || w->scope_mta != NULL ? " stage=" : ", within its scope stage=",
               w->scope_stage);
    if (w->blocklist != NULL)
        fputs(", naming a block list", stdout);
    if (x->verdict.step == BP_VERDICT_PASSAGES)
        fputs(", over the report's passages (the reply said nothing any rule knew, its codes are generic)", stdout);
    printf("; text beats codes (the codes alone would say %s)", x->codes_category);
}

/* How the category was chosen (bp_explain.category_step), in words, and the line end. */
static void put_category_why(const bp_explain *x)
{
    const char *text = x->had_diagnostic ? "no rule matched the text: " : "no diagnostic text: ";
    switch (x->category_step) {
    case BP_CATEGORY_UNRECOGNIZED: fputs("no report family recognised the message", stdout); break;
    case BP_CATEGORY_COMPLAINT: fputs("complaint: the feedback type decides", stdout); break;
    case BP_CATEGORY_NOT_FAILURE: fputs("not a failure: no category", stdout); break;
    case BP_CATEGORY_RULE: put_rule_why(x); break;
    case BP_CATEGORY_STATUS: printf("%sthe RFC 3463 table decides by the enhanced status code", text); break;
    case BP_CATEGORY_SMTP: printf("%sthe SMTP reply code decides", text); break;
    case BP_CATEGORY_DEFAULT: printf("%sno usable code either: other", text); break;
    case BP_CATEGORY_STATED: printf("the report states it (%s)", x->stated_by); break;
    case BP_CATEGORY_FAMILY: printf("%sno specific status either: the %s family's default", text, x->family); break;
    case BP_CATEGORY_FALLBACK:
        switch (x->verdict.step) {
        case BP_VERDICT_LOCAL_DELIVERY:
            printf("%sa local delivery program failed: the receiving host's configuration, not the mailbox", text);
            break;
        case BP_VERDICT_MTA:
            printf("%sthe sending MTA's own verdict (X-PowerMTA-BounceCategory) beats the code table (which "
                   "would say %s)",
                   text, x->codes_category);
            break;
        default:
            printf("%sa generic status and no words at all: counted as other, never ignored (the table would "
                   "say %s)",
                   text, x->codes_category);
            break;
        }
        break;
    }
    putchar('\n');
}

/* The guard of the parties that changed the category, in words, or nothing. */
static void put_guard(const bp_explain *x)
{
    const bp_verdict *v = &x->verdict;
    if (v->guard == BP_GUARD_NONE)
        return;
    printf("  %-12s %s (%s) would be a verdict on the recipient, but ", "guard:", v->guarded_category,
           v->guarded_rule != NULL ? v->guarded_rule : "-");
    switch (v->guard) {
    case BP_GUARD_STAGE:
        printf("the reply came at %s, before the recipient was named: %s\n",
               x->block != NULL ? bp_smtp_command_name(x->block->smtp_command) : "-", v->category);
        break;
    case BP_GUARD_SENDER:
        fputs("the reply names the envelope sender \"", stdout);
        put_masked(x->block->party_named, strlen(x->block->party_named));
        printf("\", not the recipient: %s\n", v->category);
        break;
    case BP_GUARD_SENDING_HOST:
        fputs("the reply names the sending host \"", stdout);
        put_masked(x->block->party_named, strlen(x->block->party_named));
        printf("\", not the recipient: %s\n", v->category);
        break;
    case BP_GUARD_NONE: break;
    }
}

/* What the report said around the codes (reading.c): the stage, the inner reply, the
 * passages, the parties, the sending MTA's verdict. */
static void put_reading(const bp_explain *x)
{
    const bp_rcpt_block *b = x->block;
    if (b == NULL)
        return;
    printf("  %-12s ", "stage:");
    if (b->smtp_command == BP_SMTP_NONE) {
        puts("- (the report does not say which SMTP command the failure answered)");
    } else {
        printf("%s (the report says \"", bp_smtp_command_name(b->smtp_command));
        if (b->smtp_command_said != NULL)
            put_masked(b->smtp_command_said, strlen(b->smtp_command_said));
        puts("\")");
    }
    if (b->reply != NULL) {
        printf("  %-12s ", "inner reply:");
        put_masked(b->reply, strlen(b->reply));
        printf(" (status %s, code %s: the innermost remote reply decides, not its wrapper)\n",
               b->reply_status != NULL ? b->reply_status : "-", b->reply_code != NULL ? b->reply_code : "-");
    }
    if (b->passages != NULL)
        put_field("passages:", b->passages);
    if (x->envelope_sender != NULL || x->sending_host != NULL) {
        printf("  %-12s sender ", "parties:");
        put_masked(x->envelope_sender != NULL ? x->envelope_sender : "-",
                   strlen(x->envelope_sender != NULL ? x->envelope_sender : "-"));
        fputs(", sending host ", stdout);
        put_masked(x->sending_host != NULL ? x->sending_host : "-",
                   strlen(x->sending_host != NULL ? x->sending_host : "-"));
        putchar('\n');
    }
    if (b->local_delivery)
        printf("  %-12s the failure came from a local delivery program (%s)\n",
               "local:", b->diagnostic_type != NULL ? b->diagnostic_type : "its words say so");
    if (b->mta_category != NULL) {
        printf("  %-12s X-PowerMTA-BounceCategory: ", "sending MTA:");
        put_masked(b->mta_category, strlen(b->mta_category));
        puts(x->verdict.step == BP_VERDICT_MTA ? " (used: no rule knew the reply)"
                                               : " (shown only: a rule or the layers before decided)");
    }
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
    if (x->rejected_address != NULL) {
        printf("  %-12s \"", "rejected:");
        put_masked(x->rejected_address, strlen(x->rejected_address));
        fputs("\" in ", stdout);
        put_masked(x->rejected_field != NULL ? x->rejected_field : "the report", 64);
        printf(": not an address: %s\n", x->rejected_why);
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
        put_reading(x);
        printf("  %-12s %s (the codes alone: RFC 3463 table, then the SMTP code)\n", "base:", x->codes_category);
        if (x->n_matches == 0) {
            printf("  %-12s none\n", "rules:");
        } else {
            printf("  %-12s %zu matched%s, in load order (the first wins):\n", "rules:", x->n_matches,
                   x->verdict.step == BP_VERDICT_PASSAGES ? " the passages" : "");
            for (size_t i = 0; i < x->n_matches && i < BP_EXPLAIN_MAX_MATCHES; i++) {
                const bp_rule_match *m = &x->matches[i];
                printf("    %s %zu. %s  %s:%u  %s  \"", i == 0 ? "*" : " ", i + 1, m->rule->id, m->rule->file,
                       m->rule->line, m->rule->category);
                if (x->matched_text != NULL)
                    put_masked(x->matched_text + m->start, m->end - m->start);
                printf("\" at %zu-%zu\n", m->start, m->end);
            }
            if (x->n_matches > BP_EXPLAIN_MAX_MATCHES)
                printf("      ... and %zu more\n", x->n_matches - BP_EXPLAIN_MAX_MATCHES);
        }
        put_guard(x);
        printf("  %-12s %s (rule %s)\n", "category:", e->category != NULL ? e->category : "-",
               e->rule != NULL ? e->rule : "-");
        printf("  %-12s ", "why:");
        put_category_why(x);
        if (bp_category_custom(e->category))
            printf("  %-12s %s is a custom category (an operator's rule file names it; it is not one of "
                   "bouncepipe's): its action is [policy] %s, soft when unset\n",
                   "note:", e->category, e->category);
        put_field("blocklist:", e->blocklist);
    } else {
        printf("  %-12s ", "why:");
        put_category_why(x);
    }
    bp_cli_explain_signals(stdout, e); /* sending IP, VMTA, stream, receiver: where each came from */
    printf("  %-12s %s (%s)\n\n", "action:", bp_action_name(e->action) != NULL ? bp_action_name(e->action) : "none",
           bp_cli_policy_words(x->action_step));
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

/* One message: processed with explanations, and worded.  @return 0 (the run goes on). */
static int explain_one(void *user, const bp_source *src, const bp_source_msg *msg)
{
    (void)src;
    struct explain_run *run = user;
    bp_arena_reset(run->arena);
    bp_envelope envelope = {msg->name, run->env->rcpt, NULL};
    bp_process_result res;
    bp_status st =
        bp_process_message(&run->env->pipeline, &envelope, BP_PROCESS_EXPLAIN, msg->data, msg->len, run->arena, &res);
    if (st != BP_OK || res.explains == NULL) {
        bp_cli_error("explain", "%s: %s", msg->name, bp_status_to_string(st != BP_OK ? st : BP_ERR_NOMEM));
        run->failures++;
        return 0;
    }
    if (msg->truncated)
        puts("(message longer than the limit: only its beginning was read)");
    explain_message(msg->name, &res);
    return 0;
}

static int explain_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct explain_run *run = user;
    run->env = env;
    int rc = BP_EXIT_OK;
    run->arena = bp_cli_arena_new("explain");
    if (run->arena == NULL) {
        rc = BP_EXIT_SOFTWARE;
    } else {
        bp_cli_each_message("explain", argc - optind, argv + optind, explain_one, NULL, run, &run->failures);
        if (run->failures > 0)
            rc = BP_EXIT_FAILURE;
        if (fflush(stdout) != 0 || ferror(stdout)) {
            bp_cli_error("explain", "writing output failed");
            rc = BP_EXIT_FAILURE;
        }
    }
    bp_arena_free(run->arena);
    return rc;
}

const bp_cli_entry bp_cli_explain = {&explain_command, NULL, explain_main, sizeof(struct explain_run), NULL};
