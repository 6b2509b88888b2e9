/*
 * cmd_dmarc.c - bouncepipe dmarc [--db LOCATION] [--config FILE]
 *               [--format text|json|csv|prometheus] [--since DATE] [--until DATE]
 *               [--domain DOMAIN] [--period day|week|month|all]
 *               [--table summary|domains|sources|flags|readiness|reports|failures]
 *               [--resolve] [--top N] [--output FILE]
 *
 * The view of the DMARC aggregate reports the store holds (docs/dmarc.md, "bouncepipe dmarc"):
 * per From domain and period the volume, the DMARC pass rate, the aligned DKIM and SPF pass
 * rates and the dispositions; per source IP the same, with its reverse DNS; the two red flags
 * (an IP that is not ours sending as the domain and failing DMARC; one of our IPs failing
 * aligned DKIM or SPF), each with the auth results behind it; the readiness line (the DMARC
 * pass rate of our own traffic against BAR_PERCENT, for the next policy step none ->
 * quarantine -> reject); the reports; and the failure (ruf) reports of the same domain.
 *
 * Window: reports that begin in [--since, --until); by default the 30 days before the end of
 * the newest stored report.  "Our" IPs: [dmarc] own_networks, else the sending IPs the
 * accounting stream named in the window (acct's dlvSourceIp, dmarc_store.h), else none (then
 * no red flags, and readiness counts all traffic, saying so).
 *
 * Reverse DNS: names cached in the store are always shown; --resolve looks up the rest (the
 * busiest first) within the bounds of limits.h (BP_DMARC_RESOLVE_*) and caches what it found,
 * a name or "none" (a temporary failure is not cached).
 *
 * Output goes through the structured writer: JSON (one document) and CSV (one table, --table,
 * default the domains) as data; text and the Prometheus text format as layouts of their own,
 * handed to the writer as they are.  --output writes FILE atomically (stats does the same).
 * Exit status: 0; 1 store or output failure; 64 usage; 75 store busy; 78 configuration.
 *
 * Ownership: everything the view collects lives in one GLib string chunk and arrays owned
 * by the run, freed on return.
 */
#include <arpa/inet.h>
#include <glib.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"
#include "bouncepipe/dmarc_store.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"
#include "cli.h"

/* The readiness bar: the share of our own mail that must pass DMARC before the next policy
 * step (the operators' rule of thumb the issue names: 98 %). */
#define BAR_PERCENT 98
/* The default window: this many days before the end of the newest report. */
#define DEFAULT_DAYS 30

static const char *const dmarc_formats[] = {"text", "json", "csv", "prometheus", NULL};
enum { FMT_TEXT, FMT_JSON, FMT_CSV, FMT_PROMETHEUS };
static const struct option dmarc_options[] = {
    {"until", required_argument, NULL, 'u'},  {"domain", required_argument, NULL, 'D'},
    {"period", required_argument, NULL, 'P'}, {"table", required_argument, NULL, 't'},
    {"resolve", no_argument, NULL, 'R'},      {"top", required_argument, NULL, 'T'},
    {"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
static const bp_cli_command dmarc_command = {
    "dmarc",
    BP_OPT_STORE | BP_OPT_FORMAT | BP_OPT_SINCE,
    dmarc_options,
    0,
    dmarc_formats,
    0,
    0,
    "usage: bouncepipe dmarc [--db PATH] [--config FILE] [--format text|json|csv|prometheus]\n"
    "                        [--since DATE] [--until DATE] [--domain DOMAIN] [--period day|week|month|all]\n"
    "                        [--table summary|domains|sources|flags|readiness|reports|failures]\n"
    "                        [--resolve] [--top N] [--output FILE]\n"
    "DMARC aggregate reports per From domain: pass rates, sources, red flags, readiness.\n",
    BP_CLI_SETUP_CONFIG,
};

enum period { PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH, PERIOD_ALL };
static const char *const period_names[] = {"day", "week", "month", "all", NULL};
enum table { TABLE_SUMMARY, TABLE_DOMAINS, TABLE_SOURCES, TABLE_FLAGS, TABLE_READINESS, TABLE_REPORTS, TABLE_FAILURES };
static const char *const table_names[] = {"summary",   "domains", "sources",  "flags",
                                          "readiness", "reports", "failures", NULL};

struct dmarc_args {
    long long until;
    const char *domain;
    int period;
    int table;
    int table_given;
    int resolve;
    long top;
    const char *output;
};

/* Messages and what became of them: one period, one source, one domain. */
typedef struct counts {
    long long messages, pass, dkim, spf, quarantine, reject;
} counts;

typedef struct auth_line {
    const char *method, *domain, *selector, *result;
    long long messages;
} auth_line;

typedef struct source {
    const char *ip;
    counts c;
    int own;
    const char *rdns;   /* NULL: not known */
    int rdns_none;      /* looked up, no name */
    long long failures; /* failure reports naming this IP */
    auth_line *auth;    /* flagged sources only */
    size_t n_auth;
} source;

typedef struct period_row {
    long long key; /* first day of the period (day number), 0 for "all" */
    long long reports;
    counts c;
} period_row;

typedef struct failure_row {
    long long when;
    const char *source_ip, *reporting_mta, *original_message_id, *source;
} failure_row;

typedef struct domain_view {
    const char *name;
    counts c;
    long long reports;
    period_row *periods;
    size_t n_periods, cap_periods;
    source *sources;
    size_t n_sources, cap_sources;
    GHashTable *by_ip; /* ip -> index + 1 */
    counts own;
    /* the policy that applies to the domain (the latest report's) */
    const char *policy_domain, *p, *sp, *adkim, *aspf;
    long long pct;
    int sub; /* a subdomain of policy_domain: sp applies */
    failure_row *failures;
    size_t n_failures, cap_failures;
} domain_view;

typedef struct view {
    GStringChunk *strings;
    bp_dmarc_window w;
    int period;
    domain_view *domains;
    size_t n_domains, cap_domains;
    bp_dmarc_policy *policies; /* the latest per policy domain */
    size_t n_policies, cap_policies;
    const char *own_from; /* "config", "acct" or NULL */
    char **acct_ips;
    size_t n_acct_ips, cap_acct_ips;
    const bp_config *config;
    bp_dmarc_listed *reports; /* --table reports */
    size_t n_reports, cap_reports;
    long long total_reports;
    int nomem;
} view;

/* ---- small helpers ---- */

static const char *keep(view *v, const char *s)
{
    return s != NULL ? g_string_chunk_insert_const(v->strings, s) : NULL;
}

/* A new zeroed row of one of the view's arrays; NULL when out of memory, which the view then
 * remembers (v->nomem: the walk stops and the command says so). */
static void *new_row(view *v, void *arrayp, size_t *n, size_t *cap, size_t size)
{
    void *row = bp_array_push(arrayp, n, cap, size, 8);
    if (row == NULL)
        v->nomem = 1;
    return row;
}

static void add_counts(counts *to, const counts *c)
{
    to->messages += c->messages;
    to->pass += c->pass;
    to->dkim += c->dkim;
    to->spf += c->spf;
    to->quarantine += c->quarantine;
    to->reject += c->reject;
}

/* The first day of the period holding day number @p day. */
static long long period_key(int period, long long day)
{
    switch (period) {
    case PERIOD_DAY: return day;
    case PERIOD_WEEK: return day - ((day % 7 + 7 + 3) % 7); /* Monday: day 0 (1970-01-01) was a Thursday */
    case PERIOD_MONTH: {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        return (long long)timegm(&tm) / 86400;
    }
    default: return 0;
    }
}

static const char *period_label(int period, long long key, char *buf, size_t size)
{
    if (period == PERIOD_ALL)
        return "all";
    bp_utc_format(key * 86400, period == PERIOD_MONTH ? BP_UTC_MONTH : BP_UTC_DAY, buf, size);
    return buf;
}

/* @p part of @p whole as a percentage with two decimals into @p buf ("-" when whole is 0). */
static const char *percent(long long part, long long whole, char *buf, size_t size)
{
    if (whole <= 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.2f %%", 100.0 * (double)part / (double)whole);
    return buf;
}

static double ratio(long long part, long long whole)
{
    return whole > 0 ? (double)part / (double)whole : 0.0;
}

/* ---- collecting ---- */

static domain_view *domain_of(view *v, const char *name)
{
    if (v->n_domains > 0 && strcmp(v->domains[v->n_domains - 1].name, name) == 0)
        return &v->domains[v->n_domains - 1];
    for (size_t i = 0; i < v->n_domains; i++)
        if (strcmp(v->domains[i].name, name) == 0)
            return &v->domains[i];
    domain_view *d = bp_array_push(&v->domains, &v->n_domains, &v->cap_domains, sizeof(*d), 8);
    if (d == NULL)
        return NULL;
    d->name = keep(v, name);
    d->pct = -1;
    d->by_ip = g_hash_table_new(g_str_hash, g_str_equal);
    return d;
}

static period_row *period_of(domain_view *d, long long key)
{
    for (size_t i = d->n_periods; i > 0; i--) /* rows come in day order: the last one, mostly */
        if (d->periods[i - 1].key == key)
            return &d->periods[i - 1];
    period_row *p = bp_array_push(&d->periods, &d->n_periods, &d->cap_periods, sizeof(*p), 8);
    if (p != NULL)
        p->key = key;
    return p;
}

static int is_own(const view *v, const char *ip)
{
    if (v->own_from == NULL)
        return 0;
    for (size_t i = 0; v->config != NULL && i < v->config->n_own_networks; i++)
        if (bp_cidr_contains(&v->config->own_networks[i], ip))
            return 1;
    for (size_t i = 0; i < v->n_acct_ips; i++)
        if (strcmp(v->acct_ips[i], ip) == 0)
            return 1;
    return 0;
}

static source *source_of(view *v, domain_view *d, const char *ip)
{
    gpointer at = g_hash_table_lookup(d->by_ip, ip);
    if (at != NULL)
        return &d->sources[GPOINTER_TO_SIZE(at) - 1];
    source *s = bp_array_push(&d->sources, &d->n_sources, &d->cap_sources, sizeof(*s), 8);
    if (s == NULL)
        return NULL;
    s->ip = keep(v, ip);
    s->own = is_own(v, ip);
    g_hash_table_insert(d->by_ip, (gpointer)s->ip, GSIZE_TO_POINTER(d->n_sources));
    return s;
}

static int take_traffic(void *user, const bp_dmarc_traffic *t)
{
    view *v = user;
    counts c = {t->messages, t->pass, t->dkim_aligned, t->spf_aligned, t->quarantine, t->reject};
    domain_view *d = domain_of(v, t->domain != NULL ? t->domain : "(none)");
    period_row *p = d != NULL ? period_of(d, period_key(v->period, t->day)) : NULL;
    source *s = d != NULL ? source_of(v, d, t->source_ip != NULL ? t->source_ip : "?") : NULL;
    if (p == NULL || s == NULL) {
        v->nomem = 1;
        return 1;
    }
    add_counts(&p->c, &c);
    add_counts(&s->c, &c);
    add_counts(&d->c, &c);
    if (s->own)
        add_counts(&d->own, &c);
    return 0;
}

static int take_report_days(void *user, const char *key, long long day, long long n)
{
    view *v = user;
    domain_view *d = domain_of(v, key != NULL ? key : "(none)");
    period_row *p = d != NULL ? period_of(d, period_key(v->period, day)) : NULL;
    if (p == NULL) {
        v->nomem = 1;
        return 1;
    }
    p->reports += n; /* a report over several periods' days is counted once per day it began */
    d->reports += n;
    return 0;
}

static int take_policy(void *user, const bp_dmarc_policy *p)
{
    view *v = user;
    if (v->n_policies > 0 && strcmp(v->policies[v->n_policies - 1].domain, p->domain) == 0)
        return 0; /* the latest of the domain came first */
    bp_dmarc_policy *k = new_row(v, &v->policies, &v->n_policies, &v->cap_policies, sizeof(*k));
    if (k == NULL)
        return 1;
    k->domain = keep(v, p->domain);
    k->p = keep(v, p->p);
    k->sp = keep(v, p->sp);
    k->adkim = keep(v, p->adkim);
    k->aspf = keep(v, p->aspf);
    k->pct = p->pct;
    k->begin = p->begin;
    return 0;
}

static int take_acct_ip(void *user, const char *ip, long long day, long long n)
{
    (void)day;
    (void)n;
    view *v = user;
    if (ip == NULL)
        return 0;
    char **slot = new_row(v, &v->acct_ips, &v->n_acct_ips, &v->cap_acct_ips, sizeof(*slot));
    if (slot == NULL)
        return 1;
    *slot = (char *)keep(v, ip);
    return 0;
}

static int take_failure(void *user, const bp_dmarc_failure *f)
{
    view *v = user;
    domain_view *d = domain_of(v, f->reported_domain != NULL ? f->reported_domain : "(none)");
    failure_row *r = d != NULL ? new_row(v, &d->failures, &d->n_failures, &d->cap_failures, sizeof(*r)) : NULL;
    if (r == NULL) {
        v->nomem = 1; /* the domain's row, or this one */
        return 1;
    }
    r->when = f->when;
    r->source_ip = keep(v, f->source_ip);
    r->reporting_mta = keep(v, f->reporting_mta);
    r->original_message_id = keep(v, f->original_message_id);
    r->source = keep(v, f->source);
    return 0;
}

static int take_listed(void *user, const bp_dmarc_listed *l)
{
    view *v = user;
    bp_dmarc_listed *r = new_row(v, &v->reports, &v->n_reports, &v->cap_reports, sizeof(*r));
    if (r == NULL)
        return 1;
    *r = *l;
    r->org_name = keep(v, l->org_name);
    r->report_id = keep(v, l->report_id);
    r->domain = keep(v, l->domain);
    r->p = keep(v, l->p);
    r->email = keep(v, l->email);
    return 0;
}

typedef struct auth_take {
    view *v;
    source *s;
} auth_take;

static int take_auth(void *user, const bp_dmarc_auth_row *a)
{
    auth_take *t = user;
    size_t cap = t->s->n_auth; /* grown one at a time: a handful per source */
    auth_line *l = bp_realloc(t->s->auth, (cap + 1) * sizeof(*l));
    if (l == NULL) {
        t->v->nomem = 1;
        return 1;
    }
    t->s->auth = l;
    l = &l[t->s->n_auth++];
    l->method = keep(t->v, a->method);
    l->domain = keep(t->v, a->auth_domain);
    l->selector = keep(t->v, a->selector);
    l->result = keep(t->v, a->result);
    l->messages = a->messages;
    return 0;
}

/* The policy of @p d: its own domain's, else the nearest parent's (sp then applies). */
static void apply_policy(view *v, domain_view *d)
{
    const bp_dmarc_policy *best = NULL;
    size_t best_len = 0;
    size_t n = strlen(d->name);
    for (size_t i = 0; i < v->n_policies; i++) {
        const bp_dmarc_policy *p = &v->policies[i];
        size_t len = strlen(p->domain);
        int exact = strcmp(p->domain, d->name) == 0;
        int parent = len < n && d->name[n - len - 1] == '.' && strcmp(d->name + n - len, p->domain) == 0;
        if ((exact || parent) && (best == NULL || exact || len > best_len)) {
            best = p;
            best_len = exact ? n + 1 : len;
        }
    }
    if (best == NULL)
        return;
    d->policy_domain = best->domain;
    d->sub = strcmp(best->domain, d->name) != 0;
    d->p = d->sub && best->sp != NULL ? best->sp : best->p;
    d->sp = best->sp;
    d->adkim = best->adkim;
    d->aspf = best->aspf;
    d->pct = best->pct;
}

/* A source that raises a red flag: not ours and failing DMARC; ours and failing aligned DKIM
 * or SPF.  (None without our IPs.) */
static int unknown_flag(const view *v, const source *s)
{
    return v->own_from != NULL && !s->own && s->c.messages > s->c.pass;
}

static int own_flag(const view *v, const source *s)
{
    return v->own_from != NULL && s->own && (s->c.messages > s->c.dkim || s->c.messages > s->c.spf);
}

/* The next policy step, or NULL at reject (or when no policy was seen). */
static const char *next_step(const char *p)
{
    if (p == NULL)
        return NULL;
    if (strcmp(p, "none") == 0)
        return "quarantine";
    if (strcmp(p, "quarantine") == 0)
        return "reject";
    return NULL;
}

static int ready(const domain_view *d)
{
    return d->own.messages > 0 && d->own.pass * 100 >= (long long)BAR_PERCENT * d->own.messages;
}

static int by_messages(const void *a, const void *b)
{
    const source *x = a, *y = b;
    if (x->c.messages != y->c.messages)
        return x->c.messages > y->c.messages ? -1 : 1;
    return strcmp(x->ip, y->ip);
}

static int by_period(const void *a, const void *b)
{
    const period_row *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const domain_view *)a)->name, ((const domain_view *)b)->name);
}

/* ---- reverse DNS ---- */

typedef struct rdns_hit {
    const char *name;
    long long when;
    int found;
} rdns_hit;

static int take_rdns(void *user, const char *name, long long day, long long when)
{
    (void)day;
    rdns_hit *h = user;
    h->name = name != NULL ? g_strdup(name) : NULL;
    h->when = when;
    h->found = 1;
    return 1;
}

/* Ask DNS for the name of @p ip.  @return 1 a name (in @p name), 0 none, -1 not now. */
static int lookup_ptr(const char *ip, char *name, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1)
            return 0;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
            return 0;
        len = sizeof(*a);
    }
    int rc = getnameinfo((struct sockaddr *)&ss, len, name, (socklen_t)size, NULL, 0, NI_NAMEREQD);
    if (rc == 0)
        return 1;
    return rc == EAI_NONAME ? 0 : -1;
}

typedef struct ip_rank {
    const char *ip;
    long long messages;
} ip_rank;

static int by_rank(const void *a, const void *b)
{
    const ip_rank *x = a, *y = b;
    if (x->messages != y->messages)
        return x->messages > y->messages ? -1 : 1;
    return strcmp(x->ip, y->ip);
}

/* Fill every source's rdns from the cache, and with @p resolve look the rest up (the busiest
 * first, within BP_DMARC_RESOLVE_*) and cache what was found.  @return the store's status. */
static bp_status reverse_dns(view *v, bp_store *store, int resolve, size_t *looked_up, size_t *left)
{
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free); /* ip -> name or "" */
    bp_arena *arena = bp_arena_new();                                                 /* cleaned names */
    size_t n = 0;
    for (size_t i = 0; i < v->n_domains; i++)
        n += v->domains[i].n_sources;
    ip_rank *rank = bp_calloc(n > 0 ? n : 1, sizeof(*rank));
    bp_status st = rank != NULL && arena != NULL ? BP_OK : BP_ERR_NOMEM;
    size_t k = 0;
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < v->n_domains && st == BP_OK; i++)
        for (size_t j = 0; j < v->domains[i].n_sources; j++) {
            const source *s = &v->domains[i].sources[j];
            size_t at = 0;
            while (at < k && strcmp(rank[at].ip, s->ip) != 0)
                at++;
            if (at == k)
                rank[k++] = (ip_rank){s->ip, 0};
            rank[at].messages += s->c.messages;
        }
    if (st == BP_OK)
        bp_sort(rank, k, sizeof(*rank), by_rank);
    long long started = bp_monotonic_ms();
    int in_tx = 0;
    *looked_up = *left = 0;
    /* one try of one second per name server (limits.h); an operator's own RES_OPTIONS wins */
    if (resolve)
        setenv("RES_OPTIONS", "timeout:1 attempts:1", 0);
    for (size_t i = 0; i < k && st == BP_OK; i++) {
        rdns_hit hit = {NULL, 0, 0};
        st = bp_store_dmarc_rdns_get(store, rank[i].ip, take_rdns, &hit);
        if (st == BP_ERR_NOT_FOUND)
            st = BP_OK;
        int fresh = hit.found && now - hit.when < (long long)BP_DMARC_RESOLVE_TTL_DAYS * 86400;
        if (hit.found)
            g_hash_table_replace(names, (gpointer)rank[i].ip, hit.name != NULL ? (char *)hit.name : g_strdup(""));
        if (!resolve || fresh || st != BP_OK)
            continue;
        if (*looked_up >= BP_DMARC_RESOLVE_MAX || bp_monotonic_ms() - started >= BP_DMARC_RESOLVE_SECONDS * 1000LL) {
            (*left)++;
            continue;
        }
        char name[NI_MAXHOST];
        int got = lookup_ptr(rank[i].ip, name, sizeof(name));
        (*looked_up)++;
        if (got < 0)
            continue; /* not now: not cached */
        const char *clean = got > 0 ? bp_clean_text(arena, name, strlen(name), BP_MAX_STORED_HOST_BYTES) : NULL;
        g_hash_table_replace(names, (gpointer)rank[i].ip, g_strdup(clean != NULL ? clean : ""));
        if (!in_tx && (st = bp_store_begin(store)) == BP_OK)
            in_tx = 1;
        if (st == BP_OK)
            st = bp_store_dmarc_rdns_put(store, rank[i].ip, clean, now);
    }
    if (in_tx)
        st = bp_cli_end_tx(store, st);
    for (size_t i = 0; i < v->n_domains; i++)
        for (size_t j = 0; j < v->domains[i].n_sources; j++) {
            source *s = &v->domains[i].sources[j];
            const char *name = g_hash_table_lookup(names, s->ip);
            if (name != NULL && *name != '\0')
                s->rdns = keep(v, name);
            s->rdns_none = name != NULL && *name == '\0';
        }
    free(rank);
    bp_arena_free(arena);
    g_hash_table_destroy(names);
    return st;
}

/* ---- output ---- */

static const char *policy_text(const domain_view *d, char *buf, size_t size)
{
    if (d->p == NULL) {
        snprintf(buf, size, "no published policy seen");
        return buf;
    }
    int n = d->sub ? snprintf(buf, size, "sp=%s (of %s)", d->p, d->policy_domain) : snprintf(buf, size, "p=%s", d->p);
    if (d->pct >= 0 && d->pct < 100 && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " pct=%lld", d->pct);
    return buf;
}

/* The readiness line of @p d (for text and the log of tests: one line, greppable). */
static void readiness_line(const view *v, const domain_view *d, bp_strbuf *sb)
{
    char pol[160], pc[32];
    const char *next = next_step(d->p);
    policy_text(d, pol, sizeof(pol));
    bp_strbuf_printf(sb, "readiness %s: %s", d->name, pol);
    if (next == NULL) {
        bp_strbuf_printf(sb, d->p != NULL ? ", the strictest step already: " : ": ");
    } else if (d->own.messages == 0) {
        bp_strbuf_printf(sb, " -> %s=%s: UNKNOWN, no traffic from our IPs in the window%s\n", d->sub ? "sp" : "p", next,
                         v->own_from == NULL ? " (no own networks: [dmarc] own_networks)" : "");
        return;
    } else {
        bp_strbuf_printf(sb, " -> %s=%s: %s, ", d->sub ? "sp" : "p", next, ready(d) ? "READY" : "NOT READY");
    }
    bp_strbuf_printf(sb, "our traffic passes DMARC %s (%lld of %lld messages%s), bar %d %%\n",
                     percent(d->own.pass, d->own.messages, pc, sizeof(pc)), d->own.pass, d->own.messages,
                     v->own_from != NULL ? " from our IPs" : ", all IPs: our own are not known", BAR_PERCENT);
}

static void flag_lines(const view *v, const domain_view *d, bp_strbuf *sb, int detail)
{
    for (size_t i = 0; i < d->n_sources; i++) {
        const source *s = &d->sources[i];
        char rd[400] = "";
        if (s->rdns != NULL)
            snprintf(rd, sizeof(rd), " (%s)", s->rdns);
        if (unknown_flag(v, s))
            bp_strbuf_printf(sb,
                             "red flag %s: unknown source %s%s sent %lld messages as %s, %lld failing DMARC "
                             "(quarantined %lld, rejected %lld)%s\n",
                             d->name, s->ip, rd, s->c.messages, d->name, s->c.messages - s->c.pass, s->c.quarantine,
                             s->c.reject, s->failures > 0 ? "; failure reports name it" : "");
        else if (own_flag(v, s))
            bp_strbuf_printf(sb,
                             "red flag %s: our IP %s%s fails aligned DKIM for %lld and aligned SPF for %lld of its "
                             "%lld messages (%lld failing DMARC)\n",
                             d->name, s->ip, rd, s->c.messages - s->c.dkim, s->c.messages - s->c.spf, s->c.messages,
                             s->c.messages - s->c.pass);
        else
            continue;
        for (size_t j = 0; detail && j < s->n_auth; j++)
            bp_strbuf_printf(sb, "    %-4s %s%s%s %s: %lld messages\n", s->auth[j].method,
                             s->auth[j].domain != NULL ? s->auth[j].domain : "-",
                             s->auth[j].selector != NULL ? " " : "",
                             s->auth[j].selector != NULL ? s->auth[j].selector : "",
                             s->auth[j].result != NULL ? s->auth[j].result : "-", s->auth[j].messages);
    }
}

static void counts_row(bp_strbuf *sb, const char *label, long long reports, const counts *c)
{
    char a[32], b[32], e[32];
    bp_strbuf_printf(sb, "  %-12s %8lld %10lld %10s %10s %10s %9lld %10lld %8lld\n", label, reports, c->messages,
                     percent(c->pass, c->messages, a, sizeof(a)), percent(c->dkim, c->messages, b, sizeof(b)),
                     percent(c->spf, c->messages, e, sizeof(e)), c->messages - c->quarantine - c->reject, c->quarantine,
                     c->reject);
}

static void text_layout(const view *v, const struct dmarc_args *a, bp_strbuf *sb)
{
    char since[32], until[32];
    int all = a->table == TABLE_SUMMARY;
    bp_strbuf_printf(sb, "DMARC aggregate reports beginning %s .. %s (UTC): %lld reports\n",
                     bp_cli_format_date(v->w.since, since, sizeof(since)),
                     bp_cli_format_date(v->w.until - 1, until, sizeof(until)), v->total_reports);
    if (v->own_from == NULL)
        bp_strbuf_puts(sb, "our IPs: not known ([dmarc] own_networks, or acct's dlvSourceIp): no red flags\n");
    else if (strcmp(v->own_from, "config") == 0)
        bp_strbuf_printf(sb, "our IPs: %zu networks of [dmarc] own_networks\n", v->config->n_own_networks);
    else
        bp_strbuf_printf(sb, "our IPs: the %zu sending IPs of the accounting stream (dlvSourceIp)\n", v->n_acct_ips);
    if (a->table == TABLE_REPORTS) {
        for (size_t i = 0; i < v->n_reports; i++) {
            const bp_dmarc_listed *r = &v->reports[i];
            char b[32], e[32];
            bp_strbuf_printf(sb, "%s %s %s %s .. %s p=%s: %lld records, %lld messages, %lld pass%s\n", r->domain,
                             r->org_name, r->report_id, bp_cli_format_date(r->begin, b, sizeof(b)),
                             bp_cli_format_date(r->end, e, sizeof(e)), r->p != NULL ? r->p : "-", r->records,
                             r->messages, r->pass, r->detail_cut > 0 ? " (detail cut)" : "");
        }
        return;
    }
    if (v->n_domains == 0)
        bp_strbuf_puts(sb, "(no reports in the window)\n");
    for (size_t i = 0; i < v->n_domains; i++) {
        const domain_view *d = &v->domains[i];
        char pol[160], lab[32], a1[32], a2[32], a3[32];
        bp_strbuf_printf(sb, "\n%s: %s\n", d->name, policy_text(d, pol, sizeof(pol)));
        if (all || a->table == TABLE_DOMAINS) {
            bp_strbuf_printf(sb, "  %-12s %8s %10s %10s %10s %10s %9s %10s %8s\n", "period", "reports", "messages",
                             "DMARC", "DKIM", "SPF", "none", "quarantine", "reject");
            for (size_t j = 0; j < d->n_periods; j++)
                counts_row(sb, period_label(v->period, d->periods[j].key, lab, sizeof(lab)), d->periods[j].reports,
                           &d->periods[j].c);
            if (v->period != PERIOD_ALL)
                counts_row(sb, "total", d->reports, &d->c);
        }
        if (all || a->table == TABLE_READINESS) {
            bp_strbuf_puts(sb, "  ");
            readiness_line(v, d, sb);
        }
        if (all || a->table == TABLE_FLAGS) {
            bp_strbuf fl = {0};
            flag_lines(v, d, &fl, 1);
            if (fl.len > 0) {
                /* indent each line */
                for (char *line = fl.data; line != NULL && *line;) {
                    char *nl = strchr(line, '\n');
                    bp_strbuf_printf(sb, "  %.*s\n", (int)(nl != NULL ? nl - line : (long)strlen(line)), line);
                    line = nl != NULL ? nl + 1 : NULL;
                }
            } else if (v->own_from != NULL) {
                bp_strbuf_printf(sb, "  no red flags for %s\n", d->name);
            }
            bp_strbuf_free(&fl);
        }
        if (all || a->table == TABLE_SOURCES) {
            bp_strbuf_printf(sb, "  %-39s %3s %10s %10s %10s %10s  %s\n", "source", "own", "messages", "DMARC", "DKIM",
                             "SPF", "reverse DNS");
            for (size_t j = 0; j < d->n_sources && j < (size_t)a->top; j++) {
                const source *s = &d->sources[j];
                bp_strbuf_printf(sb, "  %-39s %3s %10lld %10s %10s %10s  %s\n", s->ip, s->own ? "yes" : "no",
                                 s->c.messages, percent(s->c.pass, s->c.messages, a1, sizeof(a1)),
                                 percent(s->c.dkim, s->c.messages, a2, sizeof(a2)),
                                 percent(s->c.spf, s->c.messages, a3, sizeof(a3)),
                                 s->rdns != NULL ? s->rdns
                                 : s->rdns_none  ? "(none)"
                                                 : "-");
            }
            if (d->n_sources > (size_t)a->top)
                bp_strbuf_printf(sb, "  (and %zu more sources: --top)\n", d->n_sources - a->top);
        }
        if (all || a->table == TABLE_FAILURES) {
            bp_strbuf_printf(sb, "  failure reports (ruf): %zu\n", d->n_failures);
            for (size_t j = 0; j < d->n_failures && (a->table == TABLE_FAILURES || j < 5); j++) {
                const failure_row *f = &d->failures[j];
                char when[32];
                bp_strbuf_printf(
                    sb, "    %s source %s from %s, original %s\n", bp_cli_format_time(f->when, when, sizeof(when)),
                    f->source_ip != NULL ? f->source_ip : "-", f->reporting_mta != NULL ? f->reporting_mta : "-",
                    f->original_message_id != NULL ? f->original_message_id : "-");
            }
            if (a->table != TABLE_FAILURES && d->n_failures > 5)
                bp_strbuf_printf(sb, "    (and %zu more: --table failures)\n", d->n_failures - 5);
        }
    }
}

/* ---- JSON and CSV (the writer) ---- */

static void write_counts(bp_writer *w, const counts *c)
{
    bp_writer_entry_integer(w, "messages", c->messages);
    bp_writer_entry_integer(w, "dmarc_pass", c->pass);
    bp_writer_entry_integer(w, "dkim_aligned_pass", c->dkim);
    bp_writer_entry_integer(w, "spf_aligned_pass", c->spf);
    bp_writer_entry_integer(w, "disposition_none", c->messages - c->quarantine - c->reject);
    bp_writer_entry_integer(w, "disposition_quarantine", c->quarantine);
    bp_writer_entry_integer(w, "disposition_reject", c->reject);
}

static void domain_rows(const view *v, bp_writer *w, const domain_view *d, int table, int csv, int separate);

/* A ratio with four decimals, as a string (the writer has no floats; JSON readers parse it). */
static void write_ratio(bp_writer *w, const char *key, long long part, long long whole)
{
    char buf[32];
    bp_writer_key(w, key);
    if (whole <= 0) {
        bp_writer_null(w);
        return;
    }
    snprintf(buf, sizeof(buf), "%.4f", ratio(part, whole));
    bp_writer_string(w, buf);
}

static void write_source(const view *v, bp_writer *w, const domain_view *d, const source *s, int csv)
{
    if (csv) {
        bp_writer_entry_string(w, "domain", d->name);
    }
    bp_writer_entry_string(w, "ip", s->ip);
    bp_writer_entry_boolean(w, "own", s->own);
    bp_writer_entry_string(w, "reverse_dns", s->rdns);
    write_counts(w, &s->c);
    write_ratio(w, "dmarc_pass_rate", s->c.pass, s->c.messages);
    bp_writer_entry_integer(w, "failure_reports", s->failures);
    (void)v;
}

static void write_readiness(const view *v, bp_writer *w, const domain_view *d, int csv)
{
    const char *next = next_step(d->p);
    if (csv) {
        bp_writer_entry_string(w, "domain", d->name);
    }
    bp_writer_entry_string(w, "policy", d->p);
    bp_writer_key(w, "pct");
    if (d->pct >= 0)
        bp_writer_integer(w, d->pct);
    else
        bp_writer_null(w);
    bp_writer_entry_string(w, "next", next);
    bp_writer_entry_integer(w, "own_messages", d->own.messages);
    bp_writer_entry_integer(w, "own_pass", d->own.pass);
    write_ratio(w, "own_pass_rate", d->own.pass, d->own.messages);
    char bar[16];
    snprintf(bar, sizeof(bar), "%.2f", BAR_PERCENT / 100.0);
    bp_writer_entry_string(w, "bar", bar);
    bp_writer_key(w, "ready");
    if (next == NULL || d->own.messages == 0)
        bp_writer_null(w);
    else
        bp_writer_boolean(w, ready(d));
    bp_writer_entry_boolean(w, "own_known", v->own_from != NULL);
}

static void write_flag(const view *v, bp_writer *w, const domain_view *d, const source *s, int csv)
{
    bp_writer_entry_string(w, "domain", d->name);
    bp_writer_entry_string(w, "kind", unknown_flag(v, s) ? "unknown-source" : "own-ip-failing");
    bp_writer_entry_string(w, "ip", s->ip);
    bp_writer_entry_string(w, "reverse_dns", s->rdns);
    bp_writer_entry_integer(w, "messages", s->c.messages);
    bp_writer_entry_integer(w, "dmarc_fail", s->c.messages - s->c.pass);
    bp_writer_entry_integer(w, "dkim_aligned_fail", s->c.messages - s->c.dkim);
    bp_writer_entry_integer(w, "spf_aligned_fail", s->c.messages - s->c.spf);
    bp_writer_entry_integer(w, "disposition_quarantine", s->c.quarantine);
    bp_writer_entry_integer(w, "disposition_reject", s->c.reject);
    bp_writer_entry_integer(w, "failure_reports", s->failures);
    if (csv)
        return;
    bp_writer_key(w, "auth_results");
    bp_writer_begin_list(w);
    for (size_t j = 0; j < s->n_auth; j++) {
        bp_writer_begin_map(w);
        bp_writer_entry_string(w, "method", s->auth[j].method);
        bp_writer_entry_string(w, "domain", s->auth[j].domain);
        bp_writer_entry_string(w, "selector", s->auth[j].selector);
        bp_writer_entry_string(w, "result", s->auth[j].result);
        bp_writer_entry_integer(w, "messages", s->auth[j].messages);
        bp_writer_end(w);
    }
    bp_writer_end(w);
}

static void write_failure(bp_writer *w, const domain_view *d, const failure_row *f)
{
    char when[32];
    bp_writer_entry_string(w, "domain", d->name);
    bp_writer_entry_string(w, "time", bp_cli_format_time(f->when, when, sizeof(when)));
    bp_writer_entry_string(w, "source_ip", f->source_ip);
    bp_writer_entry_string(w, "reporting_mta", f->reporting_mta);
    bp_writer_entry_string(w, "original_message_id", f->original_message_id);
    bp_writer_entry_string(w, "source", f->source);
}

static void write_listed(bp_writer *w, const bp_dmarc_listed *r)
{
    char b[32], e[32];
    bp_writer_entry_string(w, "domain", r->domain);
    bp_writer_entry_string(w, "org_name", r->org_name);
    bp_writer_entry_string(w, "report_id", r->report_id);
    bp_writer_entry_string(w, "email", r->email);
    bp_writer_entry_string(w, "begin", bp_cli_format_time(r->begin, b, sizeof(b)));
    bp_writer_entry_string(w, "end", bp_cli_format_time(r->end, e, sizeof(e)));
    bp_writer_entry_string(w, "policy", r->p);
    bp_writer_entry_integer(w, "records", r->records);
    bp_writer_entry_integer(w, "messages", r->messages);
    bp_writer_entry_integer(w, "dmarc_pass", r->pass);
    bp_writer_entry_integer(w, "detail_cut", r->detail_cut);
}

static void write_period(const view *v, bp_writer *w, const domain_view *d, const period_row *p, int csv)
{
    char lab[32];
    if (csv) {
        bp_writer_entry_string(w, "domain", d->name);
    }
    bp_writer_entry_string(w, "period", period_label(v->period, p->key, lab, sizeof(lab)));
    bp_writer_entry_integer(w, "reports", p->reports);
    write_counts(w, &p->c);
    write_ratio(w, "dmarc_pass_rate", p->c.pass, p->c.messages);
    write_ratio(w, "dkim_aligned_rate", p->c.dkim, p->c.messages);
    write_ratio(w, "spf_aligned_rate", p->c.spf, p->c.messages);
}

static void json_document(const view *v, bp_writer *w)
{
    char since[32], until[32];
    bp_writer_begin_map(w);
    bp_writer_entry_string(w, "since", bp_cli_format_time(v->w.since, since, sizeof(since)));
    bp_writer_entry_string(w, "until", bp_cli_format_time(v->w.until, until, sizeof(until)));
    bp_writer_entry_string(w, "period", period_names[v->period]);
    bp_writer_entry_integer(w, "reports", v->total_reports);
    bp_writer_entry_string(w, "own_ips_from", v->own_from);
    bp_writer_key(w, "domains");
    bp_writer_begin_list(w);
    for (size_t i = 0; i < v->n_domains; i++) {
        const domain_view *d = &v->domains[i];
        bp_writer_begin_map(w);
        bp_writer_entry_string(w, "domain", d->name);
        bp_writer_entry_string(w, "policy_domain", d->policy_domain);
        bp_writer_entry_integer(w, "reports", d->reports);
        write_counts(w, &d->c);
        write_ratio(w, "dmarc_pass_rate", d->c.pass, d->c.messages);
        write_ratio(w, "dkim_aligned_rate", d->c.dkim, d->c.messages);
        write_ratio(w, "spf_aligned_rate", d->c.spf, d->c.messages);
        bp_writer_key(w, "readiness");
        bp_writer_begin_map(w);
        write_readiness(v, w, d, 0);
        bp_writer_end(w);
        static const struct {
            const char *key;
            int table;
        } lists[] = {{"periods", TABLE_DOMAINS},
                     {"red_flags", TABLE_FLAGS},
                     {"sources", TABLE_SOURCES},
                     {"failure_reports", TABLE_FAILURES}};
        for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
            bp_writer_key(w, lists[k].key);
            bp_writer_begin_list(w);
            domain_rows(v, w, d, lists[k].table, 0, 0);
            bp_writer_end(w);
        }
        bp_writer_end(w);
    }
    bp_writer_end(w);
    bp_writer_end(w);
    bp_writer_separator(w);
}

/* The rows of table @p table (not the reports) of domain @p d, a map each: flat with the
 * domain named in each row for --table (@p csv, each row on a line of its own: @p separate),
 * nested in the domain's own map for the summary document. */
static void domain_rows(const view *v, bp_writer *w, const domain_view *d, int table, int csv, int separate)
{
    size_t n = table == TABLE_DOMAINS    ? d->n_periods
               : table == TABLE_SOURCES  ? d->n_sources
               : table == TABLE_FLAGS    ? d->n_sources
               : table == TABLE_FAILURES ? d->n_failures
                                         : (size_t)(table == TABLE_READINESS);
    for (size_t j = 0; j < n; j++) {
        if (table == TABLE_FLAGS && !unknown_flag(v, &d->sources[j]) && !own_flag(v, &d->sources[j]))
            continue;
        if (separate)
            bp_writer_separator(w); /* before each row: one row a line, no comma after the last */
        bp_writer_begin_map(w);
        switch (table) {
        case TABLE_DOMAINS: write_period(v, w, d, &d->periods[j], csv); break;
        case TABLE_SOURCES: write_source(v, w, d, &d->sources[j], csv); break;
        case TABLE_FLAGS: write_flag(v, w, d, &d->sources[j], csv); break;
        case TABLE_FAILURES: write_failure(w, d, &d->failures[j]); break;
        default: write_readiness(v, w, d, csv); break;
        }
        bp_writer_end(w);
    }
}

/* One table as rows of maps: CSV, or JSON with --table (a list). */
static void table_rows(const view *v, bp_writer *w, int table)
{
    bp_writer_begin_list(w);
    for (size_t i = 0; i < v->n_domains; i++)
        domain_rows(v, w, &v->domains[i], table, 1, 1);
    for (size_t i = 0; table == TABLE_REPORTS && i < v->n_reports; i++) {
        bp_writer_separator(w);
        bp_writer_begin_map(w);
        write_listed(w, &v->reports[i]);
        bp_writer_end(w);
    }
    bp_writer_end(w);
}

/* ---- Prometheus ---- */

static void prom_metric(bp_strbuf *sb, const char *name, const char *type, const char *help)
{
    bp_strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(bp_strbuf *sb, const char *name, const char *domain, const char *extra_key,
                       const char *extra_value, double value)
{
    bp_strbuf_printf(sb, "%s{domain=\"", name);
    bp_cli_prometheus_label(sb, domain);
    bp_strbuf_putc(sb, '"');
    if (extra_key != NULL) {
        bp_strbuf_printf(sb, ",%s=\"", extra_key);
        bp_cli_prometheus_label(sb, extra_value);
        bp_strbuf_putc(sb, '"');
    }
    bp_strbuf_printf(sb, "} %.15g\n", value);
}

static void prometheus_layout(const view *v, bp_strbuf *sb)
{
    static const struct {
        const char *name, *help;
        int what;
    } metrics[] = {
        {"bouncepipe_dmarc_reports", "DMARC aggregate reports in the window, by From domain.", 0},
        {"bouncepipe_dmarc_messages", "Messages the window's DMARC reports count, by From domain.", 1},
        {"bouncepipe_dmarc_pass_messages", "Of them, passing DMARC.", 2},
        {"bouncepipe_dmarc_dkim_aligned_messages", "Of them, passing aligned DKIM.", 3},
        {"bouncepipe_dmarc_spf_aligned_messages", "Of them, passing aligned SPF.", 4},
        {"bouncepipe_dmarc_own_messages", "Messages from our own IPs.", 5},
        {"bouncepipe_dmarc_own_pass_messages", "Of them, passing DMARC.", 6},
        {"bouncepipe_dmarc_failure_reports", "Failure (ruf) reports in the window, by Reported-Domain.", 7},
    };
    for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
        prom_metric(sb, metrics[m].name, "gauge", metrics[m].help);
        for (size_t i = 0; i < v->n_domains; i++) {
            const domain_view *d = &v->domains[i];
            const long long values[] = {d->reports, d->c.messages,   d->c.pass,   d->c.dkim,
                                        d->c.spf,   d->own.messages, d->own.pass, (long long)d->n_failures};
            prom_value(sb, metrics[m].name, d->name, NULL, NULL, (double)values[metrics[m].what]);
        }
    }
    prom_metric(sb, "bouncepipe_dmarc_disposition_messages", "gauge", "Messages by the receivers' disposition.");
    for (size_t i = 0; i < v->n_domains; i++) {
        const domain_view *d = &v->domains[i];
        prom_value(sb, "bouncepipe_dmarc_disposition_messages", d->name, "disposition", "none",
                   (double)(d->c.messages - d->c.quarantine - d->c.reject));
        prom_value(sb, "bouncepipe_dmarc_disposition_messages", d->name, "disposition", "quarantine",
                   (double)d->c.quarantine);
        prom_value(sb, "bouncepipe_dmarc_disposition_messages", d->name, "disposition", "reject", (double)d->c.reject);
    }
    prom_metric(sb, "bouncepipe_dmarc_red_flags", "gauge",
                "Source IPs raising a red flag: unknown-source (not ours, failing DMARC), own-ip-failing.");
    for (size_t i = 0; i < v->n_domains; i++) {
        const domain_view *d = &v->domains[i];
        long long unknown = 0, own = 0;
        for (size_t j = 0; j < d->n_sources; j++) {
            unknown += unknown_flag(v, &d->sources[j]);
            own += own_flag(v, &d->sources[j]);
        }
        prom_value(sb, "bouncepipe_dmarc_red_flags", d->name, "kind", "unknown-source", (double)unknown);
        prom_value(sb, "bouncepipe_dmarc_red_flags", d->name, "kind", "own-ip-failing", (double)own);
    }
    prom_metric(sb, "bouncepipe_dmarc_ready", "gauge",
                "1 when our traffic passes DMARC at the bar for the next policy step (label next).");
    for (size_t i = 0; i < v->n_domains; i++) {
        const domain_view *d = &v->domains[i];
        const char *next = next_step(d->p);
        if (next != NULL && d->own.messages > 0)
            prom_value(sb, "bouncepipe_dmarc_ready", d->name, "next", next, ready(d) ? 1.0 : 0.0);
    }
}

/* ---- the command ---- */

static int dmarc_option(void *user, int opt, const char *arg)
{
    struct dmarc_args *a = user;
    switch (opt) {
    case 'u': return bp_cli_time_option("dmarc", "--until", arg, 0, &a->until);
    case 'D': a->domain = arg; return 0;
    case 'P':
    case 't': {
        const char *const *names = opt == 'P' ? period_names : table_names;
        for (int i = 0; names[i] != NULL; i++)
            if (strcmp(names[i], arg) == 0) {
                *(opt == 'P' ? &a->period : &a->table) = i;
                a->table_given |= opt == 't';
                return 0;
            }
        bp_cli_error("dmarc", "%s: unknown '%s'", opt == 'P' ? "--period" : "--table", arg);
        return BP_EXIT_USAGE;
    }
    case 'R': a->resolve = 1; return 0;
    case 'T': return bp_cli_count_option("dmarc", "--top", arg, 1, 100000, &a->top);
    case 'o': a->output = arg; return 0;
    default: return BP_EXIT_USAGE;
    }
}

/* Read everything the view shows.  @return the store's status. */
static bp_status collect(view *v, bp_store *store, const struct dmarc_args *a)
{
    bp_status st = BP_OK;
    if (v->config != NULL && v->config->n_own_networks > 0)
        v->own_from = "config"; /* the configuration says which are ours */
    else if ((st = bp_store_dmarc_acct_ips(store, &v->w, take_acct_ip, v)) != BP_OK)
        return st;
    else if (v->n_acct_ips > 0)
        v->own_from = "acct";
    if ((st = bp_store_dmarc_traffic(store, &v->w, take_traffic, v)) != BP_OK ||
        (st = bp_store_dmarc_report_days(store, &v->w, take_report_days, v)) != BP_OK ||
        (st = bp_store_dmarc_policies(store, &v->w, take_policy, v)) != BP_OK)
        return st;
    bp_dmarc_window fw = v->w; /* failure reports: dated in the window */
    if ((st = bp_store_dmarc_failure_list(store, &fw, take_failure, v)) != BP_OK)
        return st;
    bp_dmarc_window lw = v->w;
    if ((st = bp_store_dmarc_report_list(store, &lw, take_listed, v)) != BP_OK)
        return st;
    v->total_reports = (long long)v->n_reports;
    if (a->domain != NULL) /* the list by policy domain: a From domain's reports are its own or its parent's */
        v->total_reports = 0;
    for (size_t i = 0; i < v->n_domains; i++) {
        domain_view *d = &v->domains[i];
        apply_policy(v, d);
        bp_sort(d->periods, d->n_periods, sizeof(*d->periods), by_period);
        bp_sort(d->sources, d->n_sources, sizeof(*d->sources), by_messages);
        g_hash_table_remove_all(d->by_ip);
        for (size_t j = 0; j < d->n_failures; j++)
            for (size_t k = 0; k < d->n_sources; k++)
                if (d->failures[j].source_ip != NULL && strcmp(d->failures[j].source_ip, d->sources[k].ip) == 0)
                    d->sources[k].failures++;
        bp_dmarc_window dw = v->w;
        dw.domain = d->name;
        for (size_t j = 0; j < d->n_sources && st == BP_OK; j++) {
            auth_take t = {v, &d->sources[j]};
            if (unknown_flag(v, &d->sources[j]) || own_flag(v, &d->sources[j]))
                st = bp_store_dmarc_auth(store, &dw, d->sources[j].ip, take_auth, &t);
        }
        if (a->domain != NULL)
            v->total_reports += d->reports;
    }
    bp_sort(v->domains, v->n_domains, sizeof(*v->domains), by_name);
    return st == BP_OK && v->nomem ? BP_ERR_NOMEM : st;
}

static void view_free(view *v)
{
    for (size_t i = 0; i < v->n_domains; i++) {
        domain_view *d = &v->domains[i];
        for (size_t j = 0; j < d->n_sources; j++)
            free(d->sources[j].auth);
        free(d->sources);
        free(d->periods);
        free(d->failures);
        g_hash_table_destroy(d->by_ip);
    }
    free(v->domains);
    free(v->policies);
    free(v->acct_ips);
    free(v->reports);
    if (v->strings != NULL)
        g_string_chunk_free(v->strings);
}

static int dmarc_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct dmarc_args *args = user;
    view v;
    bp_strbuf sb = {0};
    bp_store *store = NULL;
    bp_writer *w = NULL;
    memset(&v, 0, sizeof(v));
    int rc = BP_EXIT_OK;
    if (env->format == FMT_PROMETHEUS && args->table_given) {
        bp_cli_error("dmarc", "--table does not apply to --format prometheus");
        rc = BP_EXIT_USAGE;
        goto out;
    }
    if (env->format == FMT_CSV && args->table == TABLE_SUMMARY)
        args->table = TABLE_DOMAINS; /* CSV is one table */
    v.strings = g_string_chunk_new(4096);
    v.period = args->period;
    v.config = &env->config;
    char *domain = args->domain != NULL ? g_ascii_strdown(args->domain, -1) : NULL;
    v.w.domain = domain != NULL ? keep(&v, domain) : NULL;
    g_free(domain);
    /* --resolve writes its cache: the store opened for writing */
    rc = bp_cli_store_ready(env, !args->resolve, 1, &store);
    if (rc != BP_EXIT_OK)
        goto out;
    bp_status st = BP_OK;
    if (store != NULL) {
        long long newest = 0;
        st = bp_store_dmarc_newest(store, &newest);
        v.w.until = args->until > 0 ? args->until : newest > 0 ? newest + 1 : (long long)time(NULL);
        v.w.since = env->since > 0 ? env->since : v.w.until - DEFAULT_DAYS * 86400LL;
        if (st == BP_OK)
            st = collect(&v, store, args);
        size_t looked_up = 0, left = 0;
        if (st == BP_OK)
            st = reverse_dns(&v, store, args->resolve, &looked_up, &left);
        if (st == BP_OK && left > 0)
            bp_cli_error("dmarc", "--resolve: %zu addresses left for the next run (%u s and %u lookups a run)", left,
                         BP_DMARC_RESOLVE_SECONDS, BP_DMARC_RESOLVE_MAX);
    } else {
        v.w.until = args->until > 0 ? args->until : (long long)time(NULL);
        v.w.since = env->since > 0 ? env->since : v.w.until - DEFAULT_DAYS * 86400LL;
    }
    if (st != BP_OK) {
        rc = bp_cli_store_failed(env, store, st);
        goto out;
    }
    w = bp_writer_new_buffer(&sb, env->format == FMT_CSV ? BP_WRITER_CSV : BP_WRITER_JSON);
    if (w == NULL) {
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    bp_strbuf layout = {0};
    switch (env->format) {
    case FMT_JSON:
        if (args->table == TABLE_SUMMARY)
            json_document(&v, w);
        else {
            table_rows(&v, w, args->table);
            bp_writer_separator(w);
        }
        break;
    case FMT_CSV: table_rows(&v, w, args->table); break;
    case FMT_PROMETHEUS: prometheus_layout(&v, &layout); break;
    default: text_layout(&v, args, &layout); break;
    }
    if (layout.len > 0)
        bp_writer_raw(w, layout.data, layout.len);
    bp_strbuf_free(&layout);
    rc = bp_cli_output(env, bp_writer_flush(w), &sb, args->output, -1);
out:
    bp_writer_free(w);
    bp_strbuf_free(&sb);
    view_free(&v);
    bp_store_close(store);
    return rc;
}

static const struct dmarc_args dmarc_defaults = {0, NULL, PERIOD_WEEK, TABLE_SUMMARY, 0, 0, 20, NULL};

const bp_cli_entry bp_cli_dmarc = {&dmarc_command, dmarc_option, dmarc_main, sizeof(struct dmarc_args),
                                   &dmarc_defaults};
