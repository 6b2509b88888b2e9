/*
 * store_tx.c - a store's transactions and its extensions' statements (store_handle.h).
 *
 * bp_store_begin(), bp_store_commit(), bp_store_rollback(): the backend's transaction with
 * store.c's work around it (its hooks); bp_store_sql_run(): an extension's statement through
 * the backend's one runner.  The extensions (signals.c, outbox.c, dmarc_store.c) call these,
 * never store.c, which calls them.
 *
 * Ownership: nothing here allocates; the handle is store.c's.
 */
#include <stdio.h>

#include "signals_sql.h"
#include "sql.h"
#include "store_backend.h"
#include "store_handle.h"

const bp_store_backend *bp_store_backend_of(bp_store *s, void **handle)
{
    *handle = s->h;
    return s->be;
}

void bp_store_set_error(bp_store *s, const char *message)
{
    snprintf(s->error, sizeof(s->error), "%s", message);
}

bp_status bp_store_begin(bp_store *s)
{
    s->error[0] = '\0';
    s->hooks->reset(s);
    bp_status st = s->be->begin(s->h);
    if (st == BP_OK)
        s->in_tx = 1;
    return st;
}

bp_status bp_store_commit(bp_store *s)
{
    bp_status st = s->hooks->before_commit(s);
    if (st == BP_OK)
        st = s->be->commit(s->h);
    else
        s->be->rollback(s->h);
    if (st == BP_OK)
        s->hooks->committed(s);
    s->hooks->reset(s);
    s->in_tx = 0;
    return st;
}

void bp_store_rollback(bp_store *s)
{
    s->be->rollback(s->h);
    s->hooks->reset(s);
    s->in_tx = 0;
}

bp_status bp_store_sql_run(bp_store *s, const bp_sql_stmt *stmt, const bp_sql_value *v, size_t n, bp_sql_row_fn each,
                           void *user, long long *changes)
{
    if (stmt->n_cols > BP_SQL_STMT_MAX_COLS)
        BP_INTERNAL_ERROR("an extension's statement has too many columns");
    bp_sql_call c = {.stmt = stmt,
                     .params = v,
                     .n_params = n,
                     .types = stmt->types,
                     .n_cols = stmt->n_cols,
                     .row = each,
                     .user = user,
                     .what = each != NULL ? "reading" : "writing"};
    bp_status st = s->be->run(s->h, &c);
    if (changes != NULL)
        *changes = st == BP_OK ? c.changed : 0;
    return st;
}

int bp_store_sql_in_tx(const bp_store *s)
{
    return s->in_tx;
}

bp_signal_acc **bp_store_signal_acc(bp_store *s)
{
    return &s->signals;
}
