/*
 * cmd_patterns.c - bouncepipe patterns check|test|import-kumo: work on rule files.
 *
 *   patterns check [FILE...]      validate rule files (a .toml name is read as a KumoMTA
 *                                 classifier file), or the shipped database when no FILE is
 *                                 given; every problem is printed as FILE:LINE: message on
 *                                 stderr, a summary per file on stdout; exit 0 when all is
 *                                 well, 65 (EX_DATAERR) when any rule was skipped, 66 when a
 *                                 file cannot be read.
 *   patterns test [--status X.Y.Z] [--code NNN] [--mta HOST] [--stage COMMAND]
 *                 [--patterns FILE] [--no-builtin-rules] [--config FILE] TEXT
 *                                 classify TEXT as a bounce diagnostic: category, deciding rule
 *                                 (id, file:line, matched span), block list, every other rule
 *                                 that matched, and the action the policy gives a final
 *                                 failure.  Codes not given are read from the start of TEXT,
 *                                 the SMTP stage from its words (Postfix "(in reply to RCPT TO
 *                                 command)", ...).
 *   patterns import-kumo FILE     print a KumoMTA TOML file as rule-file text on stdout
 *                                 (warnings on stderr; exit 65 when entries were skipped).
 *   patterns stats [--format text|json] [--rcpt ADDRESS] [--patterns FILE]
 *                  [--no-builtin-rules] [--config FILE] PATH...
 *                                 read every message of PATH (files, directories, mboxes,
 *                                 Maildirs) as replay --dry-run does and report, for the
 *                                 failures and delays: how many each rule decided (events,
 *                                 messages), the rules that decided none, and how many the
 *                                 code table, the default and the other layers decided
 *                                 (local delivery, the sending MTA's verdict, the guards of
 *                                 the parties).  Exit 0, 1 when an input could not be read.
 *
 * The text to test is untrusted: it is printed with control bytes masked, never used as a
 * format string.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/classify.h"
#include "bouncepipe/kumo.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/readfile.h"
#include "bouncepipe/report.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "cli.h"

#define EXIT_NOINPUT 66 /* EX_NOINPUT: a file could not be read */

#define PATTERNS_USAGE                                                                                                 \
    "usage: bouncepipe patterns check [FILE...]\n"                                                                     \
    "       bouncepipe patterns test [--status X.Y.Z] [--code NNN] [--mta HOST] [--stage COMMAND]\n"                   \
    "                                [--patterns FILE] [--no-builtin-rules] [--config FILE] TEXT\n"                    \
    "       bouncepipe patterns import-kumo FILE\n"                                                                    \
    "       bouncepipe patterns stats [--format text|json] [--rcpt ADDRESS] [--patterns FILE]\n"                       \
    "                                 [--no-builtin-rules] [--config FILE] PATH...\n"                                  \
    "Rule file format: man 5 bouncepipe-patterns.\n"

static void patterns_usage(FILE *out)
{
    fputs(PATTERNS_USAGE, out);
}

/* Print @n bytes of untrusted @s with control bytes shown as '?'. */
static void put_masked(FILE *out, const char *s, size_t n)
{
    bp_strbuf sb = {0}; /* the house masking (text.h): controls, C1, bidi, invalid UTF-8 */
    if (bp_text_mask_append(&sb, s, n, 0) == BP_OK && sb.data != NULL)
        fwrite(sb.data, 1, sb.len, out);
    bp_strbuf_free(&sb);
}

struct warn_count {
    unsigned n;
};

static void print_warning(void *user, const char *message)
{
    struct warn_count *wc = user;
    wc->n++;
    fputs(message, stderr);
    fputc('\n', stderr);
}

/* Rules without a prefilter are compiled and run for every text: say which (not an error). */
static void report_unfiltered(const bp_rules *r)
{
    size_t n = 0;
    for (size_t i = 0; i < bp_rules_count(r); i++) {
        const bp_rule *ru = bp_rules_get(r, i);
        if (bp_rules_prefiltered(r, i) || ru->scope_status != NULL || ru->scope_mta != NULL)
            continue;
        if (n++ == 0)
            printf("rules without a required literal (run for every text, slower start-up):\n");
        printf("  %s:%u: %s\n", ru->file, ru->line, ru->id);
    }
}

/* Custom categories (PowerMTA allows the operator's own names): accepted, and named once each
 * with the line of their first rule, so that a [policy] entry can be written for them. */
static void report_custom(const bp_rules *r)
{
    size_t n = 0;
    for (size_t i = 0; i < bp_rules_count(r); i++) {
        const bp_rule *ru = bp_rules_get(r, i);
        if (!bp_category_custom(ru->category))
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(bp_rules_get(r, j)->category, ru->category) == 0;
        if (seen)
            continue;
        if (n++ == 0)
            printf("custom categories (not bouncepipe's; their action is [policy] NAME, soft when unset):\n");
        printf("  %s (first at %s:%u)\n", ru->category, ru->file, ru->line);
    }
}

static int patterns_check(int argc, char **argv)
{
    int rc = BP_EXIT_OK;
    if (argc == 0) {
        bp_rules *r = NULL;
        struct warn_count wc = {0};
        unsigned errs = 0;
        if (bp_rules_new(&r) != BP_OK || bp_rules_load_builtin(r, print_warning, &wc, &errs) != BP_OK) {
            bp_cli_error("patterns", "out of memory");
            bp_rules_free(r);
            return BP_EXIT_SOFTWARE;
        }
        unsigned bad = bp_rules_validate(r, print_warning, &wc);
        printf("builtin: %zu rules, %u problems\n", bp_rules_count(r), errs + bad);
        report_unfiltered(r);
        bp_rules_free(r);
        return errs + bad > 0 ? BP_EXIT_DATAERR : BP_EXIT_OK;
    }
    for (int i = 0; i < argc; i++) {
        bp_rules *r = NULL;
        struct warn_count wc = {0};
        unsigned errs = 0;
        if (bp_rules_new(&r) != BP_OK) {
            bp_cli_error("patterns", "out of memory");
            return BP_EXIT_SOFTWARE;
        }
        bp_status st = bp_rules_load_file(r, argv[i], print_warning, &wc, &errs);
        if (st != BP_OK) {
            bp_cli_error("patterns", "%s: %s", argv[i], bp_status_to_string(st));
            if (rc == BP_EXIT_OK || rc == BP_EXIT_DATAERR)
                rc = st == BP_ERR_NOMEM ? BP_EXIT_SOFTWARE : EXIT_NOINPUT;
        } else {
            printf("%s: %zu rules, %u problems\n", argv[i], bp_rules_count(r), errs);
            report_custom(r);
            report_unfiltered(r);
            if (errs > 0 && rc == BP_EXIT_OK)
                rc = BP_EXIT_DATAERR;
        }
        bp_rules_free(r);
    }
    return rc;
}

static int patterns_import_kumo(int argc, char **argv)
{
    if (argc != 1) {
        patterns_usage(stderr);
        return BP_EXIT_USAGE;
    }
    FILE *f = fopen(argv[0], "rb");
    if (f == NULL) {
        bp_cli_error("patterns", "%s: cannot open", argv[0]);
        return EXIT_NOINPUT;
    }
    char *data = NULL, *rules_text = NULL;
    size_t len = 0;
    int truncated = 0, rc = BP_EXIT_OK;
    struct warn_count wc = {0};
    unsigned errs = 0;
    bp_status st = bp_read_stream(f, BP_MAX_MESSAGE_BYTES, &data, &len, &truncated);
    fclose(f);
    if (st != BP_OK || truncated) {
        bp_cli_error("patterns", "%s: %s", argv[0], truncated ? "file too large" : bp_status_to_string(st));
        rc = EXIT_NOINPUT;
        goto out;
    }
    st = bp_kumo_convert(argv[0], data, len, &rules_text, print_warning, &wc, &errs);
    if (st != BP_OK) {
        bp_cli_error("patterns", "%s: %s", argv[0], bp_status_to_string(st));
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    /* check what we produced, so a regex PCRE2 refuses is reported now, not at run time */
    bp_rules *check = NULL;
    if (bp_rules_new(&check) == BP_OK) {
        unsigned bad = 0;
        bp_rules_load_text(check, argv[0], rules_text, strlen(rules_text), print_warning, &wc, &bad);
        errs += bad;
        bp_rules_free(check);
    }
    fputs(rules_text, stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("patterns", "writing output failed");
        rc = BP_EXIT_FAILURE;
    } else if (errs > 0) {
        rc = BP_EXIT_DATAERR;
    }
out:
    free(rules_text);
    free(data);
    return rc;
}

static void print_match(const char *label, const bp_rule_match *m, const char *text)
{
    printf("%-10s %s (%s:%u)\n", label, m->rule->id, m->rule->file, m->rule->line);
    printf("%-10s \"", "");
    put_masked(stdout, text + m->start, m->end - m->start);
    printf("\" at %zu-%zu\n", m->start, m->end);
}

static const struct option test_options[] = {{"status", required_argument, NULL, 's'},
                                             {"code", required_argument, NULL, 'C'},
                                             {"mta", required_argument, NULL, 'm'},
                                             {"stage", required_argument, NULL, 'S'},
                                             {NULL, 0, NULL, 0}};
static const bp_cli_command test_command = {
    "patterns", BP_OPT_RULES | BP_OPT_CONFIG, test_options, 0, NULL, 1, 1, PATTERNS_USAGE, BP_CLI_SETUP_NONE,
};

struct test_args {
    const char *status, *code, *mta, *stage;
};

static int test_option(void *user, int opt, const char *arg)
{
    struct test_args *a = user;
    switch (opt) {
    case 's': a->status = arg; return 0;
    case 'C': a->code = arg; return 0;
    case 'm': a->mta = arg; return 0;
    case 'S': a->stage = arg; return 0;
    default: return BP_EXIT_USAGE;
    }
}

static int patterns_test(int argc, char **argv)
{
    bp_cli_env env;
    memset(&env, 0, sizeof(env));
    struct test_args args = {NULL, NULL, NULL, NULL};
    bp_arena *arena = NULL;
    char status_buf[BP_STATUS_BUF], code_buf[4];
    int rc = bp_cli_parse(&test_command, &env, argc, argv, test_option, &args);
    if (rc != -1)
        return rc;
    rc = BP_EXIT_OK;
    const char *status = args.status, *code = args.code, *mta = args.mta;
    const char *text = argv[optind];
    if (status != NULL && !bp_status_code_parse(status, status_buf)) {
        bp_cli_error("patterns", "--status wants X.Y.Z, not '%s'", status);
        return BP_EXIT_USAGE;
    }
    bp_smtp_command stage = BP_SMTP_NONE;
    if (args.stage != NULL && (stage = bp_smtp_command_from_name(args.stage, strlen(args.stage))) == BP_SMTP_NONE) {
        bp_cli_error("patterns", "--stage wants CONNECT, EHLO, MAIL, RCPT or DATA, not '%s'", args.stage);
        return BP_EXIT_USAGE;
    }
    if (args.stage == NULL)
        stage = bp_stage_find(text, strlen(text), NULL, NULL);
    if (status == NULL && bp_status_code_find(text, strlen(text), status_buf))
        status = status_buf;
    if (code == NULL && bp_smtp_code_find(text, strlen(text), code_buf))
        code = code_buf;
    if (bp_cli_env_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    arena = bp_cli_arena_new("patterns");
    if (arena == NULL) {
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    bp_failure f = {text, status, code, mta, stage, NULL, NULL, 0, BP_PARTY_RECIPIENT};
    bp_verdict v;
    const char *category = bp_classify_failure(env.rules, arena, &f, &v);
    const char *rule = v.rule, *blocklist = v.blocklist;
    bp_rule_subject subj = {text, strlen(text), status, code, mta, stage};
    bp_rule_match matches[BP_EXPLAIN_MAX_MATCHES];
    size_t n = bp_rules_match_all(env.rules, &subj, matches, BP_EXPLAIN_MAX_MATCHES);
    printf("%-10s %s\n", "category:", category);
    if (n > 0)
        print_match("rule:", &matches[0], text);
    else
        printf("%-10s %s (%s)\n", "rule:", rule != NULL ? rule : "-",
               strncmp(rule != NULL ? rule : "", "status:", 7) == 0 ? "no rule matched: the RFC 3463 table decides"
               : strncmp(rule != NULL ? rule : "", "smtp:", 5) == 0 ? "no rule matched: the SMTP code decides"
                                                                    : "no rule matched and no code");
    printf("%-10s %s\n", "status:", status != NULL ? status : "-");
    printf("%-10s %s\n", "smtp code:", code != NULL ? code : "-");
    printf("%-10s %s\n", "stage:", stage != BP_SMTP_NONE ? bp_smtp_command_name(stage) : "-");
    if (v.guard != BP_GUARD_NONE)
        printf("%-10s %s would be a verdict on the recipient, but the reply came at %s: %s\n",
               "guard:", v.guarded_category, bp_smtp_command_name(stage), category);
    printf("%-10s %s\n", "blocklist:", blocklist != NULL ? blocklist : "-");
    bp_policy_step why = BP_POLICY_UNRECOGNIZED;
    int final = status == NULL ? (code == NULL || code[0] != '4') : status[0] != '4';
    bp_action action = bp_policy_decide(&env.pipeline.policy, BP_EVENT_BOUNCE, category, NULL, final, &why);
    printf("%-10s %s (%s)\n", "action:", bp_action_name(action), bp_cli_policy_words(why));
    for (size_t i = 1; i < n && i < BP_EXPLAIN_MAX_MATCHES; i++)
        print_match(i == 1 ? "also:" : "", &matches[i], text);
    if (n > BP_EXPLAIN_MAX_MATCHES)
        printf("%-10s ... %zu more\n", "", n - BP_EXPLAIN_MAX_MATCHES);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = BP_EXIT_FAILURE;
out:
    bp_arena_free(arena);
    bp_cli_env_cleanup(&env);
    return rc;
}

/* ---- patterns stats ------------------------------------------------------------------ */

static const char *const stats_formats[] = {"text", "json", NULL};
static const bp_cli_command stats_command = {
    "patterns",
    BP_OPT_RULES | BP_OPT_CONFIG | BP_OPT_RCPT | BP_OPT_FORMAT,
    NULL,
    0,
    stats_formats,
    1,
    -1,
    PATTERNS_USAGE,
    BP_CLI_SETUP_RULES,
};

/* The layers that decide a failure without a rule, by the prefix of the event's rule id. */
enum { BY_STATUS, BY_SMTP, BY_DEFAULT, BY_LOCAL, BY_MTA, BY_STAGE, BY_PARTY, BY_N };
static const struct {
    const char *prefix, *key, *words;
} layers[BY_N] = {
    {"status:", "status", "the RFC 3463 table (status:X.Y.Z)"},
    {"smtp:", "smtp", "the SMTP code (smtp:NNN)"},
    {"default", "default", "no rule and no usable code (default)"},
    {"local-delivery", "local_delivery", "a local delivery program (local-delivery)"},
    {"mta:", "mta_verdict", "the sending MTA's verdict (mta:CATEGORY)"},
    {"stage:", "stage_guard", "the stage guard (stage:COMMAND)"},
    {"party:", "party_guard", "the parties' guard (party:...)"},
};

struct stats_run {
    bp_cli_env env;
    bp_arena *arena;
    int failures;
    unsigned long messages, events, decided;
    GHashTable *index;         /* rule id -> index + 1 */
    unsigned long *hits;       /* events per rule */
    unsigned long *hit_msgs;   /* messages per rule */
    unsigned long *last_msg;   /* the message that last counted for the rule (+1) */
    unsigned long by[BY_N];    /* events per layer without a rule */
    unsigned long unknown_ids; /* events whose rule is neither loaded nor a layer */
};

static int stats_one(void *user, const bp_source *src, const bp_source_msg *msg)
{
    (void)src;
    struct stats_run *run = user;
    bp_arena_reset(run->arena);
    bp_envelope envelope = {msg->name, run->env.rcpt, NULL};
    bp_process_result res;
    bp_status st = bp_process_message(&run->env.pipeline, &envelope, BP_PROCESS_NO_FINGERPRINT, msg->data, msg->len,
                                      run->arena, &res);
    if (st != BP_OK) {
        bp_cli_error("patterns", "%s: %s", msg->name, bp_status_to_string(st));
        run->failures++;
        return 0;
    }
    run->messages++;
    for (size_t i = 0; i < res.n_events; i++) {
        const bp_event *e = &res.events[i];
        if (e->type != BP_EVENT_UNRECOGNIZED)
            run->events++;
        if ((e->type != BP_EVENT_BOUNCE && e->type != BP_EVENT_DELAY) || e->rule == NULL)
            continue;
        run->decided++;
        gpointer at = g_hash_table_lookup(run->index, e->rule);
        if (at != NULL) {
            size_t k = GPOINTER_TO_SIZE(at) - 1;
            run->hits[k]++;
            if (run->last_msg[k] != run->messages) {
                run->last_msg[k] = run->messages;
                run->hit_msgs[k]++;
            }
            continue;
        }
        int known = 0;
        for (int l = 0; l < BY_N && !known; l++)
            if (strncmp(e->rule, layers[l].prefix, strlen(layers[l].prefix)) == 0) {
                run->by[l]++;
                known = 1;
            }
        if (!known)
            run->unknown_ids++;
    }
    return 0;
}

static double percent(unsigned long part, unsigned long whole)
{
    return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

/* The order of the report: most events first, then load order. */
static int by_hits(const void *a, const void *b, void *user)
{
    const unsigned long *hits = user;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (hits[x] != hits[y])
        return hits[x] < hits[y] ? 1 : -1;
    return x < y ? -1 : x > y;
}

static int stats_text(const struct stats_run *run, const size_t *order, size_t n)
{
    unsigned long by_rule = 0, never = 0;
    for (size_t i = 0; i < n; i++) {
        by_rule += run->hits[i];
        never += run->hits[i] == 0;
    }
    printf("messages: %lu   events: %lu   failures and delays: %lu\n", run->messages, run->events, run->decided);
    printf("decided by a rule: %lu (%.1f %%)\n", by_rule, percent(by_rule, run->decided));
    for (int l = 0; l < BY_N; l++)
        printf("decided by %s: %lu (%.1f %%)\n", layers[l].words, run->by[l], percent(run->by[l], run->decided));
    if (run->unknown_ids > 0)
        printf("decided by rules no longer loaded: %lu\n", run->unknown_ids);
    printf("\nrules that decided, most first (events, messages, category, id, file:line):\n");
    for (size_t i = 0; i < n && run->hits[order[i]] > 0; i++) {
        const bp_rule *ru = bp_rules_get(run->env.rules, order[i]);
        printf("  %6lu %6lu  %-19s %s  %s:%u\n", run->hits[order[i]], run->hit_msgs[order[i]], ru->category, ru->id,
               ru->file, ru->line);
    }
    printf("\nrules that decided nothing (%lu of %zu):\n", never, n);
    for (size_t i = 0; i < n; i++)
        if (run->hits[i] == 0) {
            const bp_rule *ru = bp_rules_get(run->env.rules, i);
            printf("  %-19s %s  %s:%u\n", ru->category, ru->id, ru->file, ru->line);
        }
    return 0;
}

static int stats_json(const struct stats_run *run, const size_t *order, size_t n)
{
    bp_writer *w = bp_writer_new(stdout, BP_WRITER_JSON);
    if (w == NULL)
        return -1;
    bp_writer_begin_map(w);
    bp_writer_entry_integer(w, "messages", (long long)run->messages);
    bp_writer_entry_integer(w, "events", (long long)run->events);
    bp_writer_entry_integer(w, "failures", (long long)run->decided);
    bp_writer_key(w, "decided_by");
    bp_writer_begin_map(w);
    unsigned long by_rule = 0;
    for (size_t i = 0; i < n; i++)
        by_rule += run->hits[i];
    bp_writer_entry_integer(w, "rule", (long long)by_rule);
    for (int l = 0; l < BY_N; l++) {
        bp_writer_entry_integer(w, layers[l].key, (long long)run->by[l]);
    }
    bp_writer_entry_integer(w, "unknown_rule", (long long)run->unknown_ids);
    bp_writer_end(w);
    bp_writer_key(w, "rules");
    bp_writer_begin_list(w);
    for (size_t i = 0; i < n; i++) {
        const bp_rule *ru = bp_rules_get(run->env.rules, order[i]);
        bp_writer_begin_map(w);
        bp_writer_entry_string(w, "id", ru->id);
        bp_writer_entry_string(w, "category", ru->category);
        bp_writer_entry_string(w, "file", ru->file);
        bp_writer_entry_integer(w, "line", ru->line);
        bp_writer_entry_integer(w, "events", (long long)run->hits[order[i]]);
        bp_writer_entry_integer(w, "messages", (long long)run->hit_msgs[order[i]]);
        bp_writer_end(w);
    }
    bp_writer_end(w);
    bp_writer_end(w);
    bp_writer_separator(w);
    bp_status st = bp_writer_flush(w);
    bp_writer_free(w);
    return st == BP_OK ? 0 : -1;
}

static int patterns_stats(int argc, char **argv)
{
    struct stats_run run;
    memset(&run, 0, sizeof(run));
    size_t *order = NULL;
    int rc = bp_cli_start(&stats_command, &run.env, argc, argv, NULL, NULL);
    if (rc != -1)
        return rc;
    rc = BP_EXIT_OK;
    size_t n = run.env.rules != NULL ? bp_rules_count(run.env.rules) : 0;
    run.arena = bp_arena_new();
    run.index = g_hash_table_new(g_str_hash, g_str_equal); /* keys borrowed from the rules */
    run.hits = bp_calloc(n + 1, sizeof(*run.hits));
    run.hit_msgs = bp_calloc(n + 1, sizeof(*run.hit_msgs));
    run.last_msg = bp_calloc(n + 1, sizeof(*run.last_msg));
    order = bp_calloc(n + 1, sizeof(*order));
    if (run.arena == NULL || run.hits == NULL || run.hit_msgs == NULL || run.last_msg == NULL || order == NULL) {
        bp_cli_error("patterns", "out of memory");
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *id = bp_rules_get(run.env.rules, i)->id;
        if (!g_hash_table_contains(run.index, id)) /* the first rule of an id decides */
            g_hash_table_insert(run.index, (gpointer)id, GSIZE_TO_POINTER(i + 1));
        order[i] = i;
    }
    bp_cli_each_message("patterns", argc - optind, argv + optind, stats_one, NULL, &run, &run.failures);
    g_qsort_with_data(order, (gint)n, sizeof(*order), by_hits, run.hits);
    if ((run.env.format == 1 ? stats_json(&run, order, n) : stats_text(&run, order, n)) != 0 || fflush(stdout) != 0 ||
        ferror(stdout)) {
        bp_cli_error("patterns", "writing output failed");
        rc = BP_EXIT_FAILURE;
    } else if (run.failures > 0) {
        rc = BP_EXIT_FAILURE;
    }
out:
    free(order);
    free(run.hits);
    free(run.hit_msgs);
    free(run.last_msg);
    if (run.index != NULL)
        g_hash_table_destroy(run.index);
    bp_arena_free(run.arena);
    bp_cli_env_cleanup(&run.env);
    return rc;
}

int cmd_patterns(int argc, char **argv)
{
    if (argc < 2) {
        patterns_usage(stderr);
        return BP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "check") == 0)
        return patterns_check(argc - 2, argv + 2);
    if (strcmp(argv[1], "test") == 0)
        return patterns_test(argc - 1, argv + 1);
    if (strcmp(argv[1], "import-kumo") == 0)
        return patterns_import_kumo(argc - 2, argv + 2);
    if (strcmp(argv[1], "stats") == 0)
        return patterns_stats(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        patterns_usage(stdout);
        return BP_EXIT_OK;
    }
    bp_cli_error("patterns", "unknown subcommand '%s'", argv[1]);
    patterns_usage(stderr);
    return BP_EXIT_USAGE;
}
