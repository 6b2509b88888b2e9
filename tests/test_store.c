/*
 * test_store.c - the store's semantics on a temporary SQLite file: schema and file mode,
 * idempotent units, suppression derivation, soft-bounce escalation and its reset, removals
 * that old evidence cannot undo, quarantined units upgraded later, imports, export filters,
 * stats, rescore's reclassification, lock timeouts, and databases that are not ours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "bouncepipe/store.h"

#define DAY 86400LL

struct fixture {
    char dir[64];
    char path[96];
    bp_store *store;
};

static bp_store *open_store(const char *path, unsigned busy_ms)
{
    bp_store_options o;
    bp_store_options_default(&o);
    if (busy_ms > 0)
        o.busy_timeout_ms = busy_ms;
    bp_store *s = NULL;
    char *err = NULL;
    bp_status st = bp_store_open(path, &o, &s, &err);
    if (st != BP_OK)
        fail_msg("open %s: %s: %s", path, bp_status_to_string(st), err ? err : "");
    free(err);
    return s;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bp-test-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
    f->store = open_store(f->path, 0);
    *state = f;
    return f->store == NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char p[128];
    bp_store_close(f->store);
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/other.db", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static bp_event bounce(const char *rcpt, const char *category, bp_action action)
{
    bp_event e;
    memset(&e, 0, sizeof(e));
    e.type = BP_EVENT_BOUNCE;
    e.recipient = rcpt;
    e.category = category;
    e.action = action;
    e.status = action == BP_ACT_SUPPRESS ? "5.1.1" : "4.2.2";
    e.smtp_code = action == BP_ACT_SUPPRESS ? "550" : "452";
    e.diagnostic = "test diagnostic";
    e.final = action == BP_ACT_SUPPRESS;
    e.source = "test";
    return e;
}

/* Record one unit in its own transaction. */
static bp_record_result record(bp_store *s, const char *fp, long long t, const bp_event *ev, size_t n)
{
    bp_store_unit u = {fp, "<id@example.org>", "test", t, NULL};
    bp_record_result r;
    bp_status st = bp_store_record_once(s, &u, ev, n, &r);
    if (st != BP_OK)
        fail_msg("record %s: %s: %s", fp, bp_status_to_string(st), bp_store_last_error(s));
    return r;
}

struct seen_row {
    int found;
    int lifted;
    long long count, first, last;
    char reason[64], kind[32], lift_reason[64];
};

static int copy_row(void *user, const bp_suppression *r)
{
    struct seen_row *s = user;
    s->found = 1;
    s->lifted = r->lifted;
    s->count = r->count;
    s->first = r->first_seen;
    s->last = r->last_seen;
    snprintf(s->reason, sizeof(s->reason), "%s", r->reason ? r->reason : "");
    snprintf(s->kind, sizeof(s->kind), "%s", r->source_kind ? r->source_kind : "");
    snprintf(s->lift_reason, sizeof(s->lift_reason), "%s", r->lift_reason ? r->lift_reason : "");
    return 0;
}

static struct seen_row lookup(bp_store *s, const char *address)
{
    struct seen_row row;
    memset(&row, 0, sizeof(row));
    bp_status st = bp_store_lookup(s, address, copy_row, &row);
    if (st != BP_OK && st != BP_ERR_NOT_FOUND)
        fail_msg("lookup %s: %s", address, bp_status_to_string(st));
    return row;
}

static int suppressed(bp_store *s, const char *address)
{
    struct seen_row r = lookup(s, address);
    return r.found && !r.lifted;
}

static int count_row(void *user, const bp_ledger_row *r)
{
    (void)r;
    (*(int *)user)++;
    return 0;
}

static int ledger_rows(bp_store *s, const char *address)
{
    int n = 0;
    assert_int_equal(bp_store_ledger_for(s, address, count_row, &n), BP_OK);
    return n;
}

static void test_open_schema_and_mode(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    assert_int_equal(bp_store_schema_version(f->store), 1);
    assert_int_equal(stat(f->path, &sb), 0);
    mode_t umask_now = umask(022);
    umask(umask_now);
    assert_int_equal(sb.st_mode & 0777, 0640 & ~umask_now);
    /* a second connection sees the same schema and does not migrate again */
    bp_store *again = open_store(f->path, 0);
    assert_non_null(again);
    assert_int_equal(bp_store_schema_version(again), 1);
    bp_store_close(again);
}

static void test_suppress_and_idempotency(void **state)
{
    struct fixture *f = *state;
    bp_event ev[2] = {bounce("jdoe@Example.org", "bad-mailbox", BP_ACT_SUPPRESS),
                      bounce("amy@example.org", "policy-related", BP_ACT_IGNORE)};
    bp_record_result r = record(f->store, "fp-1", 1700000000, ev, 2);
    assert_int_equal(r.outcome, BP_RECORD_NEW);
    assert_int_equal(r.recorded, 2);
    assert_int_equal(r.suppressed, 1);
    struct seen_row row = lookup(f->store, "jdoe@Example.org");
    assert_true(row.found);
    assert_false(row.lifted);
    assert_string_equal(row.reason, "bad-mailbox");
    assert_string_equal(row.kind, BP_KIND_BOUNCE);
    assert_int_equal(row.count, 1);
    assert_int_equal(row.first, 1700000000);
    assert_false(suppressed(f->store, "amy@example.org"));

    /* the same unit again changes nothing */
    r = record(f->store, "fp-1", 1700000000, ev, 2);
    assert_int_equal(r.outcome, BP_RECORD_DUPLICATE);
    assert_int_equal(r.recorded, 0);
    assert_int_equal(ledger_rows(f->store, "jdoe@Example.org"), 1);
    assert_int_equal(lookup(f->store, "jdoe@Example.org").count, 1);
    int seen = -1;
    assert_int_equal(bp_store_seen(f->store, "fp-1", &seen), BP_OK);
    assert_int_equal(seen, 1);
    assert_int_equal(bp_store_seen(f->store, "fp-unknown", &seen), BP_OK);
    assert_int_equal(seen, 0);

    /* a complaint from another unit adds evidence and keeps the address suppressed */
    bp_event c;
    memset(&c, 0, sizeof(c));
    c.type = BP_EVENT_COMPLAINT;
    c.recipient = "jdoe@Example.org";
    c.feedback_type = "abuse";
    c.action = BP_ACT_SUPPRESS;
    r = record(f->store, "fp-2", 1700000100, &c, 1);
    assert_int_equal(r.suppressed, 0); /* it already was */
    row = lookup(f->store, "jdoe@Example.org");
    assert_int_equal(row.count, 2);
    assert_int_equal(row.last, 1700000100);
}

static void test_soft_escalation(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *label;
        int n;          /* soft events */
        long long step; /* seconds between them */
        int want;       /* suppressed at the end */
    } rows[] = {
        {"5 on 5 days", 5, DAY, 1},
        {"4 on 4 days: too few", 4, DAY, 0},
        {"5 on 1 day: too few days", 5, 60, 0},
        {"5 over 60 days: outside the window", 5, 15 * DAY, 0},
        {"6 spread 8 days apart: never 5 within 30", 6, 8 * DAY, 0},
    };
    long long base = 1700000000;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char rcpt[64], fp[64];
        snprintf(rcpt, sizeof(rcpt), "soft%zu@example.net", i);
        for (int k = 0; k < rows[i].n; k++) {
            bp_event e = bounce(rcpt, "quota-issues", BP_ACT_SOFT);
            snprintf(fp, sizeof(fp), "soft-%zu-%d", i, k);
            record(f->store, fp, base + k * rows[i].step, &e, 1);
        }
        if (suppressed(f->store, rcpt) != rows[i].want)
            fail_msg("%s: suppressed %d, want %d", rows[i].label, !rows[i].want, rows[i].want);
    }
    struct seen_row row = lookup(f->store, "soft0@example.net");
    assert_string_equal(row.kind, BP_KIND_SOFT_THRESHOLD);
    assert_string_equal(row.reason, "quota-issues");

    /* arrival order does not matter: the same five events recorded newest first */
    for (int k = 4; k >= 0; k--) {
        bp_event e = bounce("late@example.net", "quota-issues", BP_ACT_SOFT);
        char fp[32];
        snprintf(fp, sizeof(fp), "late-%d", k);
        record(f->store, fp, base + k * DAY, &e, 1);
    }
    assert_true(suppressed(f->store, "late@example.net"));
}

static void test_delivery_resets(void **state)
{
    struct fixture *f = *state;
    long long base = 1700000000;
    char fp[32];
    for (int k = 0; k < 4; k++) {
        bp_event e = bounce("reset@example.net", "quota-issues", BP_ACT_SOFT);
        snprintf(fp, sizeof(fp), "r-%d", k);
        record(f->store, fp, base + k * DAY, &e, 1);
    }
    int before = ledger_rows(f->store, "reset@example.net");
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_delivery(f->store, "reset@example.net", base + 4 * DAY), BP_OK);
    /* a delivery to an address with nothing counted writes nothing */
    assert_int_equal(bp_store_record_delivery(f->store, "fine@example.net", base + 4 * DAY), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(ledger_rows(f->store, "reset@example.net"), before + 1);
    assert_int_equal(ledger_rows(f->store, "fine@example.net"), 0);
    for (int k = 5; k < 8; k++) {
        bp_event e = bounce("reset@example.net", "quota-issues", BP_ACT_SOFT);
        snprintf(fp, sizeof(fp), "r-%d", k);
        record(f->store, fp, base + k * DAY, &e, 1);
    }
    assert_false(suppressed(f->store, "reset@example.net")); /* 3 since the delivery, not 7 */
    bp_event e = bounce("reset@example.net", "quota-issues", BP_ACT_SOFT);
    record(f->store, "r-8", base + 8 * DAY, &e, 1);
    e = bounce("reset@example.net", "quota-issues", BP_ACT_SOFT);
    record(f->store, "r-9", base + 9 * DAY, &e, 1);
    assert_true(suppressed(f->store, "reset@example.net"));
}

static void test_removal_needs_new_evidence(void **state)
{
    struct fixture *f = *state;
    long long now = (long long)time(NULL);
    bp_event e = bounce("gone@example.com", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "g-1", now - 10 * DAY, &e, 1);
    assert_true(suppressed(f->store, "gone@example.com"));

    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_remove(f->store, "gone@example.com", "customer asked", now - 100), BP_OK);
    assert_int_equal(bp_store_remove(f->store, "never@example.com", "x", now - 100), BP_ERR_NOT_FOUND);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    struct seen_row row = lookup(f->store, "gone@example.com");
    assert_true(row.found);
    assert_true(row.lifted);
    assert_string_equal(row.lift_reason, "customer asked");

    /* replaying old mail (a new unit, evidence older than the removal) does not resurrect */
    e = bounce("gone@example.com", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "g-old", now - 5 * DAY, &e, 1);
    assert_false(suppressed(f->store, "gone@example.com"));
    /* evidence dated exactly at the removal is not new either */
    record(f->store, "g-same", now - 100, &e, 1);
    assert_false(suppressed(f->store, "gone@example.com"));
    /* an import of an old list leaves it alone, unless forced */
    int changed = -1;
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_add(f->store, "gone@example.com", "old list", BP_KIND_IMPORT, 0, 0, &changed), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(changed, 0);
    assert_false(suppressed(f->store, "gone@example.com"));
    /* ... unless forced, even in the second of the removal */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_remove(f->store, "forced@example.com", "x", 0), BP_ERR_NOT_FOUND);
    assert_int_equal(bp_store_add(f->store, "forced@example.com", "list", BP_KIND_MANUAL, 0, 0, &changed), BP_OK);
    assert_int_equal(bp_store_remove(f->store, "forced@example.com", "lifted now", 0), BP_OK);
    assert_int_equal(bp_store_add(f->store, "forced@example.com", "list", BP_KIND_MANUAL, 0, 1, &changed), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(changed, 1);
    assert_true(suppressed(f->store, "forced@example.com"));
    /* new evidence suppresses again */
    record(f->store, "g-new", now - 10, &e, 1);
    row = lookup(f->store, "gone@example.com");
    assert_false(row.lifted);
    assert_string_equal(row.kind, BP_KIND_BOUNCE);
}

static void test_unrecognised_then_upgraded(void **state)
{
    struct fixture *f = *state;
    bp_event u;
    memset(&u, 0, sizeof(u));
    u.type = BP_EVENT_UNRECOGNIZED;
    u.source = "quarantine/new/x";
    bp_record_result r = record(f->store, "fp-q", 0, &u, 1);
    assert_int_equal(r.outcome, BP_RECORD_NEW);
    int seen = -1;
    assert_int_equal(bp_store_seen(f->store, "fp-q", &seen), BP_OK);
    assert_int_equal(seen, 2);
    r = record(f->store, "fp-q", 0, &u, 1); /* still unrecognised: nothing changes */
    assert_int_equal(r.outcome, BP_RECORD_DUPLICATE);
    bp_event e = bounce("later@example.org", "bad-mailbox", BP_ACT_SUPPRESS);
    r = record(f->store, "fp-q", 0, &e, 1); /* the rules improved */
    assert_int_equal(r.outcome, BP_RECORD_UPGRADED);
    assert_true(suppressed(f->store, "later@example.org"));
    assert_int_equal(bp_store_seen(f->store, "fp-q", &seen), BP_OK);
    assert_int_equal(seen, 1);
    r = record(f->store, "fp-q", 0, &e, 1);
    assert_int_equal(r.outcome, BP_RECORD_DUPLICATE);
}

struct export_count {
    int n;
    char last[64];
};

static int count_export(void *user, const bp_suppression *r)
{
    struct export_count *c = user;
    c->n++;
    snprintf(c->last, sizeof(c->last), "%s", r->address);
    return 0;
}

static int export_n(bp_store *s, const bp_store_filter *flt, char *last)
{
    struct export_count c = {0, ""};
    assert_int_equal(bp_store_export(s, flt, count_export, &c), BP_OK);
    if (last != NULL)
        strcpy(last, c.last);
    return c.n;
}

static void test_import_export_filters(void **state)
{
    struct fixture *f = *state;
    bp_event e = bounce("b@example.com", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "x-1", 1600000000, &e, 1);
    int changed = 0;
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_add(f->store, "i@example.net", "legacy", BP_KIND_IMPORT, 1700000000, 0, &changed), BP_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(bp_store_add(f->store, "i@example.net", "legacy", BP_KIND_IMPORT, 1700000000, 0, &changed), BP_OK);
    assert_int_equal(changed, 0); /* importing twice changes nothing */
    assert_int_equal(bp_store_add(f->store, "m@example.net", "asked by phone", BP_KIND_MANUAL, 0, 0, &changed), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(lookup(f->store, "i@example.net").count, 1);

    char last[64];
    bp_store_filter flt;
    memset(&flt, 0, sizeof(flt));
    assert_int_equal(export_n(f->store, &flt, NULL), 3);
    flt.domain = "example.net";
    assert_int_equal(export_n(f->store, &flt, NULL), 2);
    flt.type = BP_KIND_MANUAL;
    assert_int_equal(export_n(f->store, &flt, last), 1);
    assert_string_equal(last, "m@example.net");
    memset(&flt, 0, sizeof(flt));
    flt.since = 1650000000;
    assert_int_equal(export_n(f->store, &flt, NULL), 2);
    memset(&flt, 0, sizeof(flt));
    flt.category = "bad-mailbox";
    assert_int_equal(export_n(f->store, &flt, last), 1);
    assert_string_equal(last, "b@example.com");

    /* lifted rows only with include_lifted */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_remove(f->store, "b@example.com", "test", 0), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    memset(&flt, 0, sizeof(flt));
    assert_int_equal(export_n(f->store, &flt, NULL), 2);
    flt.include_lifted = 1;
    assert_int_equal(export_n(f->store, &flt, NULL), 3);
}

struct stats_seen {
    long long bounce, suppress_action, example_org, active_bounce;
};

static int stats_cb(void *user, bp_stats_dim dim, const char *key, long long n)
{
    struct stats_seen *s = user;
    if (dim == BP_STATS_TYPE && strcmp(key, "bounce") == 0)
        s->bounce = n;
    if (dim == BP_STATS_ACTION && strcmp(key, "suppress") == 0)
        s->suppress_action = n;
    if (dim == BP_STATS_DOMAIN && strcmp(key, "example.org") == 0)
        s->example_org = n;
    if (dim == BP_STATS_SUPPRESSED && strcmp(key, "bounce") == 0)
        s->active_bounce = n;
    return 0;
}

static void test_stats(void **state)
{
    struct fixture *f = *state;
    bp_event ev[3] = {bounce("s1@example.org", "bad-mailbox", BP_ACT_SUPPRESS),
                      bounce("s2@Example.ORG", "bad-mailbox", BP_ACT_SUPPRESS),
                      bounce("s3@example.com", "quota-issues", BP_ACT_SOFT)};
    record(f->store, "st-1", 1700000000, ev, 3);
    struct stats_seen s = {0, 0, 0, 0};
    assert_int_equal(bp_store_stats(f->store, NULL, stats_cb, &s), BP_OK);
    assert_int_equal(s.bounce, 3);
    assert_int_equal(s.suppress_action, 2);
    assert_int_equal(s.example_org, 2); /* domains are lower-cased */
    assert_int_equal(s.active_bounce, 2);
    bp_store_filter flt;
    memset(&flt, 0, sizeof(flt));
    flt.since = 1800000000;
    memset(&s, 0, sizeof(s));
    assert_int_equal(bp_store_stats(f->store, &flt, stats_cb, &s), BP_OK);
    assert_int_equal(s.bounce, 0);
}

static int first_event_id(void *user, const bp_ledger_row *r)
{
    *(long long *)user = r->id;
    return 1;
}

static void test_reclassify(void **state)
{
    struct fixture *f = *state;
    bp_event e = bounce("rc@example.org", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "rc-1", 1700000000, &e, 1);
    assert_true(suppressed(f->store, "rc@example.org"));
    long long id = 0;
    assert_int_equal(bp_store_ledger_events(f->store, first_event_id, &id), BP_OK);
    assert_true(id > 0);
    assert_int_equal(bp_store_reclassify(f->store, id, "rc@example.org", "spam-related", "r1", BP_ACT_IGNORE, NULL),
                     BP_ERR_USAGE); /* outside a transaction */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(
        bp_store_reclassify(f->store, id, "rc@example.org", "spam-related", "r1", BP_ACT_IGNORE, "zen.example"), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_false(lookup(f->store, "rc@example.org").found); /* it was never really suppressed */
}

static void test_busy_timeout(void **state)
{
    struct fixture *f = *state;
    bp_store *other = open_store(f->path, 300);
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(bp_store_begin(other), BP_ERR_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 250 && ms < 3000);
    assert_true(bp_status_is_transient(BP_ERR_BUSY));
    bp_store_rollback(f->store);
    assert_int_equal(bp_store_begin(other), BP_OK); /* free again */
    bp_store_rollback(other);
    bp_store_close(other);
}

static void test_foreign_databases(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/other.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE contacts (email TEXT)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    bp_store *s = NULL;
    char *err = NULL;
    assert_int_equal(bp_store_open(path, NULL, &s, &err), BP_ERR_STORE);
    assert_non_null(err);
    free(err);
    err = NULL;
    /* a schema newer than ours */
    bp_store_close(f->store);
    f->store = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(bp_store_open(f->path, NULL, &s, &err), BP_ERR_STORE);
    free(err);
    err = NULL;
#ifdef BP_HAVE_POSTGRES
    /* built with libpq: a server that is not there is a transient failure (pipe mode: 75) */
    bp_status pg = bp_store_open("postgresql://127.0.0.1:1/bounces?connect_timeout=2", NULL, &s, &err);
    if (!bp_status_is_transient(pg))
        fail_msg("unreachable PostgreSQL: got %s, want a transient failure", bp_status_to_string(pg));
#else
    assert_int_equal(bp_store_open("postgresql://localhost/bounces", NULL, &s, &err), BP_ERR_UNSUPPORTED);
#endif
    free(err);
    err = NULL;
    bp_store_options o;
    bp_store_options_default(&o);
    o.read_only = 1;
    assert_int_equal(bp_store_open("/nonexistent/dir/x.db", &o, &s, &err), BP_ERR_NOT_FOUND);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_schema_and_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suppress_and_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soft_escalation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_needs_new_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unrecognised_then_upgraded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_export_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclassify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_databases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
