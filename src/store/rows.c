/*
 * rows.c - the rows store.c reads and writes, through a backend's one runner (see rows.h).
 *
 * Each function names a statement of sql.c, binds its values in the order of the statement's
 * parameters, and hands the result rows, made into the rows of store.h by sql.c's column
 * layout, to the caller's callback.  The backend runs the statement (store_backend.h run());
 * the only thing a backend adds is the lock of an address key (lock(), PostgreSQL).
 *
 * Ownership: nothing is kept; rows lent to a callback borrow the backend's result row.
 */
#include "rows.h"

#include <stdio.h>

#include "sql.h"

/* Statement @p id with @p n values; result rows of @p n_cols columns of @p types go to @p row.
 * @param rows receives the rows handed to @p row (may be NULL) */
static bp_status run(const bp_store_backend *be, void *h, bp_sql_id id, const bp_sql_value *v, size_t n,
                     const bp_sql_type *types, size_t n_cols, bp_sql_row_fn row, void *user, const char *what,
                     long long *rows)
{
    bp_sql_call c = bp_sql_read(id, v, n, types, n_cols, row, user, what);
    bp_status st = be->run(h, &c);
    if (rows != NULL)
        *rows = c.rows;
    return st;
}

/* A statement without result rows. */
static bp_status write_row(const bp_store_backend *be, void *h, bp_sql_id id, const bp_sql_value *v, size_t n,
                           const char *what)
{
    return run(be, h, id, v, n, NULL, 0, NULL, NULL, what, NULL);
}

/* Inside a write transaction, the lock of address key @p key where the backend has one. */
static bp_status lock(const bp_store_backend *be, void *h, const char *key)
{
    return be->lock != NULL ? be->lock(h, key) : BP_OK;
}

/* BP_ERR_NOT_FOUND for a read of one row that found none. */
static bp_status one_row(bp_status st, long long rows)
{
    return st == BP_OK && rows == 0 ? BP_ERR_NOT_FOUND : st;
}

bp_status bp_rows_mark(const bp_store_backend *be, void *h, const char *fingerprint, const bp_unit_facts *facts,
                       int state, long long now)
{
    bp_sql_value v[BP_SQL_MARK_N];
    bp_sql_mark_values(fingerprint, facts, state, now, v);
    return write_row(be, h, BP_SQL_MARK, v, BP_SQL_MARK_N, "recording a fingerprint");
}

bp_status bp_rows_drop_placeholder(const bp_store_backend *be, void *h, const char *fingerprint)
{
    const bp_sql_value v[] = {bp_sql_text(fingerprint)};
    return write_row(be, h, BP_SQL_DROP_PLACEHOLDER, v, 1, "replacing an unrecognised message");
}

/* ---- the ledger ------------------------------------------------------------------------ */

static int ledger_each(void *ctx, const bp_sql_value *v)
{
    bp_sql_walk *w = ctx;
    bp_ledger_row r;
    bp_sql_ledger_row(&r, v);
    return w->cb.ledger(w->user, &r);
}

static int fold_each(void *ctx, const bp_sql_value *v)
{
    bp_sql_walk *w = ctx;
    bp_ledger_row r;
    bp_sql_fold_row(&r, v, w->address);
    return w->cb.ledger(w->user, &r);
}

static bp_status ledger_read(const bp_store_backend *be, void *h, bp_sql_id id, const bp_sql_value *v, size_t n,
                             bp_ledger_cb cb, void *user)
{
    bp_sql_walk w = {.cb.ledger = cb, .user = user};
    return run(be, h, id, v, n, bp_sql_ledger_types, BP_SQL_LEDGER_N, ledger_each, &w, "reading the ledger", NULL);
}

bp_status bp_rows_ledger_for(const bp_store_backend *be, void *h, const char *key, bp_ledger_cb cb, void *user)
{
    const bp_sql_value v[] = {bp_sql_text(key)};
    bp_status st = lock(be, h, key);
    return st == BP_OK ? ledger_read(be, h, BP_SQL_LEDGER_FOR, v, 1, cb, user) : st;
}

bp_status bp_rows_ledger_fold(const bp_store_backend *be, void *h, const char *key, long long after_time,
                              long long after_id, bp_ledger_cb cb, void *user)
{
    bp_sql_walk w = {.cb.ledger = cb, .user = user, .address = key};
    const bp_sql_value v[] = {bp_sql_text(key), bp_sql_int(after_time), bp_sql_int(after_id)};
    bp_status st = lock(be, h, key);
    if (st != BP_OK)
        return st;
    return run(be, h, BP_SQL_LEDGER_FOLD, v, 3, bp_sql_fold_types, BP_SQL_FOLD_N, fold_each, &w, "reading the ledger",
               NULL);
}

bp_status bp_rows_ledger_page(const bp_store_backend *be, void *h, long long after_id, long long limit, int events_only,
                              bp_ledger_cb cb, void *user)
{
    const bp_sql_value v[] = {bp_sql_int(after_id), bp_sql_int(limit), bp_sql_int(events_only != 0)};
    return ledger_read(be, h, BP_SQL_LEDGER_PAGE, v, 3, cb, user);
}

bp_status bp_rows_ledger_units(const bp_store_backend *be, void *h, long long after_id, long long last_id,
                               bp_ledger_cb cb, void *user)
{
    const bp_sql_value v[] = {bp_sql_int(after_id), bp_sql_int(last_id)};
    return ledger_read(be, h, BP_SQL_LEDGER_UNITS, v, 2, cb, user);
}

bp_status bp_rows_ledger_reclassify(const bp_store_backend *be, void *h, long long id, const char *category,
                                    const char *rule, bp_action action, const char *blocklist)
{
    const bp_sql_value v[] = {bp_sql_int(id), bp_sql_text(category), bp_sql_text(rule),
                              bp_sql_text(bp_action_name(action)), bp_sql_text(blocklist)};
    return write_row(be, h, BP_SQL_LEDGER_RECLASSIFY, v, 5, "updating the ledger");
}

bp_status bp_rows_ledger_pair(const bp_store_backend *be, void *h, long long id, long long first)
{
    const bp_sql_value v[] = {bp_sql_int(id), bp_sql_int(first)};
    return write_row(be, h, BP_SQL_LEDGER_PAIR, v, 2, "writing the ledger");
}

bp_status bp_rows_ledger_unpair(const bp_store_backend *be, void *h, long long id)
{
    const bp_sql_value v[] = {bp_sql_int(id)};
    return write_row(be, h, BP_SQL_LEDGER_UNPAIR, v, 1, "writing the ledger");
}

/* A text column into a caller's buffer (cut to its size). */
typedef struct text_out {
    char *buf;
    size_t size;
    int found;
} text_out;

static int copy_text(void *ctx, const bp_sql_value *v)
{
    text_out *o = ctx;
    if (v[0].text != NULL) {
        snprintf(o->buf, o->size, "%s", v[0].text);
        o->found = 1;
    }
    return 1;
}

/* The first column of the first row of statement @p id, of parameter @p param; BP_ERR_NOT_FOUND
 * when there is no row or it is NULL. */
static bp_status read_text(const bp_store_backend *be, void *h, bp_sql_id id, const char *param, char *buf, size_t size,
                           const char *what)
{
    static const bp_sql_type types[] = {BP_SQL_TEXT};
    const bp_sql_value v[] = {bp_sql_text(param)};
    text_out o = {buf, size, 0};
    bp_status st = run(be, h, id, v, 1, types, 1, copy_text, &o, what, NULL);
    return st == BP_OK && !o.found ? BP_ERR_NOT_FOUND : st;
}

bp_status bp_rows_first_spelling(const bp_store_backend *be, void *h, const char *key, char *buf, size_t size)
{
    return read_text(be, h, BP_SQL_FIRST_SPELLING, key, buf, size, "reading the ledger");
}

bp_status bp_rows_unit_envid(const bp_store_backend *be, void *h, const char *fingerprint, char *buf, size_t size)
{
    return read_text(be, h, BP_SQL_UNIT_ENVID, fingerprint, buf, size, "reading a unit");
}

/* ---- rows kept under a key: suppressions, fold states, acct positions ---------------------- */

/* A row kind kept under a key (suppressions and fold states by address key, positions by
 * stream): its statements, its columns, where the key's lock comes first, its words. */
typedef struct keyed {
    bp_sql_id get, put, del; /* del BP_SQL_COUNT: never deleted */
    const bp_sql_type *types;
    size_t n;
    int lock_get, lock_delete;
    const char *reading, *writing;
} keyed;

/* the store decides from a suppression row (remove, add): it is read under the address's
 * lock; the fold state too, so that the state another writer commits meanwhile is seen whole
 * and no other writer changes it until this transaction ends */
enum { SUPPRESSIONS, STATES, POSITIONS };
static const keyed kinds[] = {
    [SUPPRESSIONS] = {BP_SQL_SUPP_GET, BP_SQL_SUPP_PUT, BP_SQL_SUPP_DELETE, bp_sql_suppression_types,
                      BP_SQL_SUPPRESSION_N, 1, 0, "reading the suppression list", "writing the suppression list"},
    [STATES] = {BP_SQL_STATE_GET, BP_SQL_STATE_PUT, BP_SQL_STATE_DELETE, bp_sql_state_types, BP_SQL_STATE_N, 1, 1,
                "reading the fold state", "writing the fold state"},
    [POSITIONS] = {BP_SQL_POSITION_GET, BP_SQL_POSITION_PUT, BP_SQL_COUNT, bp_sql_position_types, BP_SQL_POSITION_N, 0,
                   0, "reading the accounting position", "writing the accounting position"},
};

/* The row of @p key to @p each with @p w; BP_ERR_NOT_FOUND when there is none. */
static bp_status keyed_get(const bp_store_backend *be, void *h, const keyed *k, const char *key, bp_sql_row_fn each,
                           bp_sql_walk *w)
{
    long long rows = 0;
    const bp_sql_value v[] = {bp_sql_text(key)};
    bp_status st = k->lock_get ? lock(be, h, key) : BP_OK;
    if (st == BP_OK)
        st = run(be, h, k->get, v, 1, k->types, k->n, each, w, k->reading, &rows);
    return one_row(st, rows);
}

static bp_status keyed_delete(const bp_store_backend *be, void *h, const keyed *k, const char *key)
{
    const bp_sql_value v[] = {bp_sql_text(key)};
    bp_status st = k->lock_delete ? lock(be, h, key) : BP_OK;
    return st == BP_OK ? write_row(be, h, k->del, v, 1, k->writing) : st;
}

static int suppression_each(void *ctx, const bp_sql_value *v)
{
    bp_sql_walk *w = ctx;
    bp_suppression r;
    bp_sql_suppression_row(&r, v);
    return w->cb.suppression(w->user, &r);
}

bp_status bp_rows_suppression_get(const bp_store_backend *be, void *h, const char *key, bp_suppression_cb cb,
                                  void *user)
{
    bp_sql_walk w = {.cb.suppression = cb, .user = user};
    return keyed_get(be, h, &kinds[SUPPRESSIONS], key, suppression_each, &w);
}

bp_status bp_rows_suppression_put(const bp_store_backend *be, void *h, const bp_suppression *r)
{
    bp_sql_value v[BP_SQL_SUPPRESSION_N];
    bp_sql_suppression_values(r, v);
    return write_row(be, h, kinds[SUPPRESSIONS].put, v, kinds[SUPPRESSIONS].n, kinds[SUPPRESSIONS].writing);
}

bp_status bp_rows_suppression_delete(const bp_store_backend *be, void *h, const char *key)
{
    return keyed_delete(be, h, &kinds[SUPPRESSIONS], key);
}

/* No filter: everything (bp_store_export(), bp_store_stats() with NULL). */
static const bp_store_filter no_filter;

bp_status bp_rows_suppression_list(const bp_store_backend *be, void *h, const bp_store_filter *f, bp_suppression_cb cb,
                                   void *user)
{
    f = f != NULL ? f : &no_filter;
    bp_sql_walk w = {.cb.suppression = cb, .user = user};
    const bp_sql_value v[] = {bp_sql_int(f->since), bp_sql_text(f->type), bp_sql_text(f->category),
                              bp_sql_text(f->domain), bp_sql_int(f->include_lifted != 0)};
    return run(be, h, BP_SQL_SUPP_LIST, v, 5, kinds[SUPPRESSIONS].types, kinds[SUPPRESSIONS].n, suppression_each, &w,
               kinds[SUPPRESSIONS].reading, NULL);
}

/* the one row of a key: its callback's result is not asked */
static int state_each(void *ctx, const bp_sql_value *v)
{
    bp_sql_walk *w = ctx;
    bp_fold_state s;
    bp_sql_state_row(&s, v);
    w->cb.state(w->user, &s);
    return 1;
}

bp_status bp_rows_state_get(const bp_store_backend *be, void *h, const char *key, bp_fold_state_cb cb, void *user)
{
    bp_sql_walk w = {.cb.state = cb, .user = user};
    return keyed_get(be, h, &kinds[STATES], key, state_each, &w);
}

bp_status bp_rows_state_put(const bp_store_backend *be, void *h, const bp_fold_state *s)
{
    bp_sql_value v[BP_SQL_STATE_N];
    bp_sql_state_values(s, v);
    return write_row(be, h, kinds[STATES].put, v, kinds[STATES].n, kinds[STATES].writing);
}

bp_status bp_rows_state_delete(const bp_store_backend *be, void *h, const char *key)
{
    return keyed_delete(be, h, &kinds[STATES], key);
}

static int position_each(void *ctx, const bp_sql_value *v)
{
    bp_sql_walk *w = ctx;
    bp_acct_position pos;
    bp_sql_position_row(&pos, v);
    w->cb.position(w->user, &pos);
    return 1;
}

bp_status bp_rows_position_get(const bp_store_backend *be, void *h, const char *stream, bp_acct_position_cb cb,
                               void *user)
{
    bp_sql_walk w = {.cb.position = cb, .user = user};
    return keyed_get(be, h, &kinds[POSITIONS], stream, position_each, &w);
}

bp_status bp_rows_position_put(const bp_store_backend *be, void *h, const bp_acct_position *pos)
{
    bp_sql_value v[BP_SQL_POSITION_N];
    bp_sql_position_values(pos, v);
    return write_row(be, h, kinds[POSITIONS].put, v, kinds[POSITIONS].n, kinds[POSITIONS].writing);
}

/* ---- the counts of bp_store_stats() ---------------------------------------------------- */

static int stats_each(void *ctx, const bp_sql_value *v)
{
    bp_sql_walk *w = ctx;
    char day[32];
    bp_stats_dim dim = (bp_stats_dim)w->dim;
    w->stopped = w->cb.stats(w->user, dim, bp_sql_stats_key(dim, v[0].text, day, sizeof(day)), v[1].num) != 0;
    return w->stopped;
}

bp_status bp_rows_stats(const bp_store_backend *be, void *h, const bp_store_filter *f, bp_stats_cb cb, void *user)
{
    f = f != NULL ? f : &no_filter;
    static const bp_sql_type types[] = {BP_SQL_TEXT, BP_SQL_INT};
    const bp_sql_value since[] = {bp_sql_int(f->since)};
    for (size_t i = 0; i < BP_STATS_DIM_LAST; i++) {
        bp_sql_walk w = {.cb.stats = cb, .user = user, .dim = (int)bp_sql_stats[i].dim};
        bp_status st = run(be, h, bp_sql_stats[i].id, since, bp_sql_stats[i].uses_since ? 1 : 0, types, 2, stats_each,
                           &w, "counting", NULL);
        if (st != BP_OK || w.stopped)
            return st;
    }
    return BP_OK;
}
