/*
 * dmarc_store.c - DMARC reports in the store (contract: include/bouncepipe/dmarc_store.h; the
 * tables: dmarc_sql.h).  Every statement is written once, in the dialect both backends accept,
 * and run through the backend's run() (bp_store_sql_run()), as sql.c's are.
 *
 * bp_dmarc_store_event()  bp_store_record()'s hook: a dmarc-report event's report, an
 *                         auth-failure complaint's Reported-Domain.
 * bp_store_dmarc_put()    the report row first, ON CONFLICT (org_name, report_id) DO NOTHING
 *                         RETURNING id: no id back means the report is stored already, and
 *                         nothing else is written; else its records under that id, each with its
 *                         auth results and reasons packed as lines (dmarc_sql.h says why).
 *                         Fields are cut to their caps (limits.h: tokens BP_MAX_STORED_TOKEN_BYTES,
 *                         domains BP_MAX_STORED_HOST_BYTES, text BP_MAX_DMARC_FIELD_BYTES), counts
 *                         to BP_MAX_DMARC_STORED_COUNT; the detail of records (auth results,
 *                         reasons, envelope identifiers) is kept while the report's text stays
 *                         within BP_MAX_DMARC_STORE_BYTES, in record order, and the report's meta
 *                         counts the records stored without it (detail_cut), decided before
 *                         anything is written.
 * bp_store_dmarc_reports()  a page of report rows, then each report's records, rebuilt in the
 *                         caller's arena (migrate).
 * the view's queries       one statement each, grouped and summed by the database; a flagged
 *                         source's auth results are summed here from its records' lines.
 *
 * Ownership: copies of cut fields live in an arena made for one put; rows handed to the
 * view's callbacks point into the backend's result row.
 */
#include "bouncepipe/dmarc_store.h"
#include "bouncepipe/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "dmarc_sql.h"
#include "sql.h"

#define T BP_SQL_TEXT
#define I BP_SQL_INT

/* ---- statements ---- */

static const bp_sql_type id_types[] = {I};
static const bp_sql_stmt report_insert = {
    "INSERT INTO dmarc_reports (org_name, report_id, fingerprint, domain, begin_time, end_time, p, sp, pct, records, "
    "messages, messages_pass, meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
    "ON CONFLICT (org_name, report_id) DO NOTHING RETURNING id",
    id_types, 1};
#define REPORT_INSERT_N 13
static const bp_sql_stmt record_insert = {
    "INSERT INTO dmarc_records (report, n, source_ip, count, disposition, dkim, spf, header_from, envelope_from, "
    "envelope_to, auth, reasons) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    NULL, 0};
#define RECORD_INSERT_N 12
static const bp_sql_stmt failure_insert = {
    "INSERT INTO dmarc_failures (fingerprint, reported_domain, evidence_time) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (fingerprint) DO NOTHING",
    NULL, 0};

static const bp_sql_type report_types[] = {I, T, T, T, T, I, I, T, T, I, I, I, I, T};
static const bp_sql_stmt report_page = {
    "SELECT id, org_name, report_id, fingerprint, domain, begin_time, end_time, p, sp, pct, records, messages, "
    "messages_pass, meta FROM dmarc_reports WHERE id > ?1 ORDER BY id LIMIT ?2",
    report_types, sizeof(report_types) / sizeof(report_types[0])};
static const bp_sql_type record_types[] = {I, T, I, T, T, T, T, T, T, T, T};
static const bp_sql_stmt records_of = {
    "SELECT n, source_ip, count, disposition, dkim, spf, header_from, envelope_from, envelope_to, auth, reasons "
    "FROM dmarc_records WHERE report = ?1 ORDER BY n",
    record_types, sizeof(record_types) / sizeof(record_types[0])};
static const bp_sql_type failure_types[] = {T, T, I};
static const bp_sql_stmt failure_page = {
    "SELECT fingerprint, reported_domain, evidence_time FROM dmarc_failures WHERE fingerprint > ?1 "
    "ORDER BY fingerprint LIMIT ?2",
    failure_types, sizeof(failure_types) / sizeof(failure_types[0])};

/* The window: reports beginning in [?1, ?2), and a record's From domain (its header_from, else the
 * report's policy domain) ?3, NULL for all.  A record passes DMARC when its aligned DKIM or SPF
 * passes (RFC 7489, as the reader derives it). */
static const bp_sql_type traffic_types[] = {T, I, T, I, I, I, I, I, I};
static const bp_sql_stmt traffic = {
    "SELECT coalesce(r.header_from, p.domain), p.begin_time / 86400, r.source_ip, sum(r.count), "
    "sum(CASE WHEN r.dkim = 'pass' OR r.spf = 'pass' THEN r.count ELSE 0 END), "
    "sum(CASE WHEN r.dkim = 'pass' THEN r.count ELSE 0 END), sum(CASE WHEN r.spf = 'pass' THEN r.count ELSE 0 END), "
    "sum(CASE WHEN r.disposition = 'quarantine' THEN r.count ELSE 0 END), "
    "sum(CASE WHEN r.disposition = 'reject' THEN r.count ELSE 0 END) "
    "FROM dmarc_records r JOIN dmarc_reports p ON p.id = r.report "
    "WHERE p.begin_time >= ?1 AND p.begin_time < ?2 "
    "AND (CAST(?3 AS TEXT) IS NULL OR coalesce(r.header_from, p.domain) = ?3) "
    "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    traffic_types, sizeof(traffic_types) / sizeof(traffic_types[0])};
static const bp_sql_type count_types[] = {T, I, I};
static const bp_sql_stmt report_days = {
    "SELECT coalesce(r.header_from, p.domain), p.begin_time / 86400, count(DISTINCT p.id) "
    "FROM dmarc_records r JOIN dmarc_reports p ON p.id = r.report "
    "WHERE p.begin_time >= ?1 AND p.begin_time < ?2 "
    "AND (CAST(?3 AS TEXT) IS NULL OR coalesce(r.header_from, p.domain) = ?3) "
    "GROUP BY 1, 2 ORDER BY 1, 2",
    count_types, sizeof(count_types) / sizeof(count_types[0])};
static const bp_sql_type policy_types[] = {T, T, T, I, I, T};
static const bp_sql_stmt policies = {
    "SELECT domain, p, sp, pct, begin_time, meta FROM dmarc_reports WHERE begin_time >= ?1 AND begin_time < ?2 "
    "ORDER BY domain, begin_time DESC, id DESC",
    policy_types, sizeof(policy_types) / sizeof(policy_types[0])};
static const bp_sql_type auth_row_types[] = {T, I};
static const bp_sql_stmt auth_rows = {
    "SELECT r.auth, r.count FROM dmarc_records r JOIN dmarc_reports p ON p.id = r.report "
    "WHERE p.begin_time >= ?1 AND p.begin_time < ?2 AND coalesce(r.header_from, p.domain) = ?3 "
    "AND r.source_ip = ?4 AND r.auth IS NOT NULL",
    auth_row_types, sizeof(auth_row_types) / sizeof(auth_row_types[0])};
static const bp_sql_type listed_types[] = {T, T, T, T, I, I, I, I, I, I, T};
static const bp_sql_stmt report_list = {
    "SELECT org_name, report_id, domain, p, begin_time, end_time, pct, records, messages, messages_pass, meta "
    "FROM dmarc_reports WHERE begin_time >= ?1 AND begin_time < ?2 AND (CAST(?3 AS TEXT) IS NULL OR domain = ?3) "
    "ORDER BY begin_time, org_name, report_id",
    listed_types, sizeof(listed_types) / sizeof(listed_types[0])};
static const bp_sql_type failure_row_types[] = {T, I, T, T, T, T, T, T};
static const bp_sql_stmt failure_list = {
    "SELECT f.reported_domain, f.evidence_time, l.source_ip, l.feedback_type, coalesce(l.reporting_mta, "
    "pr.reporting_mta), coalesce(l.original_message_id, pr.original_message_id), coalesce(l.source, pr.source), "
    "coalesce(l.message_id, pr.message_id) FROM dmarc_failures f "
    "JOIN ledger l ON l.id = (SELECT min(e.id) FROM ledger e WHERE e.fingerprint = f.fingerprint) "
    "LEFT JOIN processed pr ON pr.fingerprint = f.fingerprint WHERE f.evidence_time >= ?1 AND "
    "f.evidence_time < ?2 AND (CAST(?3 AS TEXT) IS NULL OR f.reported_domain = ?3) "
    "ORDER BY f.evidence_time, f.fingerprint",
    failure_row_types, sizeof(failure_row_types) / sizeof(failure_row_types[0])};
static const bp_sql_stmt acct_ips = {
    "SELECT source_ip, 0, count(*) FROM ledger WHERE kind = 'event' AND family = 'powermta-acct' AND "
    "source_ip IS NOT NULL AND evidence_time >= ?1 AND evidence_time < ?2 GROUP BY source_ip ORDER BY source_ip",
    count_types, sizeof(count_types) / sizeof(count_types[0])};
static const bp_sql_stmt newest = {"SELECT coalesce(max(end_time), 0) FROM dmarc_reports", id_types, 1};
static const bp_sql_type rdns_types[] = {T, I};
static const bp_sql_stmt rdns_get = {"SELECT name, resolved_at FROM dmarc_rdns WHERE ip = ?1", rdns_types, 2};
static const bp_sql_stmt rdns_put = {
    "INSERT INTO dmarc_rdns (ip, name, resolved_at) VALUES (?1, ?2, ?3) ON CONFLICT (ip) DO UPDATE SET "
    "name = excluded.name, resolved_at = excluded.resolved_at",
    NULL, 0};

#undef T
#undef I

static long long stored_count(uint64_t n)
{
    return n > BP_MAX_DMARC_STORED_COUNT ? (long long)BP_MAX_DMARC_STORED_COUNT : (long long)n;
}

/* ---- packed lines (dmarc_sql.h): fields TAB-separated, a line each ---- */

/* Append one line of @p n fields (NULL as empty) to @p sb. */
static void pack_line(bp_strbuf *sb, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            bp_strbuf_putc(sb, '\t');
        if (fields[i] != NULL)
            bp_strbuf_puts(sb, fields[i]);
    }
    bp_strbuf_putc(sb, '\n');
}

/* Split the next line of @p *text into at most @p max fields (empty as NULL), in place.
 * @return the number of fields, 0 at the end. */
static size_t unpack_line(char **text, char **fields, size_t max)
{
    char *line = *text;
    if (line == NULL || *line == '\0')
        return 0;
    char *nl = strchr(line, '\n');
    if (nl != NULL)
        *nl = '\0';
    *text = nl != NULL ? nl + 1 : NULL;
    size_t n = 0;
    for (char *f = line; f != NULL && n < max;) {
        char *tab = strchr(f, '\t');
        if (tab != NULL)
            *tab = '\0';
        fields[n++] = *f != '\0' ? f : NULL;
        f = tab != NULL ? tab + 1 : NULL;
    }
    for (size_t i = n; i < max; i++)
        fields[i] = NULL;
    return n;
}

/* The value of @p key in packed meta lines, copied into @p buf (cut to fit); NULL when absent. */
static const char *meta_value(const char *meta, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = meta; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '\t') {
            size_t n = len - klen - 1 < size - 1 ? len - klen - 1 : size - 1;
            memcpy(buf, p + klen + 1, n);
            buf[n] = '\0';
            return buf;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return NULL;
}

/* ---- writing ---- */

/* Copies of cut fields, for one put. */
typedef struct cutter {
    bp_arena *arena;
    int nomem;
} cutter;

/* @p v cut to at most @p max bytes at a UTF-8 character boundary (a copy when cut). */
static const char *cut(cutter *c, const char *v, size_t max)
{
    return bp_arena_cut(&c->arena, v, max, &c->nomem);
}

#define TOKEN(c, v)  cut(c, v, BP_MAX_STORED_TOKEN_BYTES)
#define DOMAIN(c, v) cut(c, v, BP_MAX_STORED_HOST_BYTES)

/* A record's auth results and reasons as packed lines, capped as stored. */
static void pack_detail(cutter *c, const bp_dmarc_record *rec, bp_strbuf *auth, bp_strbuf *reasons)
{
    bp_strbuf_clear(auth);
    bp_strbuf_clear(reasons);
    for (size_t i = 0; i < rec->n_dkim; i++) {
        const bp_dmarc_dkim *d = &rec->dkim_results[i];
        const char *f[] = {"dkim", DOMAIN(c, d->domain), TOKEN(c, d->selector), TOKEN(c, d->result), d->human_result};
        pack_line(auth, f, 5);
    }
    for (size_t i = 0; i < rec->n_spf; i++) {
        const bp_dmarc_spf *x = &rec->spf_results[i];
        const char *f[] = {"spf", DOMAIN(c, x->domain), TOKEN(c, x->scope), TOKEN(c, x->result), x->human_result};
        pack_line(auth, f, 5);
    }
    for (size_t i = 0; i < rec->n_reasons; i++) {
        const char *f[] = {TOKEN(c, rec->reasons[i].type), rec->reasons[i].comment};
        pack_line(reasons, f, 2);
    }
}

static size_t len_of(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

/* The report's metadata that has no column, as packed "key TAB value" lines. */
static void pack_meta(cutter *c, const bp_dmarc_report *r, size_t detail_cut, bp_strbuf *meta)
{
    const char *const kv[][2] = {{"email", r->email},
                                 {"extra_contact_info", r->extra_contact_info},
                                 {"generator", r->generator},
                                 {"version", r->version},
                                 {"xml_namespace", r->xml_namespace},
                                 {"adkim", TOKEN(c, r->adkim)},
                                 {"aspf", TOKEN(c, r->aspf)},
                                 {"np", TOKEN(c, r->np)},
                                 {"fo", TOKEN(c, r->fo)},
                                 {"testing", TOKEN(c, r->testing)},
                                 {"discovery_method", TOKEN(c, r->discovery_method)}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (kv[i][1] != NULL)
            pack_line(meta, kv[i], 2);
    for (size_t i = 0; i < r->n_errors; i++) {
        const char *f[] = {"error", r->errors[i]};
        pack_line(meta, f, 2);
    }
    if (detail_cut > 0)
        bp_strbuf_printf(meta, "detail_cut\t%zu\n", detail_cut);
}

static int take_id(void *user, const bp_sql_value *v)
{
    *(long long *)user = v[0].num;
    return 1;
}

bp_status bp_store_dmarc_put(bp_store *s, const char *fingerprint, const bp_dmarc_report *r, int *stored)
{
    cutter c = {NULL, 0};
    bp_strbuf meta = {0}, auth = {0}, reasons = {0};
    bp_status st = BP_OK;
    long long id = 0;
    if (stored != NULL)
        *stored = 0;
    if (!bp_store_sql_in_tx(s))
        return BP_ERR_USAGE;
    if (r->outcome != BP_DMARC_READ || r->org_name == NULL || r->report_id == NULL || r->domain == NULL)
        return BP_OK; /* nothing the reader vouched for */
    /* which records keep their detail: in order, while the report's text stays in budget */
    size_t spent = len_of(r->org_name) + len_of(r->report_id) + len_of(r->email) + len_of(r->extra_contact_info) +
                   len_of(r->generator) + len_of(r->version) + len_of(r->xml_namespace) + len_of(r->domain);
    for (size_t i = 0; i < r->n_errors; i++)
        spent += len_of(r->errors[i]) + 8;
    size_t detail_until = r->n_records; /* records [detail_until, n) are stored without detail */
    for (size_t i = 0; i < r->n_records; i++) {
        const bp_dmarc_record *rec = &r->records[i];
        spent += 32 + len_of(rec->source_ip) + len_of(rec->disposition) + len_of(rec->dkim) + len_of(rec->spf) +
                 len_of(rec->header_from);
        if (detail_until < r->n_records)
            continue;
        pack_detail(&c, rec, &auth, &reasons);
        size_t detail = auth.len + reasons.len + len_of(rec->envelope_from) + len_of(rec->envelope_to);
        if (spent + detail > BP_MAX_DMARC_STORE_BYTES)
            detail_until = i;
        else
            spent += detail;
    }
    pack_meta(&c, r, r->n_records - detail_until, &meta);
    bp_sql_value v[REPORT_INSERT_N] = {bp_sql_text(r->org_name),
                                       bp_sql_text(r->report_id),
                                       bp_sql_text(fingerprint),
                                       bp_sql_text(DOMAIN(&c, r->domain)),
                                       bp_sql_int(r->begin),
                                       bp_sql_int(r->end),
                                       bp_sql_text(TOKEN(&c, r->p)),
                                       bp_sql_text(TOKEN(&c, r->sp)),
                                       bp_sql_int(r->pct),
                                       bp_sql_int((long long)r->n_records),
                                       bp_sql_int(stored_count(r->messages)),
                                       bp_sql_int(stored_count(r->messages_pass)),
                                       bp_sql_text(meta.len > 0 ? meta.data : NULL)};
    if (c.nomem) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    st = bp_store_sql_run(s, &report_insert, v, REPORT_INSERT_N, take_id, &id, NULL);
    if (st != BP_OK || id == 0)
        goto out; /* stored already (or failed): nothing more */
    for (size_t i = 0; i < r->n_records && st == BP_OK; i++) {
        const bp_dmarc_record *rec = &r->records[i];
        int detail = i < detail_until;
        if (detail)
            pack_detail(&c, rec, &auth, &reasons);
        bp_sql_value rv[RECORD_INSERT_N] = {bp_sql_int(id),
                                            bp_sql_int((long long)i),
                                            bp_sql_text(rec->source_ip),
                                            bp_sql_int(stored_count(rec->count)),
                                            bp_sql_text(TOKEN(&c, rec->disposition)),
                                            bp_sql_text(TOKEN(&c, rec->dkim)),
                                            bp_sql_text(TOKEN(&c, rec->spf)),
                                            bp_sql_text(DOMAIN(&c, rec->header_from)),
                                            bp_sql_text(detail ? DOMAIN(&c, rec->envelope_from) : NULL),
                                            bp_sql_text(detail ? DOMAIN(&c, rec->envelope_to) : NULL),
                                            bp_sql_text(detail && auth.len > 0 ? auth.data : NULL),
                                            bp_sql_text(detail && reasons.len > 0 ? reasons.data : NULL)};
        st = c.nomem ? BP_ERR_NOMEM : bp_store_sql_run(s, &record_insert, rv, RECORD_INSERT_N, NULL, NULL, NULL);
    }
    if (st == BP_OK && stored != NULL)
        *stored = 1;
out:
    bp_strbuf_free(&meta);
    bp_strbuf_free(&auth);
    bp_strbuf_free(&reasons);
    bp_arena_free(c.arena);
    return st;
}

bp_status bp_store_dmarc_failure_put(bp_store *s, const char *fingerprint, const char *reported_domain, long long when)
{
    cutter c = {NULL, 0};
    if (!bp_store_sql_in_tx(s))
        return BP_ERR_USAGE;
    bp_sql_value v[3] = {bp_sql_text(fingerprint), bp_sql_text(DOMAIN(&c, reported_domain)), bp_sql_int(when)};
    bp_status st = c.nomem ? BP_ERR_NOMEM : bp_store_sql_run(s, &failure_insert, v, 3, NULL, NULL, NULL);
    bp_arena_free(c.arena);
    return st;
}

bp_status bp_dmarc_store_event(bp_store *s, const char *fingerprint, const bp_event *e, long long when)
{
    if (e->type == BP_EVENT_DMARC_REPORT && e->dmarc != NULL)
        return bp_store_dmarc_put(s, fingerprint, e->dmarc, NULL);
    if (e->type == BP_EVENT_COMPLAINT && e->feedback_type != NULL && strcmp(e->feedback_type, "auth-failure") == 0 &&
        e->reported_domain != NULL && e->reported_domain[0] != '\0')
        return bp_store_dmarc_failure_put(s, fingerprint, e->reported_domain, when);
    return BP_OK;
}

/* ---- reading back whole ---- */

/* One report of a page, as its row said, before its records are read. */
typedef struct page_item {
    long long id;
    const char *fingerprint;
    bp_dmarc_report *r;
} page_item;

typedef struct page {
    bp_arena *arena;
    page_item *items;
    size_t n, cap;
    int nomem;
} page;

static const char *keep(page *pg, const bp_sql_value *v)
{
    if (v->is_null || v->text == NULL)
        return NULL;
    const char *c = bp_arena_strdup(pg->arena, v->text);
    if (c == NULL)
        pg->nomem = 1;
    return c;
}

/* The report's metadata lines back into its fields. */
static void unpack_meta(page *pg, bp_dmarc_report *r, const char *meta)
{
    char *copy = meta != NULL ? bp_arena_strdup(pg->arena, meta) : NULL;
    char *f[2];
    size_t cap_errors = 0;
    if (meta != NULL && copy == NULL)
        pg->nomem = 1;
    while (copy != NULL && unpack_line(&copy, f, 2) > 0) {
        if (f[0] == NULL || f[1] == NULL)
            continue;
        const char *const keys[] = {
            "email",   "extra_contact_info", "generator", "version", "xml_namespace", "adkim", "aspf", "np", "fo",
            "testing", "discovery_method"};
        const char **fields[] = {&r->email,
                                 &r->extra_contact_info,
                                 &r->generator,
                                 &r->version,
                                 &r->xml_namespace,
                                 &r->adkim,
                                 &r->aspf,
                                 &r->np,
                                 &r->fo,
                                 &r->testing,
                                 &r->discovery_method};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (strcmp(f[0], keys[i]) == 0)
                *fields[i] = f[1];
        if (strcmp(f[0], "error") == 0) {
            const char **e = bp_arena_grow(pg->arena, (void *)r->errors, r->n_errors, &cap_errors, sizeof(*e), 2);
            if (e == NULL) {
                pg->nomem = 1;
                return;
            }
            e[r->n_errors++] = f[1];
            r->errors = e;
        }
    }
}

static int page_report(void *user, const bp_sql_value *v)
{
    page *pg = user;
    page_item *items = bp_arena_grow(pg->arena, pg->items, pg->n, &pg->cap, sizeof(*items), 64);
    if (items == NULL) {
        pg->nomem = 1;
        return 1;
    }
    pg->items = items;
    bp_dmarc_report *r = bp_arena_alloc(pg->arena, sizeof(*r));
    if (r == NULL) {
        pg->nomem = 1;
        return 1;
    }
    page_item *it = &pg->items[pg->n++];
    it->id = v[0].num;
    it->r = r;
    r->outcome = BP_DMARC_READ;
    r->org_name = keep(pg, &v[1]);
    r->report_id = keep(pg, &v[2]);
    it->fingerprint = keep(pg, &v[3]);
    r->domain = keep(pg, &v[4]);
    r->begin = v[5].num;
    r->end = v[6].num;
    r->p = keep(pg, &v[7]);
    r->sp = keep(pg, &v[8]);
    r->pct = v[9].is_null ? -1 : (int)v[9].num;
    long long n = v[10].num;
    if (n < 0 || n > (long long)BP_MAX_DMARC_RECORDS)
        n = 0; /* not a count this program writes */
    r->cap_records = (size_t)n;
    r->records = n > 0 ? bp_arena_alloc(pg->arena, (size_t)n * sizeof(*r->records)) : NULL;
    if (n > 0 && r->records == NULL)
        pg->nomem = 1;
    r->messages = (uint64_t)v[11].num;
    r->messages_pass = (uint64_t)v[12].num;
    unpack_meta(pg, r, v[13].is_null ? NULL : v[13].text);
    return pg->nomem;
}

/* A record's packed auth results and reasons back into its arrays. */
static void unpack_detail(page *pg, bp_dmarc_record *rec, const char *auth, const char *reasons)
{
    char *a = auth != NULL ? bp_arena_strdup(pg->arena, auth) : NULL;
    char *x = reasons != NULL ? bp_arena_strdup(pg->arena, reasons) : NULL;
    char *f[5];
    size_t cap_dkim = 0, cap_spf = 0, cap_reasons = 0;
    if ((auth != NULL && a == NULL) || (reasons != NULL && x == NULL))
        pg->nomem = 1;
    while (a != NULL && unpack_line(&a, f, 5) > 0 && !pg->nomem) {
        if (f[0] != NULL && strcmp(f[0], "dkim") == 0) {
            bp_dmarc_dkim *d = bp_arena_grow(pg->arena, rec->dkim_results, rec->n_dkim, &cap_dkim, sizeof(*d), 2);
            if (d == NULL) {
                pg->nomem = 1;
                break;
            }
            rec->dkim_results = d;
            d[rec->n_dkim++] = (bp_dmarc_dkim){f[1], f[2], f[3], f[4]};
        } else if (f[0] != NULL && strcmp(f[0], "spf") == 0) {
            bp_dmarc_spf *s = bp_arena_grow(pg->arena, rec->spf_results, rec->n_spf, &cap_spf, sizeof(*s), 2);
            if (s == NULL) {
                pg->nomem = 1;
                break;
            }
            rec->spf_results = s;
            s[rec->n_spf++] = (bp_dmarc_spf){f[1], f[2], f[3], f[4]};
        }
    }
    while (x != NULL && unpack_line(&x, f, 2) > 0 && !pg->nomem) {
        bp_dmarc_reason *r = bp_arena_grow(pg->arena, rec->reasons, rec->n_reasons, &cap_reasons, sizeof(*r), 2);
        if (r == NULL) {
            pg->nomem = 1;
            break;
        }
        rec->reasons = r;
        r[rec->n_reasons++] = (bp_dmarc_reason){f[0], f[1]};
    }
}

typedef struct rebuild {
    page *pg;
    bp_dmarc_report *r;
} rebuild;

static int record_row(void *user, const bp_sql_value *v)
{
    rebuild *b = user;
    bp_dmarc_report *r = b->r;
    long long n = v[0].num;
    if (n < 0 || (size_t)n >= r->cap_records || (size_t)n != r->n_records)
        return 0; /* not in the order this program writes */
    bp_dmarc_record *rec = &r->records[r->n_records++];
    rec->source_ip = keep(b->pg, &v[1]);
    rec->count = (uint64_t)v[2].num;
    rec->disposition = keep(b->pg, &v[3]);
    rec->dkim = keep(b->pg, &v[4]);
    rec->spf = keep(b->pg, &v[5]);
    rec->header_from = keep(b->pg, &v[6]);
    rec->envelope_from = keep(b->pg, &v[7]);
    rec->envelope_to = keep(b->pg, &v[8]);
    rec->dkim_aligned = rec->dkim != NULL && strcmp(rec->dkim, "pass") == 0;
    rec->spf_aligned = rec->spf != NULL && strcmp(rec->spf, "pass") == 0;
    rec->dmarc_pass = rec->dkim_aligned || rec->spf_aligned;
    unpack_detail(b->pg, rec, v[9].is_null ? NULL : v[9].text, v[10].is_null ? NULL : v[10].text);
    return b->pg->nomem;
}

bp_status bp_store_dmarc_reports(bp_store *s, long long after_id, long long limit, bp_arena *arena,
                                 bp_dmarc_report_cb cb, void *user)
{
    page pg = {arena, NULL, 0, 0, 0};
    bp_sql_value v[2] = {bp_sql_int(after_id), bp_sql_int(limit > 0 ? limit : 100)};
    bp_status st = bp_store_sql_run(s, &report_page, v, 2, page_report, &pg, NULL);
    for (size_t i = 0; i < pg.n && st == BP_OK && !pg.nomem; i++) {
        rebuild b = {&pg, pg.items[i].r};
        bp_sql_value id[1] = {bp_sql_int(pg.items[i].id)};
        st = bp_store_sql_run(s, &records_of, id, 1, record_row, &b, NULL);
    }
    if (st == BP_OK && pg.nomem)
        st = BP_ERR_NOMEM;
    for (size_t i = 0; i < pg.n && st == BP_OK; i++)
        if (cb(user, pg.items[i].id, pg.items[i].fingerprint, pg.items[i].r) != 0)
            break;
    return st;
}

typedef struct failure_walk {
    bp_dmarc_failure_cb cb;
    void *user;
} failure_walk;

static int failure_row(void *user, const bp_sql_value *v)
{
    failure_walk *w = user;
    return w->cb(w->user, v[0].text, v[1].text, v[2].num);
}

bp_status bp_store_dmarc_failures(bp_store *s, const char *after, long long limit, bp_dmarc_failure_cb cb, void *user)
{
    failure_walk w = {cb, user};
    bp_sql_value v[2] = {bp_sql_text(after != NULL ? after : ""), bp_sql_int(limit > 0 ? limit : 1000)};
    return bp_store_sql_run(s, &failure_page, v, 2, failure_row, &w, NULL);
}

/* ---- the view ---- */

typedef struct view_walk {
    union {
        bp_dmarc_traffic_cb traffic;
        bp_dmarc_count_cb count;
        bp_dmarc_policy_cb policy;
        bp_dmarc_listed_cb listed;
        bp_dmarc_failure_row_cb failure;
    } cb;
    void *user;
} view_walk;

/* Statement @p stmt over window @p w (?1 since, ?2 until and, when @p n is 3, ?3 the domain),
 * each row to @p row with @p vw. */
static bp_status view(bp_store *s, const bp_sql_stmt *stmt, const bp_dmarc_window *w, size_t n, bp_sql_row_fn row,
                      view_walk *vw)
{
    const bp_sql_value v[3] = {bp_sql_int(w->since), bp_sql_int(w->until), bp_sql_text(w->domain)};
    return bp_store_sql_run(s, stmt, v, n, row, vw, NULL);
}

static int traffic_row(void *user, const bp_sql_value *v)
{
    view_walk *w = user;
    bp_dmarc_traffic t = {v[0].text, v[1].num, v[2].text, v[3].num, v[4].num, v[5].num, v[6].num, v[7].num, v[8].num};
    return w->cb.traffic(w->user, &t);
}

bp_status bp_store_dmarc_traffic(bp_store *s, const bp_dmarc_window *w, bp_dmarc_traffic_cb cb, void *user)
{
    view_walk vw = {.cb.traffic = cb, .user = user};
    return view(s, &traffic, w, 3, traffic_row, &vw);
}

static int count_row(void *user, const bp_sql_value *v)
{
    view_walk *w = user;
    return w->cb.count(w->user, v[0].text, v[1].num, v[2].num);
}

bp_status bp_store_dmarc_report_days(bp_store *s, const bp_dmarc_window *w, bp_dmarc_count_cb cb, void *user)
{
    view_walk vw = {.cb.count = cb, .user = user};
    return view(s, &report_days, w, 3, count_row, &vw);
}

static int policy_row(void *user, const bp_sql_value *v)
{
    view_walk *w = user;
    char adkim[BP_MAX_STORED_TOKEN_BYTES + 1], aspf[BP_MAX_STORED_TOKEN_BYTES + 1];
    const char *meta = v[5].is_null ? NULL : v[5].text;
    bp_dmarc_policy p = {v[0].text,
                         v[1].text,
                         v[2].text,
                         meta_value(meta, "adkim", adkim, sizeof(adkim)),
                         meta_value(meta, "aspf", aspf, sizeof(aspf)),
                         v[3].is_null ? -1 : v[3].num,
                         v[4].num};
    return w->cb.policy(w->user, &p);
}

bp_status bp_store_dmarc_policies(bp_store *s, const bp_dmarc_window *w, bp_dmarc_policy_cb cb, void *user)
{
    view_walk vw = {.cb.policy = cb, .user = user};
    return view(s, &policies, w, 2, policy_row, &vw);
}

/* The auth results of a flagged source, summed per (method, domain, selector, result). */
typedef struct auth_sum {
    bp_strbuf keys; /* each distinct result: its packed line, NUL-terminated, at offsets[] */
    size_t *offsets;
    long long *messages;
    size_t n, cap;
    int nomem;
} auth_sum;

static int auth_record(void *user, const bp_sql_value *v)
{
    auth_sum *a = user;
    const char *p = v[0].text;
    while (p != NULL && *p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        /* the line without its human_result (the fifth field) is the key */
        size_t key_len = 0;
        for (int tabs = 0; key_len < len && tabs < 4; key_len++)
            if (p[key_len] == '\t' && ++tabs == 4)
                break;
        size_t i = 0;
        while (i < a->n && !(strlen(a->keys.data + a->offsets[i]) == key_len &&
                             memcmp(a->keys.data + a->offsets[i], p, key_len) == 0))
            i++;
        if (i == a->n) {
            if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 8;
                size_t *o = bp_realloc(a->offsets, cap * sizeof(*o));
                long long *m = o != NULL ? bp_realloc(a->messages, cap * sizeof(*m)) : NULL;
                if (o != NULL)
                    a->offsets = o;
                if (m == NULL) {
                    a->nomem = 1;
                    return 1;
                }
                a->messages = m;
                a->cap = cap;
            }
            a->offsets[a->n] = a->keys.len;
            a->messages[a->n] = 0;
            if (bp_strbuf_append(&a->keys, p, key_len) != BP_OK || bp_strbuf_putc(&a->keys, '\0') != BP_OK) {
                a->nomem = 1;
                return 1;
            }
            a->n++;
        }
        a->messages[i] += v[1].num;
        p = nl != NULL ? nl + 1 : NULL;
    }
    return 0;
}

bp_status bp_store_dmarc_auth(bp_store *s, const bp_dmarc_window *w, const char *source_ip, bp_dmarc_auth_cb cb,
                              void *user)
{
    auth_sum a;
    memset(&a, 0, sizeof(a));
    const bp_sql_value v[4] = {bp_sql_int(w->since), bp_sql_int(w->until), bp_sql_text(w->domain),
                               bp_sql_text(source_ip)};
    bp_status st = bp_store_sql_run(s, &auth_rows, v, 4, auth_record, &a, NULL);
    if (st == BP_OK && a.nomem)
        st = BP_ERR_NOMEM;
    /* the most messages first, then by the line itself, the same on both backends */
    for (size_t done = 0; st == BP_OK && done < a.n; done++) {
        size_t best = a.n;
        for (size_t i = 0; i < a.n; i++)
            if (a.messages[i] >= 0 && (best == a.n || a.messages[i] > a.messages[best] ||
                                       (a.messages[i] == a.messages[best] &&
                                        strcmp(a.keys.data + a.offsets[i], a.keys.data + a.offsets[best]) < 0)))
                best = i;
        char *f[5];
        char *line = a.keys.data + a.offsets[best];
        unpack_line(&line, f, 5);
        bp_dmarc_auth_row row = {f[0], f[1], f[2], f[3], a.messages[best]};
        a.messages[best] = -1; /* shown */
        if (cb(user, &row) != 0)
            break;
    }
    bp_strbuf_free(&a.keys);
    free(a.offsets);
    free(a.messages);
    return st;
}

static int listed_row(void *user, const bp_sql_value *v)
{
    view_walk *w = user;
    char email[BP_MAX_DMARC_FIELD_BYTES + 1], cut_text[32];
    const char *meta = v[10].is_null ? NULL : v[10].text;
    const char *detail_cut = meta_value(meta, "detail_cut", cut_text, sizeof(cut_text));
    bp_dmarc_listed l = {v[0].text,
                         v[1].text,
                         v[2].text,
                         v[3].text,
                         meta_value(meta, "email", email, sizeof(email)),
                         v[4].num,
                         v[5].num,
                         v[6].is_null ? -1 : v[6].num,
                         v[7].num,
                         v[8].num,
                         v[9].num,
                         detail_cut != NULL ? strtoll(detail_cut, NULL, 10) : 0};
    return w->cb.listed(w->user, &l);
}

bp_status bp_store_dmarc_report_list(bp_store *s, const bp_dmarc_window *w, bp_dmarc_listed_cb cb, void *user)
{
    view_walk vw = {.cb.listed = cb, .user = user};
    return view(s, &report_list, w, 3, listed_row, &vw);
}

static int failure_view_row(void *user, const bp_sql_value *v)
{
    view_walk *w = user;
    bp_dmarc_failure f = {v[0].text, v[1].num, v[2].text, v[3].text, v[4].text, v[5].text, v[6].text, v[7].text};
    return w->cb.failure(w->user, &f);
}

bp_status bp_store_dmarc_failure_list(bp_store *s, const bp_dmarc_window *w, bp_dmarc_failure_row_cb cb, void *user)
{
    view_walk vw = {.cb.failure = cb, .user = user};
    return view(s, &failure_list, w, 3, failure_view_row, &vw);
}

bp_status bp_store_dmarc_acct_ips(bp_store *s, const bp_dmarc_window *w, bp_dmarc_count_cb cb, void *user)
{
    view_walk vw = {.cb.count = cb, .user = user};
    return view(s, &acct_ips, w, 2, count_row, &vw);
}

bp_status bp_store_dmarc_newest(bp_store *s, long long *end)
{
    *end = 0;
    return bp_store_sql_run(s, &newest, NULL, 0, take_id, end, NULL);
}

static int rdns_row(void *user, const bp_sql_value *v)
{
    view_walk *w = user;
    w->cb.count(w->user, v[0].is_null ? NULL : v[0].text, 0, v[1].num);
    return 1;
}

typedef struct rdns_found {
    view_walk vw;
    int found;
} rdns_found;

static int rdns_seen(void *user, const bp_sql_value *v)
{
    rdns_found *f = user;
    f->found = 1;
    return rdns_row(&f->vw, v);
}

bp_status bp_store_dmarc_rdns_get(bp_store *s, const char *ip, bp_dmarc_count_cb cb, void *user)
{
    rdns_found f = {{.user = user}, 0};
    f.vw.cb.count = cb;
    bp_sql_value v[1] = {bp_sql_text(ip)};
    bp_status st = bp_store_sql_run(s, &rdns_get, v, 1, rdns_seen, &f, NULL);
    return st == BP_OK && !f.found ? BP_ERR_NOT_FOUND : st;
}

bp_status bp_store_dmarc_rdns_put(bp_store *s, const char *ip, const char *name, long long when)
{
    cutter c = {NULL, 0};
    if (!bp_store_sql_in_tx(s))
        return BP_ERR_USAGE;
    bp_sql_value v[3] = {bp_sql_text(ip), bp_sql_text(DOMAIN(&c, name)), bp_sql_int(when)};
    bp_status st = c.nomem ? BP_ERR_NOMEM : bp_store_sql_run(s, &rdns_put, v, 3, NULL, NULL, NULL);
    bp_arena_free(c.arena);
    return st;
}
