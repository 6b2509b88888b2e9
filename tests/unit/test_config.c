/*
 * test_config.c - the configuration file: which file is read, defaults, every key of the
 * groups config.c owns, the [policy] group handed to policy.c, $BOUNCEPIPE_DB precedence,
 * and errors that name the file and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "test_support.h"

static char conf_path[64];

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Each test starts and ends without the environment's configuration. */
static void clear_env(void)
{
    unsetenv("BOUNCEPIPE_CONFIG");
    unsetenv("BOUNCEPIPE_DB");
}

static int setup(void **state)
{
    (void)state;
    snprintf(conf_path, sizeof(conf_path), "/tmp/bp-test-config-XXXXXX");
    int fd = mkstemp(conf_path);
    if (fd < 0)
        return -1;
    close(fd);
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    clear_env();
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    bp_config cfg;
    char *err = NULL;
    assert_int_equal(bp_config_load(&cfg, NULL, &err), BP_OK);
    if (access(BP_CONFIG_DEFAULT_FILE, F_OK) == 0) {
        assert_string_equal(cfg.file, BP_CONFIG_DEFAULT_FILE); /* this machine has one */
    } else {
        assert_null(cfg.file);
        assert_string_equal(cfg.db, "./bouncepipe.db");
        assert_null(cfg.quarantine_dir); /* beside the store, once its location is known */
        assert_int_equal(cfg.quarantine_retention_days, 0);
        assert_int_equal(cfg.builtin_rules, 1);
        assert_null(cfg.rcpt_headers);
        assert_int_equal(cfg.policy.soft_count, 5);
        assert_int_equal(cfg.policy.soft_days, 3);
        assert_int_equal(cfg.policy.soft_window, 30);
    }
    bp_config_free(&cfg);
}

/* Without [quarantine] directory the quarantine is beside the store (an MTA's child has no
 * meaningful working directory); a PostgreSQL store has none to be beside. */
static void test_quarantine_beside_store(void **state)
{
    (void)state;
    static const struct {
        const char *label, *conf, *db, *want;
    } rows[] = {
        {"default store", "", "./bouncepipe.db", "./quarantine"},
        {"absolute store", "", "/var/lib/bouncepipe/bouncepipe.db", "/var/lib/bouncepipe/quarantine"},
        {"bare file name", "", "s.db", "./quarantine"},
        {"relative directory", "", "data/s.db", "data/quarantine"},
        {"postgresql", "", "postgresql://bp@db.example.com/bounces", NULL},
        {"postgres", "", "postgres://db.example.com/bounces", NULL},
        {"configured", "[quarantine]\ndirectory = /srv/q\n", "/var/lib/bouncepipe/b.db", "/srv/q"},
        {"configured, postgresql", "[quarantine]\ndirectory = /srv/q\n", "postgresql://db.example.com/b", "/srv/q"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        write_conf(rows[i].conf);
        bp_config cfg;
        char *err = NULL;
        assert_int_equal(bp_config_load(&cfg, conf_path, &err), BP_OK);
        bp_config_default_quarantine(&cfg, rows[i].db);
        if (rows[i].want == NULL ? cfg.quarantine_dir != NULL
                                 : cfg.quarantine_dir == NULL || strcmp(cfg.quarantine_dir, rows[i].want) != 0)
            fail_msg("%s: got %s, want %s", rows[i].label, cfg.quarantine_dir ? cfg.quarantine_dir : "NULL",
                     rows[i].want ? rows[i].want : "NULL");
        bp_config_free(&cfg);
    }
    write_conf("[quarantine]\nretention_days = 30\n");
    bp_config cfg;
    char *err = NULL;
    assert_int_equal(bp_config_load(&cfg, conf_path, &err), BP_OK);
    assert_int_equal(cfg.quarantine_retention_days, 30);
    bp_config_free(&cfg);
}

static void test_full_file(void **state)
{
    (void)state;
    write_conf("# a comment\n"
               "[store]\ndatabase = /var/lib/bouncepipe/b.db\nbusy_timeout_ms = 2500\n"
               "[quarantine]\ndirectory = /var/spool/bouncepipe/q\n"
               "[verp]\nprefix = bounces\nseparators = -\ndomain_separator = #\n"
               "[report]\nrcpt_headers = X-Rcpt;X-Recipient;\n"
               "[rules]\nfiles = /etc/bouncepipe/a.rules;/etc/bouncepipe/b.rules\nbuiltin = false\n"
               "[policy]\nquota-issues = suppress\nsoft_count = 7\n"
               "[process]\nuser = pmta\n"
               "[acct]\nsomething = belongs to another module\n");
    bp_config cfg;
    char *err = NULL;
    bp_status st = bp_config_load(&cfg, conf_path, &err);
    if (st != BP_OK)
        fail_msg("load: %s", err);
    assert_string_equal(cfg.file, conf_path);
    assert_string_equal(cfg.db, "/var/lib/bouncepipe/b.db");
    assert_int_equal(cfg.busy_timeout_ms, 2500);
    assert_string_equal(cfg.quarantine_dir, "/var/spool/bouncepipe/q");
    assert_string_equal(cfg.verp.prefix, "bounces");
    assert_string_equal(cfg.verp.separators, "-");
    assert_int_equal(cfg.verp.domain_separator, '#');
    assert_non_null(cfg.report.rcpt_headers);
    assert_string_equal(cfg.report.rcpt_headers[0], "X-Rcpt");
    assert_string_equal(cfg.report.rcpt_headers[1], "X-Recipient");
    assert_null(cfg.report.rcpt_headers[2]);
    assert_string_equal(cfg.pattern_files[1], "/etc/bouncepipe/b.rules");
    assert_int_equal(cfg.builtin_rules, 0);
    assert_int_equal(cfg.policy.soft_count, 7);
    assert_int_equal(bp_policy_decide(&cfg.policy, BP_EVENT_BOUNCE, "quota-issues", NULL, 1, NULL), BP_ACT_SUPPRESS);
    assert_string_equal(cfg.process_user, "pmta");
    assert_null(cfg.verp.pattern);
    assert_true(cfg.report.verp == &cfg.verp);
    bp_config_free(&cfg);

    /* $BOUNCEPIPE_CONFIG names the file when --config does not; $BOUNCEPIPE_DB beats the file */
    setenv("BOUNCEPIPE_CONFIG", conf_path, 1);
    setenv("BOUNCEPIPE_DB", "/tmp/from-env.db", 1);
    assert_int_equal(bp_config_load(&cfg, NULL, &err), BP_OK);
    assert_string_equal(cfg.file, conf_path);
    assert_string_equal(cfg.db, "/tmp/from-env.db");
    assert_string_equal(cfg.quarantine_dir, "/var/spool/bouncepipe/q");
    bp_config_free(&cfg);
    /* [verp] pattern: a preset made with the prefix, or a pattern of the operator's */
    write_conf("[verp]\nprefix = bounces\npattern = powermta\n");
    assert_int_equal(bp_config_load(&cfg, conf_path, &err), BP_OK);
    assert_non_null(cfg.verp.pattern);
    bp_arena *arena = bp_arena_new();
    assert_string_equal(bp_verp_decode(arena, "bounces-jdoe=example.net@b.example.com", &cfg.verp), "jdoe@example.net");
    assert_null(bp_verp_decode(arena, "bounces+jdoe=example.net@b.example.com", &cfg.verp));
    bp_config_free(&cfg);
    write_conf("[verp]\npattern = ^c\\d+-(?<local>.+)=(?<domain>[^=@]+)@\n");
    assert_int_equal(bp_config_load(&cfg, conf_path, &err), BP_OK);
    assert_string_equal(bp_verp_decode(arena, "c12-jdoe=example.net@b.example.com", &cfg.verp), "jdoe@example.net");
    bp_config_free(&cfg);
    bp_arena_free(arena);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *label, *text, *want_in_error;
    } rows[] = {
        {"unknown key", "[store]\ndatabse = x.db\n", "databse"},
        {"bad timeout", "[store]\nbusy_timeout_ms = soon\n", "busy_timeout_ms"},
        {"negative timeout", "[store]\nbusy_timeout_ms = -5\n", "busy_timeout_ms"},
        {"bad separator", "[verp]\ndomain_separator = ==\n", "domain_separator"},
        {"bad boolean", "[rules]\nbuiltin = maybe\n", "builtin"},
        {"syntax", "this is not a key file\n", conf_path},
        {"policy refuses", "[policy]\ncomplaint:not-spam = suppress\n", "not-spam"},
        {"policy unknown", "[policy]\nbad-mailbox = explode\n", "bad-mailbox"},
        {"bad retention", "[quarantine]\nretention_days = a month\n", "retention_days"},
        {"negative retention", "[quarantine]\nretention_days = -1\n", "retention_days"},
        {"verp pattern without groups", "[verp]\npattern = ^bounces-(.+)@\n", "[verp] pattern"},
        {"verp pattern that does not compile", "[verp]\npattern = ^(?<local>.+\n", "compile"},
        {"unknown process key", "[process]\ngroup = pmta\n", "group"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        write_conf(rows[i].text);
        bp_config cfg;
        char *err = NULL;
        bp_status st = bp_config_load(&cfg, conf_path, &err);
        if (st != BP_ERR_CONFIG)
            fail_msg("%s: got %s, want a configuration error", rows[i].label, bp_status_to_string(st));
        if (err == NULL || strstr(err, rows[i].want_in_error) == NULL)
            fail_msg("%s: error '%s' does not name '%s'", rows[i].label, err ? err : "(null)", rows[i].want_in_error);
        assert_null(cfg.db); /* nothing left to free */
        free(err);
    }
    /* a file named explicitly must exist */
    bp_config cfg;
    char *err = NULL;
    assert_int_equal(bp_config_load(&cfg, "/nonexistent/bouncepipe.conf", &err), BP_ERR_CONFIG);
    assert_non_null(strstr(err, "/nonexistent/bouncepipe.conf"));
    free(err);
}

/* Register test @p f with a temporary configuration file, the environment cleared (setup / teardown). */
#define CONFIG_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

BP_TEST_MAIN(CONFIG_TEST(test_defaults), CONFIG_TEST(test_quarantine_beside_store), CONFIG_TEST(test_full_file),
             CONFIG_TEST(test_errors))
