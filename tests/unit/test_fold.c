/*
 * test_fold.c - the derivation fold (src/store/fold.c) without a database: tables of ledger
 * histories, each folded in order, against the suppression row and soft count they must
 * make (got/want); the soft-time text and the saved state read back exactly; a row folded
 * late into a suppression in force; a second report of a failure (paired_with) that counts
 * nothing; the identity key of addresses (src/store/identity.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/store/fold.h"
#include "../../src/store/identity.h"
#include "bouncepipe/limits.h"
#include "test_support.h"

#define DAY 86400LL
#define T0  1790000000LL /* 14:13:20 UTC: T0 + 60 is the same UTC day, T0 + DAY the next */

/* One history step: what kind of row, when (seconds after T0), and its text. */
typedef struct step {
    char op;          /* 'S' suppressing bounce, 'C' complaint, 's' soft bounce, 'i' ignored bounce,
                         'd' delivery event, 'D' delivery row, 'R' removal, 'I' import, 'M' manual,
                         'u' unrecognised placeholder, 'Q' 'P': a suppressing / soft bounce
                         reported again through the other channel (paired_with) */
    long long at;     /* seconds after T0 */
    const char *text; /* category / feedback type / note (NULL allowed) */
} step;

#define MAX_STEPS 12

/* What folding a case's history must give. */
typedef struct fold_want {
    int exists, active, lifted;
    const char *kind, *reason, *lift_reason;
    long long count, first, last, lifted_at; /* first/last/lifted_at relative to T0 */
    size_t n_soft;
} fold_want;

typedef struct fold_case {
    const char *label;
    bp_fold_policy policy;
    step steps[MAX_STEPS]; /* the history: up to the first step without an op */
    fold_want want;
} fold_case;

/* How many steps @p c has. */
static size_t steps_of(const fold_case *c)
{
    size_t n = 0;
    while (n < MAX_STEPS && c->steps[n].op != '\0')
        n++;
    return n;
}

/* What each op makes: the ledger row's kind, the event's type and action, and where the
 * step's text goes (event rows with BP_EVENT_UNRECOGNIZED and BP_ACT_NONE: an unrecognised
 * placeholder). */
enum text_field { NO_TEXT, CATEGORY, FEEDBACK_TYPE, NOTE };
static const struct {
    char op;
    const char *kind;
    bp_event_type type;
    bp_action action;
    enum text_field text;
    int paired; /* a second report: the report next to it counts */
} ops[] = {
    {'S', BP_LEDGER_EVENT, BP_EVENT_BOUNCE, BP_ACT_SUPPRESS, CATEGORY, 0},
    {'C', BP_LEDGER_EVENT, BP_EVENT_COMPLAINT, BP_ACT_SUPPRESS, FEEDBACK_TYPE, 0},
    {'s', BP_LEDGER_EVENT, BP_EVENT_BOUNCE, BP_ACT_SOFT, CATEGORY, 0},
    {'i', BP_LEDGER_EVENT, BP_EVENT_BOUNCE, BP_ACT_IGNORE, CATEGORY, 0},
    {'d', BP_LEDGER_EVENT, BP_EVENT_DELIVERED, BP_ACT_IGNORE, NO_TEXT, 0},
    {'D', BP_LEDGER_DELIVERY, BP_EVENT_UNRECOGNIZED, BP_ACT_NONE, NO_TEXT, 0},
    {'R', BP_LEDGER_REMOVAL, BP_EVENT_UNRECOGNIZED, BP_ACT_NONE, NOTE, 0},
    {'I', BP_LEDGER_IMPORT, BP_EVENT_UNRECOGNIZED, BP_ACT_NONE, NOTE, 0},
    {'M', BP_LEDGER_MANUAL, BP_EVENT_UNRECOGNIZED, BP_ACT_NONE, NOTE, 0},
    {'u', BP_LEDGER_EVENT, BP_EVENT_UNRECOGNIZED, BP_ACT_NONE, NO_TEXT, 0},
    {'Q', BP_LEDGER_EVENT, BP_EVENT_BOUNCE, BP_ACT_SUPPRESS, CATEGORY, 1},
    {'P', BP_LEDGER_EVENT, BP_EVENT_BOUNCE, BP_ACT_SOFT, CATEGORY, 1},
};

static bp_ledger_row row_of(const step *s, long long id)
{
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.evidence_time = T0 + s->at;
    r.event.recipient = "a@example.com";
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].op != s->op)
            continue;
        r.kind = ops[i].kind;
        r.event.type = ops[i].type;
        r.event.action = ops[i].action;
        r.event.category = ops[i].text == CATEGORY ? s->text : NULL;
        r.event.feedback_type = ops[i].text == FEEDBACK_TYPE ? s->text : NULL;
        r.note = ops[i].text == NOTE ? s->text : NULL;
        if (ops[i].paired)
            r.paired_with = id > 1 ? id - 1 : id + 1;
        return r;
    }
    fail_msg("unknown op %c", s->op);
    return r;
}

static const bp_fold_policy DEFAULTS = {BP_SOFT_COUNT_DEFAULT, BP_SOFT_DAYS_DEFAULT, BP_SOFT_WINDOW_DEFAULT};

static const fold_case cases[] = {
    {"a second report of a hard bounce counts nothing",
     DEFAULTS,
     {{'S', 0, "bad-mailbox"}, {'Q', 4, "bad-mailbox"}},
     {1, 1, 0, BP_KIND_BOUNCE, "bad-mailbox", NULL, 1, 0, 0, 0, 0}},
    {"three soft bounces on three days, each reported twice, are three",
     DEFAULTS,
     {{'s', 0, "quota-issues"},
      {'P', 5, "quota-issues"},
      {'P', DAY - 5, "quota-issues"},
      {'s', DAY, "quota-issues"},
      {'s', 2 * DAY, "quota-issues"},
      {'P', 2 * DAY + 5, "quota-issues"}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 3}},
    {"nothing but second reports: no row",
     DEFAULTS,
     {{'Q', 0, "bad-mailbox"}, {'P', 10, "quota-issues"}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0}},
    {"nothing but ignored and unrecognised rows: no row",
     DEFAULTS,
     {{'i', 0, "spam-related"}, {'u', 10, NULL}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0}},
    {"one hard bounce suppresses",
     DEFAULTS,
     {{'S', 100, "bad-mailbox"}},
     {1, 1, 0, BP_KIND_BOUNCE, "bad-mailbox", NULL, 1, 100, 100, 0, 0}},
    {"a bounce without category: reason other",
     DEFAULTS,
     {{'S', 5, NULL}},
     {1, 1, 0, BP_KIND_BOUNCE, "other", NULL, 1, 5, 5, 0, 0}},
    {"a complaint suppresses with its feedback type",
     DEFAULTS,
     {{'C', 7, "abuse"}},
     {1, 1, 0, BP_KIND_COMPLAINT, "abuse", NULL, 1, 7, 7, 0, 0}},
    {"a complaint without type: reason complaint",
     DEFAULTS,
     {{'C', 7, NULL}},
     {1, 1, 0, BP_KIND_COMPLAINT, "complaint", NULL, 1, 7, 7, 0, 0}},
    {"repeated evidence counts; the first reason stays",
     DEFAULTS,
     {{'S', 10, "bad-mailbox"}, {'C', 20, "abuse"}, {'S', 30, "bad-domain"}},
     {1, 1, 0, BP_KIND_BOUNCE, "bad-mailbox", NULL, 3, 10, 30, 0, 0}},
    {"four soft bounces on four days: counted, not suppressed",
     DEFAULTS,
     {{'s', 0, "quota-issues"},
      {'s', DAY, "quota-issues"},
      {'s', 2 * DAY, "quota-issues"},
      {'s', 3 * DAY, "quota-issues"}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 4}},
    {"five soft bounces on three days suppress (soft-threshold)",
     DEFAULTS,
     {{'s', 0, "quota-issues"},
      {'s', 60, "quota-issues"},
      {'s', DAY, "quota-issues"},
      {'s', DAY + 60, "quota-issues"},
      {'s', 2 * DAY, "message-expired"}},
     {1, 1, 0, BP_KIND_SOFT_THRESHOLD, "message-expired", NULL, 1, 2 * DAY, 2 * DAY, 0, 0}},
    {"five soft bounces on two days: not enough days",
     DEFAULTS,
     {{'s', 0, "quota-issues"},
      {'s', 60, "quota-issues"},
      {'s', 120, "quota-issues"},
      {'s', DAY, "quota-issues"},
      {'s', DAY + 60, "quota-issues"}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 5}},
    {"soft bounces outside the window drop out",
     DEFAULTS,
     {{'s', 0, "quota-issues"},
      {'s', DAY, "quota-issues"},
      {'s', 40 * DAY, "quota-issues"},
      {'s', 41 * DAY, "quota-issues"},
      {'s', 42 * DAY, "quota-issues"}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 3}},
    {"a delivery event empties the soft count",
     DEFAULTS,
     {{'s', 0, "quota-issues"},
      {'s', DAY, "quota-issues"},
      {'s', 2 * DAY, "quota-issues"},
      {'d', 2 * DAY + 1, NULL},
      {'s', 3 * DAY, "quota-issues"},
      {'s', 4 * DAY, "quota-issues"}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 2}},
    {"a delivery row empties the soft count",
     DEFAULTS,
     {{'s', 0, "quota-issues"}, {'s', DAY, "quota-issues"}, {'D', DAY + 5, NULL}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0}},
    {"a custom policy: 2 soft on 1 day suppress",
     {2, 1, 7},
     {{'s', 0, "bad-connection"}, {'s', 60, "bad-connection"}},
     {1, 1, 0, BP_KIND_SOFT_THRESHOLD, "bad-connection", NULL, 1, 60, 60, 0, 0}},
    {"soft bounces of a suppressed address are not counted",
     {2, 1, 7},
     {{'S', 0, "bad-mailbox"}, {'s', 60, "quota-issues"}, {'s', 120, "quota-issues"}},
     {1, 1, 0, BP_KIND_BOUNCE, "bad-mailbox", NULL, 1, 0, 0, 0, 0}},
    {"a removal lifts",
     DEFAULTS,
     {{'S', 10, "bad-mailbox"}, {'R', 20, "asked"}},
     {1, 0, 1, BP_KIND_BOUNCE, "bad-mailbox", "asked", 1, 10, 10, 20, 0}},
    {"old evidence after a removal does not resurrect",
     DEFAULTS,
     {{'S', 10, "bad-mailbox"}, {'R', 20, "asked"}, {'S', 20, "bad-mailbox"}},
     {1, 0, 1, BP_KIND_BOUNCE, "bad-mailbox", "asked", 1, 10, 10, 20, 0}},
    {"newer evidence after a removal suppresses again",
     DEFAULTS,
     {{'S', 10, "bad-mailbox"}, {'R', 20, "asked"}, {'C', 30, "abuse"}},
     {1, 1, 0, BP_KIND_COMPLAINT, "abuse", "asked", 2, 10, 30, 20, 0}},
    {"a removal of an address never suppressed makes no row",
     DEFAULTS,
     {{'s', 0, "quota-issues"}, {'R', 20, "asked"}},
     {0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0}},
    {"a removal empties the soft count",
     DEFAULTS,
     {{'S', 0, "bad-mailbox"}, {'R', 10, "asked"}, {'s', 20, "quota-issues"}, {'R', 30, "again"}},
     {1, 0, 1, BP_KIND_BOUNCE, "bad-mailbox", "again", 1, 0, 0, 30, 0}},
    {"soft bounces not newer than the removal do not count",
     DEFAULTS,
     {{'S', 0, "bad-mailbox"}, {'R', 100, "asked"}, {'s', 100, "quota-issues"}},
     {1, 0, 1, BP_KIND_BOUNCE, "bad-mailbox", "asked", 1, 0, 0, 100, 0}},
    {"an import suppresses with the operator's note",
     DEFAULTS,
     {{'I', 5, "old list"}},
     {1, 1, 0, BP_KIND_IMPORT, "old list", NULL, 1, 5, 5, 0, 0}},
    {"an import without a note: reason import",
     DEFAULTS,
     {{'I', 5, NULL}},
     {1, 1, 0, BP_KIND_IMPORT, "import", NULL, 1, 5, 5, 0, 0}},
    {"a manual addition after a removal",
     DEFAULTS,
     {{'S', 1, "bad-domain"}, {'R', 2, NULL}, {'M', 3, "by hand"}},
     {1, 1, 0, BP_KIND_MANUAL, "by hand", NULL, 2, 1, 3, 2, 0}},
};

static void check_fold(const char *label, const fold_case *c, const bp_fold *d)
{
    char what[160];
    snprintf(what, sizeof(what), "%s", label);
#define WANT_INT(field, got, want)                                                                                     \
    do {                                                                                                               \
        if ((long long)(got) != (long long)(want))                                                                     \
            fail_msg("%s: %s: got %lld, want %lld", what, field, (long long)(got), (long long)(want));                 \
    } while (0)
#define WANT_STR(field, got, want)                                                                                     \
    do {                                                                                                               \
        const char *g_ = (got), *w_ = (want);                                                                          \
        if ((g_ == NULL) != (w_ == NULL) || (g_ != NULL && strcmp(g_, w_) != 0))                                       \
            fail_msg("%s: %s: got %s, want %s", what, field, g_ ? g_ : "(null)", w_ ? w_ : "(null)");                  \
    } while (0)
    const fold_want *w = &c->want;
    WANT_INT("exists", d->exists, w->exists);
    WANT_INT("active", d->active, w->active);
    WANT_INT("lifted", d->lifted, w->lifted);
    WANT_INT("soft events counted", d->n_soft, w->n_soft);
    if (!w->exists)
        return;
    WANT_STR("source kind", d->kind, w->kind);
    WANT_STR("reason", d->reason, w->reason);
    WANT_STR("lift reason", d->lift_reason, w->lift_reason);
    WANT_INT("count", d->count, w->count);
    WANT_INT("first seen", d->first, T0 + w->first);
    WANT_INT("last seen", d->last, T0 + w->last);
    WANT_INT("lifted at", d->lifted_at, w->lifted_at ? T0 + w->lifted_at : 0);
}

static void fold_all(const fold_case *c, bp_fold *d)
{
    for (size_t i = 0; i < steps_of(c); i++) {
        bp_ledger_row r = row_of(&c->steps[i], (long long)i + 1);
        assert_int_equal(bp_fold_row(&c->policy, d, &r), 0);
    }
}

static void test_fold_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bp_fold d;
        memset(&d, 0, sizeof(d));
        fold_all(&cases[i], &d);
        check_fold(cases[i].label, &cases[i], &d);
        assert_int_equal(d.folded, steps_of(&cases[i]));
        assert_int_equal(d.last_id, (long long)steps_of(&cases[i]));
        bp_fold_free(&d);
    }
}

/* Every case, saved as a state after each prefix and loaded again, then folded on: the same
 * result as folding straight through (what derive() relies on). */
static void test_saved_state_goes_on_exactly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const fold_case *c = &cases[i];
        size_t n = steps_of(c);
        for (size_t cut = 0; cut <= n; cut++) {
            char policy[64], label[200];
            bp_fold a, b;
            memset(&a, 0, sizeof(a));
            memset(&b, 0, sizeof(b));
            bp_fold_policy_text(&c->policy, policy, sizeof(policy));
            for (size_t j = 0; j < cut; j++) {
                bp_ledger_row r = row_of(&c->steps[j], (long long)j + 1);
                bp_fold_row(&c->policy, &a, &r);
            }
            char *soft = bp_fold_soft_text(&a);
            assert_non_null(soft);
            bp_fold_state st = bp_fold_to_state(&a, "a@example.com", policy, soft);
            if (!bp_fold_load(&b, &st, policy))
                fail_msg("%s: the state saved after %zu rows does not load", c->label, cut);
            free(soft);
            for (size_t j = cut; j < n; j++) {
                bp_ledger_row r = row_of(&c->steps[j], (long long)j + 1);
                bp_fold_row(&c->policy, &b, &r);
            }
            snprintf(label, sizeof(label), "%s (saved after %zu rows)", c->label, cut);
            check_fold(label, c, &b);
            bp_fold_free(&a);
            bp_fold_free(&b);
        }
    }
}

static void test_state_of_another_policy_is_refused(void **state)
{
    (void)state;
    char mine[64], other[64];
    bp_fold_policy p = DEFAULTS, q = {3, 2, 10};
    bp_fold_policy_text(&p, mine, sizeof(mine));
    bp_fold_policy_text(&q, other, sizeof(other));
    assert_string_equal(mine, "1:5:3:30");
    bp_fold d;
    memset(&d, 0, sizeof(d));
    bp_fold_state st = bp_fold_to_state(&d, "a@example.com", other, "");
    assert_int_equal(bp_fold_load(&d, &st, mine), 0);
    st.policy = mine;
    st.soft = "12 x"; /* malformed */
    assert_int_equal(bp_fold_load(&d, &st, mine), 0);
    st.soft = "100 -5"; /* differences are never negative */
    assert_int_equal(bp_fold_load(&d, &st, mine), 0);
    st.soft = "";
    st.suppressed = 1; /* suppressed without a source kind */
    assert_int_equal(bp_fold_load(&d, &st, mine), 0);
    bp_fold_free(&d);
}

static void test_soft_text_round_trip(void **state)
{
    (void)state;
    static const struct {
        long long t[4];
        size_t n;
        const char *want;
    } rows[] = {
        {{0}, 0, ""},
        {{T0}, 1, "1790000000"},
        {{T0, T0 + 60, T0 + DAY}, 3, "1790000000 60 86340"},
        {{T0, T0, T0 + 1, T0 + 1}, 4, "1790000000 0 1 0"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_fold d;
        memset(&d, 0, sizeof(d));
        d.soft = calloc(4, sizeof(*d.soft));
        d.cap_soft = 4;
        memcpy(d.soft, rows[i].t, sizeof(rows[i].t));
        d.n_soft = rows[i].n;
        char *got = bp_fold_soft_text(&d);
        if (strcmp(got, rows[i].want) != 0)
            fail_msg("row %zu: got \"%s\", want \"%s\"", i, got, rows[i].want);
        bp_fold e;
        memset(&e, 0, sizeof(e));
        assert_int_equal(bp_fold_soft_parse(&e, got), 0);
        assert_int_equal(e.n_soft, rows[i].n);
        for (size_t j = 0; j < rows[i].n; j++)
            assert_int_equal(e.soft[j], rows[i].t[j]);
        free(got);
        bp_fold_free(&d);
        bp_fold_free(&e);
    }
}

/* A suppressing row that arrives late into a suppression in force only counts; a soft event
 * or a reset changes nothing; both are what folding the whole history in order gives. */
static void test_late_rows(void **state)
{
    (void)state;
    bp_fold d;
    memset(&d, 0, sizeof(d));
    const step history[] = {{'S', 100, "bad-mailbox"}, {'s', 200, "quota-issues"}, {'S', 300, "bad-domain"}};
    for (size_t i = 0; i < 3; i++) {
        bp_ledger_row r = row_of(&history[i], (long long)i + 1);
        bp_fold_row(&DEFAULTS, &d, &r);
    }
    bp_fold_late(&d, BP_FACT_SUPPRESS, T0 + 150);
    bp_fold_late(&d, BP_FACT_SOFT, T0 + 160);
    bp_fold_late(&d, BP_FACT_RESET, T0 + 170);
    assert_int_equal(d.count, 3);
    assert_int_equal(d.last, T0 + 300);
    assert_int_equal(d.n_soft, 0);
    bp_fold_late(&d, BP_FACT_SUPPRESS, T0 + 400); /* never happens (late rows sort earlier); max kept */
    assert_int_equal(d.last, T0 + 400);
    bp_suppression row = bp_fold_suppression(&d, "a@example.com", "example.com");
    assert_string_equal(row.reason, "bad-mailbox");
    assert_string_equal(row.source_kind, BP_KIND_BOUNCE);
    assert_int_equal(row.count, 4);
    bp_fold_free(&d);
}

/* The identity key (docs/store.md "Identity"): one key for every spelling of an address. */
static void test_address_key(void **state)
{
    (void)state;
    static const struct {
        const char *label, *in, *want;
    } rows[] = {
        {"lower case stays", "jdoe@example.net", "jdoe@example.net"},
        {"ASCII letters lowered, local part and domain", "Jane.Roe@Outlook.EXAMPLE", "jane.roe@outlook.example"},
        {"other ASCII kept", "A+B_c-1=x@Ex-1.example", "a+b_c-1=x@ex-1.example"},
        {"UTF-8 folded (NFC in)", "J\xc3\x96RG@example.de", "j\xc3\xb6rg@example.de"},
        {"UTF-8 folded (NFD in): composed", "JO\xcc\x88RG@example.de", "j\xc3\xb6rg@example.de"},
        {"full case folding: sharp s",
         "STRA\xc3\x9f"
         "E@example.de",
         "strasse@example.de"},
        {"Greek final sigma folds to sigma", "\xce\x9f\xce\xa3@example.gr", "\xce\xbf\xcf\x83@example.gr"},
        {"a U-label domain folds too",
         "info@B\xc3\x9c"
         "CHER.example",
         "info@b\xc3\xbc"
         "cher.example"},
        {"an A-label domain is only lowered", "info@XN--BCHER-KVA.example", "info@xn--bcher-kva.example"},
        {"not UTF-8: ASCII letters lowered, other bytes kept", "M\xfcller@Example.de", "m\xfcller@example.de"},
        {"empty", "", ""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *got = bp_address_key(rows[i].in);
        assert_non_null(got);
        if (strcmp(got, rows[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", rows[i].label, got, rows[i].want);
        char *again = bp_address_key(got); /* a key is its own key */
        assert_string_equal(again, got);
        free(again);
        free(got);
    }
    assert_null(bp_address_key(NULL));
    /* a fold past BP_MAX_ADDRESS_KEY_BYTES: the bytes with A-Z lowered, never longer */
    size_t n = BP_MAX_ADDRESS_KEY_BYTES / 2 + 10; /* U+0390 (2 bytes) folds to 6 */
    char *big = malloc(n * 2 + 16);
    assert_non_null(big);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        big[len++] = '\xce';
        big[len++] = '\x90';
    }
    memcpy(big + len, "@EXAMPLE.gr", 12);
    char *key = bp_address_key(big);
    assert_non_null(key);
    assert_int_equal(strlen(key), strlen(big));
    assert_string_equal(key + len, "@example.gr");
    free(key);
    free(big);
}

BP_TEST_MAIN(cmocka_unit_test(test_fold_table), cmocka_unit_test(test_saved_state_goes_on_exactly),
             cmocka_unit_test(test_state_of_another_policy_is_refused), cmocka_unit_test(test_soft_text_round_trip),
             cmocka_unit_test(test_late_rows), cmocka_unit_test(test_address_key))
