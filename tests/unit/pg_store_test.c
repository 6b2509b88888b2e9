/*
 * pg_store_test.c - the store's test suite on PostgreSQL, plus what only PostgreSQL has.
 *
 * The backend-neutral cases of tests/unit/test_store.c (included below, its main renamed) run
 * unchanged against the database named by $BOUNCEPIPE_TEST_DB_URL, each on an empty schema.
 * On top of them: many processes recording the same units and addresses at once (nothing
 * lost, nothing counted twice), row-lock waits bounded by busy_timeout_ms, a server that is
 * not there (BP_ERR_IO: pipe mode exits 75), a schema that is not ours or is newer, read-only
 * opening, text that is not UTF-8, a server restarting under a connected writer; the fold
 * state against the full fold (reference store in schema "ref"), and a version 1 schema
 * upgraded in place.
 *
 * Run by tests/system/pg_store.sh, which starts a private cluster and sets the URL; without the
 * variable the program fails (it is never registered on its own).
 */
int test_store_sqlite_main(void); /* test_store.c's main, renamed: not run here */
#define main test_store_sqlite_main
#include "test_store.c"
#undef main

#include <libpq-fe.h>
#include <sys/wait.h>

static const char *test_url(void)
{
    const char *url = getenv("BOUNCEPIPE_TEST_DB_URL");
    if (url == NULL || *url == '\0')
        fail_msg("BOUNCEPIPE_TEST_DB_URL is not set (tests/system/pg_store.sh sets it)");
    return url;
}

/* Run constant SQL on the test database with plain libpq (outside the store). */
static void admin_sql(const char *sql)
{
    PGconn *c = PQconnectdb(test_url());
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static void empty_schema(void)
{
    admin_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
}

static int pg_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    empty_schema();
    if ((size_t)snprintf(f->path, sizeof(f->path), "%s", test_url()) >= sizeof(f->path))
        fail_msg("BOUNCEPIPE_TEST_DB_URL is longer than the fixture's %zu bytes", sizeof(f->path));
    f->store = open_store(f->path, 0);
    *state = f;
    return f->store == NULL;
}

static int pg_teardown(void **state)
{
    struct fixture *f = *state;
    bp_store_close(f->store);
    free(f);
    return 0;
}

static void test_pg_schema(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(bp_store_schema_version(f->store), STORE_SCHEMA_VERSION);
    /* a second connection sees the schema and does not migrate again */
    bp_store *again = open_store(f->path, 0);
    assert_int_equal(bp_store_schema_version(again), STORE_SCHEMA_VERSION);
    bp_store_close(again);
}

/* Several processes open an empty database at the same moment: one creates the schema, the
 * others wait for it or find it done; none fails. */
static void test_pg_concurrent_creation(void **state)
{
    struct fixture *f = *state;
    bp_store_close(f->store);
    f->store = NULL;
    empty_schema();
    enum { N = 6 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            bp_store *s = NULL;
            char *err = NULL;
            bp_status st = bp_store_open(f->path, NULL, &s, &err);
            int ok = st == BP_OK && bp_store_schema_version(s) == STORE_SCHEMA_VERSION;
            if (!ok)
                fprintf(stderr, "opening: %s: %s\n", bp_status_to_string(st), err != NULL ? err : "");
            free(err);
            bp_store_close(s);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int ws = 0;
        assert_int_equal(waitpid(pids[i], &ws, 0), pids[i]);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    f->store = open_store(f->path, 0);
}

/* Concurrent writers: for each address in turn, every writer records its own unit and the
 * unit all writers share, at about the same moment, and never touches the address again, so
 * that a lost update would stay in the final state.  A unit PostgreSQL aborted (deadlock,
 * lock wait) is run again, as the MTA would run the pipe again. */
enum { WRITERS = 4, ADDRESSES = 40 };

/* Round @p k (address k) of writer @p id: its own unit and the shared one, in an order that
 * depends on @p id. */
static bp_status writer_round(bp_store *s, int id, int k)
{
    char fp[32], rcpt[64], other[64];
    for (int pass = 0; pass < 2; pass++) {
        int shared = (pass + id) % 2 == 0; /* half the writers start with the shared unit */
        if (shared)
            snprintf(fp, sizeof(fp), "fp-%03d-shared", k);
        else
            snprintf(fp, sizeof(fp), "fp-%03d-w%d", k, id);
        snprintf(rcpt, sizeof(rcpt), "user%d@example.com", k);
        snprintf(other, sizeof(other), "user%d@example.com", (k + 1) % ADDRESSES);
        /* a writer's version of the shared unit names a second recipient only for some
         * writers: whichever version is recorded first must be the only one */
        bp_event ev[2] = {bounce(rcpt, "bad-mailbox", BP_ACT_SUPPRESS), bounce(other, "bad-mailbox", BP_ACT_IGNORE)};
        size_t n = shared && id % 2 == 1 ? 2 : 1;
        bp_store_unit un = {fp, NULL, "writer", 1700000000LL + k * 3600 + id, NULL};
        bp_status st = record_retrying(s, &un, ev, n, id, 51);
        if (st != BP_OK)
            return st;
    }
    return BP_OK;
}

struct unit_count {
    int rows;
    int shared_rows[ADDRESSES];
    int own_rows[ADDRESSES][WRITERS];
};

static int count_events(void *user, const bp_ledger_row *r)
{
    struct unit_count *c = user;
    int k = -1, w = -1;
    if (r->event.fingerprint == NULL)
        fail_msg("ledger row %lld without fingerprint", r->id);
    if (sscanf(r->event.fingerprint, "fp-%d-w%d", &k, &w) == 2 && k >= 0 && k < ADDRESSES && w >= 0 && w < WRITERS)
        c->own_rows[k][w]++;
    else if (sscanf(r->event.fingerprint, "fp-%d-shared", &k) == 1 && k >= 0 && k < ADDRESSES)
        c->shared_rows[k]++;
    else
        fail_msg("unexpected ledger row %lld (%s)", r->id, r->event.fingerprint);
    c->rows++;
    return 0;
}

static void test_pg_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    run_lockstep(f->path, 10000, WRITERS, ADDRESSES, writer_round);
    struct unit_count c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(bp_store_ledger_events(f->store, count_events, &c), BP_OK);
    char a[64];
    for (int k = 0; k < ADDRESSES; k++) {
        /* each writer's own unit once; the shared unit once, in one writer's version */
        for (int w = 0; w < WRITERS; w++)
            if (c.own_rows[k][w] != 1)
                fail_msg("unit fp-%03d-w%d: %d ledger rows, want 1", k, w, c.own_rows[k][w]);
        if (c.shared_rows[k] != 1 && c.shared_rows[k] != 2)
            fail_msg("unit fp-%03d-shared: %d ledger rows, want 1 or 2 (one version)", k, c.shared_rows[k]);
        /* the count is every suppressing row: WRITERS own units + the shared one */
        snprintf(a, sizeof(a), "user%d@example.com", k);
        struct seen_row row = lookup(f->store, a);
        assert_true(row.found);
        if (row.count != WRITERS + 1)
            fail_msg("%s: count %lld, want %d (an update was lost or doubled)", a, row.count, WRITERS + 1);
    }
}

/* A second connection waiting for an address locked by the first gives up after its
 * busy_timeout_ms with BP_ERR_BUSY, and succeeds once the first is done. */
static void test_pg_lock_timeout(void **state)
{
    struct fixture *f = *state;
    bp_event ev = bounce("held@example.com", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "first", 1700000000, &ev, 1);
    bp_store *other = open_store(f->path, 300);
    bp_store_unit u1 = {"second", NULL, "test", 1700000100, NULL};
    bp_store_unit u2 = {"third", NULL, "test", 1700000200, NULL};
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record(f->store, &u1, &ev, 1, NULL), BP_OK);
    assert_int_equal(bp_store_begin(other), BP_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(bp_store_record(other, &u2, &ev, 1, NULL), BP_ERR_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bp_store_rollback(other);
    long long ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 250 && ms < 3000);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    bp_record_result r;
    assert_int_equal(bp_store_record_once(other, &u2, &ev, 1, &r), BP_OK);
    assert_int_equal(r.outcome, BP_RECORD_NEW);
    bp_store_close(other);
    assert_int_equal(lookup(f->store, "held@example.com").count, 3);
}

static void test_pg_unreachable_and_foreign(void **state)
{
    struct fixture *f = *state;
    bp_store *s = NULL;
    char *err = NULL;
    /* nothing listens on port 1: a transient failure, so pipe mode exits 75 */
    assert_int_equal(bp_store_open("postgresql://127.0.0.1:1/bounces?connect_timeout=2", NULL, &s, &err), BP_ERR_IO);
    assert_non_null(err);
    assert_true(bp_status_is_transient(BP_ERR_IO));
    free(err);
    err = NULL;
    /* a newer schema than ours */
    bp_store_close(f->store);
    f->store = NULL;
    admin_sql("UPDATE schema_version SET version = 99");
    assert_int_equal(bp_store_open(f->path, NULL, &s, &err), BP_ERR_STORE);
    assert_non_null(strstr(err, "newer"));
    free(err);
    err = NULL;
    /* somebody else's tables */
    empty_schema();
    admin_sql("CREATE TABLE contacts (email TEXT)");
    assert_int_equal(bp_store_open(f->path, NULL, &s, &err), BP_ERR_STORE);
    free(err);
    err = NULL;
    /* read-only on an empty schema: nothing to read, and nothing created */
    empty_schema();
    bp_store_options o;
    bp_store_options_default(&o);
    o.read_only = 1;
    assert_int_equal(bp_store_open(f->path, &o, &s, &err), BP_ERR_NOT_FOUND);
    free(err);
    err = NULL;
    f->store = open_store(f->path, 0);
    assert_int_equal(bp_store_open(f->path, &o, &s, &err), BP_OK);
    assert_int_equal(bp_store_begin(s), BP_ERR_USAGE);
    bp_store_close(s);
}

/* The server restarts between two transactions of a long-running writer (acct on a stream):
 * the next begin reconnects, and the writer goes on.  pg_store.sh names the restart command. */
static void test_pg_reconnect(void **state)
{
    struct fixture *f = *state;
    const char *restart = getenv("BOUNCEPIPE_TEST_PG_RESTART");
    if (restart == NULL || *restart == '\0')
        fail_msg("BOUNCEPIPE_TEST_PG_RESTART is not set (tests/system/pg_store.sh sets it)");
    bp_event ev = bounce("restart@example.com", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "before", 1700000000, &ev, 1);
    assert_int_equal(system(restart), 0);
    bp_record_result r;
    assert_int_equal(
        bp_store_record_once(f->store, &(bp_store_unit){"after", NULL, "test", 1700000100, NULL}, &ev, 1, &r), BP_OK);
    assert_int_equal(r.outcome, BP_RECORD_NEW);
    assert_int_equal(lookup(f->store, "restart@example.com").count, 2);
}

static int copy_diagnostic(void *user, const bp_ledger_row *r)
{
    snprintf(user, 64, "%s", r->event.diagnostic != NULL ? r->event.diagnostic : "");
    return 0;
}

/* PostgreSQL refuses bytes that are not UTF-8; the backend keeps the text with '?'. */
static void test_pg_invalid_utf8(void **state)
{
    struct fixture *f = *state;
    bp_event ev = bounce("latin1@example.com", "bad-mailbox", BP_ACT_SUPPRESS);
    ev.diagnostic = "550 Benutzer unbekannt: M\xfcller \xc3\xa9t\xc3";
    record(f->store, "latin1", 1700000000, &ev, 1);
    char got[64] = "";
    assert_int_equal(bp_store_ledger_for(f->store, "latin1@example.com", copy_diagnostic, got), BP_OK);
    assert_string_equal(got, "550 Benutzer unbekannt: M?ller \xc3\xa9t?");
    assert_true(suppressed(f->store, "latin1@example.com"));
}

static void forget_pg_states(void *ctx)
{
    (void)ctx;
    admin_sql("DELETE FROM ref.derive_state");
}

/* test_store.c's random histories; the reference store lives in schema "ref". */
static void test_pg_fold_state_property(void **state)
{
    struct fixture *f = *state;
    char url[512];
    const char *base = test_url();
    if ((size_t)snprintf(url, sizeof(url), "%s%soptions=-csearch_path%%3Dref", base, strchr(base, '?') ? "&" : "?") >=
        sizeof(url))
        fail_msg("test URL too long");
    for (unsigned seed = 1; seed <= 3; seed++) {
        admin_sql("DROP SCHEMA IF EXISTS ref CASCADE; CREATE SCHEMA ref");
        bp_store_close(f->store);
        empty_schema();
        f->store = open_store(f->path, 0);
        bp_store *ref = open_store(url, 0);
        run_fold_property(f->store, ref, forget_pg_states, NULL, seed, 200);
        bp_store_close(ref);
    }
    admin_sql("DROP SCHEMA IF EXISTS ref CASCADE");
}

/* The signals step (BP_STORE_SCHEMA_SIGNALS) undone: its tables, index and ledger columns. */
#define UNDO_SIGNALS                                                                                                   \
    "DROP TABLE signal_counts, signal_marks, signal_alerts; DROP INDEX ledger_named;"                                  \
    "ALTER TABLE ledger DROP COLUMN sending_ip, DROP COLUMN vmta, DROP COLUMN stream, "                                \
    "DROP COLUMN receiver, DROP COLUMN listed;"

/* This program's schema back to version 3: the later steps undone (signals, the outbox), then
 * the identity step's changes. */
#define UNDO_IDENTITY                                                                                                  \
    UNDO_SIGNALS                                                                                                       \
    "DROP TABLE outbox;"                                                                                               \
    "DROP INDEX ledger_key; DROP INDEX suppressions_key;"                                                              \
    "ALTER TABLE ledger DROP COLUMN address_key, DROP COLUMN paired_with;"                                             \
    "ALTER TABLE suppressions DROP COLUMN address_key;"                                                                \
    "ALTER TABLE derive_state RENAME COLUMN address_key TO address;"                                                   \
    "ALTER TABLE addresses RENAME COLUMN address_key TO address;"                                                      \
    "CREATE INDEX ledger_recipient ON ledger(recipient, evidence_time, id);"

/* A version 1 schema (migration 0 only: what 0.1.0 created) with history is upgraded by the
 * first writer; its old rows count in the next derivation. */
static void test_pg_upgrade_from_version_1(void **state)
{
    struct fixture *f = *state;
    bp_event e = bounce("old@example.org", "bad-mailbox", BP_ACT_SUPPRESS);
    e.reporting_mta = "dns; mx.example.net";
    e.original_message_id = "<o1@example.com>";
    record(f->store, "u-1", 1700000000, &e, 1);
    bp_store_close(f->store);
    f->store = NULL;
    /* back to version 1 as 0.1.0 wrote it: no fold state, the message's facts on its rows */
    admin_sql(UNDO_IDENTITY "DROP TABLE derive_state, acct_position, dmarc_reports, dmarc_records, dmarc_failures, "
                            "dmarc_rdns; UPDATE schema_version SET version = 1;"
                            "UPDATE ledger SET message_id = '<id@example.org>', reporting_mta = 'dns; mx.example.net', "
                            "source = 'test', original_message_id = '<o1@example.com>';"
                            "ALTER TABLE processed DROP COLUMN original_message_id, DROP COLUMN reporting_mta, "
                            "DROP COLUMN envid, DROP COLUMN arrival_date");
    f->store = open_store(f->path, 0);
    assert_int_equal(bp_store_schema_version(f->store), STORE_SCHEMA_VERSION);
    /* the shared facts moved to the message, and read back as they were */
    admin_sql("DO $$ BEGIN IF (SELECT count(*) FROM ledger WHERE message_id IS NULL AND reporting_mta IS NULL "
              "AND original_message_id IS NULL) <> 1 OR (SELECT count(*) FROM processed WHERE message_id = "
              "'<id@example.org>' AND reporting_mta = 'dns; mx.example.net' AND original_message_id = "
              "'<o1@example.com>') <> 1 "
              "THEN RAISE EXCEPTION 'the facts did not move'; END IF; END $$");
    struct old_row got = {0};
    assert_int_equal(bp_store_ledger_for(f->store, "old@example.org", copy_old_row, &got), BP_OK);
    assert_string_equal(got.message_id, "<id@example.org>");
    assert_string_equal(got.reporting_mta, "dns; mx.example.net");
    assert_string_equal(got.original, "<o1@example.com>");
    e = bounce("old@example.org", "bad-mailbox", BP_ACT_SUPPRESS);
    record(f->store, "u-2", 1700000000 + DAY, &e, 1);
    assert_int_equal(lookup(f->store, "old@example.org").count, 2);
}

/* A schema written by version 3 (made here from this program's by undoing the identity step's
 * changes) with v3_history: spellings merged, reports paired, on the first writer's open. */
static void test_pg_upgrade_from_version_3(void **state)
{
    struct fixture *f = *state;
    bp_store_close(f->store);
    f->store = NULL;
    admin_sql(UNDO_IDENTITY
              "DROP TABLE dmarc_reports, dmarc_records, dmarc_failures, dmarc_rdns;"
              "UPDATE schema_version SET version = 4;"
              "INSERT INTO addresses VALUES ('Jane.Roe@outlook.example', 1), ('jane.roe@outlook.example', 1),"
              "  ('Amy@example.org', 1), ('jdoe@example.net', 1), ('J\xc3\x96RG@example.de', 1);");
    admin_sql(v3_history);
    expect_readers_refuse(f->path);
    f->store = open_store(f->path, 0);
    admin_sql("DO $$ BEGIN IF (SELECT count(*) FROM ledger WHERE address_key IS NULL) <> 0"
              " OR (SELECT count(*) FROM addresses WHERE address_key <> lower(address_key)) <> 0"
              " OR (SELECT count(*) FROM derive_state WHERE address_key <> lower(address_key)) <> 0"
              " OR (SELECT count(*) FROM ledger WHERE address_key = 'j\xc3\xb6rg@example.de') <> 2"
              " THEN RAISE EXCEPTION 'keys not filled in'; END IF; END $$");
    bp_store_close(f->store);
    f->store = open_store(f->path, 0);
    check_v3_history_migrated(f->store);
}

/* Register test @p f with an empty schema on the test database (pg_setup / pg_teardown). */
#define PG_TEST(f) cmocka_unit_test_setup_teardown(f, pg_setup, pg_teardown)

int main(void)
{
    test_url();
    const struct CMUnitTest tests[] = {
        /* test_store.c's backend-neutral cases */
        PG_TEST(test_suppress_and_idempotency),
        PG_TEST(test_soft_escalation),
        PG_TEST(test_delivery_resets),
        PG_TEST(test_removal_needs_new_evidence),
        PG_TEST(test_unrecognised_then_upgraded),
        PG_TEST(test_import_export_filters),
        PG_TEST(test_stats),
        PG_TEST(test_reclassify),
        PG_TEST(test_ledger_units),
        PG_TEST(test_identity_any_case),
        PG_TEST(test_two_channels_matrix),
        PG_TEST(test_two_channels_count_once),
        PG_TEST(test_two_channels_race),
        /* PostgreSQL's own */
        PG_TEST(test_pg_schema),
        PG_TEST(test_pg_concurrent_creation),
        PG_TEST(test_pg_concurrent_writers),
        PG_TEST(test_pg_lock_timeout),
        PG_TEST(test_pg_unreachable_and_foreign),
        PG_TEST(test_pg_invalid_utf8),
        PG_TEST(test_pg_reconnect),
        PG_TEST(test_pg_fold_state_property),
        PG_TEST(test_pg_upgrade_from_version_1),
        PG_TEST(test_pg_upgrade_from_version_3),
    };
    return cmocka_run_group_tests_name("store on PostgreSQL", tests, NULL, NULL);
}
