/*
 * test_grouped.c - the report's grouped counts (store.h bp_store_group_counts()): events per
 * UTC day and type, per receiving domain and category (complaints as "complaint:TYPE", rows
 * without a category by type), per rule, per blocklist, and new suppressions per day with
 * those before --since as one count, each with the since filter, against a small store whose
 * answers are written out by hand.  On a temporary SQLite file, and on PostgreSQL when
 * $BOUNCEPIPE_TEST_DB_URL is set (tests/system/pg_outbox.sh; the schema is emptied first).
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

#include "bouncepipe/store.h"
#include "test_support.h"

#define DAY   86400LL
#define T0    1700006400LL /* 2023-11-15T00:00:00Z */
#define MAX_N 32

struct fixture {
    char dir[64], location[512];
    bp_store *store;
    int pg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *url = getenv("BOUNCEPIPE_TEST_DB_URL");
    char *err = NULL;
    if (f == NULL)
        return -1;
    if (url != NULL && *url != '\0') {
        f->pg = 1;
        snprintf(f->location, sizeof(f->location), "%s", url);
    } else {
        if (bp_test_tmpdir(f->dir, sizeof(f->dir), "grouped", f->location, sizeof(f->location), "g.db") != 0)
            return -1;
    }
    if (bp_store_open(f->location, NULL, &f->store, &err) != BP_OK) {
        fprintf(stderr, "open %s: %s\n", f->location, err != NULL ? err : "");
        free(err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    bp_store_close(f->store);
    if (!f->pg)
        bp_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* One unit: one event. */
static void record(bp_store *s, const char *fp, long long t, bp_event_type type, const char *rcpt, const char *category,
                   const char *feedback, bp_action action, const char *rule, const char *blocklist)
{
    bp_event e = bp_test_event(type, rcpt, category, action);
    e.feedback_type = feedback;
    e.rule = rule;
    e.blocklist = blocklist;
    bp_store_unit u = {fp, NULL, "test", t, NULL};
    bp_record_result r;
    bp_status st = bp_store_record_once(s, &u, &e, 1, &r);
    if (st != BP_OK)
        fail_msg("record %s: %s: %s", fp, bp_status_to_string(st), bp_store_last_error(s));
}

typedef struct got {
    char lines[MAX_N][160];
    size_t n;
} got;

static int keep(void *user, const char *key1, const char *key2, long long count)
{
    got *g = user;
    if (g->n < MAX_N)
        snprintf(g->lines[g->n++], sizeof(g->lines[0]), "%s|%s|%lld", key1 != NULL ? key1 : "(null)",
                 key2 != NULL ? key2 : "-", count);
    return 0;
}

static int by_text(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The counts of @p dim since @p since, sorted, against @p want (sorted too). */
static void check(bp_store *s, bp_group_dim dim, long long since, const char *label, const char *const *want)
{
    got g;
    memset(&g, 0, sizeof(g));
    bp_store_filter f;
    memset(&f, 0, sizeof(f));
    f.since = since;
    bp_status st = bp_store_group_counts(s, dim, &f, keep, &g);
    if (st != BP_OK)
        fail_msg("%s: %s: %s", label, bp_status_to_string(st), bp_store_last_error(s));
    qsort(g.lines, g.n, sizeof(g.lines[0]), by_text);
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    for (size_t i = 0; i < n || i < g.n; i++) {
        const char *w = i < n ? want[i] : "(nothing)", *h = i < g.n ? g.lines[i] : "(nothing)";
        if (strcmp(w, h) != 0)
            fail_msg("%s: row %zu: got %s, want %s", label, i, h, w);
    }
}

static void test_grouped_counts(void **state)
{
    struct fixture *f = *state;
    bp_store *s = f->store;
    /* day 0 (2023-11-15): two hard bounces at a.example, one blocklisted at b.example */
    record(s, "g1", T0 + 10, BP_EVENT_BOUNCE, "x@a.example", "bad-mailbox", NULL, BP_ACT_SUPPRESS, "r-user", NULL);
    record(s, "g2", T0 + 20, BP_EVENT_BOUNCE, "y@A.example", "bad-mailbox", NULL, BP_ACT_SUPPRESS, "r-user", NULL);
    record(s, "g3", T0 + 30, BP_EVENT_BOUNCE, "z@b.example", "spam-related", NULL, BP_ACT_IGNORE, "r-sh", "spamhaus");
    /* day 1: a complaint at a.example, a delay without a category at b.example */
    record(s, "g4", T0 + DAY + 5, BP_EVENT_COMPLAINT, "w@a.example", NULL, "abuse", BP_ACT_SUPPRESS, NULL, NULL);
    record(s, "g5", T0 + DAY + 6, BP_EVENT_DELAY, "v@b.example", NULL, NULL, BP_ACT_IGNORE, NULL, NULL);
    /* day 3: one more blocklisted bounce, an event without a recipient (no domain) */
    record(s, "g6", T0 + 3 * DAY, BP_EVENT_BOUNCE, "u@b.example", "spam-related", NULL, BP_ACT_IGNORE, "r-sh",
           "spamhaus");
    record(s, "g7", T0 + 3 * DAY + 1, BP_EVENT_BOUNCE, NULL, "policy-related", NULL, BP_ACT_IGNORE, "r-pol",
           "barracuda");

    static const char *const day_type[] = {"2023-11-15|bounce|3", "2023-11-16|complaint|1", "2023-11-16|delay|1",
                                           "2023-11-18|bounce|2", NULL};
    check(s, BP_GROUP_DAY_TYPE, 0, "day x type", day_type);
    static const char *const day_type_since[] = {"2023-11-18|bounce|2", NULL};
    check(s, BP_GROUP_DAY_TYPE, T0 + 2 * DAY, "day x type since day 2", day_type_since);

    static const char *const domains[] = {"a.example|bad-mailbox|2", "a.example|complaint:abuse|1", "b.example|delay|1",
                                          "b.example|spam-related|2", NULL};
    check(s, BP_GROUP_DOMAIN_CATEGORY, 0, "domain x category", domains);
    static const char *const domains_since[] = {"a.example|complaint:abuse|1", "b.example|delay|1",
                                                "b.example|spam-related|1", NULL};
    check(s, BP_GROUP_DOMAIN_CATEGORY, T0 + DAY, "domain x category since day 1", domains_since);

    static const char *const rules[] = {"r-pol|-|1", "r-sh|-|2", "r-user|-|2", NULL};
    check(s, BP_GROUP_RULE, 0, "rules", rules);
    static const char *const lists[] = {"barracuda|-|1", "spamhaus|-|2", NULL};
    check(s, BP_GROUP_BLOCKLIST, 0, "blocklists", lists);
    static const char *const lists_since[] = {"barracuda|-|1", "spamhaus|-|1", NULL};
    check(s, BP_GROUP_BLOCKLIST, T0 + 2 * DAY, "blocklists since day 2", lists_since);

    /* suppressions: x, y (day 0), w (day 1); lifting one keeps it counted */
    assert_int_equal(bp_store_begin(s), BP_OK);
    assert_int_equal(bp_store_remove(s, "y@A.example", "asked", T0 + 4 * DAY), BP_OK);
    assert_int_equal(bp_store_commit(s), BP_OK);
    static const char *const growth[] = {"2023-11-15|-|2", "2023-11-16|-|1", NULL};
    check(s, BP_GROUP_NEW_SUPPRESSIONS, 0, "new suppressions", growth);
    static const char *const growth_since[] = {"(null)|-|2", "2023-11-16|-|1", NULL};
    check(s, BP_GROUP_NEW_SUPPRESSIONS, T0 + DAY, "new suppressions since day 1", growth_since);
}

BP_TEST_MAIN(cmocka_unit_test_setup_teardown(test_grouped_counts, setup, teardown))
