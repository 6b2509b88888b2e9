/*
 * test_cli.c - what the subcommands share (src/cli/): the exit-code helper (a corrupt store
 * is a failure for an operator, a deferral for the MTA) and the one table of common options
 * (a command takes only the ones it names, --format is checked against its names, --since is
 * a date, its own options reach it, operands are counted, --help stops).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/alloc.h"
#include "cli.h"
#include "test_support.h"

static void test_exit_status(void **state)
{
    (void)state;
    static const struct {
        bp_status st;
        int operator_rc, mta_rc;
    } rows[] = {
        {BP_OK, BP_EXIT_OK, BP_EXIT_OK},
        {BP_ERR_BUSY, BP_EXIT_TEMPFAIL, BP_EXIT_TEMPFAIL},
        {BP_ERR_IO, BP_EXIT_TEMPFAIL, BP_EXIT_TEMPFAIL},
        {BP_ERR_NOMEM, BP_EXIT_TEMPFAIL, BP_EXIT_TEMPFAIL},
        {BP_ERR_STORE, BP_EXIT_FAILURE, BP_EXIT_TEMPFAIL}, /* a corrupt store: look into it */
        {BP_ERR_CONFIG, BP_EXIT_CONFIG, BP_EXIT_TEMPFAIL},
        {BP_ERR_UNSUPPORTED, BP_EXIT_CONFIG, BP_EXIT_TEMPFAIL},
        {BP_ERR_USAGE, BP_EXIT_USAGE, BP_EXIT_TEMPFAIL},
        {BP_ERR_NOT_FOUND, BP_EXIT_FAILURE, BP_EXIT_TEMPFAIL},
        {BP_ERR_PARSE, BP_EXIT_FAILURE, BP_EXIT_TEMPFAIL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int got = bp_cli_exit_status(rows[i].st, BP_CLI_OPERATOR);
        if (got != rows[i].operator_rc)
            fail_msg("%s, operator: got %d, want %d", bp_status_to_string(rows[i].st), got, rows[i].operator_rc);
        got = bp_cli_exit_status(rows[i].st, BP_CLI_MTA);
        if (got != rows[i].mta_rc)
            fail_msg("%s, MTA: got %d, want %d", bp_status_to_string(rows[i].st), got, rows[i].mta_rc);
    }
}

static const char *const formats[] = {"text", "json", NULL};
static const struct option own[] = {{"reason", required_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
static const bp_cli_command command = {
    "demo", BP_OPT_STORE | BP_OPT_FORMAT | BP_OPT_SINCE, own, 0, formats, 1, 2, "usage: demo\n", BP_CLI_SETUP_NONE,
};

static int take_reason(void *user, int opt, const char *arg)
{
    if (opt != 'r')
        return BP_EXIT_USAGE;
    *(const char **)user = arg;
    return 0;
}

/* Parse the NULL-terminated words after the command name. */
static int parse(bp_cli_env *env, const char **reason, const char *const *words)
{
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)"demo";
    while (*words != NULL && argc < 15)
        argv[argc++] = (char *)*words++;
    argv[argc] = NULL;
    memset(env, 0, sizeof(*env));
    *reason = NULL;
    opterr = 0; /* getopt's own complaints are not the test's */
    return bp_cli_parse(&command, env, argc, argv, take_reason, reason);
}

static void test_parse(void **state)
{
    (void)state;
    bp_cli_env env;
    const char *reason;
    const char *const ok[] = {"--db", "x.db", "--format", "json", "-r", "why", "--since", "2026-03-10", "a", NULL};
    assert_int_equal(parse(&env, &reason, ok), -1);
    assert_string_equal(env.db, "x.db");
    assert_int_equal(env.format, 1);
    assert_true(env.format_given);
    assert_int_equal(env.since, 1773100800LL);
    assert_string_equal(reason, "why");
    assert_string_equal(env.cmd, "demo");

    const char *const defaults[] = {"a", "b", NULL};
    assert_int_equal(parse(&env, &reason, defaults), -1);
    assert_int_equal(env.format, 0); /* the first name is the default */
    assert_false(env.format_given);
    assert_null(env.db);

    static const struct {
        const char *label;
        const char *const words[6];
        int want;
    } rows[] = {
        {"--help", {"--help", NULL}, BP_EXIT_OK},
        {"unknown format", {"--format", "xml", "a", NULL}, BP_EXIT_USAGE},
        {"bad --since", {"--since", "yesterday", "a", NULL}, BP_EXIT_USAGE},
        {"too few operands", {"--db", "x", NULL}, BP_EXIT_USAGE},
        {"too many operands", {"a", "b", "c", NULL}, BP_EXIT_USAGE},
        {"a common option it does not take", {"--rcpt", "x@example.com", "a", NULL}, BP_EXIT_USAGE},
        {"an unknown option", {"--frobnicate", "a", NULL}, BP_EXIT_USAGE},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int got = parse(&env, &reason, rows[i].words);
        if (got != rows[i].want)
            fail_msg("%s: got %d, want %d", rows[i].label, got, rows[i].want);
    }
}

static void test_parse_count(void **state)
{
    (void)state;
    long v = 0;
    assert_int_equal(bp_cli_parse_count("500", 1, 1000, &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(bp_cli_parse_count("0", 1, 1000, &v), -1);
    assert_int_equal(bp_cli_parse_count("1001", 1, 1000, &v), -1);
    assert_int_equal(bp_cli_parse_count("12x", 1, 1000, &v), -1);
    assert_int_equal(bp_cli_parse_count("", 1, 1000, &v), -1);
    /* an option's number or date: 0, or a usage error (said on stderr) */
    assert_int_equal(bp_cli_count_option("t", "--top", "20", 1, 100, &v), 0);
    assert_int_equal(v, 20);
    assert_int_equal(bp_cli_count_option("t", "--top", "101", 1, 100, &v), BP_EXIT_USAGE);
    long long t = 0;
    assert_int_equal(bp_cli_time_option("t", "--now", "1970-01-02", 1, &t), 0);
    assert_int_equal(t, 86400);
    assert_int_equal(bp_cli_time_option("t", "--now", "0", 1, &t), BP_EXIT_USAGE);
    assert_int_equal(bp_cli_time_option("t", "--since", "0", 0, &t), 0);
    assert_int_equal(bp_cli_time_option("t", "--since", "yesterday", 0, &t), BP_EXIT_USAGE);
}

/* bp_array_push(): zeroed elements, grown by doubling, nothing lost when it fails. */
/* --format of replay and acct: each name prints what it says, "json" being NDJSON too. */
static void test_event_formats(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bp_writer_format want;
    } rows[] = {{"ndjson", BP_WRITER_JSON}, {"text", BP_WRITER_TEXT}, {"csv", BP_WRITER_CSV}, {"json", BP_WRITER_JSON}};
    size_t n = 0;
    while (bp_cli_event_formats[n] != NULL)
        n++;
    assert_int_equal(n, sizeof(rows) / sizeof(rows[0]));
    assert_string_equal(bp_cli_event_formats[0], "ndjson"); /* the default */
    for (size_t i = 0; i < n; i++) {
        bp_cli_env env;
        memset(&env, 0, sizeof(env));
        for (env.format = 0; strcmp(bp_cli_event_formats[env.format], rows[i].name) != 0;)
            if (bp_cli_event_formats[++env.format] == NULL)
                fail_msg("%s: not a format of replay and acct", rows[i].name);
        if (bp_cli_event_format(&env) != rows[i].want)
            fail_msg("%s: printer format %d, want %d", rows[i].name, (int)bp_cli_event_format(&env), (int)rows[i].want);
    }
}

static void test_array_push(void **state)
{
    (void)state;
    long *v = NULL;
    size_t n = 0, cap = 0;
    for (long i = 0; i < 5; i++) {
        long *slot = bp_array_push(&v, &n, &cap, sizeof(*slot), 2);
        assert_non_null(slot);
        assert_int_equal(*slot, 0);
        *slot = i * 10;
    }
    assert_int_equal(n, 5);
    assert_int_equal(cap, 8);
    for (long i = 0; i < 5; i++)
        assert_int_equal(v[i], i * 10);
    for (; n < cap;)
        assert_non_null(bp_array_push(&v, &n, &cap, sizeof(*v), 2));
    long *kept = v;
    bp_alloc_set_fault(bp_test_fail_all, NULL);
    assert_null(bp_array_push(&v, &n, &cap, sizeof(*v), 2)); /* full: must grow, cannot */
    bp_alloc_set_fault(NULL, NULL);
    assert_ptr_equal(v, kept);
    assert_int_equal(n, 8);
    assert_int_equal(cap, 8);
    assert_int_equal(v[4], 40);
    free(v);
}

BP_TEST_MAIN(cmocka_unit_test(test_exit_status), cmocka_unit_test(test_parse), cmocka_unit_test(test_parse_count),
             cmocka_unit_test(test_event_formats), cmocka_unit_test(test_array_push))
