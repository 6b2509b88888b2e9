/*
 * cmd_report.c - bouncepipe report --html FILE [--since DATE] [--db PATH] [--config FILE]
 *                [--title TEXT]
 *
 * Writes the self-contained HTML report (emit/html_report.c) of the store.  This file is the
 * adapter between the store interface and the renderer's plain data: it asks the store for
 * counts, which the database groups (no ledger row is read here) -
 *   bp_store_stats()          events by action, suppressions by kind, lifted ones;
 *   bp_store_group_counts()   events per UTC day and type, per receiving domain and category,
 *                             per deciding rule, per named blocklist; new suppressions (lifted
 *                             ones too) per day of their first evidence and before --since;
 * and counts the quarantine Maildir's messages (new/ and cur/).  Traffic streams and sending
 * IPs are not in the ledger yet: those sections say "no data" and why (docs/report.md).
 *
 * FILE "-" is standard output; otherwise FILE is written as FILE.XXXXXX, fsynced and renamed
 * over FILE, mode 0644.  Exit status: 0; 1 store or output failure; 64 usage; 75 store busy;
 * 78 configuration.
 *
 * Ownership: every count and name is held in GLib hash tables and arrays of the run and freed
 * before returning.
 */
#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/report_html.h"
#include "cli.h"

/* A two-level count: key -> (column -> n), with row totals. */
typedef struct table {
    GHashTable *rows; /* char * -> GHashTable (char * -> long long *) */
    GHashTable *cols; /* char * -> long long * (column totals) */
} table;

typedef struct run {
    long long since;
    long long events;
    table day_type, domain_category;
    GHashTable *rules, *blocklists, *growth; /* char * -> long long * */
    long long growth_base;
} run;

static void count(GHashTable *t, const char *key, long long n)
{
    long long *v = g_hash_table_lookup(t, key);
    if (v == NULL) {
        v = g_new0(long long, 1);
        g_hash_table_insert(t, g_strdup(key), v);
    }
    *v += n;
}

static GHashTable *counts_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static void table_init(table *t)
{
    t->rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
    t->cols = counts_new();
}

static void table_free(table *t)
{
    if (t->rows != NULL)
        g_hash_table_unref(t->rows);
    if (t->cols != NULL)
        g_hash_table_unref(t->cols);
}

static void table_add(table *t, const char *row, const char *col, long long n)
{
    GHashTable *r = g_hash_table_lookup(t->rows, row);
    if (r == NULL) {
        r = counts_new();
        g_hash_table_insert(t->rows, g_strdup(row), r);
    }
    count(r, col, n);
    count(t->cols, col, n);
}

/* ---- the store's grouped counts (bp_store_group_counts()) ------------------------------- */

static int on_day_type(void *user, const char *day, const char *type, long long n)
{
    run *r = user;
    r->events += n;
    table_add(&r->day_type, day != NULL ? day : "unknown", type != NULL ? type : "unknown", n);
    return 0;
}

static int on_domain_category(void *user, const char *domain, const char *what, long long n)
{
    run *r = user;
    table_add(&r->domain_category, domain != NULL ? domain : "unknown", what != NULL ? what : "unknown", n);
    return 0;
}

static int on_rule(void *user, const char *rule, const char *unused, long long n)
{
    (void)unused;
    count(((run *)user)->rules, rule != NULL ? rule : "unknown", n);
    return 0;
}

static int on_blocklist(void *user, const char *blocklist, const char *unused, long long n)
{
    (void)unused;
    count(((run *)user)->blocklists, blocklist != NULL ? blocklist : "unknown", n);
    return 0;
}

static int on_growth(void *user, const char *day, const char *unused, long long n)
{
    run *r = user;
    (void)unused;
    if (day == NULL) /* first evidence before --since: on the list when the chart starts */
        r->growth_base += n;
    else
        count(r->growth, day, n);
    return 0;
}

typedef struct stats_keep {
    GPtrArray *action_keys, *kind_keys;
    GArray *action_values, *kind_values;
    long long lifted;
} stats_keep;

static int on_stats(void *user, bp_stats_dim dim, const char *key, long long n)
{
    stats_keep *k = user;
    if (dim == BP_STATS_ACTION) {
        g_ptr_array_add(k->action_keys, g_strdup(key));
        g_array_append_val(k->action_values, n);
    } else if (dim == BP_STATS_SUPPRESSED) {
        g_ptr_array_add(k->kind_keys, g_strdup(key));
        g_array_append_val(k->kind_values, n);
    } else if (dim == BP_STATS_LIFTED) {
        k->lifted += n;
    }
    return 0;
}

/* ---- from hash tables to the renderer's arrays ----------------------------------------- */

typedef struct kv {
    const char *key;
    long long n;
} kv;

static gint by_count_desc(gconstpointer a, gconstpointer b)
{
    const kv *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->key, y->key);
}

static gint by_key(gconstpointer a, gconstpointer b)
{
    return strcmp(((const kv *)a)->key, ((const kv *)b)->key);
}

/* Sorted (key, n) pairs of a count table; keys borrowed from it. */
static GArray *sorted(GHashTable *t, GCompareFunc cmp)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(kv));
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        kv e = {k, *(long long *)v};
        g_array_append_val(a, e);
    }
    g_array_sort(a, cmp);
    return a;
}

typedef struct flat {
    GArray *rows, *cols; /* kv */
    GPtrArray *row_keys, *col_keys;
    long long *cells;
} flat;

/* A table as the renderer's matrix: rows ordered by @p row_order, columns busiest first. */
static void flatten(table *t, GCompareFunc row_order, flat *f, bp_report_matrix *m)
{
    GHashTable *totals = counts_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t->rows);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        GHashTableIter ci;
        gpointer ck, cv;
        count(totals, k, 0); /* a row without counts (an empty day) is a row too */
        g_hash_table_iter_init(&ci, v);
        while (g_hash_table_iter_next(&ci, &ck, &cv))
            count(totals, k, *(long long *)cv);
    }
    GArray *rows = sorted(totals, row_order);
    f->rows = g_array_new(FALSE, FALSE, sizeof(kv));
    f->row_keys = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < rows->len; i++) {
        kv e = g_array_index(rows, kv, i);
        g_ptr_array_add(f->row_keys, g_strdup(e.key));
    }
    g_array_free(rows, TRUE);
    g_hash_table_unref(totals);
    f->cols = sorted(t->cols, by_count_desc);
    f->col_keys = g_ptr_array_new();
    for (guint i = 0; i < f->cols->len; i++)
        g_ptr_array_add(f->col_keys, (gpointer)g_array_index(f->cols, kv, i).key);
    f->cells = g_new0(long long, (gsize)f->row_keys->len *(f->cols->len ? f->cols->len : 1));
    for (guint r = 0; r < f->row_keys->len; r++) {
        GHashTable *row = g_hash_table_lookup(t->rows, g_ptr_array_index(f->row_keys, r));
        for (guint c = 0; c < f->cols->len; c++) {
            long long *n = g_hash_table_lookup(row, g_ptr_array_index(f->col_keys, c));
            f->cells[(gsize)r * f->cols->len + c] = n != NULL ? *n : 0;
        }
    }
    m->rows = (const char *const *)f->row_keys->pdata;
    m->n_rows = f->row_keys->len;
    m->cols = (const char *const *)f->col_keys->pdata;
    m->n_cols = f->cols->len;
    m->cells = f->cells;
}

static void flat_free(flat *f)
{
    if (f->rows != NULL)
        g_array_free(f->rows, TRUE);
    if (f->cols != NULL)
        g_array_free(f->cols, TRUE);
    if (f->row_keys != NULL)
        g_ptr_array_unref(f->row_keys);
    if (f->col_keys != NULL)
        g_ptr_array_unref(f->col_keys);
    g_free(f->cells);
}

typedef struct list {
    GArray *kv;
    GPtrArray *keys;
    GArray *values;
} list;

static void to_counts(GHashTable *t, GCompareFunc order, list *l, bp_report_counts *c)
{
    l->kv = sorted(t, order);
    l->keys = g_ptr_array_new();
    l->values = g_array_new(FALSE, FALSE, sizeof(long long));
    for (guint i = 0; i < l->kv->len; i++) {
        kv e = g_array_index(l->kv, kv, i);
        g_ptr_array_add(l->keys, (gpointer)e.key);
        g_array_append_val(l->values, e.n);
    }
    c->keys = (const char *const *)l->keys->pdata;
    c->values = (const long long *)(void *)l->values->data;
    c->n = l->kv->len;
}

static void list_free(list *l)
{
    if (l->kv != NULL)
        g_array_free(l->kv, TRUE);
    if (l->keys != NULL)
        g_ptr_array_unref(l->keys);
    if (l->values != NULL)
        g_array_free(l->values, TRUE);
}

/* Messages in a Maildir (new/ and cur/); 0 when it does not exist yet (it is made at the first
 * quarantined message); -1 when it cannot be read. */
static long long maildir_count(const char *dir)
{
    static const char *const subs[] = {"new", "cur"};
    long long n = 0;
    struct stat sbuf;
    if (stat(dir, &sbuf) != 0 && errno == ENOENT)
        return 0;
    for (size_t i = 0; i < 2; i++) {
        char *path = g_build_filename(dir, subs[i], NULL);
        DIR *d = opendir(path);
        int missing = d == NULL && errno == ENOENT;
        g_free(path);
        if (d == NULL) {
            if (missing)
                continue;
            return -1;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                n++;
        closedir(d);
    }
    return n;
}

/* Every UTC day from the first to the last key of @p t ("YYYY-MM-DD"), so that a daily chart
 * has a column for each day, empty ones included; at most the latest BP_REPORT_MAX_DAYS. */
static void fill_days(GHashTable *t, int is_table)
{
    GDate first, last;
    int have = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        GDate d;
        int y, m, dd;
        g_date_clear(&d, 1);
        if (sscanf(k, "%4d-%2d-%2d", &y, &m, &dd) != 3 || !g_date_valid_dmy(dd, m, y))
            continue;
        g_date_set_dmy(&d, dd, m, y);
        if (!have || g_date_compare(&d, &first) < 0)
            first = d;
        if (!have || g_date_compare(&d, &last) > 0)
            last = d;
        have = 1;
    }
    if (!have)
        return;
    GDate d = last;
    for (guint i = 0; i < BP_REPORT_MAX_DAYS && g_date_compare(&d, &first) >= 0; i++) {
        char key[16];
        g_date_strftime(key, sizeof(key), "%Y-%m-%d", &d);
        if (!g_hash_table_contains(t, key))
            g_hash_table_insert(t, g_strdup(key), is_table ? (gpointer)counts_new() : (gpointer)g_new0(long long, 1));
        g_date_subtract_days(&d, 1);
    }
}

/* The sorted lists the renderer reads, owned by the run. */
struct report_lists {
    flat days, receivers;
    list rules, blocklists, growth;
};

static const struct option report_options[] = {
    {"html", required_argument, NULL, 'o'}, {"title", required_argument, NULL, 't'}, {NULL, 0, NULL, 0}};
static const bp_cli_command report_command = {
    "report",
    BP_OPT_STORE | BP_OPT_SINCE,
    report_options,
    0,
    NULL,
    0,
    0,
    "usage: bouncepipe report --html FILE [--since DATE] [--title TEXT] [--db PATH] [--config FILE]\n",
    BP_CLI_SETUP_NONE, /* --html is checked first */
};

struct report_args {
    const char *output, *title;
};

static int report_option(void *user, int opt, const char *arg)
{
    struct report_args *a = user;
    switch (opt) {
    case 'o': a->output = arg; return 0;
    case 't': a->title = arg; return 0;
    default: return BP_EXIT_USAGE;
    }
}

/* The store's counts, in @p r and @p keep.  @return the store's status. */
static bp_status report_read(bp_store *store, long long since, run *r, stats_keep *keep)
{
    static const struct {
        bp_group_dim dim;
        bp_group_cb cb;
    } groups[] = {{BP_GROUP_DAY_TYPE, on_day_type},
                  {BP_GROUP_DOMAIN_CATEGORY, on_domain_category},
                  {BP_GROUP_RULE, on_rule},
                  {BP_GROUP_BLOCKLIST, on_blocklist},
                  {BP_GROUP_NEW_SUPPRESSIONS, on_growth}};
    bp_store_filter filter;
    memset(&filter, 0, sizeof(filter));
    filter.since = since;
    bp_status st = bp_store_stats(store, &filter, on_stats, keep);
    for (size_t i = 0; st == BP_OK && i < sizeof(groups) / sizeof(groups[0]); i++)
        st = bp_store_group_counts(store, groups[i].dim, &filter, groups[i].cb, r);
    return st;
}

/* Everything the renderer shows, from what was read. */
static void report_data(bp_cli_env *env, const struct report_args *args, run *r, stats_keep *keep,
                        struct report_lists *l, bp_report_data *d)
{
    d->title = args->title != NULL ? args->title : "bouncepipe report";
    d->source = bp_cli_db_shown(env);
    d->generated = (long long)time(NULL);
    d->since = r->since;
    d->events = r->events;
    d->by_action.keys = (const char *const *)keep->action_keys->pdata;
    d->by_action.values = (const long long *)(void *)keep->action_values->data;
    d->by_action.n = keep->action_keys->len;
    d->suppressed.keys = (const char *const *)keep->kind_keys->pdata;
    d->suppressed.values = (const long long *)(void *)keep->kind_values->data;
    d->suppressed.n = keep->kind_keys->len;
    d->lifted = keep->lifted;
    fill_days(r->day_type.rows, 1);
    fill_days(r->growth, 0);
    flatten(&r->day_type, by_key, &l->days, &d->day_type);
    flatten(&r->domain_category, by_count_desc, &l->receivers, &d->domain_category);
    to_counts(r->growth, by_key, &l->growth, &d->growth);
    d->growth_base = r->growth_base;
    to_counts(r->rules, by_count_desc, &l->rules, &d->rules);
    to_counts(r->blocklists, by_count_desc, &l->blocklists, &d->blocklists);
    d->stream_missing = "the ledger does not record a traffic stream or deliveries per stream yet";
    d->ip_missing = "the ledger does not record the sending IP of a bounce yet";
    d->quarantine_dir = env->config.quarantine_dir;
    d->quarantine = d->quarantine_dir != NULL ? maildir_count(d->quarantine_dir) : -1;
}

static int report_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct report_args *args = user;
    bp_store *store = NULL;
    run r;
    stats_keep keep = {g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free),
                       g_array_new(FALSE, FALSE, sizeof(long long)), g_array_new(FALSE, FALSE, sizeof(long long)), 0};
    struct report_lists lists;
    bp_report_data d;
    bp_strbuf sb = {0};
    memset(&r, 0, sizeof(r));
    memset(&lists, 0, sizeof(lists));
    memset(&d, 0, sizeof(d));
    table_init(&r.day_type);
    table_init(&r.domain_category);
    r.rules = counts_new();
    r.blocklists = counts_new();
    r.growth = counts_new();
    int rc = BP_EXIT_OK;
    if (args->output == NULL) {
        bp_cli_usage(&report_command, stderr);
        rc = BP_EXIT_USAGE;
        goto out;
    }
    r.since = env->since;
    if (bp_cli_config_setup(env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    rc = bp_cli_store_ready(env, 1, 1, &store); /* no store yet: an empty report */
    if (rc != BP_EXIT_OK)
        goto out;
    bp_status st = store != NULL ? report_read(store, r.since, &r, &keep) : BP_OK;
    if (st != BP_OK) {
        rc = bp_cli_store_failed(env, store, st);
        goto out;
    }
    report_data(env, args, &r, &keep, &lists, &d);
    if (bp_report_html(&d, &sb) != BP_OK) {
        bp_cli_error("report", "out of memory");
        rc = BP_EXIT_FAILURE;
        goto out;
    }
    rc = bp_cli_output(env, BP_OK, &sb, args->output, -1);
out:
    flat_free(&lists.days);
    flat_free(&lists.receivers);
    list_free(&lists.rules);
    list_free(&lists.blocklists);
    list_free(&lists.growth);
    table_free(&r.day_type);
    table_free(&r.domain_category);
    g_hash_table_unref(r.rules);
    g_hash_table_unref(r.blocklists);
    g_hash_table_unref(r.growth);
    g_ptr_array_unref(keep.action_keys);
    g_ptr_array_unref(keep.kind_keys);
    g_array_free(keep.action_values, TRUE);
    g_array_free(keep.kind_values, TRUE);
    bp_strbuf_free(&sb);
    bp_store_close(store);
    return rc;
}

const bp_cli_entry bp_cli_report = {&report_command, report_option, report_main, sizeof(struct report_args), NULL};
