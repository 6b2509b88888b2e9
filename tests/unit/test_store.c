/*
 * test_store.c - the store's semantics on a temporary SQLite file: schema and file mode,
 * idempotent units, suppression derivation, soft-bounce escalation and its reset, removals
 * that old evidence cannot undo, quarantined units upgraded later, imports, export filters,
 * stats, rescore's reclassification, lock timeouts, and databases that are not ours; the
 * fold state (derive_state) against folding every row, on random histories; a version 1
 * database upgraded in place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "bouncepipe/store.h"
#include "test_support.h"

#define DAY 86400LL

/* the schema version this program creates (docs/store.md, change history) */
#define STORE_SCHEMA_VERSION BP_STORE_SCHEMA_VERSION

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
    return bp_test_open_store(path, &o);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (bp_test_tmpdir(f->dir, sizeof(f->dir), "store", f->path, sizeof(f->path), "t.db") != 0)
        return -1;
    f->store = open_store(f->path, 0);
    *state = f;
    return f->store == NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    bp_store_close(f->store);
    int failed = bp_test_rmtree(f->dir); /* the store, other.db, their -wal and -shm files */
    free(f);
    return failed;
}

static bp_event bounce(const char *rcpt, const char *category, bp_action action)
{
    bp_event e = bp_test_event(BP_EVENT_BOUNCE, rcpt, category, action);
    e.status = action == BP_ACT_SUPPRESS ? "5.1.1" : "4.2.2";
    e.smtp_code = action == BP_ACT_SUPPRESS ? "550" : "452";
    e.diagnostic = "test diagnostic";
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

/* Record one unit in its own transaction from a writer process, again while the store is busy
 * (at most @p attempts times, pausing a few milliseconds that vary with @p id); @return the
 * last status, and the error on standard error when it is not BP_OK. */
static bp_status record_retrying(bp_store *s, const bp_store_unit *u, const bp_event *ev, size_t n, int id,
                                 int attempts)
{
    bp_status st = BP_OK;
    for (int attempt = 0; attempt < attempts; attempt++) {
        bp_record_result r;
        st = bp_store_record_once(s, u, ev, n, &r);
        if (st != BP_ERR_BUSY)
            break;
        usleep((useconds_t)(1000 * (1 + (id + attempt) % 7)));
    }
    if (st != BP_OK)
        fprintf(stderr, "writer %d unit %s: %s: %s\n", id, u->fingerprint, bp_status_to_string(st),
                bp_store_last_error(s));
    return st;
}

/* One round of a lockstep writer: writer @p id records what round @p k asks of it in @p s;
 * @return BP_OK, or the status that ends the writer. */
typedef bp_status (*lockstep_round)(bp_store *s, int id, int k);

/* Writer @p id of run_lockstep(), in its own process: its own store (busy timeout @p busy_ms),
 * each round when the parent says go, a byte on @p done after it; @return its exit status. */
static int lockstep_writer(const char *location, unsigned busy_ms, int id, int rounds, lockstep_round round, int go,
                           int done)
{
    bp_store *s = open_store(location, busy_ms);
    char token = 0;
    int failed = 0;
    for (int k = 0; k < rounds && !failed; k++)
        failed = read(go, &token, 1) != 1 || round(s, id, k) != BP_OK || write(done, &token, 1) != 1;
    bp_store_close(s);
    return failed;
}

/* Run @p n writer processes in lockstep on the store at @p location: for each of @p rounds the
 * parent lets all of them go at once (a byte on each one's go pipe) and waits until each has
 * written a byte on the done pipe; every writer must exit 0. */
static void run_lockstep(const char *location, unsigned busy_ms, int n, int rounds, lockstep_round round)
{
    pid_t pids[8];
    int go[8][2], done[2];
    assert_true(n > 0 && n <= 8);
    assert_int_equal(pipe(done), 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(pipe(go[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(lockstep_writer(location, busy_ms, i, rounds, round, go[i][0], done[1]));
        close(go[i][0]);
    }
    close(done[1]);
    char token = 'g';
    for (int k = 0; k < rounds; k++) {
        for (int i = 0; i < n; i++)
            assert_int_equal(write(go[i][1], &token, 1), 1);
        for (int i = 0; i < n; i++)
            if (read(done[0], &token, 1) != 1)
                fail_msg("a writer died in round %d", k);
    }
    for (int i = 0; i < n; i++) {
        close(go[i][1]);
        int ws = 0;
        assert_int_equal(waitpid(pids[i], &ws, 0), pids[i]);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    close(done[0]);
}

struct seen_row {
    int found;
    int lifted;
    long long count, first, last, lifted_at;
    char reason[64], kind[32], lift_reason[64], address[64];
};

static int copy_row(void *user, const bp_suppression *r)
{
    struct seen_row *s = user;
    s->found = 1;
    s->lifted = r->lifted;
    s->count = r->count;
    s->first = r->first_seen;
    s->last = r->last_seen;
    s->lifted_at = r->lifted_at;
    snprintf(s->reason, sizeof(s->reason), "%s", r->reason ? r->reason : "");
    snprintf(s->kind, sizeof(s->kind), "%s", r->source_kind ? r->source_kind : "");
    snprintf(s->lift_reason, sizeof(s->lift_reason), "%s", r->lift_reason ? r->lift_reason : "");
    snprintf(s->address, sizeof(s->address), "%s", r->address);
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
    assert_int_equal(bp_store_schema_version(f->store), STORE_SCHEMA_VERSION);
    assert_int_equal(stat(f->path, &sb), 0);
    mode_t umask_now = umask(022);
    umask(umask_now);
    assert_int_equal(sb.st_mode & 0777, 0640 & ~umask_now);
    /* a second connection sees the same schema and does not migrate again */
    bp_store *again = open_store(f->path, 0);
    assert_non_null(again);
    assert_int_equal(bp_store_schema_version(again), STORE_SCHEMA_VERSION);
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

/* ---- identity: an address in any case is one address (docs/store.md "Identity") -------- */

static void test_identity_any_case(void **state)
{
    struct fixture *f = *state;
    long long base = 1700000000;
    /* the accounting record's spelling first, PowerMTA's lowercased $to a day later */
    bp_event e = bounce("Jane.Roe@outlook.example", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "id-1", base, &e, 1);
    e = bounce("jane.roe@outlook.example", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "id-2", base + DAY, &e, 1);
    static const char *const spellings[] = {"jane.roe@outlook.example", "JANE.ROE@OUTLOOK.EXAMPLE",
                                            "Jane.Roe@outlook.example", "jane.ROE@Outlook.Example"};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        struct seen_row row = lookup(f->store, spellings[i]);
        if (!row.found || row.count != 2 || strcmp(row.address, "Jane.Roe@outlook.example") != 0)
            fail_msg("lookup %s: found %d, count %lld, shown as %s; want one row, count 2, shown as first recorded",
                     spellings[i], row.found, row.count, row.address);
        assert_int_equal(ledger_rows(f->store, spellings[i]), 2);
    }
    char last[64];
    bp_store_filter flt;
    memset(&flt, 0, sizeof(flt));
    assert_int_equal(export_n(f->store, &flt, last), 1);
    assert_string_equal(last, "Jane.Roe@outlook.example");
    flt.domain = "outlook.example";
    assert_int_equal(export_n(f->store, &flt, NULL), 1);

    /* removed in a third spelling: lifted; an unforced import in a fourth leaves it lifted */
    int changed = -1;
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_remove(f->store, "JANE.ROE@outlook.example", "asked", base + 2 * DAY), BP_OK);
    assert_int_equal(bp_store_add(f->store, "jane.roe@OUTLOOK.example", "old list", BP_KIND_IMPORT, base, 0, &changed),
                     BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(changed, 0);
    struct seen_row row = lookup(f->store, "jane.roe@outlook.example");
    assert_true(row.found && row.lifted);
    assert_string_equal(row.lift_reason, "asked");
    memset(&flt, 0, sizeof(flt));
    assert_int_equal(export_n(f->store, &flt, NULL), 0);
    flt.include_lifted = 1;
    assert_int_equal(export_n(f->store, &flt, NULL), 1);
    assert_int_equal(ledger_rows(f->store, "Jane.Roe@Outlook.Example"), 3); /* two bounces, the removal */

    /* imported in one spelling, suppressed in any: adding another spelling adds nothing */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_add(f->store, "JDoe@example.net", "list", BP_KIND_IMPORT, base, 0, &changed), BP_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(bp_store_add(f->store, "jdoe@example.net", "list", BP_KIND_IMPORT, base, 0, &changed), BP_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_true(suppressed(f->store, "JDOE@EXAMPLE.NET"));
    assert_string_equal(lookup(f->store, "jdoe@example.net").address, "JDoe@example.net");

    /* UTF-8 local parts: Unicode case folding, whatever the normalisation (NFC, NFD) */
    static const char *const joerg[] = {"J\xc3\xb6rg@example.de", "J\xc3\x96RG@example.de", "jo\xcc\x88rg@example.de"};
    for (int i = 0; i < 3; i++) {
        char fp[32];
        snprintf(fp, sizeof(fp), "joerg-%d", i);
        e = bounce(joerg[i], "bad-mailbox", BP_ACT_SUPPRESS);
        record(f->store, fp, base + i * DAY, &e, 1);
    }
    row = lookup(f->store, "JO\xcc\x88RG@EXAMPLE.DE");
    assert_true(row.found);
    assert_int_equal(row.count, 3);
    assert_string_equal(row.address, "J\xc3\xb6rg@example.de");
    /* ... and different addresses stay different */
    assert_false(lookup(f->store, "jorg@example.de").found);
    assert_false(lookup(f->store, "jane.roe2@outlook.example").found);
}

/* ---- two channels, one failure (docs/store.md "Two channels") ---------------------------- */

/* One report of a failure: through the accounting channel or as a DSN. */
typedef struct report {
    int acct;
    long long dt; /* evidence time from the test's base */
    const char *status, *smtp_code;
    bp_action action;
    const char *envid, *job_id;
} report;

static void record_report(bp_store *s, const char *rcpt, const char *name, long long base, const report *r)
{
    char fp[96];
    snprintf(fp, sizeof(fp), "%s%s", r->acct ? BP_UNIT_ACCT_PREFIX : "dsn-", name);
    bp_event e = bounce(rcpt,
                        r->action == BP_ACT_SUPPRESS ? "bad-mailbox"
                        : r->action == BP_ACT_SOFT   ? "quota-issues"
                                                     : "policy-related",
                        r->action);
    e.status = r->status;
    e.smtp_code = r->smtp_code;
    e.final = r->status != NULL ? r->status[0] == '5' : r->smtp_code != NULL && r->smtp_code[0] == '5';
    e.envid = r->envid;
    e.job_id = r->job_id;
    record(s, fp, base + r->dt, &e, 1);
}

/* The failures most tests report: a soft 4.2.2 (452), a hard 5.1.1 (550). */
static report soft(int acct, long long dt, const char *envid, const char *job_id)
{
    report r = {acct, dt, "4.2.2", "452", BP_ACT_SOFT, envid, job_id};
    return r;
}

static report hard(int acct, long long dt)
{
    report r = {acct, dt, "5.1.1", "550", BP_ACT_SUPPRESS, NULL, NULL};
    return r;
}

/* One failure reported through both channels, the accounting record first unless @p dsn_first:
 * the first report recorded for @p first_rcpt, the second for @p second_rcpt, as the units
 * NAME-a (the record) and NAME-d (the DSN). */
static void record_both(bp_store *s, const char *first_rcpt, const char *second_rcpt, const char *name, long long base,
                        report acct, report dsn, int dsn_first)
{
    char na[64], nd[64];
    snprintf(na, sizeof(na), "%s-a", name);
    snprintf(nd, sizeof(nd), "%s-d", name);
    record_report(s, first_rcpt, dsn_first ? nd : na, base, dsn_first ? &dsn : &acct);
    record_report(s, second_rcpt, dsn_first ? na : nd, base, dsn_first ? &acct : &dsn);
}

struct marks {
    int events, marked;
    long long marked_time; /* evidence time of the marked row */
    char marked_fp[96];
};

static int note_marks(void *user, const bp_ledger_row *r)
{
    struct marks *m = user;
    if (strcmp(r->kind, BP_LEDGER_EVENT) != 0)
        return 0;
    m->events++;
    if (r->paired_with != 0) {
        m->marked++;
        m->marked_time = r->evidence_time;
        snprintf(m->marked_fp, sizeof(m->marked_fp), "%s", r->event.fingerprint ? r->event.fingerprint : "");
    }
    return 0;
}

static struct marks marks_of(bp_store *s, const char *address)
{
    struct marks m;
    memset(&m, 0, sizeof(m));
    assert_int_equal(bp_store_ledger_for(s, address, note_marks, &m), BP_OK);
    return m;
}

/* The matrix: which pairs of reports are one failure, and which of the two counts. */
static void test_two_channels_matrix(void **state)
{
    struct fixture *f = *state;
    enum { ACCT = 1, MAIL = 0 };
    const struct {
        const char *label;
        report first, second; /* in the order recorded */
        int want_marked;      /* the one marked: 1 the first recorded, 2 the second, 0 none (two failures) */
    } rows[] = {
        {"accounting record, then its DSN seconds later", soft(ACCT, 0, "env-1", "job-1"), soft(MAIL, 4, "env-1", NULL),
         2},
        {"DSN first, then the accounting record logged before it: the record counts", soft(MAIL, 4, "env-1", NULL),
         soft(ACCT, 0, "env-1", "job-1"), 1},
        {"DSN first, the accounting record logged after it", hard(MAIL, 0), hard(ACCT, 60), 2},
        {"the same second: the one recorded second", hard(ACCT, 0), hard(MAIL, 0), 2},
        {"different statuses: two failures",
         soft(ACCT, 0, NULL, NULL),
         {MAIL, 4, "4.2.1", "450", BP_ACT_SOFT, NULL, NULL},
         0},
        {"a status without detail (4.0.0) agrees with its class",
         soft(ACCT, 0, NULL, NULL),
         {MAIL, 4, "4.0.0", "452", BP_ACT_SOFT, NULL, NULL},
         2},
        {"no status: the SMTP code's class agrees",
         {ACCT, 0, NULL, "452", BP_ACT_SOFT, NULL, NULL},
         soft(MAIL, 4, NULL, NULL),
         2},
        {"no status: the SMTP code's class differs",
         {ACCT, 0, NULL, "552", BP_ACT_SOFT, NULL, NULL},
         soft(MAIL, 4, NULL, NULL),
         0},
        {"different days: two failures", soft(ACCT, 0, "env-1", NULL), soft(MAIL, DAY, "env-1", NULL), 0},
        {"30 minutes apart: one failure", soft(ACCT, 0, NULL, NULL), soft(MAIL, 1800, NULL, NULL), 2},
        {"31 minutes apart: two", soft(ACCT, 0, NULL, NULL), soft(MAIL, 1860, NULL, NULL), 0},
        {"envelope ids differ: two messages", soft(ACCT, 0, "env-1", NULL), soft(MAIL, 4, "env-2", NULL), 0},
        {"job ids differ: two messages", soft(ACCT, 0, NULL, "job-1"), soft(MAIL, 4, NULL, "job-2"), 0},
        {"only one side has an envelope id", soft(ACCT, 0, "env-1", "job-1"), soft(MAIL, 4, NULL, NULL), 2},
        {"two DSNs: one channel, two reports", hard(MAIL, 0), hard(MAIL, 4), 0},
        {"two accounting records: two failures", hard(ACCT, 0), hard(ACCT, 4), 0},
        {"read differently (suppress / ignore): both stay evidence",
         hard(ACCT, 0),
         {MAIL, 4, "5.1.1", "550", BP_ACT_IGNORE, NULL, NULL},
         0},
    };
    long long base = 1700000000;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char rcpt[64], name[32];
        snprintf(rcpt, sizeof(rcpt), "m%zu@example.com", i);
        snprintf(name, sizeof(name), "m%zu-1", i);
        record_report(f->store, rcpt, name, base, &rows[i].first);
        snprintf(name, sizeof(name), "m%zu-2", i);
        record_report(f->store, rcpt, name, base, &rows[i].second);
        struct marks m = marks_of(f->store, rcpt);
        int want_paired = rows[i].want_marked != 0;
        if (m.events != 2 || m.marked != want_paired)
            fail_msg("%s: %d events, %d marked; want 2 events (both kept), %d marked", rows[i].label, m.events,
                     m.marked, want_paired);
        if (want_paired) {
            const report *want = rows[i].want_marked == 1 ? &rows[i].first : &rows[i].second;
            if (m.marked_time != base + want->dt || (want->acct != 0) != (strncmp(m.marked_fp, "acct:", 5) == 0))
                fail_msg("%s: marked %s at %lld; want the %s report", rows[i].label, m.marked_fp, m.marked_time,
                         rows[i].want_marked == 1 ? "first" : "second");
        }
        /* a suppressing failure counts once when paired, twice when not */
        if (rows[i].first.action == BP_ACT_SUPPRESS && rows[i].second.action == BP_ACT_SUPPRESS)
            assert_int_equal(lookup(f->store, rcpt).count, want_paired ? 1 : 2);
    }
}

/* The defect of issue 14: every failure reported by both channels; the counts are the
 * failures', whatever order the reports arrive in. */
static void test_two_channels_count_once(void **state)
{
    struct fixture *f = *state;
    long long base = 1700000000;
    const char *a = "soft@example.com";
    /* three soft bounces on three days, each reported twice (DSN first on the second day) */
    char name[32];
    for (int d = 0; d < 3; d++) {
        snprintf(name, sizeof(name), "soft-%d", d);
        record_both(f->store, "Soft@example.com", a, name, base, soft(1, d * DAY + 3600, "env-s", "job-s"),
                    soft(0, d * DAY + 3600 + 5, "env-s", NULL), d == 1);
    }
    struct marks m = marks_of(f->store, a);
    assert_int_equal(m.events, 6);
    assert_int_equal(m.marked, 3);
    if (suppressed(f->store, a))
        fail_msg("three soft bounces reported twice each were counted as six: suppressed");
    struct stats_seen st = {0, 0, 0, 0};
    assert_int_equal(bp_store_stats(f->store, NULL, stats_cb, &st), BP_OK);
    assert_int_equal(st.bounce, 3); /* stats count failures, not reports */
    /* two more failures (days 4, 5), reported twice: five on five days suppress, counted once */
    for (int d = 3; d < 5; d++) {
        snprintf(name, sizeof(name), "soft-%d", d);
        record_both(f->store, a, a, name, base, soft(1, d * DAY + 3600, NULL, NULL),
                    soft(0, d * DAY + 3590, NULL, NULL), 0);
    }
    struct seen_row row = lookup(f->store, a);
    assert_true(row.found && !row.lifted);
    assert_string_equal(row.kind, BP_KIND_SOFT_THRESHOLD);
    assert_int_equal(row.count, 1);
    assert_string_equal(row.address, "Soft@example.com");

    /* two failures minutes apart (two messages), each reported by both channels: two, one to one */
    const char *b = "two@example.com";
    report r[4] = {hard(1, 0), hard(1, 300), hard(0, 2), hard(0, 302)};
    for (int i = 0; i < 4; i++) {
        char n[32];
        snprintf(n, sizeof(n), "two-%d", i);
        record_report(f->store, b, n, base + 10 * DAY, &r[i]);
    }
    m = marks_of(f->store, b);
    assert_int_equal(m.events, 4);
    assert_int_equal(m.marked, 2);
    assert_int_equal(lookup(f->store, b).count, 2);

    /* rescore reads one report differently: the pair is two pieces of evidence again */
    const char *c = "rescored@example.com";
    record_both(f->store, c, c, "rescored", base + 20 * DAY, hard(1, 0), hard(0, 3), 0);
    assert_int_equal(marks_of(f->store, c).marked, 1);
    long long first = 0;
    assert_int_equal(bp_store_ledger_for(f->store, c, first_event_id, &first), BP_OK);
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_reclassify(f->store, first, c, "spam-related", "r1", BP_ACT_IGNORE, NULL), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(marks_of(f->store, c).marked, 0);
    row = lookup(f->store, c);
    assert_true(row.found && !row.lifted); /* the DSN's reading suppresses on its own now */
    assert_int_equal(row.count, 1);
}

/* Two channels racing: for each address an accounting writer and a DSN writer record the same
 * failure at the same moment (half of the DSNs dated before the record), in two processes.
 * Exactly one report of each pair counts. */
enum { RACE_ADDRESSES = 24 };

/* Round @p k of writer @p acct (1: the accounting channel, 0: the DSN's). */
static bp_status race_round(bp_store *s, int acct, int k)
{
    char rcpt[64], fp[64];
    snprintf(rcpt, sizeof(rcpt), acct ? "Race%d@Example.com" : "race%d@example.com", k);
    snprintf(fp, sizeof(fp), "%srace-%d", acct ? BP_UNIT_ACCT_PREFIX : "dsn-", k);
    bp_event e = bounce(rcpt, "bad-mailbox", BP_ACT_SUPPRESS);
    long long t = 1700000000LL + k * DAY + (acct ? 0 : (k % 2 ? -5 : 5));
    bp_store_unit u = {fp, NULL, "race", t, NULL};
    return record_retrying(s, &u, &e, 1, acct, 100);
}

static void test_two_channels_race(void **state)
{
    struct fixture *f = *state;
    run_lockstep(f->path, 0, 2, RACE_ADDRESSES, race_round);
    for (int k = 0; k < RACE_ADDRESSES; k++) {
        char a[64];
        snprintf(a, sizeof(a), "race%d@example.com", k);
        struct marks m = marks_of(f->store, a);
        struct seen_row row = lookup(f->store, a);
        if (m.events != 2 || m.marked != 1 || row.count != 1)
            fail_msg("%s: %d reports, %d marked, counted %lld times; want 2, 1, 1", a, m.events, m.marked, row.count);
        /* the report dated first counts, whichever was recorded first */
        long long acct_t = 1700000000LL + k * DAY, dsn_t = acct_t + (k % 2 ? -5 : 5);
        assert_int_equal(m.marked_time, dsn_t > acct_t ? dsn_t : acct_t);
    }
}

/* ---- the fold state against the full fold ---------------------------------------------
 *
 * Random histories (fixed seeds) of a few addresses: reports of every kind, deliveries,
 * removals, imports and manual additions, re-classified rows, quarantined units recognised
 * later; evidence times mostly rising, often late (out of order), sometimes equal.  Store A
 * derives as always (from its fold state); reference store B loses its fold states before
 * every operation, so it derives every address from its first row.  After every operation
 * the two suppression lists (lifted rows too) and the ledgers must be the same. */

typedef struct prop_rng {
    unsigned long long s;
    /* the last bounce reported (kind 0), which kind 6 reports again through the other channel */
    int last_valid, last_addr, last_acct;
    bp_action last_action;
    const char *last_category;
    long long last_t;
} prop_rng;

static unsigned prop_next(prop_rng *r, unsigned n)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((r->s >> 33) % n);
}

struct dump {
    char *buf;
    size_t len, cap;
};

static void dump_add(struct dump *d, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(line));
    if (d->len + (size_t)n + 1 > d->cap) {
        d->cap = (d->len + (size_t)n + 1) * 2;
        d->buf = realloc(d->buf, d->cap);
        assert_non_null(d->buf);
    }
    memcpy(d->buf + d->len, line, (size_t)n + 1);
    d->len += (size_t)n;
}

static int dump_suppression(void *user, const bp_suppression *r)
{
    dump_add(user, "%s|%s|%s|%s|%lld|%lld|%lld|%d|%s|%lld\n", r->address, r->domain, r->reason ? r->reason : "-",
             r->source_kind, r->first_seen, r->last_seen, r->count, r->lifted, r->lift_reason ? r->lift_reason : "-",
             r->lifted_at);
    return 0;
}

static int dump_ledger_row(void *user, const bp_ledger_row *r)
{
    dump_add(user, "  %s|%lld|%s|%s|%s|%s|%s\n", r->kind, r->evidence_time, bp_event_type_name(r->event.type),
             bp_action_name(r->event.action), r->event.category ? r->event.category : "-",
             r->event.recipient ? r->event.recipient : "-",
             r->paired_with != 0      ? "second report"
             : r->reported_again != 0 ? "reported again"
                                      : "");
    return 0;
}

#define PROP_ADDRESSES 4
static const char *const prop_address[PROP_ADDRESSES] = {"p0@example.org", "p1@example.org", "P2@Example.NET",
                                                         "p3@example.com"};
/* the same addresses in other spellings: one address each (docs/store.md "Identity") */
static const char *const prop_spelling[PROP_ADDRESSES] = {"P0@Example.Org", "p1@EXAMPLE.ORG", "p2@example.net",
                                                          "P3@example.com"};

/* Suppression list and ledgers of @p s as text (the caller frees it). */
static char *prop_dump(bp_store *s)
{
    struct dump d = {NULL, 0, 0};
    bp_store_filter all;
    memset(&all, 0, sizeof(all));
    all.include_lifted = 1;
    dump_add(&d, "suppressions:\n");
    assert_int_equal(bp_store_export(s, &all, dump_suppression, &d), BP_OK);
    for (int i = 0; i < PROP_ADDRESSES; i++) {
        dump_add(&d, "ledger %s:\n", prop_address[i]);
        assert_int_equal(bp_store_ledger_for(s, prop_address[i], dump_ledger_row, &d), BP_OK);
    }
    return d.buf;
}

struct nth_event {
    long long want, seen, id;
    char recipient[64];
};

static int find_nth_event(void *user, const bp_ledger_row *r)
{
    struct nth_event *n = user;
    if (r->event.recipient == NULL || r->event.type == BP_EVENT_UNRECOGNIZED)
        return 0;
    if (n->seen++ < n->want)
        return 0;
    n->id = r->id;
    snprintf(n->recipient, sizeof(n->recipient), "%s", r->event.recipient);
    return 1;
}

/* One random operation, applied the same way to both stores. */
typedef struct prop_op {
    int kind; /* 0 report, 1 delivery, 2 removal, 3 import/manual, 4 re-classify, 5 quarantined unit,
               * 6 a bounce of kind 0 reported again through the other channel */
    int addr, addr2, n_events;
    int spelled; /* the address in its other spelling */
    bp_event_type type[2];
    bp_action action[2];
    const char *category[2];
    long long t;
    int manual, force, nth;
    char fp[32];
} prop_op;

static bp_status prop_apply(bp_store *s, const prop_op *op)
{
    bp_status st = bp_store_begin(s);
    if (st != BP_OK)
        return st;
    const char *a = (op->spelled ? prop_spelling : prop_address)[op->addr];
    switch (op->kind) {
    case 0:
    case 5:
    case 6: {
        bp_event ev[2];
        bp_record_result rr;
        for (int i = 0; i < op->n_events; i++) {
            memset(&ev[i], 0, sizeof(ev[i]));
            ev[i].type = op->type[i];
            ev[i].action = op->action[i];
            ev[i].recipient = i == 0 ? a : prop_address[op->addr2];
            ev[i].category = op->category[i];
            if (op->type[i] == BP_EVENT_COMPLAINT) {
                ev[i].feedback_type = op->action[i] == BP_ACT_SUPPRESS ? "abuse" : "not-spam";
                ev[i].category = NULL;
            }
        }
        bp_store_unit u = {op->fp, "<p@example.org>", "prop", op->t, NULL};
        st = bp_store_record(s, &u, ev, (size_t)op->n_events, &rr);
        break;
    }
    case 1: st = bp_store_record_delivery(s, a, op->t); break;
    case 2:
        st = bp_store_remove(s, a, op->t % 2 ? "asked" : "checked", op->t);
        if (st == BP_ERR_NOT_FOUND)
            st = BP_OK;
        break;
    case 3: {
        int changed = 0;
        st = bp_store_add(s, a, op->manual ? "by phone" : NULL, op->manual ? BP_KIND_MANUAL : BP_KIND_IMPORT, op->t,
                          op->force, &changed);
        break;
    }
    case 4: {
        struct nth_event n = {op->nth, 0, 0, ""};
        st = bp_store_ledger_events(s, find_nth_event, &n);
        if (st == BP_OK && n.id > 0)
            st = bp_store_reclassify(s, n.id, n.recipient, op->category[0], "prop", op->action[0], NULL);
        break;
    }
    default: break;
    }
    if (st != BP_OK) {
        bp_store_rollback(s);
        return st;
    }
    return bp_store_commit(s);
}

/* A random operation.  Times: a rising clock, often read late (up to ~40 days back), sometimes
 * the same second again. */
static void prop_random_op(prop_rng *r, long long *clock, long long step_max, int step, bp_store *a, prop_op *op)
{
    static const struct {
        bp_event_type type;
        bp_action action;
        const char *category;
    } events[] = {
        {BP_EVENT_BOUNCE, BP_ACT_SUPPRESS, "bad-mailbox"},  {BP_EVENT_BOUNCE, BP_ACT_SUPPRESS, "inactive-mailbox"},
        {BP_EVENT_BOUNCE, BP_ACT_SOFT, "quota-issues"},     {BP_EVENT_BOUNCE, BP_ACT_SOFT, "message-expired"},
        {BP_EVENT_BOUNCE, BP_ACT_SOFT, "quota-issues"},     {BP_EVENT_BOUNCE, BP_ACT_SOFT, "bad-connection"},
        {BP_EVENT_BOUNCE, BP_ACT_IGNORE, "policy-related"}, {BP_EVENT_COMPLAINT, BP_ACT_SUPPRESS, NULL},
        {BP_EVENT_COMPLAINT, BP_ACT_IGNORE, NULL},          {BP_EVENT_DELIVERED, BP_ACT_IGNORE, NULL},
        {BP_EVENT_DELAY, BP_ACT_IGNORE, "quota-issues"},    {BP_EVENT_AUTOREPLY, BP_ACT_IGNORE, NULL},
    };
    size_t n_events = sizeof(events) / sizeof(events[0]);
    memset(op, 0, sizeof(*op));
    unsigned when = prop_next(r, 10);
    *clock += (long long)prop_next(r, 3) * (long long)prop_next(r, (unsigned)step_max); /* 0 .. 2 steps on */
    op->t = when < 6   ? *clock
            : when < 9 ? *clock - (long long)prop_next(r, 40 * (unsigned)DAY)
                       : *clock - prop_next(r, 3);
    op->addr = (int)prop_next(r, PROP_ADDRESSES);
    op->spelled = prop_next(r, 4) == 0;
    int acct = prop_next(r, 3) == 0; /* an accounting record: one event, the other channel */
    snprintf(op->fp, sizeof(op->fp), "%sprop-%d", acct ? BP_UNIT_ACCT_PREFIX : "", step);
    unsigned k = prop_next(r, 100);
    if (k < 10 && r->last_valid) { /* the last bounce again, through the other channel, minutes away */
        op->kind = 6;
        op->n_events = 1;
        op->addr = r->last_addr;
        op->type[0] = BP_EVENT_BOUNCE;
        op->action[0] = r->last_action;
        op->category[0] = r->last_category;
        op->t = r->last_t - 600 + (long long)prop_next(r, 2700); /* at most 35 minutes later */
        snprintf(op->fp, sizeof(op->fp), "%sprop-%d", r->last_acct ? "" : BP_UNIT_ACCT_PREFIX, step);
        r->last_valid = 0;
    } else if (k < 70) {
        op->kind = 0;
        op->n_events = 1 + (prop_next(r, 5) == 0);
        op->addr2 = (int)prop_next(r, PROP_ADDRESSES);
        for (int i = 0; i < op->n_events; i++) {
            size_t e = prop_next(r, (unsigned)n_events);
            op->type[i] = events[e].type;
            op->action[i] = events[e].action;
            op->category[i] = events[e].category;
        }
        if (prop_next(r, 3) == 0) { /* more soft bounces, so that thresholds are reached */
            op->type[0] = BP_EVENT_BOUNCE;
            op->action[0] = BP_ACT_SOFT;
            op->category[0] = "quota-issues";
        }
        if (acct)
            op->n_events = 1;
        if (op->type[0] == BP_EVENT_BOUNCE) {
            r->last_valid = 1;
            r->last_addr = op->addr;
            r->last_acct = acct;
            r->last_action = op->action[0];
            r->last_category = op->category[0];
            r->last_t = op->t;
        }
    } else if (k < 80) {
        op->kind = 1;
    } else if (k < 86) {
        op->kind = 2;
    } else if (k < 92) {
        op->kind = 3;
        op->manual = (int)prop_next(r, 2);
        /* forcing an address removed at or after op->t re-dates the evidence to the
         * current second, which A and B may see differ: force only newer evidence */
        struct seen_row row = lookup(a, prop_address[op->addr]);
        op->force = prop_next(r, 2) && !(row.found && row.lifted && op->t <= row.lifted_at);
    } else if (k < 96) {
        op->kind = 4;
        op->nth = (int)prop_next(r, (unsigned)step + 1);
        size_t e = prop_next(r, (unsigned)n_events);
        op->action[0] = events[e].action;
        op->category[0] = events[e].category;
    } else {
        op->kind = 5; /* quarantined now; the same unit recognised a few steps later */
        op->n_events = 1;
        op->type[0] = BP_EVENT_UNRECOGNIZED;
        op->action[0] = BP_ACT_NONE;
        snprintf(op->fp, sizeof(op->fp), "prop-q-%d", step / 8);
        if (prop_next(r, 2)) {
            op->type[0] = BP_EVENT_BOUNCE;
            op->action[0] = prop_next(r, 2) ? BP_ACT_SUPPRESS : BP_ACT_SOFT;
            op->category[0] = op->action[0] == BP_ACT_SUPPRESS ? "bad-domain" : "quota-issues";
        }
    }
}

/* Run @p steps random operations of @p seed on @p a and reference @p b; forget(ctx) makes
 * b lose its fold states. */
static void run_fold_property(bp_store *a, bp_store *b, void (*forget)(void *ctx), void *ctx, unsigned seed, int steps)
{
    prop_rng r = {seed * 2654435761ULL + 1, 0, 0, 0, BP_ACT_NONE, NULL, 0};
    long long clock = (long long)time(NULL) - 400 * DAY;
    long long step_max = seed % 2 ? DAY : DAY / 4; /* histories over months, or weeks */
    for (int step = 0; step < steps; step++) {
        prop_op op;
        prop_random_op(&r, &clock, step_max, step, a, &op);
        bp_status sa = prop_apply(a, &op);
        forget(ctx);
        bp_status sb = prop_apply(b, &op);
        if (sa != BP_OK || sb != BP_OK)
            fail_msg("seed %u step %d (op %d): %s / %s: %s", seed, step, op.kind, bp_status_to_string(sa),
                     bp_status_to_string(sb), bp_store_last_error(sa != BP_OK ? a : b));
        char *got = prop_dump(a), *want = prop_dump(b);
        if (strcmp(got, want) != 0)
            fail_msg("seed %u step %d (op %d, t %lld, %s): fold state and full fold differ\ngot:\n%swant:\n%s", seed,
                     step, op.kind, op.t, prop_address[op.addr], got, want);
        free(got);
        free(want);
    }
}

struct kinds_seen {
    int soft_threshold, lifted, other;
};

static int note_kinds(void *user, const bp_suppression *r)
{
    struct kinds_seen *k = user;
    k->soft_threshold += strcmp(r->source_kind, BP_KIND_SOFT_THRESHOLD) == 0;
    k->lifted += r->lifted != 0;
    k->other += strcmp(r->source_kind, BP_KIND_SOFT_THRESHOLD) != 0;
    return 0;
}

/* What the histories of run_fold_property() reached, added to @p k. */
static void prop_kinds(bp_store *s, struct kinds_seen *k)
{
    bp_store_filter all;
    memset(&all, 0, sizeof(all));
    all.include_lifted = 1;
    assert_int_equal(bp_store_export(s, &all, note_kinds, k), BP_OK);
}

static long long sql_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void forget_sqlite_states(void *ctx)
{
    sqlite3 *db = ctx;
    char *err = NULL;
    if (sqlite3_exec(db, "DELETE FROM derive_state", NULL, NULL, &err) != SQLITE_OK)
        fail_msg("forgetting fold states: %s", err != NULL ? err : "");
}

static void test_fold_state_property(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/other.db", f->dir);
    struct kinds_seen kinds = {0, 0, 0};
    long long paired = 0, older_marked = 0;
    for (unsigned seed = 1; seed <= 6; seed++) {
        unlink(path);
        bp_store *ref = open_store(path, 0);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        bp_store_close(f->store);
        unlink(f->path);
        f->store = open_store(f->path, 0);
        run_fold_property(f->store, ref, forget_sqlite_states, db, seed, 300);
        prop_kinds(f->store, &kinds);
        /* store A did use its fold states */
        assert_true(sql_count(f->path, "SELECT count(*) FROM derive_state") > 0);
        /* and reports paired: the second recorded marked, and an older one marked late */
        paired += sql_count(f->path, "SELECT count(*) FROM ledger WHERE paired_with > 0");
        older_marked += sql_count(f->path, "SELECT count(*) FROM ledger WHERE paired_with > id");
        sqlite3_close(db);
        bp_store_close(ref);
    }
    /* the histories reached soft thresholds, removals and the other kinds (final states only) */
    if (kinds.soft_threshold == 0 || kinds.lifted == 0 || kinds.other == 0)
        fail_msg("random histories too tame: %d soft-threshold, %d lifted, %d other", kinds.soft_threshold,
                 kinds.lifted, kinds.other);
    if (paired < 10 || older_marked == 0)
        fail_msg("random histories too tame: %lld reports paired, %lld of them the older one", paired, older_marked);
}

/* The ledger and suppression tables as versions 1 to 3 had them (sqlite.c's migration 0). */
#define OLD_LEDGER_TABLES                                                                                              \
    "CREATE TABLE ledger (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT,"                               \
    "  evidence_time INTEGER NOT NULL, recorded_at INTEGER NOT NULL,"                                                  \
    "  type TEXT, action TEXT, recipient TEXT, domain TEXT, recipient_from TEXT,"                                      \
    "  status TEXT, smtp_code TEXT, diagnostic TEXT, category TEXT, feedback_type TEXT,"                               \
    "  rule TEXT, final INTEGER NOT NULL DEFAULT 0,"                                                                   \
    "  reporting_mta TEXT, remote_mta TEXT, arrival_date TEXT, source_ip TEXT,"                                        \
    "  envid TEXT, job_id TEXT, source TEXT, message_id TEXT, original_message_id TEXT,"                               \
    "  blocklist TEXT, family TEXT, note TEXT, mta_category TEXT);"                                                    \
    "CREATE INDEX ledger_recipient ON ledger(recipient, evidence_time, id);"                                           \
    "CREATE INDEX ledger_fingerprint ON ledger(fingerprint);"                                                          \
    "CREATE INDEX ledger_time ON ledger(evidence_time);"                                                               \
    "CREATE TABLE suppressions (address TEXT PRIMARY KEY, domain TEXT NOT NULL, reason TEXT,"                          \
    "  source_kind TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"                            \
    "  count INTEGER NOT NULL, lifted INTEGER NOT NULL DEFAULT 0, lift_reason TEXT, lifted_at INTEGER);"               \
    "CREATE INDEX suppressions_domain ON suppressions(domain);"

/* What 0.1.0 created (schema version 1, sqlite.c's migration 0), with a history written the
 * way 0.1.0 wrote it: every ledger row carries its message's facts. */
static const char v1_schema[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
    "CREATE TABLE processed (fingerprint TEXT PRIMARY KEY, state INTEGER NOT NULL, message_id TEXT, source TEXT,"
    "  first_seen INTEGER NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;" OLD_LEDGER_TABLES
    /* one report for two recipients: its facts on both rows */
    "INSERT INTO processed VALUES ('u-1', 1, '<r1@mx.example.net>', 'r1.eml', 1700000000, 1700000000);"
    "INSERT INTO ledger (kind, fingerprint, evidence_time, recorded_at, type, action, recipient, domain, category,"
    "  final, reporting_mta, envid, source, message_id, original_message_id, diagnostic) VALUES"
    "  ('event', 'u-1', 1700000000, 1700000000, 'bounce', 'suppress', 'old@example.org', 'example.org',"
    "   'bad-mailbox', 1, 'dns; mx.example.net', 'env-1', 'r1.eml', '<r1@mx.example.net>', '<o1@example.com>',"
    "   '550 5.1.1 unknown'),"
    "  ('event', 'u-1', 1700000000, 1700000000, 'delay', 'ignore', 'late@example.org', 'example.org', NULL,"
    "   0, 'dns; mx.example.net', 'env-1', 'r1.eml', '<r1@mx.example.net>', '<o2@example.com>', NULL);"
    "INSERT INTO suppressions VALUES ('old@example.org', 'example.org', 'bad-mailbox', 'bounce', 1700000000,"
    "  1700000000, 1, 0, NULL, NULL);";

struct old_row {
    int n;
    char message_id[64], original[64], reporting_mta[64], envid[16], source[16], diagnostic[32];
};

static int copy_old_row(void *user, const bp_ledger_row *r)
{
    struct old_row *o = user;
    o->n++;
    snprintf(o->message_id, sizeof(o->message_id), "%s", r->event.message_id ? r->event.message_id : "(null)");
    snprintf(o->original, sizeof(o->original), "%s",
             r->event.original_message_id ? r->event.original_message_id : "(null)");
    snprintf(o->reporting_mta, sizeof(o->reporting_mta), "%s",
             r->event.reporting_mta ? r->event.reporting_mta : "(null)");
    snprintf(o->envid, sizeof(o->envid), "%s", r->event.envid ? r->event.envid : "(null)");
    snprintf(o->source, sizeof(o->source), "%s", r->event.source ? r->event.source : "(null)");
    snprintf(o->diagnostic, sizeof(o->diagnostic), "%s", r->event.diagnostic ? r->event.diagnostic : "(null)");
    return 0;
}

struct page_rows {
    int n;
    long long id[16];
    char fp[16][16];
};

static int collect_page_row(void *user, const bp_ledger_row *r)
{
    struct page_rows *p = user;
    if (p->n < 16) {
        p->id[p->n] = r->id;
        snprintf(p->fp[p->n], sizeof(p->fp[0]), "%s", r->event.fingerprint ? r->event.fingerprint : "-");
    }
    p->n++;
    return 0;
}

/* migrate's two queries per page: the ledger in id order, and the units a page begins, whole. */
static void test_ledger_units(void **state)
{
    struct fixture *f = *state;
    bp_event a[3] = {bounce("a1@example.com", "bad-mailbox", BP_ACT_SUPPRESS),
                     bounce("a2@example.com", "bad-mailbox", BP_ACT_SUPPRESS),
                     bounce("a3@example.com", "bad-mailbox", BP_ACT_SUPPRESS)};
    bp_event b = bounce("b1@example.com", "quota-issues", BP_ACT_SOFT);
    bp_event c[2] = {bounce("c1@example.com", "bad-mailbox", BP_ACT_SUPPRESS),
                     bounce("c2@example.com", "bad-mailbox", BP_ACT_SUPPRESS)};
    int changed = 0;
    record(f->store, "u-a", 1600000000, a, 3);
    record(f->store, "u-b", 1600000100, &b, 1);
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_add(f->store, "i@example.com", "list", BP_KIND_IMPORT, 1600000200, 0, &changed), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    record(f->store, "u-c", 1600000300, c, 2);

    struct page_rows all = {0};
    assert_int_equal(bp_store_ledger_page(f->store, 0, 0, collect_page_row, &all), BP_OK);
    assert_int_equal(all.n, 7); /* a a a b import c c */
    long long a2 = all.id[1], c1 = all.id[5];

    struct page_rows got = {0};
    assert_int_equal(bp_store_ledger_units(f->store, 0, a2, collect_page_row, &got), BP_OK);
    assert_int_equal(got.n, 3); /* all of a, its third row past the page too */
    for (int i = 0; i < 3; i++)
        assert_string_equal(got.fp[i], "u-a");
    assert_true(got.id[0] < got.id[1] && got.id[1] < got.id[2]);

    memset(&got, 0, sizeof(got));
    assert_int_equal(bp_store_ledger_units(f->store, a2, c1, collect_page_row, &got), BP_OK);
    assert_int_equal(got.n, 3); /* b, then c whole; not a (begun on the page before) */
    assert_string_equal(got.fp[0], "u-b");
    assert_string_equal(got.fp[1], "u-c");
    assert_string_equal(got.fp[2], "u-c");

    memset(&got, 0, sizeof(got));
    assert_int_equal(bp_store_ledger_units(f->store, c1, all.id[6], collect_page_row, &got), BP_OK);
    assert_int_equal(got.n, 0); /* c's second row: c began before */
}

/* Replace the fixture's store by an SQLite file made with @p schema and @p history (NULL:
 * none), as an older version left it. */
static void replace_store(struct fixture *f, const char *schema, const char *history)
{
    bp_store_close(f->store);
    f->store = NULL;
    unlink(f->path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK ||
        (history != NULL && sqlite3_exec(db, history, NULL, NULL, &msg) != SQLITE_OK))
        fail_msg("old store: %s", msg);
    sqlite3_close(db);
}

/* A store that needs migrating is refused to readers (the first writer migrates it). */
static void expect_readers_refuse(const char *location)
{
    bp_store_options o;
    bp_store_options_default(&o);
    o.read_only = 1;
    bp_store *s = NULL;
    char *err = NULL;
    assert_int_equal(bp_store_open(location, &o, &s, &err), BP_ERR_STORE);
    free(err);
}

/* A version 1 database with history is upgraded in place when opened for writing (2: the fold
 * state; 3: a message's facts once, in its processed row): readers refuse it until then, its
 * rows read back as they were written, and they count in the next derivations. */
static void test_upgrade_from_version_1(void **state)
{
    struct fixture *f = *state;
    replace_store(f, v1_schema, NULL);
    expect_readers_refuse(f->path);
    f->store = open_store(f->path, 0);
    assert_int_equal(bp_store_schema_version(f->store), STORE_SCHEMA_VERSION);
    /* the facts both rows share moved to the message; the one they do not stayed */
    assert_int_equal(sql_count(f->path, "SELECT count(*) FROM ledger WHERE message_id IS NULL AND envid IS NULL "
                                        "AND reporting_mta IS NULL AND source IS NULL"),
                     2);
    assert_int_equal(sql_count(f->path, "SELECT count(*) FROM ledger WHERE original_message_id IS NOT NULL"), 2);
    assert_int_equal(sql_count(f->path, "SELECT count(*) FROM processed WHERE message_id = '<r1@mx.example.net>' "
                                        "AND envid = 'env-1' AND original_message_id IS NULL"),
                     1);
    struct old_row got = {0};
    assert_int_equal(bp_store_ledger_for(f->store, "old@example.org", copy_old_row, &got), BP_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.message_id, "<r1@mx.example.net>");
    assert_string_equal(got.original, "<o1@example.com>");
    assert_string_equal(got.reporting_mta, "dns; mx.example.net");
    assert_string_equal(got.envid, "env-1");
    assert_string_equal(got.source, "r1.eml");
    assert_string_equal(got.diagnostic, "550 5.1.1 unknown");
    /* opened again: nothing more to do */
    bp_store_close(f->store);
    f->store = open_store(f->path, 0);
    assert_int_equal(sql_count(f->path, "SELECT version FROM schema_version"), STORE_SCHEMA_VERSION);
    /* the old rows count: a second bounce makes count 2 */
    bp_event e = bounce("old@example.org", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "u-2", 1700000000 + DAY, &e, 1);
    assert_int_equal(lookup(f->store, "old@example.org").count, 2);
}

/* What version 3 (the program before identity and pairing) created, as SQLite's migrations 0 to
 * 2 left it. */
static const char v3_schema[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (3);"
    "CREATE TABLE processed (fingerprint TEXT PRIMARY KEY, state INTEGER NOT NULL, message_id TEXT, source TEXT,"
    "  first_seen INTEGER NOT NULL, updated INTEGER NOT NULL, original_message_id TEXT, reporting_mta TEXT,"
    "  envid TEXT, arrival_date TEXT) WITHOUT ROWID;" OLD_LEDGER_TABLES
    "CREATE TABLE derive_state (address TEXT PRIMARY KEY, last_time INTEGER NOT NULL, last_id INTEGER NOT NULL,"
    "  policy TEXT NOT NULL, suppressed INTEGER NOT NULL, reason TEXT, source_kind TEXT,"
    "  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, count INTEGER NOT NULL, lifted INTEGER NOT NULL,"
    "  lift_reason TEXT, lifted_at INTEGER NOT NULL, active_time INTEGER NOT NULL, active_id INTEGER NOT NULL,"
    "  soft TEXT NOT NULL) WITHOUT ROWID;";

/* A history as version 3 wrote it (SQL both backends take), T0 = 1700000000, a day 86400:
 *  - Jane.Roe: three soft bounces on three days, each by an accounting record (the sender's
 *    spelling) and a DSN (PowerMTA's lower case): two addresses to version 3, three each;
 *  - jdoe: a hard bounce by DSN, and by an accounting record logged 3 s before (JDoe): two
 *    suppression rows;
 *  - Amy: one spelling, not lower case, suppressed, with a fold state;
 *  - pat: three soft bounces on three days reported twice in one spelling: six counted, so
 *    suppressed (soft-threshold) by version 3;
 *  - Jörg: two DSNs a day apart, in two spellings of a UTF-8 local part: two rows. */
static const char v3_history[] =
    "INSERT INTO processed (fingerprint, state, first_seen, updated) VALUES"
    " ('acct:j1', 1, 1, 1), ('dsn-j1', 1, 1, 1), ('acct:j2', 1, 1, 1), ('dsn-j2', 1, 1, 1),"
    " ('acct:j3', 1, 1, 1), ('dsn-j3', 1, 1, 1), ('dsn-d1', 1, 1, 1), ('acct:d1', 1, 1, 1), ('dsn-a1', 1, 1, 1),"
    " ('acct:p1', 1, 1, 1), ('dsn-p1', 1, 1, 1), ('acct:p2', 1, 1, 1), ('dsn-p2', 1, 1, 1),"
    " ('acct:p3', 1, 1, 1), ('dsn-p3', 1, 1, 1), ('dsn-g1', 1, 1, 1), ('dsn-g2', 1, 1, 1);"
    "INSERT INTO ledger (kind, fingerprint, evidence_time, recorded_at, type, action, recipient, domain, status,"
    "  smtp_code, category, final, envid, source) VALUES"
    " ('event', 'acct:j1', 1700000000, 1, 'bounce', 'soft', 'Jane.Roe@outlook.example', 'outlook.example',"
    "  '4.2.2', '452', 'quota-issues', 0, 'env-j1', 'acct#2'),"
    " ('event', 'dsn-j1', 1700000004, 1, 'bounce', 'soft', 'jane.roe@outlook.example', 'outlook.example',"
    "  '4.2.2', '452', 'quota-issues', 0, 'env-j1', 'dsn1'),"
    " ('event', 'acct:j2', 1700086400, 1, 'bounce', 'soft', 'Jane.Roe@outlook.example', 'outlook.example',"
    "  '4.2.2', '452', 'quota-issues', 0, 'env-j2', 'acct#3'),"
    " ('event', 'dsn-j2', 1700086404, 1, 'bounce', 'soft', 'jane.roe@outlook.example', 'outlook.example',"
    "  '4.2.2', '452', 'quota-issues', 0, 'env-j2', 'dsn2'),"
    " ('event', 'acct:j3', 1700172800, 1, 'bounce', 'soft', 'Jane.Roe@outlook.example', 'outlook.example',"
    "  '4.2.2', '452', 'quota-issues', 0, 'env-j3', 'acct#4'),"
    " ('event', 'dsn-j3', 1700172804, 1, 'bounce', 'soft', 'jane.roe@outlook.example', 'outlook.example',"
    "  '4.2.2', '452', 'quota-issues', 0, 'env-j3', 'dsn3'),"
    " ('event', 'dsn-d1', 1700000100, 1, 'bounce', 'suppress', 'jdoe@example.net', 'example.net',"
    "  '5.1.1', '550', 'bad-mailbox', 1, NULL, 'dsn4'),"
    " ('event', 'acct:d1', 1700000097, 1, 'bounce', 'suppress', 'JDoe@example.net', 'example.net',"
    "  '5.1.1', '550', 'bad-mailbox', 1, NULL, 'acct#5'),"
    " ('event', 'dsn-a1', 1700000200, 1, 'bounce', 'suppress', 'Amy@example.org', 'example.org',"
    "  '5.1.1', '550', 'bad-mailbox', 1, NULL, 'dsn5'),"
    " ('event', 'acct:p1', 1700000000, 1, 'bounce', 'soft', 'pat@example.com', 'example.com',"
    "  '4.2.2', '452', 'quota-issues', 0, NULL, 'acct#6'),"
    " ('event', 'dsn-p1', 1700000005, 1, 'bounce', 'soft', 'pat@example.com', 'example.com',"
    "  '4.2.2', '452', 'quota-issues', 0, NULL, 'dsn6'),"
    " ('event', 'acct:p2', 1700086400, 1, 'bounce', 'soft', 'pat@example.com', 'example.com',"
    "  '4.2.2', '452', 'quota-issues', 0, NULL, 'acct#7'),"
    " ('event', 'dsn-p2', 1700086405, 1, 'bounce', 'soft', 'pat@example.com', 'example.com',"
    "  '4.2.2', '452', 'quota-issues', 0, NULL, 'dsn7'),"
    " ('event', 'acct:p3', 1700172800, 1, 'bounce', 'soft', 'pat@example.com', 'example.com',"
    "  '4.2.2', '452', 'quota-issues', 0, NULL, 'acct#8'),"
    " ('event', 'dsn-p3', 1700172805, 1, 'bounce', 'soft', 'pat@example.com', 'example.com',"
    "  '4.2.2', '452', 'quota-issues', 0, NULL, 'dsn8'),"
    " ('event', 'dsn-g1', 1700000300, 1, 'bounce', 'suppress', 'J\xc3\xb6rg@example.de', 'example.de',"
    "  '5.1.1', '550', 'bad-mailbox', 1, NULL, 'dsn9'),"
    " ('event', 'dsn-g2', 1700086700, 1, 'bounce', 'suppress', 'J\xc3\x96RG@example.de', 'example.de',"
    "  '5.1.1', '550', 'bad-mailbox', 1, NULL, 'dsn10');"
    "INSERT INTO suppressions (address, domain, reason, source_kind, first_seen, last_seen, count, lifted) VALUES"
    " ('jdoe@example.net', 'example.net', 'bad-mailbox', 'bounce', 1700000100, 1700000100, 1, 0),"
    " ('JDoe@example.net', 'example.net', 'bad-mailbox', 'bounce', 1700000097, 1700000097, 1, 0),"
    " ('Amy@example.org', 'example.org', 'bad-mailbox', 'bounce', 1700000200, 1700000200, 1, 0),"
    " ('pat@example.com', 'example.com', 'quota-issues', 'soft-threshold', 1700172800, 1700172800, 1, 0),"
    " ('J\xc3\xb6rg@example.de', 'example.de', 'bad-mailbox', 'bounce', 1700000300, 1700000300, 1, 0),"
    " ('J\xc3\x96RG@example.de', 'example.de', 'bad-mailbox', 'bounce', 1700086700, 1700086700, 1, 0);"
    "INSERT INTO derive_state (address, last_time, last_id, policy, suppressed, reason, source_kind, first_seen,"
    "  last_seen, count, lifted, lift_reason, lifted_at, active_time, active_id, soft) VALUES"
    " ('Amy@example.org', 1700000200, 9, '1:5:3:30', 1, 'bad-mailbox', 'bounce', 1700000200, 1700000200, 1, 0,"
    "  NULL, 0, 1700000200, 9, ''),"
    " ('jdoe@example.net', 1700000100, 7, '1:5:3:30', 1, 'bad-mailbox', 'bounce', 1700000100, 1700000100, 1, 0,"
    "  NULL, 0, 1700000100, 7, ''),"
    " ('pat@example.com', 1700172805, 15, '1:5:3:30', 1, 'quota-issues', 'soft-threshold', 1700172800,"
    "  1700172800, 1, 0, NULL, 0, 1700172800, 14, ''),"
    " ('jane.roe@outlook.example', 1700172804, 6, '1:5:3:30', 0, NULL, NULL, 0, 0, 0, 0, NULL, 0, 0, 0,"
    "  '1700000004 86400 86400');";

static int count_export_rows(void *user, const bp_suppression *r)
{
    (void)r;
    (*(int *)user)++;
    return 0;
}

/* What the migration to version 5 must have made of v3_history, on either backend. */
static void check_v3_history_migrated(bp_store *s)
{
    assert_int_equal(bp_store_schema_version(s), STORE_SCHEMA_VERSION);
    /* Jane.Roe: one address, six reports, three failures: not suppressed */
    struct marks m = marks_of(s, "JANE.ROE@OUTLOOK.EXAMPLE");
    assert_int_equal(m.events, 6);
    assert_int_equal(m.marked, 3);
    assert_false(lookup(s, "jane.roe@outlook.example").found);
    /* jdoe: one row, one failure; shown as first recorded; the record logged first counts */
    struct seen_row row = lookup(s, "JDOE@example.net");
    assert_true(row.found && !row.lifted);
    assert_string_equal(row.address, "jdoe@example.net");
    assert_int_equal(row.count, 1);
    assert_int_equal(row.first, 1700000097);
    m = marks_of(s, "jdoe@example.net");
    assert_int_equal(m.marked, 1);
    assert_int_equal(m.marked_time, 1700000100);
    /* Amy: found in lower case, shown as written */
    row = lookup(s, "amy@example.org");
    assert_true(row.found);
    assert_string_equal(row.address, "Amy@example.org");
    /* pat: suppressed only because each failure was counted twice: not any more */
    m = marks_of(s, "pat@example.com");
    assert_int_equal(m.events, 6);
    assert_int_equal(m.marked, 3);
    assert_false(lookup(s, "pat@example.com").found);
    /* Jörg: one address in two spellings, two failures */
    row = lookup(s, "jo\xcc\x88rg@example.de");
    assert_true(row.found);
    assert_int_equal(row.count, 2);
    assert_string_equal(row.address, "J\xc3\xb6rg@example.de");
    bp_store_filter all;
    memset(&all, 0, sizeof(all));
    all.include_lifted = 1;
    int n = 0;
    assert_int_equal(bp_store_export(s, &all, count_export_rows, &n), BP_OK);
    assert_int_equal(n, 3); /* jdoe, Amy, Jörg */
    /* the state goes on: two more failures of Jane.Roe, reported twice each, make five on five
     * days (the state left by the migration, and Amy's made again, agree with the full fold) */
    for (int d = 3; d < 5; d++) {
        char name[32];
        snprintf(name, sizeof(name), "j%d", d + 1);
        record_both(s, "Jane.Roe@outlook.example", "jane.roe@outlook.example", name, 1700000000,
                    soft(1, d * DAY, NULL, NULL), soft(0, d * DAY + 4, NULL, NULL), 0);
    }
    row = lookup(s, "jane.roe@outlook.example");
    assert_true(row.found);
    assert_string_equal(row.kind, BP_KIND_SOFT_THRESHOLD);
    assert_string_equal(row.address, "Jane.Roe@outlook.example");
    bp_event e = bounce("AMY@example.org", "bad-mailbox", BP_ACT_SUPPRESS);
    record(s, "dsn-a2", 1700000000 + 5 * DAY, &e, 1);
    assert_int_equal(lookup(s, "amy@example.org").count, 2);
}

/* A store written by version 3, with the same addresses in several spellings and failures
 * reported by both channels, is migrated in place by the first writer (readers refuse it
 * until then): spellings merged, reports paired, suppression rows and fold states derived
 * again; opened again, nothing more happens. */
static void test_upgrade_from_version_3(void **state)
{
    struct fixture *f = *state;
    replace_store(f, v3_schema, v3_history);
    expect_readers_refuse(f->path);
    f->store = open_store(f->path, 0);
    assert_int_equal(sql_count(f->path, "SELECT count(*) FROM suppressions WHERE address_key IS NULL"), 0);
    assert_int_equal(sql_count(f->path, "SELECT count(*) FROM derive_state WHERE address_key <> lower(address_key)"),
                     0);
    assert_int_equal(sql_count(f->path, "SELECT count(*) FROM ledger WHERE address_key IS NULL"), 0);
    bp_store_close(f->store);
    f->store = open_store(f->path, 0); /* again: nothing to do */
    assert_int_equal(sql_count(f->path, "SELECT version FROM schema_version"), STORE_SCHEMA_VERSION);
    check_v3_history_migrated(f->store);
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

/* Register test @p f with a fresh store in a temporary directory (setup / teardown). */
#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

BP_TEST_MAIN(STORE_TEST(test_open_schema_and_mode), STORE_TEST(test_suppress_and_idempotency),
             STORE_TEST(test_soft_escalation), STORE_TEST(test_delivery_resets),
             STORE_TEST(test_removal_needs_new_evidence), STORE_TEST(test_unrecognised_then_upgraded),
             STORE_TEST(test_import_export_filters), STORE_TEST(test_stats), STORE_TEST(test_reclassify),
             STORE_TEST(test_identity_any_case), STORE_TEST(test_two_channels_matrix),
             STORE_TEST(test_two_channels_count_once), STORE_TEST(test_two_channels_race),
             STORE_TEST(test_fold_state_property), STORE_TEST(test_ledger_units),
             STORE_TEST(test_upgrade_from_version_1), STORE_TEST(test_upgrade_from_version_3),
             STORE_TEST(test_busy_timeout), STORE_TEST(test_foreign_databases))
