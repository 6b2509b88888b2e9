/*
 * alerts.c - the [signals] configuration and the alerts of `signals --check` (alerts.h).
 *
 * bp_signals_config_load(): typed settings, all or nothing (lists split at ';').
 * bp_signals_check():
 *   1. the conditions, from the store's hourly counts (no ledger read): listings per (IP,
 *      VMTA, list) in the listing window, each receiver's share of named deferrals per hour
 *      in the last hour, each stream's complaint rate in the complaint window;
 *   2. one short transaction: for each condition that holds, its state - a first firing, a
 *      new episode (the condition had not held for the cool-down), a command to run again
 *      (it failed or never ran), or only "still holds" (last_seen);
 *   3. the callback for each firing (the command runs there, outside any transaction: a
 *      command may take its time, pipes must not wait);
 *   4. one more transaction for the commands' outcomes.
 * bp_alert_argv(): placeholders replaced inside each argument; a value comes only from a
 *   checked signal field (signal_fields.h) or a number, so an argument holds nothing a shell
 *   would read - and no shell reads it.
 *
 * Ownership: the configuration's lists are malloc'ed NULL-terminated arrays of malloc'ed
 * strings; the candidates of a check are freed before it returns.
 */
#include "bouncepipe/alerts.h"
#include "bouncepipe/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

/* Action outcomes kept in signal_alerts.action_status. */
#define ACTION_NONE    (-1)
#define ACTION_OK      0
#define ACTION_FAILED  1
#define ACTION_PENDING 2 /* fired, its command not run yet (the process stopped in between) */

static const char *const default_lists[] = {"spamhaus", NULL};

void bp_signals_config_default(bp_signals_config *c)
{
    memset(c, 0, sizeof(*c));
    c->top = 20;
    c->window = 86400;
    c->listing_window = 3600;
    c->deferral_share = 25.0;
    c->deferral_min = 100;
    c->complaint_rate = 0.1;
    c->complaint_min = 1000;
    c->complaint_window = 86400;
    c->cooldown = 86400;
    c->command_timeout = 60;
}

static void free_list(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

void bp_signals_config_free(bp_signals_config *c)
{
    char **lists[] = {c->stream_headers,  c->vmta_headers,     c->ip_columns,
                      c->vmta_columns,    c->stream_columns,   c->listing_lists,
                      c->listing_command, c->deferral_command, c->complaint_command};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        free_list(lists[i]);
    free(c->host);
    bp_signals_config_default(c);
}

long long bp_signals_parse_duration(const char *s)
{
    long long ms = 0;
    return bp_parse_duration_ms(s, &ms) == BP_OK ? ms / 1000 : -1;
}

/* Split @p value at ';' into a list (blanks around items dropped, empty items skipped).
 * @return BP_OK with *out NULL for an empty list; BP_ERR_NOMEM. */
static bp_status split_list(const char *value, char ***out)
{
    *out = NULL;
    size_t n = 1;
    for (const char *p = value; *p; p++)
        n += *p == ';';
    char **v = bp_calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return BP_ERR_NOMEM;
    size_t k = 0;
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ";");
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a && (v[k++] = bp_strndup(a, (size_t)(b - a))) == NULL) {
            free_list(v);
            return BP_ERR_NOMEM;
        }
        p += len + (p[len] == ';');
    }
    if (k == 0) {
        free(v);
        return BP_OK;
    }
    *out = v;
    return BP_OK;
}

static const char *const placeholders[] = {"ip",    "vmta",      "stream", "receiver", "list",
                                           "alert", "threshold", "value",  "count",    "base"};
#define N_PLACEHOLDERS (sizeof(placeholders) / sizeof(placeholders[0]))

/* The index of the placeholder {NAME} at @p p (which is '{'), or -1; *len its length. */
static int placeholder_at(const char *p, size_t *len)
{
    for (size_t i = 0; i < N_PLACEHOLDERS; i++) {
        size_t n = strlen(placeholders[i]);
        if (strncmp(p + 1, placeholders[i], n) == 0 && p[1 + n] == '}') {
            *len = n + 2;
            return (int)i;
        }
    }
    return -1;
}

/* A command is an absolute path, then arguments whose {...} are known placeholders. */
static const char *command_problem(char **argv)
{
    if (argv == NULL)
        return NULL;
    if (argv[0][0] != '/')
        return "want the command's absolute path first (no shell runs it, no PATH is searched)";
    for (size_t i = 0; argv[i] != NULL; i++)
        for (const char *p = strchr(argv[i], '{'); p != NULL; p = strchr(p + 1, '{')) {
            size_t len = 0;
            if (placeholder_at(p, &len) < 0)
                return "unknown placeholder (want {ip} {vmta} {stream} {receiver} {list} {alert} {threshold} "
                       "{value} {count} {base})";
        }
    return NULL;
}

static char *config_error(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *config_error(const char *key, const char *fmt, ...)
{
    char why[300], *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (asprintf(&msg, "[signals] %s: %s", key, why) < 0)
        msg = NULL;
    return msg;
}

/* A percentage from 0 to 100. */
static int parse_percent(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    while (end != NULL && (*end == ' ' || *end == '\t' || *end == '%'))
        end++;
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0 && v <= 100.0))
        return -1;
    *out = v;
    return 0;
}

/* A whole number from @p min to @p max. */
static int parse_count(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (end != NULL && (*end == ' ' || *end == '\t'))
        end++;
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

bp_status bp_signals_config_load(bp_signals_config *c, const bp_signals_setting *settings, size_t n, char **error)
{
    bp_signals_config t;
    bp_signals_config_default(&t);
    *error = NULL;
    bp_status st = BP_OK;
    for (size_t i = 0; i < n && st == BP_OK; i++) {
        const char *k = settings[i].key, *v = settings[i].value != NULL ? settings[i].value : "";
        char ***list = NULL;
        long long *dur = NULL, *count = NULL, count_min = 0, count_max = 0;
        double *pct = NULL;
        if (strcmp(k, "stream_headers") == 0)
            list = &t.stream_headers;
        else if (strcmp(k, "vmta_headers") == 0)
            list = &t.vmta_headers;
        else if (strcmp(k, "acct_ip_columns") == 0)
            list = &t.ip_columns;
        else if (strcmp(k, "acct_vmta_columns") == 0)
            list = &t.vmta_columns;
        else if (strcmp(k, "acct_stream_columns") == 0)
            list = &t.stream_columns;
        else if (strcmp(k, "listing_lists") == 0)
            list = &t.listing_lists;
        else if (strcmp(k, "listing_command") == 0)
            list = &t.listing_command;
        else if (strcmp(k, "deferral_command") == 0)
            list = &t.deferral_command;
        else if (strcmp(k, "complaint_command") == 0)
            list = &t.complaint_command;
        else if (strcmp(k, "window") == 0)
            dur = &t.window;
        else if (strcmp(k, "listing_window") == 0)
            dur = &t.listing_window;
        else if (strcmp(k, "complaint_window") == 0)
            dur = &t.complaint_window;
        else if (strcmp(k, "cooldown") == 0)
            dur = &t.cooldown;
        else if (strcmp(k, "deferral_share") == 0)
            pct = &t.deferral_share;
        else if (strcmp(k, "complaint_rate") == 0)
            pct = &t.complaint_rate;
        else if (strcmp(k, "deferral_min") == 0)
            count = &t.deferral_min, count_min = 1, count_max = 1000000000;
        else if (strcmp(k, "complaint_min") == 0)
            count = &t.complaint_min, count_min = 1, count_max = 1000000000;
        if (list != NULL) {
            free_list(*list);
            st = split_list(v, list);
            const char *why = st == BP_OK && strstr(k, "_command") != NULL ? command_problem(*list) : NULL;
            if (why != NULL) {
                *error = config_error(k, "%s", why);
                st = BP_ERR_CONFIG;
            }
        } else if (dur != NULL) {
            long long d = bp_signals_parse_duration(v);
            if (d <= 0 || (dur != &t.cooldown && d < 3600)) {
                *error =
                    config_error(k, "want a duration of at least %s (90m, 24h, 7d)", dur != &t.cooldown ? "1h" : "1s");
                st = BP_ERR_CONFIG;
            } else {
                *dur = d;
            }
        } else if (pct != NULL) {
            if (parse_percent(v, pct) != 0) {
                *error = config_error(k, "want a percentage from 0 to 100 (0: off)");
                st = BP_ERR_CONFIG;
            }
        } else if (count != NULL) {
            if (parse_count(v, count_min, count_max, count) != 0) {
                *error = config_error(k, "want a whole number from %lld to %lld", count_min, count_max);
                st = BP_ERR_CONFIG;
            }
        } else if (strcmp(k, "top") == 0) {
            long long top = 0;
            if (parse_count(v, 1, 10000, &top) != 0) {
                *error = config_error(k, "want a whole number from 1 to 10000");
                st = BP_ERR_CONFIG;
            } else {
                t.top = (unsigned)top;
            }
        } else if (strcmp(k, "command_timeout") == 0) {
            long long d = bp_signals_parse_duration(v);
            if (d < 1 || d > 3600) {
                *error = config_error(k, "want a duration from 1s to 1h");
                st = BP_ERR_CONFIG;
            } else {
                t.command_timeout = (unsigned)d;
            }
        } else if (strcmp(k, "host") == 0) {
            if (!bp_signal_token_valid(v)) {
                *error = config_error(k, "want a host name");
                st = BP_ERR_CONFIG;
            } else {
                free(t.host);
                if ((t.host = bp_strdup(v)) == NULL)
                    st = BP_ERR_NOMEM;
            }
        } else {
            *error = config_error(k, "unknown key");
            st = BP_ERR_CONFIG;
        }
    }
    if (st != BP_OK) {
        if (*error == NULL && st == BP_ERR_NOMEM)
            *error = strdup("[signals]: out of memory");
        bp_signals_config_free(&t);
        return st;
    }
    bp_signals_config_free(c);
    *c = t;
    c->fields.stream_headers = (const char *const *)c->stream_headers;
    c->fields.vmta_headers = (const char *const *)c->vmta_headers;
    c->fields.acct_ip_columns = (const char *const *)c->ip_columns;
    c->fields.acct_vmta_columns = (const char *const *)c->vmta_columns;
    c->fields.acct_stream_columns = (const char *const *)c->stream_columns;
    return BP_OK;
}

const char *bp_alert_name(bp_alert_kind kind)
{
    switch (kind) {
    case BP_ALERT_LISTING: return "listing";
    case BP_ALERT_DEFERRAL: return "deferral";
    case BP_ALERT_COMPLAINT: return "complaint";
    }
    return "unknown";
}

/* ---- conditions --------------------------------------------------------------------- */

#define PART_BYTES (BP_MAX_STORED_TOKEN_BYTES + 1)

struct cand {
    bp_alert a;
    char subject[4 * PART_BYTES];
    char ip[PART_BYTES], vmta[PART_BYTES], stream[PART_BYTES], receiver[PART_BYTES], list[PART_BYTES];
    long long hour; /* deferral: the hour of the share */
    bp_signal_alert_state state;
    int fire; /* call the callback */
};

struct cands {
    struct cand *v;
    size_t n, cap;
    int nomem;
};

static void copy_part(char *dst, const char *src)
{
    snprintf(dst, PART_BYTES, "%s", src != NULL ? src : "");
}

static const char *or_null(const char *s)
{
    return s != NULL && *s != '\0' ? s : NULL;
}

/* The candidate of @p kind whose subject is @p subject, made when missing. */
static struct cand *cand_for(struct cands *c, bp_alert_kind kind, const char *subject)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].a.kind == kind && strcmp(c->v[i].subject, subject) == 0)
            return &c->v[i];
    struct cand *x = bp_array_push(&c->v, &c->n, &c->cap, sizeof(*x), 8);
    if (x == NULL) {
        c->nomem = 1;
        return NULL;
    }
    x->a.kind = kind;
    snprintf(x->subject, sizeof(x->subject), "%s", subject);
    return x;
}

static int prefix_listed(const bp_signals_config *cfg, const char *list)
{
    const char *const *lists = cfg->listing_lists != NULL ? (const char *const *)cfg->listing_lists : default_lists;
    for (size_t i = 0; list != NULL && lists[i] != NULL; i++)
        if (strncmp(list, lists[i], strlen(lists[i])) == 0)
            return 1;
    return 0;
}

struct listing_walk {
    const bp_signals_config *cfg;
    struct cands *c;
};

static int listing_row(void *user, const bp_signal_row *r)
{
    struct listing_walk *w = user;
    if (!prefix_listed(w->cfg, r->blocklist) || r->bounced + r->deferred == 0)
        return 0;
    char subject[4 * PART_BYTES];
    snprintf(subject, sizeof(subject), "%s %s %s", r->sending_ip != NULL ? r->sending_ip : "-",
             r->vmta != NULL ? r->vmta : "-", r->blocklist);
    struct cand *x = cand_for(w->c, BP_ALERT_LISTING, subject);
    if (x == NULL)
        return 1;
    copy_part(x->ip, r->sending_ip);
    copy_part(x->vmta, r->vmta);
    copy_part(x->list, r->blocklist);
    x->a.count += r->bounced + r->deferred;
    return 0;
}

/* A count and its base per subject (a receiver in an hour, a stream over the window): as the
 * alert's count and base (deferrals that name a list or reputation system of the attempts,
 * complaints of the deliveries). */
struct sum {
    long long hour; /* 0 where the hour is not part of the subject */
    char subject[PART_BYTES];
    long long count, base;
};

struct sum_walk {
    struct sum *v;
    size_t n, cap;
    int nomem;
};

/* The sum of @p subject in @p hour, made when missing; NULL (nomem set) when out of memory. */
static struct sum *sum_for(struct sum_walk *w, long long hour, const char *subject)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i].hour == hour && strcmp(w->v[i].subject, subject) == 0)
            return &w->v[i];
    struct sum *x = bp_array_push(&w->v, &w->n, &w->cap, sizeof(*x), 16);
    if (x == NULL) {
        w->nomem = 1;
        return NULL;
    }
    x->hour = hour;
    copy_part(x->subject, subject);
    return x;
}

/* Per receiver and hour: attempts and deferrals that name a list or reputation system. */
static int hour_row(void *user, const bp_signal_row *r)
{
    if (r->receiver == NULL)
        return 0;
    struct sum *h = sum_for(user, r->hour, r->receiver);
    if (h == NULL)
        return 1;
    h->base += r->delivered + r->deferred + r->bounced;
    if (r->blocklist != NULL)
        h->count += r->deferred;
    return 0;
}

/* Per stream over the complaint window: complaints and deliveries. */
static int stream_row(void *user, const bp_signal_row *r)
{
    if (r->stream == NULL)
        return 0;
    struct sum *s = sum_for(user, 0, r->stream);
    if (s == NULL)
        return 1;
    s->count += r->complaints;
    s->base += r->delivered;
    return 0;
}

/* The start of the window of @p seconds ending at @p now, as the counts see it: whole hours. */
static long long window_start(long long now, long long seconds)
{
    long long from = now - seconds;
    return from > 0 ? from - from % 3600 : 0;
}

static bp_status conditions(bp_store *s, const bp_signals_config *cfg, long long now, struct cands *c)
{
    struct listing_walk lw = {cfg, c};
    bp_status st = bp_store_signal_rows(s, window_start(now, cfg->listing_window), now + 1, listing_row, &lw);
    for (size_t i = 0; i < c->n; i++)
        c->v[i].a.since = window_start(now, cfg->listing_window);
    if (st == BP_OK && c->nomem)
        st = BP_ERR_NOMEM;
    if (st == BP_OK && cfg->deferral_share > 0) {
        struct sum_walk hw = {NULL, 0, 0, 0};
        st = bp_store_signal_hours(s, window_start(now, 3600), now + 1, hour_row, &hw);
        if (st == BP_OK && hw.nomem)
            st = BP_ERR_NOMEM;
        for (size_t i = 0; st == BP_OK && i < hw.n; i++) {
            const struct sum *h = &hw.v[i];
            double share = h->base > 0 ? 100.0 * (double)h->count / (double)h->base : 0.0;
            if (h->base < cfg->deferral_min || share < cfg->deferral_share)
                continue;
            struct cand *x = cand_for(c, BP_ALERT_DEFERRAL, h->subject);
            if (x == NULL) {
                st = BP_ERR_NOMEM;
                break;
            }
            if (x->a.base == 0 || share > x->a.value) { /* of the hours, the worst */
                copy_part(x->receiver, h->subject);
                x->a.count = h->count;
                x->a.base = h->base;
                x->a.value = share;
                x->a.threshold = cfg->deferral_share;
                x->a.since = h->hour * 3600;
                x->hour = h->hour;
            }
        }
        free(hw.v);
    }
    if (st == BP_OK && cfg->complaint_rate > 0) {
        struct sum_walk sw = {NULL, 0, 0, 0};
        st = bp_store_signal_rows(s, window_start(now, cfg->complaint_window), now + 1, stream_row, &sw);
        if (st == BP_OK && sw.nomem)
            st = BP_ERR_NOMEM;
        for (size_t i = 0; st == BP_OK && i < sw.n; i++) {
            const struct sum *x = &sw.v[i];
            double rate = x->base > 0 ? 100.0 * (double)x->count / (double)x->base : 0.0;
            if (x->base < cfg->complaint_min || x->count == 0 || rate < cfg->complaint_rate)
                continue;
            struct cand *k = cand_for(c, BP_ALERT_COMPLAINT, x->subject);
            if (k == NULL) {
                st = BP_ERR_NOMEM;
                break;
            }
            copy_part(k->stream, x->subject);
            k->a.count = x->count;
            k->a.base = x->base;
            k->a.value = rate;
            k->a.threshold = cfg->complaint_rate;
            k->a.since = window_start(now, cfg->complaint_window);
        }
        free(sw.v);
    }
    /* the alerts point into their candidates: set once the array no longer moves */
    for (size_t i = 0; i < c->n; i++) {
        struct cand *x = &c->v[i];
        x->a.subject = x->subject;
        x->a.sending_ip = or_null(x->ip);
        x->a.vmta = or_null(x->vmta);
        x->a.stream = or_null(x->stream);
        x->a.receiver = or_null(x->receiver);
        x->a.list = or_null(x->list);
        x->a.command = (const char *const *)(x->a.kind == BP_ALERT_LISTING    ? cfg->listing_command
                                             : x->a.kind == BP_ALERT_DEFERRAL ? cfg->deferral_command
                                                                              : cfg->complaint_command);
    }
    return st;
}

/* ---- state -------------------------------------------------------------------------- */

static int note_state(void *user, const bp_signal_alert_state *st)
{
    struct cand *x = user;
    x->state = *st;
    x->state.alert = bp_alert_name(x->a.kind);
    x->state.subject = x->subject;
    return 0;
}

/* Decide what each candidate does and record it, in one transaction. */
static bp_status decide(bp_store *s, const bp_signals_config *cfg, long long now, struct cands *c)
{
    bp_status st = bp_store_begin(s);
    for (size_t i = 0; st == BP_OK && i < c->n; i++) {
        struct cand *x = &c->v[i];
        int has_command = x->a.command != NULL;
        st = bp_store_signal_alert(s, bp_alert_name(x->a.kind), x->subject, note_state, x);
        if (st == BP_ERR_NOT_FOUND) {
            st = BP_OK;
            x->state = (bp_signal_alert_state){
                bp_alert_name(x->a.kind), x->subject, now, now, now, 1, has_command ? ACTION_PENDING : ACTION_NONE};
            x->fire = 1;
        } else if (st == BP_OK && now - x->state.last_seen > cfg->cooldown) {
            x->state.last_fired = now; /* a new episode */
            x->state.fired++;
            x->state.action_status = has_command ? ACTION_PENDING : ACTION_NONE;
            x->fire = 1;
        } else if (st == BP_OK && has_command &&
                   (x->state.action_status == ACTION_FAILED || x->state.action_status == ACTION_PENDING)) {
            x->fire = 1; /* its command failed or never ran: again */
            x->a.retry = 1;
        }
        if (st != BP_OK)
            break;
        x->a.first_fired = x->state.last_fired;
        if (now > x->state.last_seen)
            x->state.last_seen = now;
        st = bp_store_signal_alert_put(s, &x->state);
    }
    if (st == BP_OK)
        return bp_store_commit(s);
    bp_store_rollback(s);
    return st;
}

bp_status bp_signals_check(bp_store *s, const bp_signals_config *cfg, long long now, bp_alert_fn fire, void *user,
                           unsigned *fired)
{
    struct cands c = {NULL, 0, 0, 0};
    *fired = 0;
    bp_status st = conditions(s, cfg, now, &c);
    if (st == BP_OK && c.n > 0)
        st = decide(s, cfg, now, &c);
    int any = 0;
    for (size_t i = 0; st == BP_OK && i < c.n; i++) {
        struct cand *x = &c.v[i];
        if (!x->fire)
            continue;
        (*fired)++;
        int outcome = fire(user, &x->a);
        x->state.action_status = outcome < 0 ? ACTION_NONE : outcome == 0 ? ACTION_OK : ACTION_FAILED;
        any = 1;
    }
    if (st == BP_OK && any) { /* the commands' outcomes: a failed one runs again next time */
        st = bp_store_begin(s);
        for (size_t i = 0; st == BP_OK && i < c.n; i++)
            if (c.v[i].fire)
                st = bp_store_signal_alert_put(s, &c.v[i].state);
        if (st == BP_OK)
            st = bp_store_commit(s);
        else
            bp_store_rollback(s);
    }
    free(c.v);
    return st;
}

/* ---- commands ----------------------------------------------------------------------- */

void bp_alert_argv_free(char **argv)
{
    free_list(argv);
}

/* The value of placeholder @p i for @p a, written into @p buf; NULL when it has none. */
static const char *placeholder_value(const bp_alert *a, int i, char *buf, size_t size)
{
    switch (i) {
    case 0: return a->sending_ip;
    case 1: return a->vmta;
    case 2: return a->stream;
    case 3: return a->receiver;
    case 4: return a->list;
    case 5: return bp_alert_name(a->kind);
    case 6: snprintf(buf, size, "%g", a->threshold); return buf;
    case 7: snprintf(buf, size, "%g", a->value); return buf;
    case 8: snprintf(buf, size, "%lld", a->count); return buf;
    case 9: snprintf(buf, size, "%lld", a->base); return buf;
    default: return NULL;
    }
}

bp_status bp_alert_argv(const bp_alert *a, char ***argv, const char **why)
{
    *argv = NULL;
    *why = NULL;
    size_t n = 0;
    while (a->command != NULL && a->command[n] != NULL)
        n++;
    if (n == 0) {
        *why = "no command is configured";
        return BP_ERR_NOT_FOUND;
    }
    char **v = bp_calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return BP_ERR_NOMEM;
    bp_status st = BP_OK;
    for (size_t k = 0; k < n && st == BP_OK; k++) {
        char out[1024];
        size_t o = 0;
        for (const char *p = a->command[k]; *p != '\0' && st == BP_OK;) {
            size_t len = 0;
            int ph = *p == '{' ? placeholder_at(p, &len) : -1;
            char num[64];
            const char *val = ph >= 0 ? placeholder_value(a, ph, num, sizeof(num)) : NULL;
            if (ph >= 0 && val == NULL) {
                *why = "a placeholder of the command has no value for this alert";
                st = BP_ERR_NOT_FOUND;
            } else if (ph >= 0) {
                size_t vl = strlen(val);
                if (o + vl >= sizeof(out)) {
                    *why = "an argument of the command is too long";
                    st = BP_ERR_NOT_FOUND;
                } else {
                    memcpy(out + o, val, vl);
                    o += vl;
                    p += len;
                }
            } else if (o + 1 >= sizeof(out)) {
                *why = "an argument of the command is too long";
                st = BP_ERR_NOT_FOUND;
            } else {
                out[o++] = *p++;
            }
        }
        out[o] = '\0';
        if (st == BP_OK && (v[k] = bp_strdup(out)) == NULL)
            st = BP_ERR_NOMEM;
    }
    if (st != BP_OK) {
        free_list(v);
        return st;
    }
    *argv = v;
    return BP_OK;
}
