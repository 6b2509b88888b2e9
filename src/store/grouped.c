/*
 * grouped.c - the report's grouped counts (store.h bp_store_group_counts(); docs/report.md):
 * events per UTC day and type, per receiving domain and category, per rule and per blocklist,
 * and new suppressions per day, each one GROUP BY of sql.c run by the database, so that the
 * report reads counts, not the ledger's rows.
 *
 * Days are counted by day number (evidence_time / 86400, the same in both dialects) and
 * written YYYY-MM-DD here (bp_sql_stats_key()).
 *
 * Ownership: keys handed to the callback live until it returns.
 */
#include "sql.h"
#include "store_backend.h"

static int group_row(void *user, const bp_sql_value *v)
{
    bp_sql_walk *w = user;
    char day[32];
    const char *key1 = v[0].is_null ? NULL : v[0].text;
    if (key1 != NULL && (w->dim == BP_GROUP_DAY_TYPE || w->dim == BP_GROUP_NEW_SUPPRESSIONS))
        key1 = bp_sql_stats_key(BP_STATS_DAY, key1, day, sizeof(day));
    return w->cb.group(w->user, key1, v[1].is_null ? NULL : v[1].text, v[2].num);
}

bp_status bp_store_group_counts(bp_store *s, bp_group_dim dim, const bp_store_filter *filter, bp_group_cb cb,
                                void *user)
{
    static const bp_sql_id ids[BP_GROUP_DIM_LAST] = {
        [BP_GROUP_DAY_TYPE] = BP_SQL_GROUP_DAY_TYPE,
        [BP_GROUP_DOMAIN_CATEGORY] = BP_SQL_GROUP_DOMAIN_CATEGORY,
        [BP_GROUP_RULE] = BP_SQL_GROUP_RULE,
        [BP_GROUP_BLOCKLIST] = BP_SQL_GROUP_BLOCKLIST,
        [BP_GROUP_NEW_SUPPRESSIONS] = BP_SQL_GROUP_NEW_SUPPRESSIONS,
    };
    static const bp_sql_type types[] = {BP_SQL_TEXT, BP_SQL_TEXT, BP_SQL_INT};
    if ((unsigned)dim >= BP_GROUP_DIM_LAST)
        return BP_ERR_USAGE;
    const bp_sql_value v[] = {bp_sql_int(filter != NULL ? filter->since : 0)};
    bp_sql_walk w = {.cb.group = cb, .user = user, .dim = (int)dim};
    bp_sql_call c = bp_sql_read(ids[dim], v, 1, types, 3, group_row, &w, "counting");
    void *h = NULL;
    const bp_store_backend *be = bp_store_backend_of(s, &h);
    return be->run(h, &c);
}
