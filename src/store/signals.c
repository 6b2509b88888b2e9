/*
 * signals.c - the signal counts and alert states of the store (signals.h, signals_sql.h).
 *
 * The accumulator (bp_signal_acc): what a transaction adds to signal_counts, kept in memory
 * per key (hour, sending IP, VMTA, stream, receiver, block list) and written by
 * bp_signal_acc_flush() just before the transaction commits - one upsert per key, however
 * many records (an acct batch of 1,000 deliveries to a few receivers writes a few rows), in
 * key order.  It also holds the accounting watermark of the transaction's host (read at its
 * first record, written at the flush).  store.c owns it and calls the flush, the reset (after
 * commit or rollback) and the count of every event bp_store_record() writes.
 *
 * The statements run through the store's extension runner (sql.h bp_sql_stmt), the same on
 * SQLite and PostgreSQL; unknown key parts are '' in the table (NULL in rows handed out).
 * A window's sums per key (bp_store_signal_rows()) are added up here, in a GLib balanced
 * tree, and handed out in its key order: on SQLite from the window's hourly rows read in the
 * primary key's order, as its GROUP BY sorted every one of them first (a 7-day window: a
 * quarter of a million rows into a few thousand keys, most of the command's time);
 * PostgreSQL's GROUP BY sums by hash and sends the keys' sums.
 *
 * Ownership: the accumulator and a window's sums own copies of their keys; rows handed to
 * callbacks borrow the backend's result or the window's sums.
 */
#include "bouncepipe/signals.h"
#include "bouncepipe/alloc.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/limits.h"
#include "signals_sql.h"
#include "sql.h"
#include "store_backend.h"

/* ---- statements --------------------------------------------------------------------- */

#define T BP_SQL_TEXT
#define I BP_SQL_INT

#define KEY_COLUMNS   "hour, sending_ip, vmta, stream, receiver, blocklist"
#define COUNT_COLUMNS "delivered, deferred, ev_delivered, ev_deferred, bounced, hard, complaints"
#define ADD(c)        c " = signal_counts." c " + excluded." c

static const bp_sql_stmt st_add = {
    "INSERT INTO signal_counts (" KEY_COLUMNS ", " COUNT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
    "?10, ?11, ?12, ?13) ON CONFLICT (" KEY_COLUMNS ") DO UPDATE SET " ADD("delivered") ", " ADD("deferred") ", " ADD(
        "ev_delivered") ", " ADD("ev_deferred") ", " ADD("bounced") ", " ADD("hard") ", " ADD("complaints"),
    NULL, 0};

static const bp_sql_type mark_types[] = {I, I};
static const bp_sql_stmt st_mark_get = {"SELECT last_time, at_last FROM signal_marks WHERE host = ?1", mark_types, 2};
static const bp_sql_stmt st_mark_put = {
    "INSERT INTO signal_marks (host, last_time, at_last) VALUES (?1, ?2, ?3) ON CONFLICT (host) DO UPDATE SET "
    "last_time = excluded.last_time, at_last = excluded.at_last",
    NULL, 0};

/* sums of the counters: deliveries and deferrals of both origins */
#define SUMS "sum(delivered + ev_delivered), sum(deferred + ev_deferred), sum(bounced), sum(hard), sum(complaints) "
/* a window's sums per key (bp_store_signal_rows()): on SQLite its hourly rows in the table's own
 * order (a range of the primary key: nothing sorted), summed here; PostgreSQL groups them
 * itself (a hash aggregate) and sends the keys' sums */
static const bp_sql_type row_types[] = {T, T, T, T, T, I, I, I, I, I};
static const bp_sql_stmt st_window_hours = {
    "SELECT sending_ip, vmta, stream, receiver, blocklist, delivered + ev_delivered, deferred + ev_deferred, bounced, "
    "hard, complaints FROM signal_counts WHERE hour >= ?1 AND hour < ?2",
    row_types, 10};
static const bp_sql_stmt st_window_keys = {"SELECT sending_ip, vmta, stream, receiver, blocklist, " SUMS
                                           "FROM signal_counts WHERE hour >= ?1 AND hour < ?2 "
                                           "GROUP BY sending_ip, vmta, stream, receiver, blocklist",
                                           row_types, 10};
static const bp_sql_type hour_types[] = {I, T, T, I, I, I, I, I};
static const bp_sql_stmt st_hours = {
    "SELECT hour, receiver, blocklist, " SUMS "FROM signal_counts WHERE hour >= ?1 "
    "AND hour < ?2 GROUP BY hour, receiver, blocklist ORDER BY hour, receiver, blocklist",
    hour_types, 8};

#define ALERT_COLUMNS "alert, subject, first_fired, last_fired, last_seen, fired, action_status"
static const bp_sql_type alert_types[] = {T, T, I, I, I, I, I};
static const bp_sql_stmt st_alert_get = {
    "SELECT " ALERT_COLUMNS " FROM signal_alerts WHERE alert = ?1 AND subject = ?2", alert_types, 7};
static const bp_sql_stmt st_alerts = {"SELECT " ALERT_COLUMNS " FROM signal_alerts ORDER BY alert, subject",
                                      alert_types, 7};
static const bp_sql_stmt st_alert_put = {
    "INSERT INTO signal_alerts (" ALERT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (alert, subject) "
    "DO UPDATE SET first_fired = excluded.first_fired, last_fired = excluded.last_fired, "
    "last_seen = excluded.last_seen, fired = excluded.fired, action_status = excluded.action_status",
    NULL, 0};

/* a ledger row's signal key and what it counts as (rescore moves it) */
static const bp_sql_type old_types[] = {I, T, I, T, T, T, T, T, T};
static const bp_sql_stmt st_old_row = {"SELECT evidence_time, type, final, feedback_type, blocklist, sending_ip, vmta, "
                                       "stream, receiver FROM ledger WHERE id = ?1 AND kind = 'event'",
                                       old_types, 9};

/* what bp_signal_acc_event() counts, in SQL: the rebuild */
#define EV_SUMS                                                                                                        \
    "sum(CASE WHEN type = 'delivered' THEN 1 ELSE 0 END), sum(CASE WHEN type = 'delay' THEN 1 ELSE 0 END), "           \
    "sum(CASE WHEN type = 'bounce' THEN 1 ELSE 0 END), "                                                               \
    "sum(CASE WHEN type = 'bounce' AND final <> 0 AND blocklist IS NULL THEN 1 ELSE 0 END), "                          \
    "sum(CASE WHEN type = 'complaint' AND coalesce(feedback_type, '') NOT IN ('auth-failure', 'not-spam') "            \
    "THEN 1 ELSE 0 END)"
static const bp_sql_stmt st_rebuild_zero = {
    "UPDATE signal_counts SET ev_delivered = 0, ev_deferred = 0, bounced = 0, hard = 0, complaints = 0", NULL, 0};
static const bp_sql_stmt st_rebuild_add = {
    "INSERT INTO signal_counts (" KEY_COLUMNS ", " COUNT_COLUMNS ") SELECT evidence_time / 3600, "
    "coalesce(sending_ip, ''), coalesce(vmta, ''), coalesce(stream, ''), coalesce(receiver, ''), "
    "coalesce(blocklist, ''), 0, 0, " EV_SUMS " FROM ledger WHERE kind = 'event' AND type IN ('delivered', 'delay', "
    "'bounce', 'complaint') GROUP BY evidence_time / 3600, coalesce(sending_ip, ''), coalesce(vmta, ''), "
    "coalesce(stream, ''), coalesce(receiver, ''), coalesce(blocklist, '') ON CONFLICT (" KEY_COLUMNS ") DO UPDATE "
    "SET ev_delivered = excluded.ev_delivered, ev_deferred = excluded.ev_deferred, bounced = excluded.bounced, "
    "hard = excluded.hard, complaints = excluded.complaints",
    NULL, 0};
static const bp_sql_stmt st_rebuild_drop = {
    "DELETE FROM signal_counts WHERE delivered = 0 AND deferred = 0 AND ev_delivered = 0 AND ev_deferred = 0 "
    "AND bounced = 0 AND hard = 0 AND complaints = 0",
    NULL, 0};

/* migrate: the accounting part, merged by the larger value */
#define MAX_OF(c) c " = CASE WHEN excluded." c " > signal_counts." c " THEN excluded." c " ELSE signal_counts." c " END"
static const bp_sql_type range_types[] = {I, I};
static const bp_sql_stmt st_acct_range = {"SELECT min(hour), max(hour) FROM signal_counts WHERE delivered > 0 OR "
                                          "deferred > 0",
                                          range_types, 2};
static const bp_sql_type acct_types[] = {I, T, T, T, T, T, I, I};
static const bp_sql_stmt st_acct_rows = {"SELECT " KEY_COLUMNS ", delivered, deferred FROM signal_counts WHERE hour >= "
                                         "?1 AND hour < ?2 AND (delivered > 0 OR deferred > 0)",
                                         acct_types, 8};
static const bp_sql_stmt st_acct_merge = {"INSERT INTO signal_counts (" KEY_COLUMNS
                                          ", delivered, deferred) VALUES (?1, "
                                          "?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (" KEY_COLUMNS
                                          ") DO UPDATE SET " MAX_OF("delivered") ", " MAX_OF("deferred"),
                                          NULL, 0};
static const bp_sql_type marks_types[] = {T, I, I};
static const bp_sql_stmt st_marks = {"SELECT host, last_time, at_last FROM signal_marks ORDER BY host", marks_types, 3};
static const bp_sql_stmt st_mark_merge = {
    "INSERT INTO signal_marks (host, last_time, at_last) VALUES (?1, ?2, ?3) ON CONFLICT (host) DO UPDATE SET "
    "last_time = excluded.last_time, at_last = excluded.at_last WHERE excluded.last_time > signal_marks.last_time "
    "OR (excluded.last_time = signal_marks.last_time AND excluded.at_last > signal_marks.at_last)",
    NULL, 0};
static const bp_sql_stmt st_alert_merge = {
    "INSERT INTO signal_alerts (" ALERT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (alert, subject) "
    "DO UPDATE SET first_fired = excluded.first_fired, last_fired = excluded.last_fired, "
    "last_seen = excluded.last_seen, fired = excluded.fired, action_status = excluded.action_status "
    "WHERE excluded.last_seen > signal_alerts.last_seen",
    NULL, 0};

#undef T
#undef I

/* A key part as the table keeps it: '' for unknown. */
static const char *part(const char *s)
{
    return s != NULL ? s : "";
}

/* A key part as a row hands it out: NULL for unknown. */
static const char *unpart(const char *s)
{
    return s != NULL && *s != '\0' ? s : NULL;
}

/* ---- the accumulator ---------------------------------------------------------------- */

enum { C_DELIVERED, C_DEFERRED, C_EV_DELIVERED, C_EV_DEFERRED, C_BOUNCED, C_HARD, C_COMPLAINTS, C_N };
enum { K_IP, K_VMTA, K_STREAM, K_RECEIVER, K_BLOCKLIST, K_N };

struct entry {
    long long hour;
    char *key[K_N]; /* owned copies; "" for unknown */
    long long n[C_N];
};

struct bp_signal_acc {
    struct entry *v;
    size_t n, cap;
    /* the accounting watermark of this transaction's host */
    char *host;
    long long mark_time, mark_at; /* as stored (or advanced by this transaction) */
    long long seen_at;            /* records at mark_time this reading met */
    int mark_loaded, mark_dirty;
    /* where this process's reading stood at its last commit: a reading goes on across
     * transactions (acct commits in batches), so the records of the watermark's second met
     * in an earlier batch are not taken for re-reads of counted ones in the next */
    char *pass_host;
    long long pass_time, pass_seen;
    /* the reading about to start resumes at the position the watermark was kept with
     * (bp_store_signal_acct_resume()): the records of its second counted so far are all
     * behind it; cleared once a commit has carried that into pass_* */
    int resumed;
};

void bp_signal_acc_reset(bp_signal_acc *acc)
{
    if (acc == NULL)
        return;
    for (size_t i = 0; i < acc->n; i++)
        for (int k = 0; k < K_N; k++)
            free(acc->v[i].key[k]);
    acc->n = 0;
    free(acc->host);
    acc->host = NULL;
    acc->mark_loaded = acc->mark_dirty = 0;
}

void bp_signal_acc_committed(bp_signal_acc *acc)
{
    if (acc == NULL || !acc->mark_loaded || acc->host == NULL)
        return;
    char *host = bp_strdup(acc->host);
    if (host == NULL) { /* out of memory: the next batch counts as a new reading would */
        free(acc->pass_host);
        acc->pass_host = NULL;
        return;
    }
    free(acc->pass_host);
    acc->pass_host = host;
    acc->pass_time = acc->mark_time;
    acc->pass_seen = acc->seen_at;
    acc->resumed = 0;
}

void bp_signal_acc_free(bp_signal_acc *acc)
{
    if (acc == NULL)
        return;
    bp_signal_acc_reset(acc);
    free(acc->pass_host);
    free(acc->v);
    free(acc);
}

/* The entry of a key, made when missing. @return it, or NULL when out of memory. */
static struct entry *entry_for(bp_signal_acc **accp, long long hour, const char *const key[K_N])
{
    if (*accp == NULL && (*accp = bp_calloc(1, sizeof(**accp))) == NULL)
        return NULL;
    bp_signal_acc *acc = *accp;
    for (size_t i = 0; i < acc->n; i++) {
        struct entry *e = &acc->v[i];
        int same = e->hour == hour;
        for (int k = 0; k < K_N && same; k++)
            same = strcmp(e->key[k], key[k]) == 0;
        if (same)
            return e;
    }
    struct entry *v = bp_grow(acc->v, acc->n, &acc->cap, sizeof(*v), 16);
    if (v == NULL)
        return NULL;
    acc->v = v;
    struct entry *e = &acc->v[acc->n];
    memset(e, 0, sizeof(*e));
    e->hour = hour;
    for (int k = 0; k < K_N; k++)
        if ((e->key[k] = bp_strdup(key[k])) == NULL) {
            for (int j = 0; j < k; j++)
                free(e->key[j]);
            return NULL;
        }
    acc->n++;
    return e;
}

/* The counter an event adds to, or -1 for none; @p hard receives 1 for a hard bounce. */
static int counter_of(bp_event_type type, int final, const char *blocklist, const char *feedback_type, int *hard)
{
    *hard = 0;
    switch (type) {
    case BP_EVENT_DELIVERED: return C_EV_DELIVERED;
    case BP_EVENT_DELAY: return C_EV_DEFERRED;
    case BP_EVENT_BOUNCE: *hard = final && blocklist == NULL; return C_BOUNCED;
    case BP_EVENT_COMPLAINT:
        if (feedback_type != NULL &&
            (strcmp(feedback_type, "auth-failure") == 0 || strcmp(feedback_type, "not-spam") == 0))
            return -1;
        return C_COMPLAINTS;
    default: return -1;
    }
}

/* Add @p sign to counter @p c (and hard) of a key. */
static bp_status add(bp_signal_acc **acc, long long when, const char *const key[K_N], int c, int hard, int sign)
{
    struct entry *en = entry_for(acc, when / 3600, key);
    if (en == NULL)
        return BP_ERR_NOMEM;
    en->n[c] += sign;
    if (hard)
        en->n[C_HARD] += sign;
    return BP_OK;
}

bp_status bp_signal_acc_event(bp_signal_acc **acc, const bp_event *e, long long when, int sign)
{
    int hard = 0;
    int c = counter_of(e->type, e->final, e->blocklist, e->feedback_type, &hard);
    if (c < 0)
        return BP_OK;
    const char *key[K_N] = {part(e->sending_ip), part(e->vmta), part(e->stream), part(e->receiver), part(e->blocklist)};
    return add(acc, when, key, c, hard, sign);
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->hour != y->hour)
        return x->hour < y->hour ? -1 : 1;
    for (int k = 0; k < K_N; k++) {
        int d = strcmp(x->key[k], y->key[k]);
        if (d != 0)
            return d;
    }
    return 0;
}

bp_status bp_signal_acc_flush(bp_store *s, bp_signal_acc *acc)
{
    if (acc == NULL)
        return BP_OK;
    bp_status st = BP_OK;
    bp_sort(acc->v, acc->n, sizeof(*acc->v), cmp_entry);
    for (size_t i = 0; i < acc->n && st == BP_OK; i++) {
        const struct entry *e = &acc->v[i];
        int any = 0;
        for (int c = 0; c < C_N; c++)
            any |= e->n[c] != 0;
        if (!any)
            continue;
        bp_sql_value v[13];
        v[0] = bp_sql_int(e->hour);
        for (int k = 0; k < K_N; k++)
            v[1 + k] = bp_sql_text(e->key[k]);
        for (int c = 0; c < C_N; c++)
            v[6 + c] = bp_sql_int(e->n[c]);
        st = bp_store_sql_run(s, &st_add, v, 13, NULL, NULL, NULL);
    }
    if (st == BP_OK && acc->mark_dirty) {
        const bp_sql_value v[] = {bp_sql_text(acc->host), bp_sql_int(acc->mark_time), bp_sql_int(acc->mark_at)};
        st = bp_store_sql_run(s, &st_mark_put, v, 3, NULL, NULL, NULL);
    }
    return st;
}

/* ---- accounting records ------------------------------------------------------------- */

static int note_mark(void *user, const bp_sql_value *v)
{
    bp_signal_acc *acc = user;
    acc->mark_time = v[0].num;
    acc->mark_at = v[1].num;
    return 0;
}

/* The watermark of @p host, read at the transaction's first record. */
static bp_status load_mark(bp_store *s, bp_signal_acc *acc, const char *host)
{
    if (acc->mark_loaded && acc->host != NULL && strcmp(acc->host, host) == 0)
        return BP_OK;
    if (acc->mark_loaded) { /* another host in one transaction: write the first one's now */
        if (acc->mark_dirty) {
            const bp_sql_value v[] = {bp_sql_text(acc->host), bp_sql_int(acc->mark_time), bp_sql_int(acc->mark_at)};
            bp_status st = bp_store_sql_run(s, &st_mark_put, v, 3, NULL, NULL, NULL);
            if (st != BP_OK)
                return st;
        }
        free(acc->host);
        acc->host = NULL;
    }
    acc->mark_time = acc->mark_at = acc->seen_at = 0;
    acc->mark_dirty = 0;
    if ((acc->host = bp_strdup(host)) == NULL)
        return BP_ERR_NOMEM;
    const bp_sql_value v[] = {bp_sql_text(host)};
    bp_status st = bp_store_sql_run(s, &st_mark_get, v, 1, note_mark, acc, NULL);
    acc->mark_loaded = st == BP_OK;
    if (st != BP_OK)
        return st;
    if (acc->resumed) /* a reading resumed at its kept position: every record after it is new */
        acc->seen_at = acc->mark_at;
    else if (acc->pass_host != NULL && strcmp(acc->pass_host, host) == 0 && acc->pass_time == acc->mark_time)
        acc->seen_at = acc->pass_seen; /* this process's reading goes on: what it met is counted */
    return BP_OK;
}

bp_status bp_store_signal_acct_resume(bp_store *s)
{
    bp_signal_acc **accp = bp_store_signal_acc(s);
    if (*accp == NULL && (*accp = bp_calloc(1, sizeof(**accp))) == NULL)
        return BP_ERR_NOMEM;
    (*accp)->resumed = 1;
    return BP_OK;
}

bp_status bp_store_signal_acct(bp_store *s, const char *host, long long when, const bp_event *e, bp_signal_acct what,
                               int *counted)
{
    int dummy = 0;
    if (counted == NULL)
        counted = &dummy;
    *counted = 0;
    if (!bp_store_sql_in_tx(s))
        return BP_ERR_USAGE;
    bp_signal_acc **accp = bp_store_signal_acc(s);
    if (*accp == NULL && (*accp = bp_calloc(1, sizeof(**accp))) == NULL)
        return BP_ERR_NOMEM;
    bp_signal_acc *acc = *accp;
    bp_status st = load_mark(s, acc, host != NULL ? host : "");
    if (st != BP_OK)
        return st;
    /* the watermark: older records were counted; of the watermark's second, the first
     * mark_at records met were; a newer second starts a new count */
    if (when < acc->mark_time)
        return BP_OK;
    if (when == acc->mark_time) {
        if (++acc->seen_at <= acc->mark_at)
            return BP_OK;
        acc->mark_at = acc->seen_at;
    } else {
        acc->mark_time = when;
        acc->mark_at = acc->seen_at = 1;
    }
    acc->mark_dirty = 1;
    const char *key[K_N] = {part(e->sending_ip), part(e->vmta), part(e->stream), part(e->receiver), part(e->blocklist)};
    st = add(accp, when, key, what == BP_SIGNAL_DELIVERED ? C_DELIVERED : C_DEFERRED, 0, 1);
    *counted = st == BP_OK;
    return st;
}

/* ---- rescore ------------------------------------------------------------------------ */

struct old_row {
    bp_signal_acc **acc;
    const char *blocklist;
    bp_status st;
};

static int move_row(void *user, const bp_sql_value *v)
{
    struct old_row *o = user;
    int t = v[1].text != NULL ? bp_event_type_from_name(v[1].text) : -1;
    if (t < 0)
        return 0;
    const char *old = unpart(v[4].text);
    if ((old == NULL) == (o->blocklist == NULL) && (old == NULL || strcmp(old, o->blocklist) == 0))
        return 0; /* the same list: nothing moves */
    int hard = 0;
    int c = counter_of((bp_event_type)t, (int)v[2].num, old, v[3].text, &hard);
    if (c < 0)
        return 0;
    const char *was[K_N] = {part(v[5].text), part(v[6].text), part(v[7].text), part(v[8].text), part(old)};
    const char *now[K_N] = {part(v[5].text), part(v[6].text), part(v[7].text), part(v[8].text), part(o->blocklist)};
    o->st = add(o->acc, v[0].num, was, c, hard, -1);
    if (o->st == BP_OK) {
        counter_of((bp_event_type)t, (int)v[2].num, o->blocklist, v[3].text, &hard);
        o->st = add(o->acc, v[0].num, now, c, hard, +1);
    }
    return 0;
}

bp_status bp_signal_reclassified(bp_store *s, bp_signal_acc **acc, long long id, const char *blocklist)
{
    struct old_row o = {acc, blocklist, BP_OK};
    const bp_sql_value v[] = {bp_sql_int(id)};
    bp_status st = bp_store_sql_run(s, &st_old_row, v, 1, move_row, &o, NULL);
    return st != BP_OK ? st : o.st;
}

/* ---- reading ------------------------------------------------------------------------ */

/* A reading's callback and its user, and how many rows it was given. */
struct walk {
    union {
        bp_signal_row_cb row;
        bp_signal_alert_cb alert;
        bp_ledger_cb ledger;
    } cb;
    void *user;
    long long n;
};

/* A row of st_hours: an hour, a receiver and a list's sums. */
static int hour_each(void *user, const bp_sql_value *v)
{
    struct walk *w = user;
    bp_signal_row r;
    memset(&r, 0, sizeof(r));
    r.hour = v[0].num;
    r.receiver = unpart(v[1].text);
    r.blocklist = unpart(v[2].text);
    r.delivered = v[3].num;
    r.deferred = v[4].num;
    r.bounced = v[5].num;
    r.hard = v[6].num;
    r.complaints = v[7].num;
    return w->cb.row(w->user, &r);
}

/* Seconds to hours, rounding down (negative times are none of ours). */
static long long hour_of(long long t)
{
    return t > 0 ? t / 3600 : 0;
}

/* A key's sums over a window (bp_store_signal_rows()). */
struct key_sum {
    char *key[K_N]; /* owned copies; "" for unknown */
    long long n[5]; /* delivered, deferred, bounced, hard, complaints */
};

struct window_sums {
    GTree *by_key; /* the sums, each its own key, in key order; owns them (key_sum_free) */
    bp_status st;
};

/* Key order, as the table's (and a GROUP BY's) byte order: SQLite's BINARY collation and
 * PostgreSQL's "C" compare the bytes as strcmp() does. */
static gint cmp_key_sum(gconstpointer a, gconstpointer b, gpointer unused)
{
    (void)unused;
    const struct key_sum *x = a, *y = b;
    for (int i = 0; i < K_N; i++) {
        int d = strcmp(x->key[i], y->key[i]);
        if (d != 0)
            return d;
    }
    return 0;
}

static void key_sum_free(gpointer p)
{
    struct key_sum *k = p;
    if (k == NULL)
        return;
    for (int i = 0; i < K_N; i++)
        free(k->key[i]);
    free(k);
}

/* One row of the window: added to its key's sums, made at its first row. */
static int window_row(void *user, const bp_sql_value *v)
{
    struct window_sums *w = user;
    struct key_sum probe;
    for (int i = 0; i < K_N; i++)
        probe.key[i] = (char *)part(v[i].text);
    struct key_sum *k = g_tree_lookup(w->by_key, &probe);
    if (k == NULL) {
        if ((k = bp_calloc(1, sizeof(*k))) == NULL) {
            w->st = BP_ERR_NOMEM;
            return 1;
        }
        for (int i = 0; i < K_N; i++)
            if ((k->key[i] = bp_strdup(probe.key[i])) == NULL) {
                key_sum_free(k);
                w->st = BP_ERR_NOMEM;
                return 1;
            }
        g_tree_insert(w->by_key, k, k);
    }
    for (int c = 0; c < 5; c++)
        k->n[c] += v[K_N + c].num;
    return 0;
}

static gboolean hand_out_key(gpointer key, gpointer value, gpointer user)
{
    (void)value;
    const struct key_sum *k = key;
    const struct walk *w = user;
    bp_signal_row r = {0,
                       unpart(k->key[K_IP]),
                       unpart(k->key[K_VMTA]),
                       unpart(k->key[K_STREAM]),
                       unpart(k->key[K_RECEIVER]),
                       unpart(k->key[K_BLOCKLIST]),
                       k->n[0],
                       k->n[1],
                       k->n[2],
                       k->n[3],
                       k->n[4]};
    return w->cb.row(w->user, &r) != 0;
}

bp_status bp_store_signal_rows(bp_store *s, long long from, long long until, bp_signal_row_cb cb, void *user)
{
    /* SQLite's GROUP BY sorts every hourly row of the window (a week of a busy sender's: a
     * quarter of a million) to sum them into a few thousand keys; a balanced tree of the keys
     * sums them as they come, in key order (docs/performance.md, "Signals on 10 million ledger
     * rows").  PostgreSQL aggregates by hash itself: sending it all the hourly rows would cost
     * more than its GROUP BY.  (A GLib hash table was a little faster, but calling
     * g_str_hash() by name put it in the executable's .gnu.hash, which cost every pipe
     * process 5,000 instructions at start-up.) */
    void *h = NULL;
    const bp_sql_stmt *stmt =
        bp_store_backend_of(s, &h) == &bp_store_backend_sqlite ? &st_window_hours : &st_window_keys;
    struct window_sums w = {g_tree_new_full(cmp_key_sum, NULL, key_sum_free, NULL), BP_OK};
    const bp_sql_value v[] = {bp_sql_int(hour_of(from)), bp_sql_int(hour_of(until) + (until % 3600 != 0))};
    bp_status st = bp_store_sql_run(s, stmt, v, 2, window_row, &w, NULL);
    if (st == BP_OK)
        st = w.st;
    if (st == BP_OK) {
        struct walk out = {.cb.row = cb, .user = user};
        g_tree_foreach(w.by_key, hand_out_key, &out);
    }
    g_tree_destroy(w.by_key);
    return st;
}

bp_status bp_store_signal_hours(bp_store *s, long long from, long long until, bp_signal_row_cb cb, void *user)
{
    struct walk w = {.cb.row = cb, .user = user};
    const bp_sql_value v[] = {bp_sql_int(hour_of(from)), bp_sql_int(hour_of(until) + (until % 3600 != 0))};
    return bp_store_sql_run(s, &st_hours, v, 2, hour_each, &w, NULL);
}

static int alert_each(void *user, const bp_sql_value *v)
{
    struct walk *w = user;
    bp_signal_alert_state a = {v[0].text, v[1].text, v[2].num, v[3].num, v[4].num, v[5].num, (int)v[6].num};
    w->n++;
    return w->cb.alert(w->user, &a);
}

bp_status bp_store_signal_alert(bp_store *s, const char *alert, const char *subject, bp_signal_alert_cb cb, void *user)
{
    struct walk w = {.cb.alert = cb, .user = user};
    const bp_sql_value v[] = {bp_sql_text(alert), bp_sql_text(subject)};
    bp_status st = bp_store_sql_run(s, &st_alert_get, v, 2, alert_each, &w, NULL);
    return st == BP_OK && w.n == 0 ? BP_ERR_NOT_FOUND : st;
}

bp_status bp_store_signal_alerts(bp_store *s, bp_signal_alert_cb cb, void *user)
{
    struct walk w = {.cb.alert = cb, .user = user};
    return bp_store_sql_run(s, &st_alerts, NULL, 0, alert_each, &w, NULL);
}

bp_status bp_store_signal_alert_put(bp_store *s, const bp_signal_alert_state *a)
{
    if (!bp_store_sql_in_tx(s))
        return BP_ERR_USAGE;
    const bp_sql_value v[] = {bp_sql_text(a->alert),       bp_sql_text(a->subject),  bp_sql_int(a->first_fired),
                              bp_sql_int(a->last_fired),   bp_sql_int(a->last_seen), bp_sql_int(a->fired),
                              bp_sql_int(a->action_status)};
    return bp_store_sql_run(s, &st_alert_put, v, 7, NULL, NULL, NULL);
}

static int event_each(void *user, const bp_sql_value *v)
{
    struct walk *w = user;
    bp_ledger_row r;
    bp_sql_ledger_row(&r, v);
    return w->cb.ledger(w->user, &r);
}

bp_status bp_store_signal_events(bp_store *s, long long from, long long until, const char *ip, long long limit,
                                 bp_ledger_cb cb, void *user)
{
    struct walk w = {.cb.ledger = cb, .user = user};
    const bp_sql_value v[] = {bp_sql_int(from), bp_sql_int(until), bp_sql_text(ip),
                              bp_sql_int(limit > 0 ? limit : 1000)};
    return bp_store_sql_run(s, &bp_sql_ledger_named, v, 4, event_each, &w, NULL);
}

bp_status bp_store_signal_rebuild(bp_store *s, long long *keys)
{
    long long n = 0;
    if (!bp_store_sql_in_tx(s))
        return BP_ERR_USAGE;
    bp_status st = bp_store_sql_run(s, &st_rebuild_zero, NULL, 0, NULL, NULL, NULL);
    if (st == BP_OK)
        st = bp_store_sql_run(s, &st_rebuild_add, NULL, 0, NULL, NULL, &n);
    if (st == BP_OK)
        st = bp_store_sql_run(s, &st_rebuild_drop, NULL, 0, NULL, NULL, NULL);
    if (keys != NULL)
        *keys = n;
    return st;
}

/* ---- migrate ------------------------------------------------------------------------ */

/* A week of hours: the rows one transaction of the copy writes at most. */
#define COPY_HOURS (7 * 24)

struct copy_walk {
    bp_store *to;
    long long n;
    bp_status st;
};

static int note_range(void *user, const bp_sql_value *v)
{
    long long *r = user;
    r[0] = v[0].is_null ? -1 : v[0].num;
    r[1] = v[1].is_null ? -1 : v[1].num;
    return 0;
}

static int copy_count(void *user, const bp_sql_value *v)
{
    struct copy_walk *w = user;
    w->st = bp_store_sql_run(w->to, &st_acct_merge, v, 8, NULL, NULL, NULL);
    w->n++;
    return w->st != BP_OK;
}

static int copy_mark(void *user, const bp_sql_value *v)
{
    struct copy_walk *w = user;
    w->st = bp_store_sql_run(w->to, &st_mark_merge, v, 3, NULL, NULL, NULL);
    w->n++;
    return w->st != BP_OK;
}

static int copy_alert(void *user, const bp_sql_value *v)
{
    struct copy_walk *w = user;
    w->st = bp_store_sql_run(w->to, &st_alert_merge, v, 7, NULL, NULL, NULL);
    w->n++;
    return w->st != BP_OK;
}

/* One read of @p from written into one transaction of @p to. */
static bp_status copy_step(bp_store *from, bp_store *to, const bp_sql_stmt *read, const bp_sql_value *v, size_t n,
                           bp_sql_row_fn each, long long *rows, int *from_source)
{
    struct copy_walk w = {to, 0, BP_OK};
    bp_status st = bp_store_begin(to);
    if (st != BP_OK)
        return st;
    st = bp_store_sql_run(from, read, v, n, each, &w, NULL);
    if (st != BP_OK && from_source != NULL)
        *from_source = 1;
    if (st == BP_OK)
        st = w.st;
    if (st == BP_OK)
        st = bp_store_commit(to);
    else
        bp_store_rollback(to);
    if (st == BP_OK)
        *rows += w.n;
    return st;
}

bp_status bp_store_signal_copy(bp_store *from, bp_store *to, long long *rows, int *from_source)
{
    long long n = 0, range[2] = {-1, -1};
    int dummy = 0;
    if (from_source == NULL)
        from_source = &dummy;
    *from_source = 0;
    bp_status st = bp_store_sql_run(from, &st_acct_range, NULL, 0, note_range, range, NULL);
    if (st != BP_OK)
        *from_source = 1;
    for (long long h = range[0]; st == BP_OK && range[0] >= 0 && h <= range[1]; h += COPY_HOURS) {
        const bp_sql_value v[] = {bp_sql_int(h), bp_sql_int(h + COPY_HOURS)};
        st = copy_step(from, to, &st_acct_rows, v, 2, copy_count, &n, from_source);
    }
    if (st == BP_OK)
        st = copy_step(from, to, &st_marks, NULL, 0, copy_mark, &n, from_source);
    if (st == BP_OK)
        st = copy_step(from, to, &st_alerts, NULL, 0, copy_alert, &n, from_source);
    if (rows != NULL)
        *rows = n;
    return st;
}
