/*
 * cmd_patterns.c - bouncepipe patterns check|test|import-kumo: work on rule files.
 *
 *   patterns check [FILE...]      validate rule files (a .toml name is read as a KumoMTA
 *                                 classifier file), or the shipped database when no FILE is
 *                                 given; every problem is printed as FILE:LINE: message on
 *                                 stderr, a summary per file on stdout; exit 0 when all is
 *                                 well, 65 (EX_DATAERR) when any rule was skipped, 66 when a
 *                                 file cannot be read.
 *   patterns test [--status X.Y.Z] [--code NNN] [--mta HOST] [--patterns FILE]
 *                 [--no-builtin-rules] [--config FILE] TEXT
 *                                 classify TEXT as a bounce diagnostic: category, deciding rule
 *                                 (id, file:line, matched span), block list, every other rule
 *                                 that matched, and the action the policy gives a final
 *                                 failure.  Codes not given are read from the start of TEXT.
 *   patterns import-kumo FILE     print a KumoMTA TOML file as rule-file text on stdout
 *                                 (warnings on stderr; exit 65 when entries were skipped).
 *
 * The text to test is untrusted: it is printed with control bytes masked, never used as a
 * format string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/classify.h"
#include "bouncepipe/kumo.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/readfile.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "cli.h"

#define EXIT_NOINPUT 66 /* EX_NOINPUT: a file could not be read */

#define PATTERNS_USAGE                                                                                                 \
    "usage: bouncepipe patterns check [FILE...]\n"                                                                     \
    "       bouncepipe patterns test [--status X.Y.Z] [--code NNN] [--mta HOST]\n"                                     \
    "                                [--patterns FILE] [--no-builtin-rules] [--config FILE] TEXT\n"                    \
    "       bouncepipe patterns import-kumo FILE\n"                                                                    \
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
                                             {NULL, 0, NULL, 0}};
static const bp_cli_command test_command = {
    "patterns", BP_OPT_RULES | BP_OPT_CONFIG, test_options, "s:C:m:", NULL, 1, 1, PATTERNS_USAGE, BP_CLI_SETUP_NONE,
};

struct test_args {
    const char *status, *code, *mta;
};

static int test_option(void *user, int opt, const char *arg)
{
    struct test_args *a = user;
    switch (opt) {
    case 's': a->status = arg; return 0;
    case 'C': a->code = arg; return 0;
    case 'm': a->mta = arg; return 0;
    default: return BP_EXIT_USAGE;
    }
}

static int patterns_test(int argc, char **argv)
{
    bp_cli_env env;
    memset(&env, 0, sizeof(env));
    struct test_args args = {NULL, NULL, NULL};
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
    if (status == NULL && bp_status_code_find(text, strlen(text), status_buf))
        status = status_buf;
    if (code == NULL && bp_smtp_code_find(text, strlen(text), code_buf))
        code = code_buf;
    if (bp_cli_env_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    arena = bp_arena_new();
    if (arena == NULL) {
        bp_cli_error("patterns", "out of memory");
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    const char *rule = NULL, *blocklist = NULL;
    const char *category = bp_classify_text(env.rules, arena, text, status, code, mta, &rule, &blocklist);
    bp_rule_subject subj = {text, strlen(text), status, code, mta};
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
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        patterns_usage(stdout);
        return BP_EXIT_OK;
    }
    bp_cli_error("patterns", "unknown subcommand '%s'", argv[1]);
    patterns_usage(stderr);
    return BP_EXIT_USAGE;
}
