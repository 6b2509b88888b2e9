/*
 * outbox.c - the webhook outbox of the store (store.h, "the webhook outbox"; docs/webhooks.md).
 *
 * One row per (event, endpoint): written by bp_store_record() in the ledger's transaction
 * (bp_store_record_with_outbox() -> bp_store_outbox_write(): the rows the core asked for, nothing decided here),
 * drained by `deliver` through src/deliver/'s bp_outbox, whose contract (deliver.h) these functions keep:
 *
 *   claim       one transaction: lease the due rows nobody holds (UPDATE ... RETURNING id;
 *               PostgreSQL picks them with FOR UPDATE SKIP LOCKED, so that claimers on other
 *               hosts skip each other's rows instead of queueing; SQLite's writer holds the
 *               database, so two claims cannot interleave), commit, then read the leased rows
 *               with their ledger rows and hand them over.  The read finds the rows by lease
 *               (owner and lease end) within the claimed ids' range and keeps only the ids the
 *               claim returned, so a row the caller still holds from an earlier claim is not
 *               handed over twice.
 *   mark        one transaction per row: delivered, retried, dead or released, only while the
 *               caller holds the lease (else BP_ERR_NOT_FOUND and nothing changes).
 *   retry_dead, counts, list: one statement each.
 *
 * Every statement is sql.c's, the same on both backends (but the claim's lock clause), run
 * through the backend's run() (store_backend.h).  The store knows nothing of HTTP or of the
 * endpoints' settings: names and keys are plain text to it.
 *
 * Ownership: rows handed to callbacks point into the backend's result and live until the
 * callback returns; the claimed ids are a malloc'ed array freed before returning.
 */
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "outbox.h"
#include "sql.h"
#include "store_backend.h"

static bp_status run(bp_store *s, bp_sql_call *c)
{
    void *h = NULL;
    const bp_store_backend *be = bp_store_backend_of(s, &h);
    return be->run(h, c);
}

/* @p c in a transaction of its own: committed when it ran and @p keep says so of what it
 * changed, else rolled back. @return its status, or BP_ERR_NOT_FOUND when @p keep refused. */
static bp_status run_in_tx(bp_store *s, bp_sql_call *c, int (*keep)(const bp_sql_call *c))
{
    bp_status st = bp_store_begin(s);
    if (st != BP_OK)
        return st;
    st = run(s, c);
    if (st == BP_OK && keep != NULL && !keep(c))
        st = BP_ERR_NOT_FOUND; /* not (or no longer) the caller's row: nothing changes */
    if (st == BP_OK)
        return bp_store_commit(s);
    bp_store_rollback(s);
    return st;
}

static int changed_a_row(const bp_sql_call *c)
{
    return c->changed > 0;
}

/* The position of @p want in @p index (ascending), or n when it is not there. */
static size_t find_index(const size_t *index, size_t n, size_t want)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (index[mid] < want)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && index[lo] == want ? lo : n;
}

bp_status bp_store_outbox_write(bp_store *s, const bp_store_outbox_want *outbox, size_t n_outbox, const size_t *index,
                                const long long *ledger_ids, size_t n_rows, long long now)
{
    for (size_t i = 0; i < n_outbox; i++) {
        const bp_store_outbox_want *w = &outbox[i];
        if (w->endpoint == NULL || w->event_key == NULL) {
            bp_store_set_error(s, "an outbox row needs an endpoint and an event key");
            return BP_ERR_USAGE;
        }
        size_t r = find_index(index, n_rows, w->event_index);
        if (r == n_rows)
            continue; /* its event has no ledger row of its own (store.h) */
        long long created = w->created_at > 0 ? w->created_at : now;
        const bp_sql_value v[] = {bp_sql_int(ledger_ids[r]),
                                  bp_sql_text(w->endpoint),
                                  bp_sql_text(w->event_key),
                                  bp_sql_text(w->dead ? "dead" : "pending"),
                                  bp_sql_int(w->attempts),
                                  bp_sql_int(created),
                                  bp_sql_int(w->next_at > 0 ? w->next_at : created),
                                  bp_sql_text(w->last_error)};
        bp_sql_call c = {.id = BP_SQL_OUTBOX_INSERT, .params = v, .n_params = 8, .what = "writing the outbox"};
        bp_status st = run(s, &c);
        if (st != BP_OK)
            return st;
    }
    return BP_OK;
}

bp_status bp_store_outbox_drop_placeholder(bp_store *s, const char *fingerprint)
{
    const bp_sql_value v[] = {bp_sql_text(fingerprint)};
    bp_sql_call c = {.id = BP_SQL_OUTBOX_DROP_PLACEHOLDER, .params = v, .n_params = 1, .what = "writing the outbox"};
    return run(s, &c);
}

/* ---- claim ---------------------------------------------------------------------------- */

typedef struct claimed {
    long long *ids;
    size_t n, cap;
} claimed;

static int keep_id(void *user, const bp_sql_value *v)
{
    claimed *c = user;
    if (c->n < c->cap) /* the statement's LIMIT is the capacity */
        c->ids[c->n++] = v[0].num;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

typedef struct hand_over {
    const claimed *ids;
    bp_store_outbox_cb cb;
    void *user;
} hand_over;

static int hand_row(void *user, const bp_sql_value *v)
{
    hand_over *h = user;
    long long id = v[0].num;
    if (bsearch(&id, h->ids->ids, h->ids->n, sizeof(id), cmp_id) == NULL)
        return 0; /* held by the caller from an earlier claim: not this claim's */
    bp_store_outbox_entry row;
    bp_ledger_row event;
    bp_sql_outbox_row(&row, v);
    bp_sql_ledger_row(&event, v + BP_SQL_OUTBOX_N);
    return h->cb(h->user, &row, &event);
}

bp_status bp_store_outbox_claim(bp_store *s, const char *endpoint, const char *owner, long long now,
                                unsigned lease_seconds, size_t max, bp_store_outbox_cb cb, void *user)
{
    claimed ids = {NULL, 0, max};
    bp_status st = BP_OK;
    if (max == 0)
        return BP_OK;
    ids.ids = bp_malloc(max * sizeof(*ids.ids));
    if (ids.ids == NULL)
        return BP_ERR_NOMEM;
    long long until = now + (long long)lease_seconds;
    const bp_sql_value v[] = {bp_sql_text(endpoint), bp_sql_text(owner), bp_sql_int(now), bp_sql_int(until),
                              bp_sql_int((long long)max)};
    static const bp_sql_type id_type[] = {BP_SQL_INT};
    bp_sql_call c = bp_sql_read(BP_SQL_OUTBOX_CLAIM, v, 5, id_type, 1, keep_id, &ids, "claiming outbox rows");
    st = run_in_tx(s, &c, NULL);
    if (st != BP_OK || ids.n == 0)
        goto out;
    /* the claim is committed: the rows are ours until the lease ends; read them */
    bp_sort(ids.ids, ids.n, sizeof(*ids.ids), cmp_id);
    bp_sql_type types[BP_SQL_OUTBOX_N + BP_SQL_LEDGER_N];
    memcpy(types, bp_sql_outbox_types, sizeof(bp_sql_outbox_types));
    memcpy(types + BP_SQL_OUTBOX_N, bp_sql_ledger_types, sizeof(bp_sql_ledger_types));
    const bp_sql_value r[] = {bp_sql_int(ids.ids[0]), bp_sql_int(ids.ids[ids.n - 1]), bp_sql_text(owner),
                              bp_sql_int(until)};
    hand_over h = {&ids, cb, user};
    bp_sql_call read = bp_sql_read(BP_SQL_OUTBOX_CLAIMED, r, 4, types, BP_SQL_OUTBOX_N + BP_SQL_LEDGER_N, hand_row, &h,
                                   "reading claimed outbox rows");
    st = run(s, &read); /* rows not handed over (a failure) come back when the lease ends */
out:
    free(ids.ids);
    return st;
}

/* ---- marks, retry_dead, counts, list --------------------------------------------------- */

bp_status bp_store_outbox_mark(bp_store *s, long long id, const char *owner, bp_outbox_mark how, long long when,
                               const char *error)
{
    bp_sql_value v[4] = {bp_sql_int(id), bp_sql_text(owner), bp_sql_int(when), bp_sql_text(error)};
    /* per mark, in bp_outbox_mark's order: the statement and how many of v[] it takes (DEAD:
     * ?1 id, ?2 owner, ?3 the error) */
    static const struct {
        bp_sql_id id;
        size_t n_params;
    } marks[] = {
        [BP_OUTBOX_DELIVERED] = {BP_SQL_OUTBOX_DELIVERED, 3},
        [BP_OUTBOX_RETRY] = {BP_SQL_OUTBOX_RETRY, 4},
        [BP_OUTBOX_DEAD] = {BP_SQL_OUTBOX_DEAD, 3},
        [BP_OUTBOX_RELEASE] = {BP_SQL_OUTBOX_RELEASE, 2},
    };
    if ((unsigned)how >= sizeof(marks) / sizeof(marks[0]))
        return BP_ERR_USAGE;
    if (how == BP_OUTBOX_DEAD)
        v[2] = bp_sql_text(error);
    bp_sql_call c = {
        .id = marks[how].id, .params = v, .n_params = marks[how].n_params, .what = "marking an outbox row"};
    return run_in_tx(s, &c, changed_a_row);
}

bp_status bp_store_outbox_retry_dead(bp_store *s, const char *endpoint, long long now, long long *count)
{
    const bp_sql_value v[] = {bp_sql_int(now), bp_sql_text(endpoint)};
    bp_sql_call c = {.id = BP_SQL_OUTBOX_RETRY_DEAD, .params = v, .n_params = 2, .what = "retrying dead outbox rows"};
    *count = 0;
    bp_status st = run_in_tx(s, &c, NULL);
    if (st == BP_OK)
        *count = c.changed;
    return st;
}

static int count_row(void *user, const bp_sql_value *v)
{
    bp_sql_walk *w = user;
    return w->cb.outbox_count(w->user, v[0].text, v[1].text, v[2].num, v[3].num, v[4].num);
}

bp_status bp_store_outbox_counts(bp_store *s, const char *endpoint, long long now, bp_store_outbox_count_cb cb,
                                 void *user)
{
    static const bp_sql_type types[] = {BP_SQL_TEXT, BP_SQL_TEXT, BP_SQL_INT, BP_SQL_INT, BP_SQL_INT};
    const bp_sql_value v[] = {bp_sql_int(now), bp_sql_text(endpoint)};
    bp_sql_walk w = {.cb.outbox_count = cb, .user = user};
    bp_sql_call c = bp_sql_read(BP_SQL_OUTBOX_COUNTS, v, 2, types, 5, count_row, &w, "counting outbox rows");
    return run(s, &c);
}

static int list_row(void *user, const bp_sql_value *v)
{
    bp_sql_walk *w = user;
    bp_store_outbox_entry row;
    bp_sql_outbox_row(&row, v);
    return w->cb.outbox_entry(w->user, &row);
}

bp_status bp_store_outbox_list(bp_store *s, long long after_ledger_id, long long last_ledger_id,
                               bp_store_outbox_entry_cb cb, void *user)
{
    const bp_sql_value v[] = {bp_sql_int(after_ledger_id), bp_sql_int(last_ledger_id)};
    bp_sql_walk w = {.cb.outbox_entry = cb, .user = user};
    bp_sql_call c =
        bp_sql_read(BP_SQL_OUTBOX_LIST, v, 2, bp_sql_outbox_types, BP_SQL_OUTBOX_N, list_row, &w, "reading the outbox");
    return run(s, &c);
}
