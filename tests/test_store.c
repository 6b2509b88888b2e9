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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "bouncepipe/store.h"

#define DAY 86400LL

/* the schema version this program creates (docs/store.md, change history) */
#define STORE_SCHEMA_VERSION 4

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
    long long count, first, last, lifted_at;
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
    s->lifted_at = r->lifted_at;
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
    dump_add(user, "  %s|%lld|%s|%s|%s\n", r->kind, r->evidence_time, bp_event_type_name(r->event.type),
             bp_action_name(r->event.action), r->event.category ? r->event.category : "-");
    return 0;
}

#define PROP_ADDRESSES 4
static const char *const prop_address[PROP_ADDRESSES] = {"p0@example.org", "p1@example.org", "P2@Example.NET",
                                                         "p3@example.com"};

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
    int kind; /* 0 report, 1 delivery, 2 removal, 3 import/manual, 4 re-classify, 5 quarantined unit */
    int addr, addr2, n_events;
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
    const char *a = prop_address[op->addr];
    switch (op->kind) {
    case 0:
    case 5: {
        bp_event ev[2];
        bp_record_result rr;
        for (int i = 0; i < op->n_events; i++) {
            memset(&ev[i], 0, sizeof(ev[i]));
            ev[i].type = op->type[i];
            ev[i].action = op->action[i];
            ev[i].recipient = prop_address[i == 0 ? op->addr : op->addr2];
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
    snprintf(op->fp, sizeof(op->fp), "prop-%d", step);
    unsigned k = prop_next(r, 100);
    if (k < 70) {
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
    prop_rng r = {seed * 2654435761ULL + 1};
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
        sqlite3 *adb = NULL;
        sqlite3_stmt *q = NULL;
        assert_int_equal(sqlite3_open(f->path, &adb), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(adb, "SELECT count(*) FROM derive_state", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_true(sqlite3_column_int(q, 0) > 0);
        sqlite3_finalize(q);
        sqlite3_close(adb);
        sqlite3_close(db);
        bp_store_close(ref);
    }
    /* the histories reached soft thresholds, removals and the other kinds (final states only) */
    if (kinds.soft_threshold == 0 || kinds.lifted == 0 || kinds.other == 0)
        fail_msg("random histories too tame: %d soft-threshold, %d lifted, %d other", kinds.soft_threshold,
                 kinds.lifted, kinds.other);
    char p[160];
    const char *suffixes[] = {"-wal", "-shm"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

/* What 0.1.0 created (schema version 1, sqlite.c's migration 0), with a history written the
 * way 0.1.0 wrote it: every ledger row carries its message's facts. */
static const char v1_schema[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
    "CREATE TABLE processed (fingerprint TEXT PRIMARY KEY, state INTEGER NOT NULL, message_id TEXT, source TEXT,"
    "  first_seen INTEGER NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE ledger (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT,"
    "  evidence_time INTEGER NOT NULL, recorded_at INTEGER NOT NULL,"
    "  type TEXT, action TEXT, recipient TEXT, domain TEXT, recipient_from TEXT,"
    "  status TEXT, smtp_code TEXT, diagnostic TEXT, category TEXT, feedback_type TEXT,"
    "  rule TEXT, final INTEGER NOT NULL DEFAULT 0,"
    "  reporting_mta TEXT, remote_mta TEXT, arrival_date TEXT, source_ip TEXT,"
    "  envid TEXT, job_id TEXT, source TEXT, message_id TEXT, original_message_id TEXT,"
    "  blocklist TEXT, family TEXT, note TEXT, mta_category TEXT);"
    "CREATE INDEX ledger_recipient ON ledger(recipient, evidence_time, id);"
    "CREATE INDEX ledger_fingerprint ON ledger(fingerprint);"
    "CREATE INDEX ledger_time ON ledger(evidence_time);"
    "CREATE TABLE suppressions (address TEXT PRIMARY KEY, domain TEXT NOT NULL, reason TEXT,"
    "  source_kind TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    "  count INTEGER NOT NULL, lifted INTEGER NOT NULL DEFAULT 0, lift_reason TEXT, lifted_at INTEGER);"
    "CREATE INDEX suppressions_domain ON suppressions(domain);"
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

/* A version 1 database with history is upgraded in place when opened for writing (2: the fold
 * state; 3: a message's facts once, in its processed row): readers refuse it until then, its
 * rows read back as they were written, and they count in the next derivations. */
static void test_upgrade_from_version_1(void **state)
{
    struct fixture *f = *state;
    bp_store_close(f->store);
    f->store = NULL;
    unlink(f->path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, v1_schema, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("v1 schema: %s", msg);
    sqlite3_close(db);
    /* readers refuse a database that needs migrating; the first writer migrates it */
    bp_store_options o;
    bp_store_options_default(&o);
    o.read_only = 1;
    bp_store *s = NULL;
    char *err = NULL;
    assert_int_equal(bp_store_open(f->path, &o, &s, &err), BP_ERR_STORE);
    free(err);
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
        cmocka_unit_test_setup_teardown(test_fold_state_property, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_version_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_databases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
