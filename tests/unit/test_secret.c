/*
 * test_secret.c - passwords in store locations and in libpq's messages (secret.h): URL
 * forms (user information, query parameters, percent-escapes in keys and values, unencoded
 * separators), key=value connection strings (quoted, unquoted, blanks, unterminated), and
 * the shapes of libpq's own errors that quote a location or part of one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/secret.h"
#include "test_support.h"

static const struct {
    const char *label, *location, *want;
} mask_rows[] = {
    {"file path", "/var/lib/bouncepipe/bouncepipe.db", "/var/lib/bouncepipe/bouncepipe.db"},
    {"URL without secret", "postgresql://u@db.example.com:5432/bounces?sslmode=require",
     "postgresql://u@db.example.com:5432/bounces?sslmode=require"},
    {"URL user:password", "postgresql://bp:s3cret@db.example.com/bounces",
     "postgresql://bp:***@db.example.com/bounces"},
    {"URL empty password", "postgres://bp:@h/db", "postgres://bp:***@h/db"},
    {"URL ?password", "postgresql://bp@h/db?password=s3cret", "postgresql://bp@h/db?password=***"},
    {"URL password among others", "postgresql://h/db?sslmode=require&password=s3cret&application_name=x",
     "postgresql://h/db?sslmode=require&password=***&application_name=x"},
    {"URL sslpassword", "postgres://h/db?sslpassword=k3y", "postgres://h/db?sslpassword=***"},
    {"URL oauth_client_secret", "postgresql://h/db?oauth_client_secret=abc",
     "postgresql://h/db?oauth_client_secret=***"},
    {"URL key percent-encoded", "postgresql://h/db?pass%77ord=s3cret", "postgresql://h/db?pass%77ord=***"},
    {"URL key upper case", "postgresql://h/db?PASSWORD=s3cret", "postgresql://h/db?PASSWORD=***"},
    {"URL value percent-encoded", "postgresql://h/db?password=s3%26cret", "postgresql://h/db?password=***"},
    {"URL bad percent-escape", "postgresql://h/db?password=s3cret%zz", "postgresql://h/db?password=***"},
    {"URL unencoded & in password", "postgresql://h/db?password=ab&cd&sslmode=require",
     "postgresql://h/db?password=***&***&sslmode=require"},
    {"URL unencoded @ in password", "postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"},
    {"URL unencoded / in password", "postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"},
    {"URL ? in password", "postgresql://u:pa?ss@h/db", "postgresql://u:***@h/db"},
    {"URL both forms", "postgresql://u:one@h/db?password=two", "postgresql://u:***@h/db?password=***"},
    {"URL several hosts", "postgresql://u:pw@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"},
    {"conninfo", "host=db.example.com password=s3cret user=bp", "host=db.example.com password=*** user=bp"},
    {"conninfo quoted", "host=h password='s3 c\\'ret' dbname=x", "host=h password=*** dbname=x"},
    {"conninfo blanks around =", "host = h password = s3cret", "host = h password = ***"},
    {"conninfo unterminated quote", "host=h password='s3cret", "host=h password=***"},
    {"conninfo unquoted blank", "password=ab cd host=h", "password=*** *** host=h"},
    {"conninfo sslpassword", "sslpassword=k3y sslkey=/etc/k.pem", "sslpassword=*** sslkey=/etc/k.pem"},
    {"conninfo backslash", "password=a\\ b host=h", "password=*** host=h"},
    {"conninfo URL dbname", "dbname=postgresql://u:pw@h/db connect_timeout=5",
     "dbname=postgresql://u:***@h/db connect_timeout=5"},
    {"conninfo passfile is a path", "host=h passfile=/etc/bp.pgpass", "host=h passfile=/etc/bp.pgpass"},
    {"empty", "", ""},
};

static void test_mask(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mask_rows) / sizeof(mask_rows[0]); i++) {
        char buf[256];
        bp_test_check_str(mask_rows[i].label, bp_secret_mask(mask_rows[i].location, buf, sizeof(buf)),
                          mask_rows[i].want);
    }
    char buf[16];
    bp_test_check_str("NULL", bp_secret_mask(NULL, buf, sizeof(buf)), "");
}

static void test_mask_small_buffer(void **state)
{
    (void)state;
    char buf[20];
    bp_test_check_str("cut", bp_secret_mask("postgresql://u:s3cret@host/db", buf, sizeof(buf)), "postgresql://u:***@");
    char one[1] = {'x'};
    bp_secret_mask("postgresql://u:s3cret@host/db", one, sizeof(one));
    assert_int_equal(one[0], '\0');
}

static void test_present(void **state)
{
    (void)state;
    assert_false(bp_secret_present(NULL));
    assert_false(bp_secret_present("/var/lib/bouncepipe/bouncepipe.db"));
    assert_false(bp_secret_present("postgresql://u@h/db?sslmode=require"));
    assert_false(bp_secret_present("postgresql://u:@h/db"));
    assert_true(bp_secret_present("postgresql://u:pw@h/db"));
    assert_true(bp_secret_present("postgresql://u@h/db?sslpassword=x"));
    assert_true(bp_secret_present("host=h password=x"));
    assert_true(bp_secret_present("host=h password='a b'"));
}

static void test_key(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int secret;
    } rows[] = {{"password", 1},
                {"sslpassword", 1},
                {"oauth_client_secret", 1},
                {"Password", 1},
                {"pass%77ord", 1},
                {"db_password", 1},
                {"passfile", 0},
                {"user", 0},
                {"sslkey", 0},
                {"host", 0},
                {"", 0},
                {"password ", 1},
                {"client_secret", 1}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (bp_secret_key(rows[i].key, strlen(rows[i].key)) != rows[i].secret)
            fail_msg("%s: got %d, want %d", rows[i].key, !rows[i].secret, rows[i].secret);
}

/* libpq's own messages (PostgreSQL 15's fe-connect.c shapes), with and without the location. */
static const struct {
    const char *label, *message, *location, *want;
} scrub_rows[] = {
    {"bad percent-escape", "invalid percent-encoded token: \"s3cret%zz\"\n", "postgresql://u@h/db?password=s3cret%zz",
     "invalid percent-encoded token: \"***\"\n"},
    {"bad percent-escape, no location", "invalid percent-encoded token: \"s3cret%zz\"\n", NULL,
     "invalid percent-encoded token: \"***\"\n"},
    {"bad escape in user information", "invalid percent-encoded token: \"pa%zzss\"\n", NULL,
     "invalid percent-encoded token: \"***\"\n"},
    {"%00", "forbidden value %00 in percent-encoded value: \"s3%00cret\"\n", NULL,
     "forbidden value %00 in percent-encoded value: \"***\"\n"},
    {"URI echoed whole",
     "end of string reached when looking for matching \"]\" in IPv6 host address in URI: "
     "\"postgresql://u:pw@[::1/db?password=s3cret\"\n",
     NULL,
     "end of string reached when looking for matching \"]\" in IPv6 host address in URI: "
     "\"postgresql://u:***@[::1/db?password=***\"\n"},
    {"unexpected character",
     "unexpected character \"!\" at position 21 in URI (expected \":\" or \"/\"): \"postgresql://u:s3cret@h!/db\"\n",
     NULL,
     "unexpected character \"!\" at position 21 in URI (expected \":\" or \"/\"): \"postgresql://u:***@h!/db\"\n"},
    {"missing separator: piece of a password", "missing key/value separator \"=\" in URI query parameter: \"cd\"\n",
     "postgresql://h/db?password=ab&cd", "missing key/value separator \"=\" in URI query parameter: \"***\"\n"},
    {"extra separator", "extra key/value separator \"=\" in URI query parameter: \"password\"\n", NULL,
     "extra key/value separator \"=\" in URI query parameter: \"***\"\n"},
    {"invalid query parameter", "invalid URI query parameter: \"cd\"\n", NULL,
     "invalid URI query parameter: \"***\"\n"},
    {"conninfo: missing =", "missing \"=\" after \"cd\" in connection info string\n", "password=ab cd",
     "missing \"=\" after \"***\" in connection info string\n"},
    {"conninfo: invalid option", "invalid connection option \"cd\"\n", NULL, "invalid connection option \"***\"\n"},
    {"port", "invalid port number: \"word@h\"\n", NULL, "invalid port number: \"***\"\n"},
    {"nothing secret",
     "connection to server at \"h\" (192.0.2.1), port 5432 failed: FATAL:  password authentication "
     "failed for user \"bp\"\n",
     "postgresql://bp:s3cret@h/db",
     "connection to server at \"h\" (192.0.2.1), port 5432 failed: FATAL:  password authentication failed for user "
     "\"bp\"\n"},
    {"secret anywhere, location known", "could not use s3cret: no", "host=h password=s3cret", "could not use ***: no"},
    {"decoded secret, location known", "rejected \"p@ssw0rd\"", "postgresql://u:p%40ssw0rd@h/db", "rejected \"***\""},
    {"quoted conninfo secret, location known", "rejected s3 c'ret", "host=h password='s3 c\\'ret'", "rejected ***"},
    {"short secret left to the shapes", "ab ab", "host=h password=ab", "ab ab"},
    {"key=value in a message", "conninfo host=h password=s3cret failed", NULL, "conninfo host=h password=*** failed"},
    {"URL in prose", "cannot open postgresql://u:s3cret@h/db", NULL, "cannot open postgresql://u:***@h/db"},
    {"SQLite message naming a connection string", "unable to open database file: host=h password=s3cret",
     "host=h password=s3cret", "unable to open database file: host=h password=***"},
};

static void test_scrub(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scrub_rows) / sizeof(scrub_rows[0]); i++) {
        char buf[512];
        bp_test_check_str(scrub_rows[i].label,
                          bp_secret_scrub(scrub_rows[i].message, scrub_rows[i].location, buf, sizeof(buf)),
                          scrub_rows[i].want);
    }
    char buf[8];
    bp_test_check_str("NULL message", bp_secret_scrub(NULL, "host=h password=x", buf, sizeof(buf)), "");
}

BP_TEST_MAIN(cmocka_unit_test(test_mask), cmocka_unit_test(test_mask_small_buffer), cmocka_unit_test(test_present),
             cmocka_unit_test(test_key), cmocka_unit_test(test_scrub))
