/*
 * test_signals.c - where events came from, and what the store makes of it (issue 15).
 *
 * - receivers: the embedded table is all loaded; host names and recipient domains match by
 *   label; the remote MTA before the reporting MTA before the recipient;
 * - signal fields: IP addresses in canonical form, VMTA and stream names checked, the first
 *   valid value of a source kept and never overwritten by a later source; the text's listed
 *   IP or domain (tests/rules/named-lists.txt: every rule with blocklist= names its list and
 *   captures what the text says is listed);
 * - the counts: every ledger event counted once in its transaction (a duplicate unit, a
 *   rollback count nothing), the rebuild from the ledger equals the incremental counts,
 *   rescore moves a count with its list, the accounting watermark counts a re-read file once
 *   and every record of a reading resumed at its kept position;
 * - the alerts: configuration errors name the key, placeholders are replaced inside
 *   arguments and a missing value stops the command, a listing fires once per episode and
 *   again after the cool-down, a failed command runs again, thresholds and minimums hold.
 *
 * Built a second time as pg_signals_test (BP_TEST_PG: the store cases on the PostgreSQL
 * store named by $BOUNCEPIPE_TEST_DB_URL, tests/system/pg_signals.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "bouncepipe/alerts.h"
#include "bouncepipe/receivers.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/signal_fields.h"
#include "bouncepipe/signals.h"
#include "bouncepipe/store.h"
#include "test_support.h"

#ifdef BP_TEST_PG
#include <libpq-fe.h>
#endif

#define HOUR 3600LL
#define T0   1700000000LL /* 2023-11-14T22:13:20Z */

/* ---- receivers ---------------------------------------------------------------------------- */

static void test_receivers(void **state)
{
    (void)state;
    /* the whole table: one receiver per non-comment line of data/receivers */
    FILE *f = fopen(BP_SOURCE_DIR "/data/receivers", "r");
    assert_non_null(f);
    char line[2048];
    size_t lines = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        lines += line[0] != '#' && line[0] != '\n';
    fclose(f);
    assert_int_equal(bp_receiver_count(), lines);
    assert_true(lines >= 9);
    static const struct {
        const char *name, *want;
    } rows[] = {
        {"gmail-smtp-in.l.google.com", "gmail"},
        {"ASPMX.L.GOOGLE.COM.", "gmail"},
        {"mx.google.com", "gmail"},
        {"gmail.com", "gmail"},
        {"example-com.mail.protection.outlook.com", "microsoft"},
        {"hotmail.co.uk", "microsoft"},
        {"mta7.am0.yahoodns.net", "yahoo"},
        {"aol.com", "yahoo"},
        {"mx01.mail.icloud.com", "apple"},
        {"me.com", "apple"},
        {"mx1a1.comcast.net", "comcast"},
        {"smtp-in.orange.fr", "orange"},
        {"mx00.emig.gmx.net", "gmx"},
        {"web.de", "gmx"},
        {"mxs.mail.ru", "mailru"},
        {"mx.yandex.net", "yandex"},
        {"xgmail.com", NULL},     /* a label boundary, not a suffix of bytes */
        {"gmail.com.evil", NULL}, /* nor a prefix */
        {"mail.ru.example", NULL},
        {"example.com", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        bp_test_check_field("receiver", rows[i].name, bp_receiver_of(rows[i].name), rows[i].want);
    assert_null(bp_receiver_of(NULL));
    bp_receiver_source from = BP_RECEIVER_NONE;
    bp_test_check_str("remote first", bp_receiver_for("mx01.mail.icloud.com", "mx.google.com", "a@yahoo.com", &from),
                      "apple");
    assert_int_equal(from, BP_RECEIVER_REMOTE_MTA);
    bp_test_check_str("reporting next", bp_receiver_for("mx.example.net", "mx.google.com", "a@yahoo.com", &from),
                      "gmail");
    assert_int_equal(from, BP_RECEIVER_REPORTING_MTA);
    bp_test_check_str("recipient last", bp_receiver_for(NULL, "mx.example.net", "a@Yahoo.com", &from), "yahoo");
    assert_int_equal(from, BP_RECEIVER_RECIPIENT);
    assert_null(bp_receiver_for(NULL, NULL, "no-domain", &from));
    assert_int_equal(from, BP_RECEIVER_NONE);
    assert_true(bp_receiver_known("gmail"));
    assert_false(bp_receiver_known("spamhaus-zen"));
    for (size_t i = 0; i < bp_receiver_count(); i++)
        assert_true(bp_receiver_known(bp_receiver_name(i)));
    assert_null(bp_receiver_name(bp_receiver_count()));
}

/* ---- signal fields ------------------------------------------------------------------------ */

static void test_ip_and_tokens(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } ips[] = {
        {"192.0.2.10", "192.0.2.10"},
        {" [192.0.2.10] ", "192.0.2.10"},
        {"192.0.2.10.", "192.0.2.10"},
        {"2001:DB8:0:0::1", "2001:db8::1"},
        {"[IPv6:2001:db8::25]", "2001:db8::25"},
        {"192.0.2", NULL},
        {"999.0.2.1", NULL},
        {"192.0.2.10; DROP TABLE", NULL},
        {"mx.example.net", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        char out[64] = "";
        int ok = bp_signal_ip_canonical(ips[i].in, out, sizeof(out));
        bp_test_check_field("ip", ips[i].in, ok ? out : NULL, ips[i].want);
    }
    char long_token[80];
    memset(long_token, 'a', sizeof(long_token) - 1);
    long_token[sizeof(long_token) - 1] = '\0';
    static const struct {
        const char *in;
        int ok;
    } tokens[] = {
        {"vmta-pool-3", 1}, {"marketing", 1}, {"a.b_c:d@e+f=g/h", 1}, {"two words", 0},
        {"semi;colon", 0},  {"quo\"te", 0},   {"new\nline", 0},       {"", 0},
        {"$(id)", 0},       {"{ip}", 0},
    };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        if (bp_signal_token_valid(tokens[i].in) != tokens[i].ok)
            fail_msg("token \"%s\": got %d, want %d", tokens[i].in, !tokens[i].ok, tokens[i].ok);
    long_token[64] = '\0';
    assert_true(bp_signal_token_valid(long_token)); /* BP_MAX_SIGNAL_TOKEN_BYTES */
    long_token[64] = 'a';
    long_token[65] = '\0';
    assert_false(bp_signal_token_valid(long_token));
}

/* A source of named values: "NAME=VALUE" pairs. */
static const char *lookup_pairs(const void *ctx, const char *name)
{
    for (const char *const *p = ctx; *p != NULL; p += 2)
        if (strcasecmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static void test_sources(void **state)
{
    bp_arena *arena = *state;
    /* accounting columns, by the default names */
    static const char *const acct[] = {"dlvSourceIp",           "192.0.2.30", "vmta", "vmta-a",
                                       "header_X-Traffic-Type", "marketing",  NULL};
    bp_event e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(bp_signal_from_source(&e, NULL, BP_SIGNAL_ACCOUNTING, lookup_pairs, acct, arena), BP_OK);
    bp_test_check_str("acct ip", e.sending_ip, "192.0.2.30");
    bp_test_check_str("acct ip from", e.sending_ip_from, "accounting:dlvSourceIp");
    bp_test_check_str("acct vmta", e.vmta, "vmta-a");
    bp_test_check_str("acct stream from", e.stream_from, "accounting:header_X-Traffic-Type");
    /* a later source fills nothing already known */
    static const char *const headers[] = {"X-Traffic-Type", "transactional", "X-Virtual-MTA", "vmta-b", NULL};
    assert_int_equal(bp_signal_from_source(&e, NULL, BP_SIGNAL_HEADERS, lookup_pairs, headers, arena), BP_OK);
    bp_test_check_str("stream kept", e.stream, "marketing");
    bp_test_check_str("vmta kept", e.vmta, "vmta-a");
    /* headers: the configured names in order; an invalid value is skipped for the next name */
    static const char *const names[] = {"X-Stream", "X-Traffic-Type", NULL};
    bp_signal_options o = {names, NULL, NULL, NULL, NULL};
    static const char *const hostile[] = {
        "X-Stream", "a value; $(rm -rf /)", "X-Traffic-Type", "newsletter", "X-Virtual-MTA", "vmta-b", NULL};
    memset(&e, 0, sizeof(e));
    assert_int_equal(bp_signal_from_source(&e, &o, BP_SIGNAL_HEADERS, lookup_pairs, hostile, arena), BP_OK);
    bp_test_check_str("header stream", e.stream, "newsletter");
    bp_test_check_str("header stream from", e.stream_from, "header:X-Traffic-Type");
    bp_test_check_str("default vmta header", e.vmta, "vmta-b");
    assert_null(e.sending_ip); /* headers carry no sending IP */
    /* a feedback report's Source-IP, unless one is known */
    assert_int_equal(bp_signal_take_ip(&e, "192.0.2.31", "feedback-report:Source-IP", arena), BP_OK);
    bp_test_check_str("fbl ip", e.sending_ip, "192.0.2.31");
    assert_int_equal(bp_signal_take_ip(&e, "192.0.2.99", "text:x", arena), BP_OK);
    bp_test_check_str("first ip kept", e.sending_ip, "192.0.2.31");
}

/* Rows "ID | BLOCKLIST | LISTED | TEXT" of tests/rules/named-lists.txt against the builtin rules. */
static void test_named_lists(void **state)
{
    bp_arena *arena = *state;
    bp_rules *rules = NULL;
    assert_int_equal(bp_rules_new(&rules), BP_OK);
    assert_int_equal(bp_rules_load_builtin(rules, NULL, NULL, NULL), BP_OK);
    FILE *f = fopen(BP_SOURCE_DIR "/tests/rules/named-lists.txt", "r");
    assert_non_null(f);
    char line[4096];
    char seen[256][64];
    size_t n_seen = 0, rows = 0;
    int failures = 0;
    for (unsigned lineno = 1; fgets(line, sizeof(line), f) != NULL; lineno++) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *field[4];
        char *p = line;
        for (int k = 0; k < 3; k++) {
            char *bar = strstr(p, " | ");
            assert_non_null(bar);
            *bar = '\0';
            field[k] = p;
            p = bar + 3;
        }
        field[3] = p;
        rows++;
        if (n_seen < 256)
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", field[0]);
        bp_rule_subject subj = {field[3], strlen(field[3]), NULL, NULL, NULL, BP_SMTP_NONE};
        bp_rule_match m;
        if (!bp_rules_match(rules, &subj, &m)) {
            print_message("named-lists.txt:%u: no rule matches\n", lineno);
            failures++;
            continue;
        }
        bp_event e;
        memset(&e, 0, sizeof(e));
        e.type = BP_EVENT_BOUNCE;
        e.diagnostic = field[3];
        e.rule = m.rule->id;
        e.blocklist = m.rule->blocklist;
        assert_int_equal(bp_signal_finish(&e, rules, arena), BP_OK);
        const char *want_listed = strcmp(field[2], "-") == 0 ? NULL : field[2];
        if (strcmp(m.rule->id, field[0]) != 0 || e.blocklist == NULL || strcmp(e.blocklist, field[1]) != 0 ||
            (want_listed == NULL) != (e.listed == NULL) ||
            (want_listed != NULL && strcmp(want_listed, e.listed) != 0)) {
            print_message("named-lists.txt:%u: got %s %s %s, want %s %s %s\n", lineno, m.rule->id,
                          e.blocklist ? e.blocklist : "(none)", e.listed ? e.listed : "-", field[0], field[1],
                          field[2]);
            failures++;
        }
        /* a listed IP is the sending IP the text names (nothing better was given) */
        if (want_listed != NULL && strchr(want_listed, ':') == NULL && strchr(want_listed, '.') != NULL &&
            strspn(want_listed, "0123456789.") == strlen(want_listed)) {
            char from[128];
            snprintf(from, sizeof(from), "text:%s", field[0]);
            if (e.sending_ip == NULL || strcmp(e.sending_ip, want_listed) != 0 || e.sending_ip_from == NULL ||
                strcmp(e.sending_ip_from, from) != 0) {
                print_message("named-lists.txt:%u: sending ip %s from %s\n", lineno, e.sending_ip ? e.sending_ip : "-",
                              e.sending_ip_from ? e.sending_ip_from : "-");
                failures++;
            }
        }
    }
    fclose(f);
    assert_true(rows > 40);
    /* every shipped rule that names a list has a row */
    for (size_t i = 0; i < bp_rules_count(rules); i++) {
        const bp_rule *r = bp_rules_get(rules, i);
        if (r->blocklist == NULL)
            continue;
        int found = 0;
        for (size_t k = 0; k < n_seen && !found; k++)
            found = strcmp(seen[k], r->id) == 0;
        if (!found) {
            print_message("%s:%u: %s (blocklist=%s) has no row in named-lists.txt\n", r->file, r->line, r->id,
                          r->blocklist);
            failures++;
        }
    }
    /* a known sending IP stays: the text only fills what nothing else said */
    bp_event e;
    memset(&e, 0, sizeof(e));
    e.type = BP_EVENT_BOUNCE;
    e.diagnostic = "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org";
    e.rule = "bl-spamhaus-zen";
    e.sending_ip = "192.0.2.77";
    e.remote_mta = "mx.google.com";
    assert_int_equal(bp_signal_finish(&e, rules, arena), BP_OK);
    bp_test_check_str("kept ip", e.sending_ip, "192.0.2.77");
    bp_test_check_str("listed anyway", e.listed, "192.0.2.10");
    bp_test_check_str("receiver", e.receiver, "gmail");
    bp_test_check_str("receiver from", e.receiver_from, "remote-mta:mx.google.com");
    /* a code-table id captures nothing */
    memset(&e, 0, sizeof(e));
    e.type = BP_EVENT_BOUNCE;
    e.diagnostic = "550 [192.0.2.10] no";
    e.rule = "status:5.7.1";
    assert_int_equal(bp_signal_finish(&e, rules, arena), BP_OK);
    assert_null(e.listed);
    assert_null(e.sending_ip);
    bp_rules_free(rules);
    assert_int_equal(failures, 0);
}

/* ---- the store ----------------------------------------------------------------------------- */

struct fixture {
    char dir[64];
    char location[512];
    bp_store *store;
};

static int store_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
#ifdef BP_TEST_PG
    const char *url = getenv("BOUNCEPIPE_TEST_DB_URL");
    if (url == NULL)
        return -1;
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(c);
    if (!ok)
        return -1;
    snprintf(f->location, sizeof(f->location), "%s", url);
#else
    if (bp_test_tmpdir(f->dir, sizeof(f->dir), "signals", f->location, sizeof(f->location), "t.db") != 0)
        return -1;
#endif
    f->store = bp_test_open_store(f->location, NULL);
    *state = f;
    return f->store == NULL;
}

static int store_teardown(void **state)
{
    struct fixture *f = *state;
    bp_store_close(f->store);
#ifndef BP_TEST_PG
    bp_test_rmtree(f->dir);
#endif
    free(f);
    return 0;
}

static bp_event signal_event(bp_event_type type, const char *ip, const char *vmta, const char *stream,
                             const char *receiver, const char *blocklist)
{
    const char *category =
        type == BP_EVENT_BOUNCE || type == BP_EVENT_DELAY ? (blocklist ? "spam-related" : "bad-mailbox") : NULL;
    bp_event e = bp_test_event(type, "jdoe@example.com", category, BP_ACT_IGNORE);
    e.final = type == BP_EVENT_BOUNCE;
    e.status = type == BP_EVENT_BOUNCE ? "5.7.1" : type == BP_EVENT_DELAY ? "4.7.0" : NULL;
    e.recipient_from = "final-recipient";
    e.sending_ip = ip;
    e.vmta = vmta;
    e.stream = stream;
    e.receiver = receiver;
    e.blocklist = blocklist;
    if (type == BP_EVENT_COMPLAINT)
        e.feedback_type = "abuse";
    return e;
}

static bp_status record(bp_store *s, const char *fp, long long t, const bp_event *ev, size_t n)
{
    bp_store_unit u = {fp, "<id@example.org>", "test", t, NULL};
    bp_record_result r;
    return bp_store_record_once(s, &u, ev, n, &r);
}

struct totals {
    long long rows, delivered, deferred, bounced, hard, complaints;
    char last_list[64];
    long long named;
};

static int sum_rows(void *user, const bp_signal_row *r)
{
    struct totals *t = user;
    t->rows++;
    t->delivered += r->delivered;
    t->deferred += r->deferred;
    t->bounced += r->bounced;
    t->hard += r->hard;
    t->complaints += r->complaints;
    if (r->blocklist != NULL) {
        snprintf(t->last_list, sizeof(t->last_list), "%s", r->blocklist);
        t->named += r->bounced + r->deferred;
    }
    return 0;
}

static int stop_after_one(void *user, const bp_signal_row *r)
{
    (void)r;
    ((struct totals *)user)->rows++;
    return 1;
}

static struct totals totals(bp_store *s, long long from, long long until)
{
    struct totals t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(bp_store_signal_rows(s, from, until, sum_rows, &t), BP_OK);
    return t;
}

static void test_counts(void **state)
{
    struct fixture *f = *state;
    bp_event ev[5] = {
        signal_event(BP_EVENT_BOUNCE, "192.0.2.10", "vmta-a", "marketing", "gmail", "spamhaus-zen"),
        signal_event(BP_EVENT_BOUNCE, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL), /* hard */
        signal_event(BP_EVENT_DELAY, "192.0.2.10", "vmta-a", "marketing", "gmail", "gmail"),
        signal_event(BP_EVENT_COMPLAINT, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL),
        signal_event(BP_EVENT_DELIVERED, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL),
    };
    ev[1].recipient = "other@example.com";
    assert_int_equal(record(f->store, "u1", T0, ev, 5), BP_OK);
    struct totals t = totals(f->store, T0 - HOUR, T0 + HOUR);
    assert_int_equal(t.bounced, 2);
    assert_int_equal(t.hard, 1); /* the bounce naming a list is no bad address */
    assert_int_equal(t.deferred, 1);
    assert_int_equal(t.complaints, 1);
    assert_int_equal(t.delivered, 1);
    assert_int_equal(t.named, 2);
    /* the same unit again: counted once */
    assert_int_equal(record(f->store, "u1", T0, ev, 5), BP_OK);
    t = totals(f->store, T0 - HOUR, T0 + HOUR);
    assert_int_equal(t.bounced, 2);
    /* a DMARC failure report or a not-spam report is no complaint about our mail */
    bp_event x = signal_event(BP_EVENT_COMPLAINT, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL);
    x.feedback_type = "auth-failure";
    assert_int_equal(record(f->store, "u2", T0, &x, 1), BP_OK);
    x.feedback_type = "not-spam";
    assert_int_equal(record(f->store, "u3", T0, &x, 1), BP_OK);
    assert_int_equal(totals(f->store, T0 - HOUR, T0 + HOUR).complaints, 1);
    /* a rolled-back transaction counts nothing */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    bp_store_unit u = {"u4", NULL, "test", T0, NULL};
    assert_int_equal(bp_store_record(f->store, &u, ev, 1, NULL), BP_OK);
    bp_store_rollback(f->store);
    assert_int_equal(totals(f->store, T0 - HOUR, T0 + HOUR).bounced, 2);
    /* windows are hours: the next hour holds nothing yet */
    assert_int_equal(totals(f->store, T0 + HOUR, T0 + 2 * HOUR).rows, 0);
    /* rescore moves a count with its list: the named bounce becomes a hard one */
    struct totals before = totals(f->store, T0 - HOUR, T0 + HOUR);
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    /* the first ledger row is the spamhaus bounce (ids start at 1) */
    assert_int_equal(bp_store_reclassify(f->store, 1, "jdoe@example.com", "bad-mailbox", "x", BP_ACT_IGNORE, NULL),
                     BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    t = totals(f->store, T0 - HOUR, T0 + HOUR);
    assert_int_equal(t.bounced, before.bounced);
    assert_int_equal(t.hard, before.hard + 1);
    assert_int_equal(t.named, before.named - 1);
    /* the rebuild from the ledger gives the same counts */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    long long keys = 0;
    assert_int_equal(bp_store_signal_rebuild(f->store, &keys), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    struct totals r = totals(f->store, T0 - HOUR, T0 + HOUR);
    assert_true(keys > 0);
    assert_int_equal(r.bounced, t.bounced);
    assert_int_equal(r.hard, t.hard);
    assert_int_equal(r.deferred, t.deferred);
    assert_int_equal(r.complaints, t.complaints);
    assert_int_equal(r.delivered, t.delivered);
    assert_int_equal(r.named, t.named);
}

/* A window's rows as bp_store_signal_rows() hands them out, one line each. */
struct row_lines {
    char text[2048];
    size_t len;
};

static int row_line(void *user, const bp_signal_row *r)
{
    struct row_lines *l = user;
    int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s %s %s %s %s: %lld %lld %lld %lld %lld\n",
                     r->sending_ip ? r->sending_ip : "-", r->vmta ? r->vmta : "-", r->stream ? r->stream : "-",
                     r->receiver ? r->receiver : "-", r->blocklist ? r->blocklist : "-", r->delivered, r->deferred,
                     r->bounced, r->hard, r->complaints);
    assert_true(n > 0 && (size_t)n < sizeof(l->text) - l->len);
    l->len += (size_t)n;
    return 0;
}

/* A window's rows: one per key, its hours summed, in the byte order of the key's parts (unknown,
 * '' in the table, first: "192.0.2.10" before "192.0.2.9"), hours outside the window left out;
 * the callback stops the walk. */
static void test_window_rows(void **state)
{
    struct fixture *f = *state;
    const long long h0 = T0 / HOUR * HOUR; /* windows are whole hours */
    static const struct {
        int hour;
        bp_event_type type;
        const char *ip, *vmta, *stream, *receiver, *blocklist;
    } ev[] = {
        {0, BP_EVENT_BOUNCE, "192.0.2.9", "vmta-b", NULL, "yahoo", NULL},
        {0, BP_EVENT_BOUNCE, "192.0.2.10", "vmta-a", "marketing", "gmail", "spamhaus-zen"},
        {0, BP_EVENT_COMPLAINT, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL},
        {1, BP_EVENT_BOUNCE, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL},
        {1, BP_EVENT_DELAY, NULL, NULL, NULL, NULL, NULL},
        {1, BP_EVENT_BOUNCE, "192.0.2.9", "vmta-b", NULL, "yahoo", NULL},
        {2, BP_EVENT_DELIVERED, "192.0.2.10", "vmta-a", "marketing", "microsoft", NULL},
        {2, BP_EVENT_BOUNCE, "192.0.2.10", "vmta-a", "marketing", "gmail", "spamhaus-zen"},
        {2, BP_EVENT_COMPLAINT, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL},
        {3, BP_EVENT_DELAY, NULL, NULL, NULL, NULL, NULL},
        {5, BP_EVENT_BOUNCE, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL}, /* after the window */
    };
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
        bp_event e = signal_event(ev[i].type, ev[i].ip, ev[i].vmta, ev[i].stream, ev[i].receiver, ev[i].blocklist);
        char fp[32];
        snprintf(fp, sizeof(fp), "w%zu", i);
        assert_int_equal(record(f->store, fp, h0 + ev[i].hour * HOUR, &e, 1), BP_OK);
    }
    bp_event d = signal_event(BP_EVENT_DELIVERED, "192.0.2.9", "vmta-b", NULL, "yahoo", NULL);
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(bp_store_signal_acct(f->store, "mta1", h0 + i * HOUR, &d, BP_SIGNAL_DELIVERED, NULL), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    struct row_lines l = {"", 0};
    assert_int_equal(bp_store_signal_rows(f->store, h0, h0 + 4 * HOUR, row_line, &l), BP_OK);
    assert_string_equal(l.text, "- - - - -: 0 2 0 0 0\n"
                                "192.0.2.10 vmta-a marketing gmail -: 0 0 1 1 2\n"
                                "192.0.2.10 vmta-a marketing gmail spamhaus-zen: 0 0 2 0 0\n"
                                "192.0.2.10 vmta-a marketing microsoft -: 1 0 0 0 0\n"
                                "192.0.2.9 vmta-b - yahoo -: 3 0 2 2 0\n");
    /* a window of one hour, and a callback that stops after the first row */
    l.len = 0;
    assert_int_equal(bp_store_signal_rows(f->store, h0 + HOUR, h0 + 2 * HOUR, row_line, &l), BP_OK);
    assert_string_equal(l.text, "- - - - -: 0 1 0 0 0\n"
                                "192.0.2.10 vmta-a marketing gmail -: 0 0 1 1 0\n"
                                "192.0.2.9 vmta-b - yahoo -: 1 0 1 1 0\n");
    struct totals t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(bp_store_signal_rows(f->store, h0, h0 + 4 * HOUR, stop_after_one, &t), BP_OK);
    assert_int_equal(t.rows, 1);
}

/* Count @p n deliveries of one key at @p when through the watermark of @p host. */
static long long acct_deliveries(bp_store *s, const char *host, long long when, int n)
{
    bp_event e = signal_event(BP_EVENT_DELIVERED, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL);
    long long counted = 0;
    assert_int_equal(bp_store_begin(s), BP_OK);
    for (int i = 0; i < n; i++) {
        int c = 0;
        assert_int_equal(bp_store_signal_acct(s, host, when, &e, BP_SIGNAL_DELIVERED, &c), BP_OK);
        counted += c;
    }
    assert_int_equal(bp_store_commit(s), BP_OK);
    return counted;
}

/* One record of @p kind for @p e at @p when, counted inside a batch that is then rolled back
 * (the watermark must stay where it was). */
static void rolled_back_record(bp_store *s, long long when, const bp_event *e, bp_signal_acct kind)
{
    int c = 0;
    assert_int_equal(bp_store_begin(s), BP_OK);
    assert_int_equal(bp_store_signal_acct(s, "mta1", when, e, kind, &c), BP_OK);
    assert_int_equal(c, 1);
    bp_store_rollback(s);
}

/* Another process: the store closed and opened again (nothing of this one's reading left). */
static void reopen(struct fixture *f)
{
    bp_store_close(f->store);
    f->store = bp_test_open_store(f->location, NULL);
}

/* The steps of test_acct_watermark: what happens before (the same reading goes on, another
 * process starts, another process resumes at the kept position after a batch of one record it
 * rolled back, a batch of one deferral rolled back), then @p n deliveries of @p host at T0 +
 * @p when of which @p want count, and the deliveries in the window after (-1: not checked). */
enum watermark_before { SAME_READING, ANOTHER_PROCESS, RESUMED, ROLLED_BACK };
struct watermark_step {
    const char *label;
    enum watermark_before before;
    const char *host;
    long long when;
    int n, want, total;
};
static const struct watermark_step watermark_steps[] = {
    {"a stream: three records in one second", SAME_READING, "mta1", 0, 3, 3, -1},
    {"two in the next", SAME_READING, "mta1", 1, 2, 2, 5},
    /* acct commits in batches: a record of the last second in the next batch is a new one */
    {"one reading goes on across its batches", SAME_READING, "mta1", 1, 1, 1, 6},
    {"the file re-read from the start: nothing counts twice", ANOTHER_PROCESS, "mta1", 0, 3, 0, -1},
    {"one new record of the last second does", SAME_READING, "mta1", 1, 4, 1, 7},
    /* acct --follow restarted in the middle of a second: every record after it is new */
    {"resumed at the kept position, its first batch rolled back and read again", RESUMED, "mta1", 1, 2, 2, -1},
    {"the resumed reading goes on", SAME_READING, "mta1", 1, 1, 1, 10},
    {"the whole file read again afterwards adds nothing", ANOTHER_PROCESS, "mta1", 0, 3, 0, -1},
    {"nor does its last second", SAME_READING, "mta1", 1, 7, 0, 10},
    {"another host keeps its own watermark", SAME_READING, "mta2", 0, 2, 2, -1},
    {"a rolled-back batch leaves the watermark where it was", ROLLED_BACK, "mta1", 5, 1, 1, 13},
};

static void test_acct_watermark(void **state)
{
    struct fixture *f = *state;
    bp_event e = signal_event(BP_EVENT_DELIVERED, "192.0.2.10", NULL, NULL, NULL, NULL);
    assert_int_equal(bp_store_signal_acct(f->store, "mta1", T0, &e, BP_SIGNAL_DELIVERED, NULL), BP_ERR_USAGE);
    for (size_t i = 0; i < sizeof(watermark_steps) / sizeof(watermark_steps[0]); i++) {
        const struct watermark_step *st = &watermark_steps[i];
        if (st->before == ANOTHER_PROCESS || st->before == RESUMED)
            reopen(f);
        if (st->before == RESUMED) {
            assert_int_equal(bp_store_signal_acct_resume(f->store), BP_OK);
            rolled_back_record(f->store, T0 + st->when, &e, BP_SIGNAL_DELIVERED);
        }
        if (st->before == ROLLED_BACK)
            rolled_back_record(f->store, T0 + st->when, &e, BP_SIGNAL_DEFERRED);
        long long counted = acct_deliveries(f->store, st->host, T0 + st->when, st->n);
        if (counted != st->want)
            fail_msg("%s: counted %lld, want %d", st->label, counted, st->want);
        long long total = totals(f->store, T0 - HOUR, T0 + HOUR).delivered;
        if (st->total >= 0 && total != st->total)
            fail_msg("%s: %lld deliveries in the window, want %d", st->label, total, st->total);
    }
    assert_int_equal(totals(f->store, T0 - HOUR, T0 + HOUR).deferred, 0);
}

static int count_state(void *user, const bp_signal_alert_state *st)
{
    int *n = user;
    (*n)++;
    assert_true(st->fired >= 1 && st->last_seen >= st->last_fired && st->last_fired >= st->first_fired);
    return 0;
}

/* migrate's part: accounting counts, watermarks and alert states merge into another store */
static void test_copy(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(acct_deliveries(f->store, "mta1", T0, 4), 4);
    bp_event b = signal_event(BP_EVENT_BOUNCE, "192.0.2.10", "vmta-a", "marketing", "gmail", "spamhaus-zen");
    assert_int_equal(record(f->store, "c1", T0, &b, 1), BP_OK); /* a ledger count: not copied */
    bp_signal_alert_state a = {"listing", "192.0.2.10 vmta-a spamhaus-zen", T0, T0, T0 + 60, 1, 0};
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_signal_alert_put(f->store, &a), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    char dir[64], path[96];
    assert_int_equal(bp_test_tmpdir(dir, sizeof(dir), "signals-copy", path, sizeof(path), "to.db"), 0);
    bp_store *to = bp_test_open_store(path, NULL);
    long long rows = 0;
    int from_source = 0;
    for (int run = 0; run < 2; run++) { /* a second run changes nothing */
        assert_int_equal(bp_store_signal_copy(f->store, to, &rows, &from_source), BP_OK);
        assert_int_equal(rows, 3); /* one counter row, one watermark, one alert */
        struct totals t = totals(to, T0 - HOUR, T0 + HOUR);
        assert_int_equal(t.delivered, 4);
        assert_int_equal(t.bounced, 0);
    }
    /* the watermark came along: the same records are not counted again in the copy */
    assert_int_equal(acct_deliveries(to, "mta1", T0, 4), 0);
    int states = 0;
    assert_int_equal(bp_store_signal_alert(to, "listing", "192.0.2.10 vmta-a spamhaus-zen", count_state, &states),
                     BP_OK);
    assert_int_equal(states, 1);
    bp_store_close(to);
    assert_int_equal(bp_test_rmtree(dir), 0);
}

/* ---- alerts -------------------------------------------------------------------------------- */

static void test_config(void **state)
{
    (void)state;
    bp_signals_config c;
    bp_signals_config_default(&c);
    char *err = NULL;
    const bp_signals_setting good[] = {
        {"stream_headers", "X-Stream; X-Traffic-Type"},
        {"listing_command", "/usr/local/bin/hold;--vmta;*/{vmta};{ip}"},
        {"complaint_rate", "0.3%"},
        {"complaint_window", "2d"},
        {"cooldown", "90m"},
        {"deferral_min", "50"},
        {"host", "mta1.example.net"},
    };
    assert_int_equal(bp_signals_config_load(&c, good, sizeof(good) / sizeof(good[0]), &err), BP_OK);
    assert_null(err);
    bp_test_check_str("list 0", c.fields.stream_headers[0], "X-Stream");
    bp_test_check_str("list 1", c.fields.stream_headers[1], "X-Traffic-Type");
    assert_null(c.fields.stream_headers[2]);
    assert_true(c.complaint_rate > 0.29 && c.complaint_rate < 0.31);
    assert_int_equal(c.complaint_window, 2 * 86400);
    assert_int_equal(c.cooldown, 90 * 60);
    assert_int_equal(c.deferral_min, 50);
    bp_test_check_str("command arg", c.listing_command[2], "*/{vmta}");
    static const struct {
        const char *key, *value, *want;
    } bad[] = {
        {"listing_command", "hold;{ip}", "absolute path"},
        {"listing_command", "/bin/hold;{ipaddress}", "unknown placeholder"},
        {"complaint_rate", "150", "percentage"},
        {"complaint_window", "10m", "duration"},
        {"cooldown", "soon", "duration"},
        {"deferral_min", "0", "whole number"},
        {"host", "a host", "host name"},
        {"colour", "blue", "unknown key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bp_signals_setting s = {bad[i].key, bad[i].value};
        err = NULL;
        assert_int_equal(bp_signals_config_load(&c, &s, 1, &err), BP_ERR_CONFIG);
        if (err == NULL || strstr(err, bad[i].key) == NULL || strstr(err, bad[i].want) == NULL)
            fail_msg("[signals] %s = %s: got \"%s\", want it to name the key and say %s", bad[i].key, bad[i].value,
                     err ? err : "(null)", bad[i].want);
        free(err);
    }
    /* all or nothing: the good settings stay */
    assert_int_equal(c.cooldown, 90 * 60);
    bp_signals_config_free(&c);
    assert_null(c.listing_command);
    assert_int_equal(bp_signals_parse_duration("24h"), 86400);
    assert_int_equal(bp_signals_parse_duration("7d"), 7 * 86400);
    assert_int_equal(bp_signals_parse_duration("3600"), 3600);
    assert_int_equal(bp_signals_parse_duration(" 1.5h "), 5400);
    assert_int_equal(bp_signals_parse_duration("2w"), 14 * 86400);
    assert_int_equal(bp_signals_parse_duration("7 d"), -1);
    assert_int_equal(bp_signals_parse_duration("-1h"), -1);
    assert_int_equal(bp_signals_parse_duration("1y"), -1);
    assert_int_equal(bp_signals_parse_duration("99999d"), -1);
}

static void test_argv(void **state)
{
    (void)state;
    const char *const command[] = {"/usr/local/bin/hold", "*/{vmta}", "{ip}", "{alert}:{list}", "{value}", NULL};
    bp_alert a;
    memset(&a, 0, sizeof(a));
    a.kind = BP_ALERT_LISTING;
    a.sending_ip = "192.0.2.10";
    a.vmta = "vmta-a";
    a.list = "spamhaus-zen";
    a.command = command;
    char **argv = NULL;
    const char *why = NULL;
    assert_int_equal(bp_alert_argv(&a, &argv, &why), BP_OK);
    bp_test_check_str("argv 0", argv[0], "/usr/local/bin/hold");
    bp_test_check_str("argv 1", argv[1], "*/vmta-a");
    bp_test_check_str("argv 2", argv[2], "192.0.2.10");
    bp_test_check_str("argv 3", argv[3], "listing:spamhaus-zen");
    bp_test_check_str("argv 4", argv[4], "0");
    assert_null(argv[5]);
    bp_alert_argv_free(argv);
    /* an unknown VMTA: no command on "every VMTA" */
    a.vmta = NULL;
    assert_int_equal(bp_alert_argv(&a, &argv, &why), BP_ERR_NOT_FOUND);
    assert_null(argv);
    assert_non_null(why);
    a.command = NULL;
    assert_int_equal(bp_alert_argv(&a, &argv, &why), BP_ERR_NOT_FOUND);
}

struct fired {
    int n;
    char what[8][160];
    int outcome; /* what the "command" returns */
};

static int on_fire(void *user, const bp_alert *a)
{
    struct fired *f = user;
    if (f->n < 8)
        snprintf(f->what[f->n], sizeof(f->what[0]), "%s %s%s", bp_alert_name(a->kind), a->subject,
                 a->retry ? " retry" : "");
    f->n++;
    return a->command != NULL ? f->outcome : -1;
}

static struct fired check(bp_store *s, const bp_signals_config *c, long long now, int outcome)
{
    struct fired f;
    memset(&f, 0, sizeof(f));
    f.outcome = outcome;
    unsigned n = 0;
    assert_int_equal(bp_signals_check(s, c, now, on_fire, &f, &n), BP_OK);
    assert_int_equal(n, (unsigned)f.n);
    return f;
}

static void test_alerts(void **state)
{
    struct fixture *f = *state;
    bp_signals_config c;
    bp_signals_config_default(&c);
    c.deferral_min = 10;
    c.complaint_min = 100;
    /* nothing yet */
    assert_int_equal(check(f->store, &c, T0, 0).n, 0);
    /* a listing of 192.0.2.11 on Spamhaus: fires once */
    bp_event b = signal_event(BP_EVENT_BOUNCE, "192.0.2.11", "vmta-a", "marketing", "gmail", "spamhaus-zen");
    assert_int_equal(record(f->store, "l1", T0, &b, 1), BP_OK);
    struct fired r = check(f->store, &c, T0 + 60, 0);
    assert_int_equal(r.n, 1);
    bp_test_check_str("listing", r.what[0], "listing 192.0.2.11 vmta-a spamhaus-zen");
    assert_int_equal(check(f->store, &c, T0 + 600, 0).n, 0); /* the same listing */
    assert_int_equal(record(f->store, "l2", T0 + 1200, &b, 1), BP_OK);
    assert_int_equal(check(f->store, &c, T0 + 1800, 0).n, 0); /* still the same episode */
    /* a restart: a new store handle reads the state */
    bp_store_close(f->store);
    f->store = bp_test_open_store(f->location, NULL);
    assert_int_equal(check(f->store, &c, T0 + 2400, 0).n, 0);
    /* quiet for longer than the cool-down, then listed again: a new episode */
    long long later = T0 + 3 * 86400;
    assert_int_equal(check(f->store, &c, later - 600, 0).n, 0);
    assert_int_equal(record(f->store, "l3", later, &b, 1), BP_OK);
    r = check(f->store, &c, later + 60, 0);
    assert_int_equal(r.n, 1);
    /* another list of no interest, on another IP: nothing */
    bp_event o = signal_event(BP_EVENT_BOUNCE, "192.0.2.12", "vmta-b", "marketing", "gmail", "barracuda");
    assert_int_equal(record(f->store, "l4", later, &o, 1), BP_OK);
    assert_int_equal(check(f->store, &c, later + 120, 0).n, 0);

    /* a command that fails runs again at the next check, until it succeeds */
    const char *const hold[] = {"/bin/false", NULL};
    c.listing_command = (char **)(uintptr_t)hold;
    long long again = later + 9 * 86400;
    bp_event b2 = signal_event(BP_EVENT_BOUNCE, "192.0.2.13", "vmta-c", "marketing", "gmail", "spamhaus-sbl");
    assert_int_equal(record(f->store, "l5", again, &b2, 1), BP_OK);
    r = check(f->store, &c, again + 60, 1);
    assert_int_equal(r.n, 1);
    r = check(f->store, &c, again + 120, 0);
    assert_int_equal(r.n, 1);
    bp_test_check_str("retry", r.what[0], "listing 192.0.2.13 vmta-c spamhaus-sbl retry");
    assert_int_equal(check(f->store, &c, again + 180, 0).n, 0); /* it ran */
    c.listing_command = NULL;

    /* deferrals naming Gmail's reputation: 3 of 12 attempts is 25 %: fires; 2 of 12 does not */
    long long dh = T0 + 20 * 86400;
    bp_event d = signal_event(BP_EVENT_DELAY, "192.0.2.10", "vmta-a", "marketing", "gmail", "gmail");
    bp_event ok = signal_event(BP_EVENT_DELIVERED, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL);
    char fp[32];
    for (int i = 0; i < 10; i++) {
        snprintf(fp, sizeof(fp), "d%d", i);
        assert_int_equal(record(f->store, fp, dh + i, i < 2 ? &d : &ok, 1), BP_OK);
    }
    /* a yahoo hour of its own: few attempts, below the minimum */
    bp_event y = signal_event(BP_EVENT_DELAY, "192.0.2.10", "vmta-a", "marketing", "yahoo", "yahoo");
    assert_int_equal(record(f->store, "y1", dh, &y, 1), BP_OK);
    assert_int_equal(check(f->store, &c, dh + 60, 0).n, 0); /* 2 of 10: 20 % */
    assert_int_equal(record(f->store, "d10", dh + 10, &d, 1), BP_OK);
    assert_int_equal(record(f->store, "d11", dh + 11, &ok, 1), BP_OK);
    r = check(f->store, &c, dh + 120, 0); /* 3 of 12 */
    assert_int_equal(r.n, 1);
    bp_test_check_str("deferral", r.what[0], "deferral gmail");

    /* complaints: 1 in 100 deliveries of "marketing" is 1 % (threshold 0.1 %); "transactional"
     * has 1 in 2000 */
    long long ch = T0 + 40 * 86400;
    bp_event del_m = signal_event(BP_EVENT_DELIVERED, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL);
    bp_event del_t = signal_event(BP_EVENT_DELIVERED, "192.0.2.12", "vmta-b", "transactional", "gmail", NULL);
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(bp_store_signal_acct(f->store, "mta1", ch + i, &del_t, BP_SIGNAL_DELIVERED, NULL), BP_OK);
        if (i < 99)
            assert_int_equal(bp_store_signal_acct(f->store, "mta2", ch + i, &del_m, BP_SIGNAL_DELIVERED, NULL), BP_OK);
    }
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    bp_event cm = signal_event(BP_EVENT_COMPLAINT, "192.0.2.10", "vmta-a", "marketing", "gmail", NULL);
    bp_event ct = signal_event(BP_EVENT_COMPLAINT, "192.0.2.12", "vmta-b", "transactional", "gmail", NULL);
    assert_int_equal(record(f->store, "c1", ch + 10, &cm, 1), BP_OK);
    assert_int_equal(record(f->store, "c2", ch + 10, &ct, 1), BP_OK);
    assert_int_equal(check(f->store, &c, ch + 3000, 0).n, 0); /* marketing: 99 deliveries, below the minimum */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_signal_acct(f->store, "mta2", ch + 200, &del_m, BP_SIGNAL_DELIVERED, NULL), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    r = check(f->store, &c, ch + 3000, 0);
    assert_int_equal(r.n, 1);
    bp_test_check_str("complaint", r.what[0], "complaint marketing");
    /* every state is in the store: two listings of 192.0.2.11's episodes share one row */
    int states = 0;
    assert_int_equal(bp_store_signal_alerts(f->store, count_state, &states), BP_OK);
    assert_int_equal(states, 4); /* 192.0.2.11, 192.0.2.13, gmail, marketing */
}

/* Register test @p f with a fresh store in a temporary directory (store_setup / store_teardown). */
#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, store_setup, store_teardown)

BP_TEST_MAIN(cmocka_unit_test(test_receivers), BP_ARENA_TEST(test_ip_and_tokens), BP_ARENA_TEST(test_sources),
             BP_ARENA_TEST(test_named_lists), cmocka_unit_test(test_config), cmocka_unit_test(test_argv),
             STORE_TEST(test_counts), STORE_TEST(test_window_rows), STORE_TEST(test_acct_watermark),
             STORE_TEST(test_copy), STORE_TEST(test_alerts))
